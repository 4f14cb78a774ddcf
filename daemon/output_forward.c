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
 * The spool side (pending buffer, holding while the spool is full or its
 * disk fails, fsync) is spool_writer.c's, shared with the other spooled
 * kinds (output_nats.c).
 *
 * The sender is started at open (on the main thread) and stopped at close
 * (after the writer thread has ended), with a bounded time to send what
 * the spool holds; whatever it could not send stays in the spool for the
 * next start.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "log.h"
#include "output.h"
#include "spool_writer.h"

#define STOP_FLUSH_MS 5000 /* at most this long to send at stop */

struct fwd_output {
    struct spool_writer w;
    struct forward *sender;
    struct buf line; /* one formatted record */
};

static struct fwd_output *fw_of(const struct output *o)
{
    return o->state;
}

static bool fwd_claims(const struct output_conf *oc)
{
    return oc->fwd_address != NULL;
}

static void fwd_kick(void *arg)
{
    forward_kick(arg);
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
    int rc = spw_open(&fw->w, o, err, errlen);
    if (rc != 0)
        return rc;
    if ((rc = forward_open(&fw->sender, oc, fw->w.sp, &o->st->fwd, err, errlen)) != 0)
        return rc;
    if ((rc = forward_start(fw->sender)) != 0) {
        snprintf(err, errlen, "output %s: cannot start the sender: %s", oc->path, strerror(-rc));
        return rc;
    }
    fw->w.kick = fwd_kick;
    fw->w.kick_arg = fw->sender;
    return 0;
}

static int fwd_accept(struct output *o, const struct record *r)
{
    struct fwd_output *fw = fw_of(o);
    if (spw_held(o, &fw->w))
        return OUTPUT_HOLD;
    fw->line.len = 0;
    int rc = format_record(&o->fmt, r, &fw->line);
    if (rc != 0)
        return rc < 0 ? rc : -EINVAL;
    /* A format writes one line; on the wire the count delimits it. */
    size_t len = fw->line.len;
    if (len > 0 && fw->line.p[len - 1] == '\n')
        len--;
    return spw_frame(o, &fw->w, fw->line.p, len, NULL, 0);
}

static void fwd_flush(struct output *o, uint64_t now_ms, bool force_sync)
{
    spw_flush(o, &fw_of(o)->w, now_ms, force_sync);
}

static uint64_t fwd_next_wait_ms(struct output *o, uint64_t now_ms, uint64_t wait)
{
    return spw_next_wait_ms(o, &fw_of(o)->w, now_ms, wait);
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
    spw_close(o, &fw->w);
}

static void fwd_free(struct output *o)
{
    struct fwd_output *fw = fw_of(o);
    if (fw == NULL)
        return;
    fwd_close(o);
    spw_free(&fw->w);
    buf_free(&fw->line);
    free(fw);
    o->state = NULL;
}

static int fwd_stats(const struct output *o, struct buf *out, bool prometheus)
{
    const struct fwd_output *fw = o->state;
    if (fw == NULL || fw->w.sp == NULL)
        return 0;
    struct forward_spool_view v;
    spw_view(&fw->w, &v);
    /* HELP and TYPE once, with the first output that prints forward
     * families (forward and nats outputs both do). */
    bool first = true;
    const struct config *cfg = o->env->cfg;
    for (size_t i = 0; i < cfg->n_outputs && &cfg->outputs[i] != o->oc; i++)
        first &= cfg->outputs[i].fwd_address == NULL && cfg->outputs[i].nats_subject == NULL;
    return stats_format_forward(out, o->oc->path, &o->st->fwd, &v, prometheus, first);
}

const struct output_kind output_forward_kind = {
    .name = "forward",
    .claims = fwd_claims,
    .open = fwd_open,
    .accept = fwd_accept,
    .flush = fwd_flush,
    .tick = NULL,
    .next_wait_ms = fwd_next_wait_ms,
    .reopen = fwd_reopen,
    .rotate = NULL,
    .close = fwd_close,
    .free = fwd_free,
    .stats = fwd_stats,
};
