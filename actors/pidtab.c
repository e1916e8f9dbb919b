/*
 * pidtab.c — the slot table behind pids.
 *
 * A pid is (node, generation, index) (troupe.h). The index names a slot in a
 * two-level table of chunks; chunks are allocated on first use, installed
 * with a CAS, and freed only with the runtime, so a slot's memory is valid
 * for as long as anyone can hold a pid that names it (type-stable memory,
 * as in nng's id tables). Sending to a stale pid therefore reads a valid
 * slot, sees a different generation and returns TR_ENOACTOR: no
 * use-after-free is possible, however the exit races the send.
 *
 * Fresh indexes come from one atomic counter. Freed slots are reused only by
 * their home loop (see loop free lists in actor.c), which keeps a slot bound
 * to one loop forever: a sender that read the slot's loop before the actor
 * died and the slot was reused still schedules it on the right loop.
 */
#include <stdlib.h>
#include <string.h>

#include "core.h"

int tr__pidtab_init(tr__pidtab *t, uint32_t max_actors)
{
    memset(t, 0, sizeof *t);
    /* index 0 is never used, so TR_PID_NONE never names a slot. */
    uint64_t max = (uint64_t)max_actors + 1;
    t->nchunks = (uint32_t)((max + TR__PIDTAB_CHUNK_SLOTS - 1) / TR__PIDTAB_CHUNK_SLOTS);
    t->max = (uint32_t)(max < UINT32_MAX ? max : UINT32_MAX);
    t->next = 1;
    t->chunks = tr__calloc(t->nchunks, sizeof *t->chunks);
    return t->chunks ? 0 : TR_ENOMEM;
}

void tr__pidtab_destroy(tr__pidtab *t)
{
    if (!t->chunks)
        return;
    for (uint32_t c = 0; c < t->nchunks; c++)
        free(t->chunks[c]);
    free(t->chunks);
    t->chunks = NULL;
}

static tr_actor *install_chunk(tr__pidtab *t, uint32_t c)
{
    tr_actor *chunk = tr__aligned_alloc(TR__CACHELINE, TR__PIDTAB_CHUNK_SLOTS * sizeof(tr_actor));
    if (!chunk)
        return NULL;
    memset(chunk, 0, TR__PIDTAB_CHUNK_SLOTS * sizeof(tr_actor));
    for (uint32_t i = 0; i < TR__PIDTAB_CHUNK_SLOTS; i++) {
        tr_actor *a = &chunk[i];
        a->index = (c << TR__PIDTAB_CHUNK_BITS) | i;
        tr__mpsc_init(&a->mb, true);
        tr__mpsc_init(&a->sigq, false);
    }
    tr__handoff_release(chunk);
    if (!ck_pr_cas_ptr(&t->chunks[c], NULL, chunk)) {
        free(chunk); /* another thread installed it first */
        chunk = ck_pr_load_ptr(&t->chunks[c]);
        tr__handoff_acquire(chunk);
    }
    return chunk;
}

tr_actor *tr__pidtab_fresh(tr__pidtab *t, int *err)
{
    uint32_t index = ck_pr_faa_32(&t->next, 1);
    if (index >= t->max) {
        /* Keep the counter saturated so it can never wrap. */
        ck_pr_store_32(&t->next, t->max);
        *err = TR_ELIMIT;
        return NULL;
    }
    uint32_t c = index >> TR__PIDTAB_CHUNK_BITS;
    tr_actor *chunk = ck_pr_load_ptr(&t->chunks[c]);
    if (chunk)
        tr__handoff_acquire(chunk);
    else if (!(chunk = install_chunk(t, c))) {
        *err = TR_ENOMEM;
        return NULL; /* the index is lost; the limit check stays correct */
    }
    return &chunk[index & (TR__PIDTAB_CHUNK_SLOTS - 1)];
}
