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

    func run() -> Int32 {
        CURCU_rcu_register_thread()
        defer { CURCU_rcu_unregister_thread() }
        let counters = self.counters
        let packets = self.packets
        let stop = control.flags + WorkerControl.stopReceiving
        let abandon = control.flags + WorkerControl.abandon
        let waitWhenFull = ringFull == .wait
        let heartbeat = self.heartbeat
        var roomWait = RingRoomWait(
            ring: ring,
            maxSleepMicros: idleSleepMaxMicros,
            rcuReader: true,
            heartbeat: heartbeat
        )
        var clock = CaptureClock<TscTimeSource>()
        var idle = IdleBackoff(spinPolls: idleSpinPolls, maxSleepMicros: idleSleepMaxMicros, rcuReader: true)

        while fastcapa_flag_load(stop) == 0 {
            fastcapa_counter_add(heartbeat, 1)
            // Holds no filter record from the last burst.
            CURCU_rcu_quiescent_state()
            guard let count = receiveBurst(&clock) else {
                idle.idle()
                continue
            }
            idle.reset()
            if count == 0 { continue }

            var sent = enqueue(ring, packets, count)
            if sent < count && waitWhenFull {
                // Back-pressure: keep the packets and wait for room (or until
                // shutdown gives up on the backlog).
                while sent < count && fastcapa_flag_load(abandon) == 0 {
                    let waits = roomWait.wait(forRoom: count - sent, unless: abandon)
                    fastcapa_counter_add(&counters.pointee.ring_full_waits, waits)
                    sent += enqueue(ring, packets + sent, count - sent)
                }
            }
            fastcapa_counter_add(&counters.pointee.enqueued, UInt64(sent))
            if sent < count {
                CDPDK_rte_pktmbuf_free_bulk(packets + sent, UInt32(count - sent))
                fastcapa_counter_add(&counters.pointee.ring_full_drops, UInt64(count - sent))
                // Polling on only to free what the full ring refuses would take
                // the CPU the transmit workers and librdkafka need to catch up:
                // wait for room instead, while the NIC's descriptors hold the
                // next packets (what they cannot hold the NIC counts as missed),
                // but never longer than a millisecond: capture goes on.
                let waits = roomWait.wait(
                    forRoom: Int.max,
                    unless: stop,
                    atMostMicros: RingRoomWait.longestDropWaitMicros
                )
                fastcapa_counter_add(&counters.pointee.ring_full_waits, waits)
            }
        }
        return 0
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
