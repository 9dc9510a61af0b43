import ArgumentParser
import FastcapaKafka
import FastcapaKafkaTools

/// How many messages a topic holds at the broker (benchmarks count there).
struct WatermarksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watermarks",
        abstract: "Print the sum of a topic's high watermarks (messages the broker holds)."
    )
    @Option(name: [.short, .long], help: "Bootstrap servers.") var brokers: String
    @Option(name: [.short, .long], help: "Topic.") var topic: String = "pcap"

    func run() throws {
        var kafka = KafkaProperties()
        kafka.setGlobal("bootstrap.servers", brokers, origin: "--brokers")
        print(try KafkaBenchmarkTools.highWatermarks(properties: kafka, topic: topic))
    }
}
