import ArgumentParser
import FastcapaKafka

/// How every command reaches Kafka, declared once for the capture, `consume`,
/// `limit` and `watermarks`: the capture's config file (`--config`), Fastcapa's
/// Kafka INI file (`-c`), `-X` properties and the credentials folder. They are
/// layered as the capture layers them: the INI file, then the config file's
/// `kafka:` and `kafka-topic:` maps, then `-X`.
struct KafkaConnectionOptions: ParsableArguments {
    @Option(
        name: .customLong("config"),
        help:
            "A YAML file with EAL arguments, settings and Kafka properties (see Configs/fastcapa.yaml); consume, limit and watermarks take its kafka: map, kafka-config: file and topic.",
        completion: .file(extensions: ["yaml", "yml"])
    )
    var config: String?

    @Option(
        name: [.customShort("c"), .customLong("kafka-config")],
        help: Setting.help("kafka-config"),
        completion: .file(extensions: ["ini", "conf"])
    )
    var kafkaConfig: String?

    @Option(
        name: .customShort("X"),
        parsing: .unconditionalSingleValue,
        help: ArgumentHelp(
            "A librdkafka property (repeatable; topic.KEY=value for topic properties; consume and watermarks leave producer-only ones out).",
            valueName: "key=value"
        )
    )
    var properties: [String] = []

    @Option(
        name: .customLong("credentials-directory"),
        help:
            "Read @NAME secrets from DIR/NAME instead of systemd's $CREDENTIALS_DIRECTORY: how `fastcapa check` and --print-config see the service's credentials from a shell (LoadCredential=NAME:/etc/fastcapa/NAME: --credentials-directory /etc/fastcapa).",
        completion: .directory
    )
    var credentialsDirectory: String?

    /// The `-X` properties: `topic.KEY` to the topic configuration, every other key to the global one.
    func dashXProperties() throws -> KafkaProperties { try Self.parseDashX(properties) }

    /// The options as arguments, to parse again with the capture's (`CaptureOptions`).
    var arguments: [String] {
        var arguments: [String] = []
        if let config { arguments += ["--config", config] }
        if let kafkaConfig { arguments += ["-c", kafkaConfig] }
        for property in properties { arguments += ["-X", property] }
        if let credentialsDirectory { arguments += ["--credentials-directory", credentialsDirectory] }
        return arguments
    }

    /// `-X key=value` entries; `topic.KEY` goes to the topic.
    static func parseDashX(_ texts: [String]) throws -> KafkaProperties {
        var properties = KafkaProperties()
        for text in texts {
            let parts = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = parts[0].trimmingCharacters(in: .whitespaces)
            guard parts.count == 2, !key.isEmpty else {
                throw SettingError(
                    "-X '\(text)' is not key=value. Write librdkafka properties as -X key=value, e.g. -X bootstrap.servers=localhost:9092."
                )
            }
            if key.hasPrefix("topic.") {
                properties.topic.append(.init(key: String(key.dropFirst(6)), value: String(parts[1]), origin: "-X"))
            } else {
                properties.global.append(.init(key: key, value: String(parts[1]), origin: "-X"))
            }
        }
        return properties
    }
}
