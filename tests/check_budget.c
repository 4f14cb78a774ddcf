/* Check suite for lib/budget.c: the byte bound of the queue. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "budget.h"

static int wakes;

static void count_wake(void *arg)
{
    (void)arg;
    wakes++;
}

START_TEST(limit_and_over)
{
    struct budget b;
    budget_init(&b, 100);
    ck_assert(!budget_over(&b));
    budget_charge(&b, 99);
    ck_assert(!budget_over(&b));
    budget_charge(&b, 1);
    ck_assert(budget_over(&b)); /* at the limit is over */
    ck_assert_uint_eq(budget_used(&b), 100);
    ck_assert_uint_eq(budget_peak(&b), 100);
    budget_credit(&b, 1);
    ck_assert(!budget_over(&b));
    budget_credit(&b, 99);
    ck_assert_uint_eq(budget_used(&b), 0);
    ck_assert_uint_eq(budget_peak(&b), 100);
}
END_TEST

START_TEST(unlimited)
{
    struct budget b;
    budget_init(&b, 0);
    budget_charge(&b, SIZE_MAX / 2);
    ck_assert(!budget_over(&b));
    ck_assert(!budget_wait(&b));
    budget_credit(&b, SIZE_MAX / 2);
    ck_assert_uint_eq(budget_used(&b), 0);
}
END_TEST

/* The wake function runs once, on the credit that goes under the limit,
 * and only when someone waits. */
START_TEST(wake_once_when_under)
{
    struct budget b;
    budget_init(&b, 100);
    budget_set_wake(&b, count_wake, NULL);
    wakes = 0;

    budget_charge(&b, 150);
    budget_credit(&b, 60); /* 90: under, but nobody waits */
    ck_assert_int_eq(wakes, 0);

    budget_charge(&b, 60); /* 150 */
    ck_assert(budget_wait(&b));
    ck_assert_uint_eq(atomic_load(&b.waits), 1);
    budget_credit(&b, 20); /* 130: still over */
    ck_assert_int_eq(wakes, 0);
    budget_credit(&b, 30); /* 100: still at the limit */
    ck_assert_int_eq(wakes, 0);
    budget_credit(&b, 1); /* 99: under */
    ck_assert_int_eq(wakes, 1);
    budget_credit(&b, 99); /* 0: nobody waits any more */
    ck_assert_int_eq(wakes, 1);
}
END_TEST

/* budget_wait() after the room came back says "go on" instead. */
START_TEST(wait_sees_room)
{
    struct budget b;
    budget_init(&b, 100);
    budget_set_wake(&b, count_wake, NULL);
    wakes = 0;
    budget_charge(&b, 50);
    ck_assert(!budget_wait(&b));
    ck_assert_uint_eq(atomic_load(&b.waits), 0);
}
END_TEST

/* Producers that charge, find the budget spent, wait on a condition
 * variable that the wake function signals; one consumer credits.  A lost
 * wake-up leaves a producer asleep for ever: the test's timeout fails it. */
struct stress {
    struct budget b;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t wake_gen;
    _Atomic uint64_t in_flight_items;
    _Atomic int producers_left;
};

static void stress_wake(void *arg)
{
    struct stress *s = arg;
    pthread_mutex_lock(&s->mu);
    s->wake_gen++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

enum { ITEM_BYTES = 10, LIMIT = 64 * ITEM_BYTES };
static int ITEMS = 200000; /* fewer under the sanitizers (see main) */

static void *stress_producer(void *arg)
{
    struct stress *s = arg;
    for (int i = 0; i < ITEMS; i++) {
        while (budget_over(&s->b)) {
            pthread_mutex_lock(&s->mu);
            uint64_t gen = s->wake_gen;
            pthread_mutex_unlock(&s->mu);
            if (!budget_wait(&s->b))
                break;
            pthread_mutex_lock(&s->mu);
            while (s->wake_gen == gen)
                pthread_cond_wait(&s->cv, &s->mu);
            pthread_mutex_unlock(&s->mu);
        }
        budget_charge(&s->b, ITEM_BYTES);
        atomic_fetch_add(&s->in_flight_items, 1);
    }
    atomic_fetch_sub(&s->producers_left, 1);
    return NULL;
}

START_TEST(stress_no_lost_wakeup)
{
    static struct stress s;
    budget_init(&s.b, LIMIT);
    budget_set_wake(&s.b, stress_wake, &s);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    s.wake_gen = 0;
    atomic_store(&s.in_flight_items, 0);
    enum { P = 4 };
    atomic_store(&s.producers_left, P);
    pthread_t t[P];
    for (int i = 0; i < P; i++)
        pthread_create(&t[i], NULL, stress_producer, &s);
    uint64_t taken = 0;
    while (taken < (uint64_t)P * ITEMS) {
        uint64_t n = atomic_exchange(&s.in_flight_items, 0);
        for (uint64_t i = 0; i < n; i++)
            budget_credit(&s.b, ITEM_BYTES);
        taken += n;
    }
    for (int i = 0; i < P; i++)
        pthread_join(t[i], NULL);
    ck_assert_uint_eq(budget_used(&s.b), 0);
    /* Soft limit: at most one item per producer beyond it. */
    ck_assert_uint_le(budget_peak(&s.b), LIMIT + P * ITEM_BYTES);
    ck_assert_uint_gt(atomic_load(&s.b.waits), 0);
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
}
END_TEST

int main(void)
{
    if (getenv("LOGRAIL_SAN") && *getenv("LOGRAIL_SAN"))
        ITEMS = 20000;
    Suite *s = suite_create("budget");
    TCase *tc = tcase_create("budget");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, limit_and_over);
    tcase_add_test(tc, unlimited);
    tcase_add_test(tc, wake_once_when_under);
    tcase_add_test(tc, wait_sees_room);
    tcase_add_test(tc, stress_no_lost_wakeup);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
