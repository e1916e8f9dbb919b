/*
 * tr_test.h — the helpers troupe's cmocka tests share, so that a test
 * program says what it tests and not, once more, how to set a runtime up
 * or how to ask an actor something:
 *
 *  - runtimes: tr_test_runtime(loops, flags) for the usual set-ups (the
 *    virtual clock, no log, a captured log); tr_test_options with
 *    tr_test_runtime_opts or tr_test_runtime_unstarted when a test needs
 *    other options, or a runtime it starts itself;
 *  - the captured log: every line kept in order under a lock, searched
 *    with tr_test_has_log, tr_test_log_line and tr_test_log_line_at;
 *  - calls from the test's thread: tr_test_ask (an answer of one exact
 *    length, copied), tr_test_ask_var (an answer of a bounded length),
 *    tr_test_call_rc (a call the test expects to fail);
 *  - spawning from the test's thread: tr_test_spawn;
 *  - behaviours: tr_test_ignore, a receive that ignores everything;
 *    tr_test_caller, an actor that makes a call and reports its end;
 *  - waiting: TR_WAIT_UNTIL, TR_WAIT_GONE, tr_test_wait_child;
 *  - checks inside actors (TR_CHECK, TR_CHECK_EQ, TR_CHECK_COPY), the
 *    virtual clock, TR_STAT.
 *
 * Thread: the helpers that assert run on the test's thread only (cmocka's
 * asserts longjmp into it); actors use TR_CHECK. Those that can fail are
 * macros over a function that takes the caller's file and line, so that a
 * failure names the test's line, not this header's.
 *
 * Include after <setjmp.h>, <stdarg.h>, <stddef.h> and <cmocka.h>.
 */
#ifndef TR_TEST_H
#define TR_TEST_H

#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "troupe.h"

/* Seconds a test waits for a condition, or for an answer, before it fails:
 * wide on purpose, since sanitizers and a loaded machine slow everything
 * down. A test program may define a wider one before including this. */
#ifndef TR_TEST_PATIENCE_S
#define TR_TEST_PATIENCE_S 30
#endif

/* The timeout of the calls the helpers make: the patience. */
#define TR_TEST_CALL_MS ((tr_duration)TR_TEST_PATIENCE_S * 1000)

static inline uint64_t tr_test_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Fails the running test at `file`:`line` (the helper's caller) after
 * printing the message. Thread: the test's. */
static inline void tr_test_fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void tr_test_fail_at(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    print_error("ERROR: "); /* as fail_msg says it */
    vprint_error(fmt, ap);
    va_end(ap);
    print_error("\n");
    _fail(file, line);
}

/* ---- behaviours ------------------------------------------------------------------ */

/* A receive callback that ignores every message: for the actors a test
 * only spawns, links, monitors or stops. */
static inline int tr_test_ignore(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    (void)msg;
    return 0;
}

/* ---- waiting --------------------------------------------------------------------- */

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

/* Waits until `pid` is gone: until a send of `type` to it, from the test's
 * thread, is TR_ENOACTOR. Each try that finds it alive delivers a `type`
 * message with no payload, so `type` must be one the actor takes calmly. */
#define TR_WAIT_GONE(rt, pid, type)                                            \
    TR_WAIT_UNTIL(tr_rt_send((rt), (pid), (type), NULL, 0) == TR_ENOACTOR)

/* ---- checks inside actors -------------------------------------------------------- */

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

/* Copies a spawn argument or a payload (`data`, `len` bytes) into *(dst),
 * checking first that it is exactly sizeof *(dst) bytes. For callbacks. */
#define TR_CHECK_COPY(dst, data, len)                                          \
    do {                                                                       \
        TR_CHECK_EQ((len), sizeof *(dst));                                     \
        memcpy((dst), (data), sizeof *(dst));                                  \
    } while (0)

/* ---- the virtual clock ----------------------------------------------------------- */

/* A virtual runtime clock: tests move it by hand. */
static _Atomic uint64_t tr_test_vclock;

static inline uint64_t tr_test_vclock_read(void *userdata)
{
    (void)userdata;
    return atomic_load(&tr_test_vclock);
}

/* Moves the virtual clock to `ns` and tells `rt`. Thread: the test's. */
static inline void tr_test_vclock_set(tr_runtime *rt, uint64_t ns)
{
    atomic_store(&tr_test_vclock, ns);
    assert_int_equal(tr_runtime_clock_advanced(rt), 0);
}

/* ---- the captured log ------------------------------------------------------------ */

/*
 * The runtime logs from its loops and its watchdog at once: the capture
 * appends each line it keeps, and a '\n', to one text under a lock, so a
 * search may end its needle with "\n" to match a line's end. It keeps the
 * first TR_TEST_LOG_MAX bytes of a runtime's log (and counts every line);
 * tr_test_options clears it for each runtime that uses it.
 */
#define TR_TEST_LOG_MAX 65536
static pthread_mutex_t tr_test_log_mu = PTHREAD_MUTEX_INITIALIZER;
static char tr_test_log_text[TR_TEST_LOG_MAX]; /* under the lock */
static size_t tr_test_log_used;                /* under the lock */
static tr_log_level tr_test_log_min;           /* under the lock */
/* Lines kept: written under the lock, read without it (tr_test_log_count). */
static _Atomic int tr_test_log_lines;

/* The log callback of a runtime made with TR_TEST_LOG or TR_TEST_LOG_ERRORS.
 * Thread: any (the runtime's loops and watchdog). */
static inline void tr_test_log_capture(void *ud, tr_log_level level, const char *line)
{
    (void)ud;
    pthread_mutex_lock(&tr_test_log_mu);
    if (level >= tr_test_log_min) {
        size_t room = sizeof tr_test_log_text - tr_test_log_used;
        int n = snprintf(tr_test_log_text + tr_test_log_used, room, "%s\n", line);
        if (n > 0)
            tr_test_log_used += (size_t)n < room ? (size_t)n : room - 1;
        atomic_store(&tr_test_log_lines, atomic_load(&tr_test_log_lines) + 1);
    }
    pthread_mutex_unlock(&tr_test_log_mu);
}

/* Forgets what was captured; from now on keeps the lines at `min` or above.
 * Thread: the test's, while no runtime logs to the capture. */
static inline void tr_test_log_reset(tr_log_level min)
{
    pthread_mutex_lock(&tr_test_log_mu);
    tr_test_log_text[0] = '\0';
    tr_test_log_used = 0;
    tr_test_log_min = min;
    atomic_store(&tr_test_log_lines, 0);
    pthread_mutex_unlock(&tr_test_log_mu);
}

/* How many lines the capture has kept since its reset. Thread: any. */
static inline int tr_test_log_count(void)
{
    return atomic_load(&tr_test_log_lines);
}

/* Whether the captured text contains `needle` (which may span lines).
 * Thread: any. */
static inline int tr_test_has_log(const char *needle)
{
    pthread_mutex_lock(&tr_test_log_mu);
    int found = strstr(tr_test_log_text, needle) != NULL;
    pthread_mutex_unlock(&tr_test_log_mu);
    return found;
}

/* Copies the line (without its '\n') that starts at `start` into out. */
static inline void tr_test_log_copy_line(const char *start, char *out, size_t cap)
{
    const char *end = strchr(start, '\n');
    size_t len = end ? (size_t)(end - start) : strlen(start);
    snprintf(out, cap, "%.*s", (int)len, start);
}

/* Copies the first captured line that contains `needle` into `out` (cut to
 * `cap` bytes); 0 if there is none, and `out` is then untouched.
 * Thread: any. */
static inline int tr_test_log_line(const char *needle, char *out, size_t cap)
{
    pthread_mutex_lock(&tr_test_log_mu);
    const char *at = strstr(tr_test_log_text, needle);
    if (at) {
        const char *start = at;
        while (start > tr_test_log_text && start[-1] != '\n')
            start--;
        tr_test_log_copy_line(start, out, cap);
    }
    pthread_mutex_unlock(&tr_test_log_mu);
    return at != NULL;
}

/* Copies captured line `i` (0: the first) into `out` (cut to `cap` bytes);
 * 0 if there is no such line, and `out` is then untouched. Thread: any. */
static inline int tr_test_log_line_at(int i, char *out, size_t cap)
{
    pthread_mutex_lock(&tr_test_log_mu);
    const char *p = tr_test_log_text;
    for (int k = 0; k < i && *p; k++) {
        const char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : p + strlen(p);
    }
    int found = *p != '\0';
    if (found)
        tr_test_log_copy_line(p, out, cap);
    pthread_mutex_unlock(&tr_test_log_mu);
    return found;
}

/* ---- runtimes -------------------------------------------------------------------- */

/* What a test runtime has besides its loops (tr_test_options). */
enum {
    TR_TEST_VCLOCK = 1,     /* the virtual clock, reset to 1 s (deadlines never 0) */
    TR_TEST_QUIET = 2,      /* logs nothing (tests that provoke crashes) */
    TR_TEST_LOG = 4,        /* logs to the capture, cleared */
    TR_TEST_LOG_ERRORS = 8, /* logs to the capture, cleared: error lines only */
};

/* A log callback that drops everything (tests that provoke crashes). */
static inline void tr_test_quiet(void *ud, tr_log_level level, const char *line)
{
    (void)ud;
    (void)level;
    (void)line;
}

/* Options for `loops` loops and `flags` (TR_TEST_*), the defaults
 * otherwise; the test changes what else it needs before it creates the
 * runtime. The log flags reset the capture now. Thread: the test's. */
static inline tr_runtime_options tr_test_options(unsigned loops, unsigned flags)
{
    tr_runtime_options o;
    tr_runtime_options_init(&o);
    o.loops = loops;
    if (flags & TR_TEST_VCLOCK) {
        atomic_store(&tr_test_vclock, 1000000000ull);
        o.clock = tr_test_vclock_read;
    }
    if (flags & TR_TEST_QUIET)
        o.log = tr_test_quiet;
    if (flags & (TR_TEST_LOG | TR_TEST_LOG_ERRORS)) {
        tr_test_log_reset((flags & TR_TEST_LOG_ERRORS) ? TR_LOG_ERROR : TR_LOG_DEBUG);
        o.log = tr_test_log_capture;
    }
    return o;
}

/* A runtime made from `o` (NULL: the defaults), not started (the test
 * queues work first, or tests the start itself). Thread: the test's; the
 * caller frees it. */
static inline tr_runtime *tr_test_runtime_unstarted(const tr_runtime_options *o)
{
    tr_runtime *rt = NULL;
    assert_int_equal(tr_runtime_create(&rt, o), 0);
    return rt;
}

/* A started runtime made from `o`. Thread: the test's; the caller frees it. */
static inline tr_runtime *tr_test_runtime_opts(const tr_runtime_options *o)
{
    tr_runtime *rt = tr_test_runtime_unstarted(o);
    assert_int_equal(tr_runtime_start(rt), 0);
    return rt;
}

/* A started runtime with `loops` loops and `flags` (TR_TEST_*).
 * Thread: the test's; the caller frees it. */
static inline tr_runtime *tr_test_runtime(unsigned loops, unsigned flags)
{
    tr_runtime_options o = tr_test_options(loops, flags);
    return tr_test_runtime_opts(&o);
}

/* A started runtime with `loops` loops that logs nothing. */
static inline tr_runtime *tr_test_quiet_runtime(unsigned loops)
{
    return tr_test_runtime(loops, TR_TEST_QUIET);
}

#ifdef TROUPE_TEST_H
/* A started kit runtime (troupe_test.h: include it first, and link the
 * test with KIT) with `loops` loops, `flags` (TR_TEST_*; TR_TEST_VCLOCK is
 * implied: the kit's clock, which starts at 1 s) and the kit's `kit_flags`
 * (TR_TEST_AUTO_ADVANCE). Thread: the test's; the caller frees it. */
static inline tr_runtime *tr_test_kit(unsigned loops, unsigned flags, unsigned kit_flags)
{
    tr_runtime_options o = tr_test_options(loops, flags & ~(unsigned)TR_TEST_VCLOCK);
    tr_test_config c;
    tr_test_config_init(&c);
    c.flags = kit_flags;
    tr_runtime *rt = NULL;
    assert_int_equal(tr_test_create(&rt, &o, &c), 0);
    assert_int_equal(tr_runtime_start(rt), 0);
    return rt;
}

/* Advances the kit's clock to `ns` (absolute, runtime clock), timer by
 * timer, settling after each (tr_test_advance). */
static inline void tr_test_advance_to(tr_runtime *rt, uint64_t ns)
{
    uint64_t now = tr_now(rt);
    assert_true(ns >= now);
    assert_int_equal(tr_test_advance(rt, (tr_duration)((ns - now) / 1000000u)), 0);
    assert_int_equal(tr_now(rt), ns - (ns - now) % 1000000u);
}
#endif

/* ---- a caller ---------------------------------------------------------------------- */

/*
 * An actor that makes one call per TR_TEST_CALLER_GO message (payload: a
 * tr_test_call) and tells `report` how the call ended: a message of the
 * reply's type with its payload, or TR_TEST_CALLER_TIMED_OUT. Spawn it
 * with tr_test_caller() as the behaviour. User types at the top of the
 * range, clear of the tests' own.
 */
#define TR_TEST_CALLER_GO 0xfffe0001u
#define TR_TEST_CALLER_TIMED_OUT 0xfffe0002u

typedef struct tr_test_call {
    tr_pid target, report;
    uint32_t type, len;  /* the request's type, and len bytes of data */
    tr_duration timeout_ms;
    char data[16];
} tr_test_call;

static inline int tr_test_caller_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    tr_test_call *c = state;
    tr_ref ref;
    if (msg->type == TR_TEST_CALLER_GO) {
        TR_CHECK_COPY(c, msg->data, msg->len);
        return tr_call(self, c->target, c->type, c->data, c->len, c->timeout_ms, &ref);
    }
    if (msg->type == TR_MSG_CALL_TIMEOUT)
        return tr_send(self, c->report, TR_TEST_CALLER_TIMED_OUT, NULL, 0);
    if (msg->flags & TR_MSG_REPLY)
        return tr_send(self, c->report, msg->type, msg->data, msg->len);
    return 0;
}

static inline const tr_behavior *tr_test_caller(void)
{
    static const tr_behavior b = {.name = "caller", .state_size = sizeof(tr_test_call),
                                  .receive = tr_test_caller_receive};
    return &b;
}

/* ---- spawning -------------------------------------------------------------------- */

/* Spawns `b` from the test's thread on `loop` (TR_LOOP(n), or
 * TR_LOOP_DEFAULT: round-robin) with a copy of `arg`; fails the test unless
 * that works; returns the pid. */
#define tr_test_spawn(rt, b, loop, arg, arg_len)                               \
    tr_test_spawn_at(__FILE__, __LINE__, (rt), (b), (loop), (arg), (arg_len))

static inline tr_pid tr_test_spawn_at(const char *file, int line, tr_runtime *rt,
                                      const tr_behavior *b, int loop, const void *arg,
                                      size_t arg_len)
{
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.loop = loop;
    o.arg = arg;
    o.arg_len = arg_len;
    tr_pid p = TR_PID_NONE;
    int rc = tr_rt_spawn(rt, b, &o, &p);
    if (rc != 0)
        tr_test_fail_at(file, line, "spawning %s: %s", b && b->name ? b->name : "?",
                        tr_err_name(rc));
    return p;
}

/* ---- calls ----------------------------------------------------------------------- */

/*
 * Asks `to` from the test's thread: a tr_rt_call of `type` with `req`
 * (`req_len` bytes) that waits up to TR_TEST_CALL_MS. Fails the test unless
 * the call succeeds and the answer is exactly `out_len` bytes; copies them
 * to `out` (NULL: only their length is checked) and frees the reply.
 * Not for calls whose callee looks at the request's deadline: that
 * timeout is the test's to choose (call tr_rt_call).
 */
#define tr_test_ask(rt, to, type, req, req_len, out, out_len)                  \
    tr_test_ask_at(__FILE__, __LINE__, (rt), (to), (type), (req), (req_len), (out), \
                   (out_len))

/* As tr_test_ask, for an answer of up to `cap` bytes: fails the test if it
 * is longer; copies it to `out` and returns its length. */
#define tr_test_ask_var(rt, to, type, req, req_len, out, cap)                  \
    tr_test_ask_var_at(__FILE__, __LINE__, (rt), (to), (type), (req), (req_len), (out), \
                       (cap))

/* The call behind both: the reply, whose length is checked against
 * [min_len, max_len]; the caller frees it. */
static inline tr_rt_reply tr_test_call_at(const char *file, int line, tr_runtime *rt,
                                          tr_pid to, uint32_t type, const void *req,
                                          size_t req_len, size_t min_len, size_t max_len)
{
    tr_rt_reply r;
    memset(&r, 0, sizeof r);
    int rc = tr_rt_call(rt, to, type, req, req_len, TR_TEST_CALL_MS, &r);
    if (rc != 0) {
        tr_test_fail_at(file, line, "call of type %u to " TR_PID_FMT ": %s (%s)",
                        (unsigned)type, TR_PID_ARGS(to), tr_err_name(rc), tr_strerror(rc));
        memset(&r, 0, sizeof r);
        return r;
    }
    if (r.len < min_len || r.len > max_len) {
        uint32_t got = r.len;
        tr_rt_reply_free(&r);
        if (min_len == max_len)
            tr_test_fail_at(file, line, "call of type %u to " TR_PID_FMT
                            ": answered %u bytes, want %zu",
                            (unsigned)type, TR_PID_ARGS(to), (unsigned)got, min_len);
        else
            tr_test_fail_at(file, line, "call of type %u to " TR_PID_FMT
                            ": answered %u bytes, want at most %zu",
                            (unsigned)type, TR_PID_ARGS(to), (unsigned)got, max_len);
    }
    return r;
}

static inline void tr_test_ask_at(const char *file, int line, tr_runtime *rt, tr_pid to,
                                  uint32_t type, const void *req, size_t req_len,
                                  void *out, size_t out_len)
{
    tr_rt_reply r = tr_test_call_at(file, line, rt, to, type, req, req_len, out_len, out_len);
    if (out && r.len)
        memcpy(out, r.data, r.len);
    tr_rt_reply_free(&r);
}

static inline size_t tr_test_ask_var_at(const char *file, int line, tr_runtime *rt,
                                        tr_pid to, uint32_t type, const void *req,
                                        size_t req_len, void *out, size_t cap)
{
    tr_rt_reply r = tr_test_call_at(file, line, rt, to, type, req, req_len, 0, cap);
    size_t len = r.len;
    if (out && len)
        memcpy(out, r.data, len);
    tr_rt_reply_free(&r);
    return len;
}

/* A call the test expects may fail: returns tr_rt_call's code, and drops
 * the answer if there is one. The timeout is the caller's (often the point
 * of the test). It asserts nothing. Thread: any plain thread. */
static inline int tr_test_call_rc(tr_runtime *rt, tr_pid to, uint32_t type,
                                  const void *req, size_t req_len, tr_duration timeout_ms)
{
    tr_rt_reply r;
    int rc = tr_rt_call(rt, to, type, req, req_len, timeout_ms, &r);
    if (rc == 0)
        tr_rt_reply_free(&r);
    return rc;
}

/* ---- supervisors ----------------------------------------------------------------- */

/* Waits until child `i` of supervisor `sup` runs with a pid other than
 * `old` (TR_PID_NONE: any), and returns its record. Fails the test if the
 * supervisor does not answer or the child does not come within the
 * patience. Thread: the test's. */
#define tr_test_wait_child(rt, sup, i, old)                                    \
    tr_test_wait_child_at(__FILE__, __LINE__, (rt), (sup), (i), (old))

static inline tr_sup_child tr_test_wait_child_at(const char *file, int line,
                                                 tr_runtime *rt, tr_pid sup, int i,
                                                 tr_pid old)
{
    tr_sup_child c[16];
    const int cap = (int)(sizeof c / sizeof c[0]);
    memset(c, 0, sizeof c);
    uint64_t end = tr_test_wall_ns() + TR_TEST_PATIENCE_S * 1000000000ull;
    for (;;) {
        int n = tr_rt_sup_which_children(rt, sup, c, (unsigned)cap);
        if (n < 0) {
            tr_test_fail_at(file, line, "supervisor " TR_PID_FMT ": %s", TR_PID_ARGS(sup),
                            tr_err_name(n));
            return c[0];
        }
        if (i < cap && n > i && c[i].pid != TR_PID_NONE && c[i].pid != old)
            return c[i];
        if (tr_test_wall_ns() > end) {
            tr_test_fail_at(file, line, "timed out waiting for child %d of " TR_PID_FMT
                            " to run as other than " TR_PID_FMT,
                            i, TR_PID_ARGS(sup), TR_PID_ARGS(old));
            return c[0];
        }
        sched_yield();
    }
}

/* ---- loop statistics ------------------------------------------------------------- */

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
