/*
 * big — W workers; each sends a ping to a random peer, waits for the pong,
 * and sends its next ping, until it has had P pongs; meanwhile it answers
 * every ping at once (docs/benchmarks.md). n = 2*W*P: every ping and
 * every pong. A worker that has its P pongs tells the driver and goes on
 * answering; the driver checks that every worker got exactly P pongs and
 * that the pings answered add up to W*P.
 *
 * Placement: the default (tr_spawn without options): the workers live on
 * the driver's loop. PLACEMENT=spread spreads them round-robin.
 *   big [W=500] [P=20000]
 */
#include "bench.h"

enum { PEERS = 1, PING = 2, PONG = 3, DONE = 4, GO = 5 };

static bench_result result;

typedef struct worker {
    tr_pid *peers; /* all workers, self included */
    uint32_t w, me;
    uint64_t p, pongs, pings, rng;
} worker;

typedef struct peers_msg { tr_pid *peers; uint32_t w, me; uint64_t p; } peers_msg;

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static int ping_someone(tr_actor *self, worker *k)
{
    uint32_t to = (uint32_t)(xorshift(&k->rng) % (k->w - 1));
    if (to >= k->me)
        to++; /* never itself */
    return tr_send(self, k->peers[to], PING, NULL, 0);
}

static int worker_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    worker *k = state;
    switch (msg->type) {
    case PING:
        k->pings++;
        return tr_send(self, msg->from, PONG, NULL, 0);
    case PONG:
        if (++k->pongs == k->p) {
            uint64_t r[2] = {k->pongs, k->pings};
            return tr_send(self, tr_parent(self), DONE, r, sizeof r);
        }
        return ping_someone(self, k);
    case GO:
        return ping_someone(self, k);
    case PEERS: {
        peers_msg pm;
        memcpy(&pm, msg->data, sizeof pm);
        k->peers = pm.peers; /* owned by the driver, outlives the workers' use */
        k->w = pm.w;
        k->me = pm.me;
        k->p = pm.p;
        k->rng = 0x9e3779b97f4a7c15ull * (pm.me + 1);
        return 0;
    }
    default: /* the driver asking for the final count of pings answered */
        return tr_reply(self, msg, DONE, &k->pings, sizeof k->pings);
    }
}

static const tr_behavior worker_b = {.name = "worker", .state_size = sizeof(worker),
                                     .receive = worker_receive};

typedef struct args { uint64_t w, p; } args;
typedef struct driver {
    args a;
    tr_pid *peers;
    uint64_t done, pongs_ok, answered, counted;
    double t0;
} driver;

static const bench_place *placement;

static int driver_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    driver *d = state;
    memcpy(&d->a, arg, len);
    if (d->a.w < 2)
        return TR_EINVAL;
    d->peers = calloc(d->a.w, sizeof *d->peers);
    if (!d->peers)
        return TR_ENOMEM;
    tr_spawn_opts o = bench_opts(*placement);
    int rc = 0;
    for (uint32_t i = 0; i < d->a.w && rc == 0; i++)
        rc = tr_spawn(self, &worker_b, &o, &d->peers[i]);
    for (uint32_t i = 0; i < d->a.w && rc == 0; i++) {
        peers_msg pm = {.peers = d->peers, .w = (uint32_t)d->a.w, .me = i, .p = d->a.p};
        rc = tr_send(self, d->peers[i], PEERS, &pm, sizeof pm);
    }
    return rc ? rc : tr_send(self, tr_self(self), GO, NULL, 0);
}

static int driver_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    driver *d = state;
    if (msg->type == GO) {
        d->t0 = bench_now();
        return bench_send_all(self, d->peers, d->a.w, GO);
    }
    uint64_t r[2];
    if (msg->flags & TR_MSG_REPLY) { /* the final count of pings answered */
        memcpy(&r[1], msg->data, sizeof r[1]);
        d->answered += r[1];
        if (++d->counted < d->a.w)
            return 0;
        result.ok = (d->pongs_ok == d->a.w && d->answered == d->a.w * d->a.p);
        free(d->peers);
        d->peers = NULL;
        return tr_runtime_stop(tr_runtime_of(self));
    }
    memcpy(r, msg->data, sizeof r);
    d->pongs_ok += (r[0] == d->a.p);
    if (++d->done < d->a.w)
        return 0;
    /* Every ping has its pong now: the clock stops here. */
    result.seconds = bench_now() - d->t0;
    result.count = 2 * d->a.w * d->a.p;
    tr_ref ref;
    for (uint32_t i = 0; i < d->a.w; i++) {
        int rc = tr_call(self, d->peers[i], DONE, NULL, 0, TR_INFINITE, &ref);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static const tr_behavior driver_b = {.name = "driver", .state_size = sizeof(driver),
                                     .init = driver_init, .receive = driver_receive};

int main(int argc, char **argv)
{
    args a = {.w = bench_arg(argc, argv, 1, 500), .p = bench_arg(argc, argv, 2, 20000)};
    bench_place bp = bench_placement(0);
    placement = &bp;
    unsigned threads = bench_run(&driver_b, &a, sizeof a);
    return bench_report("big", threads, 2 * a.w * a.p, &result, "msgs", bp.name);
}
