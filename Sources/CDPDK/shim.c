#define _GNU_SOURCE
#include "cdpdk.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

int cfc_register_capture_time_field(void) {
    static const struct rte_mbuf_dynfield desc = {
        .name = "fastcapa_capture_time_us",
        .size = sizeof(uint64_t),
        .align = __alignof__(uint64_t),
    };
    return rte_mbuf_dynfield_register(&desc);
}

bool cfc_lookup_rx_timestamp(int *offset, uint64_t *flag) {
    int field = rte_mbuf_dynfield_lookup(RTE_MBUF_DYNFIELD_TIMESTAMP_NAME, NULL);
    int bit = rte_mbuf_dynflag_lookup(RTE_MBUF_DYNFLAG_RX_TIMESTAMP_NAME, NULL);
    if (field < 0 || bit < 0) {
        return false;
    }
    *offset = field;
    *flag = 1ULL << bit;
    return true;
}

static volatile sig_atomic_t stop_count;
static volatile sig_atomic_t stop_signal;
static int forced_status = 1;

static void on_stop_signal(int signo) {
    stop_signal = signo;
    stop_count += 1;
    if (stop_count >= 2) {
        static const char msg[] = "fastcapa: second stop signal, exiting now without draining\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof(msg) - 1);
        (void)ignored;
        _exit(forced_status);
    }
}

void cfc_install_stop_signals(int forced_exit_status) {
    forced_status = forced_exit_status;
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    // A parent may have left them blocked (the mask is inherited): unblock them
    // before EAL and librdkafka start threads, which inherit this thread's mask.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &stop_signals, NULL);
}

static volatile sig_atomic_t reload_count;
static volatile sig_atomic_t fault_count;

static void on_reload_signal(int signo) { (void)signo; reload_count += 1; }
static void on_fault_signal(int signo) { (void)signo; fault_count += 1; }

static void install(int signo, void (*handler)(int)) {
    struct sigaction action;
    memset(&action, 0, sizeof(action));
    action.sa_handler = handler;
    sigemptyset(&action.sa_mask);
    sigaction(signo, &action, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

void cfc_install_reload_signal(void) { install(SIGHUP, on_reload_signal); }
void cfc_install_fault_signal(void) { install(SIGUSR2, on_fault_signal); }
unsigned long cfc_reload_requests(void) { return (unsigned long)reload_count; }
unsigned long cfc_fault_requests(void) { return (unsigned long)fault_count; }

bool cfc_stop_requested(void) { return stop_count > 0; }
int cfc_stop_signal(void) { return stop_signal; }


static int cpus_of(const cpu_set_t *set, int *cpus, int capacity) {
    int count = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, set)) {
            if (count < capacity) {
                cpus[count] = cpu;
            }
            count++;
        }
    }
    return count;
}

int cfc_thread_cpus(int *cpus, int capacity) {
    cpu_set_t set;
    CPU_ZERO(&set);
    int error = pthread_getaffinity_np(pthread_self(), sizeof(set), &set);
    if (error != 0) {
        errno = error;
        return -1;
    }
    return cpus_of(&set, cpus, capacity);
}

int cfc_lcore_cpus(unsigned int lcore, int *cpus, int capacity) {
    rte_cpuset_t set = rte_lcore_cpuset(lcore);
    return cpus_of(&set, cpus, capacity);
}

int cfc_set_thread_cpus(const int *cpus, int count) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int i = 0; i < count; i++) {
        if (cpus[i] < 0 || cpus[i] >= CPU_SETSIZE) {
            return EINVAL;
        }
        CPU_SET(cpus[i], &set);
    }
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int cfc_cpu_set_size(void) { return CPU_SETSIZE; }

int cfc_name_this_thread(const char *name) {
    char truncated[16];
    snprintf(truncated, sizeof(truncated), "%s", name);
    return pthread_setname_np(pthread_self(), truncated);
}
