/*
 * introspect.c — the tree, as tr_runtime_tree walks and prints it.
 *
 * Each actor's children list belongs to its home loop, so nobody else may
 * read it. The walk asks every actor in turn with an internal request
 * (TR__MSG_DESCRIBE, sent like a tr_rt_call): the actor answers on its own
 * loop, between two messages, with a record about itself and its
 * children's pids, and the walk goes on from the plain thread. Nothing is
 * stopped or locked; an actor that ends meanwhile answers TR_ENOACTOR and
 * is left out.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subsys.h"

typedef struct desc {
    tr_pid pid, parent;
    int32_t loop;
    uint32_t exiting;
    uint64_t handled, mailbox;
    uint32_t nchildren, pad;
    char behavior[32];
    char name[TR_NAME_MAX + 1];
    char info[TR_INFO_MAX];
    /* followed by tr_pid children[nchildren], in spawn order */
} desc;

void tr__describe(tr__loop *L, tr_actor *a, const tr_msg *request)
{
    /* The behaviour's line first: its callback may change the child list. */
    const tr_behavior *beh = a->beh;
    char info[TR_INFO_MAX] = "";
    if (beh && beh->describe && a->status == TR__RUNNING) {
        tr__loop_busy(L, a, TR__MSG_DESCRIBE);
        beh->describe(a, a->state, info, sizeof info);
        tr__loop_idle(L);
        info[sizeof info - 1] = '\0';
    }
    tr__children_sort(a);
    uint32_t n = 0;
    for (tr__child *c = a->children; c; c = c->next)
        n++;
    size_t len = sizeof(desc) + (size_t)n * sizeof(tr_pid);
    desc *d = tr__calloc(1, len);
    if (!d) { /* an answer all the same: the walk must not wait forever */
        if (request->from == TR_PID_NONE)
            tr__waiter_fail(L->rt, request->ref, TR_ENOMEM);
        else /* too short to be a desc: the asker reads TR_ENOMEM */
            tr__reply_raw(a, request, TR__MSG_DESCRIBE, NULL, 0);
        return;
    }
    d->pid = tr__actor_pid(a);
    d->parent = a->parent;
    d->loop = (int32_t)L->index;
    d->exiting = a->status == TR__EXITING;
    d->handled = a->handled;
    d->mailbox = tr__mailbox_depth(a);
    snprintf(d->behavior, sizeof d->behavior, "%s",
             (a->flags & TR__ROOT) ? "root" : (beh && beh->name) ? beh->name : "");
    const char *reg = tr__registry_name(a);
    snprintf(d->name, sizeof d->name, "%s", reg ? reg : "");
    memcpy(d->info, info, sizeof info);
    /* The list is newest first: spawn order is its reverse. */
    tr_pid *kids = (tr_pid *)(d + 1);
    d->nchildren = n;
    for (tr__child *c = a->children; c; c = c->next)
        kids[--n] = c->pid;
    if (request->from == TR_PID_NONE) {
        if (!tr__waiter_complete(L->rt, request->ref, d->pid, TR__MSG_DESCRIBE, d, len))
            TR__STAT_ADD(L, late_replies, 1);
    } else {
        tr__reply_raw(a, request, TR__MSG_DESCRIBE, d, len);
    }
    free(d);
}

/* ---- asked by an actor (subsys.h) ----------------------------------------------- */

int tr__describe_ask(tr_actor *self, tr_pid pid, tr_duration timeout_ms, tr_ref *ref)
{
    return tr__call_raw(self, pid, TR__MSG_DESCRIBE, NULL, 0, timeout_ms, ref);
}

int tr__describe_parse(const tr_msg *msg, tr_actor_info *info, const tr_pid **children)
{
    if (!msg || msg->type != TR__MSG_DESCRIBE || !(msg->flags & TR_MSG_REPLY))
        return TR_EINVAL;
    const desc *d = msg->data;
    desc h;
    if (msg->len < sizeof h)
        return TR_ENOMEM; /* the actor could not allocate its answer */
    memcpy(&h, d, sizeof h);
    if ((msg->len - sizeof h) % sizeof(tr_pid) != 0 ||
        (msg->len - sizeof h) / sizeof(tr_pid) != h.nchildren)
        return TR_ENOMEM;
    /* The strings and children stay in msg->data: valid during the handler. */
    *info = (tr_actor_info){
        .pid = h.pid, .parent = h.parent, .loop = h.loop, .exiting = (int)h.exiting,
        .nchildren = h.nchildren, .handled = h.handled, .mailbox = h.mailbox,
        .behavior = d->behavior, .name = d->name, .info = d->info,
    };
    *children = (const tr_pid *)(d + 1);
    return 0;
}

/* ---- the walk ---------------------------------------------------------------------- */

/* Asks `pid` to describe itself (an internal type: users may not call it).
 * The answer's length is checked before it is read: a desc and exactly
 * its nchildren pids. */
static int ask(tr_runtime *rt, tr_pid pid, tr_rt_reply *r)
{
    int rc = tr__rt_call_raw(rt, pid, TR__MSG_DESCRIBE, NULL, 0, TR_INFINITE, r);
    if (rc != 0)
        return rc;
    desc d;
    if (r->len >= sizeof d)
        memcpy(&d, r->data, sizeof d);
    if (r->len < sizeof d || (r->len - sizeof d) / sizeof(tr_pid) != d.nchildren ||
        (r->len - sizeof d) % sizeof(tr_pid) != 0) {
        tr_rt_reply_free(r);
        return TR_ENOMEM; /* the actor could not allocate its answer */
    }
    return 0;
}

/* One actor on the walk's path from the root: its answer, and the next of
 * its children to visit. */
typedef struct frame {
    tr_rt_reply r;
    uint32_t next;
} frame;

/* Asks `pid` and reports it (at `depth`, the root's children being 1).
 * 0 with *asked set when it answered; 0 with *asked clear when it ended
 * meanwhile (it is left out); else the callback's value or an error. */
static int visit(tr_runtime *rt, tr_pid pid, unsigned depth, tr_tree_fn fn, void *ud,
                 tr_rt_reply *r, bool *asked)
{
    *asked = false;
    int rc = ask(rt, pid, r);
    if (rc == TR_ENOACTOR || rc == TR_EEXITED)
        return 0; /* it ended meanwhile */
    if (rc != 0)
        return rc;
    *asked = true;
    if (depth == 0) /* the root itself is not reported */
        return 0;
    desc d;
    memcpy(&d, r->data, sizeof d);
    tr_actor_info info = {
        .pid = d.pid, .parent = d.parent, .depth = depth - 1, .loop = d.loop,
        .exiting = (int)d.exiting, .nchildren = d.nchildren, .handled = d.handled,
        .mailbox = d.mailbox, .behavior = d.behavior, .name = d.name, .info = d.info,
    };
    return fn(&info, ud);
}

/*
 * Depth first, each actor before its children, without recursion: the
 * path from the root is an explicit stack of answers (a frame per level,
 * grown as needed), so a tree as deep as memory allows is walked in a few
 * hundred bytes of the caller's stack. The recursive walk took ~530 bytes
 * of stack a level: a 16,000-deep chain overflowed an 8 MiB stack.
 */
static int walk(tr_runtime *rt, tr_tree_fn fn, void *ud)
{
    size_t cap = 64, top = 0; /* top: frames in use */
    frame *st = tr__malloc(cap * sizeof *st);
    if (!st)
        return TR_ENOMEM;
    bool asked;
    int rc = visit(rt, rt->root, 0, fn, ud, &st[0].r, &asked);
    if (!asked && rc == 0)
        rc = TR_ESTOPPED; /* the root has ended: the runtime stopped */
    if (asked) {
        st[0].next = 0;
        top = 1;
    }
    while (rc == 0 && top > 0) {
        frame *f = &st[top - 1];
        desc d;
        memcpy(&d, f->r.data, sizeof d);
        if (f->next == d.nchildren) { /* done with this one */
            tr_rt_reply_free(&f->r);
            top--;
            continue;
        }
        tr_pid kid;
        memcpy(&kid, (const char *)f->r.data + sizeof(desc) + f->next * sizeof(tr_pid),
               sizeof kid);
        f->next++;
        if (top == cap) {
            frame *bigger = cap <= SIZE_MAX / 2 / sizeof *st
                                ? tr__realloc(st, 2 * cap * sizeof *st)
                                : NULL;
            if (!bigger) {
                rc = TR_ENOMEM;
                break;
            }
            st = bigger;
            cap *= 2;
        }
        rc = visit(rt, kid, (unsigned)top, fn, ud, &st[top].r, &asked);
        if (asked) { /* held, even when the callback stops the walk */
            st[top].next = 0;
            top++;
        }
    }
    while (top > 0) /* stopped early: the answers still held */
        tr_rt_reply_free(&st[--top].r);
    free(st);
    return rc;
}

int tr_runtime_tree(tr_runtime *rt, tr_tree_fn fn, void *userdata)
{
    if (!rt || !fn)
        return TR_EINVAL;
    if (tr__on_loop_thread())
        return TR_EWRONGTHREAD;
    int s = ck_pr_load_int(&rt->state);
    if (s == TR__RT_CREATED)
        return TR_ENOTSTARTED;
    if (s != TR__RT_RUNNING)
        return TR_ESTOPPED;
    return walk(rt, fn, userdata);
}

static int print_one(const tr_actor_info *i, void *ud)
{
    FILE *out = ud;
    fprintf(out, "%*s" TR_PID_FMT " %s", (int)(2 * i->depth), "", TR_PID_ARGS(i->pid),
            i->behavior[0] ? i->behavior : "actor");
    if (i->name[0])
        fprintf(out, " '%s'", i->name);
    fprintf(out, " loop %d%s handled %llu", i->loop, i->exiting ? " exiting" : "",
            (unsigned long long)i->handled);
    if (i->mailbox)
        fprintf(out, " queued %llu", (unsigned long long)i->mailbox);
    if (i->info[0])
        fprintf(out, ": %s", i->info);
    fputc('\n', out);
    return 0;
}

int tr_runtime_tree_print(tr_runtime *rt, FILE *out)
{
    if (!out)
        return TR_EINVAL;
    return tr_runtime_tree(rt, print_one, out);
}
