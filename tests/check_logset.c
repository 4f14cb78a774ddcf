/* Check suite for lib/logset.c: a live file and its archives, oldest
 * first, in a scratch directory. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "logset.h"

static char dir[PATH_MAX];

static void touch(const char *name)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, name, strlen(name)), (ssize_t)strlen(name));
    close(fd);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/check_logset.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *base_of(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

START_TEST(order_forms_and_strangers)
{
    /* Made out of order on purpose. */
    touch("out.log");
    touch("out.log.20261126T110356Z.001.zst");
    touch("out.log.20261126T110356Z.000");
    touch("out.log.20261126T110356Z.000.gz"); /* its plain copy wins */
    touch("out.log.20261126T110356Z.1000");  /* four digits: after 999 */
    touch("out.log.20261126T110356Z.999.gz");
    touch("out.log.20251231T235959Z.000.gz");
    touch("out.log.20261126T110357Z.000.zst.tmp"); /* half-written */
    touch("out.log.1");
    touch("out.log.x.20261126T110356Z.000"); /* another file's */
    touch("other.log.20261126T110356Z.000");
    char live[PATH_MAX + 16];
    snprintf(live, sizeof(live), "%s/out.log", dir);
    struct logset s;
    ck_assert_int_eq(logset_scan(live, &s), 0);
    static const char *const want[] = {
        "out.log.20251231T235959Z.000.gz", "out.log.20261126T110356Z.000",
        "out.log.20261126T110356Z.001.zst", "out.log.20261126T110356Z.999.gz",
        "out.log.20261126T110356Z.1000", "out.log",
    };
    ck_assert_uint_eq(s.n, 6);
    for (size_t i = 0; i < s.n; i++) {
        ck_assert_str_eq(base_of(s.v[i].path), want[i]);
        ck_assert(s.v[i].live == (i == 5));
    }
    ck_assert_int_eq(s.v[0].form, ARCHIVE_GZ);
    ck_assert_int_eq(s.v[1].form, ARCHIVE_PLAIN);
    ck_assert_int_eq(s.v[2].form, ARCHIVE_ZST);
    ck_assert_int_eq(s.v[1].rotated, 1795691036); /* 2026-11-26T11:03:56Z */
    ck_assert_int_eq(s.v[1].size, (int64_t)strlen(want[1]));
    struct archive_id after = s.v[2].id;
    logset_free(&s);

    ck_assert_int_eq(logset_scan_after(live, after, &s), 0);
    ck_assert_uint_eq(s.n, 2);
    ck_assert_str_eq(base_of(s.v[0].path), want[3]);
    logset_free(&s);
}
END_TEST

START_TEST(missing_directory_and_live_file)
{
    struct logset s;
    ck_assert_int_eq(logset_scan("/nonexistent/dir/out.log", &s), 0);
    ck_assert_uint_eq(s.n, 0);
    touch("gone.log.20261126T110356Z.000");
    char live[PATH_MAX + 16];
    snprintf(live, sizeof(live), "%s/gone.log", dir);
    ck_assert_int_eq(logset_scan(live, &s), 0);
    ck_assert_uint_eq(s.n, 1);
    ck_assert(!s.v[0].live);
    logset_free(&s);
    ck_assert_int_eq(logset_scan("", &s), -EINVAL);
}
END_TEST

START_TEST(archive_names)
{
    ck_assert(logset_is_archive_name("a.log.20261126T110356Z.000"));
    ck_assert(logset_is_archive_name("a.log.20261126T110356Z.012.gz"));
    ck_assert(logset_is_archive_name("a.20261126T110356Z.1000.zst.tmp"));
    ck_assert(logset_is_archive_name("x.y.20261126T110356Z.000"));
    ck_assert(!logset_is_archive_name("a.log"));
    ck_assert(!logset_is_archive_name("a.log.20261126T110356Z.00"));
    ck_assert(!logset_is_archive_name("a.log.20261126T110356Z.000.bz2"));
    ck_assert(!logset_is_archive_name(".20261126T110356Z.000"));
    ck_assert(!logset_is_archive_name("a_20261126T110356Z.000"));
    ck_assert(logset_is_template("/l/%{app}.log"));
    ck_assert(!logset_is_template("/l/app.log"));
}
END_TEST

START_TEST(glob_template)
{
    char sub[PATH_MAX + 8];
    snprintf(sub, sizeof(sub), "%s/web", dir);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    touch("web/app.log");
    touch("db.log");
    touch("cron.log");
    touch("cron.log.20261126T110356Z.000"); /* an archive, not a file of its own */
    touch("x[1].log");
    char t[PATH_MAX + 32];
    snprintf(t, sizeof(t), "%s/%%{app}.log", dir);
    char **paths;
    size_t n;
    ck_assert_int_eq(logset_glob(t, &paths, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(base_of(paths[0]), "cron.log");
    ck_assert_str_eq(base_of(paths[1]), "db.log");
    ck_assert_str_eq(base_of(paths[2]), "x[1].log");
    logset_free_paths(paths, n);
    snprintf(t, sizeof(t), "%s/%%{host}/app.log", dir);
    ck_assert_int_eq(logset_glob(t, &paths, &n), 0);
    ck_assert_uint_eq(n, 1);
    logset_free_paths(paths, n);
    snprintf(t, sizeof(t), "%s/none/%%{app}", dir);
    ck_assert_int_eq(logset_glob(t, &paths, &n), 0);
    ck_assert_uint_eq(n, 0);
    logset_free_paths(paths, n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("logset");
    TCase *tc = tcase_create("logset");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, order_forms_and_strangers);
    tcase_add_test(tc, missing_directory_and_live_file);
    tcase_add_test(tc, archive_names);
    tcase_add_test(tc, glob_template);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
