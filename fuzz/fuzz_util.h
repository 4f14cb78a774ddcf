/*
 * fuzz_util: what several fuzz targets share (header only: each target is
 * one translation unit built from its own .c and the lib/ sources it
 * needs, see mk/fuzz.mk).
 *
 *   struct fuzz_out, fuzz_out_put(): a growing byte buffer, for targets
 *   that record what a parser produced twice (input whole and in chunks)
 *   and compare the two.
 *   fuzz_check_spans(): a parsed record's fields lie inside it, in order,
 *   without overlap, and an empty field has offset 0.
 *
 * Any failure aborts, which is how libFuzzer learns of it.
 */
#ifndef LOGRAIL_FUZZ_UTIL_H
#define LOGRAIL_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct fuzz_out {
    unsigned char *b;
    size_t len, cap;
};

static inline void fuzz_out_put(struct fuzz_out *o, const void *p, size_t n)
{
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap : 1024;
        while (cap < o->len + n)
            cap *= 2;
        o->b = realloc(o->b, cap);
        if (o->b == NULL)
            abort();
        o->cap = cap;
    }
    memcpy(o->b + o->len, p, n);
    o->len += n;
}

#ifdef LOGRAIL_RECORD_H
static inline void fuzz_check_spans(const struct record *r)
{
    const struct span *order[] = {&r->timestamp, &r->host, &r->app,
                                  &r->procid, &r->msgid, &r->sd, &r->msg};
    uint64_t end = 0;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        const struct span *s = order[i];
        if ((uint64_t)s->off + s->len > r->len)
            abort();
        if (s->len == 0) {
            if (s->off != 0)
                abort();
            continue;
        }
        if (s->off < end)
            abort();
        end = (uint64_t)s->off + s->len;
    }
}
#endif

#endif
