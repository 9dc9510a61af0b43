import FastcapaKafka
import Glibc

/// What replacing a transmit worker's producer did.
package struct ProducerReplacement: Sendable {
    package var worker: Int
    package var oldGeneration: Int
    package var newGeneration: Int
    package var oldWasFatal: Bool
    /// Messages the old producer still held that went to the new one.
    package var reproduced: UInt64
    /// Messages the old producer still held that could not be re-produced.
    package var lost: UInt64
    package var seconds: Double
}

extension TransmitWorker {
    /// A new producer generation for this worker (not yet published).
    func makeGeneration(number: Int, kafka: KafkaProperties) throws -> ProducerGeneration {
        try ProducerGeneration(
            number: number,
            properties: kafka,
            topic: topic,
            clientID: "fastcapa-tx\(index)",
            deliveries: counters,
            partitioner: partitioning == .key ? .librdkafka : .hint,
            reports: deliveryReports == .thread ? .thread : .producer
        )
    }

    /// Builds the next producer generation, publishes it (with `live`) through
    /// RCU, waits for the grace period, then retires the old producer into it.
    ///
    /// Blocks (grace period, retirement): run it on a thread of its own, never on
    /// an lcore or Swift's cooperative pool. One at a time per worker.
    package func replaceProducer(
        kafka: KafkaProperties,
        live: LiveSettings,
        retireTimeoutMs: Int = 30_000
    ) throws -> ProducerReplacement {
        let started = Self.seconds()
        let next = try makeGeneration(number: producer.generation.number + 1, kafka: kafka)
        let old = producer.replace(with: next, live: live)
        // From here only this thread touches the old producer.
        let fatal = old.isFatal
        let retirement = old.retire(to: next, countingInto: retiredCounters[0], timeoutMs: retireTimeoutMs)
        return ProducerReplacement(
            worker: index,
            oldGeneration: old.number,
            newGeneration: next.number,
            oldWasFatal: fatal,
            reproduced: retirement.reproduced,
            lost: retirement.lost,
            seconds: Self.seconds() - started
        )
    }

    static func seconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
