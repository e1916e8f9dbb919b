/*
 * mpsc.h — intrusive multi-producer single-consumer queue: the mailbox of
 * every actor and the queue through which other threads hand a loop the
 * actors that have mail.
 *
 * Design notes
 * ------------
 * The algorithm is Dmitry Vyukov's intrusive MPSC node-based queue
 * ("Intrusive MPSC node-based queue", 1024cores.net, 2010), with the stub
 * node embedded in the queue, plus the "mark empty" trick of the Pony
 * runtime's message queue (libponyrt/actor/messageq.c):
 *
 *  - Producers link a node with one atomic exchange on `head` and one store
 *    to the previous node's `next`. No CAS loop, no lock: wait-free push.
 *  - The single consumer walks from `tail`; it never touches `head` except
 *    when the queue looks empty.
 *  - Between a producer's exchange and its store to `prev->next` the queue is
 *    briefly "inconsistent": the consumer sees no next node although head
 *    moved. pop() then returns NULL and the caller retries later; it is never
 *    a lost node.
 *  - Mark empty: when the consumer finds the queue empty it CASes `head` from
 *    the stub to (stub | 1). The next producer's exchange returns the marked
 *    pointer, so exactly one producer learns that it made the queue
 *    non-empty, and that producer schedules the owner (puts the actor on its
 *    loop's run queue). This folds "is the actor scheduled?" into the one
 *    atomic a send already pays for.
 *  - Watch: a consumer that is about to spin idle may turn the mark into
 *    (stub | 3), "empty, and its consumer is watching it" (tr__mpsc_watch).
 *    The producer whose exchange takes that value does not schedule the
 *    consumer: the watcher sees the stub's link appear (tr__mpsc_watch_taken)
 *    and schedules itself, or takes the watch back with a CAS that fails
 *    exactly when a producer took it first (tr__mpsc_unwatch). So scheduling
 *    still passes to exactly one party, and a producer sending to a
 *    spinning loop pays one exchange instead of two (the loop's inject
 *    queue), and the loop learns of the message from the mailbox's own line.
 *
 * Memory orders (x86-64 is TSO; ck_pr_* are explicit about what they order):
 *  - push: the exchange on head is a full barrier (ck_pr_fas_ptr); the store
 *    to prev->next is preceded by ck_pr_fence_store so the node's contents
 *    (written before) are visible before the link. Pairs with the
 *    ck_pr_fence_load after the consumer's load of ->next.
 *  - mark_empty: a CAS (full barrier), pairs with the producer's exchange.
 *
 * ThreadSanitizer cannot see ck's atomics; each node handed over is
 * annotated (handoff.h).
 */
#ifndef TR_MPSC_H
#define TR_MPSC_H

#include <ck_pr.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "handoff.h"

typedef struct tr__mpsc_node {
    struct tr__mpsc_node *next;
} tr__mpsc_node;

typedef struct tr__mpsc {
    /* Written by producers (exchange); may carry the empty mark in bit 0. */
    tr__mpsc_node *head;
    /* Consumer-only. */
    tr__mpsc_node *tail;
    tr__mpsc_node stub;
} tr__mpsc;

#define TR__MPSC_MARK ((uintptr_t)1)
#define TR__MPSC_WATCH ((uintptr_t)2) /* with MARK only */
#define TR__MPSC_BITS (TR__MPSC_MARK | TR__MPSC_WATCH)

static inline tr__mpsc_node *tr__mpsc_unmark(tr__mpsc_node *n)
{
    return (tr__mpsc_node *)((uintptr_t)n & ~TR__MPSC_BITS);
}

/* Initialises an empty queue; `marked` starts it in the "empty and not
 * scheduled" state (mailboxes), otherwise plain empty (run queues). */
static inline void tr__mpsc_init(tr__mpsc *q, bool marked)
{
    q->stub.next = NULL;
    q->tail = &q->stub;
    q->head = marked ? (tr__mpsc_node *)((uintptr_t)&q->stub | TR__MPSC_MARK)
                     : &q->stub;
}

/*
 * Appends `n`. Any thread. Returns true if the queue was marked empty and
 * not watched, i.e. this push made it non-empty and the caller must
 * schedule the consumer.
 */
static inline bool tr__mpsc_push_chain(tr__mpsc *q, tr__mpsc_node *first,
                                       tr__mpsc_node *last);

static inline bool tr__mpsc_push(tr__mpsc *q, tr__mpsc_node *n)
{
    n->next = NULL;
    return tr__mpsc_push_chain(q, n, n);
}

/*
 * Appends the nodes first..last, already linked through `next`, with one
 * exchange: to the consumer they arrive as if pushed one by one, in order.
 * Returns true as tr__mpsc_push does.
 */
static inline bool tr__mpsc_push_chain(tr__mpsc *q, tr__mpsc_node *first,
                                       tr__mpsc_node *last)
{
    last->next = NULL;
#ifdef TR__TSAN
    /* Each node's last access by this thread (reading its link) before
     * its release. */
    for (tr__mpsc_node *n = first, *next; n; n = next) {
        next = n->next;
        tr__handoff_release(n);
    }
#endif
    tr__mpsc_node *prev = ck_pr_fas_ptr(&q->head, last);
    /* MARK alone: we now own scheduling. MARK | WATCH: the consumer does. */
    bool schedule = ((uintptr_t)prev & TR__MPSC_BITS) == TR__MPSC_MARK;
    if (schedule)
        tr__handoff_acquire(q); /* pairs with mark_empty and unwatch */
    prev = tr__mpsc_unmark(prev);
    ck_pr_fence_store(); /* the nodes before the link; pairs with pop's fence_load */
    ck_pr_store_ptr(&prev->next, first);
    return schedule;
}

/*
 * Removes the oldest node, or returns NULL if the queue is empty or a
 * producer is half-way through a push (try again later). Consumer only.
 */
static inline tr__mpsc_node *tr__mpsc_pop(tr__mpsc *q)
{
    tr__mpsc_node *tail = q->tail;
    tr__mpsc_node *next = ck_pr_load_ptr(&tail->next);
    ck_pr_fence_load(); /* pairs with push's fence_store */
    if (tail == &q->stub) {
        if (next == NULL)
            return NULL;
        q->tail = next;
        tail = next;
        next = ck_pr_load_ptr(&next->next);
        ck_pr_fence_load();
    }
    if (next != NULL) {
        q->tail = next;
        tr__handoff_acquire(tail);
        /* The next pop reads `next`, most often a line another core wrote:
         * start fetching it while the caller handles this one. */
        __builtin_prefetch(next);
        return tail;
    }
    /* `tail` is the last node we can see. If head moved past it, a producer
     * is between its exchange and its link: come back later. */
    if (tail != tr__mpsc_unmark(ck_pr_load_ptr(&q->head)))
        return NULL;
    /* Re-insert the stub behind `tail` so `tail` can be handed out. */
    tr__mpsc_push(q, &q->stub);
    next = ck_pr_load_ptr(&tail->next);
    ck_pr_fence_load();
    if (next != NULL) {
        q->tail = next;
        tr__handoff_acquire(tail);
        return tail;
    }
    return NULL;
}

/*
 * The node the next pop would return, left in the queue; NULL if there is
 * none to see. Consumer only. A pop right after may still return NULL (the
 * node is the last one and a push is half-way through): try again later.
 */
static inline tr__mpsc_node *tr__mpsc_peek(tr__mpsc *q)
{
    tr__mpsc_node *n = q->tail;
    if (n == &q->stub) {
        n = ck_pr_load_ptr(&n->next);
        ck_pr_fence_load(); /* pairs with push's fence_store */
        if (n == NULL)
            return NULL;
    }
    tr__handoff_acquire(n);
    return n;
}

/* True if a pop might find something (a hint; consumer only). */
static inline bool tr__mpsc_maybe_nonempty(tr__mpsc *q)
{
    return ck_pr_load_ptr(&q->tail->next) != NULL ||
           tr__mpsc_unmark(ck_pr_load_ptr(&q->head)) != q->tail;
}

/*
 * Marks a drained queue "empty and not scheduled". Consumer only, after
 * pop() returned NULL. Returns false if a node arrived meanwhile (or a push
 * is in progress): the consumer must stay scheduled and look again.
 */
static inline bool tr__mpsc_mark_empty(tr__mpsc *q)
{
    if (q->tail != &q->stub)
        return false;
    tr__mpsc_node *stub = &q->stub;
    /* Hands scheduling to the next producer; pairs with push's acquire. */
    tr__handoff_release(q);
    return ck_pr_cas_ptr(&q->head, stub,
                         (void *)((uintptr_t)stub | TR__MPSC_MARK));
}

/*
 * Watching (see the design notes). Consumer only, and only while it runs
 * nothing that could push to the queue itself.
 *
 * tr__mpsc_watch: if the queue is marked empty, marks it watched and
 * returns true; otherwise (a push already took the mark) returns false.
 */
static inline bool tr__mpsc_watch(tr__mpsc *q)
{
    void *marked = (void *)((uintptr_t)&q->stub | TR__MPSC_MARK);
    return ck_pr_cas_ptr(&q->head, marked,
                         (void *)((uintptr_t)&q->stub | TR__MPSC_BITS));
}

/*
 * The first node pushed since the watch began, once its producer has linked
 * it, else NULL. Non-NULL means a push has taken the watch: the consumer
 * owns scheduling and need not unwatch.
 */
static inline tr__mpsc_node *tr__mpsc_watch_taken(tr__mpsc *q)
{
    return ck_pr_load_ptr(&q->stub.next); /* the queue is empty: tail is the stub */
}

/*
 * Ends a watch. Returns true if a push took it: the consumer now owns
 * scheduling (the queue is non-empty, or about to be, and unmarked).
 * Returns false if none came: the queue is marked empty again, and the
 * next push schedules the consumer as usual.
 */
static inline bool tr__mpsc_unwatch(tr__mpsc *q)
{
    void *watched = (void *)((uintptr_t)&q->stub | TR__MPSC_BITS);
    tr__handoff_release(q); /* as mark_empty: pairs with push's acquire */
    return !ck_pr_cas_ptr(&q->head, watched,
                          (void *)((uintptr_t)&q->stub | TR__MPSC_MARK));
}

#endif /* TR_MPSC_H */
