/*
 * units: strict parsers for sizes and durations.  See units.h for what is
 * accepted.  strtoll() is not used because it skips leading blanks and
 * takes a sign, which made " +8M" a size; the digits are read here.  Each
 * kind of value is a table of its suffixes, so what is accepted can be read
 * at a glance.
 */
#include "units.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct unit {
    char suffix[3];
    int64_t mul;
};

#define KI (INT64_C(1) << 10)
#define MI (INT64_C(1) << 20)
#define GI (INT64_C(1) << 30)

static const struct unit size_units[] = {
    {"", 1},
    {"K", KI}, {"k", KI}, {"KB", KI}, {"Kb", KI}, {"kB", KI}, {"kb", KI},
    {"M", MI}, {"m", MI}, {"MB", MI}, {"Mb", MI}, {"mB", MI}, {"mb", MI},
    {"G", GI}, {"g", GI}, {"GB", GI}, {"Gb", GI}, {"gB", GI}, {"gb", GI},
};

static const struct unit duration_units[] = {
    {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000},
    {"h", 3600 * 1000}, {"d", 86400 * 1000},
};

/* Digits, then exactly one suffix of the table.  A number too large for
 * int64_t is only reported as such (-ERANGE) once the rest of the text has
 * been found well formed, so that "99999999999999999999x" is malformed. */
static int parse(const char *s, int64_t *out, const struct unit *units, size_t n_units)
{
    if (s == NULL || out == NULL)
        return -EINVAL;
    int64_t v = 0;
    bool over = false;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        int d = *p - '0';
        if (over || v > (INT64_MAX - d) / 10)
            over = true;
        else
            v = v * 10 + d;
    }
    if (p == s)
        return -EINVAL;
    for (size_t i = 0; i < n_units; i++) {
        if (strcmp(p, units[i].suffix) != 0)
            continue;
        if (over || v > INT64_MAX / units[i].mul)
            return -ERANGE;
        *out = v * units[i].mul;
        return 0;
    }
    return -EINVAL;
}

int units_parse_size(const char *s, int64_t *out)
{
    return parse(s, out, size_units, sizeof(size_units) / sizeof(size_units[0]));
}

int units_parse_duration(const char *s, int64_t *out)
{
    return parse(s, out, duration_units, sizeof(duration_units) / sizeof(duration_units[0]));
}
