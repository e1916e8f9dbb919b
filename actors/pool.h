/*
 * pool.h — per-loop block pools: the memory of messages, child records and
 * actor state.
 *
 * Every block starts with an 8-byte header naming its origin pool and size
 * class. A block is allocated by one thread and often freed by another (a
 * message is allocated by its sender and freed by its receiver), so:
 *
 *  - alloc and same-pool free touch only the owner's free lists: no atomic;
 *  - a loop that frees another loop's block batches it on a private chain
 *    per origin and size class, and hands the chain over with one CAS when
 *    it is long enough or at the end of the turn (tr__pool_flush);
 *  - the owner takes a class's whole remote stack of chains with one
 *    exchange when its free list for that class runs dry, and splices each
 *    chain in whole: the chain's first block records its tail and length,
 *    so the owner touches two blocks per chain, not every block (walking
 *    blocks another core just wrote is a chain of dependent cache misses:
 *    22% of the time of bench/mailbox). Push-by-CAS plus take-all-by-
 *    exchange is ABA-free (the Treiber stack is never popped one at a time).
 *  - a block of a loop's pool freed on a plain thread goes to free().
 *
 * Blocks larger than the largest class, and blocks allocated on plain
 * threads, come from malloc and go back to free.
 */
#ifndef TR_POOL_H
#define TR_POOL_H

#include <stddef.h>
#include <stdint.h>

#define TR__POOL_MIN_SHIFT 6  /* smallest block: 64 bytes */
#define TR__POOL_CLASSES 11   /* 64 B .. 64 KiB */
#define TR__POOL_HEAP 0xffffu /* origin of malloc'd blocks */
#define TR__POOL_BATCH 64     /* remote frees handed over per CAS */

typedef struct tr__pool tr__pool;

/* A chain of blocks being returned to one origin pool (owner-only). */
typedef struct tr__pool_chain {
    void *head;
    void *tail;
    uint32_t n;
} tr__pool_chain;

struct tr__pool {
    /* Other loops push chains of returned blocks here, per class (CAS);
     * the owner takes a class's all at once. */
    void *remote[TR__POOL_CLASSES] __attribute__((aligned(64)));
    /* Owner-only below. */
    void *free_list[TR__POOL_CLASSES] __attribute__((aligned(64)));
    uint32_t nfree[TR__POOL_CLASSES];
    uint16_t index;
    uint16_t npeers;
    tr__pool **peers;      /* every loop's pool, indexed by origin */
    tr__pool_chain *out;   /* [npeers][classes]: blocks to hand back to each origin */
};

int tr__pool_init(tr__pool *p, uint16_t index, tr__pool **peers, uint16_t npeers);
/* Frees every block the pool holds (free lists, remote stack, chains).
 * Only when no thread uses any pool of the runtime any more. */
void tr__pool_destroy(tr__pool *p);

/* `size` usable bytes, 8-aligned. `p` is the calling thread's pool, or NULL
 * on a plain thread. NULL when out of memory. */
void *tr__pool_alloc(tr__pool *p, size_t size);

/* Returns a block. `cur` is the calling thread's pool or NULL. */
void tr__pool_free(tr__pool *cur, void *ptr);

/* Hands batched remote frees back to their origins. Owner only. */
void tr__pool_flush(tr__pool *p);

/* Teardown only (no other thread running): releases a block to malloc. */
void tr__pool_free_now(void *ptr);

#endif /* TR_POOL_H */
