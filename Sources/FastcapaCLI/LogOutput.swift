import FastcapaCapture
import FastcapaKafka
import Foundation
import Logging

/// Where log lines go: standard error, one format for fastcapa's own lines,
/// librdkafka's and DPDK's, filtered by one `--log-level`.
///
/// Under systemd (its journal holds standard error: `$JOURNAL_STREAM` names
/// stderr's device and inode), each line starts with its syslog priority,
/// `<3>` for an error (sd-daemon's convention), and without a time stamp
/// (the journal keeps one), so that `journalctl -p err` finds the errors.
enum LogOutput {
    /// Installs the handlers; call once, before EAL or any producer starts.
    static func bootstrap(level: Logger.Level, format: LogFormat = .auto) {
        let journal = stderrIsTheJournal(ProcessInfo.processInfo.environment["JOURNAL_STREAM"])
        let chosen = format == .auto ? (journal ? LogFormat.journal : .text) : format
        LoggingSystem.bootstrap { label in
            switch chosen {
            case .journal:
                var handler = LineLogHandler(label: label, format: JournalLogFormat.format)
                handler.logLevel = level
                return handler
            case .json:
                var handler = LineLogHandler(label: label, format: JSONLogFormat.format)
                handler.logLevel = level
                return handler
            case .auto, .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        }
        let kafkaLogger = Logger(label: "librdkafka")
        KafkaLog.route { level, facility, message, client in
            kafkaLogger.log(
                level: syslogLevel(level),
                "\(message)",
                metadata: ["facility": "\(facility)", "client": "\(client)"]
            )
        }
        let dpdkLogger = Logger(label: "dpdk")
        DpdkLog.route(maximumLevel: DpdkLog.level(named: level.rawValue)) { level, line in
            // DPDK's levels are syslog's plus one (RTE_LOG_EMERG is 1).
            dpdkLogger.log(level: syslogLevel(Int32(level) - 1), "\(line)")
        }
    }

    /// Writes `text` to standard error whole, retrying short writes and EINTR. A closed
    /// standard error or a stopped journald loses the line (EPIPE, EBADF): never a trap
    /// (`FileHandle.write` traps), and never a signal (the capture ignores SIGPIPE).
    static func writeToStandardError(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        bytes.withUnsafeMutableBytes { buffer in
            while offset < buffer.count {
                let written = write(STDERR_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }

    /// syslog's levels (0 emergency ... 7 debug) onto swift-log's.
    static func syslogLevel(_ level: Int32) -> Logger.Level {
        switch level {
        case ...2: .critical
        case 3: .error
        case 4: .warning
        case 5: .notice
        case 6: .info
        default: .debug
        }
    }

    /// swift-log's levels onto syslog priorities, for the journal's `<N>` prefix.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// True when `$JOURNAL_STREAM` ("DEVICE:INODE") is standard error: systemd
    /// connected it to the journal, and nobody redirected it since.
    static func stderrIsTheJournal(_ variable: String?) -> Bool {
        guard let variable else { return false }
        let parts = variable.split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var status = stat()
        guard fstat(STDERR_FILENO, &status) == 0 else { return false }
        return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode
    }
}

/// A log handler that formats each event into whole lines and writes them to
/// standard error in one call (`LogOutput.writeToStandardError`).
struct LineLogHandler: LogHandler {
    let label: String
    let format: @Sendable (LogEvent, String, Logger.Metadata) -> String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        LogOutput.writeToStandardError(format(event, label, metadata))
    }
}

/// Lines for the journal: `<PRIORITY>LEVEL LABEL: METADATA [SOURCE] MESSAGE`,
/// the priority on every line of a message.
enum JournalLogFormat {
    @Sendable static func format(_ event: LogEvent, label: String, metadata: Logger.Metadata) -> String {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let pretty = merged.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
        let prefix = "<\(LogOutput.priority(event.level))>"
        let text = "\(event.level) \(label):\(pretty) [\(event.source)] \(event.message)"
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { prefix + $0 + "\n" }.joined()
    }
}

/// `--log-format json`: one object a line with the text form's fields by name, for log
/// shippers (Vector, Fluent Bit, Filebeat): `time` (UTC, RFC 3339 with microseconds),
/// `level`, `priority` (syslog's), `label`, `source`, `message` (newlines escaped, so a
/// message stays on its line) and `metadata` (an object of strings).
enum JSONLogFormat {
    @Sendable static func format(_ event: LogEvent, label: String, metadata: Logger.Metadata) -> String {
        format(event, label: label, metadata: metadata, time: Date())
    }

    static func format(_ event: LogEvent, label: String, metadata: Logger.Metadata, time: Date) -> String {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        var line = "{\"time\":\(quoted(timestamp(time))),\"level\":\(quoted(event.level.rawValue))"
        line += ",\"priority\":\(LogOutput.priority(event.level)),\"label\":\(quoted(label))"
        line += ",\"source\":\(quoted(event.source)),\"message\":\(quoted("\(event.message)"))"
        let fields = merged.sorted { $0.key < $1.key }.map { "\(quoted($0.key)):\(quoted("\($0.value)"))" }
        line += ",\"metadata\":{\(fields.joined(separator: ","))}}\n"
        return line
    }

    /// `2026-12-06T19:35:10.123456Z`.
    static func timestamp(_ date: Date) -> String {
        let total = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        var seconds = time_t(total / 1_000_000)
        let micros = Int(total % 1_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let fraction = String(micros + 1_000_000).dropFirst()
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(fraction)Z"
    }

    /// A JSON string: quotes, backslashes and control characters escaped (RFC 8259).
    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
