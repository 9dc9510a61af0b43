import CDPDK
import CFastcapaShared
import CURCU
import Glibc

/// Polls one receive queue and feeds its transmit ring.
///
/// Per burst: receive, stamp each packet with its capture time (one clock read
/// per burst), re-burst while the queue keeps returning full bursts, run the
/// capture filter (read through RCU) and free what it rejects, enqueue the lot.
/// No allocation, lock, log line or actor call in the loop. The lcore is an RCU
/// (QSBR) reader of the filter: a quiescent state once per loop, offline while it sleeps.
package final class ReceiveWorker: @unchecked Sendable {
    let port: UInt16
    let queue: UInt16
    let ring: OpaquePointer
    let burst: Int
    let maxRebursts: Int
    let ringFull: CaptureSettings.RingFullPolicy
    let counters: UnsafeMutablePointer<fastcapa_rx_counters>
    let control: WorkerControl
    let captureTimeField: Int32
    let deviceTimestamp: DeviceTimestamp?
    let idleSpinPolls: Int
    let idleSleepMaxMicros: Int
    let packets: UnsafeMutablePointer<OpaquePointer?>
    /// The capture filter (shared by every receive worker).
    let filter: FilterSlot
    /// The filter's verdict per packet, and the packets it rejected (pre-allocated).
    let verdicts: UnsafeMutablePointer<UInt64>
    let rejected: UnsafeMutablePointer<OpaquePointer?>
    /// A full ring takes packets again once this much of it is free (`RingRoomWait.resumeRoom`).
    let resumeRoom: Int
    /// Under `drop`, receiving pauses for a full ring this long at most (`RingRoomWait.longestDropWaitMicros`).
    let longestPauseTicks: UInt64
    /// The lcore's heartbeat (set by the pipeline before launch): one per turn of the loop.
    var heartbeat = Heartbeats.unwatched

    init(
        port: UInt16,
        queue: UInt16,
        ring: OpaquePointer,
        settings: CaptureSettings,
        counters: UnsafeMutablePointer<fastcapa_rx_counters>,
        control: WorkerControl,
        captureTimeField: Int32,
        deviceTimestamp: DeviceTimestamp?,
        filter: FilterSlot
    ) {
        self.port = port
        self.queue = queue
        self.ring = ring
        self.burst = settings.rxBurst
        self.maxRebursts = settings.maxRebursts
        self.ringFull = settings.ringFull
        self.counters = counters
        self.control = control
        self.captureTimeField = captureTimeField
        self.deviceTimestamp = deviceTimestamp
        self.idleSpinPolls = settings.idleSpinPolls
        self.idleSleepMaxMicros = settings.idleSleepMaxMicros
        let capacity = settings.rxBurst * (1 + settings.maxRebursts)
        packets = .allocate(capacity: capacity)
        packets.initialize(repeating: nil, count: capacity)
        self.filter = filter
        verdicts = .allocate(capacity: capacity)
        verdicts.initialize(repeating: 0, count: capacity)
        rejected = .allocate(capacity: capacity)
        rejected.initialize(repeating: nil, count: capacity)
        resumeRoom = RingRoomWait.resumeRoom(capacity: Int(rte_ring_get_capacity(ring)))
        longestPauseTicks = RingRoomWait.longestDropWaitMicros * max(1, rte_get_tsc_hz() / 1_000_000)
    }

    deinit {
        packets.deallocate()
        verdicts.deallocate()
        rejected.deallocate()
    }

    /// The lcore entry point: `arg` is an unretained `ReceiveWorker`.
    static let entry: @convention(c) (UnsafeMutableRawPointer?) -> Int32 = { arg in
        Unmanaged<ReceiveWorker>.fromOpaque(arg!).takeUnretainedValue().run()
    }

    /// What the loop keeps from one turn to the next.
    struct LoopState {
        var clock = CaptureClock<TscTimeSource>()
        /// Packets [pendingStart, pendingEnd) of `packets` wait for ring room (`--ring-full wait`).
        var pendingStart = 0
        var pendingEnd = 0
        /// Under `drop`: when (TSC) receiving paused for a full ring; 0 while it runs.
        var pausedSince: UInt64 = 0
        var holdsPackets: Bool { pendingEnd > pendingStart }
    }

    func run() -> Int32 {
        CURCU_rcu_register_thread()
        defer { CURCU_rcu_unregister_thread() }
        let stop = control.flags + WorkerControl.stopReceiving
        let abandon = control.flags + WorkerControl.abandon
        let heartbeat = self.heartbeat
        var state = LoopState()
        var roomWait = RingRoomWait(
            ring: ring,
            maxSleepMicros: idleSleepMaxMicros,
            rcuReader: true,
            heartbeat: heartbeat
        )
        var idle = IdleBackoff(spinPolls: idleSpinPolls, maxSleepMicros: idleSleepMaxMicros, rcuReader: true)
        while true {
            fastcapa_counter_add(heartbeat, 1)
            // Holds no filter record from the last turn.
            CURCU_rcu_quiescent_state()
            switch step(&state) {
            case .worked: idle.reset()
            case .idle: idle.idle()
            case .needsRoom:
                // Sleeps, so that the CPU goes to the transmit workers and librdkafka, which must catch
                // up; the NIC's descriptors hold the next packets meanwhile (what they cannot hold the NIC
                // counts as missed). Packets held for the ring wait until it has room or the drain gives up
                // on them; a paused receive resumes at that room or after a millisecond: capture goes on.
                let waits =
                    state.holdsPackets
                    ? roomWait.wait(forRoom: state.pendingEnd - state.pendingStart, unless: abandon)
                    : roomWait.wait(forRoom: Int.max, unless: stop, atMostMicros: RingRoomWait.longestDropWaitMicros)
                countRoomWaits(waits)
            case .done: return 0
            }
        }
    }

    /// One turn of the loop: the packets a full ring refused enqueued (`--ring-full wait`), or a
    /// burst received and enqueued. A burst the ring cannot take whole is kept for it under `wait`;
    /// under `drop` the rest is freed and counted, and receiving pauses until
    /// `RingRoomWait.resumeRoom` is free or `RingRoomWait.longestDropWaitMicros` have passed.
    /// `.needsRoom` while the ring has too little room to go on: the caller waits as it can (a
    /// receive lcore sleeps, a co-scheduled one transmits). `.done` once receiving has stopped and
    /// nothing is held. Never sleeps. The caller is an online RCU reader and reports a quiescent
    /// state between steps.
    @inline(__always)
    func step(_ state: inout LoopState) -> WorkerStep {
        let counters = self.counters
        let packets = self.packets
        if state.holdsPackets {
            let left = state.pendingEnd - state.pendingStart
            if fastcapa_flag_load(control.flags + WorkerControl.abandon) != 0 {
                // The drain gave up on the backlog: count it.
                CDPDK_rte_pktmbuf_free_bulk(packets + state.pendingStart, UInt32(left))
                fastcapa_counter_add(&counters.pointee.ring_full_drops, UInt64(left))
                state.pendingStart = 0
                state.pendingEnd = 0
                return .worked
            }
            if Int(rte_ring_free_count(ring)) < min(left, resumeRoom) { return .needsRoom }
            let sent = enqueue(ring, packets + state.pendingStart, left)
            fastcapa_counter_add(&counters.pointee.enqueued, UInt64(sent))
            state.pendingStart += sent
            if !state.holdsPackets {
                state.pendingStart = 0
                state.pendingEnd = 0
            }
            return .worked
        }
        if fastcapa_flag_load(control.flags + WorkerControl.stopReceiving) != 0 { return .done }
        if state.pausedSince != 0 {
            if Int(rte_ring_free_count(ring)) < resumeRoom && CDPDK_rte_rdtsc() &- state.pausedSince < longestPauseTicks
            {
                return .needsRoom
            }
            state.pausedSince = 0
        }
        guard let count = receiveBurst(&state.clock) else { return .idle }
        if count == 0 { return .worked }
        let sent = enqueue(ring, packets, count)
        fastcapa_counter_add(&counters.pointee.enqueued, UInt64(sent))
        if sent < count {
            if ringFull == .wait {
                state.pendingStart = sent
                state.pendingEnd = count
            } else {
                CDPDK_rte_pktmbuf_free_bulk(packets + sent, UInt32(count - sent))
                fastcapa_counter_add(&counters.pointee.ring_full_drops, UInt64(count - sent))
                state.pausedSince = CDPDK_rte_rdtsc()
            }
        }
        return .worked
    }

    /// Counts waits for ring room (sleeps, spins or co-scheduled turns).
    @inline(__always)
    func countRoomWaits(_ waits: UInt64) {
        fastcapa_counter_add(&counters.pointee.ring_full_waits, waits)
    }

    /// Receives a burst into `packets` (nil when the queue had none): stamps
    /// each packet with its capture time (one clock read per burst), re-bursts
    /// while the queue keeps returning full bursts, counts, and runs the capture
    /// filter (read through RCU), freeing what it rejects. Returns how many
    /// packets, in order at the start of `packets`, go on to the ring.
    @inline(__always)
    func receiveBurst(_ clock: inout CaptureClock<TscTimeSource>) -> Int? {
        let counters = self.counters
        let packets = self.packets
        let burst = UInt16(self.burst)
        var count = Int(rte_eth_rx_burst(port, queue, packets, burst))
        if count == 0 { return nil }
        // Each burst's packets share the clock read right after it returned.
        var bytes = stamp(packets, count, at: clock.nowMicros(), deviceTimestamp, captureTimeField)
        // The queue is under pressure while bursts come back full: read
        // again now and hand the ring one larger batch.
        var last = count
        var rebursts = 0
        while last == Int(burst) && rebursts < maxRebursts {
            fastcapa_counter_add(&counters.pointee.full_bursts, 1)
            last = Int(rte_eth_rx_burst(port, queue, packets + count, burst))
            if last > 0 {
                bytes &+= stamp(packets + count, last, at: clock.nowMicros(), deviceTimestamp, captureTimeField)
            }
            count += last
            rebursts += 1
        }
        fastcapa_counter_add(&counters.pointee.received, UInt64(count))
        fastcapa_counter_add(&counters.pointee.received_bytes, bytes)
        fastcapa_counter_add(&counters.pointee.bursts, 1)

        // The capture filter: what it rejects is freed here and counted
        // as filtered (not a drop); the rest goes on, in order.
        guard let record = CURCU_rcu_dereference(filter.pointer) else { return count }
        let verdict = PacketFilter.apply(
            record.assumingMemoryBound(to: FilterRecord.self),
            packets,
            count,
            verdicts: verdicts,
            rejected: rejected
        )
        if verdict.rejected > 0 {
            fastcapa_counter_add(&counters.pointee.filtered, UInt64(verdict.rejected))
        }
        return verdict.kept
    }

    /// Writes each packet's capture time (the device's, when it stamped the
    /// packet; else `now`) and returns the packets' bytes.
    @inline(__always)
    private func stamp(
        _ packets: UnsafeMutablePointer<OpaquePointer?>,
        _ count: Int,
        at now: UInt64,
        _ device: DeviceTimestamp?,
        _ captureTimeField: Int32
    ) -> UInt64 {
        var bytes: UInt64 = 0
        for index in 0..<count {
            let packet = packets[index]
            bytes &+= UInt64(CDPDK_rte_mbuf_pkt_len(packet))
            var captured = now
            if let device, CDPDK_rte_mbuf_ol_flags(packet) & device.flag != 0 {
                captured = device.micros(CDPDK_RTE_MBUF_DYNFIELD_u64(packet, device.fieldOffset))
            }
            CDPDK_RTE_MBUF_DYNFIELD_set_u64(packet, captureTimeField, captured)
        }
        return bytes
    }

    @inline(__always)
    func enqueue(_ ring: OpaquePointer, _ packets: UnsafeMutablePointer<OpaquePointer?>, _ count: Int) -> Int {
        packets.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: count) {
            Int(rte_ring_enqueue_burst(ring, $0, UInt32(count), nil))
        }
    }
}
