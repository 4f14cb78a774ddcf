/*
 * nats_sender: the sender thread of one NATS JetStream output.
 *
 * The writer appends one frame per record to the output's spool
 * (lib/spool.h); its body is "SUBJECT SP PAYLOAD" (output_nats.c).  The
 * sender reads frames from the cursor and publishes each payload to its
 * subject with js_PublishMsgAsync, at most max_pending at once.  JetStream
 * answers every publish with a PubAck once a quorum of the stream's
 * replicas stored it; the cursor moves over the contiguous prefix of
 * acknowledged frames, so a frame is deleted from the spool only when the
 * stream has it.
 *
 * Exactly once.  Every message carries a Nats-Msg-Id header
 * "SPOOLID-POSITION": SPOOLID is a random id kept in the spool directory
 * (file "nats-id", made on first use), POSITION the frame's spool position,
 * which never changes or repeats (lib/spool.h).  So a frame published again
 * (after a failed or late PubAck, a reconnect, a leader change, or a
 * restart of lograild from the cursor) has the same id, and the stream
 * drops it if its duplicate window still remembers the first copy; the
 * PubAck then says Duplicate, which is counted.
 *
 * Failures.  A PubAck error (no leader for a moment, timeout after
 * ack_wait) or a reconnect makes the sender go back to the cursor and
 * publish everything from there again (go-back-N), after a pause that
 * grows while errors go on.  nats.c reconnects by itself, trying the
 * servers in turn with back-off (200 ms doubling up to backoff_max, with
 * jitter); nothing reachable at start-up is not an error: records spool.
 *
 * The stream.  nats_open checks it when a server answers: it must exist
 * (or is created when create = { ... } is given) and its subjects must
 * cover the output's subject (placeholders stand for any one token).  When
 * no server answers at open, the check runs once the cluster is reached,
 * and until it passes nothing is published.  A duplicate window shorter
 * than backoff_max + ack_wait is warned about (README: exactly once).
 *
 * Threads.  nats_open/nats_start/nats_stop/nats_free on the thread that
 * owns the output; nats_kick on the writer (cheap, wakes the sender).
 * nats.c's own threads run the PubAck and connection callbacks; they meet
 * the sender under its mutex.  The stats are written by those and read by
 * anyone.
 */
#ifndef LOGRAIL_NATS_SENDER_H
#define LOGRAIL_NATS_SENDER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "spool.h"
#include "stats.h"

struct nats_sender;

/* A sender for output oc (which must outlive it) reading spool sp (the
 * caller's, open until nats_free).  Connects and checks the stream when a
 * server answers; a missing stream (without create), a subject the stream
 * does not cover, or a refused TLS handshake fail here with a message in
 * err.  0 and *out, or a negative errno. */
int nats_open(struct nats_sender **out, const struct output_conf *oc, struct spool *sp,
              struct output_stats *st, char *err, size_t errlen);

/* Start the thread.  0 or -errno. */
int nats_start(struct nats_sender *s);

/* New bytes are in the spool.  Any thread. */
void nats_kick(struct nats_sender *s);

/* Stop: while connected, keep publishing and collecting PubAcks for up to
 * flush_ms or until the spool is all acknowledged; then close, save the
 * cursor and end the thread. */
void nats_stop(struct nats_sender *s, uint64_t flush_ms);

void nats_free(struct nats_sender *s);

/* The stream subject lograild would create for a subject template: every
 * token holding a placeholder becomes "*".  out gets at most outlen bytes.
 * Exposed for tests. */
void nats_subject_pattern(const char *tmpl, char *out, size_t outlen);

/* Does a stream subject filter (with * and >) cover every subject the
 * pattern (tokens or "*") can give?  Exposed for tests. */
bool nats_subject_covers(const char *filter, const char *pattern);

#endif
