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

/* The state: the spool side first (spool_writer.h), nothing else. */
struct fwd_output {
    struct spool_writer w;
};

static bool fwd_claims(const struct output_conf *oc)
{
    return oc->fwd_address != NULL;
}

static int fwd_sender_open(struct output *o, struct spool *sp, void **s, char *err,
                           size_t errlen)
{
    struct forward *f = NULL;
    int rc = forward_open(&f, o->oc, sp, &o->st->fwd, err, errlen);
    *s = f;
    return rc;
}

static int fwd_start(void *s)
{
    return forward_start(s);
}

static void fwd_kick(void *s)
{
    forward_kick(s);
}

static void fwd_stop(void *s, uint64_t flush_ms)
{
    forward_stop(s, flush_ms);
}

static void fwd_release(void *s)
{
    forward_free(s);
}

static const struct spw_sender fwd_sender = {
    fwd_sender_open, fwd_start, fwd_kick, fwd_stop, fwd_release,
};

static int fwd_open(struct output *o, char *err, size_t errlen)
{
    return spw_kind_open(o, sizeof(struct fwd_output), &fwd_sender, err, errlen);
}

static int fwd_accept(struct output *o, const struct record *r)
{
    struct fwd_output *fw = o->state;
    if (spw_held(o, &fw->w))
        return OUTPUT_HOLD;
    size_t len;
    int rc = spw_format(o, &fw->w, r, &len);
    return rc != 0 ? rc : spw_frame(o, &fw->w, fw->w.line.p, len, NULL, 0);
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
    .flush = spw_kind_flush,
    .holds = spw_kind_holds,
    .tick = NULL,
    .next_wait_ms = spw_kind_next_wait_ms,
    .reopen = spw_kind_reopen,
    .rotate = NULL,
    .close = spw_kind_close,
    .free = spw_kind_free,
    .stats = fwd_stats,
};
