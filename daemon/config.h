/*
 * config: lograild's configuration, read from a libconfig file.
 *
 * Every setting is described once, in the tables of config.c (name, type,
 * default, bounds, one line of help).  The same tables drive parsing,
 * validation, the built-in defaults and `lograild --help-config`.
 *
 * Errors are written to the caller's buffer as "FILE:LINE: setting: what is
 * wrong", ready for a person to read.
 */
#ifndef LOGRAIL_CONFIG_H
#define LOGRAIL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define CONFIG_DEFAULT_FILE "/etc/lograil/lograild.conf"

enum listen_type {
    LISTEN_STREAM = 0, /* Unix stream socket at path */
    LISTEN_DGRAM = 1,  /* Unix datagram socket at path */
    LISTEN_KMSG = 2,   /* /dev/kmsg (daemon/input_kmsg.c) */
    LISTEN_TCP = 3,    /* network types: address instead of path */
    LISTEN_UDP = 4,
    LISTEN_TLS = 5,
    LISTEN_RELP = 6,   /* RELP over TCP: acknowledges what is written */
};

/* Is this a network type (address = "host:port")? */
static inline int listen_type_is_network(int type)
{
    return type == LISTEN_TCP || type == LISTEN_UDP || type == LISTEN_TLS ||
           type == LISTEN_RELP;
}
enum listen_policy { POLICY_BLOCK = 0, POLICY_DROP = 1 };

struct strlist {
    char **v;
    size_t n;
};

struct listen_conf {
    char *path;
    int type;               /* enum listen_type */
    unsigned mode;          /* permission bits of the socket file */
    char *owner;            /* NULL: leave as created */
    char *group;
    int policy;             /* enum listen_policy */
    int64_t max_message;    /* bytes */
    int64_t max_connections;/* stream: 0 means no limit */
    int64_t idle_timeout_ms;/* stream: 0 means never */
    int facility;           /* for lines without <PRI> */
    int severity;
    /* Network listeners (tcp, udp, tls).  path is then set to the address,
     * as the listener's name in messages, statistics and filters. */
    char *address;          /* "host:port", "[v6]:port" */
    char *host, *port;      /* its parts, without brackets */
    struct strlist allow;   /* CIDR ranges or addresses; empty: everyone */
    int64_t max_per_peer;   /* connections per peer address; 0: no limit */
    int64_t rcvbuf;         /* SO_RCVBUF bytes; 0: the kernel's default */
    char *tls_cert, *tls_key, *tls_ca;
    int64_t tls_verify_client; /* 1: clients must present a certificate signed by tls_ca */
    int64_t tls_handshake_timeout_ms;
    int line;               /* where it was defined, for messages */
};

enum output_type { OUTPUT_FILE = 0, OUTPUT_WALL = 1 };

enum compress_kind { COMPRESS_NONE = 0, COMPRESS_GZIP = 1, COMPRESS_ZSTD = 2 };

/* forward.protocol */
enum forward_protocol { FORWARD_TCP = 0, FORWARD_TLS = 1, FORWARD_RELP = 2 };

struct output_conf {
    char *path;             /* may hold %{app} and the like (lib/route.h) */
    int type;               /* enum output_type; wall: path is the utmp file */
    int format;             /* enum format_kind */
    int64_t fsync_ms;       /* -1 never, 0 after every batch, else interval */
    unsigned file_mode;
    char *group;            /* group of created files; NULL: the daemon's */
    int64_t max_files;      /* templated paths: files kept open at once */
    /* filter = { ... }: which records this output takes. */
    int filter_severity;    /* records at least this urgent (7: all) */
    uint32_t filter_facilities; /* bit per facility; 0: all */
    /* not_facilities: as read; read_output() then takes them out of
     * filter_facilities, which is all the writer looks at. */
    uint32_t filter_not_facilities;
    struct strlist filter_apps;
    struct strlist filter_listeners; /* listener paths */
    uint64_t filter_listener_mask;   /* the same, as listener indices */
    /* rotate = { ... } */
    int64_t rotate_max_size;   /* bytes; 0: no size limit */
    int64_t rotate_interval_s; /* 0: none */
    int64_t rotate_keep;       /* archives kept; 0: all */
    int64_t rotate_max_total;  /* bytes over all archives; 0: no limit */
    int rotate_compress;       /* enum compress_kind */
    /* forward = { ... }: send the records to a collector through a spool
     * instead of writing a file.  fwd_address NULL: a file output.  For a
     * forward output, path is set to a name for messages and statistics,
     * "ADDRESS (spool SPOOL)", and names no file. */
    char *fwd_address;         /* "host:port" or "[v6]:port" */
    char *fwd_host;            /* its host part, without brackets */
    char *fwd_port;            /* its port, as text (for getaddrinfo) */
    int fwd_protocol;          /* enum forward_protocol */
    int64_t fwd_backoff_max_ms; /* reconnect back-off cap */
    char *fwd_tls_ca, *fwd_tls_cert, *fwd_tls_key, *fwd_tls_name;
    char *fwd_spool_path;
    int64_t fwd_spool_max_size;
    int fwd_spool_full;        /* enum spool_full (lib/spool.h) */
    /* nats = { ... }: publish to a NATS JetStream stream through a spool
     * (daemon/output_nats.c).  nats_subject NULL: not a NATS output.  A
     * NATS output uses the fwd_spool_*, fwd_tls_ca/cert/key and
     * fwd_backoff_max_ms fields above for its spool, TLS and back-off, and
     * path is set to "nats STREAM SUBJECT (spool SPOOL)" for messages. */
    struct strlist nats_servers; /* "nats://host:port" URLs */
    char *nats_subject;          /* template: placeholders as in path */
    char *nats_stream;
    bool nats_create;            /* create = { ... } was given */
    int64_t nats_create_replicas;
    int64_t nats_create_max_age_ms;  /* 0: no limit */
    int64_t nats_create_dup_window_ms;
    char *nats_creds;            /* NATS credentials file; NULL: none */
    int64_t nats_max_pending;    /* publishes awaiting their PubAck at once */
    int64_t nats_ack_wait_ms;    /* a PubAck not back by then: resend */
    int line;
};

struct config {
    char *file;             /* NULL when built-in defaults were used */
    int64_t threads;
    int64_t queue_capacity;
    int64_t queue_max_bytes; /* 0: no byte bound */
    int timestamp;          /* enum format_ts */
    char *hostname;         /* NULL: gethostname() */
    int64_t stop_timeout_ms;
    char *user;             /* run as this user after binding; NULL: stay */
    char *group;
    char *control_path;     /* "" or NULL: no control socket */
    unsigned control_mode;
    char *metrics_address;  /* metrics = { address }: Prometheus over HTTP; NULL: none */
    char *metrics_host, *metrics_port;
    char *state_dir;        /* where inputs keep their place (kmsg) */
    struct listen_conf *listen;
    size_t n_listen;
    struct output_conf *outputs;
    size_t n_outputs;
};

/* Load `file` into *cfg.  When file is NULL: the default file if it
 * exists, else built-in defaults.  On error returns -1 with a message in
 * err and *cfg empty; 0 on success. */
int config_load(struct config *cfg, const char *file, char *err, size_t errlen);

/* Built-in defaults (the packaged paths under /run and /var/log). */
int config_defaults(struct config *cfg, char *err, size_t errlen);

void config_free(struct config *cfg);

/* Does some output show the senders' credentials (an rfc5424 or json
 * format, or %{uid} in its path)?  When none does, datagram sockets do not
 * ask the kernel for them. */
bool config_wants_creds(const struct config *cfg);

/* Call fn for every setting of every scope ("" for the top level, "queue",
 * "listen", "outputs"). */
void config_each_setting(void (*fn)(void *arg, const char *scope, const char *name), void *arg);

/* Describe every setting, its type, default and bounds. */
void config_print_help(FILE *out);

/* The rotation options of an output's files (lib/rotate.h), counting into
 * counters: sizes, interval, keep, compression, file mode and group (looked
 * up by name).  0, or -1 with "output PATH: ..." in err. */
struct rotate_opts;
struct rotate_counters;
int config_rotate_opts(const struct output_conf *oc, struct rotate_counters *counters,
                       struct rotate_opts *ro, char *err, size_t errlen);

#endif
