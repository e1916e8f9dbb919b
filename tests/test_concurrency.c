/*
 * test_concurrency.c — the runtime under concurrent load, with every
 * payload tagged (sender, sequence):
 *
 *  - many senders (actors on every loop, and plain threads) to several
 *    receivers: nothing lost, nothing duplicated, each sender's order kept;
 *  - sends racing the target's exit, from actors and plain threads: every
 *    send returns 0 or TR_ENOACTOR, never touches freed memory (ASan);
 *  - stopping a runtime with thousands of live actors in a deep tree, each
 *    with queued mail: every terminate runs exactly once, all memory freed.
 *
 * CI repeats this file under ASan+UBSan and TSan.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tr_test.h"

enum { LOOPS = 3 };

/* ---- tagged traffic ---------------------------------------------------------- */

enum { ACTOR_SENDERS = 12, THREAD_SENDERS = 3, SENDERS = ACTOR_SENDERS + THREAD_SENDERS,
       RECEIVERS = 4, PER_PAIR = 3000, CHUNK = 200 };
enum { TAGGED = 1, GO = 2, MORE = 3 };

typedef struct tag {
    uint32_t sender;
    uint32_t seq;
} tag;

/* Per receiver: next expected sequence of each sender. Only the receiver's
 * loop writes its row; main reads it after the counts are complete. */
static uint32_t expect[RECEIVERS][SENDERS];
static _Atomic uint64_t received[RECEIVERS];

typedef struct receiver {
    uint32_t index;
} receiver;

static int receiver_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    receiver *r = state;
    TR_CHECK_COPY(&r->index, arg, len);
    return 0;
}

static int receiver_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    receiver *r = state;
    TR_CHECK_EQ(msg->type, TAGGED);
    TR_CHECK_EQ(msg->len, sizeof(tag));
    tag t;
    memcpy(&t, msg->data, sizeof t);
    TR_CHECK(t.sender < SENDERS);
    /* In order per sender: no loss, no duplicate, no reordering. */
    TR_CHECK_EQ(t.seq, expect[r->index][t.sender]);
    expect[r->index][t.sender]++;
    atomic_fetch_add(&received[r->index], 1);
    return 0;
}

static const tr_behavior receiver_b = {.name = "receiver", .state_size = sizeof(receiver),
                                       .init = receiver_init, .receive = receiver_receive};

static tr_pid receivers[RECEIVERS];

typedef struct sender {
    uint32_t id;
    uint32_t seq;
} sender;

/* Sends CHUNK messages to every receiver per turn, then yields with MORE
 * so the receivers (some on the same loop) get to run. */
static int sender_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    sender *s = state;
    if (msg->type == GO) {
        memcpy(&s->id, msg->data, sizeof s->id);
        s->seq = 0;
    }
    uint32_t end = s->seq + CHUNK < PER_PAIR ? s->seq + CHUNK : PER_PAIR;
    for (; s->seq < end; s->seq++)
        for (int r = 0; r < RECEIVERS; r++) {
            tag t = {.sender = s->id, .seq = s->seq};
            TR_CHECK_EQ(tr_send(self, receivers[r], TAGGED, &t, sizeof t), 0);
        }
    if (s->seq < PER_PAIR)
        return tr_send(self, tr_self(self), MORE, NULL, 0);
    return tr_exit(self, TR_EXIT_NORMAL);
}

static const tr_behavior sender_b = {.name = "sender", .state_size = sizeof(sender),
                                     .receive = sender_receive};

static tr_runtime *traffic_rt;

static void *thread_sender(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    for (uint32_t seq = 0; seq < PER_PAIR; seq++)
        for (int r = 0; r < RECEIVERS; r++) {
            tag t = {.sender = id, .seq = seq};
            int rc = tr_rt_send(traffic_rt, receivers[r], TAGGED, &t, sizeof t);
            if (rc != 0) {
                fprintf(stderr, "tr_rt_send: %s\n", tr_strerror(rc));
                abort();
            }
        }
    return NULL;
}

static void test_tagged_traffic(void **state)
{
    (void)state;
    memset(expect, 0, sizeof expect);
    for (int r = 0; r < RECEIVERS; r++)
        atomic_store(&received[r], 0);
    traffic_rt = tr_test_runtime(LOOPS, 0);
    for (uint32_t r = 0; r < RECEIVERS; r++) {
        tr_spawn_opts o;
        tr_spawn_opts_init(&o);
        o.arg = &r;
        o.arg_len = sizeof r;
        assert_int_equal(tr_rt_spawn(traffic_rt, &receiver_b, &o, &receivers[r]), 0);
    }
    /* Actor senders, round-robin over the loops. */
    for (uint32_t i = 0; i < ACTOR_SENDERS; i++) {
        tr_pid s;
        assert_int_equal(tr_rt_spawn(traffic_rt, &sender_b, NULL, &s), 0);
        assert_int_equal(tr_rt_send(traffic_rt, s, GO, &i, sizeof i), 0);
    }
    pthread_t th[THREAD_SENDERS];
    for (uint32_t i = 0; i < THREAD_SENDERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread_sender,
                                        (void *)(uintptr_t)(ACTOR_SENDERS + i)), 0);
    for (int i = 0; i < THREAD_SENDERS; i++)
        pthread_join(th[i], NULL);
    for (int r = 0; r < RECEIVERS; r++)
        TR_WAIT_UNTIL(atomic_load(&received[r]) == (uint64_t)SENDERS * PER_PAIR);
    assert_int_equal(tr_runtime_stop(traffic_rt), 0);
    assert_int_equal(tr_runtime_wait(traffic_rt), 0);
    /* Exactly PER_PAIR from every sender at every receiver. */
    for (int r = 0; r < RECEIVERS; r++)
        for (int s = 0; s < SENDERS; s++)
            assert_int_equal(expect[r][s], PER_PAIR);
    assert_int_equal(TR_STAT(traffic_rt, dropped), 0);
    assert_int_equal(tr_runtime_free(traffic_rt), 0);
}

/* ---- sends racing exits -------------------------------------------------------- */

enum { TARGETS = 64, HISTORY = 1024, RACE_MS = 1500 };

static tr_runtime *race_rt;
/* Every victim ever spawned, newest overwriting oldest: senders pick from
 * here, so they hit live actors, actors exiting right now, and dead ones. */
static _Atomic tr_pid targets[HISTORY];
static _Atomic uint32_t nspawned;

static void remember(tr_pid p)
{
    uint32_t i = atomic_fetch_add(&nspawned, 1);
    atomic_store(&targets[i % HISTORY], p);
}

static tr_pid pick(unsigned i)
{
    uint32_t n = atomic_load(&nspawned);
    return atomic_load(&targets[i % (n < HISTORY ? n : HISTORY)]);
}
static _Atomic int race_over;
static _Atomic uint64_t race_sent, race_dead;

/* Exits after a few messages; its replacement is spawned by the reaper. */
typedef struct victim {
    uint32_t left;
    uint32_t slot;
} victim;

static int victim_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    victim *v = state;
    TR_CHECK_COPY(&v->slot, arg, len);
    v->left = 1 + (uint32_t)(tr_self(self) % 7);
    return 0;
}

static const tr_behavior victim_b;

static int victim_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)msg;
    victim *v = state;
    if (--v->left > 0)
        return 0;
    /* Replace ourselves with a sibling, then go: a new pid in the slot. */
    if (!atomic_load(&race_over)) {
        tr_spawn_opts o;
        tr_spawn_opts_init(&o);
        o.loop = TR_LOOP_ROUND_ROBIN;
        o.arg = &v->slot;
        o.arg_len = sizeof v->slot;
        tr_pid next;
        if (tr_rt_spawn(tr_runtime_of(self), &victim_b, &o, &next) == 0)
            remember(next);
    }
    return (tr_self(self) & 1) ? tr_exit(self, TR_EXIT_NORMAL) : -1;
}

static const tr_behavior victim_b = {.name = "victim", .state_size = sizeof(victim),
                                     .init = victim_init, .receive = victim_receive};

static void count_send(int rc)
{
    if (rc == 0)
        atomic_fetch_add(&race_sent, 1);
    else if (rc == TR_ENOACTOR)
        atomic_fetch_add(&race_dead, 1);
    else if (rc != TR_ESTOPPED) {
        fprintf(stderr, "unexpected send result %s\n", tr_err_name(rc));
        abort();
    }
}

/* An actor that hammers the targets from its loop. */
static int hammer_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    (void)msg;
    if (atomic_load(&race_over))
        return tr_exit(self, TR_EXIT_NORMAL);
    for (int i = 0; i < 256; i++) {
        tr_pid p = pick((unsigned)tr_self(self) + (unsigned)i * 7u);
        uint64_t x = (uint64_t)i;
        count_send(tr_send(self, p, 1, &x, sizeof x));
    }
    return tr_send(self, tr_self(self), 1, NULL, 0);
}

static const tr_behavior hammer_b = {.name = "hammer", .receive = hammer_receive};

static void *thread_hammer(void *arg)
{
    unsigned i = (unsigned)(uintptr_t)arg;
    while (!atomic_load(&race_over)) {
        tr_pid p = pick(i++);
        uint64_t x = i;
        count_send(tr_rt_send(race_rt, p, 1, &x, sizeof x));
        if (i % 64 == 0)
            count_send(tr_signal_exit(race_rt, p, (i & 128) ? TR_EXIT_KILLED : TR_EXIT_SHUTDOWN));
    }
    return NULL;
}

static void test_sends_race_exits(void **state)
{
    (void)state;
    atomic_store(&race_over, 0);
    atomic_store(&race_sent, 0);
    atomic_store(&race_dead, 0);
    atomic_store(&nspawned, 0);
    race_rt = tr_test_quiet_runtime(LOOPS); /* the victims fail on purpose */
    for (uint32_t i = 0; i < TARGETS; i++) {
        tr_spawn_opts so;
        tr_spawn_opts_init(&so);
        so.arg = &i;
        so.arg_len = sizeof i;
        tr_pid p;
        assert_int_equal(tr_rt_spawn(race_rt, &victim_b, &so, &p), 0);
        remember(p);
    }
    for (int i = 0; i < LOOPS; i++) {
        tr_pid h;
        assert_int_equal(tr_rt_spawn(race_rt, &hammer_b, NULL, &h), 0);
        assert_int_equal(tr_rt_send(race_rt, h, 1, NULL, 0), 0);
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread_hammer, (void *)(uintptr_t)i), 0);
    uint64_t end = tr_test_wall_ns() + RACE_MS * 1000000ull;
    while (tr_test_wall_ns() < end)
        sched_yield();
    atomic_store(&race_over, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    printf("# %llu sends accepted, %llu to actors already gone\n",
           (unsigned long long)atomic_load(&race_sent),
           (unsigned long long)atomic_load(&race_dead));
    assert_true(atomic_load(&race_sent) > 0);
    assert_true(atomic_load(&race_dead) > 0); /* the race really happened */
    assert_int_equal(tr_runtime_free(race_rt), 0);
}

/* ---- stopping a big, busy tree ---------------------------------------------------- */

enum { FANOUT = 8, DEPTH = 4 }; /* 8 + 64 + 512 + 4096 = 4680 actors */

static _Atomic int tree_inits, tree_terms;

static const tr_behavior tree_b;

static int tree_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    int depth;
    TR_CHECK_COPY(&depth, arg, len);
    atomic_fetch_add(&tree_inits, 1);
    if (depth == DEPTH)
        return 0;
    depth++;
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.arg = &depth;
    o.arg_len = sizeof depth;
    for (int i = 0; i < FANOUT; i++) {
        o.loop = (i % 3 == 0) ? TR_LOOP_ROUND_ROBIN : TR_LOOP_DEFAULT;
        tr_pid c;
        int rc = tr_spawn(self, &tree_b, &o, &c);
        /* A stopping runtime refuses new children, and only then. */
        if (rc == TR_ESTOPPED && tr_runtime_stopping(tr_runtime_of(self)))
            return 0;
        TR_CHECK_EQ(rc, 0);
        /* Queue mail in the child that it may never read. */
        for (int m = 0; m < 4; m++)
            TR_CHECK_EQ(tr_send(self, c, 1, &m, sizeof m), 0);
    }
    return 0;
}

static void tree_terminate(tr_actor *self, void *state, const tr_exit_reason *r)
{
    (void)self;
    (void)state;
    TR_CHECK_EQ(r->kind, TR_EXIT_SHUTDOWN);
    atomic_fetch_add(&tree_terms, 1);
}

static const tr_behavior tree_b = {.name = "tree", .init = tree_init,
                                   .receive = tr_test_ignore, .terminate = tree_terminate};

static void test_stop_big_busy_tree(void **state)
{
    (void)state;
    atomic_store(&tree_inits, 0);
    atomic_store(&tree_terms, 0);
    tr_runtime *rt = tr_test_runtime(LOOPS, 0);
    int total = 0, level = 1;
    for (int d = 1; d <= DEPTH; d++) {
        level *= FANOUT;
        total += level;
    }
    for (int i = 0; i < FANOUT; i++) {
        int depth = 1;
        tr_spawn_opts o;
        tr_spawn_opts_init(&o);
        o.arg = &depth;
        o.arg_len = sizeof depth;
        tr_pid p;
        assert_int_equal(tr_rt_spawn(rt, &tree_b, &o, &p), 0);
        for (int m = 0; m < 100; m++)
            assert_int_equal(tr_rt_send(rt, p, 1, &m, sizeof m), 0);
    }
    /* Stop while the tree is still growing, or after: both must work. */
    TR_WAIT_UNTIL(atomic_load(&tree_inits) >= total / 2);
    assert_int_equal(tr_runtime_stop(rt), 0);
    assert_int_equal(tr_runtime_wait(rt), 0);
    /* Every actor that started has ended exactly once. */
    assert_int_equal(atomic_load(&tree_terms), atomic_load(&tree_inits));
    printf("# %d of %d actors started before the stop; all terminated\n",
           atomic_load(&tree_inits), total);
    assert_int_equal(tr_runtime_free(rt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tagged_traffic),
        cmocka_unit_test(test_sends_race_exits),
        cmocka_unit_test(test_stop_big_busy_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
