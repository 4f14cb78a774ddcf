#include "control.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "listener.h"
#include "log.h"

#define MAX_COMMAND 256

struct control {
    uv_pipe_t server;
    char *path;
    control_fn fn;
    void *arg;
    struct client *clients;
};

struct client {
    uv_pipe_t pipe;
    struct control *ctl;
    struct client *next;
    char line[MAX_COMMAND];
    size_t len;
    bool answered;
    struct buf reply;
    uv_write_t wr;
};

static void client_closed(uv_handle_t *h)
{
    struct client *cl = h->data;
    buf_free(&cl->reply);
    free(cl);
}

static void client_close(struct client *cl)
{
    struct control *ctl = cl->ctl;
    if (ctl != NULL) {
        for (struct client **p = &ctl->clients; *p; p = &(*p)->next) {
            if (*p == cl) {
                *p = cl->next;
                break;
            }
        }
        cl->ctl = NULL;
    }
    if (!uv_is_closing((uv_handle_t *)&cl->pipe))
        uv_close((uv_handle_t *)&cl->pipe, client_closed);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    client_close(req->data);
}

static void answer(struct client *cl)
{
    if (cl->answered)
        return;
    cl->answered = true;
    uv_read_stop((uv_stream_t *)&cl->pipe);
    cl->line[cl->len] = '\0';
    cl->ctl->fn(cl->ctl->arg, cl->line, &cl->reply);
    uv_buf_t b = uv_buf_init(cl->reply.p ? cl->reply.p : (char *)"", (unsigned)cl->reply.len);
    cl->wr.data = cl;
    if (uv_write(&cl->wr, (uv_stream_t *)&cl->pipe, &b, 1, on_written) != 0)
        client_close(cl);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct client *cl = h->data;
    buf->base = cl->line + cl->len;
    buf->len = sizeof(cl->line) - 1 - cl->len;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct client *cl = s->data;
    if (n < 0) {
        /* EOF without a newline: the command is what came. */
        if (n == UV_EOF && cl->len > 0)
            answer(cl);
        else
            client_close(cl);
        return;
    }
    char *nl = memchr(cl->line + cl->len, '\n', (size_t)n);
    cl->len += (size_t)n;
    if (nl != NULL) {
        cl->len = (size_t)(nl - cl->line);
        if (cl->len > 0 && cl->line[cl->len - 1] == '\r')
            cl->len--;
        answer(cl);
    } else if (cl->len >= sizeof(cl->line) - 1) {
        answer(cl); /* too long: the handler says it is unknown */
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    struct control *ctl = server->data;
    if (status < 0)
        return;
    struct client *cl = calloc(1, sizeof(*cl));
    if (cl == NULL)
        return;
    uv_pipe_init(server->loop, &cl->pipe, 0);
    cl->pipe.data = cl;
    cl->ctl = ctl;
    buf_init(&cl->reply);
    if (uv_accept(server, (uv_stream_t *)&cl->pipe) != 0) {
        uv_close((uv_handle_t *)&cl->pipe, client_closed);
        return;
    }
    cl->next = ctl->clients;
    ctl->clients = cl;
    uv_read_start((uv_stream_t *)&cl->pipe, on_alloc, on_read);
}

struct control *control_open(uv_loop_t *loop, const char *path, unsigned mode, control_fn fn,
                             void *arg, char *err, size_t errlen)
{
    struct listen_conf lc = {.path = (char *)path, .type = LISTEN_STREAM, .mode = mode};
    int fd = listener_open(&lc, false, err, errlen);
    if (fd < 0)
        return NULL;
    struct control *ctl = calloc(1, sizeof(*ctl));
    if (ctl == NULL || (ctl->path = strdup(path)) == NULL) {
        free(ctl);
        close(fd);
        unlink(path);
        snprintf(err, errlen, "control %s: out of memory", path);
        return NULL;
    }
    ctl->fn = fn;
    ctl->arg = arg;
    uv_pipe_init(loop, &ctl->server, 0);
    ctl->server.data = ctl;
    int rc = uv_pipe_open(&ctl->server, fd);
    if (rc != 0)
        close(fd); /* not libuv's yet */
    else
        rc = uv_listen((uv_stream_t *)&ctl->server, 16, on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "control %s: %s", path, uv_strerror(rc));
        control_close(ctl);
        return NULL;
    }
    return ctl;
}

static void server_closed(uv_handle_t *h)
{
    struct control *ctl = h->data;
    free(ctl->path);
    free(ctl);
}

void control_close(struct control *ctl)
{
    if (ctl == NULL)
        return;
    while (ctl->clients != NULL)
        client_close(ctl->clients);
    unlink(ctl->path);
    uv_close((uv_handle_t *)&ctl->server, server_closed);
}
