/*
 * ingest_bench: records per second that ingest alone sustains.
 *
 * The real ingest (daemon/ingest.c: listeners, libuv loops, framing,
 * parsing) feeds a channel whose only consumer frees what it receives.
 * Client threads send 120-byte RFC 3164 messages: over stream, 64 messages
 * per write(); over datagram, 64 datagrams per sendmmsg(), so that the
 * clients' own system calls weigh as little as they can.
 *
 *   ingest_bench [threads] [stream|dgram] [clients] [messages per client]
 *
 * Prints one line: "ingest threads=T type=X msgs=N secs=S rate=R".
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "chan.h"
#include "config.h"
#include "ingest.h"
#include "record.h"
#include "stats.h"

#define MSG_SIZE 120
#define PER_WRITE 64

static char sock_path[108];
static int dgram;
static long per_client;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A message of exactly MSG_SIZE bytes, newline included. */
static void make_msg(char *out, int client, long seq)
{
    int n = snprintf(out, MSG_SIZE, "<13>Nov 26 11:03:56 bench[%d]: client %d seq %ld ", client,
                     client, seq);
    memset(out + n, 'x', (size_t)(MSG_SIZE - 1 - n));
    out[MSG_SIZE - 1] = '\n';
}

static void *client_main(void *arg)
{
    int id = (int)(long)arg;
    int fd = socket(AF_UNIX, dgram ? SOCK_DGRAM : SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, sock_path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        perror("client connect");
        exit(1);
    }
    static __thread char buf[PER_WRITE * MSG_SIZE];
    struct mmsghdr mm[PER_WRITE];
    struct iovec iov[PER_WRITE];
    for (long seq = 0; seq < per_client; seq += PER_WRITE) {
        int k = per_client - seq < PER_WRITE ? (int)(per_client - seq) : PER_WRITE;
        for (int i = 0; i < k; i++)
            make_msg(buf + i * MSG_SIZE, id, seq + i);
        if (dgram) {
            for (int i = 0; i < k; i++) {
                iov[i] = (struct iovec){buf + i * MSG_SIZE, MSG_SIZE};
                memset(&mm[i], 0, sizeof(mm[i]));
                mm[i].msg_hdr.msg_iov = &iov[i];
                mm[i].msg_hdr.msg_iovlen = 1;
            }
            for (int sent = 0; sent < k;) {
                int r = sendmmsg(fd, mm + sent, (unsigned)(k - sent), 0);
                if (r < 0 && errno != EINTR) {
                    perror("sendmmsg");
                    exit(1);
                }
                sent += r > 0 ? r : 0;
            }
        } else {
            size_t len = (size_t)k * MSG_SIZE, off = 0;
            while (off < len) {
                ssize_t w = write(fd, buf + off, len - off);
                if (w < 0 && errno != EINTR) {
                    perror("write");
                    exit(1);
                }
                off += w > 0 ? (size_t)w : 0;
            }
        }
    }
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    dgram = argc > 2 && strcmp(argv[2], "dgram") == 0;
    int clients = argc > 3 ? atoi(argv[3]) : 4;
    per_client = argc > 4 ? atol(argv[4]) : 250000;

    char dir[] = "/tmp/lrbenchXXXXXX";
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(sock_path, sizeof(sock_path), "%s/in.sock", dir);
    char conf[256];
    snprintf(conf, sizeof(conf), "%s/bench.conf", dir);
    FILE *f = fopen(conf, "w");
    fprintf(f, "threads = %d;\nlisten = ( { path = \"%s\"; type = \"%s\"; } );\n"
               "outputs = ( { path = \"%s/unused.log\"; } );\n",
            threads, sock_path, dgram ? "dgram" : "stream", dir);
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
    chan_bounded((size_t)cfg.queue_capacity, sizeof(struct record *), &tx, &rx);
    struct budget budget;
    budget_init(&budget, (size_t)cfg.queue_max_bytes);
    struct ingest *in = ingest_open(&cfg, &st, &budget, err, sizeof(err));
    if (in == NULL || ingest_start(in, tx) != 0) {
        fprintf(stderr, "ingest: %s\n", err);
        return 1;
    }
    long total = per_client * clients;
    pthread_t t[64];
    double t0 = now_s();
    for (int i = 0; i < clients; i++)
        pthread_create(&t[i], NULL, client_main, (void *)(long)i);
    struct record *batch[512];
    long got = 0;
    while (got < total) {
        size_t n = 0;
        if (chan_recv_many(rx, batch, 512, &n) != CHAN_OK)
            break;
        size_t bytes = 0;
        for (size_t i = 0; i < n; i++) {
            bytes += record_footprint(batch[i]);
            record_free(batch[i]);
        }
        budget_credit(&budget, bytes);
        got += (long)n;
    }
    double secs = now_s() - t0;
    for (int i = 0; i < clients; i++)
        pthread_join(t[i], NULL);
    ingest_stop(in);
    chan_sender_drop(tx);
    struct record *r;
    while (chan_recv(rx, &r) == CHAN_OK) {
        budget_credit(&budget, record_footprint(r));
        record_free(r);
    }
    chan_receiver_drop(rx);
    ingest_free(in);
    stats_free(&st);
    config_free(&cfg);
    unlink(conf);
    rmdir(dir);
    printf("ingest threads=%d type=%s msgs=%ld secs=%.3f rate=%.0f\n", threads,
           dgram ? "dgram" : "stream", got, secs, (double)got / secs);
    return got == total ? 0 : 1;
}
