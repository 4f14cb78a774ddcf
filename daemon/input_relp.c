/*
 * input_relp: `type = "relp"`, a RELP server (librelp's doc/relp.md) on a
 * TCP address: `{ address = "127.0.0.1:2514"; type = "relp"; }`; the
 * socket, allow list and per-peer caps are input_net.c's, as for tcp.
 *
 * The connection path is conn.c's; RELP has frames of its own, so this
 * kind parses them (lib/relp.c) in conn_bytes and makes one record of each
 * "syslog" frame (conn_make_record(), conn_deliver()).  It answers "open"
 * with its offers at once, and "rsp 200 OK" for a syslog frame only once
 * the writer has written that record to every output it goes to (acks.h:
 * the writer's "written up to here" mark), so that a kill -9 of lograild
 * loses nothing it acknowledged: the sender resends what was not.
 *
 * Each connection has an acknowledgement slot (its records carry the slot
 * in record->ack) and an async handle of its own loop, which the writer
 * signals after a batch that held records of this connection while the
 * connection waits.  The frames not yet acknowledged wait in a FIFO of
 * (TXNR, records handed over up to and including this one); the writer's
 * count of written records says how many of them to answer, in order.
 *
 * Backpressure end to end: while the channel is full the record parks, the
 * connection stops reading and keeps the bytes it has not parsed, no
 * acknowledgement leaves, and the sender's window (omrelp: 128 frames)
 * fills: the sender waits.
 *
 * "close" is answered, after every earlier frame was, with "rsp 200 OK",
 * then the connection is closed.  At shutdown the client is told
 * "serverclose" (TXNR 0); what it sent and we did not acknowledge it sends
 * again to the next lograild.  A violation of the grammar (lib/relp.c), a
 * command other than open, syslog and close, a syslog frame before open,
 * or more than RELP_IN_WINDOW_MAX frames outstanding closes the
 * connection at once; counted as bad_frames and logged.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "acks.h"
#include "clock.h"
#include "input.h"
#include "relp.h"

#define RELP_IN_SOFTWARE "lograil"
#define RELP_IN_WINDOW_MAX 65536 /* frames outstanding on one connection */
#define RELP_IN_RSP_BATCH 64     /* acknowledgements written at a time */
#define RELP_IN_FLUSH 32         /* records batched before they are sent */

struct pend {
    uint32_t txnr;
    uint64_t upto; /* the connection's records handed over with this one */
};

struct relp_conn {
    struct conn *c; /* NULL once the connection is gone */
    struct relp_parser parser;
    uv_async_t wake;
    uint32_t slot;   /* acks.h; 0: none (the slot table was full) */
    bool opened;     /* "open" was answered */
    bool closing;    /* "close" came: answer it once the FIFO is empty */
    bool serverclose_sent;
    uint32_t close_txnr;
    uint64_t sent;   /* records handed over */
    unsigned unflushed; /* records in the loop's batch since the last flush */
    struct pend *fifo;
    size_t fifo_cap, fifo_head, fifo_len;
    char *held; /* bytes read but not parsed while paused */
    size_t held_len, held_cap;
};

static struct relp_conn *rc_of(struct conn *c)
{
    return c->kstate;
}

/* ---- the socket ---------------------------------------------------------- */

/* The socket, the allow list and the per-peer caps are a tcp listener's. */
static int relp_open(struct listener *lst, bool creds, bool *bound, char *err, size_t errlen)
{
    return input_tcp.open(lst, creds, bound, err, errlen);
}

static int relp_setup(struct listener *lst, bool creds, char *err, size_t errlen)
{
    return input_tcp.setup(lst, creds, err, errlen);
}

static void relp_teardown(struct listener *lst)
{
    input_tcp.teardown(lst);
}

static void wake_cb(uv_async_t *h);

static int relp_conn_open(struct conn *c, int fd)
{
    int r = input_net_conn_open(c, fd);
    if (r != 0)
        return r;
    struct relp_conn *rc = calloc(1, sizeof(*rc));
    if (rc == NULL)
        return UV_ENOMEM;
    uint32_t max = (uint32_t)c->lst->lc->max_message;
    if (max < RELP_DEFAULT_MAX_DATA)
        max = RELP_DEFAULT_MAX_DATA;
    relp_parser_init(&rc->parser, max);
    uv_async_init(&c->loop->loop, &rc->wake, wake_cb);
    rc->wake.data = rc;
    rc->c = c;
    c->kstate = rc;
    if (acks_open(&rc->wake, &rc->slot) != 0) {
        log_msg(LOG_WARNING, "listen %s: %d RELP connections wait for acknowledgements "
                             "already; closing one more", c->lst->lc->path, ACKS_MAX);
        rc->slot = 0;
        return UV_EAGAIN;
    }
    return 0;
}

/* ---- answering ----------------------------------------------------------- */

static void bad(struct conn *c, const char *what)
{
    c->loop->dl.tally.bad_frames++;
    log_msg(LOG_WARNING, "listen %s: RELP client: %s; closing the connection",
            c->lst->lc->path, what);
    conn_close(c);
}

static void rsp(struct conn *c, uint32_t txnr, int code, const char *text, const char *extra,
                size_t extralen)
{
    char buf[512];
    ssize_t n = relp_encode_rsp(buf, sizeof(buf), txnr, code, text, extra, extralen);
    if (n > 0)
        conn_write(c, buf, (size_t)n);
}

/* Answer every frame whose record is written; then a pending close. */
static void answer(struct relp_conn *rc)
{
    struct conn *c = rc->c;
    if (c == NULL || c->closing)
        return;
    if (rc->slot != 0 && rc->fifo_len > 0) {
        if (acks_failed(rc->slot)) {
            /* Lost for some output: never acknowledged; the sender sends
             * it again to whoever listens next. */
            bad(c, "a record could not be written; not acknowledging it");
            return;
        }
        uint64_t w = acks_written(rc->slot);
        char buf[RELP_IN_RSP_BATCH * 32];
        size_t len = 0;
        while (rc->fifo_len > 0 && rc->fifo[rc->fifo_head].upto <= w) {
            ssize_t n = relp_encode_rsp(buf + len, sizeof(buf) - len,
                                        rc->fifo[rc->fifo_head].txnr, 200, "OK", NULL, 0);
            if (n < 0) {
                conn_write(c, buf, len);
                len = 0;
                continue;
            }
            len += (size_t)n;
            rc->fifo_head = (rc->fifo_head + 1) % rc->fifo_cap;
            rc->fifo_len--;
        }
        if (len > 0)
            conn_write(c, buf, len);
        if (rc->fifo_len == 0)
            acks_wait(rc->slot, false);
    }
    if (rc->closing && rc->fifo_len == 0) {
        rsp(c, rc->close_txnr, 200, "OK", NULL, 0);
        conn_close(c);
    }
}

static void wake_cb(uv_async_t *h)
{
    answer(h->data);
}

static int fifo_push(struct relp_conn *rc, uint32_t txnr, uint64_t upto)
{
    if (rc->fifo_len == rc->fifo_cap) {
        size_t cap = rc->fifo_cap ? rc->fifo_cap * 2 : 128;
        if (cap > RELP_IN_WINDOW_MAX)
            return -ENOBUFS;
        struct pend *f = malloc(cap * sizeof(*f));
        if (f == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < rc->fifo_len; i++)
            f[i] = rc->fifo[(rc->fifo_head + i) % rc->fifo_cap];
        free(rc->fifo);
        rc->fifo = f;
        rc->fifo_cap = cap;
        rc->fifo_head = 0;
    }
    rc->fifo[(rc->fifo_head + rc->fifo_len) % rc->fifo_cap] = (struct pend){txnr, upto};
    rc->fifo_len++;
    return 0;
}

/* ---- frames ------------------------------------------------------------- */

static void flush(struct conn *c, struct relp_conn *rc)
{
    deliver_flush(&c->loop->dl, &c->park, false);
    rc->unflushed = 0;
}

static void on_open(struct conn *c, struct relp_conn *rc, const struct relp_frame *f)
{
    struct relp_open o;
    if (rc->opened || relp_open_parse(f->data, f->datalen, &o) != 0 || !o.syslog) {
        rsp(c, f->txnr, 500, "unsupported open offers", NULL, 0);
        bad(c, "bad open (offers or a second open)");
        return;
    }
    char ans[256];
    ssize_t n = relp_open_answer(ans, sizeof(ans), RELP_IN_SOFTWARE);
    /* The answer is "200 OK\n" and the offers: send the offers as the
     * extra data of an rsp 200. */
    const char *nl = n > 0 ? memchr(ans, '\n', (size_t)n) : NULL;
    if (nl == NULL) {
        bad(c, "cannot answer open");
        return;
    }
    rsp(c, f->txnr, 200, "OK", nl + 1, (size_t)(ans + n - (nl + 1)));
    rc->opened = true;
}

/* One syslog frame: a record, delivered; false when it parked. */
static bool on_syslog(struct conn *c, struct relp_conn *rc, const struct relp_frame *f)
{
    if (!rc->opened) {
        bad(c, "syslog before open");
        return true;
    }
    size_t len = f->datalen;
    const char *d = f->data != NULL ? f->data : "";
    /* A sender may end the message with LF (not part of it). */
    while (len > 0 && (d[len - 1] == '\n' || d[len - 1] == '\r'))
        len--;
    unsigned fflags = 0;
    if (len > (size_t)c->lst->lc->max_message) {
        len = (size_t)c->lst->lc->max_message;
        fflags |= FRAME_TRUNCATED;
    }
    c->loop->turn_stream++;
    struct record *r = conn_make_record(c, d, len, fflags);
    if (r == NULL) {
        rsp(c, f->txnr, 500, "out of memory", NULL, 0);
        return true;
    }
    r->ack = rc->slot;
    if (fifo_push(rc, f->txnr, rc->sent + 1) != 0) {
        record_free(r);
        bad(c, "too many frames outstanding");
        return true;
    }
    rc->sent++;
    /* Before the record can be written: the writer must know to wake us. */
    acks_wait(rc->slot, true);
    /* Never the "drop" policy: a dropped record would never be answered. */
    deliver_record(&c->loop->dl, &c->park, false, r);
    if (++rc->unflushed >= RELP_IN_FLUSH)
        flush(c, rc);
    return c->park.len == 0;
}

/* Parse and act on p[0..n); the bytes after a frame that parked a record
 * are kept in rc->held.  false: paused. */
static bool relp_feed(struct conn *c, const char *p, size_t n)
{
    struct relp_conn *rc = rc_of(c);
    while (n > 0 && !c->closing) {
        struct relp_frame f;
        size_t used = 0;
        int k = relp_parser_next(&rc->parser, p, n, &used, &f);
        p += used;
        n -= used;
        if (k < 0) {
            bad(c, k == -EMSGSIZE ? "frame larger than allowed" : "not RELP");
            return true;
        }
        if (k == 0) {
            flush(c, rc);
            if (c->park.len > 0)
                return false;
            break;
        }
        bool more = true;
        if (f.txnr == 0) {
            bad(c, "TXNR 0 from a client");
        } else if (strcmp(f.command, "syslog") == 0) {
            more = on_syslog(c, rc, &f);
        } else if (strcmp(f.command, "open") == 0) {
            on_open(c, rc, &f);
        } else if (strcmp(f.command, "close") == 0) {
            rc->closing = true;
            rc->close_txnr = f.txnr;
        } else {
            bad(c, "unknown command");
        }
        if (more && n == 0) {
            flush(c, rc);
            more = c->park.len == 0;
        }
        if (!more && n > 0) {
            /* Keep the rest unparsed until the record is sent. */
            if (rc->held_cap < n) {
                char *h = realloc(rc->held == NULL ? NULL : rc->held, n);
                if (h == NULL) {
                    bad(c, "out of memory");
                    return true;
                }
                rc->held = h;
                rc->held_cap = n;
            }
            memmove(rc->held, p, n);
            rc->held_len = n;
            return false;
        }
        if (!more)
            break;
    }
    flush(c, rc);
    answer(rc);
    return c->park.len == 0;
}

static bool relp_bytes(struct conn *c, const char *p, size_t n)
{
    return relp_feed(c, p, n);
}

/* After a pause, or at shutdown: parse what was kept; tell the client
 * serverclose when the daemon is stopping. */
static bool relp_resume(struct conn *c)
{
    struct relp_conn *rc = rc_of(c);
    bool ok = true;
    if (rc->held_len > 0) {
        /* relp_feed() may keep part of it again: work on a copy. */
        size_t n = rc->held_len;
        char *copy = malloc(n);
        if (copy == NULL)
            return false;
        memcpy(copy, rc->held, n);
        rc->held_len = 0;
        ok = relp_feed(c, copy, n);
        free(copy);
    }
    if (c->loop->dl.stopping && !rc->serverclose_sent && !c->closing) {
        char buf[32];
        ssize_t n = relp_encode(buf, sizeof(buf), 0, "serverclose", NULL, 0);
        if (n > 0)
            conn_write(c, buf, (size_t)n);
        rc->serverclose_sent = true;
    }
    return ok;
}

static void relp_tick(struct conn *c, uint64_t now_ms)
{
    (void)now_ms;
    /* A backstop for the writer's wake-up. */
    answer(rc_of(c));
}

static void free_rc(uv_handle_t *h)
{
    struct relp_conn *rc = h->data;
    relp_parser_free(&rc->parser);
    free(rc->fifo);
    free(rc->held);
    free(rc);
}

static void relp_conn_free(struct conn *c)
{
    struct relp_conn *rc = rc_of(c);
    if (rc == NULL)
        return;
    rc->c = NULL;
    if (rc->slot != 0)
        acks_close(rc->slot, rc->sent);
    c->kstate = NULL;
    uv_close((uv_handle_t *)&rc->wake, free_rc);
}

const struct input_kind input_relp = {
    .name = "relp",
    .shape = INPUT_CONNS,
    .open = relp_open,
    .setup = relp_setup,
    .teardown = relp_teardown,
    .admit = input_net_admit,
    .conn_open = relp_conn_open,
    .conn_bytes = relp_bytes,
    .conn_resume = relp_resume,
    .conn_tick = relp_tick,
    .conn_free = relp_conn_free,
};
