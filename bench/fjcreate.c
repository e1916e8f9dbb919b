/*
 * fjcreate — the driver creates N actors and sends each one message; each
 * replies and exits (shared/BENCHMARKS.md). n = N, rate = actors/s.
 *
 * The driver creates in slices of SLICE actors and sends itself a message
 * after each, so its loop runs the new actors (their init, the message,
 * the reply, the exit) between slices: created actors run while the driver
 * is still creating, and only about a slice is alive at once.
 *
 * Placement: the actors are spread round-robin over the loops.
 *   fjcreate [N=1000000]
 */
#include "bench.h"

enum { HELLO = 1, REPLY = 2, MORE = 3 };
#define SLICE 256

static bench_result result;

static int child_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    int rc = tr_send(self, msg->from, REPLY, msg->data, msg->len);
    return rc ? rc : tr_exit(self, TR_EXIT_NORMAL);
}

static const tr_behavior child_b = {.name = "child", .receive = child_receive};

typedef struct driver { uint64_t n, created, replies, sum; double t0; } driver;

static const bench_place *placement;

static int create_slice(tr_actor *self, driver *d)
{
    tr_spawn_opts o = bench_opts(*placement);
    uint64_t end = d->created + SLICE < d->n ? d->created + SLICE : d->n;
    for (; d->created < end; d->created++) {
        tr_pid c;
        int rc = tr_spawn(self, &child_b, &o, &c);
        if (rc == 0)
            rc = tr_send(self, c, HELLO, &d->created, sizeof d->created);
        if (rc != 0)
            return rc;
    }
    return d->created < d->n ? tr_send(self, tr_self(self), MORE, NULL, 0) : 0;
}

static int driver_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    driver *d = state;
    memcpy(&d->n, arg, len);
    d->t0 = bench_now();
    return create_slice(self, d);
}

static int driver_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    driver *d = state;
    if (msg->type == MORE)
        return create_slice(self, d);
    uint64_t i;
    memcpy(&i, msg->data, sizeof i);
    d->sum += i;
    if (++d->replies < d->n)
        return 0;
    result.seconds = bench_now() - d->t0;
    result.count = d->n;
    result.ok = (d->sum == d->n * (d->n - 1) / 2);
    return tr_runtime_stop(tr_runtime_of(self));
}

static const tr_behavior driver_b = {.name = "driver", .state_size = sizeof(driver),
                                     .init = driver_init, .receive = driver_receive};

int main(int argc, char **argv)
{
    uint64_t n = bench_arg(argc, argv, 1, 1000000);
    bench_place bp = bench_placement(1);
    placement = &bp;
    unsigned threads = bench_run(&driver_b, &n, sizeof n);
    return bench_report("fjcreate", threads, n, &result, "actors", bp.name);
}
