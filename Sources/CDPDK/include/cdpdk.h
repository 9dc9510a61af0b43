// CDPDK: DPDK wrappers, nothing else (Linux's and glibc's are CLinux's).
//
// Swift imports DPDK's functions (static inline ones too) but not
// `struct rte_mbuf` (anonymous unions, bitfields) or function-like macros.
// Each wrapper here keeps the wrapped C name behind the `CDPDK_` prefix
// (swift-nio's CNIOLinux does the same), holds no policy, and is static inline
// so that the hot loops pay no call.
#ifndef CDPDK_H
#define CDPDK_H

#include <rte_config.h>

#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <rte_bpf.h>
#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ethdev_core.h>
#include <rte_hash.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_prefetch.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_pause.h>
#include <rte_pdump.h>
#include <rte_ring.h>
#include <rte_version.h>

// MARK: - errors

/// `rte_errno` is a per-lcore macro.
static inline int CDPDK_rte_errno(void) { return rte_errno; }

// MARK: - struct rte_mbuf

static inline const uint8_t *CDPDK_rte_pktmbuf_mtod(const struct rte_mbuf *m) {
    return rte_pktmbuf_mtod(m, const uint8_t *);
}
static inline uint16_t CDPDK_rte_mbuf_data_len(const struct rte_mbuf *m) { return m->data_len; }
static inline uint32_t CDPDK_rte_mbuf_pkt_len(const struct rte_mbuf *m) { return m->pkt_len; }
static inline uint16_t CDPDK_rte_mbuf_nb_segs(const struct rte_mbuf *m) { return m->nb_segs; }
static inline const struct rte_mbuf *CDPDK_rte_mbuf_next(const struct rte_mbuf *m) { return m->next; }
static inline uint64_t CDPDK_rte_mbuf_ol_flags(const struct rte_mbuf *m) { return m->ol_flags; }
static inline uint32_t CDPDK_rte_mbuf_hash_rss(const struct rte_mbuf *m) { return m->hash.rss; }
static inline uint64_t CDPDK_RTE_MBUF_F_RX_RSS_HASH(void) { return RTE_MBUF_F_RX_RSS_HASH; }

/// `*RTE_MBUF_DYNFIELD(m, offset, uint64_t *)`, read and written.
static inline uint64_t CDPDK_RTE_MBUF_DYNFIELD_u64(const struct rte_mbuf *m, int offset) {
    return *RTE_MBUF_DYNFIELD(m, offset, const uint64_t *);
}
static inline void CDPDK_RTE_MBUF_DYNFIELD_set_u64(struct rte_mbuf *m, int offset, uint64_t value) {
    *RTE_MBUF_DYNFIELD(m, offset, uint64_t *) = value;
}

static inline void CDPDK_rte_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
/// `length` bytes of a frame from `offset`: a pointer into its segment when they
/// lie in one, else copied into `buffer` (NULL when the frame is shorter).
static inline const void *CDPDK_rte_pktmbuf_read(const struct rte_mbuf *m, uint32_t offset, uint32_t length,
                                                 void *buffer) {
    return rte_pktmbuf_read(m, offset, length, buffer);
}
static inline void CDPDK_rte_pktmbuf_free_bulk(struct rte_mbuf **ms, unsigned int count) {
    rte_pktmbuf_free_bulk(ms, count);
}

/// `rte_mbuf_dynfield_register` for a 64-bit field (Swift cannot build the
/// descriptor: its name is a fixed-size char array). -1 with rte_errno set on failure.
int CDPDK_rte_mbuf_dynfield_register_u64(const char *name);

/// The device receive-timestamp field's and flag's names (string macros built
/// from other macros, which Swift does not import).
static inline const char *CDPDK_RTE_MBUF_DYNFIELD_TIMESTAMP_NAME(void) { return RTE_MBUF_DYNFIELD_TIMESTAMP_NAME; }
static inline const char *CDPDK_RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME(void) { return RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME; }

/// `rte_eth_read_clock` (experimental in DPDK 22.11): the device clock its
/// receive timestamps count in. 0, or -ENOTSUP when the driver has none.
int CDPDK_rte_eth_read_clock(uint16_t port, uint64_t *clock);

// MARK: - ethdev constants (built with RTE_BIT64, which Swift cannot import)

static inline uint64_t CDPDK_RTE_ETH_RSS_IP(void) { return RTE_ETH_RSS_IP; }
static inline uint64_t CDPDK_RTE_ETH_RSS_TCP(void) { return RTE_ETH_RSS_TCP; }
static inline uint64_t CDPDK_RTE_ETH_RSS_UDP(void) { return RTE_ETH_RSS_UDP; }
static inline uint64_t CDPDK_RTE_ETH_RSS_SCTP(void) { return RTE_ETH_RSS_SCTP; }
static inline uint64_t CDPDK_RTE_ETH_RX_OFFLOAD_SCATTER(void) { return RTE_ETH_RX_OFFLOAD_SCATTER; }
static inline uint64_t CDPDK_RTE_ETH_RX_OFFLOAD_TIMESTAMP(void) { return RTE_ETH_RX_OFFLOAD_TIMESTAMP; }
static inline uint64_t CDPDK_RTE_ETH_RX_OFFLOAD_RSS_HASH(void) { return RTE_ETH_RX_OFFLOAD_RSS_HASH; }
static inline uint16_t CDPDK_RTE_MBUF_DEFAULT_BUF_SIZE(void) { return RTE_MBUF_DEFAULT_BUF_SIZE; }
static inline uint16_t CDPDK_RTE_PKTMBUF_HEADROOM(void) { return RTE_PKTMBUF_HEADROOM; }

// MARK: - devices

/// The driver's part of a device's arguments (`iface=eth1,qpairs=2` of
/// `--vdev=net_af_packet0,iface=eth1,qpairs=2`), or NULL. `args` is in an anonymous union.
static inline const char *CDPDK_rte_devargs_args(const struct rte_device *device) {
    const struct rte_devargs *devargs = device == NULL ? NULL : rte_dev_devargs(device);
    return devargs == NULL ? NULL : devargs->args;
}

/// `rte_eth_fp_ops[port].rxq.data[queue]`: the driver's own receive-queue
/// structure, as `rte_eth_rx_burst` passes it (valid once the port started).
static inline void *CDPDK_rte_eth_fp_ops_rxq_data(uint16_t port, uint16_t queue) {
    if (port >= RTE_MAX_ETHPORTS || rte_eth_fp_ops[port].rxq.data == NULL) return NULL;
    return rte_eth_fp_ops[port].rxq.data[queue];
}

// MARK: - BPF (librte_bpf)

/// rte_bpf_convert: libpcap's classic program (`const struct bpf_program *`)
/// to eBPF load parameters, allocated with rte_malloc (free with rte_free).
/// Experimental in DPDK 22.11, which Swift would warn about; NULL with rte_errno set on failure.
struct rte_bpf_prm *CDPDK_rte_bpf_convert(const void *classic);

// MARK: - hash tables (librte_hash)

/// Starts loading the cache line at `p` into every cache level (a burst's table
/// entries, fetched before the loop that reads them).
static inline void CDPDK_rte_prefetch0(const void *p) { rte_prefetch0(p); }

/// rte_hash_crc (static inline, so it has no address) as an `rte_hash_function`:
/// the flow table's hash, given to rte_hash_create and called directly to hash a key once
/// for both its lookup and its add. Out of line: built with the CRC32 instruction.
uint32_t CDPDK_rte_hash_crc(const void *key, uint32_t length, uint32_t initial);

// MARK: - RSS (librte_hash's rte_thash.h)

/// rte_softrss: the Toeplitz hash a NIC's RSS computes, in software. `tuple` is
/// `length` 32-bit words in host byte order (IPv4: source, destination, then
/// source port << 16 | destination port; IPv6 the same with four words per
/// address); `key` holds at least `length` + 1 words. Out of line, so that
/// rte_thash.h's vector headers stay out of Swift's view.
uint32_t CDPDK_rte_softrss(const uint32_t *tuple, uint32_t length, const uint8_t *key);

// MARK: - cycles

static inline uint64_t CDPDK_rte_rdtsc(void) { return rte_rdtsc(); }
static inline void CDPDK_rte_pause(void) { rte_pause(); }

// MARK: - lcores

/// rte_lcore_cpuset (declared only when glibc's GNU extensions are on: out of line, built with _GNU_SOURCE).
/// The set is read with CLinux's CPU_* wrappers.
void CDPDK_rte_lcore_cpuset(unsigned int lcore, cpu_set_t *set);

#endif
