/*
 * lograilctl: talk to lograild's control socket.
 *
 *   lograilctl [-s SOCKET] stats [--format text|prometheus] | reopen | rotate | ping
 *
 * Sends one command line, prints the reply.  Exit codes: 0 done; 1 the
 * daemon answered with an error; 2 usage error; 3 cannot reach the daemon.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/lograil/control.sock"

static void usage(FILE *out)
{
    fprintf(out, "Usage: lograilctl [-s SOCKET] COMMAND\n"
                 "\n"
                 "Commands:\n"
                 "  stats [--format text|prometheus]  print every counter\n"
                 "  reopen                            close and reopen the output files\n"
                 "  rotate                            rotate the output files now\n"
                 "  ping                              check that lograild answers\n"
                 "\n"
                 "  -s, --socket SOCKET  control socket (default " DEFAULT_SOCKET ")\n"
                 "  -h, --help           this help\n"
                 "\n"
                 "Exit codes: 0 done; 1 lograild answered with an error; 2 usage error;\n"
                 "3 lograild cannot be reached.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},
        {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *sock = DEFAULT_SOCKET;
    const char *format = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "s:f:h", opts, NULL)) != -1) {
        switch (opt) {
        case 's': sock = optarg; break;
        case 'f': format = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[optind];
    char line[128];
    if (strcmp(cmd, "stats") == 0) {
        if (format != NULL && strcmp(format, "text") != 0 && strcmp(format, "prometheus") != 0) {
            fprintf(stderr, "lograilctl: --format must be text or prometheus\n");
            return 2;
        }
        snprintf(line, sizeof(line), "stats %s\n", format ? format : "text");
    } else if (strcmp(cmd, "reopen") == 0 || strcmp(cmd, "rotate") == 0 ||
               strcmp(cmd, "ping") == 0) {
        if (format != NULL) {
            fprintf(stderr, "lograilctl: --format goes with stats\n");
            return 2;
        }
        snprintf(line, sizeof(line), "%s\n", cmd);
    } else {
        fprintf(stderr, "lograilctl: unknown command \"%s\"\n", cmd);
        usage(stderr);
        return 2;
    }

    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(sock) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "lograilctl: socket path too long: %s\n", sock);
        return 2;
    }
    strcpy(sa.sun_path, sock);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "lograilctl: cannot connect to %s: %s (is lograild running?)\n", sock,
                strerror(errno));
        return 3;
    }
    size_t len = strlen(line);
    if (write(fd, line, len) != (ssize_t)len) {
        fprintf(stderr, "lograilctl: %s: %s\n", sock, strerror(errno));
        return 3;
    }
    shutdown(fd, SHUT_WR);
    char buf[65536];
    ssize_t n;
    int code = 0;
    bool first = true;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        if (first && n >= 6 && memcmp(buf, "error:", 6) == 0)
            code = 1;
        first = false;
        fwrite(buf, 1, (size_t)n, code ? stderr : stdout);
    }
    if (n < 0) {
        fprintf(stderr, "lograilctl: %s: %s\n", sock, strerror(errno));
        return 3;
    }
    if (first) {
        fprintf(stderr, "lograilctl: %s closed without an answer\n", sock);
        return 3;
    }
    close(fd);
    return code;
}
