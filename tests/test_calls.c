/*
 * test_calls.c — request/reply between actors and from plain threads:
 * replies, timeouts, late replies dropped and counted, the callee's view of
 * the deadline, and the bad inputs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "troupe_test.h"
#include "tr_test.h"

#define MS 1000000ull
enum { ECHO = 1, HOLD = 2, RELEASE = 3, START = 4, RESULT = 5, SLOW = 6 };

/* ---- the server: echoes, or holds a request to answer it later ---------- */

typedef struct server {
    tr_msg held;      /* a request kept to answer later */
    int holding;
    uint64_t seen_deadline;
} server;

static int server_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    server *s = state;
    switch (msg->type) {
    case ECHO:
        TR_CHECK(msg->flags & TR_MSG_REQUEST);
        TR_CHECK(msg->ref != 0);
        s->seen_deadline = msg->deadline;
        /* Reply with the payload and the deadline the callee saw. */
        {
            unsigned char out[64];
            TR_CHECK(msg->len + sizeof msg->deadline <= sizeof out);
            memcpy(out, &msg->deadline, sizeof msg->deadline);
            memcpy(out + sizeof msg->deadline, msg->data, msg->len);
            return tr_reply(self, msg, ECHO, out, sizeof msg->deadline + msg->len);
        }
    case HOLD:
        TR_CHECK(msg->flags & TR_MSG_REQUEST);
        s->held = *msg; /* the tr_msg copy is enough to answer later */
        s->held.data = NULL;
        s->holding = 1;
        return 0;
    case RELEASE:
        if (s->holding) {
            s->holding = 0;
            TR_CHECK_EQ(tr_reply(self, &s->held, HOLD, "late", 4), 0);
        }
        return 0;
    default:
        /* Not a request: tr_reply refuses it. */
        TR_CHECK_EQ(tr_reply(self, msg, 1, NULL, 0), TR_EINVAL);
        return 0;
    }
}

static const tr_behavior server_b = {.name = "server", .state_size = sizeof(server),
                                     .receive = server_receive};

/* ---- the client: an actor that calls ------------------------------------ */

typedef struct client {
    tr_pid server;
    tr_ref echo_ref, hold_ref;
    int got_echo, got_timeout;
} client;

static _Atomic int client_done;
static _Atomic uint64_t client_seen_deadline, client_sent_deadline;
static _Atomic int client_stray; /* messages that should never have arrived */

static int client_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    client *c = state;
    TR_CHECK_COPY(&c->server, arg, len);
    tr_runtime *rt = tr_runtime_of(self);
    int x = 42;
    atomic_store(&client_sent_deadline, tr_now(rt) + 500 * MS);
    TR_CHECK_EQ(tr_call(self, c->server, ECHO, &x, sizeof x, 500, &c->echo_ref), 0);
    TR_CHECK_EQ(tr_call(self, c->server, HOLD, NULL, 0, 100, &c->hold_ref), 0);
    TR_CHECK(c->echo_ref != c->hold_ref);
    /* Bad input. */
    tr_ref r;
    TR_CHECK_EQ(tr_call(self, c->server, ECHO, NULL, 0, 100, NULL), TR_EINVAL);
    TR_CHECK_EQ(tr_call(self, c->server, TR_MSG_USER_MAX + 1u, NULL, 0, 100, &r), TR_EINVAL);
    TR_CHECK_EQ(tr_call(self, TR_PID_NONE, ECHO, NULL, 0, 100, &r), TR_ENOACTOR);
    TR_CHECK_EQ(tr_call(self, c->server, ECHO, NULL, 3, 100, &r), TR_EINVAL);
    return 0;
}

static int client_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    client *c = state;
    (void)self;
    if (msg->type == ECHO) {
        TR_CHECK(msg->flags & TR_MSG_REPLY);
        TR_CHECK_EQ(msg->ref, c->echo_ref);
        TR_CHECK_EQ(msg->from, c->server);
        uint64_t d;
        int x;
        TR_CHECK_EQ(msg->len, sizeof d + sizeof x);
        memcpy(&d, msg->data, sizeof d);
        memcpy(&x, (const char *)msg->data + sizeof d, sizeof x);
        TR_CHECK_EQ(x, 42);
        atomic_store(&client_seen_deadline, d);
        c->got_echo++;
    } else if (msg->type == TR_MSG_CALL_TIMEOUT) {
        TR_CHECK(msg->flags & TR_MSG_REPLY);
        TR_CHECK_EQ(msg->ref, c->hold_ref);
        TR_CHECK_EQ(msg->from, c->server);
        TR_CHECK_EQ(msg->len, 0);
        c->got_timeout++;
    } else {
        atomic_fetch_add(&client_stray, 1);
    }
    if (c->got_echo == 1 && c->got_timeout == 1)
        atomic_store(&client_done, 1);
    return 0;
}

static const tr_behavior client_b = {.name = "client", .state_size = sizeof(client),
                                     .init = client_init, .receive = client_receive};

static void test_actor_calls(void **state)
{
    (void)state;
    atomic_store(&client_done, 0);
    atomic_store(&client_stray, 0);
    tr_runtime *rt = tr_test_kit(2, 0, 0);
    uint64_t t0 = tr_now(rt);
    tr_pid srv, cli;
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.loop = TR_LOOP(1);
    assert_int_equal(tr_rt_spawn(rt, &server_b, &o, &srv), 0);
    o.loop = TR_LOOP(0);
    o.arg = &srv;
    o.arg_len = sizeof srv;
    assert_int_equal(tr_rt_spawn(rt, &client_b, &o, &cli), 0);
    /* The echo comes back; the held call is pending: 2 calls, 1 pending. */
    assert_int_equal(tr_test_settle(rt), 0);
    assert_true(atomic_load(&client_seen_deadline) != 0);
    /* The callee saw the caller's deadline exactly (the clock is frozen). */
    assert_int_equal(atomic_load(&client_seen_deadline), atomic_load(&client_sent_deadline));
    assert_int_equal(atomic_load(&client_seen_deadline), t0 + 500 * MS);
    assert_int_equal(TR_STAT(rt, timers), 1);
    /* Time passes: the held call times out. */
    tr_test_advance_to(rt, t0 + 100 * MS);
    assert_int_equal(atomic_load(&client_done), 1);
    assert_int_equal(TR_STAT(rt, timers), 0);
    assert_int_equal(TR_STAT(rt, late_replies), 0);
    /* Now the server answers: too late, dropped and counted, not delivered. */
    assert_int_equal(tr_rt_send(rt, srv, RELEASE, NULL, 0), 0);
    assert_int_equal(tr_test_settle(rt), 0);
    assert_int_equal(TR_STAT(rt, late_replies), 1);
    /* A barrier through the client's loop: nothing stray arrived. The echo
     * is the deadline the server saw. */
    tr_test_ask(rt, srv, ECHO, NULL, 0, NULL, sizeof(uint64_t));
    assert_int_equal(atomic_load(&client_stray), 0);
    tr_runtime_free(rt);
}

/* ---- refs: answered twice, reused, and ending with their caller ------------ */

enum { ROUNDS = 200, PENDING = 5, QUIT = 7 };

/* Answers every request twice: the second answer must be dropped. */
static int twice_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (!(msg->flags & TR_MSG_REQUEST))
        return 0;
    TR_CHECK_EQ(tr_reply(self, msg, ECHO, &msg->ref, sizeof msg->ref), 0);
    TR_CHECK_EQ(tr_reply(self, msg, ECHO, &msg->ref, sizeof msg->ref), 0);
    return 0;
}

static const tr_behavior twice_b = {.name = "twice", .receive = twice_receive};

static int sink_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    (void)msg;
    return 0; /* holds nothing, answers nothing */
}

static const tr_behavior sink_b = {.name = "sink", .receive = sink_receive};

typedef struct caller {
    tr_pid twice, sink;
    tr_ref ref;
    uint32_t rounds;
} caller;

static _Atomic uint32_t caller_rounds, caller_bad;

static int caller_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    caller *c = state;
    TR_CHECK_EQ(len, 2 * sizeof(tr_pid));
    memcpy(&c->twice, arg, sizeof c->twice);
    memcpy(&c->sink, (const char *)arg + sizeof c->twice, sizeof c->sink);
    return tr_call(self, c->twice, ECHO, NULL, 0, TR_INFINITE, &c->ref);
}

static int caller_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    caller *c = state;
    if (msg->type == QUIT)
        return tr_exit(self, TR_EXIT_NORMAL);
    /* Only the first answer to each call arrives, with that call's ref. */
    tr_ref echoed = 0;
    if (msg->len == sizeof echoed)
        memcpy(&echoed, msg->data, sizeof echoed);
    if (msg->type != ECHO || !(msg->flags & TR_MSG_REPLY) || msg->ref != c->ref ||
        echoed != c->ref)
        atomic_fetch_add(&caller_bad, 1);
    tr_ref last = c->ref;
    if (++c->rounds < ROUNDS) {
        /* The entry just freed is taken again: a new ref all the same. */
        TR_CHECK_EQ(tr_call(self, c->twice, ECHO, NULL, 0, TR_INFINITE, &c->ref), 0);
        TR_CHECK(c->ref != last);
    } else {
        /* Calls that will never be answered, with and without a limit. */
        tr_ref r;
        for (int i = 0; i < PENDING; i++) {
            TR_CHECK_EQ(tr_call(self, c->sink, ECHO, NULL, 0, TR_INFINITE, &r), 0);
            TR_CHECK_EQ(tr_call(self, c->sink, ECHO, NULL, 0, 60000, &r), 0);
        }
    }
    atomic_store(&caller_rounds, c->rounds);
    return 0;
}

static const tr_behavior caller_b = {.name = "caller", .state_size = sizeof(caller),
                                     .init = caller_init, .receive = caller_receive};

static void test_call_refs(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, 0);
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    tr_pid peers[2], cli;
    o.loop = TR_LOOP(1);
    assert_int_equal(tr_rt_spawn(rt, &twice_b, &o, &peers[0]), 0);
    assert_int_equal(tr_rt_spawn(rt, &sink_b, &o, &peers[1]), 0);
    o.loop = TR_LOOP(0);
    o.arg = peers;
    o.arg_len = sizeof peers;
    assert_int_equal(tr_rt_spawn(rt, &caller_b, &o, &cli), 0);
    /* Every call answered once; every second answer dropped and counted. */
    TR_WAIT_UNTIL(atomic_load(&caller_rounds) == ROUNDS);
    TR_WAIT_UNTIL(TR_STAT(rt, late_replies) == ROUNDS);
    assert_int_equal(atomic_load(&caller_bad), 0);
    /* The unanswered calls are pending (a limit is counted with its call)... */
    assert_int_equal(TR_STAT(rt, timers), 2 * PENDING);
    /* ...and end with their caller. */
    assert_int_equal(tr_rt_send(rt, cli, QUIT, NULL, 0), 0);
    TR_WAIT_UNTIL(TR_STAT(rt, timers) == 0);
    TR_WAIT_UNTIL(tr_rt_send(rt, cli, QUIT, NULL, 0) == TR_ENOACTOR);
    assert_int_equal(TR_STAT(rt, late_replies), ROUNDS);
    tr_runtime_free(rt);
}

/* ---- plain-thread calls ---------------------------------------------------- */

static void test_plain_calls(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, 0);
    tr_pid srv;
    assert_int_equal(tr_rt_spawn(rt, &server_b, NULL, &srv), 0);

    /* A reply. */
    tr_rt_reply r;
    memset(&r, 0, sizeof r);
    int x = 7;
    uint64_t before = tr_now(rt);
    assert_int_equal(tr_rt_call(rt, srv, ECHO, &x, sizeof x, 30000, &r), 0);
    assert_int_equal(r.from, srv);
    assert_int_equal(r.type, ECHO);
    assert_int_equal(r.len, sizeof(uint64_t) + sizeof x);
    uint64_t d;
    memcpy(&d, r.data, sizeof d);
    assert_true(d >= before + 30000 * MS && d <= tr_now(rt) + 30000 * MS);
    assert_int_equal(memcmp((char *)r.data + sizeof d, &x, sizeof x), 0);
    tr_rt_reply_free(&r);
    assert_null(r.data);
    tr_rt_reply_free(NULL);

    /* No timeout: also fine. */
    assert_int_equal(tr_rt_call(rt, srv, ECHO, NULL, 0, TR_INFINITE, &r), 0);
    memcpy(&d, r.data, sizeof d);
    assert_int_equal(d, UINT64_MAX); /* no deadline */
    tr_rt_reply_free(&r);

    /* A zero timeout gives up at once; the reply that follows is late. */
    uint64_t late0 = TR_STAT(rt, late_replies);
    assert_int_equal(tr_rt_call(rt, srv, HOLD, NULL, 0, 0, &r), TR_ETIMEDOUT);
    assert_int_equal(tr_rt_send(rt, srv, RELEASE, NULL, 0), 0);
    TR_WAIT_UNTIL(TR_STAT(rt, late_replies) == late0 + 1);

    /* A timeout: the server holds the request. */
    uint64_t t = tr_test_wall_ns();
    assert_int_equal(tr_rt_call(rt, srv, HOLD, NULL, 0, 50, &r), TR_ETIMEDOUT);
    assert_true(tr_test_wall_ns() - t >= 50 * MS);
    assert_int_equal(tr_rt_send(rt, srv, RELEASE, NULL, 0), 0);
    TR_WAIT_UNTIL(TR_STAT(rt, late_replies) == late0 + 2);

    /* Bad input and dead actors. */
    assert_int_equal(tr_rt_call(NULL, srv, ECHO, NULL, 0, 10, &r), TR_EINVAL);
    assert_int_equal(tr_rt_call(rt, srv, ECHO, NULL, 0, 10, NULL), TR_EINVAL);
    assert_int_equal(tr_rt_call(rt, srv, TR_MSG_USER_MAX + 1u, NULL, 0, 10, &r), TR_EINVAL);
    assert_int_equal(tr_rt_call(rt, srv, ECHO, NULL, 1, 10, &r), TR_EINVAL);
    assert_int_equal(tr_rt_call(rt, TR_PID_NONE, ECHO, NULL, 0, 10, &r), TR_ENOACTOR);
    assert_int_equal(tr_rt_call(rt, srv + 2, ECHO, NULL, 0, 10, &r), TR_ENOACTOR);
    assert_int_equal(tr_signal_exit(rt, srv, TR_EXIT_SHUTDOWN), 0);
    TR_WAIT_UNTIL(tr_rt_call(rt, srv, ECHO, NULL, 0, 10, &r) == TR_ENOACTOR);

    tr_runtime_free(rt);
}

/* ---- a plain thread blocked in a call when the runtime stops -------------- */

static tr_runtime *stop_rt;

static int stopper_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == HOLD) /* never answered: stop the runtime instead */
        TR_CHECK_EQ(tr_runtime_stop(tr_runtime_of(self)), 0);
    return 0;
}

static const tr_behavior stopper_b = {.name = "stopper", .receive = stopper_receive};

static void test_call_during_stop(void **state)
{
    (void)state;
    stop_rt = tr_test_runtime(2, 0);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(stop_rt, &stopper_b, NULL, &p), 0);
    tr_rt_reply r;
    /* The callee is stopped with the tree: the call it owes fails with it. */
    assert_int_equal(tr_rt_call(stop_rt, p, HOLD, NULL, 0, TR_INFINITE, &r), TR_EEXITED);
    assert_int_equal(tr_runtime_wait(stop_rt), 0);
    assert_int_equal(tr_rt_call(stop_rt, p, HOLD, NULL, 0, 10, &r), TR_ESTOPPED);
    tr_runtime_free(stop_rt);
}

/* ---- wrong thread ------------------------------------------------------------ */

static _Atomic int wrong_thread_checked;

static int caller_in_loop_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    tr_rt_reply r;
    /* A blocking call on a loop thread would block the loop. */
    TR_CHECK_EQ(tr_rt_call(tr_runtime_of(self), tr_self(self), ECHO, NULL, 0, 10, &r),
                TR_EWRONGTHREAD);
    tr_msg fake = {.flags = TR_MSG_REQUEST, .from = tr_self(self), .ref = 1};
    TR_CHECK_EQ(tr_reply(NULL, &fake, 1, NULL, 0), TR_EINVAL);
    TR_CHECK_EQ(tr_reply(self, NULL, 1, NULL, 0), TR_EINVAL);
    /* A reply to a call nobody made is a late reply, not a crash. */
    TR_CHECK_EQ(tr_reply(self, &fake, 1, NULL, 0), 0);
    atomic_store(&wrong_thread_checked, 1);
    return 0;
}

static const tr_behavior caller_in_loop_b = {.name = "caller", .init = caller_in_loop_init,
                                             .receive = tr_test_ignore};

static void test_wrong_thread(void **state)
{
    (void)state;
    atomic_store(&wrong_thread_checked, 0);
    tr_runtime *rt = tr_test_runtime(1, 0);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &caller_in_loop_b, NULL, &p), 0);
    TR_WAIT_UNTIL(atomic_load(&wrong_thread_checked));
    TR_WAIT_UNTIL(TR_STAT(rt, late_replies) == 1);
    tr_runtime_free(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_actor_calls),
        cmocka_unit_test(test_call_refs),
        cmocka_unit_test(test_plain_calls),
        cmocka_unit_test(test_call_during_stop),
        cmocka_unit_test(test_wrong_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
