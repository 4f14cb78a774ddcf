/*
 * budget: a count of bytes in flight between threads, with a soft limit.
 *
 * The queue between the ingest loops and the writer is bounded in records
 * by the channel; a budget bounds it in bytes too, because a record count
 * alone lets memory follow the message size (8192 records of 2 KB each
 * are 17 MB, of 64 KB each 512 MB).  Producers charge what they hand
 * over; the consumer credits it back once freed.  A producer that finds
 * the budget spent stops producing and calls budget_wait(); the credit
 * that brings the count back under the limit calls the wake function
 * once, from the crediting thread.
 *
 * The limit is soft: a producer checks before a batch and charges after
 * it, so the count can pass the limit by one batch per producer.  That
 * keeps the check to one load and lets a single message larger than the
 * limit through (when nothing else is in flight), instead of wedging.
 *
 * Any thread may call any function; budget_set_wake() must happen before
 * the threads that charge and credit start.
 */
#ifndef LOGRAIL_BUDGET_H
#define LOGRAIL_BUDGET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef void (*budget_wake_fn)(void *arg);

struct budget {
    _Atomic size_t used;
    _Atomic size_t peak; /* most bytes ever in flight */
    size_t limit; /* 0: no limit */
    _Atomic unsigned waiting;
    _Atomic unsigned long long waits; /* budget_wait() calls that had to wait */
    budget_wake_fn wake;
    void *wake_arg;
};

/* limit 0 means unlimited: budget_over() is then always false. */
void budget_init(struct budget *b, size_t limit);
void budget_set_wake(struct budget *b, budget_wake_fn fn, void *arg);

/* Bytes in flight now, and the most ever. */
size_t budget_used(const struct budget *b);
size_t budget_peak(const struct budget *b);

/* true while the bytes in flight are at or above the limit. */
bool budget_over(const struct budget *b);

void budget_charge(struct budget *b, size_t n);

/* Give back n bytes charged before.  When that takes the count under the
 * limit and a producer waits, calls the wake function (on this thread). */
void budget_credit(struct budget *b, size_t n);

/* A producer found budget_over() true: ask to be woken.  Returns true when
 * the caller should wait (the wake function will run), false when the
 * budget freed up meanwhile and the caller should go on now. */
bool budget_wait(struct budget *b);

#endif
