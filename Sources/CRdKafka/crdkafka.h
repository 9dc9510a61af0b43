// librdkafka and its mock cluster, as one system module (pkg-config: rdkafka).
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
