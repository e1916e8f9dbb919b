/*
 * test_contract_errors.c — the 0.2 contract's error ranges, internal
 * message types and the "no connection" exit kind (issue 15, decisions 3, 4
 * and 7):
 *
 *  - an application's error (TR_EUSER(n), a positive code) is logged, put
 *    in DOWN messages and exit reasons as the application's, never as the
 *    troupe error with the same number; a troupe code a handler propagates
 *    is still troupe's;
 *  - no public send path sends a reserved (internal) type; a user message
 *    that looks like a supervisor's private timer does nothing; supervisor
 *    requests with payloads of the wrong length are answered TR_EINVAL;
 *  - TR_EXIT_NOCONNECTION reaches monitors, links and supervisors.
 */
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tr_test.h"

enum { FAIL = 1, FAIL_TEXT = 2, PING = 3, REQ = 4 };

/* ---- what the actors saw ------------------------------------------------------- */

/* The test's lock, for what the actors saw; the log is the header's
 * capture (tr_test_has_log, tr_test_log_line). */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* Fails if `text` contains any troupe error's name or text. */
static void assert_no_troupe_error(const char *text)
{
#define TR__NO_NAME(name, value, txt)                                                       \
    if (strstr(text, "TR_" #name) || strstr(text, txt))                                     \
        fail_msg("'%s' names troupe's TR_" #name, text);
    TR_ERRNO_MAP(TR__NO_NAME)
#undef TR__NO_NAME
}

/* DOWN, EXIT and job outcomes the watcher saw, in order. */
typedef struct seen {
    uint32_t type;
    tr_pid pid;
    int kind, code;
    char text[80];
} seen;
static seen seen_v[16];
static _Atomic int nseen;
/* The exit reason the last failing actor's terminate saw. */
static int reason_code;
static char reason_text[128];

static void see(uint32_t type, tr_pid pid, int kind, int code, const char *text)
{
    pthread_mutex_lock(&mu);
    int i = atomic_load(&nseen);
    if (i < 16) {
        seen_v[i] = (seen){.type = type, .pid = pid, .kind = kind, .code = code};
        snprintf(seen_v[i].text, sizeof seen_v[i].text, "%s", text ? text : "");
    }
    atomic_store(&nseen, i + 1);
    pthread_mutex_unlock(&mu);
}

static seen seen_at(int i)
{
    pthread_mutex_lock(&mu);
    seen s = seen_v[i];
    pthread_mutex_unlock(&mu);
    return s;
}

/* A started 2-loop runtime whose log is captured. */
static tr_runtime *runtime(void)
{
    atomic_store(&nseen, 0);
    return tr_test_runtime(2, TR_TEST_LOG);
}

/* ---- the actors ----------------------------------------------------------------- */

/* Fails on request: FAIL returns the code, FAIL_TEXT exits with it and a
 * text; answers PING. Its terminate records the reason it saw. */
static int failer_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    int32_t code = 0;
    if (msg->len == sizeof code)
        memcpy(&code, msg->data, sizeof code);
    switch (msg->type) {
    case FAIL:
        return code;
    case FAIL_TEXT:
        return tr_exit_error(self, code, "disk on fire");
    case PING:
        return tr_reply(self, msg, PING, NULL, 0);
    }
    return 0;
}

static void failer_terminate(tr_actor *self, void *state, const tr_exit_reason *r)
{
    (void)self;
    (void)state;
    pthread_mutex_lock(&mu);
    reason_code = r->code;
    snprintf(reason_text, sizeof reason_text, "%s", r->text);
    pthread_mutex_unlock(&mu);
}

static const tr_behavior failer_b = {.name = "failer", .receive = failer_receive,
                                     .terminate = failer_terminate};

/* An init that fails with the code it is given. */
static int bad_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    (void)state;
    int32_t code;
    TR_CHECK_COPY(&code, arg, len);
    return code;
}

static const tr_behavior bad_init_b = {.name = "bad_init", .init = bad_init,
                                       .receive = failer_receive};

/* A job that fails with the code it is given. */
static int failing_job(tr_job *job, const void *arg, size_t len)
{
    (void)job;
    int32_t code;
    TR_CHECK_COPY(&code, arg, len);
    return code;
}

/* The watcher starts one failure, as its argument says, and records every
 * DOWN and job outcome. */
enum how { BY_RETURN, BY_EXIT_ERROR, BY_INIT, BY_JOB };
typedef struct order {
    int32_t how, code;
} order;

static int watcher_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    order o;
    TR_CHECK_COPY(&o, arg, len);
    tr_pid child;
    tr_ref ref;
    switch (o.how) {
    case BY_RETURN:
    case BY_EXIT_ERROR:
        TR_CHECK_EQ(tr_spawn_monitor(self, &failer_b, NULL, &child, &ref), 0);
        return tr_send(self, child, o.how == BY_RETURN ? FAIL : FAIL_TEXT, &o.code,
                       sizeof o.code);
    case BY_INIT: {
        tr_spawn_opts so;
        tr_spawn_opts_init(&so);
        so.arg = &o.code;
        so.arg_len = sizeof o.code;
        return tr_spawn_monitor(self, &bad_init_b, &so, &child, &ref);
    }
    case BY_JOB: {
        tr_job_id id;
        return tr_offload(self, failing_job, &o.code, sizeof o.code, &id);
    }
    }
    return TR_EUSER(99);
}

static int watcher_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    if (msg->type == TR_MSG_DOWN || msg->type == TR_MSG_EXIT) {
        const tr_down *d = msg->data;
        see(msg->type, d->pid, d->kind, d->code, d->text);
    } else if (msg->type == TR_MSG_JOB_FAILED) {
        int32_t code;
        TR_CHECK_COPY(&code, msg->data, msg->len);
        see(msg->type, TR_PID_NONE, TR_EXIT_ERROR, code, NULL);
    } else if (msg->type == TR_MSG_JOB_DONE) {
        see(msg->type, TR_PID_NONE, TR_EXIT_NORMAL, 0, NULL);
    }
    return 0;
}

static const tr_behavior watcher_b = {.name = "watcher", .init = watcher_init,
                                      .receive = watcher_receive};

/* Runs one failure and waits for its DOWN (or job outcome). */
static seen run_failure(tr_runtime *rt, int how, int32_t code)
{
    atomic_store(&nseen, 0);
    order o = {how, code};
    tr_spawn_opts so;
    tr_spawn_opts_init(&so);
    so.arg = &o;
    so.arg_len = sizeof o;
    tr_pid w;
    assert_int_equal(tr_rt_spawn(rt, &watcher_b, &so, &w), 0);
    TR_WAIT_UNTIL(atomic_load(&nseen) >= 1);
    seen s = seen_at(0);
    assert_int_equal(tr_signal_exit(rt, w, TR_EXIT_SHUTDOWN), 0);
    return s;
}

/* ---- decision 3: error ranges --------------------------------------------------- */

static void test_user_codes_and_names(void **state)
{
    (void)state;
    assert_int_equal(TR_EUSER(0), -65536);
    assert_int_equal(TR_EUSER(7), -65543);
    assert_int_equal(TR_EUSER_NUM(TR_EUSER(7)), 7);
    assert_int_equal(TR_EUSER_NUM(TR_EUSER(TR_EUSER_MAX)), TR_EUSER_MAX);
    assert_int_equal(TR_EUSER_MAX, (1 << 30) - 1);
    assert_int_equal(TR_ERR_TROUPE_MIN, -65535);

    /* The ranges. */
    assert_false(tr_err_is_user(0));
    assert_false(tr_err_is_user(TR_EINVAL));
    assert_false(tr_err_is_user(TR_EWRONGTHREAD));
    assert_false(tr_err_is_user(-7));   /* troupe's, whoever returns it */
    assert_false(tr_err_is_user(-9999)); /* reserved: troupe's, unlisted */
    assert_false(tr_err_is_user(-65535));
    assert_true(tr_err_is_user(TR_EUSER(0)));
    assert_true(tr_err_is_user(TR_EUSER(7)));
    assert_true(tr_err_is_user(TR_EUSER(TR_EUSER_MAX)));
    assert_true(tr_err_is_user(INT_MIN));
    assert_true(tr_err_is_user(1));
    assert_true(tr_err_is_user(INT_MAX));

    /* Texts and names: never a troupe error's for an application code. */
    assert_string_equal(tr_strerror(TR_EUSER(7)), "application error");
    assert_string_equal(tr_strerror(TR_EUSER(0)), "application error");
    assert_string_equal(tr_strerror(5), "application error");
    assert_string_equal(tr_strerror(INT_MIN), "application error");
    assert_string_equal(tr_err_name(TR_EUSER(7)), "TR_EUSER");
    assert_string_equal(tr_err_name(TR_EUSER(TR_EUSER_MAX)), "TR_EUSER");
    assert_string_equal(tr_err_name(5), "user");
    assert_string_equal(tr_err_name(INT_MAX), "user");
    assert_no_troupe_error(tr_strerror(TR_EUSER(7)));
    assert_no_troupe_error(tr_strerror(7));

    /* troupe's range keeps its meaning. */
    assert_string_equal(tr_err_name(-7), "TR_EWRONGTHREAD");
    assert_string_equal(tr_err_name(TR_ENOACTOR), "TR_ENOACTOR");
    assert_string_equal(tr_strerror(-9999), "unknown troupe error");
    assert_string_equal(tr_err_name(-9999), "TR_E?");
    assert_string_equal(tr_err_name(-65535), "TR_E?");
}

static void test_handler_error_is_the_applications(void **state)
{
    (void)state;
    tr_runtime *rt = runtime();
    char line[512];

    /* A handler returns TR_EUSER(7). Today's number 7 is TR_EWRONGTHREAD's
     * -7: the report must not say so. */
    seen s = run_failure(rt, BY_RETURN, TR_EUSER(7));
    assert_int_equal(s.type, TR_MSG_DOWN);
    assert_int_equal(s.kind, TR_EXIT_ERROR);
    assert_int_equal(s.code, TR_EUSER(7));
    assert_no_troupe_error(s.text);
    assert_string_equal(s.text, "application error");
    TR_WAIT_UNTIL(tr_test_has_log("(failer) exited abnormally: application error 7 (TR_EUSER(7))"));
    assert_true(tr_test_log_line("application error 7 (TR_EUSER(7))", line, sizeof line));
    assert_no_troupe_error(line);
    pthread_mutex_lock(&mu);
    assert_int_equal(reason_code, TR_EUSER(7));
    assert_string_equal(reason_text, "application error");
    pthread_mutex_unlock(&mu);

    /* With a text of its own. */
    s = run_failure(rt, BY_EXIT_ERROR, TR_EUSER(12));
    assert_int_equal(s.code, TR_EUSER(12));
    assert_string_equal(s.text, "disk on fire");
    TR_WAIT_UNTIL(tr_test_has_log("exited abnormally: application error 12 (TR_EUSER(12)): disk on fire"));

    /* A positive code is the application's too, and a failure. */
    s = run_failure(rt, BY_RETURN, 5);
    assert_int_equal(s.kind, TR_EXIT_ERROR);
    assert_int_equal(s.code, 5);
    assert_no_troupe_error(s.text);
    TR_WAIT_UNTIL(tr_test_has_log("(failer) exited abnormally: application error 5\n"));

    /* A troupe code a handler propagates is troupe's. */
    s = run_failure(rt, BY_RETURN, TR_ENOACTOR);
    assert_int_equal(s.code, TR_ENOACTOR);
    assert_string_equal(s.text, tr_strerror(TR_ENOACTOR));
    TR_WAIT_UNTIL(tr_test_has_log("(failer) exited abnormally: error -3 (TR_ENOACTOR): no such actor"));

    /* An unlisted code of troupe's range is troupe's, unknown. */
    s = run_failure(rt, BY_RETURN, -9999);
    assert_int_equal(s.code, -9999);
    TR_WAIT_UNTIL(tr_test_has_log("exited abnormally: error -9999 (TR_E?): unknown troupe error"));

    assert_int_equal(tr_runtime_free(rt), 0);
}

static void test_init_and_job_errors_are_the_applications(void **state)
{
    (void)state;
    tr_runtime *rt = runtime();

    /* A positive return from init is a failure, reported as the application's. */
    seen s = run_failure(rt, BY_INIT, 5);
    assert_int_equal(s.kind, TR_EXIT_ERROR);
    assert_int_equal(s.code, 5);
    TR_WAIT_UNTIL(tr_test_has_log("(bad_init) exited abnormally: application error 5: init failed"));
    s = run_failure(rt, BY_INIT, TR_EUSER(3));
    assert_int_equal(s.code, TR_EUSER(3));
    TR_WAIT_UNTIL(tr_test_has_log("application error 3 (TR_EUSER(3)): init failed"));

    /* Jobs: a positive return fails the job; codes arrive as they were. */
    s = run_failure(rt, BY_JOB, 2);
    assert_int_equal(s.type, TR_MSG_JOB_FAILED);
    assert_int_equal(s.code, 2);
    s = run_failure(rt, BY_JOB, TR_EUSER(4));
    assert_int_equal(s.type, TR_MSG_JOB_FAILED);
    assert_int_equal(s.code, TR_EUSER(4));

    assert_int_equal(tr_runtime_free(rt), 0);
}

static void test_supervisor_reports_the_applications_error(void **state)
{
    (void)state;
    tr_runtime *rt = runtime();
    tr_child_spec c = {.id = "w", .behavior = &failer_b, .restart = TR_TEMPORARY};
    tr_sup_spec spec = {.strategy = TR_ONE_FOR_ONE, .children = &c, .nchildren = 1};
    tr_pid sup;
    assert_int_equal(tr_rt_sup_spawn(rt, &spec, NULL, &sup), 0);
    tr_sup_child kids[1];
    assert_int_equal(tr_rt_sup_which_children(rt, sup, kids, 1), 1);
    int32_t code = TR_EUSER(9);
    assert_int_equal(tr_rt_send(rt, kids[0].pid, FAIL, &code, sizeof code), 0);
    TR_WAIT_UNTIL(tr_test_has_log("child 'w'"));
    char line[512];
    TR_WAIT_UNTIL(tr_test_log_line("exited: application error 9 (TR_EUSER(9))", line, sizeof line));
    assert_no_troupe_error(line);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- decision 4: internal message types ------------------------------------------ */

/* Reserved types a user must not send (public notices, private types, and
 * numbers the runtime does not use). */
static const uint32_t reserved[] = {
    TR_MSG_USER_MAX + 1u, TR_MSG_CALL_TIMEOUT, TR_MSG_DOWN, TR_MSG_EXIT, TR_MSG_STARTED,
    TR_MSG_JOB_FAILED, TR_MSG_GROUP_DONE, TR_MSG_CHAN_END, TR_MSG_SUP_ADD,
    0xffff0016u /* the supervisor's start wait */, 0xffff0017u /* its kill timer */,
    0xffff0018u /* its restart timer */, 0xffff001fu /* describe */,
    0xffff0021u /* a group deadline */, 0xffffffffu,
};
enum { NRESERVED = sizeof reserved / sizeof reserved[0] };

static void freed_never(void *buf)
{
    (void)buf;
    TR_CHECK(!"a refused send must not take its buffer");
}

static _Atomic int probed;

/* From inside an actor: every send path refuses every reserved type; the
 * supervisor requests users may call are accepted by tr_call. */
static int prober_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    tr_pid target;
    TR_CHECK_COPY(&target, arg, len);
    tr_pid me = tr_self(self);
    tr_chan *ch;
    TR_CHECK_EQ(tr_chan_create(tr_runtime_of(self), NULL, &ch), 0);
    char buf[8] = "payload";
    int64_t zero = 0;
    for (int i = 0; i < NRESERVED; i++) {
        uint32_t t = reserved[i];
        tr_ref ref;
        tr_ref sub;
        TR_CHECK_EQ(tr_send(self, target, t, &zero, sizeof zero), TR_EINVAL);
        TR_CHECK_EQ(tr_send(self, me, t, NULL, 0), TR_EINVAL);
        TR_CHECK_EQ(tr_send_owned(self, target, t, buf, sizeof buf, freed_never), TR_EINVAL);
        TR_CHECK_EQ(tr_send_after(self, target, 1, t, &zero, sizeof zero, NULL), TR_EINVAL);
        TR_CHECK_EQ(tr_send_interval(self, me, 5, t, NULL, 0, NULL), TR_EINVAL);
        TR_CHECK_EQ(tr_call(self, target, t, NULL, 0, 1000, &ref), TR_EINVAL);
        TR_CHECK_EQ(tr_chan_subscribe(self, ch, t, 1, &sub), TR_EINVAL);
        TR_CHECK_EQ(tr_chan_notify_room(self, ch, t), TR_EINVAL);
    }
    /* A raw ADD, even with a well-formed-looking payload, is refused. */
    unsigned char add[128] = {0};
    tr_ref ref;
    TR_CHECK_EQ(tr_call(self, target, TR_MSG_SUP_ADD, add, sizeof add, 1000, &ref), TR_EINVAL);
    /* The requests users may call go through (the target answers them). */
    TR_CHECK_EQ(tr_call(self, target, TR_MSG_SUP_WHICH, NULL, 0, 1000, &ref), 0);
    tr_chan_release(ch);
    atomic_store(&probed, 1);
    return 0;
}

static int prober_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    if (msg->type == TR_MSG_SUP_WHICH && (msg->flags & TR_MSG_REPLY))
        atomic_store(&probed, 2);
    return 0;
}

static const tr_behavior prober_b = {.name = "prober", .init = prober_init,
                                     .receive = prober_receive};

/* Answers REQ and TR_MSG_SUP_WHICH requests; checks tr_reply's types. */
static int answerer_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (!(msg->flags & TR_MSG_REQUEST))
        return 0;
    for (int i = 0; i < NRESERVED; i++)
        TR_CHECK_EQ(tr_reply(self, msg, reserved[i], NULL, 0), TR_EINVAL);
    if (msg->type == REQ) {
        /* A request type users may call, but not this request's. */
        TR_CHECK_EQ(tr_reply(self, msg, TR_MSG_SUP_WHICH, NULL, 0), TR_EINVAL);
        return tr_reply(self, msg, REQ, "ok", 2);
    }
    /* Answering a supervisor request with its own type is allowed. */
    return tr_reply(self, msg, msg->type, NULL, 0);
}

static const tr_behavior answerer_b = {.name = "answerer", .receive = answerer_receive};

static int count_actor(const tr_actor_info *info, void *ud)
{
    (void)info;
    (*(int *)ud)++;
    return 0;
}

static void test_user_sends_of_internal_types_refused(void **state)
{
    (void)state;
    tr_runtime *rt = runtime();
    tr_pid target;
    assert_int_equal(tr_rt_spawn(rt, &answerer_b, NULL, &target), 0);

    /* From a plain thread. */
    char buf[8] = "payload";
    for (int i = 0; i < NRESERVED; i++) {
        uint32_t t = reserved[i];
        assert_int_equal(tr_rt_send(rt, target, t, NULL, 0), TR_EINVAL);
        assert_int_equal(tr_rt_send_owned(rt, target, t, buf, sizeof buf, freed_never),
                         TR_EINVAL);
        assert_int_equal(tr_test_call_rc(rt, target, t, NULL, 0, 1000), TR_EINVAL);
    }
    /* The describe type tr_runtime_tree uses, named: refused to users... */
    assert_int_equal(tr_test_call_rc(rt, target, 0xffff001fu, NULL, 0, 1000), TR_EINVAL);
    assert_int_equal(tr_test_call_rc(rt, target, TR_MSG_SUP_ADD, buf, sizeof buf, 1000),
                     TR_EINVAL);

    /* tr_reply: user types, or a supervisor request's own type. */
    tr_rt_reply r;
    assert_int_equal(tr_rt_call(rt, target, REQ, NULL, 0, TR_TEST_CALL_MS, &r), 0);
    assert_int_equal(r.type, REQ);
    assert_int_equal(r.len, 2);
    assert_memory_equal(r.data, "ok", 2);
    tr_rt_reply_free(&r);

    /* ...while the runtime's own walk still works through its internal
     * path (now that the target has run, the root knows it). */
    int walked = 0;
    assert_int_equal(tr_runtime_tree(rt, count_actor, &walked), 0);
    assert_int_equal(walked, 1);
    assert_int_equal(
        tr_rt_call(rt, target, TR_MSG_SUP_STOP, &target, sizeof target, TR_TEST_CALL_MS, &r),
        0);
    assert_int_equal(r.type, TR_MSG_SUP_STOP);
    assert_int_equal(r.len, 0);
    tr_rt_reply_free(&r);

    /* From an actor. */
    atomic_store(&probed, 0);
    tr_spawn_opts so;
    tr_spawn_opts_init(&so);
    so.arg = &target;
    so.arg_len = sizeof target;
    tr_pid prober;
    assert_int_equal(tr_rt_spawn(rt, &prober_b, &so, &prober), 0);
    TR_WAIT_UNTIL(atomic_load(&probed) == 2);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* A child that answers PING; its restarts would change its pid. */
static tr_child_spec pinger_spec(const char *id, tr_restart restart)
{
    tr_child_spec c = {.id = id, .behavior = &failer_b, .restart = restart};
    return c;
}

/* A one_for_one supervisor with one permanent pinger child, started. */
static void one_child_sup(tr_runtime *rt, tr_pid *sup, tr_pid *child)
{
    tr_child_spec c = pinger_spec("w", TR_PERMANENT);
    tr_sup_spec spec = {.strategy = TR_ONE_FOR_ONE, .children = &c, .nchildren = 1};
    assert_int_equal(tr_rt_sup_spawn(rt, &spec, NULL, sup), 0);
    tr_sup_child kids[1];
    assert_int_equal(tr_rt_sup_which_children(rt, *sup, kids, 1), 1);
    *child = kids[0].pid;
}

static void test_spoofed_supervisor_timer_does_nothing(void **state)
{
    (void)state;
    tr_runtime *rt = runtime();
    tr_pid sup, child;
    one_child_sup(rt, &sup, &child);
    tr_sup_child kids[1];
    assert_true(child != TR_PID_NONE);

    /* Type 1 with the child's pid was the supervisor's kill timer, type 2
     * with a serial its restart timer; short payloads were read past their
     * end. Now they are user messages, which a supervisor ignores. */
    uint32_t serial = 1;
    assert_int_equal(tr_rt_send(rt, sup, 1, &child, sizeof child), 0);
    assert_int_equal(tr_rt_send(rt, sup, 1, NULL, 0), 0);
    assert_int_equal(tr_rt_send(rt, sup, 1, "x", 1), 0);
    assert_int_equal(tr_rt_send(rt, sup, 2, &serial, sizeof serial), 0);
    assert_int_equal(tr_rt_send(rt, sup, 2, NULL, 0), 0);

    /* Once the supervisor has answered this, it has handled them all (one
     * sender's messages arrive in order). Had it killed the child, the kill
     * signal would be ahead of the PING below. */
    assert_int_equal(tr_rt_sup_which_children(rt, sup, kids, 1), 1);
    tr_test_ask(rt, child, PING, NULL, 0, NULL, 0);
    assert_int_equal(tr_rt_sup_which_children(rt, sup, kids, 1), 1);
    assert_int_equal(kids[0].pid, child);
    assert_int_equal(kids[0].restarts, 0);

    /* As a request, type 1 is answered TR_EINVAL, not left unanswered. */
    tr_rt_reply r;
    assert_int_equal(tr_rt_call(rt, sup, 1, &child, sizeof child, TR_TEST_CALL_MS, &r), 0);
    assert_int_equal(r.type, 1);
    assert_int_equal(r.len, sizeof(int32_t));
    int32_t rc;
    memcpy(&rc, r.data, sizeof rc);
    assert_int_equal(rc, TR_EINVAL);
    tr_rt_reply_free(&r);
    tr_test_ask(rt, child, PING, NULL, 0, NULL, 0);
    assert_false(tr_test_has_log("exited abnormally"));
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* A call whose reply has the request's type and is an int32_t rc (or a
 * tr_sup_started's rc). */
static int32_t sup_rc(tr_runtime *rt, tr_pid sup, uint32_t type, const void *data, size_t len)
{
    tr_rt_reply r;
    assert_int_equal(tr_rt_call(rt, sup, type, data, len, TR_TEST_CALL_MS, &r), 0);
    assert_int_equal(r.type, type);
    int32_t rc;
    if (r.len == sizeof(tr_sup_started)) {
        tr_sup_started st;
        memcpy(&st, r.data, sizeof st);
        rc = st.rc;
    } else {
        assert_int_equal(r.len, sizeof rc);
        memcpy(&rc, r.data, sizeof rc);
    }
    tr_rt_reply_free(&r);
    return rc;
}

static void test_supervisor_requests_check_lengths(void **state)
{
    (void)state;
    tr_runtime *rt = runtime();
    tr_pid sup, child;
    one_child_sup(rt, &sup, &child);
    tr_sup_child kids[1];

    char big[64];
    memset(big, 'w', sizeof big);
    /* STOP: exactly a pid. */
    assert_int_equal(sup_rc(rt, sup, TR_MSG_SUP_STOP, &child, 3), TR_EINVAL);
    assert_int_equal(sup_rc(rt, sup, TR_MSG_SUP_STOP, NULL, 0), TR_EINVAL);
    assert_int_equal(sup_rc(rt, sup, TR_MSG_SUP_STOP, big, sizeof child + 1), TR_EINVAL);
    tr_pid nobody = child ^ 1;
    assert_int_equal(sup_rc(rt, sup, TR_MSG_SUP_STOP, &nobody, sizeof nobody), TR_ENOTFOUND);
    /* RESTART and DELETE: an id of 1 .. TR_CHILD_ID_MAX bytes. */
    assert_int_equal(sup_rc(rt, sup, TR_MSG_SUP_RESTART, NULL, 0), TR_EINVAL);
    assert_int_equal(sup_rc(rt, sup, TR_MSG_SUP_RESTART, big, TR_CHILD_ID_MAX + 1), TR_EINVAL);
    assert_int_equal(sup_rc(rt, sup, TR_MSG_SUP_RESTART, big, sizeof big), TR_EINVAL);
    assert_int_equal(sup_rc(rt, sup, TR_MSG_SUP_DELETE, NULL, 0), TR_EINVAL);
    assert_int_equal(sup_rc(rt, sup, TR_MSG_SUP_DELETE, big, TR_CHILD_ID_MAX + 1), TR_EINVAL);
    assert_int_equal(sup_rc(rt, sup, TR_MSG_SUP_DELETE, big, TR_CHILD_ID_MAX), TR_ENOTFOUND);
    assert_int_equal(sup_rc(rt, sup, TR_MSG_SUP_DELETE, "w", 1), TR_EEXIST);
    /* WHICH: no payload (a byte was once the internal start wait). */
    assert_int_equal(sup_rc(rt, sup, TR_MSG_SUP_WHICH, "x", 1), TR_EINVAL);
    assert_int_equal(sup_rc(rt, sup, TR_MSG_SUP_WHICH, big, 5), TR_EINVAL);
    /* START: a static supervisor has none. */
    assert_int_equal(sup_rc(rt, sup, TR_MSG_SUP_START, big, 3), TR_EINVAL);

    /* Nothing happened to the child, and the supervisor still works. */
    assert_int_equal(tr_rt_sup_which_children(rt, sup, kids, 1), 1);
    assert_int_equal(kids[0].pid, child);
    assert_int_equal(tr_rt_sup_stop_child(rt, sup, child), 0);
    TR_WAIT_UNTIL(tr_rt_sup_which_children(rt, sup, kids, 1) == 1 && kids[0].pid == TR_PID_NONE);
    tr_pid again;
    assert_int_equal(tr_rt_sup_restart_child(rt, sup, "w", &again), 0);
    assert_true(again != child && again != TR_PID_NONE);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* tr_sup_add_child from an actor: the one way an actor sends ADD. */
static tr_pid adder_sup;
static _Atomic int added_rc = 1;
static _Atomic tr_pid added_pid;
static const tr_child_spec added_spec = {.id = "added", .behavior = &failer_b,
                                         .restart = TR_TEMPORARY};

static int adder_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    tr_ref ref;
    return tr_sup_add_child(self, adder_sup, &added_spec, 5000, &ref);
}

static int adder_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    if (msg->type == TR_MSG_SUP_ADD && (msg->flags & TR_MSG_REPLY)) {
        tr_sup_started st;
        TR_CHECK_COPY(&st, msg->data, msg->len);
        atomic_store(&added_pid, st.pid);
        atomic_store(&added_rc, st.rc);
    }
    return 0;
}

static const tr_behavior adder_b = {.name = "adder", .init = adder_init,
                                    .receive = adder_receive};

static void test_sup_add_child_from_an_actor(void **state)
{
    (void)state;
    tr_runtime *rt = runtime();
    tr_sup_spec spec = {.strategy = TR_ONE_FOR_ONE};
    assert_int_equal(tr_rt_sup_spawn(rt, &spec, NULL, &adder_sup), 0);
    tr_pid adder;
    assert_int_equal(tr_rt_spawn(rt, &adder_b, NULL, &adder), 0);
    TR_WAIT_UNTIL(atomic_load(&added_rc) != 1);
    assert_int_equal(atomic_load(&added_rc), 0);
    tr_sup_child kids[1];
    assert_int_equal(tr_rt_sup_which_children(rt, adder_sup, kids, 1), 1);
    assert_string_equal(kids[0].id, "added");
    assert_int_equal(kids[0].pid, atomic_load(&added_pid));
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- decision 7: no connection ------------------------------------------------------ */

/* An actor that links to the pid it is given; traps exits if asked. */
typedef struct link_arg {
    tr_pid to;
    int trap;
} link_arg;

static int linker_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    link_arg a;
    TR_CHECK_COPY(&a, arg, len);
    if (a.trap)
        TR_CHECK_EQ(tr_trap_exits(self, 1), 0);
    return tr_link(self, a.to);
}

static int linker_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == TR_MSG_EXIT) {
        if (msg->from == tr_parent(self))
            return tr_exit(self, TR_EXIT_SHUTDOWN); /* trapped, but no lingering */
        const tr_down *d = msg->data;
        see(msg->type, d->pid, d->kind, d->code, d->text);
    }
    return 0;
}

static const tr_behavior linker_b = {.name = "linker", .init = linker_init,
                                     .receive = linker_receive};

static _Atomic tr_pid lost_target;
static _Atomic int lost_ready;

/* Spawns a target, a linked actor and a linked trapping actor, all
 * monitored; says it is ready once both links are made. */
static int lost_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    tr_pid target, l1, l2;
    tr_ref ref;
    TR_CHECK_EQ(tr_spawn_monitor(self, &failer_b, NULL, &target, &ref), 0);
    tr_spawn_opts so;
    tr_spawn_opts_init(&so);
    link_arg a = {target, 0};
    so.arg = &a;
    so.arg_len = sizeof a;
    so.notify_started = 1;
    TR_CHECK_EQ(tr_spawn_monitor(self, &linker_b, &so, &l1, &ref), 0);
    link_arg b = {target, 1};
    so.arg = &b;
    TR_CHECK_EQ(tr_spawn_monitor(self, &linker_b, &so, &l2, &ref), 0);
    atomic_store(&lost_target, target);
    return 0;
}

static int lost_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    if (msg->type == TR_MSG_STARTED)
        atomic_fetch_add(&lost_ready, 1);
    else if (msg->type == TR_MSG_DOWN) {
        const tr_down *d = msg->data;
        see(msg->type, d->pid, d->kind, d->code, d->text);
    }
    return 0;
}

static const tr_behavior lost_b = {.name = "lost", .init = lost_init, .receive = lost_receive};

static void test_noconnection_reaches_monitors_and_links(void **state)
{
    (void)state;
    assert_string_equal(tr_exit_kind_name(TR_EXIT_NOCONNECTION), "noconnection");
    assert_int_equal(TR_EXIT_NOCONNECTION, TR_EXIT_ERROR + 1); /* old values kept */
    assert_int_equal(TR_EXIT_ERROR, 3);

    tr_runtime *rt = runtime();
    atomic_store(&lost_ready, 0);
    tr_pid w;
    assert_int_equal(tr_rt_spawn(rt, &lost_b, NULL, &w), 0);
    TR_WAIT_UNTIL(atomic_load(&lost_ready) == 2);
    tr_pid target = atomic_load(&lost_target);
    assert_int_equal(tr_signal_exit(rt, target, TR_EXIT_NOCONNECTION), 0);

    /* The target's DOWN, the trapping linker's EXIT, the plain linker's
     * DOWN (it ended with the same reason): four notices in all, with the
     * trapping linker's own end (shutdown) only at the runtime's stop. */
    TR_WAIT_UNTIL(atomic_load(&nseen) >= 3);
    int downs = 0, exits = 0;
    for (int i = 0; i < 3; i++) {
        seen s = seen_at(i);
        assert_int_equal(s.kind, TR_EXIT_NOCONNECTION);
        assert_int_equal(s.code, 0);
        assert_string_equal(s.text, "noconnection");
        downs += s.type == TR_MSG_DOWN;
        exits += s.type == TR_MSG_EXIT;
        if (s.type == TR_MSG_EXIT)
            assert_int_equal(s.pid, target);
    }
    assert_int_equal(downs, 2);
    assert_int_equal(exits, 1);
    TR_WAIT_UNTIL(tr_test_has_log("(failer) exited abnormally: noconnection"));
    TR_WAIT_UNTIL(tr_test_has_log("(linker) exited abnormally: noconnection"));
    assert_int_equal(tr_runtime_free(rt), 0);
}

static _Atomic int exit_rc = 1;

static int self_exit_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    /* An actor cannot lose its own connection. */
    atomic_store(&exit_rc, tr_exit(self, TR_EXIT_NOCONNECTION));
    return 0;
}

static const tr_behavior self_exit_b = {.init = self_exit_init, .receive = failer_receive};

static void test_noconnection_restarts_transient_children(void **state)
{
    (void)state;
    tr_runtime *rt = runtime();
    tr_child_spec c = pinger_spec("t", TR_TRANSIENT);
    tr_sup_spec spec = {.strategy = TR_ONE_FOR_ONE, .children = &c, .nchildren = 1};
    tr_pid sup;
    assert_int_equal(tr_rt_sup_spawn(rt, &spec, NULL, &sup), 0);
    tr_sup_child kids[1];
    assert_int_equal(tr_rt_sup_which_children(rt, sup, kids, 1), 1);
    tr_pid first = kids[0].pid;
    assert_int_equal(tr_signal_exit(rt, first, TR_EXIT_NOCONNECTION), 0);
    tr_sup_child again = tr_test_wait_child(rt, sup, 0, first);
    assert_int_equal(again.restarts, 1);
    assert_int_equal(tr_rt_sup_which_children(rt, sup, kids, 1), 1);
    TR_WAIT_UNTIL(tr_test_has_log("exited: noconnection"));

    /* tr_exit does not take it; tr_signal_exit still refuses ERROR. */
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &self_exit_b, NULL, &p), 0);
    TR_WAIT_UNTIL(atomic_load(&exit_rc) != 1);
    assert_int_equal(atomic_load(&exit_rc), TR_EINVAL);
    assert_int_equal(tr_signal_exit(rt, p, TR_EXIT_ERROR), TR_EINVAL);
    assert_int_equal(tr_runtime_free(rt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_codes_and_names),
        cmocka_unit_test(test_handler_error_is_the_applications),
        cmocka_unit_test(test_init_and_job_errors_are_the_applications),
        cmocka_unit_test(test_supervisor_reports_the_applications_error),
        cmocka_unit_test(test_user_sends_of_internal_types_refused),
        cmocka_unit_test(test_spoofed_supervisor_timer_does_nothing),
        cmocka_unit_test(test_supervisor_requests_check_lengths),
        cmocka_unit_test(test_sup_add_child_from_an_actor),
        cmocka_unit_test(test_noconnection_reaches_monitors_and_links),
        cmocka_unit_test(test_noconnection_restarts_transient_children),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
