/*
 * rotate: an output file that rotates itself.
 *
 * A struct rotate_file is the live file PATH, opened O_WRONLY|O_APPEND,
 * that receives whole lines.  When it would pass max_size, when the clock
 * crosses an interval boundary, or when asked, it is rotated the way s6-log
 * does it: fdatasync the live file, rename it to an archive (names in
 * archive.h: PATH.YYYYmmddTHHMMSSZ.NNN, sorting by age), fsync the
 * directory, open a new live file under the same name (so `tail -F`
 * follows), fsync the directory again, and hand the archive to the
 * background worker (archive.h), which compresses and prunes.  Every step
 * leaves the directory in a state the next rotate_open() completes: a crash
 * loses no line and never leaves a half-compressed file as the only copy.
 *
 * Lines.  Callers write whole lines (each ends in '\n').  A line is never
 * split over two files: rotation happens only between lines, a batch that
 * does not fit is cut at the last line that does, and a single line longer
 * than max_size gets a file of its own.  A file that a crash left ending
 * inside a line gets a '\n' when it is opened, before anything else.
 *
 * Interval.  With interval_s > 0 the file rotates when the wall clock
 * enters a new period: periods are multiples of interval_s counted from the
 * epoch in LOCAL time (the UTC offset that localtime_r() gives for the
 * moment, TZ included), so that daily (86400) rotates at local midnight
 * and hourly (3600) on the local hour, which is what operators expect.
 * interval_utc = 1 counts in UTC instead.  A period change with an empty
 * live file makes no archive.  Periods follow the wall clock through DST
 * changes: in spring the skipped hour has no file, in autumn the hour that
 * comes twice shares one file (hourly: one file of two hours).  A
 * file opened with content from an earlier period (the daemon was down
 * over midnight) rotates at the first check.  Archive names carry the UTC
 * time of the rotation, and never go backwards: if the clock steps back,
 * names keep the newest time already used and count up its sequence.
 *
 * Errors.  Functions return 0 (or a count) or a negative errno, and count
 * failures in struct rotate_counters.  A failed rotation does not stop
 * writing: the live file goes on growing past max_size and rotation is
 * tried again after a pause of a second.  A failed write reports how much
 * was written so that the caller can retry the rest.
 *
 * Symbolic links.  The live file and every file made beside it (archives,
 * .tmp copies) are opened with O_NOFOLLOW, a new one with O_CREAT|O_EXCL,
 * so a symlink at PATH is refused (-ELOOP), never written through.  The
 * directories of PATH below opts.trusted_len are opened and created one
 * component at a time (safedir.h), refusing a symlink at any of them.  The
 * directory is opened when it is needed (open, rotation, reopen) and not
 * held in between, so an open file costs one descriptor.
 *
 * Threads.  A rotate_file is used by one thread (the writer); the worker
 * talks to it only through the archive set's queue.  The counters may be
 * read from any thread.
 *
 * Use from the writer thread:
 *
 *   archive_worker_start(&aw);                  once, before the outputs
 *   rotate_opts_init(&o); o.max_size = ...;     per output
 *   rotate_open(&f, path, &o, aw);
 *   loop:
 *     n = rotate_write(f, buf + off, len - off);   short or < 0: keep the
 *                                                  rest, retry after a pause
 *     rotate_sync(f);                              per the fsync policy
 *     rotate_tick(f, time(NULL));                  every iteration; sleep no
 *                                                  later than rotate_next_tick(f)
 *     SIGHUP: rotate_reopen(f);   control "rotate": rotate_now(f)
 *   rotate_close(f);                            at shutdown, every output,
 *   archive_worker_stop(aw, ms);                then the worker, bounded
 */
#ifndef LOGRAIL_ROTATE_H
#define LOGRAIL_ROTATE_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "archive.h"
#include "safedir.h"

enum rotate_compress {
    ROTATE_COMPRESS_NONE = 0,
    ROTATE_COMPRESS_GZIP = 1, /* BASE.<stamp>.NNN.gz, gzip format (zlib) */
    ROTATE_COMPRESS_ZSTD = 2, /* BASE.<stamp>.NNN.zst, one zstd frame with checksum */
};

/* Events and failures of rotating files.  Updated with relaxed atomic adds
 * by the writer and the worker; read with atomic_load from any thread.
 * Several files may share one struct (the files of a templated output). */
struct rotate_counters {
    _Atomic uint64_t rotations;       /* archives made */
    _Atomic uint64_t rotate_errors;   /* failed rotations (the file went on growing) */
    _Atomic uint64_t write_errors;    /* failed write(2), fdatasync(2), open(2) of the live file */
    _Atomic uint64_t reopens;         /* rotate_reopen() calls, and files found moved away */
    _Atomic uint64_t lines_ended;     /* '\n' added at open to a file a crash left mid-line */
    _Atomic uint64_t compressed;      /* archives compressed */
    _Atomic uint64_t compress_errors; /* failed compressions (the plain archive is kept) */
    _Atomic uint64_t pruned;          /* archives deleted by keep or max_total */
    _Atomic uint64_t prune_errors;    /* failed deletions and directory scans */
    _Atomic int last_error;           /* negative errno of the last failure; 0: none yet */
    _Atomic(const char *) last_error_op; /* what failed then, e.g. "rename"; a static string */
};

/* The one reset: zero every counter. */
void rotate_counters_reset(struct rotate_counters *c);

struct rotate_opts {
    int64_t max_size;   /* bytes; 0: no size limit */
    int64_t interval_s; /* seconds; 0: no time rotation; 3600 hourly, 86400 daily */
    int interval_utc;   /* 0: periods in local time (see above); 1: in UTC */
    int keep;           /* archives kept, oldest deleted first; 0: no limit */
    int64_t max_total;  /* bytes over all archives, oldest deleted first; 0: no limit.
                         * Strict: if the newest archive alone is larger, it goes too. */
    int compress;       /* enum rotate_compress */
    int compress_level; /* 0: default (gzip 6, zstd 3) */
    mode_t file_mode;   /* of a created live file, umask applied; 0: 0640 */
    gid_t group;        /* group of the live file; (gid_t)-1: leave as created */
    /* The wall clock, in seconds since the epoch, for interval checks made
     * inside rotate_write() and for archive names; NULL: time(2).  Tests
     * inject a fake one; rotate_tick() takes the time as an argument. */
    int64_t (*clock)(void *arg);
    void *clock_arg;
    /* How much of the path's directory part the operator wrote (followed as
     * given, symlinks included); the directories after it are never opened
     * through a symlink (safedir.h).  SAFEDIR_ALL (the default): all of it,
     * as for a fixed path; safedir_trusted_len() for a template. */
    size_t trusted_len;
    /* Where to count; NULL: the file's own.  Must outlive the file and the
     * worker's work for it (until archive_worker_stop() returns). */
    struct rotate_counters *counters;
};

/* Fill o with the defaults: no rotation, no pruning, no compression, mode
 * 0640, group (gid_t)-1, time(2).  Start from this rather than from a
 * zeroed struct, where group 0 would mean root. */
void rotate_opts_init(struct rotate_opts *o);

struct rotate_file;

/* Open (creating it and its directories, mode 0755) the live file at path
 * and queue the maintenance of its archives left by an earlier run.  A
 * symlink at path, or at a directory below opts->trusted_len: -ELOOP.  opts
 * is copied.  worker may be NULL only if the options need no background
 * work (compress none, keep 0, max_total 0): -EINVAL otherwise.  An
 * existing file's mode and owner are left alone; a group that cannot be
 * set fails the open (-EPERM), since it is a configuration mistake to show
 * at start-up (later reopens only count it).
 * Returns 0 and *out, or a negative errno. */
int rotate_open(struct rotate_file **out, const char *path, const struct rotate_opts *opts,
                struct archive_worker *worker);

/* Append len bytes of whole lines, rotating by size (and by interval, on
 * the options' clock) at line boundaries.  Returns the number of bytes
 * written, all of them unless a system call failed; then the first
 * unwritten byte is where the caller retries (ENOSPC, EIO: later, with the
 * same remaining bytes, so that nothing is written twice or lost).  If
 * nothing could be written, returns the negative errno.  A write(2) that
 * stopped inside a line leaves the file ending mid-line; no rotation
 * happens until the retry has finished that line.  If the live file could
 * not be reopened after a rotation, the next call tries again. */
ssize_t rotate_write(struct rotate_file *f, const void *buf, size_t len);

/* Rotate if the interval says so at wall time now (seconds since the
 * epoch).  Cheap when nothing is due (one comparison): call it every loop
 * of the writer.  Returns 1 if it rotated, 0 if not, or a negative errno. */
int rotate_tick(struct rotate_file *f, int64_t now);

/* The wall time at which rotate_tick() may next have something to do
 * (INT64_MAX without an interval), to bound the writer's sleep. */
int64_t rotate_next_tick(const struct rotate_file *f);

/* Rotate now (the control command).  Returns 1 if it rotated, 0 if the live
 * file is empty (nothing to archive), -EAGAIN if it ends inside a line (a
 * failed write has not been retried yet), or a negative errno. */
int rotate_now(struct rotate_file *f);

/* Close the live file and open PATH again: for logrotate, which renames the
 * file and sends SIGHUP.  A new file is created if PATH is gone.  If PATH
 * is now a symlink, -ELOOP and the file stays closed (rotate_write() then
 * fails the same way until a later reopen finds a file there).  If a
 * write stopped mid-line and PATH is now another file, the old one gets its
 * '\n' first and the rest of the line starts the new one.  0 or -errno. */
int rotate_reopen(struct rotate_file *f);

/* fdatasync(2) the live file.  0 or -errno. */
int rotate_sync(struct rotate_file *f);

/* Take back the last n bytes written to the live file (ftruncate): for a
 * caller that gives up on a line a failed write left half done, so that
 * the file ends on a whole line again.  0 or -errno. */
int rotate_unwrite(struct rotate_file *f, size_t n);

/* Bytes in the live file, as this object counts them. */
int64_t rotate_size(const struct rotate_file *f);

/* Wait up to wait_ms milliseconds (< 0: no limit) for the background work
 * queued so far for this file's archives: 0 or -ETIMEDOUT.  For tests and
 * for a control command that wants to report when compression is done. */
int rotate_wait(struct rotate_file *f, int64_t wait_ms);

/* The counters this file updates (opts.counters or its own). */
struct rotate_counters *rotate_counters_of(struct rotate_file *f);

/* fsync and close the live file, and free f.  Queued background work goes
 * on without it; archive_worker_stop() bounds it.  Returns 0 or the
 * negative errno of fsync/close; f is freed in every case. */
int rotate_close(struct rotate_file *f);

/* Close without waiting for the disk: writeback of what was written is
 * started (sync_file_range) but not awaited, so that closing one of many
 * files (a %{app} file past max_files) costs no fsync; the caller makes it
 * durable later if its policy asks (syncfs of the file system).  Returns
 * 0 or the negative errno of close; f is freed in every case. */
int rotate_close_lazy(struct rotate_file *f);

#endif
