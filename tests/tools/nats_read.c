/*
 * nats_read: read a JetStream stream back, for the tests.
 *
 *   nats_read URLS STREAM           every message, one line each:
 *                                   SUBJECT TAB MSGID TAB PAYLOAD
 *   nats_read URLS STREAM --info    "messages N", "leader NAME", "replicas R",
 *                                   "duplicates_ns D", "subjects S..." lines
 *   nats_read URLS STREAM --create SUBJECT REPLICAS [DUP_MS]
 *                                   make the stream (a file stream)
 *   nats_read URLS STREAM --delete  delete the stream
 *
 * URLS is a comma-separated list of servers.  Messages are read with an
 * ordered push consumer from the first one until as many as the stream
 * held at the start have come.  Exit 0, or 1 with the reason on stderr.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

static int die(const char *what, natsStatus s)
{
    natsStatus ls;
    const char *t = nats_GetLastError(&ls);
    fprintf(stderr, "nats_read: %s: %s%s%s\n", what, natsStatus_GetText(s), t ? ": " : "",
            t ? t : "");
    return 1;
}

/* Released by main() whatever run() returned (clean under LeakSanitizer). */
static natsConnection *nc;
static natsOptions *o;
static jsCtx *js;
static natsSubscription *sub;

static int run(int argc, char **argv)
{
    jsOptions jo;
    natsStatus s = natsOptions_Create(&o);
    /* Split URLS on commas for natsOptions_SetServers. */
    const char *urls[16];
    int nurls = 0;
    for (char *u = strtok(argv[1], ","); u != NULL && nurls < 16; u = strtok(NULL, ","))
        urls[nurls++] = u;
    if (s == NATS_OK)
        s = natsOptions_SetServers(o, urls, nurls);
    if (s == NATS_OK)
        s = natsConnection_Connect(&nc, o);
    if (s != NATS_OK)
        return die("connect", s);
    jsOptions_Init(&jo);
    jo.Wait = 10000;
    if ((s = natsConnection_JetStream(&js, nc, &jo)) != NATS_OK)
        return die("jetstream", s);
    jsErrCode je = 0;
    jsStreamInfo *si = NULL;
    if (argc >= 6 && strcmp(argv[3], "--create") == 0) {
        jsStreamConfig c;
        jsStreamConfig_Init(&c);
        const char *subj[1] = {argv[4]};
        c.Name = argv[2];
        c.Subjects = subj;
        c.SubjectsLen = 1;
        c.Storage = js_FileStorage;
        c.Replicas = atoi(argv[5]);
        if (argc >= 7)
            c.Duplicates = (int64_t)atoll(argv[6]) * 1000000;
        if ((s = js_AddStream(&si, js, &c, NULL, &je)) != NATS_OK)
            return die("add stream", s);
        jsStreamInfo_Destroy(si);
        return 0;
    }
    if (argc >= 4 && strcmp(argv[3], "--delete") == 0)
        return (s = js_DeleteStream(js, argv[2], NULL, &je)) != NATS_OK ? die("delete", s) : 0;
    if ((s = js_GetStreamInfo(&si, js, argv[2], NULL, &je)) != NATS_OK)
        return die("stream info", s);
    uint64_t total = si->State.Msgs;
    if (argc >= 4 && strcmp(argv[3], "--info") == 0) {
        printf("messages %" PRIu64 "\n", total);
        printf("leader %s\n", si->Cluster && si->Cluster->Leader ? si->Cluster->Leader : "");
        printf("replicas %" PRId64 "\n", si->Config->Replicas);
        printf("duplicates_ns %" PRId64 "\n", si->Config->Duplicates);
        for (int i = 0; i < si->Config->SubjectsLen; i++)
            printf("subject %s\n", si->Config->Subjects[i]);
        jsStreamInfo_Destroy(si);
        return 0;
    }
    jsStreamInfo_Destroy(si);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = argv[2];
    so.Ordered = true;
    if (total > 0 && (s = js_SubscribeSync(&sub, js, ">", NULL, &so, &je)) != NATS_OK)
        return die("subscribe", s);
    for (uint64_t n = 0; n < total; n++) {
        natsMsg *m = NULL;
        if ((s = natsSubscription_NextMsg(&m, sub, 10000)) != NATS_OK) {
            fprintf(stderr, "nats_read: after %" PRIu64 " of %" PRIu64 " messages\n", n, total);
            return die("next message", s);
        }
        const char *id = "";
        if (natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK)
            id = "";
        printf("%s\t%s\t%.*s\n", natsMsg_GetSubject(m), id, natsMsg_GetDataLength(m),
               natsMsg_GetData(m));
        natsMsg_Destroy(m);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: nats_read URLS STREAM [--info | --create SUBJECT REPLICAS [DUP_MS]]\n");
        return 2;
    }
    int rc = run(argc, argv);
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    if (nc != NULL)
        natsConnection_Close(nc);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    nats_CloseAndWait(2000);
    return rc;
}
