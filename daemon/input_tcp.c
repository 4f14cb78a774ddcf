/*
 * input_tcp: `type = "tcp"`, syslog over TCP (RFC 6587): octet counting or
 * LF framing, detected per connection by lib/frame as on Unix streams.
 * The connection path is conn.c's; the socket, allow list and per-peer
 * caps are input_net.c's.  Records carry the peer's "IP:port" (peer).
 */
#include "input.h"

static int tcp_open(struct listener *lst, bool creds, bool *bound, char *err, size_t errlen)
{
    (void)creds;
    *bound = false;
    return input_net_open(lst, SOCK_STREAM, err, errlen);
}

static int tcp_setup(struct listener *lst, bool creds, char *err, size_t errlen)
{
    (void)creds;
    (void)err;
    (void)errlen;
    peers_init(&lst->peers);
    lst->has_peers = true;
    return 0;
}

static void tcp_teardown(struct listener *lst)
{
    if (lst->has_peers)
        peers_free(&lst->peers);
    lst->has_peers = false;
    input_net_teardown(lst);
}

const struct input_kind input_tcp = {
    .name = "tcp",
    .shape = INPUT_CONNS,
    .open = tcp_open,
    .setup = tcp_setup,
    .teardown = tcp_teardown,
    .admit = input_net_admit,
    .conn_open = input_net_conn_open,
};
