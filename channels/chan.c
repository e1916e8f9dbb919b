/*
 * chan.c — bounded lock-free channels: the transport.
 *
 * This file knows no actor: it is the memory, the rings, send and receive,
 * close, the counters and the blocking waits of plain threads. Feeding
 * subscribed actors and telling actors about room is actors/chansub.c's,
 * through the internal API in chan.h: it parks its waiters here, and this
 * file calls the hooks it gave (tr__chan_hooks) when one must be woken.
 *
 * Design notes
 * ------------
 * Memory is fixed at creation: `capacity` slots of one item each, and two
 * Concurrency Kit MPMC rings of slot pointers — `free` (slots to fill) and
 * `data` (filled slots, in order). A send takes a slot from `free`, copies
 * the item in, and puts it on `data`; a receive takes it from `data`,
 * copies it out (or lends it in place: tr__chan_take) and gives it
 * back to `free`. "Full" is simply `free` being empty. No lock and no
 * allocation on either path.
 *
 * Everything that waits — a parked consumer with nothing to take (a
 * subscribed actor), a parked producer waiting for room (an actor that
 * asked to be told), a plain thread blocked in a _wait call — registers
 * first, then looks again (a Dekker handshake with full fences on both
 * sides), so a wake-up cannot be lost; the other side checks a counter of
 * waiters after its ring operation and only then pays for a wake. The
 * waiter lists themselves are behind a spinlock taken only on those slow
 * paths, and the hooks that wake parked waiters run after it is released,
 * with a copy of the waiter's token.
 *
 * A consumer can take an item in place (tr__chan_take) and give its slot
 * back once it is done with it (tr__chan_give_back): actors/chansub.c
 * hands each item to an actor's handler straight from its slot.
 *
 * Close: sends in progress are counted (`inflight`), so "closed, nothing
 * in flight, and empty" means no accepted item can still appear: only then
 * does a consumer see the end.
 */
#include <stdlib.h>
#include <string.h>

#include <ck_ring.h>
#include <ck_spinlock.h>

#include <uv.h>

#include "chan.h"
#include "alloc.h"
#include "duration.h"
#include "handoff.h"

typedef tr__chan_item slot;

/* Fields are grouped by who writes them, one cache line per group, so that
 * producers and consumers do not fight over lines they need not share. */
#define CACHELINE 64
#define LINE __attribute__((aligned(CACHELINE)))
struct tr_chan {
    ck_ring_t data, free;
    /* read-only after creation */
    ck_ring_buffer_t *data_buf LINE, *free_buf;
    unsigned char *slots;
    uint32_t capacity, item_max, slot_size;
    const tr__chan_hooks *hooks; /* the layer above's (NULL: none) */
    void *owner;                 /* passed to the hooks */
    /* written by producers */
    int inflight LINE;  /* sends between their check of `closed` and their enqueue */
    uint64_t sent, refused;
    /* written by consumers */
    uint64_t received LINE;
    /* read on every operation, written only by waiters and close */
    int closed LINE;
    int nparked;        /* consumers parked (atomic) */
    int nroom;          /* == nroom_used, readable without the lock */
    int nwait_data;     /* plain threads blocked in recv_wait (atomic) */
    int nwait_room;     /* plain threads blocked in send_wait (atomic) */
    /* slow paths */
    int refs LINE;
    ck_spinlock_fas_t lock;
    tr__chan_consumer *consumers; /* attached (chan.h) */
    uint32_t nconsumers;
    tr__chan_token *room;    /* parked producers, oldest first */
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

int tr__chan_create(const tr_chan_opts *opts, uint32_t item_limit,
                    const tr__chan_hooks *hooks, void *owner, tr_chan **out)
{
    if (!out)
        return TR_EINVAL;
    uint32_t cap = opts && opts->capacity ? opts->capacity : 1024;
    uint32_t item = opts && opts->item_max ? opts->item_max : 64;
    /* Both are bounded before any size is computed from them: the slots'
     * bytes, cap * (item + header), must not wrap (a 32-bit size_t could). */
    if (cap > (1u << 30) || item > item_limit ||
        (size_t)cap > SIZE_MAX / (sizeof(slot) + (size_t)item + 15u))
        return TR_EINVAL;
    tr_chan *ch = tr__aligned_alloc(CACHELINE, (sizeof *ch + CACHELINE - 1) &
                                               ~(size_t)(CACHELINE - 1));
    if (!ch)
        return TR_ENOMEM;
    memset(ch, 0, sizeof *ch);
    unsigned ring = next_pow2(cap + 1); /* a ck ring holds size - 1 */
    ch->capacity = cap;
    ch->item_max = item;
    ch->slot_size = (uint32_t)((sizeof(slot) + item + 15u) & ~15u);
    ch->data_buf = tr__calloc(ring, sizeof *ch->data_buf);
    ch->free_buf = tr__calloc(ring, sizeof *ch->free_buf);
    ch->slots = tr__malloc((size_t)cap * ch->slot_size);
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
    ch->hooks = hooks;
    ch->owner = owner;
    ch->refs = 1;
    *out = ch;
    return 0;
}

void *tr__chan_owner(const tr_chan *ch)
{
    return ch->owner;
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

/* ---- waking ------------------------------------------------------------------------ */

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

/* After a send (or a close): unpark one parked consumer (all of them),
 * wake blocked threads. The hook gets a copy of the token: once the lock
 * is released the consumer may detach and free its node. */
static void wake_consumers(tr_chan *ch, bool all)
{
    ck_pr_fence_memory();
    if (ck_pr_load_int(&ch->nparked) > 0) {
        for (;;) {
            tr__chan_token token = {0, 0};
            bool found = false;
            ck_spinlock_fas_lock(&ch->lock);
            tr__handoff_acquire(&ch->lock);
            for (tr__chan_consumer *c = ch->consumers; c; c = c->next)
                if (ck_pr_cas_int(&c->parked, 1, 0)) {
                    ck_pr_dec_int(&ch->nparked);
                    token = c->token;
                    found = true;
                    break;
                }
            tr__handoff_release(&ch->lock);
            ck_spinlock_fas_unlock(&ch->lock);
            if (!found)
                break;
            if (ch->hooks && ch->hooks->consumer)
                ch->hooks->consumer(ch->owner, &token);
            if (!all)
                break;
        }
    }
    wake_threads(ch, &ch->nwait_data, &ch->data_cv, all);
}

/* After a receive (or a close): unpark the oldest parked producer (all
 * of them), wake blocked threads. */
static void wake_producers(tr_chan *ch, bool all)
{
    ck_pr_fence_memory();
    while (ck_pr_load_int(&ch->nroom) > 0) {
        tr__chan_token token = {0, 0};
        bool found = false;
        ck_spinlock_fas_lock(&ch->lock);
        tr__handoff_acquire(&ch->lock);
        if (ch->nroom_used) {
            token = ch->room[0];
            found = true;
            memmove(ch->room, ch->room + 1, --ch->nroom_used * sizeof *ch->room);
            ck_pr_store_int(&ch->nroom, (int)ch->nroom_used);
        }
        tr__handoff_release(&ch->lock);
        ck_spinlock_fas_unlock(&ch->lock);
        if (!found)
            break;
        /* A waiter the hook cannot tell (an actor that has ended) is simply
         * gone: the next one gets the slot. */
        bool told =
            ch->hooks && ch->hooks->producer && ch->hooks->producer(ch->owner, &token);
        if (told && !all)
            break;
    }
    wake_threads(ch, &ch->nwait_room, &ch->room_cv, all);
}

/* ---- the data path ----------------------------------------------------------------- */

/* Process-wide, for the metrics: sends refused full, receives that found
 * nothing (tr_chan_send / tr_chan_recv; off the data path's success). */
static uint64_t events_full, events_empty;

void tr__chan_events(uint64_t *full, uint64_t *empty)
{
    *full = ck_pr_load_64(&events_full);
    *empty = ck_pr_load_64(&events_empty);
}

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
        if (rc == TR_EFULL)
            ck_pr_inc_64(&events_full);
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

bool tr__chan_drained(tr_chan *ch)
{
    if (!ck_pr_load_int(&ch->closed))
        return false;
    ck_pr_fence_memory();
    if (ck_pr_load_int(&ch->inflight) != 0)
        return false;
    ck_pr_fence_memory();
    return ck_ring_size(&ch->data) == 0;
}

tr__chan_item *tr__chan_take(tr_chan *ch)
{
    void *p;
    if (!ck_ring_dequeue_mpmc(&ch->data, ch->data_buf, &p))
        return NULL;
    tr__handoff_acquire(p);
    return p;
}

void tr__chan_give_back(tr_chan *ch, slot *s)
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
    slot *s = tr__chan_take(ch);
    if (!s) {
        if (tr__chan_drained(ch))
            return TR_ECLOSED;
        ck_pr_inc_64(&events_empty);
        return TR_EEMPTY;
    }
    *len = s->len;
    memcpy(buf, s->data, s->len);
    tr__chan_give_back(ch, s);
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
    /* An event loop's thread (the owner says which) must not block. */
    if (ch->hooks && ch->hooks->may_block && !ch->hooks->may_block(ch->owner))
        return TR_EWRONGTHREAD;
    /* Real time; saturating, so a huge timeout cannot wrap. */
    uint64_t since = uv_hrtime(), end = tr__deadline_from(since, timeout_ms);
    for (;;) {
        int rc = attempt(arg);
        if (rc != again)
            return rc;
        int driven = ch->hooks && ch->hooks->drive ? ch->hooks->drive(ch->owner, since) : 0;
        if (driven > 0)
            continue;
        if (driven < 0)
            return TR_ETIMEDOUT;
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
    out->subscribers = ck_pr_load_32(&ch->nconsumers);
    return 0;
}

/* ---- parked consumers and producers (chan.h) --------------------------------------- */

void tr__chan_attach(tr_chan *ch, tr__chan_consumer *c)
{
    ck_spinlock_fas_lock(&ch->lock);
    tr__handoff_acquire(&ch->lock);
    c->next = ch->consumers;
    ch->consumers = c;
    ck_pr_inc_32(&ch->nconsumers);
    tr__handoff_release(&ch->lock);
    ck_spinlock_fas_unlock(&ch->lock);
}

void tr__chan_detach(tr_chan *ch, tr__chan_consumer *c)
{
    ck_spinlock_fas_lock(&ch->lock);
    tr__handoff_acquire(&ch->lock);
    for (tr__chan_consumer **pp = &ch->consumers; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    if (ck_pr_cas_int(&c->parked, 1, 0))
        ck_pr_dec_int(&ch->nparked);
    ck_pr_dec_32(&ch->nconsumers);
    tr__handoff_release(&ch->lock);
    ck_spinlock_fas_unlock(&ch->lock);
}

bool tr__chan_park(tr_chan *ch, tr__chan_consumer *c)
{
    /* Registered first, then look again (see wake_consumers). */
    ck_pr_inc_int(&ch->nparked);
    ck_pr_store_int(&c->parked, 1);
    ck_pr_fence_memory();
    if (ck_ring_size(&ch->data) == 0 && !ck_pr_load_int(&ch->closed))
        return true;
    if (!ck_pr_cas_int(&c->parked, 1, 0))
        return true; /* a sender took the park: its hook call is on its way */
    ck_pr_dec_int(&ch->nparked);
    return false;
}

int tr__chan_park_producer(tr_chan *ch, const tr__chan_token *token)
{
    int rc = 0;
    ck_spinlock_fas_lock(&ch->lock);
    tr__handoff_acquire(&ch->lock);
    if (ch->nroom_used == ch->nroom_cap) {
        uint32_t cap = ch->nroom_cap ? ch->nroom_cap * 2 : 8;
        tr__chan_token *r = tr__realloc(ch->room, cap * sizeof *r);
        if (r) {
            ch->room = r;
            ch->nroom_cap = cap;
        } else {
            rc = TR_ENOMEM;
        }
    }
    if (rc == 0) {
        ch->room[ch->nroom_used++] = *token;
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
