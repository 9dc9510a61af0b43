import CDPDK
import Glibc

extension CapturePipeline {
    package struct DrainResult: Sendable {
        package var ringsDrained: Bool
        package var flushed: Bool
    }

    /// Graceful stop: stop receiving, let the transmit workers empty the rings,
    /// then flush every producer. Gives up after `timeoutMs` in all: what is then
    /// left in the rings is counted as drain-timeout drops, and what librdkafka
    /// still holds is purged (counted as delivery failures). Runs on the main lcore.
    package func stopAndDrain(timeoutMs: Int) -> DrainResult {
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
            if !worker.producer.generation.flushForShutdown(timeoutMs: deadline - Self.nowMillis()) {
                flushed = false
            }
        }
        return DrainResult(ringsDrained: ringsDrained, flushed: flushed)
    }

    /// Immediate stop without draining (start-up failed half-way).
    func stopWorkers() {
        control.set(WorkerControl.stopReceiving)
        control.set(WorkerControl.drain)
        control.set(WorkerControl.abandon)
        for lcore in receiveLcores + transmitLcores { rte_eal_wait_lcore(lcore) }
    }

    static func nowMillis() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return now.tv_sec * 1000 + now.tv_nsec / 1_000_000
    }
}
