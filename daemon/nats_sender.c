/*
 * nats_sender: see nats_sender.h.
 *
 * The window.  Frames published and not yet past the cursor sit in a ring,
 * in spool order, each with its position, its end and when it went out.
 * The PubAck handler (a nats.c thread) finds its frame, mostly as the one
 * after the last it found, else by the position in the message's
 * Nats-Msg-Id (a binary search: positions grow along the ring), and marks
 * it; the sender pops the acknowledged prefix and moves the spool's cursor
 * to the end of the last one.  A PubAck for a frame no longer in the ring
 * (one from before a go-back) changes nothing, and an error for one that is
 * already acknowledged is ignored: the stream has it.
 *
 * ack_wait is the sender's own: the oldest frame not acknowledged within it
 * sends the sender back.  nats.c's per-publish MaxWait is not used: nats.c
 * 3.4 keeps a timer entry for every publish until its deadline, answered
 * or not (at 30k records/s and 5 s, 150,000 entries, ~15 MiB), and then
 * delivers a timeout message for each.  A go-back takes what nats.c still
 * holds unanswered back from it (js_PublishAsyncGetPendingList), so that
 * nothing waits there for an answer that may never come.
 */
#include "nats_sender.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "log.h"

#define READ_CHUNK (256 * 1024) /* spool bytes read at once */
#define SAVE_EVERY_MS 200       /* cursor file written at most this often */
#define IDLE_WAIT_MS 100        /* the sender's longest sleep */
#define RETRY_MIN_MS 100        /* pause after an error before going back */
#define RETRY_MAX_MS 2000
#define MSGID_HDR "Nats-Msg-Id"

struct ent {
    uint64_t pos, end; /* the frame occupies [pos, end) of the spool */
    int64_t sent_us;   /* monotonic */
    const natsMsg *m;  /* the message while it is alive (!acked); only compared */
    bool acked;
};

struct nats_sender {
    const struct output_conf *oc;
    struct spool *sp;
    struct forward_stats *fs;
    struct nats_stats *ns;
    char spool_id[40];

    natsOptions *opts;
    natsConnection *nc;
    jsCtx *js;
    jsPubOptions po;
    bool stream_ok;       /* sender only (and nats_open before the thread) */
    uint64_t next_check_ms;
    int64_t check_backoff_ms;

    pthread_t th;
    bool started;
    pthread_mutex_t mu;   /* guards everything below */
    pthread_cond_t cv;
    bool stop;
    uint64_t stop_deadline_ms;
    bool kicked;
    bool waiting;         /* the sender sleeps on cv: wake it */
    bool go_back;         /* publish again from the cursor */
    bool connected;
    struct ent *win;
    size_t cap, head, n;
    size_t hint;          /* ring offset after the last PubAck's frame */

    /* Sender thread only. */
    struct buf rd;        /* frames read from the spool, not yet published */
    size_t rd_off;
    uint64_t rd_pos;      /* spool position of rd.p[rd_off] */
    uint64_t acked_pos;   /* where the cursor was moved last */
    uint64_t last_save_ms;
    int64_t retry_ms;
    uint64_t retry_at_ms;
    bool warned_no_server;
    bool published;       /* js_PublishMsgAsync was called: nats.c has its list */
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void set_error(struct nats_sender *s, const char *op, int e)
{
    atomic_store_explicit(&s->fs->last_error_op, op, memory_order_relaxed);
    atomic_store_explicit(&s->fs->last_errno, e, memory_order_relaxed);
}

static void set_state(struct nats_sender *s, int st)
{
    atomic_store_explicit(&s->fs->state, st, memory_order_relaxed);
}

/* nats.c's last error as text: the status and the detail it kept. */
static void nats_err_text(natsStatus st, char *out, size_t outlen)
{
    natsStatus ls;
    const char *t = nats_GetLastError(&ls);
    snprintf(out, outlen, "%s%s%s", natsStatus_GetText(st), t != NULL && *t ? ": " : "",
             t != NULL ? t : "");
}

/* ---- subjects ------------------------------------------------------------ */

void nats_subject_pattern(const char *tmpl, char *out, size_t outlen)
{
    size_t o = 0;
    const char *p = tmpl;
    while (*p != '\0' && o + 2 < outlen) {
        const char *dot = strchr(p, '.');
        size_t len = dot != NULL ? (size_t)(dot - p) : strlen(p);
        bool ph = memmem(p, len, "%{", 2) != NULL;
        if (ph) {
            out[o++] = '*';
        } else {
            size_t k = len < outlen - o - 2 ? len : outlen - o - 2;
            memcpy(out + o, p, k);
            o += k;
        }
        if (dot == NULL)
            break;
        out[o++] = '.';
        p = dot + 1;
    }
    out[o] = '\0';
}

bool nats_subject_covers(const char *filter, const char *pattern)
{
    const char *f = filter, *p = pattern;
    for (;;) {
        size_t fl = strcspn(f, "."), pl = strcspn(p, ".");
        if (fl == 1 && f[0] == '>')
            return pl > 0;
        bool ok = (fl == 1 && f[0] == '*') || (fl == pl && memcmp(f, p, fl) == 0 &&
                                                !(pl == 1 && p[0] == '*'));
        if (!ok)
            return false;
        f += fl;
        p += pl;
        if (*f == '\0' || *p == '\0')
            return *f == '\0' && *p == '\0';
        f++;
        p++;
    }
}

/* ---- the spool's id -------------------------------------------------------- */

/* Read the spool's id from SPOOL/nats-id, making it (random) if missing. */
static int load_spool_id(struct nats_sender *s)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/nats-id", s->oc->fwd_spool_path);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, s->spool_id, sizeof(s->spool_id) - 1);
        close(fd);
        if (n > 0) {
            s->spool_id[n] = '\0';
            s->spool_id[strcspn(s->spool_id, "\n")] = '\0';
            if (s->spool_id[0] != '\0')
                return 0;
        }
    }
    uint64_t r[2];
    int ufd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (ufd < 0 || read(ufd, r, sizeof(r)) != (ssize_t)sizeof(r)) {
        if (ufd >= 0)
            close(ufd);
        return -EIO;
    }
    close(ufd);
    snprintf(s->spool_id, sizeof(s->spool_id), "%016" PRIx64 "%016" PRIx64, r[0], r[1]);
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd < 0)
        return -errno;
    char line[48];
    int len = snprintf(line, sizeof(line), "%s\n", s->spool_id);
    int rc = write(fd, line, (size_t)len) == len && fsync(fd) == 0 ? 0 : -EIO;
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    return rc;
}

/* ---- callbacks (nats.c threads) -------------------------------------------- */

/* Index in the ring of the frame at pos, or -1. */
static long find_ent(const struct nats_sender *s, uint64_t pos)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t p = s->win[(s->head + mid) % s->cap].pos;
        if (p == pos)
            return (long)((s->head + mid) % s->cap);
        if (p < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* The frame msg was published for: PubAcks come mostly in publish order,
 * so the entry after the last one found is tried first (by the message's
 * address: an entry not yet acknowledged holds a live message, which no
 * other live message shares); otherwise by the position in its Msg-Id. */
static long find_msg(struct nats_sender *s, const natsMsg *msg)
{
    if (s->hint < s->n) {
        size_t i = (s->head + s->hint) % s->cap;
        if (!s->win[i].acked && s->win[i].m == msg) {
            s->hint++;
            return (long)i;
        }
    }
    const char *id = NULL;
    if (natsMsgHeader_Get((natsMsg *)msg, MSGID_HDR, &id) != NATS_OK || id == NULL)
        return -1;
    const char *dash = strrchr(id, '-');
    long i = dash != NULL ? find_ent(s, strtoull(dash + 1, NULL, 10)) : -1;
    if (i >= 0)
        s->hint = ((size_t)i + s->cap - s->head) % s->cap + 1;
    return i;
}

static void on_puback(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    struct nats_sender *s = closure;
    if (pa != NULL && pa->Duplicate)
        counter_add(&s->ns->duplicates, 1);
    pthread_mutex_lock(&s->mu);
    long i = find_msg(s, msg);
    if (i >= 0 && !s->win[i].acked) {
        s->win[i].m = NULL; /* destroyed below: its address may come again */
        if (pa != NULL) {
            s->win[i].acked = true;
            stats_nats_latency(s->ns, (uint64_t)(mono_us() - s->win[i].sent_us));
        } else {
            s->go_back = true;
        }
        /* A wake-up per PubAck would cost a context switch each: wake the
         * sleeping sender when an eighth of the window may be done (PubAcks
         * come mostly in order), or the last frame in flight is. */
        size_t off = ((size_t)i + s->cap - s->head) % s->cap;
        if (s->waiting && (pa == NULL || off + 1 >= s->n || off >= s->cap / 8))
            pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    if (pa == NULL && pae != NULL) {
        counter_add(&s->ns->ack_errors, 1);
        set_error(s, "publish", pae->Err == NATS_TIMEOUT ? ETIMEDOUT : EIO);
    }
    natsMsg_Destroy(msg);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    struct nats_sender *s = closure;
    counter_add(&s->fs->disconnects, 1);
    set_state(s, FORWARD_CONNECTING);
    set_error(s, "connect", ECONNRESET);
    pthread_mutex_lock(&s->mu);
    s->connected = false;
    pthread_mutex_unlock(&s->mu);
}

static void on_connected(natsConnection *nc, void *closure)
{
    (void)nc;
    struct nats_sender *s = closure;
    counter_add(&s->fs->connects, 1);
    pthread_mutex_lock(&s->mu);
    s->connected = true;
    s->go_back = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    struct nats_sender *s = closure;
    counter_add(&s->fs->reconnects, 1);
    on_connected(nc, closure);
}

/* Exponential back-off with jitter between passes over the servers. */
static int64_t reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
    (void)nc;
    const struct nats_sender *s = closure;
    counter_add(&s->fs->connect_failures, 1);
    int64_t d = 200;
    for (int k = 1; k < attempts && d < s->oc->fwd_backoff_max_ms; k++)
        d *= 2;
    if (d > s->oc->fwd_backoff_max_ms)
        d = s->oc->fwd_backoff_max_ms;
    return d / 2 + (int64_t)(random() % (d / 2 + 1));
}

/* ---- the stream -------------------------------------------------------------- */

/* Check (or create) the stream.  0, or -errno with why in err. */
static int check_stream(struct nats_sender *s, char *err, size_t errlen)
{
    const struct output_conf *oc = s->oc;
    char pattern[1024];
    nats_subject_pattern(oc->nats_subject, pattern, sizeof(pattern));
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus st = js_GetStreamInfo(&si, s->js, oc->nats_stream, NULL, &jerr);
    if (st == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
        if (!oc->nats_create) {
            snprintf(err, errlen,
                     "output %s: stream \"%s\" does not exist (create it, or give "
                     "create = { replicas = N; } to have lograild create it)",
                     oc->path, oc->nats_stream);
            return -ENOENT;
        }
        jsStreamConfig cfg;
        jsStreamConfig_Init(&cfg);
        const char *subjects[1] = {pattern};
        cfg.Name = oc->nats_stream;
        cfg.Subjects = subjects;
        cfg.SubjectsLen = 1;
        cfg.Storage = js_FileStorage;
        cfg.Replicas = oc->nats_create_replicas;
        cfg.MaxAge = oc->nats_create_max_age_ms * 1000000;
        cfg.Duplicates = oc->nats_create_dup_window_ms * 1000000;
        st = js_AddStream(&si, s->js, &cfg, NULL, &jerr);
        if (st != NATS_OK) {
            char t[256];
            nats_err_text(st, t, sizeof(t));
            snprintf(err, errlen, "output %s: cannot create stream \"%s\" (subjects \"%s\", %d replicas): %s",
                     oc->path, oc->nats_stream, pattern, (int)oc->nats_create_replicas, t);
            return -EIO;
        }
        log_msg(LOG_NOTICE, "output %s: created stream \"%s\" (subjects \"%s\", %d replicas)",
                oc->path, oc->nats_stream, pattern, (int)oc->nats_create_replicas);
    } else if (st != NATS_OK) {
        char t[256];
        nats_err_text(st, t, sizeof(t));
        snprintf(err, errlen, "output %s: cannot read stream \"%s\": %s", oc->path,
                 oc->nats_stream, t);
        return -EAGAIN; /* the cluster answers but JetStream does not (yet) */
    }
    bool covered = false;
    for (int i = 0; si->Config != NULL && i < si->Config->SubjectsLen && !covered; i++)
        covered = nats_subject_covers(si->Config->Subjects[i], pattern);
    int rc = 0;
    if (!covered) {
        char subs[512] = "";
        size_t o = 0;
        for (int i = 0; si->Config != NULL && i < si->Config->SubjectsLen && o < sizeof(subs); i++)
            o += (size_t)snprintf(subs + o, sizeof(subs) - o, "%s\"%s\"", i ? ", " : "",
                                  si->Config->Subjects[i]);
        snprintf(err, errlen,
                 "output %s: stream \"%s\" does not cover subject \"%s\" (its subjects: %s)",
                 oc->path, oc->nats_stream, pattern, subs[0] ? subs : "none");
        rc = -EINVAL;
    } else {
        int64_t dup_ms = si->Config->Duplicates / 1000000;
        int64_t need = oc->fwd_backoff_max_ms + oc->nats_ack_wait_ms;
        if (dup_ms < need)
            log_msg(LOG_WARNING,
                    "output %s: stream \"%s\" remembers Msg-Ids for %lld ms, less than backoff_max "
                    "+ ack_wait (%lld ms): a record resent after a longer outage may be stored "
                    "twice",
                    oc->path, oc->nats_stream, (long long)dup_ms, (long long)need);
    }
    jsStreamInfo_Destroy(si);
    return rc;
}

/* ---- the sender thread -------------------------------------------------------- */

/* Pop the acknowledged prefix and move the cursor; save it now and then. */
static void advance(struct nats_sender *s, bool save_now)
{
    uint64_t end = 0, recs = 0;
    pthread_mutex_lock(&s->mu);
    while (s->n > 0 && s->win[s->head].acked) {
        end = s->win[s->head].end;
        s->head = (s->head + 1) % s->cap;
        s->n--;
        s->hint = s->hint > 0 ? s->hint - 1 : 0;
        recs++;
    }
    atomic_store_explicit(&s->ns->in_flight, s->n, memory_order_relaxed);
    pthread_mutex_unlock(&s->mu);
    if (recs > 0) {
        counter_add(&s->fs->records_acked, recs);
        counter_add(&s->fs->bytes_acked, end - s->acked_pos);
        s->acked_pos = end;
        s->retry_ms = 0;
        int rc = spool_ack(s->sp, end);
        if (rc != 0)
            log_msg(LOG_WARNING, "output %s: spool: %s", s->oc->path, strerror(-rc));
    }
    uint64_t now = mono_ms();
    if (save_now || now >= s->last_save_ms + SAVE_EVERY_MS) {
        int rc = spool_save_cursor(s->sp);
        if (rc != 0)
            log_msg(LOG_WARNING, "output %s: saving the spool cursor: %s", s->oc->path,
                    strerror(-rc));
        s->last_save_ms = now;
    }
}

/* Free what nats.c still holds unanswered (after the sender stopped, or
 * from the sender).  nats.c 3.4 makes its list at the first publish and
 * fails on a context that never published. */
static void take_back_pending(struct nats_sender *s)
{
    natsMsgList pending = {0};
    if (s->js != NULL && s->published &&
        js_PublishAsyncGetPendingList(&pending, s->js) == NATS_OK)
        natsMsgList_Destroy(&pending);
}

/* Forget what is in flight and read again from the cursor. */
static void go_back(struct nats_sender *s)
{
    pthread_mutex_lock(&s->mu);
    s->n = 0;
    s->hint = 0;
    s->go_back = false;
    pthread_mutex_unlock(&s->mu);
    /* A message nats.c hands back here was never answered (an answer
     * removes it from nats.c's list before our handler runs): ours again,
     * to free. */
    take_back_pending(s);
    s->rd.len = 0;
    s->rd_off = 0;
    spool_rewind(s->sp);
    struct spool_info in;
    spool_info(s->sp, &in);
    s->acked_pos = in.cursor;
}

/* Publish one frame from rd.  1: published, 0: nothing to publish now,
 * -1: the publish failed (go back). */
static int publish_one(struct nats_sender *s)
{
    if (s->rd_off >= s->rd.len) {
        s->rd.len = 0;
        s->rd_off = 0;
        uint64_t start;
        int n = spool_read(s->sp, &s->rd, READ_CHUNK, &start);
        if (n <= 0)
            return 0;
        s->rd_pos = start;
    }
    size_t flen, boff;
    const char *f = s->rd.p + s->rd_off;
    if (spool_frame(f, s->rd.len - s->rd_off, &flen, &boff) != 1) {
        s->rd.len = s->rd_off = 0; /* cannot happen: spool_read gives whole frames */
        return 0;
    }
    uint64_t pos = s->rd_pos;
    const char *body = f + boff;
    size_t blen = flen - boff;
    const char *sp = memchr(body, ' ', blen);
    s->rd_off += flen;
    s->rd_pos += flen;
    if (sp == NULL || sp == body) {
        /* Not a frame output_nats wrote: skip it, but it still counts as
         * done so that the cursor can pass. */
        pthread_mutex_lock(&s->mu);
        struct ent *e = &s->win[(s->head + s->n) % s->cap];
        *e = (struct ent){.pos = pos, .end = pos + flen, .sent_us = mono_us(), .acked = true};
        s->n++;
        pthread_mutex_unlock(&s->mu);
        return 1;
    }
    char subj[1024];
    size_t sl = (size_t)(sp - body);
    if (sl >= sizeof(subj))
        sl = sizeof(subj) - 1;
    memcpy(subj, body, sl);
    subj[sl] = '\0';
    natsMsg *m = NULL;
    natsStatus st = natsMsg_Create(&m, subj, NULL, sp + 1, (int)(blen - sl - 1));
    char id[80];
    snprintf(id, sizeof(id), "%s-%" PRIu64, s->spool_id, pos);
    if (st == NATS_OK)
        st = natsMsgHeader_Set(m, MSGID_HDR, id);
    if (st != NATS_OK) {
        natsMsg_Destroy(m);
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    struct ent *e = &s->win[(s->head + s->n) % s->cap];
    *e = (struct ent){.pos = pos, .end = pos + flen, .sent_us = mono_us(), .m = m, .acked = false};
    s->n++;
    atomic_store_explicit(&s->ns->in_flight, s->n, memory_order_relaxed);
    pthread_mutex_unlock(&s->mu);
    s->published = true;
    st = js_PublishMsgAsync(s->js, &m, &s->po);
    if (st != NATS_OK) {
        natsMsg_Destroy(m);
        char t[256];
        nats_err_text(st, t, sizeof(t));
        log_msg(LOG_DEBUG, "output %s: publish: %s", s->oc->path, t);
        return -1;
    }
    counter_add(&s->fs->records_sent, 1);
    counter_add(&s->fs->bytes_sent, flen);
    return 1;
}

/* Connected but the stream not yet checked (no server at open): check it,
 * backing off while it fails. */
static void recheck_stream(struct nats_sender *s)
{
    uint64_t now = mono_ms();
    if (now < s->next_check_ms)
        return;
    char err[1024];
    int rc = check_stream(s, err, sizeof(err));
    if (rc == 0) {
        s->stream_ok = true;
        s->check_backoff_ms = 0;
        set_error(s, NULL, 0);
        return;
    }
    log_msg(LOG_ERR, "%s; nothing is published until it does", err);
    set_state(s, FORWARD_BACKOFF);
    set_error(s, "stream", -rc);
    s->check_backoff_ms = s->check_backoff_ms ? s->check_backoff_ms * 2 : 1000;
    if (s->check_backoff_ms > s->oc->fwd_backoff_max_ms)
        s->check_backoff_ms = s->oc->fwd_backoff_max_ms;
    s->next_check_ms = now + (uint64_t)s->check_backoff_ms;
}

static void wait_a_little(struct nats_sender *s, uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    ts.tv_sec += (time_t)(ms / 1000) + ts.tv_nsec / 1000000000;
    ts.tv_nsec %= 1000000000;
    pthread_mutex_lock(&s->mu);
    if (!s->kicked && !s->stop && !s->go_back) {
        s->waiting = true;
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
        s->waiting = false;
    }
    s->kicked = false;
    pthread_mutex_unlock(&s->mu);
}

/* The oldest frame in flight went out more than ack_wait ago without its
 * PubAck: count it, and go back (after the usual pause). */
static void check_ack_wait(struct nats_sender *s)
{
    int64_t limit = mono_us() - s->oc->nats_ack_wait_ms * 1000;
    pthread_mutex_lock(&s->mu);
    bool late = s->n > 0 && !s->go_back && !s->win[s->head].acked &&
                s->win[s->head].sent_us < limit;
    if (late)
        s->go_back = true;
    pthread_mutex_unlock(&s->mu);
    if (late) {
        counter_add(&s->ns->ack_errors, 1);
        set_error(s, "publish", ETIMEDOUT);
    }
}

static void *sender_main(void *arg)
{
    struct nats_sender *s = arg;
    s->retry_ms = 0;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        bool stop = s->stop, back = s->go_back, conn = s->connected;
        uint64_t deadline = s->stop_deadline_ms;
        size_t inflight = s->n;
        pthread_mutex_unlock(&s->mu);
        advance(s, false);
        if (conn && !back)
            check_ack_wait(s);
        uint64_t now = mono_ms();
        if (stop) {
            struct spool_info in;
            spool_info(s->sp, &in);
            if (!conn || !s->stream_ok || now >= deadline || (in.unacked_bytes == 0 && inflight == 0))
                break;
        }
        if (!conn) {
            wait_a_little(s, IDLE_WAIT_MS);
            continue;
        }
        if (!s->stream_ok) {
            recheck_stream(s);
            if (!s->stream_ok) {
                wait_a_little(s, IDLE_WAIT_MS);
                continue;
            }
        }
        set_state(s, FORWARD_CONNECTED);
        if (back) {
            if (now < s->retry_at_ms) {
                wait_a_little(s, s->retry_at_ms - now);
                continue;
            }
            go_back(s);
        }
        int published = 0, rc = 0;
        for (;;) {
            pthread_mutex_lock(&s->mu);
            bool room = s->n < s->cap && !s->go_back;
            pthread_mutex_unlock(&s->mu);
            if (!room || (rc = publish_one(s)) <= 0)
                break;
            if (++published % 256 == 0)
                advance(s, false);
        }
        if (rc < 0) {
            /* The publish failed (disconnected, stalled): pause, then
             * start again from the cursor. */
            s->retry_ms = s->retry_ms ? s->retry_ms * 2 : RETRY_MIN_MS;
            if (s->retry_ms > RETRY_MAX_MS)
                s->retry_ms = RETRY_MAX_MS;
            s->retry_at_ms = mono_ms() + (uint64_t)s->retry_ms;
            pthread_mutex_lock(&s->mu);
            s->go_back = true;
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        pthread_mutex_lock(&s->mu);
        if (s->go_back && s->retry_at_ms <= mono_ms()) {
            /* A PubAck error: back off before going back. */
            s->retry_ms = s->retry_ms ? s->retry_ms * 2 : RETRY_MIN_MS;
            if (s->retry_ms > RETRY_MAX_MS)
                s->retry_ms = RETRY_MAX_MS;
            s->retry_at_ms = mono_ms() + (uint64_t)s->retry_ms;
        }
        pthread_mutex_unlock(&s->mu);
        if (published == 0)
            wait_a_little(s, IDLE_WAIT_MS);
    }
    advance(s, true);
    return NULL;
}

/* ---- life ---------------------------------------------------------------------- */

static natsStatus make_options(struct nats_sender *s, bool retry)
{
    const struct output_conf *oc = s->oc;
    natsStatus st = natsOptions_Create(&s->opts);
    if (st != NATS_OK)
        return st;
    natsOptions *o = s->opts;
    if (st == NATS_OK)
        st = natsOptions_SetServers(o, (const char **)oc->nats_servers.v, (int)oc->nats_servers.n);
    if (st == NATS_OK)
        st = natsOptions_SetMaxReconnect(o, -1);
    if (st == NATS_OK)
        st = natsOptions_SetCustomReconnectDelay(o, reconnect_delay, s);
    if (st == NATS_OK)
        st = natsOptions_SetTimeout(o, 2000);
    if (st == NATS_OK)
        st = natsOptions_SetPingInterval(o, 5000);
    if (st == NATS_OK)
        st = natsOptions_SetMaxPingsOut(o, 2);
    if (st == NATS_OK)
        st = natsOptions_SetDisconnectedCB(o, on_disconnected, s);
    if (st == NATS_OK)
        st = natsOptions_SetReconnectedCB(o, on_reconnected, s);
    if (st == NATS_OK && retry)
        st = natsOptions_SetRetryOnFailedConnect(o, true, on_connected, s);
    if (st == NATS_OK && oc->fwd_tls_ca != NULL) {
        st = natsOptions_SetSecure(o, true);
        if (st == NATS_OK)
            st = natsOptions_LoadCATrustedCertificates(o, oc->fwd_tls_ca);
    }
    if (st == NATS_OK && oc->fwd_tls_cert != NULL)
        st = natsOptions_LoadCertificatesChain(o, oc->fwd_tls_cert, oc->fwd_tls_key);
    if (st == NATS_OK && oc->nats_creds != NULL)
        st = natsOptions_SetUserCredentialsFromFiles(o, oc->nats_creds, NULL);
    return st;
}

static natsStatus make_js(struct nats_sender *s)
{
    jsOptions jo;
    jsOptions_Init(&jo);
    /* nats.c's own bound sits above ours, so that frames of a window we
     * went back from (still awaiting a PubAck or a timeout) never stall a
     * publish. */
    jo.PublishAsync.MaxPending = s->oc->nats_max_pending * 4;
    jo.PublishAsync.AckHandler = on_puback;
    jo.PublishAsync.AckHandlerClosure = s;
    jo.Wait = s->oc->nats_ack_wait_ms;
    jsPubOptions_Init(&s->po); /* no MaxWait: see the top of this file */
    return natsConnection_JetStream(&s->js, s->nc, &jo);
}

static _Atomic int live_senders;

int nats_open(struct nats_sender **out, const struct output_conf *oc, struct spool *sp,
              struct output_stats *st, char *err, size_t errlen)
{
    struct nats_sender *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    *out = s;
    atomic_fetch_add(&live_senders, 1);
    s->oc = oc;
    s->sp = sp;
    s->fs = &st->fwd;
    s->ns = &st->nats;
    s->cap = (size_t)oc->nats_max_pending;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    if ((s->win = calloc(s->cap, sizeof(*s->win))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    int rc = load_spool_id(s);
    if (rc != 0) {
        snprintf(err, errlen, "output %s: spool %s: cannot keep its id in nats-id: %s", oc->path,
                 oc->fwd_spool_path, strerror(-rc));
        return rc;
    }
    struct spool_info in;
    spool_info(sp, &in);
    s->acked_pos = in.cursor;
    set_state(s, FORWARD_CONNECTING);
    /* One plain attempt first: a server that answers but refuses us (TLS,
     * credentials) is a configuration error to report now; none answering
     * is an outage: retry in the background and spool meanwhile. */
    natsStatus ns = make_options(s, false);
    if (ns == NATS_OK)
        ns = natsConnection_Connect(&s->nc, s->opts);
    if (ns == NATS_OK) {
        counter_add(&s->fs->connects, 1);
        s->connected = true;
        if ((ns = make_js(s)) != NATS_OK) {
            snprintf(err, errlen, "output %s: JetStream: %s", oc->path, natsStatus_GetText(ns));
            return -EIO;
        }
        rc = check_stream(s, err, errlen);
        if (rc == -EAGAIN) {
            /* Like no server at all: spool, and check again from the sender. */
            log_msg(LOG_WARNING, "%s; spooling, and checking again in the background", err);
            set_error(s, "stream", EAGAIN);
            err[0] = '\0';
            return 0;
        }
        if (rc != 0)
            return rc;
        s->stream_ok = true;
        return 0;
    }
    char t[512];
    nats_err_text(ns, t, sizeof(t));
    if (ns != NATS_NO_SERVER) {
        set_error(s, "connect", ns == NATS_SSL_ERROR ? EPROTO : ECONNREFUSED);
        snprintf(err, errlen, "output %s: cannot connect to the NATS servers: %s", oc->path, t);
        return -ECONNREFUSED;
    }
    log_msg(LOG_WARNING,
            "output %s: no NATS server answers (%s); spooling, and connecting in the background",
            oc->path, t);
    set_error(s, "connect", ECONNREFUSED);
    counter_add(&s->fs->connect_failures, 1);
    natsOptions_Destroy(s->opts);
    s->opts = NULL;
    ns = make_options(s, true);
    if (ns == NATS_OK)
        ns = natsConnection_Connect(&s->nc, s->opts);
    if (ns != NATS_OK && ns != NATS_NOT_YET_CONNECTED) {
        nats_err_text(ns, t, sizeof(t));
        snprintf(err, errlen, "output %s: NATS: %s", oc->path, t);
        return -EIO;
    }
    if ((ns = make_js(s)) != NATS_OK) {
        snprintf(err, errlen, "output %s: JetStream: %s", oc->path, natsStatus_GetText(ns));
        return -EIO;
    }
    return 0;
}

int nats_start(struct nats_sender *s)
{
    int rc = pthread_create(&s->th, NULL, sender_main, s);
    if (rc != 0)
        return -rc;
    s->started = true;
    return 0;
}

void nats_kick(struct nats_sender *s)
{
    pthread_mutex_lock(&s->mu);
    s->kicked = true;
    if (s->waiting)
        pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void nats_stop(struct nats_sender *s, uint64_t flush_ms)
{
    if (!s->started)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    s->stop_deadline_ms = mono_ms() + flush_ms;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th, NULL);
    s->started = false;
}

void nats_free(struct nats_sender *s)
{
    if (s == NULL)
        return;
    nats_stop(s, 0);
    if (s->nc != NULL)
        natsConnection_Close(s->nc);
    take_back_pending(s);
    jsCtx_Destroy(s->js);
    natsConnection_Destroy(s->nc);
    natsOptions_Destroy(s->opts);
    /* The last sender closes the library, which waits for its threads (the
     * ones that run our callbacks) to end before we free what they use. */
    if (atomic_fetch_sub(&live_senders, 1) == 1)
        nats_CloseAndWait(2000);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    buf_free(&s->rd);
    free(s->win);
    free(s);
}
