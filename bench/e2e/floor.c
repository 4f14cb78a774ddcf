/*
 * floor: the floor of the end-to-end benchmark (bench/e2e/run.py).
 *
 * The least a logging daemon must do: take bytes from its sockets and put
 * them in a file, with no parsing, no queue and no second thread.  What it
 * reaches is what the machine and the clients allow; each daemon is shown
 * as a ratio to it.
 *
 *   floor -o FILE [-s STREAM_PATH] [-d DGRAM_PATH] [-f FSYNC_MS] [-t] [-k CERT,KEY]
 *
 * One thread, one epoll set: the listening stream socket, its connections,
 * the datagram socket, a signalfd and (with -f) a timerfd.  Stream bytes are
 * read in large slices straight into one output buffer; only the tail after
 * a connection's last newline is held back (so lines from different clients
 * do not interleave).  The buffer goes out in one write(2) when it is large
 * or when nothing more is ready.  Datagrams are taken 512 at a time with
 * recvmmsg(2) and written with one writev(2), a newline after each.  With
 * -f, the file is fsync'ed every FSYNC_MS milliseconds.
 *
 * -t: the write(2) calls move to a second thread, the shape of a daemon
 * with a writer thread (bench/e2e/README.md, "W3 and the second thread").
 * The reader then copies datagrams into the output buffer like stream
 * bytes, and hands a full buffer over by swapping it with the writer's
 * empty one; it waits only when the writer still holds the previous one
 * and the reader's own buffer is full, or before it sleeps.
 *
 * -k CERT,KEY: the stream connections speak TLS (W7): OpenSSL on the
 * non-blocking socket itself (SSL_set_fd, read-ahead on), the handshake
 * driven by the connection's readiness, then SSL_read of every record
 * ready straight into the output buffer.  No certificate of the client is
 * asked for, no memory BIOs, no second copy: what TLS costs by itself.
 *
 * Prints "ready" when it listens.  SIGTERM or SIGINT: stop accepting, read
 * what every connection and the datagram socket still hold, write it (an
 * unterminated last line gets a newline), exit 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define OUT_CAP (8u << 20)     /* output buffer */
#define OUT_FLUSH (1u << 20)   /* write once it holds this much */
#define READ_SLICE (1u << 20)  /* at most this much per read() */
#define PART_MAX (64u << 10)   /* a tail longer than this goes out as it is */
#define DGRAM_BATCH 512
#define DGRAM_SLOT 8192

struct conn {
    int fd;
    SSL *ssl; /* -k: the connection's TLS session */
    size_t plen;
    char part[PART_MAX];
};

static int out_fd;
static char *out;
static size_t out_len;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(out_fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die("write");
        }
        p += w;
        n -= (size_t)w;
    }
}

/* -t: the writer thread and the buffer handed to it (wlen 0: it may take
 * the next). */
static bool threaded;
static pthread_t wthread;
static pthread_mutex_t wmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wcv = PTHREAD_COND_INITIALIZER;
static char *wbuf;
static size_t wlen;
static bool wstop;

static void *writer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&wmu);
    for (;;) {
        while (wlen == 0 && !wstop)
            pthread_cond_wait(&wcv, &wmu);
        if (wlen == 0)
            break;
        char *p = wbuf; /* the reader swaps it only once wlen is 0 again */
        size_t n = wlen;
        pthread_mutex_unlock(&wmu);
        write_all(p, n);
        pthread_mutex_lock(&wmu);
        wlen = 0;
        pthread_cond_broadcast(&wcv);
    }
    pthread_mutex_unlock(&wmu);
    return NULL;
}

/* Write what the buffer holds; with -t hand it to the writer.  Unless
 * wait, a writer still busy with the previous buffer is left alone and
 * the bytes stay (the caller has room for its next read). */
static void flush_out_maybe(bool wait)
{
    if (!threaded) {
        write_all(out, out_len);
        out_len = 0;
        return;
    }
    pthread_mutex_lock(&wmu);
    if (wlen > 0 && !wait) {
        pthread_mutex_unlock(&wmu);
        return;
    }
    while (wlen > 0)
        pthread_cond_wait(&wcv, &wmu);
    char *t = wbuf;
    wbuf = out;
    wlen = out_len;
    out = t;
    out_len = 0;
    pthread_cond_broadcast(&wcv);
    pthread_mutex_unlock(&wmu);
}

static void flush_out(void)
{
    flush_out_maybe(true);
}

/* -t: wait until the writer has written all it was given. */
static void writer_drain(void)
{
    if (!threaded)
        return;
    pthread_mutex_lock(&wmu);
    while (wlen > 0)
        pthread_cond_wait(&wcv, &wmu);
    pthread_mutex_unlock(&wmu);
}

/* "inet:PORT": TCP or UDP on 127.0.0.1 (the network workloads). */
static int listen_inet(int port, int type)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    int on = 1, buf = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    if (type == SOCK_DGRAM && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)) != 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        die("bind");
    if (type == SOCK_STREAM && listen(fd, 4096) != 0)
        die("listen");
    return fd;
}

static int listen_on(const char *path, int type)
{
    if (strncmp(path, "inet:", 5) == 0)
        return listen_inet(atoi(path + 5), type);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "floor: socket path too long\n");
        exit(2);
    }
    strcpy(sa.sun_path, path);
    unlink(path);
    int fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        die("bind");
    chmod(path, 0666);
    if (type == SOCK_STREAM && listen(fd, 1024) != 0)
        die("listen");
    return fd;
}

static SSL_CTX *tls_ctx;

/* -k: finish the handshake, then take every record ready, up to n bytes.
 * Like read(2): the byte count, 0 at the end (close_notify or an error),
 * -1 with errno EAGAIN when nothing is ready. */
static ssize_t tls_read(struct conn *c, char *p, size_t n)
{
    if (!SSL_is_init_finished(c->ssl)) {
        int r = SSL_accept(c->ssl);
        if (r != 1) {
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                errno = EAGAIN;
                return -1;
            }
            return 0;
        }
    }
    size_t got = 0;
    while (got < n) {
        size_t k = 0;
        if (SSL_read_ex(c->ssl, p + got, n - got, &k) == 1) {
            got += k;
            continue;
        }
        int e = SSL_get_error(c->ssl, 0);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break;
        return got > 0 ? (ssize_t)got : 0; /* the end; what came first counts */
    }
    if (got == 0) {
        errno = EAGAIN;
        return -1;
    }
    return (ssize_t)got;
}

/* One read from a connection: 1 if it brought data, -1 if nothing was
 * ready, 0 once the connection is closed. */
static int conn_read(struct conn *c)
{
    if (OUT_CAP - out_len < READ_SLICE + c->plen + 1)
        flush_out();
    char *base = out + out_len;
    memcpy(base, c->part, c->plen);
    ssize_t n = c->ssl ? tls_read(c, base + c->plen, READ_SLICE)
                       : read(c->fd, base + c->plen, READ_SLICE);
    if (n < 0)
        return (errno == EAGAIN || errno == EINTR) ? -1 : 0;
    if (n == 0)
        return 0;
    size_t have = c->plen + (size_t)n;
    char *nl = memrchr(base + c->plen, '\n', (size_t)n);
    size_t whole = nl ? (size_t)(nl - base) + 1 : 0;
    size_t tail = have - whole;
    if (tail > PART_MAX) { /* no newline in sight: let it go as it is */
        whole = have;
        tail = 0;
    }
    memmove(c->part, base + whole, tail);
    c->plen = tail;
    out_len += whole;
    return 1;
}

/* A final unterminated line counts: write it with a newline. */
static void conn_finish(struct conn *c)
{
    if (c->plen == 0)
        return;
    if (OUT_CAP - out_len < c->plen + 1)
        flush_out();
    memcpy(out + out_len, c->part, c->plen);
    out_len += c->plen;
    out[out_len++] = '\n';
    c->plen = 0;
}

static void conn_close(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->ssl) {
        SSL_shutdown(c->ssl); /* our close_notify; the client waits for our close */
        SSL_free(c->ssl);
    }
    close(c->fd);
    free(c);
}

static struct mmsghdr mm[DGRAM_BATCH];
static struct iovec rx_iov[DGRAM_BATCH];
static struct iovec tx_iov[2 * DGRAM_BATCH];
static char *dgram_buf;

/* Take what the datagram socket holds, up to one batch.  Returns the count. */
static int dgram_read(int fd)
{
    for (int i = 0; i < DGRAM_BATCH; i++) {
        rx_iov[i] = (struct iovec){dgram_buf + (size_t)i * DGRAM_SLOT, DGRAM_SLOT};
        memset(&mm[i].msg_hdr, 0, sizeof(mm[i].msg_hdr));
        mm[i].msg_hdr.msg_iov = &rx_iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    int n = 0;
    for (;;) {
        int r = recvmmsg(fd, mm + n, DGRAM_BATCH - n, MSG_DONTWAIT, NULL);
        if (r <= 0)
            break;
        n += r;
        if (n == DGRAM_BATCH)
            break;
    }
    if (n <= 0)
        return 0;
    if (threaded) {
        size_t need = 0;
        for (int i = 0; i < n; i++)
            need += mm[i].msg_len + 1;
        if (OUT_CAP - out_len < need)
            flush_out();
        for (int i = 0; i < n; i++) {
            size_t len = mm[i].msg_len;
            const char *p = rx_iov[i].iov_base;
            if (len > 0 && p[len - 1] == '\n')
                len--;
            memcpy(out + out_len, p, len);
            out_len += len;
            out[out_len++] = '\n';
        }
        flush_out_maybe(false);
        return n;
    }
    if (out_len > 0)
        flush_out();
    static char nl = '\n';
    int k = 0;
    for (int i = 0; i < n; i++) {
        size_t len = mm[i].msg_len;
        const char *p = rx_iov[i].iov_base;
        if (len > 0 && p[len - 1] == '\n')
            len--;
        tx_iov[k++] = (struct iovec){(void *)p, len};
        tx_iov[k++] = (struct iovec){&nl, 1};
    }
    /* writev may write less than asked: finish by hand. */
    ssize_t w = writev(out_fd, tx_iov, k);
    if (w < 0)
        die("writev");
    size_t done = (size_t)w;
    for (int i = 0; i < k; i++) {
        if (done >= tx_iov[i].iov_len) {
            done -= tx_iov[i].iov_len;
            continue;
        }
        write_all((char *)tx_iov[i].iov_base + done, tx_iov[i].iov_len - done);
        done = 0;
    }
    return n;
}

int main(int argc, char **argv)
{
    const char *out_path = NULL, *stream_path = NULL, *dgram_path = NULL;
    long fsync_ms = 0;
    int opt;
    const char *tls_files = NULL;
    while ((opt = getopt(argc, argv, "o:s:d:f:tk:")) != -1) {
        switch (opt) {
        case 'o': out_path = optarg; break;
        case 's': stream_path = optarg; break;
        case 'd': dgram_path = optarg; break;
        case 'f': fsync_ms = atol(optarg); break;
        case 't': threaded = true; break;
        case 'k': tls_files = optarg; break;
        default:
            fprintf(stderr, "usage: floor -o FILE [-s STREAM_PATH] [-d DGRAM_PATH] [-f FSYNC_MS] [-t]"
                            " [-k CERT,KEY]\n");
            return 2;
        }
    }
    if (!out_path || (!stream_path && !dgram_path)) {
        fprintf(stderr, "floor: -o and one of -s, -d are required\n");
        return 2;
    }
    if (tls_files) {
        char cert[4096];
        const char *comma = strchr(tls_files, ',');
        if (!comma || (size_t)(comma - tls_files) >= sizeof(cert)) {
            fprintf(stderr, "floor: -k CERT,KEY\n");
            return 2;
        }
        memcpy(cert, tls_files, (size_t)(comma - tls_files));
        cert[comma - tls_files] = '\0';
        tls_ctx = SSL_CTX_new(TLS_server_method());
        if (!tls_ctx || SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION) != 1 ||
            SSL_CTX_use_certificate_chain_file(tls_ctx, cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(tls_ctx, comma + 1, SSL_FILETYPE_PEM) != 1) {
            ERR_print_errors_fp(stderr);
            return 1;
        }
        SSL_CTX_set_read_ahead(tls_ctx, 1);
    }
    out_fd = open(out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out_fd < 0)
        die(out_path);
    out = malloc(OUT_CAP);
    dgram_buf = malloc((size_t)DGRAM_BATCH * DGRAM_SLOT);
    if (!out || !dgram_buf)
        die("malloc");
    if (threaded) {
        wbuf = malloc(OUT_CAP);
        if (!wbuf)
            die("malloc");
    }

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    /* After the mask: SIGTERM must reach the signalfd, not the writer. */
    if (threaded && pthread_create(&wthread, NULL, writer_main, NULL) != 0)
        die("pthread_create");
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    int lfd = -1, dfd = -1, tfd = -1;
    struct epoll_event ev = {.events = EPOLLIN};
    /* data.ptr: NULL for the signalfd; the listen, dgram and timer fds are
     * told apart by these markers; anything else is a struct conn. */
    static char mark_listen, mark_dgram, mark_timer;
    ev.data.ptr = NULL;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
    if (stream_path) {
        lfd = listen_on(stream_path, SOCK_STREAM);
        ev.data.ptr = &mark_listen;
        epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    }
    if (dgram_path) {
        dfd = listen_on(dgram_path, SOCK_DGRAM);
        int big = 8 << 20;
        setsockopt(dfd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
        ev.data.ptr = &mark_dgram;
        epoll_ctl(ep, EPOLL_CTL_ADD, dfd, &ev);
    }
    if (fsync_ms > 0) {
        tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        struct itimerspec its = {
            .it_interval = {fsync_ms / 1000, (fsync_ms % 1000) * 1000000},
            .it_value = {fsync_ms / 1000, (fsync_ms % 1000) * 1000000},
        };
        timerfd_settime(tfd, 0, &its, NULL);
        ev.data.ptr = &mark_timer;
        epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    }
    printf("ready\n");
    fflush(stdout);

    struct conn **conns = NULL; /* every open connection, for the drain */
    size_t nconns = 0, capconns = 0;
    struct epoll_event evs[256];
    int stopping = 0;
    while (!stopping) {
        int n = epoll_wait(ep, evs, 256, 0);
        if (n == 0) { /* nothing ready: write what we hold, then sleep */
            if (out_len > 0)
                flush_out();
            n = epoll_wait(ep, evs, 256, -1);
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == NULL) {
                stopping = 1;
            } else if (p == &mark_listen) {
                for (;;) {
                    int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (cfd < 0)
                        break;
                    struct conn *c = malloc(sizeof(*c));
                    if (!c)
                        die("malloc");
                    c->fd = cfd;
                    c->plen = 0;
                    c->ssl = NULL;
                    if (tls_ctx && (!(c->ssl = SSL_new(tls_ctx)) || SSL_set_fd(c->ssl, cfd) != 1))
                        die("SSL_new");
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
                    if (nconns == capconns) {
                        capconns = capconns ? 2 * capconns : 64;
                        conns = realloc(conns, capconns * sizeof(*conns));
                    }
                    conns[nconns++] = c;
                }
            } else if (p == &mark_dgram) {
                dgram_read(dfd);
            } else if (p == &mark_timer) {
                uint64_t ticks;
                if (read(tfd, &ticks, sizeof(ticks)) > 0) {
                    if (out_len > 0)
                        flush_out();
                    writer_drain();
                    fdatasync(out_fd);
                }
            } else {
                struct conn *c = p;
                if (conn_read(c) == 0) {
                    conn_finish(c);
                    for (size_t j = 0; j < nconns; j++)
                        if (conns[j] == c) {
                            conns[j] = conns[--nconns];
                            break;
                        }
                    conn_close(ep, c);
                }
            }
        }
        if (out_len >= OUT_FLUSH)
            flush_out_maybe(false);
    }

    /* Stop: no new connections; drain what every connection and the
     * datagram socket still hold. */
    if (lfd >= 0)
        close(lfd);
    for (size_t j = 0; j < nconns; j++) {
        while (conn_read(conns[j]) == 1)
            ;
        conn_finish(conns[j]);
        conn_close(ep, conns[j]);
    }
    if (dfd >= 0)
        while (dgram_read(dfd) > 0)
            ;
    if (out_len > 0)
        flush_out();
    if (threaded) {
        pthread_mutex_lock(&wmu);
        wstop = true;
        pthread_cond_broadcast(&wcv);
        pthread_mutex_unlock(&wmu);
        pthread_join(wthread, NULL);
    }
    if (fsync_ms > 0)
        fdatasync(out_fd);
    close(out_fd);
    if (stream_path)
        unlink(stream_path);
    if (dgram_path)
        unlink(dgram_path);
    return 0;
}
