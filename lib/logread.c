/*
 * logread: lines out of plain, gzip and zstd files.  See logread.h.
 */
#include "logread.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#define BUF_START (1u << 20)
#define IN_SIZE (256u << 10)

int logread_open(struct logread *r, int fd, enum archive_form form)
{
    memset(r, 0, sizeof(*r));
    r->fd = fd;
    r->form = form;
    r->cap = BUF_START;
    r->buf = malloc(r->cap);
    if (r->buf == NULL)
        goto nomem;
    if (form == ARCHIVE_PLAIN)
        return 0;
    if ((r->in = malloc(IN_SIZE)) == NULL)
        goto nomem;
    if (form == ARCHIVE_GZ) {
        z_stream *z = calloc(1, sizeof(*z));
        if (z == NULL)
            goto nomem;
        /* 15 + 32: a zlib or gzip header, detected. */
        if (inflateInit2(z, 15 + 32) != Z_OK) {
            free(z);
            goto nomem;
        }
        r->z = z;
    } else {
        if ((r->zd = ZSTD_createDStream()) == NULL)
            goto nomem;
        ZSTD_initDStream(r->zd);
    }
    return 0;
nomem:
    logread_close(r);
    r->fd = -1;
    return -ENOMEM;
}

int logread_open_path(struct logread *r, const char *path, enum archive_form form)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        memset(r, 0, sizeof(*r));
        r->fd = -1;
        return -errno;
    }
    return logread_open(r, fd, form);
}

void logread_set_hold(struct logread *r, bool hold)
{
    r->hold = hold;
}

void logread_close(struct logread *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    if (r->z != NULL) {
        inflateEnd(r->z);
        free(r->z);
    }
    if (r->zd != NULL)
        ZSTD_freeDStream(r->zd);
    free(r->buf);
    free(r->in);
    r->z = r->zd = NULL;
    r->buf = r->in = NULL;
}

static ssize_t read_some(int fd, void *p, size_t n)
{
    for (;;) {
        ssize_t k = read(fd, p, n);
        if (k >= 0 || errno != EINTR)
            return k < 0 ? -errno : k;
    }
}

/* More compressed input; false at its end. */
static int refill_in(struct logread *r)
{
    if (r->in_pos < r->in_len)
        return 1;
    if (r->in_eof)
        return 0;
    ssize_t k = read_some(r->fd, r->in, IN_SIZE);
    if (k < 0)
        return (int)k;
    r->in_pos = 0;
    r->in_len = (size_t)k;
    if (k == 0)
        r->in_eof = true;
    return k > 0;
}

/* One call of the decompressor on the input at in_pos into out: bytes made,
 * whether a gzip member or zstd frame ended, or a negative errno. */
static ssize_t step_gz(struct logread *r, char *out, size_t room, bool *frame_end)
{
    z_stream *z = r->z;
    z->next_in = (Bytef *)r->in + r->in_pos;
    z->avail_in = (uInt)(r->in_len - r->in_pos);
    z->next_out = (Bytef *)out;
    z->avail_out = (uInt)room;
    int zr = inflate(z, Z_NO_FLUSH);
    size_t used = (r->in_len - r->in_pos) - z->avail_in;
    r->in_pos += used;
    r->in_total += used;
    if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT || zr == Z_STREAM_ERROR)
        return -EBADMSG;
    if (zr == Z_MEM_ERROR)
        return -ENOMEM;
    *frame_end = zr == Z_STREAM_END;
    return (ssize_t)(room - z->avail_out);
}

static ssize_t step_zst(struct logread *r, char *out, size_t room, bool *frame_end)
{
    ZSTD_inBuffer zin = {r->in, r->in_len, r->in_pos};
    ZSTD_outBuffer zout = {out, room, 0};
    size_t left = ZSTD_decompressStream(r->zd, &zout, &zin);
    r->in_total += zin.pos - r->in_pos;
    r->in_pos = zin.pos;
    if (ZSTD_isError(left))
        return -EBADMSG;
    *frame_end = left == 0;
    return (ssize_t)zout.pos;
}

/* Decompress into buf[end..cap): bytes produced, 0 at the clean end (the
 * input ends right after a whole member or frame), -ENODATA when it ends
 * inside one. */
static ssize_t fill_compressed(struct logread *r)
{
    size_t room = r->cap - r->end;
    for (;;) {
        if (r->eof)
            return 0;
        int m = refill_in(r);
        if (m < 0)
            return m;
        if (m == 0)
            return -ENODATA;
        bool frame_end = false;
        ssize_t made = r->form == ARCHIVE_GZ ? step_gz(r, r->buf + r->end, room, &frame_end)
                                             : step_zst(r, r->buf + r->end, room, &frame_end);
        if (made < 0)
            return made;
        if (frame_end) {
            /* Another member or frame may follow (gzip -c a b > c). */
            int more = refill_in(r);
            if (more < 0)
                return more;
            if (more == 0)
                r->eof = true;
            else if (r->form == ARCHIVE_GZ)
                inflateReset(r->z);
        }
        if (made > 0)
            return made;
    }
}

/* Make room and read more: bytes added, 0 at end of data, or an error.
 * -E2BIG when the buffer is full of one line at its largest. */
static ssize_t fill(struct logread *r)
{
    if (r->err != 0)
        return r->err;
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->end - r->start);
        r->base += r->start;
        r->end -= r->start;
        r->scan -= r->start;
        r->start = 0;
    }
    if (r->end == r->cap) {
        if (r->cap >= LOGREAD_LINE_MAX)
            return -E2BIG;
        char *nb = realloc(r->buf, r->cap * 2);
        if (nb == NULL)
            return -ENOMEM;
        r->buf = nb;
        r->cap *= 2;
    }
    ssize_t k;
    if (r->form == ARCHIVE_PLAIN) {
        k = read_some(r->fd, r->buf + r->end, r->cap - r->end);
        r->eof = k == 0;
    } else {
        k = fill_compressed(r);
    }
    if (k < 0) {
        r->err = (int)k;
        return k;
    }
    r->end += (size_t)k;
    return k;
}

int logread_next(struct logread *r, struct logread_line *l)
{
    for (;;) {
        char *nl = memchr(r->buf + r->scan, '\n', r->end - r->scan);
        if (nl != NULL) {
            l->p = r->buf + r->start;
            l->len = (size_t)(nl - l->p);
            l->off = r->base + r->start;
            l->partial = l->cut = false;
            r->start = r->scan = (size_t)(nl - r->buf) + 1;
            return 1;
        }
        r->scan = r->end;
        ssize_t k = fill(r);
        if (k > 0)
            continue;
        if (k == -E2BIG) {
            /* A line as long as the buffer: give it in one piece. */
            r->err = 0;
            l->p = r->buf + r->start;
            l->len = r->end - r->start;
            l->off = r->base + r->start;
            l->partial = false;
            l->cut = true;
            r->start = r->scan = r->end;
            return 1;
        }
        if (k < 0)
            return (int)k;
        if (r->end == r->start || r->hold)
            return 0;
        l->p = r->buf + r->start;
        l->len = r->end - r->start;
        l->off = r->base + r->start;
        l->partial = true;
        l->cut = false;
        r->start = r->scan = r->end;
        return 1;
    }
}

int logread_block(struct logread *r, const char **p, size_t *n, uint64_t *off)
{
    for (;;) {
        /* The last newline buffered ends the block. */
        const char *s = r->buf + r->start;
        size_t have = r->end - r->start;
        const char *last = have > 0 ? memrchr(s, '\n', have) : NULL;
        if (last != NULL) {
            *p = s;
            *n = (size_t)(last - s) + 1;
            *off = r->base + r->start;
            r->start = r->scan = (size_t)(last - r->buf) + 1;
            return 1;
        }
        r->scan = r->end;
        ssize_t k = fill(r);
        if (k > 0)
            continue;
        /* No newline left: what remains is a partial or overlong line,
         * which logread_next() knows how to give. */
        struct logread_line l;
        int rc = logread_next(r, &l);
        if (rc <= 0)
            return rc;
        *p = l.p;
        *n = l.len;
        *off = l.off;
        return 1;
    }
}

int logread_skip_to(struct logread *r, uint64_t off)
{
    uint64_t at = r->base + r->start;
    if (off < at)
        return -EINVAL;
    if (r->form == ARCHIVE_PLAIN) {
        if (off <= r->base + r->end) {
            r->start = r->scan = (size_t)(off - r->base);
            return 0;
        }
        if (lseek(r->fd, (off_t)off, SEEK_SET) < 0)
            return -errno;
        r->base = off;
        r->start = r->end = r->scan = 0;
        r->eof = false;
        return 0;
    }
    while (r->base + r->end < off) {
        r->start = r->scan = r->end; /* discard */
        ssize_t k = fill(r);
        if (k < 0)
            return (int)k;
        if (k == 0)
            return -ENODATA;
    }
    r->start = r->scan = (size_t)(off - r->base);
    return 0;
}

uint64_t logread_tell(const struct logread *r)
{
    return r->base + r->start;
}

uint64_t logread_in_offset(const struct logread *r)
{
    return r->form == ARCHIVE_PLAIN ? logread_tell(r) : r->in_total;
}

const char *logread_strerror(const struct logread *r, int err)
{
    if (err == -ENODATA)
        return r->form == ARCHIVE_GZ   ? "truncated gzip stream (the file ends early)"
               : r->form == ARCHIVE_ZST ? "truncated zstd stream (the file ends early)"
                                        : "file shorter than expected";
    if (err == -EBADMSG)
        return r->form == ARCHIVE_GZ ? "corrupt gzip data" : "corrupt zstd data";
    return strerror(-err);
}
