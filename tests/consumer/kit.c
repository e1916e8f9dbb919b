/* A test built against an installed troupe's test kit (find_package:
 * troupe::troupe_test): a ticking actor, one advance of 3 s on the
 * virtual clock, a probe that sees the three ticks. */
#include <stdio.h>
#include <troupe_test.h>

static int init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)len;
    return tr_send_interval(self, *(const tr_pid *)arg, 1000, 7, NULL, 0, NULL);
}

static int receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    (void)msg;
    return 0;
}

static const tr_behavior ticker = {.name = "ticker", .init = init, .receive = receive};

int main(void)
{
    tr_runtime *rt;
    tr_probe *p;
    if (tr_test_create(&rt, NULL, NULL) != 0 || tr_runtime_start(rt) != 0 ||
        tr_probe_create(rt, &p) != 0)
        return 1;
    tr_pid to = tr_probe_pid(p), pid;
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.arg = &to;
    o.arg_len = sizeof to;
    if (tr_rt_spawn(rt, &ticker, &o, &pid) != 0 || tr_test_advance(rt, 3000) != 0)
        return 1;
    size_t ticks = tr_probe_pending(p);
    printf("consumer_kit: %zu ticks in 3 s of virtual time\n", ticks);
    tr_probe_free(p);
    return tr_runtime_free(rt) == 0 && ticks == 3 ? 0 : 1;
}
