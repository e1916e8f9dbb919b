/*
 * notice.c — notices made in advance: the messages whose loss would leave
 * someone waiting forever, allocated when the wait begins so that sending
 * them cannot fail.
 *
 * Design notes
 * ------------
 * include/troupe.h promises that nothing blocks forever on an answer a
 * failure can lose. An answer that needs an allocation at the moment it
 * is sent can be lost to that allocation, so each of these is made when
 * the wait it ends begins, and kept until it is sent:
 *
 *   notice            made when                 kept in
 *   the stop signal   tr_runtime_create         the runtime (stop_sig)
 *   TR_MSG_STARTED    the spawn (notify_started) the INIT, then sent
 *   ADOPT             a plain thread's spawn    the INIT, then sent
 *   DOWN              the monitor               the watcher's record
 *                     (MONITOR's own block, or  at the target (links.c)
 *                     the spawn's for
 *                     tr_spawn_monitor)
 *   a link's exit     tr_link, both ends'       each end's record of the
 *   signals           (the target's travels     other (links.c); they also
 *                     as the LINK)              serve as noproc, the
 *                                               TR_ENOMEM answer, UNLINK
 *
 * The same rule was already followed by calls (a request's block can
 * become its TR_MSG_CALL_FAILED, call.c). Two notices every actor would
 * otherwise hold a block for are owed and retried instead (tr__loop_retry,
 * which needs no allocation): the signals a parent sends its children
 * (shutdown, kill — two blocks per actor) and a child's CHILD_EXIT to its
 * parent (one block per actor, 72 bytes of every idle actor): a child
 * that cannot make it stays a dead slot on its loop's retry list, not yet
 * released, until it can (exit.c, tell_parent).
 */
#include <string.h>

#include "actor.h"

int tr__sigres_make(tr__loop *cur, tr__sigres *r)
{
    tr__pool *pool = cur ? &cur->pool : NULL;
    r->sig = tr__msg_new(pool, TR__MSG_SIGNAL, TR_PID_NONE, 0,
                         sizeof(tr__sighdr) + sizeof(tr_down));
    r->wake = tr__msg_new(pool, TR__MSG_WAKE, TR_PID_NONE, 0, 0);
    if (!r->sig || !r->wake) {
        tr__sigres_drop(cur, r);
        return TR_ENOMEM;
    }
    return 0;
}

void tr__sigres_drop(tr__loop *cur, tr__sigres *r)
{
    /* Any thread, teardown included: blocks go home through their pool. */
    tr__pool *pool = cur ? &cur->pool : NULL;
    tr__pool_free(pool, r->sig);
    tr__pool_free(pool, r->wake);
    r->sig = r->wake = NULL;
}

void tr__control_push(tr__loop *cur, tr_actor *a, tr_pid from, tr_pid to, tr__msg *m,
                      tr__msg *wake)
{
    m->from = from;
    m->to_gen = TR_PID_GEN(to);
    wake->kind = TR__MSG_WAKE;
    wake->from = from;
    wake->to_gen = m->to_gen;
    /* The record, then the WAKE that makes the slot look at it — this
     * slot, not a fresh lookup: if the actor ended since, the record must
     * still be answered for the dead (a lookup would fail and strand it). */
    tr__mpsc_push(&a->sigq, &m->node);
    tr__msg_post(cur, a, wake);
}

int tr__sigres_post(tr_runtime *rt, tr__loop *cur, tr__sigres *r, tr_pid from, tr_pid to,
                    tr_exit_kind kind, int code, const char *text, uint32_t flags)
{
    tr_actor *a = tr__lookup(rt, to);
    if (!a) {
        tr__sigres_drop(cur, r);
        return TR_ENOACTOR;
    }
    tr__msg *m = r->sig, *wake = r->wake;
    r->sig = r->wake = NULL;
    tr__sighdr h = {.flags = flags};
    tr_down d;
    tr__down_fill(&d, from, kind, code, text);
    /* The block may have served as another record meanwhile (a link's:
     * the LINK that carried it, links.c): it has a signal's room. */
    m->kind = TR__MSG_SIGNAL;
    m->type = 0;
    m->flags = 0;
    m->len = (uint32_t)(sizeof h + sizeof d);
    memcpy(m->data, &h, sizeof h);
    memcpy(m->data + sizeof h, &d, sizeof d);
    tr__control_push(cur, a, from, to, m, wake);
    return 0;
}

bool tr__notice_post(tr_runtime *rt, tr__loop *cur, tr__msg *m, tr_pid from, tr_pid to)
{
    tr_actor *a = tr__lookup(rt, to);
    if (!a) {
        tr__pool_free(cur ? &cur->pool : NULL, m);
        return false;
    }
    m->from = from;
    m->to_gen = TR_PID_GEN(to);
    tr__msg_post(cur, a, m);
    return true;
}

/* ---- the notices an INIT carries ---------------------------------------------------- */

void tr__init_parse(tr__msg *m, tr__init_extras *x)
{
    uint32_t iflags = m->type;
    const unsigned char *p = m->data + sizeof(tr__init);
    memset(x, 0, sizeof *x);
    if (iflags & TR__INIT_MONITOR) {
        memcpy(&x->monitor, p, sizeof x->monitor);
        p += sizeof x->monitor;
        memcpy(&x->down, p, sizeof x->down);
        p += sizeof x->down;
    }
    if (iflags & TR__INIT_NOTIFY) {
        memcpy(&x->started, p, sizeof x->started);
        p += sizeof x->started;
    }
    if (iflags & TR__INIT_ADOPT) {
        memcpy(&x->adopt, p, sizeof x->adopt);
        p += sizeof x->adopt;
    }
    x->arg = p;
    x->arg_len = m->len - (size_t)(p - m->data);
}

unsigned char *tr__init_write(tr__msg *m, const tr__init_extras *x)
{
    uint32_t iflags = m->type;
    unsigned char *p = m->data + sizeof(tr__init);
    if (iflags & TR__INIT_MONITOR) {
        memcpy(p, &x->monitor, sizeof x->monitor);
        p += sizeof x->monitor;
        memcpy(p, &x->down, sizeof x->down);
        p += sizeof x->down;
    }
    if (iflags & TR__INIT_NOTIFY) {
        memcpy(p, &x->started, sizeof x->started);
        p += sizeof x->started;
    }
    if (iflags & TR__INIT_ADOPT) {
        memcpy(p, &x->adopt, sizeof x->adopt);
        p += sizeof x->adopt;
    }
    return p;
}

void tr__init_extras_free(tr__init_extras *x)
{
    /* Any thread (an INIT dropped unrun, or torn down). */
    tr__pool_free(NULL, x->down);
    tr__pool_free(NULL, x->started);
    tr__pool_free(NULL, x->adopt);
    x->down = x->started = x->adopt = NULL;
}
