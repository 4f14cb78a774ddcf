/*
 * output_nats: the nats kind, publishing to a NATS JetStream stream.  See
 * output.h for the seam, spool_writer.h for the spool side and
 * nats_sender.h for the publishing thread.
 *
 * The writer formats each record (json unless the output says otherwise),
 * computes its subject from the template, and appends one spool frame
 * whose body is "SUBJECT SP PAYLOAD"; the sender publishes PAYLOAD to
 * SUBJECT.  The subject is built here, on the writer, so that the spool
 * holds exactly what will be published and the sender needs no record.
 *
 * Subjects.  The template's placeholders are those of file paths, each
 * value sanitised as route_expand() does for a path component, and then
 * every '.' in a value made '_': in a subject a '.' separates tokens, and a
 * client's host name must not add tokens (nor reach a subject the stream
 * does not cover).  The literal parts were checked by the config (tokens
 * of letters, digits, '_' and '-').
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "nats_sender.h"
#include "output.h"
#include "route.h"
#include "spool_writer.h"

#define SUBJECT_MAX 1024

/* The state: the spool side first (spool_writer.h), then the subject. */
struct nats_output {
    struct spool_writer w;
    char subject[SUBJECT_MAX + 1];
};

static bool nt_claims(const struct output_conf *oc)
{
    return oc->nats_subject != NULL;
}

static int nt_sender_open(struct output *o, struct spool *sp, void **s, char *err,
                          size_t errlen)
{
    struct nats_sender *n = NULL;
    int rc = nats_open(&n, o->oc, sp, o->st, err, errlen);
    *s = n;
    return rc;
}

static int nt_start(void *s)
{
    return nats_start(s);
}

static void nt_kick(void *s)
{
    nats_kick(s);
}

static void nt_stop(void *s, uint64_t flush_ms)
{
    nats_stop(s, flush_ms);
}

static void nt_release(void *s)
{
    nats_free(s);
}

static const struct spw_sender nt_sender = {
    nt_sender_open, nt_start, nt_kick, nt_stop, nt_release,
};

static int nt_open(struct output *o, char *err, size_t errlen)
{
    return spw_kind_open(o, sizeof(struct nats_output), &nt_sender, err, errlen);
}

/* Expand the subject template for r into nt->subject, then the separator.
 * Returns its length, or a negative errno. */
static int make_subject(const struct output *o, struct nats_output *nt, const struct record *r)
{
    const char *t = o->oc->nats_subject;
    size_t n = 0;
    while (*t != '\0') {
        const char *ph = strstr(t, "%{");
        size_t lit = ph != NULL ? (size_t)(ph - t) : strlen(t);
        if (n + lit > SUBJECT_MAX)
            return -ENAMETOOLONG;
        memcpy(nt->subject + n, t, lit);
        n += lit;
        if (ph == NULL)
            break;
        const char *end = strchr(ph, '}'); /* the config checked there is one */
        char one[32];
        size_t pl = (size_t)(end - ph) + 1;
        if (pl >= sizeof(one))
            return -EINVAL;
        memcpy(one, ph, pl);
        one[pl] = '\0';
        int v = route_expand(one, r, o->env->host, nt->subject + n, SUBJECT_MAX + 1 - n);
        if (v < 0)
            return v;
        for (int k = 0; k < v; k++)
            if (nt->subject[n + (size_t)k] == '.')
                nt->subject[n + (size_t)k] = '_';
        n += (size_t)v;
        t = end + 1;
    }
    if (n >= SUBJECT_MAX)
        return -ENAMETOOLONG;
    nt->subject[n++] = ' ';
    return (int)n;
}

static int nt_accept(struct output *o, const struct record *r)
{
    struct nats_output *nt = o->state;
    if (spw_held(o, &nt->w))
        return OUTPUT_HOLD;
    int sl = make_subject(o, nt, r);
    if (sl < 0)
        return sl;
    size_t len;
    int rc = spw_format(o, &nt->w, r, &len);
    if (rc != 0)
        return rc;
    if (len == 0)
        return -EINVAL;
    return spw_frame(o, &nt->w, nt->subject, (size_t)sl, nt->w.line.p, len);
}

static int nt_stats(const struct output *o, struct buf *out, bool prometheus)
{
    const struct nats_output *nt = o->state;
    if (nt == NULL || nt->w.sp == NULL)
        return 0;
    struct forward_spool_view v;
    spw_view(&nt->w, &v);
    /* HELP and TYPE once: forward families with the first forward or nats
     * output, nats ones with the first nats output. */
    bool first_fwd = true, first_nats = true;
    const struct config *cfg = o->env->cfg;
    for (size_t i = 0; i < cfg->n_outputs && &cfg->outputs[i] != o->oc; i++) {
        first_nats &= cfg->outputs[i].nats_subject == NULL;
        first_fwd &= cfg->outputs[i].nats_subject == NULL && cfg->outputs[i].fwd_address == NULL;
    }
    int rc = stats_format_forward(out, o->oc->path, &o->st->fwd, &v, prometheus, first_fwd);
    if (rc == 0)
        rc = stats_format_nats(out, o->oc->path, &o->st->nats, prometheus, first_nats);
    return rc;
}

const struct output_kind output_nats_kind = {
    .name = "nats",
    .claims = nt_claims,
    .open = nt_open,
    .accept = nt_accept,
    .flush = spw_kind_flush,
    .holds = spw_kind_holds,
    .tick = NULL,
    .next_wait_ms = spw_kind_next_wait_ms,
    .reopen = spw_kind_reopen,
    .rotate = NULL,
    .close = spw_kind_close,
    .free = spw_kind_free,
    .stats = nt_stats,
};
