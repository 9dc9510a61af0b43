// create_topic BROKERS TOPIC PARTITIONS: creates a topic with librdkafka's admin API (CreateTopics), for a
// broker that creates topics on first use with one partition only (EndToEnd/IndependentBroker's noida-db).
// kcat has no admin commands. Exits 0 when the broker created it, 1 with its reason otherwise.
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: create_topic BROKERS TOPIC PARTITIONS\n");
        return 1;
    }
    char error[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], error, sizeof error) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "%s\n", error);
        return 1;
    }
    rd_kafka_t *client = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
    if (!client) {
        fprintf(stderr, "%s\n", error);
        return 1;
    }
    rd_kafka_NewTopic_t *topic = rd_kafka_NewTopic_new(argv[2], atoi(argv[3]), 1, error, sizeof error);
    if (!topic) {
        fprintf(stderr, "%s\n", error);
        return 1;
    }
    rd_kafka_queue_t *queue = rd_kafka_queue_new(client);
    rd_kafka_CreateTopics(client, &topic, 1, NULL, queue);
    rd_kafka_event_t *event = rd_kafka_queue_poll(queue, 15000);
    const char *problem = "no answer within 15 s";
    if (event && rd_kafka_event_error(event)) {
        problem = rd_kafka_event_error_string(event);
    } else if (event) {
        size_t count = 0;
        const rd_kafka_topic_result_t **results =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count);
        problem = count != 1 ? "no result for the topic"
                  : rd_kafka_topic_result_error(results[0]) ? rd_kafka_topic_result_error_string(results[0])
                                                            : NULL;
    }
    if (problem) fprintf(stderr, "create_topic: %s\n", problem);
    if (event) rd_kafka_event_destroy(event);
    rd_kafka_NewTopic_destroy(topic);
    rd_kafka_queue_destroy(queue);
    rd_kafka_destroy(client);
    return problem ? 1 : 0;
}
