/*
 * libFuzzer target for lib/logline.c, the reader's line parser.
 *
 * The input is one line (no '\n' is added; any byte may appear).  It is
 * parsed as each of the four formats, with the first input byte choosing
 * the reference time among an ordinary one, a New Year's Eve and the
 * extremes, in a zone with DST, from a copy with nothing after it so that
 * ASan sees any read past the line.  Every text field must lie inside the
 * line or the parser's scratch memory; facility and severity must be in
 * range; and a parsed line must turn into a record that the daemon's
 * formatter accepts.  Otherwise abort.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "format.h"
#include "logline.h"
#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("TZ", "EST5EDT,M3.2.0,M11.1.0", 1);
    return 0;
}

static void inside(struct logline_text t, const char *line, size_t n,
                   const struct logline_parser *p)
{
    if (t.n == 0)
        return;
    const char *e = t.p + t.n;
    bool in_line = t.p >= line && e <= line + n;
    bool in_scratch = p->scratch != NULL && t.p >= p->scratch && e <= p->scratch + p->scratch_cap;
    if (!in_line && !in_scratch)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t refs[] = {1795691036000000LL, 1798761599000000LL, 0,
                                   INT64_MAX / 2, -INT64_MAX / 2};
    int64_t ref = refs[size > 0 ? data[0] % 5 : 0];
    char *line = malloc(size ? size : 1);
    if (line == NULL)
        return 0;
    memcpy(line, data, size);
    struct format_ctx ctx;
    struct buf out;
    buf_init(&out);
    struct record *rec = NULL;
    size_t cap = 0;
    (void)logline_detect(line, size);
    for (int fmt = 0; fmt < 4; fmt++) {
        struct logline_parser p;
        logline_parser_init(&p, ref);
        struct logline l;
        int64_t t;
        (void)logline_order_time(&p, fmt, line, size, &t);
        if (logline_parse(&p, fmt, line, size, &l) == 0) {
            if (l.facility < -1 || l.facility > 23 || l.severity < -1 || l.severity > 7)
                abort();
            const struct logline_text *f[] = {&l.host, &l.app, &l.procid, &l.msgid, &l.sd, &l.msg};
            for (size_t i = 0; i < 6; i++)
                inside(*f[i], line, size, &p);
            if (logline_to_record(&l, &rec, &cap) == 0) {
                for (int k = 0; k < 4; k++) {
                    format_ctx_init(&ctx, (enum format_kind)k, FORMAT_TS_MESSAGE, "h");
                    out.len = 0;
                    if (format_record(&ctx, rec, &out) != 0)
                        abort();
                }
            }
        } else if (fmt == LOGLINE_RAW) {
            abort(); /* raw always parses */
        }
        logline_parser_free(&p);
    }
    free(rec);
    buf_free(&out);
    free(line);
    return 0;
}
