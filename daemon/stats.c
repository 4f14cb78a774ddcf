#include "stats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int stats_init(struct stats *s, size_t n_listen, size_t n_outputs)
{
    memset(s, 0, sizeof(*s));
    s->listen = calloc(n_listen ? n_listen : 1, sizeof(*s->listen));
    s->outputs = calloc(n_outputs ? n_outputs : 1, sizeof(*s->outputs));
    if (s->listen == NULL || s->outputs == NULL) {
        stats_free(s);
        return -ENOMEM;
    }
    s->n_listen = n_listen;
    s->n_outputs = n_outputs;
    return 0;
}

void stats_reset(struct stats *s)
{
    /* Gauges are not counters: keep the number of open connections. */
    for (size_t i = 0; i < s->n_listen; i++) {
        uint64_t open = counter_get(&s->listen[i].open);
        memset(&s->listen[i], 0, sizeof(s->listen[i]));
        atomic_store(&s->listen[i].open, open);
    }
    memset(s->outputs, 0, s->n_outputs * sizeof(*s->outputs));
}

void stats_free(struct stats *s)
{
    free(s->listen);
    free(s->outputs);
    memset(s, 0, sizeof(*s));
}
