/*
 * conn.c — an HTTP connection: one actor per accepted connection, a child
 * of the server actor on its loop, owning the socket.
 *
 * Design notes.
 *
 *  - Parsing is Debian's http-parser, fed with each TR_MSG_SOCK_DATA as it
 *    comes. The request being parsed is built straight into its wire form
 *    (http.h: req_wire, then strings, the header table, the body) in one
 *    growing buffer, so a complete request is handed to its handler without
 *    another copy of its body.
 *  - Pipelining: complete requests wait in a queue, answered in order, one
 *    call in flight at a time (tr_call to the route's actor). When the
 *    queue holds max_pipeline requests the parser is paused inside
 *    on_message_complete (http_parser_pause), the rest of the read is held
 *    and the socket's reads are paused; answers resume the parser on the
 *    held bytes, then the socket. So what a client can make the server
 *    hold is max_pipeline requests, one read and the socket's read_max.
 *  - Writes: a response is one tr_sock_writev. While the socket is
 *    throttled (the client does not read its responses) no new request is
 *    dispatched and reading is paused, so the kernel's window pushes back
 *    on the client. A write that would pass write_max (TR_EFULL) closes
 *    the connection: an event stream to a client that does not read is
 *    the case that reaches it.
 *  - Closing after a response (Connection: close, an error, the end of a
 *    stream) is a lingering close: the writing half is shut down once the
 *    queue is out, and the actor reads and drops the client's bytes until
 *    its end of stream or LINGER_MS, so that unread input does not make
 *    the kernel reset the connection before the client read the answer.
 *  - Time: one idle timer, armed while the connection waits for a request
 *    (nothing queued, nothing in flight) and not re-armed by partial
 *    input, so a client that trickles a request is closed (408) after
 *    idle_timeout_ms like one that sends nothing. The handler's time is
 *    the call's timeout (504).
 *  - Streams: a reply flagged RESP_STREAM turns the connection into an
 *    event stream; HTTP_MSG_STREAM_DATA carries formatted events. Events
 *    that arrive before the reply (sent by another actor than the one that
 *    replied) wait in a buffer bounded by write_max.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "http.h"

#define LINGER_MS 2000 /* how long a closing connection waits for its client's end */

enum { OPEN, STREAM, CLOSING };

typedef struct pend { /* a request parsed, waiting for its answer */
    struct pend *next;
    unsigned char *buf; /* its wire form (NULL for a synthetic error) */
    size_t len;
    int status;         /* a synthetic answer (400, 413, 431): then close */
    int keep_alive;
    int head;           /* HEAD: no body in the response */
    int version_minor;
    uint64_t id;
} pend;

typedef struct conn {
    http_srv *srv;
    tr_actor *self; /* during the current callback only */
    tr_sock s;
    http_parser p;
    /* the request being parsed */
    unsigned char *cur;
    size_t cur_len, cur_cap;
    int last_cb; /* 0: none, 1: url, 2: header field, 3: header value */
    uint32_t url_off, url_len, body_off;
    uint32_t nh;
    uint32_t hoff[TR_HTTP_HEADERS_MAX][2];
    size_t head_bytes, body_len;
    int err;        /* a status a callback chose (400, 413, 431) */
    int in_message; /* part of a request has come */
    int oom;
    /* the queue, and the request in flight */
    pend *qhead, *qtail;
    unsigned qlen;
    pend *inflight;
    tr_ref ref;
    /* input held back while the pipeline is full */
    unsigned char *held;
    size_t held_len, held_cap;
    int parse_done; /* nothing more is parsed: an error or an upgrade */
    int eof;        /* the client has finished sending */
    int reading, throttled, mode;
    /* the stream */
    uint64_t stream_id;
    unsigned char *early;
    size_t early_len;
    int early_close;
    uint64_t next_id;
    uint64_t idle_gen;
    tr_timer_id idle_timer;
    int idle_armed;
} conn;

/* ---- small helpers -------------------------------------------------------------- */

static int grow(unsigned char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 512;
    while (n < need)
        n *= 2;
    unsigned char *b = realloc(*buf, n);
    if (!b)
        return TR_ENOMEM;
    *buf = b;
    *cap = n;
    return 0;
}

static int append(conn *c, const void *data, size_t len)
{
    if (grow(&c->cur, &c->cur_cap, c->cur_len + len) != 0) {
        c->oom = 1;
        return -1;
    }
    if (len)
        memcpy(c->cur + c->cur_len, data, len);
    c->cur_len += len;
    return 0;
}

static void fail_parse(conn *c, int status)
{
    if (!c->err)
        c->err = status;
    http_parser_pause(&c->p, 1);
}

static void free_pend(pend *r)
{
    if (r) {
        free(r->buf);
        free(r);
    }
}

static void enqueue(conn *c, pend *r)
{
    r->next = NULL;
    if (c->qtail)
        c->qtail->next = r;
    else
        c->qhead = r;
    c->qtail = r;
    c->qlen++;
}

static pend *dequeue(conn *c)
{
    pend *r = c->qhead;
    if (r) {
        c->qhead = r->next;
        if (!c->qhead)
            c->qtail = NULL;
        c->qlen--;
    }
    return r;
}

/* ---- the parser's callbacks ----------------------------------------------------- */

static int on_message_begin(http_parser *p)
{
    conn *c = p->data;
    c->cur_len = 0;
    if (append(c, &(req_wire){0}, sizeof(req_wire)) != 0)
        return fail_parse(c, 503), 0;
    c->last_cb = 0;
    c->url_len = 0;
    c->nh = 0;
    c->head_bytes = 0;
    c->body_len = 0;
    c->in_message = 1;
    return 0;
}

static int count_head(conn *c, size_t len)
{
    c->head_bytes += len;
    if (c->head_bytes > c->srv->cfg.max_header) {
        fail_parse(c, 431);
        return -1;
    }
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (count_head(c, len) != 0)
        return 0;
    if (c->last_cb != 1) {
        c->url_off = (uint32_t)c->cur_len;
        c->last_cb = 1;
    }
    c->url_len += (uint32_t)len;
    if (append(c, at, len) != 0)
        fail_parse(c, 503);
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (c->last_cb != 2) { /* a new field: end what came before it */
        if (count_head(c, len + 4) != 0)
            return 0;
        if (c->nh == TR_HTTP_HEADERS_MAX) {
            fail_parse(c, 431);
            return 0;
        }
        if (append(c, "", 1) != 0)
            return fail_parse(c, 503), 0;
        c->hoff[c->nh][0] = (uint32_t)c->cur_len;
        c->hoff[c->nh][1] = 0;
        c->nh++;
        c->last_cb = 2;
    } else if (count_head(c, len) != 0) {
        return 0;
    }
    if (append(c, at, len) != 0)
        fail_parse(c, 503);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (count_head(c, len) != 0)
        return 0;
    if (c->last_cb != 3) {
        if (append(c, "", 1) != 0)
            return fail_parse(c, 503), 0;
        c->hoff[c->nh - 1][1] = (uint32_t)c->cur_len;
        c->last_cb = 3;
    }
    if (append(c, at, len) != 0)
        fail_parse(c, 503);
    return 0;
}

static void write_simple(conn *c, int status, const char *lines);

static int on_headers_complete(http_parser *p)
{
    conn *c = p->data;
    if (c->err)
        return 0;
    if (append(c, "", 1) != 0) /* ends the URL or the last value */
        return fail_parse(c, 503), 0;
    for (uint32_t i = 0; i < c->nh; i++)
        if (c->hoff[i][1] == 0) /* a field without a value callback: empty */
            c->hoff[i][1] = c->hoff[i][0] + (uint32_t)strlen((char *)c->cur + c->hoff[i][0]);
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > c->srv->cfg.max_body) {
        fail_parse(c, 413);
        return 0;
    }
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (c->url_len == 0 ||
        http_parser_parse_url((const char *)c->cur + c->url_off, c->url_len,
                              p->method == HTTP_CONNECT, &u) != 0) {
        fail_parse(c, 400);
        return 0;
    }
    req_wire w;
    memcpy(&w, c->cur, sizeof w);
    const char *url = (const char *)c->cur + c->url_off;
    /* path, query and method, each with its NUL */
    size_t plen = (u.field_set & (1 << UF_PATH)) ? u.field_data[UF_PATH].len : 0;
    size_t poff = u.field_data[UF_PATH].off;
    size_t qlen = (u.field_set & (1 << UF_QUERY)) ? u.field_data[UF_QUERY].len : 0;
    size_t qoff = u.field_data[UF_QUERY].off;
    const char *method = http_method_str((enum http_method)p->method);
    /* copies first (append may move the buffer `url` points into) */
    char *tmp = malloc(plen + qlen + 2);
    if (!tmp)
        return fail_parse(c, 503), 0;
    memcpy(tmp, plen ? url + poff : "/", plen ? plen : 1);
    memcpy(tmp + (plen ? plen : 1), url + qoff, qlen);
    w.path_off = (uint32_t)c->cur_len;
    int bad = append(c, tmp, plen ? plen : 1) || append(c, "", 1);
    w.query_off = (uint32_t)c->cur_len;
    bad = bad || append(c, tmp + (plen ? plen : 1), qlen) || append(c, "", 1);
    free(tmp);
    w.method_off = (uint32_t)c->cur_len;
    bad = bad || append(c, method, strlen(method) + 1);
    w.nheaders = c->nh;
    w.table_off = (uint32_t)c->cur_len;
    bad = bad || append(c, c->hoff, (size_t)c->nh * 8);
    w.version_minor = p->http_minor;
    if (bad)
        return fail_parse(c, 503), 0;
    c->body_off = (uint32_t)c->cur_len;
    memcpy(c->cur, &w, sizeof w);
    /* Expect: 100-continue, answered only when this request is next: an
     * interim answer must not pass the responses before it. */
    if (p->http_minor >= 1 && !c->inflight && c->qlen == 0) {
        for (uint32_t i = 0; i < c->nh; i++)
            if (strcasecmp((char *)c->cur + c->hoff[i][0], "expect") == 0 &&
                strcasecmp((char *)c->cur + c->hoff[i][1], "100-continue") == 0)
                tr_sock_write(c->self, c->s, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (c->err)
        return 0;
    c->body_len += len;
    if (c->body_len > c->srv->cfg.max_body) {
        fail_parse(c, 413);
        return 0;
    }
    if (append(c, at, len) != 0)
        fail_parse(c, 503);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    conn *c = p->data;
    if (c->err)
        return 0;
    pend *r = calloc(1, sizeof *r);
    if (!r || append(c, "", 1) != 0) {
        free(r);
        return fail_parse(c, 503), 0;
    }
    req_wire w;
    memcpy(&w, c->cur, sizeof w);
    w.magic = HTTP_REQ_MAGIC;
    w.total = (uint32_t)c->cur_len;
    w.body_off = c->body_off;
    w.body_len = (uint32_t)c->body_len;
    w.conn = tr_self(c->self);
    w.id = ++c->next_id;
    memcpy(c->cur, &w, sizeof w);
    r->buf = c->cur;
    r->len = c->cur_len;
    r->keep_alive = http_should_keep_alive(p);
    r->head = p->method == HTTP_HEAD;
    r->version_minor = p->http_minor;
    r->id = w.id;
    c->cur = NULL;
    c->cur_len = c->cur_cap = 0;
    c->in_message = 0;
    enqueue(c, r);
    c->srv->st.requests++;
    if (c->qlen >= c->srv->cfg.max_pipeline)
        http_parser_pause(p, 1); /* the pipeline is full: hold the rest */
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- writing -------------------------------------------------------------------- */

static int hold(conn *c, const void *data, size_t len)
{
    if (grow(&c->held, &c->held_cap, c->held_len + len) != 0)
        return TR_ENOMEM;
    memcpy(c->held + c->held_len, data, len);
    c->held_len += len;
    return 0;
}

static void begin_close(conn *c)
{
    if (c->mode == CLOSING)
        return;
    c->mode = CLOSING;
    for (pend *r; (r = dequeue(c));)
        free_pend(r);
    free(c->held);
    c->held = NULL;
    c->held_len = c->held_cap = 0;
    tr_sock_shutdown(c->self, c->s);
    tr_send_after(c->self, tr_self(c->self), LINGER_MS, HTTP_MSG_LINGER, NULL, 0, NULL);
}

/* Writes a response; returns 0, or an error that ends the connection. */
static int write_response(conn *c, const pend *r, int status, const char *ctype, size_t clen,
                          const char *lines, size_t llen, const void *body, size_t blen,
                          int stream)
{
    char head[320];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\n", status, tr__http_reason(status));
    int keep = r->keep_alive && !stream;
    if (!stream && status != 204)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %zu\r\n", blen);
    if (clen)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Type: %.*s\r\n",
                      (int)(clen < 128 ? clen : 128), ctype);
    if (stream)
        n += snprintf(head + n, sizeof head - (size_t)n, "Cache-Control: no-cache\r\n");
    if (!keep)
        n += snprintf(head + n, sizeof head - (size_t)n, "Connection: close\r\n");
    else if (r->version_minor == 0)
        n += snprintf(head + n, sizeof head - (size_t)n, "Connection: keep-alive\r\n");
    if (r->head || status == 204 || status == 304)
        blen = 0;
    tr_iov iov[4] = {{head, (size_t)n}, {lines, llen}, {"\r\n", 2}, {body, blen}};
    int rc = tr_sock_writev(c->self, c->s, iov, 4);
    if (rc == TR_EFULL)
        c->srv->st.slow_closed++;
    if (rc != 0)
        return rc;
    c->srv->st.responses[status / 100 < 6 ? status / 100 : 0]++;
    if (stream) {
        c->mode = STREAM;
        c->stream_id = r->id;
        c->srv->st.streams++;
        if (c->early_len)
            rc = tr_sock_write(c->self, c->s, c->early, c->early_len);
        free(c->early);
        c->early = NULL;
        c->early_len = 0;
        if (rc == TR_EFULL)
            c->srv->st.slow_closed++;
        if (rc == 0 && c->early_close)
            begin_close(c);
        return rc;
    }
    if (!keep)
        begin_close(c);
    return 0;
}

static int write_simple_r(conn *c, const pend *r, int status, const char *lines)
{
    char body[64];
    int n = snprintf(body, sizeof body, "%d %s\n", status, tr__http_reason(status));
    const char *ct = "text/plain; charset=utf-8";
    return write_response(c, r, status, ct, strlen(ct), lines, lines ? strlen(lines) : 0, body,
                          (size_t)n, 0);
}

/* An answer of the server's own to the request being parsed now (only
 * 100-continue's caller uses the pend-less form). */
static void write_simple(conn *c, int status, const char *lines)
{
    pend r = {.keep_alive = 0, .version_minor = 1};
    write_simple_r(c, &r, status, lines);
}

/* ---- dispatching ---------------------------------------------------------------- */

static int path_matches(const char *route, const char *path)
{
    size_t n = strlen(route);
    if (n > 0 && route[n - 1] == '*')
        return strncmp(route, path, n - 1) == 0;
    return strcmp(route, path) == 0;
}

/* Finds the route of `r`: 0 and *out, or 404 / 405 (with an Allow line). */
static int route_of(conn *c, const tr_http_request *r, const cfg_route **out, char *allow,
                    size_t cap)
{
    const http_srv *s = c->srv;
    int path_seen = 0;
    size_t n = 0;
    allow[0] = '\0';
    for (unsigned i = 0; i < s->cfg.nroutes; i++) {
        const cfg_route *rt = http_route(s, i);
        if (!path_matches(http_str(s, rt->path_off), r->path))
            continue;
        const char *m = http_str(s, rt->method_off);
        if (!m || strcmp(m, r->method) == 0 ||
            (strcmp(m, "GET") == 0 && strcmp(r->method, "HEAD") == 0)) {
            *out = rt;
            return 0;
        }
        if (!path_seen)
            n += (size_t)snprintf(allow + n, n < cap ? cap - n : 0, "Allow: %s", m);
        else if (n < cap && !strstr(allow, m))
            n += (size_t)snprintf(allow + n, cap - n, ", %s", m);
        path_seen = 1;
    }
    if (!path_seen)
        return 404;
    if (n + 3 <= cap)
        memcpy(allow + n, "\r\n", 3);
    else
        allow[0] = '\0';
    return 405;
}

/* Sends the next queued requests to their handlers, answering those the
 * server answers itself, until one call is in flight. 0, or an error that
 * ends the connection. */
static int dispatch(conn *c)
{
    while (!c->inflight && c->qhead && c->mode == OPEN && !c->throttled) {
        pend *r = dequeue(c);
        int rc = 0;
        if (r->status) { /* the parser's error: answer, then close */
            c->srv->st.bad += r->status != 503;
            rc = write_simple_r(c, r, r->status, NULL);
            free_pend(r);
            if (rc == 0)
                begin_close(c);
            return rc;
        }
        tr_http_request req;
        tr_msg m = {.data = r->buf, .len = (uint32_t)r->len};
        const cfg_route *rt = NULL;
        char allow[160];
        int status = tr_http_request_get(&m, &req) != 0 ? 500
                                                        : route_of(c, &req, &rt, allow, sizeof allow);
        tr_pid to = TR_PID_NONE;
        if (status == 0) {
            const char *name = http_str(c->srv, rt->name_off);
            to = name ? tr_whereis(tr_runtime_of(c->self), name) : rt->pid;
            if (to == TR_PID_NONE)
                status = 503;
        }
        if (status == 0) {
            tr_duration t = c->srv->cfg.request_timeout;
            rc = tr_call(c->self, to, rt->type, r->buf, r->len, t, &c->ref);
            if (rc == 0) {
                c->inflight = r;
                return 0;
            }
            status = rc == TR_EMSGSIZE ? 413 : rc == TR_ENOACTOR || rc == TR_EFULL ? 503 : 500;
            if (status == 413)
                r->keep_alive = 0;
        }
        rc = write_simple_r(c, r, status, status == 405 ? allow : NULL);
        free_pend(r);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Parses `len` bytes. What the parser cannot take now (the pipeline is
 * full) is held. 0, or an error that ends the connection. */
static int feed(conn *c, const unsigned char *data, size_t len)
{
    size_t n = http_parser_execute(&c->p, &settings, (const char *)data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&c->p);
    if (c->oom)
        return TR_ENOMEM;
    int status = c->err;
    if (!status && e == HPE_PAUSED) {
        if (n < len)
            return hold(c, data + n, len - n);
        return 0;
    }
    if (!status && e != HPE_OK)
        status = e == HPE_HEADER_OVERFLOW ? 431 : 400;
    if (status) {
        pend *r = calloc(1, sizeof *r);
        if (!r)
            return TR_ENOMEM;
        r->status = status;
        r->version_minor = 1;
        enqueue(c, r);
        c->parse_done = 1;
        return 0;
    }
    if (c->p.upgrade) { /* not supported: answer what came, then close */
        if (c->qtail)
            c->qtail->keep_alive = 0;
        c->parse_done = 1;
    }
    return 0;
}

static void update_idle(conn *c)
{
    int want = c->mode == OPEN && !c->inflight && c->qlen == 0 && !c->parse_done &&
               c->srv->cfg.idle_timeout != TR_INFINITE;
    if (want && !c->idle_armed) {
        c->idle_gen++;
        if (tr_send_after(c->self, tr_self(c->self), c->srv->cfg.idle_timeout, HTTP_MSG_IDLE,
                          &c->idle_gen, sizeof c->idle_gen, &c->idle_timer) == 0)
            c->idle_armed = 1;
    } else if (!want && c->idle_armed) {
        tr_timer_cancel(c->self, c->idle_timer);
        c->idle_gen++; /* one already queued is now stale */
        c->idle_armed = 0;
    }
}

static int update_reading(conn *c)
{
    int want = c->mode != OPEN ||
               (!c->parse_done && c->held_len == 0 && c->qlen < c->srv->cfg.max_pipeline &&
                !c->throttled);
    if (want == c->reading)
        return 0;
    c->reading = want;
    return tr_sock_read(c->self, c->s, want ? TR_SOCK_CONTINUOUS : TR_SOCK_PAUSE);
}

/* Moves everything on that can move: dispatch, then the held input while
 * the pipeline has room; then reading and the idle timer. */
static int progress(conn *c)
{
    int rc;
    for (;;) {
        if ((rc = dispatch(c)) != 0)
            return rc;
        if (c->mode != OPEN || c->parse_done || c->held_len == 0 ||
            c->qlen >= c->srv->cfg.max_pipeline)
            break;
        unsigned char *b = c->held;
        size_t len = c->held_len;
        c->held = NULL;
        c->held_len = c->held_cap = 0;
        http_parser_pause(&c->p, 0);
        rc = feed(c, b, len);
        free(b);
        if (rc != 0)
            return rc;
    }
    if (c->eof && c->mode == OPEN && !c->inflight && !c->qhead &&
        (c->held_len == 0 || c->parse_done))
        return tr_exit(c->self, TR_EXIT_NORMAL); /* all answered: queued writes still go out */
    update_idle(c);
    return update_reading(c);
}

/* ---- the answer to a call ------------------------------------------------------- */

static int on_answer(conn *c, const tr_msg *msg)
{
    pend *r = c->inflight;
    c->inflight = NULL;
    int rc;
    resp_wire w;
    if (msg->type == TR_MSG_CALL_TIMEOUT) {
        c->srv->st.timeouts++;
        rc = write_simple_r(c, r, 504, NULL);
    } else if (msg->type == TR_MSG_CALL_FAILED) {
        tr_call_failed f = {0};
        if (msg->len >= sizeof f)
            memcpy(&f, msg->data, sizeof f);
        rc = write_simple_r(c, r, f.code == TR_ENOACTOR ? 503 : 502, NULL);
    } else if (msg->type == HTTP_MSG_RESPONSE && msg->len >= sizeof w &&
               (memcpy(&w, msg->data, sizeof w), w.magic == HTTP_RESP_MAGIC) &&
               (uint64_t)w.ctype_len + w.hdrs_len + w.body_len == msg->len - sizeof w &&
               w.status >= 200 && w.status <= 599) {
        const char *p = (const char *)msg->data + sizeof w;
        if (!(w.flags & RESP_STREAM) || c->mode != OPEN)
            rc = write_response(c, r, w.status, p, w.ctype_len, p + w.ctype_len, w.hdrs_len,
                                p + w.ctype_len + w.hdrs_len, w.body_len, 0);
        else
            rc = write_response(c, r, 200, p, w.ctype_len, p + w.ctype_len, w.hdrs_len, NULL,
                                0, 1);
    } else { /* the handler answered with something else */
        rc = write_simple_r(c, r, 502, NULL);
    }
    free_pend(r);
    if (rc != 0)
        return rc;
    if (c->mode == STREAM) { /* what the client pipelined after it is dropped */
        for (pend *q; (q = dequeue(c));)
            free_pend(q);
        free(c->held);
        c->held = NULL;
        c->held_len = c->held_cap = 0;
    }
    return progress(c);
}

/* ---- stream messages ------------------------------------------------------------ */

static int on_stream(conn *c, const tr_msg *msg)
{
    stream_wire w;
    if (msg->len < sizeof w)
        return 0;
    memcpy(&w, msg->data, sizeof w);
    const unsigned char *d = (const unsigned char *)msg->data + sizeof w;
    size_t len = msg->len - sizeof w;
    int close = msg->type == HTTP_MSG_STREAM_CLOSE;
    if (c->mode == STREAM && w.id == c->stream_id) {
        if (close) {
            begin_close(c);
            return progress(c);
        }
        int rc = tr_sock_write(c->self, c->s, d, len);
        if (rc == TR_EFULL)
            c->srv->st.slow_closed++;
        return rc;
    }
    if (c->mode == OPEN && c->inflight && c->inflight->id == w.id) {
        /* the reply that opens the stream is still on its way */
        if (close) {
            c->early_close = 1;
            return 0;
        }
        if (c->early_len + len > c->srv->cfg.write_max) {
            c->srv->st.slow_closed++;
            return TR_EFULL;
        }
        size_t cap = c->early_len;
        if (grow(&c->early, &cap, c->early_len + len) != 0)
            return TR_ENOMEM;
        memcpy(c->early + c->early_len, d, len);
        c->early_len += len;
    }
    return 0; /* a stream that is not (or no longer) this connection's */
}

/* ---- the actor ------------------------------------------------------------------ */

static int conn_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    conn *c = state;
    if (len != sizeof(http_srv *))
        return TR_EINVAL;
    memcpy(&c->srv, arg, sizeof c->srv);
    http_parser_init(&c->p, HTTP_REQUEST);
    c->p.data = c;
    return 0;
}

static int conn_handle(conn *c, const tr_msg *msg)
{
    tr_pid me = tr_self(c->self);
    if ((msg->flags & TR_MSG_REPLY) && c->inflight && msg->ref == c->ref)
        return on_answer(c, msg);
    switch (msg->type) {
    case TR_MSG_SOCK_GIVEN:
        if (c->s != TR_SOCK_NONE)
            return 0;
        c->s = msg->ref;
        c->reading = 0;
        return progress(c);
    case TR_MSG_SOCK_DATA:
        if (msg->ref != c->s || c->mode != OPEN || c->parse_done)
            return 0; /* streaming or closing: the client's bytes are dropped */
        if (c->held_len > 0) {
            int rc = hold(c, msg->data, msg->len);
            return rc != 0 ? rc : progress(c);
        } else {
            int rc = feed(c, msg->data, msg->len);
            return rc != 0 ? rc : progress(c);
        }
    case TR_MSG_SOCK_THROTTLED:
    case TR_MSG_SOCK_UNTHROTTLED:
        c->throttled = msg->type == TR_MSG_SOCK_THROTTLED;
        return progress(c);
    case TR_MSG_SOCK_EOF:
        /* The client is done sending. Requests it sent are still answered
         * (a client may half-close after its last request); with nothing
         * left to answer, the connection ends. */
        c->eof = 1;
        if (c->mode == OPEN)
            return progress(c);
        return tr_exit(c->self, TR_EXIT_NORMAL);
    case TR_MSG_SOCK_CLOSED:
        return tr_exit(c->self, TR_EXIT_NORMAL);
    case HTTP_MSG_STREAM_DATA:
    case HTTP_MSG_STREAM_CLOSE:
        return on_stream(c, msg);
    case HTTP_MSG_IDLE: {
        uint64_t gen = 0;
        if (msg->from != me || msg->len != sizeof gen)
            return 0;
        memcpy(&gen, msg->data, sizeof gen);
        if (!c->idle_armed || gen != c->idle_gen)
            return 0;
        c->idle_armed = 0;
        if (c->in_message) { /* part of a request, and no more for too long */
            c->parse_done = 1;
            write_simple(c, 408, NULL);
            begin_close(c);
            return progress(c);
        }
        return tr_exit(c->self, TR_EXIT_NORMAL);
    }
    case HTTP_MSG_LINGER:
        if (msg->from == me)
            return tr_exit(c->self, TR_EXIT_NORMAL);
        return 0;
    }
    return 0;
}

static int conn_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    conn *c = state;
    c->self = self;
    int rc = conn_handle(c, msg);
    c->self = NULL;
    if (rc != 0 && rc != TR_ENOMEM) /* the socket failed, or a client too slow */
        return tr_exit(self, TR_EXIT_NORMAL);
    return rc;
}

static void conn_terminate(tr_actor *self, void *state, const tr_exit_reason *reason)
{
    (void)self;
    (void)reason;
    conn *c = state;
    for (pend *r; (r = dequeue(c));)
        free_pend(r);
    free_pend(c->inflight);
    free(c->cur);
    free(c->held);
    free(c->early);
}

static void conn_describe(tr_actor *self, void *state, char *buf, size_t len)
{
    conn *c = state;
    char peer[96] = "?";
    tr_sock_addr(self, c->s, 1, peer, sizeof peer);
    static const char *const modes[] = {"open", "stream", "closing"};
    snprintf(buf, len, "%s %s, %u queued%s", peer, modes[c->mode], c->qlen,
             c->inflight ? ", 1 in flight" : "");
}

const tr_behavior tr__http_conn_behavior = {.name = "http-conn",
                                            .state_size = sizeof(conn),
                                            .init = conn_init,
                                            .receive = conn_receive,
                                            .terminate = conn_terminate,
                                            .describe = conn_describe};
