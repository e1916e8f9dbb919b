/*
 * sched.c — the test kit's deterministic scheduler, its schedule
 * explorer, and fault injection.
 *
 * The runtime in deterministic mode (subsys.h, tr__det_*) lists what may
 * run next and runs what it is told; this file decides. Each step it asks
 * for the runnable items (actors on every loop, a queued job), picks one
 * with a splitmix64 stream seeded by the run's seed, runs it, and folds
 * what happened into the trace hash (FNV-1a over every dispatch and every
 * step). One thread does it all, so nothing but the seed decides the
 * order: the same seed, the same run.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kit.h"

/* ---- the seeded choice ------------------------------------------------------------ */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t x = (*s += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void fold(tr__kit *kit, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        kit->trace ^= (v >> (8 * i)) & 0xffu;
        kit->trace *= 0x100000001b3ull;
    }
}

/* A pid without its node: every runtime of a process has its own node
 * number, and two runs of one seed must hash alike. */
#define LOCAL(pid) ((pid) & (((uint64_t)1 << 52) - 1))

static void fold_event(tr__kit *kit, const tr_test_event *ev)
{
    fold(kit, (uint64_t)ev->kind);
    fold(kit, LOCAL(ev->actor));
    fold(kit, LOCAL(ev->from));
    fold(kit, ((uint64_t)ev->type << 32) | ev->len);
}

/* ---- steps ----------------------------------------------------------------------------- */

void tr__kit_det_dispatch(tr__kit *kit, tr_actor *a, const tr_msg *msg)
{
    kit->cur.kind = TR_TEST_EV_MESSAGE;
    kit->cur.actor = tr_self(a);
    kit->cur.from = msg->from;
    kit->cur.type = msg->type;
    kit->cur.len = msg->len;
    kit->cur_dispatched = true;
    fold_event(kit, &kit->cur); /* every dispatch, several in a step too */
}

/* What may run now, in kit->items (grown as needed): how many. */
static unsigned ready(tr__kit *kit, uint64_t *next)
{
    for (;;) {
        unsigned n = tr__det_ready(kit->rt, kit->items, kit->cap, next);
        if (n <= kit->cap)
            return n;
        tr__det_item *bigger = realloc(kit->items, n * 2 * sizeof *bigger);
        if (!bigger)
            return kit->cap; /* run among those listed: still deterministic */
        kit->items = bigger;
        kit->cap = n * 2;
    }
}

int tr__kit_det_step(tr__kit *kit, tr_test_event *ev, uint64_t *next)
{
    uint64_t nx = UINT64_MAX;
    tr__kit_release_held(kit);
    unsigned n = ready(kit, &nx);
    uint64_t now = tr_now(kit->rt), held = tr__kit_held_next(kit);
    if (held < nx)
        nx = held;
    if (kit->job_hold > now) { /* a delayed job holds the pool's queue */
        if (n > 0 && n <= kit->cap && kit->items[n - 1].kind == TR__DET_JOB)
            n--; /* the job item is listed last */
        if (kit->job_hold < nx)
            nx = kit->job_hold;
    }
    if (next)
        *next = nx;
    if (n == 0)
        return 0;
    /* One draw per step, even with one choice: the stream stays aligned
     * with the steps, so a replay diverges only where the schedule does. */
    uint64_t r = splitmix(&kit->rng);
    tr__det_item it = kit->items[n == 1 ? 0 : r % n];
    if (it.kind == TR__DET_JOB && kit->job_delay_nth && kit->jobs_run + 1 == kit->job_delay_nth) {
        kit->job_delay_nth = 0; /* its turn has come: it waits first */
        kit->job_hold = now + kit->job_delay_ns;
        return tr__kit_det_step(kit, ev, next);
    }
    int32_t fail = 0;
    if (it.kind == TR__DET_JOB) {
        kit->jobs_run++;
        if (kit->job_fail_nth && kit->jobs_run == kit->job_fail_nth) {
            fail = kit->job_fail_code;
            kit->job_fail_nth = 0;
        }
    }
    kit->steps++;
    kit->cur = (tr_test_event){.kind = it.kind == TR__DET_JOB ? TR_TEST_EV_JOB : TR_TEST_EV_RUN,
                               .actor = it.kind == TR__DET_JOB ? TR_PID_NONE : it.pid,
                               .step = kit->steps,
                               .at = tr_now(kit->rt)};
    kit->cur_dispatched = false;
    tr__det_run(kit->rt, &it, fail ? &fail : NULL);
    kit->cur.at = tr_now(kit->rt);
    if (!kit->cur_dispatched)
        fold_event(kit, &kit->cur);
    if (kit->trace_fn)
        kit->trace_fn(kit->trace_ud, &kit->cur);
    if (ev)
        *ev = kit->cur;
    return 1;
}

int tr__kit_det_idle(tr__kit *kit, uint64_t *next, tr__kit_stop_fn stop, void *ud)
{
    for (uint64_t steps = 0;; steps++) {
        if (stop && stop(ud))
            return 0;
        if (steps == kit->max_steps)
            return TR_ELIMIT;
        if (tr__kit_det_step(kit, NULL, next) == 0)
            return 0;
    }
}

int tr__kit_det_waiting(tr__kit *kit, uint64_t until, uint64_t since, uint64_t *to)
{
    if (kit->wait_since != since) { /* a new wait */
        kit->wait_since = since;
        kit->wait_steps = 0;
    }
    uint64_t next = UINT64_MAX;
    if (tr__kit_det_step(kit, NULL, &next)) {
        if (++kit->wait_steps < kit->max_steps)
            return TR__VT_AGAIN;
        if (kit->wait_steps == kit->max_steps)
            fprintf(stderr, "troupe_test: a wait ran %" PRIu32 " steps without its answer "
                            "(seed %" PRIu64 "): giving up\n",
                    kit->max_steps, kit->seed);
        return TR__VT_GIVE_UP;
    }
    /* Idle: only time can bring the answer now. */
    return tr__kit_jump(kit, next, until, to) ? TR__VT_MOVE : TR__VT_GIVE_UP;
}

/* ---- the public face -------------------------------------------------------------------- */

static tr__kit *det_kit(const tr_runtime *rt)
{
    tr__kit *kit = tr__kit_of(rt);
    return kit && kit->det ? kit : NULL;
}

int tr_test_step(tr_runtime *rt, tr_test_event *ev)
{
    tr__kit *kit = det_kit(rt);
    if (!kit || tr__quiescent(rt, NULL) < 0) /* not started, or a loop's thread */
        return TR_EINVAL;
    return tr__kit_det_step(kit, ev, NULL) ? 0 : TR_ENOTFOUND;
}

uint64_t tr_test_seed(const tr_runtime *rt)
{
    tr__kit *kit = det_kit(rt);
    return kit ? kit->seed : 0;
}

uint64_t tr_test_trace_hash(const tr_runtime *rt)
{
    tr__kit *kit = det_kit(rt);
    return kit ? kit->trace : 0;
}

uint64_t tr_test_steps(const tr_runtime *rt)
{
    tr__kit *kit = det_kit(rt);
    return kit ? kit->steps : 0;
}

int tr_test_explore(const tr_runtime_options *opts, const tr_test_config *cfg, unsigned seeds,
                    tr_test_scenario scenario, void *userdata, tr_test_explored *out)
{
    tr_test_explored res = {0};
    if (out)
        *out = res;
    if (!scenario)
        return TR_EINVAL;
    tr_test_config c;
    if (cfg)
        c = *cfg;
    else
        tr_test_config_init(&c);
    c.flags |= TR_TEST_DETERMINISTIC;
    uint64_t first = c.seed ? c.seed : 1;
    int rc = 0;
    for (unsigned i = 0; i < seeds; i++) {
        c.seed = first + i;
        tr_runtime *rt;
        rc = tr_test_create(&rt, opts, &c);
        if (rc == 0 && (rc = tr_runtime_start(rt)) != 0)
            tr_runtime_free(rt);
        if (rc != 0)
            break;
        res.runs++;
        int failed = scenario(rt, userdata);
        uint64_t hash = tr_test_trace_hash(rt);
        tr_runtime_free(rt);
        if (failed) {
            res.seed = c.seed;
            res.trace_hash = hash;
            res.rc = failed;
            fprintf(stderr,
                    "troupe_test: the scenario failed (%d) with seed %" PRIu64 ", after %u "
                    "seed(s) (trace %016" PRIx64 "); replay: tr_test_config.seed = %" PRIu64 "\n",
                    failed, c.seed, res.runs, hash, c.seed);
            rc = TR_EUNEXPECTED;
            break;
        }
    }
    if (out)
        *out = res;
    return rc;
}

/* ---- faults ------------------------------------------------------------------------------- */

static int add_fault(tr_runtime *rt, const tr__kit_fault *f)
{
    tr__kit *kit = tr__kit_of(rt);
    if (!kit)
        return TR_EINVAL;
    int rc = 0;
    uv_mutex_lock(&kit->mu);
    unsigned n = atomic_load_explicit(&kit->nfault, memory_order_relaxed);
    if (n == TR__KIT_FAULTS) {
        rc = TR_ELIMIT;
    } else {
        kit->fault[n] = *f;
        atomic_store_explicit(&kit->nfault, n + 1, memory_order_release);
    }
    uv_mutex_unlock(&kit->mu);
    return rc;
}

int tr_test_fail_message(tr_runtime *rt, tr_pid actor, uint32_t nth, int code)
{
    if (nth == 0 || code == 0 || actor == TR_PID_NONE || actor == TR_PROBE_ANY)
        return TR_EINVAL;
    tr__kit_fault f = {.kind = TR__KIT_FAIL, .to = actor, .left = nth, .code = code};
    return add_fault(rt, &f);
}

int tr_test_drop_messages(tr_runtime *rt, tr_pid from, tr_pid to, uint32_t count)
{
    if (count == 0 || to == TR_PID_NONE || to == TR_PROBE_ANY)
        return TR_EINVAL;
    tr__kit_fault f = {.kind = TR__KIT_DROP, .from = from, .to = to, .left = count};
    return add_fault(rt, &f);
}

int tr_test_delay_messages(tr_runtime *rt, tr_pid from, tr_pid to, uint32_t count,
                           tr_duration ms)
{
    if (count == 0 || ms <= 0 || to == TR_PID_NONE || to == TR_PROBE_ANY)
        return TR_EINVAL;
    tr__kit_fault f = {.kind = TR__KIT_DELAY, .from = from, .to = to, .left = count,
                       .delay = (uint64_t)ms * 1000000u};
    return add_fault(rt, &f);
}

/* kit->mu held: keeps a copy of `msg` for `to` until `at`; false if it
 * could not be copied (the message is then delivered now). */
static bool hold(tr__kit *kit, tr_pid to, const tr_msg *msg, uint64_t at)
{
    tr__kit_held *h = malloc(sizeof *h + msg->len);
    if (!h)
        return false;
    h->at = at;
    h->to = to;
    h->msg = *msg;
    memcpy(h + 1, msg->data, msg->len);
    h->msg.data = h + 1;
    h->msg.flags &= TR_MSG_REQUEST | TR_MSG_REPLY; /* a copy: never an owned buffer */
    tr__kit_held **p = &kit->held;
    while (*p && (*p)->at <= at)
        p = &(*p)->next;
    h->next = *p;
    *p = h;
    return true;
}

uint64_t tr__kit_held_next(tr__kit *kit)
{
    uv_mutex_lock(&kit->mu);
    uint64_t at = kit->held ? kit->held->at : UINT64_MAX;
    uv_mutex_unlock(&kit->mu);
    return at;
}

void tr__kit_release_held(tr__kit *kit)
{
    uint64_t now = tr_now(kit->rt);
    for (;;) {
        uv_mutex_lock(&kit->mu);
        tr__kit_held *h = kit->held;
        if (h && h->at <= now)
            kit->held = h->next;
        else
            h = NULL;
        uv_mutex_unlock(&kit->mu);
        if (!h)
            return;
        /* Its receiver may have ended meanwhile: then it is gone, as any
         * message to an ended actor. */
        (void)tr__redeliver(kit->rt, h->to, &h->msg);
        free(h);
    }
}

void tr__kit_held_free(tr__kit *kit)
{
    while (kit->held) {
        tr__kit_held *h = kit->held;
        kit->held = h->next;
        free(h);
    }
}

/* The observer's fault hook (kit.c installs it): the first pending fault
 * that matches decides. Loop threads (the test's in deterministic mode). */
int tr__kit_fault_hook(void *ud, tr_actor *a, const tr_msg *msg)
{
    tr__kit *kit = ud;
    if (atomic_load_explicit(&kit->nfault, memory_order_acquire) == 0)
        return 0;
    tr_pid to = tr_self(a);
    int verdict = 0;
    uv_mutex_lock(&kit->mu);
    unsigned n = atomic_load_explicit(&kit->nfault, memory_order_relaxed);
    for (unsigned i = 0; i < n; i++) {
        tr__kit_fault *f = &kit->fault[i];
        if (f->to != to ||
            (f->kind != TR__KIT_FAIL && f->from != TR_PROBE_ANY && f->from != msg->from) ||
            (f->kind == TR__KIT_DELAY && msg->type > TR_MSG_USER_MAX)) /* notices are not delayed */
            continue;
        bool spent;
        if (f->kind != TR__KIT_FAIL) {
            if (f->kind == TR__KIT_DELAY && !hold(kit, to, msg, tr_now(kit->rt) + f->delay))
                continue; /* no memory to hold it: delivered now, not lost */
            verdict = TR__FAULT_DROP;
            if (f->left != UINT32_MAX)
                f->left--;
            spent = f->left == 0;
        } else {
            spent = --f->left == 0;
            if (spent)
                verdict = f->code;
        }
        if (spent) {
            kit->fault[i] = kit->fault[n - 1];
            atomic_store_explicit(&kit->nfault, n - 1, memory_order_release);
        }
        if (verdict)
            break;
    }
    uv_mutex_unlock(&kit->mu);
    return verdict;
}

int tr_test_fail_job(tr_runtime *rt, uint32_t nth, int32_t code)
{
    tr__kit *kit = det_kit(rt);
    if (!kit || nth == 0 || code == 0)
        return TR_EINVAL;
    kit->job_fail_nth = kit->jobs_run + nth;
    kit->job_fail_code = code;
    return 0;
}

int tr_test_delay_job(tr_runtime *rt, uint32_t nth, tr_duration ms)
{
    tr__kit *kit = det_kit(rt);
    if (!kit || nth == 0 || ms <= 0)
        return TR_EINVAL;
    kit->job_delay_nth = kit->jobs_run + nth;
    kit->job_delay_ns = (uint64_t)ms * 1000000u;
    return 0;
}

void tr_test_fail_alloc(uint64_t nth)
{
    if (nth == 0) {
        tr__alloc_disarm();
        return;
    }
    tr__alloc_plan plan = {.mode = TR__ALLOC_NTH, .n = nth};
    tr__alloc_arm(&plan);
}

void tr_test_alloc_counts(uint64_t *attempted, uint64_t *failed)
{
    tr__alloc_counts c = tr__alloc_counts_get();
    if (attempted)
        *attempted = c.attempted;
    if (failed)
        *failed = c.failed;
}
