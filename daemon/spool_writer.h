/*
 * spool_writer: the writer's side of an output that goes through a spool
 * (forward, nats, and later kafka): frames into a pending buffer, appends
 * to the spool, holds the writer while the spool is full under
 * full = "block" or while its disk fails, and fsyncs per the output's
 * policy.  The kind's file formats the record and builds the frame body;
 * its sender thread reads the spool (lib/spool.h).
 *
 * Holding.  A full spool (max_size reached under block) makes spw_held()
 * true while the records of the last flush still do not fit; the kind's
 * accept() then returns OUTPUT_HOLD, and the writer pauses and offers
 * again, exactly as for a full disk (output.h).  A failing disk under the
 * spool (ENOSPC, EIO) is held inside spw_flush() with a growing pause, as
 * sink_flush() does for files.  Past the stop deadline what is still held
 * is counted as lost.
 *
 * Threads: every function on the thread that calls the kind's function of
 * the same name (output.h): spw_open on the main thread, spw_close and
 * spw_free on the thread that frees the writer, the rest on the writer
 * thread.  kick(kick_arg) is called after each append that added bytes.
 */
#ifndef LOGRAIL_SPOOL_WRITER_H
#define LOGRAIL_SPOOL_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "output.h"
#include "spool.h"
#include "stats.h"

struct spool_writer {
    struct spool *sp;
    struct buf pending;  /* framed records not yet in the spool */
    size_t pending_recs;
    bool held;           /* the spool refused pending: full */
    bool dirty;          /* appended since the last fsync */
    uint64_t last_fsync_ms;
    void (*kick)(void *arg); /* the sender: new bytes in the spool */
    void *kick_arg;
};

/* Open o's spool (o->oc->fwd_spool_*), saying what recovery found.  0, or
 * a negative errno with a message in err. */
int spw_open(struct spool_writer *w, const struct output *o, char *err, size_t errlen);

/* At the start of accept(): true when the spool is still too full for what
 * is pending (return OUTPUT_HOLD). */
bool spw_held(struct output *o, struct spool_writer *w);

/* Add one frame whose body is a[0..alen) then b[0..blen) (b may be NULL).
 * 0, -EINVAL (empty or too long for a frame) or -ENOMEM. */
int spw_frame(struct output *o, struct spool_writer *w, const char *a, size_t alen,
              const char *b, size_t blen);

void spw_flush(struct output *o, struct spool_writer *w, uint64_t now_ms, bool force_sync);
uint64_t spw_next_wait_ms(const struct output *o, const struct spool_writer *w, uint64_t now_ms,
                          uint64_t wait);

/* Close the spool (the sender must have stopped), then release buffers. */
void spw_close(const struct output *o, struct spool_writer *w);
void spw_free(struct spool_writer *w);

/* The spool's figures for statistics (zero when not open). */
void spw_view(const struct spool_writer *w, struct forward_spool_view *v);

#endif
