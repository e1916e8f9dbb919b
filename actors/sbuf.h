/*
 * sbuf.h — a growing NUL-terminated string, for text the runtime and its
 * subsystems compose (the metrics' text format, the endpoint's JSON).
 * Out of memory, it stops growing and says so (nomem); the caller owns
 * `p` (free). Not thread-safe: one owner.
 */
#ifndef TR_SBUF_H
#define TR_SBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing string. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool nomem;
} sbuf;

static inline void sb_grow(sbuf *b, size_t more)
{
    if (b->nomem || b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->nomem = true;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static inline void sb_put(sbuf *b, const char *s, size_t n)
{
    sb_grow(b, n);
    if (b->nomem)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static inline void sb_str(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static inline void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        sb_put(b, tmp, (size_t)n);
        return;
    }
    sb_grow(b, (size_t)n);
    if (b->nomem)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* A label value, escaped as the text format wants: \\, \", \n. */
static inline void sb_label_value(sbuf *b, const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (c == '\\')
            sb_str(b, "\\\\");
        else if (c == '"')
            sb_str(b, "\\\"");
        else if (c == '\n')
            sb_str(b, "\\n");
        else
            sb_put(b, &c, 1);
    }
}

/* `s` as a JSON string, quotes included. */
static inline void sb_json_str(sbuf *b, const char *s)
{
    sb_str(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            sb_put(b, e, 2);
        } else if (*p < 0x20) {
            sb_printf(b, "\\u%04x", *p);
        } else {
            sb_put(b, (const char *)p, 1);
        }
    }
    sb_str(b, "\"");
}

#endif /* TR_SBUF_H */
