/* Check suite for lib/record.c: records and the record pool.  Slabs that
 * are never freed, or freed twice, show under AddressSanitizer (make
 * check-asan), which runs these same tests. */
#include <check.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "record.h"

START_TEST(record_new_defaults)
{
    struct record *r = record_new("hello", 5);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->len, 5);
    ck_assert_uint_eq(r->msg.off, 0);
    ck_assert_uint_eq(r->msg.len, 5);
    ck_assert_int_eq(r->facility, 1);
    ck_assert_int_eq(r->severity, 5);
    ck_assert_ptr_null(r->slab);
    ck_assert_mem_eq(r->data, "hello", 6); /* with its NUL */
    record_free(r);
    record_free(NULL);
    ck_assert_str_eq(record_facility_names[23], "local7");
    ck_assert_ptr_null(record_facility_names[24]);
    ck_assert_str_eq(record_severity_names[7], "debug");
}
END_TEST

/* RECORD_F_PRINTABLE: set exactly when every byte is ' '..'~', whatever
 * the length (under, at and over the 32-byte blocks, and the overlapping
 * last block) and wherever the one byte that is not sits; and the bytes
 * are copied right, the same pass having judged them. */
START_TEST(printable_flag)
{
    static const unsigned char odd[] = {0x00, '\n', 0x1f, 0x7f, 0x80, 0xc3, 0xff};
    struct record_pool p;
    record_pool_init(&p, 0);
    char msg[100];
    for (size_t n = 0; n <= sizeof(msg); n++) {
        for (size_t i = 0; i < n; i++)
            msg[i] = (char)(' ' + (i * 7) % 95); /* ' '..'~' */
        struct record *a = record_new(msg, n), *b = record_pool_new(&p, msg, n);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        ck_assert_msg(a->flags & RECORD_F_PRINTABLE, "length %zu", n);
        ck_assert_msg(b->flags & RECORD_F_PRINTABLE, "length %zu", n);
        ck_assert_mem_eq(a->data, msg, n);
        ck_assert_mem_eq(b->data, msg, n);
        ck_assert_int_eq(a->data[n], '\0');
        record_free(a);
        record_free(b);
        for (size_t at = 0; at < n; at++) {
            for (size_t k = 0; k < sizeof(odd); k++) {
                char save = msg[at];
                msg[at] = (char)odd[k];
                a = record_new(msg, n);
                b = record_pool_new(&p, msg, n);
                ck_assert_ptr_nonnull(a);
                ck_assert_ptr_nonnull(b);
                ck_assert_msg(!(a->flags & RECORD_F_PRINTABLE), "length %zu, 0x%02x at %zu",
                              n, odd[k], at);
                ck_assert_msg(!(b->flags & RECORD_F_PRINTABLE), "length %zu, 0x%02x at %zu",
                              n, odd[k], at);
                ck_assert_mem_eq(a->data, msg, n);
                ck_assert_mem_eq(b->data, msg, n);
                record_free(a);
                record_free(b);
                msg[at] = save;
            }
        }
    }
    record_pool_release(&p);
}
END_TEST

START_TEST(pool_carves_and_frees)
{
    struct record_pool p;
    record_pool_init(&p, 4096);
    struct record *rs[200];
    for (int i = 0; i < 200; i++) {
        char msg[64];
        int n = snprintf(msg, sizeof(msg), "record %d", i);
        rs[i] = record_pool_new(&p, msg, (size_t)n);
        ck_assert_ptr_nonnull(rs[i]);
        ck_assert_ptr_nonnull(rs[i]->slab);
        ck_assert_uint_eq((uintptr_t)rs[i] % 8, 0);
        ck_assert_int_eq(rs[i]->severity, 5);
    }
    /* Several slabs were used; every record is intact. */
    ck_assert_ptr_ne(rs[0]->slab, rs[199]->slab);
    for (int i = 0; i < 200; i++) {
        char msg[64];
        int n = snprintf(msg, sizeof(msg), "record %d", i);
        ck_assert_uint_eq(rs[i]->len, (uint32_t)n);
        ck_assert_mem_eq(rs[i]->data, msg, (size_t)n + 1);
    }
    /* Free half before the pool lets go, half after. */
    for (int i = 0; i < 200; i += 2)
        record_free(rs[i]);
    record_pool_release(&p);
    for (int i = 1; i < 200; i += 2)
        record_free(rs[i]);
}
END_TEST

START_TEST(pool_large_records_are_malloced)
{
    struct record_pool p;
    record_pool_init(&p, 4096);
    char big[2000];
    memset(big, 'b', sizeof(big));
    struct record *r = record_pool_new(&p, big, sizeof(big));
    ck_assert_ptr_nonnull(r);
    ck_assert_ptr_null(r->slab);
    ck_assert_uint_eq(r->len, sizeof(big));
    struct record *s = record_pool_new(&p, "x", 1);
    ck_assert_ptr_nonnull(s->slab);
    record_free(r);
    record_free(s); /* before release: the slab lives on */
    struct record *t = record_pool_new(&p, "y", 1);
    ck_assert_ptr_eq(t->slab, s->slab);
    record_pool_release(&p);
    record_free(t);
    record_pool_release(&p); /* twice is harmless */
}
END_TEST

/* The way the daemon uses it: records carved on one thread, freed on
 * another, through the channel. */
static chan_tx *g_tx;

static void *carver(void *arg)
{
    long n = (long)arg;
    struct record_pool p;
    record_pool_init(&p, 0);
    for (long i = 0; i < n; i++) {
        char msg[128];
        int len = snprintf(msg, sizeof(msg), "%ld", i);
        struct record *r = record_pool_new(&p, msg, (size_t)len + (size_t)(i % 97));
        ck_assert_ptr_nonnull(r);
        r->recv_us = i;
        ck_assert_int_eq(chan_send(g_tx, &r), CHAN_OK);
        if (i % 10007 == 0)
            record_pool_release(&p);
    }
    record_pool_release(&p);
    chan_sender_drop(g_tx);
    return NULL;
}

/* record_free_many(): runs of records from one slab, two pools' runs
 * interleaved, records too big for a slab and NULLs among them, freed in
 * pieces of uneven size.  A run miscounted leaves a slab behind or frees
 * one under records still in use: AddressSanitizer (make check-asan, which
 * runs this) reports either.  What it returns is the pieces' footprint. */
START_TEST(free_many)
{
    enum { N = 3000 };
    struct record_pool a, b;
    record_pool_init(&a, 4096);
    record_pool_init(&b, 4096);
    struct record **rs = calloc(N, sizeof(*rs));
    ck_assert_ptr_nonnull(rs);
    static char big[2000];
    memset(big, 'b', sizeof(big));
    char msg[32];
    for (int i = 0; i < N; i++) {
        if (i % 97 == 0)
            continue;
        if (i % 89 == 0) {
            rs[i] = record_pool_new(&a, big, sizeof(big));
        } else {
            int n = snprintf(msg, sizeof(msg), "%d", i);
            rs[i] = record_pool_new((i / 7) % 2 ? &a : &b, msg, (size_t)n);
        }
        ck_assert_ptr_nonnull(rs[i]);
    }
    /* b lets go of its slab before the frees, a after them. */
    record_pool_release(&b);
    size_t at = 0, piece = 1;
    while (at < N) {
        size_t k = piece < N - at ? piece : N - at;
        size_t want = 0;
        for (size_t j = at; j < at + k; j++)
            want += rs[j] != NULL ? record_footprint(rs[j]) : 0;
        ck_assert_uint_eq(record_free_many(rs + at, k), want);
        at += k;
        piece = piece * 3 % 509 + 1;
        for (size_t j = at; j < N; j++) {
            if (rs[j] == NULL || rs[j]->len == sizeof(big))
                continue;
            int n = snprintf(msg, sizeof(msg), "%zu", j);
            ck_assert_uint_eq(rs[j]->len, (unsigned)n);
            ck_assert_mem_eq(rs[j]->data, msg, (size_t)n);
        }
    }
    ck_assert_uint_eq(record_free_many(rs, 0), 0);
    record_pool_release(&a);
    free(rs);
}
END_TEST

START_TEST(pool_across_threads)
{
    chan_rx *rx;
    ck_assert_int_eq(chan_bounded(256, sizeof(struct record *), &g_tx, &rx), 0);
    long n = getenv("LOGRAIL_SAN") && *getenv("LOGRAIL_SAN") ? 100000 : 1000000;
    pthread_t t;
    pthread_create(&t, NULL, carver, (void *)n);
    struct record *r;
    long next = 0;
    while (chan_recv(rx, &r) == CHAN_OK) {
        if (r->recv_us != next)
            ck_abort_msg("record %ld arrived as %ld", next, (long)r->recv_us);
        char msg[32];
        int len = snprintf(msg, sizeof(msg), "%ld", next);
        if (memcmp(r->data, msg, (size_t)len) != 0)
            ck_abort_msg("record %ld corrupted", next);
        record_free(r);
        next++;
    }
    pthread_join(t, NULL);
    ck_assert_int_eq(next, n);
    chan_receiver_drop(rx);
}
END_TEST

START_TEST(ext_after_message)
{
    struct record_pool pool;
    record_pool_init(&pool, 0);
    struct record *plain = record_pool_new(&pool, "hello", 5);
    struct record *r = record_pool_new_ext(&pool, "hello", 5, "1.2.3.4:5", 9);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(r->len, 5);
    ck_assert_uint_eq(r->msg.len, 5);
    ck_assert_uint_eq(r->ext_len, 9);
    ck_assert(r->flags & RECORD_F_PRINTABLE);
    ck_assert_int_eq(r->data[5], '\0');
    ck_assert(memcmp(r->data + 6, "1.2.3.4:5", 9) == 0);
    /* The budget counts the trusted bytes too. */
    ck_assert_uint_gt(record_footprint(r), record_footprint(plain));
    ck_assert_uint_eq(plain->ext_len, 0);
    ck_assert_uint_eq(plain->peer.len + plain->peer_name.len, 0);
    struct record *big = record_pool_new_ext(&pool, "x", 1, NULL, 0);
    ck_assert_uint_eq(big->ext_len, 0);
    struct record *rs[] = {plain, r, big};
    ck_assert_uint_eq(record_free_many(rs, 3), record_footprint(plain) + record_footprint(r) +
                                                     record_footprint(big));
    record_pool_release(&pool);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("record");
    TCase *tc = tcase_create("record");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, record_new_defaults);
    tcase_add_test(tc, printable_flag);
    tcase_add_test(tc, pool_carves_and_frees);
    tcase_add_test(tc, ext_after_message);
    tcase_add_test(tc, pool_large_records_are_malloced);
    tcase_add_test(tc, free_many);
    tcase_add_test(tc, pool_across_threads);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
