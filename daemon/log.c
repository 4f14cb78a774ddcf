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
