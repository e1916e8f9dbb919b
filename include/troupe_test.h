/*
 * troupe_test.h — the test kit: virtual time that settles, auto-advance,
 * and probes. Link the `troupe::troupe_test` target (find_package(troupe))
 * (it brings troupe::troupe). docs/testing.md is the guide.
 *
 * A kit runtime (tr_test_create) is an ordinary troupe runtime — every
 * loop on its own thread, production code unchanged — whose clock is
 * virtual: it moves only when the test advances it (tr_test_advance), or,
 * with TR_TEST_AUTO_ADVANCE, by itself whenever the whole runtime is idle
 * and someone waits (Trio's autojump, Tokio's paused clock). Every wait
 * of the test's thread — tr_rt_call, tr_rt_wait_exit, the supervisor
 * helpers, a probe's expectation — ends at its deadline on that clock, so
 * a test of a 30-second timeout runs in microseconds, and never flakes on
 * a slow machine.
 *
 * Settle is the barrier that makes such tests deterministic: it returns
 * once every loop is asleep with nothing to do, no message in flight and
 * no worker job queued or running — everything that was due has been
 * delivered, and everything that delivery caused. tr_test_advance settles
 * after every timer it makes due.
 *
 * Probes (tr_probe_*) are actors that record what they receive, and what
 * other actors send each other when asked to observe it, for the test to
 * expect message by message (Akka's TestProbe, CAF's expect).
 *
 * Thread: every function here is for the test's plain threads (never a
 * loop's). Not covered by settle: bytes still in the kernel (sockets), and
 * wall-clock waits of a user's own (sleep, a channel's _wait functions).
 */
#ifndef TROUPE_TEST_H
#define TROUPE_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "troupe.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Kit runtimes: virtual time                                               */
/* ------------------------------------------------------------------------ */

/* tr_test_config.flags: when the runtime is idle and a plain thread waits
 * (a call, a wait for an exit, an expectation), the clock jumps to the
 * next timer, or to the end of the wait, whichever comes first. */
#define TR_TEST_AUTO_ADVANCE 0x1u
/* tr_test_config.flags: deterministic mode (below, "Deterministic
 * scheduling"): no loop or worker threads; the test's thread runs every
 * step, in an order its seed decides. */
#define TR_TEST_DETERMINISTIC 0x2u

/* One step of a deterministic runtime (tr_test_step, the trace). */
typedef struct tr_test_event {
    int kind;       /* TR_TEST_EV_* */
    tr_pid actor;   /* who ran (TR_PID_NONE for a job) */
    tr_pid from;    /* TR_TEST_EV_MESSAGE: the message's sender */
    uint32_t type;  /* TR_TEST_EV_MESSAGE: its type */
    uint32_t len;   /* TR_TEST_EV_MESSAGE: its length */
    uint64_t step;  /* 1, 2, ... since the runtime started */
    uint64_t at;    /* the runtime clock then */
} tr_test_event;

#define TR_TEST_EV_MESSAGE 1 /* a handler got a message */
#define TR_TEST_EV_RUN 2     /* the actor ran without a message reaching its
                                handler: its init, exit signals, a notice the
                                runtime consumed */
#define TR_TEST_EV_JOB 3     /* a worker job ran (or its injected failure) */

typedef struct tr_test_config {
    unsigned flags;          /* TR_TEST_AUTO_ADVANCE, TR_TEST_DETERMINISTIC; 0: manual time */
    /* The clock's start, in ns. 0: 1 s (so that "now minus a little" is
     * never below zero). */
    uint64_t start_ns;
    /* Real time the kit waits for the runtime to settle, or, in manual
     * mode, for an answer nothing scheduled can bring, before it gives up
     * (TR_ETIMEDOUT). A safety net against a test that would hang; never
     * what a test measures. 0: 30000 ms. */
    tr_duration patience_ms;
    /* Timer deadlines one tr_test_advance (or one expectation) may step
     * through before it gives up with TR_ELIMIT: a 1 ms interval crossed
     * for an hour would otherwise take millions of steps. 0: 1,000,000. */
    uint32_t max_steps;
    /* Deterministic mode: the seed that orders the steps. 0: one taken
     * from the clock, printed to stderr so that the run can be replayed
     * (tr_test_seed tells it too). */
    uint64_t seed;
    /* Deterministic mode: called after every step (NULL: none), on the
     * test's thread: print the trace of a failing run. */
    void (*trace)(void *userdata, const tr_test_event *ev);
    void *trace_userdata;
} tr_test_config;

/* Fills `cfg` with the defaults (all zero). Any thread. */
TR_API void tr_test_config_init(tr_test_config *cfg);

/*
 * Creates a kit runtime, not started (tr_runtime_start it, free it with
 * tr_runtime_free as any runtime; the kit is freed with it). `opts` (NULL:
 * the defaults) must not set a clock: the kit's is installed;
 * `cfg` may be NULL. Errors: TR_EINVAL (NULL out, a clock in opts, a
 * negative patience other than TR_DEFAULT), those of tr_runtime_create,
 * TR_ENOMEM. Thread: any plain thread.
 */
TR_API int tr_test_create(tr_runtime **out, const tr_runtime_options *opts,
                          const tr_test_config *cfg);

/* Whether `rt` was made by tr_test_create. Any thread. */
TR_API bool tr_test_is_kit(const tr_runtime *rt);

/*
 * Waits until the runtime is quiescent: every loop asleep with nothing to
 * run, no message in flight, no timer due on the runtime clock, no worker
 * job queued or running. Everything due has then been delivered, and
 * everything it caused. Does not move the clock. Works on any started
 * runtime (a real clock's timers fire when their time comes).
 * Errors: TR_EINVAL (NULL, not started), TR_EWRONGTHREAD (a loop thread),
 * TR_ETIMEDOUT (not quiescent within the patience: an actor that never
 * stops sending itself messages, a job that runs on). A stopped runtime
 * is quiescent. Bounded by the patience (real time).
 * Thread: plain threads.
 */
TR_API int tr_test_settle(tr_runtime *rt);

/*
 * Moves the kit's clock `ms` forward, deadline by deadline: settles, then
 * for each timer due within the span moves the clock to it and settles
 * again, then moves to the end and settles. So every timer fires at its
 * own time, an interval once per period crossed, and what each delivery
 * causes (a timer it sets that falls within the span, too) happens before
 * the next. 0 only settles. Errors: TR_EINVAL (not a kit runtime, a
 * negative ms), TR_ELIMIT (max_steps deadlines crossed: the clock stops
 * where it got), those of tr_test_settle. Thread: plain threads.
 */
TR_API int tr_test_advance(tr_runtime *rt, tr_duration ms);

/*
 * Settles, then gives the earliest timer deadline of the runtime
 * (runtime clock, ns) in *at, UINT64_MAX if no timer is set. Errors: as
 * tr_test_settle. Thread: plain threads.
 */
TR_API int tr_test_next_timer(tr_runtime *rt, uint64_t *at);

/* ------------------------------------------------------------------------ */
/* Deterministic scheduling                                                 */
/* ------------------------------------------------------------------------ */

/*
 * With TR_TEST_DETERMINISTIC the runtime starts no thread of its own: the
 * test's thread runs it, one step at a time. A step is one actor handling
 * one message (or running its init, or its exit signals), exactly as a
 * loop would run it, or one worker job run inline. When several steps are
 * possible — actors runnable on any loop, a job queued — the seed picks
 * one: the order of each sender's messages to each receiver is kept (the
 * mailboxes are FIFO), only the interleaving of different senders and
 * actors varies. The same seed gives the same steps, the same trace and
 * the same pids, run after run: a failure found under one seed replays
 * from it (FoundationDB's simulation, TigerBeetle's VOPR).
 *
 * Every plain-thread wait drives the steps itself: tr_rt_call,
 * tr_rt_wait_exit, the tr_rt_sup_* helpers, tr_runtime_tree, channel
 * waits (tr_chan_send_wait, tr_chan_recv_wait), the probes'
 * expectations, settle and advance; tr_runtime_wait and tr_runtime_free
 * run the stop. A wait that nothing runnable can answer fails at once
 * (TR_ETIMEDOUT) in manual time, or moves the clock with auto-advance; a
 * wait that runs max_steps steps without its answer fails with
 * TR_ETIMEDOUT and says so on stderr. Not supported in this mode:
 * sockets, SIGINT/SIGTERM handling (stop_on_signals), other threads
 * calling into the runtime while the test's thread runs it.
 */

/*
 * Runs one step; *ev (may be NULL) says what ran. Returns 0, TR_ENOTFOUND
 * (nothing is runnable: the runtime is idle; timers may be pending),
 * TR_EINVAL (not a deterministic kit runtime, not started).
 * Thread: the test's.
 */
TR_API int tr_test_step(tr_runtime *rt, tr_test_event *ev);

/* The seed of a deterministic kit runtime (0 otherwise). Any thread. */
TR_API uint64_t tr_test_seed(const tr_runtime *rt);
/* A hash of every step so far (each event: kind, actor, sender, type,
 * length): two runs with equal hashes ran the same schedule. 0 if not a
 * deterministic kit runtime. */
TR_API uint64_t tr_test_trace_hash(const tr_runtime *rt);
/* The steps run so far. */
TR_API uint64_t tr_test_steps(const tr_runtime *rt);

/* A scenario for tr_test_explore: runs on a started deterministic
 * runtime; returns 0 if it passed, anything else if it failed (not a
 * cmocka assert: the explorer must get the control back). It need not
 * free what lives in the runtime: the runtime is freed after it. */
typedef int (*tr_test_scenario)(tr_runtime *rt, void *userdata);

/* What tr_test_explore found. */
typedef struct tr_test_explored {
    unsigned runs;        /* seeds run */
    uint64_t seed;        /* the failing seed (0: none failed) */
    uint64_t trace_hash;  /* the failing run's tr_test_trace_hash */
    int rc;               /* the scenario's return for it */
} tr_test_explored;

/*
 * Runs `scenario` once per seed — cfg->seed, cfg->seed + 1, ... (cfg->seed
 * 0: 1) — for `seeds` seeds, each on a fresh deterministic kit runtime
 * made from `opts` and `cfg` (TR_TEST_DETERMINISTIC is implied), until one
 * fails. Returns 0 (every seed passed), TR_EUNEXPECTED (one failed: *out
 * says which, and a line on stderr says how to replay it), or the error of
 * making or starting a runtime. *out (may be NULL) is filled either way.
 * Thread: the test's.
 */
TR_API int tr_test_explore(const tr_runtime_options *opts, const tr_test_config *cfg,
                           unsigned seeds, tr_test_scenario scenario, void *userdata,
                           tr_test_explored *out);

/* ------------------------------------------------------------------------ */
/* Fault injection                                                          */
/* ------------------------------------------------------------------------ */

/*
 * `actor` fails on the nth message it is given from now (1: the next):
 * its handler does not run, and it ends with TR_EXIT_ERROR and `code`
 * (non-zero; TR_EUSER(n) for the application's), as if its handler had
 * returned it — to test the supervisor and links above it. Any kit
 * runtime. Errors: TR_EINVAL (not a kit runtime, nth or code 0), TR_ELIMIT
 * (64 faults pending). Thread: any.
 */
TR_API int tr_test_fail_message(tr_runtime *rt, tr_pid actor, uint32_t nth, int code);

/*
 * Drops the next `count` messages (UINT32_MAX: all, from now on) that
 * `from` (TR_PROBE_ANY: anyone) sends `to`, at their delivery: the handler
 * never sees them, a request among them is left unanswered (its caller's
 * timeout ends the call). A lost network packet between two actors. Any
 * kit runtime. Errors: TR_EINVAL, TR_ELIMIT. Thread: any.
 */
TR_API int tr_test_drop_messages(tr_runtime *rt, tr_pid from, tr_pid to, uint32_t count);

/*
 * Delays the next `count` user messages (UINT32_MAX: all, from now on)
 * that `from` (TR_PROBE_ANY: anyone) sends `to` by `ms` of virtual time:
 * at its delivery a message is held, and sent again — from its sender,
 * request or reply as it was — when the kit's clock has moved `ms` on
 * (the kit treats it as a timer: advance and auto-advance stop there). It
 * then arrives after whatever `to` was sent meanwhile: a slow link, which
 * reorders. Runtime notices (DOWN, exit signals) are never delayed. A
 * held request is also owed by `to` as a dropped one is (if `to` ends, its
 * caller learns it). Any kit runtime. Errors: TR_EINVAL (not a kit
 * runtime, count 0, ms not positive), TR_ELIMIT. Thread: any.
 */
TR_API int tr_test_delay_messages(tr_runtime *rt, tr_pid from, tr_pid to, uint32_t count,
                                  tr_duration ms);

/*
 * Deterministic mode: the nth worker job run from now (1: the next) fails
 * with `code` (non-zero) instead of running: its owner gets
 * TR_MSG_JOB_FAILED with that code. Errors: TR_EINVAL (not a deterministic
 * kit runtime, nth or code 0). Thread: the test's.
 */
TR_API int tr_test_fail_job(tr_runtime *rt, uint32_t nth, int32_t code);

/*
 * Deterministic mode: the nth worker job run from now (1: the next) takes
 * `ms` of virtual time: when its turn comes, it and the jobs queued after
 * it wait that long (a slow worker, with the pool's queue behind it).
 * Errors: TR_EINVAL (not a deterministic kit runtime, nth 0, ms not
 * positive). Thread: the test's.
 */
TR_API int tr_test_delay_job(tr_runtime *rt, uint32_t nth, tr_duration ms);

/*
 * The nth allocation troupe makes from now on (1: the next), in any
 * runtime of the process, fails once, as the system's allocator would:
 * the same mechanism as troupe's own out-of-memory tests, so that a test
 * can sweep n = 1, 2, ... over a scenario and check that every failure is
 * an error, never a crash, a hang or a leak (deterministic mode makes the
 * sweep reproducible). 0 disarms. Thread: any.
 */
TR_API void tr_test_fail_alloc(uint64_t nth);
/* Allocations counted, and failed, since the last tr_test_fail_alloc.
 * Either pointer may be NULL. Thread: any. */
TR_API void tr_test_alloc_counts(uint64_t *attempted, uint64_t *failed);

/* ------------------------------------------------------------------------ */
/* Probes                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct tr_probe tr_probe;

/* Any sender, in an expectation's `from`. (TR_PID_NONE is a sender too: a
 * plain thread's tr_rt_send.) */
#define TR_PROBE_ANY ((tr_pid)UINT64_MAX)
/* Any exit kind, in tr_probe_expect_down / _exit. */
#define TR_PROBE_ANY_KIND (-1)

/* A message a probe recorded: its fields as the receiver saw them, `to`
 * (the probe, or the observed receiver), `at` (runtime clock when it was
 * recorded) and a malloc'd copy of the payload (NULL when len is 0) that
 * the test owns: free it with tr_probe_msg_free. */
typedef struct tr_probe_msg {
    tr_pid from;
    tr_pid to;
    uint32_t type;
    uint32_t len;
    void *data;
    tr_ref ref;
    uint64_t deadline;
    uint64_t tag;
    uint32_t flags;
    uint64_t at;
} tr_probe_msg;

/* Frees the payload copy of `m` (NULL is fine) and zeroes it. Any thread. */
TR_API void tr_probe_msg_free(tr_probe_msg *m);

/*
 * Spawns a probe: a top-level actor that traps exits and records every
 * message it receives, in order, for the test's expectations. Its pid
 * (tr_probe_pid) is what the code under test sends to. Free it with
 * tr_probe_free before the runtime. Errors: TR_EINVAL, those of
 * tr_rt_spawn, TR_ENOMEM. Thread: plain threads.
 */
TR_API int tr_probe_create(tr_runtime *rt, tr_probe **out);

/* The probe's actor. Any thread. */
TR_API tr_pid tr_probe_pid(const tr_probe *p);

/*
 * Stops the probe's actor, waits for its end (the runtime's patience, at
 * most) and frees the probe with the messages it still holds. NULL is a
 * no-op. The runtime may have stopped already. Returns 0, or
 * TR_EWRONGTHREAD (a loop thread: nothing is freed). Thread: plain
 * threads.
 */
TR_API int tr_probe_free(tr_probe *p);

/*
 * Expects the next message the probe holds (or gets within `timeout_ms`)
 * to be of `type` from `from` (TR_PROBE_ANY: any sender). On a kit
 * runtime the timeout is on the virtual clock, and the wait moves the
 * clock as tr_test_advance does until the message comes or the timeout
 * has passed — with or without auto-advance; on another runtime it is real
 * time. TR_DEFAULT: 3000 ms. On success the message is taken; *out (may
 * be NULL) gets it. A different message is taken too (expectations read
 * the messages in order) and the expectation fails with TR_EUNEXPECTED;
 * none in time is TR_ETIMEDOUT. A failure prints what was expected and
 * what came instead (or that nothing did) to stderr, and keeps the text
 * for tr_probe_failure. Errors also: TR_EINVAL, TR_ELIMIT (as
 * tr_test_advance), TR_ENOMEM. Thread: plain threads.
 */
TR_API int tr_probe_expect(tr_probe *p, uint32_t type, tr_pid from,
                           tr_duration timeout_ms, tr_probe_msg *out);

/* As tr_probe_expect, and the payload must be the `len` bytes of `data`. */
TR_API int tr_probe_expect_payload(tr_probe *p, uint32_t type, tr_pid from,
                                   const void *data, size_t len,
                                   tr_duration timeout_ms, tr_probe_msg *out);

/* A predicate over a recorded message, for tr_probe_expect_where. */
typedef bool (*tr_probe_pred)(const tr_probe_msg *m, void *userdata);

/* As tr_probe_expect, and the message must satisfy `pred`; `what` (may be
 * NULL) describes the expectation in the failure text. */
TR_API int tr_probe_expect_where(tr_probe *p, uint32_t type, tr_pid from,
                                 tr_probe_pred pred, void *userdata, const char *what,
                                 tr_duration timeout_ms, tr_probe_msg *out);

/*
 * Expects that no message comes for `ms` (a kit runtime: virtual time,
 * moved as tr_test_advance does, the clock then `ms` later; otherwise real
 * time). A message that comes is taken and fails it with TR_EUNEXPECTED.
 * Errors also: TR_EINVAL, TR_ELIMIT. Thread: plain threads.
 */
TR_API int tr_probe_expect_no_message(tr_probe *p, tr_duration ms);

/*
 * Expects the next message to be the TR_MSG_DOWN of `who` (TR_PROBE_ANY:
 * any) with exit kind `kind` (TR_PROBE_ANY_KIND: any), after
 * tr_probe_monitor. *out (may be NULL) gets its tr_down (without a result).
 * Errors and thread: as tr_probe_expect. */
TR_API int tr_probe_expect_down(tr_probe *p, tr_pid who, int kind,
                                tr_duration timeout_ms, tr_down *out);

/* As tr_probe_expect_down, for the trapped exit signal (TR_MSG_EXIT) a
 * linked actor's end sends the probe (tr_probe_link). */
TR_API int tr_probe_expect_exit(tr_probe *p, tr_pid who, int kind,
                                tr_duration timeout_ms, tr_down *out);

/* The probe monitors `who` (tr_monitor, by its actor): its DOWN comes to
 * the probe. *ref (may be NULL) gets the monitor's ref. Errors: those of
 * tr_monitor, of tr_rt_call. Thread: plain threads. */
TR_API int tr_probe_monitor(tr_probe *p, tr_pid who, tr_ref *ref);

/* The probe links to `who` (tr_link): `who`'s end comes as a TR_MSG_EXIT;
 * the probe's own end (tr_probe_free) is a shutdown, which `who` sees as
 * tr_link says. Errors:
 * those of tr_link, of tr_rt_call. Thread: plain threads. */
TR_API int tr_probe_link(tr_probe *p, tr_pid who);

/*
 * Records, besides its own mail, every message `to` is given from `from`
 * (TR_PROBE_ANY: any sender; `to` must be an actor, not TR_PROBE_ANY),
 * right before `to`'s handler sees it, from now on until the probe is
 * freed: expect on messages between two other actors without being their
 * receiver (the observed message is still delivered). Kit runtimes only.
 * Errors: TR_EINVAL (not a kit runtime, to == TR_PROBE_ANY), TR_ELIMIT
 * (64 observations per runtime), TR_ENOMEM. Thread: plain threads.
 */
TR_API int tr_probe_observe(tr_probe *p, tr_pid from, tr_pid to);

/* Sends a copy of the payload from the probe's actor (tr_send), so that
 * what answers the sender answers the probe. Errors: those of tr_send,
 * of tr_rt_call. Thread: plain threads. */
TR_API int tr_probe_send(tr_probe *p, tr_pid to, uint32_t type, const void *data,
                         size_t len);

/* Answers a request the probe recorded (`request`, from an expectation;
 * its flags carry TR_MSG_REQUEST) as the probe's actor (tr_reply): the
 * probe stands in for a service the code under test calls. Errors: those
 * of tr_reply, of tr_rt_call. Thread: plain threads. */
TR_API int tr_probe_reply(tr_probe *p, const tr_probe_msg *request, uint32_t type,
                          const void *data, size_t len);

/* The number of messages the probe holds, not yet expected. Any thread. */
TR_API size_t tr_probe_pending(tr_probe *p);

/* The text of the probe's last failed expectation ("" if none): what was
 * expected and what came. Valid until the probe's next expectation. */
TR_API const char *tr_probe_failure(const tr_probe *p);

/*
 * For cmocka tests: fails the running test with the probe's failure text
 * if `call` (an expectation on `probe`) does not return 0. Needs cmocka.h
 * included before the macro is used.
 */
#define TR_PROBE_ASSERT(probe, call)                                           \
    do {                                                                       \
        int tr_probe_rc_ = (call);                                             \
        if (tr_probe_rc_ != 0)                                                 \
            fail_msg("%s: %s (%s)", #call, tr_probe_failure(probe),            \
                     tr_err_name(tr_probe_rc_));                               \
    } while (0)

#ifdef __cplusplus
}
#endif

#endif /* TROUPE_TEST_H */
