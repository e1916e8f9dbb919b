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
 *  - a block of a loop's pool freed on a plain thread goes to free().
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

#define TR__POOL_MIN_SHIFT 6  /* smallest block: 64 bytes */
#define TR__POOL_CLASSES 11   /* 64 B .. 64 KiB */
#define TR__POOL_HEAP 0xffffu /* origin of malloc'd blocks */
#define TR__POOL_BATCH 64     /* remote frees handed over per CAS, at most */
#define TR__POOL_BATCH_BYTES (16u << 10) /* ...or fewer, of a large class */

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
 * malloc keeps a word of its own in front of every block (glibc: the chunk
 * size), so a request of 2^k - 8 bytes fills a 2^k-byte chunk exactly, while
 * a request of 2^k bytes takes the next chunk size (64 B -> 80 B). A class
 * is a power-of-two chunk: its blocks are requests of class_size - MALLOC_WORD
 * bytes, header included. Freed chunks then tile: two 64-byte blocks fit
 * exactly in a freed 128-byte one.
 */
#define TR__MALLOC_WORD sizeof(size_t)

static inline int tr__pool_class_of(size_t size)
{
    size_t total = size + sizeof(tr__blkhdr) + TR__MALLOC_WORD;
    if (total <= ((size_t)1 << TR__POOL_MIN_SHIFT))
        return 0;
    int bits = 64 - __builtin_clzll((unsigned long long)(total - 1));
    return bits - TR__POOL_MIN_SHIFT;
}

void *tr__pool_alloc_slow(tr__pool *p, size_t size);
void tr__pool_free_slow(tr__pool *cur, void *ptr);

/* `size` usable bytes, 8-aligned. `p` is the calling thread's pool, or NULL
 * on a plain thread. NULL when out of memory. */
static inline void *tr__pool_alloc(tr__pool *p, size_t size)
{
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
