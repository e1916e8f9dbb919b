/*
 * metrics.h — what a loop counts for the metrics (metrics.c reads it).
 *
 * Everything here is written by the loop's own thread only, with ck_pr
 * stores (no lock prefix, no fence) so that readers on other threads see
 * whole values; a reader sums the loops. Nothing on the message path reads
 * a clock: a turn in TR__SAMPLE_TURNS is timed (two uv_hrtime reads) and
 * its actor's mailbox measured.
 *
 * Behaviours: an actor's behaviour is fixed for its life (tr_become
 * changes the function, not the behaviour), so its loop binds it once, at
 * init, to the loop's entry for that behaviour (tr_actor.bstat): a turn
 * then adds to that entry without a lookup. A loop keeps at most
 * metric_behaviors entries; the last slot of the table, "other", takes the
 * rest (counted as overflow). Entries are appended, never removed, and
 * published by a release store of `nbeh`.
 */
#ifndef TR_METRICS_H
#define TR_METRICS_H

#include <ck_pr.h>
#include <stdint.h>
#include <uv.h>

#include "troupe.h"

/* Handler time buckets: 1 us x 4^k, k = 0 .. TR__HBOUNDS - 1 (1 us ..
 * 1.05 s), then +Inf. */
#define TR__HBOUNDS 11
/* One turn in this many is timed. */
#define TR__SAMPLE_TURNS 64
/* A sampled turn's mailbox is measured (walked) if the loop has not
 * measured one for this long, up to TR__DEPTH_WALK_MAX messages: a deep
 * mailbox's nodes are cold, and its newest ones are being written by the
 * senders, so walks are rationed by time — at most 10 a second of at most
 * 4096 nodes, about 0.1% of a loop — not by turns. */
#define TR__DEPTH_WALK_NS 100000000u
#define TR__DEPTH_WALK_MAX 4096u

typedef struct tr__bstat {
    const tr_behavior *beh; /* NULL: the "other" entry */
    uint64_t spawned, exited; /* incarnations started (init ran), ended */
    uint64_t handled;         /* user messages handled by its ended actors (the
                                 living's are their own counters: metrics.c) */
    uint64_t depth_max;       /* largest mailbox seen on a sampled turn */
    uint64_t samples;         /* messages of sampled turns */
    uint64_t time_ns;         /* their handler time */
    uint64_t hist[TR__HBOUNDS + 1];
} tr__bstat;

/* Stuck calls a loop published at its last check (metrics.c). */
typedef struct tr__stuck {
    tr_pid caller, callee;
    uint64_t since; /* runtime clock: when the call began */
} tr__stuck;

typedef struct tr__loop_metrics {
    uint64_t sent;          /* messages sent by this loop's actors */
    uint64_t cross;         /* ... to actors of other loops */
    uint64_t exits[5];      /* actors ended, by tr_exit_kind */
    uint64_t call_timeouts; /* calls of this loop's actors that timed out */
    uint64_t call_failures; /* calls failed by their callee's end (on its loop) */
    uint64_t calls;         /* calls pending now */
    uint32_t sample_left;   /* turns before the next sampled one */
    uint32_t nbeh;          /* entries in use (release store), "other" aside */
    uint32_t capbeh;
    tr__bstat *beh;         /* [capbeh + 1], the last "other"; NULL: metrics off */
    uint64_t beh_overflow;  /* actors bound to "other" */
    uint64_t start_ns;      /* uv_hrtime when the loop's thread began (0: not yet) */
    uint64_t rest_at;       /* uv_hrtime when it last went to rest */
    uint64_t walked_at;     /* uv_hrtime of the last mailbox walk */
    uint64_t depth;         /* the sampled turn's mailbox (0: not measured) */
    struct tr__bstat *sample_bs; /* the turn being sampled: its behaviour, or NULL */
    uint64_t sample_t0, sample_h0;
    uint64_t idle_ns;       /* time spent at rest, up to its last wake */
    /* Stuck calls: the loop's last check, under the runtime's stuck_mu. */
    tr__stuck *stuck;
    uint32_t nstuck, capstuck;
    uint64_t stuck_reported; /* calls reported in the log (their begin times ≤) */
} tr__loop_metrics;

/* The runtime's part (tr_runtime.metrics): the registry (metrics.c) and
 * what the stuck-call check and the report share (stuck.c). */
struct tr__metrics {
    uv_mutex_t mu;          /* the families and series lists */
    struct family *first, *last;
    unsigned nseries;
    uint64_t overflow;      /* atomic: registrations refused by the cap */
    uint64_t plain_sent;    /* atomic: messages sent by plain threads */
    uv_mutex_t stuck_mu;    /* the loops' published stuck calls */
    uint64_t kill_report_at; /* atomic: uv_hrtime of the last shutdown-timeout report */
};

#define TR__M_ADD(L, field, d) ck_pr_store_64(&(L)->m.field, (L)->m.field + (uint64_t)(d))

#endif /* TR_METRICS_H */
