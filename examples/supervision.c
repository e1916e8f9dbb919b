/*
 * supervision — a small shop, kept alive by a supervision tree.
 *
 *   shop (supervisor, one_for_one)
 *   |-- inventory          stock counts; audits them with a task group of jobs
 *   |-- payments (supervisor, one_for_one)
 *   |   |-- gateway-0      fails at random, about one order in eight
 *   |   `-- gateway-1
 *   |-- fraud (supervisor, at most 2 restarts in 5 s)
 *   |   `-- model          crashes on a poisoned order
 *   `-- frontend           places orders through the gateways
 *
 * What it shows, in order: the frontend places 400 orders while gateways
 * crash and are restarted (the reports go through the runtime's log
 * callback); three poisoned orders crash the fraud model faster than its
 * supervisor allows, so that supervisor gives up and its own supervisor,
 * the shop, restarts it — escalation; the inventory audits its shelves with
 * a task group of worker-pool jobs; the tree is printed with restart counts;
 * stopping the runtime shuts the tree down in order, newest first. It
 * finishes by itself in about a second.
 *
 *   ./build/examples/supervision
 *   ./build/examples/supervision --observe 127.0.0.1:9464 --run-for 300
 *
 * --observe serves the runtime's view of itself over HTTP (tr_rt_observe:
 * open the printed address in a browser for the live page); --run-for
 * keeps the shop busy that long before step 5, gateways crashing and the
 * fraud model poisoned every few seconds, so there is something to watch
 * (tests/browser/live_page.py does). --help lists the flags.
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <troupe.h>

enum { ORDER = 1, RUN = 2, POISON = 3, AUDIT = 4, TICK = 5 };

#define ORDERS 400
#define SHELVES 4

/* ---- the log: crash and supervisor reports, a few lines per step ------------- */

static _Atomic int budget = 100, hidden;

static void on_log(void *ud, tr_log_level level, const char *line)
{
    (void)ud;
    if (atomic_fetch_sub(&budget, 1) <= 0) {
        atomic_fetch_add(&hidden, 1);
        return;
    }
    printf("  [%s] %s\n", level == TR_LOG_INFO ? "info" : level == TR_LOG_WARN ? "warn" : "error",
           line);
}

/* ---- a payment gateway: flaky --------------------------------------------------- */

typedef struct gateway {
    uint64_t rng;
    uint32_t served;
} gateway;

static int gateway_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    gateway *g = state;
    char name[16];
    snprintf(name, sizeof name, "gateway-%.*s", (int)len, (const char *)arg);
    g->rng = tr_self(self) * 0x9e3779b97f4a7c15ull | 1;
    return tr_register(self, name); /* the new incarnation takes the old name */
}

static int gateway_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    gateway *g = state;
    if (msg->type != ORDER)
        return 0;
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    if (g->rng % 8 == 0) /* the card processor hiccups: crash, answer nobody */
        return tr_exit_error(self, TR_EUSER(100), "card processor hiccup");
    g->served++;
    return tr_reply(self, msg, ORDER, NULL, 0);
}

static const tr_behavior gateway_b = {.name = "gateway", .state_size = sizeof(gateway),
                                      .init = gateway_init, .receive = gateway_receive};

/* ---- the fraud model: crashes on poison ---------------------------------------- */

static int model_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return tr_register(self, "model");
}

static int model_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    if (msg->type == POISON)
        return tr_exit_error(self, TR_EUSER(101), "poisoned order");
    return 0;
}

static const tr_behavior model_b = {.name = "model", .init = model_init,
                                    .receive = model_receive};

/* ---- the inventory: audits with a task group ------------------------------------- */

typedef struct inventory {
    tr_msg audit_req; /* the AUDIT call to answer when the group is done */
    tr_group_id audit;
} inventory;

/* A job on the worker pool: count one shelf (a stand-in for slow I/O). */
static int count_shelf(tr_job *job, const void *arg, size_t len)
{
    (void)len;
    int shelf;
    memcpy(&shelf, arg, sizeof shelf);
    uint64_t items = 0;
    for (int i = 0; i < 1000000; i++)
        items += (uint64_t)((i * (shelf + 3)) % 7 == 0);
    return tr_job_set_result(job, &items, sizeof items);
}

static int inventory_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return tr_register(self, "inventory");
}

static int inventory_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    inventory *inv = state;
    if (msg->type == AUDIT) {
        tr_group_opts o;
        tr_group_opts_init(&o);
        o.mode = TR_GROUP_COLLECT; /* every shelf's count, in order */
        o.timeout_ms = 10000;
        int rc = tr_group_open(self, &o, &inv->audit);
        for (int s = 0; rc == 0 && s < SHELVES; s++)
            rc = tr_group_offload(self, inv->audit, count_shelf, &s, sizeof s);
        if (rc == 0)
            rc = tr_group_close(self, inv->audit);
        if (rc != 0)
            return tr_reply(self, msg, AUDIT, NULL, 0);
        inv->audit_req = *msg; /* answered when the group completes */
        inv->audit_req.data = NULL;
        return 0;
    }
    if (msg->type == TR_MSG_GROUP_DONE && msg->ref == inv->audit) {
        const tr_group_done *done = msg->data;
        uint64_t counts[SHELVES] = {0};
        for (uint32_t i = 0; i < done->n && i < SHELVES; i++) {
            const tr_down *e = tr_group_entry(msg, i);
            if (e->kind == TR_EXIT_NORMAL && e->result_len == sizeof counts[i])
                memcpy(&counts[i], tr_down_result(e), sizeof counts[i]);
        }
        return tr_reply(self, &inv->audit_req, AUDIT, counts, sizeof counts);
    }
    return 0;
}

static const tr_behavior inventory_b = {.name = "inventory", .state_size = sizeof(inventory),
                                        .init = inventory_init, .receive = inventory_receive};

/* ---- the frontend: places orders ------------------------------------------------- */

typedef struct results {
    uint32_t ok, crashed, unavailable;
} results;

typedef struct frontend {
    tr_msg run_req;
    tr_timer_id ticker;
    uint32_t placed, settled;
    results r;
} frontend;

static void settle(tr_actor *self, frontend *f)
{
    if (++f->settled == ORDERS) {
        tr_timer_cancel(self, f->ticker);
        tr_reply(self, &f->run_req, RUN, &f->r, sizeof f->r);
    }
}

static int frontend_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    frontend *f = state;
    switch (msg->type) {
    case RUN: /* a round of ORDERS orders; answered with its results */
        f->placed = f->settled = 0;
        f->r = (results){0};
        f->run_req = *msg;
        f->run_req.data = NULL;
        return tr_send_interval(self, tr_self(self), 1, TICK, NULL, 0, &f->ticker);
    case TICK: /* a few orders per millisecond, spread over the gateways */
        for (int i = 0; i < 2 && f->placed < ORDERS; i++, f->placed++) {
            char name[16];
            snprintf(name, sizeof name, "gateway-%u", f->placed % 2);
            tr_pid gw = tr_whereis(tr_runtime_of(self), name);
            tr_ref ref;
            if (gw == TR_PID_NONE || tr_call(self, gw, ORDER, NULL, 0, 200, &ref) != 0) {
                f->r.unavailable++; /* between a crash and its restart */
                settle(self, f);
            }
        }
        return 0;
    case ORDER: /* a reply */
        f->r.ok++;
        settle(self, f);
        return 0;
    case TR_MSG_CALL_FAILED: /* the gateway crashed with our order: told at once */
    case TR_MSG_CALL_TIMEOUT: /* (or it did not answer in time) */
        f->r.crashed++;
        settle(self, f);
        return 0;
    }
    return 0;
}

static const tr_behavior frontend_b = {.name = "frontend", .state_size = sizeof(frontend),
                                       .receive = frontend_receive};

/* ---- main ------------------------------------------------------------------------ */

static tr_pid child_pid(tr_runtime *rt, tr_pid sup, const char *id)
{
    tr_sup_child kids[8];
    int n = tr_rt_sup_which_children(rt, sup, kids, 8);
    for (int i = 0; i < n && i < 8; i++)
        if (strcmp(kids[i].id, id) == 0)
            return kids[i].pid;
    return TR_PID_NONE;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* --run-for: rounds of orders (gateways crash and are restarted), a
 * poisoned order for the fraud model every 3 s (its supervisor allows 2
 * restarts in 5 s: no escalation), until the time is up or a signal stops
 * the runtime. */
static void keep_shopping(tr_runtime *rt, tr_pid shop, double seconds)
{
    double end = now_s() + seconds, next_poison = now_s() + 3;
    unsigned rounds = 0;
    atomic_store(&budget, 0); /* quiet: the reports are on the page */
    while (!tr_runtime_stopping(rt) && now_s() < end) {
        tr_rt_reply r;
        if (tr_rt_call(rt, child_pid(rt, shop, "frontend"), RUN, NULL, 0, 30000, &r) != 0)
            break; /* the runtime is stopping */
        tr_rt_reply_free(&r);
        rounds++;
        tr_pid model = tr_whereis(rt, "model");
        if (model != TR_PID_NONE && now_s() >= next_poison) {
            tr_rt_send(rt, model, POISON, NULL, 0);
            next_poison += 3;
        }
        sleep_ms(300);
    }
    printf("   %u rounds of %d orders\n", rounds, ORDERS);
}

static void usage(FILE *f, const char *argv0)
{
    fprintf(f,
            "usage: %s [--observe ADDR] [--run-for SECONDS] [--help]\n"
            "A small shop kept alive by a supervision tree; finishes in about a second.\n"
            "  --observe ADDR     serve the runtime's metrics, tree and live page over\n"
            "                     HTTP on ADDR (e.g. 127.0.0.1:9464; port 0: an\n"
            "                     ephemeral one); prints \"observe: http://ADDR/\" on stderr\n"
            "  --run-for SECONDS  before the tree is printed, keep placing orders (and\n"
            "                     crashing gateways) that long; SIGINT or SIGTERM ends it\n",
            argv0);
}

int main(int argc, char **argv)
{
    const char *observe = NULL;
    double run_for = 0;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
            usage(stdout, argv[0]);
            return 0;
        } else if (strcmp(f, "--observe") == 0 && v && *v) {
            observe = v;
        } else if (strcmp(f, "--run-for") == 0 && v) {
            run_for = strtod(v, &end);
            if (end == v || *end || !(run_for >= 0 && run_for <= 1e6))
                goto bad;
        } else {
            goto bad;
        }
        i++;
        continue;
    bad:
        fprintf(stderr, "%s: bad option: %s%s%s\n", argv[0], f, v ? " " : "", v ? v : "");
        usage(stderr, argv[0]);
        return 2;
    }

    tr_runtime_options o;
    tr_runtime_options_init(&o);
    o.loops = 2;
    o.log = on_log;
    o.stop_on_signals = run_for > 0; /* a long run ends cleanly on ^C */
    tr_runtime *rt;
    if (tr_runtime_create(&rt, &o) != 0 || tr_runtime_start(rt) != 0)
        return 1;
    if (observe) {
        tr_observe_options oo = {.addr = observe};
        char bound[128];
        int rc = tr_rt_observe(rt, &oo, bound, sizeof bound);
        if (rc != 0) {
            fprintf(stderr, "supervision: observe on %s: %s\n", observe, tr_strerror(rc));
            tr_runtime_stop(rt);
            tr_runtime_wait(rt);
            tr_runtime_free(rt);
            return 1;
        }
        fprintf(stderr, "observe: http://%s/\n", bound);
    }

    /* The tree, as data: supervisors inside a supervisor. Each spec is
     * copied, so every restart starts from the same fresh state. A field
     * left out has its default: a child without .loop lives on its
     * supervisor's loop; TR_LOOP(n) pins one to loop n. */
    tr_child_spec gateways[] = {
        {.id = "gateway-0", .behavior = &gateway_b, .arg = "0", .arg_len = 1,
         .loop = TR_LOOP(0)},
        {.id = "gateway-1", .behavior = &gateway_b, .arg = "1", .arg_len = 1,
         .loop = TR_LOOP(1)},
    };
    tr_sup_spec payments = {.strategy = TR_ONE_FOR_ONE, .max_restarts = 1000,
                            .period_ms = 1000, .children = gateways, .nchildren = 2};
    tr_child_spec models[] = {{.id = "model", .behavior = &model_b}}; /* fraud's loop */
    tr_sup_spec fraud = {.strategy = TR_ONE_FOR_ONE, .max_restarts = 2, .period_ms = 5000,
                         .children = models, .nchildren = 1};
    tr_child_spec shop_kids[] = {
        {.id = "inventory", .behavior = &inventory_b, .loop = TR_LOOP(0)},
        {.id = "payments", .supervisor = &payments}, /* the shop's loop */
        {.id = "fraud", .supervisor = &fraud},       /* the shop's loop */
        {.id = "frontend", .behavior = &frontend_b, .loop = TR_LOOP(1)},
    };
    tr_sup_spec shop_spec = {.strategy = TR_ONE_FOR_ONE, .max_restarts = 5,
                             .period_ms = 10000, .children = shop_kids, .nchildren = 4};
    tr_pid shop;
    if (tr_rt_sup_spawn(rt, &shop_spec, NULL, &shop) != 0)
        return 1;
    printf("1. the shop is up: %d children, started in order\n",
           tr_rt_sup_which_children(rt, shop, NULL, 0));

    /* Orders, while gateways crash and restart. */
    printf("2. the frontend places %d orders; gateways fail at random:\n", ORDERS);
    atomic_store(&budget, 9);
    tr_rt_reply r;
    if (tr_rt_call(rt, child_pid(rt, shop, "frontend"), RUN, NULL, 0, 30000, &r) != 0)
        return 1;
    results res;
    memcpy(&res, r.data, sizeof res);
    tr_rt_reply_free(&r);
    tr_pid payments_pid = child_pid(rt, shop, "payments");
    tr_sup_child gw[2];
    tr_rt_sup_which_children(rt, payments_pid, gw, 2);
    printf("   %u paid, %u lost in a crash (the call failed at once), %u while a gateway "
           "was restarting\n   restarts: gateway-0 x%u, gateway-1 x%u\n",
           res.ok, res.crashed, res.unavailable, gw[0].restarts, gw[1].restarts);

    /* Escalation: three crashes, but fraud allows two restarts in 5 s. */
    printf("3. three poisoned orders crash the fraud model:\n");
    atomic_store(&budget, 100);
    tr_pid fraud_pid = child_pid(rt, shop, "fraud");
    for (int i = 0; i < 3; i++) {
        tr_pid model;
        while ((model = tr_whereis(rt, "model")) == TR_PID_NONE)
            sched_yield(); /* between a crash and its restart */
        tr_rt_send(rt, model, POISON, NULL, 0);
        while (tr_whereis(rt, "model") == model)
            sched_yield();
    }
    tr_pid fraud2;
    while ((fraud2 = child_pid(rt, shop, "fraud")) == fraud_pid || fraud2 == TR_PID_NONE)
        sched_yield();
    printf("   fraud supervisor " TR_PID_FMT " gave up; the shop restarted it as " TR_PID_FMT
           "\n",
           TR_PID_ARGS(fraud_pid), TR_PID_ARGS(fraud2));

    /* A task group: the inventory counts its shelves on the worker pool. */
    printf("4. the inventory audits %d shelves with a task group of jobs:\n", SHELVES);
    if (tr_rt_call(rt, tr_whereis(rt, "inventory"), AUDIT, NULL, 0, 30000, &r) != 0 ||
        r.len != SHELVES * sizeof(uint64_t))
        return 1;
    uint64_t counts[SHELVES];
    memcpy(counts, r.data, sizeof counts);
    tr_rt_reply_free(&r);
    printf("   shelves:");
    for (int i = 0; i < SHELVES; i++)
        printf(" %llu", (unsigned long long)counts[i]);
    printf(" items\n");

    if (run_for > 0) {
        printf("   the shop stays open for %g s\n", run_for);
        fflush(stdout);
        keep_shopping(rt, shop, run_for);
    }

    printf("5. the tree now (%d log lines were not shown):\n", atomic_load(&hidden));
    tr_runtime_tree_print(rt, stdout);

    printf("6. stop: children first, newest first\n");
    tr_runtime_stop(rt);
    tr_runtime_wait(rt);
    tr_runtime_free(rt);
    printf("done\n");
    return 0;
}
