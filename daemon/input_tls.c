/*
 * input_tls: `type = "tls"`, syslog over TLS (RFC 5425): TCP connections
 * (input_net.c) whose bytes go through lib/tls.c on the loop that owns the
 * connection, the plaintext into the shared framer (conn_feed()).
 *
 * Nothing blocks: ciphertext read is fed to the connection's SSL object
 * over memory BIOs, the handshake advances as bytes arrive, and what
 * OpenSSL wants to send (handshake records, alerts, session tickets) is
 * queued with conn_write().  TLS 1.2 is the oldest version lib/tls.c
 * allows.  A client certificate is required with verify_client; its
 * subject becomes the records' trusted peer_name field.
 *
 * Refusals, each counted (tls_handshake_failures, and the kind):
 *  - plain text to the TLS port: the first byte is not a TLS handshake
 *    record (0x16); such a client is told nothing and closed (tls_not_tls);
 *  - a failed handshake (no or a wrong client certificate, no common
 *    version or cipher): OpenSSL's alert is sent, then the connection
 *    closed;
 *  - a handshake not done by handshake_timeout (a client that connects and
 *    stalls would otherwise hold a connection slot for ever):
 *    tls_handshake_timeouts.
 * The first failure is logged at once with OpenSSL's reason, later ones as
 * a count every 10 s (log_tally), so a flood of bad clients cannot flood
 * the log.
 *
 * Backpressure: when conn_feed() holds bytes back, the rest of the
 * plaintext stays inside the SSL object (not yet decrypted); conn_resume
 * reads it out once the parked records went.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "input.h"
#include "tls.h"

#define TLS_PLAIN 16384          /* one TLS record's plaintext at most */
#define TLS_FAIL_LOG_MS 10000    /* failed handshakes: one message this often */
#define TLS_HANDSHAKE_RECORD 0x16

struct tls_listener {
    struct tls_ctx *ctx;
    struct log_tally failures;
};

struct tls_state {
    struct tls_conn *tc;
    uint64_t started_ms;
    bool seen_byte;
    bool established;
};

static _Thread_local char plain[TLS_PLAIN];

static int tls_open(struct listener *lst, bool creds, bool *bound, char *err, size_t errlen)
{
    (void)creds;
    *bound = false;
    return input_net_open(lst, SOCK_STREAM, err, errlen);
}

static int tls_setup(struct listener *lst, bool creds, char *err, size_t errlen)
{
    (void)creds;
    const struct listen_conf *lc = lst->lc;
    struct tls_listener *tl = calloc(1, sizeof(*tl));
    if (tl == NULL) {
        snprintf(err, errlen, "listen %s: out of memory", lc->path);
        return -1;
    }
    struct tls_opts o = {.ca = lc->tls_ca,
                         .cert = lc->tls_cert,
                         .key = lc->tls_key,
                         .verify_client = lc->tls_verify_client != 0};
    char why[TLS_ERROR_MAX];
    tl->ctx = tls_ctx_new_server(&o, why, sizeof(why));
    if (tl->ctx == NULL) {
        snprintf(err, errlen, "listen %s: tls: %s", lc->path, why);
        free(tl);
        return -1;
    }
    log_tally_init(&tl->failures, TLS_FAIL_LOG_MS);
    lst->kstate = tl;
    peers_init(&lst->peers);
    lst->has_peers = true;
    return 0;
}

static void tls_teardown(struct listener *lst)
{
    struct tls_listener *tl = lst->kstate;
    if (tl != NULL) {
        uint64_t n = log_tally_take(&tl->failures, clock_mono_ms(), true);
        if (n > 0)
            log_msg(LOG_WARNING, "listen %s: %llu more TLS handshake%s failed", lst->lc->path,
                    (unsigned long long)n, n == 1 ? "" : "s");
        log_tally_destroy(&tl->failures);
        tls_ctx_free(tl->ctx);
        free(tl);
        lst->kstate = NULL;
    }
    if (lst->has_peers)
        peers_free(&lst->peers);
    lst->has_peers = false;
    input_net_teardown(lst);
}

/* Send what OpenSSL has for the peer. */
static void flush_cipher(struct conn *c, struct tls_state *ts)
{
    char out[4096];
    while (tls_conn_pending(ts->tc) > 0) {
        size_t n = tls_conn_take(ts->tc, out, sizeof(out));
        if (n == 0 || conn_write(c, out, n) != 0)
            break;
    }
}

/* A handshake failed (why), or timed out, or was never TLS: count, log
 * within the tally's pace, close. */
static void refuse(struct conn *c, struct tls_state *ts, const char *why, counter *kind)
{
    struct listener *lst = c->lst;
    struct tls_listener *tl = lst->kstate;
    counter_add(&lst->st->tls_handshake_failures, 1);
    if (kind != NULL)
        counter_add(kind, 1);
    uint64_t n = log_tally_add(&tl->failures, 1, clock_mono_ms());
    const char *peer = c->src.peer_len ? c->src.ext : "?";
    int plen = c->src.peer_len ? (int)c->src.peer_len : 1;
    if (n == 1)
        log_msg(LOG_WARNING, "listen %s: TLS handshake with %.*s failed: %s", lst->lc->path, plen,
                peer, why);
    else if (n > 1)
        log_msg(LOG_WARNING, "listen %s: %llu TLS handshakes failed (the last with %.*s: %s)",
                lst->lc->path, (unsigned long long)n, plen, peer, why);
    if (ts->tc != NULL)
        flush_cipher(c, ts);
    conn_close(c);
}

/* Decrypt what the SSL object holds into the framer.  false: conn_feed()
 * held bytes back (records parked), or the connection closed. */
static bool pump(struct conn *c, struct tls_state *ts)
{
    for (;;) {
        ssize_t k = tls_conn_read(ts->tc, plain, sizeof(plain));
        if (k > 0) {
            if (!conn_feed(c, plain, (size_t)k))
                return false;
            continue;
        }
        flush_cipher(c, ts);
        if (k == 0 || k == -EAGAIN)
            return true; /* close_notify: the TCP end of stream follows */
        log_msg(LOG_WARNING, "listen %s: TLS connection: %s", c->lst->lc->path,
                tls_conn_error(ts->tc));
        conn_close(c);
        return false;
    }
}

static bool tls_conn_bytes(struct conn *c, const char *p, size_t n)
{
    struct tls_state *ts = c->kstate;
    if (!ts->seen_byte && n > 0) {
        ts->seen_byte = true;
        if ((unsigned char)p[0] != TLS_HANDSHAKE_RECORD) {
            refuse(c, ts, "the client sent plain text, not a TLS handshake",
                   &c->lst->st->tls_not_tls);
            return false;
        }
    }
    if (tls_conn_feed(ts->tc, p, n) != 0) {
        refuse(c, ts, "out of memory", NULL);
        return false;
    }
    if (!ts->established) {
        int rc = tls_conn_handshake(ts->tc);
        if (rc == -EAGAIN) {
            flush_cipher(c, ts);
            return true;
        }
        if (rc != 0) {
            refuse(c, ts, tls_conn_error(ts->tc), NULL);
            return false;
        }
        ts->established = true;
        counter_add(&c->lst->st->tls_handshakes, 1);
        const char *subject = tls_conn_peer_subject(ts->tc);
        if (subject != NULL)
            input_src_set_peer_name(&c->src, subject, strlen(subject));
    }
    return pump(c, ts);
}

static bool tls_conn_resume(struct conn *c)
{
    struct tls_state *ts = c->kstate;
    if (!ts->established || c->closing)
        return true;
    return pump(c, ts);
}

static void tls_conn_tick(struct conn *c, uint64_t now_ms)
{
    struct tls_state *ts = c->kstate;
    uint64_t limit = (uint64_t)c->lst->lc->tls_handshake_timeout_ms;
    if (!ts->established && !c->closing && now_ms - ts->started_ms >= limit)
        refuse(c, ts, "the handshake was not done within handshake_timeout",
               &c->lst->st->tls_handshake_timeouts);
}

static int tls_conn_open(struct conn *c, int fd)
{
    int rc = input_net_conn_open(c, fd);
    if (rc != 0)
        return rc;
    struct tls_listener *tl = c->lst->kstate;
    struct tls_state *ts = calloc(1, sizeof(*ts));
    if (ts == NULL)
        return UV_ENOMEM;
    ts->tc = tls_conn_new(tl->ctx, NULL);
    if (ts->tc == NULL) {
        free(ts);
        return UV_ENOMEM;
    }
    ts->started_ms = uv_now(&c->loop->loop);
    c->kstate = ts;
    return 0;
}

static void tls_conn_free_state(struct conn *c)
{
    struct tls_state *ts = c->kstate;
    if (ts == NULL)
        return;
    tls_conn_free(ts->tc);
    free(ts);
    c->kstate = NULL;
}

const struct input_kind input_tls = {
    .name = "tls",
    .shape = INPUT_CONNS,
    .open = tls_open,
    .setup = tls_setup,
    .teardown = tls_teardown,
    .admit = input_net_admit,
    .conn_open = tls_conn_open,
    .conn_bytes = tls_conn_bytes,
    .conn_resume = tls_conn_resume,
    .conn_tick = tls_conn_tick,
    .conn_free = tls_conn_free_state,
};
