/*
 * hmap.h — the runtime's one hash table: 64-bit keys to a pointer and a
 * 64-bit value, for the lookups that must not be linear in what an actor
 * holds (its links and monitors, a task group's running members, the
 * registry's names).
 *
 * Design notes
 * ------------
 * Open addressing with linear probing in one array of entries: a lookup
 * touches one or two cache lines, a table costs one allocation. The
 * capacity is a power of two, at least 4, kept at most 3/4 full; keys are
 * spread by a multiplication (Fibonacci hashing), so sequential keys —
 * refs, pids, job ids are counters — land apart. Removal shifts the
 * following entries of the cluster back (Knuth's Algorithm R) instead of
 * leaving tombstones, so a table that sees endless put/remove traffic (a
 * parent spawning and hearing of children) never degrades or rehashes.
 *
 * Key 0 marks an empty entry: callers use keys that are never 0 (refs,
 * pids and ids all start at 1; a string's hash is forced odd). A key is
 * unique in its table; a caller that maps two kinds of key into one table
 * makes them disjoint (task groups set the top bit for jobs).
 *
 * Not thread-safe: a table belongs to one loop, or to whoever holds the
 * lock around it (the registry). Callers that must not fail at a point
 * reserve room before it (tr__hmap_reserve).
 */
#ifndef TR_HMAP_H
#define TR_HMAP_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "alloc.h"

typedef struct tr__hent {
    uint64_t key; /* 0: empty */
    uint64_t val;
    void *p;
} tr__hent;

typedef struct tr__hmap {
    tr__hent *e;
    uint32_t cap; /* 0 (nothing allocated) or a power of two >= 4 */
    uint32_t n;
} tr__hmap;

static inline uint32_t tr__hmap_slot(uint64_t key, uint32_t cap)
{
    return (uint32_t)((key * 0x9e3779b97f4a7c15ull) >> 32) & (cap - 1);
}

static inline tr__hent *tr__hmap_get(const tr__hmap *h, uint64_t key)
{
    if (!h->n || !key)
        return NULL;
    for (uint32_t i = tr__hmap_slot(key, h->cap);; i = (i + 1) & (h->cap - 1)) {
        tr__hent *e = &h->e[i];
        if (e->key == key)
            return e;
        if (!e->key)
            return NULL;
    }
}

/* Places an entry known to be absent, in a table with room. */
static inline tr__hent *tr__hmap_place(tr__hmap *h, uint64_t key)
{
    uint32_t i = tr__hmap_slot(key, h->cap);
    while (h->e[i].key)
        i = (i + 1) & (h->cap - 1);
    h->n++;
    h->e[i].key = key;
    return &h->e[i];
}

/* Makes room for `extra` more entries: afterwards that many puts of new
 * keys cannot fail. false when out of memory (the table is unchanged). */
static inline bool tr__hmap_reserve(tr__hmap *h, uint32_t extra)
{
    uint64_t want = (uint64_t)h->n + extra;
    if (want * 4 <= (uint64_t)h->cap * 3)
        return true;
    uint64_t cap = h->cap ? h->cap : 4;
    while (want * 4 > cap * 3)
        cap *= 2;
    if (cap > UINT32_MAX / 2 + 1)
        return false;
    tr__hent *e = tr__calloc(cap, sizeof *e);
    if (!e)
        return false;
    tr__hmap old = *h;
    h->e = e;
    h->cap = (uint32_t)cap;
    h->n = 0;
    for (uint32_t i = 0; i < old.cap; i++)
        if (old.e[i].key)
            *tr__hmap_place(h, old.e[i].key) = old.e[i];
    free(old.e);
    return true;
}

/* Adds `key` (not 0, not present) with `val` and `p`; false when out of
 * memory. */
static inline bool tr__hmap_put(tr__hmap *h, uint64_t key, uint64_t val, void *p)
{
    if (!tr__hmap_reserve(h, 1))
        return false;
    tr__hent *e = tr__hmap_place(h, key);
    e->val = val;
    e->p = p;
    return true;
}

/* Removes the entry `e` points at (from tr__hmap_get): the entries after it
 * in its cluster that would no longer be found move back. */
static inline void tr__hmap_remove(tr__hmap *h, tr__hent *e)
{
    uint32_t mask = h->cap - 1;
    uint32_t hole = (uint32_t)(e - h->e);
    for (uint32_t i = (hole + 1) & mask; h->e[i].key; i = (i + 1) & mask) {
        uint32_t home = tr__hmap_slot(h->e[i].key, h->cap);
        /* Movable into the hole when its home is not in (hole, i]. */
        if (((i - home) & mask) >= ((i - hole) & mask)) {
            h->e[hole] = h->e[i];
            hole = i;
        }
    }
    h->e[hole] = (tr__hent){0};
    h->n--;
}

/* Removes `key`; true (with its entry copied to *out when out is not NULL)
 * if it was there. */
static inline bool tr__hmap_take(tr__hmap *h, uint64_t key, tr__hent *out)
{
    tr__hent *e = tr__hmap_get(h, key);
    if (!e)
        return false;
    if (out)
        *out = *e;
    tr__hmap_remove(h, e);
    return true;
}

static inline void tr__hmap_free(tr__hmap *h)
{
    free(h->e);
    *h = (tr__hmap){0};
}

/* Every entry, as `tr__hent *E`; the body must not change the table. */
#define TR__HMAP_EACH(h, E)                                                    \
    for (tr__hent *E = (h)->e, *E##_end_ = (h)->e ? (h)->e + (h)->cap : NULL; \
         E != E##_end_; E++)                                                   \
        if (E->key)

#endif
