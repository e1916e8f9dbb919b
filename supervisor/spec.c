/*
 * spec.c — supervisor specs: their checks, their init functions, and their
 * flattened form (the supervisor's spawn argument, the add-child payload).
 *
 * A spec is checked at the call that receives it, nested specs included:
 * once a supervisor runs, a bad field could only fail a start later, far
 * from the mistake. It is then copied into one buffer (child specs, their
 * arguments, nested specs), so the supervisor owns everything it restarts
 * from and the caller's spec may go away.
 */
#include <stdlib.h>
#include <string.h>

#include "sup.h"

/*
 * The checks of a spec, at the call that receives it (tr_sup_spawn,
 * tr_rt_sup_spawn, the add-child calls), nested specs included: once a
 * supervisor runs, a bad field could only fail a start later, far from
 * the mistake. `rt` gives the loops a .loop may name.
 *
 * A spec is a graph the caller built, so the checks bound what they walk:
 * nested specs at most TR_SUP_DEPTH_MAX levels deep (a spec that contains
 * itself, directly or through others, is infinitely deep: TR_EINVAL, never
 * a recursion that overflows the stack), and the flattened copy — the
 * supervisor's spawn argument or the add-child request, which the walk
 * sums as it goes — at most the runtime's max_payload (TR_EMSGSIZE). The
 * sum also stops a small spec whose children share one nested spec many
 * times over (its copy grows exponentially with the depth) after at most
 * max_payload / sizeof(flat_child) children, long before it could
 * overflow.
 */

static int validate_spec(const tr_runtime *rt, const tr_sup_spec *s, unsigned depth,
                         size_t *size);

/* Adds `n` bytes to the flattened size, or TR_EMSGSIZE past max_payload. */
static int add_size(const tr_runtime *rt, size_t *size, size_t n)
{
    size_t max = rt->opts.max_payload;
    if (*size > max || n > max - *size)
        return TR_EMSGSIZE;
    *size += n;
    return 0;
}

/* A child spec at nesting level `depth` (that of the spec holding it). */
static int validate_child(const tr_runtime *rt, const tr_child_spec *c, unsigned depth,
                          size_t *size)
{
    if (!c || c->restart > TR_TEMPORARY || (c->id && strlen(c->id) > TR_CHILD_ID_MAX) ||
        !tr__loop_opt_ok(rt, c->loop) || !tr__duration_field_ok(c->shutdown_ms))
        return TR_EINVAL;
    int rc = add_size(rt, size, sizeof(flat_child));
    if (rc != 0)
        return rc;
    if (c->supervisor) { /* a nested supervisor: its spec instead of an argument */
        if (c->arg || c->arg_len || depth >= TR_SUP_DEPTH_MAX)
            return TR_EINVAL;
        return validate_spec(rt, c->supervisor, depth + 1, size);
    }
    if (!tr__behavior_ok(c->behavior) || (!c->arg && c->arg_len))
        return TR_EINVAL;
    return add_size(rt, size, c->arg_len);
}

static int validate_spec(const tr_runtime *rt, const tr_sup_spec *s, unsigned depth,
                         size_t *size)
{
    if (!s || (s->nchildren && !s->children) || s->strategy > TR_SIMPLE_ONE_FOR_ONE)
        return TR_EINVAL;
    if (s->strategy == TR_SIMPLE_ONE_FOR_ONE && s->nchildren != 1)
        return TR_EINVAL;
    if (s->max_restarts > TR_SUP_MAX_RESTARTS && s->max_restarts != TR_RESTARTS_NEVER)
        return TR_EINVAL; /* the restart history is max_restarts + 1 entries */
    if (!tr__duration_field_ok(s->period_ms) ||
        !tr__duration_field_ok(s->backoff_max_ms) ||
        !tr__duration_field_ok(s->backoff_reset_ms) ||
        !tr__duration_field_ok(s->backoff_min_ms) || s->backoff_min_ms == TR_INFINITE)
        return TR_EINVAL;
    int rc = add_size(rt, size, sizeof(flat_head));
    for (size_t i = 0; rc == 0 && i < s->nchildren; i++)
        rc = validate_child(rt, &s->children[i], depth, size);
    return rc;
}

int tr__sup_validate(const tr_runtime *rt, const tr_sup_spec *s)
{
    size_t size = 0;
    return validate_spec(rt, s, 1, &size);
}

int tr__sup_validate_child(const tr_runtime *rt, const tr_child_spec *c)
{
    size_t size = 0;
    return validate_child(rt, c, 1, &size);
}

void tr_sup_spec_init(tr_sup_spec *spec)
{
    if (spec)
        memset(spec, 0, sizeof *spec); /* every default is zero */
}

void tr_child_spec_init(tr_child_spec *child)
{
    if (child)
        memset(child, 0, sizeof *child);
}

_Static_assert(TR_ONE_FOR_ONE == 0 && TR_PERMANENT == 0 && TR_LOOP_DEFAULT == 0,
               "zeroed specs are the defaults");

static size_t flat_size(const tr_sup_spec *s);
static unsigned char *flatten_into(const tr_sup_spec *s, unsigned char *p);

/* Bytes of a child's start argument: its own, or its nested spec's. */
static size_t child_arg_size(const tr_child_spec *c)
{
    return c->supervisor ? flat_size(c->supervisor) : c->arg_len;
}

static size_t flat_size(const tr_sup_spec *s)
{
    size_t total = sizeof(flat_head);
    for (size_t i = 0; i < s->nchildren; i++)
        total += sizeof(flat_child) + child_arg_size(&s->children[i]);
    return total;
}

/* One child spec, flattened at p: a flat_child then its argument (for a
 * nested supervisor, its flattened spec). */
static unsigned char *flatten_child(const tr_child_spec *c, unsigned char *p)
{
    flat_child f;
    memset(&f, 0, sizeof f);
    snprintf(f.id, sizeof f.id, "%s", c->id ? c->id : "");
    f.beh = c->supervisor ? &tr__sup_behavior : c->behavior;
    f.arg_len = (uint32_t)child_arg_size(c);
    f.restart = (uint8_t)c->restart;
    /* (checked by validate_child) A supervisor child's default is no
     * limit: it always gets to stop its subtree. */
    tr__duration_field(c->shutdown_ms, c->supervisor ? TR_INFINITE : 5000,
                       &f.shutdown_ms);
    f.loop = c->loop;
    memcpy(p, &f, sizeof f);
    p += sizeof f;
    if (c->supervisor)
        return flatten_into(c->supervisor, p);
    if (c->arg_len)
        memcpy(p, c->arg, c->arg_len);
    return p + c->arg_len;
}

static unsigned char *flatten_into(const tr_sup_spec *s, unsigned char *p)
{
    flat_head h = {.spec = *s, .n = (uint32_t)s->nchildren};
    h.spec.children = NULL;
    memcpy(p, &h, sizeof h);
    p += sizeof h;
    for (size_t i = 0; i < s->nchildren; i++)
        p = flatten_child(&s->children[i], p);
    return p;
}

void *tr__sup_flatten(const tr_sup_spec *s, size_t *len)
{
    size_t total = flat_size(s);
    unsigned char *buf = tr__malloc(total);
    if (!buf)
        return NULL;
    flatten_into(s, buf);
    *len = total;
    return buf;
}

/* The TR_MSG_SUP_ADD payload: the spec (checked), flattened (malloc'd). */
void *tr__sup_flatten_child(const tr_child_spec *spec, size_t *len)
{
    *len = sizeof(flat_child) + child_arg_size(spec);
    unsigned char *buf = tr__malloc(*len);
    if (buf)
        flatten_child(spec, buf);
    return buf;
}
