/*
 * spool: segments, cursor, recovery.  See spool.h for the model and the
 * thread rules; the comments here say why the code is shaped as it is.
 */
#include "spool.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define SEG_SUFFIX ".seg"
#define SEG_NAME_LEN (20 + 4) /* %020llu.seg */
#define CURSOR_NAME "cursor"
#define CURSOR_TMP "cursor.tmp"
#define CURSOR_MAGIC "lograil-spool-cursor 1"
#define SEG_MIN 4096
#define SEG_MAX (INT64_C(8) << 20)
#define SEG_DEFAULT (INT64_C(4) << 20)
#define SCAN_CHUNK (256 * 1024)

struct seg {
    uint64_t base;    /* position of its first byte; also its name */
    uint64_t size;    /* bytes of whole frames in it */
    int64_t first_us; /* wall time of its first append (recovered: its mtime) */
};

struct spool {
    int dirfd;
    struct spool_opts o;
    pthread_mutex_t mu;
    /* Under mu: */
    struct seg *segs; /* sorted by base; never empty; the last is the tail */
    size_t n, cap;
    uint64_t total;   /* sum of sizes */
    uint64_t cursor;  /* acknowledged up to here */
    uint64_t rd;      /* the reader has taken bytes up to here (>= cursor) */
    struct spool_info c; /* the counters of spool_info */
    /* Writer only: */
    int tail_fd;
    /* Reader only: */
    int rd_fd;
    uint64_t rd_fd_base;
    uint64_t saved; /* cursor last written to the file */
    bool saved_valid;
};

void spool_opts_init(struct spool_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->full = SPOOL_BLOCK;
}

static int64_t wall_us(struct spool *sp)
{
    if (sp->o.clock_us != NULL)
        return sp->o.clock_us(sp->o.clock_arg);
    return clock_wall_us();
}

/* ---- frames ------------------------------------------------------------ */

int spool_frame(const char *p, size_t n, size_t *frame_len, size_t *body_off)
{
    if (n == 0)
        return 0;
    if (p[0] < '1' || p[0] > '9')
        return -1;
    size_t i = 0, len = 0;
    while (i < n && p[i] >= '0' && p[i] <= '9') {
        if (i == 8)
            return -1; /* more than SPOOL_FRAME_MAX */
        len = len * 10 + (size_t)(p[i] - '0');
        i++;
    }
    if (i == n)
        return 0;
    if (p[i] != ' ')
        return -1;
    i++;
    if (n - i < len)
        return 0;
    *frame_len = i + len;
    *body_off = i;
    return 1;
}

size_t spool_frames_prefix(const char *p, size_t n, size_t *count, int *bad)
{
    size_t off = 0, k = 0;
    *bad = 0;
    for (;;) {
        size_t fl, bo;
        int rc = spool_frame(p + off, n - off, &fl, &bo);
        if (rc <= 0) {
            *bad = rc < 0;
            break;
        }
        off += fl;
        k++;
    }
    if (count != NULL)
        *count = k;
    return off;
}

size_t spool_frame_header(char *hdr, size_t len)
{
    int n = snprintf(hdr, 10, "%zu ", len);
    return (size_t)n;
}

/* ---- small file helpers ------------------------------------------------- */

static void seg_name(char *out, uint64_t base)
{
    snprintf(out, SEG_NAME_LEN + 1, "%020" PRIu64 SEG_SUFFIX, base);
}

static bool parse_seg_name(const char *name, uint64_t *base)
{
    if (strlen(name) != SEG_NAME_LEN || strcmp(name + 20, SEG_SUFFIX) != 0)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *base = v;
    return true;
}

/* Create the directory and its missing parents, one component at a time. */
static int make_dirs(const char *path)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    for (char *slash = strchr(tmp + 1, '/');; slash = strchr(slash + 1, '/')) {
        if (slash != NULL)
            *slash = '\0';
        if (tmp[0] != '\0' && mkdir(tmp, 0750) != 0 && errno != EEXIST)
            return -errno;
        if (slash == NULL)
            return 0;
        *slash = '/';
    }
}

static ssize_t pread_full(int fd, char *p, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, p + got, n - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Count the whole frames of fd's bytes [from, to): the length of the whole
 * frames found and their number.  Stops at the first byte that is not a
 * frame.  A frame is at most SPOOL_FRAME_MAX + 10 bytes, so the window
 * grows to hold one if it must. */
static int scan_frames(int fd, uint64_t from, uint64_t to, uint64_t *whole, uint64_t *count)
{
    struct buf b = BUF_INIT;
    uint64_t off = from, k = 0;
    size_t want = SCAN_CHUNK;
    int rc = 0;
    while (off < to) {
        size_t n = to - off < want ? (size_t)(to - off) : want;
        b.len = 0;
        if ((rc = buf_reserve(&b, n)) != 0)
            break;
        ssize_t r = pread_full(fd, b.p, n, (off_t)off);
        if (r < 0) {
            rc = (int)r;
            break;
        }
        size_t c;
        int bad;
        size_t pre = spool_frames_prefix(b.p, (size_t)r, &c, &bad);
        off += pre;
        k += c;
        if (pre == 0) {
            size_t fl, bo;
            /* A frame longer than the window: widen it, unless the bytes
             * run out first (a torn tail) or are not a frame. */
            if (bad || (size_t)r < n || spool_frame(b.p, (size_t)r, &fl, &bo) != 0 ||
                want >= SPOOL_FRAME_MAX + 16)
                break;
            want = want * 4;
        }
    }
    buf_free(&b);
    *whole = off - from;
    *count = k;
    return rc;
}

static int fsync_dir(struct spool *sp)
{
    return fsync(sp->dirfd) == 0 ? 0 : -errno;
}

/* ---- the cursor file ------------------------------------------------------ */

static uint32_t check_of(uint64_t v)
{
    /* FNV-1a over the eight bytes: enough to tell a damaged file. */
    uint32_t h = 2166136261u;
    for (int i = 0; i < 8; i++) {
        h ^= (uint8_t)(v >> (8 * i));
        h *= 16777619u;
    }
    return h;
}

/* 1 and *pos: a valid cursor; 0: no file; -1: a damaged one. */
static int cursor_load(struct spool *sp, uint64_t *pos)
{
    int fd = openat(sp->dirfd, CURSOR_NAME, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    char text[128];
    ssize_t n = pread_full(fd, text, sizeof(text) - 1, 0);
    close(fd);
    if (n <= 0)
        return -1;
    text[n] = '\0';
    uint64_t v;
    unsigned check;
    char tail;
    if (strncmp(text, CURSOR_MAGIC " ", sizeof(CURSOR_MAGIC)) != 0 ||
        sscanf(text + sizeof(CURSOR_MAGIC), "%" SCNu64 " %x%c", &v, &check, &tail) != 3 ||
        tail != '\n' || check != check_of(v))
        return -1;
    *pos = v;
    return 1;
}

static int cursor_store(struct spool *sp, uint64_t pos)
{
    char text[128];
    int len = snprintf(text, sizeof(text), CURSOR_MAGIC " %" PRIu64 " %08x\n", pos, check_of(pos));
    int fd = openat(sp->dirfd, CURSOR_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                    0640);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (write(fd, text, (size_t)len) != len)
        rc = errno ? -errno : -EIO;
    else if (fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && renameat(sp->dirfd, CURSOR_TMP, sp->dirfd, CURSOR_NAME) != 0)
        rc = -errno;
    if (rc == 0)
        rc = fsync_dir(sp);
    if (rc != 0)
        (void)unlinkat(sp->dirfd, CURSOR_TMP, 0);
    return rc;
}

/* ---- the list of segments (under mu) ------------------------------------ */

static int segs_push(struct spool *sp, uint64_t base, uint64_t size, int64_t first_us)
{
    if (sp->n == sp->cap) {
        size_t cap = sp->cap ? sp->cap * 2 : 16;
        struct seg *v = realloc(sp->segs, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        sp->segs = v;
        sp->cap = cap;
    }
    sp->segs[sp->n++] = (struct seg){base, size, first_us};
    sp->total += size;
    return 0;
}

static uint64_t seg_end(const struct seg *s)
{
    return s->base + s->size;
}

static uint64_t end_locked(const struct spool *sp)
{
    return seg_end(&sp->segs[sp->n - 1]);
}

static void segs_remove(struct spool *sp, size_t i)
{
    assert(i + 1 < sp->n); /* never the tail */
    sp->total -= sp->segs[i].size;
    memmove(&sp->segs[i], &sp->segs[i + 1], (sp->n - i - 1) * sizeof(*sp->segs));
    sp->n--;
}

/* Delete the segments before the tail that are acknowledged whole. */
static int prune_locked(struct spool *sp)
{
    int rc = 0;
    while (sp->n > 1 && seg_end(&sp->segs[0]) <= sp->cursor) {
        char name[SEG_NAME_LEN + 1];
        seg_name(name, sp->segs[0].base);
        if (unlinkat(sp->dirfd, name, 0) != 0 && errno != ENOENT) {
            rc = -errno;
            break;
        }
        segs_remove(sp, 0);
    }
    return rc;
}

/* Positions in a gap between segments (a dropped or pruned one) or before
 * the first mean the next byte that exists. */
static uint64_t clamp_locked(const struct spool *sp, uint64_t pos)
{
    for (size_t i = 0; i < sp->n; i++) {
        if (pos < sp->segs[i].base)
            return sp->segs[i].base;
        if (pos < seg_end(&sp->segs[i]))
            return pos;
    }
    return end_locked(sp);
}

/* ---- open ------------------------------------------------------------------ */

static int cmp_seg(const void *a, const void *b)
{
    const struct seg *x = a, *y = b;
    return x->base < y->base ? -1 : x->base > y->base;
}

static int open_seg(struct spool *sp, uint64_t base, int flags)
{
    char name[SEG_NAME_LEN + 1];
    seg_name(name, base);
    int fd = openat(sp->dirfd, name, flags | O_NOFOLLOW | O_CLOEXEC, 0640);
    return fd < 0 ? -errno : fd;
}

static int load_segments(struct spool *sp)
{
    int fd = dup(sp->dirfd);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return -errno;
    }
    lseek(fd, 0, SEEK_SET);
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t base;
        if (strcmp(de->d_name, CURSOR_TMP) == 0) {
            (void)unlinkat(sp->dirfd, CURSOR_TMP, 0);
            continue;
        }
        if (!parse_seg_name(de->d_name, &base))
            continue;
        struct stat st;
        if (fstatat(sp->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            rc = -errno;
            break;
        }
        if (!S_ISREG(st.st_mode))
            continue;
        int64_t mt = (int64_t)st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000;
        if ((rc = segs_push(sp, base, (uint64_t)st.st_size, mt)) != 0)
            break;
    }
    closedir(d);
    if (rc == 0 && sp->n > 1)
        qsort(sp->segs, sp->n, sizeof(*sp->segs), cmp_seg);
    return rc;
}

/* Cut the last segment back to its last whole frame. */
static int recover_tail(struct spool *sp)
{
    struct seg *t = &sp->segs[sp->n - 1];
    int fd = open_seg(sp, t->base, O_RDWR);
    if (fd < 0)
        return fd;
    uint64_t whole, count;
    int rc = scan_frames(fd, 0, t->size, &whole, &count);
    if (rc == 0 && whole < t->size) {
        if (ftruncate(fd, (off_t)whole) != 0 || fdatasync(fd) != 0) {
            rc = -errno;
        } else {
            sp->c.torn_bytes += t->size - whole;
            sp->total -= t->size - whole;
            t->size = whole;
        }
    }
    close(fd);
    return rc;
}

/* Put the cursor on a frame boundary of an existing byte (or the end). */
static int recover_cursor(struct spool *sp)
{
    uint64_t pos = 0;
    int got = cursor_load(sp, &pos);
    if (got < 0)
        sp->c.cursor_resets++;
    if (got <= 0)
        pos = sp->segs[0].base;
    uint64_t loaded = pos;
    pos = clamp_locked(sp, pos);
    for (size_t i = 0; i < sp->n; i++) {
        struct seg *s = &sp->segs[i];
        if (pos <= s->base || pos >= seg_end(s))
            continue;
        int fd = open_seg(sp, s->base, O_RDONLY);
        if (fd < 0)
            return fd;
        uint64_t whole, count;
        int rc = scan_frames(fd, 0, pos - s->base, &whole, &count);
        close(fd);
        if (rc != 0)
            return rc;
        if (whole != pos - s->base)
            sp->c.cursor_resets++;
        pos = s->base + whole;
    }
    sp->saved = loaded;
    sp->saved_valid = got > 0;
    sp->cursor = sp->rd = pos;
    /* Empty segments before the tail carry nothing: drop them with the
     * acknowledged ones. */
    for (size_t i = 0; i + 1 < sp->n;) {
        char name[SEG_NAME_LEN + 1];
        seg_name(name, sp->segs[i].base);
        if ((sp->segs[i].size == 0 || seg_end(&sp->segs[i]) <= pos) &&
            unlinkat(sp->dirfd, name, 0) == 0)
            segs_remove(sp, i);
        else
            i++;
    }
    return 0;
}

int spool_open(struct spool **out, const char *path, const struct spool_opts *opts)
{
    if (out == NULL || path == NULL || opts == NULL || opts->max_size < 0)
        return -EINVAL;
    struct spool *sp = calloc(1, sizeof(*sp));
    if (sp == NULL)
        return -ENOMEM;
    sp->o = *opts;
    if (sp->o.seg_size <= 0) {
        int64_t s = sp->o.max_size > 0 ? sp->o.max_size / 16 : SEG_DEFAULT;
        sp->o.seg_size = s < SEG_MIN ? SEG_MIN : s > SEG_MAX ? SEG_MAX : s;
    }
    sp->tail_fd = sp->rd_fd = sp->dirfd = -1;
    pthread_mutex_init(&sp->mu, NULL);
    int rc = make_dirs(path);
    if (rc == 0) {
        sp->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sp->dirfd < 0)
            rc = -errno;
    }
    if (rc == 0)
        rc = load_segments(sp);
    if (rc == 0 && sp->n > 0)
        rc = recover_tail(sp);
    if (rc == 0 && sp->n > 0)
        rc = recover_cursor(sp);
    if (rc == 0 && sp->n == 0) {
        /* A new spool, or one whose segments are all gone: start at the
         * cursor, so that positions keep growing. */
        uint64_t pos = 0;
        if (cursor_load(sp, &pos) < 0) {
            sp->c.cursor_resets++;
            pos = 0;
        }
        int fd = open_seg(sp, pos, O_WRONLY | O_CREAT | O_EXCL);
        if (fd < 0) {
            rc = fd;
        } else {
            close(fd);
            rc = segs_push(sp, pos, 0, 0);
            sp->cursor = sp->rd = sp->saved = pos;
            if (rc == 0)
                rc = fsync_dir(sp);
        }
    }
    if (rc == 0) {
        sp->tail_fd = open_seg(sp, sp->segs[sp->n - 1].base, O_WRONLY | O_APPEND);
        if (sp->tail_fd < 0)
            rc = sp->tail_fd;
    }
    if (rc != 0) {
        if (sp->dirfd >= 0)
            close(sp->dirfd);
        pthread_mutex_destroy(&sp->mu);
        free(sp->segs);
        free(sp);
        return rc;
    }
    *out = sp;
    return 0;
}

/* ---- the writer's side ------------------------------------------------------ */

/* Start a new tail segment after the current one (which is not empty). */
static int roll(struct spool *sp)
{
    pthread_mutex_lock(&sp->mu);
    uint64_t base = end_locked(sp);
    pthread_mutex_unlock(&sp->mu);
    int fd = open_seg(sp, base, O_WRONLY | O_CREAT | O_EXCL | O_APPEND);
    if (fd < 0)
        return fd;
    int rc = fsync_dir(sp);
    pthread_mutex_lock(&sp->mu);
    if (rc == 0)
        rc = segs_push(sp, base, 0, 0);
    if (rc == 0) {
        close(sp->tail_fd);
        sp->tail_fd = fd;
        (void)prune_locked(sp); /* the old tail, if it was acknowledged whole */
    }
    pthread_mutex_unlock(&sp->mu);
    if (rc != 0)
        close(fd);
    return rc;
}

/* drop_oldest: delete the oldest segment before the tail that the reader
 * holds no unacknowledged bytes of, counting what in it was never
 * acknowledged.  1 if one went, 0 if none could, or -errno. */
static int drop_one_locked(struct spool *sp)
{
    for (size_t i = 0; i + 1 < sp->n; i++) {
        struct seg *s = &sp->segs[i];
        uint64_t b = s->base, e = seg_end(s);
        bool reserved = sp->rd > sp->cursor && sp->rd > b && sp->cursor < e;
        if (reserved)
            continue;
        uint64_t from = sp->cursor > b ? sp->cursor - b : 0;
        uint64_t whole = 0, count = 0;
        if (from < s->size) {
            int fd = open_seg(sp, b, O_RDONLY);
            if (fd < 0)
                return fd;
            int rc = scan_frames(fd, from, s->size, &whole, &count);
            close(fd);
            if (rc != 0)
                return rc;
        }
        char name[SEG_NAME_LEN + 1];
        seg_name(name, b);
        if (unlinkat(sp->dirfd, name, 0) != 0 && errno != ENOENT)
            return -errno;
        sp->c.dropped_records += count;
        sp->c.dropped_bytes += s->size - from;
        uint64_t next = sp->segs[i + 1].base;
        segs_remove(sp, i);
        if (sp->cursor >= b && sp->cursor < next)
            sp->cursor = next;
        if (sp->rd >= b && sp->rd < next)
            sp->rd = next;
        return 1;
    }
    return 0;
}

static int write_all(int fd, const char *p, size_t n, size_t *done)
{
    *done = 0;
    while (*done < n) {
        ssize_t w = write(fd, p + *done, n - *done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        if (w == 0)
            return -EIO;
        *done += (size_t)w;
    }
    return 0;
}

ssize_t spool_append(struct spool *sp, const char *buf, size_t len, size_t *records)
{
    if (sp == NULL || (buf == NULL && len > 0))
        return -EINVAL;
    size_t done = 0, nrec = 0;
    ssize_t result = 0;
    while (done < len) {
        pthread_mutex_lock(&sp->mu);
        const struct seg *t = &sp->segs[sp->n - 1];
        uint64_t tail_size = t->size;
        bool nothing_unacked = sp->cursor >= end_locked(sp);
        uint64_t total = sp->total;
        pthread_mutex_unlock(&sp->mu);
        uint64_t seg_room = (uint64_t)sp->o.seg_size > tail_size
                                ? (uint64_t)sp->o.seg_size - tail_size : 0;
        uint64_t max = (uint64_t)sp->o.max_size;
        uint64_t room = max == 0 ? UINT64_MAX : max > total ? max - total : 0;
        /* Take the frames that fit the segment and the spool. */
        size_t take = 0, k = 0;
        bool seg_short = false, spool_short = false;
        for (;;) {
            size_t fl, bo;
            int rc = spool_frame(buf + done + take, len - done - take, &fl, &bo);
            if (rc != 1) {
                if (take == 0 && done == 0)
                    return -EINVAL;
                break;
            }
            bool first = take == 0;
            if (take + fl > seg_room && !(first && tail_size == 0)) {
                seg_short = true;
                break;
            }
            if (take + fl > room && !(first && nothing_unacked)) {
                spool_short = true;
                break;
            }
            take += fl;
            k++;
        }
        if (take == 0 && (seg_short || spool_short)) {
            int rc;
            if (spool_short && sp->o.full == SPOOL_DROP_OLDEST) {
                pthread_mutex_lock(&sp->mu);
                rc = drop_one_locked(sp);
                pthread_mutex_unlock(&sp->mu);
                if (rc > 0)
                    continue;
                if (rc < 0) {
                    result = rc;
                    break;
                }
                /* Nothing before the tail can go: end the tail, so that it
                 * can (unless it is empty, or the reader holds it). */
                spool_short = tail_size > 0 ? false : spool_short;
            }
            if (spool_short) {
                pthread_mutex_lock(&sp->mu);
                sp->c.full_events++;
                pthread_mutex_unlock(&sp->mu);
                result = SPOOL_FULL;
                break;
            }
            if ((rc = roll(sp)) != 0) {
                result = rc;
                break;
            }
            continue;
        }
        if (take == 0)
            break; /* only an incomplete frame is left */
        size_t wrote;
        int rc = write_all(sp->tail_fd, buf + done, take, &wrote);
        if (rc != 0) {
            /* Take back a frame cut short, so the tail ends on a whole
             * frame and the retry writes it again from its start. */
            size_t fc;
            int bad;
            size_t whole = spool_frames_prefix(buf + done, wrote, &fc, &bad);
            if (whole < wrote && ftruncate(sp->tail_fd, (off_t)(tail_size + whole)) != 0)
                whole = wrote; /* cannot take it back: the reader will skip it */
            take = whole;
            k = fc;
            result = rc;
        }
        pthread_mutex_lock(&sp->mu);
        struct seg *tt = &sp->segs[sp->n - 1];
        if (tt->size == 0 && take > 0)
            tt->first_us = wall_us(sp);
        tt->size += take;
        sp->total += take;
        pthread_mutex_unlock(&sp->mu);
        done += take;
        nrec += k;
        if (rc != 0)
            break;
    }
    if (records != NULL)
        *records = nrec;
    if (done > 0)
        return (ssize_t)done;
    return result;
}

int spool_sync(struct spool *sp)
{
    return fdatasync(sp->tail_fd) == 0 ? 0 : -errno;
}

/* ---- the sender's side ------------------------------------------------------ */

int spool_read(struct spool *sp, struct buf *out, size_t max, uint64_t *start)
{
    if (sp == NULL || out == NULL || start == NULL)
        return -EINVAL;
    if (max == 0)
        max = 1;
    size_t want = max;
    for (;;) {
        pthread_mutex_lock(&sp->mu);
        uint64_t pos = clamp_locked(sp, sp->rd);
        sp->rd = pos;
        uint64_t base = 0, avail = 0;
        for (size_t i = 0; i < sp->n; i++) {
            if (pos >= sp->segs[i].base && pos < seg_end(&sp->segs[i])) {
                base = sp->segs[i].base;
                avail = seg_end(&sp->segs[i]) - pos;
                break;
            }
        }
        pthread_mutex_unlock(&sp->mu);
        if (avail == 0)
            return 0;
        if (sp->rd_fd < 0 || sp->rd_fd_base != base) {
            if (sp->rd_fd >= 0)
                close(sp->rd_fd);
            sp->rd_fd = open_seg(sp, base, O_RDONLY);
            if (sp->rd_fd < 0) {
                int rc = sp->rd_fd;
                if (rc == -ENOENT)
                    continue; /* dropped meanwhile: look again */
                return rc;
            }
            sp->rd_fd_base = base;
        }
        size_t n = avail < want ? (size_t)avail : want;
        size_t at = out->len;
        int rc = buf_reserve(out, n);
        if (rc != 0)
            return rc;
        ssize_t r = pread_full(sp->rd_fd, out->p + at, n, (off_t)(pos - base));
        if (r < 0)
            return (int)r;
        size_t count;
        int bad;
        size_t whole = spool_frames_prefix(out->p + at, (size_t)r, &count, &bad);
        size_t fl = 0, bo;
        if (whole == 0 && !bad && (size_t)r == n && n < avail &&
            spool_frame(out->p + at, (size_t)r, &fl, &bo) == 0) {
            /* One frame longer than the window: read it whole. */
            want = n * 4;
            continue;
        }
        pthread_mutex_lock(&sp->mu);
        bool moved = sp->rd != pos;
        if (!moved) {
            if (whole == 0) {
                /* Not a frame: skip the rest of this segment. */
                sp->c.corrupt_bytes += avail;
                sp->rd = pos + avail;
            } else {
                sp->rd = pos + whole;
            }
        }
        pthread_mutex_unlock(&sp->mu);
        if (moved || whole == 0) {
            want = max;
            continue;
        }
        out->len = at + whole;
        *start = pos;
        return (int)count;
    }
}

void spool_rewind(struct spool *sp)
{
    pthread_mutex_lock(&sp->mu);
    sp->rd = sp->cursor;
    pthread_mutex_unlock(&sp->mu);
}

int spool_ack(struct spool *sp, uint64_t pos)
{
    pthread_mutex_lock(&sp->mu);
    uint64_t end = end_locked(sp);
    if (pos > end)
        pos = end;
    if (pos > sp->cursor)
        sp->cursor = pos;
    if (sp->rd < sp->cursor)
        sp->rd = sp->cursor;
    int rc = prune_locked(sp);
    pthread_mutex_unlock(&sp->mu);
    return rc;
}

int spool_save_cursor(struct spool *sp)
{
    pthread_mutex_lock(&sp->mu);
    uint64_t c = sp->cursor;
    pthread_mutex_unlock(&sp->mu);
    if (sp->saved_valid && c == sp->saved)
        return 0;
    int rc = cursor_store(sp, c);
    if (rc == 0) {
        sp->saved = c;
        sp->saved_valid = true;
    }
    return rc;
}

void spool_info(struct spool *sp, struct spool_info *info)
{
    pthread_mutex_lock(&sp->mu);
    *info = sp->c;
    info->bytes = sp->total;
    info->segments = sp->n;
    info->cursor = sp->cursor;
    info->end = end_locked(sp);
    info->unacked_bytes = info->end - sp->cursor;
    info->unread_bytes = info->end - sp->rd;
    info->oldest_unacked_us = 0;
    for (size_t i = 0; i < sp->n && info->unacked_bytes > 0; i++) {
        if (sp->cursor < seg_end(&sp->segs[i])) {
            info->oldest_unacked_us = sp->segs[i].first_us;
            break;
        }
    }
    pthread_mutex_unlock(&sp->mu);
}

int spool_close(struct spool *sp)
{
    if (sp == NULL)
        return 0;
    int rc = spool_save_cursor(sp);
    if (sp->tail_fd >= 0) {
        if (fdatasync(sp->tail_fd) != 0 && rc == 0 && errno != EINVAL)
            rc = -errno;
        close(sp->tail_fd);
    }
    if (sp->rd_fd >= 0)
        close(sp->rd_fd);
    close(sp->dirfd);
    pthread_mutex_destroy(&sp->mu);
    free(sp->segs);
    free(sp);
    return rc;
}
