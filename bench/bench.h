/*
 * bench.h — the shared harness of troupe's benchmarks (header-only).
 *
 * Every benchmark: main() reads its sizes from argv, creates a runtime with
 * THREADS loops (default: one per core), spawns one driver actor, and waits.
 * The driver spawns the rest, times the measured part, verifies the result
 * and stops the runtime. main() prints one line in the format of
 * docs/benchmarks.md and exits non-zero on check=FAIL.
 */
#ifndef TROUPE_BENCH_H
#define TROUPE_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <troupe.h>

typedef struct bench_result {
    double seconds; /* wall time of the measured part */
    uint64_t count; /* what the rate counts */
    int ok;         /* the benchmark's own verification */
} bench_result;

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A "Vm...:" figure of /proc/PID/status in kB (e.g. "VmHWM", "VmRSS"),
 * pid 0 for this process; -1 if there is none. */
static inline long bench_proc_status_kb(int pid, const char *field)
{
    char path[64], line[256];
    if (pid)
        snprintf(path, sizeof path, "/proc/%d/status", pid);
    else
        snprintf(path, sizeof path, "/proc/self/status");
    FILE *f = fopen(path, "r");
    size_t n = strlen(field);
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kb = strtol(line + n + 1, NULL, 10);
            break;
        }
    if (f)
        fclose(f);
    return kb;
}

/* The same of this process. */
static inline long bench_status_kb(const char *field)
{
    return bench_proc_status_kb(0, field);
}

static inline long bench_peak_rss_kb(void)
{
    return bench_status_kb("VmHWM");
}

static inline int bench_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The q-quantile (0..1) of the nanosecond figures v[0..n), in
 * microseconds; sorts v. */
static inline double bench_quantile_us(uint64_t *v, size_t n, double q)
{
    qsort(v, n, sizeof *v, bench_cmp_u64);
    return (double)v[(size_t)(q * (double)(n - 1))] / 1000.0;
}

static inline uint64_t bench_arg(int argc, char **argv, int i, uint64_t dflt)
{
    return argc > i ? strtoull(argv[i], NULL, 10) : dflt;
}

/*
 * Placement of the actors a driver spawns. Each benchmark documents its own
 * (what a user would write); PLACEMENT=same|spread in the environment
 * overrides it, for experiments. `same`: the spawner's loop
 * (TR_LOOP_DEFAULT); `spread`: round-robin over all loops.
 */
typedef struct bench_place { int loop; const char *name; } bench_place;

static inline bench_place bench_placement(int spread)
{
    const char *p = getenv("PLACEMENT");
    if (p && strcmp(p, "same") == 0)
        spread = 0;
    else if (p && strcmp(p, "spread") == 0)
        spread = 1;
    bench_place bp = {spread ? TR_LOOP_ROUND_ROBIN : TR_LOOP_DEFAULT,
                      spread ? "round_robin" : "same_loop"};
    return bp;
}

static inline tr_spawn_opts bench_opts(bench_place bp)
{
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.loop = bp.loop;
    return o;
}

/* Sends an empty message of `type` to each of to[0..n); the first error. */
static inline int bench_send_all(tr_actor *self, const tr_pid *to, uint64_t n, uint32_t type)
{
    for (uint64_t i = 0; i < n; i++) {
        int rc = tr_send(self, to[i], type, NULL, 0);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The options every benchmark's runtime starts from: THREADS loops (0 or
 * unset: one per CPU); TROUPE_METRICS=off turns the metrics' per-turn part
 * off (bench/compare --env / --base-env compare the two). */
static inline void bench_options(tr_runtime_options *o)
{
    tr_runtime_options_init(o);
    const char *t = getenv("THREADS");
    o->loops = t ? (unsigned)atoi(t) : 0;
    const char *m = getenv("TROUPE_METRICS");
    if (m && strcmp(m, "off") == 0)
        o->metrics = TR_METRICS_OFF;
}

/* Runs `driver` (its init gets `arg`) on a runtime with bench_options and
 * returns the number of loops used; the driver fills *res and stops the
 * runtime. */
static inline unsigned bench_run(const tr_behavior *driver, const void *arg, size_t len)
{
    tr_runtime_options o;
    bench_options(&o);
    tr_runtime *rt;
    int rc = tr_runtime_create(&rt, &o);
    if (rc != 0) {
        fprintf(stderr, "tr_runtime_create: %s\n", tr_strerror(rc));
        exit(2);
    }
    unsigned loops = tr_runtime_loops(rt);
    tr_runtime_start(rt);
    tr_spawn_opts so;
    tr_spawn_opts_init(&so);
    so.loop = TR_LOOP(0);
    so.arg = arg;
    so.arg_len = len;
    tr_pid d;
    rc = tr_rt_spawn(rt, driver, &so, &d);
    if (rc != 0) {
        fprintf(stderr, "tr_rt_spawn: %s\n", tr_strerror(rc));
        exit(2);
    }
    tr_runtime_wait(rt);
    if (getenv("BENCH_STATS")) /* the loops' counters, for diagnosis */
        tr_runtime_stats_print(rt, stderr);
    tr_runtime_free(rt);
    return loops;
}

/* Prints the result line; returns main()'s exit code. */
static inline int bench_report(const char *name, unsigned threads, uint64_t n,
                               const bench_result *r, const char *unit,
                               const char *placement)
{
    double rate = r->seconds > 0 ? (double)r->count / r->seconds : 0;
    printf("bench=%s impl=troupe threads=%u n=%llu seconds=%.6f rate=%.0f unit=%s "
           "peak_rss_kb=%ld check=%s placement=%s\n",
           name, threads, (unsigned long long)n, r->seconds, rate, unit,
           bench_peak_rss_kb(), r->ok ? "ok" : "FAIL", placement);
    fflush(stdout);
    return r->ok ? 0 : 1;
}

#endif /* TROUPE_BENCH_H */
