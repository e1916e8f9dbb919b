/*
 * threadring — 503 actors in a ring pass a token T times
 * (docs/benchmarks.md). The token carries the hops left; the actor that
 * receives it at 0 reports its number, which must be (T mod 503) + 1.
 *
 * Placement: the driver spawns the ring with the default placement (its
 * own loop).
 *   threadring [T=10000000] [ring=503]
 */
#include "bench.h"

enum { TOKEN = 1, NEXT = 2, FINISHED = 3 };

static bench_result result;

typedef struct node { tr_pid next; uint32_t id; } node;
typedef struct link { tr_pid next; uint32_t id; } link;

static int node_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    node *n = state;
    if (msg->type == NEXT) {
        link l;
        memcpy(&l, msg->data, sizeof l);
        n->next = l.next;
        n->id = l.id;
        return 0;
    }
    uint64_t left;
    memcpy(&left, msg->data, sizeof left);
    if (left == 0)
        return tr_send(self, tr_parent(self), FINISHED, &n->id, sizeof n->id);
    left--;
    return tr_send(self, n->next, TOKEN, &left, sizeof left);
}

static const tr_behavior node_b = {.name = "node", .state_size = sizeof(node),
                                   .receive = node_receive};

typedef struct args { uint64_t hops; uint32_t ring; } args;
typedef struct driver { args a; double t0; } driver;

static int driver_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    driver *d = state;
    memcpy(&d->a, arg, len);
    tr_pid *ring = malloc(d->a.ring * sizeof *ring);
    if (!ring)
        return TR_ENOMEM;
    int rc = 0;
    for (uint32_t i = 0; i < d->a.ring && rc == 0; i++)
        rc = tr_spawn(self, &node_b, NULL, &ring[i]);
    for (uint32_t i = 0; i < d->a.ring && rc == 0; i++) {
        link l = {.next = ring[(i + 1) % d->a.ring], .id = i + 1};
        rc = tr_send(self, ring[i], NEXT, &l, sizeof l);
    }
    if (rc == 0) {
        d->t0 = bench_now();
        rc = tr_send(self, ring[0], TOKEN, &d->a.hops, sizeof d->a.hops);
    }
    free(ring);
    return rc;
}

static int driver_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    driver *d = state;
    uint32_t id;
    memcpy(&id, msg->data, sizeof id);
    result.seconds = bench_now() - d->t0;
    result.count = d->a.hops;
    result.ok = (id == (uint32_t)(d->a.hops % d->a.ring) + 1);
    return tr_runtime_stop(tr_runtime_of(self));
}

static const tr_behavior driver_b = {.name = "driver", .state_size = sizeof(driver),
                                     .init = driver_init, .receive = driver_receive};

int main(int argc, char **argv)
{
    args a = {.hops = bench_arg(argc, argv, 1, 10000000),
              .ring = (uint32_t)bench_arg(argc, argv, 2, 503)};
    unsigned threads = bench_run(&driver_b, &a, sizeof a);
    return bench_report("threadring", threads, a.hops, &result, "hops", "same_loop");
}
