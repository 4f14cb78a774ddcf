/*
 * metrics_http: `metrics = { address = "127.0.0.1:9465"; };` -- a minimal
 * HTTP/1.1 responder for Prometheus scrapes.  GET /metrics (a query string
 * is ignored) answers 200 with the exposition that `lograilctl stats
 * --prometheus` prints; every other path 404, other methods 405, a request
 * head over METRICS_HTTP_MAX_REQUEST bytes 431, a malformed one 400.  One
 * request per connection (Connection: close), a client that does not send
 * its request within METRICS_HTTP_TIMEOUT_MS is closed, and at most
 * METRICS_HTTP_MAX_CLIENTS are served at once: nothing a scraper (or
 * anybody who can reach the port) does can make the daemon hold much.
 *
 * Served on the main thread's libuv loop, like the control socket; the
 * handler runs there too.
 */
#ifndef LOGRAIL_METRICS_HTTP_H
#define LOGRAIL_METRICS_HTTP_H

#include <stddef.h>
#include <uv.h>

#include "buf.h"

#define METRICS_HTTP_MAX_REQUEST 8192
#define METRICS_HTTP_TIMEOUT_MS 10000
#define METRICS_HTTP_MAX_CLIENTS 16

/* Append the exposition to body. */
typedef void (*metrics_http_fn)(void *arg, struct buf *body);

struct metrics_http;

/* Bind host:port and listen (main thread, before privileges are dropped).
 * NULL with a message in err on failure. */
struct metrics_http *metrics_http_open(uv_loop_t *loop, const char *host, const char *port,
                                       metrics_http_fn fn, void *arg, char *err, size_t errlen);

/* Stop listening and close every client.  The loop must run once more for
 * the handles to close, which frees it.  NULL is allowed. */
void metrics_http_close(struct metrics_http *m);

#endif
