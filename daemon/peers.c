#include "peers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int peers_key(const struct sockaddr *sa, const uint8_t **addr)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (sa->sa_family == AF_INET) {
        *addr = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        return 4;
    }
    if (sa->sa_family != AF_INET6)
        return 0;
    *addr = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
    if (memcmp(*addr, mapped, sizeof(mapped)) == 0) {
        *addr += sizeof(mapped);
        return 4;
    }
    return 6;
}

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
        if (t->v[i]->open > 0 || t->v[i]->held > 0)
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

/* The entry of (family, addr), made if there is none; NULL: no memory.
 * Under the lock. */
static struct peers_entry *find(struct peers *t, int family, const uint8_t *addr)
{
    size_t alen = family == 4 ? 4 : 16;
    /* A linear look: tables hold a few hundred senders, admitting is once
     * per connection, and datagram listeners look up only on a miss of
     * their own cache. */
    for (size_t i = 0; i < t->n; i++) {
        if (t->v[i]->family == family && memcmp(t->v[i]->addr, addr, alen) == 0)
            return t->v[i];
    }
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 64;
        struct peers_entry **nv = realloc(t->v, ncap * sizeof(*nv));
        if (nv == NULL)
            return NULL;
        t->v = nv;
        t->cap = ncap;
    }
    struct peers_entry *e = calloc(1, sizeof(*e));
    if (e == NULL)
        return NULL;
    e->family = (uint8_t)family;
    memcpy(e->addr, addr, alen);
    inet_ntop(family == 4 ? AF_INET : AF_INET6, addr, e->name, sizeof(e->name));
    t->v[t->n++] = e;
    return e;
}

struct peers_entry *peers_admit(struct peers *t, int family, const uint8_t *addr, size_t max,
                                bool *refused)
{
    *refused = false;
    pthread_mutex_lock(&t->mu);
    struct peers_entry *e = find(t, family, addr);
    if (e != NULL && max > 0 && e->open >= max) {
        *refused = true;
        e = NULL;
    } else if (e != NULL) {
        e->open++;
        e->connections++;
    }
    pthread_mutex_unlock(&t->mu);
    return e;
}

struct peers_entry *peers_hold(struct peers *t, int family, const uint8_t *addr)
{
    pthread_mutex_lock(&t->mu);
    struct peers_entry *e = find(t, family, addr);
    if (e != NULL)
        e->held++;
    pthread_mutex_unlock(&t->mu);
    return e;
}

void peers_unhold(struct peers *t, struct peers_entry *e)
{
    pthread_mutex_lock(&t->mu);
    if (e->held > 0)
        e->held--;
    if (e->held == 0 && e->open == 0 && t->n > PEERS_KEEP)
        trim(t);
    pthread_mutex_unlock(&t->mu);
}

void peers_release(struct peers *t, struct peers_entry *e)
{
    pthread_mutex_lock(&t->mu);
    if (e->open > 0)
        e->open--;
    if (e->open == 0 && e->held == 0 && t->n > PEERS_KEEP)
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
