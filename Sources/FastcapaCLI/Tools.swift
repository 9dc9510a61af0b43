import ArgumentParser
import CDPDK
import FastcapaKafka
import Foundation
import PcapFormat

struct Tools: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fastcapa",
        subcommands: [BrokerCommand.self, ConsumeCommand.self])
}

/// A standalone embedded broker (librdkafka's mock cluster) for tests, demos and
/// benchmarks: a real Kafka-protocol broker on loopback.
struct BrokerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run librdkafka's mock cluster on loopback until SIGINT/SIGTERM.")

    @Option(help: "Number of brokers.") var brokers: Int = 1
    @Option(help: "Topic to create.") var topic: String = "pcap"
    @Option(help: "Partitions of the topic.") var partitions: Int = 1
    @Option(help: "Write the bootstrap address to this file once listening.") var addressFile: String?

    func validate() throws {
        guard (1...16).contains(brokers) else { throw ValidationError("--brokers: use 1 to 16.") }
        guard (1...1000).contains(partitions) else { throw ValidationError("--partitions: use 1 to 1000.") }
    }

    func run() throws {
        cfc_install_stop_signals(ExitStatus.forced)
        let broker = try EmbeddedBroker(brokers: Int32(brokers), topics: [(topic, Int32(partitions))])
        print(broker.bootstrapServers)
        fflush(nil)
        if let addressFile {
            try Data((broker.bootstrapServers + "\n").utf8).write(to: URL(fileURLWithPath: addressFile))
        }
        while !cfc_stop_requested() { usleep(50_000) }
        withExtendedLifetime(broker) {}
    }
}

/// Reads captured packets back from a topic.
struct ConsumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume",
        abstract: "Read packets from a topic and print them as tcpdump would, or write a pcap file.")

    @Option(name: [.short, .long], help: "Bootstrap servers.") var brokers: String
    @Option(name: [.short, .long], help: "Topic.") var topic: String = "pcap"
    @Option(name: [.short, .long], help: "Stop after this many packets (0: all until the end).") var count: Int = 0
    @Option(help: "Give up after this many seconds without a message.") var timeout: Int = 10
    @Option(help: "text (one line per packet) or pcap.") var format: String = "text"
    @Option(name: [.short, .long], help: "Write here instead of standard output.") var output: String?
    @Option(name: .customShort("X"), parsing: .unconditionalSingleValue, help: "A librdkafka property, key=value.")
    var properties: [String] = []

    func validate() throws {
        guard ["text", "pcap"].contains(format) else { throw ValidationError("--format: use text or pcap.") }
        guard count >= 0 else { throw ValidationError("--count: use 0 (all) or more.") }
    }

    func run() throws {
        var kafka = KafkaProperties()
        kafka.setGlobal("bootstrap.servers", brokers, origin: "--brokers")
        for property in properties {
            let parts = property.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw ValidationError("-X '\(property)' is not key=value.") }
            kafka.setGlobal(String(parts[0]), String(parts[1]), origin: "-X")
        }
        let reader = try KafkaTopicReader(properties: kafka, topic: topic, start: .beginning)
        var sink: PacketSink = format == "pcap" ? try PcapSink(path: output) : TextSink(path: output)
        var seen = 0
        var quietSince = Date()
        while count == 0 || seen < count {
            if let message = try reader.next(timeoutMs: 200) {
                let micros = message.key.flatMap(CaptureKey.decode) ?? 0
                try sink.write(micros: micros, frame: message.value)
                seen += 1
                quietSince = Date()
            } else if count == 0 && reader.reachedEnd {
                break
            } else if Date().timeIntervalSince(quietSince) > Double(timeout) {
                break
            }
        }
        try sink.close()
        if count > 0 && seen < count {
            throw ValidationError("only \(seen) of \(count) packets arrived within \(timeout) s.")
        }
    }
}
