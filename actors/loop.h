/*
 * loop.h — one event loop: a thread, a uv_loop_t, and the scheduler that
 * runs the actors living on it.
 */
#ifndef TR_LOOP_H
#define TR_LOOP_H

#include "core.h"
#include "metrics.h"
#include "timer.h"

/*
 * The outbox. Mail that an actor sends during its run to actors of other
 * loops is held per destination and appended to each mailbox as one chain
 * when the run ends (or when TR__OUTBOX_BATCH pieces are held for one
 * destination, or another destination needs its slot, or TR__OUTBOX_HELD
 * are held in all): one exchange on the
 * receiver's mailbox head — the line all its senders fight over — per chain
 * instead of per message, and one scheduling of the receiver. Slots are
 * direct-mapped by the destination's slot index, so a driver fanning out
 * to dozens of actors round-robin still batches. Order per sender and
 * receiver is kept: all the running actor's own mail to another loop goes
 * through here, and a destination's chains are posted in order. Notices it
 * causes on someone else's behalf (a channel's, from no actor) go at once.
 * Empty outside actor runs.
 *
 * Except the run's first message to another loop, which goes at once
 * (run_posted): a run that sends one message — a request, a reply — has
 * nothing to batch, and posting it while the handler still runs takes the
 * rest of the run off the message's way (docs/performance.md). A
 * run that sends more batches the rest; order holds, since nothing was
 * held before the first.
 */
/* Subsystems' state per loop (subsys.h, tr__loop_ext). */
#define TR__LOOP_EXTS 4
struct tr__loop_ext_kind;

#define TR__OUTBOX_SLOTS 64 /* a power of two */
#define TR__OUTBOX_BATCH 64
#define TR__OUTBOX_HELD 256 /* messages held in all before the outbox is flushed */

typedef struct tr__outbox {
    tr_actor *to;
    tr__mpsc_node *head, *tail;
    uint32_t n;
    uint32_t listed; /* its index is in the loop's out_used list */
} tr__outbox;

/*
 * Pending calls of this loop's actors (call.c). A call's ref names an entry
 * (generation << 32 | index), so a reply is matched — or found late, or
 * bogus — with one lookup, and an entry is a few stores to take and free,
 * not a timer: only a call with a limit also has a timer (kind CALL). An
 * actor's entries are linked through their indexes, so they end with it.
 * Entry 0 is never used: index 0 means "none".
 */
typedef struct tr__call {
    tr_actor *owner;         /* NULL while free */
    struct tr__timer *timer; /* its limit, or NULL */
    uint32_t gen;            /* bumped when freed */
    uint32_t prev, next;     /* the owner's list; `next` links the free list */
    uint32_t reported;       /* logged as stuck (metrics.c) */
    uint64_t tag;            /* tr_call_tag */
    tr_pid callee;           /* whom it waits on */
    uint64_t since;          /* runtime clock: when it began */
} tr__call;

typedef struct tr__calls {
    tr__call *v;
    uint32_t n, cap;
    uint32_t free_head;
} tr__calls;

struct tr__loop {
    /* -- written by other threads -- */
    tr__mpsc inject;  /* actors other threads made runnable */
    int parked;       /* 1: may sleep in the kernel; wake with tr__loop_kick */
    int quit;         /* 1: the runtime has finished; leave uv_run */
    /* Free slots of this loop. Pushed by the loop (or by a spawner giving
     * back a slot it could not use), popped by any spawner. */
    ck_spinlock_fas_t free_lock __attribute__((aligned(TR__CACHELINE)));
    tr_actor *free_slots;

    /* -- the loop's own thread -- */
    tr_runtime *rt __attribute__((aligned(TR__CACHELINE)));
    unsigned index;
    unsigned rr;          /* round-robin cursor for spawns from this loop */
    tr_actor *current;    /* actor whose callback is running, or NULL */
    tr_actor *runq_head;  /* local FIFO of runnable actors (via runq) */
    tr_actor *runq_tail;
    tr_actor *spawned;    /* stack of actors spawned here by actors here (via runq) */
    unsigned spawned_run; /* actors run from `spawned` in a row */
    tr_actor *born, *born_last; /* spawned during the current run, newest first */
    tr__outbox out[TR__OUTBOX_SLOTS]; /* mail for other loops' actors, this run */
    uint8_t out_used[TR__OUTBOX_SLOTS]; /* slots touched this run */
    unsigned nout;
    unsigned held; /* messages added since the last flush, streamed ones included */
    bool run_posted; /* the running actor's first mail to another loop went at once */
    bool idle_active;
    bool started;
    uv_loop_t uv;
    uv_poll_t wake;       /* readable when wakefd is written */
    int wakefd;           /* eventfd other threads write to wake the loop */
    uv_idle_t idle;
    uv_thread_t thread;
    uv_timer_t uvtimer;   /* the one libuv timer driving `timers` */
    uv_timer_t trimtimer; /* armed while memory may be left to give back (pool.h) */
    uv_timer_t retry_timer; /* looks at `retry` again (tr__loop_retry) */
    tr_actor *retry;      /* actors held up for want of memory (via free_next) */
    uv_signal_t sigint, sigterm; /* loop 0 with stop_on_signals */
    uv_signal_t sigquit;         /* loop 0 with report_on_sigquit */
    uint8_t signals; /* handles initialised: 1 sigint, 2 sigterm, 4 sigquit */
    /* The deadline the libuv timer is armed for; 0: not armed; UINT64_MAX:
     * the earliest timer never fires, so it is not armed either. */
    uint64_t uvtimer_due;
    tr__timers timers;
    tr__calls calls;
    tr__pool pool;
    const tr__observer *obs;    /* the runtime's observer, or NULL (subsys.h) */
    void *ext[TR__LOOP_EXTS];   /* subsystems' state (subsys.h, tr__loop_ext) */
    struct tr__loop_ext_kind *ext_kind[TR__LOOP_EXTS];
    int io_users;               /* subsystem I/O to look at while spinning */
    int lingering;              /* subsystem work the loop's end waits for */
    bool quit_seen;             /* quit asked while lingering > 0 */
    struct tr__msg *cur_msg;    /* message being handled (tr_msg_keep) */
    const tr_msg *cur_pub;
    bool cur_reply_nomem;       /* tr_reply could not answer cur_msg: fail it */

    /* Rest, for the test kit's settle (tr__quiescent, time.c): the loop
     * bumps rest_seq to an even value when it goes to sleep with nothing
     * left to do (rest_next: its earliest timer then) and to an odd one
     * when it next runs a turn. Written at those two moments only, never
     * on the message path; other threads read them. */
    uint32_t rest_seq;
    uint64_t rest_next;

    /* Blocked-loop detection. The loop stores a new tick (and who runs)
     * before each callback and 0 after; the watchdog thread samples them.
     * ck_pr stores: no lock prefix, no fence. */
    uint64_t tick;             /* owner: callbacks started */
    uint64_t busy_tick __attribute__((aligned(TR__CACHELINE)));
    tr_pid busy_pid;
    uint32_t busy_type;
    uint64_t wd_reported_tick; /* written by the watchdog */
    uint64_t wd_reported_since;
    uint64_t wd_seen_tick;     /* watchdog-private */
    uint64_t wd_seen_at;

    /* Statistics: written by the loop's thread only, with ck_pr stores so
     * other threads may read them (tr_runtime_stats). */
    tr_loop_stats stats;
    /* Metrics (metrics.h): the loop's thread only, ck_pr stores. */
    tr__loop_metrics m;
    uv_timer_t stucktimer; /* the stuck-call check (metrics.c), unreferenced */
};

#define TR__STAT_ADD(L, field, d)                                              \
    ck_pr_store_64(&(L)->stats.field, (L)->stats.field + (uint64_t)(d))

/* Marks the start and end of a callback for the watchdog. */
static inline void tr__loop_busy(tr__loop *L, tr_actor *a, uint32_t type)
{
    ck_pr_store_64(&L->busy_pid, tr__actor_pid(a));
    ck_pr_store_32(&L->busy_type, type);
    ck_pr_store_64(&L->busy_tick, ++L->tick);
}

void tr__loop_blocked_ended(tr__loop *L);

/* metrics.c: the loop's behaviour table (metrics off: none); an actor's
 * binding to its behaviour's entry at init and its end; a sampled turn;
 * the stuck-call check (started on the loop's thread). */
int tr__loop_metrics_init(tr__loop *L);
void tr__loop_metrics_destroy(tr__loop *L);
void tr__metrics_bind(tr__loop *L, tr_actor *a);
void tr__metrics_unbind(tr__loop *L, tr_actor *a);
void tr__metrics_sample(tr__bstat *bs, uint64_t n, uint64_t ns, uint64_t depth);
void tr__stuck_start(tr__loop *L);
void tr__stuck_check(tr__loop *L);
/* A child of this loop's actor did not stop within its shutdown timeout:
 * the report, at most once per hang_report_ms. */
void tr__report_shutdown_timeout(tr__loop *L, tr_pid child);

static inline void tr__loop_idle(tr__loop *L)
{
    ck_pr_store_64(&L->busy_tick, 0);
    if (ck_pr_load_64(&L->wd_reported_tick) == L->tick)
        tr__loop_blocked_ended(L);
}

/* The loop whose thread is running, or NULL on plain threads. */
extern _Thread_local tr__loop *tr__tls_loop __attribute__((tls_model("initial-exec")));

/* The calling thread's loop if it is one of `rt`'s, else NULL (a plain
 * thread, or another runtime's loop). */
static inline tr__loop *tr__thread_loop(const tr_runtime *rt)
{
    tr__loop *L = tr__tls_loop;
    return (L && L->rt == rt) ? L : NULL;
}

/* True on a loop thread of any runtime in the process: where nothing may
 * block. A loop that blocked waiting on another runtime could wait on a
 * loop that waits on it (two runtimes calling each other deadlock), so the
 * blocking calls refuse every loop thread, not just their own runtime's. */
static inline bool tr__on_loop_thread(void)
{
    return tr__tls_loop != NULL;
}

/* The runtime whose helper thread this is — a worker (workers.c) or the
 * watchdog (watchdog.c, where the log callback may run) — or NULL. */
extern _Thread_local tr_runtime *tr__tls_helper_rt;

/* Whether the calling thread is one of `rt`'s own: a loop, a worker or
 * the watchdog. tr_runtime_free joins those threads, so they may not call
 * it (it would free the memory they return into). */
static inline bool tr__thread_of(const tr_runtime *rt)
{
    return tr__thread_loop(rt) || tr__tls_helper_rt == rt;
}

int tr__loop_init(tr__loop *L, tr_runtime *rt, unsigned index);
/* `a` (alive, on L) could not send a signal its exit or its children's
 * stop depend on, for want of memory: tr__exit_retry(L, a) runs a
 * millisecond later. Allocates nothing. Loop thread. */
void tr__loop_retry(tr__loop *L, tr_actor *a);
/* Takes `a` off the retry list (it has ended). */
void tr__loop_retry_cancel(tr__loop *L, tr_actor *a);
int tr__loop_start(tr__loop *L);
/* Runs the timers that are due and re-arms the libuv timer. Loop thread. */
void tr__loop_run_timers(tr__loop *L);
/* tr__loop_timers_changed found the libuv timer out of date. */
void tr__loop_timers_rearm(tr__loop *L);
/* Re-arms the libuv timer if the earliest deadline changed (inline: most
 * calls — a call without a limit answered, a timer cancelled behind the
 * earliest — change nothing). A test clock moves only when
 * tr_runtime_clock_advanced says so: no libuv timer then. */
static inline void tr__loop_timers_changed(tr__loop *L)
{
    tr__timer *top = tr__timer_top(&L->timers);
    if (top ? L->rt->opts.clock || top->deadline == L->uvtimer_due : !L->uvtimer_due)
        return;
    tr__loop_timers_rearm(L);
}
/* Loop 0, before its thread starts: SIGINT/SIGTERM stop the runtime.
 * Again after tr__loop_unwatch_signals (a start that failed, retried). */
int tr__loop_watch_signals(tr__loop *L);
/* Undoes tr__loop_watch_signals (its thread not started): the process's
 * signal dispositions are as before. */
void tr__loop_unwatch_signals(tr__loop *L);
/* Asks the loop's thread to leave uv_run. Any thread. */
void tr__loop_quit(tr__loop *L);
/* A subsystem's work that must finish before the loop's thread leaves
 * uv_run when the runtime has finished (sockets flushing their last
 * writes): +1 when it begins, -1 when it ends, bounded by the subsystem's
 * own timer. Loop thread. */
void tr__loop_linger(tr__loop *L, int d);
void tr__loop_join(tr__loop *L);
/* Closes the loop's handles; no thread may run it any more. */
void tr__loop_destroy(tr__loop *L);
/* Destroys the subsystems' state of L (owned.c). */
void tr__loop_ext_destroy(tr__loop *L);

/* Appends `a` to L's run queue (FIFO). L's own thread only: `a` lives on L
 * (other threads go through tr__loop_schedule and the inject queue). */
static inline void tr__loop_runq_append(tr__loop *L, tr_actor *a)
{
    a->runq.next = NULL;
    if (L->runq_tail)
        L->runq_tail->runq.next = &a->runq;
    else
        L->runq_head = a;
    L->runq_tail = a;
}

/*
 * Spawn order. An actor spawned on this loop by an actor running on it
 * waits on the loop's `spawned` stack, not the FIFO run queue, and runs
 * newest first: a parent spawning children hands the loop a depth-first
 * order (skynet's tree: the subtree under the newest child finishes before
 * its siblings start, instead of the whole tree existing at once), and a
 * child runs while its parent's data is still in cache — Go's runnext,
 * CAF's and Tokio's LIFO slot.
 *
 * A callback that spawns here ends its actor's run; the children it made
 * go on the stack then, on top of the parent if it still has mail: a
 * parent handles no further message before the children it just made have
 * started (a driver that spawns in slices cannot outrun its children). The
 * scheduler takes at most TR__SPAWNED_RUN actors from the stack in a row
 * while the FIFO run queue waits, so spawners cannot starve other actors.
 * The run queue is where parents hear from their children, so a small
 * bound also finishes parents sooner: skynet (THREADS=2) ran at 12 M
 * actors/s in 3.5 MB with 4, 8 M with 8, 2.7 M in 110 MB with 16 and
 * 2 M in 245 MB with 64 (FIFO spawns: 0.8 M in 665 MB).
 */
#define TR__SPAWNED_RUN 4

static inline void tr__loop_push_spawned(tr__loop *L, tr_actor *a)
{
    a->runq.next = L->born ? &L->born->runq : NULL;
    if (!L->born)
        L->born_last = a;
    L->born = a;
}

/* The end of `a`'s run: requeues it if `more` (mail or signals left) and
 * moves the children it spawned onto the stack above it. */
static inline void tr__loop_run_done(tr__loop *L, tr_actor *a, bool more)
{
    if (!L->born) {
        if (more)
            tr__loop_runq_append(L, a);
        return;
    }
    if (more) {
        a->runq.next = L->spawned ? &L->spawned->runq : NULL;
        L->spawned = a;
    }
    L->born_last->runq.next = L->spawned ? &L->spawned->runq : NULL;
    L->spawned = L->born;
    L->born = L->born_last = NULL;
}

/* Whether mail from `from` to `a` waits in cur's outbox: it is the running
 * actor's own, to an actor of another loop. */
static inline bool tr__loop_holds(const tr__loop *cur, tr_actor *a, tr_pid from)
{
    return cur && cur->current && ck_pr_load_ptr(&a->loop) != cur &&
           from == tr__actor_pid(cur->current);
}

/* Holds `n` for `a` (of another loop) in L's outbox. */
void tr__loop_outbox_add(tr__loop *L, tr_actor *a, tr__mpsc_node *n);
/* Posts everything the outbox holds. */
void tr__loop_outbox_flush(tr__loop *L);

void tr__loop_wake(tr__loop *L);
/* A libuv callback of a subsystem made actors of L runnable (mail posted
 * from the loop's own thread, outside a turn): a turn runs soon, without
 * the loop parking first. Loop thread. */
void tr__loop_poke(tr__loop *L);
/* Wakes the loop whether or not it is parked (it runs a turn). Any thread. */
void tr__loop_kick(tr__loop *L);

/* Makes `a` runnable on its home loop: its run queue when the caller is
 * that loop, else its inject queue (and a wake if it is parked). `cur` is
 * the calling thread's loop (NULL on plain threads). Called by whoever made
 * `a`'s mailbox non-empty. */
static inline void tr__loop_schedule(tr__loop *cur, tr_actor *a)
{
    tr__loop *home = ck_pr_load_ptr(&a->loop);
    if (home == cur) {
        tr__loop_runq_append(home, a);
        return;
    }
    tr__mpsc_push(&home->inject, &a->runq);
    /* The push is a full barrier; pairs with the loop's exchange on
     * `parked` before its last look at the inject queue (Dekker). */
    if (ck_pr_load_int(&home->parked))
        tr__loop_wake(home);
}

#endif /* TR_LOOP_H */
