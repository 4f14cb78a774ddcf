/*
 * rotate: the live file of an output, and its rotation.  See rotate.h.
 *
 * The rotation sequence, after s6-log's rotator():
 *   1. fdatasync the live file            (the archive will be complete)
 *   2. rename PATH -> PATH.<stamp>.NNN    (RENAME_NOREPLACE: never clobber)
 *   3. fsync the directory                (the archive name is durable)
 *   4. open a new PATH
 *   5. fsync the directory                (the new live file is durable)
 *   6. close the old descriptor, queue the archive for the worker.
 * A crash between any two steps leaves either PATH alone, or the archive and
 * no PATH (rotate_open() creates it), or both; no line is in two places or
 * in none.  If step 4 fails, the archive is queued anyway and the file has
 * no descriptor until a later rotate_write() manages to open PATH.
 */
#include "rotate.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"

#define RETRY_MS 1000 /* pause between attempts after a failed rotation */

struct rotate_file {
    char *path;
    char *dir;        /* the directory part of path, "." if none */
    const char *base; /* the last component, inside path */
    struct rotate_opts o;
    struct archive_set *set; /* NULL without a worker */
    struct rotate_counters *c;
    struct rotate_counters own;
    int fd;      /* the live file; -1 after a failed (re)open */
    int dirfd;   /* the directory while a call needs it (dir_hold); else -1 */
    dev_t dev;   /* identity of the open live file */
    ino_t ino;
    int64_t size;
    bool partial;      /* the live file ends inside a line */
    bool have_last;    /* last is known (from a scan or a rotation) */
    struct archive_id last; /* the newest archive name used or seen */
    /* Interval state: the period the live file belongs to, the wall time
     * before which it cannot change, and when it was last computed. */
    int64_t period;
    int64_t due;
    int64_t checked;
    bool interval_pending; /* a period change is waiting for a line boundary */
    bool background;       /* the archives need the worker (compress, prune) */
    uint64_t retry_at_ms;  /* monotonic; no size/interval rotation before it */
};

/* ---- small things -------------------------------------------------------- */

static int64_t wall_now(const struct rotate_file *f)
{
    if (f->o.clock != NULL)
        return f->o.clock(f->o.clock_arg);
    return (int64_t)time(NULL);
}

static void count(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* Count a failure and remember it; returns err for convenience. */
static int fail(struct rotate_file *f, _Atomic uint64_t *n, const char *op, int err)
{
    if (n != NULL)
        count(n);
    atomic_store_explicit(&f->c->last_error_op, op, memory_order_relaxed);
    atomic_store_explicit(&f->c->last_error, err, memory_order_relaxed);
    return err;
}

void rotate_counters_reset(struct rotate_counters *c)
{
    atomic_store(&c->rotations, 0);
    atomic_store(&c->rotate_errors, 0);
    atomic_store(&c->write_errors, 0);
    atomic_store(&c->reopens, 0);
    atomic_store(&c->lines_ended, 0);
    atomic_store(&c->compressed, 0);
    atomic_store(&c->compress_errors, 0);
    atomic_store(&c->pruned, 0);
    atomic_store(&c->prune_errors, 0);
    atomic_store(&c->last_error, 0);
    atomic_store(&c->last_error_op, NULL);
}

void rotate_opts_init(struct rotate_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->compress = ROTATE_COMPRESS_NONE;
    o->file_mode = 0640;
    o->group = (gid_t)-1;
    o->trusted_len = SAFEDIR_ALL;
}

/* The directory, opened when a step needs it and closed when the call
 * ends (dir_drop), so that an open file holds one descriptor. */
static int dir_hold(struct rotate_file *f)
{
    if (f->dirfd >= 0)
        return 0;
    int fd = safedir_open(f->dir, f->o.trusted_len, true);
    if (fd < 0)
        return fd;
    f->dirfd = fd;
    return 0;
}

static void dir_drop(struct rotate_file *f)
{
    if (f->dirfd >= 0) {
        close(f->dirfd);
        f->dirfd = -1;
    }
}

/* ---- the interval -------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t utc_offset(const struct rotate_file *f, int64_t t)
{
    if (f->o.interval_utc)
        return 0;
    struct tm tm;
    time_t tt = (time_t)t;
    if (localtime_r(&tt, &tm) == NULL)
        return 0;
    return tm.tm_gmtoff;
}

static int64_t period_of(const struct rotate_file *f, int64_t t)
{
    return floor_div(t + utc_offset(f, t), f->o.interval_s);
}

/* Compute the period of now, and the first second of the next one.  The
 * next one starts where local time reaches the next multiple of the
 * interval; with a UTC offset change on the way (DST) that is at the
 * boundary taken with the offset of either end, or at the change itself,
 * so the first second is found by bisection between now and the later of
 * the two guesses: about 17 localtime_r() calls a day for daily rotation,
 * and 2 when the guess is exact. */
static int64_t period_at(struct rotate_file *f, int64_t now)
{
    int64_t p = period_of(f, now);
    int64_t boundary = (p + 1) * f->o.interval_s;
    int64_t t1 = boundary - utc_offset(f, now);
    int64_t t2 = boundary - utc_offset(f, t1);
    int64_t lo = now, hi = t1 > t2 ? t1 : t2;
    if (hi <= now)
        hi = now + 1;
    if (period_of(f, hi) != p && period_of(f, hi - 1) != p) {
        while (hi - lo > 1) {
            int64_t mid = lo + (hi - lo) / 2;
            if (period_of(f, mid) == p)
                lo = mid;
            else
                hi = mid;
        }
    }
    /* Otherwise hi is exact, or (an odd zone) a time to look again. */
    f->due = hi;
    f->checked = now;
    return p;
}

/* Has the period changed since the live file's began?  Cheap unless a
 * boundary may have passed or the clock went back. */
static bool interval_due(struct rotate_file *f, int64_t now)
{
    if (f->o.interval_s <= 0)
        return false;
    if (f->interval_pending)
        return true;
    if (now < f->due && now >= f->checked)
        return false;
    int64_t p = period_at(f, now);
    if (p == f->period)
        return false;
    if (f->size == 0) {
        /* Nothing to archive: the empty file belongs to the new period. */
        f->period = p;
        return false;
    }
    f->interval_pending = true;
    return true;
}

static void interval_reset(struct rotate_file *f, int64_t now)
{
    f->interval_pending = false;
    if (f->o.interval_s > 0)
        f->period = period_at(f, now);
}

/* ---- the live file ------------------------------------------------------- */

/* name in dirfd for appending, never through a symlink (-ELOOP): the file
 * that is there, or a new one made with O_EXCL, so that a symlink planted
 * between the two attempts is refused too.  A descriptor or -errno. */
static int open_append(int dirfd, const char *name, mode_t mode)
{
    for (int tries = 0; tries < 3; tries++) {
        int fd = openat(dirfd, name, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0 || errno != ENOENT)
            return fd >= 0 ? fd : -errno;
        fd = openat(dirfd, name, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    mode);
        if (fd >= 0 || errno != EEXIST)
            return fd >= 0 ? fd : -errno;
    }
    return -EEXIST;
}

/* Open PATH for appending, creating it.  A file that does not end with
 * '\n' gets one, unless it is the same file whose line a failed write left
 * unfinished (keep_partial: its dev/ino), which the caller's retry ends. */
static int live_open(struct rotate_file *f, bool initial, const struct stat *keep_partial)
{
    int rc;
    if ((rc = dir_hold(f)) != 0)
        return fail(f, &f->c->write_errors, "open directory", rc);
    int fd = open_append(f->dirfd, f->base, f->o.file_mode);
    if (fd < 0)
        return fail(f, &f->c->write_errors, "open", fd);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        close(fd);
        return fail(f, &f->c->write_errors, "fstat", rc);
    }
    if (f->o.group != (gid_t)-1 && st.st_gid != f->o.group &&
        fchown(fd, (uid_t)-1, f->o.group) != 0) {
        rc = fail(f, &f->c->write_errors, "fchown", -errno);
        if (initial) {
            close(fd);
            return rc;
        }
    }
    bool partial = false;
    if (st.st_size > 0) {
        char last = '\n';
        int rfd = openat(f->dirfd, f->base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (rfd >= 0) {
            if (pread(rfd, &last, 1, st.st_size - 1) != 1)
                last = '\n';
            close(rfd);
        }
        if (last != '\n') {
            if (keep_partial != NULL && keep_partial->st_dev == st.st_dev &&
                keep_partial->st_ino == st.st_ino) {
                partial = true;
            } else if (write(fd, "\n", 1) == 1) {
                st.st_size++;
                count(&f->c->lines_ended);
            } else {
                /* The first write will fail the same way and say so. */
                partial = true;
            }
        }
    }
    f->fd = fd;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->size = st.st_size;
    f->partial = partial;
    return 0;
}

/* Does PATH still name the open live file?  It does not after an outside
 * rename (logrotate without SIGHUP yet) or unlink. */
static bool live_in_place(struct rotate_file *f)
{
    struct stat st;
    return dir_hold(f) == 0 && fstatat(f->dirfd, f->base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
           st.st_dev == f->dev && st.st_ino == f->ino;
}

/* write(2) all of p, or stop at the first failure: the bytes written. */
static size_t write_some(struct rotate_file *f, const char *p, size_t n, int *err)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(f->fd, p + done, n - done);
        if (w > 0) {
            done += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        *err = fail(f, &f->c->write_errors, "write", w < 0 ? -errno : -EIO);
        break;
    }
    if (done > 0) {
        f->size += (int64_t)done;
        f->partial = p[done - 1] != '\n';
    }
    return done;
}

/* ---- rotation ------------------------------------------------------------ */

static bool name_taken(struct rotate_file *f, struct archive_id id)
{
    char name[PATH_MAX];
    struct stat st;
    for (int form = ARCHIVE_PLAIN; form <= ARCHIVE_ZST; form++) {
        if (archive_name(name, sizeof(name), f->base, id, (enum archive_form)form) != 0)
            return true;
        if (fstatat(f->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
            return true;
    }
    return false;
}

/* Rename the live file to a new archive name; 0 and name, or -errno. */
static int rename_to_archive(struct rotate_file *f, int64_t now, char *name, size_t len)
{
    if (!f->have_last) {
        /* Names must sort after those of an earlier run, even one in this
         * very second or before the clock was set back. */
        int rc = archive_scan_max(f->dirfd, f->base, &f->last);
        f->have_last = rc > 0;
    }
    struct archive_id id = {archive_stamp(now), 0};
    if (f->have_last && archive_id_cmp(id, f->last) <= 0)
        id = (struct archive_id){f->last.stamp, f->last.seq + 1};
    for (int tries = 0; tries < 10000; tries++, id.seq++) {
        int rc = archive_name(name, len, f->base, id, ARCHIVE_PLAIN);
        if (rc != 0)
            return rc;
        if (name_taken(f, id))
            continue;
        rc = renameat2(f->dirfd, f->base, f->dirfd, name, RENAME_NOREPLACE);
        if (rc != 0 && (errno == EINVAL || errno == ENOSYS))
            rc = renameat(f->dirfd, f->base, f->dirfd, name); /* checked free above */
        if (rc == 0) {
            f->last = id;
            f->have_last = true;
            return 0;
        }
        if (errno != EEXIST)
            return -errno;
    }
    return -EEXIST;
}

/* The whole sequence; see the top of the file.  1 when rotated. */
static int rotate_do(struct rotate_file *f, int64_t now)
{
    assert(f->fd >= 0 && !f->partial);
    int rc = dir_hold(f);
    if (rc != 0)
        return fail(f, &f->c->rotate_errors, "open directory", rc);
    if (!live_in_place(f)) {
        /* Someone moved the file away: what they did is the rotation. */
        rc = rotate_reopen(f);
        interval_reset(f, now);
        return rc < 0 ? rc : 0;
    }
    if (fdatasync(f->fd) != 0)
        return fail(f, &f->c->rotate_errors, "fdatasync before rotation", -errno);
    char name[PATH_MAX];
    rc = rename_to_archive(f, now, name, sizeof(name));
    if (rc != 0)
        return fail(f, &f->c->rotate_errors, "rename", rc);
    if (fsync(f->dirfd) != 0)
        fail(f, NULL, "fsync directory", -errno);
    count(&f->c->rotations);
    int old = f->fd;
    f->fd = -1;
    rc = live_open(f, false, NULL);
    if (rc == 0 && fsync(f->dirfd) != 0)
        fail(f, NULL, "fsync directory", -errno);
    close(old);
    if (f->background)
        archive_set_kick(f->set);
    interval_reset(f, now);
    return rc < 0 ? rc : 1;
}

/* A size or interval rotation, unless one failed less than RETRY_MS ago. */
static int rotate_auto(struct rotate_file *f, int64_t now)
{
    if (f->size == 0) {
        /* A reopen left an empty file: nothing to archive. */
        interval_reset(f, now);
        return 0;
    }
    if (f->retry_at_ms != 0 && clock_mono_ms() < f->retry_at_ms)
        return -EAGAIN;
    int rc = rotate_do(f, now);
    f->retry_at_ms = rc < 0 && f->fd >= 0 ? clock_mono_ms() + RETRY_MS : 0;
    return rc;
}

/* How much of p[0..n) goes into the live file before the next rotation:
 * whole lines within max_size, or one line alone in an empty file.  0 means
 * rotate first. */
static size_t fits(struct rotate_file *f, const char *p, size_t n)
{
    int64_t room = f->o.max_size - f->size;
    if (room > 0) {
        size_t m = (uint64_t)room < n ? (size_t)room : n;
        if (m == n)
            return n;
        const char *nl = memrchr(p, '\n', m);
        if (nl != NULL)
            return (size_t)(nl - p) + 1;
    }
    if (f->size > 0)
        return 0;
    const char *nl = memchr(p, '\n', n);
    return nl != NULL ? (size_t)(nl - p) + 1 : n;
}

/* ---- the API ------------------------------------------------------------- */

int rotate_open(struct rotate_file **out, const char *path, const struct rotate_opts *opts,
                struct archive_worker *worker)
{
    if (out == NULL || path == NULL || path[0] == '\0' || opts == NULL)
        return -EINVAL;
    if (opts->max_size < 0 || opts->interval_s < 0 || opts->keep < 0 || opts->max_total < 0 ||
        opts->compress < ROTATE_COMPRESS_NONE || opts->compress > ROTATE_COMPRESS_ZSTD)
        return -EINVAL;
    bool background = opts->compress != ROTATE_COMPRESS_NONE || opts->keep > 0 ||
                      opts->max_total > 0;
    if (background && worker == NULL)
        return -EINVAL;
    size_t len = strlen(path);
    if (path[len - 1] == '/')
        return -EISDIR;

    struct rotate_file *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -ENOMEM;
    f->fd = f->dirfd = -1;
    f->o = *opts;
    if (f->o.file_mode == 0)
        f->o.file_mode = 0640;
    f->c = opts->counters != NULL ? opts->counters : &f->own;
    int rc = -ENOMEM;
    if ((f->path = strdup(path)) == NULL || (f->dir = strdup(path)) == NULL)
        goto fail;
    char *slash = strrchr(f->dir, '/');
    if (slash == NULL) {
        strcpy(f->dir, ".");
        f->base = f->path;
    } else {
        f->base = f->path + (slash - f->dir) + 1;
        if (slash == f->dir)
            slash[1] = '\0'; /* "/name": the root */
        else
            *slash = '\0';
    }
    /* The set first, so that the open already counts where the file will. */
    if (worker != NULL) {
        struct archive_policy pol = {opts->compress, opts->compress_level, opts->keep,
                                     opts->max_total};
        if ((rc = archive_set_new(worker, f->dir, opts->trusted_len, f->base, &pol,
                                  opts->counters, &f->set)) != 0)
            goto fail;
        f->c = archive_set_counters(f->set);
    }
    if ((rc = live_open(f, true, NULL)) != 0)
        goto fail;
    f->background = background;
    if (background)
        archive_set_kick_open(f->set); /* what an earlier run left unfinished */
    if (f->o.interval_s > 0) {
        int64_t now = wall_now(f);
        period_at(f, now);
        /* Content from an earlier period (the daemon was down across the
         * boundary) is archived at the first check. */
        struct stat st;
        int64_t t = now;
        if (f->size > 0 && fstat(f->fd, &st) == 0 && st.st_mtime < now)
            t = st.st_mtime;
        f->period = period_of(f, t);
        f->due = now; /* check at once */
    }
    dir_drop(f);
    *out = f;
    return 0;
fail:
    if (f->fd >= 0)
        close(f->fd);
    if (f->dirfd >= 0)
        close(f->dirfd);
    archive_set_release(f->set);
    free(f->path);
    free(f->dir);
    free(f);
    return rc;
}

ssize_t rotate_write(struct rotate_file *f, const void *buf, size_t len)
{
    if (f == NULL || (buf == NULL && len > 0) || len > SSIZE_MAX)
        return -EINVAL;
    const char *p = buf;
    size_t off = 0;
    int err = 0;
    if (len > 0 && f->fd >= 0 && !f->partial && f->o.interval_s > 0 &&
        interval_due(f, wall_now(f)))
        (void)rotate_auto(f, wall_now(f));
    while (off < len) {
        if (f->fd < 0 && (err = live_open(f, false, NULL)) != 0)
            break;
        const char *q = p + off;
        size_t n = len - off;
        if (f->partial) {
            /* Finish the line a failed write left, whatever the size. */
            const char *nl = memchr(q, '\n', n);
            if (nl != NULL)
                n = (size_t)(nl - q) + 1;
        } else {
            if (f->interval_pending)
                (void)rotate_auto(f, wall_now(f));
            if (f->fd >= 0 && f->o.max_size > 0) {
                size_t k = fits(f, q, n);
                if (k == 0) {
                    /* Someone may have truncated the file (copytruncate). */
                    struct stat st;
                    if (fstat(f->fd, &st) == 0 && st.st_size < f->size) {
                        f->size = st.st_size;
                        continue;
                    }
                    int rc = rotate_auto(f, wall_now(f));
                    if (rc >= 0 || f->fd < 0)
                        continue;
                    /* Rotation failed: write on past the limit rather than
                     * hold lines back; it is tried again later. */
                } else {
                    n = k;
                }
            }
            if (f->fd < 0)
                continue;
        }
        off += write_some(f, q, n, &err);
        if (err != 0)
            break;
    }
    dir_drop(f);
    return off > 0 ? (ssize_t)off : err;
}

int rotate_tick(struct rotate_file *f, int64_t now)
{
    if (f == NULL)
        return -EINVAL;
    if (f->fd < 0 || f->partial || !interval_due(f, now))
        return 0;
    int rc = rotate_auto(f, now);
    dir_drop(f);
    return rc == -EAGAIN ? 0 : rc;
}

int64_t rotate_next_tick(const struct rotate_file *f)
{
    if (f == NULL || f->o.interval_s <= 0)
        return INT64_MAX;
    if (f->interval_pending) /* waiting for a line's end, or for a retry */
        return f->partial ? INT64_MAX : f->checked + 1;
    return f->due;
}

int rotate_now(struct rotate_file *f)
{
    if (f == NULL)
        return -EINVAL;
    int rc = f->fd < 0 ? live_open(f, false, NULL) : 0;
    if (rc == 0 && f->partial)
        rc = -EAGAIN;
    else if (rc == 0 && f->size > 0 && (rc = rotate_do(f, wall_now(f))) >= 0)
        f->retry_at_ms = 0;
    dir_drop(f);
    return rc;
}

int rotate_reopen(struct rotate_file *f)
{
    if (f == NULL)
        return -EINVAL;
    struct stat old;
    memset(&old, 0, sizeof(old));
    bool keep = false;
    if (f->fd >= 0) {
        if (f->partial && fstat(f->fd, &old) == 0) {
            if (live_in_place(f)) {
                keep = true;
            } else if (write(f->fd, "\n", 1) == 1) {
                /* The file was moved away: it must still end with '\n'. */
                f->partial = false;
            }
        }
        if (fdatasync(f->fd) != 0)
            fail(f, &f->c->write_errors, "fdatasync", -errno);
        close(f->fd);
        f->fd = -1;
    }
    dir_drop(f); /* PATH is looked up afresh, its directories too */
    count(&f->c->reopens);
    int rc = live_open(f, false, keep ? &old : NULL);
    dir_drop(f);
    return rc;
}

int rotate_sync(struct rotate_file *f)
{
    if (f == NULL)
        return -EINVAL;
    if (f->fd < 0)
        return -EBADF;
    if (fdatasync(f->fd) != 0)
        return fail(f, &f->c->write_errors, "fdatasync", -errno);
    return 0;
}

int rotate_unwrite(struct rotate_file *f, size_t n)
{
    if (f == NULL || f->fd < 0 || (int64_t)n > f->size)
        return -EINVAL;
    if (n == 0)
        return 0;
    if (ftruncate(f->fd, (off_t)(f->size - (int64_t)n)) != 0)
        return fail(f, &f->c->write_errors, "ftruncate", -errno);
    f->size -= (int64_t)n;
    f->partial = false;
    return 0;
}

int64_t rotate_size(const struct rotate_file *f)
{
    return f != NULL ? f->size : 0;
}

int rotate_wait(struct rotate_file *f, int64_t wait_ms)
{
    if (f == NULL)
        return -EINVAL;
    if (f->set == NULL)
        return 0;
    return archive_set_wait(f->set, wait_ms);
}

struct rotate_counters *rotate_counters_of(struct rotate_file *f)
{
    return f != NULL ? f->c : NULL;
}

static int close_file(struct rotate_file *f, bool sync)
{
    if (f == NULL)
        return -EINVAL;
    int rc = 0;
    if (f->fd >= 0) {
        if (!sync)
            (void)sync_file_range(f->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
        else if (fsync(f->fd) != 0)
            rc = fail(f, &f->c->write_errors, "fsync", -errno);
        if (close(f->fd) != 0 && rc == 0)
            rc = fail(f, &f->c->write_errors, "close", -errno);
    }
    if (f->dirfd >= 0)
        close(f->dirfd);
    archive_set_release(f->set);
    free(f->path);
    free(f->dir);
    free(f);
    return rc;
}

int rotate_close(struct rotate_file *f)
{
    return close_file(f, true);
}

int rotate_close_lazy(struct rotate_file *f)
{
    return close_file(f, false);
}
