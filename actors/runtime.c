/*
 * runtime.c — creating, starting, stopping and freeing a runtime; the root
 * actor; logging.
 *
 * Every actor has a parent. Actors spawned from plain threads are children
 * of the root, an internal actor on loop 0 spawned with the runtime. Stopping
 * the runtime is one exit signal to the root: like any actor, the root stops
 * its children (newest first) and waits for them, each of which does the
 * same for its own subtree; when the root has ended, the loops quit and
 * tr_runtime_wait returns. Freeing then drains what is left in mailboxes and
 * pools on the calling thread, with no loop running.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subsys.h"
#include "workers.h"

static int root_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    (void)msg;
    return 0; /* the root has no use for user mail */
}

const tr_behavior tr__root_behavior = {.name = "root", .receive = root_receive};

/* ---- logging --------------------------------------------------------------- */

static void default_log(void *userdata, tr_log_level level, const char *line)
{
    (void)userdata;
    static const char *names[] = {"debug", "info", "warning", "error"};
    fprintf(stderr, "troupe %s: %s\n", names[level], line);
}

void tr__log(tr_runtime *rt, tr_log_level level, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    rt->opts.log(rt->opts.log_userdata, level, line);
}

/* ---- options --------------------------------------------------------------- */

void tr_runtime_options_init(tr_runtime_options *opts)
{
    if (opts)
        memset(opts, 0, sizeof *opts);
}

#define TR__MAX_PAYLOAD ((size_t)1 << 30)

static int resolve_options(tr_runtime_options *o, const tr_runtime_options *in)
{
    if (in)
        *o = *in;
    else
        tr_runtime_options_init(o);
    if (o->loops == 0) {
        unsigned n = uv_available_parallelism();
        o->loops = n ? n : 1;
        if (o->loops > TR__MAX_LOOPS)
            o->loops = TR__MAX_LOOPS;
    }
    if (o->loops > TR__MAX_LOOPS || o->max_payload > TR__MAX_PAYLOAD ||
        o->max_actors > TR__INDEX_MAX)
        return TR_EINVAL;
    if (o->batch == 0)
        o->batch = 64;
    if (o->turn_budget == 0)
        o->turn_budget = 256;
    if (o->max_payload == 0)
        o->max_payload = (size_t)1 << 20;
    if (o->max_actors == 0)
        o->max_actors = TR__INDEX_MAX;
    if (o->spin_us == 0)
        o->spin_us = 50;
    if (o->workers == 0) {
        unsigned n = uv_available_parallelism();
        o->workers = n ? n : 1;
    }
    if (o->workers > 1024 || o->worker_nice < 0 || o->worker_nice > TR_WORKER_IDLE)
        return TR_EINVAL;
    if (o->job_queue == 0)
        o->job_queue = 4096;
    /* Resolved once: >= 0 ms, or TR_INFINITE for no watchdog. A budget of
     * 0 cannot be asked for: 0 is the default. */
    if (tr__duration_field(o->block_budget_ms, 100, &o->block_budget_ms) != 0)
        return TR_EINVAL;
    if (o->metrics != 0 && o->metrics != TR_METRICS_OFF)
        return TR_EINVAL;
    if (o->metric_behaviors == 0)
        o->metric_behaviors = 128;
    if (o->metric_series == 0)
        o->metric_series = 1024;
    if (o->metric_behaviors > 65536 || o->metric_series > (1u << 20))
        return TR_EINVAL;
    if (tr__duration_field(o->stuck_call_ms, 5000, &o->stuck_call_ms) != 0 ||
        tr__duration_field(o->hang_report_ms, 10000, &o->hang_report_ms) != 0)
        return TR_EINVAL;
    if (!o->log) {
        o->log = default_log;
        o->log_userdata = NULL;
    }
    return 0;
}

/* ---- node numbers ------------------------------------------------------------ */

/*
 * Every runtime alive in the process has its own node number (1..4095), the
 * top field of every pid it makes, so a pid of one runtime handed to another
 * is TR_ENOACTOR instead of naming whatever lives in the same slot there.
 * Numbers are taken in turn (the one after the last taken), so a freed
 * runtime's number comes back as late as possible.
 */
static pthread_mutex_t nodes_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t nodes_used[(TR__NODE_MAX + 1) / 64];
static uint32_t nodes_last;

static int node_take(uint32_t *out)
{
    int rc = TR_ELIMIT;
    pthread_mutex_lock(&nodes_mu);
    for (uint32_t i = 1; i <= TR__NODE_MAX; i++) {
        uint32_t n = (nodes_last + i) % (TR__NODE_MAX + 1);
        if (n == 0 || (nodes_used[n / 64] >> (n % 64)) & 1u)
            continue;
        nodes_used[n / 64] |= (uint64_t)1 << (n % 64);
        nodes_last = n;
        *out = n;
        rc = 0;
        break;
    }
    pthread_mutex_unlock(&nodes_mu);
    return rc;
}

static void node_give(uint32_t n)
{
    if (n == 0)
        return;
    pthread_mutex_lock(&nodes_mu);
    nodes_used[n / 64] &= ~((uint64_t)1 << (n % 64));
    pthread_mutex_unlock(&nodes_mu);
}

/* ---- plain-thread pools ----------------------------------------------------- */

/*
 * Plain threads used to allocate every message from malloc, and the loop
 * that handled it freed it: with a plain thread flooding an actor, the
 * loop's frees queued on the lock of the sender's malloc arena, which the
 * sender held nearly all the time (hardening finding 14: 2.4 k messages
 * handled in 1.5 s, 69 k with a bounded mailbox). Plain threads now lease
 * one of a few pools of the runtime around each allocation (pool.h); the
 * loops hand the blocks back lock-free, as they do each other's.
 */
static int plain_pools_init(tr_runtime *rt)
{
    rt->plain = tr__aligned_alloc(TR__CACHELINE, TR__PLAIN_POOLS * sizeof *rt->plain);
    if (!rt->plain)
        return TR_ENOMEM;
    memset(rt->plain, 0, TR__PLAIN_POOLS * sizeof *rt->plain);
    uint16_t npeers = (uint16_t)(rt->nloops + TR__PLAIN_POOLS);
    for (unsigned i = 0; i < TR__PLAIN_POOLS; i++) {
        rt->pools[rt->nloops + i] = &rt->plain[i];
        if (tr__pool_init(&rt->plain[i], (uint16_t)(rt->nloops + i), rt->pools, npeers) != 0)
            return TR_ENOMEM; /* destroy() frees what was made */
        rt->plain[i].plain_from = (uint16_t)rt->nloops;
    }
    return 0;
}

/* The pool a plain thread first tries: threads spread over the pools. */
static _Thread_local unsigned plain_hint;
static unsigned plain_next;

tr__pool *tr__plain_lease(tr_runtime *rt)
{
    unsigned h = plain_hint;
    if (h == 0)
        h = plain_hint = ck_pr_faa_uint(&plain_next, 1) % TR__PLAIN_POOLS + 1;
    for (unsigned i = 0; i < TR__PLAIN_POOLS; i++) {
        tr__pool *p = &rt->plain[(h - 1 + i) % TR__PLAIN_POOLS];
        if (tr__pool_lease(p))
            return p;
    }
    return NULL; /* all taken: malloc */
}

/* ---- lifecycle -------------------------------------------------------------- */

static void destroy(tr_runtime *rt)
{
    /* Slots first: their queued messages are freed straight to malloc. */
    for (uint32_t c = 0; rt->pids.chunks && c < rt->pids.nchunks; c++) {
        tr_actor *chunk = rt->pids.chunks[c];
        if (!chunk)
            continue;
        for (uint32_t i = 0; i < TR__PIDTAB_CHUNK_SLOTS; i++)
            tr__actor_teardown(&chunk[i]);
    }
    if (rt->loops) {
        for (unsigned i = 0; i < rt->nloops; i++) /* no loop to wake any more */
            if (rt->loops[i])
                rt->loops[i]->pool.on_remote = NULL;
        for (unsigned i = 0; i < rt->nloops; i++) {
            if (rt->loops[i]) {
                tr__loop_destroy(rt->loops[i]);
                free(rt->loops[i]);
            }
        }
    }
    tr__sigres_drop(NULL, &rt->stop_sig); /* unless the stop took it */
    tr__pidtab_destroy(&rt->pids);
    if (rt->reg_ready)
        tr__registry_destroy(rt);
    if (rt->calls_ready)
        tr__calls_destroy(rt);
    tr__workers_destroy(rt->workers);
    tr__vtime_destroy(rt);
    tr__metrics_destroy(rt);
    /* The plain-thread pools last: blocks of theirs were queued everywhere. */
    if (rt->plain) {
        for (unsigned i = 0; i < TR__PLAIN_POOLS; i++)
            tr__pool_destroy(&rt->plain[i]);
        free(rt->plain);
    }
    free(rt->loops);
    free(rt->pools);
    uv_cond_destroy(&rt->cv);
    uv_mutex_destroy(&rt->mu);
    node_give(rt->node);
    free(rt);
}

/*
 * max_actors counts live actors, runtime-wide (rt->live). A slot stays
 * bound to the loop it first served (pidtab.c says why), so freed slots
 * of one loop cannot serve another: the table holds enough for every loop
 * to have had max_actors alive at once — nloops * (max_actors + 1), the
 * one for an actor ending on each loop while a spawn takes a fresh slot,
 * plus the root — up to the 2^26 - 1 a pid can name. Chunks of slots are
 * made on first use, so the size costs only the chunk pointers. With the
 * default max_actors there is nothing to count: the table is the limit.
 */
static uint32_t table_slots(tr_runtime *rt)
{
    uint32_t max = rt->opts.max_actors;
    rt->count_live = max < TR__INDEX_MAX;
    uint64_t slots = (uint64_t)rt->nloops * ((uint64_t)max + 1) + 1;
    return slots < TR__INDEX_MAX ? (uint32_t)slots : TR__INDEX_MAX;
}

int tr_runtime_create(tr_runtime **out, const tr_runtime_options *opts)
{
    if (!out)
        return TR_EINVAL;
    tr_runtime *rt = tr__aligned_alloc(TR__CACHELINE, (sizeof *rt + TR__CACHELINE - 1) &
                                                      ~(size_t)(TR__CACHELINE - 1));
    if (!rt)
        return TR_ENOMEM;
    memset(rt, 0, sizeof *rt);
    int rc = resolve_options(&rt->opts, opts);
    if (rc == 0)
        rc = node_take(&rt->node);
    if (rc != 0) {
        free(rt);
        return rc;
    }
    if (uv_mutex_init(&rt->mu) != 0) {
        node_give(rt->node);
        free(rt);
        return TR_ESYSTEM;
    }
    if (uv_cond_init(&rt->cv) != 0) {
        uv_mutex_destroy(&rt->mu);
        node_give(rt->node);
        free(rt);
        return TR_ESYSTEM;
    }
    rt->nloops = rt->opts.loops;
    rc = tr__calls_init(rt);
    if (rc == 0) {
        rt->calls_ready = 1;
        rc = tr__registry_init(rt);
    }
    if (rc == 0)
        rc = tr__metrics_init(rt);
    if (rc != 0) {
        destroy(rt);
        return rc;
    }
    rt->loops = tr__calloc(rt->nloops, sizeof *rt->loops);
    rt->pools = tr__calloc(rt->nloops + TR__PLAIN_POOLS, sizeof *rt->pools);
    rc = (rt->loops && rt->pools) ? plain_pools_init(rt) : TR_ENOMEM;
    if (rc == 0)
        rc = tr__pidtab_init(&rt->pids, table_slots(rt));
    if (rc == 0)
        rc = tr__workers_create(rt, &rt->workers);
    for (unsigned i = 0; rc == 0 && i < rt->nloops; i++) {
        size_t size = (sizeof(tr__loop) + TR__CACHELINE - 1) & ~(size_t)(TR__CACHELINE - 1);
        tr__loop *L = tr__aligned_alloc(TR__CACHELINE, size);
        if (!L) {
            rc = TR_ENOMEM;
            break;
        }
        memset(L, 0, sizeof *L);
        rt->pools[i] = &L->pool;
        rc = tr__loop_init(L, rt, i);
        if (rc != 0) {
            free(L);
            break;
        }
        rt->loops[i] = L;
    }
    if (rc == 0) {
        tr_spawn_opts so;
        tr_spawn_opts_init(&so);
        so.loop = 0;
        rc = tr__spawn(rt, NULL, NULL, &tr__root_behavior, &so, &rt->root, NULL);
    }
    /* The stop's signal, now: a stop must not depend on memory then. */
    if (rc == 0)
        rc = tr__sigres_make(NULL, &rt->stop_sig);
    if (rc != 0) {
        destroy(rt);
        return rc;
    }
    *out = rt;
    return 0;
}

static void open_gate(tr_runtime *rt, int how)
{
    uv_mutex_lock(&rt->mu);
    rt->start_gate = how;
    uv_cond_broadcast(&rt->cv);
    uv_mutex_unlock(&rt->mu);
}

bool tr__runtime_gate(tr_runtime *rt)
{
    uv_mutex_lock(&rt->mu);
    while (rt->start_gate == 0)
        uv_cond_wait(&rt->cv, &rt->mu);
    bool run = rt->start_gate > 0;
    uv_mutex_unlock(&rt->mu);
    return run;
}

/*
 * All or nothing: the start makes every thread (workers, the watchdog, the
 * loops) and watches the signals, and only then lets the loops run. If any
 * step fails, it undoes every step before it — the loop threads end
 * without running anything, the watchdog and the workers are joined, the
 * signals unwatched — so no actor has run, no thread of the runtime is
 * left, and the runtime is as created: it may be started again, or freed.
 * (A failed start used to leave the watchdog running; a retry made another
 * and the first then read the freed runtime. The loops that had started
 * had run actors.)
 */
int tr_runtime_start(tr_runtime *rt)
{
    if (!rt)
        return TR_EINVAL;
    if (!ck_pr_cas_int(&rt->state, TR__RT_CREATED, TR__RT_RUNNING))
        return TR_EALREADY;
    uv_mutex_lock(&rt->mu);
    rt->start_gate = 0;
    uv_mutex_unlock(&rt->mu);
    int rc = 0;
    bool signals = false, workers = false;
    if (rt->det) { /* deterministic mode (subsys.h): no thread of its own */
        open_gate(rt, 1);
        return 0;
    }
    if (rt->opts.stop_on_signals || rt->opts.report_on_sigquit) {
        rc = tr__loop_watch_signals(rt->loops[0]);
        signals = rc == 0;
    }
    if (rc == 0) {
        workers = true; /* tr__workers_stop joins the ones that started */
        rc = tr__workers_start(rt->workers);
    }
    if (rc == 0)
        rc = tr__watchdog_start(rt);
    unsigned started = 0;
    for (; rc == 0 && started < rt->nloops; started++)
        if ((rc = tr__loop_start(rt->loops[started])) != 0)
            break;
    if (rc == 0) {
        open_gate(rt, 1);
        return 0;
    }
    open_gate(rt, -1); /* the loop threads end without running */
    for (unsigned i = 0; i < started; i++)
        tr__loop_join(rt->loops[i]);
    tr__watchdog_stop(rt);
    if (workers)
        tr__workers_stop(rt->workers);
    if (signals)
        tr__loop_unwatch_signals(rt->loops[0]);
    ck_pr_store_int(&rt->state, TR__RT_CREATED);
    return rc;
}

int tr_runtime_stop(tr_runtime *rt)
{
    if (!rt)
        return TR_EINVAL;
    int s = ck_pr_load_int(&rt->state);
    if (s == TR__RT_CREATED)
        return TR_ENOTSTARTED;
    if (s != TR__RT_RUNNING || !ck_pr_cas_int(&rt->state, TR__RT_RUNNING, TR__RT_STOPPING))
        return TR_EALREADY;
    /* Only the stop that moved the state gets here: the signal made with
     * the runtime is its, and posting it allocates nothing, so the stop
     * cannot be lost (it once was: a stop that could not allocate its
     * signal returned 0, and wait and free blocked forever). */
    tr__loop *L = tr__thread_loop(rt);
    tr_pid from = (L && L->current) ? tr__actor_pid(L->current) : TR_PID_NONE;
    tr__sigres_post(rt, L, &rt->stop_sig, from, rt->root, TR_EXIT_SHUTDOWN, 0, NULL, 0);
    return 0;
}

void tr__runtime_finished(tr_runtime *rt)
{
    uv_mutex_lock(&rt->mu);
    rt->stopped = 1;
    ck_pr_store_int(&rt->state, TR__RT_STOPPED);
    uv_cond_broadcast(&rt->cv);
    uv_mutex_unlock(&rt->mu);
    tr__calls_fail_all(rt);
    for (unsigned i = 0; i < rt->nloops; i++)
        tr__loop_quit(rt->loops[i]);
}

void tr__runtime_permanent_ended(tr_runtime *rt, const tr_down *d)
{
    if (ck_pr_load_int(&rt->state) != TR__RT_RUNNING)
        return; /* ended by the stop itself, or after another */
    uv_mutex_lock(&rt->mu);
    bool first = !rt->exit_set;
    if (first) {
        rt->exit_set = true;
        rt->exit_reason = *d;
        rt->exit_reason.result_len = 0;
        rt->exit_rc = (d->kind == TR_EXIT_NORMAL || d->kind == TR_EXIT_SHUTDOWN)
                          ? 0
                          : TR_EPERMANENT;
    }
    uv_mutex_unlock(&rt->mu);
    if (first) {
        char why[160];
        tr__error_text(why, sizeof why, d->code, d->text);
        tr__log(rt, d->kind == TR_EXIT_NORMAL ? TR_LOG_INFO : TR_LOG_ERROR,
                "permanent actor " TR_PID_FMT " ended (%s%s%s): stopping the runtime",
                TR_PID_ARGS(d->pid), tr_exit_kind_name((tr_exit_kind)d->kind),
                d->kind == TR_EXIT_ERROR ? ", " : "", d->kind == TR_EXIT_ERROR ? why : "");
        tr_runtime_stop(rt); /* TR_EALREADY if a stop raced us: fine */
    }
}

int tr_runtime_wait(tr_runtime *rt)
{
    if (!rt)
        return TR_EINVAL;
    if (tr__on_loop_thread())
        return TR_EWRONGTHREAD;
    if (ck_pr_load_int(&rt->state) == TR__RT_CREATED)
        return TR_ENOTSTARTED;
    uint64_t since = uv_hrtime();
    uv_mutex_lock(&rt->mu);
    while (!rt->stopped) {
        if (!rt->vtime) {
            uv_cond_wait(&rt->cv, &rt->mu);
            continue;
        }
        /* Virtual time (subsys.h): a stop may wait on it (an actor's
         * shutdown timeout), so the hooks may move it. No giving up: the
         * stop always ends. */
        uv_mutex_unlock(&rt->mu);
        int look = tr__vtime_look(rt, UINT64_MAX, since, NULL, NULL);
        uv_mutex_lock(&rt->mu);
        if (look <= 0 && !rt->stopped)
            uv_cond_timedwait(&rt->cv, &rt->mu, TR__VT_POLL_NS);
    }
    int rc = rt->exit_rc;
    uv_mutex_unlock(&rt->mu);
    return rc;
}

int tr_runtime_stopping(const tr_runtime *rt)
{
    return rt && ck_pr_load_int((int *)&rt->state) >= TR__RT_STOPPING;
}

int tr_runtime_exit_reason(tr_runtime *rt, tr_down *out)
{
    if (!rt || !out)
        return TR_EINVAL;
    uv_mutex_lock(&rt->mu);
    int rc = rt->exit_set ? 0 : TR_ENOTFOUND;
    if (rc == 0)
        *out = rt->exit_reason;
    uv_mutex_unlock(&rt->mu);
    return rc;
}

int tr_runtime_free(tr_runtime *rt)
{
    if (!rt)
        return 0;
    /* Not from a loop of any runtime (where nothing may block), nor from
     * the threads it joins: a worker (a job), the watchdog (the log
     * callback). Each would return into freed memory. */
    if (tr__on_loop_thread() || tr__thread_of(rt))
        return TR_EWRONGTHREAD;
    if (ck_pr_load_int(&rt->state) != TR__RT_CREATED) {
        tr_runtime_stop(rt); /* TR_EALREADY if a stop was requested: fine */
        tr_runtime_wait(rt);
        for (unsigned i = 0; i < rt->nloops; i++)
            tr__loop_join(rt->loops[i]);
    }
    tr__watchdog_stop(rt);
    /* Workers may still post outcomes into mailboxes: join them before the
     * slots are torn down. */
    tr__workers_destroy(rt->workers);
    rt->workers = NULL;
    destroy(rt);
    return 0;
}

unsigned tr_runtime_loops(const tr_runtime *rt)
{
    return rt ? rt->nloops : 0;
}
