/*
 * test_sched.c — the scheduler's promises:
 *
 *  - spawn order: the children an actor spawns in one callback start
 *    before that actor handles its next message, newest first;
 *  - a chain of spawns (each actor spawning the next as it starts) does not
 *    starve the other actors of its loop;
 *  - the outbox: an actor that sends to more actors of another loop than
 *    the outbox has slots, and more messages to each than one chain holds,
 *    still delivers every message exactly once, in order per receiver;
 *  - sends held in the outbox are each checked as any send is: in one run,
 *    a send to the previous incarnation of a live receiver's slot (the
 *    same outbox slot) is TR_ENOACTOR, and sends to an actor of another
 *    loop with a bounded mailbox are counted against its bound although
 *    none of them reaches it before the run ends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tr_test.h"

/* Runs a runtime of `loops` loops until the actor `driver` (on loop 0) and
 * everything it started have stopped it, then frees it. */
static void run_driver(unsigned loops, const tr_behavior *driver)
{
    tr_runtime *rt = tr_test_runtime(loops, 0);
    tr_test_spawn(rt, driver, TR_LOOP(0), NULL, 0);
    assert_int_equal(tr_runtime_wait(rt), 0);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- spawn order ----------------------------------------------------------------- */

enum { KIDS = 5 };
enum { NEXT = 1, REPORT = 2, STARTED_KID = 3 };

/* Start order as seen by the parent: kid numbers, then -1 for the parent's
 * own next message. Written on the one loop only; read after the stop. */
static int order[KIDS + 1];
static int norder;

static int kid_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    (void)state;
    int k;
    TR_CHECK_COPY(&k, arg, len);
    if (norder < KIDS + 1)
        order[norder++] = k;
    return 0;
}

static const tr_behavior kid_b = {.name = "kid", .init = kid_init, .receive = tr_test_ignore};

static int spawner_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    for (int k = 0; k < KIDS; k++) {
        tr_spawn_opts o;
        tr_spawn_opts_init(&o);
        o.arg = &k;
        o.arg_len = sizeof k;
        tr_pid pid;
        TR_CHECK_EQ(tr_spawn(self, &kid_b, &o, &pid), 0);
    }
    /* Already in the mailbox before the children start. */
    return tr_send(self, tr_self(self), NEXT, NULL, 0);
}

static int spawner_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    (void)msg;
    if (norder < KIDS + 1)
        order[norder++] = -1;
    return tr_runtime_stop(tr_runtime_of(self));
}

static const tr_behavior spawner_b = {.name = "spawner", .init = spawner_init,
                                      .receive = spawner_receive};

static void test_children_start_first_newest_first(void **state)
{
    (void)state;
    run_driver(1, &spawner_b);
    assert_int_equal(norder, KIDS + 1);
    for (int i = 0; i < KIDS; i++)
        assert_int_equal(order[i], KIDS - 1 - i); /* newest first */
    assert_int_equal(order[KIDS], -1);            /* then the parent */
}

/* ---- a spawn chain does not starve its loop -------------------------------------------- */

enum { DEPTH = 5000 };
enum { TICK = 1, CHAIN_DONE = 2, TICKING = 3 };

/* One loop: everything below runs on its thread. */
static uint64_t ticks, ticks_at_start, ticks_at_done;

static int ticker_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    TR_CHECK_EQ(tr_send(self, tr_parent(self), TICKING, NULL, 0), 0);
    return tr_send(self, tr_self(self), TICK, NULL, 0);
}

static int ticker_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    (void)msg;
    ticks++;
    return tr_send(self, tr_self(self), TICK, NULL, 0); /* always more to do */
}

static const tr_behavior ticker_b = {.name = "ticker", .init = ticker_init,
                                     .receive = ticker_receive};

typedef struct link_arg { tr_pid boss; uint32_t left; } link_arg;

static const tr_behavior link_b; /* defined below: links spawn links */

/* Each link spawns the next as it starts, and stays (idle) until the stop. */
static int link_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    link_arg a;
    TR_CHECK_COPY(&a, arg, len);
    if (a.left == 0)
        return tr_send(self, a.boss, CHAIN_DONE, NULL, 0);
    a.left--;
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.arg = &a;
    o.arg_len = sizeof a;
    tr_pid next;
    return tr_spawn(self, &link_b, &o, &next);
}

static const tr_behavior link_b = {.name = "link", .init = link_init, .receive = tr_test_ignore};

static int boss_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    tr_pid t;
    return tr_spawn(self, &ticker_b, NULL, &t);
}

/* Once the ticker runs (it waits in the run queue from then on), the
 * chain starts. */
static int start_chain(tr_actor *self)
{
    tr_pid first;
    link_arg a = {.boss = tr_self(self), .left = DEPTH};
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.arg = &a;
    o.arg_len = sizeof a;
    ticks_at_start = ticks;
    return tr_spawn(self, &link_b, &o, &first);
}

static int boss_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == TICKING)
        return start_chain(self);
    TR_CHECK_EQ(msg->type, CHAIN_DONE);
    ticks_at_done = ticks;
    return tr_runtime_stop(tr_runtime_of(self));
}

static const tr_behavior boss_b = {.name = "boss", .init = boss_init, .receive = boss_receive};

static void test_spawn_chain_does_not_starve(void **state)
{
    (void)state;
    run_driver(1, &boss_b);
    /* The ticker waits in the FIFO run queue while the chain grows on the
     * spawn stack; it gets a turn at least every few links (a pure LIFO
     * would give it none until the chain ends). */
    assert_true(ticks_at_done > 0);
    assert_true(ticks_at_done - ticks_at_start >= DEPTH / 20);
}

/* ---- the outbox: many receivers, long chains, order kept ---------------------------------- */

enum { SENDERS = 2, RECEIVERS = 100, PER_PAIR = 200 };
enum { SEQ = 1, GO = 2, DONE = 3 };

typedef struct seq_msg { uint32_t sender, seq; } seq_msg;

typedef struct seq_receiver { uint32_t next[SENDERS]; uint32_t got; int bad; tr_pid boss; } seq_receiver;

static int seq_receiver_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    seq_receiver *r = state;
    TR_CHECK_COPY(&r->boss, arg, len);
    return 0;
}

static int seq_receiver_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    seq_receiver *r = state;
    seq_msg m;
    TR_CHECK_COPY(&m, msg->data, msg->len);
    if (m.sender >= SENDERS || m.seq != r->next[m.sender])
        r->bad = 1;
    else
        r->next[m.sender]++;
    if (++r->got < SENDERS * PER_PAIR)
        return 0;
    uint32_t ok = !r->bad;
    return tr_send(self, r->boss, DONE, &ok, sizeof ok);
}

static const tr_behavior seq_receiver_b = {.name = "receiver", .state_size = sizeof(seq_receiver),
                                           .init = seq_receiver_init,
                                           .receive = seq_receiver_receive};

typedef struct seq_sender_arg { uint32_t index; tr_pid *to; } seq_sender_arg;

/* Sends everything in one callback, interleaved over the receivers: the
 * outbox sees 100 destinations (slots collide) and 200 pieces each (chains
 * are posted at 64). */
static int seq_sender_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    seq_sender_arg a;
    TR_CHECK_COPY(&a, msg->data, msg->len);
    for (uint32_t s = 0; s < PER_PAIR; s++)
        for (uint32_t r = 0; r < RECEIVERS; r++) {
            seq_msg m = {.sender = a.index, .seq = s};
            TR_CHECK_EQ(tr_send(self, a.to[r], SEQ, &m, sizeof m), 0);
        }
    return 0;
}

static const tr_behavior seq_sender_b = {.name = "sender", .receive = seq_sender_receive};

typedef struct seq_boss { tr_pid to[RECEIVERS]; uint32_t done, good; } seq_boss;

static int seq_boss_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    seq_boss *b = state;
    tr_pid me = tr_self(self);
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.loop = TR_LOOP(1); /* the receivers on the other loop */
    o.arg = &me;
    o.arg_len = sizeof me;
    for (uint32_t r = 0; r < RECEIVERS; r++)
        TR_CHECK_EQ(tr_spawn(self, &seq_receiver_b, &o, &b->to[r]), 0);
    for (uint32_t i = 0; i < SENDERS; i++) {
        tr_pid s;
        TR_CHECK_EQ(tr_spawn(self, &seq_sender_b, NULL, &s), 0); /* this loop */
        seq_sender_arg a = {.index = i, .to = b->to};
        TR_CHECK_EQ(tr_send(self, s, GO, &a, sizeof a), 0);
    }
    return 0;
}

static uint32_t outbox_good;

static int seq_boss_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    seq_boss *b = state;
    uint32_t ok;
    TR_CHECK_EQ(msg->type, DONE);
    memcpy(&ok, msg->data, sizeof ok);
    b->good += ok;
    if (++b->done < RECEIVERS)
        return 0;
    outbox_good = b->good;
    return tr_runtime_stop(tr_runtime_of(self));
}

static const tr_behavior seq_boss_b = {.name = "boss", .state_size = sizeof(seq_boss),
                                       .init = seq_boss_init, .receive = seq_boss_receive};

static void test_outbox_order(void **state)
{
    (void)state;
    run_driver(2, &seq_boss_b);
    assert_int_equal(outbox_good, RECEIVERS); /* all complete, each in order */
}

/* ---- sends held in the outbox are checked one by one ------------------------------- */

enum { BURST = 1, DIE = 2, PING = 3 };
enum { BURST_SENDS = 10, BURST_CAP = 4 };

/* Results of one burst, in send order; written by the burster's loop,
 * read once it has answered. */
static int burst_rc[BURST_SENDS];

static int idle_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == DIE)
        return tr_exit(self, TR_EXIT_NORMAL);
    if (msg->flags & TR_MSG_REQUEST)
        return tr_reply(self, msg, PING, NULL, 0);
    return 0;
}

static const tr_behavior idle_b = {.name = "idle", .receive = idle_receive};

/* One callback: BURST_SENDS sends alternating over the pids it is given
 * (all held in its loop's outbox until the callback returns). */
static int burster_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    tr_pid to[2];
    size_t n = msg->len / sizeof(tr_pid);
    memcpy(to, msg->data, n * sizeof(tr_pid));
    for (int i = 0; i < BURST_SENDS; i++)
        burst_rc[i] = tr_send(self, to[i % n], PING, NULL, 0);
    return tr_reply(self, msg, PING, NULL, 0);
}

static const tr_behavior burster_b = {.name = "burster", .receive = burster_receive};

static void burst(tr_runtime *rt, tr_pid burster, const tr_pid *to, size_t n)
{
    tr_test_ask(rt, burster, BURST, to, n * sizeof *to, NULL, 0);
}

static void test_outbox_checks_each_send(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_pid burster = tr_test_spawn(rt, &burster_b, TR_LOOP(0), NULL, 0);
    tr_pid old = tr_test_spawn(rt, &idle_b, TR_LOOP(1), NULL, 0);
    assert_int_equal(tr_rt_send(rt, old, DIE, NULL, 0), 0);
    TR_WAIT_GONE(rt, old, PING);
    /* The slot is free once loop 1 has finished the exit: spawn a helper
     * there and ask it (it answers after), then reuse the slot. */
    tr_pid helper = tr_test_spawn(rt, &idle_b, TR_LOOP(1), NULL, 0);
    tr_test_ask(rt, helper, PING, NULL, 0, NULL, 0);
    tr_pid cur = tr_test_spawn(rt, &idle_b, TR_LOOP(1), NULL, 0);
    if (TR_PID_INDEX(cur) != TR_PID_INDEX(old)) { /* the helper took it */
        tr_pid t = cur;
        cur = helper;
        helper = t;
    }
    assert_int_equal(TR_PID_INDEX(cur), TR_PID_INDEX(old));
    assert_true(cur != old);

    /* Live, stale, live, stale...: every stale send is refused. */
    tr_pid mix[2] = {cur, old};
    burst(rt, burster, mix, 2);
    for (int i = 0; i < BURST_SENDS; i++)
        assert_int_equal(burst_rc[i], i % 2 ? TR_ENOACTOR : 0);

    /* A bounded receiver on the other loop cannot drain during the burst:
     * the run's first send (to the helper) goes at once, the rest wait in
     * the outbox until the run ends. So the bound refuses every send to
     * it past the bound. */
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.loop = TR_LOOP(1);
    o.mailbox_capacity = BURST_CAP;
    o.overflow = TR_OVERFLOW_REFUSE;
    tr_pid bounded;
    assert_int_equal(tr_rt_spawn(rt, &idle_b, &o, &bounded), 0);
    tr_pid pair[2] = {helper, bounded};
    burst(rt, burster, pair, 2);
    for (int i = 0; i < BURST_SENDS; i++)
        assert_int_equal(burst_rc[i], i % 2 == 0 || i / 2 < BURST_CAP ? 0 : TR_EFULL);
    assert_int_equal(tr_runtime_free(rt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_children_start_first_newest_first),
        cmocka_unit_test(test_spawn_chain_does_not_starve),
        cmocka_unit_test(test_outbox_order),
        cmocka_unit_test(test_outbox_checks_each_send),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
