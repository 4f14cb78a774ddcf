/* Check suite for lib/kmsg.c: /dev/kmsg records into lograil records. */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "format.h"
#include "kmsg.h"
#include "record.h"

#define BOOT_US (INT64_C(1795693147) * 1000000) /* 2026-11-26T11:39:07Z */

struct kcase {
    const char *name;
    const char *in;  /* one read of /dev/kmsg */
    bool valid;
    uint64_t seq, ts;
    bool cont;
    int facility, severity;
    const char *app; /* NULL: absent */
    const char *sd;  /* NULL: absent */
    const char *msg;
    bool parse_error;
};

/* Records as the kernel writes them (the first three read from this
 * machine's /dev/kmsg, the dictionary one from the kernel's
 * Documentation/ABI/testing/dev-kmsg), then the odd and the malformed. */
static const struct kcase cases[] = {
    {"kernel info", "6,343,1375086,-;EXT4-fs (vda): mounted filesystem r/w\n", true, 343,
     1375086, false, 0, 6, "kernel", NULL, "EXT4-fs (vda): mounted filesystem r/w", false},
    {"user space <4> is user.warning", "12,344,287534983,-;lograil-probe-x1\n", true, 344,
     287534983, false, 1, 4, "kernel", NULL, "lograil-probe-x1", false},
    {"emerg", "0,1,0,-;panic soon\n", true, 1, 0, false, 0, 0, "kernel", NULL, "panic soon",
     false},
    {"dictionary",
     "7,160,424069,-;pci_root PNP0A03:00: host bridge window [io  0x0000-0x0cf7] (ignored)\n"
     " SUBSYSTEM=acpi\n"
     " DEVICE=+acpi:PNP0A03:00\n",
     true, 160, 424069, false, 0, 7, "kernel",
     "[kmsg@32473 SUBSYSTEM=\"acpi\" DEVICE=\"+acpi:PNP0A03:00\"]",
     "pci_root PNP0A03:00: host bridge window [io  0x0000-0x0cf7] (ignored)", false},
    {"escapes decoded", "6,2,5,-;tab\\x09here back\\x5cslash nl\\x0aend\n", true, 2, 5, false, 0,
     6, "kernel", NULL, "tab\there back\\slash nl\nend", false},
    {"bad escape kept", "6,3,5,-;\\xzz \\x4\n", true, 3, 5, false, 0, 6, "kernel", NULL,
     "\\xzz \\x4", false},
    {"sd value escaped", "6,4,5,-;m\n K=a\"b]c\\x5cd\n", true, 4, 5, false, 0, 6, "kernel",
     "[kmsg@32473 K=\"a\\\"b\\]c\\\\d\"]", "m", false},
    {"sd key sanitised", "6,5,5,-;m\n A]\"B=v\n =novalue\n nokey\nnotdict=1\n", true, 5, 5,
     false, 0, 6, "kernel", "[kmsg@32473 A__B=\"v\"]", "m", false},
    {"more prefix fields", "6,339,5140900,-,caller=T1;hello\n", true, 339, 5140900, false, 0, 6,
     "kernel", NULL, "hello", false},
    {"continuation flag", "4,10,20,c;frag\n", true, 10, 20, true, 0, 4, "kernel", NULL, "frag",
     false},
    {"no final newline", "6,11,20,-;bare", true, 11, 20, false, 0, 6, "kernel", NULL, "bare",
     false},
    {"empty message", "6,12,20,-;\n", true, 12, 20, false, 0, 6, "kernel", NULL, "", false},
    {"facility local7", "191,13,20,-;l7\n", true, 13, 20, false, 23, 7, "kernel", NULL, "l7",
     false},
    {"facility beyond 23", "255,14,20,-;wide\n", true, 14, 20, false, 1, 7, "kernel", NULL,
     "wide", true},
    {"big sequence", "6,18446744073709551615,1,-;max\n", true, UINT64_MAX, 1, false, 0, 6,
     "kernel", NULL, "max", false},
    {"pri too big", "256,1,1,-;x\n", false, 0, 0, false, 0, 5, NULL, NULL, "256,1,1,-;x", true},
    {"sequence overflows", "6,18446744073709551616,1,-;x\n", false, 0, 0, false, 0, 5, NULL,
     NULL, "6,18446744073709551616,1,-;x", true},
    {"no semicolon", "6,1,1,-\n", false, 0, 0, false, 0, 5, NULL, NULL, "6,1,1,-", true},
    {"bad flag", "6,1,1,x;m\n", false, 0, 0, false, 0, 5, NULL, NULL, "6,1,1,x;m", true},
    {"missing field", "6,1;m\n", false, 0, 0, false, 0, 5, NULL, NULL, "6,1;m", true},
    {"not a number", "a,1,1,-;m\n", false, 0, 0, false, 0, 5, NULL, NULL, "a,1,1,-;m", true},
    {"empty", "", false, 0, 0, false, 0, 5, NULL, NULL, "", true},
};

static void span_is(const struct record *r, struct span s, const char *want, const char *what,
                    const char *name)
{
    if (want == NULL) {
        ck_assert_msg(s.len == 0, "%s: %s: want absent, got '%.*s'", name, what, (int)s.len,
                      r->data + s.off);
        return;
    }
    size_t n = strlen(want);
    ck_assert_msg(s.len == n && memcmp(r->data + s.off, want, n) == 0,
                  "%s: %s: got '%.*s', want '%s'", name, what, (int)s.len, r->data + s.off, want);
}

START_TEST(table)
{
    const struct kcase *c = &cases[_i];
    struct kmsg_info info;
    struct record *r = NULL;
    ck_assert_int_eq(kmsg_parse(c->in, strlen(c->in), BOOT_US, &info, &r), 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_msg(info.valid == c->valid, "%s: valid", c->name);
    ck_assert_msg(info.seq == c->seq, "%s: seq %llu", c->name, (unsigned long long)info.seq);
    ck_assert_msg(info.ts_usec == c->ts, "%s: ts", c->name);
    ck_assert_msg(info.cont == c->cont, "%s: cont", c->name);
    ck_assert_msg(r->facility == c->facility, "%s: facility %d", c->name, r->facility);
    ck_assert_msg(r->severity == c->severity, "%s: severity %d", c->name, r->severity);
    ck_assert_msg(!!(r->flags & RECORD_F_PARSE_ERROR) == c->parse_error, "%s: parse_error",
                  c->name);
    span_is(r, r->app, c->app, "app", c->name);
    span_is(r, r->sd, c->sd, "sd", c->name);
    span_is(r, r->msg, c->msg, "msg", c->name);
    ck_assert_int_eq(r->syntax, RECORD_RAW);
    if (c->valid) {
        ck_assert(r->flags & RECORD_F_HAS_TIME);
        ck_assert_int_eq(r->ts_us, BOOT_US + (int64_t)c->ts);
    } else {
        ck_assert(!(r->flags & RECORD_F_HAS_TIME));
    }
    record_free(r);
}
END_TEST

START_TEST(bad_arguments)
{
    struct kmsg_info info;
    struct record *r = NULL;
    ck_assert_int_eq(kmsg_parse(NULL, 0, 0, &info, &r), -EINVAL);
    ck_assert_int_eq(kmsg_parse("6,1,1,-;m", 9, 0, NULL, &r), -EINVAL);
    ck_assert_int_eq(kmsg_parse("6,1,1,-;m", 9, 0, &info, NULL), -EINVAL);
    ck_assert_int_eq(kmsg_parse("6,1,1,-;m", (1u << 20) + 1, 0, &info, &r), -EINVAL);
}
END_TEST

/* The record goes through the formats as the writer would: the dictionary
 * is SD in rfc5424 and json, and traditional reads "kernel: message". */
static const char *fmt(const struct record *r, enum format_kind k, struct buf *b)
{
    struct format_ctx ctx;
    ck_assert_int_eq(format_ctx_init(&ctx, k, FORMAT_TS_MESSAGE, "h"), 0);
    b->len = 0;
    ck_assert_int_eq(format_record(&ctx, r, b), 0);
    ck_assert_int_eq(buf_reserve(b, 1), 0);
    b->p[b->len] = '\0';
    return b->p;
}

START_TEST(through_the_formats)
{
    setenv("TZ", "UTC", 1);
    const char *in = "3,77,1000000,-;disk \\x22sda\\x22 failed\n SUBSYSTEM=block\n DEVICE=b8:0\n";
    struct kmsg_info info;
    struct record *r = NULL;
    ck_assert_int_eq(kmsg_parse(in, strlen(in), BOOT_US, &info, &r), 0);
    r->recv_us = BOOT_US + 5000000;
    struct buf b;
    buf_init(&b);
    ck_assert_str_eq(fmt(r, FORMAT_TRADITIONAL, &b), "Nov 26 11:39:08 h kernel: disk \"sda\" failed\n");
    ck_assert_str_eq(fmt(r, FORMAT_RFC5424, &b),
                     "<3>1 2026-11-26T11:39:08.000000+00:00 h kernel - - "
                     "[kmsg@32473 SUBSYSTEM=\"block\" DEVICE=\"b8:0\"] disk \"sda\" failed\n");
    const char *j = fmt(r, FORMAT_JSON, &b);
    ck_assert_msg(strstr(j, "\"sd\":\"[kmsg@32473 SUBSYSTEM=\\\"block\\\" DEVICE=\\\"b8:0\\\"]\"") !=
                      NULL,
                  "%s", j);
    ck_assert_msg(strstr(j, "\"facility\":\"kern\",\"severity\":\"err\"") != NULL, "%s", j);
    buf_free(&b);
    record_free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kmsg");
    TCase *tc = tcase_create("kmsg");
    tcase_add_loop_test(tc, table, 0, (int)(sizeof(cases) / sizeof(cases[0])));
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, through_the_formats);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
