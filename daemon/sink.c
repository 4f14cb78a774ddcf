/*
 * sink: write retry on a failing disk, unwrite of half lines, the fsync
 * policy.  See sink.h.
 */
#include "sink.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define RETRY_MIN_MS 10
#define RETRY_MAX_MS 1000

int sink_init(struct sink *s, const struct sink_conf *conf, const char *path)
{
    memset(s, 0, sizeof(*s));
    s->conf = conf;
    if ((s->path = strdup(path)) == NULL)
        return -ENOMEM;
    buf_init(&s->buf);
    s->last_fsync_ms = conf->cx->now_ms();
    return 0;
}

int sink_open(struct sink *s)
{
    const struct sink_conf *c = s->conf;
    int rc = rotate_open(&s->rf, s->path, &c->ropts, c->aw);
    if (rc == 0)
        counter_add(&c->st->files_open, 1);
    else
        s->rf = NULL;
    return rc;
}

void sink_refuse(struct sink *s, int err)
{
    counter_add(&s->conf->st->files_refused, 1);
    atomic_store_explicit(&s->conf->st->last_errno, -err, memory_order_relaxed);
    if (s->refused)
        return;
    s->refused = true;
    log_msg(LOG_ERR,
            "output %s: refused: %s (the file, or a directory below the configured part of "
            "its path, is a symbolic link; lograild never writes through one); its records are "
            "dropped and counted as records_refused until a reopen (SIGHUP) finds no link there",
            s->path, strerror(-err));
}

int sink_reopen(struct sink *s)
{
    int rc = s->rf != NULL ? rotate_reopen(s->rf) : sink_open(s);
    if (rc == -ELOOP) {
        sink_refuse(s, rc);
    } else if (rc == 0 && s->refused) {
        s->refused = false;
        log_msg(LOG_NOTICE, "output %s: no symbolic link in the way any more; writing again",
                s->path);
    }
    return rc;
}

static void close_rf(struct sink *s, bool lazy)
{
    if (s->rf == NULL)
        return;
    int rc = lazy ? rotate_close_lazy(s->rf) : rotate_close(s->rf);
    /* EINVAL: its fsync cannot work (a FIFO); it is closed all the same. */
    if (rc != 0 && rc != -EINVAL && rc != -EROFS)
        log_msg(LOG_WARNING, "output %s: close: %s", s->path, strerror(-rc));
    s->rf = NULL;
    s->dirty = false;
    atomic_fetch_sub_explicit(&s->conf->st->files_open, 1, memory_order_relaxed);
}

void sink_close(struct sink *s)
{
    close_rf(s, false);
}

bool sink_close_lazy(struct sink *s)
{
    int64_t every = s->conf->fsync_ms;
    bool owed = s->rf != NULL && s->dirty && !s->nosync && every > 0;
    close_rf(s, every != 0);
    return owed;
}

void sink_fini(struct sink *s)
{
    sink_close(s);
    buf_free(&s->buf);
    free(s->path);
    s->path = NULL;
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

void sink_flush(struct sink *s)
{
    const struct sink_conf *c = s->conf;
    const struct sink_ctx *cx = c->cx;
    struct output_stats *st = c->st;
    size_t off = 0, lost = 0, refused = 0;
    uint64_t pause = RETRY_MIN_MS;
    bool reported = false;
    while (off < s->buf.len) {
        int e;
        if (s->rf == NULL && (e = -sink_open(s)) != 0) {
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
        if (e == ELOOP) {
            /* A symlink took the file's place (a rotation or reopen found
             * one): never a reason to hold every output back. */
            sink_refuse(s, -e);
            refused = count_lines(s->buf.p + off, s->buf.len - off);
            counter_add(&st->records_refused, refused);
            break;
        }
        counter_add(&st->write_errors, 1);
        atomic_store_explicit(&st->last_errno, e, memory_order_relaxed);
        if (cx->giving_up(cx->arg)) {
            lost = count_lines(s->buf.p + off, s->buf.len - off);
            unwrite_partial_line(s, off);
            counter_add(&st->lost, lost);
            *cx->lost += lost;
            log_msg(LOG_ERR, "output %s: giving up at shutdown: %zu records not written: %s",
                    s->path, lost, strerror(e));
            break;
        }
        if (!reported) {
            log_msg(LOG_ERR, "output %s: cannot write (%s); holding %zu bytes, retrying", s->path,
                    strerror(e), s->buf.len - off);
            reported = true;
        }
        cx->pause(cx->arg, pause);
        pause = pause * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : pause * 2;
    }
    if (reported && off == s->buf.len) {
        log_msg(LOG_NOTICE, "output %s: writing again", s->path);
        atomic_store_explicit(&st->last_errno, 0, memory_order_relaxed);
    }
    if (off > 0) {
        s->dirty = true;
        counter_add(&st->bytes, off);
    }
    counter_add(&st->records, s->pending > lost + refused ? s->pending - lost - refused : 0);
    s->pending = 0;
    s->buf.len = 0;
}

void sink_maybe_fsync(struct sink *s, uint64_t now, bool force)
{
    if (!s->dirty || s->rf == NULL || s->nosync) {
        s->dirty = false;
        return;
    }
    struct output_stats *st = s->conf->st;
    int64_t every = s->conf->fsync_ms;
    if (!force && (every < 0 || now < s->last_fsync_ms + (uint64_t)every))
        return;
    int rc = rotate_sync(s->rf);
    /* Whatever happened, the next try is a whole interval away: a failing
     * fsync must not make the writer spin (its wait would be 0). */
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
        counter_add(&st->write_errors, 1);
        atomic_store_explicit(&st->last_errno, -rc, memory_order_relaxed);
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

uint64_t sink_fsync_due_in(const struct sink *s, uint64_t now)
{
    if (!s->dirty || s->conf->fsync_ms <= 0)
        return UINT64_MAX;
    uint64_t due = s->last_fsync_ms + (uint64_t)s->conf->fsync_ms;
    return due > now ? due - now : 0;
}
