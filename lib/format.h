/*
 * format: turn one record into one line of an output file.
 *
 * The writer thread owns one struct format_ctx per output and calls
 * format_record() for every record routed to that output.  Each call appends
 * exactly one line, ending in '\n' and containing no other '\n', to the
 * output's buffer.  The context caches the text of the current minute's
 * timestamp, so that localtime_r() runs about once a minute instead of once
 * a record; it is used by one thread only and so takes no lock.
 *
 * Formats (FORMAT_* below):
 *
 * traditional -- rsyslog's RSYSLOG_TraditionalFileFormat:
 *     Nov 26 11:03:56 host app[procid]: message
 *   The time is local time with the day padded by a space ("Nov  6").  The
 *   tag is "app[procid]:", or "app:" without a procid, or "-[procid]:" with a
 *   procid but no app.  A record with neither app nor procid (a raw line, for
 *   instance) has no tag at all: "Nov 26 11:03:56 host message".  rsyslog
 *   would take the first word of such a line as its tag; we do not invent
 *   one, so that the line reads as it was sent.  An empty message leaves no
 *   trailing space.  A record cut at max_message (RECORD_F_TRUNCATED) ends
 *   with FORMAT_TRUNCATED_MARK, " [truncated]", after the message; the
 *   parse-error flag is not shown.
 *
 * rfc5424 -- RFC 5424 SYSLOG-MSG, ready to be forwarded:
 *     <PRI>1 2026-11-26T11:03:56.123456+01:00 host app procid msgid SD msg
 *   The timestamp has microseconds and the offset the message carried when
 *   it had one (RECORD_F_TIME_HAS_YEAR), else the local offset.  Absent
 *   header fields are "-".  Header fields keep only PRINTUSASCII (33..126):
 *   any other byte becomes '_', and they are cut to RFC 5424's maximum
 *   lengths (host 255, app 48, procid 128, msgid 32).  SD is the record's
 *   STRUCTURED-DATA as received, followed by lograil's own element
 *       [lograil@32473 pid="1" uid="0" gid="0" truncated="1" parse_error="1"]
 *   whose pid/uid/gid appear only with RECORD_F_HAS_CREDS and the flags only
 *   when set; the element is left out when it would be empty.  32473 is the
 *   private enterprise number that RFC 5612 reserves for documentation: an
 *   SD-ID with '@' needs one, and lograil has none of its own.  Because only
 *   lograil may vouch for a sender, an element named lograil@32473 in the
 *   received SD is renamed lograil-untrusted@32473.  The MSG part follows a
 *   space only when the message is not empty.
 *
 * json -- one JSON object per line:
 *     {"time":"…","recv_time":"…","facility":"user","severity":"notice",
 *      "host":"…","app":"…","procid":"…","msgid":"…","sd":"…","msg":"…",
 *      "pid":1,"uid":0,"gid":0,"truncated":true,"parse_error":true,
 *      "syntax":"rfc5424"}
 *   "time" follows the timestamp mode and the offset rule of rfc5424.
 *   "recv_time" is always UTC with a "Z" suffix, so that it sorts and
 *   compares as text across machines and DST changes.  "time", "recv_time",
 *   "facility", "severity", "host", "msg" and "syntax" are always present;
 *   the other fields are left out when absent (never null), pid/uid/gid
 *   without RECORD_F_HAS_CREDS and the flags when not set.  Output is always
 *   valid UTF-8: '"', '\' and control characters are escaped (\n \t \r \b \f,
 *   else \u00XX), and each maximal subpart of an invalid UTF-8 sequence
 *   becomes one U+FFFD, as Unicode recommends (chapter 3, "U+FFFD
 *   Substitution of Maximal Subparts").  DEL and valid multi-byte UTF-8
 *   pass through.
 *
 * raw -- the bytes as received (the whole of r->data), except LF, CR and NUL,
 *   which become #012, #015 and #000 so that a record never spans lines.
 *   Everything else, invalid UTF-8 included, passes through.  A record cut
 *   at max_message ends with FORMAT_TRUNCATED_MARK after its bytes, as in
 *   traditional: what was received was longer than what is written, and a
 *   reader would otherwise take the cut line for the whole of it.
 *
 * The mark in traditional and raw is text like any other, so a client can
 * write it too; json and rfc5424 carry the flag where a client cannot.
 *
 * Escaping in traditional (host, app, procid, message) and rfc5424 (SD and
 * message) follows rsyslog: the bytes 0x00-0x1f and 0x7f, TAB included,
 * and every byte of an invalid UTF-8 sequence become '#' and three octal
 * digits ("\n" is "#012").  Valid multi-byte UTF-8 passes through.  '#' itself
 * is not escaped, as in rsyslog, so the escaping is for reading, not for
 * reversing.
 *
 * Times outside the years 0001..9999 cannot be written in RFC 3339: a
 * message time outside them is replaced by the receive time, and a receive
 * time outside them is clamped to the range.
 */
#ifndef LOGRAIL_FORMAT_H
#define LOGRAIL_FORMAT_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "record.h"

enum format_kind {
    FORMAT_TRADITIONAL = 0,
    FORMAT_RFC5424 = 1,
    FORMAT_JSON = 2,
    FORMAT_RAW = 3,
};

enum format_ts {
    /* The time the message carried (RECORD_F_HAS_TIME), else receive time. */
    FORMAT_TS_MESSAGE = 0,
    /* Always the daemon's receive time, r->recv_us. */
    FORMAT_TS_RECEIVED = 1,
};

/* Appended to a cut record's line in traditional and raw (see above). */
#define FORMAT_TRUNCATED_MARK " [truncated]"

/* Longest local hostname kept (POSIX HOST_NAME_MAX is 255 on Linux). */
#define FORMAT_HOST_MAX 255

/* One cached minute (or, in the odd zone whose offset is not whole minutes,
 * one second) of timestamp text.  Private to format.c. */
struct format_tcache {
    int64_t key;   /* first UTC second covered */
    int32_t span;  /* seconds covered from key: 60, 1, or 0 when empty */
    int32_t zone;  /* fixed offset in minutes, or INT32_MIN for local time */
    int32_t sec0;  /* local second of the minute at key */
    char iso[20];  /* "YYYY-MM-DDTHH:MM:" (17 bytes) */
    char trad[16]; /* "Mmm dd HH:MM:" (13 bytes) */
    char off[8];   /* "+HH:MM" (6 bytes) */
};

/* Per-output formatting state.  Initialise with format_ctx_init(); it holds
 * no memory of its own, so there is nothing to close.  Only the thread that
 * formats (the writer) may use it. */
struct format_ctx {
    enum format_kind kind;
    enum format_ts ts;
    /* The local hostname, already escaped for this kind of output. */
    uint32_t host_len;
    char host[FORMAT_HOST_MAX * 6 + 1];
    /* Two entries for each kind of clock, so that a record's own time and
     * its receive time, when they fall in different minutes, do not evict
     * each other. */
    struct format_tcache local[2];
    struct format_tcache fixed[2];
    uint8_t local_next; /* entry the next miss replaces */
    uint8_t fixed_next;
};

/* "traditional", "rfc5424", "json" or "raw" to its enum format_kind, or
 * -EINVAL. */
int format_parse_name(const char *name);

/* The name of a format kind, or NULL when kind is not one. */
const char *format_name(int kind);

/* Does this format write the sender's pid, uid and gid (RECORD_F_HAS_CREDS)?
 * rfc5424 and json do; traditional and raw never. */
bool format_shows_creds(int kind);

/* "message" or "received" to its enum format_ts, or -EINVAL. */
int format_ts_parse_name(const char *name);

/* The name of a timestamp mode, or NULL when ts is not one. */
const char *format_ts_name(int ts);

/* Prepare ctx for one output.  hostname is written for records that carry
 * none; NULL means the machine's name (gethostname(2)), and a name longer
 * than FORMAT_HOST_MAX is cut, and an empty one is written "-".  Calls
 * tzset(), so a change of TZ in the environment is seen by contexts
 * initialised after it; a context keeps the local offsets it has cached, so
 * after such a change (SIGHUP, say) make the context anew.  0, or -EINVAL
 * for a bad kind or ts.  Any thread; ctx then belongs to the caller. */
int format_ctx_init(struct format_ctx *ctx, enum format_kind kind,
                    enum format_ts ts, const char *hostname);

/* Append one line for r to out.  0 on success; -EINVAL when an argument is
 * NULL or r is inconsistent (a span beyond r->len, facility > 23, severity >
 * 7, unknown syntax), which a bug upstream, not a client, causes; -ENOMEM when
 * out cannot grow.  On error out is unchanged.  r is only read: the caller
 * still owns it.  Only the thread that owns ctx and out. */
int format_record(struct format_ctx *ctx, const struct record *r,
                  struct buf *out);

#endif
