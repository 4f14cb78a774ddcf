/*
 * tls: TLS 1.2 and 1.3 with OpenSSL 3 over memory BIOs, without sockets.
 *
 * A `struct tls_conn` never reads or writes a file descriptor: the loop
 * that owns the socket feeds it the ciphertext it read (tls_conn_feed()),
 * and takes from it the ciphertext to write (tls_conn_pending() and
 * tls_conn_take()).  So the handshake, reads and writes never block, and
 * the same code serves a libuv client (the forwarder) and a libuv server
 * (the network inputs).
 *
 * The loop's rule: after every call into a conn (feed, handshake, read,
 * write, close), send whatever tls_conn_pending() says is waiting, even
 * when the call failed -- a failed handshake leaves an alert there that
 * tells the peer why.
 *
 * Verification is always on for a client: the server's certificate must
 * chain to the configured CA and match the expected name, else the
 * handshake fails with OpenSSL's reason (e.g. "certificate has expired").
 * There is no fallback to an unverified or plain-text connection.  A server
 * checks client certificates only when asked to (verify_client).
 *
 * Threads: a tls_ctx is built once (normally on the main thread, while the
 * configuration is read), is never changed afterwards, and may then be
 * shared by connections on any number of threads.  A tls_conn belongs to
 * the one loop thread that owns its socket; nothing in it locks.
 */
#ifndef LOGRAIL_TLS_H
#define LOGRAIL_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct tls_ctx;
struct tls_conn;

/* What a context is built from.  Paths are of PEM files. */
struct tls_opts {
    const char *ca;   /* client: required, the CA that signs servers;
                         server: required with verify_client */
    const char *cert; /* server: required; client: optional (with key) */
    const char *key;  /* the private key of cert */
    const char *name; /* client: the name the server's certificate must
                         carry (DNS name or IP address); NULL: the
                         servername given to tls_conn_new() */
    bool verify_client; /* server: require a client certificate signed by
                           ca */
};

/* The longest error text a conn keeps (and a sensible errlen). */
#define TLS_ERROR_MAX 256

/* Build a client context: TLS 1.2 minimum, the server verified against
 * o->ca, a client certificate when o->cert and o->key are given.  Returns
 * NULL on failure with a sentence in err[0..errlen) that names the file
 * and gives OpenSSL's reason ("ca /etc/x.pem: No such file or directory").
 * Main thread. */
struct tls_ctx *tls_ctx_new_client(const struct tls_opts *o, char *err,
                                   size_t errlen);

/* Build a server context: o->cert and o->key required; with
 * o->verify_client, clients must present a certificate that chains to
 * o->ca.  NULL and err as for the client. */
struct tls_ctx *tls_ctx_new_server(const struct tls_opts *o, char *err,
                                   size_t errlen);

/* Drop the caller's reference.  Connections hold their own, so this may
 * come before they are freed.  NULL is allowed. */
void tls_ctx_free(struct tls_ctx *ctx);

/* A new connection in the role of ctx.  For a client, servername is sent
 * as SNI (unless it is an IP address) and is the name verified when the
 * context has none; a client needs one of the two (NULL and errno EINVAL
 * otherwise).  A server ignores servername.  NULL with errno ENOMEM.
 * The loop thread that will own the conn. */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, const char *servername);

/* Free the conn (without sending anything: call tls_conn_close() first
 * for a clean close).  NULL is allowed. */
void tls_conn_free(struct tls_conn *c);

/* Hand over n bytes read from the socket.  They are only buffered; the
 * next handshake or read processes them.  0 or -ENOMEM. */
int tls_conn_feed(struct tls_conn *c, const void *cipher, size_t n);

/* Drive the handshake with what has been fed.  0: done (also on every call
 * after it is done); -EAGAIN: more bytes from the peer are needed (send
 * what is pending first); -EPERM: a certificate was refused (verification
 * failed, or the peer gave none where one is required); -EPROTO: any other
 * failure (plain text where TLS was expected, no common protocol version
 * or cipher, an alert from the peer).  After a failure tls_conn_error()
 * says why, and the conn is only good for taking the pending alert and
 * freeing. */
int tls_conn_handshake(struct tls_conn *c);

/* Whether the handshake is complete. */
bool tls_conn_established(const struct tls_conn *c);

/* Decrypt up to n bytes of application data into plain.  Returns the
 * bytes (> 0); 0 when the peer closed the TLS session cleanly
 * (close_notify: no more data will come); -EAGAIN when more ciphertext is
 * needed; -ENOTCONN before the handshake is done; -EPROTO (or -EPERM, a
 * TLS 1.3 server refusing our certificate after our handshake finished) on
 * failure, with tls_conn_error(). */
ssize_t tls_conn_read(struct tls_conn *c, void *plain, size_t n);

/* Encrypt plain[0..n): all of it becomes pending ciphertext.  Returns n;
 * -ENOTCONN before the handshake is done or after a close; -ENOMEM;
 * -EPROTO with tls_conn_error(). */
ssize_t tls_conn_write(struct tls_conn *c, const void *plain, size_t n);

/* Ciphertext bytes waiting to be written to the socket. */
size_t tls_conn_pending(const struct tls_conn *c);

/* Move up to n pending ciphertext bytes into buf; returns how many. */
size_t tls_conn_take(struct tls_conn *c, void *buf, size_t n);

/* Queue a close_notify alert (then send what is pending and close the
 * socket; waiting for the peer's close_notify is not required).  Further
 * writes fail with -ENOTCONN.  Before the handshake is done there is no
 * session to close and nothing is queued.  0, or the sticky error of an
 * earlier failure, or -EPROTO with tls_conn_error(). */
int tls_conn_close(struct tls_conn *c);

/* The peer certificate's subject, RFC 2253 style ("CN=client,O=Example"),
 * once the handshake is done; NULL when the peer sent none.  Valid until
 * the conn is freed. */
const char *tls_conn_peer_subject(const struct tls_conn *c);

/* The protocol version agreed on ("TLSv1.3"), once established. */
const char *tls_conn_version(const struct tls_conn *c);

/* Why the last failed call failed: OpenSSL's reason, with the
 * verification error and the refused certificate's subject when a
 * certificate was refused ("certificate verify failed: certificate has
 * expired (depth 0, CN=localhost)").  "" when nothing failed. */
const char *tls_conn_error(const struct tls_conn *c);

#endif
