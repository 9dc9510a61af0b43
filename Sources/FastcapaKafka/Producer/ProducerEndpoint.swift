import CFastcapaShared
import CRdKafka
import Glibc

/// What a transmit lcore holds of a producer: its raw librdkafka handles and
/// context, copied into the worker's RCU record so that the lcore never retains
/// or releases anything. These are the only librdkafka calls made on an lcore,
/// and each is inlined into the transmit loop.
package struct ProducerEndpoint {
    @usableFromInline let kafka: OpaquePointer
    @usableFromInline let topic: OpaquePointer
    @usableFromInline let context: UnsafeMutablePointer<fastcapa_producer_context>

    package init(_ generation: ProducerGeneration) {
        kafka = generation.producer.handle
        topic = generation.producer.topic
        context = generation.context
    }

    /// librdkafka reported a fatal error: this producer will never deliver again.
    @inlinable package var isFatal: Bool { fastcapa_counter_load(&context.pointee.fatal) != 0 }

    /// The topic's partition count as the partitioner last saw it; 0 until it has run.
    @inlinable package var knownPartitions: UInt { UInt(fastcapa_counter_load(&context.pointee.partition_count)) }

    /// Serves delivery reports, with the clock read once for all of them.
    @inlinable package func serveDeliveryReports() {
        fastcapa_counter_store(&context.pointee.poll_time_us, Self.nowMicros())
        rd_kafka_poll(kafka, 0)
    }

    /// librdkafka's queue is full: waits up to 1 ms for room. The thread that
    /// serves the reports makes room by serving them; otherwise (a report
    /// thread serves them) it sleeps in short steps until the queue shrinks.
    @inlinable package func waitForQueueRoom(servingReports: Bool) {
        if servingReports {
            fastcapa_counter_store(&context.pointee.poll_time_us, 0)
            rd_kafka_poll(kafka, 1)
            return
        }
        let queued = rd_kafka_outq_len(kafka)
        for _ in 0..<10 {
            usleep(100)
            if rd_kafka_outq_len(kafka) < queued { return }
        }
    }

    /// Produces one message (copied), keyed by `key` (the contract's), letting the
    /// partitioner place it by `hint`. Returns why it was refused, or nil.
    @inlinable package func produce(
        _ payload: UnsafeRawPointer,
        length: Int,
        key: UnsafeRawPointer,
        hint: UInt
    ) -> ProduceRefusal? {
        let status = rd_kafka_produce(
            topic,
            Self.unassignedPartition,
            RD_KAFKA_MSG_F_COPY,
            UnsafeMutableRawPointer(mutating: payload),
            length,
            key,
            MessageContract.keyLength,
            UnsafeMutableRawPointer(bitPattern: hint)
        )
        return status == 0 ? nil : ProduceRefusal(rd_kafka_last_error())
    }

    /// Produces messages [start, start + count) of `batch` (copied) in one call.
    /// Returns how many librdkafka took; each refused one carries its reason.
    @inlinable package func produce(
        _ batch: MessageBatch,
        from start: Int,
        count: Int,
        placement: BatchPlacement
    ) -> Int {
        let partition: Int32
        var flags = RD_KAFKA_MSG_F_COPY
        switch placement {
        case .partitioner: partition = Self.unassignedPartition
        case .partition(let named): partition = named
        case .perMessage:
            partition = Self.unassignedPartition
            flags |= RD_KAFKA_MSG_F_PARTITION
        }
        return Int(rd_kafka_produce_batch(topic, partition, flags, batch.messages + start, Int32(count)))
    }

    /// RD_KAFKA_PARTITION_UA, a cast macro Swift does not import.
    @inlinable static var unassignedPartition: Int32 { -1 }

    /// Wall-clock now in epoch milliseconds: a message's timestamp.
    @inlinable package static func nowMillis() -> Int64 { Int64(nowMicros() / 1000) }

    /// Wall-clock now in epoch microseconds (vDSO, no system call).
    @inlinable static func nowMicros() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
    }
}

/// What the control plane's sampler reads of a worker's current producer, once
/// per sample, through the same RCU record as the lcore (so the generation cannot
/// be released while it reads). Nothing else off the owner thread touches a producer.
package struct ProducerSample: Sendable, Equatable {
    package var generation = 0
    package var fatal = false
    /// librdkafka's error text, once fatal.
    package var fatalReason: String?
    package var allBrokersDownReports: UInt64 = 0
    package var errorReports: UInt64 = 0
    /// Packets librdkafka holds, awaiting a report: its messages (rd_kafka_outq_len),
    /// or when bundling the packets of its bundles; after the shutdown flush, what
    /// it still held when the flush ended.
    package var kafkaQueued = 0
    /// Packets it failed that wait in the rescue buffer for a successor.
    package var kept = 0
    /// The slowest broker's average round trip in the latest statistics, ms (the monitor fills it in).
    package var roundTripMs: Double?
    package init() {}
}

extension ProducerEndpoint {
    /// Reads the producer's state for the sampler; hands librdkafka's statistics
    /// JSON, if a new one was posted, to `statistics`.
    package func sample(generation: Int, statistics: (String) -> Void) -> ProducerSample {
        var sample = ProducerSample()
        sample.generation = generation
        sample.fatal = isFatal
        if sample.fatal {
            var reason = [CChar](repeating: 0, count: 512)
            let code = rd_kafka_fatal_error(kafka, &reason, reason.count)
            sample.fatalReason = "\(String(cString: rd_kafka_err2name(code))): \(text(of: reason))"
        }
        sample.allBrokersDownReports = fastcapa_counter_load(&context.pointee.all_brokers_down)
        sample.errorReports = fastcapa_counter_load(&context.pointee.errors)
        sample.kafkaQueued =
            fastcapa_counter_load(&context.pointee.flushed) != 0
            ? Int(fastcapa_counter_load(&context.pointee.final_outstanding))
            : context.pointee.bundle_pool != nil
                ? Int(fastcapa_packets_load(&context.pointee.queued_packets)) : Int(rd_kafka_outq_len(kafka))
        sample.kept = Int(fastcapa_counter_load(&context.pointee.kept))
        let taken = fastcapa_mailbox_exchange(&context.pointee.statistics_json, 0)
        if let pointer = UnsafeMutablePointer<CChar>(bitPattern: UInt(taken)) {
            let json = String(cString: pointer)
            rd_kafka_mem_free(nil, pointer)
            statistics(json)
        }
        return sample
    }
}

/// Where a batch's messages go.
package enum BatchPlacement {
    /// The partitioner places each message by its hint.
    case partitioner
    /// Every message to this partition.
    case partition(Int32)
    /// Each message to the partition set in it.
    case perMessage
}

/// Why librdkafka refused a message: the one place a produce error becomes a
/// decision for the transmit worker.
package enum ProduceRefusal: Sendable, Equatable {
    /// Its queue is full: room comes as deliveries complete.
    case queueFull
    /// Larger than message.max.bytes.
    case tooLarge
    /// The producer failed fatally: it will never take another message.
    case fatal
    /// Anything else (unknown partition, topic...).
    case other

    @inlinable package init(_ error: rd_kafka_resp_err_t) {
        switch error {
        case RD_KAFKA_RESP_ERR__QUEUE_FULL: self = .queueFull
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE: self = .tooLarge
        case RD_KAFKA_RESP_ERR__FATAL: self = .fatal
        default: self = .other
        }
    }
}

/// One pre-allocated batch for rd_kafka_produce_batch: messages and their
/// keys. Nothing is allocated per burst. The owner deallocates it.
package struct MessageBatch {
    @usableFromInline let messages: UnsafeMutablePointer<rd_kafka_message_t>
    @usableFromInline let keys: UnsafeMutablePointer<MessageContract.Key>
    package let capacity: Int

    package init(capacity: Int) {
        self.capacity = capacity
        messages = .allocate(capacity: capacity)
        messages.initialize(repeating: rd_kafka_message_t(), count: capacity)
        keys = .allocate(capacity: capacity)
        keys.initialize(repeating: 0, count: capacity)
    }

    package func deallocate() {
        messages.deallocate()
        keys.deallocate()
    }

    /// Fills message `index`: `payload` is copied when produced; `captureNanos`
    /// (epoch ns) becomes the contract's key; `hint` places it under the partitioner.
    @inlinable package func set(
        _ index: Int,
        payload: UnsafeRawPointer,
        length: Int,
        captureNanos: UInt64,
        hint: UInt,
        partition: Int32
    ) {
        keys[index] = MessageContract.key(nanos: captureNanos)
        messages[index].payload = UnsafeMutableRawPointer(mutating: payload)
        messages[index].len = length
        messages[index].key = UnsafeMutableRawPointer(keys + index)
        messages[index].key_len = MessageContract.keyLength
        messages[index]._private = UnsafeMutableRawPointer(bitPattern: hint)
        messages[index].partition = partition
    }

    /// Why message `index` was refused by the last produce, or nil if it was taken.
    @inlinable package func refusal(at index: Int) -> ProduceRefusal? {
        let error = messages[index].err
        return error == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : ProduceRefusal(error)
    }

    @inlinable package func length(at index: Int) -> Int { messages[index].len }
    @inlinable package func partition(at index: Int) -> Int32 { messages[index].partition }
}
