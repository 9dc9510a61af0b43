import CFastcapaShared
import CRdKafka
import Glibc

// The end of a generation: retired in favour of a successor (restart, reload),
// or flushed at shutdown. Both run off the lcores, on the worker's owner thread,
// which may block, but only in steps bounded by a deadline.
extension ProducerGeneration {
    /// What retiring a producer did.
    package struct Retirement: Sendable {
        /// Messages it still held that went to the successor.
        package var reproduced: UInt64
        /// Messages it still held that could not be re-produced.
        package var lost: UInt64
        /// The deadline ran out (a stop asked for it, or the retirement took too
        /// long): what was left was purged and counted as failed.
        package var cutShort: Bool
    }

    /// Retires this generation once `successor` has taken its place and no lcore
    /// can still use it (after the RCU grace period): its report thread stops
    /// before the successor's starts (both count into the worker's counters,
    /// which have one writer at a time); from now on its reports count into
    /// `retired`; its queued messages (and, when it failed fatally, its in-flight
    /// ones) are purged. Its delivery callback only keeps what failed (here, off
    /// the lcores, the rescue buffer grows as needed); this loop polls it and
    /// produces what it kept again to the successor, waiting for room there in
    /// 1 ms steps. Every step checks `deadline()` (monotonic milliseconds, read
    /// again each time: a stop may bring it forward). When it passes, what is left
    /// is purged and counted as failed: a retirement never holds a stop up for
    /// longer than its purge takes (`purgeGraceMs`).
    package func retire(
        to successor: ProducerGeneration,
        countingInto retired: UnsafeMutablePointer<fastcapa_tx_counters>,
        deadline: () -> Int
    ) -> Retirement {
        stopDeliveryReports()
        successor.resumeDeliveryReports()
        let reproducedBefore = fastcapa_counter_load(&retired.pointee.reproduced)
        let failedBefore = fastcapa_counter_load(&retired.pointee.delivery_failed)
        context.pointee.deliveries = retired
        fastcapa_counter_store(&context.pointee.poll_time_us, 0)  // its reports now read the clock
        rescue.growable = true
        fastcapa_counter_store(&context.pointee.keep_failed, UInt64(FASTCAPA_KEEP_ALWAYS))
        producer.purge(inFlight: isFatal)
        var cutShort = false
        while true {
            let remaining = deadline() - Self.monotonicMillis()
            if remaining <= 0 {
                cutShort = true
                break
            }
            producer.poll(timeoutMs: Int32(min(remaining, 10)))
            let emptied = replayRescue(to: successor, deadline: deadline)
            if emptied && producer.outstanding == 0 { break }
        }
        if cutShort {
            fastcapa_counter_store(&context.pointee.keep_failed, UInt64(FASTCAPA_KEEP_NEVER))
            producer.purgeAll(untilMillis: Self.monotonicMillis() + Self.purgeGraceMs)
            failRescued()
        }
        producer.poll(timeoutMs: 0)
        return Retirement(
            reproduced: fastcapa_counter_load(&retired.pointee.reproduced) - reproducedBefore,
            lost: fastcapa_counter_load(&retired.pointee.delivery_failed) - failedBefore,
            cutShort: cutShort
        )
    }

    /// How long purged messages may take to report, after a deadline ran out.
    package static let purgeGraceMs = 3000

    /// Shutdown: serves reports here until everything is delivered or `deadline`
    /// (monotonic ms) passes, then fails what is left (purged, counted as failed
    /// deliveries, polled until `purgeDeadline` at most), and counts the rescued
    /// messages as failed: a producer that failed during the drain has no
    /// successor. Records what librdkafka still holds for the final accounting.
    /// Returns true when all was delivered.
    package func flushForShutdown(deadline: Int, purgeDeadline: Int) -> Bool {
        stopDeliveryReports()  // flushing polls it here
        fastcapa_counter_store(&context.pointee.keep_failed, UInt64(FASTCAPA_KEEP_NEVER))
        let flushed = producer.flush(timeoutMs: Int32(clamping: max(deadline - Self.monotonicMillis(), 0)))
        if !flushed { producer.purgeAll(untilMillis: purgeDeadline) }
        failRescued()
        producer.poll(timeoutMs: 0)
        fastcapa_counter_store(&context.pointee.final_outstanding, flushed ? 0 : UInt64(max(outstandingPackets, 0)))
        fastcapa_counter_store(&context.pointee.flushed, 1)
        return flushed
    }

    /// Shutdown with a relative timeout (tests).
    package func flushForShutdown(timeoutMs: Int) -> Bool {
        let now = Self.monotonicMillis()
        return flushForShutdown(deadline: now + timeoutMs, purgeDeadline: now + timeoutMs + Self.purgeGraceMs)
    }

    /// Counts the rescued messages as failed (a bundle's packets, its buffer
    /// handed back): there will be no successor.
    func failRescued() {
        let counters = context.pointee.deliveries!
        if bundlePool == nil {
            fastcapa_counter_add(&counters.pointee.delivery_failed, UInt64(rescue.discardAll()))
        } else {
            rescue.replay { message in
                fastcapa_counter_add(&counters.pointee.delivery_failed, UInt64(packets(opaque: message.opaque)))
                release(opaque: message.opaque)
                return true
            }
        }
        fastcapa_counter_store(&context.pointee.kept, 0)
    }

    /// Produces the rescued messages to the successor, in order, waiting for room
    /// in its queue in 1 ms steps (its own lcore or thread serves its reports)
    /// until `deadline`. A message the successor refuses for any other reason
    /// counts as failed. Returns true when the buffer is empty.
    /// A bundle keeps its descriptor (the opaque) and buffer until the
    /// successor's final report for it; its packets count.
    func replayRescue(to successor: ProducerGeneration, deadline: () -> Int) -> Bool {
        let counters = context.pointee.deliveries!
        let emptied = rescue.replay { message in
            let packets = packets(opaque: message.opaque)
            while true {
                // Counted before librdkafka can report it (its reports are served elsewhere).
                if bundlePool != nil { successor.addQueuedPackets(packets) }
                let status = Self.produceAgain(message, to: successor.producer, stampsCaptureTime: stampsCaptureTime)
                if status == RD_KAFKA_RESP_ERR_NO_ERROR {
                    fastcapa_counter_add(&counters.pointee.reproduced, UInt64(packets))
                    keepCountDown(packets)
                    return true
                }
                if bundlePool != nil { successor.addQueuedPackets(-packets) }
                guard status == RD_KAFKA_RESP_ERR__QUEUE_FULL else {
                    fastcapa_counter_add(&counters.pointee.delivery_failed, UInt64(packets))
                    release(opaque: message.opaque)
                    keepCountDown(packets)
                    return true
                }
                if Self.monotonicMillis() >= deadline() { return false }
                usleep(1000)
            }
        }
        return emptied
    }

    /// `packets` left the rescue buffer (this thread polls: the one writer of `kept`).
    private func keepCountDown(_ packets: Int) {
        let kept = fastcapa_counter_load(&context.pointee.kept)
        fastcapa_counter_store(&context.pointee.kept, kept >= UInt64(packets) ? kept - UInt64(packets) : 0)
    }

    /// Produces a rescued message to `producer` (copied), with the headers it had
    /// and, when record times are capture times, its capture time (the key's) as
    /// its record timestamp; else librdkafka stamps it now, as it would any message
    /// sent now (off the lcores: building the headers allocates). Returns why it
    /// was refused, or `RD_KAFKA_RESP_ERR_NO_ERROR`.
    static func produceAgain(
        _ message: RescueBuffer.Message,
        to producer: KafkaProducer,
        stampsCaptureTime: Bool
    ) -> rd_kafka_resp_err_t {
        var fields = [rd_kafka_vu_t](repeating: rd_kafka_vu_t(), count: 7)
        fields[0].vtype = RD_KAFKA_VTYPE_RKT
        fields[0].u.rkt = producer.topic
        fields[1].vtype = RD_KAFKA_VTYPE_MSGFLAGS
        fields[1].u.i = RD_KAFKA_MSG_F_COPY
        fields[2].vtype = RD_KAFKA_VTYPE_VALUE
        fields[2].u.mem = .init(ptr: UnsafeMutableRawPointer(mutating: message.payload), size: message.length)
        fields[3].vtype = RD_KAFKA_VTYPE_KEY
        fields[3].u.mem = .init(ptr: UnsafeMutableRawPointer(mutating: message.key), size: message.keyLength)
        fields[4].vtype = RD_KAFKA_VTYPE_OPAQUE
        fields[4].u.ptr = message.opaque
        // 0: librdkafka reads its clock.
        fields[5].vtype = RD_KAFKA_VTYPE_TIMESTAMP
        fields[5].u.i64 =
            stampsCaptureTime
            ? MessageContract.micros(key: message.key, length: message.keyLength).map {
                MessageContract.recordMillis(micros: $0)
            } ?? 0 : 0
        var list: OpaquePointer?
        if !message.headers.isEmpty {
            let headers = rd_kafka_headers_new(4)!
            RescueBuffer.decode(message.headers) { name, value in
                _ = rd_kafka_header_add(
                    headers,
                    name.baseAddress!.assumingMemoryBound(to: CChar.self),
                    name.count,
                    value.baseAddress,
                    value.count
                )
            }
            fields[6].vtype = RD_KAFKA_VTYPE_HEADERS
            fields[6].u.headers = headers
            list = headers
        }
        guard let error = rd_kafka_produceva(producer.handle, fields, list == nil ? 6 : 7) else {
            return RD_KAFKA_RESP_ERR_NO_ERROR
        }
        // Not taken: the headers are still ours.
        if let list { rd_kafka_headers_destroy(list) }
        let code = rd_kafka_error_code(error)
        rd_kafka_error_destroy(error)
        return code
    }

    package static func monotonicMillis() -> Int {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return now.tv_sec * 1000 + now.tv_nsec / 1_000_000
    }
}
