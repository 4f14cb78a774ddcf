/*
 * Check suite for lib/chan.c.
 *
 * It follows the table in DESIGN.md ("The channel library"): every Rust
 * std::sync::mpsc behaviour the channel promises, every outcome of every
 * call, the notify hook that non-blocking producers rely on, and stress runs
 * that check per-sender FIFO order with many producers.
 *
 * No test asserts on speed.  Where a test must show that a call blocks, it
 * checks that a flag set after the call returns is still clear after a short
 * sleep: a slow machine can only make such a check pass vacuously, never fail
 * it falsely.  Timeouts are checked from below only (a call that times out
 * must have waited roughly as long as it was asked to).
 *
 * Check macros write to the result pipe on every passing assertion, so the
 * hot loops test with plain `if` and call ck_abort_msg() only on failure.
 * Assertions run on the test's main thread; helper threads record outcomes.
 */
#include "chan.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MS 1000000ull
#define LONG_NS (60000ull * MS) /* a timeout that must not be what ends a call */

/* ---- helpers ----------------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* "tsan", "asan" or "" (set by the Makefile for sanitizer builds). */
static const char *san(void)
{
    const char *s = getenv("LOGRAIL_SAN");
    return s != NULL ? s : "";
}

static int sanitized(void)
{
    return san()[0] != '\0';
}

/* atomic_load() as a function, so that a failing assertion prints "ld(&x)"
 * rather than the macro's expansion. */
static int ld(atomic_int *a)
{
    return atomic_load(a);
}

static pthread_t spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, fn, arg), 0);
    return t;
}

static void join(pthread_t t)
{
    ck_assert_int_eq(pthread_join(t, NULL), 0);
}

/* The three flavours of channel.  Loop tests index into this. */
enum flavour { FL_BOUNDED, FL_UNBOUNDED, FL_RENDEZVOUS, FL_COUNT };

static const char *flavour_name(int fl)
{
    return fl == FL_BOUNDED ? "bounded" : fl == FL_UNBOUNDED ? "unbounded" : "rendezvous";
}

static void make_chan(int fl, size_t cap, size_t size, chan_tx **tx, chan_rx **rx)
{
    int r;
    *tx = NULL;
    *rx = NULL;
    if (fl == FL_UNBOUNDED)
        r = chan_unbounded(size, tx, rx);
    else
        r = chan_bounded(fl == FL_RENDEZVOUS ? 0 : cap, size, tx, rx);
    ck_assert_int_eq(r, 0);
    ck_assert_ptr_nonnull(*tx);
    ck_assert_ptr_nonnull(*rx);
}

/* The ways to receive one item; several tests loop over them. */
enum recv_kind { RK_RECV, RK_RECV_TIMEOUT, RK_RECV_MANY, RK_RECV_MANY_TIMEOUT, RK_COUNT };

static int recv_one(chan_rx *rx, int kind, void *item, size_t *got)
{
    *got = 0;
    switch (kind) {
    case RK_RECV: {
        int r = chan_recv(rx, item);
        *got = r == CHAN_OK;
        return r;
    }
    case RK_RECV_TIMEOUT: {
        int r = chan_recv_timeout(rx, item, LONG_NS);
        *got = r == CHAN_OK;
        return r;
    }
    case RK_RECV_MANY:
        return chan_recv_many(rx, item, 1, got);
    default:
        return chan_recv_many_timeout(rx, item, 1, got, LONG_NS);
    }
}

/* A stress item: who sent it and its place in that sender's sequence. */
struct seq_item {
    uint32_t producer;
    uint32_t check; /* producer ^ low bits of seq, catches torn copies */
    uint64_t seq;
};

static struct seq_item seq_item_make(uint32_t p, uint64_t seq)
{
    struct seq_item it = {.producer = p, .check = p ^ (uint32_t)seq ^ 0xA5A5A5A5u, .seq = seq};
    return it;
}

/* A 128-byte item whose every byte depends on its number. */
struct big {
    unsigned char b[128];
};

static struct big big_make(unsigned n)
{
    struct big v;
    for (unsigned i = 0; i < sizeof(v.b); i++)
        v.b[i] = (unsigned char)(n * 131u + i * 7u + 1u);
    return v;
}

/* Threads for test_huge_timeouts. */
struct huge_recv {
    chan_rx *rx;
    atomic_int done;
    int result, value;
};

static void *huge_recv_main(void *arg)
{
    struct huge_recv *h = arg;
    h->result = chan_recv_timeout(h->rx, &h->value, UINT64_MAX - 1);
    atomic_store(&h->done, 1);
    return NULL;
}

struct huge_send {
    chan_tx *tx;
    atomic_int done;
    int result, value;
};

static void *huge_send_main(void *arg)
{
    struct huge_send *h = arg;
    h->result = chan_send_timeout(h->tx, &h->value, UINT64_MAX - 1);
    atomic_store(&h->done, 1);
    return NULL;
}

/* ---- creation ---------------------------------------------------------- */

START_TEST(test_create_args)
{
    chan_tx *tx = NULL;
    chan_rx *rx = NULL;

    ck_assert_int_eq(chan_bounded(4, 0, &tx, &rx), -EINVAL);
    ck_assert_int_eq(chan_bounded(0, 0, &tx, &rx), -EINVAL);
    ck_assert_int_eq(chan_bounded(4, 8, NULL, &rx), -EINVAL);
    ck_assert_int_eq(chan_bounded(4, 8, &tx, NULL), -EINVAL);
    ck_assert_int_eq(chan_bounded(0, 8, NULL, NULL), -EINVAL);
    ck_assert_int_eq(chan_unbounded(0, &tx, &rx), -EINVAL);
    ck_assert_int_eq(chan_unbounded(8, NULL, &rx), -EINVAL);
    ck_assert_int_eq(chan_unbounded(8, &tx, NULL), -EINVAL);
    ck_assert_ptr_null(tx);
    ck_assert_ptr_null(rx);
}
END_TEST

/* capacity * item_size that does not fit in size_t must fail cleanly, not
 * wrap around into a small allocation. */
START_TEST(test_create_overflow)
{
    chan_tx *tx = NULL;
    chan_rx *rx = NULL;

    int r = chan_bounded(SIZE_MAX / 2 + 1, 4, &tx, &rx);
    ck_assert_msg(r == -ENOMEM || r == -EINVAL, "chan_bounded(SIZE_MAX/2+1, 4) = %d", r);
    r = chan_bounded(SIZE_MAX - 1, 16, &tx, &rx);
    ck_assert_msg(r == -ENOMEM || r == -EINVAL, "chan_bounded(SIZE_MAX-1, 16) = %d", r);
    ck_assert_ptr_null(tx);
    ck_assert_ptr_null(rx);
}
END_TEST

START_TEST(test_create_ok)
{
    static const size_t caps[] = {0, 1, 2, 3, 1000, 65536};
    for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
        chan_tx *tx = NULL;
        chan_rx *rx = NULL;
        ck_assert_int_eq(chan_bounded(caps[i], 1, &tx, &rx), 0);
        ck_assert_ptr_nonnull(tx);
        ck_assert_ptr_nonnull(rx);
        struct chan_stats st;
        chan_stats(rx, &st);
        ck_assert_uint_eq(st.capacity, caps[i]);
        chan_sender_drop(tx);
        chan_receiver_drop(rx);
    }
    chan_tx *tx = NULL;
    chan_rx *rx = NULL;
    ck_assert_int_eq(chan_unbounded(1, &tx, &rx), 0);
    ck_assert_ptr_nonnull(tx);
    ck_assert_ptr_nonnull(rx);
    chan_receiver_drop(rx);
    chan_sender_drop(tx);
}
END_TEST

START_TEST(test_result_str)
{
    const int rs[] = {CHAN_OK, CHAN_FULL, CHAN_EMPTY, CHAN_TIMEOUT, CHAN_DISCONNECTED};
    for (size_t i = 0; i < 5; i++) {
        const char *s = chan_result_str(rs[i]);
        ck_assert_ptr_nonnull(s);
        ck_assert_uint_gt(strlen(s), 0);
        for (size_t j = 0; j < i; j++)
            ck_assert_str_ne(s, chan_result_str(rs[j]));
    }
    ck_assert_ptr_nonnull(chan_result_str(-EINVAL));
}
END_TEST

/* ---- single-threaded outcomes ------------------------------------------ */

/* Misuse is -EINVAL (chan.h), never CHAN_OK: there is no item to copy, or
 * recv_many has no room to put even one. */
START_TEST(test_misuse_args)
{
    chan_tx *tx;
    chan_rx *rx;
    make_chan(FL_BOUNDED, 4, sizeof(int), &tx, &rx);
    int buf[4];
    size_t got = 0;
    ck_assert_int_eq(chan_send(tx, NULL), -EINVAL);
    ck_assert_int_eq(chan_try_send(tx, NULL), -EINVAL);
    ck_assert_int_eq(chan_send_timeout(tx, NULL, 0), -EINVAL);
    ck_assert_int_eq(chan_recv(rx, NULL), -EINVAL);
    ck_assert_int_eq(chan_try_recv(rx, NULL), -EINVAL);
    ck_assert_int_eq(chan_recv_many(rx, buf, 0, &got), -EINVAL);
    ck_assert_int_eq(chan_recv_many_timeout(rx, buf, 0, &got, 0), -EINVAL);
    /* Nothing was sent by the calls above. */
    ck_assert_int_eq(chan_try_recv(rx, buf), CHAN_EMPTY);
    chan_sender_drop(tx);
    chan_receiver_drop(rx);
}
END_TEST


/* Fill to capacity, then FULL; drain in order, then EMPTY; then go round
 * the ring many times with every fill level.  Capacities 1..5 and 8 cover
 * the smallest rings and both power-of-two and other sizes. */
static const size_t fifo_caps[] = {1, 2, 3, 4, 5, 8};

START_TEST(test_try_send_full_fifo)
{
    size_t cap = fifo_caps[_i];
    chan_tx *tx;
    chan_rx *rx;
    make_chan(FL_BOUNDED, cap, sizeof(int), &tx, &rx);

    for (int i = 0; i < (int)cap; i++)
        ck_assert_int_eq(chan_try_send(tx, &i), CHAN_OK);
    int x = 99;
    ck_assert_msg(chan_try_send(tx, &x) == CHAN_FULL,
                  "capacity %zu: try_send on a full channel did not say FULL", cap);
    ck_assert_int_eq(chan_try_send(tx, &x), CHAN_FULL);
    for (int i = 0; i < (int)cap; i++) {
        int y = -1;
        ck_assert_int_eq(chan_try_recv(rx, &y), CHAN_OK);
        ck_assert_int_eq(y, i);
    }
    ck_assert_int_eq(chan_try_recv(rx, &x), CHAN_EMPTY);

    int next_in = 0, next_out = 0;
    for (int round = 0; round < 200; round++) {
        int n = 1 + round % (int)cap;
        for (int i = 0; i < n; i++, next_in++)
            ck_assert_int_eq(chan_try_send(tx, &next_in), CHAN_OK);
        if (n == (int)cap)
            ck_assert_int_eq(chan_try_send(tx, &x), CHAN_FULL);
        for (int i = 0; i < n; i++, next_out++) {
            int y = -1;
            ck_assert_int_eq(chan_try_recv(rx, &y), CHAN_OK);
            ck_assert_int_eq(y, next_out);
        }
        ck_assert_int_eq(chan_try_recv(rx, &x), CHAN_EMPTY);
    }
    chan_sender_drop(tx);
    chan_receiver_drop(rx);
}
END_TEST

/* Once the receiver is gone every send fails at once, even on a full
 * channel (DISCONNECTED wins over FULL, as in Rust). */
START_TEST(test_send_disconnected)
{
    int fl = _i;
    chan_tx *tx;
    chan_rx *rx;
    make_chan(fl, 2, sizeof(int), &tx, &rx);
    int x = 1;
    if (fl == FL_BOUNDED) {
        ck_assert_int_eq(chan_try_send(tx, &x), CHAN_OK);
        ck_assert_int_eq(chan_try_send(tx, &x), CHAN_OK);
        ck_assert_int_eq(chan_try_send(tx, &x), CHAN_FULL);
    }
    chan_receiver_drop(rx);
    ck_assert_int_eq(chan_try_send(tx, &x), CHAN_DISCONNECTED);
    ck_assert_int_eq(chan_send(tx, &x), CHAN_DISCONNECTED);
    ck_assert_int_eq(chan_send_timeout(tx, &x, LONG_NS), CHAN_DISCONNECTED);
    ck_assert_int_eq(chan_send_timeout(tx, &x, 0), CHAN_DISCONNECTED);
    ck_assert_int_eq(x, 1);

    /* A clone made after the receiver left is just as disconnected. */
    chan_tx *tx2 = chan_sender_clone(tx);
    ck_assert_ptr_nonnull(tx2);
    ck_assert_int_eq(chan_try_send(tx2, &x), CHAN_DISCONNECTED);
    chan_sender_drop(tx);
    ck_assert_int_eq(chan_send(tx2, &x), CHAN_DISCONNECTED);
    chan_sender_drop(tx2);
}
END_TEST

/* Items sent before the last sender left are received; only then does the
 * receiver see DISCONNECTED, from every receive call, again and again. */
START_TEST(test_recv_disconnected)
{
    int fl = _i;
    chan_tx *tx;
    chan_rx *rx;
    make_chan(fl, 4, sizeof(int), &tx, &rx);
    int n = fl == FL_RENDEZVOUS ? 0 : 3;
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(chan_try_send(tx, &i), CHAN_OK);
    chan_sender_drop(tx);

    for (int i = 0; i < n; i++) {
        int y = -1;
        ck_assert_int_eq(chan_try_recv(rx, &y), CHAN_OK);
        ck_assert_int_eq(y, i);
    }
    int y = -7, buf[4];
    size_t got = 77;
    for (int rep = 0; rep < 2; rep++) {
        ck_assert_int_eq(chan_try_recv(rx, &y), CHAN_DISCONNECTED);
        ck_assert_int_eq(chan_recv(rx, &y), CHAN_DISCONNECTED);
        ck_assert_int_eq(chan_recv_timeout(rx, &y, LONG_NS), CHAN_DISCONNECTED);
        ck_assert_int_eq(chan_recv_timeout(rx, &y, 0), CHAN_DISCONNECTED);
        ck_assert_int_eq(chan_recv_many(rx, buf, 4, &got), CHAN_DISCONNECTED);
        ck_assert_int_eq(chan_recv_many_timeout(rx, buf, 4, &got, LONG_NS), CHAN_DISCONNECTED);
    }
    ck_assert_int_eq(y, -7);
    struct chan_stats st;
    chan_stats(rx, &st);
    ck_assert_uint_eq(st.senders, 0);
    ck_assert_uint_eq(st.depth, 0);
    chan_receiver_drop(rx);
}
END_TEST

/* With a sender alive and nothing buffered: EMPTY and TIMEOUT. */
START_TEST(test_recv_empty_and_timeout)
{
    int fl = _i;
    chan_tx *tx;
    chan_rx *rx;
    make_chan(fl, 4, sizeof(int), &tx, &rx);
    int y = -7, buf[4];
    size_t got = 0;

    ck_assert_int_eq(chan_try_recv(rx, &y), CHAN_EMPTY);
    ck_assert_int_eq(chan_recv_timeout(rx, &y, 0), CHAN_TIMEOUT);

    uint64_t t0 = now_ns();
    ck_assert_int_eq(chan_recv_timeout(rx, &y, 100 * MS), CHAN_TIMEOUT);
    uint64_t waited = now_ns() - t0;
    ck_assert_msg(waited >= 90 * MS, "recv_timeout(100ms) returned after %llu ns",
                  (unsigned long long)waited);

    t0 = now_ns();
    ck_assert_int_eq(chan_recv_many_timeout(rx, buf, 4, &got, 100 * MS), CHAN_TIMEOUT);
    waited = now_ns() - t0;
    ck_assert_msg(waited >= 90 * MS, "recv_many_timeout(100ms) returned after %llu ns",
                  (unsigned long long)waited);
    ck_assert_int_eq(y, -7);

    /* A clone keeps the channel open after the original is dropped. */
    chan_tx *tx2 = chan_sender_clone(tx);
    ck_assert_ptr_nonnull(tx2);
    chan_sender_drop(tx);
    ck_assert_int_eq(chan_try_recv(rx, &y), CHAN_EMPTY);
    ck_assert_int_eq(chan_recv_timeout(rx, &y, 10 * MS), CHAN_TIMEOUT);
    if (fl != FL_RENDEZVOUS) {
        int v = 5;
        ck_assert_int_eq(chan_send(tx2, &v), CHAN_OK);
        ck_assert_int_eq(chan_recv_timeout(rx, &y, LONG_NS), CHAN_OK);
        ck_assert_int_eq(y, 5);
    }
    chan_sender_drop(tx2);
    ck_assert_int_eq(chan_try_recv(rx, &y), CHAN_DISCONNECTED);
    chan_receiver_drop(rx);
}
END_TEST

/* A timeout too long to add to the clock must mean "wait", not "expired":
 * a receiver in recv_timeout(UINT64_MAX - 1) and a sender in
 * send_timeout(UINT64_MAX - 1) stay blocked until the other side acts. */
START_TEST(test_huge_timeouts)
{
    int fl = _i;
    chan_tx *tx;
    chan_rx *rx;
    make_chan(fl, 1, sizeof(int), &tx, &rx);
    struct huge_recv h = {.rx = rx, .result = -1, .value = -1};
    atomic_init(&h.done, 0);
    pthread_t t = spawn(huge_recv_main, &h);
    sleep_ms(100);
    ck_assert_msg(ld(&h.done) == 0, "recv_timeout(UINT64_MAX-1) returned %d at once",
                  h.result);
    int v = 5;
    ck_assert_int_eq(chan_send(tx, &v), CHAN_OK);
    join(t);
    ck_assert_int_eq(h.result, CHAN_OK);
    ck_assert_int_eq(h.value, 5);

    if (fl != FL_UNBOUNDED) {
        if (fl == FL_BOUNDED)
            ck_assert_int_eq(chan_try_send(tx, &v), CHAN_OK);
        struct huge_send hs = {.tx = tx, .value = 6, .result = -1};
        atomic_init(&hs.done, 0);
        t = spawn(huge_send_main, &hs);
        sleep_ms(100);
        ck_assert_msg(ld(&hs.done) == 0,
                      "send_timeout(UINT64_MAX-1) returned %d at once", hs.result);
        int y = -1;
        if (fl == FL_BOUNDED) {
            ck_assert_int_eq(chan_recv(rx, &y), CHAN_OK);
            ck_assert_int_eq(y, 5);
        }
        ck_assert_int_eq(chan_recv(rx, &y), CHAN_OK);
        ck_assert_int_eq(y, 6);
        join(t);
        ck_assert_int_eq(hs.result, CHAN_OK);
    }
    chan_sender_drop(tx);
    chan_receiver_drop(rx);
}
END_TEST

/* send_timeout on a full channel times out, and its item never arrives. */
START_TEST(test_send_timeout_full)
{
    chan_tx *tx;
    chan_rx *rx;
    make_chan(FL_BOUNDED, 1, sizeof(int), &tx, &rx);
    int a = 1, b = 2, y = -1;
    ck_assert_int_eq(chan_send(tx, &a), CHAN_OK);
    ck_assert_int_eq(chan_send_timeout(tx, &b, 0), CHAN_TIMEOUT);

    uint64_t t0 = now_ns();
    ck_assert_int_eq(chan_send_timeout(tx, &b, 100 * MS), CHAN_TIMEOUT);
    uint64_t waited = now_ns() - t0;
    ck_assert_msg(waited >= 90 * MS, "send_timeout(100ms) returned after %llu ns",
                  (unsigned long long)waited);
    ck_assert_int_eq(b, 2);

    ck_assert_int_eq(chan_try_recv(rx, &y), CHAN_OK);
    ck_assert_int_eq(y, 1);
    ck_assert_int_eq(chan_try_recv(rx, &y), CHAN_EMPTY);

    /* With space, send_timeout succeeds without waiting for the timeout. */
    ck_assert_int_eq(chan_send_timeout(tx, &b, LONG_NS), CHAN_OK);
    ck_assert_int_eq(chan_try_recv(rx, &y), CHAN_OK);
    ck_assert_int_eq(y, 2);
    chan_sender_drop(tx);
    ck_assert_int_eq(chan_try_recv(rx, &y), CHAN_DISCONNECTED);
    chan_receiver_drop(rx);
}
END_TEST

/* An unbounded channel never says FULL and never blocks a sender. */
START_TEST(test_unbounded_grows)
{
    chan_tx *tx;
    chan_rx *rx;
    make_chan(FL_UNBOUNDED, 0, sizeof(uint32_t), &tx, &rx);
    const uint32_t n = 100000;
    for (uint32_t i = 0; i < n; i++) {
        int r = chan_try_send(tx, &i);
        if (r != CHAN_OK)
            ck_abort_msg("try_send #%u on unbounded: %d", i, r);
    }
    for (uint32_t i = 0; i < 1000; i++)
        ck_assert_int_eq(chan_send(tx, &(uint32_t){n + i}), CHAN_OK);
    struct chan_stats st;
    chan_stats(rx, &st);
    ck_assert_uint_eq(st.capacity, SIZE_MAX);
    ck_assert_uint_eq(st.depth, n + 1000);
    for (uint32_t i = 0; i < n + 1000; i++) {
        uint32_t y;
        int r = chan_try_recv(rx, &y);
        if (r != CHAN_OK || y != i)
            ck_abort_msg("try_recv #%u: r=%d y=%u", i, r, y);
    }
    chan_sender_drop(tx);
    uint32_t y;
    ck_assert_int_eq(chan_try_recv(rx, &y), CHAN_DISCONNECTED);
    chan_receiver_drop(rx);
}
END_TEST

/* ---- items by value ---------------------------------------------------- */

struct big_sender {
    chan_tx *tx;
    unsigned first, count;
    int result;
};

static void *big_sender_main(void *arg)
{
    struct big_sender *s = arg;
    for (unsigned i = 0; i < s->count; i++) {
        struct big v = big_make(s->first + i);
        s->result = chan_send(s->tx, &v);
        if (s->result != CHAN_OK)
            break;
        memset(&v, 0xEE, sizeof(v)); /* the channel must have copied it */
    }
    return NULL;
}

/* 128-byte items arrive byte for byte, also after the sender scribbled over
 * its own copy; per flavour, through wrap-around and growth. */
START_TEST(test_big_items)
{
    int fl = _i;
    chan_tx *tx;
    chan_rx *rx;
    make_chan(fl, 3, sizeof(struct big), &tx, &rx);
    const unsigned n = 1000;
    struct big_sender s = {.tx = tx, .first = 7, .count = n, .result = -1};
    pthread_t t = spawn(big_sender_main, &s);
    for (unsigned i = 0; i < n; i++) {
        struct big got, want = big_make(7 + i);
        memset(&got, 0, sizeof(got));
        int r = chan_recv(rx, &got);
        if (r != CHAN_OK)
            ck_abort_msg("recv #%u: %d", i, r);
        if (memcmp(&got, &want, sizeof(got)) != 0)
            ck_abort_msg("item #%u corrupted", i);
    }
    join(t);
    ck_assert_int_eq(s.result, CHAN_OK);

    if (fl != FL_RENDEZVOUS) {
        /* Single-threaded too, through recv_many. */
        struct big v[3];
        for (unsigned i = 0; i < 3; i++) {
            v[i] = big_make(5000 + i);
            ck_assert_int_eq(chan_try_send(tx, &v[i]), CHAN_OK);
            memset(&v[i], 0, sizeof(v[i]));
        }
        size_t got = 0, total = 0;
        while (total < 3) {
            ck_assert_int_eq(chan_recv_many(rx, &v[total], 3 - total, &got), CHAN_OK);
            ck_assert_uint_ge(got, 1);
            total += got;
        }
        for (unsigned i = 0; i < 3; i++) {
            struct big want = big_make(5000 + i);
            ck_assert_int_eq(memcmp(&v[i], &want, sizeof(want)), 0);
        }
    }
    chan_sender_drop(tx);
    chan_receiver_drop(rx);
}
END_TEST

/* Odd item sizes (1, 3, 13 bytes) leave items unaligned in the buffer;
 * 56, 57, 64, 100 and 200 bytes sit at and across the sizes where the ring
 * pads its slots to whole cache lines. */
START_TEST(test_odd_sizes)
{
    static const size_t sizes[] = {1, 3, 13, 56, 57, 64, 100, 200};
    enum { MAXSZ = 200 };
    for (int fl = FL_BOUNDED; fl <= FL_UNBOUNDED; fl++) {
        for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
            size_t sz = sizes[k];
            chan_tx *tx;
            chan_rx *rx;
            make_chan(fl, 5, sz, &tx, &rx);
            unsigned char in[MAXSZ], out[MAXSZ * 4];
            unsigned seq_in = 0, seq_out = 0;
            for (int round = 0; round < 40; round++) {
                for (int i = 0; i < 4; i++, seq_in++) {
                    for (size_t b = 0; b < sz; b++)
                        in[b] = (unsigned char)(seq_in * 17 + b);
                    ck_assert_int_eq(chan_try_send(tx, in), CHAN_OK);
                }
                size_t got = 0, total = 0;
                while (total < 4) {
                    ck_assert_int_eq(chan_recv_many(rx, out + total * sz, 4 - total, &got),
                                     CHAN_OK);
                    total += got;
                }
                for (int i = 0; i < 4; i++, seq_out++)
                    for (size_t b = 0; b < sz; b++)
                        ck_assert_uint_eq(out[i * sz + b], (unsigned char)(seq_out * 17 + b));
            }
            chan_sender_drop(tx);
            chan_receiver_drop(rx);
        }
    }
}
END_TEST

/* ---- the Rust documentation examples ----------------------------------- */

struct seq_producer {
    chan_tx *tx;
    uint32_t id;
    uint64_t count;
    int result;       /* CHAN_OK, or the first failing send's result */
    uint64_t fail_at; /* seq of the first failing send, or count */
    sem_t *sem;       /* notify_producer_main waits on it after CHAN_FULL */
};

static void *seq_producer_main(void *arg)
{
    struct seq_producer *p = arg;
    p->result = CHAN_OK;
    p->fail_at = p->count;
    for (uint64_t s = 0; s < p->count; s++) {
        struct seq_item it = seq_item_make(p->id, s);
        int r = chan_send(p->tx, &it);
        if (r != CHAN_OK) {
            p->result = r;
            p->fail_at = s;
            break;
        }
    }
    chan_sender_drop(p->tx);
    return NULL;
}

/* Receive until DISCONNECTED (one at a time or in batches) and check that
 * every producer's sequence arrived complete, in order, without duplicates. */
static void receive_sequences(chan_rx *rx, int batched, uint32_t nprod, const uint64_t *counts)
{
    uint64_t *next = calloc(nprod, sizeof(*next));
    struct seq_item batch[256];
    size_t got = 0;
    uint64_t total = 0;
    int r;
    ck_assert_ptr_nonnull(next);
    for (;;) {
        if (batched)
            r = chan_recv_many(rx, batch, 256, &got);
        else {
            r = chan_recv(rx, &batch[0]);
            got = 1;
        }
        if (r != CHAN_OK)
            break;
        if (got < 1 || got > 256)
            ck_abort_msg("recv_many got %zu", got);
        for (size_t i = 0; i < got; i++) {
            const struct seq_item *it = &batch[i];
            if (it->producer >= nprod)
                ck_abort_msg("item from unknown producer %u", it->producer);
            if (it->check != (it->producer ^ (uint32_t)it->seq ^ 0xA5A5A5A5u))
                ck_abort_msg("torn item p=%u seq=%llu", it->producer,
                             (unsigned long long)it->seq);
            if (it->seq != next[it->producer])
                ck_abort_msg("producer %u: got seq %llu, expected %llu", it->producer,
                             (unsigned long long)it->seq,
                             (unsigned long long)next[it->producer]);
            next[it->producer]++;
        }
        total += got;
    }
    ck_assert_int_eq(r, CHAN_DISCONNECTED);
    for (uint32_t p = 0; p < nprod; p++)
        if (next[p] != counts[p])
            ck_abort_msg("producer %u: %llu of %llu items arrived", p,
                         (unsigned long long)next[p], (unsigned long long)counts[p]);
    free(next);
}

/* Run nprod producers, total items split evenly, through a fresh channel. */
static void run_sequences(int fl, size_t cap, uint32_t nprod, uint64_t total, int batched)
{
    chan_tx *tx;
    chan_rx *rx;
    make_chan(fl, cap, sizeof(struct seq_item), &tx, &rx);
    struct seq_producer *ps = calloc(nprod, sizeof(*ps));
    pthread_t *ts = calloc(nprod, sizeof(*ts));
    uint64_t *counts = calloc(nprod, sizeof(*counts));
    ck_assert_ptr_nonnull(ps);
    ck_assert_ptr_nonnull(ts);
    ck_assert_ptr_nonnull(counts);
    for (uint32_t p = 0; p < nprod; p++) {
        ps[p].tx = chan_sender_clone(tx);
        ck_assert_ptr_nonnull(ps[p].tx);
        ps[p].id = p;
        ps[p].count = total / nprod + (p < total % nprod);
        counts[p] = ps[p].count;
    }
    /* As in Rust's example, the original sender is dropped so that only the
     * producers keep the channel open. */
    chan_sender_drop(tx);
    for (uint32_t p = 0; p < nprod; p++)
        ts[p] = spawn(seq_producer_main, &ps[p]);
    receive_sequences(rx, batched, nprod, counts);
    for (uint32_t p = 0; p < nprod; p++) {
        join(ts[p]);
        ck_assert_int_eq(ps[p].result, CHAN_OK);
    }
    chan_receiver_drop(rx);
    free(counts);
    free(ts);
    free(ps);
}

/* Rust example 1: three producers, each with a cloned sender, the original
 * dropped; `for x in rx` ends once all three are gone. */
START_TEST(test_rust_example_1)
{
    int fl = _i;
    run_sequences(fl, 2, 3, 3000, 0);
}
END_TEST

struct ex2 {
    chan_tx *tx;
    atomic_int sent1, sent2;
    int r1, r2;
};

static void *ex2_sender(void *arg)
{
    struct ex2 *e = arg;
    int one = 1, two = 2;
    e->r1 = chan_send(e->tx, &one);
    atomic_store(&e->sent1, 1);
    e->r2 = chan_send(e->tx, &two);
    atomic_store(&e->sent2, 1);
    chan_sender_drop(e->tx);
    return NULL;
}

/* Rust example 2: sync_channel(1); the first send returns at once, the
 * second blocks until the receiver has taken the first item. */
START_TEST(test_rust_example_2)
{
    chan_tx *tx;
    chan_rx *rx;
    make_chan(FL_BOUNDED, 1, sizeof(int), &tx, &rx);
    struct ex2 e = {.tx = tx, .r1 = -1, .r2 = -1};
    atomic_init(&e.sent1, 0);
    atomic_init(&e.sent2, 0);
    pthread_t t = spawn(ex2_sender, &e);

    /* The first send needs no receiver. */
    while (!atomic_load(&e.sent1))
        sleep_ms(1);
    ck_assert_int_eq(e.r1, CHAN_OK);
    sleep_ms(200);
    ck_assert_msg(ld(&e.sent2) == 0, "second send returned before item 1 was received");

    int y = -1;
    ck_assert_int_eq(chan_recv(rx, &y), CHAN_OK);
    ck_assert_int_eq(y, 1);
    ck_assert_int_eq(chan_recv(rx, &y), CHAN_OK);
    ck_assert_int_eq(y, 2);
    join(t);
    ck_assert_int_eq(ld(&e.sent2), 1);
    ck_assert_int_eq(e.r2, CHAN_OK);
    ck_assert_int_eq(chan_recv(rx, &y), CHAN_DISCONNECTED);
    chan_receiver_drop(rx);
}
END_TEST

/* ---- rendezvous (capacity 0) ------------------------------------------- */

struct one_send {
    chan_tx *tx;
    int value;
    int kind; /* 0 send, 1 send_timeout(LONG) */
    unsigned delay_ms;
    atomic_int done;
    int result;
};

static void *one_send_main(void *arg)
{
    struct one_send *s = arg;
    if (s->delay_ms)
        sleep_ms(s->delay_ms);
    s->result = s->kind == 0 ? chan_send(s->tx, &s->value)
                             : chan_send_timeout(s->tx, &s->value, LONG_NS);
    atomic_store(&s->done, 1);
    return NULL;
}

struct one_recv {
    chan_rx *rx;
    int kind;
    unsigned delay_ms;
    atomic_int started, done;
    int result;
    size_t got;
    int value;
};

static void *one_recv_main(void *arg)
{
    struct one_recv *s = arg;
    atomic_store(&s->started, 1);
    if (s->delay_ms)
        sleep_ms(s->delay_ms);
    s->result = recv_one(s->rx, s->kind, &s->value, &s->got);
    atomic_store(&s->done, 1);
    return NULL;
}

/* send on a rendezvous channel returns only once the receiver took the item. */
START_TEST(test_rendezvous_send_blocks)
{
    int kind = _i; /* send or send_timeout */
    chan_tx *tx;
    chan_rx *rx;
    make_chan(FL_RENDEZVOUS, 0, sizeof(int), &tx, &rx);
    struct one_send s = {.tx = tx, .value = 42, .kind = kind, .result = -1};
    atomic_init(&s.done, 0);
    pthread_t t = spawn(one_send_main, &s);
    sleep_ms(200);
    ck_assert_msg(ld(&s.done) == 0, "rendezvous send returned with no receiver");
    struct chan_stats st;
    chan_stats(rx, &st);
    ck_assert_uint_eq(st.capacity, 0);

    int y = -1;
    ck_assert_int_eq(chan_recv(rx, &y), CHAN_OK);
    ck_assert_int_eq(y, 42);
    join(t);
    ck_assert_int_eq(s.result, CHAN_OK);
    ck_assert_int_eq(chan_try_recv(rx, &y), CHAN_EMPTY);
    chan_sender_drop(tx);
    chan_receiver_drop(rx);
}
END_TEST

/* try_send on a rendezvous channel succeeds only when a receiver waits. */
START_TEST(test_rendezvous_try_send)
{
    chan_tx *tx;
    chan_rx *rx;
    make_chan(FL_RENDEZVOUS, 0, sizeof(int), &tx, &rx);
    int v = 7, y = -1;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(chan_try_send(tx, &v), CHAN_FULL);
    ck_assert_int_eq(chan_try_recv(rx, &y), CHAN_EMPTY);

    struct one_recv r = {.rx = rx, .kind = RK_RECV, .result = -1, .value = -1};
    atomic_init(&r.started, 0);
    atomic_init(&r.done, 0);
    pthread_t t = spawn(one_recv_main, &r);
    /* Retry until the receiver is blocked in chan_recv; the Check timeout
     * fails the test if that never lets the item through. */
    int res;
    while ((res = chan_try_send(tx, &v)) == CHAN_FULL)
        sleep_ms(1);
    ck_assert_int_eq(res, CHAN_OK);
    join(t);
    ck_assert_int_eq(r.result, CHAN_OK);
    ck_assert_int_eq(r.value, 7);
    /* The receiver left again: no one waits. */
    ck_assert_int_eq(chan_try_send(tx, &v), CHAN_FULL);
    chan_sender_drop(tx);
    chan_receiver_drop(rx);
}
END_TEST

/* send_timeout on a rendezvous channel with no receiver times out, and the
 * item is withdrawn: a later receiver gets the next item, not that one. */
START_TEST(test_rendezvous_send_timeout)
{
    chan_tx *tx;
    chan_rx *rx;
    make_chan(FL_RENDEZVOUS, 0, sizeof(int), &tx, &rx);
    int a = 1, y = -1;
    uint64_t t0 = now_ns();
    ck_assert_int_eq(chan_send_timeout(tx, &a, 100 * MS), CHAN_TIMEOUT);
    uint64_t waited = now_ns() - t0;
    ck_assert_msg(waited >= 90 * MS, "send_timeout(100ms) returned after %llu ns",
                  (unsigned long long)waited);
    ck_assert_int_eq(chan_send_timeout(tx, &a, 0), CHAN_TIMEOUT);
    ck_assert_int_eq(chan_try_recv(rx, &y), CHAN_EMPTY);
    ck_assert_int_eq(chan_recv_timeout(rx, &y, 50 * MS), CHAN_TIMEOUT);

    struct one_send s = {.tx = tx, .value = 2, .kind = 0, .delay_ms = 50, .result = -1};
    atomic_init(&s.done, 0);
    pthread_t t = spawn(one_send_main, &s);
    ck_assert_int_eq(chan_recv(rx, &y), CHAN_OK);
    ck_assert_int_eq(y, 2);
    join(t);
    ck_assert_int_eq(s.result, CHAN_OK);
    ck_assert_int_eq(chan_recv_timeout(rx, &y, 50 * MS), CHAN_TIMEOUT);

    /* send_timeout succeeds when a receiver arrives in time. */
    struct one_recv r = {.rx = rx, .kind = RK_RECV, .delay_ms = 50, .value = -1};
    atomic_init(&r.started, 0);
    atomic_init(&r.done, 0);
    t = spawn(one_recv_main, &r);
    int c = 3;
    ck_assert_int_eq(chan_send_timeout(tx, &c, LONG_NS), CHAN_OK);
    join(t);
    ck_assert_int_eq(r.result, CHAN_OK);
    ck_assert_int_eq(r.value, 3);
    chan_sender_drop(tx);
    ck_assert_int_eq(chan_recv(rx, &y), CHAN_DISCONNECTED);
    chan_receiver_drop(rx);
}
END_TEST

/* try_recv takes the item of a sender blocked in send (Rust's behaviour). */
START_TEST(test_rendezvous_try_recv)
{
    chan_tx *tx;
    chan_rx *rx;
    make_chan(FL_RENDEZVOUS, 0, sizeof(int), &tx, &rx);
    struct one_send s = {.tx = tx, .value = 9, .kind = 0, .result = -1};
    atomic_init(&s.done, 0);
    pthread_t t = spawn(one_send_main, &s);
    int y = -1, r;
    while ((r = chan_try_recv(rx, &y)) == CHAN_EMPTY)
        sleep_ms(1);
    ck_assert_int_eq(r, CHAN_OK);
    ck_assert_int_eq(y, 9);
    join(t);
    ck_assert_int_eq(s.result, CHAN_OK);
    chan_sender_drop(tx);
    ck_assert_int_eq(chan_try_recv(rx, &y), CHAN_DISCONNECTED);
    chan_receiver_drop(rx);
}
END_TEST

START_TEST(test_rendezvous_many_senders)
{
    run_sequences(FL_RENDEZVOUS, 0, 4, sanitized() ? 4000 : 20000, _i);
}
END_TEST

/* ---- disconnection while the other side is blocked ---------------------- */

/* A receiver blocked in any receive call wakes with DISCONNECTED when the
 * last sender is dropped from another thread, and not before. */
START_TEST(test_recv_wakes_on_last_sender_drop)
{
    int fl = _i / RK_COUNT, kind = _i % RK_COUNT;
    chan_tx *tx;
    chan_rx *rx;
    make_chan(fl, 4, sizeof(int), &tx, &rx);
    chan_tx *tx2 = chan_sender_clone(tx);
    ck_assert_ptr_nonnull(tx2);
    struct one_recv r = {.rx = rx, .kind = kind, .result = -1, .value = -7};
    atomic_init(&r.started, 0);
    atomic_init(&r.done, 0);
    pthread_t t = spawn(one_recv_main, &r);
    sleep_ms(50);
    ck_assert_msg(ld(&r.done) == 0, "%s/%d: receive returned on an empty channel",
                  flavour_name(fl), kind);
    chan_sender_drop(tx);
    sleep_ms(50);
    ck_assert_msg(ld(&r.done) == 0, "%s/%d: receive returned with a sender left",
                  flavour_name(fl), kind);
    chan_sender_drop(tx2);
    join(t);
    ck_assert_int_eq(r.result, CHAN_DISCONNECTED);
    ck_assert_int_eq(r.value, -7);
    chan_receiver_drop(rx);
}
END_TEST

struct blocked_sender {
    chan_tx *tx;
    int kind; /* 0 send, 1 send_timeout(LONG) */
    struct big item;
    atomic_int done;
    int result;
};

static void *blocked_sender_main(void *arg)
{
    struct blocked_sender *s = arg;
    s->result = s->kind == 0 ? chan_send(s->tx, &s->item)
                             : chan_send_timeout(s->tx, &s->item, LONG_NS);
    atomic_store(&s->done, 1);
    return NULL;
}

/* Senders blocked on a full (or rendezvous) channel wake with DISCONNECTED
 * when the receiver is dropped, and their items are handed back intact. */
START_TEST(test_send_wakes_on_receiver_drop)
{
    int fl = _i / 2 ? FL_RENDEZVOUS : FL_BOUNDED, kind = _i % 2;
    enum { NS = 3 };
    chan_tx *tx;
    chan_rx *rx;
    make_chan(fl, 1, sizeof(struct big), &tx, &rx);
    if (fl == FL_BOUNDED) {
        struct big filler = big_make(0);
        ck_assert_int_eq(chan_try_send(tx, &filler), CHAN_OK);
    }
    struct blocked_sender s[NS];
    pthread_t t[NS];
    for (int i = 0; i < NS; i++) {
        s[i].tx = chan_sender_clone(tx);
        ck_assert_ptr_nonnull(s[i].tx);
        s[i].kind = kind;
        s[i].item = big_make(100u + (unsigned)i);
        s[i].result = -1;
        atomic_init(&s[i].done, 0);
        t[i] = spawn(blocked_sender_main, &s[i]);
    }
    sleep_ms(100);
    for (int i = 0; i < NS; i++)
        ck_assert_msg(ld(&s[i].done) == 0, "sender %d returned on a full channel", i);
    chan_receiver_drop(rx);
    for (int i = 0; i < NS; i++) {
        join(t[i]);
        ck_assert_int_eq(s[i].result, CHAN_DISCONNECTED);
        struct big want = big_make(100u + (unsigned)i);
        ck_assert_int_eq(memcmp(&s[i].item, &want, sizeof(want)), 0);
        chan_sender_drop(s[i].tx);
    }
    chan_sender_drop(tx);
}
END_TEST

/* Channel configurations for the race tests: bounded 1, bounded 8,
 * unbounded, rendezvous. */
static void race_config(int idx, int *fl, size_t *cap)
{
    static const int fls[] = {FL_BOUNDED, FL_BOUNDED, FL_UNBOUNDED, FL_RENDEZVOUS};
    static const size_t caps[] = {1, 8, 0, 0};
    *fl = fls[idx];
    *cap = caps[idx];
}

/* Items sent right before the last sender drops are all received before
 * DISCONNECTED; repeated to catch a race between the last item and the drop. */
START_TEST(test_items_before_drop_delivered)
{
    int fl;
    size_t cap;
    race_config(_i / 2, &fl, &cap);
    int cycles = sanitized() ? 100 : 300;
    for (int c = 0; c < cycles; c++)
        run_sequences(fl, cap, 1 + (uint32_t)(c % 3), 50, _i % 2);
}
END_TEST

/* A producer that, each time it is told to, sends one item on the sender
 * it was handed and drops it at once. */
struct last_item {
    atomic_int go; /* cycle number to run; -1 to quit */
    atomic_int finished;
    chan_tx *tx;
};

static void *last_item_main(void *arg)
{
    struct last_item *l = arg;
    for (int cycle = 1;; cycle++) {
        int g;
        while ((g = atomic_load(&l->go)) != cycle && g != -1)
            ;
        if (g == -1)
            return NULL;
        int v = cycle;
        chan_send(l->tx, &v);
        chan_sender_drop(l->tx);
        atomic_store(&l->finished, cycle);
    }
}

/* The narrowest form of "items sent before the last sender dropped are
 * received": one item, sent and followed at once by the drop, while the
 * receiver polls.  A receiver that finds the ring empty, then sees no
 * senders and reports DISCONNECTED without looking again, loses the item.
 * Both threads spin, so the window is hit often on two cores.  Bounded
 * channels only: the lock-free ring is where this race lives, and polling
 * a mutex-based flavour in a tight loop would starve the producer. */
START_TEST(test_last_item_race)
{
    int fl = FL_BOUNDED, kind = _i; /* kind: 0 try_recv polling, 1 recv */
    int cycles = (sanitized() ? 2000 : 20000) / (kind ? 20 : 1);
    struct last_item l;
    atomic_init(&l.go, 0);
    atomic_init(&l.finished, 0);
    l.tx = NULL;
    pthread_t t = spawn(last_item_main, &l);
    for (int c = 1; c <= cycles; c++) {
        chan_tx *tx;
        chan_rx *rx;
        make_chan(fl, 4, sizeof(int), &tx, &rx);
        l.tx = tx;
        atomic_store(&l.go, c);
        int got = 0, r, v = -1;
        for (;;) {
            r = kind == 0 ? chan_try_recv(rx, &v) : chan_recv(rx, &v);
            if (r == CHAN_OK) {
                if (v != c)
                    ck_abort_msg("cycle %d: received %d", c, v);
                got++;
            } else if (r != CHAN_EMPTY) {
                break;
            }
        }
        if (r != CHAN_DISCONNECTED || got != 1)
            ck_abort_msg("%s cycle %d: %d item(s) received before %s", flavour_name(fl), c, got,
                         chan_result_str(r));
        while (atomic_load(&l.finished) != c)
            ;
        chan_receiver_drop(rx);
    }
    atomic_store(&l.go, -1);
    join(t);
}
END_TEST

struct racer {
    chan_tx *tx;
    uint32_t id;
    uint64_t fail_at;
    int result;
};

static void *racer_main(void *arg)
{
    struct racer *p = arg;
    for (uint64_t s = 0;; s++) {
        struct seq_item it = seq_item_make(p->id, s);
        int r = chan_send(p->tx, &it);
        if (r != CHAN_OK) {
            p->result = r;
            p->fail_at = s;
            break;
        }
    }
    return NULL;
}

/* The receiver drops while senders are busy: every sender must come back
 * with DISCONNECTED, no item whose send failed may have been received, and
 * on a rendezvous channel every successful send must have been received. */
START_TEST(test_receiver_drop_race)
{
    int fl;
    size_t cap;
    race_config(_i, &fl, &cap);
    enum { NP = 4 };
    int cycles = sanitized() ? 30 : 100;
    for (int c = 0; c < cycles; c++) {
        chan_tx *tx;
        chan_rx *rx;
        make_chan(fl, cap, sizeof(struct seq_item), &tx, &rx);
        struct racer ps[NP];
        pthread_t ts[NP];
        uint64_t next[NP] = {0};
        for (uint32_t p = 0; p < NP; p++) {
            ps[p] = (struct racer){.tx = chan_sender_clone(tx), .id = p, .result = -1};
            ck_assert_ptr_nonnull(ps[p].tx);
            ts[p] = spawn(racer_main, &ps[p]);
        }
        int take = 1 + (c * 37) % 200;
        for (int i = 0; i < take; i++) {
            struct seq_item it;
            int r = chan_recv(rx, &it);
            if (r != CHAN_OK || it.producer >= NP || it.seq != next[it.producer])
                ck_abort_msg("recv #%d: r=%d producer=%u seq=%llu", i, r, it.producer,
                             (unsigned long long)it.seq);
            next[it.producer]++;
        }
        chan_receiver_drop(rx);
        for (uint32_t p = 0; p < NP; p++) {
            join(ts[p]);
            ck_assert_int_eq(ps[p].result, CHAN_DISCONNECTED);
            ck_assert_msg(next[p] <= ps[p].fail_at,
                          "producer %u: seq %llu was received but its send failed", p,
                          (unsigned long long)ps[p].fail_at);
            if (fl == FL_RENDEZVOUS)
                ck_assert_msg(next[p] == ps[p].fail_at,
                              "rendezvous producer %u: %llu sends succeeded, %llu received", p,
                              (unsigned long long)ps[p].fail_at, (unsigned long long)next[p]);
            chan_sender_drop(ps[p].tx);
        }
        chan_sender_drop(tx);
    }
}
END_TEST

/* Dropping in either order, with 128-byte items still buffered, frees
 * everything (AddressSanitizer's leak check watches this). */
START_TEST(test_drop_order)
{
    for (int fl = FL_BOUNDED; fl <= FL_UNBOUNDED; fl++) {
        for (int order = 0; order < 2; order++) {
            chan_tx *tx;
            chan_rx *rx;
            make_chan(fl, 8, sizeof(struct big), &tx, &rx);
            chan_tx *tx2 = chan_sender_clone(tx);
            ck_assert_ptr_nonnull(tx2);
            for (unsigned i = 0; i < 5; i++) {
                struct big v = big_make(i);
                ck_assert_int_eq(chan_try_send(i % 2 ? tx : tx2, &v), CHAN_OK);
            }
            if (order == 0) {
                chan_sender_drop(tx);
                chan_receiver_drop(rx);
                struct big v = big_make(9);
                ck_assert_int_eq(chan_try_send(tx2, &v), CHAN_DISCONNECTED);
                chan_sender_drop(tx2);
            } else {
                chan_sender_drop(tx);
                chan_sender_drop(tx2);
                struct big v;
                ck_assert_int_eq(chan_try_recv(rx, &v), CHAN_OK);
                chan_receiver_drop(rx);
            }
        }
    }
}
END_TEST

/* ---- chan_recv_many ---------------------------------------------------- */

START_TEST(test_recv_many_fifo)
{
    int fl = _i;
    chan_tx *tx;
    chan_rx *rx;
    make_chan(fl, 16, sizeof(uint32_t), &tx, &rx);
    enum { MAX = 4 };
    uint32_t buf[MAX + 1];
    uint32_t next_in = 0, next_out = 0;
    for (int round = 0; round < 50; round++) {
        uint32_t n = 1 + (uint32_t)(round * 7) % 16;
        for (uint32_t i = 0; i < n; i++, next_in++)
            ck_assert_int_eq(chan_try_send(tx, &next_in), CHAN_OK);
        uint32_t total = 0;
        while (total < n) {
            size_t got = 0;
            buf[MAX] = 0xDEADBEEF; /* canary: recv_many must not write past max */
            ck_assert_int_eq(chan_recv_many(rx, buf, MAX, &got), CHAN_OK);
            ck_assert_uint_ge(got, 1);
            ck_assert_uint_le(got, MAX);
            ck_assert_uint_le(total + got, n);
            ck_assert_uint_eq(buf[MAX], 0xDEADBEEF);
            for (size_t i = 0; i < got; i++, next_out++)
                ck_assert_uint_eq(buf[i], next_out);
            total += (uint32_t)got;
        }
        uint32_t y;
        ck_assert_int_eq(chan_try_recv(rx, &y), CHAN_EMPTY);
    }
    /* What is left when the last sender goes is still delivered. */
    for (uint32_t i = 0; i < 3; i++, next_in++)
        ck_assert_int_eq(chan_try_send(tx, &next_in), CHAN_OK);
    chan_sender_drop(tx);
    uint32_t total = 0;
    size_t got = 0;
    int r;
    while ((r = chan_recv_many_timeout(rx, buf, MAX, &got, LONG_NS)) == CHAN_OK) {
        ck_assert_uint_ge(got, 1);
        for (size_t i = 0; i < got; i++, next_out++)
            ck_assert_uint_eq(buf[i], next_out);
        total += (uint32_t)got;
    }
    ck_assert_int_eq(r, CHAN_DISCONNECTED);
    ck_assert_uint_eq(total, 3);
    ck_assert_int_eq(chan_recv_many(rx, buf, MAX, &got), CHAN_DISCONNECTED);
    chan_receiver_drop(rx);
}
END_TEST

struct many_recv {
    chan_rx *rx;
    int timed;
    atomic_int done;
    int result;
    size_t got;
    int buf[8];
};

static void *many_recv_main(void *arg)
{
    struct many_recv *m = arg;
    m->result = m->timed ? chan_recv_many_timeout(m->rx, m->buf, 8, &m->got, LONG_NS)
                         : chan_recv_many(m->rx, m->buf, 8, &m->got);
    atomic_store(&m->done, 1);
    return NULL;
}

/* recv_many blocks until there is at least one item, then returns with what
 * there is rather than waiting to fill the batch. */
START_TEST(test_recv_many_blocks)
{
    int fl = _i / 2, timed = _i % 2;
    chan_tx *tx;
    chan_rx *rx;
    make_chan(fl, 16, sizeof(int), &tx, &rx);
    struct many_recv m = {.rx = rx, .timed = timed, .result = -1};
    atomic_init(&m.done, 0);
    pthread_t t = spawn(many_recv_main, &m);
    sleep_ms(100);
    ck_assert_msg(ld(&m.done) == 0, "recv_many returned on an empty channel");
    int v = 31;
    ck_assert_int_eq(chan_send(tx, &v), CHAN_OK);
    join(t);
    ck_assert_int_eq(m.result, CHAN_OK);
    ck_assert_uint_eq(m.got, 1);
    ck_assert_int_eq(m.buf[0], 31);
    chan_sender_drop(tx);
    chan_receiver_drop(rx);
}
END_TEST

START_TEST(test_recv_many_timeout)
{
    chan_tx *tx;
    chan_rx *rx;
    make_chan(FL_BOUNDED, 8, sizeof(int), &tx, &rx);
    int buf[8];
    size_t got = 99;
    uint64_t t0 = now_ns();
    ck_assert_int_eq(chan_recv_many_timeout(rx, buf, 8, &got, 100 * MS), CHAN_TIMEOUT);
    uint64_t waited = now_ns() - t0;
    ck_assert_msg(waited >= 90 * MS, "recv_many_timeout(100ms) returned after %llu ns",
                  (unsigned long long)waited);
    ck_assert_int_eq(chan_recv_many_timeout(rx, buf, 8, &got, 0), CHAN_TIMEOUT);

    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(chan_try_send(tx, &i), CHAN_OK);
    ck_assert_int_eq(chan_recv_many_timeout(rx, buf, 8, &got, 100 * MS), CHAN_OK);
    ck_assert_uint_ge(got, 1);
    ck_assert_uint_le(got, 5);
    for (size_t i = 0; i < got; i++)
        ck_assert_int_eq(buf[i], (int)i);
    chan_sender_drop(tx);
    chan_receiver_drop(rx);
}
END_TEST

/* ---- the notify hook --------------------------------------------------- */

/* Set on threads that act as the receiver, to check where fn runs. */
static _Thread_local int tl_receiver;

struct probe {
    atomic_int calls;
    atomic_int off_thread;
    sem_t sem;
};

static void probe_init(struct probe *p)
{
    atomic_init(&p->calls, 0);
    atomic_init(&p->off_thread, 0);
    ck_assert_int_eq(sem_init(&p->sem, 0, 0), 0);
}

static void probe_fn(void *arg)
{
    struct probe *p = arg;
    if (!tl_receiver)
        atomic_fetch_add(&p->off_thread, 1);
    atomic_fetch_add(&p->calls, 1);
    sem_post(&p->sem);
}

enum { NK_RECV, NK_TRY_RECV, NK_RECV_TIMEOUT, NK_RECV_MANY, NK_RECV_MANY_TIMEOUT, NK_COUNT };

struct notify_rx {
    chan_rx *rx;
    int kind;
    int drop; /* drop the receiver instead of receiving */
    int result;
    int value;
};

static void *notify_rx_main(void *arg)
{
    struct notify_rx *n = arg;
    size_t got = 0;
    int buf[4];
    tl_receiver = 1;
    if (n->drop) {
        chan_receiver_drop(n->rx);
        return NULL;
    }
    switch (n->kind) {
    case NK_RECV:
        n->result = chan_recv(n->rx, &n->value);
        break;
    case NK_TRY_RECV:
        n->result = chan_try_recv(n->rx, &n->value);
        break;
    case NK_RECV_TIMEOUT:
        n->result = chan_recv_timeout(n->rx, &n->value, LONG_NS);
        break;
    case NK_RECV_MANY:
        n->result = chan_recv_many(n->rx, buf, 1, &got);
        n->value = buf[0];
        break;
    default:
        n->result = chan_recv_many_timeout(n->rx, buf, 1, &got, LONG_NS);
        n->value = buf[0];
        break;
    }
    return NULL;
}

/* After try_send says FULL, the next receive that frees space calls fn, on
 * the receiving thread; every receive call counts. */
START_TEST(test_notify_after_recv)
{
    int kind = _i;
    chan_tx *tx;
    chan_rx *rx;
    make_chan(FL_BOUNDED, 2, sizeof(int), &tx, &rx);
    struct probe pr;
    probe_init(&pr);
    chan_sender_set_notify(tx, probe_fn, &pr);
    int a = 10, b = 11, c = 12;
    ck_assert_int_eq(chan_try_send(tx, &a), CHAN_OK);
    ck_assert_int_eq(chan_try_send(tx, &b), CHAN_OK);
    ck_assert_int_eq(chan_try_send(tx, &c), CHAN_FULL);
    int before = atomic_load(&pr.calls);

    struct notify_rx n = {.rx = rx, .kind = kind, .result = -1, .value = -1};
    pthread_t t = spawn(notify_rx_main, &n);
    join(t);
    ck_assert_int_eq(n.result, CHAN_OK);
    ck_assert_int_eq(n.value, 10);
    ck_assert_int_gt(ld(&pr.calls), before);
    ck_assert_int_eq(ld(&pr.off_thread), 0);
    ck_assert_int_eq(chan_try_send(tx, &c), CHAN_OK);

    chan_sender_drop(tx);
    chan_receiver_drop(rx);
    sem_destroy(&pr.sem);
}
END_TEST

/* Two senders both told FULL: once the receiver has drained the channel,
 * both must have been told, or one of them would wait forever. */
START_TEST(test_notify_two_senders)
{
    chan_tx *tx;
    chan_rx *rx;
    make_chan(FL_BOUNDED, 2, sizeof(int), &tx, &rx);
    chan_tx *tx2 = chan_sender_clone(tx);
    ck_assert_ptr_nonnull(tx2);
    struct probe p1, p2;
    probe_init(&p1);
    probe_init(&p2);
    chan_sender_set_notify(tx, probe_fn, &p1);
    chan_sender_set_notify(tx2, probe_fn, &p2);
    int v = 1;
    ck_assert_int_eq(chan_try_send(tx, &v), CHAN_OK);
    ck_assert_int_eq(chan_try_send(tx2, &v), CHAN_OK);
    ck_assert_int_eq(chan_try_send(tx, &v), CHAN_FULL);
    ck_assert_int_eq(chan_try_send(tx2, &v), CHAN_FULL);

    for (int i = 0; i < 2; i++) {
        struct notify_rx n = {.rx = rx, .kind = NK_TRY_RECV, .result = -1};
        pthread_t t = spawn(notify_rx_main, &n);
        join(t);
        ck_assert_int_eq(n.result, CHAN_OK);
    }
    ck_assert_int_ge(ld(&p1.calls), 1);
    ck_assert_int_ge(ld(&p2.calls), 1);
    ck_assert_int_eq(ld(&p1.off_thread), 0);
    ck_assert_int_eq(ld(&p2.off_thread), 0);
    chan_sender_drop(tx);
    chan_sender_drop(tx2);
    chan_receiver_drop(rx);
    sem_destroy(&p1.sem);
    sem_destroy(&p2.sem);
}
END_TEST

/* Dropping the receiver wakes an armed sender, so that it can see
 * DISCONNECTED instead of waiting for space that will never come. */
START_TEST(test_notify_on_receiver_drop)
{
    int fl = _i ? FL_RENDEZVOUS : FL_BOUNDED;
    chan_tx *tx;
    chan_rx *rx;
    make_chan(fl, 1, sizeof(int), &tx, &rx);
    struct probe pr;
    probe_init(&pr);
    chan_sender_set_notify(tx, probe_fn, &pr);
    int v = 1;
    if (fl == FL_BOUNDED)
        ck_assert_int_eq(chan_try_send(tx, &v), CHAN_OK);
    ck_assert_int_eq(chan_try_send(tx, &v), CHAN_FULL);
    int before = atomic_load(&pr.calls);
    struct notify_rx n = {.rx = rx, .drop = 1};
    pthread_t t = spawn(notify_rx_main, &n);
    join(t);
    ck_assert_int_gt(ld(&pr.calls), before);
    ck_assert_int_eq(ld(&pr.off_thread), 0);
    ck_assert_int_eq(chan_try_send(tx, &v), CHAN_DISCONNECTED);
    chan_sender_drop(tx);
    sem_destroy(&pr.sem);
}
END_TEST

/* On a rendezvous channel "space" is a waiting receiver: a receiver that
 * starts waiting must wake a sender whose try_send said FULL. */
START_TEST(test_notify_rendezvous)
{
    chan_tx *tx;
    chan_rx *rx;
    make_chan(FL_RENDEZVOUS, 0, sizeof(int), &tx, &rx);
    struct probe pr;
    probe_init(&pr);
    chan_sender_set_notify(tx, probe_fn, &pr);
    int v = 77, r;
    ck_assert_int_eq(chan_try_send(tx, &v), CHAN_FULL);
    struct notify_rx n = {.rx = rx, .kind = NK_RECV, .result = -1, .value = -1};
    pthread_t t = spawn(notify_rx_main, &n);
    /* Only the notification may prompt a retry; if it never comes, the
     * Check timeout fails the test. */
    while ((r = chan_try_send(tx, &v)) == CHAN_FULL)
        while (sem_wait(&pr.sem) != 0 && errno == EINTR)
            ;
    ck_assert_int_eq(r, CHAN_OK);
    join(t);
    ck_assert_int_eq(n.result, CHAN_OK);
    ck_assert_int_eq(n.value, 77);
    ck_assert_int_eq(ld(&pr.off_thread), 0);
    chan_sender_drop(tx);
    chan_receiver_drop(rx);
    sem_destroy(&pr.sem);
}
END_TEST

/* A producer that never blocks in the channel: try_send, and on FULL wait
 * for the notify function to post the semaphore.  A lost wake-up hangs it. */
static void *notify_producer_main(void *arg)
{
    struct seq_producer *p = arg;
    p->result = CHAN_OK;
    p->fail_at = p->count;
    for (uint64_t s = 0; s < p->count; s++) {
        struct seq_item it = seq_item_make(p->id, s);
        int r;
        while ((r = chan_try_send(p->tx, &it)) == CHAN_FULL)
            while (sem_wait(p->sem) != 0 && errno == EINTR)
                ;
        if (r != CHAN_OK) {
            p->result = r;
            p->fail_at = s;
            break;
        }
    }
    chan_sender_drop(p->tx);
    return NULL;
}

/* Variants: capacity, producers, batched receive, items. */
static const struct {
    size_t cap;
    uint32_t nprod;
    int batched;
    uint64_t items;
} notify_stress_cfg[] = {
    {4, 1, 0, 200000}, {4, 1, 1, 200000}, {4, 4, 0, 200000},
    {4, 4, 1, 200000}, {1, 2, 1, 100000}, {0, 2, 0, 20000},
};

START_TEST(test_notify_stress)
{
    size_t cap = notify_stress_cfg[_i].cap;
    uint32_t np = notify_stress_cfg[_i].nprod;
    uint64_t items = notify_stress_cfg[_i].items;
    if (strcmp(san(), "tsan") == 0)
        items /= 4;
    chan_tx *tx;
    chan_rx *rx;
    make_chan(cap ? FL_BOUNDED : FL_RENDEZVOUS, cap, sizeof(struct seq_item), &tx, &rx);
    struct seq_producer ps[4];
    struct probe probes[4];
    pthread_t ts[4];
    uint64_t counts[4] = {0};
    tl_receiver = 1; /* this thread receives */
    for (uint32_t p = 0; p < np; p++) {
        probe_init(&probes[p]);
        ps[p] = (struct seq_producer){.tx = chan_sender_clone(tx), .id = p,
                                      .count = items / np, .sem = &probes[p].sem};
        ck_assert_ptr_nonnull(ps[p].tx);
        chan_sender_set_notify(ps[p].tx, probe_fn, &probes[p]);
        counts[p] = items / np;
    }
    chan_sender_drop(tx);
    for (uint32_t p = 0; p < np; p++)
        ts[p] = spawn(notify_producer_main, &ps[p]);
    receive_sequences(rx, notify_stress_cfg[_i].batched, np, counts);
    for (uint32_t p = 0; p < np; p++) {
        join(ts[p]);
        ck_assert_int_eq(ps[p].result, CHAN_OK);
        ck_assert_int_eq(ld(&probes[p].off_thread), 0);
        sem_destroy(&probes[p].sem);
    }
    chan_receiver_drop(rx);
}
END_TEST

/* ---- statistics -------------------------------------------------------- */

START_TEST(test_stats_bounded)
{
    chan_tx *tx;
    chan_rx *rx;
    make_chan(FL_BOUNDED, 8, sizeof(int), &tx, &rx);
    struct chan_stats st;
    chan_stats(rx, &st);
    ck_assert_uint_eq(st.capacity, 8);
    ck_assert_uint_eq(st.depth, 0);
    ck_assert_uint_eq(st.high_water, 0);
    ck_assert_uint_eq(st.senders, 1);
    ck_assert_uint_eq(st.send_waiting, 0);
    ck_assert_uint_eq(st.full_events, 0);

    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(chan_send(tx, &i), CHAN_OK);
    chan_stats(rx, &st);
    ck_assert_uint_eq(st.depth, 3);

    chan_tx *c[3];
    for (int i = 0; i < 3; i++) {
        c[i] = chan_sender_clone(tx);
        ck_assert_ptr_nonnull(c[i]);
    }
    chan_stats(rx, &st);
    ck_assert_uint_eq(st.senders, 4);
    chan_sender_drop(c[0]);
    chan_sender_drop(c[1]);
    chan_stats(rx, &st);
    ck_assert_uint_eq(st.senders, 2);

    int y;
    ck_assert_int_eq(chan_recv(rx, &y), CHAN_OK);
    ck_assert_int_eq(chan_recv(rx, &y), CHAN_OK);
    chan_stats(rx, &st);
    ck_assert_uint_eq(st.depth, 1);

    for (int i = 0; i < 7; i++)
        ck_assert_int_eq(chan_try_send(tx, &i), CHAN_OK);
    ck_assert_int_eq(chan_try_send(tx, &y), CHAN_FULL);
    chan_stats(rx, &st);
    ck_assert_uint_eq(st.depth, 8);
    ck_assert_uint_eq(st.full_events, 1);
    ck_assert_int_eq(chan_try_send(c[2], &y), CHAN_FULL);
    chan_stats(rx, &st);
    ck_assert_uint_eq(st.full_events, 2);

    chan_sender_drop(c[2]);
    chan_sender_drop(tx);
    chan_stats(rx, &st);
    ck_assert_uint_eq(st.senders, 0);
    ck_assert_uint_eq(st.depth, 8);
    chan_receiver_drop(rx);
}
END_TEST

/* high_water is the most items ever buffered at once, whether or not the
 * receiver has looked since: a stuck writer is when it matters most. */
START_TEST(test_stats_high_water)
{
    int fl = _i;
    chan_tx *tx;
    chan_rx *rx;
    make_chan(fl, 8, sizeof(int), &tx, &rx);
    struct chan_stats st;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(chan_send(tx, &i), CHAN_OK);
    chan_stats(rx, &st);
    ck_assert_uint_eq(st.depth, 3);
    ck_assert_uint_eq(st.high_water, 3);

    int y;
    ck_assert_int_eq(chan_recv(rx, &y), CHAN_OK);
    ck_assert_int_eq(chan_recv(rx, &y), CHAN_OK);
    chan_stats(rx, &st);
    ck_assert_uint_eq(st.depth, 1);
    ck_assert_uint_eq(st.high_water, 3);

    for (int i = 0; i < 7; i++)
        ck_assert_int_eq(chan_send(tx, &i), CHAN_OK);
    chan_stats(rx, &st);
    ck_assert_uint_eq(st.depth, 8);
    ck_assert_uint_eq(st.high_water, 8);
    while (chan_try_recv(rx, &y) == CHAN_OK)
        ;
    chan_stats(rx, &st);
    ck_assert_uint_eq(st.depth, 0);
    ck_assert_uint_eq(st.high_water, 8);
    chan_sender_drop(tx);
    chan_receiver_drop(rx);
}
END_TEST

/* send_waiting counts a sender asleep in chan_send and one armed by a
 * failing try_send with a notify function. */
START_TEST(test_stats_send_waiting)
{
    chan_tx *tx;
    chan_rx *rx;
    make_chan(FL_BOUNDED, 1, sizeof(struct big), &tx, &rx);
    struct big v = big_make(1);
    ck_assert_int_eq(chan_send(tx, &v), CHAN_OK);
    struct blocked_sender s = {.tx = chan_sender_clone(tx), .kind = 0, .item = big_make(2)};
    ck_assert_ptr_nonnull(s.tx);
    atomic_init(&s.done, 0);
    pthread_t t = spawn(blocked_sender_main, &s);
    struct chan_stats st;
    /* Wait for the sender to fall asleep; the Check timeout bounds this. */
    do {
        sleep_ms(1);
        ck_assert_msg(ld(&s.done) == 0, "send on a full channel returned %d",
                      s.result);
        chan_stats(rx, &st);
    } while (st.send_waiting == 0);
    ck_assert_uint_eq(st.send_waiting, 1);
    ck_assert_uint_ge(st.full_events, 1);
    ck_assert_int_eq(ld(&s.done), 0);
    struct big y;
    ck_assert_int_eq(chan_recv(rx, &y), CHAN_OK);
    join(t);
    ck_assert_int_eq(s.result, CHAN_OK);
    chan_stats(rx, &st);
    ck_assert_uint_eq(st.send_waiting, 0);
    ck_assert_uint_eq(st.depth, 1);

    struct probe pr;
    probe_init(&pr);
    chan_sender_set_notify(tx, probe_fn, &pr);
    ck_assert_int_eq(chan_try_send(tx, &v), CHAN_FULL);
    chan_stats(rx, &st);
    ck_assert_uint_eq(st.send_waiting, 1);

    chan_sender_drop(s.tx);
    chan_sender_drop(tx);
    chan_receiver_drop(rx);
    sem_destroy(&pr.sem);
}
END_TEST

START_TEST(test_stats_other_flavours)
{
    chan_tx *tx;
    chan_rx *rx;
    struct chan_stats st;
    make_chan(FL_UNBOUNDED, 0, sizeof(int), &tx, &rx);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(chan_send(tx, &i), CHAN_OK);
    chan_stats(rx, &st);
    ck_assert_uint_eq(st.capacity, SIZE_MAX);
    ck_assert_uint_eq(st.depth, 1000);
    ck_assert_uint_eq(st.high_water, 1000);
    ck_assert_uint_eq(st.senders, 1);
    ck_assert_uint_eq(st.full_events, 0);
    chan_sender_drop(tx);
    chan_receiver_drop(rx);

    make_chan(FL_RENDEZVOUS, 0, sizeof(int), &tx, &rx);
    chan_stats(rx, &st);
    ck_assert_uint_eq(st.capacity, 0);
    ck_assert_uint_eq(st.depth, 0);
    ck_assert_uint_eq(st.senders, 1);
    chan_sender_drop(tx);
    chan_stats(rx, &st);
    ck_assert_uint_eq(st.senders, 0);
    chan_receiver_drop(rx);
}
END_TEST

/* ---- stress ------------------------------------------------------------ */

static const uint32_t stress_producers[] = {1, 2, 4, 16};
static const size_t stress_caps[] = {1, 2, 64, 4096};

/* 10^6 items in the normal build; sanitizers run a fifth of that. */
static uint64_t stress_total(void)
{
    return sanitized() ? 200000 : 1000000;
}

/* P producers x capacity, 16 combinations, per-producer order checked. */
START_TEST(test_stress_bounded)
{
    uint32_t np = stress_producers[_i / 4];
    size_t cap = stress_caps[_i % 4];
    run_sequences(FL_BOUNDED, cap, np, stress_total(), 0);
}
END_TEST

/* The writer's way of receiving: batches, with a few shapes. */
START_TEST(test_stress_bounded_batched)
{
    static const struct {
        uint32_t np;
        size_t cap;
    } cfg[] = {{2, 1}, {4, 64}, {16, 4096}, {3, 255}};
    run_sequences(FL_BOUNDED, cfg[_i].cap, cfg[_i].np, stress_total(), 1);
}
END_TEST

START_TEST(test_stress_unbounded)
{
    run_sequences(FL_UNBOUNDED, 0, 4, stress_total(), _i);
}
END_TEST

/* ---- try_send_many ------------------------------------------------------ */

/* A batch goes in order, stops at FULL with the count of what went, and
 * the rest can follow once there is room; on every flavour. */
START_TEST(test_try_send_many_fifo_and_full)
{
    int fl = _i;
    chan_tx *tx;
    chan_rx *rx;
    make_chan(fl, 5, sizeof(int), &tx, &rx);
    int items[12];
    for (int i = 0; i < 12; i++)
        items[i] = 100 + i;
    size_t sent = 99;
    int r = chan_try_send_many(tx, items, 12, &sent);
    if (fl == FL_BOUNDED) {
        ck_assert_int_eq(r, CHAN_FULL);
        ck_assert_uint_eq(sent, 5);
        /* Nothing more fits: 0 sent, still FULL. */
        size_t more = 99;
        ck_assert_int_eq(chan_try_send_many(tx, items + 5, 7, &more), CHAN_FULL);
        ck_assert_uint_eq(more, 0);
        int x;
        for (int i = 0; i < 3; i++) {
            ck_assert_int_eq(chan_recv(rx, &x), CHAN_OK);
            ck_assert_int_eq(x, 100 + i);
        }
        /* Room for 3: a partial batch. */
        ck_assert_int_eq(chan_try_send_many(tx, items + 5, 7, &more), CHAN_FULL);
        ck_assert_uint_eq(more, 3);
        for (int i = 3; i < 8; i++) {
            ck_assert_int_eq(chan_recv(rx, &x), CHAN_OK);
            ck_assert_int_eq(x, 100 + i);
        }
        ck_assert_int_eq(chan_try_send_many(tx, items + 8, 4, &more), CHAN_OK);
        ck_assert_uint_eq(more, 4);
        for (int i = 8; i < 12; i++) {
            ck_assert_int_eq(chan_recv(rx, &x), CHAN_OK);
            ck_assert_int_eq(x, 100 + i);
        }
    } else if (fl == FL_UNBOUNDED) {
        ck_assert_int_eq(r, CHAN_OK);
        ck_assert_uint_eq(sent, 12);
        int x;
        for (int i = 0; i < 12; i++) {
            ck_assert_int_eq(chan_recv(rx, &x), CHAN_OK);
            ck_assert_int_eq(x, 100 + i);
        }
    } else {
        /* Rendezvous: nobody waits, nothing goes. */
        ck_assert_int_eq(r, CHAN_FULL);
        ck_assert_uint_eq(sent, 0);
    }
    int x;
    ck_assert_int_eq(chan_try_recv(rx, &x), CHAN_EMPTY);
    /* A batch larger than the capacity goes in pieces. */
    if (fl == FL_BOUNDED) {
        size_t more;
        ck_assert_int_eq(chan_try_send_many(tx, items, 12, &more), CHAN_FULL);
        ck_assert_uint_eq(more, 5);
    }
    chan_sender_drop(tx);
    while (chan_try_recv(rx, &x) == CHAN_OK) {
    }
    chan_receiver_drop(rx);
}
END_TEST

START_TEST(test_try_send_many_disconnected)
{
    chan_tx *tx;
    chan_rx *rx;
    make_chan(FL_BOUNDED, 8, sizeof(int), &tx, &rx);
    chan_receiver_drop(rx);
    int items[3] = {1, 2, 3};
    size_t sent = 99;
    ck_assert_int_eq(chan_try_send_many(tx, items, 3, &sent), CHAN_DISCONNECTED);
    ck_assert_uint_eq(sent, 0);
    ck_assert_int_eq(chan_try_send_many(NULL, items, 3, &sent), -EINVAL);
    ck_assert_int_eq(chan_try_send_many(tx, items, 3, NULL), -EINVAL);
    chan_sender_drop(tx);
}
END_TEST

static atomic_int many_notified;

static void many_notify(void *arg)
{
    (void)arg;
    atomic_fetch_add(&many_notified, 1);
}

/* FULL arms the notify, as chan_try_send() does. */
START_TEST(test_try_send_many_arms_notify)
{
    chan_tx *tx;
    chan_rx *rx;
    make_chan(FL_BOUNDED, 2, sizeof(int), &tx, &rx);
    chan_sender_set_notify(tx, many_notify, NULL);
    atomic_store(&many_notified, 0);
    int items[4] = {1, 2, 3, 4};
    size_t sent;
    ck_assert_int_eq(chan_try_send_many(tx, items, 4, &sent), CHAN_FULL);
    ck_assert_uint_eq(sent, 2);
    ck_assert_int_eq(atomic_load(&many_notified), 0);
    int x;
    ck_assert_int_eq(chan_recv(rx, &x), CHAN_OK);
    ck_assert_int_eq(atomic_load(&many_notified), 1);
    chan_sender_drop(tx);
    chan_receiver_drop(rx);
}
END_TEST

/* Producers sending in batches of random sizes with try_send_many,
 * spinning on FULL; the receiver checks every sequence. */
struct many_arg {
    chan_tx *tx;
    uint32_t id;
    uint32_t n;
};

static void *many_producer(void *p)
{
    struct many_arg *a = p;
    uint64_t batch[37];
    uint32_t seq = 0, seed = a->id * 2654435761u + 1;
    while (seq < a->n) {
        seed = seed * 1103515245u + 12345u;
        uint32_t k = 1 + (seed >> 16) % 37;
        if (k > a->n - seq)
            k = a->n - seq;
        for (uint32_t i = 0; i < k; i++)
            batch[i] = ((uint64_t)a->id << 32) | (seq + i);
        size_t done = 0;
        while (done < k) {
            size_t sent = 0;
            int r = chan_try_send_many(a->tx, batch + done, k - done, &sent);
            if (r != CHAN_OK && r != CHAN_FULL)
                ck_abort_msg("try_send_many: %d", r);
            done += sent;
            if (done < k)
                sched_yield();
        }
        seq += k;
    }
    chan_sender_drop(a->tx);
    return NULL;
}

START_TEST(test_try_send_many_stress)
{
    static const size_t caps[] = {1, 7, 64, 4096};
    size_t cap = caps[_i];
    enum { P = 4 };
    uint32_t per = (uint32_t)(stress_total() / P);
    chan_tx *tx;
    chan_rx *rx;
    make_chan(FL_BOUNDED, cap, sizeof(uint64_t), &tx, &rx);
    pthread_t t[P];
    struct many_arg a[P];
    for (uint32_t i = 0; i < P; i++) {
        a[i] = (struct many_arg){chan_sender_clone(tx), i, per};
        pthread_create(&t[i], NULL, many_producer, &a[i]);
    }
    chan_sender_drop(tx);
    uint32_t next[P] = {0};
    uint64_t buf[256];
    size_t got;
    while (chan_recv_many(rx, buf, 256, &got) == CHAN_OK) {
        for (size_t i = 0; i < got; i++) {
            uint32_t id = (uint32_t)(buf[i] >> 32), sq = (uint32_t)buf[i];
            if (id >= P || sq != next[id])
                ck_abort_msg("producer %u: got %u, want %u", id, sq, id < P ? next[id] : 0);
            next[id]++;
        }
    }
    for (uint32_t i = 0; i < P; i++) {
        pthread_join(t[i], NULL);
        ck_assert_uint_eq(next[i], per);
    }
    chan_receiver_drop(rx);
}
END_TEST

/* ---- suite ------------------------------------------------------------- */

/* Timeouts are generous for the sanitizers, which run 5-20x slower. */
static TCase *tcase(Suite *s, const char *name, double seconds)
{
    TCase *tc = tcase_create(name);
    double mul = strcmp(san(), "tsan") == 0 ? 6 : sanitized() ? 3 : 1;
    tcase_set_timeout(tc, seconds * mul);
    suite_add_tcase(s, tc);
    return tc;
}

static Suite *chan_suite(void)
{
    Suite *s = suite_create("chan");
    TCase *tc;

    tc = tcase(s, "create", 10);
    tcase_add_test(tc, test_create_args);
    tcase_add_test(tc, test_create_overflow);
    tcase_add_test(tc, test_create_ok);
    tcase_add_test(tc, test_result_str);

    tc = tcase(s, "outcomes", 20);
    tcase_add_loop_test(tc, test_try_send_full_fifo, 0,
                        (int)(sizeof(fifo_caps) / sizeof(fifo_caps[0])));
    tcase_add_loop_test(tc, test_send_disconnected, 0, FL_COUNT);
    tcase_add_loop_test(tc, test_recv_disconnected, 0, FL_COUNT);
    tcase_add_loop_test(tc, test_recv_empty_and_timeout, 0, FL_COUNT);
    tcase_add_test(tc, test_send_timeout_full);
    tcase_add_loop_test(tc, test_huge_timeouts, 0, FL_COUNT);
    tcase_add_test(tc, test_misuse_args);
    tcase_add_test(tc, test_unbounded_grows);

    tc = tcase(s, "by_value", 20);
    tcase_add_loop_test(tc, test_big_items, 0, FL_COUNT);
    tcase_add_test(tc, test_odd_sizes);

    tc = tcase(s, "rust_examples", 20);
    tcase_add_loop_test(tc, test_rust_example_1, FL_BOUNDED, FL_UNBOUNDED + 1);
    tcase_add_test(tc, test_rust_example_2);

    tc = tcase(s, "rendezvous", 30);
    tcase_add_loop_test(tc, test_rendezvous_send_blocks, 0, 2);
    tcase_add_test(tc, test_rendezvous_try_send);
    tcase_add_test(tc, test_rendezvous_send_timeout);
    tcase_add_test(tc, test_rendezvous_try_recv);
    tcase_add_loop_test(tc, test_rendezvous_many_senders, 0, 2);

    tc = tcase(s, "disconnect", 30);
    tcase_add_loop_test(tc, test_recv_wakes_on_last_sender_drop, 0, FL_COUNT * RK_COUNT);
    tcase_add_loop_test(tc, test_send_wakes_on_receiver_drop, 0, 4);
    tcase_add_loop_test(tc, test_items_before_drop_delivered, 0, 8);
    tcase_add_loop_test(tc, test_receiver_drop_race, 0, 4);
    tcase_add_loop_test(tc, test_last_item_race, 0, 2);
    tcase_add_test(tc, test_drop_order);

    tc = tcase(s, "recv_many", 20);
    tcase_add_loop_test(tc, test_recv_many_fifo, FL_BOUNDED, FL_UNBOUNDED + 1);
    tcase_add_loop_test(tc, test_recv_many_blocks, 0, FL_COUNT * 2);
    tcase_add_test(tc, test_recv_many_timeout);

    tc = tcase(s, "notify", 30);
    tcase_add_loop_test(tc, test_notify_after_recv, 0, NK_COUNT);
    tcase_add_test(tc, test_notify_two_senders);
    tcase_add_loop_test(tc, test_notify_on_receiver_drop, 0, 2);
    tcase_add_test(tc, test_notify_rendezvous);
    tcase_add_loop_test(tc, test_notify_stress, 0,
                        (int)(sizeof(notify_stress_cfg) / sizeof(notify_stress_cfg[0])));

    tc = tcase(s, "stats", 10);
    tcase_add_test(tc, test_stats_bounded);
    tcase_add_loop_test(tc, test_stats_high_water, FL_BOUNDED, FL_UNBOUNDED + 1);
    tcase_add_test(tc, test_stats_send_waiting);
    tcase_add_test(tc, test_stats_other_flavours);

    tc = tcase(s, "try_send_many", 120);
    tcase_add_loop_test(tc, test_try_send_many_fifo_and_full, 0, FL_COUNT);
    tcase_add_test(tc, test_try_send_many_disconnected);
    tcase_add_test(tc, test_try_send_many_arms_notify);
    tcase_add_loop_test(tc, test_try_send_many_stress, 0, 4);

    tc = tcase(s, "stress", 120);
    tcase_add_loop_test(tc, test_stress_bounded, 0, 16);
    tcase_add_loop_test(tc, test_stress_bounded_batched, 0, 4);
    tcase_add_loop_test(tc, test_stress_unbounded, 0, 2);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(chan_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
