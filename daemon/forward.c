/*
 * forward: connect, send from the spool, move the cursor on
 * acknowledgements.  See forward.h for what each protocol promises.
 *
 * One loop, one connection at a time, every handle with libuv's life
 * (init, start, stop, close; freed in the close callback).  The connection
 * goes through resolve -> connect (each address in turn) -> connected ->
 * closed -> back-off -> resolve ...; on_closed() is the one place that
 * decides what comes next, because only there are all the write
 * callbacks of the old connection known to have run.
 *
 * Bytes in flight are kept in chunks until acknowledged: for tcp a chunk
 * is a run of spool frames, sent as they lie in the spool; the chunk
 * records which connection bytes it occupies, so that "the kernel says
 * the peer has the first N bytes" becomes "the cursor may move to the
 * last frame boundary within them".  For relp a chunk is only a write
 * buffer; the relp window keeps the spool positions.
 */
#include "forward.h"

#include <assert.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "clock.h"
#include "log.h"
#include "relp.h"
#include "tls.h"

#define CHUNK_MAX (64 * 1024)        /* spool bytes read at once */
#define INFLIGHT_MAX (4u << 20)      /* bytes sent and not yet acknowledged */
#define POLL_MS 20                   /* acknowledgement poll while connected */
#define SAVE_MS 200                  /* the cursor file is written at most this often */
#define CONNECT_TIMEOUT_MS 10000
#define BACKOFF_MIN_MS 200
#define RELP_WINDOW 1024             /* RELP frames outstanding */

struct chunk {
    struct chunk *next;
    struct forward *f;
    uv_write_t req;
    struct buf b;
    uint64_t start;    /* tcp: spool position of b's first byte */
    uint64_t wire_end; /* tcp: connection bytes up to b's end */
    size_t ack_off;    /* tcp: bytes of b acknowledged (a frame boundary) */
    size_t spool_len;  /* tls: spool bytes whose ciphertext b is (0: handshake) */
    size_t nrec;       /* tls: the records in them */
    bool done;         /* the write callback ran */
};

enum after_close { NEXT_ADDRESS, BACK_OFF, FINISH };

struct forward {
    const struct output_conf *oc;
    struct spool *sp;
    struct forward_stats *st;
    bool relp;
    bool tls;
    struct tls_ctx *tls_ctx; /* built at open, on the main thread */
    struct tls_conn *tc;     /* this connection's TLS; NULL when none */
    pthread_t thread;
    bool started;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t retry; /* back-off and connect timeout */
    uv_timer_t poll;  /* acknowledgements, cursor saves, missed wake-ups */
    uv_getaddrinfo_t gai;
    bool resolving;
    struct addrinfo *ai_list, *ai_next;
    char peer[128];   /* the address being tried, for messages */
    uv_tcp_t *tcp;    /* NULL when there is none; freed in on_closed */
    uv_connect_t creq;
    bool connected;   /* TCP is up */
    bool ready;       /* records may go (tcp: connected; relp: open answered) */
    enum after_close after;
    uint64_t backoff_ms;
    bool lost_one;    /* a connection was lost or failed: the next is a reconnect */
    int logged_err;   /* last failure logged, so that a retry loop logs once */
    unsigned seed;
    /* tcp */
    uint64_t submitted; /* bytes handed to uv_write on this connection */
    struct chunk *head, *tail;
    /* relp */
    struct relp_parser rp;
    struct relp_window win;
    uint32_t txnr;
    uint32_t open_txnr;
    uint64_t acked_upto;
    struct buf pend;  /* frames read from the spool, not sent yet */
    uint64_t pend_start;
    size_t pend_off;
    /* stopping */
    _Atomic bool stop_req;
    _Atomic uint64_t stop_by_ms;
    bool stopping;
    uint64_t last_save_ms;
};

static uint64_t now_ms(void)
{
    return clock_mono_ms();
}

static void set_state(struct forward *f, enum forward_state s)
{
    atomic_store_explicit(&f->st->state, (int)s, memory_order_relaxed);
}

/* libuv's errors are negative errno values, except for the resolver's and
 * EOF: those become the errno that says the same to a person. */
static int errno_of(int status)
{
    if (status == UV_EOF)
        return ENOTCONN;
    if (status <= -3000 && status > -3100) /* UV_EAI_* */
        return EHOSTUNREACH;
    return status < 0 ? -status : EIO;
}

/* A failure: counted, shown in stats (and STATUS= through the output's
 * last_errno), logged when it is not the one logged last. */
static void failed(struct forward *f, const char *op, int status)
{
    int e = errno_of(status);
    atomic_store_explicit(&f->st->last_error_op, op, memory_order_relaxed);
    atomic_store_explicit(&f->st->last_errno, e, memory_order_relaxed);
    if (f->logged_err != status)
        log_msg(LOG_WARNING, "forward %s: %s %s: %s", f->oc->path, op, f->peer,
                uv_strerror(status));
    f->logged_err = status;
}

static void chunk_free(struct chunk *c)
{
    buf_free(&c->b);
    free(c);
}

/* ---- connection life ------------------------------------------------------ */

static void start_attempt(struct forward *f);
static void pump(struct forward *f);

static void on_retry(uv_timer_t *t)
{
    start_attempt(t->data);
}

static void on_poll(uv_timer_t *t)
{
    pump(t->data);
}

static void finish(struct forward *f)
{
    int rc = spool_save_cursor(f->sp);
    if (rc != 0)
        log_msg(LOG_ERR, "forward %s: saving the cursor: %s", f->oc->path, strerror(-rc));
    uv_close((uv_handle_t *)&f->wake, NULL);
    uv_close((uv_handle_t *)&f->retry, NULL);
    uv_close((uv_handle_t *)&f->poll, NULL);
}

static void schedule_backoff(struct forward *f)
{
    if (f->stopping) {
        finish(f);
        return;
    }
    set_state(f, FORWARD_BACKOFF);
    uint64_t d = f->backoff_ms;
    uint64_t pause = d / 2 + (uint64_t)rand_r(&f->seed) % (d / 2 + 1);
    uint64_t cap = (uint64_t)f->oc->fwd_backoff_max_ms;
    f->backoff_ms = d * 2 > cap ? cap : d * 2;
    uv_timer_start(&f->retry, on_retry, pause, 0);
}

static void on_closed(uv_handle_t *h)
{
    struct forward *f = h->data;
    free(h);
    /* Every write callback of that connection has run (libuv calls them
     * before the close callback): the chunks can go. */
    for (struct chunk *c = f->head, *next; c != NULL; c = next) {
        next = c->next;
        chunk_free(c);
    }
    f->head = f->tail = NULL;
    f->submitted = 0;
    tls_conn_free(f->tc);
    f->tc = NULL;
    f->pend.len = f->pend_off = 0;
    spool_rewind(f->sp);
    if (f->after == NEXT_ADDRESS && !f->stopping && f->ai_next != NULL) {
        start_attempt(f);
        return;
    }
    if (f->ai_list != NULL) {
        uv_freeaddrinfo(f->ai_list);
        f->ai_list = f->ai_next = NULL;
    }
    if (f->after == FINISH || f->stopping)
        finish(f);
    else
        schedule_backoff(f);
}

/* Close the connection (or the attempt); on_closed() goes on as `after`
 * says.  op NULL: a close we chose (stopping), not a failure. */
static void close_conn(struct forward *f, const char *op, int status, enum after_close after)
{
    if (f->tcp == NULL)
        return;
    if (op != NULL) {
        failed(f, op, status);
        if (f->connected)
            counter_add(&f->st->disconnects, 1);
        else
            counter_add(&f->st->connect_failures, 1);
        f->lost_one = true;
    }
    uv_tcp_t *t = f->tcp;
    f->tcp = NULL;
    f->connected = f->ready = false;
    f->after = after;
    uv_timer_stop(&f->poll);
    uv_timer_stop(&f->retry);
    uv_read_stop((uv_stream_t *)t);
    uv_close((uv_handle_t *)t, on_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)h;
    (void)suggested;
    static _Thread_local char rbuf[16384];
    *b = uv_buf_init(rbuf, sizeof(rbuf));
}

/* ---- tcp: acknowledgements from the kernel ---------------------------------- */

/* Move the cursor past what the peer's TCP has: bytes the kernel took
 * minus those it still holds unacknowledged (SIOCOUTQ counts by sequence
 * numbers, so it stays right after a reset too), rounded down to a frame. */
static void tcp_poll_acks(struct forward *f)
{
    if (!f->connected || f->relp)
        return;
    uv_os_fd_t fd;
    int outq = 0;
    if (uv_fileno((uv_handle_t *)f->tcp, &fd) != 0 || ioctl(fd, SIOCOUTQ, &outq) != 0)
        return;
    uint64_t in_kernel = f->submitted - uv_stream_get_write_queue_size((uv_stream_t *)f->tcp);
    if ((uint64_t)outq > in_kernel)
        return;
    uint64_t acked = in_kernel - (uint64_t)outq;
    uint64_t cursor = 0;
    while (f->head != NULL) {
        struct chunk *c = f->head;
        uint64_t ws = c->wire_end - c->b.len;
        /* A chunk acknowledged whole waits for its write callback before
         * it is freed; it is counted once, when the acknowledgement came. */
        if (c->ack_off < c->b.len) {
            if (acked <= ws + c->ack_off)
                break;
            size_t upto = acked >= c->wire_end ? c->b.len : (size_t)(acked - ws);
            if (f->tls) {
                /* Ciphertext: the records of a chunk count once all of it,
                 * and so every TLS record in it, is acknowledged. */
                if (upto < c->b.len)
                    break;
                counter_add(&f->st->records_acked, c->nrec);
                counter_add(&f->st->bytes_acked, c->spool_len);
                c->ack_off = c->b.len;
                if (c->spool_len > 0)
                    cursor = c->start + c->spool_len;
            } else {
                size_t n;
                int bad;
                size_t whole = spool_frames_prefix(c->b.p + c->ack_off, upto - c->ack_off, &n, &bad);
                if (whole > 0) {
                    counter_add(&f->st->records_acked, n);
                    counter_add(&f->st->bytes_acked, whole);
                    c->ack_off += whole;
                    cursor = c->start + c->ack_off;
                }
            }
        }
        if (c->ack_off < c->b.len || !c->done)
            break;
        f->head = c->next;
        if (f->head == NULL)
            f->tail = NULL;
        chunk_free(c);
    }
    if (cursor > 0) {
        spool_ack(f->sp, cursor);
        f->backoff_ms = BACKOFF_MIN_MS; /* this connection works */
    }
}

static void on_written(uv_write_t *req, int status)
{
    struct chunk *c = req->data;
    struct forward *f = c->f;
    c->done = true;
    if (status == UV_ECANCELED)
        return; /* the connection is closing; on_closed frees the chunk */
    if (status < 0) {
        close_conn(f, "write to", status, BACK_OFF);
        return;
    }
    if (f->relp) {
        /* A RELP chunk is only a write buffer: done is done. */
        while (f->head != NULL && f->head->done) {
            struct chunk *h = f->head;
            f->head = h->next;
            if (f->head == NULL)
                f->tail = NULL;
            chunk_free(h);
        }
    } else {
        tcp_poll_acks(f);
    }
    pump(f);
}

static int send_chunk(struct forward *f, struct chunk *c)
{
    c->f = f;
    c->req.data = c;
    f->submitted += c->b.len;
    c->wire_end = f->submitted;
    if (f->tail != NULL)
        f->tail->next = c;
    else
        f->head = c;
    f->tail = c;
    counter_add(&f->st->bytes_sent, c->b.len);
    uv_buf_t ub = uv_buf_init(c->b.p, (unsigned)c->b.len);
    int rc = uv_write(&c->req, (uv_stream_t *)f->tcp, &ub, 1, on_written);
    if (rc != 0) {
        c->done = true;
        close_conn(f, "write to", rc, BACK_OFF);
    }
    return rc;
}

static uint64_t inflight(const struct forward *f)
{
    uint64_t acked_wire = 0;
    if (f->head != NULL)
        acked_wire = f->head->wire_end - f->head->b.len + f->head->ack_off;
    else
        acked_wire = f->submitted;
    return f->submitted - acked_wire;
}

static void tcp_pump(struct forward *f)
{
    while (f->ready && inflight(f) < INFLIGHT_MAX) {
        struct chunk *c = calloc(1, sizeof(*c));
        if (c == NULL)
            return;
        int k = spool_read(f->sp, &c->b, CHUNK_MAX, &c->start);
        if (k <= 0) {
            if (k < 0)
                log_msg(LOG_ERR, "forward %s: reading the spool: %s", f->oc->path, strerror(-k));
            chunk_free(c);
            return;
        }
        counter_add(&f->st->records_sent, (uint64_t)k);
        if (send_chunk(f, c) != 0)
            return;
    }
}

/* ---- tls ------------------------------------------------------------------------ */

static void relp_start(struct forward *f);
static void relp_input(struct forward *f, const char *p, size_t n);

/* Send the ciphertext the conn has waiting, as one chunk that stands for
 * spool bytes [start, start + spool_len) (0 for handshake and alerts). */
static int tls_flush(struct forward *f, uint64_t start, size_t spool_len, size_t nrec)
{
    size_t n = tls_conn_pending(f->tc);
    if (n == 0)
        return 0;
    struct chunk *c = calloc(1, sizeof(*c));
    if (c == NULL || buf_reserve(&c->b, n) != 0) {
        free(c);
        return -ENOMEM;
    }
    c->b.len = tls_conn_take(f->tc, c->b.p, n);
    c->start = start;
    c->spool_len = spool_len;
    c->nrec = nrec;
    return send_chunk(f, c);
}

/* A static name for why a handshake failed, for the statistics (the whole
 * reason goes to the log). */
static const char *tls_reason(const char *why)
{
    if (strstr(why, "expired") != NULL)
        return "tls: certificate has expired";
    if (strstr(why, "mismatch") != NULL)
        return "tls: certificate name mismatch";
    if (strstr(why, "issuer") != NULL || strstr(why, "self-signed") != NULL ||
        strstr(why, "self signed") != NULL)
        return "tls: certificate not signed by the ca";
    if (strstr(why, "verify") != NULL)
        return "tls: certificate refused";
    return "tls handshake with";
}

static void tls_step(struct forward *f)
{
    int rc = tls_conn_handshake(f->tc);
    (void)tls_flush(f, 0, 0, 0);
    if (f->tcp == NULL)
        return;
    if (rc == -EAGAIN)
        return;
    if (rc == 0) {
        log_msg(LOG_INFO, "forward %s: %s with %s", f->oc->path, tls_conn_version(f->tc),
                f->peer);
        if (f->relp) {
            relp_start(f); /* RELP inside the TLS session */
            return;
        }
        f->ready = true;
        pump(f);
        return;
    }
    const char *why = tls_conn_error(f->tc);
    if (rc == -EPERM)
        counter_add(&f->st->tls_verify_failures, 1);
    log_msg(LOG_ERR, "forward %s: TLS with %s refused: %s", f->oc->path, f->peer, why);
    f->logged_err = rc; /* logged just now, with the reason */
    close_conn(f, tls_reason(why), rc, BACK_OFF);
}

static void tls_pump(struct forward *f)
{
    while (f->ready && inflight(f) < INFLIGHT_MAX) {
        f->pend.len = 0;
        uint64_t start;
        int k = spool_read(f->sp, &f->pend, CHUNK_MAX, &start);
        if (k <= 0) {
            if (k < 0)
                log_msg(LOG_ERR, "forward %s: reading the spool: %s", f->oc->path, strerror(-k));
            return;
        }
        ssize_t w = tls_conn_write(f->tc, f->pend.p, f->pend.len);
        if (w < 0) {
            close_conn(f, "tls write to", (int)w, BACK_OFF);
            return;
        }
        counter_add(&f->st->records_sent, (uint64_t)k);
        if (tls_flush(f, start, f->pend.len, (size_t)k) != 0)
            return;
    }
}

static void tls_read(struct forward *f, const char *p, size_t n)
{
    if (tls_conn_feed(f->tc, p, n) != 0) {
        close_conn(f, "tls read from", UV_ENOMEM, BACK_OFF);
        return;
    }
    if (!tls_conn_established(f->tc)) {
        tls_step(f);
        return;
    }
    char plain[16384];
    ssize_t r;
    while ((r = tls_conn_read(f->tc, plain, sizeof(plain))) > 0) {
        /* A syslog collector says nothing; whatever it says is ignored.
         * A RELP one answers. */
        if (f->relp) {
            relp_input(f, plain, (size_t)r);
            if (f->tcp == NULL)
                return;
        }
    }
    (void)tls_flush(f, 0, 0, 0);
    if (r == 0)
        close_conn(f, "closed (TLS) by", UV_EOF, BACK_OFF);
    else if (r != -EAGAIN)
        close_conn(f, tls_reason(tls_conn_error(f->tc)), (int)r, BACK_OFF);
}

/* ---- relp ----------------------------------------------------------------------- */

/* Send a RELP write buffer: as it is, or through the TLS session.  0 or
 * the error after which the connection is closed. */
static int xmit(struct forward *f, struct chunk *c)
{
    if (!f->tls)
        return send_chunk(f, c);
    ssize_t w = tls_conn_write(f->tc, c->b.p, c->b.len);
    chunk_free(c);
    if (w < 0) {
        close_conn(f, "tls write to", (int)w, BACK_OFF);
        return (int)w;
    }
    return tls_flush(f, 0, 0, 0);
}

static void relp_send_open(struct forward *f)
{
    char offer[256];
    ssize_t n = relp_open_offer(offer, sizeof(offer), "lograil");
    struct chunk *c = calloc(1, sizeof(*c));
    if (n < 0 || c == NULL || buf_reserve(&c->b, (size_t)n + RELP_HEADER_MAX + 1) != 0) {
        free(c);
        close_conn(f, "open", UV_ENOMEM, BACK_OFF);
        return;
    }
    f->open_txnr = 1;
    f->txnr = relp_txnr_next(f->open_txnr);
    ssize_t w = relp_encode(c->b.p, c->b.cap, f->open_txnr, "open", offer, (size_t)n);
    assert(w > 0);
    c->b.len = (size_t)w;
    xmit(f, c);
}

/* A new session: forget the old one's window and parser, offer open. */
static void relp_start(struct forward *f)
{
    struct spool_info in;
    spool_info(f->sp, &in);
    relp_parser_reset(&f->rp);
    relp_window_reset(&f->win, in.cursor);
    f->acked_upto = in.cursor;
    relp_send_open(f);
}

static void relp_pump(struct forward *f)
{
    struct chunk *c = NULL;
    while (f->ready && !relp_window_full(&f->win)) {
        if (f->pend_off == f->pend.len) {
            f->pend.len = f->pend_off = 0;
            int k = spool_read(f->sp, &f->pend, CHUNK_MAX, &f->pend_start);
            if (k <= 0) {
                if (k < 0)
                    log_msg(LOG_ERR, "forward %s: reading the spool: %s", f->oc->path,
                            strerror(-k));
                break;
            }
        }
        size_t fl, bo;
        int rc = spool_frame(f->pend.p + f->pend_off, f->pend.len - f->pend_off, &fl, &bo);
        assert(rc == 1);
        (void)rc;
        size_t blen = fl - bo;
        if (c == NULL && (c = calloc(1, sizeof(*c))) == NULL)
            break;
        if (buf_reserve(&c->b, RELP_HEADER_MAX + blen + 1) != 0)
            break;
        ssize_t h = relp_encode_header(c->b.p + c->b.len, RELP_HEADER_MAX, f->txnr, "syslog", blen);
        assert(h > 0);
        c->b.len += (size_t)h;
        memcpy(c->b.p + c->b.len, f->pend.p + f->pend_off + bo, blen);
        c->b.len += blen;
        c->b.p[c->b.len++] = '\n';
        if (relp_window_push(&f->win, f->txnr, f->pend_start + f->pend_off + fl) != 0) {
            log_msg(LOG_ERR, "forward %s: relp window refused txnr %u", f->oc->path, f->txnr);
            break;
        }
        f->txnr = relp_txnr_next(f->txnr);
        f->pend_off += fl;
        counter_add(&f->st->records_sent, 1);
        if (c->b.len >= CHUNK_MAX) {
            if (xmit(f, c) != 0)
                return;
            c = NULL;
        }
    }
    if (c != NULL && c->b.len > 0)
        xmit(f, c);
    else if (c != NULL)
        chunk_free(c);
}

/* One frame from the collector.  0, or a negative errno after which the
 * connection is closed. */
static int relp_frame_in(struct forward *f, const struct relp_frame *fr)
{
    if (strcmp(fr->command, "serverclose") == 0)
        return -ECONNRESET;
    struct relp_rsp rsp;
    if (strcmp(fr->command, "rsp") != 0 || relp_rsp_parse(fr->data, fr->datalen, &rsp) != 0)
        return -EPROTO;
    if (fr->txnr == f->open_txnr && !f->ready) {
        if (rsp.code != 200)
            return -ECONNREFUSED;
        f->ready = true;
        return 0;
    }
    if (rsp.code != 200)
        return -EREMOTEIO;
    if (relp_window_ack(&f->win, fr->txnr) != 0)
        return -EPROTO;
    counter_add(&f->st->records_acked, 1);
    uint64_t upto = relp_window_acked_upto(&f->win);
    if (upto > f->acked_upto) {
        counter_add(&f->st->bytes_acked, upto - f->acked_upto);
        f->acked_upto = upto;
        spool_ack(f->sp, upto);
        f->backoff_ms = BACKOFF_MIN_MS;
    }
    return 0;
}

/* ---- reading from the collector ------------------------------------------------- */

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct forward *f = s->data;
    if ((uv_tcp_t *)s != f->tcp)
        return;
    if (n < 0) {
        close_conn(f, n == UV_EOF ? "closed by" : "read from", (int)n, BACK_OFF);
        return;
    }
    if (f->tls) {
        tls_read(f, b->base, (size_t)n);
        return;
    }
    if (!f->relp)
        return; /* a syslog collector says nothing; whatever it says is ignored */
    relp_input(f, b->base, (size_t)n);
}

/* Bytes from a RELP collector (plain, or decrypted): its answers. */
static void relp_input(struct forward *f, const char *p, size_t n)
{
    size_t off = 0;
    while (off < n) {
        size_t used = 0;
        struct relp_frame fr;
        int rc = relp_parser_next(&f->rp, p + off, n - off, &used, &fr);
        off += used;
        if (rc == 0)
            break;
        if (rc == 1)
            rc = relp_frame_in(f, &fr);
        if (rc < 0) {
            counter_add(&f->st->protocol_errors, rc == -ECONNRESET ? 0 : 1);
            close_conn(f, "relp answer from", rc, BACK_OFF);
            return;
        }
    }
    pump(f);
}

/* ---- connecting ------------------------------------------------------------------ */

static void on_connect(uv_connect_t *req, int status)
{
    struct forward *f = req->data;
    if (req->handle != (uv_stream_t *)f->tcp)
        return; /* an attempt closed meanwhile (timeout, stop) */
    uv_timer_stop(&f->retry);
    if (status < 0) {
        close_conn(f, "connect to", status, NEXT_ADDRESS);
        return;
    }
    if (f->stopping) {
        close_conn(f, NULL, 0, FINISH);
        return;
    }
    f->connected = true;
    f->logged_err = 0;
    counter_add(&f->st->connects, 1);
    if (f->lost_one)
        counter_add(&f->st->reconnects, 1);
    atomic_store_explicit(&f->st->last_errno, 0, memory_order_relaxed);
    set_state(f, FORWARD_CONNECTED);
    log_msg(LOG_INFO, "forward %s: connected to %s", f->oc->path, f->peer);
    uv_freeaddrinfo(f->ai_list);
    f->ai_list = f->ai_next = NULL;
    spool_rewind(f->sp);
    f->submitted = 0;
    uv_tcp_nodelay(f->tcp, 1);
    uv_read_start((uv_stream_t *)f->tcp, on_alloc, on_read);
    uv_timer_start(&f->poll, on_poll, POLL_MS, POLL_MS);
    if (f->tls) {
        f->tc = tls_conn_new(f->tls_ctx, f->oc->fwd_host);
        if (f->tc == NULL) {
            close_conn(f, "tls with", UV_ENOMEM, BACK_OFF);
            return;
        }
        tls_step(f); /* then relp_start(), for RELP over TLS */
    } else if (f->relp) {
        relp_start(f);
    } else {
        f->ready = true;
        pump(f);
    }
}

static void on_connect_timeout(uv_timer_t *t)
{
    struct forward *f = t->data;
    close_conn(f, "connect to", UV_ETIMEDOUT, NEXT_ADDRESS);
}

/* Try the next address of the last resolve. */
static void try_next(struct forward *f)
{
    struct addrinfo *ai = f->ai_next;
    f->ai_next = ai->ai_next;
    char host[64] = "?";
    int port = 0;
    if (ai->ai_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ai->ai_addr;
        uv_ip6_name(a, host, sizeof(host));
        port = ntohs(a->sin6_port);
        snprintf(f->peer, sizeof(f->peer), "[%s]:%d", host, port);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)ai->ai_addr;
        uv_ip4_name(a, host, sizeof(host));
        port = ntohs(a->sin_port);
        snprintf(f->peer, sizeof(f->peer), "%s:%d", host, port);
    }
    f->tcp = malloc(sizeof(*f->tcp));
    if (f->tcp == NULL) {
        schedule_backoff(f);
        return;
    }
    uv_tcp_init(&f->loop, f->tcp);
    f->tcp->data = f;
    f->creq.data = f;
    int rc = uv_tcp_connect(&f->creq, f->tcp, ai->ai_addr, on_connect);
    if (rc != 0) {
        close_conn(f, "connect to", rc, NEXT_ADDRESS);
        return;
    }
    uv_timer_start(&f->retry, on_connect_timeout, CONNECT_TIMEOUT_MS, 0);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct forward *f = req->data;
    f->resolving = false;
    if (f->stopping) {
        if (res != NULL)
            uv_freeaddrinfo(res);
        finish(f);
        return;
    }
    if (status < 0 || res == NULL) {
        snprintf(f->peer, sizeof(f->peer), "%s", f->oc->fwd_address);
        failed(f, "resolve", status < 0 ? status : UV_EAI_NONAME);
        counter_add(&f->st->connect_failures, 1);
        f->lost_one = true;
        schedule_backoff(f);
        return;
    }
    f->ai_list = f->ai_next = res;
    try_next(f);
}

static void start_attempt(struct forward *f)
{
    if (f->stopping) {
        finish(f);
        return;
    }
    set_state(f, FORWARD_CONNECTING);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    f->gai.data = f;
    int rc = uv_getaddrinfo(&f->loop, &f->gai, on_resolved, f->oc->fwd_host, f->oc->fwd_port,
                            &hints);
    if (rc != 0) {
        failed(f, "resolve", rc);
        schedule_backoff(f);
        return;
    }
    f->resolving = true;
}

/* ---- sending, and the periodic look -------------------------------------------- */

static void begin_stop(struct forward *f)
{
    f->stopping = true;
    if (f->connected)
        return; /* pump() sees the deadline */
    uv_timer_stop(&f->retry);
    if (f->resolving)
        uv_cancel((uv_req_t *)&f->gai); /* on_resolved finishes */
    else if (f->tcp != NULL)
        close_conn(f, NULL, 0, FINISH);
    else
        finish(f);
}

/* Everything that may have become possible: acknowledgements, sending,
 * saving the cursor, the end of a stop.  Called on wake-ups, write
 * completions, reads and the poll timer. */
static void pump(struct forward *f)
{
    if (atomic_load_explicit(&f->stop_req, memory_order_acquire) && !f->stopping)
        begin_stop(f);
    if (!f->connected)
        return;
    tcp_poll_acks(f);
    if (f->relp)
        relp_pump(f);
    else if (f->tls)
        tls_pump(f);
    else
        tcp_pump(f);
    uint64_t now = now_ms();
    if (now >= f->last_save_ms + SAVE_MS) {
        f->last_save_ms = now;
        int rc = spool_save_cursor(f->sp);
        if (rc != 0)
            log_msg(LOG_ERR, "forward %s: saving the cursor: %s", f->oc->path, strerror(-rc));
    }
    if (f->stopping) {
        struct spool_info in;
        spool_info(f->sp, &in);
        if (in.unacked_bytes == 0 ||
            now >= atomic_load_explicit(&f->stop_by_ms, memory_order_relaxed))
            close_conn(f, NULL, 0, FINISH);
    }
}

static void on_wake(uv_async_t *a)
{
    struct forward *f = a->data;
    if (atomic_load_explicit(&f->stop_req, memory_order_acquire) && !f->stopping)
        begin_stop(f);
    else
        pump(f);
}

static void *forward_main(void *arg)
{
    struct forward *f = arg;
    start_attempt(f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- life --------------------------------------------------------------------- */

int forward_open(struct forward **out, const struct output_conf *oc, struct spool *sp,
                 struct forward_stats *st, char *err, size_t errlen)
{
    struct forward *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    f->oc = oc;
    f->sp = sp;
    f->st = st;
    f->relp = oc->fwd_protocol == FORWARD_RELP;
    /* tls, or relp with tls = { ca = ...; }: RELP inside TLS. */
    f->tls = oc->fwd_protocol == FORWARD_TLS || (f->relp && oc->fwd_tls_ca != NULL);
    if (f->tls) {
        struct tls_opts to = {.ca = oc->fwd_tls_ca, .cert = oc->fwd_tls_cert,
                              .key = oc->fwd_tls_key, .name = oc->fwd_tls_name};
        char why[TLS_ERROR_MAX];
        f->tls_ctx = tls_ctx_new_client(&to, why, sizeof(why));
        if (f->tls_ctx == NULL) {
            snprintf(err, errlen, "output %s: tls: %s", oc->path, why);
            free(f);
            return -EINVAL;
        }
    }
    f->backoff_ms = BACKOFF_MIN_MS;
    f->seed = (unsigned)time(NULL) ^ (unsigned)getpid() ^ (unsigned)(uintptr_t)f;
    snprintf(f->peer, sizeof(f->peer), "%s", oc->fwd_address);
    int rc = uv_loop_init(&f->loop);
    if (rc == 0 && f->relp) {
        rc = relp_parser_init(&f->rp, RELP_DEFAULT_MAX_DATA);
        if (rc == 0)
            rc = relp_window_init(&f->win, RELP_WINDOW, 0);
    }
    if (rc != 0) {
        snprintf(err, errlen, "output %s: %s", oc->path, strerror(-rc));
        tls_ctx_free(f->tls_ctx);
        free(f);
        return rc;
    }
    uv_async_init(&f->loop, &f->wake, on_wake);
    uv_timer_init(&f->loop, &f->retry);
    uv_timer_init(&f->loop, &f->poll);
    f->wake.data = f->retry.data = f->poll.data = f;
    set_state(f, FORWARD_CONNECTING);
    *out = f;
    return 0;
}

int forward_start(struct forward *f)
{
    int rc = pthread_create(&f->thread, NULL, forward_main, f);
    if (rc != 0)
        return -rc;
    f->started = true;
    return 0;
}

void forward_kick(struct forward *f)
{
    uv_async_send(&f->wake);
}

void forward_stop(struct forward *f, uint64_t flush_ms)
{
    if (f == NULL || !f->started)
        return;
    atomic_store_explicit(&f->stop_by_ms, now_ms() + flush_ms, memory_order_relaxed);
    atomic_store_explicit(&f->stop_req, true, memory_order_release);
    uv_async_send(&f->wake);
    pthread_join(f->thread, NULL);
    f->started = false;
}

void forward_free(struct forward *f)
{
    if (f == NULL)
        return;
    forward_stop(f, 0);
    if (!uv_is_closing((uv_handle_t *)&f->wake)) {
        /* Never started: close the handles here. */
        uv_close((uv_handle_t *)&f->wake, NULL);
        uv_close((uv_handle_t *)&f->retry, NULL);
        uv_close((uv_handle_t *)&f->poll, NULL);
    }
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_loop_close(&f->loop);
    if (f->relp) {
        relp_parser_free(&f->rp);
        relp_window_free(&f->win);
    }
    buf_free(&f->pend);
    tls_ctx_free(f->tls_ctx);
    free(f);
}
