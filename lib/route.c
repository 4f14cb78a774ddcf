#include "route.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>


bool route_match(const struct route_filter *f, const struct record *r)
{
    if (r->severity > f->max_severity)
        return false;
    if (f->facilities != 0 && !(f->facilities & (UINT32_C(1) << r->facility)))
        return false;
    if (f->listeners != 0 && (r->listener >= 64 || !(f->listeners & (UINT64_C(1) << r->listener))))
        return false;
    if (f->n_apps > 0) {
        const char *app = record_at(r, r->app);
        for (size_t i = 0; i < f->n_apps; i++) {
            if (strlen(f->apps[i]) == r->app.len && memcmp(f->apps[i], app, r->app.len) == 0)
                return true;
        }
        return false;
    }
    return true;
}

enum ph { PH_APP, PH_HOST, PH_FACILITY, PH_SEVERITY, PH_UID, PH_PEER, PH_BAD };

static const char *const ph_names[] = {"app", "host", "facility", "severity", "uid", "peer"};

/* Parse "%{name}" at s; returns its kind and sets *len to its length. */
static enum ph placeholder(const char *s, size_t *len)
{
    const char *end = strchr(s + 2, '}');
    if (end == NULL)
        return PH_BAD;
    size_t n = (size_t)(end - (s + 2));
    *len = n + 3;
    for (int i = 0; i < PH_BAD; i++)
        if (strlen(ph_names[i]) == n && memcmp(ph_names[i], s + 2, n) == 0)
            return (enum ph)i;
    return PH_BAD;
}

bool route_is_template(const char *path)
{
    return strstr(path, "%{") != NULL;
}

/* The first placeholder of this kind in tmpl (PH_BAD: the first that is
 * not a known "%{name}"), or NULL. */
static const char *find_placeholder(const char *tmpl, enum ph kind)
{
    for (const char *p = tmpl; (p = strstr(p, "%{")) != NULL;) {
        size_t len = 0;
        enum ph ph = placeholder(p, &len);
        if (ph == kind)
            return p;
        p += ph == PH_BAD ? 2 : len;
    }
    return NULL;
}

bool route_uses_uid(const char *tmpl)
{
    return find_placeholder(tmpl, PH_UID) != NULL;
}

int route_check_template(const char *tmpl, size_t *bad)
{
    const char *p = find_placeholder(tmpl, PH_BAD);
    if (p == NULL)
        return 0;
    if (bad != NULL)
        *bad = (size_t)(p - tmpl);
    return -EINVAL;
}

/* Append a sanitised value: one path component that cannot climb. */
static size_t put_value(char *out, size_t room, const char *v, size_t n)
{
    if (n > ROUTE_VALUE_MAX)
        n = ROUTE_VALUE_MAX;
    if (n == 0) {
        v = "unknown";
        n = 7;
    }
    if (n > room)
        return SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        /* A '.' before a digit could make the name look like an archive of
         * another file (PATH.YYYYmmddTHHMMSSZ.NNN, lib/archive.h), which
         * pruning would then delete: no value may hold ".<digit>". */
        bool dot_ok = i > 0 && !(i + 1 < n && v[i + 1] >= '0' && v[i + 1] <= '9');
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || (c == '.' && dot_ok);
        out[i] = ok ? (char)c : '_';
    }
    return n;
}

int route_expand(const char *tmpl, const struct record *r, const char *local_host, char *out,
                 size_t outlen)
{
    if (outlen == 0)
        return -ENAMETOOLONG;
    size_t o = 0;
    for (const char *p = tmpl; *p;) {
        size_t len = 0;
        enum ph kind = p[0] == '%' && p[1] == '{' ? placeholder(p, &len) : PH_BAD;
        if (kind == PH_BAD) {
            if (o + 1 >= outlen)
                return -ENAMETOOLONG;
            out[o++] = *p++;
            continue;
        }
        char num[24];
        const char *v = NULL;
        size_t n = 0;
        switch (kind) {
        case PH_APP:
            v = record_at(r, r->app);
            n = r->app.len;
            break;
        case PH_HOST:
            if (r->host.len > 0) {
                v = record_at(r, r->host);
                n = r->host.len;
            } else {
                v = local_host;
                n = local_host ? strlen(local_host) : 0;
            }
            break;
        case PH_FACILITY:
            v = r->facility < 24 ? record_facility_names[r->facility] : NULL;
            n = v ? strlen(v) : 0;
            break;
        case PH_SEVERITY:
            v = r->severity < 8 ? record_severity_names[r->severity] : NULL;
            n = v ? strlen(v) : 0;
            break;
        case PH_UID:
            if (r->flags & RECORD_F_HAS_CREDS) {
                n = (size_t)snprintf(num, sizeof(num), "%u", (unsigned)r->uid);
                v = num;
            }
            break;
        case PH_PEER:
            /* The certificate's subject when the sender showed one, else
             * its address without the port (one file per host, not per
             * connection). */
            if (r->peer_name.len > 0) {
                v = record_at(r, r->peer_name);
                n = r->peer_name.len;
            } else if (r->peer.len > 0) {
                v = record_at(r, r->peer);
                n = r->peer.len;
                const char *colon = memrchr(v, ':', n);
                if (colon != NULL)
                    n = (size_t)(colon - v);
                if (n >= 2 && v[0] == '[' && v[n - 1] == ']') {
                    v++;
                    n -= 2;
                }
            }
            break;
        case PH_BAD:
            break;
        }
        size_t put = put_value(out + o, outlen - o - 1, v, n);
        if (put == SIZE_MAX)
            return -ENAMETOOLONG;
        o += put;
        p += len;
    }
    out[o] = '\0';
    return (int)o;
}
