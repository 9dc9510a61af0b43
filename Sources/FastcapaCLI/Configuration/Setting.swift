import ArgumentParser
import FastcapaCapture
import Foundation

/// One setting, declared once: its long option name (also its config-file key),
/// Fastcapa's short flag if it had one, its default, its help, where the
/// command line holds it, and how to read and write it. This one table drives
/// the options' help (with its "(default: ...)"), the config file,
/// `--print-config` and the migration table.
struct Setting: Sendable {
    var key: String
    var fastcapaFlag: String?
    var defaultValue: String
    var apply: @Sendable (inout ResolvedConfiguration, String) throws -> Void
    var read: @Sendable (ResolvedConfiguration) -> String?
    /// Its value as given on the command line (nil: not given).
    var given: @Sendable (CaptureOptions) -> String?
    /// What `--help` says of it, before the default.
    var summary: String
    /// The default `--help` names: `defaultValue`, or words for a default found at run time; nil: none.
    var shownDefault: String?
    /// A short flag fastcapa added (Fastcapa had none for this setting).
    var shortFlag: String? = nil
    /// `--help`'s name for the value, where the key is not a good one.
    var valueName: String? = nil

    /// The flags that set it, for messages: "-f, --filter".
    var flags: String { [fastcapaFlag ?? shortFlag, "--\(key)"].compactMap { $0 }.joined(separator: ", ") }

    /// Its `--help` text: the summary and the default.
    var helpText: String { summary + (shownDefault.map { " (default: \($0))" } ?? "") }

    /// The option's help, for the option declared with `--key`.
    static func help(_ key: String) -> ArgumentHelp {
        guard let setting = byKey[key] else { fatalError("no setting '\(key)' in Setting.all") }
        return ArgumentHelp(setting.helpText, valueName: setting.valueName)
    }

    /// Where the command line holds a setting given as text.
    typealias GivenText = KeyPath<CaptureOptions, String?> & Sendable

    static func integer(
        _ key: String,
        flag: String? = nil,
        _ path: WritableKeyPath<ResolvedConfiguration, Int> & Sendable,
        option: GivenText,
        help: String
    ) -> Setting {
        let defaultValue = "\(ResolvedConfiguration()[keyPath: path])"
        return Setting(
            key: key,
            fastcapaFlag: flag,
            defaultValue: defaultValue,
            apply: { configuration, text in configuration[keyPath: path] = try parseInteger(text, key: key) },
            read: { "\($0[keyPath: path])" },
            given: { $0[keyPath: option] },
            summary: help,
            shownDefault: defaultValue
        )
    }

    static func string(
        _ key: String,
        flag: String? = nil,
        _ path: WritableKeyPath<ResolvedConfiguration, String> & Sendable,
        option: GivenText,
        help: String,
        shownDefault: String? = nil
    ) -> Setting {
        let defaultValue = ResolvedConfiguration()[keyPath: path]
        return Setting(
            key: key,
            fastcapaFlag: flag,
            defaultValue: defaultValue,
            apply: { configuration, text in configuration[keyPath: path] = text },
            read: { $0[keyPath: path] },
            given: { $0[keyPath: option] },
            summary: help,
            shownDefault: shownDefault ?? defaultValue
        )
    }

    /// A setting that may be absent (a file, an address); empty text unsets it.
    static func optionalString(
        _ key: String,
        flag: String? = nil,
        _ path: WritableKeyPath<ResolvedConfiguration, String?> & Sendable,
        option: GivenText,
        help: String,
        shownDefault: String? = nil
    ) -> Setting {
        Setting(
            key: key,
            fastcapaFlag: flag,
            defaultValue: "",
            apply: { configuration, text in configuration[keyPath: path] = text.isEmpty ? nil : text },
            read: { $0[keyPath: path] },
            given: { $0[keyPath: option] },
            summary: help,
            shownDefault: shownDefault
        )
    }

    /// `true` or `false`; on the command line `--key` or `--no-key`.
    static func boolean(
        _ key: String,
        _ path: WritableKeyPath<ResolvedConfiguration, Bool> & Sendable,
        option: KeyPath<CaptureOptions, Bool?> & Sendable,
        help: String
    ) -> Setting {
        let defaultValue = ResolvedConfiguration()[keyPath: path]
        return Setting(
            key: key,
            fastcapaFlag: nil,
            defaultValue: "\(defaultValue)",
            apply: { configuration, text in
                guard let value = Bool(text.trimmingCharacters(in: .whitespaces)) else {
                    throw SettingError("\(key): '\(text)' is not true or false. Use \(key): true or \(key): false.")
                }
                configuration[keyPath: path] = value
            },
            read: { "\($0[keyPath: path])" },
            given: { $0[keyPath: option].map { "\($0)" } },
            summary: help,
            shownDefault: defaultValue ? "--\(key)" : "--no-\(key)"
        )
    }

    /// One of an enumeration's values; `aliases` are other names accepted for some of them.
    static func choice<Value: RawRepresentable & CaseIterable & Sendable>(
        _ key: String,
        _ path: WritableKeyPath<ResolvedConfiguration, Value> & Sendable,
        aliases: [String: Value] = [:],
        given: (WritableKeyPath<ResolvedConfiguration, Bool> & Sendable)? = nil,
        option: GivenText,
        help: String,
        shownDefault: String? = nil
    ) -> Setting where Value.RawValue == String {
        let defaultValue = ResolvedConfiguration()[keyPath: path].rawValue
        return Setting(
            key: key,
            fastcapaFlag: nil,
            defaultValue: defaultValue,
            apply: { configuration, text in
                guard let value = Value(rawValue: text) ?? aliases[text] else {
                    // Every accepted name, each alias after the value it stands for.
                    let names = Value.allCases.flatMap { value in
                        [value.rawValue] + aliases.filter { $0.value.rawValue == value.rawValue }.keys.sorted()
                    }
                    let notes = aliases.sorted { $0.key < $1.key }.map {
                        "'\($0.key)' is another name for \($0.value.rawValue)"
                    }
                    throw SettingError(
                        "\(key): '\(text)' is not one of \(names.joined(separator: ", ")). Use one of those"
                            + (notes.isEmpty ? "." : " (\(notes.joined(separator: "; "))).")
                    )
                }
                configuration[keyPath: path] = value
                if let given { configuration[keyPath: given] = true }
            },
            read: { $0[keyPath: path].rawValue },
            given: { $0[keyPath: option] },
            summary: help,
            shownDefault: shownDefault ?? defaultValue
        )
    }

    /// Every setting, in the order `--print-config` shows them.
    static let all: [Setting] = [
        Setting(
            key: "port-mask",
            fastcapaFlag: "-p",
            defaultValue: "0x" + String(ResolvedConfiguration().settings.portMask, radix: 16),
            apply: { $0.settings.portMask = try parsePortMask($1) },
            read: { "0x" + String($0.settings.portMask, radix: 16) },
            given: \.portMask,
            summary: "Hex mask of the ports to capture from.",
            shownDefault: "0x" + String(ResolvedConfiguration().settings.portMask, radix: 16)
        ),
        .integer(
            "rx-burst",
            flag: "-b",
            \.settings.rxBurst,
            option: \.rxBurst,
            help: "Packets per receive burst, 1-1024."
        ),
        .integer(
            "max-rebursts",
            \.settings.maxRebursts,
            option: \.maxRebursts,
            help: "Receive again at once, up to this many times, while bursts come back full."
        ),
        .integer(
            "tx-burst",
            flag: "-w",
            \.settings.txBurst,
            option: \.txBurst,
            help: "Packets per transmit-ring dequeue, 1-4096."
        ),
        .integer(
            "rx-desc",
            flag: "-d",
            \.settings.rxDescriptors,
            option: \.rxDescriptors,
            help: "Receive descriptors per queue."
        ),
        .integer(
            "ring-size",
            flag: "-x",
            \.settings.ringSize,
            option: \.ringSize,
            help: "Slots per transmit ring, a power of two."
        ),
        .integer(
            "rx-queues",
            flag: "-q",
            \.settings.rxQueues,
            option: \.rxQueues,
            help: "Receive queues per port, spread by RSS."
        ),
        .integer(
            "tx-workers",
            \.settings.txWorkersPerRing,
            option: \.txWorkers,
            help: "Transmit workers per ring, each with its own producer and lcore."
        ),
        .string(
            "topic",
            flag: "-t",
            \.settings.topic,
            option: \.topic,
            help: "Kafka topic; {port} in it becomes the port's id (one topic per port)."
        ),
        Setting(
            key: "headers",
            fastcapaFlag: nil,
            defaultValue: "",
            apply: { configuration, text in configuration.settings.headers = try parseHeaders(text) },
            read: { $0.settings.headers.map(\.rawValue).joined(separator: ",") },
            given: \.headers,
            summary:
                "Headers added to every message: any of port, queue, probe, time_ns (capture time in ns, 8 bytes big-endian), comma-separated.",
            shownDefault: "none"
        ),
        .string(
            "probe-id",
            \.settings.probeID,
            option: \.probeID,
            help: "The probe header's value.",
            shownDefault: "the host name"
        ),
        .optionalString(
            "kafka-config",
            flag: "-c",
            \.kafkaConfig,
            option: \.connection.kafkaConfig,
            help: "Fastcapa's Kafka INI file: [kafka-global] and [kafka-topic] librdkafka properties."
        ),
        .optionalString(
            "stats-file",
            flag: "-s",
            \.statsFile,
            option: \.statsFile,
            help: "Append librdkafka's statistics JSON here, one object per line, with the probe's own snapshot."
        ),
        .choice(
            "ring-full",
            \.settings.ringFull,
            given: \ResolvedConfiguration.settings.ringFullGiven,
            option: \.ringFull,
            help: "When a transmit ring is full: drop (count and free) or wait (back-pressure).",
            shownDefault: "drop; wait when every port replays capture files once"
        ),
        .choice(
            "partitioner",
            \.settings.partitioning,
            aliases: CaptureSettings.Partitioning.aliases,
            option: \.partitioner,
            help:
                "round-robin (each batch to the next partition; 'default', its old name, still works), flow (one partition per flow, in order) or key (librdkafka's partitioner, per message)."
        ),
        .choice(
            "produce-call",
            \.settings.produceCall,
            option: \.produceCall,
            help: "batch (rd_kafka_produce_batch) or single (rd_kafka_produce per packet)."
        ),
        .choice(
            "record-time",
            \.settings.recordTime,
            option: \.recordTime,
            help:
                "What each message's Kafka timestamp (CreateTime) holds: capture (its capture time in ms; one rd_kafka_produceva per message) or send (when librdkafka took it, once per batch)."
        ),
        .choice(
            "delivery-reports",
            \.settings.deliveryReports,
            option: \.deliveryReports,
            help:
                "Where delivery reports are served: lcore (the transmit lcore, after every burst) or thread (a thread per producer on the control cores)."
        ),
        .choice(
            "sink",
            \.settings.sink,
            option: \.sink,
            help: "kafka, or null: free packets after the ring without sending them (receive-path benchmarks)."
        ),
        .integer(
            "snap-length",
            \.settings.snapLength,
            option: \.snapLength,
            help: "Cut frames longer than this many bytes (counted as truncated)."
        ),
        Setting(
            key: "filter",
            fastcapaFlag: nil,
            defaultValue: "",
            apply: { configuration, text in configuration.settings.filter = text },
            read: { $0.filterFile == nil ? $0.settings.filter : "" },
            given: \.filter,
            summary:
                "Capture only packets this tcpdump expression accepts (pcap-filter(7)); the others are counted as filtered.",
            shownDefault: "none",
            shortFlag: "-f",
            valueName: "expression"
        ),
        .optionalString(
            "filter-file",
            \.filterFile,
            option: \.filterFile,
            help: "Read the capture filter from this file ('#' starts a comment); SIGHUP reads it again."
        ),
        .choice(
            "filter-engine",
            \.settings.filterEngine,
            option: \.filterEngine,
            help: "jit (native code; the interpreter where DPDK has no JIT) or interpreter (eBPF interpreter)."
        ),
        .integer(
            "flow-cutoff-packets",
            \.settings.flowCutoffPackets,
            option: \.flowCutoffPackets,
            help:
                "Keep the first this many packets of each flow (both directions), drop the rest as flow_cutoff; 0: no packet limit."
        ),
        .integer(
            "flow-cutoff-bytes",
            \.settings.flowCutoffBytes,
            option: \.flowCutoffBytes,
            help: "Keep a flow's packets while its bytes before them are fewer than this; 0: no byte limit."
        ),
        .integer(
            "flow-timeout",
            \.settings.flowTimeoutSeconds,
            option: \.flowTimeout,
            help: "Seconds (capture time) after a flow's latest packet when its next one starts the flow anew."
        ),
        .integer(
            "flow-table-size",
            \.settings.flowTableSize,
            option: \.flowTableSize,
            help:
                "Flows each receive queue tracks (about 130 bytes each); new flows past it are kept, as flow_table_full."
        ),
        .integer(
            "dedup-window-us",
            \.settings.dedupWindowMicros,
            option: \.dedupWindowMicros,
            help:
                "Drop a frame as duplicate when the same bytes came on its port at most this many microseconds before; 0: off."
        ),
        .integer(
            "dedup-table-size",
            \.settings.dedupTableSize,
            option: \.dedupTableSize,
            help:
                "Frames each receive queue's duplicate window remembers (16 bytes each); about 8 times what a window sees."
        ),
        .integer(
            "bundle-packets",
            \.settings.bundlePackets,
            option: \.bundlePackets,
            help:
                "Most packets per Kafka message, as pcap records (format pcap-records-v1); 1: off, one packet per message."
        ),
        .integer(
            "bundle-bytes",
            \.settings.bundleBytes,
            option: \.bundleBytes,
            help:
                "Most bytes of a bundle's value, 16-byte record headers included; at least 16 + the snap length, at most message.max.bytes - 512."
        ),
        .integer(
            "bundle-linger-us",
            \.settings.bundleLingerMicros,
            option: \.bundleLingerMicros,
            help: "Longest a packet waits in an open bundle, in microseconds (1 to 1000000)."
        ),
        .integer(
            "queue-full-retries",
            \.settings.queueFullRetries,
            option: \.queueFullRetries,
            help: "Times to wait 1 ms for room in librdkafka's queue before dropping."
        ),
        .integer(
            "idle-spin-polls",
            \.settings.idleSpinPolls,
            option: \.idleSpinPolls,
            help: "Empty polls before a polling lcore starts to sleep."
        ),
        .integer(
            "idle-sleep-max-us",
            \.settings.idleSleepMaxMicros,
            option: \.idleSleepMaxMicros,
            help: "Longest idle sleep of a polling lcore in microseconds; 0 never sleeps."
        ),
        .integer(
            "stats-interval",
            \.statsInterval,
            option: \.statsInterval,
            help: "Seconds between statistics tables; 0 turns them off."
        ),
        .integer(
            "drain-timeout",
            \.drainTimeout,
            option: \.drainTimeout,
            help: "Seconds a graceful stop may spend emptying rings and flushing Kafka."
        ),
        .integer(
            "idle-exit",
            \.idleExit,
            option: \.idleExit,
            help: "Stop after this many seconds without a packet (replaying files); 0: never."
        ),
        .integer(
            "embedded-partitions",
            \.embeddedPartitions,
            option: \.embeddedPartitions,
            help: "Partitions of the topic on the embedded broker."
        ),
        .optionalString(
            "embedded-address-file",
            \.embeddedAddressFile,
            option: \.embeddedAddressFile,
            help: "Write the embedded broker's bootstrap address to this file."
        ),
        .boolean(
            "require-broker",
            \.requireBroker,
            option: \.requireBroker,
            help:
                "With no Kafka broker configured, refuse to start (--require-broker: production units) or publish to the embedded broker, in the process's memory (--no-require-broker)."
        ),
        .string(
            "log-level",
            \.logLevel,
            option: \.logLevel,
            help: "trace, debug, info, notice, warning, error or critical."
        ),
        .choice(
            "log-format",
            \.logFormat,
            option: \.logFormat,
            help:
                "auto (journal under systemd, else text), text, journal (<PRIORITY> first, no time) or json (one object a line: time, level, label, source, message, metadata)."
        ),
        .integer(
            "restart-backoff-ms",
            \.restartBackoffMs,
            option: \.restartBackoffMs,
            help: "First wait before restarting a producer that failed again within a minute; doubles each time."
        ),
        .integer(
            "restart-backoff-max",
            \.restartBackoffMaxSeconds,
            option: \.restartBackoffMax,
            help: "Longest wait between producer restarts, in seconds."
        ),
        .integer(
            "max-restarts-per-minute",
            \.maxRestartsPerMinute,
            option: \.maxRestartsPerMinute,
            help: "This many producer restart attempts within a minute make the probe unhealthy."
        ),
        .integer(
            "stall-seconds",
            \.stallSeconds,
            option: \.stallSeconds,
            help: "Messages waiting this long without a delivery make a producer degraded."
        ),
        .integer(
            "slow-round-trip-ms",
            \.slowRoundTripMs,
            option: \.slowRoundTripMs,
            help: "A broker round trip above this (librdkafka's statistics) makes a producer degraded."
        ),
        .optionalString(
            "counter-trace",
            \.counterTrace,
            option: \.counterTrace,
            help: "Append 'elapsed-ms received delivered restarts' lines here every --counter-trace-interval-ms."
        ),
        .integer(
            "counter-trace-interval-ms",
            \.counterTraceIntervalMs,
            option: \.counterTraceIntervalMs,
            help: "Milliseconds between counter-trace lines."
        ),
        .optionalString(
            "metrics-address",
            \.metricsAddress,
            option: \.metricsAddress,
            help: "Serve /metrics (Prometheus) and /health here, e.g. 127.0.0.1:9464.",
            shownDefault: "off"
        ),
        Setting(
            key: "control-cores",
            fastcapaFlag: nil,
            defaultValue: ResolvedConfiguration().controlCores.description,
            apply: { configuration, text in
                do throws(CaptureSettings.Invalid) {
                    configuration.controlCores = try ControlCores(parsing: text)
                } catch {
                    throw SettingError(error)
                }
            },
            read: { $0.controlCores.description },
            given: \.controlCores,
            summary:
                "CPUs for librdkafka's threads and the supervisors: auto (those no worker lcore uses, or all), main-lcore, or a list like 0,2-3.",
            shownDefault: ResolvedConfiguration().controlCores.description
        ),
    ]

    /// Settings a SIGHUP applies to the running probe; the others need a restart.
    static let liveKeys: Set<String> = [
        "snap-length", "queue-full-retries", "kafka-config", "filter", "filter-file", "filter-engine",
        "flow-cutoff-packets", "flow-cutoff-bytes", "flow-timeout", "dedup-window-us",
    ]

    static let byKey: [String: Setting] = Dictionary(uniqueKeysWithValues: all.map { ($0.key, $0) })

    static func parseInteger(_ text: String, key: String) throws -> Int {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let value = Int(trimmed) else {
            let problem =
                trimmed.first == "-" || trimmed.allSatisfy(\.isNumber) && !trimmed.isEmpty
                ? "is out of range" : "is not a whole number"
            throw SettingError(
                "\(key): '\(text)' \(problem). Give a whole number, e.g. --\(key) \(byKey[key]?.defaultValue ?? "1")."
            )
        }
        return value
    }

    /// `--headers`: a comma-separated list of port, queue, probe and time_ns; empty or `none`: no header.
    static func parseHeaders(_ text: String) throws -> [CaptureSettings.MessageHeader] {
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if names == ["none"] { return [] }
        return try names.map { name in
            guard let header = CaptureSettings.MessageHeader(rawValue: name) else {
                throw SettingError(
                    "headers: '\(name)' is not a header. Use a comma-separated list of port, queue, probe and time_ns, e.g. --headers port,queue,probe."
                )
            }
            return header
        }
    }

    /// Fastcapa's port mask: hex, with or without 0x.
    static func parsePortMask(_ text: String) throws -> UInt64 {
        var digits = Substring(text.trimmingCharacters(in: .whitespaces))
        if digits.lowercased().hasPrefix("0x") { digits = digits.dropFirst(2) }
        guard !digits.isEmpty, digits.count <= 16, let mask = UInt64(digits, radix: 16) else {
            throw SettingError(
                "port mask (-p): '\(text)' is not a hex number. Write it like 0x1 (port 0) or 0x3 (ports 0 and 1)."
            )
        }
        guard mask != 0 else {
            throw SettingError(
                "port mask (-p): 0x0 selects no port. Give a hex mask with a bit per port, e.g. -p 0x1 for port 0."
            )
        }
        return mask
    }
}
