/*
 * deliver: hand records to the writer without ever blocking a loop that
 * still runs, and hold a client back while the queue is full.
 *
 * A producer (one ingest loop) owns one `struct deliver`: its clone of the
 * channel's sender, the queue's byte budget, a batch of records not yet
 * sent and the counts of what happened to them.  Records made from one
 * slice of a read wait in the batch; deliver_flush() sends the batch with
 * one chan_try_send_many() (one claim and one wake-up for many records).
 *
 * When the channel is full, or the budget is spent, what the channel did
 * not take is parked, in order, on the source it came from (a connection,
 * a datagram socket: a `struct deliver_park`), and the caller stops reading
 * that source until deliver_park_flush() has sent every parked record.  A
 * record that arrives while its source has records parked is parked behind
 * them, so order is kept.  With the "drop" policy nothing is parked: what
 * the channel does not take is freed and counted as dropped.
 *
 * Budget: every record is charged to the budget before it is sent (once
 * sent it is the writer's, who may credit it at once); the part the channel
 * refused is credited back at once.
 *
 * Stopping (deliver.stopping): the writer still receives and drains, so
 * nothing waits for the budget and the sends block (policy "block") instead
 * of parking.
 *
 * No libuv, no sockets: the caller says what to pause.  One thread only
 * (the producer's); the structs are not shared.
 */
#ifndef LOGRAIL_DELIVER_H
#define LOGRAIL_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "budget.h"
#include "chan.h"
#include "record.h"

#define DELIVER_BATCH 128

/* Records of one source that could not be sent yet, oldest first. */
struct deliver_park {
    struct record **q;
    size_t head, len, cap;
};

/* What happened to records since the caller last took the counts. */
struct deliver_tally {
    uint64_t records;      /* sent into the channel */
    uint64_t bytes;        /* message bytes of the records made */
    uint64_t parse_errors; /* these four are counted by the record's maker */
    uint64_t truncated;
    uint64_t bad_frames;
    uint64_t dropped;      /* policy "drop" and no room */
    uint64_t lost;         /* could not be handed over at all (no memory, channel gone) */
};

struct deliver {
    chan_tx *tx;
    struct budget *budget;
    bool stopping;
    size_t n_batch;
    struct deliver_tally tally;
    struct record *batch[DELIVER_BATCH];
};

/* Hand r (ownership moves) to the writer, through the batch, or park it on
 * p.  drop: policy "drop".  The batch is sent when it is full; callers run
 * deliver_flush() after each slice of input they frame. */
void deliver_record(struct deliver *d, struct deliver_park *p, bool drop, struct record *r);

/* Send the batch (records of the source whose park is p) as far as the
 * channel takes it; the rest is parked on p in order, or dropped when drop. */
void deliver_flush(struct deliver *d, struct deliver_park *p, bool drop);

/* Send p's parked records in order; block: wait for room (stopping).
 * true when none is left. */
bool deliver_park_flush(struct deliver *d, struct deliver_park *p, bool block);

/* Free every parked record (the source is gone) and the queue. */
void deliver_park_free(struct deliver_park *p);

#endif
