/*
 * libFuzzer target for lib/frame.c.
 *
 * The first two bytes choose max_message and how the rest is cut into
 * feeds.  The rest is framed twice, in one feed and in those chunks; both
 * must give the same messages with the same flags, every message must be
 * 1..max_message bytes, and the framer must never hold more than
 * max_message + 1 bytes.  Any difference aborts.
 *
 * The same bytes are then taken as one datagram, as the daemon's datagram
 * path takes them (frame_strip_count(), frame_datagram()): what is left
 * must lie inside the input, be at most max_message bytes, and a stripped
 * count must have counted exactly what follows it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every message as (len, flags, bytes), concatenated. */
struct out {
    struct fuzz_out buf;
    size_t max;
    size_t count;
};

static int collect(void *ctx, const char *msg, size_t len, unsigned flags)
{
    struct out *o = ctx;

    if (len == 0 || len > o->max)
        abort();
    if (flags & ~(unsigned)(FRAME_TRUNCATED | FRAME_INCOMPLETE | FRAME_BAD_COUNT))
        abort();
    fuzz_out_put(&o->buf, &len, sizeof(len));
    fuzz_out_put(&o->buf, &flags, sizeof(flags));
    fuzz_out_put(&o->buf, msg, len);
    o->count++;
    return 0;
}

static void run(struct out *o, const uint8_t *p, size_t n, size_t max,
                unsigned seed, int chunked)
{
    struct frame f;
    size_t off = 0;

    memset(o, 0, sizeof(*o));
    o->max = max;
    if (frame_init(&f, max) != 0)
        abort();
    while (off < n) {
        size_t c = n - off;
        if (chunked) {
            seed = seed * 1103515245u + 12345u;
            /* Mostly small chunks, sometimes a big one. */
            c = (seed >> 16) % 8 == 0 ? (seed >> 8) % 512 + 1
                                      : (seed >> 16) % 7 + 1;
            if (c > n - off)
                c = n - off;
        }
        /* A buffer of its own, so that ASan sees a read past the chunk. */
        char *b = malloc(c);
        if (b == NULL)
            abort();
        memcpy(b, p + off, c);
        if (frame_feed(&f, b, c, collect, o) != 0)
            abort();
        free(b);
        if (f.buf_cap > max + 1)
            abort();
        off += c;
    }
    if (frame_finish(&f, collect, o) != 0)
        abort();
    frame_free(&f);
}

static void run_datagram(const uint8_t *data, size_t size, size_t max)
{
    /* A buffer of its own, so that ASan sees a read past the datagram. */
    char *b = malloc(size ? size : 1);
    if (b == NULL)
        abort();
    memcpy(b, data, size);
    const char *p = b;
    size_t len = size;
    if (frame_strip_count(&p, &len)) {
        if (p <= b || p > b + size || len != size - (size_t)(p - b) || p[-1] != ' ')
            abort();
        size_t count = 0;
        for (const char *q = b; q < p - 1; q++)
            count = count * 10 + (size_t)(*q - '0');
        if (count != len)
            abort();
    } else if (p != b || len != size) {
        abort();
    }
    size_t before = len;
    unsigned fl = frame_datagram(p, &len, max);
    if (len > before || len > max || (fl != 0 && fl != FRAME_TRUNCATED))
        abort();
    if (fl == FRAME_TRUNCATED && len != max)
        abort();
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct out whole, parts;

    if (size < 2)
        return 0;
    size_t max = FRAME_MIN_MESSAGE + data[0] % 64;
    unsigned seed = data[1];
    data += 2;
    size -= 2;

    run(&whole, data, size, max, seed, 0);
    run(&parts, data, size, max, seed, 1);
    if (whole.buf.len != parts.buf.len || whole.count != parts.count ||
        (whole.buf.len && memcmp(whole.buf.b, parts.buf.b, whole.buf.len) != 0))
        abort();
    free(whole.buf.b);
    free(parts.buf.b);
    run_datagram(data, size, max);
    return 0;
}
