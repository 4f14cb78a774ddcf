/*
 * output_file: the file output kind.  See output.h for the seam.
 *
 * A plain path is one sink, opened at start-up.  A path with placeholders
 * (%{app}, %{host}, ...) names a file per record: the files are opened as
 * records name them and kept in a hash table by path, with a list in
 * order of use; past max_files the least recently used is written out and
 * closed.  Finding a record's file costs one expansion, one hash and
 * (nearly always) one string comparison, however many files are open.
 *
 * Parking.  With many more names than max_files (a long tail of rare
 * apps), most of the cost is opening and closing files, not writing them.
 * So while the writer is behind (its batches come full), a record for a
 * file that is not open does not open it: its lines wait in the file's
 * buffer ("parked", no descriptor), and more records for it are added
 * there.  Parked files are written out together (each opened, written,
 * closed: one open for all the records it gathered) when the writer has
 * caught up (a batch that was not full), PARK_MS after the first was
 * parked, when they hold PARK_MAX_BYTES, at shutdown, and at once for a
 * record whose sender waits for the "written" mark (acks.h).  With fsync
 * after every batch nothing is parked, and with an interval the data is
 * durable within the interval of its arrival, as without parking.  Lines of
 * one file are never reordered: a file is either open or parked, and every
 * line of it goes through its one buffer.  When parked files are written,
 * a busy one takes the place of an open file that was not used since the
 * previous write-out.
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

/* Parking (see above): how long, and how much memory over all the parked
 * files of one output (their buffers and entries). */
#define PARK_MS 500
#define PARK_MAX_BYTES (32u << 20)
#define PARK_ENTRY_BYTES (sizeof(struct ofile) + 64) /* with its path, roughly */

/* One open (or failed) file of a templated output. */
struct ofile {
    struct sink sink;
    uint64_t hash;
    struct ofile *hnext;       /* in its hash bucket */
    struct ofile *prev, *next; /* open: in order of use, most recent first;
                                * parked: in order of parking */
    bool parked;               /* no descriptor; lines wait in sink.buf */
    uint64_t used;             /* the output's write-out count at its last use */
    size_t park_bytes;         /* counted in parked_bytes for it */
};

struct file_output {
    struct output *o;
    struct sink_conf sc;
    bool templated;
    struct ofile *mru, *lru; /* both ends of the use list (open files) */
    struct ofile **buckets;  /* n_buckets, a power of two */
    size_t n_buckets;
    size_t n_entries;        /* in the table: open and parked files */
    size_t n_files;          /* open files (the use list), at most max_files */
    /* Parked files, oldest first, and what they hold. */
    struct ofile *park_head, *park_tail;
    size_t parked_bytes;
    uint64_t parked_since_ms; /* when the oldest was parked */
    bool park_urgent;         /* a parked line must be written after this batch */
    uint64_t park_ms;         /* PARK_MS, or less under an fsync interval; 0: never */
    uint64_t writeouts;       /* write-outs of the parked files so far */
    /* A templated output's directories, kept open (safedir.h): a file is
     * then opened by its name alone, not by a walk of its whole path. */
    struct safedir_cache dirs;
    struct buf scratch; /* a parked file's line, formatted */
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
    fo->n_entries--;
}

/* Parked files can outnumber max_files many times: keep chains short by
 * doubling the buckets when the entries outnumber them.  If memory is
 * short the table stays as it is (slower, still right). */
static void table_grow(struct file_output *fo)
{
    if (fo->n_entries <= fo->n_buckets)
        return;
    size_t n = fo->n_buckets * 2;
    struct ofile **nb = calloc(n, sizeof(*nb));
    if (nb == NULL)
        return;
    for (size_t i = 0; i < fo->n_buckets; i++) {
        for (struct ofile *f = fo->buckets[i], *next; f != NULL; f = next) {
            next = f->hnext;
            f->hnext = nb[f->hash & (n - 1)];
            nb[f->hash & (n - 1)] = f;
        }
    }
    free(fo->buckets);
    fo->buckets = nb;
    fo->n_buckets = n;
}

static void ofile_free(struct ofile *f)
{
    sink_fini(&f->sink);
    free(f);
}

/* A file for path (not open yet) in the table, in neither list. */
static struct ofile *file_new(struct file_output *fo, const char *path, uint64_t h)
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
    fo->n_entries++;
    table_grow(fo);
    return f;
}

/* Make f (in neither list) an open file, the most recently used. */
static void live_push(struct file_output *fo, struct ofile *f)
{
    use_push(fo, f);
    fo->n_files++;
    f->used = fo->writeouts;
}

/* Add a file for path (not open yet) as the most recently used. */
static struct ofile *file_add(struct file_output *fo, const char *path, uint64_t h)
{
    struct ofile *f = file_new(fo, path, h);
    if (f != NULL)
        live_push(fo, f);
    return f;
}

/* Drop an open file (out of the use list and the table) and free it. */
static void file_drop(struct file_output *fo, struct ofile *f)
{
    table_remove(fo, f);
    use_unlink(fo, f);
    fo->n_files--;
    ofile_free(f);
}

/* ---- parked files ------------------------------------------------------- */

static void park_push(struct file_output *fo, struct ofile *f)
{
    f->parked = true;
    f->prev = fo->park_tail;
    f->next = NULL;
    if (fo->park_tail != NULL)
        fo->park_tail->next = f;
    else
        fo->park_head = f;
    fo->park_tail = f;
    if (f->prev == NULL)
        fo->parked_since_ms = fo->o->env->sink.now_ms();
}

/* Take the oldest parked file off the list (it stays in the table). */
static struct ofile *park_pop(struct file_output *fo)
{
    struct ofile *f = fo->park_head;
    if (f == NULL)
        return NULL;
    fo->park_head = f->next;
    if (fo->park_head != NULL)
        fo->park_head->prev = NULL;
    else
        fo->park_tail = NULL;
    f->prev = f->next = NULL;
    f->parked = false;
    fo->parked_bytes -= f->park_bytes;
    f->park_bytes = 0;
    return f;
}

/* Data an fsync interval owes to the disk since since_ms (sync_owed()). */
static void owe(struct file_output *fo, uint64_t since_ms)
{
    if (!fo->owed || since_ms < fo->owed_since_ms)
        fo->owed_since_ms = since_ms;
    fo->owed = true;
}

/* Close the least recently used open file to make room: written out, and
 * closed without waiting for the disk (sink_close_lazy). */
static void evict_lru(struct file_output *fo)
{
    struct ofile *old = fo->lru;
    if (old->sink.buf.len > 0)
        sink_flush(&old->sink);
    if (sink_close_lazy(&old->sink))
        owe(fo, fo->o->env->sink.now_ms());
    file_drop(fo, old);
}

/* Write out every parked file, oldest first.  Each is opened, written and
 * closed, except that one may take the place of the least recently used
 * open file if that was not used since the previous write-out (a name that
 * became busy after the open files were taken); it is then written with
 * the open files. */
static void park_write_out(struct file_output *fo)
{
    size_t max = (size_t)fo->o->oc->max_files;
    uint64_t since = fo->parked_since_ms;
    struct ofile *f;
    while ((f = park_pop(fo)) != NULL) {
        if (fo->n_files < max || fo->lru->used != fo->writeouts) {
            if (fo->n_files >= max)
                evict_lru(fo);
            live_push(fo, f);
            continue;
        }
        sink_flush(&f->sink);
        if (f->sink.refused) {
            /* Kept (it holds no descriptor), so that its refusal is said
             * once, as for any open file, not at every write-out. */
            evict_lru(fo);
            live_push(fo, f);
            continue;
        }
        if (sink_close_lazy(&f->sink))
            owe(fo, since);
        table_remove(fo, f);
        ofile_free(f);
    }
    fo->park_urgent = false;
    fo->writeouts++;
}

/* May the record r for a file that is not open wait in a parked buffer? */
static bool may_park(const struct file_output *fo, const struct record *r)
{
    return fo->park_ms > 0 && fo->o->env->sink.behind && r->ack == 0 &&
           fo->parked_bytes < PARK_MAX_BYTES;
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
        if (f->parked) {
            /* Its lines stay together, in order, until the write-out. */
            if (r->ack != 0)
                fo->park_urgent = true;
            return &f->sink;
        }
        f->used = fo->writeouts;
        if (f != fo->mru) {
            use_unlink(fo, f);
            use_push(fo, f);
        }
        return &f->sink;
    }
    if (fo->n_files >= (size_t)o->oc->max_files) {
        if (may_park(fo, r)) {
            if ((f = file_new(fo, path, h)) == NULL)
                return NULL;
            park_push(fo, f);
            return &f->sink;
        }
        evict_lru(fo);
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
    if (fo->templated) {
        fo->sc.ropts.trusted_len = safedir_trusted_len(oc->path);
        fo->sc.ropts.dirs = &fo->dirs;
    }
    /* Parking (see the top): never with an fsync after every batch; with
     * an interval, for at most half of it. */
    if (fo->templated && oc->fsync_ms != 0)
        fo->park_ms = oc->fsync_ms > 0 && (uint64_t)oc->fsync_ms / 2 < PARK_MS
                          ? (uint64_t)oc->fsync_ms / 2
                          : PARK_MS;
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
    struct file_output *fo = fo_of(o);
    struct sink *s = sink_for(fo, r);
    if (s == NULL)
        return -ENOMEM;
    if (s->refused) {
        counter_add(&o->st->records_refused, 1);
        return OUTPUT_REFUSED;
    }
    struct ofile *f = (struct ofile *)s; /* the sink is an ofile's first member */
    int rc;
    if (!f->parked) {
        rc = format_record(&o->fmt, r, &s->buf);
    } else {
        /* format_record() reserves room for the worst case: through the
         * scratch buffer, a parked file's buffer grows only by what its
         * lines take, so that many can wait in little memory. */
        fo->scratch.len = 0;
        rc = format_record(&o->fmt, r, &fo->scratch);
        if (rc == 0)
            rc = buf_append(&s->buf, fo->scratch.p, fo->scratch.len);
    }
    if (rc != 0)
        return rc < 0 ? rc : -EINVAL;
    s->pending++;
    if (f->parked) {
        size_t now = s->buf.cap + PARK_ENTRY_BYTES;
        fo->parked_bytes += now - f->park_bytes;
        f->park_bytes = now;
    }
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
    if (fo->park_head != NULL &&
        (force_sync || fo->park_urgent || !o->env->sink.behind ||
         fo->parked_bytes >= PARK_MAX_BYTES || now_ms >= fo->parked_since_ms + fo->park_ms))
        park_write_out(fo);
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
    struct file_output *fo = fo_of(o);
    if (fo->park_head != NULL) {
        uint64_t due = fo->parked_since_ms + fo->park_ms;
        uint64_t left = due > now_ms ? due - now_ms : 0;
        if (left < wait)
            wait = left;
    }
    if (o->oc->fsync_ms <= 0)
        return wait; /* interval rotation is seen within the writer's idle wake */
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
    /* Every path is looked up afresh, its directories too. */
    safedir_cache_clear(&fo_of(o)->dirs);
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
    for (struct ofile *f; (f = park_pop(fo)) != NULL;)
        ofile_free(f);
    safedir_cache_clear(&fo->dirs);
    buf_free(&fo->scratch);
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
