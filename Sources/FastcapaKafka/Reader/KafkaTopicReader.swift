import CRdKafka
import Dispatch

/// Reads every partition of a topic from a starting point, message by message.
/// Used by `fastcapa consume` and by the demo to read captures back. From the
/// beginning, it can seek each partition to the first offset that may hold a key
/// at or after a time (`OffsetSeek`) instead of reading from the first message.
package final class KafkaTopicReader: @unchecked Sendable {
    package enum Start: String, Sendable, CaseIterable {
        case beginning, end
        /// The offsets the consumer group committed (then committed as it reads).
        case stored
    }

    package struct Message {
        package var partition: Int32
        package var offset: Int64
        package var key: [UInt8]?
        package var value: [UInt8]
        /// The message's headers, in order (name, value bytes).
        package var headers: [(name: String, value: [UInt8])] = []
        /// Its record timestamp, epoch ms (-1: none).
        package var timestampMillis: Int64 = -1

        package init(
            partition: Int32,
            offset: Int64,
            key: [UInt8]?,
            value: [UInt8],
            headers: [(name: String, value: [UInt8])] = [],
            timestampMillis: Int64 = -1
        ) {
            self.partition = partition
            self.offset = offset
            self.key = key
            self.value = value
            self.headers = headers
            self.timestampMillis = timestampMillis
        }

        /// The value of the first header named `name`, as text.
        package func header(_ name: String) -> String? {
            headers.first { $0.name == name }.map { String(decoding: $0.value, as: UTF8.self) }
        }
    }

    private let handle: OpaquePointer
    private let topic: String
    package let partitions: [Int32]
    package private(set) var partitionsAtEnd = Set<Int32>()
    /// Where each partition's reading started (its low watermark, or the seek's offset).
    package private(set) var startOffsets: [Int32: Int64] = [:]
    /// Each partition's high watermark when reading started (the offset after its last message).
    package private(set) var endOffsets: [Int32: Int64] = [:]
    /// The offset of the last message read from each partition.
    package private(set) var positions: [Int32: Int64] = [:]
    /// Messages fetched to seek (all partitions), in how many rounds (all partitions at once).
    package private(set) var seekProbes = 0
    package private(set) var seekRounds = 0
    package private(set) var seekSeconds = 0.0
    /// How the seek began: from the broker's time index, or by keys alone (and why).
    package private(set) var seekGuess: SeekGuess = .none
    /// How the seek began (`OffsetSeek`, the broker's first guess).
    package enum SeekGuess: Equatable, Sendable {
        /// No seek.
        case none
        /// Every message the seek read was capture-timed: the time index's offsets came first.
        case timeIndex
        /// The broker gave no offset by time (it answered with an error, or none: the mock cluster).
        case noTimeIndex(String)
        /// Some message read had a record time other than its capture time (`--record-time send`).
        case notCaptureTimed
        /// The time index was not asked (`consume --no-time-index`).
        case notAsked
    }
    /// Messages read (every partition, in the window or not).
    package private(set) var messagesRead = 0
    /// Why each partition starts where it does: what an offset the broker no longer holds means.
    private var origins: [Int32: StartOrigin] = [:]
    private let group: String

    /// Where a partition's read starts, and so what a missing offset there means.
    enum StartOrigin {
        /// Its first message, or its end (logical offsets).
        case logical
        /// The offset the time seek found for the window (or one given in its place).
        case sought
        /// The consumer group's committed offset.
        case committed
    }

    /// - Parameters:
    ///   - partitions: the partitions to read; nil for all of them.
    ///   - offsets: where to start each partition, in place of the seek's offsets (tests).
    package init(
        properties: KafkaProperties,
        topic: String,
        start: Start,
        partitions wanted: [Int32]? = nil,
        group: String = "fastcapa-consume",
        metadataTimeoutMs: Int32 = 10_000,
        seekingTo since: UInt64? = nil,
        timeIndex: Bool = true,
        offsets: [Int32: Int64]? = nil
    ) throws {
        self.topic = topic
        self.group = group
        let conf = try KafkaConfiguration.makeConsumerConf(
            properties,
            defaults: [
                ("group.id", group), ("enable.auto.commit", start == .stored ? "true" : "false"),
                ("enable.partition.eof", "true"), ("client.id", "fastcapa-consume"),
                // Every read starts at an offset it chose (a logical one, the seek's, the given
                // ones, or the group's committed ones: never librdkafka's stored-offset lookup, for
                // which a new group has nothing), so an offset the broker no longer holds can only
                // mean retention deleted it: an error worded by where the read started, never a
                // silent jump that leaves a file short. -X auto.offset.reset=earliest overrides it.
                ("auto.offset.reset", "error"),
            ]
        )
        var reason = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(RD_KAFKA_CONSUMER, conf, &reason, reason.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(message: "cannot create a Kafka consumer: \(text(of: reason))")
        }
        self.handle = handle
        rd_kafka_poll_set_consumer(handle)

        // Every topic's metadata, not the one topic's: asking for a topic by name
        // can create it (auto.create.topics.enable, the embedded broker).
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let error = rd_kafka_metadata(handle, 1, nil, &metadata, metadataTimeoutMs)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            rd_kafka_destroy(handle)
            throw KafkaError(
                code: error,
                message: "cannot read metadata of topic '\(topic)': \(String(cString: rd_kafka_err2str(error)))"
            )
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        let topics = (0..<Int(metadata.pointee.topic_cnt)).map { metadata.pointee.topics[$0] }
        guard let topicMetadata = topics.first(where: { String(cString: $0.topic) == topic }),
            topicMetadata.err == RD_KAFKA_RESP_ERR_NO_ERROR
        else {
            let names = topics.map { String(cString: $0.topic) }.filter { !$0.hasPrefix("__") }.sorted()
            rd_kafka_destroy(handle)
            throw KafkaError(
                code: RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC,
                message:
                    "topic '\(topic)' does not exist on the cluster (its topics: \(names.isEmpty ? "none" : names.joined(separator: ", ")))"
            )
        }
        let existing = (0..<Int(topicMetadata.partition_cnt)).map { topicMetadata.partitions[$0].id }.sorted()
        if let wanted {
            let unknown = wanted.filter { !existing.contains($0) }
            guard unknown.isEmpty else {
                rd_kafka_destroy(handle)
                throw KafkaError(
                    message:
                        "topic '\(topic)' has no partition \(unknown.map(String.init).joined(separator: ", ")) (it has \(existing.count): 0 to \(existing.count - 1))"
                )
            }
            partitions = wanted
        } else {
            partitions = existing
        }

        do {
            for partition in partitions {
                let (low, high) = try Self.watermarks(handle, topic, partition, timeoutMs: metadataTimeoutMs)
                startOffsets[partition] = low
                endOffsets[partition] = high
            }
            if let since, start == .beginning {
                let seekStarted = DispatchTime.now().uptimeNanoseconds
                let probe = try OffsetProbe(properties: properties, topic: topic, timeoutMs: metadataTimeoutMs)
                var ranges: [Int32: (low: Int64, high: Int64)] = [:]
                for partition in partitions { ranges[partition] = (startOffsets[partition]!, endOffsets[partition]!) }
                let index =
                    timeIndex
                    ? Self.timeIndexOffsets(
                        handle,
                        topic,
                        ranges,
                        millis: OffsetSeek.indexMillis(target: since),
                        timeoutMs: metadataTimeoutMs
                    ) : (guesses: [:], problem: nil)
                let found = try OffsetSeek.firstOffsets(in: ranges, target: since, guesses: index.guesses) { asked in
                    try probe.keys(atOrAfter: asked)
                }
                startOffsets.merge(found.offsets) { _, sought in sought }
                seekGuess =
                    !timeIndex
                    ? .notAsked
                    : index.guesses.isEmpty
                        ? .noTimeIndex(index.problem ?? "no offset")
                        : probe.otherwiseTimed > 0 ? .notCaptureTimed : .timeIndex
                seekProbes = found.probes
                seekRounds = found.rounds
                seekSeconds = Double(DispatchTime.now().uptimeNanoseconds - seekStarted) / 1e9
            }
            if let offsets { startOffsets.merge(offsets) { _, given in given } }
            if start == .stored {
                // The group's committed offsets; a partition it never committed starts at its first message.
                let committed = try Self.committedOffsets(handle, topic, partitions, timeoutMs: metadataTimeoutMs)
                for partition in partitions {
                    if let offset = committed[partition] {
                        startOffsets[partition] = offset
                        origins[partition] = .committed
                    }
                }
            }
        } catch {
            rd_kafka_destroy(handle)
            throw error
        }

        let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for partition in partitions {
            let element = rd_kafka_topic_partition_list_add(list, topic, partition)!
            switch start {
            case .beginning where since == nil && offsets == nil:
                element.pointee.offset = Int64(RD_KAFKA_OFFSET_BEGINNING)
                origins[partition] = .logical
            case .beginning:
                element.pointee.offset = startOffsets[partition]!
                origins[partition] = .sought
            case .end:
                element.pointee.offset = Int64(RD_KAFKA_OFFSET_END)
                origins[partition] = .logical
            case .stored where origins[partition] == .committed:
                element.pointee.offset = startOffsets[partition]!
            case .stored:
                element.pointee.offset = Int64(RD_KAFKA_OFFSET_BEGINNING)
                origins[partition] = .logical
            }
        }
        let assignError = rd_kafka_assign(handle, list)
        guard assignError == RD_KAFKA_RESP_ERR_NO_ERROR else {
            rd_kafka_destroy(handle)
            throw KafkaError(
                code: assignError,
                message: "cannot assign partitions: \(String(cString: rd_kafka_err2str(assignError)))"
            )
        }
    }

    /// True once every partition has reported its end at least once.
    package var reachedEnd: Bool { partitionsAtEnd.count == partitions.count }

    /// A partition's low and high watermarks (first offset, offset after the last).
    static func watermarks(
        _ handle: OpaquePointer,
        _ topic: String,
        _ partition: Int32,
        timeoutMs: Int32
    ) throws -> (low: Int64, high: Int64) {
        var low: Int64 = 0
        var high: Int64 = 0
        let error = rd_kafka_query_watermark_offsets(handle, topic, partition, &low, &high, timeoutMs)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(
                code: error,
                message:
                    "cannot read the offsets of topic '\(topic)' partition \(partition) within \(timeoutMs / 1000) s: \(String(cString: rd_kafka_err2str(error)))"
            )
        }
        return (low, high)
    }

    /// The broker's offsets-for-times at `millis` for each partition of `ranges`: the first offset whose
    /// record timestamp is at or after it (a partition's end when none is). Empty, with why, when the broker
    /// gives none (an error, or every answer -1 in a partition that holds messages: librdkafka's mock
    /// cluster answers -1 to every time).
    static func timeIndexOffsets(
        _ handle: OpaquePointer,
        _ topic: String,
        _ ranges: [Int32: (low: Int64, high: Int64)],
        millis: Int64,
        timeoutMs: Int32
    ) -> (guesses: [Int32: Int64], problem: String?) {
        let list = rd_kafka_topic_partition_list_new(Int32(ranges.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for partition in ranges.keys {
            rd_kafka_topic_partition_list_add(list, topic, partition)!.pointee.offset = millis
        }
        let error = rd_kafka_offsets_for_times(handle, list, timeoutMs)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            return ([:], String(cString: rd_kafka_err2str(error)))
        }
        var guesses: [Int32: Int64] = [:]
        for element in UnsafeBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt)) {
            guard element.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                return ([:], String(cString: rd_kafka_err2str(element.err)))
            }
            guard let range = ranges[element.partition] else { continue }
            guesses[element.partition] = element.offset < 0 ? range.high : element.offset
        }
        if guesses.allSatisfy({ $0.value == ranges[$0.key]!.high })
            && ranges.contains(where: { $0.value.high > $0.value.low })
        {
            // No message at or after the time anywhere: the broker may not index times at all.
            return (
                [:],
                "no offset at or after the time in any partition: past the end, or a broker that does not index times"
            )
        }
        return (guesses, nil)
    }

    /// The offsets `handle`'s consumer group committed for `partitions` (those it committed only).
    static func committedOffsets(
        _ handle: OpaquePointer,
        _ topic: String,
        _ partitions: [Int32],
        timeoutMs: Int32
    ) throws -> [Int32: Int64] {
        let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for partition in partitions { rd_kafka_topic_partition_list_add(list, topic, partition) }
        let error = rd_kafka_committed(handle, list, timeoutMs)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(
                code: error,
                message:
                    "cannot read the consumer group's committed offsets within \(timeoutMs / 1000) s: \(String(cString: rd_kafka_err2str(error)))"
            )
        }
        var committed: [Int32: Int64] = [:]
        for index in 0..<Int(list.pointee.cnt) {
            let element = list.pointee.elems[index]
            if element.err == RD_KAFKA_RESP_ERR_NO_ERROR && element.offset >= 0 {
                committed[element.partition] = element.offset
            }
        }
        return committed
    }

    /// Stops fetching `partition` (its messages are no longer wanted).
    package func pause(_ partition: Int32) {
        let list = rd_kafka_topic_partition_list_new(1)!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        rd_kafka_topic_partition_list_add(list, topic, partition)
        _ = rd_kafka_pause_partitions(handle, list)
    }

    /// The next message, or nil when none came within `timeoutMs`.
    package func next(timeoutMs: Int32) throws -> Message? {
        guard let message = rd_kafka_consumer_poll(handle, timeoutMs) else { return nil }
        defer { rd_kafka_message_destroy(message) }
        let record = message.pointee
        let error = record.err
        if error == RD_KAFKA_RESP_ERR__PARTITION_EOF {
            partitionsAtEnd.insert(record.partition)
            return nil
        }
        if error == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET {
            let first = try? Self.watermarks(handle, topic, record.partition, timeoutMs: 5_000).low
            throw KafkaError(code: error, message: missingOffset(record.partition, firstHeld: first))
        }
        positions[record.partition] = record.offset
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(code: error, message: "consume failed: \(String(cString: rd_kafka_err2str(error)))")
        }
        messagesRead += 1
        let value = record.len == 0 ? [] : Array(UnsafeRawBufferPointer(start: record.payload, count: record.len))
        let key = record.key.map { Array(UnsafeRawBufferPointer(start: $0, count: record.key_len)) }
        return Message(
            partition: record.partition,
            offset: record.offset,
            key: key,
            value: value,
            headers: Self.headers(of: message),
            timestampMillis: rd_kafka_message_timestamp(message, nil)
        )
    }

    /// Why partition `partition` no longer holds the offset the read needs, by where the read started there.
    private func missingOffset(_ partition: Int32, firstHeld: Int64?) -> String {
        let start = startOffsets[partition].map(String.init) ?? "?"
        let now = "the partition now starts at \(firstHeld.map(String.init) ?? "an unknown offset")"
        switch origins[partition] ?? .logical {
        case .committed:
            return
                "partition \(partition): consumer group '\(group)' committed offset \(start), which the broker no longer holds (\(now)): its retention deleted those packets before this group read them. Read what is left with --from beginning, or a new --group"
        case .sought:
            return
                "partition \(partition) no longer holds the offset this read needs (\(start); \(now)): the broker's retention deleted it during the read, so the file would miss packets of the window. Read again (a later --since, or the same window while the broker still holds it)"
        case .logical:
            return
                "partition \(partition): the broker's retention deleted messages while they were being read (\(now)), so the file would miss them. Read again, or with --since past what retention removes"
        }
    }

    /// A consumed message's headers (none when it has none).
    static func headers(of message: UnsafePointer<rd_kafka_message_t>) -> [(name: String, value: [UInt8])] {
        var list: OpaquePointer?
        guard rd_kafka_message_headers(message, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return [] }
        var headers: [(name: String, value: [UInt8])] = []
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while rd_kafka_header_get_all(list, headers.count, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
            let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
            headers.append((name.map { String(cString: $0) } ?? "", bytes))
        }
        return headers
    }

    deinit {
        rd_kafka_consumer_close(handle)
        rd_kafka_destroy(handle)
    }
}
