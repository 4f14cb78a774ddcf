/* Check suite for lib/frame.c: newline and octet-counted stream framing. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"

/* What the emit callback saw: every message, copied, with its flags and
 * whether its pointer lay inside the buffer of the feed that emitted it. */
struct got {
    size_t n;
    char *msg[512];
    size_t len[512];
    unsigned flags[512];
    int zero_copy[512];
    const char *feed_lo, *feed_hi; /* the buffer being fed */
    int fail_at;                   /* emit number that returns -ECANCELED */
};

static int collect(void *ctx, const char *msg, size_t len, unsigned flags)
{
    struct got *g = ctx;

    ck_assert_uint_gt(len, 0);
    ck_assert_uint_lt(g->n, 512);
    if (g->fail_at > 0 && (size_t)g->fail_at == g->n + 1)
        return -ECANCELED;
    g->msg[g->n] = malloc(len + 1);
    memcpy(g->msg[g->n], msg, len);
    g->msg[g->n][len] = '\0';
    g->len[g->n] = len;
    g->flags[g->n] = flags;
    g->zero_copy[g->n] = msg >= g->feed_lo && msg + len <= g->feed_hi;
    g->n++;
    return 0;
}

static void got_free(struct got *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->msg[i]);
    g->n = 0;
}

static int feed(struct frame *f, struct got *g, const char *p, size_t n)
{
    g->feed_lo = p;
    g->feed_hi = p + n;
    return frame_feed(f, p, n, collect, g);
}

/* Frame s[0..n) cut into chunks of the sizes chunk() returns, then finish.
 * Each chunk is copied to a buffer of its own so that ASan sees any read
 * past the chunk. */
static void run_chunks(struct got *g, const char *s, size_t n, size_t max,
                       size_t (*chunk)(size_t i, void *arg), void *arg)
{
    struct frame f;

    ck_assert_int_eq(frame_init(&f, max), 0);
    memset(g, 0, sizeof(*g));
    for (size_t off = 0, i = 0; off < n; i++) {
        size_t c = chunk(i, arg);
        if (c > n - off)
            c = n - off;
        char *b = malloc(c);
        memcpy(b, s + off, c);
        ck_assert_int_eq(feed(&f, g, b, c), 0);
        free(b);
        off += c;
    }
    ck_assert_int_eq(frame_finish(&f, collect, g), 0);
    /* Memory held stays bounded by max_message + 1 however we fed. */
    ck_assert_uint_le(f.buf_cap, max + 1);
    frame_free(&f);
}

static size_t chunk_all(size_t i, void *arg)
{
    (void)i;
    (void)arg;
    return SIZE_MAX;
}

static size_t chunk_one(size_t i, void *arg)
{
    (void)i;
    (void)arg;
    return 1;
}

static size_t chunk_split(size_t i, void *arg)
{
    return i == 0 ? *(size_t *)arg : SIZE_MAX;
}

static size_t chunk_random(size_t i, void *arg)
{
    (void)i;
    unsigned *seed = arg;
    *seed = *seed * 1103515245u + 12345u;
    return 1 + (*seed >> 16) % 23;
}

static void run(struct got *g, const char *s, size_t n, size_t max)
{
    run_chunks(g, s, n, max, chunk_all, NULL);
}

#define RUN(g, lit, max) run((g), (lit), sizeof(lit) - 1, (max))

static void expect(const struct got *g, size_t i, const char *msg, size_t len,
                   unsigned flags)
{
    ck_assert_msg(i < g->n, "message %zu missing (got %zu)", i, g->n);
    ck_assert_uint_eq(g->len[i], len);
    ck_assert_msg(memcmp(g->msg[i], msg, len) == 0, "message %zu: '%s'", i,
                  g->msg[i]);
    ck_assert_uint_eq(g->flags[i], flags);
}

#define EXPECT(g, i, lit, flags) expect((g), (i), (lit), sizeof(lit) - 1, (flags))

static void same(const struct got *a, const struct got *b, const char *what)
{
    ck_assert_msg(a->n == b->n, "%s: %zu messages, want %zu", what, b->n, a->n);
    for (size_t i = 0; i < a->n; i++) {
        ck_assert_msg(a->len[i] == b->len[i] &&
                          memcmp(a->msg[i], b->msg[i], a->len[i]) == 0 &&
                          a->flags[i] == b->flags[i],
                      "%s: message %zu differs", what, i);
    }
}

/* Every way of cutting s gives what one feed gives. */
static void check_splits(const char *s, size_t n, size_t max)
{
    struct got ref, g;

    run(&ref, s, n, max);
    for (size_t cut = 0; cut <= n; cut++) {
        run_chunks(&g, s, n, max, chunk_split, &cut);
        same(&ref, &g, "two feeds");
        got_free(&g);
    }
    run_chunks(&g, s, n, max, chunk_one, NULL);
    same(&ref, &g, "byte by byte");
    got_free(&g);
    for (unsigned seed = 1; seed <= 50; seed++) {
        unsigned st = seed;
        run_chunks(&g, s, n, max, chunk_random, &st);
        same(&ref, &g, "random chunks");
        got_free(&g);
    }
    got_free(&ref);
}

#define CHECK_SPLITS(lit, max) check_splits((lit), sizeof(lit) - 1, (max))

/* ---- newline framing ---- */

START_TEST(lf_basic)
{
    struct got g;

    RUN(&g, "<13>Nov 26 11:39:07 tag: a\n<13>Nov 26 11:39:07 tag: b\n", 1024);
    ck_assert_uint_eq(g.n, 2);
    EXPECT(&g, 0, "<13>Nov 26 11:39:07 tag: a", 0);
    EXPECT(&g, 1, "<13>Nov 26 11:39:07 tag: b", 0);
    got_free(&g);
}
END_TEST

START_TEST(lf_mode_detected)
{
    struct frame f;
    struct got g = {0};

    ck_assert_int_eq(frame_init(&f, 64), 0);
    ck_assert_int_eq(frame_mode(&f), FRAME_MODE_UNKNOWN);
    ck_assert_int_eq(feed(&f, &g, "", 0), 0);
    ck_assert_int_eq(frame_mode(&f), FRAME_MODE_UNKNOWN);
    ck_assert_int_eq(feed(&f, &g, "<1", 2), 0);
    ck_assert_int_eq(frame_mode(&f), FRAME_MODE_LF);
    ck_assert_uint_eq(g.n, 0);
    frame_free(&f);
}
END_TEST

START_TEST(lf_zero_copy)
{
    struct frame f;
    struct got g = {0};
    const char in[] = "one\ntwo\nthr";

    ck_assert_int_eq(frame_init(&f, 64), 0);
    ck_assert_int_eq(feed(&f, &g, in, sizeof(in) - 1), 0);
    ck_assert_uint_eq(g.n, 2);
    ck_assert(g.zero_copy[0] && g.zero_copy[1]);
    /* No partial buffer until a message spans two feeds. */
    ck_assert_ptr_nonnull(f.buf);
    ck_assert_int_eq(feed(&f, &g, "ee\n", 3), 0);
    ck_assert_uint_eq(g.n, 3);
    EXPECT(&g, 2, "three", 0);
    ck_assert(!g.zero_copy[2]);
    frame_free(&f);
    got_free(&g);

    /* Whole lines in one feed never allocate. */
    ck_assert_int_eq(frame_init(&f, 64), 0);
    ck_assert_int_eq(feed(&f, &g, "a\nb\n", 4), 0);
    ck_assert_ptr_null(f.buf);
    frame_free(&f);
    got_free(&g);
}
END_TEST

START_TEST(lf_crlf)
{
    struct got g;

    RUN(&g, "a\r\nb\r\nc\rd\n\r\r\n", 64);
    ck_assert_uint_eq(g.n, 4);
    EXPECT(&g, 0, "a", 0);
    EXPECT(&g, 1, "b", 0);
    EXPECT(&g, 2, "c\rd", 0); /* a CR inside a line stays */
    /* "\r\r\n": one CR is line ending, the other is content. */
    EXPECT(&g, 3, "\r", 0);
    got_free(&g);
    RUN(&g, "\r\r\n", 64);
    ck_assert_uint_eq(g.n, 1);
    EXPECT(&g, 0, "\r", 0);
    got_free(&g);
    CHECK_SPLITS("a\r\nb\r\nc\rd\n\r\r\nlast\r", 64);
}
END_TEST

START_TEST(lf_empty_lines_skipped)
{
    struct got g;

    RUN(&g, "\n\n\r\nx\n\n\r\n\ny\n", 64);
    ck_assert_uint_eq(g.n, 2);
    EXPECT(&g, 0, "x", 0);
    EXPECT(&g, 1, "y", 0);
    got_free(&g);
    RUN(&g, "\r\n\r", 64); /* a lone CR at the end: empty too */
    ck_assert_uint_eq(g.n, 0);
}
END_TEST

START_TEST(lf_final_line_without_newline)
{
    struct got g;

    RUN(&g, "first\nlast words", 64);
    ck_assert_uint_eq(g.n, 2);
    EXPECT(&g, 1, "last words", 0);
    got_free(&g);
    RUN(&g, "last\r", 64);
    ck_assert_uint_eq(g.n, 1);
    EXPECT(&g, 0, "last", 0);
    got_free(&g);
    CHECK_SPLITS("first\nlast words", 64);
}
END_TEST

START_TEST(lf_binary_passthrough)
{
    /* Everything but LF and NUL passes through newline framing untouched. */
    static const char in[] = "a\xff\xfe\x01\x1b[31m\xc3\x28 \xf0\x9f\x98\x80\n\n";
    struct got g;

    RUN(&g, in, 64);
    ck_assert_uint_eq(g.n, 1);
    expect(&g, 0, in, 16, 0);
    got_free(&g);
    CHECK_SPLITS(in, 64);
}
END_TEST

/* glibc's syslog(3) and Python's SysLogHandler end each message on a
 * stream socket with a NUL and no LF. */
START_TEST(lf_nul_ends_a_message)
{
    static const char in[] = "<13>one\0<13>two\0three\n\0\0four";
    struct got g;

    RUN(&g, in, 64); /* feeds, then finishes: "four" is the final line */
    ck_assert_uint_eq(g.n, 4);
    EXPECT(&g, 0, "<13>one", 0);
    EXPECT(&g, 1, "<13>two", 0);
    EXPECT(&g, 2, "three", 0);
    EXPECT(&g, 3, "four", 0);
    got_free(&g);
    CHECK_SPLITS(in, 64);
}
END_TEST

START_TEST(lf_truncate)
{
    struct got g;
    /* 40 bytes, then a normal line. */
    RUN(&g, "A123456789abcdefghijklmnopqrstuvwxyzABCD\nnext\n", 16);
    ck_assert_uint_eq(g.n, 2);
    EXPECT(&g, 0, "A123456789abcdef", FRAME_TRUNCATED);
    EXPECT(&g, 1, "next", 0);
    got_free(&g);
    CHECK_SPLITS("A123456789abcdefghijklmnopqrstuvwxyzABCD\nnext\n", 16);
    CHECK_SPLITS("A123456789abcdefghijklmnopqrstuvwxyzABCD", 16);
}
END_TEST

START_TEST(lf_truncate_boundaries)
{
    struct got g;

    /* Exactly max: whole. */
    RUN(&g, "A123456789abcdef\n", 16);
    EXPECT(&g, 0, "A123456789abcdef", 0);
    got_free(&g);
    /* Exactly max and CRLF: whole. */
    RUN(&g, "A123456789abcdef\r\nx\n", 16);
    ck_assert_uint_eq(g.n, 2);
    EXPECT(&g, 0, "A123456789abcdef", 0);
    got_free(&g);
    /* max + 1: cut. */
    RUN(&g, "A123456789abcdefg\nx\n", 16);
    ck_assert_uint_eq(g.n, 2);
    EXPECT(&g, 0, "A123456789abcdef", FRAME_TRUNCATED);
    EXPECT(&g, 1, "x", 0);
    got_free(&g);
    /* max + 1 at end of stream: cut. */
    RUN(&g, "A123456789abcdefg", 16);
    ck_assert_uint_eq(g.n, 1);
    EXPECT(&g, 0, "A123456789abcdef", FRAME_TRUNCATED);
    got_free(&g);
    /* max bytes then CR at end of stream: whole. */
    RUN(&g, "A123456789abcdef\r", 16);
    EXPECT(&g, 0, "A123456789abcdef", 0);
    got_free(&g);
    /* max bytes, CR, then more: the CR was content, the line is too long. */
    RUN(&g, "A123456789abcdef\rX\n", 16);
    EXPECT(&g, 0, "A123456789abcdef", FRAME_TRUNCATED);
    got_free(&g);
    CHECK_SPLITS("A123456789abcdef\nA123456789abcdef\r\nA123456789abcdefg\n"
                 "A123456789abcdef\rX\nok\nA123456789abcdef\r", 16);
}
END_TEST

START_TEST(lf_huge_line_bounded)
{
    struct frame f;
    struct got g = {0};
    char *big = malloc(1 << 20);

    memset(big, 'x', 1 << 20);
    ck_assert_int_eq(frame_init(&f, 100), 0);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(feed(&f, &g, big, 1 << 20), 0);
    ck_assert_uint_le(f.buf_cap, 101);
    ck_assert_int_eq(feed(&f, &g, "tail\nok\n", 8), 0);
    ck_assert_uint_eq(g.n, 2);
    ck_assert_uint_eq(g.len[0], 100);
    ck_assert_uint_eq(g.flags[0], FRAME_TRUNCATED);
    EXPECT(&g, 1, "ok", 0);
    frame_free(&f);
    got_free(&g);
    free(big);
}
END_TEST

/* ---- octet counting ---- */

START_TEST(oc_basic)
{
    struct got g;

    RUN(&g, "5 hello5 world", 64);
    ck_assert_uint_eq(g.n, 2);
    EXPECT(&g, 0, "hello", 0);
    EXPECT(&g, 1, "world", 0);
    got_free(&g);
    CHECK_SPLITS("5 hello5 world", 64);
}
END_TEST

START_TEST(oc_logger_output)
{
    /* What `printf 'a\nb\n' | logger -u SOCK --octet-count -t tag` sent on
     * this machine, and `logger --octet-count --rfc5424 -t tag hi`. */
    static const char two[] =
        "26 <13>Nov 26 11:39:07 tag: a26 <13>Nov 26 11:39:07 tag: b";
    static const char ietf[] =
        "91 <13>1 2026-11-26T11:39:07.616835+00:00 vm tag - - "
        "[timeQuality tzKnown=\"1\" isSynced=\"0\"] hi";
    struct got g;

    RUN(&g, two, 1024);
    ck_assert_uint_eq(g.n, 2);
    EXPECT(&g, 0, "<13>Nov 26 11:39:07 tag: a", 0);
    EXPECT(&g, 1, "<13>Nov 26 11:39:07 tag: b", 0);
    ck_assert(g.zero_copy[0] && g.zero_copy[1]);
    got_free(&g);
    RUN(&g, ietf, 1024);
    ck_assert_uint_eq(g.n, 1);
    expect(&g, 0, ietf + 3, 91, 0);
    got_free(&g);
    CHECK_SPLITS(two, 1024);
    CHECK_SPLITS(ietf, 1024);
}
END_TEST

START_TEST(oc_body_verbatim)
{
    /* Newlines, CRs, NULs and bytes that are no UTF-8 are body. */
    static const char in[] = "8 a\nb\0\r\n\xff\n3 \n\n\n";
    struct got g;

    RUN(&g, in, 64);
    ck_assert_uint_eq(g.n, 2);
    expect(&g, 0, "a\nb\0\r\n\xff\n", 8, 0);
    EXPECT(&g, 1, "\n\n\n", 0);
    got_free(&g);
    CHECK_SPLITS(in, 64);
}
END_TEST

START_TEST(oc_newline_between_frames)
{
    struct got g;

    RUN(&g, "5 hello\n5 world\r\n\n2 ok", 64);
    ck_assert_uint_eq(g.n, 3);
    EXPECT(&g, 0, "hello", 0);
    EXPECT(&g, 1, "world", 0);
    EXPECT(&g, 2, "ok", 0);
    got_free(&g);
    CHECK_SPLITS("5 hello\n5 world\r\n\n2 ok", 64);
}
END_TEST

START_TEST(oc_truncate)
{
    static const char in[] =
        "40 0123456789abcdefghijklmnopqrstuvwxyzABCD5 hello";
    struct got g;

    RUN(&g, in, 16);
    ck_assert_uint_eq(g.n, 2);
    EXPECT(&g, 0, "0123456789abcdef", FRAME_TRUNCATED);
    EXPECT(&g, 1, "hello", 0);
    got_free(&g);
    /* Exactly max is whole; max + 1 is cut. */
    RUN(&g, "16 0123456789abcdef17 0123456789abcdefg1 z", 16);
    ck_assert_uint_eq(g.n, 3);
    EXPECT(&g, 0, "0123456789abcdef", 0);
    EXPECT(&g, 1, "0123456789abcdef", FRAME_TRUNCATED);
    EXPECT(&g, 2, "z", 0);
    got_free(&g);
    CHECK_SPLITS(in, 16);
    CHECK_SPLITS("16 0123456789abcdef17 0123456789abcdefg1 z", 16);
}
END_TEST

START_TEST(oc_huge_count_bounded)
{
    struct frame f;
    struct got g = {0};
    char *big = malloc(1 << 20);

    memset(big, 'y', 1 << 20);
    ck_assert_int_eq(frame_init(&f, 64), 0);
    /* The largest count we accept, 4 GiB - 1: the first 64 bytes are the
     * message, the rest is skipped as it comes. */
    ck_assert_int_eq(feed(&f, &g, "4294967295 ", 11), 0);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(feed(&f, &g, big, 1 << 20), 0);
    ck_assert_uint_eq(g.n, 1);
    ck_assert_uint_eq(g.len[0], 64);
    ck_assert_uint_eq(g.flags[0], FRAME_TRUNCATED);
    ck_assert_uint_le(f.buf_cap, 65);
    ck_assert_int_eq(frame_mode(&f), FRAME_MODE_OCTET);
    frame_free(&f);
    got_free(&g);
    free(big);
}
END_TEST

START_TEST(oc_bad_count_nondigit)
{
    static const char in[] = "12x34 rest\nnext\n";
    struct got g;
    struct frame f;

    RUN(&g, in, 64);
    ck_assert_uint_eq(g.n, 2);
    EXPECT(&g, 0, "12x34 rest", FRAME_BAD_COUNT);
    EXPECT(&g, 1, "next", 0);
    got_free(&g);
    CHECK_SPLITS(in, 64);

    /* The connection is newline-framed from then on. */
    memset(&g, 0, sizeof(g));
    ck_assert_int_eq(frame_init(&f, 64), 0);
    ck_assert_int_eq(feed(&f, &g, "1x\n5 hello", 10), 0);
    ck_assert_int_eq(frame_mode(&f), FRAME_MODE_LF);
    ck_assert_int_eq(frame_finish(&f, collect, &g), 0);
    ck_assert_uint_eq(g.n, 2);
    EXPECT(&g, 0, "1x", FRAME_BAD_COUNT);
    EXPECT(&g, 1, "5 hello", 0);
    frame_free(&f);
    got_free(&g);
}
END_TEST

START_TEST(oc_bad_count_no_space)
{
    struct got g;

    RUN(&g, "12\nabc\n", 64); /* digits, then LF where SP belongs */
    ck_assert_uint_eq(g.n, 2);
    EXPECT(&g, 0, "12", FRAME_BAD_COUNT);
    EXPECT(&g, 1, "abc", 0);
    got_free(&g);
    RUN(&g, "12\r\nabc\n", 64);
    EXPECT(&g, 0, "12", FRAME_BAD_COUNT);
    got_free(&g);
    RUN(&g, "12<13>hi\n", 64);
    EXPECT(&g, 0, "12<13>hi", FRAME_BAD_COUNT);
    got_free(&g);
    CHECK_SPLITS("12\r\nabc\n12<13>hi\n", 64);
}
END_TEST

START_TEST(oc_bad_count_zero_and_leading_zero)
{
    struct got g;

    RUN(&g, "0 x\n", 64);
    ck_assert_uint_eq(g.n, 1);
    EXPECT(&g, 0, "0 x", FRAME_BAD_COUNT);
    got_free(&g);
    RUN(&g, "05 hello\n", 64);
    ck_assert_uint_eq(g.n, 1);
    EXPECT(&g, 0, "05 hello", FRAME_BAD_COUNT);
    got_free(&g);
    /* After a good frame too. */
    RUN(&g, "1 a0 b\n", 64);
    ck_assert_uint_eq(g.n, 2);
    EXPECT(&g, 0, "a", 0);
    EXPECT(&g, 1, "0 b", FRAME_BAD_COUNT);
    got_free(&g);
    CHECK_SPLITS("1 a0 b\n05 c\n", 64);
}
END_TEST

START_TEST(oc_bad_count_too_many_digits)
{
    struct got g;

    RUN(&g, "12345678901 x\nnext\n", 64); /* eleven digits */
    ck_assert_uint_eq(g.n, 2);
    EXPECT(&g, 0, "12345678901 x", FRAME_BAD_COUNT);
    EXPECT(&g, 1, "next", 0);
    got_free(&g);
    /* Ten digits but more than 4294967295. */
    RUN(&g, "4294967296 x\n", 64);
    ck_assert_uint_eq(g.n, 1);
    EXPECT(&g, 0, "4294967296 x", FRAME_BAD_COUNT);
    got_free(&g);
    RUN(&g, "9999999999 x\n", 64);
    EXPECT(&g, 0, "9999999999 x", FRAME_BAD_COUNT);
    got_free(&g);
    /* A thousand digits: never a hang, memory bounded. */
    char in[1100];
    memset(in, '7', 1000);
    memcpy(in + 1000, " tail\nnext\n", 11);
    run(&g, in, 1011, 64);
    ck_assert_uint_eq(g.n, 2);
    ck_assert_uint_eq(g.len[0], 64);
    ck_assert_uint_eq(g.flags[0], FRAME_BAD_COUNT | FRAME_TRUNCATED);
    EXPECT(&g, 1, "next", 0);
    got_free(&g);
    check_splits(in, 1011, 64);
    CHECK_SPLITS("4294967296 x\n12345678901 x\nnext\n", 64);
}
END_TEST

START_TEST(oc_bad_count_after_frame)
{
    struct got g;

    RUN(&g, "5 hellojunk here\n5 world", 64);
    ck_assert_uint_eq(g.n, 3);
    EXPECT(&g, 0, "hello", 0);
    EXPECT(&g, 1, "junk here", FRAME_BAD_COUNT);
    EXPECT(&g, 2, "5 world", 0);
    got_free(&g);
    /* A bad count at end of stream without LF: still emitted. */
    RUN(&g, "5 hello7z", 64);
    ck_assert_uint_eq(g.n, 2);
    EXPECT(&g, 1, "7z", FRAME_BAD_COUNT);
    got_free(&g);
    /* A space where the count belongs. */
    RUN(&g, "5 hello abc\n", 64);
    EXPECT(&g, 1, " abc", FRAME_BAD_COUNT);
    got_free(&g);
    CHECK_SPLITS("5 hellojunk here\n5 world", 64);
    CHECK_SPLITS("5 hello7z", 64);
}
END_TEST

START_TEST(oc_bad_count_flag_not_sticky)
{
    struct got g;

    /* The bad line is truncated; the flag does not leak to the next. */
    RUN(&g, "1x23456789abcdefghijk\nnext\n", 16);
    ck_assert_uint_eq(g.n, 2);
    EXPECT(&g, 0, "1x23456789abcdef", FRAME_BAD_COUNT | FRAME_TRUNCATED);
    EXPECT(&g, 1, "next", 0);
    got_free(&g);
    CHECK_SPLITS("1x23456789abcdefghijk\nnext\n", 16);
}
END_TEST

START_TEST(oc_eof_partial)
{
    struct got g;

    RUN(&g, "37 <13>1 abc", 64);
    ck_assert_uint_eq(g.n, 1);
    EXPECT(&g, 0, "<13>1 abc", FRAME_INCOMPLETE);
    got_free(&g);
    RUN(&g, "12", 64); /* a count without its SP */
    ck_assert_uint_eq(g.n, 1);
    EXPECT(&g, 0, "12", FRAME_INCOMPLETE);
    got_free(&g);
    RUN(&g, "12 ", 64); /* a header and no body: nothing */
    ck_assert_uint_eq(g.n, 0);
    /* A long frame cut at EOF before max bytes came. */
    RUN(&g, "100 0123", 16);
    ck_assert_uint_eq(g.n, 1);
    EXPECT(&g, 0, "0123", FRAME_INCOMPLETE);
    got_free(&g);
    /* ...and after they came: already emitted, nothing more. */
    RUN(&g, "100 0123456789abcdefXYZ", 16);
    ck_assert_uint_eq(g.n, 1);
    EXPECT(&g, 0, "0123456789abcdef", FRAME_TRUNCATED);
    got_free(&g);
    CHECK_SPLITS("5 hello37 <13>1 abc", 64);
    CHECK_SPLITS("5 hello12", 64);
}
END_TEST

START_TEST(first_byte_digit_means_octet)
{
    struct got g;

    /* A newline-framed client whose first line starts with a digit is
     * taken for octet counting: the price of detecting by the first byte.
     * Its bytes are not lost. */
    RUN(&g, "2026 was a good year\n", 64);
    ck_assert_uint_eq(g.n, 1);
    EXPECT(&g, 0, "was a good year\n", FRAME_INCOMPLETE);
    got_free(&g);
}
END_TEST

/* ---- life cycle and errors ---- */

START_TEST(emit_error_aborts)
{
    struct frame f;
    struct got g = {0};

    g.fail_at = 2;
    ck_assert_int_eq(frame_init(&f, 64), 0);
    ck_assert_int_eq(feed(&f, &g, "a\nb\nc\n", 6), -ECANCELED);
    ck_assert_uint_eq(g.n, 1);
    frame_free(&f);
    got_free(&g);

    memset(&g, 0, sizeof(g));
    g.fail_at = 1;
    ck_assert_int_eq(frame_init(&f, 64), 0);
    ck_assert_int_eq(feed(&f, &g, "1 a1 b", 6), -ECANCELED);
    ck_assert_uint_eq(g.n, 0);
    frame_free(&f);

    ck_assert_int_eq(frame_init(&f, 64), 0);
    ck_assert_int_eq(feed(&f, &g, "tail", 4), 0);
    ck_assert_int_eq(frame_finish(&f, collect, &g), -ECANCELED);
    frame_free(&f);
}
END_TEST

START_TEST(bad_arguments)
{
    struct frame f;

    ck_assert_int_eq(frame_init(NULL, 64), -EINVAL);
    ck_assert_int_eq(frame_init(&f, FRAME_MIN_MESSAGE - 1), -EINVAL);
    ck_assert_int_eq(frame_init(&f, UINT32_MAX), -EINVAL);
    ck_assert_int_eq(frame_init(&f, FRAME_MIN_MESSAGE), 0);
    ck_assert_int_eq(frame_feed(&f, "x", 1, NULL, NULL), -EINVAL);
    ck_assert_int_eq(frame_feed(&f, NULL, 1, collect, NULL), -EINVAL);
    ck_assert_int_eq(frame_feed(NULL, "x", 1, collect, NULL), -EINVAL);
    ck_assert_int_eq(frame_finish(&f, NULL, NULL), -EINVAL);
    frame_free(&f);
    frame_free(&f); /* twice is harmless */
    frame_free(NULL);
}
END_TEST

START_TEST(finish_resets)
{
    struct frame f;
    struct got g = {0};

    ck_assert_int_eq(frame_init(&f, 64), 0);
    ck_assert_int_eq(feed(&f, &g, "5 hel", 5), 0);
    ck_assert_int_eq(frame_finish(&f, collect, &g), 0);
    EXPECT(&g, 0, "hel", FRAME_INCOMPLETE);
    ck_assert_int_eq(frame_mode(&f), FRAME_MODE_UNKNOWN);
    /* The next stream picks its own mode and starts clean. */
    ck_assert_int_eq(feed(&f, &g, "line\n", 5), 0);
    ck_assert_int_eq(frame_mode(&f), FRAME_MODE_LF);
    EXPECT(&g, 1, "line", 0);
    ck_assert_int_eq(frame_finish(&f, collect, &g), 0);
    ck_assert_uint_eq(g.n, 2);
    frame_free(&f);
    got_free(&g);
}
END_TEST

START_TEST(mixed_stream_splits)
{
    /* One long stream with every feature, cut every possible way. */
    static const char lf[] =
        "<13>Nov 26 11:39:07 root: hello stream\n\n\r\n"
        "short\r\n"
        "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnop\n"
        "a\0b\n"
        "x";
    static const char oc[] =
        "26 <13>Nov 26 11:39:07 tag: a"
        "70 0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwx"
        "\n3 a\0b"
        "1 z"
        "12q bad count line\n"
        "after\n"
        "20 in lf mode now";
    check_splits(lf, sizeof(lf) - 1, 32);
    check_splits(oc, sizeof(oc) - 1, 32);
}
END_TEST

/* ---- datagrams ---- */

START_TEST(datagram_trim)
{
    static const struct {
        const char *in;
        size_t len, want;
    } cases[] = {
        {"msg", 3, 3},      {"msg\n", 4, 3},      {"msg\r\n", 5, 3},
        {"msg\0", 4, 3},    {"msg\n\0", 5, 3},    {"msg\r\n\0", 6, 3},
        {"msg\n\n", 5, 4},  {"msg\0\0", 5, 4},    {"msg\r", 4, 4},
        {"", 0, 0},         {"\n", 1, 0},         {"\0", 1, 0},
        {"\r\n", 2, 0},     {"m\0sg", 4, 4},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = cases[i].len;
        frame_trim_datagram(cases[i].in, &n);
        ck_assert_msg(n == cases[i].want, "case %zu: %zu, want %zu", i, n,
                      cases[i].want);
    }
    frame_trim_datagram(NULL, NULL);
}
END_TEST

START_TEST(datagram_truncate)
{
    size_t n = 21;
    ck_assert_uint_eq(frame_datagram("0123456789abcdefghij\n", &n, 16),
                      FRAME_TRUNCATED);
    ck_assert_uint_eq(n, 16);
    n = 17;
    ck_assert_uint_eq(frame_datagram("0123456789abcdef\n", &n, 16), 0);
    ck_assert_uint_eq(n, 16);
    ck_assert_uint_eq(frame_datagram(NULL, &n, 16), 0);
}
END_TEST

START_TEST(datagram_strip_count)
{
    static const struct {
        const char *in;
        const char *out; /* NULL: kept as it is */
    } cases[] = {
        {"5 hello", "hello"},
        {"11 <13>a b c d", "<13>a b c d"},
        {"6 hello", NULL},       /* counts more than follows */
        {"4 hello", NULL},       /* counts less */
        {"05 hello", NULL},      /* leading zero */
        {"0 ", NULL},            /* zero */
        {"5hello", NULL},        /* no SP */
        {"12345678901 x", NULL}, /* more than 10 digits */
        {"1  ", " "},            /* the body may be a blank */
        {"2015 was a year", NULL},
        {"", NULL},
        {"<13>hello", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *p = cases[i].in;
        size_t n = strlen(p);
        bool stripped = frame_strip_count(&p, &n);
        const char *want = cases[i].out ? cases[i].out : cases[i].in;
        ck_assert_msg(stripped == (cases[i].out != NULL), "case %zu", i);
        ck_assert_uint_eq(n, strlen(want));
        ck_assert_msg(memcmp(p, want, n) == 0, "case %zu", i);
    }
    const char *p = NULL;
    size_t n = 3;
    ck_assert(!frame_strip_count(&p, &n));
    ck_assert(!frame_strip_count(NULL, &n));
}
END_TEST

static Suite *frame_suite(void)
{
    Suite *s = suite_create("frame");
    TCase *lf = tcase_create("newline");
    TCase *oc = tcase_create("octet");
    TCase *misc = tcase_create("misc");

    tcase_add_test(lf, lf_basic);
    tcase_add_test(lf, lf_mode_detected);
    tcase_add_test(lf, lf_zero_copy);
    tcase_add_test(lf, lf_crlf);
    tcase_add_test(lf, lf_empty_lines_skipped);
    tcase_add_test(lf, lf_final_line_without_newline);
    tcase_add_test(lf, lf_binary_passthrough);
    tcase_add_test(lf, lf_nul_ends_a_message);
    tcase_add_test(lf, lf_truncate);
    tcase_add_test(lf, lf_truncate_boundaries);
    tcase_add_test(lf, lf_huge_line_bounded);
    suite_add_tcase(s, lf);

    tcase_add_test(oc, oc_basic);
    tcase_add_test(oc, oc_logger_output);
    tcase_add_test(oc, oc_body_verbatim);
    tcase_add_test(oc, oc_newline_between_frames);
    tcase_add_test(oc, oc_truncate);
    tcase_add_test(oc, oc_huge_count_bounded);
    tcase_add_test(oc, oc_bad_count_nondigit);
    tcase_add_test(oc, oc_bad_count_no_space);
    tcase_add_test(oc, oc_bad_count_zero_and_leading_zero);
    tcase_add_test(oc, oc_bad_count_too_many_digits);
    tcase_add_test(oc, oc_bad_count_after_frame);
    tcase_add_test(oc, oc_bad_count_flag_not_sticky);
    tcase_add_test(oc, oc_eof_partial);
    tcase_add_test(oc, first_byte_digit_means_octet);
    suite_add_tcase(s, oc);

    tcase_add_test(misc, emit_error_aborts);
    tcase_add_test(misc, bad_arguments);
    tcase_add_test(misc, finish_resets);
    tcase_add_test(misc, mixed_stream_splits);
    tcase_add_test(misc, datagram_trim);
    tcase_add_test(misc, datagram_truncate);
    tcase_add_test(misc, datagram_strip_count);
    suite_add_tcase(s, misc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(frame_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
