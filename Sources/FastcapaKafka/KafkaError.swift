import CRdKafka

/// An error from librdkafka, keeping its C error code.
package struct KafkaError: Error, CustomStringConvertible, Sendable {
    package var code: Int32
    package var message: String

    package init(code: rd_kafka_resp_err_t, message: String) {
        self.code = code.rawValue
        self.message = message
    }

    package init(message: String) {
        self.code = RD_KAFKA_RESP_ERR_UNKNOWN.rawValue
        self.message = message
    }

    package var name: String { String(cString: rd_kafka_err2name(rd_kafka_resp_err_t(rawValue: code))) }
    package var description: String { message }
}

/// The text in a NUL-terminated C buffer that librdkafka filled.
package func text(of buffer: [CChar]) -> String {
    String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
