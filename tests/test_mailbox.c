/*
 * test_mailbox.c — the intrusive MPSC queue (channels/mpsc.h) on its own.
 *
 * Producers tag every node with (producer, sequence); the single consumer
 * checks that nothing is lost, nothing is duplicated and each producer's
 * order is kept. The mark-empty protocol is checked the way the runtime uses
 * it: the consumer marks the queue empty whenever it drains it, and exactly
 * the pushes that find the mark "schedule" the consumer again — counted, so
 * a lost wake-up (a node left in a queue nobody will look at) fails the test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <pthread.h>
#include <cmocka.h>

#include "mpsc.h"

typedef struct item {
    tr__mpsc_node node;
    uint32_t producer;
    uint32_t seq;
} item;

static void test_single_thread_fifo(void **state)
{
    (void)state;
    tr__mpsc q;
    tr__mpsc_init(&q, false);
    assert_null(tr__mpsc_pop(&q));
    assert_false(tr__mpsc_maybe_nonempty(&q));
    item items[100];
    for (uint32_t i = 0; i < 100; i++) {
        items[i].seq = i;
        assert_false(tr__mpsc_push(&q, &items[i].node));
    }
    assert_true(tr__mpsc_maybe_nonempty(&q));
    for (uint32_t i = 0; i < 100; i++) {
        item *it = (item *)tr__mpsc_pop(&q);
        assert_non_null(it);
        assert_int_equal(it->seq, i);
    }
    assert_null(tr__mpsc_pop(&q));
    assert_false(tr__mpsc_maybe_nonempty(&q));
}

static void test_mark_empty(void **state)
{
    (void)state;
    tr__mpsc q;
    tr__mpsc_init(&q, true);
    item a = {.seq = 1}, b = {.seq = 2};
    /* The first push into a marked queue must report it. */
    assert_true(tr__mpsc_push(&q, &a.node));
    assert_false(tr__mpsc_push(&q, &b.node));
    /* Not empty: marking fails. */
    assert_false(tr__mpsc_mark_empty(&q));
    assert_ptr_equal(tr__mpsc_pop(&q), &a.node);
    assert_false(tr__mpsc_mark_empty(&q));
    assert_ptr_equal(tr__mpsc_pop(&q), &b.node);
    assert_null(tr__mpsc_pop(&q));
    assert_true(tr__mpsc_mark_empty(&q));
    /* Marked again: the next push reports it, once. */
    assert_true(tr__mpsc_push(&q, &a.node));
    assert_ptr_equal(tr__mpsc_pop(&q), &a.node);
    assert_null(tr__mpsc_pop(&q));
    assert_true(tr__mpsc_mark_empty(&q));
}

/* peek shows what pop returns next and leaves it there, past the stub too. */
static void test_peek(void **state)
{
    (void)state;
    tr__mpsc q;
    tr__mpsc_init(&q, false);
    assert_null(tr__mpsc_peek(&q));
    item a = {.seq = 1}, b = {.seq = 2};
    tr__mpsc_push(&q, &a.node);
    assert_ptr_equal(tr__mpsc_peek(&q), &a.node);
    assert_ptr_equal(tr__mpsc_peek(&q), &a.node);
    assert_true(tr__mpsc_maybe_nonempty(&q));
    tr__mpsc_push(&q, &b.node);
    assert_ptr_equal(tr__mpsc_peek(&q), &a.node);
    assert_ptr_equal(tr__mpsc_pop(&q), &a.node);
    assert_ptr_equal(tr__mpsc_peek(&q), &b.node);
    assert_ptr_equal(tr__mpsc_pop(&q), &b.node);
    assert_null(tr__mpsc_peek(&q));
    assert_false(tr__mpsc_maybe_nonempty(&q));
}

enum { PRODUCERS = 4, PER_PRODUCER = 200000 };

typedef struct shared {
    tr__mpsc q;
    item *items; /* PRODUCERS * PER_PRODUCER */
    int scheduled; /* atomic: 1 while the consumer "owns" the queue */
    int schedules; /* atomic: pushes that found the mark */
    pthread_barrier_t start;
} shared;

typedef struct producer_arg {
    shared *sh;
    uint32_t id;
} producer_arg;

static void *producer(void *p)
{
    producer_arg *arg = p;
    shared *sh = arg->sh;
    pthread_barrier_wait(&sh->start);
    for (uint32_t s = 0; s < PER_PRODUCER; s++) {
        item *it = &sh->items[arg->id * PER_PRODUCER + s];
        it->producer = arg->id;
        it->seq = s;
        if (tr__mpsc_push(&sh->q, &it->node)) {
            /* Exactly one owner at a time: the mark hands over ownership. */
            int was = ck_pr_fas_int(&sh->scheduled, 1);
            if (was != 0)
                abort(); /* cmocka asserts belong to the main thread */
            ck_pr_inc_int(&sh->schedules);
        }
    }
    return NULL;
}

static void test_concurrent_producers(void **state)
{
    (void)state;
    shared sh;
    tr__mpsc_init(&sh.q, true);
    sh.items = calloc((size_t)PRODUCERS * PER_PRODUCER, sizeof(item));
    assert_non_null(sh.items);
    sh.scheduled = 0;
    sh.schedules = 0;
    pthread_barrier_init(&sh.start, NULL, PRODUCERS + 1);
    pthread_t th[PRODUCERS];
    producer_arg args[PRODUCERS];
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        args[i] = (producer_arg){.sh = &sh, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, producer, &args[i]), 0);
    }
    uint32_t next[PRODUCERS] = {0};
    uint64_t got = 0, marks = 0;
    pthread_barrier_wait(&sh.start);
    const uint64_t total = (uint64_t)PRODUCERS * PER_PRODUCER;
    while (got < total) {
        /* Wait until a producer hands us the queue, as a loop would. */
        while (!ck_pr_load_int(&sh.scheduled))
            ck_pr_stall();
        for (;;) {
            tr__mpsc_node *n = tr__mpsc_pop(&sh.q);
            if (n) {
                item *it = (item *)n;
                assert_true(it->producer < PRODUCERS);
                /* In order, no loss, no duplicate, per producer. */
                assert_int_equal(it->seq, next[it->producer]);
                next[it->producer]++;
                got++;
                continue;
            }
            /* Drained (or a push is half-way): give up ownership only if
             * the mark sticks; otherwise keep consuming. */
            ck_pr_store_int(&sh.scheduled, 0);
            if (tr__mpsc_mark_empty(&sh.q)) {
                marks++;
                break;
            }
            ck_pr_store_int(&sh.scheduled, 1);
        }
    }
    for (uint32_t i = 0; i < PRODUCERS; i++)
        pthread_join(th[i], NULL);
    for (uint32_t i = 0; i < PRODUCERS; i++)
        assert_int_equal(next[i], PER_PRODUCER);
    assert_null(tr__mpsc_pop(&sh.q));
    /* Every successful mark was answered by exactly one scheduling push
     * (plus the initial mark from init). */
    assert_int_equal((uint64_t)ck_pr_load_int(&sh.schedules), marks);
    pthread_barrier_destroy(&sh.start);
    free(sh.items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_thread_fifo),
        cmocka_unit_test(test_mark_empty),
        cmocka_unit_test(test_peek),
        cmocka_unit_test(test_concurrent_producers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
