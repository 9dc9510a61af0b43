import CRdKafka
import FastcapaKafka

extension ProducerGeneration {
    /// Makes librdkafka raise a fatal error on this producer, as a fenced
    /// idempotent producer would (`--testing-fault-signals`, the failure suite).
    package func injectFatalError(reason: String) {
        _ = rd_kafka_test_fatal_error(producer.handle, RD_KAFKA_RESP_ERR__FENCED, reason)
    }
}
