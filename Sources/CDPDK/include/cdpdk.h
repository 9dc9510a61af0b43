// CDPDK: the only place fastcapa touches DPDK's C API directly.
//
// Swift imports DPDK's static inline functions, but not `struct rte_mbuf`
// (it holds anonymous unions and bitfields), nor DPDK's macros. Everything
// the Swift layer needs from them is here, prefixed `cfc_`, as small static
// inline functions so that the hot loops pay no call.
#ifndef CDPDK_H
#define CDPDK_H

#include <rte_config.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <rte_common.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <rte_mempool.h>
#include <rte_pause.h>
#include <rte_ring.h>

// MARK: - errors

/// `rte_errno` is a per-lcore macro.
static inline int cfc_errno(void) { return rte_errno; }

// MARK: - mbuf accessors

typedef struct rte_mbuf cfc_mbuf;

static inline const uint8_t *cfc_mbuf_data(const struct rte_mbuf *m) {
    return rte_pktmbuf_mtod(m, const uint8_t *);
}
static inline uint16_t cfc_mbuf_data_len(const struct rte_mbuf *m) { return m->data_len; }
static inline uint32_t cfc_mbuf_pkt_len(const struct rte_mbuf *m) { return m->pkt_len; }
static inline uint16_t cfc_mbuf_segments(const struct rte_mbuf *m) { return m->nb_segs; }
static inline const struct rte_mbuf *cfc_mbuf_next(const struct rte_mbuf *m) { return m->next; }
static inline uint64_t cfc_mbuf_flags(const struct rte_mbuf *m) { return m->ol_flags; }

/// The device's RSS hash, or 0 with `*valid = false` when the device gave none.
static inline uint32_t cfc_mbuf_rss_hash(const struct rte_mbuf *m, bool *valid) {
    *valid = (m->ol_flags & RTE_MBUF_F_RX_RSS_HASH) != 0;
    return m->hash.rss;
}

/// Reads a 64-bit dynamic field (the device timestamp, fastcapa's capture time).
static inline uint64_t cfc_mbuf_u64_field(const struct rte_mbuf *m, int offset) {
    return *RTE_MBUF_DYNFIELD(m, offset, const uint64_t *);
}
static inline void cfc_mbuf_set_u64_field(struct rte_mbuf *m, int offset, uint64_t value) {
    *RTE_MBUF_DYNFIELD(m, offset, uint64_t *) = value;
}

static inline void cfc_mbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
static inline void cfc_mbuf_free_bulk(struct rte_mbuf **ms, unsigned int count) {
    rte_pktmbuf_free_bulk(ms, count);
}

/// Registers fastcapa's per-packet capture time (epoch microseconds), written by
/// the receive worker and read by the transmit worker. Returns the field offset, or
/// -1 with rte_errno set.
int cfc_register_capture_time_field(void);

/// The offset of the device receive-timestamp field and its flag bit, if a driver
/// registered them (net_pcap does when it starts). Returns false when it is absent.
bool cfc_lookup_rx_timestamp(int *offset, uint64_t *flag);

// MARK: - ports (macros DPDK builds from RTE_BIT64, which Swift cannot import)

static inline uint64_t cfc_rss_hash_functions_wanted(void) {
    return RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP | RTE_ETH_RSS_SCTP;
}
static inline uint64_t cfc_rx_offload_scatter(void) { return RTE_ETH_RX_OFFLOAD_SCATTER; }
static inline uint64_t cfc_rx_offload_timestamp(void) { return RTE_ETH_RX_OFFLOAD_TIMESTAMP; }
static inline uint64_t cfc_rx_offload_rss_hash(void) { return RTE_ETH_RX_OFFLOAD_RSS_HASH; }
static inline uint16_t cfc_mbuf_default_buffer_size(void) { return RTE_MBUF_DEFAULT_BUF_SIZE; }

// MARK: - lcores

/// The next enabled worker lcore after `lcore` (RTE_LCORE_FOREACH_WORKER), or RTE_MAX_LCORE.
static inline unsigned int cfc_next_worker_lcore(unsigned int lcore) {
    return rte_get_next_lcore(lcore, 1, 0);
}
static inline unsigned int cfc_max_lcore(void) { return RTE_MAX_LCORE; }

// MARK: - CPU affinity (cpu_set_t is all macros)

/// Writes the CPUs the calling thread may run on to `cpus` (up to `capacity`)
/// and returns how many there are, or -1 with errno set.
int cfc_thread_cpus(int *cpus, int capacity);
/// Writes the CPUs `lcore` is pinned to and returns how many there are.
int cfc_lcore_cpus(unsigned int lcore, int *cpus, int capacity);
/// Confines the calling thread (and the threads it creates from now on) to
/// `cpus`. Returns 0 or an errno value.
int cfc_set_thread_cpus(const int *cpus, int count);
/* Names the calling thread (at most 15 bytes are kept), as ps and /proc show it. */
int cfc_name_this_thread(const char *name);
/// CPU numbers run from 0 to this, exclusive.
int cfc_cpu_set_size(void);

// MARK: - cycles

static inline uint64_t cfc_tsc(void) { return rte_rdtsc(); }
static inline void cfc_pause(void) { rte_pause(); }

// MARK: - per-lcore counters

/// Counters have one writer (the lcore that owns them) and any number of
/// readers (the statistics sampler). A relaxed atomic store keeps every write
/// visible to readers without a locked instruction on the hot path.
static inline void cfc_counter_add(uint64_t *counter, uint64_t value) {
    __atomic_store_n(counter, *counter + value, __ATOMIC_RELAXED);
}
/// A word any thread may overwrite (not a counter: last writer wins).
static inline void cfc_counter_store(uint64_t *word, uint64_t value) {
    __atomic_store_n(word, value, __ATOMIC_RELAXED);
}
static inline uint64_t cfc_counter_load(const uint64_t *counter) {
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}
/// Swaps a mailbox word (a pointer handed from an lcore to the control plane).
static inline uint64_t cfc_mailbox_exchange(uint64_t *mailbox, uint64_t value) {
    return __atomic_exchange_n(mailbox, value, __ATOMIC_ACQ_REL);
}
/// A flag another thread sets (stop requests): acquire/release so that what was
/// written before the flag is seen after it.
static inline void cfc_flag_store(uint32_t *flag, uint32_t value) {
    __atomic_store_n(flag, value, __ATOMIC_RELEASE);
}
static inline uint32_t cfc_flag_load(const uint32_t *flag) {
    return __atomic_load_n(flag, __ATOMIC_ACQUIRE);
}

#define CFC_CACHE_LINE 64

// Counter blocks are sized to whole cache lines and allocated 64-byte aligned
// (CounterBlock in Swift). They carry no alignment attribute: Swift does not
// import over-aligned structs.

/// Receive worker counters, one cache line per worker.
typedef struct cfc_rx_counters {
    uint64_t received;          // packets returned by rte_eth_rx_burst
    uint64_t received_bytes;    // their pkt_len
    uint64_t enqueued;          // packets the transmit ring accepted
    uint64_t ring_full_drops;   // packets the ring refused (policy drop)
    uint64_t bursts;            // non-empty bursts
    uint64_t full_bursts;       // bursts that came back full (queue under pressure)
    uint64_t ring_full_waits;   // retries under the `wait` ring-full policy
    uint64_t empty_polls;       // polls that returned nothing
} cfc_rx_counters;

/// Transmit worker counters, four cache lines per worker.
typedef struct cfc_tx_counters {
    uint64_t dequeued;          // packets taken off the ring
    uint64_t produced;          // accepted by librdkafka (now in flight)
    uint64_t produced_bytes;
    uint64_t delivered;         // delivery report: success
    uint64_t delivered_bytes;
    uint64_t delivery_failed;   // delivery report: error (timeout, broker error, purged), not re-produced
    uint64_t queue_full_drops;  // librdkafka's queue stayed full past the retry budget
    uint64_t too_large_drops;   // larger than message.max.bytes
    uint64_t produce_error_drops; // any other produce() refusal
    uint64_t truncated;         // delivered shorter than captured (snap length)
    uint64_t queue_full_retries;
    uint64_t null_sink_drops;   // freed unsent by the null sink (--sink null, receive-path benchmarks)
    uint64_t drain_timeout_drops; // still in the ring when the drain timeout ran out
    uint64_t malformed_drops;   // the driver's segments hold fewer bytes than the frame's length
    uint64_t reproduced;        // failed in a retired producer, produced again to its successor
    uint64_t paused_polls;      // loops spent waiting for a failed producer to be replaced
    // Delivery latency (capture time in the key → delivery report), per range:
    // bucket i counts latencies in (bound[i-1], bound[i]]; see CFC_LATENCY_BOUNDS_US.
    uint64_t latency_buckets[14];
    uint64_t latency_count;     // all successful deliveries measured, including those above the last bound
    uint64_t latency_sum_us;
} cfc_tx_counters;

#define CFC_LATENCY_BUCKETS 14
/// Upper bounds of the delivery-latency buckets, in microseconds (1 ms ... 30 s).
static const uint64_t CFC_LATENCY_BOUNDS_US[CFC_LATENCY_BUCKETS] = {
    1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000,
    1000000, 2000000, 5000000, 10000000, 30000000,
};
static inline uint64_t cfc_latency_bound_us(unsigned int index) { return CFC_LATENCY_BOUNDS_US[index]; }

/// Counts one delivery latency (single writer: the thread serving the producer's reports).
static inline void cfc_record_latency(cfc_tx_counters *counters, uint64_t latency_us) {
    for (unsigned int i = 0; i < CFC_LATENCY_BUCKETS; i++) {
        if (latency_us <= CFC_LATENCY_BOUNDS_US[i]) {
            cfc_counter_add(&counters->latency_buckets[i], 1);
            break;
        }
    }
    cfc_counter_add(&counters->latency_count, 1);
    cfc_counter_add(&counters->latency_sum_us, latency_us);
}

/// Wall-clock now in epoch microseconds (vDSO, no system call).
static inline uint64_t cfc_now_us(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
}

/// One librdkafka producer's context (its conf opaque), written by librdkafka's
/// callbacks on whichever thread polls the producer: the transmit lcore while the
/// producer is current, the supervisor's thread once it is retired.
typedef struct cfc_producer_context {
    cfc_tx_counters *deliveries;  // where delivery reports are counted
    uint64_t statistics_json;     // mailbox: latest statistics JSON (char *), taken by the control plane
    uint64_t fatal;               // 1 once librdkafka reported a fatal error: the producer is useless
    uint64_t all_brokers_down;    // times librdkafka reported all brokers down
    uint64_t errors;              // error callbacks
    uint64_t last_error;          // the last error callback's code
    void *successor_topic;        // retiring: failed messages are produced again to this topic handle
    void *rescue;                 // failed messages kept between a fatal error and the successor
    // Second cache line: written by the transmit lcore and the partitioner.
    uint64_t partition_count;     // the topic's partitions, as last seen by the partitioner (0: not yet known)
    uint64_t poll_time_us;        // wall clock taken just before the owner polls: delivery latency without
                                  // a clock read per report (0: read the clock)
    uint64_t spare[6];
} cfc_producer_context;

_Static_assert(sizeof(cfc_producer_context) == 2 * CFC_CACHE_LINE, "a producer context fills two cache lines");
_Static_assert(sizeof(cfc_rx_counters) == CFC_CACHE_LINE, "rx counters fill one cache line");
_Static_assert(sizeof(cfc_tx_counters) == 4 * CFC_CACHE_LINE, "tx counters fill four cache lines");

// MARK: - signals

/// Installs SIGINT/SIGTERM handlers: the first asks for a graceful stop
/// (cfc_stop_requested() becomes true), the second exits at once with status
/// `forced_exit_status` after one line on stderr.
void cfc_install_stop_signals(int forced_exit_status);
bool cfc_stop_requested(void);
/// The signal that asked for the stop, or 0.
int cfc_stop_signal(void);

/// SIGHUP: reload the configuration. The count only grows; compare with the last seen.
void cfc_install_reload_signal(void);
unsigned long cfc_reload_requests(void);
/// SIGUSR2 (only with --testing-fault-signals): fail every producer fatally.
void cfc_install_fault_signal(void);
unsigned long cfc_fault_requests(void);

#endif
