import CDPDK
import CFastcapaShared
import CLinux
import CURCU
import FastcapaKafka
import Glibc
import Synchronization

/// The whole data path: ports → receive workers → transmit rings → transmit
/// workers → Kafka. Built in that order, torn down in reverse.
package final class CapturePipeline: @unchecked Sendable {
    /// As given, but for `ringFull`, which a replay of files changes (`build`).
    package private(set) var settings: CaptureSettings
    package private(set) var ports: [Port] = []
    package private(set) var receiveWorkers: [ReceiveWorker] = []
    package private(set) var transmitWorkers: [TransmitWorker] = []
    /// Each port's packet-buffer pool: how many, how large.
    package private(set) var mempools: [MempoolSizing] = []
    package private(set) var deviceTimestamps = false
    private var pools: [OpaquePointer] = []
    private var rings: [OpaquePointer] = []

    /// How many packets each transmit ring holds (one slot fewer than its size).
    package var ringCapacities: [Int] { rings.map { Int(rte_ring_get_capacity($0)) } }
    private let rxCounters: CounterBlock<fastcapa_rx_counters>
    private let txCounters: CounterBlock<fastcapa_tx_counters>
    /// A heartbeat per worker lcore, in launch order.
    private let heartbeats: Heartbeats
    /// The ports' links, read by the sampler.
    private let links = PortLinks()
    let control = WorkerControl()
    /// The capture filter the receive workers read (through RCU).
    package private(set) var filter = FilterSlot(nil)
    /// The lcores that receive (on their own, or co-scheduled with a transmit loop), and those that only transmit.
    var receiveLcores: [UInt32] = []
    var transmitLcores: [UInt32] = []
    /// Queues whose receive and transmit loops share an lcore, and those lcores (among `receiveLcores`).
    private var coScheduled: [CoScheduledWorker] = []
    private var coScheduledLcores: [UInt32] = []
    /// Which lcore runs which loop, a line per queue (logged at start).
    package private(set) var workerLayout: [String] = []
    private var released = false
    /// Set by the drain once every lcore has returned (read by the sampler).
    private let workersReturned = Atomic<Bool>(false)
    var workersStopped: Bool { workersReturned.load(ordering: .acquiring) }
    func markWorkersStopped() { workersReturned.store(true, ordering: .releasing) }

    /// Sets everything up; on failure releases whatever it had set up.
    /// Whether `--ring-full` is `wait` because every port replays files and none was given.
    package private(set) var replayWaits = false

    /// - Parameter cpus: the CPUs the process may use, for the layout a refusal recommends.
    package init(settings: CaptureSettings, kafka: KafkaProperties, lcores: [UInt32], cpus: [Int]) throws {
        self.settings = settings
        let ringCount = settings.ports.count * settings.rxQueues
        rxCounters = CounterBlock(count: ringCount)
        txCounters = CounterBlock(count: ringCount * settings.txWorkersPerRing)
        heartbeats = Heartbeats(capacity: ringCount * (1 + settings.txWorkersPerRing))
        do {
            try build(kafka: kafka, lcores: lcores, cpus: cpus)
        } catch {
            release()
            throw error
        }
    }

    private func build(kafka: KafkaProperties, lcores: [UInt32], cpus: [Int]) throws {
        let portIDs = settings.ports
        // Check every port before touching any: that it exists, its queues, and
        // that it delivers every frame whole.
        var paths: [ReceivePath] = []
        for id in portIDs {
            paths.append(try ReceivePath.plan(port: id, info: try Port.inspect(id), rxQueues: settings.rxQueues))
        }
        try Self.checkLcores(lcores.count, settings: settings, cpus: cpus)
        if !settings.ringFullGiven && paths.allSatisfy(\.replaysFilesOnce) {
            settings.ringFull = .wait
            replayWaits = true
        }
        let captureTimeField = CDPDK_rte_mbuf_dynfield_register_u64("fastcapa_capture_time_us")
        guard captureTimeField >= 0 else {
            throw CaptureError("cannot register the capture-time mbuf field: \(CaptureError.dpdkReason())", fix: "")
        }
        // One pool per port, on the port's NUMA socket: a packet never crosses sockets to be received.
        for path in paths {
            let sizing = MempoolSizing(
                settings: settings,
                path: path,
                lcores: settings.workerLcoresNeeded / portIDs.count + 1
            )
            let pool = try Self.makePool(path: path, sizing: sizing)
            pools.append(pool)
            mempools.append(sizing)
            ports.append(
                try Port.configure(
                    path: path,
                    rxQueues: settings.rxQueues,
                    rxDescriptors: settings.rxDescriptors,
                    pool: pool
                )
            )
        }
        // The capture filter: converted to eBPF and loaded (JIT-compiled) once, for every receive worker.
        if let expression = settings.filterExpression {
            filter = FilterSlot(
                try PacketFilter(expression: expression, snapLength: settings.snapLength, engine: settings.filterEngine)
            )
        }
        // Drivers register the timestamp field when they start.
        let device = ports.allSatisfy(\.deliversEpochTimestamps) ? DeviceTimestamp.registered() : nil
        deviceTimestamps = device != nil

        var lcoreIterator = lcores.makeIterator()
        for port in ports {
            for queue in 0..<settings.rxQueues {
                let ringIndex = rings.count
                let ring = try makeRing(port: port, queue: queue)
                rings.append(ring)
                receiveWorkers.append(
                    ReceiveWorker(
                        port: port.id,
                        queue: UInt16(queue),
                        ring: ring,
                        settings: settings,
                        counters: rxCounters[ringIndex],
                        control: control,
                        captureTimeField: captureTimeField,
                        deviceTimestamp: device,
                        filter: filter
                    )
                )
                let receiveLcore = lcoreIterator.next()!
                receiveLcores.append(receiveLcore)
                var queueTransmitLcores: [UInt32] = []
                for worker in 0..<settings.txWorkersPerRing {
                    let txIndex = ringIndex * settings.txWorkersPerRing + worker
                    transmitWorkers.append(
                        try TransmitWorker(
                            index: txIndex,
                            ring: ring,
                            port: port.id,
                            queue: queue,
                            settings: settings,
                            counters: txCounters[txIndex],
                            control: control,
                            captureTimeField: captureTimeField,
                            cutLength: port.path.cutLength,
                            kafka: kafka
                        )
                    )
                    queueTransmitLcores.append(lcoreIterator.next()!)
                }
                plan(
                    port: port.id,
                    queue: queue,
                    receiveLcore: receiveLcore,
                    transmitLcores: queueTransmitLcores,
                    firstTransmitWorker: transmitWorkers.count - settings.txWorkersPerRing
                )
            }
        }
    }

    /// Co-schedules a queue's receive and transmit loops on its receive lcore when the lcore map
    /// pins both lcores to the same single CPU (one transmit worker); else each loop gets its lcore.
    private func plan(
        port: UInt16,
        queue: Int,
        receiveLcore: UInt32,
        transmitLcores queueTransmitLcores: [UInt32],
        firstTransmitWorker: Int
    ) {
        let receiveCPUs = CPUAffinity.of(lcore: receiveLcore)
        let cpus = { (lcore: UInt32) in ControlCores.formatList(CPUAffinity.of(lcore: lcore)) }
        let split = getenv("FASTCAPA_LEVER_SPLIT_WORKERS") != nil
        if !split && queueTransmitLcores.count == 1 && receiveCPUs.count == 1
            && CPUAffinity.of(lcore: queueTransmitLcores[0]) == receiveCPUs
        {
            coScheduled.append(
                CoScheduledWorker(receive: receiveWorkers.last!, transmit: transmitWorkers[firstTransmitWorker])
            )
            coScheduledLcores.append(receiveLcore)
            workerLayout.append(
                "port \(port) queue \(queue): receive and transmit worker \(firstTransmitWorker) co-scheduled on lcore "
                    + "\(receiveLcore) (CPU \(cpus(receiveLcore))), lcore \(queueTransmitLcores[0]) unused: both were given CPU \(cpus(receiveLcore))"
            )
            return
        }
        transmitLcores.append(contentsOf: queueTransmitLcores)
        let transmit = queueTransmitLcores.enumerated().map {
            "transmit worker \(firstTransmitWorker + $0.offset) on lcore \($0.element) (CPU \(cpus($0.element)))"
        }
        workerLayout.append(
            "port \(port) queue \(queue): receive on lcore \(receiveLcore) (CPU \(cpus(receiveLcore))), "
                + transmit.joined(separator: ", ")
        )
    }

    /// - Parameter cpus: the CPUs the process may use: the fix names the layout for them (`LcoreLayout`).
    package static func checkLcores(_ available: Int, settings: CaptureSettings, cpus: [Int]) throws(CaptureError) {
        let needed = settings.workerLcoresNeeded
        guard available < needed else { return }
        let ports = settings.ports.count
        let queues = settings.rxQueues
        let layout = LcoreLayout(settings: settings, cpus: cpus)
        throw CaptureError(
            "\(needed) worker lcores are needed (\(ports) port\(ports == 1 ? "" : "s") × \(queues) queue\(queues == 1 ? "" : "s")"
                + " × (1 receive + \(settings.txWorkersPerRing) transmit)) but EAL gave \(available)",
            fix:
                "Give EAL \(needed + 1) lcores (one main + \(needed) workers); on \(cpus.count == 1 ? "CPU" : "CPUs") \(ControlCores.formatList(cpus)): "
                + "\(layout.option) (Deployment.md, \"Cores\")."
        )
    }

    private static func makePool(path: ReceivePath, sizing: MempoolSizing) throws(CaptureError) -> OpaquePointer {
        let id = path.port
        guard
            let pool = rte_pktmbuf_pool_create(
                "fastcapa_mbufs_\(id)",
                UInt32(sizing.mbufs),
                UInt32(MempoolSizing.cacheSize),
                0,
                UInt16(sizing.dataRoom),
                rte_eth_dev_socket_id(id)
            )
        else {
            let size =
                "\(sizing.mbufs) packet buffers of \(sizing.dataRoom) bytes (\(sizing.bytes >> 20) MiB)"
            if case .afPacket(let ring) = path.kind {
                throw CaptureError(
                    "cannot allocate \(size) for port \(id) (\(path.device.name), framesz=\(ring.frameSize)): "
                        + "\(CaptureError.dpdkReason())",
                    fix:
                        "The af_packet driver copies each frame into one buffer of framesz bytes: give EAL more memory "
                        + "(-m, or hugepages), use a smaller framesz that still holds the interface's frames, or lower "
                        + "the ring size and receive queues (ring-size, rx-queues), which size the pool."
                )
            }
            throw CaptureError(
                "cannot allocate \(size) for port \(id): \(CaptureError.dpdkReason())",
                fix: "Give EAL more memory (-m, or hugepages), or lower the receive descriptors, ring size "
                    + "and receive queues (rx-desc, ring-size, rx-queues), which size the pool."
            )
        }
        return pool
    }

    /// One ring per receive queue: a single producer (the receive worker), and
    /// a single consumer unless several transmit workers share it.
    private func makeRing(port: Port, queue: Int) throws(CaptureError) -> OpaquePointer {
        let flags = UInt32(RING_F_SP_ENQ) | (settings.txWorkersPerRing == 1 ? UInt32(RING_F_SC_DEQ) : 0)
        guard
            let ring = rte_ring_create("fastcapa_tx_\(port.id)_\(queue)", UInt32(settings.ringSize), port.socket, flags)
        else {
            throw CaptureError(
                "cannot create transmit ring \(rings.count) of \(settings.ringSize) slots: \(CaptureError.dpdkReason())",
                fix: "Lower the ring size (ring-size) or give EAL more memory (-m)."
            )
        }
        return ring
    }

    /// Launches transmit workers first, so rings drain from the first packet.
    package func start() throws(CaptureError) {
        let coScheduledTransmit = Set(coScheduled.map { ObjectIdentifier($0.transmit) })
        let coScheduledReceive = Set(coScheduled.map { ObjectIdentifier($0.receive) })
        for (worker, lcore) in zip(
            transmitWorkers.filter { !coScheduledTransmit.contains(ObjectIdentifier($0)) },
            transmitLcores
        ) {
            worker.heartbeat = heartbeats.slot(lcore: lcore, loop: "transmit worker \(worker.index)")
            try launch(TransmitWorker.entry, Unmanaged.passUnretained(worker).toOpaque(), lcore)
        }
        for (worker, lcore) in zip(coScheduled, coScheduledLcores) {
            worker.heartbeat = heartbeats.slot(
                lcore: lcore,
                loop:
                    "receive port \(worker.receive.port) queue \(worker.receive.queue) and transmit worker \(worker.transmit.index)"
            )
            try launch(CoScheduledWorker.entry, Unmanaged.passUnretained(worker).toOpaque(), lcore)
        }
        for (worker, lcore) in zip(
            receiveWorkers.filter { !coScheduledReceive.contains(ObjectIdentifier($0)) },
            receiveLcores.filter { !coScheduledLcores.contains($0) }
        ) {
            worker.heartbeat = heartbeats.slot(lcore: lcore, loop: "receive port \(worker.port) queue \(worker.queue)")
            try launch(ReceiveWorker.entry, Unmanaged.passUnretained(worker).toOpaque(), lcore)
        }
    }

    private func launch(
        _ entry: @convention(c) (UnsafeMutableRawPointer?) -> Int32,
        _ arg: UnsafeMutableRawPointer,
        _ lcore: UInt32
    ) throws(CaptureError) {
        let status = rte_eal_remote_launch(entry, arg, lcore)
        guard status == 0 else {
            stopWorkers()
            throw CaptureError("cannot launch a worker on lcore \(lcore): \(CaptureError.dpdkReason(-status))", fix: "")
        }
    }

    /// A sample of every counter, ring, producer and NIC counter. Only the
    /// sampler's thread calls it (`PipelineMonitor`): it owns the NIC's statistics
    /// (rte_eth_stats_get and xstats are not thread-safe), and it reads the
    /// producers through RCU, as the lcores do, so it must be a registered RCU
    /// reader thread that is offline between samples. Counters are read one by
    /// one while the workers run; a sample taken after `stopAndDrain` is exact.
    ///
    /// - Parameters:
    ///   - extended: also read the drivers' extended statistics (as JSON).
    ///   - statistics: gets librdkafka's statistics JSON (worker index, JSON) taken from the mailboxes.
    package func sample(
        extended: Bool,
        statistics: (Int, String) -> Void
    ) -> (snapshot: CaptureSnapshot, extendedJSON: String?) {
        let perQueue = (0..<rxCounters.count).map { ReceiveCounts(sampling: rxCounters[$0]) }
        let perWorker = transmitWorkers.map { $0.counts() }
        var producers: [ProducerSample] = []
        producers.reserveCapacity(transmitWorkers.count)
        // Inside the read section only what reads the producers: `statistics` (which
        // may write a file) runs after it, so a slow disk never holds a grace period up.
        var taken: [(worker: Int, json: String)] = []
        CURCU_rcu_thread_online()
        for worker in transmitWorkers {
            let record = CURCU_rcu_dereference(worker.producer.pointer)!.assumingMemoryBound(to: WorkerRecord.self)
                .pointee
            producers.append(
                record.producer.sample(generation: record.generation) { taken.append((worker.index, $0)) }
            )
        }
        CURCU_rcu_thread_offline()
        for (worker, json) in taken { statistics(worker, json) }
        let perPort = ports.map { (port: $0.id, statistics: $0.statistics()) }
        var nic = Port.Statistics()
        for port in perPort { nic += port.statistics }
        let snapshot = CaptureSnapshot(
            perQueue: perQueue,
            perWorker: perWorker,
            nic: nic,
            perPort: perPort,
            links: links.sample(ports, received: perPort.map(\.statistics.received)),
            ringDepths: rings.map { Int(rte_ring_count($0)) },
            producers: producers,
            restarts: transmitWorkers.map { $0.restartCount.load(ordering: .relaxed) },
            reloads: transmitWorkers.map { $0.reloadCount.load(ordering: .relaxed) },
            workersStopped: workersStopped,
            lcores: heartbeats.sample()
        )
        return (snapshot, extended ? extendedStatisticsJSON() : nil)
    }

    /// Makes the calling thread the sampler (named `fastcapa-sample`): a
    /// registered RCU reader, offline except while `sample` reads the producers.
    package static func registerSamplerThread() {
        _ = CLinux_pthread_setname_np("fastcapa-sample")  // 15 bytes at most
        CURCU_rcu_register_thread()
        CURCU_rcu_thread_offline()
    }

    package static func unregisterSamplerThread() { CURCU_rcu_unregister_thread() }

    /// Loads `expression` (nil: no filter) off the lcores, publishes it to every
    /// receive worker through RCU, waits for the grace period and frees the old
    /// program. Blocks: never call it on an lcore or Swift's cooperative pool.
    package func replaceFilter(
        _ expression: String?,
        snapLength: Int,
        engine: FilterEngine
    ) throws(CaptureError) -> FilterSlot.Replacement {
        publishFilter(try Self.loadFilter(expression, snapLength: snapLength, engine: engine))
    }

    /// Compiles and loads a capture filter (nil: none) without publishing it: what can refuse it,
    /// apart from what cannot (`publishFilter`). Needs EAL; never on an lcore or the cooperative pool.
    package static func loadFilter(
        _ expression: String?,
        snapLength: Int,
        engine: FilterEngine
    ) throws(CaptureError) -> PacketFilter? {
        try expression.map { (text: String) throws(CaptureError) in
            try PacketFilter(expression: text, snapLength: snapLength, engine: engine)
        }
    }

    /// Publishes a loaded filter to every receive worker and frees the old one after the grace
    /// period. Blocks for that grace period.
    package func publishFilter(_ next: PacketFilter?) -> FilterSlot.Replacement {
        filter.replace(with: next)
    }

    /// Each port's extended statistics as a JSON object keyed by port id (sampler only).
    private func extendedStatisticsJSON() -> String {
        let ports = self.ports.map { port in
            let fields = port.extendedStatistics().map { "\"\($0.name)\":\($0.value)" }.joined(separator: ",")
            return "\"\(port.id)\":{\(fields)}"
        }
        return "{" + ports.joined(separator: ",") + "}"
    }

    /// Testing aid (FASTCAPA_TESTING_MISCOUNT, documented as testing-only): counts
    /// one delivery report twice on worker 0, as a bug in the delivery callback
    /// would, so that a test can see the final accounting catch it.
    package func testingMiscountOneDelivery() {
        guard let worker = transmitWorkers.first else { return }
        fastcapa_counter_add(&worker.counters.pointee.delivered, 1)
    }

    /// Frees rings, ports, mempool and producers. Workers and the sampler must have
    /// stopped. Each producer is released on its owner thread.
    package func release() {
        guard !released else { return }
        released = true
        for worker in transmitWorkers { worker.releaseProducer() }
        coScheduled.removeAll()
        transmitWorkers.removeAll()
        receiveWorkers.removeAll()
        filter = FilterSlot(nil)  // destroys the filter's program
        for port in ports { port.stop() }
        for ring in rings { rte_ring_free(ring) }
        rings.removeAll()
        for pool in pools { rte_mempool_free(pool) }
        pools.removeAll()
    }
}
