/*
 * skynet — a 10-ary tree of actors with L leaves (L a power of 10): each
 * node spawns 10 children; leaf k (0..L-1) sends k to its parent; a node
 * sends the sum of its children's numbers up and exits; the root's total
 * must be L(L-1)/2, 499999500000 for a million (docs/benchmarks.md).
 * n = actors created (1,111,111 for a million leaves), rate = actors/s.
 *
 * Placement: the root's ten children are spread round-robin over the
 * loops; everything below them lives on its parent's loop.
 *   skynet [L=1000000]
 */
#include "bench.h"

enum { NUM = 1 };

static bench_result result;

typedef struct span { uint64_t first, size; int top; } span;
typedef struct node { uint64_t sum; uint32_t got; } node;

static const bench_place *placement;
static const tr_behavior node_b; /* defined below: nodes spawn nodes */

static int node_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    span s;
    memcpy(&s, arg, len);
    if (s.size == 1) {
        int rc = tr_send(self, tr_parent(self), NUM, &s.first, sizeof s.first);
        return rc ? rc : tr_exit(self, TR_EXIT_NORMAL);
    }
    tr_spawn_opts o;
    if (s.top)
        o = bench_opts(*placement);
    else
        tr_spawn_opts_init(&o);
    for (uint64_t i = 0; i < 10; i++) {
        span c = {.first = s.first + i * (s.size / 10), .size = s.size / 10, .top = 0};
        o.arg = &c;
        o.arg_len = sizeof c;
        tr_pid pid;
        int rc = tr_spawn(self, &node_b, &o, &pid);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int node_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    node *n = state;
    uint64_t v;
    memcpy(&v, msg->data, sizeof v);
    n->sum += v;
    if (++n->got < 10)
        return 0;
    int rc = tr_send(self, tr_parent(self), NUM, &n->sum, sizeof n->sum);
    return rc ? rc : tr_exit(self, TR_EXIT_NORMAL);
}

static const tr_behavior node_b = {.name = "node", .state_size = sizeof(node),
                                   .init = node_init, .receive = node_receive};

typedef struct driver { uint64_t leaves; double t0; } driver;

static int driver_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    driver *d = state;
    memcpy(&d->leaves, arg, len);
    for (uint64_t l = d->leaves; l > 1; l /= 10)
        if (l % 10)
            return TR_EINVAL; /* not a power of ten */
    span root = {.first = 0, .size = d->leaves, .top = 1};
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.arg = &root;
    o.arg_len = sizeof root;
    tr_pid pid;
    d->t0 = bench_now();
    return tr_spawn(self, &node_b, &o, &pid);
}

static uint64_t tree_size(uint64_t leaves)
{
    uint64_t n = 0;
    for (uint64_t l = leaves; l >= 1; l /= 10)
        n += l;
    return n;
}

static int driver_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    driver *d = state;
    uint64_t total;
    memcpy(&total, msg->data, sizeof total);
    result.seconds = bench_now() - d->t0;
    result.count = tree_size(d->leaves);
    result.ok = (total == d->leaves * (d->leaves - 1) / 2);
    return tr_runtime_stop(tr_runtime_of(self));
}

static const tr_behavior driver_b = {.name = "driver", .state_size = sizeof(driver),
                                     .init = driver_init, .receive = driver_receive};

int main(int argc, char **argv)
{
    uint64_t leaves = bench_arg(argc, argv, 1, 1000000);
    bench_place bp = bench_placement(1);
    placement = &bp;
    unsigned threads = bench_run(&driver_b, &leaves, sizeof leaves);
    return bench_report("skynet", threads, tree_size(leaves), &result, "actors", bp.name);
}
