/*
 * timespec: command-line times to microseconds.  See timespec.h.
 */
#include "timespec.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "units.h"

#define US 1000000LL

/* Read between 1 and max decimal digits (exactly n when n > 0). */
static bool num(const char **p, int n, int max, int64_t *v)
{
    int64_t x = 0;
    int i = 0;
    while (i < max && (*p)[i] >= '0' && (*p)[i] <= '9') {
        x = x * 10 + ((*p)[i] - '0');
        i++;
    }
    if (i == 0 || (n > 0 && i != n))
        return false;
    *p += i;
    *v = x;
    return true;
}

static int days_in_month(int64_t y, int64_t m)
{
    static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : d[m - 1];
}

static struct tm broken_down(int64_t y, int64_t mo, int64_t d, int64_t h, int64_t mi, int64_t s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = (int)(y - 1900);
    tm.tm_mon = (int)(mo - 1);
    tm.tm_mday = (int)d;
    tm.tm_hour = (int)h;
    tm.tm_min = (int)mi;
    tm.tm_sec = (int)s;
    return tm;
}

/* Local broken-down time to seconds.  mktime() is given tm_isdst = -1 so
 * that it decides DST itself; it normalises, which a caller has already
 * ruled out by checking the fields. */
static int64_t local_seconds(int64_t y, int64_t mo, int64_t d, int64_t h, int64_t mi,
                             int64_t s)
{
    struct tm tm = broken_down(y, mo, d, h, mi, s);
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm);
}

static int64_t utc_seconds(int64_t y, int64_t mo, int64_t d, int64_t h, int64_t mi,
                           int64_t s)
{
    struct tm tm = broken_down(y, mo, d, h, mi, s);
    return (int64_t)timegm(&tm);
}

int64_t timespec_midnight(int64_t t_us, int days)
{
    time_t t = (time_t)(t_us / US);
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL)
        return t_us;
    tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
    tm.tm_mday += days;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm) * US;
}

/* ".123456": up to six digits count, more are ignored. */
static int64_t fraction(const char **p)
{
    if (**p != '.' && **p != ',')
        return 0;
    const char *q = *p + 1;
    int64_t us = 0, scale = 100000;
    int n = 0;
    while (*q >= '0' && *q <= '9') {
        if (n < 6) {
            us += (*q - '0') * scale;
            scale /= 10;
        }
        n++;
        q++;
    }
    if (n == 0)
        return -1;
    *p = q;
    return us;
}

/* "HH:MM[:SS[.frac]]" */
static bool clock_part(const char **p, int64_t *h, int64_t *mi, int64_t *s, int64_t *us)
{
    if (!num(p, 2, 2, h) || **p != ':')
        return false;
    (*p)++;
    if (!num(p, 2, 2, mi))
        return false;
    *s = 0;
    *us = 0;
    if (**p == ':') {
        (*p)++;
        if (!num(p, 2, 2, s))
            return false;
        if ((*us = fraction(p)) < 0)
            return false;
    }
    return *h <= 23 && *mi <= 59 && *s <= 60;
}

/* "-15m", "+2h": the configuration's durations (lib/units.h), and weeks
 * and "min", which people type on a command line. */
static int relative(const char *s, int64_t now_us, int64_t *out)
{
    int sign = *s == '-' ? -1 : 1;
    char d[32];
    size_t n = strlen(s + 1);
    if (n == 0 || n >= sizeof(d))
        return -EINVAL;
    memcpy(d, s + 1, n + 1);
    int64_t scale = 1;
    if (n > 3 && strcmp(d + n - 3, "min") == 0) {
        d[n - 2] = '\0'; /* "15min" -> "15m" */
    } else if (d[n - 1] == 'w') {
        d[n - 1] = 'd';
        scale = 7;
    }
    int64_t ms;
    if (units_parse_duration(d, &ms) != 0 || ms > INT64_MAX / 1000 / scale / 2)
        return -EINVAL;
    *out = now_us + sign * ms * 1000 * scale;
    return 0;
}

int timespec_parse(const char *s, int64_t now_us, int64_t *out_us)
{
    if (s == NULL || out_us == NULL)
        return -EINVAL;
    while (*s == ' ')
        s++;
    if (strcasecmp(s, "now") == 0) {
        *out_us = now_us;
        return 0;
    }
    if (strcasecmp(s, "today") == 0) {
        *out_us = timespec_midnight(now_us, 0);
        return 0;
    }
    if (strcasecmp(s, "yesterday") == 0) {
        *out_us = timespec_midnight(now_us, -1);
        return 0;
    }
    if (strcasecmp(s, "tomorrow") == 0) {
        *out_us = timespec_midnight(now_us, 1);
        return 0;
    }
    if (*s == '-' || *s == '+')
        return relative(s, now_us, out_us);
    const char *p = s;
    int64_t y, mo, d, h = 0, mi = 0, sec = 0, us = 0;
    if (*s == '@') {
        p++;
        if (!num(&p, 0, 12, &sec) || (us = fraction(&p)) < 0 || *p != '\0')
            return -EINVAL;
        *out_us = sec * US + us;
        return 0;
    }
    if (s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' && s[2] == ':') {
        if (!clock_part(&p, &h, &mi, &sec, &us) || *p != '\0')
            return -EINVAL;
        *out_us = timespec_midnight(now_us, 0) + (h * 3600 + mi * 60 + sec) * US + us;
        return 0;
    }
    if (!num(&p, 4, 4, &y) || *p++ != '-' || !num(&p, 2, 2, &mo) || *p++ != '-' ||
        !num(&p, 2, 2, &d))
        return -EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return -EINVAL;
    if (*p == ' ' || *p == 'T' || *p == 't') {
        p++;
        if (!clock_part(&p, &h, &mi, &sec, &us))
            return -EINVAL;
    }
    if (*p == '\0') {
        *out_us = local_seconds(y, mo, d, h, mi, sec) * US + us;
        return 0;
    }
    int64_t off = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int64_t oh, om = 0;
        p++;
        if (!num(&p, 2, 2, &oh))
            return -EINVAL;
        if (*p == ':')
            p++;
        if (*p != '\0' && !num(&p, 2, 2, &om))
            return -EINVAL;
        if (oh > 23 || om > 59)
            return -EINVAL;
        off = sign * (oh * 3600 + om * 60);
    } else {
        return -EINVAL;
    }
    if (*p != '\0')
        return -EINVAL;
    *out_us = (utc_seconds(y, mo, d, h, mi, sec) - off) * US + us;
    return 0;
}
