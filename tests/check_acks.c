/* Check suite for daemon/acks.c: the writer's "written up to here" mark. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "acks.h"
#include "record.h"

static int woken;

static void wake_cb(uv_async_t *h)
{
    (void)h;
    woken++;
}

static struct record *rec(uint32_t ack)
{
    struct record *r = record_new("x", 1);
    ck_assert_ptr_nonnull(r);
    r->ack = ack;
    return r;
}

/* Run the loop until the async's callback ran (or nothing is pending). */
static void spin(uv_loop_t *loop)
{
    for (int i = 0; i < 10; i++)
        uv_run(loop, UV_RUN_NOWAIT);
}

START_TEST(counts_per_slot_and_wakes_only_waiters)
{
    uv_loop_t loop;
    uv_async_t a;
    uint32_t id1, id2;
    static struct acks_batch b;
    uv_loop_init(&loop);
    uv_async_init(&loop, &a, wake_cb);
    ck_assert_int_eq(acks_open(&a, &id1), 0);
    ck_assert_int_eq(acks_open(&a, &id2), 0);
    ck_assert_uint_ne(id1, id2);
    ck_assert_uint_ge(id1, 1);
    ck_assert_uint_le(id1, ACKS_MAX);

    struct record *r0 = rec(0), *r1 = rec(id1), *r2 = rec(id2);
    acks_note(&b, r0, true); /* no slot: not counted */
    for (int i = 0; i < 3; i++)
        acks_note(&b, r1, true);
    acks_note(&b, r2, true);
    ck_assert_uint_eq(b.n, 2);
    /* Not published yet: nothing written. */
    ck_assert_uint_eq(acks_written(id1), 0);
    woken = 0;
    acks_publish(&b);
    ck_assert_uint_eq(b.n, 0);
    ck_assert_uint_eq(acks_written(id1), 3);
    ck_assert_uint_eq(acks_written(id2), 1);
    spin(&loop);
    ck_assert_int_eq(woken, 0); /* nobody said it waits */

    acks_wait(id1, true);
    acks_note(&b, r1, true);
    acks_publish(&b);
    spin(&loop);
    ck_assert_int_eq(woken, 1);
    ck_assert_uint_eq(acks_written(id1), 4);
    ck_assert(!acks_failed(id1));

    acks_note(&b, r2, false);
    acks_publish(&b);
    ck_assert(acks_failed(id2));
    ck_assert_uint_eq(acks_written(id2), 2);

    acks_close(id1, 4);
    acks_close(id2, 2);
    record_free(r0);
    record_free(r1);
    record_free(r2);
    uv_close((uv_handle_t *)&a, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}
END_TEST

/* A slot closed with records still on their way is not reused until the
 * writer has counted them, and then it is free again. */
START_TEST(closed_slot_waits_for_its_records)
{
    static struct acks_batch b;
    uint32_t ids[ACKS_MAX], extra;
    for (size_t i = 0; i < ACKS_MAX; i++)
        ck_assert_int_eq(acks_open(NULL, &ids[i]), 0);
    ck_assert_int_eq(acks_open(NULL, &extra), -EAGAIN);
    /* All but ids[0] close with nothing outstanding: free at once. */
    for (size_t i = 1; i < ACKS_MAX; i++)
        acks_close(ids[i], 0);
    acks_close(ids[0], 2);
    for (size_t i = 1; i < ACKS_MAX; i++) {
        uint32_t id;
        ck_assert_int_eq(acks_open(NULL, &id), 0);
        ck_assert_uint_ne(id, ids[0]);
    }
    ck_assert_int_eq(acks_open(NULL, &extra), -EAGAIN);
    struct record *r = rec(ids[0]);
    acks_note(&b, r, true);
    acks_publish(&b);
    ck_assert_int_eq(acks_open(NULL, &extra), -EAGAIN); /* one still on its way */
    acks_note(&b, r, true);
    acks_publish(&b);
    ck_assert_int_eq(acks_open(NULL, &extra), 0);
    ck_assert_uint_eq(extra, ids[0]);
    ck_assert_uint_eq(acks_written(extra), 0); /* a fresh count */
    record_free(r);
}
END_TEST

static Suite *acks_suite(void)
{
    Suite *s = suite_create("acks");
    TCase *t = tcase_create("mark");
    tcase_add_test(t, counts_per_slot_and_wakes_only_waiters);
    tcase_add_test(t, closed_slot_waits_for_its_records);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(acks_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
