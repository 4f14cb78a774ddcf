/* Check suite for lib/timespec.c: command-line times, table-driven, in a
 * fixed zone (TZ is set per test, so that local times are known). */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "timespec.h"

#define US 1000000LL

/* 2026-12-03T07:30:15.250000Z */
static const int64_t NOW = 1796283015LL * US + 250000;

struct tcase_row {
    const char *tz;
    const char *in;
    int rc;
    int64_t want; /* microseconds */
};

static const struct tcase_row rows[] = {
    {"UTC", "now", 0, 1796283015LL * US + 250000},
    {"UTC", "today", 0, 1796256000LL * US},
    {"UTC", "yesterday", 0, (1796256000LL - 86400) * US},
    {"UTC", "tomorrow", 0, (1796256000LL + 86400) * US},
    {"UTC", "-15m", 0, 1796283015LL * US + 250000 - 900 * US},
    {"UTC", "-15min", 0, 1796283015LL * US + 250000 - 900 * US},
    {"UTC", "+2h", 0, 1796283015LL * US + 250000 + 7200 * US},
    {"UTC", "-30s", 0, 1796283015LL * US + 250000 - 30 * US},
    {"UTC", "-1d", 0, 1796283015LL * US + 250000 - 86400 * US},
    {"UTC", "-1w", 0, 1796283015LL * US + 250000 - 7 * 86400 * US},
    {"UTC", "@1796283015", 0, 1796283015LL * US},
    {"UTC", "@1796283015.5", 0, 1796283015LL * US + 500000},
    {"UTC", "2026-12-01", 0, 1796083200LL * US},
    {"UTC", "2026-12-01 14:02", 0, (1796083200LL + 14 * 3600 + 120) * US},
    {"UTC", "2026-12-01 14:02:05", 0, (1796083200LL + 14 * 3600 + 125) * US},
    {"UTC", "2026-12-01T14:02:05.123", 0, (1796083200LL + 14 * 3600 + 125) * US + 123000},
    {"UTC", "2026-12-01T14:02:05.1234567Z", 0, (1796083200LL + 14 * 3600 + 125) * US + 123456},
    {"UTC", "2026-12-01T14:02:05+01:00", 0, (1796083200LL + 13 * 3600 + 125) * US},
    {"UTC", "2026-12-01T14:02:05-0230", 0, (1796083200LL + 16 * 3600 + 32 * 60 + 5) * US},
    {"UTC", "14:02", 0, (1796256000LL + 14 * 3600 + 120) * US},
    {"UTC", "07:00:01", 0, (1796256000LL + 7 * 3600 + 1) * US},
    /* Local time: Berlin is UTC+1 in December, UTC+2 in July. */
    {"Europe/Berlin", "2026-12-01 14:02", 0, (1796083200LL + 13 * 3600 + 120) * US},
    {"Europe/Berlin", "2026-07-01 00:00", 0, (1782864000LL - 2 * 3600) * US},
    {"Europe/Berlin", "2026-12-01T14:02:05Z", 0, (1796083200LL + 14 * 3600 + 125) * US},
    {"Europe/Berlin", "today", 0, (1796256000LL - 3600) * US},
    /* Wrong. */
    {"UTC", "", -EINVAL, 0},
    {"UTC", "soon", -EINVAL, 0},
    {"UTC", "-15", 0, 1796283015LL * US + 250000 - 15 * US}, /* seconds, as units.h */
    {"UTC", "-500ms", 0, 1796283015LL * US + 250000 - 500000},
    {"UTC", "-", -EINVAL, 0},
    {"UTC", "-1.5h", -EINVAL, 0},
    {"UTC", "-15y", -EINVAL, 0},
    {"UTC", "15m", -EINVAL, 0},
    {"UTC", "2026-13-01", -EINVAL, 0},
    {"UTC", "2026-02-29", -EINVAL, 0},
    {"UTC", "2028-02-29", 0, 1835395200LL * US},
    {"UTC", "2026-12-01 25:00", -EINVAL, 0},
    {"UTC", "2026-12-01 14:60", -EINVAL, 0},
    {"UTC", "2026-12-01 14:02 junk", -EINVAL, 0},
    {"UTC", "2026-12-01T14:02:05+25:00", -EINVAL, 0},
    {"UTC", "2026-1-01", -EINVAL, 0},
    {"UTC", "@", -EINVAL, 0},
    {"UTC", "@12x", -EINVAL, 0},
    {"UTC", "2026-12-01T14:02:05.Z", -EINVAL, 0},
};

START_TEST(table)
{
    const struct tcase_row *r = &rows[_i];
    setenv("TZ", r->tz, 1);
    tzset();
    int64_t got = -1;
    int rc = timespec_parse(r->in, NOW, &got);
    ck_assert_msg(rc == r->rc, "\"%s\" (TZ=%s): rc %d, want %d", r->in, r->tz, rc, r->rc);
    if (r->rc == 0)
        ck_assert_msg(got == r->want, "\"%s\" (TZ=%s): %lld, want %lld", r->in, r->tz,
                      (long long)got, (long long)r->want);
}
END_TEST

START_TEST(null_arguments)
{
    int64_t t;
    ck_assert_int_eq(timespec_parse(NULL, NOW, &t), -EINVAL);
    ck_assert_int_eq(timespec_parse("now", NOW, NULL), -EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("timespec");
    TCase *tc = tcase_create("timespec");
    tcase_add_loop_test(tc, table, 0, (int)(sizeof(rows) / sizeof(rows[0])));
    tcase_add_test(tc, null_arguments);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
