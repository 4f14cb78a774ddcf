/*
 * notify: the sd_notify(3) protocol, without libsystemd.
 *
 * When systemd starts lograild with Type=notify it sets NOTIFY_SOCKET; we
 * send "READY=1" once every socket listens and every output is open,
 * "STATUS=..." lines, "STOPPING=1", and "WATCHDOG=1" pings.  Without
 * NOTIFY_SOCKET every call does nothing.  Main thread only.
 */
#ifndef LOGRAIL_NOTIFY_H
#define LOGRAIL_NOTIFY_H

#include <stdint.h>

/* Read NOTIFY_SOCKET and WATCHDOG_USEC; unset them, so that children
 * (there are none today) do not inherit them.  0, or -errno when
 * NOTIFY_SOCKET is set but unusable. */
int notify_init(void);

/* Send one message ("READY=1", "STATUS=..."); 0 or -errno. */
int notify_send(const char *msg);

/* The watchdog interval systemd asked for, in microseconds; 0: none. */
uint64_t notify_watchdog_usec(void);

void notify_close(void);

#endif
