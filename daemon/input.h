/*
 * input: the seam between "bytes arrive on a connection" and "how this kind
 * of socket delivers them".  Internal to ingest (ingest.c, conn.c, dgram.c
 * and the input_*.c kinds); nothing outside daemon/ingest* includes it.
 *
 * The shared part, written once:
 *  - ingest.c: the loops (one libuv loop per ingest thread), accepting on
 *    loop 0 and handing each connection to the least loaded loop, refusals
 *    (max_connections, descriptors, memory, allow lists, per-peer caps),
 *    the tick, shutdown.
 *  - conn.c: one stream connection whatever its kind: read, frame
 *    (lib/frame), parse (lib/syslog_parse), hand over (lib/deliver), pause
 *    on a full channel and resume, idle timeout, drain at shutdown.
 *  - dgram.c: one datagram socket: recvmmsg, one datagram one record,
 *    pause on a full channel, drain at shutdown.
 *  - lib/deliver.c: the batch, the parking and the byte budget.
 *
 * A kind (input_unix_stream.c, input_unix_dgram.c, input_tcp.c, input_tls.c,
 * input_udp.c, input_relp.c) is a `struct input_kind`: a table saying how
 * its socket is made, bound or adopted from systemd (open), how an accepted
 * descriptor becomes a libuv stream and who is on the other end (conn_open),
 * and, where the kind has a protocol of its own over the bytes, hooks in
 * the connection's path.  Every hook but open may be NULL.  All hooks of a
 * connection run on the loop that owns it; open and setup on the main
 * thread before the loops start.
 *
 * The path of the bytes of a connection:
 *
 *   libuv read -> conn_read_cb -> kind->conn_bytes (or conn_feed)
 *     conn_feed(c, plaintext) -> lib/frame -> conn_emit
 *       -> conn_make_record (stamp, trusted fields, parse)
 *       -> kind->conn_record (may look at or tag the record)
 *       -> conn_deliver -> lib/deliver (batch; park on a full channel)
 *
 * A kind with a protocol of its own (TLS: ciphertext in, plaintext out;
 * RELP: its own frames) sets conn_bytes and calls conn_feed() with the
 * syslog bytes (TLS), or frames for itself and calls conn_make_record() and
 * conn_deliver() per message (RELP).  conn_feed() returns false when it
 * held bytes back because records parked: the kind must then stop feeding
 * and keep what it has not fed (TLS keeps it inside its SSL object); the
 * connection is paused (no reads) until the parked records are sent.
 * Before reading again, conn_resume calls kind->conn_resume, which feeds
 * what the kind kept (false: it parked again, stay paused).
 *
 * Writing back (a TLS handshake, RELP's "rsp" acknowledgements):
 * conn_write() writes bytes to the client at once when the socket takes
 * them and queues the rest (libuv); they leave in order.  conn_close()
 * cancels what is still queued, so a kind that must get a last answer out
 * (an alert, "serverclose") writes it first and closes from its write's
 * completion or accepts the loss.
 *
 * Acknowledgements that must wait for the writer (RELP: "written up to
 * here"): a kind that needs them tags its records in conn_record and keeps
 * its own per-connection state in c->kstate; the writer's mark reaches the
 * loop through the loop's wake-up (the loop's uv_async_t, as a full
 * channel's room does) and the kind's conn_tick or a hook of its own
 * answers.  A connection of a kind that needs no acknowledgement pays
 * nothing for this: the hooks are NULL.
 *
 * Trusted fields: conn_open fills c->src (the kernel's credentials of a
 * Unix peer, the IP:port of a network peer); kinds may add to it (TLS: the
 * certificate's subject).  Every record made on the connection carries
 * them.
 *
 * Life of a connection: accepted (ingest.c), conn_new: calloc, frame_init,
 * kind->conn_open, counted, read started; conn_close: unlinked, the libuv
 * handle closed; conn_on_closed: kind->conn_free, everything freed.
 */
#ifndef LOGRAIL_INPUT_H
#define LOGRAIL_INPUT_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <uv.h>

#include "budget.h"
#include "cidr.h"
#include "peers.h"
#include "chan.h"
#include "config.h"
#include "deliver.h"
#include "frame.h"
#include "log.h"
#include "pacer.h"
#include "record.h"
#include "stats.h"
#include "syslog_parse.h"

#define INPUT_READ_SLICE (64 * 1024) /* bytes per read(); also bounds one turn */

struct iloop;
struct listener;
struct conn;

/* Why a connection was closed at once; each has its own message. */
enum refusal {
    REFUSE_LIMIT, /* max_connections reached */
    REFUSE_NOFD,  /* accept(): out of descriptors (EMFILE, ENFILE) */
    REFUSE_NOMEM, /* no memory for the connection's state */
    REFUSE_ALLOW, /* the peer is not in the allow list */
    REFUSE_PEER,  /* max_per_peer connections of the peer are open */
    REFUSE_KINDS
};

#define INPUT_PEER_MAX 64       /* "[v6]:port" fits */
#define INPUT_PEER_NAME_MAX 256 /* a certificate subject, cut here */

/* Who sent a record, as the kernel (or the TLS handshake) says: copied into
 * every record made from the source.  ext holds the peer's "IP:port"
 * (peer_len bytes), then the certificate subject (peer_name_len bytes). */
struct input_src {
    bool has_creds;
    pid_t pid;
    uid_t uid;
    gid_t gid;
    uint16_t peer_len, peer_name_len;
    char ext[INPUT_PEER_MAX + INPUT_PEER_NAME_MAX];
};

/* Write the "IP:port" of sa into src (peer_len; the name is dropped). */
void input_src_set_peer(struct input_src *src, const struct sockaddr *sa);

/* Append the certificate subject name (cut at INPUT_PEER_NAME_MAX). */
void input_src_set_peer_name(struct input_src *src, const char *name, size_t len);

enum input_shape {
    INPUT_CONNS,  /* listen, accept, one struct conn per client */
    INPUT_DGRAMS, /* one socket, one datagram one record */
};

struct input_kind {
    const char *name;
    enum input_shape shape;
    /* Make and bind the listening socket, or take the one systemd passed.
     * Main thread, before privileges are dropped.  The non-blocking,
     * close-on-exec descriptor, or -1 with a message in err.  *bound: we
     * created a socket file that ingest_free() removes. */
    int (*open)(struct listener *lst, bool creds, bool *bound, char *err, size_t errlen);
    /* After open, main thread: the kind's per-listener state (datagram
     * buffers, a TLS context).  0 or -1 with a message in err. */
    int (*setup)(struct listener *lst, bool creds, char *err, size_t errlen);
    void (*teardown)(struct listener *lst);
    /* Connections: make c->h a libuv stream over fd on c->loop (uv_pipe_init
     * and uv_pipe_open, uv_tcp_init and uv_tcp_open) and fill c->src.
     * Sets c->h_inited once the handle was initialised (it then needs
     * uv_close).  On failure fd is closed (by libuv's handle, or by
     * conn_open when the handle did not take it).  0 or a libuv error. */
    int (*conn_open)(struct conn *c, int fd);
    /* Bytes read from the client; NULL: conn_feed(c, p, n).  Returns
     * false when the connection must pause (records parked). */
    bool (*conn_bytes)(struct conn *c, const char *p, size_t n);
    /* Before reading again after a pause: feed what the kind kept.  false:
     * still parked. */
    bool (*conn_resume)(struct conn *c);
    /* Every record made on the connection, before it is delivered. */
    void (*conn_record)(struct conn *c, struct record *r);
    /* Once a second from the loop's tick. */
    void (*conn_tick)(struct conn *c, uint64_t now_ms);
    /* The connection is gone: free c->kstate. */
    void (*conn_free)(struct conn *c);
    /* Connections: may the peer at sa (accepted on lst) connect?  Returns
     * REFUSE_KINDS and sets *peer (its entry in lst->peers, or NULL) when
     * it may, else the reason for refusing it.  Loop 0.  NULL hook:
     * everyone, no entry. */
    int (*admit)(struct listener *lst, const struct sockaddr *sa, struct peers_entry **peer);
    /* Datagrams: the sender of one datagram of len bytes (credentials in
     * its control messages, its address in msg_name).  false: refuse the
     * datagram.  The listener's owner loop. */
    bool (*dgram_source)(struct listener *lst, const struct msghdr *mh, size_t len,
                         struct input_src *src);
};

extern const struct input_kind input_unix_stream;
extern const struct input_kind input_unix_dgram;
extern const struct input_kind input_tcp;
extern const struct input_kind input_udp;
extern const struct input_kind input_tls;
extern const struct input_kind input_relp;

/* The open hook of both Unix kinds (daemon/listener.c makes the socket
 * file, or takes systemd's). */
int input_unix_open(struct listener *lst, bool creds, bool *bound, char *err, size_t errlen);

/* ---- network sockets (input_net.c), shared by tcp, udp and tls --------- */

/* Make, bind (and for SOCK_STREAM listen on) the socket of lst's address,
 * or take the one systemd passed; rcvbuf; parse the allow list.  The
 * descriptor or -1 with a message in err. */
int input_net_open(struct listener *lst, int socktype, char *err, size_t errlen);

/* The admit hook of network connection kinds: allow list, max_per_peer. */
int input_net_admit(struct listener *lst, const struct sockaddr *sa, struct peers_entry **peer);

/* Is the sender at sa in lst's allow list? */
bool input_net_allowed(const struct listener *lst, const struct sockaddr *sa);

/* conn_open for TCP sockets: uv_tcp over fd, c->src's peer from
 * getpeername(). */
int input_net_conn_open(struct conn *c, int fd);

/* Free what input_net_open() made. */
void input_net_teardown(struct listener *lst);

/* The kind of a listen entry (enum listen_type). */
const struct input_kind *input_kind_of(int type);

struct listener {
    const struct input_kind *kind;
    const struct listen_conf *lc;
    struct listener_stats *st;
    struct syslog_parse_opts popts;
    uint16_t idx;
    int fd;
    struct iloop *owner;
    uv_poll_t poll;
    bool poll_inited;
    bool bound; /* we created the socket file, and remove it at the end */
    _Atomic size_t nconns;
    /* Connections: closed at once (see ingest.c's refusal_note()), by
     * reason; any loop.  The rest: out of descriptors, owner loop only. */
    struct log_tally refusals[REFUSE_KINDS];
    int nofd_errno;          /* the last EMFILE or ENFILE */
    bool accept_paused;
    uint64_t nofd_logged_ms; /* last "not accepting" message */
    /* Datagrams (dgram.c). */
    struct deliver_park park;
    bool paused;
    uint64_t paused_since;
    char *dbuf;
    struct mmsghdr *msgs;
    struct iovec *iov;
    char *ctl; /* room for control messages per datagram; NULL: not asked for */
    size_t ctl_len;
    struct sockaddr_storage *names; /* datagram senders' addresses; NULL: not asked for */
    bool adopted; /* systemd passed the socket: never shut it down or unlink it */
    struct cidr *allow; /* network kinds: the allow list, parsed; n_allow 0: everyone */
    size_t n_allow;
    struct peers peers; /* network kinds: per peer address */
    bool has_peers;
    uint64_t kernel_drops; /* UDP: the kernel's count, last seen (owner loop) */
    void *kstate; /* the kind's */
    /* kmsg: its own reader thread (daemon/input_kmsg.h); no kind, no fd,
     * no loop (owner NULL). */
    struct input_kmsg *kmsg;
};

struct conn {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_pipe_t pipe;
        uv_tcp_t tcp;
    } h;
    bool h_inited;
    struct iloop *loop;
    struct listener *lst;
    struct frame fr;
    struct deliver_park park;
    char *held; /* read but not yet framed, see conn_feed() */
    size_t held_off, held_len;
    struct input_src src;
    bool paused;
    bool eof;
    bool closing;
    uint64_t paused_since;
    uint64_t last_active;
    struct conn *prev, *next; /* all connections of the loop */
    struct conn *next_paused; /* paused connections of the loop */
    struct peers_entry *peer; /* in lst->peers; NULL: not counted */
    void *kstate;             /* the kind's */
};

struct handoff {
    int fd;
    struct listener *lst;
    struct peers_entry *peer;
};

struct iloop {
    struct ingest *in;
    int idx;
    struct deliver dl;       /* sender, budget, batch, counts */
    struct record_pool pool; /* records are carved from it, freed by the writer */
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t tick;
    uv_timer_t retake;   /* paused listeners: the reserve descriptor, again */
    uv_pipe_t emfile_guard; /* never opened: makes libuv take its EMFILE fd at start */
    uv_prepare_t pace;
    bool loop_inited;    /* uv_loop_init() worked: uv_loop_close() it */
    bool handles_inited; /* wake, tick, retake, emfile_guard, pace: not yet closed */
    size_t turn_stream;  /* stream records made in this turn of the loop */
    size_t turn_bytes;   /* stream bytes read in this turn */
    bool turn_dgram;     /* a datagram was read in this turn */
    struct pacer pacer;  /* see ingest.c's pace_cb() */
    pthread_t thread;
    bool started;
    _Atomic size_t nconns;

    pthread_mutex_t mu; /* guards pending and closed */
    struct handoff *pending;
    size_t n_pending, cap_pending;
    bool closed;

    struct conn *conns;
    struct conn *paused;
    int64_t now_us;
    char rbuf[INPUT_READ_SLICE];
};

struct ingest {
    const struct config *cfg;
    struct stats *stats;
    struct budget *budget; /* bytes of records in the queue */
    struct listener *lst;
    size_t n_lst;
    struct iloop **loops;
    size_t n_loops;
    int reserve_fd; /* see ingest.c's refuse_one(); used by loop 0 only */
    _Atomic bool stop;
};

/* ---- shared helpers (input.c) ------------------------------------------ */

/* Add the loop's counts to lst's stats and zero them.  Loop thread. */
void input_tally_flush(struct iloop *l, struct listener *lst);

/* Build, stamp and parse one record from a framed message of lst.  NULL
 * (counted as lost) when there is no memory.  Loop thread. */
struct record *input_make_record(struct iloop *l, struct listener *lst, const char *msg,
                                 size_t len, unsigned fflags, const struct input_src *src);

/* ---- refusals (ingest.c) ----------------------------------------------- */

/* A connection of lst was closed at once for reason k: counted, logged (the
 * first at once, later ones as a count).  Any loop. */
void ingest_refusal_note(struct listener *lst, enum refusal k);

/* ---- connections (conn.c) ---------------------------------------------- */

/* Serve fd, accepted on lst, on loop l (l's thread).  Takes fd and the
 * peer entry (released when the connection closes). */
void conn_new(struct iloop *l, int fd, struct listener *lst, struct peers_entry *peer);

/* Frame p[0..n) of plaintext; false when bytes were held back (records
 * parked: the caller pauses).  p may point into c->held. */
bool conn_feed(struct conn *c, const char *p, size_t n);

/* One framed message: make the record, let the kind see it, deliver it. */
struct record *conn_make_record(struct conn *c, const char *msg, size_t len, unsigned fflags);
void conn_deliver(struct conn *c, struct record *r);

/* Queue bytes to the client.  0 or a negative errno. */
int conn_write(struct conn *c, const void *p, size_t n);

/* Stop reading until the parked records are sent. */
void conn_pause(struct conn *c);

/* Close now (what is parked is freed). */
void conn_close(struct conn *c);

/* Shutdown: read what the client already sent, send it, close. */
void conn_drain(struct conn *c);

/* Retry the loop's paused connections (after a wake-up or from the tick). */
void conn_resume_paused(struct iloop *l);

/* The tick: close the connections idle past idle_timeout, run conn_tick. */
void conn_tick_all(struct iloop *l, uint64_t now_ms);

/* ---- datagram sockets (dgram.c) ---------------------------------------- */

/* Buffers for DGRAM_BATCH datagrams; control room when ctl_len > 0,
 * sender addresses when names.  0 or -ENOMEM. */
int dgram_setup(struct listener *lst, size_t ctl_len, bool names);
void dgram_teardown(struct listener *lst);

/* Start polling lst on its owner loop. */
void dgram_start(struct listener *lst);

/* Retry a paused datagram listener's parked records; resume when sent. */
void dgram_resume(struct listener *lst);

/* Shutdown: read what is queued, send it, stop polling.  cut: shutdown()
 * may be used to refuse further datagrams. */
void dgram_drain(struct listener *lst, bool cut);

#endif
