import CFastcapaShared
import CRdKafka
import Glibc

/// One librdkafka producer of a transmit worker, with the context its
/// callbacks write to. A worker's first producer is generation 1; each
/// restart or reload makes the next.
package final class ProducerGeneration: @unchecked Sendable {
    /// Who places messages in partitions.
    package enum Partitioner: Sendable {
        /// The message opaque carries a hint (a flow hash or a batch number): partition = hint % partitions.
        case hint
        /// librdkafka's own partitioner on the key.
        case librdkafka
    }

    /// Who serves the producer's delivery reports.
    package enum ReportServing: Sendable {
        /// Whoever produces (the transmit lcore) polls after every burst.
        case producer
        /// A thread of the producer's own, on the control cores.
        case thread
    }

    package let number: Int
    package private(set) var producer: KafkaProducer!
    package let context: UnsafeMutablePointer<fastcapa_producer_context>
    let rescue: RescueBuffer
    /// Its messages' record timestamps are their capture times (`--record-time
    /// capture`): what it hands a successor is stamped again from the key.
    let stampsCaptureTime: Bool
    /// Serves the reports under `.thread` (paused until resumed).
    private(set) var reportThread: DeliveryReportThread?
    /// The worker's bundle buffers when it bundles: every message opaque is then
    /// one of its descriptors (kept alive here while librdkafka may report one).
    package let bundlePool: BundlePool?

    /// Room for messages failed between a fatal error and the successor.
    package static let rescueCapacity = 4 << 20

    /// - Parameter deliveries: where delivery reports are counted (the worker's counters).
    package init(
        number: Int,
        properties: KafkaProperties,
        topic: String,
        clientID: String,
        deliveries: UnsafeMutablePointer<fastcapa_tx_counters>,
        partitioner: Partitioner,
        reports: ReportServing,
        stampsCaptureTime: Bool = false,
        bundlePool: BundlePool? = nil
    ) throws {
        self.number = number
        self.stampsCaptureTime = stampsCaptureTime
        self.bundlePool = bundlePool
        var raw: UnsafeMutableRawPointer?
        guard posix_memalign(&raw, 64, MemoryLayout<fastcapa_producer_context>.stride) == 0, let raw else {
            throw KafkaError(message: "out of memory for a producer context")
        }
        memset(raw, 0, MemoryLayout<fastcapa_producer_context>.stride)
        context = raw.bindMemory(to: fastcapa_producer_context.self, capacity: 1)
        context.pointee.deliveries = deliveries
        rescue = RescueBuffer(capacity: Self.rescueCapacity)
        context.pointee.rescue = Unmanaged.passUnretained(rescue).toOpaque()
        context.pointee.bundle_pool = bundlePool.map { UnsafeMutableRawPointer($0.pool) }
        // Every stored property is set: if creating the producer or its thread
        // throws, deinit runs and frees what exists.
        producer = try KafkaProducer(
            properties: properties,
            topicName: topic,
            clientID: clientID,
            onDelivery: Self.deliveryReport,
            opaque: UnsafeMutableRawPointer(context),
            partitioner: partitioner == .hint ? Self.hintPartitioner : nil,
            onStatistics: Self.statistics,
            onError: Self.error
        )
        if reports == .thread {
            reportThread = try DeliveryReportThread(kafka: producer.handle, context: context, name: "\(clientID)-dr")
        }
    }

    deinit {
        reportThread?.stop()
        producer = nil  // destroys it (if it was created): no callback can run after this
        _ = takeStatistics()  // frees what is left in the mailbox
        free(context)
    }

    /// The handles a transmit lcore produces and polls through.
    package var endpoint: ProducerEndpoint { ProducerEndpoint(self) }

    /// Starts serving delivery reports on this producer's own thread, if it has one.
    package func resumeDeliveryReports() { reportThread?.resume() }

    /// Stops this producer's delivery-report thread, if it has one: from then on
    /// whoever calls this may poll the producer.
    package func stopDeliveryReports() { reportThread?.stop() }

    /// librdkafka reported a fatal error: this producer will never deliver again.
    package var isFatal: Bool { fastcapa_counter_load(&context.pointee.fatal) != 0 }
    package var allBrokersDownReports: UInt64 { fastcapa_counter_load(&context.pointee.all_brokers_down) }
    package var errorReports: UInt64 { fastcapa_counter_load(&context.pointee.errors) }

    /// The fatal error librdkafka recorded, if any.
    package var fatalError: KafkaError? { producer.fatalError }

    /// Messages in librdkafka's queue, awaiting a delivery report.
    package var outstanding: Int { Int(producer.outstanding) }

    /// Packets in librdkafka's queue, awaiting a delivery report: its messages,
    /// or when bundling, the packets of its bundles.
    package var outstandingPackets: Int {
        bundlePool == nil ? outstanding : Int(fastcapa_packets_load(&context.pointee.queued_packets))
    }

    /// The packets a message carries: one, or its bundle's (`opaque` is its descriptor when bundling).
    func packets(opaque: UnsafeMutableRawPointer?) -> Int {
        guard bundlePool != nil, let opaque else { return 1 }
        return Int(opaque.assumingMemoryBound(to: fastcapa_bundle.self).pointee.packets)
    }

    /// Counts packets handed to librdkafka (negative: taken back), when bundling.
    func addQueuedPackets(_ packets: Int) {
        fastcapa_packets_add(&context.pointee.queued_packets, Int64(packets))
    }

    /// Hands a bundle's buffer back, when bundling (its final outcome was counted).
    func release(opaque: UnsafeMutableRawPointer?) {
        guard let bundlePool, let opaque else { return }
        bundlePool.give(opaque.assumingMemoryBound(to: fastcapa_bundle.self))
    }

    /// The topic's partition count as the partitioner last saw it; 0 until then.
    package var partitionCount: Int { Int(fastcapa_counter_load(&context.pointee.partition_count)) }

    /// Takes the latest statistics JSON librdkafka posted, if any.
    package func takeStatistics() -> String? {
        let taken = fastcapa_mailbox_exchange(&context.pointee.statistics_json, 0)
        guard let pointer = UnsafeMutablePointer<CChar>(bitPattern: UInt(taken)) else { return nil }
        defer { rd_kafka_mem_free(nil, pointer) }
        return String(cString: pointer)
    }
}
