/*
 * output_wall: records written to the terminals of the users logged in,
 * as rsyslog's `*.emerg :omusrmsg:*` does.
 *
 *   { type = "wall"; path = "/var/run/utmp"; filter = { severity = "emerg"; }; }
 *
 * path is the utmp file that lists who is logged in where.  After each
 * batch the records it took are written to every USER_PROCESS entry's
 * terminal (/dev/LINE), opened non-blocking for that one write: a terminal
 * that is not read (a stopped screen, a full pty) loses the message
 * rather than holding the writer, and so every other output, back.  A
 * line that could climb out of /dev ("..") is skipped.  Lines end in
 * "\r\n", as a terminal in raw mode needs.  A batch's text is bounded
 * (WALL_MAX): an emergency flood is not a reason to fill terminals.
 *
 * Writer thread only (output.h); no threads of its own.  utmpxname() and
 * getutxent() keep static state, which only this file touches.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <utmpx.h>

#include "log.h"
#include "output.h"

#define WALL_MAX (16 * 1024)

struct wall_output {
    struct buf text; /* formatted records of this batch */
    size_t dropped;  /* records past WALL_MAX in this batch */
    size_t n;        /* records in text */
};

static struct wall_output *wo_of(struct output *o)
{
    return o->state;
}

static bool wall_claims(const struct output_conf *oc)
{
    return oc->type == OUTPUT_WALL;
}

static int wall_open(struct output *o, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct wall_output *wo = calloc(1, sizeof(*wo));
    if (wo == NULL)
        return -ENOMEM;
    buf_init(&wo->text);
    o->state = wo;
    return 0;
}

static int wall_accept(struct output *o, const struct record *r)
{
    struct wall_output *wo = wo_of(o);
    if (wo->text.len >= WALL_MAX) {
        wo->dropped++;
        return 0;
    }
    int rc = format_record(&o->fmt, r, &wo->text);
    if (rc < 0)
        return rc;
    wo->n++;
    return 0;
}

/* The batch's text as a terminal wants it: a header, "\r\n" line ends. */
static int wall_message(struct wall_output *wo, const char *host, struct buf *out)
{
    char head[320];
    int n = snprintf(head, sizeof(head), "\r\n\aMessage from lograild@%s:\r\n", host);
    if (buf_append(out, head, (size_t)n) != 0)
        return -ENOMEM;
    for (size_t i = 0; i < wo->text.len; i++) {
        char c = wo->text.p[i];
        if (c == '\n' && buf_append(out, "\r", 1) != 0)
            return -ENOMEM;
        if (buf_append(out, &c, 1) != 0)
            return -ENOMEM;
    }
    if (wo->dropped > 0) {
        n = snprintf(head, sizeof(head), "(%zu more messages not shown)\r\n", wo->dropped);
        if (buf_append(out, head, (size_t)n) != 0)
            return -ENOMEM;
    }
    return 0;
}

static void wall_flush(struct output *o, uint64_t now_ms, bool force_sync)
{
    (void)now_ms;
    (void)force_sync;
    struct wall_output *wo = wo_of(o);
    if (wo->text.len == 0)
        return;
    struct buf msg;
    buf_init(&msg);
    if (wall_message(wo, o->env->host, &msg) != 0) {
        counter_add(&o->st->write_errors, 1);
        goto out;
    }
    if (utmpxname(o->oc->path) != 0) {
        counter_add(&o->st->write_errors, 1);
        goto out;
    }
    setutxent();
    bool told = false;
    struct utmpx *u;
    while ((u = getutxent()) != NULL) {
        char line[sizeof(u->ut_line) + 1];
        if (u->ut_type != USER_PROCESS)
            continue;
        memcpy(line, u->ut_line, sizeof(u->ut_line));
        line[sizeof(u->ut_line)] = '\0';
        if (line[0] == '\0' || strstr(line, "..") != NULL)
            continue;
        char dev[sizeof(line) + 8];
        snprintf(dev, sizeof(dev), "/dev/%s", line);
        int fd = open(dev, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            continue; /* gone, or not ours to write: as wall(1), no error */
        ssize_t w = write(fd, msg.p, msg.len);
        close(fd);
        if (w == (ssize_t)msg.len) {
            told = true;
            counter_add(&o->st->bytes, msg.len);
        }
    }
    endutxent();
    /* records: those that reached at least one terminal. */
    if (told)
        counter_add(&o->st->records, wo->n);
out:
    buf_free(&msg);
    wo->text.len = 0;
    wo->dropped = 0;
    wo->n = 0;
}

static uint64_t wall_next_wait_ms(struct output *o, uint64_t now_ms, uint64_t wait)
{
    (void)o;
    (void)now_ms;
    return wait;
}

static void wall_reopen(struct output *o)
{
    (void)o; /* nothing is kept open */
}

static void wall_free(struct output *o)
{
    struct wall_output *wo = wo_of(o);
    if (wo == NULL)
        return;
    buf_free(&wo->text);
    free(wo);
    o->state = NULL;
}

const struct output_kind output_wall_kind = {
    .name = "wall",
    .claims = wall_claims,
    .open = wall_open,
    .accept = wall_accept,
    .flush = wall_flush,
    .tick = NULL,
    .next_wait_ms = wall_next_wait_ms,
    .reopen = wall_reopen,
    .rotate = NULL,
    .close = NULL,
    .free = wall_free,
    .stats = NULL,
};
