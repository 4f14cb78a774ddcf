/*
 * output_forward: the forward output kind.  See output.h for the seam,
 * lib/spool.h for the spool and forward.h for the sender.
 *
 * The writer formats each record (rfc5424 unless the output says
 * otherwise) and frames it here, with RFC 6587 octet counting, into a
 * buffer that flush() appends to the spool; the sender thread does the
 * rest.  The frame is built on the writer, not the sender, because then
 * the spool holds exactly the bytes TCP and TLS send: the sender writes
 * them as they lie, its cursor is a byte position that TCP's
 * acknowledgements map onto one to one, and crash recovery can find the
 * record boundaries in a segment without any index.  A RELP sender only
 * strips the count off again.
 *
 * A full spool (max_size reached under full = "block") holds the writer:
 * accept() returns OUTPUT_HOLD while the records of the last flush still
 * do not fit, and the writer pauses and offers again, taking nothing more
 * from the channel, exactly as for a full disk.  A failing disk under the
 * spool (ENOSPC, EIO) is held inside flush() with the writer's growing
 * pause, as sink_flush() does for files.  Past the stop deadline what is
 * still held is counted as lost.
 *
 * The sender is started at open (on the main thread) and stopped at close
 * (after the writer thread has ended), with a bounded time to send what
 * the spool holds; whatever it could not send stays in the spool for the
 * next start.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "forward.h"
#include "log.h"
#include "output.h"
#include "spool.h"

#define PENDING_FLUSH (256 * 1024) /* bytes buffered before accept() flushes */
#define STOP_FLUSH_MS 5000         /* at most this long to send at stop */

struct fwd_output {
    struct spool *sp;
    struct forward *sender;
    struct buf pending;  /* framed records not yet in the spool */
    size_t pending_recs;
    struct buf line;     /* one formatted record */
    bool held;           /* the spool refused pending: full */
    bool dirty;          /* appended since the last fsync */
    uint64_t last_fsync_ms;
};

static struct fwd_output *fw_of(const struct output *o)
{
    return o->state;
}

static bool fwd_claims(const struct output_conf *oc)
{
    return oc->fwd_address != NULL;
}

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

static int fwd_open(struct output *o, char *err, size_t errlen)
{
    const struct output_conf *oc = o->oc;
    struct fwd_output *fw = calloc(1, sizeof(*fw));
    if (fw == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    o->state = fw;
    struct spool_opts so;
    spool_opts_init(&so);
    so.max_size = oc->fwd_spool_max_size;
    so.full = oc->fwd_spool_full;
    int rc = spool_open(&fw->sp, oc->fwd_spool_path, &so);
    if (rc != 0) {
        snprintf(err, errlen, "output %s: spool %s: %s", oc->path, oc->fwd_spool_path,
                 strerror(-rc));
        return rc;
    }
    if ((rc = give_spool(o, err, errlen)) != 0)
        return rc;
    struct spool_info in;
    spool_info(fw->sp, &in);
    if (in.unacked_bytes > 0 || in.torn_bytes > 0 || in.cursor_resets > 0)
        log_msg(LOG_INFO,
                "output %s: spool holds %llu bytes to send (torn tail cut: %llu bytes; "
                "cursor reset: %s)",
                oc->path, (unsigned long long)in.unacked_bytes,
                (unsigned long long)in.torn_bytes, in.cursor_resets ? "yes" : "no");
    if ((rc = forward_open(&fw->sender, oc, fw->sp, &o->st->fwd, err, errlen)) != 0)
        return rc;
    if ((rc = forward_start(fw->sender)) != 0) {
        snprintf(err, errlen, "output %s: cannot start the sender: %s", oc->path, strerror(-rc));
        return rc;
    }
    fw->last_fsync_ms = o->env->sink.now_ms();
    return 0;
}

/* Append pending to the spool.  Returns 0 when it is all in, 1 when the
 * spool is full (pending kept), or the negative errno of a failed write
 * (pending kept from the first byte not written). */
static int append_pending(struct output *o)
{
    struct fwd_output *fw = fw_of(o);
    size_t off = 0;
    int rc = 0;
    while (off < fw->pending.len) {
        size_t nrec = 0;
        ssize_t n = spool_append(fw->sp, fw->pending.p + off, fw->pending.len - off, &nrec);
        if (n > 0) {
            off += (size_t)n;
            counter_add(&o->st->records, nrec);
            counter_add(&o->st->bytes, (uint64_t)n);
            fw->pending_recs -= nrec;
            continue;
        }
        rc = n == SPOOL_FULL ? 1 : (int)n;
        break;
    }
    if (off > 0) {
        memmove(fw->pending.p, fw->pending.p + off, fw->pending.len - off);
        fw->pending.len -= off;
        fw->dirty = true;
        forward_kick(fw->sender);
    }
    fw->held = rc == 1;
    return rc;
}

static int fwd_accept(struct output *o, const struct record *r)
{
    struct fwd_output *fw = fw_of(o);
    if (fw->held && append_pending(o) == 1)
        return OUTPUT_HOLD;
    fw->line.len = 0;
    int rc = format_record(&o->fmt, r, &fw->line);
    if (rc != 0)
        return rc < 0 ? rc : -EINVAL;
    /* A format writes one line; on the wire the count delimits it. */
    size_t len = fw->line.len;
    if (len > 0 && fw->line.p[len - 1] == '\n')
        len--;
    if (len == 0 || len > SPOOL_FRAME_MAX)
        return -EINVAL;
    char hdr[16];
    size_t h = spool_frame_header(hdr, len);
    if (buf_append(&fw->pending, hdr, h) != 0 || buf_append(&fw->pending, fw->line.p, len) != 0)
        return -ENOMEM;
    fw->pending_recs++;
    if (fw->pending.len >= PENDING_FLUSH)
        (void)append_pending(o);
    return 0;
}

static bool fwd_holds(const struct output *o)
{
    return fw_of((struct output *)o)->pending.len > 0;
}

static void fwd_flush(struct output *o, uint64_t now_ms, bool force_sync)
{
    struct fwd_output *fw = fw_of(o);
    const struct sink_ctx *cx = &o->env->sink;
    uint64_t pause = 10;
    bool reported = false;
    while (fw->pending.len > 0) {
        int rc = append_pending(o);
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
            counter_add(&o->st->lost, fw->pending_recs);
            *cx->lost += fw->pending_recs;
            log_msg(LOG_ERR, "output %s: giving up at shutdown: %zu records not spooled: %s",
                    o->oc->path, fw->pending_recs, rc == 1 ? "spool full" : strerror(-rc));
            fw->pending.len = 0;
            fw->pending_recs = 0;
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
    if (fw->dirty && o->oc->fsync_ms >= 0 &&
        (force_sync || o->oc->fsync_ms == 0 ||
         now_ms >= fw->last_fsync_ms + (uint64_t)o->oc->fsync_ms)) {
        int rc = spool_sync(fw->sp);
        if (rc != 0) {
            counter_add(&o->st->write_errors, 1);
            log_msg(LOG_ERR, "output %s: fsync of the spool: %s", o->oc->path, strerror(-rc));
        }
        fw->dirty = false;
        fw->last_fsync_ms = now_ms;
    }
}

static uint64_t fwd_next_wait_ms(struct output *o, uint64_t now_ms, uint64_t wait)
{
    struct fwd_output *fw = fw_of(o);
    if (!fw->dirty || o->oc->fsync_ms <= 0)
        return wait;
    uint64_t due = fw->last_fsync_ms + (uint64_t)o->oc->fsync_ms;
    uint64_t left = due > now_ms ? due - now_ms : 0;
    return left < wait ? left : wait;
}

static void fwd_reopen(struct output *o)
{
    (void)o; /* a spool is not rotated by others: nothing to reopen */
}

static void fwd_close(struct output *o)
{
    struct fwd_output *fw = fw_of(o);
    if (fw == NULL)
        return;
    if (fw->sender != NULL) {
        uint64_t ms = (uint64_t)o->env->cfg->stop_timeout_ms;
        forward_stop(fw->sender, ms < STOP_FLUSH_MS ? ms : STOP_FLUSH_MS);
        forward_free(fw->sender);
        fw->sender = NULL;
    }
    if (fw->sp != NULL) {
        int rc = spool_close(fw->sp);
        if (rc != 0)
            log_msg(LOG_ERR, "output %s: closing the spool: %s", o->oc->path, strerror(-rc));
        fw->sp = NULL;
    }
}

static void fwd_free(struct output *o)
{
    struct fwd_output *fw = fw_of(o);
    if (fw == NULL)
        return;
    fwd_close(o);
    buf_free(&fw->pending);
    buf_free(&fw->line);
    free(fw);
    o->state = NULL;
}

static int fwd_stats(const struct output *o, struct buf *out, bool prometheus)
{
    const struct fwd_output *fw = o->state;
    if (fw == NULL || fw->sp == NULL)
        return 0;
    struct spool_info in;
    spool_info(fw->sp, &in);
    struct forward_spool_view v = {
        .bytes = in.bytes,
        .segments = in.segments,
        .unacked_bytes = in.unacked_bytes,
        .dropped_records = in.dropped_records,
        .dropped_bytes = in.dropped_bytes,
        .full_events = in.full_events,
        .torn_bytes = in.torn_bytes,
        .corrupt_bytes = in.corrupt_bytes,
    };
    if (in.oldest_unacked_us > 0) {
        double now = (double)clock_wall_us() / 1e6;
        double age = now - (double)in.oldest_unacked_us / 1e6;
        v.oldest_unacked_age_s = age > 0 ? age : 0;
    }
    /* HELP and TYPE once, with the first forward output. */
    bool first = true;
    const struct config *cfg = o->env->cfg;
    for (size_t i = 0; i < cfg->n_outputs && &cfg->outputs[i] != o->oc; i++)
        first &= cfg->outputs[i].fwd_address == NULL;
    return stats_format_forward(out, o->oc->path, &o->st->fwd, &v, prometheus, first);
}

const struct output_kind output_forward_kind = {
    .name = "forward",
    .claims = fwd_claims,
    .open = fwd_open,
    .accept = fwd_accept,
    .flush = fwd_flush,
    .holds = fwd_holds,
    .tick = NULL,
    .next_wait_ms = fwd_next_wait_ms,
    .reopen = fwd_reopen,
    .rotate = NULL,
    .close = fwd_close,
    .free = fwd_free,
    .stats = fwd_stats,
};
