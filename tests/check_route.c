/* Check suite for lib/route.c: filters and path templates. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "route.h"

/* A record whose app span is `app` (appended after the message). */
static struct record *rec(const char *app, int fac, int sev, int listener)
{
    char data[256];
    snprintf(data, sizeof(data), "msg%s", app ? app : "");
    struct record *r = record_new(data, strlen(data));
    r->facility = (uint8_t)fac;
    r->severity = (uint8_t)sev;
    r->listener = (uint16_t)listener;
    r->msg = (struct span){0, 3};
    if (app != NULL)
        r->app = (struct span){3, (uint32_t)strlen(app)};
    return r;
}

START_TEST(empty_filter_takes_all)
{
    struct route_filter f = {.max_severity = 7};
    struct record *r = rec("sshd", 23, 7, 5);
    ck_assert(route_match(&f, r));
    record_free(r);
}
END_TEST

START_TEST(severity_facility_listener_app)
{
    struct route_filter f = {.max_severity = 4};
    struct record *r = rec("sshd", 4, 4, 1);
    ck_assert(route_match(&f, r));
    r->severity = 5;
    ck_assert(!route_match(&f, r));
    r->severity = 0;
    f.facilities = (1u << 4) | (1u << 10);
    ck_assert(route_match(&f, r));
    r->facility = 3;
    ck_assert(!route_match(&f, r));
    r->facility = 10;
    f.listeners = 1u << 0;
    ck_assert(!route_match(&f, r));
    f.listeners |= 1u << 1;
    ck_assert(route_match(&f, r));
    static const char *const apps[] = {"cron", "sshd"};
    f.apps = apps;
    f.n_apps = 2;
    ck_assert(route_match(&f, r));
    record_free(r);
    r = rec("sshd2", 10, 0, 1);
    ck_assert(!route_match(&f, r));
    record_free(r);
    r = rec("ssh", 10, 0, 1);
    ck_assert(!route_match(&f, r));
    record_free(r);
    r = rec(NULL, 10, 0, 1);
    ck_assert(!route_match(&f, r));
    record_free(r);
}
END_TEST

START_TEST(template_check)
{
    size_t bad = 0;
    ck_assert_int_eq(route_check_template("/var/log/%{app}/%{host}-%{uid}.log", &bad), 0);
    ck_assert_int_eq(route_check_template("/var/log/plain.log", &bad), 0);
    ck_assert_int_eq(route_check_template("/var/log/%{program}.log", &bad), -EINVAL);
    ck_assert_uint_eq(bad, 9);
    ck_assert_int_eq(route_check_template("/var/log/%{app", &bad), -EINVAL);
    ck_assert(route_is_template("/a/%{app}"));
    ck_assert(!route_is_template("/a/%app"));
    ck_assert(route_uses_uid("/var/log/%{app}/%{host}-%{uid}.log"));
    ck_assert(route_uses_uid("%{uid}"));
    ck_assert(!route_uses_uid("/var/log/%{app}.log"));
    ck_assert(!route_uses_uid("/var/log/uid.log"));
    ck_assert(!route_uses_uid("/var/log/%{uidx}/%uid"));
    ck_assert(route_uses_uid("/var/log/%{bad/%{uid}"));
}
END_TEST

static const char *expand(struct record *r, const char *tmpl)
{
    static char out[512];
    int n = route_expand(tmpl, r, "myhost", out, sizeof(out));
    ck_assert_int_ge(n, 0);
    ck_assert_uint_eq((size_t)n, strlen(out));
    return out;
}

START_TEST(expansion)
{
    struct record *r = rec("sshd", 10, 3, 0);
    ck_assert_str_eq(expand(r, "/l/%{app}.log"), "/l/sshd.log");
    ck_assert_str_eq(expand(r, "/l/%{host}/%{facility}.%{severity}"), "/l/myhost/authpriv.err");
    ck_assert_str_eq(expand(r, "/l/%{uid}"), "/l/unknown");
    r->flags |= RECORD_F_HAS_CREDS;
    r->uid = 1000;
    ck_assert_str_eq(expand(r, "/l/%{uid}"), "/l/1000");
    record_free(r);
}
END_TEST

START_TEST(hostile_values_stay_in_one_component)
{
    static const char *const bad[] = {"../../etc/passwd", "..", ".", "/", "a/b", "",
                                      ".hidden", "x\n\0y"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct record *r = rec(bad[i], 1, 5, 0);
        const char *out = expand(r, "/l/%{app}.log");
        ck_assert_msg(strncmp(out, "/l/", 3) == 0, "%s", out);
        ck_assert_msg(strchr(out + 3, '/') == NULL, "slash in %s", out);
        ck_assert_msg(strstr(out, "..") == NULL || out[3] != '.', "climbs: %s", out);
        ck_assert_msg(out[3] != '.', "hidden or dot name: %s", out);
        record_free(r);
    }
    struct record *r = rec("../../etc/passwd", 1, 5, 0);
    ck_assert_str_eq(expand(r, "/l/%{app}.log"), "/l/_._.._etc_passwd.log");
    record_free(r);
    /* No value can pass for an archive of another app's file. */
    r = rec("victim.99991231T235959Z.999", 1, 5, 0);
    ck_assert_str_eq(expand(r, "/l/%{app}"), "/l/victim_99991231T235959Z_999");
    record_free(r);
    r = rec("host.example.com", 1, 5, 0);
    ck_assert_str_eq(expand(r, "%{app}"), "host.example.com");
    record_free(r);
    r = rec("", 1, 5, 0);
    ck_assert_str_eq(expand(r, "/l/%{app}.log"), "/l/unknown.log");
    record_free(r);
    char longapp[200];
    memset(longapp, 'a', sizeof(longapp) - 1);
    longapp[sizeof(longapp) - 1] = '\0';
    r = rec(longapp, 1, 5, 0);
    ck_assert_uint_eq(strlen(expand(r, "%{app}")), ROUTE_VALUE_MAX);
    record_free(r);
}
END_TEST

START_TEST(too_long)
{
    struct record *r = rec("sshd", 1, 5, 0);
    char out[8];
    ck_assert_int_eq(route_expand("/l/%{app}.log", r, "h", out, sizeof(out)), -ENAMETOOLONG);
    record_free(r);
}
END_TEST

START_TEST(peer_placeholder)
{
    struct record_pool pool;
    record_pool_init(&pool, 0);
    struct record *r = record_pool_new_ext(&pool, "msg", 3, "10.1.2.3:5140", 13);
    r->peer = (struct span){4, 13};
    ck_assert_str_eq(expand(r, "/l/%{peer}.log"), "/l/10_1_2_3.log"); /* no port */
    record_free(r);
    r = record_pool_new_ext(&pool, "msg", 3, "[fd00::1]:514", 13);
    r->peer = (struct span){4, 13};
    ck_assert_str_eq(expand(r, "/l/%{peer}"), "/l/fd00__1");
    record_free(r);
    /* The certificate subject when there is one, sanitised. */
    r = record_pool_new_ext(&pool, "msg", 3, "1.2.3.4:9CN=web/../x", 20);
    r->peer = (struct span){4, 9};
    r->peer_name = (struct span){13, 11};
    ck_assert_str_eq(expand(r, "/l/%{peer}"), "/l/CN_web_.._x");
    record_free(r);
    r = rec("sshd", 1, 5, 0); /* a local record: no peer */
    ck_assert_str_eq(expand(r, "/l/%{peer}"), "/l/unknown");
    ck_assert_int_eq(route_check_template("/l/%{peer}/x", NULL), 0);
    record_free(r);
    record_pool_release(&pool);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("route");
    TCase *tc = tcase_create("route");
    tcase_add_test(tc, empty_filter_takes_all);
    tcase_add_test(tc, severity_facility_listener_app);
    tcase_add_test(tc, template_check);
    tcase_add_test(tc, expansion);
    tcase_add_test(tc, peer_placeholder);
    tcase_add_test(tc, hostile_values_stay_in_one_component);
    tcase_add_test(tc, too_long);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
