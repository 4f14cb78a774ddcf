#include "metrics_http.h"

#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"

struct client;

struct metrics_http {
    uv_tcp_t server;
    metrics_http_fn fn;
    void *arg;
    struct client *clients;
    size_t n_clients;
    bool closing;
    bool server_closed;
};

struct client {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq;
    struct metrics_http *m;
    struct client *prev, *next;
    struct buf reply;
    size_t len;
    int handles; /* open handles: tcp, timer */
    bool answered;
    bool closing;
    char req[METRICS_HTTP_MAX_REQUEST];
};

static void maybe_free_server(struct metrics_http *m)
{
    if (m->closing && m->server_closed && m->clients == NULL)
        free(m);
}

static void client_on_closed(uv_handle_t *h)
{
    struct client *c = h->data;
    if (--c->handles > 0)
        return;
    struct metrics_http *m = c->m;
    if (c->prev)
        c->prev->next = c->next;
    else
        m->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    m->n_clients--;
    buf_free(&c->reply);
    free(c);
    maybe_free_server(m);
}

static void client_close(struct client *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, client_on_closed);
    uv_close((uv_handle_t *)&c->timer, client_on_closed);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    struct client *c = req->data;
    client_close(c);
}

static void respond(struct client *c, int code, const char *reason, const char *ctype,
                    const char *body, size_t blen)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     code, reason, ctype, blen);
    c->answered = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    struct buf *r = &c->reply;
    if (buf_append(r, head, (size_t)n) != 0 || buf_append(r, body, blen) != 0) {
        client_close(c);
        return;
    }
    uv_buf_t b = uv_buf_init(r->p, (unsigned)r->len);
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
        client_close(c);
}

static void text(struct client *c, int code, const char *reason)
{
    char body[64];
    int n = snprintf(body, sizeof(body), "%d %s\n", code, reason);
    respond(c, code, reason, "text/plain; charset=utf-8", body, (size_t)n);
}

/* The request head is complete: answer it. */
static void handle(struct client *c)
{
    /* Request-Line = Method SP Request-URI SP HTTP-Version CRLF */
    char *sp1 = memchr(c->req, ' ', c->len);
    char *eol = memchr(c->req, '\n', c->len);
    if (sp1 == NULL || eol == NULL || sp1 > eol) {
        text(c, 400, "Bad Request");
        return;
    }
    char *uri = sp1 + 1;
    char *sp2 = memchr(uri, ' ', (size_t)(eol - uri));
    if (sp2 == NULL || (size_t)(eol - sp2) < 9 || strncmp(sp2 + 1, "HTTP/1.", 7) != 0) {
        text(c, 400, "Bad Request");
        return;
    }
    size_t mlen = (size_t)(sp1 - c->req);
    bool get = mlen == 3 && memcmp(c->req, "GET", 3) == 0;
    bool headreq = mlen == 4 && memcmp(c->req, "HEAD", 4) == 0;
    size_t ulen = (size_t)(sp2 - uri);
    char *q = memchr(uri, '?', ulen);
    size_t plen = q ? (size_t)(q - uri) : ulen;
    if (!(plen == 8 && memcmp(uri, "/metrics", 8) == 0)) {
        text(c, 404, "Not Found");
        return;
    }
    if (!get && !headreq) {
        text(c, 405, "Method Not Allowed");
        return;
    }
    struct buf body;
    buf_init(&body);
    c->m->fn(c->m->arg, &body);
    respond(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body.p,
            headreq ? 0 : body.len);
    buf_free(&body);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    (void)suggested;
    struct client *c = h->data;
    size_t room = sizeof(c->req) - c->len;
    b->base = c->req + c->len;
    b->len = room;
}

static bool head_done(const struct client *c)
{
    for (size_t i = 0; i + 1 < c->len; i++) {
        if (c->req[i] == '\n' && (c->req[i + 1] == '\n' ||
                                  (c->req[i + 1] == '\r' && i + 2 < c->len && c->req[i + 2] == '\n')))
            return true;
    }
    return false;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    (void)b;
    struct client *c = s->data;
    if (c->answered || c->closing)
        return;
    if (nread < 0) {
        client_close(c);
        return;
    }
    c->len += (size_t)nread;
    if (head_done(c)) {
        handle(c);
        return;
    }
    if (c->len == sizeof(c->req))
        text(c, 431, "Request Header Fields Too Large");
}

static void timer_cb(uv_timer_t *t)
{
    struct client *c = t->data;
    client_close(c);
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct metrics_http *m = server->data;
    if (status < 0 || m->closing)
        return;
    struct client *c = calloc(1, sizeof(*c));
    if (c == NULL || m->n_clients >= METRICS_HTTP_MAX_CLIENTS) {
        /* Take it off the backlog and close it at once. */
        free(c);
        uv_tcp_t *spare = malloc(sizeof(*spare));
        if (spare == NULL)
            return;
        uv_tcp_init(server->loop, spare);
        uv_accept(server, (uv_stream_t *)spare);
        uv_close((uv_handle_t *)spare, free_handle);
        return;
    }
    c->m = m;
    buf_init(&c->reply);
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    c->next = m->clients;
    if (m->clients)
        m->clients->prev = c;
    m->clients = c;
    m->n_clients++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0) {
        client_close(c);
        return;
    }
    uv_timer_start(&c->timer, timer_cb, METRICS_HTTP_TIMEOUT_MS, 0);
}

struct metrics_http *metrics_http_open(uv_loop_t *loop, const char *host, const char *port,
                                       metrics_http_fn fn, void *arg, char *err, size_t errlen)
{
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int g = getaddrinfo(host, port, &hints, &ai);
    if (g != 0) {
        snprintf(err, errlen, "metrics %s:%s: %s", host, port, gai_strerror(g));
        return NULL;
    }
    struct metrics_http *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        freeaddrinfo(ai);
        snprintf(err, errlen, "metrics: out of memory");
        return NULL;
    }
    m->fn = fn;
    m->arg = arg;
    uv_tcp_init(loop, &m->server);
    m->server.data = m;
    int rc = uv_tcp_bind(&m->server, ai->ai_addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&m->server, 64, on_connection);
    freeaddrinfo(ai);
    if (rc != 0) {
        snprintf(err, errlen, "metrics %s:%s: %s", host, port, uv_strerror(rc));
        metrics_http_close(m);
        return NULL;
    }
    return m;
}

static void server_on_closed(uv_handle_t *h)
{
    struct metrics_http *m = h->data;
    m->server_closed = true;
    maybe_free_server(m);
}

void metrics_http_close(struct metrics_http *m)
{
    if (m == NULL || m->closing)
        return;
    m->closing = true;
    for (struct client *c = m->clients; c != NULL; c = c->next)
        client_close(c);
    uv_close((uv_handle_t *)&m->server, server_on_closed);
}
