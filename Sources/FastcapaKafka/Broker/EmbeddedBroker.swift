import CRdKafka

/// librdkafka's mock cluster: a real Kafka-protocol broker on loopback, held in
/// this process. It stands in for Kafka in the demo and the tests; it keeps
/// about 100,000 message sets (at most 5 MiB) per partition in memory and drops
/// the oldest beyond that, while offsets (high watermarks) keep counting.
package final class EmbeddedBroker: @unchecked Sendable {
    private let owner: OpaquePointer
    private let cluster: OpaquePointer
    /// `host:port,...` for `bootstrap.servers`.
    package let bootstrapServers: String

    package init(brokers: Int32 = 1, topics: [(name: String, partitions: Int32)] = []) throws {
        let conf = rd_kafka_conf_new()!
        // The owning handle never talks to Kafka; it only hosts the cluster's threads.
        var reason = [CChar](repeating: 0, count: 512)
        rd_kafka_conf_set(conf, "log_level", "3", &reason, reason.count)
        guard let owner = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &reason, reason.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(message: "cannot start the embedded broker: \(text(of: reason))")
        }
        guard let cluster = rd_kafka_mock_cluster_new(owner, brokers) else {
            rd_kafka_destroy(owner)
            throw KafkaError(message: "cannot start the embedded broker (rd_kafka_mock_cluster_new failed)")
        }
        self.owner = owner
        self.cluster = cluster
        self.bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
        for topic in topics {
            let error = rd_kafka_mock_topic_create(cluster, topic.name, topic.partitions, min(brokers, 3))
            if error != RD_KAFKA_RESP_ERR_NO_ERROR {
                throw KafkaError(
                    code: error,
                    message:
                        "cannot create topic '\(topic.name)' on the embedded broker: \(String(cString: rd_kafka_err2str(error)))"
                )
            }
        }
    }

    // MARK: - Fault injection (tests, demos of failure handling)

    package func setDown(broker: Int32) { _ = rd_kafka_mock_broker_set_down(cluster, broker) }
    package func setUp(broker: Int32) { _ = rd_kafka_mock_broker_set_up(cluster, broker) }
    package func setRoundTrip(broker: Int32, milliseconds: Int32) {
        _ = rd_kafka_mock_broker_set_rtt(cluster, broker, milliseconds)
    }

    /// The next `errors.count` produce requests fail with these errors, in order.
    package func failProduceRequests(with errors: [rd_kafka_resp_err_t]) {
        // API key 0 is Produce.
        errors.withUnsafeBufferPointer { buffer in
            rd_kafka_mock_push_request_errors_array(cluster, 0, buffer.count, buffer.baseAddress)
        }
    }

    /// An error code from its librdkafka name (`NOT_LEADER_FOR_PARTITION`, `_TIMED_OUT`...).
    package static func errorCode(named name: String) -> rd_kafka_resp_err_t? {
        for raw in Int32(-200)...Int32(200) {
            let code = rd_kafka_resp_err_t(rawValue: raw)
            if String(cString: rd_kafka_err2name(code)) == name { return code }
        }
        return nil
    }

    deinit {
        rd_kafka_mock_cluster_destroy(cluster)
        rd_kafka_destroy(owner)
    }
}
