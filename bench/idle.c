/*
 * idle — what an idle actor costs, and what an idle runtime costs.
 *
 * The driver spawns N actors with no state that wait for mail, in slices
 * (a message to itself between slices keeps its loop responsive), then
 * reports the growth of the resident set divided by N as the rate
 * (unit=bytes_per_actor): the actor, its mailbox, its pid slot and its
 * parent's record of it. Then the runtime sits idle for S seconds with all
 * N actors alive, and the process's CPU time over that window is printed
 * as idle_cpu_pct= (the loops may spin briefly before parking; they must
 * not spin forever).
 *
 * The check: every actor is alive (the loops' actor counts) and the idle
 * window used under 1% CPU.
 *
 * Placement: the actors live on the driver's loop. The driver measures
 * once the loops' actor counts say every one has started (it calls the
 * newest actor and looks again until they do).
 *   idle [N=1000000] [S=5]
 */
#include <sys/resource.h>

#include "bench.h"

enum { MORE = 1, SYNC = 2, WOKE = 3 };
#define SLICE 4096

static int idle_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    return (msg->flags & TR_MSG_REQUEST) ? tr_reply(self, msg, msg->type, NULL, 0) : 0;
}

static const tr_behavior idle_b = {.name = "idle", .receive = idle_receive};

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

typedef struct args { uint64_t n, idle_s; } args;
typedef struct driver {
    args a;
    uint64_t spawned;
    tr_pid last;
    long rss0;
    double t0, cpu0, wall0;
} driver;

static struct {
    bench_result r;
    double bytes_per_actor, idle_cpu_pct;
    uint64_t alive;
} out;

static int spawn_slice(tr_actor *self, driver *d)
{
    uint64_t end = d->spawned + SLICE < d->a.n ? d->spawned + SLICE : d->a.n;
    for (; d->spawned < end; d->spawned++) {
        int rc = tr_spawn(self, &idle_b, NULL, &d->last);
        if (rc != 0)
            return rc;
    }
    if (d->spawned < d->a.n)
        return tr_send(self, tr_self(self), MORE, NULL, 0);
    tr_ref ref;
    return tr_call(self, d->last, SYNC, NULL, 0, TR_INFINITE, &ref);
}

static int driver_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    driver *d = state;
    memcpy(&d->a, arg, len);
    d->rss0 = bench_status_kb("VmRSS");
    d->t0 = bench_now();
    return spawn_slice(self, d);
}

static int driver_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    driver *d = state;
    tr_runtime *rt = tr_runtime_of(self);
    switch (msg->type) {
    case MORE:
        return spawn_slice(self, d);
    case SYNC: {
        tr_loop_stats st[64];
        int loops = tr_runtime_stats(rt, st, 64);
        uint64_t alive = 0;
        for (int i = 0; i < loops && i < 64; i++)
            alive += st[i].actors;
        if (alive < d->a.n + 2) { /* not all started yet (the root and the driver count) */
            tr_ref ref;
            return tr_call(self, d->last, SYNC, NULL, 0, TR_INFINITE, &ref);
        }
        out.alive = alive;
        out.r.seconds = bench_now() - d->t0;
        out.bytes_per_actor = (double)(bench_status_kb("VmRSS") - d->rss0) * 1024.0 / (double)d->a.n;
        d->cpu0 = cpu_seconds();
        d->wall0 = bench_now();
        return tr_send_after(self, tr_self(self), d->a.idle_s * 1000, WOKE, NULL, 0, NULL);
    }
    default:
        out.idle_cpu_pct = 100.0 * (cpu_seconds() - d->cpu0) / (bench_now() - d->wall0);
        return tr_runtime_stop(rt);
    }
}

static const tr_behavior driver_b = {.name = "driver", .state_size = sizeof(driver),
                                     .init = driver_init, .receive = driver_receive};

int main(int argc, char **argv)
{
    args a = {.n = bench_arg(argc, argv, 1, 1000000), .idle_s = bench_arg(argc, argv, 2, 5)};
    unsigned threads = bench_run(&driver_b, &a, sizeof a);
    /* the driver and the root are alive too */
    int ok = out.alive == a.n + 2 && out.idle_cpu_pct < 1.0;
    printf("bench=idle impl=troupe threads=%u n=%llu seconds=%.6f rate=%.0f "
           "unit=bytes_per_actor peak_rss_kb=%ld check=%s placement=same_loop "
           "idle_cpu_pct=%.2f idle_s=%llu alive=%llu\n",
           threads, (unsigned long long)a.n, out.r.seconds, out.bytes_per_actor,
           bench_peak_rss_kb(), ok ? "ok" : "FAIL", out.idle_cpu_pct,
           (unsigned long long)a.idle_s, (unsigned long long)out.alive);
    return ok ? 0 : 1;
}
