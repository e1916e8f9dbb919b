/*
 * timer.h — per-loop timers: one binary min-heap per loop, driven by one
 * uv_timer_t per loop (never one libuv timer per troupe timer).
 *
 * A timer is a pooled entry holding its deadline (runtime clock, ns), its
 * heap position, its owner and what to do when it fires: send a message
 * (one-shot or periodic) or time out a call. Entries are named by 64-bit
 * ids (generation << 32 | index into the loop's entry table), so a stale id
 * — a timer that already fired or was cancelled — is recognised and
 * rejected rather than touched. Insert, cancel and pop are O(log n); a
 * million pending timers cost about 100 bytes each.
 *
 * All of this is owned by the loop's thread.
 */
#ifndef TR_TIMER_H
#define TR_TIMER_H

#include "core.h"
#include "idtab.h"

enum tr__timer_kind {
    TR__TIMER_SEND = 0, /* send_after / send_interval */
    TR__TIMER_CALL,     /* a pending call's limit: times it out */
    TR__TIMER_KILL      /* a child's shutdown timeout: kills it */
};

typedef struct tr__timer {
    uint64_t deadline;   /* runtime clock, ns; UINT64_MAX: never */
    uint64_t seq;        /* FIFO among equal deadlines */
    uint64_t period;     /* ns; 0: one-shot */
    uint32_t heap_pos;   /* index in the heap, or UINT32_MAX if not in it */
    uint32_t id_index;   /* index in the loop's entry table */
    uint8_t kind;
    uint8_t reserved[7];
    tr_actor *owner;     /* the actor whose exit cancels this timer */
    struct tr__timer *owner_prev, *owner_next; /* the owner's timer list */
    tr_pid to;           /* SEND: target; CALL: the callee */
    tr_ref call;         /* CALL: the call it times out */
    uint32_t type;
    uint32_t len;
    unsigned char data[]; /* SEND: the payload copied at creation */
} tr__timer;

typedef struct tr__timers {
    tr__timer **heap;
    uint32_t n, cap;
    tr__idtab ids;       /* timer ids (idtab.h) */
    uint64_t seq;
} tr__timers;

void tr__timers_init(tr__timers *ts);
/* Frees every entry and the tables (teardown). */
void tr__timers_destroy(tr__timers *ts, tr__pool *pool);

/* Allocates an entry with `len` payload bytes and an id; not yet armed. */
tr__timer *tr__timer_new(tr__timers *ts, tr__pool *pool, size_t len, uint64_t *id);
/* Puts `t` in the heap at `deadline`. */
void tr__timer_arm(tr__timers *ts, tr__timer *t, uint64_t deadline);
/* Takes `t` out of the heap (if in it). */
void tr__timer_disarm(tr__timers *ts, tr__timer *t);
/* Disarms, frees the entry and retires its id. */
void tr__timer_free(tr__timers *ts, tr__pool *pool, tr__timer *t);
/* The live entry with `id`, or NULL. */
tr__timer *tr__timer_find(tr__timers *ts, uint64_t id);
/* The earliest armed entry, or NULL. */
static inline tr__timer *tr__timer_top(const tr__timers *ts)
{
    return ts->n ? ts->heap[0] : NULL;
}

#endif /* TR_TIMER_H */
