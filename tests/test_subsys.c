/*
 * test_subsys.c — the runtime's hooks for subsystems (actors/subsys.h):
 * owned-resource kinds are stopped when an actor's exit begins and
 * released when it has ended, newest registration first, once each; a
 * kind's interception consumes reserved-type mail before the handler; the
 * observer sees every dispatch and send.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "tr_test.h"
#include "subsys.h"

enum { M_PING = 1, M_QUIT };
#define T_PRIVATE 0xffff0100u /* a reserved type no one else uses */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char events[16][24];
static int nevents;

static void event(const char *what, const char *kind)
{
    pthread_mutex_lock(&mu);
    if (nevents < 16)
        snprintf(events[nevents++], sizeof events[0], "%s %s", what, kind);
    pthread_mutex_unlock(&mu);
}

static void k_stop(tr__loop *L, tr_actor *a, void **data)
{
    (void)L;
    (void)a;
    event("stop", *data);
}

static void k_release(tr__loop *L, tr_actor *a, void **data)
{
    (void)L;
    (void)a;
    event("release", *data);
}

static _Atomic int intercepted, handled_private;

static bool k_intercept(tr__loop *L, tr_actor *a, void **data, tr_msg *pub)
{
    (void)L;
    (void)a;
    (void)data;
    if (pub->type != T_PRIVATE)
        return false;
    atomic_fetch_add(&intercepted, 1);
    return true;
}

static tr__owned_kind kind_a = {.name = "a", .stop = k_stop, .release = k_release};
static tr__owned_kind kind_b = {.name = "b", .stop = k_stop, .release = k_release,
                                .intercept = k_intercept};

static int owner_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    tr__loop *L = tr__running_loop(self);
    int err = 0;
    void **a = tr__own(L, self, &kind_a, &err);
    TR_CHECK(a != NULL);
    *a = "a";
    void **b = tr__own(L, self, &kind_b, &err);
    TR_CHECK(b != NULL);
    *b = "b";
    /* Registered once: the same data slot, no second entry. */
    TR_CHECK(tr__own(L, self, &kind_a, &err) == a);
    TR_CHECK(tr__owned(self, &kind_b) == b);
    TR_CHECK(kind_a.bit != 0 && kind_b.bit != 0 && kind_a.bit != kind_b.bit);
    return 0;
}

static int owner_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == T_PRIVATE)
        atomic_fetch_add(&handled_private, 1);
    if (msg->type == M_QUIT)
        return tr_exit(self, TR_EXIT_NORMAL);
    if (msg->type == M_PING && (msg->flags & TR_MSG_REQUEST))
        return tr_reply(self, msg, M_PING, NULL, 0);
    return 0;
}

static const tr_behavior owner_b = {.name = "owner", .init = owner_init,
                                    .receive = owner_receive};

static void test_owned_kinds(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, 0);
    nevents = 0;
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &owner_b, NULL, &p), 0);
    tr_rt_reply r;
    assert_int_equal(tr_rt_call(rt, p, M_PING, NULL, 0, TR_INFINITE, &r), 0);
    /* A reserved type through the runtime's own path: kind b takes it. */
    assert_int_equal(tr__send(rt, NULL, TR_PID_NONE, p, T_PRIVATE, 0, NULL, NULL, 0, NULL,
                              NULL), 0);
    assert_int_equal(tr_rt_send(rt, p, M_QUIT, NULL, 0), 0);
    tr_down d;
    assert_int_equal(tr_rt_wait_exit(rt, p, TR_INFINITE, &d), 0);
    assert_int_equal(atomic_load(&intercepted), 1);
    assert_int_equal(atomic_load(&handled_private), 0);
    pthread_mutex_lock(&mu);
    assert_int_equal(nevents, 4);
    assert_string_equal(events[0], "stop b"); /* newest first */
    assert_string_equal(events[1], "stop a");
    assert_string_equal(events[2], "release b");
    assert_string_equal(events[3], "release a");
    pthread_mutex_unlock(&mu);
    /* The slot's next incarnation starts with nothing owned. */
    assert_int_equal(tr_rt_spawn(rt, &owner_b, NULL, &p), 0);
    assert_int_equal(tr_rt_call(rt, p, M_PING, NULL, 0, TR_INFINITE, &r), 0);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- observation -------------------------------------------------------------------- */

static _Atomic int dispatched, done, sent;

static void on_dispatch(void *ud, tr_actor *a, const tr_msg *msg)
{
    (void)a;
    TR_CHECK(ud == (void *)&dispatched);
    if (msg->type == M_PING)
        atomic_fetch_add(&dispatched, 1);
}

static void on_done(void *ud, tr_actor *a, const tr_msg *msg, int rc)
{
    (void)ud;
    (void)a;
    TR_CHECK_EQ(rc, 0);
    if (msg->type == M_PING)
        atomic_fetch_add(&done, 1);
}

static void on_send(void *ud, tr_pid from, tr_pid to, uint32_t type, size_t len)
{
    (void)ud;
    (void)from;
    (void)to;
    (void)len;
    if (type == M_PING)
        atomic_fetch_add(&sent, 1);
}

#define ROUNDS 1000

/* Starts (from a plain thread, the peer in the payload), then counts down
 * ROUNDS answers from the peer. */
static int counter_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    int *left = state;
    if (msg->type != M_PING)
        return 0;
    tr_pid peer = msg->from;
    if (peer == TR_PID_NONE) {
        memcpy(&peer, msg->data, sizeof peer);
        *left = ROUNDS;
    } else if (--*left == 0) {
        return tr_exit(self, TR_EXIT_NORMAL);
    }
    return tr_send(self, peer, M_PING, NULL, 0);
}

static const tr_behavior counter_b = {.name = "counter", .state_size = sizeof(int),
                                      .receive = counter_receive};

static int bouncer_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    return msg->type == M_PING ? tr_send(self, msg->from, M_PING, NULL, 0) : 0;
}

static const tr_behavior bouncer_b = {.name = "bouncer", .receive = bouncer_receive};

static void test_observer(void **state)
{
    (void)state;
    tr_runtime_options o;
    tr_runtime_options_init(&o);
    o.loops = 2;
    tr_runtime *rt;
    assert_int_equal(tr_runtime_create(&rt, &o), 0);
    tr__observer obs = {.dispatch = on_dispatch, .done = on_done, .send = on_send,
                        .ud = (void *)&dispatched};
    assert_int_equal(tr__observe(rt, &obs), 0);
    assert_int_equal(tr_runtime_start(rt), 0);
    assert_int_equal(tr__observe(rt, &obs), TR_EALREADY);
    tr_pid a, b;
    assert_int_equal(tr_rt_spawn(rt, &counter_b, NULL, &a), 0);
    assert_int_equal(tr_rt_spawn(rt, &bouncer_b, NULL, &b), 0);
    assert_int_equal(tr_rt_send(rt, a, M_PING, &b, sizeof b), 0);
    tr_down d;
    assert_int_equal(tr_rt_wait_exit(rt, a, TR_INFINITE, &d), 0);
    assert_int_equal(tr_runtime_stop(rt), 0);
    assert_int_equal(tr_runtime_wait(rt), 0);
    /* a's start, then ROUNDS pings each way: every one sent and handled. */
    assert_int_equal(atomic_load(&sent), 2 * ROUNDS + 1);
    assert_int_equal(atomic_load(&dispatched), 2 * ROUNDS + 1);
    assert_int_equal(atomic_load(&done), 2 * ROUNDS + 1);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- the id table -------------------------------------------------------------- */

static void count_live(void *p, void *ud)
{
    (void)p;
    ++*(int *)ud;
}

static void test_idtab(void **state)
{
    (void)state;
    tr__idtab t;
    tr__idtab_init(&t);
    int a = 1, b = 2, c = 3;
    uint64_t ids[200];
    for (int i = 0; i < 200; i++) { /* past the first growth */
        assert_true(tr__idtab_reserve(&t));
        ids[i] = tr__idtab_add(&t, i % 2 ? (void *)&a : (void *)&b);
    }
    assert_ptr_equal(tr__idtab_find(&t, ids[7]), &a);
    tr__idtab_remove(&t, ids[7]);
    assert_null(tr__idtab_find(&t, ids[7])); /* stale: never the next one */
    assert_true(tr__idtab_reserve(&t));
    uint64_t again = tr__idtab_add(&t, &c);
    assert_int_equal((uint32_t)again, (uint32_t)ids[7]); /* the slot, reused */
    assert_int_not_equal(again, ids[7]);                 /* with a new generation */
    assert_null(tr__idtab_find(&t, ids[7]));
    assert_ptr_equal(tr__idtab_find(&t, again), &c);
    assert_null(tr__idtab_find(&t, ((uint64_t)1 << 32) | 100000u)); /* never made */
    int live = 0;
    tr__idtab_each(&t, count_live, &live);
    assert_int_equal(live, 200);
    tr__idtab_destroy(&t);
}

/* The hash table against a plain array as the model: random puts, gets and
 * removals over a small key range (long clusters, removals in the middle of
 * them, wrap-around at the end of the array), every key checked after each
 * step of a stretch; then the iteration sees exactly the live keys. */
static uint64_t hmap_key(uint64_t k) /* small keys, and keys spread wide */
{
    return k % 2 ? k : k << 40;
}

static void test_hmap(void **state)
{
    (void)state;
    enum { KEYS = 512, STEPS = 200000 };
    static uint64_t model[KEYS + 1]; /* model[k]: value + 1, or 0 if absent */
    memset(model, 0, sizeof model);
    tr__hmap h = {0};
    uint32_t live = 0;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (int step = 0; step < STEPS; step++) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        uint64_t mk = 1 + seed % KEYS;
        uint64_t key = hmap_key(mk);
        if (model[mk]) {
            tr__hent e;
            assert_true(tr__hmap_take(&h, key, &e));
            assert_int_equal(e.val, model[mk] - 1);
            model[mk] = 0;
            live--;
        } else {
            assert_null(tr__hmap_get(&h, key));
            assert_true(tr__hmap_put(&h, key, (uint64_t)step, &model[mk]));
            model[mk] = (uint64_t)step + 1;
            live++;
        }
        assert_int_equal(h.n, live);
        assert_true(h.n * 4 <= h.cap * 3);
        if (step % 4096 == 0)
            for (uint64_t j = 1; j <= KEYS; j++) {
                tr__hent *e = tr__hmap_get(&h, hmap_key(j));
                if (model[j]) {
                    assert_non_null(e);
                    assert_int_equal(e->val, model[j] - 1);
                    assert_ptr_equal(e->p, &model[j]);
                } else {
                    assert_null(e);
                }
            }
    }
    uint32_t seen = 0;
    TR__HMAP_EACH(&h, e) {
        uint64_t j = e->key >> 40 ? e->key >> 40 : e->key;
        assert_true(j >= 1 && j <= KEYS && model[j] && e->key == hmap_key(j));
        seen++;
    }
    assert_int_equal(seen, live);
    assert_null(tr__hmap_get(&h, 0)); /* 0 is never a key */
    /* Reserved room: that many puts cannot fail, and no reallocation. */
    assert_true(tr__hmap_reserve(&h, 100));
    tr__hent *before = h.e;
    for (uint64_t j = 1; j <= 100; j++)
        assert_true(tr__hmap_put(&h, (uint64_t)1 << 50 | j, j, NULL));
    assert_ptr_equal(h.e, before);
    tr__hmap_free(&h);
    assert_int_equal(h.n, 0);
    assert_null(tr__hmap_get(&h, 1));
}

/* The root's children come out of adoptions in any order and are sorted
 * once, newest first, when their order is needed: every permutation of a
 * scrambled list (spawn numbers that wrap through 2^32 included) comes
 * back in order, with its back links right. A test of the sort itself:
 * through the runtime, adoptions usually arrive in order. */
static void test_children_sort(void **state)
{
    (void)state;
    enum { N = 37 };
    tr__child nodes[N];
    for (uint32_t round = 0; round < 50; round++) {
        struct tr_actor a;
        memset(&a, 0, sizeof a);
        uint32_t base = UINT32_MAX - 10; /* seq wraps inside the list */
        uint64_t seed = 0x2545f4914f6cdd1dull + round;
        /* A random permutation of seq base .. base + N - 1. */
        uint32_t perm[N];
        for (uint32_t i = 0; i < N; i++)
            perm[i] = i;
        for (uint32_t i = N - 1; i > 0; i--) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            uint32_t j = (uint32_t)(seed % (i + 1)), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        for (uint32_t i = 0; i < N; i++) {
            memset(&nodes[i], 0, sizeof nodes[i]);
            nodes[i].seq = base + perm[i];
            nodes[i].next = i + 1 < N ? &nodes[i + 1] : NULL;
            nodes[i].prev = i ? &nodes[i - 1] : NULL;
        }
        a.children = &nodes[0];
        a.flags = TR__UNSORTED;
        tr__children_sort(&a);
        assert_false(a.flags & TR__UNSORTED);
        uint32_t k = 0;
        tr__child *prev = NULL;
        for (tr__child *c = a.children; c; prev = c, c = c->next, k++) {
            assert_int_equal(c->seq, base + (N - 1 - k)); /* newest first */
            assert_ptr_equal(c->prev, prev);
        }
        assert_int_equal(k, N);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idtab),
        cmocka_unit_test(test_hmap),
        cmocka_unit_test(test_children_sort),
        cmocka_unit_test(test_owned_kinds),
        cmocka_unit_test(test_observer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
