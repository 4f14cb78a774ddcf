/* Check suite for lib/logline.c: lines of every format back into their
 * fields, table-driven, and a round trip through the daemon's own
 * formatter (lib/format.c) for each format. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "format.h"
#include "logline.h"
#include "record.h"
#include "syslog_parse.h"

#define US 1000000LL

/* 2026-11-26T11:03:56Z */
static const int64_t T = 1795691036LL;

static void utc(void)
{
    setenv("TZ", "UTC", 1);
    tzset();
}

static int text_eq(struct logline_text t, const char *s)
{
    if (s == NULL)
        return t.n == 0;
    return t.n == strlen(s) && memcmp(t.p, s, t.n) == 0;
}

struct row {
    int format;
    const char *line;
    int rc;
    int64_t time_s; /* -1: no time */
    int fac, sev;
    const char *host, *app, *procid, *msg;
};

static const struct row rows[] = {
    {LOGLINE_TRADITIONAL, "Nov 26 11:03:56 myhost sshd[42]: Accepted key", 0, T, -1, -1,
     "myhost", "sshd", "42", "Accepted key"},
    {LOGLINE_TRADITIONAL, "Nov  6 11:03:56 h app: x", 0, T - 20 * 86400, -1, -1, "h", "app",
     NULL, "x"},
    {LOGLINE_TRADITIONAL, "Nov 26 11:03:56 h -[7]: m", 0, T, -1, -1, "h", NULL, "7", "m"},
    {LOGLINE_TRADITIONAL, "Nov 26 11:03:56 h plain words here", 0, T, -1, -1, "h", NULL, NULL,
     "plain words here"},
    {LOGLINE_TRADITIONAL, "Nov 26 11:03:56 h app:", 0, T, -1, -1, "h", "app", NULL, NULL},
    {LOGLINE_TRADITIONAL, "Nov 26 11:03:56 h", 0, T, -1, -1, "h", NULL, NULL, NULL},
    {LOGLINE_TRADITIONAL, "Nov 26 11:03:56 - a[1]: m#012n", 0, T, -1, -1, NULL, "a", "1",
     "m#012n"},
    {LOGLINE_TRADITIONAL, "Foo 26 11:03:56 h a: m", -EINVAL, 0, 0, 0, NULL, NULL, NULL, NULL},
    {LOGLINE_TRADITIONAL, "Nov 26 11:03", -EINVAL, 0, 0, 0, NULL, NULL, NULL, NULL},
    {LOGLINE_RFC5424,
     "<165>1 2026-11-26T11:03:56.000000+00:00 h app 9 ID47 [x@1 a=\"b\"] hello", 0, T, 20, 5,
     "h", "app", "9", "hello"},
    {LOGLINE_RFC5424, "<13>1 2026-11-26T12:03:56+01:00 - - - - -", 0, T, 1, 5, NULL, NULL, NULL,
     NULL},
    {LOGLINE_RFC5424, "<13>Nov 26 11:03:56 not 5424", -EINVAL, 0, 0, 0, NULL, NULL, NULL, NULL},
    {LOGLINE_JSON,
     "{\"time\":\"2026-11-26T11:03:56.000000+00:00\",\"recv_time\":\"2026-11-26T11:03:57.000000Z\","
     "\"facility\":\"local0\",\"severity\":\"err\",\"host\":\"h\",\"app\":\"a\",\"procid\":\"3\","
     "\"msg\":\"q\\\"uote\\\\ \\n \\u00e9 \\ud83d\\ude00\",\"pid\":1,\"uid\":2,\"gid\":3,"
     "\"syntax\":\"rfc3164\"}",
     0, T, 16, 3, "h", "a", "3", "q\"uote\\ \n \xc3\xa9 \xf0\x9f\x98\x80"},
    {LOGLINE_JSON, "{\"msg\":\"no times\"}", -EINVAL, 0, 0, 0, NULL, NULL, NULL, NULL},
    {LOGLINE_JSON, "{\"time\":\"2026-11-26T11:03:56Z\",\"msg\":\"unterminated", -EINVAL, 0, 0, 0,
     NULL, NULL, NULL, NULL},
    {LOGLINE_JSON, "{\"time\":\"2026-11-26T11:03:56Z\",\"msg\":\"bad \\x escape\"}", -EINVAL, 0,
     0, 0, NULL, NULL, NULL, NULL},
    {LOGLINE_RAW, "<30>Nov 26 11:03:56 cron[5]: job", 0, T, 3, 6, NULL, "cron", "5", "job"},
    {LOGLINE_RAW, "just text", 0, -1, -1, -1, NULL, NULL, NULL, "just text"},
};

START_TEST(table)
{
    utc();
    const struct row *r = &rows[_i];
    struct logline_parser p;
    logline_parser_init(&p, (T + 3600) * US);
    struct logline l;
    int rc = logline_parse(&p, r->format, r->line, strlen(r->line), &l);
    ck_assert_msg(rc == r->rc, "%s: rc %d, want %d", r->line, rc, r->rc);
    if (rc == 0) {
        if (r->time_s < 0) {
            ck_assert(!l.has_time);
        } else {
            ck_assert_msg(l.has_time && l.time_us == r->time_s * US, "%s: time %lld", r->line,
                          (long long)l.time_us);
        }
        ck_assert_int_eq(l.facility, r->fac);
        ck_assert_int_eq(l.severity, r->sev);
        ck_assert_msg(text_eq(l.host, r->host), "%s: host %.*s", r->line, (int)l.host.n,
                      l.host.p);
        ck_assert_msg(text_eq(l.app, r->app), "%s: app", r->line);
        ck_assert_msg(text_eq(l.procid, r->procid), "%s: procid", r->line);
        ck_assert_msg(text_eq(l.msg, r->msg), "%s: msg \"%.*s\"", r->line, (int)l.msg.n,
                      l.msg.p);
    }
    logline_parser_free(&p);
}
END_TEST

START_TEST(detect)
{
    ck_assert_int_eq(logline_detect("{\"time\"", 7), LOGLINE_JSON);
    ck_assert_int_eq(logline_detect("<13>1 2026", 10), LOGLINE_RFC5424);
    ck_assert_int_eq(logline_detect("<13>Nov 26", 10), LOGLINE_RAW);
    ck_assert_int_eq(logline_detect("Nov 26 11:03:56 h x", 19), LOGLINE_TRADITIONAL);
    ck_assert_int_eq(logline_detect("Nov 26 11:03:56", 15), LOGLINE_RAW);
    ck_assert_int_eq(logline_detect("", 0), LOGLINE_RAW);
}
END_TEST

START_TEST(rfc3339)
{
    int64_t us;
    int tz;
    ck_assert_uint_eq(logline_parse_rfc3339("2026-11-26T11:03:56Z", 20, &us, &tz), 20);
    ck_assert_int_eq(us, T * US);
    ck_assert_uint_eq(logline_parse_rfc3339("2026-11-26T11:03:56.5-01:30x", 28, &us, &tz), 27);
    ck_assert_int_eq(us, (T + 5400) * US + 500000);
    ck_assert_int_eq(tz, -90);
    ck_assert_uint_eq(logline_parse_rfc3339("1969-12-31T23:59:59Z", 20, &us, &tz), 20);
    ck_assert_int_eq(us, -US);
    ck_assert_uint_eq(logline_parse_rfc3339("2026-13-26T11:03:56Z", 20, &us, &tz), 0);
    ck_assert_uint_eq(logline_parse_rfc3339("2026-11-26T11:03:56", 19, &us, &tz), 0);
    ck_assert_uint_eq(logline_parse_rfc3339("2026-11-26T11:03:5", 18, &us, &tz), 0);
}
END_TEST

/* Traditional lines carry no year: December read in January is last year. */
START_TEST(year_from_reference)
{
    utc();
    struct logline_parser p;
    logline_parser_init(&p, 1798761600LL * US); /* 2027-01-01T00:00:00Z */
    int64_t us;
    ck_assert_int_eq(logline_order_time(&p, LOGLINE_TRADITIONAL, "Dec 31 23:59:59 h m", 19, &us),
                     0);
    ck_assert_int_eq(us, (1798761600LL - 1) * US);
    ck_assert_int_eq(logline_order_time(&p, LOGLINE_TRADITIONAL, "Jan  1 00:00:01 h m", 19, &us),
                     0);
    ck_assert_int_eq(us, (1798761600LL + 1) * US);
    logline_parser_free(&p);
}
END_TEST

/* Order time: json's recv_time, else the line's own. */
START_TEST(order_time)
{
    utc();
    struct logline_parser p;
    logline_parser_init(&p, T * US);
    int64_t us;
    const char *j = "{\"time\":\"2020-01-01T00:00:00.000000+00:00\",\"recv_time\":"
                    "\"2026-11-26T11:03:56.000001Z\",\"msg\":\"x\"}";
    ck_assert_int_eq(logline_order_time(&p, LOGLINE_JSON, j, strlen(j), &us), 0);
    ck_assert_int_eq(us, T * US + 1);
    const char *r = "<13>1 2026-11-26T11:03:56.000002Z h a - - - m";
    ck_assert_int_eq(logline_order_time(&p, LOGLINE_RFC5424, r, strlen(r), &us), 0);
    ck_assert_int_eq(us, T * US + 2);
    ck_assert_int_eq(logline_order_time(&p, LOGLINE_RAW, "no time", 7, &us), -EINVAL);
    logline_parser_free(&p);
}
END_TEST

/* What the daemon writes, read back, gives the record's fields. */
static const char *const msgs[] = {
    "<13>Nov 26 11:03:56 sshd[42]: Accepted publickey for root",
    "<165>1 2026-11-26T11:03:56.123456+00:00 host.example app 99 ID1 [ex@1 k=\"v\"] body",
    "<11>Nov 26 11:03:56 web: tab\there and \"quotes\" \\ and \xc3\xa9",
    "<191>1 2026-11-26T11:03:56Z - - - - - ",
    "<14>1 2026-11-26T11:03:56Z h a - - [lograil@32473 pid=\"6\"] forged element",
};

START_TEST(round_trip)
{
    utc();
    for (int kind = 0; kind <= FORMAT_RAW; kind++) {
        struct format_ctx ctx;
        ck_assert_int_eq(format_ctx_init(&ctx, (enum format_kind)kind, FORMAT_TS_MESSAGE,
                                         "localh"),
                         0);
        for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
            struct record *r = record_new(msgs[i], strlen(msgs[i]));
            r->recv_us = T * US + 777;
            r->flags |= RECORD_F_HAS_CREDS;
            r->pid = 1234;
            r->uid = 5;
            r->gid = 6;
            syslog_parse(r, NULL);
            struct buf b;
            buf_init(&b);
            ck_assert_int_eq(format_record(&ctx, r, &b), 0);
            struct logline_parser p;
            logline_parser_init(&p, (T + 60) * US);
            struct logline l;
            int fmt = logline_detect(b.p, b.len - 1);
            if (kind != FORMAT_RAW)
                ck_assert_msg(fmt == kind, "%s: detected %d, want %d", b.p, fmt, kind);
            ck_assert_int_eq(logline_parse(&p, kind, b.p, b.len - 1, &l), 0);
            /* The message survives (escaped the same way, for the formats
             * that escape). */
            struct buf m;
            buf_init(&m);
            struct format_ctx rctx;
            format_ctx_init(&rctx, (enum format_kind)kind, FORMAT_TS_MESSAGE, "localh");
            struct record *back = NULL;
            size_t cap = 0;
            ck_assert_int_eq(logline_to_record(&l, &back, &cap), 0);
            if (kind != FORMAT_RAW && kind != FORMAT_TRADITIONAL) {
                ck_assert_int_eq(l.facility, r->facility);
                ck_assert_int_eq(l.severity, r->severity);
            }
            if (kind == FORMAT_JSON || kind == FORMAT_RFC5424) {
                ck_assert(l.has_creds);
                ck_assert_int_eq(l.pid, 1234);
                ck_assert_int_eq(l.uid, 5);
                ck_assert_int_eq(l.gid, 6);
            }
            if (kind != FORMAT_RAW) {
                /* Formatting the read-back record again gives the same
                 * line: nothing the format shows was lost. */
                ck_assert_int_eq(format_record(&rctx, back, &m), 0);
                ck_assert_msg(m.len == b.len && memcmp(m.p, b.p, b.len) == 0,
                              "kind %d:\n  wrote %.*s  again %.*s", kind, (int)b.len, b.p,
                              (int)m.len, m.p);
            } else {
                ck_assert(text_eq(l.msg, NULL) || l.msg.n <= r->len);
            }
            free(back);
            buf_free(&m);
            buf_free(&b);
            logline_parser_free(&p);
            record_free(r);
        }
    }
}
END_TEST

START_TEST(bad_arguments)
{
    struct logline_parser p;
    logline_parser_init(&p, 0);
    struct logline l;
    ck_assert_int_eq(logline_parse(&p, 9, "x", 1, &l), -EINVAL);
    ck_assert_int_eq(logline_parse(&p, LOGLINE_RAW, NULL, 1, &l), -EINVAL);
    ck_assert_int_eq(logline_parse(&p, LOGLINE_RAW, "", 0, &l), 0);
    logline_parser_free(&p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("logline");
    TCase *tc = tcase_create("logline");
    tcase_add_loop_test(tc, table, 0, (int)(sizeof(rows) / sizeof(rows[0])));
    tcase_add_test(tc, detect);
    tcase_add_test(tc, rfc3339);
    tcase_add_test(tc, year_from_reference);
    tcase_add_test(tc, order_time);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
