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
 *  - plain threads allocate from a few pools of the runtime's
 *    (TR__PLAIN_POOLS), leased around each allocation: one exchange to
 *    take, one store to give back; all taken: malloc. Before, a plain
 *    thread's messages came from malloc and the receiving loop freed them:
 *    a thread flooding an actor held its malloc arena's lock nearly all the
 *    time and the loop's frees slept on it (hardening finding 14: perf
 *    showed the loop switched out in __lll_lock_wait_private 353 times in
 *    3 s; 2.4 k messages handled in 1.5 s against 69 k when bounded).
 *    Their blocks go home as any other pool's, lock-free.
 *
 * Small classes (64 B .. 2 KiB: messages, actor state, timers) are carved
 * from 16 KiB slabs, so every block starts on a cache line and no two blocks
 * share one. Blocks used to be single mallocs, 16-byte aligned: a 64-byte
 * block straddled two lines and shared each with a neighbour, so a message
 * in flight to another core shared a line with whatever its sender wrote
 * next (a timer entry, the next message), and cross-loop latency depended
 * on where the heap happened to put them (docs/performance.md). Slab
 * blocks go back to the pool, never to malloc. Larger classes are still
 * single mallocs (a block of 4 KiB and more spans many lines), capped per
 * free list, the excess freed.
 *
 * Memory comes back. A pool used to keep every slab it carved until the
 * runtime ended: a long-lived service kept its worst burst forever. Now
 * tr__pool_trim frees the slabs whose every block is free, beyond a
 * reserve of TR__POOL_TRIM_KEEP (4) slabs' worth per class, and calls
 * malloc_trim after freeing 1 MiB or more. It runs when a loop is about to
 * sleep, at most once a second per pool, and leaves a class that carved a
 * slab since its last look for the next one (a class still growing, or
 * traffic that cycles through that much, is not trimmed: at worst a slab
 * is freed and carved again every other second). A loop trims the plain
 * pools it returned blocks to, leasing them; what is left for later it
 * comes back to a second later on a timer, so memory returns within about
 * two seconds of a burst even if no message follows.
 *   Per-slab free counts are not kept: the fast paths would write the
 * slab's header line on every alloc and free. The trim counts instead, by
 * walking the free list (each block's slab header counts it), then frees
 * the full slabs and rebuilds the list without their blocks, in order: no
 * cost on the message path, ~0.1-0.6 µs per free block at trim time (a
 * free list of 10^6 blocks: 110-640 ms on the 2-core VM, once, after the
 * burst, while the loop has nothing else to do).
 *
 * Blocks larger than the largest class, and blocks a plain thread
 * allocates without a pool (all leased, or not a message), come from malloc
 * and go back to free.
 *
 * The two common cases — take a block off the owner's free list, put one of
 * its own blocks back — are inline (a message costs one of each); the rest
 * is in pool.c. callgrind, fjthroughput on one loop: 62 -> ~25 instructions
 * per message for the pair.
 */
#ifndef TR_POOL_H
#define TR_POOL_H

#include <ck_pr.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "handoff.h"
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
    tr__pool **peers;      /* every pool of the runtime, indexed by origin */
    tr__pool_chain *out;   /* [npeers][classes]: blocks to hand back to each origin */
    uint32_t nout;         /* chains in `out` that hold blocks */
    struct tr__slab *slabs; /* every slab this pool holds */
    /* Trimming (owner only, off the fast path): when it last looked, and
     * the slabs carved per class since. */
    uint64_t trim_at;
    uint32_t carved[TR__POOL_SLAB_CLASSES];
    uint16_t plain_from; /* origins from here up are plain-thread pools */
    bool fed_plain;      /* returned blocks to a plain-thread pool since the last trim */
    /* Called (by the returning thread) when a chain lands on this pool's
     * empty remote stack: a loop's pool wakes its loop if it sleeps, so that
     * it takes them and gives memory back even if nothing else comes.
     * NULL: nothing (a plain-thread pool: its users' loops trim it). Set
     * before any thread uses the pool. */
    void (*on_remote)(tr__pool *p);
    /* A plain-thread pool only: 1 while a thread holds it (tr__pool_lease).
     * Its own line: a thread that finds it taken must not pull the
     * holder's free lists over. */
    int leased __attribute__((aligned(64)));
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

/* `size` usable bytes, 8-aligned. `p` is the calling thread's pool (a
 * plain thread's: one it leased), or NULL: malloc. NULL when out of memory, or when `size` exceeds
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

/*
 * Gives memory back (see "Memory comes back" above): takes the blocks
 * other threads returned, frees the slabs whose every block is free beyond
 * a reserve of TR__POOL_TRIM_KEEP slabs per class (a class that carved a
 * slab since the last look is left for the next one), frees large blocks
 * beyond each free list's cap, and calls malloc_trim when that came to
 * TR__POOL_TRIM_MALLOC bytes or more. Does nothing if it last looked less
 * than TR__POOL_TRIM_MS ago (`now_ms`: any monotonic milliseconds). Owner
 * only (a plain-thread pool: its lease holder). Returns 1 if memory is left
 * that a later call may give back (call again in TR__POOL_TRIM_MS), else 0.
 */
#define TR__POOL_TRIM_MS 1000
#define TR__POOL_TRIM_KEEP 4 /* free slabs' worth of blocks kept per class */
#define TR__POOL_TRIM_MALLOC ((size_t)1 << 20)
int tr__pool_trim(tr__pool *p, uint64_t now_ms);
/* Whether tr__pool_trim may find something to give back: blocks returned
 * by other threads, more free blocks than the reserve, or blocks handed to
 * a plain-thread pool. Owner only; a few compares. */
bool tr__pool_trim_wanted(const tr__pool *p);

/*
 * Pools for plain threads. A plain thread has no pool of its own (its
 * lifetime is not the runtime's, and a thread-exit destructor could
 * outlive the runtime), so the runtime keeps a few pools that plain
 * threads lease around an allocation: one exchange to take, one store to
 * give back. A thread that finds its pool taken tries the others; when all
 * are taken it allocates from malloc.
 */
#define TR__PLAIN_POOLS 4

static inline int tr__pool_lease(tr__pool *p)
{
    if (ck_pr_load_int(&p->leased) || ck_pr_fas_int(&p->leased, 1))
        return 0;
    ck_pr_fence_acquire();           /* pairs with the fence in tr__pool_unlease */
    tr__handoff_acquire(&p->leased); /* the previous holder's writes */
    return 1;
}

static inline void tr__pool_unlease(tr__pool *p)
{
    tr__handoff_release(&p->leased);
    ck_pr_fence_release(); /* our writes to the pool before the next holder's reads */
    ck_pr_store_int(&p->leased, 0);
}

/* Teardown only (no other thread running): releases a block to malloc. */
void tr__pool_free_now(void *ptr);

#endif /* TR_POOL_H */
