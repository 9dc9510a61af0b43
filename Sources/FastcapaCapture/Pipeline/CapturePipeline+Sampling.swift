import CDPDK
import CLinux
import CURCU
import FastcapaKafka

extension CapturePipeline {
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
        var snapshot = CaptureSnapshot(
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
        snapshot.activeExclusions = ExclusionReason.allCases.filter { reason in
            switch reason {
            case .filtered: true
            case .flowCutoff: hasFlowTables
            case .duplicate: hasDuplicateWindows
            }
        }
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

    /// Each port's extended statistics as a JSON object keyed by port id (sampler only).
    private func extendedStatisticsJSON() -> String {
        let ports = self.ports.map { port in
            let fields = port.extendedStatistics().map { "\"\($0.name)\":\($0.value)" }.joined(separator: ",")
            return "\"\(port.id)\":{\(fields)}"
        }
        return "{" + ports.joined(separator: ",") + "}"
    }
}
