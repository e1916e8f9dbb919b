/*
 * stats.c — reading and printing the per-loop counters.
 *
 * Each loop writes its own counters with plain ck_pr stores (no lock
 * prefix, no shared cache line with other loops), so counting costs the
 * send path nothing; readers on other threads load them one by one.
 */
#include "loop.h"

static void read_loop(tr__loop *L, tr_loop_stats *o)
{
    o->handled = ck_pr_load_64(&L->stats.handled);
    o->dropped = ck_pr_load_64(&L->stats.dropped);
    o->late_replies = ck_pr_load_64(&L->stats.late_replies);
    o->wakeups = ck_pr_load_64(&L->stats.wakeups);
    o->spins = ck_pr_load_64(&L->stats.spins);
    o->actors = ck_pr_load_64(&L->stats.actors);
    o->timers = ck_pr_load_64(&L->stats.timers);
    o->blocked = ck_pr_load_64(&L->stats.blocked);
    o->lag_max_us = ck_pr_load_64(&L->stats.lag_max_us);
    o->lag_last_us = ck_pr_load_64(&L->stats.lag_last_us);
}

int tr_runtime_stats(tr_runtime *rt, tr_loop_stats *out, unsigned cap)
{
    if (!rt || (!out && cap))
        return TR_EINVAL;
    for (unsigned i = 0; i < rt->nloops && i < cap; i++)
        read_loop(rt->loops[i], &out[i]);
    return (int)rt->nloops;
}

static void print_row(FILE *f, const char *label, const tr_loop_stats *s)
{
    fprintf(f, "%-6s %12llu %10llu %8llu %10llu %10llu %9llu %9llu %8llu %10llu\n",
            label, (unsigned long long)s->handled, (unsigned long long)s->dropped,
            (unsigned long long)s->late_replies, (unsigned long long)s->wakeups,
            (unsigned long long)s->spins, (unsigned long long)s->actors,
            (unsigned long long)s->timers, (unsigned long long)s->blocked,
            (unsigned long long)s->lag_max_us);
}

int tr_runtime_stats_print(tr_runtime *rt, FILE *out)
{
    if (!rt || !out)
        return TR_EINVAL;
    tr_loop_stats total = {0};
    fprintf(out, "%-6s %12s %10s %8s %10s %10s %9s %9s %8s %10s\n", "loop", "handled",
            "dropped", "late", "wakeups", "spins", "actors", "timers", "blocked",
            "lag_max_us");
    for (unsigned i = 0; i < rt->nloops; i++) {
        tr_loop_stats s;
        read_loop(rt->loops[i], &s);
        char label[16];
        snprintf(label, sizeof label, "%u", i);
        print_row(out, label, &s);
        total.handled += s.handled;
        total.dropped += s.dropped;
        total.late_replies += s.late_replies;
        total.wakeups += s.wakeups;
        total.spins += s.spins;
        total.actors += s.actors;
        total.timers += s.timers;
        total.blocked += s.blocked;
        if (s.lag_max_us > total.lag_max_us)
            total.lag_max_us = s.lag_max_us;
    }
    print_row(out, "total", &total);
    return 0;
}
