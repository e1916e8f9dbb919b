/*
 * test_hostile_rt.c — the runtime against hostile or unlucky input (the
 * hardening issue's runtime findings), one test per class of bug:
 *
 *  - sizes: a state_size, a spawn argument or a child spec's argument near
 *    SIZE_MAX is refused at the call, and the pool never wraps a size into
 *    a small block (it once memset ~SIZE_MAX bytes of a 64-byte one);
 *  - the tree walk is iterative: a 16,000-deep chain of actors is walked
 *    (and reports its depth) and stopped;
 *  - the runtime's own threads may not free it: tr_runtime_free from a
 *    worker job is TR_EWRONGTHREAD, as from a loop;
 *  - a failed tr_runtime_start undoes everything it started (no thread is
 *    left running, nothing ran), and a retry then works;
 *  - max_actors counts live actors, runtime-wide, whatever loops they
 *    lived on before.
 *
 * `test_hostile_rt NAME` runs only the tests whose name matches NAME (a
 * cmocka filter pattern), so one can be run on its own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "tr_test.h"

/* Internal: the pool and the message header (the floor under every size). */
#include "core.h"

enum { PING = 1, DIE = 2 };

static int idle_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == DIE)
        return tr_exit(self, TR_EXIT_NORMAL);
    if (msg->type == PING && (msg->flags & TR_MSG_REQUEST))
        return tr_reply(self, msg, PING, NULL, 0);
    return 0;
}

static const tr_behavior idle_b = {.name = "idle", .receive = idle_receive};

/* ---- 3. sizes ------------------------------------------------------------------------ */

/* The pool refuses what its arithmetic cannot hold, on loop pools and on
 * plain threads (no pool) alike; the message header's addition too. */
static void test_pool_refuses_wrapping_sizes(void **state)
{
    (void)state;
    tr__pool p, *peers[1] = {&p};
    assert_int_equal(tr__pool_init(&p, 0, peers, 1), 0);
    const size_t huge[] = {SIZE_MAX, SIZE_MAX - 7, SIZE_MAX - 8, SIZE_MAX - 64,
                           TR__POOL_ALLOC_MAX + 1, (size_t)PTRDIFF_MAX + 1};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        assert_int_equal(tr__pool_class_of(huge[i]), TR__POOL_CLASSES);
        assert_null(tr__pool_alloc(&p, huge[i]));
        assert_null(tr__pool_alloc(NULL, huge[i]));
        assert_null(tr__msg_new(&p, TR__MSG_USER, TR_PID_NONE, 0, huge[i]));
        assert_null(tr__msg_new(NULL, TR__MSG_USER, TR_PID_NONE, 0, huge[i]));
    }
    /* The boundary between the largest class and malloc is unchanged. */
    size_t top = ((size_t)1 << (TR__POOL_MIN_SHIFT + TR__POOL_CLASSES - 1)) - 16;
    assert_int_equal(tr__pool_class_of(top), TR__POOL_CLASSES - 1);
    assert_int_equal(tr__pool_class_of(top + 1), TR__POOL_CLASSES);
    void *b = tr__pool_alloc(&p, top);
    assert_non_null(b);
    memset(b, 0xa5, top);
    tr__pool_free(&p, b);
    tr__pool_destroy(&p);
}

static int spawn_rc = 1;
static size_t spawn_state_size;

/* Spawns, from its init, a child whose state is spawn_state_size bytes. */
static int spawner_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    static tr_behavior big; /* written before the spawn, read by it */
    big = (tr_behavior){.name = "big", .receive = idle_receive,
                        .state_size = spawn_state_size};
    tr_pid p;
    __atomic_store_n(&spawn_rc, tr_spawn(self, &big, NULL, &p), __ATOMIC_SEQ_CST);
    return 0;
}

static const tr_behavior spawner_b = {.name = "spawner", .init = spawner_init,
                                      .receive = idle_receive};

/* Zeroed state of a size beyond the pool's classes: allocated and usable. */
static int big_state_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    (void)arg;
    (void)len;
    const unsigned char *s = state;
    for (size_t i = 0; i < ((size_t)1 << 20); i += 4096)
        TR_CHECK_EQ(s[i], 0);
    return 0;
}

static const tr_behavior big_state_b = {.name = "bigstate", .state_size = (size_t)1 << 20,
                                        .init = big_state_init, .receive = idle_receive};

/* A state_size the pool cannot be asked for is TR_EINVAL at every spawn,
 * from a plain thread, from an actor, and in a supervisor's child spec;
 * nothing is spawned. (Before: the spawn succeeded, and the child's loop
 * wrapped the size to a 64-byte block and memset SIZE_MAX bytes.) */
static void test_state_size_refused(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, TR_TEST_LOG_ERRORS);
    const size_t bad[] = {SIZE_MAX, SIZE_MAX - 7, SIZE_MAX - 64, TR_STATE_SIZE_MAX + 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tr_behavior b = {.name = "huge", .receive = idle_receive, .state_size = bad[i]};
        tr_pid p = TR_PID_NONE;
        assert_int_equal(tr_rt_spawn(rt, &b, NULL, &p), TR_EINVAL);
        assert_int_equal(p, TR_PID_NONE);

        spawn_state_size = bad[i];
        __atomic_store_n(&spawn_rc, 1, __ATOMIC_SEQ_CST);
        tr_pid sp = tr_test_spawn(rt, &spawner_b, TR_LOOP_DEFAULT, NULL, 0);
        TR_WAIT_UNTIL(__atomic_load_n(&spawn_rc, __ATOMIC_SEQ_CST) != 1);
        assert_int_equal(__atomic_load_n(&spawn_rc, __ATOMIC_SEQ_CST), TR_EINVAL);
        tr_test_ask(rt, sp, PING, NULL, 0, NULL, 0); /* the spawner lives on */

        tr_child_spec kid;
        tr_child_spec_init(&kid);
        kid.id = "huge";
        kid.behavior = &b;
        tr_sup_spec spec;
        tr_sup_spec_init(&spec);
        spec.children = &kid;
        spec.nchildren = 1;
        tr_pid sup = TR_PID_NONE;
        assert_int_equal(tr_rt_sup_spawn(rt, &spec, NULL, &sup), TR_EINVAL);
        assert_int_equal(sup, TR_PID_NONE);
    }
    /* A large state that is allowed works, zeroed. */
    tr_pid big = tr_test_spawn(rt, &big_state_b, TR_LOOP_DEFAULT, NULL, 0);
    tr_test_ask(rt, big, PING, NULL, 0, NULL, 0);
    assert_int_equal(tr_runtime_free(rt), 0);
    assert_false(tr_test_has_log("abnormally"));
}

/* A child spec's argument length near SIZE_MAX is refused by the spec
 * check with TR_EMSGSIZE, as a spawn argument is: its flattened copy's size
 * would wrap. (Before: the sum wrapped to a small malloc, and the copy
 * wrote past it.) */
static void test_argument_sizes_refused(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(1);
    tr_pid idle = tr_test_spawn(rt, &idle_b, TR_LOOP_DEFAULT, NULL, 0);
    static const char arg[8] = "x";
    const size_t bad[] = {SIZE_MAX, SIZE_MAX - sizeof(tr_sup_spec), ((size_t)1 << 20) + 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tr_child_spec kid;
        tr_child_spec_init(&kid);
        kid.id = "kid";
        kid.behavior = &idle_b;
        kid.arg = arg;
        kid.arg_len = bad[i];
        tr_sup_spec spec;
        tr_sup_spec_init(&spec);
        spec.children = &kid;
        spec.nchildren = 1;
        tr_pid sup = TR_PID_NONE;
        assert_int_equal(tr_rt_sup_spawn(rt, &spec, NULL, &sup), TR_EMSGSIZE);

        tr_spawn_opts o;
        tr_spawn_opts_init(&o);
        o.arg = arg;
        o.arg_len = bad[i];
        tr_pid p = TR_PID_NONE;
        assert_int_equal(tr_rt_spawn(rt, &idle_b, &o, &p), TR_EMSGSIZE);
        assert_int_equal(p, TR_PID_NONE);
        assert_int_equal(tr_rt_send(rt, idle, PING, arg, bad[i]), TR_EMSGSIZE);
    }
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- 4. a deep tree ------------------------------------------------------------------ */

#define CHAIN_DEPTH 16000u
static _Atomic unsigned chain_built; /* actors whose init has run */
static const tr_behavior chain_b;

/* A link of the chain: spawns the next as its child until the depth is
 * reached (the argument: links still to make below this one). */
static int chain_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    uint32_t below;
    TR_CHECK_COPY(&below, arg, len);
    if (below > 0) {
        uint32_t left = below - 1;
        tr_spawn_opts o;
        tr_spawn_opts_init(&o);
        o.arg = &left;
        o.arg_len = sizeof left;
        tr_pid p;
        TR_CHECK_EQ(tr_spawn(self, &chain_b, &o, &p), 0);
    }
    atomic_fetch_add(&chain_built, 1);
    return 0;
}

static const tr_behavior chain_b = {.name = "link", .init = chain_init, .receive = idle_receive};

typedef struct chain_walk {
    unsigned n, max_depth;
    int in_order; /* each actor one level below the one before, its parent */
    tr_pid last;
} chain_walk;

static int chain_visit(const tr_actor_info *i, void *ud)
{
    chain_walk *w = ud;
    if (i->depth != w->n || (w->n > 0 && i->parent != w->last) ||
        i->nchildren != (w->n + 1 < CHAIN_DEPTH ? 1u : 0u))
        w->in_order = 0;
    if (i->depth > w->max_depth)
        w->max_depth = i->depth;
    w->last = i->pid;
    w->n++;
    return 0;
}

/* Builds the chain (its head a top-level actor) and waits until every
 * link has run its init. */
static tr_pid build_chain(tr_runtime *rt)
{
    atomic_store(&chain_built, 0);
    uint32_t below = CHAIN_DEPTH - 1;
    tr_pid head = tr_test_spawn(rt, &chain_b, TR_LOOP(0), &below, sizeof below);
    TR_WAIT_UNTIL(atomic_load(&chain_built) == CHAIN_DEPTH);
    return head;
}

/* A chain of 16,000 actors, each the child of the one before: the walk
 * (iterative) reports every one, at its depth, in order; stopping the
 * head stops the whole chain, and so does the runtime's stop. (Before:
 * the recursive walk overflowed the stack: a crash.) */
static void test_deep_tree(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, TR_TEST_LOG_ERRORS);
    tr_pid head = build_chain(rt);
    chain_walk w = {.in_order = 1};
    assert_int_equal(tr_runtime_tree(rt, chain_visit, &w), 0);
    assert_int_equal(w.n, CHAIN_DEPTH);
    assert_int_equal(w.max_depth, CHAIN_DEPTH - 1);
    assert_true(w.in_order);
    assert_int_equal(TR_STAT(rt, actors), CHAIN_DEPTH + 1); /* and the root */

    /* Stopping the head stops the chain, deepest first. */
    assert_int_equal(tr_rt_send(rt, head, DIE, NULL, 0), 0);
    tr_down d;
    assert_int_equal(tr_rt_wait_exit(rt, head, TR_TEST_CALL_MS, &d), 0);
    assert_int_equal(d.kind, TR_EXIT_NORMAL);
    assert_int_equal(TR_STAT(rt, actors), 1); /* the root alone, once the head is */
    w = (chain_walk){.in_order = 1};
    assert_int_equal(tr_runtime_tree(rt, chain_visit, &w), 0);
    assert_int_equal(w.n, 0);

    /* Again, stopped with the runtime this time. */
    build_chain(rt);
    assert_int_equal(tr_runtime_stop(rt), 0);
    assert_int_equal(tr_runtime_wait(rt), 0);
    assert_int_equal(TR_STAT(rt, actors), 0);
    assert_int_equal(tr_runtime_free(rt), 0);
    assert_false(tr_test_has_log("abnormally"));
}

/* ---- 5. what the runtime's own threads may not do -------------------------------------- */

static _Atomic int job_free_rc = 1, job_wait_rc = 1, job_call_rc = 1;
static _Atomic int job_waiting;

/* A job that tries to free its own runtime, then checks it still works. */
static int free_job(tr_job *job, const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    tr_runtime *rt = tr_job_runtime(job);
    atomic_store(&job_free_rc, tr_runtime_free(rt));
    atomic_store(&job_call_rc, tr_test_call_rc(rt, tr_job_owner(job), PING, NULL, 0,
                                               TR_TEST_CALL_MS));
    return 0;
}

/* A job that waits for its runtime's end: allowed (the stop never waits
 * for a job), and it returns when the runtime has stopped. */
static int wait_job(tr_job *job, const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    atomic_store(&job_waiting, 1);
    atomic_store(&job_wait_rc, tr_runtime_wait(tr_job_runtime(job)));
    return 0;
}

enum { OFFLOAD_FREE = 10, OFFLOAD_WAIT = 11 };

static int offloader_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    tr_job_id id;
    if (msg->type == OFFLOAD_FREE)
        TR_CHECK_EQ(tr_offload(self, free_job, NULL, 0, &id), 0);
    else if (msg->type == OFFLOAD_WAIT)
        TR_CHECK_EQ(tr_offload(self, wait_job, NULL, 0, &id), 0);
    return idle_receive(self, state, msg);
}

static const tr_behavior offloader_b = {.name = "offloader", .receive = offloader_receive};

/* tr_runtime_free from a worker job is TR_EWRONGTHREAD, as from a loop,
 * and frees nothing: the job goes on calling into the runtime. A job may
 * wait for the runtime's end (tr_runtime_wait), and the free that stops
 * the runtime then joins it. (Before: the job's free returned 0 and the
 * worker returned into the freed runtime: ASan's use-after-free.) */
static void test_worker_may_not_free(void **state)
{
    (void)state;
    tr_runtime_options o = tr_test_options(1, TR_TEST_LOG_ERRORS);
    o.workers = 2;
    tr_runtime *rt = tr_test_runtime_opts(&o);
    tr_pid off = tr_test_spawn(rt, &offloader_b, TR_LOOP_DEFAULT, NULL, 0);
    assert_int_equal(tr_rt_send(rt, off, OFFLOAD_FREE, NULL, 0), 0);
    TR_WAIT_UNTIL(atomic_load(&job_call_rc) != 1);
    assert_int_equal(atomic_load(&job_free_rc), TR_EWRONGTHREAD);
    assert_int_equal(atomic_load(&job_call_rc), 0); /* the runtime still runs */

    assert_int_equal(tr_rt_send(rt, off, OFFLOAD_WAIT, NULL, 0), 0);
    TR_WAIT_UNTIL(atomic_load(&job_waiting));
    assert_int_equal(tr_runtime_free(rt), 0); /* stops, the job's wait ends, joins */
    assert_int_equal(atomic_load(&job_wait_rc), 0);
}

static tr_runtime *_Atomic wd_rt;
static _Atomic int wd_free_rc = 1;

/* The log callback, on the watchdog's thread when it reports a block. */
static void wd_log(void *ud, tr_log_level level, const char *line)
{
    (void)ud;
    (void)level;
    if (strstr(line, "blocked:") && atomic_load(&wd_free_rc) == 1)
        atomic_store(&wd_free_rc, tr_runtime_free(atomic_load(&wd_rt)));
}

/* Blocks its loop until the watchdog's report has been handled. */
static int blocker_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    if (msg->type == DIE) {
        uint64_t end = tr_test_wall_ns() + TR_TEST_PATIENCE_S * 1000000000ull;
        while (atomic_load(&wd_free_rc) == 1)
            TR_CHECK(tr_test_wall_ns() < end);
    }
    return idle_receive(self, state, msg);
}

static const tr_behavior blocker_b = {.name = "blocker", .receive = blocker_receive};

/* The watchdog's thread (the log callback) may not free the runtime
 * either: TR_EWRONGTHREAD. (Before: the free stopped the runtime and
 * waited for it while the loop waited for the callback: the blocked
 * handler's check aborts after the patience.) */
static void test_watchdog_may_not_free(void **state)
{
    (void)state;
    tr_runtime_options o = tr_test_options(1, 0);
    o.log = wd_log;
    o.block_budget_ms = 20; /* real time; the handler blocks until reported */
    tr_runtime *rt = tr_test_runtime_unstarted(&o);
    atomic_store(&wd_rt, rt);
    assert_int_equal(tr_runtime_start(rt), 0);
    tr_pid b = tr_test_spawn(rt, &blocker_b, TR_LOOP_DEFAULT, NULL, 0);
    assert_int_equal(tr_rt_send(rt, b, DIE, NULL, 0), 0);
    TR_WAIT_UNTIL(atomic_load(&wd_free_rc) != 1);
    assert_int_equal(atomic_load(&wd_free_rc), TR_EWRONGTHREAD);
    tr_down d;
    assert_int_equal(tr_rt_wait_exit(rt, b, TR_TEST_CALL_MS, &d), 0);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- 6. a failed start --------------------------------------------------------------- */

/*
 * The test program is linked with --wrap for libuv's thread calls
 * (CMakeLists.txt), so the static library's calls come here: a start
 * fails at a chosen thread, and every thread made is seen to be joined.
 * (A shared libtroupe resolves its calls itself: the test then sees no
 * call, and skips.)
 */
int __real_uv_thread_create(uv_thread_t *tid, uv_thread_cb entry, void *arg);
int __real_uv_thread_join(uv_thread_t *tid);
int __wrap_uv_thread_create(uv_thread_t *tid, uv_thread_cb entry, void *arg);
int __wrap_uv_thread_join(uv_thread_t *tid);

static _Atomic int thr_calls, thr_fail_at, thr_made, thr_joined;

int __wrap_uv_thread_create(uv_thread_t *tid, uv_thread_cb entry, void *arg)
{
    int n = atomic_fetch_add(&thr_calls, 1) + 1;
    if (n == atomic_load(&thr_fail_at))
        return UV_EAGAIN; /* as a thread limit would */
    int rc = __real_uv_thread_create(tid, entry, arg);
    if (rc == 0)
        atomic_fetch_add(&thr_made, 1);
    return rc;
}

int __wrap_uv_thread_join(uv_thread_t *tid)
{
    int rc = __real_uv_thread_join(tid);
    if (rc == 0)
        atomic_fetch_add(&thr_joined, 1);
    return rc;
}

static _Atomic int inits_run;

static int counted_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    (void)state;
    (void)arg;
    (void)len;
    atomic_fetch_add(&inits_run, 1);
    return 0;
}

static const tr_behavior counted_b = {.name = "counted", .init = counted_init,
                                      .receive = idle_receive};

/* A start that fails at any of its threads (2 workers, the watchdog, 2
 * loops) undoes everything: every thread it made is joined, no actor has
 * run; a retry then works, and the free joins the rest. (Before: the
 * workers and the watchdog were left running — the retry made another
 * watchdog and the first outlived the runtime — and the loops that had
 * started had run actors.) */
static void test_failed_start_undone(void **state)
{
    (void)state;
    for (int at = 1; at <= 5; at++) {
        tr_runtime_options o = tr_test_options(2, TR_TEST_LOG_ERRORS);
        o.workers = 2;
        o.block_budget_ms = TR_DEFAULT; /* with the watchdog */
        o.stop_on_signals = 1;
        tr_runtime *rt = tr_test_runtime_unstarted(&o);
        atomic_store(&inits_run, 0);
        tr_spawn_opts so;
        tr_spawn_opts_init(&so);
        tr_pid p[2];
        for (int i = 0; i < 2; i++) { /* one on each loop, before the start */
            so.loop = TR_LOOP(i);
            assert_int_equal(tr_rt_spawn(rt, &counted_b, &so, &p[i]), 0);
        }
        atomic_store(&thr_calls, 0);
        atomic_store(&thr_made, 0);
        atomic_store(&thr_joined, 0);
        atomic_store(&thr_fail_at, at);
        int rc = tr_runtime_start(rt);
        if (atomic_load(&thr_calls) == 0) {
            atomic_store(&thr_fail_at, 0);
            assert_int_equal(tr_runtime_free(rt), 0);
            skip(); /* a shared libtroupe: the wrap does not reach it */
        }
        assert_int_equal(rc, TR_ESYSTEM);
        assert_int_equal(atomic_load(&thr_calls), at); /* it stopped at the failure */
        assert_int_equal(atomic_load(&thr_made), at - 1);
        assert_int_equal(atomic_load(&thr_joined), at - 1); /* all undone */
        assert_int_equal(atomic_load(&inits_run), 0);         /* nothing ran */
        assert_int_equal(tr_runtime_stop(rt), TR_ENOTSTARTED);

        atomic_store(&thr_fail_at, 0);
        assert_int_equal(tr_runtime_start(rt), 0);
        for (int i = 0; i < 2; i++)
            tr_test_ask(rt, p[i], PING, NULL, 0, NULL, 0);
        assert_int_equal(atomic_load(&inits_run), 2);
        assert_int_equal(tr_runtime_free(rt), 0);
        assert_int_equal(atomic_load(&thr_made), atomic_load(&thr_joined));
        assert_int_equal(atomic_load(&thr_made), at - 1 + 5);
        assert_false(tr_test_has_log("abnormally"));
    }
}

/* ---- 12. max_actors ------------------------------------------------------------------ */

static int failing_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    (void)state;
    (void)arg;
    (void)len;
    return TR_EUSER(1);
}

static const tr_behavior failing_b = {.name = "failing", .init = failing_init,
                                      .receive = idle_receive};

static int spawn_on(tr_runtime *rt, const tr_behavior *b, unsigned loop, tr_pid *out)
{
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.loop = TR_LOOP(loop);
    return tr_rt_spawn(rt, b, &o, out);
}

/* Ends `p` and waits until it has: from then on its place counts free. */
static void end_actor(tr_runtime *rt, tr_pid p)
{
    assert_int_equal(tr_rt_send(rt, p, DIE, NULL, 0), 0);
    tr_down d;
    assert_int_equal(tr_rt_wait_exit(rt, p, TR_TEST_CALL_MS, &d), 0);
}

/* max_actors = 8 on 2 loops is 8 live actors (the root not counted),
 * wherever they live and whatever loops earlier ones lived on; an actor's
 * place is free as soon as its end can be seen (its DOWN, its wait).
 * (Before: a freed slot stayed bound to its loop, so the limit counted
 * slots ever made per loop: TR_ELIMIT on loop 1 with no actor alive, and
 * the root took one of the 8.) */
static void test_max_actors_counts_live(void **state)
{
    (void)state;
    tr_runtime_options o = tr_test_options(2, TR_TEST_QUIET);
    o.max_actors = 8;
    tr_runtime *rt = tr_test_runtime_opts(&o);
    tr_pid p[8], extra;
    for (int i = 0; i < 8; i++)
        assert_int_equal(spawn_on(rt, &idle_b, 0, &p[i]), 0);
    assert_int_equal(spawn_on(rt, &idle_b, 0, &extra), TR_ELIMIT);
    assert_int_equal(spawn_on(rt, &idle_b, 1, &extra), TR_ELIMIT);
    for (int i = 0; i < 8; i++)
        end_actor(rt, p[i]);

    /* Loop 0's freed slots cannot serve loop 1: the count is what limits. */
    for (int i = 0; i < 8; i++)
        assert_int_equal(spawn_on(rt, &idle_b, 1, &p[i]), 0);
    assert_int_equal(spawn_on(rt, &idle_b, 1, &extra), TR_ELIMIT);

    /* Churn across the loops at the limit: each end frees a place at once. */
    for (int r = 0; r < 40; r++) {
        int i = r % 8;
        end_actor(rt, p[i]);
        assert_int_equal(spawn_on(rt, &idle_b, (unsigned)(r % 2), &p[i]), 0);
        assert_int_equal(spawn_on(rt, &idle_b, (unsigned)(r + 1) % 2, &extra), TR_ELIMIT);
    }
    /* An actor that fails in init gives its place back too. */
    end_actor(rt, p[0]);
    tr_pid f;
    assert_int_equal(spawn_on(rt, &failing_b, 0, &f), 0);
    tr_down d;
    assert_int_equal(tr_rt_wait_exit(rt, f, TR_TEST_CALL_MS, &d), 0);
    /* Its reason, or TR_ENOACTOR if it had ended before the wait began. */
    assert_int_equal(d.kind, TR_EXIT_ERROR);
    assert_true(d.code == TR_EUSER(1) || d.code == TR_ENOACTOR);
    assert_int_equal(spawn_on(rt, &idle_b, 1, &p[0]), 0);
    assert_int_equal(spawn_on(rt, &idle_b, 0, &extra), TR_ELIMIT);
    for (int i = 0; i < 8; i++)
        tr_test_ask(rt, p[i], PING, NULL, 0, NULL, 0);
    assert_int_equal(TR_STAT(rt, actors), 9);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* The smallest limit: one actor besides the root. */
static void test_max_actors_one(void **state)
{
    (void)state;
    tr_runtime_options o = tr_test_options(2, TR_TEST_QUIET);
    o.max_actors = 1;
    tr_runtime *rt = tr_test_runtime_opts(&o);
    for (int r = 0; r < 6; r++) {
        tr_pid p, extra;
        assert_int_equal(spawn_on(rt, &idle_b, (unsigned)(r % 2), &p), 0);
        assert_int_equal(spawn_on(rt, &idle_b, (unsigned)(r + 1) % 2, &extra), TR_ELIMIT);
        end_actor(rt, p);
    }
    assert_int_equal(tr_runtime_free(rt), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_refuses_wrapping_sizes),
        cmocka_unit_test(test_state_size_refused),
        cmocka_unit_test(test_argument_sizes_refused),
        cmocka_unit_test(test_deep_tree),
        cmocka_unit_test(test_worker_may_not_free),
        cmocka_unit_test(test_watchdog_may_not_free),
        cmocka_unit_test(test_failed_start_undone),
        cmocka_unit_test(test_max_actors_counts_live),
        cmocka_unit_test(test_max_actors_one),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
