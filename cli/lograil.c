/*
 * lograil: read lograild's files -- every archive and the live file, in the
 * order written, filtered, re-formatted, and followed through rotations.
 *
 *   lograil [OPTIONS] [FILE...]
 *
 * The parts live in lib/: logset (which files, in which order), logread
 * (lines out of plain, gzip and zstd files), logline (a line back into its
 * fields), timespec (--since and --until), and format (the daemon's own
 * formatter, for -o).  This file wires them together: the command line,
 * the selection of files and lines, the output and the follow loop.
 *
 * Following.  The reader keeps the live file open and remembers the newest
 * archive that existed when it opened it (checked twice around the open, so
 * that no rotation slips between).  Rotation renames the live file to the
 * first archive newer than that; when the name points elsewhere, the
 * reader finishes the old generation from its still-open descriptor (which
 * holds the bytes even once compression has unlinked the plain archive),
 * reads every archive newer than that one in full (generations it never
 * saw as the live file), and only then opens the new live file -- again
 * with the check around the open.  A SIGHUP reopen or a restart of the
 * daemon keeps the inode, so nothing changes for the reader.
 *
 * Exit codes: 0 done; 1 invalid configuration; 2 usage error; 3 a file
 * could not be read or was damaged (the others were still read).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "config.h"
#include "format.h"
#include "logline.h"
#include "logread.h"
#include "logset.h"
#include "record.h"
#include "timespec.h"

#ifndef LOGRAIL_VERSION
#define LOGRAIL_VERSION "0.1.0"
#endif

#define US 1000000LL
/* Records within a file are in write order, but the times they carry may
 * step back a little (two ingest threads stamp them); searches allow this
 * much. */
#define SLACK_US (1 * US)

enum exit_code { EXIT_OK = 0, EXIT_CONFIG = 1, EXIT_USAGE = 2, EXIT_READ = 3 };
enum out_kind { OUT_SHORT, OUT_RFC5424, OUT_JSON, OUT_RAW, OUT_CAT };

struct opts {
    bool follow;
    long long lines; /* -n; -1: all */
    bool has_since, has_until;
    int64_t since, until;
    int sev_lo, sev_hi; /* severities shown: sev_lo..sev_hi; 0..7 all */
    bool sev_filter;
    uint32_t facilities; /* 0: all */
    char **apps, **hosts;
    size_t n_apps, n_hosts;
    bool has_grep;
    regex_t grep;
    char *literal; /* the pattern when it has no special characters */
    int out;       /* enum out_kind */
    bool color;
    int in_format; /* --format; -1: detect */
    bool quiet;
};

struct source {
    char *path; /* live file, or a template */
    int format; /* -1: detect from the first line */
    bool is_template;
};

/* What reading one file needs besides the options. */
struct reader {
    const char *name;
    int format;
    struct logline_parser parser;
    int64_t last_time; /* order time of the last line that had one */
    bool has_last;
    uint64_t garbage, garbage_off;
};

static struct opts O;
static int g_status = EXIT_OK;
static struct format_ctx g_fmt;
static struct record *g_rec;
static size_t g_rec_cap;
static struct buf g_buf;

/* ---- messages ------------------------------------------------------------ */

static void file_error(const char *name, const char *what)
{
    fprintf(stderr, "lograil: %s: %s\n", name, what);
    g_status = EXIT_READ;
}

static void reader_done(struct reader *rd)
{
    if (rd->garbage > 0) {
        char m[160];
        snprintf(m, sizeof(m),
                 "%llu line%s of binary data (not written by lograild) skipped, the first at "
                 "offset %llu",
                 (unsigned long long)rd->garbage, rd->garbage == 1 ? "" : "s",
                 (unsigned long long)rd->garbage_off);
        file_error(rd->name, m);
    }
    logline_parser_free(&rd->parser);
}

static void reader_init(struct reader *rd, const char *name, int format, int64_t ref_us)
{
    memset(rd, 0, sizeof(*rd));
    rd->name = name;
    rd->format = O.in_format >= 0 ? O.in_format : format;
    logline_parser_init(&rd->parser, ref_us);
}

/* Say once per set of files which format was assumed: the name without
 * the archive suffix names the set. */
static void say_format(const char *name, int format)
{
    static char said[PATH_MAX];
    char set[PATH_MAX];
    snprintf(set, sizeof(set), "%s", name);
    const char *b = strrchr(set, '/');
    b = b ? b + 1 : set;
    if (logset_is_archive_name(b)) {
        char *dot = strstr(set + (b - set), ".");
        /* The stamp starts at the last ".YYYY" that archive_parse accepts;
         * cutting at the stamp's dot is enough for a message. */
        for (char *p = dot; p != NULL; p = strchr(p + 1, '.'))
            if (p[1] >= '0' && p[1] <= '9' && strlen(p) >= 18 && p[9] == 'T' && p[16] == 'Z') {
                *p = '\0';
                break;
            }
    }
    if (O.quiet || strcmp(said, set) == 0)
        return;
    snprintf(said, sizeof(said), "%s", set);
    fprintf(stderr, "lograil: %s: reading as %s (detected)\n", set, format_name(format));
}

/* ---- output -------------------------------------------------------------- */

static void out_flush(void)
{
    if (fflush(stdout) != 0 && errno == EPIPE)
        exit(EXIT_OK);
}

static const char *color_of(int sev)
{
    switch (sev) {
    case 0: case 1: case 2: return "\033[1;31m";
    case 3: return "\033[31m";
    case 4: return "\033[33m";
    case 5: return "\033[1m";
    case 7: return "\033[2m";
    default: return NULL;
    }
}

static void put(const char *p, size_t n)
{
    if (fwrite(p, 1, n, stdout) != n && errno == EPIPE)
        exit(EXIT_OK);
}

/* Write one line (text without its '\n') in colour when asked. */
static void put_line(const char *p, size_t n, int sev)
{
    const char *c = O.color ? color_of(sev) : NULL;
    if (c != NULL)
        put(c, strlen(c));
    put(p, n);
    if (c != NULL)
        put("\033[0m", 4);
    put("\n", 1);
}

/* The message alone, with the bytes that would break the line escaped as
 * the daemon's raw format does. */
static void put_cat(const struct logline *l)
{
    g_buf.len = 0;
    if (buf_reserve(&g_buf, l->msg.n * 4 + 1) != 0)
        return;
    char *o = g_buf.p;
    for (size_t i = 0; i < l->msg.n; i++) {
        unsigned char c = (unsigned char)l->msg.p[i];
        if (c == '\n' || c == '\r' || c == '\0') {
            *o++ = '#';
            *o++ = (char)('0' + (c >> 6));
            *o++ = (char)('0' + ((c >> 3) & 7));
            *o++ = (char)('0' + (c & 7));
        } else {
            *o++ = (char)c;
        }
    }
    put_line(g_buf.p, (size_t)(o - g_buf.p), l->severity);
}

static void emit(struct reader *rd, const char *line, size_t len, const struct logline *l)
{
    int sev = l != NULL ? l->severity : -1;
    /* A traditional line is already what -o short makes of it. */
    if (O.out == OUT_RAW || (O.out == OUT_SHORT && rd->format == LOGLINE_TRADITIONAL)) {
        put_line(line, len, sev);
        return;
    }
    if (O.out == OUT_CAT) {
        put_cat(l);
        return;
    }
    if (logline_to_record(l, &g_rec, &g_rec_cap) != 0)
        return;
    g_buf.len = 0;
    if (format_record(&g_fmt, g_rec, &g_buf) != 0 || g_buf.len == 0)
        return;
    put_line(g_buf.p, g_buf.len - 1, sev);
}

/* ---- selection ----------------------------------------------------------- */

static bool name_in(struct logline_text t, char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(names[i]) == t.n && memcmp(names[i], t.p, t.n) == 0)
            return true;
    return false;
}

/* Does anything but the time need the fields of a line? */
static bool needs_fields(const struct reader *rd)
{
    return O.sev_filter || O.facilities != 0 || O.n_apps > 0 || O.n_hosts > 0 || O.has_grep ||
           O.out == OUT_CAT || O.out == OUT_JSON || O.out == OUT_RFC5424 ||
           (O.out == OUT_SHORT && rd->format != LOGLINE_TRADITIONAL) || O.color;
}

enum verdict { LINE_SKIP = 0, LINE_SHOWN = 1, LINE_PAST = 2 };

/* Does the line pass the filters?  Fills *l when it had to parse (*parsed). */
static enum verdict judge(struct reader *rd, const char *line, size_t len, struct logline *l,
                          bool *parsed)
{
    *parsed = false;
    if (memchr(line, '\0', len) != NULL) {
        /* No format of the daemon's writes a NUL: this is not a record. */
        if (rd->garbage++ == 0)
            rd->garbage_off = 0;
        return LINE_SKIP;
    }
    if (rd->format < 0) {
        rd->format = logline_detect(line, len);
        say_format(rd->name, rd->format);
    }
    bool need = needs_fields(rd);
    if (need || O.has_since || O.has_until) {
        if (need || rd->format == LOGLINE_RAW) {
            if (logline_parse(&rd->parser, rd->format, line, len, l) != 0)
                logline_parse(&rd->parser, LOGLINE_RAW, line, len, l);
            *parsed = true;
        }
        if (O.has_since || O.has_until) {
            int64_t t;
            bool ok = *parsed ? logline_order_of(l, &t)
                              : logline_order_time(&rd->parser, rd->format, line, len, &t) == 0;
            if (ok) {
                rd->last_time = t;
                rd->has_last = true;
            } else if (rd->has_last) {
                t = rd->last_time; /* a line without a time goes with the one before */
            } else {
                return LINE_SKIP;
            }
            if (O.has_until && t > O.until)
                return t > O.until + SLACK_US ? LINE_PAST : LINE_SKIP;
            if (O.has_since && t < O.since)
                return LINE_SKIP;
        }
    }
    if (!need)
        return LINE_SHOWN;
    if (O.sev_filter && (l->severity < O.sev_lo || l->severity > O.sev_hi))
        return LINE_SKIP;
    if (O.facilities != 0 && (l->facility < 0 || !(O.facilities & (1u << l->facility))))
        return LINE_SKIP;
    if (O.n_apps > 0 && !name_in(l->app, O.apps, O.n_apps))
        return LINE_SKIP;
    if (O.n_hosts > 0 && !name_in(l->host, O.hosts, O.n_hosts))
        return LINE_SKIP;
    if (O.has_grep) {
        if (O.literal != NULL) {
            if (memmem(l->msg.p, l->msg.n, O.literal, strlen(O.literal)) == NULL)
                return LINE_SKIP;
        } else {
            /* regexec() wants a C string (REG_STARTEND is not honoured by
             * every interceptor, and a message has no NUL: see above). */
            static struct buf z;
            z.len = 0;
            if (buf_append(&z, l->msg.p, l->msg.n) != 0 || buf_append(&z, "", 1) != 0 ||
                regexec(&O.grep, z.p, 0, NULL, 0) != 0)
                return LINE_SKIP;
        }
    }
    return LINE_SHOWN;
}

/* Judge and show one line: LINE_PAST once past --until. */
static enum verdict take(struct reader *rd, const char *line, size_t len, uint64_t off)
{
    struct logline l;
    bool parsed;
    uint64_t before = rd->garbage;
    enum verdict v = judge(rd, line, len, &l, &parsed);
    if (rd->garbage != before && before == 0)
        rd->garbage_off = off;
    if (v == LINE_SHOWN)
        emit(rd, line, len, parsed ? &l : NULL);
    return v;
}

/* The last N shown lines, formatted, for -n. */
struct ring {
    char **v;
    size_t *len;
    size_t cap, n, head; /* head: oldest when full */
};

static void ring_push(struct ring *r, const char *p, size_t n)
{
    size_t i = r->n < r->cap ? r->n++ : r->head;
    if (r->n == r->cap && i == r->head && r->v[i] != NULL)
        r->head = (r->head + 1) % r->cap;
    free(r->v[i]);
    r->v[i] = malloc(n ? n : 1);
    if (r->v[i] == NULL) {
        r->len[i] = 0;
        return;
    }
    memcpy(r->v[i], p, n);
    r->len[i] = n;
}

static bool ring_init(struct ring *r, size_t cap)
{
    memset(r, 0, sizeof(*r));
    r->cap = cap > 0 ? cap : 1;
    r->v = calloc(r->cap, sizeof(char *));
    r->len = calloc(r->cap, sizeof(size_t));
    return r->v != NULL && r->len != NULL;
}

/* Write the ring's lines, oldest first, less the first *skip of them, and
 * free it. */
static void ring_flush(struct ring *r, long long *skip)
{
    for (size_t j = 0; j < r->n; j++) {
        size_t at = (r->head + j) % r->cap;
        if (*skip > 0)
            (*skip)--;
        else
            put(r->v[at], r->len[at]);
        free(r->v[at]);
    }
    free(r->v);
    free(r->len);
    memset(r, 0, sizeof(*r));
}

/* What the code between capture_begin() and capture_end() writes to stdout
 * goes, line by line, into a ring (the last lines of a file, for -n). */
struct capture {
    FILE *saved, *m;
    char *mem;
    size_t len;
};

static void capture_begin(struct capture *c)
{
    c->mem = NULL;
    c->len = 0;
    c->saved = stdout;
    c->m = open_memstream(&c->mem, &c->len);
    if (c->m != NULL)
        stdout = c->m;
}

static void capture_end(struct capture *c, struct ring *r)
{
    if (c->m == NULL)
        return;
    fclose(c->m);
    stdout = c->saved;
    for (char *p = c->mem, *e = c->mem + c->len; p < e;) {
        char *nl = memchr(p, '\n', (size_t)(e - p));
        if (nl == NULL)
            break;
        ring_push(r, p, (size_t)(nl - p) + 1);
        p = nl + 1;
    }
    free(c->mem);
}

/* ---- searching by time ---------------------------------------------------- */

/* The order time of the first line that starts at or after pos in a plain
 * file and carries one, and that line's start; false when none is found in
 * the window read. */
static bool probe(int fd, struct reader *rd, uint64_t pos, uint64_t size, uint64_t *start,
                  int64_t *t)
{
    static char win[65536];
    uint64_t from = pos > 0 ? pos - 1 : 0;
    ssize_t n = pread(fd, win, sizeof(win), (off_t)from);
    if (n <= 0)
        return false;
    size_t i = 0;
    if (pos > 0) {
        char *nl = memchr(win, '\n', (size_t)n);
        if (nl == NULL)
            return false;
        i = (size_t)(nl - win) + 1;
    }
    *start = from + i;
    while (i < (size_t)n && from + i < size) {
        char *nl = memchr(win + i, '\n', (size_t)n - i);
        if (nl == NULL)
            return false;
        size_t len = (size_t)(nl - win) - i;
        if (logline_order_time(&rd->parser, rd->format, win + i, len, t) == 0)
            return true;
        i += len + 1;
    }
    return false;
}

/* Where in a plain file the lines at or after `since` (less the slack)
 * start: an offset at or before the first of them. */
static uint64_t search_since(int fd, struct reader *rd, uint64_t size)
{
    uint64_t lo = 0, hi = size;
    int64_t target = O.since - SLACK_US;
    while (hi - lo > 65536) {
        uint64_t mid = lo + (hi - lo) / 2, start;
        int64_t t;
        if (probe(fd, rd, mid, hi, &start, &t) && start < hi && t < target)
            lo = start;
        else
            hi = mid;
    }
    return lo;
}

/* ---- one file ------------------------------------------------------------- */

/* Judge every line of a block of whole lines (the last may lack its '\n'). */
static bool take_block(struct reader *rd, const char *p, size_t n, uint64_t off)
{
    const char *end = p + n;
    for (const char *s = p; s < end;) {
        const char *e = memchr(s, '\n', (size_t)(end - s));
        if (e == NULL)
            e = end;
        if (take(rd, s, (size_t)(e - s), off + (uint64_t)(s - p)) == LINE_PAST)
            return false;
        s = e + 1;
    }
    return true;
}

/* Before --since: skip whole blocks whose last line is still too early, so
 * that a compressed archive costs little more than its decompression.
 * false once past --until. */
static bool skip_early_blocks(struct logread *r, struct reader *rd, int *rcp)
{
    const char *p;
    size_t n;
    uint64_t off;
    int rc;
    while ((rc = logread_block(r, &p, &n, &off)) > 0) {
        size_t body = p[n - 1] == '\n' ? n - 1 : n;
        const char *last = body > 0 ? memrchr(p, '\n', body) : NULL;
        last = last ? last + 1 : p;
        int64_t t;
        if (rd->format >= 0 && memchr(last, '\0', (size_t)(p + body - last)) == NULL &&
            logline_order_time(&rd->parser, rd->format, last, (size_t)(p + body - last), &t) == 0 &&
            t < O.since - SLACK_US) {
            rd->last_time = t;
            rd->has_last = true;
            continue;
        }
        *rcp = 0;
        return take_block(rd, p, n, off);
    }
    *rcp = rc;
    return true;
}

/* Read r to its end (for now), judging every line; false once past
 * --until. */
static bool read_lines(struct logread *r, struct reader *rd)
{
    struct logread_line ln;
    int rc = 0;
    if (O.has_since && !r->hold && logread_tell(r) == 0 && r->form != ARCHIVE_PLAIN) {
        if (!skip_early_blocks(r, rd, &rc))
            return false;
    }
    if (rc < 0) {
        /* reported below */
    } else if (O.literal != NULL) {
        /* Only lines holding the literal can match: find them in whole
         * blocks, as grep does, and judge only those. */
        size_t ll = strlen(O.literal);
        const char *p;
        size_t n;
        uint64_t off;
        while ((rc = logread_block(r, &p, &n, &off)) > 0) {
            const char *end = p + n, *s = p;
            while (s < end) {
                const char *m = memmem(s, (size_t)(end - s), O.literal, ll);
                if (m == NULL)
                    break;
                const char *b = memrchr(s, '\n', (size_t)(m - s));
                b = b ? b + 1 : s;
                const char *e = memchr(m, '\n', (size_t)(end - m));
                if (e == NULL)
                    e = end;
                if (take(rd, b, (size_t)(e - b), off + (uint64_t)(b - p)) == LINE_PAST)
                    return false;
                s = e + 1;
            }
        }
    } else {
        while ((rc = logread_next(r, &ln)) > 0) {
            if (ln.partial && !r->hold) {
                char m[200];
                snprintf(m, sizeof(m),
                         "the last line (offset %llu) has no newline: the writer stopped "
                         "in the middle of it; shown as it is",
                         (unsigned long long)ln.off);
                fprintf(stderr, "lograil: %s: %s\n", rd->name, m);
            }
            if (take(rd, ln.p, ln.len, ln.off) == LINE_PAST)
                return false;
        }
    }
    if (rc < 0) {
        char m[300];
        snprintf(m, sizeof(m), "%s, after %llu bytes (%llu decompressed); the lines before "
                 "were read",
                 logread_strerror(r, rc), (unsigned long long)logread_in_offset(r),
                 (unsigned long long)logread_tell(r));
        file_error(rd->name, m);
    }
    return true;
}

static int64_t file_ref_us(const struct logset_file *f)
{
    if (!f->live)
        return f->rotated * US + US;
    struct stat st;
    if (stat(f->path, &st) == 0)
        return (int64_t)st.st_mtim.tv_sec * US + st.st_mtim.tv_nsec / 1000;
    return (int64_t)time(NULL) * US;
}

/* Open one file of a set and position it for --since.  0 or an error
 * (reported). */
static int open_file(const struct logset_file *f, struct logread *r, struct reader *rd,
                     int format)
{
    reader_init(rd, f->path, format, file_ref_us(f));
    int rc = logread_open_path(r, f->path, f->form);
    if (rc == -ENOENT && !f->live && f->form == ARCHIVE_PLAIN) {
        /* Compressed since the listing: the copy holds the same bytes. */
        static const char *const sfx[] = {".zst", ".gz"};
        for (int i = 0; i < 2 && rc == -ENOENT; i++) {
            char alt[PATH_MAX];
            snprintf(alt, sizeof(alt), "%s%s", f->path, sfx[i]);
            rc = logread_open_path(r, alt, i == 0 ? ARCHIVE_ZST : ARCHIVE_GZ);
        }
        if (rc == 0)
            return 0; /* compressed: read from its start, no search */
    }
    if (rc != 0) {
        if (rc != -ENOENT) /* rotated away: the caller lists again */
            file_error(f->path, strerror(-rc));
        return rc;
    }
    if (O.has_since && f->form == ARCHIVE_PLAIN) {
        if (rd->format < 0) {
            char first[4096];
            ssize_t n = pread(r->fd, first, sizeof(first), 0);
            char *nl = n > 0 ? memchr(first, '\n', (size_t)n) : NULL;
            if (nl != NULL)
                rd->format = logline_detect(first, (size_t)(nl - first));
        }
        if (rd->format >= 0) {
            uint64_t at = search_since(r->fd, rd, (uint64_t)f->size);
            logread_skip_to(r, at);
            /* A line begins at 0 or after a newline; at may be mid-line. */
            if (at > 0) {
                struct logread_line ln;
                char c;
                if (pread(r->fd, &c, 1, (off_t)at - 1) == 1 && c != '\n')
                    logread_next(r, &ln);
            }
        }
    }
    return 0;
}

/* Is the whole file before --since, or after --until, by its name? */
static bool skip_by_name(const struct logset *s, size_t i)
{
    const struct logset_file *f = &s->v[i];
    if (O.has_since && !f->live && (f->rotated + 1) * US + SLACK_US <= O.since)
        return true;
    return false;
}

static bool after_until(const struct logset *s, size_t i)
{
    return O.has_until && i > 0 && !s->v[i - 1].live &&
           s->v[i - 1].rotated * US > O.until + SLACK_US;
}

/* Every selected line of one file, into the ring or out. */
static bool read_file(const struct logset_file *f, int format, struct ring *ring)
{
    struct logread r;
    struct reader rd;
    if (open_file(f, &r, &rd, format) != 0) {
        logline_parser_free(&rd.parser);
        return true;
    }
    bool more;
    if (ring != NULL) {
        struct capture c;
        capture_begin(&c);
        more = read_lines(&r, &rd);
        capture_end(&c, ring);
    } else {
        more = read_lines(&r, &rd);
    }
    reader_done(&rd);
    logread_close(&r);
    return more;
}

/* The last `want` selected lines of files [0, n) of s: the files are read
 * newest first until that many are found, then written oldest first. */
static void last_lines(const struct logset *s, size_t n, int format, long long want)
{
    struct ring *rings = calloc(n ? n : 1, sizeof(*rings));
    long long found = 0;
    for (size_t k = n; rings != NULL && k > 0 && found < want;) {
        k--;
        if (after_until(s, k) || skip_by_name(s, k))
            continue;
        if (!ring_init(&rings[k], (size_t)want))
            break;
        read_file(&s->v[k], format, &rings[k]);
        found += (long long)rings[k].n;
    }
    long long skip = found > want ? found - want : 0;
    for (size_t i = 0; rings != NULL && i < n; i++)
        ring_flush(&rings[i], &skip);
    free(rings);
}

/* All the files of one live path, oldest first (or, with -n, the last
 * lines of them).  The live file is read to its current end. */
static void read_set(const char *path, int format)
{
    struct logset s;
    const char *b = strrchr(path, '/');
    struct logset_file one;
    memset(&one, 0, sizeof(one));
    bool tmp;
    if (logset_parse_name(b ? b + 1 : path, &one.id, &one.form, &tmp) >= 0) {
        /* An archive named on its own: that file alone. */
        struct stat st;
        if (stat(path, &st) != 0) {
            file_error(path, strerror(errno));
            return;
        }
        one.path = (char *)path;
        one.rotated = logset_stamp_seconds(one.id.stamp);
        one.size = st.st_size;
        read_file(&one, format, NULL);
        return;
    }
    int rc = logset_scan(path, &s);
    if (rc != 0) {
        file_error(path, strerror(-rc));
        return;
    }
    if (s.n == 0) {
        file_error(path, "no such file, and no archives of it");
        return;
    }
    if (O.lines < 0) {
        for (size_t i = 0; i < s.n; i++) {
            if (after_until(&s, i))
                break;
            if (skip_by_name(&s, i))
                continue;
            if (!read_file(&s.v[i], format, NULL))
                break;
        }
    } else if (O.lines > 0) {
        last_lines(&s, s.n, format, O.lines);
    }
    logset_free(&s);
}

/* ---- following ------------------------------------------------------------ */

struct follower {
    char *path;
    int format;
    bool open;          /* r holds the current generation */
    struct logread r;
    struct reader rd;
    dev_t dev;
    ino_t ino;
    struct archive_id last; /* newest archive read, or that existed at the open */
    int wd;             /* inotify watch of the directory, or -1 */
};

static struct archive_id newest_after(const char *path, struct archive_id after, int *err)
{
    struct logset s;
    *err = logset_scan_after(path, after, &s);
    struct archive_id id = after;
    if (*err == 0 && s.n > 0)
        id = s.v[s.n - 1].id;
    logset_free(&s);
    return id;
}

/* Read in full every archive newer than fl->last (skipping the first when
 * it is the generation just finished through the descriptor). */
static void read_new_archives(struct follower *fl, bool skip_first)
{
    for (int tries = 0; tries < 100; tries++) {
        struct logset s;
        if (logset_scan_after(fl->path, fl->last, &s) != 0 || s.n == 0) {
            logset_free(&s);
            return;
        }
        bool again = false;
        for (size_t i = 0; i < s.n; i++) {
            if (skip_first) {
                skip_first = false;
                /* The generation just finished through the descriptor --
                 * unless it is plain and another file, which means that
                 * ours was pruned before this look. */
                if (s.v[i].form != ARCHIVE_PLAIN || (s.v[i].ino == fl->ino && s.v[i].dev == fl->dev)) {
                    fl->last = s.v[i].id;
                    continue;
                }
            }
            struct logread r;
            struct reader rd;
            int rc = open_file(&s.v[i], &r, &rd, fl->format);
            if (rc == -ENOENT) {
                /* Compressed meanwhile: the copy has the same bytes. */
                logline_parser_free(&rd.parser);
                again = true;
                break;
            }
            if (rc == 0) {
                read_lines(&r, &rd);
                reader_done(&rd);
                logread_close(&r);
                if (fl->format < 0)
                    fl->format = rd.format;
            } else {
                logline_parser_free(&rd.parser);
            }
            fl->last = s.v[i].id;
        }
        logset_free(&s);
        if (!again)
            return;
    }
}

/* Open the live file such that its generation is the first archive newer
 * than fl->last when it rotates: the newest archive is looked up before and
 * after the open, and must be fl->last both times.  1 opened, 0 the live
 * file does not exist (yet), -EAGAIN newer archives appeared (the caller
 * reads them, or counts them as history, and tries again). */
static int open_live(struct follower *fl)
{
    int err;
    if (archive_id_cmp(newest_after(fl->path, fl->last, &err), fl->last) != 0)
        return -EAGAIN;
    int fd = open(fl->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT && errno != ENOTDIR)
            file_error(fl->path, strerror(errno));
        return 0;
    }
    if (archive_id_cmp(newest_after(fl->path, fl->last, &err), fl->last) != 0) {
        close(fd); /* rotated while opening: it is read as an archive */
        return -EAGAIN;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || logread_open(&fl->r, fd, ARCHIVE_PLAIN) != 0)
        return 0;
    fl->dev = st.st_dev;
    fl->ino = st.st_ino;
    logread_set_hold(&fl->r, true);
    reader_init(&fl->rd, fl->path, fl->format, (int64_t)time(NULL) * US);
    fl->open = true;
    return 1;
}

/* Open the next live file, reading first the archives that appear in the
 * meantime.  false: it does not exist (yet). */
static bool follower_open(struct follower *fl)
{
    for (;;) {
        int rc = open_live(fl);
        if (rc != -EAGAIN)
            return rc == 1;
        read_new_archives(fl, false);
    }
}

static void follower_drain(struct follower *fl)
{
    read_lines(&fl->r, &fl->rd);
    if (fl->format < 0)
        fl->format = fl->rd.format;
}

/* Has the name moved on to another file? */
static bool rotated(struct follower *fl)
{
    struct stat st;
    if (stat(fl->path, &st) != 0)
        return true;
    return st.st_ino != fl->ino || st.st_dev != fl->dev;
}

static void follower_close(struct follower *fl)
{
    if (!fl->open)
        return;
    reader_done(&fl->rd);
    logread_close(&fl->r);
    fl->open = false;
}

static void follower_poll(struct follower *fl)
{
    if (!fl->open) {
        if (!follower_open(fl))
            return;
    }
    follower_drain(fl);
    if (!rotated(fl)) {
        struct stat st;
        if (fstat(fl->r.fd, &st) == 0 && (uint64_t)st.st_size < logread_tell(&fl->r)) {
            file_error(fl->path, "file truncated; reading it again from the start");
            logread_close(&fl->r);
            reader_done(&fl->rd);
            fl->open = false;
        }
        return;
    }
    /* The old generation is complete: rotation renamed it after its last
     * write.  Finish it, including a last line without newline. */
    logread_set_hold(&fl->r, false);
    follower_drain(fl);
    follower_close(fl);
    int err;
    bool renamed = archive_id_cmp(newest_after(fl->path, fl->last, &err), fl->last) != 0;
    read_new_archives(fl, renamed);
    follower_open(fl);
    if (fl->open)
        follower_drain(fl);
}

/* The history before following: as read_set(), but the live file is read
 * through the follower's descriptor so that following goes on from exactly
 * where the history stopped. */
static void follower_start(struct follower *fl, bool history)
{
    fl->last = (struct archive_id){-1, 0};
    if (!history) {
        /* A file that appeared after the start: everything in it is new. */
        follower_poll(fl);
        return;
    }
    /* The archives that exist now are the history, with the live file to
     * its end. */
    int err;
    fl->last = newest_after(fl->path, fl->last, &err);
    while (open_live(fl) == -EAGAIN)
        fl->last = newest_after(fl->path, fl->last, &err);
    struct logset s;
    if (logset_scan_after(fl->path, (struct archive_id){-1, 0}, &s) != 0)
        s.n = 0;
    /* Only the archives up to fl->last belong to the history. */
    size_t na = 0;
    while (na < s.n && archive_id_cmp(s.v[na].id, fl->last) <= 0)
        na++;
    long long want = O.lines;
    if (want < 0) {
        for (size_t i = 0; i < na; i++) {
            if (after_until(&s, i))
                break;
            if (!skip_by_name(&s, i))
                read_file(&s.v[i], fl->format, NULL);
        }
        if (fl->open)
            follower_drain(fl);
    } else {
        /* The live file's last lines, then older ones if it has too few. */
        struct ring live;
        ring_init(&live, (size_t)want);
        if (fl->open && want > 0) {
            struct capture c;
            capture_begin(&c);
            follower_drain(fl);
            capture_end(&c, &live);
        } else if (fl->open) {
            /* -n 0: skip the history, keeping the position. */
            struct logread_line ln;
            while (logread_next(&fl->r, &ln) > 0)
                ;
        }
        if (want > (long long)live.n)
            last_lines(&s, na, fl->format, want - (long long)live.n);
        long long none = 0;
        ring_flush(&live, &none);
    }
    logset_free(&s);
}

static struct follower *followers;
static size_t n_followers, cap_followers;
static int g_inotify = -1;

static void watch_dir_of(struct follower *fl)
{
    fl->wd = -1;
    if (g_inotify < 0)
        return;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", fl->path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    fl->wd = inotify_add_watch(g_inotify, dir,
                               IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE |
                                   IN_CLOSE_WRITE);
}

static struct follower *add_follower(const char *path, int format, bool history)
{
    for (size_t i = 0; i < n_followers; i++)
        if (strcmp(followers[i].path, path) == 0)
            return NULL;
    if (n_followers == cap_followers) {
        size_t nc = cap_followers ? cap_followers * 2 : 8;
        struct follower *v = realloc(followers, nc * sizeof(*v));
        if (v == NULL)
            return NULL;
        followers = v;
        cap_followers = nc;
    }
    struct follower *fl = &followers[n_followers++];
    memset(fl, 0, sizeof(*fl));
    fl->path = strdup(path);
    fl->format = format;
    watch_dir_of(fl);
    follower_start(fl, history);
    return fl;
}

static void add_template(const struct source *src, bool history)
{
    char **paths;
    size_t n;
    if (logset_glob(src->path, &paths, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++)
        add_follower(paths[i], src->format, history);
    logset_free_paths(paths, n);
}

static void follow(struct source *srcs, size_t n)
{
    g_inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    for (size_t i = 0; i < n; i++) {
        if (srcs[i].is_template)
            add_template(&srcs[i], true);
        else
            add_follower(srcs[i].path, srcs[i].format, true);
    }
    out_flush();
    int64_t last_glob = 0;
    for (;;) {
        struct pollfd p = {g_inotify, POLLIN, 0};
        if (g_inotify >= 0) {
            poll(&p, 1, 200);
            char ev[8192];
            while (read(g_inotify, ev, sizeof(ev)) > 0)
                ;
        } else {
            clock_sleep_ms(50);
        }
        int64_t ms = (int64_t)clock_mono_ms();
        if (ms - last_glob >= 200) {
            /* New files of a templated output: a scan, not a watch, so
             * that new directories are seen too. */
            last_glob = ms;
            for (size_t i = 0; i < n; i++)
                if (srcs[i].is_template)
                    add_template(&srcs[i], false);
        }
        for (size_t i = 0; i < n_followers; i++)
            follower_poll(&followers[i]);
        out_flush();
    }
}

/* ---- the command line ----------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: lograil [OPTIONS] [FILE...]\n"
            "\n"
            "Show the records lograild wrote: each FILE (default: every output of the\n"
            "configuration) with all its archives, oldest first, decompressed on the fly.\n"
            "\n"
            "  -f, --follow            follow the live files through every rotation\n"
            "  -n, --lines N|all       only the last N records (default with -f: 10)\n"
            "  -S, --since TIME        records at or after TIME\n"
            "  -U, --until TIME        records at or before TIME\n"
            "                          TIME: \"2026-12-01 14:02\", ISO 8601, -15m, -2h,\n"
            "                          today, yesterday, now, @EPOCH\n"
            "  -p, --priority LEVEL    at least this urgent (emerg..debug or 0..7), or a\n"
            "                          range FROM..TO (\"warning..err\")\n"
            "      --facility NAME     only these facilities (comma-separated)\n"
            "      --app NAME          only records of this app (repeatable)\n"
            "      --host NAME         only records of this host (repeatable)\n"
            "  -g, --grep REGEX        only messages matching REGEX (POSIX ERE)\n"
            "  -o, --output FORMAT     short (default), rfc5424, json, raw (the line as\n"
            "                          stored), cat (the message only)\n"
            "      --format FORMAT     read the files as traditional, rfc5424, json or raw\n"
            "                          (default: the configuration's, else detected)\n"
            "      --no-pager          do not pipe into a pager on a terminal\n"
            "      --color[=WHEN]      auto (default), always, never\n"
            "  -c, --config FILE       lograild's configuration (default " CONFIG_DEFAULT_FILE
            ")\n"
            "  -q, --quiet             do not say which format was detected\n"
            "  -h, --help              this help\n"
            "  -V, --version           print the version\n"
            "\n"
            "Exit codes: 0 success; 1 invalid configuration; 2 usage error; 3 a file\n"
            "could not be read or was damaged (the others were read).\n");
}

static int severity_of(const char *s)
{
    if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
        return s[0] - '0';
    for (int i = 0; record_severity_names[i] != NULL; i++)
        if (strcasecmp(s, record_severity_names[i]) == 0)
            return i;
    if (strcasecmp(s, "error") == 0)
        return 3;
    if (strcasecmp(s, "warn") == 0)
        return 4;
    if (strcasecmp(s, "panic") == 0)
        return 0;
    return -1;
}

static bool parse_priority(const char *s)
{
    const char *dots = strstr(s, "..");
    if (dots == NULL) {
        int v = severity_of(s);
        if (v < 0)
            return false;
        O.sev_lo = 0;
        O.sev_hi = v;
        return true;
    }
    char a[32], b[32];
    size_t al = (size_t)(dots - s);
    if (al >= sizeof(a) || strlen(dots + 2) >= sizeof(b))
        return false;
    memcpy(a, s, al);
    a[al] = '\0';
    strcpy(b, dots + 2);
    int x = al ? severity_of(a) : 0, y = b[0] ? severity_of(b) : 7;
    if (x < 0 || y < 0)
        return false;
    O.sev_lo = x < y ? x : y;
    O.sev_hi = x < y ? y : x;
    return true;
}

static bool parse_facilities(const char *s)
{
    char *copy = strdup(s), *save = NULL;
    bool ok = copy != NULL;
    for (char *t = ok ? strtok_r(copy, ",", &save) : NULL; t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        int f = -1;
        for (int i = 0; record_facility_names[i] != NULL; i++)
            if (strcasecmp(t, record_facility_names[i]) == 0)
                f = i;
        if (f < 0) {
            ok = false;
            break;
        }
        O.facilities |= 1u << f;
    }
    free(copy);
    return ok && O.facilities != 0;
}

static void push_name(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof(char *));
    if (nv == NULL)
        exit(EXIT_READ);
    *v = nv;
    (*v)[(*n)++] = (char *)s;
}

/* A pattern that is its own literal, and safe to look for in any format's
 * line before unescaping (none of the characters is ever escaped). */
static char *literal_of(const char *re)
{
    for (const char *p = re; *p; p++)
        if (strchr(".[]()*+?{}|^$\\\"#", *p) != NULL || (unsigned char)*p < 0x20 ||
            (unsigned char)*p >= 0x7f)
            return NULL;
    return *re ? strdup(re) : NULL;
}

static int out_kind_of(const char *s)
{
    static const char *const names[] = {"short", "rfc5424", "json", "raw", "cat"};
    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static pid_t start_pager(void)
{
    const char *pager = getenv("LOGRAIL_PAGER");
    if (pager == NULL)
        pager = getenv("PAGER");
    if (pager == NULL || *pager == '\0')
        pager = "less";
    if (strcmp(pager, "cat") == 0)
        return -1;
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[0], STDIN_FILENO);
        close(fds[0]);
        close(fds[1]);
        setenv("LESS", "FRSX", 0);
        execl("/bin/sh", "sh", "-c", pager, (char *)NULL);
        _exit(127);
    }
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    return pid;
}

/* The command line not yet read into O (the rest of main's state). */
struct cmdline {
    bool no_pager;
    int color; /* -1 auto, 0 never, 1 always */
    const char *conf;
};

static void opts_free(void)
{
    if (O.has_grep)
        regfree(&O.grep);
    O.has_grep = false;
    free(O.literal);
    free(O.apps);
    free(O.hosts);
    O.literal = NULL;
    O.apps = O.hosts = NULL;
}

/* Read the options into O and *c: -1 to go on, else the exit code. */
static int parse_options(int argc, char **argv, struct cmdline *c)
{
    enum { OPT_APP = 256, OPT_HOST, OPT_FACILITY, OPT_NO_PAGER, OPT_COLOR, OPT_FORMAT };
    static const struct option lopts[] = {
        {"follow", no_argument, NULL, 'f'},
        {"lines", required_argument, NULL, 'n'},
        {"since", required_argument, NULL, 'S'},
        {"until", required_argument, NULL, 'U'},
        {"priority", required_argument, NULL, 'p'},
        {"app", required_argument, NULL, OPT_APP},
        {"host", required_argument, NULL, OPT_HOST},
        {"facility", required_argument, NULL, OPT_FACILITY},
        {"grep", required_argument, NULL, 'g'},
        {"output", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"no-pager", no_argument, NULL, OPT_NO_PAGER},
        {"color", optional_argument, NULL, OPT_COLOR},
        {"colour", optional_argument, NULL, OPT_COLOR},
        {"config", required_argument, NULL, 'c'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    O.lines = -1;
    O.sev_hi = 7;
    O.in_format = -1;
    bool lines_given = false;
    c->no_pager = false;
    c->color = -1;
    c->conf = NULL;
    int64_t now = (int64_t)time(NULL) * US;
    int opt;
    while ((opt = getopt_long(argc, argv, "fn:S:U:p:g:o:c:qhV", lopts, NULL)) != -1) {
        char *end;
        switch (opt) {
        case 'f': O.follow = true; break;
        case 'n':
            lines_given = true;
            if (strcmp(optarg, "all") == 0) {
                O.lines = -1;
                break;
            }
            errno = 0;
            O.lines = strtoll(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || O.lines < 0 || end == optarg) {
                fprintf(stderr, "lograil: -n %s: not a count of lines\n", optarg);
                return EXIT_USAGE;
            }
            lines_given = true;
            break;
        case 'S':
        case 'U': {
            int64_t t;
            if (timespec_parse(optarg, now, &t) != 0) {
                fprintf(stderr,
                        "lograil: --%s %s: not a time (try \"2026-12-01 14:02\", "
                        "\"-15m\", \"yesterday\" or ISO 8601)\n",
                        opt == 'S' ? "since" : "until", optarg);
                return EXIT_USAGE;
            }
            if (opt == 'S') {
                O.has_since = true;
                O.since = t;
            } else {
                O.has_until = true;
                O.until = t;
            }
            break;
        }
        case 'p':
            if (!parse_priority(optarg)) {
                fprintf(stderr, "lograil: -p %s: not a level (emerg, alert, crit, err, "
                                "warning, notice, info, debug, 0..7) or range FROM..TO\n",
                        optarg);
                return EXIT_USAGE;
            }
            O.sev_filter = true;
            break;
        case OPT_APP: push_name(&O.apps, &O.n_apps, optarg); break;
        case OPT_HOST: push_name(&O.hosts, &O.n_hosts, optarg); break;
        case OPT_FACILITY:
            if (!parse_facilities(optarg)) {
                fprintf(stderr, "lograil: --facility %s: not a facility name (kern, user, "
                                "mail, daemon, auth, ..., local7)\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'g': {
            int rc = regcomp(&O.grep, optarg, REG_EXTENDED | REG_NOSUB);
            if (rc != 0) {
                char m[256];
                regerror(rc, &O.grep, m, sizeof(m));
                fprintf(stderr, "lograil: --grep %s: %s\n", optarg, m);
                return EXIT_USAGE;
            }
            O.has_grep = true;
            O.literal = literal_of(optarg);
            break;
        }
        case 'o':
            if ((O.out = out_kind_of(optarg)) < 0) {
                fprintf(stderr, "lograil: -o %s: not one of short, rfc5424, json, raw, cat\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_FORMAT:
            if ((O.in_format = format_parse_name(optarg)) < 0) {
                fprintf(stderr, "lograil: --format %s: not one of traditional, rfc5424, "
                                "json, raw\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_NO_PAGER: c->no_pager = true; break;
        case OPT_COLOR:
            if (optarg == NULL || strcmp(optarg, "always") == 0)
                c->color = 1;
            else if (strcmp(optarg, "never") == 0)
                c->color = 0;
            else if (strcmp(optarg, "auto") == 0)
                c->color = -1;
            else {
                fprintf(stderr, "lograil: --color=%s: not auto, always or never\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'c': c->conf = optarg; break;
        case 'q': O.quiet = true; break;
        case 'h': usage(stdout); return EXIT_OK;
        case 'V': printf("lograil %s\n", LOGRAIL_VERSION); return EXIT_OK;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (O.follow && !lines_given)
        O.lines = 10;
    if (O.follow && O.has_until) {
        fprintf(stderr, "lograil: --follow and --until do not go together\n");
        return EXIT_USAGE;
    }
    return -1;
}

int main(int argc, char **argv)
{
    struct cmdline cl;
    int rc = parse_options(argc, argv, &cl);
    if (rc >= 0) {
        opts_free();
        return rc;
    }

    struct source *srcs = calloc((size_t)(argc - optind) + 64, sizeof(*srcs));
    size_t n = 0;
    struct config cfg;
    memset(&cfg, 0, sizeof(cfg));
    if (optind < argc) {
        for (int i = optind; i < argc; i++) {
            srcs[n].path = argv[i];
            srcs[n].format = -1;
            srcs[n].is_template = false;
            n++;
        }
    } else {
        char err[1024];
        if (config_load(&cfg, cl.conf, err, sizeof(err)) != 0) {
            fprintf(stderr, "lograil: %s\n", err);
            rc = EXIT_CONFIG;
            goto out;
        }
        struct source *v = realloc(srcs, (cfg.n_outputs + 1) * sizeof(*v));
        if (v == NULL) {
            rc = EXIT_READ;
            goto out;
        }
        srcs = v;
        for (size_t i = 0; i < cfg.n_outputs; i++) {
            srcs[n].path = cfg.outputs[i].path;
            srcs[n].format = cfg.outputs[i].format;
            srcs[n].is_template = logset_is_template(cfg.outputs[i].path);
            n++;
        }
        if (n == 0) {
            fprintf(stderr, "lograil: %s has no outputs: name a FILE\n",
                    cfg.file ? cfg.file : "the built-in configuration");
            rc = EXIT_CONFIG;
            goto out;
        }
    }

    signal(SIGPIPE, SIG_IGN);
    bool tty = isatty(STDOUT_FILENO);
    O.color = cl.color == 1 || (cl.color == -1 && tty && getenv("NO_COLOR") == NULL);
    pid_t pager = -1;
    if (tty && !cl.no_pager && !O.follow)
        pager = start_pager();
    static char obuf[1 << 20];
    setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
    int kind = O.out == OUT_RFC5424 ? FORMAT_RFC5424 : O.out == OUT_JSON ? FORMAT_JSON
                                                                           : FORMAT_TRADITIONAL;
    format_ctx_init(&g_fmt, kind, FORMAT_TS_MESSAGE, "-");

    if (O.follow) {
        follow(srcs, n);
    } else {
        for (size_t i = 0; i < n; i++) {
            if (!srcs[i].is_template) {
                read_set(srcs[i].path, srcs[i].format);
                continue;
            }
            char **paths;
            size_t np;
            if (logset_glob(srcs[i].path, &paths, &np) != 0)
                continue;
            for (size_t k = 0; k < np; k++)
                read_set(paths[k], srcs[i].format);
            logset_free_paths(paths, np);
        }
    }
    out_flush();
    if (pager > 0) {
        fclose(stdout);
        close(STDOUT_FILENO);
        int st;
        while (waitpid(pager, &st, 0) < 0 && errno == EINTR)
            ;
    }
    rc = g_status;
out:
    free(g_rec);
    buf_free(&g_buf);
    opts_free();
    free(srcs);
    config_free(&cfg);
    return rc;
}
