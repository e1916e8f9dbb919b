/*
 * pipeline — backpressure, measured: generate -> transform -> aggregate.
 *
 *   generator   an actor that produces the numbers 0..N-1 into channel
 *               `raw` (capacity 4096); when it is full, it asks to be told
 *               when there is room (tr_chan_notify_room) and waits
 *   transformer an actor subscribed to `raw`; it hands each batch of 4096
 *               numbers to the worker pool (the transform: a little
 *               arithmetic per number), at most 4 batches at once, counting
 *               the batches it has asked for and not yet received as taken:
 *               it grants `raw` more items only for a free job slot; each
 *               job's partial sum goes into channel `sums`
 *   aggregator  an actor subscribed to `sums`; it adds the partial sums and,
 *               at the end of the stream, checks the total
 *
 * Every queue is bounded, so memory does not grow with N: run it for 10^7
 * and 10^8 items and compare the peak RSS. With --unbounded the generator
 * sends straight into the transformer's (unbounded) mailbox instead, as fast
 * as it can: the mailbox grows with N — the failure backpressure prevents.
 *
 *   ./build/examples/pipeline [items=1000000] [--unbounded]
 *   ./build/examples/pipeline --compare    10^7 and 10^8, one process each
 */
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <troupe.h>

enum { GO = 1, ROOM = 2, NUMBER = 3, SUM = 4, BATCH_IN = 5, RESULT = 6 };

#define BATCH 4096
#define JOBS_IN_FLIGHT 4

static uint64_t items = 1000000;
static int unbounded;
static unsigned most_in_flight; /* the transformer's jobs at once, at most */

/* The CPU work per number (a few hundred ns): the slowest stage, as real
 * transforms are, so that backpressure has something to hold back. */
static uint64_t transform(uint64_t x)
{
    for (int i = 0; i < 128; i++)
        x = (x ^ (x >> 29)) * 0xbf58476d1ce4e5b9ull + 1;
    return x % 1000003u;
}

/* ---- generator ------------------------------------------------------------------- */

typedef struct generator {
    tr_chan *raw;
    tr_pid transformer; /* --unbounded: send straight to it */
    uint64_t next;
} generator;

static int generator_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    generator *g = state;
    if (msg->type == GO && msg->len)
        memcpy(&g->transformer, msg->data, sizeof g->transformer);
    /* A slice per message, so the loop's other actors get their turns. */
    for (int i = 0; i < 1024 && g->next < items; i++) {
        int rc = unbounded ? tr_send(self, g->transformer, NUMBER, &g->next, sizeof g->next)
                           : tr_chan_send(g->raw, &g->next, sizeof g->next);
        if (rc == TR_EFULL)
            return tr_chan_notify_room(self, g->raw, ROOM); /* wait, don't spin */
        if (rc != 0)
            return rc;
        g->next++;
    }
    if (g->next < items)
        return tr_send(self, tr_self(self), GO, NULL, 0);
    if (!unbounded)
        tr_chan_close(g->raw); /* the end of the stream flows downstream */
    else
        tr_send(self, g->transformer, NUMBER, NULL, 0); /* an empty one: the end */
    return tr_exit(self, TR_EXIT_NORMAL);
}

static int generator_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    (void)len;
    memcpy(&((generator *)state)->raw, arg, sizeof(tr_chan *));
    return 0;
}

static const tr_behavior generator_b = {.name = "generator", .state_size = sizeof(generator),
                                        .init = generator_init, .receive = generator_receive};

/* ---- transformer --------------------------------------------------------------------- */

typedef struct batch {
    uint32_t n;
    uint64_t x[BATCH];
} batch;

static int transform_job(tr_job *job, const void *arg, size_t len)
{
    (void)len;
    const batch *b = arg;
    uint64_t sum[2] = {0, b->n};
    for (uint32_t i = 0; i < b->n; i++)
        sum[0] += transform(b->x[i]);
    return tr_job_set_result(job, sum, sizeof sum);
}

typedef struct transformer {
    tr_chan *raw, *sums;
    tr_ref sub;
    batch cur;
    uint64_t granted;          /* items `raw` may still deliver (credit given) */
    unsigned in_flight;        /* jobs running */
    uint64_t out[JOBS_IN_FLIGHT][2]; /* results `sums` had no room for yet */
    unsigned nout;
    int ended;
} transformer;

static int flush(tr_actor *self, transformer *t)
{
    if (t->cur.n == 0)
        return 0;
    tr_job_id id;
    /* --unbounded: jobs beyond the limit wait in this actor's own queue,
     * which grows as the generator outruns the workers. */
    tr_offload_limit(self, JOBS_IN_FLIGHT);
    int rc = tr_offload(self, transform_job, &t->cur,
                        offsetof(batch, x) + t->cur.n * sizeof t->cur.x[0], &id);
    t->cur.n = 0;
    t->in_flight++;
    if (t->in_flight > most_in_flight)
        most_in_flight = t->in_flight;
    return rc;
}

/* Moves held results into `sums`; when it is full, waits for ROOM. */
static int push_out(tr_actor *self, transformer *t)
{
    while (t->nout) {
        int rc = tr_chan_send(t->sums, t->out[0], sizeof t->out[0]);
        if (rc == TR_EFULL)
            return tr_chan_notify_room(self, t->sums, ROOM);
        if (rc != 0)
            return rc;
        memmove(t->out, t->out + 1, --t->nout * sizeof t->out[0]);
    }
    return 0;
}

/*
 * Grants `raw` items for every free job slot. Credit adds up
 * (tr_chan_request grants n more), so a slot is taken by a job running, by
 * a result waiting for room in `sums`, and by a batch asked for and not yet
 * received (or being filled). Counting only the jobs let credit pile up:
 * two jobs ending before the next batch arrived asked for two batches, and
 * the next batch, finding a slot free, for a third. Those batches became
 * jobs over the limit, each a 32 KiB copy waiting in the runtime's queue
 * (tr_offload_limit), up to 52 at once in a run of 10^7 items — the peak
 * RSS burst that grew with the length of the run.
 */
static int want_more(tr_actor *self, transformer *t)
{
    if (unbounded || t->ended)
        return 0;
    uint64_t asked = (t->cur.n + t->granted + BATCH - 1) / BATCH; /* batches */
    uint64_t taken = t->in_flight + t->nout + asked;
    if (taken >= JOBS_IN_FLIGHT)
        return 0;
    uint32_t n = (uint32_t)(JOBS_IN_FLIGHT - taken) * BATCH;
    t->granted += n;
    return tr_chan_request(self, t->sub, n);
}

static int maybe_finish(tr_actor *self, transformer *t)
{
    if (t->ended && t->in_flight == 0 && t->nout == 0) {
        tr_chan_close(t->sums); /* the end flows on to the aggregator */
        return tr_exit(self, TR_EXIT_NORMAL);
    }
    return 0;
}

static int transformer_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    transformer *t = state;
    (void)len;
    memcpy(&t->raw, arg, sizeof t->raw);
    memcpy(&t->sums, (const char *)arg + sizeof t->raw, sizeof t->sums);
    tr_chan_retain(t->sums);
    if (unbounded)
        return 0;
    t->granted = JOBS_IN_FLIGHT * BATCH; /* a batch for every job slot */
    return tr_chan_subscribe(self, t->raw, NUMBER, (uint32_t)t->granted, &t->sub);
}

static void transformer_terminate(tr_actor *self, void *state, const tr_exit_reason *r)
{
    (void)self;
    (void)r;
    tr_chan_release(((transformer *)state)->sums);
}

static int transformer_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    transformer *t = state;
    switch (msg->type) {
    case NUMBER: {
        if (msg->len == 0) { /* --unbounded: the end */
            t->ended = 1;
            int rc = flush(self, t);
            return rc ? rc : maybe_finish(self, t);
        }
        memcpy(&t->cur.x[t->cur.n++], msg->data, sizeof t->cur.x[0]);
        if (!unbounded)
            t->granted--;
        if (t->cur.n < BATCH)
            return 0;
        int rc = flush(self, t);
        /* More demand only while a job slot is free: backpressure. */
        return rc ? rc : want_more(self, t);
    }
    case TR_MSG_CHAN_END:
        t->ended = 1;
        {
            int rc = flush(self, t);
            return rc ? rc : maybe_finish(self, t);
        }
    case TR_MSG_JOB_DONE: { /* the partial sum goes on to the aggregator */
        t->in_flight--;
        memcpy(t->out[t->nout++], msg->data, sizeof t->out[0]);
        int rc = push_out(self, t);
        if (rc == 0)
            rc = want_more(self, t);
        return rc ? rc : maybe_finish(self, t);
    }
    case ROOM: {
        int rc = push_out(self, t);
        if (rc == 0)
            rc = want_more(self, t);
        return rc ? rc : maybe_finish(self, t);
    }
    case TR_MSG_JOB_FAILED: { /* end with the job's own error, as it was */
        int32_t code = TR_EFAILED;
        if (msg->len == sizeof code)
            memcpy(&code, msg->data, sizeof code);
        return code;
    }
    }
    return 0;
}

static const tr_behavior transformer_b = {.name = "transformer",
                                          .state_size = sizeof(transformer),
                                          .init = transformer_init,
                                          .receive = transformer_receive,
                                          .terminate = transformer_terminate};

/* ---- aggregator ------------------------------------------------------------------------ */

typedef struct totals {
    uint64_t sum, count;
    int done;
} totals;

static totals result;

typedef struct aggregator {
    tr_ref sub;
    totals t;
} aggregator;

static int aggregator_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)len;
    aggregator *a = state;
    tr_chan *sums;
    memcpy(&sums, arg, sizeof sums);
    return tr_chan_subscribe(self, sums, SUM, 256, &a->sub);
}

static int aggregator_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    aggregator *a = state;
    if (msg->type == SUM) {
        uint64_t s[2];
        memcpy(s, msg->data, sizeof s);
        a->t.sum += s[0];
        a->t.count += s[1];
        return tr_chan_request(self, a->sub, 1); /* one in, one more */
    }
    if (msg->type == TR_MSG_CHAN_END) {
        a->t.done = 1;
        result = a->t; /* read by main after the runtime stopped */
        tr_runtime_stop(tr_runtime_of(self));
    }
    return 0;
}

static const tr_behavior aggregator_b = {.name = "aggregator", .state_size = sizeof(aggregator),
                                         .init = aggregator_init,
                                         .receive = aggregator_receive};

/* ---- main -------------------------------------------------------------------------------- */

static long peak_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

/* --compare: this program again, once per size, each in its own process
 * (peak RSS is per process). */
static int compare(const char *self_path)
{
    const char *sizes[] = {"10000000", "100000000"};
    for (int i = 0; i < 2; i++) {
        char *argv[] = {(char *)self_path, (char *)sizes[i], NULL};
        pid_t pid;
        extern char **environ;
        if (posix_spawn(&pid, self_path, NULL, NULL, argv, environ) != 0)
            return 1;
        int status;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--unbounded") == 0)
            unbounded = 1;
        else if (strcmp(argv[i], "--compare") == 0)
            return compare(argv[0]);
        else
            items = strtoull(argv[i], NULL, 10);
    }
    tr_runtime_options o;
    tr_runtime_options_init(&o);
    o.loops = 2;
    o.workers = 2;
    o.max_payload = sizeof(batch) + 64;
    tr_runtime *rt;
    if (tr_runtime_create(&rt, &o) != 0 || tr_runtime_start(rt) != 0)
        return 1;
    tr_chan_opts co;
    tr_chan_opts_init(&co);
    co.capacity = 4096;
    co.item_max = sizeof(uint64_t);
    tr_chan *raw, *sums;
    tr_chan_create(rt, &co, &raw);
    co.capacity = 1024;
    co.item_max = 2 * sizeof(uint64_t);
    tr_chan_create(rt, &co, &sums);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    tr_spawn_opts so;
    tr_spawn_opts_init(&so);
    so.arg = &sums;
    so.arg_len = sizeof sums;
    so.loop = TR_LOOP(1);
    tr_pid agg, tr, gen;
    tr_rt_spawn(rt, &aggregator_b, &so, &agg);
    tr_chan *chans[2] = {raw, sums};
    so.arg = chans;
    so.arg_len = sizeof chans;
    so.loop = TR_LOOP(1);
    tr_rt_spawn(rt, &transformer_b, &so, &tr);
    tr_spawn_opts_init(&so);
    so.arg = &raw;
    so.arg_len = sizeof raw;
    so.loop = TR_LOOP(0);
    tr_rt_spawn(rt, &generator_b, &so, &gen);
    tr_rt_send(rt, gen, GO, &tr, sizeof tr); /* --unbounded sends straight to tr */
    tr_runtime_wait(rt);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    tr_runtime_free(rt);
    tr_chan_release(raw);
    tr_chan_release(sums);

    uint64_t expect = 0;
    for (uint64_t x = 0; x < items; x++)
        expect += transform(x);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* Bounded, no job ever waits for the in-flight limit: each would hold
     * a batch's copy beyond the JOBS_IN_FLIGHT the memory figure assumes. */
    int ok = result.done && result.count == items && result.sum == expect &&
             (unbounded || most_in_flight <= JOBS_IN_FLIGHT);
    printf("pipeline%s: %llu items in %.2f s (%.1f M items/s), peak RSS %ld kB, "
           "jobs at once %u, check=%s\n",
           unbounded ? " --unbounded" : "", (unsigned long long)items, s, (double)items / s / 1e6,
           peak_rss_kb(), most_in_flight, ok ? "ok" : "FAIL");
    return ok ? 0 : 1;
}
