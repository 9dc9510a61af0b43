import CDPDK
import CRdKafka
import FastcapaKafka
import Glibc

/// The whole data path: ports → receive workers → transmit rings → transmit
/// workers → Kafka. Built in that order, torn down in reverse.
public final class CapturePipeline: @unchecked Sendable {
    public let settings: CaptureSettings
    public private(set) var ports: [Port] = []
    public private(set) var receiveWorkers: [ReceiveWorker] = []
    public private(set) var transmitWorkers: [TransmitWorker] = []
    /// Packet buffers per port.
    public private(set) var mempoolSize = 0
    private var pools: [OpaquePointer] = []
    private var rings: [OpaquePointer] = []
    private let rxCounters: CounterBlock<cfc_rx_counters>
    private let txCounters: CounterBlock<cfc_tx_counters>
    private let control = WorkerControl()
    private var receiveLcores: [UInt32] = []
    private var transmitLcores: [UInt32] = []
    private var released = false
    public private(set) var deviceTimestamps = false

    /// Sets everything up; on failure releases whatever it had set up.
    /// librdkafka's statistics JSON is collected from every producer (`takeStatistics`).
    public init(settings: CaptureSettings, kafka: KafkaProperties, lcores: [UInt32]) throws {
        self.settings = settings
        let portIDs = settings.ports
        let ringCount = portIDs.count * settings.rxQueues
        rxCounters = CounterBlock(count: ringCount)
        txCounters = CounterBlock(count: ringCount * settings.txWorkersPerRing)
        do {
            try build(portIDs: portIDs, kafka: kafka, lcores: lcores)
        } catch {
            release()
            throw error
        }
    }

    private func build(portIDs: [UInt16], kafka: KafkaProperties, lcores: [UInt32]) throws {
        // Check every port before touching any.
        for id in portIDs { _ = try Port.inspect(id) }
        let needed = settings.workerLcoresNeeded
        guard lcores.count >= needed else {
            throw CaptureError(
                "\(needed) worker lcores are needed (\(portIDs.count) port\(portIDs.count == 1 ? "" : "s") × \(settings.rxQueues) queue\(settings.rxQueues == 1 ? "" : "s") × (1 receive + \(settings.txWorkersPerRing) transmit)) but EAL gave \(lcores.count)",
                fix: "Give EAL \(needed + 1) lcores (one main + \(needed) workers), e.g. -l 0-\(needed), or share cores with --lcores '(0-\(needed))@(0,1)'.")
        }
        let captureTimeField = cfc_register_capture_time_field()
        guard captureTimeField >= 0 else {
            throw CaptureError("cannot register the capture-time mbuf field: \(CaptureError.dpdkReason())", fix: "")
        }
        // One pool per port, on the port's NUMA socket: a packet never crosses sockets to be received.
        mempoolSize = MempoolSizing(settings: settings, ports: 1, lcores: settings.workerLcoresNeeded / portIDs.count + 1).mbufs
        for id in portIDs {
            guard let pool = rte_pktmbuf_pool_create(
                "fastcapa_mbufs_\(id)", UInt32(mempoolSize), UInt32(MempoolSizing.cacheSize), 0,
                cfc_mbuf_default_buffer_size(), rte_eth_dev_socket_id(id)) else {
                throw CaptureError(
                    "cannot allocate \(mempoolSize) packet buffers for port \(id): \(CaptureError.dpdkReason())",
                    fix: "Give EAL more memory (-m, or hugepages), or lower -d, -x and -q which size the pool.")
            }
            pools.append(pool)
            ports.append(try Port.configure(id: id, rxQueues: settings.rxQueues, rxDescriptors: settings.rxDescriptors, pool: pool))
        }
        // Drivers register the timestamp field when they start.
        var offset: Int32 = 0
        var flag: UInt64 = 0
        let device: DeviceTimestamp? =
            ports.allSatisfy(\.deliversEpochTimestamps) && cfc_lookup_rx_timestamp(&offset, &flag)
            ? DeviceTimestamp(fieldOffset: offset, flag: flag, unitsPerMicro: Port.netPcapUnitsPerMicro) : nil
        deviceTimestamps = device != nil

        var lcoreIterator = lcores.makeIterator()
        for port in ports {
            for queue in 0..<settings.rxQueues {
                let ringIndex = rings.count
                let flags = UInt32(RING_F_SP_ENQ) | (settings.txWorkersPerRing == 1 ? UInt32(RING_F_SC_DEQ) : 0)
                guard let ring = rte_ring_create("fastcapa_tx_\(port.id)_\(queue)", UInt32(settings.ringSize), port.socket, flags) else {
                    throw CaptureError("cannot create transmit ring \(ringIndex) of \(settings.ringSize) slots: \(CaptureError.dpdkReason())",
                                       fix: "Lower the ring size (-x) or give EAL more memory (-m).")
                }
                rings.append(ring)
                receiveWorkers.append(ReceiveWorker(
                    port: port.id, queue: UInt16(queue), ring: ring, settings: settings,
                    counters: rxCounters[ringIndex], control: control,
                    captureTimeField: captureTimeField, deviceTimestamp: device))
                receiveLcores.append(lcoreIterator.next()!)
                for worker in 0..<settings.txWorkersPerRing {
                    let txIndex = ringIndex * settings.txWorkersPerRing + worker
                    transmitWorkers.append(try TransmitWorker(
                        index: txIndex, ring: ring, settings: settings, counters: txCounters[txIndex], control: control,
                        captureTimeField: captureTimeField, kafka: kafka))
                    transmitLcores.append(lcoreIterator.next()!)
                }
            }
        }
    }

    /// Launches transmit workers first, so rings drain from the first packet.
    public func start() throws(CaptureError) {
        for (worker, lcore) in zip(transmitWorkers, transmitLcores) {
            try launch(TransmitWorker.entry, Unmanaged.passUnretained(worker).toOpaque(), lcore)
        }
        for (worker, lcore) in zip(receiveWorkers, receiveLcores) {
            try launch(ReceiveWorker.entry, Unmanaged.passUnretained(worker).toOpaque(), lcore)
        }
    }

    private func launch(_ entry: @convention(c) (UnsafeMutableRawPointer?) -> Int32,
                        _ arg: UnsafeMutableRawPointer, _ lcore: UInt32) throws(CaptureError) {
        let status = rte_eal_remote_launch(entry, arg, lcore)
        guard status == 0 else {
            stopWorkers()
            throw CaptureError("cannot launch a worker on lcore \(lcore): \(CaptureError.dpdkReason(-status))", fix: "")
        }
    }

    public struct DrainResult: Sendable {
        public var ringsDrained: Bool
        public var flushed: Bool
    }

    /// Graceful stop: stop receiving, let the transmit workers empty the rings,
    /// then flush every producer. Gives up after `timeoutMs` in all: what is then
    /// left in the rings is counted as drain-timeout drops, and what librdkafka
    /// still holds is purged (counted as delivery failures).
    public func stopAndDrain(timeoutMs: Int) -> DrainResult {
        let deadline = Self.nowMillis() + timeoutMs
        var ringsDrained = true
        // Waits for lcores to return; past the deadline, tells every worker to give
        // up its backlog (a receive worker may be waiting for ring room under
        // `--ring-full wait`, a transmit worker for a producer that failed).
        func join(_ lcores: [UInt32]) {
            while lcores.contains(where: { rte_eal_get_lcore_state($0) == RUNNING }) {
                if Self.nowMillis() >= deadline && ringsDrained {
                    ringsDrained = false
                    control.set(WorkerControl.abandon)
                }
                usleep(1000)
            }
            for lcore in lcores { rte_eal_wait_lcore(lcore) }
        }
        control.set(WorkerControl.stopReceiving)
        join(receiveLcores)
        control.set(WorkerControl.drain)
        join(transmitLcores)
        var flushed = true
        for worker in transmitWorkers {
            let remaining = Int32(clamping: max(deadline - Self.nowMillis(), 0))
            let generation = worker.producer.generation
            generation.stopDeliveryReports() // flushing polls it here
            let producer = generation.producer!
            if !producer.flush(timeoutMs: remaining) {
                flushed = false
                producer.purgeAll()
            }
            // A producer that failed fatally during the drain has no successor.
            generation.failRescued()
        }
        return DrainResult(ringsDrained: ringsDrained, flushed: flushed)
    }

    /// Immediate stop without draining (used when start-up fails half-way).
    func stopWorkers() {
        control.set(WorkerControl.stopReceiving)
        control.set(WorkerControl.drain)
        control.set(WorkerControl.abandon)
        for lcore in receiveLcores + transmitLcores { rte_eal_wait_lcore(lcore) }
    }

    /// A sample of every counter. Counters are read one by one while workers
    /// run, so only a snapshot taken after `stopAndDrain` balances exactly.
    public func snapshot() -> CaptureSnapshot {
        let perQueue = (0..<rxCounters.count).map { cfc_rx_counters.sample(rxCounters[$0]) }
        let perWorker = transmitWorkers.map { $0.counts() }
        var nic = Port.Statistics()
        for port in ports {
            let stats = port.statistics()
            nic.received += stats.received
            nic.receivedBytes += stats.receivedBytes
            nic.missed += stats.missed
            nic.errors += stats.errors
            nic.noMbuf += stats.noMbuf
        }
        let depth = ringDepths().reduce(0, +)
        return CaptureSnapshot(perQueue: perQueue, perWorker: perWorker, nic: nic, ringDepth: depth)
    }

    /// Each port's extended statistics as a JSON object keyed by port id.
    public func extendedStatisticsJSON() -> String {
        let ports = self.ports.map { port in
            let fields = port.extendedStatistics().map { "\"\($0.name)\":\($0.value)" }.joined(separator: ",")
            return "\"\(port.id)\":{\(fields)}"
        }
        return "{" + ports.joined(separator: ",") + "}"
    }

    /// Packets waiting in each transmit ring.
    public func ringDepths() -> [Int] { rings.map { Int(rte_ring_count($0)) } }

    /// librdkafka's latest statistics JSON from each producer that posted one.
    public func takeStatistics() -> [String] {
        transmitWorkers.compactMap { $0.producer.generation.takeStatistics() }
    }

    /// Frees rings, ports, mempool and producers. Workers must have stopped.
    public func release() {
        guard !released else { return }
        released = true
        _ = takeStatistics() // frees what is left in the mailboxes
        transmitWorkers.removeAll() // destroys the producers
        for port in ports { port.stop() }
        for ring in rings { rte_ring_free(ring) }
        rings.removeAll()
        for pool in pools { rte_mempool_free(pool) }
        pools.removeAll()
    }

    static func nowMillis() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return now.tv_sec * 1000 + now.tv_nsec / 1_000_000
    }
}

/// Every counter at one moment, summed and per worker.
public struct CaptureSnapshot: Sendable {
    public var perQueue: [ReceiveCounts]
    public var perWorker: [TransmitCounts]
    public var nic: Port.Statistics
    public var ringDepth: Int

    public var rx: ReceiveCounts { perQueue.reduce(ReceiveCounts(), +) }
    public var tx: TransmitCounts { perWorker.reduce(TransmitCounts(), +) }

    /// Packets dropped after the probe received them, by reason.
    public var drops: [(reason: String, count: UInt64)] {
        let rx = self.rx, tx = self.tx
        return [("ring_full", rx.ringFullDrops), ("queue_full", tx.queueFullDrops), ("too_large", tx.tooLargeDrops),
                ("produce_error", tx.produceErrorDrops), ("delivery_failed", tx.deliveryFailed),
                ("drain_timeout", tx.drainTimeoutDrops), ("malformed", tx.malformedDrops), ("null_sink", tx.nullSinkDrops)]
    }

    public var dropped: UInt64 { drops.reduce(0) { $0 + $1.count } }

    /// Received, not yet delivered nor dropped: in a ring, or produced and awaiting its report.
    public var inFlight: UInt64 {
        let rx = self.rx, tx = self.tx
        return (rx.enqueued &- tx.dequeued) &+ tx.inFlight
    }

    /// received = delivered + dropped + in flight.
    public var balances: Bool { rx.received == tx.delivered &+ dropped &+ inFlight }
}
