/* Check suite for lib/deliver.c: the batch, the parking and the byte
 * budget between an ingest loop and the writer. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"

struct fix {
    chan_tx *tx;
    chan_rx *rx;
    struct budget b;
    struct deliver d;
    struct deliver_park p;
};

static void fix_init(struct fix *f, size_t capacity, size_t limit)
{
    memset(f, 0, sizeof(*f));
    ck_assert_int_eq(chan_bounded(capacity, sizeof(struct record *), &f->tx, &f->rx), 0);
    budget_init(&f->b, limit);
    f->d.tx = f->tx;
    f->d.budget = &f->b;
}

static void fix_free(struct fix *f)
{
    deliver_park_free(&f->p);
    chan_sender_drop(f->tx);
    struct record *r;
    while (chan_try_recv(f->rx, &r) == CHAN_OK)
        record_free(r);
    chan_receiver_drop(f->rx);
}

static struct record *mk(int i)
{
    char s[32];
    int n = snprintf(s, sizeof(s), "message %d", i);
    struct record *r = record_new(s, (size_t)n);
    ck_assert_ptr_nonnull(r);
    return r;
}

/* Receive one record, as the writer does: check its text, credit it. */
static void take(struct fix *f, int i)
{
    struct record *r = NULL;
    ck_assert_int_eq(chan_try_recv(f->rx, &r), CHAN_OK);
    char s[32];
    int n = snprintf(s, sizeof(s), "message %d", i);
    ck_assert_uint_eq(r->len, (size_t)n);
    ck_assert(memcmp(r->data, s, (size_t)n) == 0);
    budget_credit(&f->b, record_footprint(r));
    record_free(r);
}

START_TEST(charged_then_credited)
{
    struct fix f;
    fix_init(&f, 16, 0);
    struct record *r = mk(0);
    size_t fp = record_footprint(r);
    deliver_record(&f.d, &f.p, false, r);
    ck_assert_uint_eq(budget_used(&f.b), 0); /* waits in the batch */
    deliver_flush(&f.d, &f.p, false);
    ck_assert_uint_eq(budget_used(&f.b), fp);
    ck_assert_uint_eq(f.d.tally.records, 1);
    take(&f, 0);
    ck_assert_uint_eq(budget_used(&f.b), 0);
    fix_free(&f);
}
END_TEST

START_TEST(full_channel_parks_in_order_and_credits_back)
{
    struct fix f;
    fix_init(&f, 3, 0);
    size_t fp = 0;
    for (int i = 0; i < 10; i++) {
        struct record *r = mk(i);
        if (i < 3)
            fp += record_footprint(r);
        deliver_record(&f.d, &f.p, false, r);
    }
    deliver_flush(&f.d, &f.p, false);
    ck_assert_uint_eq(f.d.tally.records, 3);
    ck_assert_uint_eq(f.p.len, 7);
    /* What the channel did not take was credited back at once. */
    ck_assert_uint_eq(budget_used(&f.b), fp);
    /* A record made while others are parked parks behind them. */
    deliver_record(&f.d, &f.p, false, mk(10));
    ck_assert_uint_eq(f.p.len, 8);
    ck_assert_uint_eq(f.d.n_batch, 0);
    ck_assert(!deliver_park_flush(&f.d, &f.p, false));
    int next = 0;
    while (next < 11) {
        take(&f, next++);
        deliver_park_flush(&f.d, &f.p, false);
    }
    ck_assert_uint_eq(f.p.len, 0);
    ck_assert_uint_eq(f.d.tally.records, 11);
    ck_assert_uint_eq(f.d.tally.dropped + f.d.tally.lost, 0);
    ck_assert_uint_eq(budget_used(&f.b), 0);
    fix_free(&f);
}
END_TEST

START_TEST(drop_policy_drops_and_counts)
{
    struct fix f;
    fix_init(&f, 2, 0);
    for (int i = 0; i < 5; i++)
        deliver_record(&f.d, &f.p, true, mk(i));
    deliver_flush(&f.d, &f.p, true);
    ck_assert_uint_eq(f.d.tally.records, 2);
    ck_assert_uint_eq(f.d.tally.dropped, 3);
    ck_assert_uint_eq(f.p.len, 0);
    take(&f, 0);
    take(&f, 1);
    ck_assert_uint_eq(budget_used(&f.b), 0);
    fix_free(&f);
}
END_TEST

START_TEST(spent_budget_parks)
{
    struct fix f;
    fix_init(&f, 64, 1);
    deliver_record(&f.d, &f.p, false, mk(0));
    deliver_flush(&f.d, &f.p, false);
    ck_assert_uint_eq(f.d.tally.records, 1); /* soft: the first goes */
    ck_assert(budget_over(&f.b));
    deliver_record(&f.d, &f.p, false, mk(1));
    deliver_flush(&f.d, &f.p, false);
    ck_assert_uint_eq(f.p.len, 1);           /* held back, though the channel has room */
    ck_assert(!deliver_park_flush(&f.d, &f.p, false));
    take(&f, 0);                             /* credit: under the limit again */
    ck_assert(deliver_park_flush(&f.d, &f.p, false));
    take(&f, 1);
    fix_free(&f);
}
END_TEST

START_TEST(stopping_block_sends_drop_drops)
{
    struct fix f;
    fix_init(&f, 1, 1);
    f.d.stopping = true;
    deliver_record(&f.d, &f.p, false, mk(0)); /* sent at once, budget ignored */
    ck_assert_uint_eq(f.d.tally.records, 1);
    deliver_record(&f.d, &f.p, true, mk(1)); /* drop: full channel, dropped */
    ck_assert_uint_eq(f.d.tally.dropped, 1);
    take(&f, 0);
    fix_free(&f);
}
END_TEST

START_TEST(batch_sent_when_full)
{
    struct fix f;
    fix_init(&f, 1024, 0);
    for (int i = 0; i < DELIVER_BATCH; i++)
        deliver_record(&f.d, &f.p, false, mk(i));
    ck_assert_uint_eq(f.d.n_batch, 0);
    ck_assert_uint_eq(f.d.tally.records, DELIVER_BATCH);
    for (int i = 0; i < DELIVER_BATCH; i++)
        take(&f, i);
    fix_free(&f);
}
END_TEST

START_TEST(receiver_gone_is_lost)
{
    struct fix f;
    fix_init(&f, 4, 0);
    chan_receiver_drop(f.rx);
    deliver_record(&f.d, &f.p, false, mk(0));
    deliver_flush(&f.d, &f.p, false);
    ck_assert_uint_eq(f.d.tally.lost, 1);
    ck_assert_uint_eq(f.p.len, 0);
    ck_assert_uint_eq(budget_used(&f.b), 0);
    chan_sender_drop(f.tx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("deliver");
    TCase *tc = tcase_create("deliver");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, charged_then_credited);
    tcase_add_test(tc, full_channel_parks_in_order_and_credits_back);
    tcase_add_test(tc, drop_policy_drops_and_counts);
    tcase_add_test(tc, spent_budget_parks);
    tcase_add_test(tc, stopping_block_sends_drop_drops);
    tcase_add_test(tc, batch_sent_when_full);
    tcase_add_test(tc, receiver_gone_is_lost);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
