#define _GNU_SOURCE
#include "cdpdk.h"

int CDPDK_rte_mbuf_dynfield_register_u64(const char *name) {
    struct rte_mbuf_dynfield descriptor = {
        .size = sizeof(uint64_t),
        .align = __alignof__(uint64_t),
    };
    if (snprintf(descriptor.name, sizeof(descriptor.name), "%s", name) >= (int)sizeof(descriptor.name)) {
        rte_errno = ENAMETOOLONG;
        return -1;
    }
    return rte_mbuf_dynfield_register(&descriptor);
}

void CDPDK_CPU_ZERO(cpu_set_t *set) { CPU_ZERO(set); }
void CDPDK_CPU_SET(int cpu, cpu_set_t *set) { CPU_SET(cpu, set); }
bool CDPDK_CPU_ISSET(int cpu, const cpu_set_t *set) { return CPU_ISSET(cpu, set); }
int CDPDK_CPU_SETSIZE(void) { return CPU_SETSIZE; }
void CDPDK_rte_lcore_cpuset(unsigned int lcore, cpu_set_t *set) { *set = rte_lcore_cpuset(lcore); }

int CDPDK_pthread_getaffinity_np(cpu_set_t *set) {
    return pthread_getaffinity_np(pthread_self(), sizeof(*set), set);
}

int CDPDK_pthread_setaffinity_np(const cpu_set_t *set) {
    return pthread_setaffinity_np(pthread_self(), sizeof(*set), set);
}

int CDPDK_pthread_setname_np(const char *name) {
    return pthread_setname_np(pthread_self(), name);
}

FILE *CDPDK_fopencookie(void *cookie, ssize_t (*write)(void *cookie, const char *buffer, size_t size)) {
    cookie_io_functions_t functions = {.read = NULL, .write = write, .seek = NULL, .close = NULL};
    return fopencookie(cookie, "w", functions);
}
