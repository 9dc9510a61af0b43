import FastcapaSupervision
import Foundation
import Glibc
import Synchronization

/// The process's signals, turned into control events.
///
/// A `sigaction` handler only writes the signal's number to a pipe (write(2) is
/// async-signal-safe); a thread of its own reads the pipe and hands events to the
/// control plane: SIGINT/SIGTERM stop, SIGHUP reloads, SIGUSR2 injects a fault
/// when asked for. A second stop signal ends the process at once (status 3),
/// after removing what `beforeForcedExit` names, without draining. Once the
/// probe is stopping for another reason (`--idle-exit`, `stopping()`), the first
/// stop signal is that second one: nobody would read it otherwise.
///
/// Why not libdispatch's signal sources (swift-service-lifecycle's
/// `UnixSignalsSequence`): on Linux they need the signal blocked in every
/// thread, and DPDK's and librdkafka's threads do not block it
/// (Documentation/Architecture.md, "Signals").
final class ProcessSignals: Sendable {
    let events: AsyncStream<ControlEvent>
    private let continuation: AsyncStream<ControlEvent>.Continuation
    private let cleanup = Mutex<(@Sendable () -> Void)?>(nil)
    private let handled: [Int32]
    /// Stop signals seen, or 1 once the probe is stopping anyway.
    private let stops = Atomic<Int>(0)

    /// Installs the handlers. Call it before any other thread starts: threads
    /// inherit the signal mask, which this unblocks for the handled signals.
    init(faultSignal: Bool) throws {
        (events, continuation) = AsyncStream.makeStream(bufferingPolicy: .unbounded)
        handled = [SIGINT, SIGTERM, SIGHUP] + (faultSignal ? [SIGUSR2] : [])
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            throw SettingError("cannot create the signal pipe: \(String(cString: strerror(errno)))")
        }
        signalPipeWriteEnd.store(fds[1], ordering: .releasing)
        let readEnd = fds[0]
        let thread = Thread { [self] in forward(from: readEnd) }
        thread.name = "fastcapa-signals"
        thread.start()
        for signal in handled { Self.install(signal) }
    }

    /// Checks that no library replaced a handler since (librdkafka does with
    /// `internal.termination.signal`): a replaced handler would lose stops.
    func verifyHandlers() throws {
        for signal in handled {
            var current = sigaction()
            sigaction(signal, nil, &current)
            let installed = unsafeBitCast(current.__sigaction_handler.sa_handler, to: UnsafeRawPointer?.self)
            guard installed == unsafeBitCast(Self.handler, to: UnsafeRawPointer.self) else {
                throw SettingError(
                    "the handler of signal \(signal) (\(String(cString: strsignal(signal)))) was replaced by a library after start-up, so stops and reloads would be lost. Remove the setting that makes a library handle it (e.g. librdkafka's internal.termination.signal)."
                )
            }
        }
    }

    /// What a forced exit (the second stop signal) removes first: the DPDK runtime folder.
    func beforeForcedExit(_ body: @escaping @Sendable () -> Void) {
        cleanup.withLock { $0 = body }
    }

    /// Only writes the signal's number to the pipe: write(2) is async-signal-safe.
    private static let handler: @convention(c) (Int32) -> Void = { number in
        // write(2) may set errno: keep the interrupted code's.
        let saved = errno
        var byte = UInt8(truncatingIfNeeded: number)
        _ = write(signalPipeWriteEnd.load(ordering: .acquiring), &byte, 1)
        errno = saved
    }

    private static func install(_ signal: Int32) {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = handler
        action.sa_flags = SA_RESTART
        sigemptyset(&action.sa_mask)
        sigaction(signal, &action, nil)
        // A parent may have left it blocked (the mask is inherited).
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, signal)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// The probe is stopping (the control plane returned): the next stop signal forces the exit.
    func stopping() {
        _ = stops.compareExchange(expected: 0, desired: 1, ordering: .sequentiallyConsistent)
    }

    /// The signal thread: one byte per signal, for the life of the process.
    private func forward(from readEnd: Int32) {
        while true {
            var byte: UInt8 = 0
            let count = read(readEnd, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            guard count == 1 else { return }
            let signal = Int32(byte)
            switch signal {
            case SIGINT, SIGTERM:
                if stops.add(1, ordering: .sequentiallyConsistent).newValue >= 2 {
                    LogOutput.writeToStandardError("fastcapa: second stop signal, exiting now without draining\n")
                    cleanup.withLock { $0 }?()
                    _exit(ExitStatus.forced)
                }
                continuation.yield(.stop(signal: signal))
            case SIGHUP: continuation.yield(.reload)
            case SIGUSR2: continuation.yield(.injectFault)
            default: break
            }
        }
    }
}

/// The pipe's write end, for the signal handler: an atomic, since the handler
/// may run on any thread; set before any handler is installed.
private let signalPipeWriteEnd = Atomic<Int32>(-1)
