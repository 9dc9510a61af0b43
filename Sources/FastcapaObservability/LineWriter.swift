import Foundation
import Synchronization

/// A file the probe appends lines to (`-s`, `--counter-trace`), written by a
/// thread of its own. Whoever records a line only queues it: the sampler (which
/// also reads the producers through RCU) and the statistics service never wait
/// for the disk, so a full disk, a slow NFS mount or a FIFO nobody reads cannot
/// stall sampling, a grace period or the stop. Opening the file again (SIGHUP)
/// happens on that thread too, so the control plane never waits for a file.
///
/// A line the file cannot take is lost, never retried out of order: a write
/// error (`ENOSPC`, `EPIPE`, …), a queue over `queueLimit` bytes, or a stop the
/// file does not take its last lines by loses it, and each is counted. A line
/// the file took only part of is cut off again (or, where the file cannot be
/// cut, ended before the next line), so a reader never finds half a line run
/// into the next one. The first loss of an episode is reported (`onProblem`,
/// on the writer's thread, with the error and the fix), and so is the first
/// line written again after it.
package final class LineWriter: Sendable {
    /// Lines written, lost to write errors, to a full queue, and left unwritten by the stop (`close`'s timeout, or queued after it).
    package struct Counts: Sendable, Equatable {
        package var written = 0
        package var failed = 0
        package var overflowed = 0
        package var unwritten = 0
        package var lost: Int { failed + overflowed + unwritten }
    }

    /// Writes to a descriptor: the bytes written, or minus the errno (write(2) by default; tests inject faults).
    package typealias Write = @Sendable (Int32, UnsafeRawBufferPointer) -> Int

    private struct State {
        var pending: [UInt8] = []
        var pendingLines = 0
        /// Lines the writer's thread has taken and is writing.
        var writing = 0
        /// A path to open again (SIGHUP), for the writer's thread.
        var reopenPath: String?
        /// An overflow to report, from the writer's thread.
        var overflowReport = false
        var counts = Counts()
        var closing = false
        /// `close` gave up waiting: what was left is counted, and nothing after it.
        var abandoned = false
    }

    /// The file's role and path, for messages ("statistics file (-s) '/var/log/x'").
    package let name: String
    package let queueLimit: Int
    private let state: Mutex<State>
    private let wake = DispatchSemaphore(value: 0)
    private let ended = DispatchSemaphore(value: 0)
    private let onProblem: @Sendable (String) -> Void
    private let write: Write

    /// - Parameters:
    ///   - descriptor: open for appending; the writer owns it from here.
    ///   - onProblem: told when lines start being lost and when writing resumes (on the writer's thread).
    package init(
        descriptor: Int32,
        name: String,
        queueLimit: Int = 4 << 20,
        write: @escaping Write = LineWriter.systemWrite,
        onProblem: @escaping @Sendable (String) -> Void
    ) {
        self.name = name
        self.queueLimit = queueLimit
        self.onProblem = onProblem
        self.write = write
        state = Mutex(State())
        let thread = Thread { [self] in writeUntilClosed(descriptor) }
        thread.name = "fastcapa-lines"
        thread.start()
    }

    package static let systemWrite: Write = { descriptor, buffer in
        let written = Glibc.write(descriptor, buffer.baseAddress, buffer.count)
        return written < 0 ? -Int(errno) : written
    }

    /// Queues `line` (a newline is added). Never blocks on the file.
    package func append(_ line: String) {
        state.withLock { state in
            guard !state.closing else {
                state.counts.unwritten += 1
                return
            }
            guard state.pending.count + line.utf8.count < queueLimit else {
                state.counts.overflowed += 1
                if state.counts.overflowed == 1 || state.counts.overflowed % 10_000 == 0 {
                    state.overflowReport = true
                }
                return
            }
            state.pending.append(contentsOf: line.utf8)
            state.pending.append(UInt8(ascii: "\n"))
            state.pendingLines += 1
        }
        wake.signal()
    }

    /// Writes from now on to `path` opened again (SIGHUP, after logrotate renamed
    /// the file). Returns at once: the writer's thread opens it, without waiting
    /// for a FIFO's reader; a file that cannot be opened keeps the old one, and
    /// `onProblem` says so.
    package func reopen(path: String) {
        state.withLock { state in
            guard !state.closing else { return }
            state.reopenPath = path
        }
        wake.signal()
    }

    package var counts: Counts { state.withLock { $0.counts } }

    /// Takes no more lines: the writer's thread writes what is queued, then closes the file.
    package func finish() {
        state.withLock { $0.closing = true }
        wake.signal()
    }

    /// `finish`, and waits at most `timeout` seconds for it. False when the file
    /// still had not taken every line: the rest is counted (`unwritten`).
    @discardableResult
    package func close(timeout: Double = 2) -> Bool {
        finish()
        if ended.wait(timeout: .now() + max(timeout, 0)) == .success {
            ended.signal()  // for a later call
            return true
        }
        state.withLock { state in
            guard !state.abandoned else { return }
            state.abandoned = true
            state.counts.unwritten += state.pendingLines + state.writing
            state.pending.removeAll()
            state.pendingLines = 0
            state.writing = 0
        }
        return false
    }

    private func writeUntilClosed(_ first: Int32) {
        var descriptor = first
        var failing = false
        // The file ends in part of a line that could not be cut off: the next write ends it first.
        var torn = false
        while true {
            wake.wait()
            let reopenPath = state.withLock { state in
                defer { state.reopenPath = nil }
                return state.reopenPath
            }
            if let path = reopenPath {
                switch Self.open(path, waitForReader: false) {
                case .success(let opened):
                    Glibc.close(descriptor)
                    descriptor = opened
                    torn = false
                case .failure(let error):
                    onProblem(
                        "SIGHUP: cannot open the \(name) again (\(error.reason)); its lines go on to the file it had open"
                    )
                }
            }
            let (bytes, lines, closing, overflowReport) = state.withLock { state in
                defer {
                    state.writing = state.pendingLines
                    state.pending.removeAll(keepingCapacity: true)
                    state.pendingLines = 0
                    state.overflowReport = false
                }
                return (state.pending, state.pendingLines, state.closing, state.overflowReport)
            }
            if overflowReport {
                onProblem(
                    "the \(name) does not keep up: \(queueLimit >> 20) MiB of lines wait for it; lines are lost until it does (\(counts.overflowed) so far). Put it on a faster disk, or raise its interval."
                )
            }
            if lines > 0 {
                let (written, error) = writeLines(bytes, to: descriptor, torn: &torn)
                let failures = state.withLock { state -> Int in
                    state.writing = 0
                    if !state.abandoned {
                        state.counts.written += written
                        state.counts.failed += lines - written
                    }
                    return state.counts.failed
                }
                if error != 0 && !failing {
                    onProblem(
                        "cannot write the \(name): \(String(cString: strerror(error))); its lines are lost (\(failures) so far) and fastcapa goes on capturing. Free space on its file system or fix the error; each new line is tried again, and SIGHUP opens the file again."
                    )
                } else if error == 0 && failing {
                    onProblem("the \(name) is written again; \(failures) lines were lost")
                }
                failing = error != 0
            }
            if closing {
                Glibc.close(descriptor)
                ended.signal()
                return
            }
        }
    }

    /// Writes `bytes`, whole lines, retrying short writes and EINTR. Returns the
    /// lines the file took whole, and 0 or the errno that stopped it. A line
    /// taken in part is cut off again; where it cannot be, `torn` is set and the
    /// next call writes a newline first, so it stands alone, not run into the next.
    func writeLines(_ bytes: [UInt8], to descriptor: Int32, torn: inout Bool) -> (lines: Int, error: Int32) {
        let newline = UInt8(ascii: "\n")
        let prefix = torn ? 1 : 0
        let batch = torn ? [newline] + bytes : bytes
        var offset = 0
        var error: Int32 = 0
        batch.withUnsafeBytes { buffer in
            while offset < buffer.count {
                let written = write(descriptor, UnsafeRawBufferPointer(rebasing: buffer[offset...]))
                if written == -Int(EINTR) { continue }
                if written < 0 {
                    error = Int32(-written)
                    return
                }
                offset += written
            }
        }
        if error == 0 {
            torn = false
            return (batch[prefix...].count(where: { $0 == newline }), 0)
        }
        if offset > 0 { torn = false }
        let lines = offset > prefix ? batch[prefix..<offset].count(where: { $0 == newline }) : 0
        // Bytes of a line the file took in part.
        let partial = offset - ((batch[..<offset].lastIndex(of: newline) ?? -1) + 1)
        if partial > 0 && !Self.cut(partial, from: descriptor) { torn = true }
        return (lines, error)
    }

    /// Removes the last `count` bytes this writer wrote to a regular file, when
    /// nothing else changed its end since (the file's size is where the write left off).
    static func cut(_ count: Int, from descriptor: Int32) -> Bool {
        var status = stat()
        guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { return false }
        let end = lseek(descriptor, 0, SEEK_CUR)
        guard end >= count, end == status.st_size else { return false }
        return ftruncate(descriptor, end - off_t(count)) == 0
    }

    package struct OpenError: Error {
        package var errno: Int32
        package var reason: String {
            errno == ENXIO ? "a FIFO nobody has open for reading" : String(cString: strerror(errno))
        }
    }

    /// `path` for appending (created 0640 when missing; every write at its end).
    /// Without `waitForReader`, a FIFO nobody reads fails at once (ENXIO)
    /// instead of blocking the caller until a reader comes; writes block as usual.
    package static func open(_ path: String, waitForReader: Bool) -> Result<Int32, OpenError> {
        let flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC
        let fd = Glibc.open(path, waitForReader ? flags : flags | O_NONBLOCK, 0o640)
        guard fd >= 0 else { return .failure(OpenError(errno: errno)) }
        if !waitForReader { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) }
        return .success(fd)
    }
}
