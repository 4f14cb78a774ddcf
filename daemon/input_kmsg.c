#include "input_kmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "kmsg.h"
#include "log.h"
#include "record.h"

/* The kernel refuses (EINVAL) a read whose buffer cannot hold the record;
 * its records are at most 8 KiB (CONSOLE_EXT_LOG_MAX) with the dictionary. */
#define KMSG_READ_MAX (16 * 1024)
#define BOOT_ID_LEN 36
#define BOOT_ID_FILE "/proc/sys/kernel/random/boot_id"

struct input_kmsg {
    const struct listen_conf *lc;
    const char *state_dir;
    uint16_t idx;
    struct listener_stats *st;
    struct budget *budget;
    int fd;
    int dirfd;      /* the state directory */
    int stopfd;     /* eventfd: written by input_kmsg_stop() */
    char state_name[256];
    char boot_id[BOOT_ID_LEN + 1];
    /* The place: the reader thread's alone once it runs. */
    bool same_boot; /* the state file was written in this boot */
    uint64_t skip_to; /* with same_boot: records up to this seq were sent */
    bool have_last;
    uint64_t last_seq;
    bool dirty;     /* last_seq moved since the last save */
    chan_tx *tx;
    pthread_t thread;
    bool started;
    char buf[KMSG_READ_MAX];
};

static int read_boot_id(char out[BOOT_ID_LEN + 1])
{
    int fd = open(BOOT_ID_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, out, BOOT_ID_LEN);
    int e = errno;
    close(fd);
    if (n != BOOT_ID_LEN)
        return n < 0 ? -e : -EINVAL;
    out[BOOT_ID_LEN] = '\0';
    return 0;
}

/* Read "BOOT_ID SEQ\n"; a missing or unreadable file means no place. */
static void state_load(struct input_kmsg *k)
{
    int fd = openat(k->dirfd, k->state_name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT)
            log_msg(LOG_WARNING, "listen %s: cannot read its place in %s: %s; reading the whole "
                    "kernel log", k->lc->path, k->state_name, strerror(errno));
        return;
    }
    char text[128];
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    char id[BOOT_ID_LEN + 1];
    uint64_t seq;
    if (n <= 0 || (text[n] = '\0', sscanf(text, "%36s %" SCNu64, id, &seq) != 2)) {
        log_msg(LOG_WARNING, "listen %s: %s is not \"BOOT_ID SEQ\"; reading the whole kernel log",
                k->lc->path, k->state_name);
        return;
    }
    if (strcmp(id, k->boot_id) == 0) {
        k->same_boot = true;
        k->skip_to = seq;
        /* Records the ring buffer overwrote while we were stopped count as
         * overwritten too: the first one read after SEQ shows the gap. */
        k->have_last = true;
        k->last_seq = seq;
    }
}

/* Write the place atomically: a half-written state file is never read. */
static int state_save(struct input_kmsg *k)
{
    if (!k->dirty)
        return 0;
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s.tmp", k->state_name);
    int fd = openat(k->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        goto fail;
    char text[128];
    int n = snprintf(text, sizeof(text), "%s %" PRIu64 "\n", k->boot_id, k->last_seq);
    if (write(fd, text, (size_t)n) != n || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlinkat(k->dirfd, tmp, 0);
        errno = e;
        goto fail;
    }
    close(fd);
    if (renameat(k->dirfd, tmp, k->dirfd, k->state_name) != 0)
        goto fail;
    fsync(k->dirfd);
    k->dirty = false;
    return 0;
fail:
    log_msg(LOG_WARNING, "listen %s: cannot save its place in %s/%s: %s (a restart will repeat "
            "kernel records)", k->lc->path, k->state_dir, k->state_name, strerror(errno));
    return -errno;
}

/* One kernel record: into a record, into the channel. */
static void take(struct input_kmsg *k, const char *p, size_t n, int64_t boot_us)
{
    struct kmsg_info info;
    struct record *r = NULL;
    if (kmsg_parse(p, n, boot_us, &info, &r) != 0) {
        counter_add(&k->st->lost, 1);
        return;
    }
    if (info.valid) {
        if (k->same_boot && info.seq <= k->skip_to) {
            record_free(r);
            return;
        }
        /* The ring buffer overwrote what lies between: count it. */
        if (k->have_last && info.seq > k->last_seq + 1)
            counter_add(&k->st->overwritten, info.seq - k->last_seq - 1);
        k->have_last = true;
        k->last_seq = info.seq;
        k->dirty = true;
    } else {
        counter_add(&k->st->parse_errors, 1);
    }
    r->recv_us = clock_wall_us();
    r->listener = k->idx;
    size_t bytes = record_footprint(r);
    budget_charge(k->budget, bytes);
    if (chan_send(k->tx, &r) != CHAN_OK) {
        budget_credit(k->budget, bytes);
        counter_add(&k->st->lost, 1);
        record_free(r);
        return;
    }
    counter_add(&k->st->records, 1);
    counter_add(&k->st->bytes, n);
}

/* Read until the kernel has nothing more.  false on an error that will
 * not go away. */
static bool drain(struct input_kmsg *k)
{
    for (;;) {
        ssize_t n = read(k->fd, k->buf, sizeof(k->buf));
        if (n > 0) {
            /* Wall time of the monotonic clock's zero, anew for each record,
             * so that a change of the system clock is followed. */
            int64_t boot_us = clock_wall_us() - (int64_t)(clock_mono_ns() / 1000);
            take(k, k->buf, (size_t)n, boot_us);
            continue;
        }
        if (n == 0 || errno == EAGAIN)
            return true;
        if (errno == EINTR)
            continue;
        if (errno == EPIPE) {
            /* Overwritten before we read it; the next read gives the oldest
             * record still there, and the gap in seq says how many. */
            if (!k->have_last)
                counter_add(&k->st->overwritten, 1);
            continue;
        }
        log_msg(LOG_ERR, "listen %s: read: %s; no more kernel records will be read",
                k->lc->path, strerror(errno));
        return false;
    }
}

static void *reader_main(void *arg)
{
    struct input_kmsg *k = arg;
    struct pollfd pf[2] = {{k->fd, POLLIN, 0}, {k->stopfd, POLLIN, 0}};
    bool ok = true;
    for (;;) {
        if (ok)
            ok = drain(k);
        state_save(k);
        /* A stop request is seen only after a drain, so what the kernel
         * held when it came has been sent. */
        if (pf[1].revents & POLLIN)
            break;
        pf[0].fd = ok ? k->fd : -1;
        if (poll(pf, 2, -1) < 0 && errno != EINTR) {
            log_msg(LOG_ERR, "listen %s: poll: %s", k->lc->path, strerror(errno));
            break;
        }
    }
    chan_sender_drop(k->tx);
    k->tx = NULL;
    return NULL;
}

struct input_kmsg *input_kmsg_open(const struct listen_conf *lc, uint16_t idx,
                                   const char *state_dir, struct listener_stats *st,
                                   struct budget *budget, char *err, size_t errlen)
{
    struct input_kmsg *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        snprintf(err, errlen, "listen %s: out of memory", lc->path);
        return NULL;
    }
    k->lc = lc;
    k->state_dir = state_dir;
    k->idx = idx;
    k->st = st;
    k->budget = budget;
    k->dirfd = k->stopfd = -1;
    k->fd = open(lc->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (k->fd < 0) {
        snprintf(err, errlen, "listen %s: cannot open: %s%s", lc->path, strerror(errno),
                 errno == EPERM || errno == EACCES
                     ? " (reading the kernel log needs CAP_SYSLOG when kernel.dmesg_restrict is 1)"
                     : "");
        goto fail;
    }
    int rc = read_boot_id(k->boot_id);
    if (rc != 0) {
        snprintf(err, errlen, "listen %s: cannot read %s: %s", lc->path, BOOT_ID_FILE,
                 strerror(-rc));
        goto fail;
    }
    if (mkdir(state_dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "state_dir: cannot create %s: %s", state_dir, strerror(errno));
        goto fail;
    }
    k->dirfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (k->dirfd < 0) {
        snprintf(err, errlen, "state_dir: cannot open %s: %s", state_dir, strerror(errno));
        goto fail;
    }
    size_t o = (size_t)snprintf(k->state_name, sizeof(k->state_name), "kmsg");
    for (const char *p = lc->path; *p && o + 7 < sizeof(k->state_name); p++)
        k->state_name[o++] = *p == '/' ? '_' : *p;
    snprintf(k->state_name + o, sizeof(k->state_name) - o, ".state");
    k->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (k->stopfd < 0) {
        snprintf(err, errlen, "listen %s: eventfd: %s", lc->path, strerror(errno));
        goto fail;
    }
    state_load(k);
    return k;
fail:
    input_kmsg_free(k);
    return NULL;
}

int input_kmsg_start(struct input_kmsg *k, chan_tx *tx)
{
    k->tx = chan_sender_clone(tx);
    if (k->tx == NULL)
        return -ENOMEM;
    int rc = pthread_create(&k->thread, NULL, reader_main, k);
    if (rc != 0) {
        chan_sender_drop(k->tx);
        k->tx = NULL;
        return -rc;
    }
    k->started = true;
    return 0;
}

void input_kmsg_stop(struct input_kmsg *k)
{
    if (k == NULL || !k->started)
        return;
    uint64_t one = 1;
    if (write(k->stopfd, &one, sizeof(one)) != (ssize_t)sizeof(one))
        log_msg(LOG_ERR, "listen %s: cannot wake the reader: %s", k->lc->path, strerror(errno));
    pthread_join(k->thread, NULL);
    k->started = false;
}

void input_kmsg_free(struct input_kmsg *k)
{
    if (k == NULL)
        return;
    input_kmsg_stop(k);
    if (k->tx != NULL)
        chan_sender_drop(k->tx);
    if (k->fd >= 0)
        close(k->fd);
    if (k->dirfd >= 0)
        close(k->dirfd);
    if (k->stopfd >= 0)
        close(k->stopfd);
    free(k);
}
