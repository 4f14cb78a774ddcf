#include "budget.h"

/* The waiting flag and the count are the two halves of a Dekker pair: a
 * producer raises the flag and then looks at the count; the consumer
 * lowers the count and then looks at the flag (all sequentially
 * consistent).  Either the producer sees the room, or the consumer sees
 * the flag, takes it down with one exchange and wakes: one wake-up per
 * wait however many credits pass meanwhile. */

void budget_init(struct budget *b, size_t limit)
{
    atomic_init(&b->used, 0);
    atomic_init(&b->peak, 0);
    b->limit = limit;
    atomic_init(&b->waiting, 0);
    atomic_init(&b->waits, 0);
    b->wake = NULL;
    b->wake_arg = NULL;
}

void budget_set_wake(struct budget *b, budget_wake_fn fn, void *arg)
{
    b->wake = fn;
    b->wake_arg = arg;
}

size_t budget_used(const struct budget *b)
{
    return atomic_load_explicit(&b->used, memory_order_relaxed);
}

size_t budget_peak(const struct budget *b)
{
    return atomic_load_explicit(&b->peak, memory_order_relaxed);
}

bool budget_over(const struct budget *b)
{
    return b->limit != 0 && atomic_load_explicit(&b->used, memory_order_relaxed) >= b->limit;
}

void budget_charge(struct budget *b, size_t n)
{
    size_t now = atomic_fetch_add_explicit(&b->used, n, memory_order_relaxed) + n;
    size_t peak = atomic_load_explicit(&b->peak, memory_order_relaxed);
    while (now > peak && !atomic_compare_exchange_weak_explicit(&b->peak, &peak, now,
                                                                memory_order_relaxed,
                                                                memory_order_relaxed)) {
    }
}

void budget_credit(struct budget *b, size_t n)
{
    size_t before = atomic_fetch_sub_explicit(&b->used, n, memory_order_seq_cst);
    if (b->limit == 0 || before - n >= b->limit)
        return;
    if (atomic_load_explicit(&b->waiting, memory_order_seq_cst) &&
        atomic_exchange_explicit(&b->waiting, 0, memory_order_seq_cst) && b->wake != NULL)
        b->wake(b->wake_arg);
}

bool budget_wait(struct budget *b)
{
    atomic_store_explicit(&b->waiting, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&b->used, memory_order_seq_cst) < b->limit || b->limit == 0)
        return false; /* the flag may stay up: one needless wake-up, later */
    atomic_fetch_add_explicit(&b->waits, 1, memory_order_relaxed);
    return true;
}
