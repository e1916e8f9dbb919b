/*
 * requests.c — a supervisor's request protocol: the TR_MSG_SUP_* calls
 * (which, start, add, stop, restart, delete) and the private start-wait.
 * Requests that change children wait while a sequence runs (as an OTP
 * supervisor's mailbox holds calls while it restarts) and are handled in
 * order once it is up again; once it is ending they are answered
 * TR_ESTOPPED. Every payload's length is checked before it is read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sup.h"

/* ---- messages ----------------------------------------------------------------------- */

/* The answer to START, ADD and RESTART: a tr_sup_started. (Replies go
 * through the runtime's own path: ADD and WAIT are internal types.) */
int tr__sup_start_reply(tr_actor *self, const tr_msg *msg, int32_t rc, tr_pid pid)
{
    tr_sup_started r = {rc, pid};
    return tr__reply_raw(self, msg, msg->type, &r, sizeof r);
}

/* Refuses a request with `rc`, in its reply's form (msgtypes.h): a
 * tr_sup_started for the requests that start a child, an int32_t for every
 * other (WHICH, STOP, DELETE, WAIT, and types that are not ours). */
int tr__sup_refuse(tr_actor *self, const tr_msg *msg, int32_t rc)
{
    tr__refusal r;
    size_t len = tr__msgtype_refusal(msg->type, rc, &r);
    return tr__reply_raw(self, msg, msg->type, &r, len);
}

/* The requests a supervisor answers (the rest are refused TR_EINVAL). */
bool tr__sup_is_request(uint32_t type)
{
    switch (type) {
    case TR_MSG_SUP_WHICH:
    case TR_MSG_SUP_START:
    case TR_MSG_SUP_STOP:
    case TR_MSG_SUP_ADD:
    case TR_MSG_SUP_RESTART:
    case TR_MSG_SUP_DELETE:
    case TR__MSG_SUP_WAIT:
        return true;
    default:
        return false;
    }
}

static int find_by_id(const sup *s, const char *id)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (strcmp(s->kids[i].id, id) == 0)
            return (int)i;
    return -1;
}

/* TR_MSG_SUP_START / ADD: a new child, started now, answered once its init
 * has run (STARTED or DOWN). */
static int add_and_start(tr_actor *self, sup *s, const tr_msg *msg, const flat_child *f,
                         const void *arg, uint32_t arg_len, int dynamic)
{
    if (s->phase != UP)
        return tr__sup_start_reply(self, msg, TR_ESTOPPED, TR_PID_NONE); /* it is ending */
    int rc = tr__sup_add_kid(s, f, arg, arg_len);
    if (rc == 0) {
        uint32_t i = s->n - 1;
        s->kids[i].dynamic = (uint8_t)dynamic;
        if ((rc = tr__sup_start_kid(self, s, i)) == 0) {
            s->kids[i].start_req = *msg;
            s->kids[i].start_req.data = NULL;
            s->kids[i].start_req_pending = 1;
            return 0; /* answered on STARTED or DOWN */
        }
        tr__sup_remove_kid(s, i);
    }
    return tr__sup_start_reply(self, msg, rc, TR_PID_NONE);
}

int tr__sup_hold(sup *s, const tr_msg *msg)
{
    if (s->nheld == s->capheld && !tr__grow(&s->held, &s->capheld, sizeof *s->held, 4))
        return TR_ENOMEM;
    tr_msg copy = *msg;
    copy.data = NULL;
    if (msg->len) {
        void *data = tr__malloc(msg->len);
        if (!data)
            return TR_ENOMEM;
        memcpy(data, msg->data, msg->len);
        copy.data = data;
    }
    s->held[s->nheld++] = copy;
    return 0;
}


/* UP again: the held requests, in order, until one starts a sequence. */
int tr__sup_release_held(tr_actor *self, sup *s)
{
    uint32_t done = 0;
    int rc = 0;
    while (done < s->nheld && s->phase == UP && rc == 0) {
        tr_msg m = s->held[done++];
        rc = tr__sup_on_request(self, s, &m);
        free((void *)m.data);
    }
    memmove(s->held, s->held + done, (s->nheld - done) * sizeof *s->held);
    s->nheld -= done;
    return rc;
}

/* The supervisor ends: held requests are answered as stopped. */
void tr__sup_refuse_held(tr_actor *self, sup *s)
{
    for (uint32_t i = 0; i < s->nheld; i++) {
        tr_msg *m = &s->held[i];
        if (self)
            tr__sup_refuse(self, m, TR_ESTOPPED);
        free((void *)m->data);
    }
    s->nheld = 0;
}

/* A request whose type is ours and whose payload fits its length rule
 * (sup_receive checked both). */
int tr__sup_on_request(tr_actor *self, sup *s, const tr_msg *msg)
{
    switch (msg->type) {
    case TR__MSG_SUP_WAIT: { /* from tr_rt_sup_spawn */
        /* Until the first start has completed — while it runs, and while a
         * failed one stops the children it did start — the answer waits:
         * the start's outcome, or the end's. */
        if (s->started) {
            int32_t rc = 0;
            return tr__reply_raw(self, msg, TR__MSG_SUP_WAIT, &rc, sizeof rc);
        }
        if (s->nwaiters < 8) {
            s->waiters[s->nwaiters++] = *msg;
            return 0;
        }
        /* Only tr_rt_sup_spawn asks, once per supervisor: never here. An
         * answer now rather than none, whatever the outcome turns out. */
        return tr__sup_refuse(self, msg, TR_EALREADY);
    }
    case TR_MSG_SUP_WHICH: {
        tr_sup_child *list = tr__calloc(s->n ? s->n : 1, sizeof *list);
        if (!list)
            return tr__sup_refuse(self, msg, TR_ENOMEM);
        for (uint32_t i = 0; i < s->n; i++) {
            memcpy(list[i].id, s->kids[i].id, sizeof list[i].id);
            list[i].pid = s->kids[i].pid;
            list[i].restarts = s->kids[i].restarts;
        }
        int rc = tr_reply(self, msg, TR_MSG_SUP_WHICH, list, s->n * sizeof *list);
        free(list);
        return rc;
    }
    case TR_MSG_SUP_START: {
        if (s->spec.strategy != TR_SIMPLE_ONE_FOR_ONE)
            return tr__sup_start_reply(self, msg, TR_EINVAL, TR_PID_NONE);
        flat_child f;
        memset(&f, 0, sizeof f);
        const kid *tpl = &s->kids[0];
        memcpy(f.id, tpl->id, sizeof f.id);
        f.beh = tpl->beh;
        f.restart = tpl->restart;
        f.shutdown_ms = tpl->shutdown_ms;
        f.loop = tpl->loop;
        return add_and_start(self, s, msg, &f, msg->data, msg->len, 1);
    }
    case TR_MSG_SUP_ADD: {
        flat_child f;
        if (s->spec.strategy == TR_SIMPLE_ONE_FOR_ONE || msg->len < sizeof f)
            return tr__sup_start_reply(self, msg, TR_EINVAL, TR_PID_NONE);
        memcpy(&f, msg->data, sizeof f);
        if (msg->len != sizeof f + f.arg_len)
            return tr__sup_start_reply(self, msg, TR_EINVAL, TR_PID_NONE);
        f.id[TR_CHILD_ID_MAX] = '\0';
        if (f.id[0] && find_by_id(s, f.id) >= 0)
            return tr__sup_start_reply(self, msg, TR_EEXIST, TR_PID_NONE);
        return add_and_start(self, s, msg, &f, (const char *)msg->data + sizeof f, f.arg_len,
                             0);
    }
    case TR_MSG_SUP_STOP: {
        int32_t rc = TR_ENOTFOUND;
        tr_pid pid;
        memcpy(&pid, msg->data, sizeof pid); /* exactly sizeof pid: checked */
        int i = tr__sup_find_by_pid(s, pid);
        if (i >= 0 && s->phase != UP)
            rc = TR_ESTOPPED; /* it is ending */
        else if (i >= 0) {
            kid *k = &s->kids[i];
            k->removing = 1; /* a static child keeps its spec, for RESTART */
            tr__sup_stop_kid(self, k);
            rc = 0;
        }
        return tr__reply_raw(self, msg, TR_MSG_SUP_STOP, &rc, sizeof rc);
    }
    case TR_MSG_SUP_RESTART:
    case TR_MSG_SUP_DELETE: {
        char id[TR_CHILD_ID_MAX + 1]; /* 1 .. TR_CHILD_ID_MAX bytes: checked */
        memcpy(id, msg->data, msg->len);
        id[msg->len] = '\0';
        int i = s->spec.strategy != TR_SIMPLE_ONE_FOR_ONE ? find_by_id(s, id) : -1;
        int32_t rc = i < 0 ? TR_ENOTFOUND : s->phase != UP ? TR_ESTOPPED
                     : s->kids[i].pid != TR_PID_NONE       ? TR_EEXIST
                                                           : 0;
        if (msg->type == TR_MSG_SUP_DELETE) {
            if (rc == 0)
                tr__sup_remove_kid(s, (uint32_t)i);
            return tr__reply_raw(self, msg, msg->type, &rc, sizeof rc);
        }
        if (rc == 0) {
            kid *k = &s->kids[i];
            k->removing = 0;
            s->phase = RESTARTING;
            s->lo = s->hi = s->cursor = (uint32_t)i;
            if ((rc = tr__sup_continue_start(self, s)) == 0 && k->pid != TR_PID_NONE) {
                k->start_req = *msg;
                k->start_req.data = NULL;
                k->start_req_pending = 1;
                return 0; /* answered on STARTED or DOWN */
            }
        }
        return tr__sup_start_reply(self, msg, rc, TR_PID_NONE);
    }
    }
    return 0;
}
