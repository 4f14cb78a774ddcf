/*
 * safedir: directories opened one component at a time.  See safedir.h.
 */
#include "safedir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_CLOEXEC)

/* mkdir -p dir, 0755: the operator's part, symlinks followed. */
static int mkdir_p(char *buf)
{
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        int rc = mkdir(buf, 0755) != 0 && errno != EEXIST ? -errno : 0;
        *p = c;
        if (rc != 0)
            return rc;
        if (c == '\0')
            break;
    }
    return 0;
}

/* Open the component name below dirfd, never through a symlink. */
static int open_below(int dirfd, const char *name, bool create)
{
    int fd = openat(dirfd, name, DIR_FLAGS | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT && create) {
        if (mkdirat(dirfd, name, 0755) != 0 && errno != EEXIST)
            return -errno;
        fd = openat(dirfd, name, DIR_FLAGS | O_NOFOLLOW);
    }
    if (fd >= 0)
        return fd;
    int e = errno;
    /* O_DIRECTORY | O_NOFOLLOW on a symlink says ENOTDIR: tell the two
     * apart, since a planted link is what a person must hear about. */
    struct stat st;
    if ((e == ENOTDIR || e == ELOOP) && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        S_ISLNK(st.st_mode))
        return -ELOOP;
    return -e;
}

int safedir_open(const char *dir, size_t trusted, bool create)
{
    if (dir == NULL || dir[0] == '\0')
        return -EINVAL;
    size_t len = strlen(dir);
    char buf[PATH_MAX];
    if (len >= sizeof(buf))
        return -ENAMETOOLONG;
    memcpy(buf, dir, len + 1);
    size_t k = trusted < len ? trusted : len;
    while (k > 0 && k < len && buf[k] != '/')
        k--; /* back to the start of the component it cuts */

    int fd;
    if (k == 0) {
        fd = open(buf[0] == '/' ? "/" : ".", DIR_FLAGS);
        if (fd < 0)
            return -errno;
    } else {
        char c = buf[k];
        buf[k] = '\0';
        /* Nearly always there already: mkdir only when it is not. */
        int rc = 0;
        fd = open(buf, DIR_FLAGS);
        if (fd < 0 && errno == ENOENT && create && (rc = mkdir_p(buf)) == 0)
            fd = open(buf, DIR_FLAGS);
        if (fd < 0 && rc == 0)
            rc = -errno;
        if (rc != 0)
            return rc;
        buf[k] = c;
    }

    char *p = buf + k;
    while (*p != '\0') {
        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        char *end = strchr(p, '/');
        if (end != NULL)
            *end = '\0';
        int next = open_below(fd, p, create);
        close(fd);
        if (next < 0)
            return next;
        fd = next;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return fd;
}

size_t safedir_trusted_len(const char *tmpl)
{
    const char *ph = strstr(tmpl, "%{");
    const char *last = strrchr(tmpl, '/');
    if (ph == NULL || last == NULL || ph > last)
        return SAFEDIR_ALL; /* the directory part is all literal */
    size_t k = (size_t)(ph - tmpl);
    while (k > 0 && tmpl[k - 1] != '/')
        k--;
    /* k is where the placeholder's component starts; the trusted part ends
     * at the '/' before it (or is empty). */
    return k > 0 ? k - 1 : 0;
}
