/*
 * input_net: what the network kinds (tcp, tls, udp) share: making and
 * binding the socket of an address (or taking systemd's), the receive
 * buffer, the allow list, the per-peer table and the peer's address.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "activation.h"
#include "input.h"

#define LISTEN_BACKLOG 4096 /* the kernel caps it at net.core.somaxconn */

static int parse_allow(struct listener *lst, char *err, size_t errlen)
{
    const struct strlist *al = &lst->lc->allow;
    if (al->n == 0)
        return 0;
    lst->allow = calloc(al->n, sizeof(*lst->allow));
    if (lst->allow == NULL) {
        snprintf(err, errlen, "listen %s: out of memory", lst->lc->path);
        return -1;
    }
    for (size_t i = 0; i < al->n; i++) {
        if (cidr_parse(al->v[i], &lst->allow[i]) != 0) {
            snprintf(err, errlen, "listen %s: allow: \"%s\" is not an address or range",
                     lst->lc->path, al->v[i]);
            return -1;
        }
    }
    lst->n_allow = al->n;
    return 0;
}

/* The receive buffer: SO_RCVBUFFORCE passes net.core.rmem_max when we may
 * (root, CAP_NET_ADMIN: before privileges are dropped); else SO_RCVBUF,
 * which the kernel caps at rmem_max. */
static void set_rcvbuf(struct listener *lst, int fd)
{
    int v = (int)lst->lc->rcvbuf;
    if (v <= 0)
        return;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)) == 0)
        return;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)) != 0) {
        log_msg(LOG_WARNING, "listen %s: rcvbuf %d: %s", lst->lc->path, v, strerror(errno));
        return;
    }
    int got = 0;
    socklen_t gl = sizeof(got);
    /* The kernel doubles what it is given (for its bookkeeping). */
    if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &gl) == 0 && got / 2 < v)
        log_msg(LOG_WARNING,
                "listen %s: rcvbuf %d capped by the kernel at %d; raise net.core.rmem_max or "
                "start lograild as root",
                lst->lc->path, v, got / 2);
}

int input_net_open(struct listener *lst, int socktype, char *err, size_t errlen)
{
    const struct listen_conf *lc = lst->lc;
    if (parse_allow(lst, err, errlen) != 0)
        return -1;
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = socktype;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int g = getaddrinfo(lc->host, lc->port, &hints, &ai);
    if (g != 0) {
        snprintf(err, errlen, "listen %s: %s", lc->path, gai_strerror(g));
        return -1;
    }
    int fd = activation_take_inet(ai->ai_addr, socktype);
    if (fd == -2) {
        snprintf(err, errlen, "listen %s: systemd passed it as a %s socket; the type says %s",
                 lc->path, socktype == SOCK_DGRAM ? "stream" : "datagram",
                 socktype == SOCK_DGRAM ? "udp" : "tcp or tls");
        freeaddrinfo(ai);
        return -1;
    }
    if (fd >= 0) {
        lst->adopted = true;
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
            snprintf(err, errlen, "listen %s (from systemd): %s", lc->path, strerror(errno));
            freeaddrinfo(ai);
            return -1;
        }
        set_rcvbuf(lst, fd);
        freeaddrinfo(ai);
        return fd;
    }
    fd = socket(ai->ai_family, socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const char *op = "socket";
    if (fd < 0)
        goto fail;
    int on = 1, off = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    /* "[::]" takes IPv4 clients too, whatever net.ipv6.bindv6only says. */
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
    set_rcvbuf(lst, fd);
    op = "bind";
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0)
        goto fail;
    op = "listen";
    if (socktype == SOCK_STREAM && listen(fd, LISTEN_BACKLOG) != 0)
        goto fail;
    freeaddrinfo(ai);
    return fd;
fail:
    snprintf(err, errlen, "listen %s: %s: %s%s", lc->path, op, strerror(errno),
             errno == EADDRINUSE ? " (another process listens there)"
             : errno == EACCES   ? " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
                                 : "");
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return -1;
}

void input_net_teardown(struct listener *lst)
{
    free(lst->allow);
    lst->allow = NULL;
    lst->n_allow = 0;
}

/* The address bytes of sa: family 4 or 6, or 0. */
static int addr_of(const struct sockaddr *sa, const uint8_t **addr)
{
    if (sa->sa_family == AF_INET) {
        *addr = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        return 4;
    }
    if (sa->sa_family == AF_INET6) {
        *addr = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        return 6;
    }
    return 0;
}

bool input_net_allowed(const struct listener *lst, const struct sockaddr *sa)
{
    if (lst->n_allow == 0)
        return true;
    const uint8_t *addr;
    int fam = addr_of(sa, &addr);
    return fam != 0 && cidr_match_any(lst->allow, lst->n_allow, fam, addr);
}

int input_net_admit(struct listener *lst, const struct sockaddr *sa, struct peers_entry **peer)
{
    *peer = NULL;
    if (!input_net_allowed(lst, sa)) {
        counter_add(&lst->st->refused_allow, 1);
        return REFUSE_ALLOW;
    }
    const uint8_t *addr;
    int fam = peers_key(sa, &addr);
    if (fam == 0 || !lst->has_peers)
        return REFUSE_KINDS;
    bool refused = false;
    *peer = peers_admit(&lst->peers, fam, addr, (size_t)lst->lc->max_per_peer, &refused);
    if (refused) {
        counter_add(&lst->st->refused_per_peer, 1);
        return REFUSE_PEER;
    }
    return REFUSE_KINDS;
}

int input_net_conn_open(struct conn *c, int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0)
        input_src_set_peer(&c->src, (struct sockaddr *)&ss);
    uv_tcp_init(&c->loop->loop, &c->h.tcp);
    c->h_inited = true;
    int rc = uv_tcp_open(&c->h.tcp, fd);
    if (rc != 0) {
        close(fd); /* not libuv's yet */
        return rc;
    }
    /* Records go one way; a lone ACK waiting for data to ride on would
     * only hold up a sender's next write (RELP, TLS handshakes). */
    uv_tcp_nodelay(&c->h.tcp, 1);
    return 0;
}
