/*
 * test_stats.c — counters counted exactly in a scripted scenario: every
 * message is queued before the runtime starts, so what each actor sees is
 * fixed and the totals are known in advance.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tr_test.h"

enum { WORK = 1, STATS = 2, DIE = 3, HOLD = 4, GATE = 5 };

/* GATE holds its actor until the test opens the gate: whatever is queued
 * behind it is answered only afterwards, whatever the machine's speed. */
static int gate_open;

static int worker_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == STATS) {
        tr_actor_stats s;
        TR_CHECK_EQ(tr_actor_stats_get(self, &s), 0);
        TR_CHECK_EQ(tr_actor_stats_get(self, NULL), TR_EINVAL);
        return tr_reply(self, msg, STATS, &s, sizeof s);
    }
    if (msg->type == DIE)
        return tr_exit(self, TR_EXIT_NORMAL);
    if (msg->type == GATE) {
        while (!__atomic_load_n(&gate_open, __ATOMIC_ACQUIRE))
            ;
        return 0;
    }
    return 0; /* WORK, and HOLD requests are never answered */
}

static const tr_behavior worker_b = {.name = "worker", .receive = worker_receive};

static tr_actor_stats ask(tr_runtime *rt, tr_pid p)
{
    tr_actor_stats s;
    tr_test_ask(rt, p, STATS, NULL, 0, &s, sizeof s);
    return s;
}

static void test_scripted(void **state)
{
    (void)state;
    tr_runtime_options o = tr_test_options(2, 0);
    tr_runtime *rt = tr_test_runtime_unstarted(&o);
    tr_pid a, x;
    assert_int_equal(tr_rt_spawn(rt, &worker_b, NULL, &a), 0);
    assert_int_equal(tr_rt_spawn(rt, &worker_b, NULL, &x), 0);
    /* a: 10 WORK. x: DIE then 5 WORK, which are dropped with it. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(tr_rt_send(rt, a, WORK, &i, sizeof i), 0);
    assert_int_equal(tr_rt_send(rt, x, DIE, NULL, 0), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(tr_rt_send(rt, x, WORK, NULL, 0), 0);
    assert_int_equal(tr_runtime_start(rt), 0);

    /* a has handled its 10 messages when it answers (STATS is queued after
     * them); the call itself is not counted until its handler returns. */
    tr_actor_stats s = ask(rt, a);
    assert_int_equal(s.handled, 10);
    assert_int_equal(s.mailbox, 0);
    TR_WAIT_UNTIL(TR_STAT(rt, dropped) == 5);
    /* handled: a's 10 + its STATS call + x's DIE. */
    TR_WAIT_UNTIL(TR_STAT(rt, handled) == 12);
    /* alive: the root and a. */
    TR_WAIT_UNTIL(TR_STAT(rt, actors) == 2);
    assert_int_equal(TR_STAT(rt, late_replies), 0);
    assert_int_equal(TR_STAT(rt, timers), 0);

    /* A late reply: a is held at the gate, so a zero-timeout STATS call
     * times out; a answers it once the gate opens. */
    assert_int_equal(tr_rt_send(rt, a, GATE, NULL, 0), 0);
    assert_int_equal(tr_test_call_rc(rt, a, STATS, NULL, 0, 0), TR_ETIMEDOUT);
    __atomic_store_n(&gate_open, 1, __ATOMIC_RELEASE);
    TR_WAIT_UNTIL(TR_STAT(rt, late_replies) == 1);
    TR_WAIT_UNTIL(TR_STAT(rt, handled) == 14);

    /* Print: a header, a line per loop, a total. */
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(tr_runtime_stats_print(rt, f), 0);
    rewind(f);
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    assert_non_null(strstr(buf, "handled"));
    assert_non_null(strstr(buf, "total"));
    assert_non_null(strstr(buf, "14"));

    /* Bad input. */
    tr_loop_stats ls[4];
    assert_int_equal(tr_runtime_stats(NULL, ls, 4), TR_EINVAL);
    assert_int_equal(tr_runtime_stats(rt, NULL, 1), TR_EINVAL);
    assert_int_equal(tr_runtime_stats(rt, NULL, 0), 2);
    assert_int_equal(tr_runtime_stats(rt, ls, 1), 2);
    assert_int_equal(tr_runtime_stats_print(NULL, stdout), TR_EINVAL);
    assert_int_equal(tr_runtime_stats_print(rt, NULL), TR_EINVAL);
    assert_int_equal(tr_actor_stats_get(NULL, NULL), TR_EINVAL);
    tr_runtime_free(rt);
}

static _Atomic long first_depth = -1;

static int depth_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    tr_actor_stats st;
    TR_CHECK_EQ(tr_actor_stats_get(self, &st), 0);
    if (atomic_load(&first_depth) < 0)
        atomic_store(&first_depth, (long)st.mailbox);
    return worker_receive(self, state, msg);
}

static const tr_behavior depth_b = {.name = "depth", .receive = depth_receive};

static void test_mailbox_depth(void **state)
{
    (void)state;
    tr_runtime_options o = tr_test_options(1, 0);
    tr_runtime *rt = tr_test_runtime_unstarted(&o);
    tr_pid a;
    assert_int_equal(tr_rt_spawn(rt, &depth_b, NULL, &a), 0);
    /* All queued before start: the first handler sees the other 6 behind it. */
    for (int i = 0; i < 7; i++)
        assert_int_equal(tr_rt_send(rt, a, WORK, NULL, 0), 0);
    assert_int_equal(tr_runtime_start(rt), 0);
    TR_WAIT_UNTIL(atomic_load(&first_depth) >= 0);
    assert_int_equal(atomic_load(&first_depth), 6);
    tr_actor_stats s = ask(rt, a);
    assert_int_equal(s.handled, 7);
    assert_int_equal(s.mailbox, 0);
    tr_runtime_free(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scripted),
        cmocka_unit_test(test_mailbox_depth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
