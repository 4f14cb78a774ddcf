/*
 * output_file: the file output kind.  See output.h for the seam.
 *
 * A plain path is one sink, opened at start-up.  A path with placeholders
 * (%{app}, %{host}, ...) names a file per record: the files are opened as
 * records name them and kept in a hash table by path, with a list in
 * order of use; past max_files the least recently used is written out and
 * closed.  Finding a record's file costs one expansion, one hash and
 * (nearly always) one string comparison, however many files are open.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "output.h"

/* One open (or failed) file of a templated output. */
struct ofile {
    struct sink sink;
    uint64_t hash;
    struct ofile *hnext;       /* in its hash bucket */
    struct ofile *prev, *next; /* in order of use, most recent first */
};

struct file_output {
    struct output *o;
    struct sink_conf sc;
    bool templated;
    struct ofile *mru, *lru; /* both ends of the use list */
    struct ofile **buckets;  /* n_buckets, a power of two */
    size_t n_buckets;
    size_t n_files;
    /* Files closed to make room while dirty (sink_close_lazy): the fsync
     * interval still owes their data to the disk; one syncfs(2) of the
     * output's file system pays for all of them. */
    bool owed;
    uint64_t owed_since_ms;
};

static struct file_output *fo_of(const struct output *o)
{
    return o->state;
}

/* FNV-1a: paths are short, and this is cheap and spreads them well. */
static uint64_t path_hash(const char *s)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(1099511628211);
    }
    return h;
}

/* ---- the table and the use list ----------------------------------------- */

static void use_unlink(struct file_output *fo, struct ofile *f)
{
    if (f->prev != NULL)
        f->prev->next = f->next;
    else
        fo->mru = f->next;
    if (f->next != NULL)
        f->next->prev = f->prev;
    else
        fo->lru = f->prev;
    f->prev = f->next = NULL;
}

static void use_push(struct file_output *fo, struct ofile *f)
{
    f->prev = NULL;
    f->next = fo->mru;
    if (fo->mru != NULL)
        fo->mru->prev = f;
    fo->mru = f;
    if (fo->lru == NULL)
        fo->lru = f;
}

static struct ofile **bucket(struct file_output *fo, uint64_t h)
{
    return &fo->buckets[h & (fo->n_buckets - 1)];
}

static struct ofile *table_find(struct file_output *fo, const char *path, uint64_t h)
{
    for (struct ofile *f = *bucket(fo, h); f != NULL; f = f->hnext)
        if (f->hash == h && strcmp(f->sink.path, path) == 0)
            return f;
    return NULL;
}

static void table_remove(struct file_output *fo, struct ofile *f)
{
    struct ofile **pp = bucket(fo, f->hash);
    while (*pp != f)
        pp = &(*pp)->hnext;
    *pp = f->hnext;
}

static void ofile_free(struct ofile *f)
{
    sink_fini(&f->sink);
    free(f);
}

/* Add a file for path (not open yet) as the most recently used. */
static struct ofile *file_add(struct file_output *fo, const char *path, uint64_t h)
{
    struct ofile *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    if (sink_init(&f->sink, &fo->sc, path) != 0) {
        free(f);
        return NULL;
    }
    f->hash = h;
    struct ofile **b = bucket(fo, h);
    f->hnext = *b;
    *b = f;
    use_push(fo, f);
    fo->n_files++;
    return f;
}

static void file_drop(struct file_output *fo, struct ofile *f)
{
    table_remove(fo, f);
    use_unlink(fo, f);
    fo->n_files--;
    ofile_free(f);
}

/* ---- choosing the file -------------------------------------------------- */

/* The sink a record goes to: the one file of a plain output, or for a
 * template the file its fields name.  NULL only when memory runs out or
 * the path does not fit. */
static struct sink *sink_for(struct file_output *fo, const struct record *r)
{
    if (!fo->templated)
        return fo->mru != NULL ? &fo->mru->sink : NULL;
    const struct output *o = fo->o;
    char path[PATH_MAX];
    if (route_expand(o->oc->path, r, o->env->host, path, sizeof(path)) < 0)
        return NULL;
    uint64_t h = path_hash(path);
    struct ofile *f = table_find(fo, path, h);
    if (f != NULL) {
        if (f != fo->mru) {
            use_unlink(fo, f);
            use_push(fo, f);
        }
        return &f->sink;
    }
    if (fo->n_files >= (size_t)o->oc->max_files) {
        struct ofile *old = fo->lru;
        if (old->sink.buf.len > 0)
            sink_flush(&old->sink);
        if (sink_close_lazy(&old->sink) && !fo->owed) {
            fo->owed = true;
            fo->owed_since_ms = o->env->sink.now_ms();
        }
        file_drop(fo, old);
    }
    if ((f = file_add(fo, path, h)) == NULL)
        return NULL;
    int rc = sink_open(&f->sink);
    if (rc == -ELOOP)
        sink_refuse(&f->sink, rc);
    else if (rc != 0)
        log_msg(LOG_ERR, "output %s: %s (will retry)", path, strerror(-rc));
    return &f->sink;
}

/* ---- the kind's functions ------------------------------------------------ */

static bool file_claims(const struct output_conf *oc)
{
    (void)oc;
    return true; /* the default kind: every output with a path */
}

static int file_open(struct output *o, char *err, size_t errlen)
{
    const struct output_conf *oc = o->oc;
    struct file_output *fo = calloc(1, sizeof(*fo));
    if (fo == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    o->state = fo;
    fo->o = o;
    fo->sc.aw = o->env->aw;
    fo->sc.st = o->st;
    fo->sc.fsync_ms = oc->fsync_ms;
    fo->sc.cx = &o->env->sink;
    if (config_rotate_opts(oc, &o->st->rot, &fo->sc.ropts, err, errlen) != 0)
        return -EINVAL;
    fo->templated = route_is_template(oc->path);
    if (fo->templated)
        fo->sc.ropts.trusted_len = safedir_trusted_len(oc->path);
    /* Buckets: at least twice max_files, so that chains stay short. */
    size_t want = fo->templated ? (size_t)oc->max_files * 2 : 1;
    fo->n_buckets = 1;
    while (fo->n_buckets < want)
        fo->n_buckets <<= 1;
    fo->buckets = calloc(fo->n_buckets, sizeof(*fo->buckets));
    if (fo->buckets == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (fo->templated)
        return 0; /* files are opened as records name them */
    struct ofile *f = file_add(fo, oc->path, path_hash(oc->path));
    if (f == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = sink_open(&f->sink);
    if (rc == -ELOOP) {
        snprintf(err, errlen,
                 "output %s: is a symbolic link; lograild never writes through one (name the "
                 "link's target in the configuration, or put a regular file there)",
                 oc->path);
        return rc;
    }
    if (rc != 0) {
        snprintf(err, errlen, "output %s: %s", oc->path, strerror(-rc));
        return rc;
    }
    return 0;
}

static int file_accept(struct output *o, const struct record *r)
{
    struct sink *s = sink_for(fo_of(o), r);
    if (s == NULL)
        return -ENOMEM;
    if (s->refused) {
        counter_add(&o->st->records_refused, 1);
        return OUTPUT_REFUSED;
    }
    int rc = format_record(&o->fmt, r, &s->buf);
    if (rc != 0)
        return rc < 0 ? rc : -EINVAL;
    s->pending++;
    return 0;
}

/* syncfs(2) of the file system under the template's literal directory. */
static void sync_owed(struct file_output *fo)
{
    const char *p = fo->o->oc->path;
    size_t k = fo->sc.ropts.trusted_len;
    if (k == SAFEDIR_ALL) {
        const char *sl = strrchr(p, '/');
        k = sl != NULL ? (size_t)(sl - p) : 0;
    }
    char dir[PATH_MAX];
    if (k == 0)
        strcpy(dir, p[0] == '/' ? "/" : ".");
    else if (k < sizeof(dir))
        memcpy(dir, p, k), dir[k] = '\0';
    else
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd < 0 ? -errno : syncfs(fd) != 0 ? -errno : 0;
    if (fd >= 0)
        close(fd);
    fo->owed = false;
    if (rc != 0) {
        counter_add(&fo->o->st->write_errors, 1);
        atomic_store_explicit(&fo->o->st->last_errno, -rc, memory_order_relaxed);
        log_msg(LOG_ERR, "output %s: syncfs of %s: %s", p, dir, strerror(-rc));
    }
}

static void file_flush(struct output *o, uint64_t now_ms, bool force_sync)
{
    struct file_output *fo = fo_of(o);
    bool every_batch = o->oc->fsync_ms == 0;
    for (struct ofile *f = fo->mru; f != NULL; f = f->next) {
        if (f->sink.buf.len > 0)
            sink_flush(&f->sink);
        sink_maybe_fsync(&f->sink, now_ms, force_sync || every_batch);
    }
    if (fo->owed && (force_sync || now_ms >= fo->owed_since_ms + (uint64_t)o->oc->fsync_ms))
        sync_owed(fo);
}

static void file_tick(struct output *o, int64_t now_s)
{
    if (o->oc->rotate_interval_s <= 0)
        return;
    for (struct ofile *f = fo_of(o)->mru; f != NULL; f = f->next)
        if (f->sink.rf != NULL && rotate_tick(f->sink.rf, now_s) < 0)
            counter_add(&o->st->write_errors, 1);
}

static uint64_t file_next_wait_ms(struct output *o, uint64_t now_ms, uint64_t wait)
{
    if (o->oc->fsync_ms <= 0)
        return wait; /* interval rotation is seen within the writer's idle wake */
    struct file_output *fo = fo_of(o);
    if (fo->owed) {
        uint64_t due = fo->owed_since_ms + (uint64_t)o->oc->fsync_ms;
        uint64_t left = due > now_ms ? due - now_ms : 0;
        if (left < wait)
            wait = left;
    }
    for (struct ofile *f = fo->mru; f != NULL; f = f->next) {
        uint64_t left = sink_fsync_due_in(&f->sink, now_ms);
        if (left < wait)
            wait = left;
    }
    return wait;
}

static void file_reopen(struct output *o)
{
    for (struct ofile *f = fo_of(o)->mru; f != NULL; f = f->next) {
        struct sink *s = &f->sink;
        int rc = sink_reopen(s);
        if (rc != 0 && rc != -ELOOP)
            log_msg(LOG_ERR, "reopen %s: %s (will retry on the next write)", s->path,
                    strerror(-rc));
    }
}

static void file_rotate(struct output *o)
{
    for (struct ofile *f = fo_of(o)->mru; f != NULL; f = f->next) {
        struct sink *s = &f->sink;
        int rc = s->rf != NULL ? rotate_now(s->rf) : 0;
        if (rc < 0)
            log_msg(LOG_ERR, "rotate %s: %s", s->path, strerror(-rc));
    }
}

static void file_close(struct output *o)
{
    struct file_output *fo = fo_of(o);
    if (fo == NULL)
        return;
    for (struct ofile *f = fo->mru; f != NULL; f = f->next)
        sink_close(&f->sink);
}

static void file_free(struct output *o)
{
    struct file_output *fo = fo_of(o);
    if (fo == NULL)
        return;
    for (struct ofile *f = fo->mru, *next; f != NULL; f = next) {
        next = f->next;
        ofile_free(f);
    }
    free(fo->buckets);
    free(fo);
    o->state = NULL;
}

const struct output_kind output_file_kind = {
    .name = "file",
    .claims = file_claims,
    .open = file_open,
    .accept = file_accept,
    .flush = file_flush,
    .tick = file_tick,
    .next_wait_ms = file_next_wait_ms,
    .reopen = file_reopen,
    .rotate = file_rotate,
    .close = file_close,
    .free = file_free,
    .stats = NULL,
};
