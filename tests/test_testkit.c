/*
 * test_testkit.c — the test kit (include/troupe_test.h): settle, virtual
 * time stepped and auto-advanced, every plain-thread wait on the virtual
 * clock, probes and their failures, and the kit's bad inputs.
 *
 * TICK_REPS: repetitions of the settle case a new user hit (five 1 s
 * advances, each followed by a tr_rt_call for the count).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "tr_test.h"
#include "troupe_test.h"

#ifndef TICK_REPS
#define TICK_REPS 1000
#endif

#define MS 1000000ull

enum { GO = 1, TICK, COUNT, HOP, PING, PONG, WORK, SLOW, ASK, ANSWER, CRASH };

/* A kit runtime, started. */
static tr_runtime *kit_runtime(unsigned loops, unsigned flags)
{
    tr_runtime_options o;
    tr_runtime_options_init(&o);
    o.loops = loops;
    o.log = tr_test_quiet;
    tr_test_config c;
    tr_test_config_init(&c);
    c.flags = flags;
    tr_runtime *rt = NULL;
    assert_int_equal(tr_test_create(&rt, &o, &c), 0);
    assert_true(tr_test_is_kit(rt));
    assert_int_equal(tr_runtime_start(rt), 0);
    return rt;
}

static uint32_t ask_count(tr_runtime *rt, tr_pid pid)
{
    uint32_t n = UINT32_MAX;
    tr_test_ask(rt, pid, COUNT, NULL, 0, &n, sizeof n);
    return n;
}

/* ---- the ticker: an interval of 1 s, counted; COUNT answers ---------------------- */

static int ticker_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return tr_send_interval(self, tr_self(self), 1000, TICK, NULL, 0, NULL);
}

static int ticker_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    uint32_t *n = state;
    if (msg->type == TICK)
        ++*n;
    else if (msg->type == COUNT)
        return tr_reply(self, msg, COUNT, n, sizeof *n);
    return 0;
}

static const tr_behavior ticker_b = {.name = "ticker", .state_size = sizeof(uint32_t),
                                     .init = ticker_init, .receive = ticker_receive};

/* The case a new user hit: five one-second advances, each followed by a
 * call asking the count, see 1..5 — every time (before settle, 0 to 3
 * ticks were seen). On two loops: the caller and the ticker race. */
static void test_five_ticks_then_call(void **state)
{
    (void)state;
    tr_runtime *rt = kit_runtime(2, 0);
    for (int rep = 0; rep < TICK_REPS; rep++) {
        tr_pid k = tr_test_spawn(rt, &ticker_b, TR_LOOP(rep & 1), NULL, 0);
        for (uint32_t i = 1; i <= 5; i++) {
            assert_int_equal(tr_test_advance(rt, 1000), 0);
            assert_int_equal(ask_count(rt, k), i);
        }
        assert_int_equal(tr_signal_exit(rt, k, TR_EXIT_SHUTDOWN), 0);
        tr_down d;
        assert_int_equal(tr_rt_wait_exit(rt, k, TR_INFINITE, &d), 0);
    }
    tr_runtime_free(rt);
}

/* One jump crosses five periods: stepping fires the interval five times
 * (not once, as a bare clock move does: no catch-up). */
static void test_advance_steps_each_period(void **state)
{
    (void)state;
    tr_runtime *rt = kit_runtime(2, 0);
    tr_pid k = tr_test_spawn(rt, &ticker_b, TR_LOOP_DEFAULT, NULL, 0);
    uint64_t t0 = tr_now(rt);
    assert_int_equal(tr_test_advance(rt, 5500), 0);
    assert_int_equal(ask_count(rt, k), 5);
    assert_int_equal(tr_now(rt), t0 + 5500 * MS);
    uint64_t next;
    assert_int_equal(tr_test_next_timer(rt, &next), 0);
    assert_int_equal(next, t0 + 6000 * MS); /* the next tick */
    /* Settle with an interval set never loops: it does not move time. */
    assert_int_equal(tr_test_settle(rt), 0);
    assert_int_equal(tr_test_advance(rt, 0), 0);
    assert_int_equal(ask_count(rt, k), 5);
    tr_runtime_free(rt);
}

/* ---- settle: chains of timers and the messages they cause -------------------------- */

static _Atomic uint32_t chain_end;

/* GO(n): a 0 ms timer to the next hop (an actor on the other loop), which
 * sends HOP(n - 1) on; at 0, counts. settle alone must see the end. */
typedef struct hop {
    tr_pid next;
} hop;

static int hop_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    hop *h = state;
    uint32_t n;
    if (msg->type == GO) {
        TR_CHECK_COPY(&h->next, msg->data, msg->len);
        return 0;
    }
    TR_CHECK_COPY(&n, msg->data, msg->len);
    if (n == 0) {
        atomic_fetch_add(&chain_end, 1);
        return 0;
    }
    n--;
    /* Alternately a timer and a plain send: both are settle's to wait for. */
    if (n & 1)
        return tr_send_after(self, h->next, 0, HOP, &n, sizeof n, NULL);
    return tr_send(self, h->next, HOP, &n, sizeof n);
}

static const tr_behavior hop_b = {.name = "hop", .state_size = sizeof(hop),
                                  .receive = hop_receive};

static void test_settle_delivers_chains(void **state)
{
    (void)state;
    tr_runtime *rt = kit_runtime(2, 0);
    tr_pid a = tr_test_spawn(rt, &hop_b, TR_LOOP(0), NULL, 0);
    tr_pid b = tr_test_spawn(rt, &hop_b, TR_LOOP(1), NULL, 0);
    assert_int_equal(tr_rt_send(rt, a, GO, &b, sizeof b), 0);
    assert_int_equal(tr_rt_send(rt, b, GO, &a, sizeof a), 0);
    for (uint32_t round = 1; round <= 200; round++) {
        uint32_t n = 41;
        assert_int_equal(tr_rt_send(rt, a, HOP, &n, sizeof n), 0);
        assert_int_equal(tr_test_settle(rt), 0);
        assert_int_equal(atomic_load(&chain_end), round); /* no call orders it: settle does */
    }
    tr_runtime_free(rt);
    atomic_store(&chain_end, 0);
}

/* A timer that sets a timer: advance delivers the second within the same
 * span, at its own time. */
static _Atomic uint64_t second_at;

static int relay_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == GO)
        return tr_send_after(self, tr_self(self), 300, HOP, NULL, 0, NULL);
    if (msg->type == HOP)
        return tr_send_after(self, tr_self(self), 200, PING, NULL, 0, NULL);
    if (msg->type == PING)
        atomic_store(&second_at, tr_now(tr_runtime_of(self)));
    return 0;
}

static const tr_behavior relay_b = {.name = "relay", .receive = relay_receive};

static void test_advance_delivers_what_timers_cause(void **state)
{
    (void)state;
    tr_runtime *rt = kit_runtime(2, 0);
    tr_pid r = tr_test_spawn(rt, &relay_b, TR_LOOP_DEFAULT, NULL, 0);
    uint64_t t0 = tr_now(rt);
    assert_int_equal(tr_rt_send(rt, r, GO, NULL, 0), 0);
    assert_int_equal(tr_test_advance(rt, 499), 0);
    assert_int_equal(atomic_load(&second_at), 0);
    assert_int_equal(tr_test_advance(rt, 1), 0);
    assert_int_equal(atomic_load(&second_at), t0 + 500 * MS);
    tr_runtime_free(rt);
    atomic_store(&second_at, 0);
}

/* ---- worker jobs are part of settle ------------------------------------------------- */

static _Atomic int job_seen;

static int slow_job(tr_job *job, const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    struct timespec ts = {0, 20 * 1000 * 1000}; /* real time: a blocking job */
    nanosleep(&ts, NULL);
    int v = 42;
    return tr_job_set_result(job, &v, sizeof v);
}

static int offloader_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    tr_job_id id;
    if (msg->type == WORK)
        return tr_offload(self, slow_job, NULL, 0, &id);
    if (msg->type == TR_MSG_JOB_DONE)
        atomic_fetch_add(&job_seen, 1);
    return 0;
}

static const tr_behavior offloader_b = {.name = "offloader", .receive = offloader_receive};

static void test_settle_waits_for_jobs(void **state)
{
    (void)state;
    tr_runtime *rt = kit_runtime(1, 0);
    tr_pid w = tr_test_spawn(rt, &offloader_b, TR_LOOP_DEFAULT, NULL, 0);
    for (int i = 1; i <= 5; i++) {
        assert_int_equal(tr_rt_send(rt, w, WORK, NULL, 0), 0);
        assert_int_equal(tr_test_settle(rt), 0);
        assert_int_equal(atomic_load(&job_seen), i);
    }
    tr_runtime_free(rt);
    atomic_store(&job_seen, 0);
}

/* ---- plain threads' waits on the virtual clock -------------------------------------- */

/* ASK is kept and answered 30 s later (virtual); other requests never. */
typedef struct late {
    tr_msg req;
} late;

static int late_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    late *l = state;
    if (msg->type == ASK) {
        l->req = *msg;
        return tr_send_after(self, tr_self(self), 30000, PING, NULL, 0, NULL);
    }
    if (msg->type == PING)
        return tr_reply(self, &l->req, ANSWER, NULL, 0);
    return 0; /* SLOW: kept, never answered */
}

static const tr_behavior late_b = {.name = "late", .state_size = sizeof(late),
                                   .receive = late_receive};

/* Auto-advance: a 30 s wait ends at once, the clock 30 s on. */
static void test_auto_advance_call(void **state)
{
    (void)state;
    tr_runtime *rt = kit_runtime(2, TR_TEST_AUTO_ADVANCE);
    tr_pid l = tr_test_spawn(rt, &late_b, TR_LOOP_DEFAULT, NULL, 0);
    uint64_t t0 = tr_now(rt);
    tr_rt_reply r;
    assert_int_equal(tr_rt_call(rt, l, ASK, NULL, 0, 60000, &r), 0);
    assert_int_equal(r.type, ANSWER);
    assert_int_equal(tr_now(rt), t0 + 30000 * MS);
    tr_rt_reply_free(&r);
    /* A call nothing answers times out at its deadline, on the clock. */
    t0 = tr_now(rt);
    assert_int_equal(tr_rt_call(rt, l, SLOW, NULL, 0, 5000, &r), TR_ETIMEDOUT);
    assert_int_equal(tr_now(rt), t0 + 5000 * MS);
    /* And a wait for an exit, too. */
    t0 = tr_now(rt);
    tr_down d;
    assert_int_equal(tr_rt_wait_exit(rt, l, 7000, &d), TR_ETIMEDOUT);
    assert_int_equal(tr_now(rt), t0 + 7000 * MS);
    tr_runtime_free(rt);
}

/* Manual time: a call's timeout is on the virtual clock — real time
 * passing does not end it, the test's advances do. An hour's timeout:
 * were it real time, the test would time out instead. */
typedef struct mover {
    tr_runtime *rt;
    _Atomic int done;
    int advances;
} mover;

static void *move_clock(void *arg)
{
    mover *m = arg;
    while (!atomic_load(&m->done)) {
        if (tr_test_advance(m->rt, 600000) != 0) /* ten minutes a step */
            break;
        m->advances++;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void test_manual_call_timeout_is_virtual(void **state)
{
    (void)state;
    tr_runtime *rt = kit_runtime(2, 0);
    tr_pid l = tr_test_spawn(rt, &late_b, TR_LOOP_DEFAULT, NULL, 0);
    mover m = {.rt = rt};
    pthread_t th;
    uint64_t t0 = tr_now(rt);
    assert_int_equal(pthread_create(&th, NULL, move_clock, &m), 0);
    tr_rt_reply r;
    assert_int_equal(tr_rt_call(rt, l, SLOW, NULL, 0, 3600000, &r), TR_ETIMEDOUT);
    uint64_t ended = tr_now(rt);
    atomic_store(&m.done, 1);
    pthread_join(th, NULL);
    assert_true(ended >= t0 + 3600000 * MS); /* not before its virtual deadline */
    tr_runtime_free(rt);
}

/* ---- probes ------------------------------------------------------------------------- */

/* PING(pid) answers PONG to pid, three times; CRASH fails. */
static int pinger_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    tr_pid to;
    if (msg->type == CRASH)
        return TR_EUSER(7);
    if (msg->type != PING)
        return 0;
    TR_CHECK_COPY(&to, msg->data, msg->len);
    for (uint32_t i = 0; i < 3; i++) {
        int rc = tr_send(self, to, PONG, &i, sizeof i);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static const tr_behavior pinger_b = {.name = "pinger", .receive = pinger_receive};

static bool is_two(const tr_probe_msg *m, void *ud)
{
    (void)ud;
    return m->len == 4 && *(const uint32_t *)m->data == 2;
}

static void test_probe_expect(void **state)
{
    (void)state;
    tr_runtime *rt = kit_runtime(2, 0);
    tr_probe *p;
    assert_int_equal(tr_probe_create(rt, &p), 0);
    tr_pid me = tr_probe_pid(p);
    tr_pid a = tr_test_spawn(rt, &pinger_b, TR_LOOP_DEFAULT, NULL, 0);
    assert_int_equal(tr_rt_send(rt, a, PING, &me, sizeof me), 0);
    uint32_t zero = 0, one = 1;
    tr_probe_msg m;
    TR_PROBE_ASSERT(p, tr_probe_expect_payload(p, PONG, a, &zero, sizeof zero, 1000, &m));
    assert_int_equal(m.from, a);
    assert_int_equal(m.to, me);
    tr_probe_msg_free(&m);
    TR_PROBE_ASSERT(p, tr_probe_expect(p, PONG, TR_PROBE_ANY, 1000, NULL));
    TR_PROBE_ASSERT(p, tr_probe_expect_where(p, PONG, a, is_two, NULL, "the payload is 2", 1000, NULL));
    assert_int_equal(tr_probe_pending(p), 0);
    /* Nothing more: the wait runs out its 250 ms on the virtual clock. */
    uint64_t t0 = tr_now(rt);
    TR_PROBE_ASSERT(p, tr_probe_expect_no_message(p, 250));
    assert_int_equal(tr_now(rt), t0 + 250 * MS);
    /* A plain thread's send is from TR_PID_NONE. */
    assert_int_equal(tr_rt_send(rt, me, PING, &one, sizeof one), 0);
    TR_PROBE_ASSERT(p, tr_probe_expect(p, PING, TR_PID_NONE, TR_DEFAULT, NULL));
    assert_int_equal(tr_probe_free(p), 0);
    tr_runtime_free(rt);
}

/* Failures say what was expected and what came, and take the message. */
static void test_probe_failures_print_both_sides(void **state)
{
    (void)state;
    tr_runtime *rt = kit_runtime(1, 0);
    tr_probe *p;
    assert_int_equal(tr_probe_create(rt, &p), 0);
    tr_pid me = tr_probe_pid(p);
    tr_pid a = tr_test_spawn(rt, &pinger_b, TR_LOOP_DEFAULT, NULL, 0);
    assert_int_equal(tr_rt_send(rt, a, PING, &me, sizeof me), 0);
    assert_int_equal(tr_probe_expect(p, PING, a, 1000, NULL), TR_EUNEXPECTED);
    const char *f = tr_probe_failure(p);
    assert_non_null(strstr(f, "expected type 5 from"));
    assert_non_null(strstr(f, "got type 6 from"));
    uint32_t nine = 9;
    assert_int_equal(tr_probe_expect_payload(p, PONG, a, &nine, sizeof nine, 1000, NULL),
                     TR_EUNEXPECTED);
    assert_non_null(strstr(tr_probe_failure(p), "not the one expected"));
    TR_PROBE_ASSERT(p, tr_probe_expect(p, PONG, a, 1000, NULL)); /* the third */
    uint64_t t0 = tr_now(rt);
    assert_int_equal(tr_probe_expect(p, PONG, a, 400, NULL), TR_ETIMEDOUT);
    assert_non_null(strstr(tr_probe_failure(p), "got nothing within 400 ms"));
    assert_int_equal(tr_now(rt), t0 + 400 * MS);
    /* expect_no_message that gets one fails with it. */
    assert_int_equal(tr_rt_send(rt, me, GO, NULL, 0), 0);
    assert_int_equal(tr_probe_expect_no_message(p, 100), TR_EUNEXPECTED);
    assert_non_null(strstr(tr_probe_failure(p), "expected no message for 100 ms; got type 1"));
    assert_int_equal(tr_probe_free(p), 0);
    tr_runtime_free(rt);
}

/* Observing the messages between two other actors, who still get them. */
static _Atomic uint32_t pongs_seen;

static int sink_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    if (msg->type == PONG)
        atomic_fetch_add(&pongs_seen, 1);
    return 0;
}

static const tr_behavior sink_b = {.name = "sink", .receive = sink_receive};

static void test_probe_observes_others(void **state)
{
    (void)state;
    tr_runtime *rt = kit_runtime(2, 0);
    tr_probe *p;
    assert_int_equal(tr_probe_create(rt, &p), 0);
    tr_pid a = tr_test_spawn(rt, &pinger_b, TR_LOOP(0), NULL, 0);
    tr_pid b = tr_test_spawn(rt, &sink_b, TR_LOOP(1), NULL, 0);
    assert_int_equal(tr_probe_observe(p, a, b), 0);
    assert_int_equal(tr_rt_send(rt, a, PING, &b, sizeof b), 0);
    for (uint32_t i = 0; i < 3; i++) {
        tr_probe_msg m;
        TR_PROBE_ASSERT(p, tr_probe_expect_payload(p, PONG, a, &i, sizeof i, 1000, &m));
        assert_int_equal(m.to, b);
        tr_probe_msg_free(&m);
    }
    TR_PROBE_ASSERT(p, tr_probe_expect_no_message(p, 100));
    assert_int_equal(atomic_load(&pongs_seen), 3);
    /* Bad observations. */
    assert_int_equal(tr_probe_observe(p, a, TR_PROBE_ANY), TR_EINVAL);
    assert_int_equal(tr_probe_observe(p, a, tr_probe_pid(p)), TR_EINVAL);
    assert_int_equal(tr_probe_free(p), 0);
    tr_runtime_free(rt);
    atomic_store(&pongs_seen, 0);
}

/* DOWN and trapped EXIT with the reason. */
static void test_probe_down_and_exit(void **state)
{
    (void)state;
    tr_runtime *rt = kit_runtime(2, 0);
    tr_probe *p;
    assert_int_equal(tr_probe_create(rt, &p), 0);
    tr_pid a = tr_test_spawn(rt, &pinger_b, TR_LOOP_DEFAULT, NULL, 0);
    tr_pid b = tr_test_spawn(rt, &pinger_b, TR_LOOP_DEFAULT, NULL, 0);
    tr_ref ref = 0;
    assert_int_equal(tr_probe_monitor(p, a, &ref), 0);
    assert_true(ref != 0);
    assert_int_equal(tr_probe_link(p, b), 0);
    assert_int_equal(tr_rt_send(rt, a, CRASH, NULL, 0), 0);
    tr_down d;
    TR_PROBE_ASSERT(p, tr_probe_expect_down(p, a, TR_EXIT_ERROR, 1000, &d));
    assert_int_equal(d.code, TR_EUSER(7));
    assert_int_equal(tr_rt_send(rt, b, CRASH, NULL, 0), 0);
    /* The wrong kind is a failure that names it. */
    assert_int_equal(tr_probe_expect_exit(p, b, TR_EXIT_NORMAL, 1000, NULL), TR_EUNEXPECTED);
    assert_non_null(strstr(tr_probe_failure(p), "ended with kind normal"));
    assert_int_equal(tr_probe_free(p), 0);
    tr_runtime_free(rt);
}

/* A probe stands in for a service: it is called, and answers. */
static void test_probe_replies(void **state)
{
    (void)state;
    tr_runtime *rt = kit_runtime(2, 0);
    tr_probe *svc, *rep;
    assert_int_equal(tr_probe_create(rt, &svc), 0);
    assert_int_equal(tr_probe_create(rt, &rep), 0);
    tr_pid c = tr_test_spawn(rt, tr_test_caller(), TR_LOOP_DEFAULT, NULL, 0);
    tr_test_call arg = {.target = tr_probe_pid(svc), .report = tr_probe_pid(rep), .type = ASK,
                        .len = 1, .timeout_ms = 2000, .data = "q"};
    assert_int_equal(tr_rt_send(rt, c, TR_TEST_CALLER_GO, &arg, sizeof arg), 0);
    tr_probe_msg req;
    TR_PROBE_ASSERT(svc, tr_probe_expect_payload(svc, ASK, c, "q", 1, 1000, &req));
    assert_true(req.flags & TR_MSG_REQUEST);
    assert_int_equal(tr_probe_reply(svc, &req, ANSWER, "a", 1), 0);
    TR_PROBE_ASSERT(rep, tr_probe_expect_payload(rep, ANSWER, c, "a", 1, 1000, NULL));
    tr_probe_msg_free(&req);
    /* Unanswered, the client's call times out 2 s later, virtual. */
    assert_int_equal(tr_rt_send(rt, c, TR_TEST_CALLER_GO, &arg, sizeof arg), 0);
    TR_PROBE_ASSERT(svc, tr_probe_expect(svc, ASK, c, 1000, NULL));
    uint64_t t0 = tr_now(rt);
    TR_PROBE_ASSERT(rep, tr_probe_expect(rep, TR_TEST_CALLER_TIMED_OUT, c, 5000, NULL));
    assert_int_equal(tr_now(rt), t0 + 2000 * MS);
    assert_int_equal(tr_probe_free(svc), 0);
    assert_int_equal(tr_probe_free(rep), 0);
    tr_runtime_free(rt);
}

/* Probes work on a runtime with the real clock too (real-time waits). */
static void test_probe_real_clock(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_probe *p;
    assert_int_equal(tr_probe_create(rt, &p), 0);
    tr_pid me = tr_probe_pid(p);
    tr_pid a = tr_test_spawn(rt, &pinger_b, TR_LOOP_DEFAULT, NULL, 0);
    assert_int_equal(tr_rt_send(rt, a, PING, &me, sizeof me), 0);
    for (int i = 0; i < 3; i++)
        TR_PROBE_ASSERT(p, tr_probe_expect(p, PONG, a, TR_TEST_CALL_MS, NULL));
    assert_int_equal(tr_test_settle(rt), 0);
    TR_PROBE_ASSERT(p, tr_probe_expect_no_message(p, 10));
    assert_int_equal(tr_probe_observe(p, a, me), TR_EINVAL); /* kit runtimes only */
    assert_int_equal(tr_probe_free(p), 0);
    tr_runtime_free(rt);
}

/* ---- a stop that waits on virtual time ----------------------------------------------- */

static _Atomic int lingerer_end = -1;

static int lingerer_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return tr_trap_exits(self, 1);
}

static void lingerer_terminate(tr_actor *self, void *state, const tr_exit_reason *r)
{
    (void)self;
    (void)state;
    atomic_store(&lingerer_end, (int)r->kind);
}

static const tr_behavior lingerer_b = {.name = "lingerer", .init = lingerer_init,
                                       .receive = tr_test_ignore,
                                       .terminate = lingerer_terminate};

/* An actor that traps its shutdown and lingers is killed after its
 * shutdown_ms — on the virtual clock, which the stop moves (in manual
 * mode too: nothing else would). */
static void test_stop_moves_virtual_time(void **state)
{
    (void)state;
    tr_runtime *rt = kit_runtime(2, 0);
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.shutdown_ms = 60000;
    tr_pid l;
    assert_int_equal(tr_rt_spawn(rt, &lingerer_b, &o, &l), 0);
    assert_int_equal(tr_test_settle(rt), 0);
    uint64_t t0 = tr_now(rt);
    assert_int_equal(tr_runtime_stop(rt), 0);
    assert_int_equal(tr_runtime_wait(rt), 0);
    assert_int_equal(atomic_load(&lingerer_end), TR_EXIT_KILLED);
    assert_int_equal(tr_now(rt), t0 + 60000 * MS);
    tr_runtime_free(rt);
}

/* ---- limits and bad input ----------------------------------------------------------- */

static int fast_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return tr_send_interval(self, tr_self(self), 1, TICK, NULL, 0, NULL);
}

static const tr_behavior fast_b = {.name = "fast", .init = fast_init,
                                   .receive = tr_test_ignore};

static void test_max_steps(void **state)
{
    (void)state;
    tr_runtime_options o;
    tr_runtime_options_init(&o);
    o.loops = 1;
    tr_test_config c;
    tr_test_config_init(&c);
    c.max_steps = 10;
    tr_runtime *rt;
    assert_int_equal(tr_test_create(&rt, &o, &c), 0);
    assert_int_equal(tr_runtime_start(rt), 0);
    tr_test_spawn(rt, &fast_b, TR_LOOP_DEFAULT, NULL, 0);
    uint64_t t0 = tr_now(rt);
    assert_int_equal(tr_test_advance(rt, 1000), TR_ELIMIT);
    assert_int_equal(tr_now(rt), t0 + 10 * MS); /* ten periods stepped, then it stopped */
    assert_int_equal(tr_test_advance(rt, 5), 0);
    tr_runtime_free(rt);
}

static uint64_t some_clock(void *ud)
{
    (void)ud;
    return 1;
}

static void test_bad_input(void **state)
{
    (void)state;
    tr_runtime *rt = NULL;
    tr_runtime_options o;
    tr_runtime_options_init(&o);
    o.clock = some_clock;
    assert_int_equal(tr_test_create(&rt, &o, NULL), TR_EINVAL);
    assert_null(rt);
    assert_int_equal(tr_test_create(NULL, NULL, NULL), TR_EINVAL);
    tr_test_config c;
    tr_test_config_init(&c);
    c.patience_ms = -5;
    assert_int_equal(tr_test_create(&rt, NULL, &c), TR_EINVAL);
    assert_int_equal(tr_test_settle(NULL), TR_EINVAL);
    assert_false(tr_test_is_kit(NULL));
    /* Not started: nothing to settle. */
    assert_int_equal(tr_test_create(&rt, NULL, NULL), 0);
    assert_int_equal(tr_test_settle(rt), TR_EINVAL);
    tr_runtime_free(rt);
    /* Not a kit runtime: no virtual time to move. */
    rt = tr_test_quiet_runtime(1);
    assert_false(tr_test_is_kit(rt));
    assert_int_equal(tr_test_advance(rt, 10), TR_EINVAL);
    assert_int_equal(tr_test_settle(rt), 0);
    tr_runtime_free(rt);
    rt = kit_runtime(1, 0);
    assert_int_equal(tr_test_advance(rt, -1), TR_EINVAL);
    tr_probe *p;
    assert_int_equal(tr_probe_create(NULL, &p), TR_EINVAL);
    assert_int_equal(tr_probe_create(rt, &p), 0);
    assert_int_equal(tr_probe_expect(p, 1, TR_PROBE_ANY, -7, NULL), TR_EINVAL);
    assert_int_equal(tr_probe_expect_no_message(p, -1), TR_EINVAL);
    assert_int_equal(tr_probe_expect_where(p, 1, TR_PROBE_ANY, NULL, NULL, NULL, 10, NULL),
                     TR_EINVAL);
    assert_int_equal(tr_probe_send(p, tr_probe_pid(p), TR_MSG_USER_MAX + 1u, NULL, 0), TR_EINVAL);
    assert_int_equal(tr_probe_reply(p, NULL, 1, NULL, 0), TR_EINVAL);
    assert_int_equal(tr_probe_free(NULL), 0);
    /* The runtime stops first: the probe is still freed cleanly. */
    assert_int_equal(tr_runtime_stop(rt), 0);
    assert_int_equal(tr_runtime_wait(rt), 0);
    assert_int_equal(tr_test_settle(rt), 0);
    assert_int_equal(tr_probe_free(p), 0);
    tr_runtime_free(rt);
    assert_string_equal(tr_err_name(TR_EUNEXPECTED), "TR_EUNEXPECTED");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_five_ticks_then_call),
        cmocka_unit_test(test_advance_steps_each_period),
        cmocka_unit_test(test_settle_delivers_chains),
        cmocka_unit_test(test_advance_delivers_what_timers_cause),
        cmocka_unit_test(test_settle_waits_for_jobs),
        cmocka_unit_test(test_auto_advance_call),
        cmocka_unit_test(test_manual_call_timeout_is_virtual),
        cmocka_unit_test(test_probe_expect),
        cmocka_unit_test(test_probe_failures_print_both_sides),
        cmocka_unit_test(test_probe_observes_others),
        cmocka_unit_test(test_probe_down_and_exit),
        cmocka_unit_test(test_probe_replies),
        cmocka_unit_test(test_probe_real_clock),
        cmocka_unit_test(test_stop_moves_virtual_time),
        cmocka_unit_test(test_max_steps),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
