import CDPDK
import FastcapaKafka
import Glibc

/// What replacing a transmit worker's producer did.
public struct ProducerReplacement: Sendable {
    public var worker: Int
    public var oldGeneration: Int
    public var newGeneration: Int
    public var oldWasFatal: Bool
    /// Messages the old producer still held that went to the new one.
    public var reproduced: UInt64
    /// Messages the old producer still held that could not be re-produced.
    public var lost: UInt64
    public var seconds: Double
}

extension TransmitWorker {
    /// Builds the next producer generation, publishes it (with `live`) through
    /// RCU, waits for the grace period, then retires the old producer: its queued
    /// messages (and, when it failed fatally, its in-flight ones) are purged and
    /// produced again to the new producer from their delivery reports.
    ///
    /// Blocks (grace period, retirement): run it on a thread of its own, never on
    /// an lcore or Swift's cooperative pool. One at a time per worker.
    public func replaceProducer(kafka: KafkaProperties, live: LiveSettings, retireTimeoutMs: Int = 30_000) throws -> ProducerReplacement {
        let started = Self.seconds()
        let next = try makeGeneration(kafka: kafka)
        let old = producer.replace(with: next, live: live)
        // From here only this thread touches the old producer. Its report
        // thread stops before the successor's starts: both count into the
        // worker's counters, and counters have one writer at a time.
        old.stopDeliveryReports()
        next.resumeDeliveryReports()
        let retired = retiredCounters[0]
        let before = cfc_tx_counters.sample(retired)
        let fatal = old.isFatal
        old.context.pointee.deliveries = retired
        cfc_counter_store(&old.context.pointee.poll_time_us, 0) // its reports now read the clock
        old.context.pointee.successor_topic = UnsafeMutableRawPointer(next.producer.topic)
        old.drainRescue(to: next.producer.topic)
        let producer = old.producer!
        producer.purge(inFlight: fatal)
        let deadline = started + Double(retireTimeoutMs) / 1000
        while producer.outstanding > 0 && Self.seconds() < deadline {
            producer.poll(timeoutMs: 10)
        }
        if producer.outstanding > 0 { producer.purgeAll() }
        producer.poll(timeoutMs: 0)
        let after = cfc_tx_counters.sample(retired)
        return ProducerReplacement(
            worker: index, oldGeneration: old.number, newGeneration: next.number, oldWasFatal: fatal,
            reproduced: after.reproduced - before.reproduced, lost: after.deliveryFailed - before.deliveryFailed,
            seconds: Self.seconds() - started)
    }

    static func seconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}
