/*
 * writer_bench: records per second that the writer alone sustains.
 *
 * The channel is filled beforehand with N parsed 120-byte records (as
 * ingest makes them) and all senders dropped; the real writer
 * (daemon/writer.c) then drains, formats and writes them to a file under
 * /tmp.  The time is from the writer's start to its end (everything
 * written and fsynced).
 *
 *   writer_bench [format] [fsync] [records]
 *
 * Prints: "writer format=F fsync=S msgs=N secs=T rate=R bytes=B".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "chan.h"
#include "config.h"
#include "record.h"
#include "stats.h"
#include "syslog_parse.h"
#include "writer.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    const char *format = argc > 1 ? argv[1] : "traditional";
    const char *fsync_mode = argc > 2 ? argv[2] : "never";
    long n = argc > 3 ? atol(argv[3]) : 500000;

    char dir[] = "/tmp/lrwbenchXXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    char conf[256], out[256];
    snprintf(conf, sizeof(conf), "%s/bench.conf", dir);
    snprintf(out, sizeof(out), "%s/out.log", dir);
    FILE *f = fopen(conf, "w");
    fprintf(f, "queue = { capacity = %ld; };\nlisten = ( { path = \"%s/unused.sock\"; } );\n"
               "outputs = ( { path = \"%s\"; format = \"%s\"; fsync = \"%s\";\n"
               "  rotate = { max_size = 0; }; } );\n",
            n, dir, out, format, fsync_mode);
    fclose(f);
    struct config cfg;
    char err[512];
    if (config_load(&cfg, conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct stats st;
    stats_init(&st, cfg.n_listen, cfg.n_outputs);
    chan_tx *tx;
    chan_rx *rx;
    if (chan_bounded((size_t)n, sizeof(struct record *), &tx, &rx) != 0) {
        fprintf(stderr, "cannot make a channel of %ld\n", n);
        return 1;
    }
    struct budget budget; /* charged as ingest would; no bound */
    budget_init(&budget, 0);
    struct syslog_parse_opts po = {1, 5};
    for (long i = 0; i < n; i++) {
        char msg[128];
        int len = snprintf(msg, sizeof(msg), "<13>Nov 26 11:03:56 bench[4242]: record %ld ", i);
        memset(msg + len, 'x', (size_t)(119 - len));
        struct record *r = record_new(msg, 119);
        r->recv_us = (int64_t)time(NULL) * 1000000;
        r->pid = 4242;
        r->flags |= RECORD_F_HAS_CREDS;
        syslog_parse(r, &po);
        budget_charge(&budget, record_footprint(r));
        chan_send(tx, &r);
    }
    chan_sender_drop(tx);
    struct writer *w = writer_open(&cfg, &st, rx, &budget, err, sizeof(err));
    if (w == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double t0 = now_s();
    writer_start(w);
    uint64_t lost = writer_join(w);
    double secs = now_s() - t0;
    struct stat sb;
    stat(out, &sb);
    writer_free(w);
    printf("writer format=%s fsync=%s msgs=%ld secs=%.3f rate=%.0f bytes=%lld lost=%llu\n",
           format, fsync_mode, n, secs, (double)n / secs, (long long)sb.st_size,
           (unsigned long long)lost);
    unlink(out);
    unlink(conf);
    rmdir(dir);
    stats_free(&st);
    config_free(&cfg);
    return lost == 0 ? 0 : 1;
}
