/*
 * writer: drain, route, format, write, fsync.
 *
 * A batch is taken with chan_recv_many().  Each record goes to every output
 * whose filter it passes; it is formatted straight into the buffer of the
 * output's file (for a path with placeholders, the file its fields select),
 * then freed.  After the batch each buffer goes to its file in as few
 * write(2) calls as the kernel allows.
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
 * While a write fails (ENOSPC, EIO) the writer keeps the buffer, retries
 * with a growing pause, and takes nothing more from the channel: the
 * channel fills, and ingest holds the clients back.  Nothing is dropped
 * unless the daemon is being stopped and the stop deadline has passed;
 * those records are counted and reported.
 */
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "format.h"
#include "log.h"
#include "pacer.h"
#include "record.h"
#include "rotate.h"
#include "route.h"

#define BATCH 512
#define PACE_NS 200000  /* the pause after a short batch (lib/pacer) */
#define IDLE_WAKE_MS 1000 /* look at requests at least this often */
#define RETRY_MIN_MS 10
#define RETRY_MAX_MS 1000
#define ARCHIVE_STOP_MS 5000 /* at exit, time left to compress and prune */

/* One open file of an output. */
struct sink {
    char *path;
    struct rotate_file *rf; /* NULL while it cannot be opened */
    struct buf buf;
    size_t pending;        /* records in buf not yet written */
    bool dirty;            /* written since the last fsync */
    bool nosync;           /* fsync(2) cannot work here (a FIFO): never try */
    int fsync_errno;       /* of the last failed fsync, 0: it worked */
    uint64_t last_fsync_ms;
    struct sink *next;     /* most recently used first */
};

struct output {
    struct writer *w;
    const struct output_conf *oc;
    struct output_stats *st;
    struct format_ctx fmt;
    struct route_filter filter;
    bool templated;
    struct rotate_opts ropts;
    struct sink *sinks;
    size_t n_sinks;
};

struct writer {
    const struct config *cfg;
    struct stats *stats;
    chan_rx *rx;
    struct budget *budget; /* credited with every record freed */
    struct output *out;
    size_t n_out;
    const char *host; /* for %{host} of records without one */
    char hostbuf[HOST_NAME_MAX + 1];
    struct archive_worker *aw; /* compresses and prunes archives */
    pthread_t thread;
    bool started;
    _Atomic unsigned requests; /* enum writer_request bits */
    _Atomic uint64_t stop_by_ms; /* 0: not stopping */
    uint64_t lost;
    struct record *batch[BATCH];
};

uint64_t writer_now_ms(void)
{
    return clock_mono_ms();
}

/* ---- one file ------------------------------------------------------------ */

/* Open a sink's file (lib/rotate: directories created, a partial last line
 * ended, rotation as configured).  0 or a negative errno. */
static int sink_open(struct output *o, struct sink *s)
{
    int rc = rotate_open(&s->rf, s->path, &o->ropts, o->w->aw);
    if (rc == 0)
        counter_add(&o->st->files_open, 1);
    else
        s->rf = NULL;
    return rc;
}

static void sink_close(struct output *o, struct sink *s)
{
    if (s->rf == NULL)
        return;
    int rc = rotate_close(s->rf);
    /* EINVAL: its fsync cannot work (a FIFO); it is closed all the same. */
    if (rc != 0 && rc != -EINVAL && rc != -EROFS)
        log_msg(LOG_WARNING, "output %s: close: %s", s->path, strerror(-rc));
    s->rf = NULL;
    s->dirty = false;
    atomic_fetch_sub_explicit(&o->st->files_open, 1, memory_order_relaxed);
}

static size_t count_lines(const char *p, size_t n)
{
    size_t lines = 0;
    for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
        lines++;
    return lines;
}

/* Giving up after a partial write: the file ends inside a record.  Take
 * that half record back, so that the file holds only whole lines (the
 * record is counted as lost with the rest). */
static void unwrite_partial_line(struct sink *s, size_t off)
{
    size_t line_start = off;
    while (line_start > 0 && s->buf.p[line_start - 1] != '\n')
        line_start--;
    int rc = off > line_start && s->rf != NULL ? rotate_unwrite(s->rf, off - line_start) : 0;
    if (rc != 0)
        log_msg(LOG_ERR, "output %s: cannot remove a half-written record: %s", s->path,
                strerror(-rc));
}

static bool giving_up(struct writer *w)
{
    uint64_t by = atomic_load_explicit(&w->stop_by_ms, memory_order_acquire);
    return by != 0 && writer_now_ms() >= by;
}

/* Write the whole buffer, retrying failures until they pass or the stop
 * deadline is over.  Lines are never cut: a partial write continues from
 * the byte where it stopped. */
static void sink_flush(struct writer *w, struct output *o, struct sink *s)
{
    size_t off = 0, lost = 0;
    uint64_t pause = RETRY_MIN_MS;
    bool reported = false;
    while (off < s->buf.len) {
        int e;
        if (s->rf == NULL && (e = -sink_open(o, s)) != 0) {
            /* Cannot open: handled as a failed write below. */
        } else {
            ssize_t n = rotate_write(s->rf, s->buf.p + off, s->buf.len - off);
            if (n > 0) {
                off += (size_t)n;
                continue;
            }
            e = n < 0 ? (int)-n : EIO;
            if (e == EINTR)
                continue;
        }
        counter_add(&o->st->write_errors, 1);
        atomic_store_explicit(&o->st->last_errno, e, memory_order_relaxed);
        if (giving_up(w)) {
            lost = count_lines(s->buf.p + off, s->buf.len - off);
            unwrite_partial_line(s, off);
            counter_add(&o->st->lost, lost);
            w->lost += lost;
            log_msg(LOG_ERR, "output %s: giving up at shutdown: %zu records not written: %s",
                    s->path, lost, strerror(e));
            break;
        }
        if (!reported) {
            log_msg(LOG_ERR, "output %s: cannot write (%s); holding %zu bytes, retrying", s->path,
                    strerror(e), s->buf.len - off);
            reported = true;
        }
        clock_sleep_ms(pause);
        pause = pause * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : pause * 2;
        /* Waiting for the disk is progress too: the watchdog must not
         * restart a daemon that holds records it could not write yet. */
        counter_add(&w->stats->writer_beat, 1);
    }
    if (reported && off == s->buf.len) {
        log_msg(LOG_NOTICE, "output %s: writing again", s->path);
        atomic_store_explicit(&o->st->last_errno, 0, memory_order_relaxed);
    }
    if (off > 0) {
        s->dirty = true;
        counter_add(&o->st->bytes, off);
    }
    counter_add(&o->st->records, s->pending > lost ? s->pending - lost : 0);
    s->pending = 0;
    s->buf.len = 0;
}

static void sink_maybe_fsync(struct output *o, struct sink *s, uint64_t now, bool force)
{
    if (!s->dirty || s->rf == NULL || s->nosync) {
        s->dirty = false;
        return;
    }
    int64_t every = o->oc->fsync_ms;
    if (!force && (every < 0 || now < s->last_fsync_ms + (uint64_t)every))
        return;
    int rc = rotate_sync(s->rf);
    /* Whatever happened, the next try is a whole interval away: a failing
     * fsync must not make the writer spin (next_wait_ms() would be 0). */
    s->last_fsync_ms = now;
    if (rc == -EINVAL || rc == -EROFS) {
        /* A FIFO, /dev/null, a file system without fsync: nothing to
         * make durable, and nothing will change.  Say so once. */
        if (!s->nosync)
            log_msg(LOG_NOTICE, "output %s: cannot be fsynced (%s); not trying again", s->path,
                    strerror(-rc));
        s->nosync = true;
        s->dirty = false;
        return;
    }
    if (rc != 0) {
        counter_add(&o->st->write_errors, 1);
        atomic_store_explicit(&o->st->last_errno, -rc, memory_order_relaxed);
        if (rc != s->fsync_errno)
            log_msg(LOG_ERR, "output %s: fsync: %s", s->path, strerror(-rc));
        s->fsync_errno = rc;
        return;
    }
    if (s->fsync_errno != 0)
        log_msg(LOG_NOTICE, "output %s: fsync works again", s->path);
    s->fsync_errno = 0;
    s->dirty = false;
}

static struct sink *sink_new(const char *path)
{
    struct sink *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->path = strdup(path)) == NULL) {
        free(s);
        return NULL;
    }
    buf_init(&s->buf);
    s->last_fsync_ms = writer_now_ms();
    return s;
}

static void sink_free(struct output *o, struct sink *s)
{
    sink_close(o, s);
    buf_free(&s->buf);
    free(s->path);
    free(s);
}

/* ---- choosing the file -------------------------------------------------- */

/* The sink a record goes to: the one file of a plain output, or for a
 * template the file its fields name, kept most recently used first; past
 * max_files the least recently used is written out and closed.  NULL only
 * when memory runs out or the path does not fit. */
static struct sink *sink_for(struct writer *w, struct output *o, const struct record *r)
{
    if (!o->templated)
        return o->sinks;
    char path[PATH_MAX];
    if (route_expand(o->oc->path, r, w->host, path, sizeof(path)) < 0)
        return NULL;
    struct sink **pp = &o->sinks;
    struct sink *prev_last = NULL;
    for (struct sink *s = o->sinks; s != NULL; pp = &s->next, s = s->next) {
        if (strcmp(s->path, path) == 0) {
            *pp = s->next;
            s->next = o->sinks;
            o->sinks = s;
            return s;
        }
    }
    if (o->n_sinks >= (size_t)o->oc->max_files) {
        /* Evict the least recently used: the last of the list. */
        struct sink **lp = &o->sinks;
        while ((*lp)->next != NULL)
            lp = &(*lp)->next;
        prev_last = *lp;
        *lp = NULL;
        if (prev_last->buf.len > 0)
            sink_flush(w, o, prev_last);
        sink_free(o, prev_last);
        o->n_sinks--;
    }
    struct sink *s = sink_new(path);
    if (s == NULL)
        return NULL;
    int rc = sink_open(o, s);
    if (rc != 0)
        log_msg(LOG_ERR, "output %s: %s (will retry)", path, strerror(-rc));
    s->next = o->sinks;
    o->sinks = s;
    o->n_sinks++;
    return s;
}

/* ---- the thread ---------------------------------------------------------- */

static void route_record(struct writer *w, struct record *r)
{
    for (size_t k = 0; k < w->n_out; k++) {
        struct output *o = &w->out[k];
        if (!route_match(&o->filter, r))
            continue;
        struct sink *s = sink_for(w, o, r);
        if (s != NULL && format_record(&o->fmt, r, &s->buf) == 0) {
            s->pending++;
        } else {
            counter_add(&o->st->lost, 1);
            w->lost++;
        }
    }
}

static void reopen_all(struct writer *w)
{
    for (size_t i = 0; i < w->n_out; i++) {
        struct output *o = &w->out[i];
        for (struct sink *s = o->sinks; s != NULL; s = s->next) {
            int rc = s->rf != NULL ? rotate_reopen(s->rf) : sink_open(o, s);
            if (rc != 0)
                log_msg(LOG_ERR, "reopen %s: %s (will retry on the next write)", s->path,
                        strerror(-rc));
        }
    }
    log_msg(LOG_INFO, "outputs reopened");
}

static void rotate_all(struct writer *w)
{
    for (size_t i = 0; i < w->n_out; i++) {
        for (struct sink *s = w->out[i].sinks; s != NULL; s = s->next) {
            int rc = s->rf != NULL ? rotate_now(s->rf) : 0;
            if (rc < 0)
                log_msg(LOG_ERR, "rotate %s: %s", s->path, strerror(-rc));
        }
    }
}

/* Time-based rotation, checked after every batch and wake-up. */
static void tick_all(struct writer *w)
{
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; i < w->n_out; i++) {
        if (w->out[i].oc->rotate_interval_s <= 0)
            continue;
        for (struct sink *s = w->out[i].sinks; s != NULL; s = s->next)
            if (s->rf != NULL && rotate_tick(s->rf, now) < 0)
                counter_add(&w->out[i].st->write_errors, 1);
    }
}

/* How long recv may sleep: until the next interval fsync is due. */
static uint64_t next_wait_ms(struct writer *w, uint64_t now)
{
    uint64_t wait = IDLE_WAKE_MS;
    for (size_t i = 0; i < w->n_out; i++) {
        struct output *o = &w->out[i];
        if (o->oc->fsync_ms <= 0)
            continue; /* interval rotation is seen within IDLE_WAKE_MS */
        for (struct sink *s = o->sinks; s != NULL; s = s->next) {
            if (!s->dirty)
                continue;
            uint64_t due = s->last_fsync_ms + (uint64_t)o->oc->fsync_ms;
            uint64_t left = due > now ? due - now : 0;
            if (left < wait)
                wait = left;
        }
    }
    return wait;
}

static void flush_all(struct writer *w, bool force_sync)
{
    uint64_t now = writer_now_ms();
    for (size_t k = 0; k < w->n_out; k++) {
        struct output *o = &w->out[k];
        for (struct sink *s = o->sinks; s != NULL; s = s->next) {
            if (s->buf.len > 0)
                sink_flush(w, o, s);
            sink_maybe_fsync(o, s, now, force_sync || o->oc->fsync_ms == 0);
        }
    }
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
        flush_all(w, false);
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
    w->host = cfg->hostname;
    if (w->host == NULL) {
        if (gethostname(w->hostbuf, sizeof(w->hostbuf) - 1) != 0)
            strcpy(w->hostbuf, "localhost");
        w->host = w->hostbuf;
    }
    w->n_out = cfg->n_outputs;
    w->out = calloc(w->n_out, sizeof(*w->out));
    int rc = w->out != NULL ? archive_worker_start(&w->aw) : -ENOMEM;
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
        o->w = w;
        rotate_opts_init(&o->ropts);
        o->ropts.max_size = oc->rotate_max_size;
        o->ropts.interval_s = oc->rotate_interval_s;
        o->ropts.keep = (int)oc->rotate_keep;
        o->ropts.max_total = oc->rotate_max_total;
        o->ropts.compress = oc->rotate_compress;
        o->ropts.file_mode = (mode_t)oc->file_mode;
        o->ropts.counters = &o->st->rot;
        o->filter.max_severity = oc->filter_severity;
        o->filter.facilities = oc->filter_facilities;
        o->filter.apps = (const char *const *)oc->filter_apps.v;
        o->filter.n_apps = oc->filter_apps.n;
        o->filter.listeners = oc->filter_listener_mask;
        o->templated = route_is_template(oc->path);
        if (format_ctx_init(&o->fmt, (enum format_kind)oc->format,
                            (enum format_ts)cfg->timestamp, cfg->hostname) != 0) {
            snprintf(err, errlen, "output %s: bad format settings", oc->path);
            goto fail;
        }
        if (oc->group != NULL) {
            struct group *gr = getgrnam(oc->group);
            if (gr == NULL) {
                snprintf(err, errlen, "output %s: group: no group \"%s\"", oc->path, oc->group);
                goto fail;
            }
            o->ropts.group = gr->gr_gid;
        }
        if (o->templated)
            continue; /* files are opened as records name them */
        if ((o->sinks = sink_new(oc->path)) == NULL) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        o->n_sinks = 1;
        rc = sink_open(o, o->sinks);
        if (rc != 0) {
            snprintf(err, errlen, "output %s: %s", oc->path, strerror(-rc));
            goto fail;
        }
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
        for (struct sink *s = w->out[i].sinks, *next; s != NULL; s = next) {
            next = s->next;
            sink_free(&w->out[i], s);
        }
    }
    /* Compression left unfinished resumes at the next start. */
    if (w->aw != NULL && archive_worker_stop(w->aw, ARCHIVE_STOP_MS) == -ETIMEDOUT)
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
