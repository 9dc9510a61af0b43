import CRdKafka

/// Reads every partition of a topic from a starting point, message by message.
/// Used by `fastcapa consume` and by the demo to read captures back.
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
    }

    private let handle: OpaquePointer
    package let partitions: [Int32]
    private var partitionsAtEnd = Set<Int32>()

    /// - Parameter partitions: the partitions to read; nil for all of them.
    package init(
        properties: KafkaProperties,
        topic: String,
        start: Start,
        partitions wanted: [Int32]? = nil,
        group: String = "fastcapa-consume",
        metadataTimeoutMs: Int32 = 10_000
    ) throws {
        let conf = try KafkaConfiguration.makeConf(
            properties,
            defaults: [
                ("group.id", group), ("enable.auto.commit", start == .stored ? "true" : "false"),
                ("enable.partition.eof", "true"), ("client.id", "fastcapa-consume"),
            ]
        )
        var reason = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(RD_KAFKA_CONSUMER, conf, &reason, reason.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(message: "cannot create a Kafka consumer: \(text(of: reason))")
        }
        self.handle = handle
        rd_kafka_poll_set_consumer(handle)

        let topicHandle = rd_kafka_topic_new(handle, topic, nil)
        defer { rd_kafka_topic_destroy(topicHandle) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let error = rd_kafka_metadata(handle, 0, topicHandle, &metadata, metadataTimeoutMs)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            rd_kafka_destroy(handle)
            throw KafkaError(
                code: error,
                message: "cannot read metadata of topic '\(topic)': \(String(cString: rd_kafka_err2str(error)))"
            )
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        guard metadata.pointee.topic_cnt == 1, metadata.pointee.topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            let topicError =
                metadata.pointee.topic_cnt == 1 ? metadata.pointee.topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC
            rd_kafka_destroy(handle)
            throw KafkaError(
                code: topicError,
                message: "topic '\(topic)' is not readable: \(String(cString: rd_kafka_err2str(topicError)))"
            )
        }
        let topicMetadata = metadata.pointee.topics[0]
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

        let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for partition in partitions {
            let element = rd_kafka_topic_partition_list_add(list, topic, partition)!
            switch start {
            case .beginning: element.pointee.offset = Int64(RD_KAFKA_OFFSET_BEGINNING)
            case .end: element.pointee.offset = Int64(RD_KAFKA_OFFSET_END)
            case .stored: element.pointee.offset = Int64(RD_KAFKA_OFFSET_STORED)
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
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(code: error, message: "consume failed: \(String(cString: rd_kafka_err2str(error)))")
        }
        let value = record.len == 0 ? [] : Array(UnsafeRawBufferPointer(start: record.payload, count: record.len))
        let key = record.key.map { Array(UnsafeRawBufferPointer(start: $0, count: record.key_len)) }
        return Message(partition: record.partition, offset: record.offset, key: key, value: value)
    }

    deinit {
        rd_kafka_consumer_close(handle)
        rd_kafka_destroy(handle)
    }
}
