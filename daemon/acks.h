/*
 * acks: the writer's "written up to here" mark, for connections that may
 * acknowledge a record only once it is written to every output it goes to
 * (RELP's rsp 200; for a forward output, appended to its spool).
 *
 * A connection that needs the mark opens a slot: a small number (1 ..
 * ACKS_MAX) that it puts into record->ack of every record it makes, and a
 * libuv async handle of its own loop.  It counts the records it hands over
 * (its own counter, "sent").  The writer counts, per slot, the records of
 * each batch (acks_note()) and, once the batch is written and every output
 * has written all it accepted, adds the counts to the slots' "written"
 * (acks_publish()) and wakes the loop of each slot whose connection said it
 * waits.  Records of one connection reach the writer in the order sent
 * (the channel keeps each sender's order), so "written >= k" means the
 * connection's first k records are written.
 *
 * A connection that needs no acknowledgement pays nothing: its records
 * carry ack 0, which the writer tests once per record and skips.
 *
 * Threads.  The slot table is one for the process (static, zeroed: no
 * set-up).  acks_open(), acks_written(), acks_wait() and acks_close() are
 * for the loop thread that owns the slot; acks_note() and acks_publish()
 * for the writer thread only.  A slot closed while records of it are still
 * on their way stays taken until the writer has counted them, so a number
 * is never reused under records that carry it.
 */
#ifndef LOGRAIL_ACKS_H
#define LOGRAIL_ACKS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "record.h"

#define ACKS_MAX 4096 /* connections waiting for the mark at once */

/* Take a free slot for a connection whose loop is woken through wake (an
 * initialised uv_async_t of that loop, which must stay open until
 * acks_close()).  *id is 1..ACKS_MAX.  0, or -EAGAIN when every slot is
 * taken. */
int acks_open(uv_async_t *wake, uint32_t *id);

/* Records of slot id written so far (all outputs), counted from its
 * opening. */
uint64_t acks_written(uint32_t id);

/* True once a record of the slot was lost for some output (not written,
 * and never will be): the connection must not acknowledge it. */
bool acks_failed(uint32_t id);

/* Whether the writer wakes the loop after it publishes for the slot: set
 * true before handing over a record that will be waited for, false when
 * nothing is outstanding. */
void acks_wait(uint32_t id, bool waiting);

/* The connection is gone after handing over `sent` records of the slot:
 * the wake handle is no longer used once this returns (the caller may
 * uv_close() it), and the slot is free once those records are counted. */
void acks_close(uint32_t id, uint64_t sent);

/* The writer's counts for the records of a batch (or of several batches
 * while an output still holds records).  Lives in the writer. */
struct acks_batch {
    uint32_t n;                      /* slots touched */
    uint32_t ids[ACKS_MAX];          /* which, in the order first seen */
    uint32_t count[ACKS_MAX + 1];    /* records, by slot */
    uint8_t failed[ACKS_MAX + 1];
};

/* Count r (writer thread): r->ack != 0.  ok: every output it went to took
 * it. */
void acks_note(struct acks_batch *b, const struct record *r, bool ok);

/* Everything counted in b is written: publish it and wake the waiting
 * loops, then empty b (writer thread). */
void acks_publish(struct acks_batch *b);

#endif
