/*
 * input_unix_stream: `type = "stream"`, a SOCK_STREAM Unix socket (logger
 * -T, glibc's syslog(3) when /dev/log is a stream socket).  The connection
 * path is conn.c's; this file says how the socket is made and who is on
 * the other end of a connection (the kernel's SO_PEERCRED).
 */
#include <sys/socket.h>
#include <unistd.h>

#include "input.h"
#include "listener.h"

int input_unix_open(struct listener *lst, bool creds, bool *bound, char *err, size_t errlen)
{
    int fd = listener_open(lst->lc, creds, err, errlen);
    *bound = fd >= 0;
    return fd;
}

static int unix_stream_conn_open(struct conn *c, int fd)
{
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    /* The kernel's record of who connected: read once per connection. */
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0 && clen == sizeof(cred)) {
        c->src.pid = cred.pid;
        c->src.uid = cred.uid;
        c->src.gid = cred.gid;
        c->src.has_creds = true;
    }
    uv_pipe_init(&c->loop->loop, &c->h.pipe, 0);
    c->h_inited = true;
    int rc = uv_pipe_open(&c->h.pipe, fd);
    if (rc != 0)
        close(fd); /* not libuv's yet */
    return rc;
}

const struct input_kind input_unix_stream = {
    .name = "stream",
    .shape = INPUT_CONNS,
    .open = input_unix_open,
    .conn_open = unix_stream_conn_open,
};
