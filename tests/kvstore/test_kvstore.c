/*
 * test_kvstore.c — runs tests/kvstore/cases.txt (its format is described at
 * the top of that file) against a Redis-protocol server, then "hostile"
 * checks that do not fit a script, and requires byte-for-byte answers.
 *
 *   test_kvstore [OPTIONS] --spawn PATH [ARGS...]
 *       starts PATH --port 0 --threads 2 ARGS..., reads the port from its
 *       first stdout line ("kvstore: listening on 127.0.0.1:PORT..."), runs
 *       the tests, SIGTERMs it and requires exit status 0 within 10 s.
 *   test_kvstore [OPTIONS] --redis PATH
 *       starts the real redis-server PATH on a free port (--save ''
 *       --appendonly no --bind 127.0.0.1 --databases 1) and waits for PING.
 *       The cases marked @kvstore-only are left out (and those marked
 *       @redis-only are left out against the kvstore).
 *   test_kvstore [OPTIONS] --addr HOST:PORT
 *       a server already running (add --reference if it is a redis-server).
 *
 * OPTIONS: --cases FILE (default: the cases.txt beside this source),
 *          --no-hostile (the script only), --reference (see --addr),
 *          --benchmark PATH (redis-benchmark, run alongside the hostile
 *          clients: it must finish with no error).
 *
 * Every wait on a socket or a process is bounded (10 s): a broken server
 * fails the test, it never hangs it. The first mismatch prints the case's
 * line, the command, the expected and the actual bytes, and exits 1.
 * Exit 77 (ctest's skip) when the redis-server of --redis does not exist.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <spawn.h>
#include <time.h>
#include <unistd.h>

#ifndef KV_CASES_DEFAULT
#define KV_CASES_DEFAULT "tests/kvstore/cases.txt"
#endif

#define TIMEOUT_MS 10000 /* every read, write, connect and wait */
#define SILENCE_MS 300   /* ~silence: how long nothing must arrive */
#define SHOW_MAX 600     /* bytes of a reply shown on a mismatch */
#define MAX_CONNS 16

/* ---- small helpers ---------------------------------------------------- */

static pid_t server_pid = -1; /* the spawned server, killed on a failure */
static pthread_t drain_thread;
static bool drain_started;

/* On a failure: the server and whatever it started (its process group: a
 * child left holding its stdout would keep ctest waiting). */
static void kill_server(void)
{
    if (server_pid > 0) {
        kill(-server_pid, SIGKILL);
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
        server_pid = -1;
    }
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("test_kvstore: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    kill_server();
    exit(1);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory (%zu bytes)", n);
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (!p)
        die("out of memory (%zu bytes)", n);
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* A growable byte buffer. */
struct buf {
    char *p;
    size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t more)
{
    if (b->len + more + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + more + 1)
            cap *= 2;
        b->p = xrealloc(b->p, cap);
        b->cap = cap;
    }
}

static void buf_add(struct buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_addc(struct buf *b, char c)
{
    buf_add(b, &c, 1);
}

static void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void buf_free(struct buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* Bytes as the cases file writes them: \r \n \t \\ \xHH, the rest as is;
 * at most SHOW_MAX of them (the total length is said when cut). */
static char *show(const char *p, size_t n)
{
    struct buf b = {0};
    size_t lim = n > SHOW_MAX ? SHOW_MAX : n;
    buf_addc(&b, '"');
    for (size_t i = 0; i < lim; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\r')
            buf_add(&b, "\\r", 2);
        else if (c == '\n')
            buf_add(&b, "\\n", 2);
        else if (c == '\t')
            buf_add(&b, "\\t", 2);
        else if (c == '\\')
            buf_add(&b, "\\\\", 2);
        else if (c == '"')
            buf_add(&b, "\\\"", 2);
        else if (c < 0x20 || c >= 0x7f)
            buf_printf(&b, "\\x%02x", c);
        else
            buf_addc(&b, (char)c);
    }
    buf_addc(&b, '"');
    if (lim < n)
        buf_printf(&b, "... (%zu bytes in all)", n);
    return b.p;
}

/* ---- the cases file's text: macros, escapes, arguments ----------------- */

/* Expands {{N*c}} (the byte c, N times) everywhere, and in a pipeline
 * block ({i} >= 0) {i}, {i+K} and {i:W} (i zero-padded to W digits). */
static void expand(const char *s, long i, struct buf *out)
{
    out->len = 0;
    buf_reserve(out, 0);
    out->p[0] = '\0';
    while (*s) {
        if (s[0] == '{' && s[1] == '{') {
            char *end;
            long n = strtol(s + 2, &end, 10);
            if (end != s + 2 && n >= 0 && end[0] == '*' && end[1] && end[2] == '}' &&
                end[3] == '}') {
                buf_reserve(out, (size_t)n);
                memset(out->p + out->len, end[1], (size_t)n);
                out->len += (size_t)n;
                out->p[out->len] = '\0';
                s = end + 4;
                continue;
            }
        }
        if (i >= 0 && s[0] == '{' && s[1] == 'i') {
            const char *q = s + 2;
            long add = 0;
            int width = 0;
            if (*q == '+' || *q == '-') {
                char *end;
                add = strtol(q, &end, 10);
                q = end;
            } else if (*q == ':') {
                char *end;
                width = (int)strtol(q + 1, &end, 10);
                q = end;
            }
            if (*q == '}') {
                buf_printf(out, "%0*ld", width, i + add);
                s = q + 1;
                continue;
            }
        }
        buf_addc(out, *s++);
    }
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* One escape of raw bytes or of an expected reply, at s (a backslash):
 * \r \n \t \0 \\ \xHH; any other \c is c. Returns the characters used. */
static size_t unescape1(const char *s, struct buf *out)
{
    switch (s[1]) {
    case 'r':
        buf_addc(out, '\r');
        return 2;
    case 'n':
        buf_addc(out, '\n');
        return 2;
    case 't':
        buf_addc(out, '\t');
        return 2;
    case '0':
        buf_addc(out, '\0');
        return 2;
    case 'x':
        if (hexval(s[2]) >= 0 && hexval(s[3]) >= 0) {
            buf_addc(out, (char)(hexval(s[2]) * 16 + hexval(s[3])));
            return 4;
        }
        buf_addc(out, 'x');
        return 2;
    case '\0':
        buf_addc(out, '\\');
        return 1;
    default:
        buf_addc(out, s[1]);
        return 2;
    }
}

static void unescape(const char *s, struct buf *out)
{
    while (*s) {
        if (*s == '\\')
            s += unescape1(s, out);
        else
            buf_addc(out, *s++);
    }
}

/* The arguments of a command line, split exactly as redis-server splits an
 * inline command and redis-cli its input (sds.c's sdssplitargs): blanks
 * separate; "..." knows \xHH \n \r \t \b \a and \c for any other c; '...'
 * knows only \'; a closing quote must be followed by a blank or the end. */
struct args {
    struct buf *v;
    size_t n;
};

static void args_free(struct args *a)
{
    for (size_t i = 0; i < a->n; i++)
        buf_free(&a->v[i]);
    free(a->v);
    a->v = NULL;
    a->n = 0;
}

static int split_args(const char *p, struct args *a)
{
    a->v = NULL;
    a->n = 0;
    for (;;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            return 0;
        struct buf cur = {0};
        buf_reserve(&cur, 0);
        bool inq = false, insq = false, done = false;
        while (!done) {
            if (inq) {
                if (p[0] == '\\' && p[1] == 'x' && hexval(p[2]) >= 0 &&
                    hexval(p[3]) >= 0) {
                    buf_addc(&cur, (char)(hexval(p[2]) * 16 + hexval(p[3])));
                    p += 3;
                } else if (p[0] == '\\' && p[1]) {
                    char c;
                    p++;
                    switch (*p) {
                    case 'n':
                        c = '\n';
                        break;
                    case 'r':
                        c = '\r';
                        break;
                    case 't':
                        c = '\t';
                        break;
                    case 'b':
                        c = '\b';
                        break;
                    case 'a':
                        c = '\a';
                        break;
                    default:
                        c = *p;
                        break;
                    }
                    buf_addc(&cur, c);
                } else if (*p == '"') {
                    if (p[1] && !isspace((unsigned char)p[1]))
                        goto err;
                    done = true;
                } else if (!*p) {
                    goto err;
                } else {
                    buf_addc(&cur, *p);
                }
            } else if (insq) {
                if (p[0] == '\\' && p[1] == '\'') {
                    p++;
                    buf_addc(&cur, '\'');
                } else if (*p == '\'') {
                    if (p[1] && !isspace((unsigned char)p[1]))
                        goto err;
                    done = true;
                } else if (!*p) {
                    goto err;
                } else {
                    buf_addc(&cur, *p);
                }
            } else {
                switch (*p) {
                case ' ':
                case '\n':
                case '\r':
                case '\t':
                case '\0':
                    done = true;
                    break;
                case '"':
                    inq = true;
                    break;
                case '\'':
                    insq = true;
                    break;
                default:
                    buf_addc(&cur, *p);
                    break;
                }
            }
            if (*p)
                p++;
        }
        a->v = xrealloc(a->v, (a->n + 1) * sizeof *a->v);
        a->v[a->n++] = cur;
        continue;
    err:
        buf_free(&cur);
        args_free(a);
        return -1;
    }
}

/* ---- RESP ------------------------------------------------------------- */

static const char *find_crlf(const char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n')
            return p + i;
    return NULL;
}

/* Parses the integer of a RESP line [p, e): 0 on success. */
static int parse_ll(const char *p, const char *e, long long *out)
{
    if (p == e || e - p > 20)
        return -1;
    char tmp[24];
    memcpy(tmp, p, (size_t)(e - p));
    tmp[e - p] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno || *end || end == tmp)
        return -1;
    *out = v;
    return 0;
}

/* The length of the complete RESP2 value at p[0..n): > 0; 0 if more bytes
 * are needed; -1 if the bytes are not RESP. */
static long resp_len(const char *p, size_t n, int depth)
{
    if (n == 0)
        return 0;
    if (depth > 32)
        return -1;
    const char *e;
    long long v;
    switch (p[0]) {
    case '+':
    case '-':
    case ':':
        e = find_crlf(p, n);
        if (!e)
            return memchr(p, '\n', n) ? -1 : 0;
        if (p[0] == ':' && parse_ll(p + 1, e, &v))
            return -1;
        return e - p + 2;
    case '$': {
        e = find_crlf(p, n);
        if (!e)
            return n > 24 ? -1 : 0;
        if (parse_ll(p + 1, e, &v) || v < -1)
            return -1;
        size_t head = (size_t)(e - p) + 2;
        if (v == -1)
            return (long)head;
        if (n < head + (size_t)v + 2)
            return 0;
        if (p[head + v] != '\r' || p[head + v + 1] != '\n')
            return -1;
        return (long)(head + (size_t)v + 2);
    }
    case '*': {
        e = find_crlf(p, n);
        if (!e)
            return n > 24 ? -1 : 0;
        if (parse_ll(p + 1, e, &v) || v < -1)
            return -1;
        size_t off = (size_t)(e - p) + 2;
        for (long long k = 0; k < v; k++) {
            long r = resp_len(p + off, n - off, depth + 1);
            if (r <= 0)
                return r;
            off += (size_t)r;
        }
        return (long)off;
    }
    default:
        return -1;
    }
}

static void resp_command(struct buf *out, const struct args *a)
{
    buf_printf(out, "*%zu\r\n", a->n);
    for (size_t i = 0; i < a->n; i++) {
        buf_printf(out, "$%zu\r\n", a->v[i].len);
        buf_add(out, a->v[i].p, a->v[i].len);
        buf_add(out, "\r\n", 2);
    }
}

/* ---- connections -------------------------------------------------------- */

static char g_host[256] = "127.0.0.1";
static char g_port[16];

struct conn {
    char name[32];
    int fd;
    struct buf in; /* received, not yet consumed: in.p[pos..len) */
    size_t pos;
    bool eof;      /* the server closed (or reset) its side */
    int eof_errno; /* 0 for a FIN, else the errno (ECONNRESET) */
};

/* Connects to g_host:g_port (bounded): the fd, or -1 with errno. Options
 * set before connecting: rcvbuf > 0 sets SO_RCVBUF. */
static int connect_server(int rcvbuf)
{
    struct addrinfo hints = {0}, *res;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(g_host, g_port, &hints, &res);
    if (rc)
        die("getaddrinfo %s:%s: %s", g_host, g_port, gai_strerror(rc));
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        int e = errno;
        freeaddrinfo(res);
        errno = e;
        return -1;
    }
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    rc = connect(fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (rc < 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (rc < 0) {
        struct pollfd pfd = {fd, POLLOUT, 0};
        int n;
        do {
            n = poll(&pfd, 1, TIMEOUT_MS);
        } while (n < 0 && errno == EINTR);
        int err = 0;
        socklen_t len = sizeof err;
        if (n == 0)
            err = ETIMEDOUT;
        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            close(fd);
            errno = err;
            return -1;
        }
    }
    return fd;
}

static void conn_open(struct conn *c, const char *name)
{
    char copy[sizeof c->name];
    snprintf(copy, sizeof copy, "%s", name); /* name may be c->name */
    memset(c, 0, sizeof *c);
    memcpy(c->name, copy, sizeof copy);
    c->fd = connect_server(0);
    if (c->fd < 0)
        die("connection '%s': cannot connect to %s:%s: %s", name, g_host, g_port,
            strerror(errno));
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    buf_free(&c->in);
    c->pos = 0;
    c->eof = false;
}

/* Reads what is there (waiting at most wait_ms): 1 if bytes came, 0 on a
 * timeout, -1 at the end of the stream (c->eof set). */
static int conn_fill(struct conn *c, int wait_ms)
{
    if (c->eof)
        return -1;
    struct pollfd pfd = {c->fd, POLLIN, 0};
    int n;
    do {
        n = poll(&pfd, 1, wait_ms);
    } while (n < 0 && errno == EINTR);
    if (n == 0)
        return 0;
    if (c->pos > 0 && c->pos == c->in.len) {
        c->in.len = c->pos = 0;
    } else if (c->pos > (1u << 20) && c->pos * 2 > c->in.len) {
        memmove(c->in.p, c->in.p + c->pos, c->in.len - c->pos);
        c->in.len -= c->pos;
        c->pos = 0;
    }
    buf_reserve(&c->in, 256 * 1024);
    ssize_t r;
    do {
        r = recv(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len - 1, 0);
    } while (r < 0 && errno == EINTR);
    if (r > 0) {
        c->in.len += (size_t)r;
        return 1;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 1; /* spurious */
    c->eof = true;
    c->eof_errno = r < 0 ? errno : 0;
    return -1;
}

/* Sends all of p[0..n) while reading what the server answers meanwhile (a
 * server that stops reading until its replies are read must not deadlock
 * a long pipeline). Returns 0, or -1 if the server closed first (what it
 * sent before is kept for the checks). */
static int conn_send(struct conn *c, const char *p, size_t n)
{
    int64_t deadline = now_ms() + TIMEOUT_MS;
    while (n > 0) {
        if (c->eof)
            return -1;
        struct pollfd pfd = {c->fd, POLLIN | POLLOUT, 0};
        int64_t left = deadline - now_ms();
        if (left <= 0)
            die("connection '%s': a write made no progress for %d ms", c->name,
                TIMEOUT_MS);
        int k = poll(&pfd, 1, (int)left);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            continue;
        if (pfd.revents & POLLIN) {
            conn_fill(c, 0);
            deadline = now_ms() + TIMEOUT_MS;
        }
        if (pfd.revents & (POLLOUT | POLLERR | POLLHUP)) {
            ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
            if (w > 0) {
                p += w;
                n -= (size_t)w;
                deadline = now_ms() + TIMEOUT_MS;
            } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                       errno != EINTR) {
                /* EPIPE / ECONNRESET: whatever it sent stays readable */
                while (conn_fill(c, 0) > 0) {
                }
                return -1;
            }
        }
    }
    return 0;
}

enum { RV_OK = 0, RV_TIMEOUT, RV_CLOSED, RV_GARBAGE };

static const char *rv_text(int rv)
{
    switch (rv) {
    case RV_TIMEOUT:
        return "no complete reply within 10 s";
    case RV_CLOSED:
        return "the server closed the connection";
    case RV_GARBAGE:
        return "the bytes are not a RESP reply";
    default:
        return "ok";
    }
}

/* Reads one RESP value: its bytes at *p, *n (consumed). On an error, *p, *n
 * are what was received so far (not consumed). */
static int conn_read_value(struct conn *c, const char **p, size_t *n)
{
    int64_t deadline = now_ms() + TIMEOUT_MS;
    for (;;) {
        const char *s = c->in.p + c->pos;
        size_t have = c->in.len - c->pos;
        long r = resp_len(s, have, 0);
        if (r > 0) {
            *p = s;
            *n = (size_t)r;
            c->pos += (size_t)r;
            return RV_OK;
        }
        *p = s;
        *n = have;
        if (r < 0)
            return RV_GARBAGE;
        if (c->eof)
            return RV_CLOSED;
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return RV_TIMEOUT;
        int f = conn_fill(c, (int)left);
        if (f > 0)
            deadline = now_ms() + TIMEOUT_MS;
        *p = c->in.p + c->pos; /* the buffer may have moved */
    }
}

/* ---- the script ---------------------------------------------------------- */

enum kind { K_CMD, K_RAW, K_SEND, K_SLEEP, K_FRESH, K_CONN, K_CLOSE, K_PIPE };

struct item {
    enum kind kind;
    int line;
    char *text;    /* K_CMD/K_RAW/K_SEND: before " => "; K_CONN: the name */
    char *expect;  /* K_CMD/K_RAW: after " => " */
    long n;        /* K_SLEEP: ms; K_PIPE: repetitions */
    size_t nblock; /* K_PIPE: how many items follow in the block */
    bool kvonly;
    bool redisonly;
};

static struct item *items;
static size_t nitems;
static const char *cases_path = KV_CASES_DEFAULT;
static bool reference; /* the server is redis-server: skip @kvstore-only */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n &&
           (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = '\0';
    return s;
}

static void load_cases(void)
{
    FILE *f = fopen(cases_path, "r");
    if (!f)
        die("%s: %s", cases_path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0;
    bool kvonly_next = false, redisonly_next = false;
    long pipe_at = -1; /* index of the open @pipeline */
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        struct item it = {0};
        it.line = lineno;
        if (*s == '@') {
            char word[32] = "";
            long num = -1;
            char name[32] = "";
            sscanf(s, "@%31s", word);
            if (!strcmp(word, "kvstore-only")) {
                kvonly_next = true;
                continue;
            } else if (!strcmp(word, "redis-only")) {
                redisonly_next = true;
                continue;
            } else if (!strcmp(word, "sleep") && sscanf(s, "@sleep %ld", &num) == 1 &&
                       num >= 0) {
                it.kind = K_SLEEP;
                it.n = num;
            } else if (!strcmp(word, "fresh")) {
                it.kind = K_FRESH;
            } else if (!strcmp(word, "close")) {
                it.kind = K_CLOSE;
            } else if (!strcmp(word, "conn") && sscanf(s, "@conn %31s", name) == 1) {
                it.kind = K_CONN;
                it.text = xstrdup(name);
            } else if (!strcmp(word, "pipeline")) {
                if (pipe_at >= 0)
                    die("%s:%d: @pipeline inside a @pipeline", cases_path, lineno);
                it.kind = K_PIPE;
                it.n = 1;
                if (sscanf(s, "@pipeline %ld", &num) == 1)
                    it.n = num;
                if (it.n < 1)
                    die("%s:%d: bad repetition count", cases_path, lineno);
                it.kvonly = kvonly_next;
                it.redisonly = redisonly_next;
                kvonly_next = redisonly_next = false;
                pipe_at = (long)nitems;
            } else if (!strcmp(word, "end")) {
                if (pipe_at < 0)
                    die("%s:%d: @end without @pipeline", cases_path, lineno);
                items[pipe_at].nblock = nitems - (size_t)pipe_at - 1;
                pipe_at = -1;
                continue;
            } else {
                die("%s:%d: unknown directive: %s", cases_path, lineno, s);
            }
            if (pipe_at >= 0 && it.kind != K_PIPE)
                die("%s:%d: only cases go in a @pipeline block", cases_path, lineno);
        } else {
            char *arrow = strstr(s, " => ");
            if (!strncmp(s, "!raw ", 5) || !strncmp(s, "!send ", 6)) {
                it.kind = s[1] == 'r' ? K_RAW : K_SEND;
                s += s[1] == 'r' ? 5 : 6;
            } else if (*s == '!') {
                die("%s:%d: unknown case kind: %s", cases_path, lineno, s);
            } else {
                it.kind = K_CMD;
            }
            if (it.kind == K_SEND) {
                if (arrow)
                    die("%s:%d: !send expects no reply", cases_path, lineno);
                it.text = xstrdup(s);
            } else {
                if (!arrow)
                    die("%s:%d: no \" => \" (expected reply)", cases_path, lineno);
                *arrow = '\0';
                it.text = xstrdup(trim(s));
                it.expect = xstrdup(trim(arrow + 4));
            }
            if (it.kind == K_SEND && pipe_at >= 0)
                die("%s:%d: !send in a @pipeline", cases_path, lineno);
            it.kvonly = kvonly_next && pipe_at < 0;
            it.redisonly = redisonly_next && pipe_at < 0;
            if (pipe_at < 0)
                kvonly_next = redisonly_next = false;
        }
        items = xrealloc(items, (nitems + 1) * sizeof *items);
        items[nitems++] = it;
    }
    if (pipe_at >= 0)
        die("%s: @pipeline without @end", cases_path);
    free(line);
    fclose(f);
}

/* ---- expected replies ------------------------------------------------- */

enum ekind { E_LIT, E_INT, E_BULK, E_ARRAY, E_CLOSE, E_SILENCE };

struct eitem {
    enum ekind kind;
    struct buf lit; /* E_LIT: one RESP value */
    long long lo, hi;
};

struct expect {
    bool anyorder;
    struct eitem *v;
    size_t n;
};

static void expect_free(struct expect *e)
{
    for (size_t i = 0; i < e->n; i++)
        buf_free(&e->v[i].lit);
    free(e->v);
    memset(e, 0, sizeof *e);
}

static void expect_push(struct expect *e, struct eitem it)
{
    e->v = xrealloc(e->v, (e->n + 1) * sizeof *e->v);
    e->v[e->n++] = it;
}

/* Splits literal bytes into their RESP values. */
static void push_literal(struct expect *e, struct buf *lit, int line)
{
    size_t off = 0;
    while (off < lit->len) {
        long r = resp_len(lit->p + off, lit->len - off, 0);
        if (r <= 0) {
            char *s = show(lit->p + off, lit->len - off);
            die("%s:%d: the expected reply is not RESP: %s", cases_path, line, s);
        }
        struct eitem it = {.kind = E_LIT};
        buf_add(&it.lit, lit->p + off, (size_t)r);
        expect_push(e, it);
        off += (size_t)r;
    }
    lit->len = 0;
}

static void parse_expect(const char *s, int line, struct expect *e)
{
    memset(e, 0, sizeof *e);
    struct buf lit = {0};
    while (*s) {
        if (*s == '\\') {
            s += unescape1(s, &lit);
            continue;
        }
        if (*s != '~') {
            buf_addc(&lit, *s++);
            continue;
        }
        push_literal(e, &lit, line);
        const char *w = ++s;
        while (*s >= 'a' && *s <= 'z')
            s++;
        size_t wl = (size_t)(s - w);
        struct eitem it = {0};
        if (wl == 3 && !strncmp(w, "int", 3)) {
            int used = 0;
            if (sscanf(s, "[%lld,%lld]%n", &it.lo, &it.hi, &used) < 2 || !used)
                die("%s:%d: ~int needs [LOW,HIGH]", cases_path, line);
            s += used;
            it.kind = E_INT;
        } else if (wl == 4 && !strncmp(w, "bulk", 4)) {
            it.kind = E_BULK;
        } else if (wl == 5 && !strncmp(w, "array", 5)) {
            it.kind = E_ARRAY;
        } else if (wl == 5 && !strncmp(w, "close", 5)) {
            it.kind = E_CLOSE;
        } else if (wl == 7 && !strncmp(w, "silence", 7)) {
            it.kind = E_SILENCE;
        } else if (wl == 8 && !strncmp(w, "anyorder", 8)) {
            if (e->n)
                die("%s:%d: ~anyorder must come first", cases_path, line);
            e->anyorder = true;
            while (*s == ' ')
                s++;
            continue;
        } else {
            die("%s:%d: unknown placeholder ~%.*s", cases_path, line, (int)wl, w);
        }
        expect_push(e, it);
    }
    push_literal(e, &lit, line);
    buf_free(&lit);
    if (e->anyorder && (e->n != 1 || e->v[0].kind != E_LIT || e->v[0].lit.p[0] != '*'))
        die("%s:%d: ~anyorder needs one array after it", cases_path, line);
    for (size_t i = 0; i + 1 < e->n; i++)
        if (e->v[i].kind == E_CLOSE)
            die("%s:%d: nothing can follow ~close", cases_path, line);
}

/* The elements of an array value (each one's bytes), sorted. */
struct elems {
    struct buf *v;
    size_t n;
};

static int cmp_elem(const void *a, const void *b)
{
    const struct buf *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static bool array_elems(const char *p, size_t n, struct elems *out)
{
    memset(out, 0, sizeof *out);
    const char *e = find_crlf(p, n);
    long long count;
    if (p[0] != '*' || !e || parse_ll(p + 1, e, &count) || count < 0)
        return false;
    size_t off = (size_t)(e - p) + 2;
    out->v = xmalloc(sizeof *out->v * (size_t)(count ? count : 1));
    for (long long k = 0; k < count; k++) {
        long r = resp_len(p + off, n - off, 1);
        if (r <= 0)
            return false;
        struct buf b = {0};
        buf_add(&b, p + off, (size_t)r);
        out->v[out->n++] = b;
        off += (size_t)r;
    }
    qsort(out->v, out->n, sizeof *out->v, cmp_elem);
    return true;
}

static void elems_free(struct elems *x)
{
    for (size_t i = 0; i < x->n; i++)
        buf_free(&x->v[i]);
    free(x->v);
}

/* What the case is, for messages. */
struct where {
    int line;
    long iter; /* pipeline repetition, or -1 */
    const char *what;
};

static void fail_case(const struct where *w, const char *expected, const char *actual,
                      const char *why)
{
    fprintf(stderr, "\nFAIL %s:%d", cases_path, w->line);
    if (w->iter >= 0)
        fprintf(stderr, " (pipeline repetition i=%ld)", w->iter);
    fprintf(stderr, ": %s\n", w->what);
    if (why)
        fprintf(stderr, "  problem:  %s\n", why);
    fprintf(stderr, "  expected: %s\n", expected);
    fprintf(stderr, "  actual:   %s\n", actual);
    kill_server();
    exit(1);
}

static const char *eitem_text(const struct eitem *it, char *tmp, size_t tmpn)
{
    switch (it->kind) {
    case E_INT:
        snprintf(tmp, tmpn, "an integer reply in [%lld,%lld]", it->lo, it->hi);
        return tmp;
    case E_BULK:
        return "a bulk string reply";
    case E_ARRAY:
        return "an array reply";
    case E_CLOSE:
        return "the server closing the connection";
    case E_SILENCE:
        return "no reply, the connection kept open (300 ms)";
    default:
        return "?";
    }
}

/* Checks one expected item against what the connection receives. */
static void check_item(struct conn *c, const struct expect *e, const struct eitem *it,
                       const struct where *w)
{
    char tmp[128];
    if (it->kind == E_CLOSE) {
        int64_t deadline = now_ms() + TIMEOUT_MS;
        while (c->pos == c->in.len && !c->eof && now_ms() < deadline)
            conn_fill(c, (int)(deadline - now_ms()));
        if (c->pos < c->in.len)
            fail_case(w, eitem_text(it, tmp, sizeof tmp),
                      show(c->in.p + c->pos, c->in.len - c->pos),
                      "more bytes came instead");
        if (!c->eof)
            fail_case(w, eitem_text(it, tmp, sizeof tmp), "(nothing)",
                      "the connection is still open after 10 s");
        return;
    }
    if (it->kind == E_SILENCE) {
        int64_t deadline = now_ms() + SILENCE_MS;
        while (c->pos == c->in.len && !c->eof && now_ms() < deadline)
            conn_fill(c, (int)(deadline - now_ms()));
        if (c->pos < c->in.len)
            fail_case(w, eitem_text(it, tmp, sizeof tmp),
                      show(c->in.p + c->pos, c->in.len - c->pos), "bytes came");
        if (c->eof)
            fail_case(w, eitem_text(it, tmp, sizeof tmp), "(nothing)",
                      "the server closed the connection");
        return;
    }
    const char *p;
    size_t n;
    int rv = conn_read_value(c, &p, &n);
    /* (the texts are made only for a failure, which exits) */
#define EXPECTED                                                                         \
    (it->kind == E_LIT ? show(it->lit.p, it->lit.len) : eitem_text(it, tmp, sizeof tmp))
    if (rv != RV_OK)
        fail_case(w, EXPECTED, n ? show(p, n) : "(nothing)", rv_text(rv));
    switch (it->kind) {
    case E_LIT:
        if (e->anyorder) {
            struct elems a, b;
            if (!array_elems(p, n, &a))
                fail_case(w, EXPECTED, show(p, n), "not an array (any order expected)");
            array_elems(it->lit.p, it->lit.len, &b);
            bool same = a.n == b.n;
            for (size_t i = 0; same && i < a.n; i++)
                same = cmp_elem(&a.v[i], &b.v[i]) == 0;
            elems_free(&a);
            elems_free(&b);
            if (!same)
                fail_case(w, EXPECTED, show(p, n),
                          "not the same elements (in any order)");
        } else if (n != it->lit.len || memcmp(p, it->lit.p, n)) {
            fail_case(w, EXPECTED, show(p, n), NULL);
        }
        break;
    case E_INT: {
        long long v;
        if (p[0] != ':' || parse_ll(p + 1, p + n - 2, &v) || v < it->lo || v > it->hi)
            fail_case(w, EXPECTED, show(p, n), NULL);
        break;
    }
    case E_BULK:
        if (p[0] != '$' || p[1] == '-')
            fail_case(w, EXPECTED, show(p, n), NULL);
        break;
    case E_ARRAY:
        if (p[0] != '*' || p[1] == '-')
            fail_case(w, EXPECTED, show(p, n), NULL);
        break;
    default:
        break;
    }
#undef EXPECTED
}

/* After the replies of a case: nothing more may have come. */
static void check_no_extra(struct conn *c, const struct where *w)
{
    if (c->pos == c->in.len && !c->eof)
        conn_fill(c, 0);
    if (c->pos < c->in.len)
        fail_case(w, "(no more bytes)", show(c->in.p + c->pos, c->in.len - c->pos),
                  "bytes came after the expected reply");
}

/* ---- running the script -------------------------------------------------- */

static struct conn conns[MAX_CONNS];
static size_t nconns;
static struct conn *cur;
static long ncases_run, ncommands_run;

static struct conn *conn_get(const char *name)
{
    for (size_t i = 0; i < nconns; i++)
        if (!strcmp(conns[i].name, name))
            return &conns[i];
    if (nconns == MAX_CONNS)
        die("more than %d named connections", MAX_CONNS);
    struct conn *c = &conns[nconns++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->fd = -1;
    return c;
}

/* The bytes a case sends: a command as a RESP array, raw bytes as they are. */
static void case_bytes(const struct item *it, const char *text, struct buf *out)
{
    if (it->kind == K_CMD) {
        struct args a;
        if (split_args(text, &a) || a.n == 0)
            die("%s:%d: cannot split the command: %s", cases_path, it->line, text);
        resp_command(out, &a);
        args_free(&a);
    } else {
        unescape(text, out);
    }
}

static void ensure_open(struct conn *c, int line)
{
    if (c->fd >= 0 && c->eof)
        die("%s:%d: connection '%s' was closed by the server: the script needs @fresh",
            cases_path, line, c->name);
    if (c->fd < 0)
        conn_open(c, c->name);
}

static void run_case(const struct item *it)
{
    struct buf text = {0}, out = {0};
    expand(it->text, -1, &text);
    case_bytes(it, text.p, &out);
    ensure_open(cur, it->line);
    struct where w = {it->line, -1, it->text};
    conn_send(cur, out.p, out.len);
    ncommands_run++;
    if (it->kind != K_SEND) {
        struct buf ex = {0};
        struct expect e;
        expand(it->expect, -1, &ex);
        parse_expect(ex.p, it->line, &e);
        for (size_t i = 0; i < e.n; i++)
            check_item(cur, &e, &e.v[i], &w);
        if (!(e.n && e.v[e.n - 1].kind == E_CLOSE))
            check_no_extra(cur, &w);
        expect_free(&e);
        buf_free(&ex);
    }
    ncases_run++;
    buf_free(&text);
    buf_free(&out);
}

static void run_pipeline(const struct item *p)
{
    const struct item *block = p + 1;
    struct buf all = {0}, text = {0};
    size_t total = (size_t)p->n * p->nblock;
    struct expect *ex = xmalloc(sizeof *ex * (total ? total : 1));
    size_t k = 0;
    for (long i = 0; i < p->n; i++)
        for (size_t b = 0; b < p->nblock; b++) {
            expand(block[b].text, i, &text);
            case_bytes(&block[b], text.p, &all);
            expand(block[b].expect, i, &text);
            parse_expect(text.p, block[b].line, &ex[k++]);
        }
    ensure_open(cur, p->line);
    conn_send(cur, all.p, all.len); /* one write (as far as the kernel takes it) */
    k = 0;
    for (long i = 0; i < p->n; i++)
        for (size_t b = 0; b < p->nblock; b++) {
            struct where w = {block[b].line, p->n > 1 ? i : -1, block[b].text};
            for (size_t j = 0; j < ex[k].n; j++)
                check_item(cur, &ex[k], &ex[k].v[j], &w);
            expect_free(&ex[k]);
            k++;
            ncases_run++;
            ncommands_run++;
        }
    struct where w = {p->line, -1, "(the end of the pipeline)"};
    if (!cur->eof)
        check_no_extra(cur, &w);
    free(ex);
    buf_free(&all);
    buf_free(&text);
}

static void run_script(void)
{
    cur = conn_get("main");
    long skipped = 0;
    for (size_t i = 0; i < nitems; i++) {
        const struct item *it = &items[i];
        if ((it->kvonly && reference) || (it->redisonly && !reference)) {
            skipped += it->kind == K_PIPE ? (long)it->nblock : 1;
            if (it->kind == K_PIPE)
                i += it->nblock;
            continue;
        }
        switch (it->kind) {
        case K_CMD:
        case K_RAW:
        case K_SEND:
            run_case(it);
            break;
        case K_PIPE:
            run_pipeline(it);
            i += it->nblock;
            break;
        case K_SLEEP:
            sleep_ms(it->n);
            break;
        case K_FRESH:
            conn_close(cur);
            conn_open(cur, cur->name);
            break;
        case K_CLOSE:
            conn_close(cur);
            break;
        case K_CONN:
            cur = conn_get(it->text);
            break;
        }
    }
    for (size_t i = 0; i < nconns; i++)
        conn_close(&conns[i]);
    printf("test_kvstore: script: %ld cases (%ld commands) passed", ncases_run,
           ncommands_run);
    if (skipped)
        printf(", %ld %s left out", skipped, reference ? "@kvstore-only" : "@redis-only");
    printf("\n");
    fflush(stdout);
}

/* ---- hostile checks -------------------------------------------------- */

/* A blocking request/reply on a connection of its own (for the threads). */
static int simple_call(struct conn *c, const char *cmd, size_t cmdlen, const char *want,
                       size_t wantlen, char *err, size_t errn)
{
    if (conn_send(c, cmd, cmdlen)) {
        snprintf(err, errn, "the server closed the connection while sending");
        return -1;
    }
    const char *p;
    size_t n;
    int rv = conn_read_value(c, &p, &n);
    if (rv != RV_OK) {
        char *s = show(p, n);
        snprintf(err, errn, "%s (got %s)", rv_text(rv), s);
        free(s);
        return -1;
    }
    if (n != wantlen || memcmp(p, want, n)) {
        char *a = show(p, n), *b = show(want, wantlen);
        snprintf(err, errn, "expected %s, got %s", b, a);
        free(a);
        free(b);
        return -1;
    }
    return 0;
}

static atomic_bool good_stop;
static char good_err[1024];
static long good_ops;

/* The well-behaved client: SET and GET in turn until told to stop. */
static void *good_client(void *arg)
{
    (void)arg;
    struct conn c;
    conn_open(&c, "well-behaved");
    struct buf cmd = {0}, want = {0};
    for (long i = 0; !atomic_load(&good_stop); i++) {
        char key[32], val[48];
        snprintf(key, sizeof key, "good:%ld", i % 64);
        snprintf(val, sizeof val, "value-%ld", i);
        cmd.len = 0;
        buf_printf(&cmd, "*3\r\n$3\r\nSET\r\n$%zu\r\n%s\r\n$%zu\r\n%s\r\n", strlen(key),
                   key, strlen(val), val);
        if (simple_call(&c, cmd.p, cmd.len, "+OK\r\n", 5, good_err, sizeof good_err))
            break;
        cmd.len = 0;
        buf_printf(&cmd, "*2\r\n$3\r\nGET\r\n$%zu\r\n%s\r\n", strlen(key), key);
        want.len = 0;
        buf_printf(&want, "$%zu\r\n%s\r\n", strlen(val), val);
        if (simple_call(&c, cmd.p, cmd.len, want.p, want.len, good_err, sizeof good_err))
            break;
        good_ops += 2;
        sleep_ms(1);
    }
    conn_close(&c);
    buf_free(&cmd);
    buf_free(&want);
    return NULL;
}

/* A new connection answers PING (a few tries if the server says it is
 * full while it still closes the abandoned ones). */
static void check_new_connection(const char *when)
{
    char err[1024] = "";
    int64_t deadline = now_ms() + TIMEOUT_MS;
    do {
        struct conn c = {.fd = connect_server(0), .name = "check"};
        if (c.fd < 0) {
            snprintf(err, sizeof err, "connect: %s", strerror(errno));
        } else {
            int rc = simple_call(&c, "*1\r\n$4\r\nPING\r\n", 14, "+PONG\r\n", 7, err,
                                 sizeof err);
            conn_close(&c);
            if (rc == 0)
                return;
        }
        sleep_ms(50);
    } while (now_ms() < deadline);
    die("hostile: after %s, a new connection does not answer PING: %s", when, err);
}

static void set_linger0(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

static char slow_err[1024];

/* The slowloris: GET of a key, one byte every 50 ms. */
static void *slowloris(void *arg)
{
    (void)arg;
    struct conn c;
    conn_open(&c, "slowloris");
    static const char cmd[] = "*2\r\n$3\r\nGET\r\n$1\r\ns\r\n"; /* 20 bytes */
    for (size_t i = 0; i + 1 < sizeof cmd; i++) {
        if (conn_send(&c, cmd + i, 1)) {
            snprintf(slow_err, sizeof slow_err, "closed after %zu bytes", i);
            conn_close(&c);
            return NULL;
        }
        if (c.pos < c.in.len) {
            char *s = show(c.in.p + c.pos, c.in.len - c.pos);
            snprintf(slow_err, sizeof slow_err, "answered after %zu of 20 bytes: %s",
                     i + 1, s);
            free(s);
            conn_close(&c);
            return NULL;
        }
        sleep_ms(50);
    }
    const char *p;
    size_t n;
    int rv = conn_read_value(&c, &p, &n);
    static const char want[] = "$5\r\nloris\r\n";
    if (rv != RV_OK || n != sizeof want - 1 || memcmp(p, want, n)) {
        char *s = show(p, n);
        snprintf(slow_err, sizeof slow_err, "%s; got %s, want \"$5\\r\\nloris\\r\\n\"",
                 rv_text(rv), s);
        free(s);
    }
    conn_close(&c);
    return NULL;
}

#define ABANDON 2000
#define BIG_KEYS 50
#define BIG_SIZE (100 * 1024)

static void big_value(int k, struct buf *out)
{
    out->len = 0;
    buf_reserve(out, BIG_SIZE);
    for (size_t j = 0; j < BIG_SIZE; j++)
        out->p[j] = (char)('a' + (k + j / 4096) % 26);
    out->len = BIG_SIZE;
}

static void mget_big(struct buf *out)
{
    buf_printf(out, "*%d\r\n$4\r\nMGET\r\n", BIG_KEYS + 1);
    for (int k = 0; k < BIG_KEYS; k++) {
        char key[32];
        int n = snprintf(key, sizeof key, "big:%02d", k);
        buf_printf(out, "$%d\r\n%s\r\n", n, key);
    }
}

/* Reads a full MGET of the big keys and checks every value. */
static void check_big_mget(const char *when)
{
    struct conn c;
    conn_open(&c, "big-reader");
    struct buf cmd = {0}, val = {0};
    mget_big(&cmd);
    conn_send(&c, cmd.p, cmd.len);
    const char *p;
    size_t n;
    int rv = conn_read_value(&c, &p, &n);
    if (rv != RV_OK) {
        char *s = show(p, n);
        die("hostile: MGET of %d values of %d bytes (%s): %s: %s", BIG_KEYS, BIG_SIZE,
            when, rv_text(rv), s);
    }
    char head[16];
    int hn = snprintf(head, sizeof head, "*%d\r\n", BIG_KEYS);
    if (n < (size_t)hn || memcmp(p, head, (size_t)hn))
        die("hostile: MGET of the big values (%s): not an array of %d", when, BIG_KEYS);
    size_t off = (size_t)hn;
    for (int k = 0; k < BIG_KEYS; k++) {
        big_value(k, &val);
        char vh[32];
        int vn = snprintf(vh, sizeof vh, "$%d\r\n", BIG_SIZE);
        if (off + (size_t)vn + BIG_SIZE + 2 > n || memcmp(p + off, vh, (size_t)vn) ||
            memcmp(p + off + vn, val.p, BIG_SIZE) ||
            memcmp(p + off + vn + BIG_SIZE, "\r\n", 2))
            die("hostile: MGET of the big values (%s): value %d is wrong", when, k);
        off += (size_t)vn + BIG_SIZE + 2;
    }
    conn_close(&c);
    buf_free(&cmd);
    buf_free(&val);
}

/* --benchmark PATH: a redis-benchmark run alongside the hostile clients,
 * which must finish with no error (its output goes to a file read after). */
static const char *bench_path;
static pid_t bench_pid = -1;
static char bench_out[] = "/tmp/test_kvstore_bench.XXXXXX";

extern char **environ;

static void bench_start(void)
{
    if (!bench_path)
        return;
    int fd = mkstemp(bench_out);
    if (fd < 0)
        die("mkstemp: %s", strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd, 1);
    posix_spawn_file_actions_adddup2(&fa, fd, 2);
    char *args[] = {(char *)bench_path, "-h", g_host, "-p", g_port, "-t", "set,get,incr,mset",
                    "-n", "20000", "-r", "1000", "-c", "20", "-P", "4", "-q", NULL};
    int rc = posix_spawn(&bench_pid, bench_path, &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fd);
    if (rc != 0)
        die("hostile: cannot start %s: %s", bench_path, strerror(rc));
}

/* Waits for the benchmark (bounded: 120 s) and checks it saw no error:
 * exit status 0, a rate for each of its four tests, no "rror". */
static void bench_finish(void)
{
    if (bench_pid < 0)
        return;
    int st = 0;
    int64_t end = now_ms() + 120000;
    pid_t r;
    while ((r = waitpid(bench_pid, &st, WNOHANG)) == 0 && now_ms() < end)
        sleep_ms(50);
    if (r == 0) {
        kill(bench_pid, SIGKILL);
        waitpid(bench_pid, &st, 0);
        die("hostile: redis-benchmark did not finish in 120 s");
    }
    bench_pid = -1;
    FILE *f = fopen(bench_out, "r");
    char line[4096];
    int rates = 0, errors = 0;
    while (f && fgets(line, sizeof line, f)) {
        /* -q rewrites its progress line with \r: look at the last piece */
        char *last = strrchr(line, '\r');
        last = last ? last + 1 : line;
        rates += strstr(last, "requests per second") != NULL;
        if (strstr(line, "rror"))
            errors++, fprintf(stderr, "redis-benchmark: %s", last);
    }
    if (f)
        fclose(f);
    unlink(bench_out);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || errors || rates != 4)
        die("hostile: redis-benchmark alongside the hostile clients: exit %d, %d errors, "
            "%d of 4 tests finished", WIFEXITED(st) ? WEXITSTATUS(st) : -1, errors, rates);
    printf("test_kvstore: hostile: redis-benchmark ran alongside (4 tests x 20000 "
           "requests, no error)\n");
}

static void run_hostile(void)
{
    int64_t t0 = now_ms();
    bench_start();
    struct conn setup;
    conn_open(&setup, "setup");
    char err[1024];
    static const char set_s[] = "*3\r\n$3\r\nSET\r\n$1\r\ns\r\n$5\r\nloris\r\n";
    if (simple_call(&setup, set_s, sizeof set_s - 1, "+OK\r\n", 5, err, sizeof err))
        die("hostile: SET s loris: %s", err);

    pthread_t good, slow;
    atomic_store(&good_stop, false);
    if (pthread_create(&good, NULL, good_client, NULL))
        die("pthread_create failed");

    /* 1. Connections opened and abandoned, while a slowloris is served. */
    if (pthread_create(&slow, NULL, slowloris, NULL))
        die("pthread_create failed");
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    long nab = ABANDON;
    if (rl.rlim_cur != RLIM_INFINITY && (long)rl.rlim_cur - 64 < nab) {
        nab = (long)rl.rlim_cur - 64;
        printf("test_kvstore: RLIMIT_NOFILE is %ld: %ld abandoned connections, not %d\n",
               (long)rl.rlim_cur, nab, ABANDON);
    }
    int *fds = xmalloc(sizeof *fds * (size_t)nab);
    static const char *const partial[] = {
        "",                                            /* nothing at all */
        "*2\r\n$3\r\nGET\r\n$3\r\nfo",                 /* mid-argument */
        "*1\r\n$4\r\nPING\r\n",                        /* a whole command, never read */
        "PIN",                                         /* mid-inline */
        "*3\r\n$3\r\nSET\r\n$8\r\nabandon",            /* mid-key */
        "*3\r\n$3\r\nSET\r\n$1\r\nz\r\n$100000\r\nzz", /* a big value announced */
    };
    size_t npartial = sizeof partial / sizeof partial[0];
    for (long i = 0; i < nab; i++) {
        fds[i] = connect_server(0);
        if (fds[i] < 0)
            die("hostile: connection %ld of %ld: %s", i + 1, nab, strerror(errno));
        const char *s = partial[(size_t)i % npartial];
        if (*s)
            send(fds[i], s, strlen(s), MSG_NOSIGNAL); /* small: the buffer takes it */
    }
    for (long i = 0; i < nab; i++) {
        if (i % 3 == 0)
            set_linger0(fds[i]); /* a reset rather than a FIN */
        close(fds[i]);
    }
    free(fds);
    pthread_join(slow, NULL);
    if (slow_err[0])
        die("hostile: slowloris: %s", slow_err);
    check_new_connection("abandoned connections");
    int64_t t1 = now_ms();

    /* 2. Peers that reset while a big reply is being written. */
    struct buf cmd = {0}, val = {0};
    buf_printf(&cmd, "*%d\r\n$4\r\nMSET\r\n", 2 * BIG_KEYS + 1);
    for (int k = 0; k < BIG_KEYS; k++) {
        char key[32];
        int n = snprintf(key, sizeof key, "big:%02d", k);
        big_value(k, &val);
        buf_printf(&cmd, "$%d\r\n%s\r\n$%d\r\n", n, key, BIG_SIZE);
        buf_add(&cmd, val.p, val.len);
        buf_add(&cmd, "\r\n", 2);
    }
    if (simple_call(&setup, cmd.p, cmd.len, "+OK\r\n", 5, err, sizeof err))
        die("hostile: MSET of %d values of %d bytes: %s", BIG_KEYS, BIG_SIZE, err);
    check_big_mget("before the resets");
    cmd.len = 0;
    for (int r = 0; r < 3; r++) /* three MGETs pipelined: 15 MiB of replies */
        mget_big(&cmd);
    static const size_t read_first[] = {0, 1, 1000, 65536, 1 << 20, 6 << 20};
    for (size_t round = 0; round < 2 * sizeof read_first / sizeof read_first[0];
         round++) {
        int fd = connect_server(4096);
        if (fd < 0)
            die("hostile: connect: %s", strerror(errno));
        struct conn c = {.fd = fd};
        snprintf(c.name, sizeof c.name, "resetter");
        conn_send(&c, cmd.p, cmd.len);
        size_t want = read_first[round % (sizeof read_first / sizeof read_first[0])];
        int64_t deadline = now_ms() + TIMEOUT_MS; /* without progress */
        while (c.in.len < want && now_ms() < deadline) {
            int f = conn_fill(&c, 100);
            if (f < 0)
                break;
            if (f > 0)
                deadline = now_ms() + TIMEOUT_MS;
        }
        if (c.in.len < want)
            die("hostile: the big reply stopped at %zu bytes (%s; %zu wanted before the "
                "reset)",
                c.in.len, c.eof ? "closed" : "nothing for 10 s", want);
        if (round >= sizeof read_first / sizeof read_first[0])
            sleep_ms(20); /* the second time, let the server fill its buffers */
        set_linger0(c.fd);
        conn_close(&c);
        check_new_connection("a reset during a big reply");
    }
    check_big_mget("after the resets");
    int64_t t2 = now_ms();

    bench_finish();
    atomic_store(&good_stop, true);
    pthread_join(good, NULL);
    if (good_err[0])
        die("hostile: the well-behaved client saw an error: %s", good_err);
    if (good_ops < 2)
        die("hostile: the well-behaved client did nothing");

    static const char flush[] = "*1\r\n$8\r\nFLUSHALL\r\n";
    if (simple_call(&setup, flush, sizeof flush - 1, "+OK\r\n", 5, err, sizeof err))
        die("hostile: FLUSHALL: %s", err);
    conn_close(&setup);
    buf_free(&cmd);
    buf_free(&val);
    printf("test_kvstore: hostile: %ld connections abandoned and a slowloris served "
           "(%.1f s), %zu resets during a 15 MiB reply (%.1f s); the well-behaved "
           "client made %ld calls without an error\n",
           nab, (double)(t1 - t0) / 1000, 2 * sizeof read_first / sizeof read_first[0],
           (double)(t2 - t1) / 1000, good_ops);
}

/* ---- servers ------------------------------------------------------------ */

static void *drain(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char b[4096];
    ssize_t n;
    while ((n = read(fd, b, sizeof b)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && write(STDERR_FILENO, b, (size_t)n) < 0) {
        }
    close(fd);
    return NULL;
}

/* Starts argv[0] with its stdout on a pipe; returns the pipe's read end. */
static int spawn(char *const argv[])
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC))
        die("pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* if the test dies (a timeout) */
        dup2(pfd[1], STDOUT_FILENO);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, STDIN_FILENO);
        execv(argv[0], argv);
        fprintf(stderr, "test_kvstore: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    setpgid(pid, pid); /* (both sides: whichever runs first) */
    server_pid = pid;
    return pfd[0];
}

static void start_drain(int fd)
{
    if (pthread_create(&drain_thread, NULL, drain, (void *)(intptr_t)fd))
        die("pthread_create failed");
    drain_started = true;
}

/* SIGTERM, then the exit within 10 s: its wait status, or -1 (killed). */
static int stop_server(void)
{
    if (server_pid <= 0)
        return 0;
    kill(server_pid, SIGTERM);
    int64_t deadline = now_ms() + TIMEOUT_MS;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(server_pid, &status, WNOHANG);
        if (r == server_pid)
            break;
        if (now_ms() >= deadline) {
            kill_server();
            status = -1;
            break;
        }
        sleep_ms(10);
    }
    server_pid = -1;
    if (drain_started)
        pthread_join(drain_thread, NULL);
    drain_started = false;
    return status;
}

static void start_kvstore(const char *path, int nextra, char **extra)
{
    struct stat st;
    if (stat(path, &st) != 0)
        die("%s: %s", path, strerror(errno));
    char **argv = xmalloc(sizeof *argv * (size_t)(nextra + 6));
    int k = 0;
    argv[k++] = (char *)path;
    argv[k++] = "--port";
    argv[k++] = "0";
    argv[k++] = "--threads";
    argv[k++] = "2";
    for (int i = 0; i < nextra; i++)
        argv[k++] = extra[i];
    argv[k] = NULL;
    int fd = spawn(argv);
    free(argv);
    /* The first line: "kvstore: listening on 127.0.0.1:PORT..." */
    char line[512];
    size_t n = 0;
    int64_t deadline = now_ms() + TIMEOUT_MS;
    while (n < sizeof line - 1 && (n == 0 || line[n - 1] != '\n')) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int64_t left = deadline - now_ms();
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            die("%s printed no first line within 10 s", path);
        ssize_t r = read(fd, line + n, 1);
        if (r <= 0)
            die("%s exited (or closed its stdout) before its first line", path);
        n++;
    }
    line[n] = '\0';
    static const char prefix[] = "kvstore: listening on 127.0.0.1:";
    if (strncmp(line, prefix, sizeof prefix - 1) ||
        !isdigit((unsigned char)line[sizeof prefix - 1]))
        die("%s: its first line is not \"%sPORT...\": %s", path, prefix, line);
    long port = strtol(line + sizeof prefix - 1, NULL, 10);
    if (port <= 0 || port > 65535)
        die("%s: bad port in its first line: %s", path, line);
    snprintf(g_port, sizeof g_port, "%ld", port);
    printf("test_kvstore: %s", line);
    fflush(stdout);
    start_drain(fd);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
        getsockname(fd, (struct sockaddr *)&a, &len))
        die("finding a free port: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin_port);
}

static void start_redis(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "test_kvstore: %s: %s: SKIP\n", path, strerror(errno));
        exit(77);
    }
    for (int attempt = 0; attempt < 5; attempt++) {
        char port[16];
        snprintf(port, sizeof port, "%d", free_port());
        /* --databases 1: the kvstore has one database, so SELECT 1 is out of
         * range on both. */
        char *argv[] = {
            (char *)path, "--port", port,        "--save",      "",  "--appendonly",
            "no",         "--bind", "127.0.0.1", "--databases", "1", "--loglevel",
            "warning",    NULL};
        start_drain(spawn(argv));
        snprintf(g_port, sizeof g_port, "%s", port);
        int64_t deadline = now_ms() + TIMEOUT_MS;
        while (now_ms() < deadline) {
            if (waitpid(server_pid, NULL, WNOHANG) == server_pid) {
                server_pid = -1;
                break; /* the port was taken meanwhile? another one */
            }
            int fd = connect_server(0);
            if (fd >= 0) {
                struct conn c = {.fd = fd};
                char err[256];
                int rc = simple_call(&c, "*1\r\n$4\r\nPING\r\n", 14, "+PONG\r\n", 7, err,
                                     sizeof err);
                conn_close(&c);
                if (rc == 0) {
                    printf("test_kvstore: %s on 127.0.0.1:%s\n", path, port);
                    fflush(stdout);
                    return;
                }
            }
            sleep_ms(20);
        }
        if (server_pid > 0)
            kill_server();
        pthread_join(drain_thread, NULL);
        drain_started = false;
    }
    die("%s did not start (5 attempts)", path);
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: test_kvstore [--cases FILE] [--no-hostile] [--reference]\n"
                    "         [--benchmark REDIS_BENCHMARK]\n"
                    "         (--spawn KVSTORE [ARGS...] | --redis REDIS_SERVER | --addr "
                    "HOST:PORT)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    bool hostile = true, spawned = false;
    int i = 1;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--cases") && i + 1 < argc)
            cases_path = argv[++i];
        else if (!strcmp(argv[i], "--no-hostile"))
            hostile = false;
        else if (!strcmp(argv[i], "--reference"))
            reference = true;
        else if (!strcmp(argv[i], "--benchmark") && i + 1 < argc)
            bench_path = argv[++i];
        else
            break;
    }
    if (i + 1 >= argc)
        usage();
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    raise_nofile();
    load_cases();
    int64_t t0 = now_ms();
    if (!strcmp(argv[i], "--spawn")) {
        start_kvstore(argv[i + 1], argc - i - 2, argv + i + 2);
        spawned = true;
    } else if (!strcmp(argv[i], "--redis") && i + 2 == argc) {
        start_redis(argv[i + 1]);
        reference = true;
    } else if (!strcmp(argv[i], "--addr") && i + 2 == argc) {
        const char *colon = strrchr(argv[i + 1], ':');
        if (!colon || (size_t)(colon - argv[i + 1]) >= sizeof g_host)
            usage();
        snprintf(g_host, sizeof g_host, "%.*s", (int)(colon - argv[i + 1]), argv[i + 1]);
        snprintf(g_port, sizeof g_port, "%s", colon + 1);
    } else {
        usage();
    }
    run_script();
    int64_t t1 = now_ms();
    if (hostile)
        run_hostile();
    int64_t t2 = now_ms();
    if (server_pid > 0) {
        int status = stop_server();
        if (spawned) {
            if (status == -1)
                die("the server did not exit within 10 s of SIGTERM");
            if (WIFSIGNALED(status))
                die("the server died of signal %d after SIGTERM", WTERMSIG(status));
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                die("the server exited with status %d after SIGTERM",
                    WEXITSTATUS(status));
            printf("test_kvstore: the server exited with status 0 after SIGTERM\n");
        }
    }
    printf("test_kvstore: ok (script %.1f s, hostile %.1f s)\n", (double)(t1 - t0) / 1000,
           (double)(t2 - t1) / 1000);
    return 0;
}
