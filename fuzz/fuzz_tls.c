/*
 * libFuzzer target for TLS-fed framing: lib/tls.c feeding lib/frame.c, as
 * the tls listener does.
 *
 * The first byte chooses the case, the second seeds how bytes are cut.
 *
 * Even: the rest is what a hostile peer sends to a server conn, fed in
 * chunks; after each feed the handshake is driven (and, were it ever done,
 * application data read and framed).  Every call must return one of its
 * documented values, a failure must leave a reason in tls_conn_error(),
 * and after a failure nothing more is fed.
 *
 * Odd: a real session between a client and a server conn over memory (a
 * self-signed certificate made at start).  The rest is the plaintext the
 * client sends, written in pieces of seeded sizes (so in TLS records of
 * those sizes); the ciphertext reaches the server in seeded feeds, the
 * server reads it in seeded sizes and frames what it reads; then the
 * client closes (close_notify), and the server must read 0.  The server
 * must read exactly the plaintext, and its framing must equal the framing
 * of the plaintext in one feed.  Any difference aborts.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "frame.h"
#include "fuzz_util.h"
#include "tls.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MESSAGE 1024

static struct tls_ctx *server_ctx, *client_ctx;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_tls: %s\n", what);
    abort();
}

static void add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (e == NULL || X509_add_ext(x, e, -1) != 1)
        die("certificate extension");
    X509_EXTENSION_free(e);
}

/* A self-signed P-256 certificate for localhost, in two temporary PEM
 * files (removed again once both contexts have read them). */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (k == NULL || x == NULL)
        die("key");
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3650L * 86400);
    X509_set_pubkey(x, k);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    add_ext(x, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign");
    add_ext(x, NID_subject_alt_name, "DNS:localhost");
    if (X509_sign(x, k, EVP_sha256()) == 0)
        die("sign");

    char cert[] = "/tmp/fuzz_tls_certXXXXXX", key[] = "/tmp/fuzz_tls_keyXXXXXX";
    int cfd = mkstemp(cert), kfd = mkstemp(key);
    FILE *cf = cfd >= 0 ? fdopen(cfd, "w") : NULL, *kf = kfd >= 0 ? fdopen(kfd, "w") : NULL;
    if (cf == NULL || kf == NULL || PEM_write_X509(cf, x) != 1 ||
        PEM_write_PrivateKey(kf, k, NULL, NULL, 0, NULL, NULL) != 1)
        die("writing the certificate");
    fclose(cf);
    fclose(kf);
    char err[TLS_ERROR_MAX];
    struct tls_opts so = {.cert = cert, .key = key};
    struct tls_opts co = {.ca = cert, .name = "localhost"};
    server_ctx = tls_ctx_new_server(&so, err, sizeof(err));
    if (server_ctx == NULL)
        die(err);
    client_ctx = tls_ctx_new_client(&co, err, sizeof(err));
    if (client_ctx == NULL)
        die(err);
    unlink(cert);
    unlink(key);
    X509_free(x);
    EVP_PKEY_free(k);
    return 0;
}

static unsigned next(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return *seed >> 16;
}

/* Mostly small, sometimes large, never 0. */
static size_t cut(unsigned *seed, size_t left)
{
    unsigned r = next(seed);
    size_t c = r % 8 == 0 ? (size_t)(r >> 3) % 20000 + 1 : (size_t)(r >> 3) % 300 + 1;
    return c < left ? c : left;
}

struct out {
    struct fuzz_out buf;
    size_t count;
};

static int collect(void *ctx, const char *msg, size_t len, unsigned flags)
{
    struct out *o = ctx;
    if (len == 0 || len > MAX_MESSAGE)
        abort();
    fuzz_out_put(&o->buf, &len, sizeof(len));
    fuzz_out_put(&o->buf, &flags, sizeof(flags));
    fuzz_out_put(&o->buf, msg, len);
    o->count++;
    return 0;
}

/* Move what from has pending into to, in seeded feeds. */
static void carry(struct tls_conn *from, struct tls_conn *to, unsigned *seed)
{
    char b[32768];
    while (tls_conn_pending(from) > 0) {
        size_t n = tls_conn_take(from, b, cut(seed, sizeof(b)));
        if (n == 0)
            abort();
        if (to != NULL && tls_conn_feed(to, b, n) != 0)
            abort();
    }
}

/* Read all the server has, in seeded sizes, framing it.  Returns the
 * plaintext bytes read, and sets *closed on a clean close. */
static size_t drain(struct tls_conn *s, struct frame *f, struct out *o, struct fuzz_out *plain,
                    unsigned *seed, int *closed)
{
    size_t got = 0;
    for (;;) {
        size_t want = cut(seed, 16384);
        char *b = malloc(want); /* its own buffer: ASan sees a read past it */
        if (b == NULL)
            abort();
        ssize_t k = tls_conn_read(s, b, want);
        if (k > 0) {
            if ((size_t)k > want)
                abort();
            fuzz_out_put(plain, b, (size_t)k);
            if (frame_feed(f, b, (size_t)k, collect, o) != 0)
                abort();
            got += (size_t)k;
        }
        free(b);
        if (k == 0)
            *closed = 1;
        if (k <= 0) {
            if (k != 0 && k != -EAGAIN)
                abort();
            return got;
        }
    }
}

static void hostile(const uint8_t *p, size_t n, unsigned seed)
{
    struct tls_conn *s = tls_conn_new(server_ctx, NULL);
    struct frame f;
    struct out o = {0};
    struct fuzz_out plain = {0};
    if (s == NULL || frame_init(&f, MAX_MESSAGE) != 0)
        abort();
    size_t off = 0;
    int failed = 0, closed = 0;
    while (off < n && !failed && !closed) {
        size_t c = cut(&seed, n - off);
        if (tls_conn_feed(s, p + off, c) != 0)
            abort();
        off += c;
        int rc = tls_conn_handshake(s);
        if (rc == 0) {
            if (!tls_conn_established(s))
                abort();
            drain(s, &f, &o, &plain, &seed, &closed);
        } else if (rc == -EPERM || rc == -EPROTO) {
            if (tls_conn_error(s)[0] == '\0')
                abort();
            failed = 1;
        } else if (rc != -EAGAIN) {
            abort();
        }
        carry(s, NULL, &seed); /* the alert, or the server's flight */
    }
    frame_finish(&f, collect, &o);
    frame_free(&f);
    tls_conn_free(s);
    free(o.buf.b);
    free(plain.b);
}

static void session(const uint8_t *p, size_t n, unsigned seed)
{
    struct tls_conn *c = tls_conn_new(client_ctx, "localhost");
    struct tls_conn *s = tls_conn_new(server_ctx, NULL);
    if (c == NULL || s == NULL)
        abort();
    for (int round = 0; !(tls_conn_established(c) && tls_conn_established(s)); round++) {
        if (round > 10)
            die("the handshake did not finish");
        int rc = tls_conn_handshake(c);
        if (rc != 0 && rc != -EAGAIN)
            die(tls_conn_error(c));
        carry(c, s, &seed);
        rc = tls_conn_handshake(s);
        if (rc != 0 && rc != -EAGAIN)
            die(tls_conn_error(s));
        carry(s, c, &seed);
    }

    struct frame f;
    struct out fed = {0}, whole = {0};
    struct fuzz_out plain = {0};
    if (frame_init(&f, MAX_MESSAGE) != 0)
        abort();
    size_t off = 0, got = 0;
    int closed = 0;
    while (off < n) {
        size_t k = cut(&seed, n - off);
        if (tls_conn_write(c, p + off, k) != (ssize_t)k)
            abort();
        off += k;
        if (next(&seed) % 3 == 0) { /* sometimes let several writes pile up */
            carry(c, s, &seed);
            got += drain(s, &f, &fed, &plain, &seed, &closed);
        }
    }
    if (tls_conn_close(c) != 0)
        abort();
    carry(c, s, &seed);
    got += drain(s, &f, &fed, &plain, &seed, &closed);
    if (!closed || got != n || plain.len != n || (n && memcmp(plain.b, p, n) != 0))
        abort();
    if (frame_finish(&f, collect, &fed) != 0)
        abort();
    frame_free(&f);

    if (frame_init(&f, MAX_MESSAGE) != 0)
        abort();
    if (n && frame_feed(&f, (const char *)p, n, collect, &whole) != 0)
        abort();
    if (frame_finish(&f, collect, &whole) != 0)
        abort();
    frame_free(&f);
    if (fed.count != whole.count || fed.buf.len != whole.buf.len ||
        (fed.buf.len && memcmp(fed.buf.b, whole.buf.b, fed.buf.len) != 0))
        abort();
    free(fed.buf.b);
    free(whole.buf.b);
    free(plain.b);
    tls_conn_free(c);
    tls_conn_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned seed = data[1];
    if (data[0] % 2 == 0)
        hostile(data + 2, size - 2, seed);
    else
        session(data + 2, size - 2, seed);
    return 0;
}
