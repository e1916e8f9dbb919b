/*
 * test_actor.c — actor semantics through the public API: callbacks and
 * state, init failure, exits and their reports, become, self/parent,
 * placement, bad pids and payloads, wrong threads, the parent-before-child
 * shutdown order, exit signals ahead of queued mail, payload sizes.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "tr_test.h"

enum { PING = 1, CMD = 2, ASK = 3 };

/* The test's lock: terminates that record what they saw run on several
 * loops at once. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- callbacks, state, argument ------------------------------------------- */

typedef struct cell {
    int inits, messages;
    char arg[32];
} cell;

static _Atomic int cell_terminated;
static _Atomic int cell_last_kind = -1;
static char cell_arg_seen[32];

static int cell_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    cell *c = state;
    /* State starts zeroed. */
    TR_CHECK_EQ(c->inits, 0);
    TR_CHECK_EQ(c->messages, 0);
    c->inits++;
    TR_CHECK(len <= sizeof c->arg);
    memcpy(c->arg, arg, len);
    memcpy(cell_arg_seen, arg, len);
    return 0;
}

static int cell_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    cell *c = state;
    c->messages++;
    if (msg->type == ASK)
        return tr_reply(self, msg, ASK, c, sizeof *c);
    return 0;
}

static void cell_terminate(tr_actor *self, void *state, const tr_exit_reason *r)
{
    (void)self;
    cell *c = state;
    TR_CHECK_EQ(c->inits, 1);
    atomic_store(&cell_last_kind, (int)r->kind);
    atomic_fetch_add(&cell_terminated, 1);
}

static const tr_behavior cell_b = {.name = "cell", .state_size = sizeof(cell),
                                   .init = cell_init, .receive = cell_receive,
                                   .terminate = cell_terminate};

static void test_callbacks_state_arg(void **state)
{
    (void)state;
    atomic_store(&cell_terminated, 0);
    tr_runtime *rt = tr_test_runtime(2, 0);
    char arg[32] = "hello, actor";
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.arg = arg;
    o.arg_len = sizeof arg;
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &cell_b, &o, &p), 0);
    memset(arg, 'X', sizeof arg); /* the argument was copied */
    for (int i = 0; i < 5; i++)
        assert_int_equal(tr_rt_send(rt, p, PING, NULL, 0), 0);
    cell seen;
    tr_test_ask(rt, p, ASK, NULL, 0, &seen, sizeof seen);
    assert_int_equal(seen.inits, 1);
    assert_int_equal(seen.messages, 6);
    assert_string_equal(seen.arg, "hello, actor");
    assert_int_equal(tr_runtime_free(rt), 0);
    assert_int_equal(atomic_load(&cell_terminated), 1);
    assert_int_equal(atomic_load(&cell_last_kind), TR_EXIT_SHUTDOWN);
}

/* ---- init failure ------------------------------------------------------------ */

static _Atomic int failing_terminated;

static int failing_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    (void)state;
    (void)arg;
    (void)len;
    return -1234;
}

static void failing_terminate(tr_actor *self, void *state, const tr_exit_reason *r)
{
    (void)self;
    (void)state;
    (void)r;
    atomic_fetch_add(&failing_terminated, 1);
}

static const tr_behavior failing_b = {.name = "failing", .init = failing_init,
                                      .receive = cell_receive,
                                      .terminate = failing_terminate};

/* A parent whose child fails in init keeps working. */
typedef struct parent {
    tr_pid child;
} parent;

static int parent_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    parent *p = state;
    if (msg->type == CMD)
        return tr_spawn(self, &failing_b, NULL, &p->child);
    if (msg->type == ASK)
        return tr_reply(self, msg, ASK, &p->child, sizeof p->child);
    return 0;
}

static const tr_behavior parent_b = {.name = "parent", .state_size = sizeof(parent),
                                     .receive = parent_receive};

static void test_init_failure(void **state)
{
    (void)state;
    atomic_store(&failing_terminated, 0);
    tr_runtime *rt = tr_test_runtime(2, TR_TEST_LOG);
    tr_pid par;
    assert_int_equal(tr_rt_spawn(rt, &parent_b, NULL, &par), 0);
    assert_int_equal(tr_rt_send(rt, par, CMD, NULL, 0), 0);
    TR_WAIT_UNTIL(tr_test_log_count() == 1);
    char line[512];
    assert_true(tr_test_log_line_at(0, line, sizeof line));
    assert_non_null(strstr(line, "(failing)"));
    assert_non_null(strstr(line, "-1234"));
    assert_non_null(strstr(line, "init failed"));
    /* The parent still answers, and its child is gone. */
    tr_pid child;
    tr_test_ask(rt, par, ASK, NULL, 0, &child, sizeof child);
    TR_WAIT_GONE(rt, child, PING);
    /* Top-level too. */
    tr_pid top;
    assert_int_equal(tr_rt_spawn(rt, &failing_b, NULL, &top), 0);
    TR_WAIT_UNTIL(tr_test_log_count() == 2);
    assert_int_equal(tr_runtime_free(rt), 0);
    assert_int_equal(atomic_load(&failing_terminated), 0); /* never after a failed init */
}

/* ---- exits and reports -------------------------------------------------------- */

enum { DO_NORMAL = 10, DO_SHUTDOWN, DO_KILLED, DO_ERROR_TEXT, DO_RETURN, DO_BAD_EXITS };

static _Atomic int exit_kind_seen = -1, exit_code_seen;
static char exit_text_seen[128];

static int exiter_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    switch (msg->type) {
    case DO_NORMAL:
        return tr_exit(self, TR_EXIT_NORMAL);
    case DO_SHUTDOWN:
        return tr_exit(self, TR_EXIT_SHUTDOWN);
    case DO_KILLED:
        return tr_exit(self, TR_EXIT_KILLED);
    case DO_ERROR_TEXT:
        TR_CHECK_EQ(tr_exit_error(self, -42, "disk on fire"), 0);
        /* A second request does not override the first. */
        TR_CHECK_EQ(tr_exit(self, TR_EXIT_NORMAL), 0);
        return 0;
    case DO_RETURN:
        return TR_EFULL;
    case DO_BAD_EXITS:
        TR_CHECK_EQ(tr_exit(self, TR_EXIT_ERROR), TR_EINVAL);
        TR_CHECK_EQ(tr_exit(self, (tr_exit_kind)99), TR_EINVAL);
        TR_CHECK_EQ(tr_exit_error(self, 0, "x"), TR_EINVAL);
        TR_CHECK_EQ(tr_exit(NULL, TR_EXIT_NORMAL), TR_EINVAL);
        TR_CHECK_EQ(tr_exit_error(NULL, -1, NULL), TR_EINVAL);
        return tr_reply(self, msg, DO_BAD_EXITS, NULL, 0);
    }
    return 0;
}

static void exiter_terminate(tr_actor *self, void *state, const tr_exit_reason *r)
{
    (void)self;
    (void)state;
    /* Under the lock: the runtime frees actors on several loops at once
     * (test_bad_pids_and_payloads ends two exiters on two loops). */
    pthread_mutex_lock(&mu);
    snprintf(exit_text_seen, sizeof exit_text_seen, "%s", r->text);
    pthread_mutex_unlock(&mu);
    atomic_store(&exit_code_seen, r->code);
    atomic_store(&exit_kind_seen, (int)r->kind);
}

static const tr_behavior exiter_b = {.name = "exiter", .receive = exiter_receive,
                                     .terminate = exiter_terminate};

static void run_exit(tr_runtime *rt, uint32_t how, tr_exit_kind want_kind, int want_code,
                     const char *want_text, int want_logs)
{
    atomic_store(&exit_kind_seen, -1);
    int logs0 = tr_test_log_count();
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &exiter_b, NULL, &p), 0);
    assert_int_equal(tr_rt_send(rt, p, how, NULL, 0), 0);
    TR_WAIT_UNTIL(atomic_load(&exit_kind_seen) != -1);
    assert_int_equal(atomic_load(&exit_kind_seen), want_kind);
    assert_int_equal(atomic_load(&exit_code_seen), want_code);
    char seen[sizeof exit_text_seen];
    pthread_mutex_lock(&mu);
    memcpy(seen, exit_text_seen, sizeof seen);
    pthread_mutex_unlock(&mu);
    assert_string_equal(seen, want_text);
    TR_WAIT_GONE(rt, p, PING);
    assert_int_equal(tr_test_log_count(), logs0 + want_logs);
    if (want_logs) {
        char pidtxt[48], line[512];
        snprintf(pidtxt, sizeof pidtxt, TR_PID_FMT " (exiter)", TR_PID_ARGS(p));
        assert_true(tr_test_log_line_at(logs0, line, sizeof line));
        assert_non_null(strstr(line, pidtxt));
    }
}

static void test_exits_and_reports(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, TR_TEST_LOG);
    char line[512];
    run_exit(rt, DO_NORMAL, TR_EXIT_NORMAL, 0, "normal", 0);
    run_exit(rt, DO_SHUTDOWN, TR_EXIT_SHUTDOWN, 0, "shutdown", 0);
    run_exit(rt, DO_KILLED, TR_EXIT_KILLED, 0, "killed", 1);
    assert_true(tr_test_log_line_at(0, line, sizeof line));
    assert_non_null(strstr(line, "killed"));
    run_exit(rt, DO_ERROR_TEXT, TR_EXIT_ERROR, -42, "disk on fire", 1);
    assert_true(tr_test_log_line_at(1, line, sizeof line));
    assert_non_null(strstr(line, "disk on fire"));
    run_exit(rt, DO_RETURN, TR_EXIT_ERROR, TR_EFULL, tr_strerror(TR_EFULL), 1);
    assert_true(tr_test_log_line_at(2, line, sizeof line));
    assert_non_null(strstr(line, "TR_EFULL"));
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &exiter_b, NULL, &p), 0);
    tr_test_ask(rt, p, DO_BAD_EXITS, NULL, 0, NULL, 0);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- become, self, parent, loop ---------------------------------------------- */

static _Atomic int second_calls;

static int second_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    (void)msg;
    atomic_fetch_add(&second_calls, 1);
    return 0;
}

typedef struct who {
    tr_pid self, parent;
    int loop;
    int runtime_ok;
} who;

static int first_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == ASK) {
        who w = {.self = tr_self(self), .parent = tr_parent(self),
                 .loop = tr_loop_index(self), .runtime_ok = tr_runtime_of(self) != NULL};
        return tr_reply(self, msg, ASK, &w, sizeof w);
    }
    TR_CHECK_EQ(tr_become(self, NULL), TR_EINVAL);
    TR_CHECK_EQ(tr_become(NULL, second_receive), TR_EINVAL);
    return tr_become(self, second_receive);
}

static const tr_behavior first_b = {.name = "first", .receive = first_receive};

static tr_actor *stale;

static int grab_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    stale = self;
    return 0;
}

static const tr_behavior grab_b = {.name = "grab", .init = grab_init, .receive = first_receive};

static void test_become_self_parent(void **state)
{
    (void)state;
    atomic_store(&second_calls, 0);
    tr_runtime *rt = tr_test_runtime(2, 0);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &grab_b, NULL, &p), 0);
    who w;
    tr_test_ask(rt, p, ASK, NULL, 0, &w, sizeof w);
    assert_int_equal(w.self, p);
    assert_int_not_equal(w.parent, TR_PID_NONE); /* the root */
    assert_true(w.loop == 0 || w.loop == 1);
    assert_true(w.runtime_ok);
    /* The root is not for signalling. */
    assert_int_equal(tr_signal_exit(rt, w.parent, TR_EXIT_SHUTDOWN), TR_EINVAL);
    /* become: the next messages go to the new receive. */
    assert_int_equal(tr_rt_send(rt, p, PING, NULL, 0), 0);
    assert_int_equal(tr_rt_send(rt, p, PING, NULL, 0), 0);
    assert_int_equal(tr_rt_send(rt, p, PING, NULL, 0), 0);
    TR_WAIT_UNTIL(atomic_load(&second_calls) == 2);
    /* From the wrong thread, `self` is refused everywhere. */
    assert_int_equal(tr_self(stale), TR_PID_NONE);
    assert_int_equal(tr_parent(stale), TR_PID_NONE);
    assert_null(tr_runtime_of(stale));
    assert_int_equal(tr_loop_index(stale), -1);
    assert_int_equal(tr_send(stale, p, 1, NULL, 0), TR_EWRONGTHREAD);
    tr_pid q;
    assert_int_equal(tr_spawn(stale, &first_b, NULL, &q), TR_EWRONGTHREAD);
    assert_int_equal(tr_exit(stale, TR_EXIT_NORMAL), TR_EWRONGTHREAD);
    assert_int_equal(tr_exit_error(stale, -1, NULL), TR_EWRONGTHREAD);
    assert_int_equal(tr_become(stale, second_receive), TR_EWRONGTHREAD);
    assert_int_equal(tr_send(NULL, p, 1, NULL, 0), TR_EINVAL);
    assert_int_equal(tr_spawn(NULL, &first_b, NULL, &q), TR_EINVAL);
    assert_int_equal(tr_self(NULL), TR_PID_NONE);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* Another actor's self, used inside a handler, is the wrong thread too. */
static tr_actor *other_self;
static _Atomic int cross_checked;

static int other_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    other_self = self;
    return 0;
}

static int user_of_other(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    TR_CHECK_EQ(tr_send(other_self, msg->from, 1, NULL, 0), TR_EWRONGTHREAD);
    atomic_store(&cross_checked, 1);
    return 0;
}

static const tr_behavior other_b = {.name = "other", .state_size = sizeof(cell), .init = other_init,
                                    .receive = cell_receive};
static const tr_behavior user_b = {.name = "user", .receive = user_of_other};

static void test_other_self(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(1, 0);
    tr_pid a, b;
    assert_int_equal(tr_rt_spawn(rt, &other_b, NULL, &a), 0);
    tr_test_ask(rt, a, ASK, NULL, 0, NULL, sizeof(cell)); /* its init has run */
    assert_int_equal(tr_rt_spawn(rt, &user_b, NULL, &b), 0);
    assert_int_equal(tr_rt_send(rt, b, PING, NULL, 0), 0);
    TR_WAIT_UNTIL(atomic_load(&cross_checked));
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- placement ----------------------------------------------------------------- */

typedef struct placer {
    int loops[8];
    int n;
} placer;

static int child_loop_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    int l = tr_loop_index(self);
    return tr_reply(self, msg, ASK, &l, sizeof l);
}

static const tr_behavior child_loop_b = {.name = "child", .receive = child_loop_receive};

static int loop_of(tr_runtime *rt, tr_pid p)
{
    int l;
    tr_test_ask(rt, p, ASK, NULL, 0, &l, sizeof l);
    return l;
}

typedef struct spawned {
    tr_pid dflt, explicit1, rr[4];
    int my_loop;
    int bad1, bad2, bad3;
} spawned;

static int spawner_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    spawned s;
    memset(&s, 0, sizeof s);
    s.my_loop = tr_loop_index(self);
    TR_CHECK_EQ(tr_spawn(self, &child_loop_b, NULL, &s.dflt), 0);
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.loop = TR_LOOP(1);
    TR_CHECK_EQ(tr_spawn(self, &child_loop_b, &o, &s.explicit1), 0);
    o.loop = TR_LOOP_ROUND_ROBIN;
    for (int i = 0; i < 4; i++)
        TR_CHECK_EQ(tr_spawn(self, &child_loop_b, &o, &s.rr[i]), 0);
    tr_pid x;
    o.loop = TR_LOOP(2); /* only loops 0 and 1 */
    s.bad1 = tr_spawn(self, &child_loop_b, &o, &x);
    o.loop = -3;
    s.bad2 = tr_spawn(self, &child_loop_b, &o, &x);
    tr_spawn_opts_init(&o);
    o.arg_len = 4; /* NULL arg with a length */
    s.bad3 = tr_spawn(self, &child_loop_b, &o, &x);
    TR_CHECK_EQ(tr_spawn(self, NULL, NULL, &x), TR_EINVAL);
    TR_CHECK_EQ(tr_spawn(self, &child_loop_b, NULL, NULL), TR_EINVAL);
    static const tr_behavior no_receive = {.name = "none"};
    TR_CHECK_EQ(tr_spawn(self, &no_receive, NULL, &x), TR_EINVAL);
    return tr_reply(self, msg, ASK, &s, sizeof s);
}

static const tr_behavior spawner_b = {.name = "spawner", .receive = spawner_receive};

static void test_placement(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, 0);
    tr_pid sp;
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.loop = TR_LOOP(0);
    assert_int_equal(tr_rt_spawn(rt, &spawner_b, &o, &sp), 0);
    spawned s;
    tr_test_ask(rt, sp, ASK, NULL, 0, &s, sizeof s);
    assert_int_equal(s.my_loop, 0);
    assert_int_equal(loop_of(rt, s.dflt), 0); /* the spawner's loop */
    assert_int_equal(loop_of(rt, s.explicit1), 1);
    int seen[2] = {0, 0};
    for (int i = 0; i < 4; i++)
        seen[loop_of(rt, s.rr[i])]++;
    assert_int_equal(seen[0], 2);
    assert_int_equal(seen[1], 2);
    assert_int_equal(s.bad1, TR_EINVAL);
    assert_int_equal(s.bad2, TR_EINVAL);
    assert_int_equal(s.bad3, TR_EINVAL);
    /* From a plain thread: round-robin by default. */
    int plain[2] = {0, 0};
    for (int i = 0; i < 6; i++) {
        tr_pid p;
        assert_int_equal(tr_rt_spawn(rt, &child_loop_b, NULL, &p), 0);
        plain[loop_of(rt, p)]++;
    }
    assert_int_equal(plain[0], 3);
    assert_int_equal(plain[1], 3);
    tr_pid p;
    o.loop = TR_LOOP(5);
    assert_int_equal(tr_rt_spawn(rt, &child_loop_b, &o, &p), TR_EINVAL);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- bad pids and payloads --------------------------------------------------- */

static void test_bad_pids_and_payloads(void **state)
{
    (void)state;
    tr_runtime_options o = tr_test_options(2, 0);
    o.max_payload = 100;
    tr_runtime *rt = tr_test_runtime_opts(&o);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &exiter_b, NULL, &p), 0);
    char big[101] = {0};
    assert_int_equal(tr_rt_send(rt, p, PING, big, 100), 0);
    assert_int_equal(tr_rt_send(rt, p, PING, big, 101), TR_EMSGSIZE);
    tr_spawn_opts so;
    tr_spawn_opts_init(&so);
    so.arg = big;
    so.arg_len = 101;
    tr_pid q;
    assert_int_equal(tr_rt_spawn(rt, &exiter_b, &so, &q), TR_EMSGSIZE);
    assert_int_equal(tr_rt_send(rt, p, TR_MSG_USER_MAX + 1u, NULL, 0), TR_EINVAL);
    assert_int_equal(tr_rt_send(rt, p, TR_MSG_USER_MAX, NULL, 0), 0);
    assert_int_equal(tr_rt_send(rt, p, PING, NULL, 1), TR_EINVAL);
    /* Unknown and impossible pids. */
    assert_int_equal(tr_rt_send(rt, TR_PID_NONE, PING, NULL, 0), TR_ENOACTOR);
    tr_pid node = (tr_pid)TR_PID_NODE(p) << 52;
    assert_int_equal(tr_rt_send(rt, node | ((tr_pid)1 << 26) | 999999u, PING, NULL, 0), TR_ENOACTOR);
    assert_int_equal(tr_rt_send(rt, node | ((tr_pid)1 << 26) | 0x3ffffffu, PING, NULL, 0), TR_ENOACTOR);
    assert_int_equal(tr_rt_send(rt, UINT64_MAX, PING, NULL, 0), TR_ENOACTOR);
    assert_int_equal(tr_rt_send(rt, p + ((tr_pid)1 << 26), PING, NULL, 0), TR_ENOACTOR); /* even gen */
    assert_int_equal(tr_rt_send(rt, p + ((tr_pid)2 << 26), PING, NULL, 0), TR_ENOACTOR); /* future */
    assert_int_equal(tr_rt_send(rt, p ^ ((tr_pid)1 << 52), PING, NULL, 0), TR_ENOACTOR); /* other node */
    assert_int_equal(tr_signal_exit(rt, TR_PID_NONE, TR_EXIT_KILLED), TR_ENOACTOR);
    assert_int_equal(tr_signal_exit(rt, p, TR_EXIT_NORMAL), TR_EINVAL);
    assert_int_equal(tr_signal_exit(rt, p, TR_EXIT_ERROR), TR_EINVAL);
    assert_int_equal(tr_rt_spawn(rt, NULL, NULL, &q), TR_EINVAL);
    assert_int_equal(tr_rt_spawn(rt, &exiter_b, NULL, NULL), TR_EINVAL);
    /* A dead pid, once it is known dead. */
    assert_int_equal(tr_rt_send(rt, p, DO_NORMAL, NULL, 0), 0);
    TR_WAIT_GONE(rt, p, PING);
    assert_int_equal(tr_signal_exit(rt, p, TR_EXIT_KILLED), TR_ENOACTOR);
    /* The slot is reused: the old pid stays dead. */
    assert_int_equal(tr_rt_spawn(rt, &exiter_b, NULL, &q), 0);
    assert_int_equal(tr_rt_send(rt, p, PING, NULL, 0), TR_ENOACTOR);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- the tree: children first, newest first ----------------------------------- */

static tr_pid order[16];
static _Atomic int norder;

static void record_terminate(tr_actor *self, void *state, const tr_exit_reason *r)
{
    (void)state;
    (void)r;
    pthread_mutex_lock(&mu); /* terminates on several loops at once */
    int i = atomic_load(&norder);
    if (i < 16)
        order[i] = tr_self(self);
    atomic_store(&norder, i + 1);
    pthread_mutex_unlock(&mu);
    tr_pid x;
    /* An exiting actor spawns nothing: that child would be an orphan. */
    TR_CHECK_EQ(tr_spawn(self, &cell_b, NULL, &x), TR_ESTOPPED);
}

static const tr_behavior leaf_b = {.name = "leaf", .receive = cell_receive,
                                   .terminate = record_terminate};

typedef struct family {
    tr_pid kids[3];
} family;

static int family_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    family *f = state;
    for (int i = 0; i < 3; i++)
        TR_CHECK_EQ(tr_spawn(self, &leaf_b, NULL, &f->kids[i]), 0);
    return 0;
}

static int family_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    family *f = state;
    if (msg->type == ASK)
        return tr_reply(self, msg, ASK, f, sizeof *f);
    return tr_exit(self, TR_EXIT_NORMAL);
}

static const tr_behavior family_b = {.name = "family", .state_size = sizeof(family),
                                     .init = family_init, .receive = family_receive,
                                     .terminate = record_terminate};

static void test_children_stop_first_newest_first(void **state)
{
    (void)state;
    atomic_store(&norder, 0);
    tr_runtime *rt = tr_test_runtime(2, 0);
    tr_pid fam;
    assert_int_equal(tr_rt_spawn(rt, &family_b, NULL, &fam), 0);
    family f;
    tr_test_ask(rt, fam, ASK, NULL, 0, &f, sizeof f);
    assert_int_equal(tr_rt_send(rt, fam, CMD, NULL, 0), 0);
    TR_WAIT_UNTIL(atomic_load(&norder) == 4);
    assert_int_equal(order[0], f.kids[2]);
    assert_int_equal(order[1], f.kids[1]);
    assert_int_equal(order[2], f.kids[0]);
    assert_int_equal(order[3], fam);
    for (int i = 0; i < 3; i++)
        assert_int_equal(tr_rt_send(rt, f.kids[i], PING, NULL, 0), TR_ENOACTOR);
    assert_int_equal(tr_runtime_free(rt), 0);
}

static void test_runtime_stop_runs_every_terminate(void **state)
{
    (void)state;
    atomic_store(&norder, 0);
    tr_runtime *rt = tr_test_runtime(2, 0);
    tr_pid fams[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(tr_rt_spawn(rt, &family_b, NULL, &fams[i]), 0);
    for (int i = 0; i < 3; i++)
        tr_test_ask(rt, fams[i], ASK, NULL, 0, NULL, sizeof(family));
    assert_int_equal(tr_runtime_stop(rt), 0);
    assert_int_equal(tr_runtime_wait(rt), 0);
    assert_int_equal(atomic_load(&norder), 12);
    /* Top-level families stop newest first, each after its children. */
    assert_int_equal(order[3], fams[2]);
    assert_int_equal(order[7], fams[1]);
    assert_int_equal(order[11], fams[0]);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- exit signals act ahead of queued mail ------------------------------------ */

static _Atomic int gate_open, gate_entered, gate_handled;
static _Atomic int gate_kind = -1;

static int gated_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    (void)msg;
    if (atomic_fetch_add(&gate_handled, 1) == 0) {
        atomic_store(&gate_entered, 1);
        while (!atomic_load(&gate_open))
            sched_yield(); /* hold the loop until everything is queued */
    }
    return 0;
}

static void gated_terminate(tr_actor *self, void *state, const tr_exit_reason *r)
{
    (void)self;
    (void)state;
    atomic_store(&gate_kind, (int)r->kind);
}

static const tr_behavior gated_b = {.name = "gated", .receive = gated_receive,
                                    .terminate = gated_terminate};

static void signal_ahead_of_mail(tr_exit_kind first, tr_exit_kind second, tr_exit_kind want)
{
    atomic_store(&gate_open, 0);
    atomic_store(&gate_entered, 0);
    atomic_store(&gate_handled, 0);
    atomic_store(&gate_kind, -1);
    tr_runtime *rt = tr_test_runtime(2, TR_TEST_LOG);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &gated_b, NULL, &p), 0);
    assert_int_equal(tr_rt_send(rt, p, PING, NULL, 0), 0);
    TR_WAIT_UNTIL(atomic_load(&gate_entered));
    enum { FLOOD = 20000 };
    for (int i = 0; i < FLOOD; i++)
        assert_int_equal(tr_rt_send(rt, p, PING, &i, sizeof i), 0);
    assert_int_equal(tr_signal_exit(rt, p, first), 0);
    assert_int_equal(tr_signal_exit(rt, p, second), 0);
    atomic_store(&gate_open, 1);
    TR_WAIT_UNTIL(atomic_load(&gate_kind) != -1);
    assert_int_equal(atomic_load(&gate_kind), want);
    assert_int_equal(atomic_load(&gate_handled), 1);
    TR_WAIT_UNTIL(TR_STAT(rt, dropped) == FLOOD);
    assert_int_equal(tr_runtime_free(rt), 0);
}

static void test_signal_ahead_of_mail(void **state)
{
    (void)state;
    signal_ahead_of_mail(TR_EXIT_SHUTDOWN, TR_EXIT_SHUTDOWN, TR_EXIT_SHUTDOWN);
    signal_ahead_of_mail(TR_EXIT_SHUTDOWN, TR_EXIT_KILLED, TR_EXIT_KILLED);
    signal_ahead_of_mail(TR_EXIT_KILLED, TR_EXIT_SHUTDOWN, TR_EXIT_KILLED);
}

/* ---- payload sizes around the pool's boundaries ------------------------------- */

static _Atomic int sizes_ok;

static int size_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    const unsigned char *d = msg->data;
    TR_CHECK_EQ(msg->len, msg->type);
    for (uint32_t i = 0; i < msg->len; i++)
        TR_CHECK_EQ(d[i], (unsigned char)(i * 7 + msg->len));
    TR_CHECK(msg->len == 0 || ((uintptr_t)msg->data % 8) == 0);
    atomic_fetch_add(&sizes_ok, 1);
    return 0;
}

static const tr_behavior size_b = {.name = "sizes", .receive = size_receive};

static void test_payload_sizes(void **state)
{
    (void)state;
    atomic_store(&sizes_ok, 0);
    tr_runtime *rt = tr_test_runtime(2, 0);
    static const uint32_t sizes[] = {0, 1, 7, 8, 23, 24, 25, 56, 100, 1000, 4000, 4096,
                                     65000, 70000, 300000};
    enum { NS = sizeof sizes / sizeof sizes[0] };
    static unsigned char buf[300000];
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &size_b, NULL, &p), 0);
    for (int k = 0; k < NS; k++) {
        for (uint32_t i = 0; i < sizes[k]; i++)
            buf[i] = (unsigned char)(i * 7 + sizes[k]);
        assert_int_equal(tr_rt_send(rt, p, sizes[k], buf, sizes[k]), 0);
    }
    TR_WAIT_UNTIL(atomic_load(&sizes_ok) == NS);
    assert_int_equal(tr_runtime_free(rt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_callbacks_state_arg),
        cmocka_unit_test(test_init_failure),
        cmocka_unit_test(test_exits_and_reports),
        cmocka_unit_test(test_become_self_parent),
        cmocka_unit_test(test_other_self),
        cmocka_unit_test(test_placement),
        cmocka_unit_test(test_bad_pids_and_payloads),
        cmocka_unit_test(test_children_stop_first_newest_first),
        cmocka_unit_test(test_runtime_stop_runs_every_terminate),
        cmocka_unit_test(test_signal_ahead_of_mail),
        cmocka_unit_test(test_payload_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
