/// librdkafka properties for one producer: global ones go to `rd_kafka_conf_t`,
/// topic ones to `rd_kafka_topic_conf_t`. Order is kept: a later value for the
/// same key wins, as when librdkafka reads them one by one.
public struct KafkaProperties: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public var key: String
        public var value: String
        /// Where the entry came from (`file.ini:12`, `-X`), for error messages.
        public var origin: String
        public init(key: String, value: String, origin: String) {
            self.key = key
            self.value = value
            self.origin = origin
        }
    }

    public var global: [Entry] = []
    public var topic: [Entry] = []

    public init(global: [Entry] = [], topic: [Entry] = []) {
        self.global = global
        self.topic = topic
    }

    /// The last value given for a global property.
    public func globalValue(_ key: String) -> String? {
        global.last(where: { $0.key == key })?.value
    }

    public mutating func setGlobal(_ key: String, _ value: String, origin: String) {
        global.append(Entry(key: key, value: value, origin: origin))
    }

    /// Adds `other`'s entries after ours, so that they win.
    public mutating func merge(_ other: KafkaProperties) {
        global += other.global
        topic += other.topic
    }

    /// True when the properties name a broker to connect to.
    public var hasBrokers: Bool {
        for key in ["bootstrap.servers", "metadata.broker.list"] {
            if let value = globalValue(key), !value.trimmingWhitespace().isEmpty { return true }
        }
        return false
    }

    /// Keys whose values must never be printed or logged.
    public static func isSensitive(_ key: String) -> Bool {
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
