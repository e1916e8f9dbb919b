/*
 * alloc.h — every allocation troupe makes, and the failures tests inject
 * into them.
 *
 * The runtime's allocations (channels/, actors/, the subsystems) go
 * through tr__malloc, tr__calloc, tr__realloc, tr__aligned_alloc and
 * tr__strdup, and every pool block (tr__pool_alloc, hence tr__msg_new) is
 * counted once at its entry, free list or not. Memory is freed with
 * free() (pool blocks with tr__pool_free), as before. This is the lowest
 * layer: channels/ owns it so that both the transport and everything
 * above it can use it (tests/layers.sh); it knows nothing of actors or
 * loops — a loop thread says which it is with tr__alloc_set_thread_tag.
 *
 * Design notes
 * ------------
 * Injection exists to prove that no failure to allocate leaves a wait
 * without an end (include/troupe.h: "nothing blocks forever on an answer
 * that a failure can lose"). A test arms a process-wide plan; every
 * allocation site then asks tr__alloc_inject whether to fail:
 *
 *   TR__ALLOC_NTH     fail the nth counted allocation from arming (n >= 1),
 *                     once: the sweep of tests/test_oom.c runs a scenario
 *                     with n = 1, 2, 3, ... until no allocation fails;
 *   TR__ALLOC_AFTER   let n allocations succeed, then fail every one;
 *   TR__ALLOC_RANDOM  fail each with probability `per_million` / 10^6,
 *                     decided by a hash of (seed, the allocation's number):
 *                     a run replays when its allocations come in the same
 *                     order.
 *
 * `tag` restricts the plan to the threads that set that tag (0: every
 * thread): the loop threads tag themselves (actors/loop.c,
 * TR__ALLOC_TAG_LOOP), a test thread may tag itself. Allocations of other
 * threads are neither counted nor failed.
 *
 * Cost when disarmed: one relaxed load of tr__alloc_armed and one branch
 * predicted not taken (__builtin_expect), inline at every site; nothing
 * is counted. Armed, each counted allocation costs one atomic add on a
 * shared counter — a test's price, never a production one.
 *
 * Thread: arm and disarm from any thread; the plan is swapped under a
 * lock and published by the armed flag (release), which sites read
 * relaxed and, when set, re-read under the plan's acquire.
 */
#ifndef TR_ALLOC_H
#define TR_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ck_pr.h>

enum tr__alloc_mode {
    TR__ALLOC_OFF = 0,
    TR__ALLOC_NTH,    /* fail the nth counted allocation (once) */
    TR__ALLOC_AFTER,  /* succeed n, then fail every one */
    TR__ALLOC_RANDOM  /* fail with probability per_million / 10^6 */
};

typedef struct tr__alloc_plan {
    int mode;              /* enum tr__alloc_mode */
    uint64_t n;            /* NTH: which (1 = the next); AFTER: how many succeed */
    uint32_t per_million;  /* RANDOM: failures per million allocations */
    uint64_t seed;         /* RANDOM */
    int tag;               /* only threads with this tag (0: every thread) */
} tr__alloc_plan;

typedef struct tr__alloc_counts {
    uint64_t attempted; /* counted allocations since the plan was armed */
    uint64_t failed;    /* of them, failed by the plan */
} tr__alloc_counts;

/* The tag loop thread `index` sets (loop.c). */
#define TR__ALLOC_TAG_LOOP(index) (1 + (int)(index))

/* Non-zero while a plan is armed. Sites read it relaxed; never written
 * but by tr__alloc_arm / tr__alloc_disarm. */
extern int tr__alloc_armed;

/* Exported from the library for the test kit (libtroupe_test), which
 * offers injection to users' tests; not for users directly. */
#define TR__ALLOC_API __attribute__((visibility("default")))

/* Arms `plan` (replacing any) and zeroes the counters. Any thread. */
TR__ALLOC_API void tr__alloc_arm(const tr__alloc_plan *plan);
/* Disarms; the counters keep their values. Any thread. */
TR__ALLOC_API void tr__alloc_disarm(void);
/* The counters of the plan armed last. Any thread. */
TR__ALLOC_API tr__alloc_counts tr__alloc_counts_get(void);
/* Tags the calling thread (0: none); the calling thread's tag. */
TR__ALLOC_API void tr__alloc_set_thread_tag(int tag);
TR__ALLOC_API int tr__alloc_thread_tag(void);

/* Out of line: counts this allocation and says whether the plan fails it.
 * Only called when tr__alloc_armed was seen set. */
bool tr__alloc_inject(void);

/* The one check at every site: one load, one branch not taken. */
static inline bool tr__alloc_fails(void)
{
    return __builtin_expect(ck_pr_load_int(&tr__alloc_armed) != 0, 0) && tr__alloc_inject();
}

static inline void *tr__malloc(size_t size)
{
    return tr__alloc_fails() ? NULL : malloc(size);
}

static inline void *tr__calloc(size_t n, size_t size)
{
    return tr__alloc_fails() ? NULL : calloc(n, size);
}

/* As realloc; a failure leaves `p` as it was. */
static inline void *tr__realloc(void *p, size_t size)
{
    return tr__alloc_fails() ? NULL : realloc(p, size);
}

static inline void *tr__aligned_alloc(size_t align, size_t size)
{
    return tr__alloc_fails() ? NULL : aligned_alloc(align, size);
}

static inline char *tr__strdup(const char *s)
{
    if (tr__alloc_fails())
        return NULL;
    size_t len = strlen(s) + 1;
    char *d = malloc(len);
    if (d)
        memcpy(d, s, len);
    return d;
}

#endif /* TR_ALLOC_H */
