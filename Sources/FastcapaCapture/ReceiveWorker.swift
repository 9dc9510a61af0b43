import CDPDK
import Glibc

/// Polls one receive queue and feeds its transmit ring.
///
/// Per burst: receive, re-burst while the queue keeps returning full bursts,
/// stamp each packet with its capture time, enqueue the lot. No allocation,
/// lock, log line or actor call in the loop.
public final class ReceiveWorker: @unchecked Sendable {
    let port: UInt16
    let queue: UInt16
    let ring: OpaquePointer
    let burst: Int
    let maxRebursts: Int
    let ringFull: CaptureSettings.RingFullPolicy
    let counters: UnsafeMutablePointer<cfc_rx_counters>
    let control: WorkerControl
    let captureTimeField: Int32
    let deviceTimestamp: DeviceTimestamp?
    let idleSpinPolls: Int
    let idleSleepMaxMicros: Int
    let packets: UnsafeMutablePointer<OpaquePointer?>

    init(port: UInt16, queue: UInt16, ring: OpaquePointer, settings: CaptureSettings,
         counters: UnsafeMutablePointer<cfc_rx_counters>, control: WorkerControl,
         captureTimeField: Int32, deviceTimestamp: DeviceTimestamp?) {
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
    }

    deinit { packets.deallocate() }

    /// The lcore entry point: `arg` is an unretained `ReceiveWorker`.
    static let entry: @convention(c) (UnsafeMutableRawPointer?) -> Int32 = { arg in
        Unmanaged<ReceiveWorker>.fromOpaque(arg!).takeUnretainedValue().run()
    }

    func run() -> Int32 {
        // Everything the loop touches, in locals.
        let port = self.port, queue = self.queue, ring = self.ring
        let burst = UInt16(self.burst), maxRebursts = self.maxRebursts
        let counters = self.counters, packets = self.packets
        let stop = control.flags + WorkerControl.stopReceiving
        let abandon = control.flags + WorkerControl.abandon
        let waitWhenFull = ringFull == .wait
        let resumeRoom = max(1, Int(rte_ring_get_capacity(ring)) / 2)
        let waitSpinPolls = 8
        let ticksPerMicro = max(1, rte_get_tsc_hz() / 1_000_000)
        var lastWaitMicros: UInt64 = 0
        let captureTimeField = self.captureTimeField
        let device = deviceTimestamp
        var clock = CaptureClock()
        var idle = IdleBackoff(spinPolls: idleSpinPolls, maxSleepMicros: idleSleepMaxMicros, rcuReader: false)

        while cfc_flag_load(stop) == 0 {
            var count = Int(rte_eth_rx_burst(port, queue, packets, burst))
            if count == 0 {
                idle.idle()
                continue
            }
            idle.reset()
            // The queue is under pressure while bursts come back full: read
            // again now and hand the ring one larger batch.
            var last = count
            var rebursts = 0
            while last == Int(burst) && rebursts < maxRebursts {
                cfc_counter_add(&counters.pointee.full_bursts, 1)
                last = Int(rte_eth_rx_burst(port, queue, packets + count, burst))
                count += last
                rebursts += 1
            }

            let now = clock.nowMicros()
            var bytes: UInt64 = 0
            for index in 0..<count {
                let packet = packets[index]
                bytes &+= UInt64(cfc_mbuf_pkt_len(packet))
                var captured = now
                if let device, cfc_mbuf_flags(packet) & device.flag != 0 {
                    captured = device.micros(cfc_mbuf_u64_field(packet, device.fieldOffset))
                }
                cfc_mbuf_set_u64_field(packet, captureTimeField, captured)
            }
            cfc_counter_add(&counters.pointee.received, UInt64(count))
            cfc_counter_add(&counters.pointee.received_bytes, bytes)
            cfc_counter_add(&counters.pointee.bursts, 1)

            var sent = enqueue(ring, packets, count)
            if sent < count && waitWhenFull {
                // Back-pressure: the transmit workers drain the ring; wait until
                // half of it is free again (or shutdown gives up on the backlog).
                // The cores go to the transmit workers and librdkafka, which are
                // what must catch up. Wake-ups cost: the first sleep is half as
                // long as the last wait was, then sleeps grow from 1 µs.
                let waitStarted = cfc_tsc()
                if idleSleepMaxMicros > 0 && lastWaitMicros > 1 {
                    cfc_counter_add(&counters.pointee.ring_full_waits, 1)
                    usleep(UInt32(min(lastWaitMicros / 2, Self.longestFirstWaitMicros)))
                }
                var backoff = IdleBackoff(spinPolls: waitSpinPolls, maxSleepMicros: idleSleepMaxMicros, rcuReader: false)
                while sent < count && cfc_flag_load(abandon) == 0 {
                    if Int(rte_ring_free_count(ring)) >= min(count - sent, resumeRoom) {
                        sent += enqueue(ring, packets + sent, count - sent)
                        continue
                    }
                    cfc_counter_add(&counters.pointee.ring_full_waits, 1)
                    backoff.idle()
                }
                lastWaitMicros = (cfc_tsc() - waitStarted) / ticksPerMicro
            }
            if sent < count {
                cfc_mbuf_free_bulk(packets + sent, UInt32(count - sent))
                cfc_counter_add(&counters.pointee.ring_full_drops, UInt64(count - sent))
            }
            cfc_counter_add(&counters.pointee.enqueued, UInt64(sent))
        }
        return 0
    }

    /// However long the ring took to drain last time, a first wait sleeps no
    /// longer than this: the ring must not run empty while Kafka recovers.
    static let longestFirstWaitMicros: UInt64 = 1000

    @inline(__always)
    private func enqueue(_ ring: OpaquePointer, _ packets: UnsafeMutablePointer<OpaquePointer?>, _ count: Int) -> Int {
        packets.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: count) {
            Int(rte_ring_enqueue_burst(ring, $0, UInt32(count), nil))
        }
    }
}
