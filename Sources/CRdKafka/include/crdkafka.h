// CRdKafka: librdkafka and its mock cluster, for the Swift layer.
#ifndef CRDKAFKA_H
#define CRDKAFKA_H

#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/// `rd_kafka_message_t` fields a delivery report reads, as functions so the
/// Swift side does not depend on the struct's layout.
static inline rd_kafka_resp_err_t crk_message_error(const rd_kafka_message_t *m) { return m->err; }
static inline size_t crk_message_length(const rd_kafka_message_t *m) { return m->len; }
static inline const void *crk_message_payload(const rd_kafka_message_t *m) { return m->payload; }
static inline const void *crk_message_key(const rd_kafka_message_t *m) { return m->key; }
static inline size_t crk_message_key_length(const rd_kafka_message_t *m) { return m->key_len; }
static inline int32_t crk_message_partition(const rd_kafka_message_t *m) { return m->partition; }
static inline int64_t crk_message_offset(const rd_kafka_message_t *m) { return m->offset; }
/// The per-message opaque given to produce() (fastcapa: the flow hash).
static inline void *crk_message_opaque(const rd_kafka_message_t *m) { return m->_private; }

#endif
