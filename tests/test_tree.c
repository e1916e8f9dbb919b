/*
 * test_tree.c — introspection: the walk visits every actor once, depth
 * first in spawn order, with names, loops and a supervisor's describe line
 * (strategy, children, restart counts); exiting actors still answer; the
 * printed form; bad input; a plain thread's call to an actor that ends
 * before it answers fails with TR_ENOACTOR instead of hanging.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "tr_test.h"

enum { DIE = 1, PING = 2, TRY_WALK = 3 };

static _Atomic int walk_rc = 1;

static int noop(const tr_actor_info *i, void *ud)
{
    (void)i;
    (void)ud;
    return 0;
}

static int worker_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    if (len)
        return tr_register(self, arg);
    return 0;
}

static int worker_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == DIE)
        return tr_exit(self, TR_EXIT_NORMAL);
    if (msg->type == TRY_WALK) /* a loop thread must not walk: it would block */
        atomic_store(&walk_rc, tr_runtime_tree(tr_runtime_of(self), noop, NULL));
    if (msg->type == PING && (msg->flags & TR_MSG_REQUEST))
        return tr_reply(self, msg, PING, NULL, 0);
    return 0;
}

static const tr_behavior worker_b = {.name = "worker", .init = worker_init,
                                     .receive = worker_receive};

/* A parent with two children, spawned in its init. */
static int family_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    tr_pid p;
    TR_CHECK_EQ(tr_spawn(self, &worker_b, NULL, &p), 0);
    TR_CHECK_EQ(tr_spawn(self, &worker_b, NULL, &p), 0);
    return 0;
}

static const tr_behavior family_b = {.name = "family", .init = family_init,
                                     .receive = worker_receive};

#define MAXV 32
typedef struct visit {
    tr_pid pid, parent;
    unsigned depth, nchildren;
    int loop, exiting;
    char behavior[32], name[64], info[TR_INFO_MAX];
} visit;

typedef struct walk {
    visit v[MAXV];
    int n;
    int stop_after;
} walk;

static int collect(const tr_actor_info *i, void *ud)
{
    walk *w = ud;
    if (w->n < MAXV) {
        visit *v = &w->v[w->n];
        v->pid = i->pid;
        v->parent = i->parent;
        v->depth = i->depth;
        v->nchildren = i->nchildren;
        v->loop = i->loop;
        v->exiting = i->exiting;
        snprintf(v->behavior, sizeof v->behavior, "%s", i->behavior);
        snprintf(v->name, sizeof v->name, "%s", i->name);
        snprintf(v->info, sizeof v->info, "%s", i->info);
    }
    w->n++;
    return w->stop_after && w->n == w->stop_after ? 7 : 0;
}

static tr_pid start_app(tr_runtime *rt)
{
    tr_child_spec kids[2];
    memset(kids, 0, sizeof kids);
    kids[0].id = "db";
    kids[0].behavior = &worker_b;
    kids[0].arg = "db";
    kids[0].arg_len = 3;
    kids[1].id = "cache";
    kids[1].behavior = &worker_b;
    kids[1].loop = TR_LOOP(1);
    tr_sup_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.strategy = TR_ONE_FOR_ONE;
    spec.max_restarts = 10;
    spec.period_ms = 60000;
    spec.children = kids;
    spec.nchildren = 2;
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.loop = TR_LOOP(0);
    tr_pid sup;
    assert_int_equal(tr_rt_sup_spawn(rt, &spec, &o, &sup), 0);
    return sup;
}

static void test_walk_order_and_details(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_pid sup = start_app(rt);
    tr_pid fam;
    assert_int_equal(tr_rt_spawn(rt, &family_b, NULL, &fam), 0);
    tr_test_ask(rt, fam, PING, NULL, 0, NULL, 0); /* init done */

    walk w;
    memset(&w, 0, sizeof w);
    assert_int_equal(tr_runtime_tree(rt, collect, &w), 0);
    assert_int_equal(w.n, 6);
    /* Depth first, each parent before its children, spawn order. */
    assert_int_equal(w.v[0].pid, sup);
    assert_int_equal(w.v[0].depth, 0);
    assert_int_equal(w.v[0].nchildren, 2);
    assert_string_equal(w.v[0].behavior, "supervisor");
    assert_non_null(strstr(w.v[0].info, "one_for_one"));
    assert_non_null(strstr(w.v[0].info, "2/2 children up"));
    assert_non_null(strstr(w.v[0].info, "db"));
    assert_non_null(strstr(w.v[0].info, "cache"));
    assert_int_equal(w.v[1].depth, 1);
    assert_int_equal(w.v[1].parent, sup);
    assert_string_equal(w.v[1].name, "db");
    assert_int_equal(w.v[1].pid, tr_whereis(rt, "db"));
    assert_int_equal(w.v[1].loop, 0);
    assert_int_equal(w.v[2].depth, 1);
    assert_int_equal(w.v[2].loop, 1);
    assert_string_equal(w.v[2].name, "");
    assert_int_equal(w.v[3].pid, fam);
    assert_int_equal(w.v[3].depth, 0);
    assert_string_equal(w.v[3].behavior, "family");
    assert_int_equal(w.v[4].parent, fam);
    assert_int_equal(w.v[5].parent, fam);
    assert_true(w.v[4].pid != w.v[5].pid);
    for (int i = 0; i < 6; i++)
        assert_int_equal(w.v[i].exiting, 0);

    /* A restart shows in the supervisor's line. */
    assert_int_equal(tr_signal_exit(rt, w.v[1].pid, TR_EXIT_KILLED), 0);
    tr_sup_child db = tr_test_wait_child(rt, sup, 0, w.v[1].pid);
    assert_int_equal(db.restarts, 1);
    tr_sup_child ch[2];
    assert_int_equal(tr_rt_sup_which_children(rt, sup, ch, 2), 2);
    memset(&w, 0, sizeof w);
    assert_int_equal(tr_runtime_tree(rt, collect, &w), 0);
    assert_non_null(strstr(w.v[0].info, "1 restarts"));
    assert_non_null(strstr(w.v[0].info, "dbx1"));
    /* The restarted db is the supervisor's newest child now, with its name. */
    assert_int_equal(w.v[2].pid, ch[0].pid);
    assert_string_equal(w.v[2].name, "db");

    /* A non-zero callback return stops the walk and is returned. */
    memset(&w, 0, sizeof w);
    w.stop_after = 2;
    assert_int_equal(tr_runtime_tree(rt, collect, &w), 7);
    assert_int_equal(w.n, 2);

    /* The printed form: one line per actor, indented by depth. */
    char *text = NULL;
    size_t text_len = 0;
    FILE *f = open_memstream(&text, &text_len);
    assert_non_null(f);
    assert_int_equal(tr_runtime_tree_print(rt, f), 0);
    fclose(f);
    int lines = 0;
    for (char *p = text; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 6);
    assert_non_null(strstr(text, " supervisor loop 0 "));
    assert_non_null(strstr(text, "\n  <"));      /* a child, indented */
    assert_non_null(strstr(text, " worker 'db' loop 0"));
    free(text);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- an exiting actor still answers -------------------------------------------------- */

static int lingerer_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return tr_trap_exits(self, 1); /* its parent's shutdown becomes a message */
}

static const tr_behavior lingerer_b = {.name = "lingerer", .init = lingerer_init,
                                       .receive = worker_receive};

static int keeper_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.shutdown_ms = TR_INFINITE;
    o.loop = TR_LOOP(1);
    tr_pid p;
    return tr_spawn(self, &lingerer_b, &o, &p);
}

static const tr_behavior keeper_b = {.name = "keeper", .init = keeper_init,
                                     .receive = worker_receive};

static int find_exiting(const tr_actor_info *i, void *ud)
{
    (void)ud;
    return i->exiting ? 1 : 0;
}

static void test_exiting_actor_answers(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.loop = TR_LOOP(0);
    tr_pid keeper;
    assert_int_equal(tr_rt_spawn(rt, &keeper_b, &o, &keeper), 0);
    walk w;
    memset(&w, 0, sizeof w);
    TR_WAIT_UNTIL((memset(&w, 0, sizeof w), tr_runtime_tree(rt, collect, &w) == 0 && w.n == 2));
    tr_pid lingerer = w.v[1].pid;
    assert_int_equal(tr_signal_exit(rt, keeper, TR_EXIT_SHUTDOWN), 0);
    /* The keeper waits for a child that ignores the shutdown. */
    TR_WAIT_UNTIL(tr_runtime_tree(rt, find_exiting, NULL) == 1);
    memset(&w, 0, sizeof w);
    assert_int_equal(tr_runtime_tree(rt, collect, &w), 0);
    assert_int_equal(w.n, 2);
    assert_int_equal(w.v[0].pid, keeper);
    assert_int_equal(w.v[0].exiting, 1);
    assert_int_equal(w.v[1].pid, lingerer);
    assert_int_equal(tr_signal_exit(rt, lingerer, TR_EXIT_KILLED), 0);
    TR_WAIT_GONE(rt, keeper, PING);
    memset(&w, 0, sizeof w);
    assert_int_equal(tr_runtime_tree(rt, collect, &w), 0);
    assert_int_equal(w.n, 0);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- bad input, and calls to actors that end first -------------------------------------- */

static void test_bad_input(void **state)
{
    (void)state;
    tr_runtime_options o = tr_test_options(1, TR_TEST_QUIET);
    tr_runtime *rt = tr_test_runtime_unstarted(&o);
    assert_int_equal(tr_runtime_tree(rt, noop, NULL), TR_ENOTSTARTED);
    assert_int_equal(tr_runtime_start(rt), 0);
    assert_int_equal(tr_runtime_tree(NULL, noop, NULL), TR_EINVAL);
    assert_int_equal(tr_runtime_tree(rt, NULL, NULL), TR_EINVAL);
    assert_int_equal(tr_runtime_tree_print(rt, NULL), TR_EINVAL);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &worker_b, NULL, &p), 0);
    assert_int_equal(tr_rt_send(rt, p, TRY_WALK, NULL, 0), 0);
    TR_WAIT_UNTIL(atomic_load(&walk_rc) != 1);
    assert_int_equal(atomic_load(&walk_rc), TR_EWRONGTHREAD);
    /* A call queued behind the actor's exit fails instead of hanging. */
    for (int i = 0; i < 50; i++) {
        assert_int_equal(tr_rt_spawn(rt, &worker_b, NULL, &p), 0);
        assert_int_equal(tr_rt_send(rt, p, DIE, NULL, 0), 0);
        int rc = tr_test_call_rc(rt, p, PING, NULL, 0, TR_INFINITE);
        assert_true(rc == TR_EEXITED || rc == TR_ENOACTOR); /* queued, or sent after */
    }
    assert_int_equal(tr_runtime_stop(rt), 0);
    assert_int_equal(tr_runtime_wait(rt), 0);
    assert_int_equal(tr_runtime_tree(rt, noop, NULL), TR_ESTOPPED);
    assert_int_equal(tr_runtime_free(rt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walk_order_and_details),
        cmocka_unit_test(test_exiting_actor_answers),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
