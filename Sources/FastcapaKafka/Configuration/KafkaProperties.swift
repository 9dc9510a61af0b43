/// librdkafka properties for one producer: global ones go to `rd_kafka_conf_t`,
/// topic ones to `rd_kafka_topic_conf_t`. Order is kept: a later value for the
/// same key wins, as when librdkafka reads them one by one.
package struct KafkaProperties: Sendable, Equatable {
    package struct Entry: Sendable, Equatable {
        package var key: String
        package var value: String
        /// Where the entry came from (`file.ini:12`, `-X`), for error messages.
        package var origin: String
        package init(key: String, value: String, origin: String) {
            self.key = key
            self.value = value
            self.origin = origin
        }
    }

    package var global: [Entry] = []
    package var topic: [Entry] = []

    package init(global: [Entry] = [], topic: [Entry] = []) {
        self.global = global
        self.topic = topic
    }

    /// The last value given for a global property.
    package func globalValue(_ key: String) -> String? {
        global.last(where: { $0.key == key })?.value
    }

    package mutating func setGlobal(_ key: String, _ value: String, origin: String) {
        global.append(Entry(key: key, value: value, origin: origin))
    }

    /// Adds `other`'s entries after ours, so that they win.
    package mutating func merge(_ other: KafkaProperties) {
        global += other.global
        topic += other.topic
    }

    /// True when the properties name a broker to connect to.
    package var hasBrokers: Bool {
        for key in ["bootstrap.servers", "metadata.broker.list"] {
            if let value = globalValue(key), !value.trimmingWhitespace().isEmpty { return true }
        }
        return false
    }

    /// Keys whose values must never be printed or logged.
    package static func isSensitive(_ key: String) -> Bool {
        let lowered = key.lowercased()
        return lowered.contains("password") || lowered.contains("secret")
            || lowered.hasPrefix("sasl.oauthbearer.")
            || (lowered.hasPrefix("ssl.") && lowered.hasSuffix("pem"))
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
