/*
 * relp_blast: a RELP client for benchmarks.  Connects to 127.0.0.1:PORT,
 * opens a session, sends N syslog frames of SIZE bytes with at most WINDOW
 * outstanding (as omrelp's windowSize), and prints the seconds from the
 * first frame to the last "rsp 200".  One thread, poll(); lib/relp.c for
 * both directions.  Used by bench/run-relp.py.
 *
 *     relp_blast PORT N [SIZE=120] [WINDOW=128]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "relp.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "relp_blast: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Read once and parse every frame: the open's answer counts 1 in *opened
 * (the frames are counted in the result), an rsp 200 to a syslog frame one in *acked.  -1 on EOF or a bad frame. */
static int feed(int fd, struct relp_parser *p, char *in, size_t cap, long *acked)
{
    ssize_t r = read(fd, in, cap);
    int frames = 0;
    if (r <= 0)
        return -1;
    for (size_t off = 0; off < (size_t)r;) {
        size_t used;
        struct relp_frame f;
        int rc = relp_parser_next(p, in + off, (size_t)r - off, &used, &f);
        off += used;
        if (rc < 0)
            return -1;
        if (rc == 0)
            break;
        frames++;
        if (strcmp(f.command, "rsp") == 0 && f.datalen >= 3 && memcmp(f.data, "200", 3) == 0 &&
            f.txnr != 1)
            (*acked)++;
    }
    return frames;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: relp_blast PORT N [SIZE] [WINDOW]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    long n = atol(argv[2]);
    size_t size = argc > 3 ? (size_t)atol(argv[3]) : 120;
    long window = argc > 4 ? atol(argv[4]) : 128;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    static char out[1 << 20], in[1 << 16];
    char offer[128];
    ssize_t ol = relp_open_offer(offer, sizeof(offer), "relp_blast");
    ssize_t k = relp_encode(out, sizeof(out), 1, "open", offer, (size_t)ol);
    if (write(fd, out, (size_t)k) != k)
        die("write open");
    struct relp_parser p;
    relp_parser_init(&p, 1 << 20);
    long acked = 0;
    while (feed(fd, &p, in, sizeof(in), &acked) == 0) {
    }
    char *msg = malloc(size + 1);
    int hl = snprintf(msg, size + 1, "<14>Dec  3 12:00:00 blasthost blast[1]: seq ");
    long sent = 0;
    uint32_t txnr = 1;
    size_t olen = 0, ooff = 0;
    double t0 = now_s();
    while (acked < n) {
        while (sent < n && sent - acked < window && sizeof(out) - olen > size + 64) {
            snprintf(msg + hl, size + 1 - (size_t)hl, "%010ld ", sent);
            size_t ml = strlen(msg);
            memset(msg + ml, 'x', size - ml);
            txnr = relp_txnr_next(txnr);
            k = relp_encode(out + olen, sizeof(out) - olen, txnr, "syslog", msg, size);
            if (k < 0)
                break;
            olen += (size_t)k;
            sent++;
        }
        struct pollfd pf = {fd, (short)(POLLIN | (olen > ooff ? POLLOUT : 0)), 0};
        if (poll(&pf, 1, 60000) <= 0)
            die("poll");
        if (pf.revents & POLLOUT) {
            ssize_t w = write(fd, out + ooff, olen - ooff);
            if (w < 0 && errno != EAGAIN)
                die("write");
            if (w > 0)
                ooff += (size_t)w;
            if (ooff == olen)
                ooff = olen = 0;
        }
        if ((pf.revents & (POLLIN | POLLHUP | POLLERR)) && feed(fd, &p, in, sizeof(in), &acked) < 0) {
            fprintf(stderr, "relp_blast: connection closed after %ld acks\n", acked);
            return 1;
        }
    }
    double t = now_s() - t0;
    printf("acked %ld in %.3f s (%.0f msg/s)\n", acked, t, acked / t);
    k = relp_encode(out, sizeof(out), relp_txnr_next(txnr), "close", NULL, 0);
    if (write(fd, out, (size_t)k) != k) {
    }
    close(fd);
    relp_parser_free(&p);
    free(msg);
    return 0;
}
