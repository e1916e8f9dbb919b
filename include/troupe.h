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
 *  - Threads: functions that take a `tr_actor *self` may only be called from
 *    that actor's own callbacks (init, receive, terminate), on its home loop;
 *    anything else returns TR_EWRONGTHREAD. Functions named tr_rt_* and the
 *    tr_runtime_* functions say which threads may call them.
 *  - Ownership: a send copies the payload; the caller keeps its buffer. A
 *    receiver owns a message only until its handler returns.
 *  - Pids are 64-bit handles (slot index + generation), never pointers. A
 *    pid of an exited actor stays safe to use: it yields TR_ENOACTOR.
 */
#ifndef TROUPE_H
#define TROUPE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TROUPE_VERSION_MAJOR 0
#define TROUPE_VERSION_MINOR 1
#define TROUPE_VERSION_PATCH 0
#define TROUPE_VERSION_STRING "0.1.0"
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
    X(EFAILED, -15, "the actor failed")

typedef enum tr_error {
    TR_OK = 0,
#define TR__ERR_ENUM(name, value, text) TR_##name = (value),
    TR_ERRNO_MAP(TR__ERR_ENUM)
#undef TR__ERR_ENUM
} tr_error;

/* A constant, human-readable text for `code` (0 or a TR_E* code); "unknown
 * error" for any other value. Any thread. Never NULL. */
TR_API const char *tr_strerror(int code);

/* The constant name of `code`, e.g. "TR_ENOACTOR"; "TR_OK" for 0 and
 * "TR_E?" for an unknown value. Any thread. Never NULL. */
TR_API const char *tr_err_name(int code);

/* ------------------------------------------------------------------------ */
/* Handles                                                                  */
/* ------------------------------------------------------------------------ */

/* An actor's id: (generation << 32) | slot index. 0 is never a live actor. */
typedef uint64_t tr_pid;
#define TR_PID_NONE ((tr_pid)0)
#define TR_PID_INDEX(pid) ((uint32_t)((pid) & 0xffffffffu))
#define TR_PID_GEN(pid) ((uint32_t)((pid) >> 32))
/* printf("actor " TR_PID_FMT "\n", TR_PID_ARGS(pid)) prints "actor <12.3>". */
#define TR_PID_FMT "<%u.%u>"
#define TR_PID_ARGS(pid) (unsigned)TR_PID_INDEX(pid), (unsigned)TR_PID_GEN(pid)

/* The runtime: loops, actors, pools. Opaque. */
typedef struct tr_runtime tr_runtime;

/* An actor as seen from inside its own callbacks ("self"). Opaque; valid only
 * for the duration of the callback it was passed to. */
typedef struct tr_actor tr_actor;

/* ------------------------------------------------------------------------ */
/* Messages                                                                 */
/* ------------------------------------------------------------------------ */

/*
 * A message as a handler sees it. `data` points to `len` bytes owned by the
 * runtime and valid until the handler returns (copy what you keep). `from`
 * is the sending actor, or TR_PID_NONE for a send from a plain thread.
 */
typedef struct tr_msg {
    tr_pid from;
    uint32_t type;
    uint32_t len;
    const void *data;
} tr_msg;

/* User message types are 0 .. TR_MSG_USER_MAX; the range above is reserved
 * for the runtime's own notices (replies, timeouts, DOWN, ...). */
#define TR_MSG_USER_MAX 0xfffeffffu

/* ------------------------------------------------------------------------ */
/* Exit reasons                                                             */
/* ------------------------------------------------------------------------ */

typedef enum tr_exit_kind {
    TR_EXIT_NORMAL = 0, /* finished its work */
    TR_EXIT_SHUTDOWN,   /* asked to stop (parent exit, runtime stop) */
    TR_EXIT_KILLED,     /* killed: stopped without being asked */
    TR_EXIT_ERROR       /* failed: a handler returned an error, or tr_exit_error */
} tr_exit_kind;

/*
 * Why an actor ended. For TR_EXIT_ERROR, `code` is the error (a TR_E* code or
 * the application's own negative number) and `text` a description (never
 * NULL; owned by the runtime, valid during the callback that sees it). For
 * the other kinds, code is 0 and text is a constant name of the kind.
 */
typedef struct tr_exit_reason {
    tr_exit_kind kind;
    int code;
    const char *text;
} tr_exit_reason;

/* "normal", "shutdown", "killed", "error"; "?" otherwise. Any thread. */
TR_API const char *tr_exit_kind_name(tr_exit_kind kind);

/* ------------------------------------------------------------------------ */
/* Behaviours                                                               */
/* ------------------------------------------------------------------------ */

/*
 * Handle one message. Runs on the actor's home loop, one message at a time:
 * `state` needs no locks. Return 0 to keep running; any other value ends the
 * actor with TR_EXIT_ERROR and that value as its code (use negative codes).
 */
typedef int (*tr_receive_fn)(tr_actor *self, void *state, const tr_msg *msg);

/*
 * What an actor does. The behaviour must outlive every actor spawned with it
 * (a `static const` is the usual choice).
 *
 *  - name: a label for crash reports and introspection (may be NULL).
 *  - state_size: bytes of per-actor state the runtime allocates, zeroed,
 *    before init and frees after terminate. 0: no state (state is NULL).
 *  - init (optional): runs first, on the home loop, with a copy of the spawn
 *    argument that is valid during the call. A non-zero return ends the actor
 *    with TR_EXIT_ERROR; terminate is then not called.
 *  - receive (required): handles each message.
 *  - terminate (optional): runs once when the actor ends after a successful
 *    init, after its children have ended; sends are still allowed.
 */
typedef struct tr_behavior {
    const char *name;
    size_t state_size;
    int (*init)(tr_actor *self, void *state, const void *arg, size_t arg_len);
    tr_receive_fn receive;
    void (*terminate)(tr_actor *self, void *state, const tr_exit_reason *reason);
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
 * Called on whichever loop thread produced the line, possibly several at
 * once: it must be thread-safe. `line` is valid during the call only.
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
    /* Most actors alive at once (pids are reused after exit). 0: 1 << 26. */
    uint32_t max_actors;
    /* How long an idle loop keeps looking for mail before it parks in the
     * kernel, in microseconds. Waking a parked loop costs tens of
     * microseconds; spinning costs CPU. 0: 50. */
    unsigned spin_us;
    /* Where crash reports and other log lines go. NULL: one line to stderr. */
    tr_log_fn log;
    void *log_userdata;
} tr_runtime_options;

/* Fills `opts` with the defaults (all zero means default). Any thread. */
TR_API void tr_runtime_options_init(tr_runtime_options *opts);

/*
 * Creates a runtime (loops are not running yet). `opts` may be NULL for the
 * defaults. On success *out owns the runtime until tr_runtime_free.
 * Errors: TR_EINVAL (out NULL or an option out of range), TR_ENOMEM,
 * TR_ESYSTEM (libuv could not create a loop).
 * Thread: any plain thread; that thread may then spawn, send, stop and wait.
 */
TR_API int tr_runtime_create(tr_runtime **out, const tr_runtime_options *opts);

/*
 * Starts one thread per loop. Actors spawned before start run from now on.
 * Errors: TR_EINVAL (NULL), TR_EALREADY (started before), TR_ESYSTEM.
 * Thread: any plain thread (not a loop thread of this runtime).
 */
TR_API int tr_runtime_start(tr_runtime *rt);

/*
 * Asks the runtime to stop: the root stops its children newest first, each
 * stops its own subtree first, and the loops end when the tree is gone.
 * Returns at once; tr_runtime_wait blocks until the stop is complete.
 * Errors: TR_EINVAL (NULL), TR_ENOTSTARTED, TR_EALREADY (stop was already
 * requested). Thread: any, including actor handlers.
 */
TR_API int tr_runtime_stop(tr_runtime *rt);

/*
 * Blocks until the runtime has stopped (after tr_runtime_stop, from any
 * thread or actor). Returns at once if it has stopped already.
 * Errors: TR_EINVAL, TR_ENOTSTARTED, TR_EWRONGTHREAD (called on one of this
 * runtime's loop threads, where it would deadlock).
 */
TR_API int tr_runtime_wait(tr_runtime *rt);

/*
 * Stops the runtime if it is running, waits for it, joins its threads and
 * frees every byte it allocated, including messages still queued. `rt` is
 * invalid afterwards. NULL is a no-op returning 0.
 * Errors: TR_EWRONGTHREAD (called on one of this runtime's loop threads;
 * nothing is freed). Thread: the plain threads only.
 */
TR_API int tr_runtime_free(tr_runtime *rt);

/* Number of loops of `rt` (0 for NULL). Any thread. */
TR_API unsigned tr_runtime_loops(const tr_runtime *rt);

/* ------------------------------------------------------------------------ */
/* Spawning                                                                 */
/* ------------------------------------------------------------------------ */

/* Placement for tr_spawn_opts.loop. */
#define TR_LOOP_DEFAULT (-1)     /* actor spawner: its own loop; thread: round-robin */
#define TR_LOOP_ROUND_ROBIN (-2) /* the next loop in turn */

typedef struct tr_spawn_opts {
    /* TR_LOOP_DEFAULT, TR_LOOP_ROUND_ROBIN, or a loop index 0..loops-1.
     * Actors never migrate. */
    int loop;
    /* Start argument: copied, handed to init. May be NULL with length 0. */
    const void *arg;
    size_t arg_len;
} tr_spawn_opts;

/* The defaults: TR_LOOP_DEFAULT placement, no argument. Any thread. */
TR_API void tr_spawn_opts_init(tr_spawn_opts *opts);

/*
 * Spawns a child of `self`. The child's init runs later, on its own loop;
 * the pid is usable at once (messages sent to it queue behind its init).
 * `opts` may be NULL. The child is stopped before `self` ends.
 * Errors: TR_EINVAL (NULL self/behaviour/out, no receive callback, bad
 * loop index, arg NULL with arg_len > 0), TR_EMSGSIZE (arg_len over
 * max_payload), TR_EWRONGTHREAD, TR_ESTOPPED (`self` is exiting),
 * TR_ELIMIT (max_actors alive), TR_ENOMEM.
 * Thread: `self`'s callbacks.
 */
TR_API int tr_spawn(tr_actor *self, const tr_behavior *behavior,
                    const tr_spawn_opts *opts, tr_pid *out);

/*
 * Spawns a top-level actor (a child of the runtime's root) from a plain
 * thread; TR_LOOP_DEFAULT means round-robin. Allowed before tr_runtime_start
 * (it runs once started). Errors: as tr_spawn, and TR_ESTOPPED once a stop
 * was requested. Thread: any.
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
 * TR_EWRONGTHREAD, TR_ESTOPPED (the runtime has stopped), TR_ENOMEM.
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
 * exit is reported through the log callback.
 * Errors: TR_EINVAL (NULL self, code 0), TR_EWRONGTHREAD.
 */
TR_API int tr_exit_error(tr_actor *self, int code, const char *text);

/*
 * Sends an exit signal to `pid`: TR_EXIT_SHUTDOWN or TR_EXIT_KILLED. The
 * signal takes effect at the target's next message boundary (C cannot
 * pre-empt a running handler), ahead of mail already queued, which is then
 * dropped. A stronger signal (KILLED) overrides a weaker one not yet acted on.
 * Errors: TR_EINVAL (NULL runtime, other kinds, the root's pid: use
 * tr_runtime_stop), TR_ENOACTOR, TR_ESTOPPED, TR_ENOMEM. Thread: any.
 */
TR_API int tr_signal_exit(tr_runtime *rt, tr_pid pid, tr_exit_kind kind);

#ifdef __cplusplus
}
#endif

#endif /* TROUPE_H */
