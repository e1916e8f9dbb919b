/*
 * resp.h — the kvstore example's RESP2 request parser: the bytes a client
 * sends in, one command at a time out (argc, argv, argl), read the way
 * Redis 7.0 reads them (networking.c: processInlineBuffer,
 * processMultibulkBuffer; sds.c: sdssplitargs; util.c: string2ll), with
 * the same protocol error texts.
 *
 * Plain C11: no troupe dependency and no global state. Nothing here is
 * thread-safe: one parser per connection, used by one thread at a time.
 *
 * Two request forms, told apart by the first byte of a command:
 *
 *   "*<n>\r\n" then n times "$<len>\r\n<len bytes>\r\n"   multibulk ('*')
 *   a line ending in "\n" ("\r\n" too), split into words  inline (any other)
 *
 * Multibulk arguments are not copied: argv points into the caller's buffer.
 * Inline arguments need unquoting, so they live in the parser's storage.
 * Only the bytes a command has actually sent cost memory: no count or length
 * a client claims is ever allocated (a "*1000000000" header followed by
 * nothing allocates nothing large), and the argument storage grows with the
 * arguments that arrive, is reused from command to command, and is given
 * back after a command that made it large.
 */
#ifndef KV_RESP_H
#define KV_RESP_H

#include <stddef.h>
#include <stdint.h>

/* Limits, as in Redis; a zero field takes its default. */
typedef struct resp_limits {
    size_t max_bulk;   /* a bulk's largest length; 0: 512 MiB (proto-max-bulk-len) */
    size_t max_inline; /* the longest inline command or header line; 0: 64 KiB
                          (PROTO_INLINE_MAX_SIZE) */
    uint32_t max_args; /* the largest multibulk count (and inline word count);
                          0: 1024*1024; at most INT_MAX */
} resp_limits;

/* A parser. The first four fields are the result of the last resp_parse;
 * the rest is internal. */
typedef struct resp_parser {
    /* After RESP_CMD: the command's arguments, argl[i] bytes at argv[i]
     * (not NUL-terminated for a multibulk command; an inline command's are).
     * A multibulk command's point into the caller's buffer, an inline one's
     * into the parser's storage. Valid until the next resp_parse,
     * resp_reset or resp_free. argc may be 0 (argv then may be NULL). */
    int argc;
    const char **argv;
    size_t *argl;
    /* After RESP_ERR: Redis's error text, e.g. "Protocol error: invalid
     * bulk length", or "out of memory". A server replies "-ERR " error
     * "\r\n" and closes the connection. Constant until resp_reset. */
    const char *error;

    /* Internal. Positions are offsets from the command's first byte: the
     * caller may move its buffer between calls. */
    size_t max_bulk, max_inline;
    uint32_t max_args;
    int state;   /* idle, inline, multibulk or failed */
    size_t seen; /* the buffer's length at the previous call */
    size_t pos;  /* multibulk: the next header's first byte, or a bulk's */
    size_t scan; /* where the search for the current line's end goes on */
    int nul;     /* a NUL came before the line's end: it never ends */
    int in_bulk; /* multibulk: a bulk's header is read, bulk is its length */
    size_t bulk;
    long long left; /* multibulk: bulks still to come */
    size_t need;    /* resp_need */
    size_t *off;    /* each argument's offset (in the buffer, or in text) */
    size_t cap;     /* entries in argv, argl and off */
    char *text;     /* an inline command's arguments, unquoted */
    size_t text_cap;
    size_t work;     /* resp_work */
    char errbuf[48]; /* the one error text that is formatted */
} resp_parser;

enum { RESP_MORE = 0, RESP_CMD = 1, RESP_ERR = -1 };

/* Makes `p` an idle parser with the limits `lim` (NULL: the defaults). It
 * allocates nothing yet. */
void resp_init(resp_parser *p, const resp_limits *lim);

/* Frees the parser's storage; `p` may be resp_init'ed again. */
void resp_free(resp_parser *p);

/* Forgets the command in progress and any error: the next resp_parse reads
 * a new command. Keeps the storage (within bounds) and the limits. */
void resp_reset(resp_parser *p);

/*
 * Parses the next command from buf[0..len), which starts where the previous
 * call's command started. After RESP_MORE the caller keeps those bytes,
 * appends what arrives and calls again with the longer buffer: it may move
 * the bytes in memory between calls. Parsing resumes where it stopped, so a
 * command that arrives one byte at a time costs time linear in its length.
 * (A shorter buffer than last time restarts the command from its first
 * byte.)
 *
 *   RESP_CMD   a command is in argc/argv/argl; *used = its length in bytes,
 *              which the caller drops before the next call. argc may be 0:
 *              an empty inline line, or "*0" / "*-1": Redis ignores them,
 *              so a server just skips the bytes (*used > 0).
 *   RESP_MORE  no complete command yet; *used = 0.
 *   RESP_ERR   a protocol error (or out of memory): p->error says which;
 *              *used = 0. The parser stays failed until resp_reset.
 *
 * Any bytes are safe: nothing is read outside buf[0..len).
 */
int resp_parse(resp_parser *p, const char *buf, size_t len, size_t *used);

/* Redis's string2ll: s[0..n) as a strict decimal long long (no '+', no
 * leading zeros, no spaces, at most 20 bytes). 1 and *out set, or 0. The
 * parser reads counts and lengths with it; a server reads integer
 * arguments and values the same way. */
int resp_str2ll(const char *s, size_t n, long long *out);

/* After RESP_MORE: how many more bytes the command in progress needs at
 * least (the rest of the bulk being read), so a caller can make room for a
 * large bulk once; 0 if unknown. */
size_t resp_need(const resp_parser *p);

/* The bytes of storage the parser holds now (its argument arrays and its
 * inline text): for tests. */
size_t resp_mem(const resp_parser *p);

/* A count of the parser's work since resp_init: one per call, per byte
 * searched and per argument. For tests of linear time. */
size_t resp_work(const resp_parser *p);

#endif
