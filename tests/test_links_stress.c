/*
 * test_links_stress.c — monitors and links under concurrent churn on three
 * loops: targets link to each other, some trap exits, and are killed from a
 * plain thread, fail on their own, or die through their links, while
 * immortal watchers monitor and demonitor them. Every monitor must yield
 * exactly one DOWN unless it was demonitored first; none twice; none for an
 * unknown ref. Runs under ASan and TSan in CI.
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

enum { TARGETS = 300, WATCHERS = 6, MAX_MONS = 2 * TARGETS };
enum { MON = 1, DEMON, ASK, LINK, TRAP, FAIL, DUMP };

typedef struct mon {
    tr_ref ref;
    tr_pid target;
    int state; /* 0 active, 1 demonitored, 2 down */
} mon;

typedef struct watcher {
    mon mons[MAX_MONS];
    uint32_t n;
    uint32_t demonitored, downs;
} watcher;

typedef struct counts {
    uint32_t created, demonitored, downs;
} counts;

static int watcher_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    watcher *w = state;
    switch (msg->type) {
    case MON: {
        tr_pid t;
        memcpy(&t, msg->data, sizeof t);
        TR_CHECK(w->n < MAX_MONS);
        TR_CHECK_EQ(tr_monitor(self, t, &w->mons[w->n].ref), 0);
        w->mons[w->n].target = t;
        w->mons[w->n++].state = 0;
        return 0;
    }
    case DEMON: {
        uint32_t i;
        memcpy(&i, msg->data, sizeof i);
        if (i >= w->n)
            return 0;
        int rc = tr_demonitor(self, w->mons[i].ref);
        if (w->mons[i].state == 0) {
            TR_CHECK_EQ(rc, 0); /* active: removable, its DOWN never comes */
            w->mons[i].state = 1;
            w->demonitored++;
        } else {
            TR_CHECK_EQ(rc, TR_ENOTFOUND);
        }
        return 0;
    }
    case DUMP:
        for (uint32_t i = 0; i < w->n; i++)
            if (w->mons[i].state == 0)
                fprintf(stderr, "# missing DOWN: watcher " TR_PID_FMT " ref %llu target " TR_PID_FMT "\n",
                        TR_PID_ARGS(tr_self(self)), (unsigned long long)w->mons[i].ref,
                        TR_PID_ARGS(w->mons[i].target));
        return tr_reply(self, msg, DUMP, NULL, 0);
    case ASK: {
        counts c = {.created = w->n, .demonitored = w->demonitored, .downs = w->downs};
        return tr_reply(self, msg, ASK, &c, sizeof c);
    }
    case TR_MSG_DOWN: {
        uint32_t i = 0;
        while (i < w->n && w->mons[i].ref != msg->ref)
            i++;
        TR_CHECK(i < w->n);               /* a ref we made */
        TR_CHECK_EQ(w->mons[i].state, 0); /* not demonitored, not twice */
        w->mons[i].state = 2;
        w->downs++;
        return 0;
    }
    }
    return 0;
}

static const tr_behavior watcher_b = {.name = "watcher", .state_size = sizeof(watcher),
                                      .receive = watcher_receive};

static int target_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    switch (msg->type) {
    case LINK: {
        tr_pid other;
        memcpy(&other, msg->data, sizeof other);
        int rc = tr_link(self, other);
        TR_CHECK(rc == 0 || rc == TR_ENOACTOR || rc == TR_EINVAL);
        return 0;
    }
    case TRAP:
        return tr_trap_exits(self, 1);
    case FAIL:
        return -5;
    }
    return 0; /* TR_MSG_EXIT when trapping: survive */
}

static const tr_behavior target_b = {.name = "target", .receive = target_receive};

static tr_runtime *rt;
static tr_pid targets[TARGETS], watchers[WATCHERS];

static void *killer(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int round = 0; round < 3 * TARGETS; round++) {
        seed = seed * 1103515245u + 12345u;
        tr_pid t = targets[(seed >> 8) % TARGETS];
        switch ((seed >> 4) % 4) {
        case 0:
            tr_signal_exit(rt, t, TR_EXIT_KILLED);
            break;
        case 1:
            tr_signal_exit(rt, t, TR_EXIT_SHUTDOWN);
            break;
        case 2:
            tr_rt_send(rt, t, FAIL, NULL, 0);
            break;
        default:
            sched_yield();
        }
    }
    return NULL;
}

static counts ask(tr_pid w)
{
    counts c;
    tr_test_ask(rt, w, ASK, NULL, 0, &c, sizeof c);
    return c;
}

static void test_monitor_link_churn(void **state)
{
    (void)state;
    rt = tr_test_quiet_runtime(3);
    for (int i = 0; i < WATCHERS; i++)
        assert_int_equal(tr_rt_spawn(rt, &watcher_b, NULL, &watchers[i]), 0);
    for (int i = 0; i < TARGETS; i++) {
        assert_int_equal(tr_rt_spawn(rt, &target_b, NULL, &targets[i]), 0);
        if (i % 5 == 0)
            assert_int_equal(tr_rt_send(rt, targets[i], TRAP, NULL, 0), 0);
    }
    /* Links in pairs and chains. */
    for (int i = 1; i < TARGETS; i += 2)
        assert_int_equal(tr_rt_send(rt, targets[i], LINK, &targets[i - 1], sizeof(tr_pid)), 0);
    for (int i = 0; i + 7 < TARGETS; i += 7)
        assert_int_equal(tr_rt_send(rt, targets[i], LINK, &targets[i + 7], sizeof(tr_pid)), 0);
    /* First round of monitors, then the killers, racing a second round and
     * some demonitors. */
    for (int w = 0; w < WATCHERS; w++)
        for (int i = w; i < TARGETS; i += 2)
            assert_int_equal(tr_rt_send(rt, watchers[w], MON, &targets[i], sizeof(tr_pid)), 0);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, killer, (void *)(uintptr_t)(i + 1)), 0);
    for (int w = 0; w < WATCHERS; w++) {
        for (int i = w + 1; i < TARGETS; i += 3)
            assert_int_equal(tr_rt_send(rt, watchers[w], MON, &targets[i], sizeof(tr_pid)), 0);
        for (uint32_t k = 0; k < 40; k++) {
            uint32_t idx = k * 7;
            assert_int_equal(tr_rt_send(rt, watchers[w], DEMON, &idx, sizeof idx), 0);
        }
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    /* Everything still alive goes now (kill cannot be trapped). */
    for (int i = 0; i < TARGETS; i++)
        tr_signal_exit(rt, targets[i], TR_EXIT_KILLED);
    for (int i = 0; i < TARGETS; i++)
        TR_WAIT_GONE(rt, targets[i], 0);
    /* Every monitor ends in exactly one DOWN, or a demonitor. */
    uint32_t total = 0;
    for (int w = 0; w < WATCHERS; w++) {
        uint64_t end = tr_test_wall_ns() + 10000000000ull;
        while (ask(watchers[w]).downs + ask(watchers[w]).demonitored != ask(watchers[w]).created &&
               tr_test_wall_ns() < end)
            sched_yield();
        if (ask(watchers[w]).downs + ask(watchers[w]).demonitored != ask(watchers[w]).created)
            tr_test_ask(rt, watchers[w], DUMP, NULL, 0, NULL, 0); /* lists what is missing */
        TR_WAIT_UNTIL(ask(watchers[w]).downs + ask(watchers[w]).demonitored ==
                      ask(watchers[w]).created);
        counts c = ask(watchers[w]);
        total += c.created;
        assert_true(c.demonitored > 0);
    }
    printf("# %u monitors: each ended in exactly one DOWN or a demonitor\n", total);
    assert_int_equal(tr_runtime_free(rt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monitor_link_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
