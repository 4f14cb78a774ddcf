#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

void log_msg(int level, const char *fmt, ...)
{
    char line[1024];
    int n = snprintf(line, sizeof(line), "<%d>lograild: ", level & 7);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    /* One write, so that lines from several threads do not interleave. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void log_tally_init(struct log_tally *t, uint64_t interval_ms)
{
    pthread_mutex_init(&t->mu, NULL);
    t->interval_ms = interval_ms;
    t->pending = 0;
    t->last_ms = 0;
    t->reported = false;
}

void log_tally_destroy(struct log_tally *t)
{
    pthread_mutex_destroy(&t->mu);
}

/* With t->mu held. */
static uint64_t tally_hand_out(struct log_tally *t, uint64_t now_ms, bool force)
{
    if (t->pending == 0)
        return 0;
    if (!force && t->reported && now_ms - t->last_ms < t->interval_ms)
        return 0;
    uint64_t n = t->pending;
    t->pending = 0;
    t->last_ms = now_ms;
    t->reported = true;
    return n;
}

uint64_t log_tally_add(struct log_tally *t, uint64_t n, uint64_t now_ms)
{
    pthread_mutex_lock(&t->mu);
    t->pending += n;
    uint64_t out = tally_hand_out(t, now_ms, false);
    pthread_mutex_unlock(&t->mu);
    return out;
}

uint64_t log_tally_take(struct log_tally *t, uint64_t now_ms, bool force)
{
    pthread_mutex_lock(&t->mu);
    uint64_t out = tally_hand_out(t, now_ms, force);
    pthread_mutex_unlock(&t->mu);
    return out;
}
