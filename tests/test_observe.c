/*
 * test_observe.c — the observability endpoint (tr_rt_observe): /metrics
 * parses as Prometheus text and is served with its content type; /tree.json
 * shows the supervision tree with restarts that grow as children crash;
 * the live page and its event stream; one endpoint per runtime; bad
 * options; and many scrapes in a row (OBSERVE_SCRAPES; valgrind runs the
 * test to see that they leak nothing).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "prom_check.h"
#include "tr_test.h"

#ifndef OBSERVE_SCRAPES
#define OBSERVE_SCRAPES 1000
#endif

enum { CRASH = 1 };

/* ---- a minimal client: one request per connection, generous timeouts ----- */

static int connect_to(const char *addr)
{
    char host[64];
    const char *colon = strrchr(addr, ':');
    assert_non_null(colon);
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    assert_int_equal(inet_pton(AF_INET, host, &sa.sin_addr), 1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

typedef struct response {
    int status;
    char ctype[128];
    char *body; /* malloc'd, NUL-terminated */
    size_t len;
} response;

/* GET `path` with Connection: close; reads to the end. */
static void get(const char *addr, const char *path, response *r)
{
    int fd = connect_to(addr);
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                     path);
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (len + 4096 > cap)
            assert_non_null(buf = realloc(buf, cap *= 2));
        ssize_t k = read(fd, buf + len, cap - len - 1);
        assert_true(k >= 0); /* not a timeout */
        if (k == 0)
            break;
        len += (size_t)k;
    }
    close(fd);
    buf[len] = '\0';
    assert_int_equal(sscanf(buf, "HTTP/1.1 %d", &r->status), 1);
    r->ctype[0] = '\0';
    const char *ct = strstr(buf, "Content-Type: ");
    if (ct)
        sscanf(ct + 14, "%127[^\r]", r->ctype);
    const char *body = strstr(buf, "\r\n\r\n");
    assert_non_null(body);
    body += 4;
    r->len = len - (size_t)(body - buf);
    r->body = malloc(r->len + 1);
    memcpy(r->body, body, r->len + 1);
    free(buf);
}

/* ---- a small supervised service to look at ------------------------------------- */

static int crashy_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    return msg->type == CRASH ? TR_EUSER(1) : 0;
}

static const tr_behavior crashy_b = {.name = "crashy", .receive = crashy_receive};

static tr_runtime *service(tr_pid *sup)
{
    tr_runtime_options o = tr_test_options(2, TR_TEST_QUIET);
    tr_runtime *rt = tr_test_runtime_opts(&o);
    tr_child_spec kids[2];
    for (int i = 0; i < 2; i++) {
        tr_child_spec_init(&kids[i]);
        kids[i].id = i ? "second" : "first";
        kids[i].behavior = &crashy_b;
        kids[i].loop = TR_LOOP(i);
    }
    tr_sup_spec spec;
    tr_sup_spec_init(&spec);
    spec.children = kids;
    spec.nchildren = 2;
    spec.max_restarts = 100;
    assert_int_equal(tr_rt_sup_spawn(rt, &spec, NULL, sup), 0);
    return rt;
}

/* The service with an endpoint on an ephemeral port (oo: its options,
 * NULL: the defaults but the address); the bound address into addr. */
static tr_runtime *observed(tr_pid *sup, const tr_observe_options *oo, char *addr, size_t cap)
{
    tr_runtime *rt = service(sup);
    tr_observe_options o = oo ? *oo : (tr_observe_options){0};
    o.addr = "127.0.0.1:0";
    assert_int_equal(tr_rt_observe(rt, &o, addr, cap), 0);
    assert_int_equal(strncmp(addr, "127.0.0.1:", 10), 0);
    return rt;
}

static void crash_first(tr_runtime *rt, tr_pid sup)
{
    tr_sup_child c[2];
    assert_int_equal(tr_rt_sup_which_children(rt, sup, c, 2), 2);
    tr_pid old = c[0].pid;
    assert_int_equal(tr_rt_send(rt, old, CRASH, NULL, 0), 0);
    /* Restarted: a new pid in its place. */
    TR_WAIT_UNTIL(tr_rt_sup_which_children(rt, sup, c, 2) == 2 && c[0].pid != old &&
                  c[0].pid != TR_PID_NONE);
}

static void test_metrics_endpoint(void **st)
{
    (void)st;
    tr_pid sup;
    char addr[64];
    tr_runtime *rt = observed(&sup, NULL, addr, sizeof addr);
    tr_observe_options oo = {.addr = "127.0.0.1:0"};
    crash_first(rt, sup);
    response r;
    get(addr, "/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
    char err[256];
    if (prom_check(r.body, err, sizeof err) != 0)
        fail_msg("/metrics: %s", err);
    assert_non_null(strstr(r.body, "troupe_actors{behavior=\"crashy\"} 2\n"));
    char line[160];
    snprintf(line, sizeof line,
             "troupe_supervisor_restarts_total{supervisor=\"" TR_PID_FMT "\",child=\"first\"} 1\n",
             TR_PID_ARGS(sup));
    assert_non_null(strstr(r.body, line));
    free(r.body);
    /* The sockets' own metrics moved with those requests. */
    double v;
    assert_int_equal(tr_metrics_value(rt, "troupe_socket_received_bytes_total", NULL, &v), 0);
    assert_true(v >= 2 * strlen("GET /metrics HTTP/1.1\r\n\r\n"));
    assert_int_equal(tr_metrics_value(rt, "troupe_socket_sent_bytes_total", NULL, &v), 0);
    assert_true(v > 1000);
    assert_int_equal(tr_metrics_value(rt, "troupe_sockets_open", NULL, &v), 0);
    assert_true(v >= 1); /* the listener at least */
    get(addr, "/nothing", &r);
    assert_int_equal(r.status, 404);
    free(r.body);

    /* One endpoint per runtime; bad options. */
    assert_int_equal(tr_rt_observe(rt, &oo, addr, sizeof addr), TR_EALREADY);
    assert_int_equal(tr_rt_observe(NULL, &oo, NULL, 0), TR_EINVAL);
    tr_observe_options fast = {.addr = "127.0.0.1:0", .interval_ms = 10};
    assert_int_equal(tr_rt_observe(rt, &fast, NULL, 0), TR_EINVAL);
    tr_runtime_free(rt);
}

static void test_tree_json(void **st)
{
    (void)st;
    tr_pid sup;
    char addr[64];
    tr_runtime *rt = observed(&sup, NULL, addr, sizeof addr);
    response r;
    get(addr, "/tree.json", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "application/json");
    char sup_pid[64];
    snprintf(sup_pid, sizeof sup_pid, "\"pid\":\"" TR_PID_FMT "\"", TR_PID_ARGS(sup));
    const char *s = strstr(r.body, sup_pid);
    assert_non_null(s);
    assert_non_null(strstr(s, "\"behavior\":\"supervisor\""));
    assert_non_null(strstr(r.body, "\"behavior\":\"crashy\""));
    assert_non_null(strstr(r.body, "\"restarts\":0"));
    assert_null(strstr(r.body, "\"restarts\":1"));
    free(r.body);

    crash_first(rt, sup);
    crash_first(rt, sup);
    get(addr, "/tree.json", &r);
    /* The supervisor's total and its first child's count, 2 each. */
    s = strstr(r.body, sup_pid);
    assert_non_null(s);
    assert_non_null(strstr(s, "\"restarts\":2,\"children\":2"));
    const char *child = strstr(s + 1, "\"behavior\":\"crashy\"");
    assert_non_null(child);
    assert_non_null(strstr(r.body, "\"depth\":1"));
    /* Every actor is shown: the supervisor, its children, the endpoint, its
     * HTTP server and the connection asking. */
    unsigned total = 0, shown = 0;
    const char *t = strstr(r.body, "\"total\":");
    assert_non_null(t);
    assert_int_equal(sscanf(t, "\"total\":%u,\"shown\":%u", &total, &shown), 2);
    assert_int_equal(total, shown);
    assert_true(total >= 6);
    assert_non_null(strstr(r.body, "\"truncated\":false"));
    assert_non_null(strstr(r.body, "\"stuck\":[]"));
    free(r.body);

    /* A cap: one actor shown. */
    tr_runtime_free(rt);
    tr_observe_options small = {.tree_max = 1};
    rt = observed(&sup, &small, addr, sizeof addr);
    get(addr, "/tree.json", &r);
    assert_non_null(strstr(r.body, "\"shown\":1,\"truncated\":true"));
    free(r.body);
    tr_runtime_free(rt);
}

static void test_page_and_events(void **st)
{
    (void)st;
    tr_pid sup;
    char addr[64];
    tr_observe_options oo = {.interval_ms = 100};
    tr_runtime *rt = observed(&sup, &oo, addr, sizeof addr);
    response r;
    get(addr, "/", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "text/html; charset=utf-8");
    assert_non_null(strstr(r.body, "<"));
    assert_null(strstr(r.body, "<script src=")); /* nothing from elsewhere */
    free(r.body);

    /* The stream: two ticks, each a view with the tree. */
    int fd = connect_to(addr);
    const char *req = "GET /events HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    char buf[65536];
    size_t len = 0;
    int ticks = 0;
    while (ticks < 2) {
        assert_true(len < sizeof buf - 1);
        ssize_t k = read(fd, buf + len, sizeof buf - 1 - len);
        assert_true(k > 0);
        len += (size_t)k;
        buf[len] = '\0';
        ticks = 0;
        for (const char *p = buf; (p = strstr(p, "event: tick\ndata: {")) != NULL; p++)
            ticks += strstr(p, "\n\n") != NULL;
    }
    assert_non_null(strstr(buf, "text/event-stream"));
    const char *data = strstr(buf, "event: tick\ndata: ");
    assert_non_null(data);
    assert_non_null(strstr(data, "\"loops\":[{\"index\":0"));
    assert_non_null(strstr(data, "\"behaviors\":["));
    assert_non_null(strstr(data, "\"tree\":{\"total\":"));
    assert_non_null(strstr(data, "\"behavior\":\"crashy\""));
    close(fd);
    tr_runtime_free(rt);
}

static void test_many_scrapes(void **st)
{
    (void)st;
    tr_pid sup;
    char addr[64];
    tr_runtime *rt = observed(&sup, NULL, addr, sizeof addr);
    for (int i = 0; i < OBSERVE_SCRAPES; i++) {
        response r;
        get(addr, i % 10 == 9 ? "/tree.json" : "/metrics", &r);
        assert_int_equal(r.status, 200);
        assert_true(r.len > 100);
        free(r.body);
    }
    tr_runtime_free(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_endpoint),
        cmocka_unit_test(test_tree_json),
        cmocka_unit_test(test_page_and_events),
        cmocka_unit_test(test_many_scrapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
