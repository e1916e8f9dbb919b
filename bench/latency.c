/*
 * latency — request/reply round trips across loops, one at a time: a
 * client actor on loop 0 calls (tr_call) a server actor on loop 1, C times.
 * Prints calls/s as the rate and the round trip's p50/p99/p99.9 in
 * microseconds, next to two floors measured in the same program:
 *
 *   eventfd_us  median round trip of two plain threads that block in read()
 *               on an eventfd each and wake each other: what waking a parked
 *               thread costs on this machine;
 *   spin_us     median round trip of two plain threads that spin on a
 *               shared word: the cross-core cache-line floor;
 *   queue_us    median round trip of two spinning threads that pass a
 *               message node through two intrusive MPSC queues (the
 *               mailbox algorithm, with nothing else: no allocation, no
 *               scheduling, no handler): what one message through one
 *               queue each way costs — the floor of any mailbox design.
 *               Each queue's producer end (head) and consumer end (tail,
 *               stub) sit on lines of their own, and the two queues apart,
 *               so no false sharing inflates the floor.
 *
 * and the ratios the runtime is judged by: p50/spin, p50/queue and
 * p99/eventfd. `mid_us` is the mean of the middle half of the round trips:
 * this machine's clock moves in 10 ns steps, and so do the quantiles; the
 * mid-mean shows smaller differences between two builds.
 * The check: every call answered, in order, with its own number.
 *
 * Placement: client on loop 0, server on loop 1 (the same loop when
 * THREADS=1).
 *   latency [C=200000] [floor_rounds=20000]
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bench.h"

enum { ASK = 1, GO = 2 };

/* ---- the floors ------------------------------------------------------------ */

/* A minimal intrusive MPSC queue (Vyukov's, as the mailboxes use). */
typedef struct qnode { _Atomic(struct qnode *) next; uint64_t payload; } qnode;
typedef struct queue {
    _Atomic(qnode *) head;
    char pad0[120]; /* producers' line(s) apart from the consumer's */
    qnode *tail;
    qnode stub;
    char pad1[104];
} queue;

static void q_init(queue *q)
{
    atomic_init(&q->stub.next, NULL);
    atomic_init(&q->head, &q->stub);
    q->tail = &q->stub;
}

static void q_push(queue *q, qnode *n)
{
    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    qnode *prev = atomic_exchange_explicit(&q->head, n, memory_order_acq_rel);
    atomic_store_explicit(&prev->next, n, memory_order_release);
}

/* Spins until a node arrives (single consumer; nodes reused one at a time). */
static qnode *q_pop_spin(queue *q)
{
    for (;;) {
        qnode *tail = q->tail;
        qnode *next = atomic_load_explicit(&tail->next, memory_order_acquire);
        if (tail == &q->stub) {
            if (!next)
                continue;
            q->tail = next;
            tail = next;
            next = atomic_load_explicit(&next->next, memory_order_acquire);
        }
        if (next) {
            q->tail = next;
            return tail;
        }
        if (tail != atomic_load_explicit(&q->head, memory_order_acquire))
            continue;
        q_push(q, &q->stub);
        next = atomic_load_explicit(&tail->next, memory_order_acquire);
        if (next) {
            q->tail = next;
            return tail;
        }
    }
}

typedef struct floor_arg {
    int efd[2];
    atomic_uint_fast64_t word;
    uint64_t rounds;
    queue q[2] __attribute__((aligned(128)));
} floor_arg;

static void *eventfd_echo(void *p)
{
    floor_arg *f = p;
    uint64_t v;
    for (uint64_t i = 0; i < f->rounds; i++) {
        if (read(f->efd[0], &v, sizeof v) != sizeof v || write(f->efd[1], &v, sizeof v) != sizeof v)
            break;
    }
    return NULL;
}

static void *spin_echo(void *p)
{
    floor_arg *f = p;
    for (uint64_t i = 0; i < f->rounds; i++) {
        while (atomic_load_explicit(&f->word, memory_order_acquire) != 2 * i + 1)
            ;
        atomic_store_explicit(&f->word, 2 * i + 2, memory_order_release);
    }
    return NULL;
}

static void *queue_echo(void *p)
{
    floor_arg *f = p;
    for (uint64_t i = 0; i < f->rounds; i++) {
        qnode *n = q_pop_spin(&f->q[0]);
        n->payload++;
        q_push(&f->q[1], n);
    }
    return NULL;
}

enum floor_kind { FLOOR_EVENTFD, FLOOR_SPIN, FLOOR_QUEUE };

/* Median round trip of `rounds` ping-pongs between this thread and another. */
static double floor_us(enum floor_kind kind, uint64_t rounds)
{
    static void *(*const echo[])(void *) = {eventfd_echo, spin_echo, queue_echo};
    floor_arg f = {.rounds = rounds};
    q_init(&f.q[0]);
    q_init(&f.q[1]);
    qnode *nodes = calloc(2, sizeof *nodes); /* two, so a node is never in both queues */
    uint64_t *rt = malloc(rounds * sizeof *rt);
    f.efd[0] = eventfd(0, 0);
    f.efd[1] = eventfd(0, 0);
    pthread_t t;
    if (!rt || !nodes || f.efd[0] < 0 || f.efd[1] < 0 ||
        pthread_create(&t, NULL, echo[kind], &f) != 0) {
        fprintf(stderr, "latency: cannot set up the floor\n");
        exit(2);
    }
    uint64_t one = 1, v;
    for (uint64_t i = 0; i < rounds; i++) {
        uint64_t t0 = bench_now_ns();
        if (kind == FLOOR_SPIN) {
            atomic_store_explicit(&f.word, 2 * i + 1, memory_order_release);
            while (atomic_load_explicit(&f.word, memory_order_acquire) != 2 * i + 2)
                ;
        } else if (kind == FLOOR_QUEUE) {
            q_push(&f.q[0], &nodes[i & 1]);
            if (q_pop_spin(&f.q[1]) != &nodes[i & 1])
                exit(2);
        } else if (write(f.efd[0], &one, sizeof one) != sizeof one ||
                   read(f.efd[1], &v, sizeof v) != sizeof v) {
            exit(2);
        }
        rt[i] = bench_now_ns() - t0;
    }
    pthread_join(t, NULL);
    close(f.efd[0]);
    close(f.efd[1]);
    double med = bench_quantile_us(rt, rounds, 0.5);
    free(rt);
    free(nodes);
    return med;
}

/* ---- the runtime ----------------------------------------------------------- */

static int server_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    return tr_reply(self, msg, ASK, msg->data, msg->len);
}

static const tr_behavior server_b = {.name = "server", .receive = server_receive};

typedef struct client {
    uint64_t calls, done, t_call, t0;
    uint64_t *rt; /* round trips, ns */
    tr_pid server;
    int bad;
} client;

static struct {
    bench_result r;
    uint64_t *rt;
} out;

static int ask(tr_actor *self, client *c)
{
    tr_ref ref;
    c->t_call = bench_now_ns();
    return tr_call(self, c->server, ASK, &c->done, sizeof c->done, TR_INFINITE, &ref);
}

static int client_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    client *c = state;
    memcpy(&c->calls, arg, len);
    c->rt = malloc(c->calls * sizeof *c->rt);
    if (!c->rt)
        return TR_ENOMEM;
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.loop = TR_LOOP((int)(1 % tr_runtime_loops(tr_runtime_of(self))));
    int rc = tr_spawn(self, &server_b, &o, &c->server);
    return rc ? rc : tr_send(self, tr_self(self), GO, NULL, 0);
}

static int client_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    client *c = state;
    if (msg->type == GO) {
        c->t0 = bench_now_ns();
        return ask(self, c);
    }
    uint64_t t = bench_now_ns(), v = UINT64_MAX;
    if (msg->len == sizeof v)
        memcpy(&v, msg->data, sizeof v);
    c->bad |= (v != c->done) || !(msg->flags & TR_MSG_REPLY);
    c->rt[c->done++] = t - c->t_call;
    if (c->done < c->calls)
        return ask(self, c);
    out.r.seconds = (double)(t - c->t0) / 1e9;
    out.r.count = c->calls;
    out.r.ok = !c->bad;
    out.rt = c->rt; /* main() frees it */
    return tr_runtime_stop(tr_runtime_of(self));
}

static const tr_behavior client_b = {.name = "client", .state_size = sizeof(client),
                                     .init = client_init, .receive = client_receive};

int main(int argc, char **argv)
{
    uint64_t calls = bench_arg(argc, argv, 1, 200000);
    uint64_t rounds = bench_arg(argc, argv, 2, 20000);
    if (calls == 0 || rounds == 0)
        return 2;
    double eventfd_us = floor_us(FLOOR_EVENTFD, rounds);
    double spin_us = floor_us(FLOOR_SPIN, rounds * 10);
    double queue_us = floor_us(FLOOR_QUEUE, rounds * 10);
    unsigned threads = bench_run(&client_b, &calls, sizeof calls);
    double p50 = 0, p99 = 0, p999 = 0, mid = 0;
    if (out.rt) {
        p50 = bench_quantile_us(out.rt, calls, 0.5);
        p99 = bench_quantile_us(out.rt, calls, 0.99);
        p999 = bench_quantile_us(out.rt, calls, 0.999); /* sorted now */
        double sum = 0;
        uint64_t lo = calls / 4, hi = calls - calls / 4;
        for (uint64_t i = lo; i < hi; i++)
            sum += (double)out.rt[i];
        mid = hi > lo ? sum / (double)(hi - lo) / 1000.0 : p50;
        free(out.rt);
    }
    double rate = out.r.seconds > 0 ? (double)calls / out.r.seconds : 0;
    printf("bench=latency impl=troupe threads=%u n=%llu seconds=%.6f rate=%.0f unit=calls "
           "peak_rss_kb=%ld check=%s placement=client_loop0_server_loop1 p50_us=%.2f "
           "p99_us=%.2f p999_us=%.2f eventfd_us=%.2f spin_us=%.2f queue_us=%.2f "
           "p50_over_spin=%.2f p50_over_queue=%.2f p99_over_eventfd=%.2f mid_us=%.3f\n",
           threads, (unsigned long long)calls, out.r.seconds, rate, bench_peak_rss_kb(),
           out.r.ok ? "ok" : "FAIL", p50, p99, p999, eventfd_us, spin_us, queue_us,
           p50 / spin_us, p50 / queue_us, p99 / eventfd_us, mid);
    return out.r.ok ? 0 : 1;
}
