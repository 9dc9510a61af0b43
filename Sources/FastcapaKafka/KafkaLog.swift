import CRdKafka
import Foundation
import Synchronization

/// Routes librdkafka's log lines to the application's logger (swift-log in the
/// CLI) instead of librdkafka's own stderr printer, and never on the thread that
/// logged: librdkafka may log from `rd_kafka_produce` or `rd_kafka_poll`, which
/// run on a transmit lcore, and the lcores log nothing. So each producer gets
/// `log.queue=true` and a log queue of its own (`rd_kafka_set_log_queue`); one
/// thread (`fastcapa-rdklog`, on the control cores) serves every such queue,
/// and the log callback, and with it the application's logger, runs there.
/// librdkafka never logs property values it marks sensitive.
package enum KafkaLog {
    /// syslog level (0 emergency ... 7 debug), facility, message, client name.
    package typealias Sink = @Sendable (_ level: Int32, _ facility: String, _ message: String, _ client: String) -> Void

    private static let sink = Mutex<Sink?>(nil)

    /// Sets where librdkafka's lines go (nil: librdkafka prints them itself).
    package static func route(to newSink: Sink?) {
        sink.withLock { $0 = newSink }
    }

    /// Asks a configuration for its log lines on a queue; true when `attach` must follow.
    static func install(on conf: OpaquePointer) -> Bool {
        guard sink.withLock({ $0 != nil }) else { return false }
        rd_kafka_conf_set_log_cb(conf, callback)
        var error = [CChar](repeating: 0, count: 256)
        return rd_kafka_conf_set(conf, "log.queue", "true", &error, error.count) == RD_KAFKA_CONF_OK
    }

    /// Gives a new client its log queue, served by the log thread.
    static func attach(_ kafka: OpaquePointer) {
        guard let queue = rd_kafka_queue_new(kafka) else { return }
        _ = rd_kafka_set_log_queue(kafka, queue)
        pump.add(kafka: kafka, queue: queue)
    }

    /// Before the client is destroyed: its lines left so far are served here, then its queue goes.
    static func detach(_ kafka: OpaquePointer) {
        guard let queue = pump.remove(kafka: kafka) else { return }
        _ = rd_kafka_queue_poll_callback(queue, 0)
        _ = rd_kafka_set_log_queue(kafka, nil)
        rd_kafka_queue_destroy(queue)
    }

    private static let pump = LogPump()

    private static let callback:
        @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> Void = {
            handle,
            level,
            facility,
            message in
            guard let current = sink.withLock({ $0 }) else { return }
            let client = handle.map { String(cString: rd_kafka_name($0)) } ?? ""
            current(
                level,
                facility.map { String(cString: $0) } ?? "",
                message.map { String(cString: $0) } ?? "",
                client
            )
        }

    /// The thread serving every client's log queue (started with the first).
    private final class LogPump: @unchecked Sendable {
        /// Handles as addresses (OpaquePointer is not Sendable).
        private struct Entry: Sendable {
            let kafka: UInt
            let queue: UInt
        }
        private let entries = Mutex<[Entry]>([])
        private let started = Atomic<Bool>(false)

        func add(kafka: OpaquePointer, queue: OpaquePointer) {
            let entry = Entry(kafka: UInt(bitPattern: kafka), queue: UInt(bitPattern: queue))
            entries.withLock { $0.append(entry) }
            guard !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
            let thread = Thread { [self] in
                Thread.current.name = "fastcapa-rdklog"  // as ps and /proc show it
                serve()
            }
            thread.start()
        }

        /// Removes a client's queue; the pump no longer polls it once this returns.
        func remove(kafka: OpaquePointer) -> OpaquePointer? {
            let address = UInt(bitPattern: kafka)
            let queue: UInt? = entries.withLock { entries in
                guard let index = entries.firstIndex(where: { $0.kafka == address }) else { return nil }
                return entries.remove(at: index).queue
            }
            return queue.flatMap { OpaquePointer(bitPattern: $0) }
        }

        private func serve() {
            while true {
                // Polled under the lock, so that a queue is never destroyed while served.
                let served = entries.withLock { entries in
                    entries.reduce(0) { $0 + Int(rd_kafka_queue_poll_callback(OpaquePointer(bitPattern: $1.queue), 0)) }
                }
                if served == 0 { usleep(10_000) }
            }
        }
    }
}
