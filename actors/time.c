/*
 * time.c — the runtime clock and the timer API (send-after, intervals,
 * cancel). The heap itself is timer.c; firing is in loop.c.
 */
#include <stdlib.h>
#include <string.h>

#include "subsys.h"
#include "workers.h"

uint64_t tr_now(const tr_runtime *rt)
{
    return rt ? tr__now(rt) : 0;
}

int tr_runtime_clock_advanced(tr_runtime *rt)
{
    if (!rt)
        return TR_EINVAL;
    /* Every loop looks at its timers on its next turn; wake them all —
     * not parked any more, so that tr__quiescent sees them busy until
     * they have looked and gone back to sleep. */
    for (unsigned i = 0; i < rt->nloops; i++) {
        ck_pr_store_int(&rt->loops[i]->parked, 0);
        tr__loop_kick(rt->loops[i]);
    }
    tr__waiters_clock_moved(rt); /* plain threads' deadlines are on this clock */
    return 0;
}

/* ---- virtual time (subsys.h) ------------------------------------------------ */

int tr__vtime_install(tr_runtime *rt, const tr__vtime *vt)
{
    if (!rt || !vt || !vt->waiting || !vt->move || !rt->opts.clock || rt->vtime)
        return TR_EINVAL;
    if (ck_pr_load_int(&rt->state) != TR__RT_CREATED)
        return TR_EALREADY;
    tr__vtime *copy = tr__malloc(sizeof *copy);
    if (!copy)
        return TR_ENOMEM;
    *copy = *vt;
    rt->vtime = copy;
    return 0;
}

int tr__det_install(tr_runtime *rt)
{
    if (!rt || !rt->vtime)
        return TR_EINVAL;
    if (ck_pr_load_int(&rt->state) != TR__RT_CREATED)
        return TR_EALREADY;
    rt->det = true;
    rt->opts.batch = 1; /* a step is one message */
    return 0;
}

void *tr__vtime_data(const tr_runtime *rt)
{
    return rt && rt->vtime ? rt->vtime->ud : NULL;
}

int tr__vtime_look(tr_runtime *rt, uint64_t until, uint64_t since, bool (*done)(void *),
                   void *ud)
{
    const tr__vtime *vt = rt->vtime;
    if (!vt)
        return 0;
    uint64_t to = 0;
    switch (vt->waiting(rt, vt->ud, until, since, &to)) {
    case TR__VT_MOVE:
        if (!done || !done(ud))
            vt->move(vt->ud, to);
        return 1;
    case TR__VT_AGAIN:
        return 1;
    case TR__VT_GIVE_UP:
        return -1;
    default:
        return 0;
    }
}

void tr__vtime_destroy(tr_runtime *rt)
{
    if (!rt->vtime)
        return;
    if (rt->vtime->destroy)
        rt->vtime->destroy(rt->vtime->ud);
    free(rt->vtime);
    rt->vtime = NULL;
}

/* One collect: every loop's rest sequence into seq[]; false as soon as one
 * is awake, has been woken (parked cleared: mail, a clock move) or rests
 * with a timer already due at `now` (it parked just before the clock
 * moved: the wake that clock move sent is still on its way). */
static bool collect(tr_runtime *rt, uint64_t now, uint32_t *seq, uint64_t *next)
{
    uint64_t earliest = UINT64_MAX;
    for (unsigned i = 0; i < rt->nloops; i++) {
        tr__loop *L = rt->loops[i];
        seq[i] = ck_pr_load_32(&L->rest_seq);
        ck_pr_fence_load();
        if ((seq[i] & 1u) || !ck_pr_load_int(&L->parked))
            return false;
        uint64_t d = ck_pr_load_64(&L->rest_next);
        if (d <= now)
            return false;
        if (d < earliest)
            earliest = d;
    }
    *next = earliest;
    return true;
}

int tr__quiescent(tr_runtime *rt, uint64_t *next)
{
    uint64_t n1 = UINT64_MAX, n2 = UINT64_MAX;
    if (!rt)
        return TR_EINVAL;
    if (tr__on_loop_thread())
        return TR_EWRONGTHREAD;
    int state = ck_pr_load_int(&rt->state);
    if (state == TR__RT_CREATED)
        return TR_EINVAL;
    if (state == TR__RT_STOPPED) {
        if (next)
            *next = UINT64_MAX;
        return 1; /* nothing runs any more */
    }
    uint32_t a[TR__MAX_LOOPS], b[TR__MAX_LOOPS];
    uint64_t now = tr__now(rt);
    /* Jobs first: a job's outcome is sent before it stops counting, so a
     * count of 0 read here means its mail has woken its loop already. */
    if (tr__workers_active(rt->workers) != 0 || !collect(rt, now, a, &n1))
        return 0;
    ck_pr_fence_load();
    if (tr__workers_active(rt->workers) != 0 || !collect(rt, now, b, &n2))
        return 0;
    for (unsigned i = 0; i < rt->nloops; i++)
        if (a[i] != b[i])
            return 0;
    if (next)
        *next = n2;
    return 1;
}

uint64_t tr__deadline_after(const tr_runtime *rt, tr_duration ms)
{
    if (ms < 0)
        return UINT64_MAX; /* TR_INFINITE: no need to read the clock */
    return tr__deadline_from(tr__now(rt), ms);
}

/* delay_ms and period_ms are checked (>= 0); period 0: one-shot. */
static int arm_send(tr__loop *L, tr_actor *self, tr_pid to, tr_duration delay_ms,
                    tr_duration period_ms, uint32_t type, const void *data, size_t len,
                    tr_timer_id *out)
{
    uint64_t id;
    tr__timer *t = tr__timer_new(&L->timers, &L->pool, len, &id);
    if (!t)
        return TR_ENOMEM;
    t->kind = TR__TIMER_SEND;
    t->to = to;
    t->type = type;
    t->period = tr__ms_to_ns(period_ms);
    if (len)
        memcpy(t->data, data, len);
    if (tr__actor_remember_timer(L, self, t) != 0) {
        tr__timer_free(&L->timers, &L->pool, t);
        return TR_ENOMEM;
    }
    tr__timer_arm(&L->timers, t, tr__deadline_after(L->rt, delay_ms));
    TR__STAT_ADD(L, timers, 1);
    tr__loop_timers_changed(L);
    if (out)
        *out = id;
    return 0;
}

static int start_timer(tr_actor *self, tr_pid to, tr_duration delay_ms,
                       tr_duration period_ms, uint32_t type, const void *data,
                       size_t len, tr_timer_id *out)
{
    /* No default delay, and no "never": a message never sent needs no timer. */
    if (delay_ms < 0)
        return TR_EINVAL;
    tr__loop *L;
    int rc = tr__self_payload(self, data, len, &L);
    if (rc != 0)
        return rc;
    if (!tr__msgtype_user_send(type))
        return TR_EINVAL; /* reserved types: the runtime's own timers use tr__send_after_self */
    return arm_send(L, self, to, delay_ms, period_ms, type, data, len, out);
}

int tr__send_after_self(tr__loop *L, tr_actor *self, tr_duration delay_ms, uint32_t type,
                        const void *data, size_t len, tr_timer_id *out)
{
    if (delay_ms < 0)
        return TR_EINVAL;
    return arm_send(L, self, tr__actor_pid(self), delay_ms, 0, type, data, len, out);
}

int tr_send_after(tr_actor *self, tr_pid to, tr_duration delay_ms, uint32_t type,
                  const void *data, size_t len, tr_timer_id *out)
{
    return start_timer(self, to, delay_ms, 0, type, data, len, out);
}

int tr_send_interval(tr_actor *self, tr_pid to, tr_duration period_ms, uint32_t type,
                     const void *data, size_t len, tr_timer_id *out)
{
    /* A period must be a positive count: 0 would fire on every check, and
     * neither a default nor "never" makes a period. */
    if (period_ms <= 0)
        return TR_EINVAL;
    return start_timer(self, to, period_ms, period_ms, type, data, len, out);
}

int tr_timer_cancel(tr_actor *self, tr_timer_id id)
{
    tr__loop *L;
    int self_rc = tr__self_loop(self, &L);
    if (self_rc != 0)
        return self_rc;
    tr__timer *t = tr__timer_find(&L->timers, id);
    if (!t || t->kind != TR__TIMER_SEND || t->owner != self)
        return TR_ENOTFOUND;
    tr__actor_drop_timer(L, t);
    tr__loop_timers_changed(L);
    return 0;
}
