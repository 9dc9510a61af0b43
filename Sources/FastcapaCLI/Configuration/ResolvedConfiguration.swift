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
    package var logLevel = "info"
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
