/*
 * check: finds loadgen's tokens in a daemon's output (bench/e2e/run.py).
 *
 * Every line that carries "lg=CCC.SSSSSSSSS.TTTTTTTTTTTTTTTTTTT" (see
 * loadgen.c) counts for token (CCC, SSSSSSSSS); other lines (a daemon's own
 * messages) are counted apart.  A token seen twice is a duplicate, one never
 * seen is missing.
 *
 *   check scan -c CLIENTS -n MSGS FILE...
 *       Reads whole files ("-" is standard input; a name ending .gz or .zst
 *       is read through gzip -dc or zstd -dc) and prints
 *       "lines=L unique=U missing=M dup=D bad=B other=O".
 *
 *   check follow -p PATH -c CLIENTS -n MSGS [-l] [-P POLL_MS] [-i IDLE_S]
 *                [-T TIMEOUT_S]
 *       Follows PATH as it grows (it may not exist yet; when it is renamed
 *       away and recreated, as rotation does, the old file is read to its
 *       end and the new one followed).  Prints "ready" once it watches, and
 *       when every token has been seen (or on SIGTERM, the time-out, or IDLE_S
 *       seconds without a new token after SIGUSR1, which says the load has
 *       been sent) prints one line:
 *       "done_ns=T complete=0|1 lines=L unique=U missing=M dup=D bad=B other=O"
 *       T: CLOCK_MONOTONIC when the last new token was read.
 *       With -l (latency), the arrival time of each line (CLOCK_REALTIME
 *       when the read that brought it returned) minus the send time in it is
 *       recorded, and the line goes on with
 *       " lat_n=N p50_us=A p99_us=B p999_us=C max_us=D".
 *       Wake-ups: inotify on PATH's directory (prompt, for latency), or with
 *       -P a poll every POLL_MS milliseconds (cheaper at high rates).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (4u << 20)

static long clients, msgs;
static uint8_t *seen; /* clients * msgs counters, saturating at 255 */
static long long n_lines, n_unique, n_dup, n_bad, n_other;
static int want_latency;
static int64_t *lat;
static long long lat_n;
static int64_t last_new_ns;

static int64_t now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int digits(const char *p, int n, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        x = x * 10 + (uint64_t)(p[i] - '0');
    }
    *v = x;
    return 1;
}

/* One line, newline excluded; arrival_rt: CLOCK_REALTIME of its read. */
static int line(const char *p, size_t n, int64_t arrival_rt)
{
    n_lines++;
    const char *t = memmem(p, n, "lg=", 3);
    if (!t) {
        n_other++;
        return 0;
    }
    size_t left = n - (size_t)(t - p);
    uint64_t c, s, ts;
    if (left < 3 + 3 + 1 + 9 + 1 + 19 || !digits(t + 3, 3, &c) || t[6] != '.' ||
        !digits(t + 7, 9, &s) || t[16] != '.' || !digits(t + 17, 19, &ts) ||
        c >= (uint64_t)clients || s >= (uint64_t)msgs) {
        n_bad++;
        return 0;
    }
    uint8_t *k = &seen[c * (uint64_t)msgs + s];
    if (*k) {
        n_dup++;
        if (*k < 255)
            (*k)++;
        return 0;
    }
    *k = 1;
    n_unique++;
    if (want_latency)
        lat[lat_n++] = arrival_rt - (int64_t)ts;
    return 1;
}

/* Feeds bytes; complete n_lines are taken, the rest kept for the next call.
 * Returns how many new tokens were seen. */
struct feed {
    char *buf;
    size_t len;
};

static long take_lines(struct feed *f, int64_t arrival_rt)
{
    long fresh = 0;
    size_t pos = 0;
    for (;;) {
        char *nl = memchr(f->buf + pos, '\n', f->len - pos);
        if (!nl)
            break;
        fresh += line(f->buf + pos, (size_t)(nl - (f->buf + pos)), arrival_rt);
        pos = (size_t)(nl - f->buf) + 1;
    }
    memmove(f->buf, f->buf + pos, f->len - pos);
    f->len -= pos;
    if (f->len > CHUNK / 2) { /* a monster line: count it and move on */
        line(f->buf, f->len, arrival_rt);
        f->len = 0;
    }
    return fresh;
}

/* Reads fd to its current end.  Returns new tokens seen. */
static long drain(int fd, struct feed *f)
{
    long fresh = 0;
    for (;;) {
        ssize_t n = read(fd, f->buf + f->len, CHUNK - f->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fresh;
        int64_t rt = want_latency ? now_ns(CLOCK_REALTIME) : 0;
        f->len += (size_t)n;
        long got = take_lines(f, rt);
        if (got) {
            fresh += got;
            last_new_ns = now_ns(CLOCK_MONOTONIC);
        }
    }
}

static void alloc_tables(void)
{
    if (clients < 1 || msgs < 1) {
        fprintf(stderr, "check: -c and -n are required\n");
        exit(2);
    }
    seen = calloc((size_t)clients * (size_t)msgs, 1);
    if (want_latency)
        lat = malloc(sizeof(*lat) * (size_t)clients * (size_t)msgs);
    if (!seen || (want_latency && !lat)) {
        perror("check: calloc");
        exit(1);
    }
}

static void print_counts(void)
{
    long long missing = (long long)clients * msgs - n_unique;
    printf("lines=%lld unique=%lld missing=%lld dup=%lld bad=%lld other=%lld", n_lines, n_unique,
           missing, n_dup, n_bad, n_other);
}

static int cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct_us(double q)
{
    if (lat_n == 0)
        return 0;
    long long i = (long long)(q * (double)(lat_n - 1) + 0.5);
    return (double)lat[i] / 1000.0;
}

static int do_scan(int argc, char **argv)
{
    alloc_tables();
    struct feed f = {malloc(CHUNK), 0};
    int status = 0;
    for (int i = 0; i < argc; i++) {
        const char *name = argv[i];
        size_t nl = strlen(name);
        FILE *pipe_ = NULL;
        int fd;
        if (strcmp(name, "-") == 0) {
            fd = 0;
        } else if ((nl > 3 && strcmp(name + nl - 3, ".gz") == 0) ||
                   (nl > 4 && strcmp(name + nl - 4, ".zst") == 0)) {
            char cmd[PATH_MAX + 64];
            snprintf(cmd, sizeof(cmd), "%s -dc '%s'", name[nl - 1] == 'z' ? "gzip" : "zstd", name);
            pipe_ = popen(cmd, "r");
            if (!pipe_) {
                perror(name);
                status = 1;
                continue;
            }
            fd = fileno(pipe_);
        } else {
            fd = open(name, O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                perror(name);
                status = 1;
                continue;
            }
        }
        drain(fd, &f);
        if (f.len > 0) { /* unterminated last line */
            line(f.buf, f.len, 0);
            f.len = 0;
        }
        if (pipe_) {
            if (pclose(pipe_) != 0)
                status = 1;
        } else if (fd != 0) {
            close(fd);
        }
    }
    print_counts();
    printf("\n");
    return status;
}

static volatile sig_atomic_t got_term, got_usr1;
static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        got_usr1 = 1;
    else
        got_term = 1;
}

static int do_follow(const char *path, int poll_ms, double idle_s, double timeout_s)
{
    alloc_tables();
    struct feed f = {malloc(CHUNK), 0};
    const long long total = (long long)clients * msgs;

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);

    int ino = -1;
    if (poll_ms <= 0) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash)
            *(slash == dir ? slash + 1 : slash) = '\0';
        else
            strcpy(dir, ".");
        ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (ino < 0 || inotify_add_watch(ino, dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO |
                                                        IN_MOVED_FROM | IN_CLOSE_WRITE) < 0) {
            perror("check: inotify");
            return 1;
        }
    }
    printf("ready\n");
    fflush(stdout);

    int fd = -1;
    ino_t fd_ino = 0;
    const int64_t start = now_ns(CLOCK_MONOTONIC);
    int64_t idle_since = 0;
    last_new_ns = 0;
    int complete = 0;
    while (!got_term) {
        if (fd < 0) {
            fd = open(path, O_RDONLY | O_CLOEXEC);
            struct stat st;
            if (fd >= 0 && fstat(fd, &st) == 0)
                fd_ino = st.st_ino;
        }
        if (fd >= 0) {
            drain(fd, &f);
            struct stat st;
            if (stat(path, &st) == 0 && st.st_ino != fd_ino) {
                /* Renamed away and recreated: finish the old file, follow the new. */
                drain(fd, &f);
                close(fd);
                fd = -1;
                f.len = 0;
                continue;
            }
        }
        if (n_unique == total) {
            complete = 1;
            break;
        }
        int64_t now = now_ns(CLOCK_MONOTONIC);
        if (timeout_s > 0 && (double)(now - start) / 1e9 > timeout_s)
            break;
        if (got_usr1) {
            int64_t ref = last_new_ns > idle_since ? last_new_ns : idle_since;
            if (idle_since == 0)
                idle_since = ref = now;
            if ((double)(now - ref) / 1e9 > idle_s)
                break;
        }
        if (ino >= 0) {
            struct pollfd pfd = {.fd = ino, .events = POLLIN};
            if (poll(&pfd, 1, 20) > 0) {
                char evbuf[64 * 1024];
                while (read(ino, evbuf, sizeof(evbuf)) > 0)
                    ;
            }
        } else {
            struct timespec ts = {.tv_sec = poll_ms / 1000, .tv_nsec = (poll_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    printf("done_ns=%lld complete=%d ", (long long)last_new_ns, complete);
    print_counts();
    if (want_latency) {
        qsort(lat, (size_t)lat_n, sizeof(*lat), cmp64);
        printf(" lat_n=%lld p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f", lat_n, pct_us(0.50),
               pct_us(0.99), pct_us(0.999), lat_n ? (double)lat[lat_n - 1] / 1000.0 : 0.0);
    }
    printf("\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: check scan|follow ...\n");
        return 2;
    }
    const char *mode = argv[1];
    const char *path = NULL;
    int poll_ms = 0, opt;
    double idle_s = 5, timeout_s = 0;
    optind = 2;
    while ((opt = getopt(argc, argv, "p:c:n:lP:i:T:")) != -1) {
        switch (opt) {
        case 'p': path = optarg; break;
        case 'c': clients = atol(optarg); break;
        case 'n': msgs = atol(optarg); break;
        case 'l': want_latency = 1; break;
        case 'P': poll_ms = atoi(optarg); break;
        case 'i': idle_s = atof(optarg); break;
        case 'T': timeout_s = atof(optarg); break;
        default: return 2;
        }
    }
    if (strcmp(mode, "scan") == 0)
        return do_scan(argc - optind, argv + optind);
    if (strcmp(mode, "follow") == 0 && path)
        return do_follow(path, poll_ms, idle_s, timeout_s);
    fprintf(stderr, "usage: check scan -c N -n M FILE... | check follow -p PATH -c N -n M [-l] "
                    "[-P MS] [-i S] [-T S]\n");
    return 2;
}
