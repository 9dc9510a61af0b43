import CFastcapaShared
import Glibc

// The end of a generation: retired in favour of a successor (restart, reload),
// or flushed at shutdown. Both run off the lcores, on a thread that may block.
extension ProducerGeneration {
    /// What retiring a producer did.
    package struct Retirement: Sendable {
        /// Messages it still held that went to the successor.
        package var reproduced: UInt64
        /// Messages it still held that could not be re-produced.
        package var lost: UInt64
    }

    /// Retires this generation once `successor` has taken its place and no lcore
    /// can still use it (after the RCU grace period): its report thread stops
    /// before the successor's starts (both count into the worker's counters,
    /// which have one writer at a time); from now on its reports count into
    /// `retired`; its queued messages (and, when it failed fatally, its
    /// in-flight ones) are purged and produced again to the successor from
    /// their delivery reports, as are the messages its rescue buffer kept.
    package func retire(
        to successor: ProducerGeneration,
        countingInto retired: UnsafeMutablePointer<fastcapa_tx_counters>,
        timeoutMs: Int
    ) -> Retirement {
        stopDeliveryReports()
        successor.resumeDeliveryReports()
        let reproducedBefore = fastcapa_counter_load(&retired.pointee.reproduced)
        let failedBefore = fastcapa_counter_load(&retired.pointee.delivery_failed)
        let fatal = isFatal
        context.pointee.deliveries = retired
        fastcapa_counter_store(&context.pointee.poll_time_us, 0)  // its reports now read the clock
        context.pointee.successor_topic = UnsafeMutableRawPointer(successor.producer.topic)
        drainRescue(to: successor.producer.topic)
        producer.purge(inFlight: fatal)
        let deadline = Self.monotonicMillis() + timeoutMs
        while producer.outstanding > 0 && Self.monotonicMillis() < deadline {
            producer.poll(timeoutMs: 10)
        }
        if producer.outstanding > 0 { producer.purgeAll() }
        producer.poll(timeoutMs: 0)
        return Retirement(
            reproduced: fastcapa_counter_load(&retired.pointee.reproduced) - reproducedBefore,
            lost: fastcapa_counter_load(&retired.pointee.delivery_failed) - failedBefore
        )
    }

    /// Shutdown: serves reports here until everything is delivered or
    /// `timeoutMs` passes, then fails what is left (purged, counted as failed
    /// deliveries), and counts the rescued messages as failed: a producer that
    /// failed during the drain has no successor. Returns true when all was delivered.
    package func flushForShutdown(timeoutMs: Int) -> Bool {
        stopDeliveryReports()  // flushing polls it here
        let flushed = producer.flush(timeoutMs: Int32(clamping: max(timeoutMs, 0)))
        if !flushed { producer.purgeAll() }
        failRescued()
        return flushed
    }

    /// Counts the rescued messages as failed: there will be no successor.
    func failRescued() {
        let counters = context.pointee.deliveries!
        let count = rescue.count
        rescue.drain { _, _, _, _, _ in }
        fastcapa_counter_add(&counters.pointee.delivery_failed, UInt64(count))
    }

    /// Produces the rescued messages to the successor.
    func drainRescue(to successor: OpaquePointer) {
        let counters = context.pointee.deliveries!
        rescue.drain { payload, length, key, keyLength, opaque in
            if Self.reproduce(successor, payload, length, key, keyLength, opaque) {
                fastcapa_counter_add(&counters.pointee.reproduced, 1)
            } else {
                fastcapa_counter_add(&counters.pointee.delivery_failed, 1)
            }
        }
    }

    static func monotonicMillis() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return now.tv_sec * 1000 + now.tv_nsec / 1_000_000
    }
}
