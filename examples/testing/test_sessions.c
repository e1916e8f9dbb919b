/*
 * test_sessions.c — the session store (sessions.c) tested as a user of
 * troupe tests a service: with the test kit (troupe_test.h), on virtual
 * time. A 30-second idle timeout is tested in microseconds, to the
 * millisecond, and never flakes: tr_test_advance delivers everything due
 * before it returns, auto-advance jumps over idle time, and a probe
 * stands in for the listener. Then the deterministic scheduler: the store
 * under concurrent clients in 200 seeded interleavings, and a crash
 * injected in the middle of its traffic. Run by ctest (example_testing).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sessions.h"
#include "troupe_test.h"

#define SEC 1000000000ull

typedef struct fixture {
    tr_runtime *rt;
    tr_probe *listener; /* hears the expiries */
    tr_pid sup, store;
} fixture;

/* A kit runtime (manual or auto-advancing time), a probe as the listener,
 * and the store under a one-for-one supervisor. */
static fixture *setup_seeded(unsigned kit_flags, uint64_t seed)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    tr_test_config cfg;
    tr_test_config_init(&cfg);
    cfg.flags = kit_flags;
    cfg.seed = seed;
    tr_runtime_options o;
    tr_runtime_options_init(&o);
    o.loops = 2;
    assert_int_equal(tr_test_create(&f->rt, &o, &cfg), 0);
    assert_int_equal(tr_runtime_start(f->rt), 0);
    assert_int_equal(tr_probe_create(f->rt, &f->listener), 0);

    sessions_config sc = {.listener = tr_probe_pid(f->listener), .ttl_ms = 30000,
                          .sweep_ms = 1000};
    tr_child_spec child;
    tr_child_spec_init(&child);
    child.id = "sessions";
    child.behavior = &sessions_behavior;
    child.arg = &sc;
    child.arg_len = sizeof sc;
    tr_sup_spec spec;
    tr_sup_spec_init(&spec);
    spec.children = &child;
    spec.nchildren = 1;
    assert_int_equal(tr_rt_sup_spawn(f->rt, &spec, NULL, &f->sup), 0);
    tr_sup_child c;
    assert_int_equal(tr_rt_sup_which_children(f->rt, f->sup, &c, 1), 1);
    f->store = c.pid;
    return f;
}

static fixture *setup(unsigned kit_flags)
{
    return setup_seeded(kit_flags, 0);
}

static void teardown(fixture *f)
{
    assert_int_equal(tr_probe_free(f->listener), 0);
    assert_int_equal(tr_runtime_free(f->rt), 0);
    free(f);
}

static int32_t call(fixture *f, uint32_t type, uint64_t id)
{
    tr_rt_reply r;
    assert_int_equal(tr_rt_call(f->rt, f->store, type, &id, sizeof id, 1000, &r), 0);
    int32_t rc;
    assert_int_equal(r.len, sizeof rc);
    memcpy(&rc, r.data, sizeof rc);
    tr_rt_reply_free(&r);
    return rc;
}

static uint32_t count(fixture *f)
{
    tr_rt_reply r;
    assert_int_equal(tr_rt_call(f->rt, f->store, SESS_COUNT, NULL, 0, 1000, &r), 0);
    uint32_t n;
    assert_int_equal(r.len, sizeof n);
    memcpy(&n, r.data, sizeof n);
    tr_rt_reply_free(&r);
    return n;
}

/* Auto-advance: the expectation waits up to a minute of virtual time; the
 * clock jumps from sweep to sweep, and the expiry comes 30 s after the
 * open — at the first sweep at or after it. */
static void test_idle_session_expires(void **state)
{
    (void)state;
    fixture *f = setup(TR_TEST_AUTO_ADVANCE);
    uint64_t t0 = tr_now(f->rt);
    assert_int_equal(call(f, SESS_OPEN, 7), 0);
    uint64_t id = 7;
    tr_probe_msg m;
    TR_PROBE_ASSERT(f->listener, tr_probe_expect_payload(f->listener, SESS_EXPIRED, f->store, &id,
                                                         sizeof id, 60000, &m));
    assert_int_equal(m.at, t0 + 30 * SEC);
    tr_probe_msg_free(&m);
    assert_int_equal(count(f), 0);
    assert_int_equal(call(f, SESS_TOUCH, 7), TR_ENOTFOUND);
    teardown(f);
}

/* Manual time: the test moves the clock and checks in between. */
static void test_touch_keeps_a_session(void **state)
{
    (void)state;
    fixture *f = setup(0);
    assert_int_equal(call(f, SESS_OPEN, 1), 0);
    assert_int_equal(call(f, SESS_OPEN, 2), 0);
    assert_int_equal(tr_test_advance(f->rt, 20000), 0);
    assert_int_equal(call(f, SESS_TOUCH, 2), 0);
    assert_int_equal(tr_test_advance(f->rt, 10000), 0);
    /* 30 s: session 1 is gone, 2 was touched 10 s ago. */
    uint64_t one = 1, two = 2;
    TR_PROBE_ASSERT(f->listener, tr_probe_expect_payload(f->listener, SESS_EXPIRED, f->store, &one,
                                                         sizeof one, 0, NULL));
    TR_PROBE_ASSERT(f->listener, tr_probe_expect_no_message(f->listener, 19999));
    assert_int_equal(count(f), 1);
    TR_PROBE_ASSERT(f->listener, tr_probe_expect_payload(f->listener, SESS_EXPIRED, f->store, &two,
                                                         sizeof two, 1, NULL));
    teardown(f);
}

/* Bad input is answered, never a crash. */
static void test_bad_requests(void **state)
{
    (void)state;
    fixture *f = setup(0);
    tr_rt_reply r;
    assert_int_equal(tr_rt_call(f->rt, f->store, SESS_OPEN, "x", 1, 1000, &r), 0);
    int32_t rc;
    memcpy(&rc, r.data, sizeof rc);
    assert_int_equal(rc, TR_EINVAL);
    tr_rt_reply_free(&r);
    for (uint64_t id = 0; id < SESS_MAX; id++)
        assert_int_equal(call(f, SESS_OPEN, id), 0);
    assert_int_equal(call(f, SESS_OPEN, 999), SESS_EFULL);
    teardown(f);
}

/* A killed store is restarted by its supervisor, empty; the probe sees
 * the old one go. */
static void test_restart_after_kill(void **state)
{
    (void)state;
    fixture *f = setup(0);
    assert_int_equal(call(f, SESS_OPEN, 5), 0);
    assert_int_equal(tr_probe_monitor(f->listener, f->store, NULL), 0);
    assert_int_equal(tr_signal_exit(f->rt, f->store, TR_EXIT_KILLED), 0);
    TR_PROBE_ASSERT(f->listener, tr_probe_expect_down(f->listener, f->store, TR_EXIT_KILLED, 0, NULL));
    assert_int_equal(tr_test_settle(f->rt), 0);
    tr_sup_child c;
    assert_int_equal(tr_rt_sup_which_children(f->rt, f->sup, &c, 1), 1);
    assert_int_equal(c.restarts, 1);
    assert_true(c.pid != f->store && c.pid != TR_PID_NONE);
    f->store = c.pid;
    assert_int_equal(count(f), 0);
    teardown(f);
}

/* ---- the deterministic scheduler -------------------------------------------------- */

/* A client opens its session with a call and reports the answer. */
typedef struct client {
    tr_pid store, report;
    uint64_t id;
} client;

static int client_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    client *c = state;
    if (len != sizeof *c)
        return TR_EINVAL;
    memcpy(c, arg, sizeof *c);
    tr_ref ref;
    return tr_call(self, c->store, SESS_OPEN, &c->id, sizeof c->id, 1000, &ref);
}

static int client_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    client *c = state;
    if (msg->type != SESS_OPEN)
        return 0; /* a timeout or a failure: no report, the test sees it */
    return tr_send(self, c->report, SESS_OPEN, msg->data, msg->len);
}

static const tr_behavior client_behavior = {.name = "client", .state_size = sizeof(client),
                                            .init = client_init, .receive = client_receive};

/* Three clients at once, in whatever order the seed picks: every open is
 * answered 0 and the store counts three. A scenario returns its verdict
 * (the explorer runs the next seed), it does not assert. */
static int three_clients(tr_runtime *rt, void *ud)
{
    (void)ud;
    tr_probe *report;
    if (tr_probe_create(rt, &report) != 0)
        return -1;
    sessions_config sc = {.listener = tr_probe_pid(report), .ttl_ms = 30000, .sweep_ms = 1000};
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.arg = &sc;
    o.arg_len = sizeof sc;
    tr_pid store;
    if (tr_rt_spawn(rt, &sessions_behavior, &o, &store) != 0)
        return -1;
    for (uint64_t id = 1; id <= 3; id++) {
        client c = {store, tr_probe_pid(report), id};
        o.arg = &c;
        o.arg_len = sizeof c;
        o.loop = TR_LOOP_ROUND_ROBIN;
        tr_pid pid;
        if (tr_rt_spawn(rt, &client_behavior, &o, &pid) != 0)
            return -1;
    }
    int32_t ok = 0;
    for (int i = 0; i < 3; i++)
        if (tr_probe_expect_payload(report, SESS_OPEN, TR_PROBE_ANY, &ok, sizeof ok, 1000, NULL))
            return 1;
    tr_rt_reply r;
    uint32_t n = 0;
    if (tr_rt_call(rt, store, SESS_COUNT, NULL, 0, 1000, &r) == 0) {
        memcpy(&n, r.data, sizeof n);
        tr_rt_reply_free(&r);
    }
    tr_probe_free(report);
    return n == 3 ? 0 : 2;
}

static void test_any_schedule(void **state)
{
    (void)state;
    tr_runtime_options o;
    tr_runtime_options_init(&o);
    o.loops = 2;
    tr_test_config cfg;
    tr_test_config_init(&cfg);
    cfg.seed = 1;
    tr_test_explored res;
    assert_int_equal(tr_test_explore(&o, &cfg, 200, three_clients, NULL, &res), 0);
    assert_int_equal(res.runs, 200);
}

/* A crash injected in the middle of the traffic: the store fails on its
 * second message; the call it was handling ends (TR_EEXITED), the
 * supervisor restarts the store, empty, and it serves again. Seeded: the
 * same run every time. */
static void test_crash_mid_traffic(void **state)
{
    (void)state;
    fixture *f = setup_seeded(TR_TEST_DETERMINISTIC, 7);
    assert_int_equal(tr_test_fail_message(f->rt, f->store, 2, TR_EUSER(5)), 0);
    assert_int_equal(call(f, SESS_OPEN, 1), 0);
    uint64_t id = 2;
    tr_rt_reply r;
    assert_int_equal(tr_rt_call(f->rt, f->store, SESS_OPEN, &id, sizeof id, 1000, &r), TR_EEXITED);
    tr_sup_child c;
    assert_int_equal(tr_rt_sup_which_children(f->rt, f->sup, &c, 1), 1);
    assert_int_equal(c.restarts, 1);
    f->store = c.pid;
    assert_int_equal(count(f), 0);
    assert_int_equal(call(f, SESS_OPEN, 2), 0);
    teardown(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idle_session_expires),
        cmocka_unit_test(test_touch_keeps_a_session),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_restart_after_kill),
        cmocka_unit_test(test_any_schedule),
        cmocka_unit_test(test_crash_mid_traffic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
