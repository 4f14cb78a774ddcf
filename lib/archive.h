/*
 * archive: the archives of a rotating file, and the background worker that
 * compresses and prunes them.
 *
 * lib/rotate.c makes archives (it renames the live file); everything slow
 * that follows happens here, on one worker thread shared by every rotating
 * file of the process, so that the writer thread never waits for zlib,
 * libzstd or a long run of unlink(2).
 *
 * Names.  An archive of the live file DIR/BASE is
 *
 *     DIR/BASE.YYYYmmddTHHMMSSZ.NNN[.gz|.zst]
 *
 * with the UTC time of the rotation and a sequence number NNN, zero-padded
 * to three digits, that is 000 for the first archive of a second and counts
 * up for the next ones.  Every name thus has the same length up to the
 * compression suffix, so that sorting the names as bytes (ls, glob, sort)
 * or with a locale's collation sorts them by age, compressed or not.  (The
 * counter always being there is what makes this work: "X.gz" sorts after
 * "X.1" as bytes, so "no counter on the first" would break the order.)
 * More than 999 rotations within one second widen the counter and only then
 * break the byte order; this code itself compares parsed (time, seq) pairs.
 * A half-written compressed copy is BASE.<stamp>.NNN.gz.tmp (or .zst.tmp).
 *
 * Crash safety.  A compressed copy is written to its .tmp name, fsync'd,
 * renamed to its final name and the directory fsync'd before the plain
 * archive is unlinked, so a crash at any point leaves at least one full copy
 * and never a partial compressed file under a final name.  The next
 * maintenance of the same file (queued by rotate_open() and by every
 * rotation, when the file compresses or prunes) deletes leftover .tmp
 * files, deletes plain archives whose
 * compressed copy exists, compresses archives that should be and are not,
 * and prunes.
 *
 * Cost.  A queued job holds names, not descriptors: the directory is opened
 * when the job runs, so a closed file's pending maintenance costs no
 * descriptor however many wait.  The jobs of one directory coalesce, and
 * one pass of readdir(3) serves all the bases they name.
 *
 * Threads.  archive_worker_start()/archive_worker_stop() are called by the
 * thread that owns the worker (the daemon's main thread).  The set functions
 * are called by the one thread that owns the set's rotating file (the
 * writer); the worker thread runs the jobs.  They meet under the worker's
 * mutex only.
 */
#ifndef LOGRAIL_ARCHIVE_H
#define LOGRAIL_ARCHIVE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rotate_counters; /* rotate.h */

/* ---- the worker ---------------------------------------------------------- */

struct archive_worker;

/* Start the worker thread.  Returns 0 or a negative errno. */
int archive_worker_start(struct archive_worker **out);

/* Stop the worker and free it.  It first lets queued work run for up to
 * wait_ms milliseconds (< 0: until done, 0: not at all); then it cancels the
 * job in progress (a compression stops within one chunk and removes its
 * .tmp) and drops the queued ones.  Nothing is lost by that: the archives
 * stay on disk, plain, and the next rotate_open() of their file queues the
 * work again.  Every rotating file using the worker must be closed first:
 * returns -EBUSY, and leaves the worker running, if one is still open;
 * -ETIMEDOUT (with the worker stopped and freed) if work was dropped. */
int archive_worker_stop(struct archive_worker *w, int64_t wait_ms);

/* ---- one file's archives ----------------------------------------------- */

struct archive_policy {
    int compress;      /* enum rotate_compress */
    int level;         /* 0: the library's default (gzip 6, zstd 3) */
    int keep;          /* archives kept; 0: no limit */
    int64_t max_total; /* bytes over all archives; 0: no limit */
};

/* The archives of one live file: where they are, what to do with them, and
 * the counters to update.  Reference counted: the rotating file holds one
 * reference and a queued or running job another, so that closing the file
 * does not wait for its jobs.  The counters must stay valid until the last
 * reference is gone, which archive_worker_stop() guarantees. */
struct archive_set;

/* dir and base are copied; the directory is opened only while a job runs
 * (safedir_open(dir, trusted), so never through a symlink below the
 * trusted part).  counters NULL: the set's own (archive_set_counters). */
int archive_set_new(struct archive_worker *w, const char *dir, size_t trusted, const char *base,
                    const struct archive_policy *pol, struct rotate_counters *counters,
                    struct archive_set **out);
/* Queue maintenance (see above) unless it is already queued: after a
 * rotation.  Jobs of one directory coalesce: every set kicked before the
 * worker starts on that directory is served by one scan of it. */
void archive_set_kick(struct archive_set *s);
/* The same when the file is opened, for what an earlier run left; skipped
 * when this run has scanned the directory already and saw no archive of
 * the file's base there (and none was made since), which keeps the open of
 * thousands of new files (one per %{app}) from scanning the directory for
 * each. */
void archive_set_kick_open(struct archive_set *s);
/* Wait until the set has no queued or running job: 0, or -ETIMEDOUT after
 * wait_ms milliseconds (< 0: no limit).  The work goes on either way. */
int archive_set_wait(struct archive_set *s, int64_t wait_ms);
/* Drop the file's reference. */
void archive_set_release(struct archive_set *s);
struct rotate_counters *archive_set_counters(struct archive_set *s);

/* ---- names and single operations (used by rotate.c and the tests) -------- */

/* An archive's identity: its stamp as the number YYYYmmddHHMMSS, and its
 * sequence number within that second.  Larger means newer. */
struct archive_id {
    int64_t stamp;
    uint64_t seq;
};

enum archive_form { ARCHIVE_PLAIN = 0, ARCHIVE_GZ = 1, ARCHIVE_ZST = 2 };

/* The stamp of a time in seconds since the epoch, in UTC.  Years outside
 * 0..9999 are clamped to them. */
int64_t archive_stamp(int64_t t);
int archive_id_cmp(struct archive_id a, struct archive_id b);
/* BASE.<stamp>.<seq><suffix> into out; -ENAMETOOLONG if it does not fit. */
int archive_name(char *out, size_t outlen, const char *base, struct archive_id id,
                 enum archive_form form);
/* Is name an archive of base?  0 and *id, *form, *tmp filled in, or -EINVAL. */
int archive_parse(const char *name, const char *base, struct archive_id *id,
                  enum archive_form *form, bool *tmp);
/* The newest archive of base in dirfd, .tmp files included: 1 and *max, 0
 * when there is none, or a negative errno. */
int archive_scan_max(int dirfd, const char *base, struct archive_id *max);
/* Compress dirfd/name into name.gz or name.zst as described above (plain
 * archive unlinked at the end).  cancel, if not NULL, is polled between
 * chunks: -ECANCELED.  Returns 0 or a negative errno; on failure the plain
 * archive is intact and no .tmp is left behind. */
int archive_compress(int dirfd, const char *name, int compress, int level,
                     const atomic_bool *cancel);

#endif
