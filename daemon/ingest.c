/*
 * ingest: libuv loops that turn client bytes into records.
 *
 * Loop 0 polls every listener that accepts connections; each new
 * connection goes to the loop with the fewest connections (handed over
 * through a locked list and the loop's uv_async_t).  Each datagram listener
 * is polled by one loop (listener i by loop i % threads).  What happens to
 * the bytes of a connection is conn.c's, of a datagram dgram.c's, and how a
 * kind of socket is made and read is its input_*.c's: see input.h.
 *
 * Backpressure.  Every loop owns one sender (lib/deliver).  A connection or
 * datagram listener whose records the channel cannot take stops reading;
 * the failed send armed the sender's notify function, which the writer
 * calls once it frees space: it wakes the loop through its uv_async_t, and
 * the loop retries the parked records and resumes reading.  The loop
 * itself never blocks while running: it keeps accepting, serving other
 * connections, and answering the stop request.
 *
 * Shutdown.  The stop request wakes each loop through its async handle.  A
 * loop then accepts what is left in the listen backlog, reads what every
 * connection (and datagram socket) has already delivered, sends it with a
 * blocking chan_send() (the writer is still receiving), closes everything,
 * and its thread drops its sender.  What "already delivered" means is fixed
 * with shutdown(SHUT_RD) (see conn.c): no deadline is needed, and none
 * could cut a client off in the middle of what it was promised.
 */
#include "ingest.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "activation.h"
#include "clock.h"
#include "input.h"
#include "input_kmsg.h"
#include "log.h"

#define ACCEPT_BATCH 64        /* accept() calls per poll callback */
#define NOFILE_SPARE 256       /* descriptors beyond connections: outputs, loops */
#define PACE_NS 50000          /* the pause after a short turn; see pace_cb() */
#define NOFILE_CAP (1 << 20)   /* the kernel's default fs.nr_open */
#define REFUSAL_LOG_MS 10000   /* refused connections: one message this often */
#define RETAKE_MS 37           /* the reserve lost: try to take it back this soon */

/* ---- small helpers ----------------------------------------------------- */

/* Called by the writer thread when the budget has room again. */
static void budget_wake_loops(void *arg)
{
    struct ingest *in = arg;
    for (size_t i = 0; i < in->n_loops; i++) {
        struct iloop *l = in->loops[i];
        pthread_mutex_lock(&l->mu);
        /* Under the lock: l cannot close its async handle until we let go. */
        if (!l->closed)
            uv_async_send(&l->wake);
        pthread_mutex_unlock(&l->mu);
    }
}

/* ---- refusals ---------------------------------------------------------- */

/* Write the message for n connections of lst refused for reason k.  The
 * numbers in these messages add up to the listener's connections_refused
 * counter: each refusal is counted there and in one tally, and each tally
 * hands out every refusal exactly once (the last ones at ingest_stop). */
static void refusal_log(struct listener *lst, enum refusal k, uint64_t n)
{
    unsigned long long nn = (unsigned long long)n;
    const char *pl = n == 1 ? "" : "s";
    switch (k) {
    case REFUSE_LIMIT:
        log_msg(LOG_WARNING,
                "listen %s: %llu connection%s refused: max_connections (%lld) reached; "
                "raise max_connections if so many clients are expected",
                lst->lc->path, nn, pl, (long long)lst->lc->max_connections);
        break;
    case REFUSE_NOFD: {
        struct rlimit rl = {0, 0};
        getrlimit(RLIMIT_NOFILE, &rl);
        log_msg(LOG_ERR,
                "listen %s: %llu connection%s refused: accept: %s (open files limit %llu); "
                "raise LimitNOFILE or lower max_connections",
                lst->lc->path, nn, pl, strerror(lst->nofd_errno), (unsigned long long)rl.rlim_cur);
        break;
    }
    case REFUSE_ALLOW:
        log_msg(LOG_WARNING,
                "listen %s: %llu connection%s refused: the peer is not in allow; add its address "
                "to allow if it should send",
                lst->lc->path, nn, pl);
        break;
    case REFUSE_PEER:
        log_msg(LOG_WARNING,
                "listen %s: %llu connection%s refused: max_per_peer (%lld) connections of the "
                "peer open; raise max_per_peer if one sender needs more",
                lst->lc->path, nn, pl, (long long)lst->lc->max_per_peer);
        break;
    case REFUSE_NOMEM:
        log_msg(LOG_ERR, "listen %s: %llu connection%s refused: out of memory for a connection",
                lst->lc->path, nn, pl);
        break;
    case REFUSE_KINDS:
        break;
    }
}

/* A connection of lst was closed at once.  The first refusal is logged at
 * once; later ones are counted, and their number logged when REFUSAL_LOG_MS
 * has passed since the last message: by the next refusal, or by the owner
 * loop's tick (refusals_flush()) when no refusal follows.  Any loop. */
void ingest_refusal_note(struct listener *lst, enum refusal k)
{
    counter_add(&lst->st->refused, 1);
    uint64_t n = log_tally_add(&lst->refusals[k], 1, clock_mono_ms());
    if (n > 0)
        refusal_log(lst, k, n);
}

/* Log what is counted and due; all of it when force (at the end). */
static void refusals_flush(struct listener *lst, bool force)
{
    uint64_t now = clock_mono_ms();
    for (int k = 0; k < REFUSE_KINDS; k++) {
        uint64_t n = log_tally_take(&lst->refusals[k], now, force);
        if (n > 0)
            refusal_log(lst, (enum refusal)k, n);
    }
}
/* ---- accepting --------------------------------------------------------- */

static struct iloop *least_loaded(struct ingest *in)
{
    struct iloop *best = in->loops[0];
    size_t best_n = atomic_load_explicit(&best->nconns, memory_order_relaxed);
    for (size_t i = 1; i < in->n_loops; i++) {
        size_t n = atomic_load_explicit(&in->loops[i]->nconns, memory_order_relaxed);
        if (n < best_n) {
            best = in->loops[i];
            best_n = n;
        }
    }
    return best;
}

/* Give fd to loop t.  false when t has already shut down. */
static bool handoff(struct iloop *t, int fd, struct listener *lst, struct peers_entry *peer)
{
    pthread_mutex_lock(&t->mu);
    if (t->closed) {
        pthread_mutex_unlock(&t->mu);
        return false;
    }
    if (t->n_pending == t->cap_pending) {
        size_t ncap = t->cap_pending ? t->cap_pending * 2 : 16;
        struct handoff *np = realloc(t->pending, ncap * sizeof(*np));
        if (np == NULL) {
            pthread_mutex_unlock(&t->mu);
            return false;
        }
        t->pending = np;
        t->cap_pending = ncap;
    }
    t->pending[t->n_pending++] = (struct handoff){fd, lst, peer};
    /* Counted now, so that the next choice of loop sees it. */
    atomic_fetch_add_explicit(&t->nconns, 1, memory_order_relaxed);
    /* Under the lock: t cannot close its async handle until we let go. */
    uv_async_send(&t->wake);
    pthread_mutex_unlock(&t->mu);
    return true;
}

static void retake_cb(uv_timer_t *h);

static int reserve_open(void)
{
    return socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
}

/* accept() failed with EMFILE or ENFILE.  The connection stays in the
 * backlog and the listener stays readable, so simply returning would bring
 * us straight back here: a busy loop, and a log line each time.  Like libuv
 * and nginx we hold one descriptor in reserve; it is given up to accept the
 * connection, which is closed at once (the client sees EOF, as it would
 * beyond max_connections), and taken back.  Without a reserve the listener
 * stops polling until the next tick.  true when a connection was refused,
 * so that the caller may go on accepting. */
static bool refuse_one(struct iloop *l, struct listener *lst, int err)
{
    struct ingest *in = l->in;
    bool refused = false;
    if (in->reserve_fd >= 0) {
        close(in->reserve_fd);
        int fd = accept4(lst->fd, NULL, NULL, SOCK_CLOEXEC);
        bool gone = fd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
        lst->nofd_errno = err;
        if (fd >= 0) {
            close(fd);
            ingest_refusal_note(lst, REFUSE_NOFD);
            refused = true;
        }
        in->reserve_fd = reserve_open();
        if (gone)
            return false; /* the client gave up: nothing waits */
    }
    if (refused)
        return true;
    /* Nothing refused: the connection waits in the backlog while the
     * listener pauses, which is worth a message too, at the same pace. */
    uint64_t now = clock_mono_ms();
    if (lst->nofd_logged_ms == 0 || now - lst->nofd_logged_ms >= REFUSAL_LOG_MS) {
        struct rlimit rl = {0, 0};
        getrlimit(RLIMIT_NOFILE, &rl);
        log_msg(LOG_ERR,
                "listen %s: accept: %s (open files limit %llu), no descriptor in reserve: "
                "not accepting for a second; raise LimitNOFILE or lower max_connections",
                lst->lc->path, strerror(err), (unsigned long long)rl.rlim_cur);
        lst->nofd_logged_ms = now;
    }
    if (!l->dl.stopping && !lst->accept_paused) {
        uv_poll_stop(&lst->poll);
        lst->accept_paused = true;
    }
    if (!l->dl.stopping && in->reserve_fd < 0)
        uv_timer_start(&l->retake, retake_cb, RETAKE_MS, 0);
    return refused;
}

/* The reserve is gone: refuse_one() could not take it back because another
 * thread held the descriptor it gave up for a moment.  It must be back
 * before anyone else is served: once the connections fill every descriptor
 * with no reserve, accept() fails for ever and the clients wait in the
 * backlog, neither served nor refused.  fd was just accepted; when there is
 * no room for the reserve beside it, it gives its room (the connection is
 * refused) and false is returned. */
static bool reserve_retake(struct ingest *in, struct listener *lst, int fd)
{
    if ((in->reserve_fd = reserve_open()) >= 0)
        return true;
    lst->nofd_errno = errno;
    close(fd);
    ingest_refusal_note(lst, REFUSE_NOFD);
    in->reserve_fd = reserve_open();
    return false;
}

/* Accept up to `max` connections; during shutdown, everything left. */
static void accept_some(struct iloop *l, struct listener *lst, int max)
{
    for (int i = 0; i < max; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(lst->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                if (refuse_one(l, lst, errno))
                    continue;
                return;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_msg(LOG_WARNING, "listen %s: accept: %s", lst->lc->path, strerror(errno));
            return;
        }
        if (l->in->reserve_fd < 0 && !reserve_retake(l->in, lst, fd))
            continue;
        size_t limit = (size_t)lst->lc->max_connections;
        if (limit > 0 && atomic_load_explicit(&lst->nconns, memory_order_relaxed) >= limit) {
            close(fd);
            ingest_refusal_note(lst, REFUSE_LIMIT);
            continue;
        }
        struct peers_entry *peer = NULL;
        if (lst->kind->admit != NULL) {
            int why = lst->kind->admit(lst, (struct sockaddr *)&ss, &peer);
            if (why != REFUSE_KINDS) {
                close(fd);
                ingest_refusal_note(lst, (enum refusal)why);
                continue;
            }
        }
        atomic_fetch_add_explicit(&lst->nconns, 1, memory_order_relaxed);
        struct iloop *t = l->dl.stopping ? l : least_loaded(l->in);
        if (t != l && handoff(t, fd, lst, peer))
            continue;
        conn_new(l, fd, lst, peer);
    }
}

static void accept_cb(uv_poll_t *h, int status, int events)
{
    (void)events;
    struct listener *lst = h->data;
    if (status < 0) {
        log_msg(LOG_ERR, "listen %s: poll: %s", lst->lc->path, uv_strerror(status));
        return;
    }
    accept_some(lst->owner, lst, ACCEPT_BATCH);
}

/* ---- the loop ---------------------------------------------------------- */

static void resume_paused(struct iloop *l)
{
    conn_resume_paused(l);
    struct ingest *in = l->in;
    for (size_t i = 0; i < in->n_lst; i++) {
        struct listener *lst = &in->lst[i];
        if (lst->owner == l && lst->kind->shape == INPUT_DGRAMS)
            dgram_resume(lst);
    }
}

static void take_pending(struct iloop *l, bool close_too)
{
    pthread_mutex_lock(&l->mu);
    struct handoff *p = l->pending;
    size_t n = l->n_pending;
    l->pending = NULL;
    l->n_pending = l->cap_pending = 0;
    if (close_too)
        l->closed = true;
    pthread_mutex_unlock(&l->mu);
    for (size_t i = 0; i < n; i++) {
        /* handoff() counted it already; conn_new() counts again. */
        atomic_fetch_sub_explicit(&l->nconns, 1, memory_order_relaxed);
        conn_new(l, p[i].fd, p[i].lst, p[i].peer);
    }
    free(p);
}

static void shutdown_loop(struct iloop *l)
{
    struct ingest *in = l->in;
    l->dl.stopping = true;
    /* Listeners first: take what waits in the backlog, then close, so that
     * later clients are refused instead of queued and forgotten. */
    for (size_t i = 0; i < in->n_lst; i++) {
        struct listener *lst = &in->lst[i];
        if (lst->owner != l)
            continue;
        if (lst->kind->shape == INPUT_CONNS) {
            accept_some(l, lst, 1 << 30);
        } else {
            /* Senders now get EPIPE; the datagrams already queued (a few:
             * the kernel bounds the queue by net.unix.max_dgram_qlen) are
             * read until the socket is empty.  Not a socket systemd passed:
             * it outlives us, and what is queued there starts the next
             * lograild; shut down, it would wake systemd for ever. */
            bool cut = !lst->adopted && shutdown(lst->fd, SHUT_RD) == 0;
            dgram_drain(lst, cut);
        }
        if (lst->poll_inited)
            uv_close((uv_handle_t *)&lst->poll, NULL);
        close(lst->fd);
        lst->fd = -1;
    }
    take_pending(l, true);
    while (l->conns != NULL)
        conn_drain(l->conns);
    /* No more sends from this loop: no more wake-ups either. */
    chan_sender_set_notify(l->dl.tx, NULL, NULL);
    l->handles_inited = false;
    uv_close((uv_handle_t *)&l->wake, NULL);
    uv_close((uv_handle_t *)&l->tick, NULL);
    uv_close((uv_handle_t *)&l->retake, NULL);
    uv_close((uv_handle_t *)&l->emfile_guard, NULL);
    uv_close((uv_handle_t *)&l->pace, NULL);
}

static void wake_cb(uv_async_t *h)
{
    struct iloop *l = h->data;
    if (l->dl.stopping)
        return;
    take_pending(l, false);
    if (atomic_load_explicit(&l->in->stop, memory_order_acquire)) {
        shutdown_loop(l);
        return;
    }
    resume_paused(l);
}

/* Paused listeners accept again, once the reserve descriptor is back.
 * While it cannot be reopened (another thread holds the last descriptor
 * for a moment) they stay paused and the retake timer tries again in
 * RETAKE_MS rather than at the next tick: accepting without a reserve
 * would fill the last descriptor with a connection and leave the rest
 * waiting in the backlog until one closes, neither served nor refused. */
static void listeners_retry(struct iloop *l)
{
    struct ingest *in = l->in;
    if (l->dl.stopping)
        return;
    for (size_t i = 0; i < in->n_lst; i++) {
        struct listener *lst = &in->lst[i];
        if (lst->owner != l || !lst->accept_paused)
            continue;
        if (in->reserve_fd < 0)
            in->reserve_fd = reserve_open();
        if (in->reserve_fd < 0) {
            uv_timer_start(&l->retake, retake_cb, RETAKE_MS, 0);
            return;
        }
        lst->accept_paused = false;
        uv_poll_start(&lst->poll, UV_READABLE, accept_cb);
    }
}

static void retake_cb(uv_timer_t *h)
{
    listeners_retry(h->data);
}

static void tick_cb(uv_timer_t *h)
{
    struct iloop *l = h->data;
    uint64_t now = uv_now(&l->loop);
    /* The loop turns: feed the watchdog's view of it (daemon/main.c). */
    if (l->idx < STATS_MAX_LOOPS)
        counter_add(&l->in->stats->loop_beats[l->idx], 1);
    conn_tick_all(l, now);
    /* A backstop for wake-ups: costs one try_send per second when paused. */
    if (l->paused != NULL)
        resume_paused(l);
    struct ingest *in = l->in;
    for (size_t i = 0; i < in->n_lst; i++) {
        struct listener *lst = &in->lst[i];
        if (lst->owner == l && lst->kind->shape == INPUT_CONNS)
            refusals_flush(lst, false);
    }
    /* Listeners that ran out of descriptors try again once a second. */
    listeners_retry(l);
}

static void notify_cb(void *arg)
{
    struct iloop *l = arg;
    uv_async_send(&l->wake);
}

/* Runs before each poll for I/O.  A turn that made only a few stream
 * records (lib/pacer: fewer than PACER_BELOW, though they came at least
 * one per PACE_NS) means the clients write small pieces often: polling
 * again at once would put the thread to sleep in epoll_wait and wake it for
 * every few lines, most of the daemon's time going into switching.  The
 * pacer's short pause lets the lines gather, so that the next turn reads
 * more of them per wake-up and system call.  Not after a turn that read half
 * a read buffer or more (the data is not small pieces), nor after one that
 * read datagrams: a datagram socket queues only net.unix.max_dgram_qlen of
 * them (10 by default) before its senders block, so it is read when it can
 * be; nor while stopping. */
static void pace_cb(uv_prepare_t *h)
{
    struct iloop *l = h->data;
    size_t n = l->turn_stream, bytes = l->turn_bytes;
    bool may = bytes < INPUT_READ_SLICE / 2 && !l->turn_dgram && !l->dl.stopping;
    l->turn_stream = l->turn_bytes = 0;
    l->turn_dgram = false;
    pacer_turn(&l->pacer, n, may);
}

static void *loop_main(void *arg)
{
    struct iloop *l = arg;
    pacer_thread_init();
    uv_run(&l->loop, UV_RUN_DEFAULT);
    record_pool_release(&l->pool);
    chan_sender_drop(l->dl.tx);
    l->dl.tx = NULL;
    return NULL;
}

/* ---- life -------------------------------------------------------------- */

/* Every stream connection holds a descriptor.  Service managers start us
 * with a low soft limit on them (systemd: 1024) and a high hard one, and
 * expect a program that needs more to raise its own soft limit; the
 * listeners' max_connections say how many we need. */
static void raise_nofile(const struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = NOFILE_SPARE;
    for (size_t i = 0; i < cfg->n_listen; i++) {
        const struct listen_conf *lc = &cfg->listen[i];
        const struct input_kind *k = input_kind_of(lc->type);
        if (k == NULL || k->shape != INPUT_CONNS)
            continue;
        if (lc->max_connections == 0 || lc->max_connections > NOFILE_CAP)
            want = NOFILE_CAP;
        else if (want < NOFILE_CAP)
            want += (rlim_t)lc->max_connections;
    }
    if (want > NOFILE_CAP)
        want = NOFILE_CAP;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= want)
        return;
    struct rlimit nrl = rl;
    nrl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
    if (nrl.rlim_cur > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &nrl) == 0)
        rl = nrl;
    if (rl.rlim_cur < want)
        log_msg(LOG_WARNING,
                "open files limit is %llu (hard limit %llu), below the %llu that the listeners' "
                "max_connections need; connections beyond it will be refused",
                (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max,
                (unsigned long long)want);
}

struct ingest *ingest_open(const struct config *cfg, struct stats *stats, struct budget *budget,
                           char *err, size_t errlen)
{
    struct ingest *in = calloc(1, sizeof(*in));
    if (in == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    in->cfg = cfg;
    in->stats = stats;
    in->budget = budget;
    in->reserve_fd = -1;
    in->n_lst = cfg->n_listen;
    in->lst = calloc(in->n_lst, sizeof(*in->lst));
    if (in->lst == NULL) {
        snprintf(err, errlen, "out of memory");
        free(in);
        return NULL;
    }
    for (size_t i = 0; i < in->n_lst; i++) {
        in->lst[i].fd = -1;
        for (int k = 0; k < REFUSE_KINDS; k++)
            log_tally_init(&in->lst[i].refusals[k], REFUSAL_LOG_MS);
    }
    bool creds = config_wants_creds(cfg);
    for (size_t i = 0; i < in->n_lst; i++) {
        struct listener *lst = &in->lst[i];
        lst->lc = &cfg->listen[i];
        lst->st = &stats->listen[i];
        lst->idx = (uint16_t)i;
        lst->popts.default_facility = (uint8_t)lst->lc->facility;
        lst->popts.default_severity = (uint8_t)lst->lc->severity;
        if (lst->lc->type == LISTEN_KMSG) {
            lst->kmsg = input_kmsg_open(lst->lc, lst->idx, cfg->state_dir, lst->st, budget, err,
                                        errlen);
            if (lst->kmsg == NULL)
                goto fail;
            continue;
        }
        /* A relay or device on the network always sends a HOSTNAME. */
        if (listen_type_is_network(lst->lc->type))
            lst->popts.flags |= SYSLOG_PARSE_HOSTNAME;
        lst->kind = input_kind_of(lst->lc->type);
        assert(lst->kind != NULL);
        lst->fd = lst->kind->open(lst, creds, &lst->bound, err, errlen);
        if (lst->fd < 0)
            goto fail;
        if (lst->bound && activation_adopted(lst->lc->path))
            lst->adopted = true;
        if (lst->kind->setup != NULL && lst->kind->setup(lst, creds, err, errlen) != 0)
            goto fail;
    }
    raise_nofile(cfg);
    in->reserve_fd = reserve_open();
    return in;
fail:
    ingest_free(in);
    return NULL;
}

int ingest_start(struct ingest *in, chan_tx *tx)
{
    size_t n = (size_t)in->cfg->threads;
    in->loops = calloc(n, sizeof(*in->loops));
    if (in->loops == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct iloop *l = calloc(1, sizeof(*l));
        if (l == NULL)
            return -ENOMEM;
        in->loops[i] = l;
        in->n_loops = i + 1;
        l->in = in;
        l->idx = (int)i;
        record_pool_init(&l->pool, 0);
        pthread_mutex_init(&l->mu, NULL);
        int rc = uv_loop_init(&l->loop);
        if (rc != 0)
            return rc;
        l->loop_inited = true;
        uv_async_init(&l->loop, &l->wake, wake_cb);
        l->wake.data = l;
        uv_timer_init(&l->loop, &l->tick);
        l->tick.data = l;
        uv_timer_start(&l->tick, tick_cb, 1000, 1000);
        uv_timer_init(&l->loop, &l->retake);
        l->retake.data = l;
        /* libuv opens a descriptor of its own (/dev/null, kept for its
         * EMFILE trick) at a loop's first stream handle.  Taken now, not at
         * the loop's first connection: then, with the open-files limit
         * reached, it would take the slot our reserve had just given up,
         * for good, and leave the listener with no reserve. */
        uv_pipe_init(&l->loop, &l->emfile_guard, 0);
        uv_prepare_init(&l->loop, &l->pace);
        l->pace.data = l;
        uv_prepare_start(&l->pace, pace_cb);
        l->handles_inited = true;
        pacer_init(&l->pacer, PACE_NS, PACER_BELOW);
        l->dl.tx = chan_sender_clone(tx);
        if (l->dl.tx == NULL)
            return -ENOMEM;
        l->dl.budget = in->budget;
        chan_sender_set_notify(l->dl.tx, notify_cb, l);
    }
    /* Before any record is sent: the writer reads it after receiving. */
    budget_set_wake(in->budget, budget_wake_loops, in);
    size_t next_dgram = 0;
    for (size_t i = 0; i < in->n_lst; i++) {
        struct listener *lst = &in->lst[i];
        if (lst->kmsg != NULL) {
            int rc = input_kmsg_start(lst->kmsg, tx);
            if (rc != 0)
                return rc;
            continue;
        }
        bool stream = lst->kind->shape == INPUT_CONNS;
        lst->owner = stream ? in->loops[0] : in->loops[next_dgram++ % n];
        int rc = uv_poll_init(&lst->owner->loop, &lst->poll, lst->fd);
        if (rc != 0)
            return rc;
        lst->poll_inited = true;
        lst->poll.data = lst;
        if (stream)
            uv_poll_start(&lst->poll, UV_READABLE, accept_cb);
        else
            dgram_start(lst);
    }
    for (size_t i = 0; i < n; i++) {
        int rc = pthread_create(&in->loops[i]->thread, NULL, loop_main, in->loops[i]);
        if (rc != 0)
            return -rc;
        in->loops[i]->started = true;
    }
    return 0;
}

void ingest_stop(struct ingest *in)
{
    if (in == NULL || in->loops == NULL)
        return;
    atomic_store_explicit(&in->stop, true, memory_order_release);
    /* Loop 0 goes first: it owns the stream listeners, and a connection it
     * hands over is then either taken by its target or drained by itself. */
    for (size_t i = 0; i < in->n_loops; i++)
        if (in->loops[i]->started)
            uv_async_send(&in->loops[i]->wake);
    for (size_t i = 0; i < in->n_loops; i++) {
        if (in->loops[i]->started) {
            pthread_join(in->loops[i]->thread, NULL);
            in->loops[i]->started = false;
        }
    }
    for (size_t i = 0; i < in->n_lst; i++)
        input_kmsg_stop(in->lst[i].kmsg);
    /* The loops are gone: what they refused since their last message is
     * logged now, so that the messages add up to the counters. */
    for (size_t i = 0; i < in->n_lst; i++)
        refusals_flush(&in->lst[i], true);
}

#define TOP_TALKERS 10 /* peers shown per listener */

int ingest_format_stats(struct ingest *in, struct buf *out, bool prometheus)
{
    bool first = true;
    for (size_t i = 0; in != NULL && i < in->n_lst; i++) {
        struct listener *lst = &in->lst[i];
        if (!lst->has_peers)
            continue;
        if (prometheus && first) {
            static const char head[] =
                "# HELP lograil_listener_peer_records_total Records from one peer address "
                "(the busiest of each listener).\n"
                "# TYPE lograil_listener_peer_records_total counter\n";
            if (buf_append(out, head, sizeof(head) - 1) != 0)
                return -ENOMEM;
        }
        first = false;
        int rc = peers_format(&lst->peers, lst->lc->path, TOP_TALKERS, out, prometheus);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void ingest_free(struct ingest *in)
{
    if (in == NULL)
        return;
    ingest_stop(in);
    for (size_t i = 0; i < in->n_loops; i++) {
        struct iloop *l = in->loops[i];
        if (l->dl.tx != NULL) {
            /* Never started (or its thread never ran). */
            chan_sender_drop(l->dl.tx);
            l->dl.tx = NULL;
        }
        if (l->handles_inited) {
            /* Never run to closing: a loop whose set-up failed part way
             * (a failed chan_sender_clone()) or that never started. */
            l->handles_inited = false;
            uv_close((uv_handle_t *)&l->wake, NULL);
            uv_close((uv_handle_t *)&l->tick, NULL);
            uv_close((uv_handle_t *)&l->retake, NULL);
            uv_close((uv_handle_t *)&l->emfile_guard, NULL);
            uv_close((uv_handle_t *)&l->pace, NULL);
            for (size_t j = 0; j < in->n_lst; j++)
                if (in->lst[j].owner == l && in->lst[j].poll_inited)
                    uv_close((uv_handle_t *)&in->lst[j].poll, NULL);
            uv_run(&l->loop, UV_RUN_DEFAULT);
        }
        if (l->loop_inited)
            uv_loop_close(&l->loop);
        pthread_mutex_destroy(&l->mu);
        for (size_t k = 0; k < l->n_pending; k++) {
            close(l->pending[k].fd);
            if (l->pending[k].peer != NULL)
                peers_release(&l->pending[k].lst->peers, l->pending[k].peer);
        }
        free(l->pending);
        free(l);
    }
    free(in->loops);
    for (size_t i = 0; i < in->n_lst; i++) {
        struct listener *lst = &in->lst[i];
        if (lst->fd >= 0)
            close(lst->fd);
        /* A socket systemd passed keeps its file: the socket unit owns it. */
        if (lst->bound && !activation_adopted(lst->lc->path))
            unlink(lst->lc->path);
        deliver_park_free(&lst->park);
        for (int k = 0; k < REFUSE_KINDS; k++)
            log_tally_destroy(&lst->refusals[k]);
        if (lst->kind != NULL && lst->kind->teardown != NULL)
            lst->kind->teardown(lst);
        input_kmsg_free(lst->kmsg);
    }
    free(in->lst);
    if (in->reserve_fd >= 0)
        close(in->reserve_fd);
    free(in);
}
