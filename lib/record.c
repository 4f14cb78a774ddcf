#include "record.h"

#include <stdlib.h>
#include <string.h>

const char *const record_facility_names[25] = {
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
    "uucp", "cron", "authpriv", "ftp", "ntp", "audit", "alert", "clock",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7", NULL};

const char *const record_severity_names[9] = {
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", NULL};

struct record *record_new(const void *bytes, size_t len)
{
    if (len > UINT32_MAX)
        return NULL;
    /* One block for header and bytes, plus a NUL that no span includes but
     * that lets debuggers and tests print data as a string. */
    struct record *r = malloc(sizeof(*r) + len + 1);
    if (r == NULL)
        return NULL;
    memset(r, 0, sizeof(*r));
    if (len > 0)
        memcpy(r->data, bytes, len);
    r->data[len] = '\0';
    r->len = (uint32_t)len;
    r->msg.off = 0;
    r->msg.len = (uint32_t)len;
    r->facility = 1;  /* user */
    r->severity = 5;  /* notice, as logger(1) defaults */
    return r;
}

void record_free(struct record *r)
{
    free(r);
}
