/*
 * offload — why CPU work belongs on the worker pool, measured.
 *
 * A "server" actor answers pings. A "cruncher" actor on the same loop keeps
 * a CPU-bound job going (counting primes). The main thread pings the server
 * every millisecond and records the round-trip latency, in three phases:
 *
 *   idle       no crunching
 *   offloaded  the cruncher runs each job with tr_offload: the loop stays free
 *   inline     the cruncher runs the same job inside its handler: every ping
 *              queued behind it waits until the job is done
 *
 * Sizing for a 2-core machine: one event loop and one worker thread, so each
 * has a core; the worker runs under SCHED_IDLE (worker_nice = TR_WORKER_IDLE)
 * so that whenever the loop or the pinging thread wants a core, the kernel
 * gives it to them at once instead of time-slicing with the worker. The main
 * thread sleeps between pings. The numbers then measure troupe, not the
 * kernel's time-slicing.
 *
 *   ./build/examples/offload
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <troupe.h>

enum { PING = 1, START = 2, STOP = 3, CRUNCH = 4, COUNT = 5 };
enum { MODE_OFFLOAD = 1, MODE_INLINE = 2 };

#define PINGS 200
#define JOB_LIMIT 120000 /* primes below this: a few ms of CPU */

/* The CPU work: count primes below `limit` by trial division. */
static uint32_t count_primes(uint32_t limit)
{
    uint32_t n = 0;
    for (uint32_t i = 2; i < limit; i++) {
        int prime = 1;
        for (uint32_t d = 2; d * d <= i; d++)
            if (i % d == 0) {
                prime = 0;
                break;
            }
        n += (uint32_t)prime;
    }
    return n;
}

/* Runs on a worker thread. */
static int primes_job(tr_job *job, const void *arg, size_t len)
{
    uint32_t limit;
    memcpy(&limit, arg, len);
    uint32_t n = count_primes(limit);
    return tr_job_set_result(job, &n, sizeof n);
}

/* ---- the server ---------------------------------------------------------- */

static int server_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == PING)
        return tr_reply(self, msg, PING, NULL, 0);
    return 0;
}

static const tr_behavior server_b = {.name = "server", .receive = server_receive};

/* ---- the cruncher ---------------------------------------------------------- */

typedef struct cruncher_state {
    int mode;    /* 0: stopped */
    uint32_t jobs;
    tr_job_id job;
} cruncher_state;

static int crunch(tr_actor *self, cruncher_state *c)
{
    uint32_t limit = JOB_LIMIT;
    if (c->mode == MODE_OFFLOAD)
        return tr_offload(self, primes_job, &limit, sizeof limit, &c->job);
    /* Inline: the loop is busy for the whole job. The next job starts
     * from a 0 ms timer, i.e. after the loop has served what queued up
     * meanwhile — one job at a time, as with the pool. */
    volatile uint32_t n = count_primes(limit);
    (void)n;
    c->jobs++;
    return tr_send_after(self, tr_self(self), 0, CRUNCH, NULL, 0, NULL);
}

static int cruncher_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    cruncher_state *c = state;
    switch (msg->type) {
    case START:
        memcpy(&c->mode, msg->data, sizeof c->mode);
        c->jobs = 0;
        return crunch(self, c);
    case STOP:
        c->mode = 0;
        return tr_reply(self, msg, COUNT, &c->jobs, sizeof c->jobs);
    case CRUNCH:
        return c->mode == MODE_INLINE ? crunch(self, c) : 0;
    case TR_MSG_JOB_DONE:
        c->jobs++;
        return c->mode == MODE_OFFLOAD ? crunch(self, c) : 0;
    }
    return 0;
}

static const tr_behavior cruncher_b = {.name = "cruncher", .state_size = sizeof(cruncher_state),
                                       .receive = cruncher_receive};

/* ---- main: the pinger --------------------------------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static void phase(tr_runtime *rt, tr_pid server, tr_pid cruncher, const char *name, int mode)
{
    if (mode)
        tr_rt_send(rt, cruncher, START, &mode, sizeof mode);
    uint64_t lat[PINGS];
    for (int i = 0; i < PINGS; i++) {
        struct timespec gap = {0, 1000000}; /* 1 ms between pings */
        nanosleep(&gap, NULL);
        uint64_t t0 = now_ns();
        tr_rt_reply r;
        if (tr_rt_call(rt, server, PING, NULL, 0, 10000, &r) != 0) {
            fprintf(stderr, "ping failed\n");
            exit(1);
        }
        lat[i] = (now_ns() - t0) / 1000u;
        tr_rt_reply_free(&r);
    }
    uint32_t jobs = 0;
    tr_rt_reply r;
    if (tr_rt_call(rt, cruncher, STOP, NULL, 0, 30000, &r) == 0) {
        memcpy(&jobs, r.data, sizeof jobs);
        tr_rt_reply_free(&r);
    }
    qsort(lat, PINGS, sizeof lat[0], cmp_u64);
    printf("%-10s %6d %9llu %9llu %9llu %12u\n", name, PINGS,
           (unsigned long long)lat[PINGS / 2], (unsigned long long)lat[PINGS * 99 / 100],
           (unsigned long long)lat[PINGS - 1], jobs);
}

int main(void)
{
    tr_runtime_options o;
    tr_runtime_options_init(&o);
    o.loops = 1;
    o.workers = 1;
    o.worker_nice = TR_WORKER_IDLE;
    tr_runtime *rt;
    if (tr_runtime_create(&rt, &o) != 0 || tr_runtime_start(rt) != 0)
        return 1;
    tr_pid server, cruncher;
    tr_rt_spawn(rt, &server_b, NULL, &server);
    tr_rt_spawn(rt, &cruncher_b, NULL, &cruncher);
    printf("offload: 1 event loop and 1 worker thread for 2 cores; the worker runs\n"
           "under SCHED_IDLE, so the loop and the pinging thread get a core the\n"
           "moment they want one. %d pings, 1 ms apart, per phase;\n"
           "crunch job = count primes below %d.\n\n",
           PINGS, JOB_LIMIT);
    printf("%-10s %6s %9s %9s %9s %12s\n", "phase", "pings", "p50_us", "p99_us", "max_us",
           "crunch_jobs");
    phase(rt, server, cruncher, "idle", 0);
    phase(rt, server, cruncher, "offloaded", MODE_OFFLOAD);
    phase(rt, server, cruncher, "inline", MODE_INLINE);
    printf("\ninline work makes every ping wait for the job in front of it;\n"
           "offloaded, the loop answers at once while the worker crunches.\n");
    tr_runtime_stop(rt);
    tr_runtime_wait(rt);
    return tr_runtime_free(rt);
}
