import CRdKafka
import Glibc

/// A librdkafka property that librdkafka refused, naming where it came from.
package struct KafkaPropertyError: Error, CustomStringConvertible, Sendable {
    package var key: String
    package var origin: String
    package var reason: String
    package var description: String {
        "Kafka property '\(key)' (from \(origin)) was refused by librdkafka: \(reason). "
            + "Check the name and value against librdkafka's CONFIGURATION.md, or remove the line."
    }
}

/// Builds librdkafka configuration objects from `KafkaProperties`.
package enum KafkaConfiguration {
    /// A new `rd_kafka_conf_t` with `properties.global` applied over `defaults`.
    /// The caller owns it (rd_kafka_new takes it over on success).
    package static func makeConf(
        _ properties: KafkaProperties,
        defaults: [(String, String)] = []
    ) throws(KafkaPropertyError) -> OpaquePointer {
        let conf = rd_kafka_conf_new()!
        do {
            for (key, value) in defaults {
                try set(key, value, origin: "fastcapa's defaults") { rd_kafka_conf_set(conf, $0, $1, $2, $3) }
            }
            for entry in properties.global {
                try set(entry.key, entry.value, origin: entry.origin) { rd_kafka_conf_set(conf, $0, $1, $2, $3) }
            }
        } catch {
            rd_kafka_conf_destroy(conf)
            throw error
        }
        return conf
    }

    /// A consumer's `rd_kafka_conf_t`: `makeConf`'s, with `properties.topic` on its default
    /// topic configuration, which every topic the consumer opens starts from. A topic
    /// default set on the global configuration (`auto.offset.reset`) already made that
    /// configuration; the topic properties go over it.
    package static func makeConsumerConf(
        _ properties: KafkaProperties,
        defaults: [(String, String)] = []
    ) throws(KafkaPropertyError) -> OpaquePointer {
        let conf = try makeConf(properties, defaults: defaults)
        guard !properties.topic.isEmpty else { return conf }
        let topicConf: OpaquePointer
        if let existing = rd_kafka_conf_get_default_topic_conf(conf) {
            topicConf = existing
        } else {
            topicConf = rd_kafka_topic_conf_new()!
            rd_kafka_conf_set_default_topic_conf(conf, topicConf)
        }
        do {
            try apply(properties.topic, to: topicConf)
        } catch {
            rd_kafka_conf_destroy(conf)
            throw error
        }
        return conf
    }

    /// A new `rd_kafka_topic_conf_t` with `properties.topic` applied.
    package static func makeTopicConf(_ properties: KafkaProperties) throws(KafkaPropertyError) -> OpaquePointer {
        let conf = rd_kafka_topic_conf_new()!
        do {
            try apply(properties.topic, to: conf)
        } catch {
            rd_kafka_topic_conf_destroy(conf)
            throw error
        }
        return conf
    }

    /// Sets topic properties on an existing `rd_kafka_topic_conf_t`.
    package static func apply(_ entries: [KafkaProperties.Entry], to conf: OpaquePointer) throws(KafkaPropertyError) {
        for entry in entries {
            try set(entry.key, entry.value, origin: entry.origin) { rd_kafka_topic_conf_set(conf, $0, $1, $2, $3) }
        }
    }

    /// The properties this librdkafka applies to producers only (its own table's `P` rows,
    /// aliases included), global and topic, read once from `rd_kafka_conf_properties_show`.
    package static let producerOnly: (global: Set<String>, topic: Set<String>) = {
        var buffer: UnsafeMutablePointer<CChar>?
        var size = 0
        guard let stream = open_memstream(&buffer, &size) else { return ([], []) }
        rd_kafka_conf_properties_show(stream)
        fclose(stream)
        defer { free(buffer) }
        guard let buffer else { return ([], []) }
        var global: Set<String> = []
        var topic: Set<String> = []
        var inTopicTable = false
        // Rows are `name | C/P | range | default | importance | description`; the topic table
        // follows the global one, under its own heading.
        for line in String(cString: buffer).split(separator: "\n") {
            if line.hasPrefix("## Topic") { inTopicTable = true }
            let columns = line.split(separator: "|", omittingEmptySubsequences: false)
            guard columns.count > 2, columns[1].trimmingCharacters(in: .whitespaces) == "P" else { continue }
            let name = columns[0].trimmingCharacters(in: .whitespaces)
            if inTopicTable { topic.insert(name) } else { global.insert(name) }
        }
        return (global, topic)
    }()

    /// `properties` for a consumer: the producer-only properties (a capture config's `linger.ms`,
    /// `compression.codec`, `enable.idempotence`, a topic's `request.required.acks`, …) left out,
    /// since librdkafka would warn about each, and the names of those left out (`topic.KEY` for a
    /// topic property). A topic property given among the global ones (librdkafka sends it to the
    /// default topic configuration) is judged by the topic table.
    package static func forConsumer(_ properties: KafkaProperties) -> (KafkaProperties, leftOut: [String]) {
        let globalProducerOnly = producerOnly.global.union(producerOnly.topic)
        var kept = properties
        kept.global = properties.global.filter { !globalProducerOnly.contains($0.key) }
        kept.topic = properties.topic.filter { !producerOnly.topic.contains($0.key) }
        var leftOut: [String] = []
        for key in properties.global.map(\.key) where globalProducerOnly.contains(key) && !leftOut.contains(key) {
            leftOut.append(key)
        }
        for key in properties.topic.map(\.key)
        where producerOnly.topic.contains(key) && !leftOut.contains("topic.\(key)") {
            leftOut.append("topic.\(key)")
        }
        return (kept, leftOut)
    }

    /// Checks every property without keeping anything: used to reject a bad file
    /// before any capture resource exists.
    package static func validate(_ properties: KafkaProperties) throws(KafkaPropertyError) {
        rd_kafka_conf_destroy(try makeConf(properties))
        rd_kafka_topic_conf_destroy(try makeTopicConf(properties))
    }

    private static func set(
        _ key: String,
        _ value: String,
        origin: String,
        _ apply: (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeMutablePointer<CChar>, Int) -> rd_kafka_conf_res_t
    ) throws(KafkaPropertyError) {
        var reason = [CChar](repeating: 0, count: 512)
        let result = reason.withUnsafeMutableBufferPointer { buffer in
            apply(key, value, buffer.baseAddress!, buffer.count)
        }
        if result != RD_KAFKA_CONF_OK {
            let message = text(of: reason)
            throw KafkaPropertyError(key: key, origin: origin, reason: message.isEmpty ? "invalid" : message)
        }
    }
}
