/*
 * subsys.h — what the runtime offers the subsystems built above it.
 *
 * This is the one internal header a subsystem (supervisor/, and next the
 * sockets, metrics, test kit and cluster) includes; actors/ includes
 * nothing from them and never names one (the layering check in
 * tests/layers.sh enforces both directions). It brings the runtime's
 * internal API (core.h, loop.h) and adds three mechanisms:
 *
 *  - Owned resources. An actor owns resources of several kinds: timers,
 *    pending calls, a registered name, worker jobs, requests it owes an
 *    answer, channel subscriptions, task groups — and next, sockets. Each
 *    kind is a tr__owned_kind with the functions that end it; the first
 *    use of a kind by an actor registers it (tr__own), and the actor's
 *    exit runs every registered kind's `stop` when the exit begins and
 *    `release` when the actor has ended, in reverse order of registration
 *    (the `async with` / Go `defer` rule); a runtime freed with actors
 *    still alive runs `teardown`. One loop in the exit path, however many
 *    kinds there are.
 *  - Interception. A kind's `intercept` sees every message of a reserved
 *    type (above TR_MSG_USER_MAX) its actor receives, before the handler,
 *    and may consume it or rewrite what the handler sees: task groups
 *    take their children's DOWN and job outcomes this way. A kind that
 *    claims a range of reserved types (tr__owned_claim) sees the messages
 *    of that range even for an actor that has not used it yet: a socket
 *    handed to an actor arrives that way.
 *  - Loop extensions: a subsystem's state per loop (its handles, its
 *    tables), made on first use on that loop and destroyed with the loop,
 *    before the loop's last uv_run (tr__loop_ext).
 *  - Observation. tr__observe installs hooks that see every dispatch (and
 *    every send) of a runtime: the test kit and metrics build on it. Off,
 *    it costs one predictable branch per message.
 *
 * Thread rules are those of the functions' comments: everything about an
 * actor's resources runs on its home loop.
 */
#ifndef TR_SUBSYS_H
#define TR_SUBSYS_H

#include "loop.h"
#include "sbuf.h"

/* ---- owned resources ------------------------------------------------------------ */

/*
 * A kind of resource. Define one `static tr__owned_kind` per kind (not
 * const: `bit` is the runtime's, assigned on first use). Every function is
 * optional; `data` is the pointer the kind keeps for the actor (tr__own).
 */
typedef struct tr__owned_kind {
    const char *name;
    /* The actor begins to exit: nothing of this kind may act any more
     * (timers stop, calls end, jobs are abandoned). Home loop. */
    void (*stop)(tr__loop *L, tr_actor *a, void **data);
    /* The actor has ended (terminate has run; its links and monitors are
     * told next): release what is left. Home loop. */
    void (*release)(tr__loop *L, tr_actor *a, void **data);
    /* The runtime is freed with the actor still alive (no loop runs). */
    void (*teardown)(tr_actor *a, void **data);
    /* A message of a reserved type for `a`, before its handler: true if
     * the kind consumed it (it is then not delivered). It may rewrite
     * *pub (type, ref, data, len, flags) for the handler. Home loop. */
    bool (*intercept)(tr__loop *L, tr_actor *a, void **data, tr_msg *pub);
    /* The reserved types the kind claims (tr__owned_claim), lo <= hi, or 0. */
    uint32_t claim_lo, claim_hi;
    uint32_t bit; /* the runtime's: this kind's bit in tr_actor.owned */
} tr__owned_kind;

/* At most 32 kinds in a process (the bits of tr_actor.owned). */

/*
 * Registers `kind` for `a` if it is not yet (the first time: one entry in
 * a's record of owned kinds), and returns the kind's data pointer for `a`
 * (NULL the first time, until the kind stores its own), or NULL with
 * *err = TR_ENOMEM. Home loop. Cheap once registered: one test of a bit.
 */
void **tr__own(tr__loop *L, tr_actor *a, tr__owned_kind *kind, int *err);

/* tr__own for a kind whose state is elsewhere (the slot's timer list, the
 * loop's call table): 0, or TR_ENOMEM. Inline: hot paths call it. */
static inline int tr__own_kind(tr__loop *L, tr_actor *a, tr__owned_kind *kind)
{
    uint32_t bit = ck_pr_load_32(&kind->bit);
    if (bit && (a->owned & bit))
        return 0;
    int err = 0;
    return tr__own(L, a, kind, &err) ? 0 : err;
}

/* `kind`'s data pointer for `a`, or NULL if `a` has not registered it.
 * Home loop (any thread at teardown). */
void **tr__owned(const tr_actor *a, const tr__owned_kind *kind);

/* The exit path (exit.c): every registered kind's stop, release or
 * teardown, newest registration first. */
void tr__owned_stop(tr__loop *L, tr_actor *a);
void tr__owned_release(tr__loop *L, tr_actor *a);
void tr__owned_teardown(tr_actor *a);
/* Offers a reserved-type message to the kinds that intercept: true if one
 * consumed it. */
bool tr__owned_intercept(tr__loop *L, tr_actor *a, tr_msg *pub);

/* Makes `kind` (its claim_lo .. claim_hi set) see every message of those
 * types, whether or not the receiving actor has registered it: the first
 * such message registers it (tr__own). Once per kind and process; at most
 * TR__CLAIMS kinds. 0, or TR_ELIMIT. Any thread. */
#define TR__CLAIMS 4
int tr__owned_claim(tr__owned_kind *kind);

/* ---- loop extensions --------------------------------------------------------------- */

/*
 * A subsystem's state on one loop. Define one `static tr__loop_ext_kind`
 * per subsystem (not const: `slot` is the runtime's). tr__loop_ext returns
 * the loop's pointer for the kind (NULL until the subsystem stores its
 * own), or NULL with the kinds used up (TR__LOOP_EXTS per process). The
 * loop's destruction calls `destroy` (its thread has ended; close the
 * handles with uv_close — their callbacks run in the loop's last uv_run —
 * and free what needs no callback). Loop thread (destroy: the thread that
 * frees the runtime).
 */
typedef struct tr__loop_ext_kind {
    const char *name;
    void (*destroy)(tr__loop *L, void *data);
    uint32_t slot; /* the runtime's: 1 + its index in tr__loop.ext */
} tr__loop_ext_kind;

void **tr__loop_ext(tr__loop *L, tr__loop_ext_kind *kind);

/*
 * I/O that wants to be seen promptly. A loop with io_users > 0 looks at
 * its libuv backend (a poll of the epoll descriptor, no wait) while it
 * spins for cross-loop mail, and goes back to libuv as soon as something
 * is ready. Loop thread.
 */
static inline void tr__loop_io_use(tr__loop *L, int d)
{
    L->io_users += d;
}

/* tr__loop_poke (loop.h): after a subsystem's libuv callback posted mail
 * to actors of its loop, outside a turn. tr__loop_linger (loop.h): work
 * the loop's thread finishes before it ends with the runtime. */

/* ---- reserved requests ------------------------------------------------------------ */

/*
 * Requests of reserved types (the supervisor's protocol, msgtypes.h) are
 * kept and answered later only by an actor that serves them: a supervisor
 * says so in its init. Any other actor still receives one in its handler
 * (it may answer it there, with the request's own type), but cannot keep
 * it: a handler that returns without answering has it refused by the
 * runtime — TR_EINVAL in the reply's form (tr__msgtype_refusal) — so a
 * caller, such as a tr_rt_sup_* helper that waits without a limit, never
 * waits on an actor that does not speak the protocol. Home loop: self's
 * init or handler.
 */
static inline void tr__serve_reserved(tr_actor *self)
{
    self->flags |= TR__SERVES;
}

/* ---- observation ------------------------------------------------------------------ */

/*
 * tr__observer (core.h): hooks that see a runtime's messages. `dispatch`
 * runs on the receiver's loop right before its handler gets `msg` (and
 * `done` right after, with the handler's return); `send` runs on the
 * sender's thread for every message an actor or a plain thread sends with
 * tr_send / tr_rt_send and their kin (from, to, type, length); `fault`
 * (after dispatch) may drop the message or fail the actor instead of
 * running its handler. Each may be NULL. They run on the message path:
 * keep them short, never block.
 */

/* Installs `obs` (copied; NULL removes it). Only before tr_runtime_start:
 * TR_EALREADY afterwards; TR_EINVAL for NULL rt. */
TR_API int tr__observe(tr_runtime *rt, const tr__observer *obs);

/* Sends `msg` (a user message a handler was given: its sender, type,
 * request or reply flags with ref, deadline and tag, and a copy of its
 * payload) to `to` again, as if its sender had sent it now: what a fault
 * hook that dropped a message uses to deliver it later (a delay). Errors:
 * those of tr_send; TR_EINVAL for a reserved type. Any thread. */
TR_API int tr__redeliver(tr_runtime *rt, tr_pid to, const tr_msg *msg);

/*
 * TR_API on a tr__ function: exported from the library for troupe's own
 * libraries built on it (the test kit, libtroupe_test), not for users:
 * no promise of stability, and no declaration in troupe.h.
 */

/* ---- describing actors -------------------------------------------------------------- */

/*
 * The tree walk, asynchronous, for an actor (the observability endpoint):
 * tr__describe_ask sends `pid` the runtime's describe request as a call of
 * self's (tr_call's rules: the answer, a timeout or a failure arrives as
 * a reply); its answer is a reply of type TR__MSG_DESCRIBE that
 * tr__describe_parse reads: the actor's tr_actor_info (depth 0; strings
 * valid during the handler) and its children's pids, in spawn order
 * (children[0 .. info->nchildren)). Errors: those of tr_call;
 * tr__describe_parse: TR_EINVAL (not such an answer), TR_ENOMEM (the actor
 * could not allocate its answer). Thread: self's callbacks.
 */
int tr__describe_ask(tr_actor *self, tr_pid pid, tr_duration timeout_ms, tr_ref *ref);
int tr__describe_parse(const tr_msg *msg, tr_actor_info *info, const tr_pid **children);

/* ---- virtual time ---------------------------------------------------------------- */

/*
 * Under a custom clock (tr_runtime_options.clock) time moves only when the
 * test says so, and a plain thread's wait (tr__waiter_run: tr_rt_call,
 * tr_rt_wait_exit, the supervisor helpers) ends at its deadline on that
 * clock, woken by tr_runtime_clock_advanced. A subsystem that owns the
 * clock (the test kit) installs hooks here:
 *
 *  - `waiting` runs on a plain thread that waits for an answer due by
 *    `until` (runtime clock; UINT64_MAX: none), again and again while it
 *    waits, `since` being the real time (uv_hrtime) the wait began. It
 *    returns TR__VT_WAIT to have the waiter sleep a moment (about
 *    TR__VT_POLL_NS of real time, or until the clock moves or the answer
 *    comes), TR__VT_GIVE_UP to end the wait with TR_ETIMEDOUT, or
 *    TR__VT_MOVE with *to set: the clock should jump there. The waiter
 *    then looks at its answer once more (it may have come while the hook
 *    looked: a quiescent runtime has delivered it) and calls `move(ud, to)`
 *    only if it still waits, so that no answered wait moves time.
 *    TR__VT_AGAIN: the hook did some of the runtime's work itself
 *    (deterministic mode, below): look again at once.
 *  - `destroy` frees `ud` when the runtime is freed.
 */
enum { TR__VT_WAIT, TR__VT_MOVE, TR__VT_GIVE_UP, TR__VT_AGAIN };
#define TR__VT_POLL_NS 100000u

typedef struct tr__vtime {
    int (*waiting)(tr_runtime *rt, void *ud, uint64_t until, uint64_t since, uint64_t *to);
    void (*move)(void *ud, uint64_t to);
    void (*destroy)(void *ud);
    void *ud;
} tr__vtime;

/* Installs `vt` (copied) on `rt`, which must have a custom clock and not
 * be started yet: 0, TR_EINVAL (no custom clock, or hooks already
 * installed), TR_EALREADY (started), TR_ENOMEM. */
TR_API int tr__vtime_install(tr_runtime *rt, const tr__vtime *vt);
/* The `ud` of the installed hooks, or NULL. Any thread. */
TR_API void *tr__vtime_data(const tr_runtime *rt);

/*
 * Whether `rt` is quiescent: every loop asleep with nothing to do since
 * before this call began (no actor runnable, no mail in flight to it, no
 * timer due on the runtime clock, no allocation retry owed), and no worker
 * job queued or running. *next (may be NULL) is then the earliest timer
 * deadline of all loops (UINT64_MAX: none). Two collects of every loop's
 * rest sequence that agree: a double collect, so a loop that woke between
 * them, or got mail, shows. Returns 1 (quiescent; also once the runtime
 * has stopped: nothing runs any more), 0 (not now), TR_EINVAL (NULL, not
 * started), TR_EWRONGTHREAD (a loop thread: its own loop is busy running
 * the caller). Plain threads. Off the message path: the loops only write
 * their rest state when they go to sleep and when they wake. Sockets: I/O
 * still in the kernel is not seen.
 */
TR_API int tr__quiescent(tr_runtime *rt, uint64_t *next);

/* ---- deterministic mode ------------------------------------------------------------ */

/*
 * A runtime in deterministic mode has no loop threads and no worker
 * threads: a plain thread (the test kit's, through the tr__vtime hooks)
 * runs its work one step at a time, choosing each step. Everything else
 * is the production code: a step runs one actor for one message (batch
 * is 1) exactly as a loop's turn does, with the calling thread acting as
 * that loop's (tr__thread_loop); a job step runs the oldest queued job on
 * the calling thread. Sockets are not supported in this mode. The mode
 * costs nothing when off: the loops never look at it.
 *
 * tr__det_install: before tr_runtime_start, with a custom clock and the
 * virtual-time hooks installed (tr__vtime_install, whose `waiting` must
 * then run the steps): 0, TR_EINVAL, TR_EALREADY (started).
 *
 * tr__det_ready: fires the timers due on the runtime clock, moves every
 * loop's injected actors to its run queue (and, when nothing else is
 * ready, runs the allocation retries owed), then lists what may run next
 * in out[0 .. cap): each runnable actor (its loop, the actor, its pid), in
 * a fixed order (loop by loop: newly spawned first, then the run queue in
 * order), then one TR__DET_JOB if a job is queued. Returns how many there
 * are (more than cap: the rest are not listed); *next (may be NULL) the
 * earliest timer deadline (UINT64_MAX: none). Items stay valid until the
 * next step.
 *
 * tr__det_run: runs one listed item: 0, or TR_ENOTFOUND (not runnable any
 * more). `job_fail` (NULL: none) makes a job step fail the job with that
 * code instead of running it (fault injection).
 *
 * Thread: one plain thread at a time, never while another runs a step.
 */
enum { TR__DET_ACTOR, TR__DET_JOB };

typedef struct tr__det_item {
    int kind;
    tr__loop *loop;  /* TR__DET_ACTOR */
    tr_actor *actor; /* TR__DET_ACTOR */
    tr_pid pid;      /* TR__DET_ACTOR */
} tr__det_item;

TR_API int tr__det_install(tr_runtime *rt);
TR_API unsigned tr__det_ready(tr_runtime *rt, tr__det_item *out, unsigned cap, uint64_t *next);
TR_API int tr__det_run(tr_runtime *rt, const tr__det_item *item, const int32_t *job_fail);

#endif /* TR_SUBSYS_H */
