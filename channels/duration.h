/*
 * duration.h — the internal side of tr_duration: checking a duration that
 * the API received, and turning one into an absolute deadline.
 *
 * It lives in channels/, the lowest layer, because the channel transport's
 * blocking waits use it; the runtime includes it from there (core.h). It
 * needs nothing but troupe.h and libuv.
 *
 * Design notes
 * ------------
 * A tr_duration is a signed count of milliseconds with two sentinels
 * (TR_INFINITE, TR_DEFAULT); what 0 and TR_DEFAULT mean depends on where
 * the duration is written (see troupe.h's conventions): as a function
 * argument 0 is zero and TR_DEFAULT the function's default, as a struct
 * field both are the field's default. The two checks below resolve that
 * once, at the call that receives the duration, into either a count of
 * milliseconds (>= 0) or TR_INFINITE; nothing past that point sees
 * TR_DEFAULT or another negative value.
 *
 * Deadlines are absolute nanoseconds. Every conversion from a duration to
 * a deadline goes through tr__deadline_from, which saturates: 1 << 62 ms
 * is about 146 million years, not, as `now + ms * 1000000` computed it,
 * a deadline that wrapped into the past. UINT64_MAX stands for "none".
 * Plain threads that block (tr_rt_call, the channel waits) sleep in real
 * time and pass uv_hrtime() as `now`; everything on a loop passes the
 * runtime clock (tr__deadline_after in time.c).
 */
#ifndef TR_DURATION_H
#define TR_DURATION_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "troupe.h"

/* For tr__duration_arg: a function that has no default for its duration
 * (TR_DEFAULT is then TR_EINVAL). */
#define TR__NO_DEFAULT INT64_MIN

/*
 * A duration argument: 0, positive values and TR_INFINITE pass as they
 * are; TR_DEFAULT becomes `def` (TR__NO_DEFAULT: refused); any other
 * negative value is refused. `def` itself is >= 0 or TR_INFINITE.
 * Returns 0 with *out set, or TR_EINVAL.
 */
static inline int tr__duration_arg(tr_duration d, tr_duration def, tr_duration *out)
{
    if (d == TR_DEFAULT)
        d = def;
    if (d < 0 && d != TR_INFINITE)
        return TR_EINVAL;
    *out = d;
    return 0;
}

/*
 * A duration field of an options or spec struct: 0 and TR_DEFAULT become
 * `def` (>= 0 or TR_INFINITE); positive values and TR_INFINITE pass; any
 * other negative value is refused. Returns 0 with *out set, or TR_EINVAL.
 */
static inline int tr__duration_field(tr_duration d, tr_duration def, tr_duration *out)
{
    return tr__duration_arg(d == 0 ? TR_DEFAULT : d, def, out);
}

/* The checks alone, for validating a struct before it is used. */
static inline bool tr__duration_field_ok(tr_duration d)
{
    return d >= 0 || d == TR_INFINITE || d == TR_DEFAULT;
}

/* Milliseconds (>= 0) to nanoseconds, saturating at UINT64_MAX; a negative
 * value (TR_INFINITE) is UINT64_MAX too. */
static inline uint64_t tr__ms_to_ns(tr_duration ms)
{
    if (ms < 0 || (uint64_t)ms > UINT64_MAX / 1000000u)
        return UINT64_MAX;
    return (uint64_t)ms * 1000000u;
}

/* a + b, saturating at UINT64_MAX. */
static inline uint64_t tr__add_sat(uint64_t a, uint64_t b)
{
    return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

/*
 * The one conversion of a checked duration (>= 0, or TR_INFINITE) into an
 * absolute deadline: `now` (ns, on the clock the deadline will be compared
 * with) plus `d`, saturating. UINT64_MAX: none — TR_INFINITE, or a
 * deadline beyond the clock's range, which it never reaches either.
 */
static inline uint64_t tr__deadline_from(uint64_t now, tr_duration d)
{
    return d == TR_INFINITE ? UINT64_MAX : tr__add_sat(now, tr__ms_to_ns(d));
}

/* The longest single sleep of a blocked plain thread. uv_cond_timedwait
 * adds its timeout to the clock and would wrap for huge ones, so a long
 * wait is slept in slices of at most this (an hour) and re-checked. */
#define TR__WAIT_SLICE_NS (3600ull * 1000000000ull)

/*
 * Sleeps on `cv` (with `mu` held) until it is signalled — or spuriously
 * woken — or until the real-time deadline `end` (uv_hrtime() ns;
 * UINT64_MAX: none) has passed or the current slice of it has. Returns
 * false, without sleeping, once `end` has passed; the caller re-checks its
 * condition after every true return.
 */
static inline bool tr__cond_wait_until(uv_cond_t *cv, uv_mutex_t *mu, uint64_t end)
{
    if (end == UINT64_MAX) {
        uv_cond_wait(cv, mu);
        return true;
    }
    uint64_t now = uv_hrtime();
    if (now >= end)
        return false;
    uint64_t slice = end - now;
    uv_cond_timedwait(cv, mu, slice < TR__WAIT_SLICE_NS ? slice : TR__WAIT_SLICE_NS);
    return true;
}

#endif /* TR_DURATION_H */
