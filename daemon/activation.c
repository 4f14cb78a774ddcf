#include "activation.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

#define FIRST_FD 3 /* SD_LISTEN_FDS_START */
#define MAX_FDS 64

struct passed {
    int fd;
    int type;
    bool taken;
    bool inet; /* AF_INET or AF_INET6: addr holds its address, path is "" */
    struct sockaddr_storage addr;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
};

static struct passed passed[MAX_FDS];
static int n_passed;

int activation_init(void)
{
    const char *pid = getenv("LISTEN_PID");
    const char *fds = getenv("LISTEN_FDS");
    int n = 0;
    if (pid != NULL && fds != NULL && strtol(pid, NULL, 10) == (long)getpid())
        n = (int)strtol(fds, NULL, 10);
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (n > MAX_FDS) {
        log_msg(LOG_WARNING, "systemd passed %d sockets; using the first %d", n, MAX_FDS);
        n = MAX_FDS;
    }
    for (int i = 0; i < n; i++) {
        struct passed *p = &passed[n_passed];
        p->fd = FIRST_FD + i;
        fcntl(p->fd, F_SETFD, FD_CLOEXEC);
        struct sockaddr_un sa;
        socklen_t len = sizeof(sa);
        socklen_t tlen = sizeof(p->type);
        memset(&sa, 0, sizeof(sa));
        memset(&p->addr, 0, sizeof(p->addr));
        socklen_t alen = sizeof(p->addr);
        p->inet = false;
        if (getsockname(p->fd, (struct sockaddr *)&p->addr, &alen) == 0 &&
            (p->addr.ss_family == AF_INET || p->addr.ss_family == AF_INET6) &&
            getsockopt(p->fd, SOL_SOCKET, SO_TYPE, &p->type, &tlen) == 0) {
            p->inet = true;
            p->path[0] = '\0';
            n_passed++;
            continue;
        }
        if (getsockname(p->fd, (struct sockaddr *)&sa, &len) != 0 || sa.sun_family != AF_UNIX ||
            getsockopt(p->fd, SOL_SOCKET, SO_TYPE, &p->type, &tlen) != 0) {
            log_msg(LOG_WARNING,
                    "systemd passed descriptor %d, which is neither a Unix nor a network socket",
                    p->fd);
            close(p->fd);
            continue;
        }
        size_t plen = len > offsetof(struct sockaddr_un, sun_path)
                          ? len - offsetof(struct sockaddr_un, sun_path)
                          : 0;
        memcpy(p->path, sa.sun_path, plen);
        p->path[plen] = '\0';
        n_passed++;
    }
    return n_passed;
}

/* p matches: take it, when its type is socktype. */
static int take(struct passed *p, int socktype)
{
    if (p->type != socktype)
        return -2;
    p->taken = true;
    return p->fd;
}

int activation_take(const char *path, int socktype)
{
    for (int i = 0; i < n_passed; i++) {
        struct passed *p = &passed[i];
        if (p->taken || p->inet || strcmp(p->path, path) != 0)
            continue;
        return take(p, socktype);
    }
    return -1;
}

/* Port and address of a v4 or v6 socket address; wildcard: any address. */
static bool inet_parts(const struct sockaddr *sa, unsigned *port, const uint8_t **addr,
                       size_t *alen, bool *wildcard)
{
    static const uint8_t zero[16];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        *port = ntohs(in->sin_port);
        *addr = (const uint8_t *)&in->sin_addr;
        *alen = 4;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        *port = ntohs(in6->sin6_port);
        *addr = in6->sin6_addr.s6_addr;
        *alen = 16;
    } else {
        return false;
    }
    *wildcard = memcmp(*addr, zero, *alen) == 0;
    return true;
}

int activation_take_inet(const struct sockaddr *sa, int socktype)
{
    unsigned port;
    const uint8_t *addr;
    size_t alen;
    bool wild;
    if (!inet_parts(sa, &port, &addr, &alen, &wild))
        return -1;
    for (int i = 0; i < n_passed; i++) {
        struct passed *p = &passed[i];
        unsigned pport;
        const uint8_t *paddr;
        size_t palen;
        bool pwild;
        if (p->taken || !p->inet ||
            !inet_parts((const struct sockaddr *)&p->addr, &pport, &paddr, &palen, &pwild))
            continue;
        if (pport != port)
            continue;
        if (!(wild && pwild) && !(palen == alen && memcmp(paddr, addr, alen) == 0))
            continue;
        return take(p, socktype);
    }
    return -1;
}

bool activation_adopted(const char *path)
{
    for (int i = 0; i < n_passed; i++)
        if (passed[i].taken && !passed[i].inet && strcmp(passed[i].path, path) == 0)
            return true;
    return false;
}

int activation_close_unused(void)
{
    int n = 0;
    for (int i = 0; i < n_passed; i++) {
        if (passed[i].taken)
            continue;
        log_msg(LOG_WARNING, "systemd passed %s, which no listen entry names: closing it",
                passed[i].inet ? "a network socket" : passed[i].path[0] ? passed[i].path : "an unnamed socket");
        close(passed[i].fd);
        passed[i].taken = true; /* not ours to use any more */
        passed[i].fd = -1;
        n++;
    }
    return n;
}
