#include "peers.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void peers_init(struct peers *t)
{
    pthread_mutex_init(&t->mu, NULL);
    t->v = NULL;
    t->n = t->cap = 0;
}

void peers_free(struct peers *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->v[i]);
    free(t->v);
    t->v = NULL;
    t->n = t->cap = 0;
    pthread_mutex_destroy(&t->mu);
}

/* Entries with no connection open, beyond PEERS_KEEP: drop the one that
 * sent the fewest records.  Under the lock. */
static void trim(struct peers *t)
{
    size_t idle = 0, victim = SIZE_MAX;
    uint64_t least = UINT64_MAX;
    for (size_t i = 0; i < t->n; i++) {
        if (t->v[i]->open > 0)
            continue;
        idle++;
        uint64_t r = atomic_load_explicit(&t->v[i]->records, memory_order_relaxed);
        if (r < least) {
            least = r;
            victim = i;
        }
    }
    if (idle <= PEERS_KEEP || victim == SIZE_MAX)
        return;
    free(t->v[victim]);
    t->v[victim] = t->v[--t->n];
}

struct peers_entry *peers_admit(struct peers *t, int family, const uint8_t *addr, size_t max,
                                bool *refused)
{
    size_t alen = family == 4 ? 4 : 16;
    *refused = false;
    pthread_mutex_lock(&t->mu);
    struct peers_entry *e = NULL;
    /* A linear look: tables hold a few hundred senders, and admitting is
     * once per connection. */
    for (size_t i = 0; i < t->n; i++) {
        if (t->v[i]->family == family && memcmp(t->v[i]->addr, addr, alen) == 0) {
            e = t->v[i];
            break;
        }
    }
    if (e == NULL) {
        if (t->n == t->cap) {
            size_t ncap = t->cap ? t->cap * 2 : 64;
            struct peers_entry **nv = realloc(t->v, ncap * sizeof(*nv));
            if (nv == NULL)
                goto out;
            t->v = nv;
            t->cap = ncap;
        }
        e = calloc(1, sizeof(*e));
        if (e == NULL)
            goto out;
        e->family = (uint8_t)family;
        memcpy(e->addr, addr, alen);
        inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, e->name, sizeof(e->name));
        t->v[t->n++] = e;
    }
    if (max > 0 && e->open >= max) {
        *refused = true;
        e = NULL;
        goto out;
    }
    e->open++;
    e->connections++;
out:
    pthread_mutex_unlock(&t->mu);
    return e;
}

void peers_release(struct peers *t, struct peers_entry *e)
{
    pthread_mutex_lock(&t->mu);
    if (e->open > 0)
        e->open--;
    if (e->open == 0 && t->n > PEERS_KEEP)
        trim(t);
    pthread_mutex_unlock(&t->mu);
}

struct row {
    char name[48];
    size_t open;
    uint64_t connections, records, bytes;
};

static int by_records(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    return x->records < y->records ? 1 : x->records > y->records ? -1 : 0;
}

static int put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int put(struct buf *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    return buf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

int peers_format(struct peers *t, const char *listener, size_t k, struct buf *out,
                 bool prometheus)
{
    pthread_mutex_lock(&t->mu);
    size_t n = t->n;
    struct row *rows = n ? calloc(n, sizeof(*rows)) : NULL;
    if (n && rows == NULL) {
        pthread_mutex_unlock(&t->mu);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        struct peers_entry *e = t->v[i];
        memcpy(rows[i].name, e->name, sizeof(rows[i].name));
        rows[i].open = e->open;
        rows[i].connections = e->connections;
        rows[i].records = atomic_load_explicit(&e->records, memory_order_relaxed);
        rows[i].bytes = atomic_load_explicit(&e->bytes, memory_order_relaxed);
    }
    pthread_mutex_unlock(&t->mu);
    if (n > 1)
        qsort(rows, n, sizeof(*rows), by_records);
    if (n > k)
        n = k;
    int rc = 0;
    if (!prometheus && n > 0)
        rc = put(out, "\n# listener %s top talkers\n", listener);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (prometheus)
            rc = put(out,
                     "lograil_listener_peer_records_total{listener=\"%s\",peer=\"%s\"} %llu\n",
                     listener, rows[i].name, (unsigned long long)rows[i].records);
        else
            rc = put(out, "peer %s: records %llu bytes %llu connections %llu open %zu\n",
                     rows[i].name, (unsigned long long)rows[i].records,
                     (unsigned long long)rows[i].bytes, (unsigned long long)rows[i].connections,
                     rows[i].open);
    }
    free(rows);
    return rc;
}
