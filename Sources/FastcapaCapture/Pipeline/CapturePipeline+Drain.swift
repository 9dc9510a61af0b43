import CDPDK
import FastcapaKafka
import Glibc

extension CapturePipeline {
    package struct DrainResult: Sendable {
        package var ringsDrained: Bool
        package var flushed: Bool
        /// Bundle buffers not handed back after the flush (each final report hands
        /// one back exactly once): 0 unless a report was lost or counted twice.
        package var bundleBuffersAstray = 0
    }

    /// A stop was asked for, to end by `deadline` (monotonic ms): from now on no
    /// producer replacement starts, and one in progress finishes its retirement by
    /// then. Safe from any thread; the first deadline wins.
    package func requestStop(deadline: Int) {
        control.requestStop(deadline: deadline)
    }

    /// The stop's deadline (monotonic ms), `Int.max` while none was asked for.
    package var stopDeadlineMillis: Int { control.stopDeadlineMillis }

    /// Now, in the monotonic milliseconds deadlines use.
    package static func nowMillis() -> Int { ProducerGeneration.monotonicMillis() }

    /// Graceful stop: stop receiving, let the transmit workers empty the rings,
    /// then flush every producer, all by the stop's deadline (`requestStop`; set
    /// here to `timeoutMs` from now if none was asked for). Past it, what is left
    /// in the rings is counted as drain-timeout drops, and what librdkafka still
    /// holds is purged (counted as delivery failures), its reports polled for at
    /// most `ProducerGeneration.purgeGraceMs` more. Runs on the main lcore.
    package func stopAndDrain(timeoutMs: Int) -> DrainResult {
        control.requestStop(deadline: Self.nowMillis() + timeoutMs)
        let deadline = control.stopDeadlineMillis
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
        markWorkersStopped()
        // Each flush first waits for a replacement in progress on the owner
        // thread, which ends by the deadline too.
        var flushed = true
        let purgeDeadline = deadline + ProducerGeneration.purgeGraceMs
        for worker in transmitWorkers {
            let delivered = worker.flushForShutdown(deadline: deadline, purgeDeadline: purgeDeadline)
            flushed = flushed && delivered
        }
        let astray = transmitWorkers.reduce(0) { $0 + $1.bundleBuffersAstray() }
        return DrainResult(ringsDrained: ringsDrained, flushed: flushed, bundleBuffersAstray: astray)
    }

    /// Immediate stop without draining (start-up failed half-way).
    func stopWorkers() {
        control.set(WorkerControl.stopReceiving)
        control.set(WorkerControl.drain)
        control.set(WorkerControl.abandon)
        for lcore in receiveLcores + transmitLcores { rte_eal_wait_lcore(lcore) }
        markWorkersStopped()
    }
}
