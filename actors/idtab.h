/*
 * idtab.h — a generation-checked table of pointers, the one behind timer
 * ids and plain-thread call refs (nng's id tables are the model).
 *
 * An id is (generation << 32) | index. A slot's generation moves on every
 * time it is freed (never to 0), so an id kept after its entry went — a
 * timer that fired, a call that gave up — finds nothing instead of the
 * slot's next occupant. Generations have 31 bits, so an id is never 0 and
 * never has its top bit set: a caller may use that bit to keep ids apart
 * from other keys (links.c's watchers). Free slots are chained through `next_free`.
 * Not thread-safe: the owner (a loop, or whoever holds the lock around it)
 * serializes access.
 *
 * The pid table and a loop's call table are not built on it: their
 * entries live inline and sit on the message path (see pidtab.c, call.c).
 */
#ifndef TR_IDTAB_H
#define TR_IDTAB_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define TR__IDTAB_NONE UINT32_MAX

typedef struct tr__idslot {
    void *p;            /* NULL while free */
    uint32_t gen;       /* moves on at every free: 1..2^31-1 */
    uint32_t next_free; /* free list, TR__IDTAB_NONE: end */
} tr__idslot;

typedef struct tr__idtab {
    tr__idslot *v;
    uint32_t n, cap;    /* slots used so far, allocated */
    uint32_t free_head; /* TR__IDTAB_NONE: no free slot */
} tr__idtab;

static inline void tr__idtab_init(tr__idtab *t)
{
    memset(t, 0, sizeof *t);
    t->free_head = TR__IDTAB_NONE;
}

static inline void tr__idtab_destroy(tr__idtab *t)
{
    free(t->v);
    tr__idtab_init(t);
}

/* Makes sure the next tr__idtab_add cannot fail: false when out of memory
 * (or 2^32 - 1 slots are in use). */
static inline bool tr__idtab_reserve(tr__idtab *t)
{
    if (t->free_head != TR__IDTAB_NONE || t->n < t->cap)
        return true;
    if (t->cap >= TR__IDTAB_NONE / 2)
        return false;
    uint32_t cap = t->cap ? t->cap * 2 : 64;
    tr__idslot *v = tr__realloc(t->v, (size_t)cap * sizeof *v);
    if (!v)
        return false;
    t->v = v;
    t->cap = cap;
    return true;
}

/* Stores `p` (not NULL) and returns its id; reserve first. */
static inline uint64_t tr__idtab_add(tr__idtab *t, void *p)
{
    uint32_t idx = t->free_head;
    if (idx != TR__IDTAB_NONE) {
        t->free_head = t->v[idx].next_free;
    } else {
        idx = t->n++;
        t->v[idx].gen = 1;
    }
    t->v[idx].p = p;
    return ((uint64_t)t->v[idx].gen << 32) | idx;
}

/* The pointer stored under `id`, or NULL (freed, never made, stale). */
static inline void *tr__idtab_find(const tr__idtab *t, uint64_t id)
{
    uint32_t idx = (uint32_t)id;
    if (idx >= t->n || t->v[idx].gen != (uint32_t)(id >> 32))
        return NULL;
    return t->v[idx].p;
}

/* Frees the slot of `id` (which must be live; its index alone will do):
 * its generation moves on. */
static inline void tr__idtab_remove(tr__idtab *t, uint64_t id)
{
    uint32_t idx = (uint32_t)id;
    tr__idslot *s = &t->v[idx];
    s->p = NULL;
    s->gen = s->gen < INT32_MAX ? s->gen + 1 : 1;
    s->next_free = t->free_head;
    t->free_head = idx;
}

/* Calls fn(p, ud) for every live entry (teardown, draining). */
static inline void tr__idtab_each(const tr__idtab *t, void (*fn)(void *p, void *ud), void *ud)
{
    for (uint32_t i = 0; i < t->n; i++)
        if (t->v[i].p)
            fn(t->v[i].p, ud);
}

#endif /* TR_IDTAB_H */
