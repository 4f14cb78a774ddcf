/*
 * floor: the NATS benchmark's floor (bench/nats/run.py).  One thread
 * publishes N messages to SUBJECT with nats.c's async JetStream publish
 * (MaxPending as lograild's default window), each with a Nats-Msg-Id of
 * the shape lograild sends (32 hex digits, '-', a growing position), and
 * waits until every PubAck is back.
 *
 *   floor URLS SUBJECT N SIZE|@FILE [MAX_PENDING]
 *
 * SIZE: every message is SIZE bytes of 'x'.  @FILE: the messages are the
 * lines of FILE (without their newlines), in turn: run.py passes the
 * records as lograild formats them, so that both publish the same bytes.
 *
 * Prints "elapsed_s=T acked=N errors=E" and exits 0 when none failed.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#include <nats/nats.h>

static atomic_long acked, errors;

static void on_ack(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae, void *c)
{
    (void)js, (void)pae, (void)c;
    if (pa != NULL)
        atomic_fetch_add(&acked, 1);
    else
        atomic_fetch_add(&errors, 1);
    natsMsg_Destroy(m);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: floor URLS SUBJECT N SIZE|@FILE [MAX_PENDING]\n");
        return 2;
    }
    long n = atol(argv[3]);
    char **lines = NULL;
    size_t *lens = NULL, nlines = 0;
    if (argv[4][0] == '@') {
        FILE *f = fopen(argv[4] + 1, "r");
        if (f == NULL) {
            perror(argv[4] + 1);
            return 2;
        }
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while ((len = getline(&line, &cap, f)) > 0) {
            if (line[len - 1] == '\n')
                line[--len] = '\0';
            if (len == 0)
                continue;
            lines = realloc(lines, (nlines + 1) * sizeof(*lines));
            lens = realloc(lens, (nlines + 1) * sizeof(*lens));
            if (lines == NULL || lens == NULL || (lines[nlines] = strdup(line)) == NULL) {
                fprintf(stderr, "floor: out of memory\n");
                return 2;
            }
            lens[nlines++] = (size_t)len;
        }
        free(line);
        fclose(f);
        if (nlines == 0) {
            fprintf(stderr, "floor: %s has no lines\n", argv[4] + 1);
            return 2;
        }
    } else {
        long size = atol(argv[4]);
        nlines = 1;
        lines = malloc(sizeof(*lines));
        lens = malloc(sizeof(*lens));
        if (lines == NULL || lens == NULL || (lines[0] = malloc((size_t)size)) == NULL)
            return 2;
        memset(lines[0], 'x', (size_t)size);
        lens[0] = (size_t)size;
    }
    const char *urls[16];
    int nu = 0;
    for (char *u = strtok(argv[1], ","); u != NULL && nu < 16; u = strtok(NULL, ","))
        urls[nu++] = u;
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = natsOptions_SetServers(o, urls, nu);
    if (s == NATS_OK)
        s = natsConnection_Connect(&nc, o);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = argc > 5 ? atol(argv[5]) : 4096;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.StallWait = 60000; /* wait for room rather than fail */
    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, &jo);
    if (s != NATS_OK) {
        fprintf(stderr, "floor: %s\n", natsStatus_GetText(s));
        return 1;
    }
    double t0 = now_s();
    unsigned long long pos = 0;
    for (long i = 0; i < n && s == NATS_OK; i++) {
        natsMsg *m = NULL;
        char id[80];
        size_t k = (size_t)i % nlines;
        snprintf(id, sizeof(id), "0123456789abcdef0123456789abcdef-%llu", pos);
        pos += lens[k] + 8; /* about a spool frame's length */
        s = natsMsg_Create(&m, argv[2], NULL, lines[k], (int)lens[k]);
        if (s == NATS_OK)
            s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
        if (s == NATS_OK)
            s = js_PublishMsgAsync(js, &m, NULL);
        natsMsg_Destroy(m);
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 120000;
    if (s == NATS_OK)
        s = js_PublishAsyncComplete(js, &po);
    double t = now_s() - t0;
    if (s != NATS_OK)
        fprintf(stderr, "floor: %s\n", natsStatus_GetText(s));
    printf("elapsed_s=%.3f acked=%ld errors=%ld\n", t, atomic_load(&acked), atomic_load(&errors));
    for (size_t k = 0; k < nlines; k++)
        free(lines[k]);
    free(lines);
    free(lens);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    nats_Close();
    return s == NATS_OK && atomic_load(&errors) == 0 ? 0 : 1;
}
