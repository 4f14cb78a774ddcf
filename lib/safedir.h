/*
 * safedir: open a directory without following a symbolic link that someone
 * other than the operator may have put there.
 *
 * The daemon may start as root and write into directories that others can
 * write (a %{host}/ directory per sending host, say).  The part of a path
 * the operator wrote in the configuration ("/var/log/lograil", which may
 * well be a symlink to another disk) is trusted and opened as open(2) does.
 * Every directory below it is opened one component at a time with
 * openat(O_NOFOLLOW) from its parent's descriptor, and created with
 * mkdirat() when missing, so that a symlink planted at any of them is
 * refused instead of followed (-ELOOP), and no rename race between two
 * steps can send the daemon elsewhere.
 *
 * Pure file-system code: any thread.
 */
#ifndef LOGRAIL_SAFEDIR_H
#define LOGRAIL_SAFEDIR_H

#include <stdbool.h>
#include <stddef.h>

/* SAFEDIR_ALL as `trusted`: the whole path is the operator's. */
#define SAFEDIR_ALL ((size_t)-1)

/* Open the directory dir (O_RDONLY | O_DIRECTORY | O_CLOEXEC); with create,
 * make what is missing, mode 0755 (umask applied).  The first `trusted`
 * bytes of dir (cut back to a component boundary) are followed as given;
 * each component after them must be a real directory: a symbolic link
 * gives -ELOOP, anything else that is not a directory -ENOTDIR.  Returns
 * the descriptor (the caller closes it) or a negative errno. */
int safedir_open(const char *dir, size_t trusted, bool create);

/* A few directories kept open, so that opening a file in one of them costs
 * one openat() of the file's name instead of a walk of the whole path (a
 * templated output opens and closes many files in few directories).  An
 * entry is made by safedir_open() with the same rules, so it never went
 * through a symlink below the trusted part; a directory that someone
 * replaces by a symlink later is not followed either (the descriptor is of
 * the directory that was there).  safedir_cache_clear() makes the next
 * open look every path up again: for SIGHUP, which must see what is at the
 * path now.  Belongs to one thread; costs at most SAFEDIR_CACHE_N
 * descriptors. */
#define SAFEDIR_CACHE_N 4

struct safedir_cache {
    struct safedir_cached {
        char *dir; /* NULL: a free entry */
        size_t trusted;
        int fd;
        unsigned long used;
    } e[SAFEDIR_CACHE_N];
    unsigned long tick;
};

/* A zeroed struct is an empty cache (safedir_cache_init() is the same). */
void safedir_cache_init(struct safedir_cache *c);

/* The descriptor of dir as safedir_open(dir, trusted, create) opens it,
 * from the cache or opened now and kept (the least recently used entry is
 * closed to make room).  The cache owns it: the caller must not close it,
 * and it stays valid until the next call on c.  A negative errno if it
 * cannot be opened (nothing is cached then). */
int safedir_cache_open(struct safedir_cache *c, const char *dir, size_t trusted, bool create);

/* Close the entry for dir (it may be gone: a directory removed while
 * open takes no new files), so that the next open looks it up again. */
void safedir_cache_forget(struct safedir_cache *c, const char *dir, size_t trusted);

/* Close every entry. */
void safedir_cache_clear(struct safedir_cache *c);

/* The trusted length of a path template: the directory part before the
 * first component that holds a placeholder ("%{"), or SAFEDIR_ALL when the
 * directory part has none. */
size_t safedir_trusted_len(const char *tmpl);

#endif
