/*
 * writer: the batch loop.  Drain, route, hand over, flush.
 *
 * A batch is taken with chan_recv_many().  Each record goes to every output
 * whose filter it passes: the output's kind (output.h; output_file.c for
 * files) formats it into its own buffer, and the record is freed.  After
 * the batch every output flushes (for files: each buffer in as few write(2)
 * calls as the kernel allows, then the fsync policy, sink.c).
 *
 * A short batch whose records still came at least one per PACE_NS means
 * they come often, a few at a time.  Rather than come back for each few
 * (and spin in the channel waiting for the next), the writer then sleeps
 * PACE_NS so that they gather: fewer wake-ups and write(2) calls, and the
 * processor is left to the ingest threads that make the records.  A record
 * waits at most that much longer (bench/e2e W1: writer CPU 0.53 -> 0.17 µs
 * per message).  Slower than that, a pause would only add a wake-up.
 * 200 µs rather than 50: at 20,000 msg/s the daemon's CPU per message went
 * from 15.8 to 9.6 µs and p99 latency from 0.11 to 0.26 ms, and W3 (the
 * datagram load, where every write(2) also wakes the benchmark's reader)
 * from 0.78 to 0.83 of the floor, medians of six alternating rounds.
 *
 * While a write fails (ENOSPC, EIO; sink.c) or an output cannot take a
 * record (OUTPUT_HOLD, output.h) the writer keeps what it has, retries with
 * a growing pause, and takes nothing more from the channel: the channel
 * fills, and ingest holds the clients back.  Nothing is dropped unless the
 * daemon is being stopped and the stop deadline has passed; those records
 * are counted and reported.
 */
#include "writer.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "acks.h"
#include "log.h"
#include "output.h"
#include "pacer.h"
#include "record.h"
#include "route.h"

#define BATCH 512
#define PACE_NS 200000  /* the pause after a short batch (lib/pacer) */
#define IDLE_WAKE_MS 1000 /* look at requests at least this often */
#define HOLD_MIN_MS 10   /* an output that holds is offered the record again ... */
#define HOLD_MAX_MS 1000 /* ... after a pause that doubles up to this */
#define ARCHIVE_STOP_MS 5000 /* at exit, time left to compress and prune */

struct writer {
    const struct config *cfg;
    struct stats *stats;
    chan_rx *rx;
    struct budget *budget; /* credited with every record freed */
    struct output *out;
    size_t n_out;
    struct output_env env; /* what the outputs share */
    char hostbuf[HOST_NAME_MAX + 1];
    pthread_t thread;
    bool started;
    _Atomic unsigned requests; /* enum writer_request bits */
    _Atomic uint64_t stop_by_ms; /* 0: not stopping */
    uint64_t lost;
    struct record *batch[BATCH];
    struct acks_batch acks; /* records counted for acks.h, not yet published */
};

uint64_t writer_now_ms(void)
{
    return clock_mono_ms();
}

/* ---- what sinks ask of the writer (sink.h) ------------------------------ */

static bool giving_up(void *arg)
{
    struct writer *w = arg;
    uint64_t by = atomic_load_explicit(&w->stop_by_ms, memory_order_acquire);
    return by != 0 && writer_now_ms() >= by;
}

static void hold_pause(void *arg, uint64_t ms)
{
    struct writer *w = arg;
    clock_sleep_ms(ms);
    /* Waiting for the disk is progress too: the watchdog must not
     * restart a daemon that holds records it could not write yet. */
    counter_add(&w->stats->writer_beat, 1);
}

/* ---- the thread ---------------------------------------------------------- */

/* Offer r to one output, holding while it says OUTPUT_HOLD (output.h).
 * False when it was lost for that output. */
static bool deliver(struct writer *w, struct output *o, const struct record *r)
{
    uint64_t pause = HOLD_MIN_MS;
    bool reported = false;
    int rc;
    while ((rc = o->kind->accept(o, r)) == OUTPUT_HOLD) {
        if (giving_up(w)) {
            rc = -ETIMEDOUT;
            log_msg(LOG_ERR, "output %s: giving up at shutdown: a record was not taken",
                    o->oc->path);
            break;
        }
        if (!reported) {
            log_msg(LOG_WARNING, "output %s: full; holding the records back", o->oc->path);
            reported = true;
        }
        o->kind->flush(o, writer_now_ms(), false);
        hold_pause(w, pause);
        pause = pause * 2 > HOLD_MAX_MS ? HOLD_MAX_MS : pause * 2;
    }
    if (reported && rc == 0)
        log_msg(LOG_NOTICE, "output %s: taking records again", o->oc->path);
    if (rc != 0 && rc != OUTPUT_REFUSED) {
        counter_add(&o->st->lost, 1);
        w->lost++;
    }
    return rc == 0;
}

static void route_record(struct writer *w, struct record *r)
{
    bool ok = true;
    for (size_t k = 0; k < w->n_out; k++) {
        struct output *o = &w->out[k];
        if (route_match(&o->filter, r))
            ok &= deliver(w, o, r);
    }
    if (r->ack != 0)
        acks_note(&w->acks, r, ok);
}

/* After a flush: publish the mark once no output holds records back. */
static void publish_acks(struct writer *w)
{
    if (w->acks.n == 0)
        return;
    for (size_t k = 0; k < w->n_out; k++)
        if (w->out[k].kind->holds != NULL && w->out[k].kind->holds(&w->out[k]))
            return;
    acks_publish(&w->acks);
}

static void reopen_all(struct writer *w)
{
    for (size_t i = 0; i < w->n_out; i++)
        w->out[i].kind->reopen(&w->out[i]);
    log_msg(LOG_INFO, "outputs reopened");
}

static void rotate_all(struct writer *w)
{
    for (size_t i = 0; i < w->n_out; i++)
        if (w->out[i].kind->rotate != NULL)
            w->out[i].kind->rotate(&w->out[i]);
}

/* Time-based work (interval rotation), after every batch and wake-up. */
static void tick_all(struct writer *w)
{
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < w->n_out; i++)
        if (w->out[i].kind->tick != NULL)
            w->out[i].kind->tick(&w->out[i], now);
}

/* How long recv may sleep: until the next interval fsync is due. */
static uint64_t next_wait_ms(struct writer *w, uint64_t now)
{
    uint64_t wait = IDLE_WAKE_MS;
    for (size_t i = 0; i < w->n_out; i++)
        wait = w->out[i].kind->next_wait_ms(&w->out[i], now, wait);
    return wait;
}

static void flush_all(struct writer *w, bool force_sync)
{
    uint64_t now = writer_now_ms();
    for (size_t k = 0; k < w->n_out; k++)
        w->out[k].kind->flush(&w->out[k], now, force_sync);
}

/* After a batch of n records.  Never while the clients may be waiting for
 * room: not when a batch takes an eighth of the queue or more (a small
 * queue fills during a pause: with queue.capacity = 1 every record would
 * wait PACE_NS; see pacer_init() in writer_main()), nor while the byte
 * budget is spent. */
static void pace(struct writer *w, size_t n, struct pacer *p)
{
    pacer_turn(p, n, !budget_over(w->budget));
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    pacer_thread_init();
    struct pacer pacer;
    size_t below = (size_t)w->cfg->queue_capacity / 8;
    pacer_init(&pacer, PACE_NS, below < PACER_BELOW ? below : PACER_BELOW);
    for (;;) {
        size_t n = 0;
        int rc = chan_recv_many_timeout(w->rx, w->batch, BATCH, &n,
                                        next_wait_ms(w, writer_now_ms()) * 1000000u);
        if (rc == CHAN_DISCONNECTED)
            break;
        counter_add(&w->stats->writer_beat, 1);
        for (size_t i = 0; i < n; i++) {
            /* NULL is a wake-up: look at the requests below. */
            if (w->batch[i] != NULL)
                route_record(w, w->batch[i]);
        }
        size_t freed = record_free_many(w->batch, n);
        if (freed > 0)
            budget_credit(w->budget, freed);
        w->env.sink.behind = n == BATCH;
        flush_all(w, false);
        publish_acks(w);
        tick_all(w);
        unsigned req = atomic_exchange_explicit(&w->requests, 0, memory_order_acq_rel);
        if (req & WRITER_REOPEN)
            reopen_all(w);
        if (req & WRITER_ROTATE)
            rotate_all(w);
        pace(w, n, &pacer);
    }
    flush_all(w, true);
    return NULL;
}

/* ---- life ---------------------------------------------------------------- */

/* The kinds, asked in order; the file kind takes what no other claims. */
static const struct output_kind *const kinds[] = {
    &output_forward_kind,
    &output_nats_kind,
    &output_wall_kind,
    &output_file_kind,
};

static const struct output_kind *kind_for(const struct output_conf *oc)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (kinds[i]->claims(oc))
            return kinds[i];
    return NULL;
}

struct writer *writer_open(const struct config *cfg, struct stats *stats, chan_rx *rx,
                           struct budget *budget, char *err, size_t errlen)
{
    struct writer *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->cfg = cfg;
    w->stats = stats;
    w->rx = rx;
    w->budget = budget;
    w->env.cfg = cfg;
    w->env.host = cfg->hostname;
    if (w->env.host == NULL) {
        if (gethostname(w->hostbuf, sizeof(w->hostbuf) - 1) != 0)
            strcpy(w->hostbuf, "localhost");
        w->env.host = w->hostbuf;
    }
    w->env.sink = (struct sink_ctx){.giving_up = giving_up,
                                    .pause = hold_pause,
                                    .now_ms = writer_now_ms,
                                    .arg = w,
                                    .lost = &w->lost};
    w->n_out = cfg->n_outputs;
    w->out = calloc(w->n_out, sizeof(*w->out));
    int rc = w->out != NULL ? archive_worker_start(&w->env.aw) : -ENOMEM;
    if (rc != 0) {
        if (w->out == NULL)
            snprintf(err, errlen, "out of memory for %zu outputs", w->n_out);
        else
            snprintf(err, errlen, "cannot start the archive worker: %s", strerror(-rc));
        free(w->out);
        free(w);
        return NULL;
    }
    for (size_t i = 0; i < w->n_out; i++) {
        struct output *o = &w->out[i];
        const struct output_conf *oc = &cfg->outputs[i];
        o->oc = oc;
        o->st = &stats->outputs[i];
        o->env = &w->env;
        o->filter.max_severity = oc->filter_severity;
        o->filter.facilities = oc->filter_facilities;
        o->filter.apps = (const char *const *)oc->filter_apps.v;
        o->filter.n_apps = oc->filter_apps.n;
        o->filter.listeners = oc->filter_listener_mask;
        if (format_ctx_init(&o->fmt, (enum format_kind)oc->format,
                            (enum format_ts)cfg->timestamp, cfg->hostname) != 0) {
            snprintf(err, errlen, "output %s: bad format settings", oc->path);
            goto fail;
        }
        if ((o->kind = kind_for(oc)) == NULL) {
            snprintf(err, errlen, "output %s: no output kind takes it", oc->path);
            goto fail;
        }
        if (o->kind->open(o, err, errlen) != 0)
            goto fail;
    }
    return w;
fail:
    w->rx = NULL; /* the caller still owns it */
    writer_free(w);
    return NULL;
}

int writer_start(struct writer *w)
{
    int rc = pthread_create(&w->thread, NULL, writer_main, w);
    if (rc != 0)
        return -rc;
    w->started = true;
    return 0;
}

void writer_request(struct writer *w, enum writer_request what, chan_tx *kick)
{
    atomic_fetch_or_explicit(&w->requests, (unsigned)what, memory_order_release);
    /* An empty item wakes a writer asleep on an empty channel; if the
     * channel is full, the writer is busy and sees the flag after its
     * batch anyway. */
    struct record *none = NULL;
    if (kick != NULL)
        chan_try_send(kick, &none);
}

void writer_stop_by(struct writer *w, uint64_t deadline_ms)
{
    atomic_store_explicit(&w->stop_by_ms, deadline_ms ? deadline_ms : 1, memory_order_release);
}

uint64_t writer_join(struct writer *w)
{
    if (w->started) {
        pthread_join(w->thread, NULL);
        w->started = false;
    }
    return w->lost;
}

void writer_free(struct writer *w)
{
    if (w == NULL)
        return;
    writer_join(w);
    for (size_t i = 0; i < w->n_out; i++) {
        struct output *o = &w->out[i];
        if (o->kind == NULL)
            continue;
        if (o->kind->close != NULL)
            o->kind->close(o);
        o->kind->free(o);
    }
    /* Compression left unfinished resumes at the next start. */
    if (w->env.aw != NULL && archive_worker_stop(w->env.aw, ARCHIVE_STOP_MS) == -ETIMEDOUT)
        log_msg(LOG_NOTICE, "archive work left for the next start");
    if (w->rx != NULL) {
        /* Whatever is left (only after a failed start) is freed here. */
        struct record *r;
        while (chan_try_recv(w->rx, &r) == CHAN_OK) {
            if (r != NULL)
                budget_credit(w->budget, record_footprint(r));
            record_free(r);
        }
        chan_receiver_drop(w->rx);
    }
    free(w->out);
    free(w);
}

int writer_format_stats(const struct writer *w, struct buf *out, bool prometheus)
{
    if (w == NULL)
        return 0;
    for (size_t i = 0; i < w->n_out; i++) {
        const struct output *o = &w->out[i];
        int rc = o->kind != NULL && o->kind->stats != NULL ? o->kind->stats(o, out, prometheus) : 0;
        if (rc != 0)
            return rc;
    }
    return 0;
}
