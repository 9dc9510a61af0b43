#define _GNU_SOURCE
// rte_bpf_convert and rte_eth_read_clock are experimental in DPDK 22.11.
#define ALLOW_EXPERIMENTAL_API
#include "cdpdk.h"

#include <errno.h>
#include <rte_hash_crc.h>
#include <rte_thash.h>

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

int CDPDK_rte_eth_read_clock(uint16_t port, uint64_t *clock) { return rte_eth_read_clock(port, clock); }

void CDPDK_rte_lcore_cpuset(unsigned int lcore, cpu_set_t *set) { *set = rte_lcore_cpuset(lcore); }

uint32_t CDPDK_rte_hash_crc(const void *key, uint32_t length, uint32_t initial) {
    return rte_hash_crc(key, length, initial);
}

uint32_t CDPDK_rte_softrss(const uint32_t *tuple, uint32_t length, const uint8_t *key) {
    // rte_softrss only reads the tuple; its parameter is not const.
    return rte_softrss((uint32_t *)tuple, length, key);
}
