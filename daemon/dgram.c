/*
 * dgram: one datagram socket, whatever its kind (input.h): recvmmsg, one
 * datagram one record, pause on a full channel, drain at shutdown.
 *
 * Each datagram listener is polled by one loop.  When the channel is full
 * the record is parked on the listener, which stops polling; the kernel's
 * socket queue then holds (Unix: the senders block) or drops (UDP: counted
 * by the kernel) what follows.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "input.h"

#define DGRAM_BATCH 16 /* datagrams per recvmmsg() */
#define DGRAM_ROUNDS 8 /* recvmmsg() calls per poll callback */

int dgram_setup(struct listener *lst, size_t ctl_len, bool names)
{
    size_t slot = (size_t)lst->lc->max_message + 1;
    lst->dbuf = malloc(slot * DGRAM_BATCH);
    lst->msgs = calloc(DGRAM_BATCH, sizeof(*lst->msgs));
    lst->iov = calloc(DGRAM_BATCH, sizeof(*lst->iov));
    lst->ctl_len = ctl_len;
    lst->ctl = ctl_len > 0 ? calloc(DGRAM_BATCH, ctl_len) : NULL;
    lst->names = names ? calloc(DGRAM_BATCH, sizeof(*lst->names)) : NULL;
    if (!lst->dbuf || !lst->msgs || !lst->iov || (ctl_len > 0 && !lst->ctl) ||
        (names && !lst->names))
        return -ENOMEM;
    for (size_t i = 0; i < DGRAM_BATCH; i++) {
        lst->iov[i].iov_base = lst->dbuf + i * slot;
        lst->iov[i].iov_len = slot;
        lst->msgs[i].msg_hdr.msg_iov = &lst->iov[i];
        lst->msgs[i].msg_hdr.msg_iovlen = 1;
    }
    return 0;
}

void dgram_teardown(struct listener *lst)
{
    free(lst->dbuf);
    free(lst->msgs);
    free(lst->iov);
    free(lst->ctl);
    free(lst->names);
    lst->dbuf = NULL;
    lst->msgs = NULL;
    lst->iov = NULL;
    lst->ctl = NULL;
    lst->names = NULL;
}

static void dgram_pause(struct listener *lst)
{
    if (lst->paused)
        return;
    uv_poll_stop(&lst->poll);
    lst->paused = true;
    lst->paused_since = uv_now(&lst->owner->loop);
}

/* Receive up to `rounds` batches.  Returns false when the socket is empty. */
static bool dgram_read(struct listener *lst, int rounds)
{
    struct iloop *l = lst->owner;
    size_t slot = (size_t)lst->lc->max_message + 1;
    size_t max = (size_t)lst->lc->max_message;
    bool drop = lst->lc->policy == POLICY_DROP;
    for (int round = 0; round < rounds; round++) {
        for (size_t i = 0; i < DGRAM_BATCH; i++) {
            struct msghdr *mh = &lst->msgs[i].msg_hdr;
            mh->msg_control = lst->ctl ? lst->ctl + i * lst->ctl_len : NULL;
            mh->msg_controllen = lst->ctl ? lst->ctl_len : 0;
            mh->msg_name = lst->names ? &lst->names[i] : NULL;
            mh->msg_namelen = lst->names ? sizeof(lst->names[i]) : 0;
            mh->msg_flags = 0;
        }
        int n = recvmmsg(lst->fd, lst->msgs, DGRAM_BATCH, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_msg(LOG_WARNING, "listen %s: recvmmsg: %s", lst->lc->path, strerror(errno));
            return false;
        }
        l->now_us = clock_wall_us();
        if (n > 0)
            l->turn_dgram = true;
        for (int i = 0; i < n; i++) {
            struct msghdr *mh = &lst->msgs[i].msg_hdr;
            const char *p = lst->dbuf + (size_t)i * slot;
            size_t len = lst->msgs[i].msg_len;
            unsigned fflags = 0;
            if ((mh->msg_flags & MSG_TRUNC) || len > max) {
                if (len > max)
                    len = max;
                fflags |= FRAME_TRUNCATED;
            } else {
                frame_strip_count(&p, &len);
                fflags |= frame_datagram(p, &len, max);
            }
            if (len == 0)
                continue;
            struct input_src src;
            src.has_creds = false;
            src.peer_len = src.peer_name_len = 0;
            if (lst->kind->dgram_source != NULL && !lst->kind->dgram_source(lst, mh, len, &src))
                continue;
            struct record *r = input_make_record(l, lst, p, len, fflags, &src);
            if (r != NULL)
                deliver_record(&l->dl, &lst->park, drop, r);
        }
        deliver_flush(&l->dl, &lst->park, drop);
        input_tally_flush(l, lst);
        if (lst->park.len > 0) {
            dgram_pause(lst);
            return true;
        }
        if (n < DGRAM_BATCH)
            return false;
    }
    return true;
}

static void dgram_cb(uv_poll_t *h, int status, int events)
{
    (void)events;
    struct listener *lst = h->data;
    if (status < 0) {
        log_msg(LOG_ERR, "listen %s: poll: %s", lst->lc->path, uv_strerror(status));
        return;
    }
    dgram_read(lst, DGRAM_ROUNDS);
}

void dgram_start(struct listener *lst)
{
    uv_poll_start(&lst->poll, UV_READABLE, dgram_cb);
}

void dgram_resume(struct listener *lst)
{
    struct iloop *l = lst->owner;
    if (!lst->paused)
        return;
    bool done = deliver_park_flush(&l->dl, &lst->park, false);
    input_tally_flush(l, lst);
    if (!done)
        return;
    lst->paused = false;
    counter_add(&lst->st->paused_us, (uv_now(&l->loop) - lst->paused_since) * 1000);
    dgram_start(lst);
}

void dgram_drain(struct listener *lst, bool cut)
{
    struct iloop *l = lst->owner;
    deliver_park_flush(&l->dl, &lst->park, true);
    while (dgram_read(lst, DGRAM_ROUNDS) && cut)
        deliver_park_flush(&l->dl, &lst->park, true);
    deliver_park_flush(&l->dl, &lst->park, true);
    input_tally_flush(l, lst);
}
