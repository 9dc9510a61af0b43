import ArgumentParser
import FastcapaCapture
import FastcapaKafka
import Foundation

/// The application options of the capture command (after `--`): Fastcapa's
/// short flags with its defaults, a long name for every setting (its help and
/// default declared once, in `Setting.all`), `-X` for any librdkafka property
/// and `--config` for a file holding all of it.
///
/// Every setting is optional here: nil means "not given", so that a flag wins
/// over the config file, which wins over the default. Numeric options take the
/// next argument whatever it looks like (`.unconditional`), so that
/// `--snap-length -5` is refused as out of range, not as a missing value.
package struct CaptureOptions: ParsableArguments {
    package init() {}

    /// `--config`, `-c`, `-X` and `--credentials-directory`, as `consume`, `limit` and `watermarks` take them.
    @OptionGroup var connection: KafkaConnectionOptions

    @Flag(name: .customLong("print-config"), help: "Print the effective configuration (secrets redacted) and exit.")
    var printConfig = false

    @Option(
        name: [.customShort("p"), .customLong("port-mask")],
        parsing: .unconditional,
        help: Setting.help("port-mask")
    )
    var portMask: String?

    @Option(
        name: [.customShort("b"), .customLong("rx-burst")],
        parsing: .unconditional,
        help: Setting.help("rx-burst")
    )
    var rxBurst: String?

    @Option(
        name: .customLong("max-rebursts"),
        parsing: .unconditional,
        help: Setting.help("max-rebursts")
    )
    var maxRebursts: String?

    @Option(
        name: [.customShort("w"), .customLong("tx-burst")],
        parsing: .unconditional,
        help: Setting.help("tx-burst")
    )
    var txBurst: String?

    @Option(
        name: [.customShort("d"), .customLong("rx-desc")],
        parsing: .unconditional,
        help: Setting.help("rx-desc")
    )
    var rxDescriptors: String?

    @Option(
        name: [.customShort("x"), .customLong("ring-size")],
        parsing: .unconditional,
        help: Setting.help("ring-size")
    )
    var ringSize: String?

    @Option(
        name: [.customShort("q"), .customLong("rx-queues")],
        parsing: .unconditional,
        help: Setting.help("rx-queues")
    )
    var rxQueues: String?

    @Option(
        name: .customLong("tx-workers"),
        parsing: .unconditional,
        help: Setting.help("tx-workers")
    )
    var txWorkers: String?

    @Option(
        name: [.customShort("t"), .customLong("topic")],
        help: Setting.help("topic")
    )
    var topic: String?

    @Option(help: Setting.help("headers"))
    var headers: String?

    @Option(
        name: .customLong("probe-id"),
        help: Setting.help("probe-id")
    )
    var probeID: String?

    @Option(
        name: [.customShort("s"), .customLong("stats-file")],
        help: Setting.help("stats-file"),
        completion: .file()
    )
    var statsFile: String?

    @Option(
        name: .customLong("ring-full"),
        help: Setting.help("ring-full"),
        completion: .list(CaptureSettings.RingFullPolicy.allCases.map(\.rawValue))
    )
    var ringFull: String?

    @Option(
        name: .customLong("partitioner"),
        help: Setting.help("partitioner"),
        completion: .list(CaptureSettings.Partitioning.allCases.map(\.rawValue))
    )
    var partitioner: String?

    @Option(
        name: .customLong("produce-call"),
        help: Setting.help("produce-call"),
        completion: .list(CaptureSettings.ProduceCall.allCases.map(\.rawValue))
    )
    var produceCall: String?

    @Option(
        name: .customLong("record-time"),
        help: Setting.help("record-time"),
        completion: .list(CaptureSettings.RecordTime.allCases.map(\.rawValue))
    )
    var recordTime: String?

    @Option(
        name: .customLong("delivery-reports"),
        help: Setting.help("delivery-reports"),
        completion: .list(CaptureSettings.DeliveryReports.allCases.map(\.rawValue))
    )
    var deliveryReports: String?

    @Option(
        name: .customLong("sink"),
        help: Setting.help("sink"),
        completion: .list(CaptureSettings.Sink.allCases.map(\.rawValue))
    )
    var sink: String?

    @Option(
        name: .customLong("snap-length"),
        parsing: .unconditional,
        help: Setting.help("snap-length")
    )
    var snapLength: String?

    @Option(
        name: [.customShort("f"), .customLong("filter")],
        help: Setting.help("filter")
    )
    var filter: String?

    @Option(
        name: .customLong("filter-file"),
        help: Setting.help("filter-file"),
        completion: .file()
    )
    var filterFile: String?

    @Option(
        name: .customLong("filter-engine"),
        help: Setting.help("filter-engine"),
        completion: .list(FilterEngine.allCases.map(\.rawValue))
    )
    var filterEngine: String?

    @Option(
        name: .customLong("flow-cutoff-packets"),
        parsing: .unconditional,
        help: Setting.help("flow-cutoff-packets")
    )
    var flowCutoffPackets: String?

    @Option(
        name: .customLong("flow-cutoff-bytes"),
        parsing: .unconditional,
        help: Setting.help("flow-cutoff-bytes")
    )
    var flowCutoffBytes: String?

    @Option(
        name: .customLong("flow-timeout"),
        parsing: .unconditional,
        help: Setting.help("flow-timeout")
    )
    var flowTimeout: String?

    @Option(
        name: .customLong("flow-table-size"),
        parsing: .unconditional,
        help: Setting.help("flow-table-size")
    )
    var flowTableSize: String?

    @Option(
        name: .customLong("dedup-window-us"),
        parsing: .unconditional,
        help: Setting.help("dedup-window-us")
    )
    var dedupWindowMicros: String?

    @Option(
        name: .customLong("dedup-table-size"),
        parsing: .unconditional,
        help: Setting.help("dedup-table-size")
    )
    var dedupTableSize: String?

    @Option(
        name: .customLong("bundle-packets"),
        parsing: .unconditional,
        help: Setting.help("bundle-packets")
    )
    var bundlePackets: String?

    @Option(
        name: .customLong("bundle-bytes"),
        parsing: .unconditional,
        help: Setting.help("bundle-bytes")
    )
    var bundleBytes: String?

    @Option(
        name: .customLong("bundle-linger-us"),
        parsing: .unconditional,
        help: Setting.help("bundle-linger-us")
    )
    var bundleLingerMicros: String?

    @Option(
        name: .customLong("queue-full-retries"),
        parsing: .unconditional,
        help: Setting.help("queue-full-retries")
    )
    var queueFullRetries: String?

    @Option(
        name: .customLong("idle-spin-polls"),
        parsing: .unconditional,
        help: Setting.help("idle-spin-polls")
    )
    var idleSpinPolls: String?

    @Option(
        name: .customLong("idle-sleep-max-us"),
        parsing: .unconditional,
        help: Setting.help("idle-sleep-max-us")
    )
    var idleSleepMaxMicros: String?

    @Option(
        name: .customLong("stats-interval"),
        parsing: .unconditional,
        help: Setting.help("stats-interval")
    )
    var statsInterval: String?

    @Option(
        name: .customLong("drain-timeout"),
        parsing: .unconditional,
        help: Setting.help("drain-timeout")
    )
    var drainTimeout: String?

    @Option(
        name: .customLong("idle-exit"),
        parsing: .unconditional,
        help: Setting.help("idle-exit")
    )
    var idleExit: String?

    @Option(
        name: .customLong("embedded-partitions"),
        parsing: .unconditional,
        help: Setting.help("embedded-partitions")
    )
    var embeddedPartitions: String?

    @Option(
        name: .customLong("embedded-address-file"),
        help: Setting.help("embedded-address-file"),
        completion: .file()
    )
    var embeddedAddressFile: String?

    @Flag(
        name: .customLong("require-broker"),
        inversion: .prefixedNo,
        help: Setting.help("require-broker")
    )
    var requireBroker: Bool?

    @Option(
        name: .customLong("log-level"),
        help: Setting.help("log-level"),
        completion: .list(ResolvedConfiguration.logLevels)
    )
    var logLevel: String?

    @Option(
        name: .customLong("log-format"),
        help: Setting.help("log-format"),
        completion: .list(LogFormat.allCases.map(\.rawValue))
    )
    var logFormat: String?

    @Option(
        name: .customLong("restart-backoff-ms"),
        parsing: .unconditional,
        help: Setting.help("restart-backoff-ms")
    )
    var restartBackoffMs: String?

    @Option(
        name: .customLong("restart-backoff-max"),
        parsing: .unconditional,
        help: Setting.help("restart-backoff-max")
    )
    var restartBackoffMax: String?

    @Option(
        name: .customLong("max-restarts-per-minute"),
        parsing: .unconditional,
        help: Setting.help("max-restarts-per-minute")
    )
    var maxRestartsPerMinute: String?

    @Option(
        name: .customLong("stall-seconds"),
        parsing: .unconditional,
        help: Setting.help("stall-seconds")
    )
    var stallSeconds: String?

    @Option(
        name: .customLong("slow-round-trip-ms"),
        parsing: .unconditional,
        help: Setting.help("slow-round-trip-ms")
    )
    var slowRoundTripMs: String?

    @Option(
        name: .customLong("counter-trace"),
        help: Setting.help("counter-trace"),
        completion: .file()
    )
    var counterTrace: String?

    @Option(
        name: .customLong("counter-trace-interval-ms"),
        parsing: .unconditional,
        help: Setting.help("counter-trace-interval-ms")
    )
    var counterTraceIntervalMs: String?

    @Option(
        name: .customLong("metrics-address"),
        help: Setting.help("metrics-address")
    )
    var metricsAddress: String?

    @Option(
        name: .customLong("control-cores"),
        help: Setting.help("control-cores"),
        completion: .list(["auto", "main-lcore"])
    )
    var controlCores: String?

    #if FASTCAPA_TESTING_HOOKS
    /// A test seam (TestingHooks): in test builds only, and never in --help or the man page.
    @Flag(
        name: .customLong("testing-fault-signals"),
        help: ArgumentHelp(
            "Testing aid: SIGUSR2 makes every producer fail fatally (as a fenced idempotent producer does).",
            visibility: .private
        )
    )
    var testingFaultSignals = false
    #endif

    /// The settings given as flags, by config-file key.
    var givenOnCommandLine: [String: String] {
        Dictionary(
            uniqueKeysWithValues: Setting.all.compactMap { setting in setting.given(self).map { (setting.key, $0) } }
        )
    }

    /// Flags > config file > defaults, validated as a whole.
    /// - Parameters:
    ///   - eal: the EAL arguments given before `--` (they replace the config file's).
    ///   - environment: what `${NAME}` in the files and `@NAME` credentials stand for.
    package func resolve(
        eal: [String] = [],
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> ResolvedConfiguration {
        let environment = try CredentialsDirectory.environment(environment, directory: connection.credentialsDirectory)
        var resolved = ResolvedConfiguration()
        let file = try connection.config.map { try ConfigurationFile.load($0, environment: environment) }
        for (key, value, line) in file?.values ?? [] {
            do {
                try Setting.byKey[key]!.apply(&resolved, value)
                // Checked alone (over the defaults) so that the error names this line.
                var alone = ResolvedConfiguration()
                try Setting.byKey[key]!.apply(&alone, value)
                try alone.validate()
            } catch {
                throw SettingError("config file \(file!.path):\(line): \(error)")
            }
        }
        for (key, value) in givenOnCommandLine {
            try Setting.byKey[key]!.apply(&resolved, value)
        }
        resolved.eal = eal.isEmpty ? (file?.eal ?? []) : eal

        // Kafka: the INI file, then the config file's maps, then -X (later wins).
        if let path = resolved.kafkaConfig {
            resolved.kafka = try Self.loadIni(path, environment: environment, warnings: &resolved.warnings)
        }
        if let file { resolved.kafka.merge(file.kafka) }
        resolved.kafka.merge(try connection.dashXProperties())
        try resolved.readFilterFile()
        resolved.kafka = try ValueReferences.resolvingSecrets(
            resolved.kafka,
            environment: environment,
            credentialsFrom: connection.credentialsDirectory == nil
                ? CredentialsDirectory.systemdVariable : CredentialsDirectory.option
        )
        try resolved.validate()
        return resolved
    }
}
