/*
 * channel — channel throughput, 1 -> 1 and 4 -> 4, next to a raw ck_ring.
 *
 * channel_PtoC: P producer actors send N items (8 bytes) in total into one
 * channel (capacity 1024); C consumer actors subscribed to it take them as
 * messages, with credit (1024, topped up by 512). A full channel makes a
 * producer wait for the room notification. Producers and consumers are
 * spread round-robin over the loops, so items cross threads. Checked: every
 * item arrives exactly once (the sum of the values).
 *
 * ck_ring_1to1: the same N items through a bare ck MPMC ring of the same
 * capacity between two plain threads that spin — the floor a channel is
 * built on; ratio_channel is channel_1to1's rate over it: the channel's
 * overhead (copies, slot hand-off, credit, wake-ups, actor dispatch).
 * (A bare 4 -> 4 ring with eight spinning threads on this 2-core machine
 * stalled for minutes in ck's producer commit wait, each producer waiting
 * on a preempted one; it is left out until it can be run on more cores.)
 *
 *   channel [N=10000000]
 */
#include <ck_ring.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "bench.h"

enum { GO = 1, ROOM = 2, ITEM = 3, DONE = 4, COUNT = 5 };
#define CAPACITY 1024

typedef struct setup {
    uint64_t n;
    unsigned producers, consumers;
} setup;

static bench_result result;
static setup cfg;

/* ---- actors ----------------------------------------------------------------------------- */

typedef struct producer {
    tr_chan *ch;
    tr_pid driver;
    uint64_t next, end;
} producer;

typedef struct pstart {
    tr_chan *ch;
    tr_pid driver;
    uint64_t from, to;
} pstart;

static int producer_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)len;
    producer *p = state;
    pstart s;
    memcpy(&s, arg, sizeof s);
    p->ch = s.ch;
    p->driver = s.driver;
    p->next = s.from;
    p->end = s.to;
    return tr_send(self, tr_self(self), GO, NULL, 0);
}

static int producer_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)msg;
    producer *p = state;
    for (int i = 0; i < 512 && p->next < p->end; i++) {
        int rc = tr_chan_send(p->ch, &p->next, sizeof p->next);
        if (rc == TR_EFULL)
            return tr_chan_notify_room(self, p->ch, ROOM);
        if (rc != 0)
            return rc;
        p->next++;
    }
    if (p->next < p->end)
        return tr_send(self, tr_self(self), GO, NULL, 0);
    tr_send(self, p->driver, DONE, NULL, 0);
    return tr_exit(self, TR_EXIT_NORMAL);
}

static const tr_behavior producer_b = {.name = "producer", .state_size = sizeof(producer),
                                       .init = producer_init, .receive = producer_receive};

typedef struct consumer {
    tr_ref sub;
    tr_pid driver;
    uint64_t count, sum, credit;
} consumer;

typedef struct cstart {
    tr_chan *ch;
    tr_pid driver;
} cstart;

static int consumer_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)len;
    consumer *c = state;
    cstart s;
    memcpy(&s, arg, sizeof s);
    c->driver = s.driver;
    c->credit = CAPACITY;
    return tr_chan_subscribe(self, s.ch, ITEM, CAPACITY, &c->sub);
}

static int consumer_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    consumer *c = state;
    if (msg->type == ITEM) {
        uint64_t v;
        memcpy(&v, msg->data, sizeof v);
        c->sum += v;
        c->count++;
        if (--c->credit == CAPACITY / 2) {
            c->credit += CAPACITY / 2;
            return tr_chan_request(self, c->sub, CAPACITY / 2);
        }
        return 0;
    }
    if (msg->type == TR_MSG_CHAN_END) {
        uint64_t r[2] = {c->count, c->sum};
        tr_send(self, c->driver, COUNT, r, sizeof r);
        return tr_exit(self, TR_EXIT_NORMAL);
    }
    return 0;
}

static const tr_behavior consumer_b = {.name = "consumer", .state_size = sizeof(consumer),
                                       .init = consumer_init, .receive = consumer_receive};

typedef struct driver {
    tr_chan *ch;
    unsigned producers_left, consumers_left;
    uint64_t count, sum;
    double t0;
} driver;

static int driver_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    driver *d = state;
    tr_chan_opts o;
    tr_chan_opts_init(&o);
    o.capacity = CAPACITY;
    o.item_max = sizeof(uint64_t);
    int rc = tr_chan_create(tr_runtime_of(self), &o, &d->ch);
    if (rc != 0)
        return rc;
    unsigned loops = (unsigned)tr_runtime_loops(tr_runtime_of(self));
    d->producers_left = cfg.producers;
    d->consumers_left = cfg.consumers;
    d->t0 = bench_now();
    tr_spawn_opts so;
    for (unsigned i = 0; i < cfg.consumers; i++) {
        cstart s = {d->ch, tr_self(self)};
        tr_spawn_opts_init(&so);
        so.arg = &s;
        so.arg_len = sizeof s;
        so.loop = TR_LOOP((int)((1 + 2 * i) % loops)); /* consumers and producers alternate */
        tr_pid p;
        if ((rc = tr_spawn(self, &consumer_b, &so, &p)) != 0)
            return rc;
    }
    uint64_t per = cfg.n / cfg.producers;
    for (unsigned i = 0; i < cfg.producers; i++) {
        pstart s = {d->ch, tr_self(self), i * per, i + 1 == cfg.producers ? cfg.n : (i + 1) * per};
        tr_spawn_opts_init(&so);
        so.arg = &s;
        so.arg_len = sizeof s;
        so.loop = TR_LOOP((int)((2 * i) % loops));
        tr_pid p;
        if ((rc = tr_spawn(self, &producer_b, &so, &p)) != 0)
            return rc;
    }
    return 0;
}

static int driver_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    driver *d = state;
    if (msg->type == DONE && --d->producers_left == 0)
        tr_chan_close(d->ch); /* the consumers drain, then get their END */
    if (msg->type == COUNT) {
        uint64_t r[2];
        memcpy(r, msg->data, sizeof r);
        d->count += r[0];
        d->sum += r[1];
        if (--d->consumers_left == 0) {
            result.seconds = bench_now() - d->t0;
            result.count = d->count;
            result.ok = d->count == cfg.n && d->sum == cfg.n * (cfg.n - 1) / 2;
            tr_chan_release(d->ch);
            tr_runtime_stop(tr_runtime_of(self));
        }
    }
    return 0;
}

static const tr_behavior driver_b = {.name = "driver", .state_size = sizeof(driver),
                                     .init = driver_init, .receive = driver_receive};

/* ---- the bare ring ------------------------------------------------------------------------ */

static ck_ring_t ring;
static ck_ring_buffer_t ring_buf[2 * CAPACITY];
static _Atomic uint64_t ring_taken, ring_sum;

typedef struct range {
    uint64_t from, to;
} range;

static void *ring_producer(void *arg)
{
    range *r = arg;
    for (uint64_t v = r->from; v < r->to; v++)
        while (!ck_ring_enqueue_mpmc(&ring, ring_buf, (void *)(uintptr_t)(v + 1)))
            sched_yield();
    return NULL;
}

static void *ring_consumer(void *arg)
{
    (void)arg;
    uint64_t sum = 0, count = 0;
    void *p;
    while (atomic_load(&ring_taken) < cfg.n) {
        if (ck_ring_dequeue_mpmc(&ring, ring_buf, &p)) {
            sum += (uintptr_t)p - 1;
            count++;
            atomic_fetch_add(&ring_taken, 1);
        } else {
            sched_yield();
        }
    }
    atomic_fetch_add(&ring_sum, sum);
    (void)count;
    return NULL;
}

static bench_result run_ring(void)
{
    ck_ring_init(&ring, 2 * CAPACITY);
    atomic_store(&ring_taken, 0);
    atomic_store(&ring_sum, 0);
    pthread_t t[16];
    range rs[8];
    uint64_t per = cfg.n / cfg.producers;
    double t0 = bench_now();
    for (unsigned i = 0; i < cfg.consumers; i++)
        pthread_create(&t[i], NULL, ring_consumer, NULL);
    for (unsigned i = 0; i < cfg.producers; i++) {
        rs[i] = (range){i * per, i + 1 == cfg.producers ? cfg.n : (i + 1) * per};
        pthread_create(&t[cfg.consumers + i], NULL, ring_producer, &rs[i]);
    }
    for (unsigned i = 0; i < cfg.consumers + cfg.producers; i++)
        pthread_join(t[i], NULL);
    bench_result r = {.seconds = bench_now() - t0, .count = cfg.n};
    r.ok = atomic_load(&ring_sum) == cfg.n * (cfg.n - 1) / 2;
    return r;
}

int main(int argc, char **argv)
{
    uint64_t n = bench_arg(argc, argv, 1, 10000000);
    int rc = 0;
    unsigned shapes[2] = {1, 4};
    for (int s = 0; s < 2; s++) {
        cfg = (setup){n, shapes[s], shapes[s]};
        char name[32];
        memset(&result, 0, sizeof result);
        unsigned threads = bench_run(&driver_b, NULL, 0);
        snprintf(name, sizeof name, "channel_%uto%u", shapes[s], shapes[s]);
        rc |= bench_report(name, threads, n, &result, "items",
                           "producers_and_consumers_alternate_loops");
        if (shapes[s] != 1)
            continue; /* see the note at the top */
        bench_result r = run_ring();
        snprintf(name, sizeof name, "ck_ring_%uto%u", shapes[s], shapes[s]);
        double rate = r.seconds > 0 ? (double)r.count / r.seconds : 0;
        printf("bench=%s impl=ck threads=%u n=%llu seconds=%.6f rate=%.0f unit=items "
               "peak_rss_kb=%ld check=%s placement=plain_threads_spinning ratio_channel=%.3f\n",
               name, 2 * shapes[s], (unsigned long long)n, r.seconds, rate, bench_peak_rss_kb(),
               r.ok ? "ok" : "FAIL",
               result.seconds > 0 ? ((double)result.count / result.seconds) / rate : 0);
        rc |= r.ok ? 0 : 1;
    }
    return rc;
}
