/*
 * test_zerocopy.c — zero-copy sends: the buffer is freed exactly once on
 * every path (handled, kept, dropped at a dead actor, dropped at stop,
 * dropped by a runtime that never ran) and never freed when the send fails.
 * ASan turns any double free or leak into a failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tr_test.h"

enum { DATA = 1, KEEP = 2, RELEASE_KEPT = 3, STOP = 4, DIE = 5 };

static _Atomic int frees;

static void counting_free(void *buf)
{
    atomic_fetch_add(&frees, 1);
    free(buf);
}

static void *make_buf(size_t len, int seed)
{
    unsigned char *b = malloc(len);
    assert_non_null(b);
    for (size_t i = 0; i < len; i++)
        b[i] = (unsigned char)(seed + i);
    return b;
}

typedef struct sink {
    void *kept;
} sink;

static _Atomic int handled_ok;

static int sink_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    sink *s = state;
    switch (msg->type) {
    case DATA:
    case KEEP: {
        TR_CHECK(msg->flags & TR_MSG_OWNED);
        const unsigned char *b = msg->data;
        for (uint32_t i = 0; i < msg->len; i++)
            TR_CHECK_EQ(b[i], (unsigned char)(b[0] + i));
        if (msg->type == KEEP) {
            void *k = tr_msg_keep(self, msg);
            TR_CHECK(k == msg->data);
            TR_CHECK(tr_msg_keep(self, msg) == NULL); /* once */
            free(s->kept);
            s->kept = k;
        }
        atomic_fetch_add(&handled_ok, 1);
        return 0;
    }
    case RELEASE_KEPT:
        TR_CHECK(tr_msg_keep(self, msg) == NULL); /* not an owned message */
        counting_free(s->kept);
        s->kept = NULL;
        return tr_reply(self, msg, RELEASE_KEPT, NULL, 0);
    case STOP:
        return tr_runtime_stop(tr_runtime_of(self));
    case DIE:
        return tr_exit(self, TR_EXIT_NORMAL);
    }
    return 0;
}

static const tr_behavior sink_b = {.name = "sink", .state_size = sizeof(sink),
                                   .receive = sink_receive};

static void test_handled_and_kept(void **state)
{
    (void)state;
    atomic_store(&frees, 0);
    atomic_store(&handled_ok, 0);
    tr_runtime *rt = tr_test_runtime(2, 0);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &sink_b, NULL, &p), 0);
    /* Handled: freed by the runtime after the handler. */
    assert_int_equal(tr_rt_send_owned(rt, p, DATA, make_buf(1000, 1), 1000, counting_free), 0);
    TR_WAIT_UNTIL(atomic_load(&frees) == 1);
    /* Kept: the runtime does not free it; the receiver does, later. */
    assert_int_equal(tr_rt_send_owned(rt, p, KEEP, make_buf(1 << 20, 2), 1 << 20, counting_free), 0);
    TR_WAIT_UNTIL(atomic_load(&handled_ok) == 2);
    assert_int_equal(atomic_load(&frees), 1);
    tr_test_ask(rt, p, RELEASE_KEPT, NULL, 0, NULL, 0);
    assert_int_equal(atomic_load(&frees), 2);

    /* A failed send leaves the buffer with the caller. */
    void *b = make_buf(10, 3);
    assert_int_equal(tr_rt_send_owned(rt, TR_PID_NONE, DATA, b, 10, counting_free), TR_ENOACTOR);
    assert_int_equal(tr_rt_send_owned(rt, p, DATA, NULL, 10, counting_free), TR_EINVAL);
    assert_int_equal(tr_rt_send_owned(rt, p, DATA, b, 10, NULL), TR_EINVAL);
    assert_int_equal(tr_rt_send_owned(rt, p, TR_MSG_USER_MAX + 1u, b, 10, counting_free), TR_EINVAL);
    assert_int_equal(tr_rt_send_owned(NULL, p, DATA, b, 10, counting_free), TR_EINVAL);
    assert_int_equal(tr_send_owned(NULL, p, DATA, b, 10, counting_free), TR_EINVAL);
    assert_null(tr_msg_keep(NULL, NULL));
    assert_int_equal(atomic_load(&frees), 2);
    free(b);
    tr_runtime_free(rt);
    assert_int_equal(atomic_load(&frees), 2);
}

/* A runtime of `loops` loops, not started, with a sink whose mailbox holds
 * `first` and then `n` owned buffers of `size` bytes: nothing runs yet. */
static tr_runtime *queued_sink(unsigned loops, uint32_t first, int n, size_t size)
{
    atomic_store(&frees, 0);
    tr_runtime_options o = tr_test_options(loops, 0);
    tr_runtime *rt = tr_test_runtime_unstarted(&o);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &sink_b, NULL, &p), 0);
    assert_int_equal(tr_rt_send(rt, p, first, NULL, 0), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(tr_rt_send_owned(rt, p, DATA, make_buf(size, i), size, counting_free),
                         0);
    return rt;
}

static void test_dropped_at_exit(void **state)
{
    (void)state;
    /* Queued before start: the actor dies on the first, the rest are
     * dropped with it. */
    tr_runtime *rt = queued_sink(1, DIE, 50, 64);
    assert_int_equal(tr_runtime_start(rt), 0);
    TR_WAIT_UNTIL(atomic_load(&frees) == 50);
    TR_WAIT_UNTIL(TR_STAT(rt, dropped) == 50);
    tr_runtime_free(rt);
    assert_int_equal(atomic_load(&frees), 50);
}

static void test_dropped_at_stop(void **state)
{
    (void)state;
    /* The first stops the runtime: the rest are dropped at the stop. */
    tr_runtime *rt = queued_sink(2, STOP, 100, 100);
    assert_int_equal(tr_runtime_start(rt), 0);
    assert_int_equal(tr_runtime_wait(rt), 0);
    tr_runtime_free(rt);
    assert_int_equal(atomic_load(&frees), 100);
}

static void test_never_started(void **state)
{
    (void)state;
    atomic_store(&frees, 0);
    tr_runtime *rt;
    assert_int_equal(tr_runtime_create(&rt, NULL), 0);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &sink_b, NULL, &p), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(tr_rt_send_owned(rt, p, DATA, make_buf(32, i), 32, counting_free), 0);
    tr_runtime_free(rt);
    assert_int_equal(atomic_load(&frees), 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handled_and_kept),
        cmocka_unit_test(test_dropped_at_exit),
        cmocka_unit_test(test_dropped_at_stop),
        cmocka_unit_test(test_never_started),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
