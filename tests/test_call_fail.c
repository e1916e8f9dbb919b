/*
 * test_call_fail.c — the API contract's calls, pids and runtime ends
 * (issue "API contract 0.2", decisions 5, 6 and 8):
 *  - a pid of another runtime is TR_ENOACTOR, never a local actor; a slot
 *    whose generation would wrap is retired;
 *  - a call whose callee ends fails at once, exactly once, for actor and
 *    plain-thread callers, whether the request was being handled, kept,
 *    or still queued; cancel, tag, and a deadline passed on;
 *  - a permanent top-level actor's end stops the runtime and says why; a
 *    plain thread waits for an actor's end with a timeout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "tr_test.h"
#include "loop.h" /* test_retired_slot looks at a loop's free slots */

enum { M_HOLD = 1, M_DIE, M_START, M_ECHO, M_ASK, M_DONE, M_FAIL, M_QUIT, M_WATCHED };

#define DIE_CODE (-77)

/* ---- a callee that keeps its requests and never answers ------------------------ */

static _Atomic int held;

static int holder_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    if (msg->type == M_HOLD)
        atomic_fetch_add(&held, 1); /* kept, never answered */
    if (msg->type == M_DIE)
        return DIE_CODE;
    if (msg->type == M_ECHO && (msg->flags & TR_MSG_REQUEST))
        TR_CHECK_EQ(tr_reply(self, msg, M_ECHO, msg->data, msg->len), 0);
    return 0;
}

static const tr_behavior holder_b = {.name = "holder", .receive = holder_receive};

/* ---- pids ------------------------------------------------------------------------- */

static void test_foreign_pid(void **state)
{
    (void)state;
    tr_runtime *a = tr_test_runtime(1, 0), *b = tr_test_runtime(1, 0);
    tr_pid pa, pb;
    assert_int_equal(tr_rt_spawn(a, &holder_b, NULL, &pa), 0);
    assert_int_equal(tr_rt_spawn(b, &holder_b, NULL, &pb), 0);
    /* The same slot of each runtime, told apart by the node field. */
    assert_int_equal(TR_PID_INDEX(pa), TR_PID_INDEX(pb));
    assert_int_equal(TR_PID_GEN(pa), TR_PID_GEN(pb));
    assert_int_not_equal(TR_PID_NODE(pa), TR_PID_NODE(pb));
    assert_int_equal(tr_rt_send(b, pa, M_ECHO, NULL, 0), TR_ENOACTOR);
    assert_int_equal(tr_signal_exit(b, pa, TR_EXIT_KILLED), TR_ENOACTOR);
    assert_int_equal(tr_test_call_rc(b, pa, M_ECHO, NULL, 0, 1000), TR_ENOACTOR);
    tr_test_ask(b, pb, M_ECHO, "x", 1, NULL, 1); /* its echo */
    tr_down d;
    assert_int_equal(tr_rt_wait_exit(b, pa, 1000, &d), 0);
    assert_int_equal(d.kind, TR_EXIT_ERROR);
    assert_int_equal(d.code, TR_ENOACTOR);
    /* TR_PID_FMT prints node, index and generation. */
    char txt[64], want[64];
    snprintf(txt, sizeof txt, TR_PID_FMT, TR_PID_ARGS(pa));
    snprintf(want, sizeof want, "<%u.%u.%u>", TR_PID_NODE(pa), TR_PID_INDEX(pa),
             TR_PID_GEN(pa));
    assert_string_equal(txt, want);
    assert_int_equal(tr_runtime_free(a), 0);
    assert_int_equal(tr_runtime_free(b), 0);
}

/* A slot whose next incarnation would end past the generation's 26 bits is
 * retired: never reused, so an old pid cannot come back. */
static void test_retired_slot(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(1);
    tr__loop *L = rt->loops[0];
    tr_pid a;
    assert_int_equal(tr_rt_spawn(rt, &holder_b, NULL, &a), 0);
    tr_actor *slot = tr__pidtab_get(&rt->pids, TR_PID_INDEX(a));
    assert_int_equal(tr_signal_exit(rt, a, TR_EXIT_KILLED), 0);
    /* Wait until the slot is back on its loop's free list... */
    for (;;) {
        ck_spinlock_fas_lock(&L->free_lock);
        tr__handoff_acquire(&L->free_lock);
        bool freed = L->free_slots == slot;
        if (freed) /* ...and age it to the last generation it may live. */
            ck_pr_store_32(&slot->gen, TR__GEN_MASK - 1);
        tr__handoff_release(&L->free_lock);
        ck_spinlock_fas_unlock(&L->free_lock);
        if (freed)
            break;
        sched_yield();
    }
    tr_pid b;
    assert_int_equal(tr_rt_spawn(rt, &holder_b, NULL, &b), 0);
    assert_int_equal(TR_PID_INDEX(b), TR_PID_INDEX(a));
    assert_int_equal(TR_PID_GEN(b), TR__GEN_MASK);
    tr_test_ask(rt, b, M_ECHO, "y", 1, NULL, 1); /* it lives */
    assert_int_equal(tr_signal_exit(rt, b, TR_EXIT_KILLED), 0);
    tr_down d;
    assert_int_equal(tr_rt_wait_exit(rt, b, 30000, &d), 0);
    /* Whatever the timing, the next actors never take the retired slot. */
    for (int i = 0; i < 4; i++) {
        tr_pid c;
        assert_int_equal(tr_rt_spawn(rt, &holder_b, NULL, &c), 0);
        assert_int_not_equal(TR_PID_INDEX(c), TR_PID_INDEX(b));
    }
    assert_int_equal(tr_rt_send(rt, a, M_ECHO, NULL, 0), TR_ENOACTOR);
    /* (A DOWN leaves before the slot's generation moves on.) */
    TR_WAIT_GONE(rt, b, M_ECHO);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- an actor's calls fail when the callee dies ---------------------------------- */

#define NCALLS 5

typedef struct outcome {
    uint32_t type;
    uint64_t tag;
    tr_pid from;
    int32_t kind, code;
} outcome;

static outcome outcomes[64];
static _Atomic int noutcomes;
static tr_ref refs[NCALLS];

static void record(const tr_msg *msg)
{
    int i = atomic_load(&noutcomes);
    TR_CHECK(i < 64);
    outcome o = {.type = msg->type, .tag = msg->tag, .from = msg->from};
    if (msg->type == TR_MSG_CALL_FAILED) {
        TR_CHECK_EQ(msg->len, sizeof(tr_call_failed));
        tr_call_failed f;
        memcpy(&f, msg->data, sizeof f);
        o.kind = f.kind;
        o.code = f.code;
    }
    outcomes[i] = o;
    atomic_store(&noutcomes, i + 1);
}

/* M_START (payload: the callee): three calls the callee keeps, M_DIE, two
 * calls queued behind it; every call has no limit and its own tag. */
static int caller_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == M_START) {
        tr_pid callee;
        memcpy(&callee, msg->data, sizeof callee);
        for (int i = 0; i < NCALLS; i++) {
            if (i == 3)
                TR_CHECK_EQ(tr_send(self, callee, M_DIE, NULL, 0), 0);
            TR_CHECK_EQ(tr_call(self, callee, M_HOLD, NULL, 0, TR_INFINITE, &refs[i]), 0);
            TR_CHECK_EQ(tr_call_tag(self, refs[i], 100u + (unsigned)i), 0);
        }
        return 0;
    }
    if (msg->flags & TR_MSG_REPLY)
        record(msg);
    return 0;
}

static const tr_behavior caller_b = {.name = "caller", .receive = caller_receive};

static void test_actor_call_fails_when_callee_dies(void **state)
{
    (void)state;
    for (unsigned loops = 1; loops <= 2; loops++) { /* same loop, and across loops */
        tr_runtime *rt = tr_test_quiet_runtime(loops);
        atomic_store(&noutcomes, 0);
        atomic_store(&held, 0);
        tr_spawn_opts o;
        tr_spawn_opts_init(&o);
        tr_pid callee, caller;
        o.loop = TR_LOOP(0);
        assert_int_equal(tr_rt_spawn(rt, &holder_b, &o, &callee), 0);
        o.loop = TR_LOOP(loops - 1);
        assert_int_equal(tr_rt_spawn(rt, &caller_b, &o, &caller), 0);
        assert_int_equal(tr_rt_send(rt, caller, M_START, &callee, sizeof callee), 0);
        TR_WAIT_UNTIL(atomic_load(&noutcomes) == NCALLS);
        assert_int_equal(atomic_load(&held), 3); /* three were handled and kept */
        unsigned seen = 0;
        for (int i = 0; i < NCALLS; i++) {
            outcome *x = &outcomes[i];
            assert_int_equal(x->type, TR_MSG_CALL_FAILED);
            assert_int_equal(x->from, callee);
            assert_int_equal(x->kind, TR_EXIT_ERROR);
            /* Queued ones see the reason too, while the slot remembers it. */
            assert_true(x->code == DIE_CODE || (x->code == TR_ENOACTOR && i >= 3));
            assert_true(x->tag >= 100 && x->tag < 100 + NCALLS);
            seen |= 1u << (x->tag - 100);
        }
        assert_int_equal(seen, (1u << NCALLS) - 1); /* each call exactly once */
        /* And nothing more comes: a round trip through the caller's loop. */
        tr_pid probe;
        assert_int_equal(tr_rt_spawn(rt, &holder_b, &o, &probe), 0);
        tr_test_ask(rt, probe, M_ECHO, NULL, 0, NULL, 0);
        assert_int_equal(atomic_load(&noutcomes), NCALLS);
        assert_int_equal(tr_runtime_free(rt), 0);
    }
}

/* ---- a plain thread's call fails when the callee dies ------------------------------- */

typedef struct thread_call {
    tr_runtime *rt;
    tr_pid to;
    int rc;
} thread_call;

static void *call_thread(void *arg)
{
    thread_call *c = arg;
    c->rc = tr_test_call_rc(c->rt, c->to, M_HOLD, NULL, 0, TR_INFINITE);
    return NULL;
}

static void test_thread_call_fails_when_callee_dies(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    atomic_store(&held, 0);
    tr_pid callee;
    assert_int_equal(tr_rt_spawn(rt, &holder_b, NULL, &callee), 0);
    /* Being handled (kept): the callee ends afterwards. */
    thread_call c = {.rt = rt, .to = callee, .rc = 1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, call_thread, &c), 0);
    TR_WAIT_UNTIL(atomic_load(&held) == 1);
    assert_int_equal(tr_rt_send(rt, callee, M_DIE, NULL, 0), 0);
    pthread_join(t, NULL);
    assert_int_equal(c.rc, TR_EEXITED);
    /* Queued behind the end, or sent after it: never a hang. */
    for (int i = 0; i < 20; i++) {
        assert_int_equal(tr_rt_spawn(rt, &holder_b, NULL, &callee), 0);
        assert_int_equal(tr_rt_send(rt, callee, M_DIE, NULL, 0), 0);
        int rc = tr_test_call_rc(rt, callee, M_HOLD, NULL, 0, TR_INFINITE);
        assert_true(rc == TR_EEXITED || rc == TR_ENOACTOR);
    }
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* A bounded mailbox that drops when full refuses requests instead: a call
 * must end, and a dropped request would leave it hanging. Before the start
 * nothing drains the mailbox, so it stays full. */
static void test_drop_policy_refuses_requests(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime_unstarted(NULL);
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.mailbox_capacity = 1;
    o.overflow = TR_OVERFLOW_DROP;
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &holder_b, &o, &p), 0);
    assert_int_equal(tr_rt_send(rt, p, M_ECHO, NULL, 0), 0);
    assert_int_equal(tr_rt_send(rt, p, M_ECHO, NULL, 0), 0); /* dropped, counted */
    assert_int_equal(tr_test_call_rc(rt, p, M_ECHO, NULL, 0, TR_INFINITE), TR_EFULL);
    assert_int_equal(tr_runtime_start(rt), 0);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- cancel, tags, deadlines ----------------------------------------------------------- */

static tr_msg kept_req; /* the echo's request, answered on M_DONE */

static int slow_echo_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == M_ECHO) {
        kept_req = *msg; /* answered later */
        kept_req.data = NULL;
        kept_req.len = 0;
    } else if (msg->type == M_DONE) {
        TR_CHECK_EQ(tr_reply(self, &kept_req, M_ECHO, NULL, 0), 0);
        TR_CHECK_EQ(tr_send(self, msg->from, M_DONE, NULL, 0), 0);
    }
    return 0;
}

static const tr_behavior slow_echo_b = {.name = "slow-echo", .receive = slow_echo_receive};

typedef struct script {
    int dones;
    tr_pid echo;
    tr_ref cancelled, tagged, timed;
    tr_msg ask;
} script;

/* M_START: call the slow echo and cancel; call it with a tag; call a silent
 * holder with a zero timeout. M_DONE (from the echo, after its late reply):
 * answer the test thread's M_ASK with what arrived. */
static int script_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    script *s = state;
    switch (msg->type) {
    case M_START: {
        memcpy(&s->echo, msg->data, sizeof s->echo);
        s->ask = *msg;
        s->ask.data = NULL;
        TR_CHECK_EQ(tr_call(self, s->echo, M_ECHO, NULL, 0, TR_INFINITE, &s->cancelled), 0);
        TR_CHECK_EQ(tr_call_cancel(self, s->cancelled), 0);
        TR_CHECK_EQ(tr_call_cancel(self, s->cancelled), TR_ENOTFOUND);
        TR_CHECK_EQ(tr_call_tag(self, s->cancelled, 1), TR_ENOTFOUND);
        TR_CHECK_EQ(tr_call_cancel(self, 12345), TR_ENOTFOUND);
        tr_pid silent;
        TR_CHECK_EQ(tr_spawn(self, &holder_b, NULL, &silent), 0);
        TR_CHECK_EQ(tr_call(self, silent, M_HOLD, NULL, 0, 0, &s->timed), 0);
        TR_CHECK_EQ(tr_call_tag(self, s->timed, 7), 0);
        /* The echo answers its first request (the cancelled one) on M_DONE. */
        TR_CHECK_EQ(tr_send(self, s->echo, M_DONE, NULL, 0), 0);
        return 0;
    }
    case M_DONE:
        record(msg);
        if (++s->dones == 1) { /* the cancelled call was answered: nothing came */
            TR_CHECK_EQ(tr_call(self, s->echo, M_ECHO, NULL, 0, TR_INFINITE, &s->tagged), 0);
            TR_CHECK_EQ(tr_call_tag(self, s->tagged, 0xfeedu), 0);
            TR_CHECK_EQ(tr_send(self, s->echo, M_DONE, NULL, 0), 0);
        }
        break;
    default:
        if (msg->flags & TR_MSG_REPLY) {
            TR_CHECK(msg->ref != s->cancelled);
            record(msg);
        }
        break;
    }
    if (atomic_load(&noutcomes) == 4) /* timeout, M_DONE, reply, M_DONE */
        TR_CHECK_EQ(tr_reply(self, &s->ask, M_ASK, NULL, 0), 0);
    return 0;
}

static const tr_behavior script_b = {.name = "script", .state_size = sizeof(script),
                                     .receive = script_receive};

static void test_cancel_and_tag(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    atomic_store(&noutcomes, 0);
    uint64_t late0 = TR_STAT(rt, late_replies);
    tr_pid echo, s;
    assert_int_equal(tr_rt_spawn(rt, &slow_echo_b, NULL, &echo), 0);
    assert_int_equal(tr_rt_spawn(rt, &script_b, NULL, &s), 0);
    tr_test_ask(rt, s, M_START, &echo, sizeof echo, NULL, 0); /* answered as M_ASK */
    assert_int_equal(atomic_load(&noutcomes), 4);
    /* The timeout carries its tag; the cancelled call's reply never came;
     * the tagged call's reply carries its tag. The timeout may come first
     * or after the first M_DONE. */
    int timeouts = 0, replies = 0;
    for (int i = 0; i < 4; i++) {
        if (outcomes[i].type == TR_MSG_CALL_TIMEOUT) {
            assert_int_equal(outcomes[i].tag, 7);
            timeouts++;
        } else if (outcomes[i].type == M_ECHO) {
            assert_int_equal(outcomes[i].tag, 0xfeedu);
            replies++;
        } else {
            assert_int_equal(outcomes[i].type, M_DONE);
            assert_int_equal(outcomes[i].tag, 0); /* not a reply: no tag */
        }
    }
    assert_int_equal(timeouts, 1);
    assert_int_equal(replies, 1);
    TR_WAIT_UNTIL(TR_STAT(rt, late_replies) == late0 + 1); /* the cancelled one's */
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* Passing a deadline on: the front asks the back on behalf of a request
 * with a 5000 ms limit; on the virtual clock both see 5000 ms left. */
static int back_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    tr_duration left = tr_msg_remaining(self, msg);
    return tr_reply(self, msg, M_ASK, &left, sizeof left);
}

static const tr_behavior back_b = {.name = "back", .receive = back_receive};

typedef struct front {
    tr_msg req;
    int64_t left[3];
} front;

static int front_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    front *f = state;
    if (msg->type == M_ASK && (msg->flags & TR_MSG_REQUEST)) {
        f->req = *msg;
        f->left[0] = tr_msg_remaining(self, msg);
        f->left[2] = tr_msg_remaining(self, NULL); /* not a request: no limit */
        tr_pid back;
        TR_CHECK_EQ(tr_spawn(self, &back_b, NULL, &back), 0);
        tr_ref ref;
        return tr_call(self, back, M_ASK, NULL, 0, tr_msg_remaining(self, msg), &ref);
    }
    if (msg->type == M_ASK && (msg->flags & TR_MSG_REPLY)) {
        memcpy(&f->left[1], msg->data, sizeof f->left[1]);
        return tr_reply(self, &f->req, M_ASK, f->left, sizeof f->left);
    }
    return 0;
}

static const tr_behavior front_b = {.name = "front", .state_size = sizeof(front),
                                    .receive = front_receive};

static void test_deadline_passed_on(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, TR_TEST_VCLOCK);
    tr_pid f;
    assert_int_equal(tr_rt_spawn(rt, &front_b, NULL, &f), 0);
    tr_rt_reply r;
    assert_int_equal(tr_rt_call(rt, f, M_ASK, NULL, 0, 5000, &r), 0);
    int64_t left[3];
    assert_int_equal(r.len, sizeof left);
    memcpy(left, r.data, sizeof left);
    tr_rt_reply_free(&r);
    assert_int_equal(left[0], 5000);
    assert_int_equal(left[1], 5000); /* passed on as a duration */
    assert_int_equal(left[2], TR_INFINITE);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- how a runtime ends ---------------------------------------------------------------- */

static int mortal_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == M_FAIL)
        return DIE_CODE;
    if (msg->type == M_QUIT)
        return tr_exit(self, TR_EXIT_NORMAL);
    if (msg->type == M_WATCHED) { /* how many watch it (read on its own loop) */
        uint32_t n = self->ext ? self->ext->ties.watchers.n : 0;
        TR_CHECK_EQ(tr_reply(self, msg, M_WATCHED, &n, sizeof n), 0);
    }
    if (msg->type == M_START) { /* only top-level actors may ask for a top */
        tr_spawn_opts o;
        tr_spawn_opts_init(&o);
        o.top = TR_TOP_PERMANENT;
        tr_pid kid;
        TR_CHECK_EQ(tr_spawn(self, &holder_b, &o, &kid), TR_EINVAL);
        TR_CHECK_EQ(tr_reply(self, msg, M_START, NULL, 0), 0);
    }
    return 0;
}

static const tr_behavior mortal_b = {.name = "mortal", .receive = mortal_receive};

static void test_permanent_actor(void **state)
{
    (void)state;
    /* A failure: the runtime stops and says why. */
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.top = TR_TOP_PERMANENT;
    tr_pid p, other;
    assert_int_equal(tr_rt_spawn(rt, &mortal_b, &o, &p), 0);
    assert_int_equal(tr_rt_spawn(rt, &mortal_b, NULL, &other), 0); /* independent */
    tr_test_ask(rt, p, M_START, NULL, 0, NULL, 0);
    tr_down d;
    assert_int_equal(tr_runtime_exit_reason(rt, &d), TR_ENOTFOUND);
    assert_int_equal(tr_rt_send(rt, other, M_QUIT, NULL, 0), 0); /* concerns no one */
    assert_int_equal(tr_rt_wait_exit(rt, other, 30000, &d), 0);
    assert_int_equal(tr_runtime_stopping(rt), 0);
    assert_int_equal(tr_rt_send(rt, p, M_FAIL, NULL, 0), 0);
    assert_int_equal(tr_runtime_wait(rt), TR_EPERMANENT);
    assert_int_not_equal(tr_runtime_stopping(rt), 0);
    assert_int_equal(tr_runtime_exit_reason(rt, &d), 0);
    assert_int_equal(d.pid, p);
    assert_int_equal(d.kind, TR_EXIT_ERROR);
    assert_int_equal(d.code, DIE_CODE);
    assert_int_equal(tr_runtime_free(rt), 0);

    /* A normal end: the runtime stops, and that is success. */
    rt = tr_test_quiet_runtime(1);
    assert_int_equal(tr_rt_spawn(rt, &mortal_b, &o, &p), 0);
    assert_int_equal(tr_rt_send(rt, p, M_QUIT, NULL, 0), 0);
    assert_int_equal(tr_runtime_wait(rt), 0);
    assert_int_equal(tr_runtime_exit_reason(rt, &d), 0);
    assert_int_equal(d.kind, TR_EXIT_NORMAL);
    assert_int_equal(tr_runtime_free(rt), 0);

    /* A stop that is the runtime's own is not the actor's end. */
    rt = tr_test_quiet_runtime(1);
    assert_int_equal(tr_rt_spawn(rt, &mortal_b, &o, &p), 0);
    assert_int_equal(tr_runtime_stop(rt), 0);
    assert_int_equal(tr_runtime_wait(rt), 0);
    assert_int_equal(tr_runtime_exit_reason(rt, &d), TR_ENOTFOUND);
    assert_int_equal(tr_runtime_free(rt), 0);

    /* Bad tops. */
    rt = tr_test_quiet_runtime(1);
    o.top = 3;
    assert_int_equal(tr_rt_spawn(rt, &mortal_b, &o, &p), TR_EINVAL);
    o.top = -1;
    assert_int_equal(tr_rt_spawn(rt, &mortal_b, &o, &p), TR_EINVAL);
    assert_int_equal(tr_runtime_free(rt), 0);
}

typedef struct wait_exit_arg {
    tr_runtime *rt;
    tr_pid pid;
    int rc;
    tr_down d;
} wait_exit_arg;

static void *wait_exit_thread(void *arg)
{
    wait_exit_arg *w = arg;
    w->rc = tr_rt_wait_exit(w->rt, w->pid, TR_INFINITE, &w->d);
    return NULL;
}

static void test_wait_exit(void **state)
{
    (void)state;
    tr_runtime *rt = NULL;
    assert_int_equal(tr_runtime_stopping(NULL), 0);
    assert_int_equal(tr_runtime_create(&rt, NULL), 0);
    assert_int_equal(tr_runtime_stopping(rt), 0);
    tr_down d;
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &mortal_b, NULL, &p), 0);
    assert_int_equal(tr_runtime_start(rt), 0);
    assert_int_equal(tr_rt_wait_exit(rt, p, 0, &d), TR_ETIMEDOUT);
    assert_int_equal(tr_rt_wait_exit(rt, p, 20, &d), TR_ETIMEDOUT);
    assert_int_equal(tr_rt_wait_exit(NULL, p, 20, &d), TR_EINVAL);
    assert_int_equal(tr_rt_wait_exit(rt, p, 20, NULL), TR_EINVAL);
    assert_int_equal(tr_rt_wait_exit(rt, TR_PID_NONE, 20, &d), TR_EINVAL);
    assert_int_equal(tr_rt_wait_exit(rt, p, -5, &d), TR_EINVAL);
    /* A waiting thread gets the real reason: the failure is sent only once
     * the actor itself reports the thread's watch. */
    wait_exit_arg w = {.rt = rt, .pid = p, .rc = 1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wait_exit_thread, &w), 0);
    uint32_t watched = 0;
    while (watched == 0) {
        tr_rt_reply r;
        assert_int_equal(tr_rt_call(rt, p, M_WATCHED, NULL, 0, 30000, &r), 0);
        assert_int_equal(r.len, sizeof watched);
        memcpy(&watched, r.data, sizeof watched);
        tr_rt_reply_free(&r);
    }
    assert_int_equal(tr_rt_send(rt, p, M_FAIL, NULL, 0), 0);
    pthread_join(t, NULL);
    assert_int_equal(w.rc, 0);
    assert_int_equal(w.d.pid, p);
    assert_int_equal(w.d.kind, TR_EXIT_ERROR);
    assert_int_equal(w.d.code, DIE_CODE);
    TR_WAIT_GONE(rt, p, M_FAIL);
    assert_int_equal(tr_rt_wait_exit(rt, p, TR_INFINITE, &d), 0);
    assert_int_equal(d.code, TR_ENOACTOR);
    /* Many waits on one actor: each gets its answer. */
    assert_int_equal(tr_rt_spawn(rt, &mortal_b, NULL, &p), 0);
    for (int i = 0; i < 50; i++)
        assert_int_equal(tr_rt_wait_exit(rt, p, 1, &d), TR_ETIMEDOUT);
    assert_int_equal(tr_runtime_stop(rt), 0);
    assert_int_equal(tr_rt_wait_exit(rt, p, TR_INFINITE, &d), TR_ESTOPPED); /* stopping */
    assert_int_equal(tr_runtime_wait(rt), 0);
    assert_int_not_equal(tr_runtime_stopping(rt), 0);
    assert_int_equal(tr_rt_wait_exit(rt, p, TR_INFINITE, &d), TR_ESTOPPED);
    assert_int_equal(tr_runtime_free(rt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_foreign_pid),
        cmocka_unit_test(test_retired_slot),
        cmocka_unit_test(test_actor_call_fails_when_callee_dies),
        cmocka_unit_test(test_thread_call_fails_when_callee_dies),
        cmocka_unit_test(test_drop_policy_refuses_requests),
        cmocka_unit_test(test_cancel_and_tag),
        cmocka_unit_test(test_deadline_passed_on),
        cmocka_unit_test(test_permanent_actor),
        cmocka_unit_test(test_wait_exit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
