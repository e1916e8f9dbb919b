/*
 * client.c — starting supervisors and asking them things: tr_sup_spawn,
 * tr_rt_sup_spawn (which waits for the first start through the private
 * WAIT request), tr_sup_add_child, and the plain-thread tr_rt_sup_*
 * helpers, each a blocking request whose wait ends with the answer or the
 * supervisor's end (its call fails).
 */
#include <stdlib.h>
#include <string.h>

#include "sup.h"

static int spawn_sup(tr_runtime *rt, tr_actor *self, const tr_sup_spec *spec,
                     const tr_spawn_opts *opts, tr_pid *out)
{
    if (self && !(rt = tr_runtime_of(self)))
        return TR_EWRONGTHREAD;
    int rc = tr__sup_validate(rt, spec);
    if (rc != 0 || !out || (opts && opts->arg))
        return rc ? rc : TR_EINVAL;
    size_t len;
    void *flat = tr__sup_flatten(spec, &len);
    if (!flat)
        return TR_ENOMEM;
    tr_spawn_opts o;
    if (opts)
        o = *opts;
    else
        tr_spawn_opts_init(&o);
    o.arg = flat;
    o.arg_len = len;
    if (o.shutdown_ms == 0 || o.shutdown_ms == TR_DEFAULT)
        o.shutdown_ms = TR_INFINITE; /* a supervisor always gets to stop its subtree */
    if (!self && o.top == TR_TOP_DEFAULT)
        o.top = TR_TOP_PERMANENT; /* the runtime lives as long as its top supervisor */
    rc = self ? tr_spawn(self, &tr__sup_behavior, &o, out) : tr_rt_spawn(rt, &tr__sup_behavior, &o, out);
    free(flat);
    return rc;
}

int tr_sup_spawn(tr_actor *self, const tr_sup_spec *spec, const tr_spawn_opts *opts,
                 tr_pid *out)
{
    if (!self)
        return TR_EINVAL;
    return spawn_sup(NULL, self, spec, opts, out);
}

/* tr_rt_sup_spawn's start and the wait for it. */
typedef struct sup_start {
    const tr_sup_spec *spec;
    const tr_spawn_opts *opts;
    tr_pid pid;
    bool spawned;
} sup_start;

/*
 * The request tr_rt_sup_spawn waits for: the supervisor's spawn, then its
 * WAIT (an internal request: users cannot send it). tr__waiter_run calls
 * this once the caller's wait is set up, on the caller's own thread, so a
 * wait that cannot be made (the wrong thread, a stopping runtime, no
 * memory) spawns nothing.
 */
static int sup_start_send(tr_runtime *rt, tr_ref ref, void *ctx)
{
    sup_start *st = ctx;
    int rc = spawn_sup(rt, NULL, st->spec, st->opts, &st->pid);
    if (rc != 0)
        return rc;
    st->spawned = true;
    tr__callhdr h = {.ref = ref, .deadline = tr__deadline_after(rt, TR_INFINITE)};
    rc = tr__send(rt, NULL, TR_PID_NONE, st->pid, TR__MSG_SUP_WAIT, TR__MF_REQUEST, &h, NULL,
                  0, NULL, NULL);
    if (rc != 0 && rc != TR_ENOACTOR) {
        /* No memory for the question: the call fails, and what it started
         * does not outlive it. (TR_ENOACTOR: it has ended already.) */
        tr_signal_exit(rt, st->pid, TR_EXIT_SHUTDOWN);
        st->spawned = false;
    }
    return rc;
}

int tr_rt_sup_spawn(tr_runtime *rt, const tr_sup_spec *spec, const tr_spawn_opts *opts,
                    tr_pid *out)
{
    if (!rt || !out)
        return TR_EINVAL;
    if (ck_pr_load_int(&rt->state) == TR__RT_CREATED)
        return TR_ENOTSTARTED;
    /* A loop thread (any runtime's) cannot block: refused before anything
     * starts. */
    if (tr__on_loop_thread())
        return TR_EWRONGTHREAD;
    sup_start st = {.spec = spec, .opts = opts, .pid = TR_PID_NONE};
    tr_rt_reply r;
    int rc = tr__waiter_run(rt, TR_INFINITE, sup_start_send, &st, &r);
    if (!st.spawned)
        return rc; /* nothing runs: *out untouched */
    if (rc == TR_ENOACTOR || rc == TR_EEXITED) {
        *out = st.pid; /* documented: set with TR_EFAILED */
        return TR_EFAILED; /* it failed and ended before it answered */
    }
    tr_down why;
    if (rc == TR_ESTOPPED && tr_runtime_exit_reason(rt, &why) == 0 && why.pid == st.pid) {
        *out = st.pid;
        return TR_EFAILED; /* ...and, permanent, stopped the runtime before we asked */
    }
    if (rc != 0)
        return rc; /* the runtime is stopping: the supervisor stops with it */
    int32_t started = TR_EFAILED;
    if (r.len == sizeof started)
        memcpy(&started, r.data, sizeof started);
    tr_rt_reply_free(&r);
    if (started == 0 || started == TR_EFAILED)
        *out = st.pid;
    return started;
}

/* A blocking request (the internal call: ADD is one users may not call)
 * whose answer, if it is exactly res_len bytes, is copied to `res`. What
 * ends the wait: the answer, or the supervisor's end. */
static int sup_call(tr_runtime *rt, tr_pid sup_pid, uint32_t type, const void *data,
                    size_t len, void *res, size_t res_len)
{
    tr_rt_reply r;
    int rc = tr__rt_call_raw(rt, sup_pid, type, data, len, TR_INFINITE, &r);
    if (rc != 0)
        return rc;
    if (r.len == res_len)
        memcpy(res, r.data, res_len);
    tr_rt_reply_free(&r);
    return 0;
}

/* A request whose reply is a tr_sup_started. */
static int started_call(tr_runtime *rt, tr_pid sup_pid, uint32_t type, const void *data,
                        size_t len, tr_pid *out)
{
    tr_sup_started res = {TR_EFAILED, TR_PID_NONE};
    int rc = sup_call(rt, sup_pid, type, data, len, &res, sizeof res);
    if (rc == 0 && res.rc == 0 && out)
        *out = res.pid;
    return rc != 0 ? rc : res.rc;
}

/* A request whose reply is an int32_t rc. */
static int rc_call(tr_runtime *rt, tr_pid sup_pid, uint32_t type, const void *data,
                   size_t len)
{
    int32_t res = TR_EFAILED;
    int rc = sup_call(rt, sup_pid, type, data, len, &res, sizeof res);
    return rc != 0 ? rc : res;
}

int tr_rt_sup_start_child(tr_runtime *rt, tr_pid sup_pid, const void *arg, size_t arg_len,
                          tr_pid *out)
{
    return started_call(rt, sup_pid, TR_MSG_SUP_START, arg, arg_len, out);
}


/* A child spec for an ADD request: checked, then flattened into one
 * malloc'd block (*buf, the caller frees it). */
static int checked_copy(tr_runtime *rt, const tr_child_spec *spec, void **buf, size_t *len)
{
    int rc = tr__sup_validate_child(rt, spec);
    if (rc != 0)
        return rc;
    *buf = tr__sup_flatten_child(spec, len);
    return *buf ? 0 : TR_ENOMEM;
}

int tr_rt_sup_add_child(tr_runtime *rt, tr_pid sup_pid, const tr_child_spec *spec,
                        tr_pid *out)
{
    if (!rt)
        return TR_EINVAL;
    size_t len;
    void *buf;
    int rc = checked_copy(rt, spec, &buf, &len);
    if (rc != 0)
        return rc;
    rc = started_call(rt, sup_pid, TR_MSG_SUP_ADD, buf, len, out);
    free(buf);
    return rc;
}

int tr_sup_add_child(tr_actor *self, tr_pid sup_pid, const tr_child_spec *spec,
                     tr_duration timeout_ms, tr_ref *ref_out)
{
    tr_runtime *rt = tr_runtime_of(self);
    if (!rt)
        return self ? TR_EWRONGTHREAD : TR_EINVAL;
    size_t len;
    void *buf;
    int rc = checked_copy(rt, spec, &buf, &len);
    if (rc != 0)
        return rc;
    /* ADD is internal (it carries a behaviour pointer): the runtime's call. */
    rc = tr__call_raw(self, sup_pid, TR_MSG_SUP_ADD, buf, len, timeout_ms, ref_out);
    free(buf);
    return rc;
}

int tr_rt_sup_stop_child(tr_runtime *rt, tr_pid sup_pid, tr_pid child)
{
    return rc_call(rt, sup_pid, TR_MSG_SUP_STOP, &child, sizeof child);
}

int tr_rt_sup_restart_child(tr_runtime *rt, tr_pid sup_pid, const char *id, tr_pid *out)
{
    if (!id || !id[0] || strlen(id) > TR_CHILD_ID_MAX)
        return TR_EINVAL;
    return started_call(rt, sup_pid, TR_MSG_SUP_RESTART, id, strlen(id), out);
}

int tr_rt_sup_delete_child(tr_runtime *rt, tr_pid sup_pid, const char *id)
{
    if (!id || !id[0] || strlen(id) > TR_CHILD_ID_MAX)
        return TR_EINVAL;
    return rc_call(rt, sup_pid, TR_MSG_SUP_DELETE, id, strlen(id));
}

int tr_rt_sup_which_children(tr_runtime *rt, tr_pid sup_pid, tr_sup_child *out,
                             unsigned cap)
{
    if (!out && cap)
        return TR_EINVAL;
    tr_rt_reply r;
    int rc = tr_rt_call(rt, sup_pid, TR_MSG_SUP_WHICH, NULL, 0, TR_INFINITE, &r);
    if (rc != 0)
        return rc;
    if (r.len == sizeof(int32_t)) { /* the supervisor refused: its rc */
        int32_t err;
        memcpy(&err, r.data, sizeof err);
        tr_rt_reply_free(&r);
        return err ? err : TR_EFAILED;
    }
    unsigned n = r.len / sizeof(tr_sup_child);
    if (out && n)
        memcpy(out, r.data, (n < cap ? n : cap) * sizeof(tr_sup_child));
    tr_rt_reply_free(&r);
    return (int)n;
}
