/*
 * mailbox — S senders each send M messages to one receiver: N:1 contention
 * on one mailbox (docs/benchmarks.md). n = S*M.
 *
 * Each message carries its sender's index and sequence number, and the
 * receiver checks that every sender's messages arrive in order, none lost.
 *
 * Flow control as an actor programmer writes it: a sender sends a chunk,
 * then calls the receiver (SYNC); the answer says the receiver has caught
 * up to there. Two chunks per sender are in flight.
 *
 * Placement: the senders are spread round-robin over the loops; the
 * receiver is on the driver's loop.
 *   mailbox [S=20] [M=500000]
 */
#include "bench.h"

enum { ITEM = 1, SYNC = 2, DONE = 3, GO = 4 };
#define CHUNK 256

static bench_result result;

typedef struct item { uint32_t sender; uint32_t seq; } item;
typedef struct args { uint64_t s, m; } args;

typedef struct receiver {
    args a;
    uint32_t *next; /* per sender: the sequence number expected next */
    uint64_t got;
    int bad;
} receiver;

static int receiver_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    receiver *r = state;
    memcpy(&r->a, arg, len);
    r->next = calloc(r->a.s, sizeof *r->next);
    return r->next ? 0 : TR_ENOMEM;
}

static int receiver_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    receiver *r = state;
    if (msg->type == SYNC)
        return tr_reply(self, msg, SYNC, NULL, 0);
    item it;
    memcpy(&it, msg->data, sizeof it);
    r->bad |= (it.sender >= r->a.s || it.seq != r->next[it.sender]);
    if (it.sender < r->a.s)
        r->next[it.sender]++;
    if (++r->got < r->a.s * r->a.m)
        return 0;
    uint64_t ok = !r->bad;
    return tr_send(self, tr_parent(self), DONE, &ok, sizeof ok);
}

static void receiver_terminate(tr_actor *self, void *state, const tr_exit_reason *why)
{
    (void)self;
    (void)why;
    free(((receiver *)state)->next);
}

static const tr_behavior receiver_b = {.name = "receiver", .state_size = sizeof(receiver),
                                       .init = receiver_init, .receive = receiver_receive,
                                       .terminate = receiver_terminate};

typedef struct sender_arg { tr_pid to; uint32_t index; uint64_t m; } sender_arg;
typedef struct sender { sender_arg a; uint64_t sent; } sender;

/* Sends the next chunk and a SYNC call behind it. */
static int send_chunk(tr_actor *self, sender *s)
{
    if (s->sent == s->a.m)
        return 0;
    uint64_t end = s->sent + CHUNK < s->a.m ? s->sent + CHUNK : s->a.m;
    for (; s->sent < end; s->sent++) {
        item it = {.sender = s->a.index, .seq = (uint32_t)s->sent};
        int rc = tr_send(self, s->a.to, ITEM, &it, sizeof it);
        if (rc != 0)
            return rc;
    }
    tr_ref ref;
    return tr_call(self, s->a.to, SYNC, NULL, 0, TR_INFINITE, &ref);
}

static int sender_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    memcpy(&((sender *)state)->a, arg, len);
    return 0;
}

static int sender_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    sender *s = state;
    if (msg->type == GO) {
        int rc = send_chunk(self, s);
        return rc ? rc : send_chunk(self, s);
    }
    return send_chunk(self, s); /* a SYNC answer */
}

static const tr_behavior sender_b = {.name = "sender", .state_size = sizeof(sender),
                                     .init = sender_init, .receive = sender_receive};

typedef struct driver { args a; tr_pid *senders; double t0; } driver;

static const bench_place *placement;

static int driver_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    driver *d = state;
    memcpy(&d->a, arg, len);
    d->senders = calloc(d->a.s, sizeof *d->senders);
    if (!d->senders)
        return TR_ENOMEM;
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.arg = &d->a;
    o.arg_len = sizeof d->a;
    tr_pid recv;
    int rc = tr_spawn(self, &receiver_b, &o, &recv);
    o = bench_opts(*placement);
    for (uint32_t i = 0; i < d->a.s && rc == 0; i++) {
        sender_arg sa = {.to = recv, .index = i, .m = d->a.m};
        o.arg = &sa;
        o.arg_len = sizeof sa;
        rc = tr_spawn(self, &sender_b, &o, &d->senders[i]);
    }
    return rc ? rc : tr_send(self, tr_self(self), GO, NULL, 0);
}

static int driver_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    driver *d = state;
    if (msg->type == GO) { /* every actor exists: start the clock and the senders */
        d->t0 = bench_now();
        return bench_send_all(self, d->senders, d->a.s, GO);
    }
    uint64_t ok;
    memcpy(&ok, msg->data, sizeof ok);
    result.seconds = bench_now() - d->t0;
    result.count = d->a.s * d->a.m;
    result.ok = (ok == 1);
    free(d->senders);
    d->senders = NULL;
    return tr_runtime_stop(tr_runtime_of(self));
}

static const tr_behavior driver_b = {.name = "driver", .state_size = sizeof(driver),
                                     .init = driver_init, .receive = driver_receive};

int main(int argc, char **argv)
{
    args a = {.s = bench_arg(argc, argv, 1, 20), .m = bench_arg(argc, argv, 2, 500000)};
    bench_place bp = bench_placement(1);
    placement = &bp;
    unsigned threads = bench_run(&driver_b, &a, sizeof a);
    return bench_report("mailbox", threads, a.s * a.m, &result, "msgs", bp.name);
}
