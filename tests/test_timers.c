/*
 * test_timers.c — send-after, intervals, cancel, cancellation on exit, a
 * million pending timers, and the runtime clock. Runs on the test kit's
 * virtual clock (troupe_test.h: tr_test_advance delivers every timer due,
 * and what it causes, before it returns) except where real time is the
 * point.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "troupe_test.h"
#include "tr_test.h"

#define MS 1000000ull
enum { PROBE = 1, CMD_EXIT = 2, CMD_CANCEL_ALL = 3, T_INTERVAL = 1000 };

typedef struct keeper {
    uint32_t seen[64];
    uint32_t nseen;
    tr_timer_id interval;
    unsigned interval_fires;
    tr_timer_id *many;
    uint32_t nmany;
} keeper;

static tr_actor *stale_self;

/* Answers PROBE calls with the number of timer messages seen so far. */
static int keeper_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    keeper *k = state;
    if (msg->type == PROBE)
        return tr_reply(self, msg, PROBE, &k->nseen, sizeof k->nseen);
    if (msg->type == CMD_EXIT)
        return tr_exit(self, TR_EXIT_NORMAL);
    if (msg->type == CMD_CANCEL_ALL) {
        for (uint32_t i = 0; i < k->nmany; i++)
            TR_CHECK_EQ(tr_timer_cancel(self, k->many[i]), 0);
        free(k->many);
        k->many = NULL;
        k->nmany = 0;
        return 0;
    }
    if (k->nseen < 64)
        k->seen[k->nseen++] = msg->type;
    if (msg->type == T_INTERVAL && ++k->interval_fires == 2) {
        TR_CHECK_EQ(tr_timer_cancel(self, k->interval), 0);
        TR_CHECK_EQ(tr_timer_cancel(self, k->interval), TR_ENOTFOUND);
    }
    return 0;
}

static int order_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    keeper *k = state;
    tr_pid me = tr_self(self);
    stale_self = self;
    tr_timer_id cancelled;
    TR_CHECK_EQ(tr_send_after(self, me, 20, 20, NULL, 0, NULL), 0);
    TR_CHECK_EQ(tr_send_after(self, me, 10, 10, NULL, 0, NULL), 0);
    TR_CHECK_EQ(tr_send_after(self, me, 30, 30, NULL, 0, NULL), 0);
    TR_CHECK_EQ(tr_send_after(self, me, 15, 15, NULL, 0, &cancelled), 0);
    TR_CHECK_EQ(tr_send_interval(self, me, 25, T_INTERVAL, NULL, 0, &k->interval), 0);
    TR_CHECK_EQ(tr_timer_cancel(self, cancelled), 0);
    /* Two timers with one deadline fire in the order they were set. */
    TR_CHECK_EQ(tr_send_after(self, me, 40, 41, NULL, 0, NULL), 0);
    TR_CHECK_EQ(tr_send_after(self, me, 40, 42, NULL, 0, NULL), 0);
    /* Bad input. */
    TR_CHECK_EQ(tr_send_interval(self, me, 0, 1, NULL, 0, NULL), TR_EINVAL);
    TR_CHECK_EQ(tr_send_after(self, me, 1, TR_MSG_USER_MAX + 1u, NULL, 0, NULL), TR_EINVAL);
    TR_CHECK_EQ(tr_send_after(self, me, 1, 1, NULL, 5, NULL), TR_EINVAL);
    TR_CHECK_EQ(tr_timer_cancel(self, 12345), TR_ENOTFOUND);
    TR_CHECK_EQ(tr_send_after(NULL, me, 1, 1, NULL, 0, NULL), TR_EINVAL);
    return 0;
}

static const tr_behavior order_b = {.name = "keeper", .state_size = sizeof(keeper),
                                    .init = order_init, .receive = keeper_receive};

/* The actor's count (every timer due has fired: the kit settled). */
static uint32_t probe(tr_runtime *rt, tr_pid pid)
{
    uint32_t n = 0;
    tr_test_ask(rt, pid, PROBE, NULL, 0, &n, sizeof n);
    return n;
}

static void test_order_and_cancel(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_kit(2, 0, 0);
    uint64_t t0 = tr_now(rt);
    assert_int_equal(t0, 1000 * MS);
    tr_pid k;
    assert_int_equal(tr_rt_spawn(rt, &order_b, NULL, &k), 0);
    assert_int_equal(probe(rt, k), 0);
    /* A stale self from the main thread is the wrong thread. */
    assert_int_equal(tr_send_after(stale_self, k, 1, 1, NULL, 0, NULL), TR_EWRONGTHREAD);
    assert_int_equal(tr_timer_cancel(stale_self, 1), TR_EWRONGTHREAD);
    assert_int_equal(TR_STAT(rt, timers), 6);

    static const struct {
        uint64_t at_ms;
        uint32_t count;
    } steps[] = {{9, 0}, {10, 1}, {19, 1}, {20, 2}, {25, 3}, {30, 4}, {40, 6}, {49, 6},
                 {50, 7}, {75, 7}, {500, 7}};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        tr_test_advance_to(rt, t0 + steps[i].at_ms * MS);
        assert_int_equal(probe(rt, k), steps[i].count);
    }
    assert_int_equal(TR_STAT(rt, timers), 0);
    tr_runtime_free(rt);
}

/* ---- the sequence, recorded globally ----------------------------------- */

static uint32_t recorded[16];
static _Atomic uint32_t nrecorded;

static int recorder_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    if (msg->type == PROBE)
        return keeper_receive(self, state, msg);
    uint32_t i = atomic_load(&nrecorded);
    if (i < 16)
        recorded[i] = msg->type;
    atomic_store(&nrecorded, i + 1);
    return keeper_receive(self, state, msg);
}

static const tr_behavior recorder_b = {.name = "recorder", .state_size = sizeof(keeper),
                                       .init = order_init, .receive = recorder_receive};

static void test_fire_sequence(void **state)
{
    (void)state;
    atomic_store(&nrecorded, 0);
    tr_runtime *rt = tr_test_kit(1, 0, 0);
    uint64_t t0 = tr_now(rt);
    tr_pid k;
    assert_int_equal(tr_rt_spawn(rt, &recorder_b, NULL, &k), 0);
    /* One advance of 120 ms: the kit steps from deadline to deadline, so
     * each timer fires at its own time, in order. */
    assert_int_equal(tr_test_advance(rt, 120), 0);
    assert_int_equal(tr_now(rt), t0 + 120 * MS);
    static const uint32_t want[] = {10, 20, T_INTERVAL, 30, 41, 42, T_INTERVAL};
    assert_int_equal(atomic_load(&nrecorded), 7);
    for (int i = 0; i < 7; i++)
        assert_int_equal(recorded[i], want[i]);
    tr_runtime_free(rt);
}

/* ---- timers end with their actor --------------------------------------- */

static _Atomic int counter_hits;

static int counter_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    uint32_t hits = (uint32_t)atomic_load(&counter_hits);
    if (msg->type == PROBE)
        return tr_reply(self, msg, PROBE, &hits, sizeof hits);
    atomic_fetch_add(&counter_hits, 1);
    return 0;
}

static const tr_behavior counter_b = {.name = "counter", .receive = counter_receive};

static int shooter_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    tr_pid target;
    TR_CHECK_COPY(&target, arg, len);
    TR_CHECK_EQ(tr_send_after(self, target, 10, 7, NULL, 0, NULL), 0);
    TR_CHECK_EQ(tr_send_interval(self, target, 5, 8, NULL, 0, NULL), 0);
    uint64_t x = 99;
    TR_CHECK_EQ(tr_send_after(self, target, 100, 9, &x, sizeof x, NULL), 0);
    return 0;
}

static const tr_behavior shooter_b = {.name = "shooter", .state_size = sizeof(keeper),
                                      .init = shooter_init, .receive = keeper_receive};

static void test_exit_cancels(void **state)
{
    (void)state;
    atomic_store(&counter_hits, 0);
    tr_runtime *rt = tr_test_kit(2, 0, 0);
    uint64_t t0 = tr_now(rt);
    tr_pid target, shooter;
    assert_int_equal(tr_rt_spawn(rt, &counter_b, NULL, &target), 0);
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.arg = &target;
    o.arg_len = sizeof target;
    assert_int_equal(tr_rt_spawn(rt, &shooter_b, &o, &shooter), 0);
    probe(rt, shooter);
    assert_int_equal(TR_STAT(rt, timers), 3);
    /* The interval fires once at 5 ms... */
    tr_test_advance_to(rt, t0 + 5 * MS);
    assert_int_equal(atomic_load(&counter_hits), 1);
    /* ...then the shooter exits and nothing more arrives, ever. */
    assert_int_equal(tr_rt_send(rt, shooter, CMD_EXIT, NULL, 0), 0);
    assert_int_equal(tr_test_settle(rt), 0);
    assert_int_equal(TR_STAT(rt, timers), 0);
    tr_test_advance_to(rt, t0 + 10000 * MS);
    assert_int_equal(probe(rt, target), 1);
    assert_int_equal(atomic_load(&counter_hits), 1);
    tr_runtime_free(rt);
}

/* ---- a million pending timers -------------------------------------------- */

enum { MANY = 1000000 };

static int many_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    keeper *k = state;
    k->many = malloc(MANY * sizeof *k->many);
    TR_CHECK(k->many);
    tr_pid me = tr_self(self);
    for (uint32_t i = 0; i < MANY; i++)
        TR_CHECK_EQ(tr_send_after(self, me, 1000 + (i * 7919u) % 100000u, 5, NULL, 0,
                                       &k->many[i]),
                         0);
    k->nmany = MANY;
    return 0;
}

static void many_terminate(tr_actor *self, void *state, const tr_exit_reason *r)
{
    (void)self;
    (void)r;
    free(((keeper *)state)->many);
}

static const tr_behavior many_b = {.name = "many", .state_size = sizeof(keeper),
                                   .init = many_init, .receive = keeper_receive,
                                   .terminate = many_terminate};

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void test_million_timers(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_kit(1, 0, 0);
    long before = rss_kb();
    tr_pid k;
    assert_int_equal(tr_rt_spawn(rt, &many_b, NULL, &k), 0);
    probe(rt, k);
    assert_int_equal(TR_STAT(rt, timers), MANY);
    long grown = rss_kb() - before;
    /* Each pending timer: a 128-byte pooled entry, a heap pointer, an id
     * slot, and the test's own 8-byte id. */
    printf("# %d pending timers: RSS grew by %ld kB (%.0f bytes each)\n", MANY, grown,
           grown * 1024.0 / MANY);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    assert_true(grown * 1024 / MANY < 256);
#endif
    /* None is due yet. */
    tr_test_advance_to(rt, tr_now(rt) + 999 * MS);
    assert_int_equal(probe(rt, k), 0);
    /* Cancel them all: each is O(log n). */
    assert_int_equal(tr_rt_send(rt, k, CMD_CANCEL_ALL, NULL, 0), 0);
    probe(rt, k);
    assert_int_equal(TR_STAT(rt, timers), 0);
    tr_test_advance_to(rt, tr_now(rt) + 1000000 * MS);
    assert_int_equal(probe(rt, k), 0);
    tr_runtime_free(rt);
}

/* ---- real time ------------------------------------------------------------ */

static _Atomic int real_fired;

static int real_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return tr_send_after(self, tr_self(self), 20, 3, NULL, 0, NULL);
}

static int real_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    if (msg->type == 3)
        atomic_store(&real_fired, 1);
    return 0;
}

static const tr_behavior real_b = {.name = "real", .init = real_init,
                                   .receive = real_receive};

static void test_real_clock(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, 0);
    uint64_t a = tr_now(rt), b = tr_now(rt);
    assert_true(a > 0 && b >= a);
    uint64_t start = tr_test_wall_ns();
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &real_b, NULL, &p), 0);
    TR_WAIT_UNTIL(atomic_load(&real_fired));
    /* Never early (wide margin the other way: it only has to fire). */
    assert_true(tr_test_wall_ns() - start >= 20 * MS);
    assert_int_equal(tr_now(NULL), 0);
    assert_int_equal(tr_runtime_clock_advanced(NULL), TR_EINVAL);
    tr_runtime_free(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_cancel),
        cmocka_unit_test(test_fire_sequence),
        cmocka_unit_test(test_exit_cancels),
        cmocka_unit_test(test_million_timers),
        cmocka_unit_test(test_real_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
