/*
 * output: the seam between the writer's batch loop and the kinds of
 * output (a file, a forward through a spool, ...).
 *
 * The writer (writer.c) drains the channel, asks routing which outputs a
 * record goes to, and hands it to each through the output's kind: a table
 * of functions, one file per kind (output_file.c, and later
 * output_forward.c).  A new kind is a new file with a `struct output_kind`
 * and one line in writer.c's list of kinds; nothing else in the writer
 * changes.
 *
 * Threads and ownership.  The writer owns every struct output.  open() is
 * called on the thread that calls writer_open() (the main thread, before
 * privileges are dropped); close() and free() on the thread that calls
 * writer_free(), after the writer thread has ended; every other function on
 * the writer thread only, between two batches or inside one.  A kind may
 * run threads of its own (a network sender) and then says in its file how
 * they meet the writer.  Counters in o->st may be read from any thread.
 *
 * Holding.  A kind that cannot take a record now (a spool at its size limit
 * with full = "block") returns OUTPUT_HOLD from accept(): the writer calls
 * flush(), pauses with a growing delay (as for a full disk, sink.h) and
 * offers the same record again, taking nothing more from the channel
 * meanwhile, so ingest holds the clients back.  At shutdown, past the stop
 * deadline, the record is counted as lost instead.  A failing disk under a
 * kind's files is held inside flush() by sink_flush() in the same way.
 */
#ifndef LOGRAIL_OUTPUT_H
#define LOGRAIL_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "archive.h"
#include "buf.h"
#include "config.h"
#include "format.h"
#include "record.h"
#include "route.h"
#include "sink.h"
#include "stats.h"

/* accept(): cannot take the record now; offer it again after a pause. */
#define OUTPUT_HOLD 1
/* accept(): not taken, and the kind has counted it itself (records_refused:
 * its file is a symlink); neither held nor counted as lost. */
#define OUTPUT_REFUSED 2

/* What every output of one writer shares.  Owned by the writer. */
struct output_env {
    const struct config *cfg;
    const char *host;          /* for %{host} of records without one */
    struct archive_worker *aw; /* compresses and prunes archives */
    struct sink_ctx sink;      /* retry pauses, stop deadline, lost total */
};

struct output {
    const struct output_kind *kind;
    const struct output_conf *oc;
    struct output_stats *st;
    const struct output_env *env;
    struct format_ctx fmt;      /* the output's format, ready for format_record() */
    struct route_filter filter; /* which records it takes (the writer checks) */
    void *state;                /* the kind's own; set by open(), freed by free() */
};

struct output_kind {
    const char *name; /* for messages: "file", "forward" */

    /* Is oc an output of this kind?  The writer asks the kinds in order. */
    bool (*claims)(const struct output_conf *oc);

    /* Set up o->state and open what must exist from the start (a fixed
     * file).  0, or a negative errno with a message a person can act on in
     * err ("output PATH: ..."); then free() is still called. */
    int (*open)(struct output *o, char *err, size_t errlen);

    /* Take one record that passed the filter: format it (o->fmt) into the
     * kind's buffer.  The record stays the writer's.  0: taken;
     * OUTPUT_HOLD: see above; OUTPUT_REFUSED: see above; a negative errno:
     * not taken and never will be
     * (no file for it, out of memory), the writer counts it as lost for
     * this output and the other outputs still get it. */
    int (*accept)(struct output *o, const struct record *r);

    /* Write what accept() buffered, then fsync per the policy (now or
     * force_sync).  Called after every batch and once more at the end with
     * force_sync.  May wait while the disk fails (sink_flush). */
    void (*flush)(struct output *o, uint64_t now_ms, bool force_sync);

    /* Time-based work (interval rotation) at wall time now_s; after every
     * batch and wake-up.  May be NULL. */
    void (*tick)(struct output *o, int64_t now_s);

    /* The writer will sleep at most `wait` ms; return that or less if the
     * kind has something due sooner (an interval fsync). */
    uint64_t (*next_wait_ms)(struct output *o, uint64_t now_ms, uint64_t wait);

    /* SIGHUP, `lograilctl reopen`: close and reopen files (logrotate). */
    void (*reopen)(struct output *o);

    /* `lograilctl rotate`: rotate every file now.  May be NULL. */
    void (*rotate)(struct output *o);

    /* The writer thread has ended (its last flush is done): close files,
     * stop the kind's threads.  Called once, before free().  May be NULL. */
    void (*close)(struct output *o);

    /* Release o->state (closing first if close() was not called).  Also
     * after a failed open(). */
    void (*free)(struct output *o);

    /* Append the kind's own figures (beyond struct output_stats) to out,
     * as "name: value" lines or Prometheus text.  Any thread; reads only
     * atomics.  0 or -ENOMEM.  May be NULL. */
    int (*stats)(const struct output *o, struct buf *out, bool prometheus);

    /* After flush(): does the kind still hold records it accepted but has
     * not written (a full spool)?  The writer's "written up to here" mark
     * (acks.h) waits for them.  NULL: never (flush() writes everything). */
    bool (*holds)(const struct output *o);
};

/* The kinds (one file each). */
extern const struct output_kind output_file_kind;
extern const struct output_kind output_forward_kind;
extern const struct output_kind output_nats_kind;
extern const struct output_kind output_wall_kind;

#endif
