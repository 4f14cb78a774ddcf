/* Check suite for lib/clock.c and lib/pacer.c: the one clock and the one
 * pacer.  No assertion depends on how fast the machine is: a sleep is
 * checked to last at least its length, never at most. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "clock.h"
#include "pacer.h"

START_TEST(mono_never_goes_back)
{
    uint64_t prev = clock_mono_ns();
    for (int i = 0; i < 100000; i++) {
        uint64_t now = clock_mono_ns();
        ck_assert_uint_ge(now, prev);
        prev = now;
    }
}
END_TEST

START_TEST(ms_and_ns_agree)
{
    uint64_t ns0 = clock_mono_ns();
    uint64_t ms = clock_mono_ms();
    uint64_t ns1 = clock_mono_ns();
    ck_assert_uint_ge(ms, ns0 / 1000000u);
    ck_assert_uint_le(ms, ns1 / 1000000u);
}
END_TEST

START_TEST(wall_is_the_date)
{
    time_t before = time(NULL);
    int64_t us = clock_wall_us();
    time_t after = time(NULL);
    /* time() truncates to the second, and may lag the fine clock by one
     * tick of its own; a second of margin either side. */
    ck_assert_int_ge(us / 1000000, (int64_t)before - 1);
    ck_assert_int_le(us / 1000000, (int64_t)after + 1);
}
END_TEST

START_TEST(timespec_split)
{
    struct timespec ts = clock_timespec(UINT64_C(12345678901));
    ck_assert_int_eq(ts.tv_sec, 12);
    ck_assert_int_eq(ts.tv_nsec, 345678901);
    ts = clock_timespec(999999999);
    ck_assert_int_eq(ts.tv_sec, 0);
    ck_assert_int_eq(ts.tv_nsec, 999999999);
    ts = clock_timespec(0);
    ck_assert_int_eq(ts.tv_sec, 0);
    ck_assert_int_eq(ts.tv_nsec, 0);
}
END_TEST

START_TEST(sleep_lasts_at_least)
{
    uint64_t t0 = clock_mono_ns();
    clock_sleep_ns(2000000);
    uint64_t t1 = clock_mono_ns();
    ck_assert_uint_ge(t1 - t0, 2000000);
    clock_sleep_ms(3);
    ck_assert_uint_ge(clock_mono_ns() - t1, 3000000);
}
END_TEST

/* The rule, on a clock the test chooses. */
START_TEST(pacer_rule)
{
    struct pacer p;
    pacer_init(&p, 1000, PACER_BELOW);
    p.last_ns = 1000000;
    /* Nothing done: no pause. */
    ck_assert(!pacer_wants_pause(&p, 0, 1000000));
    /* A few items, one per 1000 ns or faster: pause. */
    ck_assert(pacer_wants_pause(&p, 1, 1000000));
    ck_assert(pacer_wants_pause(&p, 1, 1001000));
    ck_assert(pacer_wants_pause(&p, 10, 1010000));
    ck_assert(pacer_wants_pause(&p, PACER_BELOW - 1, 1000000 + (PACER_BELOW - 1) * 1000));
    /* Slower than one per pause: no pause. */
    ck_assert(!pacer_wants_pause(&p, 1, 1001001));
    ck_assert(!pacer_wants_pause(&p, 10, 1010001));
    /* A full turn: no pause, however fast. */
    ck_assert(!pacer_wants_pause(&p, PACER_BELOW, 1000000));
    ck_assert(!pacer_wants_pause(&p, 1000, 1000000));
    /* A clock behind last (cannot happen with one monotonic clock) counts
     * as no time passed. */
    ck_assert(pacer_wants_pause(&p, 1, 999000));
    /* A smaller bound, as the writer sets for a small queue. */
    pacer_init(&p, 1000, 2);
    p.last_ns = 0;
    ck_assert(pacer_wants_pause(&p, 1, 0));
    ck_assert(!pacer_wants_pause(&p, 2, 0));
    pacer_init(&p, 1000, 0);
    ck_assert(!pacer_wants_pause(&p, 1, p.last_ns));
}
END_TEST

/* pacer_turn pauses when the rule says so and the caller allows it, and
 * the pause is at least pause_ns; otherwise it only starts the next turn. */
START_TEST(pacer_turn_pauses)
{
    const uint64_t pause = 5000000; /* 5 ms: a single item is "often" */
    struct pacer p;
    pacer_thread_init();
    pacer_init(&p, pause, PACER_BELOW);
    /* The previous turn "ends" in the future, so that however long this
     * thread is kept off the processor, no time counts as passed. */
    uint64_t t0 = clock_mono_ns();
    p.last_ns = t0 + UINT64_C(3600) * 1000000000u;
    ck_assert(pacer_turn(&p, 1, true));
    ck_assert_uint_ge(p.last_ns - t0, pause);
    uint64_t t1 = p.last_ns;
    ck_assert(!pacer_turn(&p, 1, false));
    ck_assert_uint_ge(p.last_ns, t1);
    ck_assert(!pacer_turn(&p, 0, true));
    ck_assert(!pacer_turn(&p, PACER_BELOW, true));
    /* Long after the last turn, one item is not "often". */
    p.last_ns = clock_mono_ns() - 10 * pause;
    ck_assert(!pacer_turn(&p, 1, true));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("clock");
    TCase *tc = tcase_create("clock");
    tcase_add_test(tc, mono_never_goes_back);
    tcase_add_test(tc, ms_and_ns_agree);
    tcase_add_test(tc, wall_is_the_date);
    tcase_add_test(tc, timespec_split);
    tcase_add_test(tc, sleep_lasts_at_least);
    tcase_add_test(tc, pacer_rule);
    tcase_add_test(tc, pacer_turn_pauses);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
