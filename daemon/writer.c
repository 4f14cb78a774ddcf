/*
 * writer: drain, format, write, fsync.
 *
 * A batch is taken with chan_recv_many(); every record is formatted into
 * each output's buffer and freed; then each buffer goes to its file with
 * write(2) calls that continue after partial writes.  While a write fails
 * (ENOSPC, EIO) the writer keeps the buffer, retries with a growing pause,
 * and takes nothing more from the channel: the channel fills, and ingest
 * holds the clients back.  Nothing is dropped unless the daemon is being
 * stopped and the stop deadline has passed; those records are counted.
 */
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "format.h"
#include "log.h"
#include "record.h"

#define BATCH 512
#define IDLE_WAKE_MS 1000      /* look at requests at least this often */
#define RETRY_MIN_MS 10
#define RETRY_MAX_MS 1000

struct output {
    const struct output_conf *oc;
    struct output_stats *st;
    struct format_ctx fmt;
    struct buf buf;
    size_t pending_records; /* records in buf not yet written */
    int fd;
    bool dirty;             /* written since the last fsync */
    uint64_t last_fsync_ms;
};

struct writer {
    const struct config *cfg;
    struct stats *stats;
    chan_rx *rx;
    struct output *out;
    size_t n_out;
    pthread_t thread;
    bool started;
    _Atomic bool reopen;
    _Atomic uint64_t stop_by_ms; /* 0: not stopping */
    uint64_t lost;
    struct record *batch[BATCH];
};

uint64_t writer_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Create the directories above path, like mkdir -p. */
static int mkdir_parents(const char *path)
{
    char *dir = strdup(path);
    if (dir == NULL)
        return -ENOMEM;
    int rc = 0;
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            rc = -errno;
            break;
        }
        *p = '/';
    }
    free(dir);
    return rc;
}

/* Open an output for appending.  A file a crash left without a final
 * newline gets one, so that the next record starts on a line of its own. */
static int output_open(struct output *o, char *err, size_t errlen)
{
    int rc = mkdir_parents(o->oc->path);
    if (rc != 0) {
        snprintf(err, errlen, "output %s: cannot create its directory: %s", o->oc->path,
                 strerror(-rc));
        return -1;
    }
    int fd = open(o->oc->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, o->oc->file_mode);
    if (fd < 0) {
        snprintf(err, errlen, "output %s: %s", o->oc->path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
        char last;
        int rfd = open(o->oc->path, O_RDONLY | O_CLOEXEC);
        if (rfd >= 0) {
            if (pread(rfd, &last, 1, st.st_size - 1) == 1 && last != '\n') {
                if (write(fd, "\n", 1) != 1)
                    log_msg(LOG_WARNING, "output %s: cannot end the partial last line: %s",
                            o->oc->path, strerror(errno));
            }
            close(rfd);
        }
    }
    o->fd = fd;
    return 0;
}

static void output_close(struct output *o)
{
    if (o->fd < 0)
        return;
    if (o->dirty && fdatasync(o->fd) != 0)
        log_msg(LOG_WARNING, "output %s: fsync: %s", o->oc->path, strerror(errno));
    close(o->fd);
    o->fd = -1;
    o->dirty = false;
}

static size_t count_lines(const char *p, size_t n)
{
    size_t lines = 0;
    for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
        lines++;
    return lines;
}

static bool giving_up(struct writer *w)
{
    uint64_t by = atomic_load_explicit(&w->stop_by_ms, memory_order_acquire);
    return by != 0 && writer_now_ms() >= by;
}

/* Write the whole buffer, retrying failures until they pass or the stop
 * deadline is over.  Lines are never cut: a partial write continues from
 * where it stopped. */
static void output_flush(struct writer *w, struct output *o)
{
    size_t off = 0;
    uint64_t pause = RETRY_MIN_MS;
    bool reported = false;
    while (off < o->buf.len) {
        ssize_t n = o->fd >= 0 ? write(o->fd, o->buf.p + off, o->buf.len - off) : -1;
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        int e = o->fd >= 0 ? errno : EBADF;
        if (n < 0 && e == EINTR)
            continue;
        counter_add(&o->st->write_errors, 1);
        atomic_store_explicit(&o->st->last_errno, e, memory_order_relaxed);
        if (giving_up(w)) {
            size_t lost = count_lines(o->buf.p + off, o->buf.len - off);
            counter_add(&o->st->lost, lost);
            w->lost += lost;
            log_msg(LOG_ERR, "output %s: giving up at shutdown: %zu records could not be written: %s",
                    o->oc->path, lost, strerror(e));
            break;
        }
        if (!reported) {
            log_msg(LOG_ERR, "output %s: write failed (%s); holding %zu bytes and retrying",
                    o->oc->path, strerror(e), o->buf.len - off);
            reported = true;
        }
        if (o->fd < 0) {
            char err[512];
            if (output_open(o, err, sizeof(err)) != 0)
                log_msg(LOG_ERR, "%s", err);
        }
        sleep_ms(pause);
        pause = pause * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : pause * 2;
    }
    if (reported && off == o->buf.len) {
        log_msg(LOG_NOTICE, "output %s: writing again", o->oc->path);
        atomic_store_explicit(&o->st->last_errno, 0, memory_order_relaxed);
    }
    if (off > 0) {
        o->dirty = true;
        counter_add(&o->st->bytes, off);
    }
    counter_add(&o->st->records, o->pending_records);
    o->pending_records = 0;
    o->buf.len = 0;
}

static void output_maybe_fsync(struct output *o, uint64_t now, bool force)
{
    if (!o->dirty || o->fd < 0)
        return;
    int64_t every = o->oc->fsync_ms;
    if (!force && (every < 0 || now < o->last_fsync_ms + (uint64_t)every))
        return;
    if (fdatasync(o->fd) != 0) {
        counter_add(&o->st->write_errors, 1);
        atomic_store_explicit(&o->st->last_errno, errno, memory_order_relaxed);
        log_msg(LOG_ERR, "output %s: fsync: %s", o->oc->path, strerror(errno));
        return;
    }
    o->dirty = false;
    o->last_fsync_ms = now;
}

static void reopen_all(struct writer *w)
{
    for (size_t i = 0; i < w->n_out; i++) {
        struct output *o = &w->out[i];
        output_close(o);
        char err[512];
        if (output_open(o, err, sizeof(err)) != 0)
            log_msg(LOG_ERR, "reopen: %s (will retry on the next write)", err);
    }
    log_msg(LOG_INFO, "outputs reopened");
}

/* How long recv may sleep: until the next interval fsync is due. */
static uint64_t next_wait_ms(struct writer *w, uint64_t now)
{
    uint64_t wait = IDLE_WAKE_MS;
    for (size_t i = 0; i < w->n_out; i++) {
        struct output *o = &w->out[i];
        if (!o->dirty || o->oc->fsync_ms <= 0)
            continue;
        uint64_t due = o->last_fsync_ms + (uint64_t)o->oc->fsync_ms;
        uint64_t left = due > now ? due - now : 0;
        if (left < wait)
            wait = left;
    }
    return wait;
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    for (;;) {
        uint64_t now = writer_now_ms();
        size_t n = 0;
        int rc = chan_recv_many_timeout(w->rx, w->batch, BATCH, &n,
                                        next_wait_ms(w, now) * 1000000u);
        if (rc == CHAN_DISCONNECTED)
            break;
        for (size_t i = 0; i < n; i++) {
            struct record *r = w->batch[i];
            if (r == NULL)
                continue; /* a wake-up: look at the requests below */
            for (size_t k = 0; k < w->n_out; k++) {
                struct output *o = &w->out[k];
                if (format_record(&o->fmt, r, &o->buf) == 0)
                    o->pending_records++;
                else {
                    counter_add(&o->st->lost, 1);
                    w->lost++;
                }
            }
            record_free(r);
        }
        now = writer_now_ms();
        for (size_t k = 0; k < w->n_out; k++) {
            struct output *o = &w->out[k];
            if (o->buf.len > 0)
                output_flush(w, o);
            output_maybe_fsync(o, now, o->oc->fsync_ms == 0);
        }
        if (atomic_exchange_explicit(&w->reopen, false, memory_order_acq_rel))
            reopen_all(w);
    }
    for (size_t k = 0; k < w->n_out; k++) {
        output_flush(w, &w->out[k]);
        output_maybe_fsync(&w->out[k], writer_now_ms(), true);
    }
    return NULL;
}

struct writer *writer_open(const struct config *cfg, struct stats *stats, chan_rx *rx,
                           char *err, size_t errlen)
{
    struct writer *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->cfg = cfg;
    w->stats = stats;
    w->rx = rx;
    w->n_out = cfg->n_outputs;
    w->out = calloc(w->n_out, sizeof(*w->out));
    if (w->out == NULL) {
        snprintf(err, errlen, "out of memory");
        free(w);
        return NULL;
    }
    for (size_t i = 0; i < w->n_out; i++)
        w->out[i].fd = -1;
    for (size_t i = 0; i < w->n_out; i++) {
        struct output *o = &w->out[i];
        o->oc = &cfg->outputs[i];
        o->st = &stats->outputs[i];
        buf_init(&o->buf);
        o->last_fsync_ms = writer_now_ms();
        if (format_ctx_init(&o->fmt, (enum format_kind)o->oc->format,
                            (enum format_ts)cfg->timestamp, cfg->hostname) != 0) {
            snprintf(err, errlen, "output %s: bad format settings", o->oc->path);
            goto fail;
        }
        if (output_open(o, err, errlen) != 0)
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

void writer_request_reopen(struct writer *w, chan_tx *kick)
{
    atomic_store_explicit(&w->reopen, true, memory_order_release);
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
        output_close(&w->out[i]);
        buf_free(&w->out[i].buf);
    }
    if (w->rx != NULL) {
        /* Whatever is left (only after a failed start) is freed here. */
        struct record *r;
        while (chan_try_recv(w->rx, &r) == CHAN_OK)
            record_free(r);
        chan_receiver_drop(w->rx);
    }
    free(w->out);
    free(w);
}
