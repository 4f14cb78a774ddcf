/* Check suite for daemon/config.c: the settings table, the shipped files,
 * and the errors a person reads ("FILE:LINE: setting: what is wrong"). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "format.h"
#include "record.h"
#include "route.h"

static char path[64];

/* Write text to a fresh temporary file whose name is in `path`. */
static void write_conf(const char *text)
{
    strcpy(path, "/tmp/lograil-conf-XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
}

/* Load text; on failure return the error message (static), else NULL. */
static const char *load_text(const char *text, struct config *cfg)
{
    static char err[1024];
    write_conf(text);
    int rc = config_load(cfg, path, err, sizeof(err));
    unlink(path);
    return rc == 0 ? NULL : err;
}

/* Expect a refusal whose message is exactly "PATH:LINE: rest". */
static void expect_error(const char *text, int line, const char *rest)
{
    struct config cfg;
    const char *err = load_text(text, &cfg);
    ck_assert_msg(err != NULL, "accepted: %s", text);
    char want[1024];
    snprintf(want, sizeof(want), "%s:%d: %s", path, line, rest);
    ck_assert_str_eq(err, want);
}

START_TEST(shipped_files_are_valid)
{
    static const char *files[] = {"conf/lograild.conf", "conf/lograild.dev.conf",
                                  "conf/debian.conf"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        struct config cfg;
        char err[1024] = "";
        ck_assert_msg(config_load(&cfg, files[i], err, sizeof(err)) == 0, "%s", err);
        ck_assert_uint_ge(cfg.n_listen, 1);
        ck_assert_uint_ge(cfg.n_outputs, 1);
        config_free(&cfg);
    }
}
END_TEST

struct doc_check {
    char *text;
    int missing;
};

static void check_documented(void *arg, const char *scope, const char *name)
{
    struct doc_check *d = arg;
    char key[128];
    /* Every setting appears as "name =" (set, or commented out). */
    snprintf(key, sizeof(key), "%s =", name);
    if (strstr(d->text, key) == NULL) {
        fprintf(stderr, "conf/lograild.conf does not document %s%s%s\n", scope,
                *scope ? "." : "", name);
        d->missing++;
    }
}

START_TEST(every_setting_is_documented)
{
    FILE *f = fopen("conf/lograild.conf", "r");
    ck_assert_ptr_nonnull(f);
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    struct doc_check d = {text, 0};
    config_each_setting(check_documented, &d);
    ck_assert_int_eq(d.missing, 0);
}
END_TEST

START_TEST(defaults)
{
    struct config cfg;
    char err[256];
    ck_assert_int_eq(config_defaults(&cfg, err, sizeof(err)), 0);
    ck_assert_int_eq(cfg.threads, 2);
    ck_assert_int_eq(cfg.queue_capacity, 8192);
    ck_assert_uint_eq(cfg.n_listen, 2);
    ck_assert_str_eq(cfg.listen[0].path, "/run/lograil/log.sock");
    ck_assert_int_eq(cfg.listen[0].type, LISTEN_STREAM);
    ck_assert_int_eq(cfg.listen[1].type, LISTEN_DGRAM);
    ck_assert_int_eq(cfg.listen[0].mode, 0666);
    ck_assert_int_eq(cfg.listen[0].max_message, 65536);
    ck_assert_uint_eq(cfg.n_outputs, 1);
    ck_assert_str_eq(cfg.outputs[0].path, "/var/log/lograil/messages.log");
    ck_assert_int_eq(cfg.outputs[0].format, FORMAT_TRADITIONAL);
    ck_assert_int_eq(cfg.outputs[0].fsync_ms, 1000);
    ck_assert_int_eq(cfg.outputs[0].file_mode, 0640);
    ck_assert(!config_wants_creds(&cfg)); /* traditional shows none */
    config_free(&cfg);
}
END_TEST

START_TEST(values_and_suffixes)
{
    struct config cfg;
    const char *err = load_text("threads = 4;\n"
                                "queue = { capacity = 1; };\n"
                                "timestamp = \"received\";\n"
                                "listen = ( { path = \"/tmp/a.sock\"; type = \"dgram\"; mode = \"0600\";\n"
                                "  max_message = \"1M\"; idle_timeout = \"500ms\"; policy = \"drop\";\n"
                                "  facility = \"local3\"; severity = \"err\"; max_connections = 0; } );\n"
                                "outputs = ( { path = \"/tmp/a.log\"; format = \"json\"; fsync = \"always\"; },\n"
                                "            { path = \"/tmp/b.log\"; fsync = \"never\"; },\n"
                                "            { path = \"/tmp/c.log\"; fsync = 5; } );\n",
                                &cfg);
    ck_assert_msg(err == NULL, "%s", err);
    ck_assert_int_eq(cfg.threads, 4);
    ck_assert_int_eq(cfg.queue_capacity, 1);
    ck_assert_int_eq(cfg.timestamp, FORMAT_TS_RECEIVED);
    ck_assert_int_eq(cfg.listen[0].type, LISTEN_DGRAM);
    ck_assert_int_eq(cfg.listen[0].mode, 0600);
    ck_assert_int_eq(cfg.listen[0].max_message, 1 << 20);
    ck_assert_int_eq(cfg.listen[0].idle_timeout_ms, 500);
    ck_assert_int_eq(cfg.listen[0].policy, POLICY_DROP);
    ck_assert_int_eq(cfg.listen[0].facility, 19);
    ck_assert_int_eq(cfg.listen[0].severity, 3);
    ck_assert_int_eq(cfg.listen[0].max_connections, 0);
    ck_assert_int_eq(cfg.outputs[0].format, FORMAT_JSON);
    ck_assert_int_eq(cfg.outputs[0].fsync_ms, 0);
    ck_assert_int_eq(cfg.outputs[1].fsync_ms, -1);
    ck_assert_int_eq(cfg.outputs[2].fsync_ms, 5000);
    ck_assert(config_wants_creds(&cfg)); /* the json output */
    cfg.outputs[0].format = FORMAT_RAW;
    ck_assert(!config_wants_creds(&cfg));
    cfg.outputs[2].format = FORMAT_RFC5424;
    ck_assert(config_wants_creds(&cfg));
    cfg.outputs[2].format = FORMAT_TRADITIONAL;
    free(cfg.outputs[1].path);
    cfg.outputs[1].path = strdup("/tmp/%{uid}/b.log");
    ck_assert(config_wants_creds(&cfg));
    /* Lists the file leaves out keep their defaults; given lists replace them. */
    ck_assert_uint_eq(cfg.n_listen, 1);
    ck_assert_uint_eq(cfg.n_outputs, 3);
    config_free(&cfg);
}
END_TEST

START_TEST(errors_name_file_line_setting)
{
    expect_error("threads = 0;\n", 1, "threads: 0 is out of range [1, 64]");
    expect_error("threads = 2;\nthread = 2;\n", 2,
                 "thread: unknown setting (see lograild --help-config)");
    expect_error("threads = \"two\";\n", 1, "threads: \"two\" is not an integer");
    expect_error("threads = 2;\nqueue = { capacity = 0; };\n", 2,
                 "queue.capacity: 0 is out of range [1, 16777216]");
    expect_error("queue = { size = 5; };\n", 1,
                 "queue.size: unknown setting (see lograild --help-config)");
    expect_error("listen = (\n { path = \"/tmp/x\";\n   type = \"seqpacket\"; }\n);\n", 3,
                 "listen[0].type: \"seqpacket\" is not one of \"stream\", \"dgram\", \"kmsg\", "
                 "\"tcp\", \"udp\", \"tls\", \"relp\"");
    expect_error("listen = ( { path = \"/tmp/x\"; mode = \"0999\"; } );\n", 1,
                 "listen[0].mode: \"0999\" is not an octal mode string such as \"0640\"");
    expect_error("listen = ( { path = \"/tmp/x\"; max_message = \"12Q\"; } );\n", 1,
                 "listen[0].max_message: \"12Q\" is not a size (bytes, or a string such as "
                 "\"64K\", \"64M\", \"1G\")");
    expect_error("listen = ( { path = \"/tmp/x\"; max_message = 8; } );\n", 1,
                 "listen[0].max_message: 8 is out of range [16, 16777216]");
    expect_error("listen = (\n { type = \"dgram\"; }\n);\n", 2,
                 "listen[0]: missing required setting \"path\"");
    expect_error("listen = ( { path = \"/tmp/x\"; },\n { path = \"/tmp/x\"; } );\n", 2,
                 "listen.path: \"/tmp/x\" is already used by listen[0]");
    expect_error("outputs = ( { path = \"/tmp/o\"; },\n\n { path = \"/tmp/o\"; } );\n", 3,
                 "outputs.path: \"/tmp/o\" is already written by outputs[0]");
    expect_error("outputs = ( { path = \"/tmp/o\"; format = \"xml\"; } );\n", 1,
                 "outputs[0].format: unknown format \"xml\"; use \"traditional\", \"rfc5424\", "
                 "\"json\" or \"raw\"");
    expect_error("outputs = ( { path = \"/tmp/o\"; fsync = \"sometimes\"; } );\n", 1,
                 "outputs[0].fsync: \"sometimes\" is not \"never\", \"always\" or a duration "
                 "such as \"1s\"");
    expect_error("outputs = ();\n", 1, "outputs: must have at least one entry");
    expect_error("listen = 5;\n", 1, "listen: must be a list: ( { ... }, { ... } )");
}
END_TEST

START_TEST(filter_and_rotate)
{
    struct config cfg;
    const char *err = load_text(
        "listen = ( { path = \"/tmp/l1\"; }, { path = \"/tmp/l2\"; } );\n"
        "outputs = ( { path = \"/tmp/%{app}.log\";\n"
        "  filter = { severity = \"warning\"; facilities = [\"auth\", \"local7\"];\n"
        "             apps = [\"sshd\", \"cron\"]; listeners = [\"/tmp/l2\"]; };\n"
        "  rotate = { max_size = \"1M\"; interval = \"hourly\"; keep = 3;\n"
        "             max_total = \"10M\"; compress = \"zstd\"; }; },\n"
        "  { path = \"/tmp/all.log\"; rotate = { interval = \"90m\"; }; } );\n",
        &cfg);
    ck_assert_msg(err == NULL, "%s", err);
    struct output_conf *o = &cfg.outputs[0];
    ck_assert_int_eq(o->filter_severity, 4);
    ck_assert_uint_eq(o->filter_facilities, (1u << 4) | (1u << 23));
    ck_assert_uint_eq(o->filter_apps.n, 2);
    ck_assert_str_eq(o->filter_apps.v[1], "cron");
    ck_assert_uint_eq(o->filter_listener_mask, 2);
    ck_assert_int_eq(o->rotate_max_size, 1 << 20);
    ck_assert_int_eq(o->rotate_interval_s, 3600);
    ck_assert_int_eq(o->rotate_keep, 3);
    ck_assert_int_eq(o->rotate_max_total, 10 << 20);
    ck_assert_int_eq(o->rotate_compress, COMPRESS_ZSTD);
    o = &cfg.outputs[1];
    ck_assert_int_eq(o->filter_severity, 7);
    ck_assert_uint_eq(o->filter_facilities, 0);
    ck_assert_uint_eq(o->filter_listener_mask, 0);
    ck_assert_int_eq(o->rotate_interval_s, 5400);
    ck_assert_int_eq(o->rotate_max_size, 64 << 20);
    ck_assert_int_eq(o->rotate_keep, 10);
    config_free(&cfg);

    expect_error("outputs = ( { path = \"/tmp/o\";\n filter = { facilities = [\"nope\"]; }; } );\n",
                 2, "outputs[0].filter.facilities: \"nope\" is not a facility; use \"kern\", "
                    "\"user\", \"mail\", \"daemon\", \"auth\", \"syslog\", \"lpr\", "
                    "\"news\", \"uucp\", \"cron\", \"authpriv\", \"ftp\", \"ntp\", "
                    "\"audit\", \"alert\", \"clock\", \"local0\", \"local1\", \"local2\", "
                    "\"local3\", \"local4\", \"local5\", \"local6\", \"local7\"");
    expect_error("outputs = ( { path = \"/tmp/o\";\n rotate = { interval = \"monthly\"; }; } );\n",
                 2, "outputs[0].rotate.interval: \"monthly\" is not \"hourly\", \"daily\", "
                    "\"weekly\" or a duration such as \"30m\"");
    expect_error("outputs = ( { path = \"/tmp/o\";\n rotate = { size = 1; }; } );\n", 2,
                 "outputs[0].rotate.size: unknown setting (see lograild --help-config)");
    expect_error("listen = ( { path = \"/tmp/l\"; } );\n"
                 "outputs = ( { path = \"/tmp/o\";\n filter = { listeners = [\"/tmp/x\"]; }; } );\n",
                 2, "outputs.filter.listeners: \"/tmp/x\" is not the path of any listen entry");
    expect_error("outputs = ( { path = \"/tmp/%{prog}.log\"; } );\n", 1,
                 "outputs[0].path: bad placeholder at \"%{prog}.log\"; use %{app}, %{host}, "
                 "%{facility}, %{severity}, %{uid} or %{peer}");
}
END_TEST

/* forward = { ... }: the values kept, and every refusal naming the file,
 * the line and the setting. */
START_TEST(forward_outputs)
{
    struct config cfg;
    const char *err = load_text("outputs = ( { forward = { address = \"[::1]:6514\";\n"
                                "  protocol = \"relp\"; spool = { path = \"/tmp/sp\";\n"
                                "  max_size = \"1M\"; full = \"drop_oldest\"; }; }; } );\n",
                                &cfg);
    ck_assert_msg(err == NULL, "%s", err);
    const struct output_conf *oc = &cfg.outputs[0];
    ck_assert_str_eq(oc->fwd_host, "::1");
    ck_assert_str_eq(oc->fwd_port, "6514");
    ck_assert_int_eq(oc->fwd_protocol, FORWARD_RELP);
    ck_assert_int_eq(oc->fwd_spool_max_size, 1 << 20);
    ck_assert_int_eq(oc->fwd_spool_full, 1);
    ck_assert_int_eq(oc->fwd_backoff_max_ms, 30000);
    ck_assert_int_eq(oc->format, FORMAT_RFC5424); /* the default for forward */
    ck_assert_str_eq(oc->path, "[::1]:6514 (spool /tmp/sp)");
    config_free(&cfg);
    static const struct {
        const char *fwd;
        const char *rest;
    } bad[] = {
        {"address = \"host\";", "outputs[0].forward.address: \"host\": no port: write \"host:port\""},
        {"address = \"::1:5\";", "outputs[0].forward.address: \"::1:5\": an IPv6 address goes in "
                                 "brackets: \"[::1]:514\""},
        {"address = \"h:70000\";", "outputs[0].forward.address: \"h:70000\": the port must be a "
                                   "number from 1 to 65535"},
        {"address = \"h:1\"; protocol = \"tls\";", "outputs[0].forward.tls: protocol \"tls\" needs "
                                                  "ca = \"FILE\" to verify the collector"},
        {"address = \"h:1\"; tls = { ca = \"/nonexistent/ca.pem\"; };",
         "outputs[0].forward.tls: cannot read \"/nonexistent/ca.pem\": No such file or directory"},
        {"address = \"h:1\"; protocol = \"udp\";",
         "outputs[0].forward.protocol: \"udp\" is not one of \"tcp\", \"tls\", \"relp\""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512];
        snprintf(text, sizeof(text),
                 "outputs = ( { forward = { %s spool = { path = \"/tmp/sp\"; }; }; } );\n",
                 bad[i].fwd);
        expect_error(text, 1, bad[i].rest);
    }
    expect_error("outputs = ( { forward = { address = \"a:1\"; spool = { path = \"/tmp/s\"; }; }; },\n"
                 "  { forward = { address = \"b:1\"; spool = { path = \"/tmp/s\"; }; }; } );\n",
                 2, "outputs.forward.spool.path: \"/tmp/s\" is already the spool of outputs[0]");
    expect_error("outputs = ( { path = \"/tmp/f.log\";\n forward = { address = \"a:1\"; spool = { "
                 "path = \"/tmp/s\"; }; }; } );\n",
                 1, "outputs[0].path: an output writes a file or forwards, not both");
    expect_error("outputs = ( { format = \"json\"; } );\n", 1,
                 "outputs[0]: missing required setting \"path\" (or forward = { ... })");
}
END_TEST

/* not_facilities takes facilities out: alone, out of all of them; with
 * facilities, out of those.  The writer sees one mask, so route_match()
 * decides as for facilities. */
START_TEST(filters_that_exclude)
{
    struct config cfg;
    const char *err = load_text(
        "outputs = ( { path = \"/tmp/syslog\";\n"
        "  filter = { not_facilities = [\"auth\", \"authpriv\"]; }; },\n"
        "  { path = \"/tmp/x\"; filter = { facilities = [\"auth\", \"mail\", \"cron\"];\n"
        "    not_facilities = [\"mail\"]; }; },\n"
        "  { path = \"/tmp/w\"; rotate = { interval = \"weekly\"; }; } );\n",
        &cfg);
    ck_assert_msg(err == NULL, "%s", err);
    uint32_t all = (1u << 24) - 1;
    ck_assert_uint_eq(cfg.outputs[0].filter_facilities, all & ~((1u << 4) | (1u << 10)));
    ck_assert_uint_eq(cfg.outputs[1].filter_facilities, (1u << 4) | (1u << 9));
    ck_assert_int_eq(cfg.outputs[2].rotate_interval_s, 7 * 86400);
    struct route_filter f = {.max_severity = 7, .facilities = cfg.outputs[0].filter_facilities};
    struct record *r = record_new("x", 1);
    for (int fac = 0; fac < 24; fac++) {
        r->facility = (uint8_t)fac;
        ck_assert_msg(route_match(&f, r) == (fac != 4 && fac != 10), "facility %d", fac);
    }
    record_free(r);
    config_free(&cfg);
    expect_error("outputs = ( { path = \"/tmp/o\";\n filter = { facilities = [\"auth\"];\n"
                 " not_facilities = [\"auth\"]; }; } );\n",
                 1, "outputs[0].filter.not_facilities: leaves no facility to take; remove the "
                    "output instead");
}
END_TEST

START_TEST(syntax_error_names_line)
{
    struct config cfg;
    const char *err = load_text("threads = 2;\nqueue = { capacity = ; };\n", &cfg);
    ck_assert_ptr_nonnull(err);
    char want[128];
    snprintf(want, sizeof(want), "%s:2: syntax error", path);
    ck_assert_msg(strncmp(err, want, strlen(want)) == 0, "got: %s", err);
}
END_TEST

START_TEST(missing_file)
{
    struct config cfg;
    char err[512];
    ck_assert_int_ne(config_load(&cfg, "/nonexistent/lograild.conf", err, sizeof(err)), 0);
    ck_assert_str_eq(err, "/nonexistent/lograild.conf: cannot read: No such file or directory");
}
END_TEST

START_TEST(network_listeners)
{
    struct config cfg;
    const char *err = load_text("listen = ( { address = \"[::]:601\"; type = \"tcp\"; "
                                "allow = [\"10.0.0.0/8\", \"::1\"]; max_per_peer = 4; },\n"
                                "{ address = \"0.0.0.0:514\"; type = \"udp\"; rcvbuf = \"8M\"; } );\n"
                                "metrics = { address = \"127.0.0.1:9465\"; };\n",
                                &cfg);
    ck_assert_msg(err == NULL, "%s", err);
    ck_assert_uint_eq(cfg.n_listen, 2);
    ck_assert_str_eq(cfg.listen[0].path, "[::]:601"); /* the address names it */
    ck_assert_str_eq(cfg.listen[0].host, "::");
    ck_assert_str_eq(cfg.listen[0].port, "601");
    ck_assert_uint_eq(cfg.listen[0].allow.n, 2);
    ck_assert_int_eq(cfg.listen[0].max_per_peer, 4);
    ck_assert_int_eq(cfg.listen[1].type, LISTEN_UDP);
    ck_assert_int_eq(cfg.listen[1].rcvbuf, 8 << 20);
    ck_assert_str_eq(cfg.metrics_host, "127.0.0.1");
    ck_assert_str_eq(cfg.metrics_port, "9465");
    config_free(&cfg);

    expect_error("listen = ( { type = \"tcp\"; } );\n", 1,
                 "listen[0]: missing required setting \"address\"");
    expect_error("listen = ( { path = \"/tmp/x\"; type = \"tcp\"; } );\n", 1,
                 "listen[0]: types tcp, udp, tls and relp listen on an address = \"host:port\", not a path");
    expect_error("listen = ( { address = \"1.2.3.4:5\"; } );\n", 1,
                 "listen[0]: missing required setting \"path\"");
    expect_error("listen = ( { address = \"::1:514\"; type = \"udp\"; } );\n", 1,
                 "listen[0].address: \"::1:514\": an IPv6 address goes in brackets: \"[::1]:514\"");
    expect_error("listen = ( { address = \"[::]:601\"; type = \"tcp\"; allow = [\"10.0.0.0/33\"]; } );\n",
                 1, "listen[0].allow: \"10.0.0.0/33\" is not an address or range such as "
                    "\"10.0.0.0/8\" or \"::1\"");
    expect_error("listen = ( { path = \"/tmp/x\"; allow = [\"::1\"]; } );\n", 1,
                 "listen[0].allow: only for types tcp, udp, tls and relp");
    expect_error("listen = ( { address = \"[::]:6514\"; type = \"tls\"; } );\n", 1,
                 "listen[0].tls: type \"tls\" needs tls = { cert = \"FILE\"; key = \"FILE\"; }");
    expect_error("listen = ( { address = \"[::]:601\"; type = \"tcp\"; tls = { cert = \"a\"; key = \"b\"; }; } );\n",
                 1, "listen[0].tls: only for type \"tls\"");
    expect_error("listen = ( { address = \"[::]:6514\"; type = \"tls\"; tls = { cert = \"/etc/hostname\"; "
                 "key = \"/etc/hostname\"; verify_client = true; }; } );\n",
                 1, "listen[0].tls: verify_client needs ca = \"FILE\"");
    expect_error("metrics = { address = \"9465\"; };\n", 1,
                 "metrics.address: \"9465\": no port: write \"host:port\"");
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_test(tc, shipped_files_are_valid);
    tcase_add_test(tc, every_setting_is_documented);
    tcase_add_test(tc, network_listeners);
    tcase_add_test(tc, defaults);
    tcase_add_test(tc, values_and_suffixes);
    tcase_add_test(tc, errors_name_file_line_setting);
    tcase_add_test(tc, filter_and_rotate);
    tcase_add_test(tc, filters_that_exclude);
    tcase_add_test(tc, syntax_error_names_line);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, forward_outputs);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
