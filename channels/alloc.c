/*
 * alloc.c — the injection plan behind tr__alloc_fails (see alloc.h).
 */
#include "alloc.h"

#include <pthread.h>

int tr__alloc_armed;

static pthread_mutex_t plan_mu = PTHREAD_MUTEX_INITIALIZER;
static tr__alloc_plan plan;       /* written under plan_mu, while disarmed */
static uint64_t attempted, failed; /* atomic */
static _Thread_local int thread_tag;

void tr__alloc_set_thread_tag(int tag)
{
    thread_tag = tag;
}

int tr__alloc_thread_tag(void)
{
    return thread_tag;
}

void tr__alloc_arm(const tr__alloc_plan *p)
{
    pthread_mutex_lock(&plan_mu);
    ck_pr_store_int(&tr__alloc_armed, 0);
    ck_pr_fence_store();
    /* Field by field with ck_pr stores: sites read them with loads. */
    ck_pr_store_int(&plan.mode, p->mode);
    ck_pr_store_64(&plan.n, p->n);
    ck_pr_store_32(&plan.per_million, p->per_million);
    ck_pr_store_64(&plan.seed, p->seed);
    ck_pr_store_int(&plan.tag, p->tag);
    ck_pr_store_64(&attempted, 0);
    ck_pr_store_64(&failed, 0);
    ck_pr_fence_store(); /* the plan before the flag: pairs with the fence in inject */
    ck_pr_store_int(&tr__alloc_armed, p->mode != TR__ALLOC_OFF);
    pthread_mutex_unlock(&plan_mu);
}

void tr__alloc_disarm(void)
{
    pthread_mutex_lock(&plan_mu);
    ck_pr_store_int(&tr__alloc_armed, 0);
    pthread_mutex_unlock(&plan_mu);
}

tr__alloc_counts tr__alloc_counts_get(void)
{
    tr__alloc_counts c = {.attempted = ck_pr_load_64(&attempted),
                          .failed = ck_pr_load_64(&failed)};
    return c;
}

/* splitmix64: a good 64-bit mix of (seed, allocation number). */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

bool tr__alloc_inject(void)
{
    ck_pr_fence_load(); /* pairs with the fence in tr__alloc_arm: the plan is armed */
    /* The plan is only rewritten while disarmed (a plan being swapped
     * under our feet is a test's race, and at worst one wrong count). */
    int mode = ck_pr_load_int(&plan.mode);
    int tag = ck_pr_load_int(&plan.tag);
    if (mode == TR__ALLOC_OFF || (tag && tag != thread_tag))
        return false;
    uint64_t i = ck_pr_faa_64(&attempted, 1) + 1; /* this allocation's number */
    bool fail;
    switch (mode) {
    case TR__ALLOC_NTH:
        fail = i == ck_pr_load_64(&plan.n);
        break;
    case TR__ALLOC_AFTER:
        fail = i > ck_pr_load_64(&plan.n);
        break;
    default:
        fail = mix(ck_pr_load_64(&plan.seed) ^ mix(i)) % 1000000u <
               ck_pr_load_32(&plan.per_million);
        break;
    }
    if (fail)
        ck_pr_inc_64(&failed);
    return fail;
}
