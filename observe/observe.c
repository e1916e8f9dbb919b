/*
 * observe.c — the observability endpoint (tr_rt_observe,
 * docs/observability.md): an actor that serves the runtime's metrics, its
 * supervision tree and a live page on troupe's own HTTP server.
 *
 * The actor ("troupe.observe", top-level) owns the HTTP server as its
 * child and answers its routes: /metrics (tr_metrics_text), /tree.json
 * and /events (server-sent events: a view every interval_ms while a page
 * listens), / (the page, observe/page.html, embedded at build time).
 *
 * The tree is walked as tr_runtime_tree walks it, but asynchronously: the
 * actor asks each actor to describe itself with a call (at most
 * WALK_INFLIGHT at once, each with a timeout), and each supervisor for its
 * children's restarts (TR_MSG_SUP_WHICH); every answer comes back as a
 * message, so the walk never blocks a loop, and an actor that ends
 * meanwhile is left out. At most tree_max actors are described; the total
 * alive is read from the loops' counters.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subsys.h"

/* observe/page.html, embedded by the build (cmake/embed.cmake). */
extern const char tr__observe_page[];
extern const size_t tr__observe_page_len;

#define OBS_NAME "troupe.observe"
#define OBS_DEFAULT_ADDR "127.0.0.1:9464"
#define MAX_STREAMS 32
#define MAX_HELD 16
#define WALK_INFLIGHT 128
#define WALK_TIMEOUT_MS 5000
#define ADDR_MAX 160

enum { OBS_METRICS = 1, OBS_TREE, OBS_PAGE, OBS_EVENTS, OBS_ADDR, OBS_TICK };

typedef struct obs_arg {
    tr_observe_options o;
    char addr[ADDR_MAX];
} obs_arg;

typedef struct obs_addr_reply {
    int32_t rc;
    char addr[ADDR_MAX];
} obs_addr_reply;

typedef struct node {
    tr_pid pid, parent;
    int loop;
    bool exiting, supervisor;
    uint64_t mailbox, handled;
    uint32_t nchildren;
    tr_pid *children; /* in spawn order */
    char behavior[32];
    char name[TR_NAME_MAX + 1];
    char *info;
} node;

/* A supervisor's child and its restarts (TR_MSG_SUP_WHICH). */
typedef struct restart_rec {
    tr_pid pid;
    uint32_t restarts;
} restart_rec;

typedef struct walk {
    bool active;
    node *v;
    uint32_t n, cap;
    tr_pid *roots; /* the root's children: the top-level actors */
    uint32_t nroots;
    tr_pid *queue;
    uint32_t qhead, qtail, qcap;
    unsigned asked, inflight;
    restart_rec *rs;
    uint32_t nrs, caprs;
} walk;

typedef struct obs {
    tr_observe_options o;
    char addr[ADDR_MAX];
    int listen_rc;
    tr_pid server;
    uint64_t start_ns;
    tr_http_stream streams[MAX_STREAMS];
    unsigned nstreams;
    tr_msg held[MAX_HELD]; /* /tree.json requests waiting for a walk */
    unsigned nheld;
    bool tick_wanted;
    walk w;
} obs;

/* ---- the walk ------------------------------------------------------------------- */

static void walk_free(walk *w)
{
    for (unsigned i = 0; i < w->n; i++) {
        free(w->v[i].children);
        free(w->v[i].info);
    }
    free(w->v);
    free(w->roots);
    free(w->queue);
    free(w->rs);
    *w = (walk){0};
}

static bool queue_push(walk *w, tr_pid pid)
{
    if (w->qtail == w->qcap && !tr__grow(&w->queue, &w->qcap, sizeof *w->queue, 64))
        return false;
    w->queue[w->qtail++] = pid;
    return true;
}

static void walk_finish(tr_actor *self, obs *s);

/* Asks while there is room in flight and actors left to ask. */
static void walk_pump(tr_actor *self, obs *s)
{
    walk *w = &s->w;
    tr_runtime *rt = tr_runtime_of(self);
    while (w->inflight < WALK_INFLIGHT && w->qhead < w->qtail) {
        tr_pid pid = w->queue[w->qhead++];
        if (pid != rt->root && w->asked >= s->o.tree_max)
            continue; /* past the cap: counted in the total, not described */
        tr_ref ref;
        if (tr__describe_ask(self, pid, WALK_TIMEOUT_MS, &ref) == 0) {
            w->inflight++;
            if (pid != rt->root)
                w->asked++;
        }
    }
    if (w->inflight == 0)
        walk_finish(self, s);
}

static void walk_start(tr_actor *self, obs *s)
{
    if (s->w.active)
        return;
    s->w = (walk){.active = true};
    if (!queue_push(&s->w, tr_runtime_of(self)->root)) {
        s->w.active = false;
        return;
    }
    walk_pump(self, s);
}

static void on_describe(tr_actor *self, obs *s, const tr_msg *msg)
{
    walk *w = &s->w;
    tr_actor_info info;
    const tr_pid *kids;
    if (tr__describe_parse(msg, &info, &kids) != 0)
        return;
    bool root = info.pid == tr_runtime_of(self)->root;
    tr_pid *copy = NULL;
    if (info.nchildren) {
        copy = malloc(info.nchildren * sizeof *copy);
        if (!copy)
            return;
        memcpy(copy, kids, info.nchildren * sizeof *copy);
    }
    for (uint32_t i = 0; i < info.nchildren; i++)
        queue_push(w, kids[i]);
    if (root) {
        free(w->roots);
        w->roots = copy;
        w->nroots = info.nchildren;
        return;
    }
    if (w->n == w->cap && !tr__grow(&w->v, &w->cap, sizeof *w->v, 64)) {
        free(copy);
        return;
    }
    node *n = &w->v[w->n++];
    *n = (node){.pid = info.pid, .parent = info.parent, .loop = info.loop,
                .exiting = info.exiting != 0, .mailbox = info.mailbox, .handled = info.handled,
                .nchildren = info.nchildren, .children = copy};
    snprintf(n->behavior, sizeof n->behavior, "%s", info.behavior);
    snprintf(n->name, sizeof n->name, "%s", info.name);
    n->info = info.info[0] ? strdup(info.info) : NULL;
    n->supervisor = strcmp(info.behavior, "supervisor") == 0;
    if (n->supervisor) {
        tr_ref ref;
        if (tr_call(self, info.pid, TR_MSG_SUP_WHICH, NULL, 0, WALK_TIMEOUT_MS, &ref) == 0)
            w->inflight++;
    }
}

static void on_which(obs *s, const tr_msg *msg)
{
    walk *w = &s->w;
    if (msg->len % sizeof(tr_sup_child) != 0)
        return; /* an error code */
    size_t n = msg->len / sizeof(tr_sup_child);
    for (size_t i = 0; i < n; i++) {
        tr_sup_child c;
        memcpy(&c, (const char *)msg->data + i * sizeof c, sizeof c);
        if (w->nrs == w->caprs && !tr__grow(&w->rs, &w->caprs, sizeof *w->rs, 32))
            return;
        w->rs[w->nrs++] = (restart_rec){.pid = c.pid, .restarts = c.restarts};
    }
}

static int rec_by_pid(const void *a, const void *b)
{
    tr_pid x = ((const restart_rec *)a)->pid, y = ((const restart_rec *)b)->pid;
    return x < y ? -1 : x > y;
}

/* A supervised child's restarts (w->rs sorted by pid: tree_json). */
static uint32_t restarts_of(const walk *w, tr_pid pid)
{
    restart_rec key = {.pid = pid};
    const restart_rec *r = w->nrs ? bsearch(&key, w->rs, w->nrs, sizeof *w->rs, rec_by_pid) : NULL;
    return r ? r->restarts : 0;
}

static int by_pid(const void *a, const void *b)
{
    tr_pid x = ((const node *)a)->pid, y = ((const node *)b)->pid;
    return x < y ? -1 : x > y;
}

static const node *find(const walk *w, tr_pid pid)
{
    node key = {.pid = pid};
    return w->n ? bsearch(&key, w->v, w->n, sizeof *w->v, by_pid) : NULL;
}

/* Actors alive, the root aside: the loops' counters. */
static uint64_t alive(tr_runtime *rt)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < rt->nloops; i++)
        n += ck_pr_load_64(&rt->loops[i]->stats.actors);
    return n ? n - 1 : 0;
}

static void json_pid(sbuf *b, tr_pid pid)
{
    sb_printf(b, "\"" TR_PID_FMT "\"", TR_PID_ARGS(pid));
}

/* The tree as JSON: nodes depth first, each before its children. */
static void tree_json(tr_runtime *rt, walk *w, sbuf *b)
{
    if (w->n)
        qsort(w->v, w->n, sizeof *w->v, by_pid);
    if (w->nrs)
        qsort(w->rs, w->nrs, sizeof *w->rs, rec_by_pid);
    uint64_t total = alive(rt);
    sb_printf(b, "{\"total\":%llu,\"shown\":%u,\"truncated\":%s,\"nodes\":[",
              (unsigned long long)total, w->n, total > w->n ? "true" : "false");
    /* An explicit stack of (node, next child, depth). */
    typedef struct frame {
        const node *n;
        uint32_t next;
    } frame;
    frame *stack = malloc((w->n + 1) * sizeof *stack);
    bool first = true;
    for (uint32_t r = 0; stack && r < w->nroots; r++) {
        const node *top = find(w, w->roots[r]);
        if (!top)
            continue;
        unsigned depth = 0;
        stack[0] = (frame){.n = top, .next = 0};
        bool fresh = true;
        while (true) {
            frame *f = &stack[depth];
            if (fresh) {
                const node *n = f->n;
                uint32_t restarts = restarts_of(w, n->pid);
                if (n->supervisor)
                    for (uint32_t k = 0; k < n->nchildren; k++)
                        restarts += restarts_of(w, n->children[k]);
                sb_str(b, first ? "{" : ",{");
                first = false;
                sb_str(b, "\"pid\":");
                json_pid(b, n->pid);
                sb_str(b, ",\"parent\":");
                json_pid(b, n->parent);
                sb_printf(b, ",\"depth\":%u,\"behavior\":", depth);
                sb_json_str(b, n->behavior);
                sb_str(b, ",\"name\":");
                sb_json_str(b, n->name);
                sb_printf(b,
                          ",\"loop\":%d,\"state\":\"%s\",\"mailbox\":%llu,\"handled\":%llu,"
                          "\"restarts\":%u,\"children\":%u,\"info\":",
                          n->loop, n->exiting ? "exiting" : "running",
                          (unsigned long long)n->mailbox, (unsigned long long)n->handled,
                          restarts, n->nchildren);
                sb_json_str(b, n->info ? n->info : "");
                sb_str(b, "}");
                fresh = false;
            }
            const node *child = NULL;
            while (f->next < f->n->nchildren && !child)
                child = find(w, f->n->children[f->next++]);
            if (child && depth + 1 <= w->n) {
                stack[++depth] = (frame){.n = child, .next = 0};
                fresh = true;
                continue;
            }
            if (depth == 0)
                break;
            depth--;
        }
    }
    free(stack);
    sb_str(b, "]}");
}

/* ---- the view pushed to the page -------------------------------------------------- */

/* "key=\"value\"" -> value, unescaped, into out (labels as the collector
 * renders them: one label here). */
static void label_value(const char *labels, char *out, size_t cap)
{
    const char *q = strchr(labels, '"');
    size_t n = 0;
    if (q)
        for (const char *p = q + 1; *p && *p != '"' && n + 1 < cap; p++) {
            if (*p == '\\' && p[1]) {
                p++;
                out[n++] = *p == 'n' ? '\n' : *p;
            } else {
                out[n++] = *p;
            }
        }
    out[n] = '\0';
}

typedef struct view_beh {
    char name[64];
    double actors, spawned, exited, handled, hsum, hcount;
} view_beh;

typedef struct view {
    double *busy, *idle, *handled; /* per loop */
    unsigned nloops;
    view_beh *beh;
    uint32_t nbeh, capbeh;
} view;

static view_beh *view_beh_of(view *v, const char *labels)
{
    char name[64];
    label_value(labels, name, sizeof name);
    for (unsigned i = 0; i < v->nbeh; i++)
        if (strcmp(v->beh[i].name, name) == 0)
            return &v->beh[i];
    if (v->nbeh == v->capbeh && !tr__grow(&v->beh, &v->capbeh, sizeof *v->beh, 16))
        return NULL;
    view_beh *b = &v->beh[v->nbeh++];
    *b = (view_beh){0};
    snprintf(b->name, sizeof b->name, "%s", name);
    return b;
}

static int view_sample(const tr_metric_sample *s, void *ud)
{
    view *v = ud;
    if (strncmp(s->name, "troupe_", 7) != 0)
        return 0;
    const char *n = s->name + 7;
    if (!strncmp(s->labels, "loop=", 5)) {
        char idx[16];
        label_value(s->labels, idx, sizeof idx);
        unsigned i = (unsigned)strtoul(idx, NULL, 10);
        if (i >= v->nloops)
            return 0;
        if (!strcmp(n, "loop_busy_seconds_total"))
            v->busy[i] = s->value;
        else if (!strcmp(n, "loop_idle_seconds_total"))
            v->idle[i] = s->value;
        else if (!strcmp(n, "messages_handled_total"))
            v->handled[i] = s->value;
        return 0;
    }
    if (strncmp(s->labels, "behavior=", 9) != 0)
        return 0;
    view_beh *b = view_beh_of(v, s->labels);
    if (!b)
        return 0;
    if (!strcmp(n, "actors"))
        b->actors = s->value;
    else if (!strcmp(n, "actors_spawned_total"))
        b->spawned = s->value;
    else if (!strcmp(n, "actors_exited_total"))
        b->exited = s->value;
    else if (!strcmp(n, "behavior_messages_total"))
        b->handled = s->value;
    else if (!strcmp(n, "behavior_handler_seconds")) {
        b->hsum = s->value;
        b->hcount = (double)s->count;
    }
    return 0;
}

/* "stuck":[...]: the stuck calls as the loops last published them. */
static void stuck_json(tr_runtime *rt, sbuf *b)
{
    sb_str(b, "\"stuck\":[");
    tr_stuck_call st[64];
    int n = tr_runtime_stuck_calls(rt, st, 64);
    for (int i = 0; i < n && i < 64; i++) {
        sb_str(b, i ? ",{\"caller\":" : "{\"caller\":");
        json_pid(b, st[i].caller);
        sb_str(b, ",\"callee\":");
        json_pid(b, st[i].callee);
        sb_printf(b, ",\"waited_ms\":%lld,\"cycle\":%s}", (long long)st[i].waited_ms,
                  st[i].in_cycle ? "true" : "false");
    }
    sb_str(b, "]");
}

static void view_json(tr_actor *self, obs *s, sbuf *b)
{
    tr_runtime *rt = tr_runtime_of(self);
    view v = {.nloops = rt->nloops};
    v.busy = calloc(rt->nloops, sizeof *v.busy);
    v.idle = calloc(rt->nloops, sizeof *v.idle);
    v.handled = calloc(rt->nloops, sizeof *v.handled);
    if (v.busy && v.idle && v.handled)
        tr_metrics_collect(rt, view_sample, &v);
    sb_str(b, "\"loops\":[");
    for (unsigned i = 0; v.busy && v.idle && v.handled && i < rt->nloops; i++)
        sb_printf(b, "%s{\"index\":%u,\"busy_seconds\":%.6f,\"idle_seconds\":%.6f,\"handled\":%.0f}",
                  i ? "," : "", i, v.busy[i], v.idle[i], v.handled[i]);
    sb_str(b, "],\"behaviors\":[");
    for (unsigned i = 0; i < v.nbeh; i++) {
        const view_beh *e = &v.beh[i];
        sb_str(b, i ? ",{\"name\":" : "{\"name\":");
        sb_json_str(b, e->name);
        sb_printf(b,
                  ",\"actors\":%.0f,\"spawned\":%.0f,\"exited\":%.0f,\"handled\":%.0f,"
                  "\"handler_seconds_sum\":%.9f,\"handler_count\":%.0f}",
                  e->actors, e->spawned, e->exited, e->handled, e->hsum, e->hcount);
    }
    sb_str(b, "],");
    stuck_json(rt, b);
    free(v.busy);
    free(v.idle);
    free(v.handled);
    free(v.beh);
    (void)s;
}

static void drop_stream(obs *s, unsigned i)
{
    s->streams[i] = s->streams[--s->nstreams];
}

/* The walk is complete: answer the /tree.json requests, push the view. */
static void walk_finish(tr_actor *self, obs *s)
{
    tr_runtime *rt = tr_runtime_of(self);
    double t = (double)(uv_hrtime() - s->start_ns) / 1e9;
    sbuf tree = {0};
    tree_json(rt, &s->w, &tree);
    walk_free(&s->w);
    if (s->nheld) {
        sbuf b = {0};
        sb_printf(&b, "{\"time\":%.3f,", t);
        stuck_json(rt, &b);
        sb_str(&b, ",\"tree\":");
        sb_str(&b, tree.p ? tree.p : "{}");
        sb_str(&b, "}\n");
        for (unsigned i = 0; i < s->nheld; i++) {
            if (b.nomem)
                tr_http_reply(self, &s->held[i], 503, "text/plain", "no memory\n", 10);
            else
                tr_http_reply(self, &s->held[i], 200, "application/json", b.p, b.len);
            free((void *)s->held[i].data);
        }
        s->nheld = 0;
        free(b.p);
    }
    if (s->tick_wanted && s->nstreams) {
        sbuf b = {0};
        sb_printf(&b, "{\"time\":%.3f,", t);
        view_json(self, s, &b);
        sb_str(&b, ",\"tree\":");
        sb_str(&b, tree.p ? tree.p : "{}");
        sb_str(&b, "}");
        for (unsigned i = 0; !b.nomem && i < s->nstreams;)
            if (tr_http_stream_send(self, &s->streams[i], "tick", b.p, b.len) != 0)
                drop_stream(s, i); /* the page has gone */
            else
                i++;
        free(b.p);
    }
    s->tick_wanted = false;
    free(tree.p);
}

/* ---- the actor ---------------------------------------------------------------------- */

static int obs_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    obs *s = state;
    obs_arg a;
    if (len != sizeof a)
        return TR_EINVAL;
    memcpy(&a, arg, sizeof a);
    s->o = a.o;
    s->start_ns = uv_hrtime();
    s->listen_rc = tr_register(self, OBS_NAME);
    if (s->listen_rc == TR_EEXIST)
        s->listen_rc = TR_EALREADY;
    if (s->listen_rc != 0)
        return 0; /* said by OBS_ADDR, then the actor ends */
    tr_pid me = tr_self(self);
    tr_http_route routes[] = {
        {.method = "GET", .path = "/metrics", .pid = me, .type = OBS_METRICS},
        {.method = "GET", .path = "/tree.json", .pid = me, .type = OBS_TREE},
        {.method = "GET", .path = "/events", .pid = me, .type = OBS_EVENTS},
        {.method = "GET", .path = "/", .pid = me, .type = OBS_PAGE},
    };
    tr_http_options h;
    tr_http_options_init(&h);
    h.addr = a.addr;
    h.routes = routes;
    h.nroutes = sizeof routes / sizeof routes[0];
    s->listen_rc = tr_http_serve(self, &h, &s->server, s->addr, sizeof s->addr);
    if (s->listen_rc == 0)
        s->listen_rc = tr_send_interval(self, me, s->o.interval_ms, OBS_TICK, NULL, 0, NULL);
    return 0;
}

static int obs_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    obs *s = state;
    switch (msg->type) {
    case OBS_ADDR: {
        obs_addr_reply r = {.rc = s->listen_rc};
        snprintf(r.addr, sizeof r.addr, "%s", s->addr);
        int rc = tr_reply(self, msg, OBS_ADDR, &r, sizeof r);
        if (s->listen_rc != 0)
            return tr_exit(self, TR_EXIT_NORMAL);
        return rc;
    }
    case OBS_METRICS: {
        char *text = NULL;
        size_t len = 0;
        if (tr_metrics_text(tr_runtime_of(self), &text, &len) != 0)
            return tr_http_reply(self, msg, 503, "text/plain", "no memory\n", 10);
        /* A reply that cannot go (the client has gone) is not the endpoint's failure. */
        tr_http_reply(self, msg, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
        free(text);
        return 0;
    }
    case OBS_PAGE:
        tr_http_reply(self, msg, 200, "text/html; charset=utf-8", tr__observe_page,
                      tr__observe_page_len);
        return 0;
    case OBS_TREE:
        if (s->nheld == MAX_HELD) {
            tr_http_reply(self, msg, 503, "text/plain", "busy\n", 5);
            return 0;
        }
        /* Answered when the walk ends: the request and its payload (which
         * the reply reads) are kept until then. */
        void *copy = malloc(msg->len ? msg->len : 1);
        if (!copy) {
            tr_http_reply(self, msg, 503, "text/plain", "no memory\n", 10);
            return 0;
        }
        if (msg->len)
            memcpy(copy, msg->data, msg->len);
        s->held[s->nheld] = *msg;
        s->held[s->nheld++].data = copy;
        walk_start(self, s);
        return 0;
    case OBS_EVENTS: {
        if (s->nstreams == MAX_STREAMS) {
            tr_http_reply(self, msg, 503, "text/plain", "too many pages\n", 15);
            return 0;
        }
        tr_http_stream st;
        if (tr_http_reply_stream(self, msg, "Cache-Control: no-cache\r\n", &st) == 0) {
            s->streams[s->nstreams++] = st;
            s->tick_wanted = true; /* the first view at once */
            walk_start(self, s);
        }
        return 0;
    }
    case OBS_TICK:
        if (s->nstreams) {
            s->tick_wanted = true;
            walk_start(self, s);
        }
        return 0;
    case TR__MSG_DESCRIBE:
        if (s->w.active) {
            on_describe(self, s, msg);
            s->w.inflight--;
            walk_pump(self, s);
        }
        return 0;
    case TR_MSG_SUP_WHICH:
    case TR_MSG_CALL_TIMEOUT:
    case TR_MSG_CALL_FAILED:
        if ((msg->flags & TR_MSG_REPLY) && s->w.active) {
            if (msg->type == TR_MSG_SUP_WHICH)
                on_which(s, msg);
            s->w.inflight--;
            walk_pump(self, s);
        }
        return 0;
    default:
        return 0;
    }
}

static void obs_terminate(tr_actor *self, void *state, const tr_exit_reason *reason)
{
    (void)self;
    (void)reason;
    obs *s = state;
    walk_free(&s->w);
    for (unsigned i = 0; i < s->nheld; i++)
        free((void *)s->held[i].data); /* unanswered: they fail with us */
}

static const tr_behavior obs_behavior = {
    .name = "troupe.observe",
    .state_size = sizeof(obs),
    .init = obs_init,
    .receive = obs_receive,
    .terminate = obs_terminate,
};

int tr_rt_observe(tr_runtime *rt, const tr_observe_options *opts, char *addr_out, size_t cap)
{
    if (!rt || (!addr_out && cap))
        return TR_EINVAL;
    obs_arg a = {0};
    if (opts)
        a.o = *opts;
    const char *addr = a.o.addr ? a.o.addr : OBS_DEFAULT_ADDR;
    if (strlen(addr) >= sizeof a.addr)
        return TR_EINVAL;
    snprintf(a.addr, sizeof a.addr, "%s", addr);
    a.o.addr = NULL;
    if (a.o.tree_max == 0)
        a.o.tree_max = 1000;
    if (a.o.interval_ms == 0 || a.o.interval_ms == TR_DEFAULT)
        a.o.interval_ms = 1000;
    if (a.o.interval_ms < 100)
        return TR_EINVAL;
    tr_spawn_opts so;
    tr_spawn_opts_init(&so);
    so.arg = &a;
    so.arg_len = sizeof a;
    so.top = TR_TOP_INDEPENDENT;
    tr_pid pid;
    int rc = tr_rt_spawn(rt, &obs_behavior, &so, &pid);
    if (rc != 0)
        return rc;
    tr_rt_reply r;
    rc = tr_rt_call(rt, pid, OBS_ADDR, NULL, 0, 5000, &r);
    if (rc != 0) {
        tr_signal_exit(rt, pid, TR_EXIT_SHUTDOWN);
        return rc;
    }
    obs_addr_reply ar = {.rc = TR_EINVAL};
    if (r.len == sizeof ar)
        memcpy(&ar, r.data, sizeof ar);
    tr_rt_reply_free(&r);
    if (ar.rc != 0)
        return ar.rc;
    if (cap) {
        if (strlen(ar.addr) >= cap)
            return TR_ELIMIT;
        memcpy(addr_out, ar.addr, strlen(ar.addr) + 1);
    }
    return 0;
}
