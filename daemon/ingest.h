/*
 * ingest: the producers.  `threads` libuv loops read from clients, frame and
 * parse their messages, and send records into the channel.
 *
 * Life: ingest_open() binds every socket (main thread, before privileges
 * are dropped); ingest_start() starts the loops, each with its own clone of
 * the channel's sender; ingest_stop() drains what clients already delivered,
 * sends it, drops every sender and joins the threads; ingest_free().
 */
#ifndef LOGRAIL_INGEST_H
#define LOGRAIL_INGEST_H

#include <stdbool.h>
#include <stddef.h>

#include "budget.h"
#include "chan.h"
#include "config.h"
#include "stats.h"

struct ingest;

/* Open the listening sockets of cfg.  NULL with a message in err on
 * failure.  cfg, stats and budget must outlive the ingest.  The loops
 * charge every record they send to budget (the writer credits it back) and
 * hold clients back while it is spent, as while the channel is full. */
struct ingest *ingest_open(const struct config *cfg, struct stats *stats, struct budget *budget,
                           char *err, size_t errlen);

/* Start the loops.  Each takes a clone of tx; the caller keeps tx.  0 or a
 * negative errno. */
int ingest_start(struct ingest *in, chan_tx *tx);

/* Stop accepting, drain what clients already delivered (bounded by a
 * deadline), send it, drop the senders and join the threads.  Main thread;
 * the writer must still be receiving. */
void ingest_stop(struct ingest *in);

/* Append the per-peer figures of the network listeners (the top talkers):
 * text sections, or Prometheus samples.  Any thread while the ingest is
 * open.  0 or -ENOMEM. */
struct buf;
int ingest_format_stats(struct ingest *in, struct buf *out, bool prometheus);

/* Close the sockets, remove their files, free everything. */
void ingest_free(struct ingest *in);

#endif
