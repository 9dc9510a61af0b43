import ArgumentParser
import FastcapaCapture
import FastcapaKafka
import Foundation

/// How `consume`, `limit` and `watermarks` reach a cluster: the connection
/// options the capture takes (`--config`: its `kafka:` map, its `kafka-config:`
/// INI file and its topic; `-c`; `-X`; the credentials folder), resolved as the
/// capture resolves them, and `-b` last, so that a secured cluster's settings
/// (TLS, SASL, `@NAME` secrets) are written once.
struct KafkaClientOptions: ParsableArguments {
    @OptionGroup var connection: KafkaConnectionOptions
    @Option(
        name: [.short, .long],
        help: "Bootstrap servers (or give them with --config, -c or -X bootstrap.servers=...)."
    )
    var brokers: String?

    /// What the options resolve to.
    struct Resolved {
        /// The consumer's properties (producer-only ones left out).
        var kafka: KafkaProperties
        /// Every property, for a producer.
        var producer: KafkaProperties
        /// The config file's topic, when it names one topic (not a `{port}` template).
        var topic: String?
        /// Port 0's topic, when the config file's is a topic per port (`pcap-{port}`).
        var topicTemplate: String?
        var warnings: [String]
        /// The producer-only properties left out of `kafka` (`topic.KEY` for a topic property).
        var leftOut: [String]

        /// The warnings and, in one line, what was left out: to standard error, each line
        /// prefixed with the command (`fastcapa consume: `).
        var notices: [String] {
            guard !leftOut.isEmpty else { return warnings }
            let count = leftOut.count == 1 ? "1 producer-only property" : "\(leftOut.count) producer-only properties"
            return warnings + [
                "left out \(count) a consumer does not use (librdkafka's property table): \(leftOut.joined(separator: ", "))"
            ]
        }

        /// Writes the notices to standard error.
        func report(command: String) {
            for notice in notices { LogOutput.writeToStandardError("fastcapa \(command): \(notice)\n") }
        }
    }

    /// The properties, resolved as the capture resolves its own.
    /// - Parameter use: what the cluster is for, in the refusal when no broker is given.
    func resolve(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        use: String = "read from"
    ) throws -> Resolved {
        var arguments = connection.arguments
        if let brokers { arguments += ["-X", "bootstrap.servers=\(brokers)"] }
        let resolved: ResolvedConfiguration
        do {
            resolved = try CaptureOptions.parse(arguments).resolve(environment: environment)
        } catch let error as SettingError {
            throw ValidationError("\(error)")  // exit 64, as a bad capture configuration
        }
        guard resolved.kafka.hasBrokers else {
            throw ValidationError(
                "no broker to \(use). Give -b HOST:PORT, --config FILE (bootstrap.servers under its kafka: map), -c FILE or -X bootstrap.servers=HOST:PORT."
            )
        }
        let (kafka, leftOut) = KafkaConfiguration.forConsumer(resolved.kafka)
        let topic = resolved.settings.topic
        // A topic per port (`pcap-{port}`): which one to read is the caller's to say.
        let template = resolved.settings.topic(forPort: 0) != topic
        return Resolved(
            kafka: kafka,
            producer: resolved.kafka,
            topic: connection.config != nil && !template ? topic : nil,
            topicTemplate: connection.config != nil && template ? resolved.settings.topic(forPort: 0) : nil,
            warnings: resolved.warnings,
            leftOut: leftOut
        )
    }

    /// `-t` if given, else the config file's topic, else `pcap`.
    func topic(given: String?, resolved: Resolved) throws -> String {
        if let given { return given }
        if let portZero = resolved.topicTemplate {
            throw ValidationError(
                "the config file's topic is a topic per port: give the one to read with -t, e.g. -t \(portZero) for port 0."
            )
        }
        return resolved.topic ?? "pcap"
    }
}
