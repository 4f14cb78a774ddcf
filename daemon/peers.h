/*
 * peers: what each network peer address of a listener does: connections
 * open now (for max_per_peer), connections made, records and bytes sent
 * (the top talkers in `lograilctl stats`).
 *
 * One table per listener, shared by every ingest loop: loop 0 admits a
 * connection (peers_admit) and the loop that serves it adds its records
 * (peers_add, lock-free) and lets go of it when it closes (peers_release).
 * An entry lives while a connection holds it; entries of peers with no
 * connection open are kept for the statistics up to PEERS_KEEP of them, the
 * quietest dropped first.
 */
#ifndef LOGRAIL_PEERS_H
#define LOGRAIL_PEERS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define PEERS_KEEP 1024 /* entries without an open connection kept at most */

struct peers_entry {
    uint8_t family; /* 4 or 6 */
    uint8_t addr[16];
    char name[48];  /* the address as text */
    size_t open;    /* under the table's lock */
    uint64_t connections; /* under the table's lock */
    _Atomic uint64_t records, bytes;
};

struct peers {
    pthread_mutex_t mu;
    struct peers_entry **v;
    size_t n, cap;
};

void peers_init(struct peers *t);
void peers_free(struct peers *t);

/* A connection from (family, addr) wants in.  Returns its entry, counted
 * open, or NULL with *refused set when max (0: none) of its connections
 * are open already; NULL with *refused false when there is no memory (the
 * connection is then served, uncounted).  Any thread. */
struct peers_entry *peers_admit(struct peers *t, int family, const uint8_t *addr, size_t max,
                                bool *refused);

/* The connection of e closed.  Any thread. */
void peers_release(struct peers *t, struct peers_entry *e);

/* Records and bytes from e's connection.  The serving loop. */
static inline void peers_add(struct peers_entry *e, uint64_t records, uint64_t bytes)
{
    atomic_fetch_add_explicit(&e->records, records, memory_order_relaxed);
    atomic_fetch_add_explicit(&e->bytes, bytes, memory_order_relaxed);
}

/* Append the k peers that sent the most records, one line each, under a
 * "# listener NAME top talkers" heading (text), or as
 * lograil_listener_peer_records{listener=...,peer=...} (prometheus).
 * 0 or -ENOMEM.  Any thread. */
int peers_format(struct peers *t, const char *listener, size_t k, struct buf *out,
                 bool prometheus);

#endif
