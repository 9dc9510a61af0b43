/// Fastcapa's Kafka configuration file: an INI file whose `[kafka-global]`
/// properties go to the producer and whose `[kafka-topic]` properties go to
/// the topic. Either group may be missing (Fastcapa crashed when one was).
///
///     # comment
///     [kafka-global]
///     bootstrap.servers = broker1:9092,broker2:9092
///     [kafka-topic]
///     message.timeout.ms = 30000
package enum KafkaIniFile {
    package struct ParseError: Error, CustomStringConvertible, Equatable {
        package var path: String
        package var line: Int
        package var problem: String
        package var fix: String
        package var description: String { "\(path):\(line): \(problem). \(fix)" }
    }

    package static let globalSection = "kafka-global"
    package static let topicSection = "kafka-topic"

    package static func parse(_ text: String, path: String) throws(ParseError) -> KafkaProperties {
        if text.utf8.contains(0) {
            throw ParseError(
                path: path,
                line: 1,
                problem: "the file holds binary data (a NUL byte), not INI text",
                fix: "Give -c a text file with [kafka-global] and [kafka-topic] sections."
            )
        }
        var properties = KafkaProperties()
        var section: String?
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = String(rawLine).trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]") else {
                    throw ParseError(
                        path: path,
                        line: lineNumber,
                        problem: "section header '\(line)' has no closing ']'",
                        fix: "Write it as [kafka-global] or [kafka-topic]."
                    )
                }
                let name = String(line.dropFirst().dropLast()).trimmingWhitespace()
                guard name == globalSection || name == topicSection else {
                    throw ParseError(
                        path: path,
                        line: lineNumber,
                        problem: "unknown section [\(name)]",
                        fix: "Use [\(globalSection)] for producer properties or [\(topicSection)] for topic properties."
                    )
                }
                section = name
                continue
            }
            guard let equals = line.firstIndex(of: "=") else {
                throw ParseError(
                    path: path,
                    line: lineNumber,
                    problem: "'\(line)' is not a 'key = value' line",
                    fix:
                        "Write one librdkafka property per line as key = value, or start the line with # for a comment."
                )
            }
            let key = String(line[..<equals]).trimmingWhitespace()
            let value = String(line[line.index(after: equals)...]).trimmingWhitespace()
            guard !key.isEmpty else {
                throw ParseError(
                    path: path,
                    line: lineNumber,
                    problem: "the line has a value but no property name",
                    fix: "Write it as key = value, e.g. bootstrap.servers = localhost:9092."
                )
            }
            guard let section else {
                throw ParseError(
                    path: path,
                    line: lineNumber,
                    problem: "property '\(key)' comes before any section",
                    fix: "Put it under [\(globalSection)] or [\(topicSection)]."
                )
            }
            let entry = KafkaProperties.Entry(key: key, value: value, origin: "\(path):\(lineNumber)")
            if section == globalSection {
                properties.global.append(entry)
            } else {
                properties.topic.append(entry)
            }
        }
        return properties
    }
}
