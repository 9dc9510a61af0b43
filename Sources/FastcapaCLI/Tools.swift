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
