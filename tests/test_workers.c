/*
 * test_workers.c — the worker pool (results and errors as messages, cancel,
 * owner exit, full queue, in-flight limit, niceness, shutdown) and
 * blocked-loop detection (reported while still blocked, with the actor's
 * name; loop lag).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cmocka.h>

#include "tr_test.h"

enum { GO = 1, ASK = 2, CANCEL = 3, DIE = 4, NOTE = 5 };

/* A started runtime with this worker pool (0s: the defaults). */
static tr_runtime *make(unsigned loops, unsigned workers, unsigned queue, int nice)
{
    tr_runtime_options o = tr_test_options(loops, 0);
    o.workers = workers;
    o.job_queue = queue;
    o.worker_nice = nice;
    return tr_test_runtime_opts(&o);
}

/* ---- jobs ------------------------------------------------------------------ */

static _Atomic int gate;          /* blocking jobs wait for this */
static _Atomic int ran, running, max_running;
static _Atomic int job_nice = -100;

static int square_job(tr_job *job, const void *arg, size_t len)
{
    int x;
    TR_CHECK_COPY(&x, arg, len);
    if (x < 0)
        return x; /* an error */
    int y = x * x;
    atomic_store(&job_nice, getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid)));
    /* The plain-thread API works from a worker. */
    TR_CHECK_EQ(tr_rt_send(tr_job_runtime(job), tr_job_owner(job), NOTE, NULL, 0), 0);
    atomic_fetch_add(&ran, 1);
    return tr_job_set_result(job, &y, sizeof y);
}

static int gated_job(tr_job *job, const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    atomic_fetch_add(&ran, 1);
    while (!atomic_load(&gate) && !tr_job_cancelled(job))
        sched_yield();
    return 0;
}

/* Waits (boundedly) for company: with a limit of N, exactly N meet. */
static int meeting_job(tr_job *job, const void *arg, size_t len)
{
    (void)job;
    unsigned limit;
    TR_CHECK_COPY(&limit, arg, len);
    int now = atomic_fetch_add(&running, 1) + 1;
    int seen = atomic_load(&max_running);
    while (now > seen && !atomic_compare_exchange_weak(&max_running, &seen, now))
        ;
    uint64_t end = tr_test_wall_ns() + 300000000ull;
    while (atomic_load(&running) < (int)limit && tr_test_wall_ns() < end)
        sched_yield();
    /* Linger so that a broken limit would let more in meanwhile. */
    uint64_t linger = tr_test_wall_ns() + 2000000ull;
    while (tr_test_wall_ns() < linger)
        sched_yield();
    atomic_fetch_sub(&running, 1);
    atomic_fetch_add(&ran, 1);
    return 0;
}

/* ---- the owner -------------------------------------------------------------- */

typedef struct owner {
    tr_job_id ids[64];
    int n;
    int done, failed, notes, stray;
    int last_result, last_error;
    int loop_at_result;
} owner;

typedef struct order {
    int kind; /* what to do on GO */
    int count;
    unsigned limit;
} order;

enum { K_SQUARE, K_FAIL, K_GATED_PLUS_QUEUED, K_CANCEL_RUNNING, K_LIMIT, K_FULL };

static _Atomic int outcomes;

static int owner_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    owner *o = state;
    switch (msg->type) {
    case GO: {
        order ord;
        memcpy(&ord, msg->data, sizeof ord);
        int x = 7, bad = -77;
        switch (ord.kind) {
        case K_SQUARE:
            return tr_offload(self, square_job, &x, sizeof x, &o->ids[o->n++]);
        case K_FAIL:
            return tr_offload(self, square_job, &bad, sizeof bad, &o->ids[o->n++]);
        case K_GATED_PLUS_QUEUED:
            for (int i = 0; i < ord.count; i++)
                TR_CHECK_EQ(tr_offload(self, gated_job, NULL, 0, &o->ids[o->n++]), 0);
            return 0;
        case K_LIMIT:
            TR_CHECK_EQ(tr_offload_limit(self, ord.limit), 0);
            for (int i = 0; i < ord.count; i++)
                TR_CHECK_EQ(tr_offload(self, meeting_job, &ord.limit, sizeof ord.limit,
                                       &o->ids[o->n++]), 0);
            return 0;
        case K_FULL: {
            int rc = 0, i;
            for (i = 0; i < ord.count && rc == 0; i++)
                rc = tr_offload(self, gated_job, NULL, 0, &o->ids[o->n++]);
            o->last_error = rc;
            o->last_result = i; /* how many calls until the error */
            return 0;
        }
        }
        return 0;
    }
    case CANCEL: {
        int which;
        memcpy(&which, msg->data, sizeof which);
        int rc = tr_job_cancel(self, o->ids[which]);
        return tr_reply(self, msg, CANCEL, &rc, sizeof rc);
    }
    case ASK:
        return tr_reply(self, msg, ASK, o, sizeof *o);
    case DIE:
        return tr_exit(self, TR_EXIT_NORMAL);
    case NOTE:
        o->notes++;
        return 0;
    case TR_MSG_JOB_DONE:
        o->done++;
        o->loop_at_result = tr_loop_index(self);
        if (msg->len == sizeof(int))
            memcpy(&o->last_result, msg->data, sizeof(int));
        atomic_fetch_add(&outcomes, 1);
        return 0;
    case TR_MSG_JOB_FAILED: {
        int32_t code;
        TR_CHECK_COPY(&code, msg->data, msg->len);
        o->failed++;
        o->last_error = code;
        atomic_fetch_add(&outcomes, 1);
        return 0;
    }
    }
    o->stray++;
    return 0;
}

static const tr_behavior owner_b = {.name = "owner", .state_size = sizeof(owner),
                                    .receive = owner_receive};

static owner ask(tr_runtime *rt, tr_pid p)
{
    owner o;
    tr_test_ask(rt, p, ASK, NULL, 0, &o, sizeof o);
    return o;
}

static void go(tr_runtime *rt, tr_pid p, int kind, int count, unsigned limit)
{
    order ord = {.kind = kind, .count = count, .limit = limit};
    assert_int_equal(tr_rt_send(rt, p, GO, &ord, sizeof ord), 0);
}

/* Asks the owner to cancel its job number `which`: tr_job_cancel's rc. */
static int cancel(tr_runtime *rt, tr_pid p, int which)
{
    int rc;
    tr_test_ask(rt, p, CANCEL, &which, sizeof which, &rc, sizeof rc);
    return rc;
}

static void reset(void)
{
    atomic_store(&gate, 0);
    atomic_store(&ran, 0);
    atomic_store(&running, 0);
    atomic_store(&max_running, 0);
    atomic_store(&outcomes, 0);
}

static void test_result_and_error(void **state)
{
    (void)state;
    reset();
    tr_runtime *rt = make(2, 2, 0, 5);
    tr_pid p = tr_test_spawn(rt, &owner_b, TR_LOOP(1), NULL, 0);
    go(rt, p, K_SQUARE, 1, 0);
    go(rt, p, K_FAIL, 1, 0);
    TR_WAIT_UNTIL(atomic_load(&outcomes) == 2);
    owner o = ask(rt, p);
    assert_int_equal(o.done, 1);
    assert_int_equal(o.failed, 1);
    assert_int_equal(o.last_result, 49);
    assert_int_equal(o.last_error, -77);
    assert_int_equal(o.loop_at_result, 1); /* on the owner's home loop */
    assert_int_equal(o.notes, 1);          /* the job's own tr_rt_send */
    assert_int_equal(o.stray, 0);
    assert_int_equal(atomic_load(&job_nice), 5); /* worker_nice */
    /* Finished jobs cannot be cancelled. */
    assert_int_equal(cancel(rt, p, 0), TR_ENOTFOUND);
    assert_int_equal(tr_runtime_free(rt), 0);
}

static void test_cancel_queued_and_running(void **state)
{
    (void)state;
    reset();
    tr_runtime *rt = make(2, 1, 0, 0); /* one worker: the rest queue */
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &owner_b, NULL, &p), 0);
    go(rt, p, K_GATED_PLUS_QUEUED, 3, 0); /* ids 0 runs, 1 and 2 queue */
    TR_WAIT_UNTIL(atomic_load(&ran) == 1);
    assert_int_equal(cancel(rt, p, 1), 0); /* queued: will never run */
    assert_int_equal(cancel(rt, p, 1), TR_ENOTFOUND);
    assert_int_equal(cancel(rt, p, 0), 0); /* running: sees the flag, stops */
    /* Job 2 now runs (and waits at the gate); open it. */
    TR_WAIT_UNTIL(atomic_load(&ran) == 2);
    atomic_store(&gate, 1);
    TR_WAIT_UNTIL(atomic_load(&outcomes) == 1);
    owner o = ask(rt, p);
    assert_int_equal(o.done, 1); /* only job 2 reports */
    assert_int_equal(o.failed, 0);
    assert_int_equal(atomic_load(&ran), 2); /* job 1 never ran */
    assert_int_equal(tr_runtime_free(rt), 0);
}

static void test_owner_exit(void **state)
{
    (void)state;
    reset();
    tr_runtime *rt = make(2, 1, 0, 0);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &owner_b, NULL, &p), 0);
    go(rt, p, K_GATED_PLUS_QUEUED, 6, 0); /* one running, five queued */
    TR_WAIT_UNTIL(atomic_load(&ran) == 1);
    assert_int_equal(tr_rt_send(rt, p, DIE, NULL, 0), 0);
    TR_WAIT_GONE(rt, p, NOTE);
    atomic_store(&gate, 1);
    /* A new owner's job runs: the worker moved past the cancelled ones. */
    tr_pid q;
    assert_int_equal(tr_rt_spawn(rt, &owner_b, NULL, &q), 0);
    go(rt, q, K_SQUARE, 1, 0);
    TR_WAIT_UNTIL(atomic_load(&outcomes) == 1);
    assert_int_equal(atomic_load(&ran), 2); /* the running one and q's: none queued ran */
    assert_int_equal(tr_runtime_free(rt), 0);
}

static void test_full_queue(void **state)
{
    (void)state;
    reset();
    tr_runtime *rt = make(1, 1, 2, 0); /* queue of 2, one worker */
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &owner_b, NULL, &p), 0);
    go(rt, p, K_GATED_PLUS_QUEUED, 1, 0);
    TR_WAIT_UNTIL(atomic_load(&ran) == 1); /* running: out of the queue */
    go(rt, p, K_FULL, 10, 0);
    owner o = ask(rt, p);
    assert_int_equal(o.last_error, TR_EFULL);
    assert_int_equal(o.last_result, 3); /* two fit, the third is refused */
    atomic_store(&gate, 1);
    TR_WAIT_UNTIL(atomic_load(&outcomes) == 3);
    assert_int_equal(tr_runtime_free(rt), 0);
}

static void test_in_flight_limit(void **state)
{
    (void)state;
    reset();
    tr_runtime *rt = make(1, 4, 0, 0); /* 4 workers could run 4 at once */
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &owner_b, NULL, &p), 0);
    go(rt, p, K_LIMIT, 12, 2);
    TR_WAIT_UNTIL(atomic_load(&outcomes) == 12);
    assert_int_equal(atomic_load(&ran), 12);
    assert_int_equal(atomic_load(&max_running), 2);
    /* The same without a limit: more than 2 run at once (the test can fail). */
    reset();
    tr_pid q;
    assert_int_equal(tr_rt_spawn(rt, &owner_b, NULL, &q), 0);
    go(rt, q, K_LIMIT, 12, 4);
    TR_WAIT_UNTIL(atomic_load(&outcomes) == 12);
    assert_true(atomic_load(&max_running) > 2);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* A limit set in terminate goes with its actor: the next actor in the same
 * slot has none. */
static void limit_at_terminate(tr_actor *self, void *state, const tr_exit_reason *r)
{
    (void)state;
    (void)r;
    TR_CHECK_EQ(tr_offload_limit(self, 1), 0);
}

static const tr_behavior limiter_b = {.name = "limiter", .state_size = sizeof(owner),
                                      .receive = owner_receive,
                                      .terminate = limit_at_terminate};

static void test_limit_set_in_terminate(void **state)
{
    (void)state;
    reset();
    tr_runtime *rt = make(1, 2, 0, 0);
    tr_pid helper, p, q;
    assert_int_equal(tr_rt_spawn(rt, &owner_b, NULL, &helper), 0);
    assert_int_equal(tr_rt_spawn(rt, &limiter_b, NULL, &p), 0);
    assert_int_equal(tr_rt_send(rt, p, DIE, NULL, 0), 0);
    TR_WAIT_GONE(rt, p, NOTE);
    ask(rt, helper); /* the loop has finished the exit: the slot is free */
    assert_int_equal(tr_rt_spawn(rt, &owner_b, NULL, &q), 0);
    assert_int_equal(TR_PID_INDEX(q), TR_PID_INDEX(p));
    go(rt, q, K_GATED_PLUS_QUEUED, 2, 0);
    TR_WAIT_UNTIL(atomic_load(&ran) == 2); /* both run at once: no limit */
    atomic_store(&gate, 1);
    TR_WAIT_UNTIL(atomic_load(&outcomes) == 2);
    assert_int_equal(tr_runtime_free(rt), 0);
}

static void test_shutdown_with_jobs(void **state)
{
    (void)state;
    reset();
    tr_runtime *rt = make(2, 1, 0, 0);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &owner_b, NULL, &p), 0);
    go(rt, p, K_GATED_PLUS_QUEUED, 20, 0);
    TR_WAIT_UNTIL(atomic_load(&ran) == 1);
    assert_int_equal(tr_runtime_stop(rt), 0);
    assert_int_equal(tr_runtime_wait(rt), 0);
    atomic_store(&gate, 1); /* the running job ends; free waits for it */
    assert_int_equal(tr_runtime_free(rt), 0);
    assert_int_equal(atomic_load(&ran), 1);
}

static tr_actor *stale;

static int bad_input_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    stale = self;
    tr_job_id id;
    TR_CHECK_EQ(tr_offload(NULL, square_job, NULL, 0, &id), TR_EINVAL);
    TR_CHECK_EQ(tr_offload(self, NULL, NULL, 0, &id), TR_EINVAL);
    TR_CHECK_EQ(tr_offload(self, square_job, NULL, 0, NULL), TR_EINVAL);
    TR_CHECK_EQ(tr_offload(self, square_job, NULL, 4, &id), TR_EINVAL);
    TR_CHECK_EQ(tr_job_cancel(self, 12345), TR_ENOTFOUND);
    TR_CHECK_EQ(tr_job_cancel(NULL, 1), TR_EINVAL);
    TR_CHECK_EQ(tr_offload_limit(NULL, 1), TR_EINVAL);
    TR_CHECK_EQ(tr_job_set_result(NULL, NULL, 0), TR_EINVAL);
    TR_CHECK(tr_job_cancelled(NULL));
    TR_CHECK(tr_job_runtime(NULL) == NULL);
    TR_CHECK_EQ(tr_job_owner(NULL), TR_PID_NONE);
    return 0;
}

static const tr_behavior bad_input_b = {.name = "bad", .state_size = sizeof(owner),
                                        .init = bad_input_init, .receive = owner_receive};

static void test_bad_input(void **state)
{
    (void)state;
    tr_runtime_options o;
    tr_runtime_options_init(&o);
    tr_runtime *rt;
    o.worker_nice = 21;
    assert_int_equal(tr_runtime_create(&rt, &o), TR_EINVAL);
    o.worker_nice = -1;
    assert_int_equal(tr_runtime_create(&rt, &o), TR_EINVAL);
    rt = make(1, 1, 0, 0);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &bad_input_b, NULL, &p), 0);
    ask(rt, p);
    tr_job_id id;
    assert_int_equal(tr_offload(stale, square_job, NULL, 0, &id), TR_EWRONGTHREAD);
    assert_int_equal(tr_job_cancel(stale, 1), TR_EWRONGTHREAD);
    assert_int_equal(tr_offload_limit(stale, 1), TR_EWRONGTHREAD);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- blocked-loop detection ------------------------------------------------ */

static _Atomic int released_by_report;

static int sleeper_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == 42) {
        TR_CHECK_EQ(tr_register(self, "sleepy"), 0); /* the report names it */
        /* A late timer: fires 10 ms from now, but we hold the loop. */
        TR_CHECK_EQ(tr_send_after(self, tr_self(self), 10, 43, NULL, 0, NULL), 0);
        /* Block (up to 10 s) until the watchdog has reported us (its
         * report is captured; "unblocked" comes only after we return). */
        uint64_t end = tr_test_wall_ns() + 10000000000ull;
        while (!tr_test_has_log(" blocked:") && tr_test_wall_ns() < end)
            sched_yield();
        atomic_store(&released_by_report, tr_test_has_log(" blocked:"));
    }
    return 0;
}

static const tr_behavior sleeper_b = {.name = "sleeper", .receive = sleeper_receive};

static void test_blocked_loop_reported_while_blocked(void **state)
{
    (void)state;
    tr_runtime_options o = tr_test_options(2, TR_TEST_LOG);
    o.block_budget_ms = 200;
    tr_runtime *rt = tr_test_runtime_opts(&o);
    /* Well-behaved traffic first: nothing reported. */
    tr_pid good;
    assert_int_equal(tr_rt_spawn(rt, &sleeper_b, NULL, &good), 0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(tr_rt_send(rt, good, 1, NULL, 0), 0);
    tr_pid bad = tr_test_spawn(rt, &sleeper_b, TR_LOOP(1), NULL, 0);
    assert_int_equal(tr_rt_send(rt, bad, 42, NULL, 0), 0);
    TR_WAIT_UNTIL(tr_test_has_log(" unblocked:"));
    assert_int_equal(atomic_load(&released_by_report), 1); /* reported while blocked */
    char want[64], blocked_line[512], unblocked_line[512];
    snprintf(want, sizeof want, "actor " TR_PID_FMT " 'sleepy' (sleeper)", TR_PID_ARGS(bad));
    assert_true(tr_test_log_line(" blocked:", blocked_line, sizeof blocked_line));
    assert_true(tr_test_log_line(" unblocked:", unblocked_line, sizeof unblocked_line));
    assert_non_null(strstr(blocked_line, "loop 1 blocked"));
    assert_non_null(strstr(blocked_line, want));
    assert_non_null(strstr(blocked_line, "message type 42"));
    assert_non_null(strstr(unblocked_line, want));
    /* Exactly one report; the late timer shows up as loop lag. */
    assert_int_equal(TR_STAT(rt, blocked), 1);
    tr_loop_stats s[2];
    TR_WAIT_UNTIL(tr_runtime_stats(rt, s, 2) == 2 && s[1].lag_max_us >= 100000);
    assert_int_equal(tr_runtime_free(rt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_result_and_error),
        cmocka_unit_test(test_cancel_queued_and_running),
        cmocka_unit_test(test_owner_exit),
        cmocka_unit_test(test_full_queue),
        cmocka_unit_test(test_in_flight_limit),
        cmocka_unit_test(test_limit_set_in_terminate),
        cmocka_unit_test(test_shutdown_with_jobs),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_blocked_loop_reported_while_blocked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
