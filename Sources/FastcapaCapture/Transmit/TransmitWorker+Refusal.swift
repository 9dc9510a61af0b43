import CFastcapaShared
import FastcapaKafka

extension TransmitWorker {
    /// What happens to a message librdkafka refused.
    enum RefusalOutcome {
        /// Offer it again: the worker waited for room in librdkafka's queue.
        case retry
        /// The producer failed fatally: keep it (and what follows) for the successor.
        case keepForSuccessor
        /// Counted as dropped, with its reason.
        case dropped
    }

    /// Decides, and counts, what happens to a refused message, for both ways of
    /// producing: a full queue is waited out while the burst's budget of waits
    /// (`--queue-full-retries`, per dequeued burst in both modes) lasts and the
    /// drain has not given up; a fatal error keeps the message for the successor
    /// (unless the drain gave up); anything else is dropped and counted by reason.
    /// The worker stays online while it waits: it still holds this record.
    @inline(__always)
    func settle(
        _ refusal: ProduceRefusal,
        retries: inout Int,
        _ record: WorkerRecord,
        giveUp: Bool,
        packets: Int = 1
    ) -> RefusalOutcome {
        if refusal == .fatal && !giveUp { return .keepForSuccessor }
        if refusal == .queueFull && retries > 0 && fastcapa_flag_load(control.flags + WorkerControl.abandon) == 0 {
            retries -= 1
            fastcapa_counter_add(&counters.pointee.queue_full_retries, 1)
            record.producer.waitForQueueRoom(servingReports: deliveryReports == .lcore)
            return .retry
        }
        // A refused bundle counts each of its packets.
        let dropped = UInt64(packets)
        switch refusal {
        case .queueFull: fastcapa_counter_add(&counters.pointee.queue_full_drops, dropped)
        case .tooLarge: fastcapa_counter_add(&counters.pointee.too_large_drops, dropped)
        case .fatal, .other: fastcapa_counter_add(&counters.pointee.produce_error_drops, dropped)
        }
        return .dropped
    }

    /// Counts `count` messages of `bytes` librdkafka took, `truncated` of them cut to the snap length.
    @inline(__always)
    func countProduced(_ count: Int, bytes: Int, truncated: Int) {
        fastcapa_counter_add(&counters.pointee.produced, UInt64(count))
        fastcapa_counter_add(&counters.pointee.produced_bytes, UInt64(bytes))
        if truncated > 0 { fastcapa_counter_add(&counters.pointee.truncated, UInt64(truncated)) }
    }
}
