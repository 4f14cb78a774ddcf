/*
 * log: the daemon's own messages, on stderr, one line each, prefixed with
 * "<N>" as sd-daemon(3) describes so that the journal keeps their level.
 * Any thread; each message is written with one write(2).
 */
#ifndef LOGRAIL_LOG_H
#define LOGRAIL_LOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <syslog.h> /* LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG */

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * A tally for an event that can happen thousands of times a second (a
 * refused connection): the first is reported at once, the ones after it
 * are counted and reported as one number at most every interval_ms, and
 * whatever is still counted is reported on request (at a timer, at the
 * end).  The tally only counts and decides; its user writes the message,
 * with the number the tally hands out.  Every event added is handed out
 * exactly once, so the numbers in the messages add up to the events.
 *
 * Any thread may call any function on an initialised tally (a mutex
 * inside); init and destroy by its owner, while no other thread uses it.
 */
struct log_tally {
    pthread_mutex_t mu;
    uint64_t interval_ms;
    uint64_t pending;   /* counted, not yet handed out */
    uint64_t last_ms;   /* when a number was last handed out */
    bool reported;      /* one was ever handed out */
};

void log_tally_init(struct log_tally *t, uint64_t interval_ms);
void log_tally_destroy(struct log_tally *t);

/* n events at now_ms (monotonic).  Returns how many to report now: 0 while
 * the last report is younger than interval_ms, else all counted so far
 * (n included), which are then no longer counted. */
uint64_t log_tally_add(struct log_tally *t, uint64_t n, uint64_t now_ms);

/* What is counted and due at now_ms (all of it when force), handed out as
 * by log_tally_add(); 0 when nothing is counted or the interval has not
 * passed. */
uint64_t log_tally_take(struct log_tally *t, uint64_t now_ms, bool force);

#endif
