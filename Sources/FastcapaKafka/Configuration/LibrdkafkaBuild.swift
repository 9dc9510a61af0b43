import CRdKafka

/// The librdkafka this process runs with: its version, and what it was built
/// with (`builtin.features`: compression codecs, TLS, SASL mechanisms).
package enum LibrdkafkaBuild {
    package static var version: String { String(cString: rd_kafka_version_str()) }

    /// `builtin.features`, e.g. gzip, snappy, ssl, sasl, sasl_plain, zstd, lz4.
    package static let features: [String] = {
        let conf = rd_kafka_conf_new()!
        defer { rd_kafka_conf_destroy(conf) }
        var size = 0
        guard rd_kafka_conf_get(conf, "builtin.features", nil, &size) == RD_KAFKA_CONF_OK, size > 0 else { return [] }
        var buffer = [CChar](repeating: 0, count: size)
        guard rd_kafka_conf_get(conf, "builtin.features", &buffer, &size) == RD_KAFKA_CONF_OK else { return [] }
        return text(of: buffer).split(separator: ",").map(String.init)
    }()
}
