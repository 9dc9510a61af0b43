import CRdKafka
import Foundation
import Synchronization

/// Asks a Kafka cluster, as the probe's producers would reach it, whether it
/// answers and holds the topic (`fastcapa check`). Nothing is produced.
package enum ClusterCheck {
    package struct Broker: Sendable, Equatable {
        package var id: Int32
        package var address: String
    }

    package struct Answer: Sendable {
        /// The brokers the cluster's metadata lists.
        package var brokers: [Broker]
        /// The topic's partitions; nil when the topic does not exist.
        package var partitions: Int?
        /// Why the topic is not usable, when it is not.
        package var topicProblem: String?
        package var milliseconds: Int
    }

    /// Why the cluster could not be asked.
    package struct Failure: Error, CustomStringConvertible, Sendable {
        package enum Kind: Sendable { case authentication, tls, unreachable, refused }
        package var kind: Kind
        package var reasons: [String]
        package var description: String {
            let what =
                switch kind {
                case .authentication: "SASL authentication failed"
                case .tls: "the TLS handshake failed"
                case .unreachable: "no broker answered"
                case .refused: "librdkafka refused the configuration"
                }
            return ([what] + reasons).joined(separator: ": ")
        }
    }

    /// Errors librdkafka reports while the metadata request waits.
    private final class Errors: Sendable {
        let entries = Mutex<[(code: rd_kafka_resp_err_t, reason: String)]>([])
    }

    private static let onError:
        @convention(c) (OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?) -> Void = {
            _,
            code,
            reason,
            opaque in
            guard let opaque else { return }
            let errors = Unmanaged<Errors>.fromOpaque(opaque).takeUnretainedValue()
            let text = reason.map { String(cString: $0) } ?? ""
            errors.entries.withLock { $0.append((rd_kafka_resp_err_t(rawValue: code), text)) }
        }

    /// Metadata for `topic`, within `timeoutMs`.
    package static func run(
        properties: KafkaProperties,
        topic: String,
        timeoutMs: Int32
    ) -> Result<Answer, Failure> {
        let conf: OpaquePointer
        do {
            conf = try KafkaConfiguration.makeConf(properties, defaults: [("client.id", "fastcapa-check")])
        } catch {
            return .failure(Failure(kind: .refused, reasons: [error.description]))
        }
        // Ask, do not create: a missing topic is reported, not auto-created.
        _ = rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", nil, 0)
        let errors = Errors()
        let opaque = Unmanaged.passRetained(errors)
        defer { opaque.release() }
        rd_kafka_conf_set_error_cb(conf, onError)
        rd_kafka_conf_set_opaque(conf, opaque.toOpaque())
        let logQueue = KafkaLog.install(on: conf)
        var reason = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &reason, reason.count) else {
            rd_kafka_conf_destroy(conf)
            return .failure(Failure(kind: .refused, reasons: [text(of: reason)]))
        }
        if logQueue { KafkaLog.attach(handle) }
        defer {
            KafkaLog.detach(handle)
            rd_kafka_destroy(handle)
        }
        guard let topicHandle = rd_kafka_topic_new(handle, topic, nil) else {
            return .failure(Failure(kind: .refused, reasons: ["cannot make a handle for topic '\(topic)'"]))
        }
        defer { rd_kafka_topic_destroy(topicHandle) }

        let start = DispatchTime.now()
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let error = rd_kafka_metadata(handle, 0, topicHandle, &metadata, timeoutMs)
        let milliseconds = Int((DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1_000_000)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            // Serves the error callbacks queued meanwhile. On a loaded host the broker thread's
            // report may come after the request gave up: wait a little for one that says why.
            let deadline = DispatchTime.now().uptimeNanoseconds + 1_000_000_000
            repeat {
                _ = rd_kafka_poll(handle, 100)
            } while !errors.entries.withLock({ $0.contains { !$0.reason.contains("brokers are down") } })
                && DispatchTime.now().uptimeNanoseconds < deadline
            return .failure(failure(error, reported: errors.entries.withLock { $0 }))
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        let list = metadata.pointee
        let brokers = (0..<Int(list.broker_cnt)).map { index in
            let broker = list.brokers[index]
            return Broker(id: broker.id, address: "\(String(cString: broker.host)):\(broker.port)")
        }
        var answer = Answer(brokers: brokers, partitions: nil, topicProblem: nil, milliseconds: milliseconds)
        let entry = (0..<Int(list.topic_cnt)).map { list.topics[$0] }.first { String(cString: $0.topic) == topic }
        if let entry, entry.err == RD_KAFKA_RESP_ERR_NO_ERROR {
            answer.partitions = Int(entry.partition_cnt)
        } else {
            let code = entry?.err ?? RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
            answer.topicProblem =
                code == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || code == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC
                ? "does not exist" : String(cString: rd_kafka_err2str(code))
        }
        return .success(answer)
    }

    /// What went wrong, from the request's error and what librdkafka reported:
    /// the distinct reasons, the most telling first.
    private static func failure(
        _ error: rd_kafka_resp_err_t,
        reported: [(code: rd_kafka_resp_err_t, reason: String)]
    ) -> Failure {
        let authentication: Set<rd_kafka_resp_err_t> = [
            RD_KAFKA_RESP_ERR__AUTHENTICATION, RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED,
            RD_KAFKA_RESP_ERR_UNSUPPORTED_SASL_MECHANISM, RD_KAFKA_RESP_ERR_ILLEGAL_SASL_STATE,
        ]
        // "…: reason (after 0ms in state X, 1 identical error(s) suppressed)" → "…: reason"
        func core(_ reason: String) -> String {
            guard let open = reason.range(of: " (after ", options: .backwards) else { return reason }
            return String(reason[..<open.lowerBound])
        }
        var reasons: [String] = []
        for entry in reported where !entry.reason.contains("brokers are down") {
            let reason = core(entry.reason)
            if !reasons.contains(reason) { reasons.append(reason) }
        }
        if reasons.isEmpty { reasons = reported.map { core($0.reason) }.prefix(1) + [] }
        if reasons.isEmpty { reasons = [String(cString: rd_kafka_err2str(error))] }
        let telling = ["handshake failed", "authentication", "SASL"]
        reasons.sort { a, b in
            let rank = { (text: String) in
                telling.firstIndex { text.localizedCaseInsensitiveContains($0) } ?? telling.count
            }
            return rank(a) < rank(b)
        }
        let codes = Set(reported.map(\.code) + [error])
        let text = reasons.joined(separator: " ").lowercased()
        let kind: Failure.Kind =
            codes.contains(RD_KAFKA_RESP_ERR__SSL) || text.contains("ssl handshake")
            ? .tls
            : !codes.isDisjoint(with: authentication) || text.contains("sasl") || text.contains("authentication")
                ? .authentication : .unreachable
        return Failure(kind: kind, reasons: Array(reasons.prefix(2)))
    }
}
