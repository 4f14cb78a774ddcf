/*
 * kmsg: turn one record read from /dev/kmsg into a lograil record.
 *
 * Each read(2) of /dev/kmsg returns one kernel record
 * (Documentation/ABI/testing/dev-kmsg):
 *
 *     PRI,SEQ,TS_USEC,FLAGS[,MORE...];MESSAGE\n
 *      KEY=VALUE\n
 *      KEY=VALUE\n
 *
 * PRI is facility * 8 + level, and is the level alone for the kernel's own
 * records (facility 0, kern); a program that writes to /dev/kmsg gets
 * facility user unless it names another, since the kernel never lets user
 * space claim kern.  SEQ is the record's 64-bit sequence number, TS_USEC
 * the CLOCK_MONOTONIC time it was logged, FLAGS '-' (or 'c', '+' for the
 * fragments of a continued line on older kernels).  Fields after FLAGS
 * ("caller=T1") are ignored.  In MESSAGE and VALUE the kernel writes every
 * byte below ' ', from 127 up, and '\' itself as "\xHH"; they are decoded
 * here.  The lines after the first that start with a space are the
 * record's dictionary (SUBSYSTEM=, DEVICE=).
 *
 * The record made holds, in its data, "kernel" (the app, as rsyslog's
 * imklog tags kernel messages), then the dictionary as one RFC 5424
 * structured-data element, then the decoded message:
 *
 *     kernel[kmsg@32473 SUBSYSTEM="acpi" DEVICE="+acpi:PNP0A03:00"]message
 *
 * with spans app, sd (absent without a dictionary) and msg over the three
 * parts, so that rfc5424 and json show the dictionary as SD and
 * traditional shows "kernel: message".  In SD, '"', '\' and ']' in a value
 * are escaped with '\' as RFC 5424 asks, and a key byte that an SD-NAME
 * cannot hold becomes '_'.  (The raw format writes the whole of data, so
 * for a kmsg record it shows these three parts run together.)
 *
 * Time: ts_us = boot_us + TS_USEC, with RECORD_F_HAS_TIME; the record's
 * syntax is RECORD_RAW (it is not syslog on any wire).
 *
 * A record whose prefix is malformed is still a record: RECORD_RAW,
 * facility kern, severity notice, msg the whole input less a final
 * newline, RECORD_F_PARSE_ERROR, and info->valid false.
 */
#ifndef LOGRAIL_KMSG_H
#define LOGRAIL_KMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record.h"

/* The SD-ID of the dictionary element (RFC 5612's documentation number,
 * as lograil's own element uses; see lib/format.h). */
#define KMSG_SD_ID "kmsg@32473"

/* What the prefix said, beside the record. */
struct kmsg_info {
    bool valid;       /* the prefix parsed; the rest is meaningful only then */
    bool cont;        /* FLAGS was 'c' or '+': a fragment of a continued line */
    uint64_t seq;     /* SEQ */
    uint64_t ts_usec; /* TS_USEC, CLOCK_MONOTONIC microseconds */
};

/* Parse in[0..len) (one read of /dev/kmsg) into a new record made with
 * record_new(), which the caller owns; boot_us is the wall-clock time
 * (CLOCK_REALTIME, µs) at which CLOCK_MONOTONIC was zero.  recv_us and
 * listener are left 0 for the caller.  0 on success (a malformed record
 * included), -EINVAL for a NULL argument or len > 1 MiB, -ENOMEM.  Pure:
 * any thread. */
int kmsg_parse(const char *in, size_t len, int64_t boot_us, struct kmsg_info *info,
               struct record **out);

#endif
