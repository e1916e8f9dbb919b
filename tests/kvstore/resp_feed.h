/*
 * resp_feed.h — feeding resp_parse the way a server does, for test_resp.c
 * and fuzz_resp.c.
 *
 * A stream is cut into chunks; each chunk is appended to the bytes still
 * pending in a freshly allocated buffer, the old one freed, so a parser that
 * kept a pointer across calls reads freed memory (which ASan reports).
 * Every result is checked against the parser's invariants and written to a
 * log: two feeds of the same stream, cut differently, must give the same
 * log byte for byte.
 */
#ifndef KV_RESP_FEED_H
#define KV_RESP_FEED_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

typedef struct feed_log {
    char *data;
    size_t len, cap;
    long cmds;      /* commands logged */
    int end;        /* how the feed ended: RESP_MORE or RESP_ERR */
    char error[48]; /* the error's text, cut short */
} feed_log;

static void log_put(feed_log *l, const void *b, size_t n)
{
    if (l->len + n > l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        while (cap < l->len + n)
            cap *= 2;
        char *d = realloc(l->data, cap);
        if (!d)
            abort();
        l->data = d;
        l->cap = cap;
    }
    if (n)
        memcpy(l->data + l->len, b, n);
    l->len += n;
}

static void log_u64(feed_log *l, uint64_t v)
{
    log_put(l, &v, sizeof v);
}

/* Checks a RESP_CMD's invariants and logs it: 'C', argc, used, then each
 * argument's length and bytes. Returns NULL or the broken invariant. */
static const char *feed_cmd(const resp_parser *p, uint32_t max_args, const char *buf,
                            size_t len, size_t used, feed_log *l)
{
    if (used == 0 || used > len)
        return "used out of range";
    if (p->argc < 0 || (uint32_t)p->argc > max_args)
        return "argc out of range";
    uintptr_t lo = (uintptr_t)buf, hi = lo + used;
    if (buf[0] != '*') { /* inline: in the parser's text, NUL-terminated */
        lo = (uintptr_t)p->text;
        hi = lo + p->text_cap;
    }
    l->cmds++;
    log_put(l, "C", 1);
    log_u64(l, (uint64_t)p->argc);
    log_u64(l, used);
    for (int i = 0; i < p->argc; i++) {
        uintptr_t a = (uintptr_t)p->argv[i];
        if (a < lo || a > hi || p->argl[i] > hi - a)
            return "argument outside its storage";
        if (buf[0] != '*' && (p->argl[i] == hi - a || p->argv[i][p->argl[i]] != '\0'))
            return "inline argument not NUL-terminated";
        log_u64(l, p->argl[i]);
        log_put(l, p->argv[i], p->argl[i]);
    }
    return NULL;
}

/*
 * Feeds in[0..len) to a parser with the limits `lim` (NULL: defaults), cut
 * at the offsets cuts[0..ncuts) (ascending), and logs every command, then
 * 'E' and the error text, or 'M', the bytes left pending and resp_need
 * (l->cmds counts the commands, l->end says which ending).
 * Returns NULL, or the invariant that broke.
 */
static const char *feed(const resp_limits *lim, const char *in, size_t len,
                        const size_t *cuts, size_t ncuts, feed_log *l)
{
    resp_parser p;
    resp_init(&p, lim);
    uint32_t max_args = p.max_args;
    const char *bad = NULL;
    char *buf = NULL;
    size_t blen = 0, at = 0;
    for (size_t k = 0; k <= ncuts && !bad; k++) {
        size_t end = k < ncuts ? cuts[k] : len;
        if (end <= at && k < ncuts)
            continue;
        char *nb = malloc(blen + (end - at) + 1);
        if (!nb)
            abort();
        if (blen)
            memcpy(nb, buf, blen);
        memcpy(nb + blen, in + at, end - at);
        free(buf);
        buf = nb;
        blen += end - at;
        at = end;
        for (;;) {
            size_t used = 12345;
            int rc = resp_parse(&p, buf, blen, &used);
            if (rc == RESP_CMD) {
                if ((bad = feed_cmd(&p, max_args, buf, blen, used, l)))
                    break;
                memmove(buf, buf + used, blen - used);
                blen -= used;
            } else if (rc == RESP_MORE) {
                if (used != 0)
                    bad = "used not 0 after RESP_MORE";
                break;
            } else if (rc == RESP_ERR) {
                if (used != 0 || !p.error ||
                    strncmp(p.error, "Protocol error: ", 16) != 0)
                    bad = "bad error";
                else if (resp_parse(&p, buf, blen, &used) != RESP_ERR)
                    bad = "error not sticky";
                else {
                    log_put(l, "E", 1);
                    log_put(l, p.error, strlen(p.error) + 1);
                    l->end = RESP_ERR;
                    snprintf(l->error, sizeof l->error, "%s", p.error);
                }
                goto out;
            } else {
                bad = "unknown result";
            }
        }
    }
    if (!bad) {
        log_put(l, "M", 1);
        log_u64(l, blen);
        log_u64(l, resp_need(&p));
        l->end = RESP_MORE;
    }
out:
    free(buf);
    resp_free(&p);
    return bad;
}

#endif
