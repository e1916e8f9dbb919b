/*
 * chameneos — C chameneos meet through a mall actor (docs/benchmarks.md).
 * Each asks the mall for a meeting (its colour); the mall pairs two asks
 * into a meeting and tells each the other's colour; each takes the
 * complement colour and asks again. After M meetings the mall answers
 * every ask with STOP; each chameneo reports its meetings, and the total
 * must be 2*M. n = M, rate = meetings/s.
 *
 * Placement: the default (tr_spawn without options): the mall and the
 * chameneos live on the driver's loop. PLACEMENT=spread spreads the
 * chameneos round-robin.
 *   chameneos [C=100] [M=200000]
 */
#include "bench.h"

enum { ASK = 1, MET = 2, STOP = 3, REPORT = 4, GO = 5 };
enum { BLUE, RED, YELLOW };

static bench_result result;

static uint32_t complement(uint32_t a, uint32_t b)
{
    if (a == b)
        return a;
    return 3 - a - b; /* the colour that is neither */
}

typedef struct chameneo { tr_pid mall; uint32_t colour; uint64_t met; } chameneo;
typedef struct cham_arg { tr_pid mall; uint32_t colour; } cham_arg;

static int cham_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    chameneo *c = state;
    cham_arg a;
    memcpy(&a, arg, len);
    c->mall = a.mall;
    c->colour = a.colour;
    return 0;
}

static int cham_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    chameneo *c = state;
    if (msg->type == MET) {
        uint32_t other;
        memcpy(&other, msg->data, sizeof other);
        c->colour = complement(c->colour, other);
        c->met++;
    } else if (msg->type == STOP) {
        int rc = tr_send(self, tr_parent(self), REPORT, &c->met, sizeof c->met);
        return rc ? rc : tr_exit(self, TR_EXIT_NORMAL);
    }
    return tr_send(self, c->mall, ASK, &c->colour, sizeof c->colour); /* GO or MET */
}

static const tr_behavior cham_b = {.name = "chameneo", .state_size = sizeof(chameneo),
                                   .init = cham_init, .receive = cham_receive};

typedef struct mall {
    uint64_t left;    /* meetings still to hold */
    tr_pid waiting;   /* an ask waiting for a partner, or TR_PID_NONE */
    uint32_t waiting_colour;
} mall;

static int mall_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    memcpy(&((mall *)state)->left, arg, len);
    return 0;
}

static int mall_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    mall *m = state;
    if (m->left == 0)
        return tr_send(self, msg->from, STOP, NULL, 0);
    uint32_t colour;
    memcpy(&colour, msg->data, sizeof colour);
    if (m->waiting == TR_PID_NONE) {
        m->waiting = msg->from;
        m->waiting_colour = colour;
        return 0;
    }
    m->left--;
    int rc = tr_send(self, m->waiting, MET, &colour, sizeof colour);
    if (rc == 0)
        rc = tr_send(self, msg->from, MET, &m->waiting_colour, sizeof m->waiting_colour);
    m->waiting = TR_PID_NONE;
    if (rc == 0 && m->left == 0)
        rc = tr_send(self, tr_parent(self), STOP, NULL, 0); /* the clock stops */
    return rc;
}

static const tr_behavior mall_b = {.name = "mall", .state_size = sizeof(mall),
                                   .init = mall_init, .receive = mall_receive};

typedef struct args { uint64_t c, m; } args;
typedef struct driver { args a; tr_pid *chams; uint64_t reports, met; double t0, t1; } driver;

static const bench_place *placement;

static int driver_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    driver *d = state;
    memcpy(&d->a, arg, len);
    d->chams = calloc(d->a.c, sizeof *d->chams);
    if (!d->chams)
        return TR_ENOMEM;
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.arg = &d->a.m;
    o.arg_len = sizeof d->a.m;
    tr_pid mall_pid;
    int rc = tr_spawn(self, &mall_b, &o, &mall_pid);
    o = bench_opts(*placement);
    for (uint32_t i = 0; i < d->a.c && rc == 0; i++) {
        cham_arg ca = {.mall = mall_pid, .colour = i % 3};
        o.arg = &ca;
        o.arg_len = sizeof ca;
        rc = tr_spawn(self, &cham_b, &o, &d->chams[i]);
    }
    return rc ? rc : tr_send(self, tr_self(self), GO, NULL, 0);
}

static int driver_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    driver *d = state;
    if (msg->type == GO) {
        d->t0 = bench_now();
        return bench_send_all(self, d->chams, d->a.c, GO);
    }
    if (msg->type == STOP) { /* the M-th meeting is held */
        d->t1 = bench_now();
        return 0;
    }
    uint64_t met;
    memcpy(&met, msg->data, sizeof met);
    d->met += met;
    if (++d->reports < d->a.c)
        return 0;
    result.seconds = d->t1 - d->t0;
    result.count = d->a.m;
    result.ok = (d->met == 2 * d->a.m && d->t1 > 0);
    free(d->chams);
    d->chams = NULL;
    return tr_runtime_stop(tr_runtime_of(self));
}

static const tr_behavior driver_b = {.name = "driver", .state_size = sizeof(driver),
                                     .init = driver_init, .receive = driver_receive};

int main(int argc, char **argv)
{
    args a = {.c = bench_arg(argc, argv, 1, 100), .m = bench_arg(argc, argv, 2, 200000)};
    bench_place bp = bench_placement(0);
    placement = &bp;
    unsigned threads = bench_run(&driver_b, &a, sizeof a);
    return bench_report("chameneos", threads, a.m, &result, "meetings", bp.name);
}
