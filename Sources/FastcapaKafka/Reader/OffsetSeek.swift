import CRdKafka

/// Where to start reading a partition for packets captured at or after a time:
/// a binary search over offsets by key, O(log n) fetches of one message each.
///
/// Keys (capture times) are close to, not strictly, increasing within a
/// partition. The search is safe whatever the disorder: it moves its lower
/// bound past an offset only when the message there has a key below the
/// target, and the caller's target is `--since` minus the slack, the most a
/// key can fall below a key before it in the same partition. So every message
/// skipped comes before one whose key is below `since - slack`, and therefore
/// has a key below `since`. Where the disorder is larger than the slack, the
/// search can skip messages of the window, never include foreign ones.
///
/// Kafka's offsets-for-times would answer in one request where record
/// timestamps are capture times; fastcapa's records carry librdkafka's
/// CreateTime (when the message was produced), which is only an upper bound of
/// the capture time (hours later for a replayed file), so keys are searched instead.
package enum OffsetSeek {
    /// The first offset in `[low, high)` that may hold a key at or after
    /// `target`, and how many messages were fetched to find it. `keyAt(offset)`
    /// fetches the first message at or after `offset` (its offset and key), nil
    /// when there is none before `high`.
    package static func firstOffset(
        low: Int64,
        high: Int64,
        target: UInt64,
        keyAt: (Int64) throws -> (offset: Int64, key: UInt64)?
    ) rethrows -> (offset: Int64, probes: Int) {
        var lower = low
        var upper = high
        var probes = 0
        while lower < upper {
            let middle = lower + (upper - lower) / 2
            probes += 1
            guard let found = try keyAt(middle), found.offset < upper else {
                // Nothing from the middle up: the answer is at or below it.
                upper = middle
                continue
            }
            if found.key < target {
                lower = found.offset + 1
            } else {
                upper = middle
            }
        }
        return (lower, probes)
    }
}

/// Fetches single messages at given offsets (librdkafka's simple consumer, on a
/// handle of its own, apart from the reader's assignment).
final class OffsetProbe {
    private let handle: OpaquePointer
    private let topic: OpaquePointer
    private let topicName: String
    private let timeoutMs: Int32

    init(properties: KafkaProperties, topic: String, timeoutMs: Int32) throws {
        let conf = try KafkaConfiguration.makeConf(
            properties,
            defaults: [
                ("group.id", "fastcapa-consume-seek"), ("enable.auto.commit", "false"),
                ("enable.partition.eof", "true"), ("client.id", "fastcapa-consume-seek"),
                ("fetch.message.max.bytes", "65536"), ("queued.min.messages", "1"),
            ]
        )
        var reason = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(RD_KAFKA_CONSUMER, conf, &reason, reason.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(message: "cannot create a Kafka consumer: \(text(of: reason))")
        }
        guard let topicHandle = rd_kafka_topic_new(handle, topic, nil) else {
            rd_kafka_destroy(handle)
            throw KafkaError(message: "cannot open topic '\(topic)'")
        }
        self.handle = handle
        self.topic = topicHandle
        self.topicName = topic
        self.timeoutMs = timeoutMs
    }

    deinit {
        rd_kafka_topic_destroy(topic)
        rd_kafka_destroy(handle)
    }

    /// The first message at or after `offset` in `partition`: its offset and
    /// its key's time; nil at the end of the partition.
    func key(partition: Int32, atOrAfter offset: Int64) throws -> (offset: Int64, key: UInt64)? {
        guard rd_kafka_consume_start(topic, partition, offset) == 0 else {
            let error = rd_kafka_last_error()
            throw KafkaError(code: error, message: "cannot seek: \(String(cString: rd_kafka_err2str(error)))")
        }
        defer { rd_kafka_consume_stop(topic, partition) }
        guard let message = rd_kafka_consume(topic, partition, timeoutMs) else {
            throw KafkaError(
                message:
                    "no answer within \(timeoutMs / 1000) s while seeking in topic '\(topicName)' partition \(partition)"
            )
        }
        defer { rd_kafka_message_destroy(message) }
        let record = message.pointee
        if record.err == RD_KAFKA_RESP_ERR__PARTITION_EOF { return nil }
        guard record.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(code: record.err, message: "seek failed: \(String(cString: rd_kafka_err2str(record.err)))")
        }
        guard record.key_len == 8, let key = record.key else {
            throw KafkaError(
                message:
                    "the message at partition \(partition) offset \(record.offset) of topic '\(topicName)' has a key of \(record.key_len) bytes, not 8: this is not a topic fastcapa wrote (its keys are capture times)"
            )
        }
        return (record.offset, UInt64(bigEndian: key.loadUnaligned(as: UInt64.self)))
    }
}
