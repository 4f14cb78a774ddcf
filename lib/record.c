#include "record.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "ascii.h"

/* A slab's count starts at BIAS so that it cannot reach zero while its pool
 * still carves from it; letting go of it takes back BIAS less the records
 * carved, and then the count is the records not yet freed. */
#define SLAB_BIAS (UINT64_C(1) << 40)
#define SLAB_DEFAULT (64 * 1024)

/* The count is the only field of a slab that two threads touch (the
 * freeing thread decrements it for every record); where carving has got
 * to is the pool's, so carving does not write to the count's line. */
struct record_slab {
    _Atomic uint64_t refs;
    _Alignas(8) char mem[];
};

const char *const record_facility_names[25] = {
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
    "uucp", "cron", "authpriv", "ftp", "ntp", "audit", "alert", "clock",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7", NULL};

const char *const record_severity_names[9] = {
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", NULL};

/* Fill a fresh block as record_new() describes.  Two details show in perf
 * and in a loop that carves and frees 120-byte records (33 -> 27 ns): the
 * bytes are copied and judged printable in one pass (ascii_copy()), not
 * judged on the copy just written, and the header is set field by field,
 * which the compiler writes as plain stores, where memset() of it became a
 * rep stos that is slow to start. */
static struct record *record_init(struct record *r, const void *bytes, size_t len)
{
    r->slab = NULL;
    r->recv_us = 0;
    r->ts_us = 0;
    r->tz_min = 0;
    r->facility = 1; /* user */
    r->severity = 5; /* notice, as logger(1) defaults */
    r->syntax = RECORD_RAW;
    r->flags = ascii_copy(r->data, bytes, len) ? RECORD_F_PRINTABLE : 0;
    r->listener = 0;
    r->ack = 0;
    r->pid = 0;
    r->uid = 0;
    r->gid = 0;
    r->len = (uint32_t)len;
    r->peer = (struct span){0, 0};
    r->peer_name = (struct span){0, 0};
    r->ext_len = 0;
    record_clear_spans(r);
    r->msg = (struct span){0, (uint32_t)len};
    r->data[len] = '\0';
    return r;
}

/* Header and bytes, plus a NUL that no span includes but that lets
 * debuggers and tests print data as a string. */
static size_t record_size(size_t len)
{
    return (sizeof(struct record) + len + 1 + 7) & ~(size_t)7;
}

struct record *record_new(const void *bytes, size_t len)
{
    if (len > UINT32_MAX)
        return NULL;
    struct record *r = malloc(record_size(len));
    return r != NULL ? record_init(r, bytes, len) : NULL;
}

size_t record_footprint(const struct record *r)
{
    return record_size((size_t)r->len + r->ext_len);
}

static void slab_unref(struct record_slab *s, uint64_t n)
{
    if (atomic_fetch_sub_explicit(&s->refs, n, memory_order_acq_rel) == n)
        free(s);
}

void record_free(struct record *r)
{
    if (r == NULL)
        return;
    if (r->slab != NULL)
        slab_unref(r->slab, 1);
    else
        free(r);
}

size_t record_free_many(struct record *const *rs, size_t n)
{
    size_t i = 0, bytes = 0;
    while (i < n) {
        struct record *r = rs[i];
        if (r == NULL || r->slab == NULL) {
            if (r != NULL)
                bytes += record_footprint(r);
            record_free(r);
            i++;
            continue;
        }
        size_t k = 1;
        bytes += record_footprint(r);
        while (i + k < n && rs[i + k] != NULL && rs[i + k]->slab == r->slab)
            bytes += record_footprint(rs[i + k++]);
        slab_unref(r->slab, k);
        i += k;
    }
    return bytes;
}

void record_pool_init(struct record_pool *p, size_t slab_size)
{
    p->cur = NULL;
    p->carved = 0;
    p->used = 0;
    p->slab_size = slab_size ? slab_size : SLAB_DEFAULT;
}

void record_pool_release(struct record_pool *p)
{
    if (p->cur != NULL)
        slab_unref(p->cur, SLAB_BIAS - p->carved);
    p->cur = NULL;
    p->carved = 0;
}

/* Room for a record of `need` bytes (record_size()): carved from the pool's
 * slab, or malloc'd when large.  NULL on ENOMEM. */
static struct record *pool_carve(struct record_pool *p, size_t need)
{
    if (need > p->slab_size / 4) {
        struct record *r = malloc(need);
        if (r != NULL)
            r->slab = NULL;
        return r;
    }
    if (p->cur == NULL || p->slab_size - p->used < need) {
        record_pool_release(p);
        struct record_slab *s = malloc(sizeof(*s) + p->slab_size);
        if (s == NULL)
            return NULL;
        atomic_init(&s->refs, SLAB_BIAS);
        p->cur = s;
        p->used = 0;
    }
    struct record *r = (struct record *)(p->cur->mem + p->used);
    p->used += need;
    p->carved++;
    r->slab = p->cur;
    return r;
}

struct record *record_pool_new(struct record_pool *p, const void *bytes, size_t len)
{
    return record_pool_new_ext(p, bytes, len, NULL, 0);
}

struct record *record_pool_new_ext(struct record_pool *p, const void *bytes, size_t len,
                                   const void *ext, size_t ext_len)
{
    if (len > UINT32_MAX / 2 || ext_len > UINT32_MAX / 2)
        return NULL;
    struct record *r = pool_carve(p, record_size(len + ext_len));
    if (r == NULL)
        return NULL;
    struct record_slab *slab = r->slab;
    record_init(r, bytes, len);
    r->slab = slab;
    if (ext_len > 0) {
        /* After the message's NUL; record_size(len + ext_len) has room for
         * header, len, NUL and ext_len. */
        memcpy(r->data + len + 1, ext, ext_len);
        r->ext_len = (uint32_t)ext_len;
    }
    return r;
}
