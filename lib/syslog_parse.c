#include "syslog_parse.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/*
 * Every helper takes the range [p, e) it may read and checks the length
 * before each access: data is not NUL-terminated as far as we are concerned.
 * No printf, scanf, strptime or mktime: a message must parse in well under
 * a microsecond, so digits and dates are done by hand.
 */

typedef const unsigned char *ucp;

static inline bool sp_digit(unsigned char c)
{
    return (unsigned char)(c - '0') < 10;
}

/* Two digits at p (the caller made sure both exist), or -1. */
static inline int sp_dig2(ucp p)
{
    if (!sp_digit(p[0]) || !sp_digit(p[1]))
        return -1;
    return (p[0] - '0') * 10 + (p[1] - '0');
}

static inline int64_t sp_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static inline struct span sp_span(ucp base, ucp from, ucp to)
{
    struct span s = {0, 0};

    if (to > from) {
        s.off = (uint32_t)(from - base);
        s.len = (uint32_t)(to - from);
    }
    return s;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil), exact for every year we can be sent. */
static int64_t sp_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* The year of a day count (the inverse of the above, year only). */
static int64_t sp_year_from_days(int64_t z)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    return (int64_t)yoe + era * 400 + (mp >= 10);
}

static unsigned sp_days_in_month(int64_t y, unsigned m)
{
    static const unsigned char dim[12] = {31, 28, 31, 30, 31, 30,
                                          31, 31, 30, 31, 30, 31};
    if (m == 2 && (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return 29;
    return dim[m - 1];
}

/*
 * The local UTC offset.  localtime_r() costs far more than a whole parse,
 * and the offset changes only at DST transitions, so each thread remembers
 * it for the current UTC hour.  An hour whose two ends have different
 * offsets holds a transition: within it we ask localtime_r() every time.
 */
static _Thread_local int64_t sp_tz_hour = INT64_MIN;
static _Thread_local int32_t sp_tz_off;
static _Thread_local bool sp_tz_mixed;

/* The local year of the last local day seen, for the same reason. */
static _Thread_local int64_t sp_year_day = INT64_MIN;
static _Thread_local int64_t sp_year;

/* The last date placed: messages received in the same second with the same
 * month and day get the same day and offset (a busy sender's do), and skip
 * the divisions and the calendar.  Kept only when the date chosen lies
 * within 181 days of the receive time, so that no other time of that day
 * could have chosen another year; see sp_bsd_place(). */
static _Thread_local struct {
    int64_t recv; /* receive time, whole seconds; INT64_MIN: empty */
    unsigned mon, day;
    int64_t day0; /* local seconds at the start of the chosen day */
    int32_t off;
} sp_memo = {INT64_MIN, 0, 0, 0, 0};

static int32_t sp_gmtoff(int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (localtime_r(&tt, &tm) == NULL)
        return 0;
    return (int32_t)tm.tm_gmtoff;
}

static int32_t sp_local_offset(int64_t t)
{
    int64_t hour = sp_floor_div(t, 3600);

    if (hour != sp_tz_hour) {
        int32_t a = sp_gmtoff(hour * 3600);
        int32_t b = sp_gmtoff(hour * 3600 + 3599);
        sp_tz_hour = hour;
        sp_tz_off = a;
        sp_tz_mixed = a != b;
    }
    return sp_tz_mixed ? sp_gmtoff(t) : sp_tz_off;
}

void syslog_parse_tz_reset(void)
{
    sp_tz_hour = INT64_MIN;
    sp_memo.recv = INT64_MIN;
}

/* Up to six digits of a seconds fraction after the '.', as microseconds;
 * digits past the sixth are skipped.  NULL if there is no digit. */
static ucp sp_fraction(ucp p, ucp e, int32_t *us)
{
    static const int32_t scale[7] = {1000000, 100000, 10000, 1000, 100, 10, 1};
    int32_t v = 0;
    int n = 0;

    while (p < e && sp_digit(*p)) {
        if (n < 6) {
            v = v * 10 + (*p - '0');
            n++;
        } else if (n == 6) {
            n = 7; /* remember that there were digits; ignore the rest */
        }
        p++;
    }
    if (n == 0)
        return NULL;
    *us = n >= 6 ? v : v * scale[n];
    return p;
}

/* RFC 3339 "YYYY-MM-DDThh:mm:ss[.frac](Z|+hh:mm|-hh:mm)" at [p, e).
 * Returns the end of it, or NULL. */
static ucp sp_rfc3339(ucp p, ucp e, int64_t *ts_us, int16_t *tz_min)
{
    int y, mo, d, h, mi, s, tz = 0;
    int32_t us = 0;

    if (e - p < 20) /* the shortest: 2026-11-26T11:39:07Z */
        return NULL;
    int y1 = sp_dig2(p), y2 = sp_dig2(p + 2);
    mo = sp_dig2(p + 5);
    d = sp_dig2(p + 8);
    h = sp_dig2(p + 11);
    mi = sp_dig2(p + 14);
    s = sp_dig2(p + 17);
    if (y1 < 0 || y2 < 0 || p[4] != '-' || mo < 1 || mo > 12 || p[7] != '-' ||
        d < 1 || (p[10] != 'T' && p[10] != 't') || h < 0 || h > 23 ||
        p[13] != ':' || mi < 0 || mi > 59 || p[16] != ':' || s < 0 || s > 60)
        return NULL;
    y = y1 * 100 + y2;
    if ((unsigned)d > sp_days_in_month(y, (unsigned)mo))
        return NULL;
    p += 19;
    if (*p == '.') {
        p = sp_fraction(p + 1, e, &us);
        if (p == NULL || p == e)
            return NULL;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        if (e - p < 6)
            return NULL;
        int oh = sp_dig2(p + 1), om = sp_dig2(p + 4);
        if (oh < 0 || oh > 23 || p[3] != ':' || om < 0 || om > 59)
            return NULL;
        tz = oh * 60 + om;
        if (*p == '-')
            tz = -tz;
        p += 6;
    } else {
        return NULL;
    }
    int64_t secs = sp_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 +
                   h * 3600 + mi * 60 + s - (int64_t)tz * 60;
    *ts_us = secs * 1000000 + us;
    *tz_min = (int16_t)tz;
    return p;
}

/* "Jan".."Dec" at p (three bytes available), in any case (devices send
 * "AUG"), 1..12, or 0. */
static unsigned sp_month(ucp p)
{
    unsigned a = p[0] | 0x20u, b = p[1] | 0x20u, c = p[2] | 0x20u;

    switch (a) {
    case 'j':
        if (b == 'a' && c == 'n') return 1;
        if (b == 'u' && c == 'n') return 6;
        if (b == 'u' && c == 'l') return 7;
        return 0;
    case 'f': return b == 'e' && c == 'b' ? 2 : 0;
    case 'm':
        if (b == 'a' && c == 'r') return 3;
        if (b == 'a' && c == 'y') return 5;
        return 0;
    case 'a':
        if (b == 'p' && c == 'r') return 4;
        if (b == 'u' && c == 'g') return 8;
        return 0;
    case 's': return b == 'e' && c == 'p' ? 9 : 0;
    case 'o': return b == 'c' && c == 't' ? 10 : 0;
    case 'n': return b == 'o' && c == 'v' ? 11 : 0;
    case 'd': return b == 'e' && c == 'c' ? 12 : 0;
    default: return 0;
    }
}

/* Up to 9 decimal digits at *pp (none gives 0, as rsyslog's reader does:
 * the range checks that follow reject what matters). */
static int sp_int(ucp *pp, ucp e)
{
    ucp p = *pp;
    int v = 0;

    for (int n = 0; p < e && sp_digit(*p) && n < 9; n++)
        v = v * 10 + (*p++ - '0');
    *pp = p;
    return v;
}

/* The parts of an RFC 3164 timestamp. */
struct sp_bsd {
    unsigned mon, day;
    int year; /* 0: not sent */
    int32_t sod, us;
    ucp end;  /* the end of the timestamp's text */
};

/* RFC 3164 "Mmm dd hh:mm:ss" and what devices make of it, as rsyslog's
 * reader takes them: the month in any case, the day " 6", "06" or "6", a
 * year before the month ("2023 Aug 10 ..."; Brocade) or in place of the
 * hour followed by the hour ("Aug 10 2023 12:00:00"; Cisco), a fraction
 * after the seconds, and a ':' after the time.  It must be followed by SP
 * or the end.  Returns where the header goes on (past that SP), or NULL. */
static ucp sp_bsd_time(ucp p, ucp e, struct sp_bsd *t)
{
    int h, mi, s, y = 0;

    /* The RFC's own "Mmm dd hh:mm:ss" (nearly every message) at fixed
     * places, without the digit loops below. */
    if (e - p >= 15 && p[3] == ' ' && p[6] == ' ' && p[9] == ':' && p[12] == ':' &&
        (e - p == 15 || p[15] == ' ')) {
        int d = p[4] == ' ' ? (sp_digit(p[5]) ? p[5] - '0' : -1) : sp_dig2(p + 4);
        h = sp_dig2(p + 7);
        mi = sp_dig2(p + 10);
        s = sp_dig2(p + 13);
        t->mon = sp_month(p);
        if (t->mon != 0 && d >= 1 && d <= 31 && h >= 0 && h <= 23 && mi >= 0 && mi <= 59 &&
            s >= 0 && s <= 60) {
            t->day = (unsigned)d;
            t->year = 0;
            t->sod = h * 3600 + mi * 60 + s;
            t->us = 0;
            t->end = p + 15;
            return e - p == 15 ? e : p + 16;
        }
    }

    if (p < e && sp_digit(*p)) {
        y = sp_int(&p, e);
        if (y < 1970 || y > 2100 || p == e || *p != ' ')
            return NULL;
        p++;
    }
    if (e - p < 14 || p[3] != ' ')
        return NULL;
    t->mon = sp_month(p);
    if (t->mon == 0)
        return NULL;
    p += 4;
    if (*p == ' ')
        p++;
    int d = sp_int(&p, e);
    if (d < 1 || d > 31 || p == e || *p != ' ')
        return NULL;
    p++;
    h = sp_int(&p, e);
    if (y == 0 && h > 1970 && h < 2100) {
        y = h;
        if (p == e || *p != ' ')
            return NULL;
        p++;
        h = sp_int(&p, e);
    }
    if (h > 23 || p == e || *p != ':')
        return NULL;
    p++;
    mi = sp_int(&p, e);
    if (mi > 59 || p == e || *p != ':')
        return NULL;
    p++;
    s = sp_int(&p, e);
    if (s > 60)
        return NULL;
    t->us = 0;
    if (p < e && *p == '.') {
        ucp f = sp_fraction(p + 1, e, &t->us);
        p = f != NULL ? f : p + 1;
    }
    t->end = p;
    if (p < e && *p == ':')
        p++;
    if (p < e) {
        if (*p != ' ')
            return NULL;
        p++;
    }
    t->day = (unsigned)d;
    t->year = y;
    t->sod = h * 3600 + mi * 60 + s;
    return p;
}

/* Place a yearless local time: the year nearest to the receive time, the
 * offset localtime_r() gives at the receive time.  False if the date exists
 * in none of the three years around it (Feb 29). */
static bool sp_bsd_place(struct record *r, unsigned mon, unsigned day,
                         int32_t sod, int32_t us)
{
    /* Receive times beyond +-290000 years would overflow ts_us below. */
    const int64_t lim = INT64_MAX / 1000000 - 3 * 366 * 86400LL;
    int64_t recv = sp_floor_div(r->recv_us, 1000000);
    if (recv < -lim || recv > lim)
        return false;
    if (recv == sp_memo.recv && mon == sp_memo.mon && day == sp_memo.day) {
        r->ts_us = (sp_memo.day0 + sod - sp_memo.off) * 1000000 + us;
        r->tz_min = (int16_t)(sp_memo.off / 60);
        return true;
    }
    int32_t off = sp_local_offset(recv);
    int64_t local = recv + off;
    int64_t lday = sp_floor_div(local, 86400);
    int64_t best = 0, best_diff = INT64_MAX;

    if (lday != sp_year_day) {
        sp_year_day = lday;
        sp_year = sp_year_from_days(lday);
    }
    /* Try the receive year first: within half a year of the receive time
     * it is the nearest, and the neighbours need not be tried. */
    for (int k = 0; k < 3 && best_diff > 182 * 86400LL; k++) {
        int64_t y = sp_year + (k == 0 ? 0 : k == 1 ? -1 : 1);
        if (day > sp_days_in_month(y, mon))
            continue;
        int64_t t = sp_days_from_civil(y, mon, day) * 86400 + sod;
        int64_t diff = t > local ? t - local : local - t;
        if (diff < best_diff) {
            best_diff = diff;
            best = t;
        }
    }
    if (best_diff == INT64_MAX)
        return false;
    /* Within 181 days of the receive time, this date is the one every time
     * of the day picks: a day's move keeps it within the 182 days that end
     * the search, and the other years' dates stay beyond 183. */
    if (best_diff <= 181 * 86400LL) {
        sp_memo.recv = recv;
        sp_memo.mon = mon;
        sp_memo.day = day;
        sp_memo.day0 = best - sod;
        sp_memo.off = off;
    }
    r->ts_us = (best - off) * 1000000 + us;
    r->tz_min = (int16_t)(off / 60);
    return true;
}

/* Whether c ends a scan: c is x, y or z, or (with ctl) at most ' '. */
static inline bool sp_stop(unsigned char c, bool ctl, unsigned char x, unsigned char y,
                           unsigned char z)
{
    return (ctl && c <= ' ') || c == x || c == y || c == z;
}

/* The first byte in [p, e) that sp_stop() says ends the scan, or e.  With
 * SSE2, 16 bytes at a time while 16 remain (a tag and its pid are looked
 * at once or twice per message: bytewise they were a third of a parse). */
static inline ucp sp_scan(ucp p, ucp e, bool ctl, unsigned char x, unsigned char y,
                          unsigned char z)
{
#if defined(__SSE2__)
    const __m128i vx = _mm_set1_epi8((char)x), vy = _mm_set1_epi8((char)y),
                  vz = _mm_set1_epi8((char)z), sp = _mm_set1_epi8(' ');
    while (e - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, vx), _mm_cmpeq_epi8(v, vy)),
                                   _mm_cmpeq_epi8(v, vz));
        if (ctl)
            hit = _mm_or_si128(hit, _mm_cmpeq_epi8(_mm_min_epu8(v, sp), v));
        unsigned m = (unsigned)_mm_movemask_epi8(hit);
        if (m != 0)
            return p + __builtin_ctz(m);
        p += 16;
    }
#endif
    while (p < e && !sp_stop(*p, ctl, x, y, z))
        p++;
    return p;
}

/* A tag at *pp: NAME followed by ':' or "[PID]" and an optional ':', then
 * SP or the end.  On success fill app and procid, move *pp past the SP and
 * return true. */
static bool sp_tag(struct record *r, ucp d, ucp *pp, ucp e)
{
    ucp p = *pp, q, name_end;
    struct span pid = {0, 0};

    q = sp_scan(p, e, true, ':', '[', ']');
    if (q == p || q == e)
        return false;
    name_end = q;
    if (*q == '[') {
        ucp ps = ++q;
        q = sp_scan(q, e, false, ']', ' ', ' ');
        if (q == e || *q != ']')
            return false;
        pid = sp_span(d, ps, q);
        q++;
        if (q < e && *q == ':')
            q++;
    } else if (*q == ':') {
        q++;
    } else {
        return false;
    }
    if (q < e) {
        if (*q != ' ')
            return false;
        q++;
    }
    r->app = sp_span(d, p, name_end);
    r->procid = pid;
    *pp = q;
    return true;
}

static inline bool sp_hostchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || sp_digit(c) ||
           c == '.' || c == '-' || c == '_';
}

static inline bool sp_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || sp_digit(c);
}

/* Place a local time that carried its year ("Aug 10 2023 12:00:00"): the
 * offset is localtime_r()'s at the receive time, as for a yearless one.
 * False if the date does not exist in that year. */
static bool sp_bsd_place_year(struct record *r, const struct sp_bsd *t)
{
    if (t->day > sp_days_in_month(t->year, t->mon))
        return false;
    int32_t off = sp_local_offset(sp_floor_div(r->recv_us, 1000000));
    int64_t local = sp_days_from_civil(t->year, t->mon, t->day) * 86400 + t->sod;
    r->ts_us = (local - off) * 1000000 + t->us;
    r->tz_min = (int16_t)(off / 60);
    return true;
}

/* A timestamp at the start of an RFC 3164 header: RFC 3339 (what rsyslog
 * relays with high-precision time) or RFC 3164 as devices send it, also
 * after one stray SP ("<167> Mar  7 ..."; HP ProCurve).  Sets the time
 * fields and the timestamp span; returns where the header goes on (past
 * the SP after the timestamp), or NULL if there is none. */
static ucp sp_bsd_stamp(struct record *r, ucp d, ucp p, ucp e)
{
    struct sp_bsd t;
    ucp q;

    if (p < e && sp_digit(*p)) {
        q = sp_rfc3339(p, e, &r->ts_us, &r->tz_min);
        if (q != NULL && (q == e || *q == ' ')) {
            r->flags |= RECORD_F_HAS_TIME | RECORD_F_TIME_HAS_YEAR;
            r->timestamp = sp_span(d, p, q);
            return q < e ? q + 1 : q;
        }
        r->ts_us = 0;
        r->tz_min = 0;
    }
    q = sp_bsd_time(p, e, &t);
    if (q == NULL && p < e && *p == ' ') {
        p++;
        q = sp_bsd_time(p, e, &t);
    }
    if (q == NULL)
        return NULL;
    if (t.year != 0 ? sp_bsd_place_year(r, &t) : sp_bsd_place(r, t.mon, t.day, t.sod, t.us))
        r->flags |= RECORD_F_HAS_TIME;
    r->timestamp = sp_span(d, p, t.end);
    return q;
}

/* A host name at p: [A-Za-z0-9._-]+ ending with a letter or digit and
 * followed by SP, or running to the end of the message.  Returns its end,
 * or NULL. */
static ucp sp_host(ucp p, ucp e)
{
    ucp h = p;

    while (h < e && sp_hostchar(*h))
        h++;
    if (h == p)
        return NULL;
    if (h == e || (*h == ' ' && sp_alnum(h[-1])))
        return h;
    return NULL;
}

/* Everything after an RFC 3164 PRI (or the whole message that has none),
 * from a network input, by rsyslog's pmrfc3164 rules: a sender there always
 * puts a HOSTNAME before the TAG.  Blanks then '{' or '[' are a message
 * without header.  Else the timestamp (if any), then a host name if the
 * first word has a host name's shape, then the TAG: every byte up to ':'
 * (which is part of it) or SP (which is not), so that "--",
 * "%PIX-7-710005:" and "dhcp,info" are tags; "NAME[PID]" in it gives app
 * and procid.  One SP after the tag is not part of MSG.  Never fails. */
static void sp_bsd_net(struct record *r, ucp d, ucp p, ucp e)
{
    ucp q = p;

    while (q < e && (*q == ' ' || *q == '\t'))
        q++;
    if (q < e && (*q == '{' || *q == '[')) {
        r->msg = sp_span(d, p, e);
        return;
    }
    q = sp_bsd_stamp(r, d, p, e);
    if (q != NULL)
        p = q;
    q = sp_host(p, e);
    if (q != NULL) {
        r->host = sp_span(d, p, q);
        p = q < e ? q + 1 : q;
    }
    ucp t = sp_scan(p, e, false, ':', ' ', ' ');
    ucp name_end = t;
    if (t > p && t[-1] == ']') {
        ucp b = p;
        while (b < t && *b != '[')
            b++;
        if (b > p && b < t - 1) {
            r->procid = sp_span(d, b + 1, t - 1);
            name_end = b;
        }
    }
    r->app = sp_span(d, p, name_end);
    p = t;
    if (p < e && *p == ':')
        p++;
    if (p < e && *p == ' ')
        p++;
    r->msg = sp_span(d, p, e);
}

/* Everything after an RFC 3164 PRI from a local client; never fails. */
static void sp_bsd(struct record *r, ucp d, ucp p, ucp e)
{
    ucp q = sp_bsd_stamp(r, d, p, e);

    if (q != NULL) {
        p = q;
        if (!sp_tag(r, d, &p, e)) {
            ucp h = p;
            while (h < e && sp_hostchar(*h))
                h++;
            if (h > p && h < e && *h == ' ' && sp_alnum(h[-1])) {
                r->host = sp_span(d, p, h);
                p = h + 1;
                sp_tag(r, d, &p, e);
            }
        }
    } else {
        sp_tag(r, d, &p, e);
    }
    r->msg = sp_span(d, p, e);
}

/* A header field: one or more bytes up to SP, "-" being nil.  Moves *pp
 * past the SP that must follow. */
static bool sp_field(ucp d, ucp *pp, ucp e, struct span *out)
{
    ucp p = *pp, q = p;

    while (q < e && *q != ' ')
        q++;
    if (q == p || q == e)
        return false;
    if (!(q - p == 1 && *p == '-'))
        *out = sp_span(d, p, q);
    *pp = q + 1;
    return true;
}

/* STRUCTURED-DATA: one or more "[SD-ID *(SP NAME="VALUE")]", or "-".
 * Inside VALUE, \" \\ and \] are escapes; any other backslash is itself.
 * Returns the end, or NULL. */
static ucp sp_sd(ucp p, ucp e)
{
    if (p < e && *p == '-')
        return p + 1;
    if (p == e || *p != '[')
        return NULL;
    while (p < e && *p == '[') {
        ucp n = ++p;
        while (p < e && *p != ' ' && *p != ']' && *p != '=' && *p != '"')
            p++;
        if (p == n)
            return NULL;
        for (;;) {
            if (p == e)
                return NULL;
            if (*p == ']') {
                p++;
                break;
            }
            if (*p != ' ')
                return NULL;
            n = ++p;
            while (p < e && *p != ' ' && *p != ']' && *p != '=' && *p != '"')
                p++;
            if (p == n || p == e || *p != '=')
                return NULL;
            /* "name= \"value\"": some senders put a blank after '='
             * (rsyslog takes it); only blanks may stand there. */
            for (p++; p < e && *p == ' '; p++) {
            }
            if (p == e || *p != '"')
                return NULL;
            p++;
            for (;;) {
                if (p == e)
                    return NULL;
                if (*p == '"')
                    break;
                if (*p == '\\' && e - p >= 2 &&
                    (p[1] == '"' || p[1] == '\\' || p[1] == ']'))
                    p += 2;
                else
                    p++;
            }
            p++; /* the closing quote */
        }
    }
    return p;
}

/* Everything after "<PRI>1 ".  False if it is not RFC 5424. */
static bool sp_ietf(struct record *r, ucp d, ucp p, ucp e)
{
    ucp q;

    if (p < e && *p == '-') {
        p++;
    } else {
        q = sp_rfc3339(p, e, &r->ts_us, &r->tz_min);
        if (q == NULL)
            return false;
        r->timestamp = sp_span(d, p, q);
        r->flags |= RECORD_F_HAS_TIME | RECORD_F_TIME_HAS_YEAR;
        p = q;
    }
    if (p == e || *p != ' ')
        return false;
    p++;
    if (!sp_field(d, &p, e, &r->host) || !sp_field(d, &p, e, &r->app) ||
        !sp_field(d, &p, e, &r->procid) || !sp_field(d, &p, e, &r->msgid))
        return false;
    q = sp_sd(p, e);
    if (q == NULL)
        return false;
    if (*p == '[')
        r->sd = sp_span(d, p, q);
    p = q;
    if (p < e) {
        if (*p != ' ')
            return false;
        p++;
        if (e - p >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
            p += 3;
    }
    r->msg = sp_span(d, p, e);
    return true;
}

static void sp_clear(struct record *r)
{
    r->flags &= (uint8_t)~(RECORD_F_PARSE_ERROR | RECORD_F_HAS_TIME |
                           RECORD_F_TIME_HAS_YEAR);
    r->ts_us = 0;
    r->tz_min = 0;
    record_clear_spans(r);
}

int syslog_parse(struct record *r, const struct syslog_parse_opts *o)
{
    unsigned fac = o ? o->default_facility : 1;
    unsigned sev = o ? o->default_severity : 5;
    bool net = o != NULL && (o->flags & SYSLOG_PARSE_HOSTNAME) != 0;
    ucp d, p, e;
    unsigned pri = 0;
    int n = 0;

    if (r == NULL || fac > 23 || sev > 7 || (o != NULL && (o->flags & ~SYSLOG_PARSE_HOSTNAME) != 0))
        return -EINVAL;
    d = (ucp)r->data;
    p = d;
    e = d + r->len;
    sp_clear(r);
    r->syntax = RECORD_RAW;
    r->facility = (uint8_t)fac;
    r->severity = (uint8_t)sev;
    r->msg = sp_span(d, d, e);
    if (p == e || *p != '<') {
        /* RFC 3164 section 4.3.3: a relay takes a message without PRI as
         * the default priority and the rest as the header. */
        if (net) {
            r->syntax = RECORD_RFC3164;
            sp_bsd_net(r, d, p, e);
        }
        return 0;
    }

    /* PRI: "<" 1*3DIGIT ">", at most 191, no leading zero but "<0>". */
    for (p++; p < e && n < 4 && sp_digit(*p); p++, n++)
        pri = pri * 10 + (*p - '0');
    if (n == 0 || n > 3 || p == e || *p != '>' || pri > 191 ||
        (n > 1 && d[1] == '0' && !net)) {
        r->flags |= RECORD_F_PARSE_ERROR;
        return 0;
    }
    p++;
    r->facility = (uint8_t)(pri >> 3);
    r->severity = (uint8_t)(pri & 7);

    if (e - p >= 2 && p[0] == '1' && p[1] == ' ') {
        r->syntax = RECORD_RFC5424;
        if (!sp_ietf(r, d, p + 2, e)) {
            sp_clear(r);
            r->msg = sp_span(d, p, e);
            r->flags |= RECORD_F_PARSE_ERROR;
        }
        return 0;
    }
    r->syntax = RECORD_RFC3164;
    if (net)
        sp_bsd_net(r, d, p, e);
    else
        sp_bsd(r, d, p, e);
    return 0;
}
