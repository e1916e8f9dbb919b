/*
 * test_teardown.c — stopping a runtime that still has pending timers,
 * pending calls (from actors and from a blocked plain thread), queued
 * zero-copy messages and registered names frees every byte. CI runs this
 * under valgrind (0 bytes lost) as well as under the sanitizers.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tr_test.h"

enum { NEVER = 1, GO = 2 };

static _Atomic int frees, started;

static void counting_free(void *buf)
{
    atomic_fetch_add(&frees, 1);
    free(buf);
}

/* Holds every request, never answers. */
static const tr_behavior sink_b = {.name = "sink", .receive = tr_test_ignore};

static int busy_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    tr_pid sink;
    TR_CHECK_COPY(&sink, arg, len);
    char name[32];
    snprintf(name, sizeof name, "busy-%u", (unsigned)TR_PID_INDEX(tr_self(self)));
    TR_CHECK_EQ(tr_register(self, name), 0);
    for (int i = 0; i < 100; i++) {
        uint64_t payload[8] = {(uint64_t)i};
        TR_CHECK_EQ(tr_send_after(self, sink, 1000000 + (uint64_t)i, 1, payload,
                                  sizeof payload, NULL), 0);
        tr_ref ref;
        TR_CHECK_EQ(tr_call(self, sink, NEVER, payload, sizeof payload,
                            i % 2 ? TR_INFINITE : 1000000, &ref), 0);
        void *buf = malloc(256);
        TR_CHECK(buf != NULL);
        TR_CHECK_EQ(tr_send_owned(self, sink, NEVER, buf, 256, counting_free), 0);
    }
    TR_CHECK_EQ(tr_send_interval(self, tr_self(self), 1000000, 1, NULL, 0, NULL), 0);
    atomic_fetch_add(&started, 1);
    return 0;
}

static const tr_behavior busy_b = {.name = "busy", .init = busy_init,
                                   .receive = tr_test_ignore};

static tr_runtime *the_rt;
static tr_pid the_sink;
static _Atomic int caller_rc = 1;

static void *blocked_caller(void *arg)
{
    (void)arg;
    atomic_store(&caller_rc, tr_test_call_rc(the_rt, the_sink, NEVER, "x", 1, TR_INFINITE));
    return NULL;
}

static void test_teardown_with_everything_pending(void **state)
{
    (void)state;
    the_rt = tr_test_runtime(2, 0);
    assert_int_equal(tr_rt_spawn(the_rt, &sink_b, NULL, &the_sink), 0);
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.arg = &the_sink;
    o.arg_len = sizeof the_sink;
    for (int i = 0; i < 8; i++) {
        tr_pid p;
        assert_int_equal(tr_rt_spawn(the_rt, &busy_b, &o, &p), 0);
    }
    TR_WAIT_UNTIL(atomic_load(&started) == 8);
    /* 8 x (100 send-after + 100 calls + 1 interval) */
    TR_WAIT_UNTIL(TR_STAT(the_rt, timers) == 8 * 201);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, blocked_caller, NULL), 0);
    /* Owned buffers queued behind nothing, to an actor that never reads
     * them before the stop. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(tr_rt_send_owned(the_rt, the_sink, NEVER, malloc(64), 64,
                                          counting_free), 0);
    assert_int_equal(tr_runtime_stop(the_rt), 0);
    assert_int_equal(tr_runtime_wait(the_rt), 0);
    pthread_join(th, NULL);
    /* The blocked caller was released by the stop: its callee ended
     * without answering, or the stop came first. */
    int rc = atomic_load(&caller_rc);
    assert_true(rc == TR_EEXITED || rc == TR_ESTOPPED || rc == TR_ENOACTOR);
    tr_runtime_free(the_rt);
    assert_int_equal(atomic_load(&frees), 8 * 100 + 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_teardown_with_everything_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
