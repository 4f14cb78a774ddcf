/*
 * clock: clock_gettime(2) and nanosleep(2) behind a few names, so that
 * which clock a time comes from is decided once, here.
 */
#include "clock.h"

#include <errno.h>

uint64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t clock_mono_ms(void)
{
    return clock_mono_ns() / 1000000u;
}

int64_t clock_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct timespec clock_timespec(uint64_t ns)
{
    return (struct timespec){(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
}

void clock_sleep_ns(uint64_t ns)
{
    struct timespec ts = clock_timespec(ns);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void clock_sleep_ms(uint64_t ms)
{
    clock_sleep_ns(ms * 1000000u);
}
