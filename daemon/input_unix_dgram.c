/*
 * input_unix_dgram: `type = "dgram"`, a SOCK_DGRAM Unix socket (/dev/log).
 * The datagram path is dgram.c's; this file says how the socket is made
 * and reads the sender's credentials (SCM_CREDENTIALS) of each datagram.
 */
#include <string.h>
#include <sys/socket.h>

#include "input.h"

/* creds: the socket asks for the senders' credentials (listener_open).
 * Without them there is no control buffer at all, so that descriptors a
 * client passes (SCM_RIGHTS) are closed by the kernel, never put in our
 * table; with them, the buffer holds the credentials and nothing more. */
static int unix_dgram_setup(struct listener *lst, bool creds, char *err, size_t errlen)
{
    if (dgram_setup(lst, creds ? CMSG_SPACE(sizeof(struct ucred)) : 0, false) != 0) {
        snprintf(err, errlen, "listen %s: out of memory", lst->lc->path);
        return -1;
    }
    return 0;
}

static bool unix_dgram_source(struct listener *lst, const struct msghdr *mh, size_t len,
                              struct input_src *src)
{
    (void)lst;
    (void)len;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR((struct msghdr *)mh, cm)) {
        struct ucred cr;
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS &&
            cm->cmsg_len >= CMSG_LEN(sizeof(cr))) {
            memcpy(&cr, CMSG_DATA(cm), sizeof(cr));
            src->pid = cr.pid;
            src->uid = cr.uid;
            src->gid = cr.gid;
            src->has_creds = true;
        }
    }
    return true;
}

const struct input_kind input_unix_dgram = {
    .name = "dgram",
    .shape = INPUT_DGRAMS,
    .open = input_unix_open,
    .setup = unix_dgram_setup,
    .teardown = dgram_teardown,
    .dgram_source = unix_dgram_source,
};
