/*
 * chan.c — bounded lock-free channels between actors and threads.
 *
 * Design notes
 * ------------
 * Memory is fixed at creation: `capacity` slots of one item each, and two
 * Concurrency Kit MPMC rings of slot pointers — `free` (slots to fill) and
 * `data` (filled slots, in order). A send takes a slot from `free`, copies
 * the item in, and puts it on `data`; a receive takes it from `data`,
 * copies it out (or hands it to an actor's handler in place) and gives it
 * back to `free`. "Full" is simply `free` being empty. No lock and no
 * allocation on either path.
 *
 * Everything that waits — a subscribed actor with nothing to take, an actor
 * waiting for room, a plain thread blocked in a _wait call — registers
 * first, then looks again (a Dekker handshake with full fences on both
 * sides), so a wake-up cannot be lost; the other side checks a counter of
 * waiters after its ring operation and only then pays for a wake. The
 * waiter lists themselves are behind a spinlock taken only on those slow
 * paths.
 *
 * A subscribed actor is fed on its own loop: a PULL system message makes
 * the loop take up to its credit (at most `batch` per turn) from `data` and
 * hand each item to the receive callback straight from its slot. When
 * `data` is empty it parks; the next send unparks one parked subscriber
 * and posts it a PULL.
 *
 * Close: sends in progress are counted (`inflight`), so "closed, nothing
 * in flight, and empty" means no accepted item can still appear: only then
 * does a consumer see the end.
 */
#include <stdlib.h>
#include <string.h>

#include <ck_ring.h>
#include <ck_spinlock.h>

#include "subsys.h"

typedef struct slot {
    uint32_t len;
    uint32_t pad;
    unsigned char data[];
} slot;

/* A subscription; in the channel's list (spinlock) and its actor's list. */
typedef struct tr__sub {
    struct tr__sub *next;       /* in the channel */
    struct tr__sub *next_owned; /* in the actor (its loop only) */
    tr_chan *ch;
    tr_pid pid;
    tr_ref id;
    uint32_t type;
    int parked;       /* 1 while waiting for an item (atomic) */
    /* owner's loop only */
    uint64_t credit;
    uint8_t state;    /* S_* */
} tr__sub;

enum { S_ACTIVE, S_PARKED, S_STARVED };

typedef struct room_waiter {
    tr_pid pid;
    uint32_t type;
} room_waiter;

/* Fields are grouped by who writes them, one cache line per group, so that
 * producers and consumers do not fight over lines they need not share. */
#define LINE __attribute__((aligned(TR__CACHELINE)))
struct tr_chan {
    ck_ring_t data, free;
    /* read-only after creation */
    ck_ring_buffer_t *data_buf LINE, *free_buf;
    unsigned char *slots;
    uint32_t capacity, item_max, slot_size;
    tr_runtime *rt;
    /* written by producers */
    int inflight LINE;  /* sends between their check of `closed` and their enqueue */
    uint64_t sent, refused;
    /* written by consumers */
    uint64_t received LINE;
    /* read on every operation, written only by waiters and close */
    int closed LINE;
    int nparked;        /* subscriptions parked (atomic) */
    int nroom;          /* == nroom_used, readable without the lock */
    int nwait_data;     /* plain threads blocked in recv_wait (atomic) */
    int nwait_room;     /* plain threads blocked in send_wait (atomic) */
    /* slow paths */
    int refs LINE;
    ck_spinlock_fas_t lock;
    tr__sub *subs;
    uint32_t nsubs;
    room_waiter *room;
    uint32_t nroom_used, nroom_cap;
    uv_mutex_t mu;
    uv_cond_t data_cv; /* recv_wait sleeps here: an item came, or close */
    uv_cond_t room_cv; /* send_wait sleeps here: a slot came free, or close */
};

static unsigned next_pow2(unsigned v)
{
    unsigned p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

void tr_chan_opts_init(tr_chan_opts *opts)
{
    if (opts)
        memset(opts, 0, sizeof *opts);
}

int tr_chan_create(tr_runtime *rt, const tr_chan_opts *opts, tr_chan **out)
{
    if (!rt || !out)
        return TR_EINVAL;
    uint32_t cap = opts && opts->capacity ? opts->capacity : 1024;
    uint32_t item = opts && opts->item_max ? opts->item_max : 64;
    if (cap > (1u << 30) || item > rt->opts.max_payload)
        return TR_EINVAL;
    tr_chan *ch = aligned_alloc(TR__CACHELINE, (sizeof *ch + TR__CACHELINE - 1) &
                                                   ~(size_t)(TR__CACHELINE - 1));
    if (!ch)
        return TR_ENOMEM;
    memset(ch, 0, sizeof *ch);
    unsigned ring = next_pow2(cap + 1); /* a ck ring holds size - 1 */
    ch->capacity = cap;
    ch->item_max = item;
    ch->slot_size = (uint32_t)((sizeof(slot) + item + 15u) & ~15u);
    ch->data_buf = calloc(ring, sizeof *ch->data_buf);
    ch->free_buf = calloc(ring, sizeof *ch->free_buf);
    ch->slots = malloc((size_t)cap * ch->slot_size);
    if (!ch->data_buf || !ch->free_buf || !ch->slots || uv_mutex_init(&ch->mu) != 0) {
        free(ch->data_buf);
        free(ch->free_buf);
        free(ch->slots);
        free(ch);
        return TR_ENOMEM;
    }
    bool data_cv = uv_cond_init(&ch->data_cv) == 0;
    if (!data_cv || uv_cond_init(&ch->room_cv) != 0) {
        if (data_cv)
            uv_cond_destroy(&ch->data_cv);
        uv_mutex_destroy(&ch->mu);
        free(ch->data_buf);
        free(ch->free_buf);
        free(ch->slots);
        free(ch);
        return TR_ENOMEM;
    }
    ck_ring_init(&ch->data, ring);
    ck_ring_init(&ch->free, ring);
    for (uint32_t i = 0; i < cap; i++)
        ck_ring_enqueue_mpmc(&ch->free, ch->free_buf, ch->slots + (size_t)i * ch->slot_size);
    ck_spinlock_fas_init(&ch->lock);
    ch->rt = rt;
    ch->refs = 1;
    *out = ch;
    return 0;
}

void tr_chan_retain(tr_chan *ch)
{
    if (ch)
        ck_pr_inc_int(&ch->refs);
}

void tr_chan_release(tr_chan *ch)
{
    if (!ch)
        return;
    tr__handoff_release(ch);
    bool zero;
    ck_pr_dec_int_zero(&ch->refs, &zero);
    if (!zero)
        return;
    tr__handoff_acquire(ch);
    uv_cond_destroy(&ch->data_cv);
    uv_cond_destroy(&ch->room_cv);
    uv_mutex_destroy(&ch->mu);
    free(ch->room);
    free(ch->data_buf);
    free(ch->free_buf);
    free(ch->slots);
    free(ch);
}

/* ---- waking ----------------------------------------------------------------------------- */

static void post_pull(tr_chan *ch, tr_pid pid, tr_ref id)
{
    tr__post_system(ch->rt, tr__thread_loop(ch->rt), TR_PID_NONE, pid, TR__MSG_CHAN_PULL, &id, sizeof id);
}

/*
 * Wakes plain threads blocked on one side: one per item (a send wakes one
 * receiver, a receive one sender), all on close. Waking every blocked
 * thread of both sides on every item, as one condition variable did, made
 * each item a stampede of futex wake-ups and re-blocks: test_chan took
 * 1-100 s on a loaded machine. The caller's full fence before and the
 * waiter's count-then-look in wait_for make sure one of them sees the other.
 */
static void wake_threads(tr_chan *ch, int *nwait, uv_cond_t *cv, bool all)
{
    if (ck_pr_load_int(nwait) == 0)
        return;
    uv_mutex_lock(&ch->mu);
    if (all)
        uv_cond_broadcast(cv);
    else
        uv_cond_signal(cv);
    uv_mutex_unlock(&ch->mu);
}

/* After a send (or a close): unpark `n` subscribers, wake blocked threads. */
static void wake_consumers(tr_chan *ch, bool all)
{
    ck_pr_fence_memory();
    if (ck_pr_load_int(&ch->nparked) > 0) {
        for (;;) {
            tr_pid pid = TR_PID_NONE;
            tr_ref id = 0;
            ck_spinlock_fas_lock(&ch->lock);
            tr__handoff_acquire(&ch->lock);
            for (tr__sub *s = ch->subs; s; s = s->next)
                if (ck_pr_cas_int(&s->parked, 1, 0)) {
                    ck_pr_dec_int(&ch->nparked);
                    pid = s->pid;
                    id = s->id;
                    break;
                }
            tr__handoff_release(&ch->lock);
            ck_spinlock_fas_unlock(&ch->lock);
            if (pid == TR_PID_NONE)
                break;
            post_pull(ch, pid, id);
            if (!all)
                break;
        }
    }
    wake_threads(ch, &ch->nwait_data, &ch->data_cv, all);
}

/* After a receive (or a close): tell actors waiting for room, wake
 * blocked threads. */
static void wake_producers(tr_chan *ch, bool all)
{
    ck_pr_fence_memory();
    while (ck_pr_load_int(&ch->nroom) > 0) {
        room_waiter w = {TR_PID_NONE, 0};
        ck_spinlock_fas_lock(&ch->lock);
        tr__handoff_acquire(&ch->lock);
        if (ch->nroom_used) {
            w = ch->room[0];
            memmove(ch->room, ch->room + 1, --ch->nroom_used * sizeof *ch->room);
            ck_pr_store_int(&ch->nroom, (int)ch->nroom_used);
        }
        tr__handoff_release(&ch->lock);
        ck_spinlock_fas_unlock(&ch->lock);
        if (w.pid == TR_PID_NONE)
            break;
        /* A waiter that has ended is simply gone. */
        if (tr__send(ch->rt, tr__thread_loop(ch->rt), TR_PID_NONE, w.pid, w.type, 0, NULL, NULL, 0, NULL,
                     NULL) == 0 &&
            !all)
            break;
    }
    wake_threads(ch, &ch->nwait_room, &ch->room_cv, all);
}

/* ---- the data path ------------------------------------------------------------------------ */

int tr_chan_send(tr_chan *ch, const void *item, size_t len)
{
    if (!ch || (!item && len))
        return TR_EINVAL;
    if (len > ch->item_max)
        return TR_EMSGSIZE;
    ck_pr_inc_int(&ch->inflight);
    ck_pr_fence_memory();
    int rc = 0;
    void *p = NULL;
    if (ck_pr_load_int(&ch->closed))
        rc = TR_ECLOSED;
    else if (!ck_ring_dequeue_mpmc(&ch->free, ch->free_buf, &p))
        rc = TR_EFULL;
    if (rc != 0) {
        ck_pr_dec_int(&ch->inflight);
        ck_pr_inc_64(&ch->refused);
        if (rc == TR_ECLOSED)
            wake_consumers(ch, true); /* they may wait for inflight to drain */
        return rc;
    }
    slot *s = p;
    tr__handoff_acquire(s);
    s->len = (uint32_t)len;
    if (len)
        memcpy(s->data, item, len);
    tr__handoff_release(s);
    /* Cannot fail: there are as many slots as the ring holds. */
    ck_ring_enqueue_mpmc(&ch->data, ch->data_buf, s);
    ck_pr_inc_64(&ch->sent);
    ck_pr_dec_int(&ch->inflight);
    wake_consumers(ch, ck_pr_load_int(&ch->closed) != 0);
    return 0;
}

/* True when no item can ever come: closed, no send in flight, empty. */
static bool drained(tr_chan *ch)
{
    if (!ck_pr_load_int(&ch->closed))
        return false;
    ck_pr_fence_memory();
    if (ck_pr_load_int(&ch->inflight) != 0)
        return false;
    ck_pr_fence_memory();
    return ck_ring_size(&ch->data) == 0;
}

/* Takes the oldest slot, or NULL. */
static slot *take(tr_chan *ch)
{
    void *p;
    if (!ck_ring_dequeue_mpmc(&ch->data, ch->data_buf, &p))
        return NULL;
    tr__handoff_acquire(p);
    return p;
}

/* Gives a slot back once its item is consumed. */
static void give_back(tr_chan *ch, slot *s)
{
    tr__handoff_release(s);
    ck_ring_enqueue_mpmc(&ch->free, ch->free_buf, s);
    ck_pr_inc_64(&ch->received);
    wake_producers(ch, false);
}

int tr_chan_recv(tr_chan *ch, void *buf, size_t cap, size_t *len)
{
    if (!ch || !buf || !len || cap < ch->item_max)
        return TR_EINVAL;
    slot *s = take(ch);
    if (!s)
        return drained(ch) ? TR_ECLOSED : TR_EEMPTY;
    *len = s->len;
    memcpy(buf, s->data, s->len);
    give_back(ch, s);
    return 0;
}

/*
 * The blocking forms: try; if it would have to wait, register as blocked
 * (under the mutex), look again whether it could go on now (`ready`: the
 * ring it needs is not empty, or the channel is closed) and only then
 * sleep. The attempt itself runs outside the mutex: it wakes others.
 */
static int wait_for(tr_chan *ch, tr_duration timeout_ms, int (*attempt)(void *),
                    void *arg, int again, ck_ring_t *needed, int *nwait, uv_cond_t *cv)
{
    /* No default wait: TR_DEFAULT is refused with the other negatives. */
    if (tr__duration_arg(timeout_ms, TR__NO_DEFAULT, &timeout_ms) != 0)
        return TR_EINVAL;
    if (tr__thread_loop(ch->rt))
        return TR_EWRONGTHREAD;
    /* Real time, as tr_rt_call; saturating, so a huge timeout cannot wrap. */
    uint64_t end = tr__deadline_from(uv_hrtime(), timeout_ms);
    for (;;) {
        int rc = attempt(arg);
        if (rc != again)
            return rc;
        uv_mutex_lock(&ch->mu);
        ck_pr_inc_int(nwait);
        ck_pr_fence_memory();
        bool ready = ck_ring_size(needed) > 0 || ck_pr_load_int(&ch->closed);
        /* Woken (or a slice of a long wait over): try again, unless the
         * deadline has passed. */
        bool timed_out = !ready && (!tr__cond_wait_until(cv, &ch->mu, end) ||
                                    (end != UINT64_MAX && uv_hrtime() >= end));
        ck_pr_dec_int(nwait);
        uv_mutex_unlock(&ch->mu);
        if (timed_out) {
            rc = attempt(arg); /* a last chance, then give up */
            return rc == again ? TR_ETIMEDOUT : rc;
        }
    }
}

typedef struct op {
    tr_chan *ch;
    const void *item;
    void *buf;
    size_t len, cap, *out_len;
} op;

static int try_send(void *arg)
{
    op *o = arg;
    return tr_chan_send(o->ch, o->item, o->len);
}

static int try_recv(void *arg)
{
    op *o = arg;
    return tr_chan_recv(o->ch, o->buf, o->cap, o->out_len);
}

int tr_chan_send_wait(tr_chan *ch, const void *item, size_t len, tr_duration timeout_ms)
{
    if (!ch)
        return TR_EINVAL;
    op o = {.ch = ch, .item = item, .len = len};
    return wait_for(ch, timeout_ms, try_send, &o, TR_EFULL, &ch->free, &ch->nwait_room,
                    &ch->room_cv);
}

int tr_chan_recv_wait(tr_chan *ch, void *buf, size_t cap, size_t *len,
                      tr_duration timeout_ms)
{
    if (!ch)
        return TR_EINVAL;
    op o = {.ch = ch, .buf = buf, .cap = cap, .out_len = len};
    return wait_for(ch, timeout_ms, try_recv, &o, TR_EEMPTY, &ch->data, &ch->nwait_data,
                    &ch->data_cv);
}

int tr_chan_close(tr_chan *ch)
{
    if (!ch)
        return TR_EINVAL;
    if (!ck_pr_cas_int(&ch->closed, 0, 1))
        return TR_EALREADY;
    wake_consumers(ch, true);
    wake_producers(ch, true);
    return 0;
}

int tr_chan_stats_get(tr_chan *ch, tr_chan_stats *out)
{
    if (!ch || !out)
        return TR_EINVAL;
    out->depth = ck_ring_size(&ch->data);
    out->capacity = ch->capacity;
    out->sent = ck_pr_load_64(&ch->sent);
    out->received = ck_pr_load_64(&ch->received);
    out->refused = ck_pr_load_64(&ch->refused);
    out->subscribers = ck_pr_load_32(&ch->nsubs);
    return 0;
}

/* ---- actors: waiting for room ---------------------------------------------------------------- */

int tr_chan_notify_room(tr_actor *self, tr_chan *ch, uint32_t type)
{
    if (!self || !ch || type > TR_MSG_USER_MAX)
        return TR_EINVAL;
    if (!tr__running_loop(self))
        return TR_EWRONGTHREAD;
    int rc = 0;
    ck_spinlock_fas_lock(&ch->lock);
    tr__handoff_acquire(&ch->lock);
    if (ch->nroom_used == ch->nroom_cap) {
        uint32_t cap = ch->nroom_cap ? ch->nroom_cap * 2 : 8;
        room_waiter *r = realloc(ch->room, cap * sizeof *r);
        if (r) {
            ch->room = r;
            ch->nroom_cap = cap;
        } else {
            rc = TR_ENOMEM;
        }
    }
    if (rc == 0) {
        ch->room[ch->nroom_used++] = (room_waiter){tr__actor_pid(self), type};
        ck_pr_store_int(&ch->nroom, (int)ch->nroom_used);
    }
    tr__handoff_release(&ch->lock);
    ck_spinlock_fas_unlock(&ch->lock);
    if (rc != 0)
        return rc;
    /* Registered; now look again: room made meanwhile wakes someone. */
    ck_pr_fence_memory();
    if (ck_ring_size(&ch->free) > 0 || ck_pr_load_int(&ch->closed))
        wake_producers(ch, false);
    return 0;
}

/* ---- actors: subscriptions ------------------------------------------------------------------ */

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
    ck_spinlock_fas_lock(&ch->lock);
    tr__handoff_acquire(&ch->lock);
    for (tr__sub **pp = &ch->subs; *pp; pp = &(*pp)->next)
        if (*pp == sub) {
            *pp = sub->next;
            break;
        }
    if (ck_pr_cas_int(&sub->parked, 1, 0))
        ck_pr_dec_int(&ch->nparked);
    ck_pr_dec_32(&ch->nsubs);
    tr__handoff_release(&ch->lock);
    ck_spinlock_fas_unlock(&ch->lock);
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
    tr__sub *sub = head ? calloc(1, sizeof *sub) : NULL;
    if (!sub)
        return TR_ENOMEM;
    tr_chan_retain(ch);
    sub->ch = ch;
    sub->pid = tr__actor_pid(self);
    sub->id = ck_pr_faa_64(&L->rt->next_ref, 1) + 1;
    sub->type = type;
    sub->credit = credit;
    sub->state = credit ? S_ACTIVE : S_STARVED;
    ck_spinlock_fas_lock(&ch->lock);
    tr__handoff_acquire(&ch->lock);
    sub->next = ch->subs;
    ch->subs = sub;
    ck_pr_inc_32(&ch->nsubs);
    tr__handoff_release(&ch->lock);
    ck_spinlock_fas_unlock(&ch->lock);
    sub->next_owned = *head;
    *head = sub;
    if (credit)
        post_pull(ch, sub->pid, sub->id);
    *out = sub->id;
    return 0;
}

int tr_chan_request(tr_actor *self, tr_ref id, uint32_t n)
{
    if (!self)
        return TR_EINVAL;
    if (!tr__running_loop(self))
        return TR_EWRONGTHREAD;
    tr__sub *sub = find_sub(self, id, NULL);
    if (!sub)
        return TR_ENOTFOUND;
    sub->credit += n;
    if (n && sub->state == S_STARVED) {
        sub->state = S_ACTIVE;
        post_pull(sub->ch, sub->pid, sub->id);
    }
    return 0;
}

int tr_chan_unsubscribe(tr_actor *self, tr_ref id)
{
    if (!self)
        return TR_EINVAL;
    if (!tr__running_loop(self))
        return TR_EWRONGTHREAD;
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
            post_pull(ch, sub->pid, sub->id);
            return;
        }
        slot *s = take(ch);
        if (!s) {
            if (drained(ch)) {
                tr_msg pub = {.from = TR_PID_NONE, .type = TR_MSG_CHAN_END, .ref = id};
                drop_sub(a, sub); /* before the handler: it may subscribe again */
                tr__actor_deliver(L, a, &pub, NULL);
                return;
            }
            /* Park: registered first, then look again (see wake_consumers). */
            sub->state = S_PARKED;
            ck_pr_inc_int(&ch->nparked);
            ck_pr_store_int(&sub->parked, 1);
            ck_pr_fence_memory();
            if (ck_ring_size(&ch->data) == 0 && !ck_pr_load_int(&ch->closed))
                return;
            if (!ck_pr_cas_int(&sub->parked, 1, 0))
                return; /* a sender took the park: its PULL is on its way */
            ck_pr_dec_int(&ch->nparked);
            sub->state = S_ACTIVE;
            continue;
        }
        sub->credit--;
        tr_msg pub = {.from = TR_PID_NONE, .type = sub->type, .len = s->len, .data = s->data,
                      .ref = id};
        tr__actor_deliver(L, a, &pub, NULL);
        give_back(ch, s);
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
