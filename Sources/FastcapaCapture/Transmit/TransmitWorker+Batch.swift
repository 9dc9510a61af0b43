import CDPDK
import CFastcapaShared
import FastcapaKafka

extension TransmitWorker {
    /// Produces packets [start, end) of the burst in rd_kafka_produce_batch
    /// calls: single-segment frames straight from their mbufs, a chained frame
    /// on its own through the gather buffer. Returns the first packet it could
    /// not hand over because the producer failed fatally (`end` when none).
    func produceBatches(_ start: Int, _ end: Int, _ record: WorkerRecord, retries: inout Int, giveUp: Bool) -> Int {
        var index = start
        while index < end {
            let sequence = batchSequence
            batchSequence &+= 1
            if !fitsBatch(packets[index], record) {
                // A chain, or a frame its segment cannot hold: on its own.
                guard produceOne(packets[index], record, batch: sequence, retries: &retries, giveUp: giveUp) else {
                    return index
                }
                index += 1
                continue
            }
            // Name the partition here once the partitioner has told us how many
            // there are (each batch but every 1024th); otherwise let it choose.
            let partitions = record.producer.knownPartitions
            let named = partitions > 0 && partitioning != .key && sequence % Self.partitionRefreshBatches != 0
            var count = 0
            var bytes = 0
            var truncated = 0
            while index < end, let packet = packets[index], fitsBatch(packet, record) {
                let captured = Int(CDPDK_rte_mbuf_pkt_len(packet))
                let length = min(captured, record.snapLength)
                let payload = UnsafeRawPointer(CDPDK_rte_pktmbuf_mtod(packet)!)
                let hint = hint(packet, payload, length, batch: sequence)
                batch.set(
                    count,
                    payload: payload,
                    length: length,
                    captureNanos: CDPDK_RTE_MBUF_DYNFIELD_u64(packet, captureTimeField),
                    hint: hint,
                    partition: named ? Int32(truncatingIfNeeded: hint % partitions) : -1
                )
                sources[count] = index
                bytes += length
                if length < captured { truncated += 1 }
                count += 1
                index += 1
            }
            // The default partitioner sends the whole batch to one partition:
            // librdkafka's single-partition path. Flow partitioning names one per message.
            let placement: BatchPlacement =
                !named ? .partitioner : partitioning == .flow ? .perMessage : .partition(batch.partition(at: 0))
            if record.producer.produce(batch, from: 0, count: count, placement: placement) == count {
                countProduced(count, bytes: bytes, truncated: truncated)
                continue
            }
            if let unsent = settleBatch(count, placement: placement, record, retries: &retries, giveUp: giveUp) {
                return sources[unsent]
            }
        }
        return end
    }

    /// A frame that is produced straight from its one segment in a batch: whole
    /// (one cut by the snap length carries `orig_len`, a header a batch cannot
    /// carry), no header asked for, and the send time as its record time. The
    /// others are left to `produceOne`, which produces or counts them.
    @inline(__always)
    func fitsBatch(_ packet: OpaquePointer?, _ record: WorkerRecord) -> Bool {
        let captured = Int(CDPDK_rte_mbuf_pkt_len(packet))
        return !producesEachWithArguments && captured <= record.snapLength && CDPDK_rte_mbuf_nb_segs(packet) == 1
            && Int(CDPDK_rte_mbuf_data_len(packet)) >= captured && captured < cutLength
    }

    /// Counts the outcome of a batch librdkafka did not take whole (it refuses
    /// the rest of a batch once its queue is full), offering the rest again
    /// while `settle` says to retry (the burst's budget of waits is shared). Returns the first message left for a
    /// successor when the producer has failed fatally.
    private func settleBatch(
        _ count: Int,
        placement: BatchPlacement,
        _ record: WorkerRecord,
        retries: inout Int,
        giveUp: Bool
    ) -> Int? {
        var message = 0
        while message < count {
            guard let refusal = batch.refusal(at: message) else {
                let length = batch.length(at: message)
                let captured = Int(CDPDK_rte_mbuf_pkt_len(packets[sources[message]]))
                countProduced(1, bytes: length, truncated: length < captured ? 1 : 0)
                message += 1
                continue
            }
            switch settle(refusal, retries: &retries, record, giveUp: giveUp) {
            case .retry:
                _ = record.producer.produce(batch, from: message, count: count - message, placement: placement)
            case .keepForSuccessor:
                return message
            case .dropped:
                message += 1
            }
        }
        return nil
    }
}
