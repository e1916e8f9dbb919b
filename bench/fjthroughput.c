/*
 * fjthroughput — the driver sends M messages to each of K actors,
 * round-robin (message i to actor i mod K); each actor counts its messages
 * and tells the driver when it has M (docs/benchmarks.md). n = K*M.
 *
 * Each message carries its round number, and every actor checks that it
 * sees 0, 1, 2, ... : nothing lost, duplicated or reordered.
 *
 * Flow control as an actor programmer writes it: the driver sends a chunk
 * of rounds, then calls every worker (SYNC); when all K have answered for a
 * chunk, the next one goes out. Two chunks are in flight, so the workers
 * never wait and memory stays bounded.
 *
 * Placement: the default (tr_spawn without options): the workers live on
 * the driver's loop. PLACEMENT=spread spreads them round-robin.
 *   fjthroughput [K=60] [M=400000]
 */
#include "bench.h"

enum { WORK = 1, SYNC = 2, DONE = 3, START = 4 };
#define CHUNK 32 /* rounds per chunk */

static bench_result result;

typedef struct worker { uint64_t m, seen; int bad; } worker;

static int worker_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    worker *w = state;
    memcpy(&w->m, arg, len);
    return 0;
}

static int worker_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    worker *w = state;
    if (msg->type == SYNC)
        return tr_reply(self, msg, SYNC, msg->data, msg->len);
    uint64_t round;
    memcpy(&round, msg->data, sizeof round);
    w->bad |= (round != w->seen);
    if (++w->seen == w->m) {
        uint64_t ok = !w->bad;
        return tr_send(self, tr_parent(self), DONE, &ok, sizeof ok);
    }
    return 0;
}

static const tr_behavior worker_b = {.name = "worker", .state_size = sizeof(worker),
                                     .init = worker_init, .receive = worker_receive};

typedef struct args { uint64_t k, m; } args;
typedef struct driver {
    args a;
    tr_pid *w;
    uint64_t round, chunk, done, good;
    uint64_t synced[2]; /* answers for the chunks in flight, by parity */
    double t0;
} driver;

/* Sends the next chunk of rounds and a SYNC call to every worker. */
static int send_chunk(tr_actor *self, driver *d)
{
    if (d->round == d->a.m)
        return 0;
    uint64_t end = d->round + CHUNK < d->a.m ? d->round + CHUNK : d->a.m;
    for (; d->round < end; d->round++)
        for (uint64_t i = 0; i < d->a.k; i++) {
            int rc = tr_send(self, d->w[i], WORK, &d->round, sizeof d->round);
            if (rc != 0)
                return rc;
        }
    uint64_t c = d->chunk++;
    tr_ref ref;
    for (uint64_t i = 0; i < d->a.k; i++) {
        int rc = tr_call(self, d->w[i], SYNC, &c, sizeof c, TR_INFINITE, &ref);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static const bench_place *placement;

static int driver_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    driver *d = state;
    memcpy(&d->a, arg, len);
    d->w = calloc(d->a.k, sizeof *d->w);
    if (!d->w)
        return TR_ENOMEM;
    tr_spawn_opts o = bench_opts(*placement);
    o.arg = &d->a.m;
    o.arg_len = sizeof d->a.m;
    for (uint64_t i = 0; i < d->a.k; i++) {
        int rc = tr_spawn(self, &worker_b, &o, &d->w[i]);
        if (rc != 0)
            return rc;
    }
    return tr_send(self, tr_self(self), START, NULL, 0);
}

static int driver_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    driver *d = state;
    if (msg->type == START) {
        d->t0 = bench_now();
        int rc = send_chunk(self, d);
        return rc ? rc : send_chunk(self, d);
    }
    if (msg->type == SYNC) {
        uint64_t c;
        memcpy(&c, msg->data, sizeof c);
        if (++d->synced[c & 1] < d->a.k)
            return 0;
        d->synced[c & 1] = 0;
        return send_chunk(self, d);
    }
    uint64_t ok;
    memcpy(&ok, msg->data, sizeof ok);
    d->good += ok;
    if (++d->done < d->a.k)
        return 0;
    result.seconds = bench_now() - d->t0;
    result.count = d->a.k * d->a.m;
    result.ok = (d->good == d->a.k);
    free(d->w);
    d->w = NULL;
    return tr_runtime_stop(tr_runtime_of(self));
}

static const tr_behavior driver_b = {.name = "driver", .state_size = sizeof(driver),
                                     .init = driver_init, .receive = driver_receive};

int main(int argc, char **argv)
{
    args a = {.k = bench_arg(argc, argv, 1, 60), .m = bench_arg(argc, argv, 2, 400000)};
    bench_place bp = bench_placement(0);
    placement = &bp;
    unsigned threads = bench_run(&driver_b, &a, sizeof a);
    return bench_report("fjthroughput", threads, a.k * a.m, &result, "msgs", bp.name);
}
