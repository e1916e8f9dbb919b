/*
 * pool.c — per-loop size-class block pools (see pool.h for the design).
 */
#include "pool.h"

#include <ck_pr.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "alloc.h"
#include "handoff.h"

_Static_assert(sizeof(tr__blkhdr) == 8, "block header is 8 bytes");

static inline tr__blkhdr *hdr_of(void *ptr) { return (tr__blkhdr *)ptr - 1; }
static inline void *user_of(tr__blkhdr *h) { return h + 1; }
/* A free block links to the next through its first user word. The first
 * block of a chain on a remote stack also holds, in its next words, the
 * next chain, its own tail and its length (the smallest block has room). */
static inline void **link_of(void *ptr) { return (void **)ptr; }
static inline void **chain_next_of(void *head) { return (void **)head + 1; }
static inline void **chain_tail_of(void *head) { return (void **)head + 2; }
static inline uintptr_t *chain_len_of(void *head) { return (uintptr_t *)head + 3; }

_Static_assert(((size_t)1 << TR__POOL_MIN_SHIFT) - sizeof(tr__blkhdr) >= 4 * sizeof(void *),
               "the smallest block holds a chain head's four words");

static inline size_t class_size(int cls)
{
    return (size_t)1 << (cls + TR__POOL_MIN_SHIFT);
}

static inline bool slab_class(int cls)
{
    return cls < TR__POOL_SLAB_CLASSES;
}

/*
 * A slab: this header on its first line, then blocks of one class, each on
 * lines of its own. Aligned to its size, so a block finds its slab — and
 * the pool to return it to — by masking its address (plain threads do).
 */
typedef struct tr__slab {
    tr__pool *pool;
    struct tr__slab *next;
    uint32_t scan; /* tr__pool_trim: its blocks found free; UINT32_MAX: to free */
    uint8_t cls;
} tr__slab;

#define SLAB_HEAD 64 /* the header's line */

/* Blocks of class c in one slab. */
static inline uint32_t slab_blocks(int c)
{
    return (uint32_t)((TR__POOL_SLAB_BYTES - SLAB_HEAD) / class_size(c));
}

static inline tr__slab *slab_of(const void *block)
{
    return (tr__slab *)((uintptr_t)block & ~(uintptr_t)(TR__POOL_SLAB_BYTES - 1));
}

/* Free-list caps of the malloc'd classes: about 256 KiB per class, at
 * least 64 blocks: enough to absorb bursts, small enough that a long run
 * does not hoard memory. Slab classes keep what they carved (no cap). */
static inline uint32_t class_cap(int cls)
{
    if (slab_class(cls))
        return UINT32_MAX;
    uint32_t cap = (uint32_t)(((size_t)256 << 10) / class_size(cls));
    return cap < 64 ? 64 : cap;
}

int tr__pool_init(tr__pool *p, uint16_t index, tr__pool **peers, uint16_t npeers)
{
    memset(p, 0, sizeof *p);
    p->index = index;
    p->npeers = npeers;
    p->plain_from = npeers;
    for (int c = 0; c < TR__POOL_CLASSES; c++) {
        p->cap[c] = class_cap(c);
        size_t n = TR__POOL_BATCH_BYTES / class_size(c);
        p->batch[c] = n < 1 ? 1 : n > TR__POOL_BATCH ? TR__POOL_BATCH : (uint32_t)n;
    }
    p->peers = peers;
    p->out = tr__calloc((size_t)npeers * TR__POOL_CLASSES, sizeof *p->out);
    return p->out ? 0 : -1;
}

/* Frees a chain of malloc'd blocks. (Slab blocks go with their slabs:
 * their chains are not even walked, as another pool's slabs may be gone.) */
static void free_chain(void *b)
{
    while (b) {
        void *next = *link_of(b);
        free(hdr_of(b));
        b = next;
    }
}

/* Frees every block of a remote stack of chains of malloc'd blocks. */
static void free_chains(void *head)
{
    while (head) {
        void *next = *chain_next_of(head);
        free_chain(head);
        head = next;
    }
}

void tr__pool_destroy(tr__pool *p)
{
    for (int c = 0; c < TR__POOL_CLASSES; c++) {
        void *remote = ck_pr_fas_ptr(&p->remote[c], NULL);
        if (!slab_class(c)) {
            free_chain(p->free_list[c]);
            free_chains(remote);
        }
        p->free_list[c] = NULL;
        p->nfree[c] = 0;
    }
    if (p->out) {
        for (size_t i = 0; i < (size_t)p->npeers * TR__POOL_CLASSES; i++)
            if (!slab_class((int)(i % TR__POOL_CLASSES)))
                free_chain(p->out[i].head);
        free(p->out);
        p->out = NULL;
    }
    while (p->slabs) {
        tr__slab *next = p->slabs->next;
        free(p->slabs);
        p->slabs = next;
    }
}

static void *heap_alloc(size_t size)
{
    if (size > TR__POOL_ALLOC_MAX) /* the header would wrap the request */
        return NULL;
    tr__blkhdr *h = malloc(sizeof(tr__blkhdr) + size);
    if (!h)
        return NULL;
    h->origin = TR__POOL_HEAP;
    h->cls = 0xff;
    return user_of(h);
}

/* Splices every chain other loops returned for class c onto its free list. */
static void reclaim_remote(tr__pool *p, int c)
{
    void *head = ck_pr_fas_ptr(&p->remote[c], NULL);
    tr__handoff_acquire(&p->remote[c]); /* pairs with release in push_remote */
    while (head) {
        void *next = *chain_next_of(head);
        *link_of(*chain_tail_of(head)) = p->free_list[c];
        p->free_list[c] = head;
        p->nfree[c] += (uint32_t)*chain_len_of(head);
        head = next;
    }
}

/* A new slab of class c: returns its first block and puts the others on
 * the (empty) free list, in address order. */
static void *carve_slab(tr__pool *p, int c)
{
    tr__slab *s = aligned_alloc(TR__POOL_SLAB_BYTES, TR__POOL_SLAB_BYTES);
    if (!s)
        return NULL;
    s->pool = p;
    s->next = p->slabs;
    s->scan = 0;
    s->cls = (uint8_t)c;
    p->slabs = s;
    p->carved[c]++;
    size_t size = class_size(c);
    uint32_t n = slab_blocks(c);
    char *first = (char *)s + SLAB_HEAD;
    void *next = NULL;
    for (uint32_t i = n; i-- > 0;) {
        tr__blkhdr *h = (tr__blkhdr *)(first + (size_t)i * size);
        h->origin = p->index;
        h->cls = (uint8_t)c;
        if (i > 0) {
            *link_of(user_of(h)) = next;
            next = user_of(h);
        }
    }
    p->free_list[c] = next;
    p->nfree[c] = n - 1;
    return user_of((tr__blkhdr *)first);
}

/* The inline path found no block on the free list (or no pool). */
void *tr__pool_alloc_slow(tr__pool *p, size_t size)
{
    int c = tr__pool_class_of(size);
    if (!p || c >= TR__POOL_CLASSES)
        return heap_alloc(size);
    void *b = p->free_list[c];
    if (!b && ck_pr_load_ptr(&p->remote[c]) != NULL) {
        reclaim_remote(p, c);
        b = p->free_list[c];
    }
    if (b) {
        p->free_list[c] = *link_of(b);
        p->nfree[c]--;
        return b;
    }
    if (slab_class(c))
        return carve_slab(p, c);
    tr__blkhdr *h = malloc(class_size(c) - TR__MALLOC_WORD);
    if (!h)
        return NULL;
    h->origin = p->index;
    h->cls = (uint8_t)c;
    return user_of(h);
}

/* Pushes a chain of class c onto `origin`'s remote stack. Loop threads. */
static void push_remote(tr__pool *origin, int c, tr__pool_chain *ch)
{
    *chain_tail_of(ch->head) = ch->tail;
    *chain_len_of(ch->head) = ch->n;
    void *old;
    do {
        old = ck_pr_load_ptr(&origin->remote[c]);
        *chain_next_of(ch->head) = old;
        tr__handoff_release(&origin->remote[c]); /* pairs with reclaim_remote */
    } while (!ck_pr_cas_ptr(&origin->remote[c], old, ch->head));
    ch->head = ch->tail = NULL;
    ch->n = 0;
    if (!old && origin->on_remote) /* the first since the owner looked */
        origin->on_remote(origin);
}

/* Not the inline case: a malloc'd block, a full free list, another
 * loop's block, or a plain thread. */
void tr__pool_free_slow(tr__pool *cur, void *ptr)
{
    if (!ptr)
        return;
    tr__blkhdr *h = hdr_of(ptr);
    if (h->origin == TR__POOL_HEAP) {
        free(h);
        return;
    }
    int c = h->cls;
    if (cur && h->origin == cur->index) {
        if (cur->nfree[c] >= cur->cap[c]) {
            free(h);
            return;
        }
        *link_of(ptr) = cur->free_list[c];
        cur->free_list[c] = ptr;
        cur->nfree[c]++;
        return;
    }
    if (!cur) {
        /* A plain thread has no pool: a slab block goes back to its pool
         * (found through its slab) as a chain of one; a malloc'd one to
         * malloc. */
        if (slab_class(c)) {
            tr__pool_chain one = {.head = ptr, .tail = ptr, .n = 1};
            *link_of(ptr) = NULL;
            push_remote(slab_of(h)->pool, c, &one);
        } else {
            free(h);
        }
        return;
    }
    tr__pool_chain *ch = &cur->out[(size_t)h->origin * TR__POOL_CLASSES + (size_t)c];
    if (h->origin >= cur->plain_from)
        cur->fed_plain = true; /* a loop trims the plain pools it feeds */
    *link_of(ptr) = NULL;
    if (ch->tail) {
        *link_of(ch->tail) = ptr;
    } else {
        ch->head = ptr;
        cur->nout++;
    }
    ch->tail = ptr;
    if (++ch->n >= cur->batch[c]) {
        push_remote(cur->peers[h->origin], c, ch);
        cur->nout--;
    }
}

void tr__pool_flush(tr__pool *p)
{
    /* Most sleeps find nothing to hand back: the chains are not looked at
     * (there are (loops + plain pools) x classes of them). */
    for (unsigned i = 0; p->nout && i < p->npeers; i++)
        for (int c = 0; c < TR__POOL_CLASSES; c++) {
            tr__pool_chain *ch = &p->out[(size_t)i * TR__POOL_CLASSES + (size_t)c];
            if (ch->n) {
                push_remote(p->peers[i], c, ch);
                p->nout--;
            }
        }
}

void tr__pool_free_now(void *ptr)
{
    /* A slab block is freed with its slab, when its pool is destroyed. */
    if (ptr && (hdr_of(ptr)->origin == TR__POOL_HEAP || !slab_class(hdr_of(ptr)->cls)))
        free(hdr_of(ptr));
}

/* ---- giving memory back ---------------------------------------------------- */

/*
 * Frees the slabs of class c whose every block is on the free list, but
 * keeps `keep` free blocks. Three walks: count each slab's free blocks (in
 * its header), pick the slabs to free, and rebuild the free list without
 * their blocks, in its order (the most recently freed, warm blocks stay in
 * front). Bytes released.
 */
static size_t free_empty_slabs(tr__pool *p, int c, uint32_t keep)
{
    uint32_t per = slab_blocks(c);
    for (void *b = p->free_list[c]; b; b = *link_of(b))
        slab_of(b)->scan++;
    uint32_t left = p->nfree[c];
    size_t n = 0;
    for (tr__slab *s = p->slabs; s; s = s->next) {
        if (s->cls != c)
            continue;
        if (s->scan == per && left >= keep + per) {
            s->scan = UINT32_MAX;
            left -= per;
            n++;
        } else {
            s->scan = 0;
        }
    }
    if (n == 0)
        return 0;
    void **tail = &p->free_list[c];
    for (void *b = p->free_list[c]; b; b = *link_of(b))
        if (slab_of(b)->scan != UINT32_MAX) {
            *tail = b;
            tail = link_of(b);
        }
    *tail = NULL;
    p->nfree[c] = left;
    for (tr__slab **sp = &p->slabs; *sp;) {
        tr__slab *s = *sp;
        if (s->cls == c && s->scan == UINT32_MAX) {
            *sp = s->next;
            free(s);
        } else {
            sp = &s->next;
        }
    }
    return n * TR__POOL_SLAB_BYTES;
}

bool tr__pool_trim_wanted(const tr__pool *p)
{
    if (p->fed_plain)
        return true;
    for (int c = 0; c < TR__POOL_CLASSES; c++) {
        if (ck_pr_load_ptr(&p->remote[c]) != NULL)
            return true;
        if (slab_class(c) ? p->nfree[c] >= (TR__POOL_TRIM_KEEP + 1) * slab_blocks(c)
                          : p->nfree[c] > p->cap[c])
            return true;
    }
    return false;
}

int tr__pool_trim(tr__pool *p, uint64_t now_ms)
{
    if (now_ms - p->trim_at < TR__POOL_TRIM_MS)
        return 1; /* looked lately: the caller asks again later */
    p->trim_at = now_ms;
    size_t released = 0;
    int pending = 0;
    for (int c = 0; c < TR__POOL_CLASSES; c++) {
        if (ck_pr_load_ptr(&p->remote[c]) != NULL)
            reclaim_remote(p, c);
        if (!slab_class(c)) {
            /* Chains spliced in from other threads are not capped. */
            while (p->nfree[c] > p->cap[c]) {
                void *b = p->free_list[c];
                p->free_list[c] = *link_of(b);
                p->nfree[c]--;
                free(hdr_of(b));
                released += class_size(c);
            }
            continue;
        }
        uint32_t keep = TR__POOL_TRIM_KEEP * slab_blocks(c);
        uint32_t carved = p->carved[c];
        p->carved[c] = 0;
        if (p->nfree[c] < keep + slab_blocks(c))
            continue;
        if (carved) {
            /* It needed more lately: a burst, or traffic that cycles
             * through this much. Look again when it has been quiet. */
            pending = 1;
            continue;
        }
        released += free_empty_slabs(p, c, keep);
    }
#ifdef __GLIBC__
    /* free() keeps what it is given for the next malloc, in the middle of
     * its heap as much as at the top: malloc_trim hands whole free pages
     * back to the kernel. It walks every arena: only after freeing a lot. */
    if (released >= TR__POOL_TRIM_MALLOC)
        malloc_trim(0);
#endif
    return pending;
}
