/*
 * test_supervisor.c — supervisors: each strategy, each restart type,
 * restart intensity with escalation through two levels, start failure,
 * shutdown order and timeouts, dynamic children, backoff (virtual clock),
 * and the reports.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "troupe_test.h"
#include "tr_test.h"

#define MS 1000000ull
enum { FAIL = 1, QUIT = 2, ASK = 3 };

/* ---- a worker ------------------------------------------------------------------ */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char events[64][48]; /* "term <id>" in order */
static _Atomic int nevents;

static void record(const char *what, int id)
{
    pthread_mutex_lock(&mu);
    int i = atomic_load(&nevents);
    if (i < 64)
        snprintf(events[i], sizeof events[i], "%s %d", what, id);
    atomic_store(&nevents, i + 1);
    pthread_mutex_unlock(&mu);
}

typedef struct worker {
    int id;
} worker;

static int worker_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    worker *w = state;
    TR_CHECK_COPY(&w->id, arg, len);
    if (w->id < 0)
        return -1; /* a child that cannot start */
    if (w->id >= 100)
        TR_CHECK_EQ(tr_trap_exits(self, 1), 0); /* lingers on shutdown */
    record("start", w->id);
    return 0;
}

static int worker_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    worker *w = state;
    switch (msg->type) {
    case FAIL:
        return -42;
    case QUIT:
        return tr_exit(self, TR_EXIT_NORMAL);
    case ASK:
        return tr_reply(self, msg, ASK, &w->id, sizeof w->id);
    }
    if (msg->type == TR_MSG_EXIT)
        record("exit", w->id); /* trapped: ignored, we linger */
    return 0;
}

static void worker_terminate(tr_actor *self, void *state, const tr_exit_reason *r)
{
    (void)self;
    (void)r;
    record("term", ((worker *)state)->id);
}

static const tr_behavior worker_b = {.name = "worker", .state_size = sizeof(worker),
                                     .init = worker_init, .receive = worker_receive,
                                     .terminate = worker_terminate};

/* ---- helpers ------------------------------------------------------------------ */

static int ids[8] = {0, 1, 2, 3, 4, 5, 6, 7};

static tr_child_spec child(const char *name, int *id, tr_restart restart)
{
    tr_child_spec c = {.id = name, .behavior = &worker_b, .arg = id, .arg_len = sizeof *id,
                       .restart = restart, .loop = TR_LOOP_DEFAULT};
    return c;
}

/* A started 2-loop kit runtime (troupe_test.h: its virtual clock starts
 * at 1 s) whose log is captured, with no events recorded yet. */
static tr_runtime *runtime(void)
{
    atomic_store(&nevents, 0);
    return tr_test_kit(2, TR_TEST_LOG, 0);
}

static int list(tr_runtime *rt, tr_pid sup, tr_sup_child *out)
{
    int n = tr_rt_sup_which_children(rt, sup, out, 8);
    assert_true(n >= 0);
    return n;
}


static tr_sup_spec three(tr_strategy strategy, tr_child_spec *kids)
{
    kids[0] = child("a", &ids[0], TR_PERMANENT);
    kids[1] = child("b", &ids[1], TR_PERMANENT);
    kids[2] = child("c", &ids[2], TR_PERMANENT);
    tr_sup_spec s = {.strategy = strategy, .max_restarts = 10, .period_ms = 1000,
                     .children = kids, .nchildren = 3};
    return s;
}

/* ---- strategies ------------------------------------------------------------------ */

static void run_strategy(tr_strategy strategy, int kill, const int *expect_new)
{
    tr_runtime *rt = runtime();
    tr_child_spec kids[3];
    tr_sup_spec spec = three(strategy, kids);
    tr_pid sup;
    assert_int_equal(tr_rt_sup_spawn(rt, &spec, NULL, &sup), 0);
    tr_sup_child before[8], after[8];
    assert_int_equal(list(rt, sup, before), 3);
    assert_string_equal(before[0].id, "a");
    assert_string_equal(before[2].id, "c");
    for (int i = 0; i < 3; i++)
        assert_int_not_equal(before[i].pid, TR_PID_NONE);
    assert_int_equal(tr_rt_send(rt, before[kill].pid, FAIL, NULL, 0), 0);
    for (int i = 0; i < 3; i++)
        if (expect_new[i])
            tr_test_wait_child(rt, sup, i, before[i].pid);
    list(rt, sup, after);
    for (int i = 0; i < 3; i++) {
        if (expect_new[i])
            assert_int_not_equal(after[i].pid, before[i].pid);
        else
            assert_int_equal(after[i].pid, before[i].pid);
    }
    assert_int_equal(after[kill].restarts, 1);
    assert_true(tr_test_has_log("child 'b'") || kill != 1);
    assert_true(tr_test_has_log("restart"));
    assert_int_equal(tr_runtime_free(rt), 0);
}

static void test_one_for_one(void **state)
{
    (void)state;
    static const int expect[3] = {0, 1, 0};
    run_strategy(TR_ONE_FOR_ONE, 1, expect);
    assert_true(tr_test_has_log("restarting child 'b'"));
}

static void test_one_for_all(void **state)
{
    (void)state;
    static const int expect[3] = {1, 1, 1};
    run_strategy(TR_ONE_FOR_ALL, 1, expect);
}

static void test_rest_for_one(void **state)
{
    (void)state;
    static const int expect[3] = {0, 1, 1};
    run_strategy(TR_REST_FOR_ONE, 1, expect);
}

/* ---- restart types --------------------------------------------------------------- */

static void test_restart_types(void **state)
{
    (void)state;
    tr_runtime *rt = runtime();
    tr_child_spec kids[3] = {child("perm", &ids[0], TR_PERMANENT),
                             child("trans", &ids[1], TR_TRANSIENT),
                             child("temp", &ids[2], TR_TEMPORARY)};
    tr_sup_spec spec = {.strategy = TR_ONE_FOR_ONE, .children = kids, .nchildren = 3};
    tr_pid sup;
    assert_int_equal(tr_rt_sup_spawn(rt, &spec, NULL, &sup), 0);
    tr_sup_child c[8];
    list(rt, sup, c);
    /* Permanent: even a normal exit is restarted. */
    assert_int_equal(tr_rt_send(rt, c[0].pid, QUIT, NULL, 0), 0);
    tr_test_wait_child(rt, sup, 0, c[0].pid);
    /* Transient: a normal exit is final... */
    assert_int_equal(tr_rt_send(rt, c[1].pid, QUIT, NULL, 0), 0);
    TR_WAIT_UNTIL(list(rt, sup, c) == 3 && c[1].pid == TR_PID_NONE);
    assert_int_equal(c[1].restarts, 0);
    /* Temporary: even a failure is final. */
    assert_int_equal(tr_rt_send(rt, c[2].pid, FAIL, NULL, 0), 0);
    TR_WAIT_UNTIL(list(rt, sup, c) == 3 && c[2].pid == TR_PID_NONE);
    assert_int_equal(c[2].restarts, 0);
    assert_int_equal(tr_runtime_free(rt), 0);

    /* Transient: a failure is restarted. */
    rt = runtime();
    tr_child_spec k1 = child("trans", &ids[1], TR_TRANSIENT);
    tr_sup_spec s1 = {.strategy = TR_ONE_FOR_ONE, .children = &k1, .nchildren = 1};
    assert_int_equal(tr_rt_sup_spawn(rt, &s1, NULL, &sup), 0);
    list(rt, sup, c);
    assert_int_equal(tr_rt_send(rt, c[0].pid, FAIL, NULL, 0), 0);
    tr_test_wait_child(rt, sup, 0, c[0].pid);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- intensity and escalation ------------------------------------------------------ */

static void test_intensity(void **state)
{
    (void)state;
    tr_runtime *rt = runtime();
    tr_child_spec leaf_kid = child("leaf", &ids[3], TR_PERMANENT);
    tr_sup_spec spec = {.strategy = TR_ONE_FOR_ONE, .max_restarts = 2, .period_ms = 5000,
                        .children = &leaf_kid, .nchildren = 1};
    tr_pid mid;
    assert_int_equal(tr_rt_sup_spawn(rt, &spec, NULL, &mid), 0);
    tr_sup_child c[8];
    list(rt, mid, c);
    /* Two failures are within the intensity; the third is not. */
    tr_pid leaf = c[0].pid;
    for (int round = 0; round < 2; round++) {
        assert_int_equal(tr_rt_send(rt, leaf, FAIL, NULL, 0), 0);
        leaf = tr_test_wait_child(rt, mid, 0, leaf).pid;
    }
    assert_int_equal(tr_runtime_stopping(rt), 0);
    assert_int_equal(tr_rt_send(rt, leaf, FAIL, NULL, 0), 0);
    /* A top-level supervisor is permanent: its giving up ends the runtime,
     * and tr_runtime_wait says why. */
    assert_int_equal(tr_runtime_wait(rt), TR_EPERMANENT);
    assert_int_not_equal(tr_runtime_stopping(rt), 0);
    tr_down d;
    assert_int_equal(tr_runtime_exit_reason(rt, &d), 0);
    assert_int_equal(d.pid, mid);
    assert_int_equal(d.kind, TR_EXIT_ERROR);
    assert_int_equal(d.code, TR_ELIMIT);
    assert_int_equal(tr_rt_send(rt, mid, ASK, NULL, 0), TR_ESTOPPED);
    assert_true(tr_test_has_log("restart intensity exceeded"));
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* Escalation through two levels, with supervisors as children of
 * supervisors: top (1 restart in 5 s) -> mid (1 restart in 5 s) -> leaf.
 * Two quick leaf failures exceed mid's intensity: mid ends and top
 * restarts it (a fresh mid, a fresh leaf). Two more exceed the new mid's
 * intensity, and that second restart of mid exceeds top's: top ends too. */
static void test_escalation(void **state)
{
    (void)state;
    tr_runtime *rt = runtime();
    tr_child_spec leaf = child("leaf", &ids[4], TR_PERMANENT);
    tr_sup_spec mid_spec = {.strategy = TR_ONE_FOR_ONE, .max_restarts = 1, .period_ms = 5000,
                            .children = &leaf, .nchildren = 1};
    tr_child_spec mid_kid = {.id = "mid", .supervisor = &mid_spec, .restart = TR_PERMANENT};
    tr_sup_spec top_spec = {.strategy = TR_ONE_FOR_ONE, .max_restarts = 1, .period_ms = 5000,
                            .children = &mid_kid, .nchildren = 1};
    tr_pid top;
    assert_int_equal(tr_rt_sup_spawn(rt, &top_spec, NULL, &top), 0);
    tr_sup_child c[8], mc[8];
    assert_int_equal(list(rt, top, c), 1);
    tr_pid mid = c[0].pid;
    assert_int_equal(list(rt, mid, mc), 1); /* a supervisor: it answers WHICH */
    assert_string_equal(mc[0].id, "leaf");
    /* Level 2: mid gives up; top restarts it. */
    assert_int_equal(tr_rt_send(rt, mc[0].pid, FAIL, NULL, 0), 0);
    tr_pid leaf2 = tr_test_wait_child(rt, mid, 0, mc[0].pid).pid;
    assert_int_equal(tr_rt_send(rt, leaf2, FAIL, NULL, 0), 0);
    tr_pid mid2 = tr_test_wait_child(rt, top, 0, mid).pid;
    assert_int_not_equal(mid2, mid);
    list(rt, top, c);
    assert_int_equal(c[0].restarts, 1);
    TR_WAIT_UNTIL(list(rt, mid2, mc) == 1 && mc[0].pid != TR_PID_NONE);
    assert_int_equal(mc[0].restarts, 0); /* fresh state */
    /* Level 1: the same again exceeds top's intensity: top ends. */
    assert_int_equal(tr_rt_send(rt, mc[0].pid, FAIL, NULL, 0), 0);
    tr_pid leaf3 = tr_test_wait_child(rt, mid2, 0, mc[0].pid).pid;
    assert_int_equal(tr_rt_send(rt, leaf3, FAIL, NULL, 0), 0);
    assert_int_equal(tr_runtime_wait(rt), TR_EPERMANENT);
    tr_down d;
    assert_int_equal(tr_runtime_exit_reason(rt, &d), 0);
    assert_int_equal(d.pid, top);
    assert_int_equal(d.code, TR_ELIMIT);
    char line[96];
    snprintf(line, sizeof line, "supervisor " TR_PID_FMT ": restart intensity exceeded",
             TR_PID_ARGS(top));
    assert_true(tr_test_has_log(line));
    snprintf(line, sizeof line, "supervisor " TR_PID_FMT ": restart intensity exceeded",
             TR_PID_ARGS(mid));
    assert_true(tr_test_has_log(line));
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* A nested supervisor spec is checked like the top one. */
static void test_nested_bad_spec(void **state)
{
    (void)state;
    tr_runtime *rt = runtime();
    tr_child_spec bad_leaf = child("leaf", &ids[0], TR_PERMANENT);
    bad_leaf.behavior = NULL;
    tr_sup_spec mid_spec = {.strategy = TR_ONE_FOR_ONE, .children = &bad_leaf, .nchildren = 1};
    tr_child_spec mid_kid = {.id = "mid", .supervisor = &mid_spec};
    tr_sup_spec top_spec = {.strategy = TR_ONE_FOR_ONE, .children = &mid_kid, .nchildren = 1};
    tr_pid top;
    assert_int_equal(tr_rt_sup_spawn(rt, &top_spec, NULL, &top), TR_EINVAL);
    mid_kid.arg = "x"; /* a supervisor child takes no argument */
    mid_kid.arg_len = 1;
    bad_leaf.behavior = &worker_b;
    assert_int_equal(tr_rt_sup_spawn(rt, &top_spec, NULL, &top), TR_EINVAL);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- start failure ------------------------------------------------------------------ */

static void test_start_failure(void **state)
{
    (void)state;
    tr_runtime *rt = runtime();
    static int bad = -1;
    tr_child_spec kids[3] = {child("a", &ids[0], TR_PERMANENT),
                             child("b", &ids[1], TR_PERMANENT),
                             child("broken", &bad, TR_PERMANENT)};
    tr_sup_spec spec = {.strategy = TR_ONE_FOR_ONE, .children = kids, .nchildren = 3};
    tr_pid sup;
    /* An independent top-level supervisor's failure leaves the runtime up. */
    tr_spawn_opts indep;
    tr_spawn_opts_init(&indep);
    indep.top = TR_TOP_INDEPENDENT;
    assert_int_equal(tr_rt_sup_spawn(rt, &spec, &indep, &sup), TR_EFAILED);
    TR_WAIT_GONE(rt, sup, ASK);
    assert_int_equal(tr_runtime_stopping(rt), 0);
    /* a and b were started, then stopped in reverse order. */
    TR_WAIT_UNTIL(atomic_load(&nevents) == 4);
    pthread_mutex_lock(&mu);
    assert_string_equal(events[0], "start 0");
    assert_string_equal(events[1], "start 1");
    assert_string_equal(events[2], "term 1");
    assert_string_equal(events[3], "term 0");
    pthread_mutex_unlock(&mu);
    assert_true(tr_test_has_log("child 'broken' failed to start"));
    /* Bad specs. */
    tr_sup_spec empty = {.strategy = TR_SIMPLE_ONE_FOR_ONE};
    assert_int_equal(tr_rt_sup_spawn(rt, &empty, NULL, &sup), TR_EINVAL);
    tr_child_spec nobeh = {.id = "x"};
    tr_sup_spec s2 = {.children = &nobeh, .nchildren = 1};
    assert_int_equal(tr_rt_sup_spawn(rt, &s2, NULL, &sup), TR_EINVAL);
    assert_int_equal(tr_rt_sup_spawn(rt, NULL, NULL, &sup), TR_EINVAL);
    /* A permanent one (the default) takes the runtime down with it. */
    assert_int_equal(tr_rt_sup_spawn(rt, &spec, NULL, &sup), TR_EFAILED);
    assert_int_equal(tr_runtime_wait(rt), TR_EPERMANENT);
    tr_down d;
    assert_int_equal(tr_runtime_exit_reason(rt, &d), 0);
    assert_int_equal(d.pid, sup);
    assert_int_equal(d.kind, TR_EXIT_ERROR);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- shutdown order and timeouts ------------------------------------------------------ */

static void test_shutdown_order_and_timeout(void **state)
{
    (void)state;
    tr_runtime *rt = runtime();
    uint64_t t0 = tr_now(rt);
    static int lingering = 101;
    tr_child_spec kids[3] = {child("a", &ids[0], TR_PERMANENT),
                             child("slow", &lingering, TR_PERMANENT),
                             child("c", &ids[2], TR_PERMANENT)};
    kids[1].shutdown_ms = 300;
    tr_sup_spec spec = {.strategy = TR_ONE_FOR_ONE, .children = kids, .nchildren = 3};
    tr_pid sup;
    assert_int_equal(tr_rt_sup_spawn(rt, &spec, NULL, &sup), 0);
    assert_int_equal(tr_runtime_stop(rt), 0);
    /* c stops at once; "slow" traps and lingers until its 300 ms are up. */
    /* Once "slow" has its (trapped) shutdown, its kill timer is armed: the
     * supervisor arms it before signalling. Settled: nothing more happens
     * until time moves. */
    assert_int_equal(tr_test_settle(rt), 0);
    assert_int_equal(atomic_load(&nevents), 5);
    tr_test_advance_to(rt, t0 + 299 * MS);
    assert_int_equal(atomic_load(&nevents), 5);
    tr_test_advance_to(rt, t0 + 300 * MS);
    assert_int_equal(tr_runtime_wait(rt), 0);
    pthread_mutex_lock(&mu);
    assert_string_equal(events[3], "term 2");
    assert_string_equal(events[4], "exit 101");
    assert_string_equal(events[5], "term 101");
    assert_string_equal(events[6], "term 0");
    pthread_mutex_unlock(&mu);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- dynamic children ---------------------------------------------------------------- */

static void test_dynamic(void **state)
{
    (void)state;
    tr_runtime *rt = runtime();
    tr_child_spec tpl = child("conn", &ids[0], TR_TRANSIENT);
    tr_sup_spec spec = {.strategy = TR_SIMPLE_ONE_FOR_ONE, .children = &tpl, .nchildren = 1};
    tr_pid sup;
    assert_int_equal(tr_rt_sup_spawn(rt, &spec, NULL, &sup), 0);
    tr_sup_child c[8];
    assert_int_equal(list(rt, sup, c), 1); /* the template, not running */
    assert_int_equal(c[0].pid, TR_PID_NONE);
    tr_pid kids[3];
    for (int i = 0; i < 3; i++) {
        int id = 10 + i;
        assert_int_equal(tr_rt_sup_start_child(rt, sup, &id, sizeof id, &kids[i]), 0);
        int got;
        tr_test_ask(rt, kids[i], ASK, NULL, 0, &got, sizeof got);
        assert_int_equal(got, id); /* its own argument */
    }
    assert_int_equal(list(rt, sup, c), 4);
    /* A failing dynamic child is restarted with its own argument. */
    assert_int_equal(tr_rt_send(rt, kids[1], FAIL, NULL, 0), 0);
    tr_pid again = tr_test_wait_child(rt, sup, 2, kids[1]).pid;
    int got;
    tr_test_ask(rt, again, ASK, NULL, 0, &got, sizeof got);
    assert_int_equal(got, 11);
    /* Stopping one removes it; a normal exit of a transient one too. */
    assert_int_equal(tr_rt_sup_stop_child(rt, sup, kids[0]), 0);
    TR_WAIT_UNTIL(list(rt, sup, c) == 3);
    assert_int_equal(tr_rt_send(rt, kids[2], QUIT, NULL, 0), 0);
    TR_WAIT_UNTIL(list(rt, sup, c) == 2);
    assert_int_equal(tr_rt_sup_stop_child(rt, sup, 12345), TR_ENOTFOUND);
    /* A bad start argument: the child's init fails. */
    int bad = -1;
    assert_int_equal(tr_rt_sup_start_child(rt, sup, &bad, sizeof bad, NULL), TR_EFAILED);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- children added, stopped, restarted and deleted at run time ------------------------ */

static void test_runtime_changes(void **state)
{
    (void)state;
    tr_runtime *rt = runtime();
    tr_child_spec kids[3];
    tr_sup_spec spec = three(TR_ONE_FOR_ONE, kids);
    tr_pid sup;
    assert_int_equal(tr_rt_sup_spawn(rt, &spec, NULL, &sup), 0);
    /* Add: appended, started, answered with its pid. */
    tr_child_spec d = child("d", &ids[3], TR_PERMANENT);
    tr_pid dpid;
    assert_int_equal(tr_rt_sup_add_child(rt, sup, &d, &dpid), 0);
    tr_sup_child c[8];
    assert_int_equal(list(rt, sup, c), 4);
    assert_string_equal(c[3].id, "d");
    assert_int_equal(c[3].pid, dpid);
    /* It is supervised like the others. */
    assert_int_equal(tr_rt_send(rt, dpid, FAIL, NULL, 0), 0);
    dpid = tr_test_wait_child(rt, sup, 3, dpid).pid;
    /* Bad adds: a taken id, a bad spec, a child that cannot start. */
    assert_int_equal(tr_rt_sup_add_child(rt, sup, &d, NULL), TR_EEXIST);
    tr_child_spec bad = d;
    bad.behavior = NULL;
    assert_int_equal(tr_rt_sup_add_child(rt, sup, &bad, NULL), TR_EINVAL);
    int neg = -1;
    tr_child_spec failing = child("e", &neg, TR_PERMANENT);
    assert_int_equal(tr_rt_sup_add_child(rt, sup, &failing, NULL), TR_EFAILED);
    assert_int_equal(list(rt, sup, c), 4); /* not kept */
    /* Stop keeps the spec; restart brings it back; delete forgets it. */
    assert_int_equal(tr_rt_sup_stop_child(rt, sup, c[1].pid), 0);
    TR_WAIT_UNTIL(list(rt, sup, c) == 4 && c[1].pid == TR_PID_NONE);
    assert_int_equal(tr_rt_sup_restart_child(rt, sup, "a", NULL), TR_EEXIST); /* running */
    assert_int_equal(tr_rt_sup_delete_child(rt, sup, "a"), TR_EEXIST);
    assert_int_equal(tr_rt_sup_restart_child(rt, sup, "zz", NULL), TR_ENOTFOUND);
    assert_int_equal(tr_rt_sup_restart_child(rt, sup, NULL, NULL), TR_EINVAL);
    tr_pid b;
    assert_int_equal(tr_rt_sup_restart_child(rt, sup, "b", &b), 0);
    assert_int_equal(list(rt, sup, c), 4);
    assert_int_equal(c[1].pid, b);
    assert_int_equal(tr_rt_sup_stop_child(rt, sup, b), 0);
    TR_WAIT_UNTIL(list(rt, sup, c) == 4 && c[1].pid == TR_PID_NONE);
    assert_int_equal(tr_rt_sup_delete_child(rt, sup, "b"), 0);
    assert_int_equal(list(rt, sup, c), 3);
    assert_string_equal(c[0].id, "a");
    assert_string_equal(c[1].id, "c");
    assert_string_equal(c[2].id, "d");
    /* A dynamic supervisor takes START, not ADD. */
    tr_child_spec tpl = child("conn", &ids[0], TR_TRANSIENT);
    tr_sup_spec dyn = {.strategy = TR_SIMPLE_ONE_FOR_ONE, .children = &tpl, .nchildren = 1};
    tr_pid dsup;
    assert_int_equal(tr_rt_sup_spawn(rt, &dyn, NULL, &dsup), 0);
    assert_int_equal(tr_rt_sup_add_child(rt, dsup, &d, NULL), TR_EINVAL);
    assert_int_equal(tr_rt_sup_start_child(rt, sup, &ids[0], sizeof ids[0], NULL), TR_EINVAL);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- backoff ------------------------------------------------------------------------ */

static void test_backoff(void **state)
{
    (void)state;
    tr_runtime *rt = runtime();
    uint64_t t0 = tr_now(rt);
    tr_child_spec k = child("flaky", &ids[5], TR_PERMANENT);
    tr_sup_spec spec = {.strategy = TR_ONE_FOR_ONE, .max_restarts = 10, .period_ms = 100000,
                        .backoff_min_ms = 100, .backoff_max_ms = 400,
                        .backoff_reset_ms = 10000, .children = &k, .nchildren = 1};
    tr_pid sup;
    assert_int_equal(tr_rt_sup_spawn(rt, &spec, NULL, &sup), 0);
    tr_sup_child c[8];
    list(rt, sup, c);
    /* First restart: 50..100 ms later. */
    assert_int_equal(tr_rt_send(rt, c[0].pid, FAIL, NULL, 0), 0);
    assert_int_equal(tr_test_settle(rt), 0);
    assert_int_equal(list(rt, sup, c), 1);
    assert_int_equal(c[0].pid, TR_PID_NONE);
    tr_test_advance_to(rt, t0 + 49 * MS);
    list(rt, sup, c);
    assert_int_equal(c[0].pid, TR_PID_NONE);
    tr_test_advance_to(rt, t0 + 100 * MS);
    list(rt, sup, c);
    tr_pid p1 = c[0].pid;
    assert_true(p1 != TR_PID_NONE);
    /* Second (consecutive): 100..200 ms. */
    assert_int_equal(tr_rt_send(rt, p1, FAIL, NULL, 0), 0);
    assert_int_equal(tr_test_settle(rt), 0);
    assert_int_equal(list(rt, sup, c), 1);
    assert_int_equal(c[0].pid, TR_PID_NONE);
    tr_test_advance_to(rt, t0 + 199 * MS);
    list(rt, sup, c);
    assert_int_equal(c[0].pid, TR_PID_NONE);
    tr_test_advance_to(rt, t0 + 300 * MS);
    list(rt, sup, c);
    assert_true(c[0].pid != TR_PID_NONE && c[0].pid != p1);
    assert_int_equal(tr_runtime_free(rt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_for_one),
        cmocka_unit_test(test_one_for_all),
        cmocka_unit_test(test_rest_for_one),
        cmocka_unit_test(test_restart_types),
        cmocka_unit_test(test_intensity),
        cmocka_unit_test(test_escalation),
        cmocka_unit_test(test_nested_bad_spec),
        cmocka_unit_test(test_start_failure),
        cmocka_unit_test(test_shutdown_order_and_timeout),
        cmocka_unit_test(test_dynamic),
        cmocka_unit_test(test_runtime_changes),
        cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
