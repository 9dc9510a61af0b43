import FastcapaCapture
import FastcapaKafka
import FastcapaSupervision

/// Everything a capture runs with, after flags, the config file and defaults
/// were merged (in that order of precedence).
public struct ResolvedConfiguration: Sendable {
    public var eal: [String] = []
    public var settings = CaptureSettings()
    public var kafka = KafkaProperties()
    public var kafkaConfig: String?
    public var statsInterval = 5
    public var statsFile: String?
    public var drainTimeout = 10
    public var idleExit = 0
    public var embeddedPartitions = 1
    public var embeddedAddressFile: String?
    public var logLevel = "info"
    public var restartBackoffMs = 100
    public var restartBackoffMaxSeconds = 30
    public var maxRestartsPerMinute = 10
    public var stallSeconds = 30
    public var slowRoundTripMs = 1000
    public var counterTrace: String?
    public var counterTraceIntervalMs = 10
    public var metricsAddress: String?
    public var controlCores = ControlCores.auto
}

/// A bad value for a setting, from a flag or the config file.
public struct SettingError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
    init(_ message: String) { self.message = message }
}

/// One setting: its long option name (also its config-file key), Fastcapa's
/// short flag if it had one, its default, and how to read and write it.
/// This one table drives the config file, `--print-config` and the migration table.
struct Setting: Sendable {
    var key: String
    var fastcapaFlag: String?
    var defaultValue: String
    var apply: @Sendable (inout ResolvedConfiguration, String) throws -> Void
    var read: @Sendable (ResolvedConfiguration) -> String?

    static func integer(
        _ key: String, flag: String? = nil, _ path: WritableKeyPath<ResolvedConfiguration, Int> & Sendable
    ) -> Setting {
        Setting(key: key, fastcapaFlag: flag, defaultValue: "\(ResolvedConfiguration()[keyPath: path])",
                apply: { configuration, text in configuration[keyPath: path] = try parseInteger(text, key: key) },
                read: { "\($0[keyPath: path])" })
    }

    static func string(
        _ key: String, flag: String? = nil, _ path: WritableKeyPath<ResolvedConfiguration, String> & Sendable
    ) -> Setting {
        Setting(key: key, fastcapaFlag: flag, defaultValue: ResolvedConfiguration()[keyPath: path],
                apply: { configuration, text in configuration[keyPath: path] = text },
                read: { $0[keyPath: path] })
    }

    static func optionalString(
        _ key: String, flag: String? = nil, _ path: WritableKeyPath<ResolvedConfiguration, String?> & Sendable
    ) -> Setting {
        Setting(key: key, fastcapaFlag: flag, defaultValue: "",
                apply: { configuration, text in configuration[keyPath: path] = text.isEmpty ? nil : text },
                read: { $0[keyPath: path] })
    }

    static func choice<Value: RawRepresentable & CaseIterable & Sendable>(
        _ key: String, _ path: WritableKeyPath<ResolvedConfiguration, Value> & Sendable
    ) -> Setting where Value.RawValue == String {
        Setting(key: key, fastcapaFlag: nil, defaultValue: ResolvedConfiguration()[keyPath: path].rawValue,
                apply: { configuration, text in
                    guard let value = Value(rawValue: text) else {
                        throw SettingError("\(key): '\(text)' is not one of \(Value.allCases.map(\.rawValue).joined(separator: ", ")). Use one of those.")
                    }
                    configuration[keyPath: path] = value
                },
                read: { $0[keyPath: path].rawValue })
    }

    /// Every setting, in the order `--print-config` and `--help` show them.
    static let all: [Setting] = [
        Setting(key: "port-mask", fastcapaFlag: "-p", defaultValue: "0x1",
                apply: { $0.settings.portMask = try parsePortMask($1) },
                read: { "0x" + String($0.settings.portMask, radix: 16) }),
        .integer("rx-burst", flag: "-b", \.settings.rxBurst),
        .integer("max-rebursts", \.settings.maxRebursts),
        .integer("tx-burst", flag: "-w", \.settings.txBurst),
        .integer("rx-desc", flag: "-d", \.settings.rxDescriptors),
        .integer("ring-size", flag: "-x", \.settings.ringSize),
        .integer("rx-queues", flag: "-q", \.settings.rxQueues),
        .integer("tx-workers", \.settings.txWorkersPerRing),
        .string("topic", flag: "-t", \.settings.topic),
        .optionalString("kafka-config", flag: "-c", \.kafkaConfig),
        .optionalString("stats-file", flag: "-s", \.statsFile),
        .choice("ring-full", \.settings.ringFull),
        .choice("partitioner", \.settings.partitioning),
        .choice("produce-call", \.settings.produceCall),
        .choice("delivery-reports", \.settings.deliveryReports),
        .choice("sink", \.settings.sink),
        .integer("snap-length", \.settings.snapLength),
        .integer("queue-full-retries", \.settings.queueFullRetries),
        .integer("idle-spin-polls", \.settings.idleSpinPolls),
        .integer("idle-sleep-max-us", \.settings.idleSleepMaxMicros),
        .integer("stats-interval", \.statsInterval),
        .integer("drain-timeout", \.drainTimeout),
        .integer("idle-exit", \.idleExit),
        .integer("embedded-partitions", \.embeddedPartitions),
        .optionalString("embedded-address-file", \.embeddedAddressFile),
        .string("log-level", \.logLevel),
        .integer("restart-backoff-ms", \.restartBackoffMs),
        .integer("restart-backoff-max", \.restartBackoffMaxSeconds),
        .integer("max-restarts-per-minute", \.maxRestartsPerMinute),
        .integer("stall-seconds", \.stallSeconds),
        .integer("slow-round-trip-ms", \.slowRoundTripMs),
        .optionalString("counter-trace", \.counterTrace),
        .integer("counter-trace-interval-ms", \.counterTraceIntervalMs),
        .optionalString("metrics-address", \.metricsAddress),
        Setting(key: "control-cores", fastcapaFlag: nil, defaultValue: "auto",
                apply: { configuration, text in
                    do { configuration.controlCores = try ControlCores(parsing: text) } catch { throw SettingError("\(error)") }
                },
                read: { $0.controlCores.description }),
    ]

    /// Settings a SIGHUP applies to the running probe; the others need a restart.
    static let liveKeys: Set<String> = ["snap-length", "queue-full-retries", "kafka-config"]

    static let byKey: [String: Setting] = Dictionary(uniqueKeysWithValues: all.map { ($0.key, $0) })

    static func parseInteger(_ text: String, key: String) throws -> Int {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let value = Int(trimmed) else {
            let problem = trimmed.first == "-" || trimmed.allSatisfy(\.isNumber) && !trimmed.isEmpty
                ? "is out of range" : "is not a whole number"
            throw SettingError("\(key): '\(text)' \(problem). Give a whole number, e.g. --\(key) \(byKey[key]?.defaultValue ?? "1").")
        }
        return value
    }

    /// Fastcapa's port mask: hex, with or without 0x.
    static func parsePortMask(_ text: String) throws -> UInt64 {
        var digits = Substring(text.trimmingCharacters(in: .whitespaces))
        if digits.lowercased().hasPrefix("0x") { digits = digits.dropFirst(2) }
        guard !digits.isEmpty, digits.count <= 16, let mask = UInt64(digits, radix: 16) else {
            throw SettingError("port mask (-p): '\(text)' is not a hex number. Write it like 0x1 (port 0) or 0x3 (ports 0 and 1).")
        }
        guard mask != 0 else {
            throw SettingError("port mask (-p): 0x0 selects no port. Give a hex mask with a bit per port, e.g. -p 0x1 for port 0.")
        }
        return mask
    }
}

import Foundation

extension ResolvedConfiguration {
    /// Checks what no single setting can check alone.
    func validate() throws {
        do {
            try settings.validate()
        } catch {
            throw SettingError(error.description)
        }
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw SettingError(message) } }
        try check(statsInterval >= 0, "stats-interval: \(statsInterval) is negative. Use 0 (off) or more seconds.")
        try check((0...86_400).contains(drainTimeout), "drain-timeout: \(drainTimeout) is out of range. Use 0 to 86400 seconds.")
        try check(idleExit >= 0, "idle-exit: \(idleExit) is negative. Use 0 (never) or more seconds.")
        try check((1...1000).contains(embeddedPartitions), "embedded-partitions: \(embeddedPartitions) is out of range. Use 1 to 1000.")
        try check((1...600_000).contains(restartBackoffMs), "restart-backoff-ms: \(restartBackoffMs) is out of range. Use 1 to 600000 ms.")
        try check((1...3600).contains(restartBackoffMaxSeconds), "restart-backoff-max: \(restartBackoffMaxSeconds) is out of range. Use 1 to 3600 s.")
        try check((1...10_000).contains(maxRestartsPerMinute), "max-restarts-per-minute: \(maxRestartsPerMinute) is out of range. Use 1 to 10000.")
        try check((1...600_000).contains(slowRoundTripMs), "slow-round-trip-ms: \(slowRoundTripMs) is out of range. Use 1 to 600000 ms.")
        try check((1...86_400).contains(stallSeconds), "stall-seconds: \(stallSeconds) is out of range. Use 1 to 86400.")
        try check((1...60_000).contains(counterTraceIntervalMs), "counter-trace-interval-ms: \(counterTraceIntervalMs) is out of range. Use 1 to 60000.")
        if let metricsAddress {
            do { _ = try MetricsServer.parse(metricsAddress) } catch { throw SettingError("\(error)") }
        }
        try check(["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel),
                  "log-level: '\(logLevel)' is not a level. Use trace, debug, info, notice, warning, error or critical.")
        do {
            try KafkaConfiguration.validate(kafka)
        } catch {
            throw SettingError(error.description)
        }
    }

    /// The configuration as a config file (YAML) that gives it back; secrets redacted.
    func yaml(redactingSecrets: Bool = true) -> String {
        func quote(_ text: String) -> String {
            let data = try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])
            return data.map { String(decoding: $0.dropFirst().dropLast(), as: UTF8.self) } ?? "\"\""
        }
        var lines = ["# fastcapa's effective configuration (flags > config file > defaults)"]
        lines.append("eal: [" + eal.map(quote).joined(separator: ", ") + "]")
        for setting in Setting.all {
            if let value = setting.read(self) {
                let plain = !value.isEmpty && value.allSatisfy(\.isNumber)
                lines.append("\(setting.key): \(plain ? value : quote(value))")
            }
        }
        func map(_ name: String, _ entries: [KafkaProperties.Entry]) {
            var latest: [(String, String)] = []
            for entry in entries {
                latest.removeAll { $0.0 == entry.key }
                latest.append((entry.key, entry.value))
            }
            if latest.isEmpty {
                lines.append("\(name): {}")
                return
            }
            lines.append("\(name):")
            for (key, value) in latest {
                let shown = redactingSecrets && KafkaProperties.isSensitive(key) ? "[redacted]" : value
                lines.append("  \(quote(key)): \(quote(shown))")
            }
        }
        map("kafka", kafka.global)
        map("kafka-topic", kafka.topic)
        return lines.joined(separator: "\n") + "\n"
    }
}
