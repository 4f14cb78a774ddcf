/*
 * libFuzzer target for lib/spool.c's recovery.
 *
 * The input is written as the only segment of a fresh spool (and its first
 * byte, when odd, also as a damaged cursor file); spool_open() must recover
 * it, and everything spool_read() then gives must be whole frames that are
 * exactly the prefix of whole frames of the input.  The frame parser is
 * checked on the side: spool_frames_prefix() must agree with walking
 * spool_frame() by hand.  Any difference aborts.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void write_at(const char *name, const void *p, size_t n)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || (n > 0 && write(fd, p, n) != (ssize_t)n))
        abort();
    close(fd);
}

/* Remove what a run leaves: the segment (or the one a reset made) and
 * the cursor files. */
static void clean(void)
{
    static const char *const names[] = {"00000000000000000000.seg", "cursor", "cursor.tmp"};
    char path[128];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        unlink(path);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    size_t count, off = 0, k = 0;
    int bad;
    size_t whole = spool_frames_prefix(p, size, &count, &bad);
    for (;;) {
        size_t fl, bo;
        int rc = spool_frame(p + off, size - off, &fl, &bo);
        if (rc != 1)
            break;
        if (bo == 0 || fl <= bo || off + fl > size)
            abort();
        off += fl;
        k++;
    }
    if (off != whole || k != count)
        abort();

    if (dir[0] == '\0') {
        strcpy(dir, "/tmp/fuzz_spool.XXXXXX");
        if (mkdtemp(dir) == NULL)
            abort();
    }
    clean();
    write_at("00000000000000000000.seg", data, size);
    if (size > 0 && (data[0] & 1))
        write_at("cursor", data, size < 40 ? size : 40);
    struct spool_opts o;
    spool_opts_init(&o);
    struct spool *sp;
    if (spool_open(&sp, dir, &o) != 0)
        abort();
    struct buf b = BUF_INIT;
    uint64_t start;
    size_t got = 0;
    for (;;) {
        size_t at = b.len;
        int n = spool_read(sp, &b, 64, &start);
        if (n < 0)
            abort();
        if (n == 0)
            break;
        if (spool_frames_prefix(b.p + at, b.len - at, &count, &bad) != b.len - at ||
            count != (size_t)n)
            abort();
        got += b.len - at;
    }
    /* With a damaged cursor the spool starts from the oldest byte; a valid
     * one can only skip a prefix, so what was read is a suffix of frames. */
    if (got > whole || memcmp(b.p ? b.p : "", p + whole - got, got) != 0)
        abort();
    buf_free(&b);
    spool_close(sp);
    return 0;
}
