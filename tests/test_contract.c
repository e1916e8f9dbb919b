/*
 * test_contract.c — the API conventions of 0.2 (issue 15, decisions 1 and
 * 2): zero is the default in structs (placement of spawn options and child
 * specs left without .loop, max_restarts, the init functions), .loop out
 * of range refused where a struct is received, TR_RESTARTS_NEVER, one
 * duration type whose sentinels mean what the header says, and durations
 * so large that they used to wrap.
 *
 * Where time is the point the runtime runs on the virtual clock
 * (tr_test.h) and the test moves it; the few real-time waits only have to
 * end, and succeed however slow the machine is. The runtimes log nothing:
 * supervisors report the crashes these tests provoke.
 */
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "troupe_test.h"
#include "tr_test.h"

#define MS 1000000ull
#define HUGE_MS ((tr_duration)1 << 62) /* * 1000000 wraps to exactly 0 in 64 bits */

enum {
    ASK = 1,
    SPAWN = 2,
    FAIL = 3,
    SLOW = 4,
    LATER = 5,
    DEADLINE = 6,
    RELAY = 7,
    CHECK = 8,
    HUGE_T = 10,
    BIG_T = 11,
    PROBE = 12
};

/* A blocking call whose reply is one int32_t. */
static int32_t call_int(tr_runtime *rt, tr_pid to, uint32_t type, const void *data,
                        size_t len)
{
    int32_t v;
    tr_test_ask(rt, to, type, data, len, &v, sizeof v);
    return v;
}

/* ---- "where": answers ASK with its loop ----------------------------------------- */

static _Atomic int starts; /* inits of where_b, for the restart counts */

static int where_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    (void)state;
    (void)arg;
    (void)len;
    atomic_fetch_add(&starts, 1);
    return 0;
}

static int where_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == FAIL)
        return TR_EFAILED;
    if (msg->type == ASK) {
        int32_t loop = tr_loop_index(self);
        return tr_reply(self, msg, ASK, &loop, sizeof loop);
    }
    return 0;
}

static const tr_behavior where_b = {
    .name = "where", .init = where_init, .receive = where_receive};

static int loop_of(tr_runtime *rt, tr_pid p)
{
    return call_int(rt, p, ASK, NULL, 0);
}

/* ---- zero is the default: placement --------------------------------------------- */

#define NKIDS 4

/* Spawns NKIDS children with options that leave .loop out. */
static int parent_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    if (msg->type != SPAWN)
        return where_receive(self, state, msg);
    tr_pid kids[NKIDS];
    for (int i = 0; i < NKIDS; i++) {
        tr_spawn_opts o = {.shutdown_ms = 1000}; /* no .loop: the spawner's */
        TR_CHECK_EQ(tr_spawn(self, &where_b, &o, &kids[i]), 0);
    }
    return tr_reply(self, msg, SPAWN, kids, sizeof kids);
}

static const tr_behavior parent_b = {.name = "parent", .receive = parent_receive};

static void test_spawn_opts_without_loop(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    /* From a plain thread: round-robin, so both loops get their share. */
    int per_loop[2] = {0, 0};
    for (int i = 0; i < NKIDS; i++) {
        tr_spawn_opts o = {.shutdown_ms = 1000};
        tr_pid p;
        assert_int_equal(tr_rt_spawn(rt, &where_b, &o, &p), 0);
        int loop = loop_of(rt, p);
        assert_in_range(loop, 0, 1);
        per_loop[loop]++;
    }
    assert_int_equal(per_loop[0], NKIDS / 2);
    assert_int_equal(per_loop[1], NKIDS / 2);
    /* From an actor: the children live on its loop — loop 1 here, which a
     * zero .loop read as an index would not give. */
    tr_spawn_opts po = {.loop = TR_LOOP(1)};
    tr_pid parent;
    assert_int_equal(tr_rt_spawn(rt, &parent_b, &po, &parent), 0);
    assert_int_equal(loop_of(rt, parent), 1);
    tr_pid kids[NKIDS];
    tr_test_ask(rt, parent, SPAWN, NULL, 0, kids, sizeof kids);
    for (int i = 0; i < NKIDS; i++)
        assert_int_equal(loop_of(rt, kids[i]), 1);
    /* The explicit forms. */
    tr_spawn_opts o = {.loop = TR_LOOP(0)};
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &where_b, &o, &p), 0);
    assert_int_equal(loop_of(rt, p), 0);
    o.loop = TR_LOOP(1);
    assert_int_equal(tr_rt_spawn(rt, &where_b, &o, &p), 0);
    assert_int_equal(loop_of(rt, p), 1);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* The pid of child `id` of `sup` (waiting until it runs). */
static tr_pid child_pid(tr_runtime *rt, tr_pid sup, const char *id)
{
    tr_pid pid = TR_PID_NONE;
    uint64_t end = tr_test_wall_ns() + TR_TEST_PATIENCE_S * 1000000000ull;
    while (pid == TR_PID_NONE) {
        tr_sup_child c[8];
        int n = tr_rt_sup_which_children(rt, sup, c, 8);
        assert_true(n >= 0);
        for (int i = 0; i < n && i < 8; i++)
            if (strcmp(c[i].id, id) == 0)
                pid = c[i].pid;
        if (tr_test_wall_ns() > end)
            fail_msg("child %s never ran", id);
    }
    return pid;
}

static void test_child_spec_without_loop(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    for (int home = 0; home < 2; home++) {
        int other = 1 - home;
        tr_child_spec inner[] = {{.id = "inner", .behavior = &where_b}};
        tr_sup_spec nested = {.children = inner, .nchildren = 1};
        tr_child_spec kids[] = {
            {.id = "plain", .behavior = &where_b}, /* the supervisor's loop */
            {.id = "pinned", .behavior = &where_b, .loop = TR_LOOP(other)},
            {.id = "nested", .supervisor = &nested}, /* the supervisor's loop */
        };
        tr_sup_spec spec = {.children = kids, .nchildren = 3};
        tr_spawn_opts o = {.loop = TR_LOOP(home)};
        tr_pid sup;
        assert_int_equal(tr_rt_sup_spawn(rt, &spec, &o, &sup), 0);
        assert_int_equal(loop_of(rt, child_pid(rt, sup, "plain")), home);
        assert_int_equal(loop_of(rt, child_pid(rt, sup, "pinned")), other);
        tr_pid n = child_pid(rt, sup, "nested");
        assert_int_equal(loop_of(rt, child_pid(rt, n, "inner")), home);
    }
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- .loop out of range ---------------------------------------------------------- */

/* Values no 2-loop runtime has: TR_LOOP(2) and beyond, and negatives
 * other than TR_LOOP_ROUND_ROBIN (-2 was round-robin in 0.1). */
static const int bad_loops[] = {TR_LOOP(2), TR_LOOP(7), INT_MAX, -2, -3, INT_MIN};
#define NBAD (sizeof bad_loops / sizeof bad_loops[0])

typedef struct bad_results {
    int32_t spawn[NBAD], sup_spawn[NBAD], add_child[NBAD], group_spawn[NBAD];
} bad_results;

/* From an actor: every call that receives a .loop, with each bad value. */
static int checker_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type != CHECK)
        return 0;
    tr_pid sup;
    memcpy(&sup, msg->data, sizeof sup);
    bad_results res;
    tr_group_id g;
    TR_CHECK_EQ(tr_group_open(self, NULL, &g), 0);
    for (size_t i = 0; i < NBAD; i++) {
        tr_pid out = 12345;
        tr_ref ref;
        tr_spawn_opts o = {.loop = bad_loops[i]};
        res.spawn[i] = tr_spawn(self, &where_b, &o, &out);
        TR_CHECK_EQ(out, 12345); /* written only on success */
        tr_child_spec inner = {.id = "x", .behavior = &where_b, .loop = bad_loops[i]};
        tr_sup_spec nested = {.children = &inner, .nchildren = 1};
        tr_child_spec kid = {.id = "n", .supervisor = &nested};
        tr_sup_spec spec = {.children = &kid, .nchildren = 1};
        res.sup_spawn[i] = tr_sup_spawn(self, &spec, NULL, &out);
        res.add_child[i] = tr_sup_add_child(self, sup, &inner, TR_TEST_CALL_MS, &ref);
        res.group_spawn[i] = tr_group_spawn(self, g, &where_b, &o, &out);
    }
    TR_CHECK_EQ(tr_group_cancel(self, g), 0);
    return tr_reply(self, msg, CHECK, &res, sizeof res);
}

static const tr_behavior checker_b = {.name = "checker", .receive = checker_receive};

static void test_loop_out_of_range(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_child_spec one = {.id = "one", .behavior = &where_b};
    tr_sup_spec ok_spec = {.children = &one, .nchildren = 1};
    tr_pid sup;
    assert_int_equal(tr_rt_sup_spawn(rt, &ok_spec, NULL, &sup), 0);
    for (size_t i = 0; i < NBAD; i++) {
        tr_pid out = 12345;
        tr_spawn_opts o = {.loop = bad_loops[i]};
        assert_int_equal(tr_rt_spawn(rt, &where_b, &o, &out), TR_EINVAL);
        assert_int_equal(tr_rt_sup_spawn(rt, &ok_spec, &o, &out), TR_EINVAL);
        /* A child spec, at the top and nested one level down. */
        tr_child_spec bad = {.id = "bad", .behavior = &where_b, .loop = bad_loops[i]};
        tr_sup_spec spec = {.children = &bad, .nchildren = 1};
        assert_int_equal(tr_rt_sup_spawn(rt, &spec, NULL, &out), TR_EINVAL);
        tr_child_spec mid = {.id = "mid", .supervisor = &spec};
        tr_sup_spec top = {.children = &mid, .nchildren = 1};
        assert_int_equal(tr_rt_sup_spawn(rt, &top, NULL, &out), TR_EINVAL);
        assert_int_equal(tr_rt_sup_add_child(rt, sup, &bad, &out), TR_EINVAL);
        assert_int_equal(out, 12345);
    }
    /* The supervisor was not touched: it still has its one child. */
    assert_int_equal(tr_rt_sup_which_children(rt, sup, NULL, 0), 1);
    tr_pid checker;
    assert_int_equal(tr_rt_spawn(rt, &checker_b, NULL, &checker), 0);
    bad_results res;
    tr_test_ask(rt, checker, CHECK, &sup, sizeof sup, &res, sizeof res);
    for (size_t i = 0; i < NBAD; i++) {
        assert_int_equal(res.spawn[i], TR_EINVAL);
        assert_int_equal(res.sup_spawn[i], TR_EINVAL);
        assert_int_equal(res.add_child[i], TR_EINVAL);
        assert_int_equal(res.group_spawn[i], TR_EINVAL);
    }
    assert_int_equal(tr_rt_sup_which_children(rt, sup, NULL, 0), 1);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- max_restarts: TR_RESTARTS_NEVER and the zero default ------------------------ */

static _Atomic int down_kind = -1, down_code;
static tr_sup_spec boss_spec;

/* Spawns a supervisor of boss_spec, monitors it and records how it ends. */
static int boss_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == TR_MSG_DOWN) {
        const tr_down *d = msg->data;
        atomic_store(&down_code, d->code);
        atomic_store(&down_kind, d->kind);
        return 0;
    }
    if (msg->type != SPAWN)
        return 0;
    tr_pid sup;
    tr_ref ref;
    TR_CHECK_EQ(tr_sup_spawn(self, &boss_spec, NULL, &sup), 0);
    TR_CHECK_EQ(tr_monitor(self, sup, &ref), 0);
    return tr_reply(self, msg, SPAWN, &sup, sizeof sup);
}

static const tr_behavior boss_b = {.name = "boss", .receive = boss_receive};

static tr_pid boss_start(tr_runtime *rt, const tr_sup_spec *spec)
{
    boss_spec = *spec;
    atomic_store(&down_kind, -1);
    atomic_store(&starts, 0);
    tr_pid boss, sup;
    assert_int_equal(tr_rt_spawn(rt, &boss_b, NULL, &boss), 0);
    tr_test_ask(rt, boss, SPAWN, NULL, 0, &sup, sizeof sup);
    return sup;
}

/* Fails the running child `id` of `sup` (other than `old`); returns its pid. */
static tr_pid fail_child(tr_runtime *rt, tr_pid sup, const char *id, tr_pid old)
{
    tr_pid p;
    TR_WAIT_UNTIL((p = child_pid(rt, sup, id)) != old);
    assert_int_equal(tr_rt_send(rt, p, FAIL, NULL, 0), 0);
    return p;
}

static void test_restarts_never(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, TR_TEST_QUIET | TR_TEST_VCLOCK);
    tr_child_spec kids[] = {
        {.id = "perm", .behavior = &where_b},
        {.id = "temp", .behavior = &where_b, .restart = TR_TEMPORARY},
    };
    tr_sup_spec spec = {
        .max_restarts = TR_RESTARTS_NEVER, .children = kids, .nchildren = 2};
    tr_pid sup = boss_start(rt, &spec);
    TR_WAIT_UNTIL(atomic_load(&starts) == 2);
    /* An exit that needs no restart (a temporary child) is not counted. */
    fail_child(rt, sup, "temp", TR_PID_NONE);
    tr_sup_child c[2];
    TR_WAIT_UNTIL(tr_rt_sup_which_children(rt, sup, c, 2) == 2 &&
                  c[1].pid == TR_PID_NONE);
    assert_int_equal(atomic_load(&down_kind), -1);
    /* The first that does makes the supervisor give up, without a restart. */
    fail_child(rt, sup, "perm", TR_PID_NONE);
    TR_WAIT_UNTIL(atomic_load(&down_kind) != -1);
    assert_int_equal(atomic_load(&down_kind), TR_EXIT_ERROR);
    assert_int_equal(atomic_load(&down_code), TR_ELIMIT);
    assert_int_equal(atomic_load(&starts), 2);

    /* max_restarts 0 is still the default, 3 (the virtual clock stands
     * still: every restart is within period_ms). */
    tr_child_spec kid = {.id = "perm", .behavior = &where_b};
    tr_sup_spec dflt = {.children = &kid, .nchildren = 1};
    sup = boss_start(rt, &dflt);
    tr_pid p = TR_PID_NONE;
    for (int restart = 1; restart <= 3; restart++) {
        p = fail_child(rt, sup, "perm", p);
        TR_WAIT_UNTIL(atomic_load(&starts) == 1 + restart);
    }
    assert_int_equal(atomic_load(&down_kind), -1);
    fail_child(rt, sup, "perm", p); /* the fourth: more than 3 */
    TR_WAIT_UNTIL(atomic_load(&down_kind) != -1);
    assert_int_equal(atomic_load(&down_kind), TR_EXIT_ERROR);
    assert_int_equal(atomic_load(&down_code), TR_ELIMIT);
    assert_int_equal(atomic_load(&starts), 4);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- huge durations do not wrap -------------------------------------------------- */

/* Answers SLOW 50 ms later (real time), from a timer. */
typedef struct slow {
    tr_msg held;
} slow;

static int slow_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    slow *s = state;
    if (msg->type == SLOW) {
        s->held = *msg;
        s->held.data = NULL;
        return tr_send_after(self, tr_self(self), 50, LATER, NULL, 0, NULL);
    }
    if (msg->type == LATER) {
        int32_t answer = 42;
        return tr_reply(self, &s->held, SLOW, &answer, sizeof answer);
    }
    return 0;
}

static const tr_behavior slow_b = {
    .name = "slow", .state_size = sizeof(slow), .receive = slow_receive};

typedef struct later_op {
    tr_chan *ch;
    int recv; /* 1: receive one item; 0: send one */
    uint64_t item;
    int rc; /* checked by the test's thread (cmocka asserts only there) */
} later_op;

/* A plain thread that acts on the channel some 50 ms from now: the other
 * side is waiting by then (if not, the test still passes, it just proves
 * less). */
static void *later(void *arg)
{
    later_op *op = arg;
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
    size_t len;
    op->rc = op->recv ? tr_chan_recv(op->ch, &op->item, sizeof op->item, &len)
                      : tr_chan_send(op->ch, &op->item, sizeof op->item);
    return NULL;
}

static void test_huge_waits_do_not_wrap(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    /* A plain thread's call: 1 << 62 ms used to end at once. */
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &slow_b, NULL, &p), 0);
    tr_rt_reply r;
    assert_int_equal(tr_rt_call(rt, p, SLOW, NULL, 0, HUGE_MS, &r), 0);
    int32_t answer;
    assert_int_equal(r.len, sizeof answer);
    memcpy(&answer, r.data, sizeof answer);
    assert_int_equal(answer, 42);
    tr_rt_reply_free(&r);
    assert_int_equal(tr_rt_call(rt, p, SLOW, NULL, 0, INT64_MAX, &r), 0);
    assert_int_equal(r.len, sizeof answer);
    tr_rt_reply_free(&r);
    /* The channel waits. */
    tr_chan_opts co = {.capacity = 1, .item_max = sizeof(uint64_t)};
    tr_chan *ch;
    assert_int_equal(tr_chan_create(rt, &co, &ch), 0);
    later_op op = {.ch = ch, .recv = 0, .item = 7};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, later, &op), 0);
    uint64_t item = 0;
    size_t len;
    assert_int_equal(tr_chan_recv_wait(ch, &item, sizeof item, &len, HUGE_MS), 0);
    pthread_join(t, NULL);
    assert_int_equal(op.rc, 0);
    assert_int_equal(item, 7);
    item = 8;
    assert_int_equal(tr_chan_send(ch, &item, sizeof item), 0); /* full now */
    op = (later_op){.ch = ch, .recv = 1};
    assert_int_equal(pthread_create(&t, NULL, later, &op), 0);
    item = 9;
    assert_int_equal(tr_chan_send_wait(ch, &item, sizeof item, HUGE_MS), 0);
    pthread_join(t, NULL);
    assert_int_equal(op.rc, 0);
    assert_int_equal(op.item, 8);
    assert_int_equal(tr_chan_recv_wait(ch, &item, sizeof item, &len, 0), 0);
    assert_int_equal(item, 9);
    tr_chan_release(ch);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/*
 * Timers with huge delays, on the test kit's virtual clock. The actor
 * counts HUGE_T and BIG_T messages; PROBE answers the counts (the kit's
 * advance has delivered every timer due before it returns).
 */
#define BIG_PERIOD_MS                                                                    \
    ((tr_duration)1 << 44) /* ~557 years: deadline + period passes 2^64 ns */

typedef struct timed {
    int32_t counts[2]; /* HUGE_T, BIG_T */
} timed;

static int timed_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    tr_pid me = tr_self(self);
    TR_CHECK_EQ(tr_send_after(self, me, HUGE_MS, HUGE_T, NULL, 0, NULL), 0);
    TR_CHECK_EQ(tr_send_after(self, me, INT64_MAX, HUGE_T, NULL, 0, NULL), 0);
    TR_CHECK_EQ(tr_send_interval(self, me, BIG_PERIOD_MS, BIG_T, NULL, 0, NULL), 0);
    return 0;
}

static int timed_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    timed *t = state;
    switch (msg->type) {
    case HUGE_T:
        t->counts[0]++;
        return 0;
    case BIG_T:
        t->counts[1]++;
        return 0;
    case PROBE:
        return tr_reply(self, msg, PROBE, t->counts, sizeof t->counts);
    }
    return 0;
}

static const tr_behavior timed_b = {.name = "timed",
                                    .state_size = sizeof(timed),
                                    .init = timed_init,
                                    .receive = timed_receive};

static void probe_counts(tr_runtime *rt, tr_pid p, int32_t counts[2])
{
    tr_test_ask(rt, p, PROBE, NULL, 0, counts, 2 * sizeof(int32_t));
}

static void test_huge_timers_do_not_wrap(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_kit(2, TR_TEST_QUIET, 0);
    uint64_t t0 = tr_now(rt);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &timed_b, NULL, &p), 0);
    int32_t counts[2];
    /* Nothing is due: the huge delays did not fire at once. */
    probe_counts(rt, p, counts);
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[1], 0);
    /* A day later, still nothing. */
    tr_test_advance_to(rt, t0 + 86400000ull * MS);
    probe_counts(rt, p, counts);
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[1], 0);
    /* The interval's first period is over: it fires once. Its next
     * deadline, t0 + 2 periods, is past 2^64 ns: it saturates to "never"
     * (0.1 wrapped it into the past and fired it again and again). */
    tr_test_advance_to(rt, t0 + (uint64_t)BIG_PERIOD_MS * MS);
    probe_counts(rt, p, counts);
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[1], 1);
    probe_counts(rt, p, counts);
    assert_int_equal(counts[1], 1);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- what the sentinels mean ----------------------------------------------------- */

/* Answers DEADLINE with the request's deadline minus now (UINT64_MAX for
 * none), on the virtual clock, which stands still meanwhile. */
static int deadline_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type != DEADLINE)
        return 0;
    uint64_t left = msg->deadline == UINT64_MAX
                        ? UINT64_MAX
                        : msg->deadline - tr_now(tr_runtime_of(self));
    return tr_reply(self, msg, DEADLINE, &left, sizeof left);
}

static const tr_behavior deadline_b = {.name = "deadline", .receive = deadline_receive};

/* RELAY(callee, timeout): calls callee's DEADLINE with tr_call and that
 * timeout, and answers with what came back. */
typedef struct relay {
    tr_msg held;
} relay;

static int relay_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    relay *r = state;
    if (msg->type == RELAY) {
        struct {
            tr_pid to;
            tr_duration timeout;
        } req;
        memcpy(&req, msg->data, sizeof req);
        r->held = *msg;
        r->held.data = NULL;
        tr_ref ref;
        return tr_call(self, req.to, DEADLINE, NULL, 0, req.timeout, &ref);
    }
    if (msg->flags & TR_MSG_REPLY) {
        uint64_t left = 0; /* 0: the call timed out */
        if (msg->type == DEADLINE)
            memcpy(&left, msg->data, sizeof left);
        return tr_reply(self, &r->held, RELAY, &left, sizeof left);
    }
    return 0;
}

static const tr_behavior relay_b = {
    .name = "relay", .state_size = sizeof(relay), .receive = relay_receive};

static uint64_t left_of(tr_runtime *rt, tr_pid to, uint32_t type, const void *data,
                        size_t len, tr_duration timeout)
{
    tr_rt_reply r;
    assert_int_equal(tr_rt_call(rt, to, type, data, len, timeout, &r), 0);
    uint64_t left;
    assert_int_equal(r.len, sizeof left);
    memcpy(&left, r.data, sizeof left);
    tr_rt_reply_free(&r);
    return left;
}

static uint64_t relayed(tr_runtime *rt, tr_pid relay_pid, tr_pid callee,
                        tr_duration timeout)
{
    struct {
        tr_pid to;
        tr_duration timeout;
    } req = {callee, timeout};
    return left_of(rt, relay_pid, RELAY, &req, sizeof req, TR_TEST_CALL_MS);
}

static void test_call_timeouts_mean_what_they_say(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, TR_TEST_QUIET | TR_TEST_VCLOCK);
    tr_pid callee, rel;
    assert_int_equal(tr_rt_spawn(rt, &deadline_b, NULL, &callee), 0);
    assert_int_equal(tr_rt_spawn(rt, &relay_b, NULL, &rel), 0);
    /* A plain thread's call (it waits in real time; the deadline the
     * request carries is on the runtime clock, standing still). */
    assert_int_equal(left_of(rt, callee, DEADLINE, NULL, 0, TR_DEFAULT), 5000 * MS);
    /* (The thread waits in real time: a limit wide enough for a loaded
     * machine; the callee reads it on the virtual clock, exactly.) */
    assert_int_equal(left_of(rt, callee, DEADLINE, NULL, 0, 7000), 7000 * MS);
    assert_int_equal(left_of(rt, callee, DEADLINE, NULL, 0, TR_INFINITE), UINT64_MAX);
    assert_int_equal(left_of(rt, callee, DEADLINE, NULL, 0, HUGE_MS),
                     UINT64_MAX); /* saturated */
    /* An actor's call. */
    assert_int_equal(relayed(rt, rel, callee, TR_DEFAULT), 5000 * MS);
    assert_int_equal(relayed(rt, rel, callee, 7), 7 * MS);
    assert_int_equal(relayed(rt, rel, callee, TR_INFINITE), UINT64_MAX);
    assert_int_equal(relayed(rt, rel, callee, HUGE_MS), UINT64_MAX);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- bad durations are refused, TR_DEFAULT where documented ------------------------ */

static const tr_duration bad_durations[] = {-3, -4, -1000, INT64_MIN};
#define NBADD (sizeof bad_durations / sizeof bad_durations[0])

typedef struct dur_results {
    int32_t call[NBADD], send_after[NBADD], interval[NBADD], group[NBADD],
        add_child[NBADD], spawn[NBADD];
    int32_t after_default, after_infinite, after_zero;
    int32_t interval_zero, interval_default, interval_infinite;
    int32_t group_default, group_infinite, spawn_default, spawn_infinite;
} dur_results;

static int durations_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type != CHECK)
        return 0;
    tr_pid sup;
    memcpy(&sup, msg->data, sizeof sup);
    tr_pid me = tr_self(self);
    dur_results res;
    tr_ref ref;
    tr_group_id g;
    tr_pid out;
    tr_child_spec kid = {.id = "k", .behavior = &where_b};
    for (size_t i = 0; i < NBADD; i++) {
        tr_duration d = bad_durations[i];
        res.call[i] = tr_call(self, me, ASK, NULL, 0, d, &ref);
        res.send_after[i] = tr_send_after(self, me, d, ASK, NULL, 0, NULL);
        res.interval[i] = tr_send_interval(self, me, d, ASK, NULL, 0, NULL);
        tr_group_opts go = {.timeout_ms = d};
        res.group[i] = tr_group_open(self, &go, &g);
        res.add_child[i] = tr_sup_add_child(self, sup, &kid, d, &ref);
        tr_spawn_opts so = {.shutdown_ms = d};
        res.spawn[i] = tr_spawn(self, &where_b, &so, &out);
    }
    tr_timer_id id;
    res.after_default = tr_send_after(self, me, TR_DEFAULT, ASK, NULL, 0, NULL);
    res.after_infinite = tr_send_after(self, me, TR_INFINITE, ASK, NULL, 0, NULL);
    res.after_zero = tr_send_after(self, me, 0, ASK, NULL, 0, &id);
    TR_CHECK_EQ(tr_timer_cancel(self, id), 0);
    res.interval_zero = tr_send_interval(self, me, 0, ASK, NULL, 0, NULL);
    res.interval_default = tr_send_interval(self, me, TR_DEFAULT, ASK, NULL, 0, NULL);
    res.interval_infinite = tr_send_interval(self, me, TR_INFINITE, ASK, NULL, 0, NULL);
    tr_group_opts go = {.timeout_ms = TR_DEFAULT};
    res.group_default = tr_group_open(self, &go, &g);
    go.timeout_ms = TR_INFINITE;
    res.group_infinite = tr_group_open(self, &go, &g);
    tr_spawn_opts so = {.shutdown_ms = TR_DEFAULT};
    res.spawn_default = tr_spawn(self, &where_b, &so, &out);
    so.shutdown_ms = TR_INFINITE;
    res.spawn_infinite = tr_spawn(self, &where_b, &so, &out);
    return tr_reply(self, msg, CHECK, &res, sizeof res);
}

static const tr_behavior durations_b = {.name = "durations",
                                        .receive = durations_receive};

static void test_bad_durations_refused(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &where_b, NULL, &p), 0);
    tr_child_spec kid = {.id = "k", .behavior = &where_b};
    tr_sup_spec ok = {.children = &kid, .nchildren = 1};
    tr_pid sup;
    assert_int_equal(tr_rt_sup_spawn(rt, &ok, NULL, &sup), 0);
    tr_chan *ch;
    assert_int_equal(tr_chan_create(rt, NULL, &ch), 0);
    char buf[64] = {0};
    size_t len;
    for (size_t i = 0; i < NBADD; i++) {
        tr_duration d = bad_durations[i];
        tr_rt_reply r;
        assert_int_equal(tr_rt_call(rt, p, ASK, NULL, 0, d, &r), TR_EINVAL);
        assert_int_equal(tr_chan_send_wait(ch, buf, 1, d), TR_EINVAL);
        assert_int_equal(tr_chan_recv_wait(ch, buf, sizeof buf, &len, d), TR_EINVAL);
        /* Struct fields, at the call that receives the struct. */
        tr_runtime_options ro = {.loops = 1, .block_budget_ms = d};
        tr_runtime *bad_rt = NULL;
        assert_int_equal(tr_runtime_create(&bad_rt, &ro), TR_EINVAL);
        tr_spawn_opts so = {.shutdown_ms = d};
        tr_pid out;
        assert_int_equal(tr_rt_spawn(rt, &where_b, &so, &out), TR_EINVAL);
        tr_child_spec bad_kid = {.id = "k", .behavior = &where_b, .shutdown_ms = d};
        tr_sup_spec s1 = {.children = &bad_kid, .nchildren = 1};
        assert_int_equal(tr_rt_sup_spawn(rt, &s1, NULL, &out), TR_EINVAL);
        assert_int_equal(tr_rt_sup_add_child(rt, sup, &bad_kid, &out), TR_EINVAL);
        tr_sup_spec fields[4] = {ok, ok, ok, ok};
        fields[0].period_ms = d;
        fields[1].backoff_min_ms = d;
        fields[2].backoff_max_ms = d;
        fields[3].backoff_reset_ms = d;
        for (int f = 0; f < 4; f++) {
            assert_int_equal(tr_rt_sup_spawn(rt, &fields[f], NULL, &out), TR_EINVAL);
            tr_child_spec mid = {.id = "mid", .supervisor = &fields[f]};
            tr_sup_spec top = {.children = &mid, .nchildren = 1};
            assert_int_equal(tr_rt_sup_spawn(rt, &top, NULL, &out), TR_EINVAL);
        }
    }
    /* The channel waits have no default; a backoff that never ends is no backoff. */
    assert_int_equal(tr_chan_recv_wait(ch, buf, sizeof buf, &len, TR_DEFAULT), TR_EINVAL);
    assert_int_equal(tr_chan_send_wait(ch, buf, 1, TR_DEFAULT), TR_EINVAL);
    tr_sup_spec never = ok;
    never.backoff_min_ms = TR_INFINITE;
    tr_pid out;
    assert_int_equal(tr_rt_sup_spawn(rt, &never, NULL, &out), TR_EINVAL);
    /* From an actor. */
    tr_pid checker;
    assert_int_equal(tr_rt_spawn(rt, &durations_b, NULL, &checker), 0);
    dur_results res;
    tr_test_ask(rt, checker, CHECK, &sup, sizeof sup, &res, sizeof res);
    for (size_t i = 0; i < NBADD; i++) {
        assert_int_equal(res.call[i], TR_EINVAL);
        assert_int_equal(res.send_after[i], TR_EINVAL);
        assert_int_equal(res.interval[i], TR_EINVAL);
        assert_int_equal(res.group[i], TR_EINVAL);
        assert_int_equal(res.add_child[i], TR_EINVAL);
        assert_int_equal(res.spawn[i], TR_EINVAL);
    }
    /* No default delay, no "never", and a period must be positive. */
    assert_int_equal(res.after_default, TR_EINVAL);
    assert_int_equal(res.after_infinite, TR_EINVAL);
    assert_int_equal(res.after_zero, 0);
    assert_int_equal(res.interval_zero, TR_EINVAL);
    assert_int_equal(res.interval_default, TR_EINVAL);
    assert_int_equal(res.interval_infinite, TR_EINVAL);
    /* Fields take TR_DEFAULT and TR_INFINITE. */
    assert_int_equal(res.group_default, 0);
    assert_int_equal(res.group_infinite, 0);
    assert_int_equal(res.spawn_default, 0);
    assert_int_equal(res.spawn_infinite, 0);
    tr_chan_release(ch);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/*
 * Lingers when asked to stop (traps exits) until it is killed; records its
 * end. Used to see a shutdown timeout on the virtual clock.
 */
static _Atomic int linger_trapped, linger_ended;

static int linger_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return tr_trap_exits(self, 1);
}

static int linger_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    if (msg->type == TR_MSG_EXIT) {
        atomic_fetch_add(&linger_trapped, 1);
        return 0;
    }
    return where_receive(self, state, msg);
}

static void linger_terminate(tr_actor *self, void *state, const tr_exit_reason *r)
{
    (void)self;
    (void)state;
    (void)r;
    atomic_fetch_add(&linger_ended, 1);
}

static const tr_behavior linger_b = {.name = "linger",
                                     .init = linger_init,
                                     .receive = linger_receive,
                                     .terminate = linger_terminate};

/* A parent whose children are lingerers, spawned with the shutdown_ms it
 * is given; PROBE answers how many lingerers have ended. */
static int keeper_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == SPAWN) {
        tr_duration shutdown_ms;
        memcpy(&shutdown_ms, msg->data, sizeof shutdown_ms);
        tr_spawn_opts so = {.shutdown_ms = shutdown_ms};
        tr_pid kid;
        TR_CHECK_EQ(tr_spawn(self, &linger_b, &so, &kid), 0);
        return tr_reply(self, msg, SPAWN, &kid, sizeof kid);
    }
    if (msg->type == PROBE) {
        int32_t ended = atomic_load(&linger_ended);
        return tr_reply(self, msg, PROBE, &ended, sizeof ended);
    }
    return 0;
}

static const tr_behavior keeper_b = {.name = "keeper", .receive = keeper_receive};

/* The describe line of supervisor `sup`. */
typedef struct described {
    tr_pid pid;
    char info[TR_INFO_MAX];
} described;

/* tr_runtime_tree callback: the describe line of one actor. */
static int describe_line(const tr_actor_info *i, void *ud)
{
    described *d = ud;
    if (i->pid == d->pid)
        snprintf(d->info, sizeof d->info, "%s", i->info);
    return 0;
}

static const char *sup_info(tr_runtime *rt, tr_pid sup, described *d)
{
    *d = (described){.pid = sup};
    assert_int_equal(tr_runtime_tree(rt, describe_line, d), 0);
    return d->info;
}

static void test_default_fields_mean_their_default(void **state)
{
    (void)state;
    /* The watchdog: TR_DEFAULT is 100 ms, TR_INFINITE none, a huge budget
     * a watchdog that sleeps in bounded slices and still stops at once. */
    const tr_duration budgets[] = {TR_DEFAULT, TR_INFINITE, HUGE_MS, INT64_MAX};
    for (size_t i = 0; i < sizeof budgets / sizeof budgets[0]; i++) {
        tr_runtime_options ro = {.loops = 1, .block_budget_ms = budgets[i]};
        assert_int_equal(tr_runtime_free(tr_test_runtime_opts(&ro)), 0);
    }

    tr_runtime *rt = tr_test_kit(2, TR_TEST_QUIET, 0);
    uint64_t t0 = tr_now(rt);
    /* shutdown_ms 0 and TR_DEFAULT: 5000 ms, then the child is killed. */
    const tr_duration dflt[] = {0, TR_DEFAULT};
    for (int i = 0; i < 2; i++) {
        atomic_store(&linger_trapped, 0);
        atomic_store(&linger_ended, 0);
        tr_spawn_opts ko = {.loop = TR_LOOP(0), .shutdown_ms = TR_INFINITE};
        tr_pid keeper, kid;
        assert_int_equal(tr_rt_spawn(rt, &keeper_b, &ko, &keeper), 0);
        tr_test_ask(rt, keeper, SPAWN, &dflt[i], sizeof dflt[i], &kid, sizeof kid);
        assert_int_equal(loop_of(rt, kid), 0); /* its kill timer is on loop 0 */
        uint64_t now = tr_now(rt);
        assert_int_equal(tr_signal_exit(rt, keeper, TR_EXIT_SHUTDOWN), 0);
        assert_int_equal(tr_test_settle(rt), 0);
        assert_int_equal(atomic_load(&linger_trapped), 1);
        tr_test_advance_to(rt, now + 4999 * MS);
        assert_int_equal(atomic_load(&linger_ended), 0); /* not killed yet */
        tr_test_advance_to(rt, now + 5000 * MS);
        assert_int_equal(atomic_load(&linger_ended), 1);
    }
    /* TR_INFINITE: never killed, however far the clock moves. */
    atomic_store(&linger_trapped, 0);
    atomic_store(&linger_ended, 0);
    tr_spawn_opts ko = {.loop = TR_LOOP(0), .shutdown_ms = TR_INFINITE};
    tr_pid keeper, prober, kid;
    assert_int_equal(tr_rt_spawn(rt, &keeper_b, &ko, &keeper), 0);
    assert_int_equal(tr_rt_spawn(rt, &keeper_b, &ko, &prober), 0);
    tr_duration inf = TR_INFINITE;
    tr_test_ask(rt, keeper, SPAWN, &inf, sizeof inf, &kid, sizeof kid);
    assert_int_equal(tr_signal_exit(rt, keeper, TR_EXIT_SHUTDOWN), 0);
    assert_int_equal(tr_test_settle(rt), 0);
    assert_int_equal(atomic_load(&linger_trapped), 1);
    tr_test_advance_to(rt, t0 + ((uint64_t)1 << 62));
    assert_int_equal(call_int(rt, prober, PROBE, NULL, 0), 0);
    assert_int_equal(atomic_load(&linger_ended), 0);
    assert_int_equal(tr_signal_exit(rt, kid, TR_EXIT_KILLED), 0); /* done waiting */
    assert_int_equal(tr_test_settle(rt), 0);
    assert_int_equal(atomic_load(&linger_ended), 1);

    /* A supervisor's period and backoff fields. */
    tr_child_spec kids[] = {
        {.id = "a", .behavior = &where_b, .shutdown_ms = TR_DEFAULT},
        {.id = "b", .behavior = &where_b, .shutdown_ms = TR_INFINITE},
        {.id = "c", .behavior = &where_b, .shutdown_ms = HUGE_MS},
    };
    tr_sup_spec spec = {.period_ms = TR_DEFAULT,
                        .backoff_min_ms = TR_DEFAULT,
                        .backoff_max_ms = TR_INFINITE,
                        .backoff_reset_ms = TR_INFINITE,
                        .children = kids,
                        .nchildren = 3};
    tr_spawn_opts so = {.shutdown_ms = TR_DEFAULT};
    tr_pid sup;
    described d;
    assert_int_equal(tr_rt_sup_spawn(rt, &spec, &so, &sup), 0);
    assert_non_null(strstr(sup_info(rt, sup, &d), "(max 3 in 5000 ms)"));
    spec.period_ms = TR_INFINITE;
    spec.backoff_max_ms = HUGE_MS;
    spec.backoff_reset_ms = HUGE_MS;
    spec.backoff_min_ms = 1;
    so.shutdown_ms = TR_INFINITE;
    assert_int_equal(tr_rt_sup_spawn(rt, &spec, &so, &sup), 0);
    assert_non_null(strstr(sup_info(rt, sup, &d), "(max 3 ever)"));
    assert_int_equal(tr_rt_sup_which_children(rt, sup, NULL, 0), 3);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- the init functions ------------------------------------------------------------ */

static void test_init_functions_zero(void **state)
{
    (void)state;
    tr_sup_spec s;
    memset(&s, 0xab, sizeof s);
    tr_sup_spec_init(&s);
    assert_int_equal(s.strategy, TR_ONE_FOR_ONE);
    assert_int_equal(s.max_restarts, 0);
    assert_int_equal(s.period_ms, 0);
    assert_int_equal(s.backoff_min_ms, 0);
    assert_int_equal(s.backoff_max_ms, 0);
    assert_int_equal(s.backoff_reset_ms, 0);
    assert_null(s.children);
    assert_int_equal(s.nchildren, 0);
    tr_child_spec c;
    memset(&c, 0xab, sizeof c);
    tr_child_spec_init(&c);
    assert_null(c.id);
    assert_null(c.behavior);
    assert_null(c.arg);
    assert_int_equal(c.arg_len, 0);
    assert_int_equal(c.restart, TR_PERMANENT);
    assert_int_equal(c.shutdown_ms, 0);
    assert_int_equal(c.loop, TR_LOOP_DEFAULT);
    assert_null(c.supervisor);
    tr_sup_spec_init(NULL);
    tr_child_spec_init(NULL);
    /* The other options structs: zero too. */
    tr_spawn_opts so;
    memset(&so, 0xab, sizeof so);
    tr_spawn_opts_init(&so);
    assert_int_equal(so.loop, TR_LOOP_DEFAULT);
    assert_int_equal(so.shutdown_ms, 0);
    assert_int_equal(so.overflow, TR_OVERFLOW_REFUSE);
    tr_group_opts go;
    memset(&go, 0xab, sizeof go);
    tr_group_opts_init(&go);
    assert_int_equal(go.timeout_ms, 0);
    assert_int_equal(go.max_running, 0);
    tr_chan_opts co;
    memset(&co, 0xab, sizeof co);
    tr_chan_opts_init(&co);
    assert_int_equal(co.capacity, 0);
    tr_runtime_options ro;
    memset(&ro, 0xab, sizeof ro);
    tr_runtime_options_init(&ro);
    assert_int_equal(ro.block_budget_ms, 0);

    /* What the zeroes mean: a one_for_one supervisor allowing 3 restarts
     * in 5000 ms, whose child lives on its loop. */
    tr_runtime *rt = tr_test_quiet_runtime(2);
    c.id = "kid";
    c.behavior = &where_b;
    s.children = &c;
    s.nchildren = 1;
    so.loop = TR_LOOP(1);
    tr_pid sup;
    assert_int_equal(tr_rt_sup_spawn(rt, &s, &so, &sup), 0);
    assert_int_equal(loop_of(rt, child_pid(rt, sup, "kid")), 1);
    described d;
    assert_non_null(strstr(sup_info(rt, sup, &d), "one_for_one"));
    assert_non_null(strstr(d.info, "(max 3 in 5000 ms)"));
    s.max_restarts = TR_RESTARTS_NEVER;
    assert_int_equal(tr_rt_sup_spawn(rt, &s, &so, &sup), 0);
    assert_non_null(strstr(sup_info(rt, sup, &d), "(max 0 in 5000 ms)"));
    assert_int_equal(tr_runtime_free(rt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spawn_opts_without_loop),
        cmocka_unit_test(test_child_spec_without_loop),
        cmocka_unit_test(test_loop_out_of_range),
        cmocka_unit_test(test_restarts_never),
        cmocka_unit_test(test_huge_waits_do_not_wrap),
        cmocka_unit_test(test_huge_timers_do_not_wrap),
        cmocka_unit_test(test_call_timeouts_mean_what_they_say),
        cmocka_unit_test(test_bad_durations_refused),
        cmocka_unit_test(test_default_fields_mean_their_default),
        cmocka_unit_test(test_init_functions_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
