/*
 * http.h — what the HTTP module's files share (internal; the public API is
 * the "HTTP" section of troupe.h).
 *
 * The module is a subsystem above the runtime that uses nothing but the
 * public API: a server actor (server.c) owns the listener and spawns a
 * connection actor (conn.c) per accepted connection, as its child on its
 * own loop; a connection parses requests with http-parser and hands each
 * to its route's actor as a call whose payload is a request in the wire
 * form below (wire.c, which also holds the handler's side: reading a
 * request, encoding a response, streams).
 *
 * Every message type the module uses is a user type (the public API
 * allows no other), in 0xfffe0100 .. 0xfffe01ff. Only the module's own
 * actors receive them, except the route types, which are the user's.
 */
#ifndef TR_HTTP_INTERNAL_H
#define TR_HTTP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "troupe.h"

/* Message types (TR_HTTP_MSG_STATS, 0xfffe0100, is public). */
#define HTTP_MSG_RESPONSE 0xfffe0101u     /* a handler's reply: a resp_wire */
#define HTTP_MSG_STREAM_DATA 0xfffe0102u  /* a stream_wire and the event's bytes */
#define HTTP_MSG_STREAM_CLOSE 0xfffe0103u /* a stream_wire */
#define HTTP_MSG_IDLE 0xfffe0104u         /* a connection's idle timer: uint64_t gen */
#define HTTP_MSG_LINGER 0xfffe0105u       /* a closing connection's last timer */
#define HTTP_MSG_HELLO 0xfffe0106u        /* tr_rt_http_serve's call: the address */

#define HTTP_REQ_MAGIC 0x31505448u  /* "HTP1" */
#define HTTP_RESP_MAGIC 0x52505448u /* "HTPR" */
#define HTTP_CFG_MAGIC 0x43505448u  /* "HTPC" */

/*
 * A request as a call carries it: this header, then NUL-terminated strings
 * (method, path, query, each header's name and value), the table of the
 * headers (nheaders pairs of uint32_t offsets: name, value), the body and
 * a NUL after it. Offsets are from the start of the payload. Read with
 * memcpy: the payload has no alignment the reader may count on.
 */
typedef struct req_wire {
    uint32_t magic;
    uint32_t total;      /* the payload's length */
    uint32_t method_off, path_off, query_off;
    uint32_t nheaders;
    uint32_t table_off;  /* nheaders * 2 uint32_t */
    uint32_t body_off;
    uint32_t body_len;
    int32_t version_minor;
    uint64_t conn;       /* the connection's pid */
    uint64_t id;         /* the request's number on its connection */
} req_wire;

/* A response as a reply carries it: this header, the content type, the
 * header lines (each "Name: value\r\n"), the body. */
#define RESP_STREAM 0x1u /* an event stream: 200, no Content-Length */
typedef struct resp_wire {
    uint32_t magic;
    int32_t status;
    uint32_t flags;
    uint32_t ctype_len;
    uint32_t hdrs_len;
    uint32_t body_len;
} resp_wire;

/* HTTP_MSG_STREAM_DATA and _CLOSE: the stream's id (the request's), then,
 * for data, the formatted event. */
typedef struct stream_wire {
    uint64_t id;
} stream_wire;

/*
 * A server's configuration as its spawn argument carries it and its state
 * keeps it: this header, nroutes cfg_route, then the strings (offsets from
 * the start; 0 is "none").
 */
typedef struct cfg_route {
    uint32_t method_off, path_off, name_off, type;
    uint64_t pid;
} cfg_route;

/* tr_rt_http_serve's server: a failed listen is the answer to its
 * HTTP_MSG_HELLO (then it ends), rather than a failed init, whose reason a
 * plain thread could not read reliably once the actor is gone. */
#define CFG_HELLO 0x1u

typedef struct cfg_hdr {
    uint32_t magic;
    uint32_t nroutes;
    uint32_t addr_off;
    uint32_t max_conns;
    uint32_t max_pipeline;
    uint32_t flags;          /* CFG_HELLO */
    uint64_t max_header;
    uint64_t max_body;
    uint64_t write_max;
    int64_t request_timeout; /* ms, or TR_INFINITE */
    int64_t idle_timeout;    /* ms, or TR_INFINITE */
} cfg_hdr;

/*
 * The server actor's state. Its connections are its children on its loop,
 * so they read the configuration and count into `st` through a pointer to
 * it, on the same thread, without locks: a parent's state outlives its
 * children (they end before its terminate runs).
 */
typedef struct http_srv {
    unsigned char *blob; /* the configuration (cfg_hdr ...) */
    size_t blob_len;
    cfg_hdr cfg;         /* a copy of its header */
    tr_sock listener;
    int32_t failed;      /* CFG_HELLO: the listen's error, told to HELLO */
    char addr[160];
    tr_http_stats st;
} http_srv;

static inline const cfg_route *http_route(const http_srv *s, unsigned i)
{
    return (const cfg_route *)(s->blob + sizeof(cfg_hdr)) + i;
}

static inline const char *http_str(const http_srv *s, uint32_t off)
{
    return off ? (const char *)s->blob + off : NULL;
}

/* The connection actor's behaviour (conn.c); its spawn argument is the
 * server's http_srv pointer. */
extern const tr_behavior tr__http_conn_behavior;

/* A constant reason phrase for `status` ("OK", "Not Found"; "Unknown"). */
const char *tr__http_reason(int status);

/* Checks header lines ("Name: value\r\n" ...) of `len` bytes: tokens for
 * names, no CR or LF in values, none of the server's own headers.
 * 0 or TR_EINVAL. */
int tr__http_check_lines(const char *lines, size_t len);

#endif /* TR_HTTP_INTERNAL_H */
