/*
 * activation: sockets passed by systemd (socket activation, LISTEN_FDS).
 *
 * systemd hands over listening sockets as descriptors 3, 4, ...; we match
 * each to a `listen` entry by its path and type.  A listener whose socket
 * was passed uses it as it is (systemd made it, with its SocketMode=, and
 * keeps its file: we never unlink it); the others are bound by lograild.
 * Main thread, at start-up.
 */
#ifndef LOGRAIL_ACTIVATION_H
#define LOGRAIL_ACTIVATION_H

#include <stdbool.h>

/* Read LISTEN_PID/LISTEN_FDS (when meant for us) and unset them.  Returns
 * the number of sockets passed. */
int activation_init(void);

/* The passed socket bound to path, of type SOCK_STREAM or SOCK_DGRAM: its
 * descriptor, taken (once).  -1 when none was passed; -2 when one was, but
 * of the other type. */
int activation_take(const char *path, int socktype);

/* The passed network socket (AF_INET or AF_INET6) of socktype bound to sa's
 * address and port: its descriptor, taken (once).  A wildcard address
 * (0.0.0.0, ::) matches either wildcard, since systemd's ListenStream=601
 * makes a [::]:601 socket that also takes IPv4.  -1 when none was passed;
 * -2 when one was, but of the other type. */
struct sockaddr;
int activation_take_inet(const struct sockaddr *sa, int socktype);

/* Was the socket at path passed by systemd? */
bool activation_adopted(const char *path);

/* Close what no listen entry took, saying so.  Returns how many. */
int activation_close_unused(void);

#endif
