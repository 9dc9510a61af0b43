import FastcapaKafka
import Foundation
import Testing

/// TLS, SASL and compression with this librdkafka, and `fastcapa check`'s
/// question to the brokers, on librdkafka's mock cluster in this process. The
/// mock cluster speaks neither TLS nor SASL (rdkafka_mock.h has neither), so a
/// client that asks for them must fail clearly, as against a plaintext
/// listener of a real cluster.
@Suite(.serialized) struct SecurityTests {
    static func properties(_ servers: String, _ extra: [(String, String)] = []) -> KafkaProperties {
        var properties = KafkaProperties()
        properties.setGlobal("bootstrap.servers", servers, origin: "test")
        properties.setGlobal("log_level", "0", origin: "test")
        for (key, value) in extra { properties.setGlobal(key, value, origin: "test") }
        return properties
    }

    /// Debian's librdkafka links OpenSSL, Cyrus SASL, lz4 and zstd.
    @Test func thisLibrdkafkaHasTlsSaslAndTheCodecs() {
        for feature in ["ssl", "sasl", "sasl_plain", "sasl_scram", "lz4", "zstd", "snappy", "gzip"] {
            #expect(LibrdkafkaBuild.features.contains(feature), "builtin.features: \(LibrdkafkaBuild.features)")
        }
        #expect(LibrdkafkaBuild.version.hasPrefix("2."))
    }

    /// The properties of a TLS + SASL capture are accepted, and a producer builds from them.
    @Test(arguments: [
        [("security.protocol", "SASL_SSL"), ("sasl.mechanisms", "SCRAM-SHA-512")],
        [("security.protocol", "SASL_SSL"), ("sasl.mechanisms", "SCRAM-SHA-256")],
        [("security.protocol", "SASL_SSL"), ("sasl.mechanisms", "PLAIN")],
        [("security.protocol", "SASL_PLAINTEXT"), ("sasl.mechanisms", "PLAIN")],
        [("security.protocol", "SSL")],
    ])
    func tlsAndSaslPropertiesAreAccepted(_ security: [(String, String)]) throws {
        let properties = Self.properties(
            "kafka1.example.invalid:9093",
            security + [
                ("sasl.username", "fastcapa"), ("sasl.password", "secret"),
                ("ssl.endpoint.identification.algorithm", "https"),
                ("compression.codec", "zstd"), ("enable.idempotence", "true"),
            ]
        )
        try KafkaConfiguration.validate(properties)
        // A client builds from them (TLS context, SASL): it fails only to reach the brokers.
        guard case .failure(let failure) = ClusterCheck.run(properties: properties, topic: "pcap", timeoutMs: 300)
        else {
            Issue.record("kafka1.example.invalid answered")
            return
        }
        #expect(failure.kind != .refused, "\(failure)")
    }

    @Test(arguments: ["none", "gzip", "snappy", "lz4", "zstd"])
    func everyCodecIsAccepted(_ codec: String) throws {
        try KafkaConfiguration.validate(Self.properties("k:9092", [("compression.codec", codec)]))
    }

    @Test func aClusterThatAnswersNamesItsBrokersAndTheTopic() throws {
        let broker = try EmbeddedBroker(brokers: 2, topics: [("pcap", 3)])
        let answer = try ClusterCheck.run(
            properties: Self.properties(broker.bootstrapServers),
            topic: "pcap",
            timeoutMs: 10_000
        )
        .get()
        #expect(answer.brokers.count == 2)
        #expect(answer.partitions == 3)
        #expect(answer.topicProblem == nil)
    }

    @Test(arguments: [
        (
            [("security.protocol", "SASL_PLAINTEXT"), ("sasl.mechanisms", "PLAIN")],
            ClusterCheck.Failure.Kind.authentication, "SASL"
        ),
        ([("security.protocol", "SASL_PLAINTEXT"), ("sasl.mechanisms", "SCRAM-SHA-512")], .authentication, "SASL"),
        ([("security.protocol", "SSL")], .tls, "SSL handshake failed"),
        ([("security.protocol", "SASL_SSL"), ("sasl.mechanisms", "PLAIN")], .tls, "SSL handshake failed"),
    ])
    func tlsAndSaslAgainstAPlaintextListenerFailClearly(
        _ security: [(String, String)],
        _ kind: ClusterCheck.Failure.Kind,
        _ mention: String
    ) throws {
        let broker = try EmbeddedBroker(topics: [("pcap", 1)])
        let properties = Self.properties(
            broker.bootstrapServers,
            security + [("sasl.username", "u"), ("sasl.password", "p")]
        )
        let result = ClusterCheck.run(properties: properties, topic: "pcap", timeoutMs: 4000)
        guard case .failure(let failure) = result else {
            Issue.record("a plaintext listener answered \(security)")
            return
        }
        #expect(failure.kind == kind, "\(failure)")
        #expect(failure.description.contains(mention), "\(failure)")
        #expect(!failure.description.contains("brokers are down"), "the telling reason, not the summary: \(failure)")
    }

    @Test func noListenerIsUnreachable() {
        let result = ClusterCheck.run(properties: Self.properties("127.0.0.1:1"), topic: "pcap", timeoutMs: 1500)
        guard case .failure(let failure) = result else {
            Issue.record("port 1 answered")
            return
        }
        #expect(failure.kind == .unreachable, "\(failure)")
    }
}
