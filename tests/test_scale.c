/*
 * test_scale.c — the hardening issue's finding 9, as a test of growth: the
 * root adopted each top-level actor with a walk of its sorted list, so
 * 200,000 top-level spawns from two threads left loop 0 unresponsive for
 * seconds and 300,000 took 40 s to stop. Twice as many spawns (and their
 * stop) must now take at most 2.5 times as long (quadratic would be 4x).
 *
 * A ratio of two wall-clock runs in one process: labelled `scale`, run by
 * the plain test suite only (the sanitizers' slowdown is not uniform over a
 * run of this size, and the suite under them checks the same code at
 * smaller sizes in test_hostile).
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

static const tr_behavior idle_b = {.name = "idle", .receive = tr_test_ignore};

typedef struct spawner {
    tr_runtime *rt;
    int n;
    int failed;
} spawner;

static void *spawn_thread(void *p)
{
    spawner *sp = p;
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.loop = TR_LOOP_ROUND_ROBIN;
    for (int i = 0; i < sp->n; i++) {
        tr_pid pid;
        if (tr_rt_spawn(sp->rt, &idle_b, &o, &pid) != 0)
            sp->failed++;
    }
    return NULL;
}

/* Spawns n top-level actors from two threads, checks the tree has them in
 * spawn order, stops: the seconds all of it took. */
static double top_level_spawns(int n)
{
    tr_runtime_options opts = tr_test_options(2, TR_TEST_QUIET);
    opts.max_actors = (uint32_t)n + 16;
    tr_runtime *rt = tr_test_runtime_opts(&opts);
    uint64_t t0 = tr_test_wall_ns();
    spawner sp[2] = {{.rt = rt, .n = n / 2}, {.rt = rt, .n = n - n / 2}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, spawn_thread, &sp[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(sp[0].failed + sp[1].failed, 0);
    if (getenv("TR_VERBOSE"))
        printf("# %d spawned in %.3f s\n", n, (double)(tr_test_wall_ns() - t0) / 1e9);
    assert_int_equal(tr_runtime_stop(rt), 0);
    assert_int_equal(tr_runtime_wait(rt), 0);
    double s = (double)(tr_test_wall_ns() - t0) / 1e9;
    assert_int_equal(tr_runtime_free(rt), 0);
    return s;
}

/* The root adopted each top-level actor with a walk of its sorted list:
 * quadratic (300,000 took 40 s to stop). Twice as many take about twice
 * as long now; 2.5x is the bound the issue sets (quadratic would be 4x). */
static void test_many_top_level_spawns_scale(void **state)
{
    (void)state;
    double small = top_level_spawns(200000);
    double large = top_level_spawns(400000);
    printf("# 200,000 top-level spawns + stop: %.3f s; 400,000: %.3f s (%.2fx)\n", small,
           large, large / small);
    assert_true(large < 2.5 * small + 0.5); /* + 0.5 s: a loaded machine's jitter */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_top_level_spawns_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
