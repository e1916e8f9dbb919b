/*
 * http_counter — a small JSON API whose state lives in an actor, served by
 * troupe's HTTP module (docs/http.md).
 *
 *   http_counter (supervisor, rest_for_one)
 *   |-- counter      registered as "counter": the value, and its HTTP handler
 *   `-- web          starts the HTTP server in its init (tr_http_serve)
 *       `-- http-server
 *           `-- http-conn   one per connection
 *
 * The routes name the counter by its registered name, so a counter that
 * crashes and is restarted by the supervisor (and registers again) keeps
 * getting the requests. rest_for_one: the web server depends on the
 * counter, so a counter restart restarts it too, and its connections end;
 * the counter's own failures never touch the web side otherwise.
 *
 *   GET  /                          this help, as text
 *   GET  /counter                   {"value":N}
 *   POST /counter/increment?by=N    adds N (default 1): {"value":N}
 *   POST /counter/reset             {"value":0}
 *   GET  /counter/events            server-sent events: the value at each change
 *
 *   ./build/examples/http/http_counter [--port 8080] [--host 127.0.0.1]
 *   curl -s localhost:8080/counter
 *   curl -s -X POST 'localhost:8080/counter/increment?by=5'
 *   curl -sN localhost:8080/counter/events
 *
 * Ctrl-C or SIGTERM stops the tree in order (the runtime's
 * stop_on_signals). --selftest (what ctest runs) listens on an ephemeral
 * port, makes a few requests of its own, and stops.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <troupe.h>

enum { C_HELP = 1, C_GET, C_INCR, C_RESET, C_EVENTS };

#define MAX_WATCHERS 32

static const char help[] =
    "http_counter: a counter held by an actor\n"
    "\n"
    "  GET  /                          this help\n"
    "  GET  /counter                   {\"value\":N}\n"
    "  POST /counter/increment?by=N    adds N (default 1)\n"
    "  POST /counter/reset             back to 0\n"
    "  GET  /counter/events            server-sent events: the value at each change\n";

/* ---- the counter: the state and its handler --------------------------------------- */

typedef struct counter {
    int64_t value;
    tr_http_stream watchers[MAX_WATCHERS];
    unsigned nwatchers;
} counter;

static int json_value(tr_actor *self, const tr_msg *msg, int status, int64_t v)
{
    char body[64];
    int n = snprintf(body, sizeof body, "{\"value\":%" PRId64 "}\n", v);
    return tr_http_reply(self, msg, status, "application/json", body, (size_t)n);
}

static void notify_watchers(tr_actor *self, counter *c)
{
    char data[64];
    int n = snprintf(data, sizeof data, "{\"value\":%" PRId64 "}", c->value);
    for (unsigned i = 0; i < c->nwatchers;) {
        if (tr_http_stream_send(self, &c->watchers[i], "value", data, (size_t)n) != 0)
            c->watchers[i] = c->watchers[--c->nwatchers]; /* its client has left */
        else
            i++;
    }
}

static int counter_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    return tr_register(self, "counter");
}

static int counter_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    counter *c = state;
    if (msg->type == TR_MSG_DOWN) { /* a watcher's connection ended */
        const tr_down *d = msg->data;
        for (unsigned i = 0; i < c->nwatchers; i++)
            if (c->watchers[i].conn == d->pid) {
                c->watchers[i] = c->watchers[--c->nwatchers];
                break;
            }
        return 0;
    }
    tr_http_request r;
    if (!(msg->flags & TR_MSG_REQUEST) || tr_http_request_get(msg, &r) != 0)
        return 0; /* not an HTTP request: not ours to answer */
    switch (msg->type) {
    case C_HELP:
        return tr_http_reply(self, msg, 200, "text/plain; charset=utf-8", help,
                             sizeof help - 1);
    case C_GET:
        return json_value(self, msg, 200, c->value);
    case C_INCR: {
        char buf[32];
        int64_t by = 1;
        int rc = tr_http_query_param(&r, "by", buf, sizeof buf);
        if (rc >= 0) {
            char *end;
            errno = 0;
            long long v = strtoll(buf, &end, 10);
            if (rc == 0 || *end || errno)
                rc = TR_EINVAL;
            by = v;
        }
        if (rc < 0 && rc != TR_ENOTFOUND) {
            static const char bad[] = "{\"error\":\"by must be an integer\"}\n";
            return tr_http_reply(self, msg, 400, "application/json", bad, sizeof bad - 1);
        }
        c->value += by;
        notify_watchers(self, c);
        return json_value(self, msg, 200, c->value);
    }
    case C_RESET:
        c->value = 0;
        notify_watchers(self, c);
        return json_value(self, msg, 200, c->value);
    case C_EVENTS: {
        if (c->nwatchers == MAX_WATCHERS) {
            static const char busy[] = "{\"error\":\"too many watchers\"}\n";
            return tr_http_reply(self, msg, 503, "application/json", busy, sizeof busy - 1);
        }
        tr_http_stream s;
        int rc = tr_http_reply_stream(self, msg, NULL, &s);
        if (rc != 0)
            return 0; /* the client has gone already */
        tr_ref ref;
        if (tr_monitor(self, s.conn, &ref) != 0)
            return 0;
        c->watchers[c->nwatchers++] = s;
        char data[64];
        int n = snprintf(data, sizeof data, "{\"value\":%" PRId64 "}", c->value);
        tr_http_stream_send(self, &s, "value", data, (size_t)n);
        return 0;
    }
    }
    return 0;
}

static const tr_behavior counter_b = {.name = "counter", .state_size = sizeof(counter),
                                      .init = counter_init, .receive = counter_receive};

/* ---- the web side: the server, as a child of this actor --------------------------- */

typedef struct web_arg {
    char addr[96];
} web_arg;

static char bound_addr[96]; /* written by web's init, before tr_rt_sup_spawn returns */

static int web_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    web_arg a;
    if (len != sizeof a)
        return TR_EINVAL;
    memcpy(&a, arg, sizeof a);
    static const tr_http_route routes[] = {
        {.method = "GET", .path = "/", .name = "counter", .type = C_HELP},
        {.method = "GET", .path = "/counter", .name = "counter", .type = C_GET},
        {.method = "POST", .path = "/counter/increment", .name = "counter", .type = C_INCR},
        {.method = "POST", .path = "/counter/reset", .name = "counter", .type = C_RESET},
        {.method = "GET", .path = "/counter/events", .name = "counter", .type = C_EVENTS},
    };
    tr_http_options o = {.addr = a.addr, .routes = routes,
                         .nroutes = sizeof routes / sizeof routes[0]};
    int rc = tr_http_serve(self, &o, NULL, bound_addr, sizeof bound_addr);
    if (rc != 0)
        fprintf(stderr, "http_counter: cannot listen on %s: %s\n", a.addr, tr_strerror(rc));
    return rc;
}

static int web_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    (void)msg;
    return 0;
}

static const tr_behavior web_b = {.name = "web", .init = web_init, .receive = web_receive};

/* ---- --selftest: a client on the main thread ------------------------------------- */

/* One request with Connection: close; the whole answer (until the server
 * closes) into buf. Returns the status, or -1. */
static int fetch(int port, const char *method, const char *target, char *buf, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     method, target);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return -1;
    }
    size_t len = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10000) != 1 || len + 1 >= cap)
            break;
        ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    close(fd);
    int status = -1;
    sscanf(buf, "HTTP/1.1 %d", &status);
    return status;
}

static int check(int port, const char *method, const char *target, int want_status,
                 const char *want_body)
{
    char buf[4096];
    int status = fetch(port, method, target, buf, sizeof buf);
    const char *body = strstr(buf, "\r\n\r\n");
    int ok = status == want_status && body && strstr(body + 4, want_body);
    printf("%-4s %-28s -> %d %s%s\n", method, target, status, ok ? "ok" : "FAILED: ",
           ok ? "" : buf);
    return ok ? 0 : 1;
}

static int selftest(int port)
{
    int failed = 0;
    failed |= check(port, "GET", "/counter", 200, "{\"value\":0}");
    failed |= check(port, "POST", "/counter/increment?by=5", 200, "{\"value\":5}");
    failed |= check(port, "POST", "/counter/increment", 200, "{\"value\":6}");
    failed |= check(port, "POST", "/counter/increment?by=x", 400, "by must be an integer");
    failed |= check(port, "GET", "/counter", 200, "{\"value\":6}");
    failed |= check(port, "POST", "/counter/reset", 200, "{\"value\":0}");
    failed |= check(port, "GET", "/", 200, "GET  /counter");
    failed |= check(port, "GET", "/nope", 404, "Not Found");
    failed |= check(port, "DELETE", "/counter", 405, "Method Not Allowed");
    return failed;
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(FILE *f, const char *argv0)
{
    fprintf(f,
            "usage: %s [--port N] [--host ADDR] [--selftest] [--help]\n"
            "  --port N     TCP port (default 8080; 0: an ephemeral one, printed)\n"
            "  --host ADDR  numeric address to listen on (default 127.0.0.1;\n"
            "               0.0.0.0 or :: for every interface)\n"
            "  --selftest   listen on an ephemeral port, make a few requests, stop\n"
            "  --help       this text\n"
            "\n%s",
            argv0, help);
}

int main(int argc, char **argv)
{
    int port = 8080, self_test = 0;
    const char *host = "127.0.0.1";
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
            usage(stdout, argv[0]);
            return 0;
        } else if (strcmp(f, "--port") == 0 && i + 1 < argc) {
            char *end;
            long p = strtol(argv[++i], &end, 10);
            if (*end || p < 0 || p > 65535) {
                fprintf(stderr, "%s: --port takes 0 .. 65535\n", argv[0]);
                return 2;
            }
            port = (int)p;
        } else if (strcmp(f, "--host") == 0 && i + 1 < argc) {
            host = argv[++i];
        } else if (strcmp(f, "--selftest") == 0) {
            self_test = 1;
            port = 0;
        } else {
            fprintf(stderr, "%s: unknown option or missing value: %s\n", argv[0], f);
            usage(stderr, argv[0]);
            return 2;
        }
    }

    tr_runtime_options ro;
    tr_runtime_options_init(&ro);
    ro.stop_on_signals = 1;
    if (self_test)
        ro.loops = 2;
    tr_runtime *rt;
    int rc = tr_runtime_create(&rt, &ro);
    if (rc == 0)
        rc = tr_runtime_start(rt);
    if (rc != 0) {
        fprintf(stderr, "http_counter: %s\n", tr_strerror(rc));
        return 1;
    }

    web_arg wa;
    snprintf(wa.addr, sizeof wa.addr, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    tr_child_spec children[] = {
        {.id = "counter", .behavior = &counter_b},
        {.id = "web", .behavior = &web_b, .arg = &wa, .arg_len = sizeof wa},
    };
    tr_sup_spec spec = {.strategy = TR_REST_FOR_ONE, .children = children, .nchildren = 2};
    tr_pid sup;
    rc = tr_rt_sup_spawn(rt, &spec, NULL, &sup);
    if (rc != 0) {
        tr_runtime_free(rt);
        return 1; /* web's init said why */
    }
    printf("http_counter: listening on http://%s/ (Ctrl-C stops)\n", bound_addr);
    fflush(stdout);

    int failed = 0;
    if (self_test) {
        const char *colon = strrchr(bound_addr, ':');
        failed = selftest(colon ? atoi(colon + 1) : 0);
        tr_runtime_stop(rt);
    }
    rc = tr_runtime_wait(rt);
    tr_runtime_free(rt);
    if (self_test)
        printf("selftest: %s\n", failed ? "FAILED" : "ok");
    return failed || (rc != 0 && rc != TR_EPERMANENT) ? 1 : 0;
}
