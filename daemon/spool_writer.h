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
 * spool (ENOSPC, EIO) is held inside spw_kind_flush() with a growing pause, as
 * sink_flush() does for files.  Past the stop deadline what is still held
 * is counted as lost.
 *
 * A kind's state (o->state) starts with a struct spool_writer, so that the
 * kind's table can point at the spw_kind_* functions below for everything
 * but claims, accept and stats; its sender is reached through a struct
 * spw_sender.
 *
 * Threads: every function on the thread that calls the kind's function of
 * the same name (output.h): spw_kind_open on the main thread, spw_kind_close and
 * spw_kind_free on the thread that frees the writer, the rest on the writer
 * thread.  ops->kick is called after each append that added bytes.
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

/* A kind's sender thread, as the spool side drives it. */
struct spw_sender {
    /* Make the sender for output o reading spool sp: 0 and *s, or a
     * negative errno with a message in err (*s, if set, is freed). */
    int (*open)(struct output *o, struct spool *sp, void **s, char *err, size_t errlen);
    int (*start)(void *s);                    /* 0 or -errno */
    void (*kick)(void *s);                    /* new bytes in the spool */
    void (*stop)(void *s, uint64_t flush_ms); /* send what it can, then end */
    void (*free)(void *s);
};

struct spool_writer {
    struct spool *sp;
    struct buf pending;  /* framed records not yet in the spool */
    size_t pending_recs;
    bool held;           /* the spool refused pending: full */
    bool dirty;          /* appended since the last fsync */
    uint64_t last_fsync_ms;
    struct buf line;     /* scratch for one formatted record */
    const struct spw_sender *ops;
    void *sender;        /* ops->open's; NULL: none */
};

/* The kind's open: allocate o->state (state_size bytes, zeroed, starting
 * with a struct spool_writer), open the spool (o->oc->fwd_spool_*, saying
 * what recovery found), then open and start the sender.  0, or a negative
 * errno with a message in err (spw_kind_free still releases). */
int spw_kind_open(struct output *o, size_t state_size, const struct spw_sender *ops, char *err,
                  size_t errlen);

/* At the start of accept(): true when the spool is still too full for what
 * is pending (return OUTPUT_HOLD). */
bool spw_held(struct output *o, struct spool_writer *w);

/* Add one frame whose body is a[0..alen) then b[0..blen) (b may be NULL).
 * 0, -EINVAL (empty or too long for a frame) or -ENOMEM. */
int spw_frame(struct output *o, struct spool_writer *w, const char *a, size_t alen,
              const char *b, size_t blen);

/* Format r with o->fmt into w->line, without its newline: 0 and *len, or
 * a negative errno. */
int spw_format(struct output *o, struct spool_writer *w, const struct record *r, size_t *len);

/* The kind's flush, next_wait_ms, holds (records framed but not yet in
 * the spool: the writer's "written up to here" mark waits for them),
 * reopen (nothing: a spool is not rotated by others), close (stop the sender with a bounded time to send, close
 * the spool) and free (close, release buffers and o->state). */
void spw_kind_flush(struct output *o, uint64_t now_ms, bool force_sync);
uint64_t spw_kind_next_wait_ms(struct output *o, uint64_t now_ms, uint64_t wait);
bool spw_kind_holds(const struct output *o);
void spw_kind_reopen(struct output *o);
void spw_kind_close(struct output *o);
void spw_kind_free(struct output *o);

/* The spool's figures for statistics (zero when not open). */
void spw_view(const struct spool_writer *w, struct forward_spool_view *v);

#endif
