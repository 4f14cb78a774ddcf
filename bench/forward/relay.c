/*
 * relay: the floor of the forwarding benchmark.
 *
 *   relay -s UNIX_PATH -p TCP_PORT
 *
 * One thread: epoll over a listening Unix stream socket and its clients;
 * each read goes into one buffer, only a client's tail after its last
 * newline held back (so that lines do not interleave), and the buffer is
 * written to one TCP connection to 127.0.0.1:TCP_PORT with blocking
 * writes.  No parsing, no framing, no disk: what any forwarder must do at
 * least.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAXC 64
#define OBUF (1 << 20)
#define TAILMAX 65536

struct client {
    int fd;
    char tail[TAILMAX];
    size_t ntail;
};

static volatile sig_atomic_t stop;
static char obuf[OBUF + TAILMAX];
static size_t olen;
static int tcp;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static void flush_out(void)
{
    size_t done = 0;
    while (done < olen) {
        ssize_t w = write(tcp, obuf + done, olen - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            perror("relay: write");
            exit(1);
        }
        done += (size_t)w;
    }
    olen = 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int port = 0, opt;
    while ((opt = getopt(argc, argv, "s:p:")) != -1) {
        if (opt == 's')
            path = optarg;
        else if (opt == 'p')
            port = atoi(optarg);
    }
    if (path == NULL || port == 0) {
        fprintf(stderr, "usage: relay -s PATH -p PORT\n");
        return 2;
    }
    signal(SIGTERM, on_term);
    tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(tcp, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("relay: connect");
        return 1;
    }
    int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un u = {.sun_family = AF_UNIX};
    snprintf(u.sun_path, sizeof(u.sun_path), "%s", path);
    unlink(path);
    if (bind(ls, (struct sockaddr *)&u, sizeof(u)) != 0 || listen(ls, 128) != 0) {
        perror("relay: listen");
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    while (!stop) {
        struct epoll_event evs[MAXC];
        int k = epoll_wait(ep, evs, MAXC, 200);
        for (int i = 0; i < k; i++) {
            struct client *c = evs[i].data.ptr;
            if (c == NULL) {
                int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                    continue;
                c = calloc(1, sizeof(*c));
                c->fd = fd;
                struct epoll_event ce = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
                continue;
            }
            /* The client's held-back tail first, then what it sent now. */
            memcpy(obuf + olen, c->tail, c->ntail);
            size_t at = olen + c->ntail;
            c->ntail = 0;
            ssize_t n = read(c->fd, obuf + at, OBUF - (at < OBUF ? at : OBUF));
            if (n <= 0) {
                olen = at; /* a final partial line goes out as it is */
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                free(c);
                continue;
            }
            size_t end = at + (size_t)n;
            size_t last = end;
            while (last > olen && obuf[last - 1] != '\n')
                last--;
            c->ntail = end - last;
            if (c->ntail > TAILMAX)
                c->ntail = 0, last = end;
            memcpy(c->tail, obuf + last, c->ntail);
            olen = last;
            if (olen >= OBUF / 2)
                flush_out();
        }
        if (k < MAXC)
            flush_out();
    }
    flush_out();
    unlink(path);
    return 0;
}
