/*
 * workers.c — the worker pool: blocking and CPU-bound work off the loops.
 *
 * Design notes
 * ------------
 * A fixed set of threads, separate from libuv's own thread pool (so CPU work
 * never starves file-system and DNS requests), takes jobs from one bounded
 * FIFO guarded by a mutex and a condition variable. Jobs are coarse (a
 * function call worth offloading), so a lock per job costs nothing that
 * matters, and workers can sleep when there is no work.
 *
 * A job is shared by its owner (the offloading actor, on its loop) and the
 * pool; it has two references and a state word:
 *
 *     PENDING  -- waits in the owner's own queue (its in-flight limit)
 *     QUEUED   -- in the pool's FIFO
 *     RUNNING  -- a worker took it (CAS QUEUED -> RUNNING)
 *     CANCELLED-- the owner cancelled it while QUEUED (CAS QUEUED -> CANCELLED);
 *                the worker that finds it drops it without running it
 *
 * The outcome travels as a message to the owner (plain-thread send from the
 * worker), carrying the job id in its call header. On the owner's loop the
 * id is looked up in the owner's job list: a job that was cancelled (or
 * whose owner exited) is no longer there, so its outcome is dropped rather
 * than delivered. A running job cannot be stopped; it only sees a flag.
 *
 * The in-flight limit is a semaphore that never blocks the loop: jobs over
 * the limit wait in the owner's list as PENDING and are submitted when an
 * earlier job's outcome arrives (or it is cancelled).
 */
#include "workers.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "subsys.h"

enum { JOB_PENDING, JOB_QUEUED, JOB_RUNNING, JOB_CANCELLED };

struct tr_job {
    int state;      /* atomic, enum above */
    int cancel;     /* atomic: set on cancel or owner exit */
    int refs;       /* atomic: owner + pool */
    tr_runtime *rt;
    tr__workers *pool;
    tr_pid owner;
    tr_job_id id;
    tr_job_fn fn;
    struct tr_job *prev, *next; /* owner's list (owner's loop only) */
    struct tr_job *qnext;       /* pool FIFO (under the pool mutex) */
    void *result;               /* worker only */
    size_t result_len;
    size_t arg_len;
    unsigned char arg[];
};

/* Per actor, created on its first offload; owner's loop only. */
typedef struct tr__jobs {
    tr_job *list;          /* every job not yet concluded, newest first */
    unsigned limit;        /* 0: none */
    unsigned in_flight;    /* QUEUED or RUNNING (counted until the outcome) */
    unsigned pending;      /* PENDING, waiting for the limit */
} tr__jobs;

struct tr__workers {
    tr_runtime *rt;
    uv_mutex_t mu;
    uv_cond_t cv;
    tr_job *head, *tail; /* the FIFO */
    unsigned count, cap;
    int stopping;
    unsigned nthreads;  /* configured */
    unsigned started;   /* threads actually running (joined on destroy) */
    uv_thread_t *threads;
    int nice;
    uint64_t next_id;    /* atomic */
    /* Jobs queued or running (atomic), for tr__quiescent: taken when a job
     * is queued, given back after its outcome has been sent. */
    unsigned active;
    /* For the metrics (atomic): jobs run to their outcome, and jobs that
     * did not run (cancelled while queued, or dropped by the stop). */
    uint64_t done, cancelled;
};

/* The classic reference count: everything this thread did with the job
 * happens before the last holder frees it (release, then acquire). */
static void job_unref(tr_job *j)
{
    tr__handoff_release(j);
    if (ck_pr_faa_int(&j->refs, -1) == 1) {
        tr__handoff_acquire(j);
        free(j->result);
        free(j);
    }
}

/* ---- the pool -------------------------------------------------------------- */

/* w->mu held, a job queued: takes the oldest and runs it (unless the pool
 * stops or it was cancelled), unlocked, then sends its outcome — or
 * `fail` (non-NULL: the test kit's injected failure) instead of running
 * it. Returns with w->mu released. */
static void run_head(tr__workers *w, const int32_t *fail)
{
    tr_job *j = w->head;
    w->head = j->qnext;
    if (!w->head)
        w->tail = NULL;
    w->count--;
    bool run = !w->stopping && ck_pr_cas_int(&j->state, JOB_QUEUED, JOB_RUNNING);
    uv_mutex_unlock(&w->mu);
    if (run) {
        tr__handoff_acquire(j);
        int rc = fail ? *fail : j->fn(j, j->arg, j->arg_len);
        if (!ck_pr_load_int(&j->cancel)) {
            tr__callhdr h = {.ref = j->id, .deadline = 0};
            int32_t code = rc;
            if (rc == 0)
                tr__send(j->rt, NULL, TR_PID_NONE, j->owner, TR_MSG_JOB_DONE, TR__MF_JOB, &h,
                         j->result, j->result_len, NULL, NULL);
            else
                tr__send(j->rt, NULL, TR_PID_NONE, j->owner, TR_MSG_JOB_FAILED, TR__MF_JOB,
                         &h, &code, sizeof code, NULL, NULL);
        }
    }
    ck_pr_inc_64(run ? &w->done : &w->cancelled);
    tr__handoff_release(j);
    job_unref(j);
    ck_pr_dec_uint(&w->active); /* after the outcome: a settle sees one or the other */
}

static void worker_main(void *arg)
{
    tr__workers *w = arg;
    tr__tls_helper_rt = w->rt; /* jobs may not free the runtime (tr_runtime_free) */
    if (w->nice == TR_WORKER_IDLE) {
        /* Run only when a core would otherwise idle. */
        struct sched_param sp = {0};
        (void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    } else if (w->nice > 0) {
        /* Linux: niceness is per thread. */
        errno = 0;
        (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), w->nice);
    }
    uv_mutex_lock(&w->mu);
    for (;;) {
        while (!w->head && !w->stopping)
            uv_cond_wait(&w->cv, &w->mu);
        if (!w->head)
            break; /* stopping and drained */
        run_head(w, NULL);
        uv_mutex_lock(&w->mu);
    }
    uv_mutex_unlock(&w->mu);
}

int tr__workers_create(tr_runtime *rt, tr__workers **out)
{
    tr__workers *w = tr__calloc(1, sizeof *w);
    if (!w)
        return TR_ENOMEM;
    w->rt = rt;
    w->cap = rt->opts.job_queue;
    w->nthreads = rt->opts.workers;
    w->nice = rt->opts.worker_nice;
    w->threads = tr__calloc(w->nthreads, sizeof *w->threads);
    if (!w->threads || uv_mutex_init(&w->mu) != 0) {
        free(w->threads);
        free(w);
        return TR_ENOMEM;
    }
    if (uv_cond_init(&w->cv) != 0) {
        uv_mutex_destroy(&w->mu);
        free(w->threads);
        free(w);
        return TR_ESYSTEM;
    }
    *out = w;
    return 0;
}

int tr__workers_start(tr__workers *w)
{
    for (; w->started < w->nthreads; w->started++)
        if (uv_thread_create(&w->threads[w->started], worker_main, w) != 0)
            return TR_ESYSTEM; /* destroy joins the ones that started */
    return 0;
}

void tr__workers_stop(tr__workers *w)
{
    uv_mutex_lock(&w->mu);
    w->stopping = 1;
    uv_cond_broadcast(&w->cv);
    uv_mutex_unlock(&w->mu);
    for (unsigned i = 0; i < w->started; i++)
        uv_thread_join(&w->threads[i]);
    w->started = 0;
    w->stopping = 0; /* a later start begins afresh (no job was queued) */
}

void tr__workers_destroy(tr__workers *w)
{
    if (!w)
        return;
    tr__workers_stop(w);
    /* No worker runs now: drop what is queued. */
    while (w->head) {
        tr_job *j = w->head;
        w->head = j->qnext;
        job_unref(j);
        ck_pr_dec_uint(&w->active);
    }
    uv_cond_destroy(&w->cv);
    uv_mutex_destroy(&w->mu);
    free(w->threads);
    free(w);
}

/* Puts `j` in the pool's FIFO. TR_EFULL when the pool is full. */
static int submit(tr__workers *w, tr_job *j)
{
    ck_pr_store_int(&j->state, JOB_QUEUED);
    tr__handoff_release(j);
    uv_mutex_lock(&w->mu);
    int rc = 0;
    if (w->stopping)
        rc = TR_ESTOPPED;
    else if (w->count >= w->cap)
        rc = TR_EFULL;
    if (rc == 0) {
        j->qnext = NULL;
        if (w->tail)
            w->tail->qnext = j;
        else
            w->head = j;
        w->tail = j;
        w->count++;
        ck_pr_inc_uint(&w->active);
        uv_cond_signal(&w->cv);
    }
    uv_mutex_unlock(&w->mu);
    return rc;
}

/* ---- the owner's side ------------------------------------------------------------ */

/* An actor's jobs are a resource it owns: when its exit begins, queued
 * jobs never run and results of running ones are discarded; anything
 * offloaded during terminate goes the same way when it has ended. */
static void jobs_release(tr__loop *L, tr_actor *a, void **data);
static tr__owned_kind jobs_kind = {.name = "jobs", .stop = jobs_release,
                                   .release = jobs_release};

/* The actor's job bookkeeping, or NULL if it has never offloaded. */
static tr__jobs *jobs(tr_actor *a)
{
    void **d = tr__owned(a, &jobs_kind);
    return d ? *d : NULL;
}

/* The actor's job bookkeeping, made on first use; NULL when out of memory. */
static tr__jobs *jobs_of(tr__loop *L, tr_actor *a)
{
    int err = 0;
    void **d = tr__own(L, a, &jobs_kind, &err);
    if (d && !*d)
        *d = tr__calloc(1, sizeof(tr__jobs));
    return d ? *d : NULL;
}

static void unlink_job(tr__jobs *js, tr_job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        js->list = j->next;
    if (j->next)
        j->next->prev = j->prev;
    j->prev = j->next = NULL;
}

static tr_job *find_job(tr__jobs *js, tr_job_id id)
{
    for (tr_job *j = js ? js->list : NULL; j; j = j->next)
        if (j->id == id)
            return j;
    return NULL;
}

/* Tells the owner a job failed without running (its outcome message). */
static void fail_job(tr__loop *L, tr_actor *a, tr_job *j, int32_t code)
{
    tr__callhdr h = {.ref = j->id, .deadline = 0};
    tr__send(L->rt, L, TR_PID_NONE, tr__actor_pid(a), TR_MSG_JOB_FAILED, TR__MF_JOB,
             &h, &code, sizeof code, NULL, NULL);
}

/* Submits the oldest pending jobs while the limit allows. */
static void submit_pending(tr__loop *L, tr_actor *a)
{
    tr__jobs *js = jobs(a);
    while (js->pending && (js->limit == 0 || js->in_flight < js->limit)) {
        tr_job *oldest = NULL;
        for (tr_job *j = js->list; j; j = j->next)
            if (ck_pr_load_int(&j->state) == JOB_PENDING)
                oldest = j; /* the list is newest first */
        js->pending--;
        js->in_flight++;
        int rc = submit(L->rt->workers, oldest);
        if (rc != 0) {
            /* The pool never took it: drop the pool's reference; the job
             * stays listed and its failure arrives as its outcome. */
            ck_pr_store_int(&oldest->state, JOB_CANCELLED);
            job_unref(oldest);
            fail_job(L, a, oldest, rc);
        }
    }
}

int tr_offload(tr_actor *self, tr_job_fn fn, const void *arg, size_t arg_len,
               tr_job_id *out)
{
    if (!self || !fn || !out || (!arg && arg_len))
        return TR_EINVAL;
    tr__loop *L = tr__running_loop(self);
    if (!L)
        return TR_EWRONGTHREAD;
    tr_runtime *rt = L->rt;
    if (arg_len > rt->opts.max_payload)
        return TR_EMSGSIZE;
    if (self->status != TR__RUNNING)
        return TR_ESTOPPED;
    tr__jobs *js = jobs_of(L, self);
    if (!js)
        return TR_ENOMEM;
    tr_job *j = tr__malloc(sizeof *j + arg_len);
    if (!j)
        return TR_ENOMEM;
    memset(j, 0, sizeof *j);
    j->refs = 2;
    j->rt = rt;
    j->owner = tr__actor_pid(self);
    j->id = ck_pr_faa_64(&rt->workers->next_id, 1) + 1;
    j->fn = fn;
    j->arg_len = arg_len;
    if (arg_len)
        memcpy(j->arg, arg, arg_len);
    if (js->limit && js->in_flight >= js->limit) {
        j->state = JOB_PENDING;
        js->pending++;
    } else {
        int rc = submit(rt->workers, j);
        if (rc != 0) {
            free(j);
            return rc;
        }
        js->in_flight++;
    }
    j->next = js->list;
    if (js->list)
        js->list->prev = j;
    js->list = j;
    *out = j->id;
    return 0;
}

int tr_offload_limit(tr_actor *self, unsigned max)
{
    tr__loop *L;
    int self_rc = tr__self_loop(self, &L);
    if (self_rc != 0)
        return self_rc;
    tr__jobs *js = jobs_of(L, self);
    if (!js)
        return TR_ENOMEM;
    js->limit = max;
    submit_pending(L, self);
    return 0;
}

/* Ends the owner's interest in `j`: cancel it wherever it is. */
static void abandon(tr__jobs *js, tr_job *j)
{
    unlink_job(js, j);
    int st = ck_pr_load_int(&j->state);
    ck_pr_store_int(&j->cancel, 1);
    if (st == JOB_PENDING) {
        js->pending--;
        job_unref(j); /* the pool never saw it */
    } else if (st == JOB_QUEUED && ck_pr_cas_int(&j->state, JOB_QUEUED, JOB_CANCELLED)) {
        js->in_flight--; /* it will never run: no outcome comes */
    } else {
        /* Running (or done): its outcome message is dropped on arrival.
         * The worker holds its own reference. */
        js->in_flight--;
    }
    job_unref(j);
}

int tr_job_cancel(tr_actor *self, tr_job_id id)
{
    tr__loop *L;
    int self_rc = tr__self_loop(self, &L);
    if (self_rc != 0)
        return self_rc;
    tr__jobs *js = jobs(self);
    tr_job *j = find_job(js, id);
    if (!j)
        return TR_ENOTFOUND;
    abandon(js, j);
    submit_pending(L, self);
    return 0;
}

bool tr__jobs_outcome(tr__loop *L, tr_actor *a, tr_job_id id)
{
    tr__jobs *js = jobs(a);
    tr_job *j = find_job(js, id);
    if (!j)
        return false; /* cancelled: drop the outcome */
    unlink_job(js, j);
    js->in_flight--;
    job_unref(j);
    submit_pending(L, a);
    return true;
}

static void jobs_release(tr__loop *L, tr_actor *a, void **data)
{
    (void)L;
    (void)a;
    tr__jobs *js = *data;
    if (!js)
        return;
    while (js->list)
        abandon(js, js->list);
    free(js);
    *data = NULL;
}

/* ---- the job's side ------------------------------------------------------------- */

int tr_job_set_result(tr_job *job, const void *data, size_t len)
{
    if (!job || (!data && len))
        return TR_EINVAL;
    if (len > job->rt->opts.max_payload)
        return TR_EMSGSIZE;
    void *copy = NULL;
    if (len && !(copy = tr__malloc(len)))
        return TR_ENOMEM;
    if (len)
        memcpy(copy, data, len);
    free(job->result);
    job->result = copy;
    job->result_len = len;
    return 0;
}

int tr_job_cancelled(const tr_job *job)
{
    return job ? ck_pr_load_int(&job->cancel) : 1;
}

tr_runtime *tr_job_runtime(const tr_job *job)
{
    return job ? job->rt : NULL;
}

tr_pid tr_job_owner(const tr_job *job)
{
    return job ? job->owner : TR_PID_NONE;
}

void tr__workers_get_counts(tr__workers *w, tr__workers_counts *out)
{
    *out = (tr__workers_counts){0};
    if (!w)
        return;
    unsigned active = ck_pr_load_uint(&w->active);
    uv_mutex_lock(&w->mu);
    unsigned queued = w->count;
    uv_mutex_unlock(&w->mu);
    out->queued = queued;
    out->running = active > queued ? active - queued : 0;
    out->done = ck_pr_load_64(&w->done);
    out->cancelled = ck_pr_load_64(&w->cancelled);
}

unsigned tr__workers_active(tr__workers *w)
{
    return w ? ck_pr_load_uint(&w->active) : 0;
}

unsigned tr__workers_queued(tr__workers *w)
{
    uv_mutex_lock(&w->mu);
    unsigned n = w->count;
    uv_mutex_unlock(&w->mu);
    return n;
}

bool tr__workers_run_one(tr__workers *w, const int32_t *fail)
{
    uv_mutex_lock(&w->mu);
    if (!w->head) {
        uv_mutex_unlock(&w->mu);
        return false;
    }
    tr_runtime *saved = tr__tls_helper_rt;
    tr__tls_helper_rt = w->rt; /* as on a worker: the job may not free the runtime */
    run_head(w, fail);
    tr__tls_helper_rt = saved;
    return true;
}
