/*
 * syslog_client: log through glibc's syslog(3), which writes to /dev/log.
 *
 * Usage: syslog_client TAG COUNT TEXT
 * Sends COUNT messages "TEXT I" (I from 0) at local2.err with LOG_PID, then
 * prints its pid on stdout so that the test can compare it with the pid
 * the daemon records.  The test bind-mounts the daemon's socket over
 * /dev/log in a private mount namespace before running it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: syslog_client TAG COUNT TEXT\n");
        return 2;
    }
    int count = atoi(argv[2]);
    openlog(argv[1], LOG_PID | LOG_NDELAY, LOG_LOCAL2);
    for (int i = 0; i < count; i++)
        syslog(LOG_ERR, "%s %d", argv[3], i);
    closelog();
    printf("%d\n", (int)getpid());
    return 0;
}
