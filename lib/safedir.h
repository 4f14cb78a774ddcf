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

/* The trusted length of a path template: the directory part before the
 * first component that holds a placeholder ("%{"), or SAFEDIR_ALL when the
 * directory part has none. */
size_t safedir_trusted_len(const char *tmpl);

#endif
