/*
 * actor.h — what the four files of an actor's life share: the send path
 * (send.c), spawning (spawn.c), the exit sequence (exit.c) and running an
 * actor's turn (dispatch.c). Internal to actors/; subsystems use subsys.h.
 */
#ifndef TR_ACTOR_H
#define TR_ACTOR_H

#include "subsys.h"
#include "workers.h"

/* send.c: drops a message the receiver `a` will not handle (it has ended,
 * or is ending), counts user mail, and answers a request's caller for the
 * dead. Home loop. */
void tr__msg_drop(tr__loop *L, tr_actor *a, tr__msg *m);

/* A counted message leaves the bounded mailbox. It was counted in the
 * slot's bound record, which is never unset. */
static inline void tr__msg_uncount(tr_actor *a)
{
    tr__bound *b = ck_pr_load_ptr(&a->bound);
    ck_pr_dec_int(&b->count);
}

/* spawn.c: gives a free slot back to its loop (or retires it). */
void tr__slot_release(tr__loop *L, tr_actor *a);

/* exit.c, on the actor's home loop. */
/* Starts ending `a` with the reason already stored in it. */
void tr__exit_begin(tr__loop *L, tr_actor *a);
/* Stores the reason (if `a` runs) and begins its exit. */
void tr__exit_with(tr__loop *L, tr_actor *a, tr_exit_kind kind, int code, const char *text);
/* Stops the next child of an exiting actor, newest first. */
void tr__exit_stop_next_child(tr__loop *L, tr_actor *a);
/* Ends an exiting actor once its last child has gone. */
void tr__exit_maybe_finish(tr__loop *L, tr_actor *a);
/* Drains the signal queue, in arrival order, and acts on the strongest
 * exit signal. */
void tr__signals_process(tr__loop *L, tr_actor *a);

/* The slot is reserved for an incarnation whose INIT has not run yet. */
static inline bool tr__awaiting_init(tr_actor *a)
{
    return a->status == TR__FREE && (ck_pr_load_32(&a->gen) & 1u);
}

#endif /* TR_ACTOR_H */
