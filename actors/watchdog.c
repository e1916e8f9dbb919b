/*
 * watchdog.c — blocked-loop detection.
 *
 * The first rule of event-loop programming is "never block the loop". A
 * loop cannot notice its own handler is stuck (it is the one stuck), so a
 * separate thread watches, as Seastar's stall detector and Go's sysmon do:
 * before every callback a loop stores a fresh tick number (and the actor and
 * message type), and 0 after. Every budget/2 the watchdog samples each loop;
 * a non-zero tick it has already seen at least `budget` earlier means one
 * callback has run that long, and it is reported at once — while it is still
 * running, so an endless loop in a handler is reported too. When the
 * callback finally returns, the loop itself reports how long it took.
 *
 * Cost on the loop: three plain stores per callback (no atomic RMW, no
 * fence, no clock read).
 */
#include <stdio.h>
#include <stdlib.h>

#include "loop.h"

typedef struct tr__watchdog {
    tr_runtime *rt;
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cv;
    int stop;
    uint64_t budget_ns; /* UINT64_MAX: no blocked-loop detection */
    uint64_t hang_ns;   /* UINT64_MAX: no hang report */
    uint64_t stop_seen; /* when it first saw the runtime stopping, or 0 */
    bool hang_reported;
} tr__watchdog;

void tr__describe_pid(tr_runtime *rt, tr_pid pid, char *buf, size_t len)
{
    tr_actor *a = tr__pidtab_get(&rt->pids, TR_PID_INDEX(pid));
    char name[TR_NAME_MAX + 1] = "";
    const char *kind = "?";
    if (a) {
        tr__registry_name_of(rt, pid, name, sizeof name);
        const tr_behavior *b = ck_pr_load_ptr(&a->beh);
        if (b && b->name)
            kind = b->name;
    }
    snprintf(buf, len, "actor " TR_PID_FMT "%s%s%s (%s)", TR_PID_ARGS(pid),
             name[0] ? " '" : "", name, name[0] ? "'" : "", kind);
}

/* A stop that has not finished hang_report_ms after it began: the report,
 * once per stop. */
static void check_hang(tr_runtime *rt, tr__watchdog *wd, uint64_t now)
{
    if (wd->hang_ns == UINT64_MAX || wd->hang_reported)
        return;
    if (ck_pr_load_int(&rt->state) != TR__RT_STOPPING) {
        wd->stop_seen = 0;
        return;
    }
    if (!wd->stop_seen) {
        wd->stop_seen = now;
        return;
    }
    if (now - wd->stop_seen < wd->hang_ns)
        return;
    wd->hang_reported = true;
    char why[128];
    snprintf(why, sizeof why, "the stop has not finished after %llu ms; what is still running:",
             (unsigned long long)((now - wd->stop_seen) / 1000000u));
    tr__report_log(rt, why);
}

static void check_loop(tr_runtime *rt, tr__watchdog *wd, tr__loop *L, uint64_t now)
{
    if (wd->budget_ns == UINT64_MAX)
        return;
    uint64_t tick = ck_pr_load_64(&L->busy_tick);
    if (tick == 0 || tick != L->wd_seen_tick) {
        L->wd_seen_tick = tick;
        L->wd_seen_at = now;
        return;
    }
    if (now - L->wd_seen_at < wd->budget_ns || ck_pr_load_64(&L->wd_reported_tick) == tick)
        return;
    tr_pid pid = ck_pr_load_64(&L->busy_pid);
    uint32_t type = ck_pr_load_32(&L->busy_type);
    /* Re-check: the callback may have ended while we read. */
    if (ck_pr_load_64(&L->busy_tick) != tick)
        return;
    char who[TR_NAME_MAX + 96];
    tr__describe_pid(rt, pid, who, sizeof who);
    ck_pr_store_64(&L->wd_reported_since, L->wd_seen_at);
    ck_pr_store_64(&L->wd_reported_tick, tick);
    ck_pr_store_64(&L->stats.blocked, ck_pr_load_64(&L->stats.blocked) + 1);
    tr__log(rt, TR_LOG_WARN,
            "loop %u blocked: %s has been handling message type %u for %llu ms "
            "(budget %llu ms)",
            L->index, who, type, (unsigned long long)((now - L->wd_seen_at) / 1000000u),
            (unsigned long long)(wd->budget_ns / 1000000u));
}

void tr__loop_blocked_ended(tr__loop *L)
{
    uint64_t since = ck_pr_load_64(&L->wd_reported_since);
    uint64_t ms = (uv_hrtime() - since) / 1000000u;
    char who[TR_NAME_MAX + 96];
    tr__describe_pid(L->rt, ck_pr_load_64(&L->busy_pid), who, sizeof who);
    tr__log(L->rt, TR_LOG_WARN, "loop %u unblocked: %s returned after more than %llu ms",
            L->index, who, (unsigned long long)ms);
    ck_pr_store_64(&L->wd_reported_tick, 0);
}

static void watchdog_main(void *arg)
{
    tr__watchdog *wd = arg;
    tr_runtime *rt = wd->rt;
    tr__tls_helper_rt = rt; /* the log callback may not free the runtime */
    uv_mutex_lock(&wd->mu);
    while (!wd->stop) {
        uint64_t half = wd->budget_ns / 2; /* a huge budget: checked hourly */
        if (wd->hang_ns / 4 < half)
            half = wd->hang_ns / 4;
        uv_cond_timedwait(&wd->cv, &wd->mu,
                          half < TR__WAIT_SLICE_NS ? half : TR__WAIT_SLICE_NS);
        if (wd->stop)
            break;
        uint64_t now = uv_hrtime(); /* real time: a stall is a wall-clock matter */
        for (unsigned i = 0; i < rt->nloops; i++)
            check_loop(rt, wd, rt->loops[i], now);
        check_hang(rt, wd, now);
    }
    uv_mutex_unlock(&wd->mu);
}

int tr__watchdog_start(tr_runtime *rt)
{
    /* Resolved by tr_runtime_create. */
    if (rt->opts.block_budget_ms == TR_INFINITE && rt->opts.hang_report_ms == TR_INFINITE)
        return 0;
    tr__watchdog *wd = tr__calloc(1, sizeof *wd);
    if (!wd)
        return TR_ENOMEM;
    wd->rt = rt;
    wd->budget_ns = rt->opts.block_budget_ms == TR_INFINITE
                        ? UINT64_MAX
                        : tr__ms_to_ns(rt->opts.block_budget_ms); /* saturating */
    wd->hang_ns = rt->opts.hang_report_ms == TR_INFINITE ? UINT64_MAX
                                                         : tr__ms_to_ns(rt->opts.hang_report_ms);
    if (uv_mutex_init(&wd->mu) != 0) {
        free(wd);
        return TR_ESYSTEM;
    }
    if (uv_cond_init(&wd->cv) != 0) {
        uv_mutex_destroy(&wd->mu);
        free(wd);
        return TR_ESYSTEM;
    }
    rt->watchdog = wd;
    if (uv_thread_create(&wd->thread, watchdog_main, wd) != 0) {
        rt->watchdog = NULL;
        uv_cond_destroy(&wd->cv);
        uv_mutex_destroy(&wd->mu);
        free(wd);
        return TR_ESYSTEM;
    }
    return 0;
}

void tr__watchdog_stop(tr_runtime *rt)
{
    tr__watchdog *wd = rt->watchdog;
    if (!wd)
        return;
    uv_mutex_lock(&wd->mu);
    wd->stop = 1;
    uv_cond_signal(&wd->cv);
    uv_mutex_unlock(&wd->mu);
    uv_thread_join(&wd->thread);
    uv_cond_destroy(&wd->cv);
    uv_mutex_destroy(&wd->mu);
    free(wd);
    rt->watchdog = NULL;
}
