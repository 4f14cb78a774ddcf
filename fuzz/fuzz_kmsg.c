/*
 * libFuzzer target for lib/kmsg.c.
 *
 * The input is one read of /dev/kmsg.  Every span of the record made must
 * lie inside its data, app, sd and msg in that order without overlap, the
 * fields in range, and a record whose prefix did not parse must be the
 * whole input as a raw message; otherwise abort.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kmsg.h"
#include "record.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct record *r, const struct kmsg_info *info, size_t size)
{
    fuzz_check_spans(r);
    if (r->facility > 23 || r->severity > 7 || r->syntax != RECORD_RAW)
        abort();
    if (r->timestamp.len || r->host.len || r->procid.len || r->msgid.len)
        abort();
    if (!info->valid) {
        if (!(r->flags & RECORD_F_PARSE_ERROR) || r->app.len || r->sd.len ||
            r->len + 1 < size || r->len > size || (r->flags & RECORD_F_HAS_TIME))
            abort();
        return;
    }
    if (r->app.len != 6 || memcmp(r->data, "kernel", 6) != 0)
        abort();
    /* An SD element is one "[...]" that starts with its id. */
    if (r->sd.len > 0 && (r->sd.len < 13 || r->data[r->sd.off] != '[' ||
                          r->data[r->sd.off + r->sd.len - 1] != ']' ||
                          memcmp(r->data + r->sd.off + 1, KMSG_SD_ID, 10) != 0))
        abort();
    /* Decoding never lengthens the message. */
    if (r->msg.len > size)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t boot[] = {0, INT64_C(1795693147) * 1000000, INT64_MAX, INT64_MIN};
    if (size > (1u << 20))
        return 0;
    for (size_t i = 0; i < sizeof(boot) / sizeof(boot[0]); i++) {
        struct kmsg_info info;
        struct record *r = NULL;
        if (kmsg_parse((const char *)data, size, boot[i], &info, &r) != 0 || r == NULL)
            abort();
        check(r, &info, size);
        record_free(r);
    }
    return 0;
}
