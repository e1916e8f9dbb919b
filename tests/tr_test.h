/*
 * tr_test.h — small helpers shared by troupe's cmocka tests.
 *
 * Include after <setjmp.h>, <stdarg.h>, <stddef.h> and <cmocka.h>.
 */
#ifndef TR_TEST_H
#define TR_TEST_H

#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "troupe.h"

/* Seconds a test waits for a condition before it fails: wide on purpose,
 * since sanitizers and a loaded machine slow everything down. */
#ifndef TR_TEST_PATIENCE_S
#define TR_TEST_PATIENCE_S 30
#endif

static inline uint64_t tr_test_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Waits until `cond` holds, yielding; fails the test after the patience. */
#define TR_WAIT_UNTIL(cond)                                                    \
    do {                                                                       \
        uint64_t tr_wait_end_ = tr_test_wall_ns() + TR_TEST_PATIENCE_S * 1000000000ull; \
        while (!(cond)) {                                                      \
            if (tr_test_wall_ns() > tr_wait_end_)                              \
                fail_msg("timed out waiting for: %s", #cond);                  \
            sched_yield();                                                     \
        }                                                                      \
    } while (0)

/*
 * Checks inside actor callbacks. Callbacks run on loop threads, where
 * cmocka's assert macros must not be used (they longjmp into the test's
 * thread); a failed TR_CHECK prints where and aborts the test program.
 */
#define TR_CHECK(cond)                                                         \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed in an actor: %s\n", __FILE__,  \
                    __LINE__, #cond);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)
#define TR_CHECK_EQ(a, b)                                                      \
    do {                                                                       \
        long long tr_a_ = (long long)(a), tr_b_ = (long long)(b);              \
        if (tr_a_ != tr_b_) {                                                  \
            fprintf(stderr, "%s:%d: check failed in an actor: %s == %s (%lld != %lld)\n", \
                    __FILE__, __LINE__, #a, #b, tr_a_, tr_b_);                 \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* A virtual runtime clock: tests move it by hand. */
static _Atomic uint64_t tr_test_vclock;

static inline uint64_t tr_test_vclock_read(void *userdata)
{
    (void)userdata;
    return atomic_load(&tr_test_vclock);
}

static inline void tr_test_vclock_set(tr_runtime *rt, uint64_t ns)
{
    atomic_store(&tr_test_vclock, ns);
    assert_int_equal(tr_runtime_clock_advanced(rt), 0);
}

/* A runtime with `loops` loops, optionally on the virtual clock (reset to
 * 1 s so that deadlines are never 0). Started. */
static inline tr_runtime *tr_test_runtime(unsigned loops, int virtual_clock)
{
    tr_runtime_options o;
    tr_runtime_options_init(&o);
    o.loops = loops;
    if (virtual_clock) {
        atomic_store(&tr_test_vclock, 1000000000ull);
        o.clock = tr_test_vclock_read;
    }
    tr_runtime *rt = NULL;
    assert_int_equal(tr_runtime_create(&rt, &o), 0);
    assert_int_equal(tr_runtime_start(rt), 0);
    return rt;
}

/* A log callback that drops everything (tests that provoke crashes). */
static inline void tr_test_quiet(void *ud, tr_log_level level, const char *line)
{
    (void)ud;
    (void)level;
    (void)line;
}

/* A started runtime with `loops` loops that logs nothing. */
static inline tr_runtime *tr_test_quiet_runtime(unsigned loops)
{
    tr_runtime_options o;
    tr_runtime_options_init(&o);
    o.loops = loops;
    o.log = tr_test_quiet;
    tr_runtime *rt = NULL;
    assert_int_equal(tr_runtime_create(&rt, &o), 0);
    assert_int_equal(tr_runtime_start(rt), 0);
    return rt;
}

static inline uint64_t tr_test_stat_total(tr_runtime *rt, size_t offset)
{
    tr_loop_stats s[16];
    int n = tr_runtime_stats(rt, s, 16);
    assert_true(n > 0 && n <= 16);
    uint64_t total = 0;
    for (int i = 0; i < n; i++)
        total += *(const uint64_t *)((const char *)&s[i] + offset);
    return total;
}

/* Sum of one tr_loop_stats field over the loops, e.g. TR_STAT(rt, dropped). */
#define TR_STAT(rt, field) tr_test_stat_total((rt), offsetof(tr_loop_stats, field))

#endif /* TR_TEST_H */
