import Foundation
import Synchronization

/// A file the probe appends lines to (`-s`, `--counter-trace`), written by a
/// thread of its own. Whoever records a line only queues it: the sampler (which
/// also reads the producers through RCU) and the statistics service never wait
/// for the disk, so a full disk, a slow NFS mount or a FIFO nobody reads cannot
/// stall sampling, a grace period or the stop.
///
/// A line the file cannot take is lost, never retried out of order: a write
/// error (`ENOSPC`, `EIO`, …) or a queue over `queueLimit` bytes loses it, and
/// both are counted. The first loss of an episode is reported (`onProblem`, with
/// the error and the fix), and so is the first line written again after it.
package final class LineWriter: Sendable {
    /// Lines written, lost to write errors, and lost to a full queue.
    package struct Counts: Sendable, Equatable {
        package var written = 0
        package var failed = 0
        package var overflowed = 0
        package var lost: Int { failed + overflowed }
    }

    private struct State {
        var descriptor: Int32
        /// Descriptors replaced by `reopen`: the writer closes them once it no longer writes to them.
        var retired: [Int32] = []
        var pending: [UInt8] = []
        var pendingLines = 0
        var counts = Counts()
        var closing = false
    }

    /// The file's role and path, for messages ("statistics file (-s) '/var/log/x'").
    package let name: String
    package let queueLimit: Int
    private let state: Mutex<State>
    private let wake = DispatchSemaphore(value: 0)
    private let ended = DispatchSemaphore(value: 0)
    private let onProblem: @Sendable (String) -> Void

    /// - Parameters:
    ///   - descriptor: open for appending; the writer owns it from here.
    ///   - onProblem: told when lines start being lost and when writing resumes (on the writer's thread).
    package init(
        descriptor: Int32,
        name: String,
        queueLimit: Int = 4 << 20,
        onProblem: @escaping @Sendable (String) -> Void
    ) {
        self.name = name
        self.queueLimit = queueLimit
        self.onProblem = onProblem
        state = Mutex(State(descriptor: descriptor))
        let thread = Thread { [self] in writeUntilClosed() }
        thread.name = "fastcapa-lines"
        thread.start()
    }

    /// Queues `line` (a newline is added). Never blocks on the file.
    package func append(_ line: String) {
        let overflowed = state.withLock { state -> Bool in
            guard !state.closing else { return false }
            guard state.pending.count + line.utf8.count < queueLimit else {
                state.counts.overflowed += 1
                return state.counts.overflowed == 1 || state.counts.overflowed % 10_000 == 0
            }
            state.pending.append(contentsOf: line.utf8)
            state.pending.append(UInt8(ascii: "\n"))
            state.pendingLines += 1
            return false
        }
        if overflowed {
            onProblem(
                "the \(name) does not keep up: \(queueLimit >> 20) MiB of lines wait for it; lines are lost until it does (\(counts.overflowed) so far). Put it on a faster disk, or raise its interval."
            )
        }
        wake.signal()
    }

    /// Writes from now on to `descriptor` (SIGHUP, after logrotate renamed the file).
    package func reopen(_ descriptor: Int32) {
        state.withLock { state in
            state.retired.append(state.descriptor)
            state.descriptor = descriptor
        }
        wake.signal()
    }

    package var counts: Counts { state.withLock { $0.counts } }

    /// Writes what is queued, for at most `timeout` seconds, then closes the file.
    /// False when the file still had not taken it all (the rest is counted lost).
    @discardableResult
    package func close(timeout: Double = 2) -> Bool {
        let first = state.withLock { state in
            defer { state.closing = true }
            return !state.closing
        }
        guard first else { return true }
        wake.signal()
        return ended.wait(timeout: .now() + timeout) == .success
    }

    private func writeUntilClosed() {
        var failing = false
        while true {
            wake.wait()
            let (descriptor, bytes, lines, closing) = state.withLock { state in
                defer {
                    state.pending.removeAll(keepingCapacity: true)
                    state.pendingLines = 0
                }
                return (state.descriptor, state.pending, state.pendingLines, state.closing)
            }
            if lines > 0 {
                let error = Self.writeAll(bytes, to: descriptor)
                let failures = state.withLock { state -> Int in
                    if error == 0 { state.counts.written += lines } else { state.counts.failed += lines }
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
            let retired = state.withLock { state in
                defer { state.retired.removeAll() }
                return state.retired
            }
            for old in retired { Glibc.close(old) }
            if closing {
                Glibc.close(descriptor)
                ended.signal()
                return
            }
        }
    }

    /// Writes every byte (retrying short writes and EINTR); 0, or the errno that stopped it.
    static func writeAll(_ bytes: [UInt8], to descriptor: Int32) -> Int32 {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return errno
                }
                offset += written
            }
            return 0
        }
    }
}
