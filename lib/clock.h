/*
 * clock: the one place that reads the system's clocks.
 *
 * Two clocks.  The monotonic one (CLOCK_MONOTONIC) measures intervals,
 * deadlines and pauses: it never jumps when the administrator or NTP sets
 * the time.  The wall clock (CLOCK_REALTIME) is only for what a person
 * reads as a date, such as the receive time stamped on a record.
 * Condition variables that wait with a deadline are made with
 * pthread_condattr_setclock(CLOCK_MONOTONIC), so that clock_timespec() of
 * a monotonic deadline is what pthread_cond_timedwait() expects.
 *
 * Any thread; nothing is kept.
 */
#ifndef LOGRAIL_CLOCK_H
#define LOGRAIL_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic time since an arbitrary start (boot), in nanoseconds. */
uint64_t clock_mono_ns(void);

/* The same in milliseconds. */
uint64_t clock_mono_ms(void);

/* Wall-clock time, in microseconds since 1970-01-01T00:00:00Z. */
int64_t clock_wall_us(void);

/* A time in nanoseconds (from clock_mono_ns(), say) as a struct timespec. */
struct timespec clock_timespec(uint64_t ns);

/* Sleep for at least ns nanoseconds; a signal does not cut the pause
 * short (the rest is slept). */
void clock_sleep_ns(uint64_t ns);

/* The same in milliseconds. */
void clock_sleep_ms(uint64_t ms);

#endif
