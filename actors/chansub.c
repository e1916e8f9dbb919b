/*
 * chansub.c — channels and actors: subscriptions, PULL feeding, room
 * waiters.
 *
 * The channel itself is channels/chan.c's, a transport that knows no
 * actor; this file is the runtime's side of it. It creates channels for a
 * runtime (tr_chan_create) and gives the transport the hooks that wake
 * actors (chan_hooks); the transport calls them only when an actor is
 * parked on the channel.
 *
 * Design notes
 * ------------
 * A subscribed actor is fed on its own loop: a PULL system message makes
 * the loop take up to its credit (at most `batch` per turn) from the
 * channel and hand each item to the receive callback straight from its
 * slot (tr__chan_take, tr__chan_give_back). When the channel is empty the
 * subscription parks (tr__chan_park: registered, then a look again); the
 * next send unparks one parked subscription and calls the consumer hook,
 * which posts it a PULL. A parked subscription's token is its actor's pid
 * and its id, which is all a PULL needs: once the transport has released
 * its lock the subscription may be gone, and the PULL then finds nothing.
 *
 * An actor that found the channel full may ask to be told when there is
 * room (tr_chan_notify_room): it parks as a producer whose token is its pid
 * and the message type; a receive unparks the oldest, and the producer
 * hook sends it that message. A waiter that has ended is skipped.
 *
 * Subscriptions are a resource their actor owns (subsys.h): they end when
 * its exit begins; items not yet delivered stay in the channel.
 */
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "subsys.h"

/* A subscription: attached to its channel (park) and in its actor's list. */
typedef struct tr__sub {
    tr__chan_consumer park;     /* the transport's; token: {pid, id} */
    struct tr__sub *next_owned; /* in the actor (its loop only) */
    tr_chan *ch;
    tr_runtime *rt;             /* ch's: where its PULLs are posted */
    tr_pid pid;
    tr_ref id;
    uint32_t type;
    /* owner's loop only */
    uint64_t credit;
    uint8_t state;    /* S_* */
} tr__sub;

enum { S_ACTIVE, S_PARKED, S_STARVED };

/* ---- the hooks the transport calls ------------------------------------------------- */

static void post_pull(tr_runtime *rt, tr_pid pid, tr_ref id)
{
    tr__post_system(rt, tr__thread_loop(rt), TR_PID_NONE, pid, TR__MSG_CHAN_PULL, &id,
                    sizeof id);
}

/* A parked subscription: an item came, or the channel closed. */
static void hook_consumer(void *owner, const tr__chan_token *token)
{
    post_pull(owner, (tr_pid)token->id, (tr_ref)token->arg);
}

/* An actor waiting for room: a slot came free, or the channel closed. */
static bool hook_producer(void *owner, const tr__chan_token *token)
{
    tr_runtime *rt = owner;
    /* A waiter that has ended is simply gone. */
    return tr__send(rt, tr__thread_loop(rt), TR_PID_NONE, (tr_pid)token->id,
                    (uint32_t)token->arg, 0, NULL, NULL, 0, NULL, NULL) == 0;
}

/* No loop (of any runtime) may block in tr_chan_*_wait. */
static bool hook_may_block(void *owner)
{
    (void)owner;
    return !tr__on_loop_thread();
}

/* A deterministic runtime (subsys.h) runs only when a plain thread waits:
 * a channel wait drives it through the virtual-time hooks, as a call's
 * wait does. Other runtimes: sleep as usual. */
static int hook_drive(void *owner, uint64_t since)
{
    tr_runtime *rt = owner;
    return rt->det ? tr__vtime_look(rt, UINT64_MAX, since, NULL, NULL) : 0;
}

static const tr__chan_hooks chan_hooks = {
    .consumer = hook_consumer,
    .producer = hook_producer,
    .may_block = hook_may_block,
    .drive = hook_drive,
};

int tr_chan_create(tr_runtime *rt, const tr_chan_opts *opts, tr_chan **out)
{
    if (!rt || !out)
        return TR_EINVAL;
    return tr__chan_create(opts, rt->opts.max_payload, &chan_hooks, rt, out);
}

/* ---- actors: waiting for room ------------------------------------------------------ */

int tr_chan_notify_room(tr_actor *self, tr_chan *ch, uint32_t type)
{
    if (!self || !ch || type > TR_MSG_USER_MAX)
        return TR_EINVAL;
    if (!tr__running_loop(self))
        return TR_EWRONGTHREAD;
    tr__chan_token token = {.id = tr__actor_pid(self), .arg = type};
    return tr__chan_park_producer(ch, &token);
}

/* ---- actors: subscriptions --------------------------------------------------------- */

/* An actor's subscriptions are a resource it owns: they end when its exit
 * begins (items not yet delivered stay in the channel). Data: the first
 * subscription (linked by next_owned). */
static void subs_release(tr__loop *L, tr_actor *a, void **data);
static void subs_teardown(tr_actor *a, void **data);
static tr__owned_kind subs_kind = {.name = "channel subscriptions", .stop = subs_release,
                                   .teardown = subs_teardown};

static tr__sub **subs_of(tr_actor *a)
{
    return (tr__sub **)tr__owned(a, &subs_kind);
}

static tr__sub *find_sub(tr_actor *a, tr_ref id, tr__sub ***link)
{
    tr__sub **head = subs_of(a);
    if (!head)
        return NULL;
    for (tr__sub **pp = head; *pp; pp = &(*pp)->next_owned)
        if ((*pp)->id == id) {
            if (link)
                *link = pp;
            return *pp;
        }
    return NULL;
}

/* Unlinks and frees a subscription; its reference to the channel goes. */
static void drop_sub(tr_actor *a, tr__sub *sub)
{
    tr_chan *ch = sub->ch;
    for (tr__sub **pp = subs_of(a); *pp; pp = &(*pp)->next_owned)
        if (*pp == sub) {
            *pp = sub->next_owned;
            break;
        }
    tr__chan_detach(ch, &sub->park);
    free(sub);
    tr_chan_release(ch);
}

int tr_chan_subscribe(tr_actor *self, tr_chan *ch, uint32_t type, uint32_t credit,
                      tr_ref *out)
{
    if (!self || !ch || !out || type > TR_MSG_USER_MAX)
        return TR_EINVAL;
    tr__loop *L = tr__running_loop(self);
    if (!L)
        return TR_EWRONGTHREAD;
    if (self->status != TR__RUNNING)
        return TR_ESTOPPED;
    int err = 0;
    tr__sub **head = (tr__sub **)tr__own(L, self, &subs_kind, &err);
    tr__sub *sub = head ? tr__calloc(1, sizeof *sub) : NULL;
    if (!sub)
        return TR_ENOMEM;
    tr_chan_retain(ch);
    sub->ch = ch;
    sub->rt = tr__chan_owner(ch);
    sub->pid = tr__actor_pid(self);
    sub->id = ck_pr_faa_64(&L->rt->next_ref, 1) + 1;
    sub->type = type;
    sub->credit = credit;
    sub->state = credit ? S_ACTIVE : S_STARVED;
    sub->park.token = (tr__chan_token){.id = sub->pid, .arg = sub->id};
    tr__chan_attach(ch, &sub->park);
    sub->next_owned = *head;
    *head = sub;
    if (credit)
        post_pull(sub->rt, sub->pid, sub->id);
    *out = sub->id;
    return 0;
}

int tr_chan_request(tr_actor *self, tr_ref id, uint32_t n)
{
    tr__loop *L;
    int self_rc = tr__self_loop(self, &L);
    if (self_rc != 0)
        return self_rc;
    tr__sub *sub = find_sub(self, id, NULL);
    if (!sub)
        return TR_ENOTFOUND;
    sub->credit += n;
    if (n && sub->state == S_STARVED) {
        sub->state = S_ACTIVE;
        post_pull(sub->rt, sub->pid, sub->id);
    }
    return 0;
}

int tr_chan_unsubscribe(tr_actor *self, tr_ref id)
{
    tr__loop *L;
    int self_rc = tr__self_loop(self, &L);
    if (self_rc != 0)
        return self_rc;
    tr__sub *sub = find_sub(self, id, NULL);
    if (!sub)
        return TR_ENOTFOUND;
    drop_sub(self, sub);
    return 0;
}

static void subs_teardown(tr_actor *a, void **data)
{
    while (*data)
        drop_sub(a, *data);
}

static void subs_release(tr__loop *L, tr_actor *a, void **data)
{
    (void)L;
    subs_teardown(a, data);
}

/* ---- feeding a subscription -------------------------------------------------------- */

/* A PULL: feed the subscription from the channel, within its credit and a
 * batch; park when there is nothing; end it when the channel is drained. */
static void pull(tr__loop *L, tr_actor *a, tr__sub *sub, tr_ref id)
{
    tr_chan *ch = sub->ch;
    unsigned batch = L->rt->opts.batch;
    sub->state = S_ACTIVE;
    for (unsigned n = 0;; n++) {
        if (sub->credit == 0) {
            sub->state = S_STARVED;
            return;
        }
        if (n == batch) { /* let the loop's other actors run */
            post_pull(sub->rt, sub->pid, sub->id);
            return;
        }
        tr__chan_item *s = tr__chan_take(ch);
        if (!s) {
            if (tr__chan_drained(ch)) {
                tr_msg pub = {.from = TR_PID_NONE, .type = TR_MSG_CHAN_END, .ref = id};
                drop_sub(a, sub); /* before the handler: it may subscribe again */
                tr__actor_deliver(L, a, &pub, NULL);
                return;
            }
            /* Park; a send that comes meanwhile unparks it and posts a PULL
             * (hook_consumer), or it finds the item here and goes on. */
            sub->state = S_PARKED;
            if (tr__chan_park(ch, &sub->park))
                return;
            sub->state = S_ACTIVE;
            continue;
        }
        sub->credit--;
        tr_msg pub = {.from = TR_PID_NONE, .type = sub->type, .len = s->len, .data = s->data,
                      .ref = id};
        tr__actor_deliver(L, a, &pub, NULL);
        tr__chan_give_back(ch, s);
        /* The handler may have unsubscribed, or ended the actor. */
        if (a->status != TR__RUNNING || find_sub(a, id, NULL) != sub)
            return;
    }
}

void tr__chan_pull(tr__loop *L, tr_actor *a, tr__msg *m)
{
    tr_ref id;
    memcpy(&id, m->data, sizeof id);
    tr__pool_free(&L->pool, m);
    tr__sub *sub = a->status == TR__RUNNING ? find_sub(a, id, NULL) : NULL;
    if (!sub)
        return; /* unsubscribed meanwhile */
    /* The handler may end the subscription (or the actor) and with it the
     * last reference: keep the channel until this pull is done with it. */
    tr_chan *ch = sub->ch;
    tr_chan_retain(ch);
    pull(L, a, sub, id);
    tr_chan_release(ch);
}
