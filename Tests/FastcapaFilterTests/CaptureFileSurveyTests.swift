import FastcapaFilter
import FastcapaTestSupport
import Foundation
import PcapFormat
import Testing

@Suite struct CaptureFileSurveyTests {
    /// Truncated records (with the first one's lengths) and records over
    /// 65,535 bytes are found wherever they are in the file.
    @Test func findsTruncatedAndLongRecords() throws {
        let frame = FrameBuilder.raw(count: 1514)
        let records = [
            PcapRecord(micros: 1, data: FrameBuilder.raw(count: 60)),
            PcapRecord.truncated(frame, to: 96, micros: 2),
            PcapRecord(micros: 3, data: FrameBuilder.raw(count: 65_535)),
            PcapRecord(micros: 4, data: FrameBuilder.raw(count: 80_000)),
            PcapRecord.truncated(frame, to: 68, micros: 5),
            PcapRecord(micros: 6, data: FrameBuilder.raw(count: 65_536)),
        ]
        let survey = try #require(CaptureFileSurvey.read(try write(records)))
        #expect(survey.records == 6)
        #expect(survey.truncated == 2)
        #expect(survey.firstTruncated == .init(record: 2, captured: 96, original: 1514))
        #expect(survey.longRecords == [80_000, 65_536])
        #expect(!survey.stoppedEarly)
    }

    /// A FIFO (or `/dev/stdin`) given as `rx_pcap` is net_pcap's to read, once: the survey leaves it alone, so
    /// everything written into it is still there for the reader (a survey that read it would take the records).
    @Test func aFifoIsLeftToNetPcap() throws {
        let records = (0..<20).map { PcapRecord(micros: UInt64($0), data: FrameBuilder.raw(count: 100)) }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try write(records))))
        let fifo = TestFiles.temporaryDirectory().appendingPathComponent("replay.fifo").path
        try #require(mkfifo(fifo, 0o600) == 0)
        // The writer: opens (waiting for a reader), writes the whole capture, closes.
        let opened = DispatchSemaphore(value: 0)
        let writer = Thread {
            let fd = open(fifo, O_WRONLY)
            opened.signal()
            guard fd >= 0 else { return }
            _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
        writer.start()
        #expect(CaptureFileSurvey.read(fifo) == nil)
        // The reader that comes after the survey (net_pcap) gets every byte. Opened without blocking (a
        // survey that read the FIFO leaves no writer), then reading blocks until the writer closes.
        let fd = open(fifo, O_RDONLY | O_NONBLOCK)
        try #require(fd >= 0)
        defer { close(fd) }
        #expect(opened.wait(timeout: .now() + 10) == .success)
        _ = fcntl(fd, F_SETFL, 0)
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count <= 0 { break }
            received += buffer[0..<count]
        }
        #expect(received == bytes, "\(received.count) of \(bytes.count) bytes reached the reader")
    }

    /// A file of whole records has nothing to report.
    @Test func wholeRecordsLeaveNothingToSay() throws {
        let records = (0..<50).map { PcapRecord(micros: UInt64($0), data: FrameBuilder.raw(count: 64 + $0 * 100)) }
        let survey = try #require(CaptureFileSurvey.read(try write(records)))
        #expect(survey.records == 50 && survey.truncated == 0 && survey.firstTruncated == nil)
        #expect(survey.longRecords.isEmpty)
    }

    /// The byte limit stops the read and says so; at the last record it is no stop.
    @Test func theByteLimitStopsTheReadAndSaysSo() throws {
        let records = (0..<10).map { PcapRecord(micros: UInt64($0), data: FrameBuilder.raw(count: 1000)) }
        let path = try write(records)
        let stopped = try #require(CaptureFileSurvey.read(path, byteLimit: 3000))
        #expect(stopped.records == 3 && stopped.stoppedEarly)
        let whole = try #require(CaptureFileSurvey.read(path, byteLimit: 10_000))
        #expect(whole.records == 10 && !whole.stoppedEarly)
    }

    /// What libpcap cannot read is no survey (net_pcap, which opened it first, says why).
    @Test func aFileThatIsNoCaptureIsNoSurvey() throws {
        let path = TestFiles.temporaryDirectory().appendingPathComponent("not.pcap").path
        try "not a capture".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(CaptureFileSurvey.read(path) == nil)
        #expect(CaptureFileSurvey.read("/nonexistent/file.pcap") == nil)
    }

    private func write(_ records: [PcapRecord]) throws -> String {
        let path = TestFiles.temporaryDirectory().appendingPathComponent("survey.pcap").path
        try Data(PcapFile(records: records).bytes()).write(to: URL(fileURLWithPath: path))
        return path
    }
}
