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
 *
 * Datagram senders (UDP) have no connection: the loop that owns a UDP
 * listener holds the entries of the senders it has seen lately
 * (peers_hold, in a small cache of its own) and adds each datagram to
 * them; a held entry is never dropped, and is counted neither as a
 * connection nor as open.
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
    size_t held;    /* datagram listeners' holds, under the table's lock */
    uint64_t connections; /* under the table's lock */
    _Atomic uint64_t records, bytes;
};

struct peers {
    pthread_mutex_t mu;
    struct peers_entry **v;
    size_t n, cap;
};

struct sockaddr;

/* The address bytes of sa as the table keys them: family 4 or 6, or 0 for
 * another family.  A v4-mapped IPv6 address (a v4 client of a [::]
 * listener) is the v4 address it is. */
int peers_key(const struct sockaddr *sa, const uint8_t **addr);

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

/* A datagram sender's entry, held until peers_unhold(); NULL when there is
 * no memory (its datagrams are then served, uncounted).  Any thread. */
struct peers_entry *peers_hold(struct peers *t, int family, const uint8_t *addr);
void peers_unhold(struct peers *t, struct peers_entry *e);

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
