// Records which threads call DPDK's NIC statistics and link state, for the
// reliability test: ethdev statistics are not thread-safe, so one thread (the
// sampler) must own them, and the link is read there too, never on an lcore. Preloaded into the probe (LD_PRELOAD); at exit it writes
//   "<function> <thread id> <thread name> <calls>"
// once per distinct calling thread to $FASTCAPA_CALLS_REPORT.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_CALLERS 64
static struct { const char *function; long tid; char name[16]; long calls; } callers[MAX_CALLERS];
static int count;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void record(const char *function) {
    long tid = syscall(SYS_gettid);
    pthread_mutex_lock(&lock);
    int known = 0;
    for (int i = 0; i < count; i++) {
        if (callers[i].tid == tid && callers[i].function == function) {
            callers[i].calls++;
            known = 1;
        }
    }
    if (!known && count < MAX_CALLERS) {
        callers[count].function = function;
        callers[count].tid = tid;
        callers[count].calls = 1;
        pthread_getname_np(pthread_self(), callers[count].name, sizeof(callers[count].name));
        count++;
    }
    pthread_mutex_unlock(&lock);
}

struct rte_eth_stats;
struct rte_eth_xstat;

int rte_eth_stats_get(uint16_t port, struct rte_eth_stats *stats) {
    static int (*real)(uint16_t, struct rte_eth_stats *);
    if (!real) real = (int (*)(uint16_t, struct rte_eth_stats *))dlsym(RTLD_NEXT, "rte_eth_stats_get");
    record("rte_eth_stats_get");
    return real(port, stats);
}

int rte_eth_xstats_get(uint16_t port, struct rte_eth_xstat *xstats, unsigned int n) {
    static int (*real)(uint16_t, struct rte_eth_xstat *, unsigned int);
    if (!real) real = (int (*)(uint16_t, struct rte_eth_xstat *, unsigned int))dlsym(RTLD_NEXT, "rte_eth_xstats_get");
    record("rte_eth_xstats_get");
    return real(port, xstats, n);
}

struct rte_eth_link;

int rte_eth_link_get_nowait(uint16_t port, struct rte_eth_link *link) {
    static int (*real)(uint16_t, struct rte_eth_link *);
    if (!real) real = (int (*)(uint16_t, struct rte_eth_link *))dlsym(RTLD_NEXT, "rte_eth_link_get_nowait");
    record("rte_eth_link_get_nowait");
    return real(port, link);
}

__attribute__((destructor)) static void report(void) {
    const char *path = getenv("FASTCAPA_CALLS_REPORT");
    if (!path) return;
    FILE *file = fopen(path, "w");
    if (!file) return;
    for (int i = 0; i < count; i++) fprintf(file, "%s %ld %s %ld\n", callers[i].function, callers[i].tid, callers[i].name, callers[i].calls);
    fclose(file);
}
