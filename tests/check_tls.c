/*
 * Check suite for lib/tls.c: a client and a server tls_conn talk through
 * memory only.  The certificates are made at run time with the openssl
 * command (as in PEERS.md): a CA, a second CA for "wrong CA", a server
 * certificate for localhost and 127.0.0.1, an expired one, and client
 * certificates from each CA.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "tls.h"

static char dir[] = "/tmp/check_tls.XXXXXX";

static const char *path(const char *name)
{
    static char buf[8][256];
    static int i;

    i = (i + 1) % 8;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
    return buf[i];
}

/* Runs once, in the runner process, before the tests fork. */
static void make_certs(void)
{
    static const char script[] =
        "set -e; cd \"$1\"\n"
        "key() { openssl genpkey -algorithm EC -pkeyopt "
        "ec_paramgen_curve:prime256v1 -out \"$1\" 2>/dev/null; }\n"
        "ca() { key $1.key; openssl req -x509 -new -key $1.key -days 2 "
        "-subj \"/CN=$2\" -out $1.pem; }\n"
        "ca ca test-ca; ca ca2 other-ca\n"
        "key srv.key; openssl req -new -key srv.key -subj /CN=localhost "
        "-out srv.csr\n"
        "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' >srv.ext\n"
        "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key "
        "-CAcreateserial -days 2 -extfile srv.ext -out srv.pem 2>/dev/null\n"
        /* -days -1: notAfter lies a day before now, so the certificate
         * has expired whenever the test runs. */
        "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key "
        "-CAcreateserial -days -1 -extfile srv.ext -out expired.pem "
        "2>/dev/null\n"
        "key cli.key; openssl req -new -key cli.key -subj "
        "/O=lograil/CN=client -out cli.csr\n"
        "openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key "
        "-CAcreateserial -days 2 -out cli.pem 2>/dev/null\n"
        "key cli2.key; openssl req -new -key cli2.key -subj /CN=intruder "
        "-out cli2.csr\n"
        "openssl x509 -req -in cli2.csr -CA ca2.pem -CAkey ca2.key "
        "-CAcreateserial -days 2 -out cli2.pem 2>/dev/null\n"
        "openssl pkey -in srv.key -aes256 -passout pass:secret -out "
        "locked.key\n"
        "echo 'this is not PEM' >garbage.pem\n";
    char cmd[sizeof(script) + 512];

    /* Each test case makes its own set, in a directory of its own. */
    strcpy(dir, "/tmp/check_tls.XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(cmd, sizeof(cmd), "sh -c '%s' sh %s", "eval \"$CERTS\"", dir);
    setenv("CERTS", script, 1);
    if (system(cmd) != 0) {
        fprintf(stderr, "check_tls: making certificates with openssl failed\n");
        exit(1);
    }
}

static void remove_certs(void)
{
    char cmd[300];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "check_tls: could not remove %s\n", dir);
}

/* ---- Helpers ------------------------------------------------------------ */

static struct tls_ctx *client_ctx(const char *ca, const char *name,
                                  const char *cert, const char *key)
{
    struct tls_opts o = {.ca = path(ca), .name = name};
    char err[TLS_ERROR_MAX];
    struct tls_ctx *ctx;

    if (cert) {
        o.cert = path(cert);
        o.key = path(key);
    }
    ctx = tls_ctx_new_client(&o, err, sizeof(err));
    ck_assert_msg(ctx != NULL, "client ctx: %s", err);
    return ctx;
}

static struct tls_ctx *server_ctx(const char *cert, const char *key,
                                  bool verify_client)
{
    struct tls_opts o = {.cert = path(cert), .key = path(key),
                         .ca = path("ca.pem"), .verify_client = verify_client};
    char err[TLS_ERROR_MAX];
    struct tls_ctx *ctx = tls_ctx_new_server(&o, err, sizeof(err));

    ck_assert_msg(ctx != NULL, "server ctx: %s", err);
    return ctx;
}

/* Move up to max pending bytes from one conn to the other; how many. */
static size_t xfer(struct tls_conn *from, struct tls_conn *to, size_t max)
{
    char buf[16384];
    size_t moved = 0, n;

    while (moved < max &&
           (n = tls_conn_take(from, buf,
                              max - moved < sizeof(buf) ? max - moved
                                                        : sizeof(buf))) > 0) {
        ck_assert_int_eq(tls_conn_feed(to, buf, n), 0);
        moved += n;
    }
    return moved;
}

struct hs {
    int c, s;
};

/* Run both handshakes, delivering at most `step` bytes each way between
 * two calls, until neither side waits or nothing moves any more. */
static struct hs handshake(struct tls_conn *c, struct tls_conn *s,
                           size_t step)
{
    struct hs r = {-EAGAIN, -EAGAIN};

    for (int i = 0; i < 200000; i++) {
        size_t moved;

        if (r.c == -EAGAIN)
            r.c = tls_conn_handshake(c);
        moved = xfer(c, s, step);
        if (r.s == -EAGAIN)
            r.s = tls_conn_handshake(s);
        moved += xfer(s, c, step);
        if ((r.c != -EAGAIN && r.s != -EAGAIN) || moved == 0)
            break;
    }
    return r;
}

/* A client and a server connection, handshaken with each other. */
struct pair {
    struct tls_conn *c, *s;
    struct hs r;
};

/* Takes cc and sc, and frees both as soon as the connections exist:
 * connections outlive their context (ASan would see it if they did not). */
static void pair_open(struct pair *p, struct tls_ctx *cc, struct tls_ctx *sc,
                      const char *servername, size_t step)
{
    p->c = tls_conn_new(cc, servername);
    p->s = tls_conn_new(sc, NULL);
    ck_assert_ptr_nonnull(p->c);
    ck_assert_ptr_nonnull(p->s);
    tls_ctx_free(cc);
    tls_ctx_free(sc);
    p->r = handshake(p->c, p->s, step);
}

static void pair_assert_connected(const struct pair *p)
{
    ck_assert_msg(p->r.c == 0 && p->r.s == 0, "c %d (%s) s %d (%s)", p->r.c,
                  tls_conn_error(p->c), p->r.s, tls_conn_error(p->s));
    ck_assert(tls_conn_established(p->c) && tls_conn_established(p->s));
}

static void pair_free(struct pair *p)
{
    tls_conn_free(p->c);
    tls_conn_free(p->s);
}

/* Read everything now decryptable into buf[*len..cap). Returns the last
 * result of tls_conn_read (-EAGAIN when all was read). */
static ssize_t drain(struct tls_conn *c, char *buf, size_t *len, size_t cap)
{
    ssize_t r;

    while ((r = tls_conn_read(c, buf + *len, cap - *len)) > 0)
        *len += (size_t)r;
    return r;
}

static void check_contains(const char *hay, const char *needle)
{
    ck_assert_msg(strstr(hay, needle) != NULL, "\"%s\" lacks \"%s\"", hay,
                  needle);
}

/* Send n pattern bytes from a to b in chunks of step; b must get them all,
 * intact. */
static void send_and_check(struct tls_conn *a, struct tls_conn *b, size_t n,
                           unsigned char seed, size_t step)
{
    char *out = malloc(n), *in = malloc(n + 1);
    size_t got = 0;

    for (size_t i = 0; i < n; i++)
        out[i] = (char)(seed + i * 7 + i / 251);
    ck_assert_int_eq(tls_conn_write(a, out, n), (ssize_t)n);
    ck_assert_uint_gt(tls_conn_pending(a), n); /* ciphertext, not the plain */
    while (tls_conn_pending(a) > 0) {
        xfer(a, b, step);
        ck_assert_int_eq(drain(b, in, &got, n + 1), -EAGAIN);
        xfer(b, a, SIZE_MAX); /* e.g. session tickets the other way */
    }
    ck_assert_uint_eq(got, n);
    ck_assert(memcmp(in, out, n) == 0);
    free(out);
    free(in);
}

/* ---- Good connections --------------------------------------------------- */

START_TEST(handshake_and_data_both_ways)
{
    struct pair p;
    char buf[16];
    size_t len = 0;

    pair_open(&p, client_ctx("ca.pem", "localhost", NULL, NULL),
              server_ctx("srv.pem", "srv.key", false), NULL, SIZE_MAX);
    pair_assert_connected(&p);
    ck_assert_str_eq(tls_conn_version(p.c), "TLSv1.3");
    ck_assert_str_eq(tls_conn_peer_subject(p.c), "CN=localhost");
    ck_assert_ptr_null(tls_conn_peer_subject(p.s));
    ck_assert_int_eq(tls_conn_handshake(p.c), 0); /* done stays done */
    send_and_check(p.c, p.s, 300000, 1, SIZE_MAX);
    send_and_check(p.s, p.c, 100000, 2, SIZE_MAX);
    send_and_check(p.c, p.s, 1, 3, SIZE_MAX);
    /* close_notify: the server reads a clean end of stream. */
    ck_assert_int_eq(tls_conn_close(p.c), 0);
    ck_assert_int_eq(tls_conn_write(p.c, "x", 1), -ENOTCONN);
    xfer(p.c, p.s, SIZE_MAX);
    ck_assert_int_eq(drain(p.s, buf, &len, sizeof(buf)), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_str_eq(tls_conn_error(p.s), "");
    pair_free(&p);
}
END_TEST

/* One byte at a time each way, every call in between: partial records
 * everywhere, in the handshake and in the data.  The name to verify comes
 * from the conn's servername here, not from the context. */
START_TEST(byte_by_byte)
{
    struct pair p;

    pair_open(&p, client_ctx("ca.pem", NULL, NULL, NULL),
              server_ctx("srv.pem", "srv.key", false), "localhost", 1);
    pair_assert_connected(&p);
    send_and_check(p.c, p.s, 5000, 4, 1);
    send_and_check(p.s, p.c, 5000, 5, 1);
    pair_free(&p);
}
END_TEST

/* The name may be an IP address, checked against the certificate's IP
 * entries. */
START_TEST(ip_name)
{
    struct pair p;

    pair_open(&p, client_ctx("ca.pem", "127.0.0.1", NULL, NULL),
              server_ctx("srv.pem", "srv.key", false), NULL, SIZE_MAX);
    pair_assert_connected(&p);
    send_and_check(p.c, p.s, 1000, 6, SIZE_MAX);
    pair_free(&p);
}
END_TEST

START_TEST(client_certificate_accepted)
{
    struct pair p;

    pair_open(&p, client_ctx("ca.pem", "localhost", "cli.pem", "cli.key"),
              server_ctx("srv.pem", "srv.key", true), NULL, SIZE_MAX);
    pair_assert_connected(&p);
    ck_assert_str_eq(tls_conn_peer_subject(p.s), "CN=client,O=lograil");
    send_and_check(p.c, p.s, 2000, 7, SIZE_MAX);
    send_and_check(p.s, p.c, 2000, 8, SIZE_MAX);
    pair_free(&p);
}
END_TEST

/* ---- Refused connections ------------------------------------------------ */

/* The client refuses the server's certificate: -EPERM with the reason, the
 * server hears an alert, and the client will not send data. */
static void client_refuses(const char *ca, const char *name, const char *cert,
                           const char *reason)
{
    struct pair p;

    pair_open(&p, client_ctx(ca, name, NULL, NULL),
              server_ctx(cert, "srv.key", false), NULL, SIZE_MAX);
    ck_assert_int_eq(p.r.c, -EPERM);
    check_contains(tls_conn_error(p.c), "certificate verify failed");
    check_contains(tls_conn_error(p.c), reason);
    check_contains(tls_conn_error(p.c), "depth 0, CN=localhost");
    ck_assert_int_lt(p.r.s, 0);
    ck_assert_str_ne(tls_conn_error(p.s), "");
    ck_assert(!tls_conn_established(p.c));
    ck_assert_int_eq(tls_conn_handshake(p.c), -EPERM); /* sticky */
    ck_assert_int_lt(tls_conn_write(p.c, "secret", 6), 0);
    ck_assert_int_lt(tls_conn_read(p.c, (char[8]){0}, 8), 0);
    ck_assert_uint_eq(tls_conn_pending(p.c), 0);
    pair_free(&p);
}

START_TEST(wrong_ca_refused)
{
    client_refuses("ca2.pem", "localhost", "srv.pem",
                   "unable to get local issuer certificate");
}
END_TEST

START_TEST(wrong_name_refused)
{
    client_refuses("ca.pem", "collector.example.org", "srv.pem",
                   "hostname mismatch (depth 0, CN=localhost; expected "
                   "collector.example.org)");
}
END_TEST

START_TEST(wrong_ip_refused)
{
    client_refuses("ca.pem", "127.0.0.2", "srv.pem",
                   "IP address mismatch (depth 0, CN=localhost; expected "
                   "127.0.0.2)");
}
END_TEST

START_TEST(expired_refused)
{
    client_refuses("ca.pem", "localhost", "expired.pem",
                   "certificate has expired");
}
END_TEST

/* The server refuses a client: with TLS 1.3 the client's own handshake may
 * finish first, and it learns of the refusal on its next read. */
static void server_refuses(const char *cert, const char *key,
                           const char *reason)
{
    struct pair p;
    char buf[64];
    size_t len = 0;

    pair_open(&p, client_ctx("ca.pem", "localhost", cert, key),
              server_ctx("srv.pem", "srv.key", true), NULL, SIZE_MAX);
    ck_assert_int_eq(p.r.s, -EPERM);
    check_contains(tls_conn_error(p.s), reason);
    ck_assert_ptr_null(tls_conn_peer_subject(p.s));
    if (p.r.c == 0) {
        ck_assert_int_eq(drain(p.c, buf, &len, sizeof(buf)), -EPERM);
        ck_assert_uint_eq(len, 0);
    } else {
        ck_assert_int_lt(p.r.c, 0);
    }
    ck_assert_str_ne(tls_conn_error(p.c), "");
    ck_assert_int_lt(tls_conn_read(p.s, buf, sizeof(buf)), 0);
    pair_free(&p);
}

START_TEST(verify_client_without_cert_refused)
{
    server_refuses(NULL, NULL, "peer did not return a certificate");
}
END_TEST

START_TEST(verify_client_wrong_ca_refused)
{
    server_refuses("cli2.pem", "cli2.key", "certificate verify failed");
}
END_TEST

/* What a TLS port gets from a plain syslog sender or a web browser: an
 * error, no crash, nothing decrypted, and nothing sent back but an alert. */
START_TEST(plaintext_to_server)
{
    static const char *inputs[] = {
        "<13>Dec  3 07:00:00 host app: hello\n",
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "1 open 86 relp_version=0\n",
        "\x16\x03\x01\xff\xff", /* a record longer than TLS allows */
    };
    struct tls_ctx *sc = server_ctx("srv.pem", "srv.key", false);

    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        struct tls_conn *s = tls_conn_new(sc, NULL);
        char buf[64];
        int rc;

        ck_assert_int_eq(tls_conn_feed(s, inputs[i], strlen(inputs[i])), 0);
        rc = tls_conn_handshake(s);
        ck_assert_msg(rc == -EPROTO, "input %zu: %d", i, rc);
        check_contains(tls_conn_error(s), "TLS handshake: ");
        ck_assert_int_eq(tls_conn_read(s, buf, sizeof(buf)), -EPROTO);
        ck_assert_int_eq(tls_conn_write(s, "x", 1), -EPROTO);
        ck_assert_uint_lt(tls_conn_pending(s), 16); /* an alert at most */
        tls_conn_free(s);
    }
    /* Random bytes, a chunk at a time. */
    {
        struct tls_conn *s = tls_conn_new(sc, NULL);
        unsigned seed = 7;
        int rc = -EAGAIN;

        for (int i = 0; i < 4096 && rc == -EAGAIN; i++) {
            unsigned char b;
            seed = seed * 1103515245u + 12345u;
            b = (unsigned char)(seed >> 16);
            ck_assert_int_eq(tls_conn_feed(s, &b, 1), 0);
            rc = tls_conn_handshake(s);
        }
        ck_assert_int_eq(rc, -EPROTO);
        tls_conn_free(s);
    }
    tls_ctx_free(sc);
}
END_TEST

/* A client whose collector answers in plain text fails, and has sent
 * nothing but its ClientHello. */
START_TEST(plaintext_to_client)
{
    static const char answer[] = "1 rsp 6 200 OK\n";
    struct tls_ctx *cc = client_ctx("ca.pem", "localhost", NULL, NULL);
    struct tls_conn *c = tls_conn_new(cc, NULL);
    char hello[4096];
    size_t n;

    ck_assert_int_eq(tls_conn_handshake(c), -EAGAIN);
    n = tls_conn_take(c, hello, sizeof(hello));
    ck_assert_uint_gt(n, 5);
    ck_assert_int_eq(hello[0], 0x16); /* a handshake record */
    ck_assert_int_eq(tls_conn_feed(c, answer, sizeof(answer) - 1), 0);
    ck_assert_int_eq(tls_conn_handshake(c), -EPROTO);
    ck_assert_str_ne(tls_conn_error(c), "");
    ck_assert_int_eq(tls_conn_write(c, "secret", 6), -EPROTO);
    tls_conn_free(c);
    tls_ctx_free(cc);
}
END_TEST

/* ---- Protocol versions -------------------------------------------------- */

/* A plain OpenSSL client limited to one protocol version (the test's own,
 * verifying nothing, and allowed old versions at security level 0) against
 * our server conn.  Returns the server's handshake result. */
static int server_vs_version(int version, const char **agreed)
{
    struct tls_ctx *sc = server_ctx("srv.pem", "srv.key", false);
    struct tls_conn *s = tls_conn_new(sc, NULL);
    SSL_CTX *rc = SSL_CTX_new(TLS_client_method());
    SSL *raw;
    BIO *rin = BIO_new(BIO_s_mem()), *rout = BIO_new(BIO_s_mem());
    int srv = -EAGAIN;
    char buf[16384];

    ck_assert_ptr_nonnull(rc);
    SSL_CTX_set_security_level(rc, 0);
    ck_assert_int_eq(SSL_CTX_set_min_proto_version(rc, version), 1);
    ck_assert_int_eq(SSL_CTX_set_max_proto_version(rc, version), 1);
    raw = SSL_new(rc);
    SSL_set_bio(raw, rin, rout);
    SSL_set_connect_state(raw);
    for (int i = 0; i < 100 && srv == -EAGAIN; i++) {
        size_t m;
        int n;

        SSL_do_handshake(raw); /* its progress shows in rout */
        while ((n = BIO_read(rout, buf, sizeof(buf))) > 0)
            ck_assert_int_eq(tls_conn_feed(s, buf, (size_t)n), 0);
        srv = tls_conn_handshake(s);
        while ((m = tls_conn_take(s, buf, sizeof(buf))) > 0)
            ck_assert_int_eq(BIO_write(rin, buf, (int)m), (int)m);
    }
    if (srv == 0) {
        ck_assert_int_eq(SSL_do_handshake(raw), 1);
        *agreed = tls_conn_version(s); /* a static string of OpenSSL's */
    } else {
        check_contains(tls_conn_error(s), "unsupported protocol");
    }
    SSL_free(raw);
    SSL_CTX_free(rc);
    tls_conn_free(s);
    tls_ctx_free(sc);
    return srv;
}

START_TEST(tls12_accepted_tls11_refused)
{
    const char *v = NULL;

    ck_assert_int_eq(server_vs_version(TLS1_2_VERSION, &v), 0);
    ck_assert_str_eq(v, "TLSv1.2");
    ck_assert_int_eq(server_vs_version(TLS1_1_VERSION, &v), -EPROTO);
    ck_assert_int_eq(server_vs_version(TLS1_VERSION, &v), -EPROTO);
}
END_TEST

/* ---- Contexts that cannot be made -------------------------------------- */

static void client_ctx_fails(const char *ca, const char *cert, const char *key,
                             const char *want1, const char *want2)
{
    struct tls_opts o = {.ca = ca, .cert = cert, .key = key,
                         .name = "localhost"};
    char err[TLS_ERROR_MAX] = "";

    ck_assert_ptr_null(tls_ctx_new_client(&o, err, sizeof(err)));
    check_contains(err, want1);
    if (want2)
        check_contains(err, want2);
}

START_TEST(bad_files_named)
{
    char err[TLS_ERROR_MAX];
    struct tls_opts o = {0};
    const char *missing = path("missing.pem");

    client_ctx_fails(missing, NULL, NULL, missing,
                     ": No such file or directory");
    client_ctx_fails(path("garbage.pem"), NULL, NULL, path("garbage.pem"),
                     ": ");
    client_ctx_fails(NULL, NULL, NULL, "needs a ca", NULL);
    client_ctx_fails(path("ca.pem"), path("cli.pem"), NULL, "both cert and key",
                     NULL);
    client_ctx_fails(path("ca.pem"), missing, path("cli.key"), missing,
                     "No such file");
    client_ctx_fails(path("ca.pem"), path("cli.pem"), path("srv.key"),
                     "does not belong", path("cli.pem"));
    /* A key with a passphrase fails at once instead of prompting. */
    client_ctx_fails(path("ca.pem"), path("srv.pem"), path("locked.key"),
                     path("locked.key"), ": ");
    client_ctx_fails(path("ca.pem"), path("srv.pem"), path("garbage.pem"),
                     path("garbage.pem"), ": ");

    ck_assert_ptr_null(tls_ctx_new_server(&o, err, sizeof(err)));
    check_contains(err, "needs cert and key");
    o.cert = path("srv.pem");
    o.key = path("srv.key");
    o.verify_client = true;
    ck_assert_ptr_null(tls_ctx_new_server(&o, err, sizeof(err)));
    check_contains(err, "verify_client needs a ca");
    o.ca = missing;
    ck_assert_ptr_null(tls_ctx_new_server(&o, err, sizeof(err)));
    check_contains(err, missing);
    o.ca = NULL;
    o.verify_client = false;
    o.key = path("cli.key");
    ck_assert_ptr_null(tls_ctx_new_server(&o, err, sizeof(err)));
    check_contains(err, "does not belong");
    /* errlen 0 and a NULL err are allowed. */
    o.key = path("srv.key");
    o.cert = missing;
    ck_assert_ptr_null(tls_ctx_new_server(&o, NULL, 0));
}
END_TEST

START_TEST(conn_misuse)
{
    struct tls_ctx *cc = client_ctx("ca.pem", NULL, NULL, NULL);
    struct tls_ctx *sc = server_ctx("srv.pem", "srv.key", false);
    struct tls_conn *c, *s;
    char buf[8];

    errno = 0;
    ck_assert_ptr_null(tls_conn_new(cc, NULL)); /* no name to verify */
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_ptr_null(tls_conn_new(NULL, "x"));
    c = tls_conn_new(cc, "localhost");
    s = tls_conn_new(sc, "ignored");
    ck_assert_int_eq(tls_conn_write(c, "x", 1), -ENOTCONN);
    ck_assert_int_eq(tls_conn_read(s, buf, sizeof(buf)), -ENOTCONN);
    ck_assert_int_eq(tls_conn_read(s, NULL, 1), -EINVAL);
    ck_assert_int_eq(tls_conn_feed(s, NULL, 1), -EINVAL);
    ck_assert_uint_eq(tls_conn_take(s, buf, sizeof(buf)), 0);
    ck_assert_ptr_null(tls_conn_version(c));
    ck_assert_int_eq(tls_conn_close(c), 0); /* nothing to close yet */
    ck_assert_str_eq(tls_conn_error(c), "");
    tls_conn_free(c);
    tls_conn_free(s);
    tls_conn_free(NULL);
    tls_ctx_free(NULL);
    tls_ctx_free(cc);
    tls_ctx_free(sc);
}
END_TEST

static Suite *tls_suite(void)
{
    Suite *s = suite_create("tls");
    TCase *ok = tcase_create("connect");
    TCase *no = tcase_create("refuse");
    TCase *cfg = tcase_create("ctx");

    tcase_add_unchecked_fixture(ok, make_certs, remove_certs);
    tcase_add_test(ok, handshake_and_data_both_ways);
    tcase_add_test(ok, byte_by_byte);
    tcase_add_test(ok, ip_name);
    tcase_add_test(ok, client_certificate_accepted);
    suite_add_tcase(s, ok);

    tcase_add_unchecked_fixture(no, make_certs, remove_certs);
    tcase_add_test(no, wrong_ca_refused);
    tcase_add_test(no, wrong_name_refused);
    tcase_add_test(no, wrong_ip_refused);
    tcase_add_test(no, expired_refused);
    tcase_add_test(no, verify_client_without_cert_refused);
    tcase_add_test(no, verify_client_wrong_ca_refused);
    tcase_add_test(no, plaintext_to_server);
    tcase_add_test(no, plaintext_to_client);
    tcase_add_test(no, tls12_accepted_tls11_refused);
    suite_add_tcase(s, no);

    tcase_add_unchecked_fixture(cfg, make_certs, remove_certs);
    tcase_add_test(cfg, bad_files_named);
    tcase_add_test(cfg, conn_misuse);
    suite_add_tcase(s, cfg);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tls_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
