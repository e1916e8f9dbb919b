/*
 * workers.h — the worker pool behind tr_offload (see workers.c).
 */
#ifndef TR_WORKERS_H
#define TR_WORKERS_H

#include "core.h"

typedef struct tr__workers tr__workers;

int tr__workers_create(tr_runtime *rt, tr__workers **out);

/* The pool's figures for the metrics (metrics.c). Any thread. */
typedef struct tr__workers_counts {
    uint64_t queued, running, done, cancelled;
} tr__workers_counts;
void tr__workers_get_counts(tr__workers *w, tr__workers_counts *out);
int tr__workers_start(tr__workers *w);
/* Joins the threads tr__workers_start started, for a start that failed:
 * the pool is as created (no job can be queued before the loops run). */
void tr__workers_stop(tr__workers *w);
/* Stops taking jobs, drops what is queued, waits for what runs, joins the
 * threads and frees everything. */
void tr__workers_destroy(tr__workers *w);
/* Jobs queued or running now. Any thread. */
unsigned tr__workers_active(tr__workers *w);
/* Jobs queued, not yet taken by a worker. Any thread. */
unsigned tr__workers_queued(tr__workers *w);
/* Deterministic mode (no worker threads): runs the oldest queued job on
 * the calling thread and sends its outcome — or, with `fail`, sends that
 * failure without running it. False if none was queued. */
bool tr__workers_run_one(tr__workers *w, const int32_t *fail);

/* The owner side, on the owner's loop. */
struct tr__jobs;
/* A JOB_DONE/JOB_FAILED message for `a`: true if it is to be delivered. */
bool tr__jobs_outcome(tr__loop *L, tr_actor *a, tr_job_id id);

#endif /* TR_WORKERS_H */
