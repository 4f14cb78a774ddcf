#include "tls.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

struct tls_ctx {
    SSL_CTX *ssl;
    char *name; /* client: the name to verify, or NULL */
    bool server;
};

struct tls_conn {
    SSL *ssl;
    BIO *rbio;           /* ciphertext from the peer, owned by ssl */
    BIO *wbio;           /* ciphertext for the peer, owned by ssl */
    char *peer_subject;  /* once established, if the peer sent a cert */
    int failed;          /* sticky negative errno once something failed */
    bool established;
    bool closed;         /* we sent close_notify */
    int verify_err;      /* the first certificate the verifier refused */
    int verify_depth;
    char verify_subject[96];
    char *name;          /* client: the name verified, for errors */
    char error[TLS_ERROR_MAX];
};

/* ---- Errors ------------------------------------------------------------ */

/* SSL_get_error() reads the thread's error queue, which must be empty
 * before the SSL call it explains.  On the data path (one SSL_read per
 * record: a 120-byte record each on a busy listener) ERR_clear_error()'s
 * walk over every slot of an empty queue was 5-10 % of a TLS listener's
 * CPU (perf, bench/e2e W7); looking costs a fraction of it. */
static void tls_err_reset(void)
{
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

/* OpenSSL's reason for the oldest error on this thread's queue (the one
 * nearest the cause), and empty the queue.  Returns the packed code. */
static unsigned long tls_take_reason(char *buf, size_t len)
{
    unsigned long first = ERR_get_error(), e;
    const char *reason;

    while ((e = ERR_get_error()) != 0)
        ;
    if (first == 0) {
        snprintf(buf, len, "unknown error");
        return 0;
    }
    reason = ERR_reason_error_string(first);
    if (ERR_SYSTEM_ERROR(first))
        snprintf(buf, len, "%s", strerror(ERR_GET_REASON(first)));
    else if (reason != NULL)
        snprintf(buf, len, "%s", reason);
    else
        ERR_error_string_n(first, buf, len);
    return first;
}

/* err = "fmt...: OpenSSL's reason". */
static void tls_ctx_error(char *err, size_t errlen, const char *fmt, ...)
{
    char reason[160];
    int n = 0;
    va_list ap;

    tls_take_reason(reason, sizeof(reason));
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    n = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < errlen)
        snprintf(err + n, errlen - (size_t)n, ": %s", reason);
}

static void tls_ctx_say(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", msg);
}

/* Whether an SSL-library reason means that a certificate was refused,
 * by us or (as an alert) by the peer. */
static bool tls_reason_is_certificate(unsigned long e)
{
    if (ERR_GET_LIB(e) != ERR_LIB_SSL)
        return false;
    switch (ERR_GET_REASON(e)) {
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
        return true;
    default:
        return false;
    }
}

/* A call on c failed: keep why, and make the failure sticky. */
static int tls_conn_fail(struct tls_conn *c, const char *what)
{
    char reason[160];
    unsigned long e = tls_take_reason(reason, sizeof(reason));
    int rc = -EPROTO;

    if (c->verify_err != 0) {
        bool name = c->verify_err == X509_V_ERR_HOSTNAME_MISMATCH ||
                    c->verify_err == X509_V_ERR_IP_ADDRESS_MISMATCH;

        snprintf(c->error, sizeof(c->error),
                 "%s: certificate verify failed: %s (depth %d, %s%s%s)", what,
                 X509_verify_cert_error_string(c->verify_err),
                 c->verify_depth, c->verify_subject,
                 name ? "; expected " : "", name ? c->name : "");
        rc = -EPERM;
    } else {
        snprintf(c->error, sizeof(c->error), "%s: %s", what, reason);
        if (tls_reason_is_certificate(e))
            rc = -EPERM;
    }
    c->failed = rc;
    return rc;
}

/* A certificate name, RFC 2253 style ("CN=client,O=Example"), into
 * buf[0..len); "" when it cannot be printed. */
static void tls_name_string(X509_NAME *nm, char *buf, size_t len)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    long n;

    buf[0] = '\0';
    if (b == NULL)
        return;
    if (X509_NAME_print_ex(b, nm, 0, XN_FLAG_RFC2253) >= 0) {
        n = BIO_get_mem_data(b, &data);
        if (n >= 0 && len > 0) {
            size_t k = (size_t)n < len - 1 ? (size_t)n : len - 1;
            memcpy(buf, data, k);
            buf[k] = '\0';
        }
    }
    BIO_free(b);
}

/* Called by OpenSSL for every certificate of the peer's chain: note the
 * first refusal, for an error that names the certificate.  The verdict is
 * OpenSSL's own; nothing is overridden. */
static int tls_verify_cb(int ok, X509_STORE_CTX *store)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(store,
                                          SSL_get_ex_data_X509_STORE_CTX_idx());
    struct tls_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;

    if (!ok && c != NULL && c->verify_err == 0) {
        X509 *cert = X509_STORE_CTX_get_current_cert(store);

        c->verify_err = X509_STORE_CTX_get_error(store);
        c->verify_depth = X509_STORE_CTX_get_error_depth(store);
        c->verify_subject[0] = '\0';
        if (cert != NULL)
            tls_name_string(X509_get_subject_name(cert), c->verify_subject,
                            sizeof(c->verify_subject));
        if (c->verify_err == 0)
            c->verify_err = X509_V_ERR_UNSPECIFIED;
    }
    return ok;
}

/* A key file with a passphrase must fail, not prompt on a terminal. */
static int tls_no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return 0;
}

/* ---- Contexts ---------------------------------------------------------- */

static struct tls_ctx *tls_ctx_alloc(bool server, char *err, size_t errlen)
{
    struct tls_ctx *ctx = calloc(1, sizeof(*ctx));

    if (ctx == NULL) {
        tls_ctx_say(err, errlen, "out of memory");
        return NULL;
    }
    ERR_clear_error();
    ctx->server = server;
    ctx->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ctx->ssl == NULL) {
        tls_ctx_error(err, errlen, "cannot create a TLS context");
        free(ctx);
        return NULL;
    }
    /* TLS 1.2 is the oldest version without known protocol breaks. */
    if (SSL_CTX_set_min_proto_version(ctx->ssl, TLS1_2_VERSION) != 1) {
        tls_ctx_error(err, errlen, "cannot require TLS 1.2");
        tls_ctx_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx->ssl, SSL_OP_NO_COMPRESSION |
                                      SSL_OP_NO_RENEGOTIATION);
    /* Idle connections give their record buffers back: a collector holds
     * thousands of them. */
    SSL_CTX_set_mode(ctx->ssl, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_default_passwd_cb(ctx->ssl, tls_no_password);
    return ctx;
}

/* Load o->cert and o->key into ctx; 0 or -1 with err. */
static int tls_ctx_load_cert(struct tls_ctx *ctx, const struct tls_opts *o,
                             char *err, size_t errlen)
{
    if (SSL_CTX_use_certificate_chain_file(ctx->ssl, o->cert) != 1) {
        tls_ctx_error(err, errlen, "cert %s", o->cert);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx->ssl, o->key, SSL_FILETYPE_PEM) != 1) {
        unsigned long e = ERR_peek_last_error();

        /* OpenSSL checks the key against the certificate as it loads it;
         * say so in words a person can act on. */
        if (ERR_GET_LIB(e) == ERR_LIB_X509 &&
            ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
            tls_ctx_error(err, errlen, "key %s does not belong to cert %s",
                          o->key, o->cert);
        else
            tls_ctx_error(err, errlen, "key %s", o->key);
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx->ssl) != 1) {
        tls_ctx_error(err, errlen, "key %s does not belong to cert %s", o->key,
                      o->cert);
        return -1;
    }
    return 0;
}

static int tls_ctx_load_ca(struct tls_ctx *ctx, const char *ca, char *err,
                           size_t errlen)
{
    if (SSL_CTX_load_verify_locations(ctx->ssl, ca, NULL) != 1) {
        tls_ctx_error(err, errlen, "ca %s", ca);
        return -1;
    }
    return 0;
}

struct tls_ctx *tls_ctx_new_client(const struct tls_opts *o, char *err,
                                   size_t errlen)
{
    struct tls_ctx *ctx;

    if (o == NULL || o->ca == NULL) {
        tls_ctx_say(err, errlen, "a TLS client needs a ca file to verify the "
                                 "server with");
        return NULL;
    }
    if ((o->cert == NULL) != (o->key == NULL)) {
        tls_ctx_say(err, errlen, "a client certificate needs both cert and key");
        return NULL;
    }
    ctx = tls_ctx_alloc(false, err, errlen);
    if (ctx == NULL)
        return NULL;
    if (o->name != NULL && (ctx->name = strdup(o->name)) == NULL) {
        tls_ctx_say(err, errlen, "out of memory");
        goto fail;
    }
    if (tls_ctx_load_ca(ctx, o->ca, err, errlen) != 0)
        goto fail;
    if (o->cert != NULL && tls_ctx_load_cert(ctx, o, err, errlen) != 0)
        goto fail;
    SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER, tls_verify_cb);
    return ctx;
fail:
    tls_ctx_free(ctx);
    return NULL;
}

struct tls_ctx *tls_ctx_new_server(const struct tls_opts *o, char *err,
                                   size_t errlen)
{
    static const unsigned char sid[] = "lograil";
    struct tls_ctx *ctx;

    if (o == NULL || o->cert == NULL || o->key == NULL) {
        tls_ctx_say(err, errlen, "a TLS server needs cert and key");
        return NULL;
    }
    if (o->verify_client && o->ca == NULL) {
        tls_ctx_say(err, errlen, "verify_client needs a ca file to verify "
                                 "clients with");
        return NULL;
    }
    ctx = tls_ctx_alloc(true, err, errlen);
    if (ctx == NULL)
        return NULL;
    if (tls_ctx_load_cert(ctx, o, err, errlen) != 0)
        goto fail;
    /* Resumed sessions must stay tied to this service, or OpenSSL refuses
     * them when client certificates are checked. */
    SSL_CTX_set_session_id_context(ctx->ssl, sid, sizeof(sid) - 1);
    if (o->verify_client) {
        STACK_OF(X509_NAME) *names;

        if (tls_ctx_load_ca(ctx, o->ca, err, errlen) != 0)
            goto fail;
        /* Tell clients which CA we accept, so that one with several
         * certificates picks the right one. */
        names = SSL_load_client_CA_file(o->ca);
        if (names == NULL) {
            tls_ctx_error(err, errlen, "ca %s", o->ca);
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx->ssl, names);
        SSL_CTX_set_verify(ctx->ssl,
                           SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                           tls_verify_cb);
    } else {
        SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_NONE, NULL);
    }
    return ctx;
fail:
    tls_ctx_free(ctx);
    return NULL;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
    if (ctx == NULL)
        return;
    SSL_CTX_free(ctx->ssl); /* every SSL made from it holds a reference */
    free(ctx->name);
    free(ctx);
}

/* ---- Connections ------------------------------------------------------- */

static bool tls_is_ip(const char *name)
{
    ASN1_OCTET_STRING *ip = a2i_IPADDRESS(name);

    if (ip == NULL)
        return false;
    ASN1_OCTET_STRING_free(ip);
    return true;
}

struct tls_conn *tls_conn_new(struct tls_ctx *ctx, const char *servername)
{
    struct tls_conn *c;
    const char *name;

    if (ctx == NULL) {
        errno = EINVAL;
        return NULL;
    }
    name = ctx->name ? ctx->name : servername;
    if (!ctx->server && name == NULL) {
        errno = EINVAL;
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto nomem;
    ERR_clear_error();
    c->ssl = SSL_new(ctx->ssl);
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL) {
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        goto fail;
    }
    /* An empty read BIO means "wait for more", never end of stream: the
     * socket's end is the loop's business. */
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio);
    SSL_set_app_data(c->ssl, c);
    if (ctx->server) {
        SSL_set_accept_state(c->ssl);
    } else {
        X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
        const char *sni = servername ? servername : name;

        SSL_set_connect_state(c->ssl);
        if ((c->name = strdup(name)) == NULL)
            goto fail;
        X509_VERIFY_PARAM_set_hostflags(vp,
                                        X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (tls_is_ip(name)) {
            if (X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1)
                goto fail;
        } else if (SSL_set1_host(c->ssl, name) != 1) {
            goto fail;
        }
        /* RFC 6066: SNI carries host names, never address literals. */
        if (!tls_is_ip(sni) && SSL_set_tlsext_host_name(c->ssl, sni) != 1)
            goto fail;
    }
    return c;
fail:
    ERR_clear_error();
    tls_conn_free(c);
nomem:
    errno = ENOMEM;
    return NULL;
}

void tls_conn_free(struct tls_conn *c)
{
    if (c == NULL)
        return;
    SSL_free(c->ssl); /* frees both BIOs */
    free(c->peer_subject);
    free(c->name);
    free(c);
}

int tls_conn_feed(struct tls_conn *c, const void *cipher, size_t n)
{
    const char *p = cipher;

    if (c == NULL || (cipher == NULL && n > 0))
        return -EINVAL;
    while (n > 0) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        int w = BIO_write(c->rbio, p, chunk);

        if (w <= 0) {
            ERR_clear_error();
            return -ENOMEM;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The handshake just completed: note who the peer is. */
static void tls_conn_on_established(struct tls_conn *c)
{
    X509 *peer = SSL_get0_peer_certificate(c->ssl);
    char subject[512];

    c->established = true;
    if (peer == NULL)
        return;
    tls_name_string(X509_get_subject_name(peer), subject, sizeof(subject));
    c->peer_subject = strdup(subject);
    ERR_clear_error();
}

int tls_conn_handshake(struct tls_conn *c)
{
    int r;

    if (c == NULL)
        return -EINVAL;
    if (c->failed)
        return c->failed;
    if (c->established)
        return 0;
    ERR_clear_error();
    r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        tls_conn_on_established(c);
        return 0;
    }
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: /* a memory BIO takes every write */
        return -EAGAIN;
    default:
        return tls_conn_fail(c, "TLS handshake");
    }
}

bool tls_conn_established(const struct tls_conn *c)
{
    return c->established && c->failed == 0;
}

ssize_t tls_conn_read(struct tls_conn *c, void *plain, size_t n)
{
    size_t got = 0;
    int r;

    if (c == NULL || (plain == NULL && n > 0))
        return -EINVAL;
    if (c->failed)
        return c->failed;
    if (!c->established)
        return -ENOTCONN;
    if (n > INT_MAX)
        n = INT_MAX;
    tls_err_reset();
    r = SSL_read_ex(c->ssl, plain, n, &got);
    if (r == 1)
        return (ssize_t)got;
    switch (SSL_get_error(c->ssl, r)) {
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return -EAGAIN;
    default:
        return tls_conn_fail(c, "TLS read");
    }
}

ssize_t tls_conn_write(struct tls_conn *c, const void *plain, size_t n)
{
    size_t done = 0;

    if (c == NULL || (plain == NULL && n > 0))
        return -EINVAL;
    if (c->failed)
        return c->failed;
    if (!c->established || c->closed)
        return -ENOTCONN;
    if (n > SSIZE_MAX)
        return -EINVAL;
    tls_err_reset();
    while (done < n) {
        size_t w = 0;

        /* A memory BIO grows to take every record, so a write never
         * stops half-way for want of room. */
        if (SSL_write_ex(c->ssl, (const char *)plain + done, n - done, &w) != 1)
            return tls_conn_fail(c, "TLS write");
        done += w;
    }
    return (ssize_t)n;
}

size_t tls_conn_pending(const struct tls_conn *c)
{
    return c ? BIO_ctrl_pending(c->wbio) : 0;
}

size_t tls_conn_take(struct tls_conn *c, void *buf, size_t n)
{
    int r;

    if (c == NULL || buf == NULL || n == 0)
        return 0;
    r = BIO_read(c->wbio, buf, n > INT_MAX ? INT_MAX : (int)n);
    return r > 0 ? (size_t)r : 0;
}

int tls_conn_close(struct tls_conn *c)
{
    int r;

    if (c == NULL)
        return -EINVAL;
    if (c->failed)
        return c->failed;
    if (c->closed || !c->established)
        return 0;
    ERR_clear_error();
    c->closed = true;
    /* 0 means "sent, the peer's has not come": we do not wait for it. */
    r = SSL_shutdown(c->ssl);
    if (r < 0 && SSL_get_error(c->ssl, r) != SSL_ERROR_WANT_READ)
        return tls_conn_fail(c, "TLS close");
    ERR_clear_error();
    return 0;
}

const char *tls_conn_peer_subject(const struct tls_conn *c)
{
    return c ? c->peer_subject : NULL;
}

const char *tls_conn_version(const struct tls_conn *c)
{
    return c && c->established ? SSL_get_version(c->ssl) : NULL;
}

const char *tls_conn_error(const struct tls_conn *c)
{
    return c ? c->error : "";
}
