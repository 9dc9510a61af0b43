import ArgumentParser
import FastcapaKafka
import Foundation
import PcapFormat

/// `fastcapa consume`: reads captured packets back from a topic and writes
/// them as text (one line per packet, as `tcpdump -r` prints), classic pcap or
/// pcapng, each packet's time taken from its key. pycapa's consumer mode did this.
struct ConsumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume",
        abstract: "Read packets from a topic and write them as text, pcap or pcapng.",
        discussion: "Example: fastcapa consume -b localhost:9092 -t pcap --format pcap | tshark -r -"
    )

    @Option(name: [.short, .long], help: "Bootstrap servers (or give them with -c or -X bootstrap.servers=...).")
    var brokers: String?
    @Option(
        name: [.customShort("c"), .customLong("kafka-config")],
        help: "Fastcapa's Kafka INI file; [kafka-global] properties are used."
    )
    var kafkaConfig: String?
    @Option(
        name: .customShort("X"),
        parsing: .unconditionalSingleValue,
        help: "A librdkafka property, key=value (repeatable)."
    )
    var properties: [String] = []
    @Option(name: [.short, .long], help: "Topic to read.") var topic: String = "pcap"
    /// `--format`'s values.
    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, pcap, pcapng
    }

    /// `--from`'s values: where `KafkaTopicReader` starts.
    enum Start: String, ExpressibleByArgument, CaseIterable {
        case beginning, end, stored

        var reader: KafkaTopicReader.Start {
            switch self {
            case .beginning: .beginning
            case .end: .end
            case .stored: .stored
            }
        }
    }

    @Option(help: "Where to start: beginning, end, or stored (the consumer group's committed offsets).")
    var from: Start = .beginning
    @Option(help: "Consumer group (used with --from stored).") var group: String = "fastcapa-consume"
    @Option(help: "Partitions to read, comma-separated (default: all).") var partitions: String?
    @Option(name: [.customShort("n"), .long], help: "Stop after this many packets (0: no limit).") var count: Int = 0
    @Option(
        help: "Only packets captured at or after this time (epoch seconds, or ISO 8601 such as 2024-05-01T12:00:00Z)."
    )
    var since: String?
    @Option(help: "Only packets captured before this time (same forms as --since).") var until: String?
    @Flag(help: "Keep waiting for new packets after reaching the end.") var follow = false
    @Option(help: "With --follow or --count, give up after this many seconds without a message.") var timeout: Int = 10
    @Option(help: "text, pcap or pcapng.") var format: Format = .text
    @Option(name: [.short, .long], help: "Write here instead of standard output.") var output: String?

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count: \(count) is negative. Use 0 (no limit) or more.") }
        guard timeout > 0 else { throw ValidationError("--timeout: use 1 or more seconds.") }
        _ = try partitionList()
        _ = try timeRange()
    }

    func partitionList() throws -> [Int32]? {
        guard let partitions else { return nil }
        let list = partitions.split(separator: ",").map { Int32($0.trimmingCharacters(in: .whitespaces)) }
        guard !list.isEmpty, list.allSatisfy({ $0 != nil && $0! >= 0 }) else {
            throw ValidationError(
                "--partitions: '\(partitions)' is not a list of partition numbers. Write it like 0,2,3."
            )
        }
        return list.map { $0! }
    }

    func timeRange() throws -> (since: UInt64, until: UInt64) {
        let start = try since.map { try Self.parseTime($0, option: "--since") } ?? 0
        let end = try until.map { try Self.parseTime($0, option: "--until") } ?? UInt64.max
        guard start < end else { throw ValidationError("--since must come before --until.") }
        return (start, end)
    }

    /// Epoch seconds (with a fraction) or ISO 8601, to epoch microseconds.
    static func parseTime(_ text: String, option: String) throws -> UInt64 {
        if let seconds = Double(text), seconds >= 0, seconds < 1e11 {
            return UInt64((seconds * 1_000_000).rounded())
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        if let date = formatter.date(from: text) ?? plain.date(from: text), date.timeIntervalSince1970 >= 0 {
            return UInt64((date.timeIntervalSince1970 * 1_000_000).rounded())
        }
        throw ValidationError(
            "\(option): '\(text)' is not a time. Give epoch seconds (1714564800.5) or ISO 8601 (2024-05-01T12:00:00Z)."
        )
    }

    func kafkaProperties() throws -> KafkaProperties {
        var kafka = KafkaProperties()
        let environment = ProcessInfo.processInfo.environment
        if let kafkaConfig {
            var warnings: [String] = []
            kafka.global = try CaptureOptions.loadIni(kafkaConfig, environment: environment, warnings: &warnings).global
            for warning in warnings { FileHandle.standardError.write(Data("fastcapa consume: \(warning)\n".utf8)) }
        }
        if let brokers { kafka.setGlobal("bootstrap.servers", brokers, origin: "--brokers") }
        for property in properties {
            let parts = property.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty else {
                throw ValidationError("-X '\(property)' is not key=value. Write librdkafka properties as -X key=value.")
            }
            kafka.setGlobal(String(parts[0]), String(parts[1]), origin: "-X")
        }
        guard kafka.hasBrokers else {
            throw ValidationError(
                "no broker to read from. Give -b HOST:PORT, -c FILE or -X bootstrap.servers=HOST:PORT."
            )
        }
        return try ValueReferences.resolvingSecrets(kafka, environment: environment)
    }

    func run() throws {
        let kafka = try kafkaProperties()
        let range = try timeRange()
        let reader = try KafkaTopicReader(
            properties: kafka,
            topic: topic,
            start: from.reader,
            partitions: try partitionList(),
            group: group
        )
        var sink: any PacketSink =
            switch format {
            case .pcap: try PcapSink(path: output)
            case .pcapng: try PcapngSink(path: output)
            case .text: try TextSink(path: output)
            }
        var written = 0
        var quietSince = Date()
        while count == 0 || written < count {
            if let message = try reader.next(timeoutMs: 200) {
                quietSince = Date()
                let micros = message.key.flatMap(CaptureKey.decode) ?? 0
                guard micros >= range.since && micros < range.until else { continue }
                try sink.write(micros: micros, frame: message.value)
                written += 1
            } else if reader.reachedEnd && !follow {
                break
            } else if Date().timeIntervalSince(quietSince) > Double(timeout) {
                break
            }
        }
        try sink.close()
        if count > 0 && written < count && follow {
            throw ValidationError("only \(written) of \(count) packets arrived within \(timeout) s.")
        }
    }
}
