/*
 * input_kmsg: the kernel's log (/dev/kmsg) as one more kind of input.
 *
 * One reader thread per kmsg listen entry reads one kernel record per
 * read(2), turns it into a record (lib/kmsg.h) and sends it into the
 * channel with a blocking chan_send(): while the channel is full the
 * thread waits and reads nothing, and the kernel's ring buffer, which
 * never waits, overwrites its oldest records; those are counted (the
 * listener's `overwritten`, from EPIPE and the gaps in the sequence
 * numbers).  Kernel records are few and small, so the queue's byte budget
 * is charged for them but never waited on.
 *
 * Its place is kept in STATE_DIR/kmsg<path with '/' as '_'>.state as
 * "BOOT_ID SEQ\n" (the boot id of /proc/sys/kernel/random/boot_id and the
 * last sequence number sent), written atomically (a temporary file,
 * fsync, rename) each time the reader has emptied the kernel's queue and
 * when it stops.  At start the reader reads the ring buffer from its
 * oldest record and skips those at or below SEQ when BOOT_ID is this
 * boot's; after a reboot (another boot id) or without a state file it
 * takes every record the buffer holds: they are all of this boot.  A clean
 * stop therefore neither loses nor repeats a record; a crash can repeat
 * those read since the last save, never lose one.
 *
 * Life: input_kmsg_open() (main thread, before privileges are dropped:
 * reading /dev/kmsg may need CAP_SYSLOG), input_kmsg_start(),
 * input_kmsg_stop() (reads what the kernel already has, sends it, saves,
 * joins; the writer must still be receiving), input_kmsg_free().
 */
#ifndef LOGRAIL_INPUT_KMSG_H
#define LOGRAIL_INPUT_KMSG_H

#include <stddef.h>
#include <stdint.h>

#include "budget.h"
#include "chan.h"
#include "config.h"
#include "stats.h"

struct input_kmsg;

/* Open lc->path and the state directory (created, 0750, when missing) and
 * read the saved place.  idx is the listen entry's index, stamped on every
 * record.  NULL with a message in err. */
struct input_kmsg *input_kmsg_open(const struct listen_conf *lc, uint16_t idx,
                                   const char *state_dir, struct listener_stats *st,
                                   struct budget *budget, char *err, size_t errlen);

/* Start the reader thread with a clone of tx (the caller keeps tx).  0 or
 * a negative errno. */
int input_kmsg_start(struct input_kmsg *k, chan_tx *tx);

/* Read what the kernel holds now, send it, save the place, join the
 * thread.  Main thread; idempotent. */
void input_kmsg_stop(struct input_kmsg *k);

/* Stop if running, close, free.  NULL is ignored. */
void input_kmsg_free(struct input_kmsg *k);

#endif
