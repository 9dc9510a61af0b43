import FastcapaTestSupport
import Foundation
import Synchronization
import Testing

@testable import FastcapaObservability

/// A file written by `LineWriter` loses lines, counted, never half a line, and never holds its callers up: a
/// full disk or a FIFO nobody reads costs lines of statistics, never the sampler, a reload or the stop.
@Suite(.timeLimit(.minutes(1))) struct LineWriterTests {
    /// A write function that takes at most `budget` more bytes, then fails with ENOSPC (a small file system).
    final class Budget: Sendable {
        let left: Mutex<Int>
        init(_ bytes: Int) { left = Mutex(bytes) }
        var write: LineWriter.Write {
            { [self] descriptor, buffer in
                let allowed = left.withLock { left in
                    defer { left -= min(left, buffer.count) }
                    return min(left, buffer.count)
                }
                guard allowed > 0 else { return -Int(ENOSPC) }
                return LineWriter.systemWrite(descriptor, UnsafeRawBufferPointer(rebasing: buffer[..<allowed]))
            }
        }
    }

    /// A write function that blocks until released, noting the thread it runs on.
    final class Gate: Sendable {
        let open = DispatchSemaphore(value: 0)
        let thread = Mutex<pthread_t?>(nil)
        var write: LineWriter.Write {
            { [self] descriptor, buffer in
                thread.withLock { $0 = pthread_self() }
                open.wait()
                open.signal()
                return buffer.count
            }
        }
    }

    /// Waits (at most 5 s) until `condition` holds.
    static func eventually(_ condition: () -> Bool) async throws {
        let deadline = Date().addingTimeInterval(5)
        while !condition() && Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
    }

    static func line(_ number: Int) -> String {
        "{\"line\":\(number),\"pad\":\"\(String(repeating: "x", count: 20))\"}"
    }

    /// A file system that takes 2.5 lines, then none (ENOSPC after a short write): the
    /// part of the third line is cut off again, the lines counted (2 written, 1 failed),
    /// and once there is space the next line follows the last whole one.
    @Test func aShortWriteThenAnErrorLeavesNoTornLineInARegularFile() async throws {
        let path = TestFiles.temporaryDirectory().appendingPathComponent("stats.json").path
        let size = Self.line(0).utf8.count + 1
        let budget = Budget(size * 2 + size / 2)
        let fd = try #require(try? LineWriter.open(path, waitForReader: true).get())
        let problems = Mutex<[String]>([])
        let writer = LineWriter(descriptor: fd, name: "test file", write: budget.write) { problem in
            problems.withLock { $0.append(problem) }
        }
        for number in 1...3 { writer.append(Self.line(number)) }
        try await Self.eventually { writer.counts.written + writer.counts.failed == 3 }
        #expect(writer.counts == LineWriter.Counts(written: 2, failed: 1))
        budget.left.withLock { $0 = 1 << 20 }
        writer.append(Self.line(4))
        #expect(writer.close(timeout: 5))
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(
            separator: "\n",
            omittingEmptySubsequences: false
        )
        #expect(lines == [Self.line(1), Self.line(2), Self.line(4), ""].map { Substring($0) })
        #expect(writer.counts == LineWriter.Counts(written: 3, failed: 1))
        #expect(problems.withLock { $0.contains { $0.contains("No space left on device") } })
    }

    /// The same into a pipe, which cannot be cut: the part of a line is ended by a
    /// newline before the next line, so a reader finds one bad line, not two run together.
    @Test func aShortWriteThenAnErrorEndsTheTornLineInAPipe() async throws {
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        defer { close(ends[0]) }
        let size = Self.line(0).utf8.count + 1
        let budget = Budget(size + size / 2)
        let writer = LineWriter(descriptor: ends[1], name: "test pipe", write: budget.write) { _ in }
        for number in 1...2 { writer.append(Self.line(number)) }
        try await Self.eventually { writer.counts.written + writer.counts.failed == 2 }
        budget.left.withLock { $0 = 1 << 20 }
        writer.append(Self.line(3))
        #expect(writer.close(timeout: 5))
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while case let count = read(ends[0], &buffer, buffer.count), count > 0 { bytes += buffer[..<count] }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines == [Self.line(1), String(Self.line(2).prefix(size / 2)), Self.line(3), ""].map { Substring($0) })
        #expect(writer.counts == LineWriter.Counts(written: 2, failed: 1))
    }

    /// A file that stops taking lines (a write that blocks): `close` gives up at its
    /// timeout and counts every line it leaves, the one being written and those queued.
    @Test func closeCountsTheLinesItLeavesAtItsTimeout() async throws {
        let gate = Gate()
        let writer = LineWriter(descriptor: -1, name: "test file", write: gate.write) { _ in }
        writer.append(Self.line(1))
        try await Self.eventually { gate.thread.withLock { $0 != nil } }
        for number in 2...4 { writer.append(Self.line(number)) }
        #expect(!writer.close(timeout: 0.2))
        #expect(writer.counts.unwritten == 4)
        #expect(writer.counts.lost == 4)
        gate.open.signal()
    }

    /// A queue over its limit is reported from the writer's thread, never from the
    /// thread that appends (the sampler), which must not run a log handler's I/O.
    @Test func anOverflowIsReportedOnTheWritersThread() async throws {
        let gate = Gate()
        let reporter = Mutex<pthread_t?>(nil)
        let writer = LineWriter(descriptor: -1, name: "test file", queueLimit: 200, write: gate.write) { problem in
            if problem.contains("does not keep up") { reporter.withLock { $0 = pthread_self() } }
        }
        writer.append(Self.line(1))
        try await Self.eventually { gate.thread.withLock { $0 != nil } }
        for number in 2...20 { writer.append(Self.line(number)) }
        #expect(writer.counts.overflowed > 0)
        gate.open.signal()
        try await Self.eventually { reporter.withLock { $0 != nil } }
        let writerThread = try #require(gate.thread.withLock { $0 })
        let reportThread = try #require(reporter.withLock { $0 })
        #expect(pthread_equal(writerThread, reportThread) != 0)
        writer.close(timeout: 5)
    }

    /// SIGHUP with the FIFO's reader gone: `reopen` returns at once (the control
    /// plane never waits for a file), the writer's thread does not wait for a reader
    /// either, says why it keeps the old file, and writes on.
    @Test func reopeningAFifoWithoutAReaderNeitherBlocksNorStopsTheWriter() async throws {
        let directory = TestFiles.temporaryDirectory()
        let fifo = directory.appendingPathComponent("stats.fifo").path
        try #require(mkfifo(fifo, 0o600) == 0)
        let path = directory.appendingPathComponent("stats.json").path
        let fd = try #require(try? LineWriter.open(path, waitForReader: true).get())
        let problems = Mutex<[String]>([])
        let writer = LineWriter(descriptor: fd, name: "test file") { problem in problems.withLock { $0.append(problem) }
        }
        let asked = Date()
        writer.reopen(path: fifo)
        #expect(Date().timeIntervalSince(asked) < 0.5)
        writer.append(Self.line(1))
        try await Self.eventually { writer.counts.written == 1 }
        #expect(writer.counts.written == 1)
        #expect(
            problems.withLock {
                $0.contains { $0.contains("cannot open the test file again (a FIFO nobody has open for reading)") }
            }
        )
        #expect(writer.close(timeout: 5))
        #expect(try String(contentsOfFile: path, encoding: .utf8) == Self.line(1) + "\n")
    }
}
