/*
 * logline: a written line back into its fields.  See logline.h.
 */
#include "logline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "syslog_parse.h"

#define US 1000000LL

static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void logline_parser_init(struct logline_parser *p, int64_t ref_us)
{
    memset(p, 0, sizeof(*p));
    p->ref_us = ref_us;
    p->hour_key = -1;
}

void logline_parser_free(struct logline_parser *p)
{
    free(p->rec);
    free(p->scratch);
    p->rec = NULL;
    p->scratch = NULL;
}

static inline bool dig(char c)
{
    return c >= '0' && c <= '9';
}

static inline int d2(const char *s)
{
    return (s[0] - '0') * 10 + (s[1] - '0');
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil), so that a time needs no timegm(). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

size_t logline_parse_rfc3339(const char *s, size_t n, int64_t *us, int *tz_min)
{
    if (n < 20 || !dig(s[0]) || !dig(s[1]) || !dig(s[2]) || !dig(s[3]) || s[4] != '-' ||
        !dig(s[5]) || !dig(s[6]) || s[7] != '-' || !dig(s[8]) || !dig(s[9]) ||
        (s[10] != 'T' && s[10] != ' ') || !dig(s[11]) || !dig(s[12]) || s[13] != ':' ||
        !dig(s[14]) || !dig(s[15]) || s[16] != ':' || !dig(s[17]) || !dig(s[18]))
        return 0;
    int64_t y = d2(s) * 100 + d2(s + 2);
    unsigned mo = (unsigned)d2(s + 5), d = (unsigned)d2(s + 8);
    int h = d2(s + 11), mi = d2(s + 14), sec = d2(s + 17);
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return 0;
    size_t i = 19;
    int64_t frac = 0;
    if (i < n && s[i] == '.') {
        i++;
        int64_t scale = 100000;
        size_t k = 0;
        while (i < n && dig(s[i])) {
            if (k < 6) {
                frac += (s[i] - '0') * scale;
                scale /= 10;
            }
            k++;
            i++;
        }
        if (k == 0)
            return 0;
    }
    int off = 0;
    if (i < n && s[i] == 'Z') {
        i++;
    } else if (i + 6 <= n && (s[i] == '+' || s[i] == '-') && dig(s[i + 1]) && dig(s[i + 2]) &&
               s[i + 3] == ':' && dig(s[i + 4]) && dig(s[i + 5])) {
        off = d2(s + i + 1) * 60 + d2(s + i + 4);
        if (s[i] == '-')
            off = -off;
        i += 6;
    } else {
        return 0;
    }
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off * 60;
    *us = t * US + frac;
    *tz_min = off;
    return i;
}

/* "Mmm dd hh:mm:ss" (15 bytes; the day padded by a space or a zero) in
 * local time, the year chosen so that the time is not more than a day after
 * ref.  Uses mktime() once per local hour. */
static bool trad_time(struct logline_parser *p, const char *s, size_t n, int64_t *us)
{
    if (n < 15 || s[3] != ' ' || s[6] != ' ' || s[9] != ':' || s[12] != ':')
        return false;
    int mon = -1;
    for (int i = 0; i < 12; i++)
        if (memcmp(s, months[i], 3) == 0) {
            mon = i;
            break;
        }
    if (mon < 0 || !(s[4] == ' ' || dig(s[4])) || !dig(s[5]) || !dig(s[7]) || !dig(s[8]) ||
        !dig(s[10]) || !dig(s[11]) || !dig(s[13]) || !dig(s[14]))
        return false;
    int day = (s[4] == ' ' ? 0 : s[4] - '0') * 10 + (s[5] - '0');
    int h = d2(s + 7), mi = d2(s + 10), sec = d2(s + 13);
    if (day < 1 || day > 31 || h > 23 || mi > 59 || sec > 60)
        return false;
    time_t ref = (time_t)(p->ref_us / US);
    struct tm rt;
    if (localtime_r(&ref, &rt) == NULL)
        return false;
    int year = rt.tm_year + 1900;
    /* A line from December read in January belongs to last year. */
    if (mon > rt.tm_mon || (mon == rt.tm_mon && day > rt.tm_mday + 1))
        year--;
    int64_t key = ((int64_t)year * 100 + mon) * 10000 + day * 100 + h;
    if (key != p->hour_key) {
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        tm.tm_year = year - 1900;
        tm.tm_mon = mon;
        tm.tm_mday = day;
        tm.tm_hour = h;
        tm.tm_isdst = -1;
        time_t t = mktime(&tm);
        if (t == (time_t)-1 && (tm.tm_year != 69 || tm.tm_mon != 11 || tm.tm_mday != 31))
            return false;
        p->hour_key = key;
        p->hour_start = (int64_t)t;
    }
    *us = (p->hour_start + mi * 60 + sec) * US;
    return true;
}

static void clear(struct logline *l, int format)
{
    memset(l, 0, sizeof(*l));
    l->format = format;
    l->facility = -1;
    l->severity = -1;
}

static struct logline_text text(const char *p, size_t n)
{
    struct logline_text t = {p, n};
    return t;
}

static int parse_traditional(struct logline_parser *p, const char *s, size_t n,
                             struct logline *l)
{
    clear(l, LOGLINE_TRADITIONAL);
    if (!trad_time(p, s, n, &l->time_us) || n < 16 || s[15] != ' ')
        return -EINVAL;
    l->has_time = true;
    l->syntax = RECORD_RFC3164;
    size_t i = 16;
    const char *h = s + i;
    const char *sp = memchr(h, ' ', n - i);
    size_t hl = sp ? (size_t)(sp - h) : n - i;
    l->host = text(h, hl);
    if (hl == 1 && h[0] == '-')
        l->host = text(h, 0);
    if (sp == NULL)
        return 0;
    i += hl + 1;
    /* A tag "app[procid]:", "app:" or "-[procid]:" then a space or the
     * end; anything else is the message. */
    const char *t = s + i;
    const char *tsp = memchr(t, ' ', n - i);
    size_t tl = tsp ? (size_t)(tsp - t) : n - i;
    if (tl >= 2 && t[tl - 1] == ':') {
        size_t body = tl - 1;
        const char *br = memchr(t, '[', body);
        if (br != NULL && t[body - 1] == ']' && br > t) {
            size_t al = (size_t)(br - t);
            l->app = (al == 1 && t[0] == '-') ? text(t, 0) : text(t, al);
            l->procid = text(br + 1, body - al - 2);
        } else if (br == NULL && memchr(t, ']', body) == NULL) {
            l->app = text(t, body);
        } else {
            l->msg = text(t, n - i);
            return 0;
        }
        i += tl + (tsp ? 1 : 0);
    }
    l->msg = text(s + i, n - i);
    return 0;
}

/* The scratch record for syslog_parse(): the line's bytes and fields. */
static int load_record(struct logline_parser *p, const char *s, size_t n)
{
    size_t need = sizeof(struct record) + n + 1;
    if (need > p->rec_cap) {
        size_t cap = need < 4096 ? 4096 : need * 2;
        struct record *r = realloc(p->rec, cap);
        if (r == NULL)
            return -ENOMEM;
        p->rec = r;
        p->rec_cap = cap;
    }
    struct record *r = p->rec;
    memset(r, 0, sizeof(*r));
    r->facility = 1;
    r->severity = 5;
    r->len = (uint32_t)n;
    memcpy(r->data, s, n);
    r->data[n] = '\0';
    record_clear_spans(r);
    r->msg = (struct span){0, (uint32_t)n};
    r->recv_us = p->ref_us;
    return 0;
}

/* A span of the scratch record, as a pointer into the caller's line. */
static struct logline_text span_text(const char *s, struct span sp)
{
    return text(s + sp.off, sp.len);
}

/* One PARAM-VALUE of lograil's element: the digits of name="..." */
static bool sd_param(const char *e, size_t n, const char *name, int64_t *v)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl + 2 < n; i++) {
        if (e[i] == ' ' && memcmp(e + i + 1, name, nl) == 0 && e[i + 1 + nl] == '=' &&
            e[i + 2 + nl] == '"') {
            const char *q = e + i + 3 + nl;
            const char *end = e + n;
            int64_t x = 0;
            bool neg = false;
            if (q < end && *q == '-') {
                neg = true;
                q++;
            }
            if (q >= end || !dig(*q))
                return false;
            while (q < end && dig(*q)) {
                if (x < INT64_MAX / 10 - 9)
                    x = x * 10 + (*q - '0');
                q++;
            }
            *v = neg ? -x : x;
            return true;
        }
    }
    return false;
}

/* Take lograil's own element (always the last one the daemon writes) out of
 * the SD into the fields it stands for. */
static void take_lograil_sd(struct logline *l)
{
    static const char id[] = "[lograil@32473";
    const size_t idl = sizeof(id) - 1;
    const char *sd = l->sd.p;
    size_t n = l->sd.n;
    if (n < idl + 1 || sd[n - 1] != ']')
        return;
    /* The last element starts at the last '[' outside a quoted value;
     * lograil's own values are digits, so the last "[lograil@32473"
     * followed by ' ' or ']' is it when it leaves nothing after its ']'. */
    const char *e = NULL;
    for (size_t i = 0; i + idl <= n; i++)
        if (memcmp(sd + i, id, idl) == 0 && i + idl < n && (sd[i + idl] == ' ' || sd[i + idl] == ']'))
            e = sd + i;
    if (e == NULL)
        return;
    size_t el = (size_t)(sd + n - e);
    if (memchr(e + 1, '[', el - 1) != NULL)
        return;
    int64_t v;
    if (sd_param(e, el, "pid", &l->pid) && sd_param(e, el, "uid", &l->uid) &&
        sd_param(e, el, "gid", &l->gid))
        l->has_creds = true;
    if (sd_param(e, el, "truncated", &v) && v == 1)
        l->truncated = true;
    if (sd_param(e, el, "parse_error", &v) && v == 1)
        l->parse_error = true;
    l->sd.n = (size_t)(e - sd);
}

static int parse_syslog(struct logline_parser *p, int format, const char *s, size_t n,
                        struct logline *l)
{
    int rc = load_record(p, s, n);
    if (rc != 0)
        return rc;
    struct record *r = p->rec;
    syslog_parse(r, NULL);
    clear(l, format);
    if (format == LOGLINE_RFC5424 && (r->syntax != RECORD_RFC5424 || (r->flags & RECORD_F_PARSE_ERROR)))
        return -EINVAL;
    l->syntax = r->syntax;
    if (!(format == LOGLINE_RAW && r->syntax == RECORD_RAW)) {
        l->facility = r->facility;
        l->severity = r->severity;
    }
    if (r->flags & RECORD_F_HAS_TIME) {
        l->has_time = true;
        l->time_us = r->ts_us;
        if (r->flags & RECORD_F_TIME_HAS_YEAR) {
            l->has_zone = true;
            l->tz_min = r->tz_min;
        }
    }
    l->host = span_text(s, r->host);
    l->app = span_text(s, r->app);
    l->procid = span_text(s, r->procid);
    l->msgid = span_text(s, r->msgid);
    l->sd = span_text(s, r->sd);
    l->msg = span_text(s, r->msg);
    if (format == LOGLINE_RFC5424) {
        if (l->sd.n == 1 && l->sd.p[0] == '-')
            l->sd.n = 0;
        take_lograil_sd(l);
        /* The writer's syntax is not in an rfc5424 line; the line is one. */
        l->syntax = RECORD_RFC5424;
    } else if (r->flags & RECORD_F_PARSE_ERROR) {
        l->parse_error = true;
    }
    return 0;
}

/* ---- json ----------------------------------------------------------------- */

static int scratch_room(struct logline_parser *p, size_t need)
{
    if (need <= p->scratch_cap)
        return 0;
    size_t cap = need < 4096 ? 4096 : need * 2;
    char *s = realloc(p->scratch, cap);
    if (s == NULL)
        return -ENOMEM;
    p->scratch = s;
    p->scratch_cap = cap;
    return 0;
}

static int hex4(const char *s, const char *end, unsigned *v)
{
    if (end - s < 4)
        return -1;
    unsigned x = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        x <<= 4;
        if (dig(c))
            x |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            x |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            x |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *v = x;
    return 0;
}

static char *put_utf8(char *o, unsigned c)
{
    if (c < 0x80) {
        *o++ = (char)c;
    } else if (c < 0x800) {
        *o++ = (char)(0xc0 | (c >> 6));
        *o++ = (char)(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
        *o++ = (char)(0xe0 | (c >> 12));
        *o++ = (char)(0x80 | ((c >> 6) & 0x3f));
        *o++ = (char)(0x80 | (c & 0x3f));
    } else {
        *o++ = (char)(0xf0 | (c >> 18));
        *o++ = (char)(0x80 | ((c >> 12) & 0x3f));
        *o++ = (char)(0x80 | ((c >> 6) & 0x3f));
        *o++ = (char)(0x80 | (c & 0x3f));
    }
    return o;
}

/* A JSON string starting after its opening quote at *pp.  Without escapes
 * the text points into the line; with them, into scratch at *so (which
 * has room for the rest of the line). */
static int json_string(const char **pp, const char *end, char *scratch, size_t *so,
                       struct logline_text *out)
{
    const char *s = *pp;
    const char *q = s;
    while (q < end && *q != '"' && *q != '\\')
        q++;
    if (q >= end)
        return -EINVAL;
    if (*q == '"') {
        *out = text(s, (size_t)(q - s));
        *pp = q + 1;
        return 0;
    }
    char *o0 = scratch + *so, *o = o0;
    memcpy(o, s, (size_t)(q - s));
    o += q - s;
    while (q < end && *q != '"') {
        if (*q != '\\') {
            *o++ = *q++;
            continue;
        }
        if (++q >= end)
            return -EINVAL;
        char c = *q++;
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'u': {
            unsigned v;
            if (hex4(q, end, &v) != 0)
                return -EINVAL;
            q += 4;
            if (v >= 0xd800 && v < 0xdc00 && end - q >= 6 && q[0] == '\\' && q[1] == 'u') {
                unsigned lo;
                if (hex4(q + 2, end, &lo) == 0 && lo >= 0xdc00 && lo < 0xe000) {
                    v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
                    q += 6;
                }
            }
            if (v >= 0xd800 && v < 0xe000)
                v = 0xfffd;
            o = put_utf8(o, v);
            break;
        }
        default:
            return -EINVAL;
        }
    }
    if (q >= end)
        return -EINVAL;
    *out = text(o0, (size_t)(o - o0));
    *so += (size_t)(o - o0);
    *pp = q + 1;
    return 0;
}

static int name_index(const char *const *names, struct logline_text t)
{
    for (int i = 0; names[i] != NULL; i++)
        if (strlen(names[i]) == t.n && memcmp(names[i], t.p, t.n) == 0)
            return i;
    return -1;
}

static bool key_is(struct logline_text k, const char *name)
{
    return strlen(name) == k.n && memcmp(k.p, name, k.n) == 0;
}

static int parse_json(struct logline_parser *p, const char *s, size_t n, struct logline *l)
{
    static const char *const syntaxes[] = {"raw", "rfc3164", "rfc5424", NULL};
    clear(l, LOGLINE_JSON);
    l->facility = 1;
    l->severity = 5;
    /* Unescaping never makes a string longer than its escaped form. */
    int rc = scratch_room(p, n + 1);
    if (rc != 0)
        return rc;
    size_t so = 0;
    const char *q = s, *end = s + n;
    while (q < end && *q == ' ')
        q++;
    if (q >= end || *q++ != '{')
        return -EINVAL;
    bool seen_time = false;
    for (;;) {
        while (q < end && (*q == ' ' || *q == ','))
            q++;
        if (q < end && *q == '}')
            break;
        if (q >= end || *q++ != '"')
            return -EINVAL;
        struct logline_text k, v = {NULL, 0};
        if (json_string(&q, end, p->scratch, &so, &k) != 0)
            return -EINVAL;
        while (q < end && *q == ' ')
            q++;
        if (q >= end || *q++ != ':')
            return -EINVAL;
        while (q < end && *q == ' ')
            q++;
        if (q >= end)
            return -EINVAL;
        int64_t num = 0;
        bool is_num = false, is_true = false;
        if (*q == '"') {
            q++;
            if (json_string(&q, end, p->scratch, &so, &v) != 0)
                return -EINVAL;
        } else if (*q == '-' || dig(*q)) {
            bool neg = *q == '-';
            if (neg)
                q++;
            /* Saturate: the daemon's numbers (pid, uid, gid) are small,
             * and a line may hold anything. */
            while (q < end && dig(*q)) {
                if (num < INT64_MAX / 10 - 9)
                    num = num * 10 + (*q - '0');
                q++;
            }
            if (neg)
                num = -num;
            is_num = true;
        } else if (end - q >= 4 && memcmp(q, "true", 4) == 0) {
            is_true = true;
            q += 4;
        } else if (end - q >= 5 && memcmp(q, "false", 5) == 0) {
            q += 5;
        } else if (end - q >= 4 && memcmp(q, "null", 4) == 0) {
            q += 4;
        } else {
            return -EINVAL;
        }
        int tz;
        if (k.n == 0) {
            continue;
        } else if (key_is(k, "time") && v.p != NULL) {
            if (logline_parse_rfc3339(v.p, v.n, &l->time_us, &tz) == 0)
                return -EINVAL;
            l->tz_min = (int16_t)tz;
            l->has_time = l->has_zone = seen_time = true;
        } else if (key_is(k, "recv_time") && v.p != NULL) {
            if (logline_parse_rfc3339(v.p, v.n, &l->recv_us, &tz) == 0)
                return -EINVAL;
            l->has_recv = true;
        } else if (key_is(k, "facility") && v.p != NULL) {
            int f = name_index(record_facility_names, v);
            l->facility = f >= 0 ? f : 1;
        } else if (key_is(k, "severity") && v.p != NULL) {
            int sv = name_index(record_severity_names, v);
            l->severity = sv >= 0 ? sv : 5;
        } else if (key_is(k, "host")) {
            l->host = (v.n == 1 && v.p[0] == '-') ? text(v.p, 0) : v;
        } else if (key_is(k, "app")) {
            l->app = v;
        } else if (key_is(k, "procid")) {
            l->procid = v;
        } else if (key_is(k, "msgid")) {
            l->msgid = v;
        } else if (key_is(k, "sd")) {
            l->sd = v;
        } else if (key_is(k, "msg")) {
            l->msg = v;
        } else if (key_is(k, "pid") && is_num) {
            l->pid = num;
            l->has_creds = true;
        } else if (key_is(k, "uid") && is_num) {
            l->uid = num;
        } else if (key_is(k, "gid") && is_num) {
            l->gid = num;
        } else if (key_is(k, "truncated")) {
            l->truncated = is_true;
        } else if (key_is(k, "parse_error")) {
            l->parse_error = is_true;
        } else if (key_is(k, "syntax") && v.p != NULL) {
            int sx = name_index(syntaxes, v);
            l->syntax = sx >= 0 ? sx : RECORD_RAW;
        }
    }
    if (!seen_time && !l->has_recv)
        return -EINVAL;
    return 0;
}

/* ---- public ---------------------------------------------------------------- */

int logline_detect(const char *s, size_t n)
{
    if (n > 0 && s[0] == '{')
        return LOGLINE_JSON;
    if (n > 3 && s[0] == '<') {
        size_t i = 1;
        while (i < n && i < 5 && dig(s[i]))
            i++;
        if (i > 1 && i + 2 < n && s[i] == '>' && s[i + 1] == '1' && s[i + 2] == ' ')
            return LOGLINE_RFC5424;
    }
    if (n >= 16 && s[3] == ' ' && s[6] == ' ' && s[9] == ':' && s[12] == ':' && s[15] == ' ')
        for (int i = 0; i < 12; i++)
            if (memcmp(s, months[i], 3) == 0)
                return LOGLINE_TRADITIONAL;
    return LOGLINE_RAW;
}

int logline_parse(struct logline_parser *p, int format, const char *line, size_t len,
                  struct logline *out)
{
    if (p == NULL || out == NULL || (line == NULL && len > 0) || len > UINT32_MAX - 1)
        return -EINVAL;
    switch (format) {
    case LOGLINE_TRADITIONAL:
        return parse_traditional(p, line, len, out);
    case LOGLINE_RFC5424:
        return parse_syslog(p, LOGLINE_RFC5424, line, len, out);
    case LOGLINE_JSON:
        return parse_json(p, line, len, out);
    case LOGLINE_RAW:
        return parse_syslog(p, LOGLINE_RAW, line, len, out);
    default:
        return -EINVAL;
    }
}

bool logline_order_of(const struct logline *l, int64_t *us)
{
    if (l->has_recv) {
        *us = l->recv_us;
        return true;
    }
    if (l->has_time) {
        *us = l->time_us;
        return true;
    }
    return false;
}

int logline_order_time(struct logline_parser *p, int format, const char *s, size_t n,
                       int64_t *us)
{
    int tz;
    switch (format) {
    case LOGLINE_TRADITIONAL:
        return trad_time(p, s, n, us) ? 0 : -EINVAL;
    case LOGLINE_RFC5424: {
        const char *sp = memchr(s, ' ', n < 8 ? n : 8);
        if (sp == NULL)
            return -EINVAL;
        size_t i = (size_t)(sp - s) + 1;
        return logline_parse_rfc3339(s + i, n - i, us, &tz) ? 0 : -EINVAL;
    }
    case LOGLINE_JSON: {
        /* The daemon writes "recv_time" second, after "time", which is at
         * most 40 bytes: look there first. */
        static const char key[] = "\"recv_time\":\"";
        const char *k = memmem(s, n < 96 ? n : 96, key, sizeof(key) - 1);
        if (k == NULL)
            k = memmem(s, n, key, sizeof(key) - 1);
        if (k != NULL) {
            size_t i = (size_t)(k - s) + sizeof(key) - 1;
            if (logline_parse_rfc3339(s + i, n - i, us, &tz))
                return 0;
        }
        struct logline l;
        if (parse_json(p, s, n, &l) != 0 || !logline_order_of(&l, us))
            return -EINVAL;
        return 0;
    }
    case LOGLINE_RAW: {
        struct logline l;
        if (parse_syslog(p, LOGLINE_RAW, s, n, &l) != 0 || !l.has_time)
            return -EINVAL;
        *us = l.time_us;
        return 0;
    }
    default:
        return -EINVAL;
    }
}

int logline_to_record(const struct logline *l, struct record **rec, size_t *cap)
{
    const struct logline_text *f[6] = {&l->host, &l->app, &l->procid, &l->msgid, &l->sd, &l->msg};
    uint64_t total = 0;
    for (int i = 0; i < 6; i++)
        total += f[i]->n;
    if (total > UINT32_MAX - 1)
        return -E2BIG;
    size_t need = sizeof(struct record) + (size_t)total + 1;
    if (need > *cap) {
        size_t nc = need < 4096 ? 4096 : need * 2;
        struct record *r = realloc(*rec, nc);
        if (r == NULL)
            return -ENOMEM;
        *rec = r;
        *cap = nc;
    }
    struct record *r = *rec;
    memset(r, 0, sizeof(*r));
    struct span *sp[6] = {&r->host, &r->app, &r->procid, &r->msgid, &r->sd, &r->msg};
    uint32_t off = 0;
    for (int i = 0; i < 6; i++) {
        if (f[i]->n > 0)
            memcpy(r->data + off, f[i]->p, f[i]->n);
        *sp[i] = (struct span){off, (uint32_t)f[i]->n};
        off += (uint32_t)f[i]->n;
    }
    r->data[off] = '\0';
    r->len = off;
    r->facility = (uint8_t)(l->facility >= 0 && l->facility <= 23 ? l->facility : 1);
    r->severity = (uint8_t)(l->severity >= 0 && l->severity <= 7 ? l->severity : 5);
    r->syntax = (uint8_t)(l->syntax >= 0 && l->syntax <= RECORD_RFC5424 ? l->syntax : RECORD_RAW);
    int64_t order = 0;
    logline_order_of(l, &order);
    r->recv_us = order;
    if (l->has_time) {
        r->ts_us = l->time_us;
        r->flags |= RECORD_F_HAS_TIME;
        if (l->has_zone) {
            r->flags |= RECORD_F_TIME_HAS_YEAR;
            r->tz_min = l->tz_min;
        }
    }
    if (l->has_creds) {
        r->flags |= RECORD_F_HAS_CREDS;
        r->pid = (pid_t)l->pid;
        r->uid = (uid_t)l->uid;
        r->gid = (gid_t)l->gid;
    }
    if (l->truncated)
        r->flags |= RECORD_F_TRUNCATED;
    if (l->parse_error)
        r->flags |= RECORD_F_PARSE_ERROR;
    return 0;
}
