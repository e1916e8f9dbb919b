/*
 * test_metrics.c — the metrics (docs/observability.md): every metric moves
 * as its events happen, with exact counts in settled scenarios (the test
 * kit's settle: nothing is in flight when a figure is read); the text
 * format parses as Prometheus text (prom_check.h, itself tested on broken
 * input); the registry's bad inputs; user metrics updated from actors and
 * threads at once; stuck-call chains and cycles; the hang report.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "prom_check.h"
#include "tr_test.h"
#include "troupe_test.h"

enum { GO = 1, HIT, ASK, FAIL, INC, STOP };

static double metric(tr_runtime *rt, const char *name, const char *labels)
{
    double v = -1;
    int rc = tr_metrics_value(rt, name, labels, &v);
    if (rc != 0)
        fail_msg("%s{%s}: %s", name, labels ? labels : "", tr_strerror(rc));
    return v;
}

static void check_text(tr_runtime *rt)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(tr_metrics_text(rt, &text, &len), 0);
    assert_int_equal(strlen(text), len);
    char err[512];
    if (prom_check(text, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", text);
        fail_msg("exposition: %s", err);
    }
    free(text);
}

/* ---- behaviours ------------------------------------------------------------------ */

/* A worker: HIT counted; FAIL fails it; GO (arg: a pid and a count)
 * sends that many HITs there. */
typedef struct worker {
    uint32_t hits;
} worker;

typedef struct fanout {
    tr_pid to[2];
    uint32_t n;
} fanout;

static int worker_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    worker *w = state;
    switch (msg->type) {
    case HIT:
        w->hits++;
        return 0;
    case FAIL:
        return TR_EUSER(1);
    case STOP:
        return tr_exit(self, TR_EXIT_NORMAL);
    case GO: {
        fanout f;
        memcpy(&f, msg->data, sizeof f);
        for (uint32_t i = 0; i < f.n; i++)
            for (unsigned k = 0; k < 2; k++)
                if (f.to[k])
                    TR_CHECK(tr_send(self, f.to[k], HIT, NULL, 0) == 0);
        return 0;
    }
    case ASK:
        return tr_reply(self, msg, ASK, &w->hits, sizeof w->hits);
    default:
        return 0;
    }
}

static const tr_behavior worker_b = {.name = "worker", .state_size = sizeof(worker),
                                     .receive = worker_receive};
static const tr_behavior other_b = {.name = "other_kind", .state_size = sizeof(worker),
                                    .receive = worker_receive};

static tr_runtime *kit(unsigned loops, tr_runtime_options *extra)
{
    tr_runtime_options o = extra ? *extra : tr_test_options(loops, TR_TEST_QUIET);
    o.loops = loops;
    if (!o.log)
        o.log = tr_test_quiet;
    tr_runtime *rt = NULL;
    assert_int_equal(tr_test_create(&rt, &o, NULL), 0);
    assert_int_equal(tr_runtime_start(rt), 0);
    return rt;
}

static void test_actor_counts(void **st)
{
    (void)st;
    tr_runtime *rt = kit(2, NULL);
    tr_pid w[5];
    for (int i = 0; i < 5; i++)
        w[i] = tr_test_spawn(rt, &worker_b, TR_LOOP(i % 2), NULL, 0);
    tr_pid o = tr_test_spawn(rt, &other_b, TR_LOOP(0), NULL, 0);
    (void)o;
    assert_int_equal(tr_test_settle(rt), 0);
    assert_true(metric(rt, "troupe_actors", "behavior=\"worker\"") == 5);
    assert_true(metric(rt, "troupe_actors_spawned_total", "behavior=\"worker\"") == 5);
    assert_true(metric(rt, "troupe_actors", "behavior=\"other_kind\"") == 1);
    double loop0 = metric(rt, "troupe_loop_actors", "loop=\"0\"");
    double loop1 = metric(rt, "troupe_loop_actors", "loop=\"1\"");
    if (!(loop0 == 5 && loop1 == 2)) /* the root lives on loop 0 */
        fail_msg("loop actors %g %g", loop0, loop1);

    /* 7 messages to each worker: handled per behaviour. */
    for (int i = 0; i < 5; i++)
        for (int k = 0; k < 7; k++)
            assert_int_equal(tr_rt_send(rt, w[i], HIT, NULL, 0), 0);
    assert_int_equal(tr_test_settle(rt), 0);
    assert_true(metric(rt, "troupe_behavior_messages_total", "behavior=\"worker\"") == 35);
    assert_true(metric(rt, "troupe_behavior_messages_total", "behavior=\"other_kind\"") == 0);

    /* Two end normally, one fails. */
    double normal0 = metric(rt, "troupe_actor_exits_total", "reason=\"normal\"");
    double error0 = metric(rt, "troupe_actor_exits_total", "reason=\"error\"");
    assert_int_equal(tr_rt_send(rt, w[0], STOP, NULL, 0), 0);
    assert_int_equal(tr_rt_send(rt, w[1], STOP, NULL, 0), 0);
    assert_int_equal(tr_rt_send(rt, w[2], FAIL, NULL, 0), 0);
    assert_int_equal(tr_test_settle(rt), 0);
    assert_true(metric(rt, "troupe_actors", "behavior=\"worker\"") == 2);
    assert_true(metric(rt, "troupe_actors_exited_total", "behavior=\"worker\"") == 3);
    assert_true(metric(rt, "troupe_actor_exits_total", "reason=\"normal\"") == normal0 + 2);
    assert_true(metric(rt, "troupe_actor_exits_total", "reason=\"error\"") == error0 + 1);
    check_text(rt);
    tr_runtime_free(rt);
}

static void test_messages_sent_and_cross_loop(void **st)
{
    (void)st;
    tr_runtime *rt = kit(2, NULL);
    tr_pid a = tr_test_spawn(rt, &worker_b, TR_LOOP(0), NULL, 0);
    tr_pid near = tr_test_spawn(rt, &worker_b, TR_LOOP(0), NULL, 0);
    tr_pid far = tr_test_spawn(rt, &worker_b, TR_LOOP(1), NULL, 0);
    assert_int_equal(tr_test_settle(rt), 0);
    double sent0 = metric(rt, "troupe_messages_sent_total", NULL);
    double cross0 = metric(rt, "troupe_messages_cross_loop_total", NULL);
    double h0 = metric(rt, "troupe_messages_handled_total", "loop=\"1\"");
    fanout f = {.to = {near, far}, .n = 100};
    assert_int_equal(tr_rt_send(rt, a, GO, &f, sizeof f), 0);
    assert_int_equal(tr_test_settle(rt), 0);
    /* The GO from this thread, then 100 to each. */
    assert_true(metric(rt, "troupe_messages_sent_total", NULL) == sent0 + 201);
    assert_true(metric(rt, "troupe_messages_cross_loop_total", NULL) == cross0 + 100);
    assert_true(metric(rt, "troupe_messages_handled_total", "loop=\"1\"") == h0 + 100);
    tr_runtime_free(rt);
}

/* ---- calls, jobs ------------------------------------------------------------------ */

/* A caller: GO (arg: the callee's pid, a timeout) calls it with ASK. */
typedef struct callgo {
    tr_pid to;
    tr_duration timeout;
} callgo;

static int caller_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == GO) {
        callgo g;
        memcpy(&g, msg->data, sizeof g);
        tr_ref ref;
        TR_CHECK(tr_call(self, g.to, ASK, NULL, 0, g.timeout, &ref) == 0);
    }
    return 0;
}

static const tr_behavior caller_b = {.name = "caller", .receive = caller_receive};

/* Never answers; FAIL fails it. */
static int mute_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    return msg->type == FAIL ? TR_EUSER(2) : 0;
}

static const tr_behavior mute_b = {.name = "mute", .receive = mute_receive};

static void test_calls(void **st)
{
    (void)st;
    tr_runtime *rt = kit(2, NULL);
    tr_pid c = tr_test_spawn(rt, &caller_b, TR_LOOP(0), NULL, 0);
    tr_pid m = tr_test_spawn(rt, &mute_b, TR_LOOP(1), NULL, 0);
    assert_int_equal(tr_test_settle(rt), 0);
    callgo g = {.to = m, .timeout = 1000};
    assert_int_equal(tr_rt_send(rt, c, GO, &g, sizeof g), 0);
    assert_int_equal(tr_test_settle(rt), 0);
    assert_true(metric(rt, "troupe_calls_pending", NULL) == 1);
    assert_true(metric(rt, "troupe_call_timeouts_total", NULL) == 0);
    assert_int_equal(tr_test_advance(rt, 1000), 0);
    assert_true(metric(rt, "troupe_calls_pending", NULL) == 0);
    assert_true(metric(rt, "troupe_call_timeouts_total", NULL) == 1);
    /* A call whose callee fails. */
    g.timeout = TR_INFINITE;
    assert_int_equal(tr_rt_send(rt, c, GO, &g, sizeof g), 0);
    assert_int_equal(tr_test_settle(rt), 0);
    assert_true(metric(rt, "troupe_calls_pending", NULL) == 1);
    assert_int_equal(tr_rt_send(rt, m, FAIL, NULL, 0), 0);
    assert_int_equal(tr_test_settle(rt), 0);
    assert_true(metric(rt, "troupe_calls_pending", NULL) == 0);
    assert_true(metric(rt, "troupe_call_failures_total", NULL) == 1);
    tr_runtime_free(rt);
}

static int job_fn(tr_job *job, const void *arg, size_t len)
{
    (void)job;
    (void)arg;
    (void)len;
    return 0;
}

static int offloader_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == GO)
        for (int i = 0; i < 3; i++)
            TR_CHECK(tr_offload(self, job_fn, NULL, 0, &(tr_job_id){0}) == 0);
    return 0;
}

static const tr_behavior offloader_b = {.name = "offloader", .receive = offloader_receive};

static void test_jobs(void **st)
{
    (void)st;
    tr_runtime *rt = kit(1, NULL);
    tr_pid a = tr_test_spawn(rt, &offloader_b, TR_LOOP(0), NULL, 0);
    assert_int_equal(tr_rt_send(rt, a, GO, NULL, 0), 0);
    assert_int_equal(tr_test_settle(rt), 0);
    assert_true(metric(rt, "troupe_jobs_done_total", NULL) == 3);
    assert_true(metric(rt, "troupe_jobs_queued", NULL) == 0);
    assert_true(metric(rt, "troupe_jobs_running", NULL) == 0);
    tr_runtime_free(rt);
}

/* ---- supervisors, channels ------------------------------------------------------------ */

static void test_restarts(void **st)
{
    (void)st;
    tr_runtime *rt = kit(1, NULL);
    tr_child_spec kids[1];
    tr_child_spec_init(&kids[0]);
    kids[0].id = "w1";
    kids[0].behavior = &worker_b;
    tr_sup_spec spec;
    tr_sup_spec_init(&spec);
    spec.children = kids;
    spec.nchildren = 1;
    spec.max_restarts = 10;
    tr_pid sup;
    assert_int_equal(tr_rt_sup_spawn(rt, &spec, NULL, &sup), 0);
    assert_int_equal(tr_test_settle(rt), 0);
    for (int i = 0; i < 3; i++) {
        tr_sup_child now[1];
        assert_int_equal(tr_rt_sup_which_children(rt, sup, now, 1), 1);
        assert_int_equal(tr_rt_send(rt, now[0].pid, FAIL, NULL, 0), 0);
        assert_int_equal(tr_test_settle(rt), 0);
    }
    char labels[160];
    snprintf(labels, sizeof labels, "supervisor=\"" TR_PID_FMT "\",child=\"w1\"",
             TR_PID_ARGS(sup));
    assert_true(metric(rt, "troupe_supervisor_restarts_total", labels) == 3);
    check_text(rt);
    tr_runtime_free(rt);
}

static void test_channel_events(void **st)
{
    (void)st;
    tr_runtime *rt = kit(1, NULL);
    double full0 = metric(rt, "troupe_channel_full_total", NULL);
    double empty0 = metric(rt, "troupe_channel_empty_total", NULL);
    tr_chan_opts co;
    tr_chan_opts_init(&co);
    co.capacity = 1;
    co.item_max = 8;
    tr_chan *ch;
    assert_int_equal(tr_chan_create(rt, &co, &ch), 0);
    assert_int_equal(tr_chan_send(ch, "a", 1), 0);
    assert_int_equal(tr_chan_send(ch, "b", 1), TR_EFULL);
    char buf[8];
    size_t len;
    assert_int_equal(tr_chan_recv(ch, buf, sizeof buf, &len), 0);
    assert_int_equal(tr_chan_recv(ch, buf, sizeof buf, &len), TR_EEMPTY);
    assert_int_equal(tr_chan_recv(ch, buf, sizeof buf, &len), TR_EEMPTY);
    assert_true(metric(rt, "troupe_channel_full_total", NULL) == full0 + 1);
    assert_true(metric(rt, "troupe_channel_empty_total", NULL) == empty0 + 2);
    tr_chan_release(ch);
    tr_runtime_free(rt);
}

/* ---- handler time and mailbox depth, sampled ------------------------------------- */

static void test_sampled_turns(void **st)
{
    (void)st;
    /* Deterministic mode: one message per turn, so one turn in 64 is
     * sampled and its mailbox measured while the rest wait. */
    tr_runtime_options o = tr_test_options(1, TR_TEST_QUIET);
    tr_test_config c;
    tr_test_config_init(&c);
    c.flags = TR_TEST_DETERMINISTIC;
    c.seed = 7;
    tr_runtime *rt = NULL;
    assert_int_equal(tr_test_create(&rt, &o, &c), 0);
    assert_int_equal(tr_runtime_start(rt), 0);
    tr_pid w = tr_test_spawn(rt, &worker_b, TR_LOOP(0), NULL, 0);
    assert_int_equal(tr_test_settle(rt), 0);
    for (int i = 0; i < 300; i++)
        assert_int_equal(tr_rt_send(rt, w, HIT, NULL, 0), 0);
    assert_int_equal(tr_test_settle(rt), 0);
    assert_true(metric(rt, "troupe_behavior_messages_total", "behavior=\"worker\"") == 300);
    double samples = metric(rt, "troupe_behavior_handler_seconds", "behavior=\"worker\"");
    assert_true(samples >= 4 && samples <= 5); /* turns 64, 128, 192, 256 (+ init's) */
    double depth = metric(rt, "troupe_behavior_mailbox_depth_max", "behavior=\"worker\"");
    assert_true(depth >= 230 && depth <= 300); /* the first sample saw 300 - 63 or so */
    check_text(rt);
    tr_runtime_free(rt);
}

/* ---- user metrics ------------------------------------------------------------------------- */

typedef struct umetrics {
    tr_metric *counter, *hist;
} umetrics;

static umetrics U;

static int bumper_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    if (msg->type == INC)
        for (int i = 0; i < 1000; i++) {
            TR_CHECK(tr_metric_inc(U.counter, 1) == 0);
            TR_CHECK(tr_metric_observe(U.hist, 0.5) == 0);
        }
    return 0;
}

static const tr_behavior bumper_b = {.name = "bumper", .receive = bumper_receive};

static void *thread_bump(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10000; i++) {
        tr_metric_inc(U.counter, 1);
        tr_metric_observe(U.hist, 3.0);
    }
    return NULL;
}

static void test_user_metrics(void **st)
{
    (void)st;
    tr_runtime *rt = kit(2, NULL);
    static const double bounds[] = {1, 2, 4};
    tr_metric_desc d = {.name = "app_requests_total", .help = "Requests", .type = TR_METRIC_COUNTER,
                        .labels = "route=/a,method=GET"};
    assert_int_equal(tr_metric_register(rt, &d, &U.counter), 0);
    tr_metric *again;
    assert_int_equal(tr_metric_register(rt, &d, &again), 0);
    assert_ptr_equal(again, U.counter); /* the same series */
    tr_metric_desc h = {.name = "app_latency_seconds", .help = "Latency",
                        .type = TR_METRIC_HISTOGRAM, .buckets = bounds, .nbuckets = 3};
    assert_int_equal(tr_metric_register(rt, &h, &U.hist), 0);
    tr_metric *g;
    tr_metric_desc gd = {.name = "app_temperature", .help = "A \"gauge\"\\ with escapes",
                         .type = TR_METRIC_GAUGE, .labels = "room=a \"quoted\" \\ room"};
    assert_int_equal(tr_metric_register(rt, &gd, &g), 0);
    assert_int_equal(tr_metric_set(g, 21.5), 0);
    assert_int_equal(tr_metric_add(g, -1.25), 0);

    tr_pid b0 = tr_test_spawn(rt, &bumper_b, TR_LOOP(0), NULL, 0);
    tr_pid b1 = tr_test_spawn(rt, &bumper_b, TR_LOOP(1), NULL, 0);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread_bump, NULL), 0);
    for (int k = 0; k < 5; k++) {
        assert_int_equal(tr_rt_send(rt, b0, INC, NULL, 0), 0);
        assert_int_equal(tr_rt_send(rt, b1, INC, NULL, 0), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(tr_test_settle(rt), 0);
    assert_true(metric(rt, "app_requests_total", "route=\"/a\",method=\"GET\"") == 30000);
    assert_true(metric(rt, "app_latency_seconds", "") == 30000); /* its count */
    assert_true(metric(rt, "app_temperature", "room=\"a \\\"quoted\\\" \\\\ room\"") == 20.25);

    /* The histogram's buckets and sum, through the collector. */
    char *text;
    assert_int_equal(tr_metrics_text(rt, &text, NULL), 0);
    assert_non_null(strstr(text, "app_latency_seconds_bucket{le=\"1\"} 10000\n"));
    assert_non_null(strstr(text, "app_latency_seconds_bucket{le=\"2\"} 10000\n"));
    assert_non_null(strstr(text, "app_latency_seconds_bucket{le=\"4\"} 30000\n"));
    assert_non_null(strstr(text, "app_latency_seconds_bucket{le=\"+Inf\"} 30000\n"));
    assert_non_null(strstr(text, "app_latency_seconds_sum 65000\n"));
    assert_non_null(strstr(text, "# TYPE app_latency_seconds histogram\n"));
    assert_non_null(strstr(text, "# HELP app_temperature A \"gauge\"\\\\ with escapes\n"));
    free(text);
    check_text(rt);
    tr_runtime_free(rt);
}

static void test_registry_bad_input(void **st)
{
    (void)st;
    tr_runtime_options o = tr_test_options(1, TR_TEST_QUIET);
    o.metric_series = 3;
    tr_runtime *rt = kit(1, &o);
    tr_metric *m = NULL;
    tr_metric_desc d = {.name = "ok_total", .type = TR_METRIC_COUNTER};
    assert_int_equal(tr_metric_register(NULL, &d, &m), TR_EINVAL);
    assert_int_equal(tr_metric_register(rt, NULL, &m), TR_EINVAL);
    assert_int_equal(tr_metric_register(rt, &d, NULL), TR_EINVAL);
    const char *bad_names[] = {"", "1abc", "a-b", "a b", "troupe_mine", NULL};
    for (int i = 0; i < 6; i++) {
        tr_metric_desc b = {.name = bad_names[i], .type = TR_METRIC_COUNTER};
        assert_int_equal(tr_metric_register(rt, &b, &m), TR_EINVAL);
    }
    const char *bad_labels[] = {"a", "=v", "a=b=c", "1a=v", "__x=v", "a=v,", "a b=v"};
    for (int i = 0; i < 7; i++) {
        tr_metric_desc b = {.name = "x_total", .type = TR_METRIC_COUNTER, .labels = bad_labels[i]};
        assert_int_equal(tr_metric_register(rt, &b, &m), TR_EINVAL);
    }
    tr_metric_desc bt = {.name = "x", .type = (tr_metric_type)9};
    assert_int_equal(tr_metric_register(rt, &bt, &m), TR_EINVAL);
    tr_metric_desc nl = {.name = "x", .type = TR_METRIC_GAUGE, .help = "two\nlines"};
    assert_int_equal(tr_metric_register(rt, &nl, &m), TR_EINVAL);
    static const double down[] = {1, 0.5}, inf[] = {1, INFINITY};
    tr_metric_desc hb = {.name = "h", .type = TR_METRIC_HISTOGRAM, .buckets = down, .nbuckets = 2};
    assert_int_equal(tr_metric_register(rt, &hb, &m), TR_EINVAL);
    hb.buckets = inf;
    assert_int_equal(tr_metric_register(rt, &hb, &m), TR_EINVAL);
    hb.buckets = down;
    hb.nbuckets = TR_METRIC_BUCKETS_MAX + 1;
    assert_int_equal(tr_metric_register(rt, &hb, &m), TR_EINVAL);
    tr_metric_desc le = {.name = "h2", .type = TR_METRIC_HISTOGRAM, .labels = "le=1"};
    assert_int_equal(tr_metric_register(rt, &le, &m), TR_EINVAL);

    /* A name's type, help and buckets are its first registration's. */
    tr_metric *c;
    assert_int_equal(tr_metric_register(rt, &d, &c), 0);
    tr_metric_desc other = {.name = "ok_total", .type = TR_METRIC_GAUGE};
    assert_int_equal(tr_metric_register(rt, &other, &m), TR_EINVAL);
    tr_metric_desc help = {.name = "ok_total", .type = TR_METRIC_COUNTER, .help = "changed"};
    assert_int_equal(tr_metric_register(rt, &help, &m), TR_EINVAL);

    /* Updates of the wrong kind. */
    assert_int_equal(tr_metric_inc(NULL, 1), TR_EINVAL);
    assert_int_equal(tr_metric_set(c, 1), TR_EINVAL);
    assert_int_equal(tr_metric_observe(c, 1), TR_EINVAL);
    tr_metric *g;
    tr_metric_desc gd = {.name = "g", .type = TR_METRIC_GAUGE};
    assert_int_equal(tr_metric_register(rt, &gd, &g), 0);
    assert_int_equal(tr_metric_inc(g, 1), TR_EINVAL);
    assert_int_equal(tr_metric_set(g, NAN), TR_EINVAL);
    assert_int_equal(tr_metric_add(g, NAN), TR_EINVAL);

    /* The cap: 3 series (ok_total, g, and one more). */
    tr_metric_desc l1 = {.name = "ok_total", .type = TR_METRIC_COUNTER, .labels = "k=1"};
    assert_int_equal(tr_metric_register(rt, &l1, &m), 0);
    tr_metric_desc l2 = {.name = "ok_total", .type = TR_METRIC_COUNTER, .labels = "k=2"};
    assert_int_equal(tr_metric_register(rt, &l2, &m), TR_ELIMIT);
    assert_true(metric(rt, "troupe_metrics_series_overflow_total", NULL) == 1);
    assert_int_equal(tr_metrics_value(rt, "ok_total", "k=\"2\"", &(double){0}), TR_ENOTFOUND);
    assert_int_equal(tr_metrics_value(NULL, "x", NULL, &(double){0}), TR_EINVAL);
    assert_int_equal(tr_metrics_text(NULL, &(char *){NULL}, NULL), TR_EINVAL);
    assert_int_equal(tr_metrics_collect(rt, NULL, NULL), TR_EINVAL);
    char *text;
    assert_int_equal(tr_metrics_text(rt, &text, NULL), 0);
    assert_non_null(strstr(text, "# TYPE ok_total counter\n"));
    assert_null(strstr(text, "# HELP ok_total")); /* no help, no line */
    free(text);
    check_text(rt);
    tr_runtime_free(rt);

    /* Options out of range. */
    tr_runtime_options bad;
    tr_runtime_options_init(&bad);
    bad.metrics = 5;
    assert_int_equal(tr_runtime_create(&rt, &bad), TR_EINVAL);
    tr_runtime_options_init(&bad);
    bad.stuck_call_ms = -7;
    assert_int_equal(tr_runtime_create(&rt, &bad), TR_EINVAL);
}

/* Behaviours past the cap count as "other". */
static void test_behaviour_cap(void **st)
{
    (void)st;
    tr_runtime_options o = tr_test_options(1, TR_TEST_QUIET);
    o.metric_behaviors = 1;
    tr_runtime *rt = kit(1, &o);
    tr_test_spawn(rt, &worker_b, TR_LOOP(0), NULL, 0);
    tr_test_spawn(rt, &other_b, TR_LOOP(0), NULL, 0);
    tr_test_spawn(rt, &mute_b, TR_LOOP(0), NULL, 0);
    assert_int_equal(tr_test_settle(rt), 0);
    assert_true(metric(rt, "troupe_actors", "behavior=\"worker\"") == 1);
    assert_true(metric(rt, "troupe_actors", "behavior=\"other\"") == 2);
    assert_true(metric(rt, "troupe_metrics_behaviors_overflow_total", NULL) == 2);
    tr_runtime_free(rt);

    /* Metrics off: no behaviour table, the counters still count. */
    o.metrics = TR_METRICS_OFF;
    o.metric_behaviors = 0;
    rt = kit(1, &o);
    tr_pid w = tr_test_spawn(rt, &worker_b, TR_LOOP(0), NULL, 0);
    assert_int_equal(tr_rt_send(rt, w, HIT, NULL, 0), 0);
    assert_int_equal(tr_test_settle(rt), 0);
    double v;
    assert_int_equal(tr_metrics_value(rt, "troupe_actors", "behavior=\"worker\"", &v),
                     TR_ENOTFOUND);
    assert_true(metric(rt, "troupe_messages_handled_total", "loop=\"0\"") >= 1);
    check_text(rt);
    tr_runtime_free(rt);
}

/* The checker itself: each broken text is refused. */
static void test_checker_refuses_broken_text(void **st)
{
    (void)st;
    static const char *const bad[] = {
        "x 1\n",                                                   /* no TYPE */
        "# TYPE x counter\nx_total 1\n",                           /* counter name */
        "# TYPE x_total counter\nx_total 1",                       /* no newline */
        "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE a gauge\na 2\n", /* comes back */
        "# TYPE a gauge\na{l=\"v} 1\n",                           /* label */
        "# TYPE a gauge\na{l=\"\\t\"} 1\n",                        /* escape */
        "# TYPE a gauge\na one\n",                                 /* value */
        "# TYPE a gauge\na 1\na 2\n",                              /* twice */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"2\"} 1\n"
        "h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",           /* falls */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_sum 1\nh_count 2\n", /* no +Inf */
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 3\n"
        "h_sum 1\nh_count 2\n",                                    /* count */
        "# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n"
        "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",           /* le order */
        "# TYPE a gauge\n# TYPE a gauge\na 1\n",                   /* TYPE twice */
        "# TYPE a wrong\na 1\n",                                   /* type */
    };
    char err[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (prom_check(bad[i], err, sizeof err) == 0)
            fail_msg("the checker accepted broken text #%zu", i);
    const char *good = "# HELP h Help \\\\ text\n# TYPE h histogram\n"
                       "h_bucket{k=\"a\\\"b\",le=\"0.5\"} 1\nh_bucket{k=\"a\\\"b\",le=\"+Inf\"} 2\n"
                       "h_sum{k=\"a\\\"b\"} 3.5\nh_count{k=\"a\\\"b\"} 2\n"
                       "# TYPE c_total counter\nc_total 7 1700000000000\n";
    assert_int_equal(prom_check(good, err, sizeof err), 0);
}

/* ---- stuck calls --------------------------------------------------------------------------- */

/* Relay: GO (arg: a pid) calls it with ASK, without limit; an ASK it gets
 * is never answered, and is passed on to its own target if it has one. */
typedef struct relay {
    tr_pid next;
    bool calling; /* one call at most: a cycle must not go round forever */
} relay;

static int relay_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    relay *r = state;
    if (msg->type == GO) {
        memcpy(&r->next, msg->data, sizeof r->next);
        return 0;
    }
    tr_ref ref;
    if ((msg->type == ASK || msg->type == HIT) && r->next && !r->calling) { /* HIT starts */
        r->calling = true;
        TR_CHECK(tr_call(self, r->next, ASK, NULL, 0, TR_INFINITE, &ref) == 0);
    }
    return 0;
}

static const tr_behavior relay_b = {.name = "relay", .state_size = sizeof(relay),
                                    .receive = relay_receive};

static int stuck_count(tr_runtime *rt, int *cycles)
{
    tr_stuck_call v[16];
    int n = tr_runtime_stuck_calls(rt, v, 16);
    *cycles = 0;
    for (int i = 0; i < n && i < 16; i++)
        *cycles += v[i].in_cycle != 0;
    return n;
}

static void test_stuck_chains_and_cycles(void **st)
{
    (void)st;
    /* The kit's clock: nothing is stuck until it moves. */
    tr_runtime_options o = tr_test_options(2, TR_TEST_LOG);
    o.stuck_call_ms = 100; /* checked every 50 ms of real time */
    tr_runtime *rt = kit(2, &o);
    tr_pid a = tr_test_spawn(rt, &relay_b, TR_LOOP(0), NULL, 0);
    tr_pid b = tr_test_spawn(rt, &relay_b, TR_LOOP(1), NULL, 0);
    tr_pid c = tr_test_spawn(rt, &relay_b, TR_LOOP(0), NULL, 0);
    tr_pid d = tr_test_spawn(rt, &relay_b, TR_LOOP(0), NULL, 0);
    tr_pid e = tr_test_spawn(rt, &relay_b, TR_LOOP(1), NULL, 0);
    /* a -> b -> c (c waits on nobody); d -> e -> d: a cycle. */
    assert_int_equal(tr_rt_send(rt, a, GO, &b, sizeof b), 0);
    assert_int_equal(tr_rt_send(rt, b, GO, &c, sizeof c), 0);
    assert_int_equal(tr_rt_send(rt, d, GO, &e, sizeof e), 0);
    assert_int_equal(tr_rt_send(rt, e, GO, &d, sizeof d), 0);
    assert_int_equal(tr_test_settle(rt), 0);
    assert_int_equal(tr_rt_send(rt, a, HIT, NULL, 0), 0);
    assert_int_equal(tr_rt_send(rt, d, HIT, NULL, 0), 0);
    assert_int_equal(tr_test_settle(rt), 0);
    int cycles;
    assert_int_equal(stuck_count(rt, &cycles), 0);
    assert_true(metric(rt, "troupe_calls_pending", NULL) == 4);
    /* Past the threshold on the runtime clock: the next check reports. */
    assert_int_equal(tr_test_advance(rt, 1000), 0);
    TR_WAIT_UNTIL(stuck_count(rt, &cycles) == 4);
    assert_int_equal(cycles, 2);
    assert_true(metric(rt, "troupe_calls_stuck", NULL) == 4);
    assert_true(metric(rt, "troupe_calls_stuck_in_cycle", NULL) == 2);
    TR_WAIT_UNTIL(tr_test_has_log("(cycle: a logical deadlock)"));
    /* The log has a's chain (as the loops saw it) and the cycle's. */
    char needle[128];
    snprintf(needle, sizeof needle, "actor " TR_PID_FMT " (relay) -> actor", TR_PID_ARGS(a));
    TR_WAIT_UNTIL(tr_test_has_log(needle));
    /* Reported once each: later checks add no line. */
    TR_WAIT_UNTIL(tr_test_log_count() >= 4);
    int lines = tr_test_log_count();
    usleep(200 * 1000);
    assert_int_equal(tr_test_log_count(), lines);
    /* The report has the whole chain a -> b -> c, and the cycle. */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_int_equal(tr_runtime_report(rt, f, 0), 0);
    fclose(f);
    assert_non_null(strstr(buf, "stuck calls"));
    char chain[256];
    snprintf(chain, sizeof chain,
             "actor " TR_PID_FMT " (relay) -> actor " TR_PID_FMT " (relay) -> actor " TR_PID_FMT
             " (relay)\n",
             TR_PID_ARGS(a), TR_PID_ARGS(b), TR_PID_ARGS(c));
    assert_non_null(strstr(buf, chain));
    snprintf(chain, sizeof chain,
             "actor " TR_PID_FMT " (relay) -> actor " TR_PID_FMT " (relay) -> actor " TR_PID_FMT
             " (relay) (cycle",
             TR_PID_ARGS(d), TR_PID_ARGS(e), TR_PID_ARGS(d));
    assert_non_null(strstr(buf, chain));
    assert_non_null(strstr(buf, "5 actors alive"));
    free(buf);
    assert_int_equal(tr_runtime_report(NULL, stderr, 0), TR_EINVAL);
    assert_int_equal(tr_runtime_stuck_calls(NULL, NULL, 0), TR_EINVAL);
    tr_runtime_free(rt);
}

/* Short calls, on the real clock: none is ever reported. */
static int echo_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    return msg->type == ASK ? tr_reply(self, msg, ASK, NULL, 0) : 0;
}

static const tr_behavior echo_b = {.name = "echo", .receive = echo_receive};

static void test_short_calls_not_stuck(void **st)
{
    (void)st;
    tr_runtime_options o = tr_test_options(2, TR_TEST_LOG);
    o.stuck_call_ms = 20;
    tr_runtime *rt = tr_test_runtime_opts(&o);
    tr_pid e = tr_test_spawn(rt, &echo_b, TR_LOOP(1), NULL, 0);
    uint64_t end = tr_test_wall_ns() + 200000000ull; /* ten check periods at least */
    unsigned calls = 0;
    while (tr_test_wall_ns() < end) {
        tr_rt_reply r;
        assert_int_equal(tr_rt_call(rt, e, ASK, NULL, 0, 5000, &r), 0);
        tr_rt_reply_free(&r);
        calls++;
    }
    assert_true(calls > 10);
    assert_true(metric(rt, "troupe_calls_stuck", NULL) == 0);
    assert_false(tr_test_has_log("stuck call"));
    /* The check was running all along: a call that really waits is
     * reported, on the same real clock. */
    tr_pid c = tr_test_spawn(rt, &caller_b, TR_LOOP(0), NULL, 0);
    tr_pid m = tr_test_spawn(rt, &mute_b, TR_LOOP(1), NULL, 0);
    callgo g = {.to = m, .timeout = TR_INFINITE};
    assert_int_equal(tr_rt_send(rt, c, GO, &g, sizeof g), 0);
    TR_WAIT_UNTIL(metric(rt, "troupe_calls_stuck", NULL) == 1);
    TR_WAIT_UNTIL(tr_test_has_log("stuck call"));
    tr_runtime_free(rt);
}

/* ---- the hang report ---------------------------------------------------------------------- */

static int trapper_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return tr_trap_exits(self, 1);
}

static const tr_behavior trapper_b = {.name = "stubborn", .init = trapper_init,
                                      .receive = tr_test_ignore};

static void test_hang_report(void **st)
{
    (void)st;
    /* An infinite shutdown timeout: the stop hangs; the report comes. */
    tr_runtime_options o = tr_test_options(2, TR_TEST_LOG);
    o.hang_report_ms = 100;
    tr_runtime *rt = tr_test_runtime_opts(&o);
    tr_spawn_opts so;
    tr_spawn_opts_init(&so);
    so.shutdown_ms = TR_INFINITE;
    so.loop = TR_LOOP(1);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &trapper_b, &so, &p), 0);
    tr_test_spawn(rt, &echo_b, TR_LOOP(0), NULL, 0);
    assert_int_equal(tr_runtime_stop(rt), 0);
    TR_WAIT_UNTIL(tr_test_has_log("the stop has not finished"));
    char line[4096];
    assert_true(tr_test_log_line("the stop has not finished", line, sizeof line));
    assert_true(tr_test_has_log("(stubborn)"));
    assert_true(tr_test_has_log("actors alive"));
    assert_int_equal(tr_signal_exit(rt, p, TR_EXIT_KILLED), 0);
    assert_int_equal(tr_runtime_wait(rt), 0);
    tr_runtime_free(rt);

    /* A finite one that passes: the report, then the kill. */
    o = tr_test_options(1, TR_TEST_LOG);
    o.hang_report_ms = 60000;
    rt = tr_test_runtime_opts(&o);
    so.shutdown_ms = 50;
    so.loop = 0;
    assert_int_equal(tr_rt_spawn(rt, &trapper_b, &so, &p), 0);
    assert_int_equal(tr_runtime_stop(rt), 0);
    assert_int_equal(tr_runtime_wait(rt), 0);
    assert_true(tr_test_has_log("has not stopped within its shutdown timeout"));
    assert_true(tr_test_has_log("(stubborn)"));
    tr_runtime_free(rt);
}

static void test_sigquit_report(void **st)
{
    (void)st;
    tr_runtime_options o = tr_test_options(1, TR_TEST_LOG);
    o.report_on_sigquit = 1;
    tr_runtime *rt = tr_test_runtime_opts(&o);
    tr_test_spawn(rt, &echo_b, TR_LOOP(0), NULL, 0);
    assert_int_equal(kill(getpid(), SIGQUIT), 0);
    TR_WAIT_UNTIL(tr_test_has_log("SIGQUIT: what the runtime is doing"));
    assert_true(tr_test_has_log("(echo)"));
    tr_runtime_free(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker_refuses_broken_text),
        cmocka_unit_test(test_actor_counts),
        cmocka_unit_test(test_messages_sent_and_cross_loop),
        cmocka_unit_test(test_calls),
        cmocka_unit_test(test_jobs),
        cmocka_unit_test(test_restarts),
        cmocka_unit_test(test_channel_events),
        cmocka_unit_test(test_sampled_turns),
        cmocka_unit_test(test_user_metrics),
        cmocka_unit_test(test_registry_bad_input),
        cmocka_unit_test(test_behaviour_cap),
        cmocka_unit_test(test_stuck_chains_and_cycles),
        cmocka_unit_test(test_short_calls_not_stuck),
        cmocka_unit_test(test_hang_report),
        cmocka_unit_test(test_sigquit_report),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
