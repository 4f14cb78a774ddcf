/*
 * input: what every listener kind shares (the kinds' table, counts, the
 * making of a record).  See input.h for the seam.
 */
#include "input.h"

#include <string.h>

#include "clock.h"

const struct input_kind *input_kind_of(int type)
{
    /* Indexed by enum listen_type: a new kind is a new row, no switch. */
    static const struct input_kind *const kinds[] = {
        [LISTEN_STREAM] = &input_unix_stream,
        [LISTEN_DGRAM] = &input_unix_dgram,
        [LISTEN_RELP] = &input_relp,
    };
    if (type < 0 || (size_t)type >= sizeof(kinds) / sizeof(kinds[0]))
        return NULL;
    return kinds[type];
}

void input_tally_flush(struct iloop *l, struct listener *lst)
{
    struct deliver_tally *t = &l->dl.tally;
    struct listener_stats *st = lst->st;
    if (t->records)
        counter_add(&st->records, t->records);
    if (t->bytes)
        counter_add(&st->bytes, t->bytes);
    if (t->parse_errors)
        counter_add(&st->parse_errors, t->parse_errors);
    if (t->truncated)
        counter_add(&st->truncated, t->truncated);
    if (t->bad_frames)
        counter_add(&st->bad_frames, t->bad_frames);
    if (t->dropped)
        counter_add(&st->dropped, t->dropped);
    if (t->lost)
        counter_add(&st->lost, t->lost);
    memset(t, 0, sizeof(*t));
}

struct record *input_make_record(struct iloop *l, struct listener *lst, const char *msg,
                                 size_t len, unsigned fflags, const struct input_src *src)
{
    struct deliver_tally *t = &l->dl.tally;
    struct record *r = record_pool_new(&l->pool, msg, len);
    if (r == NULL) {
        t->lost++;
        return NULL;
    }
    r->recv_us = l->now_us;
    r->listener = lst->idx;
    if (src->has_creds) {
        r->pid = src->pid;
        r->uid = src->uid;
        r->gid = src->gid;
        r->flags |= RECORD_F_HAS_CREDS;
    }
    if (fflags & FRAME_TRUNCATED) {
        r->flags |= RECORD_F_TRUNCATED;
        t->truncated++;
    }
    if (fflags & (FRAME_BAD_COUNT | FRAME_INCOMPLETE))
        t->bad_frames++;
    syslog_parse(r, &lst->popts);
    if (r->flags & RECORD_F_PARSE_ERROR)
        t->parse_errors++;
    t->bytes += len;
    return r;
}
