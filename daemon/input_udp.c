/*
 * input_udp: `type = "udp"`, syslog over UDP (RFC 5426): one datagram is
 * one message.  The datagram path (recvmmsg, pause on a full channel) is
 * dgram.c's; this file says how the socket is made (input_net.c), checks
 * each sender against the allow list, and reads the kernel's count of the
 * datagrams it dropped on a full receive buffer (SO_RXQ_OVFL): UDP cannot
 * hold a sender back, so what a burst loses is at least counted.
 *
 * Top talkers.  Each datagram is added to its sender's entry in the
 * listener's peers table (lograilctl stats).  So that a datagram costs no
 * lock, the owner loop keeps the entries of the senders it saw lately in a
 * direct-mapped cache (UDP_CACHE slots, keyed by a hash of the address),
 * holding each; a sender that takes a slot over lets the old one go.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "input.h"

#define UDP_CACHE 256 /* a power of two */

struct udp_state {
    struct peers_entry *slot[UDP_CACHE];
};

/* FNV-1a over the address bytes, folded to a slot. */
static size_t udp_slot(int fam, const uint8_t *addr)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < (fam == 4 ? 4u : 16u); i++)
        h = (h ^ addr[i]) * 16777619u;
    return (h ^ (h >> 16)) & (UDP_CACHE - 1);
}

/* The held entry of the sender (fam, addr); NULL: no memory. */
static struct peers_entry *udp_peer(struct listener *lst, int fam, const uint8_t *addr)
{
    struct udp_state *us = lst->kstate;
    struct peers_entry **s = &us->slot[udp_slot(fam, addr)];
    struct peers_entry *e = *s;
    if (e != NULL && e->family == fam && memcmp(e->addr, addr, fam == 4 ? 4 : 16) == 0)
        return e;
    if (e != NULL)
        peers_unhold(&lst->peers, e);
    *s = peers_hold(&lst->peers, fam, addr);
    return *s;
}

static int udp_open(struct listener *lst, bool creds, bool *bound, char *err, size_t errlen)
{
    (void)creds;
    *bound = false;
    int fd = input_net_open(lst, SOCK_DGRAM, err, errlen);
    if (fd < 0)
        return -1;
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof(on)) != 0)
        log_msg(LOG_WARNING, "listen %s: SO_RXQ_OVFL: %s; kernel drops will not be counted",
                lst->lc->path, strerror(errno));
    return fd;
}

static int udp_setup(struct listener *lst, bool creds, char *err, size_t errlen)
{
    (void)creds;
    lst->kstate = calloc(1, sizeof(struct udp_state));
    if (lst->kstate == NULL || dgram_setup(lst, CMSG_SPACE(sizeof(uint32_t)), true) != 0) {
        snprintf(err, errlen, "listen %s: out of memory", lst->lc->path);
        return -1;
    }
    peers_init(&lst->peers);
    lst->has_peers = true;
    return 0;
}

static void udp_teardown(struct listener *lst)
{
    dgram_teardown(lst);
    /* The table goes whole: no need to let go of the cache's holds. */
    if (lst->has_peers)
        peers_free(&lst->peers);
    lst->has_peers = false;
    free(lst->kstate);
    lst->kstate = NULL;
    input_net_teardown(lst);
}

static bool udp_source(struct listener *lst, const struct msghdr *mh, size_t len,
                       struct input_src *src)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR((struct msghdr *)mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_RXQ_OVFL &&
            cm->cmsg_len >= CMSG_LEN(sizeof(uint32_t))) {
            /* The socket's drops so far, as a 32-bit count that wraps:
             * the gauge follows it through the wrap. */
            uint32_t n;
            memcpy(&n, CMSG_DATA(cm), sizeof(n));
            uint64_t last = lst->kernel_drops;
            uint64_t now = (last & ~(uint64_t)UINT32_MAX) | n;
            if (now < last)
                now += UINT64_C(1) << 32;
            if (now != last) {
                lst->kernel_drops = now;
                atomic_store_explicit(&lst->st->kernel_drops, now, memory_order_relaxed);
            }
        }
    }
    const struct sockaddr *sa = mh->msg_name;
    if (sa == NULL || mh->msg_namelen == 0)
        return true;
    if (!input_net_allowed(lst, sa)) {
        counter_add(&lst->st->refused_allow, 1);
        return false;
    }
    input_src_set_peer(src, sa);
    const uint8_t *addr;
    int fam = peers_key(sa, &addr);
    struct peers_entry *e = fam != 0 ? udp_peer(lst, fam, addr) : NULL;
    if (e != NULL)
        peers_add(e, 1, len);
    return true;
}

const struct input_kind input_udp = {
    .name = "udp",
    .shape = INPUT_DGRAMS,
    .open = udp_open,
    .setup = udp_setup,
    .teardown = udp_teardown,
    .dgram_source = udp_source,
};
