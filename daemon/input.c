/*
 * input: what every listener kind shares (the kinds' table, counts, the
 * making of a record).  See input.h for the seam.
 */
#include "input.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"

const struct input_kind *input_kind_of(int type)
{
    /* Indexed by enum listen_type: a new kind is a new row, no switch. */
    static const struct input_kind *const kinds[] = {
        [LISTEN_STREAM] = &input_unix_stream,
        [LISTEN_DGRAM] = &input_unix_dgram,
        [LISTEN_TCP] = &input_tcp,
        [LISTEN_UDP] = &input_udp,
        [LISTEN_TLS] = &input_tls,
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
    size_t ext = (size_t)src->peer_len + src->peer_name_len;
    struct record *r = record_pool_new_ext(&l->pool, msg, len, src->ext, ext);
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
    if (ext > 0) {
        r->peer = (struct span){(uint32_t)len + 1, src->peer_len};
        r->peer_name = (struct span){(uint32_t)len + 1 + src->peer_len, src->peer_name_len};
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

void input_src_set_peer(struct input_src *src, const struct sockaddr *sa)
{
    char ip[INET6_ADDRSTRLEN];
    unsigned port = 0;
    bool brackets = false;
    ip[0] = '\0';
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            /* A v4 client of a [::] listener: shown as it would be on 0.0.0.0. */
            inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], ip, sizeof(ip));
        } else {
            inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
            brackets = true;
        }
        port = ntohs(in6->sin6_port);
    }
    int n = brackets ? snprintf(src->ext, INPUT_PEER_MAX, "[%s]:%u", ip, port)
                     : snprintf(src->ext, INPUT_PEER_MAX, "%s:%u", ip, port);
    src->peer_len = n > 0 && n < INPUT_PEER_MAX ? (uint16_t)n : 0;
    src->peer_name_len = 0;
}

void input_src_set_peer_name(struct input_src *src, const char *name, size_t len)
{
    if (len > INPUT_PEER_NAME_MAX)
        len = INPUT_PEER_NAME_MAX;
    memcpy(src->ext + src->peer_len, name, len);
    src->peer_name_len = (uint16_t)len;
}
