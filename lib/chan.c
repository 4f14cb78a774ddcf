/*
 * chan: the MPSC channel of chan.h.
 *
 * Three flavours, as in Rust's std::sync::mpsc:
 *
 *   array  (bounded, capacity > 0): a ring of slots with per-slot sequence
 *          numbers (D. Vyukov's bounded queue).  Senders claim a position
 *          with one compare-and-swap on `tail`; the receiver alone advances
 *          `head`.  No lock and no system call unless a thread must sleep.
 *   list   (unbounded): a growable ring behind a mutex.
 *   zero   (rendezvous): one hand-over slot behind a mutex.
 *
 * Sleeping in the array flavour uses futexes as event counts: a thread that
 * wants to sleep reads the counter, raises a "wake me" flag, re-checks the
 * ring, and only then waits on the counter's old value.  The other side
 * makes its change, looks at the flag, and only when it is raised takes it
 * down (one exchange), bumps the counter and wakes.  Either the sleeper's
 * re-check sees the change or the waker sees the flag: no lost wake-up, no
 * system call while nobody sleeps, and one wake-up per sleep however many
 * items pass meanwhile.
 *
 * The two directions pay for that ordering differently.  A sender's claim
 * of a slot is already a sequentially consistent compare-and-swap on tail,
 * so the receiver re-checks tail (not the slot) before sleeping and the
 * sender needs no fence of its own: it costs one load per push.  The
 * receiver frees slots with plain release stores, so it issues one full
 * fence per batch before looking at the senders' flag.
 *
 * Before sleeping a thread spins briefly and then gives up the processor a
 * few times, because on a machine with few cores the other side usually
 * makes progress within a time slice, and a sleep plus a wake-up costs far
 * more than a yield.
 *
 * What costs most when neither side sleeps is cache-line traffic: a receiver
 * that polls right behind the senders moves every line of slots between
 * cores once per item or two instead of once per line.  So a blocking batch
 * receive that finds only a few items waits a couple of microseconds and
 * takes what arrived meanwhile (chan_bench, P = 1: batches of 2.5 items
 * became ~180 and the rate went from 14 to 55 M items/s).
 */
#include "chan.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define CACHELINE 64
#define SPIN_ROUNDS 6  /* busy-wait rounds, doubling the pause each time */
#define YIELD_ROUNDS 8 /* then this many sched_yield() before sleeping */
#define NO_DEADLINE UINT64_MAX
/* A blocking batch receive that finds fewer than COALESCE_MIN items waits
 * COALESCE_NS and takes what arrived meanwhile (see array_recv). */
#define COALESCE_MIN 64
#define COALESCE_NS 2000
#define HW_SAMPLE 64 /* a receiver reads tail for the high-water mark once per this many items */

enum flavour { FLAVOUR_ARRAY, FLAVOUR_LIST, FLAVOUR_ZERO };

struct chan {
    /* Read-only after creation. */
    enum flavour flavour;
    size_t item_size;
    size_t cap;       /* array and zero: the capacity */
    size_t slot_size; /* array: sequence number + item, padded (chan_new) */
    uint64_t mask;    /* array: cap - 1 when cap is a power of two */
    bool pow2;
    unsigned char *slots;

    /* Cache lines are grouped by who writes them, so that a line one side
     * reads on every item is not dirtied by the other side on every item. */

    /* Written by every send. */
    alignas(CACHELINE) _Atomic uint64_t tail;

    /* Written by every receive.  head is the receiver's alone; head_pub is
     * a copy for chan_stats() on other threads. */
    alignas(CACHELINE) uint64_t head;
    uint64_t hw_next; /* head at which recv_common() next reads tail */
    _Atomic uint64_t head_pub;
    _Atomic size_t high_water; /* raised by whoever sees a deeper buffer */

    /* Read by every send, written when the receiver goes to sleep. */
    alignas(CACHELINE) _Atomic uint32_t rx_want_wake;
    _Atomic bool rx_gone;

    /* Read by every receive, written when a sender goes to sleep or arms. */
    alignas(CACHELINE) _Atomic uint32_t tx_want_wake;
    _Atomic uint32_t armed_count;

    /* Written when a thread sleeps, wakes, or finds the ring full. */
    alignas(CACHELINE) _Atomic uint32_t rx_futex;
    _Atomic uint32_t tx_futex;
    _Atomic uint32_t tx_sleepers; /* blocked senders, for chan_stats() */
    _Atomic uint64_t full_events;

    /* Lifetime. */
    _Atomic size_t senders;
    _Atomic size_t refs; /* live handles: senders + receiver */

    /* Senders waiting for a chan_notify_fn, guarded by notify_lock. */
    pthread_mutex_t notify_lock;
    struct chan_tx *armed;

    /* list and zero flavours. */
    pthread_mutex_t mu;
    pthread_cond_t rx_cv;
    pthread_cond_t tx_cv;
    unsigned char *buf; /* list: ring of bcap items; zero: one item */
    size_t bcap, bhead, blen;
    unsigned rx_waiting;    /* zero: receivers blocked in recv */
    bool zero_full;         /* zero: an item is in the hand-over slot */
    uint64_t put_ticket;    /* zero: items placed so far */
    uint64_t take_ticket;   /* zero: items taken so far */
};

struct chan_tx {
    struct chan *c;
    chan_notify_fn notify;
    void *notify_arg;
    bool armed;             /* guarded by c->notify_lock */
    struct chan_tx *next;   /* in c->armed */
};

struct chan_rx {
    struct chan *c;
};

/* ---- small helpers ---------------------------------------------------- */

/* The full fence of the sleep/wake handshake.  GCC's ThreadSanitizer does
 * not support atomic_thread_fence(); there a seq_cst read-modify-write
 * stands in, which is a full barrier on the processors we run on.  TSan
 * finds data races through the acquire/release pairs, which are the same
 * in both builds; the fence only decides whether a sleeper is seen. */
#if defined(__SANITIZE_THREAD__)
static _Atomic unsigned tsan_fence_word;
#define full_fence() atomic_fetch_add_explicit(&tsan_fence_word, 0, memory_order_seq_cst)
#else
#define full_fence() atomic_thread_fence(memory_order_seq_cst)
#endif

static uint64_t deadline_after(uint64_t timeout_ns)
{
    if (timeout_ns == NO_DEADLINE)
        return NO_DEADLINE;
    uint64_t now = clock_mono_ns();
    return timeout_ns > NO_DEADLINE - now ? NO_DEADLINE - 1 : now + timeout_ns;
}

static void futex_wait(_Atomic uint32_t *addr, uint32_t expected, uint64_t deadline)
{
    struct timespec rel, *relp = NULL;
    if (deadline != NO_DEADLINE) {
        uint64_t now = clock_mono_ns();
        uint64_t left = deadline > now ? deadline - now : 0;
        rel.tv_sec = (time_t)(left / 1000000000u);
        rel.tv_nsec = (long)(left % 1000000000u);
        relp = &rel;
    }
    /* EINTR, EAGAIN and ETIMEDOUT all send the caller back to its loop,
     * which re-checks the channel and the deadline. */
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, expected, relp, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr, int n)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

/* Raise the high-water mark to depth.  A plain load first: the mark
 * rarely moves, so the common case writes nothing. */
static void raise_high_water(struct chan *c, size_t depth)
{
    size_t hw = atomic_load_explicit(&c->high_water, memory_order_relaxed);
    while (depth > hw &&
           !atomic_compare_exchange_weak_explicit(&c->high_water, &hw, depth,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Busy-wait about ns nanoseconds without touching shared memory. */
static void pause_for(uint64_t ns)
{
    uint64_t until = clock_mono_ns() + ns;
    do {
        for (int i = 0; i < 8; i++)
            cpu_relax();
    } while (clock_mono_ns() < until);
}

/* One step of the spin-then-yield back-off; false once it is time to sleep. */
static bool backoff(unsigned *step)
{
    if (*step < SPIN_ROUNDS) {
        for (unsigned i = 0; i < (1u << *step); i++)
            cpu_relax();
    } else if (*step < SPIN_ROUNDS + YIELD_ROUNDS) {
        sched_yield();
    } else {
        return false;
    }
    (*step)++;
    return true;
}

/* Wait on cv; returns false once the deadline has passed. */
static bool cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t deadline)
{
    if (deadline == NO_DEADLINE) {
        pthread_cond_wait(cv, mu);
        return true;
    }
    if (clock_mono_ns() >= deadline)
        return false;
    /* The condition variables use CLOCK_MONOTONIC (see chan_new). */
    struct timespec ts = clock_timespec(deadline);
    pthread_cond_timedwait(cv, mu, &ts);
    return true;
}

/* ---- creation and lifetime -------------------------------------------- */

static void chan_free(struct chan *c)
{
    pthread_mutex_destroy(&c->notify_lock);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->rx_cv);
    pthread_cond_destroy(&c->tx_cv);
    free(c->slots);
    free(c->buf);
    free(c);
}

static void chan_unref(struct chan *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        chan_free(c);
}

static int chan_new(enum flavour fl, size_t cap, size_t item_size, chan_tx **txp, chan_rx **rxp)
{
    if (item_size == 0 || txp == NULL || rxp == NULL)
        return -EINVAL;
    struct chan *c = NULL;
    chan_tx *tx = NULL;
    chan_rx *rx = NULL;
    int err = -ENOMEM;

    if (posix_memalign((void **)&c, CACHELINE, sizeof(*c)) != 0)
        return -ENOMEM;
    memset(c, 0, sizeof(*c));
    c->flavour = fl;
    c->item_size = item_size;
    c->cap = cap;
    pthread_mutex_init(&c->notify_lock, NULL);
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->rx_cv, &ca);
    pthread_cond_init(&c->tx_cv, &ca);
    pthread_condattr_destroy(&ca);

    if (fl == FLAVOUR_ARRAY) {
        size_t isz = (item_size + 7) & ~(size_t)7;
        if (isz < item_size || isz > SIZE_MAX / 2) {
            err = -EINVAL;
            goto fail;
        }
        /* No slot straddles a cache line: a sender filling one slot must
         * not take the line from under the receiver reading its neighbour
         * (+25 % with 128-byte items in chan_bench).  Small slots pack a
         * line exactly (16, 32 or 64 bytes); larger ones take whole lines. */
        size_t ssz = isz + 8;
        if (ssz <= CACHELINE) {
            size_t p2 = 16;
            while (p2 < ssz)
                p2 *= 2;
            ssz = p2;
        } else {
            ssz = (ssz + CACHELINE - 1) / CACHELINE * CACHELINE;
        }
        if (cap > SIZE_MAX / ssz) {
            err = -EINVAL;
            goto fail;
        }
        c->slot_size = ssz;
        c->pow2 = (cap & (cap - 1)) == 0;
        c->mask = cap - 1;
        if (posix_memalign((void **)&c->slots, CACHELINE, cap * c->slot_size) != 0)
            goto fail;
        /* Sequence numbers count in halves: slot of position p holds 2p
         * while free for the sender of p, 2p + 1 once that item is
         * published, and 2(p + cap) once received.  With whole steps a
         * capacity of 1 could not tell "published" from "free again". */
        for (size_t i = 0; i < cap; i++)
            atomic_init((_Atomic uint64_t *)(c->slots + i * c->slot_size), 2 * (uint64_t)i);
    } else if (fl == FLAVOUR_ZERO) {
        c->buf = malloc(item_size);
        if (c->buf == NULL)
            goto fail;
    }

    tx = calloc(1, sizeof(*tx));
    rx = calloc(1, sizeof(*rx));
    if (tx == NULL || rx == NULL)
        goto fail;
    tx->c = c;
    rx->c = c;
    atomic_init(&c->senders, 1);
    atomic_init(&c->refs, 2);
    *txp = tx;
    *rxp = rx;
    return 0;

fail:
    free(tx);
    free(rx);
    chan_free(c);
    return err;
}

int chan_bounded(size_t capacity, size_t item_size, chan_tx **tx, chan_rx **rx)
{
    return chan_new(capacity == 0 ? FLAVOUR_ZERO : FLAVOUR_ARRAY, capacity, item_size, tx, rx);
}

int chan_unbounded(size_t item_size, chan_tx **tx, chan_rx **rx)
{
    return chan_new(FLAVOUR_LIST, 0, item_size, tx, rx);
}

chan_tx *chan_sender_clone(chan_tx *tx)
{
    if (tx == NULL)
        return NULL;
    chan_tx *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->c = tx->c;
    /* The caller owns a live sender, so the counts cannot be at zero. */
    atomic_fetch_add_explicit(&tx->c->senders, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&tx->c->refs, 1, memory_order_relaxed);
    return n;
}

static void disarm(struct chan *c, chan_tx *tx)
{
    pthread_mutex_lock(&c->notify_lock);
    if (tx->armed) {
        for (chan_tx **p = &c->armed; *p != NULL; p = &(*p)->next) {
            if (*p == tx) {
                *p = tx->next;
                break;
            }
        }
        tx->armed = false;
        atomic_fetch_sub_explicit(&c->armed_count, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&c->notify_lock);
}

/* Wake every thread asleep on one side (the receiver: rx_futex/rx_cv; the
 * senders: tx_futex/tx_cv), after a disconnection that they must see. */
static void wake_side(struct chan *c, _Atomic uint32_t *futex, pthread_cond_t *cv)
{
    if (c->flavour == FLAVOUR_ARRAY) {
        atomic_fetch_add_explicit(futex, 1, memory_order_seq_cst);
        futex_wake(futex, INT_MAX);
    } else {
        pthread_mutex_lock(&c->mu);
        pthread_cond_broadcast(cv);
        pthread_mutex_unlock(&c->mu);
    }
}

void chan_sender_drop(chan_tx *tx)
{
    if (tx == NULL)
        return;
    struct chan *c = tx->c;
    disarm(c, tx);
    /* The last sender: the receiver must wake to see DISCONNECTED. */
    if (atomic_fetch_sub_explicit(&c->senders, 1, memory_order_acq_rel) == 1)
        wake_side(c, &c->rx_futex, &c->rx_cv);
    free(tx);
    chan_unref(c);
}

/* Call every armed sender's notify function and disarm it.  The calls are
 * made under notify_lock so that a sender being dropped (which takes the
 * lock to disarm) cannot free what its function points to mid-call. */
static void fire_notifies(struct chan *c)
{
    pthread_mutex_lock(&c->notify_lock);
    chan_tx *t = c->armed;
    c->armed = NULL;
    atomic_store_explicit(&c->armed_count, 0, memory_order_relaxed);
    while (t != NULL) {
        chan_tx *next = t->next;
        t->armed = false;
        t->next = NULL;
        t->notify(t->notify_arg);
        t = next;
    }
    pthread_mutex_unlock(&c->notify_lock);
}

void chan_receiver_drop(chan_rx *rx)
{
    if (rx == NULL)
        return;
    struct chan *c = rx->c;
    atomic_store_explicit(&c->rx_gone, true, memory_order_seq_cst);
    wake_side(c, &c->tx_futex, &c->tx_cv);
    fire_notifies(c);
    free(rx);
    chan_unref(c);
}

void chan_sender_set_notify(chan_tx *tx, chan_notify_fn fn, void *arg)
{
    if (tx == NULL)
        return;
    disarm(tx->c, tx);
    tx->notify = fn;
    tx->notify_arg = arg;
}

/* Put tx on the armed list.  The seq_cst increment is the sender's half of
 * the fence pairing with wake_senders(): after it, the caller re-checks. */
static void arm(struct chan *c, chan_tx *tx)
{
    pthread_mutex_lock(&c->notify_lock);
    if (!tx->armed) {
        tx->armed = true;
        tx->next = c->armed;
        c->armed = tx;
        atomic_fetch_add_explicit(&c->armed_count, 1, memory_order_seq_cst);
    }
    pthread_mutex_unlock(&c->notify_lock);
}

/* ---- array flavour ---------------------------------------------------- */

static inline _Atomic uint64_t *slot_seq(struct chan *c, uint64_t pos)
{
    uint64_t i = c->pow2 ? (pos & c->mask) : (pos % c->cap);
    return (_Atomic uint64_t *)(c->slots + i * c->slot_size);
}

static inline void *slot_item(_Atomic uint64_t *seq)
{
    return (unsigned char *)seq + 8;
}

static inline void copy_item(void *dst, const void *src, size_t n)
{
    /* Pointers are the common item; a fixed-size copy avoids a call. */
    if (n == sizeof(void *))
        memcpy(dst, src, sizeof(void *));
    else
        memcpy(dst, src, n);
}

/* If the flag is raised, take it down and wake whoever raised it.  The
 * plain load first keeps the common case (nobody asleep) to a read of a
 * line that stays shared. */
static inline void wake_flagged(_Atomic uint32_t *want, _Atomic uint32_t *futex)
{
    if (atomic_load_explicit(want, memory_order_seq_cst) &&
        atomic_exchange_explicit(want, 0, memory_order_seq_cst)) {
        atomic_fetch_add_explicit(futex, 1, memory_order_seq_cst);
        /* Every sleeper: a sender that gave up on a timeout must not
         * swallow the only wake-up meant for one that still waits. */
        futex_wake(futex, INT_MAX);
    }
}

/* Called by a sender after it published.  Its seq_cst claim on tail pairs
 * with the receiver's seq_cst re-check of tail in array_recv(). */
static inline void wake_receiver(struct chan *c)
{
    wake_flagged(&c->rx_want_wake, &c->rx_futex);
}

/* Called by the receiver after it freed slots: the fence orders the frees
 * before the look at the senders' flag (pairing with array_send()). */
static inline void wake_senders(struct chan *c)
{
    full_fence();
    wake_flagged(&c->tx_want_wake, &c->tx_futex);
    if (atomic_load_explicit(&c->armed_count, memory_order_relaxed))
        fire_notifies(c);
}

static int array_push(struct chan *c, const void *item)
{
    uint64_t pos = atomic_load_explicit(&c->tail, memory_order_relaxed);
    _Atomic uint64_t *seq;
    for (;;) {
        seq = slot_seq(c, pos);
        uint64_t s = atomic_load_explicit(seq, memory_order_acquire);
        int64_t dif = (int64_t)(s - 2 * pos);
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&c->tail, &pos, pos + 1,
                                                      memory_order_seq_cst,
                                                      memory_order_relaxed))
                break;
        } else if (dif < 0) {
            return CHAN_FULL;
        } else {
            pos = atomic_load_explicit(&c->tail, memory_order_relaxed);
        }
    }
    copy_item(slot_item(seq), item, c->item_size);
    atomic_store_explicit(seq, 2 * pos + 1, memory_order_release);
    wake_receiver(c);
    return CHAN_OK;
}

/* Claim up to n consecutive slots with one compare-and-swap, fill them in
 * order and publish them, with one wake-up check for the batch: the
 * per-item costs of array_push() (the contended tail, the fence) are paid
 * once per batch.  Slots become free in order (one receiver takes them in
 * order), so when the last slot of a run is free, all of the run is.
 * Returns how many were sent; 0 means full. */
static size_t array_push_many(struct chan *c, const unsigned char *items, size_t n)
{
    if (n > c->cap)
        n = c->cap; /* a run longer than the ring would meet itself */
    uint64_t pos = atomic_load_explicit(&c->tail, memory_order_relaxed);
    size_t k;
    for (;;) {
        k = n;
        _Atomic uint64_t *last = slot_seq(c, pos + k - 1);
        if (atomic_load_explicit(last, memory_order_acquire) != 2 * (pos + k - 1)) {
            /* Not all of them: count the free run from the first slot. */
            k = 0;
            while (k < n) {
                uint64_t s = atomic_load_explicit(slot_seq(c, pos + k), memory_order_acquire);
                if (s != 2 * (pos + k))
                    break;
                k++;
            }
            if (k == 0) {
                uint64_t s = atomic_load_explicit(slot_seq(c, pos), memory_order_acquire);
                if ((int64_t)(s - 2 * pos) < 0)
                    return 0; /* full */
                pos = atomic_load_explicit(&c->tail, memory_order_relaxed);
                continue;
            }
        }
        if (atomic_compare_exchange_weak_explicit(&c->tail, &pos, pos + k, memory_order_seq_cst,
                                                  memory_order_relaxed))
            break;
    }
    for (size_t i = 0; i < k; i++) {
        _Atomic uint64_t *seq = slot_seq(c, pos + i);
        copy_item(slot_item(seq), items + i * c->item_size, c->item_size);
        atomic_store_explicit(seq, 2 * (pos + i) + 1, memory_order_release);
    }
    wake_receiver(c);
    return k;
}

/* Take up to max items; returns how many.  Receiver thread only. */
static size_t array_pop(struct chan *c, unsigned char *out, size_t max)
{
    uint64_t pos = c->head;
    size_t n = 0;
    while (n < max) {
        _Atomic uint64_t *seq = slot_seq(c, pos);
        if (atomic_load_explicit(seq, memory_order_acquire) != 2 * pos + 1)
            break;
        copy_item(out + n * c->item_size, slot_item(seq), c->item_size);
        atomic_store_explicit(seq, 2 * (pos + c->cap), memory_order_release);
        pos++;
        n++;
    }
    if (n > 0) {
        c->head = pos;
        atomic_store_explicit(&c->head_pub, pos, memory_order_relaxed);
        wake_senders(c);
    }
    return n;
}

static bool array_in_flight(struct chan *c)
{
    /* A sender that claimed a slot but has not published it yet. */
    return atomic_load_explicit(&c->tail, memory_order_acquire) != c->head;
}

static int array_send(chan_tx *tx, const void *item, uint64_t deadline)
{
    struct chan *c = tx->c;
    unsigned step = 0;
    bool counted = false;
    for (;;) {
        if (atomic_load_explicit(&c->rx_gone, memory_order_acquire))
            return CHAN_DISCONNECTED;
        if (array_push(c, item) == CHAN_OK)
            return CHAN_OK;
        if (!counted) {
            atomic_fetch_add_explicit(&c->full_events, 1, memory_order_relaxed);
            raise_high_water(c, c->cap);
            counted = true;
        }
        if (deadline != NO_DEADLINE && clock_mono_ns() >= deadline)
            return CHAN_TIMEOUT;
        if (backoff(&step))
            continue;
        uint32_t e = atomic_load_explicit(&c->tx_futex, memory_order_seq_cst);
        atomic_fetch_add_explicit(&c->tx_sleepers, 1, memory_order_relaxed);
        atomic_store_explicit(&c->tx_want_wake, 1, memory_order_seq_cst);
        int r = CHAN_FULL;
        if (atomic_load_explicit(&c->rx_gone, memory_order_seq_cst))
            r = CHAN_DISCONNECTED;
        else
            r = array_push(c, item);
        if (r == CHAN_FULL)
            futex_wait(&c->tx_futex, e, deadline);
        atomic_fetch_sub_explicit(&c->tx_sleepers, 1, memory_order_relaxed);
        if (r != CHAN_FULL)
            return r;
    }
}

static int array_try_send(chan_tx *tx, const void *item)
{
    struct chan *c = tx->c;
    if (atomic_load_explicit(&c->rx_gone, memory_order_acquire))
        return CHAN_DISCONNECTED;
    if (array_push(c, item) == CHAN_OK)
        return CHAN_OK;
    atomic_fetch_add_explicit(&c->full_events, 1, memory_order_relaxed);
    raise_high_water(c, c->cap);
    if (tx->notify == NULL)
        return CHAN_FULL;
    /* Arm first, then look again: if the receiver freed a slot between the
     * failed push and the arming, the second push sees it; otherwise the
     * receiver sees us armed and calls notify. */
    arm(c, tx);
    if (atomic_load_explicit(&c->rx_gone, memory_order_seq_cst))
        return CHAN_DISCONNECTED;
    return array_push(c, item);
}

static int array_recv(chan_rx *rx, unsigned char *out, size_t max, size_t *got,
                      uint64_t deadline, bool block)
{
    struct chan *c = rx->c;
    unsigned step = 0;
    for (;;) {
        size_t n = array_pop(c, out, max);
        if (n > 0) {
            if (block && n < COALESCE_MIN && n < max) {
                /* A short batch means the receiver is right behind the
                 * senders, where every slot costs a cache-line transfer
                 * each way.  Let them run ahead for a moment. */
                pause_for(COALESCE_NS);
                n += array_pop(c, out + n * c->item_size, max - n);
            }
            *got = n;
            return CHAN_OK;
        }
        if (atomic_load_explicit(&c->senders, memory_order_acquire) == 0) {
            /* Every send happened before its sender's drop: look once more. */
            n = array_pop(c, out, max);
            *got = n;
            return n > 0 ? CHAN_OK : CHAN_DISCONNECTED;
        }
        if (!block && !array_in_flight(c))
            return CHAN_EMPTY;
        if (deadline != NO_DEADLINE && clock_mono_ns() >= deadline)
            return block ? CHAN_TIMEOUT : CHAN_EMPTY;
        if (backoff(&step))
            continue;
        if (!block)
            return CHAN_EMPTY;
        uint32_t e = atomic_load_explicit(&c->rx_futex, memory_order_seq_cst);
        atomic_store_explicit(&c->rx_want_wake, 1, memory_order_seq_cst);
        /* tail, not the slot: a sender that claimed a slot before this load
         * may not have published it yet, but one that claims after it will
         * see the flag (both are seq_cst).  An unpublished claim is a few
         * instructions away from done, so yield rather than sleep. */
        if (atomic_load_explicit(&c->tail, memory_order_seq_cst) != c->head) {
            atomic_store_explicit(&c->rx_want_wake, 0, memory_order_relaxed);
            sched_yield();
            continue;
        }
        if (atomic_load_explicit(&c->senders, memory_order_acquire) != 0)
            futex_wait(&c->rx_futex, e, deadline);
        atomic_store_explicit(&c->rx_want_wake, 0, memory_order_relaxed);
    }
}

/* ---- list flavour (unbounded) ----------------------------------------- */

static int list_grow(struct chan *c)
{
    size_t ncap = c->bcap ? c->bcap * 2 : 64;
    if (ncap > SIZE_MAX / c->item_size)
        return -ENOMEM;
    unsigned char *nb = malloc(ncap * c->item_size);
    if (nb == NULL)
        return -ENOMEM;
    /* Unwrap the ring into the new buffer. */
    for (size_t i = 0; i < c->blen; i++)
        memcpy(nb + i * c->item_size, c->buf + ((c->bhead + i) % c->bcap) * c->item_size,
               c->item_size);
    free(c->buf);
    c->buf = nb;
    c->bcap = ncap;
    c->bhead = 0;
    return 0;
}

static int list_send(chan_tx *tx, const void *item)
{
    struct chan *c = tx->c;
    int r = CHAN_OK;
    pthread_mutex_lock(&c->mu);
    if (atomic_load_explicit(&c->rx_gone, memory_order_relaxed)) {
        r = CHAN_DISCONNECTED;
    } else if (c->blen == c->bcap && (r = list_grow(c)) != 0) {
        /* r is -ENOMEM */
    } else {
        memcpy(c->buf + ((c->bhead + c->blen) % c->bcap) * c->item_size, item, c->item_size);
        c->blen++;
        raise_high_water(c, c->blen);
        pthread_cond_signal(&c->rx_cv);
    }
    pthread_mutex_unlock(&c->mu);
    return r;
}

static int list_recv(chan_rx *rx, unsigned char *out, size_t max, size_t *got,
                     uint64_t deadline, bool block)
{
    struct chan *c = rx->c;
    int r = CHAN_OK;
    pthread_mutex_lock(&c->mu);
    while (c->blen == 0) {
        if (atomic_load_explicit(&c->senders, memory_order_acquire) == 0) {
            r = CHAN_DISCONNECTED;
            goto out;
        }
        if (!block) {
            r = CHAN_EMPTY;
            goto out;
        }
        if (!cond_wait_until(&c->rx_cv, &c->mu, deadline)) {
            r = CHAN_TIMEOUT;
            goto out;
        }
    }
    size_t n = c->blen < max ? c->blen : max;
    for (size_t i = 0; i < n; i++) {
        memcpy(out + i * c->item_size, c->buf + c->bhead * c->item_size, c->item_size);
        c->bhead = (c->bhead + 1) % c->bcap;
    }
    c->blen -= n;
    *got = n;
out:
    pthread_mutex_unlock(&c->mu);
    return r;
}

/* ---- zero flavour (rendezvous) ---------------------------------------- */

static int zero_send(chan_tx *tx, const void *item, uint64_t deadline, bool block)
{
    struct chan *c = tx->c;
    int r = CHAN_OK;
    pthread_mutex_lock(&c->mu);
    /* Wait for the hand-over slot (another sender may be mid-hand-over). */
    for (;;) {
        if (atomic_load_explicit(&c->rx_gone, memory_order_relaxed)) {
            r = CHAN_DISCONNECTED;
            goto out;
        }
        if (!c->zero_full && (block || c->rx_waiting > 0))
            break;
        if (!block) {
            r = CHAN_FULL;
            goto out;
        }
        if (!cond_wait_until(&c->tx_cv, &c->mu, deadline)) {
            r = CHAN_TIMEOUT;
            goto out;
        }
    }
    memcpy(c->buf, item, c->item_size);
    c->zero_full = true;
    uint64_t mine = ++c->put_ticket;
    pthread_cond_signal(&c->rx_cv);
    if (!block) {
        /* A receiver is committed to taking it: it checks the slot before
         * giving up on its own timeout. */
        goto out;
    }
    while (c->take_ticket < mine) {
        bool gone = atomic_load_explicit(&c->rx_gone, memory_order_relaxed);
        if (gone || !cond_wait_until(&c->tx_cv, &c->mu, deadline)) {
            if (c->take_ticket < mine) {
                /* Not taken: take it back, so it is never delivered. */
                c->zero_full = false;
                c->put_ticket--;
                pthread_cond_broadcast(&c->tx_cv);
                r = gone ? CHAN_DISCONNECTED : CHAN_TIMEOUT;
            }
            goto out;
        }
    }
out:
    pthread_mutex_unlock(&c->mu);
    return r;
}

static int zero_recv(chan_rx *rx, unsigned char *out, size_t *got, uint64_t deadline, bool block)
{
    struct chan *c = rx->c;
    int r = CHAN_OK;
    pthread_mutex_lock(&c->mu);
    c->rx_waiting++;
    if (!c->zero_full) {
        /* A try_send may now succeed: tell senders that wait for that. */
        pthread_cond_broadcast(&c->tx_cv);
        if (block && atomic_load_explicit(&c->armed_count, memory_order_relaxed)) {
            pthread_mutex_unlock(&c->mu);
            fire_notifies(c);
            pthread_mutex_lock(&c->mu);
        }
    }
    while (!c->zero_full) {
        if (atomic_load_explicit(&c->senders, memory_order_acquire) == 0) {
            r = CHAN_DISCONNECTED;
            goto out;
        }
        if (!block) {
            r = CHAN_EMPTY;
            goto out;
        }
        if (!cond_wait_until(&c->rx_cv, &c->mu, deadline)) {
            r = CHAN_TIMEOUT;
            goto out;
        }
    }
    memcpy(out, c->buf, c->item_size);
    c->zero_full = false;
    c->take_ticket = c->put_ticket;
    *got = 1;
    pthread_cond_broadcast(&c->tx_cv);
out:
    c->rx_waiting--;
    pthread_mutex_unlock(&c->mu);
    return r;
}

/* ---- public send and receive ------------------------------------------ */

static int send_common(chan_tx *tx, const void *item, uint64_t deadline, bool block)
{
    if (tx == NULL || item == NULL)
        return -EINVAL;
    struct chan *c = tx->c;
    switch (c->flavour) {
    case FLAVOUR_ARRAY:
        return block ? array_send(tx, item, deadline) : array_try_send(tx, item);
    case FLAVOUR_LIST:
        return list_send(tx, item);
    case FLAVOUR_ZERO: {
        int r = zero_send(tx, item, deadline, block);
        if (r == CHAN_FULL) {
            atomic_fetch_add_explicit(&c->full_events, 1, memory_order_relaxed);
            if (tx->notify != NULL) {
                arm(c, tx);
                r = zero_send(tx, item, deadline, false);
            }
        }
        return r;
    }
    }
    return -EINVAL;
}

int chan_send(chan_tx *tx, const void *item)
{
    return send_common(tx, item, NO_DEADLINE, true);
}

int chan_try_send(chan_tx *tx, const void *item)
{
    return send_common(tx, item, NO_DEADLINE, false);
}

int chan_send_timeout(chan_tx *tx, const void *item, uint64_t timeout_ns)
{
    return send_common(tx, item, deadline_after(timeout_ns), true);
}

int chan_try_send_many(chan_tx *tx, const void *items, size_t n, size_t *sent)
{
    if (tx == NULL || (items == NULL && n > 0) || sent == NULL)
        return -EINVAL;
    struct chan *c = tx->c;
    const unsigned char *p = items;
    *sent = 0;
    if (c->flavour != FLAVOUR_ARRAY) {
        /* The locked flavours gain nothing from a batch: one at a time. */
        while (*sent < n) {
            int r = chan_try_send(tx, p + *sent * c->item_size);
            if (r != CHAN_OK)
                return r;
            (*sent)++;
        }
        return CHAN_OK;
    }
    bool armed = false;
    while (*sent < n) {
        if (atomic_load_explicit(&c->rx_gone, memory_order_acquire))
            return CHAN_DISCONNECTED;
        size_t k = array_push_many(c, p + *sent * c->item_size, n - *sent);
        *sent += k;
        if (k > 0)
            continue;
        /* Full: as chan_try_send(), arm and look once more. */
        if (armed || tx->notify == NULL) {
            atomic_fetch_add_explicit(&c->full_events, 1, memory_order_relaxed);
            raise_high_water(c, c->cap);
            return CHAN_FULL;
        }
        arm(c, tx);
        armed = true;
    }
    return CHAN_OK;
}

static int recv_common(chan_rx *rx, void *buf, size_t max, size_t *got, uint64_t deadline,
                       bool block)
{
    if (rx == NULL || buf == NULL || max == 0)
        return -EINVAL;
    struct chan *c = rx->c;
    size_t n = 0;
    int r = -EINVAL;
    switch (c->flavour) {
    case FLAVOUR_ARRAY:
        r = array_recv(rx, buf, max, &n, deadline, block);
        if (r == CHAN_OK) {
            /* The depth before this batch was taken.  A short batch
             * emptied the ring; a full one may have left more, and then
             * tail is read, at most once per HW_SAMPLE items, because the
             * senders write its line on every send.  Senders that find the
             * ring full raise the mark to capacity themselves. */
            size_t depth = n;
            if (n == max && c->head >= c->hw_next) {
                uint64_t t = atomic_load_explicit(&c->tail, memory_order_relaxed);
                depth += (size_t)(t - c->head);
                c->hw_next = c->head + HW_SAMPLE;
            }
            raise_high_water(c, depth > c->cap ? c->cap : depth);
        }
        break;
    case FLAVOUR_LIST:
        r = list_recv(rx, buf, max, &n, deadline, block);
        break;
    case FLAVOUR_ZERO:
        r = zero_recv(rx, buf, &n, deadline, block);
        break;
    }
    if (got != NULL)
        *got = n;
    return r;
}

int chan_recv(chan_rx *rx, void *item)
{
    return recv_common(rx, item, 1, NULL, NO_DEADLINE, true);
}

int chan_try_recv(chan_rx *rx, void *item)
{
    return recv_common(rx, item, 1, NULL, NO_DEADLINE, false);
}

int chan_recv_timeout(chan_rx *rx, void *item, uint64_t timeout_ns)
{
    return recv_common(rx, item, 1, NULL, deadline_after(timeout_ns), true);
}

int chan_recv_many(chan_rx *rx, void *buf, size_t max, size_t *got)
{
    return recv_common(rx, buf, max, got, NO_DEADLINE, true);
}

int chan_recv_many_timeout(chan_rx *rx, void *buf, size_t max, size_t *got,
                           uint64_t timeout_ns)
{
    return recv_common(rx, buf, max, got, deadline_after(timeout_ns), true);
}

void chan_stats(const chan_rx *rx, struct chan_stats *out)
{
    if (rx == NULL || out == NULL)
        return;
    struct chan *c = rx->c;
    memset(out, 0, sizeof(*out));
    out->senders = atomic_load_explicit(&c->senders, memory_order_relaxed);
    out->send_waiting = atomic_load_explicit(&c->tx_sleepers, memory_order_relaxed) +
                        atomic_load_explicit(&c->armed_count, memory_order_relaxed);
    out->full_events = atomic_load_explicit(&c->full_events, memory_order_relaxed);

    switch (c->flavour) {
    case FLAVOUR_ARRAY: {
        uint64_t h = atomic_load_explicit(&c->head_pub, memory_order_relaxed);
        uint64_t t = atomic_load_explicit(&c->tail, memory_order_relaxed);
        out->capacity = c->cap;
        out->depth = t > h ? (size_t)(t - h) : 0;
        if (out->depth > c->cap)
            out->depth = c->cap;
        raise_high_water(c, out->depth);
        break;
    }
    case FLAVOUR_LIST:
        out->capacity = SIZE_MAX;
        pthread_mutex_lock(&c->mu);
        out->depth = c->blen;
        pthread_mutex_unlock(&c->mu);
        break;
    case FLAVOUR_ZERO:
        out->capacity = 0;
        pthread_mutex_lock(&c->mu);
        out->depth = c->zero_full ? 1 : 0;
        pthread_mutex_unlock(&c->mu);
        raise_high_water(c, out->depth);
        break;
    }
    out->high_water = atomic_load_explicit(&c->high_water, memory_order_relaxed);
}

const char *chan_result_str(int r)
{
    switch (r) {
    case CHAN_OK: return "ok";
    case CHAN_FULL: return "full";
    case CHAN_EMPTY: return "empty";
    case CHAN_TIMEOUT: return "timeout";
    case CHAN_DISCONNECTED: return "disconnected";
    default: return r < 0 ? strerror(-r) : "unknown";
    }
}
