/*
 * libFuzzer target for lib/syslog_parse.c.
 *
 * The input is one message.  It is parsed at a few receive times (an
 * ordinary one, a New Year's Eve, and the extremes of int64) in a zone with
 * DST, from a record with nothing after its data so that ASan sees any read
 * past it.  Every span must lie inside the data, the non-empty ones in
 * header order without overlap, and the fields in range; otherwise abort.
 * Each input is parsed with the local rules and with the network ones.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "fuzz_util.h"
#include "syslog_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("TZ", "EST5EDT,M3.2.0,M11.1.0", 1);
    return 0;
}

static void check(const struct record *r, bool net)
{
    fuzz_check_spans(r);
    if (r->facility > 23 || r->severity > 7 || r->syntax > RECORD_RFC5424)
        abort();
    if ((r->flags & RECORD_F_TIME_HAS_YEAR) && !(r->flags & RECORD_F_HAS_TIME))
        abort();
    if ((r->flags & RECORD_F_HAS_TIME) && r->timestamp.len == 0)
        abort();
    if ((r->flags & RECORD_F_PARSE_ERROR) &&
        (r->timestamp.len || r->host.len || r->app.len || r->procid.len ||
         r->msgid.len || r->sd.len))
        abort();
    if (r->syntax == RECORD_RAW &&
        (r->msg.off != 0 || r->msg.len != r->len || r->host.len || r->app.len))
        abort();
    /* On a network input only a '<' that starts no PRI or a malformed
     * RFC 5424 header is left unparsed, and that is always flagged. */
    if (net && r->syntax == RECORD_RAW && !(r->flags & RECORD_F_PARSE_ERROR))
        abort();
    /* The message runs to the end of the data whenever there is one. */
    if (r->msg.len && r->msg.off + r->msg.len != r->len)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t recv[] = {
        1795693147LL * 1000000,     /* 2026-11-26T11:39:07Z */
        1798761599LL * 1000000 + 1, /* 2026-12-31T23:59:59Z */
        INT64_MAX,
        INT64_MIN,
    };
    struct record *r;

    if (size > UINT32_MAX)
        return 0;
    r = malloc(sizeof(*r) + size);
    if (r == NULL)
        abort();
    /* Each input once with the local rules and once with the network
     * ones (a HOSTNAME expected, rsyslog's pmrfc3164). */
    for (size_t i = 0; i < 2 * sizeof(recv) / sizeof(recv[0]); i++) {
        bool net = i >= sizeof(recv) / sizeof(recv[0]);
        struct syslog_parse_opts o = {1, 5, net ? SYSLOG_PARSE_HOSTNAME : 0};
        memset(r, 0, sizeof(*r));
        if (size > 0)
            memcpy(r->data, data, size);
        r->len = (uint32_t)size;
        r->recv_us = recv[i % (sizeof(recv) / sizeof(recv[0]))];
        if (syslog_parse(r, &o) != 0)
            abort();
        check(r, net);
    }
    free(r);
    return 0;
}
