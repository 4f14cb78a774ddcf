/* Check suite for lib/units.c: what is a size or a duration, and what is
 * not.  Each table row is one text and the outcome it must have. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "units.h"

struct row {
    const char *text;
    int rc;      /* 0, -EINVAL or -ERANGE */
    int64_t val; /* when rc is 0 */
};

#define KI INT64_C(1024)
#define MI (KI * KI)
#define GI (MI * KI)

static const struct row sizes[] = {
    /* accepted */
    {"0", 0, 0},
    {"1", 0, 1},
    {"4096", 0, 4096},
    {"0007", 0, 7},
    {"64K", 0, 64 * KI},
    {"64k", 0, 64 * KI},
    {"64KB", 0, 64 * KI},
    {"64kb", 0, 64 * KI},
    {"64Kb", 0, 64 * KI},
    {"8M", 0, 8 * MI},
    {"8m", 0, 8 * MI},
    {"8MB", 0, 8 * MI},
    {"1G", 0, GI},
    {"1gB", 0, GI},
    {"9223372036854775807", 0, INT64_MAX},
    {"8589934591G", 0, INT64_C(8589934591) * GI},
    /* refused: not a size */
    {"", -EINVAL, 0},
    {" 8M", -EINVAL, 0},
    {" +8M", -EINVAL, 0},
    {"+8M", -EINVAL, 0},
    {"-1", -EINVAL, 0},
    {"8M ", -EINVAL, 0},
    {"8 M", -EINVAL, 0},
    {"\t8", -EINVAL, 0},
    {"8\n", -EINVAL, 0},
    {"M", -EINVAL, 0},
    {"KB", -EINVAL, 0},
    {"100B", -EINVAL, 0},
    {"8KiB", -EINVAL, 0},
    {"8MBB", -EINVAL, 0},
    {"2T", -EINVAL, 0},
    {"1.5M", -EINVAL, 0},
    {"0x10", -EINVAL, 0},
    {"1e3", -EINVAL, 0},
    {"99999999999999999999x", -EINVAL, 0},
    /* refused: too large */
    {"9223372036854775808", -ERANGE, 0},
    {"99999999999999999999", -ERANGE, 0},
    {"8589934592G", -ERANGE, 0},
    {"9007199254740992K", -ERANGE, 0},
};

static const struct row durations[] = {
    /* accepted */
    {"0", 0, 0},
    {"30", 0, 30000},
    {"500ms", 0, 500},
    {"0ms", 0, 0},
    {"1s", 0, 1000},
    {"5m", 0, 300000},
    {"2h", 0, 7200000},
    {"7d", 0, 7 * 86400000LL},
    {"007s", 0, 7000},
    {"9223372036854775807ms", 0, INT64_MAX},
    /* refused: not a duration */
    {"", -EINVAL, 0},
    {" 1s", -EINVAL, 0},
    {"+1s", -EINVAL, 0},
    {"-1s", -EINVAL, 0},
    {"1s ", -EINVAL, 0},
    {"1 s", -EINVAL, 0},
    {"1S", -EINVAL, 0},
    {"1MS", -EINVAL, 0},
    {"1min", -EINVAL, 0},
    {"1sec", -EINVAL, 0},
    {"1.5s", -EINVAL, 0},
    {"1h30m", -EINVAL, 0},
    {"ms", -EINVAL, 0},
    {"1w", -EINVAL, 0},
    {"1us", -EINVAL, 0},
    /* refused: too long */
    {"9223372036854775808ms", -ERANGE, 0},
    {"9223372036854776s", -ERANGE, 0},
    {"9223372036854775807", -ERANGE, 0},
    {"106751991167301d", -ERANGE, 0},
};

static void check_row(int (*parse)(const char *, int64_t *), const struct row *r)
{
    const int64_t untouched = INT64_C(-12345);
    int64_t v = untouched;
    int rc = parse(r->text, &v);
    ck_assert_msg(rc == r->rc, "\"%s\": rc %d, want %d", r->text, rc, r->rc);
    if (r->rc == 0)
        ck_assert_msg(v == r->val, "\"%s\": %lld, want %lld", r->text, (long long)v,
                      (long long)r->val);
    else
        ck_assert_msg(v == untouched, "\"%s\": output written on error", r->text);
}

START_TEST(size_table)
{
    check_row(units_parse_size, &sizes[_i]);
}
END_TEST

START_TEST(duration_table)
{
    check_row(units_parse_duration, &durations[_i]);
}
END_TEST

START_TEST(null_arguments)
{
    int64_t v;
    ck_assert_int_eq(units_parse_size(NULL, &v), -EINVAL);
    ck_assert_int_eq(units_parse_size("1", NULL), -EINVAL);
    ck_assert_int_eq(units_parse_duration(NULL, &v), -EINVAL);
    ck_assert_int_eq(units_parse_duration("1", NULL), -EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("units");
    TCase *tc = tcase_create("units");
    tcase_add_loop_test(tc, size_table, 0, (int)(sizeof(sizes) / sizeof(sizes[0])));
    tcase_add_loop_test(tc, duration_table, 0, (int)(sizeof(durations) / sizeof(durations[0])));
    tcase_add_test(tc, null_arguments);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
