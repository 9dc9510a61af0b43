import CRdKafka
import Synchronization

/// Routes librdkafka's log lines to the application's logger (swift-log in the
/// CLI) instead of librdkafka's own stderr printer. librdkafka calls it from its
/// internal threads. librdkafka never logs property values it marks sensitive.
package enum KafkaLog {
    /// syslog level (0 emergency ... 7 debug), facility, message, client name.
    package typealias Sink = @Sendable (_ level: Int32, _ facility: String, _ message: String, _ client: String) -> Void

    private static let sink = Mutex<Sink?>(nil)

    /// Sets where librdkafka's lines go (nil: librdkafka prints them itself).
    package static func route(to newSink: Sink?) {
        sink.withLock { $0 = newSink }
    }

    static func install(on conf: OpaquePointer) {
        guard sink.withLock({ $0 != nil }) else { return }
        rd_kafka_conf_set_log_cb(conf, callback)
    }

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
}
