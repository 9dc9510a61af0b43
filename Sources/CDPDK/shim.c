#define _GNU_SOURCE
// rte_bpf_convert is experimental in DPDK 22.11.
#define ALLOW_EXPERIMENTAL_API
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

struct rte_bpf_prm *CDPDK_rte_bpf_convert(const void *classic) { return rte_bpf_convert(classic); }

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
