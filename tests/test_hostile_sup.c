/*
 * test_hostile_sup.c — supervisors and task groups against hostile or
 * unlucky input (the hardening issue's findings 1, 2, 11 and 13, and
 * supervisor requests sent to actors that are not supervisors):
 *  - an actor whose init fails never has receive called, even when it
 *    trapped exits and an exit signal is queued; a supervisor whose start
 *    fails that way ends with its start's failure (no use of its freed
 *    child table);
 *  - max_restarts is bounded (TR_SUP_MAX_RESTARTS, TR_RESTARTS_NEVER);
 *    a spec that contains itself, or nests deeper than TR_SUP_DEPTH_MAX,
 *    is TR_EINVAL; one whose copy would be huge is TR_EMSGSIZE, promptly;
 *    a raw add-child request (it carries a behaviour pointer) is refused
 *    from every sender but the API;
 *  - tr_rt_sup_spawn on a loop thread starts nothing and writes nothing;
 *  - a completed group is closed: TR_EALREADY / TR_ESTOPPED, not
 *    TR_ENOTFOUND;
 *  - a supervisor request to an actor that is not a supervisor is
 *    answered TR_EINVAL at once, from threads and from actors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "tr_test.h"

enum { FAIL = 1, GO = 2, PING = 3 };

/* ---- a worker that counts its starts and fails on FAIL ------------------------------ */

static _Atomic int worker_starts;

static int worker_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    (void)state;
    (void)arg;
    (void)len;
    atomic_fetch_add(&worker_starts, 1);
    return 0;
}

static int worker_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    return msg->type == FAIL ? TR_EUSER(42) : 0;
}

static const tr_behavior worker_b = {.name = "worker", .init = worker_init,
                                     .receive = worker_receive};

/* An actor that ignores everything, requests included. */
static const tr_behavior mute_b = {.name = "mute", .receive = tr_test_ignore};

static tr_sup_spec one_worker_spec(tr_child_spec *kid)
{
    tr_child_spec_init(kid);
    kid->id = "w";
    kid->behavior = &worker_b;
    tr_sup_spec s;
    tr_sup_spec_init(&s);
    s.children = kid;
    s.nchildren = 1;
    return s;
}

/* Independent top-level options: a supervisor's end does not stop the
 * runtime. */
static tr_spawn_opts independent(void)
{
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.top = TR_TOP_INDEPENDENT;
    return o;
}

/* ---- finding 1: a failed init is the end ------------------------------------------ */

#define INIT_FAIL TR_EUSER(5)

/* How the trapfail child is driven (its start argument). */
enum { SELF_SIGNAL = 1, SPAWN_CHILD = 2 };

static _Atomic int trapfail_received;

/* Traps exits, gets an exit signal queued (from itself, or from its
 * parent before this init ran), maybe spawns a child of its own (so that
 * it is still ending when its signals are read), then fails. */
static int trapfail_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    int mode;
    TR_CHECK_COPY(&mode, arg, len);
    TR_CHECK_EQ(tr_trap_exits(self, 1), 0);
    if (mode & SELF_SIGNAL)
        TR_CHECK_EQ(tr_signal_exit(tr_runtime_of(self), tr_self(self), TR_EXIT_SHUTDOWN), 0);
    tr_pid child;
    if (mode & SPAWN_CHILD)
        TR_CHECK_EQ(tr_spawn(self, &mute_b, NULL, &child), 0);
    return INIT_FAIL;
}

static int trapfail_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    (void)msg;
    atomic_fetch_add(&trapfail_received, 1); /* must never happen */
    return 0;
}

static void trapfail_terminate(tr_actor *self, void *state, const tr_exit_reason *r)
{
    (void)self;
    (void)state;
    (void)r;
    atomic_fetch_add(&trapfail_received, 100); /* must never happen either */
}

static const tr_behavior trapfail_b = {.name = "trapfail", .init = trapfail_init,
                                       .receive = trapfail_receive,
                                       .terminate = trapfail_terminate};

/* The watcher starts what it is told (its argument), watches it, and
 * records its DOWN. */
typedef struct watch_arg {
    int what; /* W_TRAPFAIL, W_SUP */
    int mode; /* trapfail: its mode; plus PARENT_SIGNAL */
} watch_arg;
enum { W_TRAPFAIL, W_SUP };
#define PARENT_SIGNAL 0x100

static _Atomic int down_seen, down_kind, down_code;
static tr_ref watch_ref;

static int watcher_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    watch_arg w;
    TR_CHECK_COPY(&w, arg, len);
    tr_runtime *rt = tr_runtime_of(self);
    tr_pid pid;
    if (w.what == W_TRAPFAIL) {
        int mode = w.mode & ~PARENT_SIGNAL;
        tr_spawn_opts o;
        tr_spawn_opts_init(&o);
        o.arg = &mode;
        o.arg_len = sizeof mode;
        TR_CHECK_EQ(tr_spawn_monitor(self, &trapfail_b, &o, &pid, &watch_ref), 0);
    } else {
        tr_child_spec kid;
        tr_sup_spec s = one_worker_spec(&kid);
        TR_CHECK_EQ(tr_sup_spawn(self, &s, NULL, &pid), 0);
        TR_CHECK_EQ(tr_monitor(self, pid, &watch_ref), 0);
    }
    /* Queued before the child's INIT has run: it sees it after its init. */
    if (w.mode & PARENT_SIGNAL)
        TR_CHECK_EQ(tr_signal_exit(rt, pid, TR_EXIT_SHUTDOWN), 0);
    return 0;
}

static int watcher_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    if (msg->type == TR_MSG_DOWN && msg->ref == watch_ref) {
        const tr_down *d = msg->data;
        atomic_store(&down_kind, d->kind);
        atomic_store(&down_code, d->code);
        atomic_store(&down_seen, 1);
    }
    return 0;
}

static const tr_behavior watcher_b = {.name = "watcher", .init = watcher_init,
                                      .receive = watcher_receive};

static void watch(tr_runtime *rt, int what, int mode)
{
    atomic_store(&down_seen, 0);
    atomic_store(&trapfail_received, 0);
    watch_arg w = {what, mode};
    tr_test_spawn(rt, &watcher_b, TR_LOOP_DEFAULT, &w, sizeof w);
    TR_WAIT_UNTIL(atomic_load(&down_seen));
}

static void test_failed_init_never_receives(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    const int modes[] = {SELF_SIGNAL, PARENT_SIGNAL, SELF_SIGNAL | SPAWN_CHILD,
                         PARENT_SIGNAL | SPAWN_CHILD};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        watch(rt, W_TRAPFAIL, modes[i]);
        /* The trapped signal was not handed to receive after the failed
         * init, and the failure stays the reason (not the signal's). */
        assert_int_equal(atomic_load(&trapfail_received), 0);
        assert_int_equal(atomic_load(&down_kind), TR_EXIT_ERROR);
        assert_int_equal(atomic_load(&down_code), INIT_FAIL);
    }
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* A supervisor traps exits in its init; when its first child cannot be
 * spawned (here max_actors is reached: watcher and supervisor), its
 * init fails after its child table was freed. The shutdown its parent
 * queued before the init ran must not reach its receive (which would stop
 * the freed children and end it as "shutdown"). */
static void test_sup_failed_start_with_signal_queued(void **state)
{
    (void)state;
    /* With the signal, and (the same failure) without it. */
    const int modes[] = {PARENT_SIGNAL, 0};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        tr_runtime_options o = tr_test_options(1, TR_TEST_QUIET);
        o.max_actors = 2;
        tr_runtime *rt = tr_test_runtime_opts(&o);
        atomic_store(&worker_starts, 0);
        watch(rt, W_SUP, modes[i]);
        assert_int_equal(atomic_load(&down_kind), TR_EXIT_ERROR);
        assert_int_equal(atomic_load(&down_code), TR_ELIMIT);
        assert_int_equal(atomic_load(&worker_starts), 0);
        assert_int_equal(tr_runtime_free(rt), 0);
    }
}

/* ---- finding 2: hostile specs and requests ------------------------------------------ */

static void test_max_restarts_bounded(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(1);
    tr_child_spec kid;
    tr_sup_spec s = one_worker_spec(&kid);
    tr_spawn_opts o = independent();
    const tr_pid unset = (tr_pid)0x5eed;
    tr_pid sup = unset;

    /* Over the bound (and the values that would wrap the history). */
    const uint32_t bad[] = {TR_SUP_MAX_RESTARTS + 1, UINT32_MAX - 1, UINT32_MAX / 2};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s.max_restarts = bad[i];
        assert_int_equal(tr_rt_sup_spawn(rt, &s, &o, &sup), TR_EINVAL);
        assert_true(sup == unset);
    }
    /* ...nested too, and through the add-child call. */
    tr_child_spec hkid;
    tr_sup_spec hostile = one_worker_spec(&hkid);
    hostile.max_restarts = UINT32_MAX - 1;
    tr_child_spec nested = {.id = "n", .supervisor = &hostile};
    tr_sup_spec outer = {.children = &nested, .nchildren = 1};
    assert_int_equal(tr_rt_sup_spawn(rt, &outer, &o, &sup), TR_EINVAL);
    assert_true(sup == unset);

    /* The bound itself works: restarts are counted in a ring of
     * TR_SUP_MAX_RESTARTS + 1. */
    s.max_restarts = TR_SUP_MAX_RESTARTS;
    assert_int_equal(tr_rt_sup_spawn(rt, &s, &o, &sup), 0);
    tr_pid old = tr_test_wait_child(rt, sup, 0, TR_PID_NONE).pid;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tr_rt_send(rt, old, FAIL, NULL, 0), 0);
        old = tr_test_wait_child(rt, sup, 0, old).pid;
    }
    tr_sup_child c;
    assert_int_equal(tr_rt_sup_which_children(rt, sup, &c, 1), 1);
    assert_int_equal(c.restarts, 3);
    assert_int_equal(tr_rt_sup_add_child(rt, sup, &nested, NULL), TR_EINVAL);

    /* TR_RESTARTS_NEVER (UINT32_MAX) is an intensity of zero: the first
     * failure ends this (permanent) supervisor, and with it the runtime. */
    s.max_restarts = TR_RESTARTS_NEVER;
    tr_pid never;
    assert_int_equal(tr_rt_sup_spawn(rt, &s, NULL, &never), 0);
    tr_pid w = tr_test_wait_child(rt, never, 0, TR_PID_NONE).pid;
    assert_int_equal(tr_rt_send(rt, w, FAIL, NULL, 0), 0);
    assert_int_equal(tr_runtime_wait(rt), TR_EPERMANENT);
    tr_down d;
    assert_int_equal(tr_runtime_exit_reason(rt, &d), 0);
    assert_true(d.pid == never);
    assert_int_equal(d.kind, TR_EXIT_ERROR);
    assert_int_equal(d.code, TR_ELIMIT);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* A chain of `levels` specs, each one_for_one with one child: the next
 * spec, the last a worker. specs[0] is the top. */
static void chain(tr_sup_spec *specs, tr_child_spec *kids, int levels)
{
    for (int i = 0; i < levels; i++) {
        tr_child_spec_init(&kids[i]);
        kids[i].id = "k";
        if (i + 1 < levels)
            kids[i].supervisor = &specs[i + 1];
        else
            kids[i].behavior = &worker_b;
        tr_sup_spec_init(&specs[i]);
        specs[i].children = &kids[i];
        specs[i].nchildren = 1;
    }
}

static void test_self_containing_spec(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(1);
    tr_spawn_opts o = independent();
    const tr_pid unset = (tr_pid)0x5eed;
    tr_pid sup = unset;

    /* Directly. */
    tr_sup_spec self_spec;
    tr_child_spec self_kid;
    tr_sup_spec_init(&self_spec);
    tr_child_spec_init(&self_kid);
    self_kid.id = "me";
    self_kid.supervisor = &self_spec;
    self_spec.children = &self_kid;
    self_spec.nchildren = 1;
    assert_int_equal(tr_rt_sup_spawn(rt, &self_spec, &o, &sup), TR_EINVAL);

    /* Through another spec, behind a plain child. */
    tr_sup_spec a, b;
    tr_child_spec akids[2], bkid;
    tr_sup_spec_init(&a);
    tr_sup_spec_init(&b);
    tr_child_spec_init(&akids[0]);
    tr_child_spec_init(&akids[1]);
    tr_child_spec_init(&bkid);
    akids[0].id = "w";
    akids[0].behavior = &worker_b;
    akids[1].id = "b";
    akids[1].supervisor = &b;
    bkid.id = "a";
    bkid.supervisor = &a;
    a.children = akids;
    a.nchildren = 2;
    b.children = &bkid;
    b.nchildren = 1;
    assert_int_equal(tr_rt_sup_spawn(rt, &a, &o, &sup), TR_EINVAL);
    assert_true(sup == unset);

    /* TR_SUP_DEPTH_MAX levels are fine; one more is TR_EINVAL. */
    tr_sup_spec specs[TR_SUP_DEPTH_MAX + 1];
    tr_child_spec kids[TR_SUP_DEPTH_MAX + 1];
    chain(specs, kids, TR_SUP_DEPTH_MAX + 1);
    assert_int_equal(tr_rt_sup_spawn(rt, &specs[0], &o, &sup), TR_EINVAL);
    assert_true(sup == unset);
    chain(specs, kids, TR_SUP_DEPTH_MAX);
    assert_int_equal(tr_rt_sup_spawn(rt, &specs[0], &o, &sup), 0);
    assert_int_equal(tr_rt_sup_which_children(rt, sup, NULL, 0), 1);

    /* The add-child calls check the same: a cycle, and a chain as deep as
     * the limit below the supervisor it is added to. */
    tr_pid top;
    tr_child_spec wk;
    tr_sup_spec ws = one_worker_spec(&wk);
    assert_int_equal(tr_rt_sup_spawn(rt, &ws, &o, &top), 0);
    assert_int_equal(tr_rt_sup_add_child(rt, top, &self_kid, NULL), TR_EINVAL);
    assert_int_equal(tr_rt_sup_add_child(rt, top, &akids[1], NULL), TR_EINVAL);
    chain(specs, kids, TR_SUP_DEPTH_MAX);
    tr_child_spec deep = {.id = "deep", .supervisor = &specs[0]};
    assert_int_equal(tr_rt_sup_add_child(rt, top, &deep, NULL), TR_EINVAL);
    chain(specs, kids, TR_SUP_DEPTH_MAX - 1);
    assert_int_equal(tr_rt_sup_add_child(rt, top, &deep, NULL), 0);
    assert_int_equal(tr_rt_sup_which_children(rt, top, NULL, 0), 2);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* A small spec whose copy is astronomically large: 16 levels of 32
 * children that all name the next level (32^16 copies of the leaf). It
 * is refused at once, without walking (or copying) it all. */
static void test_exponential_spec(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(1);
    enum { LEVELS = 16, WIDTH = 32 };
    static tr_sup_spec specs[LEVELS];
    static tr_child_spec kids[LEVELS][WIDTH];
    for (int i = 0; i < LEVELS; i++) {
        for (int j = 0; j < WIDTH; j++) {
            tr_child_spec_init(&kids[i][j]);
            kids[i][j].id = "k";
            if (i + 1 < LEVELS)
                kids[i][j].supervisor = &specs[i + 1];
            else
                kids[i][j].behavior = &worker_b;
        }
        tr_sup_spec_init(&specs[i]);
        specs[i].children = kids[i];
        specs[i].nchildren = WIDTH;
    }
    tr_spawn_opts o = independent();
    tr_pid sup = (tr_pid)0x5eed;
    assert_int_equal(tr_rt_sup_spawn(rt, &specs[0], &o, &sup), TR_EMSGSIZE);
    assert_true(sup == (tr_pid)0x5eed);
    /* A start argument larger than max_payload, likewise, up front. */
    static char big[(1 << 20) + 1];
    tr_child_spec kid;
    tr_sup_spec s = one_worker_spec(&kid);
    kid.arg = big;
    kid.arg_len = sizeof big;
    assert_int_equal(tr_rt_sup_spawn(rt, &s, &o, &sup), TR_EMSGSIZE);
    kid.arg_len = SIZE_MAX; /* would wrap the sum */
    assert_int_equal(tr_rt_sup_spawn(rt, &s, &o, &sup), TR_EMSGSIZE);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* A raw TR_MSG_SUP_ADD carries a behaviour pointer: only the API may send
 * it. (Already refused since reserved message types were made internal:
 * this proves it, from threads and actors, with a payload shaped like a
 * child spec whose behaviour pointer is garbage.) */
static unsigned char garbage_add[256];
static _Atomic int raw_add_checked;

static int raw_adder_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type != GO)
        return 0;
    tr_pid sup;
    TR_CHECK_COPY(&sup, msg->data, msg->len);
    tr_ref ref;
    TR_CHECK_EQ(tr_call(self, sup, TR_MSG_SUP_ADD, garbage_add, sizeof garbage_add, 1000, &ref),
                TR_EINVAL);
    TR_CHECK_EQ(tr_send(self, sup, TR_MSG_SUP_ADD, garbage_add, sizeof garbage_add), TR_EINVAL);
    TR_CHECK_EQ(tr_send_after(self, sup, 0, TR_MSG_SUP_ADD, garbage_add, sizeof garbage_add,
                              NULL),
                TR_EINVAL);
    /* The API's own call checks the spec: no behaviour, or one without
     * receive, is refused before anything is sent. */
    tr_child_spec c = {.id = "x"};
    TR_CHECK_EQ(tr_sup_add_child(self, sup, &c, 1000, &ref), TR_EINVAL);
    static const tr_behavior no_receive = {.name = "none"};
    c.behavior = &no_receive;
    TR_CHECK_EQ(tr_sup_add_child(self, sup, &c, 1000, &ref), TR_EINVAL);
    atomic_store(&raw_add_checked, 1);
    return 0;
}

static const tr_behavior raw_adder_b = {.name = "raw adder", .receive = raw_adder_receive};

static void test_raw_add_refused(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    uintptr_t bogus = (uintptr_t)0xdeadbeefu;
    for (size_t i = 0; i + sizeof bogus <= sizeof garbage_add; i += sizeof bogus)
        memcpy(garbage_add + i, &bogus, sizeof bogus);
    tr_child_spec kid;
    tr_sup_spec s = one_worker_spec(&kid);
    tr_spawn_opts o = independent();
    tr_pid sup;
    assert_int_equal(tr_rt_sup_spawn(rt, &s, &o, &sup), 0);

    assert_int_equal(tr_test_call_rc(rt, sup, TR_MSG_SUP_ADD, garbage_add, sizeof garbage_add,
                                     TR_TEST_CALL_MS),
                     TR_EINVAL);
    assert_int_equal(tr_rt_send(rt, sup, TR_MSG_SUP_ADD, garbage_add, sizeof garbage_add),
                     TR_EINVAL);
    tr_child_spec c = {.id = "x"};
    assert_int_equal(tr_rt_sup_add_child(rt, sup, &c, NULL), TR_EINVAL);

    tr_pid adder = tr_test_spawn(rt, &raw_adder_b, TR_LOOP(1), NULL, 0);
    assert_int_equal(tr_rt_send(rt, adder, GO, &sup, sizeof sup), 0);
    TR_WAIT_UNTIL(atomic_load(&raw_add_checked));

    /* The supervisor is unharmed and still takes a real child. */
    assert_int_equal(tr_rt_sup_which_children(rt, sup, NULL, 0), 1);
    c.behavior = &worker_b;
    tr_pid added = TR_PID_NONE;
    assert_int_equal(tr_rt_sup_add_child(rt, sup, &c, &added), 0);
    assert_true(added != TR_PID_NONE);
    assert_int_equal(tr_rt_sup_which_children(rt, sup, NULL, 0), 2);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- finding 11: tr_rt_sup_spawn on a loop thread ----------------------------------- */

static _Atomic int loop_spawn_rc;
static _Atomic tr_pid loop_spawn_out;

static int loop_spawner_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type != GO || !(msg->flags & TR_MSG_REQUEST))
        return 0;
    tr_child_spec kid;
    tr_sup_spec s = one_worker_spec(&kid);
    tr_pid out = (tr_pid)0x5eed;
    atomic_store(&loop_spawn_rc, tr_rt_sup_spawn(tr_runtime_of(self), &s, NULL, &out));
    atomic_store(&loop_spawn_out, out);
    return tr_reply(self, msg, GO, NULL, 0);
}

static const tr_behavior loop_spawner_b = {.name = "loop spawner",
                                           .receive = loop_spawner_receive};

static void test_rt_sup_spawn_on_loop_thread(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(1);
    atomic_store(&worker_starts, 0);
    tr_pid p = tr_test_spawn(rt, &loop_spawner_b, TR_LOOP_DEFAULT, NULL, 0);
    tr_test_ask(rt, p, GO, NULL, 0, NULL, 0);
    assert_int_equal(atomic_load(&loop_spawn_rc), TR_EWRONGTHREAD);
    assert_true(atomic_load(&loop_spawn_out) == (tr_pid)0x5eed); /* not written */
    /* Nothing was started: after the whole tree has stopped, no worker
     * (the supervisor's child) has ever run, and the runtime stopped for
     * our stop, not for a permanent supervisor's end. */
    assert_int_equal(tr_runtime_stop(rt), 0);
    assert_int_equal(tr_runtime_wait(rt), 0);
    assert_int_equal(atomic_load(&worker_starts), 0);
    tr_down why;
    assert_int_equal(tr_runtime_exit_reason(rt, &why), TR_ENOTFOUND);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- finding 13: a completed group is closed ---------------------------------------- */

static _Atomic int groups_checked;

static int quick_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return tr_exit(self, TR_EXIT_NORMAL);
}

static const tr_behavior quick_b = {.name = "quick", .init = quick_init,
                                    .receive = tr_test_ignore};

static int noop_job(tr_job *job, const void *arg, size_t len)
{
    (void)job;
    (void)arg;
    (void)len;
    return 0;
}

/* What every call says about a group that has completed. */
static void check_completed(tr_actor *self, tr_group_id g)
{
    TR_CHECK_EQ(tr_group_close(self, g), TR_EALREADY);
    TR_CHECK_EQ(tr_group_cancel(self, g), TR_EALREADY);
    tr_pid pid = (tr_pid)0x5eed;
    TR_CHECK_EQ(tr_group_spawn(self, g, &quick_b, NULL, &pid), TR_ESTOPPED);
    TR_CHECK(pid == (tr_pid)0x5eed);
    TR_CHECK_EQ(tr_group_offload(self, g, noop_job, NULL, 0), TR_ESTOPPED);
}

typedef struct grouper {
    tr_group_id empty, one;
    int done;
} grouper;

static int grouper_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    grouper *st = state;
    /* An empty group completes when it is closed. */
    TR_CHECK_EQ(tr_group_open(self, NULL, &st->empty), 0);
    TR_CHECK_EQ(tr_group_close(self, st->empty), 0);
    check_completed(self, st->empty);
    /* Ids never given out are unknown. */
    for (tr_group_id bad = st->empty + 1; bad < st->empty + 4; bad++) {
        TR_CHECK_EQ(tr_group_close(self, bad), TR_ENOTFOUND);
        TR_CHECK_EQ(tr_group_cancel(self, bad), TR_ENOTFOUND);
        TR_CHECK_EQ(tr_group_spawn(self, bad, &quick_b, NULL, NULL), TR_ENOTFOUND);
    }
    TR_CHECK_EQ(tr_group_close(self, 0), TR_ENOTFOUND);
    /* A group with a child completes later, in a message. */
    TR_CHECK_EQ(tr_group_open(self, NULL, &st->one), 0);
    TR_CHECK_EQ(tr_group_spawn(self, st->one, &quick_b, NULL, NULL), 0);
    TR_CHECK_EQ(tr_group_close(self, st->one), 0);
    TR_CHECK_EQ(tr_group_close(self, st->one), TR_EALREADY); /* closed, running */
    TR_CHECK_EQ(tr_group_spawn(self, st->one, &quick_b, NULL, NULL), TR_ESTOPPED);
    return 0;
}

static int grouper_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    grouper *st = state;
    if (msg->type != TR_MSG_GROUP_DONE)
        return 0;
    const tr_group_done *d = msg->data;
    TR_CHECK_EQ(d->code, 0);
    check_completed(self, msg->ref);
    if (msg->ref == st->one) {
        TR_CHECK_EQ(d->n, 1);
        /* The empty one's completion came first (it completed first). */
        TR_CHECK_EQ(st->done, 1);
    } else {
        TR_CHECK(msg->ref == st->empty);
        TR_CHECK_EQ(d->n, 0);
    }
    if (++st->done == 2)
        atomic_store(&groups_checked, 1);
    return 0;
}

static const tr_behavior grouper_b = {.name = "grouper", .state_size = sizeof(grouper),
                                      .init = grouper_init, .receive = grouper_receive};

static void test_completed_group_is_closed(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(1);
    tr_test_spawn(rt, &grouper_b, TR_LOOP_DEFAULT, NULL, 0);
    TR_WAIT_UNTIL(atomic_load(&groups_checked));
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- supervisor requests to an actor that is not a supervisor ---------------------- */

static _Atomic int asker_which_rc, asker_add_rc, asker_replies;

static int asker_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == GO) {
        tr_pid mute;
        TR_CHECK_COPY(&mute, msg->data, msg->len);
        tr_ref ref;
        TR_CHECK_EQ(tr_call(self, mute, TR_MSG_SUP_WHICH, NULL, 0, TR_TEST_CALL_MS, &ref), 0);
        tr_child_spec c = {.id = "x", .behavior = &worker_b};
        TR_CHECK_EQ(tr_sup_add_child(self, mute, &c, TR_TEST_CALL_MS, &ref), 0);
        return 0;
    }
    if (msg->type == TR_MSG_SUP_WHICH && (msg->flags & TR_MSG_REPLY)) {
        int32_t rc;
        TR_CHECK_COPY(&rc, msg->data, msg->len); /* an int32_t: the refusal */
        atomic_store(&asker_which_rc, rc);
        atomic_fetch_add(&asker_replies, 1);
    }
    if (msg->type == TR_MSG_SUP_ADD && (msg->flags & TR_MSG_REPLY)) {
        tr_sup_started st;
        TR_CHECK_COPY(&st, msg->data, msg->len);
        TR_CHECK(st.pid == TR_PID_NONE);
        atomic_store(&asker_add_rc, st.rc);
        atomic_fetch_add(&asker_replies, 1);
    }
    TR_CHECK(msg->type != TR_MSG_CALL_TIMEOUT && msg->type != TR_MSG_CALL_FAILED);
    return 0;
}

static const tr_behavior asker_b = {.name = "asker", .receive = asker_receive};

static void test_sup_request_to_non_supervisor(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    atomic_store(&worker_starts, 0);
    tr_pid mute = tr_test_spawn(rt, &mute_b, TR_LOOP(0), NULL, 0);

    /* A call with a limit first: without the refusal it times out. */
    tr_rt_reply r;
    assert_int_equal(
        tr_rt_call(rt, mute, TR_MSG_SUP_WHICH, NULL, 0, TR_TEST_CALL_MS, &r), 0);
    assert_int_equal(r.type, TR_MSG_SUP_WHICH);
    assert_int_equal(r.len, sizeof(int32_t));
    int32_t rc;
    memcpy(&rc, r.data, sizeof rc);
    assert_int_equal(rc, TR_EINVAL);
    tr_rt_reply_free(&r);

    /* Every helper (each waits without a limit). */
    tr_sup_child kids[2];
    assert_int_equal(tr_rt_sup_which_children(rt, mute, kids, 2), TR_EINVAL);
    tr_pid out = (tr_pid)0x5eed;
    assert_int_equal(tr_rt_sup_start_child(rt, mute, "a", 1, &out), TR_EINVAL);
    tr_child_spec c = {.id = "x", .behavior = &worker_b};
    assert_int_equal(tr_rt_sup_add_child(rt, mute, &c, &out), TR_EINVAL);
    assert_int_equal(tr_rt_sup_restart_child(rt, mute, "x", &out), TR_EINVAL);
    assert_true(out == (tr_pid)0x5eed);
    assert_int_equal(tr_rt_sup_stop_child(rt, mute, mute), TR_EINVAL);
    assert_int_equal(tr_rt_sup_delete_child(rt, mute, "x"), TR_EINVAL);
    assert_int_equal(atomic_load(&worker_starts), 0);

    /* From an actor on another loop: replies, never a timeout. */
    atomic_store(&asker_replies, 0);
    tr_pid asker = tr_test_spawn(rt, &asker_b, TR_LOOP(1), NULL, 0);
    assert_int_equal(tr_rt_send(rt, asker, GO, &mute, sizeof mute), 0);
    TR_WAIT_UNTIL(atomic_load(&asker_replies) == 2);
    assert_int_equal(atomic_load(&asker_which_rc), TR_EINVAL);
    assert_int_equal(atomic_load(&asker_add_rc), TR_EINVAL);

    /* The refusal did not end the actor; and a real supervisor still
     * keeps its requests (a WHICH is answered, with its children). */
    assert_int_equal(tr_rt_send(rt, mute, PING, NULL, 0), 0);
    tr_child_spec kid;
    tr_sup_spec s = one_worker_spec(&kid);
    tr_spawn_opts o = independent();
    tr_pid sup;
    atomic_store(&worker_starts, 0);
    assert_int_equal(tr_rt_sup_spawn(rt, &s, &o, &sup), 0);
    assert_int_equal(tr_rt_sup_which_children(rt, sup, kids, 2), 1);
    assert_int_equal(tr_runtime_free(rt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_init_never_receives),
        cmocka_unit_test(test_sup_failed_start_with_signal_queued),
        cmocka_unit_test(test_max_restarts_bounded),
        cmocka_unit_test(test_self_containing_spec),
        cmocka_unit_test(test_exponential_spec),
        cmocka_unit_test(test_raw_add_refused),
        cmocka_unit_test(test_rt_sup_spawn_on_loop_thread),
        cmocka_unit_test(test_completed_group_is_closed),
        cmocka_unit_test(test_sup_request_to_non_supervisor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
