/*
 * kit.h — what the test kit's two halves share: the kit runtime's state
 * (kit.c: the virtual clock, settle, the stepping of time) and the probes
 * (probe.c), which record what the kit's observation hook sees.
 */
#ifndef TR_KIT_H
#define TR_KIT_H

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

/* An injected fault (tr_test_fail_message, _drop_messages, _delay_messages). */
enum { TR__KIT_FAIL, TR__KIT_DROP, TR__KIT_DELAY };

typedef struct tr__kit_fault {
    int kind;       /* TR__KIT_* */
    tr_pid from;    /* drop, delay: TR_PROBE_ANY: any */
    tr_pid to;
    uint32_t left;  /* fail: messages until the failing one; drop, delay: how many (UINT32_MAX: all) */
    int code;       /* fail: the code */
    uint64_t delay; /* delay: ns */
} tr__kit_fault;

/* A delayed message, held until the clock reaches `at` (kit->held, in
 * order of `at`, then of arrival). */
typedef struct tr__kit_held {
    struct tr__kit_held *next;
    uint64_t at;
    tr_pid to;
    tr_msg msg; /* data: the copy after this struct */
} tr__kit_held;

#define TR__KIT_FAULTS 64

typedef struct tr__kit {
    uint32_t magic;
    tr_runtime *rt;
    _Atomic uint64_t now; /* the virtual clock, ns */
    unsigned flags;
    uint64_t patience_ns;
    uint32_t max_steps;
    /* Observations and faults: the hooks read nwatch / nfault without the
     * lock first. */
    uv_mutex_t mu;
    atomic_uint nwatch;
    tr__kit_watch watch[TR__KIT_WATCHES];
    atomic_uint nfault;
    tr__kit_fault fault[TR__KIT_FAULTS];
    tr__kit_held *held; /* under mu */

    /* Deterministic mode (sched.c): the test's thread runs every step. */
    bool det;
    uint64_t seed, rng;
    uint64_t steps;  /* steps run */
    uint64_t trace;  /* FNV-1a of every event */
    void (*trace_fn)(void *ud, const tr_test_event *ev);
    void *trace_ud;
    tr__det_item *items;
    unsigned cap;
    tr_test_event cur; /* the step being run: its last dispatch */
    bool cur_dispatched;
    uint64_t wait_since; /* the plain-thread wait being driven, and */
    uint64_t wait_steps; /* the steps it has run */
    uint32_t jobs_run, job_fail_nth, job_delay_nth;
    int32_t job_fail_code;
    uint64_t job_delay_ns; /* how long the nth job waits */
    uint64_t job_hold;     /* no job runs before this (runtime clock) */
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

/* Delayed messages: the earliest one's time (UINT64_MAX: none); send
 * those due at the current time. */
uint64_t tr__kit_held_next(tr__kit *kit);
void tr__kit_release_held(tr__kit *kit);
void tr__kit_held_free(tr__kit *kit);

/* The runtime-clock deadline `ms` (>= 0) from now, saturating below
 * UINT64_MAX (which the clock could never pass). */
uint64_t tr__kit_deadline(tr__kit *kit, tr_duration ms);
/* A waiter finds the runtime idle: with auto-advance, or during a stop
 * (which may wait on shutdown timeouts, and nothing else would move the
 * clock for it), the clock jumps to the next timer (`next`), delayed
 * message or `until`, whichever comes first: true with *to. */
bool tr__kit_jump(tr__kit *kit, uint64_t next, uint64_t until, uint64_t *to);
/* Waits a little, longer each time (`*round` counts): the kit's polls. */
void tr__kit_backoff(unsigned *round);

/* Adds an observation of `p` (0, TR_ELIMIT); removes all of `p`'s: after
 * it returns, the hook records nothing more for `p`. */
int tr__kit_watch_add(tr__kit *kit, tr_probe *p, tr_pid from, tr_pid to);
void tr__kit_watch_remove(tr__kit *kit, const tr_probe *p);

/* sched.c: deterministic mode. det_step runs one step (1), or finds
 * nothing ready (0; *next the earliest timer); det_idle runs steps until
 * nothing is ready or stop(ud): 0, or TR_ELIMIT after max_steps. */
int tr__kit_det_step(tr__kit *kit, tr_test_event *ev, uint64_t *next);
int tr__kit_det_idle(tr__kit *kit, uint64_t *next, tr__kit_stop_fn stop, void *ud);
/* The waiting hook's deterministic half (subsys.h, tr__vtime.waiting). */
int tr__kit_det_waiting(tr__kit *kit, uint64_t until, uint64_t since, uint64_t *to);
/* The dispatch hook's deterministic half: the trace. */
void tr__kit_det_dispatch(tr__kit *kit, tr_actor *a, const tr_msg *msg);
/* The observer's fault hook: injected message faults. */
int tr__kit_fault_hook(void *ud, tr_actor *a, const tr_msg *msg);

/* probe.c: the observation hook records `msg` given to `to` (loop thread). */
void tr__probe_record(tr_probe *p, tr_pid to, const tr_msg *msg, uint64_t at);

#endif /* TR_KIT_H */
