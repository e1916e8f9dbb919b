/*
 * test_chan.c — channels: the bounded contract (full, empty, closed, sizes),
 * N producers x M consumers across plain threads and actors moving a
 * million items with none lost, none duplicated and each producer's order
 * kept per consumer; subscriptions within their credit; the room
 * notification; close racing with producers and consumers; references.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

/* Throughput on a loaded 2-core machine with nine busy threads varies ten
 * times between runs: these waits are for completion, not for speed. */
#define TR_TEST_PATIENCE_S 300
#include "tr_test.h"

enum { ITEM = 1, ROOM = 2, GO = 3, ASK = 4, MORE = 5, TRY_WAIT = 6 };

typedef struct item {
    uint32_t producer;
    uint32_t seq;
} item;

/* A channel of `capacity` items of type item. */
static tr_chan *make_chan(tr_runtime *rt, uint32_t capacity)
{
    tr_chan_opts o;
    tr_chan_opts_init(&o);
    o.capacity = capacity;
    o.item_max = sizeof(item);
    tr_chan *ch = NULL;
    assert_int_equal(tr_chan_create(rt, &o, &ch), 0);
    return ch;
}

/* ---- the contract, one thread ---------------------------------------------------------- */

static _Atomic int wait_rc = 1;

static int tryer_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    if (msg->type == TRY_WAIT) {
        tr_chan *ch;
        memcpy(&ch, msg->data, sizeof ch);
        item it = {0, 0};
        atomic_store(&wait_rc, tr_chan_send_wait(ch, &it, sizeof it, 10));
    }
    return 0;
}

static const tr_behavior tryer_b = {.name = "tryer", .receive = tryer_receive};

static void test_contract(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(1);
    tr_chan *ch;
    tr_chan_opts o;
    tr_chan_opts_init(&o);
    o.capacity = 4;
    o.item_max = sizeof(item);
    assert_int_equal(tr_chan_create(rt, &o, &ch), 0);
    item it, got;
    size_t len;
    assert_int_equal(tr_chan_recv(ch, &got, sizeof got, &len), TR_EEMPTY);
    for (uint32_t i = 0; i < 4; i++) {
        it = (item){7, i};
        assert_int_equal(tr_chan_send(ch, &it, sizeof it), 0);
    }
    assert_int_equal(tr_chan_send(ch, &it, sizeof it), TR_EFULL); /* bounded */
    tr_chan_stats st;
    assert_int_equal(tr_chan_stats_get(ch, &st), 0);
    assert_int_equal(st.depth, 4);
    assert_int_equal(st.capacity, 4);
    assert_int_equal(st.sent, 4);
    assert_int_equal(st.refused, 1);
    for (uint32_t i = 0; i < 2; i++) {
        assert_int_equal(tr_chan_recv(ch, &got, sizeof got, &len), 0);
        assert_int_equal(len, sizeof got);
        assert_int_equal(got.seq, i); /* in order */
    }
    /* Bad input. */
    char big[64] = {0};
    assert_int_equal(tr_chan_send(ch, big, sizeof big), TR_EMSGSIZE);
    assert_int_equal(tr_chan_send(NULL, &it, sizeof it), TR_EINVAL);
    assert_int_equal(tr_chan_send(ch, NULL, 4), TR_EINVAL);
    assert_int_equal(tr_chan_recv(ch, big, 2, &len), TR_EINVAL); /* buffer < item_max */
    assert_int_equal(tr_chan_recv(ch, NULL, 64, &len), TR_EINVAL);
    tr_chan *bad;
    o.capacity = (1u << 30) + 1;
    assert_int_equal(tr_chan_create(rt, &o, &bad), TR_EINVAL);
    o.capacity = 4;
    o.item_max = 1u << 30;
    assert_int_equal(tr_chan_create(rt, &o, &bad), TR_EINVAL);
    assert_int_equal(tr_chan_create(NULL, NULL, &bad), TR_EINVAL);
    /* Waiting: a timeout, and never on a loop thread. */
    it = (item){7, 4};
    assert_int_equal(tr_chan_send_wait(ch, &it, sizeof it, 1000), 0);
    it = (item){7, 5};
    assert_int_equal(tr_chan_send_wait(ch, &it, sizeof it, 1000), 0);
    assert_int_equal(tr_chan_send_wait(ch, &it, sizeof it, 20), TR_ETIMEDOUT);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &tryer_b, NULL, &p), 0);
    assert_int_equal(tr_rt_send(rt, p, TRY_WAIT, &ch, sizeof ch), 0);
    TR_WAIT_UNTIL(atomic_load(&wait_rc) != 1);
    assert_int_equal(atomic_load(&wait_rc), TR_EWRONGTHREAD);
    /* Close: sends refused, what was accepted still comes out, then the end. */
    assert_int_equal(tr_chan_close(ch), 0);
    assert_int_equal(tr_chan_close(ch), TR_EALREADY);
    assert_int_equal(tr_chan_send(ch, &it, sizeof it), TR_ECLOSED);
    for (uint32_t i = 2; i < 6; i++) {
        assert_int_equal(tr_chan_recv_wait(ch, &got, sizeof got, &len, 1000), 0);
        assert_int_equal(got.seq, i);
    }
    assert_int_equal(tr_chan_recv(ch, &got, sizeof got, &len), TR_ECLOSED);
    assert_int_equal(tr_chan_recv_wait(ch, &got, sizeof got, &len, TR_INFINITE), TR_ECLOSED);
    assert_int_equal(tr_chan_stats_get(ch, &st), 0);
    assert_int_equal(st.sent, 6);
    assert_int_equal(st.received, 6);
    assert_int_equal(st.depth, 0);
    tr_chan_release(ch);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- many producers, many consumers --------------------------------------------------------- */

#define PRODUCERS 4
/* 100k items in the suite (which runs it 20 times under each sanitizer);
 * test_chan_million (label stress, run once per build) moves a million. */
#ifndef PER_PRODUCER
#define PER_PRODUCER 25000u
#endif
#define TOTAL (PRODUCERS * PER_PRODUCER)

static _Atomic unsigned char seen[TOTAL];
static _Atomic long received_total, duplicates, out_of_order, ends;

static void reset_counts(void)
{
    for (uint32_t i = 0; i < TOTAL; i++)
        atomic_store(&seen[i], 0);
    atomic_store(&received_total, 0);
    atomic_store(&duplicates, 0);
    atomic_store(&out_of_order, 0);
    atomic_store(&ends, 0);
}

/* Books one item for a consumer whose last seq per producer is `last`. */
static void book(const item *it, int64_t *last)
{
    if (atomic_fetch_add(&seen[it->producer * PER_PRODUCER + it->seq], 1) != 0)
        atomic_fetch_add(&duplicates, 1);
    if ((int64_t)it->seq <= last[it->producer])
        atomic_fetch_add(&out_of_order, 1);
    last[it->producer] = it->seq;
    atomic_fetch_add(&received_total, 1);
}

typedef struct prod_arg {
    tr_chan *ch;
    uint32_t id;
} prod_arg;

static void *producer_thread(void *arg)
{
    prod_arg *p = arg;
    for (uint32_t s = 0; s < PER_PRODUCER; s++) {
        item it = {p->id, s};
        int rc = tr_chan_send_wait(p->ch, &it, sizeof it, TR_INFINITE);
        if (rc != 0) {
            fprintf(stderr, "producer %u: %s\n", p->id, tr_strerror(rc));
            abort();
        }
    }
    return NULL;
}

static void *consumer_thread(void *arg)
{
    tr_chan *ch = arg;
    int64_t last[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++)
        last[i] = -1;
    item it;
    size_t len;
    int rc;
    while ((rc = tr_chan_recv_wait(ch, &it, sizeof it, &len, TR_INFINITE)) == 0)
        book(&it, last);
    if (rc != TR_ECLOSED)
        abort();
    atomic_fetch_add(&ends, 1);
    return NULL;
}

/* A subscriber actor: books items, keeps within its credit, asks for more
 * in chunks; counts its END. */
#define CHUNK 16
typedef struct subscriber {
    tr_ref sub;
    int64_t last[PRODUCERS];
    uint64_t granted, delivered, peak;
} subscriber;

static _Atomic uint64_t peak_outstanding;

static int subscriber_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    subscriber *s = state;
    tr_chan *ch;
    TR_CHECK_COPY(&ch, arg, len);
    for (int i = 0; i < PRODUCERS; i++)
        s->last[i] = -1;
    s->granted = CHUNK;
    return tr_chan_subscribe(self, ch, ITEM, CHUNK, &s->sub);
}

static int subscriber_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    subscriber *s = state;
    switch (msg->type) {
    case ITEM: {
        TR_CHECK_EQ(msg->ref, s->sub);
        TR_CHECK_EQ(msg->len, sizeof(item));
        s->delivered++;
        TR_CHECK(s->delivered <= s->granted); /* never beyond its demand */
        uint64_t out = s->granted - s->delivered + 1;
        if (out > s->peak)
            s->peak = out;
        item it;
        memcpy(&it, msg->data, sizeof it);
        book(&it, s->last);
        if (s->granted - s->delivered == 0) {
            s->granted += CHUNK;
            return tr_chan_request(self, s->sub, CHUNK);
        }
        return 0;
    }
    case TR_MSG_CHAN_END: {
        TR_CHECK_EQ(msg->ref, s->sub);
        uint64_t p = atomic_load(&peak_outstanding);
        while (s->peak > p && !atomic_compare_exchange_weak(&peak_outstanding, &p, s->peak))
            ;
        atomic_fetch_add(&ends, 1);
        return tr_exit(self, TR_EXIT_NORMAL);
    }
    }
    return 0;
}

static const tr_behavior subscriber_b = {.name = "subscriber", .state_size = sizeof(subscriber),
                                         .init = subscriber_init,
                                         .receive = subscriber_receive};

/* A producer actor: sends its share; on TR_EFULL it waits for ROOM. */
typedef struct producer {
    tr_chan *ch;
    uint32_t id, seq;
    uint32_t rooms;
} producer;

static _Atomic long room_waits, producers_done;

static int produce(tr_actor *self, producer *p)
{
    while (p->seq < PER_PRODUCER) {
        item it = {p->id, p->seq};
        int rc = tr_chan_send(p->ch, &it, sizeof it);
        if (rc == TR_EFULL) {
            atomic_fetch_add(&room_waits, 1);
            return tr_chan_notify_room(self, p->ch, ROOM); /* no spinning */
        }
        TR_CHECK_EQ(rc, 0);
        p->seq++;
        if ((p->seq & 255) == 0) /* let others run: resume from a message */
            return tr_send(self, tr_self(self), GO, NULL, 0);
    }
    atomic_fetch_add(&producers_done, 1);
    return tr_exit(self, TR_EXIT_NORMAL);
}

static int producer_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    TR_CHECK_EQ(len, sizeof(prod_arg));
    const prod_arg *a = arg;
    producer *p = state;
    p->ch = a->ch;
    p->id = a->id;
    return tr_send(self, tr_self(self), GO, NULL, 0);
}

static int producer_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)msg;
    return produce(self, state); /* GO or ROOM */
}

static const tr_behavior producer_b = {.name = "producer", .state_size = sizeof(producer),
                                       .init = producer_init, .receive = producer_receive};

/* 2 producer threads + 2 producer actors -> 2 consumer threads + 3
 * subscriber actors on two loops, through a channel of 256. */
static void test_many_to_many(void **state)
{
    (void)state;
    reset_counts();
    atomic_store(&room_waits, 0);
    atomic_store(&producers_done, 0);
    atomic_store(&peak_outstanding, 0);
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_chan *ch = make_chan(rt, 256);
    for (int i = 0; i < 3; i++)
        tr_test_spawn(rt, &subscriber_b, TR_LOOP(i % 2), &ch, sizeof ch);
    pthread_t cons[2], prods[2];
    prod_arg pa[PRODUCERS];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&cons[i], NULL, consumer_thread, ch), 0);
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        pa[i] = (prod_arg){ch, i};
        if (i < 2) {
            assert_int_equal(pthread_create(&prods[i], NULL, producer_thread, &pa[i]), 0);
        } else {
            tr_test_spawn(rt, &producer_b, TR_LOOP((int)(i % 2)), &pa[i], sizeof pa[i]);
        }
    }
    for (int i = 0; i < 2; i++)
        pthread_join(prods[i], NULL);
    TR_WAIT_UNTIL(atomic_load(&producers_done) == 2);
    assert_int_equal(tr_chan_close(ch), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(cons[i], NULL);
    TR_WAIT_UNTIL(atomic_load(&ends) == 5); /* 2 threads + 3 subscribers */
    assert_int_equal(atomic_load(&received_total), TOTAL);
    assert_int_equal(atomic_load(&duplicates), 0);
    assert_int_equal(atomic_load(&out_of_order), 0);
    for (uint32_t i = 0; i < TOTAL; i++)
        if (atomic_load(&seen[i]) != 1)
            fail_msg("item %u seen %d times", i, atomic_load(&seen[i]));
    assert_true(atomic_load(&peak_outstanding) <= CHUNK);
    tr_chan_stats st;
    assert_int_equal(tr_chan_stats_get(ch, &st), 0);
    assert_int_equal(st.sent, TOTAL);
    assert_int_equal(st.received, TOTAL);
    assert_int_equal(st.subscribers, 0); /* each ended with its END */
    fprintf(stderr, "many_to_many: %ld room waits, peak outstanding %llu\n",
            atomic_load(&room_waits), (unsigned long long)atomic_load(&peak_outstanding));
    tr_chan_release(ch);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- demand bounds delivery -------------------------------------------------------------------- */

typedef struct slow {
    tr_ref sub;
    uint32_t got;
} slow;

static int slow_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    slow *s = state;
    tr_chan *ch;
    TR_CHECK_COPY(&ch, arg, len);
    return tr_chan_subscribe(self, ch, ITEM, 3, &s->sub); /* wants 3 for now */
}

static int slow_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    slow *s = state;
    if (msg->type == ITEM)
        s->got++;
    else if (msg->type == MORE)
        return tr_chan_request(self, s->sub, 5);
    else if (msg->type == ASK)
        return tr_reply(self, msg, ASK, &s->got, sizeof s->got);
    return 0;
}

static const tr_behavior slow_b = {.name = "slow", .state_size = sizeof(slow),
                                   .init = slow_init, .receive = slow_receive};

static uint32_t ask_got(tr_runtime *rt, tr_pid p)
{
    uint32_t got;
    tr_test_ask(rt, p, ASK, NULL, 0, &got, sizeof got);
    return got;
}

static void test_demand(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_chan *ch;
    assert_int_equal(tr_chan_create(rt, NULL, &ch), 0);
    for (uint32_t i = 0; i < 20; i++) {
        item it = {0, i};
        assert_int_equal(tr_chan_send(ch, &it, sizeof it), 0);
    }
    tr_pid p = tr_test_spawn(rt, &slow_b, TR_LOOP_DEFAULT, &ch, sizeof ch);
    TR_WAIT_UNTIL(ask_got(rt, p) == 3);
    tr_chan_stats st;
    /* Nothing beyond the demand left the channel. */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ask_got(rt, p), 3);
        assert_int_equal(tr_chan_stats_get(ch, &st), 0);
        assert_int_equal(st.depth, 17);
    }
    assert_int_equal(tr_rt_send(rt, p, MORE, NULL, 0), 0);
    TR_WAIT_UNTIL(ask_got(rt, p) == 8);
    assert_int_equal(tr_chan_stats_get(ch, &st), 0);
    assert_int_equal(st.depth, 12);
    /* Its exit ends the subscription and releases its reference. */
    assert_int_equal(tr_signal_exit(rt, p, TR_EXIT_SHUTDOWN), 0);
    TR_WAIT_UNTIL(tr_chan_stats_get(ch, &st) == 0 && st.subscribers == 0);
    assert_int_equal(st.depth, 12); /* the rest stays for other consumers */
    tr_chan_release(ch);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- the room notification ---------------------------------------------------------------------- */

typedef struct filler {
    tr_chan *ch;
    uint32_t sent, rooms, handled;
} filler;

static int filler_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    filler *f = state;
    f->handled++;
    if (msg->type == GO) {
        memcpy(&f->ch, msg->data, sizeof f->ch);
    } else if (msg->type == ROOM) {
        f->rooms++;
    } else if (msg->type == ASK) {
        uint32_t v[3] = {f->sent, f->rooms, f->handled};
        return tr_reply(self, msg, ASK, v, sizeof v);
    }
    for (;;) {
        item it = {1, f->sent};
        int rc = tr_chan_send(f->ch, &it, sizeof it);
        if (rc == TR_EFULL)
            return tr_chan_notify_room(self, f->ch, ROOM);
        if (rc != 0)
            return 0; /* closed */
        f->sent++;
    }
}

static const tr_behavior filler_b = {.name = "filler", .state_size = sizeof(filler),
                                     .receive = filler_receive};

static void ask_filler(tr_runtime *rt, tr_pid p, uint32_t v[3])
{
    tr_test_ask(rt, p, ASK, NULL, 0, v, 3 * sizeof *v);
}

static void test_room_notification(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    tr_chan *ch = make_chan(rt, 2);
    tr_pid p;
    assert_int_equal(tr_rt_spawn(rt, &filler_b, NULL, &p), 0);
    assert_int_equal(tr_rt_send(rt, p, GO, &ch, sizeof ch), 0);
    uint32_t v[3];
    TR_WAIT_UNTIL((ask_filler(rt, p, v), v[0] == 2));
    /* Full: the producer waits for a message, it does not spin. */
    ask_filler(rt, p, v);
    uint32_t handled = v[2];
    ask_filler(rt, p, v);
    assert_int_equal(v[2], handled + 1); /* only our own ASK ran meanwhile */
    assert_int_equal(v[1], 0);
    for (uint32_t i = 0; i < 10; i++) {
        item got;
        size_t len;
        assert_int_equal(tr_chan_recv_wait(ch, &got, sizeof got, &len, TR_INFINITE), 0);
        assert_int_equal(got.seq, i);
        TR_WAIT_UNTIL((ask_filler(rt, p, v), v[0] == i + 3)); /* room -> one more */
    }
    assert_true(v[1] >= 10);
    /* Closing tells the waiter too; its send is then refused. */
    assert_int_equal(tr_chan_close(ch), 0);
    TR_WAIT_UNTIL((ask_filler(rt, p, v), v[1] >= 11));
    tr_chan_release(ch);
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ---- close while everyone races ------------------------------------------------------------------ */

static _Atomic long accepted;

static void *racing_producer(void *arg)
{
    tr_chan *ch = arg;
    for (uint32_t s = 0;; s++) {
        item it = {0, s};
        int rc = tr_chan_send_wait(ch, &it, sizeof it, TR_INFINITE);
        if (rc == TR_ECLOSED)
            return NULL;
        if (rc != 0)
            abort();
        atomic_fetch_add(&accepted, 1);
    }
}

typedef struct racer {
    tr_ref sub;
} racer;

static int racer_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    racer *r = state;
    tr_chan *ch;
    TR_CHECK_COPY(&ch, arg, len);
    return tr_chan_subscribe(self, ch, ITEM, 1000000, &r->sub);
}

static int racer_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == ITEM)
        atomic_fetch_add(&received_total, 1);
    if (msg->type == TR_MSG_CHAN_END) {
        atomic_fetch_add(&ends, 1);
        return tr_exit(self, TR_EXIT_NORMAL);
    }
    return 0;
}

static const tr_behavior racer_b = {.name = "racer", .state_size = sizeof(racer),
                                    .init = racer_init, .receive = racer_receive};

static void *racing_consumer(void *arg)
{
    tr_chan *ch = arg;
    item it;
    size_t len;
    int rc;
    while ((rc = tr_chan_recv_wait(ch, &it, sizeof it, &len, TR_INFINITE)) == 0)
        atomic_fetch_add(&received_total, 1);
    if (rc != TR_ECLOSED)
        abort();
    atomic_fetch_add(&ends, 1);
    return NULL;
}

static void test_close_races(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_quiet_runtime(2);
    for (int round = 0; round < 20; round++) {
        atomic_store(&accepted, 0);
        atomic_store(&received_total, 0);
        atomic_store(&ends, 0);
        tr_chan *ch = make_chan(rt, 64);
        for (int i = 0; i < 2; i++)
            tr_test_spawn(rt, &racer_b, TR_LOOP(i), &ch, sizeof ch);
        pthread_t prod[2], cons;
        for (int i = 0; i < 2; i++)
            assert_int_equal(pthread_create(&prod[i], NULL, racing_producer, ch), 0);
        assert_int_equal(pthread_create(&cons, NULL, racing_consumer, ch), 0);
        TR_WAIT_UNTIL(atomic_load(&accepted) >= 500 + 100 * round); /* close at varied moments */
        assert_int_equal(tr_chan_close(ch), 0);
        for (int i = 0; i < 2; i++)
            pthread_join(prod[i], NULL);
        pthread_join(cons, NULL);
        TR_WAIT_UNTIL(atomic_load(&ends) == 3);
        /* Everything accepted was delivered exactly once. */
        assert_int_equal(atomic_load(&received_total), atomic_load(&accepted));
        tr_chan_stats st;
        assert_int_equal(tr_chan_stats_get(ch, &st), 0);
        assert_int_equal((long)st.sent, atomic_load(&accepted));
        assert_int_equal(st.received, st.sent);
        assert_int_equal(st.depth, 0);
        tr_chan_release(ch);
    }
    assert_int_equal(tr_runtime_free(rt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contract),
        cmocka_unit_test(test_many_to_many),
        cmocka_unit_test(test_demand),
        cmocka_unit_test(test_room_notification),
        cmocka_unit_test(test_close_races),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
