/*
 * writer: the one consumer of the channel.  It drains records in batches
 * and hands each to every output whose filter it passes, through the
 * output's kind (output.h: files in output_file.c); it owns the outputs.
 *
 * Life: writer_open() opens the outputs (main thread, before privileges are
 * dropped); writer_start() starts the thread; writer_stop_by() sets the time
 * after which a writer that cannot write (disk full) gives up; writer_join()
 * waits for the thread, which ends once every sender is gone and the
 * channel is empty; writer_free().
 */
#ifndef LOGRAIL_WRITER_H
#define LOGRAIL_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "budget.h"
#include "buf.h"
#include "chan.h"
#include "config.h"
#include "stats.h"

struct writer;

/* Open every output of cfg.  rx becomes the writer's; every record it frees
 * is credited back to budget.  NULL with a message in err on failure. */
struct writer *writer_open(const struct config *cfg, struct stats *stats, chan_rx *rx,
                           struct budget *budget, char *err, size_t errlen);

int writer_start(struct writer *w);

enum writer_request {
    WRITER_REOPEN = 1, /* close and reopen every file (SIGHUP, logrotate) */
    WRITER_ROTATE = 2, /* rotate every file now */
};

/* Ask the writer to do something between two batches.  Any thread; `kick`
 * is a sender used to wake the writer (an empty item). */
void writer_request(struct writer *w, enum writer_request what, chan_tx *kick);

/* From now on, a write that keeps failing is given up at deadline_ms
 * (CLOCK_MONOTONIC milliseconds) and its records are counted as lost. */
void writer_stop_by(struct writer *w, uint64_t deadline_ms);

/* Wait for the thread to end.  Returns the number of records lost. */
uint64_t writer_join(struct writer *w);

void writer_free(struct writer *w);

/* Append what the output kinds count beyond struct stats (the stats()
 * function of output.h), in the same form as stats_format().  Any thread,
 * between writer_open() and writer_free().  0 or -ENOMEM. */
int writer_format_stats(const struct writer *w, struct buf *out, bool prometheus);

uint64_t writer_now_ms(void);

#endif
