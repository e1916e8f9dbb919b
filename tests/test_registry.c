/*
 * test_registry.c — register / whereis / unregister, duplicate names, names
 * released on exit, names in crash reports.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tr_test.h"

enum { REG = 1, UNREG = 2, FAIL = 3, ASK = 4, WATCH = 5 };

static int named_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    char name[80];
    int rc;
    switch (msg->type) {
    case REG:
        memcpy(name, msg->data, msg->len);
        name[msg->len] = 0;
        rc = tr_register(self, name);
        return tr_reply(self, msg, REG, &rc, sizeof rc);
    case UNREG:
        rc = tr_unregister(self);
        return tr_reply(self, msg, UNREG, &rc, sizeof rc);
    case FAIL:
        return tr_exit_error(self, -77, "boom");
    default:
        return 0;
    }
}

static const tr_behavior named_b = {.name = "named", .receive = named_receive};

/* Asks `p` to register `name` (REG) or unregister (UNREG): the rc it got. */
static int call_rc(tr_runtime *rt, tr_pid p, uint32_t type, const char *name)
{
    int rc;
    tr_test_ask(rt, p, type, name, name ? strlen(name) : 0, &rc, sizeof rc);
    return rc;
}

static void test_registry(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, TR_TEST_LOG_ERRORS); /* crash reports */
    tr_pid a, b;
    assert_int_equal(tr_rt_spawn(rt, &named_b, NULL, &a), 0);
    assert_int_equal(tr_rt_spawn(rt, &named_b, NULL, &b), 0);

    assert_int_equal(tr_whereis(rt, "db"), TR_PID_NONE);
    assert_int_equal(call_rc(rt, a, REG, "db"), 0);
    assert_int_equal(tr_whereis(rt, "db"), a);
    /* Taken by someone else; a second name for the same actor. */
    assert_int_equal(call_rc(rt, b, REG, "db"), TR_EEXIST);
    assert_int_equal(call_rc(rt, a, REG, "cache"), TR_EALREADY);
    /* Bad names. */
    assert_int_equal(call_rc(rt, b, REG, ""), TR_EINVAL);
    char longname[TR_NAME_MAX + 2];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_int_equal(call_rc(rt, b, REG, longname), TR_EINVAL);
    longname[TR_NAME_MAX] = 0; /* exactly TR_NAME_MAX is fine */
    assert_int_equal(call_rc(rt, b, REG, longname), 0);
    assert_int_equal(tr_whereis(rt, longname), b);
    assert_int_equal(tr_whereis(rt, NULL), TR_PID_NONE);
    assert_int_equal(tr_whereis(NULL, "db"), TR_PID_NONE);
    assert_int_equal(tr_whereis(rt, ""), TR_PID_NONE);

    /* Unregister, then the name is free again. */
    assert_int_equal(call_rc(rt, b, UNREG, NULL), 0);
    assert_int_equal(call_rc(rt, b, UNREG, NULL), TR_ENOTFOUND);
    assert_int_equal(tr_whereis(rt, longname), TR_PID_NONE);

    /* Exit releases the name, and the crash report shows it. */
    assert_int_equal(tr_rt_send(rt, a, FAIL, NULL, 0), 0);
    TR_WAIT_UNTIL(tr_whereis(rt, "db") == TR_PID_NONE);
    TR_WAIT_UNTIL(tr_test_log_count() == 1);
    char want[64], line[512];
    snprintf(want, sizeof want, "actor " TR_PID_FMT " 'db' (named)", TR_PID_ARGS(a));
    assert_true(tr_test_log_line_at(0, line, sizeof line));
    assert_non_null(strstr(line, want));
    assert_non_null(strstr(line, "-77"));
    assert_non_null(strstr(line, "boom"));
    assert_int_equal(call_rc(rt, b, REG, "db"), 0);
    assert_int_equal(tr_whereis(rt, "db"), b);

    /* Many names: the table grows. */
    tr_pid many[300];
    for (int i = 0; i < 300; i++) {
        char n[16];
        snprintf(n, sizeof n, "w%d", i);
        assert_int_equal(tr_rt_spawn(rt, &named_b, NULL, &many[i]), 0);
        assert_int_equal(call_rc(rt, many[i], REG, n), 0);
    }
    for (int i = 0; i < 300; i++) {
        char n[16];
        snprintf(n, sizeof n, "w%d", i);
        assert_int_equal(tr_whereis(rt, n), many[i]);
    }
    /* Stopping the runtime releases every name (ASan checks the memory). */
    tr_runtime_free(rt);
}

static tr_actor *saved_self;

static int grab_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    saved_self = self;
    TR_CHECK_EQ(tr_register(NULL, "x"), TR_EINVAL);
    TR_CHECK_EQ(tr_unregister(NULL), TR_EINVAL);
    return 0;
}

static const tr_behavior grab_b = {.name = "grab", .init = grab_init, .receive = named_receive};

static void test_registry_wrong_thread(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(1, 0);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &grab_b, NULL, &p), 0);
    assert_int_equal(call_rc(rt, p, UNREG, NULL), TR_ENOTFOUND); /* init has run */
    assert_int_equal(tr_register(saved_self, "x"), TR_EWRONGTHREAD);
    assert_int_equal(tr_unregister(saved_self), TR_EWRONGTHREAD);
    assert_int_equal(tr_whereis(rt, "x"), TR_PID_NONE);
    tr_runtime_free(rt);
}

/* ---- the name is free before anyone hears of the end --------------------------------- */

static _Atomic int down_seen = -1; /* whereis at DOWN time: 1 still taken, 0 free */

static int watcher_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == WATCH) {
        tr_pid p;
        memcpy(&p, msg->data, sizeof p);
        tr_ref ref;
        TR_CHECK_EQ(tr_monitor(self, p, &ref), 0);
        return tr_reply(self, msg, WATCH, NULL, 0);
    }
    if (msg->type == TR_MSG_DOWN)
        atomic_store(&down_seen, tr_whereis(tr_runtime_of(self), "phoenix") != TR_PID_NONE);
    return 0;
}

static const tr_behavior watcher_b = {.name = "watcher", .receive = watcher_receive};

static void test_name_released_before_down(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, TR_TEST_LOG_ERRORS); /* 50 crash reports */
    for (int i = 0; i < 50; i++) {
        atomic_store(&down_seen, -1);
        tr_pid named = tr_test_spawn(rt, &named_b, TR_LOOP(i % 2), NULL, 0);
        tr_pid watcher = tr_test_spawn(rt, &watcher_b, TR_LOOP((i + 1) % 2), NULL, 0);
        assert_int_equal(call_rc(rt, named, REG, "phoenix"), 0);
        tr_test_ask(rt, watcher, WATCH, &named, sizeof named, NULL, 0);
        assert_int_equal(tr_rt_send(rt, named, FAIL, NULL, 0), 0);
        TR_WAIT_UNTIL(atomic_load(&down_seen) != -1);
        assert_int_equal(atomic_load(&down_seen), 0); /* a successor could take it */
        assert_int_equal(tr_signal_exit(rt, watcher, TR_EXIT_SHUTDOWN), 0);
    }
    assert_int_equal(tr_runtime_free(rt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_registry_wrong_thread),
        cmocka_unit_test(test_name_released_before_down),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
