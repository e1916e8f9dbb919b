/*
 * offload — the worker pool's two numbers (issue: worker pool):
 *
 *   offload_jobs  tiny jobs through tr_offload, 256 in flight: jobs/s
 *   offload_ping  ping round trips from a plain thread to an actor while
 *                 CPU-bound jobs keep every worker busy: p50/p99 latency
 *
 * Placement: one driver actor on loop 0 offloads; the pool has THREADS
 * workers under SCHED_IDLE (see examples/offload.c for why).
 *   offload [jobs=200000] [pings=2000]
 */
#include "bench.h"

enum { NEXT = 1, PING = 2, STOP = 3 };
#define WINDOW 256

static int noop_job(tr_job *job, const void *arg, size_t len)
{
    (void)job;
    (void)arg;
    (void)len;
    return 0;
}

static int burn_job(tr_job *job, const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    volatile uint64_t x = 0;
    for (uint64_t i = 0; i < 3000000 && !tr_job_cancelled(job); i++)
        x += i * i;
    return 0;
}

/* ---- part 1: throughput ------------------------------------------------------ */

static bench_result jobs_result;

typedef struct jobs_driver {
    uint64_t n, started, done, failed;
    double t0;
} jobs_driver;

static int jobs_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    jobs_driver *d = state;
    memcpy(&d->n, arg, len);
    d->t0 = bench_now();
    tr_job_id id;
    for (; d->started < d->n && d->started < WINDOW; d->started++) {
        int rc = tr_offload(self, noop_job, NULL, 0, &id);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int jobs_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    jobs_driver *d = state;
    if (msg->type == TR_MSG_JOB_DONE)
        d->done++;
    else
        d->failed++;
    if (d->started < d->n) {
        tr_job_id id;
        d->started++;
        return tr_offload(self, noop_job, NULL, 0, &id);
    }
    if (d->done + d->failed == d->n) {
        jobs_result.seconds = bench_now() - d->t0;
        jobs_result.count = d->done;
        jobs_result.ok = d->done == d->n && d->failed == 0;
        return tr_runtime_stop(tr_runtime_of(self));
    }
    return 0;
}

static const tr_behavior jobs_b = {.name = "jobs", .state_size = sizeof(jobs_driver),
                                   .init = jobs_init, .receive = jobs_receive};

/* ---- part 2: ping latency under CPU load ---------------------------------------- */

typedef struct loader {
    int stopping;
    unsigned in_flight;
} loader;

static int loader_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    loader *l = state;
    tr_job_id id;
    switch (msg->type) {
    case NEXT: { /* keep every worker busy: one job per worker, renewed */
        unsigned workers;
        memcpy(&workers, msg->data, sizeof workers);
        for (unsigned i = 0; i < workers; i++, l->in_flight++)
            if (tr_offload(self, burn_job, NULL, 0, &id) != 0)
                return -1;
        return 0;
    }
    case PING:
        return tr_reply(self, msg, PING, NULL, 0);
    case STOP:
        l->stopping = 1;
        return tr_reply(self, msg, STOP, NULL, 0);
    default: /* a job ended */
        l->in_flight--;
        if (l->stopping)
            return 0;
        l->in_flight++;
        return tr_offload(self, burn_job, NULL, 0, &id);
    }
}

static const tr_behavior loader_b = {.name = "loader", .state_size = sizeof(loader),
                                     .receive = loader_receive};

int main(int argc, char **argv)
{
    uint64_t njobs = bench_arg(argc, argv, 1, 200000);
    uint64_t npings = bench_arg(argc, argv, 2, 2000);
    /* Part 1 */
    tr_runtime_options o;
    bench_options(&o);
    o.workers = o.loops;
    o.worker_nice = TR_WORKER_IDLE;
    tr_runtime *rt;
    if (tr_runtime_create(&rt, &o) != 0 || tr_runtime_start(rt) != 0)
        return 2;
    unsigned threads = tr_runtime_loops(rt);
    tr_spawn_opts so;
    tr_spawn_opts_init(&so);
    so.loop = TR_LOOP(0);
    so.arg = &njobs;
    so.arg_len = sizeof njobs;
    tr_pid d;
    if (tr_rt_spawn(rt, &jobs_b, &so, &d) != 0)
        return 2;
    tr_runtime_wait(rt);
    tr_runtime_free(rt);
    int rc = bench_report("offload_jobs", threads, njobs, &jobs_result, "jobs",
                          "driver_loop0+workers_idle");

    /* Part 2 */
    if (tr_runtime_create(&rt, &o) != 0 || tr_runtime_start(rt) != 0)
        return 2;
    tr_pid l;
    so.arg = NULL;
    so.arg_len = 0;
    if (tr_rt_spawn(rt, &loader_b, &so, &l) != 0)
        return 2;
    unsigned workers = o.workers ? o.workers : threads;
    tr_rt_send(rt, l, NEXT, &workers, sizeof workers);
    uint64_t *lat = malloc(npings * sizeof *lat); /* round trips, ns */
    bench_result pr = {.ok = lat != NULL};
    double t0 = bench_now();
    for (uint64_t i = 0; pr.ok && i < npings; i++) {
        struct timespec gap = {0, 200000};
        nanosleep(&gap, NULL);
        uint64_t s = bench_now_ns();
        tr_rt_reply r;
        if (tr_rt_call(rt, l, PING, NULL, 0, 10000, &r) != 0)
            pr.ok = 0;
        tr_rt_reply_free(&r);
        lat[i] = bench_now_ns() - s;
    }
    pr.seconds = bench_now() - t0;
    pr.count = npings;
    tr_rt_reply r;
    tr_rt_call(rt, l, STOP, NULL, 0, 10000, &r);
    tr_rt_reply_free(&r);
    tr_runtime_stop(rt);
    tr_runtime_wait(rt);
    tr_runtime_free(rt);
    double p50 = 0, p99 = 0;
    if (pr.ok) {
        p50 = bench_quantile_us(lat, npings, 0.5);
        p99 = bench_quantile_us(lat, npings, 0.99);
    }
    free(lat);
    /* The standard line, then the latency figures as extra fields. */
    double rate = pr.seconds > 0 ? (double)pr.count / pr.seconds : 0;
    printf("bench=offload_ping impl=troupe threads=%u n=%llu seconds=%.6f rate=%.0f "
           "unit=pings peak_rss_kb=%ld check=%s placement=loader_loop0+busy_workers_idle "
           "p50_us=%.1f p99_us=%.1f\n",
           threads, (unsigned long long)npings, pr.seconds, rate, bench_peak_rss_kb(),
           pr.ok ? "ok" : "FAIL", p50, p99);
    return rc || !pr.ok;
}
