/*
 * spool: the on-disk queue between the writer and a network sender.
 *
 * A spool is a directory of append-only segment files and one cursor file.
 * The writer thread appends records already framed for the wire; a sender
 * thread reads them from where the far side last acknowledged, sends them,
 * and moves the cursor past what the far side acknowledged.  So a collector
 * that is away only makes the spool grow, and a restart (graceful or
 * kill -9) resumes from the cursor.
 *
 * Records.  Every record in a segment is an RFC 6587 octet-counted frame,
 * "LEN SP BYTES" (LEN decimal, no leading zero).  That is exactly what a
 * TCP or TLS syslog sender puts on the wire, so for those the spool bytes
 * are the wire bytes and the cursor maps one to one onto TCP's
 * acknowledgements; a RELP sender takes BYTES out of each frame.  Frames
 * are self-delimiting, which is what crash recovery needs: a torn tail is
 * cut back to the last whole frame.
 *
 * Positions.  A position is one 64-bit offset that only grows, counted
 * over every byte ever appended: a segment file is named by the position of
 * its first byte (%020llu.seg), so a position says which file and where.
 * Positions of deleted segments are never reused, so "acknowledged up to P"
 * stays meaningful across segment deletion, drops and restarts.
 *
 * Limits.  A new segment starts when the next frame would take the current
 * one past seg_size (a single larger frame gets a segment of its own).  The
 * bytes of all segment files together stay within max_size: an append that
 * would pass it either reports SPOOL_FULL (policy block; the writer holds
 * the batch and retries, as on a full disk) or deletes the oldest segment
 * that nobody is reading (policy drop_oldest) and counts the records and
 * bytes that were in it and never acknowledged.  A spool with nothing
 * unacknowledged always takes at least one frame, however large.
 *
 * Files.  Everything is opened relative to the spool directory with
 * O_NOFOLLOW.  The cursor file "cursor" is one line
 *     lograil-spool-cursor 1 POSITION CHECK
 * written to cursor.tmp, fsync'd, renamed over "cursor", and the directory
 * fsync'd, so it is always either the old or the new one.
 *
 * Recovery (spool_open).  The last segment is scanned and cut back to its
 * last whole frame (a write cut short by a crash).  A cursor that is
 * missing or fails its check means "from the oldest segment" (duplicates,
 * never loss); one that points past the end of its segment or into a gap
 * is clamped to the next existing byte; one inside a frame is moved back to
 * that frame's start.  Segments wholly before the cursor are deleted.
 *
 * Threads.  One writer thread calls spool_append/spool_sync; one sender
 * thread calls spool_read/spool_rewind/spool_ack/spool_save_cursor; any
 * thread may call spool_info.  One mutex guards the list of segments, the
 * reading position and the cursor; file I/O happens outside it (the writer
 * writes its own descriptor to the tail segment and publishes the new size
 * under the mutex; the reader reserves a range under the mutex and then
 * preads it from its own descriptor).  The writer never deletes a segment
 * the reader has reserved bytes from, and the reader never deletes the tail
 * segment the writer appends to.  spool_open and spool_close run with no
 * other thread using the spool.
 */
#ifndef LOGRAIL_SPOOL_H
#define LOGRAIL_SPOOL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"

enum spool_full { SPOOL_BLOCK = 0, SPOOL_DROP_OLDEST = 1 };

/* Returned by spool_append when the spool is at max_size under block. */
#define SPOOL_FULL (-ENOBUFS)

/* Longest frame body the spool takes: 8 digits of LEN. */
#define SPOOL_FRAME_MAX 99999999u

struct spool_opts {
    int64_t max_size; /* bytes of all segments; 0: no limit */
    int64_t seg_size; /* bytes of one segment before the next starts; 0: from max_size */
    int full;         /* enum spool_full */
    /* The wall clock in microseconds (for the oldest record's age); NULL:
     * CLOCK_REALTIME.  Tests inject one. */
    int64_t (*clock_us)(void *arg);
    void *clock_arg;
};

void spool_opts_init(struct spool_opts *o);

/* Figures of one spool, for statistics.  Counters count since open. */
struct spool_info {
    uint64_t bytes;          /* on disk, all segments */
    uint64_t segments;
    uint64_t unacked_bytes;  /* from the cursor to the end */
    uint64_t unread_bytes;   /* from the reading position to the end */
    uint64_t cursor, end;    /* positions */
    int64_t oldest_unacked_us; /* wall time of the oldest unacknowledged
                                * segment's first append (0: none unacked) */
    uint64_t dropped_records, dropped_bytes; /* drop_oldest */
    uint64_t full_events;    /* appends refused: SPOOL_FULL */
    uint64_t torn_bytes;     /* cut off torn tails at open */
    uint64_t corrupt_bytes;  /* skipped by the reader: not frames */
    uint64_t cursor_resets;  /* cursors found bad at open */
};

struct spool;

/* Open (creating it, mode 0750, and missing parents) the spool directory
 * path and recover it as described above.  opts is copied.  0 and *out, or
 * a negative errno. */
int spool_open(struct spool **out, const char *path, const struct spool_opts *opts);

/* Writer thread.  Append buf[0..len), which must hold whole frames.
 * Returns the number of bytes appended (a prefix of whole frames, all of
 * them unless the spool filled up or a write failed); the caller retries
 * the rest later.  With nothing appended: SPOOL_FULL, -EINVAL (buf does
 * not start with a whole frame), or the negative errno of the failed
 * write (ENOSPC, EIO).  *records (may be NULL) gets the frames appended.
 * A write cut short is taken back, so the segment always ends on a whole
 * frame. */
ssize_t spool_append(struct spool *sp, const char *buf, size_t len, size_t *records);

/* Writer thread: fdatasync the tail segment.  0 or -errno. */
int spool_sync(struct spool *sp);

/* Sender thread.  Append to out whole frames from the reading position,
 * about max bytes (at least one frame), never across a segment end, and
 * move the reading position past them.  *start gets the position of the
 * first byte (the frames occupy [*start, *start + bytes)).  Returns the
 * number of frames (0: nothing to read now) or a negative errno.  Bytes
 * that are not frames (a damaged segment) are skipped to the next segment
 * and counted. */
int spool_read(struct spool *sp, struct buf *out, size_t max, uint64_t *start);

/* Sender thread: read again from the cursor (after a reconnect). */
void spool_rewind(struct spool *sp);

/* Sender thread: the far side has everything before pos (a frame
 * boundary).  Segments wholly before it are deleted (not the tail).
 * Positions at or before the cursor change nothing.  0 or -errno of a
 * failed unlink (counted; tried again on the next ack). */
int spool_ack(struct spool *sp, uint64_t pos);

/* Sender thread: write the cursor file if the cursor moved since the last
 * save.  0 or -errno. */
int spool_save_cursor(struct spool *sp);

/* Any thread. */
void spool_info(struct spool *sp, struct spool_info *info);

/* Save the cursor, close every file, free sp.  0 or the -errno of the
 * cursor save. */
int spool_close(struct spool *sp);

/* ---- frames (used by the spool, the senders and the fuzzer) ------------ */

/* Is p[0..n) the start of a frame?  1 and *frame_len (header included)
 * and *body_off when the frame is complete within n; 0 when more bytes are
 * needed; -1 when it is not a frame. */
int spool_frame(const char *p, size_t n, size_t *frame_len, size_t *body_off);

/* The longest prefix of p[0..n) made of whole frames: its length, and the
 * number of frames in *count.  *bad is set when the first byte after it
 * cannot start a frame (rather than being an incomplete one). */
size_t spool_frames_prefix(const char *p, size_t n, size_t *count, int *bad);

/* Write the frame header for a body of len bytes ("LEN ") into hdr (at
 * least 10 bytes); returns its length. */
size_t spool_frame_header(char *hdr, size_t len);

#endif
