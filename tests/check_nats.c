/* Check suite for the NATS output's pure parts: the stream subject a
 * template gives, whether a stream's subject filter covers it
 * (daemon/nats_sender.c), the nats = { ... } settings (daemon/config.c),
 * and the PubAck latency quantiles (daemon/stats.c). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "format.h"
#include "nats_sender.h"
#include "stats.h"

START_TEST(pattern_of_template)
{
    char out[128];
    nats_subject_pattern("logs.%{host}.%{app}", out, sizeof(out));
    ck_assert_str_eq(out, "logs.*.*");
    nats_subject_pattern("a.app-%{app}.b", out, sizeof(out));
    ck_assert_str_eq(out, "a.*.b");
    nats_subject_pattern("plain", out, sizeof(out));
    ck_assert_str_eq(out, "plain");
}
END_TEST

START_TEST(filters_cover)
{
    ck_assert(nats_subject_covers("logs.>", "logs.*.*"));
    ck_assert(nats_subject_covers("logs.*.*", "logs.*.*"));
    ck_assert(nats_subject_covers("*.*.*", "logs.*.*"));
    ck_assert(nats_subject_covers(">", "logs"));
    ck_assert(nats_subject_covers("logs.x", "logs.x"));
    /* A literal does not cover what a placeholder may give. */
    ck_assert(!nats_subject_covers("logs.web.*", "logs.*.*"));
    ck_assert(!nats_subject_covers("logs.*", "logs.*.*"));
    ck_assert(!nats_subject_covers("logs.*.*.*", "logs.*.*"));
    ck_assert(!nats_subject_covers("metrics.>", "logs.*.*"));
    ck_assert(!nats_subject_covers("logs.>", "logs"));
}
END_TEST

static const char *load(const char *nats, struct config *cfg)
{
    static char err[1024];
    char path[] = "/tmp/lograil-nats-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "outputs = ( { nats = { %s }; } );\n", nats);
    fclose(f);
    int rc = config_load(cfg, path, err, sizeof(err));
    unlink(path);
    return rc == 0 ? NULL : strchr(err, ' ') + 1;
}

START_TEST(settings)
{
    struct config cfg;
    const char *e = load("servers = [\"nats://a:4222\", \"nats://b:4222\"]; subject = \"logs.%{app}\";"
                         " stream = \"LOGS\"; create = { replicas = 3; max_age = \"7d\"; };"
                         " spool = { path = \"/tmp/x\"; };", &cfg);
    ck_assert_msg(e == NULL, "%s", e);
    const struct output_conf *oc = &cfg.outputs[0];
    ck_assert_int_eq(oc->format, FORMAT_JSON);
    ck_assert_int_eq((int)oc->nats_servers.n, 2);
    ck_assert(oc->nats_create);
    ck_assert_int_eq(oc->nats_create_replicas, 3);
    ck_assert_int_eq(oc->nats_create_max_age_ms, 7 * 86400 * 1000LL);
    ck_assert_int_eq(oc->nats_create_dup_window_ms, 120000);
    ck_assert_int_eq(oc->nats_max_pending, 4096);
    config_free(&cfg);
    static const struct {
        const char *conf, *want;
    } bad[] = {
        {"servers = [\"nats://a:1\"]; subject = \"logs..x\"; stream = \"S\"; spool = { path = \"/tmp/x\"; };",
         "has an empty token"},
        {"servers = [\"nats://a:1\"]; subject = \"logs.*\"; stream = \"S\"; spool = { path = \"/tmp/x\"; };",
         "may hold only letters"},
        {"servers = [\"nats://a:1\"]; subject = \"logs.%{nope}\"; stream = \"S\"; spool = { path = \"/tmp/x\"; };",
         "bad placeholder"},
        {"servers = [\"http://a:1\"]; subject = \"logs\"; stream = \"S\"; spool = { path = \"/tmp/x\"; };",
         "not a nats://"},
        {"servers = [\"nats://a:1\"]; subject = \"logs\"; stream = \"S.x\"; spool = { path = \"/tmp/x\"; };",
         "a stream name has no"},
        {"servers = [\"nats://a:1\"]; subject = \"logs\"; stream = \"S\";", "missing: spool"},
        {"servers = [\"nats://a:1\"]; subject = \"logs\"; stream = \"S\"; creds = \"/nonexistent\";"
         " spool = { path = \"/tmp/x\"; };", "cannot read"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        e = load(bad[i].conf, &cfg);
        ck_assert_msg(e != NULL, "accepted: %s", bad[i].conf);
        ck_assert_msg(strstr(e, bad[i].want) != NULL, "%s: got %s", bad[i].conf, e);
    }
}
END_TEST

START_TEST(latency_quantiles)
{
    static struct nats_stats ns;
    memset(&ns, 0, sizeof(ns));
    for (int i = 0; i < 98; i++)
        stats_nats_latency(&ns, 1000); /* 1 ms */
    stats_nats_latency(&ns, 100000);   /* 100 ms */
    stats_nats_latency(&ns, 100000);
    struct buf b = {0};
    ck_assert_int_eq(stats_format_nats(&b, "x", &ns, false, true), 0);
    ck_assert_int_eq(buf_append(&b, "", 1), 0);
    double p50 = 0, p99 = 0;
    const char *s = strstr(b.p, "nats_puback_p50_seconds: ");
    ck_assert_ptr_nonnull(s);
    p50 = atof(s + strlen("nats_puback_p50_seconds: "));
    s = strstr(b.p, "nats_puback_p99_seconds: ");
    ck_assert_ptr_nonnull(s);
    p99 = atof(s + strlen("nats_puback_p99_seconds: "));
    /* Each figure is the top of its bucket: at most 25 % above. */
    ck_assert_msg(p50 >= 0.001 && p50 <= 0.00125, "p50 %g", p50);
    ck_assert_msg(p99 >= 0.1 && p99 <= 0.125, "p99 %g", p99);
    buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nats");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, pattern_of_template);
    tcase_add_test(tc, filters_cover);
    tcase_add_test(tc, settings);
    tcase_add_test(tc, latency_quantiles);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
