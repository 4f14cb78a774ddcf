#include "listener.h"

#include <fcntl.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "activation.h"

static int make_addr(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path))
        return -ENAMETOOLONG;
    memcpy(sa->sun_path, path, strlen(path) + 1);
    return 0;
}

/* Is a process listening on this socket file?  We connect to find out:
 * ECONNREFUSED means nobody is behind it (a stale file).  The socket type
 * is unknown, so both are tried.  The probe does not block: a listener that
 * no longer accepts (a hung daemon, its backlog full) would keep a blocking
 * connect() waiting for ever, and EAGAIN says just as well that someone
 * is there. */
static int socket_is_live(const struct sockaddr_un *sa)
{
    static const int types[] = {SOCK_STREAM, SOCK_DGRAM};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            return -errno;
        int rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
        int e = errno;
        close(fd);
        if (rc == 0 || e == EAGAIN || e == EINPROGRESS)
            return 1;
        if (e != EPROTOTYPE && e != ECONNREFUSED)
            return e == ENOENT ? 0 : -e;
    }
    return 0;
}

static int mkdir_parent(const char *path)
{
    char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(dir, 0755) != 0 && errno != EEXIST)
                return -errno;
            *p = '/';
        }
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* A socket systemd passed: made non-blocking, its credentials setting
 * ours (systemd's PassCredentials= may have set it either way). */
static int adopt(const struct listen_conf *lc, bool creds, int fd, char *err, size_t errlen)
{
    int fl = fcntl(fd, F_GETFL);
    int on = creds;
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
        (lc->type == LISTEN_DGRAM &&
         setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) != 0)) {
        snprintf(err, errlen, "listen %s (from systemd): %s", lc->path, strerror(errno));
        return -1;
    }
    return fd;
}

int listener_open(const struct listen_conf *lc, bool creds, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    int fd = activation_take(lc->path, lc->type == LISTEN_DGRAM ? SOCK_DGRAM : SOCK_STREAM);
    if (fd >= 0)
        return adopt(lc, creds, fd, err, errlen);
    if (fd == -2) {
        snprintf(err, errlen, "listen %s: systemd passed it as a %s socket; the configuration says %s",
                 lc->path, lc->type == LISTEN_DGRAM ? "stream" : "datagram",
                 lc->type == LISTEN_DGRAM ? "dgram" : "stream");
        return -1;
    }
    fd = -1;
    int rc = make_addr(lc->path, &sa);
    if (rc != 0) {
        snprintf(err, errlen, "listen %s: path longer than %zu bytes", lc->path,
                 sizeof(sa.sun_path) - 1);
        return -1;
    }
    struct stat st;
    if (lstat(lc->path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, errlen, "listen %s: exists and is not a socket; not replacing it",
                     lc->path);
            return -1;
        }
        rc = socket_is_live(&sa);
        if (rc > 0) {
            snprintf(err, errlen,
                     "listen %s: another process is listening there (is lograild already running?)",
                     lc->path);
            return -1;
        }
        if (rc < 0) {
            snprintf(err, errlen, "listen %s: cannot probe the existing socket: %s", lc->path,
                     strerror(-rc));
            return -1;
        }
        /* A socket file nobody listens on: left by a crash.  Replace it. */
        if (unlink(lc->path) != 0 && errno != ENOENT) {
            snprintf(err, errlen, "listen %s: cannot remove the stale socket: %s", lc->path,
                     strerror(errno));
            return -1;
        }
    }
    if ((rc = mkdir_parent(lc->path)) != 0) {
        snprintf(err, errlen, "listen %s: cannot create its directory: %s", lc->path,
                 strerror(-rc));
        return -1;
    }
    int type = lc->type == LISTEN_DGRAM ? SOCK_DGRAM : SOCK_STREAM;
    bool bound = false;
    fd = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto sys_fail;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        goto sys_fail;
    bound = true;
    if (chmod(lc->path, lc->mode) != 0)
        goto sys_fail;
    if (lc->owner != NULL || lc->group != NULL) {
        uid_t uid = (uid_t)-1;
        gid_t gid = (gid_t)-1;
        if (lc->owner != NULL) {
            struct passwd *pw = getpwnam(lc->owner);
            if (pw == NULL) {
                snprintf(err, errlen, "listen %s: owner: no user \"%s\"", lc->path, lc->owner);
                goto fail;
            }
            uid = pw->pw_uid;
        }
        if (lc->group != NULL) {
            struct group *gr = getgrnam(lc->group);
            if (gr == NULL) {
                snprintf(err, errlen, "listen %s: group: no group \"%s\"", lc->path, lc->group);
                goto fail;
            }
            gid = gr->gr_gid;
        }
        if (chown(lc->path, uid, gid) != 0)
            goto sys_fail;
    }
    if (type == SOCK_STREAM) {
        if (listen(fd, SOMAXCONN) != 0)
            goto sys_fail;
    } else {
        /* The kernel then attaches the sender's pid, uid and gid to every
         * datagram (SCM_CREDENTIALS): identity a client cannot forge.  It
         * costs the sender and us a few per cent of a datagram's price, so
         * only when an output shows them (config_wants_creds). */
        int on = creds;
        if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) != 0)
            goto sys_fail;
        /* A deeper queue absorbs bursts; the kernel caps it at rmem_max. */
        int rcvbuf = 4 << 20;
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    return fd;

sys_fail:
    snprintf(err, errlen, "listen %s: %s", lc->path, strerror(errno));
fail:
    if (fd >= 0)
        close(fd);
    /* Only a file we created ourselves is ours to remove. */
    if (bound)
        unlink(lc->path);
    return -1;
}
