#include "stats.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int stats_init(struct stats *s, size_t n_listen, size_t n_outputs)
{
    memset(s, 0, sizeof(*s));
    s->listen = calloc(n_listen ? n_listen : 1, sizeof(*s->listen));
    s->outputs = calloc(n_outputs ? n_outputs : 1, sizeof(*s->outputs));
    if (s->listen == NULL || s->outputs == NULL) {
        stats_free(s);
        return -ENOMEM;
    }
    s->n_listen = n_listen;
    s->n_outputs = n_outputs;
    return 0;
}

void stats_reset(struct stats *s)
{
    /* Gauges say how things are, not what happened: they stay. */
    for (size_t i = 0; i < s->n_listen; i++) {
        struct listener_stats *l = &s->listen[i];
        counter *all[] = {&l->connections, &l->refused, &l->idle_closed, &l->records,
                          &l->bytes, &l->parse_errors, &l->truncated, &l->bad_frames,
                          &l->dropped, &l->lost, &l->paused_us, &l->refused_allow,
                          &l->refused_per_peer, &l->tls_handshakes, &l->tls_handshake_failures,
                          &l->tls_not_tls, &l->tls_handshake_timeouts, &l->overwritten};
        for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++)
            atomic_store_explicit(all[k], 0, memory_order_relaxed);
    }
    for (size_t i = 0; i < s->n_outputs; i++) {
        struct output_stats *o = &s->outputs[i];
        counter *all[] = {&o->records, &o->bytes, &o->write_errors, &o->lost,
                          &o->files_refused, &o->records_refused};
        for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++)
            atomic_store_explicit(all[k], 0, memory_order_relaxed);
        atomic_store_explicit(&o->last_errno, 0, memory_order_relaxed);
        rotate_counters_reset(&o->rot);
        struct forward_stats *f = &o->fwd;
        counter *fwd[] = {&f->records_sent, &f->bytes_sent, &f->records_acked, &f->bytes_acked,
                          &f->connects, &f->reconnects, &f->connect_failures, &f->disconnects,
                          &f->protocol_errors, &f->tls_verify_failures};
        for (size_t k = 0; k < sizeof(fwd) / sizeof(fwd[0]); k++)
            atomic_store_explicit(fwd[k], 0, memory_order_relaxed);
    }
}

void stats_free(struct stats *s)
{
    free(s->listen);
    free(s->outputs);
    memset(s, 0, sizeof(*s));
}

/* ---- the table of metrics ---------------------------------------------- */

struct metric {
    const char *name;
    size_t off;
    bool gauge;
    double scale; /* printed value = raw * scale */
    const char *help;
};

#define LM(f) offsetof(struct listener_stats, f)
#define OM(f) offsetof(struct output_stats, f)

static const struct metric listener_metrics[] = {
    {"connections", LM(connections), false, 1, "Stream connections accepted."},
    {"connections_refused", LM(refused), false, 1, "Connections closed at once: max_connections, no descriptor or no memory for them."},
    {"connections_idle_closed", LM(idle_closed), false, 1, "Connections closed by idle_timeout."},
    {"connections_open", LM(open), true, 1, "Connections open now."},
    {"records", LM(records), false, 1, "Records handed to the writer."},
    {"bytes", LM(bytes), false, 1, "Message bytes received."},
    {"parse_errors", LM(parse_errors), false, 1, "Malformed messages, kept raw."},
    {"truncated", LM(truncated), false, 1, "Messages cut at max_message."},
    {"bad_frames", LM(bad_frames), false, 1, "Bad octet counts and frames cut short by EOF."},
    {"dropped", LM(dropped), false, 1, "Records dropped by policy \"drop\" on a full queue."},
    {"lost", LM(lost), false, 1, "Records that could not be handed to the writer."},
    {"paused_seconds", LM(paused_us), false, 1e-6, "Time reading was paused by backpressure."},
    {"refused_allow", LM(refused_allow), false, 1, "Network connections and datagrams refused: peer not in allow."},
    {"refused_per_peer", LM(refused_per_peer), false, 1, "Connections refused: max_per_peer reached."},
    {"tls_handshakes", LM(tls_handshakes), false, 1, "TLS handshakes completed."},
    {"tls_handshake_failures", LM(tls_handshake_failures), false, 1, "TLS handshakes failed, timed out or not TLS."},
    {"tls_not_tls", LM(tls_not_tls), false, 1, "Connections to a TLS port that sent plain text."},
    {"tls_handshake_timeouts", LM(tls_handshake_timeouts), false, 1, "TLS handshakes not done by handshake_timeout."},
    {"kernel_drops", LM(kernel_drops), true, 1, "UDP datagrams the kernel dropped on a full receive buffer."},
    {"overwritten", LM(overwritten), false, 1,
     "kmsg: kernel records overwritten in the ring buffer before they were read."},
};

static const struct metric output_metrics[] = {
    {"records", OM(records), false, 1, "Records written."},
    {"bytes", OM(bytes), false, 1, "Bytes written."},
    {"write_errors", OM(write_errors), false, 1, "Failed writes, fsyncs and opens."},
    {"lost", OM(lost), false, 1, "Records given up when stopping (disk full)."},
    {"rotations", OM(rot.rotations), false, 1, "Files rotated."},
    {"rotate_errors", OM(rot.rotate_errors), false, 1, "Failed rotations (the file grew on)."},
    {"archives_compressed", OM(rot.compressed), false, 1, "Archives compressed."},
    {"compress_errors", OM(rot.compress_errors), false, 1, "Failed compressions (kept plain)."},
    {"archives_pruned", OM(rot.pruned), false, 1, "Archives removed by keep or max_total."},
    {"files_open", OM(files_open), true, 1, "Files open now."},
    {"files_refused", OM(files_refused), false, 1, "Opens refused: a symbolic link in the way."},
    {"records_refused", OM(records_refused), false, 1, "Records not written: their file was refused."},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static int put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int put(struct buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return -EINVAL;
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return 0;
        }
        if (buf_reserve(b, (size_t)n + 1) != 0)
            return -ENOMEM;
    }
}

/* A label value in the exposition format: \ " and newline escaped. */
static int put_label(struct buf *b, const char *v)
{
    for (const char *p = v; *p; p++) {
        int rc = *p == '\\' ? put(b, "\\\\") : *p == '"' ? put(b, "\\\"")
               : *p == '\n' ? put(b, "\\n") : put(b, "%c", *p);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static double value(const void *base, const struct metric *m)
{
    return (double)counter_get((const counter *)((const char *)base + m->off)) * m->scale;
}

static int prom_family(struct buf *b, const char *kind, const struct metric *m, const void *arr,
                       size_t stride, size_t n, const char *const *names)
{
    int rc = put(b, "# HELP lograil_%s_%s%s %s\n# TYPE lograil_%s_%s%s %s\n", kind, m->name,
                 m->gauge ? "" : "_total", m->help, kind, m->name, m->gauge ? "" : "_total",
                 m->gauge ? "gauge" : "counter");
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = put(b, "lograil_%s_%s%s{%s=\"", kind, m->name, m->gauge ? "" : "_total", kind);
        if (rc == 0)
            rc = put_label(b, names[i]);
        if (rc == 0)
            rc = put(b, "\"} %.15g\n", value((const char *)arr + i * stride, m));
    }
    return rc;
}

int stats_format(struct buf *out, const struct stats_view *v, bool prometheus)
{
    const struct stats *s = v->s;
    const struct chan_stats *c = &v->chan;
    int rc = 0;
    if (prometheus) {
        rc = put(out,
                 "# HELP lograil_uptime_seconds Time since lograild started.\n"
                 "# TYPE lograil_uptime_seconds gauge\nlograil_uptime_seconds %.3f\n"
                 "# HELP lograil_resident_memory_bytes Resident memory (VmRSS).\n"
                 "# TYPE lograil_resident_memory_bytes gauge\nlograil_resident_memory_bytes %llu\n"
                 "# HELP lograil_resident_memory_peak_bytes Peak resident memory (VmHWM).\n"
                 "# TYPE lograil_resident_memory_peak_bytes gauge\n"
                 "lograil_resident_memory_peak_bytes %llu\n"
                 "# HELP lograil_queue_capacity Records the queue holds.\n"
                 "# TYPE lograil_queue_capacity gauge\nlograil_queue_capacity %zu\n"
                 "# HELP lograil_queue_depth Records in the queue now.\n"
                 "# TYPE lograil_queue_depth gauge\nlograil_queue_depth %zu\n"
                 "# HELP lograil_queue_high_water Most records ever in the queue at once.\n"
                 "# TYPE lograil_queue_high_water gauge\nlograil_queue_high_water %zu\n"
                 "# HELP lograil_queue_senders_waiting Ingest threads waiting for room.\n"
                 "# TYPE lograil_queue_senders_waiting gauge\nlograil_queue_senders_waiting %zu\n"
                 "# HELP lograil_queue_full_total Sends that found the queue full.\n"
                 "# TYPE lograil_queue_full_total counter\nlograil_queue_full_total %llu\n"
                 "# HELP lograil_queue_bytes Memory of the records in the queue now.\n"
                 "# TYPE lograil_queue_bytes gauge\nlograil_queue_bytes %llu\n"
                 "# HELP lograil_queue_bytes_high_water Most memory the queued records took.\n"
                 "# TYPE lograil_queue_bytes_high_water gauge\nlograil_queue_bytes_high_water %llu\n"
                 "# HELP lograil_queue_bytes_limit queue.max_bytes (0: none).\n"
                 "# TYPE lograil_queue_bytes_limit gauge\nlograil_queue_bytes_limit %llu\n"
                 "# HELP lograil_queue_byte_waits_total Times ingest waited for queue.max_bytes.\n"
                 "# TYPE lograil_queue_byte_waits_total counter\n"
                 "lograil_queue_byte_waits_total %llu\n",
                 v->uptime_s, (unsigned long long)v->rss_bytes, (unsigned long long)v->hwm_bytes,
                 c->capacity, c->depth, c->high_water, c->send_waiting,
                 (unsigned long long)c->full_events, (unsigned long long)v->queue_bytes,
                 (unsigned long long)v->queue_bytes_peak, (unsigned long long)v->queue_bytes_limit,
                 (unsigned long long)v->queue_byte_waits);
        for (size_t k = 0; rc == 0 && k < N(listener_metrics); k++)
            rc = prom_family(out, "listener", &listener_metrics[k], s->listen,
                             sizeof(*s->listen), s->n_listen, v->listen_names);
        for (size_t k = 0; rc == 0 && k < N(output_metrics); k++)
            rc = prom_family(out, "output", &output_metrics[k], s->outputs,
                             sizeof(*s->outputs), s->n_outputs, v->output_names);
        return rc;
    }
    rc = put(out,
             "# process\nuptime_seconds: %.0f\nrss_bytes: %llu\nrss_peak_bytes: %llu\n"
             "\n# queue\ncapacity: %zu\ndepth: %zu\nhigh_water: %zu\nsenders: %zu\n"
             "senders_waiting: %zu\nfull: %llu\nbytes: %llu\nbytes_high_water: %llu\n"
             "bytes_limit: %llu\n"
             "byte_waits: %llu\n",
             v->uptime_s, (unsigned long long)v->rss_bytes, (unsigned long long)v->hwm_bytes,
             c->capacity, c->depth, c->high_water, c->senders, c->send_waiting,
             (unsigned long long)c->full_events, (unsigned long long)v->queue_bytes,
             (unsigned long long)v->queue_bytes_peak, (unsigned long long)v->queue_bytes_limit,
             (unsigned long long)v->queue_byte_waits);
    for (size_t i = 0; rc == 0 && i < s->n_listen; i++) {
        rc = put(out, "\n# listener %s\n", v->listen_names[i]);
        for (size_t k = 0; rc == 0 && k < N(listener_metrics); k++)
            rc = put(out, "%s: %.15g\n", listener_metrics[k].name,
                     value(&s->listen[i], &listener_metrics[k]));
    }
    for (size_t i = 0; rc == 0 && i < s->n_outputs; i++) {
        rc = put(out, "\n# output %s\n", v->output_names[i]);
        for (size_t k = 0; rc == 0 && k < N(output_metrics); k++)
            rc = put(out, "%s: %.15g\n", output_metrics[k].name,
                     value(&s->outputs[i], &output_metrics[k]));
        int e = atomic_load_explicit(&s->outputs[i].last_errno, memory_order_relaxed);
        if (rc == 0)
            rc = put(out, "last_error: %s\n", e ? strerror(e) : "none");
    }
    return rc;
}

void stats_process_memory(uint64_t *rss, uint64_t *hwm)
{
    *rss = *hwm = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return;
    char line[256];
    unsigned long long kb;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
            *rss = kb * 1024;
        else if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
            *hwm = kb * 1024;
    }
    fclose(f);
}

/* ---- forward outputs ------------------------------------------------------ */

#define FM(f) offsetof(struct forward_stats, f)

static const struct metric forward_metrics[] = {
    {"records_sent", FM(records_sent), false, 1, "Records handed to the collector's connection."},
    {"bytes_sent", FM(bytes_sent), false, 1, "Bytes handed to the collector's connection."},
    {"records_acked", FM(records_acked), false, 1, "Records the collector acknowledged."},
    {"bytes_acked", FM(bytes_acked), false, 1, "Spool bytes the collector acknowledged."},
    {"connects", FM(connects), false, 1, "Connections made."},
    {"reconnects", FM(reconnects), false, 1, "Connections made after a lost or failed one."},
    {"connect_failures", FM(connect_failures), false, 1, "Failed resolves and connects."},
    {"disconnects", FM(disconnects), false, 1, "Connections lost."},
    {"protocol_errors", FM(protocol_errors), false, 1, "Bad answers from the collector."},
    {"tls_verify_failures", FM(tls_verify_failures), false, 1,
     "Collector certificates refused."},
};

static const char *const forward_state_names[] = {"backoff", "connecting", "connected"};

int stats_format_forward(struct buf *out, const char *name, const struct forward_stats *f,
                         const struct forward_spool_view *sv, bool prometheus, bool first)
{
    int state = atomic_load_explicit(&f->state, memory_order_relaxed);
    int e = atomic_load_explicit(&f->last_errno, memory_order_relaxed);
    const char *op = atomic_load_explicit(&f->last_error_op, memory_order_relaxed);
    if (state < 0 || state > 2)
        state = 0;
    const struct {
        const char *name;
        double v;
        const char *help;
    } spool[] = {
        {"spool_bytes", (double)sv->bytes, "Bytes in the spool's segments."},
        {"spool_segments", (double)sv->segments, "Segment files in the spool."},
        {"spool_unacked_bytes", (double)sv->unacked_bytes, "Spool bytes not yet acknowledged."},
        {"oldest_unacked_age_seconds", sv->oldest_unacked_age_s,
         "Age of the oldest unacknowledged segment's first record."},
        {"spool_dropped_records", (double)sv->dropped_records,
         "Records deleted unsent by full = drop_oldest."},
        {"spool_dropped_bytes", (double)sv->dropped_bytes,
         "Bytes deleted unsent by full = drop_oldest."},
        {"spool_full", (double)sv->full_events, "Appends refused: spool at max_size (block)."},
        {"spool_torn_bytes", (double)sv->torn_bytes, "Bytes of torn tails cut at start-up."},
        {"spool_corrupt_bytes", (double)sv->corrupt_bytes, "Spool bytes skipped: not frames."},
    };
    int rc = 0;
    if (!prometheus) {
        rc = put(out, "\n# forward %s\nstate: %s\nlast_error: ", name, forward_state_names[state]);
        if (rc == 0)
            rc = e ? put(out, "%s: %s\n", op ? op : "?", strerror(e)) : put(out, "none\n");
        for (size_t k = 0; rc == 0 && k < N(forward_metrics); k++)
            rc = put(out, "%s: %.15g\n", forward_metrics[k].name, value(f, &forward_metrics[k]));
        for (size_t k = 0; rc == 0 && k < N(spool); k++)
            rc = put(out, "%s: %.15g\n", spool[k].name, spool[k].v);
        return rc;
    }
    if (first)
        rc = put(out, "# HELP lograil_forward_connected 1 when connected to the collector.\n"
                      "# TYPE lograil_forward_connected gauge\n");
    if (rc == 0)
        rc = put(out, "lograil_forward_connected{forward=\"");
    if (rc == 0)
        rc = put_label(out, name);
    if (rc == 0)
        rc = put(out, "\"} %d\n", state == FORWARD_CONNECTED);
    for (size_t k = 0; rc == 0 && k < N(forward_metrics); k++) {
        const struct metric *m = &forward_metrics[k];
        if (first)
            rc = put(out, "# HELP lograil_forward_%s_total %s\n# TYPE lograil_forward_%s_total counter\n",
                     m->name, m->help, m->name);
        if (rc == 0)
            rc = put(out, "lograil_forward_%s_total{forward=\"", m->name);
        if (rc == 0)
            rc = put_label(out, name);
        if (rc == 0)
            rc = put(out, "\"} %.15g\n", value(f, m));
    }
    for (size_t k = 0; rc == 0 && k < N(spool); k++) {
        if (first)
            rc = put(out, "# HELP lograil_forward_%s %s\n# TYPE lograil_forward_%s gauge\n",
                     spool[k].name, spool[k].help, spool[k].name);
        if (rc == 0)
            rc = put(out, "lograil_forward_%s{forward=\"", spool[k].name);
        if (rc == 0)
            rc = put_label(out, name);
        if (rc == 0)
            rc = put(out, "\"} %.15g\n", spool[k].v);
    }
    return rc;
}

/* ---- nats outputs --------------------------------------------------------- */

void stats_nats_latency(struct nats_stats *s, uint64_t us)
{
    /* From the bit length and the next two bits (nats_bucket_top). */
    int k = 0;
    if (us >= 1) {
        int b = 63 - __builtin_clzll(us); /* 2^b <= us < 2^(b+1) */
        uint64_t frac = b >= 2 ? (us >> (b - 2)) & 3 : (us << (2 - b)) & 3;
        k = 4 * b + (int)frac + 1;
    }
    if (k >= NATS_LAT_BUCKETS)
        k = NATS_LAT_BUCKETS - 1;
    counter_add(&s->lat[k], 1);
}

/* Bucket k > 0 holds [2^b (1 + f/4), 2^b (1 + (f+1)/4)) us, b = (k-1)/4,
 * f = (k-1)%4; its upper bound in seconds. */
static double nats_bucket_top(int k)
{
    if (k == 0)
        return 1e-6;
    return ldexp(1.0 + (double)((k - 1) % 4 + 1) / 4.0, (k - 1) / 4) / 1e6;
}

/* The latency below which a share q of the PubAcks came back, in seconds:
 * the upper bound of the bucket where the count passes q (0: none yet). */
static double nats_quantile(const struct nats_stats *s, double q)
{
    uint64_t c[NATS_LAT_BUCKETS], total = 0;
    for (int k = 0; k < NATS_LAT_BUCKETS; k++)
        total += c[k] = counter_get(&s->lat[k]);
    if (total == 0)
        return 0;
    uint64_t want = (uint64_t)(q * (double)total + 0.5), seen = 0;
    if (want == 0)
        want = 1;
    for (int k = 0; k < NATS_LAT_BUCKETS; k++) {
        seen += c[k];
        if (seen >= want)
            return nats_bucket_top(k);
    }
    return nats_bucket_top(NATS_LAT_BUCKETS - 1);
}

int stats_format_nats(struct buf *out, const char *name, const struct nats_stats *n,
                      bool prometheus, bool first)
{
    const struct {
        const char *name;
        double v;
        bool counter;
        const char *help;
    } m[] = {
        {"in_flight", (double)counter_get(&n->in_flight), false,
         "Publishes whose PubAck has not come back yet."},
        {"duplicates", (double)counter_get(&n->duplicates), true,
         "Resends that JetStream's duplicate window dropped."},
        {"ack_errors", (double)counter_get(&n->ack_errors), true,
         "Failed PubAcks, and times the oldest PubAck did not come within ack_wait (each resent)."},
        {"puback_p50_seconds", nats_quantile(n, 0.50), false, "Median PubAck latency."},
        {"puback_p99_seconds", nats_quantile(n, 0.99), false, "99th percentile PubAck latency."},
    };
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < N(m); k++) {
        if (!prometheus) {
            rc = put(out, "nats_%s: %.15g\n", m[k].name, m[k].v);
            continue;
        }
        const char *sfx = m[k].counter ? "_total" : "";
        if (first)
            rc = put(out, "# HELP lograil_nats_%s%s %s\n# TYPE lograil_nats_%s%s %s\n", m[k].name,
                     sfx, m[k].help, m[k].name, sfx, m[k].counter ? "counter" : "gauge");
        if (rc == 0)
            rc = put(out, "lograil_nats_%s%s{output=\"", m[k].name, sfx);
        if (rc == 0)
            rc = put_label(out, name);
        if (rc == 0)
            rc = put(out, "\"} %.15g\n", m[k].v);
    }
    return rc;
}
