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

/* The supervisor's state (supervisor.c, requests.c). */
enum phase { STARTING, UP, REGROUP, RESTARTING, STOPPING };
enum after { AFTER_NOTHING, AFTER_RESTART, AFTER_EXIT };
/* A child that fails, or whose backoff ends, while a sequence runs waits for
 * it to end: PEND_FAILED is then handled as a failure (counted, restarted
 * by the strategy), PEND_START just started — unless the sequence already
 * restarted it. */
enum pend { PEND_NONE, PEND_FAILED, PEND_START };

typedef struct kid {
    char id[TR_CHILD_ID_MAX + 1];
    const tr_behavior *beh;
    void *arg;
    uint32_t arg_len;
    uint8_t restart;
    uint8_t dynamic;     /* added at run time (simple_one_for_one) */
    uint8_t removing;    /* stopped for good (TR_MSG_SUP_STOP, a temporary child in a
                            regroup): not started again until TR_MSG_SUP_RESTART */
    tr_duration shutdown_ms; /* resolved: >= 0 ms, or TR_INFINITE */
    int loop;                /* as tr_spawn_opts.loop: 0 is the supervisor's loop */
    tr_pid pid;          /* NONE while not running */
    tr_ref mon;
    tr_timer_id kill_timer; /* armed while it is being stopped, or 0 */
    uint32_t restarts;
    uint32_t streak;     /* consecutive restarts, for backoff */
    uint64_t up_since;
    uint32_t serial;     /* names it in RESTART_DUE timers (indices shift) */
    uint8_t pending;     /* PEND_*: what to do once the current sequence ends */
    tr_msg start_req;    /* a TR_MSG_SUP_START/ADD to answer once started */
    uint8_t start_req_pending;
} kid;

typedef struct sup {
    /* Resolved by sup_init: max_restarts is the intensity itself (0 for
     * TR_RESTARTS_NEVER), the durations >= 0 ms or TR_INFINITE. The
     * children pointer is unused after init. */
    tr_sup_spec spec;
    kid *kids;
    uint32_t n, cap;
    uint64_t *history;   /* restart times, a ring of max_restarts + 1 */
    uint32_t hpos, hcount;
    enum phase phase;
    uint32_t lo, hi;     /* the current sequence's range */
    uint32_t cursor;     /* starting: the child we wait for; stopping: next to stop */
    enum after after;
    tr_pid waiting;      /* the child whose DOWN (stop) or STARTED (start) we await */
    int exit_kind, exit_code;
    char exit_text[80];
    tr_msg waiters[8];   /* TR__MSG_SUP_WAIT calls, answered when started */
    uint32_t nwaiters;
    bool started;        /* the first start completed (UP once) */
    uint64_t rng;
    uint32_t next_serial;
    /* Requests that change children, held while a sequence runs (as an OTP
     * supervisor's mailbox holds calls while it restarts), with copies of
     * their payloads; handled in order once it is UP again. */
    tr_msg *held;
    uint32_t nheld, capheld;
} sup;


#define SLOG(self, level, ...) tr__log(tr_runtime_of(self), level, __VA_ARGS__)

/* Shared by the state machine (supervisor.c) and the request protocol
 * (requests.c); each is documented where it is defined. */
int tr__sup_add_kid(sup *s, const flat_child *f, const void *arg, uint32_t arg_len);
int tr__sup_continue_start(tr_actor *self, sup *s);
int tr__sup_find_by_pid(const sup *s, tr_pid pid);
void tr__sup_remove_kid(sup *s, uint32_t i);
int tr__sup_start_kid(tr_actor *self, sup *s, uint32_t i);
void tr__sup_stop_kid(tr_actor *self, kid *k);
int tr__sup_hold(sup *s, const tr_msg *msg);
bool tr__sup_is_request(uint32_t type);
int tr__sup_on_request(tr_actor *self, sup *s, const tr_msg *msg);
int tr__sup_refuse(tr_actor *self, const tr_msg *msg, int32_t rc);
void tr__sup_refuse_held(tr_actor *self, sup *s);
int tr__sup_release_held(tr_actor *self, sup *s);
int tr__sup_start_reply(tr_actor *self, const tr_msg *msg, int32_t rc, tr_pid pid);

/* supervisor.c: the behaviour every supervisor runs. */
extern const tr_behavior tr__sup_behavior;

#endif /* TR_SUP_H */
