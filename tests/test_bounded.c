/*
 * test_bounded.c — bounded mailboxes: a full mailbox refuses (TR_EFULL) or
 * drops and counts, by the policy chosen at spawn; runtime notices (DOWN,
 * replies) are never refused; what was accepted is handled; producers on
 * several threads never see more than the capacity queued; a reused slot's
 * incarnation has its own bound and counters.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "tr_test.h"

enum { WORK = 1, ASK = 2, WATCH = 3, DIE = 4, NOOP = 5 };

static _Atomic int gate_open, gate_entered, downs;
static _Atomic long handled;
static _Atomic uint64_t max_seen_depth;

static int bounded_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    switch (msg->type) {
    case WORK: {
        if (atomic_fetch_add(&gate_entered, 1) == 0)
            while (!atomic_load(&gate_open)) /* the first one blocks: the mailbox fills */
                sched_yield();
        tr_actor_stats st;
        TR_CHECK_EQ(tr_actor_stats_get(self, &st), 0);
        uint64_t m = atomic_load(&max_seen_depth);
        while (st.mailbox > m && !atomic_compare_exchange_weak(&max_seen_depth, &m, st.mailbox))
            ;
        atomic_fetch_add(&handled, 1);
        return 0;
    }
    case WATCH: {
        tr_pid p;
        memcpy(&p, msg->data, sizeof p);
        tr_ref ref;
        return tr_monitor(self, p, &ref);
    }
    case TR_MSG_DOWN:
        atomic_fetch_add(&downs, 1);
        return 0;
    case ASK: {
        tr_actor_stats st;
        TR_CHECK_EQ(tr_actor_stats_get(self, &st), 0);
        return tr_reply(self, msg, ASK, &st, sizeof st);
    }
    case DIE:
        return tr_exit(self, TR_EXIT_NORMAL);
    }
    return 0;
}

static const tr_behavior bounded_b = {.name = "bounded", .receive = bounded_receive};

static int victim_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    return msg->type == DIE ? tr_exit_error(self, -5, "bye") : 0;
}

static const tr_behavior victim_b = {.name = "victim", .receive = victim_receive};

static tr_actor_stats ask(tr_runtime *rt, tr_pid p)
{
    tr_actor_stats st;
    tr_test_ask(rt, p, ASK, NULL, 0, &st, sizeof st);
    return st;
}

static void run_policy(int overflow)
{
    atomic_store(&gate_open, 0);
    atomic_store(&gate_entered, 0);
    atomic_store(&handled, 0);
    atomic_store(&downs, 0);
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.mailbox_capacity = 4;
    o.overflow = overflow;
    o.loop = TR_LOOP(0);
    tr_pid b, victim;
    assert_int_equal(tr_rt_spawn(rt, &bounded_b, &o, &b), 0);
    assert_int_equal(tr_rt_spawn(rt, &victim_b, NULL, &victim), 0);
    assert_int_equal(tr_rt_send(rt, b, WATCH, &victim, sizeof victim), 0);
    assert_int_equal(tr_rt_send(rt, b, WORK, NULL, 0), 0);
    TR_WAIT_UNTIL(atomic_load(&gate_entered) == 1); /* it holds the loop now */
    for (int i = 0; i < 4; i++)
        assert_int_equal(tr_rt_send(rt, b, WORK, NULL, 0), 0);
    int full = overflow == TR_OVERFLOW_DROP ? 0 : TR_EFULL;
    assert_int_equal(tr_rt_send(rt, b, WORK, NULL, 0), full);
    assert_int_equal(tr_rt_send(rt, b, WORK, NULL, 0), full);
    /* Calls count as sends... */
    if (overflow == TR_OVERFLOW_REFUSE)
        assert_int_equal(tr_test_call_rc(rt, b, ASK, NULL, 0, 1000), TR_EFULL);
    /* ...but notices do not: the DOWN gets in. */
    assert_int_equal(tr_rt_send(rt, victim, DIE, NULL, 0), 0);
    atomic_store(&gate_open, 1);
    TR_WAIT_UNTIL(atomic_load(&handled) == 5 && atomic_load(&downs) == 1);
    tr_actor_stats st = ask(rt, b);
    assert_int_equal(atomic_load(&handled), 5); /* what was accepted, no more */
    if (overflow == TR_OVERFLOW_DROP) {
        assert_int_equal(st.dropped, 2);
        assert_int_equal(st.refused, 0);
    } else {
        assert_int_equal(st.refused, 3);
        assert_int_equal(st.dropped, 0);
    }
    /* Drained: it takes sends again. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(tr_rt_send(rt, b, WORK, NULL, 0), 0);
    TR_WAIT_UNTIL(atomic_load(&handled) == 9);
    assert_int_equal(tr_runtime_free(rt), 0);
}

static void test_refuse(void **state)
{
    (void)state;
    run_policy(TR_OVERFLOW_REFUSE);
}

static void test_drop(void **state)
{
    (void)state;
    run_policy(TR_OVERFLOW_DROP);
}

static void test_bad_policy(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    assert_int_equal(o.mailbox_capacity, 0);
    assert_int_equal(o.overflow, TR_OVERFLOW_REFUSE);
    o.overflow = 7;
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &bounded_b, &o, &p), TR_EINVAL);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- a slot's incarnations ---------------------------------------------------------------- */

/* One incarnation in the reused slot: its first WORK holds the loop while
 * five more are sent; returns how many of those were refused. */
static int fill_while_held(tr_runtime *rt, tr_pid b)
{
    atomic_store(&gate_open, 0);
    atomic_store(&gate_entered, 0);
    assert_int_equal(tr_rt_send(rt, b, WORK, NULL, 0), 0);
    TR_WAIT_UNTIL(atomic_load(&gate_entered) == 1);
    int full = 0;
    for (int i = 0; i < 5; i++) {
        int rc = tr_rt_send(rt, b, WORK, NULL, 0);
        if (rc != 0) {
            assert_int_equal(rc, TR_EFULL);
            full++;
        }
    }
    atomic_store(&gate_open, 1);
    return full;
}

/* The slot keeps its bound record for later incarnations: a bounded one
 * (drop at 2), an unbounded one, a bounded one again (refuse at 1), each
 * with its own bound and counters from zero. */
static void test_slot_reuse(void **state)
{
    (void)state;
    atomic_store(&handled, 0);
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.loop = TR_LOOP(0);
    tr_pid helper, b;
    assert_int_equal(tr_rt_spawn(rt, &bounded_b, &o, &helper), 0);
    const uint32_t cap[3] = {2, 0, 1};
    const int overflow[3] = {TR_OVERFLOW_DROP, TR_OVERFLOW_REFUSE, TR_OVERFLOW_REFUSE};
    const long handled_after[3] = {3, 9, 11};
    const uint64_t dropped[3] = {3, 0, 0}, refused[3] = {0, 0, 4};
    uint32_t index = 0;
    for (int round = 0; round < 3; round++) {
        o.mailbox_capacity = cap[round];
        o.overflow = overflow[round];
        assert_int_equal(tr_rt_spawn(rt, &bounded_b, &o, &b), 0);
        if (round == 0)
            index = TR_PID_INDEX(b);
        assert_int_equal(TR_PID_INDEX(b), index); /* the freed slot, reused */
        assert_int_equal(fill_while_held(rt, b), (int)refused[round]);
        TR_WAIT_UNTIL(atomic_load(&handled) == handled_after[round]);
        tr_actor_stats st = ask(rt, b);
        assert_int_equal(st.dropped, dropped[round]);
        assert_int_equal(st.refused, refused[round]);
        assert_int_equal(tr_rt_send(rt, b, DIE, NULL, 0), 0);
        TR_WAIT_GONE(rt, b, NOOP);
        /* The loop has finished the exit (the slot is free) once the helper,
         * on the same loop, answers. */
        ask(rt, helper);
    }
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- many producers against one bounded mailbox ------------------------------------------ */

#define CAP 64
#define SENDERS 4
#define SENDS 50000

static _Atomic long accepted, refused;

static void *hammer(void *arg)
{
    tr_runtime *rt = ((void **)arg)[0];
    tr_pid b = *(tr_pid *)((void **)arg)[1];
    for (int i = 0; i < SENDS; i++) {
        int rc = tr_rt_send(rt, b, WORK, NULL, 0);
        if (rc == 0)
            atomic_fetch_add(&accepted, 1);
        else if (rc == TR_EFULL)
            atomic_fetch_add(&refused, 1);
        else
            abort();
    }
    return NULL;
}

static void test_many_senders(void **state)
{
    (void)state;
    atomic_store(&gate_open, 1);
    atomic_store(&gate_entered, 0);
    atomic_store(&handled, 0);
    atomic_store(&accepted, 0);
    atomic_store(&refused, 0);
    atomic_store(&max_seen_depth, 0);
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.mailbox_capacity = CAP;
    tr_pid b;
    assert_int_equal(tr_rt_spawn(rt, &bounded_b, &o, &b), 0);
    void *args[2] = {rt, &b};
    pthread_t t[SENDERS];
    for (int i = 0; i < SENDERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, args), 0);
    for (int i = 0; i < SENDERS; i++)
        pthread_join(t[i], NULL);
    TR_WAIT_UNTIL(atomic_load(&handled) == atomic_load(&accepted));
    tr_actor_stats st = ask(rt, b);
    assert_int_equal(atomic_load(&accepted) + atomic_load(&refused), SENDERS * SENDS);
    assert_int_equal((long)st.refused, atomic_load(&refused));
    assert_true(atomic_load(&max_seen_depth) <= CAP);
    fprintf(stderr, "many_senders: %ld accepted, %ld refused, deepest %llu\n",
            atomic_load(&accepted), atomic_load(&refused),
            (unsigned long long)atomic_load(&max_seen_depth));
    assert_int_equal(tr_runtime_free(rt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refuse),
        cmocka_unit_test(test_drop),
        cmocka_unit_test(test_bad_policy),
        cmocka_unit_test(test_slot_reuse),
        cmocka_unit_test(test_many_senders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
