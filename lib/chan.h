/*
 * chan: a multi-producer, single-consumer channel with the semantics of
 * Rust's std::sync::mpsc.
 *
 *   chan_bounded(n)   ~ mpsc::sync_channel(n); n = 0 is a rendezvous
 *   chan_unbounded()  ~ mpsc::channel()
 *
 * Items are copied by value (item_size bytes).  A send that fails leaves the
 * caller's item untouched, so ownership of whatever it points to stays with
 * the caller ("the value is handed back").  A send that succeeds moves the
 * item into the channel; a receive moves it out.
 *
 * Threads: any number of threads may send, each through its own sender
 * handle (clone one per thread).  Exactly one thread at a time may use the
 * receiver.  Items from one sender arrive in the order they were sent.
 *
 * A bounded channel with capacity > 0 allocates once, at creation.  Its send
 * and receive paths take no lock and make no system call unless a thread has
 * to sleep: senders sleep only while the channel is full, the receiver only
 * while it is empty.  The unbounded and rendezvous flavours use a mutex.
 *
 * Functions return CHAN_OK (0), one of the positive outcomes below, or a
 * negative errno for misuse (-EINVAL) or resource failure (-ENOMEM).
 */
#ifndef LOGRAIL_CHAN_H
#define LOGRAIL_CHAN_H

#include <stddef.h>
#include <stdint.h>

enum chan_result {
    CHAN_OK = 0,
    CHAN_FULL,         /* try_send: no space now (rendezvous: no receiver waiting) */
    CHAN_EMPTY,        /* try_recv: nothing to take now */
    CHAN_TIMEOUT,      /* *_timeout: the time ran out */
    CHAN_DISCONNECTED, /* send: receiver gone; recv: all senders gone and empty */
};

typedef struct chan_tx chan_tx;
typedef struct chan_rx chan_rx;

/* Called, on the receiving thread, when space may have become free for a
 * sender whose chan_try_send() returned CHAN_FULL (or when the receiver is
 * dropped).  It must be cheap and must not call back into the channel:
 * uv_async_send() is the intended body.  Spurious calls happen; lost ones
 * do not. */
typedef void (*chan_notify_fn)(void *arg);

/* Create a channel; *tx and *rx receive the first sender and the receiver.
 * capacity 0 makes a rendezvous channel.  item_size must be > 0. */
int chan_bounded(size_t capacity, size_t item_size, chan_tx **tx, chan_rx **rx);
int chan_unbounded(size_t item_size, chan_tx **tx, chan_rx **rx);

/* A new sender on the same channel (any thread).  NULL on ENOMEM. */
chan_tx *chan_sender_clone(chan_tx *tx);
/* Drop a sender.  When the last one goes, the receiver sees DISCONNECTED
 * once the buffer is empty. */
void chan_sender_drop(chan_tx *tx);
/* Drop the receiver.  Every later send fails with CHAN_DISCONNECTED; blocked
 * senders wake up and fail.  Items still buffered are discarded: drain them
 * first (chan_try_recv) if they own memory. */
void chan_receiver_drop(chan_rx *rx);

/* Ask for fn(arg) to be called when space may be free again after this
 * sender's chan_try_send() reported CHAN_FULL.  Set it once, before use, from
 * the thread that owns the sender.  The wake-up is armed by the failing
 * try_send itself, so there is no window in which it can be lost. */
void chan_sender_set_notify(chan_tx *tx, chan_notify_fn fn, void *arg);

int chan_send(chan_tx *tx, const void *item);
int chan_try_send(chan_tx *tx, const void *item);
int chan_send_timeout(chan_tx *tx, const void *item, uint64_t timeout_ns);

/* Send items[0..n) (n * item_size bytes) in order, as many as fit now:
 * one claim and one wake-up for the whole batch.  CHAN_OK when all n went;
 * CHAN_FULL when only the first *sent did (and, as with chan_try_send(),
 * the sender's notify is armed); CHAN_DISCONNECTED when the receiver is
 * gone (items from *sent on were not sent).  Never blocks. */
int chan_try_send_many(chan_tx *tx, const void *items, size_t n, size_t *sent);

int chan_recv(chan_rx *rx, void *item);
int chan_try_recv(chan_rx *rx, void *item);
int chan_recv_timeout(chan_rx *rx, void *item, uint64_t timeout_ns);

/* Take up to max items into buf (max * item_size bytes), blocking until at
 * least one is there.  On CHAN_OK, *got is between 1 and max.  When a
 * bounded channel holds only a few items, the call waits about two
 * microseconds for more before it returns them (chan.c says why). */
int chan_recv_many(chan_rx *rx, void *buf, size_t max, size_t *got);
int chan_recv_many_timeout(chan_rx *rx, void *buf, size_t max, size_t *got,
                           uint64_t timeout_ns);

/* Figures for statistics; approximate while other threads run. */
struct chan_stats {
    size_t capacity;     /* 0 for rendezvous, SIZE_MAX for unbounded */
    size_t depth;        /* items buffered now */
    size_t high_water;   /* most items ever buffered at once */
    size_t senders;      /* live sender handles */
    size_t send_waiting; /* senders asleep or armed for a wake-up */
    uint64_t full_events;/* sends that found the channel full */
};
void chan_stats(const chan_rx *rx, struct chan_stats *out);

const char *chan_result_str(int r);

#endif
