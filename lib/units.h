/*
 * units: sizes and durations written as text, as a person writes them in
 * the configuration ("64M", "500ms").
 *
 * Both parsers are strict, so that a typing slip is an error rather than a
 * surprise: the text is one or more ASCII digits (decimal; leading zeros
 * allowed), directly followed by at most one suffix from the list below,
 * and nothing else.  No blanks anywhere, no sign, no fraction, no
 * hexadecimal, not empty; a value that does not fit in int64_t after the
 * suffix's multiplication is refused, never wrapped or clamped.
 *
 * Sizes, in bytes.  Suffixes are binary multiples, in either case, with an
 * optional "B" (or "b") after the letter:
 *     (none)  bytes            "4096"
 *     K, KB   1024             "64K", "64k", "64KB", "64kb"
 *     M, MB   1024^2           "8M"
 *     G, GB   1024^3           "1G"
 *   A bare "B" ("100B") is refused, as are "KiB", "2T" and a letter
 *   followed by anything but "B".
 *
 * Durations, in milliseconds.  Suffixes, lower case only:
 *     (none)  seconds          "30"
 *     ms      milliseconds     "500ms"
 *     s       seconds          "1s"
 *     m       minutes          "5m"
 *     h       hours            "2h"
 *     d       days             "7d"
 *   "1S", "1min", "1.5s" and "1h30m" are refused.
 *
 * Pure functions: any thread; nothing is kept.
 */
#ifndef LOGRAIL_UNITS_H
#define LOGRAIL_UNITS_H

#include <stdint.h>

/* Parse a size in bytes.  0 and *out set; -EINVAL for text that is not a
 * size (or s or out NULL), -ERANGE when it is one but too large for
 * int64_t.  On error *out is unchanged. */
int units_parse_size(const char *s, int64_t *out);

/* Parse a duration into milliseconds.  0 and *out set; -EINVAL for text
 * that is not a duration (or s or out NULL), -ERANGE when it is one but
 * too long for int64_t milliseconds.  On error *out is unchanged. */
int units_parse_duration(const char *s, int64_t *out);

#endif
