import ArgumentParser
import FastcapaKafka
import Foundation

/// A standalone embedded broker (librdkafka's mock cluster) for tests, demos and
/// benchmarks: a real Kafka-protocol broker on loopback.
struct BrokerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run librdkafka's mock cluster on loopback until SIGINT/SIGTERM."
    )

    @Option(help: "Number of brokers.") var brokers: Int = 1
    @Option(help: "Topics to create, comma-separated.") var topic: String = "pcap"
    @Option(help: "Partitions of the topic.") var partitions: Int = 1
    @Option(help: "Write the bootstrap address to this file once listening.") var addressFile: String?
    @Flag(
        help:
            "Read fault-injection commands from standard input, one per line: down ID, up ID, rtt ID MS, produce-errors NAME [NAME...] (brokers are numbered from 1)."
    )
    var control = false

    func validate() throws {
        guard (1...16).contains(brokers) else { throw ValidationError("--brokers: use 1 to 16.") }
        guard (1...1000).contains(partitions) else { throw ValidationError("--partitions: use 1 to 1000.") }
    }

    func run() throws {
        let signals = try ProcessSignals(faultSignal: false)
        let topics = topic.split(separator: ",").map { (String($0), Int32(partitions)) }
        let broker = try EmbeddedBroker(brokers: Int32(brokers), topics: topics)
        print(broker.bootstrapServers)
        fflush(nil)
        if let addressFile {
            try Data((broker.bootstrapServers + "\n").utf8).write(to: URL(fileURLWithPath: addressFile))
        }
        if control {
            let thread = Thread { Self.readCommands(broker) }
            thread.start()
        }
        waitForAsync {
            for await event in signals.events {
                if case .stop = event { return }
            }
        }
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
                    LogOutput.writeToStandardError("broker: unknown error name in '\(line)'\n")
                    continue
                }
                broker.failProduceRequests(with: codes)
            default:
                LogOutput.writeToStandardError("broker: unknown command '\(line)'\n")
                continue
            }
            LogOutput.writeToStandardError("broker: \(line)\n")
        }
    }
}
