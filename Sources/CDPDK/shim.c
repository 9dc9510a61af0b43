#define _GNU_SOURCE
// rte_bpf_convert is experimental in DPDK 22.11.
#define ALLOW_EXPERIMENTAL_API
#include "cdpdk.h"

#include <errno.h>
#include <linux/ethtool.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

_Static_assert(ETHTOOL_GGRO == 0x0000002b && ETHTOOL_GFLAGS == 0x00000025 && ETH_FLAG_LRO == (1 << 15),
               "ethtool constants as cdpdk.h spells them");

int CDPDK_rte_mbuf_dynfield_register_u64(const char *name) {
    struct rte_mbuf_dynfield descriptor = {
        .size = sizeof(uint64_t),
        .align = __alignof__(uint64_t),
    };
    if (snprintf(descriptor.name, sizeof(descriptor.name), "%s", name) >= (int)sizeof(descriptor.name)) {
        rte_errno = ENAMETOOLONG;
        return -1;
    }
    return rte_mbuf_dynfield_register(&descriptor);
}

struct rte_bpf_prm *CDPDK_rte_bpf_convert(const void *classic) { return rte_bpf_convert(classic); }

void CDPDK_CPU_ZERO(cpu_set_t *set) { CPU_ZERO(set); }
void CDPDK_CPU_SET(int cpu, cpu_set_t *set) { CPU_SET(cpu, set); }
bool CDPDK_CPU_ISSET(int cpu, const cpu_set_t *set) { return CPU_ISSET(cpu, set); }
int CDPDK_CPU_SETSIZE(void) { return CPU_SETSIZE; }
void CDPDK_rte_lcore_cpuset(unsigned int lcore, cpu_set_t *set) { *set = rte_lcore_cpuset(lcore); }

int CDPDK_pthread_getaffinity_np(cpu_set_t *set) {
    return pthread_getaffinity_np(pthread_self(), sizeof(*set), set);
}

int CDPDK_pthread_setaffinity_np(const cpu_set_t *set) {
    return pthread_setaffinity_np(pthread_self(), sizeof(*set), set);
}

int CDPDK_pthread_setname_np(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}

static int CDPDK_ifreq_name(struct ifreq *request, const char *name) {
    memset(request, 0, sizeof(*request));
    if (strlen(name) >= sizeof(request->ifr_name)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(request->ifr_name, name);
    return 0;
}

int CDPDK_ioctl_SIOCGIFMTU(int fd, const char *name, int *mtu) {
    struct ifreq request;
    if (CDPDK_ifreq_name(&request, name) != 0 || ioctl(fd, SIOCGIFMTU, &request) != 0) return -1;
    *mtu = request.ifr_mtu;
    return 0;
}

int CDPDK_ioctl_SIOCETHTOOL_value(int fd, const char *name, uint32_t command, uint32_t *value) {
    struct ifreq request;
    struct ethtool_value data = {.cmd = command};
    if (CDPDK_ifreq_name(&request, name) != 0) return -1;
    request.ifr_data = (void *)&data;
    if (ioctl(fd, SIOCETHTOOL, &request) != 0) return -1;
    *value = data.data;
    return 0;
}

int CDPDK_getsockname_sll_ifindex(int fd, int *ifindex) {
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

int CDPDK_getsockopt_PACKET_STATISTICS(int fd, uint32_t *packets, uint32_t *drops) {
    struct tpacket_stats statistics;
    socklen_t length = sizeof(statistics);
    if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &statistics, &length) != 0) return -1;
    *packets = statistics.tp_packets;
    *drops = statistics.tp_drops;
    return 0;
}

FILE *CDPDK_fopencookie(void *cookie, ssize_t (*write)(void *cookie, const char *buffer, size_t size)) {
    cookie_io_functions_t functions = {.read = NULL, .write = write, .seek = NULL, .close = NULL};
    return fopencookie(cookie, "w", functions);
}
