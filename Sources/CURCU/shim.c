#include "curcu.h"

void CURCU_rcu_register_thread(void) { urcu_qsbr_register_thread(); }
void CURCU_rcu_unregister_thread(void) { urcu_qsbr_unregister_thread(); }
void CURCU_synchronize_rcu(void) { urcu_qsbr_synchronize_rcu(); }
void CURCU_rcu_assign_pointer(void **slot, void *value) { rcu_assign_pointer(*slot, value); }

void CURCU_rcu_quiescent_state_call(void) { urcu_qsbr_quiescent_state(); }
void *CURCU_rcu_dereference_call(void *const *slot) { return rcu_dereference(*(void **)slot); }
