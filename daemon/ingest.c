/*
 * ingest: libuv loops that turn client bytes into records.
 *
 * Loop 0 polls every stream listener and accepts; each new connection goes
 * to the loop with the fewest connections (handed over through a locked
 * list and the loop's uv_async_t).  Each datagram listener is polled by one
 * loop (listener i by loop i % threads).
 *
 * Backpressure.  Every loop owns one sender.  When chan_try_send() reports
 * FULL (or the queue's byte budget is spent: see over_budget()), the
 * record is parked on its connection (or datagram listener), which
 * stops reading; later records of the same slice of the read are parked
 * behind it so order is kept, and the bytes after that slice are held,
 * unframed, until the parked records are sent.  The failed try_send armed
 * the sender's notify function, which the writer calls once it frees space:
 * it wakes the loop through its uv_async_t, and the loop retries the parked
 * records, frames the held bytes and resumes reading.
 * The loop itself never blocks while running: it keeps accepting, serving
 * other connections, and answering the stop request.
 *
 * Shutdown.  The stop request wakes each loop through its async handle.  A
 * loop then accepts what is left in the listen backlog, reads what every
 * connection (and datagram socket) has already delivered, sends it with a
 * blocking chan_send() (the writer is still receiving), closes everything,
 * and its thread drops its sender.  What "already delivered" means is fixed
 * with shutdown(SHUT_RD): from then on the kernel refuses the client's
 * writes (EPIPE, or a short count for a write under way), so every byte it
 * was told we took is in the socket's queue, and reading to the end of that
 * queue takes all of them and then stops.  No deadline is needed, and none
 * could cut a client off in the middle of what it was promised.
 */
#include "ingest.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "activation.h"
#include "clock.h"
#include "frame.h"
#include "input_kmsg.h"
#include "listener.h"
#include "log.h"
#include "pacer.h"
#include "record.h"
#include "syslog_parse.h"

#define READ_SLICE (64 * 1024) /* bytes per read(); also bounds one turn */
#define FEED_SLICE 2048        /* bytes framed at a time; see conn_feed() */
#define DGRAM_BATCH 16         /* datagrams per recvmmsg() */
#define DGRAM_ROUNDS 8         /* recvmmsg() calls per poll callback */
#define ACCEPT_BATCH 64        /* accept() calls per poll callback */
#define DRAIN_READS_UNCUT 64   /* shutdown: reads when SHUT_RD failed */
#define NOFILE_SPARE 256       /* descriptors beyond connections: outputs, loops */
#define PACE_NS 50000          /* the pause after a short turn; see pace_cb() */
#define NOFILE_CAP (1 << 20)   /* the kernel's default fs.nr_open */
#define REFUSAL_LOG_MS 10000   /* refused connections: one message this often */

struct iloop;

/* Why a connection was closed at once; each has its own message. */
enum refusal {
    REFUSE_LIMIT, /* max_connections reached */
    REFUSE_NOFD,  /* accept(): out of descriptors (EMFILE, ENFILE) */
    REFUSE_NOMEM, /* no memory for the connection's state */
    REFUSE_KINDS
};

/* Records that could not be sent yet, oldest first. */
struct park {
    struct record **q;
    size_t head, len, cap;
};

/* Counts for one callback, added to the listener's stats at its end. */
struct tally {
    uint64_t records, bytes, parse_errors, truncated, bad_frames, dropped, lost;
};

struct listener {
    const struct listen_conf *lc;
    struct listener_stats *st;
    struct syslog_parse_opts popts;
    uint16_t idx;
    int fd;
    struct iloop *owner;
    uv_poll_t poll;
    bool poll_inited;
    bool bound; /* we created the socket file, and remove it at the end */
    _Atomic size_t nconns;
    /* Stream: connections closed at once (see refusal_note()), by reason;
     * any loop.  The rest: out of descriptors, owner loop only. */
    struct log_tally refusals[REFUSE_KINDS];
    int nofd_errno;          /* the last EMFILE or ENFILE */
    bool accept_paused;
    uint64_t nofd_logged_ms; /* last "not accepting" message */
    /* Datagram state. */
    struct park park;
    bool paused;
    uint64_t paused_since;
    char *dbuf;
    struct mmsghdr *msgs;
    struct iovec *iov;
    char *ctl; /* room for SCM_CREDENTIALS per datagram; NULL: not asked for */
    /* kmsg: its own reader thread (daemon/input_kmsg.h); no fd, no loop. */
    struct input_kmsg *kmsg;
};

struct conn {
    uv_pipe_t pipe;
    struct iloop *loop;
    struct listener *lst;
    struct frame fr;
    struct park park;
    char *held;         /* read but not yet framed, see conn_feed() */
    size_t held_off, held_len;
    pid_t pid;
    uid_t uid;
    gid_t gid;
    bool has_creds;
    bool paused;
    bool eof;
    bool closing;
    uint64_t paused_since;
    uint64_t last_active;
    struct conn *prev, *next;            /* all connections of the loop */
    struct conn *next_paused;            /* paused connections of the loop */
};

struct handoff {
    int fd;
    struct listener *lst;
};

/* Records of one connection (or datagram batch) not yet sent: they go
 * into the channel together with chan_try_send_many(), one claim and one
 * wake-up for many records. */
#define SEND_BATCH 128

struct iloop {
    struct ingest *in;
    int idx;
    struct record *batch[SEND_BATCH];
    size_t n_batch;
    struct record_pool pool; /* records are carved from it, freed by the writer */
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t tick;
    uv_prepare_t pace;
    size_t turn_stream; /* stream records made in this turn of the loop */
    size_t turn_bytes;  /* stream bytes read in this turn */
    bool turn_dgram;    /* a datagram was read in this turn */
    struct pacer pacer; /* see pace_cb() */
    pthread_t thread;
    bool started;
    chan_tx *tx;
    _Atomic size_t nconns;

    pthread_mutex_t mu; /* guards pending and closed */
    struct handoff *pending;
    size_t n_pending, cap_pending;
    bool closed;

    struct conn *conns;
    struct conn *paused;
    bool stopping;
    int64_t now_us;
    struct tally tally;
    char rbuf[READ_SLICE];
};

struct ingest {
    const struct config *cfg;
    struct stats *stats;
    struct budget *budget; /* bytes of records in the queue */
    struct listener *lst;
    size_t n_lst;
    struct iloop **loops;
    size_t n_loops;
    int reserve_fd; /* see refuse_one(); used by loop 0 only */
    _Atomic bool stop;
};

/* ---- small helpers ----------------------------------------------------- */

static void tally_flush(struct iloop *l, struct listener *lst)
{
    struct tally *t = &l->tally;
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

/* The queue's byte budget is spent: the caller holds its records back as
 * on a full channel.  The writer's credit that makes room again wakes
 * every loop (budget_wake_loops), and the loop retries its parked records.
 * While stopping, nothing waits: the writer is draining. */
static bool over_budget(struct iloop *l)
{
    return !l->stopping && budget_over(l->in->budget) && budget_wait(l->in->budget);
}

/* Called by the writer thread when the budget has room again. */
static void budget_wake_loops(void *arg)
{
    struct ingest *in = arg;
    for (size_t i = 0; i < in->n_loops; i++) {
        struct iloop *l = in->loops[i];
        pthread_mutex_lock(&l->mu);
        /* Under the lock: l cannot close its async handle until we let go. */
        if (!l->closed)
            uv_async_send(&l->wake);
        pthread_mutex_unlock(&l->mu);
    }
}

/* Send one record the channel's way (blocking or not), charging it to the
 * budget first: once sent it is the writer's, who may credit it at once. */
static int send_one(struct iloop *l, struct record *r, bool block)
{
    size_t bytes = record_footprint(r);
    budget_charge(l->in->budget, bytes);
    int rc = block ? chan_send(l->tx, &r) : chan_try_send(l->tx, &r);
    if (rc != CHAN_OK)
        budget_credit(l->in->budget, bytes);
    return rc;
}

static int park_push(struct park *p, struct record *r)
{
    if (p->len == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 16;
        struct record **nq = malloc(ncap * sizeof(*nq));
        if (nq == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < p->len; i++)
            nq[i] = p->q[(p->head + i) % p->cap];
        free(p->q);
        p->q = nq;
        p->cap = ncap;
        p->head = 0;
    }
    p->q[(p->head + p->len) % p->cap] = r;
    p->len++;
    return 0;
}

static void park_free(struct park *p)
{
    for (size_t i = 0; i < p->len; i++)
        record_free(p->q[(p->head + i) % p->cap]);
    free(p->q);
    memset(p, 0, sizeof(*p));
}

/* Send parked records in order.  true when none is left. */
static bool park_flush(struct iloop *l, struct park *p, bool block)
{
    while (p->len > 0) {
        struct record *r = p->q[p->head];
        if (!block && over_budget(l))
            return false;
        int rc = send_one(l, r, block);
        if (rc == CHAN_FULL)
            return false;
        if (rc == CHAN_OK)
            l->tally.records++;
        else {
            l->tally.lost++;
            record_free(r);
        }
        p->head = (p->head + 1) % p->cap;
        p->len--;
    }
    return true;
}

/* Send the batch (records of lst, for park p) as far as the channel takes
 * it; the rest is parked in order, or dropped by policy "drop". */
static void batch_flush(struct iloop *l, struct listener *lst, struct park *p)
{
    size_t n = l->n_batch, sent = 0;
    if (n == 0)
        return;
    l->n_batch = 0;
    int rc = CHAN_FULL;
    if (!over_budget(l)) {
        /* Charged before the send (the writer may credit at once), the
         * part the channel did not take credited back after. */
        size_t bytes = 0;
        for (size_t i = 0; i < n; i++)
            bytes += record_footprint(l->batch[i]);
        budget_charge(l->in->budget, bytes);
        rc = chan_try_send_many(l->tx, l->batch, n, &sent);
        if (sent < n) {
            size_t back = 0;
            for (size_t i = sent; i < n; i++)
                back += record_footprint(l->batch[i]);
            budget_credit(l->in->budget, back);
        }
    }
    l->tally.records += sent;
    for (size_t i = sent; i < n; i++) {
        struct record *r = l->batch[i];
        if (rc == CHAN_FULL && lst->lc->policy == POLICY_DROP) {
            l->tally.dropped++;
            record_free(r);
        } else if (rc != CHAN_FULL || park_push(p, r) != 0) {
            l->tally.lost++;
            record_free(r);
        }
    }
}

/* Hand one record to the writer, or park it.  Ownership of r moves.
 * Records wait in the loop's batch until batch_flush(), which the callers
 * run after each slice they frame. */
static void deliver(struct iloop *l, struct listener *lst, struct park *p, struct record *r)
{
    if (l->stopping) {
        /* Stopping: the writer still receives, so wait for room. */
        batch_flush(l, lst, p);
        if (p->len > 0)
            park_flush(l, p, true);
        int rc = send_one(l, r, lst->lc->policy == POLICY_BLOCK);
        if (rc == CHAN_OK) {
            l->tally.records++;
        } else {
            if (rc == CHAN_FULL)
                l->tally.dropped++;
            else
                l->tally.lost++;
            record_free(r);
        }
        return;
    }
    if (p->len > 0) {
        /* Behind records already parked: park too, to keep the order. */
        if (lst->lc->policy == POLICY_DROP) {
            l->tally.dropped++;
            record_free(r);
        } else if (park_push(p, r) != 0) {
            l->tally.lost++;
            record_free(r);
        }
        return;
    }
    l->batch[l->n_batch++] = r;
    if (l->n_batch == SEND_BATCH)
        batch_flush(l, lst, p);
}

/* Build, stamp and parse one record from a framed message. */
static struct record *make_record(struct iloop *l, struct listener *lst, const char *msg,
                                  size_t len, unsigned fflags, bool creds, pid_t pid, uid_t uid,
                                  gid_t gid)
{
    struct record *r = record_pool_new(&l->pool, msg, len);
    if (r == NULL) {
        l->tally.lost++;
        return NULL;
    }
    r->recv_us = l->now_us;
    r->listener = lst->idx;
    if (creds) {
        r->pid = pid;
        r->uid = uid;
        r->gid = gid;
        r->flags |= RECORD_F_HAS_CREDS;
    }
    if (fflags & FRAME_TRUNCATED) {
        r->flags |= RECORD_F_TRUNCATED;
        l->tally.truncated++;
    }
    if (fflags & (FRAME_BAD_COUNT | FRAME_INCOMPLETE))
        l->tally.bad_frames++;
    syslog_parse(r, &lst->popts);
    if (r->flags & RECORD_F_PARSE_ERROR)
        l->tally.parse_errors++;
    l->tally.bytes += len;
    return r;
}

/* ---- connections ------------------------------------------------------- */

static void conn_on_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct iloop *l = c->loop;
    frame_free(&c->fr);
    park_free(&c->park);
    free(c->held);
    atomic_fetch_sub_explicit(&l->nconns, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&c->lst->nconns, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&c->lst->st->open, 1, memory_order_relaxed);
    free(c);
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    struct iloop *l = c->loop;
    if (c->paused) {
        for (struct conn **p = &l->paused; *p; p = &(*p)->next_paused) {
            if (*p == c) {
                *p = c->next_paused;
                break;
            }
        }
        c->paused = false;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->pipe, conn_on_closed);
}

static int conn_emit(void *ctx, const char *msg, size_t len, unsigned fflags)
{
    struct conn *c = ctx;
    c->loop->turn_stream++;
    struct record *r = make_record(c->loop, c->lst, msg, len, fflags, c->has_creds, c->pid,
                                   c->uid, c->gid);
    if (r != NULL)
        deliver(c->loop, c->lst, &c->park, r);
    return 0;
}

static void conn_pause(struct conn *c)
{
    if (c->paused)
        return;
    uv_read_stop((uv_stream_t *)&c->pipe);
    c->paused = true;
    c->paused_since = uv_now(&c->loop->loop);
    c->next_paused = c->loop->paused;
    c->loop->paused = c;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct conn *c = h->data;
    /* One buffer per loop: a read is framed before the next one starts. */
    buf->base = c->loop->rbuf;
    buf->len = sizeof(c->loop->rbuf);
}

/* Frame p[0..n) a slice at a time, and stop after the first slice that
 * parked a record: the bytes after it are kept in c->held, unframed.  What
 * a paused connection holds is then one read of bytes and the records of
 * one slice, where framing the whole read at once would park the records
 * of all of it: 32768 of them for a 64 KiB read of two-byte lines, some
 * 3.5 MiB per connection.  During shutdown nothing parks and all is framed.
 * p may point into c->held.  Returns false when bytes are held. */
static bool conn_feed(struct conn *c, const char *p, size_t n)
{
    while (n > 0) {
        size_t k = n < FEED_SLICE ? n : FEED_SLICE;
        frame_feed(&c->fr, p, k, conn_emit, c);
        batch_flush(c->loop, c->lst, &c->park);
        p += k;
        n -= k;
        if (c->park.len == 0 || n == 0)
            continue;
        if (c->held == NULL) {
            c->held = malloc(n);
            if (c->held == NULL) {
                /* Framing on is all we can do: the records park. */
                continue;
            }
            memcpy(c->held, p, n);
            c->held_off = 0;
        } else {
            c->held_off = (size_t)(p - c->held);
        }
        c->held_len = n;
        return false;
    }
    if (c->held != NULL) {
        free(c->held);
        c->held = NULL;
        c->held_off = c->held_len = 0;
    }
    return true;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    struct iloop *l = c->loop;
    if (nread > 0) {
        l->now_us = clock_wall_us();
        l->turn_bytes += (size_t)nread;
        c->last_active = uv_now(&l->loop);
        conn_feed(c, buf->base, (size_t)nread);
        tally_flush(l, c->lst);
        if (c->park.len > 0)
            conn_pause(c);
        return;
    }
    if (nread == 0)
        return; /* EAGAIN */
    /* End of stream, or an error such as ECONNRESET: either way the client
     * is gone, and what it sent (a final line without newline included)
     * is kept. */
    l->now_us = clock_wall_us();
    frame_finish(&c->fr, conn_emit, c);
    batch_flush(l, c->lst, &c->park);
    tally_flush(l, c->lst);
    uv_read_stop(s);
    c->eof = true;
    if (c->park.len > 0)
        conn_pause(c);
    else {
        conn_close(c);
    }
}

/* ---- refusals ---------------------------------------------------------- */

/* Write the message for n connections of lst refused for reason k.  The
 * numbers in these messages add up to the listener's connections_refused
 * counter: each refusal is counted there and in one tally, and each tally
 * hands out every refusal exactly once (the last ones at ingest_stop). */
static void refusal_log(struct listener *lst, enum refusal k, uint64_t n)
{
    unsigned long long nn = (unsigned long long)n;
    const char *pl = n == 1 ? "" : "s";
    switch (k) {
    case REFUSE_LIMIT:
        log_msg(LOG_WARNING,
                "listen %s: %llu connection%s refused: max_connections (%lld) reached; "
                "raise max_connections if so many clients are expected",
                lst->lc->path, nn, pl, (long long)lst->lc->max_connections);
        break;
    case REFUSE_NOFD: {
        struct rlimit rl = {0, 0};
        getrlimit(RLIMIT_NOFILE, &rl);
        log_msg(LOG_ERR,
                "listen %s: %llu connection%s refused: accept: %s (open files limit %llu); "
                "raise LimitNOFILE or lower max_connections",
                lst->lc->path, nn, pl, strerror(lst->nofd_errno), (unsigned long long)rl.rlim_cur);
        break;
    }
    case REFUSE_NOMEM:
        log_msg(LOG_ERR, "listen %s: %llu connection%s refused: out of memory for a connection",
                lst->lc->path, nn, pl);
        break;
    case REFUSE_KINDS:
        break;
    }
}

/* A connection of lst was closed at once.  The first refusal is logged at
 * once; later ones are counted, and their number logged when REFUSAL_LOG_MS
 * has passed since the last message: by the next refusal, or by the owner
 * loop's tick (refusals_flush()) when no refusal follows.  Any loop. */
static void refusal_note(struct listener *lst, enum refusal k)
{
    counter_add(&lst->st->refused, 1);
    uint64_t n = log_tally_add(&lst->refusals[k], 1, clock_mono_ms());
    if (n > 0)
        refusal_log(lst, k, n);
}

/* Log what is counted and due; all of it when force (at the end). */
static void refusals_flush(struct listener *lst, bool force)
{
    uint64_t now = clock_mono_ms();
    for (int k = 0; k < REFUSE_KINDS; k++) {
        uint64_t n = log_tally_take(&lst->refusals[k], now, force);
        if (n > 0)
            refusal_log(lst, (enum refusal)k, n);
    }
}

static void conn_new(struct iloop *l, int fd, struct listener *lst)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        refusal_note(lst, REFUSE_NOMEM);
        atomic_fetch_sub_explicit(&lst->nconns, 1, memory_order_relaxed);
        return;
    }
    c->loop = l;
    c->lst = lst;
    frame_init(&c->fr, (size_t)lst->lc->max_message);
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    /* The kernel's record of who connected: read once per connection. */
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0 && clen == sizeof(cred)) {
        c->pid = cred.pid;
        c->uid = cred.uid;
        c->gid = cred.gid;
        c->has_creds = true;
    }
    uv_pipe_init(&l->loop, &c->pipe, 0);
    c->pipe.data = c;
    atomic_fetch_add_explicit(&l->nconns, 1, memory_order_relaxed);
    counter_add(&lst->st->open, 1);
    counter_add(&lst->st->connections, 1);
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    c->last_active = uv_now(&l->loop);
    int rc = uv_pipe_open(&c->pipe, fd);
    if (rc != 0)
        close(fd); /* not libuv's yet */
    else
        rc = uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
    if (rc != 0) {
        log_msg(LOG_ERR, "listen %s: cannot serve a connection: %s", lst->lc->path,
                uv_strerror(rc));
        conn_close(c);
    }
}

/* Shutdown: read what the client already sent, then close.  After
 * shutdown(SHUT_RD) the queue can only shrink, so the reads end: at the end
 * of the queue read() returns 0.  Should shutdown() fail, a client writing
 * as fast as we read could keep us here, so the reads are then bounded. */
static void conn_drain(struct conn *c)
{
    struct iloop *l = c->loop;
    park_flush(l, &c->park, true);
    if (c->held != NULL)
        conn_feed(c, c->held + c->held_off, c->held_len);
    uv_os_fd_t fd;
    if (!c->eof && uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0) {
        bool cut = shutdown(fd, SHUT_RD) == 0;
        for (int reads = 0; cut || reads < DRAIN_READS_UNCUT; reads++) {
            ssize_t n = read(fd, l->rbuf, sizeof(l->rbuf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            l->now_us = clock_wall_us();
            frame_feed(&c->fr, l->rbuf, (size_t)n, conn_emit, c);
        }
        l->now_us = clock_wall_us();
        frame_finish(&c->fr, conn_emit, c);
    }
    tally_flush(l, c->lst);
    conn_close(c);
}

/* ---- accepting --------------------------------------------------------- */

static struct iloop *least_loaded(struct ingest *in)
{
    struct iloop *best = in->loops[0];
    size_t best_n = atomic_load_explicit(&best->nconns, memory_order_relaxed);
    for (size_t i = 1; i < in->n_loops; i++) {
        size_t n = atomic_load_explicit(&in->loops[i]->nconns, memory_order_relaxed);
        if (n < best_n) {
            best = in->loops[i];
            best_n = n;
        }
    }
    return best;
}

/* Give fd to loop t.  false when t has already shut down. */
static bool handoff(struct iloop *t, int fd, struct listener *lst)
{
    pthread_mutex_lock(&t->mu);
    if (t->closed) {
        pthread_mutex_unlock(&t->mu);
        return false;
    }
    if (t->n_pending == t->cap_pending) {
        size_t ncap = t->cap_pending ? t->cap_pending * 2 : 16;
        struct handoff *np = realloc(t->pending, ncap * sizeof(*np));
        if (np == NULL) {
            pthread_mutex_unlock(&t->mu);
            return false;
        }
        t->pending = np;
        t->cap_pending = ncap;
    }
    t->pending[t->n_pending++] = (struct handoff){fd, lst};
    /* Counted now, so that the next choice of loop sees it. */
    atomic_fetch_add_explicit(&t->nconns, 1, memory_order_relaxed);
    /* Under the lock: t cannot close its async handle until we let go. */
    uv_async_send(&t->wake);
    pthread_mutex_unlock(&t->mu);
    return true;
}

static int reserve_open(void)
{
    return socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
}

/* accept() failed with EMFILE or ENFILE.  The connection stays in the
 * backlog and the listener stays readable, so simply returning would bring
 * us straight back here: a busy loop, and a log line each time.  Like libuv
 * and nginx we hold one descriptor in reserve; it is given up to accept the
 * connection, which is closed at once (the client sees EOF, as it would
 * beyond max_connections), and taken back.  Without a reserve the listener
 * stops polling until the next tick.  true when a connection was refused,
 * so that the caller may go on accepting. */
static bool refuse_one(struct iloop *l, struct listener *lst, int err)
{
    struct ingest *in = l->in;
    bool refused = false;
    if (in->reserve_fd >= 0) {
        close(in->reserve_fd);
        int fd = accept4(lst->fd, NULL, NULL, SOCK_CLOEXEC);
        bool gone = fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
        lst->nofd_errno = err;
        if (fd >= 0) {
            close(fd);
            refusal_note(lst, REFUSE_NOFD);
            refused = true;
        }
        in->reserve_fd = reserve_open();
        if (gone)
            return false; /* the client gave up: nothing waits */
    }
    if (refused)
        return true;
    /* Nothing refused: the connection waits in the backlog while the
     * listener pauses, which is worth a message too, at the same pace. */
    uint64_t now = clock_mono_ms();
    if (lst->nofd_logged_ms == 0 || now - lst->nofd_logged_ms >= REFUSAL_LOG_MS) {
        struct rlimit rl = {0, 0};
        getrlimit(RLIMIT_NOFILE, &rl);
        log_msg(LOG_ERR,
                "listen %s: accept: %s (open files limit %llu), no descriptor in reserve: "
                "not accepting for a second; raise LimitNOFILE or lower max_connections",
                lst->lc->path, strerror(err), (unsigned long long)rl.rlim_cur);
        lst->nofd_logged_ms = now;
    }
    if (!l->stopping && !lst->accept_paused) {
        uv_poll_stop(&lst->poll);
        lst->accept_paused = true;
    }
    return refused;
}

/* Accept up to `max` connections; during shutdown, everything left. */
static void accept_some(struct iloop *l, struct listener *lst, int max)
{
    for (int i = 0; i < max; i++) {
        int fd = accept4(lst->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                if (refuse_one(l, lst, errno))
                    continue;
                return;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_msg(LOG_WARNING, "listen %s: accept: %s", lst->lc->path, strerror(errno));
            return;
        }
        size_t limit = (size_t)lst->lc->max_connections;
        if (limit > 0 && atomic_load_explicit(&lst->nconns, memory_order_relaxed) >= limit) {
            close(fd);
            refusal_note(lst, REFUSE_LIMIT);
            continue;
        }
        atomic_fetch_add_explicit(&lst->nconns, 1, memory_order_relaxed);
        struct iloop *t = l->stopping ? l : least_loaded(l->in);
        if (t != l && handoff(t, fd, lst))
            continue;
        conn_new(l, fd, lst);
    }
}

static void accept_cb(uv_poll_t *h, int status, int events)
{
    (void)events;
    struct listener *lst = h->data;
    if (status < 0) {
        log_msg(LOG_ERR, "listen %s: poll: %s", lst->lc->path, uv_strerror(status));
        return;
    }
    accept_some(lst->owner, lst, ACCEPT_BATCH);
}

/* ---- datagrams --------------------------------------------------------- */

/* creds: the socket asks for the senders' credentials (listener_open).
 * Without them there is no control buffer at all, so that descriptors a
 * client passes (SCM_RIGHTS) are closed by the kernel, never put in our
 * table; with them, the buffer holds the credentials and nothing more. */
static int dgram_setup(struct listener *lst, bool creds)
{
    size_t slot = (size_t)lst->lc->max_message + 1;
    size_t ctl = CMSG_SPACE(sizeof(struct ucred));
    lst->dbuf = malloc(slot * DGRAM_BATCH);
    lst->msgs = calloc(DGRAM_BATCH, sizeof(*lst->msgs));
    lst->iov = calloc(DGRAM_BATCH, sizeof(*lst->iov));
    lst->ctl = creds ? calloc(DGRAM_BATCH, ctl) : NULL;
    if (!lst->dbuf || !lst->msgs || !lst->iov || (creds && !lst->ctl))
        return -ENOMEM;
    for (size_t i = 0; i < DGRAM_BATCH; i++) {
        lst->iov[i].iov_base = lst->dbuf + i * slot;
        lst->iov[i].iov_len = slot;
        lst->msgs[i].msg_hdr.msg_iov = &lst->iov[i];
        lst->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    return 0;
}

/* logger --octet-count frames its datagrams as it frames a stream:
 * "39 <13>Nov 26 ...".  A datagram is already one message, so the count
 * says nothing new; it is removed only when it is well formed (no leading
 * zero, at most 10 digits, then SP) and counts exactly the rest of the
 * datagram, so that a message which merely starts with a number is kept as
 * it was sent. */
static void dgram_strip_count(const char **p, size_t *len)
{
    const char *s = *p;
    size_t n = *len, i = 0;
    uint64_t count = 0;
    if (n == 0 || s[0] < '1' || s[0] > '9')
        return;
    while (i < n && i < 10 && s[i] >= '0' && s[i] <= '9')
        count = count * 10 + (uint64_t)(s[i++] - '0');
    if (i >= n || s[i] != ' ' || count != n - i - 1)
        return;
    *p = s + i + 1;
    *len = n - i - 1;
}

static void dgram_pause(struct listener *lst)
{
    if (lst->paused)
        return;
    uv_poll_stop(&lst->poll);
    lst->paused = true;
    lst->paused_since = uv_now(&lst->owner->loop);
}

/* Receive up to `rounds` batches.  Returns false when the socket is empty. */
static bool dgram_read(struct listener *lst, int rounds)
{
    struct iloop *l = lst->owner;
    size_t slot = (size_t)lst->lc->max_message + 1;
    size_t ctl = CMSG_SPACE(sizeof(struct ucred));
    for (int round = 0; round < rounds; round++) {
        for (size_t i = 0; i < DGRAM_BATCH; i++) {
            lst->msgs[i].msg_hdr.msg_control = lst->ctl ? lst->ctl + i * ctl : NULL;
            lst->msgs[i].msg_hdr.msg_controllen = lst->ctl ? ctl : 0;
            lst->msgs[i].msg_hdr.msg_flags = 0;
        }
        int n = recvmmsg(lst->fd, lst->msgs, DGRAM_BATCH, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_msg(LOG_WARNING, "listen %s: recvmmsg: %s", lst->lc->path, strerror(errno));
            return false;
        }
        l->now_us = clock_wall_us();
        if (n > 0)
            l->turn_dgram = true;
        for (int i = 0; i < n; i++) {
            struct msghdr *mh = &lst->msgs[i].msg_hdr;
            const char *p = lst->dbuf + (size_t)i * slot;
            size_t len = lst->msgs[i].msg_len;
            unsigned fflags = 0;
            if ((mh->msg_flags & MSG_TRUNC) || len > (size_t)lst->lc->max_message) {
                if (len > (size_t)lst->lc->max_message)
                    len = (size_t)lst->lc->max_message;
                fflags |= FRAME_TRUNCATED;
            } else {
                dgram_strip_count(&p, &len);
                fflags |= frame_datagram(p, &len, (size_t)lst->lc->max_message);
            }
            if (len == 0)
                continue;
            bool has = false;
            struct ucred cr = {0, 0, 0};
            for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS &&
                    cm->cmsg_len >= CMSG_LEN(sizeof(cr))) {
                    memcpy(&cr, CMSG_DATA(cm), sizeof(cr));
                    has = true;
                }
            }
            struct record *r = make_record(l, lst, p, len, fflags, has, cr.pid, cr.uid, cr.gid);
            if (r != NULL)
                deliver(l, lst, &lst->park, r);
        }
        batch_flush(l, lst, &lst->park);
        tally_flush(l, lst);
        if (lst->park.len > 0) {
            dgram_pause(lst);
            return true;
        }
        if (n < DGRAM_BATCH)
            return false;
    }
    return true;
}

static void dgram_cb(uv_poll_t *h, int status, int events)
{
    (void)events;
    struct listener *lst = h->data;
    if (status < 0) {
        log_msg(LOG_ERR, "listen %s: poll: %s", lst->lc->path, uv_strerror(status));
        return;
    }
    dgram_read(lst, DGRAM_ROUNDS);
}

/* ---- the loop ---------------------------------------------------------- */

static void resume_paused(struct iloop *l)
{
    struct conn **pp = &l->paused;
    while (*pp != NULL) {
        struct conn *c = *pp;
        bool done = park_flush(l, &c->park, false);
        if (done && c->held != NULL) {
            l->now_us = clock_wall_us();
            done = conn_feed(c, c->held + c->held_off, c->held_len) && c->park.len == 0;
        }
        tally_flush(l, c->lst);
        if (!done) {
            pp = &c->next_paused;
            continue;
        }
        *pp = c->next_paused;
        c->paused = false;
        /* Held back by us is not silent: the idle clock starts again, or a
         * pause longer than idle_timeout would close the connection before
         * its next read, with what the client wrote meanwhile unread. */
        c->last_active = uv_now(&l->loop);
        counter_add(&c->lst->st->paused_us, (uv_now(&l->loop) - c->paused_since) * 1000);
        if (c->eof)
            conn_close(c);
        else
            uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb);
    }
    struct ingest *in = l->in;
    for (size_t i = 0; i < in->n_lst; i++) {
        struct listener *lst = &in->lst[i];
        if (lst->owner != l || !lst->paused)
            continue;
        bool done = park_flush(l, &lst->park, false);
        tally_flush(l, lst);
        if (!done)
            continue;
        lst->paused = false;
        counter_add(&lst->st->paused_us, (uv_now(&l->loop) - lst->paused_since) * 1000);
        uv_poll_start(&lst->poll, UV_READABLE, dgram_cb);
    }
}

static void take_pending(struct iloop *l, bool close_too)
{
    pthread_mutex_lock(&l->mu);
    struct handoff *p = l->pending;
    size_t n = l->n_pending;
    l->pending = NULL;
    l->n_pending = l->cap_pending = 0;
    if (close_too)
        l->closed = true;
    pthread_mutex_unlock(&l->mu);
    for (size_t i = 0; i < n; i++) {
        /* handoff() counted it already; conn_new() counts again. */
        atomic_fetch_sub_explicit(&l->nconns, 1, memory_order_relaxed);
        conn_new(l, p[i].fd, p[i].lst);
    }
    free(p);
}

static void shutdown_loop(struct iloop *l)
{
    struct ingest *in = l->in;
    l->stopping = true;
    /* Listeners first: take what waits in the backlog, then close, so that
     * later clients are refused instead of queued and forgotten. */
    for (size_t i = 0; i < in->n_lst; i++) {
        struct listener *lst = &in->lst[i];
        if (lst->owner != l)
            continue;
        if (lst->lc->type == LISTEN_STREAM) {
            accept_some(l, lst, 1 << 30);
        } else {
            /* Senders now get EPIPE; the datagrams already queued (a few:
             * the kernel bounds the queue by net.unix.max_dgram_qlen) are
             * read until the socket is empty.  Not a socket systemd passed:
             * it outlives us, and what is queued there starts the next
             * lograild; shut down, it would wake systemd for ever. */
            bool cut = !activation_adopted(lst->lc->path) && shutdown(lst->fd, SHUT_RD) == 0;
            park_flush(l, &lst->park, true);
            while (dgram_read(lst, DGRAM_ROUNDS) && cut)
                park_flush(l, &lst->park, true);
            park_flush(l, &lst->park, true);
            tally_flush(l, lst);
        }
        if (lst->poll_inited)
            uv_close((uv_handle_t *)&lst->poll, NULL);
        close(lst->fd);
        lst->fd = -1;
    }
    take_pending(l, true);
    while (l->conns != NULL)
        conn_drain(l->conns);
    /* No more sends from this loop: no more wake-ups either. */
    chan_sender_set_notify(l->tx, NULL, NULL);
    uv_close((uv_handle_t *)&l->wake, NULL);
    uv_close((uv_handle_t *)&l->tick, NULL);
    uv_close((uv_handle_t *)&l->pace, NULL);
}

static void wake_cb(uv_async_t *h)
{
    struct iloop *l = h->data;
    if (l->stopping)
        return;
    take_pending(l, false);
    if (atomic_load_explicit(&l->in->stop, memory_order_acquire)) {
        shutdown_loop(l);
        return;
    }
    resume_paused(l);
}

static void tick_cb(uv_timer_t *h)
{
    struct iloop *l = h->data;
    uint64_t now = uv_now(&l->loop);
    /* The loop turns: feed the watchdog's view of it (daemon/main.c). */
    if (l->idx < STATS_MAX_LOOPS)
        counter_add(&l->in->stats->loop_beats[l->idx], 1);
    for (struct conn *c = l->conns, *next; c != NULL; c = next) {
        next = c->next;
        int64_t idle = c->lst->lc->idle_timeout_ms;
        if (idle > 0 && !c->paused && now - c->last_active >= (uint64_t)idle) {
            counter_add(&c->lst->st->idle_closed, 1);
            l->now_us = clock_wall_us();
            frame_finish(&c->fr, conn_emit, c);
            batch_flush(l, c->lst, &c->park);
            tally_flush(l, c->lst);
            if (c->park.len > 0) {
                c->eof = true;
                conn_pause(c);
            } else {
                conn_close(c);
            }
        }
    }
    /* A backstop for wake-ups: costs one try_send per second when paused. */
    if (l->paused != NULL)
        resume_paused(l);
    /* Listeners that ran out of descriptors try again once a second. */
    struct ingest *in = l->in;
    for (size_t i = 0; i < in->n_lst; i++) {
        struct listener *lst = &in->lst[i];
        if (lst->owner == l && lst->lc->type == LISTEN_STREAM)
            refusals_flush(lst, false);
        if (lst->owner == l && lst->accept_paused) {
            lst->accept_paused = false;
            if (in->reserve_fd < 0)
                in->reserve_fd = reserve_open();
            uv_poll_start(&lst->poll, UV_READABLE, accept_cb);
        }
    }
}

static void notify_cb(void *arg)
{
    struct iloop *l = arg;
    uv_async_send(&l->wake);
}

/* Runs before each poll for I/O.  A turn that made only a few stream
 * records (lib/pacer: fewer than PACER_BELOW, though they came at least
 * one per PACE_NS) means the clients write small pieces often: polling
 * again at once would put the thread to sleep in epoll_wait and wake it for
 * every few lines, most of the daemon's time going into switching.  The
 * pacer's short pause lets the lines gather, so that the next turn reads
 * more of them per wake-up and system call.  Not after a turn that read half
 * a read buffer or more (the data is not small pieces), nor after one that
 * read datagrams: a datagram socket queues only net.unix.max_dgram_qlen of
 * them (10 by default) before its senders block, so it is read when it can
 * be; nor while stopping. */
static void pace_cb(uv_prepare_t *h)
{
    struct iloop *l = h->data;
    size_t n = l->turn_stream, bytes = l->turn_bytes;
    bool may = bytes < READ_SLICE / 2 && !l->turn_dgram && !l->stopping;
    l->turn_stream = l->turn_bytes = 0;
    l->turn_dgram = false;
    pacer_turn(&l->pacer, n, may);
}

static void *loop_main(void *arg)
{
    struct iloop *l = arg;
    pacer_thread_init();
    uv_run(&l->loop, UV_RUN_DEFAULT);
    record_pool_release(&l->pool);
    chan_sender_drop(l->tx);
    l->tx = NULL;
    return NULL;
}

/* ---- life -------------------------------------------------------------- */

/* Every stream connection holds a descriptor.  Service managers start us
 * with a low soft limit on them (systemd: 1024) and a high hard one, and
 * expect a program that needs more to raise its own soft limit; the
 * listeners' max_connections say how many we need. */
static void raise_nofile(const struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = NOFILE_SPARE;
    for (size_t i = 0; i < cfg->n_listen; i++) {
        const struct listen_conf *lc = &cfg->listen[i];
        if (lc->type != LISTEN_STREAM)
            continue;
        if (lc->max_connections == 0 || lc->max_connections > NOFILE_CAP)
            want = NOFILE_CAP;
        else if (want < NOFILE_CAP)
            want += (rlim_t)lc->max_connections;
    }
    if (want > NOFILE_CAP)
        want = NOFILE_CAP;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
        return;
    struct rlimit nrl = rl;
    nrl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
    if (nrl.rlim_cur > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &nrl) == 0)
        rl = nrl;
    if (rl.rlim_cur < want)
        log_msg(LOG_WARNING,
                "open files limit is %llu (hard limit %llu), below the %llu that the listeners' "
                "max_connections need; connections beyond it will be refused",
                (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
                (unsigned long long)want);
}

struct ingest *ingest_open(const struct config *cfg, struct stats *stats, struct budget *budget,
                           char *err, size_t errlen)
{
    struct ingest *in = calloc(1, sizeof(*in));
    if (in == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    in->cfg = cfg;
    in->stats = stats;
    in->budget = budget;
    in->reserve_fd = -1;
    in->n_lst = cfg->n_listen;
    in->lst = calloc(in->n_lst, sizeof(*in->lst));
    if (in->lst == NULL) {
        snprintf(err, errlen, "out of memory");
        free(in);
        return NULL;
    }
    for (size_t i = 0; i < in->n_lst; i++) {
        in->lst[i].fd = -1;
        for (int k = 0; k < REFUSE_KINDS; k++)
            log_tally_init(&in->lst[i].refusals[k], REFUSAL_LOG_MS);
    }
    bool creds = config_wants_creds(cfg);
    for (size_t i = 0; i < in->n_lst; i++) {
        struct listener *lst = &in->lst[i];
        lst->lc = &cfg->listen[i];
        lst->st = &stats->listen[i];
        lst->idx = (uint16_t)i;
        lst->popts.default_facility = (uint8_t)lst->lc->facility;
        lst->popts.default_severity = (uint8_t)lst->lc->severity;
        if (lst->lc->type == LISTEN_KMSG) {
            lst->kmsg = input_kmsg_open(lst->lc, lst->idx, cfg->state_dir, lst->st, budget, err,
                                        errlen);
            if (lst->kmsg == NULL)
                goto fail;
            continue;
        }
        lst->fd = listener_open(lst->lc, creds, err, errlen);
        if (lst->fd < 0)
            goto fail;
        lst->bound = true;
        if (lst->lc->type == LISTEN_DGRAM && dgram_setup(lst, creds) != 0) {
            snprintf(err, errlen, "listen %s: out of memory", lst->lc->path);
            goto fail;
        }
    }
    raise_nofile(cfg);
    in->reserve_fd = reserve_open();
    return in;
fail:
    ingest_free(in);
    return NULL;
}

int ingest_start(struct ingest *in, chan_tx *tx)
{
    size_t n = (size_t)in->cfg->threads;
    in->loops = calloc(n, sizeof(*in->loops));
    if (in->loops == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct iloop *l = calloc(1, sizeof(*l));
        if (l == NULL)
            return -ENOMEM;
        in->loops[i] = l;
        in->n_loops = i + 1;
        l->in = in;
        l->idx = (int)i;
        record_pool_init(&l->pool, 0);
        pthread_mutex_init(&l->mu, NULL);
        int rc = uv_loop_init(&l->loop);
        if (rc != 0)
            return rc;
        uv_async_init(&l->loop, &l->wake, wake_cb);
        l->wake.data = l;
        uv_timer_init(&l->loop, &l->tick);
        l->tick.data = l;
        uv_timer_start(&l->tick, tick_cb, 1000, 1000);
        uv_prepare_init(&l->loop, &l->pace);
        l->pace.data = l;
        uv_prepare_start(&l->pace, pace_cb);
        pacer_init(&l->pacer, PACE_NS, PACER_BELOW);
        l->tx = chan_sender_clone(tx);
        if (l->tx == NULL)
            return -ENOMEM;
        chan_sender_set_notify(l->tx, notify_cb, l);
    }
    /* Before any record is sent: the writer reads it after receiving. */
    budget_set_wake(in->budget, budget_wake_loops, in);
    size_t next_dgram = 0;
    for (size_t i = 0; i < in->n_lst; i++) {
        struct listener *lst = &in->lst[i];
        if (lst->kmsg != NULL) {
            int rc = input_kmsg_start(lst->kmsg, tx);
            if (rc != 0)
                return rc;
            continue;
        }
        bool stream = lst->lc->type == LISTEN_STREAM;
        lst->owner = stream ? in->loops[0] : in->loops[next_dgram++ % n];
        int rc = uv_poll_init(&lst->owner->loop, &lst->poll, lst->fd);
        if (rc != 0)
            return rc;
        lst->poll_inited = true;
        lst->poll.data = lst;
        rc = uv_poll_start(&lst->poll, UV_READABLE, stream ? accept_cb : dgram_cb);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = pthread_create(&in->loops[i]->thread, NULL, loop_main, in->loops[i]);
        if (rc != 0)
            return -rc;
        in->loops[i]->started = true;
    }
    return 0;
}

void ingest_stop(struct ingest *in)
{
    if (in == NULL || in->loops == NULL)
        return;
    atomic_store_explicit(&in->stop, true, memory_order_release);
    /* Loop 0 goes first: it owns the stream listeners, and a connection it
     * hands over is then either taken by its target or drained by itself. */
    for (size_t i = 0; i < in->n_loops; i++)
        if (in->loops[i]->started)
            uv_async_send(&in->loops[i]->wake);
    for (size_t i = 0; i < in->n_loops; i++) {
        if (in->loops[i]->started) {
            pthread_join(in->loops[i]->thread, NULL);
            in->loops[i]->started = false;
        }
    }
    /* The loops are gone: what they refused since their last message is
     * logged now, so that the messages add up to the counters. */
    for (size_t i = 0; i < in->n_lst; i++)
        refusals_flush(&in->lst[i], true);
    for (size_t i = 0; i < in->n_lst; i++)
        input_kmsg_stop(in->lst[i].kmsg);
}

void ingest_free(struct ingest *in)
{
    if (in == NULL)
        return;
    ingest_stop(in);
    for (size_t i = 0; i < in->n_loops; i++) {
        struct iloop *l = in->loops[i];
        if (l->tx != NULL) {
            /* Never started: its handles were never run to closing. */
            chan_sender_drop(l->tx);
            uv_close((uv_handle_t *)&l->wake, NULL);
            uv_close((uv_handle_t *)&l->tick, NULL);
            uv_close((uv_handle_t *)&l->pace, NULL);
            for (size_t j = 0; j < in->n_lst; j++)
                if (in->lst[j].owner == l && in->lst[j].poll_inited)
                    uv_close((uv_handle_t *)&in->lst[j].poll, NULL);
            uv_run(&l->loop, UV_RUN_DEFAULT);
        }
        uv_loop_close(&l->loop);
        pthread_mutex_destroy(&l->mu);
        for (size_t k = 0; k < l->n_pending; k++)
            close(l->pending[k].fd);
        free(l->pending);
        free(l);
    }
    free(in->loops);
    for (size_t i = 0; i < in->n_lst; i++) {
        struct listener *lst = &in->lst[i];
        if (lst->fd >= 0)
            close(lst->fd);
        /* A socket systemd passed keeps its file: the socket unit owns it. */
        if (lst->bound && !activation_adopted(lst->lc->path))
            unlink(lst->lc->path);
        input_kmsg_free(lst->kmsg);
        park_free(&lst->park);
        for (int k = 0; k < REFUSE_KINDS; k++)
            log_tally_destroy(&lst->refusals[k]);
        free(lst->dbuf);
        free(lst->msgs);
        free(lst->iov);
        free(lst->ctl);
    }
    free(in->lst);
    if (in->reserve_fd >= 0)
        close(in->reserve_fd);
    free(in);
}
