/*
 * stuck.c — calls that wait too long, and what runs when a stop hangs
 * (docs/observability.md).
 *
 * The stuck-call check runs on each loop (a libuv timer, unreferenced, off
 * the message path): it looks at the loop's pending calls, publishes those
 * older than stuck_call_ms under the metrics' stuck_mu, and logs each once
 * — at the check after the one that first saw it, when every loop has
 * published — with the chain it belongs to (A -> B -> C), flagged when the
 * chain closes into a cycle.
 *
 * The report (tr_runtime_report) reads what the loops publish — the
 * watchdog's view of each loop's current callback, the actor slots, the
 * stuck calls — and never waits for a loop: it works while they are
 * blocked or stopping.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"
#include "sbuf.h"

/* ---- stuck calls ---------------------------------------------------------------- */

#define TR__STUCK_MAX 256 /* stuck calls a loop publishes */

/* The stuck calls of every loop, gathered under stuck_mu. */
typedef struct gathered {
    tr__stuck *v;
    unsigned n;
} gathered;

static int gather(tr_runtime *rt, gathered *g)
{
    tr__metrics *M = rt->metrics;
    uv_mutex_lock(&M->stuck_mu);
    unsigned n = 0;
    for (unsigned i = 0; i < rt->nloops; i++)
        n += rt->loops[i]->m.nstuck;
    g->v = n ? malloc(n * sizeof *g->v) : NULL;
    g->n = 0;
    if (n && !g->v) {
        uv_mutex_unlock(&M->stuck_mu);
        return TR_ENOMEM;
    }
    for (unsigned i = 0; i < rt->nloops; i++) {
        tr__loop *L = rt->loops[i];
        if (L->m.nstuck)
            memcpy(g->v + g->n, L->m.stuck, L->m.nstuck * sizeof *g->v);
        g->n += L->m.nstuck;
    }
    uv_mutex_unlock(&M->stuck_mu);
    return 0;
}

/* The stuck call of `caller` (its oldest), or -1. */
static int waits_on(const gathered *g, tr_pid caller)
{
    int best = -1;
    for (unsigned i = 0; i < g->n; i++)
        if (g->v[i].caller == caller && (best < 0 || g->v[i].since < g->v[best].since))
            best = (int)i;
    return best;
}

/* Whether following the waits from call `i` comes back to its caller. */
static bool in_cycle(const gathered *g, unsigned i)
{
    tr_pid start = g->v[i].caller, at = g->v[i].callee;
    for (unsigned hops = 0; hops <= g->n; hops++) {
        if (at == start)
            return true;
        int j = waits_on(g, at);
        if (j < 0)
            return false;
        at = g->v[j].callee;
    }
    return false; /* a cycle that does not pass through `start` */
}

/* "A -> B -> C" from call `i`, up to the first repeat ("(cycle)"). */
static void chain_text(tr_runtime *rt, const gathered *g, unsigned i, sbuf *b)
{
    tr_pid seen[16];
    unsigned nseen = 0;
    tr_pid at = g->v[i].caller;
    char who[TR_NAME_MAX + 96];
    tr__describe_pid(rt, at, who, sizeof who);
    sb_str(b, who);
    seen[nseen++] = at;
    int j = (int)i;
    while (j >= 0) {
        at = g->v[j].callee;
        tr__describe_pid(rt, at, who, sizeof who);
        sb_str(b, " -> ");
        sb_str(b, who);
        for (unsigned k = 0; k < nseen; k++)
            if (seen[k] == at) {
                sb_str(b, " (cycle: a logical deadlock)");
                return;
            }
        if (nseen == sizeof seen / sizeof seen[0]) {
            sb_str(b, " -> ...");
            return;
        }
        seen[nseen++] = at;
        j = waits_on(g, at);
    }
}

void tr__stuck_count(tr_runtime *rt, unsigned *stuck, unsigned *cycles)
{
    gathered g;
    *stuck = *cycles = 0;
    if (gather(rt, &g) != 0)
        return;
    *stuck = g.n;
    for (unsigned i = 0; i < g.n; i++)
        *cycles += in_cycle(&g, i);
    free(g.v);
}

int tr_runtime_stuck_calls(tr_runtime *rt, tr_stuck_call *out, unsigned cap)
{
    if (!rt || (!out && cap))
        return TR_EINVAL;
    gathered g;
    int rc = gather(rt, &g);
    if (rc != 0)
        return rc;
    uint64_t now = tr__now(rt);
    for (unsigned i = 0; i < g.n && i < cap; i++) {
        out[i].caller = g.v[i].caller;
        out[i].callee = g.v[i].callee;
        out[i].waited_ms = (tr_duration)((now > g.v[i].since ? now - g.v[i].since : 0) / 1000000u);
        out[i].in_cycle = in_cycle(&g, i);
    }
    free(g.v);
    return (int)g.n;
}

/* The loop's check: publish its calls pending longer than the threshold,
 * log each newly stuck one with its chain. Loop thread, between turns. */
void tr__stuck_check(tr__loop *L)
{
    tr_runtime *rt = L->rt;
    uint64_t now = tr__now(rt);
    uint64_t limit = tr__ms_to_ns(rt->opts.stuck_call_ms);
    tr__stuck local[TR__STUCK_MAX];
    uint32_t fresh[TR__STUCK_MAX];
    unsigned n = 0, nfresh = 0;
    tr__calls *cs = &L->calls;
    for (uint32_t i = 1; i < cs->n && n < TR__STUCK_MAX; i++) {
        tr__call *c = &cs->v[i];
        if (!c->owner || now < c->since || now - c->since < limit)
            continue;
        local[n] = (tr__stuck){.caller = tr__actor_pid(c->owner), .callee = c->callee,
                               .since = c->since};
        /* Logged at the check after the one that first saw it: by then
         * every loop has published what it waits on, so the chain is whole. */
        if (c->reported < 2 && ++c->reported == 2)
            fresh[nfresh++] = n;
        n++;
    }
    tr__metrics *M = rt->metrics;
    uv_mutex_lock(&M->stuck_mu);
    if (n > L->m.capstuck) {
        tr__stuck *v = realloc(L->m.stuck, n * sizeof *v);
        if (v) {
            L->m.stuck = v;
            L->m.capstuck = n;
        }
    }
    unsigned keep = n < L->m.capstuck ? n : L->m.capstuck;
    if (keep)
        memcpy(L->m.stuck, local, keep * sizeof *local);
    L->m.nstuck = keep;
    uv_mutex_unlock(&M->stuck_mu);
    if (!nfresh)
        return;
    gathered g;
    if (gather(rt, &g) != 0)
        return;
    for (unsigned f = 0; f < nfresh; f++) {
        const tr__stuck *s = &local[fresh[f]];
        unsigned i = 0;
        while (i < g.n && !(g.v[i].caller == s->caller && g.v[i].since == s->since))
            i++;
        if (i == g.n)
            continue;
        sbuf b = {0};
        chain_text(rt, &g, i, &b);
        tr__log(rt, TR_LOG_WARN, "stuck call: pending for %llu ms: %s",
                (unsigned long long)((now - s->since) / 1000000u), b.p ? b.p : "?");
        free(b.p);
    }
    free(g.v);
}

static void on_stuck_timer(uv_timer_t *t)
{
    tr__stuck_check(t->data);
}

void tr__stuck_start(tr__loop *L)
{
    tr_duration ms = L->rt->opts.stuck_call_ms;
    if (ms == TR_INFINITE)
        return;
    uint64_t period = (uint64_t)ms / 2;
    if (period < 10)
        period = 10;
    uv_timer_start(&L->stucktimer, on_stuck_timer, period, period);
}

/* ---- the report ------------------------------------------------------------------ */

int tr_runtime_report(tr_runtime *rt, FILE *out, unsigned max_actors)
{
    if (!rt || !out)
        return TR_EINVAL;
    if (max_actors == 0)
        max_actors = 100;
    uint64_t now = uv_hrtime();
    char who[TR_NAME_MAX + 96];
    fprintf(out, "troupe report: %u loops\n", rt->nloops);
    for (unsigned i = 0; i < rt->nloops; i++) {
        tr__loop *L = rt->loops[i];
        uint64_t tick = ck_pr_load_64(&L->busy_tick);
        tr_pid pid = ck_pr_load_64(&L->busy_pid);
        uint32_t type = ck_pr_load_32(&L->busy_type);
        uint64_t since = ck_pr_load_64(&L->wd_seen_at);
        if (tick == 0) {
            fprintf(out, "  loop %u: idle\n", i);
            continue;
        }
        tr__describe_pid(rt, pid, who, sizeof who);
        if (ck_pr_load_64(&L->wd_seen_tick) == tick && since && now > since)
            fprintf(out, "  loop %u: %s handling message type 0x%x for %llu ms or more\n", i,
                    who, type, (unsigned long long)((now - since) / 1000000u));
        else
            fprintf(out, "  loop %u: %s handling message type 0x%x\n", i, who, type);
    }
    /* The actors alive: every slot whose generation is odd. */
    unsigned shown = 0, alive = 0;
    uint32_t next = ck_pr_load_32(&rt->pids.next);
    fprintf(out, "  actors alive:\n");
    for (uint32_t idx = 1; idx < next && idx < rt->pids.max; idx++) {
        tr_actor *a = tr__pidtab_get(&rt->pids, idx);
        if (!a)
            continue;
        tr_pid pid = ck_pr_load_64(&a->pid);
        if (!pid || !(ck_pr_load_32(&a->gen) & 1u))
            continue;
        const tr_behavior *b = ck_pr_load_ptr(&a->beh);
        if (b == &tr__root_behavior)
            continue;
        alive++;
        if (shown >= max_actors)
            continue;
        shown++;
        tr__describe_pid(rt, pid, who, sizeof who);
        uint8_t st = ck_pr_load_8(&a->status);
        fprintf(out, "    %s%s\n", who, st == TR__EXITING ? " stopping" : "");
    }
    if (alive > shown)
        fprintf(out, "    ... and %u more\n", alive - shown);
    fprintf(out, "  %u actors alive\n", alive);
    gathered g;
    if (gather(rt, &g) == 0) {
        if (g.n)
            fprintf(out, "  stuck calls (pending over %lld ms):\n",
                    (long long)rt->opts.stuck_call_ms);
        uint64_t t = tr__now(rt);
        for (unsigned i = 0; i < g.n; i++) {
            sbuf b = {0};
            chain_text(rt, &g, i, &b);
            fprintf(out, "    %llu ms: %s\n",
                    (unsigned long long)((t > g.v[i].since ? t - g.v[i].since : 0) / 1000000u),
                    b.p ? b.p : "?");
            free(b.p);
        }
        free(g.v);
    }
    return 0;
}

void tr__report_shutdown_timeout(tr__loop *L, tr_pid child)
{
    tr_runtime *rt = L->rt;
    if (rt->opts.hang_report_ms == TR_INFINITE)
        return;
    tr__metrics *M = rt->metrics;
    uint64_t now = uv_hrtime(), last = ck_pr_load_64(&M->kill_report_at);
    if (last && now - last < tr__ms_to_ns(rt->opts.hang_report_ms))
        return;
    if (!ck_pr_cas_64(&M->kill_report_at, last, now))
        return; /* another loop reports */
    char who[TR_NAME_MAX + 96], why[TR_NAME_MAX + 192];
    tr__describe_pid(rt, child, who, sizeof who);
    snprintf(why, sizeof why,
             "%s has not stopped within its shutdown timeout: it is killed; what is running:",
             who);
    tr__report_log(rt, why);
}

/* The report through the runtime's log, one entry. */
void tr__report_log(tr_runtime *rt, const char *why)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        tr__log(rt, TR_LOG_WARN, "%s (no memory for the report)", why);
        return;
    }
    tr_runtime_report(rt, f, 0);
    fclose(f);
    tr__log(rt, TR_LOG_WARN, "%s\n%s", why, buf ? buf : "");
    free(buf);
}
