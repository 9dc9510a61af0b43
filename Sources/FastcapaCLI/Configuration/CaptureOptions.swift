import ArgumentParser
import FastcapaCapture
import FastcapaKafka
import Foundation

/// The application options of the capture command (after `--`): Fastcapa's
/// short flags with its defaults, a long name for every setting, `-X` for any
/// librdkafka property and `--config` for a file holding all of it.
///
/// Every setting is optional here: nil means "not given", so that a flag wins
/// over the config file, which wins over the default. Numeric options take the
/// next argument whatever it looks like (`.unconditional`), so that
/// `--snap-length -5` is refused as out of range, not as a missing value.
package struct CaptureOptions: ParsableArguments {
    package init() {}

    @Option(
        name: .customLong("config"),
        help: "A YAML file with EAL arguments, settings and Kafka properties (see Configs/fastcapa.yaml).",
        completion: .file(extensions: ["yaml", "yml"])
    )
    var config: String?

    @Flag(name: .customLong("print-config"), help: "Print the effective configuration (secrets redacted) and exit.")
    var printConfig = false

    @Option(
        name: .customLong("credentials-directory"),
        help:
            "Read @NAME secrets from DIR/NAME instead of systemd's $CREDENTIALS_DIRECTORY: how `fastcapa check` and --print-config see the service's credentials from a shell (LoadCredential=NAME:/etc/fastcapa/NAME: --credentials-directory /etc/fastcapa).",
        completion: .directory
    )
    var credentialsDirectory: String?

    @Option(
        name: [.customShort("p"), .customLong("port-mask")],
        parsing: .unconditional,
        help: "Hex mask of the ports to capture from. (default: 0x1)"
    )
    var portMask: String?

    @Option(
        name: [.customShort("b"), .customLong("rx-burst")],
        parsing: .unconditional,
        help: "Packets per receive burst, 1-1024. (default: 32)"
    )
    var rxBurst: String?

    @Option(
        name: .customLong("max-rebursts"),
        parsing: .unconditional,
        help: "Receive again at once, up to this many times, while bursts come back full. (default: 4)"
    )
    var maxRebursts: String?

    @Option(
        name: [.customShort("w"), .customLong("tx-burst")],
        parsing: .unconditional,
        help: "Packets per transmit-ring dequeue, 1-4096. (default: 256)"
    )
    var txBurst: String?

    @Option(
        name: [.customShort("d"), .customLong("rx-desc")],
        parsing: .unconditional,
        help: "Receive descriptors per queue. (default: 1024)"
    )
    var rxDescriptors: String?

    @Option(
        name: [.customShort("x"), .customLong("ring-size")],
        parsing: .unconditional,
        help: "Slots per transmit ring, a power of two. (default: 2048)"
    )
    var ringSize: String?

    @Option(
        name: [.customShort("q"), .customLong("rx-queues")],
        parsing: .unconditional,
        help: "Receive queues per port, spread by RSS. (default: 1)"
    )
    var rxQueues: String?

    @Option(
        name: .customLong("tx-workers"),
        parsing: .unconditional,
        help: "Transmit workers per ring, each with its own producer and lcore. (default: 1)"
    )
    var txWorkers: String?

    @Option(
        name: [.customShort("t"), .customLong("topic")],
        help: "Kafka topic; {port} in it becomes the port's id (one topic per port). (default: pcap)"
    )
    var topic: String?

    @Option(help: "Headers added to every message: any of port, queue, probe, comma-separated. (default: none)")
    var headers: String?

    @Option(
        name: .customLong("probe-id"),
        help: "The probe header's value. (default: the host name)"
    )
    var probeID: String?

    @Option(
        name: [.customShort("c"), .customLong("kafka-config")],
        help: "Fastcapa's Kafka INI file: [kafka-global] and [kafka-topic] librdkafka properties.",
        completion: .file(extensions: ["ini", "conf"])
    )
    var kafkaConfig: String?

    @Option(
        name: [.customShort("s"), .customLong("stats-file")],
        help: "Append librdkafka's statistics JSON here, one object per line, with the probe's own snapshot.",
        completion: .file()
    )
    var statsFile: String?

    @Option(
        name: .customShort("X"),
        parsing: .unconditionalSingleValue,
        help: ArgumentHelp(
            "A librdkafka property (repeatable; topic.KEY=value for topic properties).",
            valueName: "key=value"
        )
    )
    var properties: [String] = []

    @Option(
        name: .customLong("ring-full"),
        help:
            "When a transmit ring is full: drop (count and free) or wait (back-pressure). (default: drop; wait when every port replays capture files once)",
        completion: .list(CaptureSettings.RingFullPolicy.allCases.map(\.rawValue))
    )
    var ringFull: String?

    @Option(
        name: .customLong("partitioner"),
        help:
            "round-robin (each batch to the next partition; 'default', its old name, still works), flow (one partition per flow, in order) or key (librdkafka's partitioner, per message). (default: round-robin)",
        completion: .list(CaptureSettings.Partitioning.allCases.map(\.rawValue))
    )
    var partitioner: String?

    @Option(
        name: .customLong("produce-call"),
        help: "batch (rd_kafka_produce_batch) or single (rd_kafka_produce per packet). (default: batch)",
        completion: .list(CaptureSettings.ProduceCall.allCases.map(\.rawValue))
    )
    var produceCall: String?

    @Option(
        name: .customLong("delivery-reports"),
        help:
            "Where delivery reports are served: lcore (the transmit lcore, after every burst) or thread (a thread per producer on the control cores). (default: lcore)",
        completion: .list(CaptureSettings.DeliveryReports.allCases.map(\.rawValue))
    )
    var deliveryReports: String?

    @Option(
        name: .customLong("sink"),
        help:
            "kafka, or null: free packets after the ring without sending them (receive-path benchmarks). (default: kafka)",
        completion: .list(CaptureSettings.Sink.allCases.map(\.rawValue))
    )
    var sink: String?

    @Option(
        name: .customLong("snap-length"),
        parsing: .unconditional,
        help: "Cut frames longer than this many bytes (counted as truncated). (default: 262144)"
    )
    var snapLength: String?

    @Option(
        name: [.customShort("f"), .customLong("filter")],
        help: ArgumentHelp(
            "Capture only packets this tcpdump expression accepts (pcap-filter(7)); the others are counted as filtered. (default: none)",
            valueName: "expression"
        )
    )
    var filter: String?

    @Option(
        name: .customLong("filter-file"),
        help: "Read the capture filter from this file ('#' starts a comment); SIGHUP reads it again.",
        completion: .file()
    )
    var filterFile: String?

    @Option(
        name: .customLong("filter-engine"),
        help:
            "jit (native code; the interpreter where DPDK has no JIT) or interpreter (eBPF interpreter). (default: jit)",
        completion: .list(FilterEngine.allCases.map(\.rawValue))
    )
    var filterEngine: String?

    @Option(
        name: .customLong("queue-full-retries"),
        parsing: .unconditional,
        help: "Times to wait 1 ms for room in librdkafka's queue before dropping. (default: 50)"
    )
    var queueFullRetries: String?

    @Option(
        name: .customLong("idle-spin-polls"),
        parsing: .unconditional,
        help: "Empty polls before a polling lcore starts to sleep. (default: 1024)"
    )
    var idleSpinPolls: String?

    @Option(
        name: .customLong("idle-sleep-max-us"),
        parsing: .unconditional,
        help: "Longest idle sleep of a polling lcore in microseconds; 0 never sleeps. (default: 100)"
    )
    var idleSleepMaxMicros: String?

    @Option(
        name: .customLong("stats-interval"),
        parsing: .unconditional,
        help: "Seconds between statistics tables; 0 turns them off. (default: 5)"
    )
    var statsInterval: String?

    @Option(
        name: .customLong("drain-timeout"),
        parsing: .unconditional,
        help: "Seconds a graceful stop may spend emptying rings and flushing Kafka. (default: 10)"
    )
    var drainTimeout: String?

    @Option(
        name: .customLong("idle-exit"),
        parsing: .unconditional,
        help: "Stop after this many seconds without a packet (replaying files); 0: never. (default: 0)"
    )
    var idleExit: String?

    @Option(
        name: .customLong("embedded-partitions"),
        parsing: .unconditional,
        help: "Partitions of the topic on the embedded broker. (default: 1)"
    )
    var embeddedPartitions: String?

    @Option(
        name: .customLong("embedded-address-file"),
        help: "Write the embedded broker's bootstrap address to this file.",
        completion: .file()
    )
    var embeddedAddressFile: String?

    @Flag(
        name: .customLong("require-broker"),
        inversion: .prefixedNo,
        help:
            "With no Kafka broker configured, refuse to start (--require-broker: production units) or publish to the embedded broker, in the process's memory (--no-require-broker). (default: --no-require-broker)"
    )
    var requireBroker: Bool?

    @Option(
        name: .customLong("log-level"),
        help: "trace, debug, info, notice, warning, error or critical. (default: info)",
        completion: .list(ResolvedConfiguration.logLevels)
    )
    var logLevel: String?

    @Option(
        name: .customLong("log-format"),
        help:
            "auto (journal under systemd, else text), text, journal (<PRIORITY> first, no time) or json (one object a line: time, level, label, source, message, metadata). (default: auto)",
        completion: .list(LogFormat.allCases.map(\.rawValue))
    )
    var logFormat: String?

    @Option(
        name: .customLong("restart-backoff-ms"),
        parsing: .unconditional,
        help:
            "First wait before restarting a producer that failed again within a minute; doubles each time. (default: 100)"
    )
    var restartBackoffMs: String?

    @Option(
        name: .customLong("restart-backoff-max"),
        parsing: .unconditional,
        help: "Longest wait between producer restarts, in seconds. (default: 30)"
    )
    var restartBackoffMax: String?

    @Option(
        name: .customLong("max-restarts-per-minute"),
        parsing: .unconditional,
        help: "This many producer restart attempts within a minute make the probe unhealthy. (default: 10)"
    )
    var maxRestartsPerMinute: String?

    @Option(
        name: .customLong("stall-seconds"),
        parsing: .unconditional,
        help: "Messages waiting this long without a delivery make a producer degraded. (default: 30)"
    )
    var stallSeconds: String?

    @Option(
        name: .customLong("slow-round-trip-ms"),
        parsing: .unconditional,
        help: "A broker round trip above this (librdkafka's statistics) makes a producer degraded. (default: 1000)"
    )
    var slowRoundTripMs: String?

    @Option(
        name: .customLong("counter-trace"),
        help: "Append 'elapsed-ms received delivered restarts' lines here every --counter-trace-interval-ms.",
        completion: .file()
    )
    var counterTrace: String?

    @Option(
        name: .customLong("counter-trace-interval-ms"),
        parsing: .unconditional,
        help: "Milliseconds between counter-trace lines. (default: 10)"
    )
    var counterTraceIntervalMs: String?

    @Option(
        name: .customLong("metrics-address"),
        help: "Serve /metrics (Prometheus) and /health here, e.g. 127.0.0.1:9464. (default: off)"
    )
    var metricsAddress: String?

    @Option(
        name: .customLong("control-cores"),
        help:
            "CPUs for librdkafka's threads and the supervisors: auto (those no worker lcore uses, or all), main-lcore, or a list like 0,2-3. (default: auto)",
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
        let given: [(String, String?)] = [
            ("port-mask", portMask), ("rx-burst", rxBurst), ("max-rebursts", maxRebursts), ("tx-burst", txBurst),
            ("rx-desc", rxDescriptors), ("ring-size", ringSize), ("rx-queues", rxQueues), ("tx-workers", txWorkers),
            ("topic", topic), ("headers", headers), ("probe-id", probeID), ("kafka-config", kafkaConfig),
            ("stats-file", statsFile), ("ring-full", ringFull),
            ("partitioner", partitioner), ("produce-call", produceCall),
            ("delivery-reports", deliveryReports), ("sink", sink), ("snap-length", snapLength),
            ("filter", filter), ("filter-file", filterFile), ("filter-engine", filterEngine),
            ("queue-full-retries", queueFullRetries),
            ("idle-spin-polls", idleSpinPolls), ("idle-sleep-max-us", idleSleepMaxMicros),
            ("stats-interval", statsInterval), ("drain-timeout", drainTimeout), ("idle-exit", idleExit),
            ("embedded-partitions", embeddedPartitions), ("embedded-address-file", embeddedAddressFile),
            ("require-broker", requireBroker.map { "\($0)" }),
            ("log-level", logLevel), ("log-format", logFormat), ("restart-backoff-ms", restartBackoffMs),
            ("restart-backoff-max", restartBackoffMax),
            ("max-restarts-per-minute", maxRestartsPerMinute), ("stall-seconds", stallSeconds),
            ("slow-round-trip-ms", slowRoundTripMs),
            ("counter-trace", counterTrace), ("counter-trace-interval-ms", counterTraceIntervalMs),
            ("metrics-address", metricsAddress), ("control-cores", controlCores),
        ]
        return Dictionary(uniqueKeysWithValues: given.compactMap { key, value in value.map { (key, $0) } })
    }

    /// Flags > config file > defaults, validated as a whole.
    /// - Parameters:
    ///   - eal: the EAL arguments given before `--` (they replace the config file's).
    ///   - environment: what `${NAME}` in the files and `@NAME` credentials stand for.
    package func resolve(
        eal: [String] = [],
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> ResolvedConfiguration {
        let environment = try CredentialsDirectory.environment(environment, directory: credentialsDirectory)
        var resolved = ResolvedConfiguration()
        let file = try config.map { try ConfigurationFile.load($0, environment: environment) }
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
        resolved.kafka.merge(try Self.parseDashX(properties))
        try resolved.readFilterFile()
        resolved.kafka = try ValueReferences.resolvingSecrets(resolved.kafka, environment: environment)
        try resolved.validate()
        return resolved
    }
}
