/*
 * forward: the sender thread of one forward output.
 *
 * Each forward output has a spool (lib/spool.h) that the writer appends
 * framed records to, and one sender: a thread with its own libuv loop that
 * connects to the collector, reads the spool from the cursor, sends, and
 * moves the cursor past what the collector acknowledged.
 *
 *   tcp   the spool's octet-counted frames are the wire bytes (RFC 6587).
 *         The cursor moves past bytes the peer's TCP acknowledged: bytes
 *         handed to the kernel minus SIOCOUTQ (written but unacknowledged),
 *         rounded down to a whole frame.  After a reconnect everything
 *         from the cursor is sent again, so a collector sees duplicates of
 *         what was in flight, and loses what its TCP acknowledged but its
 *         process had not yet written when it died.
 *   relp  each frame's body goes out as a RELP "syslog" command; the
 *         cursor moves when the collector's "rsp 200" for it (and every
 *         earlier one) came back (lib/relp.h's window).  Unacknowledged
 *         frames are resent after a reconnect: duplicates, never loss.
 *         With tls = { ca = ...; } the RELP session runs inside TLS, verified
 *         as for tls below.
 *   tls   the tcp bytes inside TLS (lib/tls.h over memory BIOs on this loop).
 *         The collector's certificate is verified against tls.ca and
 *         tls.name; a refused one is counted and logged with its reason, and
 *         no record is written before the handshake is done.  The cursor
 *         moves per chunk: a chunk of frames becomes ciphertext, and once
 *         TCP acknowledged all of that ciphertext, the chunk's frames count.
 *
 * Connecting: the host is resolved (uv_getaddrinfo) at every attempt, its
 * addresses are tried in order, and failures back off exponentially
 * (200 ms doubling, with jitter: a random pause between half and all of
 * it) up to backoff_max.  The back-off starts again from the bottom only
 * once a connection has got something acknowledged, so a collector that
 * accepts and closes at once is not hammered.
 *
 * Threads.  forward_open/forward_start/forward_stop/forward_free are called
 * by the thread that owns the output (the main thread at open, the thread
 * that frees the writer at close).  forward_kick is called by the writer
 * after it appended to the spool; it only wakes the sender (uv_async).
 * The counters in struct forward_stats are written by the sender and read
 * by anyone.
 */
#ifndef LOGRAIL_FORWARD_H
#define LOGRAIL_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "spool.h"
#include "stats.h"

struct forward;

/* A sender for output oc (which must outlive it) reading spool sp (which
 * stays the caller's, and must stay open until forward_free).  0 and
 * *out, or a negative errno with a message in err. */
int forward_open(struct forward **out, const struct output_conf *oc, struct spool *sp,
                 struct forward_stats *st, char *err, size_t errlen);

/* Start the thread.  0 or -errno. */
int forward_start(struct forward *f);

/* New bytes are in the spool.  Any thread; cheap. */
void forward_kick(struct forward *f);

/* Stop: while connected, keep sending and collecting acknowledgements for
 * up to flush_ms, or until everything in the spool is acknowledged; then
 * close, save the cursor and end the thread.  Returns once it has ended. */
void forward_stop(struct forward *f, uint64_t flush_ms);

void forward_free(struct forward *f);

#endif
