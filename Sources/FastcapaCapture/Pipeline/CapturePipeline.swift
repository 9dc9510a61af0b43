import CDPDK
import CFastcapaShared
import FastcapaKafka
import Glibc

/// The whole data path: ports → receive workers → transmit rings → transmit
/// workers → Kafka. Built in that order, torn down in reverse.
package final class CapturePipeline: @unchecked Sendable {
    package let settings: CaptureSettings
    package private(set) var ports: [Port] = []
    package private(set) var receiveWorkers: [ReceiveWorker] = []
    package private(set) var transmitWorkers: [TransmitWorker] = []
    /// Packet buffers per port.
    package private(set) var mempoolSize = 0
    package private(set) var deviceTimestamps = false
    private var pools: [OpaquePointer] = []
    private var rings: [OpaquePointer] = []
    private let rxCounters: CounterBlock<fastcapa_rx_counters>
    private let txCounters: CounterBlock<fastcapa_tx_counters>
    let control = WorkerControl()
    var receiveLcores: [UInt32] = []
    var transmitLcores: [UInt32] = []
    private var released = false

    /// Sets everything up; on failure releases whatever it had set up.
    package init(settings: CaptureSettings, kafka: KafkaProperties, lcores: [UInt32]) throws {
        self.settings = settings
        let ringCount = settings.ports.count * settings.rxQueues
        rxCounters = CounterBlock(count: ringCount)
        txCounters = CounterBlock(count: ringCount * settings.txWorkersPerRing)
        do {
            try build(kafka: kafka, lcores: lcores)
        } catch {
            release()
            throw error
        }
    }

    private func build(kafka: KafkaProperties, lcores: [UInt32]) throws {
        let portIDs = settings.ports
        // Check every port before touching any.
        for id in portIDs { _ = try Port.inspect(id) }
        try Self.checkLcores(lcores.count, settings: settings)
        let captureTimeField = CDPDK_rte_mbuf_dynfield_register_u64("fastcapa_capture_time_us")
        guard captureTimeField >= 0 else {
            throw CaptureError("cannot register the capture-time mbuf field: \(CaptureError.dpdkReason())", fix: "")
        }
        // One pool per port, on the port's NUMA socket: a packet never crosses sockets to be received.
        mempoolSize =
            MempoolSizing(settings: settings, ports: 1, lcores: settings.workerLcoresNeeded / portIDs.count + 1).mbufs
        for id in portIDs {
            let pool = try Self.makePool(port: id, size: mempoolSize)
            pools.append(pool)
            ports.append(
                try Port.configure(
                    id: id,
                    rxQueues: settings.rxQueues,
                    rxDescriptors: settings.rxDescriptors,
                    pool: pool
                )
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
                        deviceTimestamp: device
                    )
                )
                receiveLcores.append(lcoreIterator.next()!)
                for worker in 0..<settings.txWorkersPerRing {
                    let txIndex = ringIndex * settings.txWorkersPerRing + worker
                    transmitWorkers.append(
                        try TransmitWorker(
                            index: txIndex,
                            ring: ring,
                            settings: settings,
                            counters: txCounters[txIndex],
                            control: control,
                            captureTimeField: captureTimeField,
                            kafka: kafka
                        )
                    )
                    transmitLcores.append(lcoreIterator.next()!)
                }
            }
        }
    }

    package static func checkLcores(_ available: Int, settings: CaptureSettings) throws(CaptureError) {
        let needed = settings.workerLcoresNeeded
        guard available < needed else { return }
        let ports = settings.ports.count
        let queues = settings.rxQueues
        throw CaptureError(
            "\(needed) worker lcores are needed (\(ports) port\(ports == 1 ? "" : "s") × \(queues) queue\(queues == 1 ? "" : "s")"
                + " × (1 receive + \(settings.txWorkersPerRing) transmit)) but EAL gave \(available)",
            fix: "Give EAL \(needed + 1) lcores (one main + \(needed) workers), e.g. -l 0-\(needed), "
                + "or share cores with --lcores '(0-\(needed))@(0,1)'."
        )
    }

    private static func makePool(port id: UInt16, size: Int) throws(CaptureError) -> OpaquePointer {
        guard
            let pool = rte_pktmbuf_pool_create(
                "fastcapa_mbufs_\(id)",
                UInt32(size),
                UInt32(MempoolSizing.cacheSize),
                0,
                CDPDK_RTE_MBUF_DEFAULT_BUF_SIZE(),
                rte_eth_dev_socket_id(id)
            )
        else {
            throw CaptureError(
                "cannot allocate \(size) packet buffers for port \(id): \(CaptureError.dpdkReason())",
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
        for (worker, lcore) in zip(transmitWorkers, transmitLcores) {
            try launch(TransmitWorker.entry, Unmanaged.passUnretained(worker).toOpaque(), lcore)
        }
        for (worker, lcore) in zip(receiveWorkers, receiveLcores) {
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

    /// A sample of every counter. Counters are read one by one while workers
    /// run, so only a snapshot taken after `stopAndDrain` balances exactly.
    package func snapshot() -> CaptureSnapshot {
        let perQueue = (0..<rxCounters.count).map { ReceiveCounts(sampling: rxCounters[$0]) }
        let perWorker = transmitWorkers.map { $0.counts() }
        var nic = Port.Statistics()
        for port in ports { nic += port.statistics() }
        return CaptureSnapshot(perQueue: perQueue, perWorker: perWorker, nic: nic, ringDepth: ringDepths().reduce(0, +))
    }

    /// Each port's extended statistics as a JSON object keyed by port id.
    package func extendedStatisticsJSON() -> String {
        let ports = self.ports.map { port in
            let fields = port.extendedStatistics().map { "\"\($0.name)\":\($0.value)" }.joined(separator: ",")
            return "\"\(port.id)\":{\(fields)}"
        }
        return "{" + ports.joined(separator: ",") + "}"
    }

    /// Packets waiting in each transmit ring.
    package func ringDepths() -> [Int] { rings.map { Int(rte_ring_count($0)) } }

    /// Messages waiting in each transmit worker's librdkafka queue.
    package func kafkaQueueLengths() -> [Int] { transmitWorkers.map { $0.producer.generation.outstanding } }

    /// librdkafka's latest statistics JSON from each producer that posted one.
    package func takeStatistics() -> [String] {
        transmitWorkers.compactMap { $0.producer.generation.takeStatistics() }
    }

    /// Frees rings, ports, mempool and producers. Workers must have stopped.
    package func release() {
        guard !released else { return }
        released = true
        _ = takeStatistics()  // frees what is left in the mailboxes
        transmitWorkers.removeAll()  // destroys the producers
        for port in ports { port.stop() }
        for ring in rings { rte_ring_free(ring) }
        rings.removeAll()
        for pool in pools { rte_mempool_free(pool) }
        pools.removeAll()
    }
}
