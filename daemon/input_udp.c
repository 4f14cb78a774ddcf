/*
 * input_udp: `type = "udp"`, syslog over UDP (RFC 5426): one datagram is
 * one message.  The datagram path (recvmmsg, pause on a full channel) is
 * dgram.c's; this file says how the socket is made (input_net.c), checks
 * each sender against the allow list, and reads the kernel's count of the
 * datagrams it dropped on a full receive buffer (SO_RXQ_OVFL): UDP cannot
 * hold a sender back, so what a burst loses is at least counted.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "input.h"

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
    if (dgram_setup(lst, CMSG_SPACE(sizeof(uint32_t)), true) != 0) {
        snprintf(err, errlen, "listen %s: out of memory", lst->lc->path);
        return -1;
    }
    return 0;
}

static void udp_teardown(struct listener *lst)
{
    dgram_teardown(lst);
    input_net_teardown(lst);
}

static bool udp_source(struct listener *lst, const struct msghdr *mh, struct input_src *src)
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
