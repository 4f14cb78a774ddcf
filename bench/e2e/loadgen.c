/*
 * loadgen: the load generator of the end-to-end benchmark (bench/e2e/run.py).
 *
 * CLIENTS threads each connect to a Unix socket (stream or datagram) with a
 * blocking socket, so that a daemon that falls behind holds them back, and
 * send MSGS messages of SIZE bytes each.  Every message is RFC 3164 in its
 * local form, which every syslog daemon parses:
 *
 *   <13>Nov 26 11:03:56 loadgen[PID]: lg=CCC.SSSSSSSSS.TTTTTTTTTTTTTTTTTTT xxx...x\n
 *
 * CCC is the client, SSSSSSSSS the message's sequence number in that client
 * (together: a token unique in the run), T the send time (CLOCK_REALTIME,
 * ns, taken just before the write() that carries it).  SIZE counts the whole
 * message with its newline; over octet counting (-o) the message loses its
 * newline and gains a "LEN " prefix; a datagram (-d) is the message without
 * its newline.
 *
 *   loadgen -s PATH|inet:PORT [-d | -o | -t] -c CLIENTS -n MSGS -S SIZE [-k PER_WRITE]
 *           [-r RATE] [-T TIMEOUT_S]
 *
 *   -k  messages per write() (stream; datagram: always one per send())
 *   -r  total messages per second over all clients, paced with
 *       clock_nanosleep (latency mode); 0 (default): as fast as possible.
 *       A client sleeps only when it is more than PACE_SLACK_NS ahead of
 *       its schedule, so at high rates it sends in bursts of at most that
 *       long: a sleep per message costs more than a period of 1-4 us and
 *       would cap the rate at what the sleeps allow (measured: ~80k msg/s
 *       for 4 clients asked for 1M).
 *   -T  give up (exit 3) after this many seconds (default 300)
 *   -t  TLS over TCP (with -s inet:PORT; OpenSSL): one TLS session per
 *       client connection, its handshake done before the clients start
 *       together, so that the timed part is records only.  The server's
 *       certificate is not checked (a benchmark's self-signed one).
 *
 * All clients connect first, then start together.  On success it prints one
 * line: "start_ns=S end_ns=E sent=N cpu_us=C" (S, E: CLOCK_MONOTONIC when
 * the first client was released and when the last write returned; C: the
 * generator's own user+system CPU time) and exits 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define TOKEN_DIGITS_CLIENT 3
#define TOKEN_DIGITS_SEQ 9
#define TOKEN_DIGITS_TIME 19

static const char *sock_path;
static int use_dgram, use_octet, use_tls;
static SSL_CTX *tls_ctx;
static int clients = 4, per_write = 1;
static long msgs = 1000, size = 120;
static double rate;
#define PACE_SLACK_NS 100000 /* 100 us: see -r */
static pthread_barrier_t ready_barrier, go_barrier;
static struct timespec start_ts;

static int64_t ns_of(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static int64_t now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return ns_of(&ts);
}

static void put_digits(char *p, int width, uint64_t v)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* One message slot: its bytes and where the sequence and time digits sit. */
struct layout {
    size_t slot;     /* bytes on the wire for one message */
    size_t seq_off;  /* offset of the sequence digits */
    size_t time_off; /* offset of the time digits */
};

static struct layout build_template(char *out, int client)
{
    char stamp[32];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);

    long body = size - 1; /* the message without its newline */
    char prefix[32] = "";
    if (use_octet)
        snprintf(prefix, sizeof(prefix), "%ld ", body);
    int head = snprintf(out, 256, "%s<13>%s loadgen[%d]: lg=%0*d.", prefix, stamp, (int)getpid(),
                        TOKEN_DIGITS_CLIENT, client);
    struct layout lo;
    lo.seq_off = (size_t)head;
    lo.time_off = lo.seq_off + TOKEN_DIGITS_SEQ + 1;
    size_t fixed = lo.time_off + TOKEN_DIGITS_TIME + 1 - strlen(prefix);
    if ((long)fixed + 1 > body) {
        fprintf(stderr, "loadgen: -S %ld is too small (at least %zu)\n", size, fixed + 2);
        exit(2);
    }
    memset(out + lo.seq_off, '0', TOKEN_DIGITS_SEQ);
    out[lo.seq_off + TOKEN_DIGITS_SEQ] = '.';
    memset(out + lo.time_off, '0', TOKEN_DIGITS_TIME);
    out[lo.time_off + TOKEN_DIGITS_TIME] = ' ';
    size_t end = strlen(prefix) + (size_t)body;
    memset(out + lo.time_off + TOKEN_DIGITS_TIME + 1, 'x',
           end - (lo.time_off + TOKEN_DIGITS_TIME + 1));
    lo.slot = end;
    if (!use_dgram && !use_octet)
        out[lo.slot++] = '\n';
    return lo;
}

/* -s inet:PORT: TCP (or UDP with -d) to 127.0.0.1:PORT. */
static int connect_inet(int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int tries = 0;; tries++) {
        int fd = socket(AF_INET, (use_dgram ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
        if (fd < 0)
            die("socket");
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return fd;
        int e = errno;
        close(fd);
        if ((e == ECONNREFUSED || e == EAGAIN) && tries < 500) {
            usleep(10000);
            continue;
        }
        errno = e;
        die("connect");
    }
}

static int connect_socket(void)
{
    if (strncmp(sock_path, "inet:", 5) == 0)
        return connect_inet(atoi(sock_path + 5));
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(sock_path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "loadgen: socket path too long\n");
        exit(2);
    }
    strcpy(sa.sun_path, sock_path);
    for (int tries = 0;; tries++) {
        int fd = socket(AF_UNIX, (use_dgram ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
        if (fd < 0)
            die("socket");
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            return fd;
        int e = errno;
        close(fd);
        if ((e == ECONNREFUSED || e == ENOENT || e == EAGAIN) && tries < 500) {
            usleep(10000);
            continue;
        }
        errno = e;
        die("connect");
    }
}

/* -t: the TLS session of one connection, handshake done. */
static SSL *tls_open(int fd)
{
    SSL *ssl = SSL_new(tls_ctx);
    if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1) {
        ERR_print_errors_fp(stderr);
        fprintf(stderr, "loadgen: TLS handshake failed\n");
        exit(1);
    }
    return ssl;
}

static void tls_write_all(SSL *ssl, const char *p, size_t n)
{
    while (n > 0) {
        size_t w = 0;
        if (SSL_write_ex(ssl, p, n, &w) != 1) {
            ERR_print_errors_fp(stderr);
            fprintf(stderr, "loadgen: SSL_write failed\n");
            exit(1);
        }
        p += w;
        n -= w;
    }
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = use_dgram ? send(fd, p, n, 0) : write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            die(use_dgram ? "send" : "write");
        }
        if (use_dgram)
            return; /* a datagram goes whole or not at all */
        p += w;
        n -= (size_t)w;
    }
}

static void *client_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    int fd = connect_socket();
    SSL *ssl = use_tls ? tls_open(fd) : NULL;
    int k = use_dgram ? 1 : per_write;

    char tmpl[256 + 70000];
    if (size > 65536) {
        fprintf(stderr, "loadgen: -S at most 65536\n");
        exit(2);
    }
    struct layout lo = build_template(tmpl, id);
    char *buf = malloc(lo.slot * (size_t)k);
    if (!buf)
        die("malloc");
    for (int i = 0; i < k; i++)
        memcpy(buf + lo.slot * (size_t)i, tmpl, lo.slot);

    /* Latency mode: client i sends its j-th message at
     * start + (j * clients + i) / rate seconds, or up to PACE_SLACK_NS
     * before that (see -r). */
    double period_ns = rate > 0 ? 1e9 * clients / rate : 0;
    double offset_ns = rate > 0 ? 1e9 * id / rate : 0;

    pthread_barrier_wait(&ready_barrier);
    pthread_barrier_wait(&go_barrier);
    int64_t start = ns_of(&start_ts);

    for (long seq = 0; seq < msgs; seq += k) {
        int n = msgs - seq < k ? (int)(msgs - seq) : k;
        if (rate > 0) {
            int64_t due = start + (int64_t)(offset_ns + period_ns * (double)seq);
            if (due - now_ns(CLOCK_MONOTONIC) > PACE_SLACK_NS) {
                struct timespec ts = {.tv_sec = due / 1000000000,
                                      .tv_nsec = due % 1000000000};
                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                    ;
            }
        }
        uint64_t now = (uint64_t)now_ns(CLOCK_REALTIME);
        for (int i = 0; i < n; i++) {
            char *m = buf + lo.slot * (size_t)i;
            put_digits(m + lo.seq_off, TOKEN_DIGITS_SEQ, (uint64_t)(seq + i));
            put_digits(m + lo.time_off, TOKEN_DIGITS_TIME, now);
        }
        if (ssl)
            tls_write_all(ssl, buf, lo.slot * (size_t)n);
        else
            write_all(fd, buf, lo.slot * (size_t)n);
    }
    if (ssl) {
        /* close_notify, then wait for the server to close: the server's
         * TLS 1.3 session tickets sit unread in our socket, and a close()
         * over unread bytes sends a RST that makes the server's kernel
         * throw away what the daemon had not read yet. */
        SSL_shutdown(ssl);
        shutdown(fd, SHUT_WR);
        char sink[4096];
        while (read(fd, sink, sizeof(sink)) > 0)
            ;
        SSL_free(ssl);
    }
    close(fd);
    free(buf);
    return NULL;
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "loadgen: timed out\n";
    ssize_t r = write(2, msg, sizeof(msg) - 1);
    (void)r;
    _exit(3);
}

int main(int argc, char **argv)
{
    int timeout = 300, opt;
    while ((opt = getopt(argc, argv, "s:dotc:n:S:k:r:T:")) != -1) {
        switch (opt) {
        case 's': sock_path = optarg; break;
        case 'd': use_dgram = 1; break;
        case 'o': use_octet = 1; break;
        case 't': use_tls = 1; break;
        case 'c': clients = atoi(optarg); break;
        case 'n': msgs = atol(optarg); break;
        case 'S': size = atol(optarg); break;
        case 'k': per_write = atoi(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'T': timeout = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: loadgen -s PATH [-d|-o] -c CLIENTS -n MSGS -S SIZE "
                            "[-k PER_WRITE] [-r RATE] [-T TIMEOUT_S]\n");
            return 2;
        }
    }
    if (!sock_path || clients < 1 || clients > 999 || msgs < 1 || msgs > 999999999 ||
        per_write < 1 || rate < 0 || (use_dgram && use_octet) ||
        (use_tls && (use_dgram || strncmp(sock_path, "inet:", 5) != 0))) {
        fprintf(stderr, "loadgen: bad arguments\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (use_tls) {
        tls_ctx = SSL_CTX_new(TLS_client_method());
        if (!tls_ctx || SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION) != 1)
            die("SSL_CTX_new");
        SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
    }
    signal(SIGALRM, on_alarm);
    alarm((unsigned)timeout);

    pthread_barrier_init(&ready_barrier, NULL, (unsigned)clients + 1);
    pthread_barrier_init(&go_barrier, NULL, (unsigned)clients + 1);
    pthread_t *th = calloc((size_t)clients, sizeof(*th));
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 1 << 20);
    for (int i = 0; i < clients; i++)
        if (pthread_create(&th[i], &attr, client_main, (void *)(intptr_t)i) != 0)
            die("pthread_create");
    /* Every client is connected: take the start time, then release them. */
    pthread_barrier_wait(&ready_barrier);
    clock_gettime(CLOCK_MONOTONIC, &start_ts);
    /* Latency mode: leave the clients a moment to reach their first sleep. */
    if (rate > 0) {
        start_ts.tv_nsec += 20000000;
        if (start_ts.tv_nsec >= 1000000000) {
            start_ts.tv_sec++;
            start_ts.tv_nsec -= 1000000000;
        }
    }
    pthread_barrier_wait(&go_barrier);
    for (int i = 0; i < clients; i++)
        pthread_join(th[i], NULL);
    int64_t end = now_ns(CLOCK_MONOTONIC);

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long long cpu_us = (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
                       ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
    printf("start_ns=%lld end_ns=%lld sent=%ld cpu_us=%lld\n", (long long)ns_of(&start_ts),
           (long long)end, msgs * clients, cpu_us);
    return 0;
}
