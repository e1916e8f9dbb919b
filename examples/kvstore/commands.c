/*
 * commands — see commands.h. Each command is written after Redis 7.0's
 * (t_string.c, expire.c, db.c, server.c): the same argument checks in the
 * same order, so the same error for the same mistake, byte for byte.
 */
#include "commands.h"
#include "resp.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_STRING (512ull * 1024 * 1024) /* Redis's proto-max-bulk-len */

/* ---- the output buffer ---------------------------------------------------------------- */

void out_free(kv_out *o)
{
    free(o->b);
    memset(o, 0, sizeof *o);
}

int out_reserve(kv_out *o, size_t n)
{
    if (o->cap - o->len >= n)
        return 1;
    size_t cap = o->cap ? o->cap : 256;
    while (cap - o->len < n)
        cap *= 2;
    char *b = realloc(o->b, cap);
    if (!b) {
        o->oom = 1;
        return 0;
    }
    o->b = b;
    o->cap = cap;
    return 1;
}

void out_raw(kv_out *o, const void *p, size_t n)
{
    if (n && out_reserve(o, n)) {
        memcpy(o->b + o->len, p, n);
        o->len += n;
    }
}

void out_str(kv_out *o, const char *s)
{
    out_raw(o, s, strlen(s));
}

/* "<c><v>\r\n" */
static void out_num(kv_out *o, char c, long long v)
{
    char t[32];
    char *e = t + sizeof t, *p = e;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    *--p = '\n';
    *--p = '\r';
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--p = '-';
    *--p = c;
    out_raw(o, p, (size_t)(e - p));
}

void out_int(kv_out *o, long long v)
{
    out_num(o, ':', v);
}

void out_array(kv_out *o, long long n)
{
    out_num(o, '*', n);
}

void out_bulk(kv_out *o, const void *p, size_t n)
{
    out_num(o, '$', (long long)n);
    if (out_reserve(o, n + 2)) {
        memcpy(o->b + o->len, p, n);
        memcpy(o->b + o->len + n, "\r\n", 2);
        o->len += n + 2;
    }
}

void out_null(kv_out *o)
{
    out_raw(o, "$-1\r\n", 5);
}

void out_ok(kv_out *o)
{
    out_raw(o, "+OK\r\n", 5);
}

void out_err(kv_out *o, const char *fmt, ...)
{
    char t[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t, sizeof t, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof t ? (size_t)n : sizeof t - 1;
    for (size_t i = 0; i < len; i++)
        if (t[i] == '\r' || t[i] == '\n')
            t[i] = ' ';
    /* Redis: "-ERR " unless the text brings its own "-CODE " */
    if (len && t[0] == '-')
        out_raw(o, t, len);
    else {
        out_raw(o, "-ERR ", 5);
        out_raw(o, t, len);
    }
    out_raw(o, "\r\n", 2);
}

/* ---- numbers ---------------------------------------------------------------------------- */

static int arg_ll(kv_out *o, const char *s, size_t len, long long *v)
{
    if (resp_str2ll(s, len, v))
        return 1;
    out_err(o, "value is not an integer or out of range");
    return 0;
}

/* How much of an argument Redis prints with %s (up to a NUL), at most max. */
static int cstr_len(const char *a, size_t len, size_t max)
{
    size_t n = strnlen(a, len < max ? len : max);
    return (int)n;
}

static int arg_is(const char *a, size_t len, const char *word)
{
    return strlen(word) == len && strncasecmp(a, word, len) == 0;
}

/* ---- strings ---------------------------------------------------------------------------- */

static void reply_value(kv_out *o, kv_entry *e)
{
    if (e)
        out_bulk(o, kv_val(e), e->vlen);
    else
        out_null(o);
}

static void cmd_get(kv_ctx *x, int argc, const char *const *argv, const size_t *argl, kv_out *o)
{
    (void)argc;
    reply_value(o, kv_get(&x->sh->ks, argv[1], argl[1], x->now_ms));
}

static void oom(kv_out *o)
{
    out_err(o, "OOM command not allowed when used memory > 'maxmemory'.");
}

enum { SET_NX = 1, SET_XX = 2, SET_GET = 4, SET_KEEPTTL = 8, SET_EX = 16, SET_PX = 32,
       SET_EXAT = 64, SET_PXAT = 128 };

static void cmd_set(kv_ctx *x, int argc, const char *const *argv, const size_t *argl, kv_out *o)
{
    int fl = 0, j, t;
    const char *exp = NULL;
    size_t explen = 0;
    const int timed = SET_EX | SET_PX | SET_EXAT | SET_PXAT;
    for (j = 3; j < argc; j++) {
        const char *a = argv[j];
        size_t l = argl[j];
        int last = j == argc - 1;
        if (arg_is(a, l, "nx") && !(fl & SET_XX))
            fl |= SET_NX;
        else if (arg_is(a, l, "xx") && !(fl & SET_NX))
            fl |= SET_XX;
        else if (arg_is(a, l, "get"))
            fl |= SET_GET;
        else if (arg_is(a, l, "keepttl") && !(fl & timed))
            fl |= SET_KEEPTTL;
        else if (!last && (t = arg_is(a, l, "ex") ? SET_EX : arg_is(a, l, "px") ? SET_PX
                            : arg_is(a, l, "exat") ? SET_EXAT : arg_is(a, l, "pxat") ? SET_PXAT
                            : 0) != 0 &&
                 !(fl & (SET_KEEPTTL | (timed & ~t)))) {
            fl |= t; /* the same option again: the last one counts, as in Redis */
            exp = argv[++j];
            explen = argl[j];
        } else {
            out_err(o, "syntax error");
            return;
        }
    }
    int64_t at = KV_NO_EXPIRY;
    if (exp) {
        long long v;
        if (!arg_ll(o, exp, explen, &v))
            return;
        int secs = fl & (SET_EX | SET_EXAT);
        if (v <= 0 || (secs && v > LLONG_MAX / 1000)) {
            out_err(o, "invalid expire time in 'set' command");
            return;
        }
        if (secs)
            v *= 1000;
        if (fl & (SET_EX | SET_PX)) {
            if (v > LLONG_MAX - x->now_ms) {
                out_err(o, "invalid expire time in 'set' command");
                return;
            }
            v += x->now_ms;
        }
        at = v;
    }
    kv_space *ks = &x->sh->ks;
    kv_entry *e = kv_get(ks, argv[1], argl[1], x->now_ms);
    if (fl & SET_GET)
        reply_value(o, e);
    if (((fl & SET_NX) && e) || ((fl & SET_XX) && !e)) {
        if (!(fl & SET_GET))
            out_null(o);
        return;
    }
    e = kv_set(ks, argv[1], argl[1], argv[2], argl[2], fl & SET_KEEPTTL, x->now_ms);
    if (!e || (at != KV_NO_EXPIRY && kv_expire(ks, e, at) != 0)) {
        if (!(fl & SET_GET))
            oom(o);
        return;
    }
    if (at != KV_NO_EXPIRY && at <= x->now_ms) /* EXAT / PXAT in the past */
        kv_del(ks, argv[1], argl[1], x->now_ms);
    if (!(fl & SET_GET))
        out_ok(o);
}

static void cmd_getset(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                       kv_out *o)
{
    (void)argc;
    kv_space *ks = &x->sh->ks;
    reply_value(o, kv_get(ks, argv[1], argl[1], x->now_ms));
    if (!kv_set(ks, argv[1], argl[1], argv[2], argl[2], 0, x->now_ms))
        o->oom = 1;
}

static void cmd_del(kv_ctx *x, int argc, const char *const *argv, const size_t *argl, kv_out *o)
{
    long long n = 0;
    for (int i = 1; i < argc; i++)
        n += kv_del(&x->sh->ks, argv[i], argl[i], x->now_ms);
    out_int(o, n);
}

static void cmd_exists(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                       kv_out *o)
{
    long long n = 0;
    for (int i = 1; i < argc; i++)
        n += kv_get(&x->sh->ks, argv[i], argl[i], x->now_ms) != NULL;
    out_int(o, n);
}

/* INCR, DECR, INCRBY, DECRBY: by `by`. */
static void incr_by(kv_ctx *x, const char *key, size_t klen, long long by, kv_out *o)
{
    kv_space *ks = &x->sh->ks;
    kv_entry *e = kv_get(ks, key, klen, x->now_ms);
    long long v = 0;
    if (e && !resp_str2ll(kv_val(e), e->vlen, &v)) {
        out_err(o, "value is not an integer or out of range");
        return;
    }
    if ((by < 0 && v < 0 && by < LLONG_MIN - v) || (by > 0 && v > 0 && by > LLONG_MAX - v)) {
        out_err(o, "increment or decrement would overflow");
        return;
    }
    v += by;
    kv_out t = {0};
    out_num(&t, ':', v); /* ":<v>\r\n": the digits are the value */
    if (t.oom || !kv_set(ks, key, klen, t.b + 1, t.len - 3, 1, x->now_ms)) {
        out_free(&t);
        oom(o);
        return;
    }
    out_raw(o, t.b, t.len);
    out_free(&t);
}

static void cmd_incr(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                     kv_out *o)
{
    (void)argc;
    incr_by(x, argv[1], argl[1], 1, o);
}

static void cmd_decr(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                     kv_out *o)
{
    (void)argc;
    incr_by(x, argv[1], argl[1], -1, o);
}

static void cmd_incrby(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                       kv_out *o)
{
    (void)argc;
    long long by;
    if (arg_ll(o, argv[2], argl[2], &by))
        incr_by(x, argv[1], argl[1], by, o);
}

static void cmd_decrby(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                       kv_out *o)
{
    (void)argc;
    long long by;
    if (!arg_ll(o, argv[2], argl[2], &by))
        return;
    if (by == LLONG_MIN) {
        out_err(o, "decrement would overflow");
        return;
    }
    incr_by(x, argv[1], argl[1], -by, o);
}

static void cmd_append(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                       kv_out *o)
{
    (void)argc;
    kv_space *ks = &x->sh->ks;
    kv_entry *e = kv_get(ks, argv[1], argl[1], x->now_ms);
    if (!e) {
        e = kv_set(ks, argv[1], argl[1], argv[2], argl[2], 0, x->now_ms);
        if (!e) {
            oom(o);
            return;
        }
        out_int(o, (long long)e->vlen);
        return;
    }
    if ((uint64_t)e->vlen + argl[2] > MAX_STRING) {
        out_err(o, "string exceeds maximum allowed size (proto-max-bulk-len)");
        return;
    }
    kv_entry *n = kv_reserve(ks, e, (size_t)e->vlen + argl[2]);
    if (!n) {
        oom(o);
        return;
    }
    memcpy(kv_val(n) + n->vlen, argv[2], argl[2]);
    n->vlen += (uint32_t)argl[2];
    out_int(o, (long long)n->vlen);
}

static void cmd_strlen(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                       kv_out *o)
{
    (void)argc;
    kv_entry *e = kv_get(&x->sh->ks, argv[1], argl[1], x->now_ms);
    out_int(o, e ? (long long)e->vlen : 0);
}

static void cmd_mget(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                     kv_out *o)
{
    out_array(o, argc - 1);
    for (int i = 1; i < argc; i++)
        reply_value(o, kv_get(&x->sh->ks, argv[i], argl[i], x->now_ms));
}

static void cmd_mset(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                     kv_out *o)
{
    if (argc % 2 == 0) {
        out_err(o, "wrong number of arguments for 'mset' command");
        return;
    }
    for (int i = 1; i + 1 < argc; i += 2)
        if (!kv_set(&x->sh->ks, argv[i], argl[i], argv[i + 1], argl[i + 1], 0, x->now_ms)) {
            oom(o);
            return;
        }
    out_ok(o);
}

/* ---- expiry ---------------------------------------------------------------------------- */

enum { EXP_NX = 1, EXP_XX = 2, EXP_GT = 4, EXP_LT = 8 };

static void expire_generic(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                           kv_out *o, int secs, const char *name)
{
    int fl = 0;
    for (int j = 3; j < argc; j++) {
        if (arg_is(argv[j], argl[j], "nx"))
            fl |= EXP_NX;
        else if (arg_is(argv[j], argl[j], "xx"))
            fl |= EXP_XX;
        else if (arg_is(argv[j], argl[j], "gt"))
            fl |= EXP_GT;
        else if (arg_is(argv[j], argl[j], "lt"))
            fl |= EXP_LT;
        else {
            out_err(o, "Unsupported option %.*s", cstr_len(argv[j], argl[j], 256), argv[j]);
            return;
        }
    }
    if ((fl & EXP_NX) && (fl & (EXP_XX | EXP_GT | EXP_LT))) {
        out_err(o, "NX and XX, GT or LT options at the same time are not compatible");
        return;
    }
    if ((fl & EXP_GT) && (fl & EXP_LT)) {
        out_err(o, "GT and LT options at the same time are not compatible");
        return;
    }
    long long when;
    if (!arg_ll(o, argv[2], argl[2], &when))
        return;
    if (secs) {
        if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000) {
            out_err(o, "invalid expire time in '%s' command", name);
            return;
        }
        when *= 1000;
    }
    if (when > LLONG_MAX - x->now_ms) {
        out_err(o, "invalid expire time in '%s' command", name);
        return;
    }
    when += x->now_ms;
    kv_space *ks = &x->sh->ks;
    kv_entry *e = kv_get(ks, argv[1], argl[1], x->now_ms);
    if (!e) {
        out_int(o, 0);
        return;
    }
    int has = e->expire_ms != KV_NO_EXPIRY;
    if (((fl & EXP_NX) && has) || ((fl & EXP_XX) && !has) ||
        ((fl & EXP_GT) && (!has || when <= e->expire_ms)) ||
        ((fl & EXP_LT) && has && when >= e->expire_ms)) {
        out_int(o, 0);
        return;
    }
    if (when <= x->now_ms) {
        kv_del(ks, argv[1], argl[1], x->now_ms);
        out_int(o, 1);
        return;
    }
    if (kv_expire(ks, e, when) != 0) {
        oom(o);
        return;
    }
    out_int(o, 1);
}

static void cmd_expire(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                       kv_out *o)
{
    expire_generic(x, argc, argv, argl, o, 1, "expire");
}

static void cmd_pexpire(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                        kv_out *o)
{
    expire_generic(x, argc, argv, argl, o, 0, "pexpire");
}

static void ttl_generic(kv_ctx *x, const char *key, size_t klen, kv_out *o, int ms)
{
    kv_entry *e = kv_get(&x->sh->ks, key, klen, x->now_ms);
    if (!e) {
        out_int(o, -2);
        return;
    }
    if (e->expire_ms == KV_NO_EXPIRY) {
        out_int(o, -1);
        return;
    }
    long long ttl = e->expire_ms - x->now_ms;
    if (ttl < 0)
        ttl = 0;
    out_int(o, ms ? ttl : (ttl + 500) / 1000);
}

static void cmd_ttl(kv_ctx *x, int argc, const char *const *argv, const size_t *argl, kv_out *o)
{
    (void)argc;
    ttl_generic(x, argv[1], argl[1], o, 0);
}

static void cmd_pttl(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                     kv_out *o)
{
    (void)argc;
    ttl_generic(x, argv[1], argl[1], o, 1);
}

static void cmd_persist(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                        kv_out *o)
{
    (void)argc;
    kv_entry *e = kv_get(&x->sh->ks, argv[1], argl[1], x->now_ms);
    if (!e || e->expire_ms == KV_NO_EXPIRY) {
        out_int(o, 0);
        return;
    }
    kv_expire(&x->sh->ks, e, KV_NO_EXPIRY);
    out_int(o, 1);
}

/* ---- the keyspace as a whole ------------------------------------------------------------ */

typedef struct keys_walk {
    const char *pat;
    size_t plen;
    int all;
    long long n;
    kv_out body;
} keys_walk;

static int keys_one(void *arg, kv_entry *e)
{
    keys_walk *w = arg;
    if (w->all || kv_glob(w->pat, w->plen, kv_key(e), e->klen, 0)) {
        out_bulk(&w->body, kv_key(e), e->klen);
        w->n++;
    }
    return 0;
}

static void cmd_keys(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                     kv_out *o)
{
    (void)argc;
    keys_walk w = {.pat = argv[1], .plen = argl[1], .all = argl[1] == 1 && argv[1][0] == '*'};
    kv_each(&x->sh->ks, x->now_ms, keys_one, &w);
    out_array(o, w.n);
    out_raw(o, w.body.b, w.body.len);
    if (w.body.oom)
        o->oom = 1;
    out_free(&w.body);
}

static void cmd_dbsize(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                       kv_out *o)
{
    (void)argc;
    (void)argv;
    (void)argl;
    out_int(o, (long long)x->sh->ks.count);
}

static void cmd_flush(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                      kv_out *o)
{
    if (argc > 2 || (argc == 2 && !arg_is(argv[1], argl[1], "async") &&
                     !arg_is(argv[1], argl[1], "sync"))) {
        out_err(o, "syntax error");
        return;
    }
    kv_flush(&x->sh->ks);
    out_ok(o);
}

/* ---- the connection's own --------------------------------------------------------------- */

static void cmd_ping(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                     kv_out *o)
{
    (void)x;
    if (argc > 2)
        out_err(o, "wrong number of arguments for 'ping' command");
    else if (argc == 2)
        out_bulk(o, argv[1], argl[1]);
    else
        out_str(o, "+PONG\r\n");
}

static void cmd_echo(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                     kv_out *o)
{
    (void)x;
    (void)argc;
    out_bulk(o, argv[1], argl[1]);
}

static void cmd_quit(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                     kv_out *o)
{
    (void)argc;
    (void)argv;
    (void)argl;
    x->quit = 1;
    out_ok(o);
}

static void cmd_select(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                       kv_out *o)
{
    (void)x;
    (void)argc;
    long long db;
    if (!resp_str2ll(argv[1], argl[1], &db))
        out_err(o, "value is not an integer or out of range");
    else if (db < INT_MIN || db > INT_MAX)
        out_err(o, "value is out of range, value must between %d and %d", INT_MIN, INT_MAX);
    else if (db != 0)
        out_err(o, "DB index is out of range");
    else
        out_ok(o);
}

static void command_info(kv_out *o, const kv_cmd *c)
{
    out_array(o, 10);
    out_bulk(o, c->name, strlen(c->name));
    out_int(o, c->arity);
    int nflags = 0;
    for (const char *p = c->flags; *p; p++)
        nflags += (p == c->flags || p[-1] == ' ') && *p != ' ';
    out_array(o, nflags);
    for (const char *p = c->flags; *p;) {
        size_t n = strcspn(p, " ");
        if (n)
            out_bulk(o, p, n);
        p += n;
        p += *p == ' ';
    }
    int first = c->keys == KEYS_NONE || c->keys == KEYS_ALL ? 0 : 1;
    out_int(o, first);
    out_int(o, c->keys == KEYS_ONE ? 1 : first ? -1 : 0);
    out_int(o, c->keys == KEYS_PAIRS ? 2 : first);
    out_str(o, "*0\r\n*0\r\n*0\r\n*0\r\n"); /* acl categories, tips, key specs, subcommands */
}

static void cmd_command(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                        kv_out *o)
{
    (void)x;
    size_t n;
    const kv_cmd *t = kv_commands(&n);
    if (argc == 1) {
        out_array(o, (long long)n);
        for (size_t i = 0; i < n; i++)
            command_info(o, &t[i]);
    } else if (arg_is(argv[1], argl[1], "count")) {
        out_int(o, (long long)n);
    } else if (arg_is(argv[1], argl[1], "docs")) {
        out_array(o, 0); /* no docs: redis-cli falls back to its own help */
    } else if (arg_is(argv[1], argl[1], "info")) {
        out_array(o, argc - 2);
        for (int i = 2; i < argc; i++) {
            const kv_cmd *c = kv_lookup(argv[i], argl[i]);
            if (c)
                command_info(o, c);
            else
                out_str(o, "*-1\r\n");
        }
    } else {
        out_err(o, "unknown subcommand '%.*s'. Try COMMAND HELP.",
                cstr_len(argv[1], argl[1], 128), argv[1]);
    }
}

/* CONFIG GET, for clients that ask (redis-benchmark asks for save and
 * appendonly): there is no persistence. */
static void cmd_config(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                       kv_out *o)
{
    (void)x;
    if (!arg_is(argv[1], argl[1], "get") || argc != 3) {
        out_err(o, "unknown subcommand or wrong number of arguments for '%.*s'",
                cstr_len(argv[1], argl[1], 128), argv[1]);
        return;
    }
    if (arg_is(argv[2], argl[2], "save")) {
        out_str(o, "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
    } else if (arg_is(argv[2], argl[2], "appendonly")) {
        out_str(o, "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
    } else {
        out_array(o, 0);
    }
}

static kv_info_fn info_hook;

void kv_set_info_hook(kv_info_fn fn)
{
    info_hook = fn;
}

static void cmd_info(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                     kv_out *o)
{
    if (x->part) { /* a shard's part: its counts; the connection merges them */
        out_int(o, (long long)x->sh->ks.count);
        out_int(o, (long long)x->sh->ks.nexp);
        return;
    }
    kv_info_text(o, argc > 1 ? argv[1] : NULL, argc > 1 ? argl[1] : 0, x->sh->ks.count,
                 x->sh->ks.nexp);
}

void kv_info_text(kv_out *o, const char *section, size_t slen, uint64_t keys,
                  uint64_t expires)
{
    int all = !section || arg_is(section, slen, "all") || arg_is(section, slen, "default") ||
              arg_is(section, slen, "everything");
    kv_out t = {0};
    if (all || arg_is(section, slen, "server") || arg_is(section, slen, "clients") ||
        arg_is(section, slen, "stats") || arg_is(section, slen, "troupe")) {
        if (info_hook)
            info_hook(&t);
    }
    if (all || arg_is(section, slen, "keyspace")) {
        char line[128];
        int n = snprintf(line, sizeof line, "# Keyspace\r\n");
        out_raw(&t, line, (size_t)n);
        if (keys) {
            n = snprintf(line, sizeof line, "db0:keys=%llu,expires=%llu,avg_ttl=0\r\n",
                         (unsigned long long)keys, (unsigned long long)expires);
            out_raw(&t, line, (size_t)n);
        }
    }
    out_bulk(o, t.b ? t.b : "", t.len);
    out_free(&t);
}

/* ---- the table --------------------------------------------------------------------------- */

static const kv_cmd table[] = {
    {"append", 3, KEYS_ONE, MERGE_NONE, cmd_append, "write denyoom"},
    {"command", -1, KEYS_NONE, MERGE_NONE, cmd_command, "loading stale"},
    {"config", -2, KEYS_NONE, MERGE_NONE, cmd_config, "admin noscript loading stale"},
    {"dbsize", 1, KEYS_ALL, MERGE_SUM, cmd_dbsize, "readonly fast"},
    {"decr", 2, KEYS_ONE, MERGE_NONE, cmd_decr, "write denyoom fast"},
    {"decrby", 3, KEYS_ONE, MERGE_NONE, cmd_decrby, "write denyoom fast"},
    {"del", -2, KEYS_EACH, MERGE_SUM, cmd_del, "write"},
    {"echo", 2, KEYS_NONE, MERGE_NONE, cmd_echo, "fast"},
    {"exists", -2, KEYS_EACH, MERGE_SUM, cmd_exists, "readonly fast"},
    {"expire", -3, KEYS_ONE, MERGE_NONE, cmd_expire, "write fast"},
    {"flushall", -1, KEYS_ALL, MERGE_OK, cmd_flush, "write"},
    {"flushdb", -1, KEYS_ALL, MERGE_OK, cmd_flush, "write"},
    {"get", 2, KEYS_ONE, MERGE_NONE, cmd_get, "readonly fast"},
    {"getset", 3, KEYS_ONE, MERGE_NONE, cmd_getset, "write denyoom fast"},
    {"incr", 2, KEYS_ONE, MERGE_NONE, cmd_incr, "write denyoom fast"},
    {"incrby", 3, KEYS_ONE, MERGE_NONE, cmd_incrby, "write denyoom fast"},
    {"info", -1, KEYS_ALL, MERGE_INFO, cmd_info, "loading stale"},
    {"keys", 2, KEYS_ALL, MERGE_CONCAT, cmd_keys, "readonly"},
    {"mget", -2, KEYS_EACH, MERGE_MGET, cmd_mget, "readonly fast"},
    {"mset", -3, KEYS_PAIRS, MERGE_OK, cmd_mset, "write denyoom"},
    {"persist", 2, KEYS_ONE, MERGE_NONE, cmd_persist, "write fast"},
    {"pexpire", -3, KEYS_ONE, MERGE_NONE, cmd_pexpire, "write fast"},
    {"ping", -1, KEYS_NONE, MERGE_NONE, cmd_ping, "fast"},
    {"pttl", 2, KEYS_ONE, MERGE_NONE, cmd_pttl, "readonly fast"},
    {"quit", -1, KEYS_NONE, MERGE_NONE, cmd_quit, "fast"},
    {"select", 2, KEYS_NONE, MERGE_NONE, cmd_select, "loading stale fast"},
    {"set", -3, KEYS_ONE, MERGE_NONE, cmd_set, "write denyoom"},
    {"strlen", 2, KEYS_ONE, MERGE_NONE, cmd_strlen, "readonly fast"},
    {"ttl", 2, KEYS_ONE, MERGE_NONE, cmd_ttl, "readonly fast"},
};

#define NCMDS (sizeof table / sizeof table[0])

const kv_cmd *kv_commands(size_t *n)
{
    *n = NCMDS;
    return table;
}

uint32_t kv_cmd_index(const kv_cmd *c)
{
    return (uint32_t)(c - table);
}

const kv_cmd *kv_cmd_at(uint32_t i)
{
    return i < NCMDS ? &table[i] : NULL;
}

/* The lookup: the name's length and first and last letters pick a slot
 * of a small table filled at first use (no name is longer than 8). */
#define LOOKUP_SLOTS 256

static uint8_t slot_of(size_t len, int first, int last)
{
    return (uint8_t)((len * 31u + (unsigned)first * 7u + (unsigned)last) & (LOOKUP_SLOTS - 1));
}

static const kv_cmd *lookup_tab[LOOKUP_SLOTS][2];
static uint8_t lookup_len[LOOKUP_SLOTS][2];

void kv_commands_init(void)
{
    for (size_t i = 0; i < NCMDS; i++) {
        size_t len = strlen(table[i].name);
        uint8_t s = slot_of(len, table[i].name[0], table[i].name[len - 1]);
        int k = lookup_tab[s][0] ? 1 : 0;
        if (!lookup_tab[s][k]) {
            lookup_tab[s][k] = &table[i];
            lookup_len[s][k] = (uint8_t)len;
        } else
            abort(); /* two slots a name are enough for this table: a new
                      * command that collides needs another slot_of */
    }
}

const kv_cmd *kv_lookup(const char *name, size_t len)
{
    if (len == 0 || len > 8)
        return NULL;
    char low[8];
    for (size_t i = 0; i < len; i++)
        low[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
    uint8_t s = slot_of(len, low[0], low[len - 1]);
    for (int k = 0; k < 2; k++) {
        const kv_cmd *c = lookup_tab[s][k];
        if (c && lookup_len[s][k] == len && memcmp(c->name, low, len) == 0)
            return c;
    }
    return NULL;
}

void kv_err_unknown(kv_out *o, int argc, const char *const *argv, const size_t *argl)
{
    char args[300];
    size_t n = 0;
    args[0] = '\0';
    for (int i = 1; i < argc && n < 128; i++) {
        int w = snprintf(args + n, sizeof args - n, "'%.*s' ", cstr_len(argv[i], argl[i], 128 - n),
                         argv[i]);
        if (w < 0)
            break;
        n += (size_t)w < sizeof args - n ? (size_t)w : sizeof args - n - 1;
    }
    out_err(o, "unknown command '%.*s', with args beginning with: %s",
            cstr_len(argv[0], argl[0], 128), argv[0], args);
}

void kv_err_arity(kv_out *o, const kv_cmd *c)
{
    out_err(o, "wrong number of arguments for '%s' command", c->name);
}
