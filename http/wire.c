/*
 * wire.c — the handler's side of the HTTP module: reading a request out of
 * the call that carries it, and answering it (a response, or an event
 * stream and its events), each in the wire forms of http.h.
 *
 * A request's payload comes from a connection actor, but any actor may
 * make a call of a route's type: tr_http_request_get checks the layout
 * (magic, every offset and length inside the payload, every string
 * terminated) before it hands out a pointer, so a forged or foreign
 * payload is TR_EINVAL, never a read out of bounds.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "http.h"

/* ---- reading a request ------------------------------------------------------------ */

/* The NUL-terminated string at `off` inside data[0..len), or NULL. */
static const char *str_at(const unsigned char *data, size_t len, uint32_t off)
{
    if (off >= len || !memchr(data + off, '\0', len - off))
        return NULL;
    return (const char *)data + off;
}

int tr_http_request_get(const tr_msg *msg, tr_http_request *out)
{
    req_wire w;
    if (!msg || !out || !msg->data || msg->len < sizeof w)
        return TR_EINVAL;
    const unsigned char *d = msg->data;
    size_t len = msg->len;
    memcpy(&w, d, sizeof w);
    if (w.magic != HTTP_REQ_MAGIC || w.total != len || w.nheaders > TR_HTTP_HEADERS_MAX ||
        w.table_off > len || (size_t)w.nheaders * 8 > len - w.table_off ||
        w.body_off > len || w.body_len >= len - w.body_off || d[w.body_off + w.body_len] != '\0')
        return TR_EINVAL;
    tr_http_request r;
    memset(&r, 0, sizeof r);
    r.method = str_at(d, len, w.method_off);
    r.path = str_at(d, len, w.path_off);
    r.query = str_at(d, len, w.query_off);
    if (!r.method || !r.path || !r.query)
        return TR_EINVAL;
    for (uint32_t i = 0; i < w.nheaders; i++) {
        uint32_t off[2];
        memcpy(off, d + w.table_off + i * 8, sizeof off);
        r.headers[i].name = str_at(d, len, off[0]);
        r.headers[i].value = str_at(d, len, off[1]);
        if (!r.headers[i].name || !r.headers[i].value)
            return TR_EINVAL;
    }
    r.nheaders = w.nheaders;
    r.version_minor = w.version_minor;
    r.body = d + w.body_off;
    r.body_len = w.body_len;
    r.conn = w.conn;
    *out = r;
    return 0;
}

const char *tr_http_header(const tr_http_request *r, const char *name)
{
    if (!r || !name)
        return NULL;
    for (unsigned i = 0; i < r->nheaders && i < TR_HTTP_HEADERS_MAX; i++)
        if (r->headers[i].name && strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int tr_http_query_param(const tr_http_request *r, const char *name, char *buf, size_t cap)
{
    if (!r || !r->query || !name || !buf || cap == 0)
        return TR_EINVAL;
    size_t nlen = strlen(name);
    for (const char *p = r->query; *p;) {
        const char *end = strchr(p, '&');
        if (!end)
            end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        const char *kend = eq ? eq : end;
        if ((size_t)(kend - p) == nlen && memcmp(p, name, nlen) == 0) {
            size_t n = 0;
            for (const char *v = eq ? eq + 1 : end; v < end; v++) {
                char c = *v;
                if (c == '+') {
                    c = ' ';
                } else if (c == '%') {
                    int hi = v + 2 < end ? hexval(v[1]) : -1;
                    int lo = hi >= 0 ? hexval(v[2]) : -1;
                    if (hi < 0 || lo < 0)
                        return TR_EINVAL;
                    c = (char)(hi * 16 + lo);
                    v += 2;
                }
                if (n + 1 >= cap)
                    return TR_ELIMIT;
                buf[n++] = c;
            }
            buf[n] = '\0';
            return (int)n;
        }
        p = *end ? end + 1 : end;
    }
    return TR_ENOTFOUND;
}

/* ---- answering -------------------------------------------------------------------- */

const char *tr__http_reason(int status)
{
    const char *s = http_status_str((enum http_status)status);
    return s && s[0] != '<' ? s : "Unknown";
}

static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The headers the server writes itself: a handler may not set them. */
static int reserved_name(const char *name, size_t len)
{
    static const char *const own[] = {"content-length", "transfer-encoding", "connection"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (strlen(own[i]) == len && strncasecmp(own[i], name, len) == 0)
            return 1;
    return 0;
}

static int check_field(const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (nlen == 0 || reserved_name(name, nlen))
        return TR_EINVAL;
    for (size_t i = 0; i < nlen; i++)
        if (!is_tchar((unsigned char)name[i]))
            return TR_EINVAL;
    for (size_t i = 0; i < vlen; i++)
        if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
            return TR_EINVAL;
    return 0;
}

int tr__http_check_lines(const char *lines, size_t len)
{
    size_t i = 0;
    while (i < len) {
        const char *line = lines + i;
        const char *crlf = NULL;
        for (size_t j = i; j + 1 < len; j++)
            if (lines[j] == '\r' && lines[j + 1] == '\n') {
                crlf = lines + j;
                break;
            }
        if (!crlf)
            return TR_EINVAL;
        const char *colon = memchr(line, ':', (size_t)(crlf - line));
        if (!colon)
            return TR_EINVAL;
        const char *v = colon + 1;
        if (check_field(line, (size_t)(colon - line), v, (size_t)(crlf - v)) != 0)
            return TR_EINVAL;
        i = (size_t)(crlf - lines) + 2;
    }
    return 0;
}

/* Whether `req` is a request from an HTTP connection. */
static int is_http_request(const tr_msg *req)
{
    uint32_t magic;
    if (!req || !(req->flags & TR_MSG_REQUEST) || !req->data || req->len < sizeof(req_wire))
        return 0;
    memcpy(&magic, req->data, sizeof magic);
    return magic == HTTP_REQ_MAGIC;
}

/* Encodes and sends the reply: the wire header, then the pieces. */
static int send_resp(tr_actor *self, const tr_msg *req, int status, uint32_t flags,
                     const char *ctype, const tr_http_field *h, unsigned nh,
                     const char *lines, const void *body, size_t blen)
{
    size_t clen = ctype ? strlen(ctype) : 0, hlen = lines ? strlen(lines) : 0;
    for (unsigned i = 0; i < nh; i++)
        hlen += strlen(h[i].name) + 2 + strlen(h[i].value) + 2;
    if (clen > UINT32_MAX || hlen > UINT32_MAX || blen > UINT32_MAX ||
        sizeof(resp_wire) + clen + hlen + blen > UINT32_MAX)
        return TR_EMSGSIZE;
    size_t total = sizeof(resp_wire) + clen + hlen + blen;
    unsigned char *buf = malloc(total);
    if (!buf)
        return TR_ENOMEM;
    resp_wire w = {.magic = HTTP_RESP_MAGIC, .status = status, .flags = flags,
                   .ctype_len = (uint32_t)clen, .hdrs_len = (uint32_t)hlen,
                   .body_len = (uint32_t)blen};
    unsigned char *p = buf;
    memcpy(p, &w, sizeof w);
    p += sizeof w;
    if (clen)
        memcpy(p, ctype, clen);
    p += clen;
    for (unsigned i = 0; i < nh; i++) {
        size_t n = strlen(h[i].name), v = strlen(h[i].value);
        memcpy(p, h[i].name, n);
        p += n;
        memcpy(p, ": ", 2);
        p += 2;
        memcpy(p, h[i].value, v);
        p += v;
        memcpy(p, "\r\n", 2);
        p += 2;
    }
    if (lines) {
        memcpy(p, lines, strlen(lines));
        p += strlen(lines);
    }
    if (blen)
        memcpy(p, body, blen);
    int rc = tr_reply(self, req, HTTP_MSG_RESPONSE, buf, total);
    free(buf);
    return rc;
}

int tr_http_respond(tr_actor *self, const tr_msg *req, const tr_http_response *resp)
{
    if (!self || !resp || !is_http_request(req) || resp->status < 200 || resp->status > 599 ||
        (resp->nheaders > 0 && !resp->headers) || (resp->len > 0 && !resp->body))
        return TR_EINVAL;
    if ((resp->status == 204 || resp->status == 304) && resp->len > 0)
        return TR_EINVAL;
    if (resp->content_type &&
        check_field("Content-Type", 12, resp->content_type, strlen(resp->content_type)) != 0)
        return TR_EINVAL;
    for (unsigned i = 0; i < resp->nheaders; i++) {
        const tr_http_field *f = &resp->headers[i];
        if (!f->name || !f->value ||
            check_field(f->name, strlen(f->name), f->value, strlen(f->value)) != 0)
            return TR_EINVAL;
    }
    return send_resp(self, req, resp->status, 0, resp->content_type, resp->headers,
                     resp->nheaders, NULL, resp->body, resp->len);
}

int tr_http_reply(tr_actor *self, const tr_msg *req, int status, const char *content_type,
                  const void *body, size_t len)
{
    tr_http_response r = {.status = status, .content_type = content_type, .body = body,
                          .len = len};
    return tr_http_respond(self, req, &r);
}

int tr_http_reply_stream(tr_actor *self, const tr_msg *req, const char *extra_headers,
                         tr_http_stream *out)
{
    if (!self || !out || !is_http_request(req))
        return TR_EINVAL;
    if (extra_headers && tr__http_check_lines(extra_headers, strlen(extra_headers)) != 0)
        return TR_EINVAL;
    req_wire w;
    memcpy(&w, req->data, sizeof w);
    int rc = send_resp(self, req, 200, RESP_STREAM, "text/event-stream", NULL, 0,
                       extra_headers, NULL, 0);
    if (rc != 0)
        return rc;
    out->conn = w.conn;
    out->id = w.id;
    return 0;
}

int tr_http_stream_send(tr_actor *self, const tr_http_stream *s, const char *event,
                        const void *data, size_t len)
{
    if (!self || !s || (len > 0 && !data))
        return TR_EINVAL;
    size_t elen = event ? strlen(event) : 0;
    if (event && (memchr(event, '\r', elen) || memchr(event, '\n', elen)))
        return TR_EINVAL;
    /* Each line of data costs "data: " and "\n"; there are at most len + 1. */
    size_t lines = 1;
    const char *d = data;
    for (size_t i = 0; i < len; i++)
        lines += d[i] == '\n';
    size_t cap = sizeof(stream_wire) + (event ? 7 + elen + 1 : 0) + len + lines * 7 + 1;
    unsigned char *buf = malloc(cap);
    if (!buf)
        return TR_ENOMEM;
    stream_wire w = {.id = s->id};
    memcpy(buf, &w, sizeof w);
    size_t n = sizeof w;
    if (event) {
        memcpy(buf + n, "event: ", 7);
        n += 7;
        memcpy(buf + n, event, elen);
        n += elen;
        buf[n++] = '\n';
    }
    size_t i = 0;
    do {
        size_t j = i;
        while (j < len && d[j] != '\n')
            j++;
        size_t l = j - i;
        if (l > 0 && d[i + l - 1] == '\r') /* a "\r\n" ends the line too */
            l--;
        memcpy(buf + n, "data: ", 6);
        n += 6;
        if (l)
            memcpy(buf + n, d + i, l);
        n += l;
        buf[n++] = '\n';
        i = j + 1;
    } while (i <= len); /* a final "\n" makes a last, empty line: kept */
    buf[n++] = '\n';
    int rc = tr_send(self, s->conn, HTTP_MSG_STREAM_DATA, buf, n);
    free(buf);
    return rc;
}

int tr_http_stream_close(tr_actor *self, const tr_http_stream *s)
{
    if (!self || !s)
        return TR_EINVAL;
    stream_wire w = {.id = s->id};
    return tr_send(self, s->conn, HTTP_MSG_STREAM_CLOSE, &w, sizeof w);
}
