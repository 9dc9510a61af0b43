import ArgumentParser
import FastcapaKafka
import FastcapaKafkaTools

/// How many messages a topic holds at the broker (benchmarks count there).
struct WatermarksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watermarks",
        abstract: "Print the sum of a topic's high watermarks (messages the broker holds)."
    )
    @OptionGroup var kafkaOptions: KafkaClientOptions
    @Option(name: [.short, .long], help: "Topic (default: the --config file's topic, else pcap).") var topic: String?

    func run() throws {
        let resolved = try kafkaOptions.resolve()
        resolved.report(command: "watermarks")
        let topic = try kafkaOptions.topic(given: topic, resolved: resolved)
        print(try KafkaBenchmarkTools.highWatermarks(properties: resolved.kafka, topic: topic))
    }
}
