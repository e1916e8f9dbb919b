/*
 * supervisor.c — the supervisor behaviour: the state machine that starts,
 * watches and restarts children, and its request protocol.
 *
 * Design notes
 * ------------
 * A supervisor is an ordinary actor built on the runtime's primitives: it
 * spawns each child with notify_started (the start acknowledgement),
 * monitored from birth (tr_spawn_monitor: the DOWN carries the real reason
 * even for a child that dies in its init), traps exits (its parent's shutdown
 * arrives as a TR_MSG_EXIT message, so it can stop its children in its own
 * order) and uses timers (shutdown timeouts, restart backoff). It never
 * touches another actor's memory; data flows channels <- actors <- here.
 *
 * Everything it does is one of three sequences, driven by messages:
 *
 *   start  children lo..hi in order; each waits for the previous one's
 *          STARTED (or its DOWN: a failed start)
 *   stop   children hi..lo in reverse order; each gets a shutdown signal
 *          and a kill timer of its shutdown_ms, and we wait for its DOWN
 *   then   what follows the stop: restart lo..hi (one_for_all,
 *          rest_for_one), or end the supervisor (shutdown, intensity
 *          exceeded, failed start)
 *
 * A child spec owns a copy of its start argument, so every restart begins
 * from the same fresh state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sup.h"

/*
 * Message types. The supervisor's protocol is the runtime's reserved types
 * (actors/msgtypes.h): the TR_MSG_SUP_* requests users call; ADD, which
 * only tr_sup_add_child / tr_rt_sup_add_child send; and its private types,
 * which only the runtime can send — the WAIT of tr_rt_sup_spawn and its
 * own timers (TR__MSG_SUP_KILL: a child still stopping; _RESTART_DUE: a
 * backoff is over), armed with tr__send_after_self. So no other sender can
 * kill or restart a child by sending a message. Every payload is checked
 * against the table's length rule before it is read.
 */

/* STARTING: the first start; UP: watching; REGROUP: stopping a group before
 * restarting it; RESTARTING: (re)starting children; STOPPING: stopping all
 * before the supervisor ends. */
/* ---- small helpers ------------------------------------------------------------- */


static void reason_text(const tr_down *d, char *buf, size_t len)
{
    if (d->kind == TR_EXIT_ERROR)
        tr__error_text(buf, len, d->code, d->text);
    else
        snprintf(buf, len, "%s", tr_exit_kind_name((tr_exit_kind)d->kind));
}

int tr__sup_add_kid(sup *s, const flat_child *f, const void *arg, uint32_t arg_len)
{
    if (s->n == s->cap && !tr__grow(&s->kids, &s->cap, sizeof *s->kids, 8))
        return TR_ENOMEM;
    kid *k = &s->kids[s->n];
    memset(k, 0, sizeof *k);
    memcpy(k->id, f->id, sizeof k->id);
    k->beh = f->beh;
    k->restart = f->restart;
    k->shutdown_ms = f->shutdown_ms;
    k->loop = f->loop;
    k->arg_len = arg_len;
    k->serial = ++s->next_serial;
    if (arg_len) {
        if (!(k->arg = tr__malloc(arg_len)))
            return TR_ENOMEM;
        memcpy(k->arg, arg, arg_len);
    }
    s->n++;
    return 0;
}

void tr__sup_remove_kid(sup *s, uint32_t i)
{
    free(s->kids[i].arg);
    memmove(&s->kids[i], &s->kids[i + 1], (s->n - i - 1) * sizeof *s->kids);
    s->n--;
}

static int find_by_ref(const sup *s, tr_ref ref)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (s->kids[i].pid != TR_PID_NONE && s->kids[i].mon == ref)
            return (int)i;
    return -1;
}

int tr__sup_find_by_pid(const sup *s, tr_pid pid)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (pid != TR_PID_NONE && s->kids[i].pid == pid)
            return (int)i;
    return -1;
}

static void answer_waiters(tr_actor *self, sup *s, int32_t rc)
{
    for (uint32_t i = 0; i < s->nwaiters; i++)
        tr__reply_raw(self, &s->waiters[i], TR__MSG_SUP_WAIT, &rc, sizeof rc);
    s->nwaiters = 0;
}

/* One of our own timers: an internal type, to ourselves. */
static int self_timer(tr_actor *self, uint32_t ms, uint32_t type, const void *data, size_t len,
                      tr_timer_id *out)
{
    tr__loop *L = tr__running_loop(self);
    if (!L)
        return TR_EWRONGTHREAD;
    return tr__send_after_self(L, self, ms, type, data, len, out);
}

/* ---- sequences ------------------------------------------------------------------- */

int tr__sup_start_kid(tr_actor *self, sup *s, uint32_t i)
{
    kid *k = &s->kids[i];
    tr_spawn_opts o;
    tr_spawn_opts_init(&o);
    o.arg = k->arg;
    o.arg_len = k->arg_len;
    o.loop = k->loop;
    o.shutdown_ms = k->shutdown_ms;
    o.notify_started = 1;
    k->up_since = 0;
    return tr_spawn_monitor(self, k->beh, &o, &k->pid, &k->mon);
}

static int end_supervisor(tr_actor *self, sup *s);
static int after_sequence(tr_actor *self, sup *s);

/* Starts the next child of the start sequence (cursor..hi), or finishes. */
int tr__sup_continue_start(tr_actor *self, sup *s)
{
    for (; s->cursor <= s->hi && s->cursor < s->n; s->cursor++) {
        kid *k = &s->kids[s->cursor];
        if (k->pid != TR_PID_NONE || k->removing)
            continue;
        int rc = tr__sup_start_kid(self, s, s->cursor);
        if (rc != 0)
            return rc;
        s->waiting = k->pid;
        return 0; /* its STARTED or DOWN moves us on */
    }
    if (s->phase == STARTING) {
        s->started = true;
        answer_waiters(self, s, 0);
    }
    s->phase = UP;
    s->waiting = TR_PID_NONE;
    return after_sequence(self, s);
}

static int restart_after_exit(tr_actor *self, sup *s, uint32_t i);

/* Back to UP: what happened to children meanwhile is handled now. */
static int after_sequence(tr_actor *self, sup *s)
{
    for (uint32_t i = 0; i < s->n && s->phase == UP; i++) {
        kid *k = &s->kids[i];
        uint8_t p = k->pending;
        k->pending = PEND_NONE;
        if (p == PEND_NONE || k->pid != TR_PID_NONE || k->removing)
            continue;
        int rc;
        if (p == PEND_FAILED) {
            rc = restart_after_exit(self, s, i);
        } else {
            s->phase = RESTARTING;
            s->lo = s->hi = s->cursor = i;
            rc = tr__sup_continue_start(self, s);
        }
        if (rc != 0)
            return rc;
    }
    return s->phase == UP && s->nheld ? tr__sup_release_held(self, s) : 0;
}

/* A signal of `kind` to child `k`, through the runtime's parent side
 * (tr__stop_child): out of memory, it is owed and sent again until it can
 * be made, so a stop never waits forever on a signal that was not sent. */
static void signal_kid(tr_actor *self, tr_pid pid, tr_exit_kind kind)
{
    tr__loop *L = tr__running_loop(self);
    if (L && tr__stop_child(L, self, pid, kind) == 0)
        return;
    tr_signal_exit(tr_runtime_of(self), pid, kind); /* not ours (cannot happen) */
}

/* A shutdown signal, and a kill when its shutdown time is up. */
void tr__sup_stop_kid(tr_actor *self, kid *k)
{
    /* The timer first: its deadline counts from before the child can react.
     * Without memory for it, the child is killed now (as the runtime does
     * for a parent's children): its DOWN must come. */
    if (k->shutdown_ms != TR_INFINITE && !k->kill_timer &&
        self_timer(self, k->shutdown_ms, TR__MSG_SUP_KILL, &k->pid, sizeof k->pid,
                   &k->kill_timer) != 0) {
        signal_kid(self, k->pid, TR_EXIT_KILLED);
        return;
    }
    signal_kid(self, k->pid, TR_EXIT_SHUTDOWN);
}

/* Stops the next running child, from cursor down to lo, or moves on. */
static int continue_stop(tr_actor *self, sup *s)
{
    for (;;) {
        if (s->cursor < s->n && s->cursor >= s->lo && s->kids[s->cursor].pid != TR_PID_NONE) {
            kid *k = &s->kids[s->cursor];
            tr__sup_stop_kid(self, k);
            s->waiting = k->pid;
            return 0; /* its DOWN moves us on */
        }
        if (s->cursor <= s->lo || s->cursor == 0 || s->n == 0)
            break;
        s->cursor--;
    }
    s->waiting = TR_PID_NONE;
    if (s->after == AFTER_RESTART) {
        s->phase = RESTARTING;
        s->cursor = s->lo;
        return tr__sup_continue_start(self, s);
    }
    return end_supervisor(self, s);
}

/* Stops children hi..lo in reverse order; `after` says what comes next. */
static int begin_stop(tr_actor *self, sup *s, uint32_t lo, uint32_t hi, enum after after)
{
    s->phase = after == AFTER_RESTART ? REGROUP : STOPPING;
    s->after = after;
    s->lo = lo;
    s->hi = hi;
    s->cursor = hi < s->n ? hi : (s->n ? s->n - 1 : 0);
    if (after == AFTER_RESTART) /* temporary children are not restarted */
        for (uint32_t i = lo; i <= hi && i < s->n; i++)
            if (s->kids[i].restart == TR_TEMPORARY)
                s->kids[i].removing = 1;
    return continue_stop(self, s);
}


static int end_supervisor(tr_actor *self, sup *s)
{
    tr__sup_refuse_held(self, s);
    if (s->exit_kind == TR_EXIT_ERROR) {
        answer_waiters(self, s, TR_EFAILED);
        return tr_exit_error(self, s->exit_code, s->exit_text);
    }
    answer_waiters(self, s, TR_ESTOPPED);
    return tr_exit(self, (tr_exit_kind)s->exit_kind);
}

static int fail(tr_actor *self, sup *s, int code, const char *text)
{
    s->exit_kind = TR_EXIT_ERROR;
    s->exit_code = code;
    snprintf(s->exit_text, sizeof s->exit_text, "%s", text);
    return begin_stop(self, s, 0, s->n ? s->n - 1 : 0, AFTER_EXIT);
}

/* ---- restarts ----------------------------------------------------------------------- */

/* "in 5000 ms", or "ever" for a TR_INFINITE period: the window of the
 * restart intensity, for reports. */
static const char *window_text(const sup *s, char *buf, size_t len)
{
    if (s->spec.period_ms == TR_INFINITE)
        return "ever";
    snprintf(buf, len, "in %lld ms", (long long)s->spec.period_ms);
    return buf;
}

/* Records a restart; false when the intensity is exceeded. */
static bool intensity_ok(tr_actor *self, sup *s)
{
    uint64_t now = tr_now(tr_runtime_of(self));
    uint32_t ring = s->spec.max_restarts + 1;
    s->history[s->hpos] = now;
    s->hpos = (s->hpos + 1) % ring;
    if (s->hcount < ring)
        s->hcount++;
    if (s->hcount < ring)
        return true;
    /* The oldest of the last max_restarts + 1 restarts (with an intensity
     * of 0, the one just recorded: always too recent). A TR_INFINITE
     * period saturates: restarts are never forgotten. */
    uint64_t oldest = s->history[s->hpos];
    return now - oldest > tr__ms_to_ns(s->spec.period_ms);
}

static tr_duration backoff_ms(tr_actor *self, sup *s, kid *k)
{
    if (s->spec.backoff_min_ms == 0)
        return 0;
    uint64_t now = tr_now(tr_runtime_of(self));
    if (now - k->up_since >= tr__ms_to_ns(s->spec.backoff_reset_ms))
        k->streak = 0;
    /* d < max <= INT64_MAX before each doubling: no overflow. */
    uint64_t max = s->spec.backoff_max_ms == TR_INFINITE
                       ? (uint64_t)INT64_MAX
                       : (uint64_t)s->spec.backoff_max_ms;
    uint64_t d = (uint64_t)s->spec.backoff_min_ms;
    for (uint32_t i = 0; i < k->streak && d < max; i++)
        d *= 2;
    if (d > max)
        d = max;
    k->streak++;
    s->rng = s->rng * 6364136223846793005ull + 1442695040888963407ull;
    return (tr_duration)(d / 2 + (s->rng >> 33) % (d / 2 + 1)); /* jitter: d/2 .. d */
}

static bool wants_restart(const kid *k, int kind)
{
    if (k->removing || k->restart == TR_TEMPORARY)
        return false;
    if (k->restart == TR_TRANSIENT)
        return kind != TR_EXIT_NORMAL && kind != TR_EXIT_SHUTDOWN;
    return true;
}

/* A label value for the metrics' "k=v,..." form: no ',' or '='. */
static void label_safe(char *dst, size_t len, const char *src)
{
    snprintf(dst, len, "%s", src);
    for (char *p = dst; *p; p++)
        if (*p == ',' || *p == '=')
            *p = '_';
}

/* troupe_supervisor_restarts_total{supervisor, child}: the supervisor by
 * its registered name, else its pid. Restarts are rare: the series is
 * found (or registered) under the registry's lock each time. */
static void count_restart(tr_actor *self, const kid *k)
{
    tr_runtime *rt = tr_runtime_of(self);
    char name[TR_NAME_MAX + 1] = "", who[TR_NAME_MAX + 32], id[TR_CHILD_ID_MAX + 1];
    tr__registry_name_of(rt, tr_self(self), name, sizeof name);
    if (name[0])
        label_safe(who, sizeof who, name);
    else
        snprintf(who, sizeof who, TR_PID_FMT, TR_PID_ARGS(tr_self(self)));
    label_safe(id, sizeof id, k->id);
    char labels[sizeof who + sizeof id + 32];
    snprintf(labels, sizeof labels, "supervisor=%s,child=%s", who, id);
    tr_metric_desc d = {.name = "troupe_supervisor_restarts_total",
                        .help = "Children restarted, by supervisor and child id",
                        .type = TR_METRIC_COUNTER, .labels = labels};
    tr_metric *m;
    if (tr__metric_register(rt, &d, &m, true) == 0)
        tr_metric_inc(m, 1);
}

static int restart_after_exit(tr_actor *self, sup *s, uint32_t i)
{
    kid *k = &s->kids[i];
    if (!intensity_ok(self, s)) {
        char window[32];
        SLOG(self, TR_LOG_ERROR,
             "supervisor " TR_PID_FMT ": restart intensity exceeded (%u restarts %s); "
             "shutting down",
             TR_PID_ARGS(tr_self(self)), s->spec.max_restarts,
             window_text(s, window, sizeof window));
        return fail(self, s, TR_ELIMIT, "restart intensity exceeded");
    }
    k->restarts++;
    count_restart(self, k);
    switch (s->spec.strategy) {
    case TR_ONE_FOR_ALL:
    case TR_REST_FOR_ONE: {
        uint32_t lo = s->spec.strategy == TR_ONE_FOR_ALL ? 0 : i;
        SLOG(self, TR_LOG_INFO,
             "supervisor " TR_PID_FMT ": child '%s' failed: restarting '%s'..'%s' (%s)",
             TR_PID_ARGS(tr_self(self)), k->id, s->kids[lo].id, s->kids[s->n - 1].id,
             s->spec.strategy == TR_ONE_FOR_ALL ? "one_for_all" : "rest_for_one");
        return begin_stop(self, s, lo, s->n - 1, AFTER_RESTART);
    }
    default: {
        tr_duration delay = backoff_ms(self, s, k);
        SLOG(self, TR_LOG_INFO,
             "supervisor " TR_PID_FMT ": restarting child '%s' (restart %u, in %lld ms)",
             TR_PID_ARGS(tr_self(self)), k->id, k->restarts, (long long)delay);
        if (delay)
            return self_timer(self, delay, TR__MSG_SUP_RESTART_DUE, &k->serial,
                              sizeof k->serial, NULL);
        s->phase = RESTARTING;
        s->lo = s->hi = s->cursor = i;
        return tr__sup_continue_start(self, s);
    }
    }
}

static int on_started(tr_actor *self, sup *s, tr_pid from)
{
    int i = tr__sup_find_by_pid(s, from);
    if (i < 0)
        return 0;
    kid *k = &s->kids[i];
    k->up_since = tr_now(tr_runtime_of(self));
    SLOG(self, TR_LOG_INFO, "supervisor " TR_PID_FMT ": child '%s' started as " TR_PID_FMT,
         TR_PID_ARGS(tr_self(self)), k->id, TR_PID_ARGS(from));
    if (k->start_req_pending) {
        k->start_req_pending = 0;
        tr__sup_start_reply(self, &k->start_req, 0, from);
    }
    if ((s->phase == STARTING || s->phase == RESTARTING) && from == s->waiting) {
        s->cursor++;
        return tr__sup_continue_start(self, s);
    }
    return 0;
}

static int on_down(tr_actor *self, sup *s, const tr_msg *msg)
{
    int i = find_by_ref(s, msg->ref);
    if (i < 0)
        return 0;
    const tr_down *d = msg->data;
    kid *k = &s->kids[i];
    char why[160];
    reason_text(d, why, sizeof why);
    bool abnormal = d->kind != TR_EXIT_NORMAL && d->kind != TR_EXIT_SHUTDOWN;
    SLOG(self, abnormal ? TR_LOG_WARN : TR_LOG_INFO,
         "supervisor " TR_PID_FMT ": child '%s' " TR_PID_FMT " exited: %s",
         TR_PID_ARGS(tr_self(self)), k->id, TR_PID_ARGS(k->pid), why);
    tr_pid was = k->pid;
    k->pid = TR_PID_NONE;
    if (k->kill_timer) {
        tr_timer_cancel(self, k->kill_timer);
        k->kill_timer = 0;
    }
    if (k->start_req_pending) {
        k->start_req_pending = 0;
        tr__sup_start_reply(self, &k->start_req, TR_EFAILED, TR_PID_NONE);
        /* A child added at run time that fails its init is not kept (OTP's
         * start_child); mid-sequence, the sequence deals with it. */
        if (s->phase == UP) {
            tr__sup_remove_kid(s, (uint32_t)i);
            return 0;
        }
    }
    bool awaited = was == s->waiting;
    switch (s->phase) {
    case STOPPING:
        return awaited ? continue_stop(self, s) : 0; /* others: skipped when reached */
    case REGROUP:
        if (awaited)
            return continue_stop(self, s);
        break; /* pending below: restarted by the regroup if it covers it */
    case STARTING:
        if (awaited) {
            char text[80];
            snprintf(text, sizeof text, "child '%s' failed to start", k->id);
            SLOG(self, TR_LOG_ERROR, "supervisor " TR_PID_FMT ": %s: %s",
                 TR_PID_ARGS(tr_self(self)), text, why);
            return fail(self, s, TR_EFAILED, text);
        }
        break; /* a started one died meanwhile: its policy applies below */
    case RESTARTING:
        if (awaited) {
            /* The restart failed in init: that is another restart. */
            s->phase = UP;
            s->waiting = TR_PID_NONE;
            int rc = wants_restart(k, d->kind) ? restart_after_exit(self, s, (uint32_t)i) : 0;
            return rc == 0 ? after_sequence(self, s) : rc;
        }
        break;
    case UP:
        break;
    }
    if (k->dynamic && (k->removing || !wants_restart(k, d->kind))) {
        tr__sup_remove_kid(s, (uint32_t)i);
        return 0;
    }
    if (!wants_restart(k, d->kind))
        return 0;
    if (s->phase != UP) {
        k->pending = PEND_FAILED; /* after the sequence, unless it covers k */
        return 0;
    }
    return restart_after_exit(self, s, (uint32_t)i);
}

static int sup_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    sup *s = state;
    switch (msg->type) {
    case TR_MSG_STARTED:
        return on_started(self, s, msg->from);
    case TR_MSG_DOWN:
        return on_down(self, s, msg);
    case TR_MSG_EXIT: { /* our parent (or the runtime) stops us */
        const tr_down *d = msg->data;
        if (msg->from != tr_parent(self) && d->kind != TR_EXIT_SHUTDOWN)
            return 0;
        if (s->phase == STOPPING)
            return 0;
        s->exit_kind = TR_EXIT_SHUTDOWN;
        return begin_stop(self, s, 0, s->n ? s->n - 1 : 0, AFTER_EXIT);
    }
    case TR__MSG_SUP_KILL: { /* our kill timer: internal, so from us */
        tr_pid pid;
        if (msg->from != tr_self(self) || !tr__msgtype_len_ok(msg->type, msg->len))
            return 0;
        memcpy(&pid, msg->data, sizeof pid);
        int i = tr__sup_find_by_pid(s, pid);
        if (i >= 0) {
            s->kids[i].kill_timer = 0;
            signal_kid(self, pid, TR_EXIT_KILLED);
        }
        return 0;
    }
    case TR__MSG_SUP_RESTART_DUE: { /* a backoff is over: internal, so from us */
        uint32_t serial, i;
        if (msg->from != tr_self(self) || !tr__msgtype_len_ok(msg->type, msg->len))
            return 0;
        memcpy(&serial, msg->data, sizeof serial);
        for (i = 0; i < s->n && s->kids[i].serial != serial; i++)
            ;
        if (i >= s->n || s->kids[i].pid != TR_PID_NONE || s->kids[i].removing)
            return 0;
        if (s->phase != UP) {
            s->kids[i].pending = PEND_START;
            return 0;
        }
        s->phase = RESTARTING;
        s->lo = s->hi = s->cursor = i;
        return tr__sup_continue_start(self, s);
    }
    default:
        if (!(msg->flags & TR_MSG_REQUEST))
            return 0; /* no one-way protocol: ignored */
        /* Not ours, or a payload that breaks its type's length rule: an
         * answer, at once, and nothing is read. */
        if (!tr__sup_is_request(msg->type) || !tr__msgtype_len_ok(msg->type, msg->len))
            return tr__sup_refuse(self, msg, TR_EINVAL);
        if (msg->type == TR_MSG_SUP_WHICH || msg->type == TR__MSG_SUP_WAIT ||
            s->phase == UP || s->phase == STOPPING)
            return tr__sup_on_request(self, s, msg);
        /* Out of memory to hold it: refuse it rather than end the supervisor. */
        return tr__sup_hold(s, msg) == 0 ? 0 : tr__sup_refuse(self, msg, TR_ENOMEM);
    }
}

static int sup_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    sup *s = state;
    const unsigned char *p = arg;
    if (len < sizeof(flat_head))
        return TR_EINVAL;
    flat_head h;
    memcpy(&h, p, sizeof h);
    p += sizeof h;
    s->spec = h.spec;
    /* The defaults (the spec was checked by validate). */
    tr_sup_spec *sp = &s->spec;
    sp->max_restarts = sp->max_restarts == TR_RESTARTS_NEVER ? 0
                       : sp->max_restarts                   ? sp->max_restarts
                                                            : 3;
    tr__duration_field(sp->period_ms, 5000, &sp->period_ms);
    tr__duration_field(sp->backoff_min_ms, 0, &sp->backoff_min_ms);
    tr__duration_field(sp->backoff_max_ms, 30000, &sp->backoff_max_ms);
    tr__duration_field(sp->backoff_reset_ms, 10000, &sp->backoff_reset_ms);
    s->rng = tr_self(self) ^ 0x9e3779b97f4a7c15ull;
    /* max_restarts <= TR_SUP_MAX_RESTARTS (validated): no wrap. */
    s->history = tr__calloc((size_t)s->spec.max_restarts + 1, sizeof *s->history);
    if (!s->history)
        return TR_ENOMEM;
    for (uint32_t i = 0; i < h.n; i++) {
        flat_child f;
        memcpy(&f, p, sizeof f);
        p += sizeof f;
        int rc = tr__sup_add_kid(s, &f, p, f.arg_len);
        if (rc != 0)
            return rc;
        p += f.arg_len;
    }
    int rc = tr_trap_exits(self, 1);
    if (rc != 0)
        return rc;
    tr__serve_reserved(self); /* it keeps requests and answers them later */
    if (s->spec.strategy == TR_SIMPLE_ONE_FOR_ONE) {
        s->phase = UP; /* the template is not started */
        s->started = true;
        return 0;
    }
    s->phase = STARTING;
    s->lo = s->cursor = 0;
    s->hi = s->n ? s->n - 1 : 0;
    return tr__sup_continue_start(self, s);
}

static void sup_terminate(tr_actor *self, void *state, const tr_exit_reason *r)
{
    (void)self;
    (void)r;
    sup *s = state;
    for (uint32_t i = 0; i < s->n; i++)
        free(s->kids[i].arg);
    free(s->kids);
    free(s->history);
    tr__sup_refuse_held(NULL, s);
    free(s->held);
    /* Nothing is left to reach: it runs once, after a failed init too. */
    memset(s, 0, sizeof *s);
}

static int sup_init_checked(tr_actor *self, void *state, const void *arg, size_t len)
{
    int rc = sup_init(self, state, arg, len);
    if (rc != 0)
        sup_terminate(self, state, NULL); /* it does not run after a failed init */
    return rc;
}

static const char *const strategy_names[] = {"one_for_one", "one_for_all", "rest_for_one",
                                             "simple_one_for_one"};
static const char *const phase_names[] = {"starting", "up", "regrouping", "restarting",
                                          "stopping"};

/* For the printed tree: strategy, phase, and each child with its restarts. */
static void sup_describe(tr_actor *self, void *state, char *buf, size_t len)
{
    (void)self;
    const sup *s = state;
    uint32_t up = 0, restarts = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        up += s->kids[i].pid != TR_PID_NONE;
        restarts += s->kids[i].restarts;
    }
    bool dyn = s->spec.strategy == TR_SIMPLE_ONE_FOR_ONE;
    char window[32];
    int at = snprintf(buf, len, "%s, %s, %u/%u children up, %u restarts (max %u %s)",
                      strategy_names[s->spec.strategy], phase_names[s->phase], up,
                      dyn ? s->n - 1 : s->n, restarts, s->spec.max_restarts,
                      window_text(s, window, sizeof window));
    for (uint32_t i = dyn ? 1 : 0; i < s->n && at > 0 && (size_t)at < len; i++) {
        const kid *k = &s->kids[i];
        at += snprintf(buf + at, len - (size_t)at, "%s%s%s", i == (dyn ? 1u : 0u) ? "; " : " ",
                       k->id[0] ? k->id : "?", k->pid == TR_PID_NONE ? "(down)" : "");
        if (k->restarts && at > 0 && (size_t)at < len)
            at += snprintf(buf + at, len - (size_t)at, "x%u", k->restarts);
    }
}

const tr_behavior tr__sup_behavior = {
    .name = "supervisor",
    .state_size = sizeof(sup),
    .init = sup_init_checked,
    .receive = sup_receive,
    .terminate = sup_terminate,
    .describe = sup_describe,
};
