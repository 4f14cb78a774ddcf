/*
 * floor: the NATS benchmark's floor (bench/nats/run.py).  One thread
 * publishes N messages of SIZE bytes to SUBJECT with nats.c's async
 * JetStream publish (MaxPending as lograild's default window), each with a
 * Nats-Msg-Id as lograild sends, and waits until every PubAck is back.
 *
 *   floor URLS SUBJECT N SIZE [MAX_PENDING]
 *
 * Prints "elapsed_s=T acked=N errors=E" and exits 0 when none failed.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
        fprintf(stderr, "usage: floor URLS SUBJECT N SIZE [MAX_PENDING]\n");
        return 2;
    }
    long n = atol(argv[3]), size = atol(argv[4]);
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
    char *payload = malloc((size_t)size);
    memset(payload, 'x', (size_t)size);
    double t0 = now_s();
    for (long i = 0; i < n && s == NATS_OK; i++) {
        natsMsg *m = NULL;
        char id[32];
        snprintf(id, sizeof(id), "floor-%ld", i);
        s = natsMsg_Create(&m, argv[2], NULL, payload, (int)size);
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
    free(payload);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    nats_Close();
    return s == NATS_OK && atomic_load(&errors) == 0 ? 0 : 1;
}
