/*
 * pacer: a short pause after a turn that found only a little work, so that
 * the next turn finds more.
 *
 * A thread that serves a stream of small items (an ingest loop reading
 * lines, the writer taking records from the channel) and finds only a few
 * per turn, though they come often, wakes up and makes system calls for
 * every few: most of its time goes into waking and switching.  When a turn
 * made fewer than `below` items and they still came at least one per
 * pause_ns since the previous turn ended, the pacer sleeps pause_ns, so
 * that the items gather; an item then waits at most pause_ns longer.  When
 * they come more slowly than that, a pause would only add a wake-up, and
 * there is none.  The caller says when a pause must not happen at all (a
 * client may be waiting for room, the daemon is stopping).
 *
 * Each thread owns its struct pacer; nothing is shared.
 */
#ifndef LOGRAIL_PACER_H
#define LOGRAIL_PACER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Turns of this many items or more are never followed by a pause. */
#define PACER_BELOW 64

/* The timer slack pacer_thread_init() sets: without it, the kernel lets a
 * pause run 50 µs long (its default slack), which is as long as a pause. */
#define PACER_SLACK_NS 5000

struct pacer {
    uint64_t pause_ns; /* the pause */
    size_t below;      /* turns with fewer items than this may pause */
    uint64_t last_ns;  /* clock_mono_ns() when the previous turn ended */
};

/* Prepare p; the previous turn counts as ended now.  below is at most
 * PACER_BELOW by convention, smaller where a pause could fill a small
 * queue. */
void pacer_init(struct pacer *p, uint64_t pause_ns, size_t below);

/* Set the calling thread's timer slack to PACER_SLACK_NS, so that its
 * pauses are pause_ns and not pause_ns plus 50 µs.  Call once, from the
 * thread that paces. */
void pacer_thread_init(void);

/* Would a turn of n items, ending at now_ns, be followed by a pause?
 * Reads p only: the rule alone, for tests. */
bool pacer_wants_pause(const struct pacer *p, size_t n, uint64_t now_ns);

/* A turn of n items has ended.  Sleeps pause_ns when the rule says so and
 * may is true; then starts the next turn.  true when it paused.  Only the
 * thread that owns p. */
bool pacer_turn(struct pacer *p, size_t n, bool may);

#endif
