#include "frame.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Where the state machine stands between two feeds. */
enum frame_state {
    ST_START = 0,  /* nothing seen: the first byte picks the mode */
    ST_LINE,       /* LF mode: collecting a line (buf holds its start) */
    ST_LINE_SKIP,  /* LF mode: discarding the rest of a truncated line */
    ST_COUNT,      /* octet mode: reading MSG-LEN */
    ST_BODY,       /* octet mode: collecting the frame's body */
    ST_BODY_SKIP,  /* octet mode: discarding the rest of a truncated body */
};

/* The first allocation of the partial buffer.  Most messages that span two
 * reads are short; growing by doubling keeps idle connections small. */
#define FRAME_FIRST_ALLOC 256

int frame_init(struct frame *f, size_t max_message)
{
    if (f == NULL || max_message < FRAME_MIN_MESSAGE ||
        max_message >= UINT32_MAX)
        return -EINVAL;
    memset(f, 0, sizeof(*f));
    f->max_message = max_message;
    f->mode = FRAME_MODE_UNKNOWN;
    f->state = ST_START;
    return 0;
}

void frame_free(struct frame *f)
{
    if (f == NULL)
        return;
    free(f->buf);
    f->buf = NULL;
    f->buf_cap = 0;
    f->buf_len = 0;
}

enum frame_mode frame_mode(const struct frame *f)
{
    return (enum frame_mode)f->mode;
}

/* Make room for `need` bytes in the partial buffer.  need never exceeds
 * max_message + 1, which bounds what one connection holds. */
static int frame_reserve(struct frame *f, size_t need)
{
    size_t cap;
    char *nb;

    assert(need <= f->max_message + 1);
    if (need <= f->buf_cap)
        return 0;
    cap = f->buf_cap ? f->buf_cap : FRAME_FIRST_ALLOC;
    while (cap < need)
        cap *= 2;
    if (cap > f->max_message + 1)
        cap = f->max_message + 1;
    nb = realloc(f->buf, cap);
    if (nb == NULL)
        return -ENOMEM;
    f->buf = nb;
    f->buf_cap = cap;
    return 0;
}

/* Append to the partial buffer.  On -ENOMEM the caller drops the message
 * being collected rather than emit it with a hole in it. */
static int frame_append(struct frame *f, const char *p, size_t n)
{
    int err;

    if (n == 0)
        return 0;
    err = frame_reserve(f, f->buf_len + n);
    if (err != 0)
        return err;
    memcpy(f->buf + f->buf_len, p, n);
    f->buf_len += n;
    return 0;
}

/* A bad octet count: the digits read so far start a line, the byte that
 * broke the count is framed again as part of it, and the connection is
 * newline-framed from now on. */
static int frame_bad_count(struct frame *f)
{
    int err;

    f->mode = FRAME_MODE_LF;
    f->state = ST_LINE;
    f->flags = FRAME_BAD_COUNT;
    f->buf_len = 0;
    err = frame_append(f, f->digits, f->ndigits);
    f->ndigits = 0;
    f->count = 0;
    if (err != 0)
        f->state = ST_LINE_SKIP;
    return err;
}

/* The end of a line in LF mode: the first LF or NUL.  glibc's syslog(3)
 * and Python's SysLogHandler end each message on a stream socket with a
 * NUL and no LF, so a NUL must end a message too. */
static const char *find_eol(const char *p, const char *e)
{
    const char *nl = memchr(p, '\n', (size_t)(e - p));
    const char *nul = memchr(p, '\0', (size_t)((nl ? nl : e) - p));
    return nul ? nul : nl;
}

/* LF mode: frame [p, e).  Returns what a failing emit returned, or 0; an
 * allocation failure drops the line being collected, sets *oom and goes on. */
static int frame_lines(struct frame *f, const char *p, const char *e,
                       frame_emit_fn emit, void *ctx, int *oom)
{
    const size_t max = f->max_message;

    while (p < e) {
        const char *nl = find_eol(p, e);

        if (f->state == ST_LINE_SKIP) {
            if (nl == NULL)
                return 0;
            p = nl + 1;
            f->state = ST_LINE;
            continue;
        }
        assert(f->state == ST_LINE);

        if (nl != NULL) {
            const char *start = p;
            size_t seg = (size_t)(nl - p);
            size_t total = f->buf_len + seg;
            unsigned flags = f->flags;
            int err;

            if (total > 0) {
                char last = seg > 0 ? nl[-1] : f->buf[f->buf_len - 1];
                if (last == '\r')
                    total--;
            }
            if (total > max) {
                total = max;
                flags |= FRAME_TRUNCATED;
            }
            p = nl + 1;
            f->flags = 0;
            if (total == 0) {
                f->buf_len = 0;
                continue; /* an empty line carries nothing */
            }
            if (f->buf_len == 0) {
                err = emit(ctx, start, total, flags);
            } else {
                /* The partial buffer holds at most max + 1 bytes and total
                 * is at most max, so this copy is bounded too. */
                err = 0;
                if (f->buf_len < total)
                    err = frame_append(f, start, total - f->buf_len);
                f->buf_len = 0;
                if (err != 0) {
                    *oom = err;
                    continue;
                }
                err = emit(ctx, f->buf, total, flags);
            }
            if (err != 0)
                return err;
            continue;
        }

        /* No LF in the rest: keep it, up to max + 1 bytes (the extra byte
         * may be the CR of a CRLF that ends a line of exactly max). */
        size_t rest = (size_t)(e - p);
        if (f->buf_len + rest <= max + 1) {
            int err = frame_append(f, p, rest);
            if (err != 0) {
                *oom = err;
                f->buf_len = 0;
                f->flags = 0;
                f->state = ST_LINE_SKIP;
            }
            return 0;
        }

        /* The line is longer than max whatever follows: emit its first max
         * bytes now and discard the rest up to its LF. */
        unsigned flags = f->flags | FRAME_TRUNCATED;
        int err = 0;
        f->flags = 0;
        f->state = ST_LINE_SKIP;
        if (f->buf_len == 0)
            return emit(ctx, p, max, flags);
        if (f->buf_len < max)
            err = frame_append(f, p, max - f->buf_len);
        f->buf_len = 0;
        if (err != 0) {
            *oom = err;
            return 0;
        }
        return emit(ctx, f->buf, max, flags);
    }
    return 0;
}

/* Octet mode: frame [*pp, e) and leave *pp where it stopped.  Returns what a
 * failing emit returned, or 0.  After a bad count f->mode is LF and *pp
 * points at the byte that broke the count, for frame_lines() to take. */
static int frame_octets(struct frame *f, const char **pp, const char *e,
                        frame_emit_fn emit, void *ctx, int *oom)
{
    const char *p = *pp;
    int err = 0;

    while (p < e && err == 0 && f->mode == FRAME_MODE_OCTET) {
        switch (f->state) {
        case ST_COUNT: {
            unsigned char c = (unsigned char)*p;

            if (c >= '0' && c <= '9') {
                /* No leading zero, no eleventh digit. */
                if (f->ndigits == 10 || (f->ndigits == 0 && c == '0')) {
                    *oom = frame_bad_count(f) ? -ENOMEM : *oom;
                    break;
                }
                f->digits[f->ndigits++] = (char)c;
                f->count = f->count * 10 + (c - '0');
                p++;
            } else if (c == ' ' && f->ndigits > 0) {
                if (f->count > UINT32_MAX) {
                    *oom = frame_bad_count(f) ? -ENOMEM : *oom;
                    break;
                }
                p++;
                f->remain = f->count;
                f->ndigits = 0;
                f->buf_len = 0;
                f->state = ST_BODY;
            } else if ((c == '\n' || c == '\r') && f->ndigits == 0) {
                p++; /* a line ending between frames: tolerated */
            } else {
                *oom = frame_bad_count(f) ? -ENOMEM : *oom;
            }
            break;
        }
        case ST_BODY: {
            /* The part of the body we keep: its first max bytes. */
            size_t keep = f->count > f->max_message ? f->max_message
                                                    : (size_t)f->count;
            unsigned flags = f->count > f->max_message ? FRAME_TRUNCATED : 0;
            size_t have = (size_t)(f->count - f->remain);
            size_t avail = (size_t)(e - p);
            size_t n = keep - have < avail ? keep - have : avail;
            const char *start = p;

            assert(have < keep);
            p += n;
            f->remain -= n;
            if (have + n < keep) {
                if (frame_append(f, start, n) != 0) {
                    /* The body is lost; skip what is left of it. */
                    *oom = -ENOMEM;
                    f->buf_len = 0;
                    f->state = ST_BODY_SKIP;
                }
                break;
            }
            /* The kept part is complete. */
            f->state = f->remain ? ST_BODY_SKIP : ST_COUNT;
            f->count = 0;
            if (have == 0) {
                err = emit(ctx, start, keep, flags); /* wholly in buf */
            } else if (frame_append(f, start, n) != 0) {
                *oom = -ENOMEM;
                f->buf_len = 0;
            } else {
                f->buf_len = 0;
                err = emit(ctx, f->buf, keep, flags);
            }
            break;
        }
        case ST_BODY_SKIP: {
            size_t avail = (size_t)(e - p);
            size_t n = f->remain < avail ? (size_t)f->remain : avail;

            p += n;
            f->remain -= n;
            if (f->remain == 0)
                f->state = ST_COUNT;
            break;
        }
        default:
            assert(0 && "frame: octet state expected");
            return -EINVAL;
        }
    }
    *pp = p;
    return err;
}

int frame_feed(struct frame *f, const char *buf, size_t len,
               frame_emit_fn emit, void *ctx)
{
    const char *p = buf;
    const char *e;
    int oom = 0;
    int err;

    if (f == NULL || emit == NULL || (buf == NULL && len > 0))
        return -EINVAL;
    if (len == 0)
        return 0;
    e = buf + len;
    if (f->state == ST_START) {
        if (*p >= '0' && *p <= '9') {
            f->mode = FRAME_MODE_OCTET;
            f->state = ST_COUNT;
        } else {
            f->mode = FRAME_MODE_LF;
            f->state = ST_LINE;
        }
    }
    if (f->mode == FRAME_MODE_OCTET) {
        err = frame_octets(f, &p, e, emit, ctx, &oom);
        if (err != 0)
            return err;
    }
    if (f->mode == FRAME_MODE_LF) {
        err = frame_lines(f, p, e, emit, ctx, &oom);
        if (err != 0)
            return err;
    }
    return oom;
}

int frame_finish(struct frame *f, frame_emit_fn emit, void *ctx)
{
    int err = 0;
    size_t n;

    if (f == NULL || emit == NULL)
        return -EINVAL;
    switch (f->state) {
    case ST_LINE:
        n = f->buf_len;
        if (n > 0 && f->buf[n - 1] == '\r')
            n--;
        if (n > f->max_message) /* max + 1 bytes held, no CR among them */
            err = emit(ctx, f->buf, f->max_message, f->flags | FRAME_TRUNCATED);
        else if (n > 0)
            err = emit(ctx, f->buf, n, f->flags);
        break;
    case ST_COUNT:
        if (f->ndigits > 0)
            err = emit(ctx, f->digits, f->ndigits, FRAME_INCOMPLETE);
        break;
    case ST_BODY:
        if (f->buf_len > 0)
            err = emit(ctx, f->buf, f->buf_len, FRAME_INCOMPLETE);
        break;
    default:
        break;
    }

    /* Back to a fresh connection, keeping the buffer for reuse. */
    char *b = f->buf;
    size_t cap = f->buf_cap, max = f->max_message;
    memset(f, 0, sizeof(*f));
    f->buf = b;
    f->buf_cap = cap;
    f->max_message = max;
    return err;
}

void frame_trim_datagram(const char *p, size_t *len)
{
    size_t n;

    if (p == NULL || len == NULL)
        return;
    n = *len;
    if (n > 0 && p[n - 1] == '\0')
        n--;
    if (n > 0 && p[n - 1] == '\n') {
        n--;
        if (n > 0 && p[n - 1] == '\r')
            n--;
    }
    *len = n;
}

unsigned frame_datagram(const char *p, size_t *len, size_t max_message)
{
    if (p == NULL || len == NULL)
        return 0;
    frame_trim_datagram(p, len);
    if (*len > max_message) {
        *len = max_message;
        return FRAME_TRUNCATED;
    }
    return 0;
}

bool frame_strip_count(const char **p, size_t *len)
{
    if (p == NULL || *p == NULL || len == NULL)
        return false;
    const char *s = *p;
    size_t n = *len, i = 0;
    uint64_t count = 0;
    if (n == 0 || s[0] < '1' || s[0] > '9')
        return false;
    while (i < n && i < 10 && s[i] >= '0' && s[i] <= '9')
        count = count * 10 + (uint64_t)(s[i++] - '0');
    if (i >= n || s[i] != ' ' || count != n - i - 1)
        return false;
    *p = s + i + 1;
    *len = n - i - 1;
    return true;
}
