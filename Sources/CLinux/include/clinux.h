// CLinux: Linux and glibc wrappers, nothing else.
//
// What Swift cannot call directly: the network interface ioctls and ethtool
// (their requests are structs with flexible arrays, declared in linux/
// headers), packet-socket statistics, and glibc's GNU extensions (the CPU_*
// macros, thread affinity and names, malloc_trim, fopencookie), declared only
// under _GNU_SOURCE. Each wrapper keeps the wrapped C name behind the
// `CLinux_` prefix (swift-nio's CNIOLinux does the same) and holds no policy;
// the linux/ headers stay in shim.c, out of what Swift imports, and shim.c
// checks the constants spelled here against them.
#ifndef CLINUX_H
#define CLINUX_H

#include <malloc.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

// MARK: - network interfaces (ioctl, ethtool)

/// ioctl(fd, SIOCGIFMTU) for interface `name`. 0, or -1 with errno set.
int CLinux_ioctl_SIOCGIFMTU(int fd, const char *name, int *mtu);
/// ioctl(fd, SIOCETHTOOL) with a `struct ethtool_value` get command (ETHTOOL_GGRO, ETHTOOL_GFLAGS…).
/// 0, or -1 with errno set.
int CLinux_ioctl_SIOCETHTOOL_value(int fd, const char *name, uint32_t command, uint32_t *value);
static inline uint32_t CLinux_ETHTOOL_GGRO(void) { return 0x0000002b; }
static inline uint32_t CLinux_ETHTOOL_GFLAGS(void) { return 0x00000025; }
static inline uint32_t CLinux_ETH_FLAG_LRO(void) { return 1u << 15; }
/// ioctl(fd, SIOCGIFFLAGS) for interface `name`: its IFF_* flags. 0, or -1 with errno set.
int CLinux_ioctl_SIOCGIFFLAGS(int fd, const char *name, int *flags);
static inline int CLinux_IFF_UP(void) { return 0x1; }
/// The interface has a carrier (its operational state is up).
static inline int CLinux_IFF_RUNNING(void) { return 0x40; }
/// ioctl(fd, SIOCETHTOOL) ETHTOOL_GSET: the link speed in Mb/s (CLinux_SPEED_UNKNOWN when the driver does not
/// know, e.g. with no carrier). 0, or -1 with errno set.
int CLinux_ioctl_ETHTOOL_GSET_speed(int fd, const char *name, uint32_t *speed);
static inline uint32_t CLinux_SPEED_UNKNOWN(void) { return 0xffffffffu; }
/// ioctl(fd, SIOCETHTOOL) ETHTOOL_GSSET_INFO: how many strings the ETH_SS_FEATURES set (the names of
/// netdev features, `ethtool -k`'s) holds. 0, or -1 with errno set.
int CLinux_ioctl_ETHTOOL_GSSET_INFO_features(int fd, const char *name, uint32_t *count);
/// ioctl(fd, SIOCETHTOOL) ETHTOOL_GSTRINGS of ETH_SS_FEATURES: `count` names of CLinux_ETH_GSTRING_LEN bytes
/// each (NUL-padded) into `names`; feature i is bit i % 32 of word i / 32. 0, or -1 with errno set.
int CLinux_ioctl_ETHTOOL_GSTRINGS_features(int fd, const char *name, uint32_t count, char *names);
/// ioctl(fd, SIOCETHTOOL) ETHTOOL_GFEATURES: the `active` word of each of `words` feature blocks. 0, or -1
/// with errno set.
int CLinux_ioctl_ETHTOOL_GFEATURES_active(int fd, const char *name, uint32_t words, uint32_t *active);
static inline uint32_t CLinux_ETH_GSTRING_LEN(void) { return 32; }

// MARK: - packet sockets (AF_PACKET)

/// getsockname(fd) of an AF_PACKET socket: its sll_ifindex. 0, or -1 (errno set; EAFNOSUPPORT: not AF_PACKET).
int CLinux_getsockname_sll_ifindex(int fd, int *ifindex);
/// getsockopt(fd, SOL_PACKET, PACKET_STATISTICS): packets (dropped included) and drops since the last
/// call (the kernel resets them on every read). 0, or -1 with errno set.
int CLinux_getsockopt_PACKET_STATISTICS(int fd, uint32_t *packets, uint32_t *drops);

// MARK: - CPU sets (cpu_set_t's accessors are GNU macros)

void CLinux_CPU_ZERO(cpu_set_t *set);
void CLinux_CPU_SET(int cpu, cpu_set_t *set);
bool CLinux_CPU_ISSET(int cpu, const cpu_set_t *set);
int CLinux_CPU_SETSIZE(void);

// MARK: - threads (GNU extensions)

/// pthread_getaffinity_np / pthread_setaffinity_np for the calling thread. 0 or an errno value.
int CLinux_pthread_getaffinity_np(cpu_set_t *set);
int CLinux_pthread_setaffinity_np(const cpu_set_t *set);
/// pthread_setname_np for the calling thread (at most 15 bytes). 0 or an errno value.
int CLinux_pthread_setname_np(const char *name);

// MARK: - malloc (<malloc.h>, which Swift's Glibc module does not import)

/// malloc_trim: returns the free memory of every malloc arena to the system
/// (madvise). 1 when some was returned.
static inline int CLinux_malloc_trim(size_t pad) { return malloc_trim(pad); }
/// mallopt: sets one of the allocator's parameters. 1 on success, 0 when refused.
static inline int CLinux_mallopt(int parameter, int value) { return mallopt(parameter, value); }
static inline int CLinux_M_TRIM_THRESHOLD(void) { return M_TRIM_THRESHOLD; }
static inline int CLinux_M_MMAP_THRESHOLD(void) { return M_MMAP_THRESHOLD; }

// MARK: - streams

/// fopencookie for a write-only stream: `write` receives what is written
/// (rte_openlog_stream takes such a FILE). NULL with errno set on failure.
FILE *CLinux_fopencookie(void *cookie, ssize_t (*write)(void *cookie, const char *buffer, size_t size));

#endif
