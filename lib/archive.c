/*
 * archive: names of archives, their compression and pruning, and the worker
 * thread that does both off the writer's thread.  See archive.h.
 */
#include "archive.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "clock.h"
#include "rotate.h"
#include "safedir.h"

#define CHUNK (256 * 1024)

static const char *const form_suffix[] = {"", ".gz", ".zst"};

/* ---- counters ------------------------------------------------------------ */

static void count(_Atomic uint64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

static void fail(struct rotate_counters *c, _Atomic uint64_t *n, const char *op, int err)
{
    if (n != NULL)
        count(n);
    atomic_store_explicit(&c->last_error_op, op, memory_order_relaxed);
    atomic_store_explicit(&c->last_error, err, memory_order_relaxed);
}

/* ---- names --------------------------------------------------------------- */

int64_t archive_stamp(int64_t t)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (gmtime_r(&tt, &tm) == NULL || tm.tm_year + 1900 > 9999)
        return INT64_C(99991231235959);
    if (tm.tm_year + 1900 < 0)
        return 0;
    int64_t date = (int64_t)(tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
    return date * 1000000 + tm.tm_hour * 10000 + tm.tm_min * 100 + tm.tm_sec;
}

int archive_id_cmp(struct archive_id a, struct archive_id b)
{
    if (a.stamp != b.stamp)
        return a.stamp < b.stamp ? -1 : 1;
    if (a.seq != b.seq)
        return a.seq < b.seq ? -1 : 1;
    return 0;
}

int archive_name(char *out, size_t outlen, const char *base, struct archive_id id,
                 enum archive_form form)
{
    int n = snprintf(out, outlen, "%s.%08lldT%06lldZ.%03llu%s", base,
                     (long long)(id.stamp / 1000000), (long long)(id.stamp % 1000000),
                     (unsigned long long)id.seq, form_suffix[form]);
    if (n < 0 || (size_t)n >= outlen)
        return -ENAMETOOLONG;
    return 0;
}

/* Read exactly n decimal digits. */
static bool digits(const char **p, int n, int64_t *v)
{
    int64_t x = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        x = x * 10 + (c - '0');
    }
    *p += n;
    *v = x;
    return true;
}

int archive_parse(const char *name, const char *base, struct archive_id *id,
                  enum archive_form *form, bool *tmp)
{
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) != 0 || name[bl] != '.')
        return -EINVAL;
    const char *p = name + bl + 1;
    int64_t date, time;
    if (!digits(&p, 8, &date) || *p++ != 'T' || !digits(&p, 6, &time) || *p++ != 'Z' ||
        *p++ != '.')
        return -EINVAL;
    uint64_t seq = 0;
    const char *s = p;
    while (*p >= '0' && *p <= '9') {
        if (seq > (UINT64_MAX - 9) / 10)
            return -EINVAL;
        seq = seq * 10 + (uint64_t)(*p++ - '0');
    }
    if (p - s < 3)
        return -EINVAL;
    enum archive_form f = ARCHIVE_PLAIN;
    if (strncmp(p, ".gz", 3) == 0 && (p[3] == '\0' || p[3] == '.')) {
        f = ARCHIVE_GZ;
        p += 3;
    } else if (strncmp(p, ".zst", 4) == 0 && (p[4] == '\0' || p[4] == '.')) {
        f = ARCHIVE_ZST;
        p += 4;
    }
    bool t = false;
    if (f != ARCHIVE_PLAIN && strcmp(p, ".tmp") == 0) {
        t = true;
        p += 4;
    }
    if (*p != '\0')
        return -EINVAL;
    id->stamp = date * 1000000 + time;
    id->seq = seq;
    *form = f;
    *tmp = t;
    return 0;
}

/* One entry of a directory listing that is an archive of base. */
struct entry {
    struct archive_id id;
    enum archive_form form;
    bool tmp;
    int64_t size;
    char *name;
};

struct listing {
    struct entry *v;
    size_t n, cap;
};

static void listing_free(struct listing *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    int c = archive_id_cmp(x->id, y->id);
    if (c != 0)
        return c;
    return (int)x->form - (int)y->form;
}

/* FNV-1a of n bytes. */
static uint64_t hash_n(const char *p, size_t n)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= UINT64_C(1099511628211);
    }
    return h != 0 ? h : 1; /* 0 marks a free slot below */
}

/* A set of 64-bit hashes (open addressing, 0: a free slot). */
struct hashset {
    uint64_t *slot;
    size_t cap, n; /* cap a power of two, or 0 */
};

static bool hs_has(const struct hashset *h, uint64_t k)
{
    if (h->cap == 0)
        return false;
    for (size_t i = k & (h->cap - 1);; i = (i + 1) & (h->cap - 1)) {
        if (h->slot[i] == k)
            return true;
        if (h->slot[i] == 0)
            return false;
    }
}

static int hs_add(struct hashset *h, uint64_t k)
{
    if ((h->n + 1) * 2 > h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        uint64_t *v = calloc(cap, sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < h->cap; i++) {
            if (h->slot[i] == 0)
                continue;
            size_t j = h->slot[i] & (cap - 1);
            while (v[j] != 0)
                j = (j + 1) & (cap - 1);
            v[j] = h->slot[i];
        }
        free(h->slot);
        h->slot = v;
        h->cap = cap;
    }
    size_t i = k & (h->cap - 1);
    while (h->slot[i] != 0 && h->slot[i] != k)
        i = (i + 1) & (h->cap - 1);
    if (h->slot[i] == 0) {
        h->slot[i] = k;
        h->n++;
    }
    return 0;
}

static void hs_free(struct hashset *h)
{
    free(h->slot);
    memset(h, 0, sizeof(*h));
}

/* If name looks like an archive of some base (see the names above), the
 * length of that base: read from the right, the suffix has one reading. */
static bool archive_split(const char *name, size_t *base_len)
{
    const char *e = name + strlen(name);
    bool tmp = e - name > 4 && memcmp(e - 4, ".tmp", 4) == 0;
    if (tmp)
        e -= 4;
    if (e - name > 3 && memcmp(e - 3, ".gz", 3) == 0)
        e -= 3;
    else if (e - name > 4 && memcmp(e - 4, ".zst", 4) == 0)
        e -= 4;
    else if (tmp)
        return false;
    const char *d = e;
    while (d > name && d[-1] >= '0' && d[-1] <= '9')
        d--;
    /* ".YYYYmmddTHHMMSSZ." before at least three digits, after a base. */
    if (e - d < 3 || d - name < 19)
        return false;
    const char *p = d - 18;
    if (p[0] != '.' || p[9] != 'T' || p[16] != 'Z' || p[17] != '.')
        return false;
    for (int i = 1; i < 16; i++)
        if (i != 9 && (p[i] < '0' || p[i] > '9'))
            return false;
    *base_len = (size_t)(p - name);
    return true;
}

/* strcmp() of the first n bytes of key, as a string, with base. */
static int base_cmp_n(const char *key, size_t n, const char *base)
{
    int c = strncmp(key, base, n);
    if (c != 0)
        return c;
    return base[n] == '\0' ? 0 : -1;
}

/* List, in one pass over dirfd, the archives of the sorted distinct
 * bases[0..nb): ls[i] gets those of bases[i], oldest first; with_size
 * fills in sizes and keeps regular files only.  The base of every
 * archive-like name goes into seen (hashes) when it is not NULL. */
static int list_archives(int dirfd, const char *const *bases, size_t nb, bool with_size,
                         struct listing *ls, struct hashset *seen)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int e = -errno;
        close(fd);
        return e;
    }
    int rc = 0;
    struct dirent *de;
    for (;;) {
        errno = 0;
        if ((de = readdir(d)) == NULL) {
            rc = -errno;
            break;
        }
        size_t bl;
        if (!archive_split(de->d_name, &bl))
            continue;
        if (seen != NULL && (rc = hs_add(seen, hash_n(de->d_name, bl))) != 0)
            break;
        size_t lo = 0, hi = nb;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = base_cmp_n(de->d_name, bl, bases[mid]);
            if (c == 0) {
                lo = mid;
                break;
            }
            if (c < 0)
                hi = mid;
            else
                lo = mid + 1;
        }
        if (lo >= nb || base_cmp_n(de->d_name, bl, bases[lo]) != 0)
            continue;
        struct listing *l = &ls[lo];
        struct entry e = {0};
        if (archive_parse(de->d_name, bases[lo], &e.id, &e.form, &e.tmp) != 0)
            continue;
        if (with_size) {
            struct stat st;
            if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
                continue; /* gone meanwhile */
            if (!S_ISREG(st.st_mode))
                continue;
            e.size = st.st_size;
        }
        if (l->n == l->cap) {
            size_t cap = l->cap ? l->cap * 2 : 32;
            struct entry *v = realloc(l->v, cap * sizeof(*v));
            if (v == NULL) {
                rc = -ENOMEM;
                break;
            }
            l->v = v;
            l->cap = cap;
        }
        if ((e.name = strdup(de->d_name)) == NULL) {
            rc = -ENOMEM;
            break;
        }
        l->v[l->n++] = e;
    }
    closedir(d);
    for (size_t i = 0; i < nb; i++) {
        if (rc != 0)
            listing_free(&ls[i]);
        else if (ls[i].n > 1)
            qsort(ls[i].v, ls[i].n, sizeof(*ls[i].v), entry_cmp);
    }
    return rc;
}

int archive_scan_max(int dirfd, const char *base, struct archive_id *max)
{
    struct listing l = {0};
    int rc = list_archives(dirfd, &base, 1, false, &l, NULL);
    if (rc != 0)
        return rc;
    rc = l.n > 0;
    if (rc)
        *max = l.v[l.n - 1].id;
    listing_free(&l);
    return rc;
}

/* ---- compression --------------------------------------------------------- */

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static ssize_t read_some(int fd, void *p, size_t n)
{
    for (;;) {
        ssize_t r = read(fd, p, n);
        if (r >= 0 || errno != EINTR)
            return r < 0 ? -errno : r;
    }
}

static bool cancelled(const atomic_bool *cancel)
{
    return cancel != NULL && atomic_load_explicit(cancel, memory_order_relaxed);
}

static int gzip_stream(int in, int out, int level, const atomic_bool *cancel, char *ib,
                       char *ob)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    /* windowBits 15 + 16: a gzip header and trailer around the deflate data. */
    if (deflateInit2(&zs, level > 0 ? level : 6, Z_DEFLATED, 15 + 16, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return -ENOMEM;
    int rc = 0;
    for (;;) {
        if (cancelled(cancel)) {
            rc = -ECANCELED;
            break;
        }
        ssize_t n = read_some(in, ib, CHUNK);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        int flush = n == 0 ? Z_FINISH : Z_NO_FLUSH;
        zs.next_in = (Bytef *)ib;
        zs.avail_in = (uInt)n;
        int zr;
        do {
            zs.next_out = (Bytef *)ob;
            zs.avail_out = CHUNK;
            zr = deflate(&zs, flush);
            if (zr == Z_STREAM_ERROR) {
                rc = -EIO;
                break;
            }
            rc = write_all(out, ob, CHUNK - zs.avail_out);
        } while (rc == 0 && zs.avail_out == 0);
        if (rc != 0 || flush == Z_FINISH) {
            if (rc == 0 && zr != Z_STREAM_END)
                rc = -EIO;
            break;
        }
    }
    deflateEnd(&zs);
    return rc;
}

static int zstd_stream(int in, int out, int level, int64_t size, const atomic_bool *cancel,
                       char *ib, char *ob)
{
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    if (cc == NULL)
        return -ENOMEM;
    int rc = 0;
    if (ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel,
                                            level > 0 ? level : ZSTD_CLEVEL_DEFAULT)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1)) ||
        ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(cc, (unsigned long long)size))) {
        ZSTD_freeCCtx(cc);
        return -EINVAL;
    }
    for (;;) {
        if (cancelled(cancel)) {
            rc = -ECANCELED;
            break;
        }
        ssize_t n = read_some(in, ib, CHUNK);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        ZSTD_EndDirective mode = n == 0 ? ZSTD_e_end : ZSTD_e_continue;
        ZSTD_inBuffer zin = {ib, (size_t)n, 0};
        bool done;
        do {
            ZSTD_outBuffer zout = {ob, CHUNK, 0};
            size_t left = ZSTD_compressStream2(cc, &zout, &zin, mode);
            if (ZSTD_isError(left)) {
                /* The only likely one: the file changed size under us. */
                rc = -EIO;
                break;
            }
            rc = write_all(out, ob, zout.pos);
            done = mode == ZSTD_e_end ? left == 0 : zin.pos == zin.size;
        } while (rc == 0 && !done);
        if (rc != 0 || mode == ZSTD_e_end)
            break;
    }
    ZSTD_freeCCtx(cc);
    return rc;
}

int archive_compress(int dirfd, const char *name, int compress, int level,
                     const atomic_bool *cancel)
{
    if (compress != ROTATE_COMPRESS_GZIP && compress != ROTATE_COMPRESS_ZSTD)
        return -EINVAL;
    const char *suffix = form_suffix[compress == ROTATE_COMPRESS_GZIP ? ARCHIVE_GZ : ARCHIVE_ZST];
    char final[PATH_MAX], tmp[PATH_MAX];
    if ((size_t)snprintf(final, sizeof(final), "%s%s", name, suffix) >= sizeof(final) ||
        (size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", final) >= sizeof(tmp))
        return -ENAMETOOLONG;

    int in = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0)
        return -errno;
    int out = -1, rc = 0;
    char *ib = NULL, *ob = NULL;
    struct stat st;
    if (fstat(in, &st) != 0) {
        rc = -errno;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        goto out;
    }
    /* A .tmp left by a crash (or planted: even a symlink) goes first; the
     * copy is then a new file that nothing else can name. */
    (void)unlinkat(dirfd, tmp, 0);
    out = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                 st.st_mode & 07777);
    if (out < 0) {
        rc = -errno;
        goto out;
    }
    /* The compressed copy looks like the archive: same mode (the umask may
     * have cut it), same group, same times. */
    (void)fchmod(out, st.st_mode & 07777);
    (void)fchown(out, (uid_t)-1, st.st_gid);
    ib = malloc(CHUNK);
    ob = malloc(CHUNK);
    if (ib == NULL || ob == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    if (compress == ROTATE_COMPRESS_GZIP)
        rc = gzip_stream(in, out, level, cancel, ib, ob);
    else
        rc = zstd_stream(in, out, level, st.st_size, cancel, ib, ob);
    if (rc != 0)
        goto out;
    struct timespec times[2] = {st.st_atim, st.st_mtim};
    (void)futimens(out, times);
    if (fsync(out) != 0) {
        rc = -errno;
        goto out;
    }
    int o = out;
    out = -1;
    if (close(o) != 0) {
        rc = -errno;
        goto out;
    }
    /* Only now may the compressed copy take its final name, and only once
     * that name is durable may the plain archive go. */
    if (renameat(dirfd, tmp, dirfd, final) != 0) {
        rc = -errno;
        goto out;
    }
    if (fsync(dirfd) != 0) {
        rc = -errno;
        /* The rename happened: the copy is complete, but not known durable,
         * so the plain archive stays.  The next maintenance removes it. */
        goto done;
    }
    if (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
        rc = -errno;
    goto done;
out:
    if (out >= 0)
        close(out);
    (void)unlinkat(dirfd, tmp, 0);
done:
    free(ib);
    free(ob);
    close(in);
    return rc;
}

/* ---- the worker ---------------------------------------------------------- */

/* What the maintenance of one base works with. */
struct job_ctx {
    int dirfd;
    const struct archive_policy *pol;
    struct rotate_counters *c;
    const atomic_bool *cancel;
};

struct archive_set {
    struct archive_worker *w;
    struct archive_set *next; /* in its queued job; under w->mu */
    /* In the running job: set by the worker when the job starts, so that
     * a kick meanwhile (which links the set into a new queued job through
     * `next`) leaves the running job's list alone. */
    struct archive_set *run_next;
    struct archive_job *job;  /* under w->mu: the queued job it waits in */
    bool running;             /* under w->mu: in the job being run */
    int refs;                 /* under w->mu */
    bool has_file;            /* under w->mu: the file's reference is held */
    char *dir;
    size_t trusted;
    char *base;
    uint64_t base_hash;
    struct archive_policy pol;
    struct rotate_counters *c;
    struct rotate_counters own;
};

/* The queued work of one directory: every set kicked since its last scan
 * began.  One pass over the directory serves them all, and the job holds
 * names, not descriptors, while it waits. */
struct archive_job {
    char *dir;
    size_t trusted;
    uint64_t hash;
    struct archive_set *sets;  /* each holds a reference for the job */
    struct archive_job *next;  /* in the queue */
    struct archive_job *hnext; /* among the queued jobs, by directory */
    atomic_bool cancel;
};

/* What this run has learnt of a directory by scanning it once: the bases
 * that have archives there.  A file opened later whose base has none has
 * nothing to maintain (it cannot have leftovers of an earlier run), so its
 * open costs no scan; a rotation adds its base. */
struct census {
    char *dir;
    size_t trusted;
    uint64_t hash;
    struct census *hnext;
    bool done; /* a scan has completed */
    struct hashset bases;
};

#define BUCKETS 256

struct archive_worker {
    pthread_mutex_t mu;
    pthread_cond_t work; /* queued work, or stop */
    pthread_cond_t idle; /* a job ended */
    struct archive_job *head, *tail;
    struct archive_job *running;
    struct archive_job *queued[BUCKETS]; /* queued jobs by directory */
    struct census *census[BUCKETS];
    size_t files; /* sets whose file is open */
    bool stop;
    pthread_t thread;
};

static uint64_t dir_hash(const char *dir, size_t trusted)
{
    uint64_t h = hash_n(dir, strlen(dir));
    return h ^ ((uint64_t)trusted * UINT64_C(0x9e3779b97f4a7c15));
}

static void set_free(struct archive_set *s)
{
    free(s->dir);
    free(s->base);
    free(s);
}

/* Drop one reference; w->mu held. */
static void set_unref_locked(struct archive_set *s)
{
    assert(s->refs > 0);
    if (--s->refs == 0)
        set_free(s);
}

static int unlink_entry(const struct job_ctx *x, const struct entry *e)
{
    if (unlinkat(x->dirfd, e->name, 0) != 0 && errno != ENOENT) {
        fail(x->c, &x->c->prune_errors, "unlink archive", -errno);
        return -1;
    }
    return 0;
}

/* The archive made of entries [i, j) (one id, several forms) is deleted. */
static bool prune_one(const struct job_ctx *x, struct listing *l, size_t i, size_t j)
{
    bool ok = true;
    for (size_t k = i; k < j; k++)
        if (unlink_entry(x, &l->v[k]) != 0)
            ok = false;
    if (ok)
        count(&x->c->pruned);
    return ok;
}

/* One id's entries start at i; return where the next id starts. */
static size_t group_end(const struct listing *l, size_t i)
{
    size_t j = i + 1;
    while (j < l->n && archive_id_cmp(l->v[j].id, l->v[i].id) == 0)
        j++;
    return j;
}

/* The maintenance of one base, whose archives the directory scan put in
 * l (oldest first, with sizes); l is the caller's to free. */
static void maintain(const struct job_ctx *x, struct listing *l_)
{
    struct listing l = *l_;
    const struct archive_policy *pol = x->pol;
    int rc;
    bool removed = false;

    /* Leftovers of an interrupted compression: never the only copy. */
    size_t n = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (l.v[i].tmp) {
            if (unlinkat(x->dirfd, l.v[i].name, 0) != 0 && errno != ENOENT)
                fail(x->c, &x->c->compress_errors, "unlink .tmp", -errno);
            free(l.v[i].name);
            removed = true;
        } else {
            l.v[n++] = l.v[i];
        }
    }
    l.n = n;

    /* A plain archive beside its compressed copy: the copy was renamed into
     * place after its fsync, so it is complete; make the rename durable,
     * then drop the plain one. */
    bool synced = false;
    n = 0;
    for (size_t i = 0; i < l.n;) {
        size_t j = group_end(&l, i);
        if (j - i > 1 && l.v[i].form == ARCHIVE_PLAIN) {
            if (!synced)
                (void)fsync(x->dirfd);
            synced = true;
            if (unlinkat(x->dirfd, l.v[i].name, 0) != 0 && errno != ENOENT)
                fail(x->c, &x->c->compress_errors, "unlink compressed archive", -errno);
            free(l.v[i].name);
            removed = true;
            i++;
        }
        for (; i < j; i++)
            l.v[n++] = l.v[i];
    }
    l.n = n;

    /* Count first, so that nothing is compressed only to be deleted. */
    size_t archives = 0;
    for (size_t i = 0; i < l.n; i = group_end(&l, i))
        archives++;
    size_t first = 0; /* entries before this one are gone */
    while (pol->keep > 0 && archives > (size_t)pol->keep && first < l.n) {
        size_t j = group_end(&l, first);
        prune_one(x, &l, first, j);
        removed = true;
        archives--;
        first = j;
    }

    if (pol->compress != ROTATE_COMPRESS_NONE) {
        for (size_t i = first; i < l.n; i++) {
            if (atomic_load_explicit(x->cancel, memory_order_relaxed))
                break;
            if (l.v[i].form != ARCHIVE_PLAIN)
                continue;
            rc = archive_compress(x->dirfd, l.v[i].name, pol->compress, pol->level,
                                  x->cancel);
            if (rc == 0) {
                count(&x->c->compressed);
                struct stat st;
                enum archive_form f =
                    pol->compress == ROTATE_COMPRESS_GZIP ? ARCHIVE_GZ : ARCHIVE_ZST;
                char *name = malloc(strlen(l.v[i].name) + 5);
                if (name != NULL) {
                    strcpy(name, l.v[i].name);
                    strcat(name, form_suffix[f]);
                    if (fstatat(x->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                        l.v[i].size = st.st_size;
                    free(l.v[i].name);
                    l.v[i].name = name;
                    l.v[i].form = f;
                }
            } else if (rc != -ECANCELED && rc != -ENOENT) {
                fail(x->c, &x->c->compress_errors, "compress", rc);
            }
        }
    }

    /* Cancelled (the daemon is stopping): plain sizes would count for
     * archives about to shrink, and delete more than max_total asks. */
    if (pol->max_total > 0 && !atomic_load_explicit(x->cancel, memory_order_relaxed)) {
        int64_t total = 0;
        for (size_t i = first; i < l.n; i++)
            total += l.v[i].size;
        while (total > pol->max_total && first < l.n) {
            size_t j = group_end(&l, first);
            prune_one(x, &l, first, j);
            removed = true;
            for (size_t k = first; k < j; k++)
                total -= l.v[k].size;
            first = j;
        }
    }
    if (removed && fsync(x->dirfd) != 0)
        fail(x->c, &x->c->prune_errors, "fsync directory", -errno);
    *l_ = l;
}

static int sort_by_base(const void *a, const void *b)
{
    const struct archive_set *x = *(const struct archive_set *const *)a;
    const struct archive_set *y = *(const struct archive_set *const *)b;
    return strcmp(x->base, y->base);
}

/* Run a job: one scan of the directory, then each base's maintenance.  A
 * base kicked by several sets (a file closed and opened again) is done
 * once.  seen, if not NULL, collects the bases with archives (a census).
 * Returns 0 if the directory was scanned. */
static int run_job(struct archive_job *job, struct hashset *seen)
{
    size_t n = 0;
    for (struct archive_set *s = job->sets; s != NULL; s = s->run_next)
        n++;
    int dirfd = safedir_open(job->dir, job->trusted, false);
    struct archive_set **v = calloc(n, sizeof(*v));
    const char **bases = calloc(n, sizeof(*bases));
    struct listing *ls = calloc(n, sizeof(*ls));
    int rc = dirfd < 0 ? dirfd : (v == NULL || bases == NULL || ls == NULL) ? -ENOMEM : 0;
    size_t nb = 0;
    if (rc == 0) {
        size_t i = 0;
        for (struct archive_set *s = job->sets; s != NULL; s = s->run_next)
            v[i++] = s;
        qsort(v, n, sizeof(*v), sort_by_base);
        for (i = 0; i < n; i++)
            if (nb == 0 || strcmp(v[nb - 1]->base, v[i]->base) != 0)
                v[nb++] = v[i];
        for (i = 0; i < nb; i++)
            bases[i] = v[i]->base;
        rc = list_archives(dirfd, bases, nb, true, ls, seen);
    }
    if (rc != 0) {
        for (struct archive_set *s = job->sets; s != NULL; s = s->run_next)
            fail(s->c, &s->c->prune_errors, dirfd < 0 ? "open directory" : "list archives", rc);
    } else {
        for (size_t i = 0; i < nb; i++) {
            struct job_ctx x = {dirfd, &v[i]->pol, v[i]->c, &job->cancel};
            if (ls[i].n > 0)
                maintain(&x, &ls[i]);
            listing_free(&ls[i]);
        }
    }
    if (dirfd >= 0)
        close(dirfd);
    free(v);
    free(bases);
    free(ls);
    return rc;
}

static struct census *census_find(struct archive_worker *w, const char *dir, size_t trusted,
                                  uint64_t h)
{
    for (struct census *c = w->census[h % BUCKETS]; c != NULL; c = c->hnext)
        if (c->hash == h && c->trusted == trusted && strcmp(c->dir, dir) == 0)
            return c;
    return NULL;
}

static void *worker_main(void *arg)
{
    struct archive_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->head == NULL && !w->stop)
            pthread_cond_wait(&w->work, &w->mu);
        if (w->stop)
            break;
        struct archive_job *job = w->head;
        w->head = job->next;
        if (w->head == NULL)
            w->tail = NULL;
        struct archive_job **pp = &w->queued[job->hash % BUCKETS];
        while (*pp != job)
            pp = &(*pp)->hnext;
        *pp = job->hnext;
        for (struct archive_set *s = job->sets; s != NULL; s = s->next) {
            s->job = NULL; /* a kick from now on queues a new job */
            s->running = true;
            s->run_next = s->next;
        }
        w->running = job;
        /* The first scan of a directory takes its census; made now, so that
         * a rotation meanwhile is noted in it. */
        struct census *c = census_find(w, job->dir, job->trusted, job->hash);
        if (c == NULL && (c = calloc(1, sizeof(*c))) != NULL) {
            if ((c->dir = strdup(job->dir)) == NULL) {
                free(c);
                c = NULL;
            } else {
                c->trusted = job->trusted;
                c->hash = job->hash;
                c->hnext = w->census[c->hash % BUCKETS];
                w->census[c->hash % BUCKETS] = c;
            }
        }
        bool take_census = c != NULL && !c->done;
        pthread_mutex_unlock(&w->mu);

        struct hashset seen = {0};
        int rc = run_job(job, take_census ? &seen : NULL);

        pthread_mutex_lock(&w->mu);
        if (take_census && rc == 0) {
            bool ok = true;
            for (size_t i = 0; ok && i < seen.cap; i++)
                if (seen.slot[i] != 0 && hs_add(&c->bases, seen.slot[i]) != 0)
                    ok = false;
            c->done = ok; /* short of memory: no census, every open scans */
        }
        hs_free(&seen);
        w->running = NULL;
        for (struct archive_set *s = job->sets, *next; s != NULL; s = next) {
            next = s->run_next;
            s->running = false;
            set_unref_locked(s); /* the job's reference */
        }
        free(job->dir);
        free(job);
        pthread_cond_broadcast(&w->idle);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t a;
    int rc = pthread_condattr_init(&a);
    if (rc != 0)
        return -rc;
    rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
    return -rc;
}

int archive_worker_start(struct archive_worker **out)
{
    if (out == NULL)
        return -EINVAL;
    struct archive_worker *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return -ENOMEM;
    int rc = -pthread_mutex_init(&w->mu, NULL);
    if (rc != 0)
        goto fail_mu;
    if ((rc = cond_init_monotonic(&w->work)) != 0)
        goto fail_work;
    if ((rc = cond_init_monotonic(&w->idle)) != 0)
        goto fail_idle;
    if ((rc = -pthread_create(&w->thread, NULL, worker_main, w)) != 0)
        goto fail_thread;
    *out = w;
    return 0;
fail_thread:
    pthread_cond_destroy(&w->idle);
fail_idle:
    pthread_cond_destroy(&w->work);
fail_work:
    pthread_mutex_destroy(&w->mu);
fail_mu:
    free(w);
    return rc;
}

static struct timespec deadline_after(int64_t ms)
{
    return clock_timespec(clock_mono_ns() + (uint64_t)ms * 1000000u);
}

int archive_worker_stop(struct archive_worker *w, int64_t wait_ms)
{
    if (w == NULL)
        return -EINVAL;
    pthread_mutex_lock(&w->mu);
    if (w->files > 0) {
        pthread_mutex_unlock(&w->mu);
        return -EBUSY;
    }
    struct timespec dl = deadline_after(wait_ms > 0 ? wait_ms : 0);
    int rc = 0;
    while ((w->head != NULL || w->running != NULL) && rc == 0) {
        if (wait_ms < 0)
            pthread_cond_wait(&w->idle, &w->mu);
        else
            rc = pthread_cond_timedwait(&w->idle, &w->mu, &dl);
    }
    bool dropped = w->head != NULL || w->running != NULL;
    w->stop = true;
    if (w->running != NULL)
        atomic_store_explicit(&w->running->cancel, true, memory_order_relaxed);
    while (w->head != NULL) {
        struct archive_job *job = w->head;
        w->head = job->next;
        for (struct archive_set *s = job->sets, *next; s != NULL; s = next) {
            next = s->next;
            s->job = NULL;
            set_unref_locked(s);
        }
        free(job->dir);
        free(job);
    }
    w->tail = NULL;
    memset(w->queued, 0, sizeof(w->queued));
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    for (size_t i = 0; i < BUCKETS; i++) {
        for (struct census *c = w->census[i], *next; c != NULL; c = next) {
            next = c->hnext;
            hs_free(&c->bases);
            free(c->dir);
            free(c);
        }
    }
    pthread_cond_destroy(&w->idle);
    pthread_cond_destroy(&w->work);
    pthread_mutex_destroy(&w->mu);
    free(w);
    return dropped ? -ETIMEDOUT : 0;
}

/* ---- sets ---------------------------------------------------------------- */

int archive_set_new(struct archive_worker *w, const char *dir, size_t trusted, const char *base,
                    const struct archive_policy *pol, struct rotate_counters *counters,
                    struct archive_set **out)
{
    if (w == NULL || dir == NULL || base == NULL || pol == NULL || out == NULL)
        return -EINVAL;
    struct archive_set *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    if ((s->dir = strdup(dir)) == NULL || (s->base = strdup(base)) == NULL) {
        set_free(s);
        return -ENOMEM;
    }
    s->trusted = trusted;
    s->base_hash = hash_n(base, strlen(base));
    s->w = w;
    s->pol = *pol;
    s->c = counters != NULL ? counters : &s->own;
    s->refs = 1;
    s->has_file = true;
    pthread_mutex_lock(&w->mu);
    w->files++;
    pthread_mutex_unlock(&w->mu);
    *out = s;
    return 0;
}

/* Put s in its directory's queued job (made if there is none); w->mu held. */
static void kick_locked(struct archive_set *s)
{
    struct archive_worker *w = s->w;
    if (s->job != NULL || w->stop)
        return;
    uint64_t h = dir_hash(s->dir, s->trusted);
    struct archive_job *job = w->queued[h % BUCKETS];
    while (job != NULL &&
           (job->hash != h || job->trusted != s->trusted || strcmp(job->dir, s->dir) != 0))
        job = job->hnext;
    if (job == NULL) {
        if ((job = calloc(1, sizeof(*job))) == NULL || (job->dir = strdup(s->dir)) == NULL) {
            free(job);
            fail(s->c, &s->c->prune_errors, "queue maintenance", -ENOMEM);
            return;
        }
        job->trusted = s->trusted;
        job->hash = h;
        atomic_init(&job->cancel, false);
        job->hnext = w->queued[h % BUCKETS];
        w->queued[h % BUCKETS] = job;
        if (w->tail != NULL)
            w->tail->next = job;
        else
            w->head = job;
        w->tail = job;
    }
    s->next = job->sets;
    job->sets = s;
    s->job = job;
    s->refs++;
    pthread_cond_signal(&w->work);
}

void archive_set_kick(struct archive_set *s)
{
    struct archive_worker *w = s->w;
    pthread_mutex_lock(&w->mu);
    /* A rotation made an archive: the census must know the base has one. */
    struct census *c = census_find(w, s->dir, s->trusted, dir_hash(s->dir, s->trusted));
    if (c != NULL && hs_add(&c->bases, s->base_hash) != 0)
        c->done = false; /* cannot note it: scan at every open again */
    kick_locked(s);
    pthread_mutex_unlock(&w->mu);
}

void archive_set_kick_open(struct archive_set *s)
{
    struct archive_worker *w = s->w;
    pthread_mutex_lock(&w->mu);
    struct census *c = census_find(w, s->dir, s->trusted, dir_hash(s->dir, s->trusted));
    if (c == NULL || !c->done || hs_has(&c->bases, s->base_hash))
        kick_locked(s);
    pthread_mutex_unlock(&w->mu);
}

int archive_set_wait(struct archive_set *s, int64_t wait_ms)
{
    struct archive_worker *w = s->w;
    struct timespec dl = deadline_after(wait_ms > 0 ? wait_ms : 0);
    int rc = 0;
    pthread_mutex_lock(&w->mu);
    while ((s->job != NULL || s->running) && rc == 0) {
        if (wait_ms < 0)
            pthread_cond_wait(&w->idle, &w->mu);
        else
            rc = pthread_cond_timedwait(&w->idle, &w->mu, &dl);
    }
    bool busy = s->job != NULL || s->running;
    pthread_mutex_unlock(&w->mu);
    return busy ? -ETIMEDOUT : 0;
}

void archive_set_release(struct archive_set *s)
{
    if (s == NULL)
        return;
    struct archive_worker *w = s->w;
    pthread_mutex_lock(&w->mu);
    assert(s->has_file);
    s->has_file = false;
    w->files--;
    set_unref_locked(s);
    pthread_mutex_unlock(&w->mu);
}

struct rotate_counters *archive_set_counters(struct archive_set *s)
{
    return s->c;
}
