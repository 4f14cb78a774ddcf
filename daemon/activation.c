#include "activation.h"

#include <fcntl.h>
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
        if (getsockname(p->fd, (struct sockaddr *)&sa, &len) != 0 || sa.sun_family != AF_UNIX ||
            getsockopt(p->fd, SOL_SOCKET, SO_TYPE, &p->type, &tlen) != 0) {
            log_msg(LOG_WARNING, "systemd passed descriptor %d, which is not a Unix socket",
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

int activation_take(const char *path, int socktype)
{
    for (int i = 0; i < n_passed; i++) {
        struct passed *p = &passed[i];
        if (p->taken || strcmp(p->path, path) != 0)
            continue;
        if (p->type != socktype)
            return -2;
        p->taken = true;
        return p->fd;
    }
    return -1;
}

bool activation_adopted(const char *path)
{
    for (int i = 0; i < n_passed; i++)
        if (passed[i].taken && strcmp(passed[i].path, path) == 0)
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
                passed[i].path[0] ? passed[i].path : "an unnamed socket");
        close(passed[i].fd);
        passed[i].taken = true; /* not ours to use any more */
        passed[i].fd = -1;
        n++;
    }
    return n;
}
