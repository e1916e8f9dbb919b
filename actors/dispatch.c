/*
 * dispatch.c — running an actor: a turn takes up to `batch` messages from
 * its mailbox (signals first, at every boundary) and hands each to the
 * right place — INIT, a child's exit, an adoption, links and monitors, a
 * channel's PULL, or the receive callback (after the interception point
 * and the observer, subsys.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actor.h"

/* ---- handling messages --------------------------------------------------- */

/*
 * An actor whose INIT failed (its init returned an error, or the runtime
 * had no memory to set it up) ends with that failure, and nothing of its
 * behaviour runs again: not receive, not terminate (its init cleaned up;
 * its state may be freed memory to it now). So the exit begins before its
 * signal queue is read: signals queued meanwhile (an exit signal it would
 * trap, a link's end) find it no longer running and neither reach receive
 * as TR_MSG_EXIT nor replace the failure as its reason, while monitors and
 * links set meanwhile are recorded and told this failure when it has
 * ended (finish_exit reads the queue before it tells them).
 */
static void init_failed(tr__loop *L, tr_actor *a, int code, const char *text)
{
    tr__exit_with(L, a, TR_EXIT_ERROR, code, text);
    if (a->status == TR__EXITING) /* children of its init still stopping */
        tr__signals_process(L, a);
}

static void handle_init(tr__loop *L, tr_actor *a, tr__msg *m)
{
    tr__init *in = (tr__init *)m->data;
    uint32_t iflags = m->type;
    tr_pid parent = (iflags & TR__INIT_ADOPT) ? L->rt->root : m->from;
    tr__init_extras x;
    tr__init_parse(m, &x);
    tr_ref monitor = x.monitor;
    const unsigned char *arg = x.arg;
    size_t arg_len = x.arg_len;
    tr__msg *started = x.started; /* the start notice, made by the spawn */
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
    /* a->owned is kept: the previous incarnation's end cleared it, and a
     * resource may be given to an actor before its init has run (a socket
     * handed to a child just spawned, tr_sock_give). */
    a->trap_exits = 0;
    TR__STAT_ADD(L, actors, 1);
    if (in->beh == &tr__root_behavior)
        a->flags |= TR__ROOT;
    tr__metrics_bind(L, a);
    if (iflags & TR__INIT_ADOPT) {
        /* Tell the root about us before anything else we send it, so our
         * CHILD_EXIT can never overtake the adoption. */
        tr__child *node = in->node;
        in->node = NULL; /* now the root's */
        /* Made by the spawn: the adoption cannot be lost (the root waits
         * for it before it finishes, so it is there to take it). */
        memcpy(x.adopt->data, &node, sizeof node);
        if (!tr__notice_post(L->rt, L, x.adopt, tr__actor_pid(a), parent)) {
            free(node);
            a->parent_node = NULL;
            tr__root_unpend(L->rt, L);
        }
    }
    const tr_behavior *beh = in->beh;
    if (monitor && tr__ties_add_watcher(L, a, parent, monitor, x.down) != 0) {
        tr__pool_free(&L->pool, started);
        tr__pool_free(&L->pool, m);
        init_failed(L, a, TR_ENOMEM, "no memory for the parent's monitor");
        return;
    }
    if (beh->state_size) {
        a->state = tr__pool_alloc(&L->pool, beh->state_size);
        if (!a->state) {
            tr__pool_free(&L->pool, started);
            tr__pool_free(&L->pool, m);
            init_failed(L, a, TR_ENOMEM, "no memory for the actor's state");
            return;
        }
        memset(a->state, 0, beh->state_size);
    }
    int rc = 0;
    if (beh->init) {
        L->current = a;
        tr__loop_busy(L, a, 0);
        rc = beh->init(a, a->state, arg_len ? arg : NULL, arg_len);
        tr__loop_idle(L);
    }
    tr__pool_free(&L->pool, m); /* the argument has been read */
    if (rc != 0) {
        tr__pool_free(&L->pool, started);
        init_failed(L, a, rc, "init failed");
        return;
    }
    a->flags |= TR__INIT_OK;
    if (started) /* made by the spawn: the start notice cannot be lost */
        tr__notice_post(L->rt, L, started, tr__actor_pid(a), parent);
    /* Monitors and links set meanwhile see the end below, even when init
     * already asked to exit. */
    tr__signals_process(L, a);
    if (a->flags & TR__EXIT_REQ)
        tr__exit_begin(L, a);
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
    tr__exit_stop_next_child(L, a);
    tr__exit_maybe_finish(L, a);
}

static void handle_adopt(tr__loop *L, tr_actor *a, tr__msg *m)
{
    tr__child *node;
    memcpy(&node, m->data, sizeof node);
    tr__pool_free(&L->pool, m);
    /* Adoptions from several loops and threads arrive in any order. The
     * list goes in at the head in constant time whatever the order (a
     * sorted insert was linear: quadratic for many top-level spawns), and
     * is sorted once when its order is needed (tr__children_sort). */
    if (a->children && (int32_t)(a->children->seq - node->seq) > 0)
        a->flags |= TR__UNSORTED; /* the head is newer */
    node->prev = NULL;
    node->next = a->children;
    if (a->children)
        a->children->prev = node;
    a->children = node;
    ck_pr_dec_32(&L->rt->root_pending);
    tr__exit_stop_next_child(L, a); /* a late adoption is the newest: it goes first */
}

/* Merges two lists sorted newest first (by wrapping seq). */
static tr__child *merge_newest_first(tr__child *x, tr__child *y)
{
    tr__child head = {0}, *t = &head;
    while (x && y) {
        tr__child **from = (int32_t)(x->seq - y->seq) >= 0 ? &x : &y;
        t->next = *from;
        t = *from;
        *from = (*from)->next;
    }
    t->next = x ? x : y;
    return head.next;
}

void tr__children_sort(tr_actor *a)
{
    if (!(a->flags & TR__UNSORTED))
        return;
    a->flags &= ~TR__UNSORTED;
    /* Bottom-up merge sort of the singly linked chain (stable, O(n log n),
     * no recursion), then the back links. */
    tr__child *runs[64] = {0}; /* runs[i]: a sorted run of 2^i, or NULL */
    tr__child *c = a->children;
    while (c) {
        tr__child *next = c->next;
        c->next = NULL;
        int i = 0;
        for (; runs[i]; i++) {
            c = merge_newest_first(runs[i], c);
            runs[i] = NULL;
        }
        runs[i] = c;
        c = next;
    }
    tr__child *all = NULL;
    for (int i = 0; i < 64; i++)
        if (runs[i])
            all = merge_newest_first(runs[i], all);
    a->children = all;
    tr__child *prev = NULL;
    for (c = all; c; prev = c, c = c->next)
        c->prev = prev;
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
    if (m->type == TR_MSG_CALL_FAILED)
        TR__M_ADD(L, call_failures, 1); /* a live call, failed by its callee's end */
    return true;
}

/*
 * Hands `pub` to the actor's receive callback and acts on the outcome.
 * `m` is the message behind it (freed here), or NULL for a message the
 * runtime made up (a trapped exit signal).
 */
/* The runtime's own uses of reserved message types, ahead of receive. */
static bool intercepted(tr__loop *L, tr_actor *a, const tr_msg *cpub)
{
    /* Every caller's pub is its own local copy: a kind may rewrite it. */
    tr_msg *pub = (tr_msg *)cpub;
    if (pub->type == TR__MSG_DESCRIBE && (pub->flags & TR_MSG_REQUEST)) {
        tr__describe(L, a, pub);
        return true;
    }
    return tr__owned_intercept(L, a, pub); /* claimed types, then a's kinds */
}

/*
 * A reserved request (the supervisor's protocol) that an actor which does
 * not serve them left unanswered: the runtime refuses it now, TR_EINVAL in
 * the reply's form, rather than keep it owed for as long as the actor
 * lives, so the caller's wait ends (subsys.h, tr__serve_reserved).
 * Returns `m` for the caller to free, or NULL if its block went to the
 * call's failure (no memory for the refusal).
 */
static __attribute__((noinline, cold)) tr__msg *refuse_unserved(tr__loop *L, tr_actor *a,
                                                               const tr_msg *pub, tr__msg *m)
{
    tr__refusal r;
    size_t len = tr__msgtype_refusal(pub->type, TR_EINVAL, &r);
    L->cur_msg = m; /* answered as the request being handled */
    L->cur_pub = pub;
    tr__reply_raw(a, pub, pub->type, &r, len);
    L->cur_msg = NULL;
    L->cur_pub = NULL;
    if (!(m->flags & TR__MF_REQUEST))
        return m;
    L->cur_reply_nomem = false;
    tr__request_fail(L, tr__actor_pid(a), m, TR_EXIT_ERROR, TR_ENOMEM);
    return NULL;
}

/* The handler's call under an observer (subsys.h): its hooks around it,
 * and its fault, which may stand in for the handler. */
static __attribute__((noinline)) int observed(tr__loop *L, tr_actor *a, const tr_msg *pub,
                                              const tr__observer *obs)
{
    if (obs->dispatch)
        obs->dispatch(obs->ud, a, pub);
    int fault = obs->fault ? obs->fault(obs->ud, a, pub) : 0;
    int rc = fault == TR__FAULT_DROP ? 0 : fault;
    if (fault == 0) {
        tr__loop_busy(L, a, pub->type);
        rc = a->receive(a, a->state, pub);
        tr__loop_idle(L);
    }
    if (obs->done)
        obs->done(obs->ud, a, pub, rc);
    return rc;
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
    int rc;
    if (__builtin_expect(obs != NULL, 0)) {
        rc = observed(L, a, pub, obs);
    } else {
        tr__loop_busy(L, a, pub->type);
        rc = a->receive(a, a->state, pub);
        tr__loop_idle(L);
    }
    L->cur_msg = NULL;
    L->cur_pub = NULL;
    if (m && (m->flags & TR__MF_REQUEST)) {
        /* Not answered (tr_reply clears the flag of the request it answers
         * while it is handled): owed until tr_reply or the end of `a` (its
         * failure), or failed now if the answer could not be made; a
         * reserved request that `a` does not serve is refused now. */
        if (L->cur_reply_nomem) {
            L->cur_reply_nomem = false;
            tr__request_fail(L, tr__actor_pid(a), m, TR_EXIT_ERROR, TR_ENOMEM);
            m = NULL;
        } else if (__builtin_expect(pub->type > TR_MSG_USER_MAX, 0) &&
                   !(a->flags & TR__SERVES)) {
            m = refuse_unserved(L, a, pub, m);
        } else {
            tr__request_owe(L, a, m);
            m = NULL;
        }
    }
    TR__STAT_ADD(L, handled, 1);
    a->handled++;
    if (rc != 0)
        tr__exit_with(L, a, TR_EXIT_ERROR, rc, NULL);
    else if (a->flags & TR__EXIT_REQ)
        tr__exit_begin(L, a);
    return m;
}

void tr__actor_deliver(tr__loop *L, tr_actor *a, const tr_msg *pub, tr__msg *m)
{
    if ((m = deliver(L, a, pub, m)) != NULL)
        tr__msg_free(&L->pool, m);
}

/* Handles `m`; returns it if the caller is to free it (a user message
 * that reached the handler), else NULL (freed or kept here). */
static tr__msg *handle(tr__loop *L, tr_actor *a, tr__msg *m)
{
    if (m->to_gen != ck_pr_load_32(&a->gen)) {
        tr__msg_drop(L, a, m); /* meant for an incarnation that has ended */
        return NULL;
    }
    switch (m->kind) {
    case TR__MSG_USER: {
        if (m->flags & TR__MF_COUNTED) { /* out of the bounded mailbox */
            tr__msg_uncount(a);
            m->flags &= (uint8_t)~TR__MF_COUNTED;
        }
        /* An exiting actor still answers the tree walk. */
        if (a->status != TR__RUNNING &&
            !(a->status == TR__EXITING && m->type == TR__MSG_DESCRIBE)) {
            tr__msg_drop(L, a, m);
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
        tr__signals_process(L, a);
        tr__exit_stop_next_child(L, a);
        tr__exit_maybe_finish(L, a);
        return NULL;
    default: /* DOWN */
        tr__ties_handle(L, a, m);
        return NULL;
    }
}

/* One turn of `a`: at most `batch` messages. */
static inline __attribute__((always_inline)) void run_batch(tr__loop *L, tr_actor *a)
{
    unsigned batch = L->rt->opts.batch;
    tr__msg *spent = NULL; /* handled, not yet freed */
    for (unsigned n = 0; n < batch; n++) {
        if (tr__mpsc_maybe_nonempty(&a->sigq)) {
            L->current = a;
            tr__signals_process(L, a);
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
    tr__loop_run_done(L, a, (tr__mpsc_maybe_nonempty(&a->sigq) && !tr__awaiting_init(a)) ||
                                !tr__mpsc_mark_empty(&a->mb));
}

/* Messages in `a`'s mailbox, counted up to TR__DEPTH_WALK_MAX. */
static uint64_t depth_bounded(tr_actor *a)
{
    uint64_t depth = a->mb.tail != &a->mb.stub;
    for (tr__mpsc_node *n = ck_pr_load_ptr(&a->mb.tail->next); n && depth < TR__DEPTH_WALK_MAX;
         n = ck_pr_load_ptr(&n->next))
        depth += n != &a->mb.stub;
    return depth;
}

/* A turn timed for the metrics (one in TR__SAMPLE_TURNS) begins: the
 * actor's behaviour entry, message count and the time are kept in L->m,
 * and its mailbox is measured (rationed by time: TR__DEPTH_WALK_NS). */
static __attribute__((noinline)) void sample_begin(tr__loop *L, tr_actor *a)
{
    L->m.sample_left = TR__SAMPLE_TURNS;
    L->m.sample_bs = a->bstat; /* NULL: nothing to sample (the root, metrics off) */
    if (!L->m.sample_bs)
        return;
    uint64_t t0 = uv_hrtime();
    L->m.depth = 0;
    if (t0 - L->m.walked_at >= TR__DEPTH_WALK_NS) {
        L->m.depth = depth_bounded(a);
        L->m.walked_at = t0;
        t0 = uv_hrtime();
    }
    L->m.sample_t0 = t0;
    L->m.sample_h0 = a->handled;
}

static __attribute__((noinline)) void sample_end(tr__loop *L, tr_actor *a)
{
    tr__bstat *bs = L->m.sample_bs;
    L->m.sample_bs = NULL;
    /* Unless it ended in the turn (a slot taken again counts afresh). */
    if (a->bstat == bs && a->handled >= L->m.sample_h0)
        tr__metrics_sample(bs, a->handled - L->m.sample_h0, uv_hrtime() - L->m.sample_t0,
                           L->m.depth);
}

void tr__actor_run(tr__loop *L, tr_actor *a)
{
    /* The metrics cost a turn a countdown: the messages a behaviour
     * handled are its actors' own counters, summed when read (metrics.c). */
    if (__builtin_expect(--L->m.sample_left == 0, 0))
        sample_begin(L, a);
    run_batch(L, a);
    if (__builtin_expect(L->m.sample_bs != NULL, 0))
        sample_end(L, a);
}
