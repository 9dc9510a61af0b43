import CRdKafka

/// One librdkafka producer and its topic handle: creation, flush, purge, poll
/// and destruction. The transmit lcore produces and polls through a
/// `ProducerEndpoint` made from the same handles.
package final class KafkaProducer: @unchecked Sendable {
    /// Called for each delivery report on the thread that polls the producer.
    package typealias DeliveryCallback =
        @convention(c) (
            OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?
        ) -> Void
    /// librdkafka's statistics callback: return 1 to keep the JSON (free it with rd_kafka_mem_free).
    package typealias StatisticsCallback =
        @convention(c) (
            OpaquePointer?, UnsafeMutablePointer<CChar>?, Int, UnsafeMutableRawPointer?
        ) -> Int32
    /// librdkafka's error callback (fatal errors, all brokers down, ...).
    package typealias ErrorCallback =
        @convention(c) (
            OpaquePointer?, Int32, UnsafePointer<CChar>?, UnsafeMutableRawPointer?
        ) -> Void
    /// librdkafka's topic partitioner callback.
    package typealias Partitioner =
        @convention(c) (
            OpaquePointer?, UnsafeRawPointer?, Int, Int32, UnsafeMutableRawPointer?, UnsafeMutableRawPointer?
        ) -> Int32

    package let handle: OpaquePointer
    package let topic: OpaquePointer
    package let topicName: String

    /// - Parameters:
    ///   - opaque: passed to every callback (librdkafka's conf opaque).
    ///   - partitioner: replaces librdkafka's partitioner when given; it gets
    ///     `opaque` as its topic opaque.
    /// Builds a producer and its topic from `properties` and destroys them again: what librdkafka
    /// refuses only when a producer is created (`enable.idempotence` with `acks=1`, a SASL mechanism
    /// this build lacks), found before anything running is replaced (a SIGHUP's check).
    package static func validate(properties: KafkaProperties, topicName: String) throws {
        let conf = try KafkaConfiguration.makeConf(properties, defaults: [("client.id", "fastcapa-check")])
        // Its log lines, if any, go through fastcapa's logger like every producer's.
        let logQueue = KafkaLog.install(on: conf)
        var reason = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &reason, reason.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(message: "cannot create a Kafka producer: \(text(of: reason))")
        }
        if logQueue { KafkaLog.attach(handle) }
        defer {
            if logQueue { KafkaLog.detach(handle) }
            rd_kafka_destroy(handle)
        }
        let topicConf = rd_kafka_default_topic_conf_dup(handle)!
        do {
            try KafkaConfiguration.apply(properties.topic, to: topicConf)
        } catch {
            rd_kafka_topic_conf_destroy(topicConf)
            throw error
        }
        guard let topic = rd_kafka_topic_new(handle, topicName, topicConf) else {
            let error = rd_kafka_last_error()
            throw KafkaError(
                code: error,
                message: "cannot open topic '\(topicName)': \(String(cString: rd_kafka_err2str(error)))"
            )
        }
        rd_kafka_topic_destroy(topic)
    }

    package init(
        properties: KafkaProperties,
        topicName: String,
        clientID: String,
        onDelivery: DeliveryCallback,
        opaque: UnsafeMutableRawPointer?,
        partitioner: Partitioner? = nil,
        onStatistics: StatisticsCallback? = nil,
        onError: ErrorCallback? = nil
    ) throws {
        let conf = try KafkaConfiguration.makeConf(properties, defaults: [("client.id", clientID)])
        rd_kafka_conf_set_dr_msg_cb(conf, onDelivery)
        if let onStatistics { rd_kafka_conf_set_stats_cb(conf, onStatistics) }
        if let onError { rd_kafka_conf_set_error_cb(conf, onError) }
        rd_kafka_conf_set_opaque(conf, opaque)
        let logQueue = KafkaLog.install(on: conf)
        var reason = [CChar](repeating: 0, count: 512)
        guard let handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &reason, reason.count) else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(message: "cannot create a Kafka producer: \(text(of: reason))")
        }
        if logQueue { KafkaLog.attach(handle) }
        // Start from the producer's default topic configuration, so that topic
        // properties given with the global ones (message.timeout.ms in
        // [kafka-global] or -X) apply too, then add the topic group's.
        let topicConf = rd_kafka_default_topic_conf_dup(handle)!
        do {
            try KafkaConfiguration.apply(properties.topic, to: topicConf)
        } catch {
            rd_kafka_topic_conf_destroy(topicConf)
            KafkaLog.detach(handle)
            rd_kafka_destroy(handle)
            throw error
        }
        if let partitioner {
            rd_kafka_topic_conf_set_partitioner_cb(topicConf, partitioner)
            rd_kafka_topic_conf_set_opaque(topicConf, opaque)
        }
        guard let topic = rd_kafka_topic_new(handle, topicName, topicConf) else {
            let error = rd_kafka_last_error()
            KafkaLog.detach(handle)
            rd_kafka_destroy(handle)
            throw KafkaError(
                code: error,
                message: "cannot open topic '\(topicName)': \(String(cString: rd_kafka_err2str(error)))"
            )
        }
        self.handle = handle
        self.topic = topic
        self.topicName = topicName
    }

    /// Messages produced but not yet delivered or failed.
    package var outstanding: Int32 { rd_kafka_outq_len(handle) }

    /// Serves delivery reports until everything is delivered or `timeoutMs` passes.
    /// Returns true when nothing is left.
    @discardableResult
    package func flush(timeoutMs: Int32) -> Bool {
        rd_kafka_flush(handle, timeoutMs) == RD_KAFKA_RESP_ERR_NO_ERROR
    }

    /// Fails the messages still waiting in librdkafka's queue (and, with
    /// `inFlight`, those sent but not acknowledged): each gets a delivery report
    /// with a purge error on the next poll.
    package func purge(inFlight: Bool) {
        _ = rd_kafka_purge(handle, Int32(RD_KAFKA_PURGE_F_QUEUE | (inFlight ? RD_KAFKA_PURGE_F_INFLIGHT : 0)))
    }

    /// Serves callbacks for up to `timeoutMs`.
    package func poll(timeoutMs: Int32) { rd_kafka_poll(handle, timeoutMs) }

    /// Fails every message still queued or in flight: each gets a delivery report
    /// with `RD_KAFKA_RESP_ERR__PURGE_QUEUE` or `__PURGE_INFLIGHT`, served here
    /// until none is left or `untilMillis` (monotonic) passes.
    package func purgeAll(untilMillis deadline: Int) {
        _ = rd_kafka_purge(handle, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
        // Purged in-flight messages report when their request ends; poll until they have.
        while rd_kafka_outq_len(handle) > 0 {
            let remaining = deadline - ProducerGeneration.monotonicMillis()
            if remaining <= 0 { break }
            rd_kafka_poll(handle, Int32(min(remaining, 50)))
        }
        rd_kafka_poll(handle, 0)
    }

    /// The fatal error librdkafka recorded, if any.
    package var fatalError: KafkaError? {
        var reason = [CChar](repeating: 0, count: 512)
        let code = rd_kafka_fatal_error(handle, &reason, reason.count)
        guard code != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return KafkaError(code: code, message: text(of: reason))
    }

    deinit {
        rd_kafka_topic_destroy(topic)
        KafkaLog.detach(handle)
        rd_kafka_destroy(handle)
    }
}
