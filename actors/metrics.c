/*
 * metrics.c — the metrics registry, the runtime's own metrics and the
 * Prometheus text format.
 *
 * Three sources, read the same way (tr_metrics_collect):
 *  - the loops' counters (loop.h: stats; metrics.h: m), written by each
 *    loop's thread with plain ck_pr stores and summed here;
 *  - the per-behaviour tables of the loops (metrics.h), merged by name;
 *  - the registry: series that the application and the subsystems above
 *    the runtime (supervisors, sockets) register. A series keeps one shard
 *    per loop, written by that loop's thread without an atomic instruction,
 *    and one shard for every other thread (atomic adds).
 *
 * The stuck-call check and the report are stuck.c's.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "loop.h"
#include "sbuf.h"
#include "workers.h"

/* ---- the registry ------------------------------------------------------------ */

typedef struct family {
    struct family *next;
    char *name, *help;
    tr_metric_type type;
    unsigned nb;
    double *bounds;
    tr_metric *first, *last;
} family;

struct tr_metric {
    tr_metric *next;
    family *fam;
    tr_runtime *rt;
    char *labels;     /* rendered: key="value",... */
    unsigned stride;  /* words per shard */
    uint64_t gauge;   /* gauges: the value's bits (atomic) */
    uint64_t *w;      /* (nloops + 1) shards of `stride` words, line-aligned */
};

static const double default_bounds[] = {
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3,
    1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

int tr__metrics_init(tr_runtime *rt)
{
    tr__metrics *m = tr__calloc(1, sizeof *m);
    if (!m)
        return TR_ENOMEM;
    if (uv_mutex_init(&m->mu) != 0) {
        free(m);
        return TR_ESYSTEM;
    }
    if (uv_mutex_init(&m->stuck_mu) != 0) {
        uv_mutex_destroy(&m->mu);
        free(m);
        return TR_ESYSTEM;
    }
    rt->metrics = m;
    return 0;
}

void tr__metrics_destroy(tr_runtime *rt)
{
    tr__metrics *m = rt->metrics;
    if (!m)
        return;
    for (family *f = m->first, *fn; f; f = fn) {
        fn = f->next;
        for (tr_metric *s = f->first, *sn; s; s = sn) {
            sn = s->next;
            free(s->labels);
            free(s->w);
            free(s);
        }
        free(f->name);
        free(f->help);
        free(f->bounds);
        free(f);
    }
    uv_mutex_destroy(&m->stuck_mu);
    uv_mutex_destroy(&m->mu);
    free(m);
    rt->metrics = NULL;
}

void tr__metrics_plain_sent(tr_runtime *rt)
{
    ck_pr_inc_64(&rt->metrics->plain_sent);
}

static bool name_ok(const char *s, bool colon)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                     (colon && c == ':');
        if (!alpha && !(p > s && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

/* "k=v,k2=v2" -> k="v",k2="v2"; false if malformed. */
static bool render_labels(const char *in, sbuf *out)
{
    sb_str(out, "");
    if (!in || !*in)
        return !out->nomem;
    const char *p = in;
    for (bool first = true; *p; first = false) {
        const char *eq = strchr(p, '=');
        if (!eq || eq == p)
            return false;
        const char *end = strchr(eq + 1, ',');
        if (!end)
            end = eq + strlen(eq);
        if (memchr(eq + 1, '=', (size_t)(end - eq - 1)))
            return false;
        char key[64];
        size_t kl = (size_t)(eq - p);
        if (kl >= sizeof key)
            return false;
        memcpy(key, p, kl);
        key[kl] = '\0';
        if (!name_ok(key, false) || (key[0] == '_' && key[1] == '_'))
            return false;
        if (!first)
            sb_str(out, ",");
        sb_str(out, key);
        sb_str(out, "=\"");
        sb_label_value(out, eq + 1, (size_t)(end - eq - 1));
        sb_str(out, "\"");
        p = *end ? end + 1 : end;
        if (*end && !*p)
            return false; /* a trailing comma */
    }
    return !out->nomem;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static bool same_family(const family *f, const tr_metric_desc *d, const double *b, unsigned nb)
{
    if (f->type != d->type || strcmp(f->help, d->help ? d->help : "") != 0)
        return false;
    if (d->type != TR_METRIC_HISTOGRAM)
        return true;
    return f->nb == nb && memcmp(f->bounds, b, nb * sizeof *b) == 0;
}

/* Registers (or finds) a series; `internal` allows the troupe_ prefix. */
int tr__metric_register(tr_runtime *rt, const tr_metric_desc *d, tr_metric **out, bool internal)
{
    if (!rt || !d || !out || !name_ok(d->name, true))
        return TR_EINVAL;
    if (d->type < TR_METRIC_COUNTER || d->type > TR_METRIC_HISTOGRAM)
        return TR_EINVAL;
    if (!internal && strncmp(d->name, "troupe_", 7) == 0)
        return TR_EINVAL; /* the runtime's own names */
    if (d->help && strchr(d->help, '\n'))
        return TR_EINVAL;
    const double *b = NULL;
    unsigned nb = 0;
    if (d->type == TR_METRIC_HISTOGRAM) {
        b = d->buckets ? d->buckets : default_bounds;
        nb = d->buckets ? d->nbuckets
                        : (unsigned)(sizeof default_bounds / sizeof default_bounds[0]);
        if (nb == 0 || nb > TR_METRIC_BUCKETS_MAX)
            return TR_EINVAL;
        for (unsigned i = 0; i < nb; i++)
            if (!isfinite(b[i]) || (i && b[i] <= b[i - 1]))
                return TR_EINVAL;
    }
    sbuf lb = {0};
    if (!render_labels(d->labels, &lb)) {
        int rc = lb.nomem ? TR_ENOMEM : TR_EINVAL;
        free(lb.p);
        return rc;
    }
    if (d->type == TR_METRIC_HISTOGRAM && (strstr(lb.p, "le=\"") == lb.p || strstr(lb.p, ",le=\""))) {
        free(lb.p);
        return TR_EINVAL; /* le is the buckets' */
    }
    tr__metrics *M = rt->metrics;
    int rc = 0;
    uv_mutex_lock(&M->mu);
    family *f = M->first;
    while (f && strcmp(f->name, d->name) != 0)
        f = f->next;
    tr_metric *s = NULL;
    if (f) {
        if (!same_family(f, d, b, nb)) {
            rc = TR_EINVAL;
            goto out;
        }
        for (s = f->first; s && strcmp(s->labels, lb.p) != 0; s = s->next)
            ;
        if (s)
            goto out; /* registered already: the same series */
    }
    if (M->nseries >= rt->opts.metric_series) {
        ck_pr_inc_64(&M->overflow);
        rc = TR_ELIMIT;
        goto out;
    }
    bool new_family = !f;
    if (new_family) {
        f = tr__calloc(1, sizeof *f);
        if (!f || !(f->name = dup_str(d->name)) || !(f->help = dup_str(d->help ? d->help : "")) ||
            (nb && !(f->bounds = malloc(nb * sizeof *b)))) {
            if (f) {
                free(f->name);
                free(f->help);
                free(f);
            }
            rc = TR_ENOMEM;
            goto out;
        }
        f->type = d->type;
        f->nb = nb;
        if (nb)
            memcpy(f->bounds, b, nb * sizeof *b);
    }
    s = tr__calloc(1, sizeof *s);
    unsigned words = d->type == TR_METRIC_HISTOGRAM ? nb + 3 : 1;
    unsigned stride = (words + 7) & ~7u;
    size_t size = (size_t)(rt->nloops + 1) * stride * sizeof(uint64_t);
    uint64_t *w = s ? tr__aligned_alloc(TR__CACHELINE, size) : NULL;
    char *labels = w ? dup_str(lb.p) : NULL;
    if (!labels) {
        free(w);
        free(s);
        if (new_family) {
            free(f->name);
            free(f->help);
            free(f->bounds);
            free(f);
        }
        s = NULL;
        rc = TR_ENOMEM;
        goto out;
    }
    memset(w, 0, size);
    s->w = w;
    s->stride = stride;
    s->labels = labels;
    s->rt = rt;
    s->fam = f;
    if (new_family) {
        if (M->last)
            M->last->next = f;
        else
            M->first = f;
        M->last = f;
    }
    if (f->last)
        f->last->next = s;
    else
        f->first = s;
    f->last = s;
    M->nseries++;
out:
    uv_mutex_unlock(&M->mu);
    free(lb.p);
    if (rc == 0)
        *out = s;
    return rc;
}

int tr_metric_register(tr_runtime *rt, const tr_metric_desc *desc, tr_metric **out)
{
    return tr__metric_register(rt, desc, out, false);
}

/* The calling thread's shard of `m`, and whether the thread owns it (a
 * loop of m's runtime: plain stores) or shares it (atomics). */
static inline uint64_t *shard_of(tr_metric *m, bool *own)
{
    tr__loop *L = tr__thread_loop(m->rt);
    *own = L != NULL;
    return m->w + (size_t)(L ? L->index : m->rt->nloops) * m->stride;
}

static inline void word_add(uint64_t *p, uint64_t n, bool own)
{
    if (own)
        ck_pr_store_64(p, *p + n);
    else
        ck_pr_faa_64(p, n);
}

static inline uint64_t dbits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static inline double bitsd(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static void double_add(uint64_t *p, double d, bool own)
{
    if (own) {
        ck_pr_store_64(p, dbits(bitsd(*p) + d));
        return;
    }
    uint64_t old = ck_pr_load_64(p);
    while (!ck_pr_cas_64_value(p, old, dbits(bitsd(old) + d), &old))
        ;
}

int tr_metric_inc(tr_metric *m, uint64_t n)
{
    if (!m || m->fam->type != TR_METRIC_COUNTER)
        return TR_EINVAL;
    bool own = false;
    word_add(shard_of(m, &own), n, own);
    return 0;
}

int tr_metric_set(tr_metric *m, double v)
{
    if (!m || m->fam->type != TR_METRIC_GAUGE || isnan(v))
        return TR_EINVAL;
    ck_pr_store_64(&m->gauge, dbits(v));
    return 0;
}

int tr_metric_add(tr_metric *m, double d)
{
    if (!m || m->fam->type != TR_METRIC_GAUGE || isnan(d))
        return TR_EINVAL;
    double_add(&m->gauge, d, false);
    return 0;
}

int tr_metric_observe(tr_metric *m, double v)
{
    if (!m || m->fam->type != TR_METRIC_HISTOGRAM || isnan(v))
        return TR_EINVAL;
    const family *f = m->fam;
    unsigned i = 0;
    while (i < f->nb && v > f->bounds[i])
        i++;
    bool own = false;
    uint64_t *w = shard_of(m, &own);
    word_add(&w[i], 1, own);
    double_add(&w[f->nb + 1], v, own);
    word_add(&w[f->nb + 2], 1, own);
    return 0;
}

/* ---- behaviours on a loop ---------------------------------------------------------- */

int tr__loop_metrics_init(tr__loop *L)
{
    tr_runtime *rt = L->rt;
    L->m.sample_left = TR__SAMPLE_TURNS;
    if (rt->opts.metrics == TR_METRICS_OFF)
        return 0;
    L->m.capbeh = rt->opts.metric_behaviors;
    L->m.beh = tr__calloc((size_t)L->m.capbeh + 1, sizeof *L->m.beh);
    return L->m.beh ? 0 : TR_ENOMEM;
}

void tr__loop_metrics_destroy(tr__loop *L)
{
    free(L->m.beh);
    L->m.beh = NULL;
    free(L->m.stuck);
    L->m.stuck = NULL;
}

void tr__metrics_bind(tr__loop *L, tr_actor *a)
{
    a->bstat = NULL;
    if (!L->m.beh || (a->flags & TR__ROOT))
        return;
    const tr_behavior *beh = a->beh;
    uint32_t n = L->m.nbeh;
    tr__bstat *bs = NULL;
    for (uint32_t i = n; i-- > 0;) /* the newest behaviours are the likeliest */
        if (L->m.beh[i].beh == beh) {
            bs = &L->m.beh[i];
            break;
        }
    if (!bs) {
        if (n < L->m.capbeh) {
            bs = &L->m.beh[n];
            ck_pr_store_ptr(&bs->beh, (void *)beh);
            ck_pr_fence_store(); /* the entry before its publication */
            ck_pr_store_32(&L->m.nbeh, n + 1);
        } else {
            bs = &L->m.beh[L->m.capbeh]; /* "other" */
            TR__M_ADD(L, beh_overflow, 1);
        }
    }
    ck_pr_store_64(&bs->spawned, bs->spawned + 1);
    ck_pr_store_ptr(&a->bstat, bs); /* metrics.c's scan reads it */
}

void tr__metrics_unbind(tr__loop *L, tr_actor *a)
{
    tr__bstat *bs = a->bstat;
    if (bs) {
        ck_pr_store_64(&bs->handled, bs->handled + a->handled);
        ck_pr_store_64(&bs->exited, bs->exited + 1);
        ck_pr_store_ptr(&a->bstat, NULL);
    }
    unsigned kind = a->exit_kind;
    if (kind < 5 && !(a->flags & TR__ROOT))
        TR__M_ADD(L, exits[kind], 1);
}

/* A sampled turn's figures: `n` messages took `ns`; the mailbox held
 * `depth` before the turn. */
void tr__metrics_sample(tr__bstat *bs, uint64_t n, uint64_t ns, uint64_t depth)
{
    if (depth > bs->depth_max)
        ck_pr_store_64(&bs->depth_max, depth);
    if (n == 0)
        return;
    uint64_t per = ns / n;
    unsigned k = 0;
    for (uint64_t bound = 1000; k < TR__HBOUNDS && per > bound; bound *= 4)
        k++;
    ck_pr_store_64(&bs->hist[k], bs->hist[k] + n);
    ck_pr_store_64(&bs->samples, bs->samples + n);
    ck_pr_store_64(&bs->time_ns, bs->time_ns + ns);
}

/* ---- collection ---------------------------------------------------------------------- */

typedef struct collector {
    tr_metric_fn fn;
    void *ud;
    int rc;
} collector;

static bool emit(collector *c, const char *name, const char *help, tr_metric_type type,
                 const char *labels, double value)
{
    if (c->rc)
        return false;
    tr_metric_sample s = {.name = name, .help = help, .type = type, .labels = labels,
                          .value = value};
    c->rc = c->fn(&s, c->ud);
    return c->rc == 0;
}

static bool emit_hist(collector *c, const char *name, const char *help, const char *labels,
                      unsigned nb, const double *bounds, const uint64_t *cum, double sum)
{
    if (c->rc)
        return false;
    tr_metric_sample s = {.name = name, .help = help, .type = TR_METRIC_HISTOGRAM,
                          .labels = labels, .value = sum, .count = cum[nb], .nbuckets = nb,
                          .bounds = bounds, .cumulative = cum};
    c->rc = c->fn(&s, c->ud);
    return c->rc == 0;
}

static uint64_t ld(const uint64_t *p)
{
    return ck_pr_load_64((uint64_t *)p);
}

/* One value per loop, labelled loop="i". */
typedef double (*loop_value_fn)(tr_runtime *rt, tr__loop *L);

static void emit_per_loop(collector *c, tr_runtime *rt, const char *name, const char *help,
                          tr_metric_type type, loop_value_fn get)
{
    for (unsigned i = 0; i < rt->nloops; i++) {
        char lab[32];
        snprintf(lab, sizeof lab, "loop=\"%u\"", i);
        if (!emit(c, name, help, type, lab, get(rt, rt->loops[i])))
            return;
    }
}

static double v_handled(tr_runtime *rt, tr__loop *L)
{
    (void)rt;
    return (double)ld(&L->stats.handled);
}
static double v_dropped(tr_runtime *rt, tr__loop *L)
{
    (void)rt;
    return (double)ld(&L->stats.dropped);
}
static double v_wakeups(tr_runtime *rt, tr__loop *L)
{
    (void)rt;
    return (double)ld(&L->stats.wakeups);
}
static double v_blocked(tr_runtime *rt, tr__loop *L)
{
    (void)rt;
    return (double)ld(&L->stats.blocked);
}
static double v_lag(tr_runtime *rt, tr__loop *L)
{
    (void)rt;
    return (double)ld(&L->stats.lag_last_us) / 1e6;
}
static double v_lag_max(tr_runtime *rt, tr__loop *L)
{
    (void)rt;
    return (double)ld(&L->stats.lag_max_us) / 1e6;
}
static double v_actors(tr_runtime *rt, tr__loop *L)
{
    (void)rt;
    return (double)ld(&L->stats.actors);
}
static double v_timers(tr_runtime *rt, tr__loop *L)
{
    (void)rt;
    uint64_t t = ld(&L->stats.timers), c = ld(&L->m.calls);
    return t > c ? (double)(t - c) : 0.0;
}
static double v_idle(tr_runtime *rt, tr__loop *L)
{
    (void)rt;
    /* At rest since rest_at (an even rest sequence), plus the rests before. */
    uint32_t seq = ck_pr_load_32(&L->rest_seq);
    ck_pr_fence_load();
    uint64_t idle = ld(&L->m.idle_ns), at = ld(&L->m.rest_at), now = uv_hrtime();
    if (!(seq & 1u) && at && now > at)
        idle += now - at;
    return (double)idle / 1e9;
}
static double v_busy(tr_runtime *rt, tr__loop *L)
{
    uint64_t start = ld(&L->m.start_ns);
    if (!start)
        return 0.0;
    double up = (double)(uv_hrtime() - start) / 1e9;
    double busy = up - v_idle(rt, L);
    return busy > 0 ? busy : 0.0;
}

/* A counter of the loops' metrics (its offset in tr__loop_metrics: M_OFF)
 * summed over the loops. */
#define M_OFF(field) offsetof(tr__loop_metrics, field)

static uint64_t sum_loops(tr_runtime *rt, size_t off)
{
    uint64_t sum = 0;
    for (unsigned i = 0; i < rt->nloops; i++)
        sum += ld((const uint64_t *)((const char *)&rt->loops[i]->m + off));
    return sum;
}

/* The behaviours of every loop, merged by name. */
typedef struct bmerge {
    const char *name;
    uint64_t spawned, exited, handled, depth_max, samples, time_ns;
    uint64_t hist[TR__HBOUNDS + 1];
} bmerge;

static void bmerge_add(bmerge *m, const tr__bstat *bs)
{
    m->spawned += ld(&bs->spawned);
    m->exited += ld(&bs->exited);
    m->handled += ld(&bs->handled);
    uint64_t d = ld(&bs->depth_max);
    if (d > m->depth_max)
        m->depth_max = d;
    m->samples += ld(&bs->samples);
    m->time_ns += ld(&bs->time_ns);
    for (unsigned k = 0; k <= TR__HBOUNDS; k++)
        m->hist[k] += ld(&bs->hist[k]);
}

/*
 * The behaviours of every loop merged by name. The messages handled by
 * living actors are their own counters (tr_actor.handled, written by
 * their loop): the table has those of the ended ones, and a scan of the
 * slots adds the living's — so that a turn pays nothing for it. The scan
 * reads each slot's entry and count as of its moment: exact when the
 * runtime is settled, a moment's view otherwise.
 */
static bmerge *behaviours(tr_runtime *rt, unsigned *count)
{
    size_t cap = 0;
    uint32_t *nbs = tr__calloc(rt->nloops, sizeof *nbs);
    unsigned **map = tr__calloc(rt->nloops, sizeof *map);
    bool ok = nbs && map;
    for (unsigned i = 0; ok && i < rt->nloops; i++) {
        nbs[i] = ck_pr_load_32(&rt->loops[i]->m.nbeh);
        cap += nbs[i] + 1;
        ok = (map[i] = tr__calloc(nbs[i] + 1, sizeof **map)) != NULL;
    }
    ck_pr_fence_load();
    bmerge *v = ok ? tr__calloc(cap ? cap : 1, sizeof *v) : NULL;
    unsigned n = 0;
    for (unsigned i = 0; v && i < rt->nloops; i++) {
        tr__loop *L = rt->loops[i];
        if (!L->m.beh)
            continue;
        uint32_t nb = nbs[i];
        for (uint32_t j = 0; j <= nb; j++) {
            const tr__bstat *bs = j < nb ? &L->m.beh[j] : &L->m.beh[L->m.capbeh];
            map[i][j] = UINT_MAX;
            if (j == nb && !ld(&bs->spawned))
                continue; /* no overflow: no "other" */
            const tr_behavior *beh = ck_pr_load_ptr(&bs->beh);
            const char *name = j == nb                              ? "other"
                               : (beh && beh->name && beh->name[0]) ? beh->name
                                                                    : "anonymous";
            unsigned k = 0;
            while (k < n && strcmp(v[k].name, name) != 0)
                k++;
            if (k == n)
                v[n++].name = name;
            bmerge_add(&v[k], bs);
            map[i][j] = k;
        }
    }
    /* The living's messages. */
    uint32_t next = ck_pr_load_32(&rt->pids.next);
    for (uint32_t idx = 1; v && idx < next && idx < rt->pids.max; idx++) {
        tr_actor *a = tr__pidtab_get(&rt->pids, idx);
        if (!a)
            continue;
        tr__bstat *bs = ck_pr_load_ptr(&a->bstat);
        tr__loop *L = ck_pr_load_ptr(&a->loop);
        if (!bs || !L || !L->m.beh)
            continue;
        size_t j = (size_t)(bs - L->m.beh);
        uint32_t nb = nbs[L->index];
        if (j == L->m.capbeh)
            j = nb; /* "other" */
        else if (j >= nb)
            continue; /* published after we looked */
        if (map[L->index][j] != UINT_MAX)
            v[map[L->index][j]].handled += ck_pr_load_64(&a->handled);
    }
    for (unsigned i = 0; map && i < rt->nloops; i++)
        free(map[i]);
    free(map);
    free(nbs);
    *count = n;
    return v;
}

static void behaviour_label(char *buf, size_t len, const char *name)
{
    sbuf b = {0};
    sb_str(&b, "behavior=\"");
    sb_label_value(&b, name, strlen(name));
    sb_str(&b, "\"");
    snprintf(buf, len, "%s", b.p ? b.p : "behavior=\"?\"");
    free(b.p);
}

static const double hbounds[TR__HBOUNDS] = {1e-6,      4e-6,      1.6e-5,    6.4e-5,
                                            2.56e-4,   1.024e-3,  4.096e-3,  1.6384e-2,
                                            6.5536e-2, 0.262144,  1.048576};

static void emit_behaviours(collector *c, tr_runtime *rt)
{
    unsigned n = 0;
    bmerge *v = behaviours(rt, &n);
    if (!v) {
        c->rc = TR_ENOMEM;
        return;
    }
    char lab[160];
    static const char *const names[] = {"troupe_actors",
                                        "troupe_actors_spawned_total",
                                        "troupe_actors_exited_total",
                                        "troupe_behavior_messages_total",
                                        "troupe_behavior_mailbox_depth_max"};
    static const char *const helps[] = {
        "Actors alive, by behaviour",
        "Actors started (their init ran), by behaviour",
        "Actors ended, by behaviour",
        "User messages handled, by behaviour",
        "Largest mailbox seen when measured (a sampled turn, at most 10 a second per loop; counted up to 4096), by behaviour"};
    static const tr_metric_type types[] = {TR_METRIC_GAUGE, TR_METRIC_COUNTER, TR_METRIC_COUNTER,
                                           TR_METRIC_COUNTER, TR_METRIC_GAUGE};
    for (unsigned f = 0; f < 5; f++)
        for (unsigned i = 0; i < n; i++) {
            const bmerge *b = &v[i];
            double val = f == 0   ? (double)(b->spawned > b->exited ? b->spawned - b->exited : 0)
                         : f == 1 ? (double)b->spawned
                         : f == 2 ? (double)b->exited
                         : f == 3 ? (double)b->handled
                                  : (double)b->depth_max;
            behaviour_label(lab, sizeof lab, b->name);
            emit(c, names[f], helps[f], types[f], lab, val);
        }
    for (unsigned i = 0; i < n; i++) {
        uint64_t cum[TR__HBOUNDS + 1], run = 0;
        for (unsigned k = 0; k <= TR__HBOUNDS; k++)
            cum[k] = run += v[i].hist[k];
        behaviour_label(lab, sizeof lab, v[i].name);
        emit_hist(c, "troupe_behavior_handler_seconds",
                  "Handler time per message on sampled turns (1 in 64 per loop), by behaviour",
                  lab, TR__HBOUNDS, hbounds, cum, (double)v[i].time_ns / 1e9);
    }
    free(v);
}

static void emit_runtime(collector *c, tr_runtime *rt)
{
    tr__metrics *M = rt->metrics;
    emit_behaviours(c, rt);
    static const char *const kinds[5] = {"normal", "shutdown", "killed", "error", "noconnection"};
    for (unsigned k = 0; k < 5; k++) {
        char lab[32];
        snprintf(lab, sizeof lab, "reason=\"%s\"", kinds[k]);
        emit(c, "troupe_actor_exits_total", "Actors ended, by exit reason", TR_METRIC_COUNTER,
             lab, (double)sum_loops(rt, M_OFF(exits) + k * sizeof(uint64_t)));
    }
    emit_per_loop(c, rt, "troupe_loop_actors", "Actors alive on the loop", TR_METRIC_GAUGE,
                  v_actors);
    emit(c, "troupe_messages_sent_total",
         "Messages sent (actors' and plain threads', replies and job results included)",
         TR_METRIC_COUNTER, "",
         (double)(sum_loops(rt, M_OFF(sent)) + ld(&M->plain_sent)));
    emit(c, "troupe_messages_cross_loop_total", "Messages an actor sent to another loop's actor",
         TR_METRIC_COUNTER, "", (double)sum_loops(rt, M_OFF(cross)));
    emit_per_loop(c, rt, "troupe_messages_handled_total", "User messages handled on the loop",
                  TR_METRIC_COUNTER, v_handled);
    emit_per_loop(c, rt, "troupe_messages_dropped_total",
                  "Messages dropped on the loop (receiver gone or ending)", TR_METRIC_COUNTER,
                  v_dropped);
    emit_per_loop(c, rt, "troupe_loop_busy_seconds_total",
                  "Time the loop was not waiting in the kernel (running or spinning)",
                  TR_METRIC_COUNTER, v_busy);
    emit_per_loop(c, rt, "troupe_loop_idle_seconds_total",
                  "Time the loop waited in the kernel for work", TR_METRIC_COUNTER, v_idle);
    emit_per_loop(c, rt, "troupe_loop_lag_seconds", "Lateness of the loop's last timer",
                  TR_METRIC_GAUGE, v_lag);
    emit_per_loop(c, rt, "troupe_loop_lag_max_seconds", "Largest timer lateness seen",
                  TR_METRIC_GAUGE, v_lag_max);
    emit_per_loop(c, rt, "troupe_loop_blocked_total",
                  "Callbacks that ran longer than block_budget_ms", TR_METRIC_COUNTER, v_blocked);
    emit_per_loop(c, rt, "troupe_loop_wakeups_total", "Times another thread woke the parked loop",
                  TR_METRIC_COUNTER, v_wakeups);
    emit_per_loop(c, rt, "troupe_timers", "Timers pending on the loop", TR_METRIC_GAUGE,
                  v_timers);
    emit(c, "troupe_calls_pending", "Calls (tr_call) waiting for an answer", TR_METRIC_GAUGE, "",
         (double)sum_loops(rt, M_OFF(calls)));
    emit(c, "troupe_call_timeouts_total", "Calls that timed out", TR_METRIC_COUNTER, "",
         (double)sum_loops(rt, M_OFF(call_timeouts)));
    emit(c, "troupe_call_failures_total", "Calls failed because their callee ended",
         TR_METRIC_COUNTER, "", (double)sum_loops(rt, M_OFF(call_failures)));
    unsigned stuck = 0, cycles = 0;
    tr__stuck_count(rt, &stuck, &cycles);
    emit(c, "troupe_calls_stuck", "Calls pending longer than stuck_call_ms", TR_METRIC_GAUGE, "",
         stuck);
    emit(c, "troupe_calls_stuck_in_cycle",
         "Stuck calls whose chain of waits closes into a cycle (a logical deadlock)",
         TR_METRIC_GAUGE, "", cycles);
    tr__workers_counts wc;
    tr__workers_get_counts(rt->workers, &wc);
    emit(c, "troupe_jobs_queued", "Worker-pool jobs waiting for a worker", TR_METRIC_GAUGE, "",
         (double)wc.queued);
    emit(c, "troupe_jobs_running", "Worker-pool jobs running", TR_METRIC_GAUGE, "",
         (double)wc.running);
    emit(c, "troupe_jobs_done_total", "Worker-pool jobs that ran to their outcome",
         TR_METRIC_COUNTER, "", (double)wc.done);
    emit(c, "troupe_jobs_cancelled_total", "Worker-pool jobs cancelled before they ran",
         TR_METRIC_COUNTER, "", (double)wc.cancelled);
    uint64_t full, empty;
    tr__chan_events(&full, &empty);
    emit(c, "troupe_channel_full_total", "Channel sends refused because the channel was full "
         "(process-wide)", TR_METRIC_COUNTER, "", (double)full);
    emit(c, "troupe_channel_empty_total", "Channel receives that found the channel empty "
         "(process-wide)", TR_METRIC_COUNTER, "", (double)empty);
    emit(c, "troupe_metrics_behaviors_overflow_total",
         "Actors counted under behavior=\"other\": their loop's behaviour table was full",
         TR_METRIC_COUNTER, "", (double)sum_loops(rt, M_OFF(beh_overflow)));
    emit(c, "troupe_metrics_series_overflow_total",
         "Series registrations refused: metric_series were registered", TR_METRIC_COUNTER, "",
         (double)ld(&M->overflow));
}

static void emit_registry(collector *c, tr_runtime *rt)
{
    tr__metrics *M = rt->metrics;
    uint64_t cum[TR_METRIC_BUCKETS_MAX + 1];
    for (family *f = M->first; f && !c->rc; f = f->next) {
        for (tr_metric *s = f->first; s && !c->rc; s = s->next) {
            if (f->type == TR_METRIC_GAUGE) {
                emit(c, f->name, f->help, f->type, s->labels, bitsd(ld(&s->gauge)));
                continue;
            }
            uint64_t count = 0;
            double sum = 0;
            memset(cum, 0, sizeof cum);
            for (unsigned sh = 0; sh <= rt->nloops; sh++) {
                const uint64_t *w = s->w + (size_t)sh * s->stride;
                if (f->type == TR_METRIC_COUNTER) {
                    count += ld(&w[0]);
                    continue;
                }
                for (unsigned k = 0; k <= f->nb; k++)
                    cum[k] += ld(&w[k]);
                sum += bitsd(ld(&w[f->nb + 1]));
            }
            if (f->type == TR_METRIC_COUNTER) {
                emit(c, f->name, f->help, f->type, s->labels, (double)count);
                continue;
            }
            for (unsigned k = 1; k <= f->nb; k++)
                cum[k] += cum[k - 1];
            emit_hist(c, f->name, f->help, s->labels, f->nb, f->bounds, cum, sum);
        }
    }
}

int tr_metrics_collect(tr_runtime *rt, tr_metric_fn fn, void *userdata)
{
    if (!rt || !fn)
        return TR_EINVAL;
    collector c = {.fn = fn, .ud = userdata};
    emit_runtime(&c, rt);
    if (c.rc)
        return c.rc;
    uv_mutex_lock(&rt->metrics->mu);
    emit_registry(&c, rt);
    uv_mutex_unlock(&rt->metrics->mu);
    return c.rc;
}

typedef struct lookup {
    const char *name, *labels;
    double value;
    bool found;
} lookup;

static int lookup_one(const tr_metric_sample *s, void *ud)
{
    lookup *l = ud;
    if (strcmp(s->name, l->name) != 0 || strcmp(s->labels, l->labels) != 0)
        return 0;
    l->value = s->type == TR_METRIC_HISTOGRAM ? (double)s->count : s->value;
    l->found = true;
    return 1;
}

int tr_metrics_value(tr_runtime *rt, const char *name, const char *labels, double *out)
{
    if (!rt || !name || !out)
        return TR_EINVAL;
    lookup l = {.name = name, .labels = labels ? labels : ""};
    int rc = tr_metrics_collect(rt, lookup_one, &l);
    if (rc < 0)
        return rc;
    if (!l.found)
        return TR_ENOTFOUND;
    *out = l.value;
    return 0;
}

/* ---- the text format ------------------------------------------------------------- */

typedef struct writer {
    sbuf b;
    const char *family; /* the last family written */
} writer;

static void put_number(sbuf *b, double v)
{
    if (isinf(v))
        sb_str(b, v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        sb_str(b, "NaN");
    else if (v > -1e15 && v < 1e15 && v == (double)(int64_t)v)
        sb_printf(b, "%lld", (long long)v);
    else
        sb_printf(b, "%.17g", v);
}

static void put_series(sbuf *b, const char *name, const char *suffix, const char *labels,
                       const char *extra)
{
    sb_str(b, name);
    sb_str(b, suffix);
    bool any = labels[0] || extra;
    if (any) {
        sb_str(b, "{");
        sb_str(b, labels);
        if (extra) {
            if (labels[0])
                sb_str(b, ",");
            sb_str(b, extra);
        }
        sb_str(b, "}");
    }
    sb_str(b, " ");
}

static int write_one(const tr_metric_sample *s, void *ud)
{
    writer *w = ud;
    sbuf *b = &w->b;
    if (!w->family || strcmp(w->family, s->name) != 0) {
        static const char *const tn[] = {"untyped", "counter", "gauge", "histogram"};
        if (s->help[0]) { /* no help: no # HELP line */
            sb_printf(b, "# HELP %s ", s->name);
            for (const char *p = s->help; *p; p++) { /* escape \ and newline */
                if (*p == '\\')
                    sb_str(b, "\\\\");
                else if (*p == '\n')
                    sb_str(b, "\\n");
                else
                    sb_put(b, p, 1);
            }
            sb_str(b, "\n");
        }
        sb_printf(b, "# TYPE %s %s\n", s->name, tn[s->type]);
        w->family = s->name; /* valid until the family's series are done */
    }
    if (s->type != TR_METRIC_HISTOGRAM) {
        put_series(b, s->name, "", s->labels, NULL);
        put_number(b, s->value);
        sb_str(b, "\n");
    } else {
        for (unsigned k = 0; k <= s->nbuckets; k++) {
            char le[48];
            if (k < s->nbuckets)
                snprintf(le, sizeof le, "le=\"%.9g\"", s->bounds[k]);
            else
                snprintf(le, sizeof le, "le=\"+Inf\"");
            put_series(b, s->name, "_bucket", s->labels, le);
            sb_printf(b, "%llu\n", (unsigned long long)s->cumulative[k]);
        }
        put_series(b, s->name, "_sum", s->labels, NULL);
        put_number(b, s->value);
        sb_str(b, "\n");
        put_series(b, s->name, "_count", s->labels, NULL);
        sb_printf(b, "%llu\n", (unsigned long long)s->count);
    }
    return b->nomem ? TR_ENOMEM : 0;
}

int tr_metrics_text(tr_runtime *rt, char **text, size_t *len)
{
    if (!rt || !text)
        return TR_EINVAL;
    writer w = {0};
    /* The family names of the runtime's own metrics are static strings and
     * the registry's live until the runtime is freed: w.family stays valid. */
    int rc = tr_metrics_collect(rt, write_one, &w);
    if (rc == 0 && (w.b.nomem || !w.b.p)) {
        sb_str(&w.b, "");
        rc = w.b.nomem ? TR_ENOMEM : 0;
    }
    if (rc != 0) {
        free(w.b.p);
        return rc;
    }
    *text = w.b.p;
    if (len)
        *len = w.b.len;
    return 0;
}
