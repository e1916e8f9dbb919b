/*
 * prom_check.h — a checker of the Prometheus text exposition format 0.0.4,
 * for the tests (test_metrics, the HTTP endpoint's).
 *
 * prom_check(text, err, cap) returns 0 if `text` parses, else -1 with the
 * first problem in err ("line N: ..."). It checks what a scraper relies on:
 *  - # HELP / # TYPE lines name valid metric names, at most one of each per
 *    family, the TYPE before the family's first sample;
 *  - a family's samples are contiguous (a family does not come back);
 *  - sample lines: a valid name, labels name="value" with only \\ \" \n
 *    escapes, a value that is a float (+Inf, -Inf and NaN included), an
 *    optional integer timestamp; no series twice;
 *  - counters' names end in _total; a sample belongs to the current
 *    family (histograms: <name>_bucket, _sum, _count);
 *  - histograms, per label set: le bounds increase, counts never decrease,
 *    the last bucket is le="+Inf", and _count equals it; _sum is present.
 */
#ifndef PROM_CHECK_H
#define PROM_CHECK_H

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct prom_state {
    char family[256];
    char type[16];
    bool have_type, have_help;
    char closed[512][256]; /* families done */
    unsigned nclosed;
    char **series;
    unsigned nseries, capseries;
    /* the current histogram series */
    char hkey[1024];
    bool hopen, hinf, hsum;
    double hle, hcount, hinfcount;
    unsigned samples;
} prom_state;

static inline int prom_fail(char *err, size_t cap, unsigned line, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(err, cap, "line %u: %.200s", line, msg);
    return -1;
}

static inline bool prom_name_char(char c, bool first, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':') ||
           (!first && c >= '0' && c <= '9');
}

/* Reads a name at *p into out; false if none. */
static inline bool prom_name(const char **p, char *out, size_t cap, bool colon)
{
    size_t n = 0;
    const char *s = *p;
    while (prom_name_char(s[n], n == 0, colon)) {
        if (n + 1 >= cap)
            return false;
        out[n] = s[n];
        n++;
    }
    out[n] = '\0';
    *p = s + n;
    return n > 0;
}

static inline bool prom_value(const char *s, double *v, const char **end)
{
    if (strncmp(s, "+Inf", 4) == 0) {
        *v = INFINITY;
        *end = s + 4;
        return true;
    }
    if (strncmp(s, "-Inf", 4) == 0) {
        *v = -INFINITY;
        *end = s + 4;
        return true;
    }
    if (strncmp(s, "NaN", 3) == 0) {
        *v = NAN;
        *end = s + 3;
        return true;
    }
    char *e;
    *v = strtod(s, &e);
    if (e == s)
        return false;
    *end = e;
    return true;
}

static inline bool prom_ends(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a > b && strcmp(s + a - b, suffix) == 0;
}

static inline int prom_close_hist(prom_state *st, char *err, size_t cap, unsigned line)
{
    if (!st->hopen)
        return 0;
    st->hopen = false;
    if (!st->hinf)
        return prom_fail(err, cap, line, "histogram %s{%s}: no le=\"+Inf\" bucket", st->family,
                         st->hkey);
    if (!st->hsum)
        return prom_fail(err, cap, line, "histogram %s{%s}: no _sum", st->family, st->hkey);
    return prom_fail(err, cap, line, "histogram %s{%s}: no _count", st->family, st->hkey);
}

static inline int prom_check(const char *text, char *err, size_t cap)
{
    prom_state *st = calloc(1, sizeof *st);
    int rc = 0;
    unsigned line = 0;
    const char *p = text;
    if (!st)
        return prom_fail(err, cap, 0, "no memory");
    while (*p && rc == 0) {
        line++;
        const char *eol = strchr(p, '\n');
        if (!eol) {
            rc = prom_fail(err, cap, line, "no newline at the end");
            break;
        }
        char buf[2048];
        size_t len = (size_t)(eol - p);
        if (len >= sizeof buf) {
            rc = prom_fail(err, cap, line, "line too long");
            break;
        }
        memcpy(buf, p, len);
        buf[len] = '\0';
        p = eol + 1;
        if (len == 0)
            continue;
        if (buf[0] == '#') {
            const char *s = buf + 1;
            while (*s == ' ')
                s++;
            bool help = strncmp(s, "HELP ", 5) == 0, type = strncmp(s, "TYPE ", 5) == 0;
            if (!help && !type)
                continue; /* a comment */
            s += 5;
            char name[256];
            if (!prom_name(&s, name, sizeof name, true) || (*s != ' ' && *s != '\0')) {
                rc = prom_fail(err, cap, line, "bad metric name in # %s", help ? "HELP" : "TYPE");
                break;
            }
            if (strcmp(name, st->family) != 0) {
                if ((rc = prom_close_hist(st, err, cap, line)) != 0)
                    break;
                for (unsigned i = 0; i < st->nclosed; i++)
                    if (strcmp(st->closed[i], name) == 0) {
                        rc = prom_fail(err, cap, line, "family %s comes back", name);
                        break;
                    }
                if (rc)
                    break;
                if (st->family[0] && st->nclosed < 512)
                    memcpy(st->closed[st->nclosed++], st->family, sizeof st->family);
                snprintf(st->family, sizeof st->family, "%s", name);
                st->have_type = st->have_help = false;
                st->type[0] = '\0';
            }
            if (help) {
                if (st->have_help) {
                    rc = prom_fail(err, cap, line, "second # HELP for %s", name);
                    break;
                }
                st->have_help = true;
            } else {
                if (st->have_type) {
                    rc = prom_fail(err, cap, line, "second # TYPE for %s", name);
                    break;
                }
                s++;
                if (strcmp(s, "counter") && strcmp(s, "gauge") && strcmp(s, "histogram") &&
                    strcmp(s, "summary") && strcmp(s, "untyped")) {
                    rc = prom_fail(err, cap, line, "unknown type '%s'", s);
                    break;
                }
                if (!strcmp(s, "counter") && !prom_ends(name, "_total")) {
                    rc = prom_fail(err, cap, line, "counter %s does not end in _total", name);
                    break;
                }
                snprintf(st->type, sizeof st->type, "%s", s);
                st->have_type = true;
            }
            continue;
        }
        /* A sample. */
        const char *s = buf;
        char name[256], key[1024] = "", le[512] = "";
        if (!prom_name(&s, name, sizeof name, true)) {
            rc = prom_fail(err, cap, line, "bad sample name");
            break;
        }
        if (*s == '{') {
            s++;
            size_t kl = 0;
            while (*s != '}') {
                char lname[128];
                if (!prom_name(&s, lname, sizeof lname, false) || *s != '=' || s[1] != '"') {
                    rc = prom_fail(err, cap, line, "bad label in %s", name);
                    break;
                }
                s += 2;
                char val[512];
                size_t vl = 0;
                while (*s && *s != '"') {
                    if (*s == '\\') {
                        if (s[1] != '\\' && s[1] != '"' && s[1] != 'n') {
                            rc = prom_fail(err, cap, line, "bad escape in a label value");
                            break;
                        }
                        if (vl + 2 < sizeof val) {
                            val[vl++] = s[0];
                            val[vl++] = s[1];
                        }
                        s += 2;
                        continue;
                    }
                    if (vl + 1 < sizeof val)
                        val[vl++] = *s;
                    s++;
                }
                if (rc)
                    break;
                val[vl] = '\0';
                if (*s != '"') {
                    rc = prom_fail(err, cap, line, "unterminated label value");
                    break;
                }
                s++;
                if (strcmp(lname, "le") == 0) {
                    snprintf(le, sizeof le, "%s", val);
                } else {
                    int n = snprintf(key + kl, sizeof key - kl, "%s%s=\"%s\"", kl ? "," : "",
                                     lname, val);
                    if (n > 0 && (size_t)n < sizeof key - kl)
                        kl += (size_t)n;
                }
                if (*s == ',')
                    s++;
                else if (*s != '}') {
                    rc = prom_fail(err, cap, line, "expected , or } in the labels");
                    break;
                }
            }
            if (rc)
                break;
            s++;
        }
        if (*s != ' ') {
            rc = prom_fail(err, cap, line, "no space before the value");
            break;
        }
        s++;
        double v;
        const char *e;
        if (!prom_value(s, &v, &e) || (*e != '\0' && *e != ' ')) {
            rc = prom_fail(err, cap, line, "bad value '%s'", s);
            break;
        }
        if (*e == ' ') {
            char *te;
            strtoll(e + 1, &te, 10);
            if (*te != '\0' || te == e + 1) {
                rc = prom_fail(err, cap, line, "bad timestamp");
                break;
            }
        }
        if (!st->have_type) {
            rc = prom_fail(err, cap, line, "sample %s before its # TYPE", name);
            break;
        }
        /* Its family, and no series twice. */
        char full[2048];
        snprintf(full, sizeof full, "%s{%s%s%s}", name, key, le[0] ? ",le=" : "", le);
        for (unsigned i = 0; i < st->nseries; i++)
            if (strcmp(st->series[i], full) == 0) {
                rc = prom_fail(err, cap, line, "series %s twice", full);
                break;
            }
        if (rc)
            break;
        if (st->nseries == st->capseries) {
            unsigned nc = st->capseries ? st->capseries * 2 : 64;
            char **ns = realloc(st->series, nc * sizeof *ns);
            if (!ns) {
                rc = prom_fail(err, cap, line, "no memory");
                break;
            }
            st->series = ns;
            st->capseries = nc;
        }
        st->series[st->nseries++] = strdup(full);
        st->samples++;
        if (strcmp(st->type, "histogram") != 0) {
            if (strcmp(name, st->family) != 0) {
                rc = prom_fail(err, cap, line, "sample %s in family %s", name, st->family);
                break;
            }
            continue;
        }
        size_t fl = strlen(st->family);
        const char *suf = strncmp(name, st->family, fl) == 0 ? name + fl : "";
        if (strcmp(suf, "_bucket") == 0) {
            if (!le[0]) {
                rc = prom_fail(err, cap, line, "bucket without le");
                break;
            }
            if (st->hopen && strcmp(st->hkey, key) != 0) {
                rc = prom_close_hist(st, err, cap, line);
                break;
            }
            double bound;
            const char *be;
            if (!prom_value(le, &bound, &be) || *be) {
                rc = prom_fail(err, cap, line, "bad le '%s'", le);
                break;
            }
            if (!st->hopen) {
                st->hopen = true;
                st->hinf = st->hsum = false;
                snprintf(st->hkey, sizeof st->hkey, "%s", key);
            } else if (st->hinf || !(bound > st->hle)) {
                rc = prom_fail(err, cap, line, "le %s does not increase", le);
                break;
            } else if (v < st->hcount) {
                rc = prom_fail(err, cap, line, "bucket count falls at le=%s", le);
                break;
            }
            st->hle = bound;
            st->hcount = v;
            if (isinf(bound)) {
                st->hinf = true;
                st->hinfcount = v;
            }
        } else if (strcmp(suf, "_sum") == 0 || strcmp(suf, "_count") == 0) {
            if (!st->hopen || strcmp(st->hkey, key) != 0 || !st->hinf) {
                rc = prom_fail(err, cap, line, "%s before its buckets end with +Inf", name);
                break;
            }
            if (suf[1] == 's') {
                st->hsum = true;
            } else {
                if (!st->hsum) {
                    rc = prom_fail(err, cap, line, "_count before _sum");
                    break;
                }
                if (v != st->hinfcount) {
                    rc = prom_fail(err, cap, line, "_count %g differs from +Inf bucket %g", v,
                                   st->hinfcount);
                    break;
                }
                st->hopen = false;
            }
        } else {
            rc = prom_fail(err, cap, line, "sample %s in histogram %s", name, st->family);
            break;
        }
    }
    if (rc == 0)
        rc = prom_close_hist(st, err, cap, line);
    for (unsigned i = 0; i < st->nseries; i++)
        free(st->series[i]);
    free(st->series);
    free(st);
    return rc;
}

#endif /* PROM_CHECK_H */
