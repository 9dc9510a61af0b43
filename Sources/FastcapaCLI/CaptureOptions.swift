import ArgumentParser
import FastcapaCapture
import FastcapaKafka
import Foundation

/// The application options of the capture command (after `--`): Fastcapa's
/// short flags with its defaults, and long names for every setting.
public struct CaptureOptions: ParsableArguments {
    public init() {}

    @Option(name: [.customShort("p"), .customLong("port-mask")], help: "Hex mask of the ports to capture from.")
    var portMask: String = "0x01"

    @Option(name: [.customShort("b"), .customLong("rx-burst")], help: "Packets per receive burst (1-1024).")
    var rxBurst: Int = 32

    @Option(name: .customLong("max-rebursts"), help: "Receive again at once, up to this many times, while bursts come back full (0-64).")
    var maxRebursts: Int = 4

    @Option(name: [.customShort("w"), .customLong("tx-burst")], help: "Packets per transmit-ring dequeue (1-4096).")
    var txBurst: Int = 256

    @Option(name: [.customShort("d"), .customLong("rx-desc")], help: "Receive descriptors per queue.")
    var rxDescriptors: Int = 1024

    @Option(name: [.customShort("x"), .customLong("ring-size")], help: "Slots per transmit ring (a power of two).")
    var ringSize: Int = 2048

    @Option(name: [.customShort("q"), .customLong("rx-queues")], help: "Receive queues per port (RSS spreads flows across them).")
    var rxQueues: Int = 1

    @Option(name: .customLong("tx-workers"), help: "Transmit workers (each with its own producer) per ring.")
    var txWorkers: Int = 1

    @Option(name: [.customShort("t"), .customLong("topic")], help: "Kafka topic to publish to.")
    var topic: String = "pcap"

    @Option(name: [.customShort("c"), .customLong("kafka-config")],
            help: "Fastcapa's Kafka INI file: [kafka-global] and [kafka-topic] librdkafka properties.")
    var kafkaConfig: String?

    @Option(name: .customShort("X"), parsing: .unconditionalSingleValue,
            help: ArgumentHelp("A librdkafka property, key=value (repeatable; topic properties as topic.KEY=value).", valueName: "key=value"))
    var properties: [String] = []

    @Option(name: .customLong("ring-full"), help: "When a transmit ring is full: drop (count and free) or wait (back-pressure).")
    var ringFull: String = "drop"

    @Option(name: .customLong("partitioner"), help: "default (librdkafka's) or flow (one partition per flow, in order).")
    var partitioner: String = "default"

    @Option(name: .customLong("snap-length"), help: "Cut frames longer than this many bytes (counted as truncated).")
    var snapLength: Int = 262_144

    @Option(name: .customLong("queue-full-retries"), help: "Times to wait 1 ms for room in librdkafka's queue before dropping.")
    var queueFullRetries: Int = 50

    @Option(name: .customLong("idle-spin-polls"), help: "Empty polls before a polling lcore starts to sleep.")
    var idleSpinPolls: Int = 1024

    @Option(name: .customLong("idle-sleep-max-us"), help: "Longest idle sleep of a polling lcore in µs; 0 polls without sleeping.")
    var idleSleepMaxMicros: Int = 100

    @Option(name: .customLong("stats-interval"), help: "Seconds between statistics tables; 0 turns them off.")
    var statsInterval: Int = 5

    @Option(name: .customLong("drain-timeout"), help: "Seconds a graceful stop may spend emptying rings and flushing Kafka.")
    var drainTimeout: Int = 10

    @Option(name: .customLong("idle-exit"), help: "Stop by itself after this many seconds without a packet (replaying files); 0: never.")
    var idleExit: Int = 0

    @Option(name: .customLong("embedded-partitions"), help: "Partitions of the topic on the embedded broker (used when no broker is configured).")
    var embeddedPartitions: Int = 1

    @Option(name: .customLong("embedded-address-file"), help: "Write the embedded broker's bootstrap address to this file.")
    var embeddedAddressFile: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    public mutating func validate() throws {
        try validateKeyValues()
        _ = try settings()
        guard statsInterval >= 0 else { throw ValidationError("--stats-interval: \(statsInterval) is negative. Use 0 (off) or more seconds.") }
        guard drainTimeout >= 0 && drainTimeout <= 86_400 else {
            throw ValidationError("--drain-timeout: \(drainTimeout) is out of range. Use 0 to 86400 seconds.")
        }
        guard idleExit >= 0 else { throw ValidationError("--idle-exit: \(idleExit) is negative. Use 0 (never) or more seconds.") }
        guard (1...1000).contains(embeddedPartitions) else {
            throw ValidationError("--embedded-partitions: \(embeddedPartitions) is out of range. Use 1 to 1000.")
        }
        _ = try parsedProperties()
    }

    /// The data-path settings these options describe, validated.
    public func settings() throws -> CaptureSettings {
        var settings = CaptureSettings()
        settings.portMask = try Self.parsePortMask(portMask)
        settings.rxBurst = rxBurst
        settings.maxRebursts = maxRebursts
        settings.txBurst = txBurst
        settings.rxDescriptors = rxDescriptors
        settings.ringSize = ringSize
        settings.rxQueues = rxQueues
        settings.txWorkersPerRing = txWorkers
        settings.topic = topic
        guard let ringFull = CaptureSettings.RingFullPolicy(rawValue: ringFull) else {
            throw ValidationError("--ring-full: '\(ringFull)' is not a policy. Use drop or wait.")
        }
        settings.ringFull = ringFull
        guard let partitioning = CaptureSettings.Partitioning(rawValue: partitioner) else {
            throw ValidationError("--partitioner: '\(partitioner)' is not a partitioner. Use default or flow.")
        }
        settings.partitioning = partitioning
        settings.snapLength = snapLength
        settings.queueFullRetries = queueFullRetries
        settings.idleSpinPolls = idleSpinPolls
        settings.idleSleepMaxMicros = idleSleepMaxMicros
        do {
            try settings.validate()
        } catch {
            throw ValidationError(error.description)
        }
        return settings
    }

    /// Fastcapa's port mask: hex, with or without 0x.
    static func parsePortMask(_ text: String) throws -> UInt64 {
        var digits = Substring(text.trimmingCharacters(in: .whitespaces))
        if digits.lowercased().hasPrefix("0x") { digits = digits.dropFirst(2) }
        guard !digits.isEmpty, digits.count <= 16, let mask = UInt64(digits, radix: 16) else {
            throw ValidationError("port mask (-p): '\(text)' is not a hex number. Write it like 0x1 (port 0) or 0x3 (ports 0 and 1).")
        }
        guard mask != 0 else {
            throw ValidationError("port mask (-p): 0x0 selects no port. Give a hex mask with a bit per port, e.g. -p 0x1 for port 0.")
        }
        return mask
    }

    /// Kafka properties: the INI file first, then -X in order (later wins).
    public func parsedProperties() throws -> KafkaProperties {
        var properties = KafkaProperties()
        if let kafkaConfig {
            properties = try Self.loadIni(kafkaConfig)
        }
        for property in properties_X() {
            properties.global.append(property)
        }
        var topicEntries: [KafkaProperties.Entry] = []
        properties.global.removeAll { entry in
            if entry.origin == "-X", entry.key.hasPrefix("topic.") {
                topicEntries.append(.init(key: String(entry.key.dropFirst(6)), value: entry.value, origin: "-X"))
                return true
            }
            return false
        }
        properties.topic += topicEntries
        do {
            try KafkaConfiguration.validate(properties)
        } catch {
            throw ValidationError(error.description)
        }
        return properties
    }

    private func properties_X() -> [KafkaProperties.Entry] {
        properties.map { text in
            let parts = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return .init(key: String(parts[0]).trimmingCharacters(in: .whitespaces),
                         value: parts.count > 1 ? String(parts[1]) : "", origin: "-X")
        }
    }

    static func loadIni(_ path: String) throws -> KafkaProperties {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ValidationError("Kafka config file (-c) '\(path)' does not exist. Give the path of Fastcapa's INI file, or leave -c out to use the embedded broker.")
        }
        guard !isDirectory.boolValue else {
            throw ValidationError("Kafka config file (-c) '\(path)' is a directory. Give the path of an INI file inside it.")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("Kafka config file (-c) '\(path)' cannot be read (permission denied?). Make it readable by this user.")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ValidationError("Kafka config file (-c) '\(path)' is not UTF-8 text. Give a text INI file.")
        }
        do {
            return try KafkaIniFile.parse(text, path: path)
        } catch {
            throw ValidationError("Kafka config file: \(error.description)")
        }
    }

    public func validateKeyValues() throws {
        for text in properties where !text.contains("=") || text.hasPrefix("=") {
            throw ValidationError("-X '\(text)' is not key=value. Write librdkafka properties as -X key=value, e.g. -X bootstrap.servers=localhost:9092.")
        }
    }
}
