import ArgumentParser
import FastcapaCapture
import FastcapaKafka
import Foundation

/// How `consume` and `watermarks` reach a cluster: the capture's own config file
/// (`--config`: its `kafka:` map, its `kafka-config:` INI file and its topic) and
/// Kafka file (`-c`), `-X`, `-b`, and the credentials folder, layered as the capture
/// layers them (INI file, then the config file's map, then `-X`; `-b` last), so that
/// a secured cluster's settings (TLS, SASL, `@NAME` secrets) are written once.
struct KafkaClientOptions: ParsableArguments {
    @Option(
        name: .customLong("config"),
        help:
            "The capture's YAML config file (e.g. /etc/fastcapa/fastcapa.yaml): its kafka: map, kafka-config: file and topic.",
        completion: .file(extensions: ["yaml", "yml"])
    )
    var config: String?
    @Option(
        name: [.short, .long],
        help: "Bootstrap servers (or give them with --config, -c or -X bootstrap.servers=...)."
    )
    var brokers: String?
    @Option(
        name: [.customShort("c"), .customLong("kafka-config")],
        help: "Fastcapa's Kafka INI file; [kafka-global] properties are used.",
        completion: .file()
    )
    var kafkaConfig: String?
    @Option(
        name: .customShort("X"),
        parsing: .unconditionalSingleValue,
        help: "A librdkafka property, key=value (repeatable); producer-only properties are left out."
    )
    var properties: [String] = []
    @Option(
        name: .customLong("credentials-directory"),
        help: "Read @NAME secrets from DIR/NAME instead of systemd's $CREDENTIALS_DIRECTORY.",
        completion: .directory
    )
    var credentialsDirectory: String?

    /// What the options resolve to.
    struct Resolved {
        /// The consumer's properties (producer-only ones left out).
        var kafka: KafkaProperties
        /// The config file's topic, when it names one topic (not a `{port}` template).
        var topic: String?
        /// Port 0's topic, when the config file's is a topic per port (`pcap-{port}`).
        var topicTemplate: String?
        var warnings: [String]
    }

    /// The properties, resolved as the capture resolves its own.
    func resolve(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Resolved {
        var arguments: [String] = []
        if let config { arguments += ["--config", config] }
        if let kafkaConfig { arguments += ["-c", kafkaConfig] }
        for property in properties { arguments += ["-X", property] }
        if let brokers { arguments += ["-X", "bootstrap.servers=\(brokers)"] }
        if let credentialsDirectory { arguments += ["--credentials-directory", credentialsDirectory] }
        let resolved: ResolvedConfiguration
        do {
            resolved = try CaptureOptions.parse(arguments).resolve(environment: environment)
        } catch let error as SettingError {
            throw ValidationError("\(error)")  // exit 64, as a bad capture configuration
        }
        guard resolved.kafka.hasBrokers else {
            throw ValidationError(
                "no broker to read from. Give -b HOST:PORT, --config FILE (bootstrap.servers under its kafka: map), -c FILE or -X bootstrap.servers=HOST:PORT."
            )
        }
        let (kafka, _) = KafkaConfiguration.forConsumer(resolved.kafka)
        let topic = resolved.settings.topic
        // A topic per port (`pcap-{port}`): which one to read is the caller's to say.
        let template = resolved.settings.topic(forPort: 0) != topic
        return Resolved(
            kafka: kafka,
            topic: config != nil && !template ? topic : nil,
            topicTemplate: config != nil && template ? resolved.settings.topic(forPort: 0) : nil,
            warnings: resolved.warnings
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
