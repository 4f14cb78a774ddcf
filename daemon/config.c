/*
 * config: the settings tables and the libconfig reader.
 *
 * Each scope (the top level, `queue`, one `listen` entry, one `outputs`
 * entry) has a table of settings.  Defaults are written as the text a user
 * would write, and go through the same parser as the file, so a default can
 * never be out of its own bounds.  Any key not in a table is refused.
 */
#include "config.h"

#include <ctype.h>
#include <grp.h>
#include <errno.h>
#include <inttypes.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format.h"
#include "record.h"
#include "rotate.h"
#include "route.h"
#include "units.h"
#include "cidr.h"

enum stype {
    T_INT,      /* integer */
    T_SIZE,     /* integer bytes, or a string with K, M or G */
    T_DURATION, /* integer seconds, or a string "500ms", "1s", "5m", "2h" */
    T_FSYNC,    /* "never", "always" or a duration */
    T_STRING,
    T_ENUM,     /* one string of `choices`, stored as its index */
    T_MODE,     /* octal permission string such as "0640" */
    T_FORMAT,   /* an output format name */
    T_TSMODE,   /* "message" or "received" */
    T_STRLIST,  /* an array of strings: [ "a", "b" ] */
    T_FACLIST,  /* an array of facility names, stored as a bit mask */
    T_INTERVAL, /* "hourly", "daily", or a duration; stored in seconds */
    T_BOOL,     /* true or false, stored as an int64_t 1 or 0 */
};

struct setting {
    const char *name;
    enum stype type;
    size_t off;
    const char *def; /* NULL: no default (required, or optional string) */
    int64_t min, max;
    const char *const *choices;
    bool required;
    const char *help;
};

static const char *const listen_types[] = {"stream", "dgram", "kmsg", "tcp", "udp", "tls", "relp",
                                            NULL};
static const char *const listen_policies[] = {"block", "drop", NULL};
static const char *const compress_kinds[] = {"none", "gzip", "zstd", NULL};
static const char *const forward_protocols[] = {"tcp", "tls", "relp", NULL};
static const char *const spool_fulls[] = {"block", "drop_oldest", NULL};
static const char *const output_types[] = {"file", "wall", NULL};

#define TOP(f) offsetof(struct config, f)
#define LIS(f) offsetof(struct listen_conf, f)
#define OUT(f) offsetof(struct output_conf, f)

static const struct setting top_settings[] = {
    {"threads", T_INT, TOP(threads), "2", 1, 64, NULL, false,
     "ingest threads (libuv loops) that read from clients"},
    {"timestamp", T_TSMODE, TOP(timestamp), "message", 0, 0, NULL, false,
     "\"message\": the time a message carries (receive time if none); \"received\": always the receive time"},
    {"hostname", T_STRING, TOP(hostname), NULL, 0, 0, NULL, false,
     "host name written for local messages (default: gethostname())"},
    {"user", T_STRING, TOP(user), NULL, 0, 0, NULL, false,
     "started as root: after opening sockets and outputs, run as this user"},
    {"group", T_STRING, TOP(group), NULL, 0, 0, NULL, false,
     "with user: run as this group (default: the user's primary group)"},
    {"stop_timeout", T_DURATION, TOP(stop_timeout_ms), "10s", 0, 3600 * 1000, NULL, false,
     "on stop, how long a writer that cannot write (disk full) keeps trying before it counts "
     "the records it holds as lost"},
    {"state_dir", T_STRING, TOP(state_dir), "/var/lib/lograil", 0, 0, NULL, false,
     "directory where inputs keep their place across restarts (kmsg: the last kernel record "
     "read)"},
    {NULL, 0, 0, NULL, 0, 0, NULL, false, NULL},
};

static const struct setting control_settings[] = {
    {"path", T_STRING, TOP(control_path), "/run/lograil/control.sock", 0, 0, NULL, false,
     "control socket for lograilctl (\"\": none)"},
    {"mode", T_MODE, TOP(control_mode), "0600", 0, 07777, NULL, false,
     "permissions of the control socket"},
    {NULL, 0, 0, NULL, 0, 0, NULL, false, NULL},
};

static const struct setting metrics_settings[] = {
    {"address", T_STRING, TOP(metrics_address), NULL, 0, 0, NULL, true,
     "serve GET /metrics (Prometheus) over HTTP on \"host:port\", e.g. \"127.0.0.1:9465\""},
    {NULL, 0, 0, NULL, 0, 0, NULL, false, NULL},
};

static const struct setting queue_settings[] = {
    {"capacity", T_INT, TOP(queue_capacity), "8192", 1, 16777216, NULL, false,
     "records the channel between ingest and writer holds; clients wait when it is full"},
    {"max_bytes", T_SIZE, TOP(queue_max_bytes), "8M", 0, INT64_C(1) << 40, NULL, false,
     "memory the queued records may take (0: no bound); clients wait when it is spent"},
    {NULL, 0, 0, NULL, 0, 0, NULL, false, NULL},
};

static const struct setting listen_settings[] = {
    {"path", T_STRING, LIS(path), NULL, 0, 0, NULL, false,
     "socket file to listen on (types stream and dgram)"},
    {"address", T_STRING, LIS(address), NULL, 0, 0, NULL, false,
     "types tcp, udp, tls and relp: \"host:port\" or \"[v6]:port\" to listen on (\"0.0.0.0:514\", "
     "\"[::]:601\": every address)"},
    {"type", T_ENUM, LIS(type), "stream", 0, 0, listen_types, false,
     "\"stream\" (SOCK_STREAM, like logger -T), \"dgram\" (SOCK_DGRAM, like /dev/log), "
     "\"kmsg\" (the kernel's log: path = \"/dev/kmsg\"), \"tcp\" (RFC 6587), \"udp\" (one "
     "datagram one message), \"tls\" (RFC 5425) or \"relp\" (a RELP server that acknowledges "
     "what is written)"},
    {"allow", T_STRLIST, LIS(allow), NULL, 0, 0, NULL, false,
     "network types: peers allowed to send, as addresses or CIDR ranges, e.g. "
     "[\"10.0.0.0/8\", \"::1\"]; others are refused and counted (default: all)"},
    {"max_per_peer", T_INT, LIS(max_per_peer), "0", 0, 1 << 20, NULL, false,
     "tcp, tls and relp: connections open at once from one peer address; more are refused and "
     "counted (0: no limit)"},
    {"rcvbuf", T_SIZE, LIS(rcvbuf), "0", 0, INT64_C(1) << 31, NULL, false,
     "network types: the socket's receive buffer (SO_RCVBUF; udp: what a burst may queue) "
     "(0: the kernel's default)"},
    {"mode", T_MODE, LIS(mode), "0666", 0, 07777, NULL, false, "permissions of the socket file"},
    {"owner", T_STRING, LIS(owner), NULL, 0, 0, NULL, false, "owner of the socket file (user name)"},
    {"group", T_STRING, LIS(group), NULL, 0, 0, NULL, false, "group of the socket file"},
    {"policy", T_ENUM, LIS(policy), "block", 0, 0, listen_policies, false,
     "when the queue is full: \"block\" holds the client back, \"drop\" drops and counts"},
    {"max_message", T_SIZE, LIS(max_message), "64K", 16, 16 << 20, NULL, false,
     "longer messages are cut here and marked: \" [truncated]\" at the end in traditional and "
     "raw, truncated=\"1\" in rfc5424, \"truncated\":true in json"},
    {"max_connections", T_INT, LIS(max_connections), "4096", 0, 1 << 20, NULL, false,
     "stream: connections open at once; more are closed at once, counted and logged (0: no limit)"},
    {"idle_timeout", T_DURATION, LIS(idle_timeout_ms), "0", 0, INT64_C(86400000) * 365, NULL,
     false, "stream: close a connection silent this long (0: never)"},
    {"facility", T_ENUM, LIS(facility), "user", 0, 0, record_facility_names, false,
     "facility for lines without <PRI>"},
    {"severity", T_ENUM, LIS(severity), "notice", 0, 0, record_severity_names, false,
     "severity for lines without <PRI>"},
    {NULL, 0, 0, NULL, 0, 0, NULL, false, NULL},
};

static const struct setting listen_tls_settings[] = {
    {"cert", T_STRING, LIS(tls_cert), NULL, 0, 0, NULL, true, "PEM certificate (chain) of the server"},
    {"key", T_STRING, LIS(tls_key), NULL, 0, 0, NULL, true, "PEM private key of cert"},
    {"ca", T_STRING, LIS(tls_ca), NULL, 0, 0, NULL, false,
     "PEM file of the CA(s) client certificates must chain to (required with verify_client)"},
    {"verify_client", T_BOOL, LIS(tls_verify_client), "false", 0, 1, NULL, false,
     "refuse clients without a certificate signed by ca"},
    {"handshake_timeout", T_DURATION, LIS(tls_handshake_timeout_ms), "10s", 100,
     INT64_C(3600) * 1000, NULL, false, "close a connection whose handshake is not done by then"},
    {NULL, 0, 0, NULL, 0, 0, NULL, false, NULL},
};

static const struct setting output_settings[] = {
    {"path", T_STRING, OUT(path), NULL, 0, 0, NULL, false,
     "file the records are appended to (required unless the output has forward = { ... }; "
     "type \"wall\": the utmp file, /var/run/utmp)"},
    {"type", T_ENUM, OUT(type), "file", 0, 0, output_types, false,
     "\"file\", or \"wall\": to the terminals of the users logged in, as rsyslog's "
     ":omusrmsg:* (with filter.severity = \"emerg\")"},
    {"format", T_FORMAT, OUT(format), "traditional", 0, 0, NULL, false,
     "\"traditional\", \"rfc5424\", \"json\" or \"raw\""},
    {"fsync", T_FSYNC, OUT(fsync_ms), "1s", -1, INT64_C(86400000), NULL, false,
     "\"never\", \"always\" (after every batch) or an interval such as \"1s\""},
    {"file_mode", T_MODE, OUT(file_mode), "0640", 0, 07777, NULL, false,
     "permissions of files the daemon creates"},
    {"group", T_STRING, OUT(group), NULL, 0, 0, NULL, false,
     "group of files the daemon creates (default: the daemon's)"},
    {"max_files", T_INT, OUT(max_files), "64", 1, 4096, NULL, false,
     "for a path with %{...}: files kept open at once (least recently used closed first)"},
    {NULL, 0, 0, NULL, 0, 0, NULL, false, NULL},
};

static const struct setting filter_settings[] = {
    {"severity", T_ENUM, OUT(filter_severity), "debug", 0, 0, record_severity_names, false,
     "take records at least this urgent"},
    {"facilities", T_FACLIST, OUT(filter_facilities), NULL, 0, 0, NULL, false,
     "take only these facilities, e.g. [\"auth\", \"authpriv\"] (default: all)"},
    {"not_facilities", T_FACLIST, OUT(filter_not_facilities), NULL, 0, 0, NULL, false,
     "take every facility but these, e.g. [\"auth\", \"authpriv\"] (with facilities: those "
     "less these)"},
    {"apps", T_STRLIST, OUT(filter_apps), NULL, 0, 0, NULL, false,
     "take only these app names (RFC 5424 APP-NAME, RFC 3164 tag) (default: all)"},
    {"listeners", T_STRLIST, OUT(filter_listeners), NULL, 0, 0, NULL, false,
     "take only records that arrived on these listen paths (default: all)"},
    {NULL, 0, 0, NULL, 0, 0, NULL, false, NULL},
};

static const struct setting rotate_settings[] = {
    {"max_size", T_SIZE, OUT(rotate_max_size), "64M", 0, INT64_C(1) << 50, NULL, false,
     "rotate when the live file would pass this size (0: never by size)"},
    {"interval", T_INTERVAL, OUT(rotate_interval_s), "0", 0, INT64_C(86400) * 366, NULL, false,
     "also rotate every \"hourly\", \"daily\", \"weekly\" or duration, on the clock (0: never by time)"},
    {"keep", T_INT, OUT(rotate_keep), "10", 0, 100000, NULL, false,
     "archives kept, oldest removed first (0: keep all)"},
    {"max_total", T_SIZE, OUT(rotate_max_total), "0", 0, INT64_C(1) << 50, NULL, false,
     "bytes all archives may take, oldest removed first (0: no limit)"},
    {"compress", T_ENUM, OUT(rotate_compress), "none", 0, 0, compress_kinds, false,
     "compress archives in the background"},
    {NULL, 0, 0, NULL, 0, 0, NULL, false, NULL},
};

static const struct setting forward_settings[] = {
    {"address", T_STRING, OUT(fwd_address), NULL, 0, 0, NULL, true,
     "collector as \"host:port\" or \"[v6]:port\"; the name is resolved at every (re)connect, "
     "its addresses tried in order"},
    {"protocol", T_ENUM, OUT(fwd_protocol), "tcp", 0, 0, forward_protocols, false,
     "\"tcp\" (RFC 6587 octet counting), \"tls\" (RFC 5425) or \"relp\""},
    {"backoff_max", T_DURATION, OUT(fwd_backoff_max_ms), "30s", 100, 3600 * 1000, NULL, false,
     "longest pause between two connection attempts (exponential back-off with jitter)"},
    {NULL, 0, 0, NULL, 0, 0, NULL, false, NULL},
};

static const struct setting forward_tls_settings[] = {
    {"ca", T_STRING, OUT(fwd_tls_ca), NULL, 0, 0, NULL, false,
     "PEM file of the CA(s) the collector's certificate must chain to (required for tls; "
     "with relp, it turns TLS on)"},
    {"cert", T_STRING, OUT(fwd_tls_cert), NULL, 0, 0, NULL, false,
     "PEM client certificate, for collectors that check clients (with key)"},
    {"key", T_STRING, OUT(fwd_tls_key), NULL, 0, 0, NULL, false, "PEM key of cert"},
    {"name", T_STRING, OUT(fwd_tls_name), NULL, 0, 0, NULL, false,
     "name the collector's certificate must carry (default: the host of address)"},
    {NULL, 0, 0, NULL, 0, 0, NULL, false, NULL},
};

static const struct setting forward_spool_settings[] = {
    {"path", T_STRING, OUT(fwd_spool_path), NULL, 0, 0, NULL, true,
     "directory of the spool's segment files and cursor (one per forward output)"},
    {"max_size", T_SIZE, OUT(fwd_spool_max_size), "1G", 65536, INT64_C(1) << 50, NULL, false,
     "bytes the spool may hold while the collector is away"},
    {"full", T_ENUM, OUT(fwd_spool_full), "block", 0, 0, spool_fulls, false,
     "at max_size: \"block\" holds the writer (clients wait), \"drop_oldest\" deletes the "
     "oldest unsent segment and counts it"},
    {NULL, 0, 0, NULL, 0, 0, NULL, false, NULL},
};

static const struct setting nats_settings[] = {
    {"servers", T_STRLIST, OUT(nats_servers), NULL, 0, 0, NULL, true,
     "NATS servers as [\"nats://host:port\", ...]; the client fails over between them"},
    {"subject", T_STRING, OUT(nats_subject), NULL, 0, 0, NULL, true,
     "subject of each record; placeholders as in path, values sanitised and '.' made '_'"},
    {"stream", T_STRING, OUT(nats_stream), NULL, 0, 0, NULL, true,
     "JetStream stream that must cover subject (or be made by create = { ... })"},
    {"creds", T_STRING, OUT(nats_creds), NULL, 0, 0, NULL, false,
     "NATS credentials file (user JWT and NKey seed)"},
    {"max_pending", T_INT, OUT(nats_max_pending), "4096", 1, 65536, NULL, false,
     "publishes awaiting their PubAck at once"},
    {"ack_wait", T_DURATION, OUT(nats_ack_wait_ms), "5s", 100, 600 * 1000, NULL, false,
     "a PubAck not back by then counts as lost: resend from the cursor"},
    {"backoff_max", T_DURATION, OUT(fwd_backoff_max_ms), "30s", 100, 3600 * 1000, NULL, false,
     "longest pause between two attempts to reach the cluster or check the stream"},
    {NULL, 0, 0, NULL, 0, 0, NULL, false, NULL},
};

static const struct setting nats_create_settings[] = {
    {"replicas", T_INT, OUT(nats_create_replicas), "1", 1, 5, NULL, false,
     "replicas of the stream lograild creates when it does not exist"},
    {"max_age", T_DURATION, OUT(nats_create_max_age_ms), "0", 0, INT64_C(1) << 40, NULL, false,
     "age at which the created stream drops messages (0: never)"},
    {"duplicates", T_DURATION, OUT(nats_create_dup_window_ms), "2m", 1000, INT64_C(1) << 40, NULL,
     false, "duplicate window of the created stream (see README: exactly once)"},
    {NULL, 0, 0, NULL, 0, 0, NULL, false, NULL},
};

static const struct setting nats_tls_settings[] = {
    {"ca", T_STRING, OUT(fwd_tls_ca), NULL, 0, 0, NULL, false,
     "PEM file of the CA(s) the servers' certificates must chain to"},
    {"cert", T_STRING, OUT(fwd_tls_cert), NULL, 0, 0, NULL, false,
     "PEM client certificate (with key)"},
    {"key", T_STRING, OUT(fwd_tls_key), NULL, 0, 0, NULL, false, "PEM key of cert"},
    {NULL, 0, 0, NULL, 0, 0, NULL, false, NULL},
};

/* ---- errors ------------------------------------------------------------ */

struct ctx {
    const char *file;
    char *err;
    size_t errlen;
};

static int fail(struct ctx *cx, int line, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct ctx *cx, int line, const char *where, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (cx->file != NULL)
        snprintf(cx->err, cx->errlen, "%s:%d: %s: %s", cx->file, line, where, what);
    else
        snprintf(cx->err, cx->errlen, "built-in defaults: %s: %s", where, what);
    return -1;
}

/* ---- value parsers ----------------------------------------------------- */

static int parse_mode(const char *s, unsigned *out)
{
    if (*s == '\0' || strlen(s) > 5)
        return -1;
    unsigned v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '7')
            return -1;
        v = v * 8 + (unsigned)(*p - '0');
    }
    if (v > 07777)
        return -1;
    *out = v;
    return 0;
}

static const char *type_name(enum stype t)
{
    switch (t) {
    case T_INT: return "an integer";
    case T_SIZE: return "a size (bytes, or a string such as \"64K\", \"64M\", \"1G\")";
    case T_DURATION: return "a duration (seconds, or a string such as \"500ms\", \"1s\", \"5m\")";
    case T_FSYNC: return "\"never\", \"always\" or a duration such as \"1s\"";
    case T_STRING: return "a string";
    case T_ENUM: return "one of the listed words";
    case T_MODE: return "an octal mode string such as \"0640\"";
    case T_FORMAT: return "\"traditional\", \"rfc5424\", \"json\" or \"raw\"";
    case T_TSMODE: return "\"message\" or \"received\"";
    case T_STRLIST: return "a list of strings: [\"a\", \"b\"]";
    case T_FACLIST: return "a list of facility names: [\"auth\", \"local0\"]";
    case T_INTERVAL: return "\"hourly\", \"daily\", \"weekly\" or a duration such as \"30m\"";
    case T_BOOL: return "true or false";
    }
    return "?";
}

static void choices_text(const char *const *choices, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; choices[i] != NULL && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s\"%s\"", i ? ", " : "", choices[i]);
}

/* Store one value given as text (a default, or a string from the file). */
static int set_text(struct ctx *cx, int line, const char *where, const struct setting *st,
                    void *base, const char *s)
{
    int64_t v = 0;
    char *p = (char *)base + st->off;
    switch (st->type) {
    case T_STRING: {
        char *dup = strdup(s);
        if (dup == NULL)
            return fail(cx, line, where, "out of memory");
        free(*(char **)p);
        *(char **)p = dup;
        return 0;
    }
    case T_ENUM:
        for (int i = 0; st->choices[i] != NULL; i++) {
            if (strcmp(st->choices[i], s) == 0) {
                *(int *)p = i;
                return 0;
            }
        }
        {
            char list[512];
            choices_text(st->choices, list, sizeof(list));
            return fail(cx, line, where, "\"%s\" is not one of %s", s, list);
        }
    case T_FORMAT: {
        int f = format_parse_name(s);
        if (f < 0)
            return fail(cx, line, where, "unknown format \"%s\"; use %s", s, type_name(st->type));
        *(int *)p = f;
        return 0;
    }
    case T_TSMODE: {
        int t = format_ts_parse_name(s);
        if (t < 0)
            return fail(cx, line, where, "\"%s\" is not %s", s, type_name(st->type));
        *(int *)p = t;
        return 0;
    }
    case T_MODE:
        if (parse_mode(s, (unsigned *)p) != 0)
            return fail(cx, line, where, "\"%s\" is not %s", s, type_name(st->type));
        return 0;
    case T_SIZE:
        if (units_parse_size(s, &v) != 0)
            return fail(cx, line, where, "\"%s\" is not %s", s, type_name(st->type));
        break;
    case T_DURATION:
        if (units_parse_duration(s, &v) != 0)
            return fail(cx, line, where, "\"%s\" is not %s", s, type_name(st->type));
        break;
    case T_INTERVAL:
        if (strcmp(s, "hourly") == 0)
            v = 3600;
        else if (strcmp(s, "daily") == 0)
            v = 86400;
        else if (strcmp(s, "weekly") == 0)
            v = 7 * 86400;
        else if (units_parse_duration(s, &v) == 0)
            v /= 1000;
        else
            return fail(cx, line, where, "\"%s\" is not %s", s, type_name(st->type));
        break;
    case T_STRLIST:
    case T_FACLIST:
        return fail(cx, line, where, "must be %s", type_name(st->type));
    case T_FSYNC:
        if (strcmp(s, "never") == 0)
            v = -1;
        else if (strcmp(s, "always") == 0)
            v = 0;
        else if (units_parse_duration(s, &v) != 0 || v == 0)
            return fail(cx, line, where, "\"%s\" is not %s", s, type_name(st->type));
        break;
    case T_BOOL:
        if (strcmp(s, "true") == 0)
            v = 1;
        else if (strcmp(s, "false") == 0)
            v = 0;
        else
            return fail(cx, line, where, "\"%s\" is not %s", s, type_name(st->type));
        break;
    case T_INT: {
        char *end;
        errno = 0;
        long long ll = strtoll(s, &end, 10);
        if (end == s || *end != '\0' || errno != 0)
            return fail(cx, line, where, "\"%s\" is not %s", s, type_name(st->type));
        v = ll;
        break;
    }
    }
    if (v < st->min || v > st->max)
        return fail(cx, line, where, "%" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]", v,
                    st->min, st->max);
    *(int64_t *)p = v;
    return 0;
}

/* Store an array of strings: a strlist, or a facility mask. */
static int set_list(struct ctx *cx, const struct setting *st, void *base, config_setting_t *s,
                    const char *where)
{
    int line = (int)config_setting_source_line(s);
    if (!config_setting_is_array(s) && !config_setting_is_list(s))
        return fail(cx, line, where, "must be %s", type_name(st->type));
    int n = config_setting_length(s);
    char *p = (char *)base + st->off;
    if (st->type == T_FACLIST) {
        uint32_t mask = 0;
        for (int i = 0; i < n; i++) {
            const char *name = config_setting_get_string_elem(s, i);
            int f = -1;
            for (int k = 0; name != NULL && record_facility_names[k] != NULL; k++)
                if (strcmp(record_facility_names[k], name) == 0)
                    f = k;
            if (f < 0) {
                char list[512];
                choices_text(record_facility_names, list, sizeof(list));
                return fail(cx, line, where, "%s%s%s is not a facility; use %s",
                            name ? "\"" : "", name ? name : "an element",
                            name ? "\"" : "", list);
            }
            mask |= UINT32_C(1) << f;
        }
        *(uint32_t *)p = mask;
        return 0;
    }
    struct strlist *sl = (struct strlist *)p;
    sl->v = calloc((size_t)n + 1, sizeof(char *));
    if (sl->v == NULL)
        return fail(cx, line, where, "out of memory");
    for (int i = 0; i < n; i++) {
        const char *v = config_setting_get_string_elem(s, i);
        if (v == NULL)
            return fail(cx, line, where, "must be %s", type_name(st->type));
        if ((sl->v[i] = strdup(v)) == NULL)
            return fail(cx, line, where, "out of memory");
        sl->n = (size_t)i + 1;
    }
    return 0;
}

/* Store one value from the file. */
static int set_from_file(struct ctx *cx, const struct setting *st, void *base,
                         config_setting_t *s, const char *where)
{
    int line = (int)config_setting_source_line(s);
    int t = config_setting_type(s);
    if (st->type == T_STRLIST || st->type == T_FACLIST)
        return set_list(cx, st, base, s, where);
    if (t == CONFIG_TYPE_STRING)
        return set_text(cx, line, where, st, base, config_setting_get_string(s));
    if (t == CONFIG_TYPE_BOOL && st->type == T_BOOL) {
        *(int64_t *)((char *)base + st->off) = config_setting_get_bool(s) ? 1 : 0;
        return 0;
    }
    if ((t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) &&
        (st->type == T_INT || st->type == T_SIZE || st->type == T_DURATION ||
         st->type == T_FSYNC || st->type == T_INTERVAL)) {
        long long v = config_setting_get_int64(s);
        if (st->type == T_DURATION || st->type == T_FSYNC) {
            /* A bare number of a duration counts seconds. */
            if (v < 0 || v > INT64_MAX / 1000)
                return fail(cx, line, where, "%lld is out of range", v);
            v *= 1000;
            if (st->type == T_FSYNC && v == 0)
                return fail(cx, line, where, "0 is not an interval; use \"always\"");
        }
        if (v < st->min || v > st->max)
            return fail(cx, line, where, "%lld is out of range [%" PRId64 ", %" PRId64 "]", v,
                        st->min, st->max);
        *(int64_t *)((char *)base + st->off) = v;
        return 0;
    }
    return fail(cx, line, where, "must be %s", type_name(st->type));
}

static int apply_defaults(struct ctx *cx, const struct setting *tab, void *base)
{
    for (const struct setting *st = tab; st->name != NULL; st++) {
        if (st->def != NULL && set_text(cx, 0, st->name, st, base, st->def) != 0)
            return -1;
    }
    return 0;
}

static const struct setting *find(const struct setting *tab, const char *name)
{
    for (const struct setting *st = tab; st->name != NULL; st++)
        if (strcmp(st->name, name) == 0)
            return st;
    return NULL;
}

/* Read a group against a table.  prefix names the group in messages
 * ("listen[1]"); `skip` lists keys handled by the caller. */
static int read_group(struct ctx *cx, config_setting_t *grp, const struct setting *tab,
                      void *base, const char *prefix, const char *const *skip)
{
    if (apply_defaults(cx, tab, base) != 0)
        return -1;
    int n = config_setting_length(grp);
    for (int i = 0; i < n; i++) {
        config_setting_t *s = config_setting_get_elem(grp, (unsigned)i);
        const char *name = config_setting_name(s);
        char where[256];
        snprintf(where, sizeof(where), "%s%s%s", prefix, *prefix ? "." : "", name);
        bool skipped = false;
        for (const char *const *k = skip; k && *k; k++)
            skipped |= strcmp(*k, name) == 0;
        if (skipped)
            continue;
        const struct setting *st = find(tab, name);
        if (st == NULL)
            return fail(cx, (int)config_setting_source_line(s), where,
                        "unknown setting (see lograild --help-config)");
        if (set_from_file(cx, st, base, s, where) != 0)
            return -1;
    }
    for (const struct setting *st = tab; st->name != NULL; st++) {
        if (st->required && config_setting_get_member(grp, st->name) == NULL)
            return fail(cx, (int)config_setting_source_line(grp), prefix[0] ? prefix : st->name,
                        "missing required setting \"%s\"", st->name);
    }
    return 0;
}

/* ---- lists ------------------------------------------------------------- */

/* A sub-group of an output ("filter", "rotate"); defaults when absent. */
static int read_sub(struct ctx *cx, config_setting_t *e, const char *name,
                    const struct setting *tab, void *base, const char *where)
{
    config_setting_t *g = config_setting_get_member(e, name);
    if (g == NULL)
        return apply_defaults(cx, tab, base);
    char sub[128];
    snprintf(sub, sizeof(sub), "%s.%s", where, name);
    if (!config_setting_is_group(g))
        return fail(cx, (int)config_setting_source_line(g), sub, "must be a group: { ... }");
    return read_group(cx, g, tab, base, sub, NULL);
}

/* "host:port" or "[v6]:port" into its parts; NULL on success, else what is
 * wrong. */
static const char *split_address(const char *a, char **host, char **port)
{
    const char *h = a, *he, *p;
    if (a[0] == '[') {
        h = a + 1;
        he = strchr(h, ']');
        if (he == NULL)
            return "no \"]\" after an IPv6 address in [ ]";
        if (he[1] != ':')
            return "a port must follow: \"[v6]:port\"";
        p = he + 2;
    } else {
        he = strrchr(a, ':');
        if (he == NULL)
            return "no port: write \"host:port\"";
        if (memchr(a, ':', (size_t)(he - a)) != NULL)
            return "an IPv6 address goes in brackets: \"[::1]:514\"";
        p = he + 1;
    }
    if (he == h)
        return "no host before the port";
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (*p < '0' || *p > '9' || *end != '\0' || errno != 0 || v < 1 || v > 65535)
        return "the port must be a number from 1 to 65535";
    *host = strndup(h, (size_t)(he - h));
    *port = strdup(p);
    if (*host == NULL || *port == NULL)
        return "out of memory";
    return NULL;
}

static int check_readable(struct ctx *cx, int line, const char *where, const char *file)
{
    if (file != NULL && access(file, R_OK) != 0)
        return fail(cx, line, where, "cannot read \"%s\": %s", file, strerror(errno));
    return 0;
}

/* forward = { address; protocol; tls = {...}; spool = {...}; }, checked. */
static int read_forward(struct ctx *cx, config_setting_t *e, struct output_conf *oc,
                        const char *where)
{
    static const char *const subs[] = {"tls", "spool", NULL};
    config_setting_t *g = config_setting_get_member(e, "forward");
    if (g == NULL)
        return apply_defaults(cx, forward_settings, oc) != 0 ||
                       apply_defaults(cx, forward_tls_settings, oc) != 0 ||
                       apply_defaults(cx, forward_spool_settings, oc) != 0
                   ? -1
                   : 0;
    char fw[128];
    snprintf(fw, sizeof(fw), "%s.forward", where);
    int line = (int)config_setting_source_line(g);
    if (!config_setting_is_group(g))
        return fail(cx, line, fw, "must be a group: { address = \"host:port\"; ... }");
    if (read_group(cx, g, forward_settings, oc, fw, subs) != 0 ||
        read_sub(cx, g, "tls", forward_tls_settings, oc, fw) != 0 ||
        read_sub(cx, g, "spool", forward_spool_settings, oc, fw) != 0)
        return -1;
    char w[160];
    if (config_setting_get_member(g, "spool") == NULL) {
        snprintf(w, sizeof(w), "%s.spool", fw);
        return fail(cx, line, w, "missing: spool = { path = \"/var/spool/lograil/NAME\"; }");
    }
    if (oc->path != NULL) {
        snprintf(w, sizeof(w), "%s.path", where);
        return fail(cx, oc->line, w, "an output writes a file or forwards, not both");
    }
    snprintf(w, sizeof(w), "%s.address", fw);
    const char *bad = split_address(oc->fwd_address, &oc->fwd_host, &oc->fwd_port);
    if (bad != NULL)
        return fail(cx, line, w, "\"%s\": %s", oc->fwd_address, bad);
    snprintf(w, sizeof(w), "%s.tls", fw);
    bool tls = oc->fwd_protocol == FORWARD_TLS;
    if (tls && oc->fwd_tls_ca == NULL)
        return fail(cx, line, w, "protocol \"tls\" needs ca = \"FILE\" to verify the collector");
    if ((oc->fwd_tls_cert == NULL) != (oc->fwd_tls_key == NULL))
        return fail(cx, line, w, "cert and key go together");
    if (check_readable(cx, line, w, oc->fwd_tls_ca) != 0 ||
        check_readable(cx, line, w, oc->fwd_tls_cert) != 0 ||
        check_readable(cx, line, w, oc->fwd_tls_key) != 0)
        return -1;
    /* relp with a ca: RELP inside TLS. */
    tls |= oc->fwd_protocol == FORWARD_RELP && oc->fwd_tls_ca != NULL;
    if (tls && oc->fwd_tls_name == NULL && (oc->fwd_tls_name = strdup(oc->fwd_host)) == NULL)
        return fail(cx, line, w, "out of memory");
    /* rfc5424 unless the output says otherwise: it carries every field. */
    if (config_setting_get_member(e, "format") == NULL)
        oc->format = FORMAT_RFC5424;
    char name[1024];
    snprintf(name, sizeof(name), "%s (spool %s)", oc->fwd_address, oc->fwd_spool_path);
    if ((oc->path = strdup(name)) == NULL)
        return fail(cx, line, fw, "out of memory");
    return 0;
}

/* A NATS subject's literal part: tokens of [A-Za-z0-9_-] and placeholders
 * between dots, no empty token, no wildcard.  NULL or what is wrong. */
static const char *check_subject(const char *s)
{
    if (*s == '\0')
        return "is empty";
    size_t tok = 0;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '.') {
            if (tok == 0)
                return "has an empty token (\"..\", or '.' at an end)";
            tok = 0;
        } else if (*p == '%' && p[1] == '{') {
            const char *e = strchr(p, '}');
            if (e == NULL)
                return "has \"%{\" without \"}\"";
            p = e;
            tok++;
        } else if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || *p == '_' || *p == '-')) {
            return "may hold only letters, digits, '_', '-', '.' and placeholders";
        } else {
            tok++;
        }
    }
    return tok == 0 ? "has an empty token (\"..\", or '.' at an end)" : NULL;
}

/* nats = { servers; subject; stream; create; tls; creds; spool; }, checked. */
static int read_nats(struct ctx *cx, config_setting_t *e, struct output_conf *oc,
                     const char *where)
{
    static const char *const subs[] = {"create", "tls", "spool", NULL};
    config_setting_t *g = config_setting_get_member(e, "nats");
    if (g == NULL)
        return apply_defaults(cx, nats_settings, oc) != 0 ||
                       apply_defaults(cx, nats_create_settings, oc) != 0
                   ? -1
                   : 0;
    if (oc->fwd_address != NULL)
        return fail(cx, oc->line, where, "an output forwards or publishes to NATS, not both");
    char nw[128], w[160];
    snprintf(nw, sizeof(nw), "%s.nats", where);
    int line = (int)config_setting_source_line(g);
    if (!config_setting_is_group(g))
        return fail(cx, line, nw, "must be a group: { servers = [...]; subject; stream; ... }");
    if (read_group(cx, g, nats_settings, oc, nw, subs) != 0 ||
        read_sub(cx, g, "create", nats_create_settings, oc, nw) != 0 ||
        read_sub(cx, g, "tls", nats_tls_settings, oc, nw) != 0 ||
        read_sub(cx, g, "spool", forward_spool_settings, oc, nw) != 0)
        return -1;
    oc->nats_create = config_setting_get_member(g, "create") != NULL;
    if (config_setting_get_member(g, "spool") == NULL) {
        snprintf(w, sizeof(w), "%s.spool", nw);
        return fail(cx, line, w, "missing: spool = { path = \"/var/spool/lograil/NAME\"; }");
    }
    if (oc->path != NULL) {
        snprintf(w, sizeof(w), "%s.path", where);
        return fail(cx, oc->line, w, "an output writes a file or publishes to NATS, not both");
    }
    snprintf(w, sizeof(w), "%s.servers", nw);
    if (oc->nats_servers.n == 0)
        return fail(cx, line, w, "needs at least one \"nats://host:port\"");
    for (size_t i = 0; i < oc->nats_servers.n; i++) {
        const char *u = oc->nats_servers.v[i];
        if (strncmp(u, "nats://", 7) != 0 && strncmp(u, "tls://", 6) != 0)
            return fail(cx, line, w, "\"%s\": not a nats://host:port or tls://host:port URL", u);
    }
    snprintf(w, sizeof(w), "%s.subject", nw);
    const char *bad = check_subject(oc->nats_subject);
    size_t boff = 0;
    if (bad != NULL)
        return fail(cx, line, w, "\"%s\" %s", oc->nats_subject, bad);
    if (route_check_template(oc->nats_subject, &boff) != 0)
        return fail(cx, line, w,
                    "bad placeholder at \"%.20s\"; use %%{app}, %%{host}, %%{facility}, "
                    "%%{severity} or %%{uid}",
                    oc->nats_subject + boff);
    snprintf(w, sizeof(w), "%s.stream", nw);
    if (oc->nats_stream[0] == '\0' || strpbrk(oc->nats_stream, " \t.*>/\\") != NULL)
        return fail(cx, line, w, "\"%s\": a stream name has no spaces, '.', '*', '>' or '/'",
                    oc->nats_stream);
    snprintf(w, sizeof(w), "%s.tls", nw);
    if ((oc->fwd_tls_cert == NULL) != (oc->fwd_tls_key == NULL))
        return fail(cx, line, w, "cert and key go together");
    if (check_readable(cx, line, w, oc->fwd_tls_ca) != 0 ||
        check_readable(cx, line, w, oc->fwd_tls_cert) != 0 ||
        check_readable(cx, line, w, oc->fwd_tls_key) != 0)
        return -1;
    snprintf(w, sizeof(w), "%s.creds", nw);
    if (check_readable(cx, line, w, oc->nats_creds) != 0)
        return -1;
    /* json unless the output says otherwise: consumers parse it. */
    if (config_setting_get_member(e, "format") == NULL)
        oc->format = FORMAT_JSON;
    char name[1024];
    snprintf(name, sizeof(name), "nats %s %s (spool %s)", oc->nats_stream, oc->nats_subject,
             oc->fwd_spool_path);
    if ((oc->path = strdup(name)) == NULL)
        return fail(cx, line, nw, "out of memory");
    return 0;
}

static int read_output(struct ctx *cx, config_setting_t *e, struct output_conf *oc,
                       const char *where)
{
    static const char *const subs[] = {"filter", "rotate", "forward", "nats", NULL};
    if (read_group(cx, e, output_settings, oc, where, subs) != 0 ||
        read_sub(cx, e, "filter", filter_settings, oc, where) != 0 ||
        read_sub(cx, e, "rotate", rotate_settings, oc, where) != 0 ||
        read_forward(cx, e, oc, where) != 0 ||
        read_nats(cx, e, oc, where) != 0)
        return -1;
    if (oc->path == NULL)
        return fail(cx, oc->line, where,
                    "missing required setting \"path\" (or forward = { ... })");
    if (oc->filter_not_facilities != 0) {
        /* One mask for the writer: an excluded facility is one not taken. */
        uint32_t all = (UINT32_C(1) << 24) - 1;
        uint32_t base = oc->filter_facilities != 0 ? oc->filter_facilities : all;
        oc->filter_facilities = base & ~oc->filter_not_facilities;
        if (oc->filter_facilities == 0) {
            char w2[128];
            snprintf(w2, sizeof(w2), "%s.filter.not_facilities", where);
            return fail(cx, oc->line, w2, "leaves no facility to take; remove the output instead");
        }
    }
    size_t bad = 0;
    /* A forward or nats output's path is only its name. */
    if (oc->fwd_address == NULL && oc->nats_subject == NULL &&
        route_check_template(oc->path, &bad) != 0) {
        char w2[128];
        snprintf(w2, sizeof(w2), "%s.path", where);
        return fail(cx, oc->line, w2,
                    "bad placeholder at \"%.20s\"; use %%{app}, %%{host}, %%{facility}, "
                    "%%{severity}, %%{uid} or %%{peer}",
                    oc->path + bad);
    }
    return 0;
}

/* One listen entry: a Unix socket at path, or a network address; tls =
 * { ... } for type tls. */
static int read_listen(struct ctx *cx, config_setting_t *e, struct listen_conf *lc,
                       const char *where)
{
    static const char *const subs[] = {"tls", NULL};
    if (read_group(cx, e, listen_settings, lc, where, subs) != 0)
        return -1;
    config_setting_t *tg = config_setting_get_member(e, "tls");
    bool net = listen_type_is_network(lc->type);
    char w[128];
    if (!net) {
        if (lc->path == NULL)
            return fail(cx, lc->line, where, "missing required setting \"path\"");
        if (lc->address != NULL) {
            snprintf(w, sizeof(w), "%s.address", where);
            return fail(cx, lc->line, w, "types stream and dgram listen on a path, not an address");
        }
    } else {
        snprintf(w, sizeof(w), "%s.address", where);
        if (lc->path != NULL)
            return fail(cx, lc->line, where,
                        "types tcp, udp, tls and relp listen on an address = \"host:port\", not a path");
        if (lc->address == NULL)
            return fail(cx, lc->line, where, "missing required setting \"address\"");
        const char *bad = split_address(lc->address, &lc->host, &lc->port);
        if (bad != NULL)
            return fail(cx, lc->line, w, "\"%s\": %s", lc->address, bad);
        if ((lc->path = strdup(lc->address)) == NULL)
            return fail(cx, lc->line, w, "out of memory");
    }
    snprintf(w, sizeof(w), "%s.allow", where);
    if (!net && lc->allow.n > 0)
        return fail(cx, lc->line, w, "only for types tcp, udp, tls and relp");
    for (size_t k = 0; k < lc->allow.n; k++) {
        struct cidr c;
        if (cidr_parse(lc->allow.v[k], &c) != 0)
            return fail(cx, lc->line, w,
                        "\"%s\" is not an address or range such as \"10.0.0.0/8\" or \"::1\"",
                        lc->allow.v[k]);
    }
    snprintf(w, sizeof(w), "%s.tls", where);
    if (lc->type != LISTEN_TLS) {
        if (tg != NULL)
            return fail(cx, (int)config_setting_source_line(tg), w, "only for type \"tls\"");
        return apply_defaults(cx, listen_tls_settings, lc);
    }
    if (tg == NULL)
        return fail(cx, lc->line, w,
                    "type \"tls\" needs tls = { cert = \"FILE\"; key = \"FILE\"; }");
    if (read_sub(cx, e, "tls", listen_tls_settings, lc, where) != 0)
        return -1;
    if (lc->tls_verify_client && lc->tls_ca == NULL)
        return fail(cx, lc->line, w, "verify_client needs ca = \"FILE\"");
    if (check_readable(cx, lc->line, w, lc->tls_cert) != 0 ||
        check_readable(cx, lc->line, w, lc->tls_key) != 0 ||
        check_readable(cx, lc->line, w, lc->tls_ca) != 0)
        return -1;
    return 0;
}

static int read_list(struct ctx *cx, config_setting_t *list, const char *name,
                     const struct setting *tab, size_t elem_size, void **out, size_t *n_out,
                     size_t line_off)
{
    int line = (int)config_setting_source_line(list);
    if (!config_setting_is_list(list) && !config_setting_is_array(list))
        return fail(cx, line, name, "must be a list: ( { ... }, { ... } )");
    int n = config_setting_length(list);
    if (n == 0)
        return fail(cx, line, name, "must have at least one entry");
    char *arr = calloc((size_t)n, elem_size);
    if (arr == NULL)
        return fail(cx, line, name, "out of memory");
    *out = arr;
    *n_out = (size_t)n;
    for (int i = 0; i < n; i++) {
        config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
        char where[64];
        snprintf(where, sizeof(where), "%s[%d]", name, i);
        if (!config_setting_is_group(e))
            return fail(cx, (int)config_setting_source_line(e), where,
                        "must be a group: { path = \"...\"; ... }");
        void *base = arr + (size_t)i * elem_size;
        *(int *)((char *)base + line_off) = (int)config_setting_source_line(e);
        if (tab == output_settings) {
            if (read_output(cx, e, base, where) != 0)
                return -1;
        } else if (tab == listen_settings) {
            if (read_listen(cx, e, base, where) != 0)
                return -1;
        } else if (read_group(cx, e, tab, base, where, NULL) != 0) {
            return -1;
        }
    }
    return 0;
}

/* Two outputs sharing a spool would read each other's records. */
static int check_spools(struct ctx *cx, struct config *cfg)
{
    for (size_t i = 0; i < cfg->n_outputs; i++) {
        const struct output_conf *a = &cfg->outputs[i];
        for (size_t j = 0; a->fwd_spool_path != NULL && j < cfg->n_outputs; j++) {
            const struct output_conf *b = &cfg->outputs[j];
            if (j < i && b->fwd_spool_path != NULL && strcmp(a->fwd_spool_path, b->fwd_spool_path) == 0)
                return fail(cx, a->line, "outputs.forward.spool.path",
                            "\"%s\" is already the spool of outputs[%zu]", a->fwd_spool_path, j);
            if (b->fwd_address == NULL && strcmp(a->fwd_spool_path, b->path) == 0)
                return fail(cx, a->line, "outputs.forward.spool.path",
                            "\"%s\" is the file of outputs[%zu]", a->fwd_spool_path, j);
        }
    }
    return 0;
}

static int check_whole(struct ctx *cx, struct config *cfg)
{
    if (check_spools(cx, cfg) != 0)
        return -1;
    for (size_t i = 0; i < cfg->n_outputs; i++) {
        struct output_conf *oc = &cfg->outputs[i];
        for (size_t k = 0; k < oc->filter_listeners.n; k++) {
            size_t j = 0;
            while (j < cfg->n_listen && strcmp(cfg->listen[j].path, oc->filter_listeners.v[k]) != 0)
                j++;
            if (j == cfg->n_listen)
                return fail(cx, oc->line, "outputs.filter.listeners",
                            "\"%s\" is not the path of any listen entry",
                            oc->filter_listeners.v[k]);
            if (j >= 64)
                return fail(cx, oc->line, "outputs.filter.listeners",
                            "only the first 64 listen entries can be named in a filter");
            oc->filter_listener_mask |= UINT64_C(1) << j;
        }
    }
    for (size_t i = 0; i < cfg->n_listen; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->listen[i].path, cfg->listen[j].path) == 0)
                return fail(cx, cfg->listen[i].line, "listen.path",
                            "\"%s\" is already used by listen[%zu]", cfg->listen[i].path, j);
        }
    }
    for (size_t i = 0; i < cfg->n_outputs; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->outputs[i].path, cfg->outputs[j].path) == 0)
                return fail(cx, cfg->outputs[i].line, "outputs.path",
                            "\"%s\" is already written by outputs[%zu]", cfg->outputs[i].path, j);
        }
    }
    return 0;
}

/* The packaged defaults, used for lists the file leaves out. */
static int default_lists(struct ctx *cx, struct config *cfg, bool listen, bool outputs)
{
    if (listen) {
        cfg->listen = calloc(2, sizeof(*cfg->listen));
        if (cfg->listen == NULL)
            return fail(cx, 0, "listen", "out of memory");
        cfg->n_listen = 2;
        const char *paths[2] = {"/run/lograil/log.sock", "/run/lograil/dgram.sock"};
        for (int i = 0; i < 2; i++) {
            if (apply_defaults(cx, listen_settings, &cfg->listen[i]) != 0 ||
                set_text(cx, 0, "listen.path", find(listen_settings, "path"), &cfg->listen[i],
                         paths[i]) != 0)
                return -1;
        }
        cfg->listen[1].type = LISTEN_DGRAM;
    }
    if (outputs) {
        cfg->outputs = calloc(1, sizeof(*cfg->outputs));
        if (cfg->outputs == NULL)
            return fail(cx, 0, "outputs", "out of memory");
        cfg->n_outputs = 1;
        if (apply_defaults(cx, output_settings, cfg->outputs) != 0 ||
            apply_defaults(cx, filter_settings, cfg->outputs) != 0 ||
            apply_defaults(cx, rotate_settings, cfg->outputs) != 0 ||
            set_text(cx, 0, "outputs.path", find(output_settings, "path"), cfg->outputs,
                     "/var/log/lograil/messages.log") != 0)
            return -1;
    }
    return 0;
}

int config_defaults(struct config *cfg, char *err, size_t errlen)
{
    struct ctx cx = {NULL, err, errlen};
    memset(cfg, 0, sizeof(*cfg));
    if (apply_defaults(&cx, top_settings, cfg) != 0 ||
        apply_defaults(&cx, queue_settings, cfg) != 0 ||
        apply_defaults(&cx, control_settings, cfg) != 0 || default_lists(&cx, cfg, true, true) != 0) {
        config_free(cfg);
        return -1;
    }
    return 0;
}

int config_load(struct config *cfg, const char *file, char *err, size_t errlen)
{
    if (file == NULL) {
        if (access(CONFIG_DEFAULT_FILE, F_OK) != 0)
            return config_defaults(cfg, err, errlen);
        file = CONFIG_DEFAULT_FILE;
    }
    memset(cfg, 0, sizeof(*cfg));
    struct ctx cx = {file, err, errlen};
    config_t lc;
    config_init(&lc);
    int rc = -1;

    if (!config_read_file(&lc, file)) {
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO)
            snprintf(err, errlen, "%s: cannot read: %s", file, strerror(errno));
        else
            snprintf(err, errlen, "%s:%d: syntax error: %s", file, config_error_line(&lc),
                     config_error_text(&lc));
        goto out;
    }
    cfg->file = strdup(file);
    config_setting_t *root = config_root_setting(&lc);
    static const char *const handled[] = {"queue", "control", "listen", "outputs", "metrics", NULL};
    if (read_group(&cx, root, top_settings, cfg, "", handled) != 0)
        goto out;

    config_setting_t *q = config_setting_get_member(root, "queue");
    if (q != NULL) {
        if (!config_setting_is_group(q)) {
            fail(&cx, (int)config_setting_source_line(q), "queue", "must be a group: { capacity = N; }");
            goto out;
        }
        if (read_group(&cx, q, queue_settings, cfg, "queue", NULL) != 0)
            goto out;
    } else if (apply_defaults(&cx, queue_settings, cfg) != 0) {
        goto out;
    }

    config_setting_t *ctl = config_setting_get_member(root, "control");
    if (ctl != NULL) {
        if (!config_setting_is_group(ctl)) {
            fail(&cx, (int)config_setting_source_line(ctl), "control",
                 "must be a group: { path = \"...\"; }");
            goto out;
        }
        if (read_group(&cx, ctl, control_settings, cfg, "control", NULL) != 0)
            goto out;
    } else if (apply_defaults(&cx, control_settings, cfg) != 0) {
        goto out;
    }

    config_setting_t *mt = config_setting_get_member(root, "metrics");
    if (mt != NULL) {
        int line = (int)config_setting_source_line(mt);
        if (!config_setting_is_group(mt)) {
            fail(&cx, line, "metrics", "must be a group: { address = \"127.0.0.1:9465\"; }");
            goto out;
        }
        if (read_group(&cx, mt, metrics_settings, cfg, "metrics", NULL) != 0)
            goto out;
        const char *bad = split_address(cfg->metrics_address, &cfg->metrics_host, &cfg->metrics_port);
        if (bad != NULL) {
            fail(&cx, line, "metrics.address", "\"%s\": %s", cfg->metrics_address, bad);
            goto out;
        }
    }

    config_setting_t *l = config_setting_get_member(root, "listen");
    config_setting_t *o = config_setting_get_member(root, "outputs");
    if (l != NULL && read_list(&cx, l, "listen", listen_settings, sizeof(struct listen_conf),
                               (void **)&cfg->listen, &cfg->n_listen,
                               offsetof(struct listen_conf, line)) != 0)
        goto out;
    if (o != NULL && read_list(&cx, o, "outputs", output_settings, sizeof(struct output_conf),
                               (void **)&cfg->outputs, &cfg->n_outputs,
                               offsetof(struct output_conf, line)) != 0)
        goto out;
    if (default_lists(&cx, cfg, l == NULL, o == NULL) != 0 || check_whole(&cx, cfg) != 0)
        goto out;
    rc = 0;
out:
    config_destroy(&lc);
    if (rc != 0)
        config_free(cfg);
    return rc;
}

bool config_wants_creds(const struct config *cfg)
{
    for (size_t i = 0; i < cfg->n_outputs; i++) {
        const struct output_conf *oc = &cfg->outputs[i];
        if (format_shows_creds(oc->format) || route_uses_uid(oc->path))
            return true;
    }
    return false;
}

void config_free(struct config *cfg)
{
    for (size_t i = 0; i < cfg->n_listen; i++) {
        free(cfg->listen[i].path);
        free(cfg->listen[i].owner);
        free(cfg->listen[i].group);
        struct listen_conf *lc = &cfg->listen[i];
        char *net[] = {lc->address, lc->host, lc->port, lc->tls_cert, lc->tls_key, lc->tls_ca};
        for (size_t k = 0; k < sizeof(net) / sizeof(net[0]); k++)
            free(net[k]);
        for (size_t j = 0; j < lc->allow.n; j++)
            free(lc->allow.v[j]);
        free(lc->allow.v);
    }
    for (size_t i = 0; i < cfg->n_outputs; i++) {
        struct output_conf *oc = &cfg->outputs[i];
        free(oc->path);
        free(oc->group);
        char *fwd[] = {oc->fwd_address, oc->fwd_host, oc->fwd_port, oc->fwd_tls_ca,
                       oc->fwd_tls_cert, oc->fwd_tls_key, oc->fwd_tls_name, oc->fwd_spool_path};
        for (size_t k = 0; k < sizeof(fwd) / sizeof(fwd[0]); k++)
            free(fwd[k]);
        free(oc->nats_subject);
        free(oc->nats_stream);
        free(oc->nats_creds);
        for (size_t j = 0; j < oc->nats_servers.n; j++)
            free(oc->nats_servers.v[j]);
        free(oc->nats_servers.v);
        struct strlist *lists[2] = {&oc->filter_apps, &oc->filter_listeners};
        for (size_t k = 0; k < 2; k++) {
            for (size_t j = 0; j < lists[k]->n; j++)
                free(lists[k]->v[j]);
            free(lists[k]->v);
        }
    }
    free(cfg->listen);
    free(cfg->outputs);
    free(cfg->file);
    free(cfg->hostname);
    free(cfg->control_path);
    free(cfg->metrics_address);
    free(cfg->metrics_host);
    free(cfg->metrics_port);
    free(cfg->state_dir);
    free(cfg->user);
    free(cfg->group);
    memset(cfg, 0, sizeof(*cfg));
}

static void print_table(FILE *out, const char *scope, const struct setting *tab)
{
    fprintf(out, "%s\n", scope);
    for (const struct setting *st = tab; st->name != NULL; st++) {
        char extra[600] = "";
        if (st->type == T_ENUM)
            choices_text(st->choices, extra, sizeof(extra));
        fprintf(out, "  %-16s %s%s%s%s\n", st->name, st->help, extra[0] ? " [" : "", extra,
                extra[0] ? "]" : "");
        if (st->required)
            fprintf(out, "  %-16s required\n", "");
        else if (st->def != NULL)
            fprintf(out, "  %-16s default: %s\n", "", st->def);
    }
}

void config_each_setting(void (*fn)(void *arg, const char *scope, const char *name), void *arg)
{
    static const struct {
        const char *scope;
        const struct setting *tab;
    } scopes[] = {
        {"", top_settings},
        {"queue", queue_settings},
        {"control", control_settings},
        {"metrics", metrics_settings},
        {"listen", listen_settings},
        {"listen.tls", listen_tls_settings},
        {"outputs", output_settings},
        {"outputs.filter", filter_settings},
        {"outputs.rotate", rotate_settings},
        {"outputs.forward", forward_settings},
        {"outputs.forward.tls", forward_tls_settings},
        {"outputs.forward.spool", forward_spool_settings},
        {"outputs.nats", nats_settings},
        {"outputs.nats.create", nats_create_settings},
        {"outputs.nats.tls", nats_tls_settings},
        {"outputs.nats.spool", forward_spool_settings},
    };
    for (size_t i = 0; i < sizeof(scopes) / sizeof(scopes[0]); i++)
        for (const struct setting *st = scopes[i].tab; st->name != NULL; st++)
            fn(arg, scopes[i].scope, st->name);
}

void config_print_help(FILE *out)
{
    print_table(out, "top level:", top_settings);
    print_table(out, "queue = { ... }:", queue_settings);
    print_table(out, "control = { ... }:", control_settings);
    print_table(out, "metrics = { ... }:", metrics_settings);
    print_table(out, "listen = ( { ... }, ... ):", listen_settings);
    print_table(out, "listen = ( { type = \"tls\"; tls = { ... }; } ):", listen_tls_settings);
    print_table(out, "outputs = ( { ... }, ... ):", output_settings);
    print_table(out, "outputs = ( { filter = { ... }; } ):", filter_settings);
    print_table(out, "outputs = ( { rotate = { ... }; } ):", rotate_settings);
    print_table(out, "outputs = ( { forward = { ... }; } ):", forward_settings);
    print_table(out, "outputs = ( { forward = { tls = { ... }; }; } ):", forward_tls_settings);
    print_table(out, "outputs = ( { forward = { spool = { ... }; }; } ):", forward_spool_settings);
    print_table(out, "outputs = ( { nats = { ... }; } ):", nats_settings);
    print_table(out, "outputs = ( { nats = { create = { ... }; }; } ):", nats_create_settings);
    print_table(out, "outputs = ( { nats = { tls = { ... }; }; } ):", nats_tls_settings);
    print_table(out, "outputs = ( { nats = { spool = { ... }; }; } ):", forward_spool_settings);
}

int config_rotate_opts(const struct output_conf *oc, struct rotate_counters *counters,
                       struct rotate_opts *ro, char *err, size_t errlen)
{
    rotate_opts_init(ro);
    ro->max_size = oc->rotate_max_size;
    ro->interval_s = oc->rotate_interval_s;
    ro->keep = (int)oc->rotate_keep;
    ro->max_total = oc->rotate_max_total;
    ro->compress = oc->rotate_compress;
    ro->file_mode = (mode_t)oc->file_mode;
    ro->counters = counters;
    if (oc->group != NULL) {
        struct group *gr = getgrnam(oc->group);
        if (gr == NULL) {
            snprintf(err, errlen, "output %s: group: no group \"%s\"", oc->path, oc->group);
            return -1;
        }
        ro->group = gr->gr_gid;
    }
    return 0;
}
