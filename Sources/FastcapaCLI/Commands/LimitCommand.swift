import ArgumentParser
import FastcapaKafkaTools

/// The librdkafka limit a probe is measured against.
struct LimitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "limit",
        abstract: "Push pre-built messages of one size (8-byte key, copied) as fast as librdkafka takes them."
    )
    @Option(
        help: """
            How to hand messages over: batch (rd_kafka_produce_batch), produce, produceva, produceva-headers \
            (with the headers port, queue and probe) or produceva-headers-named (those, the partition named and \
            the timestamp read once a batch).
            """
    )
    var call: String = "batch"
    @Option(help: "Messages per batch, and between polls.") var batch: Int = 256
    @Flag(help: "Let librdkafka point at the message instead of copying it.") var noCopy = false
    @OptionGroup var kafkaOptions: KafkaClientOptions
    @Option(name: [.short, .long], help: "Topic (default: the --config file's topic, else pcap).") var topic: String?
    @Option(help: "Message size in bytes.") var size: Int = 64
    @Option(help: "Seconds to run.") var seconds: Double = 5

    func validate() throws {
        guard (0...1_000_000).contains(size) else { throw ValidationError("--size: use 0 to 1000000.") }
        guard seconds > 0 else { throw ValidationError("--seconds: use more than 0.") }
        guard KafkaBenchmarkTools.Call(rawValue: call) != nil else {
            throw ValidationError(
                "--call: use one of \(KafkaBenchmarkTools.Call.allCases.map(\.rawValue).joined(separator: ", "))."
            )
        }
        guard (1...100_000).contains(batch) else { throw ValidationError("--batch: use 1 to 100000.") }
    }

    func run() throws {
        let resolved = try kafkaOptions.resolve(use: "write to")
        print(
            try KafkaBenchmarkTools.produceFlat(
                properties: resolved.producer,
                topic: try kafkaOptions.topic(given: topic, resolved: resolved),
                size: size,
                seconds: seconds,
                call: KafkaBenchmarkTools.Call(rawValue: call)!,
                batch: batch,
                copy: !noCopy
            )
        )
    }
}
