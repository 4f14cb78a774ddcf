/* Check suite for lib/relp.c: RELP frames, rsp and offers, the window. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relp.h"

/* ---- Helpers ------------------------------------------------------------ */

/* Every frame a parse produced, copied, and the error that ended it. */
struct got {
    size_t n;
    uint32_t txnr[64];
    char cmd[64][RELP_COMMAND_MAX + 1];
    char *data[64];
    size_t len[64];
    int zero_copy[64]; /* data pointed into the chunk that completed it */
    int err;           /* 0, or the negative errno that stopped parsing */
    size_t err_at;     /* stream offset of the chunk that failed */
};

static void got_free(struct got *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->data[i]);
    memset(g, 0, sizeof(*g));
}

/* Parse one chunk (copied to a buffer of its own, so that ASan sees any
 * read past it), taking every frame it completes. */
static int feed_chunk(struct relp_parser *p, struct got *g, const char *s,
                      size_t n, size_t stream_off)
{
    char *b = malloc(n ? n : 1);
    size_t off = 0;
    int rc = 0;

    ck_assert_ptr_nonnull(b);
    memcpy(b, s, n);
    while (off < n) {
        struct relp_frame f;
        size_t used = 0;

        rc = relp_parser_next(p, b + off, n - off, &used, &f);
        ck_assert_uint_le(used, n - off);
        if (rc < 0) {
            g->err = rc;
            g->err_at = stream_off;
            break;
        }
        if (rc == 0) {
            ck_assert_uint_eq(used, n - off);
            off += used;
            break;
        }
        ck_assert_int_eq(rc, 1);
        ck_assert_uint_gt(used, 0);
        ck_assert_uint_lt(g->n, 64);
        g->txnr[g->n] = f.txnr;
        memcpy(g->cmd[g->n], f.command, sizeof(f.command));
        g->len[g->n] = f.datalen;
        g->data[g->n] = malloc(f.datalen + 1);
        if (f.datalen > 0) {
            ck_assert_ptr_nonnull(f.data);
            memcpy(g->data[g->n], f.data, f.datalen);
        } else {
            ck_assert_ptr_null(f.data);
        }
        g->data[g->n][f.datalen] = '\0';
        g->zero_copy[g->n] = f.data >= b && f.data + f.datalen <= b + n;
        g->n++;
        off += used;
    }
    free(b);
    return rc;
}

/* Parse s[0..n) cut at the given offsets (sorted, within 0..n). */
static void parse_cuts(struct got *g, const char *s, size_t n, uint32_t max,
                       const size_t *cuts, size_t ncuts)
{
    struct relp_parser p;
    size_t from = 0;

    memset(g, 0, sizeof(*g));
    ck_assert_int_eq(relp_parser_init(&p, max), 0);
    for (size_t i = 0; i <= ncuts && g->err == 0; i++) {
        size_t to = i < ncuts ? cuts[i] : n;
        feed_chunk(&p, g, s + from, to - from, from);
        from = to;
    }
    relp_parser_free(&p);
}

static void parse_whole(struct got *g, const char *s, size_t n, uint32_t max)
{
    parse_cuts(g, s, n, max, NULL, 0);
}

/* ---- Good frames -------------------------------------------------------- */

struct want_frame {
    uint32_t txnr;
    const char *cmd;
    const char *data;
    size_t len;
};

#define OPEN_OFFER                                                         \
    "relp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com" \
    "\ncommands=syslog"

static const struct good_case {
    const char *name;
    const char *in;
    size_t in_len; /* 0: strlen(in) */
    struct want_frame want[4];
    size_t nwant;
} good_cases[] = {
    {"open", "1 open 86 " OPEN_OFFER "\n", 0,
     {{1, "open", OPEN_OFFER, 86}}, 1},
    {"syslog", "2 syslog 5 hello\n", 0, {{2, "syslog", "hello", 5}}, 1},
    {"close, no data", "3 close 0\n", 0, {{3, "close", "", 0}}, 1},
    {"serverclose hint", "0 serverclose 0\n", 0,
     {{0, "serverclose", "", 0}}, 1},
    {"rsp", "1 rsp 6 200 OK\n", 0, {{1, "rsp", "200 OK", 6}}, 1},
    {"data with LF, SP and NUL", "4 syslog 6 a\nb \0c\n", 18,
     {{4, "syslog", "a\nb \0c", 6}}, 1},
    {"data that looks like a frame", "5 syslog 10 6 rsp 0\n\n\n\n", 0,
     {{5, "syslog", "6 rsp 0\n\n\n", 10}}, 1},
    {"leading zeros", "007 syslog 01 x\n", 0, {{7, "syslog", "x", 1}}, 1},
    {"largest txnr", "999999999 syslog 1 x\n", 0,
     {{999999999, "syslog", "x", 1}}, 1},
    {"32-letter command", "9 abcdefghijklmnopqrstuvwxyzABCDEF 0\n", 0,
     {{9, "abcdefghijklmnopqrstuvwxyzABCDEF", "", 0}}, 1},
    {"three frames", "1 syslog 1 a\n2 syslog 2 bc\n3 close 0\n", 0,
     {{1, "syslog", "a", 1}, {2, "syslog", "bc", 2}, {3, "close", "", 0}},
     3},
    {"rsp with offers",
     "1 rsp 93 200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,"
     "http://librelp.adiscon.com\ncommands=syslog\n",
     0,
     {{1, "rsp", "200 OK\n" OPEN_OFFER, 93}}, 1},
};

static void check_good(const struct good_case *c, const struct got *g)
{
    ck_assert_msg(g->err == 0, "%s: error %d", c->name, g->err);
    ck_assert_msg(g->n == c->nwant, "%s: %zu frames, want %zu", c->name, g->n,
                  c->nwant);
    for (size_t i = 0; i < c->nwant; i++) {
        ck_assert_uint_eq(g->txnr[i], c->want[i].txnr);
        ck_assert_str_eq(g->cmd[i], c->want[i].cmd);
        ck_assert_uint_eq(g->len[i], c->want[i].len);
        ck_assert_msg(memcmp(g->data[i], c->want[i].data, c->want[i].len) == 0,
                      "%s: frame %zu data", c->name, i);
    }
}

START_TEST(good_whole)
{
    const struct good_case *c = &good_cases[_i];
    size_t n = c->in_len ? c->in_len : strlen(c->in);
    struct got g;

    parse_whole(&g, c->in, n, RELP_DEFAULT_MAX_DATA);
    check_good(c, &g);
    /* One chunk holding every frame: no data was copied. */
    for (size_t i = 0; i < g.n; i++)
        if (g.len[i] > 0)
            ck_assert_msg(g.zero_copy[i], "%s: frame %zu copied", c->name, i);
    got_free(&g);
}
END_TEST

/* Split at every byte boundary, and at every pair of boundaries. */
START_TEST(good_split_everywhere)
{
    const struct good_case *c = &good_cases[_i];
    size_t n = c->in_len ? c->in_len : strlen(c->in);
    struct got g;

    for (size_t k = 0; k <= n; k++) {
        parse_cuts(&g, c->in, n, RELP_DEFAULT_MAX_DATA, &k, 1);
        check_good(c, &g);
        got_free(&g);
    }
    for (size_t a = 1; a < n; a++)
        for (size_t b = a; b < n; b += 3) {
            size_t cuts[2] = {a, b};
            parse_cuts(&g, c->in, n, RELP_DEFAULT_MAX_DATA, cuts, 2);
            check_good(c, &g);
            got_free(&g);
        }
}
END_TEST

START_TEST(good_byte_by_byte)
{
    const struct good_case *c = &good_cases[_i];
    size_t n = c->in_len ? c->in_len : strlen(c->in);
    size_t *cuts = malloc(n * sizeof(*cuts));
    struct got g;

    for (size_t k = 0; k < n; k++)
        cuts[k] = k;
    parse_cuts(&g, c->in, n, RELP_DEFAULT_MAX_DATA, cuts, n);
    check_good(c, &g);
    got_free(&g);
    free(cuts);
}
END_TEST

/* The caller may stop after any frame and give the rest later: *used says
 * exactly where the next frame starts. */
START_TEST(used_stops_after_each_frame)
{
    static const char s[] = "1 syslog 1 a\n2 close 0\n3 syslog 3 xyz\n";
    static const size_t ends[] = {13, 23, 38};
    struct relp_parser p;
    struct relp_frame f;
    size_t off = 0, used;

    ck_assert_int_eq(relp_parser_init(&p, 100), 0);
    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(relp_parser_next(&p, s + off, sizeof(s) - 1 - off,
                                          &used, &f),
                         1);
        off += used;
        ck_assert_uint_eq(off, ends[i]);
        ck_assert_uint_eq(f.txnr, i + 1);
    }
    ck_assert_int_eq(relp_parser_next(&p, s + off, 0, &used, &f), 0);
    ck_assert_uint_eq(used, 0);
    relp_parser_free(&p);
}
END_TEST

/* ---- Garbage ------------------------------------------------------------ */

static const struct bad_case {
    const char *name;
    const char *in;
    uint32_t max;  /* 0: RELP_DEFAULT_MAX_DATA */
    int err;
    size_t nframes; /* good frames before the error */
} bad_cases[] = {
    {"letter first", "x", 0, -EPROTO, 0},
    {"SP first", " 1 syslog 1 x\n", 0, -EPROTO, 0},
    {"LF first", "\n1 syslog 1 x\n", 0, -EPROTO, 0},
    {"two SP after txnr", "1  syslog 1 x\n", 0, -EPROTO, 0},
    {"digit in command", "1 sys1og 1 x\n", 0, -EPROTO, 0},
    {"LF in command", "1 syslog\n", 0, -EPROTO, 0},
    {"empty command", "1  0\n", 0, -EPROTO, 0},
    {"33-letter command", "1 abcdefghijklmnopqrstuvwxyzABCDEFG 0\n", 0,
     -EPROTO, 0},
    {"letter in datalen", "1 syslog x\n", 0, -EPROTO, 0},
    {"no SP before data", "1 syslog 1x\n", 0, -EPROTO, 0},
    {"empty datalen", "1 syslog \n", 0, -EPROTO, 0},
    {"SP after datalen 0", "1 close 0 \n", 0, -EPROTO, 0},
    {"data longer than datalen", "1 syslog 1 xy\n", 0, -EPROTO, 0},
    {"CRLF trailer", "1 rsp 6 200 OK\r\n", 0, -EPROTO, 0},
    {"ten-digit txnr", "1234567890 syslog 1 x\n", 0, -EPROTO, 0},
    {"ten-digit datalen, no limit", "1 syslog 1234567890 x\n",
     RELP_DATALEN_MAX, -EPROTO, 0},
    {"negative txnr", "-1 syslog 1 x\n", 0, -EPROTO, 0},
    {"NUL in header", "1 sys\0log 1 x\n", 0, -EPROTO, 0},
    {"huge datalen", "1 syslog 999999999 ", 0, -EMSGSIZE, 0},
    {"datalen one over", "1 syslog 101 ", 100, -EMSGSIZE, 0},
    {"good frame then garbage", "1 syslog 1 a\nHTTP/1.1 200 OK\r\n", 0,
     -EPROTO, 1},
    {"good frame then TLS hello", "1 syslog 1 a\n\x16\x03\x01", 0, -EPROTO, 1},
};

START_TEST(bad_frames)
{
    const struct bad_case *c = &bad_cases[_i];
    size_t n = strlen(c->in);
    uint32_t max = c->max ? c->max : RELP_DEFAULT_MAX_DATA;
    struct got g;

    /* NUL in header: the table's literal holds a NUL, so measure by hand. */
    if (strcmp(c->name, "NUL in header") == 0)
        n = 14;
    parse_whole(&g, c->in, n, max);
    ck_assert_msg(g.err == c->err, "%s: got %d want %d", c->name, g.err,
                  c->err);
    ck_assert_uint_eq(g.n, c->nframes);
    got_free(&g);
    /* The same at every split. */
    for (size_t k = 0; k <= n; k++) {
        parse_cuts(&g, c->in, n, max, &k, 1);
        ck_assert_msg(g.err == c->err, "%s split %zu: got %d", c->name, k,
                      g.err);
        ck_assert_uint_eq(g.n, c->nframes);
        got_free(&g);
    }
}
END_TEST

/* An error is sticky; reset makes the parser usable again. */
START_TEST(error_sticky_then_reset)
{
    static const char good[] = "1 syslog 1 a\n";
    struct relp_parser p;
    struct relp_frame f;
    size_t used;

    ck_assert_int_eq(relp_parser_init(&p, 100), 0);
    ck_assert_int_eq(relp_parser_next(&p, "x", 1, &used, &f), -EPROTO);
    ck_assert_int_eq(relp_parser_next(&p, good, sizeof(good) - 1, &used, &f),
                     -EPROTO);
    ck_assert_uint_eq(used, 0);
    relp_parser_reset(&p);
    ck_assert_int_eq(relp_parser_next(&p, good, sizeof(good) - 1, &used, &f),
                     1);
    ck_assert_str_eq(f.command, "syslog");
    /* A reset in the middle of a frame forgets it. */
    ck_assert_int_eq(relp_parser_next(&p, "2 syslog 5 ab", 13, &used, &f), 0);
    relp_parser_reset(&p);
    ck_assert_int_eq(relp_parser_next(&p, good, sizeof(good) - 1, &used, &f),
                     1);
    ck_assert_uint_eq(f.txnr, 1);
    ck_assert_uint_eq(f.datalen, 1);
    relp_parser_free(&p);
}
END_TEST

/* A huge DATALEN is refused before anything is allocated; a frame of
 * exactly max_data is accepted and held in at most max_data bytes, even
 * when its bytes trickle in. */
START_TEST(huge_datalen_bounded)
{
    enum { MAX = 4096 };
    struct relp_parser p;
    struct relp_frame f;
    char hdr[32];
    char *data = malloc(MAX);
    size_t used;
    int hl;

    ck_assert_int_eq(relp_parser_init(&p, MAX), 0);
    ck_assert_int_eq(relp_parser_next(&p, "1 syslog 999999999", 18, &used, &f),
                     -EMSGSIZE);
    ck_assert_uint_eq(p.buf_cap, 0);
    relp_parser_free(&p);

    ck_assert_int_eq(relp_parser_init(&p, MAX), 0);
    hl = snprintf(hdr, sizeof(hdr), "7 syslog %d ", MAX);
    ck_assert_int_eq(relp_parser_next(&p, hdr, (size_t)hl, &used, &f), 0);
    for (size_t i = 0; i < MAX; i++)
        data[i] = (char)('a' + i % 26);
    for (size_t off = 0; off < MAX; off += 7) {
        size_t c = MAX - off < 7 ? MAX - off : 7;
        ck_assert_int_eq(relp_parser_next(&p, data + off, c, &used, &f), 0);
        ck_assert_uint_le(p.buf_cap, MAX);
    }
    ck_assert_int_eq(relp_parser_next(&p, "\n", 1, &used, &f), 1);
    ck_assert_uint_eq(f.datalen, MAX);
    ck_assert(memcmp(f.data, data, MAX) == 0);
    /* A peer that announces the maximum and sends 10 bytes makes the
     * parser hold far less than the maximum. */
    ck_assert_int_eq(relp_parser_next(&p, hdr, (size_t)hl, &used, &f), 0);
    ck_assert_int_eq(relp_parser_next(&p, data, 10, &used, &f), 0);
    relp_parser_free(&p);
    ck_assert_int_eq(relp_parser_init(&p, RELP_DATALEN_MAX), 0);
    ck_assert_int_eq(relp_parser_next(&p, "1 syslog 999999999 ", 19, &used, &f),
                     0);
    ck_assert_int_eq(relp_parser_next(&p, data, 10, &used, &f), 0);
    ck_assert_uint_le(p.buf_cap, 512);
    relp_parser_free(&p);
    free(data);
}
END_TEST

START_TEST(parser_bad_arguments)
{
    struct relp_parser p;
    struct relp_frame f;
    size_t used;

    ck_assert_int_eq(relp_parser_init(&p, 0), -EINVAL);
    ck_assert_int_eq(relp_parser_init(&p, RELP_DATALEN_MAX + 1), -EINVAL);
    ck_assert_int_eq(relp_parser_init(NULL, 10), -EINVAL);
    ck_assert_int_eq(relp_parser_init(&p, 10), 0);
    ck_assert_int_eq(relp_parser_next(&p, NULL, 1, &used, &f), -EINVAL);
    ck_assert_int_eq(relp_parser_next(&p, "1", 1, NULL, &f), -EINVAL);
    ck_assert_int_eq(relp_parser_next(&p, NULL, 0, &used, &f), 0);
    relp_parser_free(&p);
    relp_parser_free(NULL);
}
END_TEST

/* ---- Encoding ----------------------------------------------------------- */

static const struct enc_case {
    uint32_t txnr;
    const char *cmd;
    const char *data;
    size_t len;
    const char *out;
} enc_cases[] = {
    {1, "open", OPEN_OFFER, 86, "1 open 86 " OPEN_OFFER "\n"},
    {2, "syslog", "<13>hi", 6, "2 syslog 6 <13>hi\n"},
    {3, "close", NULL, 0, "3 close 0\n"},
    {0, "serverclose", "", 0, "0 serverclose 0\n"},
    {999999999, "syslog", "a\nb", 3, "999999999 syslog 3 a\nb\n"},
};

START_TEST(encode_table)
{
    const struct enc_case *c = &enc_cases[_i];
    size_t want = strlen(c->out);
    char buf[256];
    struct got g;

    ck_assert_uint_eq(relp_frame_size(c->txnr, strlen(c->cmd), c->len), want);
    ck_assert_int_eq(relp_encode(buf, sizeof(buf), c->txnr, c->cmd, c->data,
                                 c->len),
                     (ssize_t)want);
    ck_assert(memcmp(buf, c->out, want) == 0);
    /* Too small by any amount: -ENOBUFS. */
    for (size_t cap = 0; cap < want; cap++)
        ck_assert_int_eq(relp_encode(buf, cap, c->txnr, c->cmd, c->data,
                                     c->len),
                         -ENOBUFS);
    /* The header alone is the frame without data and trailer. */
    ck_assert_int_eq(relp_encode_header(buf, sizeof(buf), c->txnr, c->cmd,
                                        c->len),
                     (ssize_t)(want - c->len - 1));
    ck_assert(memcmp(buf, c->out, want - c->len - 1) == 0);
    /* What we write, we parse back. */
    parse_whole(&g, c->out, want, RELP_DEFAULT_MAX_DATA);
    ck_assert_uint_eq(g.n, 1);
    ck_assert_uint_eq(g.txnr[0], c->txnr);
    ck_assert_str_eq(g.cmd[0], c->cmd);
    ck_assert_uint_eq(g.len[0], c->len);
    got_free(&g);
}
END_TEST

START_TEST(encode_refuses)
{
    char buf[128];

    ck_assert_int_eq(relp_encode(buf, sizeof(buf), RELP_TXNR_MAX + 1, "syslog",
                                 "x", 1),
                     -EINVAL);
    ck_assert_int_eq(relp_encode(buf, sizeof(buf), 1, "", "x", 1), -EINVAL);
    ck_assert_int_eq(relp_encode(buf, sizeof(buf), 1, NULL, "x", 1), -EINVAL);
    ck_assert_int_eq(relp_encode(buf, sizeof(buf), 1, "sys log", "x", 1),
                     -EINVAL);
    ck_assert_int_eq(relp_encode(buf, sizeof(buf), 1, "sys1og", "x", 1),
                     -EINVAL);
    ck_assert_int_eq(relp_encode(buf, sizeof(buf), 1,
                                 "abcdefghijklmnopqrstuvwxyzABCDEFG", "x", 1),
                     -EINVAL);
    ck_assert_int_eq(relp_encode(buf, sizeof(buf), 1, "syslog", NULL, 1),
                     -EINVAL);
    ck_assert_int_eq(relp_encode_header(buf, sizeof(buf), 1, "syslog",
                                        (size_t)RELP_DATALEN_MAX + 1),
                     -EINVAL);
    ck_assert_int_eq(relp_encode_header(buf, sizeof(buf), RELP_TXNR_MAX,
                                        "abcdefghijklmnopqrstuvwxyzABCDEF",
                                        RELP_DATALEN_MAX),
                     RELP_HEADER_MAX);
}
END_TEST

START_TEST(encode_rsp_roundtrip)
{
    char buf[256];
    ssize_t n;
    struct got g;
    struct relp_rsp r;
    struct relp_open o;
    char offers[200];
    ssize_t ol;

    n = relp_encode_rsp(buf, sizeof(buf), 5, 200, "OK", NULL, 0);
    ck_assert_int_eq(n, 15);
    ck_assert(memcmp(buf, "5 rsp 6 200 OK\n", 15) == 0);
    n = relp_encode_rsp(buf, sizeof(buf), 6, 500, "error", "x", 1);
    ck_assert(memcmp(buf, "6 rsp 11 500 error\nx\n", (size_t)n) == 0);
    ck_assert_int_eq(relp_encode_rsp(buf, sizeof(buf), 6, 99, "x", NULL, 0),
                     -EINVAL);
    ck_assert_int_eq(relp_encode_rsp(buf, sizeof(buf), 6, 200, "a\nb", NULL,
                                     0),
                     -EINVAL);
    ck_assert_int_eq(relp_encode_rsp(buf, 10, 6, 200, "OK", NULL, 0),
                     -ENOBUFS);

    /* The server's answer to open, as a frame, parsed as the client will. */
    ol = relp_open_answer(offers, sizeof(offers), "lograil,0.1");
    ck_assert_int_gt(ol, 0);
    n = relp_encode(buf, sizeof(buf), 1, "rsp", offers, (size_t)ol);
    ck_assert_int_gt(n, 0);
    parse_whole(&g, buf, (size_t)n, RELP_DEFAULT_MAX_DATA);
    ck_assert_uint_eq(g.n, 1);
    ck_assert_int_eq(relp_rsp_parse(g.data[0], g.len[0], &r), 0);
    ck_assert_int_eq(r.code, 200);
    ck_assert_uint_eq(r.textlen, 2);
    ck_assert(memcmp(r.text, "OK", 2) == 0);
    ck_assert_int_eq(relp_open_parse(r.data, r.datalen, &o), 0);
    ck_assert_int_eq(o.version, 0);
    ck_assert(o.syslog);
    ck_assert_uint_eq(o.softwarelen, 11);
    ck_assert(memcmp(o.software, "lograil,0.1", 11) == 0);
    got_free(&g);
}
END_TEST

/* ---- rsp and offers ----------------------------------------------------- */

static const struct rsp_case {
    const char *in;
    int rc;
    int code;
    const char *text;
    const char *data; /* NULL: none */
} rsp_cases[] = {
    {"200 OK", 0, 200, "OK", NULL},
    {"200 OK\nrelp_version=0", 0, 200, "OK", "relp_version=0"},
    {"500 error 3 on connect", 0, 500, "error 3 on connect", NULL},
    {"500 required command not supported by client", 0, 500,
     "required command not supported by client", NULL},
    {"200 ", 0, 200, "", NULL},
    {"200 \n", 0, 200, "", ""},
    {"20 OK", -EPROTO, 0, NULL, NULL},
    {"200OK", -EPROTO, 0, NULL, NULL},
    {"abc OK", -EPROTO, 0, NULL, NULL},
    {"200", -EPROTO, 0, NULL, NULL},
    {"", -ENODATA, 0, NULL, NULL},
};

START_TEST(rsp_table)
{
    const struct rsp_case *c = &rsp_cases[_i];
    struct relp_rsp r;

    ck_assert_int_eq(relp_rsp_parse(c->in, strlen(c->in), &r), c->rc);
    if (c->rc != 0)
        return;
    ck_assert_int_eq(r.code, c->code);
    ck_assert_uint_eq(r.textlen, strlen(c->text));
    ck_assert(memcmp(r.text, c->text, r.textlen) == 0);
    if (c->data == NULL) {
        ck_assert_ptr_null(r.data);
        ck_assert_uint_eq(r.datalen, 0);
    } else {
        ck_assert_uint_eq(r.datalen, strlen(c->data));
        ck_assert(memcmp(r.data, c->data, r.datalen) == 0);
    }
}
END_TEST

static const struct open_case {
    const char *in;
    int rc;
    int version;
    int syslog;
    const char *software; /* NULL: absent */
} open_cases[] = {
    {OPEN_OFFER, 0, 0, 1, "librelp,1.11.0,http://librelp.adiscon.com"},
    /* librelp writes relp_version last in its answers. */
    {"commands=syslog\nrelp_software=x\nrelp_version=0\n", 0, 0, 1, "x"},
    {"relp_version=1\ncommands=eventlog,syslog", 0, 1, 1, NULL},
    {"relp_version=0\ncommands=syslogx", 0, 0, 0, NULL},
    {"relp_version=0\ncommands=", 0, 0, 0, NULL},
    {"relp_version=0\n\n\nunknown=1,2\n", 0, 0, 0, NULL},
    {"relp_version=0\nstarttls", 0, 0, 0, NULL},
    {"commands=syslog", -EPROTO, 0, 0, NULL},
    {"relp_version=", -EPROTO, 0, 0, NULL},
    {"relp_version=x", -EPROTO, 0, 0, NULL},
    {"relp_version=0\n=foo", -EPROTO, 0, 0, NULL},
    {"relp_version=0\nabcdefghijklmnopqrstuvwxyzABCDEFG=1", -EPROTO, 0, 0,
     NULL},
    {"", -EPROTO, 0, 0, NULL},
};

START_TEST(open_table)
{
    const struct open_case *c = &open_cases[_i];
    struct relp_open o;

    ck_assert_int_eq(relp_open_parse(c->in, strlen(c->in), &o), c->rc);
    if (c->rc != 0)
        return;
    ck_assert_int_eq(o.version, c->version);
    ck_assert_int_eq(o.syslog, c->syslog);
    if (c->software == NULL) {
        ck_assert_ptr_null(o.software);
    } else {
        ck_assert_uint_eq(o.softwarelen, strlen(c->software));
        ck_assert(memcmp(o.software, c->software, o.softwarelen) == 0);
    }
}
END_TEST

START_TEST(offer_iteration)
{
    static const char s[] = "a=1,2\n\nbb\ncommands=x,syslog,y";
    struct relp_offer o;
    size_t pos = 0;

    ck_assert_int_eq(relp_offer_next(s, sizeof(s) - 1, &pos, &o), 1);
    ck_assert_uint_eq(o.namelen, 1);
    ck_assert_uint_eq(o.valuelen, 3);
    ck_assert(relp_offer_has(&o, "1") && relp_offer_has(&o, "2"));
    ck_assert(!relp_offer_has(&o, "3") && !relp_offer_has(&o, "1,2"));
    ck_assert_int_eq(relp_offer_next(s, sizeof(s) - 1, &pos, &o), 1);
    ck_assert(o.namelen == 2 && memcmp(o.name, "bb", 2) == 0);
    ck_assert_uint_eq(o.valuelen, 0);
    ck_assert_int_eq(relp_offer_next(s, sizeof(s) - 1, &pos, &o), 1);
    ck_assert(relp_offer_has(&o, "syslog") && relp_offer_has(&o, "y") &&
              relp_offer_has(&o, "x"));
    ck_assert_int_eq(relp_offer_next(s, sizeof(s) - 1, &pos, &o), 0);
    ck_assert_uint_eq(pos, sizeof(s) - 1);
}
END_TEST

START_TEST(open_offer_text)
{
    char buf[128];
    ssize_t n;

    n = relp_open_offer(buf, sizeof(buf), "lograil,0.1");
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_str_eq(buf, "relp_version=0\nrelp_software=lograil,0.1\n"
                          "commands=syslog");
    n = relp_open_answer(buf, sizeof(buf), "lograil,0.1");
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_str_eq(buf, "200 OK\nrelp_version=0\nrelp_software=lograil,0.1\n"
                          "commands=syslog");
    ck_assert_int_eq(relp_open_offer(buf, 20, "lograil"), -ENOBUFS);
    ck_assert_int_eq(relp_open_offer(buf, sizeof(buf), "a\nb"), -EINVAL);
}
END_TEST

/* ---- Bytes from real peers ---------------------------------------------- */

/* What rsyslog 8.2302.0's imrelp (librelp 1.11.0, Debian 12) sent back to a
 * Python socket client that sent open (our offer), three syslog frames in
 * one write (TXNR 2, 3, 4), then close (5): captured on 127.0.0.1 with a
 * private `rsyslogd -n` running `input(type="imrelp" ...)` into a ruleset
 * with queue.type="Direct".  Note the empty rsp to close and the
 * serverclose hint that follows it. */
static const char imrelp_bytes[] =
    "1 rsp 93 200 OK\n"
    "relp_version=0\n"
    "relp_software=librelp,1.11.0,http://librelp.adiscon.com\n"
    "commands=syslog\n"
    "2 rsp 6 200 OK\n"
    "3 rsp 6 200 OK\n"
    "4 rsp 6 200 OK\n"
    "5 rsp 0\n"
    "0 serverclose 0\n";

/* What the same rsyslog's omrelp sent to a Python RELP listener for two
 * `logger -u` messages, then close when rsyslogd was stopped. */
static const char omrelp_bytes[] =
    "1 open 86 relp_version=0\n"
    "relp_software=librelp,1.11.0,http://librelp.adiscon.com\n"
    "commands=syslog\n"
    "2 syslog 58 <13>2026-12-03T07:41:36.729561+00:00 vm app: first mess"
    "age\n"
    "3 syslog 51 <13>2026-12-03T07:41:36.734875+00:00 vm app: second\n"
    "4 close 0\n";

/* A client's view of imrelp's answers, whole and split at every byte: the
 * open answer's offers, the three acks moving the window, the close. */
START_TEST(imrelp_answers)
{
    size_t n = sizeof(imrelp_bytes) - 1;

    for (size_t k = 0; k <= n; k++) {
        struct got g;
        struct relp_rsp r;
        struct relp_open o;
        struct relp_window w;

        parse_cuts(&g, imrelp_bytes, n, RELP_DEFAULT_MAX_DATA, &k, 1);
        ck_assert_int_eq(g.err, 0);
        ck_assert_uint_eq(g.n, 6);
        for (size_t i = 0; i < 5; i++) {
            ck_assert_uint_eq(g.txnr[i], i + 1);
            ck_assert_str_eq(g.cmd[i], "rsp");
        }
        ck_assert_int_eq(relp_rsp_parse(g.data[0], g.len[0], &r), 0);
        ck_assert_int_eq(r.code, 200);
        ck_assert_int_eq(relp_open_parse(r.data, r.datalen, &o), 0);
        ck_assert_int_eq(o.version, 0);
        ck_assert(o.syslog);
        ck_assert_uint_eq(o.softwarelen, 41);
        ck_assert(memcmp(o.software, "librelp,1.11.0,", 15) == 0);

        ck_assert_int_eq(relp_window_init(&w, 128, 1000), 0);
        for (uint32_t t = 2; t <= 4; t++)
            ck_assert_int_eq(relp_window_push(&w, t, 1000 + 100 * t), 0);
        for (size_t i = 1; i <= 3; i++) {
            ck_assert_int_eq(relp_rsp_parse(g.data[i], g.len[i], &r), 0);
            ck_assert_int_eq(r.code, 200);
            ck_assert(r.textlen == 2 && memcmp(r.text, "OK", 2) == 0);
            ck_assert_ptr_null(r.data);
            ck_assert_int_eq(relp_window_ack(&w, g.txnr[i]), 0);
        }
        ck_assert_uint_eq(relp_window_acked_upto(&w), 1400);
        ck_assert_uint_eq(relp_window_count(&w), 0);
        relp_window_free(&w);

        ck_assert_uint_eq(g.len[4], 0);
        ck_assert_int_eq(relp_rsp_parse(g.data[4], g.len[4], &r), -ENODATA);
        ck_assert_uint_eq(g.txnr[5], 0);
        ck_assert_str_eq(g.cmd[5], "serverclose");
        ck_assert_uint_eq(g.len[5], 0);
        got_free(&g);
    }
}
END_TEST

/* A server's view of what omrelp sends. */
START_TEST(omrelp_commands)
{
    size_t n = sizeof(omrelp_bytes) - 1;

    for (size_t k = 0; k <= n; k++) {
        struct got g;
        struct relp_open o;

        parse_cuts(&g, omrelp_bytes, n, RELP_DEFAULT_MAX_DATA, &k, 1);
        ck_assert_int_eq(g.err, 0);
        ck_assert_uint_eq(g.n, 4);
        ck_assert_str_eq(g.cmd[0], "open");
        ck_assert_int_eq(relp_open_parse(g.data[0], g.len[0], &o), 0);
        ck_assert_int_eq(o.version, 0);
        ck_assert(o.syslog);
        ck_assert_str_eq(g.cmd[1], "syslog");
        ck_assert_str_eq(g.data[1], "<13>2026-12-03T07:41:36.729561+00:00 vm "
                                    "app: first message");
        ck_assert_str_eq(g.cmd[2], "syslog");
        ck_assert_uint_eq(g.len[2], 51);
        ck_assert_uint_eq(g.txnr[3], 4);
        ck_assert_str_eq(g.cmd[3], "close");
        ck_assert_uint_eq(g.len[3], 0);
        got_free(&g);
    }
}
END_TEST

/* Our own open offer is what omrelp offers, but for relp_software. */
START_TEST(our_offer_matches_omrelp)
{
    char buf[128];
    ssize_t n = relp_open_offer(buf, sizeof(buf),
                                "librelp,1.11.0,http://librelp.adiscon.com");

    ck_assert_int_eq(n, 86);
    ck_assert(memcmp(buf, omrelp_bytes + 10, 86) == 0);
}
END_TEST

/* ---- TXNR and the window ------------------------------------------------ */

START_TEST(txnr_wraps)
{
    ck_assert_uint_eq(relp_txnr_next(0), 1);
    ck_assert_uint_eq(relp_txnr_next(1), 2);
    ck_assert_uint_eq(relp_txnr_next(999999998), 999999999);
    ck_assert_uint_eq(relp_txnr_next(999999999), 1);
}
END_TEST

START_TEST(window_in_order)
{
    struct relp_window w;

    ck_assert_int_eq(relp_window_init(&w, 8, 100), 0);
    ck_assert_uint_eq(relp_window_acked_upto(&w), 100);
    for (uint32_t t = 2; t <= 6; t++)
        ck_assert_int_eq(relp_window_push(&w, t, 100 + 10 * (t - 1)), 0);
    ck_assert_uint_eq(relp_window_count(&w), 5);
    for (uint32_t t = 2; t <= 6; t++) {
        ck_assert_int_eq(relp_window_ack(&w, t), 0);
        ck_assert_uint_eq(relp_window_acked_upto(&w), 100 + 10 * (t - 1));
    }
    ck_assert_uint_eq(relp_window_count(&w), 0);
    /* Pushes keep following on after the window drained. */
    ck_assert_int_eq(relp_window_push(&w, 8, 200), -EINVAL);
    ck_assert_int_eq(relp_window_push(&w, 7, 200), 0);
    relp_window_free(&w);
}
END_TEST

/* Out-of-order acks: the cursor moves only over the acknowledged prefix. */
static const struct ooo_case {
    uint32_t acks[6];
    uint64_t upto[6]; /* acked_upto after each ack */
} ooo_cases[] = {
    {{3, 1, 2, 5, 4, 6}, {0, 10, 30, 30, 50, 60}},
    {{6, 5, 4, 3, 2, 1}, {0, 0, 0, 0, 0, 60}},
    {{2, 4, 6, 1, 3, 5}, {0, 0, 0, 20, 40, 60}},
    {{1, 2, 3, 4, 5, 6}, {10, 20, 30, 40, 50, 60}},
};

START_TEST(window_out_of_order)
{
    const struct ooo_case *c = &ooo_cases[_i];
    struct relp_window w;

    ck_assert_int_eq(relp_window_init(&w, 6, 0), 0);
    for (uint32_t t = 1; t <= 6; t++)
        ck_assert_int_eq(relp_window_push(&w, t, 10 * t), 0);
    ck_assert(relp_window_full(&w));
    for (size_t i = 0; i < 6; i++) {
        ck_assert_int_eq(relp_window_ack(&w, c->acks[i]), 0);
        ck_assert_uint_eq(relp_window_acked_upto(&w), c->upto[i]);
        /* The same ack twice is unknown now. */
        ck_assert_int_eq(relp_window_ack(&w, c->acks[i]), -ENOENT);
    }
    ck_assert_uint_eq(relp_window_count(&w), 0);
    relp_window_free(&w);
}
END_TEST

START_TEST(window_unknown_and_full)
{
    struct relp_window w;

    ck_assert_int_eq(relp_window_init(&w, 4, 0), 0);
    ck_assert_int_eq(relp_window_ack(&w, 1), -ENOENT);
    for (uint32_t t = 1; t <= 4; t++)
        ck_assert_int_eq(relp_window_push(&w, t, t), 0);
    ck_assert(relp_window_full(&w));
    ck_assert_int_eq(relp_window_push(&w, 5, 5), -ENOBUFS);
    ck_assert_int_eq(relp_window_ack(&w, 0), -ENOENT);
    ck_assert_int_eq(relp_window_ack(&w, 5), -ENOENT);
    ck_assert_int_eq(relp_window_ack(&w, 999999999), -ENOENT);
    ck_assert_int_eq(relp_window_ack(&w, RELP_TXNR_MAX + 1), -ENOENT);
    /* An ack behind the head frees no slot. */
    ck_assert_int_eq(relp_window_ack(&w, 2), 0);
    ck_assert(relp_window_full(&w));
    ck_assert_int_eq(relp_window_push(&w, 5, 5), -ENOBUFS);
    ck_assert_int_eq(relp_window_ack(&w, 1), 0);
    ck_assert_uint_eq(relp_window_count(&w), 2);
    ck_assert_uint_eq(relp_window_acked_upto(&w), 2);
    ck_assert_int_eq(relp_window_push(&w, 5, 5), 0);
    ck_assert_int_eq(relp_window_push(&w, 6, 6), 0);
    ck_assert_int_eq(relp_window_push(&w, 7, 7), -ENOBUFS);
    ck_assert_int_eq(relp_window_ack(&w, 1), -ENOENT);
    relp_window_free(&w);
}
END_TEST

START_TEST(window_push_refuses)
{
    struct relp_window w;

    ck_assert_int_eq(relp_window_init(&w, 0, 0), -EINVAL);
    ck_assert_int_eq(relp_window_init(&w, (1u << 20) + 1, 0), -EINVAL);
    ck_assert_int_eq(relp_window_init(&w, 4, 50), 0);
    ck_assert_int_eq(relp_window_push(&w, 0, 60), -EINVAL);
    ck_assert_int_eq(relp_window_push(&w, RELP_TXNR_MAX + 1, 60), -EINVAL);
    ck_assert_int_eq(relp_window_push(&w, 1, 49), -EINVAL); /* before cursor */
    ck_assert_int_eq(relp_window_push(&w, 10, 60), 0);
    ck_assert_int_eq(relp_window_push(&w, 12, 70), -EINVAL); /* gap */
    ck_assert_int_eq(relp_window_push(&w, 10, 70), -EINVAL); /* repeat */
    ck_assert_int_eq(relp_window_push(&w, 11, 59), -EINVAL); /* backwards */
    ck_assert_int_eq(relp_window_push(&w, 11, 60), 0); /* empty record ok */
    relp_window_free(&w);
    relp_window_free(NULL);
}
END_TEST

START_TEST(window_txnr_wrap)
{
    struct relp_window w;
    uint32_t t = 999999997;

    ck_assert_int_eq(relp_window_init(&w, 8, 0), 0);
    for (uint64_t i = 1; i <= 6; i++) {
        ck_assert_int_eq(relp_window_push(&w, t, i * 100), 0);
        t = relp_txnr_next(t);
    }
    /* 999999997, 998, 999, 1, 2, 3 */
    ck_assert_int_eq(relp_window_ack(&w, 4), -ENOENT);
    ck_assert_int_eq(relp_window_ack(&w, 999999996), -ENOENT);
    ck_assert_int_eq(relp_window_ack(&w, 1), 0);
    ck_assert_int_eq(relp_window_ack(&w, 999999999), 0);
    ck_assert_uint_eq(relp_window_acked_upto(&w), 0);
    ck_assert_int_eq(relp_window_ack(&w, 999999997), 0);
    ck_assert_uint_eq(relp_window_acked_upto(&w), 100);
    ck_assert_int_eq(relp_window_ack(&w, 999999998), 0);
    ck_assert_uint_eq(relp_window_acked_upto(&w), 400);
    ck_assert_int_eq(relp_window_ack(&w, 3), 0);
    ck_assert_uint_eq(relp_window_acked_upto(&w), 400);
    ck_assert_int_eq(relp_window_ack(&w, 2), 0);
    ck_assert_uint_eq(relp_window_acked_upto(&w), 600);
    ck_assert_int_eq(relp_window_push(&w, 4, 700), 0);
    relp_window_free(&w);
}
END_TEST

/* Reconnect: everything unacknowledged is forgotten, the cursor stays at
 * the acknowledged prefix, and the new session numbers from anywhere. */
START_TEST(window_reset_on_reconnect)
{
    struct relp_window w;

    ck_assert_int_eq(relp_window_init(&w, 4, 0), 0);
    for (uint32_t t = 2; t <= 5; t++)
        ck_assert_int_eq(relp_window_push(&w, t, t * 10), 0);
    ck_assert_int_eq(relp_window_ack(&w, 2), 0);
    ck_assert_int_eq(relp_window_ack(&w, 4), 0);
    ck_assert_uint_eq(relp_window_acked_upto(&w), 20);
    relp_window_reset(&w, relp_window_acked_upto(&w));
    ck_assert_uint_eq(relp_window_count(&w), 0);
    ck_assert_uint_eq(relp_window_acked_upto(&w), 20);
    ck_assert_int_eq(relp_window_ack(&w, 3), -ENOENT);
    ck_assert_int_eq(relp_window_push(&w, 2, 30), 0);
    ck_assert_int_eq(relp_window_ack(&w, 2), 0);
    ck_assert_uint_eq(relp_window_acked_upto(&w), 30);
    relp_window_free(&w);
}
END_TEST

/* Against a plain model, many random pushes and acks through a small ring,
 * across the TXNR wrap. */
START_TEST(window_random_model)
{
    enum { CAP = 7, N = 20000 };
    struct relp_window w;
    uint32_t first = 999995000, next = first;
    uint64_t end = 0, model_upto = 0;
    /* model: ends and acked flags of outstanding frames, oldest first */
    uint64_t mend[CAP];
    int macked[CAP];
    uint32_t mtx[CAP];
    size_t mn = 0;
    unsigned seed = 12345;

    ck_assert_int_eq(relp_window_init(&w, CAP, 0), 0);
    for (int step = 0; step < N; step++) {
        seed = seed * 1103515245u + 12345u;
        if ((seed >> 16) % 2 == 0) {
            int rc;

            end += (seed >> 8) % 3;
            rc = relp_window_push(&w, next, end);
            if (mn == CAP) {
                ck_assert_int_eq(rc, -ENOBUFS);
            } else {
                ck_assert_int_eq(rc, 0);
                mend[mn] = end;
                macked[mn] = 0;
                mtx[mn] = next;
                mn++;
                next = relp_txnr_next(next);
            }
        } else if (mn > 0) {
            size_t k = (seed >> 4) % mn;
            int rc = relp_window_ack(&w, mtx[k]);

            ck_assert_int_eq(rc, macked[k] ? -ENOENT : 0);
            macked[k] = 1;
            while (mn > 0 && macked[0]) {
                model_upto = mend[0];
                memmove(mend, mend + 1, (mn - 1) * sizeof(mend[0]));
                memmove(macked, macked + 1, (mn - 1) * sizeof(macked[0]));
                memmove(mtx, mtx + 1, (mn - 1) * sizeof(mtx[0]));
                mn--;
            }
        }
        ck_assert_uint_eq(relp_window_acked_upto(&w), model_upto);
        ck_assert_uint_eq(relp_window_count(&w), mn);
    }
    ck_assert_uint_lt(next, first); /* the run crossed the wrap */
    relp_window_free(&w);
}
END_TEST

static Suite *relp_suite(void)
{
    Suite *s = suite_create("relp");
    TCase *parse = tcase_create("parse");
    TCase *enc = tcase_create("encode");
    TCase *data = tcase_create("rsp_offers");
    TCase *win = tcase_create("window");

    tcase_add_loop_test(parse, good_whole, 0,
                        sizeof(good_cases) / sizeof(good_cases[0]));
    tcase_add_loop_test(parse, good_split_everywhere, 0,
                        sizeof(good_cases) / sizeof(good_cases[0]));
    tcase_add_loop_test(parse, good_byte_by_byte, 0,
                        sizeof(good_cases) / sizeof(good_cases[0]));
    tcase_add_test(parse, used_stops_after_each_frame);
    tcase_add_loop_test(parse, bad_frames, 0,
                        sizeof(bad_cases) / sizeof(bad_cases[0]));
    tcase_add_test(parse, error_sticky_then_reset);
    tcase_add_test(parse, huge_datalen_bounded);
    tcase_add_test(parse, parser_bad_arguments);
    suite_add_tcase(s, parse);

    tcase_add_loop_test(enc, encode_table, 0,
                        sizeof(enc_cases) / sizeof(enc_cases[0]));
    tcase_add_test(enc, encode_refuses);
    tcase_add_test(enc, encode_rsp_roundtrip);
    suite_add_tcase(s, enc);

    tcase_add_loop_test(data, rsp_table, 0,
                        sizeof(rsp_cases) / sizeof(rsp_cases[0]));
    tcase_add_loop_test(data, open_table, 0,
                        sizeof(open_cases) / sizeof(open_cases[0]));
    tcase_add_test(data, offer_iteration);
    tcase_add_test(data, open_offer_text);
    tcase_add_test(data, imrelp_answers);
    tcase_add_test(data, omrelp_commands);
    tcase_add_test(data, our_offer_matches_omrelp);
    suite_add_tcase(s, data);

    tcase_add_test(win, txnr_wraps);
    tcase_add_test(win, window_in_order);
    tcase_add_loop_test(win, window_out_of_order, 0,
                        sizeof(ooo_cases) / sizeof(ooo_cases[0]));
    tcase_add_test(win, window_unknown_and_full);
    tcase_add_test(win, window_push_refuses);
    tcase_add_test(win, window_txnr_wrap);
    tcase_add_test(win, window_reset_on_reconnect);
    tcase_add_test(win, window_random_model);
    suite_add_tcase(s, win);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(relp_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
