/*
 * kit.c — kit runtimes: the virtual clock, settle, the stepping of time,
 * auto-advance, and the observation hook the probes use.
 *
 * Settle is the runtime's quiescence test (tr__quiescent: every loop's
 * rest sequence read twice, the worker pool's count of live jobs) polled
 * with a backoff: the loops write their rest state only when they go to
 * sleep and when they wake, so the message path pays nothing for it.
 * Stepping moves the clock to each timer deadline in turn and settles
 * after each: an interval fires once per period crossed, and what a
 * delivery causes happens before the next deadline.
 */
#include <inttypes.h>
#include <stdio.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kit.h"

#define DEFAULT_PATIENCE_MS 30000
#define DEFAULT_MAX_STEPS 1000000u
#define DEFAULT_START_NS 1000000000u

void tr__kit_backoff(unsigned *round)
{
    /* A loop that ran something spins for its spin_us (50 us) before it
     * rests: yield first, then sleep 10 us .. 1 ms. */
    unsigned r = (*round)++;
    if (r < 32) {
        sched_yield();
        return;
    }
    unsigned shift = r - 32 < 7 ? r - 32 : 7;
    struct timespec ts = {0, (long)(10000u << shift)};
    nanosleep(&ts, NULL);
}

tr__kit *tr__kit_of(const tr_runtime *rt)
{
    tr__kit *kit = tr__vtime_data(rt);
    return kit && kit->magic == TR__KIT_MAGIC ? kit : NULL;
}

bool tr_test_is_kit(const tr_runtime *rt)
{
    return tr__kit_of(rt) != NULL;
}

void tr_test_config_init(tr_test_config *cfg)
{
    if (cfg)
        memset(cfg, 0, sizeof *cfg);
}

/* ---- the clock --------------------------------------------------------------- */

static uint64_t kit_clock(void *ud)
{
    tr__kit *kit = ud;
    return atomic_load_explicit(&kit->now, memory_order_acquire);
}

/* Moves the clock forward to `to` (never back: several threads may move
 * it) and tells the loops. */
static void kit_move(tr__kit *kit, uint64_t to)
{
    uint64_t cur = atomic_load(&kit->now);
    while (cur < to && !atomic_compare_exchange_weak(&kit->now, &cur, to))
        ;
    if (cur < to) {
        tr__kit_release_held(kit); /* delayed messages now due */
        tr_runtime_clock_advanced(kit->rt);
    }
}

/* ---- settle -------------------------------------------------------------------- */

/* Polls until quiescent (1: *next its earliest timer), stop(ud), or the
 * patience is spent. A deterministic runtime (`kit` non-NULL and det) runs
 * its steps instead, until none is left. */
static int settle(tr_runtime *rt, tr__kit *kit, uint64_t *next, tr__kit_stop_fn stop, void *ud)
{
    if (kit && kit->det) {
        if (tr__quiescent(rt, NULL) == TR_EINVAL)
            return TR_EINVAL; /* not started */
        return tr__kit_det_idle(kit, next, stop, ud);
    }
    uint64_t patience_ns = kit ? kit->patience_ns : (uint64_t)DEFAULT_PATIENCE_MS * 1000000u;
    uint64_t start = 0;
    unsigned round = 0;
    for (;;) {
        int q = tr__quiescent(rt, next);
        if (q < 0)
            return q;
        if (q == 1)
            return 0;
        if (stop && stop(ud))
            return 0;
        uint64_t t = uv_hrtime();
        if (!start)
            start = t;
        else if (t - start > patience_ns)
            return TR_ETIMEDOUT;
        tr__kit_backoff(&round);
    }
}

int tr_test_settle(tr_runtime *rt)
{
    if (!rt)
        return TR_EINVAL;
    return settle(rt, tr__kit_of(rt), NULL, NULL, NULL);
}

int tr_test_next_timer(tr_runtime *rt, uint64_t *at)
{
    if (!rt || !at)
        return TR_EINVAL;
    return settle(rt, tr__kit_of(rt), at, NULL, NULL);
}

int tr__kit_step_until(tr__kit *kit, uint64_t target, tr__kit_stop_fn stop, void *ud)
{
    uint32_t steps = 0;
    for (;;) {
        uint64_t next = UINT64_MAX;
        int rc = settle(kit->rt, kit, &next, stop, ud);
        if (rc != 0)
            return rc;
        if (stop && stop(ud))
            return 0;
        uint64_t now = atomic_load(&kit->now), held = tr__kit_held_next(kit);
        if (held < next)
            next = held;
        if (now >= target)
            return 0;
        if (steps++ == kit->max_steps)
            return TR_ELIMIT;
        kit_move(kit, next < target ? next : target);
    }
}

uint64_t tr__kit_deadline(tr__kit *kit, tr_duration ms)
{
    uint64_t end = tr__deadline_from(atomic_load(&kit->now), ms);
    return end == UINT64_MAX ? UINT64_MAX - 1 : end;
}

int tr_test_advance(tr_runtime *rt, tr_duration ms)
{
    tr__kit *kit = tr__kit_of(rt);
    if (!kit || ms < 0)
        return TR_EINVAL;
    return tr__kit_step_until(kit, tr__kit_deadline(kit, ms), NULL, NULL);
}

/* ---- plain threads' waits (subsys.h, tr__vtime) -------------------------------- */

/* A plain thread waits for an answer due by `until`. Busy runtime: the
 * answer may be on its way. Idle: with auto-advance the clock jumps to
 * the next timer or to `until`; otherwise only the test can move it, and
 * the wait ends when the patience is spent. */
static int kit_waiting(tr_runtime *rt, void *ud, uint64_t until, uint64_t since, uint64_t *to)
{
    tr__kit *kit = ud;
    if (kit->det)
        return tr__kit_det_waiting(kit, until, since, to);
    uint64_t next = UINT64_MAX;
    int q = tr__quiescent(rt, &next);
    if (q < 0)
        return TR__VT_GIVE_UP;
    if (q == 1 && tr__kit_jump(kit, next, until, to))
        return TR__VT_MOVE;
    return uv_hrtime() - since > kit->patience_ns ? TR__VT_GIVE_UP : TR__VT_WAIT;
}

bool tr__kit_jump(tr__kit *kit, uint64_t next, uint64_t until, uint64_t *to)
{
    if (!(kit->flags & TR_TEST_AUTO_ADVANCE) && !tr_runtime_stopping(kit->rt))
        return false;
    uint64_t held = tr__kit_held_next(kit), at = until;
    if (next < at)
        at = next;
    if (held < at)
        at = held;
    if (at == UINT64_MAX || at <= atomic_load(&kit->now))
        return false;
    *to = at;
    return true;
}

static void kit_vmove(void *ud, uint64_t to)
{
    kit_move(ud, to);
}

/* ---- observation ---------------------------------------------------------------- */

static void kit_dispatch(void *ud, tr_actor *a, const tr_msg *msg)
{
    tr__kit *kit = ud;
    if (kit->det)
        tr__kit_det_dispatch(kit, a, msg);
    if (atomic_load_explicit(&kit->nwatch, memory_order_acquire) == 0)
        return;
    tr_pid to = tr_self(a);
    uv_mutex_lock(&kit->mu);
    unsigned n = atomic_load_explicit(&kit->nwatch, memory_order_relaxed);
    for (unsigned i = 0; i < n; i++) {
        const tr__kit_watch *w = &kit->watch[i];
        if (w->to == to && (w->from == TR_PROBE_ANY || w->from == msg->from))
            tr__probe_record(w->probe, to, msg, tr_now(kit->rt));
    }
    uv_mutex_unlock(&kit->mu);
}

static void kit_free(void *ud)
{
    tr__kit *kit = ud;
    tr__kit_held_free(kit);
    uv_mutex_destroy(&kit->mu);
    free(kit->items);
    free(kit);
}

/* ---- creation ------------------------------------------------------------------- */

int tr_test_create(tr_runtime **out, const tr_runtime_options *opts, const tr_test_config *cfg)
{
    tr_runtime_options o;
    tr_test_config c;
    if (!out)
        return TR_EINVAL;
    *out = NULL;
    if (opts)
        o = *opts;
    else
        tr_runtime_options_init(&o);
    if (cfg)
        c = *cfg;
    else
        tr_test_config_init(&c);
    if (o.clock || (c.patience_ms < 0 && c.patience_ms != TR_DEFAULT))
        return TR_EINVAL;
    tr__kit *kit = calloc(1, sizeof *kit);
    if (!kit)
        return TR_ENOMEM;
    kit->magic = TR__KIT_MAGIC;
    kit->flags = c.flags;
    kit->det = (c.flags & TR_TEST_DETERMINISTIC) != 0;
    if (kit->det) {
        kit->seed = c.seed;
        if (!kit->seed) { /* a new schedule each run, said so to replay it */
            kit->seed = uv_hrtime() ^ ((uint64_t)(uintptr_t)kit << 16);
            kit->seed = kit->seed ? kit->seed : 1;
            fprintf(stderr, "troupe_test: deterministic runtime, seed %" PRIu64 "\n", kit->seed);
        }
        kit->rng = kit->seed;
        kit->trace = 0xcbf29ce484222325ull; /* FNV-1a's offset basis */
        kit->trace_fn = c.trace;
        kit->trace_ud = c.trace_userdata;
    }
    kit->patience_ns = (uint64_t)(c.patience_ms > 0 ? c.patience_ms : DEFAULT_PATIENCE_MS) * 1000000u;
    kit->max_steps = c.max_steps ? c.max_steps : DEFAULT_MAX_STEPS;
    atomic_init(&kit->now, c.start_ns ? c.start_ns : DEFAULT_START_NS);
    atomic_init(&kit->nwatch, 0);
    if (uv_mutex_init(&kit->mu) != 0) {
        free(kit);
        return TR_ENOMEM;
    }
    o.clock = kit_clock;
    o.clock_userdata = kit;
    tr_runtime *rt;
    int rc = tr_runtime_create(&rt, &o);
    if (rc != 0) {
        kit_free(kit);
        return rc;
    }
    kit->rt = rt;
    tr__vtime vt = {.waiting = kit_waiting, .move = kit_vmove, .destroy = kit_free, .ud = kit};
    rc = tr__vtime_install(rt, &vt);
    if (rc != 0) {
        kit_free(kit);
        tr_runtime_free(rt);
        return rc;
    }
    /* From here the runtime owns the kit (tr__vtime.destroy). */
    tr__observer obs = {.dispatch = kit_dispatch, .fault = tr__kit_fault_hook, .ud = kit};
    rc = tr__observe(rt, &obs);
    if (rc == 0 && kit->det)
        rc = tr__det_install(rt);
    if (rc != 0) {
        tr_runtime_free(rt);
        return rc;
    }
    *out = rt;
    return 0;
}

/* ---- observations (the probes') --------------------------------------------------- */

int tr__kit_watch_add(tr__kit *kit, tr_probe *p, tr_pid from, tr_pid to)
{
    int rc = 0;
    uv_mutex_lock(&kit->mu);
    unsigned n = atomic_load_explicit(&kit->nwatch, memory_order_relaxed);
    if (n == TR__KIT_WATCHES) {
        rc = TR_ELIMIT;
    } else {
        kit->watch[n] = (tr__kit_watch){.probe = p, .from = from, .to = to};
        atomic_store_explicit(&kit->nwatch, n + 1, memory_order_release);
    }
    uv_mutex_unlock(&kit->mu);
    return rc;
}

void tr__kit_watch_remove(tr__kit *kit, const tr_probe *p)
{
    uv_mutex_lock(&kit->mu);
    unsigned n = atomic_load_explicit(&kit->nwatch, memory_order_relaxed), k = 0;
    for (unsigned i = 0; i < n; i++)
        if (kit->watch[i].probe != p)
            kit->watch[k++] = kit->watch[i];
    atomic_store_explicit(&kit->nwatch, k, memory_order_release);
    uv_mutex_unlock(&kit->mu);
}
