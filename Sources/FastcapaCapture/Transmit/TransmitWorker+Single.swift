import CDPDK
import CFastcapaShared
import FastcapaKafka

extension TransmitWorker {
    /// Produces packets [start, end) of the burst one call each (rd_kafka_produce,
    /// or rd_kafka_produceva for a message with headers or its capture time as its record time).
    /// Returns the first packet it could not hand over because the producer
    /// failed fatally (`end` when none).
    func produceEach(_ start: Int, _ end: Int, _ record: WorkerRecord, retries: inout Int, giveUp: Bool) -> Int {
        let batch = batchSequence
        batchSequence &+= 1
        var index = start
        while index < end && produceOne(packets[index], record, batch: batch, retries: &retries, giveUp: giveUp) {
            index += 1
        }
        return index
    }

    /// Produces one packet (a chained frame gathered into the scratch buffer
    /// first), or counts why it could not. Returns false only when the producer
    /// has failed fatally: the packet is then kept for its successor.
    @inline(__always)
    func produceOne(
        _ packet: OpaquePointer?,
        _ record: WorkerRecord,
        batch: UInt,
        retries: inout Int,
        giveUp: Bool
    ) -> Bool {
        guard let (payload, length, captured) = wholeFrame(packet, record) else { return true }
        let hint = hint(packet, payload, length, batch: batch)
        let captureNanos = CDPDK_RTE_MBUF_DYNFIELD_u64(packet, captureTimeField)
        singleKey.pointee = MessageContract.key(nanos: captureNanos)
        let withArguments = producesEachWithArguments || length < captured
        while true {
            let refused: ProduceRefusal?
            if withArguments {
                if !stampsCaptureTime && burstMillis == 0 { burstMillis = ProducerEndpoint.nowMillis() }
                // The partition the partitioner would give (hint % partitions),
                // named as a batch names it: every 1024th goes through the
                // partitioner, which notices added partitions.
                let partitions = record.producer.knownPartitions
                let named = partitions > 0 && partitioning != .key && batch % Self.partitionRefreshBatches != 0
                refused = record.producer.produce(
                    payload,
                    length: length,
                    originalLength: captured,
                    key: singleKey,
                    hint: hint,
                    partition: named ? Int32(truncatingIfNeeded: hint % partitions) : -1,
                    timestampMillis: stampsCaptureTime
                        ? MessageContract.recordMillis(nanos: captureNanos) : burstMillis,
                    captureNanos: captureNanos,
                    arguments: producevaArguments
                )
            } else {
                refused = record.producer.produce(payload, length: length, key: singleKey, hint: hint)
            }
            guard let refusal = refused else {
                countProduced(1, bytes: length, truncated: length < captured ? 1 : 0)
                return true
            }
            switch settle(refusal, retries: &retries, record, giveUp: giveUp) {
            case .retry:
                // It waited for room: what it produces next is stamped after the wait.
                burstMillis = 0
                continue
            case .keepForSuccessor: return false
            case .dropped: return true
            }
        }
    }

    /// A packet's bytes as one buffer, cut to the snap length: its segment, or a
    /// chain (jumbo frame) gathered into the scratch buffer, since a message or a
    /// record is one buffer. Nil, counted as malformed, for a frame that is short.
    @inline(__always)
    func wholeFrame(
        _ packet: OpaquePointer?,
        _ record: WorkerRecord
    ) -> (payload: UnsafeRawPointer, length: Int, captured: Int)? {
        let captured = Int(CDPDK_rte_mbuf_pkt_len(packet))
        let length = min(captured, record.snapLength, scratchSize)
        let payload: UnsafeRawPointer
        let available: Int
        if CDPDK_rte_mbuf_nb_segs(packet) == 1 {
            available = Int(CDPDK_rte_mbuf_data_len(packet))
            payload = UnsafeRawPointer(CDPDK_rte_pktmbuf_mtod(packet)!)
        } else {
            available = gather(packet, upTo: length)
            payload = UnsafeRawPointer(scratch)
        }
        if available < length || captured >= cutLength {
            // The driver's segments hold less than the frame's length (net_pcap in
            // DPDK 22.11 does this to records over 65,535 bytes), or the frame
            // filled what a kernel interface's receive path holds (af_packet's
            // slot, net_pcap's live snap length) and was cut there: never publish
            // a frame that is silently short. The captured length decides, not the
            // snap-cut one: with a short --snap-length a kernel-cut frame would
            // otherwise go out as truncated, with the cut length as its original.
            fastcapa_counter_add(&counters.pointee.malformed_drops, 1)
            return nil
        }
        return (payload, length, captured)
    }

    /// Copies up to `limit` bytes of a segment chain into `scratch`, following
    /// the segments themselves (never trusting pkt_len alone), and returns how
    /// many bytes it copied.
    @inline(__always)
    func gather(_ packet: OpaquePointer?, upTo limit: Int) -> Int {
        var copied = 0
        var segment: OpaquePointer? = packet
        while let current = segment, copied < limit {
            let take = min(Int(CDPDK_rte_mbuf_data_len(current)), limit - copied)
            (scratch + copied).copyMemory(from: CDPDK_rte_pktmbuf_mtod(current)!, byteCount: take)
            copied += take
            segment = CDPDK_rte_mbuf_next(current)
        }
        return copied
    }
}
