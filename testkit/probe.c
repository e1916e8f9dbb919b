/*
 * probe.c — probes: actors that record what they receive (and what the
 * kit's observation hook sees for them), and the test thread's
 * expectations over those records.
 *
 * The record is a FIFO under a mutex, filled on loop threads (the probe's
 * handler, the observation hook) and read by the test's thread. What the
 * test asks the probe's actor to do (monitor, link, send, reply) goes to
 * it as a control call: a request of type TR_MSG_USER_MAX from a plain
 * thread carrying the kit's magic, never recorded. The probe's memory is
 * shared by the test and the actor (two references): the actor's
 * terminate drops its own, so a probe freed while its actor still ends
 * stays valid until it has.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kit.h"

#define CTL_TYPE TR_MSG_USER_MAX
#define CTL_MAGIC 0x7072626fu
#define DEFAULT_EXPECT_MS 3000

typedef struct rec {
    struct rec *next;
    tr_probe_msg m;
} rec;

struct tr_probe {
    tr_runtime *rt;
    tr__kit *kit; /* NULL: not a kit runtime */
    tr_pid pid;
    atomic_uint refs; /* the test's and the actor's */
    uv_mutex_t mu;
    uv_cond_t cv;
    rec *head, *tail;
    size_t n;
    unsigned lost; /* messages the record had no memory for */
    char failure[512];
};

enum { CTL_MONITOR = 1, CTL_LINK, CTL_SEND, CTL_REPLY, CTL_STOP };

typedef struct ctl {
    uint32_t magic;
    uint32_t op;
    tr_pid who;
    uint32_t type;
    uint32_t len;
    tr_msg request; /* CTL_REPLY: the request answered (data NULL) */
    /* len bytes of payload follow */
} ctl;

typedef struct ctl_answer {
    int32_t rc;
    uint32_t pad;
    tr_ref ref;
} ctl_answer;

static void probe_unref(tr_probe *p)
{
    if (atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    for (rec *r = p->head, *next; r; r = next) {
        next = r->next;
        free(r->m.data);
        free(r);
    }
    uv_cond_destroy(&p->cv);
    uv_mutex_destroy(&p->mu);
    free(p);
}

void tr_probe_msg_free(tr_probe_msg *m)
{
    if (!m)
        return;
    free(m->data);
    memset(m, 0, sizeof *m);
}

/* ---- recording (loop threads) ------------------------------------------------------ */

void tr__probe_record(tr_probe *p, tr_pid to, const tr_msg *msg, uint64_t at)
{
    rec *r = malloc(sizeof *r);
    void *data = NULL;
    if (r && msg->len) {
        data = malloc(msg->len);
        if (data)
            memcpy(data, msg->data, msg->len);
    }
    uv_mutex_lock(&p->mu);
    if (!r || (msg->len && !data)) {
        p->lost++; /* the next expectation says so: nothing is lost silently */
        free(r);
    } else {
        r->next = NULL;
        r->m = (tr_probe_msg){.from = msg->from,
                              .to = to,
                              .type = msg->type,
                              .len = msg->len,
                              .data = data,
                              .ref = msg->ref,
                              .deadline = msg->deadline,
                              .tag = msg->tag,
                              .flags = msg->flags,
                              .at = at};
        if (p->tail)
            p->tail->next = r;
        else
            p->head = r;
        p->tail = r;
        p->n++;
    }
    uv_cond_broadcast(&p->cv);
    uv_mutex_unlock(&p->mu);
}

/* ---- the probe's actor -------------------------------------------------------------- */

static int probe_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)len;
    memcpy(state, arg, sizeof(tr_probe *));
    return tr_trap_exits(self, 1);
}

static int control(tr_actor *self, const tr_msg *msg)
{
    const ctl *c = msg->data;
    ctl_answer a = {0};
    switch (c->op) {
    case CTL_MONITOR:
        a.rc = tr_monitor(self, c->who, &a.ref);
        break;
    case CTL_LINK:
        a.rc = tr_link(self, c->who);
        break;
    case CTL_SEND:
        a.rc = tr_send(self, c->who, c->type, c + 1, c->len);
        break;
    case CTL_REPLY:
        a.rc = tr_reply(self, &c->request, c->type, c + 1, c->len);
        break;
    case CTL_STOP:
        a.rc = 0;
        break;
    default:
        a.rc = TR_EINVAL;
    }
    /* The caller's wait ends with our end if this answer cannot go. */
    (void)tr_reply(self, msg, CTL_TYPE, &a, sizeof a);
    return c->op == CTL_STOP ? tr_exit(self, TR_EXIT_SHUTDOWN) : 0;
}

static bool is_control(const tr_msg *msg)
{
    const ctl *c = msg->data;
    return msg->type == CTL_TYPE && msg->from == TR_PID_NONE && (msg->flags & TR_MSG_REQUEST) &&
           msg->len >= sizeof *c && c->magic == CTL_MAGIC && msg->len == sizeof *c + c->len;
}

static int probe_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    tr_probe *p = *(tr_probe **)state;
    if (is_control(msg))
        return control(self, msg);
    tr__probe_record(p, tr_self(self), msg, tr_now(p->rt));
    /* Its parent's shutdown (the runtime's stop) ends it: a probe never
     * holds a stop up (under a virtual clock, nothing would end it). */
    if (msg->type == TR_MSG_EXIT && msg->len >= sizeof(tr_down) &&
        ((const tr_down *)msg->data)->pid == tr_parent(self))
        return tr_exit(self, TR_EXIT_SHUTDOWN);
    return 0;
}

static void probe_terminate(tr_actor *self, void *state, const tr_exit_reason *reason)
{
    (void)self;
    (void)reason;
    probe_unref(*(tr_probe **)state);
}

static const tr_behavior probe_behavior = {
    .name = "probe",
    .state_size = sizeof(tr_probe *),
    .init = probe_init,
    .receive = probe_receive,
    .terminate = probe_terminate,
};

int tr_probe_create(tr_runtime *rt, tr_probe **out)
{
    if (!rt || !out)
        return TR_EINVAL;
    *out = NULL;
    tr_probe *p = calloc(1, sizeof *p);
    if (!p)
        return TR_ENOMEM;
    p->rt = rt;
    p->kit = tr__kit_of(rt);
    atomic_init(&p->refs, 2);
    if (uv_mutex_init(&p->mu) != 0) {
        free(p);
        return TR_ENOMEM;
    }
    if (uv_cond_init(&p->cv) != 0) {
        uv_mutex_destroy(&p->mu);
        free(p);
        return TR_ENOMEM;
    }
    tr_spawn_opts so;
    tr_spawn_opts_init(&so);
    so.arg = &p;
    so.arg_len = sizeof p;
    so.top = TR_TOP_INDEPENDENT;
    int rc = tr_rt_spawn(rt, &probe_behavior, &so, &p->pid);
    if (rc != 0) {
        atomic_store(&p->refs, 1);
        probe_unref(p);
        return rc;
    }
    *out = p;
    return 0;
}

tr_pid tr_probe_pid(const tr_probe *p)
{
    return p ? p->pid : TR_PID_NONE;
}

static int call_probe(tr_probe *p, uint32_t op, tr_pid who, uint32_t type, const tr_msg *request,
                      const void *data, size_t len, tr_ref *ref);

int tr_probe_free(tr_probe *p)
{
    if (!p)
        return 0;
    if (p->kit)
        tr__kit_watch_remove(p->kit, p);
    /* A shutdown, asked of the actor itself (it traps exits): its end is a
     * normal one, never a crash report. A runtime that has stopped has
     * ended it already. */
    int rc = call_probe(p, CTL_STOP, TR_PID_NONE, 0, NULL, NULL, 0, NULL);
    if (rc == TR_EWRONGTHREAD)
        return rc;
    if (rc == 0) {
        /* Its terminate drops the actor's reference: no wait is needed for
         * memory's sake; waiting keeps the test's next steps ordered after
         * the probe's end (its links, its monitors). */
        tr_down d;
        tr_rt_wait_exit(p->rt, p->pid, TR_INFINITE, &d);
    }
    probe_unref(p);
    return 0;
}

/* ---- control calls -------------------------------------------------------------------- */

static int call_probe(tr_probe *p, uint32_t op, tr_pid who, uint32_t type, const tr_msg *request,
                      const void *data, size_t len, tr_ref *ref)
{
    if (len > UINT32_MAX - sizeof(ctl) || (len && !data))
        return TR_EINVAL;
    ctl *c = calloc(1, sizeof *c + len);
    if (!c)
        return TR_ENOMEM;
    c->magic = CTL_MAGIC;
    c->op = op;
    c->who = who;
    c->type = type;
    c->len = (uint32_t)len;
    if (request)
        c->request = *request;
    if (len)
        memcpy(c + 1, data, len);
    tr_rt_reply reply;
    int rc = tr_rt_call(p->rt, p->pid, CTL_TYPE, c, sizeof *c + len, TR_INFINITE, &reply);
    free(c);
    if (rc != 0)
        return rc;
    ctl_answer a = {.rc = TR_EFAILED};
    if (reply.len == sizeof a)
        memcpy(&a, reply.data, sizeof a);
    tr_rt_reply_free(&reply);
    if (ref)
        *ref = a.ref;
    return a.rc;
}

int tr_probe_monitor(tr_probe *p, tr_pid who, tr_ref *ref)
{
    return p ? call_probe(p, CTL_MONITOR, who, 0, NULL, NULL, 0, ref) : TR_EINVAL;
}

int tr_probe_link(tr_probe *p, tr_pid who)
{
    return p ? call_probe(p, CTL_LINK, who, 0, NULL, NULL, 0, NULL) : TR_EINVAL;
}

int tr_probe_send(tr_probe *p, tr_pid to, uint32_t type, const void *data, size_t len)
{
    return p ? call_probe(p, CTL_SEND, to, type, NULL, data, len, NULL) : TR_EINVAL;
}

int tr_probe_reply(tr_probe *p, const tr_probe_msg *request, uint32_t type, const void *data,
                   size_t len)
{
    if (!p || !request)
        return TR_EINVAL;
    tr_msg req = {.from = request->from,
                  .type = request->type,
                  .ref = request->ref,
                  .deadline = request->deadline,
                  .tag = request->tag,
                  .flags = request->flags};
    return call_probe(p, CTL_REPLY, request->from, type, &req, data, len, NULL);
}

int tr_probe_observe(tr_probe *p, tr_pid from, tr_pid to)
{
    if (!p || !p->kit || to == TR_PROBE_ANY || to == TR_PID_NONE || to == p->pid)
        return TR_EINVAL;
    return tr__kit_watch_add(p->kit, p, from, to);
}

size_t tr_probe_pending(tr_probe *p)
{
    if (!p)
        return 0;
    uv_mutex_lock(&p->mu);
    size_t n = p->n;
    uv_mutex_unlock(&p->mu);
    return n;
}

const char *tr_probe_failure(const tr_probe *p)
{
    return p ? p->failure : "";
}

/* ---- expectations ---------------------------------------------------------------------- */

static bool has_mail(void *ud)
{
    tr_probe *p = ud;
    uv_mutex_lock(&p->mu);
    bool any = p->head || p->lost;
    uv_mutex_unlock(&p->mu);
    return any;
}

/* Takes the next record into *out: 0, or TR_ENOMEM (one was lost), or
 * TR_ETIMEDOUT (none). */
static int take(tr_probe *p, tr_probe_msg *out)
{
    int rc = TR_ETIMEDOUT;
    uv_mutex_lock(&p->mu);
    if (p->lost) {
        p->lost--;
        rc = TR_ENOMEM;
    } else if (p->head) {
        rec *r = p->head;
        p->head = r->next;
        if (!p->head)
            p->tail = NULL;
        p->n--;
        *out = r->m;
        free(r);
        rc = 0;
    }
    uv_mutex_unlock(&p->mu);
    return rc;
}

/* Waits for the next record, for `ms` (kit: virtual, stepped; else real). */
static int wait_next(tr_probe *p, tr_duration ms, tr_probe_msg *out)
{
    if (!has_mail(p)) {
        if (p->kit) {
            int rc = tr__kit_step_until(p->kit, tr__kit_deadline(p->kit, ms), has_mail, p);
            if (rc != 0 && !has_mail(p))
                return rc;
        } else {
            uint64_t end = tr__deadline_from(uv_hrtime(), ms);
            uv_mutex_lock(&p->mu);
            while (!p->head && !p->lost && tr__cond_wait_until(&p->cv, &p->mu, end))
                ;
            uv_mutex_unlock(&p->mu);
        }
    }
    return take(p, out);
}

static const char *type_name(uint32_t type, char *buf, size_t len)
{
    switch (type) {
    case TR_MSG_DOWN: return "TR_MSG_DOWN";
    case TR_MSG_EXIT: return "TR_MSG_EXIT";
    case TR_MSG_CALL_TIMEOUT: return "TR_MSG_CALL_TIMEOUT";
    case TR_MSG_CALL_FAILED: return "TR_MSG_CALL_FAILED";
    case TR_MSG_STARTED: return "TR_MSG_STARTED";
    case TR_MSG_JOB_DONE: return "TR_MSG_JOB_DONE";
    case TR_MSG_JOB_FAILED: return "TR_MSG_JOB_FAILED";
    case TR_MSG_GROUP_DONE: return "TR_MSG_GROUP_DONE";
    case TR_MSG_CHAN_END: return "TR_MSG_CHAN_END";
    default: snprintf(buf, len, "type %" PRIu32, type); return buf;
    }
}

static const char *pid_text(tr_pid pid, char *buf, size_t len)
{
    if (pid == TR_PROBE_ANY)
        return "anyone";
    if (pid == TR_PID_NONE)
        return "a plain thread";
    snprintf(buf, len, TR_PID_FMT, TR_PID_ARGS(pid));
    return buf;
}

/* What an expectation asks, for the failure text. */
typedef struct want {
    uint32_t type;
    tr_pid from;
    const void *data; /* payload, or NULL */
    size_t len;
    tr_probe_pred pred;
    void *ud;
    const char *what;
} want;

static bool matches(const want *w, const tr_probe_msg *m)
{
    if (m->type != w->type || (w->from != TR_PROBE_ANY && m->from != w->from))
        return false;
    if (w->data && (m->len != w->len || memcmp(m->data, w->data, w->len) != 0))
        return false;
    return !w->pred || w->pred(m, w->ud);
}

static void fail(tr_probe *p, const want *w, tr_duration ms, const tr_probe_msg *got, int rc)
{
    char t1[32], t2[32], f1[40], f2[40], to[40], me[40];
    int n = snprintf(p->failure, sizeof p->failure, "probe %s expected %s from %s",
                     pid_text(p->pid, me, sizeof me), type_name(w->type, t1, sizeof t1),
                     pid_text(w->from, f1, sizeof f1));
    if (n > 0 && (size_t)n < sizeof p->failure && w->data)
        n += snprintf(p->failure + n, sizeof p->failure - (size_t)n, " with a payload of %zu bytes",
                      w->len);
    if (n > 0 && (size_t)n < sizeof p->failure && w->what)
        n += snprintf(p->failure + n, sizeof p->failure - (size_t)n, " where %s", w->what);
    if (n > 0 && (size_t)n < sizeof p->failure) {
        if (got)
            snprintf(p->failure + n, sizeof p->failure - (size_t)n,
                     "; got %s from %s to %s (%" PRIu32 " bytes%s) at %.3f ms",
                     type_name(got->type, t2, sizeof t2), pid_text(got->from, f2, sizeof f2),
                     pid_text(got->to, to, sizeof to), got->len,
                     got->type == w->type && (w->from == TR_PROBE_ANY || got->from == w->from)
                         ? ", not the one expected"
                         : "",
                     (double)got->at / 1e6);
        else if (rc == TR_ENOMEM)
            snprintf(p->failure + n, sizeof p->failure - (size_t)n,
                     "; a message came that the probe had no memory to record");
        else
            snprintf(p->failure + n, sizeof p->failure - (size_t)n, "; got %s within %" PRId64 " ms (%s)",
                     rc == TR_ETIMEDOUT ? "nothing" : "an error", (int64_t)ms, tr_err_name(rc));
    }
    fprintf(stderr, "%s\n", p->failure);
}

static int expect(tr_probe *p, const want *w, tr_duration ms, tr_probe_msg *out)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (!p || (ms < 0 && ms != TR_DEFAULT))
        return TR_EINVAL;
    if (ms == TR_DEFAULT)
        ms = DEFAULT_EXPECT_MS;
    p->failure[0] = '\0';
    tr_probe_msg m;
    int rc = wait_next(p, ms, &m);
    if (rc != 0) {
        fail(p, w, ms, NULL, rc);
        return rc;
    }
    if (!matches(w, &m)) {
        fail(p, w, ms, &m, TR_EUNEXPECTED);
        tr_probe_msg_free(&m);
        return TR_EUNEXPECTED;
    }
    if (out)
        *out = m;
    else
        tr_probe_msg_free(&m);
    return 0;
}

int tr_probe_expect(tr_probe *p, uint32_t type, tr_pid from, tr_duration timeout_ms,
                    tr_probe_msg *out)
{
    want w = {.type = type, .from = from};
    return expect(p, &w, timeout_ms, out);
}

int tr_probe_expect_payload(tr_probe *p, uint32_t type, tr_pid from, const void *data, size_t len,
                            tr_duration timeout_ms, tr_probe_msg *out)
{
    if (!data && len)
        return TR_EINVAL;
    static const char none;
    want w = {.type = type, .from = from, .data = data ? data : &none, .len = len};
    return expect(p, &w, timeout_ms, out);
}

int tr_probe_expect_where(tr_probe *p, uint32_t type, tr_pid from, tr_probe_pred pred,
                          void *userdata, const char *what, tr_duration timeout_ms,
                          tr_probe_msg *out)
{
    if (!pred)
        return TR_EINVAL;
    want w = {.type = type, .from = from, .pred = pred, .ud = userdata, .what = what};
    return expect(p, &w, timeout_ms, out);
}

/* DOWN / EXIT: the notice's tr_down names who ended, and how. */
typedef struct end_want {
    tr_pid who;
    int kind;
} end_want;

static bool end_matches(const tr_probe_msg *m, void *ud)
{
    const end_want *e = ud;
    if (m->len < sizeof(tr_down))
        return false;
    tr_down d;
    memcpy(&d, m->data, sizeof d);
    return (e->who == TR_PROBE_ANY || d.pid == e->who) &&
           (e->kind == TR_PROBE_ANY_KIND || d.kind == e->kind);
}

static int expect_end(tr_probe *p, uint32_t type, tr_pid who, int kind, tr_duration ms,
                      tr_down *out)
{
    char what[96], b[40];
    snprintf(what, sizeof what, "%s ended%s%s", pid_text(who, b, sizeof b),
             kind == TR_PROBE_ANY_KIND ? "" : " with kind ",
             kind == TR_PROBE_ANY_KIND ? "" : tr_exit_kind_name((tr_exit_kind)kind));
    end_want e = {.who = who, .kind = kind};
    /* A DOWN is from the runtime on behalf of who; an EXIT from who. */
    want w = {.type = type, .from = TR_PROBE_ANY, .pred = end_matches, .ud = &e, .what = what};
    tr_probe_msg m;
    int rc = expect(p, &w, ms, &m);
    if (rc == 0 && out) {
        memcpy(out, m.data, sizeof *out);
        out->result_len = 0;
    }
    tr_probe_msg_free(&m);
    return rc;
}

int tr_probe_expect_down(tr_probe *p, tr_pid who, int kind, tr_duration timeout_ms, tr_down *out)
{
    return expect_end(p, TR_MSG_DOWN, who, kind, timeout_ms, out);
}

int tr_probe_expect_exit(tr_probe *p, tr_pid who, int kind, tr_duration timeout_ms, tr_down *out)
{
    return expect_end(p, TR_MSG_EXIT, who, kind, timeout_ms, out);
}

int tr_probe_expect_no_message(tr_probe *p, tr_duration ms)
{
    if (!p || ms < 0)
        return TR_EINVAL;
    p->failure[0] = '\0';
    int rc = 0;
    if (p->kit)
        rc = tr__kit_step_until(p->kit, tr__kit_deadline(p->kit, ms), has_mail, p);
    tr_probe_msg m;
    int got = p->kit ? take(p, &m) : wait_next(p, ms, &m);
    if (got == TR_ETIMEDOUT)
        return rc; /* none came: 0, or the stepping's own error */
    char me[40], t[32], f[40], to[40];
    if (got == TR_ENOMEM)
        snprintf(p->failure, sizeof p->failure,
                 "probe %s expected no message for %" PRId64 " ms; one came that it had no memory to record",
                 pid_text(p->pid, me, sizeof me), (int64_t)ms);
    else
        snprintf(p->failure, sizeof p->failure,
                 "probe %s expected no message for %" PRId64 " ms; got %s from %s to %s (%" PRIu32
                 " bytes) at %.3f ms",
                 pid_text(p->pid, me, sizeof me), (int64_t)ms, type_name(m.type, t, sizeof t),
                 pid_text(m.from, f, sizeof f), pid_text(m.to, to, sizeof to), m.len,
                 (double)m.at / 1e6);
    fprintf(stderr, "%s\n", p->failure);
    if (got == 0)
        tr_probe_msg_free(&m);
    return TR_EUNEXPECTED;
}
