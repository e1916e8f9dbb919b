/*
 * test_sup_stress.c — random failures across a supervision tree of
 * thousands of actors on three loops, for a few seconds (TR_STRESS_MS,
 * default 1500), while another thread adds and removes dynamic children.
 * Afterwards: every child runs again, the restart counts of the
 * one_for_one supervisors equal the failures their workers reported (none
 * lost, none invented), the others restarted at most as often, every live actor is in the tree (no orphan), and stopping the
 * runtime frees everything (the sanitizer builds check that).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <string.h>
#include <cmocka.h>

#include "tr_test.h"

enum { FAIL = 1, SYNC = 2 };

#define MIDS 20
#define WORKERS 100

/* Failures handled, per mid supervisor. */
static _Atomic long failures[MIDS];

typedef struct warg {
    int mid;
} warg;

static int worker_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    TR_CHECK_COPY((warg *)state, arg, len);
    return 0;
}

static int worker_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    const warg *w = state;
    if (msg->type == FAIL) {
        atomic_fetch_add(&failures[w->mid], 1);
        return -7; /* an abnormal exit */
    }
    return tr_reply(self, msg, SYNC, NULL, 0); /* SYNC: all earlier mail is handled */
}

static const tr_behavior worker_b = {.name = "worker", .state_size = sizeof(warg),
                                     .init = worker_init, .receive = worker_receive};

static const tr_strategy strategies[4] = {TR_ONE_FOR_ONE, TR_SIMPLE_ONE_FOR_ONE,
                                          TR_ONE_FOR_ALL, TR_REST_FOR_ONE};

static bool exact(int mid)
{
    /* one_for_one supervisors restart exactly the child that failed. The
     * group strategies absorb failures of children they were stopping
     * anyway, and a dynamic child being removed is not restarted (its
     * restart count leaves with it). */
    return strategies[mid % 4] == TR_ONE_FOR_ONE;
}

static tr_pid mids[MIDS];
static warg wargs[MIDS];
static char ids[MIDS][WORKERS][8];

static uint64_t rng = 0x2545f4914f6cdd1dull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

/* Adds dynamic children and stops each again, until told to end. */
static _Atomic int churning;

static void *churn(void *arg)
{
    tr_runtime *rt = arg;
    uint64_t x = 88172645463325252ull;
    while (atomic_load(&churning)) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int mid = (int)(x % (MIDS / 4)) * 4 + 1; /* a dynamic one */
        tr_pid kid;
        int rc = tr_rt_sup_start_child(rt, mids[mid], &wargs[mid], sizeof wargs[mid], &kid);
        if (rc != 0)
            continue;
        /* Removals race with the injected failures. */
        tr_rt_sup_stop_child(rt, mids[mid], kid);
    }
    return NULL;
}

static int count_actors(const tr_actor_info *i, void *ud)
{
    (void)i;
    (*(long *)ud)++;
    return 0;
}

static void test_random_failures(void **state)
{
    (void)state;
    const char *env = getenv("TR_STRESS_MS");
    uint64_t run_ms = env ? strtoull(env, NULL, 10) : 1500;
    tr_runtime *rt = tr_test_quiet_runtime(3);

    /* The tree: MIDS top-level supervisors of WORKERS workers each. */
    static tr_child_spec kids[WORKERS];
    for (int m = 0; m < MIDS; m++) {
        wargs[m].mid = m;
        atomic_store(&failures[m], 0);
        tr_sup_spec spec = {.strategy = strategies[m % 4], .max_restarts = 1000000,
                            .period_ms = 1000};
        size_t n = spec.strategy == TR_SIMPLE_ONE_FOR_ONE ? 1 : WORKERS;
        for (size_t w = 0; w < n; w++) {
            snprintf(ids[m][w], sizeof ids[m][w], "w%u", (unsigned)(w % 1000));
            kids[w] = (tr_child_spec){.id = ids[m][w], .behavior = &worker_b,
                                      .arg = &wargs[m], .arg_len = sizeof wargs[m],
                                      .restart = TR_PERMANENT, .loop = TR_LOOP(w % 3)};
        }
        spec.children = kids;
        spec.nchildren = n;
        tr_spawn_opts so;
        tr_spawn_opts_init(&so);
        so.loop = TR_LOOP(m % 3);
        assert_int_equal(tr_rt_sup_spawn(rt, &spec, &so, &mids[m]), 0);
        if (spec.strategy == TR_SIMPLE_ONE_FOR_ONE)
            for (int w = 0; w < WORKERS; w++)
                assert_int_equal(
                    tr_rt_sup_start_child(rt, mids[m], &wargs[m], sizeof wargs[m], NULL), 0);
    }

    pthread_t churner;
    atomic_store(&churning, 1);
    assert_int_equal(pthread_create(&churner, NULL, churn, rt), 0);

    /* Inject failures at random for run_ms. */
    static tr_sup_child list[WORKERS * 4];
    long injected = 0;
    uint64_t end = tr_test_wall_ns() + run_ms * 1000000ull;
    while (tr_test_wall_ns() < end) {
        int m = (int)rnd(MIDS);
        int n = tr_rt_sup_which_children(rt, mids[m], list, WORKERS * 4);
        assert_true(n >= 0);
        if (n > WORKERS * 4)
            n = WORKERS * 4;
        for (int k = 0; k < 8 && n > 0; k++) {
            tr_pid p = list[rnd((unsigned)n)].pid;
            if (p != TR_PID_NONE && tr_rt_send(rt, p, FAIL, NULL, 0) == 0)
                injected++;
        }
    }
    atomic_store(&churning, 0);
    pthread_join(churner, NULL);

    /* A FAIL sent near the end may not be handled yet: then a supervisor
     * could look settled and restart a child during the tree walk. Mail
     * from this thread to a worker is handled in order, so once every
     * worker has answered a SYNC (or ended), every FAIL is handled. */
    for (int m = 0; m < MIDS; m++) {
        int n = tr_rt_sup_which_children(rt, mids[m], list, WORKERS * 4);
        assert_true(n >= 0);
        for (int i = 0; i < n && i < WORKERS * 4; i++)
            if (list[i].pid != TR_PID_NONE) /* it may end meanwhile: any rc */
                tr_test_call_rc(rt, list[i].pid, SYNC, NULL, 0, 10000);
    }

    /* Quiescence: every static child runs again, and the supervisors'
     * books agree with what the workers reported. */
    long total_failures = 0, total_restarts = 0, expected_actors = MIDS;
    for (int m = 0; m < MIDS; m++) {
        bool dyn = strategies[m % 4] == TR_SIMPLE_ONE_FOR_ONE;
        int n;
        long restarts;
        uint64_t give_up = tr_test_wall_ns() + TR_TEST_PATIENCE_S * 1000000000ull;
        for (;;) {
            n = tr_rt_sup_which_children(rt, mids[m], list, WORKERS * 4);
            assert_true(n >= 1 && n <= WORKERS * 4);
            restarts = 0;
            int down = 0;
            for (int i = dyn ? 1 : 0; i < n; i++) {
                restarts += list[i].restarts;
                down += list[i].pid == TR_PID_NONE;
            }
            bool settled = down == 0 && (exact(m) ? restarts == atomic_load(&failures[m])
                                                  : restarts <= atomic_load(&failures[m]));
            if (settled)
                break;
            if (tr_test_wall_ns() > give_up)
                fail_msg("supervisor %d (%d): %d children down, %ld restarts, %ld failures", m,
                         (int)strategies[m % 4], down, restarts, atomic_load(&failures[m]));
            sched_yield();
        }
        total_failures += atomic_load(&failures[m]);
        total_restarts += restarts;
        expected_actors += dyn ? n - 1 : n;
    }
    assert_true(injected > 0);
    assert_true(total_failures > 0);
    assert_true(total_restarts > 0);
    fprintf(stderr, "stress: %ld injected, %ld failures, %ld restarts, %ld actors\n", injected,
            total_failures, total_restarts, expected_actors);

    /* No orphan: every live actor is in the tree, and the tree is exactly
     * the supervisors and their children. */
    long walked = 0;
    assert_int_equal(tr_runtime_tree(rt, count_actors, &walked), 0);
    assert_int_equal(walked, expected_actors);
    assert_int_equal((long)TR_STAT(rt, actors), expected_actors + 1); /* + the root */
    assert_int_equal(tr_runtime_free(rt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
