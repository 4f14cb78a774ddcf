/*
 * parse_bench: nanoseconds per message for syslog_parse() on a 120-byte
 * logger-style message and on an RFC 5424 message, and for frame_feed() on
 * a stream of such lines.  One thread, hot caches: the cost of the code, not
 * of memory.  Times are the thread's CPU time, so that other work on a busy
 * machine does not count.  Run by bench/run-parse.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frame.h"
#include "record.h"
#include "syslog_parse.h"

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static double bench_parse(const char *name, const char *msg, long n,
                          const struct syslog_parse_opts *o)
{
    struct record *r = record_new(msg, strlen(msg));
    uint64_t sink = 0;
    double t0, ns;

    if (r == NULL)
        exit(1);
    r->recv_us = 1795693147LL * 1000000;
    for (long i = 0; i < n / 10; i++) /* warm up, and fill the tz cache */
        syslog_parse(r, o);
    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        syslog_parse(r, o);
        sink += r->msg.len + (uint64_t)r->ts_us;
    }
    ns = (now_ns() - t0) / n;
    printf("parse %-8s %3zu bytes: %6.1f ns/message (%llu)\n", name,
           strlen(msg), ns, (unsigned long long)(sink & 1));
    record_free(r);
    return ns;
}

static int count_emit(void *ctx, const char *msg, size_t len, unsigned flags)
{
    (void)msg;
    (void)flags;
    *(uint64_t *)ctx += len;
    return 0;
}

static void bench_frame(const char *line, long lines, size_t chunk)
{
    size_t ll = strlen(line);
    char *buf = malloc(ll * lines);
    struct frame f;
    uint64_t bytes = 0;
    double t0, ns;

    if (buf == NULL)
        exit(1);
    for (long i = 0; i < lines; i++)
        memcpy(buf + i * ll, line, ll);
    frame_init(&f, 8192);
    t0 = now_ns();
    for (size_t off = 0; off < ll * lines; off += chunk) {
        size_t c = ll * lines - off < chunk ? ll * lines - off : chunk;
        frame_feed(&f, buf + off, c, count_emit, &bytes);
    }
    frame_finish(&f, count_emit, &bytes);
    ns = (now_ns() - t0) / lines;
    printf("frame LF %zu-byte reads: %6.1f ns/message, %.0f MB/s\n", chunk,
           ns, ll / ns * 1e3);
    frame_free(&f);
    free(buf);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 5000000;
    /* 120 bytes, as glibc's syslog() and logger(1) send them locally. */
    static const char bsd[] =
        "<30>Nov 26 11:39:07 myapp[3793]: connection from 10.1.2.3 port "
        "51234 accepted; session 7 opened for user alice (uid=100)";
    static const char ietf[] =
        "<13>1 2026-11-26T11:39:07.608440+00:00 vm myapp 3793 ID47 "
        "[timeQuality tzKnown=\"1\" isSynced=\"0\"] connection from 10.1.2.3 "
        "accepted";

    setenv("TZ", "EST5EDT,M3.2.0,M11.1.0", 0);
    if (strlen(bsd) != 120)
        fprintf(stderr, "note: the BSD sample is %zu bytes\n", strlen(bsd));
    /* What a network device sends: host, a device's tag, a pid. */
    static const char dev[] =
        "<167>Mar 27 19:06:53 10.20.30.40 sshd(pam_unix)[12750]: session opened "
        "for user alice by (uid=0) from 10.1.2.3 port 51234";
    const struct syslog_parse_opts net = {1, 5, SYSLOG_PARSE_HOSTNAME};
    bench_parse("rfc3164", bsd, n, NULL);
    bench_parse("rfc5424", ietf, n, NULL);
    bench_parse("device", dev, n, NULL);
    bench_parse("dev-net", dev, n, &net);
    char line[sizeof(bsd) + 1];
    memcpy(line, bsd, sizeof(bsd) - 1);
    line[sizeof(bsd) - 1] = '\n';
    line[sizeof(bsd)] = '\0';
    bench_frame(line, n / 5, 65536);
    bench_frame(line, n / 5, 100);
    return 0;
}
