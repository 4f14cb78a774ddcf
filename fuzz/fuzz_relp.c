/*
 * libFuzzer target for lib/relp.c.
 *
 * The first two bytes choose max_data and how the rest is cut into chunks.
 * The rest is parsed as a RELP stream twice, in one chunk and in those
 * chunks; both must give the same frames ending at the same stream offsets
 * and stop with the same error.  Every frame must hold at most max_data
 * bytes, the parser must never hold more, and each frame, encoded again,
 * must be exactly the bytes it was parsed from when it had no leading
 * zeros.  The data of every frame also goes through the rsp and offer
 * parsers, which must stay inside it.  Any difference aborts.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "relp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every frame as (end offset, txnr, datalen, command, data), concatenated,
 * then the final status. */
/* The data parsers must neither crash nor read outside the frame. */
static void check_data(const struct relp_frame *f)
{
    struct relp_rsp r;
    struct relp_open op;

    if (relp_rsp_parse(f->data, f->datalen, &r) == 0) {
        if (r.code < 0 || r.code > 999 || r.text < f->data ||
            r.text + r.textlen > f->data + f->datalen)
            abort();
        if (r.data != NULL && (r.data < f->data ||
                               r.data + r.datalen != f->data + f->datalen))
            abort();
        if (r.data != NULL)
            (void)relp_open_parse(r.data, r.datalen, &op);
    }
    if (relp_open_parse(f->data, f->datalen, &op) == 0 && op.software &&
        (op.software < f->data ||
         op.software + op.softwarelen > f->data + f->datalen))
        abort();
}

/* Encoding the frame again gives the bytes it came from, unless the sender
 * wrote a number with leading zeros (which the grammar allows). */
static void check_reencode(const struct relp_frame *f, const uint8_t *src,
                           size_t srclen)
{
    size_t n = relp_frame_size(f->txnr, strlen(f->command), f->datalen);
    char *b = malloc(n);
    ssize_t w;

    if (b == NULL)
        abort();
    w = relp_encode(b, n, f->txnr, f->command, f->data, f->datalen);
    if (w < 0 || (size_t)w != n)
        abort();
    if (srclen == n && memcmp(b, src, n) != 0)
        abort();
    if (srclen < n)
        abort();
    free(b);
}

static void run(struct fuzz_out *o, const uint8_t *p, size_t n, uint32_t max,
                unsigned seed, int chunked)
{
    struct relp_parser ps;
    size_t off = 0, frame_start = 0;
    int status = 0;

    memset(o, 0, sizeof(*o));
    if (relp_parser_init(&ps, max) != 0)
        abort();
    while (off < n && status >= 0) {
        size_t c = n - off;
        if (chunked) {
            seed = seed * 1103515245u + 12345u;
            c = (seed >> 16) % 8 == 0 ? (seed >> 8) % 512 + 1
                                      : (seed >> 16) % 7 + 1;
            if (c > n - off)
                c = n - off;
        }
        /* A buffer of its own, so that ASan sees a read past the chunk. */
        char *b = malloc(c);
        size_t at = 0;
        if (b == NULL)
            abort();
        memcpy(b, p + off, c);
        while (at < c) {
            struct relp_frame f;
            size_t used;
            int rc = relp_parser_next(&ps, b + at, c - at, &used, &f);

            if (used > c - at)
                abort();
            if (rc < 0) {
                if (rc != -EPROTO && rc != -EMSGSIZE)
                    abort();
                status = rc;
                break;
            }
            at += used;
            if (rc == 0) {
                if (at != c)
                    abort();
                break;
            }
            if (f.datalen > max || ps.buf_cap > max ||
                (f.datalen > 0) != (f.data != NULL))
                abort();
            size_t end = off + at;
            check_reencode(&f, p + frame_start, end - frame_start);
            check_data(&f);
            frame_start = end;
            fuzz_out_put(o, &end, sizeof(end));
            fuzz_out_put(o, &f.txnr, sizeof(f.txnr));
            fuzz_out_put(o, &f.datalen, sizeof(f.datalen));
            fuzz_out_put(o, f.command, strlen(f.command) + 1);
            if (f.datalen)
                fuzz_out_put(o, f.data, f.datalen);
        }
        free(b);
        off += c;
    }
    fuzz_out_put(o, &status, sizeof(status));
    relp_parser_free(&ps);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_out whole, parts;

    if (size < 2)
        return 0;
    uint32_t max = 1 + (uint32_t)data[0] * 4;
    unsigned seed = data[1];
    data += 2;
    size -= 2;

    run(&whole, data, size, max, seed, 0);
    run(&parts, data, size, max, seed, 1);
    if (whole.len != parts.len || memcmp(whole.b, parts.b, whole.len) != 0)
        abort();
    free(whole.b);
    free(parts.b);
    return 0;
}
