/*
 * resp.c — the RESP2 request parser (see resp.h).
 *
 * Design notes.
 *
 * Redis keeps its query buffer and a read position (qb_pos) in the client,
 * and so do we, except that the buffer is the caller's: every position is
 * an offset from the command's first byte, and argv is made pointers only
 * when the command is complete. A multibulk command is read element by
 * element (pos, in_bulk, bulk, left); a line's end is searched from where
 * the last search stopped (scan). Each byte is searched at most once and
 * each argument stored once, so a command costs time linear in its bytes
 * however it is cut into calls.
 *
 * What Redis 7.0 does that we do too, byte for byte:
 *  - Lines are found with strchr on a NUL-terminated buffer: '\n' for an
 *    inline command, '\r' for a multibulk header. A NUL before it hides it,
 *    so such a line never ends; it can only become too long.
 *  - A multibulk header ends at its first '\r'; the byte after it is
 *    skipped unread (it should be '\n'), and so are the two bytes after a
 *    bulk's data. A header is read only when that byte has arrived.
 *  - Numbers follow string2ll: "0", or an optional '-' and a digit 1-9 then
 *    digits; at most 20 bytes, within long long; no '+', spaces or leading
 *    zeros. A count <= 0 is an empty command; a bulk length < 0 an error.
 *  - Inline lines are split as sdssplitargs splits them (split_inline).
 *  - "expected '$', got '%c'" is formatted the way addReplyErrorFormat
 *    does it, with a '\r' or '\n' byte shown as a space.
 *
 * What we decide differently, so that a result never depends on how the
 * bytes were cut into calls:
 *  - "Too big" limits. Redis gives up on a line when no end is in its
 *    buffer and the buffer holds more than PROTO_INLINE_MAX_SIZE bytes, so
 *    a long line that arrives whole passes where the same line in small
 *    reads fails. Here a line fails when more than max_inline bytes come
 *    before its end, however they arrive: what Redis does with small reads.
 *  - max_args bounds the multibulk count (Redis 7.0 allows up to INT_MAX);
 *    an inline command with more words fails as "too big inline request".
 *  - Errors stick until resp_reset: Redis closes the connection after one.
 */
#include "resp.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { IDLE, INLINE, MULTIBULK, FAILED };

#define DEFAULT_MAX_BULK ((size_t)512 * 1024 * 1024)
#define DEFAULT_MAX_INLINE ((size_t)64 * 1024)
#define DEFAULT_MAX_ARGS (1024u * 1024u)
#define KEEP_ARGS 65536           /* argument entries kept between commands */
#define KEEP_TEXT (64 * 1024 + 1) /* inline text bytes kept between commands */
#define FIRST_ARGS 16

static const char ERR_MBULK_BIG[] = "Protocol error: too big mbulk count string";
static const char ERR_MBULK_LEN[] = "Protocol error: invalid multibulk length";
static const char ERR_BULK_BIG[] = "Protocol error: too big bulk count string";
static const char ERR_BULK_LEN[] = "Protocol error: invalid bulk length";
static const char ERR_INLINE_BIG[] = "Protocol error: too big inline request";
static const char ERR_QUOTES[] = "Protocol error: unbalanced quotes in request";
static const char ERR_NOMEM[] = "out of memory";

void resp_init(resp_parser *p, const resp_limits *lim)
{
    memset(p, 0, sizeof *p);
    p->max_bulk = lim && lim->max_bulk ? lim->max_bulk : DEFAULT_MAX_BULK;
    p->max_inline = lim && lim->max_inline ? lim->max_inline : DEFAULT_MAX_INLINE;
    p->max_args = lim && lim->max_args ? lim->max_args : DEFAULT_MAX_ARGS;
    if (p->max_args > INT_MAX)
        p->max_args = INT_MAX; /* argc is an int */
    p->state = IDLE;
}

static void free_args(resp_parser *p)
{
    free(p->argv);
    free(p->argl);
    free(p->off);
    p->argv = NULL;
    p->argl = p->off = NULL;
    p->cap = 0;
}

void resp_free(resp_parser *p)
{
    free_args(p);
    free(p->text);
    p->text = NULL;
    p->text_cap = 0;
    p->argc = 0;
    p->state = IDLE;
}

void resp_reset(resp_parser *p)
{
    p->state = IDLE;
    p->error = NULL;
    p->argc = 0;
    p->seen = 0;
}

size_t resp_need(const resp_parser *p)
{
    return p->need;
}

size_t resp_mem(const resp_parser *p)
{
    return p->cap * (sizeof *p->argv + sizeof *p->argl + sizeof *p->off) + p->text_cap;
}

size_t resp_work(const resp_parser *p)
{
    return p->work;
}

static int fail(resp_parser *p, const char *error)
{
    p->state = FAILED;
    p->error = error;
    p->argc = 0;
    return RESP_ERR;
}

/* Starts a new command of the given form; storage that the last command
 * made large is given back. */
static void begin(resp_parser *p, int state)
{
    if (p->cap > KEEP_ARGS)
        free_args(p);
    if (p->text_cap > KEEP_TEXT) {
        free(p->text);
        p->text = NULL;
        p->text_cap = 0;
    }
    p->state = state;
    p->argc = 0;
    p->pos = p->scan = 0;
    p->nul = p->in_bulk = 0;
    p->left = 0;
}

/* Stores an argument (its offset and length). The arrays grow by doubling,
 * never past `most` entries: only arguments that have arrived take room. */
static int push_arg(resp_parser *p, size_t off, size_t len, size_t most)
{
    if ((size_t)p->argc == p->cap) {
        size_t n = p->cap ? 2 * p->cap : FIRST_ARGS;
        if (n > most)
            n = most;
        if (n > SIZE_MAX / sizeof *p->off)
            return -1;
        const char **v = realloc(p->argv, n * sizeof *v);
        if (v)
            p->argv = v;
        size_t *l = realloc(p->argl, n * sizeof *l);
        if (l)
            p->argl = l;
        size_t *o = realloc(p->off, n * sizeof *o);
        if (o)
            p->off = o;
        if (!v || !l || !o)
            return -1; /* the arrays that grew stay, cap does not */
        p->cap = n;
    }
    p->off[p->argc] = off;
    p->argl[p->argc] = len;
    p->argc++;
    p->work++;
    return 0;
}

/* Looks for the end of the line that starts at `start`: its first `stop`
 * byte, searching on from p->scan. Returns 1 with *eol its offset, 0 when it
 * has not arrived yet, -1 when more than max_inline bytes came before it.
 * As Redis's strchr, a NUL ends the search for good (p->nul). */
static int find_eol(resp_parser *p, const char *buf, size_t len, size_t start, char stop,
                    size_t *eol)
{
    if (!p->nul) {
        /* The end must come within max_inline + 1 bytes: look no further. */
        size_t to = len - start > p->max_inline ? start + p->max_inline + 1 : len;
        size_t from = p->scan;
        const char *hit = memchr(buf + from, stop, to - from);
        size_t end = hit ? (size_t)(hit - buf) : to;
        p->work += end - from;
        p->scan = end;
        if (memchr(buf + from, '\0', end - from))
            p->nul = 1;
        else if (hit) {
            *eol = end;
            return 1;
        }
    }
    return len - start > p->max_inline ? -1 : 0;
}

/* Redis's string2ll (see the notes above). */
int resp_str2ll(const char *s, size_t n, long long *out)
{
    if (n == 0 || n > 20)
        return 0;
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return 1;
    }
    size_t i = s[0] == '-';
    if (i == n || s[i] < '1' || s[i] > '9')
        return 0;
    unsigned long long v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (ULLONG_MAX - d) / 10)
            return 0;
        v = 10 * v + d;
    }
    if (s[0] == '-') {
        if (v > (unsigned long long)LLONG_MAX + 1)
            return 0;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > LLONG_MAX)
            return 0;
        *out = (long long)v;
    }
    return 1;
}

static int is_space(int c) /* isspace in the C locale, which Redis runs in */
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Splits line[0..n) into arguments as sdssplitargs does, into p->text (each
 * argument NUL-terminated) and the argument arrays. The line holds no NUL
 * (find_eol saw to it), so "past the end" reads as Redis's terminating NUL:
 *  - blanks (isspace, so also \v and \f) separate arguments, but inside an
 *    unquoted argument only ' ', \t, \r and \n end it;
 *  - a '"' opens a quoted part, even in the middle of an argument: in it
 *    \xHH (two hex digits), \n \r \t \b \a, and a backslash before any
 *    other byte stands for that byte; a '\'' opens a part in which only \'
 *    is an escape;
 *  - a closing quote must be followed by a blank or the end.
 * Returns 0, or RESP_ERR after fail().
 */
static int split_inline(resp_parser *p, const char *line, size_t n)
{
    /* Every argument takes at least one byte of the line and, unless it is
     * the last, the blank after it: its text and NUL fit in n + 1 bytes. */
    if (p->text_cap < n + 1) {
        char *t = realloc(p->text, n + 1);
        if (!t)
            return fail(p, ERR_NOMEM);
        p->text = t;
        p->text_cap = n + 1;
    }
    char *out = p->text;
    size_t i = 0, o = 0;
#define AT(k) ((k) < n ? (unsigned char)line[k] : 0)
    for (;;) {
        while (i < n && is_space(AT(i)))
            i++;
        if (i == n)
            break;
        size_t first = o;
        int dq = 0, sq = 0, done = 0;
        while (!done) {
            int c = AT(i);
            if (dq) {
                int hi, lo;
                if (c == '\\' && AT(i + 1) == 'x' && (hi = hex_value(AT(i + 2))) >= 0 &&
                    (lo = hex_value(AT(i + 3))) >= 0) {
                    out[o++] = (char)(hi * 16 + lo);
                    i += 3;
                } else if (c == '\\' && AT(i + 1)) {
                    i++;
                    c = AT(i);
                    out[o++] = (char)(c == 'n'   ? '\n'
                                      : c == 'r' ? '\r'
                                      : c == 't' ? '\t'
                                      : c == 'b' ? '\b'
                                      : c == 'a' ? '\a'
                                                 : c);
                } else if (c == '"') {
                    if (AT(i + 1) && !is_space(AT(i + 1)))
                        return fail(p, ERR_QUOTES);
                    done = 1;
                } else if (!c) {
                    return fail(p, ERR_QUOTES); /* unterminated */
                } else {
                    out[o++] = (char)c;
                }
            } else if (sq) {
                if (c == '\\' && AT(i + 1) == '\'') {
                    i++;
                    out[o++] = '\'';
                } else if (c == '\'') {
                    if (AT(i + 1) && !is_space(AT(i + 1)))
                        return fail(p, ERR_QUOTES);
                    done = 1;
                } else if (!c) {
                    return fail(p, ERR_QUOTES);
                } else {
                    out[o++] = (char)c;
                }
            } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || !c) {
                done = 1;
            } else if (c == '"') {
                dq = 1;
            } else if (c == '\'') {
                sq = 1;
            } else {
                out[o++] = (char)c;
            }
            if (i < n)
                i++;
        }
        out[o++] = '\0';
        if ((uint32_t)p->argc == p->max_args)
            return fail(p, ERR_INLINE_BIG);
        if (push_arg(p, first, o - 1 - first, SIZE_MAX) < 0)
            return fail(p, ERR_NOMEM);
    }
#undef AT
    return 0;
}

static int parse_inline(resp_parser *p, const char *buf, size_t len, size_t *used)
{
    size_t eol;
    int rc = find_eol(p, buf, len, 0, '\n', &eol);
    if (rc < 0)
        return fail(p, ERR_INLINE_BIG);
    if (rc == 0)
        return RESP_MORE;
    size_t n = eol > 0 && buf[eol - 1] == '\r' ? eol - 1 : eol;
    if (split_inline(p, buf, n) < 0)
        return RESP_ERR;
    for (int i = 0; i < p->argc; i++)
        p->argv[i] = p->text + p->off[i];
    *used = eol + 1;
    return RESP_CMD;
}

/* Reads the header line at `start`: `kind` ('*' or '$'), a number, '\r' and
 * one more byte. Returns 1 with *ok (the number is valid), *value and *next
 * (the offset after it), 0 if it has not all arrived, or RESP_ERR after
 * fail(). */
static int read_header(resp_parser *p, const char *buf, size_t len, size_t start,
                       char kind, int *ok, long long *value, size_t *next)
{
    size_t eol;
    int rc = find_eol(p, buf, len, start, '\r', &eol);
    if (rc < 0)
        return fail(p, kind == '*' ? ERR_MBULK_BIG : ERR_BULK_BIG);
    if (rc == 0 || eol + 1 == len)
        return 0;
    unsigned char c = (unsigned char)buf[start];
    if (c != kind) { /* only ever a bulk's: a count's is why we are here */
        snprintf(p->errbuf, sizeof p->errbuf, "Protocol error: expected '$', got '%c'",
                 c == '\r' || c == '\n' ? ' ' : c);
        return fail(p, p->errbuf);
    }
    *ok = resp_str2ll(buf + start + 1, eol - start - 1, value);
    *next = eol + 2;
    return 1;
}

static int parse_multibulk(resp_parser *p, const char *buf, size_t len, size_t *used)
{
    long long v;
    int rc, ok;
    if (p->left == 0) { /* the count */
        if ((rc = read_header(p, buf, len, 0, '*', &ok, &v, &p->pos)) <= 0)
            return rc;
        if (!ok || v > (long long)p->max_args)
            return fail(p, ERR_MBULK_LEN);
        if (v <= 0) {
            *used = p->pos;
            return RESP_CMD; /* argc 0 */
        }
        p->left = v;
        p->scan = p->pos;
    }
    while (p->left > 0) {
        if (!p->in_bulk) {
            size_t next;
            if ((rc = read_header(p, buf, len, p->pos, '$', &ok, &v, &next)) <= 0)
                return rc;
            if (!ok || v < 0 || (unsigned long long)v > p->max_bulk)
                return fail(p, ERR_BULK_LEN);
            p->bulk = (size_t)v;
            p->in_bulk = 1;
            p->pos = next;
        }
        /* The bulk, then 2 bytes that Redis skips unread. */
        size_t have = len - p->pos;
        if (have < 2 || have - 2 < p->bulk) {
            if (have > p->bulk)
                p->need = 2 - (have - p->bulk);
            else
                p->need = p->bulk - have > SIZE_MAX - 2 ? SIZE_MAX : p->bulk - have + 2;
            return RESP_MORE;
        }
        if (push_arg(p, p->pos, p->bulk, (size_t)p->argc + (size_t)p->left) < 0)
            return fail(p, ERR_NOMEM);
        p->pos += p->bulk + 2;
        p->scan = p->pos;
        p->in_bulk = 0;
        p->left--;
    }
    for (int i = 0; i < p->argc; i++)
        p->argv[i] = buf + p->off[i];
    *used = p->pos;
    return RESP_CMD;
}

int resp_parse(resp_parser *p, const char *buf, size_t len, size_t *used)
{
    *used = 0;
    p->need = 0;
    if (p->state == FAILED)
        return RESP_ERR;
    if (len < p->seen)
        p->state = IDLE; /* not the bytes of last time: start over */
    p->seen = len;
    p->work++;
    if (p->state == IDLE) {
        if (len == 0)
            return RESP_MORE;
        begin(p, buf[0] == '*' ? MULTIBULK : INLINE);
    }
    int rc = p->state == INLINE ? parse_inline(p, buf, len, used)
                                : parse_multibulk(p, buf, len, used);
    if (rc == RESP_CMD) {
        p->state = IDLE;
        p->seen = 0;
    }
    return rc;
}
