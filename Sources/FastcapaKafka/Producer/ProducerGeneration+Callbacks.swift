import CFastcapaShared
import CRdKafka
import Glibc

// librdkafka's callbacks, on the thread that polls the producer: the transmit
// lcore, its delivery-report thread, or a supervisor's thread retiring it.
// No allocation, lock of ours or I/O: they may run on an lcore.
extension ProducerGeneration {
    /// Counts a delivery report (a bundle's counts its packets and hands its
    /// buffer back, unless kept). A failed message is kept in the rescue buffer
    /// instead when there will be a successor to take it (the producer failed
    /// fatally, or it is retiring): the retiring thread produces it again. Nothing
    /// here waits: a report is counted or kept, and the poll goes on.
    static let deliveryReport: KafkaProducer.DeliveryCallback = { _, message, opaque in
        guard let message, let opaque else { return }
        let context = opaque.assumingMemoryBound(to: fastcapa_producer_context.self)
        let counters = context.pointee.deliveries!
        let report = message.pointee
        // A bundle (the pool is set) counts its packets; a single message is one.
        let pool = context.pointee.bundle_pool?.assumingMemoryBound(to: fastcapa_bundle_pool.self)
        let bundle = pool != nil ? report._private?.assumingMemoryBound(to: fastcapa_bundle.self) : nil
        let packets = UInt64(bundle?.pointee.packets ?? 1)
        if bundle != nil { fastcapa_packets_add(&context.pointee.queued_packets, -Int64(packets)) }
        if report.err == RD_KAFKA_RESP_ERR_NO_ERROR {
            fastcapa_counter_add(&counters.pointee.delivered, packets)
            fastcapa_counter_add(&counters.pointee.delivered_bytes, UInt64(report.len))
            if let pool, let bundle {
                fastcapa_counter_add(&counters.pointee.bundles_delivered, 1)
                fastcapa_bundle_give(pool, bundle)
            }
            if let captured = MessageContract.micros(key: report.key, length: report.key_len) {
                // The owner reads the clock once before each poll, not once per report.
                let polled = fastcapa_counter_load(&context.pointee.poll_time_us)
                let now = polled != 0 ? polled : ProducerEndpoint.nowMicros()
                fastcapa_record_latency(counters, now > captured ? now - captured : 0)
            }
            return
        }
        let keep =
            switch fastcapa_counter_load(&context.pointee.keep_failed) {
            case UInt64(FASTCAPA_KEEP_ALWAYS): true
            case UInt64(FASTCAPA_KEEP_NEVER): false
            default: fastcapa_counter_load(&context.pointee.fatal) != 0
            }
        if keep, let rescue = context.pointee.rescue {
            let buffer = Unmanaged<RescueBuffer>.fromOpaque(rescue).takeUnretainedValue()
            var headers: OpaquePointer?
            if rd_kafka_message_headers(message, &headers) != RD_KAFKA_RESP_ERR_NO_ERROR { headers = nil }
            if buffer.keep(
                payload: report.payload,
                length: report.len,
                key: report.key,
                keyLength: report.key_len,
                opaque: report._private,
                headers: headers
            ) {
                // A kept bundle keeps its buffer until the successor's report.
                fastcapa_counter_add(&context.pointee.kept, packets)
                return
            }
        }
        fastcapa_counter_add(&counters.pointee.delivery_failed, packets)
        if let pool, let bundle { fastcapa_bundle_give(pool, bundle) }
    }

    /// Records fatal errors and broker outages for the supervisor.
    static let error: KafkaProducer.ErrorCallback = { _, code, _, opaque in
        guard let opaque else { return }
        let context = opaque.assumingMemoryBound(to: fastcapa_producer_context.self)
        fastcapa_counter_add(&context.pointee.errors, 1)
        if code == RD_KAFKA_RESP_ERR__FATAL.rawValue {
            _ = fastcapa_mailbox_exchange(&context.pointee.fatal, 1)
        } else if code == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN.rawValue {
            fastcapa_counter_add(&context.pointee.all_brokers_down, 1)
        }
    }

    /// Posts librdkafka's statistics JSON to the mailbox for the control plane;
    /// an older one nobody took is freed.
    static let statistics: KafkaProducer.StatisticsCallback = { kafka, json, _, opaque in
        guard let json, let opaque else { return 0 }
        let context = opaque.assumingMemoryBound(to: fastcapa_producer_context.self)
        let old = fastcapa_mailbox_exchange(&context.pointee.statistics_json, UInt64(UInt(bitPattern: json)))
        if let stale = UnsafeMutableRawPointer(bitPattern: UInt(old)) { rd_kafka_mem_free(kafka, stale) }
        return 1
    }

    /// The message opaque carries a partition hint (the flow hash, or the
    /// batch's sequence number): the partition is hint % partitions. It also
    /// records how many partitions there are, so that the transmit worker can
    /// name partitions itself and skip the partitioner (and its clock read)
    /// per message. Runs on the producing thread or librdkafka's main thread.
    static let hintPartitioner: KafkaProducer.Partitioner = { _, _, _, partitionCount, topicOpaque, messageOpaque in
        guard partitionCount > 0 else { return -1 }
        if let topicOpaque {
            let context = topicOpaque.assumingMemoryBound(to: fastcapa_producer_context.self)
            if fastcapa_counter_load(&context.pointee.partition_count) != UInt64(partitionCount) {
                fastcapa_counter_store(&context.pointee.partition_count, UInt64(partitionCount))
            }
        }
        // Bundling: the opaque is a bundle's descriptor, which carries the hint.
        let bundles = topicOpaque?.assumingMemoryBound(to: fastcapa_producer_context.self).pointee.bundle_pool != nil
        let hint =
            bundles
            ? UInt(messageOpaque?.assumingMemoryBound(to: fastcapa_bundle.self).pointee.hint ?? 0)
            : UInt(bitPattern: messageOpaque)
        return Int32(truncatingIfNeeded: hint % UInt(partitionCount))
    }
}
