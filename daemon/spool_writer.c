/*
 * spool_writer: see spool_writer.h.  The frame is built on the writer, not
 * the sender, so that the spool holds whole self-delimiting frames: crash
 * recovery finds record boundaries without an index, and a TCP sender
 * writes the bytes as they lie.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "spool_writer.h"

#define PENDING_FLUSH (256 * 1024) /* bytes buffered before a frame flushes */
#define STOP_FLUSH_MS 5000         /* at most this long to send at stop */

/* Started as root with `user`: the spool becomes that user's, since after
 * the drop the sender creates segments and the cursor file in it (relative
 * to the directory it holds open, so the parents need not be reachable). */
static int give_spool(const struct output *o, char *err, size_t errlen)
{
    const struct config *cfg = o->env->cfg;
    if (cfg->user == NULL || geteuid() != 0)
        return 0;
    struct passwd *pw = getpwnam(cfg->user);
    if (pw == NULL)
        return 0; /* privs_drop() says so */
    gid_t gid = pw->pw_gid;
    if (cfg->group != NULL) {
        struct group *gr = getgrnam(cfg->group);
        if (gr == NULL)
            return 0;
        gid = gr->gr_gid;
    }
    const char *path = o->oc->fwd_spool_path;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    int rc = d != NULL && fchown(fd, pw->pw_uid, gid) == 0 ? 0 : -errno;
    for (struct dirent *de; rc == 0 && (de = readdir(d)) != NULL;) {
        if (de->d_name[0] == '.')
            continue;
        if (fchownat(fd, de->d_name, pw->pw_uid, gid, AT_SYMLINK_NOFOLLOW) != 0)
            rc = -errno;
    }
    if (d != NULL)
        closedir(d);
    else if (fd >= 0)
        close(fd);
    if (rc != 0)
        snprintf(err, errlen, "output %s: spool %s: cannot give it to user %s: %s", o->oc->path,
                 path, cfg->user, strerror(-rc));
    return rc;
}

int spw_kind_open(struct output *o, size_t state_size, const struct spw_sender *ops, char *err,
                  size_t errlen)
{
    const struct output_conf *oc = o->oc;
    struct spool_writer *w = calloc(1, state_size);
    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    o->state = w;
    struct spool_opts so;
    spool_opts_init(&so);
    so.max_size = oc->fwd_spool_max_size;
    so.full = oc->fwd_spool_full;
    int rc = spool_open(&w->sp, oc->fwd_spool_path, &so);
    if (rc != 0) {
        snprintf(err, errlen, "output %s: spool %s: %s", oc->path, oc->fwd_spool_path,
                 strerror(-rc));
        return rc;
    }
    if ((rc = give_spool(o, err, errlen)) != 0)
        return rc;
    struct spool_info in;
    spool_info(w->sp, &in);
    if (in.unacked_bytes > 0 || in.torn_bytes > 0 || in.cursor_resets > 0)
        log_msg(LOG_INFO,
                "output %s: spool holds %llu bytes to send (torn tail cut: %llu bytes; "
                "cursor reset: %s)",
                oc->path, (unsigned long long)in.unacked_bytes,
                (unsigned long long)in.torn_bytes, in.cursor_resets ? "yes" : "no");
    w->last_fsync_ms = o->env->sink.now_ms();
    void *snd = NULL;
    if ((rc = ops->open(o, w->sp, &snd, err, errlen)) != 0) {
        if (snd != NULL)
            ops->free(snd);
        return rc;
    }
    w->ops = ops;
    w->sender = snd;
    if ((rc = ops->start(snd)) != 0) {
        snprintf(err, errlen, "output %s: cannot start the sender: %s", oc->path, strerror(-rc));
        return rc;
    }
    return 0;
}

/* Append pending to the spool.  Returns 0 when it is all in, 1 when the
 * spool is full (pending kept), or the negative errno of a failed write
 * (pending kept from the first byte not written). */
static int append_pending(struct output *o, struct spool_writer *w)
{
    size_t off = 0;
    int rc = 0;
    while (off < w->pending.len) {
        size_t nrec = 0;
        ssize_t n = spool_append(w->sp, w->pending.p + off, w->pending.len - off, &nrec);
        if (n > 0) {
            off += (size_t)n;
            counter_add(&o->st->records, nrec);
            counter_add(&o->st->bytes, (uint64_t)n);
            w->pending_recs -= nrec;
            continue;
        }
        rc = n == SPOOL_FULL ? 1 : (int)n;
        break;
    }
    if (off > 0) {
        memmove(w->pending.p, w->pending.p + off, w->pending.len - off);
        w->pending.len -= off;
        w->dirty = true;
        if (w->sender != NULL)
            w->ops->kick(w->sender);
    }
    w->held = rc == 1;
    return rc;
}

bool spw_held(struct output *o, struct spool_writer *w)
{
    return w->held && append_pending(o, w) == 1;
}

int spw_frame(struct output *o, struct spool_writer *w, const char *a, size_t alen,
              const char *b, size_t blen)
{
    size_t len = alen + blen;
    if (len == 0 || len > SPOOL_FRAME_MAX)
        return -EINVAL;
    char hdr[16];
    size_t h = spool_frame_header(hdr, len);
    if (buf_append(&w->pending, hdr, h) != 0 || buf_append(&w->pending, a, alen) != 0 ||
        (blen > 0 && buf_append(&w->pending, b, blen) != 0))
        return -ENOMEM;
    w->pending_recs++;
    if (w->pending.len >= PENDING_FLUSH)
        (void)append_pending(o, w);
    return 0;
}

int spw_format(struct output *o, struct spool_writer *w, const struct record *r, size_t *len)
{
    w->line.len = 0;
    int rc = format_record(&o->fmt, r, &w->line);
    if (rc != 0)
        return rc < 0 ? rc : -EINVAL;
    /* A format writes one line; a frame's count delimits it instead. */
    *len = w->line.len;
    if (*len > 0 && w->line.p[*len - 1] == '\n')
        (*len)--;
    return 0;
}

void spw_kind_flush(struct output *o, uint64_t now_ms, bool force_sync)
{
    struct spool_writer *w = o->state;
    const struct sink_ctx *cx = &o->env->sink;
    uint64_t pause = 10;
    bool reported = false;
    while (w->pending.len > 0) {
        int rc = append_pending(o, w);
        if (rc == 0)
            break;
        /* Full: hold here only for the last flush (the writer's deliver()
         * holds otherwise); a failing disk: always, as sink_flush does. */
        if (rc == 1 && !force_sync)
            break;
        if (rc < 0) {
            counter_add(&o->st->write_errors, 1);
            atomic_store_explicit(&o->st->last_errno, -rc, memory_order_relaxed);
        }
        if (cx->giving_up(cx->arg)) {
            counter_add(&o->st->lost, w->pending_recs);
            *cx->lost += w->pending_recs;
            log_msg(LOG_ERR, "output %s: giving up at shutdown: %zu records not spooled: %s",
                    o->oc->path, w->pending_recs, rc == 1 ? "spool full" : strerror(-rc));
            w->pending.len = 0;
            w->pending_recs = 0;
            break;
        }
        if (!reported) {
            log_msg(LOG_ERR, "output %s: cannot append to the spool (%s); holding, retrying",
                    o->oc->path, rc == 1 ? "spool full" : strerror(-rc));
            reported = true;
        }
        cx->pause(cx->arg, pause);
        pause = pause * 2 > 1000 ? 1000 : pause * 2;
        now_ms = cx->now_ms();
    }
    if (w->dirty && o->oc->fsync_ms >= 0 &&
        (force_sync || o->oc->fsync_ms == 0 ||
         now_ms >= w->last_fsync_ms + (uint64_t)o->oc->fsync_ms)) {
        int rc = spool_sync(w->sp);
        if (rc != 0) {
            counter_add(&o->st->write_errors, 1);
            log_msg(LOG_ERR, "output %s: fsync of the spool: %s", o->oc->path, strerror(-rc));
        }
        w->dirty = false;
        w->last_fsync_ms = now_ms;
    }
}

uint64_t spw_kind_next_wait_ms(struct output *o, uint64_t now_ms, uint64_t wait)
{
    const struct spool_writer *w = o->state;
    if (!w->dirty || o->oc->fsync_ms <= 0)
        return wait;
    uint64_t due = w->last_fsync_ms + (uint64_t)o->oc->fsync_ms;
    uint64_t left = due > now_ms ? due - now_ms : 0;
    return left < wait ? left : wait;
}

bool spw_kind_holds(const struct output *o)
{
    const struct spool_writer *w = o->state;
    return w->pending.len > 0;
}

void spw_kind_reopen(struct output *o)
{
    (void)o;
}

void spw_kind_close(struct output *o)
{
    struct spool_writer *w = o->state;
    if (w == NULL)
        return;
    if (w->sender != NULL) {
        uint64_t ms = (uint64_t)o->env->cfg->stop_timeout_ms;
        w->ops->stop(w->sender, ms < STOP_FLUSH_MS ? ms : STOP_FLUSH_MS);
        w->ops->free(w->sender);
        w->sender = NULL;
    }
    if (w->sp != NULL) {
        int rc = spool_close(w->sp);
        if (rc != 0)
            log_msg(LOG_ERR, "output %s: closing the spool: %s", o->oc->path, strerror(-rc));
        w->sp = NULL;
    }
}

void spw_kind_free(struct output *o)
{
    struct spool_writer *w = o->state;
    if (w == NULL)
        return;
    spw_kind_close(o);
    buf_free(&w->pending);
    buf_free(&w->line);
    free(w);
    o->state = NULL;
}

void spw_view(const struct spool_writer *w, struct forward_spool_view *v)
{
    memset(v, 0, sizeof(*v));
    if (w->sp == NULL)
        return;
    struct spool_info in;
    spool_info(w->sp, &in);
    v->bytes = in.bytes;
    v->segments = in.segments;
    v->unacked_bytes = in.unacked_bytes;
    v->dropped_records = in.dropped_records;
    v->dropped_bytes = in.dropped_bytes;
    v->full_events = in.full_events;
    v->torn_bytes = in.torn_bytes;
    v->corrupt_bytes = in.corrupt_bytes;
    if (in.oldest_unacked_us > 0) {
        double now = (double)clock_wall_us() / 1e6;
        double age = now - (double)in.oldest_unacked_us / 1e6;
        v->oldest_unacked_age_s = age > 0 ? age : 0;
    }
}
