/*
 * format_bench: nanoseconds per record for each output format.
 *
 * The records look like what glibc's syslog(3) sends over /dev/log: an
 * RFC 3164 line of about 120 bytes with a tag, a pid and a plain ASCII
 * message, received with peer credentials.  The receive time advances a few
 * microseconds per record, as under load, so the timestamp cache rolls over
 * seconds and minutes as it would in the daemon.  The output buffer is
 * emptied whenever it passes 64 KiB, as the writer does after each write(2).
 * The "ascii" records keep the RECORD_F_PRINTABLE mark record_new() gives
 * them, as the ingest threads do, so that column is the daemon's path for
 * plain text; "utf8" goes through the escapers.
 *
 * Usage: format_bench [records [size]]   (default 5,000,000 per format, 120
 * bytes per line; W4 of bench/e2e sends 2,000)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "format.h"
#include "record.h"

#define NREC 256
#define MIN_SIZE 120
#define MAX_SIZE 65536

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static struct span find(const struct record *r, const char *what)
{
    const char *p = memmem(r->data, r->len, what, strlen(what));
    struct span s = { (uint32_t)(p - r->data), (uint32_t)strlen(what) };
    return s;
}

/* One glibc-style line of exactly `size` bytes, the message padded with
 * dots; utf8 puts some accented and CJK text in the message. */
static struct record *make_record(int i, int utf8, int size)
{
    char line[MAX_SIZE], app[32], pid[16], msg[MAX_SIZE];
    snprintf(app, sizeof(app), "app%d", i % 7);
    snprintf(pid, sizeof(pid), "%d", 1000 + i % 3000);
    int head = snprintf(line, sizeof(line), "<13>Nov 26 11:03:56 %s[%s]: ", app,
                        pid);
    int room = size - head;
    if (utf8)
        snprintf(msg, sizeof(msg), "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac "
                 "request %d served in %d ms, status=200 \xe2\x9c\x93 "
                 "bytes=123456 path=/api/v1/items", i, i % 97);
    else
        snprintf(msg, sizeof(msg), "request %d served in %d ms, status=200 "
                 "bytes=123456 path=/api/v1/items/%d?user=alice&sort=name",
                 i, i % 97, i);
    size_t mlen = strlen(msg);
    while ((int)mlen < room)
        msg[mlen++] = '.';
    mlen = (size_t)room;
    memcpy(line + head, msg, mlen);
    size_t len = (size_t)head + mlen;

    struct record *r = record_new(line, len);
    if (r == NULL)
        abort();
    r->syntax = RECORD_RFC3164;
    r->timestamp = find(r, "Nov 26 11:03:56");
    r->app = find(r, app);
    r->procid = find(r, pid);
    r->msg.off = (uint32_t)head;
    r->msg.len = (uint32_t)mlen;
    r->flags |= RECORD_F_HAS_TIME | RECORD_F_HAS_CREDS; /* keeps record_new()'s PRINTABLE */
    r->ts_us = 1795691036000000LL;
    r->pid = 1000 + i % 3000;
    r->uid = 1000;
    r->gid = 1000;
    return r;
}

static double run(enum format_kind kind, struct record **recs, long n,
                  size_t *bytes)
{
    struct format_ctx ctx;
    struct buf out = BUF_INIT;
    if (format_ctx_init(&ctx, kind, FORMAT_TS_MESSAGE, "bench-host") != 0)
        abort();
    int64_t recv = 1795691036000000LL;
    *bytes = 0;
    /* Warm up: grow the buffer and fill the caches. */
    for (int i = 0; i < NREC; i++)
        if (format_record(&ctx, recs[i], &out) != 0)
            abort();
    buf_reset(&out);

    int64_t t0 = now_ns();
    for (long i = 0; i < n; i++) {
        struct record *r = recs[i % NREC];
        recv += 3;
        r->recv_us = recv;
        r->ts_us = recv - 1500;
        if (format_record(&ctx, r, &out) != 0)
            abort();
        if (out.len > 65536) {
            *bytes += out.len;
            buf_reset(&out);
        }
    }
    int64_t t1 = now_ns();
    *bytes += out.len;
    buf_free(&out);
    return (double)(t1 - t0) / (double)n;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 5000000;
    int size = argc > 2 ? atoi(argv[2]) : 120;
    if (n < 1 || size < MIN_SIZE || size > MAX_SIZE) {
        fprintf(stderr, "usage: format_bench [records [size]]  (size %d..%d)\n", MIN_SIZE,
                MAX_SIZE);
        return 2;
    }
    struct record *ascii[NREC], *utf8[NREC];
    for (int i = 0; i < NREC; i++) {
        ascii[i] = make_record(i, 0, size);
        utf8[i] = make_record(i, 1, size);
    }
    printf("format_bench: %ld records of %u bytes per run (TZ=%s)\n", n,
           ascii[0]->len, getenv("TZ") ? getenv("TZ") : "(system)");
    printf("%-12s %12s %12s %14s\n", "format", "ascii ns/rec", "utf8 ns/rec",
           "ascii B/line");
    for (int k = FORMAT_TRADITIONAL; k <= FORMAT_RAW; k++) {
        size_t b1, b2;
        double a = run((enum format_kind)k, ascii, n, &b1);
        double u = run((enum format_kind)k, utf8, n, &b2);
        printf("%-12s %12.1f %12.1f %14.1f\n", format_name(k), a, u,
               (double)b1 / (double)n);
    }
    for (int i = 0; i < NREC; i++) {
        record_free(ascii[i]);
        record_free(utf8[i]);
    }
    return 0;
}
