/* Check suite for lib/logread.c: lines and offsets out of plain, gzip and
 * zstd files, whole, cut short, corrupt and growing. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "logread.h"

static char path[PATH_MAX];

static void setup(void)
{
    snprintf(path, sizeof(path), "/tmp/check_logread.XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
}

static void teardown(void)
{
    unlink(path);
}

static void put_file(const void *p, size_t n, const char *mode)
{
    FILE *f = fopen(path, mode);
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* n numbered lines "line NNNNNN xxxx...\n" of varying length. */
static char *make_lines(int n, size_t *len)
{
    size_t cap = (size_t)n * 80 + 1, o = 0;
    char *s = malloc(cap);
    for (int i = 0; i < n; i++)
        o += (size_t)snprintf(s + o, cap - o, "line %06d %.*s\n", i, i % 50,
                              "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    *len = o;
    return s;
}

static size_t gz(const char *in, size_t n, char *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    ck_assert_int_eq(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t w = cap - z.avail_out;
    deflateEnd(&z);
    return w;
}

/* Read every line and check it against want; return the error. */
static int read_all(enum archive_form form, const char *want, size_t wlen, size_t *got_bytes)
{
    struct logread r;
    ck_assert_int_eq(logread_open_path(&r, path, form), 0);
    struct logread_line l;
    int rc;
    size_t at = 0;
    while ((rc = logread_next(&r, &l)) > 0) {
        ck_assert_uint_eq(l.off, at);
        ck_assert(!l.cut);
        ck_assert(at + l.len <= wlen);
        ck_assert(memcmp(l.p, want + at, l.len) == 0);
        at += l.len + (l.partial ? 0 : 1);
    }
    *got_bytes = at;
    logread_close(&r);
    return rc;
}

START_TEST(plain_gzip_zstd_whole)
{
    size_t n;
    char *s = make_lines(20000, &n);
    size_t cap = ZSTD_compressBound(n) + 1024, got;
    char *c = malloc(cap * 2);
    put_file(s, n, "wb");
    ck_assert_int_eq(read_all(ARCHIVE_PLAIN, s, n, &got), 0);
    ck_assert_uint_eq(got, n);
    /* Two gzip members, as `cat a.gz b.gz` makes. */
    size_t h = n / 2;
    while (s[h - 1] != '\n')
        h++;
    size_t c1 = gz(s, h, c, cap);
    size_t c2 = gz(s + h, n - h, c + c1, cap);
    put_file(c, c1 + c2, "wb");
    ck_assert_int_eq(read_all(ARCHIVE_GZ, s, n, &got), 0);
    ck_assert_uint_eq(got, n);
    size_t z = ZSTD_compress(c, cap, s, n, 3);
    ck_assert(!ZSTD_isError(z));
    put_file(c, z, "wb");
    ck_assert_int_eq(read_all(ARCHIVE_ZST, s, n, &got), 0);
    ck_assert_uint_eq(got, n);
    free(c);
    free(s);
}
END_TEST

START_TEST(cut_and_corrupt)
{
    size_t n;
    char *s = make_lines(20000, &n);
    size_t cap = ZSTD_compressBound(n) + 1024, got;
    char *c = malloc(cap);
    size_t g = gz(s, n, c, cap);
    put_file(c, g / 2, "wb");
    ck_assert_int_eq(read_all(ARCHIVE_GZ, s, n, &got), -ENODATA);
    ck_assert(got > 0 && got < n);
    c[g / 2] ^= 0x55;
    c[g / 2 + 1] ^= 0x55;
    put_file(c, g, "wb");
    /* Corrupt deflate data may decode to wrong bytes before the error
     * shows (the CRC is at the end): only the error is checked. */
    struct logread cr;
    ck_assert_int_eq(logread_open_path(&cr, path, ARCHIVE_GZ), 0);
    struct logread_line cl;
    int rc;
    while ((rc = logread_next(&cr, &cl)) > 0)
        ;
    logread_close(&cr);
    ck_assert_msg(rc == -EBADMSG, "rc %d", rc);
    /* A zstd frame of several blocks, cut in half. */
    size_t z = ZSTD_compress(c, cap, s, n, 3);
    put_file(c, z / 2, "wb");
    ck_assert_int_eq(read_all(ARCHIVE_ZST, s, n, &got), -ENODATA);
    ck_assert(got > 0 && got < n);
    put_file("not zstd at all\n", 16, "wb");
    ck_assert_int_eq(read_all(ARCHIVE_ZST, s, n, &got), -EBADMSG);
    put_file("", 0, "wb");
    ck_assert_int_eq(read_all(ARCHIVE_GZ, s, n, &got), -ENODATA);
    ck_assert_int_eq(read_all(ARCHIVE_PLAIN, s, n, &got), 0);
    ck_assert_uint_eq(got, 0);
    struct logread r;
    ck_assert_int_eq(logread_open_path(&r, path, ARCHIVE_ZST), 0);
    ck_assert_str_eq(logread_strerror(&r, -ENODATA), "truncated zstd stream (the file ends early)");
    logread_close(&r);
    free(c);
    free(s);
}
END_TEST

/* The live file grows; a last line without newline waits while held. */
START_TEST(growing_file_and_partial_line)
{
    put_file("one\ntw", 6, "wb");
    struct logread r;
    ck_assert_int_eq(logread_open_path(&r, path, ARCHIVE_PLAIN), 0);
    logread_set_hold(&r, true);
    struct logread_line l;
    ck_assert_int_eq(logread_next(&r, &l), 1);
    ck_assert_uint_eq(l.len, 3);
    ck_assert_int_eq(logread_next(&r, &l), 0);
    ck_assert_int_eq(logread_next(&r, &l), 0);
    put_file("o\nthr", 5, "ab");
    ck_assert_int_eq(logread_next(&r, &l), 1);
    ck_assert_uint_eq(l.len, 3);
    ck_assert(memcmp(l.p, "two", 3) == 0);
    ck_assert_uint_eq(l.off, 4);
    ck_assert_int_eq(logread_next(&r, &l), 0);
    logread_set_hold(&r, false);
    ck_assert_int_eq(logread_next(&r, &l), 1);
    ck_assert(l.partial);
    ck_assert_uint_eq(l.len, 3);
    ck_assert_uint_eq(l.off, 8);
    ck_assert_int_eq(logread_next(&r, &l), 0);
    ck_assert_uint_eq(logread_tell(&r), 11);
    logread_close(&r);
}
END_TEST

START_TEST(skip_to_offset)
{
    size_t n;
    char *s = make_lines(20000, &n);
    size_t cap = ZSTD_compressBound(n), off = n / 3;
    while (s[off - 1] != '\n')
        off++;
    char *c = malloc(cap);
    for (int form = 0; form < 3; form++) {
        if (form == ARCHIVE_PLAIN)
            put_file(s, n, "wb");
        else if (form == ARCHIVE_GZ)
            put_file(c, gz(s, n, c, cap), "wb");
        else
            put_file(c, ZSTD_compress(c, cap, s, n, 1), "wb");
        struct logread r;
        ck_assert_int_eq(logread_open_path(&r, path, (enum archive_form)form), 0);
        ck_assert_int_eq(logread_skip_to(&r, off), 0);
        struct logread_line l;
        ck_assert_int_eq(logread_next(&r, &l), 1);
        ck_assert_uint_eq(l.off, off);
        ck_assert(memcmp(l.p, s + off, l.len) == 0);
        ck_assert_int_eq(logread_skip_to(&r, 0), -EINVAL);
        ck_assert_int_eq(logread_skip_to(&r, n + 1), form == ARCHIVE_PLAIN ? 0 : -ENODATA);
        logread_close(&r);
    }
    free(c);
    free(s);
}
END_TEST

START_TEST(blocks_and_long_lines)
{
    size_t big = LOGREAD_LINE_MAX + 100;
    char *s = malloc(big + 3);
    memset(s, 'a', big);
    s[big] = '\n';
    s[big + 1] = 'b';
    s[big + 2] = '\n';
    put_file(s, big + 3, "wb");
    struct logread r;
    ck_assert_int_eq(logread_open_path(&r, path, ARCHIVE_PLAIN), 0);
    struct logread_line l;
    ck_assert_int_eq(logread_next(&r, &l), 1);
    ck_assert(l.cut);
    ck_assert_uint_eq(l.len, LOGREAD_LINE_MAX);
    ck_assert_int_eq(logread_next(&r, &l), 1);
    ck_assert_uint_eq(l.len, 100);
    ck_assert_uint_eq(l.off, LOGREAD_LINE_MAX);
    const char *p;
    size_t n;
    uint64_t off;
    ck_assert_int_eq(logread_block(&r, &p, &n, &off), 1);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(off, big + 1);
    ck_assert_int_eq(logread_block(&r, &p, &n, &off), 0);
    logread_close(&r);
    free(s);
    size_t total;
    s = make_lines(30000, &total);
    put_file(s, total, "wb");
    ck_assert_int_eq(logread_open_path(&r, path, ARCHIVE_PLAIN), 0);
    size_t seen = 0;
    while (logread_block(&r, &p, &n, &off) > 0) {
        ck_assert_uint_eq(off, seen);
        ck_assert(p[n - 1] == '\n');
        ck_assert(memcmp(p, s + seen, n) == 0);
        seen += n;
    }
    ck_assert_uint_eq(seen, total);
    logread_close(&r);
    free(s);
}
END_TEST

START_TEST(missing_file)
{
    struct logread r;
    ck_assert_int_eq(logread_open_path(&r, "/nonexistent/x", ARCHIVE_PLAIN), -ENOENT);
    logread_close(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("logread");
    TCase *tc = tcase_create("logread");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, plain_gzip_zstd_whole);
    tcase_add_test(tc, cut_and_corrupt);
    tcase_add_test(tc, growing_file_and_partial_line);
    tcase_add_test(tc, skip_to_offset);
    tcase_add_test(tc, blocks_and_long_lines);
    tcase_add_test(tc, missing_file);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
