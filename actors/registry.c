/*
 * registry.c — names for actors: register, whereis, unregister.
 *
 * One hash table per runtime behind a mutex. Registering and looking up are
 * rare next to sends, and whereis is callable from any thread, so a mutex
 * is the honest tool. An actor holds at most one name; its extension record
 * points at the entry so the name is released when the actor exits and can
 * be shown in crash reports. Only the home loop follows that pointer; other
 * threads find a name by pid, in the table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subsys.h"

typedef struct tr__regent {
    struct tr__regent *next;
    tr_pid pid;
    char name[TR_NAME_MAX + 1];
} tr__regent;

int tr__registry_init(tr_runtime *rt)
{
    if (uv_mutex_init(&rt->reg_mu) != 0)
        return TR_ESYSTEM;
    rt->reg_nbuckets = 64;
    rt->reg_buckets = calloc(rt->reg_nbuckets, sizeof *rt->reg_buckets);
    if (!rt->reg_buckets) {
        uv_mutex_destroy(&rt->reg_mu);
        return TR_ENOMEM;
    }
    return 0;
}

void tr__registry_destroy(tr_runtime *rt)
{
    for (uint32_t b = 0; b < rt->reg_nbuckets; b++) {
        tr__regent *e = rt->reg_buckets[b];
        while (e) {
            tr__regent *next = e->next;
            free(e);
            e = next;
        }
    }
    free(rt->reg_buckets);
    uv_mutex_destroy(&rt->reg_mu);
}

/* A registered name is a resource its actor owns: released when the actor
 * has ended, before anyone hears of the end (so that a restarted successor
 * can take it at once, as in Erlang). The registry frees what is left at
 * teardown. Data: the registry entry, or NULL. */
static void name_release(tr__loop *L, tr_actor *a, void **data)
{
    (void)data;
    tr__registry_release(L->rt, a);
}

static tr__owned_kind name_kind = {.name = "name", .release = name_release};

static tr__regent *entry_of(const tr_actor *a)
{
    void **d = tr__owned(a, &name_kind);
    return d ? *d : NULL;
}

const char *tr__registry_name(const tr_actor *a)
{
    tr__regent *e = entry_of(a);
    return e ? e->name : NULL;
}

static uint32_t hash(const char *s) /* FNV-1a */
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* reg_mu held. The entry's link pointer for `name` (points at NULL if absent). */
static tr__regent **find(tr_runtime *rt, const char *name)
{
    tr__regent **pp = &rt->reg_buckets[hash(name) & (rt->reg_nbuckets - 1)];
    while (*pp && strcmp((*pp)->name, name) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* reg_mu held. Doubles the table when it is fuller than one per bucket. */
static void maybe_grow(tr_runtime *rt)
{
    if (rt->reg_count <= rt->reg_nbuckets)
        return;
    uint32_t n = rt->reg_nbuckets * 2;
    tr__regent **b = calloc(n, sizeof *b);
    if (!b)
        return; /* longer chains, still correct */
    for (uint32_t i = 0; i < rt->reg_nbuckets; i++) {
        tr__regent *e = rt->reg_buckets[i];
        while (e) {
            tr__regent *next = e->next;
            uint32_t h = hash(e->name) & (n - 1);
            e->next = b[h];
            b[h] = e;
            e = next;
        }
    }
    free(rt->reg_buckets);
    rt->reg_buckets = b;
    rt->reg_nbuckets = n;
}

static bool valid_name(const char *name)
{
    return name && name[0] && strnlen(name, TR_NAME_MAX + 1) <= TR_NAME_MAX;
}

int tr_register(tr_actor *self, const char *name)
{
    if (!self || !valid_name(name))
        return TR_EINVAL;
    tr__loop *L = tr__running_loop(self);
    if (!L)
        return TR_EWRONGTHREAD;
    if (tr__registry_name(self))
        return TR_EALREADY;
    if (self->status != TR__RUNNING)
        return TR_ESTOPPED;
    int err = 0;
    void **slot = tr__own(L, self, &name_kind, &err);
    tr__regent *e = slot ? malloc(sizeof *e) : NULL;
    if (!e)
        return TR_ENOMEM;
    strcpy(e->name, name);
    e->pid = tr__actor_pid(self);
    tr_runtime *rt = L->rt;
    uv_mutex_lock(&rt->reg_mu);
    tr__regent **pp = find(rt, name);
    int rc = 0;
    if (*pp) {
        rc = TR_EEXIST;
    } else {
        e->next = NULL;
        *pp = e;
        rt->reg_count++;
        maybe_grow(rt);
    }
    uv_mutex_unlock(&rt->reg_mu);
    if (rc != 0) {
        free(e);
        return rc;
    }
    *slot = e;
    return 0;
}

void tr__registry_release(tr_runtime *rt, tr_actor *a)
{
    void **slot = tr__owned(a, &name_kind);
    tr__regent *e = slot ? *slot : NULL;
    if (!e)
        return;
    uv_mutex_lock(&rt->reg_mu);
    tr__regent **pp = find(rt, e->name);
    if (*pp == e) {
        *pp = e->next;
        rt->reg_count--;
    }
    uv_mutex_unlock(&rt->reg_mu);
    *slot = NULL;
    free(e);
}

void tr__registry_name_of(tr_runtime *rt, tr_pid pid, char *buf, size_t len)
{
    const char *name = "";
    uv_mutex_lock(&rt->reg_mu);
    for (uint32_t b = 0; b < rt->reg_nbuckets && !name[0]; b++)
        for (tr__regent *e = rt->reg_buckets[b]; e; e = e->next)
            if (e->pid == pid) {
                name = e->name;
                break;
            }
    snprintf(buf, len, "%s", name);
    uv_mutex_unlock(&rt->reg_mu);
}

int tr_unregister(tr_actor *self)
{
    tr__loop *L;
    int self_rc = tr__self_loop(self, &L);
    if (self_rc != 0)
        return self_rc;
    if (!tr__registry_name(self))
        return TR_ENOTFOUND;
    tr__registry_release(L->rt, self);
    return 0;
}

tr_pid tr_whereis(tr_runtime *rt, const char *name)
{
    if (!rt || !valid_name(name))
        return TR_PID_NONE;
    uv_mutex_lock(&rt->reg_mu);
    tr__regent *e = *find(rt, name);
    tr_pid pid = e ? e->pid : TR_PID_NONE;
    uv_mutex_unlock(&rt->reg_mu);
    return pid;
}
