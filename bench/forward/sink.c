/*
 * sink: the no-parse TCP collector of the forwarding benchmark.
 *
 *   sink [-r] [-p PORT] -n EXPECTED [-T TIMEOUT_S]
 *
 * Listens on 127.0.0.1 (PORT, or a free port; printed first as "port=P"), reads
 * every connection with epoll and counts the records that arrive by their
 * loadgen token ("lg="), whatever the framing, so that it is not the
 * limit.  With -r it is a minimal RELP server instead (lib/relp.c's
 * parser): it answers open and every syslog frame with "200 OK", and
 * counts frames.  Once EXPECTED records have arrived it prints
 * "end_ns=E count=N first_ns=F" (CLOCK_MONOTONIC; F: when the first byte
 * arrived) and goes on serving until SIGTERM,
 * so that the daemon under test can stop cleanly.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "relp.h"

#define MAXC 64
#define RBUF (1 << 20)

struct conn {
    int fd;
    char tail[2]; /* the last bytes of the previous read, for a split "lg=" */
    size_t ntail;
    struct relp_parser rp;
    char *out;
    size_t outlen, outcap;
};

static long long count, expected;
static int relp_mode;
static volatile sig_atomic_t stop;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static void count_tokens(struct conn *c, const char *p, size_t n)
{
    char joint[8];
    size_t j = 0;
    for (size_t i = 0; i < c->ntail; i++)
        joint[j++] = c->tail[i];
    for (size_t i = 0; i < n && i < 2; i++)
        joint[j++] = p[i];
    if (memmem(joint, j, "lg=", 3) != NULL && c->ntail > 0)
        count++;
    for (const char *q = p, *e = p + n; (q = memmem(q, (size_t)(e - q), "lg=", 3)) != NULL; q += 3)
        count++;
    c->ntail = n >= 2 ? 2 : n;
    memcpy(c->tail, p + n - c->ntail, c->ntail);
}

static void out_put(struct conn *c, size_t need)
{
    if (c->outlen + need > c->outcap) {
        c->outcap = (c->outlen + need) * 2;
        c->out = realloc(c->out, c->outcap);
        if (c->out == NULL)
            abort();
    }
}

static int relp_in(struct conn *c, const char *p, size_t n)
{
    size_t off = 0;
    while (off < n) {
        size_t used;
        struct relp_frame fr;
        int rc = relp_parser_next(&c->rp, p + off, n - off, &used, &fr);
        off += used;
        if (rc == 0)
            break;
        if (rc < 0) {
            fprintf(stderr, "sink: relp: %s\n", strerror(-rc));
            return -1;
        }
        out_put(c, 512);
        ssize_t w;
        if (strcmp(fr.command, "open") == 0) {
            char ans[256];
            ssize_t a = relp_open_answer(ans, sizeof(ans), "sink");
            /* the answer already starts with "200 OK\n" */
            w = relp_encode(c->out + c->outlen, 512, fr.txnr, "rsp", ans, (size_t)a);
        } else {
            if (strcmp(fr.command, "syslog") == 0)
                count++;
            w = relp_encode_rsp(c->out + c->outlen, 512, fr.txnr, 200, "OK", NULL, 0);
        }
        if (w < 0) {
            fprintf(stderr, "sink: relp answer to %s: %s\n", fr.command, strerror((int)-w));
            return -1;
        }
        c->outlen += (size_t)w;
    }
    size_t done = 0;
    while (done < c->outlen) {
        ssize_t w = write(c->fd, c->out + done, c->outlen - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        done += (size_t)w;
    }
    c->outlen = 0;
    return 0;
}

int main(int argc, char **argv)
{
    int opt, timeout = 300, port = 0;
    while ((opt = getopt(argc, argv, "rp:n:T:")) != -1) {
        switch (opt) {
        case 'r': relp_mode = 1; break;
        case 'p': port = atoi(optarg); break;
        case 'n': expected = atoll(optarg); break;
        case 'T': timeout = atoi(optarg); break;
        default: fprintf(stderr, "usage: sink [-r] [-p PORT] -n EXPECTED [-T S]\n"); return 2;
        }
    }
    signal(SIGTERM, on_term);
    signal(SIGPIPE, SIG_IGN);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    if (bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(ls, 64) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &al) != 0) {
        perror("sink: listen");
        return 1;
    }
    printf("port=%d\n", ntohs(a.sin_port));
    fflush(stdout);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    char *buf = malloc(RBUF);
    int reported = 0;
    int64_t first_ns = 0;
    int64_t give_up = now_ns() + (int64_t)timeout * 1000000000;
    while (!stop && now_ns() < give_up) {
        struct epoll_event evs[MAXC];
        int k = epoll_wait(ep, evs, MAXC, 200);
        for (int i = 0; i < k; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c == NULL) {
                int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                    continue;
                /* Answers go at once: the sink must not be the limit. */
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                c = calloc(1, sizeof(*c));
                c->fd = fd;
                relp_parser_init(&c->rp, RELP_DATALEN_MAX);
                struct epoll_event ce = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
                continue;
            }
            ssize_t n = read(c->fd, buf, RBUF);
            if (n > 0 && first_ns == 0)
                first_ns = now_ns();
            if (n <= 0 || (relp_mode ? relp_in(c, buf, (size_t)n) : (count_tokens(c, buf, (size_t)n), 0)) != 0) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                relp_parser_free(&c->rp);
                free(c->out);
                free(c);
            }
        }
        if (!reported && count >= expected) {
            printf("end_ns=%lld count=%lld first_ns=%lld\n", (long long)now_ns(), count,
                   (long long)first_ns);
            fflush(stdout);
            reported = 1;
        }
    }
    if (!reported) {
        printf("timeout count=%lld\n", count);
        return 3;
    }
    return 0;
}
