/*
 * lograild: command line, start-up in order, signals, shutdown in order.
 *
 * Start: load and check the configuration; create the channel; open the
 * outputs (writer) and bind the sockets (ingest) so that every failure is
 * reported before anything runs; start the writer, then the ingest loops.
 * The main thread then only waits for signals on its own libuv loop.
 *
 * Stop (SIGTERM, SIGINT): a stopper thread runs the drain while the main
 * loop goes on answering signals and the control socket: ingest stops
 * accepting, reads what clients have already delivered and sends it, and its
 * senders go; the main thread drops the last sender; the writer drains the
 * channel, writes, fsyncs and ends.  Only then are the signal handles closed,
 * so a second SIGTERM during a long drain cannot kill the daemon (libuv
 * gives a signal its default action back when its last handle closes).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "activation.h"
#include "chan.h"
#include "config.h"
#include "control.h"
#include "ingest.h"
#include "metrics_http.h"
#include "buf.h"
#include "log.h"
#include "notify.h"
#include "privs.h"
#include "record.h"
#include "stats.h"
#include "writer.h"

#ifndef LOGRAIL_VERSION
#define LOGRAIL_VERSION "0.1.0"
#endif

enum exit_code {
    EXIT_OK = 0,
    EXIT_CONFIG = 1,  /* the configuration is invalid */
    EXIT_USAGE = 2,   /* bad command line */
    EXIT_START = 3,   /* could not start: a socket or an output failed */
    EXIT_LOST = 4,    /* stopped, but some records could not be written */
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: lograild [-c FILE] [--check-config]\n"
            "\n"
            "A logging daemon: reads log records from Unix sockets (logger, syslog(3))\n"
            "and appends them to files.\n"
            "\n"
            "  -c, --config FILE   configuration file (default " CONFIG_DEFAULT_FILE
            ";\n"
            "                      built-in defaults when that file does not exist)\n"
            "  -t, --check-config  check the configuration and exit (0 valid, 1 invalid)\n"
            "      --help-config   describe every configuration setting\n"
            "  -h, --help          this help\n"
            "  -V, --version       print the version\n"
            "\n"
            "Signals: SIGTERM/SIGINT stop after writing everything received;\n"
            "SIGHUP closes and reopens the output files.\n"
            "\n"
            "Exit codes: 0 success; 1 invalid configuration; 2 usage error;\n"
            "3 start-up failure (socket or output); 4 stopped with records lost.\n");
}

struct daemon_ctx {
    struct writer *w;
    struct ingest *in;
    chan_tx *tx; /* the main thread's sender; NULL once dropped */
    chan_rx *rx;
    struct budget budget; /* bytes of the records in the queue */
    const struct config *cfg;
    struct stats *stats;
    uv_loop_t *loop;
    uv_signal_t sig_term, sig_int, sig_hup, sig_usr1;
    uv_timer_t status_timer;
    uv_timer_t watchdog_timer;
    uint64_t beats[1 + STATS_MAX_LOOPS]; /* at the last watchdog check */
    uv_async_t ingest_done, all_done;
    struct control *control;
    struct metrics_http *metrics;
    bool stopping;
    pthread_t stopper;
    uint64_t lost;
    uint64_t start_ms;
    uint64_t last_records;
    uint64_t last_ms;
    const char **listen_names;
    const char **output_names;
};

/* The one-line summary for systemd's STATUS=: rate, queue, trouble. */
static void on_status_timer(uv_timer_t *h)
{
    struct daemon_ctx *d = h->data;
    uint64_t records = 0;
    for (size_t i = 0; i < d->stats->n_listen; i++)
        records += counter_get(&d->stats->listen[i].records);
    uint64_t now = uv_now(h->loop);
    double secs = now > d->last_ms ? (double)(now - d->last_ms) / 1000.0 : 1.0;
    double rate = (double)(records - d->last_records) / secs;
    d->last_records = records;
    d->last_ms = now;
    struct chan_stats cs;
    chan_stats(d->rx, &cs);
    char trouble[256] = "";
    for (size_t i = 0; i < d->stats->n_outputs; i++) {
        int e = atomic_load_explicit(&d->stats->outputs[i].last_errno, memory_order_relaxed);
        if (e != 0) {
            snprintf(trouble, sizeof(trouble), "; cannot write %s: %s", d->cfg->outputs[i].path,
                     strerror(e));
            break;
        }
    }
    /* A forward output whose collector is away says so, with why. */
    for (size_t i = 0; trouble[0] == '\0' && i < d->stats->n_outputs; i++) {
        const struct forward_stats *fs = &d->stats->outputs[i].fwd;
        int e = atomic_load_explicit(&fs->last_errno, memory_order_relaxed);
        if (d->cfg->outputs[i].fwd_address != NULL && e != 0 &&
            atomic_load_explicit(&fs->state, memory_order_relaxed) != FORWARD_CONNECTED)
            snprintf(trouble, sizeof(trouble), "; collector %s away: %s",
                     d->cfg->outputs[i].fwd_address, strerror(e));
    }
    /* So does a NATS output whose cluster is away (or stream refused). */
    for (size_t i = 0; trouble[0] == '\0' && i < d->stats->n_outputs; i++) {
        const struct forward_stats *fs = &d->stats->outputs[i].fwd;
        int e = atomic_load_explicit(&fs->last_errno, memory_order_relaxed);
        if (d->cfg->outputs[i].nats_subject != NULL && e != 0 &&
            atomic_load_explicit(&fs->state, memory_order_relaxed) != FORWARD_CONNECTED)
            snprintf(trouble, sizeof(trouble), "; NATS cluster of stream %s away: %s",
                     d->cfg->outputs[i].nats_stream, strerror(e));
    }
    char msg[512];
    snprintf(msg, sizeof(msg), "STATUS=%s%.0f records/s; queue %zu/%zu; %llu records in total%s",
             d->stopping ? "stopping; " : "", rate, cs.depth, cs.capacity,
             (unsigned long long)records, trouble);
    notify_send(msg);
}

/* WATCHDOG=1 only when the writer and every ingest loop have beaten since
 * the last check: a stuck thread stops the pings and systemd restarts us. */
static void on_watchdog_timer(uv_timer_t *h)
{
    struct daemon_ctx *d = h->data;
    size_t n = 1 + (size_t)d->cfg->threads;
    bool all = true;
    for (size_t i = 0; i < n; i++) {
        uint64_t b = counter_get(i == 0 ? &d->stats->writer_beat : &d->stats->loop_beats[i - 1]);
        if (b == d->beats[i])
            all = false;
        d->beats[i] = b;
    }
    if (all)
        notify_send("WATCHDOG=1");
    else
        log_msg(LOG_WARNING, "a thread made no progress: not feeding the watchdog");
}

static void format_stats(struct daemon_ctx *d, struct buf *out, bool prometheus)
{
    struct stats_view v = {.s = d->stats,
                           .listen_names = d->listen_names,
                           .output_names = d->output_names};
    chan_stats(d->rx, &v.chan);
    v.queue_bytes = budget_used(&d->budget);
    v.queue_bytes_peak = budget_peak(&d->budget);
    v.queue_bytes_limit = d->budget.limit;
    v.queue_byte_waits = atomic_load_explicit(&d->budget.waits, memory_order_relaxed);
    v.uptime_s = (double)(uv_now(d->loop) - d->start_ms) / 1000.0;
    stats_process_memory(&v.rss_bytes, &v.hwm_bytes);
    if (stats_format(out, &v, prometheus) != 0 || writer_format_stats(d->w, out, prometheus) != 0 ||
        ingest_format_stats(d->in, out, prometheus) != 0)
        buf_append(out, "error: out of memory\n", 21);
}

static void on_control(void *arg, const char *cmd, struct buf *reply)
{
    struct daemon_ctx *d = arg;
    static const char ok[] = "ok\n";
    if (strcmp(cmd, "ping") == 0) {
        buf_append(reply, "pong\n", 5);
    } else if (strcmp(cmd, "stats") == 0 || strcmp(cmd, "stats text") == 0) {
        format_stats(d, reply, false);
    } else if (strcmp(cmd, "stats prometheus") == 0) {
        format_stats(d, reply, true);
    } else if (strcmp(cmd, "reopen") == 0) {
        writer_request(d->w, WRITER_REOPEN, d->tx);
        buf_append(reply, ok, sizeof(ok) - 1);
    } else if (strcmp(cmd, "rotate") == 0) {
        writer_request(d->w, WRITER_ROTATE, d->tx);
        buf_append(reply, ok, sizeof(ok) - 1);
    } else {
        char msg[400];
        int n = snprintf(msg, sizeof(msg),
                         "error: unknown command \"%.200s\"; use ping, stats, stats prometheus, "
                         "reopen or rotate\n",
                         cmd);
        buf_append(reply, msg, (size_t)n);
    }
}

/* SIGUSR1: the statistics to stderr, one log line each. */
static void on_usr1(uv_signal_t *h, int signum)
{
    (void)signum;
    struct daemon_ctx *d = h->data;
    struct buf b = BUF_INIT;
    format_stats(d, &b, false);
    for (char *p = b.p, *end = b.p + b.len; p != NULL && p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (len > 0)
            log_msg(LOG_INFO, "stats: %.*s", (int)len, p);
        p = nl ? nl + 1 : end;
    }
    buf_free(&b);
}

static void on_hup(uv_signal_t *h, int signum)
{
    (void)signum;
    struct daemon_ctx *d = h->data;
    writer_request(d->w, WRITER_REOPEN, d->tx);
}

/* The drain, off the main thread: it blocks for as long as it takes. */
static void *stopper_main(void *arg)
{
    struct daemon_ctx *d = arg;
    writer_stop_by(d->w, writer_now_ms() + (uint64_t)d->cfg->stop_timeout_ms);
    ingest_stop(d->in);
    uv_async_send(&d->ingest_done);
    /* Ends once the main thread has dropped the last sender. */
    d->lost = writer_join(d->w);
    uv_async_send(&d->all_done);
    return NULL;
}

static void on_ingest_done(uv_async_t *h)
{
    struct daemon_ctx *d = h->data;
    chan_sender_drop(d->tx);
    d->tx = NULL;
}

static void on_all_done(uv_async_t *h)
{
    uv_stop(h->loop);
}

static void on_stop_signal(uv_signal_t *h, int signum)
{
    struct daemon_ctx *d = h->data;
    if (d->stopping) {
        log_msg(LOG_NOTICE, "%s: already stopping; writing what was received", strsignal(signum));
        return;
    }
    log_msg(LOG_NOTICE, "%s: stopping", strsignal(signum));
    d->stopping = true;
    notify_send("STOPPING=1");
    int rc = pthread_create(&d->stopper, NULL, stopper_main, d);
    if (rc != 0) {
        /* No thread: drain here, deaf to signals meanwhile. */
        log_msg(LOG_WARNING, "cannot start the stopper thread: %s", strerror(rc));
        stopper_main(d);
        on_ingest_done(&d->ingest_done);
        d->stopper = pthread_self();
    }
}

static void close_handles(struct daemon_ctx *d)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&d->status_timer, (uv_handle_t *)&d->watchdog_timer,
                         (uv_handle_t *)&d->sig_term,
                         (uv_handle_t *)&d->sig_int,      (uv_handle_t *)&d->sig_hup,
                         (uv_handle_t *)&d->sig_usr1,     (uv_handle_t *)&d->ingest_done,
                         (uv_handle_t *)&d->all_done};
    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
        uv_close(hs[i], NULL);
    control_close(d->control);
    metrics_http_close(d->metrics);
    uv_run(d->loop, UV_RUN_DEFAULT);
}

/* GET /metrics: the exposition lograilctl stats --prometheus prints. */
static void metrics_body(void *arg, struct buf *body)
{
    format_stats(arg, body, true);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 't'},
        {"help-config", no_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *file = NULL;
    bool check_only = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:thV", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': file = optarg; break;
        case 't': check_only = true; break;
        case 'C': config_print_help(stdout); return EXIT_OK;
        case 'h': usage(stdout); return EXIT_OK;
        case 'V': printf("lograild %s\n", LOGRAIL_VERSION); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "lograild: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return EXIT_USAGE;
    }

    char err[1024];
    struct config cfg;
    if (config_load(&cfg, file, err, sizeof(err)) != 0) {
        fprintf(stderr, "lograild: %s\n", err);
        return EXIT_CONFIG;
    }
    if (check_only) {
        printf("%s: configuration is valid\n", cfg.file ? cfg.file : "built-in defaults");
        config_free(&cfg);
        return EXIT_OK;
    }

    signal(SIGPIPE, SIG_IGN);
    int passed = activation_init();
    int rc = notify_init();
    if (rc != 0)
        log_msg(LOG_WARNING, "NOTIFY_SOCKET is unusable: %s", strerror(-rc));
    int code = EXIT_START;
    struct stats stats;
    struct daemon_ctx d = {.cfg = &cfg, .stats = &stats, .loop = uv_default_loop()};
    if (stats_init(&stats, cfg.n_listen, cfg.n_outputs) != 0) {
        log_msg(LOG_ERR, "out of memory");
        config_free(&cfg);
        return EXIT_START;
    }
    d.listen_names = calloc(cfg.n_listen, sizeof(char *));
    d.output_names = calloc(cfg.n_outputs, sizeof(char *));
    if (d.listen_names == NULL || d.output_names == NULL) {
        log_msg(LOG_ERR, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < cfg.n_listen; i++)
        d.listen_names[i] = cfg.listen[i].path;
    for (size_t i = 0; i < cfg.n_outputs; i++)
        d.output_names[i] = cfg.outputs[i].path;

    /* Everything that needs privileges or can fail is done before any
     * thread runs: the queue, the outputs, the sockets, the control socket. */
    rc = chan_bounded((size_t)cfg.queue_capacity, sizeof(struct record *), &d.tx, &d.rx);
    if (rc != 0) {
        log_msg(LOG_ERR, "cannot create the queue: %s", strerror(-rc));
        goto out;
    }
    budget_init(&d.budget, (size_t)cfg.queue_max_bytes);
    d.w = writer_open(&cfg, &stats, d.rx, &d.budget, err, sizeof(err));
    if (d.w == NULL) {
        log_msg(LOG_ERR, "%s", err);
        chan_receiver_drop(d.rx);
        goto out;
    }
    d.in = ingest_open(&cfg, &stats, &d.budget, err, sizeof(err));
    if (d.in == NULL) {
        log_msg(LOG_ERR, "%s", err);
        goto out;
    }
    if (cfg.control_path != NULL && cfg.control_path[0] != '\0') {
        d.control = control_open(d.loop, cfg.control_path, cfg.control_mode, on_control, &d, err,
                                 sizeof(err));
        if (d.control == NULL) {
            log_msg(LOG_ERR, "%s", err);
            goto out;
        }
    }
    if (cfg.metrics_address != NULL) {
        d.metrics = metrics_http_open(d.loop, cfg.metrics_host, cfg.metrics_port, metrics_body,
                                      &d, err, sizeof(err));
        if (d.metrics == NULL) {
            log_msg(LOG_ERR, "%s", err);
            goto out;
        }
    }
    activation_close_unused();
    if (passed > 0)
        log_msg(LOG_INFO, "adopted %d socket(s) from systemd", passed);
    if (privs_drop(cfg.user, cfg.group, err, sizeof(err)) != 0) {
        log_msg(LOG_ERR, "%s", err);
        goto out;
    }

    uv_timer_init(d.loop, &d.status_timer);
    uv_signal_init(d.loop, &d.sig_term);
    uv_signal_init(d.loop, &d.sig_int);
    uv_signal_init(d.loop, &d.sig_hup);
    uv_signal_init(d.loop, &d.sig_usr1);
    uv_async_init(d.loop, &d.ingest_done, on_ingest_done);
    uv_async_init(d.loop, &d.all_done, on_all_done);
    d.status_timer.data = d.sig_term.data = d.sig_int.data = d.sig_hup.data = d.sig_usr1.data =
        d.ingest_done.data = d.all_done.data = &d;
    uv_signal_start(&d.sig_term, on_stop_signal, SIGTERM);
    uv_signal_start(&d.sig_int, on_stop_signal, SIGINT);
    uv_signal_start(&d.sig_hup, on_hup, SIGHUP);
    uv_signal_start(&d.sig_usr1, on_usr1, SIGUSR1);

    if ((rc = writer_start(d.w)) != 0 || (rc = ingest_start(d.in, d.tx)) != 0) {
        log_msg(LOG_ERR, "cannot start threads: %s", strerror(-rc));
        code = EXIT_START;
        raise(SIGTERM); /* the ordinary stop, for what did start */
    } else {
        code = EXIT_OK;
        log_msg(LOG_INFO, "started: %zu listeners, %zu outputs, %lld threads, queue %lld",
                cfg.n_listen, cfg.n_outputs, (long long)cfg.threads,
                (long long)cfg.queue_capacity);
        notify_send("READY=1");
    }
    d.start_ms = d.last_ms = uv_now(d.loop);
    on_status_timer(&d.status_timer);
    uv_timer_start(&d.status_timer, on_status_timer, 1000, 1000);
    uv_timer_init(d.loop, &d.watchdog_timer);
    d.watchdog_timer.data = &d;
    if (notify_watchdog_usec() > 0) {
        /* Twice per interval, as sd_watchdog_enabled(3) advises; the
         * threads beat every second, so the interval must exceed 2 s. */
        uint64_t every = notify_watchdog_usec() / 2000;
        if (every < 1500)
            every = 1500;
        notify_send("WATCHDOG=1");
        uv_timer_start(&d.watchdog_timer, on_watchdog_timer, every, every);
    }
    uv_run(d.loop, UV_RUN_DEFAULT);
    pthread_join(d.stopper, NULL);
    close_handles(&d);
    d.control = NULL;
    d.metrics = NULL;

    uint64_t lost = d.lost;
    for (size_t i = 0; i < stats.n_listen; i++)
        lost += counter_get(&stats.listen[i].lost);
    if (lost > 0) {
        log_msg(LOG_ERR, "stopped: %llu records were lost", (unsigned long long)lost);
        if (code == EXIT_OK)
            code = EXIT_LOST;
    } else if (code == EXIT_OK) {
        log_msg(LOG_INFO, "stopped: every record received was written");
    }
out:
    if (d.control != NULL)
        control_close(d.control);
    metrics_http_close(d.metrics);
    /* Handles closed above (or by a failed open) finish closing. */
    uv_run(d.loop, UV_RUN_DEFAULT);
    uv_loop_close(d.loop);
    ingest_free(d.in);
    if (d.tx != NULL)
        chan_sender_drop(d.tx);
    writer_free(d.w);
    free(d.listen_names);
    free(d.output_names);
    stats_free(&stats);
    config_free(&cfg);
    notify_close();
    return code;
}
