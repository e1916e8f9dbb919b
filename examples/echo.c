/*
 * echo — a TCP (or Unix-socket) echo server built the actor way.
 *
 *   echo (supervisor, one_for_one)
 *   |-- acceptor-0   loop 0: a listener on the address (SO_REUSEPORT)
 *   |   |-- conn     one actor per connection: reads, echoes, ends at EOF
 *   |   `-- conn
 *   `-- acceptor-1   loop 1: a listener on the same address
 *       `-- conn
 *
 * One acceptor per loop, each with its own listener on the same address
 * (tr_listen_opts.reuseport): the kernel spreads new connections over
 * them, so every loop accepts its own share and no connection crosses a
 * thread. The first acceptor learns the port when port 0 was asked for;
 * the others bind that port. An acceptor spawns a connection actor as its
 * own child (tr_spawn from the acceptor: the same loop) and hands it the
 * socket with tr_sock_give. The connection actor reads continuously from
 * TR_MSG_SOCK_GIVEN on and echoes every TR_MSG_SOCK_DATA; when its write
 * queue crosses the high water mark (TR_MSG_SOCK_THROTTLED) it pauses its
 * reads until TR_MSG_SOCK_UNTHROTTLED, so a peer that sends faster than it
 * reads is held back by the kernel's window — backpressure end to end,
 * and memory bounded per connection. Reads of TR_SOCK_KEEP_MIN bytes or
 * more come as the read buffer itself: the echo keeps it (tr_msg_keep) and
 * writes it out without a copy (tr_sock_write_owned).
 *
 * With --unix PATH there is one listener (a Unix socket cannot be shared
 * with SO_REUSEPORT): acceptor-0 spawns the connection actors round-robin
 * over the loops and hands each its socket across threads — the same
 * tr_sock_give. --handover does the same over TCP (one listener on loop
 * 0, no SO_REUSEPORT), the layout for a platform without SO_REUSEPORT;
 * docs/networking.md compares the two.
 *
 * Stopping (Ctrl-C, SIGTERM: the runtime's stop_on_signals) stops the tree
 * in order: the supervisor stops its acceptors newest first; an acceptor's
 * listener closes as its exit begins, so nothing new is accepted, then its
 * connection actors end one by one, and each socket's queued echoes still
 * go out (its linger_ms) after its owner has ended. See docs/networking.md.
 *
 *   ./build/examples/echo [--port 7000] [--host 127.0.0.1] [--threads N]
 *   ./build/examples/echo --unix /tmp/echo.sock
 *   ./build/examples/echo --handover      (TCP, one listener handing over)
 *   ./build/examples/echo --selftest      (what ctest runs: an ephemeral
 *       port, a few client connections from this process, then the stop)
 *
 * Try it: `nc 127.0.0.1 7000`.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <troupe.h>

#define MAX_LOOPS 256

/* What each acceptor is started with (copied by the supervisor: every
 * restart starts from it again). */
typedef struct acceptor_arg {
    char host[64];
    char unix_path[96];
    int port;           /* 0: an ephemeral one (the first acceptor's) */
    uint32_t max_conns; /* per listener; 0: troupe's default */
    int spread;         /* 1: one listener (--unix, --handover); connection
                         * actors round-robin over the loops */
} acceptor_arg;

/* The port the first acceptor bound when port 0 was asked for: the other
 * acceptors (and a restarted first one) bind the same. */
static _Atomic int bound_port;

/* Counters for the summary (summed when actors end). */
static _Atomic uint64_t conns_total, bytes_total;
static _Atomic uint64_t accepted_per_loop[MAX_LOOPS], served_per_loop[MAX_LOOPS];

/* ---- a connection: echo what it reads -------------------------------------------- */

typedef struct conn {
    tr_sock s;
    uint64_t bytes;
} conn;

static int conn_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    conn *c = state;
    switch (msg->type) {
    case TR_MSG_SOCK_GIVEN: { /* the acceptor handed us the socket: start reading */
        c->s = msg->ref;
        int loop = tr_loop_index(self);
        if (loop >= 0 && loop < MAX_LOOPS)
            atomic_fetch_add(&served_per_loop[loop], 1);
        return tr_sock_read(self, c->s, TR_SOCK_CONTINUOUS);
    }
    case TR_MSG_SOCK_DATA: {
        int rc;
        void *buf = (msg->flags & TR_MSG_OWNED) ? tr_msg_keep(self, msg) : NULL;
        if (buf) { /* a large read: send the read buffer itself back */
            rc = tr_sock_write_owned(self, c->s, buf, msg->len, free);
            if (rc != 0)
                free(buf);
        } else {
            rc = tr_sock_write(self, c->s, msg->data, msg->len);
        }
        c->bytes += msg->len;
        if (rc == TR_ECLOSED) /* the connection is going away */
            return tr_exit(self, TR_EXIT_NORMAL);
        return rc; /* anything else ends this actor with the error (logged) */
    }
    case TR_MSG_SOCK_THROTTLED: /* the peer reads slower than it sends */
        return tr_sock_read(self, c->s, TR_SOCK_PAUSE);
    case TR_MSG_SOCK_UNTHROTTLED:
        return tr_sock_read(self, c->s, TR_SOCK_CONTINUOUS);
    case TR_MSG_SOCK_EOF:    /* the peer is done: end; the queued echoes */
    case TR_MSG_SOCK_CLOSED: /* still go out as the socket closes */
        return tr_exit(self, TR_EXIT_NORMAL);
    }
    return 0;
}

static void conn_terminate(tr_actor *self, void *state, const tr_exit_reason *reason)
{
    (void)self;
    (void)reason;
    conn *c = state;
    atomic_fetch_add(&conns_total, 1);
    atomic_fetch_add(&bytes_total, c->bytes);
}

static void conn_describe(tr_actor *self, void *state, char *buf, size_t len)
{
    conn *c = state;
    char peer[128] = "?";
    tr_sock_addr(self, c->s, 1, peer, sizeof peer);
    snprintf(buf, len, "%s, %llu bytes echoed", peer, (unsigned long long)c->bytes);
}

static const tr_behavior conn_b = {.name = "conn", .state_size = sizeof(conn),
                                   .receive = conn_receive, .terminate = conn_terminate,
                                   .describe = conn_describe};

/* ---- an acceptor: one listener, one child per connection -------------------------- */

typedef struct acceptor {
    acceptor_arg a;
    tr_sock listener;
    char addr[128];
} acceptor;

static int acceptor_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    acceptor *ac = state;
    memcpy(&ac->a, arg, len < sizeof ac->a ? len : sizeof ac->a);
    tr_listen_opts lo = {.max_conns = ac->a.max_conns};
    if (ac->a.unix_path[0]) {
        snprintf(ac->addr, sizeof ac->addr, "unix:%s", ac->a.unix_path);
    } else {
        int port = ac->a.port ? ac->a.port : atomic_load(&bound_port);
        const char *fmt = strchr(ac->a.host, ':') ? "[%s]:%d" : "%s:%d"; /* IPv6 */
        snprintf(ac->addr, sizeof ac->addr, fmt, ac->a.host, port);
        lo.reuseport = !ac->a.spread; /* one listener per loop on the same address */
    }
    int rc = tr_listen(self, ac->addr, &lo, &ac->listener);
    if (rc != 0) {
        fprintf(stderr, "echo: listen on %s: %s\n", ac->addr, tr_strerror(rc));
        return rc;
    }
    tr_sock_addr(self, ac->listener, 0, ac->addr, sizeof ac->addr); /* the real port */
    const char *colon = strrchr(ac->addr, ':');
    int zero = 0;
    if (!ac->a.unix_path[0] && colon)
        atomic_compare_exchange_strong(&bound_port, &zero, atoi(colon + 1));
    return 0;
}

static int acceptor_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    acceptor *ac = state;
    if (msg->type == TR_MSG_SOCK_ACCEPTED) {
        tr_sock s = msg->ref; /* ours for now, reads paused */
        tr_spawn_opts o;
        tr_spawn_opts_init(&o);
        o.loop = ac->a.spread ? TR_LOOP_ROUND_ROBIN : TR_LOOP_DEFAULT;
        tr_pid c;
        int rc = tr_spawn(self, &conn_b, &o, &c);
        if (rc != 0) { /* stopping (TR_ESTOPPED), or out of actors */
            tr_sock_close(self, s);
            return 0;
        }
        rc = tr_sock_give(self, s, c);
        if (rc != 0) {
            tr_sock_close(self, s);
            tr_signal_exit(tr_runtime_of(self), c, TR_EXIT_SHUTDOWN);
            return 0;
        }
        int loop = tr_loop_index(self);
        if (loop >= 0 && loop < MAX_LOOPS)
            atomic_fetch_add(&accepted_per_loop[loop], 1);
        return 0;
    }
    if (msg->type == TR_MSG_SOCK_CLOSED && msg->ref == ac->listener) {
        int32_t why = TR_ESYSTEM;
        if (msg->len >= sizeof why)
            memcpy(&why, msg->data, sizeof why);
        return why; /* the listener failed: fail, and the supervisor restarts us */
    }
    return 0;
}

static void acceptor_describe(tr_actor *self, void *state, char *buf, size_t len)
{
    acceptor *ac = state;
    tr_sock_info info;
    if (tr_sock_info_get(self, ac->listener, &info) == 0)
        snprintf(buf, len, "listening on %s, %u connections open", ac->addr, info.conns);
    else
        snprintf(buf, len, "%s", ac->addr);
}

static const tr_behavior acceptor_b = {.name = "acceptor", .state_size = sizeof(acceptor),
                                       .init = acceptor_init, .receive = acceptor_receive,
                                       .describe = acceptor_describe};

/* ---- --selftest: plain POSIX clients on the main thread ---------------------------- */

static int client_connect(const acceptor_arg *a, int port)
{
    int fd;
    if (a->unix_path[0]) {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        snprintf(sun.sun_path, sizeof sun.sun_path, "%s", a->unix_path);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0)
            goto fail;
    } else {
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0)
            goto fail;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    struct timeval tv = {.tv_sec = 10}; /* a broken server fails the test, never hangs it */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
fail:
    perror("selftest: connect");
    if (fd >= 0)
        close(fd);
    return -1;
}

/* Sends `len` bytes and reads them back, both at once (poll), so that a
 * payload larger than every buffer on the way flows through the server's
 * backpressure instead of deadlocking; with `half_close`, ends the sending
 * half after the last byte and expects end of stream after the echo.
 * Returns 0 when every byte came back equal. */
static int echo_check(int fd, const unsigned char *out, size_t len, int half_close)
{
    unsigned char *in = malloc(len ? len : 1);
    size_t sent = 0, got = 0;
    int rc = -1, shut = 0;
    while (in && got < len) {
        if (sent == len && half_close && !shut) {
            shutdown(fd, SHUT_WR);
            shut = 1;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < len ? POLLOUT : 0)};
        if (poll(&p, 1, 10000) <= 0) {
            fprintf(stderr, "selftest: no progress for 10 s (%zu/%zu echoed)\n", got, len);
            goto out;
        }
        if ((p.revents & POLLOUT) && sent < len) {
            size_t chunk = len - sent < 65536 ? len - sent : 65536;
            ssize_t n = send(fd, out + sent, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                goto out;
            if (n > 0)
                sent += (size_t)n;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = recv(fd, in + got, len - got, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                fprintf(stderr, "selftest: connection ended after %zu/%zu bytes\n", got, len);
                goto out;
            }
            if (n > 0)
                got += (size_t)n;
        }
    }
    if (in && memcmp(in, out, len) != 0) {
        fprintf(stderr, "selftest: the echo differs from what was sent\n");
        goto out;
    }
    rc = 0;
    if (half_close) { /* the server saw EOF, ended, and its socket closed */
        if (!shut)
            shutdown(fd, SHUT_WR);
        char c;
        ssize_t n = recv(fd, &c, 1, 0);
        if (n != 0) {
            fprintf(stderr, "selftest: no end of stream after the echo (%zd)\n", n);
            rc = -1;
        }
    }
out:
    free(in);
    return rc;
}

static int selftest(tr_runtime *rt, const acceptor_arg *a, unsigned loops)
{
    enum { CONNS = 8, ROUNDS = 50, BIG = 1 << 20 };
    int port = atomic_load(&bound_port), fds[CONNS], failed = 0;
    unsigned char *big = malloc(BIG);
    for (size_t i = 0; big && i < BIG; i++)
        big[i] = (unsigned char)(i * 7 + (i >> 12));
    for (int i = 0; i < CONNS; i++)
        fds[i] = client_connect(a, port);

    /* 1. request/response round trips on every connection, interleaved */
    for (int r = 0; r < ROUNDS && !failed; r++)
        for (int i = 0; i < CONNS && !failed; i++) {
            unsigned char msg[64];
            memset(msg, 'a' + (r + i) % 26, sizeof msg);
            if (fds[i] < 0 || echo_check(fds[i], msg, sizeof msg, 0) != 0)
                failed = 1;
        }
    printf("1. %d connections x %d round trips of 64 bytes: %s\n", CONNS, ROUNDS,
           failed ? "FAILED" : "ok");

    /* 2. 1 MiB through one connection: far above the write queue's high water
     * mark, so the connection actor is throttled and pauses its reads */
    int f2 = !big || fds[0] < 0 || echo_check(fds[0], big, BIG, 0) != 0;
    printf("2. 1 MiB echoed through one connection (backpressure): %s\n",
           f2 ? "FAILED" : "ok");

    /* 3. send 1 MiB and end the sending half: the echo comes back whole,
     * then end of stream — the actor ended at EOF, and its socket's queued
     * writes drained after it */
    int f3 = !big || fds[1] < 0 || echo_check(fds[1], big, BIG, 1) != 0;
    printf("3. 1 MiB then end of stream: all of it echoed, then the server's "
           "end of stream: %s\n", f3 ? "FAILED" : "ok");

    printf("   connections accepted per loop:");
    for (unsigned l = 0; l < loops && l < MAX_LOOPS; l++)
        printf(" %llu", (unsigned long long)atomic_load(&accepted_per_loop[l]));
    printf("; served per loop:");
    for (unsigned l = 0; l < loops && l < MAX_LOOPS; l++)
        printf(" %llu", (unsigned long long)atomic_load(&served_per_loop[l]));
    printf("\n4. the tree:\n");
    tr_runtime_tree_print(rt, stdout);

    /* 5. stop with connections open: each ends (end of stream, or a reset) */
    tr_runtime_stop(rt);
    int f5 = 0;
    for (int i = 2; i < CONNS; i++) {
        char c;
        if (fds[i] < 0)
            continue;
        ssize_t n = recv(fds[i], &c, 1, 0);
        if (n != 0 && !(n < 0 && errno == ECONNRESET)) {
            fprintf(stderr, "selftest: connection %d still open after the stop (%zd, %s)\n",
                    i, n, n < 0 ? strerror(errno) : "data");
            f5 = 1;
        }
    }
    printf("5. stopped with %d connections open: each was closed: %s\n", CONNS - 2,
           f5 ? "FAILED" : "ok");
    for (int i = 0; i < CONNS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(big);
    return failed || f2 || f3 || f5;
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(FILE *f, const char *argv0)
{
    fprintf(f,
            "usage: %s [--port N] [--host ADDR] [--unix PATH] [--threads N]\n"
            "       %*s [--max-conns N] [--handover] [--selftest] [--help]\n"
            "  --port N       TCP port (default 7000; 0: an ephemeral one)\n"
            "  --host ADDR    numeric address to listen on (default 127.0.0.1;\n"
            "                 0.0.0.0 or :: for every interface)\n"
            "  --unix PATH    listen on a Unix-domain socket instead\n"
            "  --threads N    event loops, one listener each (default: the CPUs)\n"
            "  --max-conns N  connections open at once per listener (default 10000)\n"
            "  --handover     TCP with one listener (loop 0) that hands connections to\n"
            "                 the loops in turn, instead of a listener per loop\n"
            "  --selftest     listen on an ephemeral port, echo through a few client\n"
            "                 connections of this process, stop, exit 0 if all went well\n"
            "Runs until SIGINT or SIGTERM, then drains and exits.\n",
            argv0, (int)strlen(argv0), "");
}

/* A whole non-negative number of at most `max`, or -1. */
static long number(const char *s, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return (errno || end == s || *end || v < 0 || v > max) ? -1 : v;
}

int main(int argc, char **argv)
{
    acceptor_arg a = {.host = "127.0.0.1", .port = 7000};
    long threads = 0;
    int self_test = 0;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n = 0;
        if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
            usage(stdout, argv[0]);
            return 0;
        } else if (strcmp(f, "--selftest") == 0) {
            self_test = 1;
            continue;
        } else if (strcmp(f, "--handover") == 0) {
            a.spread = 1;
            continue;
        } else if (!v) {
            goto bad;
        } else if (strcmp(f, "--port") == 0 && (n = number(v, 65535)) >= 0) {
            a.port = (int)n;
        } else if (strcmp(f, "--host") == 0 && strlen(v) < sizeof a.host) {
            snprintf(a.host, sizeof a.host, "%s", v);
        } else if (strcmp(f, "--unix") == 0 && *v && strlen(v) < sizeof a.unix_path) {
            snprintf(a.unix_path, sizeof a.unix_path, "%s", v);
        } else if (strcmp(f, "--threads") == 0 && (n = number(v, MAX_LOOPS)) > 0) {
            threads = n;
        } else if (strcmp(f, "--max-conns") == 0 && (n = number(v, 1 << 24)) > 0) {
            a.max_conns = (uint32_t)n;
        } else {
            goto bad;
        }
        i++;
        continue;
    bad:
        fprintf(stderr, "%s: bad option: %s%s%s\n", argv[0], f, v ? " " : "", v ? v : "");
        usage(stderr, argv[0]);
        return 2;
    }
    if (self_test) {
        if (!a.unix_path[0])
            a.port = 0; /* an ephemeral port: never in the way of anything */
        if (!threads)
            threads = 2; /* two listeners, even on one core */
    }
    if (a.unix_path[0]) {
        struct stat st; /* a stale socket file of an earlier run */
        if (stat(a.unix_path, &st) == 0 && S_ISSOCK(st.st_mode))
            unlink(a.unix_path);
        a.spread = 1; /* one listener: hand connections to every loop */
    }
    /* a.spread (--unix, --handover): one listener, on loop 0 */

    tr_runtime_options o;
    tr_runtime_options_init(&o);
    o.loops = (unsigned)threads;
    o.stop_on_signals = 1; /* Ctrl-C: stop the tree in order, then return */
    tr_runtime *rt;
    int rc = tr_runtime_create(&rt, &o);
    if (rc == 0)
        rc = tr_runtime_start(rt);
    if (rc != 0) {
        fprintf(stderr, "echo: runtime: %s\n", tr_strerror(rc));
        return 1;
    }
    unsigned loops = tr_runtime_loops(rt);
    unsigned nacc = a.spread ? 1 : loops;

    /* The tree, as data: one acceptor per loop (just one with a.spread),
     * started in order (the first has bound its port before the second
     * starts). */
    tr_child_spec kids[MAX_LOOPS];
    char ids[MAX_LOOPS][24];
    for (unsigned i = 0; i < nacc; i++) {
        snprintf(ids[i], sizeof ids[i], "acceptor-%u", i);
        kids[i] = (tr_child_spec){.id = ids[i], .behavior = &acceptor_b, .arg = &a,
                                  .arg_len = sizeof a, .loop = TR_LOOP(i)};
    }
    tr_sup_spec spec = {.strategy = TR_ONE_FOR_ONE, .max_restarts = 10, .period_ms = 10000,
                        .children = kids, .nchildren = nacc};
    tr_pid sup;
    rc = tr_rt_sup_spawn(rt, &spec, NULL, &sup);
    if (rc != 0) {
        fprintf(stderr, "echo: the server did not start: %s\n", tr_strerror(rc));
        tr_runtime_free(rt);
        return 1;
    }
    if (a.unix_path[0])
        printf("echo: listening on unix:%s; %u loops take connections in turn\n",
               a.unix_path, loops);
    else if (a.spread)
        printf("echo: listening on %s%s%s:%d; one listener, %u loops take connections "
               "in turn\n", strchr(a.host, ':') ? "[" : "", a.host,
               strchr(a.host, ':') ? "]" : "", atomic_load(&bound_port), loops);
    else
        printf("echo: listening on %s%s%s:%d with %u loops, a listener each (SO_REUSEPORT)\n",
               strchr(a.host, ':') ? "[" : "", a.host, strchr(a.host, ':') ? "]" : "",
               atomic_load(&bound_port), loops);
    if (!self_test)
        printf("echo: Ctrl-C (SIGINT) or SIGTERM stops it\n");
    fflush(stdout);

    int failed = 0;
    if (self_test)
        failed = selftest(rt, &a, loops);
    tr_runtime_wait(rt);
    tr_runtime_free(rt);
    if (a.unix_path[0])
        unlink(a.unix_path);
    printf("echo: stopped; %llu connections served, %llu bytes echoed%s\n",
           (unsigned long long)atomic_load(&conns_total),
           (unsigned long long)atomic_load(&bytes_total),
           self_test ? (failed ? "; selftest FAILED" : "; selftest ok") : "");
    return failed;
}
