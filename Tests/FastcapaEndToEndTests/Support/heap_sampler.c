// For the soak (Scripts/soak): preloaded into the probe, a thread of its own
// appends glibc's malloc statistics (mallinfo2, summed over every arena) to the
// file FASTCAPA_HEAP_SAMPLES every 2 s: "in_use_kb system_kb". In use is what the
// process holds allocated (a leak grows it); system is what malloc took from
// the system, of which free memory glibc keeps is a part. The RSS alone cannot
// tell a leak from memory the allocator keeps (Reliability.md, "Soak").
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *sample(void *path) {
    for (;;) {
        sleep(2);
        struct mallinfo2 info = mallinfo2();
        FILE *file = fopen(path, "a");
        if (file == NULL) continue;
        fprintf(file, "%zu %zu\n", (info.uordblks + info.hblkhd) >> 10, (info.arena + info.hblkhd) >> 10);
        fclose(file);
    }
    return NULL;
}

__attribute__((constructor)) static void start(void) {
    char *path = getenv("FASTCAPA_HEAP_SAMPLES");
    if (path == NULL || *path == 0) return;
    // The probe takes its signals with sigwait: this thread must never receive one.
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    pthread_t thread;
    if (pthread_create(&thread, NULL, sample, path) == 0) pthread_detach(thread);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
}
