/*
 * send.c — messages and the send path: message memory, posting into a
 * mailbox, dropping what a receiver will not handle, every send function
 * (actor, plain thread, zero-copy), and exit signals.
 *
 * Design notes
 * ------------
 * Sending looks the pid up (the slot's whole live pid: node, generation and
 * index in one compare), copies the payload into a pooled message, and
 * pushes it on the mailbox with one atomic exchange. The push that finds
 * the mailbox marked empty schedules the actor: on the local run queue when
 * the sender is on the same loop (no further atomic), else on the home
 * loop's inject queue.
 *
 * A message carries the generation it was sent to. If the actor exits
 * between the sender's lookup and the push, the message lands in a dead
 * (or reused) slot's mailbox; the home loop drops it there and counts it —
 * and answers a request's caller for the dead (tr__request_fail).
 *
 * Exit signals are not queued behind mail: each actor has a second MPSC
 * queue for them, and a WAKE message makes sure the actor runs. The home
 * loop looks at that queue before every message (exit.c), so a signal acts
 * at the next message boundary.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actor.h"
#include "subsys.h"

/* ---- messages ------------------------------------------------------------ */

/* Releases what a message owns besides its own block. Any thread. */
void tr__msg_release_contents(tr__msg *m)
{
    if (m->kind == TR__MSG_INIT) {
        /* An INIT that never ran still owns the parent's record of the
         * child only when the parent is the root and has not adopted it. */
        tr__init *in = (tr__init *)m->data;
        if ((m->type & TR__INIT_ADOPT) && in->node)
            free(in->node);
        tr__init_extras x; /* and the notices made for it (notice.c) */
        tr__init_parse(m, &x);
        tr__init_extras_free(&x);
    } else if ((m->flags & (TR__MF_OWNED | TR__MF_KEPT)) == TR__MF_OWNED) {
        tr__ownhdr o;
        memcpy(&o, m->data + tr__msg_prefix(m->flags) - sizeof o, sizeof o);
        o.free_fn(o.buf);
    }
}

void tr__msg_post(tr__loop *cur, tr_actor *a, tr__msg *m)
{
    /* The running actor's own mail to other loops waits in the outbox (per
     * pair order is all it owes). Notices sent on someone else's behalf
     * (a channel's PULL or ROOM, from TR_PID_NONE) go at once: held until
     * a producer's run ended, PULLs let the bounded pipeline's peak RSS
     * grow with its length (examples/pipeline: 39 MB at 10^8 items). */
    if (tr__loop_holds(cur, a, m->from)) {
        if (cur->nout || cur->run_posted) {
            tr__loop_outbox_add(cur, a, &m->node); /* posted when the run ends */
            return;
        }
        cur->run_posted = true; /* the run's first goes at once: see loop.h */
    }
    if (tr__mpsc_push(&a->mb, &m->node))
        tr__loop_schedule(cur, a);
}

/*
 * Why a request to incarnation `to_gen` of slot `a` will not be answered:
 * the incarnation's exit reason while the slot still knows it (it is
 * exiting, or it has ended and the slot is not taken again), else "no such
 * actor". Home loop.
 */
static void request_reason(const tr_actor *a, uint32_t to_gen, int32_t *kind, int32_t *code)
{
    uint32_t gen = ck_pr_load_32(&a->gen);
    if ((to_gen == gen && a->status == TR__EXITING) ||
        (to_gen + 1 == gen && a->status == TR__FREE)) {
        *kind = a->exit_kind;
        *code = a->exit_code;
    } else {
        *kind = TR_EXIT_ERROR;
        *code = TR_ENOACTOR;
    }
}

/* Drops a message the receiver will not handle; counts user mail. A
 * request's caller is answered for the dead: its call fails at once. */
void tr__msg_drop(tr__loop *L, tr_actor *a, tr__msg *m)
{
    if (m->flags & TR__MF_COUNTED) {
        tr__msg_uncount(a);
        m->flags &= (uint8_t)~TR__MF_COUNTED;
    }
    if (m->kind == TR__MSG_USER) {
        TR__STAT_ADD(L, dropped, 1);
        if (m->flags & TR__MF_REQUEST) {
            int32_t kind, code;
            request_reason(a, m->to_gen, &kind, &code);
            tr__request_fail(L, tr__pid_make(L->rt->node, m->to_gen, a->index), m, kind,
                             code);
            return;
        }
    }
    tr__msg_free(&L->pool, m);
}

/* A system message of `kind` from `from` for the live actor `to` (found:
 * *a), with a copy of the payload; NULL with *err when `to` is gone or
 * memory is out. */
static tr__msg *system_msg(tr_runtime *rt, tr__loop *cur, tr_pid from, tr_pid to,
                           uint8_t kind, const void *data, size_t len, tr_actor **a, int *err)
{
    *a = tr__lookup(rt, to);
    if (!*a) {
        *err = TR_ENOACTOR;
        return NULL;
    }
    tr__msg *m = tr__msg_new(cur ? &cur->pool : NULL, kind, from, 0, len);
    if (!m) {
        *err = TR_ENOMEM;
        return NULL;
    }
    if (len)
        memcpy(m->data, data, len);
    m->to_gen = TR_PID_GEN(to);
    return m;
}

/* Sends a system message from `from` to the live actor `to`. */
int tr__post_system(tr_runtime *rt, tr__loop *cur, tr_pid from, tr_pid to,
                       uint8_t kind, const void *data, size_t len)
{
    tr_actor *a;
    int err = 0;
    tr__msg *m = system_msg(rt, cur, from, to, kind, data, len, &a, &err);
    if (!m)
        return err;
    tr__msg_post(cur, a, m);
    return 0;
}

/* ---- sending ------------------------------------------------------------- */

int tr__send_to(tr__loop *cur, tr_actor *a, tr_pid from, tr_pid to,
                uint32_t type, uint8_t flags, const tr__callhdr *call,
                const void *data, size_t len, void *buf, tr_free_fn free_fn)
{
    /* A bounded mailbox counts plain sends and requests, not notices. */
    tr__bound *b = ck_pr_load_ptr(&a->bound);
    uint32_t cap = b ? ck_pr_load_32(&b->cap) : 0;
    if (cap && !(flags & (TR__MF_REPLY | TR__MF_JOB | TR__MF_REF))) {
        if ((uint32_t)ck_pr_faa_int(&b->count, 1) >= cap) {
            ck_pr_dec_int(&b->count);
            /* A request is refused, never dropped: its call fails now. */
            if (ck_pr_load_32(&b->drop) && !(flags & TR__MF_REQUEST)) {
                ck_pr_inc_64(&b->dropped);
                if (flags & TR__MF_OWNED)
                    free_fn(buf); /* accepted, so ours to free */
                return 0;         /* accepted, dropped, counted */
            }
            ck_pr_inc_64(&b->refused);
            return TR_EFULL;
        }
        flags |= TR__MF_COUNTED;
    }
    size_t prefix = tr__msg_prefix(flags);
    size_t copied = (flags & TR__MF_OWNED) ? 0 : len;
    size_t room = prefix + copied;
    /* A request's block can always become its failure notice. */
    if ((flags & TR__MF_REQUEST) && room < sizeof(tr__callhdr) + sizeof(tr_call_failed))
        room = sizeof(tr__callhdr) + sizeof(tr_call_failed);
    /* A plain thread leases a pool for the allocation (runtime.c). */
    tr__pool *pool = cur ? &cur->pool : tr__plain_lease(a->loop->rt);
    tr__msg *m = tr__msg_new(pool, TR__MSG_USER, from, type, room);
    if (!cur && pool)
        tr__pool_unlease(pool);
    if (!m) {
        if (flags & TR__MF_COUNTED)
            ck_pr_dec_int(&b->count);
        return TR_ENOMEM;
    }
    m->len = (uint32_t)len;
    m->flags = flags;
    unsigned char *p = m->data;
    if (flags & TR__MF_CALLHDR) {
        memcpy(p, call, sizeof *call);
        p += sizeof *call;
    }
    if (flags & TR__MF_OWNED) {
        tr__ownhdr o = {.buf = buf, .free_fn = free_fn};
        memcpy(p, &o, sizeof o);
    } else {
        tr__copy_payload(p, data, len);
    }
    m->to_gen = TR_PID_GEN(to);
    tr__msg_post(cur, a, m);
    if (cur) {
        TR__M_ADD(cur, sent, 1);
        if (a->loop != cur)
            TR__M_ADD(cur, cross, 1);
    } else {
        tr__metrics_plain_sent(a->loop->rt);
    }
    const tr__observer *obs = cur ? cur->obs : ck_pr_load_ptr(&a->loop->rt->obs);
    if (__builtin_expect(obs != NULL, 0) && obs->send)
        obs->send(obs->ud, from, to, type, len);
    return 0;
}

int tr__send(tr_runtime *rt, tr__loop *cur, tr_pid from, tr_pid to,
             uint32_t type, uint8_t flags, const tr__callhdr *call,
             const void *data, size_t len, void *buf, tr_free_fn free_fn)
{
    if (!data && len)
        return TR_EINVAL;
    if ((flags & TR__MF_OWNED) ? len > UINT32_MAX : len > rt->opts.max_payload)
        return TR_EMSGSIZE;
    tr_actor *a = tr__lookup(rt, to);
    if (!a)
        return TR_ENOACTOR;
    return tr__send_to(cur, a, from, to, type, flags, call, data, len, buf, free_fn);
}

/* The checks of every call by which `self` hands over a payload to be sent
 * later (timers, calls), but for the type (each caller checks it: users
 * may call some reserved types, time nothing but user types): sets *out
 * to self's loop. */
int tr__self_payload(tr_actor *self, const void *data, size_t len, tr__loop **out)
{
    tr__loop *L;
    int self_rc = tr__self_loop(self, &L);
    if (self_rc != 0)
        return self_rc;
    if (!data && len)
        return TR_EINVAL;
    if (len > L->rt->opts.max_payload)
        return TR_EMSGSIZE;
    if (self->status != TR__RUNNING)
        return TR_ESTOPPED;
    *out = L;
    return 0;
}

/* The loop of the calling thread if `self` is the actor running on it. */
tr__loop *tr__running_loop(const tr_actor *self)
{
    tr__loop *L = tr__tls_loop;
    return (L && self && L->current == self) ? L : NULL;
}

/* Payloads the same-loop fast path of tr_send copies. */
#define TR__SEND_FAST_MAX 64

/* tr_send's general path: every check, every kind of receiver. */
static __attribute__((noinline)) int send_general(tr_actor *self, tr_pid to, uint32_t type,
                                                  const void *data, size_t len)
{
    tr__loop *L;
    int self_rc = tr__self_loop(self, &L);
    if (self_rc != 0)
        return self_rc;
    if (!tr__msgtype_user_send(type))
        return TR_EINVAL; /* reserved types: only the runtime sends them */
    return tr__send(L->rt, L, tr__actor_pid(self), to, type, 0, NULL, data, len,
                    NULL, NULL);
}

int tr_send(tr_actor *self, tr_pid to, uint32_t type, const void *data, size_t len)
{
    /* The common case, to an unbounded actor of this loop, on its own: the
     * general path (tr__send) costs ~130 instructions a send, this ~50.
     * Valid arguments to any other receiver go on with the actor found
     * here; anything else — errors included — takes the general path. */
    tr__loop *L = tr__tls_loop;
    if (L && self && L->current == self && type <= TR_MSG_USER_MAX &&
        len <= TR__SEND_FAST_MAX && (data || !len) && len <= L->rt->opts.max_payload) {
        tr_actor *a = tr__lookup(L->rt, to);
        if (!a)
            return TR_ENOACTOR;
        tr_pid from = tr__actor_pid(self);
        if (ck_pr_load_ptr(&a->loop) == L && !ck_pr_load_ptr(&a->bound)) {
            tr__msg *m = tr__msg_new(&L->pool, TR__MSG_USER, from, type, len);
            if (m) {
                tr__copy_payload(m->data, data, len);
                m->to_gen = TR_PID_GEN(to);
                if (tr__mpsc_push(&a->mb, &m->node))
                    tr__loop_runq_append(L, a);
                TR__M_ADD(L, sent, 1);
                if (__builtin_expect(L->obs != NULL, 0) && L->obs->send)
                    L->obs->send(L->obs->ud, from, to, type, len);
                return 0;
            }
        }
        return tr__send_to(L, a, from, to, type, 0, NULL, data, len, NULL, NULL);
    }
    return send_general(self, to, type, data, len);
}

/* Checks shared by the tr_rt_* sends; sets *L and *from for the thread. */
static int plain_sender(tr_runtime *rt, uint32_t type, tr__loop **L, tr_pid *from)
{
    if (!rt || !tr__msgtype_user_send(type))
        return TR_EINVAL;
    if (ck_pr_load_int(&rt->state) >= TR__RT_STOPPING)
        return TR_ESTOPPED;
    *L = tr__thread_loop(rt);
    *from = (*L && (*L)->current) ? tr__actor_pid((*L)->current) : TR_PID_NONE;
    return 0;
}

int tr_rt_send(tr_runtime *rt, tr_pid to, uint32_t type, const void *data, size_t len)
{
    tr__loop *L;
    tr_pid from;
    int rc = plain_sender(rt, type, &L, &from);
    return rc ? rc : tr__send(rt, L, from, to, type, 0, NULL, data, len, NULL, NULL);
}

int tr__redeliver(tr_runtime *rt, tr_pid to, const tr_msg *m)
{
    if (!rt || !m || !tr__msgtype_user_send(m->type))
        return TR_EINVAL;
    uint8_t flags = (uint8_t)(m->flags & (TR_MSG_REQUEST | TR_MSG_REPLY));
    /* A reply's header carries the call's tag where a request's has its
     * deadline (dispatch.c). */
    tr__callhdr h = {.ref = m->ref, .deadline = (flags & TR_MSG_REPLY) ? m->tag : m->deadline};
    return tr__send(rt, tr__thread_loop(rt), m->from, to, m->type, flags, flags ? &h : NULL,
                    m->data, m->len, NULL, NULL);
}

int tr_send_owned(tr_actor *self, tr_pid to, uint32_t type, void *buf, size_t len,
                  tr_free_fn free_fn)
{
    if (!self || !buf || !free_fn || !tr__msgtype_user_send(type))
        return TR_EINVAL;
    tr__loop *L = tr__running_loop(self);
    if (!L)
        return TR_EWRONGTHREAD;
    return tr__send(L->rt, L, tr__actor_pid(self), to, type, TR__MF_OWNED, NULL,
                    buf, len, buf, free_fn);
}

int tr_rt_send_owned(tr_runtime *rt, tr_pid to, uint32_t type, void *buf,
                     size_t len, tr_free_fn free_fn)
{
    if (!buf || !free_fn)
        return TR_EINVAL;
    tr__loop *L;
    tr_pid from;
    int rc = plain_sender(rt, type, &L, &from);
    return rc ? rc : tr__send(rt, L, from, to, type, TR__MF_OWNED, NULL, buf, len,
                              buf, free_fn);
}

void *tr_msg_keep(tr_actor *self, const tr_msg *msg)
{
    tr__loop *L = tr__running_loop(self);
    if (!L || !msg || msg != L->cur_pub)
        return NULL;
    tr__msg *m = L->cur_msg;
    if (!m || (m->flags & (TR__MF_OWNED | TR__MF_KEPT)) != TR__MF_OWNED)
        return NULL;
    m->flags |= TR__MF_KEPT;
    return (void *)msg->data;
}

int tr_actor_stats_get(tr_actor *self, tr_actor_stats *out)
{
    if (!self || !out)
        return TR_EINVAL;
    if (!tr__running_loop(self))
        return TR_EWRONGTHREAD;
    out->handled = self->handled;
    out->mailbox = tr__mailbox_depth(self);
    tr__bound *b = ck_pr_load_ptr(&self->bound);
    out->dropped = b ? ck_pr_load_64(&b->dropped) : 0;
    out->refused = b ? ck_pr_load_64(&b->refused) : 0;
    return 0;
}

uint64_t tr__mailbox_depth(tr_actor *a)
{
    /* Only the consumer may walk the mailbox; it stops at a link that a
     * producer has not finished, so the count may be a little low. */
    uint64_t depth = 0;
    for (tr__mpsc_node *n = ck_pr_load_ptr(&a->mb.tail->next); n;
         n = ck_pr_load_ptr(&n->next))
        depth += n != &a->mb.stub;
    if (a->mb.tail != &a->mb.stub)
        depth++;
    return depth;
}

/* ---- exit signals -------------------------------------------------------- */

int tr__post_control(tr_runtime *rt, tr__loop *cur, tr_pid from, tr_pid to,
                     uint8_t kind, const void *data, size_t len)
{
    tr_actor *a;
    int err = 0;
    tr__msg *m = system_msg(rt, cur, from, to, kind, data, len, &a, &err);
    if (!m)
        return err;
    tr__msg *wake = tr__msg_new(cur ? &cur->pool : NULL, TR__MSG_WAKE, from, 0, 0);
    if (!wake) {
        tr__pool_free(cur ? &cur->pool : NULL, m);
        return TR_ENOMEM;
    }
    tr__control_push(cur, a, from, to, m, wake); /* makes sure the slot looks at it */
    return 0;
}

int tr__signal(tr_runtime *rt, tr__loop *cur, tr_pid from, tr_pid pid,
               tr_exit_kind kind, int code, const char *text, uint32_t flags)
{
    struct {
        tr__sighdr h;
        tr_down d;
    } rec = {.h = {.flags = flags}};
    tr__down_fill(&rec.d, from, kind, code, text);
    return tr__post_control(rt, cur, from, pid, TR__MSG_SIGNAL, &rec, sizeof rec);
}

int tr_signal_exit(tr_runtime *rt, tr_pid pid, tr_exit_kind kind)
{
    if (!rt || (kind != TR_EXIT_SHUTDOWN && kind != TR_EXIT_KILLED &&
                kind != TR_EXIT_NOCONNECTION))
        return TR_EINVAL;
    if (pid == rt->root)
        return TR_EINVAL;
    if (ck_pr_load_int(&rt->state) == TR__RT_STOPPED)
        return TR_ESTOPPED;
    tr__loop *L = tr__thread_loop(rt);
    tr_pid from = (L && L->current) ? tr__actor_pid(L->current) : TR_PID_NONE;
    return tr__signal(rt, L, from, pid, kind, 0, NULL,
                      kind == TR_EXIT_KILLED ? TR__SIG_UNTRAPPABLE : 0);
}
