/*
 * owned.c — what an actor owns, released in one loop when it exits; the
 * interception point; the observation hooks (subsys.h).
 *
 * Design notes
 * ------------
 * A kind is registered per actor on first use: an entry (kind, data) in the
 * actor's extension record, in registration order, and the kind's bit in
 * the slot's `owned` mask, so that a hot path (a timer, a call) finds its
 * kind registered with one test of a bit and no list node per resource.
 * Bits are given to kinds on first use in the process (a CAS on the kind's
 * `bit`: two loops racing for a new kind agree on one bit; the loser's is
 * left unused — at most one per loop per kind, out of 32).
 *
 * The exit path calls tr__owned_stop when the exit begins and
 * tr__owned_release once the actor has ended, each walking the entries
 * newest first. After the release the record is empty and the mask clear,
 * ready for the slot's next incarnation.
 */
#include <string.h>

#include "subsys.h"

static uint32_t next_bit = 1; /* atomic: the next unused bit */

/* The kind's bit, given on first use; 0 once the bits are used up. */
static uint32_t kind_bit(tr__owned_kind *kind)
{
    uint32_t bit = ck_pr_load_32(&kind->bit);
    if (bit)
        return bit;
    uint32_t mine = ck_pr_load_32(&next_bit);
    do {
        if (mine == 0)
            return 0; /* more kinds than bits: a build error in practice */
    } while (!ck_pr_cas_32_value(&next_bit, mine, mine << 1, &mine));
    if (!ck_pr_cas_32(&kind->bit, 0, mine))
        return ck_pr_load_32(&kind->bit); /* another loop was first */
    return mine;
}

static int find(const tr__actor_ext *x, const tr__owned_kind *kind)
{
    for (unsigned i = 0; i < x->nowned; i++)
        if (x->owned[i].kind == kind)
            return (int)i;
    return -1;
}

void **tr__own(tr__loop *L, tr_actor *a, tr__owned_kind *kind, int *err)
{
    uint32_t bit = kind_bit(kind);
    if (bit && (a->owned & bit))
        return &a->ext->owned[find(a->ext, kind)].data;
    tr__actor_ext *x = tr__ext_of(L, a);
    if (!x || !bit) {
        *err = TR_ENOMEM;
        return NULL;
    }
    if (x->nowned == x->cap_owned) { /* most actors own 1..3 kinds */
        uint16_t cap = x->cap_owned ? (uint16_t)(x->cap_owned * 2) : 4;
        tr__owned_entry *v = tr__pool_alloc(&L->pool, cap * sizeof *v);
        if (!v) {
            *err = TR_ENOMEM;
            return NULL;
        }
        if (x->nowned)
            memcpy(v, x->owned, x->nowned * sizeof *v);
        tr__pool_free(&L->pool, x->owned);
        x->owned = v;
        x->cap_owned = cap;
    }
    x->owned[x->nowned].kind = kind;
    x->owned[x->nowned].data = NULL;
    a->owned |= bit;
    return &x->owned[x->nowned++].data;
}

void **tr__owned(const tr_actor *a, const tr__owned_kind *kind)
{
    uint32_t bit = ck_pr_load_32((uint32_t *)&kind->bit);
    if (!bit || !(a->owned & bit))
        return NULL;
    return &a->ext->owned[find(a->ext, kind)].data;
}

void tr__owned_stop(tr__loop *L, tr_actor *a)
{
    for (unsigned i = a->ext ? a->ext->nowned : 0; i-- > 0;) {
        tr__owned_kind *k = a->ext->owned[i].kind;
        if (k->stop)
            k->stop(L, a, &a->ext->owned[i].data);
    }
}

void tr__owned_release(tr__loop *L, tr_actor *a)
{
    if (!a->ext)
        return;
    for (unsigned i = a->ext->nowned; i-- > 0;) {
        tr__owned_kind *k = a->ext->owned[i].kind;
        if (k->release)
            k->release(L, a, &a->ext->owned[i].data);
    }
    a->ext->nowned = 0;
    a->owned = 0;
}

void tr__owned_teardown(tr_actor *a)
{
    if (!a->ext)
        return;
    for (unsigned i = a->ext->nowned; i-- > 0;) {
        tr__owned_kind *k = a->ext->owned[i].kind;
        if (k->teardown)
            k->teardown(a, &a->ext->owned[i].data);
    }
    a->ext->nowned = 0;
    a->owned = 0;
}

static tr__owned_kind *claims[TR__CLAIMS]; /* atomic: set once each, in order */

int tr__owned_claim(tr__owned_kind *kind)
{
    for (unsigned i = 0; i < TR__CLAIMS; i++) {
        tr__owned_kind *k = ck_pr_load_ptr(&claims[i]);
        if (k == kind)
            return 0;
        if (!k && ck_pr_cas_ptr(&claims[i], NULL, kind))
            return 0;
        if (ck_pr_load_ptr(&claims[i]) == kind)
            return 0; /* another thread claimed it for us */
    }
    return TR_ELIMIT;
}

static tr__owned_kind *claimant(uint32_t type)
{
    for (unsigned i = 0; i < TR__CLAIMS; i++) {
        tr__owned_kind *k = ck_pr_load_ptr(&claims[i]);
        if (!k)
            return NULL;
        if (type >= k->claim_lo && type <= k->claim_hi)
            return k;
    }
    return NULL;
}

bool tr__owned_intercept(tr__loop *L, tr_actor *a, tr_msg *pub)
{
    tr__owned_kind *c = claimant(pub->type);
    if (c) { /* the claiming kind, registered on demand */
        int err = 0;
        void **data = tr__own(L, a, c, &err);
        /* Without memory for the registration the kind still sees it. */
        void *none = NULL;
        return c->intercept(L, a, data ? data : &none, pub);
    }
    for (unsigned i = 0; a->ext && i < a->ext->nowned; i++) {
        tr__owned_kind *k = a->ext->owned[i].kind;
        if (k->intercept && k->intercept(L, a, &a->ext->owned[i].data, pub))
            return true;
    }
    return false;
}

/* ---- loop extensions ---------------------------------------------------------------- */

static uint32_t next_ext = 1; /* atomic: 1 + the next unused index */

void **tr__loop_ext(tr__loop *L, tr__loop_ext_kind *kind)
{
    uint32_t slot = ck_pr_load_32(&kind->slot);
    if (!slot) {
        uint32_t mine = ck_pr_faa_32(&next_ext, 1);
        if (mine > TR__LOOP_EXTS)
            return NULL;
        if (!ck_pr_cas_32(&kind->slot, 0, mine))
            slot = ck_pr_load_32(&kind->slot); /* another loop was first */
        else
            slot = mine;
    }
    L->ext_kind[slot - 1] = kind;
    return &L->ext[slot - 1];
}

void tr__loop_ext_destroy(tr__loop *L)
{
    for (unsigned i = 0; i < TR__LOOP_EXTS; i++)
        if (L->ext[i] && L->ext_kind[i]->destroy) {
            L->ext_kind[i]->destroy(L, L->ext[i]);
            L->ext[i] = NULL;
        }
}

int tr__observe(tr_runtime *rt, const tr__observer *obs)
{
    if (!rt)
        return TR_EINVAL;
    if (ck_pr_load_int(&rt->state) != TR__RT_CREATED)
        return TR_EALREADY;
    if (obs)
        rt->observer = *obs;
    for (unsigned i = 0; i < rt->nloops; i++)
        rt->loops[i]->obs = obs ? &rt->observer : NULL;
    ck_pr_store_ptr(&rt->obs, obs ? &rt->observer : NULL);
    return 0;
}
