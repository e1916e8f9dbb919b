/*
 * loop.c — event loop threads and the scheduler.
 *
 * Design notes
 * ------------
 * Each loop is a thread running uv_run on its own uv_loop_t. Actors with
 * mail sit on the loop's run queue, a plain FIFO that only the loop's thread
 * touches. Another thread that makes an actor runnable pushes it on the
 * loop's inject queue (an MPSC, mpsc.h) instead; the loop moves injected
 * actors to its run queue at the start of each turn.
 *
 * A turn runs up to `turn_budget` actors, each for up to `batch` messages,
 * then returns to libuv so I/O and timers get their share. While there is
 * work, a uv_idle handle keeps libuv polling without blocking.
 *
 * When the run queue drains, the loop spins for up to `spin_us` looking at
 * the inject queue (a cross-loop reply usually arrives within a microsecond
 * or two, much sooner than a parked thread can be woken), then parks:
 *
 *     loop:     parked = 1 (exchange)      sender: push on inject (exchange)
 *               look at inject again               if (parked) wake
 *
 * Both sides do a full-barrier write and then read the other's variable, so
 * at least one sees the other: either the loop finds the actor, or the
 * sender sees `parked` and wakes it with an eventfd write.
 * A busy loop is never woken: senders pay the syscall only for a parked loop.
 *
 * The wake is a plain eventfd watched by a uv_poll handle, not a uv_async:
 * libuv's async handshake makes the woken loop spin, then sched_yield, until
 * the waking thread has finished its own bookkeeping after the write — on a
 * two-core machine the woken thread often preempts the waker, and a wake
 * cost ten times a bare eventfd round trip (docs/performance.md).
 */
#include "loop.h"
#include "subsys.h"
#include "workers.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

_Thread_local tr__loop *tr__tls_loop __attribute__((tls_model("initial-exec")));
_Thread_local tr_runtime *tr__tls_helper_rt;

static void turn(tr__loop *L);
static void trim_check(tr__loop *L);

static void idle_start(tr__loop *L);

static void on_idle(uv_idle_t *h)
{
    turn(h->data);
}

static void on_wake(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    tr__loop *L = h->data;
    uint64_t n;
    while (read(L->wakefd, &n, sizeof n) < 0 && errno == EINTR)
        ;
    if (ck_pr_load_int(&L->quit)) {
        if (L->lingering > 0) {
            L->quit_seen = true; /* tr__loop_linger stops it */
            return;
        }
        uv_stop(&L->uv);
        return;
    }
    TR__STAT_ADD(L, wakeups, 1);
    turn(L);
}

static void idle_start(tr__loop *L)
{
    if (!L->idle_active) {
        uv_idle_start(&L->idle, on_idle);
        L->idle_active = true;
    }
}

void tr__loop_poke(tr__loop *L)
{
    ck_pr_store_int(&L->parked, 0); /* other threads need not wake us now */
    idle_start(L);
}

static void idle_stop(tr__loop *L)
{
    if (L->idle_active) {
        uv_idle_stop(&L->idle);
        L->idle_active = false;
    }
}

static tr_actor *runq_pop(tr__loop *L)
{
    tr_actor *a = L->spawned;
    if (a && (L->spawned_run < TR__SPAWNED_RUN || !L->runq_head)) {
        L->spawned = a->runq.next ? tr__actor_of_runq(a->runq.next) : NULL;
        L->spawned_run++;
        return a;
    }
    L->spawned_run = 0;
    a = L->runq_head;
    if (a) {
        L->runq_head = a->runq.next ? tr__actor_of_runq(a->runq.next) : NULL;
        if (!L->runq_head)
            L->runq_tail = NULL;
    }
    return a;
}

static unsigned drain_inject(tr__loop *L)
{
    tr__mpsc_node *n;
    unsigned moved = 0;
    while ((n = tr__mpsc_pop(&L->inject)) != NULL) {
        tr__loop_runq_append(L, tr__actor_of_runq(n));
        moved++;
    }
    return moved;
}

/*
 * Spins up to spin_us for work from other threads. True if some arrived.
 *
 * A loop whose subsystems watch I/O (sockets: io_users) also looks at its
 * libuv backend every so often — a poll of the epoll descriptor, which is
 * readable while any watched descriptor is ready, without waiting — and
 * stops spinning when something is (*io): a reply from another loop must
 * not keep a socket's readiness waiting for the whole spin.
 *
 * `last` (the actor that ran last, or NULL) is watched meanwhile if it is
 * idle (mpsc.h, "Watch"): a sender whose push finds it watched leaves the
 * scheduling to us, so mail for it costs the sender one exchange (not two:
 * the inject queue's too) and we see it on the actor's own line, which we
 * read next anyway. The actor that just ran is the one most likely to hear
 * next — a server awaiting its next request, a client its reply
 * (docs/performance.md, "Watching the actor that ran last").
 */
static bool io_ready(tr__loop *L)
{
    struct pollfd p = {.fd = uv_backend_fd(&L->uv), .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

static bool spin_for_work(tr__loop *L, tr_actor *last, bool *io)
{
    uint64_t spin_ns = (uint64_t)L->rt->opts.spin_us * 1000u;
    if (spin_ns == 0)
        return false;
    if (last && !tr__mpsc_watch(&last->mb))
        last = NULL; /* not idle: someone has scheduled it already */
    bool found = false, taken = false;
    uint64_t deadline = uv_hrtime() + spin_ns;
    for (unsigned i = 1;; i++) {
        tr__mpsc_node *first;
        if (last && (first = tr__mpsc_watch_taken(&last->mb)) != NULL) {
            __builtin_prefetch(first); /* the message: its sender just wrote it */
            taken = true;
            break;
        }
        if (tr__mpsc_maybe_nonempty(&L->inject)) {
            found = true;
            break;
        }
        ck_pr_stall();
        if ((i & 63u) == 0) {
            if (uv_hrtime() >= deadline)
                break;
            if (L->io_users && io_ready(L)) {
                *io = true;
                break;
            }
        }
        if (ck_pr_load_int(&L->quit))
            break;
    }
    /* Seen taken, or taken before the watch could be given back: a sender
     * left the scheduling to us. */
    if (last && (taken || tr__mpsc_unwatch(&last->mb))) {
        tr__loop_runq_append(L, last);
        found = true;
    }
    if (found)
        TR__STAT_ADD(L, spins, 1);
    return found;
}

/* A timer set during this turn may already be due (a 0 ms delay, or a
 * test clock that does not move by itself): run another turn for it rather
 * than park. */
static bool timer_due(tr__loop *L)
{
    tr__timer *top = tr__timer_top(&L->timers);
    return top && top->deadline <= tr__now(L->rt);
}

/* Spins that found work and were handled at once, in one turn, before the
 * turn goes back to libuv (whose poll between two turns is a syscall). */
#define TR__TURN_SPINS 16

/* The loop sleeps with nothing to do (no actor to run, no mail, no timer
 * due, no retry owed): say so, with its earliest timer, for tr__quiescent.
 * The deadline is written before the sequence (release): a reader that
 * sees the even sequence sees the deadline of that rest. */
static void rest(tr__loop *L)
{
    if (L->retry)
        return; /* a retry is owed: not at rest */
    tr__timer *top = tr__timer_top(&L->timers);
    ck_pr_store_64(&L->rest_next, top ? top->deadline : UINT64_MAX);
    ck_pr_store_64(&L->m.rest_at, uv_hrtime()); /* for the idle time (metrics.c) */
    ck_pr_fence_store();
    ck_pr_store_32(&L->rest_seq, L->rest_seq + 1); /* even: at rest */
}

static void wake_from_rest(tr__loop *L)
{
    if (L->m.rest_at) /* deterministic mode never rests */
        TR__M_ADD(L, idle_ns, uv_hrtime() - L->m.rest_at);
    ck_pr_store_32(&L->rest_seq, L->rest_seq + 1); /* odd: awake */
    ck_pr_fence_store();
}

static void turn(tr__loop *L)
{
    unsigned budget = L->rt->opts.turn_budget;
    if (__builtin_expect(!(L->rest_seq & 1u), 0)) /* its own field: a plain read */
        wake_from_rest(L);
    for (unsigned spun = 0;; spun++) {
        unsigned ran = 0;
        tr_actor *last = NULL;
        if (L->timers.n)
            tr__loop_run_timers(L);
        drain_inject(L);
        for (; ran < budget; ran++) {
            tr_actor *a = runq_pop(L);
            if (!a)
                break;
            tr__actor_run(L, a);
            last = a;
        }
        if (L->born) /* spawned outside any actor's run: none may be left behind */
            tr__loop_run_done(L, NULL, false);
        if (L->runq_head || L->spawned || tr__mpsc_maybe_nonempty(&L->inject) ||
            timer_due(L)) {
            idle_start(L);
            return;
        }
        bool io = false;
        if (ran > 0 && spin_for_work(L, last, &io)) {
            /* Work arrived while we spun: run it now rather than after a
             * trip through libuv's poll, a few times per turn (the loop's
             * own handles — timers, signals — wait at most that long). */
            if (spun < TR__TURN_SPINS && !io)
                continue;
            idle_start(L);
            return;
        }
        if (io) { /* a descriptor is ready: libuv's poll takes it now */
            idle_start(L);
            return;
        }
        tr__pool_flush(&L->pool); /* blocks of other loops go home before we sleep */
        ck_pr_fas_int(&L->parked, 1);
        /* Parked first: blocks of ours that come home from now on wake us
         * (pool_came_home), those that came before, trim_check sees. */
        trim_check(L);
        if (tr__mpsc_maybe_nonempty(&L->inject)) {
            ck_pr_store_int(&L->parked, 0);
            idle_start(L);
            return;
        }
        idle_stop(L);
        rest(L);
        return;
    }
}

/* ---- the outbox ------------------------------------------------------------ */

static void outbox_post(tr__loop *L, tr__outbox *o)
{
    if (tr__mpsc_push_chain(&o->to->mb, o->head, o->tail))
        tr__loop_schedule(L, o->to);
    o->to = NULL;
    o->head = o->tail = NULL;
    o->n = 0;
}

void tr__loop_outbox_add(tr__loop *L, tr_actor *a, tr__mpsc_node *n)
{
    unsigned i = a->index & (TR__OUTBOX_SLOTS - 1);
    tr__outbox *o = &L->out[i];
    if (o->n && o->to != a)
        outbox_post(L, o); /* another destination had the slot */
    if (!o->listed) {
        o->listed = 1;
        L->out_used[L->nout++] = (uint8_t)i;
    }
    o->to = a;
    n->next = NULL;
    if (o->tail)
        o->tail->next = n;
    else
        o->head = n;
    o->tail = n;
    if (++o->n == TR__OUTBOX_BATCH)
        outbox_post(L, o); /* a long run streams */
    else if (++L->held >= TR__OUTBOX_HELD)
        tr__loop_outbox_flush(L); /* ...also when it fans out */
}

void tr__loop_outbox_flush(tr__loop *L)
{
    for (unsigned k = 0; k < L->nout; k++) {
        tr__outbox *o = &L->out[L->out_used[k]];
        if (o->n)
            outbox_post(L, o);
        o->listed = 0;
    }
    L->nout = 0;
    L->held = 0;
}

/* ---- giving memory back ------------------------------------------------------ */

/*
 * A loop gives back what its pool holds beyond need when it is about to
 * sleep, at most once a second (tr__pool_trim), and trims the plain-thread
 * pools it has returned blocks to (plain threads have no loop that would).
 * What it could not give back yet — a class still growing a second ago, a
 * plain pool a thread holds — it looks at again a second later, woken by
 * its trim timer if it sleeps that long: after a burst the memory comes
 * back within about two seconds, even if no message comes again. The
 * timer is unreferenced: it never keeps a loop alive.
 */
static void on_trim(uv_timer_t *h);

static void trim_pass(tr__loop *L, uint64_t now)
{
    int more = tr__pool_trim(&L->pool, now);
    if (L->pool.fed_plain) {
        L->pool.fed_plain = false;
        for (unsigned i = 0; i < TR__PLAIN_POOLS; i++) {
            tr__pool *pp = &L->rt->plain[i];
            int left = 1;
            if (tr__pool_lease(pp)) {
                left = tr__pool_trim(pp, now);
                tr__pool_unlease(pp);
            }
            if (left) {
                more = 1;
                L->pool.fed_plain = true;
            }
        }
    }
    if (more)
        uv_timer_start(&L->trimtimer, on_trim, TR__POOL_TRIM_MS, 0);
}

static void on_trim(uv_timer_t *h)
{
    tr__loop *L = h->data;
    trim_pass(L, uv_now(&L->uv));
}

/* Another thread returned blocks of this loop's pool: if the loop sleeps,
 * wake it, so that it looks (trim_check as it goes back to sleep) —
 * otherwise a loop that allocated a burst and went to sleep before the
 * burst was freed would keep that memory until something else woke it.
 * Once per chain that finds the remote stack empty: after the loop has
 * looked, not per block. */
static void pool_came_home(tr__pool *p)
{
    tr__loop_wake((tr__loop *)((char *)p - offsetof(tr__loop, pool)));
}

/* The loop is about to sleep: a few compares, unless there is memory to
 * give back. */
static void trim_check(tr__loop *L)
{
    if (uv_is_active((uv_handle_t *)&L->trimtimer) || !tr__pool_trim_wanted(&L->pool))
        return;
    uint64_t now = uv_now(&L->uv);
    uint64_t since = now - L->pool.trim_at;
    if (since >= TR__POOL_TRIM_MS)
        trim_pass(L, now);
    else
        uv_timer_start(&L->trimtimer, on_trim, TR__POOL_TRIM_MS - since, 0);
}

/* ---- timers ---------------------------------------------------------------- */

static void on_uvtimer(uv_timer_t *h)
{
    tr__loop *L = h->data;
    L->uvtimer_due = 0;
    turn(L); /* runs the due timers first */
}

void tr__loop_timers_rearm(tr__loop *L)
{
    tr__timer *top = tr__timer_top(&L->timers);
    if (!top) {
        uv_timer_stop(&L->uvtimer);
        L->uvtimer_due = 0;
        return;
    }
    L->uvtimer_due = top->deadline;
    if (top->deadline == UINT64_MAX) {
        /* The earliest timer never fires (a saturated deadline): nothing to
         * wake up for. */
        uv_timer_stop(&L->uvtimer);
        return;
    }
    uint64_t now = tr__now(L->rt);
    /* Rounded up to whole ms, without the + 999999 that wraps near the top. */
    uint64_t left = top->deadline > now ? top->deadline - now : 0;
    uint64_t ms = left / 1000000u + (left % 1000000u != 0);
    uv_update_time(&L->uv);
    uv_timer_start(&L->uvtimer, on_uvtimer, ms, 0);
}

static void fire(tr__loop *L, tr__timer *t, uint64_t now)
{
    tr_runtime *rt = L->rt;
    /* Loop lag: how late this timer fires. */
    uint64_t lag_us = (now - t->deadline) / 1000u;
    ck_pr_store_64(&L->stats.lag_last_us, lag_us);
    if (lag_us > L->stats.lag_max_us)
        ck_pr_store_64(&L->stats.lag_max_us, lag_us);
    tr_pid owner_pid = tr__actor_pid(t->owner);
    if (t->kind == TR__TIMER_CALL) {
        /* The call is over: the timeout goes to the caller, from the callee,
         * with the call's tag where a reply's header has it, and the entry
         * goes, so a late reply finds nothing. Out of memory, the call stays
         * pending and its timeout is tried again a millisecond later: an
         * answer is never lost to an allocation. */
        tr__callhdr h = {.ref = t->call, .deadline = tr__call_tag_of(L, t->call)};
        if (tr__send(rt, L, t->to, owner_pid, TR_MSG_CALL_TIMEOUT, TR__MF_REPLY, &h, NULL,
                     0, NULL, NULL) == TR_ENOMEM) {
            tr__timer_arm(&L->timers, t, now + 1000000u);
            return;
        }
        tr__call_timed_out(L, t);
        return;
    }
    if (t->kind == TR__TIMER_KILL) {
        /* A child did not end within its shutdown timeout. */
        tr_pid child = t->to;
        tr_actor *owner = t->owner;
        tr__actor_drop_timer(L, t);
        tr__report_shutdown_timeout(L, child);
        /* Owed and retried if it cannot be made now (exit.c). */
        if (tr__stop_child(L, owner, child, TR_EXIT_KILLED) != 0)
            tr__signal(rt, L, owner_pid, child, TR_EXIT_KILLED, 0, "shutdown timeout",
                       TR__SIG_UNTRAPPABLE);
        return;
    }
    if (tr__send(rt, L, owner_pid, t->to, t->type, 0, NULL, t->data, t->len, NULL,
                 NULL) != 0)
        TR__STAT_ADD(L, dropped, 1); /* the target is gone, or its mailbox is full */
    if (t->period) {
        /* Saturating: a huge period's next deadline is "never", not one
         * that wrapped into the past and fires again at once. */
        uint64_t next = tr__add_sat(t->deadline, t->period);
        tr__timer_arm(&L->timers, t, next > now ? next : tr__add_sat(now, t->period));
    } else {
        tr__actor_drop_timer(L, t);
    }
}

void tr__loop_run_timers(tr__loop *L)
{
    uint64_t now = tr__now(L->rt);
    tr__timer *t;
    while ((t = tr__timer_top(&L->timers)) != NULL && t->deadline <= now)
        fire(L, t, now);
    tr__loop_timers_changed(L);
}

/* ---- retries: what a failure to allocate held up -------------------------------- */

/*
 * An actor whose exit signals could not be made for want of memory (a
 * shutdown to a child, a kill, its own stop), or a root waiting for
 * adoptions, is listed here and looked at again a millisecond later — no
 * allocation needed: the list runs through the slot's free_next, which a
 * live slot does not use, and the libuv timer is the loop's own. So a
 * stop never depends on an allocation succeeding at one moment
 * (include/troupe.h: nothing blocks forever on an answer that a failure
 * can lose).
 */
static void run_retries(tr__loop *L)
{
    tr_actor *list = L->retry;
    L->retry = NULL;
    while (list) {
        tr_actor *a = list;
        list = a->free_next;
        a->free_next = NULL;
        a->flags &= (uint8_t)~TR__RETRY;
        tr__exit_retry(L, a);
    }
}

static void on_retry(uv_timer_t *h)
{
    tr__loop *L = h->data;
    run_retries(L);
    /* Outside a turn, as on_signal: run what the retries scheduled. */
    turn(L);
}

void tr__loop_retry(tr__loop *L, tr_actor *a)
{
    if (a->flags & TR__RETRY)
        return;
    a->flags |= TR__RETRY;
    a->free_next = L->retry;
    L->retry = a;
    if (!uv_is_active((uv_handle_t *)&L->retry_timer))
        uv_timer_start(&L->retry_timer, on_retry, 1, 0);
}

void tr__loop_retry_cancel(tr__loop *L, tr_actor *a)
{
    if (!(a->flags & TR__RETRY))
        return;
    for (tr_actor **p = &L->retry; *p; p = &(*p)->free_next)
        if (*p == a) {
            *p = a->free_next;
            break;
        }
    a->free_next = NULL;
    a->flags &= (uint8_t)~TR__RETRY;
}

/* ---- stop on SIGINT / SIGTERM ------------------------------------------------------ */

static void on_signal(uv_signal_t *h, int signum)
{
    tr__loop *L = h->data;
    if (signum == SIGQUIT) {
        tr__report_log(L->rt, "SIGQUIT: what the runtime is doing:");
        return;
    }
    tr__log(L->rt, TR_LOG_INFO, "signal %d: stopping the runtime", signum);
    tr_runtime_stop(L->rt); /* TR_EALREADY on a second signal: fine */
    /* This callback runs outside a turn: the stop signal may have scheduled
     * the root on this very loop, which must not park before it runs. */
    turn(L);
}

int tr__loop_watch_signals(tr__loop *L)
{
    /* Each handle is initialised once and closed by tr__loop_destroy (a
     * handle cannot be closed before then: closing needs the loop to run). */
    if (L->rt->opts.report_on_sigquit) {
        if (!(L->signals & 4)) {
            if (uv_signal_init(&L->uv, &L->sigquit) != 0)
                return TR_ESYSTEM;
            L->signals |= 4;
            L->sigquit.data = L;
        }
        if (uv_signal_start(&L->sigquit, on_signal, SIGQUIT) != 0) {
            tr__loop_unwatch_signals(L);
            return TR_ESYSTEM;
        }
    }
    if (!L->rt->opts.stop_on_signals)
        return 0;
    if (!(L->signals & 1)) {
        if (uv_signal_init(&L->uv, &L->sigint) != 0)
            return TR_ESYSTEM;
        L->signals |= 1;
        L->sigint.data = L;
    }
    if (!(L->signals & 2)) {
        if (uv_signal_init(&L->uv, &L->sigterm) != 0)
            return TR_ESYSTEM;
        L->signals |= 2;
        L->sigterm.data = L;
    }
    if (uv_signal_start(&L->sigint, on_signal, SIGINT) != 0 ||
        uv_signal_start(&L->sigterm, on_signal, SIGTERM) != 0) {
        tr__loop_unwatch_signals(L);
        return TR_ESYSTEM;
    }
    return 0;
}

void tr__loop_unwatch_signals(tr__loop *L)
{
    if (L->signals & 1)
        uv_signal_stop(&L->sigint);
    if (L->signals & 2)
        uv_signal_stop(&L->sigterm);
    if (L->signals & 4)
        uv_signal_stop(&L->sigquit);
}

void tr__loop_kick(tr__loop *L)
{
    uint64_t one = 1;
    /* EAGAIN only when the counter is saturated: a wake is pending anyway. */
    while (write(L->wakefd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

void tr__loop_wake(tr__loop *L)
{
    if (ck_pr_fas_int(&L->parked, 0))
        tr__loop_kick(L);
}

int tr__loop_init(tr__loop *L, tr_runtime *rt, unsigned index)
{
    tr__mpsc_init(&L->inject, false);
    L->parked = 1;
    L->quit = 0;
    L->rest_seq = 1; /* not at rest until its first turn has run */
    ck_spinlock_fas_init(&L->free_lock);
    L->free_slots = NULL;
    L->rt = rt;
    L->index = index;
    L->rr = index;
    L->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (L->wakefd < 0)
        return TR_ESYSTEM;
    if (uv_loop_init(&L->uv) != 0) {
        close(L->wakefd);
        return TR_ESYSTEM;
    }
    if (uv_poll_init(&L->uv, &L->wake, L->wakefd) != 0) {
        uv_loop_close(&L->uv);
        close(L->wakefd);
        return TR_ESYSTEM;
    }
    /* uv_idle_init and uv_timer_init cannot fail once the loop exists. */
    uv_idle_init(&L->uv, &L->idle);
    uv_timer_init(&L->uv, &L->uvtimer);
    uv_timer_init(&L->uv, &L->trimtimer);
    uv_unref((uv_handle_t *)&L->trimtimer);
    uv_timer_init(&L->uv, &L->retry_timer);
    uv_timer_init(&L->uv, &L->stucktimer);
    uv_unref((uv_handle_t *)&L->stucktimer);
    L->stucktimer.data = L;
    if (uv_poll_start(&L->wake, UV_READABLE, on_wake) != 0) {
        uv_close((uv_handle_t *)&L->wake, NULL);
        uv_close((uv_handle_t *)&L->idle, NULL);
        uv_close((uv_handle_t *)&L->uvtimer, NULL);
        uv_close((uv_handle_t *)&L->trimtimer, NULL);
        uv_close((uv_handle_t *)&L->retry_timer, NULL);
        uv_close((uv_handle_t *)&L->stucktimer, NULL);
        uv_run(&L->uv, UV_RUN_DEFAULT); /* runs the close callbacks */
        uv_loop_close(&L->uv);
        close(L->wakefd);
        return TR_ESYSTEM;
    }
    L->wake.data = L;
    L->idle.data = L;
    L->uvtimer.data = L;
    L->trimtimer.data = L;
    L->retry_timer.data = L;
    tr__timers_init(&L->timers);
    L->calls = (tr__calls){0};
    if (tr__pool_init(&L->pool, (uint16_t)index, rt->pools,
                      (uint16_t)(rt->nloops + TR__PLAIN_POOLS)) != 0) {
        tr__loop_destroy(L);
        return TR_ENOMEM;
    }
    L->pool.plain_from = (uint16_t)rt->nloops;
    L->pool.on_remote = pool_came_home;
    if (tr__loop_metrics_init(L) != 0) {
        tr__loop_destroy(L);
        return TR_ENOMEM;
    }
    /* Run a first turn as soon as the thread starts. */
    idle_start(L);
    return 0;
}

static void thread_main(void *arg)
{
    tr__loop *L = arg;
    /* Nothing runs until every thread of the start exists: a start that
     * fails ends this thread here, and no actor has run (runtime.c). */
    if (!tr__runtime_gate(L->rt))
        return;
    tr__tls_loop = L;
    tr__alloc_set_thread_tag(TR__ALLOC_TAG_LOOP(L->index)); /* for injected failures */
    ck_pr_store_64(&L->m.start_ns, uv_hrtime());
    tr__stuck_start(L);
    uv_run(&L->uv, UV_RUN_DEFAULT);
    tr__pool_flush(&L->pool);
    tr__tls_loop = NULL;
}

int tr__loop_start(tr__loop *L)
{
    if (uv_thread_create(&L->thread, thread_main, L) != 0)
        return TR_ESYSTEM;
    L->started = true;
    return 0;
}

void tr__loop_quit(tr__loop *L)
{
    ck_pr_store_int(&L->quit, 1);
    tr__loop_kick(L);
}

void tr__loop_linger(tr__loop *L, int d)
{
    L->lingering += d;
    if (L->lingering == 0 && L->quit_seen)
        uv_stop(&L->uv);
}

void tr__loop_join(tr__loop *L)
{
    if (L->started) {
        uv_thread_join(&L->thread);
        L->started = false;
    }
}

void tr__loop_destroy(tr__loop *L)
{
    tr__loop_ext_destroy(L); /* their handles close in the uv_run below */
    uv_close((uv_handle_t *)&L->idle, NULL);
    uv_close((uv_handle_t *)&L->wake, NULL);
    uv_close((uv_handle_t *)&L->uvtimer, NULL);
    uv_close((uv_handle_t *)&L->trimtimer, NULL);
    uv_close((uv_handle_t *)&L->retry_timer, NULL);
    uv_close((uv_handle_t *)&L->stucktimer, NULL);
    if (L->signals & 1)
        uv_close((uv_handle_t *)&L->sigint, NULL);
    if (L->signals & 2)
        uv_close((uv_handle_t *)&L->sigterm, NULL);
    if (L->signals & 4)
        uv_close((uv_handle_t *)&L->sigquit, NULL);
    uv_run(&L->uv, UV_RUN_DEFAULT); /* runs the close callbacks */
    uv_loop_close(&L->uv);
    close(L->wakefd);
    tr__timers_destroy(&L->timers, &L->pool);
    tr__calls_table_free(L);
    tr__loop_metrics_destroy(L);
    tr__pool_destroy(&L->pool);
}

/* ---- deterministic stepping (subsys.h, tr__det_*) ------------------------------ */

/* The calling thread acts as L's for a while: what the runtime checks
 * (tr__thread_loop) and the allocation tag of injected failures. */
static int det_enter(tr__loop *L)
{
    int tag = tr__alloc_thread_tag();
    tr__tls_loop = L;
    tr__alloc_set_thread_tag(TR__ALLOC_TAG_LOOP(L->index));
    return tag;
}

static void det_leave(int tag)
{
    tr__tls_loop = NULL;
    tr__alloc_set_thread_tag(tag);
}

/* Moves every loop's pending work into its run queue: injected actors and
 * due timers, again and again, since what one loop's timer sends may make
 * an actor of another runnable. With `retries`, the allocation retries
 * owed too (they are what a stalled runtime waits for). */
static void det_gather(tr_runtime *rt, bool retries)
{
    for (bool again = true; again;) {
        again = false;
        for (unsigned i = 0; i < rt->nloops; i++) {
            tr__loop *L = rt->loops[i];
            bool due = timer_due(L), retry = retries && L->retry;
            if (!due && !retry && !tr__mpsc_maybe_nonempty(&L->inject))
                continue;
            int tag = det_enter(L);
            if (due)
                tr__loop_run_timers(L);
            if (retry)
                run_retries(L);
            if (drain_inject(L) || due || retry)
                again = true;
            det_leave(tag);
        }
        retries = false;
    }
}

static unsigned det_list(tr_runtime *rt, tr__det_item *out, unsigned cap)
{
    unsigned n = 0;
    for (unsigned i = 0; i < rt->nloops; i++) {
        tr__loop *L = rt->loops[i];
        tr_actor *heads[2] = {L->spawned, L->runq_head};
        for (int h = 0; h < 2; h++)
            for (tr_actor *a = heads[h]; a; a = a->runq.next ? tr__actor_of_runq(a->runq.next) : NULL) {
                if (n < cap)
                    out[n] = (tr__det_item){.kind = TR__DET_ACTOR, .loop = L, .actor = a,
                                            .pid = tr__actor_pid(a)};
                n++;
            }
    }
    if (tr__workers_queued(rt->workers)) {
        if (n < cap)
            out[n] = (tr__det_item){.kind = TR__DET_JOB};
        n++;
    }
    return n;
}

unsigned tr__det_ready(tr_runtime *rt, tr__det_item *out, unsigned cap, uint64_t *next)
{
    det_gather(rt, false);
    unsigned n = det_list(rt, out, cap);
    if (n == 0) { /* stalled: what a failure to allocate held up, if anything */
        det_gather(rt, true);
        n = det_list(rt, out, cap);
    }
    uint64_t earliest = UINT64_MAX;
    for (unsigned i = 0; i < rt->nloops; i++) {
        tr__timer *top = tr__timer_top(&rt->loops[i]->timers);
        if (top && top->deadline < earliest)
            earliest = top->deadline;
    }
    if (next)
        *next = earliest;
    return n;
}

/* Takes `a` off the list at *head (linked through runq; *tail, if any,
 * its last). */
static bool det_unlink(tr_actor **head, tr_actor **tail, tr_actor *a)
{
    tr_actor *prev = NULL;
    for (tr_actor *x = *head; x; prev = x, x = x->runq.next ? tr__actor_of_runq(x->runq.next) : NULL) {
        if (x != a)
            continue;
        if (prev)
            prev->runq.next = a->runq.next;
        else
            *head = a->runq.next ? tr__actor_of_runq(a->runq.next) : NULL;
        if (tail && *tail == a)
            *tail = prev;
        a->runq.next = NULL;
        return true;
    }
    return false;
}

int tr__det_run(tr_runtime *rt, const tr__det_item *it, const int32_t *job_fail)
{
    if (it->kind == TR__DET_JOB)
        return tr__workers_run_one(rt->workers, job_fail) ? 0 : TR_ENOTFOUND;
    tr__loop *L = it->loop;
    tr_actor *a = it->actor;
    if (!det_unlink(&L->spawned, NULL, a) && !det_unlink(&L->runq_head, &L->runq_tail, a))
        return TR_ENOTFOUND;
    int tag = det_enter(L);
    tr__actor_run(L, a); /* one message: batch is 1 in this mode */
    if (L->born)
        tr__loop_run_done(L, NULL, false);
    tr__pool_flush(&L->pool);
    det_leave(tag);
    return 0;
}
