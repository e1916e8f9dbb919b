/*
 * pool.h — per-loop block pools: the memory of messages and actor state.
 *
 * Every block starts with an 8-byte header naming its origin pool and size
 * class. A block is allocated by one thread and often freed by another (a
 * message is allocated by its sender and freed by its receiver), so:
 *
 *  - alloc and same-pool free touch only the owner's free lists: no atomic;
 *  - a loop that frees another loop's block batches it on a private chain
 *    per origin and size class, and hands the chain over with one CAS when
 *    it is long enough (TR__POOL_BATCH blocks or TR__POOL_BATCH_BYTES,
 *    whichever comes first) or when the loop is about to sleep
 *    (tr__pool_flush). Not at the end of every turn: a loop in a
 *    request/reply exchange would then hand back one block per turn, and
 *    the other loop's next allocation would take it straight back — a
 *    cache line fetched from the other core on every hop;
 *  - the owner takes a class's whole remote stack of chains with one
 *    exchange when its free list for that class runs dry, and splices each
 *    chain in whole: the chain's first block records its tail and length,
 *    so the owner touches two blocks per chain, not every block (walking
 *    blocks another core just wrote is a chain of dependent cache misses:
 *    22% of the time of bench/mailbox). Push-by-CAS plus take-all-by-
 *    exchange is ABA-free (the Treiber stack is never popped one at a time).
 *  - a block of a loop's pool freed on a plain thread is pushed back to its
 *    pool the same way (a chain of one), or goes to free() (large classes).
 *
 * Small classes (64 B .. 2 KiB: messages, actor state, timers) are carved
 * from 16 KiB slabs, so every block starts on a cache line and no two blocks
 * share one. Blocks used to be single mallocs, 16-byte aligned: a 64-byte
 * block straddled two lines and shared each with a neighbour, so a message
 * in flight to another core shared a line with whatever its sender wrote
 * next (a timer entry, the next message), and cross-loop latency depended
 * on where the heap happened to put them (docs/performance.md). Slab blocks go back to the pool, never to malloc: a pool
 * keeps what it has needed at its peak, and frees its slabs with the
 * runtime. Larger classes are still single mallocs (a block of 4 KiB and
 * more spans many lines), capped per free list, the excess freed.
 *
 * Blocks larger than the largest class, and blocks allocated on plain
 * threads, come from malloc and go back to free.
 *
 * The two common cases — take a block off the owner's free list, put one of
 * its own blocks back — are inline (a message costs one of each); the rest
 * is in pool.c. callgrind, fjthroughput on one loop: 62 -> ~25 instructions
 * per message for the pair.
 */
#ifndef TR_POOL_H
#define TR_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "alloc.h"

#define TR__POOL_MIN_SHIFT 6  /* smallest block: 64 bytes */
#define TR__POOL_CLASSES 11   /* 64 B .. 64 KiB */
#define TR__POOL_HEAP 0xffffu /* origin of malloc'd blocks */
#define TR__POOL_BATCH 64     /* remote frees handed over per CAS, at most */
#define TR__POOL_BATCH_BYTES (16u << 10) /* ...or fewer, of a large class */
#define TR__POOL_SLAB_CLASSES 6 /* 64 B .. 2 KiB come from slabs */
#define TR__POOL_SLAB_MAX ((size_t)1 << (TR__POOL_MIN_SHIFT + TR__POOL_SLAB_CLASSES - 1))
#define TR__POOL_SLAB_BYTES ((size_t)16 << 10) /* a slab, aligned to its size */

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
    uint32_t cap[TR__POOL_CLASSES]; /* free-list cap per class (pool.c: class_cap) */
    uint32_t batch[TR__POOL_CLASSES]; /* remote frees per hand-over, per class */
    uint16_t index;
    uint16_t npeers;
    tr__pool **peers;      /* every loop's pool, indexed by origin */
    tr__pool_chain *out;   /* [npeers][classes]: blocks to hand back to each origin */
    struct tr__slab *slabs; /* every slab this pool has carved */
};

int tr__pool_init(tr__pool *p, uint16_t index, tr__pool **peers, uint16_t npeers);
/* Frees every block the pool holds (free lists, remote stack, chains).
 * Only when no thread uses any pool of the runtime any more. */
void tr__pool_destroy(tr__pool *p);

/* Every block's header, in the 8 bytes before it. */
typedef struct tr__blkhdr {
    uint16_t origin; /* pool index, or TR__POOL_HEAP */
    uint8_t cls;
    uint8_t pad[5];
} tr__blkhdr;

/*
 * A class is a power-of-two block, header included. A slab block is exactly
 * that. malloc keeps a word of its own in front of every chunk (glibc: the
 * chunk size), so a larger class's blocks are requests of class_size -
 * MALLOC_WORD bytes: a request of 2^k - 8 bytes fills a 2^k-byte chunk
 * exactly, and freed chunks tile.
 */
#define TR__MALLOC_WORD sizeof(size_t)

/*
 * The largest request any pool function accepts, in usable bytes: a block,
 * its header and malloc's word must add up without wrapping. Larger
 * requests get NULL, as an allocation that cannot succeed; they never
 * reach the size arithmetic (a size near SIZE_MAX once wrapped to the
 * smallest class, and its caller then wrote SIZE_MAX bytes into it). The
 * public API refuses such sizes before they get here (max_payload,
 * TR_STATE_SIZE_MAX); this is the floor under every caller.
 */
#define TR__POOL_ALLOC_MAX ((size_t)PTRDIFF_MAX - 64)

/* The class of a request of `size` usable bytes: TR__POOL_CLASSES (none: it
 * comes from malloc, or is refused) above the largest class. */
static inline int tr__pool_class_of(size_t size)
{
    /* The largest class's usable bytes (a malloc'd class: 8 for the
     * header, 8 for malloc's word). Above it no class, and no addition
     * below that could wrap. One well-predicted compare on the hot path. */
    if (size > ((size_t)1 << (TR__POOL_MIN_SHIFT + TR__POOL_CLASSES - 1)) -
                   sizeof(tr__blkhdr) - TR__MALLOC_WORD)
        return TR__POOL_CLASSES;
    size_t total = size + sizeof(tr__blkhdr);
    if (total > TR__POOL_SLAB_MAX)
        total += TR__MALLOC_WORD;
    if (total <= ((size_t)1 << TR__POOL_MIN_SHIFT))
        return 0;
    int bits = 64 - __builtin_clzll((unsigned long long)(total - 1));
    return bits - TR__POOL_MIN_SHIFT;
}

void *tr__pool_alloc_slow(tr__pool *p, size_t size);
void tr__pool_free_slow(tr__pool *cur, void *ptr);

/* `size` usable bytes, 8-aligned. `p` is the calling thread's pool, or NULL
 * on a plain thread. NULL when out of memory, or when `size` exceeds
 * TR__POOL_ALLOC_MAX. */
static inline void *tr__pool_alloc(tr__pool *p, size_t size)
{
    /* Injected failures (alloc.h): one load and a branch not taken. */
    if (tr__alloc_fails())
        return NULL;
    int c = tr__pool_class_of(size);
    if (p && c < TR__POOL_CLASSES) {
        void *b = p->free_list[c];
        if (b) {
            p->free_list[c] = *(void **)b;
            p->nfree[c]--;
            return b;
        }
    }
    return tr__pool_alloc_slow(p, size);
}

/* Returns a block. `cur` is the calling thread's pool or NULL. */
static inline void tr__pool_free(tr__pool *cur, void *ptr)
{
    if (ptr && cur) {
        const tr__blkhdr *h = (const tr__blkhdr *)ptr - 1;
        if (h->origin == cur->index && cur->nfree[h->cls] < cur->cap[h->cls]) {
            *(void **)ptr = cur->free_list[h->cls];
            cur->free_list[h->cls] = ptr;
            cur->nfree[h->cls]++;
            return;
        }
    }
    tr__pool_free_slow(cur, ptr);
}

/* Hands batched remote frees back to their origins. Owner only. */
void tr__pool_flush(tr__pool *p);

/* Teardown only (no other thread running): releases a block to malloc. */
void tr__pool_free_now(void *ptr);

#endif /* TR_POOL_H */
