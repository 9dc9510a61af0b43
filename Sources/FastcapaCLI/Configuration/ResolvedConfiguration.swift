import FastcapaCapture
import FastcapaKafka

/// Everything a capture runs with, after flags, the config file and defaults
/// were merged (in that order of precedence).
package struct ResolvedConfiguration: Sendable {
    package var eal: [String] = []
    package var settings = CaptureSettings()
    package var kafka = KafkaProperties()
    package var kafkaConfig: String?
    /// A file holding the capture filter (read into `settings.filter` when resolved).
    package var filterFile: String?
    package var statsInterval = 5
    package var statsFile: String?
    package var drainTimeout = 10
    package var idleExit = 0
    package var embeddedPartitions = 1
    package var embeddedAddressFile: String?
    /// Refuse to start when no Kafka broker is configured, rather than publish to the embedded broker.
    package var requireBroker = false
    package var logLevel = "info"
    package var logFormat = LogFormat.auto
    package var restartBackoffMs = 100
    package var restartBackoffMaxSeconds = 30
    package var maxRestartsPerMinute = 10
    package var stallSeconds = 30
    package var slowRoundTripMs = 1000
    package var counterTrace: String?
    package var counterTraceIntervalMs = 10
    package var metricsAddress: String?
    package var controlCores = ControlCores.auto
    /// What was accepted but deserves a log line (an INI group fastcapa skips).
    package var warnings: [String] = []
}

/// How log lines are written to standard error (`--log-format`).
package enum LogFormat: String, CaseIterable, Sendable {
    /// `journal` when standard error is systemd's journal, else `text`.
    case auto
    /// swift-log's line: time, level, label, metadata, source, message.
    case text
    /// `<PRIORITY>` first and no time (the journal keeps one), so that `journalctl -p` filters.
    case journal
    /// One JSON object a line, for log shippers: the text form's fields, each by name.
    case json
}

extension ResolvedConfiguration {
    /// With `require-broker` and no broker configured: why the probe will not start, and the fix.
    package var missingRequiredBroker: String? {
        guard requireBroker, !kafka.hasBrokers else { return nil }
        return "no Kafka broker is configured and require-broker is set, so the probe will not publish to the "
            + "embedded broker (in its own memory). Give the brokers: -X bootstrap.servers=HOST:PORT, "
            + "bootstrap.servers under kafka: in the config file, or -c FILE (Fastcapa's INI file)"
    }
}
