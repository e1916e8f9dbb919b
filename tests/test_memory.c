/*
 * test_memory.c — memory comes back, and plain threads flood as fast as
 * actors (the hardening issue's "Memory comes back" and finding 14).
 *
 *  - A burst of 10^6 messages queued for one actor, sent by an actor on
 *    another loop (blocks of that loop's slabs), then handled: the process's
 *    RSS goes back to within 2x of what it was before the burst.
 *  - The same burst sent by a plain thread (blocks of a plain-thread pool).
 *  - A plain thread flooding an actor with an unbounded mailbox: the actor
 *    handles at least half as many messages in the window as when its
 *    mailbox is bounded (the loop's frees used to queue on the lock of the
 *    sender's malloc arena: 2.4 k against 69 k).
 *
 * RSS figures mean nothing under the sanitizers (their allocators keep
 * freed memory in quarantine), and the flood is a ratio of rates: labelled
 * `scale`, run by the plain test suite only. Each test prints its figures.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "tr_test.h"

enum { HOLD = 1, DATA = 2, GO = 3 };

#define BURST 1000000

/* Resident set in KiB, from /proc/self/statm. */
static long rss_kb(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the consumer: holds its loop on HOLD until released, counts DATA ---------- */

typedef struct payload {
    uint64_t sender;
    uint64_t seq;
} payload;

static atomic_int holding, release;
static atomic_ullong handled;
static uint64_t next_seq; /* the consumer's: DATA arrives in order */
static uint64_t work_ns;  /* the consumer's work per message */

static int consumer_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    if (msg->type == HOLD) {
        atomic_store(&holding, 1);
        while (!atomic_load(&release))
            sleep_ms(1);
        atomic_store(&holding, 0);
        return 0;
    }
    if (msg->type == DATA) {
        payload p;
        TR_CHECK(msg->len >= sizeof p);
        memcpy(&p, msg->data, sizeof p);
        TR_CHECK(p.seq == next_seq);
        next_seq++;
        if (work_ns) {
            uint64_t end = tr_test_wall_ns() + work_ns;
            while (tr_test_wall_ns() < end)
                ;
        }
        atomic_fetch_add_explicit(&handled, 1, memory_order_relaxed);
    }
    return 0;
}

static const tr_behavior consumer_b = {.name = "consumer", .receive = consumer_receive};

/* ---- the producer actor: GO sends BURST messages to the pid it carries ------------ */

static atomic_int produced;

static int producer_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type != GO)
        return 0;
    tr_pid to;
    memcpy(&to, msg->data, sizeof to);
    for (uint64_t i = 0; i < BURST; i++) {
        payload p = {.sender = 1, .seq = i};
        TR_CHECK(tr_send(self, to, DATA, &p, sizeof p) == 0);
    }
    atomic_store(&produced, 1);
    return 0;
}

static const tr_behavior producer_b = {.name = "producer", .receive = producer_receive};

static void reset(void)
{
    atomic_store(&holding, 0);
    atomic_store(&release, 0);
    atomic_store(&handled, 0);
    atomic_store(&produced, 0);
    next_seq = 0;
    work_ns = 0;
}

/* RSS before the burst, with it queued, and once it is handled and the
 * loops have had up to 20 s of quiet to give memory back; checks the last
 * against the first. `from_actor`: an actor on loop 1 sends it, else this
 * thread. The consumer holds the burst `hold_ms` before handling it. */
static void burst(int from_actor, int hold_ms)
{
    reset();
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_pid consumer = tr_test_spawn(rt, &consumer_b, TR_LOOP(0), NULL, 0);
    tr_pid producer = tr_test_spawn(rt, &producer_b, TR_LOOP(1), NULL, 0);
    /* Warm up: both loops have run, a few messages have gone through. */
    for (uint64_t i = 0; i < 1000; i++) {
        payload p = {.sender = 0, .seq = i};
        assert_int_equal(tr_rt_send(rt, consumer, DATA, &p, sizeof p), 0);
    }
    TR_WAIT_UNTIL(atomic_load(&handled) == 1000);
    sleep_ms(100);
    long before = rss_kb();

    atomic_store(&handled, 0);
    next_seq = 0; /* the consumer is idle: its next DATA comes after HOLD */
    assert_int_equal(tr_rt_send(rt, consumer, HOLD, NULL, 0), 0);
    TR_WAIT_UNTIL(atomic_load(&holding));
    if (from_actor) {
        assert_int_equal(tr_rt_send(rt, producer, GO, &consumer, sizeof consumer), 0);
        TR_WAIT_UNTIL(atomic_load(&produced));
    } else {
        for (uint64_t i = 0; i < BURST; i++) {
            payload p = {.sender = 0, .seq = i};
            assert_int_equal(tr_rt_send(rt, consumer, DATA, &p, sizeof p), 0);
        }
    }
    sleep_ms(hold_ms); /* the producer's loop posts its outbox when its run ends */
    long peak = rss_kb();
    atomic_store(&release, 1);
    TR_WAIT_UNTIL(atomic_load(&handled) == BURST);

    /* The loops give memory back at most once a second each, and leave a
     * class that grew within the last second for the next look. */
    long after = rss_kb();
    uint64_t t0 = tr_test_wall_ns();
    while (after > 2 * before + 1024 && tr_test_wall_ns() - t0 < 20000000000ull) {
        sleep_ms(100);
        after = rss_kb();
    }
    double secs = (double)(tr_test_wall_ns() - t0) / 1e9;
    printf("# burst of %d from %s: RSS before %ld kB, peak %ld kB, after %ld kB "
           "(%.2fx before, %.1f s after the last was handled)\n",
           BURST, from_actor ? "an actor (slab blocks)" : "a plain thread", before, peak,
           after, (double)after / (double)before, secs);
    assert_true(peak > before + 32 * 1024); /* the burst was queued at once */
    assert_true(after <= 2 * before + 1024); /* + 1 MiB: a page-granular slack */

    assert_int_equal(tr_runtime_stop(rt), 0);
    assert_int_equal(tr_runtime_wait(rt), 0);
    assert_int_equal(tr_runtime_free(rt), 0);
}

static void test_burst_from_actor_comes_back(void **state)
{
    (void)state;
    burst(1, 50);
}

/*
 * The burst is freed long after its producer's loop went to sleep (2.5 s:
 * past two of its trim periods, so no trim timer of its own is left):
 * the blocks that come home wake it, and the memory still comes back.
 * (Found by CI: with nothing to wake the loop it kept 97 MB for good.)
 */
static void test_burst_freed_after_producer_slept(void **state)
{
    (void)state;
    burst(1, 2500);
}

static void test_burst_from_plain_thread_comes_back(void **state)
{
    (void)state;
    burst(0, 50);
}

/* ---- finding 14: a plain thread floods an unbounded mailbox ---------------------- */

#define FLOOD_MAX 1000000 /* messages sent at most: 256 MB queued */
#define FLOOD_WINDOW_NS 1000000000ull
#define FLOOD_WORK_NS 10000
/* Above glibc's fastbin sizes (128-byte chunks), whose frees take no lock:
 * the size at which the arena's lock was the bottleneck. */
#define FLOOD_BYTES 200

/* Messages the consumer handled while this thread sent for a second
 * (TR_EFULL: tried again), its mailbox bounded at `cap` (0: unbounded). */
static uint64_t flood(uint32_t cap)
{
    reset();
    work_ns = FLOOD_WORK_NS;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.loop = TR_LOOP(0);
    o.mailbox_capacity = cap;
    tr_pid consumer;
    assert_int_equal(tr_rt_spawn(rt, &consumer_b, &o, &consumer), 0);
    uint64_t sent = 0, end = tr_test_wall_ns() + FLOOD_WINDOW_NS;
    while (tr_test_wall_ns() < end) {
        for (int i = 0; i < 64 && sent < FLOOD_MAX; i++) {
            union {
                payload p;
                unsigned char bytes[FLOOD_BYTES];
            } u = {.p = {.sender = 0, .seq = sent}};
            int rc = tr_rt_send(rt, consumer, DATA, &u, sizeof u);
            assert_true(rc == 0 || rc == TR_EFULL);
            sent += rc == 0;
        }
        if (sent >= FLOOD_MAX)
            sleep_ms(1);
    }
    uint64_t n = atomic_load(&handled);
    /* The stop drops what is still queued. */
    assert_int_equal(tr_runtime_stop(rt), 0);
    assert_int_equal(tr_runtime_wait(rt), 0);
    assert_int_equal(tr_runtime_free(rt), 0);
    return n;
}

static void test_plain_flood_unbounded_keeps_up(void **state)
{
    (void)state;
    /* A ratio of rates on a machine that may be busy: the best of three
     * rounds, each measuring both. */
    double best = 0;
    for (int round = 0; round < 3 && best < 0.5; round++) {
        uint64_t bounded = flood(1024);
        uint64_t unbounded = flood(0);
        double ratio = bounded ? (double)unbounded / (double)bounded : 0;
        printf("# plain-thread flood, 1 s, %d-byte payloads, %d ns of work per message: "
               "handled %llu (bounded at 1024), %llu (unbounded): %.2f\n",
               FLOOD_BYTES, FLOOD_WORK_NS, (unsigned long long)bounded, (unsigned long long)unbounded,
               ratio);
        if (ratio > best)
            best = ratio;
    }
    assert_true(best >= 0.5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_from_actor_comes_back),
        cmocka_unit_test(test_burst_freed_after_producer_slept),
        cmocka_unit_test(test_burst_from_plain_thread_comes_back),
        cmocka_unit_test(test_plain_flood_unbounded_keeps_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
