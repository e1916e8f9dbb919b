/*
 * exit.c — how an actor ends: exit requests, exit signals at the message
 * boundary, the exit sequence, and what the slot keeps afterwards.
 *
 * Design notes
 * ------------
 * An exit begins (begin) when a handler fails, asks to exit, or an exit
 * signal acts: the actor stops taking mail, what it owns stops acting
 * (subsys.h), and its children are stopped one at a time, newest first (a
 * shutdown signal, then that child's CHILD_EXIT, with a kill timer for a
 * child that lingers). When the last child has gone it finishes: terminate
 * runs, an abnormal end is reported, what it owns is released (its name,
 * the answers it owes, ...), links and monitors learn the reason, the
 * parent is told, the generation is retired, queued mail is dropped (its
 * requests answered for the dead) and the slot goes back on its loop's
 * free list.
 *
 * Signals: the strongest pending signal wins; an actor that traps exits
 * receives the trappable ones as TR_MSG_EXIT messages instead.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actor.h"

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
        x->exit_text = text ? tr__strdup(text) : NULL;
    }
}

int tr_exit(tr_actor *self, tr_exit_kind kind)
{
    if (!self || (kind != TR_EXIT_NORMAL && kind != TR_EXIT_SHUTDOWN &&
                  kind != TR_EXIT_KILLED))
        return TR_EINVAL;
    tr__loop *L = tr__running_loop(self);
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
    tr__loop *L = tr__running_loop(self);
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
    if (len && (!x || !(copy = tr__malloc(len))))
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
    tr__loop *L;
    int self_rc = tr__self_loop(self, &L);
    if (self_rc != 0)
        return self_rc;
    self->trap_exits = on != 0;
    return 0;
}

static void finish_exit(tr__loop *L, tr_actor *a);
static bool tell_parent(tr__loop *L, tr_actor *a);

/* The root also waits for plain-thread spawns it has not adopted yet. */
static bool root_may_finish(tr_runtime *rt, tr_actor *a)
{
    return !(a->flags & TR__ROOT) || ck_pr_load_32(&rt->root_pending) == 0;
}

/* Ends an exiting actor once its last child has gone. */
void tr__exit_maybe_finish(tr__loop *L, tr_actor *a)
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
/* Sends the signal `bit` (TR__STOP_OWED_SHUTDOWN or _KILL) to child `c`
 * of `a`; out of memory it is owed (the bit stays set) and `a` is looked
 * at again a millisecond later (tr__exit_retry): a child's stop never
 * depends on one allocation. */
static void signal_child(tr__loop *L, tr_actor *a, tr__child *c, uint8_t bit)
{
    bool kill = bit == TR__STOP_OWED_KILL;
    int rc = tr__signal(L->rt, L, tr__actor_pid(a), c->pid,
                        kill ? TR_EXIT_KILLED : TR_EXIT_SHUTDOWN, 0, NULL,
                        kill ? TR__SIG_UNTRAPPABLE : 0);
    if (rc == TR_ENOMEM) {
        c->stopping |= bit;
        tr__loop_retry(L, a);
    } else {
        c->stopping &= (uint8_t)~bit;
    }
}

int tr__stop_child(tr__loop *L, tr_actor *self, tr_pid child, tr_exit_kind kind)
{
    for (tr__child *c = self->children; c; c = c->next)
        if (c->pid == child) {
            signal_child(L, self, c,
                         kind == TR_EXIT_KILLED ? TR__STOP_OWED_KILL : TR__STOP_OWED_SHUTDOWN);
            return 0;
        }
    return TR_ENOACTOR;
}

void tr__exit_retry(tr__loop *L, tr_actor *a)
{
    if (a->status == TR__FREE) { /* ended, still owing its parent the notice */
        if (tell_parent(L, a))
            tr__slot_release(L, a);
        else
            tr__loop_retry(L, a);
        return;
    }
    for (tr__child *c = a->children; c; c = c->next) {
        if (c->stopping & TR__STOP_OWED_KILL) /* a kill supersedes a shutdown */
            c->stopping &= (uint8_t)~TR__STOP_OWED_SHUTDOWN;
        if (c->stopping & TR__STOP_OWED_KILL)
            signal_child(L, a, c, TR__STOP_OWED_KILL);
        else if (c->stopping & TR__STOP_OWED_SHUTDOWN)
            signal_child(L, a, c, TR__STOP_OWED_SHUTDOWN);
    }
    tr__exit_stop_next_child(L, a);
    tr__exit_maybe_finish(L, a);
}

void tr__exit_stop_next_child(tr__loop *L, tr_actor *a)
{
    tr__child *c = a->children;
    if (a->status != TR__EXITING || !c || (c->stopping & TR__STOP_SENT))
        return;
    /* The root's adoptions travel as mail, which its stop signal overtakes:
     * it starts on its children only once every counted spawn is in the
     * list, so the newest really goes first. It looks again every
     * millisecond meanwhile, rather than count on the WAKE of a spawn that
     * gave up (tr__root_unpend), which may not have been allocated. */
    if (!root_may_finish(L->rt, a)) {
        tr__loop_retry(L, a);
        return;
    }
    tr__children_sort(a);
    c = a->children;
    if (c->stopping & TR__STOP_SENT)
        return;
    c->stopping |= TR__STOP_SENT;
    signal_child(L, a, c, TR__STOP_OWED_SHUTDOWN);
    if (c->shutdown_ms == TR_INFINITE)
        return;
    /* If it has not ended by then (it traps exits and lingers), kill it;
     * without memory for the timer, now. */
    uint64_t id;
    tr__timer *t = tr__timer_new(&L->timers, &L->pool, 0, &id);
    if (!t) {
        signal_child(L, a, c, TR__STOP_OWED_KILL);
        return;
    }
    t->kind = TR__TIMER_KILL;
    t->to = c->pid;
    if (tr__actor_remember_timer(L, a, t) != 0) {
        tr__timer_free(&L->timers, &L->pool, t);
        signal_child(L, a, c, TR__STOP_OWED_KILL);
        return;
    }
    tr__timer_arm(&L->timers, t, tr__deadline_after(L->rt, c->shutdown_ms));
    TR__STAT_ADD(L, timers, 1);
    tr__loop_timers_changed(L);
}

/* Starts ending `a` with the reason already stored in it. */
void tr__exit_begin(tr__loop *L, tr_actor *a)
{
    if (a->status != TR__RUNNING)
        return;
    a->status = TR__EXITING;
    /* What it owns stops acting: timers, calls, jobs, subscriptions,
     * task groups (subsys.h), newest kind first. */
    if (a->owned)
        tr__owned_stop(L, a);
    tr__exit_stop_next_child(L, a);
    tr__exit_maybe_finish(L, a);
}

void tr__exit_with(tr__loop *L, tr_actor *a, tr_exit_kind kind, int code,
                      const char *text)
{
    if (a->status != TR__RUNNING)
        return;
    set_exit(L, a, kind, code, text);
    tr__exit_begin(L, a);
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

/*
 * Tells `a`'s parent of its end: a CHILD_EXIT carrying the parent's record
 * of it. True when it was sent, or there is no parent to tell (the root; an
 * adoption that failed). False when it could not be allocated: then the
 * dead slot keeps parent and parent_node, is not released, and waits on
 * its loop's retry list (tr__exit_retry) until the notice can be made. So
 * a parent always hears of a child's end — its own end and a stop wait on
 * it — and no live actor holds a block in advance for it (that cost every
 * idle actor 72 bytes).
 */
static bool tell_parent(tr__loop *L, tr_actor *a)
{
    tr__child *node = a->parent_node;
    if (a->parent == TR_PID_NONE || !node)
        return true;
    tr__msg *m = tr__msg_new(&L->pool, TR__MSG_CHILD_EXIT, TR_PID_NONE, 0, sizeof node);
    if (!m)
        return false;
    memcpy(m->data, &node, sizeof node);
    /* node->pid: the child's pid, set by the spawn and never changed. */
    tr__notice_post(L->rt, L, m, node->pid, a->parent);
    a->parent_node = NULL;
    return true;
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
    if (a->owned)
        tr__owned_release(L, a);
    /* Links and monitors that reached us before our end see its reason. */
    tr__signals_process(L, a);
    /* No longer alive, before anyone hears of it: whoever sees its DOWN or
     * its wait end may spawn in its place within max_actors. */
    TR__STAT_ADD(L, actors, -1);
    tr__metrics_unbind(L, a);
    tr__live_put(rt);
    tr__ties_exit(L, a); /* links and watchers learn the reason (and result) */
    a->trap_exits = 0;
    if (a->parent_node && a->parent_node->permanent) {
        tr_down d;
        tr__down_fill(&d, pid, (tr_exit_kind)a->exit_kind, a->exit_code,
                      a->exit_kind == TR_EXIT_ERROR ? exit_text(a) : NULL);
        tr__runtime_permanent_ended(rt, &d);
    }
    /* The parent hears of the end (a parent outlives its children); out of
     * memory, the dead slot owes it and waits (see tell_parent). */
    bool owed = !tell_parent(L, a);
    tr__loop_retry_cancel(L, a); /* before its link field serves the free list */
    bool root = (a->flags & TR__ROOT) != 0;
    if (a->state) {
        tr__pool_free(&L->pool, a->state);
        a->state = NULL;
    }
    if (a->ext) { /* what is left: the reason's text and the result */
        free(a->ext->exit_text);
        free(a->ext->result);
        if (a->ext->owned)
            tr__pool_free(&L->pool, a->ext->owned);
        tr__pool_free(&L->pool, a->ext);
        a->ext = NULL;
    }
    a->status = TR__FREE;
    a->flags = 0;
    ck_pr_store_ptr(&a->beh, NULL);
    a->receive = NULL;
    /* Retire the generation: from here on every lookup of `pid` fails and
     * messages already queued for it are dropped. */
    ck_pr_store_64(&a->pid, 0);
    ck_pr_store_32(&a->gen, ck_pr_load_32(&a->gen) + 1);
    tr__mpsc_node *n;
    while ((n = tr__mpsc_pop(&a->mb)) != NULL)
        tr__msg_drop(L, a, (tr__msg *)n);
    tr__signals_process(L, a); /* now stale: answered for the dead */
    if (owed)
        tr__loop_retry(L, a); /* released once its parent has been told */
    else
        tr__slot_release(L, a);
    if (root)
        tr__runtime_finished(rt);
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
        tr__ties_unlinked(L, a, from); /* the other end has ended */
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

/*
 * Drains the signal queue, in arrival order. A record for an incarnation
 * that has ended is answered for the dead (tr__ties_dropped). A record for
 * an incarnation whose INIT has not run yet stops the drain: it and those
 * behind it wait in the queue until handle_init drains them. Then the
 * strongest exit signal, if any, ends the actor.
 */
void tr__signals_process(tr__loop *L, tr_actor *a)
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
                tr__ties_dropped(L, a, m); /* takes m */
            else
                tr__pool_free(&L->pool, m);
        } else {
            signal_record(L, a, m, &best, &best_d);
        }
    }
    if (best && a->status == TR__RUNNING)
        tr__exit_with(L, a, (tr_exit_kind)best_d.kind, best_d.code,
                  best_d.kind == TR_EXIT_ERROR ? best_d.text : NULL);
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
        tr__ties_record_free_now((tr__msg *)n);
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
