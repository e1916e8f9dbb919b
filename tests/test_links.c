/*
 * test_links.c — monitors (DOWN with reason and result, at once for the
 * dead, none after demonitor), links (abnormal exits propagate, normal ones
 * do not), trapping exits (signals become TR_MSG_EXIT messages; a direct
 * kill cannot be trapped), a parent's shutdown timeout killing a child
 * that traps and lingers (virtual clock), and signals that arrive before
 * the target's init has run.
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

enum { MONITOR = 1, DEMONITOR, LINK, UNLINK, TRAP, DIE_NORMAL, DIE_ERROR, DIE_RESULT,
       ASK, SPAWN_LINGERER, PROBE };

/* What a watcher saw; written on its loop, read by main after ASK. */
typedef struct seen {
    int downs, exits;
    tr_ref ref;
    tr_down last;     /* last DOWN or EXIT */
    char result[32];
    int rc;           /* last call's return code */
} seen;

static _Atomic int terminated_kind = -1;
static _Atomic int terminated_code;

static int watcher_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    seen *s = state;
    tr_pid target = TR_PID_NONE;
    if (msg->len >= sizeof target && msg->type < 100)
        memcpy(&target, msg->data, sizeof target);
    switch (msg->type) {
    case MONITOR:
        s->rc = tr_monitor(self, target, &s->ref);
        return 0;
    case DEMONITOR:
        s->rc = tr_demonitor(self, s->ref);
        return 0;
    case LINK:
        s->rc = tr_link(self, target);
        return 0;
    case UNLINK:
        s->rc = tr_unlink(self, target);
        return 0;
    case TRAP:
        return tr_trap_exits(self, 1);
    case DIE_NORMAL:
        return tr_exit(self, TR_EXIT_NORMAL);
    case DIE_ERROR:
        return tr_exit_error(self, -99, "broken on purpose");
    case DIE_RESULT:
        return tr_exit_result(self, "forty-two", 10);
    case ASK:
        return tr_reply(self, msg, ASK, s, sizeof *s);
    case TR_MSG_DOWN: {
        TR_CHECK(msg->len >= sizeof(tr_down));
        memcpy(&s->last, msg->data, sizeof s->last);
        TR_CHECK_EQ(msg->ref, s->ref);
        TR_CHECK_EQ(msg->from, s->last.pid);
        TR_CHECK_EQ(msg->len, sizeof(tr_down) + s->last.result_len);
        if (s->last.result_len) {
            TR_CHECK(s->last.result_len <= sizeof s->result);
            memcpy(s->result, tr_down_result(msg->data), s->last.result_len);
        }
        s->downs++;
        return 0;
    }
    case TR_MSG_EXIT:
        TR_CHECK_COPY(&s->last, msg->data, msg->len);
        TR_CHECK_EQ(msg->from, s->last.pid);
        s->exits++;
        return 0;
    }
    return 0;
}

static void watcher_terminate(tr_actor *self, void *state, const tr_exit_reason *r)
{
    (void)self;
    (void)state;
    atomic_store(&terminated_code, r->code);
    atomic_store(&terminated_kind, (int)r->kind);
}

static const tr_behavior watcher_b = {.name = "watcher", .state_size = sizeof(seen),
                                      .receive = watcher_receive,
                                      .terminate = watcher_terminate};

static seen ask(tr_runtime *rt, tr_pid p)
{
    seen s;
    tr_test_ask(rt, p, ASK, NULL, 0, &s, sizeof s);
    return s;
}

static void cmd(tr_runtime *rt, tr_pid to, uint32_t type, tr_pid arg)
{
    assert_int_equal(tr_rt_send(rt, to, type, &arg, sizeof arg), 0);
}

static tr_pid spawn_on(tr_runtime *rt, int loop)
{
    return tr_test_spawn(rt, &watcher_b, TR_LOOP(loop), NULL, 0);
}

/* ---- monitors ------------------------------------------------------------------- */

static void test_monitor_result_and_reasons(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_pid w = spawn_on(rt, 0), t1 = spawn_on(rt, 1), t2 = spawn_on(rt, 0);
    /* A normal exit with a result. */
    cmd(rt, w, MONITOR, t1);
    seen s = ask(rt, w);
    assert_int_equal(s.rc, 0);
    cmd(rt, t1, DIE_RESULT, 0);
    TR_WAIT_UNTIL(ask(rt, w).downs == 1);
    s = ask(rt, w);
    assert_int_equal(s.last.pid, t1);
    assert_int_equal(s.last.kind, TR_EXIT_NORMAL);
    assert_int_equal(s.last.result_len, 10);
    assert_string_equal(s.result, "forty-two");
    /* An error exit. */
    cmd(rt, w, MONITOR, t2);
    ask(rt, w); /* the MONITOR is in t2's mailbox before the DIE below */
    cmd(rt, t2, DIE_ERROR, 0);
    TR_WAIT_UNTIL(ask(rt, w).downs == 2);
    s = ask(rt, w);
    assert_int_equal(s.last.pid, t2);
    assert_int_equal(s.last.kind, TR_EXIT_ERROR);
    assert_int_equal(s.last.code, -99);
    assert_string_equal(s.last.text, "broken on purpose");
    assert_int_equal(s.last.result_len, 0);
    /* Already dead: the DOWN comes at once, as noproc. */
    cmd(rt, w, MONITOR, t1);
    TR_WAIT_UNTIL(ask(rt, w).downs == 3);
    s = ask(rt, w);
    assert_int_equal(s.rc, 0);
    assert_int_equal(s.last.code, TR_ENOACTOR);
    assert_string_equal(s.last.text, "noproc");
    assert_int_equal(tr_runtime_free(rt), 0);
}

static void test_demonitor(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_pid w = spawn_on(rt, 0), t = spawn_on(rt, 1);
    cmd(rt, w, MONITOR, t);
    cmd(rt, w, DEMONITOR, 0);
    assert_int_equal(ask(rt, w).rc, 0);
    cmd(rt, w, DEMONITOR, 0);
    assert_int_equal(ask(rt, w).rc, TR_ENOTFOUND);
    cmd(rt, t, DIE_ERROR, 0);
    TR_WAIT_GONE(rt, t, PROBE);
    /* A probe through the watcher's loop after the target's exit: no DOWN. */
    assert_int_equal(ask(rt, w).downs, 0);
    assert_int_equal(ask(rt, w).downs, 0);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- links ------------------------------------------------------------------------ */

static void test_link_propagates_abnormal_exit(void **state)
{
    (void)state;
    atomic_store(&terminated_kind, -1);
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_pid a = spawn_on(rt, 0), b = spawn_on(rt, 1), obs = spawn_on(rt, 0);
    cmd(rt, a, LINK, b);
    assert_int_equal(ask(rt, a).rc, 0);
    cmd(rt, obs, MONITOR, a);
    ask(rt, obs);
    cmd(rt, b, DIE_ERROR, 0);
    /* a dies with b's reason. */
    TR_WAIT_UNTIL(ask(rt, obs).downs == 1);
    seen s = ask(rt, obs);
    assert_int_equal(s.last.pid, a);
    assert_int_equal(s.last.kind, TR_EXIT_ERROR);
    assert_int_equal(s.last.code, -99);
    assert_string_equal(s.last.text, "broken on purpose");
    assert_int_equal(tr_runtime_free(rt), 0);
}

static void test_link_normal_exit_does_not_propagate(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_pid a = spawn_on(rt, 0), b = spawn_on(rt, 1);
    cmd(rt, a, LINK, b);
    ask(rt, a);
    cmd(rt, b, DIE_NORMAL, 0);
    TR_WAIT_GONE(rt, b, PROBE);
    /* a is alive and its link to b is gone (the exit signal removed it). */
    ask(rt, a);
    cmd(rt, a, UNLINK, b);
    assert_int_equal(ask(rt, a).rc, TR_ENOTFOUND);
    assert_int_equal(tr_runtime_free(rt), 0);
}

static void test_link_bad_input_and_unlink(void **state)
{
    (void)state;
    atomic_store(&terminated_kind, -1);
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_pid a = spawn_on(rt, 0), b = spawn_on(rt, 1), dead = spawn_on(rt, 1);
    cmd(rt, dead, DIE_NORMAL, 0);
    TR_WAIT_GONE(rt, dead, PROBE);
    cmd(rt, a, LINK, dead);
    assert_int_equal(ask(rt, a).rc, TR_ENOACTOR);
    cmd(rt, a, LINK, a);
    assert_int_equal(ask(rt, a).rc, TR_EINVAL);
    cmd(rt, a, LINK, b);
    assert_int_equal(ask(rt, a).rc, 0);
    cmd(rt, a, LINK, b); /* twice: a no-op */
    assert_int_equal(ask(rt, a).rc, 0);
    cmd(rt, a, UNLINK, b);
    assert_int_equal(ask(rt, a).rc, 0);
    /* Unlinked both ways: b's failure leaves a alone. */
    ask(rt, b);
    cmd(rt, b, DIE_ERROR, 0);
    TR_WAIT_GONE(rt, b, PROBE);
    assert_int_equal(ask(rt, a).rc, 0);
    assert_int_equal(tr_link(NULL, b), TR_EINVAL);
    assert_int_equal(tr_unlink(NULL, b), TR_EINVAL);
    tr_ref ref;
    assert_int_equal(tr_monitor(NULL, b, &ref), TR_EINVAL);
    assert_int_equal(tr_demonitor(NULL, 1), TR_EINVAL);
    assert_int_equal(tr_trap_exits(NULL, 1), TR_EINVAL);
    assert_int_equal(tr_exit_result(NULL, NULL, 0), TR_EINVAL);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- trapping ------------------------------------------------------------------- */

static void test_trap_exits(void **state)
{
    (void)state;
    atomic_store(&terminated_kind, -1);
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_pid a = spawn_on(rt, 0), b = spawn_on(rt, 1), c = spawn_on(rt, 1);
    cmd(rt, a, TRAP, 0);
    cmd(rt, a, LINK, b);
    cmd(rt, a, LINK, c);
    ask(rt, a);
    /* A linked failure arrives as a message. */
    cmd(rt, b, DIE_ERROR, 0);
    TR_WAIT_UNTIL(ask(rt, a).exits == 1);
    seen s = ask(rt, a);
    assert_int_equal(s.last.pid, b);
    assert_int_equal(s.last.kind, TR_EXIT_ERROR);
    assert_int_equal(s.last.code, -99);
    /* So does a linked normal exit, for a trapping actor. */
    cmd(rt, c, DIE_NORMAL, 0);
    TR_WAIT_UNTIL(ask(rt, a).exits == 2);
    assert_int_equal(ask(rt, a).last.kind, TR_EXIT_NORMAL);
    /* A shutdown signal is trappable too... */
    assert_int_equal(tr_signal_exit(rt, a, TR_EXIT_SHUTDOWN), 0);
    TR_WAIT_UNTIL(ask(rt, a).exits == 3);
    assert_int_equal(ask(rt, a).last.kind, TR_EXIT_SHUTDOWN);
    /* ...a direct kill is not. */
    assert_int_equal(tr_signal_exit(rt, a, TR_EXIT_KILLED), 0);
    TR_WAIT_UNTIL(atomic_load(&terminated_kind) == TR_EXIT_KILLED);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- a parent's shutdown timeout ---------------------------------------------------- */

static _Atomic int lingerer_kind = -1;
static _Atomic int parent_done;

static int lingerer_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return tr_trap_exits(self, 1); /* ignores its shutdown */
}

static void lingerer_terminate(tr_actor *self, void *state, const tr_exit_reason *r)
{
    (void)self;
    (void)state;
    atomic_store(&lingerer_kind, (int)r->kind);
}

static const tr_behavior lingerer_b = {.name = "lingerer", .state_size = sizeof(seen),
                                       .init = lingerer_init, .receive = watcher_receive,
                                       .terminate = lingerer_terminate};

static int parent_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == SPAWN_LINGERER) {
        tr_spawn_opts o;
        tr_spawn_opts_init(&o);
        o.shutdown_ms = 250;
        tr_pid c;
        TR_CHECK_EQ(tr_spawn(self, &lingerer_b, &o, &c), 0);
        return tr_reply(self, msg, SPAWN_LINGERER, &c, sizeof c);
    }
    if (msg->type == DIE_NORMAL)
        return tr_exit(self, TR_EXIT_NORMAL);
    return 0;
}

static void parent_terminate(tr_actor *self, void *state, const tr_exit_reason *r)
{
    (void)self;
    (void)state;
    (void)r;
    TR_CHECK_EQ(atomic_load(&lingerer_kind), TR_EXIT_KILLED); /* children first */
    atomic_store(&parent_done, 1);
}

static const tr_behavior parent_b = {.name = "parent", .receive = parent_receive,
                                     .terminate = parent_terminate};

static void test_shutdown_timeout_kills(void **state)
{
    (void)state;
    atomic_store(&lingerer_kind, -1);
    atomic_store(&parent_done, 0);
    tr_runtime *rt = tr_test_kit(2, TR_TEST_QUIET, 0);
    uint64_t t0 = tr_now(rt);
    tr_pid parent;
    assert_int_equal(tr_rt_spawn(rt, &parent_b, NULL, &parent), 0);
    tr_pid child;
    tr_test_ask(rt, parent, SPAWN_LINGERER, NULL, 0, &child, sizeof child);
    ask(rt, child); /* its init has run: it traps */
    assert_int_equal(tr_rt_send(rt, parent, DIE_NORMAL, NULL, 0), 0);
    /* The child got its shutdown as a message and lingers. */
    assert_int_equal(tr_test_settle(rt), 0);
    assert_int_equal(ask(rt, child).exits, 1);
    assert_int_equal(ask(rt, child).last.kind, TR_EXIT_SHUTDOWN);
    tr_test_advance_to(rt, t0 + 249 * 1000000ull);
    assert_int_equal(ask(rt, child).exits, 1); /* still there */
    assert_int_equal(atomic_load(&parent_done), 0);
    /* Its shutdown time is up: killed; then the parent ends. */
    tr_test_advance_to(rt, t0 + 250 * 1000000ull);
    assert_int_equal(atomic_load(&parent_done), 1);
    assert_int_equal(atomic_load(&lingerer_kind), TR_EXIT_KILLED);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- start acknowledgement ------------------------------------------------------ */

static int bad_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    (void)state;
    (void)arg;
    (void)len;
    return -7;
}

static const tr_behavior bad_b = {.name = "bad", .init = bad_init,
                                  .receive = watcher_receive};

typedef struct starter {
    tr_pid good, bad;
    int started_good, started_other, downs_bad;
} starter;

static int starter_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    starter *st = state;
    switch (msg->type) {
    case PROBE: {
        tr_spawn_opts o;
        tr_spawn_opts_init(&o);
        o.notify_started = 1;
        o.loop = TR_LOOP(1);
        TR_CHECK_EQ(tr_spawn(self, &watcher_b, &o, &st->good), 0);
        TR_CHECK_EQ(tr_spawn(self, &bad_b, &o, &st->bad), 0);
        tr_ref ref;
        return tr_monitor(self, st->bad, &ref);
    }
    case TR_MSG_STARTED:
        if (msg->from == st->good)
            st->started_good++;
        else
            st->started_other++;
        return 0;
    case TR_MSG_DOWN:
        st->downs_bad += msg->from == st->bad;
        return 0;
    case ASK:
        return tr_reply(self, msg, ASK, st, sizeof *st);
    }
    return 0;
}

static const tr_behavior starter_b = {.name = "starter", .state_size = sizeof(starter),
                                      .receive = starter_receive};

static starter ask_starter(tr_runtime *rt, tr_pid p)
{
    starter st;
    tr_test_ask(rt, p, ASK, NULL, 0, &st, sizeof st);
    return st;
}

static void test_notify_started(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_pid p = spawn_on(rt, 0);
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    assert_int_equal(o.notify_started, 0);
    assert_int_equal(tr_rt_spawn(rt, &starter_b, &o, &p), 0);
    assert_int_equal(tr_rt_send(rt, p, PROBE, NULL, 0), 0);
    TR_WAIT_UNTIL(ask_starter(rt, p).started_good == 1 && ask_starter(rt, p).downs_bad == 1);
    starter st = ask_starter(rt, p);
    assert_int_equal(st.started_other, 0); /* no STARTED after a failed init */
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- spawn_monitor: monitored from birth ---------------------------------------------- */

/* A child that ends in its init: with a result (arg 0) or an error (arg 1). */
static int brief_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    TR_CHECK_EQ(len, 1);
    if (*(const char *)arg == 0)
        return tr_exit_result(self, "born-done", 10);
    return -55;
}

static const tr_behavior brief_b = {.name = "brief", .init = brief_init,
                                    .receive = watcher_receive};

typedef struct spawner {
    int rounds, good_results, good_errors, other;
    tr_ref pending[2];
} spawner;

enum { SPAWN_BRIEF = 50, SPAWNER_ASK };

static int spawner_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    spawner *s = state;
    if (msg->type == SPAWN_BRIEF) {
        for (int i = 0; i < 2; i++) {
            char how = (char)i;
            tr_spawn_opts o;
            tr_spawn_opts_init(&o);
            o.arg = &how;
            o.arg_len = 1;
            o.loop = TR_LOOP((s->rounds + i) % 2); /* same loop and the other one */
            tr_pid p;
            TR_CHECK_EQ(tr_spawn_monitor(self, &brief_b, &o, &p, &s->pending[i]), 0);
        }
        s->rounds++;
        return 0;
    }
    if (msg->type == SPAWNER_ASK)
        return tr_reply(self, msg, SPAWNER_ASK, s, sizeof *s);
    if (msg->type == TR_MSG_DOWN) {
        const tr_down *d = msg->data;
        if (msg->ref == s->pending[0] && d->kind == TR_EXIT_NORMAL && d->result_len == 10 &&
            memcmp(tr_down_result(d), "born-done", 10) == 0)
            s->good_results++;
        else if (msg->ref == s->pending[1] && d->kind == TR_EXIT_ERROR && d->code == -55)
            s->good_errors++;
        else
            s->other++;
    }
    return 0;
}

static const tr_behavior spawner_b = {.name = "spawner", .state_size = sizeof(spawner),
                                      .receive = spawner_receive};

static spawner ask_spawner(tr_runtime *rt, tr_pid p)
{
    spawner s;
    tr_test_ask(rt, p, SPAWNER_ASK, NULL, 0, &s, sizeof s);
    return s;
}

/* A child that ends in its init still reports its real end and result to a
 * parent that spawned it monitored — a separate tr_monitor may come too
 * late and see TR_ENOACTOR. */
static void test_spawn_monitor_sees_init_exit(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &spawner_b, NULL, &p), 0);
    for (int i = 0; i < 200; i++) {
        assert_int_equal(tr_rt_send(rt, p, SPAWN_BRIEF, NULL, 0), 0);
        TR_WAIT_UNTIL(ask_spawner(rt, p).good_results + ask_spawner(rt, p).other == i + 1 &&
                      ask_spawner(rt, p).good_errors == i + 1);
    }
    spawner s = ask_spawner(rt, p);
    assert_int_equal(s.good_results, 200);
    assert_int_equal(s.other, 0);
    assert_int_equal(tr_runtime_free(rt), 0);
}

static int bad_spawn_monitor_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    tr_pid p;
    tr_ref ref;
    TR_CHECK_EQ(tr_spawn_monitor(NULL, &brief_b, NULL, &p, &ref), TR_EINVAL);
    TR_CHECK_EQ(tr_spawn_monitor(self, &brief_b, NULL, &p, NULL), TR_EINVAL);
    TR_CHECK_EQ(tr_spawn_monitor(self, NULL, NULL, &p, &ref), TR_EINVAL);
    return tr_exit(self, TR_EXIT_NORMAL);
}

static const tr_behavior bad_spawn_monitor_b = {.name = "bad", .init = bad_spawn_monitor_init,
                                                .receive = watcher_receive,
                                                .terminate = watcher_terminate};

static void test_spawn_monitor_bad_input(void **state)
{
    (void)state;
    atomic_store(&terminated_kind, -1);
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &bad_spawn_monitor_b, NULL, &p), 0);
    TR_WAIT_UNTIL(atomic_load(&terminated_kind) == TR_EXIT_NORMAL);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- signals before init --------------------------------------------------------- */

static _Atomic int hold_open, hold_entered;

static int holder_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    (void)msg;
    atomic_store(&hold_entered, 1);
    while (!atomic_load(&hold_open))
        sched_yield(); /* holds its loop */
    return 0;
}

static const tr_behavior holder_b = {.name = "holder", .receive = holder_receive};

/* A monitor, a link and a kill that reach an actor whose INIT is still
 * queued (its loop is held) wait for it: init and terminate run, the
 * monitor sees the kill, the link carries it. */
static void test_signals_before_init(void **state)
{
    (void)state;
    atomic_store(&hold_open, 0);
    atomic_store(&hold_entered, 0);
    atomic_store(&terminated_kind, -1);
    /* A kit runtime: lw traps its shutdown and lingers its 5 s at the
     * runtime's free, on the virtual clock (the stop moves it). */
    tr_runtime *rt = tr_test_kit(2, TR_TEST_QUIET, 0);
    tr_pid w = spawn_on(rt, 1), lw = spawn_on(rt, 1);
    tr_pid holder = tr_test_spawn(rt, &holder_b, TR_LOOP(0), NULL, 0);
    assert_int_equal(tr_rt_send(rt, holder, PROBE, NULL, 0), 0);
    TR_WAIT_UNTIL(atomic_load(&hold_entered));
    tr_pid target = spawn_on(rt, 0); /* its INIT waits behind the holder */
    cmd(rt, w, MONITOR, target);
    cmd(rt, lw, TRAP, TR_PID_NONE);
    cmd(rt, lw, LINK, target);
    assert_int_equal(ask(rt, w).rc, 0); /* both records are queued now */
    assert_int_equal(ask(rt, lw).rc, 0);
    assert_int_equal(tr_signal_exit(rt, target, TR_EXIT_KILLED), 0);
    atomic_store(&hold_open, 1);
    assert_int_equal(tr_test_settle(rt), 0);
    seen s = ask(rt, w);
    assert_int_equal(s.downs, 1);
    assert_int_equal(ask(rt, lw).exits, 1);
    assert_int_equal(s.last.pid, target);
    assert_int_equal(s.last.kind, TR_EXIT_KILLED);
    seen l = ask(rt, lw);
    assert_int_equal(l.last.pid, target);
    assert_int_equal(l.last.kind, TR_EXIT_KILLED);
    assert_int_equal(atomic_load(&terminated_kind), TR_EXIT_KILLED);
    assert_int_equal(tr_runtime_free(rt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monitor_result_and_reasons),
        cmocka_unit_test(test_demonitor),
        cmocka_unit_test(test_link_propagates_abnormal_exit),
        cmocka_unit_test(test_link_normal_exit_does_not_propagate),
        cmocka_unit_test(test_link_bad_input_and_unlink),
        cmocka_unit_test(test_trap_exits),
        cmocka_unit_test(test_shutdown_timeout_kills),
        cmocka_unit_test(test_notify_started),
        cmocka_unit_test(test_spawn_monitor_sees_init_exit),
        cmocka_unit_test(test_spawn_monitor_bad_input),
        cmocka_unit_test(test_signals_before_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
