import Foundation
import Logging
import Testing

@testable import FastcapaCLI

/// Log lines for the journal carry their syslog priority, on every line.
@Suite struct LogOutputTests {
    @Test func journalLinesStartWithTheirPriority() {
        let event = LogEvent(
            level: .error,
            message: "first line\nsecond line",
            metadata: ["worker": "0"],
            source: "FastcapaCLI",
            file: #fileID,
            function: #function,
            line: #line
        )
        let text = JournalLogFormat.format(event, label: "fastcapa", metadata: ["probe": "a"])
        #expect(text == "<3>error fastcapa: probe=a worker=0 [FastcapaCLI] first line\n<3>second line\n")
        let levels: [(Logger.Level, Int)] = [
            (.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2),
        ]
        for (level, priority) in levels {
            #expect(LogOutput.priority(level) == priority)
            // librdkafka's and DPDK's syslog levels come back to the same priority.
            #expect(LogOutput.priority(LogOutput.syslogLevel(Int32(priority))) == max(priority, 2))
        }
    }

    /// `$JOURNAL_STREAM` counts only when it names standard error itself.
    @Test func theJournalIsRecognisedByDeviceAndInode() {
        var status = stat()
        #expect(fstat(STDERR_FILENO, &status) == 0)
        #expect(LogOutput.stderrIsTheJournal("\(status.st_dev):\(status.st_ino)"))
        #expect(!LogOutput.stderrIsTheJournal("\(status.st_dev):\(status.st_ino + 1)"))
        for other in [nil, "", "garbage", "1:2:3", ":"] {
            #expect(!LogOutput.stderrIsTheJournal(other))
        }
    }

    /// `--log-format json`: one object a line, with the text form's fields by name; a message's
    /// newlines, quotes and control characters escaped, so that each line parses alone.
    @Test func jsonLinesAreOneObjectEachWithTheTextFormsFields() throws {
        let event = LogEvent(
            level: .warning,
            message: "two \"quoted\"\nlines\t\u{1}",
            metadata: ["worker": "0", "path": "C:\\x"],
            source: "FastcapaCLI",
            file: #fileID,
            function: #function,
            line: #line
        )
        let time = Date(timeIntervalSince1970: 1_796_585_929.000_042)
        let line = JSONLogFormat.format(event, label: "fastcapa", metadata: ["probe": "a"], time: time)
        #expect(line.hasSuffix("}\n") && line.dropLast().allSatisfy { $0 != "\n" }, "\(line)")
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            "\(line)"
        )
        #expect(object["time"] as? String == "2026-12-06T19:38:49.000042Z")
        #expect(object["level"] as? String == "warning")
        #expect(object["priority"] as? Int == 4)
        #expect(object["label"] as? String == "fastcapa")
        #expect(object["source"] as? String == "FastcapaCLI")
        #expect(object["message"] as? String == "two \"quoted\"\nlines\t\u{1}")
        #expect(object["metadata"] as? [String: String] == ["probe": "a", "worker": "0", "path": "C:\\x"])
        #expect(Set(object.keys) == ["time", "level", "priority", "label", "source", "message", "metadata"])
    }

    /// The log format is a setting like the others: a flag, a config-file key, a refusal that lists the choices.
    @Test func theLogFormatIsASetting() throws {
        #expect(try CaptureOptions.parse([]).resolve().logFormat == .auto)
        #expect(try CaptureOptions.parse(["--log-format", "json"]).resolve().logFormat == .json)
        #expect(throws: SettingError.self) { try CaptureOptions.parse(["--log-format", "xml"]).resolve() }
        do {
            _ = try CaptureOptions.parse(["--log-format", "xml"]).resolve()
        } catch {
            #expect("\(error)".contains("log-format: 'xml' is not one of auto, text, journal, json"), "\(error)")
        }
    }
}
