/*
 * time.c — the runtime clock and the timer API (send-after, intervals,
 * cancel). The heap itself is timer.c; firing is in loop.c.
 */
#include <string.h>

#include "loop.h"

uint64_t tr_now(const tr_runtime *rt)
{
    return rt ? tr__now(rt) : 0;
}

int tr_runtime_clock_advanced(tr_runtime *rt)
{
    if (!rt)
        return TR_EINVAL;
    /* Every loop looks at its timers on its next turn; wake them all. */
    for (unsigned i = 0; i < rt->nloops; i++)
        tr__loop_kick(rt->loops[i]);
    return 0;
}

static uint64_t ms_to_ns(uint64_t ms)
{
    return ms > UINT64_MAX / 1000000u ? UINT64_MAX : ms * 1000000u;
}

static uint64_t deadline_after(const tr_runtime *rt, uint64_t ms)
{
    if (ms == TR_FOREVER)
        return UINT64_MAX;
    uint64_t now = tr__now(rt), d = ms_to_ns(ms);
    return d > UINT64_MAX - now ? UINT64_MAX : now + d;
}

static int arm_send(tr__loop *L, tr_actor *self, tr_pid to, uint64_t delay_ms,
                    uint64_t period_ms, uint32_t type, const void *data, size_t len,
                    tr_timer_id *out)
{
    uint64_t id;
    tr__timer *t = tr__timer_new(&L->timers, &L->pool, len, &id);
    if (!t)
        return TR_ENOMEM;
    t->kind = TR__TIMER_SEND;
    t->to = to;
    t->type = type;
    t->period = ms_to_ns(period_ms);
    if (len)
        memcpy(t->data, data, len);
    tr__actor_remember_timer(self, t);
    tr__timer_arm(&L->timers, t, deadline_after(L->rt, delay_ms));
    TR__STAT_ADD(L, timers, 1);
    tr__loop_timers_changed(L);
    if (out)
        *out = id;
    return 0;
}

static int start_timer(tr_actor *self, tr_pid to, uint64_t delay_ms,
                       uint64_t period_ms, uint32_t type, const void *data,
                       size_t len, tr_timer_id *out)
{
    tr__loop *L;
    int rc = tr__self_payload(self, data, len, &L);
    if (rc != 0)
        return rc;
    if (!tr__msgtype_user_send(type))
        return TR_EINVAL; /* reserved types: the runtime's own timers use tr__send_after_self */
    return arm_send(L, self, to, delay_ms, period_ms, type, data, len, out);
}

int tr__send_after_self(tr__loop *L, tr_actor *self, uint64_t delay_ms, uint32_t type,
                        const void *data, size_t len, tr_timer_id *out)
{
    return arm_send(L, self, tr__actor_pid(self), delay_ms, 0, type, data, len, out);
}

int tr_send_after(tr_actor *self, tr_pid to, uint64_t delay_ms, uint32_t type,
                  const void *data, size_t len, tr_timer_id *out)
{
    return start_timer(self, to, delay_ms, 0, type, data, len, out);
}

int tr_send_interval(tr_actor *self, tr_pid to, uint64_t period_ms, uint32_t type,
                     const void *data, size_t len, tr_timer_id *out)
{
    if (period_ms == 0 || period_ms == TR_FOREVER)
        return TR_EINVAL;
    return start_timer(self, to, period_ms, period_ms, type, data, len, out);
}

int tr_timer_cancel(tr_actor *self, tr_timer_id id)
{
    if (!self)
        return TR_EINVAL;
    tr__loop *L = tr__running_loop(self);
    if (!L)
        return TR_EWRONGTHREAD;
    tr__timer *t = tr__timer_find(&L->timers, id);
    if (!t || t->kind != TR__TIMER_SEND || t->owner != self)
        return TR_ENOTFOUND;
    tr__actor_drop_timer(L, t);
    tr__loop_timers_changed(L);
    return 0;
}

uint64_t tr__deadline_after(const tr_runtime *rt, uint64_t ms)
{
    return deadline_after(rt, ms);
}
