/*
 * troupe — a C11 actor runtime: per-core libuv event loops host lightweight
 * actors that exchange messages through lock-free mailboxes.
 *
 * This is the whole public API. Everything here is prefixed tr_ (functions,
 * types) or TR_ (macros, constants); nothing else is public.
 *
 * Conventions that hold for every function unless its comment says otherwise:
 *
 *  - Errors: functions return 0 on success or a negative TR_E* code; every
 *    code has a tr_strerror() text. Out-parameters are written only on
 *    success. Bad input (NULL, unknown or dead pids, oversized payloads, the
 *    wrong thread, a stopped runtime) is an error code, never a crash.
 *  - Error ranges: troupe's own codes are -1 .. -65535 (only the table's
 *    codes are used; the rest is reserved). Everything else non-zero is the
 *    application's: TR_EUSER(n) (-65536 - n) and any positive code. Handlers,
 *    init callbacks and jobs fail with TR_EUSER(n) (or a positive code) for
 *    their own failures, and may propagate a troupe code they got (return
 *    the TR_ENOACTOR of a tr_send as it is); logs, crash reports and exit
 *    reasons print each as its owner's ("application error 7 (TR_EUSER(7))"
 *    vs "error -3 (TR_ENOACTOR)").
 *  - Message types: 0 .. TR_MSG_USER_MAX are the application's; the types
 *    above are the runtime's. Sending one of those is TR_EINVAL on every
 *    public send path, except calling a supervisor request (and answering
 *    one with its own type): see TR_MSG_SUP_WHICH.
 *  - Threads: functions that take a `tr_actor *self` may only be called from
 *    that actor's own callbacks (init, receive, terminate), on its home loop;
 *    anything else returns TR_EWRONGTHREAD. Functions named tr_rt_* and the
 *    tr_runtime_* functions say which threads may call them. The blocking
 *    ones (tr_rt_call and the tr_rt_sup_* requests, tr_rt_wait_exit,
 *    tr_runtime_wait, tr_runtime_tree, tr_runtime_free, the tr_chan_*_wait
 *    calls) refuse the loop threads of every runtime in the process with
 *    TR_EWRONGTHREAD, not only their own runtime's: a loop blocked on
 *    another runtime could wait for a loop that waits for it.
 *  - Ownership: a send copies the payload; the caller keeps its buffer. A
 *    receiver owns a message only until its handler returns.
 *  - Pids are 64-bit handles (node, generation, slot index: see tr_pid),
 *    never pointers. A pid of an exited actor, or of another runtime, stays
 *    safe to use: it yields TR_ENOACTOR, never another actor.
 *  - Waits: nothing blocks forever on an answer that a failure can lose.
 *    Every blocking function's comment says what ends its wait; an actor's
 *    call ends with exactly one of reply, timeout and failure (tr_call).
 *  - Durations: every duration is a tr_duration, a signed 64-bit count of
 *    milliseconds (a field or argument whose name ends in _us, such as
 *    spin_us, counts microseconds instead, and is unsigned). As a function
 *    argument, 0 means zero (no wait, expire now, fire at the next timer
 *    check), a positive value is that many milliseconds, TR_INFINITE means
 *    no limit and TR_DEFAULT the default the function's comment names; a
 *    function without a sensible default (or where no limit makes no
 *    sense) says so and returns TR_EINVAL for that sentinel, as for any
 *    other negative value. Arithmetic on durations saturates: a huge
 *    duration is a very long one, never a wrapped short one.
 *  - Zero is the default in structs: every options or spec struct is
 *    ready to use when zeroed (a designated initializer that leaves a field
 *    out, or its tr_*_init function), and each field's comment names its
 *    default. An explicit choice that is not the default has its own name
 *    (TR_LOOP(n), TR_LOOP_ROUND_ROBIN, TR_RESTARTS_NEVER, TR_INFINITE). A
 *    duration field is 0 or TR_DEFAULT for its default, TR_INFINITE for no
 *    limit, or a positive count of milliseconds. A value out of range is
 *    TR_EINVAL from the call that receives the struct.
 */
#ifndef TROUPE_H
#define TROUPE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TROUPE_VERSION_MAJOR 0
#define TROUPE_VERSION_MINOR 2
#define TROUPE_VERSION_PATCH 0
#define TROUPE_VERSION_STRING "0.2.0"
/* (major << 16) | (minor << 8) | patch, for compile-time comparisons. */
#define TROUPE_VERSION_NUMBER                                                  \
    ((TROUPE_VERSION_MAJOR << 16) | (TROUPE_VERSION_MINOR << 8) |              \
     TROUPE_VERSION_PATCH)

#if defined(_WIN32)
#define TR_API
#elif defined(__GNUC__)
#define TR_API __attribute__((visibility("default")))
#else
#define TR_API
#endif

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * The one table of error codes. tr_strerror() and tr_err_name() are generated
 * from it. X(name, value, text).
 */
#define TR_ERRNO_MAP(X)                                                        \
    X(EINVAL, -1, "invalid argument")                                          \
    X(ENOMEM, -2, "out of memory")                                             \
    X(ENOACTOR, -3, "no such actor: the pid is unknown or the actor exited")   \
    X(EMSGSIZE, -4, "payload larger than the runtime's max_payload")           \
    X(EFULL, -5, "queue or mailbox is full")                                   \
    X(EEMPTY, -6, "queue is empty")                                            \
    X(EWRONGTHREAD, -7, "called from a thread this function does not allow")   \
    X(ESTOPPED, -8, "the runtime (or the calling actor) is stopping or stopped") \
    X(EALREADY, -9, "already done: started or stopped before")                 \
    X(ENOTSTARTED, -10, "the runtime has not been started")                    \
    X(ETIMEDOUT, -11, "timed out")                                             \
    X(ECANCELED, -12, "canceled")                                              \
    X(ELIMIT, -13, "a configured limit was reached")                           \
    X(ESYSTEM, -14, "the operating system or libuv refused a request")         \
    X(EFAILED, -15, "the actor failed")                                        \
    X(ENOTFOUND, -16, "not found: no such timer, call or name (or it has ended)") \
    X(EEXIST, -17, "the name is registered already")                         \
    X(ECLOSED, -18, "closed: the channel (drained, for receives) or the socket's writing half")   \
    X(EEXITED, -19, "the actor ended before it answered")                    \
    X(EPERMANENT, -20, "a permanent top-level actor failed: the runtime stopped") \
    X(ECONNREFUSED, -21, "connection refused by the peer")                  \
    X(ECONNRESET, -22, "connection reset by the peer")                       \
    X(EADDRINUSE, -23, "address already in use")                             \
    X(ENOHOST, -24, "host name not found")                                   \
    X(EBUSY, -25, "busy: the socket has writes pending")                     \
    X(ENOTSOCK, -26, "no such socket: unknown, closed, or not the caller's") \
    X(EUNEXPECTED, -27, "a test expectation failed: another message came, or none")

typedef enum tr_error {
    TR_OK = 0,
#define TR__ERR_ENUM(name, value, text) TR_##name = (value),
    TR_ERRNO_MAP(TR__ERR_ENUM)
#undef TR__ERR_ENUM
} tr_error;

/*
 * Application errors. troupe's codes own -1 .. -65535 (TR_ERR_TROUPE_MIN ..
 * -1); the application's negative codes start below: TR_EUSER(n) is the
 * application's error number n, for 0 <= n < 2^30, and TR_EUSER_NUM(code)
 * gives n back. Any positive code is also the application's. Return these
 * from handlers, init callbacks and jobs for the application's own
 * failures, so that logs and exit reasons never read them as troupe's:
 *
 *     enum { BAD_ORDER = 3 };
 *     if (!valid(order))
 *         return TR_EUSER(BAD_ORDER);   (logged "application error 3
 *                                        (TR_EUSER(3))"; the DOWN's code
 *                                        is TR_EUSER(3))
 */
#define TR_ERR_TROUPE_MIN (-65535)
#define TR_EUSER(n) (-65536 - (int)(n))
#define TR_EUSER_NUM(code) (-65536 - (int)(code))
#define TR_EUSER_MAX ((1 << 30) - 1) /* the largest n of TR_EUSER(n) */

/* Non-zero if `code` is the application's: positive, or below troupe's
 * range (TR_EUSER(n)). 0 for 0 and for every code in -1 .. -65535, listed
 * in the table or not. Any thread. */
TR_API int tr_err_is_user(int code);

/* A constant, human-readable text for `code`: "success" for 0, the table's
 * text for troupe's codes, "unknown troupe error" for an unlisted code in
 * troupe's range, and "application error" for the application's codes
 * (tr_err_is_user): never a troupe error's text. Any thread. Never NULL. */
TR_API const char *tr_strerror(int code);

/* The constant name of `code`, e.g. "TR_ENOACTOR"; "TR_OK" for 0, "TR_E?"
 * for an unlisted code in troupe's range, "TR_EUSER" for TR_EUSER(n) (any
 * code below troupe's range) and "user" for a positive code. Any thread.
 * Never NULL. */
TR_API const char *tr_err_name(int code);

/* ------------------------------------------------------------------------ */
/* Durations                                                                */
/* ------------------------------------------------------------------------ */

/*
 * A duration in milliseconds (see the conventions above): 0 is zero,
 * positive values are milliseconds, TR_INFINITE is no limit, TR_DEFAULT
 * the documented default; any other negative value is TR_EINVAL. The
 * model is nng's nng_duration.
 */
typedef int64_t tr_duration;
#define TR_INFINITE ((tr_duration)-1) /* no limit */
#define TR_DEFAULT ((tr_duration)-2)  /* the default of that argument or field */

/* ------------------------------------------------------------------------ */
/* Handles                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * An actor's id, 64 bits. The layout is stable from 0.2 on:
 *
 *   bits 63..52  node        which runtime made the pid (1..4095; in a
 *                            cluster, later, which node)
 *   bits 51..26  generation  the slot's incarnation, odd while it lives
 *   bits 25..0   index       the actor's slot (1 .. 2^26 - 1)
 *
 * A pid is a handle, never a pointer: a stale pid (its actor exited, or it
 * names another runtime) is TR_ENOACTOR, never another actor. A slot whose
 * generation would wrap is retired (never reused), so an old pid can never
 * come back to name a new actor. Every runtime alive in a process has its
 * own node number. 0 (TR_PID_NONE) is never an actor.
 */
typedef uint64_t tr_pid;
#define TR_PID_NONE ((tr_pid)0)
#define TR_PID_NODE_BITS 12
#define TR_PID_GEN_BITS 26
#define TR_PID_INDEX_BITS 26
#define TR_PID_NODE(pid) ((uint32_t)((pid) >> 52))
#define TR_PID_GEN(pid) ((uint32_t)(((pid) >> 26) & 0x3ffffffu))
#define TR_PID_INDEX(pid) ((uint32_t)((pid) & 0x3ffffffu))
/* printf("actor " TR_PID_FMT "\n", TR_PID_ARGS(pid)) prints "actor <1.12.3>"
 * (node.index.generation). */
#define TR_PID_FMT "<%u.%u.%u>"
#define TR_PID_ARGS(pid)                                                       \
    (unsigned)TR_PID_NODE(pid), (unsigned)TR_PID_INDEX(pid), (unsigned)TR_PID_GEN(pid)

/* The runtime: loops, actors, pools. Opaque. */
typedef struct tr_runtime tr_runtime;

/* An actor as seen from inside its own callbacks ("self"). Opaque; valid only
 * for the duration of the callback it was passed to. */
typedef struct tr_actor tr_actor;

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */
/* ------------------------------------------------------------------------ */

/* A call's reference: matches a reply (or its timeout) to the call. */
typedef uint64_t tr_ref;

/*
 * A message as a handler sees it. `data` points to `len` bytes owned by the
 * runtime and valid until the handler returns (copy what you keep, or keep
 * a zero-copy buffer with tr_msg_keep). `from` is the sending actor, or
 * TR_PID_NONE for a send from a plain thread.
 *
 * Requests (tr_call, tr_rt_call) carry TR_MSG_REQUEST in `flags`, the call's
 * `ref` and the caller's `deadline` (absolute, runtime clock, ns; UINT64_MAX
 * for none): a callee can skip work whose caller has given up
 * (tr_now(rt) >= deadline), and pass the rest of it on to the calls it
 * makes with tr_msg_remaining. Every call ends with exactly one message to
 * its caller, with TR_MSG_REPLY in `flags`, the call's `ref` and the `tag`
 * the caller set with tr_call_tag (0 if none): the reply (the type the
 * callee chose), or TR_MSG_CALL_TIMEOUT (from the callee, no data), or
 * TR_MSG_CALL_FAILED (from the callee, data a tr_call_failed). For other
 * messages ref, deadline, tag and flags are 0.
 */
typedef struct tr_msg {
    tr_pid from;
    uint32_t type;
    uint32_t len;
    const void *data;
    tr_ref ref;
    uint64_t deadline;
    uint64_t tag;
    uint32_t flags;
} tr_msg;

#define TR_MSG_REQUEST 0x1u /* tr_msg.flags: a call; answer with tr_reply */
#define TR_MSG_REPLY 0x2u   /* tr_msg.flags: the answer to (or timeout of) a call */
#define TR_MSG_OWNED 0x4u   /* tr_msg.flags: a zero-copy buffer (tr_msg_keep) */

/* User message types are 0 .. TR_MSG_USER_MAX; the range above is reserved
 * for the runtime: its notices (below), the supervisor requests
 * (TR_MSG_SUP_*) and types it uses internally. A user send of a type above
 * TR_MSG_USER_MAX is TR_EINVAL on every public send path (tr_send,
 * tr_rt_send, the _owned forms, tr_send_after, tr_send_interval, tr_call,
 * tr_rt_call, tr_reply, channel subscription and room types), except that
 * the supervisor requests users may call (TR_MSG_SUP_WHICH, START, STOP,
 * RESTART, DELETE) may be called, and a request of such a type may be
 * answered with that type. So a notice an actor receives comes from the
 * runtime, never from a sender that forged it. */
#define TR_MSG_USER_MAX 0xfffeffffu
/* The type of the message a call receives when its timeout expires. */
#define TR_MSG_CALL_TIMEOUT 0xffff0001u
/* A call whose callee ended (or never existed) without answering: data is
 * a tr_call_failed, from the callee. See tr_call. */
#define TR_MSG_CALL_FAILED 0xffff0009u
/* A child spawned with notify_started has finished its init (from: it). */
#define TR_MSG_STARTED 0xffff0006u
/* 0xffff0007: TR_MSG_GROUP_DONE, see Task groups. */
/* 0xffff0008: TR_MSG_CHAN_END, see Channels. */
/* A monitored actor ended: data is a tr_down, ref the monitor's ref. */
#define TR_MSG_DOWN 0xffff0004u
/* A trapped exit signal (tr_trap_exits): data is a tr_down, from the sender. */
#define TR_MSG_EXIT 0xffff0005u
/* A job's result (tr_offload): ref is the job id, data/len the result. */
#define TR_MSG_JOB_DONE 0xffff0002u
/* A job that failed: ref is the job id, data an int32_t error code. */
#define TR_MSG_JOB_FAILED 0xffff0003u

/* ------------------------------------------------------------------------ */
/* Exit reasons                                                             */
/* ------------------------------------------------------------------------ */

/*
 * How an actor ended. Normal and shutdown are normal ends; the others are
 * abnormal: they are logged, links propagate them (a linked actor that does
 * not trap exits ends with the same reason), and a supervisor restarts
 * transient children after them.
 */
typedef enum tr_exit_kind {
    TR_EXIT_NORMAL = 0, /* finished its work */
    TR_EXIT_SHUTDOWN,   /* asked to stop (parent exit, runtime stop) */
    TR_EXIT_KILLED,     /* killed: stopped without being asked */
    TR_EXIT_ERROR,      /* failed: a handler returned an error, or tr_exit_error */
    /* The connection to the actor's node was lost (Erlang's noconnection):
     * what a monitor's DOWN or a link's signal will say about an actor of a
     * node that went away, once troupe runs on several nodes. Nothing in
     * one process produces it today except tr_signal_exit(..., this kind),
     * which delivers it as a link would (trappable, abnormal), so that
     * monitors, links and supervisors can be written and tested for it now.
     * Its code is 0 and its text "noconnection". */
    TR_EXIT_NOCONNECTION
} tr_exit_kind;

/*
 * Why an actor ended. For TR_EXIT_ERROR, `code` is the error — a TR_E*
 * code the actor propagated or the runtime chose (TR_ENOMEM, ...), or the
 * application's own (TR_EUSER(n) or a positive code: tr_err_is_user) — and
 * `text` a description: the text given to tr_exit_error, or else
 * tr_strerror(code) ("application error" for the application's codes).
 * Never NULL; owned by the runtime, valid during the callback that sees
 * it. For the other kinds, code is 0 and text is the kind's constant name.
 */
typedef struct tr_exit_reason {
    tr_exit_kind kind;
    int code;
    const char *text;
} tr_exit_reason;

/* "normal", "shutdown", "killed", "error", "noconnection"; "?" otherwise.
 * Any thread. */
TR_API const char *tr_exit_kind_name(tr_exit_kind kind);

/* ------------------------------------------------------------------------ */
/* Behaviours                                                               */
/* ------------------------------------------------------------------------ */

/*
 * Handle one message. Runs on the actor's home loop, one message at a time:
 * `state` needs no locks. Return 0 to keep running; any other value —
 * negative or positive — ends the actor with TR_EXIT_ERROR and that value
 * as its code. Return TR_EUSER(n) (or a positive code) for the
 * application's own failures; a troupe code you got from a call (say the
 * TR_ENOACTOR of a tr_send) may be returned as it is, and is then reported
 * as troupe's. A bare -7 is TR_EWRONGTHREAD, not "your error 7".
 */
typedef int (*tr_receive_fn)(tr_actor *self, void *state, const tr_msg *msg);

/*
 * What an actor does. The behaviour must outlive every actor spawned with it
 * (a `static const` is the usual choice).
 *
 *  - name: a label for crash reports and introspection (may be NULL).
 *  - state_size: bytes of per-actor state the runtime allocates, zeroed,
 *    before init and frees after terminate. 0: no state (state is NULL).
 *    At most TR_STATE_SIZE_MAX: a larger one is TR_EINVAL from the spawn
 *    (and from the spec checks of supervisors), never an allocation. A
 *    state the system cannot allocate ends the actor in its init, with
 *    TR_ENOMEM. Allocate anything bigger in init.
 *  - init (optional): runs first, on the home loop, with a copy of the spawn
 *    argument that is valid during the call. A non-zero return (codes as
 *    for receive: TR_EUSER(n) for the application's) ends the actor with
 *    TR_EXIT_ERROR and text "init failed"; terminate is then not called.
 *  - receive (required): handles each message.
 *  - terminate (optional): runs once when the actor ends after a successful
 *    init, after its children have ended; sends are still allowed.
 *  - describe (optional): writes one line about the actor's state (at most
 *    `len` bytes with the NUL) for the printed tree (tr_runtime_tree), like
 *    OTP's format_status. Runs on the home loop between messages; must not
 *    send or block.
 */
#define TR_STATE_SIZE_MAX ((size_t)1 << 30) /* 1 GiB: the most state_size may ask */

typedef struct tr_behavior {
    const char *name;
    size_t state_size;
    int (*init)(tr_actor *self, void *state, const void *arg, size_t arg_len);
    tr_receive_fn receive;
    void (*terminate)(tr_actor *self, void *state, const tr_exit_reason *reason);
    void (*describe)(tr_actor *self, void *state, char *buf, size_t len);
} tr_behavior;

/* ------------------------------------------------------------------------ */
/* Logging                                                                  */
/* ------------------------------------------------------------------------ */

typedef enum tr_log_level {
    TR_LOG_DEBUG = 0,
    TR_LOG_INFO,
    TR_LOG_WARN,
    TR_LOG_ERROR
} tr_log_level;

/*
 * Receives one formatted line (no trailing newline), e.g. a crash report:
 *   "actor <5.1> (worker) exited abnormally: error -15 (TR_EFAILED): ..."
 *   "actor <6.1> (worker) exited abnormally: application error 7 (TR_EUSER(7)): ..."
 * Called on whichever loop thread produced the line, or on the watchdog's
 * thread (blocked-loop reports), possibly several at once: it must be
 * thread-safe, and must not block or free the runtime (tr_runtime_free is
 * TR_EWRONGTHREAD there). `line` is valid during the call only.
 */
typedef void (*tr_log_fn)(void *userdata, tr_log_level level, const char *line);

/* ------------------------------------------------------------------------ */
/* Runtime                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct tr_runtime_options {
    /* Number of event loops (threads). 0: the number of CPUs. */
    unsigned loops;
    /* Messages an actor handles per turn before the loop moves on, so one
     * busy actor cannot starve the others. 0: 64. */
    unsigned batch;
    /* Actor turns a loop runs before it polls libuv for I/O. 0: 256. */
    unsigned turn_budget;
    /* Largest payload a send accepts, in bytes. 0: 1 MiB. */
    size_t max_payload;
    /* Most actors alive at once, runtime-wide, whatever loops they live
     * on (the runtime's internal root is not counted); an actor's place is
     * free again as soon as its end can be seen (its DOWN, the end of a
     * tr_rt_wait_exit). A spawn over it is TR_ELIMIT. At most 2^26 - 1,
     * the slots a pid can name. 0: 2^26 - 1 — then the pid space is the
     * limit, and spawning counts nothing; a limit below it costs a spawn
     * and an exit one atomic add each on a shared counter. (With the
     * default the limit is the pid space: 2^26 - 1 slots, each bound to
     * the loop it first served — the sum of each loop's peak.) */
    uint32_t max_actors;
    /* How long an idle loop keeps looking for mail before it parks in the
     * kernel, in microseconds. Waking a parked loop costs tens of
     * microseconds; spinning costs CPU. 0: 50. */
    unsigned spin_us;
    /* Where crash reports and other log lines go. NULL: one line to stderr. */
    tr_log_fn log;
    void *log_userdata;
    /* The runtime clock (monotonic, nanoseconds). NULL: the system's
     * monotonic clock. Tests install a virtual clock here and call
     * tr_runtime_clock_advanced after moving it (or use the test kit,
     * troupe_test.h, which does both); with a custom clock the loops do
     * not arm real-time wake-ups for timers, and the timeouts of plain
     * threads' waits (tr_rt_call, tr_rt_wait_exit, the tr_rt_sup_*
     * helpers) are on it too: they end when the clock passes them, not
     * when real time does. Must be thread-safe. */
    uint64_t (*clock)(void *userdata);
    void *clock_userdata;
    /* Worker threads for tr_offload. 0: the number of CPUs. */
    unsigned workers;
    /* Jobs the worker pool queues before tr_offload says TR_EFULL. 0: 4096. */
    unsigned job_queue;
    /* Niceness of the worker threads (0..19), so loops stay responsive when
     * CPU work saturates the machine; TR_WORKER_IDLE: Linux SCHED_IDLE, the
     * workers run only on cores nothing else wants. 0: same as the loops. */
    int worker_nice;
    /* Blocked-loop detection: a callback that runs longer than this is
     * reported while it runs (real time). 0 or TR_DEFAULT: 100 ms
     * (asyncio's debug default). TR_INFINITE: no watchdog thread. */
    tr_duration block_budget_ms;
    /* Non-zero: SIGINT and SIGTERM stop the runtime (the whole tree, in
     * order) instead of killing the process; tr_runtime_wait then returns.
     * Handled on loop 0 through libuv. */
    int stop_on_signals;
    /* Metrics (tr_metrics_collect): the runtime's counters are always
     * kept; TR_METRICS_OFF turns off what the metrics add to a loop's
     * turn (the per-behaviour table, the sampled handler time and mailbox
     * depth). 0: on. */
    int metrics;
    /* Behaviour names a loop keeps series for (behaviours are static in
     * code, so names are bounded); actors of a behaviour past the cap are
     * counted under behavior="other" and in
     * troupe_metrics_behaviors_overflow_total. 0: 128. */
    unsigned metric_behaviors;
    /* Series the metrics registry holds (tr_metric_register: the
     * application's, the supervisors' restarts, the sockets'); a
     * registration past the cap is TR_ELIMIT and counted in
     * troupe_metrics_series_overflow_total. 0: 1024. */
    unsigned metric_series;
    /* Stuck calls: a call pending longer than this (runtime clock) is
     * reported — once, with the chain it is part of (A waits on B, which
     * waits on C) and whether that chain closes into a cycle — in the log,
     * as troupe_calls_stuck and in tr_runtime_report. Each loop looks at
     * its own pending calls every stuck_call_ms / 2 (at least every 10
     * ms), off the message path. Nothing fails because of it. 0 or
     * TR_DEFAULT: 5000 ms; TR_INFINITE: no check. */
    tr_duration stuck_call_ms;
    /* When a stop hangs: an actor whose shutdown timeout is infinite (a
     * supervisor's default) and that has not ended this long after it was
     * asked to stop makes the runtime log tr_runtime_report (once per
     * stop); an actor with a finite timeout that passes it logs it before
     * it is killed. 0 or TR_DEFAULT: 10000 ms; TR_INFINITE: never. */
    tr_duration hang_report_ms;
    /* Non-zero: SIGQUIT (Ctrl-backslash) logs tr_runtime_report instead of
     * ending the process (as the JVM's thread dump). Handled on loop 0. */
    int report_on_sigquit;
} tr_runtime_options;

#define TR_METRICS_OFF 1

#define TR_WORKER_IDLE 20

/* Fills `opts` with the defaults: all zero, as every field's default is
 * zero. Any thread. */
TR_API void tr_runtime_options_init(tr_runtime_options *opts);

/*
 * Creates a runtime (loops are not running yet). `opts` may be NULL for the
 * defaults. On success *out owns the runtime until tr_runtime_free. It
 * also makes the memory of the stop's signal, so that tr_runtime_stop
 * needs none.
 * Errors: TR_EINVAL (out NULL or an option out of range), TR_ENOMEM,
 * TR_ESYSTEM (libuv could not create a loop), TR_ELIMIT (4095 runtimes
 * are alive in the process: each has its own node number in its pids).
 * Thread: any plain thread; that thread may then spawn, send, stop and wait.
 */
TR_API int tr_runtime_create(tr_runtime **out, const tr_runtime_options *opts);

/*
 * Starts one thread per loop (and the worker threads and the watchdog).
 * Actors spawned before start run from now on. All or nothing: a start
 * that fails has undone everything it did — every thread it made is
 * joined, no actor has run, the signals are not watched — and the
 * runtime is as created: start it again, or free it.
 * Errors: TR_EINVAL (NULL), TR_EALREADY (started before), TR_ESYSTEM (a
 * thread or a signal watch could not be made), TR_ENOMEM.
 * Thread: any plain thread (not a loop thread of this runtime).
 */
TR_API int tr_runtime_start(tr_runtime *rt);

/*
 * Asks the runtime to stop: the root stops its children newest first, each
 * stops its own subtree first, and the loops end when the tree is gone.
 * Returns at once; tr_runtime_wait blocks until the stop is complete.
 * It needs no memory: the stop's signal is made by tr_runtime_create, so
 * a stop is never lost to an allocation failure (and never TR_ENOMEM).
 * Errors: TR_EINVAL (NULL), TR_ENOTSTARTED, TR_EALREADY (stop was already
 * requested). Thread: any, including actor handlers.
 */
TR_API int tr_runtime_stop(tr_runtime *rt);

/*
 * Blocks until the runtime has stopped: after tr_runtime_stop (from any
 * thread or actor), a signal with stop_on_signals, or the end of a
 * permanent top-level actor (see tr_spawn_opts.top). Returns at once if it
 * has stopped already. What ends the wait: the end of the whole tree, which
 * every stop reaches — each actor is stopped within its shutdown timeout
 * or killed (an actor with an infinite shutdown timeout that never ends
 * holds it, by the user's choice). Returns 0, or TR_EPERMANENT when the
 * runtime stopped because a permanent top-level actor failed (see
 * tr_runtime_exit_reason). Errors: TR_EINVAL, TR_ENOTSTARTED,
 * TR_EWRONGTHREAD (called on a loop thread of any runtime, where it could
 * deadlock). Thread: any plain thread, a worker job included (the stop
 * never waits for jobs, so the wait ends; the job then returns and
 * tr_runtime_free joins its worker).
 */
TR_API int tr_runtime_wait(tr_runtime *rt);

/*
 * Non-zero once a stop has been requested (or completed): a service can
 * check it before starting new work. 0 while it runs or before it starts,
 * and for NULL. Any thread.
 */
TR_API int tr_runtime_stopping(const tr_runtime *rt);

struct tr_down; /* see Links, monitors */

/*
 * How the permanent top-level actor whose end stopped the runtime ended
 * (its pid, kind, code and text; result_len is 0). Errors: TR_EINVAL,
 * TR_ENOTFOUND (no permanent actor has ended: the runtime was stopped
 * otherwise, or runs). Any thread.
 */
TR_API int tr_runtime_exit_reason(tr_runtime *rt, struct tr_down *out);

/*
 * Blocks the calling plain thread until the actor `pid` ends, for at most
 * `timeout_ms` (TR_INFINITE: no limit), and fills *out with how it ended
 * (as a DOWN would; result_len 0). A pid that has already ended, or was
 * never an actor of this runtime, answers at once with kind TR_EXIT_ERROR,
 * code TR_ENOACTOR. What ends the wait: the actor's end (every actor ends
 * by the runtime's stop at the latest), the timeout (TR_ETIMEDOUT; the
 * watch is removed), or the runtime having stopped (TR_ESTOPPED).
 * Errors: TR_EINVAL (NULL, TR_PID_NONE, the root, a negative timeout other
 * than TR_INFINITE), TR_EWRONGTHREAD (a loop thread: it would block the
 * loop), TR_ENOMEM, and those above. Thread: any plain thread.
 */
TR_API int tr_rt_wait_exit(tr_runtime *rt, tr_pid pid, tr_duration timeout_ms,
                           struct tr_down *out);

/*
 * Stops the runtime if it is running, waits for it, joins its threads and
 * frees every byte it allocated, including messages still queued. `rt` is
 * invalid afterwards. NULL is a no-op returning 0. It waits for running
 * worker jobs to return (a job that never returns holds it: check
 * tr_job_cancelled).
 * Errors: TR_EWRONGTHREAD (called on a loop thread of any runtime, or on
 * one of this runtime's own threads — a worker (jobs), the watchdog (the
 * log callback) — which it would join and then return into freed memory;
 * nothing is freed). Thread: plain threads that are not this runtime's own.
 */
TR_API int tr_runtime_free(tr_runtime *rt);

/* Number of loops of `rt` (0 for NULL). Any thread. */
TR_API unsigned tr_runtime_loops(const tr_runtime *rt);

/* ------------------------------------------------------------------------ */
/* Spawning                                                                 */
/* ------------------------------------------------------------------------ */

/*
 * Placement, for tr_spawn_opts.loop and tr_child_spec.loop. Zero is the
 * default, so a struct that leaves .loop out gets the default placement;
 * a fixed loop is named with TR_LOOP(n), never with a bare index.
 */
#define TR_LOOP_DEFAULT 0        /* actor spawner: its own loop; thread: round-robin */
#define TR_LOOP_ROUND_ROBIN (-1) /* the next loop in turn */
#define TR_LOOP(n) ((int)(n) + 1) /* loop n, 0 <= n < tr_runtime_loops() */

typedef struct tr_spawn_opts {
    /* TR_LOOP_DEFAULT (0), TR_LOOP_ROUND_ROBIN or TR_LOOP(n) for loop n
     * (0 <= n < loops); anything else is TR_EINVAL from the spawn.
     * Actors never migrate. */
    int loop;
    /* Start argument: copied, handed to init. May be NULL with length 0. */
    const void *arg;
    size_t arg_len;
    /* When the parent stops this child: how long the child may take to
     * end after its shutdown signal before it is killed. 0 or TR_DEFAULT:
     * 5000 ms (a supervisor's: TR_INFINITE). TR_INFINITE: never killed. */
    tr_duration shutdown_ms;
    /* Non-zero: when the child's init has succeeded, the spawner receives a
     * TR_MSG_STARTED message from it (OTP's start acknowledgement). If init
     * fails, no STARTED comes; monitor the child to learn why. */
    int notify_started;
    /* A bounded mailbox: at most this many sends (tr_send, tr_call, timers'
     * messages and their tr_rt_ forms) wait in it; 0: unbounded. Runtime
     * notices — replies, call timeouts, job outcomes, DOWN, EXIT, group and
     * channel notices — and system messages are never refused or dropped.
     * The check is one atomic add on the send path; no lock. */
    uint32_t mailbox_capacity;
    /* What a send to a full mailbox does: TR_OVERFLOW_REFUSE (the default):
     * it fails with TR_EFULL and the sender decides; TR_OVERFLOW_DROP: it
     * succeeds, the message is dropped and counted (tr_actor_stats.dropped);
     * a request is refused with TR_EFULL instead, since a call must end.
     * (Dropping the oldest instead would need the senders to take from a
     * queue only its one reader may take from: not offered.) */
    int overflow;
    /* Top-level actors only (tr_rt_spawn, tr_rt_sup_spawn; anything but
     * TR_TOP_DEFAULT is TR_EINVAL for a spawn by an actor). TR_TOP_DEFAULT
     * (0): a supervisor started with tr_rt_sup_spawn is permanent, any other
     * actor independent. TR_TOP_PERMANENT: the runtime lives as long as the
     * actor — when it ends (other than by the runtime's own stop), the
     * runtime stops, in order, and tr_runtime_wait returns 0 if it ended
     * normally or was shut down, TR_EPERMANENT if it failed (a supervisor
     * that gave up, a crash, a kill); tr_runtime_exit_reason says how.
     * OTP's permanent application; asyncio.run(main()). TR_TOP_INDEPENDENT:
     * its end concerns no one but its monitors. */
    int top;
} tr_spawn_opts;

#define TR_TOP_DEFAULT 0
#define TR_TOP_PERMANENT 1
#define TR_TOP_INDEPENDENT 2

#define TR_OVERFLOW_REFUSE 0
#define TR_OVERFLOW_DROP 1

/* The defaults (all zero): TR_LOOP_DEFAULT placement, no argument, a
 * 5000 ms shutdown timeout, an unbounded mailbox. Any thread. */
TR_API void tr_spawn_opts_init(tr_spawn_opts *opts);

/*
 * Spawns a child of `self`. The child's init runs later, on its own loop;
 * the pid is usable at once (messages sent to it queue behind its init).
 * `opts` may be NULL. The child is stopped before `self` ends.
 * Errors: TR_EINVAL (NULL self/behaviour/out, no receive callback, a loop
 * that is not TR_LOOP_DEFAULT, TR_LOOP_ROUND_ROBIN or TR_LOOP(n) of an
 * existing loop, a negative shutdown_ms other than TR_INFINITE and
 * TR_DEFAULT, arg NULL with arg_len > 0), TR_EMSGSIZE (arg_len over
 * max_payload), TR_EWRONGTHREAD, TR_ESTOPPED (`self` is exiting, or the
 * runtime is stopping: a stop cannot be outrun by spawning), TR_ELIMIT
 * (max_actors alive), TR_ENOMEM.
 * Thread: `self`'s callbacks.
 */
TR_API int tr_spawn(tr_actor *self, const tr_behavior *behavior,
                    const tr_spawn_opts *opts, tr_pid *out);

/*
 * As tr_spawn, and self monitors the child from its birth (Erlang's
 * spawn_monitor): the TR_MSG_DOWN (msg->ref == *ref_out) always carries the
 * child's real end and result — even if it ends in its init, before a
 * separate tr_monitor could reach it (that one would see TR_ENOACTOR).
 * Errors: as tr_spawn (TR_EINVAL for a NULL ref_out).
 * Thread: `self`'s callbacks.
 */
TR_API int tr_spawn_monitor(tr_actor *self, const tr_behavior *behavior,
                            const tr_spawn_opts *opts, tr_pid *out, tr_ref *ref_out);

/*
 * Spawns a top-level actor (a child of the runtime's root) from a plain
 * thread; TR_LOOP_DEFAULT (a zero .loop) means round-robin. Allowed before
 * tr_runtime_start (it runs once started). Errors: as tr_spawn, and
 * TR_ESTOPPED once a stop was requested. Thread: any.
 */
TR_API int tr_rt_spawn(tr_runtime *rt, const tr_behavior *behavior,
                       const tr_spawn_opts *opts, tr_pid *out);

/* ------------------------------------------------------------------------ */
/* Sending                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * Sends a copy of `len` bytes of `data` as a message of `type` to `to`, from
 * `self`. Messages from one sender to one receiver arrive in send order.
 * A send to an actor that exits before it reads the message succeeds and the
 * message is dropped and counted.
 * Errors: TR_EINVAL (NULL self; data NULL with len > 0; type above
 * TR_MSG_USER_MAX), TR_ENOACTOR (to is unknown or has exited), TR_EMSGSIZE,
 * TR_EFULL (`to` has a bounded mailbox that is full and refuses: see
 * tr_spawn_opts.mailbox_capacity), TR_EWRONGTHREAD, TR_ESTOPPED (the
 * runtime has stopped), TR_ENOMEM.
 * Thread: `self`'s callbacks. Cost: no lock, no syscall; same-loop sends
 * touch no atomic but the mailbox enqueue.
 */
TR_API int tr_send(tr_actor *self, tr_pid to, uint32_t type, const void *data,
                   size_t len);

/*
 * As tr_send, from a plain thread (main, a worker, a foreign thread); the
 * receiver sees from == TR_PID_NONE. Allowed before tr_runtime_start.
 * Messages one thread sends one receiver arrive in send order.
 * Errors: as tr_send (TR_EINVAL for a NULL runtime). Thread: any.
 */
TR_API int tr_rt_send(tr_runtime *rt, tr_pid to, uint32_t type,
                      const void *data, size_t len);

/* ------------------------------------------------------------------------ */
/* Self                                                                     */
/* ------------------------------------------------------------------------ */

/* The actor's own pid; TR_PID_NONE if `self` is NULL or not the running
 * actor of this thread. Thread: `self`'s callbacks. */
TR_API tr_pid tr_self(const tr_actor *self);

/* The parent's pid (the runtime's root for top-level actors); TR_PID_NONE
 * on bad input. Thread: `self`'s callbacks. */
TR_API tr_pid tr_parent(const tr_actor *self);

/* The runtime `self` runs in; NULL on bad input. Thread: `self`'s callbacks. */
TR_API tr_runtime *tr_runtime_of(const tr_actor *self);

/* The index of the loop `self` lives on; -1 on bad input. Thread: `self`'s
 * callbacks. */
TR_API int tr_loop_index(const tr_actor *self);

/*
 * Replaces the receive callback for the following messages (the behaviour's
 * other callbacks are kept). Errors: TR_EINVAL (NULL), TR_EWRONGTHREAD.
 * Thread: `self`'s callbacks.
 */
TR_API int tr_become(tr_actor *self, tr_receive_fn receive);

/* ------------------------------------------------------------------------ */
/* Exits                                                                    */
/* ------------------------------------------------------------------------ */

/*
 * Ends `self` with `kind` (NORMAL, SHUTDOWN or KILLED) once the current
 * callback returns: its children are stopped, terminate runs, the parent is
 * told, queued mail is dropped. Errors: TR_EINVAL (NULL, or TR_EXIT_ERROR:
 * use tr_exit_error), TR_EWRONGTHREAD. Thread: `self`'s callbacks.
 */
TR_API int tr_exit(tr_actor *self, tr_exit_kind kind);

/*
 * Ends `self` with TR_EXIT_ERROR, `code` (non-zero) and `text` (copied; may
 * be NULL for tr_strerror(code)), once the current callback returns. The
 * exit is reported through the log callback. Use TR_EUSER(n) (or a
 * positive code) for the application's own failures; a troupe code passed
 * here is reported as troupe's.
 * Errors: TR_EINVAL (NULL self, code 0), TR_EWRONGTHREAD.
 * Thread: `self`'s callbacks.
 */
TR_API int tr_exit_error(tr_actor *self, int code, const char *text);

/*
 * Sends an exit signal to `pid`: TR_EXIT_SHUTDOWN, TR_EXIT_KILLED or
 * TR_EXIT_NOCONNECTION. The signal takes effect at the target's next
 * message boundary (C cannot pre-empt a running handler), ahead of mail
 * already queued, which is then dropped. A stronger signal overrides a
 * weaker one not yet acted on: KILLED, then NOCONNECTION (as strong as an
 * error), then SHUTDOWN. KILLED cannot be trapped; NOCONNECTION can, and
 * stands in for the signal a link to an actor of a lost node will bring
 * (tests, and the cluster layer to come).
 * Errors: TR_EINVAL (NULL runtime, other kinds, the root's pid: use
 * tr_runtime_stop), TR_ENOACTOR, TR_ESTOPPED, TR_ENOMEM. Thread: any.
 */
TR_API int tr_signal_exit(tr_runtime *rt, tr_pid pid, tr_exit_kind kind);

/* ------------------------------------------------------------------------ */
/* Links, monitors, trapping exits, results                                 */
/* ------------------------------------------------------------------------ */

/*
 * What a DOWN or trapped EXIT message carries (msg->data). `text` is a
 * NUL-terminated, possibly truncated copy of the reason text. For a DOWN of
 * an actor that ended with tr_exit_result, `result_len` bytes of its result
 * follow the struct (tr_down_result); they belong to the message.
 */
typedef struct tr_down {
    tr_pid pid;        /* the actor that ended (or sent the signal) */
    int32_t kind;      /* tr_exit_kind; switch on every kind, including
                          TR_EXIT_NOCONNECTION (its node was lost) */
    int32_t code;      /* for TR_EXIT_ERROR: as tr_exit_reason.code (the
                          application's codes are tr_err_is_user, and text is
                          then the actor's own or "application error");
                          TR_ENOACTOR with text "noproc": it did not exist */
    uint32_t result_len;
    uint32_t reserved;
    char text[80];
} tr_down;

static inline const void *tr_down_result(const tr_down *d)
{
    return d + 1;
}

/*
 * Monitors `pid`: when it ends, self gets one TR_MSG_DOWN message with
 * msg->ref == *ref_out and a tr_down (reason, result). If pid has already
 * ended, the DOWN (kind TR_EXIT_ERROR, code TR_ENOACTOR) comes at once.
 * Monitors are one-way and any number may be set. A monitor that succeeds
 * gets exactly one DOWN, whatever memory is left when pid ends: the DOWN's
 * memory is set aside when the monitor is made (a few hundred bytes per
 * monitor, held by pid's side). If pid cannot record the monitor, the DOWN
 * comes at once with code TR_ENOMEM; if pid's result cannot be copied
 * into the DOWN, it comes without it (result_len 0). Errors: TR_EINVAL,
 * TR_EWRONGTHREAD, TR_ESTOPPED, TR_ENOMEM (also when pid has already ended
 * and the DOWN cannot be made: then no DOWN comes). Thread: `self`'s
 * callbacks.
 */
TR_API int tr_monitor(tr_actor *self, tr_pid pid, tr_ref *ref_out);

/* Removes a monitor: no DOWN for it arrives afterwards. Errors: TR_EINVAL,
 * TR_EWRONGTHREAD, TR_ENOTFOUND (unknown ref, or its DOWN was handled).
 * Thread: `self`'s callbacks. */
TR_API int tr_demonitor(tr_actor *self, tr_ref ref);

/*
 * Links self and `pid` both ways: when either ends with a reason other than
 * normal, the other receives an exit signal with that reason and ends with
 * it too — unless it traps exits, in which case the signal arrives as a
 * TR_MSG_EXIT message (a normal exit is only seen by trapping actors).
 * Linking to an actor that ends before the link is made delivers an exit
 * signal with code TR_ENOACTOR. Linking twice is a no-op. Both ends' exit
 * signals are made here, so none is lost for want of memory later; a
 * target that cannot record the link sends its signal back at once, with
 * code TR_ENOMEM ("no memory for a link"): the link is whole or not made.
 * Errors: TR_EINVAL (NULL, self), TR_ENOACTOR (known dead), TR_EWRONGTHREAD,
 * TR_ESTOPPED, TR_ENOMEM (the signals could not be made: nothing was done).
 * Thread: `self`'s callbacks.
 */
TR_API int tr_link(tr_actor *self, tr_pid pid);

/* Removes a link both ways (needs no memory: the other end always hears
 * of it). Errors: TR_EINVAL, TR_EWRONGTHREAD, TR_ENOTFOUND (not linked).
 * Thread: `self`'s callbacks. */
TR_API int tr_unlink(tr_actor *self, tr_pid pid);

/*
 * on != 0: exit signals that can be trapped (shutdown, and every signal from
 * a link) arrive as TR_MSG_EXIT messages instead of ending self; only a
 * direct tr_signal_exit(..., TR_EXIT_KILLED) cannot be trapped. An actor
 * that traps its parent's shutdown must still end within its shutdown_ms,
 * or it is killed. Errors: TR_EINVAL, TR_EWRONGTHREAD. Thread: `self`'s
 * callbacks.
 */
TR_API int tr_trap_exits(tr_actor *self, int on);

/*
 * Ends self normally with a result: a copy of `len` bytes that every DOWN
 * message about self carries (each DOWN owns its copy; a DOWN whose copy
 * cannot be allocated comes without it, result_len 0). Errors: TR_EINVAL,
 * TR_EMSGSIZE, TR_EWRONGTHREAD, TR_ENOMEM. Thread: `self`'s callbacks.
 */
TR_API int tr_exit_result(tr_actor *self, const void *data, size_t len);

/* ------------------------------------------------------------------------ */
/* Supervisors                                                              */
/* ------------------------------------------------------------------------ */

typedef enum tr_strategy {
    TR_ONE_FOR_ONE = 0, /* a child that ends is restarted alone */
    TR_ONE_FOR_ALL,     /* all children are stopped and restarted */
    TR_REST_FOR_ONE,    /* the child and those started after it restart */
    TR_SIMPLE_ONE_FOR_ONE /* dynamic: children of one spec, added at run time */
} tr_strategy;

typedef enum tr_restart {
    TR_PERMANENT = 0, /* always restarted */
    TR_TRANSIENT,     /* restarted only after an abnormal end (not normal/shutdown) */
    TR_TEMPORARY      /* never restarted */
} tr_restart;

#define TR_CHILD_ID_MAX 31

/* How to start (and restart) one child. Copied by the supervisor. Zeroed
 * (tr_child_spec_init, or fields left out of an initializer) every field
 * has its default; id and behavior (or supervisor) are to be set. */
typedef struct tr_child_spec {
    const char *id;              /* label in reports and listings (<= 31 bytes) */
    const tr_behavior *behavior; /* must outlive the supervisor */
    const void *arg;             /* copied once; every start gets a fresh copy */
    size_t arg_len;
    tr_restart restart;          /* 0: TR_PERMANENT */
    /* How long the child may take to stop before it is killed. 0 or
     * TR_DEFAULT: 5000 ms (a supervisor child: TR_INFINITE, so it always
     * gets to stop its subtree). TR_INFINITE: never killed. */
    tr_duration shutdown_ms;
    /* Placement: TR_LOOP_DEFAULT (0): the supervisor's loop;
     * TR_LOOP_ROUND_ROBIN; TR_LOOP(n): loop n. */
    int loop;
    /* Instead of behavior and arg: the child is a supervisor with this spec
     * (copied, nested specs too), which makes a tree of supervisors. When it
     * exceeds its restart intensity it ends, and this supervisor's strategy
     * decides: escalation. */
    const struct tr_sup_spec *supervisor;
} tr_child_spec;

/* A supervisor's spec. Zeroed (tr_sup_spec_init), it is a one_for_one
 * supervisor allowing 3 restarts in 5000 ms, without backoff and without
 * children. Copied (nested specs too) by the call that receives it. */
typedef struct tr_sup_spec {
    tr_strategy strategy;        /* 0: TR_ONE_FOR_ONE */
    /* Restart intensity: more than max_restarts restarts within period_ms
     * and the supervisor stops its children and ends with TR_ELIMIT — its
     * own supervisor decides what happens next. max_restarts 0: 3;
     * TR_RESTARTS_NEVER: no restart is allowed (OTP's intensity 0): the
     * first child exit that would need a restart makes it give up.
     * period_ms 0 or TR_DEFAULT: 5000 ms; TR_INFINITE: restarts are never
     * forgotten (at most max_restarts in the supervisor's life). */
    uint32_t max_restarts;
    tr_duration period_ms;
    /* Restart backoff: wait backoff_min_ms before a restart, doubling for
     * each consecutive one up to backoff_max_ms, with jitter (half to the
     * full delay); reset once a child stayed up backoff_reset_ms.
     * backoff_min_ms 0 or TR_DEFAULT: no backoff, restart at once
     * (TR_INFINITE is TR_EINVAL: a restart that never comes).
     * backoff_max_ms 0 or TR_DEFAULT: 30000 ms; TR_INFINITE: no cap.
     * backoff_reset_ms 0 or TR_DEFAULT: 10000 ms; TR_INFINITE: never
     * reset. */
    tr_duration backoff_min_ms;
    tr_duration backoff_max_ms;
    tr_duration backoff_reset_ms;
    /* Started in this order, stopped in reverse. For TR_SIMPLE_ONE_FOR_ONE
     * exactly one: the template of the children added later. */
    const tr_child_spec *children;
    size_t nchildren;
} tr_sup_spec;

/* tr_sup_spec.max_restarts: no restart at all (an intensity of zero). */
#define TR_RESTARTS_NEVER UINT32_MAX

/* The largest max_restarts other than TR_RESTARTS_NEVER (a supervisor
 * keeps the time of its last max_restarts + 1 restarts: 8 MB at most);
 * more is TR_EINVAL. */
#define TR_SUP_MAX_RESTARTS 1000000u

/* How deep supervisor specs may nest, counting the spec a call receives
 * (for the add-child calls, the supervisor the child is added to) as
 * level 1: a spec at this level may not have a supervisor child. A spec
 * nested deeper — or one that contains itself, directly or through
 * others, which is infinitely deep — is TR_EINVAL. (Trees built at run
 * time with the add-child calls may be deeper: the limit is on what one
 * call copies.) */
#define TR_SUP_DEPTH_MAX 32

/* Zero `spec` / `child`: every field its default (see the structs). Any
 * thread; NULL is ignored. */
TR_API void tr_sup_spec_init(tr_sup_spec *spec);
TR_API void tr_child_spec_init(tr_child_spec *child);

/*
 * Spawns a supervisor as a child of `self`. It starts its children in
 * order, each after the previous one's init succeeded; if one fails, it
 * stops those already started and ends with TR_EXIT_ERROR (monitor it to
 * see). `opts` places it (its shutdown_ms defaults to TR_INFINITE: a
 * supervisor always gets to stop its subtree); opts->arg must be NULL.
 * The spec and every child spec in it, nested supervisors' too, are
 * checked here. Errors: TR_EINVAL (bad spec: an unknown strategy or
 * restart, a child without behaviour, an id over TR_CHILD_ID_MAX, a .loop
 * that names no loop of this runtime, a negative duration other than
 * TR_INFINITE and TR_DEFAULT, backoff_min_ms TR_INFINITE, max_restarts
 * over TR_SUP_MAX_RESTARTS but not TR_RESTARTS_NEVER, specs nested deeper
 * than TR_SUP_DEPTH_MAX or containing themselves), TR_EMSGSIZE (the
 * spec's copy — every child spec, start argument and nested spec, a
 * nested spec once for every child that names it — is larger than
 * max_payload), as tr_spawn.
 * Thread: `self`'s callbacks.
 */
TR_API int tr_sup_spawn(tr_actor *self, const tr_sup_spec *spec,
                        const tr_spawn_opts *opts, tr_pid *out);

/*
 * As tr_sup_spawn, top-level, from a plain thread (the spec is checked
 * here, before anything starts); blocks, without a time limit, until the
 * supervisor has started all its children, or a start has failed and it
 * has ended (what ends the wait is its answer or its end). The supervisor
 * is permanent unless opts->top says TR_TOP_INDEPENDENT: when it gives up,
 * or fails to start, the runtime stops and tr_runtime_wait returns
 * TR_EPERMANENT (see tr_spawn_opts.top). Errors: as tr_rt_spawn and
 * tr_sup_spawn, TR_ENOTSTARTED (the runtime must run), TR_EWRONGTHREAD (a
 * loop thread, which must not block), TR_EFAILED (a child failed to start;
 * the supervisor has ended and *out is still set). On any other error
 * *out is untouched and no supervisor is left running: the wait is set up
 * before the supervisor is spawned.
 */
TR_API int tr_rt_sup_spawn(tr_runtime *rt, const tr_sup_spec *spec,
                           const tr_spawn_opts *opts, tr_pid *out);

/* A child as tr_sup_which_children lists it. */
typedef struct tr_sup_child {
    char id[TR_CHILD_ID_MAX + 1];
    tr_pid pid;        /* TR_PID_NONE while not running */
    uint32_t restarts;
} tr_sup_child;

/*
 * Requests to a supervisor, as calls (tr_call from actors, tr_rt_call from
 * threads); the reply has the same type. Requests that change children
 * wait while the supervisor is in the middle of starting or restarting
 * children and are handled, in order, when it is done; once it is ending
 * they are answered TR_ESTOPPED. Every payload's length is checked before
 * it is read: a request whose payload breaks its rule below is answered
 * TR_EINVAL (in its reply's form), never read past its end. A request of
 * any other type is answered with an int32_t TR_EINVAL of its type; a
 * message that is not a request is ignored. Sent to an actor that is not
 * a supervisor, a request is answered TR_EINVAL in its reply's form by the
 * runtime, unless that actor's handler answers it itself, with the
 * request's type, while it handles it: it cannot keep one to answer later,
 * so no caller waits on an actor that does not serve the protocol.
 *  - TR_MSG_SUP_WHICH: no payload; reply: an array of tr_sup_child, or an
 *    int32_t error code (4 bytes: TR_EINVAL, TR_ENOMEM).
 *  - TR_MSG_SUP_START: for TR_SIMPLE_ONE_FOR_ONE, the payload is the new
 *    child's start argument; reply: a tr_sup_started, sent once the child's
 *    init has run (rc TR_EFAILED if it failed; it is then forgotten).
 *  - TR_MSG_SUP_ADD: for the other strategies, a new child spec; it is
 *    appended and started; reply: a tr_sup_started as for START. TR_EEXIST:
 *    the id is taken; TR_EINVAL: its .loop names no loop of the runtime.
 *    The request carries a behaviour pointer, so only tr_sup_add_child and
 *    tr_rt_sup_add_child send it: a call of this type through tr_call or
 *    tr_rt_call is TR_EINVAL. An actor recognises the reply to
 *    tr_sup_add_child by this type.
 *  - TR_MSG_SUP_STOP: payload: the child's tr_pid (exactly sizeof(tr_pid)
 *    bytes); stops it (its spec's shutdown) without restarting; a dynamic
 *    child is removed, a static one keeps its spec for RESTART. Reply:
 *    int32_t rc (TR_ENOTFOUND: no such child).
 *  - TR_MSG_SUP_RESTART: payload: the id (1 .. TR_CHILD_ID_MAX bytes,
 *    without NUL) of a stopped child; starts it again. Reply: a
 *    tr_sup_started, once its init has run (TR_EEXIST: it is running).
 *  - TR_MSG_SUP_DELETE: payload: the id (1 .. TR_CHILD_ID_MAX bytes) of a
 *    stopped child; forgets its spec. Reply: int32_t rc (TR_EEXIST: it is
 *    running).
 */
#define TR_MSG_SUP_WHICH 0xffff0010u
#define TR_MSG_SUP_START 0xffff0011u
#define TR_MSG_SUP_STOP 0xffff0012u
#define TR_MSG_SUP_ADD 0xffff0013u
#define TR_MSG_SUP_RESTART 0xffff0014u
#define TR_MSG_SUP_DELETE 0xffff0015u

/* The reply to TR_MSG_SUP_START, TR_MSG_SUP_ADD and TR_MSG_SUP_RESTART. */
typedef struct tr_sup_started {
    int32_t rc;
    tr_pid pid;
} tr_sup_started;

/* Sends TR_MSG_SUP_ADD with a copy of `spec` as a call from self (see
 * tr_call: timeout_ms bounds the wait as there, TR_DEFAULT is 5000 ms):
 * the only way an actor can send that type. The reply is a message of
 * type TR_MSG_SUP_ADD carrying a tr_sup_started. Errors: TR_EINVAL (bad
 * spec, as for tr_sup_spawn, including a .loop that names no loop; a bad
 * timeout), TR_EMSGSIZE (the spec's copy is larger than max_payload), as
 * tr_call. Thread: `self`'s callbacks. */
TR_API int tr_sup_add_child(tr_actor *self, tr_pid sup, const tr_child_spec *spec,
                            tr_duration timeout_ms, tr_ref *ref_out);

/*
 * Plain-thread helpers for those requests. Each blocks like tr_rt_call with
 * TR_INFINITE: what ends its wait is the supervisor's answer or its end
 * (then TR_EEXITED, or TR_ENOACTOR if it was gone). Each returns the
 * request's rc (TR_EEXIST, TR_ENOTFOUND, TR_EINVAL, TR_EFAILED, ... as
 * listed above) or the call's error (TR_EINVAL for a NULL runtime,
 * TR_ENOACTOR, TR_EEXITED, TR_ESTOPPED, TR_EWRONGTHREAD on a loop thread,
 * TR_ENOMEM); a pid that is not a supervisor's is TR_EINVAL, promptly.
 * *out (may be NULL) is written only on success.
 * tr_rt_sup_add_child checks the spec first, as tr_sup_add_child.
 * Thread: any plain thread.
 */
TR_API int tr_rt_sup_start_child(tr_runtime *rt, tr_pid sup, const void *arg,
                                 size_t arg_len, tr_pid *out);
TR_API int tr_rt_sup_add_child(tr_runtime *rt, tr_pid sup, const tr_child_spec *spec,
                               tr_pid *out);
TR_API int tr_rt_sup_stop_child(tr_runtime *rt, tr_pid sup, tr_pid child);
TR_API int tr_rt_sup_restart_child(tr_runtime *rt, tr_pid sup, const char *id, tr_pid *out);
TR_API int tr_rt_sup_delete_child(tr_runtime *rt, tr_pid sup, const char *id);
/* Copies up to `cap` children into `out` (NULL with cap 0 only counts);
 * returns how many there are, or an error as above (TR_EINVAL: out NULL
 * with cap > 0). Thread: any plain thread. */
TR_API int tr_rt_sup_which_children(tr_runtime *rt, tr_pid sup, tr_sup_child *out,
                                    unsigned cap);

/* ------------------------------------------------------------------------ */
/* Time and timers                                                          */
/* ------------------------------------------------------------------------ */

/* The runtime clock: monotonic nanoseconds (the test clock if one was
 * installed). Every deadline in troupe is on this clock. 0 for NULL. Any
 * thread. */
TR_API uint64_t tr_now(const tr_runtime *rt);

/* Tells the loops that a custom clock has moved: timers now due fire (on
 * the loops' threads, after this returns: the test kit's tr_test_advance
 * also waits for them), and plain threads waiting with a deadline look at
 * it again.
 * Errors: TR_EINVAL. Any thread. */
TR_API int tr_runtime_clock_advanced(tr_runtime *rt);

typedef uint64_t tr_timer_id;

/*
 * Sends a copy of the payload as a message of `type` from `self` to `to`
 * once `delay_ms` has passed on the runtime clock (0: at the loop's next
 * timer check; a huge delay is a timer that fires when the clock gets
 * there, never at once). TR_DEFAULT and TR_INFINITE are TR_EINVAL: there
 * is no default delay, and a message never sent needs no timer. The timer
 * lives on self's loop and is cancelled automatically when `self` exits.
 * If `to` has exited when it fires, the message is dropped and counted.
 * `out` may be NULL. Errors: as tr_send, except that `to` is checked when
 * the timer fires; TR_EINVAL (a negative delay); TR_ENOMEM.
 * Thread: `self`'s callbacks.
 */
TR_API int tr_send_after(tr_actor *self, tr_pid to, tr_duration delay_ms,
                         uint32_t type, const void *data, size_t len,
                         tr_timer_id *out);

/* As tr_send_after, every `period_ms` until cancelled or self exits; the
 * first comes after one period. The period must be positive: 0,
 * TR_DEFAULT, TR_INFINITE and other negatives are TR_EINVAL. Errors and
 * thread: as tr_send_after. */
TR_API int tr_send_interval(tr_actor *self, tr_pid to, tr_duration period_ms,
                            uint32_t type, const void *data, size_t len,
                            tr_timer_id *out);

/*
 * Cancels a timer of `self`: its message will not be sent (again).
 * Errors: TR_EINVAL, TR_EWRONGTHREAD, TR_ENOTFOUND (fired already, cancelled
 * already, or not self's). Thread: `self`'s callbacks.
 */
TR_API int tr_timer_cancel(tr_actor *self, tr_timer_id id);

/* ------------------------------------------------------------------------ */
/* Request / reply                                                          */
/* ------------------------------------------------------------------------ */

/*
 * What a TR_MSG_CALL_FAILED carries: how the callee ended. kind
 * TR_EXIT_ERROR with code TR_ENOACTOR: the callee did not exist, or had
 * ended so long before that its reason is gone; code TR_ENOMEM: the callee
 * could not send its reply (it was out of memory) and the runtime answered
 * for it; otherwise the callee's exit reason (tr_exit_reason's kind and
 * code).
 */
typedef struct tr_call_failed {
    int32_t kind; /* tr_exit_kind */
    int32_t code;
} tr_call_failed;

/*
 * Sends a request and returns at once; `self` keeps running. The call
 * ends with exactly one message to self, with TR_MSG_REPLY and *ref_out in
 * its ref (see tr_msg):
 *  - the reply;
 *  - TR_MSG_CALL_TIMEOUT when no answer came within `timeout_ms` on the
 *    runtime clock; a reply that comes after it is dropped and counted
 *    (stats.late_replies), never delivered;
 *  - TR_MSG_CALL_FAILED, as soon as the callee ends without answering —
 *    whether the request was still queued, being handled, or kept for a
 *    later tr_reply — or when the request reaches an actor that has ended
 *    (Erlang's gen_server:call fails the same way, through a monitor; here
 *    the runtime answers for the dead callee, which costs the call path
 *    nothing). Its data is a tr_call_failed.
 * Nothing arrives after self exits (its pending calls end with it) or after
 * tr_call_cancel. No wait blocks.
 * timeout_ms: 0: the request carries an expired deadline and the timeout
 * comes at the next timer check; TR_INFINITE: no limit (only the reply or
 * the failure ends the call); TR_DEFAULT: 5000 ms (OTP's gen_server:call
 * default). `type`: a user type, or a supervisor request users may call
 * (TR_MSG_SUP_WHICH, START, STOP, RESTART, DELETE); any other type above
 * TR_MSG_USER_MAX is TR_EINVAL (TR_MSG_SUP_ADD too: use tr_sup_add_child).
 * Errors: as tr_send; TR_ENOACTOR if `to` is known dead (nothing will
 * arrive); TR_EFULL also for a bounded mailbox with TR_OVERFLOW_DROP (a
 * request is refused, never dropped); TR_EINVAL (a negative timeout other
 * than TR_INFINITE and TR_DEFAULT; a refused type). Thread: `self`'s
 * callbacks.
 */
TR_API int tr_call(tr_actor *self, tr_pid to, uint32_t type, const void *data,
                   size_t len, tr_duration timeout_ms, tr_ref *ref_out);

/*
 * Attaches `tag` to self's pending call `ref`: the message that ends the
 * call (reply, timeout or failure) carries it in msg->tag, so a caller
 * with many calls in flight finds its context without a lookup (a pointer
 * cast to uint64_t, an index). Set it right after tr_call: the call cannot
 * end before self's callback returns. Errors: TR_EINVAL, TR_EWRONGTHREAD,
 * TR_ENOTFOUND (not a pending call of self's). Thread: `self`'s callbacks.
 */
TR_API int tr_call_tag(tr_actor *self, tr_ref ref, uint64_t tag);

/*
 * Cancels self's pending call `ref`: nothing for it arrives afterwards (a
 * reply that still comes is dropped and counted in stats.late_replies).
 * The callee is not told; it may still do the work. Errors: TR_EINVAL,
 * TR_EWRONGTHREAD, TR_ENOTFOUND (it has ended: its last message is queued
 * or was handled). Thread: `self`'s callbacks.
 */
TR_API int tr_call_cancel(tr_actor *self, tr_ref ref);

/*
 * The time left until the deadline of `request` (a message with
 * TR_MSG_REQUEST, the one being handled or a copy kept from earlier), in
 * ms, rounded up: pass it as the timeout of the calls made on the
 * request's behalf, so they give up when the original caller does. A
 * duration rather than a clock value, so that it means the same on another
 * machine. TR_INFINITE when the request has no deadline or `request`
 * is not a request; 0 when the deadline has passed. Thread: `self`'s
 * callbacks (any other thread gets TR_INFINITE).
 */
TR_API tr_duration tr_msg_remaining(tr_actor *self, const tr_msg *request);

/*
 * Answers `request` (a message with TR_MSG_REQUEST, being handled now or
 * earlier — keep a copy of the tr_msg to answer later) with a copy of the
 * payload. `type`: a user type, or the request's own type when that is a
 * supervisor request users may call (see tr_call). The runtime remembers
 * every request its handler returned from without answering; if self ends
 * with some still unanswered, their callers get TR_MSG_CALL_FAILED with
 * self's exit reason (a request only forwarded to another actor that
 * answers it is failed too, and that failure then arrives late and is
 * dropped). Errors: TR_EINVAL (not a request, bad payload, any other type
 * above TR_MSG_USER_MAX), TR_EMSGSIZE (the request stays unanswered:
 * answer again), TR_EWRONGTHREAD, TR_ENOACTOR (the caller has exited;
 * nothing is sent), TR_ENOMEM (the reply could not be made: the caller
 * gets TR_MSG_CALL_FAILED with TR_ENOMEM instead, made from the request's
 * own memory, so the answer is never lost). A reply to a call that has
 * ended (timed out, cancelled, answered) is dropped and counted.
 * Thread: `self`'s callbacks.
 */
TR_API int tr_reply(tr_actor *self, const tr_msg *request, uint32_t type,
                    const void *data, size_t len);

/* A reply received by tr_rt_call; free it with tr_rt_reply_free. */
typedef struct tr_rt_reply {
    tr_pid from;
    uint32_t type;
    uint32_t len;
    void *data; /* malloc'd; NULL when len is 0 */
} tr_rt_reply;

/*
 * Calls an actor from a plain thread and blocks until the reply, for at most
 * `timeout_ms` on the runtime clock (the request's deadline too): real
 * time, or, with a custom clock, that clock's time — the wait ends when
 * tr_runtime_clock_advanced has moved it past the deadline. 0: the
 * request is sent with an expired deadline and
 * the call gives up at once; TR_INFINITE: no limit; TR_DEFAULT: 5000 ms. A
 * huge timeout is a very long wait, never a short one. On success *reply
 * holds the answer. A reply that comes after the call gave up is dropped
 * and counted. `type` as for tr_call. What ends the wait: the reply; the
 * timeout (TR_ETIMEDOUT); the callee's end without an answer (TR_EEXITED
 * at once, whether the request was queued, being handled or kept); the
 * request reaching an actor that has ended (TR_ENOACTOR); the runtime
 * stopping (TR_ESTOPPED). No allocation failure can lose the answer: a
 * reply that cannot be copied ends the wait with TR_ENOMEM. Errors: as
 * tr_rt_send, and those above; TR_EINVAL (a type tr_call refuses; a
 * negative timeout other than TR_INFINITE and TR_DEFAULT); TR_EWRONGTHREAD
 * on a loop thread (it would block the loop). Thread: any plain thread.
 */
TR_API int tr_rt_call(tr_runtime *rt, tr_pid to, uint32_t type,
                      const void *data, size_t len, tr_duration timeout_ms,
                      tr_rt_reply *reply);

/* Frees what tr_rt_call put in `reply` (NULL is fine). Any thread. */
TR_API void tr_rt_reply_free(tr_rt_reply *reply);

/* ------------------------------------------------------------------------ */
/* Registry                                                                 */
/* ------------------------------------------------------------------------ */

#define TR_NAME_MAX 63 /* longest name, in bytes */

/*
 * Registers `self` under `name` (copied) until it unregisters or exits.
 * An actor has at most one name; it appears in crash reports.
 * Errors: TR_EINVAL (NULL, empty or longer than TR_NAME_MAX), TR_EEXIST
 * (taken), TR_EALREADY (self has a name), TR_EWRONGTHREAD, TR_ENOMEM.
 * Thread: `self`'s callbacks.
 */
TR_API int tr_register(tr_actor *self, const char *name);

/* Releases self's name. Errors: TR_EINVAL, TR_EWRONGTHREAD, TR_ENOTFOUND
 * (self has no name). Thread: `self`'s callbacks. */
TR_API int tr_unregister(tr_actor *self);

/* The pid registered under `name`, or TR_PID_NONE. Any thread. */
TR_API tr_pid tr_whereis(tr_runtime *rt, const char *name);

/* ------------------------------------------------------------------------ */
/* Zero-copy sends                                                          */
/* ------------------------------------------------------------------------ */

typedef void (*tr_free_fn)(void *buf);

/*
 * Hands `buf` (`len` bytes) to `to` without copying. On success the runtime
 * owns `buf`: the receiver sees it as msg->data (with TR_MSG_OWNED), and
 * after its handler returns `free_fn(buf)` runs — unless the handler took
 * the buffer with tr_msg_keep. If the message is dropped (the receiver
 * exited, the runtime stopped), free_fn(buf) runs exactly once. On failure
 * the caller still owns `buf`. max_payload does not apply (len < 4 GiB).
 * Errors: TR_EINVAL (NULL buf or free_fn, type), TR_EMSGSIZE, TR_ENOACTOR,
 * TR_EWRONGTHREAD, TR_ENOMEM. Thread: `self`'s callbacks.
 */
TR_API int tr_send_owned(tr_actor *self, tr_pid to, uint32_t type, void *buf,
                         size_t len, tr_free_fn free_fn);

/* As tr_send_owned, from any thread (see tr_rt_send). */
TR_API int tr_rt_send_owned(tr_runtime *rt, tr_pid to, uint32_t type,
                            void *buf, size_t len, tr_free_fn free_fn);

/*
 * Takes ownership of the zero-copy buffer of the message being handled: the
 * runtime will not free it; the caller frees it later with its free_fn.
 * Returns the buffer, or NULL if `msg` is not the message self is handling
 * now, has no owned buffer, or was kept already. Thread: `self`'s receive.
 */
TR_API void *tr_msg_keep(tr_actor *self, const tr_msg *msg);

/* ------------------------------------------------------------------------ */
/* Worker pool                                                              */
/* ------------------------------------------------------------------------ */

/* A job as its function sees it, on a worker thread. Opaque. */
typedef struct tr_job tr_job;
typedef uint64_t tr_job_id;

/*
 * The work. Runs on a worker thread, never on a loop: it may block, sleep
 * and burn CPU. `arg` is the runtime's copy of the offload argument, valid
 * until the function returns. Return 0 for success (the result set with
 * tr_job_set_result, if any, is delivered) or any non-zero code, negative
 * or positive (delivered as TR_MSG_JOB_FAILED): TR_EUSER(n) or a positive
 * code for the job's own failures, or a troupe code it got and propagates.
 * It may send to actors with the plain-thread API (tr_rt_send, tr_rt_call)
 * on tr_job_runtime(job), and may block in any wait that the runtime's
 * stop ends (tr_rt_call, tr_rt_wait_exit, tr_runtime_wait, ...): the stop
 * never waits for a job. It may not free its runtime: tr_runtime_free
 * joins the workers, and returns TR_EWRONGTHREAD from a job.
 */
typedef int (*tr_job_fn)(tr_job *job, const void *arg, size_t arg_len);

/*
 * Runs `fn` on the worker pool with a copy of `arg`. The outcome comes back
 * to `self` as one message on its home loop, with msg->ref == *out:
 * TR_MSG_JOB_DONE carrying the result, or TR_MSG_JOB_FAILED carrying the
 * int32_t error code. If self has an in-flight limit (tr_offload_limit) and
 * has reached it, the job waits in self's own queue until an earlier job of
 * self's ends (a semaphore, without blocking the loop). When self exits,
 * its queued jobs never run and results of running ones are discarded.
 * Errors: TR_EINVAL (NULL self/fn/out, arg NULL with a length), TR_EMSGSIZE,
 * TR_EFULL (the pool's queue is full), TR_ESTOPPED (self is exiting),
 * TR_EWRONGTHREAD, TR_ENOMEM. Thread: `self`'s callbacks.
 */
TR_API int tr_offload(tr_actor *self, tr_job_fn fn, const void *arg,
                      size_t arg_len, tr_job_id *out);

/*
 * Cancels a job of self: a job that has not started never runs; a running
 * job sees tr_job_cancelled() return true. Either way no message for it
 * arrives afterwards. Errors: TR_EINVAL, TR_EWRONGTHREAD, TR_ENOTFOUND (it
 * has ended, its outcome message is on its way or was handled, or it is not
 * self's). Thread: `self`'s callbacks.
 */
TR_API int tr_job_cancel(tr_actor *self, tr_job_id id);

/*
 * At most `max` jobs of self run or wait in the pool at once; 0 (the
 * default) means no limit. Errors: TR_EINVAL, TR_EWRONGTHREAD.
 * Thread: `self`'s callbacks.
 */
TR_API int tr_offload_limit(tr_actor *self, unsigned max);

/* Sets the job's result: a copy of `len` bytes, delivered if the function
 * returns 0; a later call replaces it. Errors: TR_EINVAL, TR_EMSGSIZE,
 * TR_ENOMEM. Thread: the job's worker. */
TR_API int tr_job_set_result(tr_job *job, const void *data, size_t len);

/* Non-zero once the job was cancelled (or its owner exited): stop early.
 * Thread: the job's worker. */
TR_API int tr_job_cancelled(const tr_job *job);

/* The runtime and the offloading actor of a job. Thread: the job's worker. */
TR_API tr_runtime *tr_job_runtime(const tr_job *job);
TR_API tr_pid tr_job_owner(const tr_job *job);

/* ------------------------------------------------------------------------ */
/* Task groups (structured concurrency)                                     */
/* ------------------------------------------------------------------------ */

/*
 * A task group is a scope an actor opens for a set of children — actors
 * and worker-pool jobs — whose outcome it wants as one message, like
 * asyncio's TaskGroup and Trio's nursery. The owner spawns into the group,
 * closes it, and gets exactly one TR_MSG_GROUP_DONE (msg->ref == the
 * group's id) once every child has ended; it never sees the children's
 * DOWN or JOB messages. Child actors are the owner's children (they die
 * with it); jobs are the owner's jobs. When the owner exits, its groups are
 * cancelled with it and no completion is sent: nothing outlives the scope.
 * Everything here runs on the owner's thread: no locks.
 */
typedef uint64_t tr_group_id;

#define TR_MSG_GROUP_DONE 0xffff0007u

typedef enum tr_group_mode {
    /* asyncio.TaskGroup: the first child that fails cancels its siblings
     * (actors get a shutdown signal, jobs are cancelled, waiting children
     * never start); the completion's code is that child's error. */
    TR_GROUP_FAIL_FAST = 0,
    /* gather(return_exceptions=True): every child runs to its end; the
     * completion carries each one's result or error. */
    TR_GROUP_COLLECT
} tr_group_mode;

typedef struct tr_group_opts {
    tr_group_mode mode;
    /* The whole group's deadline, from tr_group_open (asyncio.timeout);
     * when it passes, the group is cancelled with TR_ETIMEDOUT. On the
     * runtime clock. 0, TR_DEFAULT or TR_INFINITE: none (the default). */
    tr_duration timeout_ms;
    /* At most this many children run at once (asyncio.Semaphore); the rest
     * wait in spawn order. 0: no limit. */
    uint32_t max_running;
} tr_group_opts;

/* Defaults (all zero): fail-fast, no deadline, no limit. NULL is ignored.
 * Any thread. */
TR_API void tr_group_opts_init(tr_group_opts *opts);

/*
 * Opens a group owned by self. opts may be NULL (the defaults).
 * Errors: TR_EINVAL (NULL self/out, bad mode, a negative timeout_ms other
 * than TR_INFINITE and TR_DEFAULT), TR_EWRONGTHREAD,
 * TR_ESTOPPED (self is exiting), TR_ENOMEM. Thread: `self`'s callbacks.
 */
TR_API int tr_group_open(tr_actor *self, const tr_group_opts *opts, tr_group_id *out);

/*
 * Spawns a child actor of self into group `g` (as tr_spawn; opts may be
 * NULL). It succeeds by ending normally (its tr_exit_result, if any, is its
 * result) and fails by any other end. *out (may be NULL) is its pid, or
 * TR_PID_NONE while it waits for a place under max_running. The options
 * are checked now, also for a child that waits (TR_EINVAL, as tr_spawn).
 * Errors: TR_EINVAL, TR_ENOTFOUND (self never opened `g`),
 * TR_ESTOPPED (the group was closed or cancelled — it may have completed
 * since — or self is exiting),
 * errors of tr_spawn. Thread: `self`'s callbacks.
 */
TR_API int tr_group_spawn(tr_actor *self, tr_group_id g, const tr_behavior *behavior,
                          const tr_spawn_opts *opts, tr_pid *out);

/*
 * Runs `fn` on the worker pool as a child of group `g` (as tr_offload, arg
 * copied). It succeeds by returning 0 (its tr_job_set_result is its result)
 * and fails with the code it returns. Errors: as tr_group_spawn and
 * tr_offload. Thread: `self`'s callbacks.
 */
TR_API int tr_group_offload(tr_actor *self, tr_group_id g, tr_job_fn fn, const void *arg,
                            size_t arg_len);

/*
 * No more children: the completion comes once all have ended (at once, in
 * a message, if none are left). Errors: TR_EINVAL, TR_EWRONGTHREAD,
 * TR_ENOTFOUND (self never opened `g`), TR_EALREADY (closed before,
 * including a group that has completed). Thread: `self`'s callbacks.
 */
TR_API int tr_group_close(tr_actor *self, tr_group_id g);

/*
 * Cancels the group: waiting children never start, running actors get a
 * shutdown signal, jobs are cancelled; it closes the group, and the
 * completion (code TR_ECANCELED) comes once the children have ended.
 * Errors: TR_EINVAL, TR_EWRONGTHREAD, TR_ENOTFOUND (self never opened
 * `g`), TR_EALREADY (the group has completed: nothing is left to
 * cancel). Thread: `self`'s callbacks.
 */
TR_API int tr_group_cancel(tr_actor *self, tr_group_id g);

/*
 * The payload of TR_MSG_GROUP_DONE: this header, then `n` entries in spawn
 * order, read with tr_group_entry. Each entry is a tr_down: for an actor,
 * its pid and how it ended, with its result; for a job, pid is the job id,
 * kind TR_EXIT_NORMAL with the job's result or TR_EXIT_ERROR with its
 * code. A child that was cancelled before it started has pid TR_PID_NONE,
 * kind TR_EXIT_SHUTDOWN and code TR_ECANCELED. The message owns it all.
 */
typedef struct tr_group_done {
    /* 0: every child succeeded. TR_ETIMEDOUT: the deadline passed.
     * TR_ECANCELED: tr_group_cancel. Otherwise a child failed: in fail-fast
     * mode its error code, troupe's or the application's (TR_EFAILED if it
     * was killed, shut down or lost its connection), in collect mode
     * TR_EFAILED. */
    int32_t code;
    uint32_t n;            /* children */
    uint32_t failed;       /* how many failed (not counting cancelled ones) */
    uint32_t first_failed; /* index of the first to fail (in time), or UINT32_MAX */
    /* followed by uint32_t offsets[n], then the entries */
} tr_group_done;

/* Entry i (spawn order) of a TR_MSG_GROUP_DONE, or NULL if out of range.
 * Its result, if any, is tr_down_result(entry), result_len bytes. */
static inline const tr_down *tr_group_entry(const tr_msg *msg, uint32_t i)
{
    const tr_group_done *h = (const tr_group_done *)msg->data;
    if (msg->type != TR_MSG_GROUP_DONE || i >= h->n)
        return NULL;
    const uint32_t *off = (const uint32_t *)(h + 1);
    return (const tr_down *)((const char *)msg->data + off[i]);
}

/* ------------------------------------------------------------------------ */
/* Channels                                                                 */
/* ------------------------------------------------------------------------ */

/*
 * A channel is a bounded, lock-free, multi-producer multi-consumer queue of
 * items (copies of up to item_max bytes) between actors and threads, built
 * on Concurrency Kit rings. Its memory is fixed at creation: capacity
 * items, nothing is allocated per item. A full channel refuses (TR_EFULL),
 * an empty one has nothing (TR_EEMPTY): backpressure, not growth.
 *
 * Consumers: plain threads receive (non-blocking, or blocking with a
 * timeout); an actor can also subscribe, and the channel's items then
 * arrive as messages, in channel order, but only as many as the actor has
 * asked for (credit, as Reactive Streams' request(n)). Several consumers
 * share one channel: each item goes to exactly one.
 *
 * Producers: any thread sends (non-blocking, or blocking with a timeout on
 * plain threads); an actor that finds the channel full asks to be told when
 * there is room (tr_chan_notify_room), and never spins.
 *
 * Close: later sends are refused with TR_ECLOSED; consumers still receive
 * what was accepted, then a receive returns TR_ECLOSED and each subscriber
 * gets one TR_MSG_CHAN_END. Every accepted item is delivered exactly once.
 *
 * Lifetime: reference counted. tr_chan_create returns one reference;
 * subscriptions hold one each. The channel is freed when the last goes; a
 * runtime must outlive its channels' use.
 */
typedef struct tr_chan tr_chan;

#define TR_MSG_CHAN_END 0xffff0008u /* a subscription's end: msg->ref == the subscription */

typedef struct tr_chan_opts {
    uint32_t capacity; /* items; 0: 1024 */
    uint32_t item_max; /* bytes per item; 0: 64 */
} tr_chan_opts;

/* The defaults (all zero): 1024 items of up to 64 bytes. NULL is ignored.
 * Any thread. */
TR_API void tr_chan_opts_init(tr_chan_opts *opts);

/* Creates a channel (opts may be NULL). Errors: TR_EINVAL (NULL rt/out,
 * capacity over 2^30, item_max over the runtime's max_payload),
 * TR_ENOMEM. Thread: any. */
TR_API int tr_chan_create(tr_runtime *rt, const tr_chan_opts *opts, tr_chan **out);

/* Takes / drops a reference; the last release frees the channel (it need
 * not be closed). Thread: any. */
TR_API void tr_chan_retain(tr_chan *ch);
TR_API void tr_chan_release(tr_chan *ch);

/*
 * Sends a copy of `len` bytes. Never blocks. Errors: TR_EFULL (expected:
 * the consumers are behind — retry later, or tr_chan_notify_room),
 * TR_ECLOSED, TR_EMSGSIZE (len > item_max), TR_EINVAL. Thread: any.
 * Cost: two lock-free ring operations and a copy; no allocation.
 */
TR_API int tr_chan_send(tr_chan *ch, const void *item, size_t len);

/*
 * Takes the oldest item into `buf` (cap must be >= item_max) and sets
 * *len. Never blocks. Errors: TR_EEMPTY (expected: nothing yet),
 * TR_ECLOSED (closed and drained: no item will ever come), TR_EINVAL.
 * Thread: any.
 */
TR_API int tr_chan_recv(tr_chan *ch, void *buf, size_t cap, size_t *len);

/*
 * As tr_chan_send / tr_chan_recv, waiting for room / an item until there
 * is some, the channel is closed, or timeout_ms has passed (real time,
 * even under a custom clock; the test kit's deterministic runtimes run
 * their steps meanwhile: troupe_test.h). 0: one more look, then
 * TR_ETIMEDOUT; TR_INFINITE: no
 * limit; a huge timeout is a very long wait, never a short one. There is
 * no default wait: TR_DEFAULT is TR_EINVAL, as are other negatives.
 * Extra errors: TR_ETIMEDOUT, TR_EINVAL, TR_EWRONGTHREAD on a loop thread
 * (it would block the loop). Thread: any plain thread.
 */
TR_API int tr_chan_send_wait(tr_chan *ch, const void *item, size_t len,
                             tr_duration timeout_ms);
TR_API int tr_chan_recv_wait(tr_chan *ch, void *buf, size_t cap, size_t *len,
                             tr_duration timeout_ms);

/* Closes the channel (see above). Errors: TR_EINVAL, TR_EALREADY.
 * Thread: any. */
TR_API int tr_chan_close(tr_chan *ch);

/*
 * Subscribes self to the channel: items arrive as messages of `type`
 * (msg->data is the item, valid during the handler; msg->ref == *sub), in
 * channel order, at most `credit` of them until self asks for more with
 * tr_chan_request. After a close, when the channel is drained, one
 * TR_MSG_CHAN_END with msg->ref == *sub ends the subscription. The
 * subscription holds a reference to the channel; it ends with
 * tr_chan_unsubscribe, the END message, or self's exit.
 * Errors: TR_EINVAL (NULL, type above TR_MSG_USER_MAX), TR_EWRONGTHREAD,
 * TR_ESTOPPED, TR_ENOMEM. Thread: `self`'s callbacks.
 */
TR_API int tr_chan_subscribe(tr_actor *self, tr_chan *ch, uint32_t type, uint32_t credit,
                             tr_ref *sub);

/* Grants `n` more items to a subscription. Errors: TR_EINVAL,
 * TR_EWRONGTHREAD, TR_ENOTFOUND. Thread: `self`'s callbacks. */
TR_API int tr_chan_request(tr_actor *self, tr_ref sub, uint32_t n);

/* Ends a subscription; no item for it arrives afterwards (items not yet
 * delivered stay in the channel for other consumers). Errors: TR_EINVAL,
 * TR_EWRONGTHREAD, TR_ENOTFOUND. Thread: `self`'s callbacks. */
TR_API int tr_chan_unsubscribe(tr_actor *self, tr_ref sub);

/*
 * Asks for one message of `type` (from TR_PID_NONE) as soon as the channel
 * has room — at once if it has room now — or is closed. Use it after
 * TR_EFULL, then send again (another producer may have taken the room: ask
 * again). Errors: TR_EINVAL (NULL, type above TR_MSG_USER_MAX),
 * TR_EWRONGTHREAD, TR_ENOMEM. Thread: `self`'s callbacks.
 */
TR_API int tr_chan_notify_room(tr_actor *self, tr_chan *ch, uint32_t type);

typedef struct tr_chan_stats {
    uint64_t depth;    /* items in the channel now */
    uint64_t capacity;
    uint64_t sent;     /* items accepted */
    uint64_t received; /* items taken (by receives and subscriptions) */
    uint64_t refused;  /* sends refused: full or closed */
    uint64_t subscribers;
} tr_chan_stats;

/* Errors: TR_EINVAL. Thread: any. */
TR_API int tr_chan_stats_get(tr_chan *ch, tr_chan_stats *out);

/* ------------------------------------------------------------------------ */
/* Introspection                                                            */
/* ------------------------------------------------------------------------ */

#define TR_INFO_MAX 192 /* bytes of a describe line, with the NUL */

/* One actor of the tree, as tr_runtime_tree reports it. The strings are
 * valid during the callback only. */
typedef struct tr_actor_info {
    tr_pid pid;
    tr_pid parent;        /* the root's pid for top-level actors */
    unsigned depth;       /* 0: top-level (a child of the root) */
    int loop;             /* home loop */
    int exiting;          /* non-zero: stopping its children before it ends */
    unsigned nchildren;
    uint64_t handled;     /* messages it has handled */
    uint64_t mailbox;     /* messages waiting now */
    const char *behavior; /* the behaviour's name, or "" */
    const char *name;     /* its registered name, or "" */
    const char *info;     /* its behaviour's describe line, or "" (supervisors:
                             strategy, children, restart counts) */
} tr_actor_info;

/* Called for each actor; a non-zero return stops the walk. */
typedef int (*tr_tree_fn)(const tr_actor_info *info, void *userdata);

/*
 * Walks the tree depth first, each actor before its children, children in
 * spawn order. Each actor is asked on its own loop, between its messages,
 * so the walk never stops the runtime: it is not one instant's snapshot —
 * an actor that ends meanwhile is left out, one spawned meanwhile may be.
 * Any depth: the walk keeps its path from the root on the heap, not the
 * calling thread's stack (memory in proportion to the depth).
 * Returns 0, the callback's non-zero value, or TR_EINVAL, TR_ENOTSTARTED,
 * TR_ESTOPPED, TR_EWRONGTHREAD (a loop thread: this blocks), TR_ENOMEM.
 * Thread: any but the runtime's loops.
 */
TR_API int tr_runtime_tree(tr_runtime *rt, tr_tree_fn fn, void *userdata);

/* Prints the tree, one line per actor, indented by depth:
 *   <pid> behaviour 'name' loop N [exiting] handled H [: describe line]
 * Errors: as tr_runtime_tree. Thread: as tr_runtime_tree. */
TR_API int tr_runtime_tree_print(tr_runtime *rt, FILE *out);

/* ------------------------------------------------------------------------ */
/* Statistics                                                               */
/* ------------------------------------------------------------------------ */

/* Counters of one loop since the runtime was created. Read while the loops
 * run, each figure is exact for its own moment but they are not a snapshot
 * of one instant. */
typedef struct tr_loop_stats {
    uint64_t handled;      /* user messages handled */
    uint64_t dropped;      /* user messages dropped (target gone, exiting) */
    uint64_t late_replies; /* replies that arrived after their call ended */
    uint64_t wakeups;      /* times another thread woke the parked loop */
    uint64_t spins;        /* idle spins that found work before parking */
    uint64_t actors;       /* actors alive now */
    uint64_t timers;       /* timers and calls pending now */
    uint64_t blocked;      /* callbacks reported over block_budget_ms */
    uint64_t lag_max_us;   /* largest timer lateness seen (loop lag) */
    uint64_t lag_last_us;  /* lateness of the last timer that fired */
} tr_loop_stats;

/*
 * Copies the counters of up to `cap` loops into `out` and returns the number
 * of loops of the runtime (which may exceed cap), or TR_EINVAL (rt NULL, out
 * NULL with cap > 0). Any thread.
 */
TR_API int tr_runtime_stats(tr_runtime *rt, tr_loop_stats *out, unsigned cap);

/* Prints the counters, one line per loop and a total, to `out`.
 * Errors: TR_EINVAL. Any thread. */
TR_API int tr_runtime_stats_print(tr_runtime *rt, FILE *out);

typedef struct tr_actor_stats {
    uint64_t handled; /* user messages this actor has handled */
    uint64_t mailbox; /* messages waiting in its mailbox now */
    uint64_t dropped; /* sends dropped by a full bounded mailbox (TR_OVERFLOW_DROP) */
    uint64_t refused; /* sends refused by a full bounded mailbox (TR_OVERFLOW_REFUSE) */
} tr_actor_stats;

/* Self's counters. Errors: TR_EINVAL, TR_EWRONGTHREAD. Thread: `self`'s
 * callbacks. */
TR_API int tr_actor_stats_get(tr_actor *self, tr_actor_stats *out);

/* ------------------------------------------------------------------------ */
/* Metrics                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * Metrics (docs/observability.md): the runtime's own — actors, messages,
 * behaviours, loops, calls, the worker pool, supervisors, channels,
 * sockets — and the application's, registered here, read through one
 * registry and written in the Prometheus text format. The runtime's
 * counters are kept per loop by the loop's own thread, without a lock or
 * an atomic instruction on the message path, and summed when read: a read
 * is exact for each counter's own moment, not a snapshot of one instant.
 * The observation hook (tr__observe, the test kit's) stays off: metrics do
 * not use it.
 *
 * An application's metric is a series: a name, constant labels and a
 * type. Counters count up; gauges go anywhere; histograms count
 * observations into buckets. Updates are lock-free from any thread: on a
 * loop thread of the metric's runtime they go to that loop's own shard
 * (plain stores), elsewhere to a shared shard (atomic adds); reads sum the
 * shards.
 */
typedef enum tr_metric_type {
    TR_METRIC_COUNTER = 1,
    TR_METRIC_GAUGE,
    TR_METRIC_HISTOGRAM
} tr_metric_type;

#define TR_METRIC_BUCKETS_MAX 32 /* a histogram's bounds, +Inf not counted */

typedef struct tr_metric_desc {
    /* [a-zA-Z_:][a-zA-Z0-9_:]*; by convention a counter's ends in _total and
     * units are base units (_seconds, _bytes). Required. */
    const char *name;
    const char *help;  /* one line; NULL: "" */
    tr_metric_type type;
    /* Constant labels, "key=value,key2=value2" (keys as names, without
     * ':'; values any text without ',' or '='; they are escaped when
     * written). NULL or "": none. */
    const char *labels;
    /* Histograms: ascending upper bounds (finite), at most
     * TR_METRIC_BUCKETS_MAX; +Inf is implied. NULL: the default bounds,
     * 1 us to 10 s in steps of about 1, 2.5, 5 x 10^n seconds. */
    const double *buckets;
    unsigned nbuckets;
} tr_metric_desc;

typedef struct tr_metric tr_metric;

/*
 * Registers a series of the metrics of `rt`, or finds it: registering a
 * name and labels that are registered already returns the same series
 * (so an actor that restarts may register again). *out is valid until
 * tr_runtime_free (the runtime owns it; nothing frees it before).
 * Errors: TR_EINVAL (NULL, a bad name or labels, a type or help or
 * buckets other than the name's first registration, bounds not
 * ascending), TR_ELIMIT (metric_series series exist; counted in
 * troupe_metrics_series_overflow_total), TR_ENOMEM.
 * Thread: any (a lock: not for the message path; keep the pointer).
 */
TR_API int tr_metric_register(tr_runtime *rt, const tr_metric_desc *desc, tr_metric **out);

/* Adds n to a counter. Errors: TR_EINVAL (NULL, not a counter). Any thread;
 * lock-free; on one of the runtime's loops, no atomic instruction. */
TR_API int tr_metric_inc(tr_metric *m, uint64_t n);
/* Sets a gauge / adds d (may be negative) to it. Errors: TR_EINVAL (NULL,
 * not a gauge, NaN). Any thread; one atomic operation. */
TR_API int tr_metric_set(tr_metric *m, double v);
TR_API int tr_metric_add(tr_metric *m, double d);
/* Counts one observation of v in a histogram. Errors: TR_EINVAL (NULL, not
 * a histogram, NaN). Any thread; lock-free; on one of the runtime's loops,
 * no atomic instruction. */
TR_API int tr_metric_observe(tr_metric *m, double v);

/* One series, as tr_metrics_collect reports it. Strings and arrays are
 * valid during the callback only. */
typedef struct tr_metric_sample {
    const char *name;   /* the family's name (a histogram's, without _bucket) */
    const char *help;
    tr_metric_type type;
    const char *labels; /* rendered: key="value",... (escaped), or "" */
    double value;       /* counters and gauges; histograms: the sum */
    uint64_t count;     /* histograms: observations */
    unsigned nbuckets;  /* histograms: bounds, +Inf not counted */
    const double *bounds;
    const uint64_t *cumulative; /* [nbuckets + 1]: observations <= bound;
                                   the last is +Inf (== count) */
} tr_metric_sample;

/* Called for each series; a non-zero return stops the collection. */
typedef int (*tr_metric_fn)(const tr_metric_sample *s, void *userdata);

/*
 * Reports every series of `rt`, family by family (all the series of one
 * name in a row): the runtime's own, then the registered ones. Returns 0,
 * the callback's non-zero value, or TR_EINVAL, TR_ENOMEM. Never blocks on
 * the loops: it reads their counters. Thread: any, an actor's handler too
 * (the callback must not register metrics: the registry's lock is held).
 */
TR_API int tr_metrics_collect(tr_runtime *rt, tr_metric_fn fn, void *userdata);

/*
 * The value of one series: its name and rendered labels as
 * tr_metrics_collect reports them (labels NULL: ""); histograms give their
 * count. Errors: TR_EINVAL, TR_ENOTFOUND, TR_ENOMEM. Thread: any.
 */
TR_API int tr_metrics_value(tr_runtime *rt, const char *name, const char *labels,
                            double *out);

/*
 * Every series in the Prometheus text exposition format 0.0.4 (the
 * Content-Type to serve it with is "text/plain; version=0.0.4"): # HELP and
 * # TYPE per family, histograms as cumulative _bucket{le="..."} lines
 * ending with le="+Inf", then _sum and _count. *text is NUL-terminated,
 * *len its length (len may be NULL); the caller frees it with free().
 * Errors: TR_EINVAL, TR_ENOMEM. Thread: any.
 */
TR_API int tr_metrics_text(tr_runtime *rt, char **text, size_t *len);

/* ------------------------------------------------------------------------ */
/* Reports: stuck calls, what runs when a stop hangs                        */
/* ------------------------------------------------------------------------ */

/*
 * Writes what the runtime is doing to `out`: each loop's current callback
 * (the actor, the message type, for how long), the actors alive (pid,
 * behaviour, registered name, stopping or not; at most `max_actors` lines,
 * 0: 100, then how many more), and the chains of calls pending longer than
 * stuck_call_ms as the loops last saw them (A -> B -> C, "cycle" when a
 * chain closes on itself). Reads what the loops publish: it never waits
 * for them, so it works while they are blocked or stopping. Errors:
 * TR_EINVAL. Thread: any (a signal handler: no).
 */
TR_API int tr_runtime_report(tr_runtime *rt, FILE *out, unsigned max_actors);

/* One stuck call as the loops last saw it (tr_runtime_stuck_calls). */
typedef struct tr_stuck_call {
    tr_pid caller;       /* the actor that waits */
    tr_pid callee;       /* the actor it waits on */
    tr_duration waited_ms; /* how long it had waited when last looked at */
    int in_cycle;        /* non-zero: following the chain from the callee leads back */
} tr_stuck_call;

/*
 * Copies up to `cap` stuck calls (pending longer than stuck_call_ms, as
 * published by each loop's last check) into out, and returns how many
 * there are (may exceed cap), or TR_EINVAL. Thread: any.
 */
TR_API int tr_runtime_stuck_calls(tr_runtime *rt, tr_stuck_call *out, unsigned cap);

/* ------------------------------------------------------------------------ */
/* Sockets                                                                  */
/* ------------------------------------------------------------------------ */

/*
 * Stream sockets owned by actors: TCP over IPv4 and IPv6, and Unix-domain
 * stream sockets, through one API (docs/networking.md). A socket lives on
 * its owner's loop; everything that happens to it arrives as a message to
 * the owner, in order; it closes when the owner exits, however it exits.
 *
 * Addresses are strings: "127.0.0.1:8080", "[::1]:8080", "localhost:8080",
 * "example.org:80" (tr_connect resolves names off the loop), ":8080" or
 * "*:8080" (every IPv4 interface), "[::]:8080" (every interface, both
 * families where the host allows), and "unix:/path/to.sock". Port 0 asks
 * for an ephemeral port (read it back with tr_sock_addr).
 *
 * Flow control, both ways (asyncio's streams and Erlang's {active, N}):
 *  - reads: the owner chooses continuous reads, the next N reads, or
 *    paused (tr_sock_read). Read data the owner has not handled yet counts
 *    against read_max; at the cap troupe stops reading, so the kernel's
 *    window pushes back on the peer. Nothing is buffered without bound.
 *  - writes: queued per socket; crossing write_high sends the owner
 *    TR_MSG_SOCK_THROTTLED, falling to write_low TR_MSG_SOCK_UNTHROTTLED;
 *    a write that would pass write_max fails with TR_EFULL (nothing of it
 *    is queued).
 *  - fairness: a socket reads at most read_budget bytes per loop turn.
 *
 * Every function here takes `self` and may only be called from self's
 * callbacks (TR_EWRONGTHREAD otherwise), for a socket self owns
 * (TR_ENOTSOCK otherwise: unknown, closed, or another actor's). A tr_sock
 * is a handle, never a pointer: a stale one is TR_ENOTSOCK.
 */
typedef uint64_t tr_sock;
#define TR_SOCK_NONE ((tr_sock)0)

/* Messages a socket's owner receives; msg->ref is always the socket. */
/* Bytes read: data/len. A message of at least TR_SOCK_KEEP_MIN bytes
 * carries the read buffer itself (TR_MSG_OWNED): the handler may keep it
 * with tr_msg_keep and free it later with free(). With a frame set
 * (tr_sock_frame), one message is one frame. */
#define TR_MSG_SOCK_DATA 0xffff0020u
/* The peer finished sending (end of stream). The socket stays open for
 * writes until the owner closes it. */
#define TR_MSG_SOCK_EOF 0xffff0021u
/* The socket was closed, not by its owner: data is an int32_t reason —
 * TR_ECONNRESET, TR_ETIMEDOUT (idle timeout), TR_ELIMIT (a frame larger
 * than allowed), TR_ESYSTEM (any other error). The handle is dead. */
#define TR_MSG_SOCK_CLOSED 0xffff0022u
/* A listener accepted a connection: ref is the new socket (owned by the
 * listener's owner, reads paused), data the listener's tr_sock. */
#define TR_MSG_SOCK_ACCEPTED 0xffff0023u
/* A tr_connect finished: data is an int32_t status, 0 (connected) or
 * TR_ECONNREFUSED, TR_ETIMEDOUT, TR_ENOHOST, TR_ESYSTEM (the handle is
 * then dead). */
#define TR_MSG_SOCK_CONNECTED 0xffff0024u
/* The write queue rose to write_high / fell to write_low. */
#define TR_MSG_SOCK_THROTTLED 0xffff0025u
#define TR_MSG_SOCK_UNTHROTTLED 0xffff0026u
/* Another actor gave self a socket (tr_sock_give): ref is the socket (its
 * handle on self's loop), from the giver. Its read mode is as it was. */
#define TR_MSG_SOCK_GIVEN 0xffff0027u
/* The last of "the next N reads" was delivered: reads are paused. */
#define TR_MSG_SOCK_PASSIVE 0xffff0028u

/* A read of this many bytes or more arrives as an owned buffer (the read
 * buffer itself, handed over); smaller ones are copied into pooled
 * messages. */
#define TR_SOCK_KEEP_MIN 32768u

/* Per-socket options. Zero is the default for every field. */
typedef struct tr_sock_opts {
    size_t write_high;   /* throttle above: 0 = 64 KiB */
    size_t write_low;    /* unthrottle at or below: 0 = 16 KiB (< write_high) */
    size_t write_max;    /* a write past it is TR_EFULL: 0 = 1 MiB (>= write_high) */
    size_t read_budget;  /* bytes read per loop turn: 0 = 64 KiB */
    size_t read_max;     /* bytes read but not handled (queued for the owner,
                          * or a frame being gathered): 0 = 256 KiB */
    tr_duration idle_ms; /* no byte either way for this long closes the socket
                          * (TR_MSG_SOCK_CLOSED, TR_ETIMEDOUT): 0 or
                          * TR_DEFAULT = TR_INFINITE (no idle timeout) */
    tr_duration linger_ms; /* how long writes still queued when the socket
                          * closes (tr_sock_close, owner exit) may take to
                          * drain before it is reset: 0 or TR_DEFAULT = 5000 */
    int nagle;           /* 1: leave Nagle's algorithm on; 0: TCP_NODELAY */
    uint32_t sndbuf;     /* the kernel's send buffer (SO_SNDBUF), bytes: 0 =
                          * the kernel's default, which grows by itself;
                          * set, it is fixed (Linux doubles the value) —
                          * bounds the kernel memory per connection, and
                          * how much it takes beyond write_max */
    uint32_t rcvbuf;     /* the kernel's receive buffer (SO_RCVBUF), as sndbuf */
} tr_sock_opts;

typedef struct tr_listen_opts {
    tr_sock_opts conn;   /* the options of every accepted connection */
    int backlog;         /* listen(2)'s backlog: 0 = 511 */
    uint32_t max_conns;  /* connections of this listener open at once; at the
                          * limit accepting pauses, and resumes below it:
                          * 0 = 10000 */
    int reuseport;       /* 1: SO_REUSEPORT, so that one listener per loop can
                          * share the address (TCP only) */
} tr_listen_opts;

typedef struct tr_connect_opts {
    tr_sock_opts conn;
    tr_duration timeout_ms; /* resolving and connecting: 0 or TR_DEFAULT =
                             * 30000; TR_INFINITE: the system's own limit */
} tr_connect_opts;

/*
 * Listens on `addr` (see above; host names other than "localhost" are
 * TR_EINVAL: a listener binds a numeric address, without a lookup). Each
 * accepted connection arrives as TR_MSG_SOCK_ACCEPTED. Closing the
 * listener (tr_sock_close, self's exit) leaves its connections open.
 * Errors: TR_EINVAL (NULL, a malformed address or option), TR_EADDRINUSE,
 * TR_ESYSTEM (the system refused: permissions, no such interface),
 * TR_ENOMEM, TR_EWRONGTHREAD, TR_ESTOPPED (self is exiting). Does not wait.
 */
TR_API int tr_listen(tr_actor *self, const char *addr, const tr_listen_opts *opts,
                     tr_sock *out);

/*
 * Connects to `addr`, resolving a host name with uv_getaddrinfo (libuv's
 * own thread pool), never on the loop. *out is the socket at once;
 * TR_MSG_SOCK_CONNECTED says how it went, within timeout_ms. Writes made
 * before it are queued and sent once connected. Errors: TR_EINVAL,
 * TR_ENOMEM, TR_EWRONGTHREAD, TR_ESTOPPED. Does not wait.
 */
TR_API int tr_connect(tr_actor *self, const char *addr, const tr_connect_opts *opts,
                      tr_sock *out);

/* tr_sock_read's modes besides "the next n reads" (n > 0). */
#define TR_SOCK_PAUSE 0
#define TR_SOCK_CONTINUOUS (-1)

/*
 * Sets how `s` reads: TR_SOCK_CONTINUOUS, TR_SOCK_PAUSE, or n > 0: the
 * next n messages (chunks, or frames), then TR_MSG_SOCK_PASSIVE and
 * paused. A new socket (accepted, connected) starts paused. Reading also
 * pauses by itself while read_max bytes wait for the owner. Errors:
 * TR_EINVAL (n < -1; a listener), TR_ENOTSOCK, TR_EWRONGTHREAD.
 */
TR_API int tr_sock_read(tr_actor *self, tr_sock s, int n);

/*
 * Framing: how read bytes are cut into TR_MSG_SOCK_DATA messages.
 *  - tr_sock_frame(self, s, 0, NULL, 0): raw chunks, as read (the default);
 *  - tr_sock_frame(self, s, n, NULL, 0): exactly n bytes per message;
 *  - tr_sock_frame(self, s, max, delim, dlen): up to and including the
 *    delimiter (1 .. 8 bytes), at most `max` bytes with it; a peer that
 *    sends `max` bytes without one has its socket closed with TR_ELIMIT.
 * The setting holds until changed; bytes already gathered are cut by the
 * new setting. A frame larger than read_max is TR_EINVAL. End of stream
 * delivers an incomplete frame's bytes before TR_MSG_SOCK_EOF. Errors:
 * TR_EINVAL, TR_ENOTSOCK, TR_EWRONGTHREAD.
 */
TR_API int tr_sock_frame(tr_actor *self, tr_sock s, size_t max, const void *delim,
                         size_t dlen);

/* A piece of a vectored write. */
typedef struct tr_iov {
    const void *base;
    size_t len;
} tr_iov;

/*
 * Queues bytes for `s`: tr_sock_write copies `data`; tr_sock_writev copies
 * `n` pieces as one write; tr_sock_write_owned takes `buf` (malloc'd, or
 * freed by free_fn) without copying — on success the runtime owns it and
 * frees it once written or dropped; on failure the caller still does. What
 * the kernel takes at once is written at once; the rest waits in order.
 * A zero-length write does nothing. Errors: TR_EFULL (the queue would pass
 * write_max: nothing is queued), TR_ECLOSED (the socket was shut down for
 * writing), TR_EINVAL (NULL, a listener), TR_ENOTSOCK, TR_ENOMEM,
 * TR_EWRONGTHREAD.
 */
TR_API int tr_sock_write(tr_actor *self, tr_sock s, const void *data, size_t len);
TR_API int tr_sock_writev(tr_actor *self, tr_sock s, const tr_iov *iov, unsigned n);
TR_API int tr_sock_write_owned(tr_actor *self, tr_sock s, void *buf, size_t len,
                               tr_free_fn free_fn);

/*
 * Ends the writing half once the queued writes are out (the peer reads end
 * of stream); reading goes on. Errors: TR_EINVAL (a listener), TR_ENOTSOCK,
 * TR_EWRONGTHREAD.
 */
TR_API int tr_sock_shutdown(tr_actor *self, tr_sock s);

/*
 * Closes `s`: no message about it arrives afterwards (not even one already
 * queued); queued writes still go out within linger_ms, then the
 * connection ends. A listener stops accepting at once. Errors:
 * TR_ENOTSOCK, TR_EWRONGTHREAD.
 */
TR_API int tr_sock_close(tr_actor *self, tr_sock s);

/*
 * Gives `s` to the actor `to`, which receives TR_MSG_SOCK_GIVEN with the
 * socket's handle for it (on another loop, a new handle). After success
 * self no longer owns `s`. Only while no read data waits for self
 * (read_held 0: give a socket before it reads, as an acceptor does, or
 * once paused and drained) and, to an actor of another loop, no write is
 * pending: TR_EBUSY otherwise (the connection moves by its file
 * descriptor). If `to` ends before it receives the socket, the socket is
 * closed. Errors: TR_EINVAL (a listener, to == self), TR_ENOACTOR,
 * TR_EBUSY, TR_ENOTSOCK, TR_ENOMEM, TR_EWRONGTHREAD.
 */
TR_API int tr_sock_give(tr_actor *self, tr_sock s, tr_pid to);

/*
 * Writes `s`'s local (peer == 0) or peer (peer != 0) address into buf, as
 * the strings tr_listen and tr_connect take ("127.0.0.1:41234",
 * "[::1]:80", "unix:/tmp/x.sock"). Errors: TR_EINVAL (NULL, len too
 * small for it), TR_ENOTSOCK, TR_ESYSTEM (not connected), TR_EWRONGTHREAD.
 */
TR_API int tr_sock_addr(tr_actor *self, tr_sock s, int peer, char *buf, size_t len);

typedef struct tr_sock_info {
    uint64_t bytes_in, bytes_out; /* read from / written to the kernel */
    size_t write_queued;          /* bytes queued, not yet written */
    size_t read_held;             /* bytes read, not yet handled by the owner */
    uint32_t conns;               /* a listener: its connections open now */
    int listener;                 /* 1 for a listener */
    int throttled;                /* 1 between THROTTLED and UNTHROTTLED */
    int reading;                  /* 1 while the socket is reading */
} tr_sock_info;

/* `s`'s counters and state. Errors: TR_EINVAL, TR_ENOTSOCK,
 * TR_EWRONGTHREAD. */
TR_API int tr_sock_info_get(tr_actor *self, tr_sock s, tr_sock_info *out);

/* ------------------------------------------------------------------------ */
/* HTTP                                                                     */
/* ------------------------------------------------------------------------ */

/*
 * A small HTTP/1.1 server whose routes lead to actors (docs/http.md). It is
 * built on the sockets above and on calls: a server actor owns the
 * listener; each connection is an actor, the server's child, that parses
 * requests (Debian's http-parser) and hands each one to its route's actor
 * as a call (tr_call) of the route's type. The handler reads the request
 * with tr_http_request_get and answers it — at once or later, as tr_reply
 * allows — with tr_http_reply, tr_http_respond or tr_http_reply_stream
 * (server-sent events). The connection writes the answers in the order of
 * the requests (pipelining), one call in flight at a time.
 *
 * What the server answers by itself: 400 (unparsable request, then close),
 * 404 (no route's path matches), 405 (a path matches, its method does
 * not), 408 (no complete request within idle_timeout_ms, then close), 413
 * (body over max_body_bytes, or the request larger than the runtime's
 * max_payload, then close), 431 (headers over max_header_bytes or more
 * than TR_HTTP_HEADERS_MAX of them, then close), 502 (the handler ended
 * while handling the request, or answered with something that is not an
 * HTTP response), 503 (no handler actor alive: its name is not registered,
 * or its pid has ended; also past max_connections, then close), 504 (no
 * answer within request_timeout_ms). Every response has a Content-Length,
 * except a stream's, which ends with the connection.
 *
 * Not done: TLS, HTTP/2, chunked responses, Upgrade (a request that asks
 * for one is answered as any other, then the connection closes).
 */

/* Most headers a request may have (more: 431). */
#define TR_HTTP_HEADERS_MAX 64

/*
 * A route: requests whose method and path match go to an actor, as calls
 * of `type`. Routes are tried in order; the first match wins.
 *  - method: "GET", "POST", ... (exact, case-sensitive, as HTTP says);
 *    NULL: any method. A "GET" route also answers HEAD (the body is left
 *    out of the response, its Content-Length kept).
 *  - path: starts with '/'; matched exactly against the request's path
 *    (without its query), or, if it ends in '*', as a prefix ("/api/"
 *    followed by '*' matches "/api/" and "/api/x/y"; "/" and '*' match
 *    everything).
 *  - name: the handler's registered name, looked up with tr_whereis for
 *    each request, so a handler restarted by its supervisor (and
 *    registered again) keeps receiving; or NULL and
 *  - pid: a fixed handler. Exactly one of name and pid is set.
 *  - type: the user message type (0 .. TR_MSG_USER_MAX) the handler
 *    receives; the request is a call (TR_MSG_REQUEST in msg->flags).
 */
typedef struct tr_http_route {
    const char *method;
    const char *path;
    const char *name;
    tr_pid pid;
    uint32_t type;
} tr_http_route;

/*
 * A server's options. Zero is the default for every field; the strings
 * and the routes are copied by the call that takes them (the caller's
 * arrays need not outlive it).
 */
typedef struct tr_http_options {
    /* Where to listen (see Sockets): NULL: "127.0.0.1:8080" — loopback:
     * listening on other interfaces is an explicit choice ("0.0.0.0:8080",
     * "[::]:8080"). Port 0: an ephemeral port (the serve calls return the
     * real address). */
    const char *addr;
    const tr_http_route *routes; /* may be NULL when nroutes is 0 (all 404) */
    unsigned nroutes;
    /* The request line and the headers, in bytes: 0: 8 KiB; at most
     * 80 KiB (http-parser's own limit); over it: 431 and close. */
    size_t max_header_bytes;
    /* A request's body (Content-Length, or chunks decoded): 0: 1 MiB;
     * over it: 413 and close. The request as the handler receives it
     * (body, headers and their table) must also fit in the runtime's
     * max_payload (1 MiB by default): 413 otherwise. */
    size_t max_body_bytes;
    /* How long a handler may take to answer: 0 or TR_DEFAULT: 30 s, then
     * 504; TR_INFINITE: no limit (the handler's end still ends the call). */
    tr_duration request_timeout_ms;
    /* How long a connection may wait for its next complete request after
     * its last response (or its accept): 0 or TR_DEFAULT: 60 s; then it
     * closes (with 408 if part of a request had come). It also bounds how
     * long a client may take to send one request, so a client that
     * trickles bytes cannot hold a connection. TR_INFINITE: no limit. */
    tr_duration idle_timeout_ms;
    /* Connections open at once: 0: 1024; one more is answered 503 and
     * closed. */
    unsigned max_connections;
    /* Requests one connection has read and not yet answered (pipelining):
     * 0: 8; at the cap the connection stops reading until the answers
     * catch up, so a client cannot make the server buffer without bound. */
    unsigned max_pipeline;
    /* A connection's write queue, in bytes (tr_sock_opts.write_max): 0:
     * 1 MiB. A response or an event stream that would pass it (a client
     * that does not read) closes the connection, counted in
     * tr_http_stats.slow_closed; a response is never larger than it. */
    size_t write_max_bytes;
    /* tr_rt_http_serve only: the server's loop (TR_LOOP_DEFAULT: round
     * robin, or TR_LOOP(n)); its connections live on the same loop. An
     * actor's tr_http_serve puts the server on its own loop. */
    int loop;
} tr_http_options;

/* The defaults (all zero). Any thread. */
TR_API void tr_http_options_init(tr_http_options *opts);

/*
 * Starts a server as a child of `self` (so it ends when self ends: its
 * listener closes and its connections are stopped). Listens on opts->addr
 * in self first, so that a bad or taken address is an error here and now,
 * and a port 0 is resolved to a real one; then spawns the server actor on
 * self's loop, which listens on that address (a TCP address: the check's
 * listener is closed first; a Unix socket is listened on by the server
 * only — its errors end the server, see below). `server` (may be NULL)
 * receives the server's pid, `addr_out` (may be NULL with cap 0) the
 * bound address as a string ("127.0.0.1:41234", "unix:/path").
 * Ownership: everything in opts is copied.
 * The address is free between the check and the server's init (the next
 * messages of self's loop): if another socket takes it in between, the
 * server ends in its init with TR_EADDRINUSE — monitor *server to learn
 * it. (A listener cannot be handed to another actor: see docs/http.md.) Stopping the server: tr_signal_exit with
 * TR_EXIT_SHUTDOWN, or the end of self.
 * Errors: TR_EINVAL (NULL self or opts, a bad option or route, addr_out
 * NULL with cap > 0), TR_ELIMIT (cap too small for the address: nothing
 * was started), TR_EADDRINUSE, TR_ESYSTEM, those of tr_spawn (TR_ESTOPPED,
 * TR_ELIMIT, TR_EMSGSIZE: the copied routes pass max_payload, TR_ENOMEM),
 * TR_EWRONGTHREAD. Does not wait. Thread: `self`'s callbacks.
 */
TR_API int tr_http_serve(tr_actor *self, const tr_http_options *opts, tr_pid *server,
                         char *addr_out, size_t cap);

/*
 * As tr_http_serve, from a plain thread: the server is a top-level actor
 * (stopped by tr_runtime_stop, or tr_signal_exit). Blocks until the server
 * listens or has failed, for at most `timeout_ms` (TR_DEFAULT: 5000;
 * TR_INFINITE: no limit; then the server is stopped and the call returns
 * TR_ETIMEDOUT). The runtime must be started. Returns the server's error
 * when its listen failed (TR_EADDRINUSE, TR_ESYSTEM, TR_EINVAL for an
 * address it cannot listen on). Errors: as tr_http_serve and tr_rt_call
 * (TR_EINVAL for NULL rt, TR_ENOTSTARTED, TR_ESTOPPED, TR_EWRONGTHREAD on
 * a loop thread). Thread: any plain thread.
 */
TR_API int tr_rt_http_serve(tr_runtime *rt, const tr_http_options *opts,
                            tr_duration timeout_ms, tr_pid *server, char *addr_out,
                            size_t cap);

/* A header: name and value, NUL-terminated. */
typedef struct tr_http_field {
    const char *name;
    const char *value;
} tr_http_field;

/*
 * A request as its handler sees it. Every pointer points into msg->data
 * (NUL-terminated strings; the body is followed by a NUL that body_len
 * does not count): valid while the handler handles msg, or as long as a
 * kept copy of its data.
 */
typedef struct tr_http_request {
    const char *method;  /* "GET", "POST", ... */
    const char *path;    /* "/counter/increment": as sent, not percent-decoded */
    const char *query;   /* "by=3" (after the '?'), "" when there is none */
    int version_minor;   /* 1: HTTP/1.1, 0: HTTP/1.0 */
    unsigned nheaders;
    tr_http_field headers[TR_HTTP_HEADERS_MAX]; /* in order, names as sent */
    const void *body;    /* the decoded body (chunks joined) */
    size_t body_len;
    tr_pid conn;         /* the connection actor (see tr_http_stream) */
} tr_http_request;

/*
 * Reads the request that `msg` carries (a call from an HTTP connection)
 * into *out. Errors: TR_EINVAL (NULL, or msg is not an HTTP request: the
 * check is of its layout, so a handler that also takes other calls of the
 * same type can tell them apart). Any thread; reads only msg.
 */
TR_API int tr_http_request_get(const tr_msg *msg, tr_http_request *out);

/* The value of the request's first header named `name` (ASCII case
 * insensitive), or NULL. Any thread. */
TR_API const char *tr_http_header(const tr_http_request *r, const char *name);

/*
 * Copies the query parameter `name` ("by" in "?by=3&x=1"), percent-decoded
 * ('+' as a space), into buf with a NUL, and returns its length. A
 * parameter without '=' has the empty value. Errors: TR_EINVAL (NULL,
 * cap 0, or a malformed escape), TR_ENOTFOUND (no such parameter),
 * TR_ELIMIT (it does not fit in cap; buf's content is then unspecified).
 * Any thread.
 */
TR_API int tr_http_query_param(const tr_http_request *r, const char *name, char *buf,
                               size_t cap);

/*
 * A response. status: 200 .. 599 (204 and 304 without a body).
 * content_type: NULL for none. headers: extra header lines (nheaders of
 * them; names are HTTP tokens, values without CR or LF); Content-Length,
 * Transfer-Encoding and Connection are the server's (TR_EINVAL).
 */
typedef struct tr_http_response {
    int status;
    const char *content_type;
    const tr_http_field *headers;
    unsigned nheaders;
    const void *body;
    size_t len;
} tr_http_response;

/*
 * Answers the HTTP request `req` (the call's message, now or kept from
 * earlier as tr_reply allows): a tr_reply whose payload encodes the
 * response; the connection writes it, in request order. Copies
 * everything. Errors: TR_EINVAL (NULL, not an HTTP request, a bad status
 * or header), TR_EMSGSIZE (the response passes max_payload: answer again,
 * smaller), and those of tr_reply (TR_ENOACTOR: the connection has ended,
 * its client gone). Thread: `self`'s callbacks.
 */
TR_API int tr_http_respond(tr_actor *self, const tr_msg *req, const tr_http_response *resp);

/* tr_http_respond with no extra headers. */
TR_API int tr_http_reply(tr_actor *self, const tr_msg *req, int status,
                         const char *content_type, const void *body, size_t len);

/*
 * A server-sent event stream: the connection actor's pid and the stream's
 * id on it. A plain value: copy it, send it to another actor; any actor
 * may send on it (tr_http_stream_send).
 */
typedef struct tr_http_stream {
    tr_pid conn;
    uint64_t id;
} tr_http_stream;

/*
 * Answers `req` with 200 and Content-Type text/event-stream, without a
 * Content-Length: the connection stays open for the events sent with
 * tr_http_stream_send until tr_http_stream_close, the client's leaving, or
 * the connection's write queue passing write_max_bytes (a client that does
 * not read: the connection closes, counted). Requests the client
 * pipelined after this one are not answered. `extra_headers`: NULL, or
 * header lines, each ending in "\r\n" (validated as for tr_http_respond).
 * *out names the stream. The connection actor ends when its client
 * leaves: tr_monitor(out->conn) to learn it; sends after that fail.
 * Errors: as tr_http_respond. Thread: `self`'s callbacks.
 */
TR_API int tr_http_reply_stream(tr_actor *self, const tr_msg *req, const char *extra_headers,
                                tr_http_stream *out);

/*
 * Sends one event on `s`: "event: <event>" when event is not NULL, then
 * `data` as "data:" lines (split at each "\n"; a "\r\n" counts as one),
 * then the blank line that ends an event. Copies. Events one actor sends
 * arrive in order. Errors: TR_EINVAL (NULL, an event name with CR or LF),
 * TR_ENOACTOR (the connection has ended: its client left, or it was
 * closed), TR_EMSGSIZE, those of tr_send. A send that succeeds to a
 * connection that ends before writing it is dropped. Thread: `self`'s
 * callbacks.
 */
TR_API int tr_http_stream_send(tr_actor *self, const tr_http_stream *s, const char *event,
                               const void *data, size_t len);

/* Closes the stream: what was sent before goes out, then the connection
 * closes. Errors: as tr_http_stream_send. Thread: `self`'s callbacks. */
TR_API int tr_http_stream_close(tr_actor *self, const tr_http_stream *s);

/* A server's counters since it started. */
typedef struct tr_http_stats {
    uint64_t accepted;     /* connections accepted */
    uint64_t open;         /* connections open now */
    uint64_t refused;      /* answered 503 past max_connections */
    uint64_t requests;     /* complete requests parsed */
    uint64_t responses[6]; /* responses written by class: [2] 2xx ... [5] 5xx */
    uint64_t bad;          /* 400, 413, 431: the client's fault, then close */
    uint64_t timeouts;     /* 504 */
    uint64_t slow_closed;  /* closed because the write queue would pass its cap */
    uint64_t streams;      /* event streams opened */
} tr_http_stats;

/* A call of this type to a server (tr_call, tr_rt_call) is answered with
 * its tr_http_stats. */
#define TR_HTTP_MSG_STATS 0xfffe0100u

/* The server's counters, by a tr_rt_call of TR_HTTP_MSG_STATS (timeout
 * 5000 ms). Errors: TR_EINVAL, TR_ENOACTOR, TR_EEXITED, those of
 * tr_rt_call. Thread: any plain thread. */
TR_API int tr_rt_http_stats(tr_runtime *rt, tr_pid server, tr_http_stats *out);

/* ------------------------------------------------------------------------ */
/* Observability endpoint                                                   */
/* ------------------------------------------------------------------------ */

/*
 * An HTTP endpoint that serves the runtime's view of itself
 * (docs/observability.md), on troupe's own HTTP server:
 *   GET /metrics    every metric, Prometheus text format 0.0.4
 *   GET /tree.json  the supervision tree: per actor its behaviour, name,
 *                   loop, state, mailbox depth, messages handled and
 *                   restarts (walked on the loops, between messages, at
 *                   most tree_max actors; the total is reported)
 *   GET /           a live page: the tree, mailboxes, restarts, handled
 *                   rates, the hottest behaviours, each loop's
 *                   utilisation over the last minute, stuck calls; pushed
 *                   by server-sent events (GET /events); no external
 *                   script or font: it works offline
 * Nothing is authenticated: the endpoint listens on 127.0.0.1 unless told
 * otherwise; expose it further only behind something that authenticates.
 */
typedef struct tr_observe_options {
    /* Where to listen, as tr_listen takes it. NULL: "127.0.0.1:9464"
     * (the port OpenTelemetry's Prometheus exporters use); port 0: an
     * ephemeral port (read it from addr_out). */
    const char *addr;
    /* Actors /tree.json and the page show at most. 0: 1000. */
    unsigned tree_max;
    /* How often the live page is pushed a new view. 0 or TR_DEFAULT:
     * 1000 ms; at least 100 ms. */
    tr_duration interval_ms;
} tr_observe_options;

/*
 * Starts the endpoint: a top-level actor (registered as "troupe.observe")
 * and its HTTP server, both stopped with the runtime. Blocks until the
 * server listens or failed, for at most 5 s. `addr_out` (may be NULL with
 * cap 0) receives the bound address ("127.0.0.1:9464"). One endpoint per
 * runtime: a second is TR_EALREADY.
 * Errors: TR_EINVAL (NULL rt, bad options), TR_ENOTSTARTED, TR_EALREADY,
 * TR_EADDRINUSE, those of tr_rt_http_serve. Thread: any plain thread.
 */
TR_API int tr_rt_observe(tr_runtime *rt, const tr_observe_options *opts, char *addr_out,
                         size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* TROUPE_H */
