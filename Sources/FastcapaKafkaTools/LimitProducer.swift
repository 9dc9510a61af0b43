import CRdKafka
import FastcapaKafka
import Glibc

/// Tools for benchmarks: reading a topic's size at the broker, and the
/// librdkafka limit a probe is compared with.
package enum KafkaBenchmarkTools {
    /// The sum of the high watermarks of every partition of `topic`: how many
    /// messages the broker has taken (the mock broker starts at offset 0).
    package static func highWatermarks(
        properties: KafkaProperties,
        topic: String,
        timeoutMs: Int32 = 5000
    ) throws -> Int64 {
        let conf = try KafkaConfiguration.makeConf(properties, defaults: [("group.id", "fastcapa-watermarks")])
        var reason = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(RD_KAFKA_CONSUMER, conf, &reason, reason.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(message: "cannot create a Kafka client: \(text(of: reason))")
        }
        defer { rd_kafka_destroy(handle) }
        let topicHandle = rd_kafka_topic_new(handle, topic, nil)
        defer { rd_kafka_topic_destroy(topicHandle) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let error = rd_kafka_metadata(handle, 0, topicHandle, &metadata, timeoutMs)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata, metadata.pointee.topic_cnt == 1 else {
            throw KafkaError(
                code: error,
                message: "cannot read metadata of '\(topic)': \(String(cString: rd_kafka_err2str(error)))"
            )
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        var total: Int64 = 0
        let partitions = metadata.pointee.topics[0]
        for index in 0..<Int(partitions.partition_cnt) {
            var low: Int64 = 0
            var high: Int64 = 0
            let status = rd_kafka_query_watermark_offsets(
                handle,
                topic,
                partitions.partitions[index].id,
                &low,
                &high,
                timeoutMs
            )
            guard status == RD_KAFKA_RESP_ERR_NO_ERROR else {
                throw KafkaError(
                    code: status,
                    message: "cannot read watermarks: \(String(cString: rd_kafka_err2str(status)))"
                )
            }
            total += high
        }
        return total
    }

    /// How the limit hands messages to librdkafka.
    package enum Call: String, CaseIterable, Sendable {
        /// rd_kafka_produce_batch, `batch` messages a call (as the probe does).
        case batch
        /// rd_kafka_produce, one call per message.
        case produce
        /// rd_kafka_produceva, one call per message (the variadic API's array form).
        case produceva
        /// rd_kafka_produceva with three headers (`port`, `queue`, `probe`, as
        /// `--headers port,queue,probe` gives them), one call per message.
        case producevaHeaders = "produceva-headers"
        /// The same with the partition named and the timestamp read once per
        /// `batch` messages, as the probe's headered path does.
        case producevaHeadersNamed = "produceva-headers-named"
    }

    /// The headers of `produceva-headers`: values of the lengths a probe sends
    /// (port and queue 0, the host name).
    static func limitHeaders() -> [(name: String, value: String)] {
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        return MessageContract.headers(MessageContract.Header.allCases, port: 0, queue: 0, probe: text(of: host))
    }

    /// The limit: one producer pushing pre-built messages of `size` bytes with an
    /// the contract's key as fast as librdkafka takes them, serving delivery reports
    /// every `batch` messages. Copied by librdkafka like the probe's unless
    /// `copy` is false. Returns messages delivered.
    package static func produceFlat(
        properties: KafkaProperties,
        topic: String,
        size: Int,
        seconds: Double,
        call: Call = .batch,
        batch: Int = 256,
        copy: Bool = true
    ) throws -> UInt64 {
        final class Count: @unchecked Sendable { var delivered: UInt64 = 0 }
        let count = Count()
        let producer = try KafkaProducer(
            properties: properties,
            topicName: topic,
            clientID: "fastcapa-limit",
            onDelivery: { _, message, opaque in
                guard let message, let opaque, message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR else { return }
                Unmanaged<Count>.fromOpaque(opaque).takeUnretainedValue().delivered += 1
            },
            opaque: Unmanaged.passUnretained(count).toOpaque()
        )
        let payload = UnsafeMutableRawPointer.allocate(byteCount: max(size, 1), alignment: 64)
        defer { payload.deallocate() }
        memset(payload, 0x5A, max(size, 1))
        let key = UnsafeMutablePointer<MessageContract.Key>.allocate(capacity: 1)
        defer { key.deallocate() }
        key.initialize(to: MessageContract.key(micros: 1))
        let keyLength = MessageContract.keyLength
        let flags = copy ? RD_KAFKA_MSG_F_COPY : 0
        let messages = UnsafeMutablePointer<rd_kafka_message_t>.allocate(capacity: batch)
        defer { messages.deallocate() }
        messages.initialize(repeating: rd_kafka_message_t(), count: batch)
        for index in 0..<batch {
            messages[index].payload = payload
            messages[index].len = size
            messages[index].key = UnsafeMutableRawPointer(key)
            messages[index].key_len = keyLength
        }
        let headers = call == .producevaHeaders || call == .producevaHeadersNamed ? limitHeaders() : []
        let names = headers.map { strdup($0.name)! }
        let values = headers.map { strdup($0.value)! }
        defer { for string in names + values { free(string) } }
        let named = call == .producevaHeadersNamed
        var fields = [rd_kafka_vu_t](repeating: rd_kafka_vu_t(), count: 4 + headers.count + (named ? 2 : 0))
        for index in headers.indices {
            fields[4 + index].vtype = RD_KAFKA_VTYPE_HEADER
            fields[4 + index].u.header = .init(
                name: names[index],
                val: UnsafeRawPointer(values[index]),
                size: strlen(values[index])
            )
        }
        let timestampField = 4 + headers.count
        if named {
            fields[timestampField].vtype = RD_KAFKA_VTYPE_TIMESTAMP
            fields[timestampField + 1].vtype = RD_KAFKA_VTYPE_PARTITION
            fields[timestampField + 1].u.i32 = 0
        }
        fields[0].vtype = RD_KAFKA_VTYPE_RKT
        fields[0].u.rkt = producer.topic
        fields[1].vtype = RD_KAFKA_VTYPE_VALUE
        fields[1].u.mem = .init(ptr: payload, size: size)
        fields[2].vtype = RD_KAFKA_VTYPE_KEY
        fields[2].u.mem = .init(ptr: UnsafeMutableRawPointer(key), size: keyLength)
        fields[3].vtype = RD_KAFKA_VTYPE_MSGFLAGS
        fields[3].u.i = flags
        var start = timespec()
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &start)
        while true {
            rd_kafka_poll(producer.handle, 0)
            clock_gettime(CLOCK_MONOTONIC, &now)
            if Double(now.tv_sec - start.tv_sec) + Double(now.tv_nsec - start.tv_nsec) / 1e9 >= seconds { break }
            var taken = 0
            switch call {
            case .batch:
                taken = Int(rd_kafka_produce_batch(producer.topic, -1, flags, messages, Int32(batch)))
            case .produce:
                while taken < batch
                    && rd_kafka_produce(producer.topic, -1, flags, payload, size, key, keyLength, nil) == 0
                {
                    taken += 1
                }
            case .produceva, .producevaHeaders, .producevaHeadersNamed:
                if named {
                    var wall = timespec()
                    clock_gettime(CLOCK_REALTIME, &wall)
                    fields[timestampField].u.i64 = Int64(wall.tv_sec) * 1000 + Int64(wall.tv_nsec) / 1_000_000
                }
                while taken < batch {
                    guard let error = rd_kafka_produceva(producer.handle, fields, fields.count) else {
                        taken += 1
                        continue
                    }
                    rd_kafka_error_destroy(error)
                    break
                }
            }
            if taken < batch {
                rd_kafka_poll(producer.handle, 1)  // queue full: make room
            }
        }
        producer.flush(timeoutMs: 10_000)
        return count.delivered
    }
}
