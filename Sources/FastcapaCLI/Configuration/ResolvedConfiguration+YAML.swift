import FastcapaKafka
import Foundation

extension ResolvedConfiguration {
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
