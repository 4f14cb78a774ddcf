#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_len;
static uint64_t watchdog_usec;

int notify_init(void)
{
    const char *wd = getenv("WATCHDOG_USEC");
    const char *wpid = getenv("WATCHDOG_PID");
    if (wd != NULL && (wpid == NULL || strtol(wpid, NULL, 10) == (long)getpid()))
        watchdog_usec = strtoull(wd, NULL, 10);
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");

    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == '\0')
        return 0;
    size_t len = strlen(path);
    if ((path[0] != '/' && path[0] != '@') || len >= sizeof(notify_addr.sun_path))
        return -EINVAL;
    memset(&notify_addr, 0, sizeof(notify_addr));
    notify_addr.sun_family = AF_UNIX;
    memcpy(notify_addr.sun_path, path, len);
    /* '@' names a socket in the abstract namespace: a leading NUL. */
    if (path[0] == '@')
        notify_addr.sun_path[0] = '\0';
    notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (notify_fd < 0)
        return -errno;
    unsetenv("NOTIFY_SOCKET");
    return 0;
}

int notify_send(const char *msg)
{
    if (notify_fd < 0)
        return 0;
    ssize_t n = sendto(notify_fd, msg, strlen(msg), MSG_NOSIGNAL,
                       (const struct sockaddr *)&notify_addr, notify_len);
    return n < 0 ? -errno : 0;
}

uint64_t notify_watchdog_usec(void)
{
    return watchdog_usec;
}

void notify_close(void)
{
    if (notify_fd >= 0)
        close(notify_fd);
    notify_fd = -1;
}
