import CDPDK
import CRdKafka
import FastcapaKafka
import Glibc

/// One librdkafka producer of a transmit worker, with the context its
/// callbacks write to. A worker's first producer is generation 1; each
/// restart makes the next.
public final class ProducerGeneration: @unchecked Sendable {
    public let number: Int
    public private(set) var producer: KafkaProducer!
    let context: UnsafeMutablePointer<cfc_producer_context>
    let rescue: RescueBuffer
    /// Serves the reports under `--delivery-reports thread` (paused until resumed).
    private(set) var reportThread: DeliveryReportThread?

    /// Room for messages failed between a fatal error and the successor.
    public static let rescueCapacity = 4 << 20

    init(number: Int, properties: KafkaProperties, topic: String, clientID: String,
         deliveries: UnsafeMutablePointer<cfc_tx_counters>, partitioning: CaptureSettings.Partitioning,
         deliveryReports: CaptureSettings.DeliveryReports) throws {
        self.number = number
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, MemoryLayout<cfc_producer_context>.stride) == 0, let raw else {
            throw KafkaError(message: "out of memory for a producer context")
        }
        memset(raw, 0, MemoryLayout<cfc_producer_context>.stride)
        context = raw.bindMemory(to: cfc_producer_context.self, capacity: 1)
        context.pointee.deliveries = deliveries
        rescue = RescueBuffer(capacity: Self.rescueCapacity)
        context.pointee.rescue = Unmanaged.passUnretained(rescue).toOpaque()
        // Every stored property is set: if creating the producer or its thread
        // throws, deinit runs and frees what exists.
        producer = try KafkaProducer(
            properties: properties, topicName: topic, clientID: clientID,
            onDelivery: Self.deliveryReport, deliveryOpaque: UnsafeMutableRawPointer(context),
            partitioner: partitioning == .key ? nil : Self.hintPartitioner, partitionerOpaque: UnsafeMutableRawPointer(context),
            onStatistics: Self.statistics, onError: Self.error)
        if deliveryReports == .thread {
            reportThread = try DeliveryReportThread(kafka: producer.handle, context: context, name: "\(clientID)-dr")
        }
    }

    deinit {
        reportThread?.stop()
        producer = nil // destroys it (if it was created): no callback can run after this
        _ = takeStatistics() // frees what is left in the mailbox
        free(context)
    }

    /// Starts serving delivery reports on this producer's own thread, if it has one.
    func resumeDeliveryReports() { reportThread?.resume() }

    /// Stops this producer's delivery-report thread, if it has one: from then on
    /// whoever calls this may poll the producer.
    func stopDeliveryReports() { reportThread?.stop() }

    /// librdkafka reported a fatal error: this producer will never deliver again.
    public var isFatal: Bool { cfc_counter_load(&context.pointee.fatal) != 0 }
    public var allBrokersDownReports: UInt64 { cfc_counter_load(&context.pointee.all_brokers_down) }
    public var errorReports: UInt64 { cfc_counter_load(&context.pointee.errors) }

    /// The fatal error librdkafka recorded, if any.
    public var fatalError: KafkaError? {
        var reason = [CChar](repeating: 0, count: 512)
        let code = rd_kafka_fatal_error(producer.handle, &reason, reason.count)
        guard code != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return KafkaError(code: code, message: String(decoding: reason.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    /// Takes the latest statistics JSON librdkafka posted, if any.
    public func takeStatistics() -> String? {
        let taken = cfc_mailbox_exchange(&context.pointee.statistics_json, 0)
        guard let pointer = UnsafeMutablePointer<CChar>(bitPattern: UInt(taken)) else { return nil }
        defer { rd_kafka_mem_free(nil, pointer) }
        return String(cString: pointer)
    }

    // MARK: - librdkafka callbacks (on the thread that polls this producer: the
    // transmit lcore, its delivery-report thread, or a supervisor retiring it)

    /// Counts a delivery report. A retiring producer's failed messages are
    /// produced again to its successor instead (librdkafka hands back their
    /// payload and key): only what cannot be re-produced counts as failed.
    static let deliveryReport: KafkaProducer.DeliveryCallback = { _, message, opaque in
        guard let message, let opaque else { return }
        let context = opaque.assumingMemoryBound(to: cfc_producer_context.self)
        let counters = context.pointee.deliveries!
        let length = crk_message_length(message)
        if crk_message_error(message) == RD_KAFKA_RESP_ERR_NO_ERROR {
            cfc_counter_add(&counters.pointee.delivered, 1)
            cfc_counter_add(&counters.pointee.delivered_bytes, UInt64(length))
            if crk_message_key_length(message) == 8, let key = crk_message_key(message) {
                let captured = UInt64(bigEndian: key.loadUnaligned(as: UInt64.self))
                // The owner reads the clock once before each poll, not once per report.
                let polled = cfc_counter_load(&context.pointee.poll_time_us)
                let now = polled != 0 ? polled : cfc_now_us()
                cfc_record_latency(counters, now > captured ? now - captured : 0)
            }
            return
        }
        if let successor = context.pointee.successor_topic {
            if reproduce(OpaquePointer(successor), crk_message_payload(message), length, crk_message_key(message),
                         crk_message_key_length(message), crk_message_opaque(message)) {
                cfc_counter_add(&counters.pointee.reproduced, 1)
                return
            }
        } else if cfc_counter_load(&context.pointee.fatal) != 0, let rescue = context.pointee.rescue {
            // Failed by the fatal error before a successor exists: keep it for the successor.
            let buffer = Unmanaged<RescueBuffer>.fromOpaque(rescue).takeUnretainedValue()
            if buffer.keep(payload: crk_message_payload(message), length: length, key: crk_message_key(message),
                           keyLength: crk_message_key_length(message), opaque: crk_message_opaque(message)) {
                return
            }
        }
        cfc_counter_add(&counters.pointee.delivery_failed, 1)
    }

    /// Produces a message again to a successor's topic; false when it will not take it.
    static func reproduce(_ topic: OpaquePointer, _ payload: UnsafeRawPointer?, _ length: Int,
                          _ key: UnsafeRawPointer?, _ keyLength: Int, _ opaque: UnsafeMutableRawPointer?) -> Bool {
        for _ in 0..<1000 {
            let status = rd_kafka_produce(
                topic, -1, RD_KAFKA_MSG_F_COPY, UnsafeMutableRawPointer(mutating: payload), length, key, keyLength, opaque)
            if status == 0 { return true }
            // Only the successor's own lcore (or thread) polls it: wait for room, do not poll.
            guard rd_kafka_last_error() == RD_KAFKA_RESP_ERR__QUEUE_FULL else { return false }
            usleep(1000)
        }
        return false
    }

    /// Counts the rescued messages as failed: there will be no successor (shutdown).
    func failRescued() {
        let counters = context.pointee.deliveries!
        let count = rescue.count
        rescue.drain { _, _, _, _, _ in }
        cfc_counter_add(&counters.pointee.delivery_failed, UInt64(count))
    }

    /// Produces the rescued messages to the successor (retirement, off the lcore).
    func drainRescue(to successor: OpaquePointer) {
        let counters = context.pointee.deliveries!
        rescue.drain { payload, length, key, keyLength, opaque in
            if Self.reproduce(successor, payload, length, key, keyLength, opaque) {
                cfc_counter_add(&counters.pointee.reproduced, 1)
            } else {
                cfc_counter_add(&counters.pointee.delivery_failed, 1)
            }
        }
    }

    /// Records fatal errors and broker outages for the supervisor. No I/O here:
    /// this may run on the transmit lcore.
    static let error: KafkaProducer.ErrorCallback = { _, code, _, opaque in
        guard let opaque else { return }
        let context = opaque.assumingMemoryBound(to: cfc_producer_context.self)
        cfc_counter_add(&context.pointee.errors, 1)
        _ = cfc_mailbox_exchange(&context.pointee.last_error, UInt64(UInt32(bitPattern: code)))
        if code == RD_KAFKA_RESP_ERR__FATAL.rawValue {
            _ = cfc_mailbox_exchange(&context.pointee.fatal, 1)
        } else if code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN.rawValue {
            cfc_counter_add(&context.pointee.all_brokers_down, 1)
        }
    }

    /// Posts librdkafka's statistics JSON to the mailbox for the control plane;
    /// an older one nobody took is freed. No I/O on the lcore.
    static let statistics: KafkaProducer.StatisticsCallback = { kafka, json, _, opaque in
        guard let json, let opaque else { return 0 }
        let context = opaque.assumingMemoryBound(to: cfc_producer_context.self)
        let old = cfc_mailbox_exchange(&context.pointee.statistics_json, UInt64(UInt(bitPattern: json)))
        if let stale = UnsafeMutableRawPointer(bitPattern: UInt(old)) { rd_kafka_mem_free(kafka, stale) }
        return 1
    }

    /// The message opaque carries a partition hint (the flow hash, or the
    /// batch's sequence number): the partition is hint % partitions. It also
    /// records how many partitions there are, so that the transmit worker can
    /// name partitions itself and skip the partitioner (and its clock read)
    /// per message. Runs on the producing thread or librdkafka's main thread.
    static let hintPartitioner: KafkaProducer.Partitioner = { _, _, _, partitionCount, topicOpaque, messageOpaque in
        guard partitionCount > 0 else { return -1 }
        if let topicOpaque {
            let context = topicOpaque.assumingMemoryBound(to: cfc_producer_context.self)
            if cfc_counter_load(&context.pointee.partition_count) != UInt64(partitionCount) {
                cfc_counter_store(&context.pointee.partition_count, UInt64(partitionCount))
            }
        }
        return Int32(truncatingIfNeeded: UInt(bitPattern: messageOpaque) % UInt(partitionCount))
    }

    /// The topic's partition count as the partitioner last saw it; 0 until then.
    var partitionCount: Int { Int(cfc_counter_load(&context.pointee.partition_count)) }
}
