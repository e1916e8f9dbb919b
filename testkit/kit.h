/*
 * kit.h — what the test kit's two halves share: the kit runtime's state
 * (kit.c: the virtual clock, settle, the stepping of time) and the probes
 * (probe.c), which record what the kit's observation hook sees.
 */
#ifndef TR_KIT_H
#define TR_KIT_H

#include <pthread.h>
#include <stdatomic.h>

#include "subsys.h"
#include "troupe_test.h"

#define TR__KIT_MAGIC 0x74726b74u
#define TR__KIT_WATCHES 64

/* A probe's observation of the messages `to` is given from `from`. */
typedef struct tr__kit_watch {
    tr_probe *probe;
    tr_pid from; /* TR_PROBE_ANY: any */
    tr_pid to;
} tr__kit_watch;

typedef struct tr__kit {
    uint32_t magic;
    tr_runtime *rt;
    _Atomic uint64_t now; /* the virtual clock, ns */
    unsigned flags;
    uint64_t patience_ns;
    uint32_t max_steps;
    /* Observations: the hook reads nwatch without the lock first. */
    pthread_mutex_t mu;
    atomic_uint nwatch;
    tr__kit_watch watch[TR__KIT_WATCHES];
} tr__kit;

/* The kit of `rt`, or NULL if `rt` is not a kit runtime. */
tr__kit *tr__kit_of(const tr_runtime *rt);

/* Whether a stepping wait may end: called between steps. */
typedef bool (*tr__kit_stop_fn)(void *ud);

/*
 * Settles (while stop(ud) is false; NULL: no stop), then moves the clock
 * deadline by deadline up to `target`, settling after each move, until
 * the clock is at `target` and settled, or stop(ud) is true. 0,
 * TR_ELIMIT (max_steps), or tr_test_settle's errors.
 */
int tr__kit_step_until(tr__kit *kit, uint64_t target, tr__kit_stop_fn stop, void *ud);

/* Real time, ns (monotonic). */
uint64_t tr__kit_wall(void);
/* Waits a little, longer each time (`*round` counts): the kit's polls. */
void tr__kit_backoff(unsigned *round);

/* Adds an observation of `p` (0, TR_ELIMIT); removes all of `p`'s: after
 * it returns, the hook records nothing more for `p`. */
int tr__kit_watch_add(tr__kit *kit, tr_probe *p, tr_pid from, tr_pid to);
void tr__kit_watch_remove(tr__kit *kit, const tr_probe *p);

/* probe.c: the observation hook records `msg` given to `to` (loop thread). */
void tr__probe_record(tr_probe *p, tr_pid to, const tr_msg *msg, uint64_t at);

#endif /* TR_KIT_H */
