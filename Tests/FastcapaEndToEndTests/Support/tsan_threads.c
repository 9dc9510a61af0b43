// For the ThreadSanitizer run (Scripts/tsan): librdkafka starts its threads with
// C11 thrd_create, which this toolchain's TSan runtime does not intercept, so
// those threads are unknown to TSan and crash it (SEGV in the runtime) as soon
// as they call instrumented code (fastcapa's partitioner and callbacks).
// Preloaded, this thrd_create starts them through pthread_create, which TSan
// intercepts.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

struct start { thrd_start_t function; void *argument; };

static void *trampoline(void *raw) {
    struct start start = *(struct start *)raw;
    free(raw);
    return (void *)(intptr_t)start.function(start.argument);
}

int thrd_create(thrd_t *thread, thrd_start_t function, void *argument) {
    struct start *start = malloc(sizeof *start);
    if (!start) return thrd_nomem;
    start->function = function;
    start->argument = argument;
    int status = pthread_create((pthread_t *)thread, NULL, trampoline, start);
    if (status == 0) return thrd_success;
    free(start);
    return status == ENOMEM || status == EAGAIN ? thrd_nomem : thrd_error;
}

// Joined and detached through the intercepted calls too, so that TSan sees the
// threads end (glibc's own thrd_join bypasses them, and a reused thread id then
// trips TSan's thread registry).
int thrd_join(thrd_t thread, int *result) {
    void *value = NULL;
    if (pthread_join((pthread_t)thread, &value) != 0) return thrd_error;
    if (result) *result = (int)(intptr_t)value;
    return thrd_success;
}

int thrd_detach(thrd_t thread) { return pthread_detach((pthread_t)thread) == 0 ? thrd_success : thrd_error; }

_Noreturn void thrd_exit(int result) { pthread_exit((void *)(intptr_t)result); }
