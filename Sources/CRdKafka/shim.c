#include "crdkafka.h"
