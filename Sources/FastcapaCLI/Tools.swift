import ArgumentParser
import CDPDK
import FastcapaKafka
import Foundation
import PcapFormat

struct Tools: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fastcapa",
        subcommands: [BrokerCommand.self, ConsumeCommand.self, WatermarksCommand.self, LimitCommand.self])
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
    @Flag(help: "Read fault-injection commands from standard input, one per line: down ID, up ID, rtt ID MS, produce-errors NAME [NAME...] (brokers are numbered from 1).")
    var control = false

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
        if control {
            let thread = Thread { Self.readCommands(broker) }
            thread.start()
        }
        while !cfc_stop_requested() { usleep(50_000) }
        withExtendedLifetime(broker) {}
    }

    /// Applies fault-injection commands from standard input until it closes.
    static func readCommands(_ broker: EmbeddedBroker) {
        while let line = readLine() {
            let words = line.split(separator: " ").map(String.init)
            guard let verb = words.first else { continue }
            let number = words.count > 1 ? Int32(words[1]) : nil
            switch (verb, number) {
            case ("down", let id?): broker.setDown(broker: id)
            case ("up", let id?): broker.setUp(broker: id)
            case ("rtt", let id?) where words.count == 3 && Int32(words[2]) != nil:
                broker.setRoundTrip(broker: id, milliseconds: Int32(words[2])!)
            case ("produce-errors", _) where words.count > 1:
                let codes = words.dropFirst().compactMap(EmbeddedBroker.errorCode(named:))
                guard codes.count == words.count - 1 else {
                    FileHandle.standardError.write(Data("broker: unknown error name in '\(line)'\n".utf8))
                    continue
                }
                broker.failProduceRequests(with: codes)
            default:
                FileHandle.standardError.write(Data("broker: unknown command '\(line)'\n".utf8))
                continue
            }
            FileHandle.standardError.write(Data("broker: \(line)\n".utf8))
        }
    }
}

/// How many messages a topic holds at the broker (benchmarks count there).
struct WatermarksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watermarks", abstract: "Print the sum of a topic's high watermarks (messages the broker holds).")
    @Option(name: [.short, .long], help: "Bootstrap servers.") var brokers: String
    @Option(name: [.short, .long], help: "Topic.") var topic: String = "pcap"

    func run() throws {
        var kafka = KafkaProperties()
        kafka.setGlobal("bootstrap.servers", brokers, origin: "--brokers")
        print(try KafkaBenchmarkTools.highWatermarks(properties: kafka, topic: topic))
    }
}

/// The librdkafka limit a probe is measured against.
struct LimitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "limit",
        abstract: "Push pre-built messages of one size (8-byte key, copied) as fast as librdkafka takes them.")
    @Option(help: "How to hand messages over: batch (rd_kafka_produce_batch), produce or produceva.")
    var call: String = "batch"
    @Option(help: "Messages per batch, and between polls.") var batch: Int = 256
    @Flag(help: "Let librdkafka point at the message instead of copying it.") var noCopy = false
    @Option(name: [.short, .long], help: "Bootstrap servers.") var brokers: String
    @Option(name: [.short, .long], help: "Topic.") var topic: String = "pcap"
    @Option(help: "Message size in bytes.") var size: Int = 64
    @Option(help: "Seconds to run.") var seconds: Double = 5
    @Option(name: .customShort("X"), parsing: .unconditionalSingleValue, help: "A librdkafka property, key=value.")
    var properties: [String] = []

    func validate() throws {
        guard (0...1_000_000).contains(size) else { throw ValidationError("--size: use 0 to 1000000.") }
        guard seconds > 0 else { throw ValidationError("--seconds: use more than 0.") }
        guard KafkaBenchmarkTools.Call(rawValue: call) != nil else {
            throw ValidationError("--call: use one of \(KafkaBenchmarkTools.Call.allCases.map(\.rawValue).joined(separator: ", ")).")
        }
        guard (1...100_000).contains(batch) else { throw ValidationError("--batch: use 1 to 100000.") }
    }

    func run() throws {
        var kafka = try CaptureOptions.parseDashX(properties)
        kafka.setGlobal("bootstrap.servers", brokers, origin: "--brokers")
        print(try KafkaBenchmarkTools.produceFlat(
            properties: kafka, topic: topic, size: size, seconds: seconds,
            call: KafkaBenchmarkTools.Call(rawValue: call)!, batch: batch, copy: !noCopy))
    }
}
