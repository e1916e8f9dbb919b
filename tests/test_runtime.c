/*
 * test_runtime.c — creating, starting, stopping, waiting for and freeing a
 * runtime, and every misuse of those calls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>
#include <cmocka.h>

#include "tr_test.h"

static const tr_behavior noop_b = {.name = "tr_test_ignore", .receive = tr_test_ignore};

static void test_options(void **state)
{
    (void)state;
    tr_runtime_options o;
    memset(&o, 0xab, sizeof o);
    tr_runtime_options_init(&o);
    assert_int_equal(o.loops, 0);
    assert_int_equal(o.batch, 0);
    assert_int_equal(o.max_payload, 0);
    assert_null(o.log);
    assert_null(o.clock);
    tr_runtime_options_init(NULL); /* no crash */

    tr_runtime *rt = (tr_runtime *)0x1;
    assert_int_equal(tr_runtime_create(NULL, NULL), TR_EINVAL);
    o.loops = 100000;
    assert_int_equal(tr_runtime_create(&rt, &o), TR_EINVAL);
    tr_runtime_options_init(&o);
    o.max_payload = (size_t)1 << 40;
    assert_int_equal(tr_runtime_create(&rt, &o), TR_EINVAL);
    assert_ptr_equal(rt, (tr_runtime *)0x1); /* untouched on failure */

    /* Defaults: one loop per core. */
    assert_int_equal(tr_runtime_create(&rt, NULL), 0);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    assert_true(tr_runtime_loops(rt) >= 1);
    assert_true(cores < 1 || tr_runtime_loops(rt) <= (unsigned)cores);
    assert_int_equal(tr_runtime_free(rt), 0);
    assert_int_equal(tr_runtime_loops(NULL), 0);
}

static void lifecycle(unsigned loops)
{
    tr_runtime_options o = tr_test_options(loops, 0);
    tr_runtime *rt = tr_test_runtime_unstarted(&o);
    assert_int_equal(tr_runtime_loops(rt), loops);
    assert_int_equal(tr_runtime_stop(rt), TR_ENOTSTARTED);
    assert_int_equal(tr_runtime_wait(rt), TR_ENOTSTARTED);
    assert_int_equal(tr_runtime_start(rt), 0);
    assert_int_equal(tr_runtime_start(rt), TR_EALREADY);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &noop_b, NULL, &p), 0);
    assert_int_equal(tr_rt_send(rt, p, 1, "x", 1), 0);
    assert_int_equal(tr_runtime_stop(rt), 0);
    assert_int_equal(tr_runtime_stop(rt), TR_EALREADY);
    assert_int_equal(tr_runtime_wait(rt), 0);
    assert_int_equal(tr_runtime_wait(rt), 0); /* at once, again */
    /* Use after stop. */
    assert_int_equal(tr_runtime_start(rt), TR_EALREADY);
    assert_int_equal(tr_rt_send(rt, p, 1, NULL, 0), TR_ESTOPPED);
    assert_int_equal(tr_rt_spawn(rt, &noop_b, NULL, &p), TR_ESTOPPED);
    assert_int_equal(tr_signal_exit(rt, p, TR_EXIT_KILLED), TR_ESTOPPED);
    assert_int_equal(tr_test_call_rc(rt, p, 1, NULL, 0, 10), TR_ESTOPPED);
    assert_int_equal(tr_runtime_free(rt), 0);
}

static void test_lifecycle(void **state)
{
    (void)state;
    lifecycle(1);
    lifecycle(2);
    lifecycle(4);
}

static void test_null_everywhere(void **state)
{
    (void)state;
    assert_int_equal(tr_runtime_start(NULL), TR_EINVAL);
    assert_int_equal(tr_runtime_stop(NULL), TR_EINVAL);
    assert_int_equal(tr_runtime_wait(NULL), TR_EINVAL);
    assert_int_equal(tr_runtime_free(NULL), 0);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(NULL, &noop_b, NULL, &p), TR_EINVAL);
    assert_int_equal(tr_rt_send(NULL, 1, 1, NULL, 0), TR_EINVAL);
    assert_int_equal(tr_signal_exit(NULL, 1, TR_EXIT_KILLED), TR_EINVAL);
}

/* A runtime that never ran still frees its queued actors and messages. */
static void test_free_never_started(void **state)
{
    (void)state;
    tr_runtime *rt;
    assert_int_equal(tr_runtime_create(&rt, NULL), 0);
    for (int i = 0; i < 100; i++) {
        tr_pid p;
        tr_spawn_opts o;
        tr_spawn_opts_init(&o);
        char arg[200] = {0};
        o.arg = arg;
        o.arg_len = sizeof arg;
        assert_int_equal(tr_rt_spawn(rt, &noop_b, &o, &p), 0);
        for (int j = 0; j < 10; j++)
            assert_int_equal(tr_rt_send(rt, p, 1, arg, (size_t)j * 20), 0);
    }
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* Freeing a running runtime stops it first. */
static _Atomic int terminated;

static void count_terminate(tr_actor *self, void *state, const tr_exit_reason *r)
{
    (void)self;
    (void)state;
    TR_CHECK_EQ(r->kind, TR_EXIT_SHUTDOWN);
    atomic_fetch_add(&terminated, 1);
}

static const tr_behavior counted_b = {.name = "counted", .receive = tr_test_ignore,
                                      .terminate = count_terminate};

static void test_free_running(void **state)
{
    (void)state;
    atomic_store(&terminated, 0);
    tr_runtime *rt = tr_test_runtime(2, 0);
    for (int i = 0; i < 50; i++) {
        tr_pid p;
        assert_int_equal(tr_rt_spawn(rt, &counted_b, NULL, &p), 0);
    }
    assert_int_equal(tr_runtime_free(rt), 0);
    assert_int_equal(atomic_load(&terminated), 50);
}

/* wait and free from a handler would deadlock: refused, runtime unharmed. */
static _Atomic int in_loop_checked;

static int in_loop_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    (void)msg;
    tr_runtime *rt = tr_runtime_of(self);
    TR_CHECK_EQ(tr_runtime_wait(rt), TR_EWRONGTHREAD);
    TR_CHECK_EQ(tr_runtime_free(rt), TR_EWRONGTHREAD);
    TR_CHECK_EQ(tr_runtime_start(rt), TR_EALREADY);
    atomic_fetch_add(&in_loop_checked, 1);
    return 0;
}

static const tr_behavior in_loop_b = {.name = "in_loop", .receive = in_loop_receive};

static void test_wrong_thread(void **state)
{
    (void)state;
    atomic_store(&in_loop_checked, 0);
    tr_runtime *rt = tr_test_runtime(2, 0);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &in_loop_b, NULL, &p), 0);
    assert_int_equal(tr_rt_send(rt, p, 1, NULL, 0), 0);
    TR_WAIT_UNTIL(atomic_load(&in_loop_checked) == 1);
    /* Still working. */
    assert_int_equal(tr_rt_send(rt, p, 1, NULL, 0), 0);
    TR_WAIT_UNTIL(atomic_load(&in_loop_checked) == 2);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* An actor stops the runtime; main only waits. */
static int stopper(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    (void)msg;
    TR_CHECK_EQ(tr_runtime_stop(tr_runtime_of(self)), 0);
    TR_CHECK_EQ(tr_runtime_stop(tr_runtime_of(self)), TR_EALREADY);
    return 0;
}

static const tr_behavior stopper_b = {.name = "stopper", .receive = stopper};

static void test_stop_from_actor(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, 0);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &stopper_b, NULL, &p), 0);
    assert_int_equal(tr_rt_send(rt, p, 1, NULL, 0), 0);
    assert_int_equal(tr_runtime_wait(rt), 0);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* SIGTERM stops the tree in order instead of killing the process. */
static void test_stop_on_signal(void **state)
{
    (void)state;
    atomic_store(&terminated, 0);
    tr_runtime_options o = tr_test_options(2, 0);
    o.stop_on_signals = 1;
    tr_runtime *rt = tr_test_runtime_opts(&o);
    for (int i = 0; i < 5; i++) {
        tr_pid p;
        assert_int_equal(tr_rt_spawn(rt, &counted_b, NULL, &p), 0);
    }
    assert_int_equal(kill(getpid(), SIGTERM), 0);
    assert_int_equal(tr_runtime_wait(rt), 0); /* returns: the signal stopped it */
    assert_int_equal(atomic_load(&terminated), 5);
    assert_int_equal(tr_runtime_free(rt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_null_everywhere),
        cmocka_unit_test(test_free_never_started),
        cmocka_unit_test(test_free_running),
        cmocka_unit_test(test_wrong_thread),
        cmocka_unit_test(test_stop_from_actor),
        cmocka_unit_test(test_stop_on_signal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
