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
#include <stdbool.h>
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

/* A watched queue: the push that takes the watch does not report the mark;
 * the watcher sees the node and owns scheduling. Unwatched in time, the
 * mark is back and the next push reports it as usual. */
static void test_watch(void **state)
{
    (void)state;
    tr__mpsc q;
    tr__mpsc_init(&q, true);
    item a = {.seq = 1}, b = {.seq = 2};
    assert_true(tr__mpsc_watch(&q));
    assert_null(tr__mpsc_watch_taken(&q));
    assert_false(tr__mpsc_maybe_nonempty(&q));
    /* No push: unwatching restores the mark. */
    assert_false(tr__mpsc_unwatch(&q));
    assert_true(tr__mpsc_push(&q, &a.node));
    /* Not marked (scheduled already): no watch. */
    assert_false(tr__mpsc_watch(&q));
    assert_ptr_equal(tr__mpsc_pop(&q), &a.node);
    assert_null(tr__mpsc_pop(&q));
    assert_true(tr__mpsc_mark_empty(&q));
    /* Watched: the push leaves scheduling to the watcher. */
    assert_true(tr__mpsc_watch(&q));
    assert_false(tr__mpsc_push(&q, &a.node));
    assert_ptr_equal(tr__mpsc_watch_taken(&q), &a.node);
    assert_false(tr__mpsc_push(&q, &b.node));
    assert_true(tr__mpsc_unwatch(&q)); /* taken: the watcher owns it */
    assert_false(tr__mpsc_mark_empty(&q));
    assert_ptr_equal(tr__mpsc_pop(&q), &a.node);
    assert_ptr_equal(tr__mpsc_pop(&q), &b.node);
    assert_null(tr__mpsc_pop(&q));
    assert_true(tr__mpsc_mark_empty(&q));
    assert_true(tr__mpsc_push(&q, &a.node));
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

/*
 * Producers push into a marked queue while the consumer drains it whenever
 * it owns it. With `watch`, every other time the consumer waits it watches
 * the queue for a while (as an idle loop spins), so ownership reaches it
 * either from the push that took the watch or from a producer that found
 * the plain mark.
 */
static void run_producers(bool watch)
{
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
    uint64_t got = 0, marks = 0, taken = 0;
    pthread_barrier_wait(&sh.start);
    const uint64_t total = (uint64_t)PRODUCERS * PER_PRODUCER;
    for (uint64_t round = 0; got < total; round++) {
        if (watch && (round & 1) && tr__mpsc_watch(&sh.q)) {
            bool mine = false;
            for (int i = 0; i < 200 && !mine; i++) {
                mine = tr__mpsc_watch_taken(&sh.q) != NULL;
                ck_pr_stall();
            }
            if (mine || tr__mpsc_unwatch(&sh.q)) {
                /* The queue is ours; no producer may think so too. */
                assert_int_equal(ck_pr_fas_int(&sh.scheduled, 1), 0);
                taken++;
            }
        }
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
    /* Every successful mark was answered by exactly one scheduling push or
     * one taken watch (the initial mark from init was answered, the last
     * one is still standing). */
    assert_int_equal((uint64_t)ck_pr_load_int(&sh.schedules) + taken, marks);
    pthread_barrier_destroy(&sh.start);
    free(sh.items);
}

/*
 * The hand-over across threads, one node at a time: the consumer drains,
 * marks, watches every other round, then lets the producer push. A watched
 * push must leave scheduling to the watcher, who sees the node (with its
 * contents) on the queue's own line; an unwatched one must report the mark.
 */
enum { HANDOVERS = 100000 };

typedef struct handover {
    tr__mpsc q;
    item items[2];
    /* C11-style atomics, which ThreadSanitizer sees (ck's it does not):
     * `ready` also hands the reused items back to the producer. */
    uint32_t ready;     /* rounds the consumer has opened */
    uint32_t scheduled; /* rounds whose push reported the mark */
    uint32_t wrong;     /* pushes that reported the wrong thing */
} handover;

static void *handover_producer(void *p)
{
    handover *h = p;
    for (uint32_t i = 0; i < HANDOVERS; i++) {
        while (__atomic_load_n(&h->ready, __ATOMIC_ACQUIRE) != i + 1)
            ck_pr_stall();
        item *it = &h->items[i & 1];
        it->seq = i;
        bool mark = tr__mpsc_push(&h->q, &it->node);
        if (mark != !(i & 1))
            __atomic_fetch_add(&h->wrong, 1, __ATOMIC_RELAXED);
        if (mark)
            __atomic_store_n(&h->scheduled, i + 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void test_watch_handover(void **state)
{
    (void)state;
    handover *h = calloc(1, sizeof *h);
    assert_non_null(h);
    tr__mpsc_init(&h->q, true);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, handover_producer, h), 0);
    for (uint32_t i = 0; i < HANDOVERS; i++) {
        bool watched = i & 1;
        if (watched)
            assert_true(tr__mpsc_watch(&h->q));
        __atomic_store_n(&h->ready, i + 1, __ATOMIC_RELEASE);
        if (watched) {
            tr__mpsc_node *n;
            while ((n = tr__mpsc_watch_taken(&h->q)) == NULL)
                ck_pr_stall();
            assert_ptr_equal(n, &h->items[i & 1].node);
            assert_true(tr__mpsc_unwatch(&h->q)); /* taken: stays ours */
        } else {
            while (__atomic_load_n(&h->scheduled, __ATOMIC_ACQUIRE) != i + 1)
                ck_pr_stall();
        }
        tr__mpsc_node *n = tr__mpsc_pop(&h->q);
        assert_ptr_equal(n, &h->items[i & 1].node);
        assert_int_equal(((item *)n)->seq, i);
        assert_null(tr__mpsc_pop(&h->q));
        assert_true(tr__mpsc_mark_empty(&h->q));
    }
    pthread_join(t, NULL);
    assert_int_equal(__atomic_load_n(&h->wrong, __ATOMIC_RELAXED), 0);
    free(h);
}

static void test_concurrent_producers(void **state)
{
    (void)state;
    run_producers(false);
}

static void test_concurrent_producers_watched(void **state)
{
    (void)state;
    run_producers(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_thread_fifo),
        cmocka_unit_test(test_mark_empty),
        cmocka_unit_test(test_watch),
        cmocka_unit_test(test_peek),
        cmocka_unit_test(test_concurrent_producers),
        cmocka_unit_test(test_concurrent_producers_watched),
        cmocka_unit_test(test_watch_handover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
