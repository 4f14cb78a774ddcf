/*
 * listener: open the Unix sockets of the `listen` entries.
 *
 * Runs on the main thread before any client data is read (and before
 * privileges are dropped).  A stale socket file left by a crash is
 * replaced; a path where another process still listens, or a path that is
 * not a socket, is refused: we never unlink a regular file.
 */
#ifndef LOGRAIL_LISTENER_H
#define LOGRAIL_LISTENER_H

#include <stddef.h>

#include "config.h"

/* Open, bind and (stream) listen; set mode and owner.  Returns the
 * non-blocking, close-on-exec descriptor, or -1 with a message in err. */
int listener_open(const struct listen_conf *lc, char *err, size_t errlen);

#endif
