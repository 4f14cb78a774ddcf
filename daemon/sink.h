/*
 * sink: one file the writer appends to, with what it takes to never lose a
 * line on a failing disk.
 *
 * A sink is a path, its rotating file (lib/rotate.h) and a buffer of whole
 * formatted lines.  sink_flush() writes the buffer; while a write fails
 * (ENOSPC, EIO, a file that cannot be opened) it keeps the rest, pauses
 * with a growing delay and tries again, so that the writer takes nothing
 * more from the channel and ingest holds the clients back.  Only once the
 * daemon is being stopped and the stop deadline has passed does it give
 * up: it takes back a half-written last line (the file keeps only whole
 * lines) and counts what it could not write as lost.  sink_maybe_fsync()
 * applies the output's fsync policy.
 *
 * Every file-backed output uses sinks: the file output (output_file.c), and
 * a spool that a network output appends to.
 *
 * Threads.  Sinks belong to the writer thread; only the counters they
 * update in struct output_stats are read elsewhere.
 */
#ifndef LOGRAIL_SINK_H
#define LOGRAIL_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "rotate.h"
#include "stats.h"

/* What the sinks of one writer ask of it.  The writer fills it in once;
 * every function is called on the writer thread. */
struct sink_ctx {
    /* True once the stop deadline has passed: a failing write is given up. */
    bool (*giving_up)(void *arg);
    /* Sleep ms milliseconds while waiting for the disk; the pause counts
     * as progress for the watchdog (the records are held, not stuck). */
    void (*pause)(void *arg, uint64_t ms);
    /* CLOCK_MONOTONIC milliseconds. */
    uint64_t (*now_ms)(void);
    void *arg;
    /* The writer's total of records lost, added to when giving up. */
    uint64_t *lost;
};

/* What the sinks of one output share.  Owned by the output; must outlive
 * its sinks. */
struct sink_conf {
    struct rotate_opts ropts;
    struct archive_worker *aw;
    struct output_stats *st;
    int64_t fsync_ms; /* -1 never, 0 after every batch, else the interval */
    const struct sink_ctx *cx;
};

struct sink {
    const struct sink_conf *conf;
    char *path;
    struct rotate_file *rf; /* NULL while it cannot be opened */
    struct buf buf;         /* whole formatted lines not yet written */
    size_t pending;         /* records in buf */
    bool dirty;             /* written since the last fsync */
    bool nosync;            /* fsync(2) cannot work here (a FIFO): never try */
    bool refused;           /* a symlink is in the way: records are dropped, counted */
    int fsync_errno;        /* of the last failed fsync; 0: it worked */
    uint64_t last_fsync_ms;
};

/* A sink for path (copied), not opened yet.  0 or -ENOMEM. */
int sink_init(struct sink *s, const struct sink_conf *conf, const char *path);

/* Open the sink's file (lib/rotate: directories created, a partial last
 * line ended, rotation as configured).  0 or a negative errno. */
int sink_open(struct sink *s);

/* The file was refused (-ELOOP: a symlink at it or at a directory below the
 * configured part of its path): say so once, with the path, and count it.
 * Until sink_open() works again, records for it are dropped and counted in
 * records_refused; the writer's other outputs are not held back. */
void sink_refuse(struct sink *s, int err);

/* SIGHUP: close and open the path again (rotate_reopen), or open it if it
 * is not open.  A symlink found there is refused (sink_refuse); a file
 * that was refused and now opens is announced.  0 or -errno. */
int sink_reopen(struct sink *s);

/* Close the file (fsync first); the buffer is kept.  Safe when closed. */
void sink_close(struct sink *s);

/* Close a file to make room for another (a templated output past
 * max_files) without waiting for the disk (rotate_close_lazy); with fsync
 * "always" it fsyncs as sink_close() does.  Returns true if it left data
 * that an interval policy still owes to the disk: the caller then syncs
 * the file system within the interval. */
bool sink_close_lazy(struct sink *s);

/* Write the whole buffer, retrying failures until they pass or the stop
 * deadline is over (see above).  Lines are never cut: a partial write
 * continues from the byte where it stopped.  The buffer is empty after. */
void sink_flush(struct sink *s);

/* fsync per the policy: when the interval is over, or now with force. */
void sink_maybe_fsync(struct sink *s, uint64_t now_ms, bool force);

/* Milliseconds until the sink's next fsync is due (0: now), or UINT64_MAX
 * when none is (clean, or no interval policy). */
uint64_t sink_fsync_due_in(const struct sink *s, uint64_t now_ms);

/* Close and release; the sink may be initialised again. */
void sink_fini(struct sink *s);

#endif
