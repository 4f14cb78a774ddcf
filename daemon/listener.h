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

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* Open, bind and (stream) listen; set mode and owner.  A datagram socket
 * asks the kernel for each sender's credentials (SO_PASSCRED) when creds is
 * true, and is told not to when false, even if systemd passed it with
 * PassCredentials=yes.  Returns the non-blocking, close-on-exec descriptor,
 * or -1 with a message in err. */
int listener_open(const struct listen_conf *lc, bool creds, char *err, size_t errlen);

#endif
