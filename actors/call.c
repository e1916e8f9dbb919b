/*
 * call.c — request/reply.
 *
 * Design notes
 * ------------
 * An actor's call is an entry in its loop's call table (loop.h): the
 * entry's generation and index are the call's ref, and a call with a limit
 * also has a timer (kind CALL) whose deadline is the call's. The request
 * carries (ref, deadline); the callee's reply carries the ref back. When a
 * reply arrives, the caller's loop looks the ref up: if the entry is still
 * there and belongs to the caller, the call ends (with its timer) and the
 * reply is delivered; if the timeout fired first, the entry is gone (a
 * freed entry's generation moves on, so a reused one never matches) and
 * the reply is dropped and counted. Exactly one of reply and timeout
 * reaches the caller — the fix Erlang needed process aliases for.
 *
 * The entry used to be the timer itself, for every call: a pooled block of
 * 88 bytes initialised and linked, and a timer-table slot, then all of it
 * undone by the reply — ~17 ns of a 0.25 us cross-loop round trip
 * (bench/latency). A call without a limit now costs a few stores.
 *
 * A plain thread's call (tr_rt_call) blocks on a condition variable. Its
 * waiter is registered in a table under a mutex with a generation-checked
 * id; the callee's tr_reply copies the answer into the waiter under that
 * mutex only if the waiter is still registered, so a late reply can never
 * touch a caller that has given up.
 */
#include <stdlib.h>
#include <string.h>

#include "loop.h"

#define NONE UINT32_MAX

typedef struct tr__waiter {
    uv_cond_t cv;
    int done;
    int err;
    tr_rt_reply reply;
} tr__waiter;

int tr__calls_init(tr_runtime *rt)
{
    rt->waiter_free = NONE;
    return uv_mutex_init(&rt->wait_mu) == 0 ? 0 : TR_ESYSTEM;
}

void tr__calls_destroy(tr_runtime *rt)
{
    free(rt->waiters);
    free(rt->waiter_gen);
    uv_mutex_destroy(&rt->wait_mu);
}

void tr__calls_fail_all(tr_runtime *rt)
{
    uv_mutex_lock(&rt->wait_mu);
    rt->calls_closed = 1;
    for (uint32_t i = 0; i < rt->nwaiters; i++) {
        if (!(rt->waiter_gen[i] & 1u))
            continue; /* free slot */
        tr__waiter *w = rt->waiters[i];
        if (!w->done) {
            w->done = 1;
            w->err = TR_ESTOPPED;
            uv_cond_signal(&w->cv);
        }
    }
    uv_mutex_unlock(&rt->wait_mu);
}

/* wait_mu held. */
static int waiter_add(tr_runtime *rt, tr__waiter *w, tr_ref *ref)
{
    uint32_t idx = rt->waiter_free;
    if (idx != NONE) {
        rt->waiter_free = (uint32_t)(uintptr_t)rt->waiters[idx];
    } else {
        if (rt->nwaiters == rt->cap_waiters) {
            uint32_t cap = rt->cap_waiters ? rt->cap_waiters * 2 : 16;
            tr__waiter **ws = realloc(rt->waiters, cap * sizeof *ws);
            if (!ws)
                return TR_ENOMEM;
            rt->waiters = ws;
            uint32_t *gs = realloc(rt->waiter_gen, cap * sizeof *gs);
            if (!gs)
                return TR_ENOMEM;
            rt->waiter_gen = gs;
            rt->cap_waiters = cap;
        }
        idx = rt->nwaiters++;
        rt->waiter_gen[idx] = 0;
    }
    rt->waiter_gen[idx]++; /* odd: in use */
    rt->waiters[idx] = w;
    *ref = ((uint64_t)rt->waiter_gen[idx] << 32) | idx;
    return 0;
}

/* wait_mu held. The live waiter with `ref`, or NULL. */
static tr__waiter *waiter_find(tr_runtime *rt, tr_ref ref)
{
    uint32_t idx = (uint32_t)ref;
    if (idx >= rt->nwaiters || rt->waiter_gen[idx] != (uint32_t)(ref >> 32))
        return NULL;
    return rt->waiters[idx];
}

/* wait_mu held. A slot's generation is odd while in use, even while free;
 * free slots are chained through the pointer array. */
static void waiter_remove(tr_runtime *rt, tr_ref ref)
{
    uint32_t idx = (uint32_t)ref;
    rt->waiter_gen[idx]++; /* even: free */
    rt->waiters[idx] = (tr__waiter *)(uintptr_t)rt->waiter_free;
    rt->waiter_free = idx;
}

bool tr__waiter_complete(tr_runtime *rt, tr_ref ref, tr_pid from, uint32_t type,
                         const void *data, size_t len)
{
    void *copy = NULL;
    if (len) {
        copy = malloc(len);
        if (!copy)
            return false;
        memcpy(copy, data, len);
    }
    bool delivered = false;
    uv_mutex_lock(&rt->wait_mu);
    tr__waiter *w = waiter_find(rt, ref);
    if (w && !w->done) {
        w->reply = (tr_rt_reply){.from = from, .type = type, .len = (uint32_t)len,
                                 .data = copy};
        w->done = 1;
        w->err = 0;
        uv_cond_signal(&w->cv);
        delivered = true;
    }
    uv_mutex_unlock(&rt->wait_mu);
    if (!delivered)
        free(copy);
    return delivered;
}

void tr__waiter_fail(tr_runtime *rt, tr_ref ref, int err)
{
    uv_mutex_lock(&rt->wait_mu);
    tr__waiter *w = waiter_find(rt, ref);
    if (w && !w->done) {
        w->done = 1;
        w->err = err;
        uv_cond_signal(&w->cv);
    }
    uv_mutex_unlock(&rt->wait_mu);
}

/* ---- an actor's pending calls ------------------------------------------------ */

void tr__calls_table_free(tr__loop *L)
{
    free(L->calls.v);
    L->calls = (tr__calls){0};
}

/* Frees entry `idx` (owned, pending): unlinks it from its owner's list.
 * Its timer, if any, is the caller's to drop. */
static void call_free(tr__loop *L, uint32_t idx)
{
    tr__calls *cs = &L->calls;
    tr__call *c = &cs->v[idx];
    if (c->prev)
        cs->v[c->prev].next = c->next;
    else
        c->owner->calls = c->next;
    if (c->next)
        cs->v[c->next].prev = c->prev;
    c->owner = NULL; /* (its timer field is reset when it is taken again) */
    c->gen = c->gen + 1 ? c->gen + 1 : 1;
    c->next = cs->free_head;
    cs->free_head = idx;
    TR__STAT_ADD(L, timers, -1);
}

int tr__call_begin(tr__loop *L, tr_actor *self, tr_pid callee, uint64_t timeout_ms,
                   tr_ref *ref, uint64_t *deadline)
{
    tr__calls *cs = &L->calls;
    uint32_t idx = cs->free_head;
    if (idx) {
        cs->free_head = cs->v[idx].next;
    } else {
        if (cs->n == cs->cap) {
            uint32_t cap = cs->cap ? cs->cap * 2 : 64;
            tr__call *v = realloc(cs->v, (size_t)cap * sizeof *v);
            if (!v)
                return TR_ENOMEM;
            cs->v = v;
            cs->cap = cap;
            if (cs->n == 0)
                cs->n = 1; /* entry 0 stands for "none" */
        }
        idx = cs->n++;
        cs->v[idx].gen = 1;
    }
    tr__call *c = &cs->v[idx];
    c->owner = self;
    c->timer = NULL;
    c->prev = 0;
    c->next = self->calls;
    if (self->calls)
        cs->v[self->calls].prev = idx;
    self->calls = idx;
    TR__STAT_ADD(L, timers, 1);
    *ref = ((uint64_t)c->gen << 32) | idx;
    *deadline = tr__deadline_after(L->rt, timeout_ms);
    if (*deadline == UINT64_MAX)
        return 0; /* no limit: no timer */
    uint64_t id;
    tr__timer *t = tr__timer_new(&L->timers, &L->pool, 0, &id);
    if (!t) {
        call_free(L, idx);
        return TR_ENOMEM;
    }
    t->kind = TR__TIMER_CALL;
    t->to = callee;
    t->call = *ref;
    tr__actor_remember_timer(self, t);
    tr__timer_arm(&L->timers, t, *deadline);
    tr__loop_timers_changed(L);
    c->timer = t;
    return 0;
}

bool tr__call_end(tr__loop *L, tr_actor *a, tr_ref ref)
{
    tr__calls *cs = &L->calls;
    uint32_t idx = (uint32_t)ref;
    if (idx == 0 || idx >= cs->n)
        return false;
    tr__call *c = &cs->v[idx];
    if (c->owner != a || c->gen != (uint32_t)(ref >> 32))
        return false;
    tr__timer *t = c->timer;
    call_free(L, idx);
    if (t) {
        tr__actor_drop_timer(L, t);
        tr__loop_timers_changed(L);
    }
    return true;
}

void tr__call_timed_out(tr__loop *L, tr__timer *t)
{
    /* The entry is there: it goes only with its timer. */
    call_free(L, (uint32_t)t->call);
    tr__actor_drop_timer(L, t);
}

void tr__calls_drop(tr__loop *L, tr_actor *a)
{
    while (a->calls)
        call_free(L, a->calls);
}

int tr_call(tr_actor *self, tr_pid to, uint32_t type, const void *data, size_t len,
            uint64_t timeout_ms, tr_ref *ref_out)
{
    if (!tr__msgtype_user_call(type))
        return TR_EINVAL; /* a reserved type users may not call (msgtypes.h) */
    return tr__call_raw(self, to, type, data, len, timeout_ms, ref_out);
}

int tr__call_raw(tr_actor *self, tr_pid to, uint32_t type, const void *data, size_t len,
                 uint64_t timeout_ms, tr_ref *ref_out)
{
    if (!ref_out)
        return TR_EINVAL;
    tr__loop *L;
    int rc = tr__self_payload(self, data, len, &L);
    if (rc != 0)
        return rc;
    tr_actor *a = tr__lookup(L->rt, to);
    if (!a)
        return TR_ENOACTOR;
    tr__callhdr h;
    rc = tr__call_begin(L, self, to, timeout_ms, &h.ref, &h.deadline);
    if (rc != 0)
        return rc;
    /* The arguments passed tr__send's checks above (tr__self_payload). */
    rc = tr__send_to(L, a, tr__actor_pid(self), to, type, TR__MF_REQUEST, &h, data, len,
                     NULL, NULL);
    if (rc != 0) {
        tr__call_end(L, self, h.ref);
        return rc;
    }
    *ref_out = h.ref;
    return 0;
}

int tr_reply(tr_actor *self, const tr_msg *request, uint32_t type, const void *data,
             size_t len)
{
    /* A reserved type only as the answer to a request of that type (a
     * supervisor request users may call: msgtypes.h). */
    if (!tr__msgtype_user_send(type) &&
        (!request || type != request->type || !tr__msgtype_user_call(type)))
        return TR_EINVAL;
    return tr__reply_raw(self, request, type, data, len);
}

int tr__reply_raw(tr_actor *self, const tr_msg *request, uint32_t type, const void *data,
                  size_t len)
{
    if (!self || !request)
        return TR_EINVAL;
    tr__loop *L = tr__running_loop(self);
    if (!L)
        return TR_EWRONGTHREAD;
    if (!(request->flags & TR_MSG_REQUEST) || (!data && len))
        return TR_EINVAL;
    if (len > L->rt->opts.max_payload)
        return TR_EMSGSIZE;
    if (request->from == TR_PID_NONE) {
        /* A plain thread blocked in tr_rt_call. */
        if (!tr__waiter_complete(L->rt, request->ref, tr__actor_pid(self), type,
                                 data, len))
            TR__STAT_ADD(L, late_replies, 1);
        return 0;
    }
    tr__callhdr h = {.ref = request->ref, .deadline = 0};
    return tr__send(L->rt, L, tr__actor_pid(self), request->from, type,
                    TR__MF_REPLY, &h, data, len, NULL, NULL);
}

int tr_rt_call(tr_runtime *rt, tr_pid to, uint32_t type, const void *data,
               size_t len, uint64_t timeout_ms, tr_rt_reply *reply)
{
    if (!tr__msgtype_user_call(type))
        return TR_EINVAL; /* a reserved type users may not call (msgtypes.h) */
    return tr__rt_call_raw(rt, to, type, data, len, timeout_ms, reply);
}

int tr__rt_call_raw(tr_runtime *rt, tr_pid to, uint32_t type, const void *data, size_t len,
                    uint64_t timeout_ms, tr_rt_reply *reply)
{
    if (!rt || !reply)
        return TR_EINVAL;
    if (tr__thread_loop(rt))
        return TR_EWRONGTHREAD;
    if (ck_pr_load_int(&rt->state) >= TR__RT_STOPPING)
        return TR_ESTOPPED;
    tr__waiter w;
    memset(&w, 0, sizeof w);
    if (uv_cond_init(&w.cv) != 0)
        return TR_ESYSTEM;
    tr__callhdr h;
    uv_mutex_lock(&rt->wait_mu);
    int rc = rt->calls_closed ? TR_ESTOPPED : waiter_add(rt, &w, &h.ref);
    uv_mutex_unlock(&rt->wait_mu);
    if (rc != 0) {
        uv_cond_destroy(&w.cv);
        return rc;
    }
    h.deadline = tr__deadline_after(rt, timeout_ms);
    rc = tr__send(rt, NULL, TR_PID_NONE, to, type, TR__MF_REQUEST, &h, data, len,
                  NULL, NULL);
    uv_mutex_lock(&rt->wait_mu);
    if (rc == 0) {
        uint64_t end = timeout_ms == TR_FOREVER ? UINT64_MAX
                                                : uv_hrtime() + timeout_ms * 1000000u;
        while (!w.done) {
            if (end == UINT64_MAX) {
                uv_cond_wait(&w.cv, &rt->wait_mu);
                continue;
            }
            uint64_t now = uv_hrtime();
            if (now >= end)
                break;
            uv_cond_timedwait(&w.cv, &rt->wait_mu, end - now);
        }
        rc = !w.done ? TR_ETIMEDOUT : w.err;
    }
    waiter_remove(rt, h.ref);
    uv_mutex_unlock(&rt->wait_mu);
    uv_cond_destroy(&w.cv);
    if (rc == 0)
        *reply = w.reply;
    return rc;
}

void tr_rt_reply_free(tr_rt_reply *reply)
{
    if (!reply)
        return;
    free(reply->data);
    reply->data = NULL;
    reply->len = 0;
}
