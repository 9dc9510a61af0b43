#define _LGPL_SOURCE 1 // inline the read-side fast paths
#include <urcu/urcu-qsbr.h>
#include "curcu.h"

void cur_register_thread(void) { urcu_qsbr_register_thread(); }
void cur_unregister_thread(void) { urcu_qsbr_unregister_thread(); }
void cur_quiescent_state(void) { urcu_qsbr_quiescent_state(); }
void cur_thread_offline(void) { urcu_qsbr_thread_offline(); }
void cur_thread_online(void) { urcu_qsbr_thread_online(); }
void cur_synchronize(void) { urcu_qsbr_synchronize_rcu(); }
void *cur_dereference(void *const *slot) { return rcu_dereference(*(void **)slot); }
void cur_assign(void **slot, void *value) { rcu_assign_pointer(*slot, value); }
void *cur_exchange(void **slot, void *value) { return rcu_xchg_pointer(slot, value); }
