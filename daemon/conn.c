/*
 * conn: one stream connection, whatever its kind (input.h): read, frame,
 * parse, hand over, pause on a full channel, resume, drain at shutdown.
 *
 * Backpressure.  When the channel (or the queue's byte budget) has no room,
 * lib/deliver parks the record on its connection, which stops reading;
 * later records of the same slice of the read are parked behind it so
 * order is kept, and the bytes after that slice are held, unframed, until
 * the parked records are sent (conn_feed()).  The failed send armed the
 * sender's notify function, which wakes the loop once the writer frees
 * space; the loop then retries the parked records (conn_resume_paused()),
 * frames the held bytes and resumes reading.  The loop never blocks.
 *
 * Shutdown.  What "already delivered" means is fixed with shutdown(SHUT_RD):
 * from then on the kernel refuses the client's writes, so every byte it was
 * told we took is in the socket's queue, and reading to the end of that
 * queue takes all of them and then stops (conn_drain()).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "input.h"

#define FEED_SLICE 2048      /* bytes framed at a time; see conn_feed() */
#define DRAIN_READS_UNCUT 64 /* shutdown: reads when SHUT_RD failed */

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* The loop's counts to the listener, and to the peer's top-talker entry. */
static void conn_tally(struct conn *c)
{
    if (c->peer != NULL)
        peers_add(c->peer, c->loop->dl.tally.records, c->loop->dl.tally.bytes);
    input_tally_flush(c->loop, c->lst);
}

static void conn_on_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct iloop *l = c->loop;
    if (c->lst->kind->conn_free != NULL)
        c->lst->kind->conn_free(c);
    if (c->peer != NULL)
        peers_release(&c->lst->peers, c->peer);
    frame_free(&c->fr);
    deliver_park_free(&c->park);
    free(c->held);
    atomic_fetch_sub_explicit(&l->nconns, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&c->lst->nconns, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&c->lst->st->open, 1, memory_order_relaxed);
    free(c);
}

/* Off the loop's list of connections. */
static void conn_unlink(struct conn *c)
{
    struct iloop *l = c->loop;
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

void conn_close(struct conn *c)
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
    conn_unlink(c);
    uv_close(&c->h.handle, conn_on_closed);
}

struct record *conn_make_record(struct conn *c, const char *msg, size_t len, unsigned fflags)
{
    struct record *r = input_make_record(c->loop, c->lst, msg, len, fflags, &c->src);
    if (r != NULL && c->lst->kind->conn_record != NULL)
        c->lst->kind->conn_record(c, r);
    return r;
}

void conn_deliver(struct conn *c, struct record *r)
{
    deliver_record(&c->loop->dl, &c->park, c->lst->lc->policy == POLICY_DROP, r);
}

static void conn_flush(struct conn *c)
{
    deliver_flush(&c->loop->dl, &c->park, c->lst->lc->policy == POLICY_DROP);
}

static int conn_emit(void *ctx, const char *msg, size_t len, unsigned fflags)
{
    struct conn *c = ctx;
    c->loop->turn_stream++;
    struct record *r = conn_make_record(c, msg, len, fflags);
    if (r != NULL)
        conn_deliver(c, r);
    return 0;
}

void conn_pause(struct conn *c)
{
    if (c->paused)
        return;
    uv_read_stop(&c->h.stream);
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
 * 3.5 MiB per connection.  During shutdown nothing parks and all is framed. */
bool conn_feed(struct conn *c, const char *p, size_t n)
{
    while (n > 0) {
        size_t k = n < FEED_SLICE ? n : FEED_SLICE;
        frame_feed(&c->fr, p, k, conn_emit, c);
        conn_flush(c);
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
    return c->park.len == 0;
}

/* End of stream, or an error such as ECONNRESET: either way the client is
 * gone, and what it sent (a final line without newline included) is kept. */
static void conn_eof(struct conn *c)
{
    struct iloop *l = c->loop;
    l->now_us = clock_wall_us();
    frame_finish(&c->fr, conn_emit, c);
    conn_flush(c);
    conn_tally(c);
    uv_read_stop(&c->h.stream);
    c->eof = true;
    if (c->park.len > 0)
        conn_pause(c);
    else
        conn_close(c);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    struct iloop *l = c->loop;
    if (nread > 0) {
        l->now_us = clock_wall_us();
        l->turn_bytes += (size_t)nread;
        c->last_active = uv_now(&l->loop);
        const struct input_kind *k = c->lst->kind;
        if (k->conn_bytes != NULL)
            k->conn_bytes(c, buf->base, (size_t)nread);
        else
            conn_feed(c, buf->base, (size_t)nread);
        conn_tally(c);
        if (c->park.len > 0 && !c->closing)
            conn_pause(c);
        return;
    }
    if (nread == 0)
        return; /* EAGAIN */
    if (!c->closing)
        conn_eof(c);
}

void conn_new(struct iloop *l, int fd, struct listener *lst, struct peers_entry *peer)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        if (peer != NULL)
            peers_release(&lst->peers, peer);
        ingest_refusal_note(lst, REFUSE_NOMEM);
        atomic_fetch_sub_explicit(&lst->nconns, 1, memory_order_relaxed);
        return;
    }
    c->loop = l;
    c->lst = lst;
    c->peer = peer;
    frame_init(&c->fr, (size_t)lst->lc->max_message);
    atomic_fetch_add_explicit(&l->nconns, 1, memory_order_relaxed);
    counter_add(&lst->st->open, 1);
    counter_add(&lst->st->connections, 1);
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    c->last_active = uv_now(&l->loop);
    int rc = lst->kind->conn_open(c, fd);
    if (!c->h_inited) {
        /* Nothing of libuv's to close (conn_open closed fd): undo by hand. */
        conn_unlink(c);
        c->h.handle.data = c;
        conn_on_closed(&c->h.handle);
        return;
    }
    c->h.handle.data = c;
    if (rc == 0)
        rc = uv_read_start(&c->h.stream, alloc_cb, read_cb);
    if (rc != 0) {
        log_msg(LOG_ERR, "listen %s: cannot serve a connection: %s", lst->lc->path,
                uv_strerror(rc));
        conn_close(c);
    }
}

struct wreq {
    uv_write_t req;
    char data[];
};

static void write_cb(uv_write_t *req, int status)
{
    (void)status; /* a failed write shows as a failed read too */
    free(req);
}

int conn_write(struct conn *c, const void *p, size_t n)
{
    if (c->closing)
        return -EPIPE;
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int k = uv_try_write(&c->h.stream, &b, 1);
    if (k == (int)n)
        return 0;
    if (k < 0 && k != UV_EAGAIN)
        return k;
    size_t done = k > 0 ? (size_t)k : 0;
    struct wreq *w = malloc(sizeof(*w) + (n - done));
    if (w == NULL)
        return -ENOMEM;
    memcpy(w->data, (const char *)p + done, n - done);
    b = uv_buf_init(w->data, (unsigned)(n - done));
    int rc = uv_write(&w->req, &c->h.stream, &b, 1, write_cb);
    if (rc != 0)
        free(w);
    return rc;
}

/* Shutdown: read what the client already sent, then close.  After
 * shutdown(SHUT_RD) the queue can only shrink, so the reads end: at the end
 * of the queue read() returns 0.  Should shutdown() fail, a client writing
 * as fast as we read could keep us here, so the reads are then bounded. */
void conn_drain(struct conn *c)
{
    struct iloop *l = c->loop;
    const struct input_kind *k = c->lst->kind;
    deliver_park_flush(&l->dl, &c->park, true);
    if (c->held != NULL)
        conn_feed(c, c->held + c->held_off, c->held_len);
    if (k->conn_resume != NULL)
        k->conn_resume(c);
    uv_os_fd_t fd;
    if (!c->eof && uv_fileno(&c->h.handle, &fd) == 0) {
        bool cut = shutdown(fd, SHUT_RD) == 0;
        for (int reads = 0; cut || reads < DRAIN_READS_UNCUT; reads++) {
            ssize_t n = read(fd, l->rbuf, sizeof(l->rbuf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            l->now_us = clock_wall_us();
            if (k->conn_bytes != NULL)
                k->conn_bytes(c, l->rbuf, (size_t)n);
            else
                frame_feed(&c->fr, l->rbuf, (size_t)n, conn_emit, c);
            if (c->closing)
                break;
        }
        l->now_us = clock_wall_us();
        frame_finish(&c->fr, conn_emit, c);
    }
    conn_tally(c);
    conn_close(c);
}

void conn_resume_paused(struct iloop *l)
{
    struct conn **pp = &l->paused;
    while (*pp != NULL) {
        struct conn *c = *pp;
        bool done = deliver_park_flush(&l->dl, &c->park, false);
        if (done && c->held != NULL) {
            l->now_us = clock_wall_us();
            done = conn_feed(c, c->held + c->held_off, c->held_len) && c->park.len == 0;
        }
        if (done && c->lst->kind->conn_resume != NULL) {
            l->now_us = clock_wall_us();
            done = c->lst->kind->conn_resume(c) && c->park.len == 0;
        }
        conn_tally(c);
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
            uv_read_start(&c->h.stream, alloc_cb, read_cb);
    }
}

void conn_tick_all(struct iloop *l, uint64_t now)
{
    for (struct conn *c = l->conns, *next; c != NULL; c = next) {
        next = c->next;
        int64_t idle = c->lst->lc->idle_timeout_ms;
        if (idle > 0 && !c->paused && now - c->last_active >= (uint64_t)idle) {
            counter_add(&c->lst->st->idle_closed, 1);
            l->now_us = clock_wall_us();
            frame_finish(&c->fr, conn_emit, c);
            conn_flush(c);
            conn_tally(c);
            if (c->park.len > 0) {
                c->eof = true;
                conn_pause(c);
            } else {
                conn_close(c);
            }
            continue;
        }
        if (c->lst->kind->conn_tick != NULL)
            c->lst->kind->conn_tick(c, now);
    }
}
