/*
 * test_testkit_det.c — the test kit's deterministic scheduler: the same
 * seed replays the same run, seeds vary the interleaving (never one
 * sender's order), plain-thread calls drive the steps, jobs run inline;
 * seeded exploration finds a planted ordering bug and replays it; fault
 * injection (a failing message, dropped messages, a failing job, every
 * allocation of a representative scenario).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "troupe_test.h"
#include "tr_test.h"

#define MS 1000000ull

enum { GO = 1, NOTE, COUNT, ORDER, REGISTER, LOOKUP, FOUND, MISSING, WORK, TICK, PING };

static tr_runtime *det_runtime(unsigned loops, uint64_t seed, unsigned flags)
{
    tr_runtime_options o;
    tr_runtime_options_init(&o);
    o.loops = loops;
    o.log = tr_test_quiet;
    tr_test_config c;
    tr_test_config_init(&c);
    c.flags = TR_TEST_DETERMINISTIC | flags;
    c.seed = seed;
    tr_runtime *rt = NULL;
    assert_int_equal(tr_test_create(&rt, &o, &c), 0);
    assert_int_equal(tr_runtime_start(rt), 0);
    assert_int_equal(tr_test_seed(rt), seed);
    return rt;
}

/* ---- a scenario with real choices: senders interleave at one receiver ------------- */

#define SENDERS 4
#define EACH 5

/* The receiver keeps the order of (sender index, sequence) it got. */
typedef struct board {
    uint32_t n;
    uint32_t got[SENDERS * EACH];
    uint32_t next_seq[SENDERS];
    uint32_t out_of_order;
} board;

static int board_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    board *b = state;
    if (msg->type == ORDER)
        return tr_reply(self, msg, ORDER, b, sizeof *b);
    uint32_t v;
    TR_CHECK_COPY(&v, msg->data, msg->len);
    uint32_t who = v >> 16, seq = v & 0xffffu;
    if (seq != b->next_seq[who]++)
        b->out_of_order++;
    if (b->n < SENDERS * EACH)
        b->got[b->n++] = v;
    return 0;
}

static const tr_behavior board_b = {.name = "board", .state_size = sizeof(board),
                                    .receive = board_receive};

typedef struct sender_arg {
    tr_pid board;
    uint32_t who;
} sender_arg;

/* GO: sends EACH notes to the board, one per message it gets (NOTE to
 * itself in between), so that its sends interleave with the others'. */
typedef struct sender {
    sender_arg arg;
    uint32_t sent;
} sender;

static int sender_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    sender *s = state;
    TR_CHECK_COPY(&s->arg, arg, len);
    return 0;
}

static int sender_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    sender *s = state;
    (void)msg;
    if (s->sent == EACH)
        return 0;
    uint32_t v = (s->arg.who << 16) | s->sent++;
    int rc = tr_send(self, s->arg.board, NOTE, &v, sizeof v);
    if (rc == 0 && s->sent < EACH)
        rc = tr_send(self, tr_self(self), GO, NULL, 0);
    return rc;
}

static const tr_behavior sender_b = {.name = "sender", .state_size = sizeof(sender),
                                     .init = sender_init, .receive = sender_receive};

/* Runs the scenario on `rt`; *b gets the board's order. */
static void interleave(tr_runtime *rt, board *b)
{
    tr_pid bd = tr_test_spawn(rt, &board_b, TR_LOOP_DEFAULT, NULL, 0);
    for (uint32_t i = 0; i < SENDERS; i++) {
        sender_arg a = {bd, i};
        tr_pid s = tr_test_spawn(rt, &sender_b, TR_LOOP_ROUND_ROBIN, &a, sizeof a);
        assert_int_equal(tr_rt_send(rt, s, GO, NULL, 0), 0);
    }
    assert_int_equal(tr_test_settle(rt), 0);
    tr_test_ask(rt, bd, ORDER, NULL, 0, b, sizeof *b);
    assert_int_equal(b->n, SENDERS * EACH);
    assert_int_equal(b->out_of_order, 0); /* each sender's order, always */
}

static void test_same_seed_same_run(void **state)
{
    (void)state;
    board b1, b2;
    tr_runtime *rt = det_runtime(2, 7, 0);
    interleave(rt, &b1);
    uint64_t h1 = tr_test_trace_hash(rt), s1 = tr_test_steps(rt);
    tr_runtime_free(rt);
    rt = det_runtime(2, 7, 0);
    interleave(rt, &b2);
    assert_int_equal(tr_test_trace_hash(rt), h1);
    assert_int_equal(tr_test_steps(rt), s1);
    assert_memory_equal(b1.got, b2.got, sizeof b1.got);
    tr_runtime_free(rt);
}

static void test_seeds_vary_the_interleaving(void **state)
{
    (void)state;
    uint64_t hashes[16];
    board first;
    unsigned orders_differ = 0;
    for (unsigned i = 0; i < 16; i++) {
        board b;
        tr_runtime *rt = det_runtime(2, 100 + i, 0);
        interleave(rt, &b);
        hashes[i] = tr_test_trace_hash(rt);
        tr_runtime_free(rt);
        if (i == 0)
            first = b;
        else if (memcmp(first.got, b.got, sizeof b.got) != 0)
            orders_differ++;
    }
    unsigned distinct = 0;
    for (unsigned i = 0; i < 16; i++) {
        bool seen = false;
        for (unsigned j = 0; j < i; j++)
            seen |= hashes[j] == hashes[i];
        distinct += !seen;
    }
    printf("# 16 seeds: %u distinct traces, %u orders unlike the first\n", distinct, orders_differ);
    assert_true(distinct >= 8);
    assert_true(orders_differ >= 8);
}

/* ---- plain-thread calls, supervisors, the tree, timers, probes: all driven ---------- */

static int count_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    uint32_t *n = state;
    if (msg->type == COUNT)
        return tr_reply(self, msg, COUNT, n, sizeof *n);
    ++*n;
    return 0;
}

static const tr_behavior count_b = {.name = "count", .state_size = sizeof(uint32_t),
                                    .receive = count_receive};

static int ticker_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return tr_send_interval(self, tr_self(self), 1000, TICK, NULL, 0, NULL);
}

static const tr_behavior ticker_b = {.name = "ticker", .state_size = sizeof(uint32_t),
                                     .init = ticker_init, .receive = count_receive};

static int tree_count(const tr_actor_info *info, void *ud)
{
    (void)info;
    ++*(unsigned *)ud;
    return 0;
}

static void test_calls_drive_the_steps(void **state)
{
    (void)state;
    tr_runtime *rt = det_runtime(3, 11, 0);
    /* A supervisor from the test's thread: its start is driven too. */
    tr_child_spec kids[2];
    tr_child_spec_init(&kids[0]);
    tr_child_spec_init(&kids[1]);
    kids[0].id = "a";
    kids[0].behavior = &count_b;
    kids[1].id = "ticker";
    kids[1].behavior = &ticker_b;
    kids[1].loop = TR_LOOP(2);
    tr_sup_spec spec;
    tr_sup_spec_init(&spec);
    spec.children = kids;
    spec.nchildren = 2;
    tr_pid sup;
    assert_int_equal(tr_rt_sup_spawn(rt, &spec, NULL, &sup), 0);
    tr_sup_child c[2];
    assert_int_equal(tr_rt_sup_which_children(rt, sup, c, 2), 2);
    for (int i = 0; i < 10; i++)
        assert_int_equal(tr_rt_send(rt, c[0].pid, PING, NULL, 0), 0);
    uint32_t n = 0;
    tr_test_ask(rt, c[0].pid, COUNT, NULL, 0, &n, sizeof n);
    assert_int_equal(n, 10);
    unsigned actors = 0;
    assert_int_equal(tr_runtime_tree(rt, tree_count, &actors), 0);
    assert_int_equal(actors, 3); /* the supervisor and its two children */
    /* Virtual time: three ticks. */
    assert_int_equal(tr_test_advance(rt, 3000), 0);
    tr_test_ask(rt, c[1].pid, COUNT, NULL, 0, &n, sizeof n);
    assert_int_equal(n, 3);
    /* A call nothing can answer fails at once in manual time. */
    tr_rt_reply r;
    tr_probe *p;
    assert_int_equal(tr_probe_create(rt, &p), 0);
    assert_int_equal(tr_rt_call(rt, tr_probe_pid(p), PING, NULL, 0, 5000, &r), TR_ETIMEDOUT);
    TR_PROBE_ASSERT(p, tr_probe_expect(p, PING, TR_PID_NONE, 0, NULL));
    /* Stepping by hand. */
    assert_int_equal(tr_rt_send(rt, c[0].pid, PING, NULL, 0), 0);
    tr_test_event ev;
    assert_int_equal(tr_test_step(rt, &ev), 0);
    assert_int_equal(ev.kind, TR_TEST_EV_MESSAGE);
    assert_int_equal(ev.actor, c[0].pid);
    assert_int_equal(ev.type, PING);
    assert_int_equal(ev.from, TR_PID_NONE);
    assert_int_equal(tr_test_step(rt, &ev), TR_ENOTFOUND);
    assert_int_equal(tr_probe_free(p), 0);
    tr_runtime_free(rt);
}

/* An actor that sends itself a message forever: a wait the runtime keeps
 * busy without answering ends at the step limit, clearly, not in a hang;
 * so does a settle. */
static int spinner_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    (void)msg;
    return tr_send(self, tr_self(self), PING, NULL, 0);
}

static const tr_behavior spinner_b = {.name = "spinner", .receive = spinner_receive};

static void test_step_limit(void **state)
{
    (void)state;
    tr_runtime_options o;
    tr_runtime_options_init(&o);
    o.loops = 2;
    tr_test_config c;
    tr_test_config_init(&c);
    c.flags = TR_TEST_DETERMINISTIC;
    c.seed = 3;
    c.max_steps = 500;
    tr_runtime *rt;
    assert_int_equal(tr_test_create(&rt, &o, &c), 0);
    assert_int_equal(tr_runtime_start(rt), 0);
    tr_pid sp = tr_test_spawn(rt, &spinner_b, TR_LOOP_DEFAULT, NULL, 0);
    assert_int_equal(tr_rt_send(rt, sp, PING, NULL, 0), 0);
    tr_probe *p;
    assert_int_equal(tr_probe_create(rt, &p), 0);
    uint64_t before = tr_test_steps(rt);
    tr_rt_reply r;
    assert_int_equal(tr_rt_call(rt, tr_probe_pid(p), PING, NULL, 0, TR_INFINITE, &r),
                     TR_ETIMEDOUT);
    uint64_t ran = tr_test_steps(rt) - before;
    assert_true(ran >= 500 && ran <= 502);
    assert_int_equal(tr_test_settle(rt), TR_ELIMIT);
    assert_int_equal(tr_signal_exit(rt, sp, TR_EXIT_KILLED), 0);
    assert_int_equal(tr_test_settle(rt), 0);
    assert_int_equal(tr_probe_free(p), 0);
    tr_runtime_free(rt);
}

/* ---- jobs run inline; a failing job ------------------------------------------------- */

static _Atomic int job_ran;

static int job(tr_job *j, const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    atomic_fetch_add(&job_ran, 1);
    int32_t v = 5;
    return tr_job_set_result(j, &v, sizeof v);
}

typedef struct offl {
    tr_pid report;
} offl;

static int offl_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    offl *o = state;
    tr_job_id id;
    if (msg->type == WORK) {
        TR_CHECK_COPY(&o->report, msg->data, msg->len);
        return tr_offload(self, job, NULL, 0, &id);
    }
    if (msg->type == TR_MSG_JOB_DONE)
        return tr_send(self, o->report, FOUND, msg->data, msg->len);
    if (msg->type == TR_MSG_JOB_FAILED)
        return tr_send(self, o->report, MISSING, msg->data, msg->len);
    return 0;
}

static const tr_behavior offl_b = {.name = "offl", .state_size = sizeof(offl),
                                   .receive = offl_receive};

static void test_jobs_inline_failing_delayed(void **state)
{
    (void)state;
    atomic_store(&job_ran, 0);
    tr_runtime *rt = det_runtime(2, 3, 0);
    tr_probe *p;
    assert_int_equal(tr_probe_create(rt, &p), 0);
    tr_pid me = tr_probe_pid(p);
    tr_pid w = tr_test_spawn(rt, &offl_b, TR_LOOP_DEFAULT, NULL, 0);
    assert_int_equal(tr_rt_send(rt, w, WORK, &me, sizeof me), 0);
    int32_t five = 5, code = TR_EUSER(9);
    TR_PROBE_ASSERT(p, tr_probe_expect_payload(p, FOUND, w, &five, sizeof five, 0, NULL));
    assert_int_equal(atomic_load(&job_ran), 1);
    assert_int_equal(tr_test_fail_job(rt, 1, code), 0);
    assert_int_equal(tr_rt_send(rt, w, WORK, &me, sizeof me), 0);
    TR_PROBE_ASSERT(p, tr_probe_expect_payload(p, MISSING, w, &code, sizeof code, 0, NULL));
    assert_int_equal(atomic_load(&job_ran), 1); /* failed instead of running */
    /* A job delayed by 300 ms of virtual time. */
    assert_int_equal(tr_test_delay_job(rt, 1, 300), 0);
    uint64_t t0 = tr_now(rt);
    assert_int_equal(tr_rt_send(rt, w, WORK, &me, sizeof me), 0);
    TR_PROBE_ASSERT(p, tr_probe_expect_no_message(p, 299));
    TR_PROBE_ASSERT(p, tr_probe_expect_payload(p, FOUND, w, &five, sizeof five, 1, NULL));
    assert_int_equal(tr_now(rt), t0 + 300 * MS);
    assert_int_equal(atomic_load(&job_ran), 2);
    assert_int_equal(tr_test_delay_job(rt, 1, 0), TR_EINVAL);
    assert_int_equal(tr_probe_free(p), 0);
    tr_runtime_free(rt);
}

/* ---- channel waits from the test's thread drive the steps ------------------------- */

typedef struct drainer {
    tr_ref sub;
    uint32_t got;
} drainer;

static int drainer_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    drainer *d = state;
    tr_chan *ch;
    TR_CHECK_COPY(&ch, arg, len);
    return tr_chan_subscribe(self, ch, NOTE, 1, &d->sub);
}

static int drainer_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    drainer *d = state;
    if (msg->type == COUNT)
        return tr_reply(self, msg, COUNT, &d->got, sizeof d->got);
    if (msg->type == NOTE) {
        d->got++;
        return tr_chan_request(self, d->sub, 1);
    }
    return 0;
}

static const tr_behavior drainer_b = {.name = "drainer", .state_size = sizeof(drainer),
                                      .init = drainer_init, .receive = drainer_receive};

/* Sends one item to the channel 500 ms after its start. */
static int later_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    TR_CHECK_COPY((tr_chan **)state, arg, len);
    return tr_send_after(self, tr_self(self), 500, TICK, NULL, 0, NULL);
}

static int later_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    uint32_t v = 77;
    return msg->type == TICK ? tr_chan_send(*(tr_chan **)state, &v, sizeof v) : 0;
}

static const tr_behavior later_b = {.name = "later", .state_size = sizeof(tr_chan *),
                                    .init = later_init, .receive = later_receive};

static void test_channel_waits_drive_the_steps(void **state)
{
    (void)state;
    /* A full channel drained by an actor: the test's blocking sends run it. */
    tr_runtime *rt = det_runtime(2, 13, 0);
    tr_chan_opts co = {.capacity = 2};
    tr_chan *ch;
    assert_int_equal(tr_chan_create(rt, &co, &ch), 0);
    tr_pid d = tr_test_spawn(rt, &drainer_b, TR_LOOP(1), &ch, sizeof ch);
    for (uint32_t i = 0; i < 10; i++)
        assert_int_equal(tr_chan_send_wait(ch, &i, sizeof i, 1000), 0);
    /* The last items may still be on their way to the drainer, and the
     * seed may run the call first: settle (it found that race in this
     * test). */
    assert_int_equal(tr_test_settle(rt), 0);
    uint32_t got = 0;
    tr_test_ask(rt, d, COUNT, NULL, 0, &got, sizeof got);
    assert_int_equal(got, 10);
    /* Nothing will ever come: the wait fails at once, not in 5 s. */
    uint32_t v;
    unsigned char buf[64]; /* a receive takes the channel's largest item */
    size_t len;
    tr_chan *empty;
    assert_int_equal(tr_chan_create(rt, NULL, &empty), 0);
    assert_int_equal(tr_chan_recv_wait(empty, buf, sizeof buf, &len, 5000), TR_ETIMEDOUT);
    tr_chan_release(empty);
    tr_chan_release(ch);
    tr_runtime_free(rt);
    /* Auto-advance: an item sent 500 ms later (virtual) is received. */
    rt = det_runtime(1, 13, TR_TEST_AUTO_ADVANCE);
    assert_int_equal(tr_chan_create(rt, NULL, &ch), 0);
    uint64_t t0 = tr_now(rt);
    tr_test_spawn(rt, &later_b, TR_LOOP_DEFAULT, &ch, sizeof ch);
    assert_int_equal(tr_chan_recv_wait(ch, buf, sizeof buf, &len, 5000), 0);
    assert_int_equal(len, sizeof v);
    memcpy(&v, buf, sizeof v);
    assert_int_equal(v, 77);
    assert_int_equal(tr_now(rt), t0 + 500 * MS);
    tr_chan_release(ch);
    tr_runtime_free(rt);
}

/* ---- the planted race: a lookup that can overtake a registration ------------------ */

/*
 * The registry learns names from REGISTER and answers LOOKUP. A worker
 * registers itself in its init; the client, spawned right after it by the
 * same parent, looks the worker's name up in its own init — and assumes
 * (the planted bug) that the registration is there already. Both inits
 * are runnable at once; when the client's runs first, or the registry
 * handles the lookup before the registration, the answer is MISSING.
 */
typedef struct registry {
    int registered;
} registry;

static int registry_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    registry *r = state;
    if (msg->type == REGISTER) {
        r->registered = 1;
        return 0;
    }
    if (msg->type == LOOKUP) {
        tr_pid asker;
        TR_CHECK_COPY(&asker, msg->data, msg->len);
        return tr_send(self, asker, r->registered ? FOUND : MISSING, NULL, 0);
    }
    return 0;
}

static const tr_behavior registry_b = {.name = "registry", .state_size = sizeof(registry),
                                       .receive = registry_receive};

typedef struct race_arg {
    tr_pid registry, report;
} race_arg;

static int worker_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    race_arg a;
    TR_CHECK_COPY(&a, arg, len);
    return tr_send(self, a.registry, REGISTER, NULL, 0);
}

static const tr_behavior worker_b = {.name = "worker", .init = worker_init,
                                     .receive = tr_test_ignore};

static int client_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    race_arg *a = state;
    TR_CHECK_COPY(a, arg, len);
    tr_pid me = tr_self(self);
    return tr_send(self, a->registry, LOOKUP, &me, sizeof me);
}

static int client_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    race_arg *a = state;
    return tr_send(self, a->report, msg->type, NULL, 0); /* FOUND or MISSING */
}

static const tr_behavior client_b = {.name = "client", .state_size = sizeof(race_arg),
                                     .init = client_init, .receive = client_receive};

static int parent_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    race_arg a;
    TR_CHECK_COPY(&a, msg->data, msg->len);
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.arg = &a;
    o.arg_len = sizeof a;
    o.loop = TR_LOOP_ROUND_ROBIN;
    tr_pid w, c;
    int rc = tr_spawn(self, &worker_b, &o, &w);
    return rc ? rc : tr_spawn(self, &client_b, &o, &c);
}

static const tr_behavior parent_b = {.name = "parent", .receive = parent_receive};

/* The scenario: 0 if the client found the worker, 1 if the race bit. */
static int race_scenario(tr_runtime *rt, void *ud)
{
    (void)ud;
    tr_probe *p;
    if (tr_probe_create(rt, &p) != 0)
        return -1;
    tr_pid reg, parent;
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.loop = TR_LOOP(0);
    if (tr_rt_spawn(rt, &registry_b, &o, &reg) != 0 ||
        tr_rt_spawn(rt, &parent_b, NULL, &parent) != 0)
        return -1;
    race_arg a = {reg, tr_probe_pid(p)};
    if (tr_rt_send(rt, parent, GO, &a, sizeof a) != 0)
        return -1;
    tr_probe_msg m;
    int rc = tr_probe_expect(p, FOUND, TR_PROBE_ANY, 1000, &m) == 0 ? 0 : 1;
    tr_probe_msg_free(&m);
    tr_probe_free(p);
    return rc;
}

static void test_exploration_finds_the_race(void **state)
{
    (void)state;
    tr_runtime_options o;
    tr_runtime_options_init(&o);
    o.loops = 2;
    o.log = tr_test_quiet;
    tr_test_config c;
    tr_test_config_init(&c);
    c.seed = 1;
    tr_test_explored found;
    assert_int_equal(tr_test_explore(&o, &c, 1000, race_scenario, NULL, &found), TR_EUNEXPECTED);
    printf("# the planted race: found at seed %llu, after %u seed(s)\n",
           (unsigned long long)found.seed, found.runs);
    assert_true(found.runs >= 1 && found.runs <= 1000);
    assert_int_equal(found.rc, 1);
    /* Replayed from its seed: the same failure, the same trace. */
    c.flags = TR_TEST_DETERMINISTIC;
    c.seed = found.seed;
    tr_runtime *rt;
    assert_int_equal(tr_test_create(&rt, &o, &c), 0);
    assert_int_equal(tr_runtime_start(rt), 0);
    assert_int_equal(race_scenario(rt, NULL), 1);
    uint64_t h = tr_test_trace_hash(rt);
    tr_runtime_free(rt);
    assert_int_equal(h, found.trace_hash);
    /* And some seed passes: it is a race, not a bug of every run. */
    tr_test_explored none;
    int passes = 0;
    for (uint64_t s = 1; s <= 50 && !passes; s++) {
        c.seed = s;
        passes = tr_test_explore(&o, &c, 1, race_scenario, NULL, &none) == 0;
    }
    assert_true(passes);
}

/* A one-for-one supervisor of one counter, from the test's thread. */
static int one_child_sup(tr_runtime *rt, tr_pid *sup)
{
    tr_child_spec kid;
    tr_child_spec_init(&kid);
    kid.id = "counter";
    kid.behavior = &count_b;
    tr_sup_spec spec;
    tr_sup_spec_init(&spec);
    spec.children = &kid;
    spec.nchildren = 1;
    return tr_rt_sup_spawn(rt, &spec, NULL, sup);
}

/* ---- fault injection ------------------------------------------------------------------ */

/* A supervised counter that fails on its third message (injected) is
 * restarted; its links and monitors see the injected code. */
static void test_fail_message(void **state)
{
    (void)state;
    for (int det = 0; det < 2; det++) {
        tr_runtime *rt = det ? det_runtime(2, 5, 0) : tr_test_kit(2, TR_TEST_QUIET, 0);
        tr_pid sup;
        assert_int_equal(one_child_sup(rt, &sup), 0);
        tr_sup_child c;
        assert_int_equal(tr_rt_sup_which_children(rt, sup, &c, 1), 1);
        tr_probe *p;
        assert_int_equal(tr_probe_create(rt, &p), 0);
        assert_int_equal(tr_probe_monitor(p, c.pid, NULL), 0);
        assert_int_equal(tr_test_fail_message(rt, c.pid, 3, TR_EUSER(42)), 0);
        for (int i = 0; i < 3; i++)
            assert_int_equal(tr_rt_send(rt, c.pid, PING, NULL, 0), 0);
        tr_down d;
        TR_PROBE_ASSERT(p, tr_probe_expect_down(p, c.pid, TR_EXIT_ERROR, 1000, &d));
        assert_int_equal(d.code, TR_EUSER(42));
        assert_int_equal(tr_test_settle(rt), 0);
        tr_sup_child again;
        assert_int_equal(tr_rt_sup_which_children(rt, sup, &again, 1), 1);
        assert_int_equal(again.restarts, 1);
        assert_true(again.pid != c.pid);
        assert_int_equal(tr_probe_free(p), 0);
        /* Bad input. */
        assert_int_equal(tr_test_fail_message(rt, again.pid, 0, 1), TR_EINVAL);
        assert_int_equal(tr_test_fail_message(rt, again.pid, 1, 0), TR_EINVAL);
        tr_runtime_free(rt);
    }
}

/* Dropped messages between two actors: the caller's call times out. */
static void test_drop_messages(void **state)
{
    (void)state;
    tr_runtime *rt = det_runtime(2, 9, 0);
    tr_probe *p;
    assert_int_equal(tr_probe_create(rt, &p), 0);
    tr_pid target = tr_test_spawn(rt, &count_b, TR_LOOP(0), NULL, 0);
    tr_pid a = tr_test_spawn(rt, tr_test_caller(), TR_LOOP(1), NULL, 0);
    tr_test_call arg = {.target = target, .report = tr_probe_pid(p), .type = COUNT,
                        .timeout_ms = 500};
    assert_int_equal(tr_test_drop_messages(rt, a, target, 1), 0);
    assert_int_equal(tr_rt_send(rt, a, TR_TEST_CALLER_GO, &arg, sizeof arg), 0);
    uint64_t t0 = tr_now(rt);
    TR_PROBE_ASSERT(p, tr_probe_expect(p, TR_TEST_CALLER_TIMED_OUT, a, 1000, NULL));
    assert_int_equal(tr_now(rt), t0 + 500 * MS); /* the call's timeout, virtual */
    /* Only one was dropped: the next call is answered. */
    assert_int_equal(tr_rt_send(rt, a, TR_TEST_CALLER_GO, &arg, sizeof arg), 0);
    TR_PROBE_ASSERT(p, tr_probe_expect(p, COUNT, a, 1000, NULL));
    assert_int_equal(tr_test_drop_messages(rt, a, target, 0), TR_EINVAL);
    assert_int_equal(tr_probe_free(p), 0);
    tr_runtime_free(rt);
}

/* Delayed messages: the first of three arrives last, 100 ms later; a
 * delayed request is still answered, late. Both modes. */
typedef struct burst {
    tr_pid to;
} burst;

static int burst_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    burst *b = state;
    TR_CHECK_COPY(&b->to, msg->data, msg->len);
    for (uint32_t i = 0; i < 3; i++) {
        int rc = tr_send(self, b->to, NOTE, &i, sizeof i);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static const tr_behavior burst_b = {.name = "burst", .state_size = sizeof(burst),
                                    .receive = burst_receive};

static void test_delay_messages(void **state)
{
    (void)state;
    for (int det = 0; det < 2; det++) {
        tr_runtime *rt = det ? det_runtime(2, 17, 0) : tr_test_kit(2, TR_TEST_QUIET, 0);
        tr_probe *p;
        assert_int_equal(tr_probe_create(rt, &p), 0);
        tr_pid me = tr_probe_pid(p);
        tr_pid b = tr_test_spawn(rt, &burst_b, TR_LOOP(0), NULL, 0);
        assert_int_equal(tr_test_delay_messages(rt, b, me, 1, 100), 0);
        uint64_t t0 = tr_now(rt);
        assert_int_equal(tr_rt_send(rt, b, GO, &me, sizeof me), 0);
        uint32_t order[] = {1, 2, 0};
        for (int i = 0; i < 3; i++) {
            tr_probe_msg m;
            TR_PROBE_ASSERT(p, tr_probe_expect_payload(p, NOTE, b, &order[i], sizeof order[i],
                                                       1000, &m));
            assert_int_equal(m.at, i < 2 ? t0 : t0 + 100 * MS);
            tr_probe_msg_free(&m);
        }
        /* A delayed request: answered 200 ms late, within its 500 ms. */
        tr_pid target = tr_test_spawn(rt, &count_b, TR_LOOP(1), NULL, 0);
        tr_pid a = tr_test_spawn(rt, tr_test_caller(), TR_LOOP(0), NULL, 0);
        tr_test_call arg = {.target = target, .report = me, .type = COUNT, .timeout_ms = 500};
        assert_int_equal(tr_test_delay_messages(rt, a, target, 1, 200), 0);
        t0 = tr_now(rt);
        assert_int_equal(tr_rt_send(rt, a, TR_TEST_CALLER_GO, &arg, sizeof arg), 0);
        TR_PROBE_ASSERT(p, tr_probe_expect(p, COUNT, a, 1000, NULL));
        assert_int_equal(tr_now(rt), t0 + 200 * MS);
        assert_int_equal(tr_test_delay_messages(rt, a, target, 1, 0), TR_EINVAL);
        assert_int_equal(tr_probe_free(p), 0);
        tr_runtime_free(rt);
    }
}

/* ---- allocation failures over a representative scenario ------------------------------ */

/* Spawn, send, call, timer, supervisor restart, channel: every call may
 * fail for want of memory; none may crash, hang or leak. Returns how many
 * allocations the runtime made. */
static void alloc_scenario(uint64_t fail_nth, uint64_t *made, uint64_t *failed)
{
    tr_runtime *rt = det_runtime(2, 21, TR_TEST_AUTO_ADVANCE);
    tr_test_fail_alloc(fail_nth);
    tr_pid a = TR_PID_NONE, sup = TR_PID_NONE;
    (void)tr_rt_spawn(rt, &ticker_b, NULL, &a); /* spawn, and a timer */
    (void)tr_rt_send(rt, a, PING, "x", 1);      /* send */
    tr_rt_reply r;
    if (tr_rt_call(rt, a, COUNT, NULL, 0, 2500, &r) == 0) /* call, across ticks */
        tr_rt_reply_free(&r);
    if (one_child_sup(rt, &sup) == 0) { /* supervisor restart */
        tr_sup_child c;
        if (tr_rt_sup_which_children(rt, sup, &c, 1) == 1 && c.pid != TR_PID_NONE) {
            (void)tr_test_fail_message(rt, c.pid, 1, TR_EUSER(1));
            (void)tr_rt_send(rt, c.pid, PING, NULL, 0);
        }
    }
    tr_chan *ch = NULL; /* channel */
    if (tr_chan_create(rt, NULL, &ch) == 0) {
        int v = 1;
        size_t len;
        if (tr_chan_send(ch, &v, sizeof v) == 0)
            (void)tr_chan_recv(ch, &v, sizeof v, &len);
        tr_chan_release(ch);
    }
    (void)tr_test_settle(rt);
    tr_test_alloc_counts(made, failed);
    tr_test_fail_alloc(0);
    assert_int_equal(tr_runtime_free(rt), 0); /* and the stop: no hang */
}

static void test_alloc_failure_sweep(void **state)
{
    (void)state;
    uint64_t total = 0, failed = 0;
    alloc_scenario(UINT64_MAX, &total, &failed);
    assert_int_equal(failed, 0);
    assert_true(total > 20);
    unsigned failures = 0;
    for (uint64_t n = 1; n <= total; n++) {
        uint64_t made, f;
        alloc_scenario(n, &made, &f);
        failures += f != 0;
    }
    printf("# %llu allocations in the scenario; each failed in turn, %u runs saw a failure\n",
           (unsigned long long)total, failures);
    assert_true(failures > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_seed_same_run),
        cmocka_unit_test(test_seeds_vary_the_interleaving),
        cmocka_unit_test(test_calls_drive_the_steps),
        cmocka_unit_test(test_step_limit),
        cmocka_unit_test(test_jobs_inline_failing_delayed),
        cmocka_unit_test(test_channel_waits_drive_the_steps),
        cmocka_unit_test(test_exploration_finds_the_race),
        cmocka_unit_test(test_fail_message),
        cmocka_unit_test(test_drop_messages),
        cmocka_unit_test(test_delay_messages),
        cmocka_unit_test(test_alloc_failure_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
