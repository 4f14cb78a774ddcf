/*
 * units: strict parsers for sizes and durations.  See units.h for what is
 * accepted.  strtoll() is not used because it skips leading blanks and
 * takes a sign, which made " +8M" a size; the digits are read here.
 */
#include "units.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* The leading decimal digits of s.  *end points after them (at s when
 * there are none); *over says that they exceed INT64_MAX, which the caller
 * reports only once the rest of the text has been found well formed, so
 * that "99999999999999999999x" is malformed rather than too large. */
static int64_t digits(const char *s, const char **end, bool *over)
{
    int64_t n = 0;
    *over = false;
    for (; *s >= '0' && *s <= '9'; s++) {
        int d = *s - '0';
        if (*over || n > (INT64_MAX - d) / 10)
            *over = true;
        else
            n = n * 10 + d;
    }
    *end = s;
    return n;
}

static int scale(int64_t v, bool over, int64_t mul, int64_t *out)
{
    if (over || v > INT64_MAX / mul)
        return -ERANGE;
    *out = v * mul;
    return 0;
}

int units_parse_size(const char *s, int64_t *out)
{
    if (s == NULL || out == NULL)
        return -EINVAL;
    const char *p;
    bool over;
    int64_t v = digits(s, &p, &over);
    if (p == s)
        return -EINVAL;
    int64_t mul = 1;
    switch (*p) {
    case '\0': break;
    case 'K': case 'k': mul = INT64_C(1) << 10; break;
    case 'M': case 'm': mul = INT64_C(1) << 20; break;
    case 'G': case 'g': mul = INT64_C(1) << 30; break;
    default: return -EINVAL;
    }
    if (mul != 1) {
        p++;
        if (*p == 'B' || *p == 'b')
            p++;
    }
    if (*p != '\0')
        return -EINVAL;
    return scale(v, over, mul, out);
}

int units_parse_duration(const char *s, int64_t *out)
{
    static const struct {
        char suffix[3];
        int64_t ms;
    } units[] = {
        {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60 * 1000},
        {"h", 3600 * 1000}, {"d", 86400 * 1000},
    };
    if (s == NULL || out == NULL)
        return -EINVAL;
    const char *p;
    bool over;
    int64_t v = digits(s, &p, &over);
    if (p == s)
        return -EINVAL;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(p, units[i].suffix) == 0)
            return scale(v, over, units[i].ms, out);
    return -EINVAL;
}
