import CDPDK
import CRdKafka
import CURCU
import FastcapaKafka
import Glibc

/// Drains one transmit ring into Kafka: one message per packet, keyed by the
/// packet's capture time (8 bytes, epoch microseconds, big-endian).
///
/// Per burst: read the producer and live settings through RCU, dequeue,
/// produce the packets in one `rd_kafka_produce_batch` call (copied by
/// librdkafka; a chained frame is gathered and produced on its own), free the
/// burst, serve delivery reports. When librdkafka reports a fatal error the worker stops dequeuing
/// (the ring absorbs the gap) and keeps the rest of its burst until the
/// supervisor has swapped in a new producer.
public final class TransmitWorker: @unchecked Sendable {
    public let index: Int
    let ring: OpaquePointer
    let burst: Int
    let partitioning: CaptureSettings.Partitioning
    let produceCall: CaptureSettings.ProduceCall
    let deliveryReports: CaptureSettings.DeliveryReports
    let counters: UnsafeMutablePointer<cfc_tx_counters>
    /// Where retired producers count their delivery reports (written only by the
    /// supervisor's thread that retires them).
    let retiredCounters: CounterBlock<cfc_tx_counters>
    let control: WorkerControl
    let captureTimeField: Int32
    let idleSpinPolls: Int
    let idleSleepMaxMicros: Int
    let topic: String
    let nullSink: Bool
    public let producer: ProducerSlot
    let packets: UnsafeMutablePointer<OpaquePointer?>
    /// Where multi-segment frames are gathered into one contiguous message.
    let scratch: UnsafeMutableRawPointer
    let scratchSize: Int
    /// One batch for rd_kafka_produce_batch: messages, their keys, and the
    /// packet each came from (pre-allocated: nothing is allocated per burst).
    let messages: UnsafeMutablePointer<rd_kafka_message_t>
    let keys: UnsafeMutablePointer<UInt64>
    let sources: UnsafeMutablePointer<Int>
    /// Numbers the batches: the default partitioner sends batch n to partition n % partitions.
    var batchSequence: UInt
    /// Every this many batches go through the partitioner, which notices added partitions.
    static let partitionRefreshBatches: UInt = 1024

    init(index: Int, ring: OpaquePointer, settings: CaptureSettings, counters: UnsafeMutablePointer<cfc_tx_counters>,
         control: WorkerControl, captureTimeField: Int32, kafka: KafkaProperties) throws {
        self.index = index
        self.ring = ring
        self.burst = settings.txBurst
        self.partitioning = settings.partitioning
        self.produceCall = settings.produceCall
        self.deliveryReports = settings.deliveryReports
        self.counters = counters
        self.retiredCounters = CounterBlock(count: 1)
        self.control = control
        self.captureTimeField = captureTimeField
        self.idleSpinPolls = settings.idleSpinPolls
        self.idleSleepMaxMicros = settings.idleSleepMaxMicros
        self.topic = settings.topic
        self.nullSink = settings.sink == .null
        let first = try ProducerGeneration(
            number: 1, properties: kafka, topic: settings.topic, clientID: "fastcapa-tx\(index)",
            deliveries: counters, partitioning: settings.partitioning, deliveryReports: settings.deliveryReports)
        first.resumeDeliveryReports()
        self.producer = ProducerSlot(first, live: LiveSettings(settings))
        messages = .allocate(capacity: settings.txBurst)
        messages.initialize(repeating: rd_kafka_message_t(), count: settings.txBurst)
        keys = .allocate(capacity: settings.txBurst)
        keys.initialize(repeating: 0, count: settings.txBurst)
        sources = .allocate(capacity: settings.txBurst)
        sources.initialize(repeating: 0, count: settings.txBurst)
        // Workers start on different partitions.
        batchSequence = UInt(index)
        packets = .allocate(capacity: settings.txBurst)
        packets.initialize(repeating: nil, count: settings.txBurst)
        // Large enough for any snap length a reload may set.
        scratchSize = CaptureSettings.maxSnapLength
        scratch = .allocate(byteCount: scratchSize, alignment: 64)
    }

    deinit {
        packets.deallocate()
        scratch.deallocate()
        messages.deallocate()
        keys.deallocate()
        sources.deallocate()
    }

    /// The worker's counters, including its retired producers' delivery reports.
    public func counts() -> TransmitCounts {
        cfc_tx_counters.sample(counters) + cfc_tx_counters.sample(retiredCounters[0])
    }

    /// A new producer generation for this worker (not yet published).
    public func makeGeneration(kafka: KafkaProperties) throws -> ProducerGeneration {
        try ProducerGeneration(
            number: producer.generation.number + 1, properties: kafka, topic: topic, clientID: "fastcapa-tx\(index)",
            deliveries: counters, partitioning: partitioning, deliveryReports: deliveryReports)
    }

    static let entry: @convention(c) (UnsafeMutableRawPointer?) -> Int32 = { arg in
        Unmanaged<TransmitWorker>.fromOpaque(arg!).takeUnretainedValue().run()
    }

    func run() -> Int32 {
        cur_register_thread()
        defer { cur_unregister_thread() }
        let ring = self.ring, burst = UInt32(self.burst), packets = self.packets, counters = self.counters
        let drain = control.flags + WorkerControl.drain
        let abandon = control.flags + WorkerControl.abandon
        let slot = producer.pointer
        let nullSink = self.nullSink
        var idle = IdleBackoff(spinPolls: idleSpinPolls, maxSleepMicros: idleSleepMaxMicros, rcuReader: true)
        // Packets [pendingStart, pendingEnd) of `packets` wait for a working producer.
        var pendingStart = 0
        var pendingEnd = 0

        while true {
            cur_quiescent_state()
            let record = cur_dereference(slot)!.assumingMemoryBound(to: WorkerRecord.self).pointee
            let giveUp = cfc_flag_load(abandon) != 0

            if giveUp && pendingEnd > pendingStart {
                // The drain timeout ran out while a producer was down: count the rest.
                cfc_counter_add(&counters.pointee.drain_timeout_drops, UInt64(pendingEnd - pendingStart))
                cfc_mbuf_free_bulk(packets + pendingStart, UInt32(pendingEnd - pendingStart))
                pendingStart = 0
                pendingEnd = 0
            }
            if !giveUp && cfc_counter_load(&record.context.pointee.fatal) != 0 {
                // This producer is dead: leave packets in the ring until the
                // supervisor publishes its successor, and its failed messages in
                // its queue for the successor (no more polling it here).
                cfc_counter_add(&counters.pointee.paused_polls, 1)
                idle.idle()
                continue
            }

            if pendingEnd == pendingStart {
                let count = packets.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: Int(burst)) {
                    Int(rte_ring_dequeue_burst(ring, $0, burst, nil))
                }
                if count == 0 {
                    poll(record)
                    // Receive workers have stopped and the ring is empty: done.
                    if cfc_flag_load(drain) != 0 { break }
                    idle.idle()
                    continue
                }
                cfc_counter_add(&counters.pointee.dequeued, UInt64(count))
                pendingStart = 0
                pendingEnd = count
                if nullSink {
                    cfc_counter_add(&counters.pointee.null_sink_drops, UInt64(count))
                    cfc_mbuf_free_bulk(packets, UInt32(count))
                    pendingEnd = 0
                    continue
                }
                if giveUp {
                    // The drain timeout ran out: count what is left instead of producing it.
                    cfc_counter_add(&counters.pointee.drain_timeout_drops, UInt64(count))
                    cfc_mbuf_free_bulk(packets, UInt32(count))
                    pendingEnd = 0
                    continue
                }
            }
            idle.reset()

            let index = produceCall == .batch
                ? produceBatches(pendingStart, pendingEnd, record, giveUp: giveUp)
                : produceEach(pendingStart, pendingEnd, record, giveUp: giveUp)
            cfc_mbuf_free_bulk(packets + pendingStart, UInt32(index - pendingStart))
            pendingStart = index
            if pendingStart == pendingEnd {
                pendingStart = 0
                pendingEnd = 0
            }
            poll(record)
        }
        return 0
    }

    /// Serves delivery reports, with the clock read once for all of them
    /// (unless a thread of the producer's own serves them).
    @inline(__always)
    private func poll(_ record: WorkerRecord) {
        guard deliveryReports == .lcore else { return }
        cfc_counter_store(&record.context.pointee.poll_time_us, cfc_now_us())
        rd_kafka_poll(record.kafka, 0)
    }

    /// librdkafka's queue is full: waits up to 1 ms for room. On the lcore that
    /// means serving delivery reports; when a thread serves them, sleeping in
    /// short steps until the queue shrinks.
    @inline(__always)
    private func waitForQueueRoom(_ record: WorkerRecord) {
        if deliveryReports == .lcore {
            cfc_counter_store(&record.context.pointee.poll_time_us, 0)
            rd_kafka_poll(record.kafka, 1)
            return
        }
        let queued = rd_kafka_outq_len(record.kafka)
        for _ in 0..<10 {
            usleep(100)
            if rd_kafka_outq_len(record.kafka) < queued { return }
        }
    }

    /// The partition hint of a packet: its flow hash under flow partitioning,
    /// else the batch's sequence number (the partitioner takes it modulo the
    /// partition count).
    @inline(__always)
    private func hint(_ packet: OpaquePointer?, _ payload: UnsafeRawPointer, _ length: Int, batch: UInt) -> UInt {
        guard partitioning == .flow else { return batch }
        var valid = false
        let hash = cfc_mbuf_rss_hash(packet, &valid)
        return UInt(valid ? hash : FlowHash.hash(UnsafeRawBufferPointer(start: payload, count: length)))
    }

    /// Produces packets [start, end) of the burst one rd_kafka_produce call each.
    /// Returns the first packet it could not hand over because the producer
    /// failed fatally (`end` when none).
    private func produceEach(_ start: Int, _ end: Int, _ record: WorkerRecord, giveUp: Bool) -> Int {
        let batch = batchSequence
        batchSequence &+= 1
        var index = start
        while index < end && produceOne(packets[index], record, batch: batch, giveUp: giveUp) {
            index += 1
        }
        return index
    }

    /// Produces packets [start, end) of the burst in rd_kafka_produce_batch
    /// calls: single-segment frames straight from their mbufs, a chained frame
    /// on its own through the gather buffer. Returns the first packet it could
    /// not hand over because the producer failed fatally (`end` when none).
    private func produceBatches(_ start: Int, _ end: Int, _ record: WorkerRecord, giveUp: Bool) -> Int {
        let counters = self.counters, messages = self.messages
        var index = start
        while index < end {
            let batch = batchSequence
            batchSequence &+= 1
            if !fitsBatch(packets[index], record) {
                // A chain, or a frame its segment cannot hold: on its own.
                guard produceOne(packets[index], record, batch: batch, giveUp: giveUp) else { return index }
                index += 1
                continue
            }
            // Name the partition here once the partitioner has told us how many
            // there are (each batch but every 1024th); otherwise let it choose.
            let partitions = UInt(cfc_counter_load(&record.context.pointee.partition_count))
            let named = partitions > 0 && partitioning != .key && batch % Self.partitionRefreshBatches != 0
            var count = 0
            var bytes = 0
            var truncated = 0
            while index < end, let packet = packets[index], fitsBatch(packet, record) {
                let captured = Int(cfc_mbuf_pkt_len(packet))
                let length = min(captured, record.snapLength)
                let payload = UnsafeMutableRawPointer(mutating: cfc_mbuf_data(packet)!)
                let partitionHint = hint(packet, payload, length, batch: batch)
                keys[count] = cfc_mbuf_u64_field(packet, captureTimeField).bigEndian
                messages[count].payload = payload
                messages[count].len = length
                messages[count].key = UnsafeMutableRawPointer(keys + count)
                messages[count].key_len = 8
                messages[count]._private = UnsafeMutableRawPointer(bitPattern: partitionHint)
                messages[count].partition = named ? Int32(truncatingIfNeeded: partitionHint % max(partitions, 1)) : -1
                sources[count] = index
                bytes += length
                if length < captured { truncated += 1 }
                count += 1
                index += 1
            }
            // The default partitioner sends the whole batch to one partition:
            // librdkafka's single-partition path. Flow partitioning names one per message.
            let partition: Int32 = named && partitioning == .default ? messages[0].partition : -1
            let flags = RD_KAFKA_MSG_F_COPY | (named && partitioning == .flow ? RD_KAFKA_MSG_F_PARTITION : 0)
            let accepted = Int(rd_kafka_produce_batch(record.topic, partition, flags, messages, Int32(count)))
            if accepted == count {
                cfc_counter_add(&counters.pointee.produced, UInt64(count))
                cfc_counter_add(&counters.pointee.produced_bytes, UInt64(bytes))
                cfc_counter_add(&counters.pointee.truncated, UInt64(truncated))
                continue
            }
            if let unsent = settle(count, partition: partition, flags: flags, record, giveUp: giveUp) {
                return sources[unsent]
            }
        }
        return end
    }

    /// A frame that is produced straight from its one segment.
    @inline(__always)
    private func fitsBatch(_ packet: OpaquePointer?, _ record: WorkerRecord) -> Bool {
        cfc_mbuf_segments(packet) == 1 && Int(cfc_mbuf_data_len(packet)) >= min(Int(cfc_mbuf_pkt_len(packet)), record.snapLength)
    }

    /// Counts the outcome of a batch librdkafka did not take whole: retries
    /// what its queue refused (it refuses the rest of a batch once full) while
    /// the budget lasts, counts other refusals as drops. Returns the first
    /// message left for a successor when the producer has failed fatally.
    private func settle(_ count: Int, partition: Int32, flags: Int32, _ record: WorkerRecord, giveUp: Bool) -> Int? {
        let counters = self.counters
        var retries = 0
        var message = 0
        while message < count {
            let error = messages[message].err
            if error == RD_KAFKA_RESP_ERR_NO_ERROR {
                cfc_counter_add(&counters.pointee.produced, 1)
                cfc_counter_add(&counters.pointee.produced_bytes, UInt64(messages[message].len))
                if messages[message].len < Int(cfc_mbuf_pkt_len(packets[sources[message]])) {
                    cfc_counter_add(&counters.pointee.truncated, 1)
                }
                message += 1
                continue
            }
            if error == RD_KAFKA_RESP_ERR__FATAL && !giveUp {
                return message
            }
            if error == RD_KAFKA_RESP_ERR__QUEUE_FULL && retries < record.queueFullRetries
                && cfc_flag_load(control.flags + WorkerControl.abandon) == 0 {
                // Wait up to 1 ms for room, then offer the rest of the batch
                // again. The worker stays online: it still holds this record.
                retries += 1
                cfc_counter_add(&counters.pointee.queue_full_retries, 1)
                waitForQueueRoom(record)
                _ = rd_kafka_produce_batch(record.topic, partition, flags, messages + message, Int32(count - message))
                continue
            }
            switch error {
            case RD_KAFKA_RESP_ERR__QUEUE_FULL: cfc_counter_add(&counters.pointee.queue_full_drops, 1)
            case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE: cfc_counter_add(&counters.pointee.too_large_drops, 1)
            default: cfc_counter_add(&counters.pointee.produce_error_drops, 1)
            }
            message += 1
        }
        return nil
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

    /// Produces one packet, or counts why it could not. Returns false only when
    /// the producer has failed fatally: the packet is then kept for its successor.
    @inline(__always)
    private func produceOne(_ packet: OpaquePointer?, _ record: WorkerRecord, batch: UInt, giveUp: Bool) -> Bool {
        let counters = self.counters
        let captured = Int(cfc_mbuf_pkt_len(packet))
        let length = min(captured, record.snapLength, scratchSize)
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
            return true
        }
        let opaque = UnsafeMutableRawPointer(bitPattern: hint(packet, payload, length, batch: batch))
        var key = cfc_mbuf_u64_field(packet, captureTimeField).bigEndian
        var retries = 0
        while true {
            let status = withUnsafeMutableBytes(of: &key) { keyBytes in
                rd_kafka_produce(
                    record.topic, -1 /* RD_KAFKA_PARTITION_UA */, RD_KAFKA_MSG_F_COPY,
                    UnsafeMutableRawPointer(mutating: payload), length, keyBytes.baseAddress, 8, opaque)
            }
            if status == 0 {
                cfc_counter_add(&counters.pointee.produced, 1)
                cfc_counter_add(&counters.pointee.produced_bytes, UInt64(length))
                if length < captured { cfc_counter_add(&counters.pointee.truncated, 1) }
                return true
            }
            let error = rd_kafka_last_error()
            if error == RD_KAFKA_RESP_ERR__FATAL && !giveUp {
                return false
            }
            // librdkafka's queue is full: wait up to 1 ms for room, while the
            // budget lasts and shutdown has not given up. The worker stays
            // online: it still holds this record.
            if error == RD_KAFKA_RESP_ERR__QUEUE_FULL && retries < record.queueFullRetries
                && cfc_flag_load(control.flags + WorkerControl.abandon) == 0 {
                retries += 1
                cfc_counter_add(&counters.pointee.queue_full_retries, 1)
                waitForQueueRoom(record)
                continue
            }
            switch error {
            case RD_KAFKA_RESP_ERR__QUEUE_FULL: cfc_counter_add(&counters.pointee.queue_full_drops, 1)
            case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE: cfc_counter_add(&counters.pointee.too_large_drops, 1)
            default: cfc_counter_add(&counters.pointee.produce_error_drops, 1)
            }
            return true
        }
    }
}
