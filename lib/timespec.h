/*
 * timespec: the times a person types on a command line (lograil --since,
 * --until), to microseconds since the epoch.
 *
 * Accepted, with local time unless the text names a zone:
 *
 *   now, today, yesterday, tomorrow     (the last three: local midnight)
 *   -15m, +2h, -30s, -1d, -1w           (relative to now: a duration as in
 *                                        the configuration, lib/units.h, or
 *                                        weeks, or "min"; the sign is
 *                                        required)
 *   @1764590000[.5]                     (seconds since the epoch, UTC)
 *   2026-12-01                          (local midnight of that day)
 *   2026-12-01 14:02[:05[.123]]         (a space or a 'T' between)
 *   2026-12-01T14:02:05[.123456]Z       (ISO 8601 / RFC 3339, with 'Z' or
 *   2026-12-01T14:02:05+01:00            an offset: then not local time)
 *   14:02[:05]                          (today at that local time)
 *
 * Pure apart from the time zone (localtime_r/mktime read TZ); any thread.
 */
#ifndef LOGRAIL_TIMESPEC_H
#define LOGRAIL_TIMESPEC_H

#include <stdint.h>

/* Parse s, relative to now_us (microseconds since the epoch), into *out_us.
 * Returns 0, or -EINVAL when s is none of the forms above (or names a day
 * that does not exist, such as 2026-02-30). */
int timespec_parse(const char *s, int64_t now_us, int64_t *out_us);

/* Local midnight of the day of t_us plus days (negative: earlier days). */
int64_t timespec_midnight(int64_t t_us, int days);

#endif
