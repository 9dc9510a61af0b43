// CFastcapaShared: the memory the lcores and the control plane share.
//
// Counter blocks, the producer context librdkafka's callbacks write, the
// delivery-latency histogram and the relaxed atomics that read and write them.
// They are C so that their layouts are fixed (checked below) and their atomics
// are plain instructions: each block has one writer (the thread that owns it)
// and any number of readers (the statistics sampler).
#ifndef FASTCAPA_SHARED_H
#define FASTCAPA_SHARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FASTCAPA_CACHE_LINE 64

// MARK: - relaxed atomics

/// Adds to a counter that only the calling thread writes: a relaxed store keeps
/// each write visible to readers without a locked instruction.
static inline void fastcapa_counter_add(uint64_t *counter, uint64_t value) {
    __atomic_store_n(counter, *counter + value, __ATOMIC_RELAXED);
}
/// A word any thread may overwrite (not a counter: the last writer wins).
static inline void fastcapa_counter_store(uint64_t *word, uint64_t value) {
    __atomic_store_n(word, value, __ATOMIC_RELAXED);
}
static inline uint64_t fastcapa_counter_load(const uint64_t *counter) {
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}
/// Swaps a mailbox word (a pointer handed from an lcore to the control plane).
static inline uint64_t fastcapa_mailbox_exchange(uint64_t *mailbox, uint64_t value) {
    return __atomic_exchange_n(mailbox, value, __ATOMIC_ACQ_REL);
}
/// A flag another thread sets (stop requests): what was written before the
/// flag is seen after it.
static inline void fastcapa_flag_store(uint32_t *flag, uint32_t value) {
    __atomic_store_n(flag, value, __ATOMIC_RELEASE);
}
static inline uint32_t fastcapa_flag_load(const uint32_t *flag) {
    return __atomic_load_n(flag, __ATOMIC_ACQUIRE);
}

// MARK: - counter blocks
//
// Sized to whole cache lines and allocated 64-byte aligned (CounterBlock in
// Swift); no alignment attribute, since Swift does not import over-aligned structs.

/// Receive worker counters, three cache lines per worker.
typedef struct fastcapa_rx_counters {
    uint64_t received;          // packets returned by rte_eth_rx_burst
    uint64_t received_bytes;    // their pkt_len
    uint64_t enqueued;          // packets the transmit ring accepted
    uint64_t ring_full_drops;   // packets the ring refused (policy drop)
    uint64_t bursts;            // non-empty bursts
    uint64_t full_bursts;       // bursts that came back full (queue under pressure)
    uint64_t ring_full_waits;   // retries under the `wait` ring-full policy
    uint64_t clock_held;        // clock reads that held the last time (the system clock was behind it)
    // Second cache line.
    uint64_t filtered;          // packets the capture filter rejected (freed on the lcore; not a drop)
    uint64_t flow_cutoff;       // packets past their flow's cutoff (freed on the lcore; not a drop)
    uint64_t flow_cutoff_bytes; // their pkt_len
    uint64_t duplicate;         // copies of a frame seen within the duplicate window (freed; not a drop)
    uint64_t flow_table_full;   // packets of new flows the full flow table could not track (kept)
    uint64_t spare_second_line[3];
    // Third cache line: the flow table and the duplicate window, as the lcore last saw them.
    uint64_t flows_active;      // flows in the table now
    uint64_t flows_created;     // flows started (new keys, and keys seen again after their timeout)
    uint64_t flows_expired;     // flows forgotten after their timeout
    uint64_t duplicate_evicted; // remembered frames pushed out of a full duplicate window while inside it
    uint64_t spare[4];
} fastcapa_rx_counters;

#define FASTCAPA_LATENCY_BUCKETS 14

/// Transmit worker counters, four cache lines per worker.
typedef struct fastcapa_tx_counters {
    uint64_t dequeued;            // packets taken off the ring
    uint64_t produced;            // accepted by librdkafka (now in flight)
    uint64_t produced_bytes;
    uint64_t delivered;           // delivery report: success
    uint64_t delivered_bytes;
    uint64_t delivery_failed;     // delivery report: error (timeout, broker error, purged), not re-produced
    uint64_t queue_full_drops;    // librdkafka's queue stayed full past the retry budget
    uint64_t too_large_drops;     // larger than message.max.bytes
    uint64_t produce_error_drops; // any other produce() refusal
    uint64_t truncated;           // delivered shorter than captured (snap length)
    uint64_t queue_full_retries;
    uint64_t null_sink_drops;     // freed unsent by the null sink (--sink null, receive-path benchmarks)
    uint64_t drain_timeout_drops; // still in the ring when the drain timeout ran out
    uint64_t malformed_drops;     // the driver's segments hold fewer bytes than the frame's length
    uint64_t reproduced;          // failed in a retired producer, produced again to its successor
    uint64_t paused_polls;        // loops spent waiting for a failed producer to be replaced
    // Delivery latency (capture time in the key → delivery report): bucket i
    // counts latencies in (bound[i-1], bound[i]], see FASTCAPA_LATENCY_BOUNDS_US.
    uint64_t latency_buckets[FASTCAPA_LATENCY_BUCKETS];
    uint64_t latency_count;       // every successful delivery measured, above the last bound too
    uint64_t latency_sum_us;
    // Fifth cache line: bundles (--bundle-packets); the counters above count their packets.
    uint64_t bundles_produced;    // bundles librdkafka took
    uint64_t bundles_delivered;   // bundles whose delivery report was a success
    uint64_t spare_fifth_line[6];
} fastcapa_tx_counters;

// MARK: - delivery latency

/// Upper bounds of the delivery-latency buckets, in microseconds (1 ms ... 30 s).
static const uint64_t FASTCAPA_LATENCY_BOUNDS_US[FASTCAPA_LATENCY_BUCKETS] = {
    1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000,
    1000000, 2000000, 5000000, 10000000, 30000000,
};
static inline uint64_t fastcapa_latency_bound_us(unsigned int index) { return FASTCAPA_LATENCY_BOUNDS_US[index]; }

/// Counts one delivery latency (single writer: the thread serving the producer's reports).
static inline void fastcapa_record_latency(fastcapa_tx_counters *counters, uint64_t latency_us) {
    for (unsigned int i = 0; i < FASTCAPA_LATENCY_BUCKETS; i++) {
        if (latency_us <= FASTCAPA_LATENCY_BOUNDS_US[i]) {
            fastcapa_counter_add(&counters->latency_buckets[i], 1);
            break;
        }
    }
    fastcapa_counter_add(&counters->latency_count, 1);
    fastcapa_counter_add(&counters->latency_sum_us, latency_us);
}

// MARK: - producer context

/// What a failed delivery report becomes (`keep_failed`).
#define FASTCAPA_KEEP_WHEN_FATAL 0 // current producer: kept for the successor only once it failed fatally
#define FASTCAPA_KEEP_ALWAYS 1     // retiring: kept, and produced again to the successor by the retiring thread
#define FASTCAPA_KEEP_NEVER 2      // retirement cut short by a stop, or the shutdown flush: counted as failed

/// One librdkafka producer's context (its conf opaque), written by librdkafka's
/// callbacks on whichever thread polls the producer: the transmit lcore (or its
/// delivery-report thread) while the producer is current, the supervisor's
/// thread once it is retired.
typedef struct fastcapa_producer_context {
    fastcapa_tx_counters *deliveries; // where delivery reports are counted
    uint64_t statistics_json;         // mailbox: latest statistics JSON (char *), taken by the control plane
    uint64_t fatal;                   // 1 once librdkafka reported a fatal error: the producer is useless
    uint64_t all_brokers_down;        // times librdkafka reported all brokers down
    uint64_t errors;                  // error callbacks
    uint64_t keep_failed;             // what a failed report becomes: FASTCAPA_KEEP_WHEN_FATAL, _ALWAYS or _NEVER
    void *rescue;                     // failed messages kept for a successor (RescueBuffer)
    void *bundle_pool;                // the worker's fastcapa_bundle_pool when it bundles (message opaques are
                                      // then fastcapa_bundle descriptors), else NULL
    // Second cache line: written by the transmit lcore and the partitioner.
    uint64_t partition_count;         // the topic's partitions, as last seen by the partitioner (0: not yet known)
    uint64_t poll_time_us;            // wall clock taken just before the owner polls: delivery latency without
                                      // a clock read per report (0: read the clock)
    uint64_t kept;                    // messages now in the rescue buffer (written by whoever polls, read by the sampler)
    uint64_t final_outstanding;       // messages librdkafka still held when the shutdown flush ended
    uint64_t flushed;                 // 1 once the shutdown flush ended: final_outstanding is the count
    int64_t queued_packets;           // bundling: packets handed to librdkafka and not yet reported (several
                                      // writers: fastcapa_packets_add)
    uint64_t spare[2];
} fastcapa_producer_context;

/// Adds to a word several threads write (a producing thread adds, the thread
/// serving reports subtracts): one locked instruction, paid once per bundle.
static inline void fastcapa_packets_add(int64_t *word, int64_t value) {
    __atomic_fetch_add(word, value, __ATOMIC_RELAXED);
}
static inline int64_t fastcapa_packets_load(const int64_t *word) { return __atomic_load_n(word, __ATOMIC_RELAXED); }

// MARK: - bundles
//
// A transmit worker that bundles (--bundle-packets) builds each message's value
// in a buffer of its pool, made at start: `count` buffers of `buffer_size` bytes
// and one descriptor per buffer. librdkafka sends the buffer without copying it
// (the descriptor is the message's opaque) and whoever serves the final report
// hands it back. Free buffers wait in a bounded lock-free MPMC ring of indices
// (sequence-numbered cells; GCC atomics with C11 orderings): the transmit lcore
// takes, the lcore's poll, a delivery-report thread or a retiring generation's
// thread give back, possibly at once.

/// One bundle: its buffer and what it holds.
typedef struct fastcapa_bundle {
    uint32_t index;   // its buffer in the pool
    uint32_t packets; // packets in the value
    uint64_t bytes;   // bytes of the value (record headers included)
    uint64_t hint;    // partition hint (a flow's partition, a sequence number): partition = hint % partitions
    uint64_t spare;
} fastcapa_bundle;

/// A cell of the index ring: its turn (`sequence`) and the index it holds.
typedef struct fastcapa_index_cell {
    uint64_t sequence;
    uint64_t value;
} fastcapa_index_cell;

/// A bounded MPMC ring of indices; `mask + 1` cells, a power of two.
typedef struct fastcapa_index_ring {
    fastcapa_index_cell *cells;
    uint64_t mask;
    uint64_t spare_first_line[6];
    uint64_t push_position; // the next cell to fill (its own cache line: givers)
    uint64_t spare_second_line[7];
    uint64_t pop_position;  // the next cell to empty (its own cache line: the taker)
    uint64_t spare_third_line[7];
} fastcapa_index_ring;

/// Readies `ring` over `cells` (`capacity` of them, a power of two), empty.
static inline void fastcapa_index_ring_init(fastcapa_index_ring *ring, fastcapa_index_cell *cells, uint64_t capacity) {
    ring->cells = cells;
    ring->mask = capacity - 1;
    for (uint64_t i = 0; i < capacity; i++) {
        cells[i].sequence = i;
        cells[i].value = 0;
    }
    __atomic_store_n(&ring->push_position, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&ring->pop_position, 0, __ATOMIC_RELAXED);
}

/// Adds `value`; false when the ring is full.
static inline bool fastcapa_index_ring_push(fastcapa_index_ring *ring, uint64_t value) {
    uint64_t position = __atomic_load_n(&ring->push_position, __ATOMIC_RELAXED);
    fastcapa_index_cell *cell;
    for (;;) {
        cell = &ring->cells[position & ring->mask];
        int64_t turn = (int64_t)(__atomic_load_n(&cell->sequence, __ATOMIC_ACQUIRE) - position);
        if (turn == 0) {
            if (__atomic_compare_exchange_n(&ring->push_position, &position, position + 1, true, __ATOMIC_RELAXED,
                                            __ATOMIC_RELAXED)) {
                break;
            }
        } else if (turn < 0) {
            return false;
        } else {
            position = __atomic_load_n(&ring->push_position, __ATOMIC_RELAXED);
        }
    }
    cell->value = value;
    __atomic_store_n(&cell->sequence, position + 1, __ATOMIC_RELEASE);
    return true;
}

/// Takes the oldest value into `value`; false when the ring is empty.
static inline bool fastcapa_index_ring_pop(fastcapa_index_ring *ring, uint64_t *value) {
    uint64_t position = __atomic_load_n(&ring->pop_position, __ATOMIC_RELAXED);
    fastcapa_index_cell *cell;
    for (;;) {
        cell = &ring->cells[position & ring->mask];
        int64_t turn = (int64_t)(__atomic_load_n(&cell->sequence, __ATOMIC_ACQUIRE) - (position + 1));
        if (turn == 0) {
            if (__atomic_compare_exchange_n(&ring->pop_position, &position, position + 1, true, __ATOMIC_RELAXED,
                                            __ATOMIC_RELAXED)) {
                break;
            }
        } else if (turn < 0) {
            return false;
        } else {
            position = __atomic_load_n(&ring->pop_position, __ATOMIC_RELAXED);
        }
    }
    *value = cell->value;
    __atomic_store_n(&cell->sequence, position + ring->mask + 1, __ATOMIC_RELEASE);
    return true;
}

/// A transmit worker's bundle buffers and their descriptors (memory owned by BundlePool in Swift).
typedef struct fastcapa_bundle_pool {
    uint8_t *buffers;          // count × buffer_size bytes
    fastcapa_bundle *bundles;  // count descriptors
    uint64_t buffer_size;
    uint64_t count;
    uint64_t spare[4];
    fastcapa_index_ring free;  // indices of the free buffers
} fastcapa_bundle_pool;

/// A free bundle, emptied, or NULL when every buffer is taken.
static inline fastcapa_bundle *fastcapa_bundle_take(fastcapa_bundle_pool *pool) {
    uint64_t index;
    if (!fastcapa_index_ring_pop(&pool->free, &index)) return NULL;
    fastcapa_bundle *bundle = &pool->bundles[index];
    bundle->packets = 0;
    bundle->bytes = 0;
    bundle->hint = 0;
    return bundle;
}

/// Hands a bundle's buffer back (any thread; once per take).
static inline void fastcapa_bundle_give(fastcapa_bundle_pool *pool, fastcapa_bundle *bundle) {
    (void)fastcapa_index_ring_push(&pool->free, bundle->index);
}

/// The buffer a bundle's value is built in.
static inline uint8_t *fastcapa_bundle_buffer(const fastcapa_bundle_pool *pool, const fastcapa_bundle *bundle) {
    return pool->buffers + (uint64_t)bundle->index * pool->buffer_size;
}

_Static_assert(sizeof(fastcapa_bundle) == 32, "a bundle descriptor is 32 bytes: two per cache line");
_Static_assert(sizeof(fastcapa_index_cell) == 16, "an index cell is two words");
_Static_assert(sizeof(fastcapa_index_ring) == 3 * FASTCAPA_CACHE_LINE, "an index ring fills three cache lines");
_Static_assert(offsetof(fastcapa_index_ring, push_position) == FASTCAPA_CACHE_LINE, "givers' word has its own line");
_Static_assert(offsetof(fastcapa_index_ring, pop_position) == 2 * FASTCAPA_CACHE_LINE, "the taker's word has its own line");
_Static_assert(offsetof(fastcapa_bundle_pool, free) == FASTCAPA_CACHE_LINE, "the free ring starts a cache line");

// MARK: - heartbeats

/// A worker lcore's heartbeat, a cache line of its own: `loops` counts the turns of
/// its loop (and of its waits for ring room), so that a loop that stops turning (a
/// driver call that never returns, a deadlock) shows to the sampler, which then stops
/// telling systemd's watchdog that the probe is alive.
typedef struct fastcapa_heartbeat {
    uint64_t loops;
    uint64_t spare[7];
} fastcapa_heartbeat;

_Static_assert(sizeof(fastcapa_heartbeat) == FASTCAPA_CACHE_LINE, "a heartbeat fills one cache line");
_Static_assert(sizeof(fastcapa_producer_context) == 2 * FASTCAPA_CACHE_LINE, "a producer context fills two cache lines");
_Static_assert(offsetof(fastcapa_producer_context, partition_count) == FASTCAPA_CACHE_LINE,
               "the lcore-written words start the second cache line");
_Static_assert(sizeof(fastcapa_rx_counters) == 3 * FASTCAPA_CACHE_LINE, "rx counters fill three cache lines");
_Static_assert(offsetof(fastcapa_rx_counters, filtered) == FASTCAPA_CACHE_LINE, "filtered starts the second cache line");
_Static_assert(offsetof(fastcapa_rx_counters, flows_active) == 2 * FASTCAPA_CACHE_LINE,
               "the flow table's gauges start the third cache line");
_Static_assert(sizeof(fastcapa_tx_counters) == 5 * FASTCAPA_CACHE_LINE, "tx counters fill five cache lines");
_Static_assert(offsetof(fastcapa_tx_counters, bundles_produced) == 4 * FASTCAPA_CACHE_LINE,
               "the bundle counters start the fifth cache line");

#endif
