/*
 * test_oom.c — out of memory at every place it can happen: no wait is left
 * without an end (the hardening issue's finding 7, and the contract in
 * include/troupe.h: "nothing blocks forever on an answer that a failure
 * can lose").
 *
 * Failures are injected with the runtime's one allocation facility
 * (channels/alloc.h): a plan that fails the nth allocation from now,
 * optionally only on one thread (a loop tags itself; the test thread may
 * too). Every run whose end is in question runs on a helper thread that
 * the test waits for with a bound (run_bounded), so a hang fails the test
 * at the run that hung instead of hanging the suite.
 *
 *  - the four hangs of finding 7: tr_rt_call whose reply copy fails,
 *    tr_runtime_tree whose describe record fails, tr_rt_sup_spawn whose
 *    start notice fails, tr_runtime_stop whose stop signal fails — each
 *    swept over every allocation the call makes;
 *  - a DOWN that cannot be allocated: every monitor gets exactly one;
 *  - a CHILD_EXIT that cannot be allocated: every parent hears of its
 *    child's end;
 *  - links: the exit signal of a linked actor's end, the answer for a
 *    target already dead (noproc) and an unlink are never lost, and
 *    tr_link makes a link whole or not at all;
 *  - the sweep: a supervisor start / restart / shutdown scenario, from
 *    tr_runtime_create to tr_runtime_free, with allocation 1, 2, 3, ...
 *    failed until a run completes with no failure injected. Every run
 *    must end, without a crash, and (under ASan) without a leak.
 *
 * `test_oom NAME` runs only the tests whose name matches NAME.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "tr_test.h"

/* Internal: the injection plan. */
#include "alloc.h"

/* Seconds a run may take before it counts as hung: wide (ASan, a loaded
 * machine), and far below "forever". */
#define RUN_BOUND_S 20

/* The tag the test thread runs with when a plan is for it alone. */
#define TEST_TAG 1000

enum { PING = 1, CRASH = 2 };

/* ---- a run with a bound ---------------------------------------------------------- */

typedef struct bounded {
    void (*fn)(void *);
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} bounded;

static void *bounded_main(void *p)
{
    bounded *b = p;
    b->fn(b->arg);
    pthread_mutex_lock(&b->mu);
    b->done = 1;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* Runs fn(arg) on a thread of its own; true if it returned within `secs`.
 * A run that hangs is left behind (its thread detached, its record kept):
 * the test fails. */
static bool run_bounded(void (*fn)(void *), void *arg, int secs)
{
    bounded *b = calloc(1, sizeof *b);
    assert_non_null(b);
    b->fn = fn;
    b->arg = arg;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, bounded_main, b), 0);
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += secs;
    pthread_mutex_lock(&b->mu);
    while (!b->done && pthread_cond_timedwait(&b->cv, &b->mu, &end) == 0)
        ;
    bool done = b->done;
    pthread_mutex_unlock(&b->mu);
    if (!done) {
        pthread_detach(t);
        return false;
    }
    pthread_join(t, NULL);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    free(b);
    return true;
}

/* Fails the nth allocation from now (of threads with `tag`, 0: all). */
static void arm_nth(uint64_t n, int tag)
{
    tr__alloc_plan p = {.mode = TR__ALLOC_NTH, .n = n, .tag = tag};
    tr__alloc_arm(&p);
}

/* Disarms; true if the plan failed an allocation. */
static bool disarm_fired(void)
{
    tr__alloc_disarm();
    return tr__alloc_counts_get().failed != 0;
}

/* ---- actors ------------------------------------------------------------------------ */

typedef struct kid_state {
    char pad[96]; /* a state of its own: one more allocation per start */
} kid_state;

static int kid_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == CRASH)
        return TR_EUSER(1);
    if (msg->type == PING && (msg->flags & TR_MSG_REQUEST)) {
        char answer[24] = "pong: a reply to copy";
        return tr_reply(self, msg, PING, answer, sizeof answer);
    }
    return 0;
}

static const tr_behavior kid = {.name = "kid", .state_size = sizeof(kid_state),
                                .receive = kid_receive};

static tr_runtime *quiet_runtime(unsigned loops)
{
    tr_runtime_options o = tr_test_options(loops, TR_TEST_QUIET);
    o.workers = 1;
    return tr_test_runtime_opts(&o);
}

/* Stops and frees `rt` within the bound; fails the test if it hangs. */
typedef struct teardown_ctx {
    tr_runtime *rt;
    int stop_rc, wait_rc, free_rc;
} teardown_ctx;

static void teardown_run(void *p)
{
    teardown_ctx *c = p;
    c->stop_rc = tr_runtime_stop(c->rt);
    if (c->stop_rc == TR_ENOMEM)
        c->stop_rc = tr_runtime_stop(c->rt);
    c->wait_rc = tr_runtime_wait(c->rt);
    c->free_rc = tr_runtime_free(c->rt);
}

static void teardown_bounded(tr_runtime *rt, const char *what, uint64_t site)
{
    teardown_ctx c = {.rt = rt};
    if (!run_bounded(teardown_run, &c, RUN_BOUND_S))
        fail_msg("%s, allocation %llu failed: stopping the runtime hung", what,
                 (unsigned long long)site);
    assert_int_equal(c.free_rc, 0);
}

/* ---- finding 7: tr_rt_call whose reply copy fails --------------------------------- */

typedef struct call_ctx {
    tr_runtime *rt;
    tr_pid to;
    int rc;
} call_ctx;

static void call_run(void *p)
{
    call_ctx *c = p;
    tr_rt_reply r;
    c->rc = tr_rt_call(c->rt, c->to, PING, NULL, 0, TR_INFINITE, &r);
    if (c->rc == 0)
        tr_rt_reply_free(&r);
}

/*
 * The call waits without a limit; each of the allocations the callee's
 * loop makes for it fails in turn — the first is the reply's copy for the
 * waiting thread. Each call must end: answered, or TR_ENOMEM.
 */
static void test_call_reply_copy_fails(void **st)
{
    (void)st;
    tr_runtime *rt = quiet_runtime(1);
    tr_pid pid = tr_test_spawn(rt, &kid, TR_LOOP(0), NULL, 0);
    tr_test_ask(rt, pid, PING, NULL, 0, NULL, 24); /* warm: the pools have blocks */
    int nomem = 0;
    uint64_t k = 1;
    for (;; k++) {
        call_ctx c = {.rt = rt, .to = pid};
        arm_nth(k, TR__ALLOC_TAG_LOOP(0));
        bool ended = run_bounded(call_run, &c, RUN_BOUND_S);
        bool fired = disarm_fired();
        if (!ended)
            fail_msg("tr_rt_call hung: the loop's allocation %llu failed",
                     (unsigned long long)k);
        if (!fired) {
            assert_int_equal(c.rc, 0);
            break;
        }
        assert_true(c.rc == 0 || c.rc == TR_ENOMEM);
        nomem += c.rc == TR_ENOMEM;
    }
    assert_true(nomem > 0); /* the reply's copy was among them */
    print_message("tr_rt_call: %llu allocation(s) of the callee's loop failed in turn\n",
                  (unsigned long long)(k - 1));
    tr_test_ask(rt, pid, PING, NULL, 0, NULL, 24); /* still answers */
    teardown_bounded(rt, "tr_rt_call", k);
}

/* ---- finding 7: tr_runtime_tree whose describe record fails ------------------------ */

typedef struct tree_ctx {
    tr_runtime *rt;
    int rc;
    int seen;
} tree_ctx;

static int count_one(const tr_actor_info *i, void *ud)
{
    (void)i;
    ((tree_ctx *)ud)->seen++;
    return 0;
}

static void tree_run(void *p)
{
    tree_ctx *c = p;
    c->rc = tr_runtime_tree(c->rt, count_one, c);
}

/* Every allocation of the walk fails in turn, on every thread: the walk's
 * own, the waiters', each actor's describe record and its reply's copy. */
static void test_tree_describe_fails(void **st)
{
    (void)st;
    tr_runtime *rt = quiet_runtime(2);
    for (int i = 0; i < 4; i++)
        tr_test_spawn(rt, &kid, TR_LOOP(i % 2), NULL, 0);
    tree_ctx warm = {.rt = rt};
    /* Adoptions travel as mail: the root lists all four in a moment. */
    TR_WAIT_UNTIL((warm.seen = 0, tree_run(&warm), warm.rc == 0 && warm.seen == 4));
    uint64_t k = 1;
    int nomem = 0;
    for (;; k++) {
        tree_ctx c = {.rt = rt};
        arm_nth(k, 0);
        bool ended = run_bounded(tree_run, &c, RUN_BOUND_S);
        bool fired = disarm_fired();
        if (!ended)
            fail_msg("tr_runtime_tree hung: allocation %llu failed", (unsigned long long)k);
        if (!fired) {
            assert_int_equal(c.rc, 0);
            assert_int_equal(c.seen, 4);
            break;
        }
        assert_true(c.rc == 0 || c.rc == TR_ENOMEM);
        nomem += c.rc == TR_ENOMEM;
    }
    assert_true(nomem > 0);
    print_message("tr_runtime_tree: %llu allocation(s) failed in turn\n",
                  (unsigned long long)(k - 1));
    teardown_bounded(rt, "tr_runtime_tree", k);
}

/* ---- finding 7: tr_rt_sup_spawn whose start notice fails --------------------------- */

static const tr_child_spec sup_kids[] = {
    {.id = "a", .behavior = &kid},
    {.id = "b", .behavior = &kid, .arg = "an argument", .arg_len = 12},
    {.id = "c", .behavior = &kid, .loop = TR_LOOP(1)},
};

typedef struct sup_ctx {
    tr_runtime *rt;
    tr_pid pid;
    int rc;
} sup_ctx;

static void sup_spawn_run(void *p)
{
    sup_ctx *c = p;
    tr_sup_spec spec;
    tr_sup_spec_init(&spec);
    spec.children = sup_kids;
    spec.nchildren = 3;
    c->rc = tr_rt_sup_spawn(c->rt, &spec, NULL, &c->pid);
}

/* Every allocation of a supervisor's start fails in turn — its spawn, its
 * state, each child's INIT, state and start notice (TR_MSG_STARTED), the
 * answer to the wait — each on a runtime of its own (a supervisor that
 * fails its start stops the runtime). */
static void test_sup_spawn_notice_fails(void **st)
{
    (void)st;
    uint64_t k = 1;
    for (;; k++) {
        tr_runtime *rt = quiet_runtime(2);
        sup_ctx c = {.rt = rt};
        arm_nth(k, 0);
        bool ended = run_bounded(sup_spawn_run, &c, RUN_BOUND_S);
        bool fired = disarm_fired();
        if (!ended)
            fail_msg("tr_rt_sup_spawn hung: allocation %llu failed", (unsigned long long)k);
        assert_true(c.rc == 0 || c.rc == TR_ENOMEM || c.rc == TR_EFAILED);
        teardown_bounded(rt, "tr_rt_sup_spawn", k);
        if (!fired) {
            assert_int_equal(c.rc, 0);
            break;
        }
    }
    print_message("tr_rt_sup_spawn: %llu allocation(s) failed in turn\n",
                  (unsigned long long)(k - 1));
}

/* ---- finding 7: tr_runtime_stop whose stop signal fails ---------------------------- */

/*
 * The stop's own allocations fail (on the test's thread alone): the stop
 * either needs none (its signal was made with the runtime) or says
 * TR_ENOMEM and leaves the runtime stoppable by a second call. Before the
 * fix it returned 0, a second stop said TR_EALREADY, and wait and free
 * blocked forever.
 */
static void test_stop_signal_fails(void **st)
{
    (void)st;
    tr_runtime *rt = quiet_runtime(2);
    tr_test_spawn(rt, &kid, TR_LOOP(1), NULL, 0);
    tr__alloc_set_thread_tag(TEST_TAG);
    arm_nth(1, TEST_TAG);
    int rc = tr_runtime_stop(rt);
    bool fired = disarm_fired();
    tr__alloc_set_thread_tag(0);
    if (rc == TR_ENOMEM) {
        assert_true(fired);
        rc = tr_runtime_stop(rt);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(tr_runtime_stop(rt), TR_EALREADY);
    teardown_bounded(rt, "tr_runtime_stop", 1);
}

/* ---- a DOWN that cannot be allocated ------------------------------------------------ */

enum { WATCH = 3 };

static atomic_int downs; /* DOWNs the watcher received */

static int watcher_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == WATCH && (msg->flags & TR_MSG_REQUEST)) {
        tr_pid target;
        TR_CHECK_EQ(msg->len, sizeof target);
        memcpy(&target, msg->data, sizeof target);
        tr_ref ref;
        int32_t rc = tr_monitor(self, target, &ref);
        return tr_reply(self, msg, WATCH, &rc, sizeof rc);
    }
    if (msg->type == TR_MSG_DOWN)
        atomic_fetch_add(&downs, 1);
    return 0;
}

static const tr_behavior watcher = {.name = "watcher", .receive = watcher_receive};

/*
 * A monitor always gets exactly one DOWN: each allocation of the target's
 * loop while it crashes and ends fails in turn (one of them was the DOWN:
 * before the fix it was lost, and the watcher never learned of the end).
 */
static void test_down_not_lost(void **st)
{
    (void)st;
    tr_runtime *rt = quiet_runtime(2);
    tr_pid w = tr_test_spawn(rt, &watcher, TR_LOOP(0), NULL, 0);
    uint64_t k = 1;
    for (;; k++) {
        tr_pid target = tr_test_spawn(rt, &kid, TR_LOOP(1), NULL, 0);
        int32_t rc = -1;
        tr_test_ask(rt, w, WATCH, &target, sizeof target, &rc, sizeof rc);
        assert_int_equal(rc, 0);
        atomic_store(&downs, 0);
        arm_nth(k, TR__ALLOC_TAG_LOOP(1));
        assert_int_equal(tr_rt_send(rt, target, CRASH, NULL, 0), 0);
        uint64_t end = tr_test_wall_ns() + (uint64_t)RUN_BOUND_S * 1000000000u;
        while (atomic_load(&downs) == 0 && tr_test_wall_ns() < end)
            sched_yield();
        bool fired = disarm_fired();
        if (atomic_load(&downs) != 1)
            fail_msg("allocation %llu of the target's loop failed: %d DOWN(s), want 1",
                     (unsigned long long)k, atomic_load(&downs));
        if (!fired)
            break;
    }
    print_message("DOWN: %llu allocation(s) of the ending target's loop failed in turn\n",
                  (unsigned long long)(k - 1));
    teardown_bounded(rt, "DOWN", k);
}

/* ---- a CHILD_EXIT that cannot be allocated ------------------------------------------ */

enum { SPAWN_KID = 4 };

/* Spawns a kid on loop 1 when asked, and answers with its pid. */
static int parent_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == SPAWN_KID && (msg->flags & TR_MSG_REQUEST)) {
        tr_spawn_opts o;
        tr_spawn_opts_init(&o);
        o.loop = TR_LOOP(1);
        tr_pid kid_pid = TR_PID_NONE;
        TR_CHECK_EQ(tr_spawn(self, &kid, &o, &kid_pid), 0);
        return tr_reply(self, msg, SPAWN_KID, &kid_pid, sizeof kid_pid);
    }
    return 0;
}

static const tr_behavior parent_b = {.name = "parent", .receive = parent_receive};

typedef struct kids_of {
    tr_pid pid;
    int n; /* its nchildren, -1 if not seen */
} kids_of;

static int find_kids(const tr_actor_info *i, void *ud)
{
    kids_of *k = ud;
    if (i->pid == k->pid)
        k->n = (int)i->nchildren;
    return 0;
}

static int kids_now(tr_runtime *rt, tr_pid parent)
{
    kids_of k = {.pid = parent, .n = -1};
    return tr_runtime_tree(rt, find_kids, &k) == 0 ? k.n : -1;
}

/*
 * A parent always hears of its child's end: each allocation of the child's
 * loop while it crashes and ends fails in turn (one of them is the
 * CHILD_EXIT: the dead slot then owes it, and sends it when memory is
 * back). The parent's list of children empties every time, and the
 * runtime stops in order afterwards.
 */
static void test_child_exit_not_lost(void **st)
{
    (void)st;
    tr_runtime *rt = quiet_runtime(2);
    tr_pid p = tr_test_spawn(rt, &parent_b, TR_LOOP(0), NULL, 0);
    uint64_t k = 1;
    for (;; k++) {
        tr_pid c = TR_PID_NONE;
        tr_test_ask(rt, p, SPAWN_KID, NULL, 0, &c, sizeof c);
        assert_int_equal(kids_now(rt, p), 1);
        arm_nth(k, TR__ALLOC_TAG_LOOP(1));
        assert_int_equal(tr_rt_send(rt, c, CRASH, NULL, 0), 0);
        TR_WAIT_GONE(rt, c, PING);
        /* Memory is back: an owed notice goes out within its retry. */
        bool fired = disarm_fired();
        TR_WAIT_UNTIL(kids_now(rt, p) == 0);
        if (!fired)
            break;
    }
    print_message("CHILD_EXIT: %llu allocation(s) of the ending child's loop failed in turn\n",
                  (unsigned long long)(k - 1));
    teardown_bounded(rt, "CHILD_EXIT", k);
}

/* ---- a link's exit signal that cannot be allocated ---------------------------------- */

enum { TRAP = 5, LINK_TO, UNLINK_FROM, NOTE };

/* What the linkers did and saw: written on their loops, read by the test. */
static atomic_int link_rc;      /* the last LINK_TO / UNLINK_FROM sent without a reply */
static atomic_int link_done;    /* ...has run */
static atomic_int noted;        /* a NOTE was handled: its signal queue was read first */
static _Atomic tr_pid exits_of; /* whose exit signals are counted */
static atomic_int exits;        /* exit signals from it (a trapping actor's TR_MSG_EXIT) */
static atomic_int exit_code;    /* the last one's code */

/* The pause (see __wrap_tr__alloc_inject below): while `pause_on` is set,
 * the first allocation a linker's LINK_TO (sent, not asked) makes in
 * tr_link waits until `pause_over` is set. */
static _Atomic int pause_on, paused, pause_over;
static _Thread_local bool in_link; /* this thread is in such a tr_link */

/* An actor that links, unlinks, traps exits and counts the exit signals
 * of one pid. LINK_TO and UNLINK_FROM carry the other pid; asked, they
 * answer tr_link's or tr_unlink's code, else leave it in link_rc.
 * LINK_TO as a plain send pauses at tr_link's first allocation when the
 * test asks for it (pause_on). */
static int linker_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    tr_pid pid = TR_PID_NONE;
    if (msg->len == sizeof pid && msg->type <= TR_MSG_USER_MAX)
        memcpy(&pid, msg->data, sizeof pid);
    switch (msg->type) {
    case TRAP: {
        int32_t rc = tr_trap_exits(self, 1);
        return tr_reply(self, msg, TRAP, &rc, sizeof rc);
    }
    case LINK_TO:
    case UNLINK_FROM: {
        bool asked = (msg->flags & TR_MSG_REQUEST) != 0;
        in_link = !asked && msg->type == LINK_TO;
        int32_t rc = msg->type == LINK_TO ? tr_link(self, pid) : tr_unlink(self, pid);
        in_link = false;
        if (asked)
            return tr_reply(self, msg, msg->type, &rc, sizeof rc);
        atomic_store(&link_rc, rc);
        atomic_store(&link_done, 1);
        return 0;
    }
    case NOTE:
        atomic_store(&noted, 1);
        return 0;
    case TR_MSG_EXIT: {
        tr_down d;
        TR_CHECK_COPY(&d, msg->data, msg->len);
        if (msg->from == atomic_load(&exits_of)) {
            atomic_store(&exit_code, d.code);
            atomic_fetch_add(&exits, 1);
        }
        return 0;
    }
    default:
        return kid_receive(self, state, msg); /* PING, CRASH */
    }
}

static const tr_behavior linker = {.name = "linker", .receive = linker_receive};

/*
 * A pause inside tr_link, between its lookup of the target and the LINK it
 * queues there: every allocation of the runtime asks tr__alloc_inject
 * (alloc.c, out of line) whether to fail while a plan is armed, and this
 * test is linked with --wrap=tr__alloc_inject (tests/CMakeLists.txt). The
 * first allocation tr_link makes is after its lookup (the linker has its
 * record and room for one more link already), so the target can end
 * meanwhile and the LINK reach its dead slot: the one way to that slot's
 * answer for the dead that does not depend on luck.
 */
bool __real_tr__alloc_inject(void);
bool __wrap_tr__alloc_inject(void);

bool __wrap_tr__alloc_inject(void)
{
    if (in_link && atomic_load(&pause_on) && atomic_exchange(&pause_on, 0)) {
        atomic_store(&paused, 1);
        uint64_t end = tr_test_wall_ns() + (uint64_t)RUN_BOUND_S * 1000000000u;
        while (!atomic_load(&pause_over) && tr_test_wall_ns() < end)
            sched_yield();
    }
    return __real_tr__alloc_inject();
}

/* Waits, within the bound, until *v reaches `want`. */
static bool wait_count(atomic_int *v, int want)
{
    uint64_t end = tr_test_wall_ns() + (uint64_t)RUN_BOUND_S * 1000000000u;
    while (atomic_load(v) < want && tr_test_wall_ns() < end)
        sched_yield();
    return atomic_load(v) >= want;
}

/* Returns once `pid` has handled every signal queued for it so far. */
static void sync_with(tr_runtime *rt, tr_pid pid)
{
    tr_test_ask(rt, pid, PING, NULL, 0, NULL, 24);
}

/* A linker on `loop`, started (its init's allocations are not the test's);
 * trapping exits if `trap`. */
static tr_pid linker_at(tr_runtime *rt, int loop, bool trap)
{
    tr_pid p = tr_test_spawn(rt, &linker, loop, NULL, 0);
    sync_with(rt, p);
    if (trap) {
        int32_t rc = -1;
        tr_test_ask(rt, p, TRAP, NULL, 0, &rc, sizeof rc);
        assert_int_equal(rc, 0);
    }
    return p;
}

/* Has `who` link to or unlink from `other` (a plain send: nothing of the
 * test's allocates on the linker's loop) and returns the code. */
static int link_op(tr_runtime *rt, tr_pid who, uint32_t op, tr_pid other)
{
    atomic_store(&link_done, 0);
    assert_int_equal(tr_rt_send(rt, who, op, &other, sizeof other), 0);
    if (!wait_count(&link_done, 1))
        fail_msg("tr_link / tr_unlink did not return");
    return atomic_load(&link_rc);
}

/* As link_op, asked: for set-ups, no failures armed. */
static int link_ask(tr_runtime *rt, tr_pid who, uint32_t op, tr_pid other)
{
    int32_t rc = -1;
    tr_test_ask(rt, who, op, &other, sizeof other, &rc, sizeof rc);
    return rc;
}

/* Returns once `pid` has read its signal queue (it does before every
 * message): whatever was queued there before this call has been handled. */
static void note(tr_runtime *rt, tr_pid pid)
{
    atomic_store(&noted, 0);
    assert_int_equal(tr_rt_send(rt, pid, NOTE, NULL, 0), 0);
    if (!wait_count(&noted, 1))
        fail_msg("NOTE was not handled");
}

/* Starts counting the exit signals of `pid`. */
static void count_exits_of(tr_pid pid)
{
    atomic_store(&exits_of, pid);
    atomic_store(&exits, 0);
    atomic_store(&exit_code, 0);
}

/* Ends `pid` (a linker) and waits until it is gone. */
static void crash(tr_runtime *rt, tr_pid pid)
{
    assert_int_equal(tr_rt_send(rt, pid, CRASH, NULL, 0), 0);
    TR_WAIT_GONE(rt, pid, PING);
}

/*
 * A linked actor always hears of the other end's exit: each allocation of
 * B's loop while it crashes and ends fails in turn (one of them was A's
 * exit signal — before the fix it was lost, and A, trapping exits, never
 * learned of B's end).
 */
static void test_link_exit_not_lost(void **st)
{
    (void)st;
    tr_runtime *rt = quiet_runtime(2);
    tr_pid a = linker_at(rt, TR_LOOP(0), true);
    uint64_t k = 1;
    for (;; k++) {
        tr_pid b = linker_at(rt, TR_LOOP(1), false);
        assert_int_equal(link_ask(rt, a, LINK_TO, b), 0);
        note(rt, b); /* b has its end of the link */
        count_exits_of(b);
        arm_nth(k, TR__ALLOC_TAG_LOOP(1));
        assert_int_equal(tr_rt_send(rt, b, CRASH, NULL, 0), 0);
        bool got = wait_count(&exits, 1);
        bool fired = disarm_fired();
        if (!got)
            fail_msg("allocation %llu of B's loop failed: A never received B's exit signal",
                     (unsigned long long)k);
        sync_with(rt, a);
        assert_int_equal(atomic_load(&exits), 1);
        assert_int_equal(atomic_load(&exit_code), TR_EUSER(1));
        if (!fired)
            break;
    }
    print_message("link exit: %llu allocation(s) of the ending end's loop failed in turn\n",
                  (unsigned long long)(k - 1));
    teardown_bounded(rt, "link exit", k);
}

/*
 * tr_link with each allocation failing in turn, on the linker's loop (its
 * record, the signals it makes in advance, the LINK) and then on the
 * target's (its record of the link): the link is made whole, or not at
 * all — tr_link says TR_ENOMEM, or the target, unable to record it, sends
 * its signal back at once (TR_ENOMEM, "no memory for a link"). Never half:
 * linking again afterwards makes a whole link, and B's end then reaches A
 * exactly once. (Before the fix a target that could not record the link
 * dropped it silently: A's second tr_link was a no-op and B's end was
 * never heard of.)
 */
static void test_link_fails_cleanly(void **st)
{
    (void)st;
    tr_runtime *rt = quiet_runtime(2);
    uint64_t swept = 0;
    int nomem = 0, bounced = 0;
    for (int side = 0; side < 2; side++) {
        uint64_t k = 1;
        for (;; k++) {
            tr_pid a = linker_at(rt, TR_LOOP(0), true);
            tr_pid b = linker_at(rt, TR_LOOP(1), false);
            count_exits_of(b);
            arm_nth(k, TR__ALLOC_TAG_LOOP(side));
            int rc = link_op(rt, a, LINK_TO, b);
            note(rt, b); /* b has handled the LINK, if one came */
            bool fired = disarm_fired();
            assert_true(rc == 0 || (rc == TR_ENOMEM && fired));
            sync_with(rt, a); /* a has handled b's answer, if one came */
            int back = atomic_load(&exits);
            assert_true(back <= 1);
            if (back) { /* b could not record the link */
                assert_true(fired && rc == 0);
                assert_int_equal(atomic_load(&exit_code), TR_ENOMEM);
            }
            if (rc == TR_ENOMEM)
                assert_int_equal(back, 0); /* nothing was sent */
            nomem += rc == TR_ENOMEM;
            bounced += back;
            /* Whole, or none: linking again makes it whole (a no-op if it
             * is), and b's end reaches a once. */
            assert_int_equal(link_ask(rt, a, LINK_TO, b), 0);
            note(rt, b);
            assert_int_equal(tr_rt_send(rt, b, CRASH, NULL, 0), 0);
            if (!wait_count(&exits, back + 1))
                fail_msg("allocation %llu of loop %d failed in tr_link: "
                         "B's end did not reach A",
                         (unsigned long long)k, side);
            sync_with(rt, a);
            assert_int_equal(atomic_load(&exits), back + 1);
            assert_int_equal(atomic_load(&exit_code), TR_EUSER(1));
            crash(rt, a);
            if (!fired)
                break;
        }
        swept += k - 1;
    }
    assert_true(nomem > 0);   /* the linker's side failed, */
    assert_true(bounced > 0); /* and the target's */
    print_message("tr_link: %llu allocation(s) failed in turn (TR_ENOMEM %d, sent back %d)\n",
                  (unsigned long long)swept, nomem, bounced);
    teardown_bounded(rt, "tr_link", swept);
}

/*
 * An unlink is never lost either: A (or B) unlinks with each allocation of
 * its loop failing in turn — and, when B unlinks, through B's end — and
 * B's end must then not reach A, and A must have no record of B left.
 * (Before the fix the UNLINK was allocated when it was sent: when that
 * failed, B kept the link and its end killed the A that had unlinked.)
 */
static void test_unlink_then_exit(void **st)
{
    (void)st;
    tr_runtime *rt = quiet_runtime(2);
    uint64_t swept = 0;
    for (int side = 0; side < 2; side++) {
        uint64_t k = 1;
        for (;; k++) {
            tr_pid a = linker_at(rt, TR_LOOP(0), true);
            tr_pid b = linker_at(rt, TR_LOOP(1), false);
            assert_int_equal(link_ask(rt, a, LINK_TO, b), 0);
            note(rt, b);
            count_exits_of(b);
            arm_nth(k, TR__ALLOC_TAG_LOOP(side));
            if (side == 0) {
                assert_int_equal(link_op(rt, a, UNLINK_FROM, b), 0);
                note(rt, b); /* b has handled the UNLINK */
            } else {
                assert_int_equal(link_op(rt, b, UNLINK_FROM, a), 0);
                note(rt, a);
            }
            crash(rt, b);
            bool fired = disarm_fired();
            sync_with(rt, a);
            if (atomic_load(&exits) != 0)
                fail_msg("allocation %llu of loop %d failed: B's end reached A after "
                         "the unlink",
                         (unsigned long long)k, side);
            /* No record of b left at a: linking to the dead b is refused. */
            assert_int_equal(link_ask(rt, a, LINK_TO, b), TR_ENOACTOR);
            crash(rt, a);
            if (!fired)
                break;
        }
        swept += k - 1;
    }
    print_message("tr_unlink: %llu allocation(s) failed in turn\n", (unsigned long long)swept);
    teardown_bounded(rt, "tr_unlink", swept);
}

/*
 * A LINK that reaches a dead slot is answered for the dead (noproc), and
 * that answer is never lost: tr_link pauses after finding B alive (see
 * __wrap_tr__alloc_inject) while B crashes and ends, so its LINK reaches
 * B's dead slot, whose loop answers with each of its allocations failing
 * in turn. A must receive exactly one exit signal, TR_ENOACTOR. (Before
 * the fix the answer was allocated then, and lost when that failed.)
 */
static void test_link_noproc_not_lost(void **st)
{
    (void)st;
    tr_runtime *rt = quiet_runtime(2);
    tr_pid a = linker_at(rt, TR_LOOP(0), true);
    /* A record of links with room: tr_link's first allocation is then
     * after its lookup of the target. */
    tr_pid other = linker_at(rt, TR_LOOP(0), false);
    assert_int_equal(link_ask(rt, a, LINK_TO, other), 0);
    uint64_t k = 1;
    for (;; k++) {
        tr_pid b = linker_at(rt, TR_LOOP(1), false);
        count_exits_of(b);
        atomic_store(&paused, 0);
        atomic_store(&pause_over, 0);
        atomic_store(&link_done, 0);
        atomic_store(&pause_on, 1);
        arm_nth(k, TR__ALLOC_TAG_LOOP(1));
        assert_int_equal(tr_rt_send(rt, a, LINK_TO, &b, sizeof b), 0);
        if (!wait_count(&paused, 1))
            fail_msg("tr_link did not pause");
        crash(rt, b); /* while a's tr_link waits */
        atomic_store(&pause_over, 1);
        if (!wait_count(&link_done, 1))
            fail_msg("tr_link did not return");
        bool got = wait_count(&exits, 1);
        bool fired = disarm_fired();
        assert_int_equal(atomic_load(&link_rc), 0); /* b was alive when it looked */
        if (!got)
            fail_msg("allocation %llu of the dead slot's loop failed: A never received "
                     "the noproc exit signal",
                     (unsigned long long)k);
        sync_with(rt, a);
        assert_int_equal(atomic_load(&exits), 1);
        assert_int_equal(atomic_load(&exit_code), TR_ENOACTOR);
        /* The noproc signal ended the link at a too. */
        assert_int_equal(link_ask(rt, a, LINK_TO, b), TR_ENOACTOR);
        if (!fired)
            break;
    }
    print_message("link noproc: %llu allocation(s) of the dead slot's loop failed in turn\n",
                  (unsigned long long)(k - 1));
    teardown_bounded(rt, "link noproc", k);
}

/* ---- the sweep: supervisor start / restart / shutdown ----------------------------- */

typedef struct scenario {
    const char *step; /* where it is, for a hang's report */
    bool restarted;   /* the crashed child came back */
    bool gave_up;     /* no restart: the runtime stopped instead */
    bool stuck;       /* neither, within the bound */
} scenario;

/* Child 1's pid (other than `old`), TR_PID_NONE if none now. */
static tr_pid child_pid(tr_runtime *rt, tr_pid sup, int i, int *rc)
{
    tr_sup_child c[4];
    int n = tr_rt_sup_which_children(rt, sup, c, 4);
    *rc = n < 0 ? n : 0;
    return n > i ? c[i].pid : TR_PID_NONE;
}

static void scenario_run(void *p)
{
    scenario *s = p;
    tr_runtime_options o = tr_test_options(2, TR_TEST_QUIET);
    o.workers = 1;
    tr_runtime *rt = NULL;
    s->step = "create";
    if (tr_runtime_create(&rt, &o) != 0)
        return;
    s->step = "start";
    if (tr_runtime_start(rt) != 0) {
        s->step = "free (not started)";
        tr_runtime_free(rt);
        return;
    }
    s->step = "tr_rt_sup_spawn";
    sup_ctx c = {.rt = rt};
    sup_spawn_run(&c);
    if (c.rc == 0) {
        /* Child 1 crashes; its restart must come, or the runtime must stop
         * (the supervisor could not restart it and ended, and was
         * permanent). A call that fails for want of memory is asked again. */
        s->step = "which_children";
        int rc = 0;
        tr_pid old = TR_PID_NONE;
        for (int tries = 0; tries < 3 && old == TR_PID_NONE; tries++)
            old = child_pid(rt, c.pid, 1, &rc);
        s->step = "crash";
        if (old != TR_PID_NONE && tr_rt_send(rt, old, CRASH, NULL, 0) == 0) {
            s->step = "waiting for the restart";
            uint64_t end = tr_test_wall_ns() + 10ull * 1000000000u;
            while (!s->restarted && !s->gave_up) {
                tr_pid now = child_pid(rt, c.pid, 1, &rc);
                s->restarted = now != TR_PID_NONE && now != old;
                s->gave_up = tr_runtime_stopping(rt) || (rc != 0 && rc != TR_ENOMEM);
                if (tr_test_wall_ns() > end) {
                    s->stuck = true;
                    break;
                }
                sched_yield();
            }
        }
    }
    s->step = "tr_runtime_stop";
    if (tr_runtime_stop(rt) == TR_ENOMEM)
        tr_runtime_stop(rt);
    s->step = "tr_runtime_wait";
    tr_runtime_wait(rt);
    s->step = "tr_runtime_free";
    tr_runtime_free(rt);
    s->step = "done";
}

static void test_sweep_supervisor(void **st)
{
    (void)st;
    uint64_t k = 1;
    unsigned restarted = 0, gave_up = 0;
    for (;; k++) {
        scenario s = {.step = "?"};
        arm_nth(k, 0);
        bool ended = run_bounded(scenario_run, &s, RUN_BOUND_S);
        bool fired = disarm_fired();
        if (!ended)
            fail_msg("the scenario hung at %s: allocation %llu failed", s.step,
                     (unsigned long long)k);
        if (s.stuck)
            fail_msg("allocation %llu failed: the crashed child was neither restarted "
                     "nor did the runtime stop",
                     (unsigned long long)k);
        restarted += s.restarted;
        gave_up += s.gave_up;
        if (!fired) {
            assert_true(s.restarted); /* the run without a failure does it all */
            break;
        }
    }
    print_message("swept %llu allocation sites of a supervisor start / restart / shutdown "
                  "(restarted %u, stopped instead %u)\n",
                  (unsigned long long)(k - 1), restarted, gave_up);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_signal_fails),
        cmocka_unit_test(test_call_reply_copy_fails),
        cmocka_unit_test(test_tree_describe_fails),
        cmocka_unit_test(test_sup_spawn_notice_fails),
        cmocka_unit_test(test_down_not_lost),
        cmocka_unit_test(test_child_exit_not_lost),
        cmocka_unit_test(test_link_exit_not_lost),
        cmocka_unit_test(test_link_fails_cleanly),
        cmocka_unit_test(test_unlink_then_exit),
        cmocka_unit_test(test_link_noproc_not_lost),
        cmocka_unit_test(test_sweep_supervisor),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
