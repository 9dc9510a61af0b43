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
        let text = JournalLogHandler.format(event, label: "fastcapa", metadata: ["probe": "a"])
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
}
