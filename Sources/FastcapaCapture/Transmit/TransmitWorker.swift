import CDPDK
import CFastcapaShared
import CURCU
import FastcapaKafka
import Synchronization

/// Drains one transmit ring into Kafka: one message per packet, keyed by the
/// packet's capture time (`MessageContract`).
///
/// Per burst: read the producer and live settings through RCU, dequeue,
/// produce the packets (in one `rd_kafka_produce_batch` call, or one call per
/// packet; copied by librdkafka), free the burst, serve delivery reports. When
/// librdkafka reports a fatal error the worker stops dequeuing (the ring absorbs
/// the gap) and keeps the rest of its burst until the supervisor has swapped in
/// a new producer.
package final class TransmitWorker: @unchecked Sendable {
    package let index: Int
    let ring: OpaquePointer
    let burst: Int
    let partitioning: CaptureSettings.Partitioning
    let produceCall: CaptureSettings.ProduceCall
    let deliveryReports: CaptureSettings.DeliveryReports
    let counters: UnsafeMutablePointer<fastcapa_tx_counters>
    /// Where retired producers count their delivery reports (written only by the
    /// supervisor's thread that retires them).
    let retiredCounters: CounterBlock<fastcapa_tx_counters>
    let control: WorkerControl
    let captureTimeField: Int32
    let idleSpinPolls: Int
    let idleSleepMaxMicros: Int
    /// Its port's topic (`--topic` with `{port}` replaced).
    let topic: String
    let nullSink: Bool
    /// The message contract's headers: this worker's fixed ones (`--headers`,
    /// values built once) and `orig_len` for a cut frame, produced one message a call.
    let producevaArguments: ProducevaArguments
    /// Every message carries headers (`--headers` given): none goes in a batch.
    let addsHeaders: Bool
    /// Every message's Kafka timestamp is its capture time (`--record-time capture`):
    /// none goes in a batch, which stamps all its messages with one time.
    let stampsCaptureTime: Bool
    /// Every message goes through `producevaArguments`, one call each.
    let producesEachWithArguments: Bool
    /// Frames of this length or longer were cut by the kernel before the driver
    /// saw them (the ring's port's `ReceivePath.cutLength`): dropped as malformed.
    let cutLength: Int
    package let producer: ProducerSlot
    /// The thread its producer generations live on.
    package let owner: GenerationOwner
    /// Producers replaced after a fatal error, and by reloads (written on the owner thread).
    package let restartCount = Atomic<Int>(0)
    package let reloadCount = Atomic<Int>(0)
    /// The burst taken off the ring.
    let packets: UnsafeMutablePointer<OpaquePointer?>
    /// Where multi-segment frames are gathered into one contiguous message.
    let scratch: UnsafeMutableRawPointer
    let scratchSize: Int
    /// One batch for rd_kafka_produce_batch, and the packet each message came
    /// from (pre-allocated: nothing is allocated per burst).
    let batch: MessageBatch
    let sources: UnsafeMutablePointer<Int>
    /// The key of a packet produced on its own.
    let singleKey: UnsafeMutablePointer<MessageContract.Key>
    /// Numbers the batches: the default partitioner sends batch n to partition n % partitions.
    var batchSequence: UInt
    /// The timestamp (epoch ms) of this burst's messages with headers: read by the
    /// first of them, as a batch reads it once (0: not read yet this burst).
    var burstMillis: Int64 = 0
    /// The lcore's heartbeat (set by the pipeline before launch): one per turn of the loop.
    var heartbeat = Heartbeats.unwatched
    /// Every this many batches go through the partitioner, which notices added partitions.
    static let partitionRefreshBatches: UInt = 1024
    /// Bundling (`--bundle-packets`): the buffers, the argument vector, the
    /// open bundles and their limits; nil: one packet per message.
    let bundler: Bundler?

    init(
        index: Int,
        ring: OpaquePointer,
        port: UInt16 = 0,
        queue: Int = 0,
        settings: CaptureSettings,
        counters: UnsafeMutablePointer<fastcapa_tx_counters>,
        control: WorkerControl,
        captureTimeField: Int32,
        cutLength: Int = Int.max,
        kafka: KafkaProperties
    ) throws {
        self.index = index
        self.cutLength = cutLength
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
        let topic = settings.topic(forPort: port)
        self.topic = topic
        self.nullSink = settings.sink == .null
        let probe = settings.probeName
        producevaArguments = ProducevaArguments(
            headers: MessageContract.headers(settings.headers, port: port, queue: queue, probe: probe),
            timeNanos: settings.headers.contains(.timeNanos)
        )
        addsHeaders = !settings.headers.isEmpty
        stampsCaptureTime = settings.recordTime == .capture
        producesEachWithArguments = addsHeaders || stampsCaptureTime
        batch = MessageBatch(capacity: settings.txBurst)
        sources = .allocate(capacity: settings.txBurst)
        sources.initialize(repeating: 0, count: settings.txBurst)
        singleKey = .allocate(capacity: 1)
        singleKey.initialize(to: 0)
        // Workers start on different partitions.
        batchSequence = UInt(index)
        packets = .allocate(capacity: settings.txBurst)
        packets.initialize(repeating: nil, count: settings.txBurst)
        // Large enough for any snap length a reload may set.
        scratchSize = CaptureSettings.maxSnapLength
        scratch = .allocate(byteCount: scratchSize, alignment: 64)
        let bundler =
            settings.bundles
            ? try Bundler(
                settings: settings,
                headers: MessageContract.headers(settings.headers, port: port, queue: queue, probe: probe)
            ) : nil
        self.bundler = bundler
        let owner = GenerationOwner(label: "fastcapa.tx\(index).owner")
        self.owner = owner
        // Generations are created, swapped and released on the owner thread, the first one too.
        producer = try owner.sync {
            let first = try Self.firstGeneration(
                index: index,
                topic: topic,
                settings: settings,
                counters: counters,
                kafka: kafka,
                bundlePool: bundler?.pool
            )
            first.resumeDeliveryReports()
            return ProducerSlot(first, live: ReloadableSettings(settings), owner: owner)
        }
    }

    private static func firstGeneration(
        index: Int,
        topic: String,
        settings: CaptureSettings,
        counters: UnsafeMutablePointer<fastcapa_tx_counters>,
        kafka: KafkaProperties,
        bundlePool: BundlePool?
    ) throws -> ProducerGeneration {
        try ProducerGeneration(
            number: 1,
            properties: kafka,
            topic: topic,
            clientID: "fastcapa-tx\(index)",
            deliveries: counters,
            partitioner: settings.partitioning == .key ? .librdkafka : .hint,
            reports: settings.deliveryReports == .thread ? .thread : .producer,
            stampsCaptureTime: settings.recordTime == .capture,
            bundlePool: bundlePool
        )
    }

    deinit {
        packets.deallocate()
        scratch.deallocate()
        batch.deallocate()
        sources.deallocate()
        singleKey.deallocate()
    }

    /// The worker's counters, including its retired producers' delivery reports.
    package func counts() -> TransmitCounts {
        TransmitCounts(sampling: counters) + TransmitCounts(sampling: retiredCounters[0])
    }

    /// The lcore entry point: `arg` is an unretained `TransmitWorker`.
    static let entry: @convention(c) (UnsafeMutableRawPointer?) -> Int32 = { arg in
        Unmanaged<TransmitWorker>.fromOpaque(arg!).takeUnretainedValue().run()
    }

    /// What the loop keeps from one burst to the next.
    struct LoopState {
        /// Packets [pendingStart, pendingEnd) of `packets` wait for a working producer.
        var pendingStart = 0
        var pendingEnd = 0
        /// Waits for room in librdkafka's queue this burst may still spend (--queue-full-retries).
        var retries = 0
        var holdsPackets: Bool { pendingEnd > pendingStart }
    }

    func run() -> Int32 {
        CURCU_rcu_register_thread()
        defer { CURCU_rcu_unregister_thread() }
        var state = LoopState()
        var idle = IdleBackoff(spinPolls: idleSpinPolls, maxSleepMicros: idleSleepMaxMicros, rcuReader: true)
        let heartbeat = self.heartbeat
        while true {
            fastcapa_counter_add(heartbeat, 1)
            CURCU_rcu_quiescent_state()
            switch step(&state, receiversDone: false) {
            case .worked: idle.reset()
            case .idle, .needsRoom: idle.idle()
            case .done: return 0
            }
        }
    }

    /// One turn of the loop: a burst dequeued and produced (or counted), or
    /// nothing to do. `.done` once the ring is empty, the worker holds nothing
    /// and no packet will come (the drain flag, or `receiversDone`: the
    /// co-scheduled receive loop has returned). The caller is an online RCU
    /// reader and reports a quiescent state between steps.
    @inline(__always)
    func step(_ state: inout LoopState, receiversDone: Bool) -> WorkerStep {
        let counters = self.counters
        let packets = self.packets
        let abandon = control.flags + WorkerControl.abandon
        let record = CURCU_rcu_dereference(producer.pointer)!.assumingMemoryBound(to: WorkerRecord.self).pointee
        let giveUp = fastcapa_flag_load(abandon) != 0

        if giveUp && state.holdsPackets {
            // The drain timeout ran out while a producer was down: count the rest.
            fastcapa_counter_add(&counters.pointee.drain_timeout_drops, UInt64(state.pendingEnd - state.pendingStart))
            CDPDK_rte_pktmbuf_free_bulk(packets + state.pendingStart, UInt32(state.pendingEnd - state.pendingStart))
            state.pendingStart = 0
            state.pendingEnd = 0
        }
        if giveUp, let bundler, bundler.holdsPackets { abandonBundles(bundler) }
        if !giveUp && record.producer.isFatal {
            // This producer is dead: leave packets in the ring until the
            // supervisor publishes its successor, and its failed messages in
            // its queue for the successor (no more polling it here).
            fastcapa_counter_add(&counters.pointee.paused_polls, 1)
            return .idle
        }

        if !state.holdsPackets {
            let burst = UInt32(self.burst)
            // Read before the dequeue: the flag is set once the receive
            // workers have returned, so an empty ring seen after it is empty
            // for good. Read after, it could follow an empty dequeue that a
            // last enqueue (this lcore descheduled between the two) made stale.
            let draining = receiversDone || fastcapa_flag_load(control.flags + WorkerControl.drain) != 0
            let count = packets.withMemoryRebound(to: UnsafeMutableRawPointer?.self, capacity: Int(burst)) {
                Int(rte_ring_dequeue_burst(ring, $0, burst, nil))
            }
            if count == 0 {
                if let bundler, bundler.holdsPackets {
                    // Bundles close at their linger, and all at the drain's end.
                    let closed =
                        draining
                        ? closeAllBundles(bundler, record, giveUp: giveUp)
                        : closeLingering(bundler, record, giveUp: giveUp)
                    if !closed { return .idle }
                }
                serveDeliveryReports(record)
                // Receive workers have stopped and the ring is empty: done.
                return draining ? .done : .idle
            }
            fastcapa_counter_add(&counters.pointee.dequeued, UInt64(count))
            state.pendingStart = 0
            state.pendingEnd = count
            state.retries = record.queueFullRetries
            if nullSink || giveUp {
                // Benchmarks of the receive path, or the drain timeout ran
                // out: count what is left instead of producing it.
                if nullSink {
                    fastcapa_counter_add(&counters.pointee.null_sink_drops, UInt64(count))
                } else {
                    fastcapa_counter_add(&counters.pointee.drain_timeout_drops, UInt64(count))
                }
                CDPDK_rte_pktmbuf_free_bulk(packets, UInt32(count))
                state.pendingEnd = 0
                return .worked
            }
        }

        burstMillis = 0
        let index =
            if let bundler {
                produceBundled(
                    bundler,
                    state.pendingStart,
                    state.pendingEnd,
                    record,
                    retries: &state.retries,
                    giveUp: giveUp
                )
            } else if produceCall == .batch {
                produceBatches(state.pendingStart, state.pendingEnd, record, retries: &state.retries, giveUp: giveUp)
            } else {
                produceEach(state.pendingStart, state.pendingEnd, record, retries: &state.retries, giveUp: giveUp)
            }
        CDPDK_rte_pktmbuf_free_bulk(packets + state.pendingStart, UInt32(index - state.pendingStart))
        state.pendingStart = index
        if state.pendingStart == state.pendingEnd {
            state.pendingStart = 0
            state.pendingEnd = 0
        }
        if let bundler, bundler.holdsPackets { _ = closeLingering(bundler, record, giveUp: giveUp) }
        serveDeliveryReports(record)
        return .worked
    }

    /// Serves delivery reports here, unless a thread of the producer's own does.
    @inline(__always)
    func serveDeliveryReports(_ record: WorkerRecord) {
        guard deliveryReports == .lcore else { return }
        record.producer.serveDeliveryReports()
    }

    /// The partition hint of a packet: its flow hash under flow partitioning,
    /// else the batch's sequence number (the partitioner takes it modulo the
    /// partition count).
    @inline(__always)
    func hint(_ packet: OpaquePointer?, _ payload: UnsafeRawPointer, _ length: Int, batch: UInt) -> UInt {
        guard partitioning == .flow else { return batch }
        if CDPDK_rte_mbuf_ol_flags(packet) & CDPDK_RTE_MBUF_F_RX_RSS_HASH() != 0 {
            return UInt(CDPDK_rte_mbuf_hash_rss(packet))
        }
        return UInt(FlowHash.hash(UnsafeRawBufferPointer(start: payload, count: length)))
    }
}
