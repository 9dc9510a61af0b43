import CRdKafka

/// librdkafka's mock cluster: a real Kafka-protocol broker on loopback, held in
/// this process. It stands in for Kafka in the demo and the tests; it keeps
/// about 100,000 message sets per partition in memory.
public final class EmbeddedBroker: @unchecked Sendable {
    private let owner: OpaquePointer
    private let cluster: OpaquePointer
    /// `host:port,...` for `bootstrap.servers`.
    public let bootstrapServers: String

    public init(brokers: Int32 = 1, topics: [(name: String, partitions: Int32)] = []) throws {
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
                    message: "cannot create topic '\(topic.name)' on the embedded broker: \(String(cString: rd_kafka_err2str(error)))")
            }
        }
    }

    /// The raw mock cluster, for fault injection in tests.
    public var mockCluster: OpaquePointer { cluster }

    deinit {
        rd_kafka_mock_cluster_destroy(cluster)
        rd_kafka_destroy(owner)
    }
}
