import CDPDK
import CFastcapaShared
import FastcapaKafka
import Synchronization

/// The whole data path: ports → receive workers → transmit rings → transmit
/// workers → Kafka. Built in that order, torn down in reverse.
package final class CapturePipeline: @unchecked Sendable {
    /// As given, but for `ringFull`, which a replay of files changes (`build`).
    package internal(set) var settings: CaptureSettings
    /// The test seams this run was given.
    let testing: TestingHooks
    package internal(set) var ports: [Port] = []
    package internal(set) var receiveWorkers: [ReceiveWorker] = []
    package internal(set) var transmitWorkers: [TransmitWorker] = []
    /// Each port's packet-buffer pool: how many, how large.
    package internal(set) var mempools: [MempoolSizing] = []
    /// Which clock gives each port's capture times.
    package internal(set) var captureTimes: [PortCaptureTime] = []
    var pools: [OpaquePointer] = []
    var rings: [OpaquePointer] = []

    /// How many packets each transmit ring holds (one slot fewer than its size).
    package var ringCapacities: [Int] { rings.map { Int(rte_ring_get_capacity($0)) } }
    let rxCounters: CounterBlock<fastcapa_rx_counters>
    let txCounters: CounterBlock<fastcapa_tx_counters>
    /// A heartbeat per worker lcore, in launch order.
    let heartbeats: Heartbeats
    /// The ports' links, read by the sampler.
    let links = PortLinks()
    let control = WorkerControl()
    /// The capture filter the receive workers read (through RCU).
    package internal(set) var filter = FilterSlot(nil)
    /// The flow cutoff's and duplicate window's rules the receive workers read (through RCU).
    package internal(set) var rules = ReceiveRulesSlot(ReceiveRules())
    /// The lcores that receive (on their own, or co-scheduled with a transmit loop), and those that only transmit.
    var receiveLcores: [UInt32] = []
    var transmitLcores: [UInt32] = []
    /// Queues whose receive and transmit loops share an lcore, and those lcores (among `receiveLcores`).
    var coScheduled: [CoScheduledWorker] = []
    var coScheduledLcores: [UInt32] = []
    /// Which lcore runs which loop, a line per queue (logged at start).
    package internal(set) var workerLayout: [String] = []
    private var released = false
    /// Set by the drain once every lcore has returned (read by the sampler).
    private let workersReturned = Atomic<Bool>(false)
    var workersStopped: Bool { workersReturned.load(ordering: .acquiring) }
    func markWorkersStopped() { workersReturned.store(true, ordering: .releasing) }

    /// Sets everything up; on failure releases whatever it had set up.
    /// Whether `--ring-full` is `wait` because every port replays files and none was given.
    package internal(set) var replayWaits = false

    /// - Parameter cpus: the CPUs the process may use, for the layout a refusal recommends.
    ///   - testing: the test seams (`.none` in a release build).
    package init(
        settings: CaptureSettings,
        kafka: KafkaProperties,
        lcores: [UInt32],
        cpus: [Int],
        testing: TestingHooks = .none
    ) throws {
        self.settings = settings
        self.testing = testing
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

    /// A test seam (`TestingHooks.miscountDelivery`): counts one delivery report twice on worker 0,
    /// as a bug in the delivery callback would, so that a test can see the final accounting catch it.
    package func testingMiscountOneDelivery() {
        guard let worker = transmitWorkers.first else { return }
        fastcapa_counter_add(&worker.counters.pointee.delivered, 1)
    }

    /// Whether the receive queues have flow tables (a cutoff was set at start).
    package var hasFlowTables: Bool { receiveWorkers.first?.flows != nil }
    /// Flows each receive queue's table holds (nil: no cutoff was set at start).
    package var flowTableCapacity: Int? { receiveWorkers.first?.flows?.capacity }
    /// Frames each receive queue's duplicate window holds (nil: no window was set at start).
    package var duplicateWindowEntries: Int? { receiveWorkers.first?.duplicates?.entries }
    /// Whether the receive queues have duplicate windows (a window was set at start).
    package var hasDuplicateWindows: Bool { receiveWorkers.first?.duplicates != nil }

    /// The start lines of the flow cutoff and the duplicate window: what is in force and the DPDK memory
    /// their tables take.
    package var volumeReductionLines: [String] {
        let queues = receiveWorkers.count
        var lines: [String] = []
        for port in ports { if let plan = port.flowQueueing { lines.append(plan.description(port: port.id)) } }
        if let cutoff = settings.flowCutoff, let table = receiveWorkers.first?.flows {
            let mebibytes = Double(FlowTable.approximateBytes(capacity: table.capacity)) / 1_048_576
            lines.append(
                "flow cutoff: \(cutoff.summary); \(queues) flow table(s) of \(table.capacity) flows, "
                    + "\(String(format: "%.1f", mebibytes)) MiB each"
            )
        }
        if settings.dedupWindowMicros > 0, let window = receiveWorkers.first?.duplicates {
            let mebibytes = Double(DuplicateWindow.approximateBytes(entries: window.entries)) / 1_048_576
            lines.append(
                "duplicate removal: window \(settings.dedupWindowMicros) µs; \(queues) window(s) of "
                    + "\(window.entries) frames, \(String(format: "%.1f", mebibytes)) MiB each"
            )
        }
        return lines
    }

    /// Frees rings, ports, mempool and producers. Workers and the sampler must have
    /// stopped. Each producer is released on its owner thread.
    package func release() {
        guard !released else { return }
        released = true
        for worker in transmitWorkers { worker.releaseProducer() }
        coScheduled.removeAll()
        transmitWorkers.removeAll()
        for worker in receiveWorkers { worker.releaseTables() }
        receiveWorkers.removeAll()
        filter = FilterSlot(nil)  // destroys the filter's program
        for port in ports { port.stop() }
        for ring in rings { rte_ring_free(ring) }
        rings.removeAll()
        for pool in pools { rte_mempool_free(pool) }
        pools.removeAll()
    }
}
