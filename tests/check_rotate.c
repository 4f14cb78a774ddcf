/*
 * Unit tests for lib/rotate.c and lib/archive.c.
 *
 * Every test works in a fresh directory under /tmp and, where it matters,
 * drives the wall clock through rotate_opts.clock.  The central check is
 * collect(): it reads every archive of a file in the order of their names
 * (decompressing .gz with zlib and .zst with libzstd), then the live file,
 * and the tests compare the concatenation with what they wrote: every line
 * exactly once, in order, which also proves that names sort by age.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "archive.h"
#include "rotate.h"

/* Check reports every assertion to the parent; loops test first. */
#define REQUIRE(cond)                                                       \
    do {                                                                    \
        if (!(cond))                                                        \
            ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);           \
    } while (0)
#define REQUIRE_MSG(cond, ...)                                              \
    do {                                                                    \
        if (!(cond))                                                        \
            ck_abort_msg(__VA_ARGS__);                                      \
    } while (0)

/* 2026-11-26T11:03:56Z */
#define T0 INT64_C(1795691036)

/* The parent makes one directory per test case (an unchecked fixture) and
 * removes it afterwards, so that a failed test, whose child exits before
 * any teardown, leaves nothing behind; each test gets its own below it. */
static char base_dir[64];
static char dir[128];
static char path[192];
static int64_t fake_now;

static int64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

static void set_tz(const char *tz)
{
    ck_assert_int_eq(setenv("TZ", tz, 1), 0);
    tzset();
}

static int set_append_only(const char *p, bool on);

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(p) != 0 && errno == EPERM && set_append_only(p, false) == 0)
        return remove(p); /* test_rotation_fails failed half-way */
    return 0;
}

static void make_base(void)
{
    strcpy(base_dir, "/tmp/check_rotate.XXXXXX");
    if (mkdtemp(base_dir) == NULL) {
        perror("check_rotate: mkdtemp");
        exit(EXIT_FAILURE);
    }
}

static void remove_base(void)
{
    nftw(base_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "%s/t.XXXXXX", base_dir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/messages.log", dir);
    fake_now = T0;
    set_tz("UTC");
}

static void teardown(void)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- helpers ------------------------------------------------------------ */

struct bytes {
    char *p;
    size_t n, cap;
};

static void bytes_add(struct bytes *b, const void *p, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        REQUIRE(b->p != NULL);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static struct bytes slurp(const char *p)
{
    struct bytes b = {0};
    bytes_add(&b, "", 0);
    int fd = open(p, O_RDONLY);
    REQUIRE_MSG(fd >= 0, "open %s: %s", p, strerror(errno));
    char buf[65536];
    ssize_t r;
    while ((r = read(fd, buf, sizeof(buf))) > 0)
        bytes_add(&b, buf, (size_t)r);
    REQUIRE(r == 0);
    close(fd);
    return b;
}

static void spit(const char *p, const char *data, size_t n)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(write(fd, data, n) == (ssize_t)n);
    close(fd);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static struct bytes gunzip(const struct bytes *in)
{
    struct bytes out = {0};
    bytes_add(&out, "", 0);
    REQUIRE_MSG(in->n >= 18 && (unsigned char)in->p[0] == 0x1f &&
                    (unsigned char)in->p[1] == 0x8b, "not gzip");
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    REQUIRE(inflateInit2(&zs, 15 + 16) == Z_OK);
    zs.next_in = (Bytef *)in->p;
    zs.avail_in = (uInt)in->n;
    char buf[65536];
    int rc;
    do {
        zs.next_out = (Bytef *)buf;
        zs.avail_out = sizeof(buf);
        rc = inflate(&zs, Z_NO_FLUSH);
        REQUIRE_MSG(rc == Z_OK || rc == Z_STREAM_END, "inflate: %d", rc);
        bytes_add(&out, buf, sizeof(buf) - zs.avail_out);
    } while (rc != Z_STREAM_END);
    REQUIRE_MSG(zs.avail_in == 0, "bytes after the gzip member");
    inflateEnd(&zs);
    return out;
}

static struct bytes unzstd(const struct bytes *in)
{
    unsigned long long size = ZSTD_getFrameContentSize(in->p, in->n);
    REQUIRE_MSG(size != ZSTD_CONTENTSIZE_ERROR && size != ZSTD_CONTENTSIZE_UNKNOWN,
                "zstd frame without content size");
    struct bytes out = {0};
    out.cap = (size_t)size + 1;
    out.p = malloc(out.cap);
    REQUIRE(out.p != NULL);
    size_t r = ZSTD_decompress(out.p, (size_t)size, in->p, in->n);
    REQUIRE_MSG(!ZSTD_isError(r) && r == size, "zstd: %s",
                ZSTD_isError(r) ? ZSTD_getErrorName(r) : "short");
    out.n = r;
    out.p[r] = '\0';
    return out;
}

/* The contents of one file of the directory, decompressed by its suffix. */
static struct bytes contents(const char *name)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    struct bytes raw = slurp(p);
    if (ends_with(name, ".gz") || ends_with(name, ".zst")) {
        struct bytes d = ends_with(name, ".gz") ? gunzip(&raw) : unzstd(&raw);
        free(raw.p);
        return d;
    }
    return raw;
}

struct names {
    char *v[4096];
    size_t n;
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Files of the directory whose names start with "messages.log.", sorted
 * as bytes. */
static void list(struct names *out)
{
    out->n = 0;
    DIR *d = opendir(dir);
    REQUIRE(d != NULL);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "messages.log.", 13) != 0)
            continue;
        REQUIRE(out->n < 4096);
        out->v[out->n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(out->v, out->n, sizeof(out->v[0]), cmp_str);
}

static void names_free(struct names *nm)
{
    for (size_t i = 0; i < nm->n; i++)
        free(nm->v[i]);
    nm->n = 0;
}

/* Every archive in name order, then the live file; checks that there is no
 * .tmp, and that each file ends with '\n'. */
static struct bytes collect(size_t *narchives)
{
    struct names nm;
    list(&nm);
    struct bytes all = {0};
    bytes_add(&all, "", 0);
    for (size_t i = 0; i < nm.n; i++) {
        REQUIRE_MSG(!ends_with(nm.v[i], ".tmp"), "left over: %s", nm.v[i]);
        struct bytes b = contents(nm.v[i]);
        REQUIRE_MSG(b.n > 0 && b.p[b.n - 1] == '\n', "%s: empty or no final newline", nm.v[i]);
        bytes_add(&all, b.p, b.n);
        free(b.p);
    }
    if (narchives != NULL)
        *narchives = nm.n;
    names_free(&nm);
    struct bytes live = slurp(path);
    bytes_add(&all, live.p, live.n);
    free(live.p);
    return all;
}

/* Line i of a test: its number, then filler of a length that varies. */
static size_t make_line(char *buf, size_t cap, unsigned i, unsigned maxfill)
{
    unsigned fill = maxfill ? (i * 2654435761u >> 7) % maxfill : 0;
    int n = snprintf(buf, cap, "line %08u ", i);
    for (unsigned k = 0; k < fill && (size_t)n + 2 < cap; k++)
        buf[n++] = (char)('a' + (i + k) % 26);
    buf[n++] = '\n';
    return (size_t)n;
}

static struct rotate_opts opts_fake(void)
{
    struct rotate_opts o;
    rotate_opts_init(&o);
    o.clock = fake_clock;
    return o;
}

static void write_str(struct rotate_file *f, const char *s)
{
    size_t n = strlen(s);
    ck_assert_int_eq(rotate_write(f, s, n), (ssize_t)n);
}

static uint64_t get(_Atomic uint64_t *c)
{
    return atomic_load(c);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- names --------------------------------------------------------------- */

START_TEST(test_names)
{
    char name[256];
    struct archive_id id = {archive_stamp(T0), 7}, got;
    enum archive_form form;
    bool tmp;
    ck_assert_int_eq(id.stamp, INT64_C(20261126110356));
    ck_assert_int_eq(archive_name(name, sizeof(name), "m.log", id, ARCHIVE_GZ), 0);
    ck_assert_str_eq(name, "m.log.20261126T110356Z.007.gz");
    ck_assert_int_eq(archive_parse(name, "m.log", &got, &form, &tmp), 0);
    ck_assert(archive_id_cmp(got, id) == 0 && form == ARCHIVE_GZ && !tmp);
    ck_assert_int_eq(archive_parse("m.log.20261126T110356Z.1234.zst.tmp", "m.log", &got, &form,
                                   &tmp), 0);
    ck_assert(got.seq == 1234 && form == ARCHIVE_ZST && tmp);
    static const char *const bad[] = {
        "m.log", "m.log.", "m.log.20261126T110356Z", "m.log.20261126T110356Z.1",
        "m.log.20261126T110356Z.001.bz2", "m.log.20261126T110356Z.001.tmp",
        "m.log.20261126X110356Z.001", "m.logx.20261126T110356Z.001",
        "m.log.20261126T110356Z.001.gz.tmp.x", "n.log.20261126T110356Z.001", NULL};
    for (int i = 0; bad[i] != NULL; i++)
        ck_assert_msg(archive_parse(bad[i], "m.log", &got, &form, &tmp) == -EINVAL, "%s",
                      bad[i]);
    ck_assert_int_eq(archive_name(name, 20, "m.log", id, ARCHIVE_PLAIN), -ENAMETOOLONG);
}
END_TEST

START_TEST(test_bad_arguments)
{
    struct rotate_opts o = opts_fake();
    struct rotate_file *f = NULL;
    ck_assert_int_eq(rotate_open(NULL, path, &o, NULL), -EINVAL);
    ck_assert_int_eq(rotate_open(&f, NULL, &o, NULL), -EINVAL);
    ck_assert_int_eq(rotate_open(&f, "", &o, NULL), -EINVAL);
    ck_assert_int_eq(rotate_open(&f, path, NULL, NULL), -EINVAL);
    o.max_size = -1;
    ck_assert_int_eq(rotate_open(&f, path, &o, NULL), -EINVAL);
    o = opts_fake();
    o.compress = 9;
    ck_assert_int_eq(rotate_open(&f, path, &o, NULL), -EINVAL);
    /* Background work needs a worker. */
    o = opts_fake();
    o.keep = 3;
    ck_assert_int_eq(rotate_open(&f, path, &o, NULL), -EINVAL);
    o = opts_fake();
    o.compress = ROTATE_COMPRESS_GZIP;
    ck_assert_int_eq(rotate_open(&f, path, &o, NULL), -EINVAL);
    ck_assert_int_eq(rotate_open(&f, "/tmp/", &o, NULL), -EINVAL);
    ck_assert_int_eq(rotate_write(NULL, "x\n", 2), -EINVAL);
    ck_assert_int_eq(rotate_now(NULL), -EINVAL);
    ck_assert_int_eq(rotate_close(NULL), -EINVAL);

    /* A worker cannot stop under an open file. */
    struct archive_worker *w;
    ck_assert_int_eq(archive_worker_start(&w), 0);
    ck_assert_int_eq(rotate_open(&f, path, &o, w), 0);
    ck_assert_int_eq(archive_worker_stop(w, -1), -EBUSY);
    ck_assert_int_eq(rotate_close(f), 0);
    ck_assert_int_eq(archive_worker_stop(w, -1), 0);
}
END_TEST

/* ---- open ---------------------------------------------------------------- */

START_TEST(test_open_creates)
{
    umask(0);
    char deep[256];
    snprintf(deep, sizeof(deep), "%s/a/b/c/out.log", dir);
    struct rotate_opts o = opts_fake();
    o.file_mode = 0604;
    o.group = getegid();
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, deep, &o, NULL), 0);
    struct stat st;
    ck_assert_int_eq(stat(deep, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0604);
    ck_assert_int_eq(st.st_gid, getegid());
    snprintf(deep, sizeof(deep), "%s/a/b", dir);
    ck_assert_int_eq(stat(deep, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0755);
    write_str(f, "x\n");
    ck_assert_int_eq(rotate_size(f), 2);
    ck_assert_int_eq(rotate_close(f), 0);

    /* The mode of a new live file after rotation too; umask applies. */
    umask(022);
    o.file_mode = 0666;
    ck_assert_int_eq(rotate_open(&f, path, &o, NULL), 0);
    write_str(f, "y\n");
    ck_assert_int_eq(rotate_now(f), 1);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0644);
    ck_assert_int_eq(rotate_close(f), 0);

    /* An existing file keeps its mode. */
    ck_assert_int_eq(chmod(path, 0600), 0);
    ck_assert_int_eq(rotate_open(&f, path, &o, NULL), 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0600);
    ck_assert_int_eq(rotate_close(f), 0);

    /* A zeroed mode means the default, 0640. */
    umask(0);
    o.file_mode = 0;
    snprintf(deep, sizeof(deep), "%s/zero.log", dir);
    ck_assert_int_eq(rotate_open(&f, deep, &o, NULL), 0);
    ck_assert_int_eq(stat(deep, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0640);
    ck_assert_int_eq(rotate_close(f), 0);

    /* A relative path works from the working directory. */
    ck_assert_int_eq(chdir(dir), 0);
    ck_assert_int_eq(rotate_open(&f, "rel.log", &o, NULL), 0);
    write_str(f, "r\n");
    ck_assert_int_eq(rotate_now(f), 1);
    ck_assert_int_eq(rotate_close(f), 0);
    ck_assert_int_eq(access("rel.log.20261126T110356Z.000", F_OK), 0);
}
END_TEST

START_TEST(test_partial_line_ended)
{
    spit(path, "one\ntwo", 7);
    struct rotate_opts o = opts_fake();
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, NULL), 0);
    ck_assert_int_eq(rotate_size(f), 8);
    ck_assert_int_eq(get(&rotate_counters_of(f)->lines_ended), 1);
    write_str(f, "three\n");
    ck_assert_int_eq(rotate_close(f), 0);
    struct bytes b = slurp(path);
    ck_assert_str_eq(b.p, "one\ntwo\nthree\n");
    free(b.p);

    /* A clean file is left alone. */
    ck_assert_int_eq(rotate_open(&f, path, &o, NULL), 0);
    ck_assert_int_eq(get(&rotate_counters_of(f)->lines_ended), 0);
    ck_assert_int_eq(rotate_close(f), 0);
    b = slurp(path);
    ck_assert_str_eq(b.p, "one\ntwo\nthree\n");
    free(b.p);
}
END_TEST

/* ---- size ---------------------------------------------------------------- */

START_TEST(test_size_split)
{
    struct rotate_opts o = opts_fake();
    o.max_size = 100;
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, NULL), 0);
    struct bytes want = {0};
    char line[128];
    for (unsigned i = 0; i < 300; i++)
        bytes_add(&want, line, make_line(line, sizeof(line), i, 40));
    /* Batches of every size from one byte short of a line up. */
    size_t off = 0, step = 1;
    while (off < want.n) {
        size_t n = want.n - off < step * 37 ? want.n - off : step * 37;
        const char *end = memrchr(want.p + off, '\n', n);
        if (end == NULL)
            end = memchr(want.p + off, '\n', want.n - off);
        n = (size_t)(end - (want.p + off)) + 1;
        ck_assert_int_eq(rotate_write(f, want.p + off, n), (ssize_t)n);
        ck_assert(rotate_size(f) <= 100);
        off += n;
        step = step % 11 + 1;
    }
    ck_assert_int_eq(rotate_close(f), 0);

    size_t narch;
    struct bytes got = collect(&narch);
    ck_assert_uint_eq(got.n, want.n);
    ck_assert(memcmp(got.p, want.p, want.n) == 0);
    /* Each archive is full: at most 100 bytes, and the first line of the
     * next file would not have fitted. */
    struct names nm;
    list(&nm);
    ck_assert_uint_eq(nm.n, narch);
    ck_assert_uint_gt(narch, 40);
    for (size_t i = 0; i < nm.n; i++) {
        struct bytes a = contents(nm.v[i]);
        ck_assert_uint_le(a.n, 100);
        struct bytes next = i + 1 < nm.n ? contents(nm.v[i + 1]) : slurp(path);
        size_t first = (size_t)((char *)memchr(next.p, '\n', next.n) - next.p) + 1;
        ck_assert_msg(a.n + first > 100, "%s could have taken the next line", nm.v[i]);
        free(a.p);
        free(next.p);
    }
    names_free(&nm);
    free(got.p);
    free(want.p);
}
END_TEST

START_TEST(test_long_line)
{
    struct rotate_opts o = opts_fake();
    o.max_size = 50;
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, NULL), 0);
    char big[301];
    memset(big, 'L', 299);
    big[299] = '\n';
    big[300] = '\0';
    struct bytes in = {0};
    bytes_add(&in, "a\n", 2);
    bytes_add(&in, big, 300);
    bytes_add(&in, "b\n", 2);
    bytes_add(&in, big, 300);
    bytes_add(&in, big, 300);
    ck_assert_int_eq(rotate_write(f, in.p, in.n), (ssize_t)in.n);
    write_str(f, "c\n");
    ck_assert_int_eq(rotate_close(f), 0);
    struct names nm;
    list(&nm);
    ck_assert_uint_eq(nm.n, 5);
    static const char *const want[] = {"a\n", NULL, "b\n", NULL, NULL};
    for (size_t i = 0; i < nm.n; i++) {
        struct bytes b = contents(nm.v[i]);
        ck_assert_str_eq(b.p, want[i] ? want[i] : big);
        free(b.p);
    }
    names_free(&nm);
    struct bytes live = slurp(path);
    ck_assert_str_eq(live.p, "c\n");
    free(live.p);
    free(in.p);
}
END_TEST

/* A file made smaller behind our back (logrotate copytruncate) is not
 * rotated early. */
START_TEST(test_copytruncate)
{
    struct rotate_opts o = opts_fake();
    o.max_size = 100;
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, NULL), 0);
    for (int i = 0; i < 9; i++)
        write_str(f, "0123456789\n"); /* 99 bytes */
    ck_assert_int_eq(truncate(path, 0), 0);
    write_str(f, "after truncate\n");
    struct names nm;
    list(&nm);
    ck_assert_uint_eq(nm.n, 0);
    names_free(&nm);
    ck_assert_int_eq(rotate_close(f), 0);
    struct bytes b = slurp(path);
    ck_assert_str_eq(b.p, "after truncate\n");
    free(b.p);
}
END_TEST

/* ---- partial writes ------------------------------------------------------ */

/* RLIMIT_FSIZE makes write(2) stop at a chosen offset (EFBIG), which is how
 * a full disk looks to the writer: partial progress, then an error. */
static void limit_size(rlim_t n)
{
    struct rlimit rl = {n, RLIM_INFINITY};
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

START_TEST(test_partial_write_retry)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rotate_opts o = opts_fake();
    o.max_size = 64;
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, NULL), 0);
    const char *data = "first line\nsecond line\nthird line\n";
    size_t n = strlen(data);
    limit_size(15); /* stops inside "second line" */
    ssize_t w = rotate_write(f, data, n);
    ck_assert_int_eq(w, 15);
    ck_assert_int_eq(rotate_write(f, data + w, n - (size_t)w), -EFBIG);
    ck_assert_int_eq(get(&rotate_counters_of(f)->write_errors), 2);
    ck_assert_int_eq(atomic_load(&rotate_counters_of(f)->last_error), -EFBIG);
    /* No rotation in the middle of a line. */
    ck_assert_int_eq(rotate_now(f), -EAGAIN);
    limit_size(RLIM_INFINITY);
    ck_assert_int_eq(rotate_write(f, data + w, n - (size_t)w), (ssize_t)(n - (size_t)w));
    /* Then a batch that overflows max_size finishes the file cleanly. */
    const char *more = "fourth line that is long enough to pass the size\n";
    write_str(f, more);
    ck_assert_int_eq(rotate_close(f), 0);
    size_t narch;
    struct bytes got = collect(&narch);
    ck_assert_uint_eq(narch, 1);
    struct bytes want = {0};
    bytes_add(&want, data, n);
    bytes_add(&want, more, strlen(more));
    ck_assert_str_eq(got.p, want.p);
    free(got.p);
    free(want.p);
}
END_TEST

/* ---- interval ------------------------------------------------------------ */

static struct names archives_now(void)
{
    struct names nm;
    list(&nm);
    return nm;
}

START_TEST(test_interval_daily_local)
{
    set_tz("Europe/Paris");
    /* 2026-11-26 23:59:58 in Paris (CET, +01:00) is 22:59:58Z. */
    int64_t t = INT64_C(1795733998);
    fake_now = t;
    struct rotate_opts o = opts_fake();
    o.interval_s = 86400;
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, NULL), 0);
    ck_assert_int_eq(rotate_tick(f, t), 0);
    write_str(f, "before midnight\n");
    ck_assert_int_eq(rotate_tick(f, t + 1), 0);
    ck_assert_int_eq(rotate_next_tick(f), t + 2);
    ck_assert_int_eq(rotate_tick(f, t + 2), 1); /* local midnight */
    ck_assert_int_eq(rotate_tick(f, t + 3), 0);
    fake_now = t + 3;
    struct names nm = archives_now();
    ck_assert_uint_eq(nm.n, 1);
    ck_assert_str_eq(nm.v[0], "messages.log.20261126T230000Z.000");
    names_free(&nm);
    /* UTC midnight is nothing special here. */
    write_str(f, "after midnight\n");
    ck_assert_int_eq(rotate_tick(f, t + 3602), 0);
    /* A day later, through rotate_write and the options' clock. */
    fake_now = t + 2 + 86400;
    write_str(f, "next day\n");
    nm = archives_now();
    ck_assert_uint_eq(nm.n, 2);
    ck_assert_str_eq(nm.v[1], "messages.log.20261127T230000Z.000");
    names_free(&nm);
    struct bytes live = slurp(path);
    ck_assert_str_eq(live.p, "next day\n");
    free(live.p);
    /* An empty file makes no archive when its period ends. */
    fake_now += 86400;
    ck_assert_int_eq(rotate_now(f), 1);
    ck_assert_int_eq(rotate_tick(f, fake_now + 86400), 0);
    nm = archives_now();
    ck_assert_uint_eq(nm.n, 3);
    names_free(&nm);
    ck_assert_int_eq(rotate_close(f), 0);
}
END_TEST

START_TEST(test_interval_daily_utc)
{
    set_tz("Europe/Paris");
    int64_t t = INT64_C(1795733998); /* 22:59:58Z, 23:59:58 in Paris */
    fake_now = t;
    struct rotate_opts o = opts_fake();
    o.interval_s = 86400;
    o.interval_utc = 1;
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, NULL), 0);
    write_str(f, "x\n");
    ck_assert_int_eq(rotate_tick(f, t + 2), 0);    /* Paris midnight */
    ck_assert_int_eq(rotate_tick(f, t + 3601), 0); /* 23:59:59Z */
    ck_assert_int_eq(rotate_tick(f, t + 3602), 1); /* 00:00:00Z */
    ck_assert_int_eq(rotate_close(f), 0);
}
END_TEST

/* Hourly in local time across DST changes, ticking every minute over a
 * local day of Paris: the autumn day has 25 hours in 24 files, the one
 * for 02:00-03:00 holding two hours; the spring day has 23 hours in 23
 * files. */
static void hourly_day(int64_t start, int hours, int files, int double_file)
{
    set_tz("Europe/Paris");
    int64_t end = start + hours * 3600;
    fake_now = start;
    struct rotate_opts o = opts_fake();
    o.interval_s = 3600;
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, NULL), 0);
    int rotations = 0;
    char line[64];
    for (int64_t t = start; t < end; t += 60) {
        fake_now = t;
        int rc = rotate_tick(f, t);
        REQUIRE(rc >= 0);
        rotations += rc;
        REQUIRE(rotate_next_tick(f) > t);
        REQUIRE(rotate_next_tick(f) - start <= (t - start) / 3600 * 3600 + 7200);
        snprintf(line, sizeof(line), "%" PRId64 "\n", t);
        write_str(f, line);
    }
    ck_assert_int_eq(rotations, files - 1);
    ck_assert_int_eq(rotate_tick(f, end - 1), 0);
    ck_assert_int_eq(rotate_tick(f, end), 1);
    ck_assert_int_eq(rotate_close(f), 0);
    struct names nm = archives_now();
    ck_assert_uint_eq(nm.n, (size_t)files);
    int64_t expect = start;
    for (size_t i = 0; i < nm.n; i++) {
        struct bytes b = contents(nm.v[i]);
        int lines = 0;
        for (char *p = b.p; *p; p = strchr(p, '\n') + 1) {
            REQUIRE(strtoll(p, NULL, 10) == expect);
            expect += 60;
            lines++;
        }
        ck_assert_int_eq(lines, (int)i == double_file ? 120 : 60);
        free(b.p);
    }
    ck_assert_int_eq(expect, end);
    names_free(&nm);
}

START_TEST(test_interval_hourly_dst_autumn)
{
    hourly_day(INT64_C(1792879200), 25, 24, 2); /* 2026-10-24T22:00:00Z */
}
END_TEST

START_TEST(test_interval_hourly_dst_spring)
{
    hourly_day(INT64_C(1774738800), 23, 23, -1); /* 2026-03-28T23:00:00Z */
}
END_TEST

/* A file with lines from an earlier day (the daemon was down over
 * midnight) rotates at the first check. */
START_TEST(test_interval_stale_file)
{
    spit(path, "old\n", 4);
    struct timespec ts[2] = {{T0 - 86400, 0}, {T0 - 86400, 0}};
    ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
    fake_now = T0;
    struct rotate_opts o = opts_fake();
    o.interval_s = 86400;
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, NULL), 0);
    ck_assert_int_eq(rotate_tick(f, T0), 1);
    ck_assert_int_eq(rotate_tick(f, T0 + 1), 0);
    ck_assert_int_eq(rotate_close(f), 0);
}
END_TEST

/* ---- forced rotation, names ---------------------------------------------- */

START_TEST(test_forced)
{
    struct rotate_opts o = opts_fake();
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, NULL), 0);
    ck_assert_int_eq(rotate_now(f), 0); /* empty: nothing to archive */
    write_str(f, "one\n");
    ck_assert_int_eq(rotate_now(f), 1);
    ck_assert_int_eq(rotate_size(f), 0);
    ck_assert_int_eq(rotate_now(f), 0);
    /* A line without its end is not rotated away from its rest. */
    ck_assert_int_eq(rotate_write(f, "tw", 2), 2);
    ck_assert_int_eq(rotate_now(f), -EAGAIN);
    write_str(f, "o\n");
    ck_assert_int_eq(rotate_now(f), 1);
    ck_assert_int_eq(get(&rotate_counters_of(f)->rotations), 2);
    ck_assert_int_eq(rotate_close(f), 0);
    struct names nm = archives_now();
    ck_assert_uint_eq(nm.n, 2);
    ck_assert_str_eq(nm.v[0], "messages.log.20261126T110356Z.000");
    ck_assert_str_eq(nm.v[1], "messages.log.20261126T110356Z.001");
    struct bytes b = contents(nm.v[1]);
    ck_assert_str_eq(b.p, "two\n");
    free(b.p);
    names_free(&nm);
}
END_TEST

/* Names sort by age: many in one second, compressed or not, after the
 * clock went back, and across a restart in the same second. */
START_TEST(test_names_sort_by_age)
{
    struct archive_worker *w;
    ck_assert_int_eq(archive_worker_start(&w), 0);
    struct rotate_opts o = opts_fake();
    o.compress = ROTATE_COMPRESS_GZIP;
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, w), 0);
    struct bytes want = {0};
    char line[64];
    int k = 0;
    for (int i = 0; i < 12; i++, k++) {
        snprintf(line, sizeof(line), "%d\n", k);
        write_str(f, line);
        bytes_add(&want, line, strlen(line));
        ck_assert_int_eq(rotate_now(f), 1);
        if (i == 5)
            ck_assert_int_eq(rotate_wait(f, -1), 0); /* half compressed */
    }
    fake_now -= 3600; /* the clock steps back */
    for (int i = 0; i < 3; i++, k++) {
        snprintf(line, sizeof(line), "%d\n", k);
        write_str(f, line);
        bytes_add(&want, line, strlen(line));
        ck_assert_int_eq(rotate_now(f), 1);
    }
    ck_assert_int_eq(rotate_close(f), 0);
    fake_now += 3600;
    /* A restart within the same second, after the oldest was deleted. */
    char first[256];
    snprintf(first, sizeof(first), "%s/messages.log.20261126T110356Z.000.gz", dir);
    ck_assert_int_eq(archive_worker_stop(w, -1), 0);
    ck_assert_int_eq(unlink(first), 0);
    ck_assert_int_eq(archive_worker_start(&w), 0);
    ck_assert_int_eq(rotate_open(&f, path, &o, w), 0);
    write_str(f, "last\n");
    bytes_add(&want, "last\n", 5);
    ck_assert_int_eq(rotate_now(f), 1);
    ck_assert_int_eq(rotate_close(f), 0);
    ck_assert_int_eq(archive_worker_stop(w, -1), 0);

    struct names nm = archives_now();
    ck_assert_uint_eq(nm.n, 15);
    ck_assert_str_eq(nm.v[0], "messages.log.20261126T110356Z.001.gz");
    ck_assert_str_eq(nm.v[14], "messages.log.20261126T110356Z.015.gz");
    names_free(&nm);
    size_t narch;
    struct bytes got = collect(&narch);
    ck_assert_str_eq(got.p, strchr(want.p, '\n') + 1 /* "0" was deleted */);
    ck_assert_uint_eq(narch, 15);
    free(got.p);
    free(want.p);
}
END_TEST

/* ---- pruning ------------------------------------------------------------- */

static void make_archives(struct rotate_file *f, int n, size_t size)
{
    char line[4096];
    for (int i = 0; i < n; i++) {
        int m = snprintf(line, sizeof(line), "%d ", i);
        memset(line + m, 'p', size - (size_t)m - 1);
        line[size - 1] = '\n';
        ck_assert_int_eq(rotate_write(f, line, size), (ssize_t)size);
        ck_assert_int_eq(rotate_now(f), 1);
        fake_now++;
    }
}

static int first_number(const char *name)
{
    struct bytes b = contents(name);
    int v = atoi(b.p);
    free(b.p);
    return v;
}

START_TEST(test_keep)
{
    /* Files that look almost like archives are not touched. */
    static const char *const others[] = {
        "messages.log.20261126T110356Z", "messages.log.bak", "messages.log.20261126T110356Z.1",
        "messages.logx.20261126T110356Z.000", "other.log.20261126T110356Z.000", NULL};
    char p[512];
    for (int i = 0; others[i] != NULL; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, others[i]);
        spit(p, "other\n", 6);
    }
    struct archive_worker *w;
    ck_assert_int_eq(archive_worker_start(&w), 0);
    struct rotate_opts o = opts_fake();
    o.keep = 3;
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, w), 0);
    make_archives(f, 10, 100);
    write_str(f, "live\n");
    ck_assert_int_eq(rotate_wait(f, 10000), 0);
    ck_assert_int_eq(get(&rotate_counters_of(f)->pruned), 7);
    ck_assert_int_eq(rotate_close(f), 0);
    ck_assert_int_eq(archive_worker_stop(w, -1), 0);
    struct names nm = archives_now();
    size_t n = 0;
    for (size_t i = 0; i < nm.n; i++) {
        struct archive_id id;
        enum archive_form form;
        bool tmp;
        if (archive_parse(nm.v[i], "messages.log", &id, &form, &tmp) != 0)
            continue;
        ck_assert_int_eq(first_number(nm.v[i]), 7 + (int)n);
        n++;
    }
    ck_assert_uint_eq(n, 3);
    names_free(&nm);
    for (int i = 0; others[i] != NULL; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, others[i]);
        ck_assert_msg(access(p, F_OK) == 0, "%s was deleted", others[i]);
    }
    struct bytes live = slurp(path);
    ck_assert_str_eq(live.p, "live\n");
    free(live.p);
}
END_TEST

START_TEST(test_max_total)
{
    struct archive_worker *w;
    ck_assert_int_eq(archive_worker_start(&w), 0);
    struct rotate_opts o = opts_fake();
    o.max_total = 350;
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, w), 0);
    make_archives(f, 8, 100);
    ck_assert_int_eq(rotate_wait(f, 10000), 0);
    struct names nm = archives_now();
    ck_assert_uint_eq(nm.n, 3);
    ck_assert_int_eq(first_number(nm.v[0]), 5);
    names_free(&nm);
    /* Strict: a single archive above the limit goes as well. */
    make_archives(f, 1, 400);
    ck_assert_int_eq(rotate_wait(f, 10000), 0);
    nm = archives_now();
    ck_assert_uint_eq(nm.n, 0);
    names_free(&nm);
    ck_assert_int_eq(rotate_close(f), 0);

    /* With compression, the compressed sizes count: 20 archives of 4000
     * bytes of 'p' compress to a few dozen bytes each. */
    o.max_total = 2000;
    o.compress = ROTATE_COMPRESS_ZSTD;
    ck_assert_int_eq(rotate_open(&f, path, &o, w), 0);
    make_archives(f, 20, 4000);
    ck_assert_int_eq(rotate_wait(f, 10000), 0);
    ck_assert_int_eq(rotate_close(f), 0);
    ck_assert_int_eq(archive_worker_stop(w, -1), 0);
    nm = archives_now();
    ck_assert_uint_eq(nm.n, 20);
    for (size_t i = 0; i < nm.n; i++)
        ck_assert(ends_with(nm.v[i], ".zst"));
    names_free(&nm);
}
END_TEST

/* ---- compression --------------------------------------------------------- */

static void roundtrip(int kind, const char *suffix, const char *tool)
{
    umask(0);
    struct archive_worker *w;
    ck_assert_int_eq(archive_worker_start(&w), 0);
    struct rotate_opts o = opts_fake();
    o.compress = kind;
    o.file_mode = 0604;
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, w), 0);
    struct bytes want = {0};
    char line[512];
    for (unsigned i = 0; i < 20000; i++)
        bytes_add(&want, line, make_line(line, sizeof(line), i * 7919u, 300));
    ck_assert_int_eq(rotate_write(f, want.p, want.n), (ssize_t)want.n);
    ck_assert_int_eq(rotate_now(f), 1);
    ck_assert_int_eq(rotate_wait(f, 30000), 0);
    ck_assert_int_eq(get(&rotate_counters_of(f)->compressed), 1);
    ck_assert_int_eq(get(&rotate_counters_of(f)->compress_errors), 0);
    ck_assert_int_eq(rotate_close(f), 0);
    ck_assert_int_eq(archive_worker_stop(w, 0), 0);

    struct names nm = archives_now();
    ck_assert_uint_eq(nm.n, 1);
    char want_name[128];
    snprintf(want_name, sizeof(want_name), "messages.log.20261126T110356Z.000%s", suffix);
    ck_assert_str_eq(nm.v[0], want_name);
    struct bytes got = contents(nm.v[0]);
    ck_assert_uint_eq(got.n, want.n);
    ck_assert(memcmp(got.p, want.p, want.n) == 0);
    free(got.p);

    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, nm.v[0]);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0604);
    ck_assert_int_lt(st.st_size, (off_t)want.n / 2);
    /* The command-line tool agrees, when there is one. */
    char cmd[640];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null && %s -dc '%s'", tool, tool, p);
    FILE *pipe = popen(cmd, "r");
    ck_assert_ptr_nonnull(pipe);
    struct bytes out = {0};
    bytes_add(&out, "", 0);
    char buf[65536];
    size_t r;
    while ((r = fread(buf, 1, sizeof(buf), pipe)) > 0)
        bytes_add(&out, buf, r);
    int status = pclose(pipe);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        ck_assert_uint_eq(out.n, want.n);
        ck_assert(memcmp(out.p, want.p, want.n) == 0);
    } else {
        fprintf(stderr, "check_rotate: %s not installed; checked with the library only\n",
                tool);
    }
    free(out.p);
    names_free(&nm);
    free(want.p);
}

START_TEST(test_gzip_roundtrip)
{
    roundtrip(ROTATE_COMPRESS_GZIP, ".gz", "gzip");
}
END_TEST

START_TEST(test_zstd_roundtrip)
{
    roundtrip(ROTATE_COMPRESS_ZSTD, ".zst", "zstd");
}
END_TEST

/* An empty archive (possible only from outside) compresses too. */
START_TEST(test_compress_empty)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    ck_assert_int_ge(dfd, 0);
    for (int kind = ROTATE_COMPRESS_GZIP; kind <= ROTATE_COMPRESS_ZSTD; kind++) {
        char name[64];
        snprintf(name, sizeof(name), "e%d", kind);
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        spit(p, "", 0);
        ck_assert_int_eq(archive_compress(dfd, name, kind, 0, NULL), 0);
        ck_assert_int_ne(access(p, F_OK), 0);
        strcat(name, kind == ROTATE_COMPRESS_GZIP ? ".gz" : ".zst");
        struct bytes b = contents(name);
        ck_assert_uint_eq(b.n, 0);
        free(b.p);
    }
    ck_assert_int_eq(archive_compress(dfd, "missing", ROTATE_COMPRESS_GZIP, 0, NULL), -ENOENT);
    ck_assert_int_eq(archive_compress(dfd, "e1.gz", ROTATE_COMPRESS_NONE, 0, NULL), -EINVAL);
    close(dfd);
}
END_TEST

/* ---- crashes ------------------------------------------------------------- */

START_TEST(test_crash_resume)
{
    char p[512];
    /* A compression interrupted before its rename: a .tmp and the plain. */
    snprintf(p, sizeof(p), "%s/messages.log.20261126T110356Z.000", dir);
    spit(p, "archive A\n", 10);
    snprintf(p, sizeof(p), "%s/messages.log.20261126T110356Z.000.gz.tmp", dir);
    spit(p, "\x1f\x8b half", 7);
    /* One interrupted after its rename: both copies, the gz complete. */
    snprintf(p, sizeof(p), "%s/messages.log.20261126T110357Z.000", dir);
    spit(p, "archive B\n", 10);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    ck_assert_int_eq(archive_compress(dfd, "messages.log.20261126T110357Z.000",
                                      ROTATE_COMPRESS_GZIP, 0, NULL), 0);
    /* (Different bytes, only to see which copy is kept: the compressed.) */
    spit(p, "archive b\n", 10);
    /* An orphan .tmp whose plain archive is gone (a zstd setting before). */
    snprintf(p, sizeof(p), "%s/messages.log.20261126T110358Z.000.zst.tmp", dir);
    spit(p, "junk", 4);
    /* Not ours. */
    snprintf(p, sizeof(p), "%s/unrelated.tmp", dir);
    spit(p, "keep me\n", 8);
    /* And a live file that a crash left mid-line. */
    spit(path, "live\npart", 9);

    struct archive_worker *w;
    ck_assert_int_eq(archive_worker_start(&w), 0);
    struct rotate_opts o = opts_fake();
    o.compress = ROTATE_COMPRESS_GZIP;
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, w), 0);
    ck_assert_int_eq(rotate_wait(f, 10000), 0);
    /* A rotation in the same second must not reuse a name. */
    write_str(f, "new\n");
    ck_assert_int_eq(rotate_now(f), 1);
    ck_assert_int_eq(rotate_close(f), 0);
    ck_assert_int_eq(archive_worker_stop(w, -1), 0);
    close(dfd);

    struct names nm = archives_now();
    ck_assert_uint_eq(nm.n, 3);
    ck_assert_str_eq(nm.v[0], "messages.log.20261126T110356Z.000.gz");
    ck_assert_str_eq(nm.v[1], "messages.log.20261126T110357Z.000.gz");
    /* After the newest name seen, 357.000, although the clock says 356. */
    ck_assert_str_eq(nm.v[2], "messages.log.20261126T110357Z.001.gz");
    names_free(&nm);
    struct bytes got = collect(NULL);
    ck_assert_str_eq(got.p, "archive A\narchive B\nlive\npart\nnew\n");
    free(got.p);
    snprintf(p, sizeof(p), "%s/unrelated.tmp", dir);
    ck_assert_int_eq(access(p, F_OK), 0);
}
END_TEST

/* Kill a writing, rotating, compressing process at random moments, again
 * and again, and resume each time: every line is there exactly once (the
 * line a kill cut in two stays as a fragment, ended by the next open), no
 * archive is damaged, no .tmp is left. */
static void child_writes(unsigned from)
{
    struct archive_worker *w;
    if (archive_worker_start(&w) != 0)
        _exit(2);
    struct rotate_opts o;
    rotate_opts_init(&o);
    o.max_size = 512 * 1024;
    o.compress = ROTATE_COMPRESS_GZIP;
    struct rotate_file *f;
    if (rotate_open(&f, path, &o, w) != 0)
        _exit(3);
    char buf[65536];
    for (unsigned i = from;;) {
        size_t n = 0;
        while (n < sizeof(buf) - 512)
            n += make_line(buf + n, 512, i++, 200);
        if (rotate_write(f, buf, n) != (ssize_t)n)
            _exit(4);
    }
}

START_TEST(test_crash_kill)
{
    unsigned next = 0;
    int fragments = 0;
    srand((unsigned)getpid());
    for (int round = 0; round < 6; round++) {
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
            child_writes(next);
        usleep(100000 + (useconds_t)(rand() % 250000));
        kill(pid, SIGKILL);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFSIGNALED(status));

        /* Resume: open ends the cut line and finishes the archives. */
        struct archive_worker *w;
        ck_assert_int_eq(archive_worker_start(&w), 0);
        struct rotate_opts o;
        rotate_opts_init(&o);
        o.compress = ROTATE_COMPRESS_GZIP;
        struct rotate_file *f;
        ck_assert_int_eq(rotate_open(&f, path, &o, w), 0);
        ck_assert_int_eq(rotate_wait(f, 60000), 0);
        ck_assert_int_eq(get(&rotate_counters_of(f)->compress_errors), 0);
        ck_assert_int_eq(rotate_close(f), 0);
        ck_assert_int_eq(archive_worker_stop(w, -1), 0);

        struct bytes all = collect(NULL);
        char want[512];
        unsigned i = 0;
        int frags = 0;
        for (char *p = all.p; *p;) {
            char *nl = strchr(p, '\n');
            REQUIRE(nl != NULL);
            size_t len = (size_t)(nl - p) + 1;
            size_t wl = make_line(want, sizeof(want), i, 200);
            if (len == wl && memcmp(p, want, wl) == 0) {
                i++;
            } else {
                /* A fragment: the start of line i, cut by the kill. */
                REQUIRE_MSG(len - 1 < wl && memcmp(p, want, len - 1) == 0,
                            "round %d: line %u is wrong: %.*s", round, i, (int)len, p);
                frags++;
            }
            p = nl + 1;
        }
        ck_assert_int_le(frags, round + 1);
        fragments = frags;
        ck_assert_uint_gt(i, next);
        next = i;
        free(all.p);
    }
    size_t narch;
    struct bytes all = collect(&narch);
    free(all.p);
    ck_assert_uint_gt(narch, 2);
    fprintf(stderr, "check_rotate: crash_kill: %u lines, %zu archives, %d cut lines\n", next,
            narch, fragments);
}
END_TEST

/* ---- reopen -------------------------------------------------------------- */

START_TEST(test_reopen_after_rename)
{
    struct rotate_opts o = opts_fake();
    o.max_size = 30;
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, NULL), 0);
    write_str(f, "a\n");
    char moved[256];
    snprintf(moved, sizeof(moved), "%s.1", path);
    ck_assert_int_eq(rename(path, moved), 0);
    write_str(f, "b\n"); /* still the old file, until told */
    ck_assert_int_eq(rotate_reopen(f), 0);
    ck_assert_int_eq(rotate_size(f), 0);
    write_str(f, "c\n");
    struct bytes b = slurp(moved);
    ck_assert_str_eq(b.p, "a\nb\n");
    free(b.p);
    b = slurp(path);
    ck_assert_str_eq(b.p, "c\n");
    free(b.p);

    /* Moved away and never told: a size rotation reopens instead of
     * renaming whatever now has the name. */
    snprintf(moved, sizeof(moved), "%s.2", path);
    ck_assert_int_eq(rename(path, moved), 0);
    write_str(f, "0123456789012345678901234567\n");
    b = slurp(moved);
    ck_assert_str_eq(b.p, "c\n");
    free(b.p);
    b = slurp(path);
    ck_assert_str_eq(b.p, "0123456789012345678901234567\n");
    free(b.p);
    struct names nm = archives_now();
    ck_assert_uint_eq(nm.n, 2); /* .1 and .2, no archive */
    names_free(&nm);

    /* Deleted (rm), then reopened: a new file. */
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rotate_reopen(f), 0);
    ck_assert_int_eq(access(path, F_OK), 0);
    ck_assert_int_eq(get(&rotate_counters_of(f)->reopens), 3);
    ck_assert_int_eq(rotate_close(f), 0);
}
END_TEST

START_TEST(test_reopen_mid_line)
{
    signal(SIGXFSZ, SIG_IGN);
    struct rotate_opts o = opts_fake();
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, NULL), 0);
    limit_size(4);
    ck_assert_int_eq(rotate_write(f, "abcdef\n", 7), 4);
    limit_size(RLIM_INFINITY);
    /* Same file: the line is finished by the retry, no '\n' in between. */
    ck_assert_int_eq(rotate_reopen(f), 0);
    ck_assert_int_eq(rotate_write(f, "ef\n", 3), 3);
    struct bytes b = slurp(path);
    ck_assert_str_eq(b.p, "abcdef\n");
    free(b.p);
    /* Moved away: the old file is ended, the rest starts the new one. */
    limit_size(9);
    ck_assert_int_eq(rotate_write(f, "ghij\n", 5), 2);
    limit_size(RLIM_INFINITY);
    char moved[256];
    snprintf(moved, sizeof(moved), "%s.1", path);
    ck_assert_int_eq(rename(path, moved), 0);
    ck_assert_int_eq(rotate_reopen(f), 0);
    ck_assert_int_eq(rotate_write(f, "ij\n", 3), 3);
    b = slurp(moved);
    ck_assert_str_eq(b.p, "abcdef\ngh\n");
    free(b.p);
    b = slurp(path);
    ck_assert_str_eq(b.p, "ij\n");
    free(b.p);
    ck_assert_int_eq(rotate_close(f), 0);
}
END_TEST

/* ---- failures ------------------------------------------------------------ */

static int set_append_only(const char *p, bool on)
{
    int fd = open(p, O_RDONLY);
    if (fd < 0)
        return -errno;
    int flags;
    int rc = ioctl(fd, FS_IOC_GETFLAGS, &flags);
    if (rc == 0) {
        flags = on ? flags | FS_APPEND_FL : flags & ~FS_APPEND_FL;
        rc = ioctl(fd, FS_IOC_SETFLAGS, &flags);
    }
    rc = rc != 0 ? -errno : 0;
    close(fd);
    return rc;
}

/* A rotation that fails (here: an append-only live file cannot be renamed)
 * does not stop writing; it is retried later. */
START_TEST(test_rotation_fails)
{
    struct rotate_opts o = opts_fake();
    o.max_size = 20;
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, NULL), 0);
    write_str(f, "0123456789\n");
    int rc = set_append_only(path, true);
    if (rc != 0) {
        fprintf(stderr, "check_rotate: cannot set FS_APPEND_FL here (%s); test skipped\n",
                strerror(-rc));
        rotate_close(f);
        return;
    }
    write_str(f, "0123456789\n");
    write_str(f, "0123456789\n");
    ck_assert_int_eq(rotate_size(f), 33);
    struct rotate_counters *c = rotate_counters_of(f);
    ck_assert_int_eq(get(&c->rotate_errors), 1); /* then a pause */
    ck_assert_int_eq(get(&c->rotations), 0);
    ck_assert_int_eq(atomic_load(&c->last_error), -EPERM);
    ck_assert_str_eq(atomic_load(&c->last_error_op), "rename");
    ck_assert_int_eq(rotate_now(f), -EPERM);
    ck_assert_int_eq(set_append_only(path, false), 0);
    usleep(1100 * 1000);
    write_str(f, "x\n");
    ck_assert_int_eq(get(&c->rotations), 1);
    rotate_counters_reset(c);
    ck_assert_int_eq(get(&c->rotations) + get(&c->rotate_errors) + get(&c->write_errors), 0);
    ck_assert_int_eq(atomic_load(&c->last_error), 0);
    ck_assert_ptr_null(atomic_load(&c->last_error_op));
    ck_assert_int_eq(rotate_close(f), 0);
    struct bytes got = collect(NULL);
    ck_assert_str_eq(got.p, "0123456789\n0123456789\n0123456789\nx\n");
    free(got.p);
}
END_TEST

/* ---- under load ---------------------------------------------------------- */

static void write_loop(int kind, unsigned nlines)
{
    struct archive_worker *w;
    ck_assert_int_eq(archive_worker_start(&w), 0);
    struct rotate_counters counters = {0};
    struct rotate_opts o = opts_fake();
    o.max_size = 256 * 1024;
    o.interval_s = 60;
    o.compress = kind;
    o.counters = &counters;
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, w), 0);
    struct bytes want = {0};
    char *batch = malloc(500 * 400);
    ck_assert_ptr_nonnull(batch);
    unsigned i = 0, r = 12345;
    int forced = 0;
    while (i < nlines) {
        r = r * 1103515245u + 12345u;
        unsigned lines = 1 + (r >> 16) % 500;
        size_t n = 0;
        for (unsigned k = 0; k < lines && i < nlines; k++)
            n += make_line(batch + n, 400, i++, 300);
        bytes_add(&want, batch, n);
        REQUIRE(rotate_write(f, batch, n) == (ssize_t)n);
        REQUIRE(rotate_size(f) <= o.max_size);
        fake_now += (r >> 8) % 3;
        REQUIRE(rotate_tick(f, fake_now) >= 0);
        if ((r >> 4) % 97 == 0) {
            REQUIRE(rotate_now(f) >= 0);
            forced++;
        }
    }
    ck_assert_int_eq(rotate_close(f), 0);
    ck_assert_int_eq(archive_worker_stop(w, -1), 0);
    free(batch);
    size_t narch;
    struct bytes got = collect(&narch);
    ck_assert_uint_eq(got.n, want.n);
    ck_assert(memcmp(got.p, want.p, want.n) == 0);
    ck_assert_uint_eq(atomic_load(&counters.rotations), narch);
    ck_assert_uint_eq(atomic_load(&counters.compressed), kind ? narch : 0);
    ck_assert_uint_eq(atomic_load(&counters.compress_errors), 0);
    ck_assert_uint_gt(narch, (size_t)forced);
    fprintf(stderr, "check_rotate: write loop: %u lines, %zu bytes, %zu archives (%d forced)\n",
            nlines, want.n, narch, forced);
    free(got.p);
    free(want.p);
}

START_TEST(test_write_loop_zstd)
{
    write_loop(ROTATE_COMPRESS_ZSTD, 200000);
}
END_TEST

START_TEST(test_write_loop_gzip)
{
    write_loop(ROTATE_COMPRESS_GZIP, 200000);
}
END_TEST

/* rotate_now() must not wait for compression: time both. */
START_TEST(test_rotate_does_not_compress)
{
    struct archive_worker *w;
    ck_assert_int_eq(archive_worker_start(&w), 0);
    struct rotate_opts o = opts_fake();
    o.compress = ROTATE_COMPRESS_GZIP;
    o.compress_level = 9;
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, w), 0);
    /* 16 MiB of hex digits from a weak generator: slow to deflate. */
    size_t n = 16u << 20;
    char *data = malloc(n);
    ck_assert_ptr_nonnull(data);
    uint64_t x = 88172645463325252u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data[i] = (i % 128 == 127) ? '\n' : "0123456789abcdef"[x & 15];
    }
    ck_assert_int_eq(rotate_write(f, data, n), (ssize_t)n);
    ck_assert_int_eq(rotate_sync(f), 0);
    double t0 = now_s();
    ck_assert_int_eq(rotate_now(f), 1);
    double t1 = now_s();
    ck_assert_int_eq(rotate_wait(f, 120000), 0);
    double t2 = now_s();
    ck_assert_int_eq(rotate_close(f), 0);
    ck_assert_int_eq(archive_worker_stop(w, -1), 0);
    fprintf(stderr, "check_rotate: rotate_now %.3f ms, compression after it %.1f ms\n",
            (t1 - t0) * 1e3, (t2 - t1) * 1e3);
    ck_assert_msg((t1 - t0) * 10 < t2 - t1, "rotate_now took %.3f ms, compression %.3f ms",
                  (t1 - t0) * 1e3, (t2 - t1) * 1e3);
    free(data);
}
END_TEST

/* Stopping the worker with work queued cancels it; the next open resumes. */
START_TEST(test_stop_cancels_and_resumes)
{
    struct archive_worker *w;
    ck_assert_int_eq(archive_worker_start(&w), 0);
    struct rotate_opts o = opts_fake();
    o.compress = ROTATE_COMPRESS_GZIP;
    o.compress_level = 9;
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, w), 0);
    struct bytes want = {0};
    char line[512];
    for (unsigned i = 0; i < 60000; i++)
        bytes_add(&want, line, make_line(line, sizeof(line), i * 2654435761u, 300));
    /* Four archives, cut at the line ends after each quarter. */
    size_t from = 0;
    for (int k = 1; k <= 4; k++) {
        size_t to = k == 4 ? want.n
                           : (size_t)((char *)memchr(want.p + want.n * k / 4, '\n', want.n) -
                                      want.p) + 1;
        ck_assert_int_eq(rotate_write(f, want.p + from, to - from), (ssize_t)(to - from));
        ck_assert_int_eq(rotate_now(f), 1);
        fake_now++;
        from = to;
    }
    ck_assert_int_eq(rotate_close(f), 0);
    int rc = archive_worker_stop(w, 0);
    ck_assert(rc == 0 || rc == -ETIMEDOUT);
    struct names nm = archives_now();
    size_t plain = 0;
    for (size_t i = 0; i < nm.n; i++) {
        ck_assert_msg(!ends_with(nm.v[i], ".tmp"), "left over: %s", nm.v[i]);
        plain += !ends_with(nm.v[i], ".gz");
    }
    names_free(&nm);
    fprintf(stderr, "check_rotate: stop: %zu of 4 archives left plain (%s)\n", plain,
            rc ? "cancelled" : "finished");
    struct bytes got = collect(NULL);
    ck_assert_str_eq(got.p, want.p);
    free(got.p);

    ck_assert_int_eq(archive_worker_start(&w), 0);
    ck_assert_int_eq(rotate_open(&f, path, &o, w), 0);
    ck_assert_int_eq(rotate_wait(f, 60000), 0);
    ck_assert_int_eq(rotate_close(f), 0);
    ck_assert_int_eq(archive_worker_stop(w, -1), 0);
    nm = archives_now();
    ck_assert_uint_eq(nm.n, 4);
    for (size_t i = 0; i < nm.n; i++)
        ck_assert(ends_with(nm.v[i], ".gz"));
    names_free(&nm);
    got = collect(NULL);
    ck_assert_str_eq(got.p, want.p);
    free(got.p);
    free(want.p);
}
END_TEST

/* Two files share one worker and one counters struct. */
START_TEST(test_shared_worker)
{
    struct archive_worker *w;
    ck_assert_int_eq(archive_worker_start(&w), 0);
    struct rotate_counters c = {0};
    struct rotate_opts o = opts_fake();
    o.compress = ROTATE_COMPRESS_ZSTD;
    o.keep = 2;
    o.counters = &c;
    char p2[256];
    snprintf(p2, sizeof(p2), "%s/sub/other.log", dir);
    struct rotate_file *a, *b;
    ck_assert_int_eq(rotate_open(&a, path, &o, w), 0);
    ck_assert_int_eq(rotate_open(&b, p2, &o, w), 0);
    for (int i = 0; i < 5; i++) {
        write_str(a, "a\n");
        write_str(b, "b\n");
        ck_assert_int_eq(rotate_now(a), 1);
        ck_assert_int_eq(rotate_now(b), 1);
    }
    /* Close at once: the work goes on without the files. */
    ck_assert_int_eq(rotate_close(a), 0);
    ck_assert_int_eq(rotate_close(b), 0);
    ck_assert_int_eq(archive_worker_stop(w, -1), 0);
    ck_assert_uint_eq(atomic_load(&c.rotations), 10);
    ck_assert_uint_eq(atomic_load(&c.pruned), 6);
    ck_assert_uint_le(atomic_load(&c.compressed), 10);
    ck_assert_uint_ge(atomic_load(&c.compressed), 4);
    struct names nm = archives_now();
    ck_assert_uint_eq(nm.n, 2);
    names_free(&nm);
}
END_TEST


/* ---- symbolic links (issue 14) ------------------------------------------ */

static const char victim_text[] = "not a log\n";

static void make_victim(char *out, size_t n)
{
    snprintf(out, n, "%s/victim", dir);
    spit(out, victim_text, strlen(victim_text));
}

static void victim_untouched(const char *v)
{
    struct bytes b = slurp(v);
    REQUIRE_MSG(b.n == strlen(victim_text) && memcmp(b.p, victim_text, b.n) == 0,
                "%s was written through a symlink", v);
    free(b.p);
}

/* A symlink at the live path is refused, never written through. */
START_TEST(test_symlink_live_refused)
{
    char v[256];
    make_victim(v, sizeof(v));
    ck_assert_int_eq(symlink(v, path), 0);
    struct rotate_opts o = opts_fake();
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, NULL), -ELOOP);
    /* A dangling one too: O_CREAT alone would create its target. */
    char p2[256], t2[256];
    snprintf(p2, sizeof(p2), "%s/dangling.log", dir);
    snprintf(t2, sizeof(t2), "%s/made-through-link", dir);
    ck_assert_int_eq(symlink(t2, p2), 0);
    ck_assert_int_eq(rotate_open(&f, p2, &o, NULL), -ELOOP);
    ck_assert_int_ne(access(t2, F_OK), 0);
    victim_untouched(v);
}
END_TEST

/* Directories below trusted_len are walked without following a link; the
 * trusted part may be one. */
START_TEST(test_symlink_directory)
{
    char real[256], link[256], p[512];
    snprintf(real, sizeof(real), "%s/real", dir);
    snprintf(link, sizeof(link), "%s/link", dir);
    ck_assert_int_eq(mkdir(real, 0755), 0);
    ck_assert_int_eq(symlink(real, link), 0);
    struct rotate_opts o = opts_fake();
    struct rotate_file *f;
    /* link/h1/x.log with only "DIR" trusted: "link" is below it. */
    snprintf(p, sizeof(p), "%s/h1/x.log", link);
    o.trusted_len = strlen(dir);
    ck_assert_int_eq(rotate_open(&f, p, &o, NULL), -ELOOP);
    char made[512];
    snprintf(made, sizeof(made), "%s/h1", real);
    ck_assert_int_ne(access(made, F_OK), 0);
    /* With DIR/link trusted, it is followed and h1 made below it. */
    o.trusted_len = strlen(link);
    ck_assert_int_eq(rotate_open(&f, p, &o, NULL), 0);
    write_str(f, "x\n");
    ck_assert_int_eq(rotate_close(f), 0);
    snprintf(made, sizeof(made), "%s/h1/x.log", real);
    ck_assert_int_eq(access(made, F_OK), 0);
    /* A link at a deeper component: DIR/real/h2 -> elsewhere. */
    char other[256];
    snprintf(other, sizeof(other), "%s/other", dir);
    ck_assert_int_eq(mkdir(other, 0755), 0);
    snprintf(made, sizeof(made), "%s/h2", real);
    ck_assert_int_eq(symlink(other, made), 0);
    snprintf(p, sizeof(p), "%s/h2/sub/x.log", real);
    o.trusted_len = strlen(real);
    ck_assert_int_eq(rotate_open(&f, p, &o, NULL), -ELOOP);
    DIR *d = opendir(other);
    REQUIRE(d != NULL);
    int n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        n += de->d_name[0] != '.';
    closedir(d);
    ck_assert_int_eq(n, 0);
}
END_TEST

/* A link that takes the file's place is refused by the reopen and by the
 * writes after it, and the file works again once the link is gone. */
START_TEST(test_symlink_at_reopen)
{
    char v[256];
    make_victim(v, sizeof(v));
    struct rotate_opts o = opts_fake();
    struct rotate_file *f;
    ck_assert_int_eq(rotate_open(&f, path, &o, NULL), 0);
    write_str(f, "one\n");
    char moved[256];
    snprintf(moved, sizeof(moved), "%s.1", path);
    ck_assert_int_eq(rename(path, moved), 0);
    ck_assert_int_eq(symlink(v, path), 0);
    ck_assert_int_eq(rotate_reopen(f), -ELOOP);
    ck_assert_int_eq(rotate_write(f, "two\n", 4), -ELOOP);
    victim_untouched(v);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rotate_reopen(f), 0);
    write_str(f, "three\n");
    ck_assert_int_eq(rotate_close(f), 0);
    struct bytes b = slurp(path);
    ck_assert_str_eq(b.p, "three\n");
    free(b.p);
}
END_TEST

/* A planted .tmp (even a symlink) is removed, not written through. */
START_TEST(test_symlink_tmp_copy)
{
    char v[256], name[256], tmp[320];
    make_victim(v, sizeof(v));
    snprintf(name, sizeof(name), "%s/a.log.20261126T110356Z.000", dir);
    spit(name, "archived\n", 9);
    snprintf(tmp, sizeof(tmp), "%s.gz.tmp", name);
    ck_assert_int_eq(symlink(v, tmp), 0);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    REQUIRE(dfd >= 0);
    ck_assert_int_eq(archive_compress(dfd, "a.log.20261126T110356Z.000", ROTATE_COMPRESS_GZIP, 0,
                                      NULL),
                     0);
    close(dfd);
    victim_untouched(v);
    char gz[320];
    snprintf(gz, sizeof(gz), "%s.gz", name);
    ck_assert_int_eq(access(gz, F_OK), 0);
    ck_assert_int_ne(access(tmp, F_OK), 0);
}
END_TEST

START_TEST(test_trusted_len)
{
    static const struct {
        const char *tmpl;
        size_t want;
    } cases[] = {
        {"/var/log/messages.log", SAFEDIR_ALL},
        {"/var/log/apps/%{app}.log", SAFEDIR_ALL},
        {"/var/log/%{host}/%{app}.log", 8},
        {"/var/log/h-%{host}/x.log", 8},
        {"/%{host}/x.log", 0},
        {"%{host}/x.log", 0},
        {"logs/%{host}/sub/x.log", 4},
        {"x.log", SAFEDIR_ALL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        REQUIRE_MSG(safedir_trusted_len(cases[i].tmpl) == cases[i].want, "%s: %zu, want %zu",
                    cases[i].tmpl, safedir_trusted_len(cases[i].tmpl), cases[i].want);
}
END_TEST

/* ---- many files (issue 14) ---------------------------------------------- */

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    REQUIRE(d != NULL);
    int n = 0;
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        n += de->d_name[0] != '.';
    closedir(d);
    return n - 1; /* opendir's own */
}

/* 500 files of one directory, each rotated once and closed at once: their
 * queued maintenance holds no descriptor, and every archive is compressed
 * (jobs of one directory coalesce; none is lost doing so). */
START_TEST(test_many_files_cheap)
{
    struct archive_worker *w;
    ck_assert_int_eq(archive_worker_start(&w), 0);
    struct rotate_counters c = {0};
    struct rotate_opts o = opts_fake();
    o.compress = ROTATE_COMPRESS_GZIP;
    o.keep = 3;
    o.counters = &c;
    int before = count_fds();
    int most = before;
    enum { N = 500 };
    for (int i = 0; i < N; i++) {
        char p[256];
        snprintf(p, sizeof(p), "%s/apps/app%04d.log", dir, i);
        struct rotate_file *f;
        ck_assert_int_eq(rotate_open(&f, p, &o, w), 0);
        write_str(f, "a line\n");
        ck_assert_int_eq(rotate_now(f), 1);
        ck_assert_int_eq(rotate_close_lazy(f), 0);
        int n = count_fds();
        if (n > most)
            most = n;
    }
    /* The worker's own: a directory, a compression's input and output. */
    REQUIRE_MSG(most <= before + 4, "%d descriptors with %d before", most, before);
    /* Files kicked again while their directory's job runs: the new kicks
     * queue a second job beside the running one. */
    enum { B = 4, R = 40 };
    struct rotate_file *busy[B];
    for (int i = 0; i < B; i++) {
        char p[256];
        snprintf(p, sizeof(p), "%s/apps/busy%d.log", dir, i);
        ck_assert_int_eq(rotate_open(&busy[i], p, &o, w), 0);
    }
    for (int r = 0; r < R; r++) {
        for (int i = 0; i < B; i++) {
            write_str(busy[i], "busy line\n");
            ck_assert_int_eq(rotate_now(busy[i]), 1);
        }
    }
    for (int i = 0; i < B; i++)
        ck_assert_int_eq(rotate_close(busy[i]), 0);
    ck_assert_int_eq(archive_worker_stop(w, -1), 0);
    ck_assert_uint_eq(atomic_load(&c.rotations), N + B * R);
    /* Every archive is compressed, or pruned (keep 3) first. */
    ck_assert_uint_eq(atomic_load(&c.pruned), B * (R - 3));
    ck_assert_uint_ge(atomic_load(&c.compressed), N + B * 3);
    ck_assert_uint_eq(atomic_load(&c.compress_errors), 0);
    ck_assert_uint_eq(atomic_load(&c.prune_errors), 0);
    ck_assert_int_eq(count_fds(), before);
}
END_TEST

static Suite *rotate_suite(void)
{
    Suite *s = suite_create("rotate");
    struct {
        const char *name;
        const TTest *tests[12];
    } groups[] = {
        {"api", {test_names, test_bad_arguments, test_open_creates, test_partial_line_ended}},
        {"size", {test_size_split, test_long_line, test_copytruncate, test_partial_write_retry}},
        {"interval", {test_interval_daily_local, test_interval_daily_utc,
                      test_interval_hourly_dst_autumn,
                      test_interval_hourly_dst_spring, test_interval_stale_file}},
        {"names", {test_forced, test_names_sort_by_age}},
        {"prune", {test_keep, test_max_total}},
        {"compress", {test_gzip_roundtrip, test_zstd_roundtrip, test_compress_empty}},
        {"crash", {test_crash_resume, test_crash_kill, test_stop_cancels_and_resumes}},
        {"reopen", {test_reopen_after_rename, test_reopen_mid_line, test_rotation_fails}},
        {"load", {test_write_loop_zstd, test_write_loop_gzip, test_rotate_does_not_compress,
                  test_shared_worker, test_many_files_cheap}},
        {"symlinks", {test_symlink_live_refused, test_symlink_directory, test_symlink_at_reopen,
                      test_symlink_tmp_copy, test_trusted_len}},
    };
    for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
        TCase *tc = tcase_create(groups[g].name);
        tcase_add_unchecked_fixture(tc, make_base, remove_base);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 300);
        for (size_t i = 0; groups[g].tests[i] != NULL; i++)
            tcase_add_test(tc, groups[g].tests[i]);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(rotate_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
