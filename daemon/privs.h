/*
 * privs: run as an unprivileged user once the privileged work is done.
 *
 * Started as root with `user` set, lograild binds its sockets and opens its
 * outputs first, then calls privs_drop() before any thread reads client
 * data: supplementary groups, then gid, then uid, and a check that root
 * cannot be regained.
 */
#ifndef LOGRAIL_PRIVS_H
#define LOGRAIL_PRIVS_H

#include <stddef.h>

/* user NULL: nothing to do (0).  Not root with a user set: refused unless
 * we already run as that user.  0, or -1 with a message in err. */
int privs_drop(const char *user, const char *group, char *err, size_t errlen);

#endif
