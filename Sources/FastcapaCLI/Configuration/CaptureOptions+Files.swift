import FastcapaKafka
import Foundation

/// The Kafka properties and files the options name.
extension CaptureOptions {
    /// Fastcapa's INI file, `${NAME}` references expanded. Groups it does not
    /// know are skipped (as GKeyFile did) and named in `warnings`.
    static func loadIni(
        _ path: String,
        environment: [String: String],
        warnings: inout [String]
    ) throws -> KafkaProperties {
        let text = try readTextFile(
            path,
            what: "Kafka config file (-c)",
            kind: "INI",
            missingFix: "Give the path of Fastcapa's INI file, or leave -c out to use the embedded broker."
        )
        let parsed: KafkaIniFile.Parsed
        do {
            parsed = try KafkaIniFile.parse(text, path: path)
        } catch {
            throw SettingError("Kafka config file: \(error.description)")
        }
        warnings += parsed.skippedGroups.map { group in
            "Kafka config file \(path):\(group.line): group [\(group.name)] is not [\(KafkaIniFile.globalSection)] or [\(KafkaIniFile.topicSection)]; its \(group.properties) propert\(group.properties == 1 ? "y is" : "ies are") ignored (Fastcapa ignored it too)"
        }
        return KafkaProperties(
            global: try ValueReferences.expandingEnvironment(parsed.properties.global, environment: environment),
            topic: try ValueReferences.expandingEnvironment(parsed.properties.topic, environment: environment)
        )
    }

    /// A text file an option names, with a clear error for each way reading it can fail.
    static func readTextFile(_ path: String, what: String, kind: String, missingFix: String) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw SettingError("\(what) '\(path)' does not exist. \(missingFix)")
        }
        guard !isDirectory.boolValue else {
            throw SettingError("\(what) '\(path)' is a directory. Give the path of a \(kind) file inside it.")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SettingError("\(what) '\(path)' cannot be read (permission denied?). Make it readable by this user.")
        }
        guard !data.contains(0), let text = String(data: data, encoding: .utf8) else {
            throw SettingError("\(what) '\(path)' is not UTF-8 text (binary data?). Give a \(kind) text file.")
        }
        return text
    }
}

extension ResolvedConfiguration {
    /// `filter-file`: the capture filter is the file's text, without `#` comments.
    /// Giving both a filter and a filter file is refused (which one was meant?).
    mutating func readFilterFile() throws {
        guard let path = filterFile else { return }
        guard settings.filterExpression == nil else {
            throw SettingError(
                "capture filter: both a filter (-f, --filter, or the config key filter) and a filter file (--filter-file) are given. Give one of them."
            )
        }
        let text = try CaptureOptions.readTextFile(
            path,
            what: "filter file (--filter-file)",
            kind: "text",
            missingFix: "Give the path of a file holding a tcpdump expression, or use -f EXPRESSION."
        )
        settings.filter = Self.withoutComments(text)
    }

    /// The text with everything from `#` to the end of each line removed, lines joined by spaces.
    static func withoutComments(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { line in line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? "" }
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
            .joined(separator: " ")
    }
}
