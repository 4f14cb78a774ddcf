/*
 * syslog_parse: fill a record's fields from the message bytes it holds.
 *
 * The parser works in place and copies nothing: every text field becomes a
 * span into r->data[0..r->len), and it never reads outside that range (the
 * NUL record_new() adds is not relied upon).  It accepts:
 *
 *  - RFC 5424: "<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD [SP MSG]".  "-" is
 *    the nil value (span length 0).  TIMESTAMP is RFC 3339 with 'T', seconds
 *    fraction of 1 to 6 digits (more digits are accepted, and ignored past
 *    the sixth), and 'Z' or +hh:mm/-hh:mm; a leap second (:60) counts as
 *    the next minute's :00.  SD is kept verbatim, escapes
 *    (\" \\ \]) and all.  A UTF-8 BOM at the start of MSG is skipped.
 *
 *  - RFC 3164 and its local forms:
 *      "<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG"   (BSD, over the network)
 *      "<PRI>Mmm dd hh:mm:ss TAG[PID]: MSG"        (glibc syslog(), logger)
 *      "<PRI>TAG[PID]: MSG"                        (no timestamp)
 *    The day may be " 6", "06" or "6"; a fraction after the seconds is
 *    accepted.  An RFC 3339 timestamp in place of "Mmm dd hh:mm:ss" (what
 *    rsyslog sends with high-precision time) is accepted too.
 *
 *  - Anything else is RECORD_RAW: the whole of data is the message, with the
 *    default facility and severity of the options.
 *
 * Host or tag (RFC 3164).  A local client does not send a hostname, a
 * network relay does, and nothing in the message says which.  Like rsyslog's
 * pmrfc3164 we decide by the shape of the first word after the timestamp:
 *
 *  1. If it is a tag -- a name followed by ':' or by "[PID]" and an optional
 *     ':', then SP or the end of the message -- it is the tag: no host.
 *     This is glibc's and logger's local form: "root: hello".
 *  2. Else if it is made of [A-Za-z0-9._-] only, ends with a letter or digit
 *     and is followed by SP, it is the host; then the next word is the tag if
 *     it has a tag's shape, else there is no tag and the rest is MSG (RFC
 *     3164's own "10.0.0.99 Use the BFG!").
 *  3. Else there is neither host nor tag: the rest is MSG.
 *  Without a timestamp there is never a host; the first word is the tag if
 *  it has a tag's shape.  A local tag without ':' ("myapp hello") is thus
 *  read as host "myapp" by rule 2 -- the same guess rsyslog makes.  The
 *  SP after a tag's ':' is not part of MSG.
 *
 * Timestamps as devices send them (both kinds of input): the month in any
 * case ("AUG 10"), a blank after the PRI ("<167> Mar  7 ..."), a year
 * before the month or in place of the hour ("Mar 7 2008 19:06:53"; the
 * time then has that year), and a ':' after the time.  A blank after '='
 * in RFC 5424 STRUCTURED-DATA ("eventSource= \"App\"") is taken too.
 *
 * Network inputs (SYSLOG_PARSE_HOSTNAME).  A relay or device always sends
 * a HOSTNAME, so RFC 3164 follows rsyslog's pmrfc3164 (tests/data holds
 * real devices' lines and rsyslog's fields for them, and the Check suite
 * compares): blanks then '{' or '[' after the PRI are a message without
 * header; else the timestamp if there is one, then the host if the first
 * word has a host name's shape (rule 2 above, numbers and IPv4 addresses
 * included; also at the very end: "<14>... localhost"), then the TAG:
 * every byte up to ':' (part of it) or SP, so "--", "%PIX-7-710005:" and
 * "dhcp,info" are tags, and "NAME[PID]" gives app and procid.  A message
 * without any PRI is RFC 3164 with the default priority (RFC 3164 section
 * 4.3.3) instead of RECORD_RAW, and "<013>" is taken as 13.  What remains
 * RECORD_RAW and RECORD_F_PARSE_ERROR there is only a '<' that starts no
 * PRI and a malformed RFC 5424 header (which rsyslog also leaves
 * unparsed).
 *
 * Times.  ts_us is UTC.  RFC 5424 and RFC 3339 timestamps carry their year
 * and offset: RECORD_F_HAS_TIME | RECORD_F_TIME_HAS_YEAR, tz_min = the
 * offset they carry.  An RFC 3164 timestamp is local time without a year:
 * the year is the one that puts it closest to r->recv_us (so "Dec 31
 * 23:59:59" received on Jan 1 is last year's), and the UTC offset is that of
 * localtime_r() at r->recv_us, which also goes to tz_min; RECORD_F_HAS_TIME
 * only.  A date that does not exist (Feb 29 of no nearby leap year) leaves
 * RECORD_F_HAS_TIME clear but the header parsed.  r->recv_us must be set.
 *
 * Errors.  A '<' that does not start a valid PRI ("<" 1-3 digits ">", value
 * 0..191, no leading zero but "<0>") makes the record RECORD_RAW with the
 * default facility and severity, msg = all of data, RECORD_F_PARSE_ERROR.
 * A valid PRI followed by "1 " and a malformed RFC 5424 header keeps
 * facility and severity from the PRI, syntax RECORD_RFC5424, msg = all after
 * the PRI, no other span, and RECORD_F_PARSE_ERROR.  (RFC 3164 has no wrong
 * shape: whatever follows its PRI is at worst the message.)
 */
#ifndef LOGRAIL_SYSLOG_PARSE_H
#define LOGRAIL_SYSLOG_PARSE_H

#include <stdint.h>

#include "record.h"

/* Options.flags. */
enum syslog_parse_flags {
    /* The message comes from a network input, where a relay or device
     * always puts a HOSTNAME after the timestamp: parse RFC 3164 by
     * rsyslog's pmrfc3164 rules (see "Network inputs" above). */
    SYSLOG_PARSE_HOSTNAME = 1u << 0,
};

struct syslog_parse_opts {
    uint8_t default_facility; /* 0..23, for messages without a valid <PRI> */
    uint8_t default_severity; /* 0..7 */
    uint8_t flags;            /* enum syslog_parse_flags */
};

/* Parse r->data[0..r->len) and set r's facility, severity, syntax, the
 * time fields, every span, and the flags RECORD_F_PARSE_ERROR,
 * RECORD_F_HAS_TIME and RECORD_F_TIME_HAS_YEAR (other flags, such as
 * RECORD_F_TRUNCATED, are left as they were).  o may be NULL for user.notice
 * (1, 5), as logger(1) defaults.  Returns 0 whenever r is usable -- a
 * malformed message is still a record, flagged RECORD_F_PARSE_ERROR -- and
 * -EINVAL only for a NULL r or out-of-range options.  Any thread; the only
 * state is a per-thread cache of the local UTC offset. */
int syslog_parse(struct record *r, const struct syslog_parse_opts *o);

/* Forget the calling thread's cached UTC offset.  Call after changing TZ
 * and calling tzset(); the cache otherwise renews itself every hour. */
void syslog_parse_tz_reset(void);

#endif
