import CDPDK
import CLinux
import Glibc
import Synchronization

/// Routes DPDK's log lines (EAL, drivers) to the application's logger instead
/// of DPDK's own stderr printer, as `KafkaLog` does for librdkafka's: one
/// `--log-level` and one format cover everything. DPDK writes to a stream set
/// with `rte_openlog_stream`; this one is a `fopencookie` stream whose writes
/// come here, on the thread that logged, while DPDK still knows the message's
/// level (`rte_log_cur_msg_loglevel`).
package enum DpdkLog {
    /// DPDK's level (1 emergency ... 8 debug), one line without its newline.
    package typealias Sink = @Sendable (_ level: UInt32, _ line: String) -> Void

    private static let sink = Mutex<Sink?>(nil)

    /// Sends DPDK's lines to `newSink` and lets through only those at
    /// `maximumLevel` or more severe (DPDK's global level; EAL's own
    /// `--log-level=TYPE:LEVEL` still chooses within it). Call before
    /// `Eal.initialize`, so that EAL's start-up lines are routed too.
    package static func route(maximumLevel: UInt32, to newSink: @escaping Sink) {
        let first = sink.withLock { current in
            defer { current = newSink }
            return current == nil
        }
        rte_log_set_global_level(maximumLevel)
        guard first else { return }
        // The stream lives for the process: DPDK may log until exit.
        guard let stream = CLinux_fopencookie(nil, write) else { return }
        // Line-buffered: each line reaches `write` inside the logging call, on its thread.
        setvbuf(stream, nil, _IOLBF, 4096)
        rte_openlog_stream(stream)
    }

    /// DPDK's levels (RTE_LOG_EMERG 1 ... RTE_LOG_DEBUG 8) for syslog-style names.
    package static func level(named name: String) -> UInt32 {
        switch name {
        case "trace", "debug": 8
        case "info": 7
        case "notice": 6
        case "warning": 5
        case "error": 4
        default: 3
        }
    }

    private static let write: @convention(c) (UnsafeMutableRawPointer?, UnsafePointer<CChar>?, Int) -> Int = {
        _,
        buffer,
        size in
        guard let buffer, size > 0, let current = sink.withLock({ $0 }) else { return size }
        let level = UInt32(bitPattern: rte_log_cur_msg_loglevel())
        let text = String(decoding: UnsafeRawBufferPointer(start: buffer, count: size), as: UTF8.self)
        for line in text.split(separator: "\n") where !line.allSatisfy(\.isWhitespace) {
            current(level == 0 ? 7 : level, String(line))
        }
        return size
    }
}
