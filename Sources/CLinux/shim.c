#define _GNU_SOURCE
#include "clinux.h"

#include <errno.h>
#include <linux/ethtool.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

// The constants clinux.h spells for Swift, as the kernel defines them.
_Static_assert(ETHTOOL_GGRO == 0x0000002b && ETHTOOL_GFLAGS == 0x00000025 && ETH_FLAG_LRO == (1 << 15),
               "ethtool constants as clinux.h spells them");
_Static_assert(ETH_GSTRING_LEN == 32, "ethtool's string length as clinux.h spells it");
_Static_assert(IFF_UP == 0x1 && IFF_RUNNING == 0x40 && SPEED_UNKNOWN == -1, "interface flags as clinux.h spells them");
// The ethtool requests below allocate a header and their answer after it: each answer is the flexible array
// that ends its header, so it starts at the header's size.
_Static_assert(offsetof(struct ethtool_sset_info, data) == sizeof(struct ethtool_sset_info),
               "ETHTOOL_GSSET_INFO's counts follow its header");
_Static_assert(offsetof(struct ethtool_gstrings, data) == sizeof(struct ethtool_gstrings),
               "ETHTOOL_GSTRINGS's names follow its header");
_Static_assert(offsetof(struct ethtool_gfeatures, features) == sizeof(struct ethtool_gfeatures),
               "ETHTOOL_GFEATURES's blocks follow its header");
// The counts are copied out as the uint32_t the header declares.
_Static_assert(sizeof(((struct tpacket_stats *)0)->tp_packets) == sizeof(uint32_t) &&
                   sizeof(((struct tpacket_stats *)0)->tp_drops) == sizeof(uint32_t),
               "PACKET_STATISTICS counts are 32-bit");
_Static_assert(sizeof(cpu_set_t) * 8 == CPU_SETSIZE, "a cpu_set_t holds CPU_SETSIZE bits");

// MARK: - network interfaces

static int CLinux_ifreq_name(struct ifreq *request, const char *name) {
    memset(request, 0, sizeof(*request));
    if (strlen(name) >= sizeof(request->ifr_name)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(request->ifr_name, name);
    return 0;
}

int CLinux_ioctl_SIOCGIFMTU(int fd, const char *name, int *mtu) {
    struct ifreq request;
    if (CLinux_ifreq_name(&request, name) != 0 || ioctl(fd, SIOCGIFMTU, &request) != 0) return -1;
    *mtu = request.ifr_mtu;
    return 0;
}

int CLinux_ioctl_SIOCETHTOOL_value(int fd, const char *name, uint32_t command, uint32_t *value) {
    struct ifreq request;
    struct ethtool_value data = {.cmd = command};
    if (CLinux_ifreq_name(&request, name) != 0) return -1;
    request.ifr_data = (void *)&data;
    if (ioctl(fd, SIOCETHTOOL, &request) != 0) return -1;
    *value = data.data;
    return 0;
}

int CLinux_ioctl_SIOCGIFFLAGS(int fd, const char *name, int *flags) {
    struct ifreq request;
    if (CLinux_ifreq_name(&request, name) != 0 || ioctl(fd, SIOCGIFFLAGS, &request) != 0) return -1;
    *flags = request.ifr_flags;
    return 0;
}

int CLinux_ioctl_ETHTOOL_GSET_speed(int fd, const char *name, uint32_t *speed) {
    struct ifreq request;
    struct ethtool_cmd data = {.cmd = ETHTOOL_GSET};
    if (CLinux_ifreq_name(&request, name) != 0) return -1;
    request.ifr_data = (void *)&data;
    if (ioctl(fd, SIOCETHTOOL, &request) != 0) return -1;
    *speed = ethtool_cmd_speed(&data);
    return 0;
}

int CLinux_ioctl_ETHTOOL_GSSET_INFO_features(int fd, const char *name, uint32_t *count) {
    struct ifreq request;
    // One set asked for: the kernel writes one count after the header.
    _Alignas(struct ethtool_sset_info) unsigned char buffer[sizeof(struct ethtool_sset_info) + sizeof(uint32_t)];
    struct ethtool_sset_info *query = (struct ethtool_sset_info *)buffer;
    if (CLinux_ifreq_name(&request, name) != 0) return -1;
    memset(buffer, 0, sizeof(buffer));
    query->cmd = ETHTOOL_GSSET_INFO;
    query->sset_mask = 1ULL << ETH_SS_FEATURES;
    request.ifr_data = (void *)query;
    if (ioctl(fd, SIOCETHTOOL, &request) != 0) return -1;
    if ((query->sset_mask & (1ULL << ETH_SS_FEATURES)) == 0) {
        errno = EOPNOTSUPP;
        return -1;
    }
    *count = query->data[0];
    return 0;
}

int CLinux_ioctl_ETHTOOL_GSTRINGS_features(int fd, const char *name, uint32_t count, char *names) {
    struct ifreq request;
    struct ethtool_gstrings *strings = calloc(1, sizeof(*strings) + (size_t)count * ETH_GSTRING_LEN);
    if (strings == NULL) return -1;
    int status = -1;
    if (CLinux_ifreq_name(&request, name) == 0) {
        strings->cmd = ETHTOOL_GSTRINGS;
        strings->string_set = ETH_SS_FEATURES;
        strings->len = count;
        request.ifr_data = (void *)strings;
        if (ioctl(fd, SIOCETHTOOL, &request) == 0) {
            memcpy(names, strings->data, (size_t)count * ETH_GSTRING_LEN);
            status = 0;
        }
    }
    int saved = errno;
    free(strings);
    errno = saved;
    return status;
}

int CLinux_ioctl_ETHTOOL_GFEATURES_active(int fd, const char *name, uint32_t words, uint32_t *active) {
    struct ifreq request;
    struct ethtool_gfeatures *features =
        calloc(1, sizeof(*features) + (size_t)words * sizeof(struct ethtool_get_features_block));
    if (features == NULL) return -1;
    int status = -1;
    if (CLinux_ifreq_name(&request, name) == 0) {
        features->cmd = ETHTOOL_GFEATURES;
        features->size = words;
        request.ifr_data = (void *)features;
        if (ioctl(fd, SIOCETHTOOL, &request) == 0) {
            for (uint32_t word = 0; word < words; word++) active[word] = features->features[word].active;
            status = 0;
        }
    }
    int saved = errno;
    free(features);
    errno = saved;
    return status;
}

// MARK: - packet sockets

int CLinux_getsockname_sll_ifindex(int fd, int *ifindex) {
    struct sockaddr_ll address;
    socklen_t length = sizeof(address);
    memset(&address, 0, sizeof(address));
    if (getsockname(fd, (struct sockaddr *)&address, &length) != 0) return -1;
    if (address.sll_family != AF_PACKET) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    *ifindex = address.sll_ifindex;
    return 0;
}

int CLinux_getsockopt_PACKET_STATISTICS(int fd, uint32_t *packets, uint32_t *drops) {
    struct tpacket_stats statistics;
    socklen_t length = sizeof(statistics);
    if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &statistics, &length) != 0) return -1;
    *packets = statistics.tp_packets;
    *drops = statistics.tp_drops;
    return 0;
}

// MARK: - CPU sets and threads

void CLinux_CPU_ZERO(cpu_set_t *set) { CPU_ZERO(set); }
void CLinux_CPU_SET(int cpu, cpu_set_t *set) { CPU_SET(cpu, set); }
bool CLinux_CPU_ISSET(int cpu, const cpu_set_t *set) { return CPU_ISSET(cpu, set); }
int CLinux_CPU_SETSIZE(void) { return CPU_SETSIZE; }

int CLinux_pthread_getaffinity_np(cpu_set_t *set) {
    return pthread_getaffinity_np(pthread_self(), sizeof(*set), set);
}

int CLinux_pthread_setaffinity_np(const cpu_set_t *set) {
    return pthread_setaffinity_np(pthread_self(), sizeof(*set), set);
}

int CLinux_pthread_setname_np(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}

// MARK: - streams

FILE *CLinux_fopencookie(void *cookie, ssize_t (*write)(void *cookie, const char *buffer, size_t size)) {
    cookie_io_functions_t functions = {.read = NULL, .write = write, .seek = NULL, .close = NULL};
    return fopencookie(cookie, "w", functions);
}
