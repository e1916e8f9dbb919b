/*
 * registry.c — names for actors: register, whereis, unregister.
 *
 * Two hash tables (hmap.h) per runtime, by name and by pid, behind a
 * mutex. Registering and looking up are
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

/* An entry: in reg_names under its name's hash (entries whose names share
 * a hash are chained through `next`), and in reg_pids under its pid. */
typedef struct tr__regent {
    struct tr__regent *next;
    tr_pid pid;
    char name[TR_NAME_MAX + 1];
} tr__regent;

int tr__registry_init(tr_runtime *rt)
{
    if (uv_mutex_init(&rt->reg_mu) != 0)
        return TR_ESYSTEM;
    rt->reg_ready = true;
    return 0;
}

void tr__registry_destroy(tr_runtime *rt)
{
    TR__HMAP_EACH(&rt->reg_pids, e)
        free(e->p);
    tr__hmap_free(&rt->reg_pids);
    tr__hmap_free(&rt->reg_names);
    uv_mutex_destroy(&rt->reg_mu);
    rt->reg_ready = false;
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

/* FNV-1a, 64 bits, made odd: never 0, the table's empty key. */
static uint64_t hash(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h | 1;
}

/* reg_mu held. The entry named `name`, or NULL. */
static tr__regent *find(tr_runtime *rt, const char *name)
{
    tr__hent *chain = tr__hmap_get(&rt->reg_names, hash(name));
    tr__regent *e = chain ? chain->p : NULL;
    while (e && strcmp(e->name, name) != 0)
        e = e->next;
    return e;
}

/* reg_mu held. Adds `e` (its name absent) to both tables; false when out of
 * memory, with nothing changed. */
static bool insert(tr_runtime *rt, tr__regent *e)
{
    uint64_t h = hash(e->name);
    if (!tr__hmap_reserve(&rt->reg_names, 1) || !tr__hmap_reserve(&rt->reg_pids, 1))
        return false;
    tr__hent *chain = tr__hmap_get(&rt->reg_names, h);
    if (chain) {
        e->next = chain->p;
        chain->p = e;
    } else {
        e->next = NULL;
        tr__hmap_put(&rt->reg_names, h, 0, e);
    }
    tr__hmap_put(&rt->reg_pids, e->pid, 0, e);
    return true;
}

/* reg_mu held. Removes `e` (present) from both tables. */
static void delete(tr_runtime *rt, tr__regent *e)
{
    tr__hent *chain = tr__hmap_get(&rt->reg_names, hash(e->name));
    tr__regent **pp = (tr__regent **)&chain->p;
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    if (!chain->p)
        tr__hmap_remove(&rt->reg_names, chain);
    tr__hmap_take(&rt->reg_pids, e->pid, NULL);
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
    tr__regent *e = slot ? tr__malloc(sizeof *e) : NULL;
    if (!e)
        return TR_ENOMEM;
    strcpy(e->name, name);
    e->pid = tr__actor_pid(self);
    tr_runtime *rt = L->rt;
    uv_mutex_lock(&rt->reg_mu);
    int rc = find(rt, name) ? TR_EEXIST : insert(rt, e) ? 0 : TR_ENOMEM;
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
    delete(rt, e);
    uv_mutex_unlock(&rt->reg_mu);
    *slot = NULL;
    free(e);
}

void tr__registry_name_of(tr_runtime *rt, tr_pid pid, char *buf, size_t len)
{
    uv_mutex_lock(&rt->reg_mu);
    tr__hent *h = tr__hmap_get(&rt->reg_pids, pid);
    snprintf(buf, len, "%s", h ? ((tr__regent *)h->p)->name : "");
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
    tr__regent *e = find(rt, name);
    tr_pid pid = e ? e->pid : TR_PID_NONE;
    uv_mutex_unlock(&rt->reg_mu);
    return pid;
}
