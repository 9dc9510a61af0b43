// Counts heap allocations made on DPDK worker lcores, for the hot-loop test.
// Preloaded into the probe (LD_PRELOAD); at exit it writes
//   "<thread name> <malloc family calls> <Swift object allocations>"
// per worker thread to $FASTCAPA_ALLOC_REPORT.
//
// malloc is wrapped through glibc's __libc_* entry points (no dlsym recursion);
// Swift's allocation entry points are wrapped through dlsym(RTLD_NEXT).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

#define MAX_WORKERS 64
static struct { char name[16]; unsigned long mallocs, swift_allocs; } workers[MAX_WORKERS];

// Cached once known: EAL names a worker thread after it starts, so a thread not
// (yet) named rte-worker-N is asked again next time.
static __thread int slot;

static int worker_slot(void) {
    if (slot > 0) return slot;
    char name[16] = {0};
    if (pthread_getname_np(pthread_self(), name, sizeof(name)) != 0) return 0;
    if (strncmp(name, "rte-worker-", 11) != 0) return 0;
    int index = atoi(name + 11);
    if (index <= 0 || index >= MAX_WORKERS) return 0;
    memcpy(workers[index].name, name, sizeof(name));
    slot = index;
    return slot;
}

static void count_malloc(void) {
    int s = worker_slot();
    if (s > 0) __atomic_add_fetch(&workers[s].mallocs, 1, __ATOMIC_RELAXED);
}

void *malloc(size_t size) { count_malloc(); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { count_malloc(); return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { count_malloc(); return __libc_realloc(p, size); }
int posix_memalign(void **out, size_t alignment, size_t size) {
    count_malloc();
    void *p = __libc_memalign(alignment, size);
    if (!p) return 12;
    *out = p;
    return 0;
}

static void count_swift(void) {
    int s = worker_slot();
    if (s > 0) __atomic_add_fetch(&workers[s].swift_allocs, 1, __ATOMIC_RELAXED);
}

void *swift_allocObject(void *metadata, size_t size, size_t align) {
    static void *(*real)(void *, size_t, size_t);
    if (!real) real = (void *(*)(void *, size_t, size_t))dlsym(RTLD_NEXT, "swift_allocObject");
    count_swift();
    return real(metadata, size, align);
}

void *swift_slowAlloc(size_t size, size_t align) {
    static void *(*real)(size_t, size_t);
    if (!real) real = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "swift_slowAlloc");
    count_swift();
    return real(size, align);
}

__attribute__((destructor)) static void report(void) {
    const char *path = getenv("FASTCAPA_ALLOC_REPORT");
    if (!path) return;
    FILE *file = fopen(path, "w");
    if (!file) return;
    for (int i = 1; i < MAX_WORKERS; i++) {
        if (workers[i].name[0]) fprintf(file, "%s %lu %lu\n", workers[i].name, workers[i].mallocs, workers[i].swift_allocs);
    }
    fclose(file);
}
