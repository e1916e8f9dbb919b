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
