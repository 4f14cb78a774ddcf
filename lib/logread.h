/*
 * logread: whole lines out of one log file, plain, gzip or zstd, each with
 * its offset in the uncompressed bytes.
 *
 * A reader owns the descriptor it is given and a buffer (1 MiB, growing up
 * to LOGREAD_LINE_MAX for a long line).  It decompresses on the fly, reads
 * concatenated gzip members as one stream, and tells a complete file from
 * a cut one: a gzip or zstd stream that ends early is -ENODATA, corrupt
 * data -EBADMSG.  The lines given before such an error are good; the bytes
 * after the last newline before it are dropped.
 *
 * A plain file may grow while it is read (the live file): at its end
 * logread_next() returns 0, and a later call reads what was appended.  A
 * last line without its newline is held back while the caller says the
 * file may still grow (logread_set_hold), and given, marked partial, when
 * it does not.
 *
 * One reader is used by one thread.  Pointers it hands out stay valid
 * until the next call on it.
 */
#ifndef LOGRAIL_LOGREAD_H
#define LOGRAIL_LOGREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "archive.h"

/* A line longer than this is given in pieces of this size, marked cut. */
#define LOGREAD_LINE_MAX (8u << 20)

struct logread_line {
    const char *p; /* the bytes, without the '\n' */
    size_t len;
    uint64_t off;  /* offset of p[0] in the uncompressed file */
    bool partial;  /* the file ended without a '\n' after it */
    bool cut;      /* longer than LOGREAD_LINE_MAX: a piece */
};

struct logread {
    int fd;
    enum archive_form form;
    bool hold;    /* hold back a last line without newline */
    bool eof;     /* compressed: the stream ended cleanly; plain: last read saw EOF */
    int err;      /* sticky negative errno */
    char *buf;
    size_t cap, start, end, scan;
    uint64_t base; /* uncompressed offset of buf[0] */
    char *in;      /* compressed input */
    size_t in_pos, in_len;
    bool in_eof;
    uint64_t in_total; /* compressed bytes consumed, for messages */
    void *z;       /* z_stream */
    void *zd;      /* ZSTD_DStream */
};

/* Start reading fd (which the reader now owns, even on failure) in the
 * given form from its current position (offset 0 for compressed forms).
 * 0 or -ENOMEM. */
int logread_open(struct logread *r, int fd, enum archive_form form);

/* Open path: the form from archive_parse() of its name is the caller's
 * business; this only opens (O_RDONLY|O_CLOEXEC) and starts. */
int logread_open_path(struct logread *r, const char *path, enum archive_form form);

/* Hold back (true) or give (false) a last line without newline. */
void logread_set_hold(struct logread *r, bool hold);

/* Go to uncompressed offset off, which must be at or after what was read:
 * a plain file seeks, a compressed one decompresses and discards.  0,
 * -ENODATA if the file is shorter, or the error of reading. */
int logread_skip_to(struct logread *r, uint64_t off);

/* The next line: 1 and *l, 0 when there is nothing more for now (end of
 * file, or a held partial line), or a negative errno (sticky). */
int logread_next(struct logread *r, struct logread_line *l);

/* Every complete line buffered (reading more when there are none): 1 and
 * [*p, *p + *n) ending in '\n' at offset *off, 0 or an error as
 * logread_next().  A caller that scans whole blocks (grep) avoids one call
 * per line; it may mix the two calls. */
int logread_block(struct logread *r, const char **p, size_t *n, uint64_t *off);

/* Uncompressed offset of the next byte logread_next() would give. */
uint64_t logread_tell(const struct logread *r);

/* Compressed bytes consumed so far (plain: same as logread_tell). */
uint64_t logread_in_offset(const struct logread *r);

/* A person's words for the errors above ("truncated gzip stream"), else
 * strerror. */
const char *logread_strerror(const struct logread *r, int err);

/* Close the descriptor and free the buffers. */
void logread_close(struct logread *r);

#endif
