/*
 * test_resp.c — the kvstore example's RESP2 request parser
 * (examples/kvstore/resp.c, compiled in).
 *
 * Tables of requests and what Redis 7.0 makes of them (commands, or its
 * exact error texts); every valid stream fed in every split and at random
 * cuts, from a buffer that moves between calls; a 100,000-argument command
 * fed a byte at a time in linear work; no memory for counts and lengths a
 * client only claims; and a seeded mutation test: a million mutated
 * streams, each fed whole and in random chunks, with identical results and
 * every invariant held (RESP_SEED and RESP_ITERS override the seed and the
 * count).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "resp.h"
#include "resp_feed.h"

/* A string literal with its length (it may hold NULs). */
#define L(s) s, sizeof(s) - 1

/* Renders one resp_parse result: each argument in double quotes (bytes
 * outside printable ASCII, '"' and '\\' as \xHH) then " /used"; "(none)
 * /used" for argc 0; "more" or "more need N"; "err: text". */
static void render(const resp_parser *p, int rc, size_t used, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = 0;
#define PUT(...)                                                                         \
    (o += (size_t)snprintf(o < cap ? out + o : NULL, o < cap ? cap - o : 0, __VA_ARGS__))
    if (rc == RESP_ERR) {
        PUT("err: %s", p->error);
    } else if (rc == RESP_MORE) {
        if (resp_need(p))
            PUT("more need %zu", resp_need(p));
        else
            PUT("more");
    } else {
        if (p->argc == 0)
            PUT("(none) ");
        for (int i = 0; i < p->argc; i++) {
            PUT("\"");
            for (size_t j = 0; j < p->argl[i]; j++) {
                unsigned char c = (unsigned char)p->argv[i][j];
                if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
                    PUT("\\x%02x", c);
                else
                    PUT("%c", c);
            }
            PUT("\" ");
        }
        PUT("/%zu", used);
    }
#undef PUT
}

/* Parses in[0..len) once, from a fresh parser with the limits `lim`. */
static void parse_once(const resp_limits *lim, const char *in, size_t len, char *out,
                       size_t cap)
{
    resp_parser p;
    resp_init(&p, lim);
    char *copy = malloc(len + 1); /* exactly len bytes for ASan */
    assert_non_null(copy);
    memcpy(copy, in, len);
    size_t used = 99;
    int rc = resp_parse(&p, copy, len, &used);
    if (rc != RESP_CMD)
        assert_int_equal(used, 0);
    render(&p, rc, used, out, cap);
    free(copy);
    resp_free(&p);
}

typedef struct req {
    const char *in;
    size_t len;
    const char *want;
} req;

static void check_table(const resp_limits *lim, const req *t, size_t n)
{
    char got[512];
    for (size_t i = 0; i < n; i++) {
        parse_once(lim, t[i].in, t[i].len, got, sizeof got);
        if (strcmp(got, t[i].want) != 0)
            fail_msg("request %zu: got <%s>, want <%s>", i, got, t[i].want);
    }
}

/* Valid multibulk commands, binary-safe bulks, what Redis does not check. */
static void test_multibulk(void **state)
{
    (void)state;
    static const req t[] = {
        {L("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n"),
         "\"SET\" \"k\" \"value\" /31"},
        {L("*1\r\n$0\r\n\r\n"), "\"\" /10"},
        /* Bulks are binary: NUL, CR LF, '$' and '*' inside are data. */
        {L("*2\r\n$7\r\na\0b\r\n$*\r\n$2\r\n\r\n\r\n"),
         "\"a\\x00b\\x0d\\x0a$*\" \"\\x0d\\x0a\" /25"},
        /* A header ends at its '\r'; the byte after it, and the two after a
         * bulk, are skipped unread. */
        {L("*1\rX$3\rYfooZZ"), "\"foo\" /13"},
        {L("*1\r\n$3\r\nfoo\n\n"), "\"foo\" /13"},
        /* Incomplete: need says how much of the bulk is missing. */
        {L("*2\r\n$1\r\na\r\n"), "more"},
        {L("*2\r\n$1\r\na\r\n$5\r\nab"), "more need 5"},
        {L("*1\r\n$3\r\nfoo\r"), "more need 1"},
        {L("*1\r\n$3\r\nfoo"), "more need 2"},
        {L("*1\r\n$3\r"), "more"}, /* the byte after '\r' has not come */
        {L("*1\r"), "more"},
        {L("*"), "more"},
        /* Counts <= 0: empty commands, consumed. */
        {L("*0\r\n"), "(none) /4"},
        {L("*-1\r\n"), "(none) /5"},
        {L("*-10\r\n$3\r\n"), "(none) /6"},
        {L("*-9223372036854775808\r\n"), "(none) /23"},
        {L("*1048576\r\n"), "more"}, /* the largest count */
    };
    check_table(NULL, t, sizeof t / sizeof t[0]);

    /* Zero-copy: arguments point into the caller's buffer. */
    char buf[] = "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    resp_parser p;
    resp_init(&p, NULL);
    size_t used;
    assert_int_equal(resp_parse(&p, buf, sizeof buf - 1, &used), RESP_CMD);
    assert_int_equal(used, sizeof buf - 1);
    assert_int_equal(p.argc, 2);
    assert_ptr_equal(p.argv[0], buf + 8);
    assert_ptr_equal(p.argv[1], buf + 17);
    assert_int_equal(p.argl[1], 1);
    resp_free(&p);
}

/* Several commands in one buffer, each dropped before the next call. */
static void test_pipelined(void **state)
{
    (void)state;
    static const char in[] = "*1\r\n$4\r\nPING\r\nECHO hi\r\n*0\r\n\r\n"
                             "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$3\r\nfo";
    static const char *const want[] = {"\"PING\" /14",      "\"ECHO\" \"hi\" /9",
                                       "(none) /4",         "(none) /2",
                                       "\"GET\" \"k\" /20", "more need 3"};
    resp_parser p;
    resp_init(&p, NULL);
    size_t at = 0, used;
    char got[128];
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int rc = resp_parse(&p, in + at, sizeof in - 1 - at, &used);
        render(&p, rc, used, got, sizeof got);
        assert_string_equal(got, want[i]);
        at += used;
    }
    resp_free(&p);
}

/* Inline commands: split as sdssplitargs splits them. */
static void test_inline(void **state)
{
    (void)state;
    static const req t[] = {
        {L("PING\r\n"), "\"PING\" /6"},
        {L("PING\n"), "\"PING\" /5"},
        {L("  set  a   b \r\n"), "\"set\" \"a\" \"b\" /15"},
        {L("$3\r\n"), "\"$3\" /4"},
        {L("SET k \"hello world\"\r\n"), "\"SET\" \"k\" \"hello world\" /21"},
        /* Escapes in double quotes. */
        {L("\"\\x41\\x4a\\x4F\\n\\r\\t\\b\\a\\\\\\\"\\q\"\n"),
         "\"AJO\\x0a\\x0d\\x09\\x08\\x07\\x5c\\x22q\" /31"},
        {L("\"\\x4g\" \"\\x\" \"\\x4\"\n"), "\"x4g\" \"x\" \"x4\" /18"},
        {L("\"\\xff\\x00\"\n"), "\"\\xff\\x00\" /11"},
        /* Single quotes: only \' is an escape. */
        {L("'it\\'s' 'a\\nb'\n"), "\"it's\" \"a\\x5cnb\" /15"},
        /* Quotes open anywhere in an argument; empty ones are arguments. */
        {L("foo\"bar baz\" x\n"), "\"foobar baz\" \"x\" /15"},
        {L("\"\" ''\n"), "\"\" \"\" /6"},
        /* Blanks: \v and \f separate only before an argument; inside one,
         * only space, \t, \r and \n end it. */
        {L("a\vb\n"), "\"a\\x0bb\" /4"},
        {L("\v\fa\n"), "\"a\" /4"},
        {L("a\rb\tc\n"), "\"a\" \"b\" \"c\" /6"},
        {L("\"a\"\vb\n"), "\"a\" \"b\" /6"},
        {L("PING\r\r\n"), "\"PING\" /7"},
        {L("\xff\xfe\n"), "\"\\xff\\xfe\" /3"},
        /* Empty and blank lines: commands of no arguments. */
        {L("\r\n"), "(none) /2"},
        {L("\n"), "(none) /1"},
        {L(" \t \r\n"), "(none) /5"},
        {L("PING"), "more"},
        {L("PING\r"), "more"},
        /* Unbalanced quotes. */
        {L("\"a\"b\n"), "err: Protocol error: unbalanced quotes in request"},
        {L("'a'b\n"), "err: Protocol error: unbalanced quotes in request"},
        {L("\"abc\n"), "err: Protocol error: unbalanced quotes in request"},
        {L("'abc\r\n"), "err: Protocol error: unbalanced quotes in request"},
        {L("\"abc\\\"\n"), "err: Protocol error: unbalanced quotes in request"},
        {L("x \"a\\\n"), "err: Protocol error: unbalanced quotes in request"},
    };
    check_table(NULL, t, sizeof t / sizeof t[0]);
}

/* Every protocol error, with Redis's text. */
static void test_errors(void **state)
{
    (void)state;
#define MBULK_LEN "err: Protocol error: invalid multibulk length"
#define BULK_LEN "err: Protocol error: invalid bulk length"
    static const req t[] = {
        {L("*abc\r\n"), MBULK_LEN},
        {L("*+1\r\n"), MBULK_LEN},
        {L("*01\r\n"), MBULK_LEN},
        {L("* 1\r\n"), MBULK_LEN},
        {L("*1 \r\n"), MBULK_LEN},
        {L("*\r\n"), MBULK_LEN},
        {L("*-\r\n"), MBULK_LEN},
        {L("*-0\r\n"), MBULK_LEN},
        {L("*1048577\r\n"), MBULK_LEN},
        {L("*9223372036854775807\r\n"), MBULK_LEN},
        {L("*-9223372036854775809\r\n"), MBULK_LEN},
        {L("*99999999999999999999\r\n"), MBULK_LEN},
        {L("*123456789012345678901\r\n"), MBULK_LEN},
        {L("*1\r\nfoo\r\n"), "err: Protocol error: expected '$', got 'f'"},
        {L("*1\r\n\r\n"), "err: Protocol error: expected '$', got ' '"},
        {L("*1\r\n\nfoo\r\n"), "err: Protocol error: expected '$', got ' '"},
        {L("*2\r\n$1\r\na\r\n*1\r\n"), "err: Protocol error: expected '$', got '*'"},
        {L("*1\r\n\xe9\r\n"), "err: Protocol error: expected '$', got '\xe9'"},
        {L("*1\r\n$-1\r\n"), BULK_LEN},
        {L("*1\r\n$+3\r\n"), BULK_LEN},
        {L("*1\r\n$03\r\n"), BULK_LEN},
        {L("*1\r\n$\r\n"), BULK_LEN},
        {L("*1\r\n$3x\r\n"), BULK_LEN},
        {L("*1\r\n$ 3\r\n"), BULK_LEN},
        {L("*1\r\n$536870913\r\n"), BULK_LEN},
        {L("*1\r\n$9223372036854775808\r\n"), BULK_LEN},
        {L("*1\r\n$536870912\r\n"), "more need 536870914"}, /* the longest */
        /* Redis finds lines with strchr: a NUL hides the end. */
        {L("*1\0\r\n"), "more"},
        {L("*1\r\n$3\0\r\nfoo\r\n"), "more"},
        {L("PING\0\r\n"), "more"},
    };
    check_table(NULL, t, sizeof t / sizeof t[0]);
#undef MBULK_LEN
#undef BULK_LEN

    /* Lines of more than 64 KiB before their end, whole or not. */
    enum { MAX = 64 * 1024 };
    char *b = malloc(MAX + 16), got[256];
    assert_non_null(b);
    memset(b, 'a', MAX + 16);
    parse_once(NULL, b, MAX, got, sizeof got);
    assert_string_equal(got, "more");
    parse_once(NULL, b, MAX + 1, got, sizeof got);
    assert_string_equal(got, "err: Protocol error: too big inline request");
    b[MAX] = '\n'; /* exactly 64 KiB, then the end: fine */
    resp_parser p;
    resp_init(&p, NULL);
    size_t used;
    assert_int_equal(resp_parse(&p, b, MAX + 1, &used), RESP_CMD);
    assert_int_equal(used, MAX + 1);
    assert_int_equal(p.argc, 1);
    assert_int_equal(p.argl[0], MAX);
    resp_free(&p);
    b[MAX] = 'a';
    b[MAX + 1] = '\n';
    parse_once(NULL, b, MAX + 2, got, sizeof got);
    assert_string_equal(got, "err: Protocol error: too big inline request");
    b[4] = '\0'; /* a NUL: the line never ends, and grows too long */
    parse_once(NULL, b, MAX + 2, got, sizeof got);
    assert_string_equal(got, "err: Protocol error: too big inline request");

    memset(b, '1', MAX + 16);
    b[0] = '*';
    parse_once(NULL, b, MAX, got, sizeof got);
    assert_string_equal(got, "more");
    parse_once(NULL, b, MAX + 1, got, sizeof got);
    assert_string_equal(got, "err: Protocol error: too big mbulk count string");
    b[MAX + 1] = '\r'; /* "*111...\r" whole: still too long */
    b[MAX + 2] = '\n';
    parse_once(NULL, b, MAX + 3, got, sizeof got);
    assert_string_equal(got, "err: Protocol error: too big mbulk count string");

    memset(b, '1', MAX + 16);
    memcpy(b, "*1\r\n$", 5);
    parse_once(NULL, b, 4 + MAX, got, sizeof got);
    assert_string_equal(got, "more");
    parse_once(NULL, b, 4 + MAX + 1, got, sizeof got);
    assert_string_equal(got, "err: Protocol error: too big bulk count string");
    free(b);
}

/* Limits other than the defaults. */
static void test_limits(void **state)
{
    (void)state;
    const resp_limits lim = {.max_bulk = 10, .max_inline = 8, .max_args = 2};
    static const req t[] = {
        {L("*2\r\n$10\r\n0123456789\r\n$0\r\n\r\n"), "\"0123456789\" \"\" /27"},
        {L("*1\r\n$11\r\n"), "err: Protocol error: invalid bulk length"},
        {L("*3\r\n"), "err: Protocol error: invalid multibulk length"},
        {L("12345678"), "more"},
        {L("12345678\n"), "\"12345678\" /9"},
        {L("123456789"), "err: Protocol error: too big inline request"},
        {L("a b\n"), "\"a\" \"b\" /4"},
        {L("a b c\n"), "err: Protocol error: too big inline request"},
        {L("*1234567"), "more"},
        {L("*12345678"), "err: Protocol error: too big mbulk count string"},
        {L("*1\r\n$1234567"), "more"},
        {L("*1\r\n$12345678"), "err: Protocol error: too big bulk count string"},
    };
    check_table(&lim, t, sizeof t / sizeof t[0]);

    /* Raised limits. */
    const resp_limits big = {.max_bulk = (size_t)1 << 40, .max_args = 2000000000u};
    static const req t2[] = {
        {L("*2000000000\r\n"), "more"},
        {L("*2000000001\r\n"), "err: Protocol error: invalid multibulk length"},
        {L("*1\r\n$1099511627776\r\n"), "more need 1099511627778"},
        {L("*1\r\n$1099511627777\r\n"), "err: Protocol error: invalid bulk length"},
    };
    check_table(&big, t2, sizeof t2 / sizeof t2[0]);
}

/* An error sticks until resp_reset; then parsing starts afresh. */
static void test_error_sticks(void **state)
{
    (void)state;
    resp_parser p;
    resp_init(&p, NULL);
    size_t used;
    assert_int_equal(resp_parse(&p, L("*x\r\n"), &used), RESP_ERR);
    assert_int_equal(resp_parse(&p, L("PING\r\n"), &used), RESP_ERR);
    assert_string_equal(p.error, "Protocol error: invalid multibulk length");
    resp_reset(&p);
    assert_null(p.error);
    assert_int_equal(resp_parse(&p, L("PING\r\n"), &used), RESP_CMD);
    assert_int_equal(p.argc, 1);
    resp_free(&p);
    /* A parser may be initialised again after resp_free. */
    resp_init(&p, NULL);
    assert_int_equal(resp_parse(&p, L("*1\r\n$1\r\nx\r\n"), &used), RESP_CMD);
    resp_free(&p);
}

/* ---- resumption ------------------------------------------------------------ */

static const req streams[] = {
    {L("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n"), NULL},
    {L("*2\r\n$7\r\na\0b\r\n$*\r\n$2\r\n\r\n\r\n*1\rX$3\rYfooZZ"), NULL},
    {L("*1\r\n$4\r\nPING\r\nECHO hi\r\n*0\r\n\r\n*-1\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
     NULL},
    {L("SET k \"a\\x41\\n b\" 'it\\'s'\r\n  \r\nfoo\"bar baz\" x\n\n"), NULL},
    {L("*1\r\n$10\r\n0123456789\r\n*1\r\n$3\r\nfo"), NULL},
    {L("PING\r\n*1\r\n$3\r\nfoo\r\n\"unbalanced\n"), NULL},
    {L("*2\r\n$1\r\na\r\n*1\r\n"), NULL},
    {L("*1\r\n$1\r\na\r\n*1\0\r\n$1\r\n"), NULL},
    {L("*2\r\n$1\r\na\r\n$-1\r\n"), NULL},
};

static void feed_ok(const resp_limits *lim, const char *in, size_t len,
                    const size_t *cuts, size_t ncuts, feed_log *l)
{
    const char *bad = feed(lim, in, len, cuts, ncuts, l);
    if (bad)
        fail_msg("%s", bad);
}

static void assert_same_log(const feed_log *a, const feed_log *b, const char *what)
{
    if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0)
        fail_msg("%s: a different result from the stream fed whole", what);
}

/* Every stream fed in every two-way split, in every three-way split, a byte
 * at a time and in random chunks gives what it gives fed whole. */
static void test_resume_splits(void **state)
{
    (void)state;
    uint64_t rng = 42;
    for (size_t s = 0; s < sizeof streams / sizeof streams[0]; s++) {
        const char *in = streams[s].in;
        size_t len = streams[s].len;
        feed_log whole = {0}, cut = {0};
        feed_ok(NULL, in, len, NULL, 0, &whole);
        for (size_t i = 0; i <= len; i++)
            for (size_t j = i; j <= len; j++) {
                size_t cuts[2] = {i, j};
                cut.len = 0;
                feed_ok(NULL, in, len, cuts, 2, &cut);
                assert_same_log(&whole, &cut, "split");
            }
        size_t *cuts = malloc(len * sizeof *cuts);
        for (size_t i = 0; i < len; i++)
            cuts[i] = i + 1;
        cut.len = 0;
        feed_ok(NULL, in, len, cuts, len, &cut);
        assert_same_log(&whole, &cut, "byte at a time");
        for (int round = 0; round < 200; round++) {
            size_t n = 0, at = 0;
            while (at < len) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                at += 1 + (rng >> 33) % 7;
                cuts[n++] = at < len ? at : len;
            }
            cut.len = 0;
            feed_ok(NULL, in, len, cuts, n, &cut);
            assert_same_log(&whole, &cut, "random chunks");
        }
        free(cuts);
        free(whole.data);
        free(cut.data);
    }
}

/* A command of 100,000 arguments, and a long inline line, fed a byte at a
 * time: the parser's work (one per call, per byte searched and per
 * argument) stays linear in the bytes. A parser that started over at every
 * call would do some 10^11 units here. */
static void test_linear_time(void **state)
{
    (void)state;
    enum { N = 100000 };
    size_t len = 0, cap = 16 + (size_t)N * 12;
    char *b = malloc(cap);
    assert_non_null(b);
    len += (size_t)snprintf(b, cap, "*%d\r\n", N);
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(b + len, cap - len, "$2\r\n%02d\r\n", i % 100);
    resp_parser p;
    resp_init(&p, NULL);
    size_t used = 0;
    clock_t t0 = clock();
    for (size_t n = 1; n < len; n++)
        assert_int_equal(resp_parse(&p, b, n, &used), RESP_MORE);
    assert_int_equal(resp_parse(&p, b, len, &used), RESP_CMD);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_int_equal(used, len);
    assert_int_equal(p.argc, N);
    assert_memory_equal(p.argv[N - 1], "99", 2);
    print_message("%d arguments, %zu bytes a byte at a time: work %zu, %.3f s\n", N, len,
                  resp_work(&p), secs);
    assert_true(resp_work(&p) <= 3 * len);
    resp_free(&p);

    /* An inline line of 60,000 bytes. */
    len = 60000;
    memset(b, 'x', len);
    for (size_t i = 7; i < len; i += 8)
        b[i] = ' ';
    b[len - 1] = '\n';
    resp_init(&p, NULL);
    for (size_t n = 1; n < len; n++)
        assert_int_equal(resp_parse(&p, b, n, &used), RESP_MORE);
    assert_int_equal(resp_parse(&p, b, len, &used), RESP_CMD);
    assert_int_equal(p.argc, len / 8);
    assert_true(resp_work(&p) <= 3 * len);
    resp_free(&p);
    free(b);
}

/* Counts and lengths that are only claimed cost nothing; arguments that
 * arrive cost in proportion; a large command's storage is given back. */
static void test_no_alloc_by_claim(void **state)
{
    (void)state;
    const resp_limits lim = {.max_bulk = (size_t)4 << 30, .max_args = 1000000000u};
    resp_parser p;
    resp_init(&p, &lim);
    size_t used;
    char b[64];
    int n = snprintf(b, sizeof b, "*1000000000\r\n$1073741824\r\n");
    assert_int_equal(resp_parse(&p, b, 13, &used), RESP_MORE);
    assert_int_equal(resp_mem(&p), 0);
    assert_int_equal(resp_parse(&p, b, (size_t)n, &used), RESP_MORE);
    assert_int_equal(resp_mem(&p), 0);
    assert_int_equal(resp_need(&p), 1073741826);
    resp_free(&p);

    /* 1,000 arguments of a claimed 10^9: storage for ~1,000. */
    resp_init(&p, &lim);
    size_t cap = 32 + 1000 * 8;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t len = (size_t)snprintf(s, cap, "*1000000000\r\n");
    for (int i = 0; i < 1000; i++)
        len += (size_t)snprintf(s + len, cap - len, "$1\r\nx\r\n");
    assert_int_equal(resp_parse(&p, s, len, &used), RESP_MORE);
    size_t entry = sizeof(char *) + 2 * sizeof(size_t);
    assert_true(resp_mem(&p) >= 1000 * entry);
    assert_true(resp_mem(&p) <= 2048 * entry);
    resp_free(&p);
    free(s);

    /* After a command of 100,000 arguments, the next one gives the storage
     * back; small commands keep theirs. */
    enum { N = 100000 };
    cap = 16 + (size_t)N * 7;
    s = malloc(cap);
    assert_non_null(s);
    len = (size_t)snprintf(s, cap, "*%d\r\n", N);
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(s + len, cap - len, "$1\r\nx\r\n");
    resp_init(&p, NULL);
    assert_int_equal(resp_parse(&p, s, len, &used), RESP_CMD);
    assert_true(resp_mem(&p) >= (size_t)N * entry);
    assert_int_equal(resp_parse(&p, L("*1\r\n$1\r\nx\r\n"), &used), RESP_CMD);
    size_t small = resp_mem(&p);
    assert_true(small <= 16 * entry);
    assert_int_equal(resp_parse(&p, L("PING\r\n"), &used), RESP_CMD);
    assert_int_equal(resp_parse(&p, L("*1\r\n$1\r\nx\r\n"), &used), RESP_CMD);
    assert_true(resp_mem(&p) <= small + 64);
    resp_free(&p);
    assert_int_equal(resp_mem(&p), 0);
    free(s);
}

/* ---- the seeded mutation test --------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void) /* splitmix64 */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t below(size_t n) /* 0 .. n-1; n > 0 */
{
    return (size_t)(rnd() % n);
}

enum { MUT_MAX = 512 };

typedef struct mbuf {
    char b[MUT_MAX];
    size_t len;
} mbuf;

/* Inserts n bytes at `at` (as many as fit). */
static void m_insert(mbuf *m, size_t at, const char *s, size_t n)
{
    if (n > MUT_MAX - m->len)
        n = MUT_MAX - m->len;
    memmove(m->b + at + n, m->b + at, m->len - at);
    memcpy(m->b + at, s, n);
    m->len += n;
}

static void m_add(mbuf *m, const char *s, size_t n)
{
    m_insert(m, m->len, s, n);
}

static void m_str(mbuf *m, const char *s)
{
    m_add(m, s, strlen(s));
}

/* The bytes mutations like most: the protocol's own, and some others. */
static char pick_byte(void)
{
    static const char fav[] = "\r\n\r\n$*\"'\\ \t\v\0-+0123456789xabc\xff";
    return below(4) ? fav[below(sizeof fav - 1)] : (char)below(256);
}

static void gen_word(mbuf *m)
{
    size_t n = below(6);
    switch (below(4)) {
    case 0: /* double quotes, with escapes */
        m_str(m, "\"");
        for (size_t i = 0; i < n; i++) {
            static const char *const esc[] = {"\\n",  "\\x41", "\\\"", "\\\\", "\\q",
                                              "\\xg", " ",     "a",    "'"};
            m_str(m, below(2) ? esc[below(9)] : "z");
        }
        m_str(m, "\"");
        break;
    case 1:
        m_str(m, "'");
        for (size_t i = 0; i < n; i++)
            m_str(m, below(3) ? "b" : below(2) ? "\\'" : "\"");
        m_str(m, "'");
        break;
    default:
        for (size_t i = 0; i <= n; i++) {
            char c = (char)('a' + below(26));
            m_add(m, &c, 1);
        }
    }
}

/* A valid command: multibulk, inline, an empty line, "*0" or "*-1". */
static void gen_command(mbuf *m)
{
    char h[32];
    switch (below(10)) {
    case 0:
        m_str(m, below(2) ? "\r\n" : " \n");
        return;
    case 1:
        m_str(m, below(2) ? "*0\r\n" : "*-1\r\n");
        return;
    case 2:
    case 3:
    case 4: { /* inline */
        size_t n = 1 + below(4);
        for (size_t i = 0; i < n; i++) {
            if (i)
                m_str(m, below(4) ? " " : "\t ");
            gen_word(m);
        }
        m_str(m, below(3) ? "\r\n" : "\n");
        return;
    }
    default: { /* multibulk */
        size_t n = 1 + below(4);
        snprintf(h, sizeof h, "*%zu\r\n", n);
        m_str(m, h);
        for (size_t i = 0; i < n; i++) {
            size_t k = below(4) ? below(8) : below(40);
            snprintf(h, sizeof h, "$%zu\r\n", k);
            m_str(m, h);
            for (size_t j = 0; j < k; j++) {
                char c = below(3) ? (char)('a' + below(26)) : pick_byte();
                m_add(m, &c, 1);
            }
            m_str(m, "\r\n");
        }
    }
    }
}

/* A number Redis will find hard: huge, negative, or not quite a number. */
static const char *odd_number(void)
{
    static const char *const nums[] = {"99999999999999999999",
                                       "9223372036854775807",
                                       "9223372036854775808",
                                       "18446744073709551616",
                                       "4294967296",
                                       "2147483648",
                                       "1073741824",
                                       "536870913",
                                       "1048577",
                                       "-1",
                                       "-0",
                                       "-9223372036854775808",
                                       "-9223372036854775809",
                                       "0",
                                       "00",
                                       "+1",
                                       " 1",
                                       "1 ",
                                       "",
                                       "-",
                                       "1e3",
                                       "0x10",
                                       "123456789012345678901"};
    return nums[below(sizeof nums / sizeof nums[0])];
}

static void mutate(mbuf *m)
{
    size_t at = below(m->len + 1), n;
    char tmp[MUT_MAX];
    switch (below(9)) {
    case 0: /* flip or replace a byte */
        if (m->len)
            m->b[below(m->len)] ^= below(2) ? (char)(1u << below(8)) : pick_byte();
        break;
    case 1: /* insert bytes */
        n = 1 + below(3);
        for (size_t i = 0; i < n; i++)
            tmp[i] = pick_byte();
        m_insert(m, at, tmp, n);
        break;
    case 2: /* delete a range */
        n = 1 + below(4);
        if (n > m->len - at)
            n = m->len - at;
        memmove(m->b + at, m->b + at + n, m->len - at - n);
        m->len -= n;
        break;
    case 3: /* truncate */
        m->len = at;
        break;
    case 4: { /* duplicate a segment somewhere */
        size_t from = below(m->len + 1);
        n = below(m->len - from + 1);
        if (n > 64)
            n = 64;
        memcpy(tmp, m->b + from, n);
        m_insert(m, below(m->len + 1), tmp, n);
        break;
    }
    case 5: /* an odd number after a '*' or '$', or anywhere */
    case 6: {
        size_t i = at;
        while (i < m->len && m->b[i] != '*' && m->b[i] != '$')
            i++;
        at = i < m->len ? i + 1 : at;
        size_t end = at;
        while (end < m->len && end - at < 24 && m->b[end] >= '0' && m->b[end] <= '9')
            end++;
        memmove(m->b + at, m->b + end, m->len - end); /* drop the old digits */
        m->len -= end - at;
        const char *num = odd_number();
        m_insert(m, at, num, strlen(num));
        break;
    }
    case 7: /* random bytes over a span */
        n = below(9);
        for (size_t i = 0; i < n && at + i < m->len; i++)
            m->b[at + i] = (char)below(256);
        break;
    case 8: /* a long run, to cross small line limits */
        n = 8 + below(80);
        memset(tmp, below(2) ? '1' : below(2) ? 'a' : ' ', n);
        m_insert(m, at, tmp, n);
        break;
    }
}

static void test_mutation(void **state)
{
    (void)state;
    const char *env = getenv("RESP_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0)
                        : (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
    env = getenv("RESP_ITERS");
    long iters = env ? strtol(env, NULL, 0) : 1000000;
    print_message("mutation test: RESP_SEED=%llu RESP_ITERS=%ld\n",
                  (unsigned long long)seed, iters);
    rng_state = seed;
    static const resp_limits limits[] = {
        {0, 0, 0}, {0, 0, 0}, {8, 16, 3}, {4, 8, 2}, {64, 32, 8}, {1, 4, 1}, {16, 64, 4},
    };
    feed_log whole = {0}, cut = {0};
    size_t cuts[MUT_MAX];
    long ncmd = 0, nmore = 0; /* commands; streams ending without an error */
    struct {
        char text[40];
        long n;
    } errs[12] = {{"", 0}};
    size_t nerrs = 0;
    clock_t t0 = clock();
    for (long it = 0; it < iters; it++) {
        mbuf m = {.len = 0};
        size_t ncmds = 1 + below(4);
        for (size_t i = 0; i < ncmds; i++)
            gen_command(&m);
        size_t nmut = below(5);
        for (size_t i = 0; i < nmut; i++)
            mutate(&m);
        const resp_limits *lim = &limits[below(sizeof limits / sizeof limits[0])];

        whole.len = cut.len = 0;
        whole.cmds = cut.cmds = 0;
        const char *bad = feed(lim, m.b, m.len, NULL, 0, &whole);
        size_t n = 0;
        if (!bad) {
            if (below(20) == 0) { /* a byte at a time */
                for (size_t i = 1; i < m.len; i++)
                    cuts[n++] = i;
            } else {
                for (size_t at = 0; (at += 1 + below(m.len / 3 + 2)) < m.len;)
                    cuts[n++] = at;
            }
            bad = feed(lim, m.b, m.len, cuts, n, &cut);
        }
        if (!bad &&
            (whole.len != cut.len || memcmp(whole.data, cut.data, whole.len) != 0))
            bad = "fed whole and in chunks, different results";
        if (bad) {
            fprintf(stderr,
                    "iteration %ld (RESP_SEED=%llu): %s; limits %zu/%zu/%u; input:", it,
                    (unsigned long long)seed, bad, lim->max_bulk, lim->max_inline,
                    lim->max_args);
            for (size_t i = 0; i < m.len; i++)
                fprintf(stderr, "\\x%02x", (unsigned char)m.b[i]);
            fprintf(stderr, "\n");
            fail_msg("%s", bad);
        }
        ncmd += whole.cmds;
        nmore += whole.end == RESP_MORE;
        if (whole.end == RESP_ERR) { /* by text, the expected-'$' ones as one */
            size_t k = 0;
            while (k < nerrs && strncmp(errs[k].text, whole.error, 30) != 0)
                k++;
            if (k == nerrs && nerrs < sizeof errs / sizeof errs[0])
                snprintf(errs[nerrs++].text, sizeof errs[0].text, "%.36s", whole.error);
            if (k < nerrs)
                errs[k].n++;
        }
    }
    print_message(
        "%ld inputs in %.1f s: %ld commands; %ld streams ended wanting more, and\n",
        iters, (double)(clock() - t0) / CLOCKS_PER_SEC, ncmd, nmore);
    for (size_t k = 0; k < nerrs; k++)
        print_message("  %8ld in \"%s...\"\n", errs[k].n, errs[k].text);
    free(whole.data);
    free(cut.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multibulk),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_inline),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_error_sticks),
        cmocka_unit_test(test_resume_splits),
        cmocka_unit_test(test_linear_time),
        cmocka_unit_test(test_no_alloc_by_claim),
        cmocka_unit_test(test_mutation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
