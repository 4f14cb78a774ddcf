/*
 * route: which outputs a record goes to, and which file of an output.
 *
 * A filter passes a record when every part of it that is set passes:
 * severity at least as urgent as max_severity (0 emerg .. 7 debug), the
 * facility in a set, the app name in a list, the listener in a set.  An
 * empty part passes everything, so a zeroed filter with max_severity 7
 * takes every record.
 *
 * An output's path may hold placeholders, expanded per record:
 *   %{app} %{host} %{facility} %{severity} %{uid} %{peer}
 * %{peer} is a network sender's TLS certificate subject when it showed one,
 * else its IP address (without the port).  Values come from clients (except
 * uid and peer, which the kernel or the handshake vouch for), so
 * they are sanitised into one harmless path component: bytes outside
 * [A-Za-z0-9._-] become '_', a leading '.' becomes '_' (no "..", no hidden
 * files), so does a '.' before a digit (a value must not pass for an
 * archive of another file, "app.20261126T110356Z.001", which rotation
 * would prune), an empty or absent value becomes "unknown", and a value is
 * cut at ROUTE_VALUE_MAX bytes.  Nothing a client sends can add a '/'.
 */
#ifndef LOGRAIL_ROUTE_H
#define LOGRAIL_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record.h"

#define ROUTE_VALUE_MAX 64

struct route_filter {
    int max_severity;        /* pass severity <= this; 7 passes all */
    uint32_t facilities;     /* bit f set: facility f passes; 0: all */
    const char *const *apps; /* app names that pass; n_apps 0: all */
    size_t n_apps;
    uint64_t listeners;      /* bit i set: listener i passes; 0: all */
};

/* Does r pass f?  Pure; any thread. */
bool route_match(const struct route_filter *f, const struct record *r);

/* Does path contain a placeholder? */
bool route_is_template(const char *path);

/* Does the template use %{uid}, the one value taken from the sender's
 * credentials? */
bool route_uses_uid(const char *tmpl);

/* Check a template: 0, or -EINVAL with the offending placeholder's offset
 * in *bad (unknown name, or "%{" without "}"). */
int route_check_template(const char *tmpl, size_t *bad);

/* Expand tmpl for r into out (NUL-terminated).  local_host stands in for
 * a record without a host.  Returns the length, or -ENAMETOOLONG. */
int route_expand(const char *tmpl, const struct record *r, const char *local_host, char *out,
                 size_t outlen);

#endif
