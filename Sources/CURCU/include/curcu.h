// CURCU: liburcu's QSBR flavour, with its macros turned into functions.
//
// QSBR suits polling lcores: readers pay nothing to read, they only announce a
// quiescent state once per loop and go offline before they sleep.
#ifndef CURCU_H
#define CURCU_H

#include <stdbool.h>

void cur_register_thread(void);
void cur_unregister_thread(void);
void cur_quiescent_state(void);
void cur_thread_offline(void);
void cur_thread_online(void);
/// Waits until every registered reader has passed a quiescent state.
/// Never call it from a registered, online reader thread.
void cur_synchronize(void);
/// rcu_dereference / rcu_assign_pointer / rcu_xchg_pointer for `void *` slots.
void *cur_dereference(void *const *slot);
void cur_assign(void **slot, void *value);
void *cur_exchange(void **slot, void *value);

#endif
