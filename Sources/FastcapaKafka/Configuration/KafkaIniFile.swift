/// Fastcapa's Kafka configuration file: an INI file whose `[kafka-global]`
/// properties go to the producer and whose `[kafka-topic]` properties go to
/// the topic. Either group may be missing (Fastcapa crashed when one was).
/// Other groups are skipped, with their properties, and reported: Fastcapa read
/// the file with GLib's GKeyFile, which ignores groups nobody asks for.
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

    /// A group the file has that is neither of the two.
    package struct SkippedGroup: Equatable, Sendable {
        package var name: String
        package var line: Int
        /// How many properties it held (ignored with it).
        package var properties: Int
    }

    package struct Parsed: Sendable {
        package var properties = KafkaProperties()
        package var skippedGroups: [SkippedGroup] = []
    }

    package static let globalSection = "kafka-global"
    package static let topicSection = "kafka-topic"

    package static func parse(_ text: String, path: String) throws(ParseError) -> Parsed {
        if text.utf8.contains(0) {
            throw ParseError(
                path: path,
                line: 1,
                problem: "the file holds binary data (a NUL byte), not INI text",
                fix: "Give -c a text file with [kafka-global] and [kafka-topic] sections."
            )
        }
        var parsed = Parsed()
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
                guard !name.isEmpty else {
                    throw ParseError(
                        path: path,
                        line: lineNumber,
                        problem: "the section header '[]' has no name",
                        fix: "Write it as [kafka-global] or [kafka-topic]."
                    )
                }
                if name != globalSection && name != topicSection {
                    parsed.skippedGroups.append(SkippedGroup(name: name, line: lineNumber, properties: 0))
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
            switch section {
            case globalSection: parsed.properties.global.append(entry)
            case topicSection: parsed.properties.topic.append(entry)
            default: parsed.skippedGroups[parsed.skippedGroups.count - 1].properties += 1
            }
        }
        return parsed
    }
}
