/*
 * Unit tests for lib/format.c (and lib/buf.c, which exists for it).
 *
 * Every line any test produces goes through check_line(): exactly one '\n',
 * at the end.  Escaping is checked three ways: exact strings for chosen
 * inputs, a reference escaper written here in the plainest possible way
 * (its UTF-8 knowledge comes from encoding every code point, not from a
 * table of ranges) for random inputs, and Python's json module, which must
 * accept every JSON line and decode to what Python's own UTF-8 decoder
 * makes of the raw bytes.  Times are checked against localtime_r() in zones
 * with DST, half-hour and odd offsets, over years and across transitions.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "format.h"
#include "record.h"

/* 2026-11-26T11:03:56.123456Z */
#define T_RECV 1795691036123456LL
#define PY "/usr/bin/python3"

/* ---- helpers ------------------------------------------------------------ */

/* Check's assertions report their place to the parent process on every
 * call, passing or not; in loops of millions that is most of the run time.
 * Hot paths therefore test first and call Check only to fail. */
#define REQUIRE(cond)                                                       \
    do {                                                                    \
        if (!(cond))                                                        \
            ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);           \
    } while (0)
#define REQUIRE_MSG(cond, ...)                                              \
    do {                                                                    \
        if (!(cond))                                                        \
            ck_abort_msg(__VA_ARGS__);                                      \
    } while (0)

static void set_tz(const char *tz)
{
    ck_assert_int_eq(setenv("TZ", tz, 1), 0);
    tzset();
}

static void setup(void)
{
    set_tz("UTC");
}

/* One line: non-empty, ends in '\n', no other '\n'. */
static void check_line(const char *p, size_t n)
{
    REQUIRE(n > 0);
    REQUIRE_MSG(p[n - 1] == '\n', "no final newline: %.*s", (int)n, p);
    REQUIRE_MSG(memchr(p, '\n', n - 1) == NULL, "two lines: %.*s", (int)n, p);
}

struct piece {
    const char *p;
    size_t n;
};
#define P(s) ((struct piece){ (s), sizeof(s) - 1 })

struct fields {
    struct piece host, app, procid, msgid, sd, msg;
};

static struct span place(char *data, size_t *len, struct piece pc)
{
    struct span s = { 0, 0 };
    if (pc.p == NULL)
        return s;
    s.off = (uint32_t)*len;
    s.len = (uint32_t)pc.n;
    memcpy(data + *len, pc.p, pc.n);
    *len += pc.n;
    data[(*len)++] = ' ';
    return s;
}

/* A record whose data is the fields one after another, as a parser would
 * leave them, received at T_RECV. */
static struct record *mkrec(struct fields f)
{
    size_t cap = f.host.n + f.app.n + f.procid.n + f.msgid.n + f.sd.n +
                 f.msg.n + 8;
    char *data = malloc(cap);
    REQUIRE(data != NULL);
    size_t len = 0;
    struct span host = place(data, &len, f.host);
    struct span app = place(data, &len, f.app);
    struct span procid = place(data, &len, f.procid);
    struct span msgid = place(data, &len, f.msgid);
    struct span sd = place(data, &len, f.sd);
    struct span msg = place(data, &len, f.msg);
    struct record *r = record_new(data, len);
    free(data);
    REQUIRE(r != NULL);
    r->host = host;
    r->app = app;
    r->procid = procid;
    r->msgid = msgid;
    r->sd = sd;
    r->msg = msg;
    r->recv_us = T_RECV;
    r->syntax = RECORD_RFC5424;
    return r;
}

/* A RECORD_RAW record: no parsed fields, the message is all of data. */
static struct record *mkraw(const char *bytes, size_t len)
{
    struct record *r = record_new(bytes, len);
    REQUIRE(r != NULL);
    r->recv_us = T_RECV;
    return r;
}
#define RAW(s) mkraw((s), sizeof(s) - 1)

static struct buf out = BUF_INIT;

static void teardown(void)
{
    buf_free(&out);
}

/* Format r alone with a fresh context; the line, NUL-terminated, lives in
 * out until the next call. */
static const char *fmt_ts(enum format_kind kind, enum format_ts ts,
                          const struct record *r)
{
    struct format_ctx ctx;
    REQUIRE(format_ctx_init(&ctx, kind, ts, "myhost") == 0);
    buf_reset(&out);
    REQUIRE(format_record(&ctx, r, &out) == 0);
    check_line(out.p, out.len);
    REQUIRE(buf_append(&out, "", 1) == 0);
    out.len--;
    return out.p;
}

static const char *fmt(enum format_kind kind, const struct record *r)
{
    return fmt_ts(kind, FORMAT_TS_MESSAGE, r);
}

/* Format with a context the caller keeps, so that its cache carries over. */
static const char *fmt_with(struct format_ctx *ctx, const struct record *r)
{
    buf_reset(&out);
    REQUIRE(format_record(ctx, r, &out) == 0);
    check_line(out.p, out.len);
    REQUIRE(buf_append(&out, "", 1) == 0);
    out.len--;
    return out.p;
}

/* The line without its final newline equals want. */
#define ck_line(got, want) ck_assert_str_eq((got), want "\n")

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

/* Random bytes that favour what escaping gets wrong: control bytes, quote
 * and backslash, valid and broken UTF-8, in runs long and short. */
static size_t random_text(char *p, size_t max)
{
    static const char *const tokens[] = {
        "\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x98\x80",
        "\xed\xa0\x80", "\xc0\xaf", "\xe0\x80\xaf", "\xf4\x90\x80\x80",
        "\xf5\x80", "\xe6\x97", "\xf0\x9f\x98", "\x80", "\xbf", "\xfe",
        "\xff", "\n", "\r", "\t", "\"", "\\", "\x7f", "\x1b", "#",
        "abcdefgh", "The quick brown fox ", "\xef\xbf\xbd", "\xf4\x8f\xbf\xbf",
        "\xed\x9f\xbf", "\xee\x80\x80", "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80",
        "\xf0\x90\x80\x80", "\xc2", "\xf1\x80\x80", " ", "]", "[",
    };
    size_t n = 0, want = rnd() % (max + 1);
    int mode = (int)(rnd() % 5);
    while (n < want) {
        if (mode == 0) {
            p[n++] = (char)rnd();
        } else if (mode == 1) {
            p[n++] = (rnd() % 16 == 0) ? (char)rnd() : (char)(' ' + rnd() % 95);
        } else if (mode == 4) {
            p[n++] = (char)(' ' + rnd() % 95); /* printable only */
        } else {
            const char *t = tokens[rnd() % (sizeof(tokens) / sizeof(tokens[0]))];
            size_t k = strlen(t);
            if (t[0] == '\0')
                k = 1;
            if (n + k > want)
                break;
            memcpy(p + n, t, k);
            n += k;
        }
    }
    if (rnd() % 20 == 0 && n < max)
        p[n++] = '\0';
    return n;
}

/* ---- a reference for UTF-8, built by encoding every code point ------------
 * prefix[k] holds the k-byte strings that start some well-formed sequence
 * longer than k; full[k] the well-formed k-byte sequences.  A byte string
 * of 2 or 3 bytes indexes the bitmaps as a big-endian number. */

static unsigned char *prefix2, *prefix3, *full2, *full3;
static bool lead_ok[256];

static void bit_set(unsigned char *map, uint32_t i)
{
    map[i >> 3] |= (unsigned char)(1u << (i & 7));
}

static bool bit_get(const unsigned char *map, uint32_t i)
{
    return (map[i >> 3] >> (i & 7)) & 1;
}

static void ref_init(void)
{
    if (prefix2 != NULL)
        return;
    prefix2 = calloc(1, 1u << 13);
    full2 = calloc(1, 1u << 13);
    prefix3 = calloc(1, 1u << 21);
    full3 = calloc(1, 1u << 21);
    ck_assert_ptr_nonnull(prefix2);
    ck_assert_ptr_nonnull(full2);
    ck_assert_ptr_nonnull(prefix3);
    ck_assert_ptr_nonnull(full3);
    for (uint32_t cp = 0x80; cp <= 0x10ffff; cp++) {
        if (cp >= 0xd800 && cp <= 0xdfff)
            continue;
        unsigned char b[4];
        int n;
        if (cp < 0x800) {
            b[0] = (unsigned char)(0xc0 | cp >> 6);
            b[1] = (unsigned char)(0x80 | (cp & 63));
            n = 2;
        } else if (cp < 0x10000) {
            b[0] = (unsigned char)(0xe0 | cp >> 12);
            b[1] = (unsigned char)(0x80 | (cp >> 6 & 63));
            b[2] = (unsigned char)(0x80 | (cp & 63));
            n = 3;
        } else {
            b[0] = (unsigned char)(0xf0 | cp >> 18);
            b[1] = (unsigned char)(0x80 | (cp >> 12 & 63));
            b[2] = (unsigned char)(0x80 | (cp >> 6 & 63));
            b[3] = (unsigned char)(0x80 | (cp & 63));
            n = 4;
        }
        lead_ok[b[0]] = true;
        uint32_t two = (uint32_t)b[0] << 8 | b[1];
        uint32_t three = two << 8 | b[2];
        if (n == 2) {
            bit_set(full2, two);
        } else {
            bit_set(prefix2, two);
            if (n == 3)
                bit_set(full3, three);
            else
                bit_set(prefix3, three);
        }
    }
}

/* At s[0] >= 0x80: length of a well-formed sequence (> 0) or minus the
 * length of the maximal subpart. */
static int ref_seq(const unsigned char *s, size_t n)
{
    if (!lead_ok[s[0]])
        return -1;
    if (n < 2)
        return -1;
    uint32_t two = (uint32_t)s[0] << 8 | s[1];
    if (bit_get(full2, two))
        return 2;
    if (!bit_get(prefix2, two))
        return -1;
    if (n < 3)
        return -2;
    uint32_t three = two << 8 | s[2];
    if (bit_get(full3, three))
        return 3;
    if (!bit_get(prefix3, three))
        return -2;
    if (n < 4 || (s[3] & 0xc0) != 0x80)
        return -3;
    return 4;
}

static size_t ref_octal(char *o, const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t len = 0;
    for (size_t i = 0; i < n;) {
        int k = s[i] < 0x80 ? (s[i] < 0x20 || s[i] == 0x7f ? -1 : 1)
                            : ref_seq(s + i, n - i);
        if (k > 0) {
            memcpy(o + len, s + i, (size_t)k);
            len += (size_t)k;
            i += (size_t)k;
        } else {
            for (int j = 0; j < -k; j++, i++)
                len += (size_t)sprintf(o + len, "#%03o", s[i]);
        }
    }
    return len;
}

static size_t ref_json(char *o, const char *text, size_t n)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t len = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c >= 0x80) {
            int k = ref_seq(s + i, n - i);
            if (k > 0) {
                memcpy(o + len, s + i, (size_t)k);
                len += (size_t)k;
                i += (size_t)k;
            } else {
                memcpy(o + len, "\xef\xbf\xbd", 3);
                len += 3;
                i += (size_t)-k;
            }
            continue;
        }
        i++;
        switch (c) {
        case '"': len += (size_t)sprintf(o + len, "\\\""); break;
        case '\\': len += (size_t)sprintf(o + len, "\\\\"); break;
        case '\n': len += (size_t)sprintf(o + len, "\\n"); break;
        case '\t': len += (size_t)sprintf(o + len, "\\t"); break;
        case '\r': len += (size_t)sprintf(o + len, "\\r"); break;
        case '\b': len += (size_t)sprintf(o + len, "\\b"); break;
        case '\f': len += (size_t)sprintf(o + len, "\\f"); break;
        default:
            if (c < 0x20)
                len += (size_t)sprintf(o + len, "\\u%04x", c);
            else
                o[len++] = (char)c;
        }
    }
    return len;
}

static size_t ref_raw(char *o, const char *text, size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\0' || c == '\n' || c == '\r')
            len += (size_t)sprintf(o + len, "#%03o", c);
        else
            o[len++] = (char)c;
    }
    return len;
}

/* ---- names -------------------------------------------------------------- */

START_TEST(test_names)
{
    ck_assert_int_eq(format_parse_name("traditional"), FORMAT_TRADITIONAL);
    ck_assert_int_eq(format_parse_name("rfc5424"), FORMAT_RFC5424);
    ck_assert_int_eq(format_parse_name("json"), FORMAT_JSON);
    ck_assert_int_eq(format_parse_name("raw"), FORMAT_RAW);
    ck_assert_int_eq(format_parse_name("JSON"), -EINVAL);
    ck_assert_int_eq(format_parse_name(""), -EINVAL);
    ck_assert_int_eq(format_parse_name("rfc3164"), -EINVAL);
    ck_assert_int_eq(format_parse_name(NULL), -EINVAL);
    for (int k = FORMAT_TRADITIONAL; k <= FORMAT_RAW; k++)
        ck_assert_int_eq(format_parse_name(format_name(k)), k);
    ck_assert_ptr_null(format_name(-1));
    ck_assert_ptr_null(format_name(4));

    ck_assert_int_eq(format_ts_parse_name("message"), FORMAT_TS_MESSAGE);
    ck_assert_int_eq(format_ts_parse_name("received"), FORMAT_TS_RECEIVED);
    ck_assert_int_eq(format_ts_parse_name("recv"), -EINVAL);
    ck_assert_int_eq(format_ts_parse_name(NULL), -EINVAL);
    ck_assert_str_eq(format_ts_name(FORMAT_TS_RECEIVED), "received");
    ck_assert_ptr_null(format_ts_name(2));
}
END_TEST

/* ---- buf ---------------------------------------------------------------- */

START_TEST(test_buf)
{
    struct buf b;
    buf_init(&b);
    ck_assert_ptr_null(b.p);
    ck_assert_int_eq(buf_append(&b, NULL, 0), 0);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_int_eq(buf_append(&b, "abc", 3), 0);
    ck_assert_uint_eq(b.len, 3);
    ck_assert_int_eq(memcmp(b.p, "abc", 3), 0);

    /* Grows by doubling: a million small appends take few reallocations,
     * and once grown, reset and refill does not move the memory. */
    int moves = 0;
    char *last = b.p;
    for (int i = 0; i < 1000000; i++) {
        REQUIRE(buf_append(&b, "0123456789", 10) == 0);
        if (b.p != last) {
            moves++;
            last = b.p;
        }
    }
    ck_assert_uint_eq(b.len, 3 + 10000000);
    ck_assert_int_le(moves, 20);
    ck_assert_int_eq(memcmp(b.p + b.len - 10, "0123456789", 10), 0);
    size_t cap = b.cap;
    buf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    for (int i = 0; i < 1000000; i++)
        REQUIRE(buf_append(&b, "0123456789", 10) == 0);
    ck_assert_ptr_eq(b.p, last);
    ck_assert_uint_eq(b.cap, cap);

    ck_assert_int_eq(buf_reserve(&b, 5), 0);
    /* volatile, or the compiler objects to the memcpy it cannot reach. */
    volatile size_t huge = (size_t)-1;
    ck_assert_int_eq(buf_reserve(&b, huge), -ENOMEM);
    ck_assert_int_eq(buf_append(&b, "x", huge), -ENOMEM);
    ck_assert_uint_eq(b.len, 10000000);
    buf_free(&b);
    ck_assert_ptr_null(b.p);
    ck_assert_uint_eq(b.cap, 0);
    ck_assert_int_eq(buf_reserve(&b, 1), 0);
    ck_assert_uint_ge(b.cap, 1);
    buf_free(&b);
}
END_TEST

/* ---- arguments ---------------------------------------------------------- */

START_TEST(test_bad_arguments)
{
    struct format_ctx ctx;
    ck_assert_int_eq(format_ctx_init(NULL, FORMAT_JSON, FORMAT_TS_MESSAGE, "h"),
                     -EINVAL);
    ck_assert_int_eq(format_ctx_init(&ctx, (enum format_kind)4,
                                     FORMAT_TS_MESSAGE, "h"), -EINVAL);
    ck_assert_int_eq(format_ctx_init(&ctx, FORMAT_JSON, (enum format_ts)2, "h"),
                     -EINVAL);
    ck_assert_int_eq(format_ctx_init(&ctx, FORMAT_JSON, FORMAT_TS_MESSAGE, "h"),
                     0);

    struct record *r = RAW("hello");
    ck_assert_int_eq(buf_append(&out, "keep", 4), 0);
    ck_assert_int_eq(format_record(NULL, r, &out), -EINVAL);
    ck_assert_int_eq(format_record(&ctx, NULL, &out), -EINVAL);
    ck_assert_int_eq(format_record(&ctx, r, NULL), -EINVAL);

    /* Each inconsistency is refused and leaves out as it was. */
    struct record saved;
    memcpy(&saved, r, sizeof(saved));
    for (int i = 0; i < 6; i++) {
        switch (i) {
        case 0: r->msg.off = 1; break;               /* 1 + 5 > 5 */
        case 1: r->host = (struct span){ 5, 1 }; break;
        case 2: r->sd = (struct span){ UINT32_MAX, 2 }; break;
        case 3: r->facility = 24; break;
        case 4: r->severity = 8; break;
        case 5: r->syntax = 3; break;
        }
        ck_assert_int_eq(format_record(&ctx, r, &out), -EINVAL);
        ck_assert_uint_eq(out.len, 4);
        memcpy(r, &saved, sizeof(saved));
    }
    /* An absent span may point anywhere. */
    r->app = (struct span){ 1000, 0 };
    ck_assert_int_eq(format_record(&ctx, r, &out), 0);
    ck_assert_uint_eq(out.len, 4 + strlen("{\"time\":\"2026-11-26T11:03:56.123456+00:00\","
                                          "\"recv_time\":\"2026-11-26T11:03:56.123456Z\","
                                          "\"facility\":\"user\",\"severity\":\"notice\","
                                          "\"host\":\"h\",\"msg\":\"hello\",\"syntax\":\"raw\"}\n"));
    record_free(r);
}
END_TEST

START_TEST(test_appends)
{
    struct format_ctx ctx;
    struct record *r = RAW("hello");
    ck_assert_int_eq(format_ctx_init(&ctx, FORMAT_RAW, FORMAT_TS_MESSAGE, NULL),
                     0);
    for (int i = 0; i < 1000; i++)
        REQUIRE(format_record(&ctx, r, &out) == 0);
    ck_assert_uint_eq(out.len, 6000);
    for (int i = 0; i < 1000; i++)
        REQUIRE(memcmp(out.p + 6 * i, "hello\n", 6) == 0);
    record_free(r);
}
END_TEST

/* ---- traditional -------------------------------------------------------- */

START_TEST(test_trad_full)
{
    struct record *r = mkrec((struct fields){
        .host = P("web1"), .app = P("sshd"), .procid = P("1234"),
        .msgid = P("ID47"), .sd = P("[a@1 b=\"c\"]"),
        .msg = P("Accepted publickey for root") });
    r->flags = RECORD_F_HAS_CREDS | RECORD_F_TRUNCATED | RECORD_F_PARSE_ERROR;
    r->pid = 99;
    ck_line(fmt(FORMAT_TRADITIONAL, r),
            "Nov 26 11:03:56 web1 sshd[1234]: Accepted publickey for root"
            " [truncated]");
    record_free(r);
}
END_TEST

/* A cut record says so in every format, and only a cut one does. */
START_TEST(test_truncated_mark)
{
    struct record *r = mkrec((struct fields){ .app = P("a"), .msg = P("cut her") });
    r->flags = RECORD_F_TRUNCATED;
    ck_line(fmt(FORMAT_TRADITIONAL, r), "Nov 26 11:03:56 myhost a: cut her [truncated]");
    ck_line(fmt(FORMAT_RAW, r), "a cut her  [truncated]");
    ck_line(fmt(FORMAT_RFC5424, r),
            "<13>1 2026-11-26T11:03:56.123456+00:00 myhost a - - "
            "[lograil@32473 truncated=\"1\"] cut her");
    ck_assert_ptr_nonnull(strstr(fmt(FORMAT_JSON, r), ",\"truncated\":true,"));
    record_free(r);

    /* The mark follows the escaping of what was cut: a record cut inside a
     * UTF-8 sequence ends in octal escapes, then the mark. */
    r = RAW("ab\xe2\x82");
    r->flags = RECORD_F_TRUNCATED;
    ck_line(fmt(FORMAT_TRADITIONAL, r), "Nov 26 11:03:56 myhost ab#342#202 [truncated]");
    ck_line(fmt(FORMAT_RAW, r), "ab\xe2\x82 [truncated]");
    record_free(r);

    /* A printable record takes the fast copy; the mark is still there. */
    r = RAW("all printable");
    r->flags = RECORD_F_TRUNCATED | RECORD_F_PRINTABLE;
    ck_line(fmt(FORMAT_TRADITIONAL, r), "Nov 26 11:03:56 myhost all printable [truncated]");
    ck_line(fmt(FORMAT_RAW, r), "all printable [truncated]");
    record_free(r);

    /* Cut before the message began: the mark alone follows the tag. */
    r = mkrec((struct fields){ .app = P("a"), .procid = P("1") });
    r->flags = RECORD_F_TRUNCATED;
    ck_line(fmt(FORMAT_TRADITIONAL, r), "Nov 26 11:03:56 myhost a[1]: [truncated]");
    record_free(r);

    /* Not cut: no mark anywhere. */
    r = mkrec((struct fields){ .app = P("a"), .msg = P("whole") });
    for (int k = FORMAT_TRADITIONAL; k <= FORMAT_RAW; k++)
        ck_assert_ptr_null(strstr(fmt((enum format_kind)k, r), "truncated"));
    record_free(r);
}
END_TEST

START_TEST(test_trad_tags)
{
    struct record *r = mkrec((struct fields){ .app = P("cron"), .msg = P("run") });
    ck_line(fmt(FORMAT_TRADITIONAL, r), "Nov 26 11:03:56 myhost cron: run");
    record_free(r);

    r = mkrec((struct fields){ .procid = P("42"), .msg = P("run") });
    ck_line(fmt(FORMAT_TRADITIONAL, r), "Nov 26 11:03:56 myhost -[42]: run");
    record_free(r);

    r = mkrec((struct fields){ .app = P("cron"), .procid = P("7") });
    ck_line(fmt(FORMAT_TRADITIONAL, r), "Nov 26 11:03:56 myhost cron[7]:");
    record_free(r);

    /* A raw line has no tag and reads as it was sent. */
    r = RAW("hello world: with a colon");
    ck_line(fmt(FORMAT_TRADITIONAL, r),
            "Nov 26 11:03:56 myhost hello world: with a colon");
    record_free(r);

    r = RAW("");
    ck_line(fmt(FORMAT_TRADITIONAL, r), "Nov 26 11:03:56 myhost");
    record_free(r);

    /* The day is padded with a space. */
    r = RAW("x");
    r->recv_us = 1793955907000000LL; /* 2026-11-06T09:05:07Z */
    ck_line(fmt(FORMAT_TRADITIONAL, r), "Nov  6 09:05:07 myhost x");
    record_free(r);
}
END_TEST

START_TEST(test_trad_escapes)
{
    struct record *r = RAW("a\nb\tc\rd\0e\x7f f\x1b" "g#h\\i\"j");
    ck_line(fmt(FORMAT_TRADITIONAL, r),
            "Nov 26 11:03:56 myhost a#012b#011c#015d#000e#177 f#033g#h\\i\"j");
    record_free(r);

    /* Each ill-formed kind, every byte of it escaped, the bytes after it
     * kept: overlong (2, 3 and 4 bytes), surrogate, above U+10FFFF, lead
     * bytes that never lead, a sequence cut short in the middle and at the
     * end, and stray continuation bytes. */
    static const struct {
        const char *in, *want;
    } cases[] = {
        { "<\xc0\xaf>", "<#300#257>" },
        { "<\xc1\xbf>", "<#301#277>" },
        { "<\xe0\x80\xaf>", "<#340#200#257>" },
        { "<\xf0\x80\x80\xaf>", "<#360#200#200#257>" },
        { "<\xed\xa0\x80>", "<#355#240#200>" },
        { "<\xed\xbf\xbf>", "<#355#277#277>" },
        { "<\xf4\x90\x80\x80>", "<#364#220#200#200>" },
        { "<\xf5\x80\x80\x80>", "<#365#200#200#200>" },
        { "<\xff\xfe>", "<#377#376>" },
        { "<\xe6\x97>", "<#346#227>" },
        { "<\xf0\x9f\x98>", "<#360#237#230>" },
        { "<\x80\xbf>", "<#200#277>" },
        { "<\xc3\xa9\xa9>", "<\xc3\xa9#251>" },
        { "end\xe6\x97", "end#346#227" },
        { "end\xf0\x9f", "end#360#237" },
        { "end\xc3", "end#303" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        r = mkraw(cases[i].in, strlen(cases[i].in));
        const char *got = fmt(FORMAT_TRADITIONAL, r);
        ck_assert_msg(strncmp(got + 23, cases[i].want, strlen(cases[i].want)) == 0 &&
                          got[23 + strlen(cases[i].want)] == '\n',
                      "case %zu: got %s", i, got);
        record_free(r);
    }

    /* Valid multi-byte UTF-8 passes, including the edges of each range. */
    r = RAW("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 "
            "\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf"
            "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf");
    ck_line(fmt(FORMAT_TRADITIONAL, r),
            "Nov 26 11:03:56 myhost caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac "
            "\xf0\x9f\x98\x80 "
            "\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf"
            "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf");
    record_free(r);

    /* Fields are escaped too. */
    r = mkrec((struct fields){ .host = P("h\no"), .app = P("a\tb"),
                               .procid = P("1\x80"), .msg = P("m") });
    ck_line(fmt(FORMAT_TRADITIONAL, r),
            "Nov 26 11:03:56 h#012o a#011b[1#200]: m");
    record_free(r);
}
END_TEST

/* The fast paths (32-byte blocks, then 8-byte words) must not skip what
 * they should escape at any position, including the tails shorter than a
 * block or a word. */
START_TEST(test_escape_positions)
{
    ref_init();
    static const char *const specials[] = {
        "\n", "\t", "\x7f", "\xc3\xa9", "\x80", "\xe6\x97", "\"", "\\",
        "\xf0\x9f\x98\x80", "\r",
    };
    char msg[128], want[1024], line[1200];
    for (size_t s = 0; s < sizeof(specials) / sizeof(specials[0]); s++) {
        for (size_t before = 0; before < 72; before++) {
            for (size_t after = 0; after < 12; after++) {
                size_t k = strlen(specials[s]);
                memset(msg, 'a', before);
                memcpy(msg + before, specials[s], k);
                memset(msg + before + k, 'b', after);
                size_t n = before + k + after;
                struct record *r = mkraw(msg, n);

                size_t w = ref_octal(want, msg, n);
                int m = snprintf(line, sizeof(line),
                                 "Nov 26 11:03:56 myhost %.*s\n", (int)w, want);
                const char *got = fmt(FORMAT_TRADITIONAL, r);
                REQUIRE_MSG(strcmp(got, line) == 0, "%s vs %s", got, line);

                w = ref_json(want, msg, n);
                got = fmt(FORMAT_JSON, r);
                const char *at = strstr(got, "\"msg\":\"");
                REQUIRE(at != NULL);
                REQUIRE_MSG(memcmp(at + 7, want, w) == 0 && at[7 + w] == '"',
                            "%s vs %.*s", got, (int)w, want);

                w = ref_raw(want, msg, n);
                m = snprintf(line, sizeof(line), "%.*s\n", (int)w, want);
                (void)m;
                got = fmt(FORMAT_RAW, r);
                REQUIRE_MSG(strcmp(got, line) == 0, "%s vs %s", got, line);
                record_free(r);
            }
        }
    }
}
END_TEST

/* Random text, compared byte for byte with the reference escapers. */
START_TEST(test_escape_random)
{
    ref_init();
    static char msg[600], want[4000];
    for (int i = 0; i < 40000; i++) {
        size_t n = random_text(msg, sizeof(msg));
        struct record *r = mkraw(msg, n);
        /* Odd passes take the escapers even for printable text, which
         * even passes copy as it is (RECORD_F_PRINTABLE). */
        bool printable = true;
        for (size_t j = 0; j < n; j++)
            printable &= msg[j] >= ' ' && msg[j] <= '~';
        REQUIRE_MSG(!(r->flags & RECORD_F_PRINTABLE) == !printable, "%d: flag", i);
        if (i % 2)
            r->flags &= (uint8_t)~RECORD_F_PRINTABLE;

        size_t w = ref_octal(want, msg, n);
        const char *got = fmt(FORMAT_TRADITIONAL, r);
        size_t hdr = strlen("Nov 26 11:03:56 myhost") + (n > 0);
        REQUIRE_MSG(out.len == hdr + w + 1 && memcmp(got + hdr, want, w) == 0,
                    "%d: %s vs %.*s", i, got, (int)w, want);

        got = fmt(FORMAT_RFC5424, r);
        hdr = strlen("<13>1 2026-11-26T11:03:56.123456+00:00 myhost - - - -") +
              (n > 0);
        REQUIRE_MSG(out.len == hdr + w + 1 && memcmp(got + hdr, want, w) == 0,
                    "%d: %s vs %.*s", i, got, (int)w, want);

        w = ref_json(want, msg, n);
        got = fmt(FORMAT_JSON, r);
        const char *at = strstr(got, "\"msg\":\"");
        REQUIRE(at != NULL);
        REQUIRE_MSG(memcmp(at + 7, want, w) == 0 &&
                        strcmp(at + 7 + w, "\",\"syntax\":\"raw\"}\n") == 0,
                    "%d: %s vs %.*s", i, got, (int)w, want);

        w = ref_raw(want, msg, n);
        got = fmt(FORMAT_RAW, r);
        REQUIRE_MSG(out.len == w + 1 && memcmp(got, want, w) == 0,
                    "%d: %s vs %.*s", i, got, (int)w, want);
        record_free(r);
    }
}
END_TEST

/* ---- big and empty -------------------------------------------------------- */

START_TEST(test_big_messages)
{
    ref_init();
    enum { BIG = 64 * 1024 };
    char *msg = malloc(BIG);
    char *want = malloc(BIG * 6 + 1);
    ck_assert_ptr_nonnull(msg);
    ck_assert_ptr_nonnull(want);

    for (int pass = 0; pass < 3; pass++) {
        for (size_t i = 0; i < BIG; i++) {
            if (pass == 0)
                msg[i] = (char)('a' + i % 26);  /* plain ASCII */
            else if (pass == 1)
                msg[i] = (char)i;               /* every byte value */
            else
                msg[i] = (char)rnd();
        }
        struct record *r = mkrec((struct fields){
            .app = P("big"), .msg = { msg, BIG } });

        size_t w = ref_octal(want, msg, BIG);
        const char *got = fmt(FORMAT_TRADITIONAL, r);
        size_t hdr = strlen("Nov 26 11:03:56 myhost big: ");
        ck_assert_uint_eq(out.len, hdr + w + 1);
        ck_assert_int_eq(memcmp(got + hdr, want, w), 0);

        got = fmt(FORMAT_RFC5424, r);
        hdr = strlen("<13>1 2026-11-26T11:03:56.123456+00:00 myhost big - - - ");
        ck_assert_uint_eq(out.len, hdr + w + 1);
        ck_assert_int_eq(memcmp(got + hdr, want, w), 0);

        w = ref_json(want, msg, BIG);
        got = fmt(FORMAT_JSON, r);
        const char *at = strstr(got, "\"msg\":\"");
        ck_assert_ptr_nonnull(at);
        ck_assert_int_eq(memcmp(at + 7, want, w), 0);
        ck_assert_str_eq(at + 7 + w, "\",\"syntax\":\"rfc5424\"}\n");

        /* raw writes the whole of data: app, separators and message. */
        w = ref_raw(want, r->data, r->len);
        got = fmt(FORMAT_RAW, r);
        ck_assert_uint_eq(out.len, w + 1);
        ck_assert_int_eq(memcmp(got, want, w), 0);
        record_free(r);
    }
    free(msg);
    free(want);
}
END_TEST

START_TEST(test_empty_messages)
{
    struct record *r = RAW("");
    ck_line(fmt(FORMAT_TRADITIONAL, r), "Nov 26 11:03:56 myhost");
    ck_line(fmt(FORMAT_RFC5424, r),
            "<13>1 2026-11-26T11:03:56.123456+00:00 myhost - - - -");
    ck_line(fmt(FORMAT_JSON, r),
            "{\"time\":\"2026-11-26T11:03:56.123456+00:00\","
            "\"recv_time\":\"2026-11-26T11:03:56.123456Z\","
            "\"facility\":\"user\",\"severity\":\"notice\","
            "\"host\":\"myhost\",\"msg\":\"\",\"syntax\":\"raw\"}");
    ck_line(fmt(FORMAT_RAW, r), "");
    record_free(r);

    /* Every field present but the message. */
    r = mkrec((struct fields){ .host = P("h"), .app = P("a"), .procid = P("1"),
                               .msgid = P("m"), .sd = P("[x@1 y=\"z\"]") });
    ck_line(fmt(FORMAT_RFC5424, r),
            "<13>1 2026-11-26T11:03:56.123456+00:00 h a 1 m [x@1 y=\"z\"]");
    ck_line(fmt(FORMAT_TRADITIONAL, r), "Nov 26 11:03:56 h a[1]:");
    record_free(r);
}
END_TEST

/* ---- rfc5424 ------------------------------------------------------------ */

START_TEST(test_rfc5424_full)
{
    struct record *r = mkrec((struct fields){
        .host = P("web1"), .app = P("sshd"), .procid = P("1234"),
        .msgid = P("ID47"), .sd = P("[exampleSDID@32473 iut=\"3\" x=\"a\\\"b\\]\"]"),
        .msg = P("hello \xc3\xa9") });
    r->facility = 4;
    r->severity = 6;
    r->flags = RECORD_F_HAS_CREDS;
    r->pid = 1234;
    r->uid = 0;
    r->gid = 4294967294u;
    ck_line(fmt(FORMAT_RFC5424, r),
            "<38>1 2026-11-26T11:03:56.123456+00:00 web1 sshd 1234 ID47 "
            "[exampleSDID@32473 iut=\"3\" x=\"a\\\"b\\]\"]"
            "[lograil@32473 pid=\"1234\" uid=\"0\" gid=\"4294967294\"] "
            "hello \xc3\xa9");

    r->flags |= RECORD_F_TRUNCATED | RECORD_F_PARSE_ERROR;
    ck_line(fmt(FORMAT_RFC5424, r),
            "<38>1 2026-11-26T11:03:56.123456+00:00 web1 sshd 1234 ID47 "
            "[exampleSDID@32473 iut=\"3\" x=\"a\\\"b\\]\"]"
            "[lograil@32473 pid=\"1234\" uid=\"0\" gid=\"4294967294\" "
            "truncated=\"1\" parse_error=\"1\"] hello \xc3\xa9");
    record_free(r);

    r = RAW("hello");
    ck_line(fmt(FORMAT_RFC5424, r),
            "<13>1 2026-11-26T11:03:56.123456+00:00 myhost - - - - hello");
    r->flags = RECORD_F_TRUNCATED;
    r->facility = 0;
    r->severity = 0;
    ck_line(fmt(FORMAT_RFC5424, r),
            "<0>1 2026-11-26T11:03:56.123456+00:00 myhost - - - "
            "[lograil@32473 truncated=\"1\"] hello");
    r->flags = RECORD_F_HAS_CREDS;
    r->facility = 23;
    r->severity = 7;
    r->pid = 1;
    r->uid = 1000;
    r->gid = 100;
    ck_line(fmt(FORMAT_RFC5424, r),
            "<191>1 2026-11-26T11:03:56.123456+00:00 myhost - - - "
            "[lograil@32473 pid=\"1\" uid=\"1000\" gid=\"100\"] hello");
    record_free(r);
}
END_TEST

/* format_shows_creds() says which formats write pid, uid and gid: the
 * daemon asks the kernel for them only then. */
START_TEST(test_shows_creds)
{
    struct record *r = mkrec((struct fields){ .app = P("cron"), .msg = P("run") });
    r->flags = RECORD_F_HAS_CREDS;
    r->pid = 31337;
    r->uid = 27182;
    r->gid = 16180;
    for (int k = FORMAT_TRADITIONAL; k <= FORMAT_RAW; k++) {
        const char *line = fmt((enum format_kind)k, r);
        bool shown = strstr(line, "31337") && strstr(line, "27182") && strstr(line, "16180");
        ck_assert_msg(shown == format_shows_creds(k), "%s: %s", format_name(k), line);
    }
    ck_assert(format_shows_creds(FORMAT_RFC5424) && format_shows_creds(FORMAT_JSON));
    ck_assert(!format_shows_creds(-1) && !format_shows_creds(4));
    record_free(r);
}
END_TEST

START_TEST(test_rfc5424_header_fields)
{
    /* Only PRINTUSASCII survives in header fields, each cut to its RFC 5424
     * length. */
    struct record *r = mkrec((struct fields){
        .host = P("my host\n"), .app = P("caf\xc3\xa9 app"),
        .procid = P("1\t2"), .msgid = P("a\"b]c"), .msg = P("m") });
    ck_line(fmt(FORMAT_RFC5424, r),
            "<13>1 2026-11-26T11:03:56.123456+00:00 my_host_ caf___app "
            "1_2 a\"b]c - m");
    record_free(r);

    char longs[4][300];
    memset(longs[0], 'h', 300);
    memset(longs[1], 'a', 300);
    memset(longs[2], 'p', 300);
    memset(longs[3], 'm', 300);
    r = mkrec((struct fields){ .host = { longs[0], 300 },
                               .app = { longs[1], 300 },
                               .procid = { longs[2], 300 },
                               .msgid = { longs[3], 300 }, .msg = P("m") });
    const char *got = fmt(FORMAT_RFC5424, r);
    char want[1000];
    snprintf(want, sizeof(want),
             "<13>1 2026-11-26T11:03:56.123456+00:00 %.255s %.48s %.128s "
             "%.32s - m\n",
             longs[0], longs[1], longs[2], longs[3]);
    ck_assert_str_eq(got, want);
    record_free(r);
}
END_TEST

START_TEST(test_rfc5424_sd)
{
    /* Controls and ill-formed UTF-8 inside SD are escaped; the rest is
     * verbatim. */
    struct record *r = mkrec((struct fields){
        .sd = P("[x@1 v=\"a\nb\xff\xc3\xa9\"]"), .msg = P("m") });
    ck_line(fmt(FORMAT_RFC5424, r),
            "<13>1 2026-11-26T11:03:56.123456+00:00 myhost - - - "
            "[x@1 v=\"a#012b#377\xc3\xa9\"] m");
    record_free(r);

    /* A client cannot pass itself off as lograil: its element is renamed,
     * but the same text inside a quoted value, or a longer SD-ID, stays. */
    r = mkrec((struct fields){
        .sd = P("[lograil@32473 pid=\"1\" uid=\"0\"][x@1 v=\"[lograil@32473 "
                "q=\\\"[lograil@32473]\"][lograil@324730 a=\"b\"][lograil@32473]"),
        .msg = P("m") });
    r->flags = RECORD_F_HAS_CREDS;
    r->pid = 77;
    r->uid = 1000;
    r->gid = 1000;
    ck_line(fmt(FORMAT_RFC5424, r),
            "<13>1 2026-11-26T11:03:56.123456+00:00 myhost - - - "
            "[lograil-untrusted@32473 pid=\"1\" uid=\"0\"]"
            "[x@1 v=\"[lograil@32473 q=\\\"[lograil@32473]\"]"
            "[lograil@324730 a=\"b\"][lograil-untrusted@32473]"
            "[lograil@32473 pid=\"77\" uid=\"1000\" gid=\"1000\"] m");
    record_free(r);

    /* A NILVALUE handed over as a span is still no SD. */
    r = mkrec((struct fields){ .sd = P("-"), .msg = P("m") });
    r->flags = RECORD_F_PARSE_ERROR;
    ck_line(fmt(FORMAT_RFC5424, r),
            "<13>1 2026-11-26T11:03:56.123456+00:00 myhost - - - "
            "[lograil@32473 parse_error=\"1\"] m");
    record_free(r);
}
END_TEST

START_TEST(test_rfc5424_msg)
{
    struct record *r = RAW("a\nb\tc\0d\xc0\xaf \xe6\x97\xa5 \xf0\x9f\x98\x80");
    ck_line(fmt(FORMAT_RFC5424, r),
            "<13>1 2026-11-26T11:03:56.123456+00:00 myhost - - - - "
            "a#012b#011c#000d#300#257 \xe6\x97\xa5 \xf0\x9f\x98\x80");
    record_free(r);
}
END_TEST

/* ---- json --------------------------------------------------------------- */

START_TEST(test_json_full)
{
    struct record *r = mkrec((struct fields){
        .host = P("web1"), .app = P("sshd"), .procid = P("1234"),
        .msgid = P("ID47"), .sd = P("[x@1 v=\"a\\\"b\"]"),
        .msg = P("hello \"world\"") });
    r->facility = 10;
    r->severity = 3;
    r->flags = RECORD_F_HAS_CREDS | RECORD_F_TRUNCATED | RECORD_F_PARSE_ERROR |
               RECORD_F_HAS_TIME | RECORD_F_TIME_HAS_YEAR;
    r->ts_us = 1784023200500000LL; /* 2026-07-14T10:00:00.5Z */
    r->tz_min = -(3 * 60 + 30);
    r->pid = 1234;
    r->uid = 0;
    r->gid = 4294967295u;
    ck_line(fmt(FORMAT_JSON, r),
            "{\"time\":\"2026-07-14T06:30:00.500000-03:30\","
            "\"recv_time\":\"2026-11-26T11:03:56.123456Z\","
            "\"facility\":\"authpriv\",\"severity\":\"err\","
            "\"host\":\"web1\",\"app\":\"sshd\",\"procid\":\"1234\","
            "\"msgid\":\"ID47\",\"sd\":\"[x@1 v=\\\"a\\\\\\\"b\\\"]\","
            "\"msg\":\"hello \\\"world\\\"\","
            "\"pid\":1234,\"uid\":0,\"gid\":4294967295,"
            "\"truncated\":true,\"parse_error\":true,\"syntax\":\"rfc5424\"}");

    /* No creds, no flags: those keys are left out, as are absent fields. */
    r->flags = 0;
    r->syntax = RECORD_RFC3164;
    r->procid.len = 0;
    r->msgid.len = 0;
    r->sd.len = 0;
    ck_line(fmt(FORMAT_JSON, r),
            "{\"time\":\"2026-11-26T11:03:56.123456+00:00\","
            "\"recv_time\":\"2026-11-26T11:03:56.123456Z\","
            "\"facility\":\"authpriv\",\"severity\":\"err\","
            "\"host\":\"web1\",\"app\":\"sshd\","
            "\"msg\":\"hello \\\"world\\\"\",\"syntax\":\"rfc3164\"}");
    record_free(r);

    r = RAW("plain");
    ck_line(fmt(FORMAT_JSON, r),
            "{\"time\":\"2026-11-26T11:03:56.123456+00:00\","
            "\"recv_time\":\"2026-11-26T11:03:56.123456Z\","
            "\"facility\":\"user\",\"severity\":\"notice\","
            "\"host\":\"myhost\",\"msg\":\"plain\",\"syntax\":\"raw\"}");
    record_free(r);
}
END_TEST

START_TEST(test_json_names)
{
    static const char *const fac[24] = {
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
        "uucp", "cron", "authpriv", "ftp", "ntp", "audit", "alert", "clock",
        "local0", "local1", "local2", "local3", "local4", "local5", "local6",
        "local7",
    };
    static const char *const sev[8] = {
        "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
    };
    struct record *r = RAW("x");
    char want[200];
    for (int f = 0; f < 24; f++) {
        for (int s = 0; s < 8; s++) {
            r->facility = (uint8_t)f;
            r->severity = (uint8_t)s;
            snprintf(want, sizeof(want),
                     "\"facility\":\"%s\",\"severity\":\"%s\",", fac[f], sev[s]);
            ck_assert_ptr_nonnull(strstr(fmt(FORMAT_JSON, r), want));
            snprintf(want, sizeof(want), "<%d>1 ", f * 8 + s);
            ck_assert_int_eq(strncmp(fmt(FORMAT_RFC5424, r), want, strlen(want)),
                             0);
        }
    }
    r->syntax = RECORD_RFC5424;
    ck_assert_ptr_nonnull(strstr(fmt(FORMAT_JSON, r), "\"syntax\":\"rfc5424\"}"));
    r->syntax = RECORD_RFC3164;
    ck_assert_ptr_nonnull(strstr(fmt(FORMAT_JSON, r), "\"syntax\":\"rfc3164\"}"));
    record_free(r);
}
END_TEST

/* The JSON string of a message, between "msg":" and the closing quote. */
static const char *json_msg(const char *in, size_t n)
{
    static char got[4096];
    struct record *r = mkraw(in, n);
    const char *line = fmt(FORMAT_JSON, r);
    record_free(r);
    const char *at = strstr(line, "\"msg\":\"");
    ck_assert_ptr_nonnull(at);
    at += 7;
    const char *end = strstr(at, "\",\"syntax\":");
    ck_assert_ptr_nonnull(end);
    snprintf(got, sizeof(got), "%.*s", (int)(end - at), at);
    return got;
}
#define JSON_MSG(s) json_msg((s), sizeof(s) - 1)
#define FFFD "\xef\xbf\xbd"

START_TEST(test_json_escapes)
{
    ck_assert_str_eq(JSON_MSG("q\"b\\n\nt\tr\rb\bf\fz\0e\x1f\x01\x7f/"),
                     "q\\\"b\\\\n\\nt\\tr\\rb\\bf\\fz\\u0000e\\u001f\\u0001\x7f/");
    /* Unicode's own example of maximal subparts (table 3-8). */
    ck_assert_str_eq(JSON_MSG("\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64"),
                     "a" FFFD FFFD FFFD "b" FFFD "c" FFFD FFFD "d");
    ck_assert_str_eq(JSON_MSG("<\xc0\xaf>"), "<" FFFD FFFD ">");
    ck_assert_str_eq(JSON_MSG("<\xe0\x80\xaf>"), "<" FFFD FFFD FFFD ">");
    ck_assert_str_eq(JSON_MSG("<\xf0\x80\x80\xaf>"), "<" FFFD FFFD FFFD FFFD ">");
    ck_assert_str_eq(JSON_MSG("<\xed\xa0\x80>"), "<" FFFD FFFD FFFD ">");
    ck_assert_str_eq(JSON_MSG("<\xf4\x90\x80\x80>"), "<" FFFD FFFD FFFD FFFD ">");
    ck_assert_str_eq(JSON_MSG("<\xf8\x88\x80\x80\x80>"),
                     "<" FFFD FFFD FFFD FFFD FFFD ">");
    ck_assert_str_eq(JSON_MSG("<\xe6\x97>"), "<" FFFD ">");
    ck_assert_str_eq(JSON_MSG("<\xf0\x9f\x98>"), "<" FFFD ">");
    ck_assert_str_eq(JSON_MSG("<\xf0\x9f\x98" "x"), "<" FFFD "x");
    ck_assert_str_eq(JSON_MSG("end\xe6\x97"), "end" FFFD);
    ck_assert_str_eq(JSON_MSG("<\x80\xbf>"), "<" FFFD FFFD ">");
    ck_assert_str_eq(JSON_MSG("<\xfe\xff>"), "<" FFFD FFFD ">");
    /* Valid sequences, including U+FFFD itself, pass through. */
    ck_assert_str_eq(JSON_MSG("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 " FFFD),
                     "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 " FFFD);

    /* Fields are escaped the same way, the local hostname included. */
    struct record *r = mkrec((struct fields){
        .app = P("a\"\n"), .procid = P("\x80"), .msgid = P("\\"),
        .sd = P("[x@1 v=\"\t\"]"), .msg = P("m") });
    struct format_ctx ctx;
    ck_assert_int_eq(format_ctx_init(&ctx, FORMAT_JSON, FORMAT_TS_MESSAGE,
                                     "h\"\x01\xff"), 0);
    const char *line = fmt_with(&ctx, r);
    ck_assert_ptr_nonnull(strstr(line,
        "\"host\":\"h\\\"\\u0001" FFFD "\",\"app\":\"a\\\"\\n\","
        "\"procid\":\"" FFFD "\",\"msgid\":\"\\\\\","
        "\"sd\":\"[x@1 v=\\\"\\t\\\"]\",\"msg\":\"m\""));
    record_free(r);
}
END_TEST

/* Run a Python script over the lines in out (written to a file so that
 * Python's answer can be read back); returns its exit status and leaves its
 * output in *text. */
static int run_python(const char *script, const char *arg, char **text)
{
    char path[] = "/tmp/check_format_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(out.p, 1, out.len, f), out.len);
    ck_assert_int_eq(fclose(f), 0);

    char *cmd;
    ck_assert_int_ge(asprintf(&cmd, PY " -c '%s' %s < %s 2>&1", script,
                              arg ? arg : "", path), 0);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t cap = 1 << 16, len = 0;
    char *t = malloc(cap);
    ck_assert_ptr_nonnull(t);
    size_t got;
    while ((got = fread(t + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 2) {
            cap *= 2;
            t = realloc(t, cap);
            ck_assert_ptr_nonnull(t);
        }
    }
    t[len] = '\0';
    int status = pclose(p);
    unlink(path);
    free(cmd);
    *text = t;
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void hex_append(const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        char h[2] = { hex[(unsigned char)p[i] >> 4], hex[p[i] & 15] };
        REQUIRE(buf_append(&out, h, 2) == 0);
    }
}

/* Python must accept every line as strict UTF-8 and JSON, with the keys
 * and types promised, and decode msg and sd to exactly what its own UTF-8
 * decoder makes of the original bytes (it replaces maximal subparts too).
 * Each JSON line is followed by a line with the raw msg and sd in hex. */
static const char py_random[] =
    "import json, sys\n"
    "lines = sys.stdin.buffer.read().split(b\"\\n\")\n"
    "assert lines[-1] == b\"\"\n"
    "lines = lines[:-1]\n"
    "assert len(lines) == 2 * int(sys.argv[1]), len(lines)\n"
    "for i in range(0, len(lines), 2):\n"
    "    o = json.loads(lines[i].decode(\"utf-8\", \"strict\"))\n"
    "    m, s, c = lines[i + 1].split(b\" \")\n"
    "    want = bytes.fromhex(m.decode()).decode(\"utf-8\", \"replace\")\n"
    "    assert o[\"msg\"] == want, (o[\"msg\"], want)\n"
    "    if s != b\"-\":\n"
    "        assert o[\"sd\"] == bytes.fromhex(s.decode()).decode(\"utf-8\", \"replace\")\n"
    "    else:\n"
    "        assert \"sd\" not in o\n"
    "    for k in (\"time\", \"recv_time\", \"facility\", \"severity\", \"host\", \"syntax\"):\n"
    "        assert isinstance(o[k], str), k\n"
    "    if c == b\"1\":\n"
    "        assert all(isinstance(o[k], int) for k in (\"pid\", \"uid\", \"gid\"))\n"
    "    else:\n"
    "        assert not any(k in o for k in (\"pid\", \"uid\", \"gid\"))\n"
    "    assert o.get(\"truncated\", True) is True and o.get(\"parse_error\", True) is True\n"
    "    assert all(v is not None for v in o.values())\n"
    "print(len(lines) // 2)\n";

START_TEST(test_json_python_random)
{
    enum { N = 20000 };
    static char host[64], app[64], procid[64], msgid[64], sd[300], msg[600];
    struct format_ctx ctx;
    ck_assert_int_eq(format_ctx_init(&ctx, FORMAT_JSON, FORMAT_TS_MESSAGE,
                                     "myhost"), 0);
    buf_reset(&out);
    for (int i = 0; i < N; i++) {
        struct fields f = { { NULL, 0 }, { NULL, 0 }, { NULL, 0 }, { NULL, 0 },
                            { NULL, 0 }, { NULL, 0 } };
        if (rnd() % 2)
            f.host = (struct piece){ host, random_text(host, sizeof(host)) };
        if (rnd() % 2)
            f.app = (struct piece){ app, random_text(app, sizeof(app)) };
        if (rnd() % 2)
            f.procid = (struct piece){ procid, random_text(procid, sizeof(procid)) };
        if (rnd() % 2)
            f.msgid = (struct piece){ msgid, random_text(msgid, sizeof(msgid)) };
        if (rnd() % 2)
            f.sd = (struct piece){ sd, random_text(sd, sizeof(sd)) };
        f.msg = (struct piece){ msg, random_text(msg, sizeof(msg)) };
        struct record *r = mkrec(f);
        /* mkrec turns a zero-length piece into an absent field. */
        r->flags = (uint8_t)(rnd() & 0x1f);
        r->facility = (uint8_t)(rnd() % 24);
        r->severity = (uint8_t)(rnd() % 8);
        r->syntax = (uint8_t)(rnd() % 3);
        r->pid = (pid_t)rnd();
        r->uid = (uid_t)rnd();
        r->gid = (gid_t)rnd();
        r->ts_us = (int64_t)(rnd() % 4102444800000000ULL);
        r->tz_min = (int16_t)((int)(rnd() % 1800) - 900);
        r->recv_us = T_RECV + (int64_t)(rnd() % 100000000000ULL);
        size_t before = out.len;
        REQUIRE(format_record(&ctx, r, &out) == 0);
        check_line(out.p + before, out.len - before);
        hex_append(msg, f.msg.n);
        REQUIRE(buf_append(&out, " ", 1) == 0);
        if (r->sd.len > 0)
            hex_append(sd, f.sd.n);
        else
            REQUIRE(buf_append(&out, "-", 1) == 0);
        REQUIRE(buf_append(&out, r->flags & RECORD_F_HAS_CREDS ? " 1\n" : " 0\n",
                           3) == 0);
        record_free(r);
    }
    char *text;
    int rc = run_python(py_random, "20000", &text);
    ck_assert_msg(rc == 0, "python rejected the output (%d): %s", rc, text);
    ck_assert_str_eq(text, "20000\n");
    free(text);
}
END_TEST

/* Python prints back, in hex UTF-8, the msg it decoded from each line. */
START_TEST(test_json_python_known)
{
    static const struct {
        const char *in;
        size_t n;
        const char *decoded;
    } cases[] = {
#define K(in, out) { in, sizeof(in) - 1, out }
        K("plain", "plain"),
        K("", ""),
        K("caf\xc3\xa9", "caf\xc3\xa9"),
        K("\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac"),
        K("\xf0\x9f\x98\x80!", "\xf0\x9f\x98\x80!"),
        K("a\nb\tc\"d\\e", "a\nb\tc\"d\\e"),
        K("\x1b[31m", "\x1b[31m"),
        K("\xc0\xaf", FFFD FFFD),
        K("\xed\xa0\x80", FFFD FFFD FFFD),
        K("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD),
        K("x\xe6\x97", "x" FFFD),
        K("\x80x", FFFD "x"),
#undef K
    };
    size_t ncases = sizeof(cases) / sizeof(cases[0]);
    struct format_ctx ctx;
    ck_assert_int_eq(format_ctx_init(&ctx, FORMAT_JSON, FORMAT_TS_MESSAGE,
                                     "myhost"), 0);
    buf_reset(&out);
    for (size_t i = 0; i < ncases; i++) {
        struct record *r = mkraw(cases[i].in, cases[i].n);
        ck_assert_int_eq(format_record(&ctx, r, &out), 0);
        record_free(r);
    }
    /* A NUL goes through as \u0000 and comes back as U+0000. */
    struct record *r = mkraw("a\0b", 3);
    ck_assert_int_eq(format_record(&ctx, r, &out), 0);
    record_free(r);

    char *text;
    int rc = run_python("import json, sys\n"
                        "for l in sys.stdin.buffer:\n"
                        "    print(json.loads(l.decode(\"utf-8\"))[\"msg\"]"
                        ".encode(\"utf-8\").hex())\n",
                        NULL, &text);
    ck_assert_msg(rc == 0, "python failed: %s", text);
    char *line = text;
    for (size_t i = 0; i <= ncases; i++) {
        const char *dec = i < ncases ? cases[i].decoded : "a";
        size_t dn = i < ncases ? strlen(dec) : 3;
        char want[256] = "";
        for (size_t j = 0; j < dn; j++)
            sprintf(want + 2 * j, "%02x", i < ncases ? (unsigned char)dec[j]
                                                     : (unsigned char)"a\0b"[j]);
        char *nl = strchr(line, '\n');
        ck_assert_ptr_nonnull(nl);
        *nl = '\0';
        ck_assert_msg(strcmp(line, want) == 0, "case %zu: python decoded %s, "
                      "want %s", i, line, want);
        line = nl + 1;
    }
    ck_assert_str_eq(line, "");
    free(text);
}
END_TEST

/* jq must also read every line of a random run (mk/deps.sh installs it;
 * without it this fails rather than pass unchecked). */
START_TEST(test_json_jq)
{
    ck_assert_msg(access("/usr/bin/jq", X_OK) == 0, "/usr/bin/jq is missing (mk/deps.sh installs it)");
    static char msg[600];
    struct format_ctx ctx;
    ck_assert_int_eq(format_ctx_init(&ctx, FORMAT_JSON, FORMAT_TS_MESSAGE,
                                     NULL), 0);
    buf_reset(&out);
    for (int i = 0; i < 5000; i++) {
        struct record *r = mkraw(msg, random_text(msg, sizeof(msg)));
        r->flags = (uint8_t)(rnd() & 0x1f);
        REQUIRE(format_record(&ctx, r, &out) == 0);
        record_free(r);
    }
    char path[] = "/tmp/check_format_jq_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, out.p, out.len), (ssize_t)out.len);
    close(fd);
    char cmd[200];
    snprintf(cmd, sizeof(cmd),
             "/usr/bin/jq -e -s 'length == 5000 and all(type == \"object\")' "
             "< %s > /dev/null", path);
    int status = system(cmd);
    unlink(path);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

/* ---- raw ---------------------------------------------------------------- */

START_TEST(test_raw)
{
    struct record *r = RAW("<13>a\nb\rc\0d\te\x1b\xff\xc0\xaf#012");
    ck_line(fmt(FORMAT_RAW, r), "<13>a#012b#015c#000d\te\x1b\xff\xc0\xaf#012");
    record_free(r);

    /* raw writes what was received, not just the message span. */
    r = mkrec((struct fields){ .host = P("h"), .app = P("a"), .msg = P("m") });
    ck_line(fmt(FORMAT_RAW, r), "h a m ");
    record_free(r);

    r = RAW("\n");
    ck_line(fmt(FORMAT_RAW, r), "#012");
    record_free(r);
}
END_TEST

/* ---- hostname ------------------------------------------------------------- */

START_TEST(test_hostname)
{
    char name[300] = "";
    ck_assert_int_eq(gethostname(name, sizeof(name)), 0);
    struct format_ctx ctx;
    struct record *r = RAW("m");
    ck_assert_int_eq(format_ctx_init(&ctx, FORMAT_TRADITIONAL,
                                     FORMAT_TS_MESSAGE, NULL), 0);
    char want[400];
    snprintf(want, sizeof(want), "Nov 26 11:03:56 %s m\n", name);
    ck_assert_str_eq(fmt_with(&ctx, r), want);

    ck_assert_int_eq(format_ctx_init(&ctx, FORMAT_TRADITIONAL,
                                     FORMAT_TS_MESSAGE, ""), 0);
    ck_line(fmt_with(&ctx, r), "Nov 26 11:03:56 - m");

    ck_assert_int_eq(format_ctx_init(&ctx, FORMAT_TRADITIONAL,
                                     FORMAT_TS_MESSAGE, "a b\nc"), 0);
    ck_line(fmt_with(&ctx, r), "Nov 26 11:03:56 a b#012c m");
    ck_assert_int_eq(format_ctx_init(&ctx, FORMAT_RFC5424,
                                     FORMAT_TS_MESSAGE, "a b\nc"), 0);
    ck_line(fmt_with(&ctx, r),
            "<13>1 2026-11-26T11:03:56.123456+00:00 a_b_c - - - - m");

    /* Cut at FORMAT_HOST_MAX, even when every byte grows six-fold. */
    char longname[400];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    ck_assert_int_eq(format_ctx_init(&ctx, FORMAT_TRADITIONAL,
                                     FORMAT_TS_MESSAGE, longname), 0);
    snprintf(want, sizeof(want), "Nov 26 11:03:56 %.255s m\n", longname);
    ck_assert_str_eq(fmt_with(&ctx, r), want);
    memset(longname, '\x01', sizeof(longname) - 1);
    ck_assert_int_eq(format_ctx_init(&ctx, FORMAT_JSON, FORMAT_TS_MESSAGE,
                                     longname), 0);
    ck_assert_uint_eq(ctx.host_len, 255 * 6);
    (void)fmt_with(&ctx, r);
    record_free(r);
}
END_TEST

/* ---- time ----------------------------------------------------------------- */

START_TEST(test_ts_modes)
{
    struct record *r = mkrec((struct fields){ .app = P("a"), .msg = P("m") });
    r->flags = RECORD_F_HAS_TIME | RECORD_F_TIME_HAS_YEAR;
    r->ts_us = 1784023200500000LL; /* 2026-07-14T10:00:00.5Z */
    r->tz_min = 5 * 60 + 30;

    /* The message's own time, in its own offset where a format has one. */
    ck_line(fmt_ts(FORMAT_TRADITIONAL, FORMAT_TS_MESSAGE, r),
            "Jul 14 10:00:00 myhost a: m");
    ck_line(fmt_ts(FORMAT_RFC5424, FORMAT_TS_MESSAGE, r),
            "<13>1 2026-07-14T15:30:00.500000+05:30 myhost a - - - m");
    ck_assert_int_eq(strncmp(fmt_ts(FORMAT_JSON, FORMAT_TS_MESSAGE, r),
                             "{\"time\":\"2026-07-14T15:30:00.500000+05:30\","
                             "\"recv_time\":\"2026-11-26T11:03:56.123456Z\"",
                             84), 0);

    /* The receive time, always in the local offset. */
    ck_line(fmt_ts(FORMAT_TRADITIONAL, FORMAT_TS_RECEIVED, r),
            "Nov 26 11:03:56 myhost a: m");
    ck_line(fmt_ts(FORMAT_RFC5424, FORMAT_TS_RECEIVED, r),
            "<13>1 2026-11-26T11:03:56.123456+00:00 myhost a - - - m");
    ck_assert_int_eq(strncmp(fmt_ts(FORMAT_JSON, FORMAT_TS_RECEIVED, r),
                             "{\"time\":\"2026-11-26T11:03:56.123456+00:00\","
                             "\"recv_time\":\"2026-11-26T11:03:56.123456Z\"",
                             84), 0);

    /* Odd offsets, a negative one under an hour, and an impossible one
     * (which falls back to local time). */
    r->tz_min = 5 * 60 + 45;
    ck_assert_ptr_nonnull(strstr(fmt(FORMAT_RFC5424, r),
                                 " 2026-07-14T15:45:00.500000+05:45 "));
    r->tz_min = -30;
    ck_assert_ptr_nonnull(strstr(fmt(FORMAT_RFC5424, r),
                                 " 2026-07-14T09:30:00.500000-00:30 "));
    r->tz_min = 24 * 60;
    ck_assert_ptr_nonnull(strstr(fmt(FORMAT_RFC5424, r),
                                 " 2026-07-14T10:00:00.500000+00:00 "));

    /* A time without year and zone (RFC 3164) is shown in local time. */
    set_tz("Europe/Paris");
    r->flags = RECORD_F_HAS_TIME;
    r->tz_min = 5 * 60 + 30;
    ck_assert_ptr_nonnull(strstr(fmt(FORMAT_RFC5424, r),
                                 " 2026-07-14T12:00:00.500000+02:00 "));
    ck_assert_int_eq(strncmp(fmt(FORMAT_TRADITIONAL, r), "Jul 14 12:00:00 ", 16),
                     0);

    /* Without RECORD_F_HAS_TIME the message mode uses the receive time. */
    r->flags = 0;
    ck_assert_ptr_nonnull(strstr(fmt(FORMAT_RFC5424, r),
                                 " 2026-11-26T12:03:56.123456+01:00 "));
    record_free(r);
}
END_TEST

START_TEST(test_tz_paris)
{
    set_tz("Europe/Paris");
    struct record *r = RAW("m");
    ck_line(fmt(FORMAT_TRADITIONAL, r), "Nov 26 12:03:56 myhost m");
    ck_line(fmt(FORMAT_RFC5424, r),
            "<13>1 2026-11-26T12:03:56.123456+01:00 myhost - - - - m");
    ck_assert_int_eq(strncmp(fmt(FORMAT_JSON, r),
                             "{\"time\":\"2026-11-26T12:03:56.123456+01:00\","
                             "\"recv_time\":\"2026-11-26T11:03:56.123456Z\"",
                             84), 0);
    r->recv_us = 1784023200000001LL; /* 2026-07-14T10:00:00.000001Z */
    ck_line(fmt(FORMAT_TRADITIONAL, r), "Jul 14 12:00:00 myhost m");
    ck_line(fmt(FORMAT_RFC5424, r),
            "<13>1 2026-07-14T12:00:00.000001+02:00 myhost - - - - m");

    set_tz("America/St_Johns");
    ck_line(fmt(FORMAT_RFC5424, r),
            "<13>1 2026-07-14T07:30:00.000001-02:30 myhost - - - - m");
    set_tz("UTC");
    ck_line(fmt(FORMAT_RFC5424, r),
            "<13>1 2026-07-14T10:00:00.000001+00:00 myhost - - - - m");
    record_free(r);
}
END_TEST

/* One context through consecutive seconds: its cache must roll over. */
static void walk(struct format_ctx *tctx, struct format_ctx *rctx,
                 int64_t start, const char *const *trad,
                 const char *const *iso, int n)
{
    struct record *r = RAW("m");
    for (int i = 0; i < n; i++) {
        r->recv_us = (start + i) * 1000000LL + 250000;
        const char *got = fmt_with(tctx, r);
        REQUIRE_MSG(strncmp(got, trad[i], 15) == 0, "%d: %s", i, got);
        got = fmt_with(rctx, r);
        REQUIRE_MSG(strncmp(got + 6, iso[i], 32) == 0, "%d: %s", i, got);
    }
    record_free(r);
}

START_TEST(test_cache_rollover)
{
    struct format_ctx t, x;
    set_tz("Europe/Paris");
    ck_assert_int_eq(format_ctx_init(&t, FORMAT_TRADITIONAL,
                                     FORMAT_TS_RECEIVED, "h"), 0);
    ck_assert_int_eq(format_ctx_init(&x, FORMAT_RFC5424, FORMAT_TS_RECEIVED,
                                     "h"), 0);

    /* Into summer time: 02:00 local does not exist. */
    static const char *const spring_t[] = {
        "Mar 29 01:59:58", "Mar 29 01:59:59", "Mar 29 03:00:00",
        "Mar 29 03:00:01",
    };
    static const char *const spring_x[] = {
        "2026-03-29T01:59:58.250000+01:00", "2026-03-29T01:59:59.250000+01:00",
        "2026-03-29T03:00:00.250000+02:00", "2026-03-29T03:00:01.250000+02:00",
    };
    walk(&t, &x, 1774745998, spring_t, spring_x, 4);

    /* Back to winter time: 02:00 to 03:00 local happens twice. */
    static const char *const autumn_t[] = {
        "Oct 25 02:59:58", "Oct 25 02:59:59", "Oct 25 02:00:00",
        "Oct 25 02:00:01",
    };
    static const char *const autumn_x[] = {
        "2026-10-25T02:59:58.250000+02:00", "2026-10-25T02:59:59.250000+02:00",
        "2026-10-25T02:00:00.250000+01:00", "2026-10-25T02:00:01.250000+01:00",
    };
    walk(&t, &x, 1792889998, autumn_t, autumn_x, 4);

    /* Seconds, minute, hour, day, month and year all roll at once, then
     * time goes back to a minute the cache has just left. */
    static const char *const year_t[] = {
        "Dec 31 23:59:58", "Dec 31 23:59:59", "Jan  1 00:00:00",
        "Jan  1 00:00:01",
    };
    static const char *const year_x[] = {
        "2026-12-31T23:59:58.250000+01:00", "2026-12-31T23:59:59.250000+01:00",
        "2027-01-01T00:00:00.250000+01:00", "2027-01-01T00:00:01.250000+01:00",
    };
    walk(&t, &x, 1798757998, year_t, year_x, 4);
    walk(&t, &x, 1798757998, year_t, year_x, 4);
    walk(&t, &x, 1798757999, year_t + 1, year_x + 1, 1);

    /* Leap day. */
    static const char *const leap_t[] = { "Feb 29 00:59:59", "Feb 29 01:00:00" };
    static const char *const leap_x[] = {
        "2028-02-29T00:59:59.250000+01:00", "2028-02-29T01:00:00.250000+01:00",
    };
    walk(&t, &x, 1835395199, leap_t, leap_x, 2);
}
END_TEST

/* What localtime_r() says, in the formats' words. */
static void reference_times(int64_t us, char *trad, char *iso)
{
    static const char months[12][4] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun",
        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    };
    int64_t sec = us / 1000000 - (us % 1000000 < 0);
    unsigned usec = (unsigned)(us - sec * 1000000);
    time_t t = (time_t)sec;
    struct tm tm;
    REQUIRE(localtime_r(&t, &tm) != NULL);
    long off = tm.tm_gmtoff / 60;
    sprintf(trad, "%s %2d %02d:%02d:%02d", months[tm.tm_mon], tm.tm_mday,
            tm.tm_hour, tm.tm_min, tm.tm_sec);
    sprintf(iso, "%04d-%02d-%02dT%02d:%02d:%02d.%06u%c%02ld:%02ld",
            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
            tm.tm_min, tm.tm_sec, usec, off < 0 ? '-' : '+',
            labs(off) / 60, labs(off) % 60);
}

static void compare_zone(const char *tz)
{
    set_tz(tz);
    struct format_ctx t, x;
    ck_assert_int_eq(format_ctx_init(&t, FORMAT_TRADITIONAL,
                                     FORMAT_TS_RECEIVED, "h"), 0);
    ck_assert_int_eq(format_ctx_init(&x, FORMAT_RFC5424, FORMAT_TS_RECEIVED,
                                     "h"), 0);
    struct record *r = RAW("m");
    char trad[64], iso[64];
    int64_t sec = 1767225600; /* 2026-01-01T00:00:00Z */
    for (int i = 0; i < 60000; i++) {
        switch (rnd() % 8) {
        case 0: /* anywhere from 1850 to 2150 */
            sec = -3786825600LL + (int64_t)(rnd() % 9467280000ULL);
            break;
        case 1: /* a walk across the year, through its transitions */
            sec += 3600 + (int64_t)(rnd() % 3);
            break;
        case 2:
            sec -= (int64_t)(rnd() % 120);
            break;
        default:
            sec += (int64_t)(rnd() % 90);
            break;
        }
        r->recv_us = sec * 1000000 + (int64_t)(rnd() % 1000000);
        reference_times(r->recv_us, trad, iso);
        const char *got = fmt_with(&t, r);
        REQUIRE_MSG(strncmp(got, trad, 15) == 0, "%s at %" PRId64 ": %s vs %s",
                    tz, sec, got, trad);
        got = fmt_with(&x, r);
        REQUIRE_MSG(strncmp(got + 6, iso, 32) == 0 && got[38] == ' ',
                    "%s at %" PRId64 ": %s vs %s", tz, sec, got, iso);
    }

    /* Every second around each of this zone's transitions in 2026. */
    time_t prev = 1767225600;
    struct tm a;
    ck_assert_ptr_nonnull(localtime_r(&prev, &a));
    long prev_off = a.tm_gmtoff;
    for (time_t h = prev + 900; h < 1798761600; h += 900) {
        REQUIRE(localtime_r(&h, &a) != NULL);
        if (a.tm_gmtoff == prev_off)
            continue;
        prev_off = a.tm_gmtoff;
        for (int64_t s = h - 1000; s < h + 100; s++) {
            r->recv_us = s * 1000000;
            reference_times(r->recv_us, trad, iso);
            const char *got = fmt_with(&t, r);
            REQUIRE_MSG(strncmp(got, trad, 15) == 0, "%s at %" PRId64 ": %s vs %s",
                        tz, s, got, trad);
            got = fmt_with(&x, r);
            REQUIRE_MSG(strncmp(got + 6, iso, 32) == 0,
                        "%s at %" PRId64 ": %s vs %s", tz, s, got, iso);
        }
    }
    record_free(r);
}

START_TEST(test_zones_against_localtime)
{
    static const char *const zones[] = {
        "UTC", "Europe/Paris", "America/New_York", "America/St_Johns",
        "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe",
        "Pacific/Chatham", "Europe/Dublin",
        /* Counts leap seconds in time_t: no minute is 60 seconds of
         * time_t, so the cache must fall back to single seconds. */
        "right/UTC",
    };
    for (size_t i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
        char path[128];
        snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", zones[i]);
        if (access(path, R_OK) == 0)
            compare_zone(zones[i]);
    }
    /* A POSIX rule string needs no tzdata at all.  The second one changes
     * offset half-way through a minute, which a per-minute cache must not
     * smear over the whole minute. */
    compare_zone("CET-1CEST,M3.5.0,M10.5.0/3");
    compare_zone("XST0XDT,M3.5.0/1:00:30,M10.5.0/2:00:45");
}
END_TEST

/* Message time, receive time and the record's own offset go through
 * different cache entries; interleaving them must not mix them up. */
START_TEST(test_cache_interleaved)
{
    set_tz("Europe/Paris");
    struct format_ctx ctx;
    ck_assert_int_eq(format_ctx_init(&ctx, FORMAT_JSON, FORMAT_TS_MESSAGE, "h"),
                     0);
    struct record *r = RAW("m");
    r->recv_us = T_RECV;
    for (int i = 0; i < 3000; i++) {
        int64_t ts = 1784023200000000LL + (int64_t)(rnd() % 600) * 1000000;
        r->ts_us = ts;
        r->flags = RECORD_F_HAS_TIME;
        r->tz_min = 0;
        if (rnd() % 2) {
            r->flags |= RECORD_F_TIME_HAS_YEAR;
            r->tz_min = (int16_t)((rnd() % 3) * 60 - 60);
        }
        r->recv_us += (int64_t)(rnd() % 2000000);
        const char *got = fmt_with(&ctx, r);

        char want[200], iso[64], trad[64];
        if (r->flags & RECORD_F_TIME_HAS_YEAR) {
            int64_t local = ts / 1000000 + r->tz_min * 60;
            time_t lt = (time_t)local;
            struct tm tm;
            gmtime_r(&lt, &tm);
            snprintf(iso, sizeof(iso),
                     "%04d-%02d-%02dT%02d:%02d:%02d.000000%c%02d:00",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, r->tz_min < 0 ? '-' : '+',
                     abs(r->tz_min) / 60);
        } else {
            reference_times(ts, trad, iso);
        }
        time_t rt = (time_t)(r->recv_us / 1000000);
        struct tm tm;
        gmtime_r(&rt, &tm);
        snprintf(want, sizeof(want),
                 "{\"time\":\"%s\",\"recv_time\":\"%04d-%02d-%02dT%02d:%02d:"
                 "%02d.%06dZ\",",
                 iso, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, (int)(r->recv_us % 1000000));
        REQUIRE_MSG(strncmp(got, want, strlen(want)) == 0, "%s vs %s", got, want);
    }
    record_free(r);
}
END_TEST

/* A cached minute is not looked up again: with the zone changed under it
 * (without a new context), the cached minutes keep their old offset.  This
 * is what makes the cache pay, and why a context must be made anew after a
 * change of TZ.  The least recently used of the two entries is replaced. */
START_TEST(test_cache_keeps)
{
    set_tz("Europe/Paris");
    struct format_ctx ctx;
    ck_assert_int_eq(format_ctx_init(&ctx, FORMAT_RFC5424, FORMAT_TS_RECEIVED,
                                     "h"), 0);
    struct record *a = RAW("a"), *b = RAW("b"), *c = RAW("c");
    b->recv_us = T_RECV + 3600 * 1000000LL;
    c->recv_us = T_RECV + 7200 * 1000000LL;
    ck_assert_ptr_nonnull(strstr(fmt_with(&ctx, a), "T12:03:56.123456+01:00 "));
    ck_assert_ptr_nonnull(strstr(fmt_with(&ctx, b), "T13:03:56.123456+01:00 "));
    ck_assert_ptr_nonnull(strstr(fmt_with(&ctx, a), "T12:03:56.123456+01:00 "));
    ck_assert_ptr_nonnull(strstr(fmt_with(&ctx, c), "T14:03:56.123456+01:00 "));
    set_tz("UTC");
    ck_assert_ptr_nonnull(strstr(fmt_with(&ctx, a), "T12:03:56.123456+01:00 "));
    ck_assert_ptr_nonnull(strstr(fmt_with(&ctx, c), "T14:03:56.123456+01:00 "));
    /* b was evicted, so it is looked up again, now in UTC. */
    ck_assert_ptr_nonnull(strstr(fmt_with(&ctx, b), "T12:03:56.123456+00:00 "));
    /* A new context sees the new zone. */
    ck_assert_int_eq(format_ctx_init(&ctx, FORMAT_RFC5424, FORMAT_TS_RECEIVED,
                                     "h"), 0);
    ck_assert_ptr_nonnull(strstr(fmt_with(&ctx, a), "T11:03:56.123456+00:00 "));
    record_free(a);
    record_free(b);
    record_free(c);
}
END_TEST

START_TEST(test_time_edges)
{
    struct record *r = RAW("m");

    /* Before 1970, the microseconds still count forward. */
    r->recv_us = -500000;
    ck_assert_ptr_nonnull(strstr(fmt(FORMAT_RFC5424, r),
                                 " 1969-12-31T23:59:59.500000+00:00 "));
    ck_assert_int_eq(strncmp(fmt(FORMAT_JSON, r),
                             "{\"time\":\"1969-12-31T23:59:59.500000+00:00\","
                             "\"recv_time\":\"1969-12-31T23:59:59.500000Z\"",
                             84), 0);

    /* A receive time RFC 3339 cannot write is clamped... */
    r->recv_us = INT64_MIN;
    ck_assert_ptr_nonnull(strstr(fmt(FORMAT_RFC5424, r),
                                 " 0001-01-02T00:00:00.000000+00:00 "));
    r->recv_us = INT64_MAX;
    ck_assert_ptr_nonnull(strstr(fmt(FORMAT_RFC5424, r),
                                 " 9999-12-30T23:59:59.000000+00:00 "));
    ck_assert_ptr_nonnull(strstr(fmt(FORMAT_JSON, r),
                                 "\"recv_time\":\"9999-12-30T23:59:59.000000Z\""));

    /* ...and such a message time gives way to the receive time. */
    r->recv_us = T_RECV;
    r->flags = RECORD_F_HAS_TIME | RECORD_F_TIME_HAS_YEAR;
    r->ts_us = 253402300800LL * 1000000; /* 10000-01-01 */
    ck_assert_ptr_nonnull(strstr(fmt(FORMAT_RFC5424, r),
                                 " 2026-11-26T11:03:56.123456+00:00 "));
    r->ts_us = INT64_MIN;
    ck_assert_ptr_nonnull(strstr(fmt(FORMAT_RFC5424, r),
                                 " 2026-11-26T11:03:56.123456+00:00 "));

    /* The first and last days of RFC 3339, in extreme offsets. */
    r->ts_us = -62135510400LL * 1000000; /* 0001-01-02T00:00:00Z */
    r->tz_min = -(23 * 60 + 59);
    ck_assert_ptr_nonnull(strstr(fmt(FORMAT_RFC5424, r),
                                 " 0001-01-01T00:01:00.000000-23:59 "));
    r->ts_us = 253402214399LL * 1000000; /* 9999-12-30T23:59:59Z */
    r->tz_min = 23 * 60 + 59;
    ck_assert_ptr_nonnull(strstr(fmt(FORMAT_RFC5424, r),
                                 " 9999-12-31T23:58:59.000000+23:59 "));

    /* Paris before 1911 ran on local mean time, +00:09:21: not whole
     * minutes, so each second is looked up alone, and RFC 3339 shows the
     * offset cut to minutes. */
    set_tz("Europe/Paris");
    r->flags = 0;
    r->recv_us = -2524521600LL * 1000000; /* 1890-01-01T00:00:00Z */
    ck_assert_ptr_nonnull(strstr(fmt(FORMAT_RFC5424, r),
                                 " 1890-01-01T00:09:21.000000+00:09 "));
    record_free(r);
}
END_TEST

START_TEST(test_shows_peer)
{
    struct record_pool pool;
    record_pool_init(&pool, 0);
    /* "IP:port", then a subject with the characters SD and JSON escape. */
    static const char ext[] = "10.0.0.7:5140CN=a\"b]c\\d";
    struct record *r = record_pool_new_ext(&pool, "hello", 5, ext, sizeof(ext) - 1);
    REQUIRE(r != NULL);
    r->peer = (struct span){6, 13};
    r->peer_name = (struct span){19, (uint32_t)(sizeof(ext) - 1 - 13)};
    r->recv_us = T_RECV;
    ck_assert_ptr_nonnull(strstr(fmt(FORMAT_RFC5424, r),
                                 "[lograil@32473 peer=\"10.0.0.7:5140\" "
                                 "peer_name=\"CN=a\\\"b\\]c\\\\d\"] hello"));
    ck_assert_ptr_nonnull(strstr(fmt(FORMAT_JSON, r),
                                 ",\"peer\":\"10.0.0.7:5140\",\"peer_name\":\"CN=a\\\"b]c\\\\d\""));
    /* Traditional and raw show the message only. */
    ck_assert_ptr_null(strstr(fmt(FORMAT_TRADITIONAL, r), "10.0.0.7"));
    ck_assert_str_eq(fmt(FORMAT_RAW, r), "hello\n");
    /* A span that points outside the trusted bytes is refused. */
    r->peer = (struct span){2, 3};
    buf_reset(&out);
    struct format_ctx ctx;
    REQUIRE(format_ctx_init(&ctx, FORMAT_JSON, FORMAT_TS_MESSAGE, "myhost") == 0);
    ck_assert_int_eq(format_record(&ctx, r, &out), -EINVAL);
    record_free(r);
    record_pool_release(&pool);
}
END_TEST

static Suite *format_suite(void)
{
    Suite *s = suite_create("format");
    struct {
        const char *name;
        const TTest *tests[12];
    } groups[] = {
        { "api", { test_names, test_buf, test_bad_arguments, test_appends,
                   test_hostname } },
        { "traditional", { test_trad_full, test_trad_tags, test_trad_escapes,
                           test_truncated_mark } },
        { "rfc5424", { test_rfc5424_full, test_shows_creds, test_rfc5424_header_fields,
                       test_rfc5424_sd, test_rfc5424_msg, test_shows_peer } },
        { "json", { test_json_full, test_json_names, test_json_escapes,
                    test_json_python_random, test_json_python_known,
                    test_json_jq } },
        { "raw", { test_raw } },
        { "escaping", { test_escape_positions, test_escape_random,
                        test_big_messages, test_empty_messages } },
        { "time", { test_ts_modes, test_tz_paris, test_cache_rollover,
                    test_zones_against_localtime, test_cache_interleaved, test_cache_keeps,
                    test_time_edges } },
    };
    for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
        TCase *tc = tcase_create(groups[g].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        for (size_t i = 0; groups[g].tests[i] != NULL; i++)
            tcase_add_test(tc, groups[g].tests[i]);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(format_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
