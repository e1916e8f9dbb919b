/*
 * sup.h — what the supervisor's files share: the flattened spec (the spawn
 * argument and the TR_MSG_SUP_ADD payload), its checks, and the
 * supervisor's behaviour. Internal to supervisor/.
 */
#ifndef TR_SUP_H
#define TR_SUP_H

#include "subsys.h"

/* A spec, flattened into one buffer: a flat_head, then its n children,
 * each a flat_child followed by its argument (arg_len bytes, 8-aligned);
 * a nested supervisor's child carries its own flattened spec as its
 * argument. */
typedef struct flat_head {
    tr_sup_spec spec;
    uint32_t n;
} flat_head;

typedef struct flat_child {
    char id[TR_CHILD_ID_MAX + 1];
    const tr_behavior *beh;
    uint32_t arg_len;
    uint8_t restart;
    tr_duration shutdown_ms; /* resolved: >= 0 ms, or TR_INFINITE */
    int loop;
} flat_child;

/* spec.c: the checks of a spec, at the call that receives it (nested specs
 * included): 0 or TR_EINVAL. `rt` gives the loops a .loop may name. */
int tr__sup_validate(const tr_runtime *rt, const tr_sup_spec *s);
int tr__sup_validate_child(const tr_runtime *rt, const tr_child_spec *c);
/* The spec flattened (malloc'd, *len bytes), or NULL when out of memory. */
void *tr__sup_flatten(const tr_sup_spec *s, size_t *len);
/* The TR_MSG_SUP_ADD payload: one child spec (checked), flattened
 * (malloc'd), or NULL. */
void *tr__sup_flatten_child(const tr_child_spec *c, size_t *len);

/* supervisor.c: the behaviour every supervisor runs. */
extern const tr_behavior tr__sup_behavior;

#endif /* TR_SUP_H */
