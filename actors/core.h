/*
 * core.h — the runtime's internal data structures, shared by the files of
 * actors/. Nothing here is public; include/troupe.h is the API.
 *
 * Who writes what (fields are grouped by writer, cache-line aligned where
 * several threads write):
 *  - an actor slot's first fields are written by any sender (mailbox and
 *    signal-queue heads, run-queue link) and by spawners (generation,
 *    mailbox bound); the rest belongs to the home loop's thread alone
 *    (slots are packed, not aligned: see struct tr_actor);
 *  - a loop's inject queue and parked flag are written by other threads;
 *    everything else by the loop's own thread;
 *  - the runtime's state word and counters are atomics touched rarely.
 */
#ifndef TR_CORE_H
#define TR_CORE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <ck_spinlock.h>

#include "troupe.h"
#include "alloc.h"
#include "duration.h"
#include "hmap.h"
#include "idtab.h"
#include "msgtypes.h"
#include "mpsc.h"
#include "pool.h"

#define TR__CACHELINE 64

typedef struct tr__loop tr__loop;

/* ---- a growable array ------------------------------------------------- */

/*
 * Doubles the array at *(void **)arrp — `elem`-byte elements, *cap of them
 * (0: none yet, then `first`) — with realloc. False, and the array
 * untouched, when memory is out or the size would overflow.
 */
static inline bool tr__grow(void *arrp, uint32_t *cap, size_t elem, uint32_t first)
{
    void **arr = arrp;
    uint32_t ncap = *cap ? *cap * 2 : first;
    if (ncap <= *cap || (size_t)ncap > SIZE_MAX / elem)
        return false;
    void *p = tr__realloc(*arr, (size_t)ncap * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = ncap;
    return true;
}

/* ---- messages --------------------------------------------------------- */

enum tr__msg_kind {
    TR__MSG_USER = 0,   /* tr_send / tr_rt_send */
    TR__MSG_INIT,       /* first message of every actor: runs init */
    TR__MSG_CHILD_EXIT, /* a child tells its parent it has ended */
    TR__MSG_ADOPT,      /* a top-level actor tells the root it exists */
    TR__MSG_WAKE,       /* no content: makes the target look at its signals */
    TR__MSG_SIGNAL,     /* an exit signal (on the signal queue, not the mailbox) */
    TR__MSG_LINK,       /* the sender links to the target */
    TR__MSG_UNLINK,
    TR__MSG_MONITOR,    /* the sender monitors the target (payload: ref) */
    TR__MSG_DEMONITOR,  /* payload: ref */
    TR__MSG_DOWN,       /* to a watcher: payload tr__downhdr + tr_down + result */
    TR__MSG_CHAN_PULL   /* feed a channel subscription (payload: its id) */
};

/* Signal record flags (payload of TR__MSG_SIGNAL: sig_flags + tr_down). */
enum tr__sig_flags {
    TR__SIG_UNTRAPPABLE = 1u, /* tr_signal_exit(KILLED), a shutdown timeout */
    TR__SIG_LINK = 2u         /* propagated through a link */
};

typedef struct tr__sighdr {
    uint32_t flags;
    uint32_t reserved;
} tr__sighdr;

/*
 * A message: an intrusive mailbox node, the envelope, and the payload
 * inline. `to_gen` is the generation of the incarnation it was sent to: a
 * slot that has been reused drops messages meant for its predecessor.
 */
typedef struct tr__msg {
    tr__mpsc_node node; /* must be first */
    tr_pid from;
    uint32_t to_gen;
    uint32_t type;
    uint32_t len;
    uint8_t kind;
    uint8_t flags;
    uint16_t reserved;
    unsigned char data[]; /* 8-byte aligned */
} tr__msg;

/*
 * tr__msg.flags. The first three equal the public TR_MSG_* flags. The data
 * area of a message starts with optional prefixes, in this order: a call
 * header (REQUEST or REPLY), an owned-buffer header (OWNED); the copied
 * payload, if any, follows.
 */
enum tr__msg_flags {
    TR__MF_REQUEST = TR_MSG_REQUEST,
    TR__MF_REPLY = TR_MSG_REPLY,
    TR__MF_OWNED = TR_MSG_OWNED,
    TR__MF_JOB = 0x08,  /* a job's outcome: call header carries the job id */
    TR__MF_REF = 0x10,  /* a notice whose call header only carries msg->ref */
    TR__MF_COUNTED = 0x20, /* counted in a bounded mailbox (mb_count) */
    TR__MF_KEPT = 0x80, /* the receiver took the owned buffer */
    /* The flags whose messages start with a call header. */
    TR__MF_CALLHDR = TR__MF_REQUEST | TR__MF_REPLY | TR__MF_JOB | TR__MF_REF
};

typedef struct tr__callhdr {
    tr_ref ref;
    uint64_t deadline;
} tr__callhdr;

typedef struct tr__ownhdr {
    void *buf;
    tr_free_fn free_fn;
} tr__ownhdr;

/* memcpy for payloads: most are a few words, which a call to libc's
 * memcpy (and its length dispatch) would cost more than the copy. */
static inline void tr__copy_payload(void *dst, const void *src, size_t len)
{
    unsigned char *d = dst;
    const unsigned char *p = src;
    if (len > 16) {
        memcpy(d, p, len);
    } else if (len >= 8) { /* two 8-byte moves that may overlap */
        uint64_t a, b;
        memcpy(&a, p, 8);
        memcpy(&b, p + len - 8, 8);
        memcpy(d, &a, 8);
        memcpy(d + len - 8, &b, 8);
    } else if (len >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + len - 4, 4);
        memcpy(d, &a, 4);
        memcpy(d + len - 4, &b, 4);
    } else {
        for (size_t i = 0; i < len; i++)
            d[i] = p[i];
    }
}

static inline size_t tr__msg_prefix(uint8_t flags)
{
    return ((flags & TR__MF_CALLHDR) ? sizeof(tr__callhdr) : 0) +
           ((flags & TR__MF_OWNED) ? sizeof(tr__ownhdr) : 0);
}

/*
 * A parent's record of one child; owned and freed by the parent. One per
 * live actor, so it is kept to 40 bytes: malloc's 48-byte chunk (a pool
 * block would take 64). The kill timer of a child being stopped is found
 * in the parent's timer list (kind TR__TIMER_KILL, `to` the child).
 */
typedef struct tr__child {
    struct tr__child *prev;
    struct tr__child *next;
    tr_pid pid;
    tr_duration shutdown_ms; /* its shutdown timeout, resolved: >= 0 ms, or TR_INFINITE */
    uint32_t seq;         /* top-level children: spawn order (wrapping), for the root's list */
    uint8_t stopping;     /* TR__STOP_*: the shutdown signal has been sent (SENT);
                           * a signal is owed for want of memory (OWED_*) */
    uint8_t permanent;    /* top-level, TR_TOP_PERMANENT (immutable) */
} tr__child;

_Static_assert(sizeof(tr__child) <= 40, "a child record fits malloc's 48-byte chunk");

/* tr__child.stopping. The owed signals are sent by tr__exit_retry. */
enum tr__stop_bits {
    TR__STOP_SENT = 1u,          /* the parent's exit sent its shutdown */
    TR__STOP_OWED_SHUTDOWN = 2u, /* a shutdown could not be made yet */
    TR__STOP_OWED_KILL = 4u      /* a kill could not be made yet */
};

/*
 * Payload of TR__MSG_INIT: this, then the parent's monitor ref and the
 * block of its DOWN (with TR__INIT_MONITOR), the block of the start notice
 * (TR__INIT_NOTIFY), the block of the adoption notice (TR__INIT_ADOPT),
 * then the spawn argument; msg->len covers them all. The blocks are the
 * notices the new actor must be able to send whatever memory is left
 * then: the spawner allocates them (a failure is the spawn's TR_ENOMEM),
 * and an INIT that never runs frees them (tr__msg_release_contents).
 * The rest is in the envelope: msg->type holds tr__init_flags (an INIT has
 * no user type) and the parent is the sender, msg->from, or the root (with
 * TR__INIT_ADOPT). So an INIT without argument fits the smallest pool block.
 */
typedef struct tr__init {
    const tr_behavior *beh;
    tr__child *node;  /* the parent's record of this child */
} tr__init;

/* What follows tr__init in an INIT (notice.c): the notices made in advance
 * and the argument. */
typedef struct tr__init_extras {
    tr_ref monitor;           /* TR__INIT_MONITOR: the parent's ref... */
    struct tr__msg *down;     /* ...and the block of its DOWN */
    struct tr__msg *started;  /* TR__INIT_NOTIFY: TR_MSG_STARTED's block */
    struct tr__msg *adopt;    /* TR__INIT_ADOPT: ADOPT's block */
    const unsigned char *arg; /* the spawn argument (parse only) */
    size_t arg_len;
} tr__init_extras;
/* Reads the extras of the INIT `m` (by its flags, m->type). */
void tr__init_parse(struct tr__msg *m, tr__init_extras *x);
/* Writes them into `m` (whose type holds the flags); returns where the
 * argument goes. */
unsigned char *tr__init_write(struct tr__msg *m, const tr__init_extras *x);
/* Frees the blocks of an INIT that will not run. Any thread. */
void tr__init_extras_free(tr__init_extras *x);

enum tr__init_flags {
    TR__INIT_ADOPT = 1u,   /* spawned from a plain thread: tell the root */
    TR__INIT_NOTIFY = 2u,  /* send the parent TR_MSG_STARTED after init */
    TR__INIT_MONITOR = 4u  /* tr_spawn_monitor: the parent's ref follows */
};

/* An actor's links and monitors (links.c), each a hash table (hmap.h) so
 * that a parent watching thousands of children finds one in constant time:
 *   links:    key the linked pid; p and val the exit signal we owe it,
 *             made in advance: its record and (as an integer) its WAKE;
 *   watchers: who monitors us: key the monitor's ref (a plain thread's
 *             watch: its waiter ref with the top bit set, see links.c),
 *             val the watcher's pid;
 *   watching: whom we monitor: key the ref, val the target's pid. */
typedef struct tr__ties {
    tr__hmap links;
    tr__hmap watchers;
    tr__hmap watching;
} tr__ties;

/* ---- actors ------------------------------------------------------------ */

enum tr__status {
    TR__FREE = 0,  /* no live incarnation (free, or reserved before init) */
    TR__RUNNING,   /* handling messages */
    TR__EXITING    /* stopping its children before it ends */
};

enum tr__actor_flags {
    TR__INIT_OK = 1u << 0,  /* init succeeded: terminate must run */
    TR__EXIT_REQ = 1u << 1, /* tr_exit/tr_exit_error called in a callback */
    TR__ROOT = 1u << 2,     /* the runtime's root */
    TR__SERVES = 1u << 3,   /* answers reserved requests itself (tr__serve_reserved) */
    TR__UNSORTED = 1u << 4, /* the root's children are out of spawn order
                             * (tr__children_sort puts them back) */
    TR__RETRY = 1u << 5     /* on its loop's retry list (tr__loop_retry) */
};

/*
 * A bounded mailbox's bound and counters. Senders on any thread reach them
 * through the slot, possibly just after the actor has ended, so the record
 * lives as long as the slot: the first bounded spawn into a slot makes it,
 * later incarnations reuse it (an unbounded one sets cap 0), and it is
 * freed with the runtime. Set at spawn before the generation is published.
 */
typedef struct tr__bound {
    uint32_t cap;     /* 0: this incarnation is unbounded */
    uint32_t drop;    /* TR_OVERFLOW_DROP */
    int count;        /* counted messages queued (atomic); survives reuse, so
                         stale counted messages still leave it balanced */
    uint64_t dropped, refused; /* (atomic) */
} tr__bound;

/*
 * What few actors use, kept out of the slot so that an idle actor stays
 * small: made from the home loop's pool on first use (tr__ext_of), freed
 * when the actor ends or at teardown. Home loop only.
 */
/* One kind of resource an actor owns and the kind's data (subsys.h). */
typedef struct tr__owned_entry {
    struct tr__owned_kind *kind;
    void *data;
} tr__owned_entry;

typedef struct tr__actor_ext {
    tr__owned_entry *owned;     /* kinds it owns, in registration order */
    uint16_t nowned, cap_owned;
    char *exit_text;            /* the exit reason's text, or NULL */
    void *result;               /* tr_exit_result's copy, or NULL */
    uint32_t result_len;
    tr__ties ties;              /* links and monitors (links.c) */
} tr__actor_ext;

/*
 * The actor slot. Slots are type-stable: they live in chunks that are freed
 * only with the runtime, and a slot is reused by later incarnations with a
 * new generation, so a stale pid can always be checked against it safely.
 * A slot is bound to one loop forever (see pidtab.c).
 *
 * Every live actor pays for its slot, so the slot holds only what every
 * actor uses; the rest is in tr__bound and tr__actor_ext. It is three cache
 * lines, and slots are line-aligned, so no two actors share a line and each
 * line has one kind of traffic:
 *  - the queues: written by every sender (the exchange on a head) and by
 *    the home loop as it pops, with the home loop's per-message counter and
 *    the run-queue link (written by whoever schedules the actor: the sender
 *    that found the mailbox idle, on the line it already holds);
 *  - what senders read on every send (generation, home loop, bound) and the
 *    home loop reads on every message: written only when an incarnation
 *    starts or ends, so it stays shared in every core's cache;
 *  - the home loop's colder fields.
 * Why: with the pid on the line the receiver writes as it pops, every
 * remote send missed on it; with the run-queue link on the second line,
 * every scheduling dirtied the line other loops' senders read, and a loop
 * woken through its inject queue missed on two lines of the actor instead
 * of one. The measurements are in docs/performance.md ("Actor slots").
 */
struct tr_actor {
    /* -- line 0: the queues -- */
    tr__mpsc mb;         /* the mailbox */
    tr__mpsc sigq;       /* exit signals, links, monitors: before the next message */
    uint64_t handled;    /* home loop: user messages handled */
    tr__mpsc_node runq;  /* link in the loop's run/inject queue */

    /* -- line 1: read on every send and every message -- */
    tr_pid pid __attribute__((aligned(TR__CACHELINE))); /* the incarnation's pid, 0 while free */
    uint32_t gen;        /* odd while alive, even while free */
    uint32_t index;      /* slot index (immutable) */
    tr__loop *loop;      /* home loop (immutable once bound) */
    tr__bound *bound;    /* bounded mailbox, or NULL (atomic; never unset) */
    /* home loop only from here */
    uint8_t status;
    uint8_t flags;
    uint8_t exit_kind;
    uint8_t trap_exits;
    int32_t exit_code;
    struct tr__bstat *bstat; /* its behaviour's metrics on its loop, or NULL (metrics.h):
                                read every turn, hence here and not with `beh` */
    tr_receive_fn receive;
    void *state;

    /* -- line 2: the home loop's colder fields -- */
    tr_pid parent __attribute__((aligned(TR__CACHELINE)));
    tr__child *parent_node;
    tr__child *children; /* newest first */
    struct tr_actor *free_next;
    tr__actor_ext *ext;  /* the rarely used rest, or NULL */
    struct tr__timer *timers; /* timers this actor owns */
    uint32_t calls;      /* its pending calls: first entry in the loop's call table, 0: none */
    uint32_t owned;      /* the bits of the kinds of resources it owns (subsys.h) */
    const tr_behavior *beh; /* not read on the message path (receive is) */
} __attribute__((aligned(TR__CACHELINE)));

_Static_assert(sizeof(struct tr_actor) == 3 * TR__CACHELINE, "an actor slot is three lines");

/* The pid layout (troupe.h): node 12 bits, generation 26, index 26. */
#define TR__GEN_MASK 0x3ffffffu
#define TR__INDEX_MAX 0x3ffffffu
#define TR__NODE_MAX 0xfffu

static inline tr_pid tr__pid_make(uint32_t node, uint32_t gen, uint32_t index)
{
    return ((tr_pid)node << 52) | ((tr_pid)(gen & TR__GEN_MASK) << 26) | index;
}

/* The pid of the actor living in `a`. Home loop, while it lives (0 once
 * it has ended): it is set when the slot is reserved for an incarnation and
 * cleared when that incarnation ends. */
static inline tr_pid tr__actor_pid(const tr_actor *a)
{
    return ck_pr_load_64(&a->pid);
}

static inline tr_actor *tr__actor_of_runq(tr__mpsc_node *n)
{
    return (tr_actor *)((char *)n - offsetof(tr_actor, runq));
}

/* ---- the runtime -------------------------------------------------------- */

/* A signal made in advance: its record and its WAKE (notice.c). */
typedef struct tr__sigres {
    struct tr__msg *sig, *wake;
} tr__sigres;


#define TR__MAX_LOOPS 256u

enum tr__rt_state {
    TR__RT_CREATED = 0,
    TR__RT_RUNNING,
    TR__RT_STOPPING,
    TR__RT_STOPPED
};

typedef struct tr__pidtab {
    tr_actor **chunks; /* entries installed once, by CAS */
    uint32_t nchunks;
    uint32_t max;      /* indexes are 1 .. max-1 */
    uint32_t next;     /* atomic: next fresh index */
} tr__pidtab;

/* Hooks on the message path (subsys.h). */
/* tr__observer.fault's answer that drops the message (the handler does
 * not see it; a request is then owed, as one never answered). */
#define TR__FAULT_DROP INT_MIN

typedef struct tr__observer {
    void (*dispatch)(void *ud, tr_actor *a, const tr_msg *msg);
    /* After dispatch: 0 runs the handler; TR__FAULT_DROP drops the
     * message; any other value fails the actor with it, as if its handler
     * had returned it (fault injection: the test kit). */
    int (*fault)(void *ud, tr_actor *a, const tr_msg *msg);
    void (*done)(void *ud, tr_actor *a, const tr_msg *msg, int rc);
    void (*send)(void *ud, tr_pid from, tr_pid to, uint32_t type, size_t len);
    void *ud;
} tr__observer;

struct tr_runtime {
    tr_runtime_options opts; /* resolved: no zero left */
    tr__observer observer;   /* set before start (tr__observe) */
    const tr__observer *obs; /* &observer when installed, else NULL */
    unsigned nloops;
    tr__loop **loops;
    tr__pool **pools;        /* every pool by origin: the loops', then `plain` */
    tr__pool *plain;         /* [TR__PLAIN_POOLS]: leased by plain threads (pool.h) */
    tr__pidtab pids;
    tr_pid root;
    tr__sigres stop_sig;     /* the root's stop, made with the runtime (notice.c) */
    uint32_t node;           /* this runtime's node number, in every pid it makes */
    bool count_live;         /* max_actors is below the pid space: count `live` */

    int state __attribute__((aligned(TR__CACHELINE))); /* atomic enum tr__rt_state */
    unsigned rr;             /* atomic: round-robin cursor for plain threads */
    uint32_t root_pending;   /* atomic: plain-thread spawns not yet adopted */
    uint64_t spawn_seq;      /* atomic: order of plain-thread spawns */
    uint64_t next_ref;       /* atomic: monitor references */
    uint64_t plain_dropped;  /* atomic: messages dropped at teardown */

    uv_mutex_t mu;           /* guards stopped, the exit reason, start_gate */
    uv_cond_t cv;
    int start_gate;          /* tr_runtime_start: 0 wait, 1 run, -1 give up */
    int stopped;
    int exit_rc;             /* what tr_runtime_wait returns */
    bool exit_set;           /* a permanent top-level actor has ended: */
    tr_down exit_reason;     /* how */

    /* Plain threads blocked in tr_rt_call (call.c), guarded by wait_mu. */
    uv_mutex_t wait_mu;
    tr__idtab waiters;    /* ref -> struct tr__waiter (idtab.h) */
    int calls_closed;     /* the runtime has stopped: no new waiters */
    int calls_ready;      /* wait_mu initialised */

    /* Virtual time (subsys.h, tr__vtime_install): the test kit's hooks. */
    struct tr__vtime *vtime;
    bool det; /* deterministic mode (subsys.h): no loop or worker threads */

    struct tr__workers *workers; /* the worker pool (workers.c) */
    struct tr__watchdog *watchdog; /* blocked-loop detection, or NULL */
    struct tr__metrics *metrics;   /* the registry, stuck calls (metrics.c) */

    /* Registered names (registry.c), guarded by reg_mu: by the name's hash
     * and by pid. */
    uv_mutex_t reg_mu;
    tr__hmap reg_names, reg_pids;
    bool reg_ready; /* reg_mu initialised */

    /* Actors alive (the root included), when count_live: taken by a spawn
     * before it reserves a slot, given back when the actor has ended,
     * before anyone hears of its end (spawn.c, exit.c). Its own line:
     * spawns and exits on every loop touch it. */
    uint32_t live __attribute__((aligned(TR__CACHELINE)));
};

/* spawn.c: the live count behind max_actors (see tr_runtime.live). */
static inline void tr__live_put(tr_runtime *rt)
{
    if (rt->count_live)
        ck_pr_dec_32(&rt->live); /* the count only: no ordering needed */
}

/* ---- shared internal functions ------------------------------------------ */

/* pidtab.c */
int tr__pidtab_init(tr__pidtab *t, uint32_t max_actors);
void tr__pidtab_destroy(tr__pidtab *t);
#define TR__PIDTAB_CHUNK_BITS 12u
#define TR__PIDTAB_CHUNK_SLOTS (1u << TR__PIDTAB_CHUNK_BITS)

/* The slot `index` names, or NULL if it was never made. Any thread; inline
 * because every send looks one up. */
static inline tr_actor *tr__pidtab_get(tr__pidtab *t, uint32_t index)
{
    if (index == 0 || index >= t->max)
        return NULL;
    tr_actor *chunk = ck_pr_load_ptr(&t->chunks[index >> TR__PIDTAB_CHUNK_BITS]);
    if (!chunk)
        return NULL;
    tr__handoff_acquire(chunk); /* pairs with the release in install_chunk */
    return &chunk[index & (TR__PIDTAB_CHUNK_SLOTS - 1)];
}
/* A never-used slot, or NULL (*err: TR_ELIMIT or TR_ENOMEM). Any thread. */
tr_actor *tr__pidtab_fresh(tr__pidtab *t, int *err);

/* The live actor `pid` names, or NULL. Any thread. The slot stays valid
 * memory even if the actor exits right after. */
static inline tr_actor *tr__lookup(tr_runtime *rt, tr_pid pid)
{
    /* The slot holds its live incarnation's whole pid (node, generation,
     * index) and 0 while free: one compare checks all three, and no pid
     * with an even generation (or 0) ever matches. */
    tr_actor *a = tr__pidtab_get(&rt->pids, TR_PID_INDEX(pid));
    if (!a || ck_pr_load_64(&a->pid) != pid)
        return NULL;
    return a;
}

/* A message with room for `len` bytes of data, its envelope filled in
 * but for to_gen; NULL when out of memory. `pool` as tr__pool_alloc. */
static inline tr__msg *tr__msg_new(tr__pool *pool, uint8_t kind, tr_pid from,
                                   uint32_t type, size_t len)
{
    /* Public sends bound len by max_payload first; this keeps the header's
     * addition from wrapping whatever a caller passes (a constant-folded
     * compare where len is known small). */
    if (len > TR__POOL_ALLOC_MAX - sizeof(tr__msg))
        return NULL;
    tr__msg *m = tr__pool_alloc(pool, sizeof(tr__msg) + len);
    if (!m)
        return NULL;
    m->from = from;
    m->type = type;
    m->len = (uint32_t)len;
    m->kind = kind;
    m->flags = 0;
    m->reserved = 0;
    return m;
}

/* A plain-thread pool leased by the calling thread (give it back with
 * tr__pool_unlease as soon as the allocation is made), or NULL when every
 * one is taken. Plain threads only. runtime.c */
tr__pool *tr__plain_lease(tr_runtime *rt);

/* actor.c */
void tr__actor_run(tr__loop *L, tr_actor *a);
/* Releases what `m` owns besides its own block (an owned buffer). */
void tr__msg_release_contents(tr__msg *m);
/* Frees `m` and what it owns. `cur`: the calling thread's pool or NULL.
 * Inline: every handled message ends here, and most own nothing else. */
static inline void tr__msg_free(tr__pool *cur, tr__msg *m)
{
    if (m->kind == TR__MSG_INIT || (m->flags & TR__MF_OWNED))
        tr__msg_release_contents(m);
    tr__pool_free(cur, m);
}
/* Queues `m` for `a` (already looked up) and schedules `a` if needed. */
void tr__msg_post(tr__loop *cur, tr_actor *a, tr__msg *m);
/*
 * A signal made in advance (its record and its WAKE), for a signal that
 * must not fail when it is sent: the runtime's stop, a link's exit signal
 * (links.c). tr__sigres_make allocates (TR_ENOMEM); tr__sigres_post takes
 * the blocks — posted to the live actor `to`, else freed (TR_ENOACTOR);
 * tr__sigres_drop frees them unused (NULL members are skipped). `cur`: the
 * calling thread's loop, or NULL (a plain thread, teardown); the blocks
 * may be another loop's.
 */
int tr__sigres_make(tr__loop *cur, tr__sigres *r);
int tr__sigres_post(tr_runtime *rt, tr__loop *cur, tr__sigres *r, tr_pid from, tr_pid to,
                    tr_exit_kind kind, int code, const char *text, uint32_t flags);
void tr__sigres_drop(tr__loop *cur, tr__sigres *r);
/* Queues the signal-queue record `m` (its kind and data set) from `from`
 * on the slot `a` (looked up for `to`) and posts `wake` (a block of its
 * own, any kind) so that the slot looks at it; takes both, cannot fail. */
void tr__control_push(tr__loop *cur, tr_actor *a, tr_pid from, tr_pid to, tr__msg *m,
                      tr__msg *wake);
/* Posts the notice `m` (a block made in advance: its kind, type, length
 * and data set) from `from` to the live actor `to`; frees it if `to` is
 * gone (false). */
bool tr__notice_post(tr_runtime *rt, tr__loop *cur, tr__msg *m, tr_pid from, tr_pid to);
/* Sends an exit signal with a full reason. `flags`: tr__sig_flags. */
int tr__signal(tr_runtime *rt, tr__loop *cur, tr_pid from, tr_pid pid,
               tr_exit_kind kind, int code, const char *text, uint32_t flags);
/* Queues a signal-queue record (SIGNAL, LINK, UNLINK, MONITOR, DEMONITOR)
 * for the live actor `to` and wakes it. */
int tr__post_control(tr_runtime *rt, tr__loop *cur, tr_pid from, tr_pid to,
                     uint8_t kind, const void *data, size_t len);
/* Sends a system message of `kind` with a payload to the live actor `to`. */
int tr__post_system(tr_runtime *rt, tr__loop *cur, tr_pid from, tr_pid to,
                    uint8_t kind, const void *data, size_t len);

/* Delivers a message to the actor's receive callback (actor.c). */
void tr__actor_deliver(tr__loop *L, tr_actor *a, const tr_msg *pub, tr__msg *m);

/* links.c: links and monitors, on the actor's home loop. */
void tr__ties_handle(tr__loop *L, tr_actor *a, tr__msg *m); /* LINK..DOWN */
/* A LINK or MONITOR that reached a dead slot: answer for the dead. Takes
 * `m` (a MONITOR's block becomes its DOWN). */
void tr__ties_dropped(tr__loop *L, tr_actor *slot, tr__msg *m);
/* A link signal from `pid` arrived: the link is gone. */
void tr__ties_unlinked(tr__loop *L, tr_actor *a, tr_pid pid);
/* Teardown (no thread running). */
void tr__ties_teardown(tr_actor *a);
/* Teardown: frees a record left on a signal queue (a LINK carries a block
 * of its own). */
void tr__ties_record_free_now(tr__msg *m);
/* dispatch.c: puts the root's children back in spawn order, newest first,
 * if adoptions left them out of it. Home loop. */
void tr__children_sort(tr_actor *a);
/* The actor ends: notify links and watchers, release everything. */
void tr__ties_exit(tr__loop *L, tr_actor *a);
/* Fills a tr_down for `a`'s exit reason. */
void tr__down_fill(tr_down *d, tr_pid pid, tr_exit_kind kind, int code, const char *text);
/* Checks spawn options against `rt` (placement, shutdown_ms, overflow,
 * argument): 0, TR_EINVAL or TR_EMSGSIZE. tr__spawn does this too; a
 * caller that spawns later (a group's waiting child) checks up front. */
int tr__spawn_opts_check(const tr_runtime *rt, const tr_spawn_opts *opts);
/* `mon` (parent only, may be NULL): born monitored by the parent, *mon
 * set to the ref (tr_spawn_monitor). */
int tr__spawn(tr_runtime *rt, tr__loop *cur, tr_actor *parent,
              const tr_behavior *beh, const tr_spawn_opts *opts, tr_pid *out,
              tr_ref *mon);
/* links.c, for tr_spawn_monitor: makes room for one more monitor of `a`
 * (so that tr__ties_watch cannot fail), then records it. */
int tr__ties_reserve_watch(tr__loop *L, tr_actor *a);
tr_ref tr__ties_watch(tr__loop *L, tr_actor *a, tr_pid pid);
/* The child's side, before its init: `watcher` monitors it with `ref`.
 * On failure the DOWN (TR_ENOMEM) is sent at once. */
int tr__ties_add_watcher(tr__loop *L, tr_actor *a, tr_pid watcher, tr_ref ref,
                         struct tr__msg *down);
/* A block with room for a DOWN without result: what a monitor keeps so
 * that its DOWN cannot be lost (links.c). NULL when out of memory. */
struct tr__msg *tr__down_block(tr__loop *cur);
#define TR__DOWN_ROOM (sizeof(tr_ref) + sizeof(tr_down))
/* Sends the parent `self`'s child `child` (a child of self's, else
 * TR_ENOACTOR) an exit signal of `kind` (SHUTDOWN, or KILLED: untrappable);
 * out of memory, the signal is owed and sent again until it can be made
 * (tr__loop_retry): never lost. Home loop. */
int tr__stop_child(tr__loop *L, tr_actor *self, tr_pid child, tr_exit_kind kind);
/* exit.c: the retry of what `a`'s exit (or its children's stop) was held
 * up by: owed signals to its children, the next child to stop, its end. */
void tr__exit_retry(tr__loop *L, tr_actor *a);
/* The actor's list of timers (timer.h); home loop. */
struct tr__timer;
/* Adds `t` to a's timers (a resource it owns, subsys.h): 0, or TR_ENOMEM
 * (then `t` is not a's and the caller frees it). */
int tr__actor_remember_timer(tr__loop *L, tr_actor *a, struct tr__timer *t);
void tr__actor_drop_timer(tr__loop *L, struct tr__timer *t);
/* The checks of a payload `self` hands over to be sent later (timers,
 * calls), but for its type, which the caller checks: sets *out. */
int tr__self_payload(tr_actor *self, const void *data, size_t len, tr__loop **out);
/* Undoes a plain-thread spawn's pending count (see tr_rt_spawn). */
void tr__root_unpend(tr_runtime *rt, tr__loop *cur);
/* Frees everything left in a slot (teardown, no thread running). */
void tr__actor_teardown(tr_actor *a);
/* The actor's extension record, made on first use; NULL when out of
 * memory. Home loop. */
tr__actor_ext *tr__ext_of(tr__loop *L, tr_actor *a);

/* chansub.c: a PULL for one of a's channel subscriptions (home loop). */
void tr__chan_pull(tr__loop *L, tr_actor *a, tr__msg *m);

/* introspect.c: answers a TR__MSG_DESCRIBE request (tr_runtime_tree). */
void tr__describe(tr__loop *L, tr_actor *a, const tr_msg *request);
/* actor.c: messages waiting in a's mailbox (home loop; may be a little low). */
uint64_t tr__mailbox_depth(tr_actor *a);
/* time.c: a one-shot timer that sends `type` (internal types allowed) from
 * self to self. */
int tr__send_after_self(tr__loop *L, tr_actor *self, tr_duration delay_ms, uint32_t type,
                        const void *data, size_t len, tr_timer_id *out);

/* error.c: "error -13 (TR_ELIMIT): text" for troupe's codes,
 * "application error 7 (TR_EUSER(7)): text" and "application error 5: text"
 * for the application's (tr_err_is_user); text NULL: troupe's text, or
 * none for the application's. Any thread. */
void tr__error_text(char *buf, size_t len, int code, const char *text);

/* metrics.c */
typedef struct tr__metrics tr__metrics;
int tr__metrics_init(tr_runtime *rt);
void tr__metrics_destroy(tr_runtime *rt);
/* A message sent by a plain thread (one atomic add). */
void tr__metrics_plain_sent(tr_runtime *rt);
/* tr_metric_register; `internal` allows the troupe_ names (subsystems). */
int tr__metric_register(tr_runtime *rt, const tr_metric_desc *d, tr_metric **out, bool internal);
/* Stuck calls as published: how many, and how many close into cycles. */
void tr__stuck_count(tr_runtime *rt, unsigned *stuck, unsigned *cycles);
/* tr_runtime_report through the log, after the line `why`. */
void tr__report_log(tr_runtime *rt, const char *why);
/* watchdog.c: "actor <pid> 'name' (behaviour)". Any thread. */
void tr__describe_pid(tr_runtime *rt, tr_pid pid, char *buf, size_t len);

/* time.c: frees the virtual-time hooks (subsys.h) with the runtime. */
void tr__vtime_destroy(tr_runtime *rt);
/* One look of a plain thread's wait at the virtual-time hooks (subsys.h),
 * no lock held: 1 to look again at once (the hooks ran the runtime's
 * steps, or moved the clock), 0 to sleep a moment (TR__VT_POLL_NS, or no
 * hooks), -1 to give up (TR_ETIMEDOUT). `done(ud)` (may be NULL) is asked
 * before the clock moves: a wait answered meanwhile never moves time. */
int tr__vtime_look(tr_runtime *rt, uint64_t until, uint64_t since, bool (*done)(void *),
                   void *ud);

/* call.c */
int tr__calls_init(tr_runtime *rt);
void tr__calls_destroy(tr_runtime *rt);
/* Wakes every blocked tr_rt_call with TR_ESTOPPED. */
void tr__calls_fail_all(tr_runtime *rt);
/* The custom clock moved: every blocked plain thread looks at its deadline
 * again (tr_runtime_clock_advanced). Any thread. */
void tr__waiters_clock_moved(tr_runtime *rt);
/* A plain thread's blocking wait for one answer: registers a waiter, calls
 * send(rt, ref, ctx) to ask (its error ends the wait), and blocks until the
 * answer (tr__waiter_complete / _fail), the timeout or the runtime's stop.
 * On 0, *reply holds the answer. */
typedef int (*tr__waiter_send_fn)(tr_runtime *rt, tr_ref ref, void *ctx);
int tr__waiter_run(tr_runtime *rt, tr_duration timeout_ms, tr__waiter_send_fn send, void *ctx,
                   tr_rt_reply *reply);
/* Ends the plain thread's call on `ref` with `err` (its callee ended). */
void tr__waiter_fail(tr_runtime *rt, tr_ref ref, int err);
/* Answers the request `m` (a USER message with TR__MF_REQUEST, no longer
 * counted in a bounded mailbox, now the caller's) for its callee `callee`:
 * the caller's call fails with (kind, code). An actor caller's failure
 * notice is made from m's own block (no allocation: it cannot be lost); a
 * plain thread's wait ends. Loop threads (L: the calling loop). */
void tr__request_fail(tr__loop *L, tr_pid callee, tr__msg *m, int32_t kind, int32_t code);
/* After a handler of `a` returned without answering the request `m`:
 * `a` owes it an answer until tr_reply or its end. Takes `m`. Home loop. */
void tr__request_owe(tr__loop *L, tr_actor *a, tr__msg *m);

/* Hands a reply to the plain thread waiting on `ref`; false if it is gone. */
bool tr__waiter_complete(tr_runtime *rt, tr_ref ref, tr_pid from,
                         uint32_t type, const void *data, size_t len);

/* call.c: tr_call, tr_rt_call and tr_reply without the check of `type`
 * (any reserved type): the runtime's own requests (describe, the
 * supervisor's ADD and WAIT) and their answers. Otherwise as the public
 * functions. */
int tr__call_raw(tr_actor *self, tr_pid to, uint32_t type, const void *data, size_t len,
                 tr_duration timeout_ms, tr_ref *ref_out);
int tr__rt_call_raw(tr_runtime *rt, tr_pid to, uint32_t type, const void *data, size_t len,
                    tr_duration timeout_ms, tr_rt_reply *reply);
int tr__reply_raw(tr_actor *self, const tr_msg *request, uint32_t type, const void *data,
                  size_t len);

/* call.c: an actor's pending calls (the loop's call table, loop.h). */
/* Starts a call of `self` to `callee` with a checked timeout (>= 0 or
 * TR_INFINITE): sets the call's *ref and *deadline. TR_ENOMEM. */
int tr__call_begin(tr__loop *L, tr_actor *self, tr_pid callee, tr_duration timeout_ms,
                   tr_ref *ref, uint64_t *deadline);
/* Ends `a`'s pending call `ref` (answered, or never sent) and its limit;
 * *tag (may be NULL) gets its tag. False if there is none: it timed out
 * already, was cancelled, or the ref is bogus. */
bool tr__call_end(tr__loop *L, tr_actor *a, tr_ref ref, uint64_t *tag);
/* The tag of `a`'s pending call `ref` (0 if none). */
uint64_t tr__call_tag_of(tr__loop *L, tr_ref ref);
/* The limit `t` (kind CALL) fired: ends its call; `t` is dropped too. */
void tr__call_timed_out(tr__loop *L, struct tr__timer *t);
/* Frees the loop's call table (teardown). */
void tr__calls_table_free(tr__loop *L);

/* time.c: the deadline `ms` (checked: >= 0 or TR_INFINITE) from now on
 * the runtime clock, saturating (duration.h); UINT64_MAX: none. */
uint64_t tr__deadline_after(const tr_runtime *rt, tr_duration ms);

/* watchdog.c */
int tr__watchdog_start(tr_runtime *rt);
void tr__watchdog_stop(tr_runtime *rt);

/* registry.c */
/* Copies the name registered for `pid` (or "") under the registry lock. Any
 * thread; it searches the whole table, so only for rare reports. */
void tr__registry_name_of(tr_runtime *rt, tr_pid pid, char *buf, size_t len);
int tr__registry_init(tr_runtime *rt);
void tr__registry_destroy(tr_runtime *rt);
/* The actor's registered name, or NULL. Home loop. */
const char *tr__registry_name(const tr_actor *a);
/* Drops the actor's name, if any (exit). Home loop. */
void tr__registry_release(tr_runtime *rt, tr_actor *a);

/* actor.c: the one send path. `buf`/`free_fn` only with TR__MF_OWNED. */
int tr__send(tr_runtime *rt, tr__loop *cur, tr_pid from, tr_pid to,
             uint32_t type, uint8_t flags, const tr__callhdr *call,
             const void *data, size_t len, void *buf, tr_free_fn free_fn);
/* tr__send once the arguments are checked and `to` is found: `a`. */
int tr__send_to(tr__loop *cur, tr_actor *a, tr_pid from, tr_pid to,
                uint32_t type, uint8_t flags, const tr__callhdr *call,
                const void *data, size_t len, void *buf, tr_free_fn free_fn);
/* The running actor of this thread if it is `self`, with its loop. */
tr__loop *tr__running_loop(const tr_actor *self);
/* The check every function that takes `self` starts with: 0 with *L set to
 * self's loop when self is the actor running on the calling thread, else
 * TR_EINVAL (NULL) or TR_EWRONGTHREAD. */
static inline int tr__self_loop(const tr_actor *self, tr__loop **L)
{
    if (!self)
        return TR_EINVAL;
    *L = tr__running_loop(self);
    return *L ? 0 : TR_EWRONGTHREAD;
}

/* runtime.c */
static inline uint64_t tr__now(const tr_runtime *rt)
{
    return rt->opts.clock ? rt->opts.clock(rt->opts.clock_userdata) : uv_hrtime();
}

/* Placement values (tr_spawn_opts.loop, tr_child_spec.loop): the public
 * encoding keeps 0 for the default, so TR_LOOP(n) is n + 1. */
#define TR__LOOP_INDEX(loop) ((loop) - 1)
/* TR_LOOP_DEFAULT, TR_LOOP_ROUND_ROBIN, or TR_LOOP(n) of an existing loop. */
static inline bool tr__loop_opt_ok(const tr_runtime *rt, int loop)
{
    return loop == TR_LOOP_DEFAULT || loop == TR_LOOP_ROUND_ROBIN ||
           (loop > 0 && (unsigned)TR__LOOP_INDEX(loop) < rt->nloops);
}
/* A behaviour a spawn accepts: a receive callback, and a state that the
 * pool can be asked for (TR_STATE_SIZE_MAX). tr__spawn and the
 * supervisor's spec checks both use it. */
static inline bool tr__behavior_ok(const tr_behavior *b)
{
    return b && b->receive && b->state_size <= TR_STATE_SIZE_MAX;
}
void tr__log(tr_runtime *rt, tr_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A loop thread of tr_runtime_start waits here until the start has made
 * every thread: true to run, false when the start failed (it then ends). */
bool tr__runtime_gate(tr_runtime *rt);
/* The root has ended: wake waiters, let the loops quit. Root's loop. */
void tr__runtime_finished(tr_runtime *rt);
/* A permanent top-level actor has ended with `d`: the runtime stops. */
void tr__runtime_permanent_ended(tr_runtime *rt, const tr_down *d);
extern const tr_behavior tr__root_behavior;

#endif /* TR_CORE_H */
