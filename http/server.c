/*
 * server.c — the HTTP server actor and the calls that start it.
 *
 * A server is one actor that owns one listener. Each accepted connection
 * gets a connection actor (conn.c), spawned as the server's child on the
 * server's loop and monitored, and the socket is handed to it
 * (tr_sock_give, same loop: no file descriptor moves). Being children,
 * the connections end before the server does: stopping the server (or
 * its parent, or the runtime) closes the listener as its exit begins and
 * then stops every connection. The server counts its open connections by
 * their DOWNs and answers one past max_connections itself, 503, before
 * closing it.
 *
 * The options travel to the server as its spawn argument, in one buffer
 * (http.h: cfg_hdr, the routes, their strings), which the server keeps
 * as its configuration; its connections read it through a pointer to the
 * server's state (same loop, and a parent's state outlives its children).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define DEFAULT_ADDR "127.0.0.1:8080"
#define HEADER_MAX_LIMIT (80u * 1024u) /* http-parser's own HTTP_MAX_HEADER_SIZE */

void tr_http_options_init(tr_http_options *opts)
{
    if (opts)
        memset(opts, 0, sizeof *opts);
}

/* ---- the configuration ---------------------------------------------------------- */

static int duration_opt(tr_duration d, tr_duration def, int64_t *out)
{
    if (d == 0 || d == TR_DEFAULT)
        *out = def;
    else if (d == TR_INFINITE || d > 0)
        *out = d;
    else
        return TR_EINVAL;
    return 0;
}

static int token_ok(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if (*s <= ' ' || *s >= 127 || strchr("()<>@,;:\\\"/[]?={}", *s))
            return 0;
    return 1;
}

static int route_ok(const tr_http_route *r)
{
    if (!r->path || r->path[0] != '/' || strpbrk(r->path, " \r\n?#"))
        return 0;
    if (r->method && !token_ok(r->method))
        return 0;
    if ((r->name != NULL) == (r->pid != TR_PID_NONE)) /* exactly one */
        return 0;
    if (r->name && (!*r->name || strlen(r->name) > TR_NAME_MAX))
        return 0;
    return r->type <= TR_MSG_USER_MAX;
}

/* Checks `o` and encodes it, with `addr`, into a malloc'd buffer. */
static int cfg_build(const tr_http_options *o, const char *addr, uint32_t flags,
                     unsigned char **out, size_t *out_len)
{
    cfg_hdr h = {.magic = HTTP_CFG_MAGIC, .flags = flags};
    if (!o || (o->nroutes > 0 && !o->routes) || o->nroutes > 65536)
        return TR_EINVAL;
    if (o->max_header_bytes > HEADER_MAX_LIMIT || o->max_body_bytes > UINT32_MAX / 2 ||
        o->max_connections > 1000000 || o->max_pipeline > 4096 ||
        (o->write_max_bytes != 0 && o->write_max_bytes < 4096))
        return TR_EINVAL;
    if (duration_opt(o->request_timeout_ms, 30000, &h.request_timeout) != 0 ||
        duration_opt(o->idle_timeout_ms, 60000, &h.idle_timeout) != 0)
        return TR_EINVAL;
    h.max_header = o->max_header_bytes ? o->max_header_bytes : 8192;
    h.max_body = o->max_body_bytes ? o->max_body_bytes : 1u << 20;
    h.max_conns = o->max_connections ? o->max_connections : 1024;
    h.max_pipeline = o->max_pipeline ? o->max_pipeline : 8;
    h.write_max = o->write_max_bytes ? o->write_max_bytes : 1u << 20;
    h.nroutes = o->nroutes;
    size_t len = sizeof h + (size_t)o->nroutes * sizeof(cfg_route) + strlen(addr) + 1;
    for (unsigned i = 0; i < o->nroutes; i++) {
        const tr_http_route *r = &o->routes[i];
        if (!route_ok(r))
            return TR_EINVAL;
        len += strlen(r->path) + 1 + (r->method ? strlen(r->method) + 1 : 0) +
               (r->name ? strlen(r->name) + 1 : 0);
    }
    if (len > UINT32_MAX)
        return TR_EMSGSIZE;
    unsigned char *b = malloc(len);
    if (!b)
        return TR_ENOMEM;
    size_t at = sizeof h + (size_t)o->nroutes * sizeof(cfg_route);
#define PUT_STR(s, off)                                                                    \
    do {                                                                                   \
        size_t n_ = strlen(s) + 1;                                                         \
        memcpy(b + at, (s), n_);                                                           \
        (off) = (uint32_t)at;                                                              \
        at += n_;                                                                          \
    } while (0)
    PUT_STR(addr, h.addr_off);
    for (unsigned i = 0; i < o->nroutes; i++) {
        const tr_http_route *r = &o->routes[i];
        cfg_route cr = {.type = r->type, .pid = r->pid};
        PUT_STR(r->path, cr.path_off);
        if (r->method)
            PUT_STR(r->method, cr.method_off);
        if (r->name)
            PUT_STR(r->name, cr.name_off);
        memcpy(b + sizeof h + (size_t)i * sizeof cr, &cr, sizeof cr);
    }
#undef PUT_STR
    memcpy(b, &h, sizeof h);
    *out = b;
    *out_len = len;
    return 0;
}

/* ---- the server actor ----------------------------------------------------------- */

static int srv_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    http_srv *s = state;
    cfg_hdr h;
    if (!arg || len < sizeof h)
        return TR_EINVAL;
    memcpy(&h, arg, sizeof h);
    if (h.magic != HTTP_CFG_MAGIC || h.addr_off >= len)
        return TR_EINVAL;
    if (!(s->blob = malloc(len)))
        return TR_ENOMEM;
    memcpy(s->blob, arg, len);
    s->blob_len = len;
    s->cfg = h;
    size_t high = h.write_max < 65536 ? h.write_max / 2 : 65536;
    tr_listen_opts lo = {.conn = {.write_max = h.write_max, .write_high = high,
                                  .write_low = high / 4},
                         .max_conns = h.max_conns + 64}; /* room to answer 503 */
    const char *addr = http_str(s, h.addr_off);
    int rc = tr_listen(self, addr, &lo, &s->listener);
    if (rc != 0 && (h.flags & CFG_HELLO)) {
        s->failed = rc; /* told to the HELLO that tr_rt_http_serve sent */
        return 0;
    }
    if (rc != 0) {
        free(s->blob);
        s->blob = NULL;
        return rc;
    }
    if (tr_sock_addr(self, s->listener, 0, s->addr, sizeof s->addr) != 0)
        snprintf(s->addr, sizeof s->addr, "%s", addr);
    return 0;
}

static void refuse(tr_actor *self, http_srv *s, tr_sock sock)
{
    static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\n"
                               "Content-Type: text/plain; charset=utf-8\r\n"
                               "Content-Length: 24\r\nConnection: close\r\n\r\n"
                               "503 Service Unavailable\n";
    s->st.refused++;
    s->st.responses[5]++;
    tr_sock_write(self, sock, busy, sizeof busy - 1);
    tr_sock_close(self, sock); /* the answer still goes out (linger) */
}

static int srv_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    http_srv *s = state;
    if (s->failed) { /* answers the HELLO with the error, then ends */
        if (msg->type == HTTP_MSG_HELLO && (msg->flags & TR_MSG_REQUEST)) {
            tr_reply(self, msg, HTTP_MSG_HELLO, &s->failed, sizeof s->failed);
            return tr_exit(self, TR_EXIT_NORMAL);
        }
        return 0;
    }
    switch (msg->type) {
    case TR_MSG_SOCK_ACCEPTED: {
        tr_sock sock = msg->ref;
        s->st.accepted++;
        if (s->st.open >= s->cfg.max_conns) {
            refuse(self, s, sock);
            return 0;
        }
        http_srv *sp = s;
        tr_spawn_opts o = {.arg = &sp, .arg_len = sizeof sp};
        tr_pid c;
        tr_ref mref;
        int rc = tr_spawn_monitor(self, &tr__http_conn_behavior, &o, &c, &mref);
        if (rc != 0) { /* stopping, or no room for an actor */
            refuse(self, s, sock);
            return 0;
        }
        s->st.open++;
        if (tr_sock_give(self, sock, c) != 0) {
            tr_sock_close(self, sock);
            tr_signal_exit(tr_runtime_of(self), c, TR_EXIT_SHUTDOWN);
        }
        return 0;
    }
    case TR_MSG_DOWN:
        if (s->st.open > 0)
            s->st.open--;
        return 0;
    case TR_MSG_SOCK_CLOSED:
        if (msg->ref == s->listener) { /* the listener failed: so does the server */
            int32_t why = TR_ESYSTEM;
            if (msg->len >= sizeof why)
                memcpy(&why, msg->data, sizeof why);
            return why;
        }
        return 0;
    case TR_HTTP_MSG_STATS:
        if (msg->flags & TR_MSG_REQUEST)
            tr_reply(self, msg, TR_HTTP_MSG_STATS, &s->st, sizeof s->st);
        return 0;
    case HTTP_MSG_HELLO:
        if (msg->flags & TR_MSG_REQUEST) {
            char a[sizeof(int32_t) + sizeof s->addr] = {0};
            memcpy(a + sizeof(int32_t), s->addr, strlen(s->addr) + 1);
            tr_reply(self, msg, HTTP_MSG_HELLO, a, sizeof(int32_t) + strlen(s->addr) + 1);
        }
        return 0;
    }
    return 0;
}

static void srv_terminate(tr_actor *self, void *state, const tr_exit_reason *reason)
{
    (void)self;
    (void)reason;
    http_srv *s = state;
    free(s->blob);
    s->blob = NULL;
}

static void srv_describe(tr_actor *self, void *state, char *buf, size_t len)
{
    (void)self;
    http_srv *s = state;
    snprintf(buf, len, "http on %s, %llu open, %llu requests", s->addr,
             (unsigned long long)s->st.open, (unsigned long long)s->st.requests);
}

static const tr_behavior server_b = {.name = "http-server",
                                     .state_size = sizeof(http_srv),
                                     .init = srv_init,
                                     .receive = srv_receive,
                                     .terminate = srv_terminate,
                                     .describe = srv_describe};

/* ---- starting it ---------------------------------------------------------------- */

static int copy_addr(const char *addr, char *out, size_t cap)
{
    if (!out)
        return 0;
    size_t n = strlen(addr);
    if (n + 1 > cap)
        return TR_ELIMIT;
    memcpy(out, addr, n + 1);
    return 0;
}

int tr_http_serve(tr_actor *self, const tr_http_options *opts, tr_pid *server, char *addr_out,
                  size_t cap)
{
    if (!self || !opts || (!addr_out && cap > 0) || (addr_out && cap == 0))
        return TR_EINVAL;
    const char *addr = opts->addr ? opts->addr : DEFAULT_ADDR;
    unsigned char *blob;
    size_t len;
    int rc = cfg_build(opts, addr, 0, &blob, &len); /* the options first: nothing to undo */
    if (rc != 0)
        return rc;
    free(blob);
    char bound[160];
    snprintf(bound, sizeof bound, "%s", addr);
    if (strncmp(addr, "unix:", 5) != 0) {
        /* Listen here, so the address's errors are the caller's now and a
         * port 0 becomes a real one; the server listens on that. */
        tr_sock l;
        if ((rc = tr_listen(self, addr, NULL, &l)) != 0)
            return rc;
        rc = tr_sock_addr(self, l, 0, bound, sizeof bound);
        tr_sock_close(self, l);
        if (rc != 0)
            return rc;
    }
    if (addr_out && strlen(bound) + 1 > cap)
        return TR_ELIMIT;
    if ((rc = cfg_build(opts, bound, 0, &blob, &len)) != 0)
        return rc;
    tr_spawn_opts so = {.arg = blob, .arg_len = len};
    tr_pid pid;
    rc = tr_spawn(self, &server_b, &so, &pid);
    free(blob);
    if (rc != 0)
        return rc;
    copy_addr(bound, addr_out, cap);
    if (server)
        *server = pid;
    return 0;
}

int tr_rt_http_serve(tr_runtime *rt, const tr_http_options *opts, tr_duration timeout_ms,
                     tr_pid *server, char *addr_out, size_t cap)
{
    if (!rt || !opts || (!addr_out && cap > 0) || (addr_out && cap == 0))
        return TR_EINVAL;
    if (timeout_ms < 0 && timeout_ms != TR_INFINITE && timeout_ms != TR_DEFAULT)
        return TR_EINVAL;
    unsigned char *blob;
    size_t len;
    int rc = cfg_build(opts, opts->addr ? opts->addr : DEFAULT_ADDR, CFG_HELLO, &blob, &len);
    if (rc != 0)
        return rc;
    tr_spawn_opts so = {.arg = blob, .arg_len = len,
                        .loop = opts->loop ? opts->loop : TR_LOOP_ROUND_ROBIN};
    tr_pid pid;
    rc = tr_rt_spawn(rt, &server_b, &so, &pid);
    free(blob);
    if (rc != 0)
        return rc;
    /* The server answers after its init: its listen's error (then it
     * ends), or 0 and the bound address. */
    tr_rt_reply rep = {0};
    rc = tr_rt_call(rt, pid, HTTP_MSG_HELLO, NULL, 0, timeout_ms, &rep);
    if (rc == TR_EEXITED || rc == TR_ENOACTOR) /* ended otherwise: a stop */
        return TR_ESTOPPED;
    if (rc != 0) {
        tr_signal_exit(rt, pid, TR_EXIT_SHUTDOWN);
        return rc;
    }
    int32_t status = TR_EINVAL;
    const char *bound = "";
    if (rep.len >= sizeof status)
        memcpy(&status, rep.data, sizeof status);
    if (status == 0 && rep.len > sizeof status &&
        ((char *)rep.data)[rep.len - 1] == '\0')
        bound = (const char *)rep.data + sizeof status;
    else if (status == 0)
        status = TR_EINVAL;
    rc = status != 0 ? status : copy_addr(bound, addr_out, cap);
    tr_rt_reply_free(&rep);
    if (status != 0)
        return status;
    if (rc != 0) {
        tr_signal_exit(rt, pid, TR_EXIT_SHUTDOWN);
        return rc;
    }
    if (server)
        *server = pid;
    return 0;
}

int tr_rt_http_stats(tr_runtime *rt, tr_pid server, tr_http_stats *out)
{
    if (!rt || !out || server == TR_PID_NONE)
        return TR_EINVAL;
    tr_rt_reply rep = {0};
    int rc = tr_rt_call(rt, server, TR_HTTP_MSG_STATS, NULL, 0, 5000, &rep);
    if (rc != 0)
        return rc;
    if (rep.type != TR_HTTP_MSG_STATS || rep.len != sizeof *out)
        rc = TR_EINVAL;
    else
        memcpy(out, rep.data, sizeof *out);
    tr_rt_reply_free(&rep);
    return rc;
}
