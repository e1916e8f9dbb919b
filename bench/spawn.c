/*
 * spawn — one parent spawns N short-lived actors that end at once, and
 * hears each one's end (Erlang's spawn_monitor): the cost of an actor's
 * whole life, create to exit notice. n = N, rate = actors/s.
 *
 * The parent keeps WINDOW children alive at a time: a DOWN spawns the
 * next. The check: N DOWNs, every one a normal exit.
 *
 * Placement: the children live on the parent's loop.
 *   spawn [N=1000000]
 */
#include "bench.h"

#define WINDOW 256

static bench_result result;

static int brief_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return tr_exit(self, TR_EXIT_NORMAL);
}

static int brief_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    (void)msg;
    return 0;
}

static const tr_behavior brief_b = {.name = "brief", .init = brief_init,
                                    .receive = brief_receive};

typedef struct parent { uint64_t n, spawned, downs, normal; double t0; } parent;

static int spawn_one(tr_actor *self, parent *p)
{
    tr_pid pid;
    tr_ref ref;
    p->spawned++;
    return tr_spawn_monitor(self, &brief_b, NULL, &pid, &ref);
}

static int parent_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    parent *p = state;
    memcpy(&p->n, arg, len);
    p->t0 = bench_now();
    while (p->spawned < p->n && p->spawned < WINDOW) {
        int rc = spawn_one(self, p);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int parent_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    parent *p = state;
    if (msg->type != TR_MSG_DOWN)
        return 0;
    tr_down down;
    memcpy(&down, msg->data, sizeof down);
    p->normal += (down.kind == TR_EXIT_NORMAL);
    if (++p->downs < p->n)
        return p->spawned < p->n ? spawn_one(self, p) : 0;
    result.seconds = bench_now() - p->t0;
    result.count = p->n;
    result.ok = (p->normal == p->n);
    return tr_runtime_stop(tr_runtime_of(self));
}

static const tr_behavior parent_b = {.name = "parent", .state_size = sizeof(parent),
                                     .init = parent_init, .receive = parent_receive};

int main(int argc, char **argv)
{
    uint64_t n = bench_arg(argc, argv, 1, 1000000);
    unsigned threads = bench_run(&parent_b, &n, sizeof n);
    return bench_report("spawn", threads, n, &result, "actors", "same_loop");
}
