/*
 * control: the control socket.  A client (lograilctl) connects, sends one
 * command line, reads the reply until the daemon closes the connection.
 * Served on the main thread's libuv loop; the handler runs there too.
 */
#ifndef LOGRAIL_CONTROL_H
#define LOGRAIL_CONTROL_H

#include <stddef.h>
#include <uv.h>

#include "buf.h"

/* Handle one command (a line without its newline); append the reply. */
typedef void (*control_fn)(void *arg, const char *cmd, struct buf *reply);

struct control;

/* Listen on path (a stale socket file is replaced, a live one refused).
 * NULL with a message in err on failure. */
struct control *control_open(uv_loop_t *loop, const char *path, unsigned mode, control_fn fn,
                             void *arg, char *err, size_t errlen);

/* Stop listening, remove the socket file; clients still being answered
 * are closed.  The loop must run once more for the handles to close. */
void control_close(struct control *c);

#endif
