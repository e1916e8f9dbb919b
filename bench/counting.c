/*
 * counting — a producer sends N increments to a counter, then asks it for
 * the total (request/reply), which must be N (docs/benchmarks.md).
 *
 * Flow control as an actor programmer writes it: the producer sends a chunk
 * of increments followed by a call (SYNC); the counter's reply says it has
 * caught up to that point, and the producer sends the next chunk. Two
 * chunks are in flight at once, so the counter never waits and memory stays
 * bounded. Both live on the driver's loop (default placement).
 *   counting [N=10000000]
 */
#include "bench.h"

enum { INC = 1, GET = 2, SYNC = 3, TOTAL = 4 };
#define CHUNK 1024

static bench_result result;

typedef struct counter { uint64_t total; } counter;

static int counter_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    counter *c = state;
    if (msg->type == INC) {
        uint64_t v;
        memcpy(&v, msg->data, sizeof v);
        c->total += v;
        return 0;
    }
    if (msg->type == SYNC)
        return tr_reply(self, msg, SYNC, NULL, 0);
    return tr_reply(self, msg, TOTAL, &c->total, sizeof c->total);
}

static const tr_behavior counter_b = {.name = "counter", .state_size = sizeof(counter),
                                      .receive = counter_receive};

typedef struct producer {
    tr_pid counter;
    uint64_t n, sent;
    double t0;
    tr_ref ask;
} producer;

/* Sends the next chunk and a SYNC call behind it; the total at the end. */
static int produce(tr_actor *self, producer *p)
{
    tr_ref ref;
    if (p->sent == p->n)
        return 0; /* the other chunk in flight will ask for the total */
    uint64_t one = 1;
    uint64_t end = p->sent + CHUNK < p->n ? p->sent + CHUNK : p->n;
    for (; p->sent < end; p->sent++) {
        int rc = tr_send(self, p->counter, INC, &one, sizeof one);
        if (rc != 0)
            return rc;
    }
    if (p->sent == p->n)
        return tr_call(self, p->counter, GET, NULL, 0, TR_INFINITE, &p->ask);
    return tr_call(self, p->counter, SYNC, NULL, 0, TR_INFINITE, &ref);
}

static int producer_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    producer *p = state;
    memcpy(&p->n, arg, len);
    int rc = tr_spawn(self, &counter_b, NULL, &p->counter);
    if (rc != 0)
        return rc;
    p->t0 = bench_now();
    rc = produce(self, p);
    return rc ? rc : produce(self, p);
}

static int producer_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    producer *p = state;
    if (msg->type == SYNC)
        return produce(self, p);
    uint64_t total = 0;
    if (msg->type == TOTAL && msg->ref == p->ask)
        memcpy(&total, msg->data, sizeof total);
    result.seconds = bench_now() - p->t0;
    result.count = p->n;
    result.ok = (total == p->n);
    return tr_runtime_stop(tr_runtime_of(self));
}

static const tr_behavior producer_b = {.name = "producer", .state_size = sizeof(producer),
                                       .init = producer_init, .receive = producer_receive};

int main(int argc, char **argv)
{
    uint64_t n = bench_arg(argc, argv, 1, 10000000);
    unsigned threads = bench_run(&producer_b, &n, sizeof n);
    return bench_report("counting", threads, n, &result, "msgs", "same_loop");
}
