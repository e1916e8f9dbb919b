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
 * The entry is not a timer: a call without a limit costs a few stores, and
 * only a call with one also takes a timer (docs/performance.md has the
 * measurements behind this).
 *
 * A plain thread's call (tr_rt_call) blocks on a condition variable. Its
 * waiter is registered in a table under a mutex with a generation-checked
 * id; the callee's tr_reply copies the answer into the waiter under that
 * mutex only if the waiter is still registered, so a late reply can never
 * touch a caller that has given up.
 *
 * Calls fail when their callee dies. Erlang's gen_server:call monitors the
 * callee for every call; here the callee's side answers for it, which
 * costs the call path nothing: every request is either handled or dropped
 * by its callee's loop, and both places know. A dropped request (queued
 * when its callee ended, or sent to an ended incarnation) is turned into a
 * TR_MSG_CALL_FAILED in place — the block is big enough by construction
 * (tr__send_to) — and posted to its caller; a plain thread's wait ends. A
 * request whose handler returned without answering is kept, shrunk to its
 * header, on the callee's `owed` list until tr_reply takes it off or the
 * callee ends and fails it the same way. The caller's call table decides
 * which of reply, timeout and failure is first; the others are dropped, so
 * each call ends exactly once. No answer needs an allocation that could
 * fail: the notices reuse the requests' blocks, a timeout that cannot be
 * allocated is tried again a millisecond later, and a reply that cannot be
 * made fails the call from the request's block.
 */
#include <stdlib.h>
#include <string.h>

#include "subsys.h"


typedef struct tr__waiter {
    uv_cond_t cv;
    int done;
    int err;
    tr_rt_reply reply;
} tr__waiter;

int tr__calls_init(tr_runtime *rt)
{
    tr__idtab_init(&rt->waiters);
    return uv_mutex_init(&rt->wait_mu) == 0 ? 0 : TR_ESYSTEM;
}

void tr__calls_destroy(tr_runtime *rt)
{
    tr__idtab_destroy(&rt->waiters);
    uv_mutex_destroy(&rt->wait_mu);
}

/* wait_mu held: the runtime has stopped, every wait ends. */
static void stop_waiter(void *p, void *ud)
{
    (void)ud;
    tr__waiter *w = p;
    if (!w->done) {
        w->done = 1;
        w->err = TR_ESTOPPED;
        uv_cond_signal(&w->cv);
    }
}

/* wait_mu held: the runtime clock moved; every waiter looks at its
 * deadline again. */
static void nudge_waiter(void *p, void *ud)
{
    (void)ud;
    tr__waiter *w = p;
    uv_cond_signal(&w->cv);
}

void tr__waiters_clock_moved(tr_runtime *rt)
{
    if (!rt->calls_ready)
        return;
    uv_mutex_lock(&rt->wait_mu);
    tr__idtab_each(&rt->waiters, nudge_waiter, NULL);
    uv_mutex_unlock(&rt->wait_mu);
}

void tr__calls_fail_all(tr_runtime *rt)
{
    uv_mutex_lock(&rt->wait_mu);
    rt->calls_closed = 1;
    tr__idtab_each(&rt->waiters, stop_waiter, NULL);
    uv_mutex_unlock(&rt->wait_mu);
}

/* wait_mu held. The waiter's ref is its id in the runtime's table: a ref
 * kept after its wait ended finds nothing (idtab.h). */
static int waiter_add(tr_runtime *rt, tr__waiter *w, tr_ref *ref)
{
    if (!tr__idtab_reserve(&rt->waiters))
        return TR_ENOMEM;
    *ref = tr__idtab_add(&rt->waiters, w);
    return 0;
}

/* wait_mu held. The live waiter with `ref`, or NULL. */
static tr__waiter *waiter_find(tr_runtime *rt, tr_ref ref)
{
    return tr__idtab_find(&rt->waiters, ref);
}

/* wait_mu held. */
static void waiter_remove(tr_runtime *rt, tr_ref ref)
{
    tr__idtab_remove(&rt->waiters, ref);
}

bool tr__waiter_complete(tr_runtime *rt, tr_ref ref, tr_pid from, uint32_t type,
                         const void *data, size_t len)
{
    void *copy = NULL;
    if (len) {
        copy = tr__malloc(len);
        if (!copy) { /* the answer is lost: the wait must not be */
            tr__waiter_fail(rt, ref, TR_ENOMEM);
            return true;
        }
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
    TR__M_ADD(L, calls, -1);
}

/* An actor's pending calls are a resource it owns (subsys.h): they end
 * when its exit begins (and those made in terminate when it has ended). */
static void calls_drop(tr__loop *L, tr_actor *a, void **data)
{
    (void)data;
    while (a->calls)
        call_free(L, a->calls);
}

static tr__owned_kind calls_kind = {.name = "calls", .stop = calls_drop, .release = calls_drop};

int tr__call_begin(tr__loop *L, tr_actor *self, tr_pid callee, tr_duration timeout_ms,
                   tr_ref *ref, uint64_t *deadline)
{
    int rc = tr__own_kind(L, self, &calls_kind);
    if (rc != 0)
        return rc;
    tr__calls *cs = &L->calls;
    uint32_t idx = cs->free_head;
    if (idx) {
        cs->free_head = cs->v[idx].next;
    } else {
        if (cs->n == cs->cap) {
            if (!tr__grow(&cs->v, &cs->cap, sizeof *cs->v, 64))
                return TR_ENOMEM;
            if (cs->n == 0)
                cs->n = 1; /* entry 0 stands for "none" */
        }
        idx = cs->n++;
        cs->v[idx].gen = 1;
    }
    tr__call *c = &cs->v[idx];
    c->owner = self;
    c->timer = NULL;
    c->tag = 0;
    c->callee = callee;
    c->reported = 0;
    c->prev = 0;
    c->next = self->calls;
    if (self->calls)
        cs->v[self->calls].prev = idx;
    self->calls = idx;
    TR__STAT_ADD(L, timers, 1);
    TR__M_ADD(L, calls, 1);
    *ref = ((uint64_t)c->gen << 32) | idx;
    c->since = tr__now(L->rt);
    *deadline = timeout_ms < 0 ? UINT64_MAX : tr__deadline_from(c->since, timeout_ms);
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
    if (tr__actor_remember_timer(L, self, t) != 0) {
        tr__timer_free(&L->timers, &L->pool, t);
        call_free(L, idx);
        return TR_ENOMEM;
    }
    tr__timer_arm(&L->timers, t, *deadline);
    tr__loop_timers_changed(L);
    c->timer = t;
    return 0;
}

/* `a`'s pending call `ref`, or NULL. */
static tr__call *call_find(tr__loop *L, tr_actor *a, tr_ref ref)
{
    tr__calls *cs = &L->calls;
    uint32_t idx = (uint32_t)ref;
    if (idx == 0 || idx >= cs->n)
        return NULL;
    tr__call *c = &cs->v[idx];
    return (c->owner == a && c->gen == (uint32_t)(ref >> 32)) ? c : NULL;
}

uint64_t tr__call_tag_of(tr__loop *L, tr_ref ref)
{
    uint32_t idx = (uint32_t)ref;
    return (idx && idx < L->calls.n) ? L->calls.v[idx].tag : 0;
}

bool tr__call_end(tr__loop *L, tr_actor *a, tr_ref ref, uint64_t *tag)
{
    tr__call *c = call_find(L, a, ref);
    if (!c)
        return false;
    uint32_t idx = (uint32_t)ref;
    if (tag)
        *tag = c->tag;
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
    TR__M_ADD(L, call_timeouts, 1);
    /* The entry is there: it goes only with its timer. */
    call_free(L, (uint32_t)t->call);
    tr__actor_drop_timer(L, t);
}


/* A call's timeout without one: OTP's gen_server:call default. */
#define CALL_DEFAULT_MS 5000

int tr_call(tr_actor *self, tr_pid to, uint32_t type, const void *data, size_t len,
            tr_duration timeout_ms, tr_ref *ref_out)
{
    if (!tr__msgtype_user_call(type))
        return TR_EINVAL; /* a reserved type users may not call (msgtypes.h) */
    return tr__call_raw(self, to, type, data, len, timeout_ms, ref_out);
}

int tr__call_raw(tr_actor *self, tr_pid to, uint32_t type, const void *data, size_t len,
                 tr_duration timeout_ms, tr_ref *ref_out)
{
    if (!ref_out || tr__duration_arg(timeout_ms, CALL_DEFAULT_MS, &timeout_ms) != 0)
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
        tr__call_end(L, self, h.ref, NULL);
        return rc;
    }
    *ref_out = h.ref;
    return 0;
}

int tr_call_tag(tr_actor *self, tr_ref ref, uint64_t tag)
{
    tr__loop *L;
    int self_rc = tr__self_loop(self, &L);
    if (self_rc != 0)
        return self_rc;
    tr__call *c = call_find(L, self, ref);
    if (!c)
        return TR_ENOTFOUND;
    c->tag = tag;
    return 0;
}

int tr_call_cancel(tr_actor *self, tr_ref ref)
{
    tr__loop *L;
    int self_rc = tr__self_loop(self, &L);
    if (self_rc != 0)
        return self_rc;
    return tr__call_end(L, self, ref, NULL) ? 0 : TR_ENOTFOUND;
}

tr_duration tr_msg_remaining(tr_actor *self, const tr_msg *request)
{
    tr__loop *L = tr__running_loop(self);
    if (!L || !request || !(request->flags & TR_MSG_REQUEST) ||
        request->deadline == UINT64_MAX)
        return TR_INFINITE;
    uint64_t now = tr__now(L->rt);
    if (now >= request->deadline)
        return 0;
    uint64_t ms = (request->deadline - now + 999999u) / 1000000u;
    return ms > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)ms;
}

/* ---- requests a callee owes an answer ------------------------------------------ */

void tr__request_fail(tr__loop *L, tr_pid callee, tr__msg *m, int32_t kind, int32_t code)
{
    tr__callhdr h;
    memcpy(&h, m->data, sizeof h);
    tr_pid caller = m->from;
    tr__msg_release_contents(m); /* an owned buffer goes back now */
    if (caller == TR_PID_NONE) {
        /* A plain thread learns why through the code tr_rt_call returns. */
        int err = (kind == TR_EXIT_ERROR && (code == TR_ENOACTOR || code == TR_ENOMEM))
                      ? code
                      : TR_EEXITED;
        tr__waiter_fail(L->rt, h.ref, err);
        tr__pool_free(&L->pool, m);
        return;
    }
    tr_actor *c = tr__lookup(L->rt, caller);
    if (!c) {
        tr__pool_free(&L->pool, m); /* the caller has ended: its call with it */
        return;
    }
    /* In place: every request's block has room for this (tr__send_to). */
    tr_call_failed f = {.kind = kind, .code = code};
    h.deadline = 0; /* a reply's header carries the tag; the caller has it */
    m->from = callee;
    m->type = TR_MSG_CALL_FAILED;
    m->len = sizeof f;
    m->flags = TR__MF_REPLY;
    memcpy(m->data, &h, sizeof h);
    memcpy(m->data + sizeof h, &f, sizeof f);
    m->to_gen = TR_PID_GEN(caller);
    tr__msg_post(L, c, m);
}

/* The requests an actor owes an answer are a resource it owns: when it
 * has ended (terminate could still answer them), each fails with its exit
 * reason. Data: the first owed request (linked through node.next). */
static void owed_release(tr__loop *L, tr_actor *a, void **data)
{
    tr_pid self = tr__actor_pid(a);
    while (*data) {
        tr__msg *m = *data;
        *data = m->node.next;
        tr__request_fail(L, self, m, a->exit_kind, a->exit_code);
    }
}

static void owed_teardown(tr_actor *a, void **data)
{
    (void)a;
    while (*data) {
        tr__msg *m = *data;
        *data = m->node.next;
        tr__pool_free_now(m);
    }
}

static tr__owned_kind owed_kind = {.name = "owed answers", .release = owed_release,
                                   .teardown = owed_teardown};

void tr__request_owe(tr__loop *L, tr_actor *a, tr__msg *m)
{
    /* Only the header is needed from here on: an owned buffer the handler
     * did not keep goes back now, and a large block is traded for a small
     * one when one can be had (else it is kept as it is). */
    tr__msg_release_contents(m);
    bool big = !(m->flags & TR__MF_OWNED) && m->len > 64;
    m->flags &= (uint8_t)~(TR__MF_OWNED | TR__MF_KEPT);
    m->len = 0;
    if (big) {
        tr__msg *s = tr__msg_new(&L->pool, TR__MSG_USER, m->from, m->type,
                                 sizeof(tr__callhdr) + sizeof(tr_call_failed));
        if (s) {
            s->flags = m->flags;
            s->to_gen = m->to_gen;
            s->len = 0;
            memcpy(s->data, m->data, sizeof(tr__callhdr));
            tr__pool_free(&L->pool, m);
            m = s;
        }
    }
    int err = 0;
    void **owed = tr__own(L, a, &owed_kind, &err);
    if (!owed) { /* nowhere to remember it: answer now rather than never */
        tr__request_fail(L, tr__actor_pid(a), m, TR_EXIT_ERROR, TR_ENOMEM);
        return;
    }
    m->node.next = *owed;
    *owed = m;
}

/* Takes the request (ref, from) off `a`'s owed list; NULL if it is not there. */
static tr__msg *request_settle(tr_actor *a, tr_ref ref, tr_pid from)
{
    tr__msg **p = (tr__msg **)tr__owned(a, &owed_kind);
    if (!p)
        return NULL;
    for (; *p; p = (tr__msg **)&(*p)->node.next) {
        tr__msg *m = *p;
        tr__callhdr h;
        memcpy(&h, m->data, sizeof h);
        if (h.ref == ref && m->from == from) {
            *p = (tr__msg *)m->node.next;
            return m;
        }
    }
    return NULL;
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
    /* The request being handled, or one self owes from earlier. */
    const tr_msg *cur = L->cur_pub;
    bool current = cur && (cur->flags & TR_MSG_REQUEST) && cur->ref == request->ref &&
                   cur->from == request->from;
    tr__msg *owed = current ? NULL : request_settle(self, request->ref, request->from);
    if (current && L->cur_msg) { /* answered: not owed (deliver) */
        L->cur_msg->flags &= (uint8_t)~TR__MF_REQUEST;
        L->cur_reply_nomem = false; /* a retry that worked supersedes a failure */
    }
    tr_pid me = tr__actor_pid(self);
    int rc = 0;
    if (request->from == TR_PID_NONE) {
        /* A plain thread blocked in tr_rt_call. */
        if (!tr__waiter_complete(L->rt, request->ref, me, type, data, len))
            TR__STAT_ADD(L, late_replies, 1);
    } else {
        tr__callhdr h = {.ref = request->ref, .deadline = 0};
        rc = tr__send(L->rt, L, me, request->from, type, TR__MF_REPLY, &h, data, len,
                      NULL, NULL);
    }
    if (rc == TR_ENOMEM) {
        /* The answer could not be made: the caller must not wait for it.
         * Its failure is made from the request's own block. */
        if (current && L->cur_msg) {
            L->cur_msg->flags |= TR__MF_REQUEST; /* still unanswered: */
            L->cur_reply_nomem = true;          /* deliver fails it */
        } else if (owed) {
            tr__request_fail(L, me, owed, TR_EXIT_ERROR, TR_ENOMEM);
            owed = NULL;
        }
    }
    if (owed)
        tr__pool_free(&L->pool, owed);
    return rc;
}

/* The longest sleep of a plain thread waiting on a custom clock between
 * two looks at it: tr_runtime_clock_advanced wakes it sooner. */
#define VCLOCK_SLICE_NS 10000000u

/*
 * wait_mu held: waits for `w` under a custom clock, until its deadline on
 * that clock (`end`). The virtual-time hooks, if any, run meanwhile (they
 * may move the clock, or give up: subsys.h). Returns the wait's outcome.
 */
typedef struct waiter_ref {
    tr_runtime *rt;
    tr__waiter *w;
} waiter_ref;

static bool waiter_done(void *ud)
{
    waiter_ref *r = ud;
    uv_mutex_lock(&r->rt->wait_mu);
    bool done = r->w->done;
    uv_mutex_unlock(&r->rt->wait_mu);
    return done;
}

static int wait_virtual(tr_runtime *rt, tr__waiter *w, uint64_t end)
{
    uint64_t since = uv_hrtime();
    waiter_ref ref = {rt, w};
    while (!w->done) {
        if (tr__now(rt) >= end)
            return TR_ETIMEDOUT;
        if (rt->vtime) {
            /* Unlocked: the hooks may run steps that answer us, or move
             * the clock, which wakes waiters. */
            uv_mutex_unlock(&rt->wait_mu);
            int look = tr__vtime_look(rt, end, since, waiter_done, &ref);
            uv_mutex_lock(&rt->wait_mu);
            if (w->done)
                break;
            if (look < 0)
                return TR_ETIMEDOUT;
            if (look > 0)
                continue;
        }
        uv_cond_timedwait(&w->cv, &rt->wait_mu, rt->vtime ? TR__VT_POLL_NS : VCLOCK_SLICE_NS);
    }
    return w->err;
}

int tr__waiter_run(tr_runtime *rt, tr_duration timeout_ms, tr__waiter_send_fn send, void *ctx,
                   tr_rt_reply *reply)
{
    if (tr__on_loop_thread())
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
    rc = send(rt, h.ref, ctx);
    uv_mutex_lock(&rt->wait_mu);
    if (rc == 0 && rt->opts.clock) {
        /* A test clock: the deadline is on it, whatever real time passes. */
        rc = wait_virtual(rt, &w, tr__deadline_after(rt, timeout_ms));
    } else if (rc == 0) {
        /* Saturating, so a huge timeout cannot wrap. */
        uint64_t end = tr__deadline_from(uv_hrtime(), timeout_ms);
        while (!w.done && tr__cond_wait_until(&w.cv, &rt->wait_mu, end))
            ;
        rc = !w.done ? TR_ETIMEDOUT : w.err;
    }
    waiter_remove(rt, h.ref);
    uv_mutex_unlock(&rt->wait_mu);
    uv_cond_destroy(&w.cv);
    if (rc == 0)
        *reply = w.reply;
    return rc;
}

typedef struct rt_call_ctx {
    tr_pid to;
    uint32_t type;
    const void *data;
    size_t len;
    tr_duration timeout_ms;
} rt_call_ctx;

static int rt_call_send(tr_runtime *rt, tr_ref ref, void *ctx)
{
    rt_call_ctx *c = ctx;
    tr__callhdr h = {.ref = ref, .deadline = tr__deadline_after(rt, c->timeout_ms)};
    return tr__send(rt, NULL, TR_PID_NONE, c->to, c->type, TR__MF_REQUEST, &h, c->data,
                    c->len, NULL, NULL);
}

int tr_rt_call(tr_runtime *rt, tr_pid to, uint32_t type, const void *data,
               size_t len, tr_duration timeout_ms, tr_rt_reply *reply)
{
    if (!tr__msgtype_user_call(type))
        return TR_EINVAL; /* a reserved type users may not call (msgtypes.h) */
    return tr__rt_call_raw(rt, to, type, data, len, timeout_ms, reply);
}

int tr__rt_call_raw(tr_runtime *rt, tr_pid to, uint32_t type, const void *data, size_t len,
                    tr_duration timeout_ms, tr_rt_reply *reply)
{
    if (!rt || !reply || tr__duration_arg(timeout_ms, CALL_DEFAULT_MS, &timeout_ms) != 0)
        return TR_EINVAL;
    rt_call_ctx c = {.to = to, .type = type, .data = data, .len = len,
                     .timeout_ms = timeout_ms};
    return tr__waiter_run(rt, timeout_ms, rt_call_send, &c, reply);
}

void tr_rt_reply_free(tr_rt_reply *reply)
{
    if (!reply)
        return;
    free(reply->data);
    reply->data = NULL;
    reply->len = 0;
}
