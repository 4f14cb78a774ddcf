/* Check suite for lib/cidr.c: allow-list ranges. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "cidr.h"

static bool in(const char *range, const char *addr)
{
    struct cidr c;
    ck_assert_int_eq(cidr_parse(range, &c), 0);
    uint8_t b[16];
    if (inet_pton(AF_INET, addr, b) == 1)
        return cidr_match(&c, 4, b);
    ck_assert_int_eq(inet_pton(AF_INET6, addr, b), 1);
    return cidr_match(&c, 6, b);
}

START_TEST(matches)
{
    ck_assert(in("10.0.0.0/8", "10.255.1.2"));
    ck_assert(!in("10.0.0.0/8", "11.0.0.1"));
    ck_assert(in("192.168.1.0/25", "192.168.1.127"));
    ck_assert(!in("192.168.1.0/25", "192.168.1.128"));
    ck_assert(in("127.0.0.1", "127.0.0.1"));
    ck_assert(!in("127.0.0.1", "127.0.0.2"));
    ck_assert(in("0.0.0.0/0", "8.8.8.8"));
    ck_assert(!in("0.0.0.0/0", "::1"));
    ck_assert(in("::1", "::1"));
    ck_assert(!in("::1", "::2"));
    ck_assert(in("fd00::/8", "fd12:3456::1"));
    ck_assert(!in("fd00::/8", "fe80::1"));
    /* A v4 client of a [::] listener arrives v4-mapped. */
    ck_assert(in("10.0.0.0/8", "::ffff:10.1.2.3"));
    ck_assert(!in("10.0.0.0/8", "::ffff:11.1.2.3"));
    ck_assert(in("10.1.2.3", "10.1.2.3"));
}
END_TEST

START_TEST(bad)
{
    struct cidr c;
    const char *texts[] = {"", "10.0.0.0/33", "::/129", "10.0.0/8", "host", "10.0.0.0/", "10.0.0.0/x",
                         "10.0.0.0/8x", "1.2.3.4/-1", NULL};
    for (int i = 0; texts[i]; i++)
        ck_assert_msg(cidr_parse(texts[i], &c) == -EINVAL, "%s", texts[i]);
    ck_assert_int_eq(cidr_parse(NULL, &c), -EINVAL);
}
END_TEST

START_TEST(any)
{
    struct cidr c[2];
    ck_assert_int_eq(cidr_parse("10.0.0.0/8", &c[0]), 0);
    ck_assert_int_eq(cidr_parse("::1", &c[1]), 0);
    uint8_t a[16];
    inet_pton(AF_INET6, "::1", a);
    ck_assert(cidr_match_any(c, 2, 6, a));
    inet_pton(AF_INET, "127.0.0.1", a);
    ck_assert(!cidr_match_any(c, 2, 4, a));
    ck_assert(!cidr_match_any(c, 0, 4, a));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cidr");
    TCase *tc = tcase_create("cidr");
    tcase_add_test(tc, matches);
    tcase_add_test(tc, bad);
    tcase_add_test(tc, any);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
