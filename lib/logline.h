/*
 * logline: read back one line that lograild wrote, in any of its formats
 * (lib/format.h says what each writes), into its fields.
 *
 *   traditional  "Nov 26 11:03:56 host app[procid]: msg": local time, no
 *                year (taken from a reference time: the line is at most a
 *                day after it, see logline_parser.ref_us), whole seconds,
 *                no facility or severity (they read as unknown, -1).
 *   rfc5424      "<PRI>1 TIME HOST APP PROCID MSGID SD MSG", parsed by
 *                lib/syslog_parse.c; lograil's own SD element
 *                [lograil@32473 pid= uid= gid= truncated= parse_error=] is
 *                taken out of SD into the fields it stands for.
 *   json         one flat object; "recv_time" (always written, UTC) is the
 *                order time, "time" the shown one.
 *   raw          the message as received: parsed by syslog_parse() as the
 *                daemon did; its own time, if it has one, is both times.
 *
 * Text fields point into the line, or into the parser's scratch memory when
 * they had to be unescaped (json); they stay valid until the next call on
 * the same parser.  Escapes the daemon made in traditional and rfc5424
 * ("#012") are left as they are: they were made for reading.
 *
 * A parser is used by one thread; logline_detect() and the time helpers are
 * pure (but for TZ).
 */
#ifndef LOGRAIL_LOGLINE_H
#define LOGRAIL_LOGLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record.h"

/* The same numbers as enum format_kind (format.h). */
enum logline_format {
    LOGLINE_TRADITIONAL = 0,
    LOGLINE_RFC5424 = 1,
    LOGLINE_JSON = 2,
    LOGLINE_RAW = 3,
};

struct logline_text {
    const char *p;
    size_t n; /* 0: absent */
};

struct logline {
    int format;         /* enum logline_format the line was read as */
    bool has_time;      /* time_us is known */
    bool has_zone;      /* the line said its UTC offset (tz_min) */
    bool has_recv;      /* recv_us is known (json) */
    int16_t tz_min;
    int64_t time_us;    /* the time the line shows, UTC */
    int64_t recv_us;    /* the daemon's receive time (json only) */
    int facility;       /* 0..23, or -1: the line does not say */
    int severity;       /* 0..7, or -1 */
    int syntax;         /* enum record_syntax of the original message */
    bool has_creds;
    bool truncated, parse_error;
    int64_t pid, uid, gid;
    struct logline_text host, app, procid, msgid, sd, msg;
};

struct logline_parser {
    int64_t ref_us;      /* "now" for yearless times: see above */
    struct record *rec;  /* scratch record for syslog_parse() */
    size_t rec_cap;
    char *scratch;       /* unescaped json strings */
    size_t scratch_cap;
    int64_t hour_key;    /* cache of the last local hour converted */
    int64_t hour_start;
};

/* Start a parser; ref_us as above (the file's time: an archive's rotation,
 * a live file's modification time).  Nothing is allocated yet. */
void logline_parser_init(struct logline_parser *p, int64_t ref_us);
void logline_parser_free(struct logline_parser *p);

/* Guess the format of a line: json ('{'), rfc5424 ("<PRI>1 "),
 * traditional ("Mmm dd hh:mm:ss "), else raw. */
int logline_detect(const char *line, size_t len);

/* Parse line[0..len) (no '\n') as format into *out.  0; -EINVAL when the
 * line is not of that format (the caller may read it as raw, which always
 * succeeds); -ENOMEM. */
int logline_parse(struct logline_parser *p, int format, const char *line, size_t len,
                  struct logline *out);

/* Only the order time of a line (json: recv_time; else the shown time),
 * fast, for searching by time: 0 and *us, or -EINVAL when it has none. */
int logline_order_time(struct logline_parser *p, int format, const char *line, size_t len,
                       int64_t *us);

/* The order time of a parsed line: recv_us when known, else time_us;
 * false when it has neither. */
bool logline_order_of(const struct logline *l, int64_t *us);

/* RFC 3339 "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm)" at s: bytes used (0 when
 * it is not one), *us (UTC) and *tz_min. */
size_t logline_parse_rfc3339(const char *s, size_t n, int64_t *us, int *tz_min);

/* Build a record for format_record() (format.h) from a parsed line: unknown
 * facility and severity become user.notice, the text fields are copied.
 * *rec is a scratch block the caller keeps (NULL at first; free() it at
 * the end) and *cap its size.  0 or -ENOMEM. */
int logline_to_record(const struct logline *l, struct record **rec, size_t *cap);

#endif
