/*
 * actor.c — actor lifecycle and the send path.
 *
 * Design notes
 * ------------
 * Spawning reserves a slot on the target loop (its free list, or a fresh
 * slot bound to that loop), publishes the new generation, and posts an INIT
 * message carrying the behaviour, the parent and a copy of the argument.
 * Everything else about the new actor is set up by its home loop when it
 * handles INIT, so only the home loop's thread ever writes the slot's
 * owner fields. Any message sent to the new pid is posted after INIT and so
 * handled after it.
 *
 * Sending looks the pid up (slot + generation check), copies the payload
 * into a pooled message, and pushes it on the mailbox with one atomic
 * exchange. The push that finds the mailbox marked empty schedules the
 * actor: on the local run queue when the sender is on the same loop (no
 * further atomic), else on the home loop's inject queue.
 *
 * A message carries the generation it was sent to. If the actor exits
 * between the sender's lookup and the push, the message lands in a dead
 * (or reused) slot's mailbox; the home loop drops it there and counts it.
 *
 * Exit signals are not queued behind mail: each actor has a second MPSC
 * queue for them, and a WAKE message makes sure the actor runs. The home
 * loop looks at that queue before every message, so a signal acts at the
 * next message boundary; the queued mail is then dropped. A signal carries
 * a full reason (kind, code, text); an actor that traps exits receives the
 * trappable ones as TR_MSG_EXIT messages instead.
 *
 * Exit: stop the children one at a time, newest first (a shutdown signal,
 * then wait for that child's CHILD_EXIT), run terminate, report, tell the
 * parent, retire the generation, drop queued mail, and put the slot on the
 * loop's free list.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subsys.h"
#include "workers.h"

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
    } else if ((m->flags & (TR__MF_OWNED | TR__MF_KEPT)) == TR__MF_OWNED) {
        tr__ownhdr o;
        memcpy(&o, m->data + tr__msg_prefix(m->flags) - sizeof o, sizeof o);
        o.free_fn(o.buf);
    }
}

void tr__msg_free(tr__pool *cur, tr__msg *m)
{
    tr__msg_release_contents(m);
    tr__pool_free(cur, m);
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

/* A counted message leaves the bounded mailbox. It was counted in the
 * slot's bound record, which is never unset. */
static void uncount(tr_actor *a)
{
    tr__bound *b = ck_pr_load_ptr(&a->bound);
    ck_pr_dec_int(&b->count);
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
static void drop(tr__loop *L, tr_actor *a, tr__msg *m)
{
    if (m->flags & TR__MF_COUNTED) {
        uncount(a);
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

/* Sends a system message from `from` to the live actor `to`. */
int tr__post_system(tr_runtime *rt, tr__loop *cur, tr_pid from, tr_pid to,
                       uint8_t kind, const void *data, size_t len)
{
    tr_actor *a = tr__lookup(rt, to);
    if (!a)
        return TR_ENOACTOR;
    tr__msg *m = tr__msg_new(cur ? &cur->pool : NULL, kind, from, 0, len);
    if (!m)
        return TR_ENOMEM;
    if (len)
        memcpy(m->data, data, len);
    m->to_gen = TR_PID_GEN(to);
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
    tr__msg *m = tr__msg_new(cur ? &cur->pool : NULL, TR__MSG_USER, from, type, room);
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
    if (!self)
        return TR_EINVAL;
    tr__loop *L = tr__running_loop(self);
    if (!L)
        return TR_EWRONGTHREAD;
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

static inline tr__loop *running_loop(const tr_actor *self)
{
    return tr__running_loop(self);
}

/* Payloads the same-loop fast path of tr_send copies. */
#define TR__SEND_FAST_MAX 64

/* tr_send's general path: every check, every kind of receiver. */
static __attribute__((noinline)) int send_general(tr_actor *self, tr_pid to, uint32_t type,
                                                  const void *data, size_t len)
{
    if (!self)
        return TR_EINVAL;
    tr__loop *L = running_loop(self);
    if (!L)
        return TR_EWRONGTHREAD;
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

int tr_send_owned(tr_actor *self, tr_pid to, uint32_t type, void *buf, size_t len,
                  tr_free_fn free_fn)
{
    if (!self || !buf || !free_fn || !tr__msgtype_user_send(type))
        return TR_EINVAL;
    tr__loop *L = running_loop(self);
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
    tr__loop *L = running_loop(self);
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
    if (!running_loop(self))
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
    tr_actor *a = tr__lookup(rt, to);
    if (!a)
        return TR_ENOACTOR;
    tr__msg *m = tr__msg_new(cur ? &cur->pool : NULL, kind, from, 0, len);
    if (!m)
        return TR_ENOMEM;
    if (len)
        memcpy(m->data, data, len);
    m->to_gen = TR_PID_GEN(to);
    tr__msg *wake = tr__msg_new(cur ? &cur->pool : NULL, TR__MSG_WAKE, from, 0, 0);
    if (!wake) {
        tr__pool_free(cur ? &cur->pool : NULL, m);
        return TR_ENOMEM;
    }
    wake->to_gen = m->to_gen;
    tr__mpsc_push(&a->sigq, &m->node);
    /* Make sure the slot runs and looks at its signal queue — this slot,
     * not a fresh lookup: if the actor ended since, the record must still
     * be answered for the dead (a lookup would fail and strand it). */
    tr__msg_post(cur, a, wake);
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

/* ---- spawning ------------------------------------------------------------ */

/* Takes a slot of loop `L`: a free one, or a fresh one bound to L. */
static tr_actor *reserve_slot(tr_runtime *rt, tr__loop *L, int *err)
{
    ck_spinlock_fas_lock(&L->free_lock);
    tr__handoff_acquire(&L->free_lock);
    tr_actor *a = L->free_slots;
    if (a)
        L->free_slots = a->free_next;
    tr__handoff_release(&L->free_lock);
    ck_spinlock_fas_unlock(&L->free_lock);
    if (a)
        return a;
    a = tr__pidtab_fresh(&rt->pids, err);
    if (a)
        ck_pr_store_ptr(&a->loop, L);
    return a;
}

/* Gives a free slot back to its loop. A slot whose next incarnation's
 * generation could not end without wrapping is retired instead: never
 * reused, so no pid can come back to name a later actor (one slot in 2^25
 * incarnations of it; its memory goes with the runtime). */
static void release_slot(tr__loop *L, tr_actor *a)
{
    if (ck_pr_load_32(&a->gen) >= TR__GEN_MASK - 1)
        return;
    ck_spinlock_fas_lock(&L->free_lock);
    tr__handoff_acquire(&L->free_lock);
    a->free_next = L->free_slots;
    L->free_slots = a;
    tr__handoff_release(&L->free_lock);
    ck_spinlock_fas_unlock(&L->free_lock);
}

/* `want` passed tr__loop_opt_ok. */
static tr__loop *pick_loop(tr_runtime *rt, tr__loop *cur, tr_actor *parent, int want)
{
    if (want > 0)
        return rt->loops[TR__LOOP_INDEX(want)];
    if (want == TR_LOOP_DEFAULT && parent)
        return cur;
    unsigned i = cur ? cur->rr++ : ck_pr_faa_uint(&rt->rr, 1);
    return rt->loops[i % rt->nloops];
}

_Static_assert(TR_LOOP_DEFAULT == 0 && TR_OVERFLOW_REFUSE == 0,
               "a zeroed tr_spawn_opts is the defaults");

int tr__spawn_opts_check(const tr_runtime *rt, const tr_spawn_opts *opts)
{
    if ((!opts->arg && opts->arg_len) || !tr__loop_opt_ok(rt, opts->loop) ||
        !tr__duration_field_ok(opts->shutdown_ms) ||
        (opts->overflow != TR_OVERFLOW_REFUSE && opts->overflow != TR_OVERFLOW_DROP))
        return TR_EINVAL;
    return opts->arg_len > rt->opts.max_payload ? TR_EMSGSIZE : 0;
}

int tr__spawn(tr_runtime *rt, tr__loop *cur, tr_actor *parent,
              const tr_behavior *beh, const tr_spawn_opts *opts, tr_pid *out,
              tr_ref *mon)
{
    tr_spawn_opts defaults;
    if (!opts) {
        tr_spawn_opts_init(&defaults);
        opts = &defaults;
    }
    if (!beh || !beh->receive || !out)
        return TR_EINVAL;
    int rc = tr__spawn_opts_check(rt, opts);
    if (rc != 0)
        return rc;
    if (opts->top != TR_TOP_DEFAULT &&
        (parent || (opts->top != TR_TOP_PERMANENT && opts->top != TR_TOP_INDEPENDENT)))
        return TR_EINVAL;
    tr_duration shutdown_ms = 5000;
    tr__duration_field(opts->shutdown_ms, 5000, &shutdown_ms); /* checked above */

    if (mon && (!parent || tr__ties_reserve_watch(cur, parent) != 0))
        return parent ? TR_ENOMEM : TR_EINVAL;
    tr__pool *pool = cur ? &cur->pool : NULL;
    tr__child *node = malloc(sizeof *node);
    tr__msg *m = tr__msg_new(pool, TR__MSG_INIT,
                             parent ? tr__actor_pid(parent) : TR_PID_NONE, 0,
                             sizeof(tr__init) + (mon ? sizeof *mon : 0) + opts->arg_len);
    if (!node || !m) {
        free(node);
        if (m)
            tr__pool_free(pool, m);
        return TR_ENOMEM;
    }
    int err = 0;
    tr__loop *home = pick_loop(rt, cur, parent, opts->loop);
    tr_actor *a = reserve_slot(rt, home, &err);
    if (!a) {
        free(node);
        tr__pool_free(pool, m);
        return err;
    }
    /* The mailbox bound, before the generation makes the slot reachable.
     * The slot's first bounded incarnation makes the record (zeroed, so a
     * sender that sees it early sees no bound). */
    tr__bound *b = ck_pr_load_ptr(&a->bound);
    if (!b && opts->mailbox_capacity) {
        if (!(b = calloc(1, sizeof *b))) {
            release_slot(home, a); /* untouched: still free */
            free(node);
            tr__pool_free(pool, m);
            return TR_ENOMEM;
        }
        ck_pr_store_ptr(&a->bound, b);
    }
    if (b) {
        ck_pr_store_32(&b->cap, opts->mailbox_capacity);
        ck_pr_store_32(&b->drop, opts->overflow == TR_OVERFLOW_DROP);
        ck_pr_store_64(&b->dropped, 0);
        ck_pr_store_64(&b->refused, 0);
    }
    ck_pr_fence_store();
    /* The slot is free (even generation); the new incarnation is odd. */
    uint32_t gen = ck_pr_load_32(&a->gen) + 1;
    ck_pr_store_32(&a->gen, gen);
    tr_pid pid = tr__pid_make(rt->node, gen, a->index);
    ck_pr_fence_store(); /* a sender that finds the pid sees the generation */
    ck_pr_store_64(&a->pid, pid); /* lookups find it from here on */

    node->pid = pid;
    node->prev = NULL;
    node->stopping = 0;
    node->permanent = !parent && opts->top == TR_TOP_PERMANENT;
    node->seq = 0;
    node->shutdown_ms = shutdown_ms;
    tr__init *in = (tr__init *)m->data;
    in->beh = beh;
    in->node = node;
    unsigned char *p = (unsigned char *)(in + 1);
    uint32_t iflags = (opts->notify_started && parent) ? TR__INIT_NOTIFY : 0;
    if (mon) {
        *mon = tr__ties_watch(cur, parent, pid);
        memcpy(p, mon, sizeof *mon);
        p += sizeof *mon;
        iflags |= TR__INIT_MONITOR;
    }
    if (opts->arg_len)
        memcpy(p, opts->arg, opts->arg_len);
    if (parent) {
        node->next = parent->children;
        if (parent->children)
            parent->children->prev = node;
        parent->children = node;
    } else if (rt->root != TR_PID_NONE) {
        iflags |= TR__INIT_ADOPT; /* the child tells the root, from its own loop */
        node->next = NULL;
        node->seq = (uint32_t)ck_pr_faa_64(&rt->spawn_seq, 1);
    } else {
        /* The runtime's first actor is the root itself: no parent. */
        in->node = NULL;
        free(node);
    }
    m->type = iflags;
    m->to_gen = gen;
    /* (The push finds the slot already scheduled when a stale message of an
     * earlier incarnation is still queued.) */
    if (tr__mpsc_push(&a->mb, &m->node)) {
        if (parent && home == cur)
            tr__loop_push_spawned(cur, a);
        else
            tr__loop_schedule(cur, a);
    }
    *out = pid;
    return 0;
}

/* A child of the running actor `self`; monitored from birth if `mon`. */
static int spawn_child(tr_actor *self, const tr_behavior *beh, const tr_spawn_opts *opts,
                       tr_pid *out, tr_ref *mon)
{
    if (!self)
        return TR_EINVAL;
    tr__loop *L = running_loop(self);
    if (!L)
        return TR_EWRONGTHREAD;
    if (self->status != TR__RUNNING)
        return TR_ESTOPPED;
    return tr__spawn(L->rt, L, self, beh, opts, out, mon);
}

int tr_spawn(tr_actor *self, const tr_behavior *beh, const tr_spawn_opts *opts,
             tr_pid *out)
{
    return spawn_child(self, beh, opts, out, NULL);
}

int tr_spawn_monitor(tr_actor *self, const tr_behavior *beh, const tr_spawn_opts *opts,
                     tr_pid *out, tr_ref *ref_out)
{
    return ref_out ? spawn_child(self, beh, opts, out, ref_out) : TR_EINVAL;
}

int tr_rt_spawn(tr_runtime *rt, const tr_behavior *beh, const tr_spawn_opts *opts,
                tr_pid *out)
{
    if (!rt)
        return TR_EINVAL;
    /* Count the spawn before looking at the state: the root, once stopping,
     * waits for every counted spawn to be adopted (see root_may_finish). */
    tr__loop *L = tr__thread_loop(rt);
    ck_pr_faa_32(&rt->root_pending, 1);
    if (ck_pr_load_int(&rt->state) >= TR__RT_STOPPING) {
        tr__root_unpend(rt, L);
        return TR_ESTOPPED;
    }
    /* From a loop thread this is still a top-level spawn (no parent). */
    int rc = tr__spawn(rt, L, NULL, beh, opts, out, NULL);
    if (rc != 0)
        tr__root_unpend(rt, L);
    return rc;
}

void tr_spawn_opts_init(tr_spawn_opts *opts)
{
    if (opts)
        memset(opts, 0, sizeof *opts); /* every default is zero */
}

void tr__root_unpend(tr_runtime *rt, tr__loop *cur)
{
    ck_pr_dec_32(&rt->root_pending);
    /* A stopping root may be waiting for this count to reach zero. */
    if (ck_pr_load_int(&rt->state) >= TR__RT_STOPPING)
        tr__post_system(rt, cur, TR_PID_NONE, rt->root, TR__MSG_WAKE, NULL, 0);
}

/* ---- self ---------------------------------------------------------------- */

tr_pid tr_self(const tr_actor *self)
{
    return running_loop(self) ? tr__actor_pid(self) : TR_PID_NONE;
}

tr_pid tr_parent(const tr_actor *self)
{
    return running_loop(self) ? self->parent : TR_PID_NONE;
}

tr_runtime *tr_runtime_of(const tr_actor *self)
{
    tr__loop *L = running_loop(self);
    return L ? L->rt : NULL;
}

int tr_loop_index(const tr_actor *self)
{
    tr__loop *L = running_loop(self);
    return L ? (int)L->index : -1;
}

int tr_become(tr_actor *self, tr_receive_fn receive)
{
    if (!self || !receive)
        return TR_EINVAL;
    if (!running_loop(self))
        return TR_EWRONGTHREAD;
    self->receive = receive;
    return 0;
}

/* ---- exits --------------------------------------------------------------- */

tr__actor_ext *tr__ext_of(tr__loop *L, tr_actor *a)
{
    if (!a->ext && (a->ext = tr__pool_alloc(&L->pool, sizeof *a->ext)) != NULL)
        memset(a->ext, 0, sizeof *a->ext);
    return a->ext;
}

/* The exit reason's text, or NULL. */
static const char *exit_text(const tr_actor *a)
{
    return a->ext ? a->ext->exit_text : NULL;
}

/* Without memory for the text (the extension or the copy) the reason keeps
 * its code, whose description stands in for the text. */
static void set_exit(tr__loop *L, tr_actor *a, tr_exit_kind kind, int code,
                     const char *text)
{
    a->exit_kind = (uint8_t)kind;
    a->exit_code = code;
    tr__actor_ext *x = text ? tr__ext_of(L, a) : a->ext;
    if (x) {
        free(x->exit_text);
        x->exit_text = text ? strdup(text) : NULL;
    }
}

int tr_exit(tr_actor *self, tr_exit_kind kind)
{
    if (!self || (kind != TR_EXIT_NORMAL && kind != TR_EXIT_SHUTDOWN &&
                  kind != TR_EXIT_KILLED))
        return TR_EINVAL;
    tr__loop *L = running_loop(self);
    if (!L)
        return TR_EWRONGTHREAD;
    if (self->status == TR__RUNNING && !(self->flags & TR__EXIT_REQ)) {
        set_exit(L, self, kind, 0, NULL);
        self->flags |= TR__EXIT_REQ;
    }
    return 0;
}

int tr_exit_error(tr_actor *self, int code, const char *text)
{
    if (!self || code == 0)
        return TR_EINVAL;
    tr__loop *L = running_loop(self);
    if (!L)
        return TR_EWRONGTHREAD;
    if (self->status == TR__RUNNING && !(self->flags & TR__EXIT_REQ)) {
        set_exit(L, self, TR_EXIT_ERROR, code, text);
        self->flags |= TR__EXIT_REQ;
    }
    return 0;
}

int tr_exit_result(tr_actor *self, const void *data, size_t len)
{
    if (!self || (!data && len))
        return TR_EINVAL;
    tr__loop *L = tr__running_loop(self);
    if (!L)
        return TR_EWRONGTHREAD;
    if (len > L->rt->opts.max_payload)
        return TR_EMSGSIZE;
    tr__actor_ext *x = len ? tr__ext_of(L, self) : self->ext;
    void *copy = NULL;
    if (len && (!x || !(copy = malloc(len))))
        return TR_ENOMEM;
    if (len)
        memcpy(copy, data, len);
    if (x) {
        free(x->result);
        x->result = copy;
        x->result_len = (uint32_t)len;
    }
    return tr_exit(self, TR_EXIT_NORMAL);
}

int tr_trap_exits(tr_actor *self, int on)
{
    if (!self)
        return TR_EINVAL;
    if (!tr__running_loop(self))
        return TR_EWRONGTHREAD;
    self->trap_exits = on != 0;
    return 0;
}

static void finish_exit(tr__loop *L, tr_actor *a);
static void process_signals(tr__loop *L, tr_actor *a);

/* The root also waits for plain-thread spawns it has not adopted yet. */
static bool root_may_finish(tr_runtime *rt, tr_actor *a)
{
    return !(a->flags & TR__ROOT) || ck_pr_load_32(&rt->root_pending) == 0;
}

/* Ends an exiting actor once its last child has gone. */
static void maybe_finish(tr__loop *L, tr_actor *a)
{
    if (a->status == TR__EXITING && !a->children && root_may_finish(L->rt, a))
        finish_exit(L, a);
}

/*
 * Children stop one at a time, newest first (the list is kept newest
 * first): the newest gets a shutdown signal, and each CHILD_EXIT moves on
 * to the next. Signalling a child that already has the signal is a no-op,
 * so this is called after every change of an exiting actor's child list.
 */
static void stop_next_child(tr__loop *L, tr_actor *a)
{
    tr__child *c = a->children;
    if (a->status != TR__EXITING || !c || c->stopping)
        return;
    /* The root's adoptions travel as mail, which its stop signal overtakes:
     * it starts on its children only once every counted spawn is in the
     * list, so the newest really goes first. */
    if (!root_may_finish(L->rt, a))
        return;
    c->stopping = 1;
    tr_pid self = tr__actor_pid(a);
    tr__signal(L->rt, L, self, c->pid, TR_EXIT_SHUTDOWN, 0, NULL, 0);
    if (c->shutdown_ms == TR_INFINITE)
        return;
    /* If it has not ended by then (it traps exits and lingers), kill it. */
    uint64_t id;
    tr__timer *t = tr__timer_new(&L->timers, &L->pool, 0, &id);
    if (!t) {
        tr__signal(L->rt, L, self, c->pid, TR_EXIT_KILLED, 0, NULL, TR__SIG_UNTRAPPABLE);
        return;
    }
    t->kind = TR__TIMER_KILL;
    t->to = c->pid;
    if (tr__actor_remember_timer(L, a, t) != 0) {
        tr__timer_free(&L->timers, &L->pool, t);
        tr__signal(L->rt, L, self, c->pid, TR_EXIT_KILLED, 0, NULL, TR__SIG_UNTRAPPABLE);
        return;
    }
    tr__timer_arm(&L->timers, t, tr__deadline_after(L->rt, c->shutdown_ms));
    TR__STAT_ADD(L, timers, 1);
    tr__loop_timers_changed(L);
}

/* Starts ending `a` with the reason already stored in it. */
static void begin_exit(tr__loop *L, tr_actor *a)
{
    if (a->status != TR__RUNNING)
        return;
    a->status = TR__EXITING;
    /* What it owns stops acting: timers, calls, jobs, subscriptions,
     * task groups (subsys.h), newest kind first. */
    tr__owned_stop(L, a);
    stop_next_child(L, a);
    maybe_finish(L, a);
}

static void exit_with(tr__loop *L, tr_actor *a, tr_exit_kind kind, int code,
                      const char *text)
{
    if (a->status != TR__RUNNING)
        return;
    set_exit(L, a, kind, code, text);
    begin_exit(L, a);
}

static void report(tr__loop *L, tr_actor *a)
{
    if (a->exit_kind == TR_EXIT_NORMAL || a->exit_kind == TR_EXIT_SHUTDOWN)
        return; /* error, killed and noconnection are abnormal */
    tr_pid pid = tr__actor_pid(a);
    const char *kind = (a->beh && a->beh->name) ? a->beh->name : "anonymous";
    const char *reg = tr__registry_name(a);
    char who[TR_NAME_MAX + 128];
    snprintf(who, sizeof who, "actor " TR_PID_FMT "%s%s%s (%s)", TR_PID_ARGS(pid),
             reg ? " '" : "", reg ? reg : "", reg ? "'" : "", kind);
    if (a->exit_kind != TR_EXIT_ERROR) {
        tr__log(L->rt, TR_LOG_ERROR, "%s exited abnormally: %s", who,
                tr_exit_kind_name((tr_exit_kind)a->exit_kind));
        return;
    }
    char why[256];
    tr__error_text(why, sizeof why, a->exit_code, exit_text(a));
    tr__log(L->rt, TR_LOG_ERROR, "%s exited abnormally: %s", who, why);
}

static void finish_exit(tr__loop *L, tr_actor *a)
{
    tr_runtime *rt = L->rt;
    tr_pid pid = tr__actor_pid(a);
    if ((a->flags & TR__INIT_OK) && a->beh->terminate) {
        tr_exit_reason reason = {
            .kind = (tr_exit_kind)a->exit_kind,
            .code = a->exit_code,
            .text = a->exit_kind == TR_EXIT_ERROR
                        ? (exit_text(a) ? exit_text(a) : tr_strerror(a->exit_code))
                        : tr_exit_kind_name((tr_exit_kind)a->exit_kind),
        };
        tr_actor *prev = L->current;
        L->current = a;
        tr__loop_busy(L, a, 0);
        a->beh->terminate(a, a->state, &reason);
        tr__loop_idle(L);
        L->current = prev;
    }
    report(L, a);
    /* Everything it still owns goes before anyone hears of the end: its
     * name (a restarted successor can take it at once, as in Erlang), the
     * requests it owes (their callers learn the reason first), the kill
     * timers of children that were still stopping, what terminate made. */
    tr__owned_release(L, a);
    /* Links and monitors that reached us before our end see its reason. */
    process_signals(L, a);
    tr__ties_exit(L, a); /* links and watchers learn the reason (and result) */
    a->trap_exits = 0;
    TR__STAT_ADD(L, actors, -1);
    if (a->parent_node && a->parent_node->permanent) {
        tr_down d;
        tr__down_fill(&d, pid, (tr_exit_kind)a->exit_kind, a->exit_code,
                      a->exit_kind == TR_EXIT_ERROR ? exit_text(a) : NULL);
        tr__runtime_permanent_ended(rt, &d);
    }
    if (a->parent != TR_PID_NONE && a->parent_node) {
        tr__child *node = a->parent_node;
        /* Cannot fail for want of a parent: a parent outlives its children. */
        tr__post_system(rt, L, pid, a->parent, TR__MSG_CHILD_EXIT, &node, sizeof node);
    }
    bool root = (a->flags & TR__ROOT) != 0;
    if (a->state) {
        tr__pool_free(&L->pool, a->state);
        a->state = NULL;
    }
    if (a->ext) { /* what is left: the reason's text and the result */
        free(a->ext->exit_text);
        free(a->ext->result);
        tr__pool_free(&L->pool, a->ext->owned);
        tr__pool_free(&L->pool, a->ext);
        a->ext = NULL;
    }
    a->status = TR__FREE;
    a->flags = 0;
    ck_pr_store_ptr(&a->beh, NULL);
    a->receive = NULL;
    a->parent_node = NULL;
    /* Retire the generation: from here on every lookup of `pid` fails and
     * messages already queued for it are dropped. */
    ck_pr_store_64(&a->pid, 0);
    ck_pr_store_32(&a->gen, ck_pr_load_32(&a->gen) + 1);
    tr__mpsc_node *n;
    while ((n = tr__mpsc_pop(&a->mb)) != NULL)
        drop(L, a, (tr__msg *)n);
    process_signals(L, a); /* now stale: answered for the dead */
    release_slot(L, a);
    if (root)
        tr__runtime_finished(rt);
}

/* ---- handling messages --------------------------------------------------- */

static void handle_init(tr__loop *L, tr_actor *a, tr__msg *m)
{
    tr__init *in = (tr__init *)m->data;
    uint32_t iflags = m->type;
    tr_pid parent = (iflags & TR__INIT_ADOPT) ? L->rt->root : m->from;
    tr_ref monitor = 0;
    const unsigned char *arg = (const unsigned char *)(in + 1);
    if (iflags & TR__INIT_MONITOR) {
        memcpy(&monitor, arg, sizeof monitor);
        arg += sizeof monitor;
    }
    size_t arg_len = m->len - (size_t)(arg - m->data);
    a->status = TR__RUNNING;
    a->flags = 0;
    ck_pr_store_ptr(&a->beh, (void *)in->beh); /* the watchdog reads it */
    a->receive = in->beh->receive;
    a->parent = parent;
    a->parent_node = in->node;
    a->children = NULL;
    a->exit_kind = TR_EXIT_NORMAL;
    a->exit_code = 0;
    a->handled = 0;
    a->timers = NULL;
    a->calls = 0;
    a->owned = 0;
    a->trap_exits = 0;
    TR__STAT_ADD(L, actors, 1);
    if (in->beh == &tr__root_behavior)
        a->flags |= TR__ROOT;
    if (iflags & TR__INIT_ADOPT) {
        /* Tell the root about us before anything else we send it, so our
         * CHILD_EXIT can never overtake the adoption. */
        tr__child *node = in->node;
        in->node = NULL; /* now the root's */
        if (tr__post_system(L->rt, L, tr__actor_pid(a), parent, TR__MSG_ADOPT,
                        &node, sizeof node) != 0) {
            free(node);
            a->parent_node = NULL;
            tr__root_unpend(L->rt, L);
        }
    }
    if (monitor && tr__ties_add_watcher(L, a, parent, monitor) != 0) {
        tr__pool_free(&L->pool, m);
        process_signals(L, a);
        exit_with(L, a, TR_EXIT_ERROR, TR_ENOMEM, "no memory for the parent's monitor");
        return;
    }
    if (in->beh->state_size) {
        a->state = tr__pool_alloc(&L->pool, in->beh->state_size);
        if (!a->state) {
            tr__pool_free(&L->pool, m);
            process_signals(L, a);
            exit_with(L, a, TR_EXIT_ERROR, TR_ENOMEM, "no memory for the actor's state");
            return;
        }
        memset(a->state, 0, in->beh->state_size);
    }
    int rc = 0;
    tr_pid notify = (iflags & TR__INIT_NOTIFY) ? parent : TR_PID_NONE;
    if (in->beh->init) {
        L->current = a;
        tr__loop_busy(L, a, 0);
        rc = in->beh->init(a, a->state, arg_len ? arg : NULL, arg_len);
        tr__loop_idle(L);
    }
    tr__pool_free(&L->pool, m);
    if (rc != 0) {
        process_signals(L, a); /* monitors set meanwhile see this failure */
        exit_with(L, a, TR_EXIT_ERROR, rc, "init failed");
        return;
    }
    a->flags |= TR__INIT_OK;
    if (notify != TR_PID_NONE)
        tr__send(L->rt, L, tr__actor_pid(a), notify, TR_MSG_STARTED, 0, NULL, NULL, 0,
                 NULL, NULL);
    /* Monitors and links set meanwhile see the end below, even when init
     * already asked to exit. */
    process_signals(L, a);
    if (a->flags & TR__EXIT_REQ)
        begin_exit(L, a);
}

static void handle_child_exit(tr__loop *L, tr_actor *a, tr__msg *m)
{
    tr__child *node;
    memcpy(&node, m->data, sizeof node);
    tr__pool_free(&L->pool, m);
    if (node->prev)
        node->prev->next = node->next;
    else
        a->children = node->next;
    if (node->next)
        node->next->prev = node->prev;
    if (node->stopping) { /* its kill timer, if armed, is moot */
        for (tr__timer *t = a->timers; t; t = t->owner_next)
            if (t->kind == TR__TIMER_KILL && t->to == node->pid) {
                tr__actor_drop_timer(L, t);
                tr__loop_timers_changed(L);
                break;
            }
    }
    free(node);
    stop_next_child(L, a);
    maybe_finish(L, a);
}

static void handle_adopt(tr__loop *L, tr_actor *a, tr__msg *m)
{
    tr__child *node;
    memcpy(&node, m->data, sizeof node);
    tr__pool_free(&L->pool, m);
    /* Adoptions from several loops arrive in any order; keep the list in
     * spawn order, newest first (usually this stops at the head). */
    tr__child *prev = NULL, *next = a->children;
    while (next && (int32_t)(next->seq - node->seq) > 0) { /* next is newer */
        prev = next;
        next = next->next;
    }
    node->prev = prev;
    node->next = next;
    if (prev)
        prev->next = node;
    else
        a->children = node;
    if (next)
        next->prev = node;
    ck_pr_dec_32(&L->rt->root_pending);
    stop_next_child(L, a); /* a late adoption is the newest: it goes first */
}

/*
 * A reply is delivered only while its call is pending: the call's entry
 * (named by the ref) still exists and belongs to this actor. Ending the
 * call frees it. Otherwise the call already timed out (or the ref is
 * bogus): the reply is dropped and counted, never delivered as a stray.
 */
static bool reply_expected(tr__loop *L, tr_actor *a, tr__msg *m, tr__callhdr *h)
{
    if (m->type == TR_MSG_CALL_TIMEOUT)
        return true; /* the timer already ended the call; h carries its tag */
    if (!tr__call_end(L, a, h->ref, &h->deadline)) {
        TR__STAT_ADD(L, late_replies, 1);
        tr__msg_free(&L->pool, m);
        return false;
    }
    return true;
}

/*
 * Hands `pub` to the actor's receive callback and acts on the outcome.
 * `m` is the message behind it (freed here), or NULL for a message the
 * runtime made up (a trapped exit signal).
 */
/* The runtime's own uses of reserved message types, ahead of receive. */
static bool intercepted(tr__loop *L, tr_actor *a, const tr_msg *pub)
{
    if (pub->type == TR__MSG_DESCRIBE && (pub->flags & TR_MSG_REQUEST)) {
        tr__describe(L, a, pub);
        return true;
    }
    return a->ext && tr__owned_intercept(L, a, pub);
}

/* tr__actor_deliver, inline in the message path; returns `m` (or NULL),
 * which the caller frees: the run frees its messages after its outbox has
 * gone out, so that a reply leaves before the request's block goes home. */
static inline __attribute__((always_inline)) tr__msg *deliver(tr__loop *L, tr_actor *a,
                                                             const tr_msg *pub, tr__msg *m)
{
    if (pub->type > TR_MSG_USER_MAX && intercepted(L, a, pub))
        return m;
    L->cur_msg = m;
    L->cur_pub = pub;
    const tr__observer *obs = L->obs;
    if (__builtin_expect(obs != NULL, 0) && obs->dispatch)
        obs->dispatch(obs->ud, a, pub);
    tr__loop_busy(L, a, pub->type);
    int rc = a->receive(a, a->state, pub);
    tr__loop_idle(L);
    if (__builtin_expect(obs != NULL, 0) && obs->done)
        obs->done(obs->ud, a, pub, rc);
    L->cur_msg = NULL;
    L->cur_pub = NULL;
    if (m && (m->flags & TR__MF_REQUEST)) {
        /* Not answered (tr_reply clears the flag of the request it answers
         * while it is handled): owed until tr_reply or the end of `a` (its
         * failure), or failed now if the answer could not be made. */
        if (L->cur_reply_nomem) {
            L->cur_reply_nomem = false;
            tr__request_fail(L, tr__actor_pid(a), m, TR_EXIT_ERROR, TR_ENOMEM);
        } else {
            tr__request_owe(L, a, m);
        }
        m = NULL;
    }
    TR__STAT_ADD(L, handled, 1);
    a->handled++;
    if (rc != 0)
        exit_with(L, a, TR_EXIT_ERROR, rc, NULL);
    else if (a->flags & TR__EXIT_REQ)
        begin_exit(L, a);
    return m;
}

void tr__actor_deliver(tr__loop *L, tr_actor *a, const tr_msg *pub, tr__msg *m)
{
    if ((m = deliver(L, a, pub, m)) != NULL)
        tr__msg_free(&L->pool, m);
}

/* How strongly a signal ends an actor: the strongest pending one wins. */
static int signal_rank(uint32_t flags, int32_t kind)
{
    if (flags & TR__SIG_UNTRAPPABLE)
        return 4;
    if (kind == TR_EXIT_KILLED)
        return 3;
    /* A lost connection is abnormal, as strong as an error; shutdown is weakest. */
    return kind == TR_EXIT_ERROR || kind == TR_EXIT_NOCONNECTION ? 2 : 1;
}

/*
 * Acts on one signal-queue record of the current incarnation (RUNNING or
 * EXITING). Exit signals are collected in *best (the strongest wins);
 * trapped ones are delivered as TR_MSG_EXIT at once.
 */
static void signal_record(tr__loop *L, tr_actor *a, tr__msg *m, int *best, tr_down *best_d)
{
    if (m->kind != TR__MSG_SIGNAL) {
        tr__ties_handle(L, a, m); /* LINK, UNLINK, MONITOR, DEMONITOR */
        return;
    }
    tr__sighdr h;
    tr_down d;
    memcpy(&h, m->data, sizeof h);
    memcpy(&d, m->data + sizeof h, sizeof d);
    tr_pid from = m->from;
    tr__pool_free(&L->pool, m);
    if (h.flags & TR__SIG_LINK)
        tr__ties_unlinked(a, from); /* the other end has ended */
    if (a->status != TR__RUNNING)
        return; /* ending already */
    if (!(h.flags & TR__SIG_UNTRAPPABLE) && a->trap_exits) {
        tr_msg pub = {.from = from, .type = TR_MSG_EXIT, .len = sizeof d, .data = &d};
        tr__actor_deliver(L, a, &pub, NULL);
        return;
    }
    if (d.kind == TR_EXIT_NORMAL)
        return; /* a linked actor ended normally */
    int rank = signal_rank(h.flags, d.kind);
    if (rank > *best) {
        *best = rank;
        *best_d = d;
    }
}

/* The slot is reserved for an incarnation whose INIT has not run yet. */
static bool awaiting_init(tr_actor *a)
{
    return a->status == TR__FREE && (ck_pr_load_32(&a->gen) & 1u);
}

/*
 * Drains the signal queue, in arrival order. A record for an incarnation
 * that has ended is answered for the dead (tr__ties_dropped). A record for
 * an incarnation whose INIT has not run yet stops the drain: it and those
 * behind it wait in the queue until handle_init drains them. Then the
 * strongest exit signal, if any, ends the actor.
 */
static void process_signals(tr__loop *L, tr_actor *a)
{
    int best = 0;
    tr_down best_d;
    tr__mpsc_node *n;
    while ((n = tr__mpsc_peek(&a->sigq)) != NULL) {
        tr__msg *m = (tr__msg *)n;
        bool stale = m->to_gen != ck_pr_load_32(&a->gen);
        if (!stale && a->status == TR__FREE)
            break; /* INIT is still ahead in the mailbox */
        if (!tr__mpsc_pop(&a->sigq))
            break; /* a push is half-way through: look again later */
        if (stale) {
            if (m->kind == TR__MSG_LINK || m->kind == TR__MSG_MONITOR)
                tr__ties_dropped(L, a, m);
            tr__pool_free(&L->pool, m);
        } else {
            signal_record(L, a, m, &best, &best_d);
        }
    }
    if (best && a->status == TR__RUNNING)
        exit_with(L, a, (tr_exit_kind)best_d.kind, best_d.code,
                  best_d.kind == TR_EXIT_ERROR ? best_d.text : NULL);
}

/* Handles `m`; returns it if the caller is to free it (a user message
 * that reached the handler), else NULL (freed or kept here). */
static tr__msg *handle(tr__loop *L, tr_actor *a, tr__msg *m)
{
    if (m->to_gen != ck_pr_load_32(&a->gen)) {
        drop(L, a, m); /* meant for an incarnation that has ended */
        return NULL;
    }
    switch (m->kind) {
    case TR__MSG_USER: {
        if (m->flags & TR__MF_COUNTED) { /* out of the bounded mailbox */
            uncount(a);
            m->flags &= (uint8_t)~TR__MF_COUNTED;
        }
        /* An exiting actor still answers the tree walk. */
        if (a->status != TR__RUNNING &&
            !(a->status == TR__EXITING && m->type == TR__MSG_DESCRIBE)) {
            drop(L, a, m);
            return NULL;
        }
        tr_msg pub = {.from = m->from, .type = m->type, .len = m->len,
                      .flags = m->flags & (TR_MSG_REQUEST | TR_MSG_REPLY | TR_MSG_OWNED)};
        const unsigned char *p = m->data;
        if (m->flags & TR__MF_CALLHDR) {
            tr__callhdr h;
            memcpy(&h, p, sizeof h);
            p += sizeof h;
            pub.ref = h.ref;
            if (m->flags & TR__MF_REPLY) {
                /* A reply's header carries the call's tag, not a deadline. */
                if (!reply_expected(L, a, m, &h))
                    return NULL;
                pub.tag = h.deadline;
            } else {
                pub.deadline = h.deadline;
            }
            if ((m->flags & TR__MF_JOB) && !tr__jobs_outcome(L, a, h.ref)) {
                tr__msg_free(&L->pool, m); /* the job was cancelled */
                return NULL;
            }
        }
        if (m->flags & TR__MF_OWNED) {
            tr__ownhdr o;
            memcpy(&o, p, sizeof o);
            pub.data = o.buf;
        } else {
            pub.data = p;
        }
        return deliver(L, a, &pub, m);
    }
    case TR__MSG_INIT:
        handle_init(L, a, m);
        return NULL;
    case TR__MSG_CHILD_EXIT:
        handle_child_exit(L, a, m);
        return NULL;
    case TR__MSG_ADOPT:
        handle_adopt(L, a, m);
        return NULL;
    case TR__MSG_CHAN_PULL:
        tr__chan_pull(L, a, m);
        return NULL;
    case TR__MSG_WAKE:
        /* Posted after its signal was queued, so the signal is visible now
         * even if it was not at the boundary check just before this pop.
         * An exiting root may also have been waiting for the adoption
         * count to drop. */
        tr__pool_free(&L->pool, m);
        process_signals(L, a);
        stop_next_child(L, a);
        maybe_finish(L, a);
        return NULL;
    default: /* DOWN */
        tr__ties_handle(L, a, m);
        return NULL;
    }
}

void tr__actor_run(tr__loop *L, tr_actor *a)
{
    unsigned batch = L->rt->opts.batch;
    tr__msg *spent = NULL; /* handled, not yet freed */
    for (unsigned n = 0; n < batch; n++) {
        if (tr__mpsc_maybe_nonempty(&a->sigq)) {
            L->current = a;
            process_signals(L, a);
        }
        tr__mpsc_node *node = tr__mpsc_pop(&a->mb);
        if (!node)
            break;
        if (spent)
            tr__msg_free(&L->pool, spent);
        L->current = a;
        spent = handle(L, a, (tr__msg *)node);
        if (L->born)
            break; /* it spawned here: its children start before its next message */
    }
    L->current = NULL;
    L->run_posted = false;
    if (L->nout)
        tr__loop_outbox_flush(L);
    if (spent)
        tr__msg_free(&L->pool, spent); /* after the mail it caused has left */
    /* Stay scheduled if mail or a signal is left (or a push is in progress).
     * A signal record is always pushed before its WAKE, so one that this
     * check misses is followed by a WAKE that finds the mailbox marked (and
     * schedules us) or makes the mark fail. Records waiting for INIT do not
     * count: INIT's push schedules us, or is already there to fail the mark. */
    tr__loop_run_done(L, a, (tr__mpsc_maybe_nonempty(&a->sigq) && !awaiting_init(a)) ||
                                !tr__mpsc_mark_empty(&a->mb));
}

void tr__actor_teardown(tr_actor *a)
{
    tr__mpsc_node *n;
    while ((n = tr__mpsc_pop(&a->mb)) != NULL) {
        tr__msg *m = (tr__msg *)n;
        tr__msg_release_contents(m);
        tr__pool_free_now(m);
    }
    while ((n = tr__mpsc_pop(&a->sigq)) != NULL)
        tr__pool_free_now(n);
    if (a->ext) {
        tr__owned_teardown(a);
        tr__ties_teardown(a);
        free(a->ext->exit_text);
        free(a->ext->result);
        tr__pool_free_now(a->ext->owned);
        tr__pool_free_now(a->ext);
        a->ext = NULL;
    }
    free(a->bound);
    a->bound = NULL;
    /* Only a runtime that never ran can hold live actors here. */
    tr__child *c = a->children;
    while (c) {
        tr__child *next = c->next;
        free(c);
        c = next;
    }
    a->children = NULL;
    if (a->state)
        tr__pool_free_now(a->state);
    a->state = NULL;
}

/* An actor's timers are a resource it owns (subsys.h): they stop when its
 * exit begins, and the kill timers it arms for its stopping children go
 * when it has ended. The list itself is in the slot (a->timers). */
static void timers_drop(tr__loop *L, tr_actor *a, void **data)
{
    (void)data;
    if (!a->timers)
        return;
    while (a->timers)
        tr__actor_drop_timer(L, a->timers);
    tr__loop_timers_changed(L);
}

static tr__owned_kind timers_kind = {.name = "timers", .stop = timers_drop,
                                     .release = timers_drop};

int tr__actor_remember_timer(tr__loop *L, tr_actor *a, struct tr__timer *t)
{
    int rc = tr__own_kind(L, a, &timers_kind);
    if (rc != 0)
        return rc;
    t->owner = a;
    t->owner_prev = NULL;
    t->owner_next = a->timers;
    if (a->timers)
        a->timers->owner_prev = t;
    a->timers = t;
    return 0;
}

/* Unlinks `t` from its owner's list, frees it and counts it gone (a call's
 * limit is counted with its call). The caller re-arms the libuv timer if
 * the earliest deadline may have moved. */
void tr__actor_drop_timer(tr__loop *L, struct tr__timer *t)
{
    tr_actor *a = t->owner;
    if (t->owner_prev)
        t->owner_prev->owner_next = t->owner_next;
    else
        a->timers = t->owner_next;
    if (t->owner_next)
        t->owner_next->owner_prev = t->owner_prev;
    bool counted = t->kind != TR__TIMER_CALL;
    tr__timer_free(&L->timers, &L->pool, t);
    if (counted)
        TR__STAT_ADD(L, timers, -1);
}
