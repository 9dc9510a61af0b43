import FastcapaCapture
import Foundation

/// One setting: its long option name (also its config-file key), Fastcapa's
/// short flag if it had one, its default, and how to read and write it.
/// This one table drives the config file, `--print-config` and the migration table.
struct Setting: Sendable {
    var key: String
    var fastcapaFlag: String?
    var defaultValue: String
    var apply: @Sendable (inout ResolvedConfiguration, String) throws -> Void
    var read: @Sendable (ResolvedConfiguration) -> String?
    /// A short flag fastcapa added (Fastcapa had none for this setting).
    var shortFlag: String? = nil

    /// The flags that set it, for messages: "-f, --filter".
    var flags: String { [fastcapaFlag ?? shortFlag, "--\(key)"].compactMap { $0 }.joined(separator: ", ") }

    static func integer(
        _ key: String,
        flag: String? = nil,
        _ path: WritableKeyPath<ResolvedConfiguration, Int> & Sendable
    ) -> Setting {
        Setting(
            key: key,
            fastcapaFlag: flag,
            defaultValue: "\(ResolvedConfiguration()[keyPath: path])",
            apply: { configuration, text in configuration[keyPath: path] = try parseInteger(text, key: key) },
            read: { "\($0[keyPath: path])" }
        )
    }

    static func string(
        _ key: String,
        flag: String? = nil,
        _ path: WritableKeyPath<ResolvedConfiguration, String> & Sendable
    ) -> Setting {
        Setting(
            key: key,
            fastcapaFlag: flag,
            defaultValue: ResolvedConfiguration()[keyPath: path],
            apply: { configuration, text in configuration[keyPath: path] = text },
            read: { $0[keyPath: path] }
        )
    }

    static func optionalString(
        _ key: String,
        flag: String? = nil,
        _ path: WritableKeyPath<ResolvedConfiguration, String?> & Sendable
    ) -> Setting {
        Setting(
            key: key,
            fastcapaFlag: flag,
            defaultValue: "",
            apply: { configuration, text in configuration[keyPath: path] = text.isEmpty ? nil : text },
            read: { $0[keyPath: path] }
        )
    }

    /// `true` or `false`.
    static func boolean(_ key: String, _ path: WritableKeyPath<ResolvedConfiguration, Bool> & Sendable) -> Setting {
        Setting(
            key: key,
            fastcapaFlag: nil,
            defaultValue: "\(ResolvedConfiguration()[keyPath: path])",
            apply: { configuration, text in
                guard let value = Bool(text.trimmingCharacters(in: .whitespaces)) else {
                    throw SettingError("\(key): '\(text)' is not true or false. Use \(key): true or \(key): false.")
                }
                configuration[keyPath: path] = value
            },
            read: { "\($0[keyPath: path])" }
        )
    }

    /// One of an enumeration's values; `aliases` are other names accepted for some of them.
    static func choice<Value: RawRepresentable & CaseIterable & Sendable>(
        _ key: String,
        _ path: WritableKeyPath<ResolvedConfiguration, Value> & Sendable,
        aliases: [String: Value] = [:],
        given: (WritableKeyPath<ResolvedConfiguration, Bool> & Sendable)? = nil
    ) -> Setting where Value.RawValue == String {
        Setting(
            key: key,
            fastcapaFlag: nil,
            defaultValue: ResolvedConfiguration()[keyPath: path].rawValue,
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
            read: { $0[keyPath: path].rawValue }
        )
    }

    /// Every setting, in the order `--print-config` and `--help` show them.
    static let all: [Setting] = [
        Setting(
            key: "port-mask",
            fastcapaFlag: "-p",
            defaultValue: "0x1",
            apply: { $0.settings.portMask = try parsePortMask($1) },
            read: { "0x" + String($0.settings.portMask, radix: 16) }
        ),
        .integer("rx-burst", flag: "-b", \.settings.rxBurst),
        .integer("max-rebursts", \.settings.maxRebursts),
        .integer("tx-burst", flag: "-w", \.settings.txBurst),
        .integer("rx-desc", flag: "-d", \.settings.rxDescriptors),
        .integer("ring-size", flag: "-x", \.settings.ringSize),
        .integer("rx-queues", flag: "-q", \.settings.rxQueues),
        .integer("tx-workers", \.settings.txWorkersPerRing),
        .string("topic", flag: "-t", \.settings.topic),
        Setting(
            key: "headers",
            fastcapaFlag: nil,
            defaultValue: "",
            apply: { configuration, text in configuration.settings.headers = try parseHeaders(text) },
            read: { $0.settings.headers.map(\.rawValue).joined(separator: ",") }
        ),
        .string("probe-id", \.settings.probeID),
        .optionalString("kafka-config", flag: "-c", \.kafkaConfig),
        .optionalString("stats-file", flag: "-s", \.statsFile),
        .choice("ring-full", \.settings.ringFull, given: \ResolvedConfiguration.settings.ringFullGiven),
        .choice("partitioner", \.settings.partitioning, aliases: CaptureSettings.Partitioning.aliases),
        .choice("produce-call", \.settings.produceCall),
        .choice("delivery-reports", \.settings.deliveryReports),
        .choice("sink", \.settings.sink),
        .integer("snap-length", \.settings.snapLength),
        Setting(
            key: "filter",
            fastcapaFlag: nil,
            defaultValue: "",
            apply: { configuration, text in configuration.settings.filter = text },
            read: { $0.filterFile == nil ? $0.settings.filter : "" },
            shortFlag: "-f"
        ),
        .optionalString("filter-file", \.filterFile),
        .choice("filter-engine", \.settings.filterEngine),
        .integer("queue-full-retries", \.settings.queueFullRetries),
        .integer("idle-spin-polls", \.settings.idleSpinPolls),
        .integer("idle-sleep-max-us", \.settings.idleSleepMaxMicros),
        .integer("stats-interval", \.statsInterval),
        .integer("drain-timeout", \.drainTimeout),
        .integer("idle-exit", \.idleExit),
        .integer("embedded-partitions", \.embeddedPartitions),
        .optionalString("embedded-address-file", \.embeddedAddressFile),
        .boolean("require-broker", \.requireBroker),
        .string("log-level", \.logLevel),
        .choice("log-format", \.logFormat),
        .integer("restart-backoff-ms", \.restartBackoffMs),
        .integer("restart-backoff-max", \.restartBackoffMaxSeconds),
        .integer("max-restarts-per-minute", \.maxRestartsPerMinute),
        .integer("stall-seconds", \.stallSeconds),
        .integer("slow-round-trip-ms", \.slowRoundTripMs),
        .optionalString("counter-trace", \.counterTrace),
        .integer("counter-trace-interval-ms", \.counterTraceIntervalMs),
        .optionalString("metrics-address", \.metricsAddress),
        Setting(
            key: "control-cores",
            fastcapaFlag: nil,
            defaultValue: "auto",
            apply: { configuration, text in
                do throws(CaptureSettings.Invalid) {
                    configuration.controlCores = try ControlCores(parsing: text)
                } catch {
                    throw SettingError(error)
                }
            },
            read: { $0.controlCores.description }
        ),
    ]

    /// Settings a SIGHUP applies to the running probe; the others need a restart.
    static let liveKeys: Set<String> = [
        "snap-length", "queue-full-retries", "kafka-config", "filter", "filter-file", "filter-engine",
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

    /// `--headers`: a comma-separated list of port, queue and probe; empty or `none`: no header.
    static func parseHeaders(_ text: String) throws -> [CaptureSettings.MessageHeader] {
        let names = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if names == ["none"] { return [] }
        return try names.map { name in
            guard let header = CaptureSettings.MessageHeader(rawValue: name) else {
                throw SettingError(
                    "headers: '\(name)' is not a header. Use a comma-separated list of port, queue and probe, e.g. --headers port,queue,probe."
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
