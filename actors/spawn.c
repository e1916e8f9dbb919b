/*
 * spawn.c — spawning actors, placement, and what an actor may ask about
 * itself.
 *
 * Design notes
 * ------------
 * Spawning reserves a slot on the target loop (its free list, or a fresh
 * slot bound to that loop), publishes the new pid, and posts an INIT
 * message carrying the behaviour, the parent and a copy of the argument.
 * Everything else about the new actor is set up by its home loop when it
 * handles INIT (dispatch.c), so only the home loop's thread ever writes
 * the slot's owner fields. Any message sent to the new pid is posted after
 * INIT and so handled after it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actor.h"

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
void tr__slot_release(tr__loop *L, tr_actor *a)
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
    if (!tr__behavior_ok(beh) || !out)
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
    /* The notices the child must be able to send whatever memory is left
     * then are made now (notice.c): its DOWN to a monitoring parent, its
     * start notice, its adoption by the root; its INIT's own block
     * becomes its CHILD_EXIT. */
    uint32_t iflags = (opts->notify_started && parent) ? TR__INIT_NOTIFY : 0;
    if (mon)
        iflags |= TR__INIT_MONITOR;
    if (!parent && rt->root != TR_PID_NONE)
        iflags |= TR__INIT_ADOPT; /* the child tells the root, from its own loop */
    tr__init_extras x = {0};
    size_t extras = ((iflags & TR__INIT_MONITOR) ? sizeof x.monitor + sizeof x.down : 0) +
                    ((iflags & TR__INIT_NOTIFY) ? sizeof x.started : 0) +
                    ((iflags & TR__INIT_ADOPT) ? sizeof x.adopt : 0);
    tr__child *node = tr__malloc(sizeof *node);
    tr__msg *m = tr__msg_new(pool, TR__MSG_INIT,
                             parent ? tr__actor_pid(parent) : TR_PID_NONE, 0,
                             sizeof(tr__init) + extras + opts->arg_len);
    bool made = node && m;
    if (made && (iflags & TR__INIT_MONITOR))
        made = (x.down = tr__down_block(cur)) != NULL;
    if (made && (iflags & TR__INIT_NOTIFY))
        made = (x.started = tr__msg_new(pool, TR__MSG_USER, TR_PID_NONE, TR_MSG_STARTED, 0)) !=
               NULL;
    if (made && (iflags & TR__INIT_ADOPT))
        made = (x.adopt = tr__msg_new(pool, TR__MSG_ADOPT, TR_PID_NONE, 0,
                                      sizeof(tr__child *))) != NULL;
    if (!made) {
        free(node);
        if (m)
            tr__pool_free(pool, m);
        tr__init_extras_free(&x);
        return TR_ENOMEM;
    }
    /* max_actors: one atomic add when a limit below the pid space is set,
     * nothing otherwise (the slot table is then the only limit). */
    if (rt->count_live && ck_pr_faa_32(&rt->live, 1) > rt->opts.max_actors) {
        ck_pr_dec_32(&rt->live); /* the root is not one of max_actors */
        free(node);
        tr__pool_free(pool, m);
        tr__init_extras_free(&x);
        return TR_ELIMIT;
    }
    int err = 0;
    tr__loop *home = pick_loop(rt, cur, parent, opts->loop);
    tr_actor *a = reserve_slot(rt, home, &err);
    if (!a) {
        tr__live_put(rt);
        free(node);
        tr__pool_free(pool, m);
        tr__init_extras_free(&x);
        return err;
    }
    /* The mailbox bound, before the generation makes the slot reachable.
     * The slot's first bounded incarnation makes the record (zeroed, so a
     * sender that sees it early sees no bound). */
    tr__bound *b = ck_pr_load_ptr(&a->bound);
    if (!b && opts->mailbox_capacity) {
        if (!(b = tr__calloc(1, sizeof *b))) {
            tr__slot_release(home, a); /* untouched: still free */
            tr__live_put(rt);
            free(node);
            tr__pool_free(pool, m);
            tr__init_extras_free(&x);
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
    if (mon)
        x.monitor = *mon = tr__ties_watch(cur, parent, pid);
    m->type = iflags;
    unsigned char *p = tr__init_write(m, &x);
    if (opts->arg_len)
        memcpy(p, opts->arg, opts->arg_len);
    if (parent) {
        node->next = parent->children;
        if (parent->children)
            parent->children->prev = node;
        parent->children = node;
    } else if (iflags & TR__INIT_ADOPT) {
        node->next = NULL;
        node->seq = (uint32_t)ck_pr_faa_64(&rt->spawn_seq, 1);
    } else {
        /* The runtime's first actor is the root itself: no parent. */
        in->node = NULL;
        free(node);
    }
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
    tr__loop *L;
    int self_rc = tr__self_loop(self, &L);
    if (self_rc != 0)
        return self_rc;
    /* An exiting parent, and every actor of a stopping runtime, refuses
     * new children: a tree that replicates itself cannot outrun its stop. */
    if (self->status != TR__RUNNING || ck_pr_load_int(&L->rt->state) >= TR__RT_STOPPING)
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
    return tr__running_loop(self) ? tr__actor_pid(self) : TR_PID_NONE;
}

tr_pid tr_parent(const tr_actor *self)
{
    return tr__running_loop(self) ? self->parent : TR_PID_NONE;
}

tr_runtime *tr_runtime_of(const tr_actor *self)
{
    tr__loop *L = tr__running_loop(self);
    return L ? L->rt : NULL;
}

int tr_loop_index(const tr_actor *self)
{
    tr__loop *L = tr__running_loop(self);
    return L ? (int)L->index : -1;
}

int tr_become(tr_actor *self, tr_receive_fn receive)
{
    if (!self || !receive)
        return TR_EINVAL;
    if (!tr__running_loop(self))
        return TR_EWRONGTHREAD;
    self->receive = receive;
    return 0;
}
