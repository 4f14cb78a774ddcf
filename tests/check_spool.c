/*
 * Unit tests for lib/spool.c.
 *
 * Every test works in a fresh directory under /tmp.  The central check is
 * drain(): it reads every frame the spool will give from the reading
 * position, checks that each is a whole frame, and returns the record
 * numbers found in the bodies ("rec NNNNNN ..."), so that tests can say
 * "exactly these records, once each, in order".
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"

#define REQUIRE(cond)                                                       \
    do {                                                                    \
        if (!(cond))                                                        \
            ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);           \
    } while (0)

static char base_dir[64];
static char dir[128];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

static void make_base(void)
{
    strcpy(base_dir, "/tmp/check_spool.XXXXXX");
    if (mkdtemp(base_dir) == NULL) {
        perror("check_spool: mkdtemp");
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
    strcat(dir, "/spool/a"); /* missing parents are made */
}

static void teardown(void)
{
    char top[128];
    snprintf(top, sizeof(top), "%s", dir);
    *strstr(top, "/spool/a") = '\0';
    nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- helpers ------------------------------------------------------------ */

/* Frame record i (its body "rec NNNNNN" padded to pad bytes) onto b. */
static void put_rec(struct buf *b, int i, size_t pad)
{
    char body[4096];
    int n = snprintf(body, sizeof(body), "rec %06d ", i);
    while ((size_t)n < pad && n < (int)sizeof(body))
        body[n++] = 'x';
    char hdr[16];
    size_t h = spool_frame_header(hdr, (size_t)n);
    REQUIRE(buf_append(b, hdr, h) == 0 && buf_append(b, body, (size_t)n) == 0);
}

static struct spool *open_spool(int64_t max, int64_t seg, int full)
{
    struct spool_opts o;
    spool_opts_init(&o);
    o.max_size = max;
    o.seg_size = seg;
    o.full = full;
    struct spool *sp = NULL;
    int rc = spool_open(&sp, dir, &o);
    ck_assert_msg(rc == 0, "spool_open: %s", strerror(-rc));
    return sp;
}

/* Append records [from, to), one call per record; returns how many went. */
static int append_range(struct spool *sp, int from, int to, size_t pad)
{
    struct buf b = BUF_INIT;
    int k = 0;
    for (int i = from; i < to; i++) {
        b.len = 0;
        put_rec(&b, i, pad);
        size_t nr = 0;
        ssize_t n = spool_append(sp, b.p, b.len, &nr);
        if (n == SPOOL_FULL)
            break;
        ck_assert_msg(n == (ssize_t)b.len && nr == 1, "append %d: %zd", i, n);
        k++;
    }
    buf_free(&b);
    return k;
}

struct got {
    int *v;
    size_t n;
    uint64_t end; /* position after the last frame read */
};

/* Read everything readable, optionally acknowledging as we go. */
static struct got drain(struct spool *sp, bool ack)
{
    struct got g = {malloc(sizeof(int) * 400000), 0, 0};
    struct buf b = BUF_INIT;
    for (;;) {
        b.len = 0;
        uint64_t start;
        int k = spool_read(sp, &b, 1000, &start);
        REQUIRE(k >= 0);
        if (k == 0)
            break;
        size_t off = 0;
        for (int j = 0; j < k; j++) {
            size_t fl, bo;
            REQUIRE(spool_frame(b.p + off, b.len - off, &fl, &bo) == 1);
            int rec;
            REQUIRE(sscanf(b.p + off + bo, "rec %d", &rec) == 1);
            g.v[g.n++] = rec;
            off += fl;
        }
        REQUIRE(off == b.len);
        g.end = start + b.len;
        if (ack)
            REQUIRE(spool_ack(sp, g.end) == 0);
    }
    buf_free(&b);
    return g;
}

static void expect_seq(const struct got *g, int from, int to)
{
    ck_assert_uint_eq(g->n, (size_t)(to - from));
    for (size_t i = 0; i < g->n; i++)
        ck_assert_msg(g->v[i] == from + (int)i, "record %zu is %d, not %d", i, g->v[i],
                      from + (int)i);
}

static int count_segments(void)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "ls %s | grep -c '\\.seg$'", dir);
    FILE *p = popen(cmd, "r");
    int n = -1;
    REQUIRE(p != NULL && fscanf(p, "%d", &n) == 1);
    pclose(p);
    return n;
}

static void last_segment(char *out, size_t len)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "ls %s | grep '\\.seg$' | tail -1", dir);
    FILE *p = popen(cmd, "r");
    char name[64];
    REQUIRE(p != NULL && fscanf(p, "%63s", name) == 1);
    pclose(p);
    snprintf(out, len, "%s/%s", dir, name);
}

static void write_file(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    REQUIRE(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* A valid cursor file's line for pos (the check as lib/spool.c makes it). */
static void write_cursor(uint64_t pos)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 8; i++) {
        h ^= (uint8_t)(pos >> (8 * i));
        h *= 16777619u;
    }
    char text[128];
    snprintf(text, sizeof(text), "lograil-spool-cursor 1 %" PRIu64 " %08x\n", pos, h);
    write_file("cursor", text);
}

/* ---- frames ------------------------------------------------------------- */

START_TEST(test_frame_table)
{
    static const struct {
        const char *in;
        int rc;
        size_t len, body;
    } cases[] = {
        {"3 abc", 1, 5, 2},
        {"3 abcdef", 1, 5, 2},
        {"10 0123456789", 1, 13, 3},
        {"3 ab", 0, 0, 0},
        {"3", 0, 0, 0},
        {"", 0, 0, 0},
        {"0 ", -1, 0, 0},
        {"03 abc", -1, 0, 0},
        {"x", -1, 0, 0},
        {"3xabc", -1, 0, 0},
        {"123456789 a", -1, 0, 0}, /* nine digits: past SPOOL_FRAME_MAX */
        {"\0\0\0\0", -1, 0, 0},     /* what a crash leaves: zeros */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t fl = 0, bo = 0;
        size_t n = strlen(cases[i].in);
        if (i == sizeof(cases) / sizeof(cases[0]) - 1)
            n = 4;
        int rc = spool_frame(cases[i].in, n, &fl, &bo);
        ck_assert_msg(rc == cases[i].rc, "case %zu \"%s\": %d", i, cases[i].in, rc);
        if (rc == 1) {
            ck_assert_uint_eq(fl, cases[i].len);
            ck_assert_uint_eq(bo, cases[i].body);
        }
    }
    size_t c;
    int bad;
    ck_assert_uint_eq(spool_frames_prefix("1 a2 bc3 x", 10, &c, &bad), 7);
    ck_assert_uint_eq(c, 2);
    ck_assert_int_eq(bad, 0);
    ck_assert_uint_eq(spool_frames_prefix("1 aZZ", 5, &c, &bad), 3);
    ck_assert_int_eq(bad, 1);
}
END_TEST

/* ---- append, read, ack --------------------------------------------------- */

START_TEST(test_roundtrip_segments)
{
    struct spool *sp = open_spool(0, 4096, SPOOL_BLOCK);
    ck_assert_int_eq(append_range(sp, 0, 2000, 60), 2000);
    REQUIRE(count_segments() > 20);
    struct got g = drain(sp, false);
    expect_seq(&g, 0, 2000);
    free(g.v);
    /* Nothing acknowledged: a rewind gives everything again. */
    spool_rewind(sp);
    g = drain(sp, true);
    expect_seq(&g, 0, 2000);
    free(g.v);
    struct spool_info in;
    spool_info(sp, &in);
    ck_assert_uint_eq(in.unacked_bytes, 0);
    ck_assert_uint_eq(in.segments, 1); /* acknowledged segments deleted, tail kept */
    ck_assert_int_eq(count_segments(), 1);
    ck_assert_int_eq(spool_close(sp), 0);
}
END_TEST

START_TEST(test_batch_append_splits_at_frames)
{
    struct spool *sp = open_spool(0, 4096, SPOOL_BLOCK);
    struct buf b = BUF_INIT;
    for (int i = 0; i < 500; i++)
        put_rec(&b, i, 100);
    size_t nr = 0;
    ck_assert_int_eq(spool_append(sp, b.p, b.len, &nr), (ssize_t)b.len);
    ck_assert_uint_eq(nr, 500);
    /* A batch that does not start with a frame is refused. */
    ck_assert_int_eq(spool_append(sp, "garbage", 7, NULL), -EINVAL);
    buf_free(&b);
    struct got g = drain(sp, true);
    expect_seq(&g, 0, 500);
    free(g.v);
    spool_close(sp);
}
END_TEST

START_TEST(test_restart_resumes_at_cursor)
{
    struct spool *sp = open_spool(0, 4096, SPOOL_BLOCK);
    append_range(sp, 0, 1000, 50);
    /* Read all, acknowledge only the first part. */
    struct buf b = BUF_INIT;
    uint64_t start, ack_at = 0;
    int seen = 0;
    while (seen < 300) {
        b.len = 0;
        int k = spool_read(sp, &b, 500, &start);
        REQUIRE(k > 0);
        seen += k;
        ack_at = start + b.len;
    }
    buf_free(&b);
    REQUIRE(spool_ack(sp, ack_at) == 0);
    ck_assert_int_eq(spool_close(sp), 0);
    sp = open_spool(0, 4096, SPOOL_BLOCK);
    struct got g = drain(sp, true);
    expect_seq(&g, seen, 1000);
    free(g.v);
    /* New appends follow, at growing positions. */
    append_range(sp, 1000, 1010, 50);
    g = drain(sp, true);
    expect_seq(&g, 1000, 1010);
    free(g.v);
    spool_close(sp);
}
END_TEST

/* ---- crash recovery ------------------------------------------------------ */

START_TEST(test_torn_tail_cut)
{
    static const char *const tails[] = {"12 only-half", "7", "\0\0\0\0\0\0\0\0", "9 abc\n"};
    static const size_t lens[] = {12, 1, 8, 6};
    for (size_t t = 0; t < 4; t++) {
        setup();
        struct spool *sp = open_spool(0, 1 << 20, SPOOL_BLOCK);
        append_range(sp, 0, 100, 40);
        spool_close(sp);
        char seg[256];
        last_segment(seg, sizeof(seg));
        struct stat st0;
        REQUIRE(stat(seg, &st0) == 0);
        int fd = open(seg, O_WRONLY | O_APPEND);
        REQUIRE(fd >= 0 && write(fd, tails[t], lens[t]) == (ssize_t)lens[t]);
        close(fd);
        sp = open_spool(0, 1 << 20, SPOOL_BLOCK);
        struct spool_info in;
        spool_info(sp, &in);
        ck_assert_uint_eq(in.torn_bytes, lens[t]);
        struct stat st1;
        REQUIRE(stat(seg, &st1) == 0);
        ck_assert_int_eq(st1.st_size, st0.st_size);
        append_range(sp, 100, 110, 40);
        struct got g = drain(sp, true);
        expect_seq(&g, 0, 110);
        free(g.v);
        spool_close(sp);
        teardown();
    }
}
END_TEST

START_TEST(test_truncated_mid_record)
{
    struct spool *sp = open_spool(0, 1 << 20, SPOOL_BLOCK);
    append_range(sp, 0, 100, 40);
    spool_close(sp);
    char seg[256];
    last_segment(seg, sizeof(seg));
    struct stat st;
    REQUIRE(stat(seg, &st) == 0);
    REQUIRE(truncate(seg, st.st_size - 20) == 0); /* inside record 99 */
    sp = open_spool(0, 1 << 20, SPOOL_BLOCK);
    struct got g = drain(sp, true);
    expect_seq(&g, 0, 99);
    free(g.v);
    spool_close(sp);
}
END_TEST

/* A cursor file that cannot be trusted means "from the oldest", never
 * "skip"; one that points past a segment's end or into a deleted one moves
 * to the next existing byte; one inside a frame moves to its start. */
START_TEST(test_cursor_recovery_table)
{
    struct {
        const char *what;
        int kind;   /* 0 text as given, 1 valid cursor at a position */
        const char *text;
        int pos_rec; /* for kind 1: at the start of this record (-1: far past the end) */
        int pos_delta; /* bytes added to it */
        int first;  /* first record read after reopening */
        bool reset; /* counted as a reset */
    } cases[] = {
        {"garbage", 0, "hello\n", 0, 0, 0, true},
        {"bad check", 0, "lograil-spool-cursor 1 5000 00000000\n", 0, 0, 0, true},
        {"empty", 0, "", 0, 0, 0, true},
        {"at record 50", 1, NULL, 50, 0, 50, false},
        {"inside record 50", 1, NULL, 50, 7, 50, true},
        {"past the end", 1, NULL, -1, 0, 200, false},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        setup();
        struct spool *sp = open_spool(0, 1 << 20, SPOOL_BLOCK);
        append_range(sp, 0, 200, 30);
        /* Learn record positions: every record here is the same size. */
        struct buf b = BUF_INIT;
        put_rec(&b, 0, 30);
        uint64_t rec_len = b.len;
        buf_free(&b);
        spool_close(sp);
        if (cases[c].kind == 0) {
            write_file("cursor", cases[c].text);
        } else {
            uint64_t pos = cases[c].pos_rec < 0 ? UINT64_C(1) << 40
                                                : (uint64_t)cases[c].pos_rec * rec_len +
                                                      (uint64_t)cases[c].pos_delta;
            write_cursor(pos);
        }
        sp = open_spool(0, 1 << 20, SPOOL_BLOCK);
        struct spool_info in;
        spool_info(sp, &in);
        ck_assert_msg((in.cursor_resets > 0) == cases[c].reset, "%s: resets %" PRIu64,
                      cases[c].what, in.cursor_resets);
        struct got g = drain(sp, true);
        expect_seq(&g, cases[c].first, 200);
        free(g.v);
        spool_close(sp);
        teardown();
    }
}
END_TEST

START_TEST(test_cursor_into_deleted_segment)
{
    struct spool *sp = open_spool(0, 4096, SPOOL_BLOCK);
    append_range(sp, 0, 500, 60);
    spool_close(sp);
    /* Delete the first segment by hand (as if dropped), leaving a cursor
     * of 0 that points into it. */
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "cd %s && rm $(ls | grep '\\.seg$' | head -1)", dir);
    REQUIRE(system(cmd) == 0);
    sp = open_spool(0, 4096, SPOOL_BLOCK);
    struct got g = drain(sp, true);
    REQUIRE(g.n > 0 && g.v[g.n - 1] == 499);
    expect_seq(&g, 500 - (int)g.n, 500);
    free(g.v);
    spool_close(sp);
}
END_TEST

/* ---- limits -------------------------------------------------------------- */

START_TEST(test_full_block)
{
    struct spool *sp = open_spool(64 * 1024, 4096, SPOOL_BLOCK);
    int n = append_range(sp, 0, 100000, 100);
    REQUIRE(n > 100 && n < 1000);
    struct spool_info in;
    spool_info(sp, &in);
    REQUIRE(in.bytes <= 64 * 1024);
    ck_assert_uint_eq(in.full_events, 1);
    ck_assert_uint_eq(in.dropped_records, 0);
    /* Acknowledging frees whole segments, and appends go on. */
    struct got g = drain(sp, true);
    expect_seq(&g, 0, n);
    free(g.v);
    int m = append_range(sp, n, n + 100, 100);
    ck_assert_int_eq(m, 100);
    g = drain(sp, true);
    expect_seq(&g, n, n + 100);
    free(g.v);
    spool_close(sp);
}
END_TEST

START_TEST(test_full_drop_oldest_counts_exactly)
{
    const int total = 5000;
    struct spool *sp = open_spool(64 * 1024, 4096, SPOOL_DROP_OLDEST);
    ck_assert_int_eq(append_range(sp, 0, total, 100), total);
    struct spool_info in;
    spool_info(sp, &in);
    REQUIRE(in.bytes <= 64 * 1024);
    REQUIRE(in.dropped_records > 0);
    struct got g = drain(sp, true);
    /* What is left is the newest, in order; with what was dropped it is
     * every record exactly once. */
    ck_assert_uint_eq(g.n + in.dropped_records, (size_t)total);
    expect_seq(&g, total - (int)g.n, total);
    free(g.v);
    spool_close(sp);
}
END_TEST

/* Segments the reader has taken unacknowledged bytes from are not dropped:
 * those bytes may be on their way, and counting them as dropped would be a
 * lie either way. */
START_TEST(test_drop_spares_reserved)
{
    struct spool *sp = open_spool(64 * 1024, 4096, SPOOL_DROP_OLDEST);
    append_range(sp, 0, 200, 100);
    struct buf b = BUF_INIT;
    uint64_t start;
    REQUIRE(spool_read(sp, &b, 200, &start) > 0); /* reserve part of the first segment */
    buf_free(&b);
    append_range(sp, 200, 3000, 100);
    struct spool_info in;
    spool_info(sp, &in);
    REQUIRE(in.dropped_records > 0);
    spool_rewind(sp);
    struct got g = drain(sp, true);
    /* Record 0 (reserved) survived; the gap after the first segment was dropped. */
    ck_assert_int_eq(g.v[0], 0);
    ck_assert_uint_eq(g.n + in.dropped_records, 3000);
    for (size_t i = 1; i < g.n; i++)
        REQUIRE(g.v[i] > g.v[i - 1]);
    free(g.v);
    spool_close(sp);
}
END_TEST

/* A write cut short (the file size limit stands in for a full disk) is
 * taken back: the retry writes the frame from its start. */
START_TEST(test_short_write_taken_back)
{
    struct spool *sp = open_spool(0, 1 << 20, SPOOL_BLOCK);
    append_range(sp, 0, 10, 100);
    struct spool_info in;
    spool_info(sp, &in);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {in.end + 250, RLIM_INFINITY};
    REQUIRE(setrlimit(RLIMIT_FSIZE, &rl) == 0);
    struct buf b = BUF_INIT;
    for (int i = 10; i < 20; i++)
        put_rec(&b, i, 100);
    size_t nr = 0;
    ssize_t n = spool_append(sp, b.p, b.len, &nr);
    REQUIRE(n > 0 && (size_t)n < b.len);
    ck_assert_uint_eq(nr, 2); /* 2 whole frames of 111 bytes fit in 250 */
    rl.rlim_cur = RLIM_INFINITY;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &rl) == 0);
    ck_assert_int_eq(spool_append(sp, b.p + n, b.len - (size_t)n, &nr), (ssize_t)b.len - n);
    buf_free(&b);
    struct got g = drain(sp, true);
    expect_seq(&g, 0, 20);
    free(g.v);
    spool_close(sp);
}
END_TEST

/* ---- threads ------------------------------------------------------------- */

struct rw {
    struct spool *sp;
    int n;
    _Atomic int done;
};

static void *writer_thread(void *arg)
{
    struct rw *rw = arg;
    struct buf b = BUF_INIT;
    for (int i = 0; i < rw->n;) {
        b.len = 0;
        int k0 = i;
        for (int j = 0; j < 37 && i < rw->n; j++, i++)
            put_rec(&b, i, 20 + (size_t)(i % 200));
        size_t off = 0;
        while (off < b.len) {
            ssize_t w = spool_append(rw->sp, b.p + off, b.len - off, NULL);
            if (w == SPOOL_FULL) {
                usleep(100);
                continue;
            }
            REQUIRE(w > 0);
            off += (size_t)w;
        }
        (void)k0;
    }
    buf_free(&b);
    rw->done = 1;
    return NULL;
}

START_TEST(test_writer_and_reader_threads)
{
    struct rw rw = {open_spool(256 * 1024, 8192, SPOOL_BLOCK), 100000, 0};
    pthread_t t;
    REQUIRE(pthread_create(&t, NULL, writer_thread, &rw) == 0);
    struct buf b = BUF_INIT;
    int next = 0;
    while (next < rw.n) {
        b.len = 0;
        uint64_t start;
        int k = spool_read(rw.sp, &b, 3000, &start);
        REQUIRE(k >= 0);
        if (k == 0) {
            usleep(50);
            continue;
        }
        size_t off = 0;
        for (int j = 0; j < k; j++) {
            size_t fl, bo;
            REQUIRE(spool_frame(b.p + off, b.len - off, &fl, &bo) == 1);
            int rec;
            REQUIRE(sscanf(b.p + off + bo, "rec %d", &rec) == 1);
            ck_assert_int_eq(rec, next);
            next++;
            off += fl;
        }
        REQUIRE(spool_ack(rw.sp, start + b.len) == 0);
        if (next % 1000 < k)
            REQUIRE(spool_save_cursor(rw.sp) == 0);
    }
    pthread_join(t, NULL);
    buf_free(&b);
    struct spool_info in;
    spool_info(rw.sp, &in);
    ck_assert_uint_eq(in.unacked_bytes, 0);
    ck_assert_uint_eq(in.dropped_records, 0);
    spool_close(rw.sp);
}
END_TEST

static Suite *spool_suite(void)
{
    Suite *s = suite_create("spool");
    struct {
        const char *name;
        const TTest *tests[8];
    } groups[] = {
        {"frames", {test_frame_table}},
        {"io", {test_roundtrip_segments, test_batch_append_splits_at_frames,
                test_restart_resumes_at_cursor, test_short_write_taken_back}},
        {"crash", {test_torn_tail_cut, test_truncated_mid_record, test_cursor_recovery_table,
                   test_cursor_into_deleted_segment}},
        {"limits", {test_full_block, test_full_drop_oldest_counts_exactly,
                    test_drop_spares_reserved}},
        {"threads", {test_writer_and_reader_threads}},
    };
    for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
        TCase *tc = tcase_create(groups[g].name);
        tcase_add_unchecked_fixture(tc, make_base, remove_base);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        for (size_t i = 0; groups[g].tests[i] != NULL; i++)
            tcase_add_test(tc, groups[g].tests[i]);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(spool_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
