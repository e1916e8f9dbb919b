/*
 * test_groups.c — task groups: collect and fail-fast modes, results in
 * spawn order, jobs as members, the deadline on the runtime clock, the
 * concurrency limit, cancel, the owner's exit, and bad input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "troupe_test.h"
#include "tr_test.h"

enum { GO = 1, RELEASE = 2, PING = 3 };

/* ---- children ------------------------------------------------------------------ */

/* What a child does: end at once with a result, fail, or wait for RELEASE
 * (or a shutdown). */
enum { C_RESULT, C_FAIL, C_WAIT };
typedef struct child_arg {
    int what;
    int value;
    int index;
} child_arg;

#define MAXC 16
static _Atomic int started, running, max_running, terminated;
static _Atomic tr_pid started_pid[MAXC];
static _Atomic int start_order[MAXC];

static int child_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    child_arg a;
    TR_CHECK_COPY(&a, arg, len);
    memcpy(state, &a, sizeof a);
    /* The pid before the count: the test thread reads started_pid[k] as
     * soon as `started` says child k is running. */
    if (a.index >= 0 && a.index < MAXC)
        atomic_store(&started_pid[a.index], tr_self(self));
    int n = atomic_fetch_add(&started, 1);
    if (n < MAXC)
        atomic_store(&start_order[n], a.index);
    int r = atomic_fetch_add(&running, 1) + 1;
    int m = atomic_load(&max_running);
    while (r > m && !atomic_compare_exchange_weak(&max_running, &m, r))
        ;
    if (a.what == C_RESULT)
        return tr_exit_result(self, &a.value, sizeof a.value);
    if (a.what == C_FAIL)
        return tr_exit_error(self, a.value, "child failed on purpose");
    return 0;
}

static int child_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    child_arg *a = state;
    if (msg->type == RELEASE)
        return tr_exit_result(self, &a->value, sizeof a->value);
    return 0;
}

static void child_terminate(tr_actor *self, void *state, const tr_exit_reason *r)
{
    (void)self;
    (void)state;
    (void)r;
    atomic_fetch_sub(&running, 1);
    atomic_fetch_add(&terminated, 1);
}

static const tr_behavior child_b = {.name = "child", .state_size = sizeof(child_arg),
                                    .init = child_init, .receive = child_receive,
                                    .terminate = child_terminate};

static int square_job(tr_job *job, const void *arg, size_t len)
{
    int v;
    TR_CHECK_COPY(&v, arg, len);
    v *= v;
    return tr_job_set_result(job, &v, sizeof v);
}

static int failing_job(tr_job *job, const void *arg, size_t len)
{
    (void)job;
    (void)arg;
    (void)len;
    return 77;
}

/* Runs until cancelled. */
static int endless_job(tr_job *job, const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    while (!tr_job_cancelled(job))
        sched_yield();
    return 0;
}

/* ---- the owner ------------------------------------------------------------------- */

typedef struct entry {
    tr_pid pid;
    int kind, code, result;
    uint32_t result_len;
} entry;

static _Atomic int done, terminated_at_done, own_down, own_job;
static tr_group_done got;
static entry got_e[MAXC];
static tr_group_id got_ref, opened;
static int first_failed_kind, first_failed_code;

typedef void (*scenario_fn)(tr_actor *self);
static scenario_fn scenario;

static int owner_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    switch (msg->type) {
    case GO:
        scenario(self);
        return 0;
    case PING:
        return tr_reply(self, msg, PING, NULL, 0);
    case TR_MSG_GROUP_DONE:
        TR_CHECK(!atomic_load(&done)); /* exactly one completion */
        memcpy(&got, msg->data, sizeof got);
        got_ref = msg->ref;
        for (uint32_t i = 0; i < got.n && i < MAXC; i++) {
            const tr_down *d = tr_group_entry(msg, i);
            TR_CHECK(d != NULL);
            got_e[i] = (entry){.pid = d->pid, .kind = d->kind, .code = d->code,
                               .result_len = d->result_len};
            if (d->result_len == sizeof(int))
                memcpy(&got_e[i].result, tr_down_result(d), sizeof(int));
        }
        TR_CHECK(tr_group_entry(msg, got.n) == NULL);
        if (got.failed) {
            const tr_down *d = tr_group_entry(msg, got.first_failed);
            first_failed_kind = d->kind;
            first_failed_code = d->code;
        }
        atomic_store(&terminated_at_done, atomic_load(&terminated));
        atomic_store(&done, 1);
        return 0;
    case TR_MSG_DOWN: /* the owner's own monitor, not a group's */
        atomic_store(&own_down, 1);
        return 0;
    case TR_MSG_JOB_DONE: /* the owner's own job */
        atomic_store(&own_job, 1);
        return 0;
    default:
        return 0;
    }
}

static const tr_behavior owner_b = {.name = "owner", .receive = owner_receive};

static void reset(void)
{
    atomic_store(&started, 0);
    atomic_store(&running, 0);
    atomic_store(&max_running, 0);
    atomic_store(&terminated, 0);
    atomic_store(&done, 0);
    atomic_store(&own_down, 0);
    atomic_store(&own_job, 0);
    for (int i = 0; i < MAXC; i++) {
        atomic_store(&started_pid[i], TR_PID_NONE);
        atomic_store(&start_order[i], -1);
    }
    memset(&got, 0, sizeof got);
    memset(got_e, 0, sizeof got_e);
}

static tr_pid run_scenario(tr_runtime *rt, scenario_fn fn)
{
    reset();
    scenario = fn;
    tr_pid owner;
    assert_int_equal(tr_rt_spawn(rt, &owner_b, NULL, &owner), 0);
    assert_int_equal(tr_rt_send(rt, owner, GO, NULL, 0), 0);
    return owner;
}

static void spawn_child(tr_actor *self, tr_group_id g, int what, int value, int index,
                        int loop)
{
    child_arg a = {what, value, index};
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.arg = &a;
    o.arg_len = sizeof a;
    o.loop = TR_LOOP(loop);
    tr_pid pid;
    TR_CHECK_EQ(tr_group_spawn(self, g, &child_b, &o, &pid), 0);
}

/* ---- collect ---------------------------------------------------------------------- */

static tr_pid watched;

static void collect_scenario(tr_actor *self)
{
    tr_group_opts o;
    tr_group_opts_init(&o);
    o.mode = TR_GROUP_COLLECT;
    TR_CHECK_EQ(tr_group_open(self, &o, &opened), 0);
    spawn_child(self, opened, C_RESULT, 10, 0, 0);
    spawn_child(self, opened, C_RESULT, 11, 1, 1);
    spawn_child(self, opened, C_FAIL, 42, 2, 0);
    int v = 7;
    TR_CHECK_EQ(tr_group_offload(self, opened, square_job, &v, sizeof v), 0);
    TR_CHECK_EQ(tr_group_offload(self, opened, failing_job, NULL, 0), 0);
    spawn_child(self, opened, C_RESULT, 13, 5, 1);
    TR_CHECK_EQ(tr_group_close(self, opened), 0);
    /* The owner's own monitor and job are not the group's. */
    tr_ref ref;
    TR_CHECK_EQ(tr_monitor(self, watched, &ref), 0);
    tr_job_id jid;
    TR_CHECK_EQ(tr_offload(self, square_job, &v, sizeof v, &jid), 0);
}

static int quit_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    (void)msg;
    return tr_exit(self, TR_EXIT_NORMAL);
}
static const tr_behavior quitter_b = {.name = "quitter", .receive = quit_receive};

static void test_collect_results_in_spawn_order(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, 0);
    assert_int_equal(tr_rt_spawn(rt, &quitter_b, NULL, &watched), 0);
    run_scenario(rt, collect_scenario);
    TR_WAIT_UNTIL(atomic_load(&done));
    assert_int_equal(got_ref, opened);
    assert_int_equal(got.code, TR_EFAILED);
    assert_int_equal(got.n, 6);
    assert_int_equal(got.failed, 2);
    /* The first to fail in time: the actor or the job. */
    assert_true(got.first_failed == 2 || got.first_failed == 4);
    /* Actors: their pids and results, in spawn order. */
    int results[] = {10, 11, 0, 49, 0, 13};
    int kinds[] = {TR_EXIT_NORMAL, TR_EXIT_NORMAL, TR_EXIT_ERROR,
                   TR_EXIT_NORMAL, TR_EXIT_ERROR, TR_EXIT_NORMAL};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(got_e[i].kind, kinds[i]);
        if (kinds[i] == TR_EXIT_NORMAL) {
            assert_int_equal(got_e[i].result_len, sizeof(int));
            assert_int_equal(got_e[i].result, results[i]);
        }
    }
    assert_int_equal(got_e[0].pid, atomic_load(&started_pid[0]));
    assert_int_equal(got_e[5].pid, atomic_load(&started_pid[5]));
    assert_int_equal(got_e[2].code, 42);
    assert_int_equal(got_e[4].code, 77);
    assert_true(got_e[3].pid != TR_PID_NONE); /* the job's id */
    /* Every child ended before the completion. */
    assert_int_equal(atomic_load(&terminated_at_done), 4);
    /* The owner's own monitor and job still reach it. */
    assert_int_equal(tr_rt_send(rt, watched, PING, NULL, 0), 0);
    TR_WAIT_UNTIL(atomic_load(&own_down) && atomic_load(&own_job));
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- fail-fast ---------------------------------------------------------------------- */

static void fail_fast_scenario(tr_actor *self)
{
    TR_CHECK_EQ(tr_group_open(self, NULL, &opened), 0);
    spawn_child(self, opened, C_WAIT, 1, 0, 0);
    spawn_child(self, opened, C_WAIT, 2, 1, 1);
    TR_CHECK_EQ(tr_group_offload(self, opened, endless_job, NULL, 0), 0);
    spawn_child(self, opened, C_WAIT, 3, 3, 1);
    spawn_child(self, opened, C_FAIL, 42, 4, 0);
    TR_CHECK_EQ(tr_group_close(self, opened), 0);
}

static void test_fail_fast_cancels_siblings(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, 0);
    run_scenario(rt, fail_fast_scenario);
    TR_WAIT_UNTIL(atomic_load(&done));
    assert_int_equal(got.code, 42);
    assert_int_equal(got.n, 5);
    assert_int_equal(got.failed, 1);
    assert_int_equal(got.first_failed, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(got_e[i].kind, TR_EXIT_SHUTDOWN);
    }
    assert_int_equal(got_e[2].code, TR_ECANCELED); /* the job */
    assert_int_equal(got_e[4].kind, TR_EXIT_ERROR);
    assert_int_equal(got_e[4].code, 42);
    /* Structured: the siblings had ended when the completion came. */
    assert_int_equal(atomic_load(&terminated_at_done), 4);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- success ---------------------------------------------------------------------- */

static void success_scenario(tr_actor *self)
{
    TR_CHECK_EQ(tr_group_open(self, NULL, &opened), 0);
    for (int i = 0; i < 8; i++)
        spawn_child(self, opened, C_RESULT, 100 + i, i, i % 2);
    TR_CHECK_EQ(tr_group_close(self, opened), 0);
}

static void test_fail_fast_all_succeed(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, 0);
    run_scenario(rt, success_scenario);
    TR_WAIT_UNTIL(atomic_load(&done));
    assert_int_equal(got.code, 0);
    assert_int_equal(got.n, 8);
    assert_int_equal(got.failed, 0);
    assert_int_equal(got.first_failed, UINT32_MAX);
    for (int i = 0; i < 8; i++)
        assert_int_equal(got_e[i].result, 100 + i);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- deadline on the virtual clock --------------------------------------------------- */

static void deadline_scenario(tr_actor *self)
{
    tr_group_opts o;
    tr_group_opts_init(&o);
    o.mode = TR_GROUP_COLLECT;
    o.timeout_ms = 1000;
    TR_CHECK_EQ(tr_group_open(self, &o, &opened), 0);
    spawn_child(self, opened, C_WAIT, 1, 0, 0);
    spawn_child(self, opened, C_RESULT, 5, 1, 0);
    spawn_child(self, opened, C_WAIT, 2, 2, 1);
    TR_CHECK_EQ(tr_group_close(self, opened), 0);
}

static void test_deadline(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_kit(2, 0, 0);
    tr_pid owner = run_scenario(rt, deadline_scenario);
    assert_int_equal(tr_test_settle(rt), 0);
    assert_int_equal(atomic_load(&started), 3);
    assert_int_equal(atomic_load(&terminated), 1);
    tr_test_advance_to(rt, 1000000000ull + 999000000ull); /* 1 ms short */
    tr_test_ask(rt, owner, PING, NULL, 0, NULL, 0);
    assert_int_equal(atomic_load(&done), 0);
    assert_int_equal(atomic_load(&terminated), 1);
    tr_test_advance_to(rt, 1000000000ull + 1000000000ull);
    assert_int_equal(atomic_load(&done), 1);
    assert_int_equal(got.code, TR_ETIMEDOUT);
    assert_int_equal(got.n, 3);
    assert_int_equal(got.failed, 0); /* cancelled, not failed */
    assert_int_equal(got_e[0].kind, TR_EXIT_SHUTDOWN);
    assert_int_equal(got_e[1].kind, TR_EXIT_NORMAL);
    assert_int_equal(got_e[1].result, 5);
    assert_int_equal(got_e[2].kind, TR_EXIT_SHUTDOWN);
    assert_int_equal(atomic_load(&terminated_at_done), 3);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- concurrency limit --------------------------------------------------------------- */

static void limit_scenario(tr_actor *self)
{
    tr_group_opts o;
    tr_group_opts_init(&o);
    o.max_running = 2;
    TR_CHECK_EQ(tr_group_open(self, &o, &opened), 0);
    for (int i = 0; i < 6; i++) {
        child_arg a = {C_WAIT, 200 + i, i};
        tr_spawn_opts so;
        tr_spawn_opts_init(&so);
        so.arg = &a;
        so.arg_len = sizeof a;
        so.loop = TR_LOOP(i % 2);
        tr_pid pid;
        TR_CHECK_EQ(tr_group_spawn(self, opened, &child_b, &so, &pid), 0);
        TR_CHECK(i < 2 ? pid != TR_PID_NONE : pid == TR_PID_NONE); /* waits its turn */
    }
    TR_CHECK_EQ(tr_group_close(self, opened), 0);
}

static void test_concurrency_limit(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, 0);
    run_scenario(rt, limit_scenario);
    for (int k = 0; k < 6; k++) {
        int expect = k + 2 < 6 ? k + 2 : 6;
        TR_WAIT_UNTIL(atomic_load(&started) == expect);
        /* Release the oldest: the next waiting child takes its place. */
        tr_pid p = atomic_load(&started_pid[k]);
        assert_int_equal(tr_rt_send(rt, p, RELEASE, NULL, 0), 0);
        TR_WAIT_UNTIL(atomic_load(&terminated) == k + 1);
    }
    TR_WAIT_UNTIL(atomic_load(&done));
    assert_int_equal(atomic_load(&max_running), 2);
    /* Started in spawn order (the first two at once, on two loops). */
    assert_int_equal(atomic_load(&start_order[0]) + atomic_load(&start_order[1]), 1);
    for (int i = 0; i < 6; i++) {
        if (i >= 2)
            assert_int_equal(atomic_load(&start_order[i]), i);
        assert_int_equal(got_e[i].result, 200 + i);
    }
    assert_int_equal(got.code, 0);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- cancel, empty, bad input ------------------------------------------------------------ */

static _Atomic int checks_done;

static void cancel_scenario(tr_actor *self)
{
    tr_group_opts o;
    tr_group_opts_init(&o);
    o.max_running = 1;
    TR_CHECK_EQ(tr_group_open(self, &o, &opened), 0);
    spawn_child(self, opened, C_WAIT, 1, 0, 0);
    spawn_child(self, opened, C_WAIT, 2, 1, 0); /* waits: never starts */
    TR_CHECK_EQ(tr_group_cancel(self, opened), 0);
    /* Cancelled means closed. */
    child_arg a = {C_RESULT, 0, 2};
    tr_spawn_opts so;
    tr_spawn_opts_init(&so);
    so.arg = &a;
    so.arg_len = sizeof a;
    TR_CHECK_EQ(tr_group_spawn(self, opened, &child_b, &so, NULL), TR_ESTOPPED);
    TR_CHECK_EQ(tr_group_close(self, opened), TR_EALREADY);

    /* Bad input. */
    tr_group_id g;
    TR_CHECK_EQ(tr_group_open(NULL, NULL, &g), TR_EINVAL);
    TR_CHECK_EQ(tr_group_open(self, NULL, NULL), TR_EINVAL);
    tr_group_opts bad;
    tr_group_opts_init(&bad);
    bad.mode = (tr_group_mode)9;
    TR_CHECK_EQ(tr_group_open(self, &bad, &g), TR_EINVAL);
    TR_CHECK_EQ(tr_group_spawn(self, 999, &child_b, &so, NULL), TR_ENOTFOUND);
    TR_CHECK_EQ(tr_group_offload(self, 999, square_job, NULL, 0), TR_ENOTFOUND);
    TR_CHECK_EQ(tr_group_close(self, 999), TR_ENOTFOUND);
    TR_CHECK_EQ(tr_group_cancel(self, 999), TR_ENOTFOUND);
    TR_CHECK_EQ(tr_group_spawn(self, opened, NULL, NULL, NULL), TR_EINVAL);
    TR_CHECK_EQ(tr_group_offload(self, opened, NULL, NULL, 0), TR_EINVAL);
    TR_CHECK_EQ(tr_group_offload(self, opened, square_job, NULL, 4), TR_EINVAL);
    atomic_store(&checks_done, 1);
}

static void test_cancel_and_bad_input(void **state)
{
    (void)state;
    atomic_store(&checks_done, 0);
    tr_runtime *rt = tr_test_runtime(1, 0);
    run_scenario(rt, cancel_scenario);
    TR_WAIT_UNTIL(atomic_load(&done));
    assert_int_equal(atomic_load(&checks_done), 1);
    assert_int_equal(got.code, TR_ECANCELED);
    assert_int_equal(got.n, 2);
    assert_int_equal(got_e[0].kind, TR_EXIT_SHUTDOWN);
    assert_true(got_e[0].pid != TR_PID_NONE);
    assert_int_equal(got_e[1].kind, TR_EXIT_SHUTDOWN);
    assert_int_equal(got_e[1].code, TR_ECANCELED);
    assert_int_equal(got_e[1].pid, TR_PID_NONE); /* never started */
    assert_int_equal(atomic_load(&started), 1);
    /* Plain threads cannot own groups. */
    tr_group_id g;
    assert_int_equal(tr_group_open(NULL, NULL, &g), TR_EINVAL);
    assert_int_equal(tr_runtime_free(rt), 0);
}

static void empty_scenario(tr_actor *self)
{
    TR_CHECK_EQ(tr_group_open(self, NULL, &opened), 0);
    TR_CHECK_EQ(tr_group_close(self, opened), 0);
    TR_CHECK(!atomic_load(&done)); /* it comes as a message */
}

static void test_empty_group(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(1, 0);
    run_scenario(rt, empty_scenario);
    TR_WAIT_UNTIL(atomic_load(&done));
    assert_int_equal(got.code, 0);
    assert_int_equal(got.n, 0);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- the owner's exit ---------------------------------------------------------------------- */

static void owner_exit_scenario(tr_actor *self)
{
    tr_group_opts o;
    tr_group_opts_init(&o);
    o.timeout_ms = 60000;
    o.max_running = 3;
    TR_CHECK_EQ(tr_group_open(self, &o, &opened), 0);
    for (int i = 0; i < 5; i++)
        spawn_child(self, opened, C_WAIT, i, i, i % 2);
    TR_CHECK_EQ(tr_group_offload(self, opened, endless_job, NULL, 0), 0);
    TR_CHECK_EQ(tr_group_close(self, opened), 0);
}

static void test_owner_exit_cancels(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, 0);
    tr_pid owner = run_scenario(rt, owner_exit_scenario);
    TR_WAIT_UNTIL(atomic_load(&started) == 3);
    assert_int_equal(tr_signal_exit(rt, owner, TR_EXIT_SHUTDOWN), 0);
    TR_WAIT_UNTIL(atomic_load(&terminated) == 3);
    TR_WAIT_GONE(rt, owner, PING);
    /* No orphan, no completion, and the waiting ones never started. */
    assert_int_equal(atomic_load(&running), 0);
    assert_int_equal(atomic_load(&started), 3);
    assert_int_equal(atomic_load(&done), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(tr_rt_send(rt, atomic_load(&started_pid[i]), PING, NULL, 0),
                         TR_ENOACTOR);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- many children: the member table grows ---------------------------------------------- */

static void many_scenario(tr_actor *self)
{
    tr_group_opts o;
    tr_group_opts_init(&o);
    o.mode = TR_GROUP_COLLECT;
    o.max_running = 100;
    TR_CHECK_EQ(tr_group_open(self, &o, &opened), 0);
    for (int i = 0; i < 3000; i++) {
        child_arg a = {C_RESULT, i, 0};
        tr_spawn_opts so;
        tr_spawn_opts_init(&so);
        so.arg = &a;
        so.arg_len = sizeof a;
        so.loop = TR_LOOP(i % 2);
        TR_CHECK_EQ(tr_group_spawn(self, opened, &child_b, &so, NULL), 0);
        if (i % 3 == 0)
            TR_CHECK_EQ(tr_group_offload(self, opened, square_job, &i, sizeof i), 0);
    }
    TR_CHECK_EQ(tr_group_close(self, opened), 0);
}

static void test_many_children(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, 0);
    run_scenario(rt, many_scenario);
    TR_WAIT_UNTIL(atomic_load(&done));
    if (got.code != 0)
        fail_msg("code %d, %u failed, first %u: kind %d code %d", got.code, got.failed,
                 got.first_failed, first_failed_kind, first_failed_code);
    assert_int_equal(got.n, 4000);
    assert_int_equal(got.failed, 0);
    assert_true(atomic_load(&max_running) <= 100);
    assert_int_equal(atomic_load(&terminated), 3000);
    assert_int_equal(tr_runtime_free(rt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_collect_results_in_spawn_order),
        cmocka_unit_test(test_fail_fast_cancels_siblings),
        cmocka_unit_test(test_fail_fast_all_succeed),
        cmocka_unit_test(test_deadline),
        cmocka_unit_test(test_concurrency_limit),
        cmocka_unit_test(test_cancel_and_bad_input),
        cmocka_unit_test(test_empty_group),
        cmocka_unit_test(test_owner_exit_cancels),
        cmocka_unit_test(test_many_children),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
