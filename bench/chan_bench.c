/*
 * chan_bench: messages per second through chan_bounded(1024) with P
 * producers and one receiver, beside a baseline of a plain ring buffer
 * behind one mutex and two condition variables, on the same workload.
 *
 * Each producer owns a cloned sender and uses blocking chan_send(); the
 * receiver drains with chan_recv_many() into a batch of 256, as the daemon's
 * writer does (-1 switches it to one chan_recv() per item).  The mutex ring's
 * receiver takes the same batches under its lock.  Items are 8 or 128 bytes;
 * each figure is the median of several runs; chan and mutex runs alternate
 * so that a noisy neighbour hurts both alike.
 *
 * Output: a table, or with -m one line per figure for bench/run.sh:
 *     impl,item_size,producers,million_msgs_per_s     (impl: chan | mutex)
 * With -m, progress goes to stderr.
 */
#include "chan.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CAPACITY 1024
#define BATCH 256
#define MAX_ITEM 128
#define MAX_PRODUCERS 64

static const size_t item_sizes[] = {8, 128};
static const unsigned producer_counts[] = {1, 2, 4, 8, 16};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, int err)
{
    fprintf(stderr, "chan_bench: %s: %s\n", what, err < 0 ? strerror(-err) : chan_result_str(err));
    exit(1);
}

/* The value a producer puts in the first 8 bytes of item s; the receiver
 * sums them, and the sum must come out right. */
static uint64_t item_tag(unsigned producer, uint64_t s)
{
    return ((uint64_t)producer << 40) ^ s;
}

static uint64_t expected_sum(unsigned nprod, uint64_t per)
{
    uint64_t sum = 0;
    for (unsigned p = 0; p < nprod; p++)
        for (uint64_t s = 0; s < per; s++)
            sum += item_tag(p, s);
    return sum;
}

/* ---- the baseline: a ring behind a mutex ------------------------------- */

struct ring {
    pthread_mutex_t mu;
    pthread_cond_t not_full, not_empty;
    unsigned char *buf;
    size_t cap, item_size, head, count;
    unsigned producers; /* still sending */
};

static void ring_init(struct ring *r, size_t cap, size_t item_size, unsigned producers)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->not_full, NULL);
    pthread_cond_init(&r->not_empty, NULL);
    r->buf = malloc(cap * item_size);
    if (r->buf == NULL)
        die("malloc", -ENOMEM);
    r->cap = cap;
    r->item_size = item_size;
    r->producers = producers;
}

static void ring_destroy(struct ring *r)
{
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->not_full);
    pthread_cond_destroy(&r->not_empty);
    free(r->buf);
}

static void ring_push(struct ring *r, const void *item)
{
    pthread_mutex_lock(&r->mu);
    while (r->count == r->cap)
        pthread_cond_wait(&r->not_full, &r->mu);
    memcpy(r->buf + ((r->head + r->count) % r->cap) * r->item_size, item, r->item_size);
    r->count++;
    pthread_cond_signal(&r->not_empty);
    pthread_mutex_unlock(&r->mu);
}

static void ring_producer_done(struct ring *r)
{
    pthread_mutex_lock(&r->mu);
    if (--r->producers == 0)
        pthread_cond_broadcast(&r->not_empty);
    pthread_mutex_unlock(&r->mu);
}

/* Take up to max items; 0 once every producer is done and the ring empty. */
static size_t ring_pop_many(struct ring *r, unsigned char *out, size_t max)
{
    pthread_mutex_lock(&r->mu);
    while (r->count == 0 && r->producers > 0)
        pthread_cond_wait(&r->not_empty, &r->mu);
    size_t n = r->count < max ? r->count : max;
    for (size_t i = 0; i < n; i++) {
        memcpy(out + i * r->item_size, r->buf + r->head * r->item_size, r->item_size);
        r->head = (r->head + 1) % r->cap;
    }
    r->count -= n;
    if (n > 1)
        pthread_cond_broadcast(&r->not_full);
    else if (n == 1)
        pthread_cond_signal(&r->not_full);
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* ---- one run ----------------------------------------------------------- */

enum impl { IMPL_CHAN, IMPL_MUTEX };

struct run {
    enum impl impl;
    size_t item_size;
    uint64_t per; /* items per producer */
    pthread_barrier_t start;
    struct ring ring;
};

struct producer {
    struct run *run;
    chan_tx *tx;
    unsigned id;
};

static void *producer_main(void *arg)
{
    struct producer *p = arg;
    struct run *run = p->run;
    unsigned char item[MAX_ITEM];
    memset(item, (int)p->id, sizeof(item));
    pthread_barrier_wait(&run->start);
    for (uint64_t s = 0; s < run->per; s++) {
        uint64_t tag = item_tag(p->id, s);
        memcpy(item, &tag, sizeof(tag));
        if (run->impl == IMPL_CHAN) {
            int r = chan_send(p->tx, item);
            if (r != CHAN_OK)
                die("chan_send", r);
        } else {
            ring_push(&run->ring, item);
        }
    }
    if (run->impl == IMPL_CHAN)
        chan_sender_drop(p->tx);
    else
        ring_producer_done(&run->ring);
    return NULL;
}

/* Millions of messages per second for one run. */
static double run_once(enum impl impl, size_t item_size, unsigned nprod, uint64_t total,
                       int single)
{
    struct run run = {.impl = impl, .item_size = item_size, .per = total / nprod};
    struct producer ps[MAX_PRODUCERS];
    pthread_t ts[MAX_PRODUCERS];
    static unsigned char batch[BATCH * MAX_ITEM];
    chan_tx *tx = NULL;
    chan_rx *rx = NULL;

    if (impl == IMPL_CHAN) {
        int r = chan_bounded(CAPACITY, item_size, &tx, &rx);
        if (r != 0)
            die("chan_bounded", r);
    } else {
        ring_init(&run.ring, CAPACITY, item_size, nprod);
    }
    pthread_barrier_init(&run.start, NULL, nprod + 1);
    for (unsigned p = 0; p < nprod; p++) {
        ps[p] = (struct producer){.run = &run, .id = p};
        if (impl == IMPL_CHAN && (ps[p].tx = chan_sender_clone(tx)) == NULL)
            die("chan_sender_clone", -ENOMEM);
        int err = pthread_create(&ts[p], NULL, producer_main, &ps[p]);
        if (err != 0)
            die("pthread_create", -err);
    }
    if (impl == IMPL_CHAN)
        chan_sender_drop(tx);

    uint64_t got_total = 0, sum = 0;
    pthread_barrier_wait(&run.start);
    double t0 = now_s();
    for (;;) {
        size_t n;
        if (impl == IMPL_MUTEX) {
            n = ring_pop_many(&run.ring, batch, single ? 1 : BATCH);
            if (n == 0)
                break;
        } else {
            int r = single ? chan_recv(rx, batch) : chan_recv_many(rx, batch, BATCH, &n);
            if (r == CHAN_DISCONNECTED)
                break;
            if (r != CHAN_OK)
                die("chan_recv", r);
            if (single)
                n = 1;
        }
        for (size_t i = 0; i < n; i++) {
            uint64_t tag;
            memcpy(&tag, batch + i * item_size, sizeof(tag));
            sum += tag;
        }
        got_total += n;
    }
    double dt = now_s() - t0;
    for (unsigned p = 0; p < nprod; p++)
        pthread_join(ts[p], NULL);
    pthread_barrier_destroy(&run.start);
    if (impl == IMPL_CHAN)
        chan_receiver_drop(rx);
    else
        ring_destroy(&run.ring);

    if (got_total != run.per * nprod || sum != expected_sum(nprod, run.per)) {
        fprintf(stderr, "chan_bench: %s lost or mangled items: %llu of %llu received\n",
                impl == IMPL_CHAN ? "chan" : "mutex", (unsigned long long)got_total,
                (unsigned long long)(run.per * nprod));
        exit(1);
    }
    return (double)got_total / dt / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: chan_bench [-m] [-1] [-n ITEMS] [-r RUNS] [-s SIZE] [-p P] [-i IMPL]\n"
            "  -m        machine-readable lines: impl,item_size,producers,Mmsg/s\n"
            "  -1        receiver takes one item per chan_recv() (default: chan_recv_many)\n"
            "  -n ITEMS  items per run (default 3000000)\n"
            "  -r RUNS   runs per figure; the median is reported (default 5)\n"
            "  -s SIZE   only items of SIZE bytes (8 or 128)\n"
            "  -p P      only P producers (1, 2, 4, 8 or 16)\n"
            "  -i IMPL   only chan or only mutex (for profiling one of them)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int machine = 0, single = 0, runs = 5, opt;
    size_t only_size = 0;
    unsigned only_p = 0;
    const char *only_impl = NULL;
    uint64_t total = 3000000;
    while ((opt = getopt(argc, argv, "m1n:r:s:p:i:")) != -1) {
        switch (opt) {
        case 'm':
            machine = 1;
            break;
        case '1':
            single = 1;
            break;
        case 'n':
            total = strtoull(optarg, NULL, 10);
            break;
        case 'r':
            runs = atoi(optarg);
            break;
        case 's':
            only_size = (size_t)strtoul(optarg, NULL, 10);
            break;
        case 'p':
            only_p = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'i':
            only_impl = optarg;
            break;
        default:
            usage();
        }
    }
    if (total < 16 || runs < 1 || runs > 101)
        usage();
    if (only_impl && strcmp(only_impl, "chan") != 0 && strcmp(only_impl, "mutex") != 0)
        usage();
    int do_chan = !only_impl || strcmp(only_impl, "chan") == 0;
    int do_mutex = !only_impl || strcmp(only_impl, "mutex") == 0;

    FILE *info = machine ? stderr : stdout;
    fprintf(info,
            "chan_bench: chan_bounded(%d) vs mutex+2 condvar ring; %llu items/run, median of "
            "%d; receiver: %s\n",
            CAPACITY, (unsigned long long)total, runs,
            single ? "chan_recv (1 per call)" : "chan_recv_many (batch 256)");
    if (!machine)
        printf("%6s %4s %10s %10s %10s\n", "size", "P", "chan M/s", "mutex M/s", "chan/mutex");
    for (size_t si = 0; si < sizeof(item_sizes) / sizeof(item_sizes[0]); si++) {
        for (size_t pi = 0; pi < sizeof(producer_counts) / sizeof(producer_counts[0]); pi++) {
            size_t sz = item_sizes[si];
            unsigned np = producer_counts[pi];
            if ((only_size && sz != only_size) || (only_p && np != only_p))
                continue;
            double c[101], m[101];
            for (int i = 0; i < runs; i++) {
                c[i] = do_chan ? run_once(IMPL_CHAN, sz, np, total, single) : 0;
                m[i] = do_mutex ? run_once(IMPL_MUTEX, sz, np, total, single) : 0;
            }
            double cm = median(c, runs), mm = median(m, runs);
            if (machine) {
                printf("chan,%zu,%u,%.3f\nmutex,%zu,%u,%.3f\n", sz, np, cm, sz, np, mm);
                fflush(stdout);
                fprintf(stderr, "  size %3zu P %2u: chan %7.2f M/s  mutex %7.2f M/s\n", sz, np,
                        cm, mm);
            } else {
                printf("%6zu %4u %10.2f %10.2f %10.2f\n", sz, np, cm, mm, cm / mm);
                fflush(stdout);
            }
        }
    }
    return 0;
}
