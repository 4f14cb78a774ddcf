/*
 * stats: every counter the daemon keeps, in one place.
 *
 * Counters are updated with relaxed atomic adds by the thread that does the
 * work (an ingest loop, the writer) and read by whoever prints them; they
 * count events, they do not order anything.  stats_reset() is the one reset.
 * stats_format() prints them all, as text or in the Prometheus exposition
 * format, from one table of metrics, so both always show the same things.
 */
#ifndef LOGRAIL_STATS_H
#define LOGRAIL_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "chan.h"
#include "rotate.h"

typedef _Atomic uint64_t counter;

static inline void counter_add(counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline uint64_t counter_get(const counter *c)
{
    return atomic_load_explicit((counter *)c, memory_order_relaxed);
}

/* One per `listen` entry. */
struct listener_stats {
    counter connections;     /* stream connections accepted */
    counter refused;         /* closed at once: max_connections reached */
    counter idle_closed;     /* closed by idle_timeout */
    counter open;            /* connections open now (gauge) */
    counter records;         /* records sent into the channel */
    counter bytes;           /* message bytes received */
    counter parse_errors;    /* kept raw, flagged */
    counter truncated;       /* cut at max_message */
    counter bad_frames;      /* bad octet counts, incomplete frames at EOF */
    counter dropped;         /* policy = "drop" and the queue was full */
    counter lost;            /* could not be handed to the writer at all */
    counter paused_us;       /* time spent paused by backpressure */
    /* Network listeners. */
    counter refused_allow;   /* connections and datagrams not in the allow list */
    counter refused_per_peer; /* connections beyond max_per_peer */
    counter tls_handshakes;  /* TLS handshakes completed */
    counter tls_handshake_failures; /* failed, timed out or not TLS at all */
    counter tls_not_tls;     /* of those: the client spoke plain text (no TLS record) */
    counter tls_handshake_timeouts; /* of those: not done by handshake_timeout */
    counter kernel_drops;    /* UDP: datagrams the kernel dropped, full buffer (SO_RXQ_OVFL) */
    counter overwritten;     /* kmsg: records the kernel overwrote before we read them */
};

/* A forward output's sender (daemon/forward.c); zero for other outputs. */
enum forward_state { FORWARD_BACKOFF = 0, FORWARD_CONNECTING = 1, FORWARD_CONNECTED = 2 };

struct forward_stats {
    _Atomic int state;                   /* enum forward_state */
    _Atomic int last_errno;              /* of the last failure; 0: none since connected */
    _Atomic(const char *) last_error_op; /* what failed then ("connect"); a static string */
    counter records_sent, bytes_sent;    /* handed to the connection (resends included) */
    counter records_acked, bytes_acked;  /* acknowledged: the cursor moved past them */
    counter connects;                    /* connections made */
    counter reconnects;                  /* connections made after a lost or failed one */
    counter connect_failures;            /* resolve or connect attempts that failed */
    counter disconnects;                 /* connections lost (peer closed, errors) */
    counter protocol_errors;             /* bad answers from the collector (RELP) */
    counter tls_verify_failures;         /* collector certificates refused */
};

/* The spool figures printed with a forward output (lib/spool.h's
 * spool_info, copied here so that stats.c needs no spool). */
struct forward_spool_view {
    uint64_t bytes, segments, unacked_bytes;
    double oldest_unacked_age_s;
    uint64_t dropped_records, dropped_bytes, full_events, torn_bytes, corrupt_bytes;
};

/* Append one forward output's figures: a "# forward NAME" section, or
 * Prometheus families (with their HELP and TYPE lines only when first).
 * Any thread.  0 or -ENOMEM. */
int stats_format_forward(struct buf *out, const char *name, const struct forward_stats *f,
                         const struct forward_spool_view *sv, bool prometheus, bool first);

/* A NATS output's sender (daemon/nats_sender.c), beside its forward_stats.
 * PubAck latency goes into buckets, four per power of two of microseconds
 * (about 25 % wide; the last one takes everything longer than ~16 s). */
#define NATS_LAT_BUCKETS 100

struct nats_stats {
    counter in_flight;   /* gauge: published, PubAck not yet back */
    counter duplicates;  /* PubAcks that said Duplicate: JetStream dropped a resend */
    counter ack_errors;  /* PubAcks that failed or never came (ack_wait): resent */
    counter lat[NATS_LAT_BUCKETS];
};

/* Put one PubAck latency into s's buckets.  Any thread. */
void stats_nats_latency(struct nats_stats *s, uint64_t us);

/* Append one NATS output's own figures (after its forward-style ones).
 * Any thread.  0 or -ENOMEM. */
int stats_format_nats(struct buf *out, const char *name, const struct nats_stats *n,
                      bool prometheus, bool first);

/* One per output. */
struct output_stats {
    counter records;
    counter bytes;
    counter write_errors;    /* failed write(2)/fsync(2)/open(2) attempts */
    counter lost;            /* records given up at shutdown */
    counter files_open;      /* gauge */
    counter files_refused;   /* opens refused: a symlink at the file or below the configured dir */
    counter records_refused; /* records not written because their file was refused */
    struct rotate_counters rot; /* rotations, compression, pruning */
    _Atomic int last_errno;  /* 0, or the errno of the last failure */
    struct forward_stats fwd; /* forward outputs only */
    struct nats_stats nats;   /* nats outputs only */
};

#define STATS_MAX_LOOPS 64

struct stats {
    struct listener_stats *listen;
    size_t n_listen;
    struct output_stats *outputs;
    size_t n_outputs;
    /* Heartbeats: each thread adds one at least once a second while it
     * makes progress; the systemd watchdog is fed only while all move. */
    counter writer_beat;
    counter loop_beats[STATS_MAX_LOOPS];
};

int stats_init(struct stats *s, size_t n_listen, size_t n_outputs);
void stats_reset(struct stats *s);
void stats_free(struct stats *s);

/* What stats_format() prints besides the counters. */
struct stats_view {
    const struct stats *s;
    const char *const *listen_names;  /* n_listen socket paths */
    const char *const *output_names;  /* n_outputs file paths */
    struct chan_stats chan;
    uint64_t queue_bytes, queue_bytes_peak, queue_bytes_limit, queue_byte_waits; /* byte budget */
    double uptime_s;
    uint64_t rss_bytes, hwm_bytes;
};

/* Append every figure to out: as "name: value" lines in sections, or in
 * the Prometheus text exposition format.  0 or -ENOMEM. */
int stats_format(struct buf *out, const struct stats_view *v, bool prometheus);

/* VmRSS and VmHWM of this process, in bytes (0 when unknown). */
void stats_process_memory(uint64_t *rss, uint64_t *hwm);

#endif
