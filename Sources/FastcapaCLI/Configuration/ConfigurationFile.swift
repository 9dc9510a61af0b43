import FastcapaKafka
import Foundation
import Yams

/// fastcapa's config file (YAML): EAL arguments, every application setting
/// (keys are the long option names) and librdkafka properties, in one place.
///
///     eal: [--no-huge, --no-pci, -m, "512", "--vdev=net_pcap0,rx_pcap=trace.pcap"]
///     rx-queues: 2
///     topic: pcap
///     kafka:
///       bootstrap.servers: kafka1:9092
///     kafka-topic:
///       message.timeout.ms: 30000
struct ConfigurationFile: Sendable {
    var path: String
    var eal: [String]?
    /// Setting key → value text, with the line it came from.
    var values: [(key: String, value: String, line: Int)] = []
    var kafka = KafkaProperties()

    static func load(_ path: String, environment: [String: String]) throws -> ConfigurationFile {
        let text = try CaptureOptions.readTextFile(
            path,
            what: "config file",
            kind: "YAML",
            missingFix: "Give the path of a YAML config file (see Configs/fastcapa.yaml)."
        )
        return try parse(text, path: path, environment: environment)
    }

    /// - Parameter environment: what `${NAME}` in a value stands for.
    static func parse(_ text: String, path: String, environment: [String: String] = [:]) throws -> ConfigurationFile {
        var file = ConfigurationFile(path: path)
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw SettingError("config file \(path): \(Self.describe(error)). Fix the YAML syntax there.")
        } catch {
            throw SettingError("config file \(path): \(error). Fix the YAML syntax.")
        }
        guard let root else { return file }  // an empty file sets nothing
        guard let mapping = root.mapping else {
            throw SettingError(
                "config file \(path):\(Self.line(root)): the top level must be a mapping of 'key: value' lines."
            )
        }
        for (keyNode, value) in mapping {
            guard let key = keyNode.scalar?.string else {
                throw SettingError("config file \(path):\(Self.line(keyNode)): a key must be plain text.")
            }
            let at = "\(path):\(Self.line(keyNode))"
            switch key {
            case "eal":
                guard let sequence = value.sequence,
                    let arguments = Optional(sequence.compactMap { $0.scalar?.string }),
                    arguments.count == sequence.count
                else {
                    throw SettingError(
                        "config file \(at): eal must be a list of EAL arguments, e.g. eal: [--no-huge, -m, \"512\"]."
                    )
                }
                file.eal = try arguments.map {
                    try ValueReferences.expandEnvironment($0, at: "config file \(at) (eal)", environment: environment)
                }
            case "kafka", "kafka-topic":
                let properties = try ValueReferences.expandingEnvironment(
                    Self.properties(value, name: key, at: at, path: path),
                    environment: environment
                )
                if key == "kafka" { file.kafka.global += properties } else { file.kafka.topic += properties }
            default:
                guard Setting.byKey[key] != nil else {
                    let suggestion = Self.closest(to: key).map { " Did you mean '\($0)'?" } ?? ""
                    throw SettingError(
                        "config file \(at): unknown key '\(key)'.\(suggestion) Keys are the long option names (fastcapa -- --help), plus eal, kafka and kafka-topic."
                    )
                }
                guard let scalar = value.scalar?.string else {
                    throw SettingError("config file \(at): '\(key)' needs a single value, not a list or mapping.")
                }
                let expanded = try ValueReferences.expandEnvironment(
                    scalar,
                    at: "config file \(at) (\(key))",
                    environment: environment
                )
                file.values.append((key, expanded, Self.line(keyNode)))
            }
        }
        return file
    }

    private static func properties(
        _ node: Node,
        name: String,
        at: String,
        path: String
    ) throws -> [KafkaProperties.Entry] {
        if node.scalar?.string == "" || node.null != nil { return [] }
        guard let mapping = node.mapping else {
            throw SettingError(
                "config file \(at): \(name) must be a mapping of librdkafka properties, e.g.\n  \(name):\n    linger.ms: 5"
            )
        }
        return try mapping.map { key, value in
            guard let keyText = key.scalar?.string, let valueText = value.scalar?.string else {
                throw SettingError(
                    "config file \(path):\(line(key)): each \(name) property needs a name and a single value."
                )
            }
            return KafkaProperties.Entry(key: keyText, value: valueText, origin: "\(path):\(line(key))")
        }
    }

    private static func line(_ node: Node) -> Int { (node.mark?.line ?? 0) }

    private static func describe(_ error: YamlError) -> String {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _):
            return "line \(mark.line), column \(mark.column): \(problem)\(context.map { " \($0.text)" } ?? "")"
        default:
            return "\(error)"
        }
    }

    /// The known key closest to a misspelt one.
    private static func closest(to key: String) -> String? {
        func distance(_ a: String, _ b: String) -> Int {
            let a = Array(a)
            let b = Array(b)
            var row = Array(0...b.count)
            for i in 1...max(a.count, 1) where !a.isEmpty {
                var previous = row[0]
                row[0] = i
                for j in 1...max(b.count, 1) where !b.isEmpty {
                    let current = row[j]
                    row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                    previous = current
                }
            }
            return row[b.count]
        }
        let candidates = Setting.all.map(\.key) + ["eal", "kafka", "kafka-topic"]
        let best = candidates.map { ($0, distance(key, $0)) }.min { $0.1 < $1.1 }
        return best.flatMap { $0.1 <= 3 ? $0.0 : nil }
    }
}
