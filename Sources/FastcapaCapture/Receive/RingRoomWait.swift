import CDPDK
import CFastcapaShared
import CURCU
import Glibc

/// How a receive worker waits for room in its full transmit ring: until half of
/// it is free (so that waits stay few), sleeping (so that the cores go to the
/// transmit workers and librdkafka, which are what must catch up). Wake-ups
/// cost, so the first sleep is half as long as the last wait took; then sleeps
/// grow from 1 µs to the idle backoff's longest. With that at 0, it spins.
/// An RCU reader goes offline for the wait: it holds nothing RCU protects
/// then, and a grace period (a producer's replacement, which is what may
/// free the ring) must never wait for it.
struct RingRoomWait {
    let ring: OpaquePointer
    let rcuReader: Bool
    let resumeRoom: Int
    let maxSleepMicros: Int
    let ticksPerMicro: UInt64
    /// The lcore's heartbeat: a wait for room is a turn of the loop, not a hang.
    let heartbeat: UnsafeMutablePointer<UInt64>?
    private var lastWaitMicros: UInt64 = 0

    /// However long the ring took to drain last time, a first sleep lasts no
    /// longer than this: the ring must not run empty while Kafka recovers.
    static let longestFirstSleepMicros: UInt64 = 1000
    /// Under the drop policy a wait ends after this long even if the ring is
    /// still full, so that the worker keeps receiving (and counting) packets.
    static let longestDropWaitMicros: UInt64 = 1000

    /// A full ring's receive worker resumes once this much of it is free: half. Three quarters (fewer
    /// wake-ups) made no difference beyond this host's noise (Performance.md, "Levers for the 64-byte gap").
    static func resumeRoom(capacity: Int) -> Int { max(1, capacity / 2) }

    init(
        ring: OpaquePointer,
        maxSleepMicros: Int,
        rcuReader: Bool,
        heartbeat: UnsafeMutablePointer<UInt64>? = nil
    ) {
        self.ring = ring
        self.heartbeat = heartbeat
        self.rcuReader = rcuReader
        resumeRoom = Self.resumeRoom(capacity: Int(rte_ring_get_capacity(ring)))
        self.maxSleepMicros = maxSleepMicros
        ticksPerMicro = max(1, rte_get_tsc_hz() / 1_000_000)
    }

    /// Waits until the ring has room for `wanted` packets, or half of it is
    /// free, or `flag` is set, or `atMostMicros` have passed. Returns how many
    /// times it slept or spun.
    @inline(__always)
    mutating func wait(
        forRoom wanted: Int,
        unless flag: UnsafeMutablePointer<UInt32>,
        atMostMicros: UInt64 = .max
    ) -> UInt64 {
        let room = min(wanted, resumeRoom)
        guard Int(rte_ring_free_count(ring)) < room else { return 0 }
        if rcuReader { CURCU_rcu_thread_offline() }
        defer { if rcuReader { CURCU_rcu_thread_online() } }
        let started = CDPDK_rte_rdtsc()
        let deadline = atMostMicros == .max ? UInt64.max : started &+ atMostMicros * ticksPerMicro
        var waits: UInt64 = 0
        if maxSleepMicros > 0 && lastWaitMicros > 1 {
            waits += 1
            usleep(UInt32(min(lastWaitMicros / 2, Self.longestFirstSleepMicros, atMostMicros)))
        }
        var backoff = IdleBackoff(spinPolls: 8, maxSleepMicros: maxSleepMicros, rcuReader: false)
        while Int(rte_ring_free_count(ring)) < room && fastcapa_flag_load(flag) == 0 && CDPDK_rte_rdtsc() < deadline {
            waits += 1
            if let heartbeat { fastcapa_counter_add(heartbeat, 1) }
            backoff.idle()
        }
        lastWaitMicros = (CDPDK_rte_rdtsc() - started) / ticksPerMicro
        return waits
    }
}
