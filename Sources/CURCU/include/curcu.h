// CURCU: liburcu's QSBR flavour, its macros turned into functions.
//
// QSBR suits polling lcores: readers pay nothing to read; they announce a
// quiescent state once per loop and go offline before they sleep. The read
// side is static inline over liburcu's LGPL inline fast paths (a TLS store and
// a fence, no call); the update side, which blocks, is out of line.
#ifndef CURCU_H
#define CURCU_H

#define _LGPL_SOURCE 1
#include <urcu/urcu-qsbr.h>

// MARK: - read side (the lcores)

static inline void CURCU_rcu_quiescent_state(void) { urcu_qsbr_quiescent_state(); }
static inline void CURCU_rcu_thread_offline(void) { urcu_qsbr_thread_offline(); }
static inline void CURCU_rcu_thread_online(void) { urcu_qsbr_thread_online(); }
/// rcu_dereference for a `void *` slot.
static inline void *CURCU_rcu_dereference(void *const *slot) { return rcu_dereference(*(void **)slot); }

// MARK: - registration and update side (out of line)

void CURCU_rcu_register_thread(void);
void CURCU_rcu_unregister_thread(void);
/// Waits until every registered reader has passed a quiescent state.
/// Never call it from a registered, online reader thread.
void CURCU_synchronize_rcu(void);
/// rcu_assign_pointer for a `void *` slot.
void CURCU_rcu_assign_pointer(void **slot, void *value);

// MARK: - the same read side out of line (benchmarks compare the two)

void CURCU_rcu_quiescent_state_call(void);
void *CURCU_rcu_dereference_call(void *const *slot);

#endif
