/*
 * links.c — links, monitors and exit results: how one actor learns that
 * another has ended.
 *
 * Design notes
 * ------------
 * Both ends of a link or monitor keep a record on their own loop, and the
 * records are kept in step with system messages, so no actor ever touches
 * another's memory:
 *
 *   tr_monitor(A, B):  A notes (B, ref) in `watching`; MONITOR(ref) to B,
 *                      on B's signal queue — in order with exit signals, as
 *                      all signals between two actors are in Erlang;
 *                      B notes (A, ref) in `watchers`.
 *   B ends:            DOWN(ref, reason, result) to every watcher, from B,
 *                      so it arrives after everything B sent A before.
 *   A receives DOWN:   delivered only if (B, ref) is still in `watching`
 *                      (tr_demonitor removes it: a DOWN already in flight
 *                      is then dropped).
 *
 *   tr_link(A, B):     A notes B; LINK to B; B notes A (each with the
 *                      exit signal it will send: see below). Either end's
 *                      exit sends the other an exit signal carrying its
 *                      reason (the signal queue, ahead of mail); a normal
 *                      exit is seen only by actors that trap exits.
 *
 * A MONITOR or LINK that reaches a slot whose actor has already ended is
 * answered for the dead by the slot's loop (tr__ties_dropped): a DOWN, or an
 * exit signal, with code TR_ENOACTOR. One that arrives before the actor's
 * end is registered and sees the real reason. So every monitor gets exactly
 * one DOWN however its creation races the exit.
 *
 * ...and however little memory is left: a DOWN is never allocated when it
 * is sent. A MONITOR's block has room for a DOWN (TR__DOWN_ROOM), and the
 * target keeps it in the watcher's record (the hash entry's pointer) to
 * send as the DOWN when it ends; a target that cannot record the watcher
 * sends it back at once as a DOWN with TR_ENOMEM, and a dead slot as one
 * with TR_ENOACTOR. tr_spawn_monitor's DOWN block is made by the spawn. A
 * DOWN with an exit result is allocated to carry it; without memory for
 * that, the kept block goes, without the result (result_len 0).
 *
 * Nor is a link's exit signal allocated when it is sent (before, it was,
 * and an end that could not make it left the other waiting for an exit it
 * never heard of). tr_link makes both ends' signals — each a record with
 * a signal's room and its WAKE (tr__sigres) — before it does anything, or
 * fails with TR_ENOMEM, nothing done: A keeps its own in its record of B
 * (the hash entry's pointer and value); B's travels as the LINK itself,
 * carrying its WAKE, and B keeps it in its record of A. Each end's exit
 * posts the signal it keeps, and every other way a link ends uses or
 * frees it, exactly once:
 *   - an exit signal through the link: the receiver drops its own;
 *   - tr_unlink: its own is the UNLINK, so an unlink is never lost either
 *     (before, a B whose UNLINK could not be made kept the link, and its
 *     end killed the A that had unlinked); the other end drops its own;
 *   - a LINK that reaches a dead slot: it goes back as the noproc signal;
 *   - a LINK whose target cannot record it (no memory for the record): it
 *     goes back at once as a signal with TR_ENOMEM, "no memory for a
 *     link", as a monitor's DOWN does — the linker ends (or, trapping,
 *     hears of it), never keeps half a link;
 *   - a LINK between ends already linked: freed, the record there keeps
 *     the signal it has. (An end sends a LINK only while it has no record
 *     of the other, and the records one end sends the other arrive in
 *     order, so this is two ends that linked each other before either
 *     heard: each keeps its own.)
 *   - teardown: freed with the records (and a LINK left queued, with its
 *     WAKE).
 * The price: a link holds a 256- and a 64-byte block at each end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop.h"

/* ---- keys ------------------------------------------------------------------------ */

/* A watcher's key: its monitor ref; a plain thread's watch (no pid) is
 * keyed by its waiter ref with the top bit set, which neither kind of ref
 * has (next_ref counts from 1; waiter refs are idtab ids): the two never
 * meet in one table. */
#define PLAIN_WATCH (UINT64_C(1) << 63)

static uint64_t watcher_key(tr_pid watcher, tr_ref ref)
{
    return watcher == TR_PID_NONE ? ref | PLAIN_WATCH : ref;
}

/* The actor's ties, made on first use (in its extension record); NULL when
 * out of memory. */
static tr__ties *ties_of(tr__loop *L, tr_actor *a)
{
    tr__actor_ext *x = tr__ext_of(L, a);
    return x ? &x->ties : NULL;
}

/* The actor's ties if it has any record of them, else NULL. */
static tr__ties *ties(tr_actor *a)
{
    return a->ext ? &a->ext->ties : NULL;
}

/* ---- a link's signal, made in advance (see the notes) --------------------------- */

/* The exit signal a record of links owes the linked actor: its record in
 * the entry's pointer, its WAKE in the value. */
static tr__sigres link_res(const tr__hent *e)
{
    return (tr__sigres){.sig = e->p, .wake = (tr__msg *)(uintptr_t)e->val};
}

/* Records the link to `pid` with the signal `r` owed to it; false when out
 * of memory (r is still the caller's). */
static bool link_put(tr__hmap *links, tr_pid pid, const tr__sigres *r)
{
    return tr__hmap_put(links, pid, (uint64_t)(uintptr_t)r->wake, r->sig);
}

/* A LINK is the block of the signal its target will owe the linker, and
 * carries that signal's WAKE. */
static tr__sigres link_carried(tr__msg *m)
{
    tr__sigres r = {.sig = m, .wake = NULL};
    memcpy(&r.wake, m->data, sizeof r.wake);
    return r;
}

static void ties_free(tr_actor *a)
{
    tr__ties *t = ties(a);
    if (!t)
        return;
    /* DOWN blocks and links' signals still kept: only at teardown (an exit
     * sends them). */
    TR__HMAP_EACH(&t->watchers, e)
        if (e->p)
            tr__pool_free_now(e->p);
    TR__HMAP_EACH(&t->links, e) {
        tr__pool_free_now(e->p);
        tr__pool_free_now(link_res(e).wake);
    }
    tr__hmap_free(&t->links);
    tr__hmap_free(&t->watchers);
    tr__hmap_free(&t->watching);
}

/* ---- reasons -------------------------------------------------------------------- */

void tr__down_fill(tr_down *d, tr_pid pid, tr_exit_kind kind, int code, const char *text)
{
    memset(d, 0, sizeof *d);
    d->pid = pid;
    d->kind = (int32_t)kind;
    d->code = code;
    if (!text)
        text = kind == TR_EXIT_ERROR ? tr_strerror(code) : tr_exit_kind_name(kind);
    /* A bounded copy (d is zeroed): snprintf's format machinery was 3% of
     * an actor's life in bench/skynet. */
    memcpy(d->text, text, strnlen(text, sizeof d->text - 1));
}

tr__msg *tr__down_block(tr__loop *cur)
{
    return tr__msg_new(cur ? &cur->pool : NULL, TR__MSG_DOWN, TR_PID_NONE, 0, TR__DOWN_ROOM);
}

/* DOWN(ref, reason, result) from `from` to the watcher `to`; a plain
 * thread's watch (tr_rt_wait_exit: `to` is TR_PID_NONE, `ref` its waiter)
 * gets the reason, not the result (and its wait ends with TR_ENOMEM if
 * even that cannot be copied). `spare`: a block with TR__DOWN_ROOM, made
 * in advance, which this takes (NULL: allocate). False if the DOWN could
 * not be made: only without a spare. */
static bool send_down(tr__loop *L, tr_pid from, tr_pid to, tr_ref ref, const tr_down *d,
                      const void *result, uint32_t result_len, tr__msg *spare)
{
    if (to == TR_PID_NONE) {
        tr__pool_free(&L->pool, spare);
        tr__waiter_complete(L->rt, ref, from, TR_MSG_DOWN, d, sizeof *d);
        return true;
    }
    tr_actor *w = tr__lookup(L->rt, to);
    if (!w) {
        tr__pool_free(&L->pool, spare);
        return true; /* the watcher has ended too */
    }
    tr__msg *m = NULL;
    if (result_len || !spare)
        m = tr__msg_new(&L->pool, TR__MSG_DOWN, from, 0, TR__DOWN_ROOM + result_len);
    if (m) {
        tr__pool_free(&L->pool, spare);
    } else if (spare) { /* without the result, rather than not at all */
        m = spare;
        result_len = 0;
    } else {
        return false;
    }
    m->kind = TR__MSG_DOWN;
    m->from = from;
    m->type = 0;
    m->flags = 0;
    m->len = (uint32_t)(TR__DOWN_ROOM + result_len);
    memcpy(m->data, &ref, sizeof ref);
    tr_down dd = *d;
    dd.result_len = result_len;
    memcpy(m->data + sizeof ref, &dd, sizeof dd);
    if (result_len)
        memcpy(m->data + sizeof ref + sizeof dd, result, result_len);
    m->to_gen = TR_PID_GEN(to);
    tr__msg_post(L, w, m);
    return true;
}

/* ---- the public calls ---------------------------------------------------------- */

int tr__ties_reserve_watch(tr__loop *L, tr_actor *a)
{
    tr__ties *t = ties_of(L, a);
    if (!t)
        return TR_ENOMEM;
    return tr__hmap_reserve(&t->watching, 1) ? 0 : TR_ENOMEM;
}

tr_ref tr__ties_watch(tr__loop *L, tr_actor *a, tr_pid pid)
{
    tr_ref ref = ck_pr_faa_64(&L->rt->next_ref, 1) + 1;
    tr__hmap_put(&ties(a)->watching, ref, pid, NULL); /* room was reserved */
    return ref;
}

/* Records `watcher` (its monitor `ref`) with the block of its DOWN; if
 * it cannot be recorded, the block goes back at once as a DOWN with
 * TR_ENOMEM. False then. */
static bool watcher_add(tr__loop *L, tr_actor *a, tr_pid watcher, tr_ref ref, tr__msg *down)
{
    tr__ties *t = ties_of(L, a);
    if (t && tr__hmap_put(&t->watchers, watcher_key(watcher, ref), watcher, down))
        return true;
    tr_down d;
    tr__down_fill(&d, tr__actor_pid(a), TR_EXIT_ERROR, TR_ENOMEM, "no memory for a monitor");
    send_down(L, tr__actor_pid(a), watcher, ref, &d, NULL, 0, down);
    return false;
}

int tr__ties_add_watcher(tr__loop *L, tr_actor *a, tr_pid watcher, tr_ref ref, tr__msg *down)
{
    return watcher_add(L, a, watcher, ref, down) ? 0 : TR_ENOMEM;
}

int tr_monitor(tr_actor *self, tr_pid pid, tr_ref *ref_out)
{
    if (!self || !ref_out)
        return TR_EINVAL;
    tr__loop *L = tr__running_loop(self);
    if (!L)
        return TR_EWRONGTHREAD;
    if (self->status != TR__RUNNING)
        return TR_ESTOPPED;
    tr__ties *t = ties_of(L, self);
    if (!t)
        return TR_ENOMEM;
    tr_ref ref = ck_pr_faa_64(&L->rt->next_ref, 1) + 1;
    if (!tr__hmap_put(&t->watching, ref, pid, NULL))
        return TR_ENOMEM;
    tr_pid me = tr__actor_pid(self);
    /* The MONITOR's block is the DOWN's (see the notes above). */
    unsigned char room[TR__DOWN_ROOM] = {0};
    memcpy(room, &ref, sizeof ref);
    int rc = tr__post_control(L->rt, L, me, pid, TR__MSG_MONITOR, room, sizeof room);
    if (rc == TR_ENOACTOR) {
        /* Already gone: the DOWN comes at once — or, without memory for
         * it, the monitor fails. */
        tr_down d;
        tr__down_fill(&d, pid, TR_EXIT_ERROR, TR_ENOACTOR, "noproc");
        if (!send_down(L, pid, me, ref, &d, NULL, 0, NULL)) {
            tr__hmap_take(&t->watching, ref, NULL);
            return TR_ENOMEM;
        }
    } else if (rc != 0) {
        tr__hmap_take(&t->watching, ref, NULL);
        return rc;
    }
    *ref_out = ref;
    return 0;
}

int tr_demonitor(tr_actor *self, tr_ref ref)
{
    tr__loop *L;
    int self_rc = tr__self_loop(self, &L);
    if (self_rc != 0)
        return self_rc;
    tr__ties *t = ties(self);
    tr__hent e;
    if (!t || !tr__hmap_take(&t->watching, ref, &e))
        return TR_ENOTFOUND;
    tr_pid target = e.val;
    tr__post_control(L->rt, L, tr__actor_pid(self), target, TR__MSG_DEMONITOR, &ref,
                    sizeof ref);
    return 0;
}

int tr_link(tr_actor *self, tr_pid pid)
{
    tr__loop *L;
    int self_rc = tr__self_loop(self, &L);
    if (self_rc != 0)
        return self_rc;
    tr_pid me = tr__actor_pid(self);
    if (pid == me)
        return TR_EINVAL;
    if (self->status != TR__RUNNING)
        return TR_ESTOPPED;
    tr__ties *t = ties_of(L, self);
    if (!t)
        return TR_ENOMEM;
    if (pid == TR_PID_NONE)
        return TR_ENOACTOR; /* as for any pid of no actor */
    if (tr__hmap_get(&t->links, pid))
        return 0; /* linked: its signals were made then */
    tr_actor *other = tr__lookup(L->rt, pid);
    if (!other)
        return TR_ENOACTOR;
    /* Everything the link will ever send, now (see the notes): our signal
     * to it, kept in our record; its signal to us, which travels as the
     * LINK, carrying its WAKE; the LINK's own WAKE. All, or nothing done. */
    tr__sigres mine = {0}, theirs = {0};
    tr__msg *wake = NULL;
    if (!tr__hmap_reserve(&t->links, 1) || tr__sigres_make(L, &mine) != 0 ||
        tr__sigres_make(L, &theirs) != 0 ||
        !(wake = tr__msg_new(&L->pool, TR__MSG_WAKE, me, 0, 0))) {
        tr__sigres_drop(L, &mine);
        tr__sigres_drop(L, &theirs);
        return TR_ENOMEM;
    }
    link_put(&t->links, pid, &mine); /* room was reserved */
    tr__msg *m = theirs.sig;
    m->kind = TR__MSG_LINK;
    m->len = sizeof theirs.wake;
    memcpy(m->data, &theirs.wake, sizeof theirs.wake);
    /* The slot found above, even if its actor has ended since: the LINK
     * is then answered for the dead (tr__ties_dropped). */
    tr__control_push(L, other, me, pid, m, wake);
    return 0;
}

int tr_unlink(tr_actor *self, tr_pid pid)
{
    tr__loop *L;
    int self_rc = tr__self_loop(self, &L);
    if (self_rc != 0)
        return self_rc;
    tr__ties *t = ties(self);
    tr__hent e;
    if (!t || !tr__hmap_take(&t->links, pid, &e))
        return TR_ENOTFOUND;
    /* The signal we owed it becomes the UNLINK: the other end hears of
     * the unlink whatever memory is left, and drops the signal it owed us. */
    tr__sigres r = link_res(&e);
    tr_actor *other = tr__lookup(L->rt, pid);
    if (!other) { /* it has ended: nothing to tell */
        tr__sigres_drop(L, &r);
        return 0;
    }
    r.sig->kind = TR__MSG_UNLINK;
    r.sig->len = 0;
    tr__control_push(L, other, tr__actor_pid(self), pid, r.sig, r.wake);
    return 0;
}

/* ---- the runtime's side ----------------------------------------------------------- */

void tr__ties_unlinked(tr__loop *L, tr_actor *a, tr_pid pid)
{
    tr__ties *t = ties(a);
    tr__hent e;
    if (t && tr__hmap_take(&t->links, pid, &e)) {
        tr__sigres r = link_res(&e);
        tr__sigres_drop(L, &r); /* the signal we owed it */
    }
}

void tr__ties_record_free_now(tr__msg *m)
{
    if (m->kind == TR__MSG_LINK)
        tr__pool_free_now(link_carried(m).wake);
    tr__pool_free_now(m);
}

/* LINK, UNLINK, MONITOR and DEMONITOR arrive on the signal queue, in order
 * with exit signals; DOWN arrives in the mailbox, in order with mail. */
void tr__ties_handle(tr__loop *L, tr_actor *a, tr__msg *m)
{
    tr__ties *t = ties_of(L, a);
    tr_ref ref = 0;
    if (m->kind != TR__MSG_LINK && m->kind != TR__MSG_UNLINK)
        memcpy(&ref, m->data, sizeof ref);
    switch (m->kind) {
    case TR__MSG_LINK: {
        /* The LINK is the signal we will owe the linker (see the notes). */
        tr__sigres r = link_carried(m);
        if (t && tr__hmap_get(&t->links, m->from)) {
            tr__sigres_drop(L, &r); /* linked already: that record has its own */
        } else if (!t || !link_put(&t->links, m->from, &r)) {
            /* No record, no link: it goes back at once, so that the linker
             * is not left with half of one. */
            tr__sigres_post(L->rt, L, &r, tr__actor_pid(a), m->from, TR_EXIT_ERROR,
                            TR_ENOMEM, "no memory for a link", TR__SIG_LINK);
        }
        return; /* m: kept, sent back or freed */
    }
    case TR__MSG_UNLINK:
        tr__ties_unlinked(L, a, m->from);
        break;
    case TR__MSG_MONITOR:
        /* Its block becomes the DOWN: kept with the record (or sent now,
         * TR_ENOMEM, if the record cannot be made). A plain thread's watch
         * needs none: its wait ends with a copy, or TR_ENOMEM. */
        if (m->from == TR_PID_NONE || m->len < TR__DOWN_ROOM) {
            watcher_add(L, a, m->from, ref, NULL);
            break;
        }
        watcher_add(L, a, m->from, ref, m);
        return;
    case TR__MSG_DEMONITOR: {
        tr__hent *e = t ? tr__hmap_get(&t->watchers, watcher_key(m->from, ref)) : NULL;
        if (e && e->val == m->from) {
            tr__pool_free(&L->pool, e->p); /* the DOWN it kept */
            tr__hmap_remove(&t->watchers, e);
        }
        break;
    }
    case TR__MSG_DOWN: {
        tr__hent *e = t ? tr__hmap_get(&t->watching, ref) : NULL;
        if (!e || e->val != m->from || a->status != TR__RUNNING)
            break; /* demonitored, or we are ending */
        tr__hmap_remove(&t->watching, e);
        const tr_down *d = (const tr_down *)(m->data + sizeof ref);
        tr_msg pub = {.from = m->from, .type = TR_MSG_DOWN, .ref = ref,
                      .len = (uint32_t)(sizeof *d + d->result_len), .data = d};
        tr__actor_deliver(L, a, &pub, m);
        return;
    }
    }
    tr__msg_free(&L->pool, m);
}

void tr__ties_dropped(tr__loop *L, tr_actor *slot, tr__msg *m)
{
    tr_pid dead = tr__pid_make(L->rt->node, m->to_gen, slot->index);
    if (m->kind == TR__MSG_LINK) {
        /* The LINK is the signal back, made by the linker (see the notes). */
        tr__sigres r = link_carried(m);
        tr__sigres_post(L->rt, L, &r, dead, m->from, TR_EXIT_ERROR, TR_ENOACTOR, "noproc",
                        TR__SIG_LINK);
        return;
    }
    tr_down d;
    tr__down_fill(&d, dead, TR_EXIT_ERROR, TR_ENOACTOR, "noproc");
    tr_ref ref;
    memcpy(&ref, m->data, sizeof ref);
    /* Its own block is the DOWN (but a plain thread's, which needs none). */
    bool room = m->from != TR_PID_NONE && m->len >= TR__DOWN_ROOM;
    send_down(L, dead, m->from, ref, &d, NULL, 0, room ? m : NULL);
    if (!room)
        tr__pool_free(&L->pool, m);
}

void tr__ties_exit(tr__loop *L, tr_actor *a)
{
    tr__ties *t = ties(a);
    if (!t)
        return;
    tr_pid me = tr__actor_pid(a);
    tr_exit_kind kind = (tr_exit_kind)a->exit_kind;
    const char *text = kind == TR_EXIT_ERROR ? a->ext->exit_text : NULL;
    TR__HMAP_EACH(&t->links, e) { /* each made with the link: cannot fail */
        tr__sigres r = link_res(e);
        tr__sigres_post(L->rt, L, &r, me, e->key, kind, a->exit_code, text, TR__SIG_LINK);
        e->p = NULL;
        e->val = 0;
    }
    tr_down d;
    if (t->watchers.n) /* the reason, once for every watcher */
        tr__down_fill(&d, me, kind, a->exit_code, text);
    TR__HMAP_EACH(&t->watchers, e) {
        send_down(L, me, e->val, e->key & ~PLAIN_WATCH, &d, a->ext->result,
                  a->ext->result_len, e->p); /* the block it kept: cannot fail */
        e->p = NULL;
    }
    /* Our own monitors: the targets can forget us. */
    TR__HMAP_EACH(&t->watching, e)
        tr__post_control(L->rt, L, me, e->val, TR__MSG_DEMONITOR, &e->key, sizeof(tr_ref));
    ties_free(a);
}

void tr__ties_teardown(tr_actor *a)
{
    ties_free(a);
}

/* ---- a plain thread waiting for an actor's end ------------------------------------ */

typedef struct wait_exit_ctx {
    tr_pid pid;
    tr_ref ref;
} wait_exit_ctx;

/* A MONITOR from no actor: the target answers the waiter `ref` (send_down). */
static int wait_exit_send(tr_runtime *rt, tr_ref ref, void *ctx)
{
    wait_exit_ctx *c = ctx;
    c->ref = ref;
    int rc = tr__post_control(rt, NULL, TR_PID_NONE, c->pid, TR__MSG_MONITOR, &ref, sizeof ref);
    if (rc == TR_ENOACTOR) { /* gone already: the answer is at hand */
        tr_down d;
        tr__down_fill(&d, c->pid, TR_EXIT_ERROR, TR_ENOACTOR, "noproc");
        tr__waiter_complete(rt, ref, c->pid, TR_MSG_DOWN, &d, sizeof d);
        return 0;
    }
    return rc;
}

int tr_rt_wait_exit(tr_runtime *rt, tr_pid pid, tr_duration timeout_ms, tr_down *out)
{
    if (!rt || !out || pid == TR_PID_NONE || pid == rt->root ||
        tr__duration_arg(timeout_ms, TR__NO_DEFAULT, &timeout_ms) != 0)
        return TR_EINVAL;
    wait_exit_ctx c = {.pid = pid, .ref = 0};
    tr_rt_reply r;
    int rc = tr__waiter_run(rt, timeout_ms, wait_exit_send, &c, &r);
    if (rc == TR_ETIMEDOUT) /* the target can forget us */
        tr__post_control(rt, NULL, TR_PID_NONE, pid, TR__MSG_DEMONITOR, &c.ref, sizeof c.ref);
    if (rc != 0)
        return rc;
    memcpy(out, r.data, sizeof *out);
    out->result_len = 0;
    tr_rt_reply_free(&r);
    return 0;
}
