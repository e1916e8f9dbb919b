/*
 * group.c — task groups: structured concurrency for an actor's children.
 *
 * Design notes
 * ------------
 * A group is bookkeeping inside its owner, on the owner's loop; it needs no
 * lock and no actor of its own. Child actors are spawned as the owner's
 * children and monitored; jobs are the owner's jobs. Their DOWN and JOB
 * messages reach the owner's mailbox like any other, and the runtime hands
 * them here (tr__groups_intercept) instead of to the receive callback: a
 * table maps each monitor ref and job id to its group member.
 *
 * A member is WAITING (max_running reached, or not yet started), RUNNING,
 * or ENDED with its outcome. The group completes when it is closed and no
 * member is waiting or running: it sends TR_MSG_GROUP_DONE to its owner —
 * one owned buffer with every outcome in spawn order — and goes. Failure
 * (fail-fast), the deadline and tr_group_cancel all cancel the same way:
 * waiting members end cancelled, running actors get a shutdown signal
 * (their DOWN still ends them: the group waits, as Trio's nursery does),
 * running jobs are cancelled (a job cancelled in time sends nothing, so it
 * ends at once).
 */
#include <stdlib.h>
#include <string.h>

#include "subsys.h"

enum { WAITING, RUNNING, ENDED };
enum { ACTOR, JOB };

typedef struct member {
    uint8_t kind;  /* ACTOR, JOB */
    uint8_t state; /* WAITING, RUNNING, ENDED */
    uint64_t key;  /* RUNNING: the monitor ref (actor) or the job id */
    tr_pid pid;    /* RUNNING actor: its pid */
    /* To start it (WAITING): the spawn options or the job, with a copy of
     * the argument. */
    const tr_behavior *beh;
    tr_spawn_opts opts;
    tr_job_fn fn;
    void *arg;
    size_t arg_len;
    /* ENDED: how it ended, and its result (malloc'd). */
    tr_down down;
    void *result;
} member;

typedef struct group {
    tr_group_id id;
    struct group *next;
    tr_group_opts opts;
    member *m;
    uint32_t n, cap;
    uint32_t next_start; /* first member that may still be WAITING */
    uint32_t running;
    uint32_t failed, first_failed;
    int32_t code;      /* why it was cancelled, or 0 */
    bool closed;
    bool cancelled;
    tr_timer_id deadline_timer;
} group;

typedef struct tr__groups {
    group *list;
    tr_group_id next_id;
    /* The running members, by key (member_key): p the group, val the
     * member's index. */
    tr__hmap running;
} tr__groups;

/* An actor's task groups are a resource it owns (subsys.h): they go when
 * its exit begins (their children and jobs end with it), and they see its
 * reserved-type mail first — a child's DOWN, a job's outcome, a deadline —
 * through the kind's interception. */
static void groups_release(tr__loop *L, tr_actor *a, void **data);
static void groups_teardown(tr_actor *a, void **data);
static bool groups_intercept(tr__loop *L, tr_actor *a, void **data, tr_msg *pub);
static tr__owned_kind groups_kind = {.name = "task groups", .stop = groups_release,
                                     .teardown = groups_teardown,
                                     .intercept = groups_intercept};

/* The actor's task groups, or NULL if it has never opened one. */
static tr__groups *groups(tr_actor *a)
{
    void **d = tr__owned(a, &groups_kind);
    return d ? *d : NULL;
}

/* ---- the table of running members ------------------------------------------------ */

/* A running member's key: its monitor ref, or its job id with the top bit
 * set (both count from 1 and never reach it): one table for both. */
static uint64_t member_key(uint64_t key, uint8_t kind)
{
    return kind == JOB ? key | (UINT64_C(1) << 63) : key;
}

/* ---- helpers ------------------------------------------------------------------------ */

static group *find(tr__groups *gs, tr_group_id id)
{
    for (group *g = gs ? gs->list : NULL; g; g = g->next)
        if (g->id == id)
            return g;
    return NULL;
}

/* Whether `id`, which names no open group of self, names one that has
 * completed: a group goes when it completes, but its id stays taken (ids
 * count up per owner and are never reused), so an id self was given and
 * cannot find is one that was closed and has ended — TR_EALREADY to close
 * or cancel, TR_ESTOPPED to spawn into — not an unknown one (TR_ENOTFOUND). */
static bool completed(const tr__groups *gs, tr_group_id id)
{
    return gs && id != 0 && id <= gs->next_id;
}

/* The owner's checks for every call; *L is its loop. */
static int owner_check(tr_actor *self, tr__loop **L)
{
    return tr__self_loop(self, L);
}

static void end_member(group *g, member *m, tr_pid pid, int kind, int code, const char *text,
                       const void *result, uint32_t result_len)
{
    if (m->state == RUNNING)
        g->running--;
    m->state = ENDED;
    free(m->arg);
    m->arg = NULL;
    tr__down_fill(&m->down, pid, (tr_exit_kind)kind, code, text);
    m->result = NULL;
    if (result_len && (m->result = tr__malloc(result_len)) != NULL) {
        memcpy(m->result, result, result_len);
        m->down.result_len = result_len;
    }
}

static void cancel(tr__loop *L, tr_actor *self, group *g, int32_t code);

/* A member ended badly (not by the group's own cancel). */
static void failed(tr__loop *L, tr_actor *self, group *g, uint32_t i)
{
    const member *m = &g->m[i];
    if (g->failed++ == 0)
        g->first_failed = i;
    if (g->opts.mode == TR_GROUP_FAIL_FAST && !g->cancelled)
        cancel(L, self, g, m->down.kind == TR_EXIT_ERROR ? m->down.code : TR_EFAILED);
}

/* ---- starting members ---------------------------------------------------------------- */

/* Starts member i now. On failure it has ended with the error. */
static int start_member(tr__loop *L, tr_actor *self, group *g, uint32_t i)
{
    member *m = &g->m[i];
    tr__groups *gs = groups(self);
    int rc;
    uint64_t key = 0;
    tr_pid pid = TR_PID_NONE;
    if (m->kind == ACTOR) {
        tr_spawn_opts o = m->opts;
        o.arg = m->arg;
        o.arg_len = m->arg_len;
        rc = tr_spawn_monitor(self, m->beh, &o, &pid, &key);
    } else {
        rc = tr_offload(self, m->fn, m->arg, m->arg_len, &key);
    }
    if (rc == 0 && !tr__hmap_put(&gs->running, member_key(key, m->kind), i, g)) {
        rc = TR_ENOMEM;
        if (m->kind == ACTOR) {
            tr_demonitor(self, key);
            tr_signal_exit(L->rt, pid, TR_EXIT_KILLED);
        } else {
            tr_job_cancel(self, key);
        }
    }
    if (rc != 0) {
        end_member(g, m, TR_PID_NONE, TR_EXIT_ERROR, rc, "could not start", NULL, 0);
        return rc;
    }
    m->state = RUNNING;
    m->key = key;
    m->pid = pid;
    g->running++;
    free(m->arg);
    m->arg = NULL;
    return 0;
}

static void complete(tr__loop *L, tr_actor *self, group *g);

/* Starts waiting members while the limit allows, then completes the group
 * if that is all. */
static void advance(tr__loop *L, tr_actor *self, group *g)
{
    while (!g->cancelled && g->next_start < g->n &&
           (!g->opts.max_running || g->running < g->opts.max_running)) {
        uint32_t i = g->next_start++;
        if (g->m[i].state == WAITING && start_member(L, self, g, i) != 0) {
            failed(L, self, g, i);
        }
    }
    if (g->closed && g->running == 0 && (g->cancelled || g->next_start >= g->n))
        complete(L, self, g);
}

static void cancel(tr__loop *L, tr_actor *self, group *g, int32_t code)
{
    if (g->cancelled)
        return;
    g->cancelled = true;
    g->closed = true;
    g->code = code;
    for (uint32_t i = 0; i < g->n; i++) {
        member *m = &g->m[i];
        if (m->state == WAITING) {
            end_member(g, m, TR_PID_NONE, TR_EXIT_SHUTDOWN, TR_ECANCELED, "cancelled", NULL, 0);
        } else if (m->state == RUNNING && m->kind == ACTOR) {
            /* Its DOWN ends it; the monitor's target is in the table. */
            tr_signal_exit(L->rt, m->pid, TR_EXIT_SHUTDOWN);
        } else if (m->state == RUNNING && tr_job_cancel(self, m->key) == 0) {
            tr__hmap_take(&groups(self)->running, member_key(m->key, JOB), NULL);
            end_member(g, m, (tr_pid)m->key, TR_EXIT_SHUTDOWN, TR_ECANCELED, "cancelled",
                       NULL, 0);
        }
    }
}

/* ---- completion ------------------------------------------------------------------------ */

static void free_group(group *g)
{
    for (uint32_t i = 0; i < g->n; i++) {
        free(g->m[i].arg);
        free(g->m[i].result);
    }
    free(g->m);
    free(g);
}

static void unlink_group(tr__groups *gs, group *g)
{
    for (group **pp = &gs->list; *pp; pp = &(*pp)->next)
        if (*pp == g) {
            *pp = g->next;
            return;
        }
}

#define ALIGN8(x) (((x) + 7u) & ~(size_t)7u)

/* Every member has ended: one message with every outcome, then the group
 * goes. */
static void complete(tr__loop *L, tr_actor *self, group *g)
{
    size_t len = ALIGN8(sizeof(tr_group_done) + g->n * sizeof(uint32_t));
    for (uint32_t i = 0; i < g->n; i++)
        len += ALIGN8(sizeof(tr_down) + g->m[i].down.result_len);
    unsigned char *buf = tr__malloc(len);
    if (buf) {
        tr_group_done *h = (tr_group_done *)buf;
        h->code = g->cancelled ? g->code : g->failed ? TR_EFAILED : 0;
        h->n = g->n;
        h->failed = g->failed;
        h->first_failed = g->failed ? g->first_failed : UINT32_MAX;
        uint32_t *off = (uint32_t *)(h + 1);
        size_t at = ALIGN8(sizeof *h + g->n * sizeof *off);
        for (uint32_t i = 0; i < g->n; i++) {
            const member *m = &g->m[i];
            off[i] = (uint32_t)at;
            memcpy(buf + at, &m->down, sizeof m->down);
            if (m->down.result_len)
                memcpy(buf + at + sizeof m->down, m->result, m->down.result_len);
            at += ALIGN8(sizeof m->down + m->down.result_len);
        }
        tr__callhdr ch = {.ref = g->id, .deadline = 0};
        tr_pid me = tr__actor_pid(self);
        if (tr__send(L->rt, L, me, me, TR_MSG_GROUP_DONE, TR__MF_OWNED | TR__MF_REF, &ch, buf,
                     len, buf, free) != 0) {
            free(buf);
            buf = NULL;
        }
    }
    if (!buf)
        tr__log(L->rt, TR_LOG_ERROR,
                "actor " TR_PID_FMT ": task group %llu ended but its completion could not "
                "be sent: out of memory",
                TR_PID_ARGS(tr__actor_pid(self)), (unsigned long long)g->id);
    if (g->deadline_timer)
        tr_timer_cancel(self, g->deadline_timer);
    unlink_group(groups(self), g);
    free_group(g);
}

/* ---- the runtime's hooks ------------------------------------------------------------------ */

static bool groups_intercept(tr__loop *L, tr_actor *a, void **data, tr_msg *pub)
{
    tr__groups *gs = *data;
    if (!gs)
        return false;
    if (pub->type == TR__MSG_GROUP_DEADLINE) {
        tr_group_id id;
        if (!tr__msgtype_len_ok(pub->type, pub->len))
            return true; /* only our own timer sends it: never short */
        memcpy(&id, pub->data, sizeof id);
        group *g = find(gs, id);
        if (g) {
            g->deadline_timer = 0;
            cancel(L, a, g, TR_ETIMEDOUT);
            advance(L, a, g);
        }
        return true;
    }
    uint8_t kind;
    if (pub->type == TR_MSG_DOWN)
        kind = ACTOR;
    else if (pub->type == TR_MSG_JOB_DONE || pub->type == TR_MSG_JOB_FAILED)
        kind = JOB;
    else
        return false;
    tr__hent s;
    if (!tr__hmap_take(&gs->running, member_key(pub->ref, kind), &s))
        return false; /* not a group's: the owner's own monitor or job */
    group *g = s.p;
    uint32_t i = (uint32_t)s.val;
    member *m = &g->m[i];
    bool bad;
    if (kind == ACTOR) {
        const tr_down *d = pub->data;
        end_member(g, m, d->pid, d->kind, d->code, d->text, tr_down_result(d), d->result_len);
        bad = d->kind != TR_EXIT_NORMAL && !(g->cancelled && d->kind == TR_EXIT_SHUTDOWN);
    } else if (pub->type == TR_MSG_JOB_DONE) {
        end_member(g, m, pub->ref, TR_EXIT_NORMAL, 0, NULL, pub->data, pub->len);
        bad = false;
    } else {
        int32_t code = TR_EFAILED;
        if (pub->len == sizeof code)
            memcpy(&code, pub->data, sizeof code);
        end_member(g, m, pub->ref, TR_EXIT_ERROR, code, NULL, NULL, 0);
        bad = true;
    }
    if (bad)
        failed(L, a, g, i);
    advance(L, a, g);
    return true;
}

static void groups_teardown(tr_actor *a, void **data)
{
    (void)a;
    tr__groups *gs = *data;
    if (!gs)
        return;
    while (gs->list) {
        group *g = gs->list;
        gs->list = g->next;
        free_group(g);
    }
    tr__hmap_free(&gs->running);
    free(gs);
    *data = NULL;
}

static void groups_release(tr__loop *L, tr_actor *a, void **data)
{
    (void)L;
    groups_teardown(a, data);
}

/* ---- the API ---------------------------------------------------------------------------- */

void tr_group_opts_init(tr_group_opts *opts)
{
    if (opts)
        memset(opts, 0, sizeof *opts);
}

int tr_group_open(tr_actor *self, const tr_group_opts *opts, tr_group_id *out)
{
    tr__loop *L;
    int rc = owner_check(self, &L);
    if (rc != 0)
        return rc;
    if (!out || (opts && (opts->mode > TR_GROUP_COLLECT ||
                          !tr__duration_field_ok(opts->timeout_ms))))
        return TR_EINVAL;
    if (self->status != TR__RUNNING)
        return TR_ESTOPPED;
    int err = 0;
    void **d = tr__own(L, self, &groups_kind, &err);
    if (d && !*d)
        *d = tr__calloc(1, sizeof(tr__groups));
    tr__groups *gs = d ? *d : NULL;
    if (!gs)
        return TR_ENOMEM;
    group *g = tr__calloc(1, sizeof *g);
    if (!g)
        return TR_ENOMEM;
    if (opts)
        g->opts = *opts;
    /* The default (0, TR_DEFAULT) and TR_INFINITE: no deadline. */
    tr__duration_field(g->opts.timeout_ms, TR_INFINITE, &g->opts.timeout_ms);
    g->id = ++gs->next_id;
    if (g->opts.timeout_ms != TR_INFINITE &&
        (rc = tr__send_after_self(L, self, g->opts.timeout_ms, TR__MSG_GROUP_DEADLINE, &g->id,
                                  sizeof g->id, &g->deadline_timer)) != 0) {
        gs->next_id--; /* never given out: not a completed group's */
        free(g);
        return rc;
    }
    g->next = gs->list;
    gs->list = g;
    *out = g->id;
    return 0;
}

/* Adds a WAITING member and starts it if the limit allows. On failure the
 * member is gone and nothing was accepted. */
static int add_member(tr_actor *self, tr_group_id id, member *proto, const void *arg,
                      size_t arg_len, tr_pid *out)
{
    tr__loop *L;
    int rc = owner_check(self, &L);
    if (rc != 0)
        return rc;
    if (!arg && arg_len)
        return TR_EINVAL;
    if (arg_len > L->rt->opts.max_payload)
        return TR_EMSGSIZE;
    /* A child that waits for a place under max_running is spawned later:
     * its options are checked now, at the call that receives them. */
    if (proto->kind == ACTOR && (rc = tr__spawn_opts_check(L->rt, &proto->opts)) != 0)
        return rc;
    if (self->status != TR__RUNNING)
        return TR_ESTOPPED;
    group *g = find(groups(self), id);
    if (!g)
        return completed(groups(self), id) ? TR_ESTOPPED : TR_ENOTFOUND;
    if (g->closed)
        return TR_ESTOPPED;
    if (g->n == g->cap && !tr__grow(&g->m, &g->cap, sizeof *g->m, 8))
        return TR_ENOMEM;
    member *m = &g->m[g->n];
    *m = *proto;
    m->state = WAITING;
    m->arg_len = arg_len;
    m->arg = NULL;
    if (arg_len && !(m->arg = tr__malloc(arg_len)))
        return TR_ENOMEM;
    if (arg_len)
        memcpy(m->arg, arg, arg_len);
    uint32_t i = g->n++;
    tr_pid pid = TR_PID_NONE;
    if (g->next_start == i && (!g->opts.max_running || g->running < g->opts.max_running)) {
        g->next_start++;
        rc = start_member(L, self, g, i);
        if (rc != 0) {
            free(g->m[i].arg);
            g->n--;
            g->next_start--;
            return rc;
        }
        pid = m->kind == ACTOR ? m->pid : TR_PID_NONE;
    }
    if (out)
        *out = pid;
    return 0;
}

int tr_group_spawn(tr_actor *self, tr_group_id g, const tr_behavior *behavior,
                   const tr_spawn_opts *opts, tr_pid *out)
{
    if (!behavior || !behavior->receive || (opts && !opts->arg && opts->arg_len))
        return TR_EINVAL;
    member proto;
    memset(&proto, 0, sizeof proto);
    proto.kind = ACTOR;
    proto.beh = behavior;
    if (opts)
        proto.opts = *opts;
    else
        tr_spawn_opts_init(&proto.opts);
    return add_member(self, g, &proto, proto.opts.arg, proto.opts.arg_len, out);
}

int tr_group_offload(tr_actor *self, tr_group_id g, tr_job_fn fn, const void *arg,
                     size_t arg_len)
{
    if (!fn)
        return TR_EINVAL;
    member proto;
    memset(&proto, 0, sizeof proto);
    proto.kind = JOB;
    proto.fn = fn;
    return add_member(self, g, &proto, arg, arg_len, NULL);
}

/* Closes or cancels a group of self's; either may complete it. */
static int end_group(tr_actor *self, tr_group_id id, bool cancelling)
{
    tr__loop *L;
    int rc = owner_check(self, &L);
    if (rc != 0)
        return rc;
    group *g = find(groups(self), id);
    if (!g)
        return completed(groups(self), id) ? TR_EALREADY : TR_ENOTFOUND;
    if (cancelling)
        cancel(L, self, g, TR_ECANCELED);
    else if (g->closed)
        return TR_EALREADY;
    g->closed = true;
    advance(L, self, g); /* may complete and free it */
    return 0;
}

int tr_group_close(tr_actor *self, tr_group_id id)
{
    return end_group(self, id, false);
}

int tr_group_cancel(tr_actor *self, tr_group_id id)
{
    return end_group(self, id, true);
}
