/*
 * fjcreate — the driver creates N actors and sends each one message; each
 * replies and exits (docs/benchmarks.md). n = N, rate = actors/s.
 *
 * Bounded concurrency, as an actor programmer writes it: the driver keeps
 * up to WINDOW created actors that have not replied yet, and each reply
 * creates the next one. Created actors run while the driver is still
 * creating (a loop runs an actor spawned on it before older work), and
 * only about a window of them is alive at once.
 *
 * Placement: the default (tr_spawn without options): the actors live on
 * the driver's loop. PLACEMENT=spread spreads them round-robin.
 *   fjcreate [N=1000000]
 */
#include "bench.h"

enum { HELLO = 1, REPLY = 2 };
#define WINDOW 1024

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

/* Creates actors up to `upto` (or n) and says hello to each. */
static int create_upto(tr_actor *self, driver *d, uint64_t upto)
{
    tr_spawn_opts o = bench_opts(*placement);
    for (; d->created < upto && d->created < d->n; d->created++) {
        tr_pid c;
        int rc = tr_spawn(self, &child_b, &o, &c);
        if (rc == 0)
            rc = tr_send(self, c, HELLO, &d->created, sizeof d->created);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int driver_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    driver *d = state;
    memcpy(&d->n, arg, len);
    d->t0 = bench_now();
    return create_upto(self, d, WINDOW);
}

static int driver_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    driver *d = state;
    uint64_t i;
    memcpy(&i, msg->data, sizeof i);
    d->sum += i;
    if (++d->replies < d->n)
        return create_upto(self, d, d->replies + WINDOW);
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
    bench_place bp = bench_placement(0);
    placement = &bp;
    unsigned threads = bench_run(&driver_b, &n, sizeof n);
    return bench_report("fjcreate", threads, n, &result, "actors", bp.name);
}
