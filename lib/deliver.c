#include "deliver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The queue's byte budget is spent: the caller holds its records back as
 * on a full channel.  The writer's credit that makes room again calls the
 * budget's wake function, and the producer retries its parked records.
 * While stopping, nothing waits: the writer is draining. */
static bool over_budget(struct deliver *d)
{
    return !d->stopping && budget_over(d->budget) && budget_wait(d->budget);
}

/* Send one record the channel's way (blocking or not), charging it to the
 * budget first: once sent it is the writer's, who may credit it at once. */
static int send_one(struct deliver *d, struct record *r, bool block)
{
    size_t bytes = record_footprint(r);
    budget_charge(d->budget, bytes);
    int rc = block ? chan_send(d->tx, &r) : chan_try_send(d->tx, &r);
    if (rc != CHAN_OK)
        budget_credit(d->budget, bytes);
    return rc;
}

static int park_push(struct deliver_park *p, struct record *r)
{
    if (p->len == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 16;
        struct record **nq = malloc(ncap * sizeof(*nq));
        if (nq == NULL)
            return -ENOMEM;
        for (size_t i = 0; i < p->len; i++)
            nq[i] = p->q[(p->head + i) % p->cap];
        free(p->q);
        p->q = nq;
        p->cap = ncap;
        p->head = 0;
    }
    p->q[(p->head + p->len) % p->cap] = r;
    p->len++;
    return 0;
}

void deliver_park_free(struct deliver_park *p)
{
    for (size_t i = 0; i < p->len; i++)
        record_free(p->q[(p->head + i) % p->cap]);
    free(p->q);
    memset(p, 0, sizeof(*p));
}

bool deliver_park_flush(struct deliver *d, struct deliver_park *p, bool block)
{
    while (p->len > 0) {
        struct record *r = p->q[p->head];
        if (!block && over_budget(d))
            return false;
        int rc = send_one(d, r, block);
        if (rc == CHAN_FULL)
            return false;
        if (rc == CHAN_OK)
            d->tally.records++;
        else {
            d->tally.lost++;
            record_free(r);
        }
        p->head = (p->head + 1) % p->cap;
        p->len--;
    }
    return true;
}

void deliver_flush(struct deliver *d, struct deliver_park *p, bool drop)
{
    size_t n = d->n_batch, sent = 0;
    if (n == 0)
        return;
    d->n_batch = 0;
    int rc = CHAN_FULL;
    if (!over_budget(d)) {
        /* Charged before the send (the writer may credit at once), the
         * part the channel did not take credited back after. */
        size_t bytes = 0;
        for (size_t i = 0; i < n; i++)
            bytes += record_footprint(d->batch[i]);
        budget_charge(d->budget, bytes);
        rc = chan_try_send_many(d->tx, d->batch, n, &sent);
        if (sent < n) {
            size_t back = 0;
            for (size_t i = sent; i < n; i++)
                back += record_footprint(d->batch[i]);
            budget_credit(d->budget, back);
        }
    }
    d->tally.records += sent;
    for (size_t i = sent; i < n; i++) {
        struct record *r = d->batch[i];
        if (rc == CHAN_FULL && drop) {
            d->tally.dropped++;
            record_free(r);
        } else if (rc != CHAN_FULL || park_push(p, r) != 0) {
            d->tally.lost++;
            record_free(r);
        }
    }
}

void deliver_record(struct deliver *d, struct deliver_park *p, bool drop, struct record *r)
{
    if (d->stopping) {
        /* Stopping: the writer still receives, so wait for room. */
        deliver_flush(d, p, drop);
        if (p->len > 0)
            deliver_park_flush(d, p, true);
        int rc = send_one(d, r, !drop);
        if (rc == CHAN_OK) {
            d->tally.records++;
        } else {
            if (rc == CHAN_FULL)
                d->tally.dropped++;
            else
                d->tally.lost++;
            record_free(r);
        }
        return;
    }
    if (p->len > 0) {
        /* Behind records already parked: park too, to keep the order. */
        if (drop) {
            d->tally.dropped++;
            record_free(r);
        } else if (park_push(p, r) != 0) {
            d->tally.lost++;
            record_free(r);
        }
        return;
    }
    d->batch[d->n_batch++] = r;
    if (d->n_batch == DELIVER_BATCH)
        deliver_flush(d, p, drop);
}
