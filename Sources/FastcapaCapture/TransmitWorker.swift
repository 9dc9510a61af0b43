import CDPDK
import CRdKafka
import CURCU
import FastcapaKafka

/// Drains one transmit ring into Kafka: one message per packet, keyed by the
/// packet's capture time (8 bytes, epoch microseconds, big-endian).
///
/// Per burst: dequeue, produce each packet (copied by librdkafka), free the
/// burst, serve delivery reports. The producer is read through its RCU slot
/// once per burst, so a supervisor can swap it without stopping the loop.
public final class TransmitWorker: @unchecked Sendable {
    let ring: OpaquePointer
    let burst: Int
    let snapLength: Int
    let queueFullRetries: Int
    let flowPartitioning: Bool
    let counters: UnsafeMutablePointer<cfc_tx_counters>
    let control: WorkerControl
    let captureTimeField: Int32
    let idleSpinPolls: Int
    let idleSleepMaxMicros: Int
    public let producer: ProducerSlot
    let packets: UnsafeMutablePointer<OpaquePointer?>
    /// Where multi-segment frames are gathered into one contiguous message.
    let scratch: UnsafeMutableRawPointer

    init(ring: OpaquePointer, settings: CaptureSettings, counters: UnsafeMutablePointer<cfc_tx_counters>,
         control: WorkerControl, captureTimeField: Int32, producer: KafkaProducer) {
        self.ring = ring
        self.burst = settings.txBurst
        self.snapLength = settings.snapLength
        self.queueFullRetries = settings.queueFullRetries
        self.flowPartitioning = settings.partitioning == .flow
        self.counters = counters
        self.control = control
        self.captureTimeField = captureTimeField
        self.idleSpinPolls = settings.idleSpinPolls
        self.idleSleepMaxMicros = settings.idleSleepMaxMicros
        self.producer = ProducerSlot(producer)
        packets = .allocate(capacity: settings.txBurst)
        packets.initialize(repeating: nil, count: settings.txBurst)
        scratch = .allocate(byteCount: max(settings.snapLength, 1), alignment: 64)
    }

    deinit {
        packets.deallocate()
        scratch.deallocate()
    }

    static let entry: @convention(c) (UnsafeMutableRawPointer?) -> Int32 = { arg in
        Unmanaged<TransmitWorker>.fromOpaque(arg!).takeUnretainedValue().run()
    }

    /// Counts each delivery report against the worker whose counters are `opaque`.
    /// Runs inside rd_kafka_poll/flush on the thread that polls: the worker's
    /// lcore while it runs, the control plane's thread after it stopped.
    public static let deliveryReport: KafkaProducer.DeliveryCallback = { _, message, opaque in
        guard let message, let opaque else { return }
        let counters = opaque.assumingMemoryBound(to: cfc_tx_counters.self)
        if crk_message_error(message) == RD_KAFKA_RESP_ERR_NO_ERROR {
            cfc_counter_add(&counters.pointee.delivered, 1)
            cfc_counter_add(&counters.pointee.delivered_bytes, UInt64(crk_message_length(message)))
        } else {
            cfc_counter_add(&counters.pointee.delivery_failed, 1)
        }
    }

    /// librdkafka's statistics JSON (every statistics.interval.ms, from rd_kafka_poll
    /// on the lcore): kept and posted to the worker's mailbox for the control
    /// plane to write out; an older one nobody took is freed. No I/O on the lcore.
    public static let statistics: KafkaProducer.StatisticsCallback = { kafka, json, _, opaque in
        guard let json, let opaque else { return 0 }
        let counters = opaque.assumingMemoryBound(to: cfc_tx_counters.self)
        let old = cfc_mailbox_exchange(&counters.pointee.statistics_json, UInt64(UInt(bitPattern: json)))
        if let stale = UnsafeMutableRawPointer(bitPattern: UInt(old)) { rd_kafka_mem_free(kafka, stale) }
        return 1
    }

    /// Takes the latest statistics JSON a worker posted, if any.
    public func takeStatistics() -> String? {
        let taken = cfc_mailbox_exchange(&counters.pointee.statistics_json, 0)
        guard let pointer = UnsafeMutablePointer<CChar>(bitPattern: UInt(taken)) else { return nil }
        defer { rd_kafka_mem_free(nil, pointer) }
        return String(cString: pointer)
    }

    /// Flow partitioning: the message opaque carries the flow hash.
    public static let flowPartitioner: KafkaProducer.Partitioner = { _, _, _, partitionCount, _, messageOpaque in
        guard partitionCount > 0 else { return -1 }
        return Int32(truncatingIfNeeded: UInt(bitPattern: messageOpaque) % UInt(partitionCount))
    }

    func run() -> Int32 {
        cur_register_thread()
        defer { cur_unregister_thread() }
        let ring = self.ring, burst = UInt32(self.burst), packets = self.packets, counters = self.counters
        let drain = control.flags + WorkerControl.drain
        let abandon = control.flags + WorkerControl.abandon
        let slot = producer.pointer
        var idle = IdleBackoff(spinPolls: idleSpinPolls, maxSleepMicros: idleSleepMaxMicros, rcuReader: true)

        while true {
            cur_quiescent_state()
            let handles = cur_dereference(slot)!.assumingMemoryBound(to: ProducerHandles.self).pointee
            let count = packets.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: Int(burst)) {
                Int(rte_ring_dequeue_burst(ring, $0, burst, nil))
            }
            if count == 0 {
                rd_kafka_poll(handles.kafka, 0)
                // Receive workers have stopped and the ring is empty: done.
                if cfc_flag_load(drain) != 0 { break }
                idle.idle()
                continue
            }
            idle.reset()
            cfc_counter_add(&counters.pointee.dequeued, UInt64(count))
            if cfc_flag_load(abandon) != 0 {
                // The drain timeout ran out: count what is left instead of producing it.
                cfc_counter_add(&counters.pointee.drain_timeout_drops, UInt64(count))
            } else {
                for index in 0..<count {
                    produce(packets[index], handles)
                }
            }
            cfc_mbuf_free_bulk(packets, UInt32(count))
            rd_kafka_poll(handles.kafka, 0)
            cfc_counter_add(&counters.pointee.polls, 1)
        }
        return 0
    }

    /// Copies up to `limit` bytes of a segment chain into `scratch`, following
    /// the segments themselves (never trusting pkt_len alone), and returns how
    /// many bytes it copied.
    @inline(__always)
    private func gather(_ packet: OpaquePointer?, upTo limit: Int) -> Int {
        var copied = 0
        var segment: OpaquePointer? = packet
        while let current = segment, copied < limit {
            let take = min(Int(cfc_mbuf_data_len(current)), limit - copied)
            (scratch + copied).copyMemory(from: cfc_mbuf_data(current)!, byteCount: take)
            copied += take
            segment = cfc_mbuf_next(current)
        }
        return copied
    }

    @inline(__always)
    private func produce(_ packet: OpaquePointer?, _ handles: ProducerHandles) {
        let counters = self.counters
        let captured = Int(cfc_mbuf_pkt_len(packet))
        let length = min(captured, snapLength)
        let payload: UnsafeRawPointer
        let available: Int
        if cfc_mbuf_segments(packet) == 1 {
            available = Int(cfc_mbuf_data_len(packet))
            payload = UnsafeRawPointer(cfc_mbuf_data(packet)!)
        } else {
            // A chain (jumbo frame): gather it, since a message is one buffer.
            available = gather(packet, upTo: length)
            payload = UnsafeRawPointer(scratch)
        }
        if available < length {
            // The driver's segments hold less than the frame's length (net_pcap in
            // DPDK 22.11 does this to records over 65,535 bytes): never publish a
            // frame that is silently short.
            cfc_counter_add(&counters.pointee.malformed_drops, 1)
            return
        }
        if length < captured { cfc_counter_add(&counters.pointee.truncated, 1) }
        var opaque: UnsafeMutableRawPointer?
        if flowPartitioning {
            var valid = false
            var hash = cfc_mbuf_rss_hash(packet, &valid)
            if !valid {
                hash = FlowHash.hash(UnsafeRawBufferPointer(start: payload, count: length))
            }
            opaque = UnsafeMutableRawPointer(bitPattern: UInt(hash))
        }
        var key = cfc_mbuf_u64_field(packet, captureTimeField).bigEndian
        var retries = 0
        while true {
            let status = withUnsafeMutableBytes(of: &key) { keyBytes in
                rd_kafka_produce(
                    handles.topic, -1 /* RD_KAFKA_PARTITION_UA */, RD_KAFKA_MSG_F_COPY,
                    UnsafeMutableRawPointer(mutating: payload), length, keyBytes.baseAddress, 8, opaque)
            }
            if status == 0 {
                cfc_counter_add(&counters.pointee.produced, 1)
                cfc_counter_add(&counters.pointee.produced_bytes, UInt64(length))
                return
            }
            let error = rd_kafka_last_error()
            // Retry while the budget lasts, unless shutdown has given up on the backlog.
            if error == RD_KAFKA_RESP_ERR__QUEUE_FULL && retries < queueFullRetries
                && cfc_flag_load(control.flags + WorkerControl.abandon) == 0 {
                // librdkafka's queue is full: serve delivery reports for up to 1 ms
                // to make room. Offline meanwhile: a grace period need not wait for us.
                retries += 1
                cfc_counter_add(&counters.pointee.queue_full_retries, 1)
                cur_thread_offline()
                rd_kafka_poll(handles.kafka, 1)
                cur_thread_online()
                continue
            }
            switch error {
            case RD_KAFKA_RESP_ERR__QUEUE_FULL: cfc_counter_add(&counters.pointee.queue_full_drops, 1)
            case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE: cfc_counter_add(&counters.pointee.too_large_drops, 1)
            default: cfc_counter_add(&counters.pointee.produce_error_drops, 1)
            }
            return
        }
    }
}
