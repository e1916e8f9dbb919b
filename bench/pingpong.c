/*
 * pingpong — two actors exchange N round trips (docs/benchmarks.md).
 *
 * Placement: the driver spawns both players with the default placement, so
 * they live on the driver's loop, as a user would write it.
 *   pingpong [N=1000000]
 */
#include "bench.h"

enum { BALL = 1, START = 2, DONE = 3 };

static bench_result result;

typedef struct start { tr_pid peer; uint64_t n; } start;
typedef struct ping { tr_pid peer; uint64_t n; } ping;

static int pong_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    return tr_send(self, msg->from, BALL, msg->data, msg->len);
}

static int ping_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    ping *p = state;
    uint64_t i;
    if (msg->type == START) {
        start s;
        memcpy(&s, msg->data, sizeof s);
        p->peer = s.peer;
        p->n = s.n;
        i = 0;
        return tr_send(self, p->peer, BALL, &i, sizeof i);
    }
    memcpy(&i, msg->data, sizeof i);
    if (++i == p->n)
        return tr_send(self, tr_parent(self), DONE, &i, sizeof i);
    return tr_send(self, p->peer, BALL, &i, sizeof i);
}

static const tr_behavior pong_b = {.name = "pong", .receive = pong_receive};
static const tr_behavior ping_b = {.name = "ping", .state_size = sizeof(ping),
                                   .receive = ping_receive};

typedef struct driver { double t0; uint64_t n; } driver;

static int driver_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    driver *d = state;
    memcpy(&d->n, arg, len);
    tr_pid pi, po;
    int rc = tr_spawn(self, &ping_b, NULL, &pi);
    if (rc == 0)
        rc = tr_spawn(self, &pong_b, NULL, &po);
    if (rc != 0)
        return rc;
    start s = {.peer = po, .n = d->n};
    d->t0 = bench_now();
    return tr_send(self, pi, START, &s, sizeof s);
}

static int driver_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    driver *d = state;
    uint64_t i;
    memcpy(&i, msg->data, sizeof i);
    result.seconds = bench_now() - d->t0;
    result.count = i;
    result.ok = (i == d->n);
    return tr_runtime_stop(tr_runtime_of(self));
}

static const tr_behavior driver_b = {.name = "driver", .state_size = sizeof(driver),
                                     .init = driver_init, .receive = driver_receive};

int main(int argc, char **argv)
{
    uint64_t n = bench_arg(argc, argv, 1, 1000000);
    unsigned threads = bench_run(&driver_b, &n, sizeof n);
    return bench_report("pingpong", threads, n, &result, "roundtrips", "same_loop");
}
