/* A tiny program built against an installed troupe (find_package and
 * pkg-config): one actor receives one message and stops the runtime. */
#include <stdio.h>
#include <troupe.h>

static int receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    printf("consumer: got message type %u, troupe %s\n", msg->type, TROUPE_VERSION_STRING);
    return tr_runtime_stop(tr_runtime_of(self));
}

static const tr_behavior behavior = {.name = "consumer", .receive = receive};

int main(void)
{
    tr_runtime *rt;
    tr_pid pid;
    if (tr_runtime_create(&rt, NULL) != 0 || tr_runtime_start(rt) != 0 ||
        tr_rt_spawn(rt, &behavior, NULL, &pid) != 0 || tr_rt_send(rt, pid, 7, NULL, 0) != 0)
        return 1;
    tr_runtime_wait(rt);
    return tr_runtime_free(rt) == 0 ? 0 : 1;
}
