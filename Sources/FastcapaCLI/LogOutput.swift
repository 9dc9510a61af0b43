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
    static func bootstrap(level: Logger.Level) {
        let journal = stderrIsTheJournal(ProcessInfo.processInfo.environment["JOURNAL_STREAM"])
        LoggingSystem.bootstrap { label in
            if journal {
                var handler = JournalLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
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

/// Lines for the journal: `<PRIORITY>LEVEL LABEL: METADATA [SOURCE] MESSAGE`,
/// the priority on every line of a message.
struct JournalLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        FileHandle.standardError.write(Data(Self.format(event, label: label, metadata: metadata).utf8))
    }

    static func format(_ event: LogEvent, label: String, metadata: Logger.Metadata) -> String {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        let pretty = merged.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
        let prefix = "<\(LogOutput.priority(event.level))>"
        let text = "\(event.level) \(label):\(pretty) [\(event.source)] \(event.message)"
        return text.split(separator: "\n", omittingEmptySubsequences: false).map { prefix + $0 + "\n" }.joined()
    }
}
