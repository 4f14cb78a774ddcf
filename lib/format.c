/*
 * format: one record to one line.  See format.h for what each format writes.
 *
 * The hot path is format_record(): it reserves, once, the most room the
 * record could need (every escaped byte grows at most six-fold), then writes
 * through a plain pointer with no further bounds checks, no printf and no
 * allocation.  Text is copied a word at a time while the word holds nothing
 * to escape; only the bytes around something unusual take the slow path.
 * A record marked RECORD_F_PRINTABLE (all of it ' '..'~', as the ingest
 * thread found when it made the record) is copied without a look by the
 * formats that escape nothing printable (traditional, rfc5424's message,
 * raw): in the writer the look costs more than in format_bench, because
 * the record's bytes were written on another core (a W1b-like load, perf
 * stat per thread: about 30 ns of the writer's 130 per record).
 */
#include "format.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "ascii.h"

/* 32473 is the private enterprise number RFC 5612 reserves for examples
 * and documentation; lograil has no number of its own. */
#define FORMAT_SD_ID "lograil@32473"
#define FORMAT_SD_ID_FORGED "lograil-untrusted@32473"

/* The zone of a cache entry that follows the local time zone. */
#define ZONE_LOCAL INT32_MIN

/* RFC 3339 has four-digit years.  The bounds stay a day inside 0001..9999
 * so that no UTC offset can push a clamped time out of range. */
#define SEC_MIN (-62135596800LL + 86400)  /* 0001-01-02T00:00:00Z */
#define SEC_MAX (253402300799LL - 86400)  /* 9999-12-30T23:59:59Z */

/* Room for every part of a line that is not a copy of record bytes: the
 * timestamps, JSON keys, PRI, our SD element and the numbers in it. */
#define FIXED_ROOM 512

static const char format_names[4][12] = {
    "traditional", "rfc5424", "json", "raw",
};

static const char ts_names[2][9] = { "message", "received" };

static const char syntax_names[3][8] = { "raw", "rfc3164", "rfc5424" };

static const char month_names[12][4] = {
    "Jan", "Feb", "Mar", "Apr", "May", "Jun",
    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
};

/* "00" to "99": two digits per lookup halve the divisions. */
static const char digits2[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "6869707172737475767778798081828384858687888990919293949596979899";

int format_parse_name(const char *name)
{
    if (name == NULL)
        return -EINVAL;
    for (int i = 0; i < 4; i++)
        if (strcmp(name, format_names[i]) == 0)
            return i;
    return -EINVAL;
}

const char *format_name(int kind)
{
    if (kind < 0 || kind > FORMAT_RAW)
        return NULL;
    return format_names[kind];
}

bool format_shows_creds(int kind)
{
    return kind == FORMAT_RFC5424 || kind == FORMAT_JSON;
}

int format_ts_parse_name(const char *name)
{
    if (name == NULL)
        return -EINVAL;
    for (int i = 0; i < 2; i++)
        if (strcmp(name, ts_names[i]) == 0)
            return i;
    return -EINVAL;
}

const char *format_ts_name(int ts)
{
    if (ts < 0 || ts > FORMAT_TS_RECEIVED)
        return NULL;
    return ts_names[ts];
}

/* ---- small writers ------------------------------------------------------
 * Each takes the output pointer and returns it advanced.  The caller has
 * reserved the room. */

static inline char *put2(char *o, unsigned v)
{
    assert(v < 100);
    memcpy(o, digits2 + 2 * v, 2);
    return o + 2;
}

static char *put_str(char *o, const char *s)
{
    size_t n = strlen(s);
    memcpy(o, s, n);
    return o + n;
}

static char *put_u64(char *o, uint64_t v)
{
    char tmp[20];
    char *t = tmp + sizeof(tmp);
    do {
        *--t = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    size_t n = (size_t)(tmp + sizeof(tmp) - t);
    memcpy(o, t, n);
    return o + n;
}

static char *put_i64(char *o, int64_t v)
{
    if (v >= 0)
        return put_u64(o, (uint64_t)v);
    *o++ = '-';
    return put_u64(o, -(uint64_t)v);
}

/* ---- UTF-8 -------------------------------------------------------------- */

/* s[0] is a byte >= 0x80.  Return the length of the well-formed UTF-8
 * sequence it starts, or minus the length of the maximal subpart of an
 * ill-formed one: the longest prefix that could still have begun a valid
 * sequence, and at least one byte.  The second-byte ranges are those of
 * Unicode's table 3-7, which rule out overlongs (E0, F0), surrogates (ED)
 * and code points above U+10FFFF (F4); C0, C1 and F5..FF never start a
 * sequence and a continuation byte never does either. */
static inline int utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    unsigned lo = 0x80, hi = 0xbf;
    size_t need;

    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return -1;
    }
    if (n < 2 || s[1] < lo || s[1] > hi)
        return -1;
    for (size_t i = 2; i < need; i++)
        if (i >= n || (s[i] & 0xc0) != 0x80)
            return -(int)i;
    return (int)need;
}

/* ---- word-at-a-time scanning --------------------------------------------
 * From "Bit Twiddling Hacks": each test is nonzero exactly when some byte of
 * the word passes it (individual result bits may be wrong, presence is not). */

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

static inline uint64_t load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* Some byte < n, for n <= 128. */
static inline uint64_t has_less(uint64_t x, unsigned n)
{
    return (x - ONES * n) & ~x & HIGHS;
}

/* Some byte > n, for n <= 127. */
static inline uint64_t has_more(uint64_t x, unsigned n)
{
    return ((x + ONES * (127 - n)) | x) & HIGHS;
}

static inline uint64_t has_zero(uint64_t x)
{
    return (x - ONES) & ~x & HIGHS;
}

static inline uint64_t has_byte(uint64_t x, unsigned char c)
{
    return has_zero(x ^ (ONES * c));
}

/* ---- escapers ----------------------------------------------------------- */

static inline char *put_octal(char *o, unsigned char c)
{
    o[0] = '#';
    o[1] = (char)('0' + (c >> 6));
    o[2] = (char)('0' + ((c >> 3) & 7));
    o[3] = (char)('0' + (c & 7));
    return o + 4;
}

/* rsyslog's escaping for traditional and rfc5424: printable ASCII and valid
 * UTF-8 as they are, control bytes and each byte of an ill-formed sequence
 * as #ooo.  Grows the text at most four-fold. */
static char *put_octal_text(char *o, const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;

    while (i < n) {
        while (i + 32 <= n && !ascii_unprintable32(s + i)) {
            memcpy(o, s + i, 32);
            o += 32;
            i += 32;
        }
        while (i + 8 <= n) {
            uint64_t v = load64(s + i);
            if (has_less(v, 0x20) | has_more(v, 0x7e))
                break;
            memcpy(o, &v, 8);
            o += 8;
            i += 8;
        }
        /* Something in the next word needs a look: take it a byte at a
         * time, then go back to whole words. */
        size_t end = n - i > 8 ? i + 8 : n;
        while (i < end) {
            unsigned char c = s[i];
            if (c >= 0x20 && c < 0x7f) {
                *o++ = (char)c;
                i++;
            } else if (c < 0x80) {
                o = put_octal(o, c);
                i++;
            } else {
                int k = utf8_seq(s + i, n - i);
                if (k > 0) {
                    memcpy(o, s + i, (size_t)k);
                    o += k;
                    i += (size_t)k;
                } else {
                    for (int j = 0; j < -k; j++)
                        o = put_octal(o, s[i++]);
                }
            }
        }
    }
    return o;
}

/* Whether any of the 32 bytes at s is below `below`, compared as signed
 * char (so that the bytes >= 0x80 count as below any bound >= 0), or
 * equals a, b or c.  With SSE2 that is four compares per 16 bytes and one
 * byte mask. */
static inline bool any32(const unsigned char *s, signed char below, char a, char b, char c)
{
#if defined(__SSE2__)
    const __m128i lo = _mm_set1_epi8(below), va = _mm_set1_epi8(a), vb = _mm_set1_epi8(b),
                  vc = _mm_set1_epi8(c);
    __m128i hit = _mm_setzero_si128();
    for (int h = 0; h < 32; h += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + h));
        hit = _mm_or_si128(hit, _mm_cmplt_epi8(v, lo));
        hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, va));
        hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, vb));
        hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, vc));
    }
    return _mm_movemask_epi8(hit) != 0;
#else
    unsigned char hit = 0;
    for (int j = 0; j < 32; j++)
        hit |= (unsigned char)((signed char)s[j] < below || s[j] == (unsigned char)a ||
                               s[j] == (unsigned char)b || s[j] == (unsigned char)c);
    return hit != 0;
#endif
}

/* In a JSON string: a control byte, a byte of a multi-byte sequence, '"'
 * or '\\'. */
static inline bool json_look32(const unsigned char *s)
{
    return any32(s, ' ', '"', '\\', '"');
}

/* The body of a JSON string: valid UTF-8 whatever the input.  Grows the
 * text at most six-fold (a control byte becomes \u00XX). */
static char *put_json_text(char *o, const char *text, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;

    while (i < n) {
        while (i + 32 <= n && !json_look32(s + i)) {
            memcpy(o, s + i, 32);
            o += 32;
            i += 32;
        }
        while (i + 8 <= n) {
            uint64_t v = load64(s + i);
            if (has_less(v, 0x20) | (v & HIGHS) | has_byte(v, '"') |
                has_byte(v, '\\'))
                break;
            memcpy(o, &v, 8);
            o += 8;
            i += 8;
        }
        size_t end = n - i > 8 ? i + 8 : n;
        while (i < end) {
            unsigned char c = s[i];
            if (c >= 0x80) {
                int k = utf8_seq(s + i, n - i);
                if (k > 0) {
                    memcpy(o, s + i, (size_t)k);
                    o += k;
                    i += (size_t)k;
                } else {
                    memcpy(o, "\xef\xbf\xbd", 3); /* U+FFFD */
                    o += 3;
                    i += (size_t)-k;
                }
                continue;
            }
            i++;
            if (c >= 0x20 && c != '"' && c != '\\') {
                *o++ = (char)c;
                continue;
            }
            *o++ = '\\';
            switch (c) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '\n': *o++ = 'n'; break;
            case '\t': *o++ = 't'; break;
            case '\r': *o++ = 'r'; break;
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            default:
                memcpy(o, "u00", 3);
                o[3] = hex[c >> 4];
                o[4] = hex[c & 15];
                o += 5;
                break;
            }
        }
    }
    return o;
}

/* In raw output: NUL, LF or CR. */
static inline bool raw_look32(const unsigned char *s)
{
    return any32(s, SCHAR_MIN, '\0', '\n', '\r');
}

/* Raw output: only the bytes that would end or hide a line are escaped. */
static char *put_raw_text(char *o, const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;

    while (i < n) {
        while (i + 32 <= n && !raw_look32(s + i)) {
            memcpy(o, s + i, 32);
            o += 32;
            i += 32;
        }
        while (i + 8 <= n) {
            uint64_t v = load64(s + i);
            if (has_zero(v) | has_byte(v, '\n') | has_byte(v, '\r'))
                break;
            memcpy(o, &v, 8);
            o += 8;
            i += 8;
        }
        size_t end = n - i > 8 ? i + 8 : n;
        for (; i < end; i++) {
            unsigned char c = s[i];
            if (c == '\0' || c == '\n' || c == '\r')
                o = put_octal(o, c);
            else
                *o++ = (char)c;
        }
    }
    return o;
}

/* An RFC 5424 header field: PRINTUSASCII only, at most max bytes, "-" when
 * absent. */
static char *put_header_field(char *o, const char *s, size_t n, size_t max)
{
    if (n == 0) {
        *o++ = '-';
        return o;
    }
    if (n > max)
        n = max;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        o[i] = (c >= 33 && c <= 126) ? (char)c : '_';
    }
    return o + n;
}

/* ---- time --------------------------------------------------------------- */

static inline int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b) < 0)
        q--;
    return q;
}

/* Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
 * civil_from_days), so that fixed offsets need no gmtime_r(). */
static void civil_from_days(int64_t z, int *year, unsigned *mon, unsigned *day)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *day = doy - (153 * mp + 2) / 5 + 1;
    *mon = mp < 10 ? mp + 3 : mp - 9;
    *year = (int)(era * 400 + yoe + (*mon <= 2));
}

static void tcache_fill_text(struct format_tcache *e, int year, unsigned mon,
                             unsigned day, unsigned hour, unsigned min,
                             long gmtoff)
{
    char *o = e->iso;
    if (year < 0)
        year = 0;
    if (year > 9999)
        year = 9999;
    o = put2(o, (unsigned)year / 100);
    o = put2(o, (unsigned)year % 100);
    *o++ = '-';
    o = put2(o, mon);
    *o++ = '-';
    o = put2(o, day);
    *o++ = 'T';
    o = put2(o, hour);
    *o++ = ':';
    o = put2(o, min);
    *o++ = ':';
    *o = '\0';

    o = e->trad;
    memcpy(o, month_names[mon - 1], 3);
    o[3] = ' ';
    o[4] = day < 10 ? ' ' : (char)('0' + day / 10);
    o[5] = (char)('0' + day % 10);
    o[6] = ' ';
    o = put2(o + 7, hour);
    *o++ = ':';
    o = put2(o, min);
    *o++ = ':';
    *o = '\0';

    /* RFC 3339 offsets are whole minutes; the seconds of a pre-1900 local
     * mean time are dropped. */
    long m = gmtoff / 60;
    o = e->off;
    *o++ = m < 0 ? '-' : '+';
    if (m < 0)
        m = -m;
    o = put2(o, (unsigned)(m / 60 % 100));
    *o++ = ':';
    o = put2(o, (unsigned)(m % 60));
    *o = '\0';
}

static void tcache_fill_fixed(struct format_tcache *e, int64_t sec,
                              int32_t zone)
{
    int64_t local = floor_div(sec, 60) * 60 + (int64_t)zone * 60;
    int64_t days = floor_div(local, 86400);
    unsigned sod = (unsigned)(local - days * 86400);
    int year;
    unsigned mon, day;

    civil_from_days(days, &year, &mon, &day);
    e->key = floor_div(sec, 60) * 60;
    e->span = 60;
    e->zone = zone;
    e->sec0 = 0;
    tcache_fill_text(e, year, mon, day, sod / 3600, sod / 60 % 60,
                     (long)zone * 60);
}

/* The local zone's offset may change at any instant, but in practice only
 * on whole minutes.  An entry covers a whole UTC minute only when both its
 * ends agree on an offset of whole minutes (and on the local minute, which
 * rules out the leap seconds of "right/" zones); otherwise it covers one
 * second, which keeps the rare odd zone exact rather than fast. */
static void tcache_fill_local(struct format_tcache *e, int64_t sec)
{
    int64_t key = floor_div(sec, 60) * 60;
    time_t t0 = (time_t)key, t1 = (time_t)(key + 59), ts = (time_t)sec;
    struct tm a, b;

    if (localtime_r(&t0, &a) != NULL && localtime_r(&t1, &b) != NULL &&
        a.tm_gmtoff == b.tm_gmtoff && a.tm_gmtoff % 60 == 0 &&
        a.tm_sec == 0 && b.tm_sec == 59 && a.tm_min == b.tm_min) {
        e->key = key;
        e->span = 60;
        e->sec0 = 0;
    } else if (localtime_r(&ts, &a) != NULL) {
        e->key = sec;
        e->span = 1;
        e->sec0 = a.tm_sec;
    } else {
        /* Cannot happen inside SEC_MIN..SEC_MAX; UTC is the honest
         * fallback. */
        tcache_fill_fixed(e, sec, 0);
        e->zone = ZONE_LOCAL;
        return;
    }
    e->zone = ZONE_LOCAL;
    tcache_fill_text(e, a.tm_year + 1900, (unsigned)a.tm_mon + 1,
                     (unsigned)a.tm_mday, (unsigned)a.tm_hour,
                     (unsigned)a.tm_min, a.tm_gmtoff);
}

static inline bool tcache_hit(const struct format_tcache *e, int64_t sec,
                              int32_t zone)
{
    return e->zone == zone && sec >= e->key && sec - e->key < e->span;
}

/* The cache entry covering sec in zone (ZONE_LOCAL or minutes east). */
static const struct format_tcache *tcache_get(struct format_ctx *ctx,
                                              int64_t sec, int32_t zone)
{
    struct format_tcache *set = zone == ZONE_LOCAL ? ctx->local : ctx->fixed;
    uint8_t *next = zone == ZONE_LOCAL ? &ctx->local_next : &ctx->fixed_next;

    /* An entry that hits becomes the one kept; the other is replaced on
     * the next miss. */
    if (tcache_hit(&set[0], sec, zone)) {
        *next = 1;
        return &set[0];
    }
    if (tcache_hit(&set[1], sec, zone)) {
        *next = 0;
        return &set[1];
    }
    struct format_tcache *e = &set[*next];
    *next ^= 1;
    if (zone == ZONE_LOCAL)
        tcache_fill_local(e, sec);
    else
        tcache_fill_fixed(e, sec, zone);
    return e;
}

/* A moment to print: whole seconds, microseconds and the zone. */
struct when {
    int64_t sec;
    uint32_t usec;
    int32_t zone;
};

static struct when when_from_us(int64_t us, int32_t zone)
{
    /* Division and remainder, not multiplication back, so that
     * INT64_MIN cannot overflow. */
    struct when w;
    int64_t rem = us % 1000000;
    w.sec = us / 1000000;
    if (rem < 0) {
        rem += 1000000;
        w.sec--;
    }
    w.usec = (uint32_t)rem;
    w.zone = zone;
    return w;
}

static struct when when_received(const struct record *r, int32_t zone)
{
    struct when w = when_from_us(r->recv_us, zone);
    if (w.sec < SEC_MIN || w.sec > SEC_MAX) {
        w.sec = w.sec < SEC_MIN ? SEC_MIN : SEC_MAX;
        w.usec = 0;
    }
    return w;
}

/* The time a line shows: see the timestamp modes in format.h.  With
 * own_zone, a message time that carried its offset keeps it. */
static struct when when_shown(const struct format_ctx *ctx,
                              const struct record *r, bool own_zone)
{
    if (ctx->ts == FORMAT_TS_MESSAGE && (r->flags & RECORD_F_HAS_TIME)) {
        int32_t zone = ZONE_LOCAL;
        if (own_zone && (r->flags & RECORD_F_TIME_HAS_YEAR) &&
            r->tz_min > -24 * 60 && r->tz_min < 24 * 60)
            zone = r->tz_min;
        struct when w = when_from_us(r->ts_us, zone);
        if (w.sec >= SEC_MIN && w.sec <= SEC_MAX)
            return w;
    }
    return when_received(r, ZONE_LOCAL);
}

/* "2026-11-26T11:03:56.123456+01:00", or with a "Z" for utc_z. */
static char *put_iso_time(char *o, struct format_ctx *ctx, struct when w,
                          bool utc_z)
{
    const struct format_tcache *e = tcache_get(ctx, w.sec, w.zone);
    memcpy(o, e->iso, 17);
    o = put2(o + 17, (unsigned)(e->sec0 + (w.sec - e->key)));
    *o++ = '.';
    o = put2(o, w.usec / 10000);
    o = put2(o, w.usec / 100 % 100);
    o = put2(o, w.usec % 100);
    if (utc_z) {
        *o++ = 'Z';
        return o;
    }
    memcpy(o, e->off, 6);
    return o + 6;
}

/* "Nov 26 11:03:56" */
static char *put_trad_time(char *o, struct format_ctx *ctx, struct when w)
{
    const struct format_tcache *e = tcache_get(ctx, w.sec, w.zone);
    memcpy(o, e->trad, 13);
    return put2(o + 13, (unsigned)(e->sec0 + (w.sec - e->key)));
}

/* ---- the formats -------------------------------------------------------- */

static inline const char *at(const struct record *r, struct span s)
{
    return r->data + s.off;
}

/* A span in the octal escaping; as it is when the whole record is
 * printable (the ingest thread looked, so the writer need not). */
static char *put_octal_span(char *o, const struct record *r, struct span s)
{
    if (r->flags & RECORD_F_PRINTABLE) {
        memcpy(o, at(r, s), s.len);
        return o + s.len;
    }
    return put_octal_text(o, at(r, s), s.len);
}

static char *put_host(char *o, const struct format_ctx *ctx,
                      const struct record *r)
{
    if (r->host.len == 0) {
        memcpy(o, ctx->host, ctx->host_len);
        return o + ctx->host_len;
    }
    switch (ctx->kind) {
    case FORMAT_RFC5424:
        return put_header_field(o, at(r, r->host), r->host.len, 255);
    case FORMAT_JSON:
        return put_json_text(o, at(r, r->host), r->host.len);
    default:
        return put_octal_span(o, r, r->host);
    }
}

static char *format_traditional(struct format_ctx *ctx,
                                const struct record *r, char *o)
{
    o = put_trad_time(o, ctx, when_shown(ctx, r, false));
    *o++ = ' ';
    o = put_host(o, ctx, r);
    if (r->app.len > 0 || r->procid.len > 0) {
        *o++ = ' ';
        if (r->app.len > 0)
            o = put_octal_span(o, r, r->app);
        else
            *o++ = '-';
        if (r->procid.len > 0) {
            *o++ = '[';
            o = put_octal_span(o, r, r->procid);
            *o++ = ']';
        }
        *o++ = ':';
    }
    if (r->msg.len > 0) {
        *o++ = ' ';
        o = put_octal_span(o, r, r->msg);
    }
    if (r->flags & RECORD_F_TRUNCATED)
        o = put_str(o, FORMAT_TRUNCATED_MARK);
    *o++ = '\n';
    return o;
}

/* A PARAM-VALUE of our own element (RFC 5424 6.3.3): '"', '\\' and ']'
 * escaped with a backslash; bytes outside printable ASCII become '?' (the
 * trusted fields are addresses and certificate subjects, printable). */
static char *put_param_value(char *o, const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (c == '"' || c == '\\' || c == ']')
            *o++ = '\\';
        *o++ = c >= ' ' && c <= '~' ? c : '?';
    }
    return o;
}

/* The received STRUCTURED-DATA, escaped like a message, with any element
 * that claims lograil's SD-ID renamed: only lograil may vouch for a sender.
 * An element starts at a '[' outside a quoted PARAM-VALUE. */
static char *put_sd(char *o, const char *sd, size_t n)
{
    static const char id[] = FORMAT_SD_ID;
    const size_t idlen = sizeof(id) - 1;

    if (memmem(sd, n, id, idlen) == NULL)
        return put_octal_text(o, sd, n);

    size_t from = 0;
    bool quoted = false;
    for (size_t i = 0; i < n; i++) {
        char c = sd[i];
        if (quoted) {
            if (c == '\\')
                i++;
            else if (c == '"')
                quoted = false;
        } else if (c == '"') {
            quoted = true;
        } else if (c == '[' && n - i - 1 > idlen &&
                   memcmp(sd + i + 1, id, idlen) == 0 &&
                   (sd[i + 1 + idlen] == ' ' || sd[i + 1 + idlen] == ']')) {
            o = put_octal_text(o, sd + from, i + 1 - from);
            o = put_str(o, FORMAT_SD_ID_FORGED);
            i += idlen;
            from = i + 1;
        }
    }
    return put_octal_text(o, sd + from, n - from);
}

static char *format_rfc5424(struct format_ctx *ctx, const struct record *r,
                            char *o)
{
    *o++ = '<';
    o = put_u64(o, (unsigned)r->facility * 8u + r->severity);
    memcpy(o, ">1 ", 3);
    o = put_iso_time(o + 3, ctx, when_shown(ctx, r, true), false);
    *o++ = ' ';
    o = put_host(o, ctx, r);
    *o++ = ' ';
    o = put_header_field(o, at(r, r->app), r->app.len, 48);
    *o++ = ' ';
    o = put_header_field(o, at(r, r->procid), r->procid.len, 128);
    *o++ = ' ';
    o = put_header_field(o, at(r, r->msgid), r->msgid.len, 32);
    *o++ = ' ';

    /* A parser may hand over RFC 5424's NILVALUE itself; written before our
     * own element it would make the SD unparseable. */
    bool has_sd = r->sd.len > 0 && !(r->sd.len == 1 && at(r, r->sd)[0] == '-');
    bool creds = (r->flags & RECORD_F_HAS_CREDS) != 0;
    bool trunc = (r->flags & RECORD_F_TRUNCATED) != 0;
    bool perr = (r->flags & RECORD_F_PARSE_ERROR) != 0;
    bool peer = r->peer.len > 0 || r->peer_name.len > 0;
    if (has_sd)
        o = put_sd(o, at(r, r->sd), r->sd.len);
    if (creds || trunc || perr || peer) {
        o = put_str(o, "[" FORMAT_SD_ID);
        if (creds) {
            o = put_str(o, " pid=\"");
            o = put_i64(o, r->pid);
            o = put_str(o, "\" uid=\"");
            o = put_u64(o, r->uid);
            o = put_str(o, "\" gid=\"");
            o = put_u64(o, r->gid);
            *o++ = '"';
        }
        if (r->peer.len > 0) {
            o = put_str(o, " peer=\"");
            o = put_param_value(o, at(r, r->peer), r->peer.len);
            *o++ = '"';
        }
        if (r->peer_name.len > 0) {
            o = put_str(o, " peer_name=\"");
            o = put_param_value(o, at(r, r->peer_name), r->peer_name.len);
            *o++ = '"';
        }
        if (trunc)
            o = put_str(o, " truncated=\"1\"");
        if (perr)
            o = put_str(o, " parse_error=\"1\"");
        *o++ = ']';
    } else if (!has_sd) {
        *o++ = '-';
    }
    if (r->msg.len > 0) {
        *o++ = ' ';
        o = put_octal_span(o, r, r->msg);
    }
    *o++ = '\n';
    return o;
}

static char *put_json_span(char *o, const char *key, const struct record *r,
                           struct span s)
{
    if (s.len == 0)
        return o;
    o = put_str(o, key);
    o = put_json_text(o, at(r, s), s.len);
    *o++ = '"';
    return o;
}

static char *format_json(struct format_ctx *ctx, const struct record *r,
                         char *o)
{
    o = put_str(o, "{\"time\":\"");
    o = put_iso_time(o, ctx, when_shown(ctx, r, true), false);
    o = put_str(o, "\",\"recv_time\":\"");
    o = put_iso_time(o, ctx, when_received(r, 0), true);
    o = put_str(o, "\",\"facility\":\"");
    o = put_str(o, record_facility_names[r->facility]);
    o = put_str(o, "\",\"severity\":\"");
    o = put_str(o, record_severity_names[r->severity]);
    o = put_str(o, "\",\"host\":\"");
    o = put_host(o, ctx, r);
    *o++ = '"';
    o = put_json_span(o, ",\"app\":\"", r, r->app);
    o = put_json_span(o, ",\"procid\":\"", r, r->procid);
    o = put_json_span(o, ",\"msgid\":\"", r, r->msgid);
    o = put_json_span(o, ",\"sd\":\"", r, r->sd);
    o = put_str(o, ",\"msg\":\"");
    o = put_json_text(o, at(r, r->msg), r->msg.len);
    *o++ = '"';
    if (r->flags & RECORD_F_HAS_CREDS) {
        o = put_str(o, ",\"pid\":");
        o = put_i64(o, r->pid);
        o = put_str(o, ",\"uid\":");
        o = put_u64(o, r->uid);
        o = put_str(o, ",\"gid\":");
        o = put_u64(o, r->gid);
    }
    o = put_json_span(o, ",\"peer\":\"", r, r->peer);
    o = put_json_span(o, ",\"peer_name\":\"", r, r->peer_name);
    if (r->flags & RECORD_F_TRUNCATED)
        o = put_str(o, ",\"truncated\":true");
    if (r->flags & RECORD_F_PARSE_ERROR)
        o = put_str(o, ",\"parse_error\":true");
    o = put_str(o, ",\"syntax\":\"");
    o = put_str(o, syntax_names[r->syntax]);
    o = put_str(o, "\"}\n");
    return o;
}

static char *format_raw(const struct record *r, char *o)
{
    if (r->flags & RECORD_F_PRINTABLE) {
        memcpy(o, r->data, r->len);
        o += r->len;
    } else {
        o = put_raw_text(o, r->data, r->len);
    }
    if (r->flags & RECORD_F_TRUNCATED)
        o = put_str(o, FORMAT_TRUNCATED_MARK);
    *o++ = '\n';
    return o;
}

/* ---- public ------------------------------------------------------------- */

int format_ctx_init(struct format_ctx *ctx, enum format_kind kind,
                    enum format_ts ts, const char *hostname)
{
    char name[FORMAT_HOST_MAX + 1];

    if (ctx == NULL || (unsigned)kind > FORMAT_RAW ||
        (unsigned)ts > FORMAT_TS_RECEIVED)
        return -EINVAL;
    memset(ctx, 0, sizeof(*ctx));
    ctx->kind = kind;
    ctx->ts = ts;

    if (hostname == NULL) {
        if (gethostname(name, sizeof(name)) != 0)
            name[0] = '\0';
        name[FORMAT_HOST_MAX] = '\0';
        hostname = name;
    }
    size_t n = strnlen(hostname, FORMAT_HOST_MAX);
    /* A line always names a host: with none known, say so as RFC 5424
     * does. */
    if (n == 0) {
        hostname = "-";
        n = 1;
    }
    char *e;
    switch (kind) {
    case FORMAT_RFC5424:
        e = put_header_field(ctx->host, hostname, n, 255);
        break;
    case FORMAT_JSON:
        e = put_json_text(ctx->host, hostname, n);
        break;
    default:
        e = put_octal_text(ctx->host, hostname, n);
        break;
    }
    ctx->host_len = (uint32_t)(e - ctx->host);

    /* Entries with span 0 never hit, so the caches start empty. */
    ctx->local[0].zone = ctx->local[1].zone = ZONE_LOCAL;

    /* localtime_r() need not look at TZ again; this makes a TZ set before
     * the context was made take effect. */
    tzset();
    return 0;
}

static bool span_ok(const struct record *r, struct span s)
{
    return s.len == 0 || (uint64_t)s.off + s.len <= r->len;
}

/* A trusted field lies after the message and its NUL. */
static bool ext_span_ok(const struct record *r, struct span s)
{
    return s.len == 0 || (s.off > r->len && (uint64_t)s.off + s.len <= (uint64_t)r->len + 1 + r->ext_len);
}

int format_record(struct format_ctx *ctx, const struct record *r,
                  struct buf *out)
{
    if (ctx == NULL || r == NULL || out == NULL)
        return -EINVAL;
    if (r->facility > 23 || r->severity > 7 || r->syntax > RECORD_RFC5424 ||
        !span_ok(r, r->host) || !span_ok(r, r->app) ||
        !span_ok(r, r->procid) || !span_ok(r, r->msgid) ||
        !span_ok(r, r->sd) || !span_ok(r, r->msg) || !ext_span_ok(r, r->peer) ||
        !ext_span_ok(r, r->peer_name))
        return -EINVAL;

    /* The most this record can take: every byte copied from it grows at
     * most six-fold (JSON's \u00XX) or four-fold (#ooo). */
    uint64_t bytes;
    uint64_t factor;
    if (ctx->kind == FORMAT_RAW) {
        bytes = r->len;
        factor = 4;
    } else {
        bytes = (uint64_t)r->host.len + r->app.len + r->procid.len +
                r->msgid.len + r->sd.len + r->msg.len + r->peer.len + r->peer_name.len;
        factor = ctx->kind == FORMAT_JSON ? 6 : 4;
    }
    uint64_t need = bytes * factor + FIXED_ROOM + ctx->host_len;
    if (need > SIZE_MAX)
        return -ENOMEM;
    int rc = buf_reserve(out, (size_t)need);
    if (rc != 0)
        return rc;

    char *start = out->p + out->len;
    char *o;
    switch (ctx->kind) {
    case FORMAT_TRADITIONAL:
        o = format_traditional(ctx, r, start);
        break;
    case FORMAT_RFC5424:
        o = format_rfc5424(ctx, r, start);
        break;
    case FORMAT_JSON:
        o = format_json(ctx, r, start);
        break;
    case FORMAT_RAW:
        o = format_raw(r, start);
        break;
    default:
        return -EINVAL;
    }
    assert((uint64_t)(o - start) <= need);
    out->len += (size_t)(o - start);
    return 0;
}
