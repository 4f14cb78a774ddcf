/*
 * acks: the writer's "written up to here" mark (see acks.h).
 *
 * Each slot has its own cache line: the writer stores into the slots of
 * the connections in its batch while their loops read them.  A slot's
 * small lock guards its wake handle and its state changes, so that the
 * writer never signals a handle its connection is closing; it is taken
 * only for slots in use, once per slot per batch, never for connections
 * that need no acknowledgement.
 */
#include "acks.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>

enum { SLOT_FREE = 0, SLOT_OPEN, SLOT_ORPHAN };

struct acks_slot {
    _Atomic uint64_t written;
    _Atomic uint32_t state;
    _Atomic bool failed;
    _Atomic bool waiting;
    atomic_flag lock;
    uint64_t sent;   /* records handed over, set by acks_close() */
    uv_async_t *wake;
} __attribute__((aligned(64)));

static struct acks_slot slots[ACKS_MAX + 1]; /* [0] unused: ack 0 is "none" */
static _Atomic uint32_t next_hint = 1;

static void slot_lock(struct acks_slot *s)
{
    while (atomic_flag_test_and_set_explicit(&s->lock, memory_order_acquire))
        sched_yield();
}

static void slot_unlock(struct acks_slot *s)
{
    atomic_flag_clear_explicit(&s->lock, memory_order_release);
}

int acks_open(uv_async_t *wake, uint32_t *id)
{
    uint32_t start = atomic_load_explicit(&next_hint, memory_order_relaxed);
    for (uint32_t k = 0; k < ACKS_MAX; k++) {
        uint32_t i = (start + k - 1) % ACKS_MAX + 1;
        struct acks_slot *s = &slots[i];
        uint32_t free_ = SLOT_FREE;
        if (atomic_load_explicit(&s->state, memory_order_relaxed) != SLOT_FREE)
            continue;
        slot_lock(s);
        if (atomic_compare_exchange_strong(&s->state, &free_, SLOT_OPEN)) {
            atomic_store_explicit(&s->written, 0, memory_order_relaxed);
            atomic_store_explicit(&s->failed, false, memory_order_relaxed);
            atomic_store_explicit(&s->waiting, false, memory_order_relaxed);
            s->sent = 0;
            s->wake = wake;
            slot_unlock(s);
            atomic_store_explicit(&next_hint, i % ACKS_MAX + 1, memory_order_relaxed);
            *id = i;
            return 0;
        }
        slot_unlock(s);
    }
    return -EAGAIN;
}

uint64_t acks_written(uint32_t id)
{
    return atomic_load_explicit(&slots[id].written, memory_order_acquire);
}

bool acks_failed(uint32_t id)
{
    return atomic_load_explicit(&slots[id].failed, memory_order_acquire);
}

void acks_wait(uint32_t id, bool waiting)
{
    atomic_store_explicit(&slots[id].waiting, waiting, memory_order_seq_cst);
}

void acks_close(uint32_t id, uint64_t sent)
{
    struct acks_slot *s = &slots[id];
    slot_lock(s);
    s->wake = NULL;
    s->sent = sent;
    if (atomic_load_explicit(&s->written, memory_order_relaxed) >= sent)
        atomic_store_explicit(&s->state, SLOT_FREE, memory_order_release);
    else
        atomic_store_explicit(&s->state, SLOT_ORPHAN, memory_order_release);
    slot_unlock(s);
}

void acks_note(struct acks_batch *b, const struct record *r, bool ok)
{
    uint32_t id = r->ack;
    if (id == 0 || id > ACKS_MAX)
        return;
    if (b->count[id]++ == 0)
        b->ids[b->n++] = id;
    if (!ok)
        b->failed[id] = 1;
}

void acks_publish(struct acks_batch *b)
{
    for (uint32_t k = 0; k < b->n; k++) {
        uint32_t id = b->ids[k];
        struct acks_slot *s = &slots[id];
        slot_lock(s);
        if (b->failed[id])
            atomic_store_explicit(&s->failed, true, memory_order_release);
        uint64_t w = atomic_load_explicit(&s->written, memory_order_relaxed) + b->count[id];
        atomic_store_explicit(&s->written, w, memory_order_seq_cst);
        uint32_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
        if (st == SLOT_ORPHAN && w >= s->sent)
            atomic_store_explicit(&s->state, SLOT_FREE, memory_order_release);
        else if (st == SLOT_OPEN && s->wake != NULL &&
                 atomic_load_explicit(&s->waiting, memory_order_seq_cst))
            uv_async_send(s->wake);
        slot_unlock(s);
        b->count[id] = 0;
        b->failed[id] = 0;
    }
    b->n = 0;
}
