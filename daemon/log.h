/*
 * log: the daemon's own messages, on stderr, one line each, prefixed with
 * "<N>" as sd-daemon(3) describes so that the journal keeps their level.
 * Any thread; each message is written with one write(2).
 */
#ifndef LOGRAIL_LOG_H
#define LOGRAIL_LOG_H

#include <syslog.h> /* LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG */

void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
