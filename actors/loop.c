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
 * sender sees `parked` and wakes it with uv_async_send (an eventfd write).
 * A busy loop is never woken: senders pay the syscall only for a parked loop.
 */
#include "loop.h"

#include <stdlib.h>

_Thread_local tr__loop *tr__tls_loop __attribute__((tls_model("initial-exec")));

static void turn(tr__loop *L);

static void idle_start(tr__loop *L);

static void on_idle(uv_idle_t *h)
{
    turn(h->data);
}

static void on_wake(uv_async_t *h)
{
    tr__loop *L = h->data;
    if (ck_pr_load_int(&L->quit)) {
        uv_stop(&L->uv);
        return;
    }
    L->wakeups++;
    turn(L);
}

static void idle_start(tr__loop *L)
{
    if (!L->idle_active) {
        uv_idle_start(&L->idle, on_idle);
        L->idle_active = true;
    }
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
    tr_actor *a = L->runq_head;
    if (a) {
        L->runq_head = a->runq.next ? tr__actor_of_runq(a->runq.next) : NULL;
        if (!L->runq_head)
            L->runq_tail = NULL;
    }
    return a;
}

static void drain_inject(tr__loop *L)
{
    tr__mpsc_node *n;
    while ((n = tr__mpsc_pop(&L->inject)) != NULL)
        tr__loop_runq_append(L, tr__actor_of_runq(n));
}

/* Spins up to spin_us for injected work. True if some arrived. */
static bool spin_for_work(tr__loop *L)
{
    uint64_t spin_ns = (uint64_t)L->rt->opts.spin_us * 1000u;
    if (spin_ns == 0)
        return false;
    uint64_t deadline = uv_hrtime() + spin_ns;
    for (unsigned i = 1;; i++) {
        if (tr__mpsc_maybe_nonempty(&L->inject)) {
            L->spins++;
            return true;
        }
        ck_pr_stall();
        if ((i & 63u) == 0 && uv_hrtime() >= deadline)
            return false;
        if (ck_pr_load_int(&L->quit))
            return false;
    }
}

static void turn(tr__loop *L)
{
    unsigned budget = L->rt->opts.turn_budget;
    unsigned ran = 0;
    drain_inject(L);
    for (; ran < budget; ran++) {
        tr_actor *a = runq_pop(L);
        if (!a)
            break;
        tr__actor_run(L, a);
    }
    tr__pool_flush(&L->pool);
    if (L->runq_head || tr__mpsc_maybe_nonempty(&L->inject)) {
        idle_start(L);
        return;
    }
    if (ran > 0 && spin_for_work(L)) {
        idle_start(L);
        return;
    }
    ck_pr_fas_int(&L->parked, 1);
    if (tr__mpsc_maybe_nonempty(&L->inject)) {
        ck_pr_store_int(&L->parked, 0);
        idle_start(L);
        return;
    }
    idle_stop(L);
}

void tr__loop_wake(tr__loop *L)
{
    if (ck_pr_fas_int(&L->parked, 0))
        uv_async_send(&L->wake);
}

int tr__loop_init(tr__loop *L, tr_runtime *rt, unsigned index)
{
    tr__mpsc_init(&L->inject, false);
    L->parked = 1;
    L->quit = 0;
    ck_spinlock_fas_init(&L->free_lock);
    L->free_slots = NULL;
    L->rt = rt;
    L->index = index;
    L->rr = index;
    if (uv_loop_init(&L->uv) != 0)
        return TR_ESYSTEM;
    if (uv_async_init(&L->uv, &L->wake, on_wake) != 0 ||
        uv_idle_init(&L->uv, &L->idle) != 0) {
        uv_loop_close(&L->uv);
        return TR_ESYSTEM;
    }
    L->wake.data = L;
    L->idle.data = L;
    if (tr__pool_init(&L->pool, (uint16_t)index, rt->pools, (uint16_t)rt->nloops) != 0) {
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
    tr__tls_loop = L;
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
    uv_async_send(&L->wake);
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
    uv_close((uv_handle_t *)&L->idle, NULL);
    uv_close((uv_handle_t *)&L->wake, NULL);
    uv_run(&L->uv, UV_RUN_DEFAULT); /* runs the close callbacks */
    uv_loop_close(&L->uv);
    tr__pool_destroy(&L->pool);
}
