/*
 * echo — troupe's echo server against a plain libuv one, over loopback.
 *
 * Three servers, each in a process of its own (forked before anything else
 * starts, so none sees another's memory or threads):
 *
 *   troupe  the actor way, as examples/echo.c: a supervisor with one
 *           acceptor per loop (THREADS loops), each with its own listener on
 *           the same port (SO_REUSEPORT), a connection actor per connection
 *           (tr_sock_give), reads paused while writes are throttled, large
 *           reads echoed zero-copy (tr_msg_keep + tr_sock_write_owned);
 *   troupe, handover layout (examples/echo.c --handover): the same, but
 *           one listener (loop 0) whose acceptor spawns the connection
 *           actors round-robin over the loops (TR_LOOP_ROUND_ROBIN) and
 *           gives each its socket across threads;
 *   libuv   libuv's own echo server, single-threaded: uv_tcp_t listen,
 *           alloc_cb hands out a 64 KiB buffer (from a small free list:
 *           see lu_alloc), read_cb hands it to uv_write, write_cb gives it
 *           back. No flow control (the load never needs any).
 *
 * This process is the load client, plain POSIX sockets and epoll on one
 * thread. Three parts:
 *
 *  1. idle: `idle` connections held open against each server (batches of
 *     256: connect, send one byte, read its echo, so each is accepted and
 *     served), the server's VmRSS (/proc/PID/status) read before and after:
 *     rate = bytes of resident memory per connection (unit=bytes_per_conn,
 *     lower is better, not per second). RLIMIT_NOFILE is raised to the
 *     hard limit; if that is too low for `idle`, fewer are opened and the
 *     line says so (idle_limited=1, and a note on stderr).
 *  2. round trips: `conns` connections, each sending a request of `size`
 *     bytes and waiting for its whole echo before the next; `roundtrips` in
 *     all per round (spread evenly), for 64 B and 4 KiB requests. Rounds
 *     interleave the servers (the order alternates) and sizes; each line
 *     gives the median over the rounds: seconds (the rate is n / it) and
 *     p50/p99 of the round trip in microseconds (medians of each round's).
 *     The handover server runs the 64-byte size too.
 *  3. connection rate: `accepts` connections per round, `inflight` (16)
 *     at once, each: connect, one 64-byte request, its echo, close (the
 *     client closes first); a new one starts as one ends. The rate is
 *     connections per second; p50/p99 of connect + round trip. All three
 *     servers, interleaved with part 2's rounds (the order rotates).
 *
 * Lines (docs/benchmarks.md): echo_64, echo_4k, echo_idle, echo_accept
 * (impl=troupe, layout=reuseport), echo_64_handover, echo_accept_handover
 * (impl=troupe, layout=handover) and libuv_echo_64, libuv_echo_4k,
 * libuv_echo_idle, libuv_echo_accept (impl=libuv); peak_rss_kb is the
 * server process's VmHWM, ratio_libuv troupe's rate over libuv's (idle:
 * its bytes per connection over libuv's), ratio_reuseport the handover
 * layout's rate over the reuseport layout's. Check: every echo equal to
 * its request, every idle connection served, every connection of part 3
 * echoed, and the troupe servers stopping cleanly on SIGTERM (their
 * stop_on_signals).
 *
 *   echo [rounds=5] [roundtrips=50000] [idle=10000] [conns=50] [accepts=10000]
 *   echo --quick        3 rounds of 2,000 round trips, 100 idle connections,
 *                       500 connections per round for the connection rate
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "bench.h"

enum { TROUPE = 0, LIBUV = 1, HANDOVER = 2, NSERVERS = 3 };
static const char *const impl_name[] = {"troupe", "libuv", "troupe"};
static const char *const server_name[] = {"troupe", "libuv", "troupe (handover)"};
static const char *const placement[] = {"acceptor_per_loop", "single_loop",
                                        "one_acceptor_round_robin"};
static const char *const layout[] = {"reuseport", "single_listener", "handover"};

/* Part 3's connections in flight at once. */
#define ACCEPT_INFLIGHT 16u

/* ---- the troupe server ----------------------------------------------------- */

static _Atomic int srv_port; /* the port the first acceptor bound */

typedef struct conn { tr_sock s; } conn;

static int conn_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    conn *c = state;
    switch (msg->type) {
    case TR_MSG_SOCK_GIVEN:
        c->s = msg->ref;
        return tr_sock_read(self, c->s, TR_SOCK_CONTINUOUS);
    case TR_MSG_SOCK_DATA: {
        int rc;
        void *buf = (msg->flags & TR_MSG_OWNED) ? tr_msg_keep(self, msg) : NULL;
        if (buf) {
            rc = tr_sock_write_owned(self, c->s, buf, msg->len, free);
            if (rc != 0)
                free(buf);
        } else {
            rc = tr_sock_write(self, c->s, msg->data, msg->len);
        }
        return rc == TR_ECLOSED ? tr_exit(self, TR_EXIT_NORMAL) : rc;
    }
    case TR_MSG_SOCK_THROTTLED:
        return tr_sock_read(self, c->s, TR_SOCK_PAUSE);
    case TR_MSG_SOCK_UNTHROTTLED:
        return tr_sock_read(self, c->s, TR_SOCK_CONTINUOUS);
    case TR_MSG_SOCK_EOF:
    case TR_MSG_SOCK_CLOSED:
        return tr_exit(self, TR_EXIT_NORMAL);
    }
    return 0;
}

static const tr_behavior conn_b = {.name = "conn", .state_size = sizeof(conn),
                                   .receive = conn_receive};

/* An acceptor: its listener, and whether it hands connections round-robin
 * to the loops (the handover layout: the only listener) or keeps them on
 * its own loop (a listener per loop, SO_REUSEPORT). */
typedef struct acceptor {
    tr_sock ls;
    int handover;
} acceptor;

static int acceptor_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    acceptor *ac = state;
    tr_sock *ls = &ac->ls;
    if (arg && len == sizeof(int))
        memcpy(&ac->handover, arg, sizeof(int));
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", atomic_load(&srv_port));
    tr_listen_opts lo = {.max_conns = 1u << 20, .reuseport = !ac->handover};
    int rc = tr_listen(self, addr, &lo, ls);
    if (rc != 0) {
        fprintf(stderr, "echo: troupe server: listen on %s: %s\n", addr, tr_strerror(rc));
        return rc;
    }
    if (atomic_load(&srv_port) == 0 && tr_sock_addr(self, *ls, 0, addr, sizeof addr) == 0)
        atomic_store(&srv_port, atoi(strrchr(addr, ':') + 1));
    return 0;
}

static int acceptor_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    acceptor *ac = state;
    tr_sock *ls = &ac->ls;
    if (msg->type == TR_MSG_SOCK_ACCEPTED) {
        tr_spawn_opts o;
        tr_spawn_opts_init(&o);
        o.loop = ac->handover ? TR_LOOP_ROUND_ROBIN : TR_LOOP_DEFAULT;
        tr_pid c;
        if (tr_spawn(self, &conn_b, &o, &c) != 0) {
            tr_sock_close(self, msg->ref);
            return 0;
        }
        if (tr_sock_give(self, msg->ref, c) != 0) {
            tr_sock_close(self, msg->ref);
            tr_signal_exit(tr_runtime_of(self), c, TR_EXIT_SHUTDOWN);
        }
    } else if (msg->type == TR_MSG_SOCK_CLOSED && msg->ref == *ls) {
        return TR_ESYSTEM; /* the listener failed: the supervisor restarts us */
    }
    return 0;
}

static const tr_behavior acceptor_b = {.name = "acceptor", .state_size = sizeof(acceptor),
                                       .init = acceptor_init, .receive = acceptor_receive};

/* The server's log: warnings and errors only (the supervisor's start and
 * stop notes would land in every run's output). */
static void server_log(void *ud, tr_log_level level, const char *line)
{
    (void)ud;
    if (level >= TR_LOG_WARN)
        fprintf(stderr, "echo: troupe server: %s\n", line);
}

/* handover: one acceptor (loop 0) handing connections to every loop;
 * otherwise one acceptor per loop, each with its own listener. */
static int troupe_server(int wfd, int handover)
{
    tr_runtime_options o;
    bench_options(&o);
    o.log = server_log;
    const char *spin = getenv("SPIN_US"); /* (an experiment's knob) */
    if (spin)
        o.spin_us = (unsigned)atoi(spin);
    o.stop_on_signals = 1;
    tr_runtime *rt;
    if (tr_runtime_create(&rt, &o) != 0 || tr_runtime_start(rt) != 0)
        return 2;
    unsigned loops = tr_runtime_loops(rt);
    tr_child_spec kids[64];
    char ids[64][24];
    unsigned n = handover ? 1 : loops < 64 ? loops : 64;
    for (unsigned i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "acceptor-%u", i);
        kids[i] = (tr_child_spec){.id = ids[i], .behavior = &acceptor_b, .arg = &handover,
                                  .arg_len = sizeof handover, .loop = TR_LOOP(i)};
    }
    tr_sup_spec spec = {.children = kids, .nchildren = n};
    tr_pid sup;
    int rc = tr_rt_sup_spawn(rt, &spec, NULL, &sup);
    if (rc == 0) {
        int port = atomic_load(&srv_port);
        if (write(wfd, &port, sizeof port) != sizeof port)
            tr_runtime_stop(rt);
    }
    close(wfd);
    int wrc = tr_runtime_wait(rt); /* until SIGTERM */
    tr_runtime_free(rt);
    return rc != 0 ? 2 : wrc != 0;
}

/* ---- the plain libuv server (libuv's own echo example) ---------------------- */

typedef struct wreq { uv_write_t req; uv_buf_t buf; } wreq;

/* Read buffers of libuv's suggested size (64 KiB), recycled through a
 * small free list: with plain malloc/free, glibc gives the heap's top back
 * to the kernel whenever the buffers of one loop turn are freed together
 * (M_TRIM_THRESHOLD) and faults it in again on the next, which cut this
 * server's 50-connection rate by four on the benchmark's machine — a
 * floor has to be a fair one. */
#define LU_FREE_MAX 256
static void *lu_free[LU_FREE_MAX];
static unsigned lu_nfree;

static void lu_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)h;
    (void)size;
    void *b = lu_nfree ? lu_free[--lu_nfree] : malloc(65536);
    *buf = uv_buf_init(b, b ? 65536 : 0);
}

static void lu_release(void *b)
{
    if (b && lu_nfree < LU_FREE_MAX)
        lu_free[lu_nfree++] = b;
    else
        free(b);
}

static void lu_close_cb(uv_handle_t *h)
{
    free(h);
}

static void lu_write_cb(uv_write_t *req, int status)
{
    (void)status;
    wreq *w = (wreq *)req;
    lu_release(w->buf.base);
    free(w);
}

static void lu_read(uv_stream_t *c, ssize_t n, const uv_buf_t *buf)
{
    if (n > 0) {
        wreq *w = malloc(sizeof *w);
        w->buf = uv_buf_init(buf->base, (unsigned)n);
        uv_write(&w->req, c, &w->buf, 1, lu_write_cb);
        return;
    }
    lu_release(buf->base);
    if (n < 0)
        uv_close((uv_handle_t *)c, lu_close_cb);
}

static void lu_conn(uv_stream_t *srv, int status)
{
    if (status < 0)
        return;
    uv_tcp_t *c = malloc(sizeof *c);
    uv_tcp_init(srv->loop, c);
    if (uv_accept(srv, (uv_stream_t *)c) == 0) {
        uv_tcp_nodelay(c, 1);
        uv_read_start((uv_stream_t *)c, lu_alloc, lu_read);
    } else {
        uv_close((uv_handle_t *)c, lu_close_cb);
    }
}

static int libuv_server(int wfd)
{
    uv_loop_t *loop = uv_default_loop();
    uv_tcp_t srv;
    struct sockaddr_in a;
    uv_tcp_init(loop, &srv);
    uv_ip4_addr("127.0.0.1", 0, &a);
    if (uv_tcp_bind(&srv, (const struct sockaddr *)&a, 0) != 0 ||
        uv_listen((uv_stream_t *)&srv, 511, lu_conn) != 0)
        return 2;
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&srv, (struct sockaddr *)&got, &len);
    int port = ntohs(got.sin_port);
    if (write(wfd, &port, sizeof port) != sizeof port)
        return 2;
    close(wfd);
    return uv_run(loop, UV_RUN_DEFAULT); /* until SIGTERM ends the process */
}

/* ---- the client's side ---------------------------------------------------------- */

static long proc_kb(pid_t pid, const char *field)
{
    return bench_proc_status_kb((int)pid, field);
}

/* Forks a server; returns its pid and sets *port, or -1. */
static pid_t start_server(int which, int *port)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        _exit(which == LIBUV ? libuv_server(p[1]) : troupe_server(p[1], which == HANDOVER));
    }
    close(p[1]);
    struct pollfd pf = {.fd = p[0], .events = POLLIN};
    int ok = pid > 0 && poll(&pf, 1, 10000) == 1 &&
             read(p[0], port, sizeof *port) == sizeof *port && *port > 0;
    close(p[0]);
    if (!ok) {
        fprintf(stderr, "echo: the %s server did not start\n", server_name[which]);
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        return -1;
    }
    return pid;
}

/* SIGTERM, then up to 10 s for it to end; 1 if it ended with status 0. */
static int stop_server(pid_t pid)
{
    kill(pid, SIGTERM);
    for (int i = 0; i < 1000; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid)
            return (WIFEXITED(st) && WEXITSTATUS(st) == 0) ||
                   (WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return 0;
}

static int dial(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

/* Part 1: n idle connections; *kb0 / *kb1: the server's VmRSS before and
 * after. Returns 1 if every connection echoed its byte. */
static int idle_part(pid_t server, int port, unsigned n, long *kb0, long *kb1, double *secs)
{
    int *fds = malloc(n * sizeof *fds);
    unsigned open = 0;
    int ok = fds != NULL;
    usleep(100000); /* the server settled after its start */
    *kb0 = proc_kb(server, "VmRSS");
    double t0 = bench_now();
    while (ok && open < n) {
        unsigned batch = n - open < 256 ? n - open : 256;
        for (unsigned i = 0; ok && i < batch; i++) {
            int fd = dial(port);
            if (fd < 0 || send(fd, "x", 1, MSG_NOSIGNAL) != 1) {
                fprintf(stderr, "echo: idle connection %u: %s\n", open + i, strerror(errno));
                if (fd >= 0)
                    close(fd);
                ok = 0;
                break;
            }
            fds[open + i] = fd;
        }
        for (unsigned i = 0; ok && i < batch; i++) {
            char c;
            if (recv(fds[open + i], &c, 1, 0) != 1 || c != 'x') {
                fprintf(stderr, "echo: idle connection %u: no echo\n", open + i);
                ok = 0;
            }
        }
        if (ok)
            open += batch;
    }
    *secs = bench_now() - t0;
    usleep(100000);
    *kb1 = proc_kb(server, "VmRSS");
    for (unsigned i = 0; i < open; i++)
        close(fds[i]);
    free(fds);
    usleep(200000); /* let the server see them go */
    return ok;
}

typedef struct client {
    int fd;
    uint64_t left;   /* round trips still to do */
    uint64_t t0;     /* when the request went out */
    size_t sent, got;
    unsigned iter;
    unsigned char v; /* this request's byte */
} client;

static void request(client *c, size_t size, unsigned char *buf, int ep)
{
    c->v = (unsigned char)((c->fd * 31 + c->iter * 7) | 1);
    memset(buf, c->v, size);
    c->sent = c->got = 0;
    c->t0 = bench_now_ns();
    ssize_t k = send(c->fd, buf, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    c->sent = k > 0 ? (size_t)k : 0;
    if (c->sent < size) { /* rare: wait for room */
        struct epoll_event e = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
    }
}

/* Part 2, one round against one server: `n` round trips of `size` bytes
 * over `conns` connections. lat[0..n) gets each round trip's ns. Returns 1
 * if every echo was right. */
static int load_round(int port, unsigned conns, size_t size, uint64_t n, uint64_t *lat,
                      double *secs)
{
    client *cl = calloc(conns, sizeof *cl);
    unsigned char *out = malloc(size), *in = malloc(size);
    int ep = epoll_create1(0), ok = cl && out && in && ep >= 0;
    for (unsigned i = 0; cl && i < conns; i++)
        cl[i].fd = -1;
    for (unsigned i = 0; ok && i < conns; i++) {
        cl[i].fd = dial(port);
        if (cl[i].fd < 0) {
            ok = 0;
            break;
        }
        fcntl(cl[i].fd, F_SETFL, fcntl(cl[i].fd, F_GETFL) | O_NONBLOCK);
        cl[i].left = n / conns + (i < n % conns);
        struct epoll_event e = {.events = EPOLLIN, .data.ptr = &cl[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, cl[i].fd, &e);
    }
    uint64_t done = 0;
    double t0 = bench_now();
    for (unsigned i = 0; ok && i < conns; i++)
        if (cl[i].left)
            request(&cl[i], size, out, ep);
    struct epoll_event ev[64];
    while (ok && done < n) {
        int k = epoll_wait(ep, ev, 64, 10000);
        if (k <= 0) {
            fprintf(stderr, "echo: no progress for 10 s (%llu/%llu round trips)\n",
                    (unsigned long long)done, (unsigned long long)n);
            ok = 0;
            break;
        }
        for (int j = 0; ok && j < k; j++) {
            client *c = ev[j].data.ptr;
            if ((ev[j].events & EPOLLOUT) && c->sent < size) {
                memset(out, c->v, size);
                ssize_t s = send(c->fd, out + c->sent, size - c->sent,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
                if (s > 0)
                    c->sent += (size_t)s;
                if (c->sent == size) {
                    struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
                }
            }
            if (!(ev[j].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            ssize_t r = recv(c->fd, in, size - c->got, MSG_DONTWAIT);
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                continue;
            if (r <= 0) {
                fprintf(stderr, "echo: connection closed by the server\n");
                ok = 0;
                break;
            }
            for (ssize_t b = 0; b < r; b++)
                ok &= in[b] == c->v;
            c->got += (size_t)r;
            if (c->got == size) {
                lat[done++] = bench_now_ns() - c->t0;
                c->iter++;
                if (--c->left)
                    request(c, size, out, ep);
            }
        }
    }
    *secs = bench_now() - t0;
    for (unsigned i = 0; cl && i < conns; i++)
        if (cl[i].fd >= 0)
            close(cl[i].fd);
    if (ep >= 0)
        close(ep);
    free(cl);
    free(out);
    free(in);
    return ok;
}

/* Part 3: one connection of the connection rate, from connect to close. */
typedef struct dialer {
    int fd;
    int sent;        /* the request went out */
    size_t got;
    uint64_t t0;     /* before socket() and connect() */
    unsigned char v; /* this connection's byte */
} dialer;

/* Starts a connection in `d` (non-blocking connect; the request goes out
 * once it is writable). 0, or -1 with errno. */
static int dialer_start(dialer *d, int port, int ep, unsigned seq)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    d->t0 = bench_now_ns();
    d->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (d->fd < 0)
        return -1;
    if (connect(d->fd, (struct sockaddr *)&sin, sizeof sin) != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(d->fd);
        d->fd = -1;
        errno = e;
        return -1;
    }
    d->sent = 0;
    d->got = 0;
    d->v = (unsigned char)((seq * 13) | 1);
    struct epoll_event e = {.events = EPOLLOUT, .data.ptr = d};
    return epoll_ctl(ep, EPOLL_CTL_ADD, d->fd, &e);
}

/* Part 3, one round against one server: `n` connections, `inflight` at
 * once, each connect + one 64-byte round trip + close. lat[0..n) gets each
 * one's ns from connect to the whole echo. Returns 1 if every echo was
 * right. */
static int accept_round(int port, unsigned inflight, uint64_t n, uint64_t *lat,
                        double *secs)
{
    enum { SIZE = 64 };
    dialer *d = calloc(inflight, sizeof *d);
    int ep = epoll_create1(0), ok = d && ep >= 0;
    for (unsigned i = 0; d && i < inflight; i++)
        d[i].fd = -1;
    uint64_t started = 0, done = 0;
    unsigned char out[SIZE], in[SIZE];
    double t0 = bench_now();
    for (unsigned i = 0; ok && i < inflight && started < n; i++, started++)
        if (dialer_start(&d[i], port, ep, (unsigned)started) != 0) {
            fprintf(stderr, "echo: connect: %s\n", strerror(errno));
            ok = 0;
        }
    struct epoll_event ev[64];
    while (ok && done < n) {
        int k = epoll_wait(ep, ev, 64, 10000);
        if (k <= 0) {
            fprintf(stderr, "echo: no progress for 10 s (%llu/%llu connections)\n",
                    (unsigned long long)done, (unsigned long long)n);
            ok = 0;
            break;
        }
        for (int j = 0; ok && j < k; j++) {
            dialer *c = ev[j].data.ptr;
            if (!c->sent) { /* connected (or failed): send the request */
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                memset(out, c->v, SIZE);
                if (err != 0 || send(c->fd, out, SIZE, MSG_NOSIGNAL) != SIZE) {
                    fprintf(stderr, "echo: connection %llu: %s\n",
                            (unsigned long long)done, strerror(err ? err : errno));
                    ok = 0;
                    break;
                }
                c->sent = 1;
                struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
                continue;
            }
            ssize_t r = recv(c->fd, in, SIZE - c->got, MSG_DONTWAIT);
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                continue;
            if (r <= 0) {
                fprintf(stderr, "echo: connection closed by the server before its echo\n");
                ok = 0;
                break;
            }
            for (ssize_t b = 0; b < r; b++)
                ok &= in[b] == c->v;
            c->got += (size_t)r;
            if (c->got < SIZE)
                continue;
            lat[done++] = bench_now_ns() - c->t0;
            close(c->fd); /* the client ends first: the server reads end of stream */
            c->fd = -1;
            if (started < n) {
                if (dialer_start(c, port, ep, (unsigned)started++) != 0) {
                    fprintf(stderr, "echo: connect: %s\n", strerror(errno));
                    ok = 0;
                }
            }
        }
    }
    *secs = bench_now() - t0;
    for (unsigned i = 0; d && i < inflight; i++)
        if (d[i].fd >= 0)
            close(d[i].fd);
    if (ep >= 0)
        close(ep);
    free(d);
    return ok;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_d(double *v, unsigned n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MAX_ROUNDS 64

int main(int argc, char **argv)
{
    unsigned rounds = 5, idle = 10000, conns = 50;
    uint64_t roundtrips = 50000, accepts = 10000;
    if (argc > 1 && strcmp(argv[1], "--quick") == 0) {
        rounds = 3, roundtrips = 2000, idle = 100, accepts = 500;
    } else if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        printf("usage: %s [rounds=5] [roundtrips=50000] [idle=10000] [conns=50] "
               "[accepts=10000] | --quick\n",
               argv[0]);
        return 0;
    } else {
        rounds = (unsigned)bench_arg(argc, argv, 1, rounds);
        roundtrips = bench_arg(argc, argv, 2, roundtrips);
        idle = (unsigned)bench_arg(argc, argv, 3, idle);
        conns = (unsigned)bench_arg(argc, argv, 4, conns);
        accepts = bench_arg(argc, argv, 5, accepts);
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || conns < 1 || roundtrips < conns ||
        accepts < ACCEPT_INFLIGHT) {
        fprintf(stderr, "echo: 1 <= rounds <= %d, conns >= 1, roundtrips >= conns, "
                        "accepts >= %u\n",
                MAX_ROUNDS, ACCEPT_INFLIGHT);
        return 2;
    }

    /* File descriptors: each server and this client hold `idle` at once. */
    struct rlimit rl;
    int idle_limited = 0;
    getrlimit(RLIMIT_NOFILE, &rl);
    rlim_t want = (rlim_t)idle + 256;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < want) {
        fprintf(stderr, "echo: RLIMIT_NOFILE's hard limit is %llu: %llu idle connections "
                        "instead of %u\n",
                (unsigned long long)rl.rlim_max, (unsigned long long)rl.rlim_cur - 256, idle);
        idle = (unsigned)(rl.rlim_cur - 256);
        idle_limited = 1;
    }

    const char *t = getenv("THREADS");
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned threads = t ? (unsigned)atoi(t) : (unsigned)(ncpu > 0 ? ncpu : 1);

    int port[NSERVERS];
    pid_t pid[NSERVERS];
    int started = 1;
    for (int s = 0; s < NSERVERS; s++) {
        pid[s] = started ? start_server(s, &port[s]) : -1;
        started &= pid[s] > 0;
    }
    if (!started) {
        for (int s = 0; s < NSERVERS; s++)
            if (pid[s] > 0)
                stop_server(pid[s]);
        printf("bench=echo_64 impl=troupe check=FAIL reason=server_did_not_start\n");
        return 1;
    }

    /* Part 1: idle connections, each server fresh (troupe's two layouts
     * differ only in how they accept: the reuseport one stands for both). */
    long kb0[2], kb1[2];
    double idle_secs[2];
    int idle_ok[2];
    for (int s = 0; s < 2; s++)
        idle_ok[s] = idle_part(pid[s], port[s], idle, &kb0[s], &kb1[s], &idle_secs[s]);

    /* Parts 2 and 3, interleaved: each round runs every size against every
     * server (the handover layout: 64 bytes only), then the connection rate
     * against every server, the servers' order rotating between rounds. */
    static const size_t sizes[2] = {64, 4096};
    static const char *const size_name[2] = {"64", "4k"};
    static double secs[NSERVERS][2][MAX_ROUNDS], p50[NSERVERS][2][MAX_ROUNDS],
        p99[NSERVERS][2][MAX_ROUNDS];
    static double asecs[NSERVERS][MAX_ROUNDS], ap50[NSERVERS][MAX_ROUNDS],
        ap99[NSERVERS][MAX_ROUNDS];
    int ok[NSERVERS][2] = {{1, 1}, {1, 1}, {1, 1}}, aok[NSERVERS] = {1, 1, 1};
    uint64_t nlat = roundtrips > accepts ? roundtrips : accepts;
    uint64_t *lat = malloc(nlat * sizeof *lat);
    for (unsigned r = 0; r < rounds; r++) {
        for (int z = 0; z < 2; z++) {
            int nsrv = z == 0 ? NSERVERS : 2;
            for (int i = 0; i < nsrv; i++) {
                int s = (int)((i + r) % (unsigned)nsrv); /* the order rotates */
                int good = lat && load_round(port[s], conns, sizes[z], roundtrips, lat,
                                             &secs[s][z][r]);
                ok[s][z] &= good;
                p50[s][z][r] = good ? bench_quantile_us(lat, roundtrips, 0.50) : 0;
                p99[s][z][r] = good ? bench_quantile_us(lat, roundtrips, 0.99) : 0;
            }
        }
        for (int i = 0; i < NSERVERS; i++) {
            int s = (int)((i + r) % NSERVERS);
            int good = lat && accept_round(port[s], ACCEPT_INFLIGHT, accepts, lat,
                                           &asecs[s][r]);
            aok[s] &= good;
            ap50[s][r] = good ? bench_quantile_us(lat, accepts, 0.50) : 0;
            ap99[s][r] = good ? bench_quantile_us(lat, accepts, 0.99) : 0;
        }
    }
    free(lat);

    long hwm[NSERVERS];
    int stopped[NSERVERS];
    for (int s = 0; s < NSERVERS; s++) {
        hwm[s] = proc_kb(pid[s], "VmHWM");
        stopped[s] = stop_server(pid[s]) || s == LIBUV; /* libuv: killed, fine */
        if (!stopped[s])
            fprintf(stderr, "echo: the %s server did not stop cleanly on SIGTERM\n",
                    server_name[s]);
    }

    int failed = 0;
    double rate[NSERVERS][2];
    for (int z = 0; z < 2; z++) {
        int nsrv = z == 0 ? NSERVERS : 2;
        double sec[NSERVERS], m50[NSERVERS], m99[NSERVERS];
        for (int s = 0; s < nsrv; s++) {
            sec[s] = median_d(secs[s][z], rounds);
            m50[s] = median_d(p50[s][z], rounds);
            m99[s] = median_d(p99[s][z], rounds);
            rate[s][z] = sec[s] > 0 ? (double)roundtrips / sec[s] : 0;
        }
        for (int s = 0; s < nsrv; s++) {
            int good = ok[s][z] && stopped[s];
            failed |= !good;
            printf("bench=%secho_%s%s impl=%s threads=%u n=%llu seconds=%.6f rate=%.0f "
                   "unit=roundtrips peak_rss_kb=%ld check=%s placement=%s p50_us=%.2f "
                   "p99_us=%.2f size=%zu conns=%u rounds=%u",
                   s == LIBUV ? "libuv_" : "", size_name[z], s == HANDOVER ? "_handover" : "",
                   impl_name[s], s == LIBUV ? 1 : threads, (unsigned long long)roundtrips,
                   sec[s], rate[s][z], hwm[s], good ? "ok" : "FAIL", placement[s], m50[s],
                   m99[s], sizes[z], conns, rounds);
            printf(" layout=%s", layout[s]);
            if (s != LIBUV)
                printf(" ratio_libuv=%.3f", rate[LIBUV][z] > 0 ? rate[s][z] /
                                                                     rate[LIBUV][z] : 0);
            if (s == HANDOVER)
                printf(" ratio_reuseport=%.3f", rate[TROUPE][z] > 0 ? rate[s][z] /
                                                                          rate[TROUPE][z] : 0);
            printf("\n");
        }
    }
    double per_conn[2];
    for (int s = 0; s < 2; s++)
        per_conn[s] = idle && kb0[s] >= 0 && kb1[s] >= 0
                          ? (double)(kb1[s] - kb0[s]) * 1024.0 / idle : 0;
    for (int s = 0; s < 2; s++) {
        int good = idle_ok[s] && stopped[s];
        failed |= !good;
        printf("bench=%secho_idle impl=%s threads=%u n=%u seconds=%.6f rate=%.0f "
               "unit=bytes_per_conn peak_rss_kb=%ld check=%s placement=%s "
               "rss_before_kb=%ld rss_after_kb=%ld idle_limited=%d",
               s == TROUPE ? "" : "libuv_", impl_name[s], s == TROUPE ? threads : 1, idle,
               idle_secs[s], per_conn[s], hwm[s], good ? "ok" : "FAIL", placement[s], kb0[s],
               kb1[s], idle_limited);
        if (s == TROUPE)
            printf(" ratio_libuv=%.3f", per_conn[LIBUV] > 0 ? per_conn[TROUPE] /
                                                                  per_conn[LIBUV] : 0);
        printf("\n");
    }
    /* Part 3's lines: the reuseport layout, the handover layout, libuv. */
    static const int aorder[NSERVERS] = {TROUPE, HANDOVER, LIBUV};
    double arate[NSERVERS];
    for (int s = 0; s < NSERVERS; s++) {
        double sec = median_d(asecs[s], rounds);
        arate[s] = sec > 0 ? (double)accepts / sec : 0;
    }
    for (int i = 0; i < NSERVERS; i++) {
        int s = aorder[i];
        int good = aok[s] && stopped[s];
        failed |= !good;
        printf("bench=%secho_accept%s impl=%s threads=%u n=%llu seconds=%.6f rate=%.0f "
               "unit=conns peak_rss_kb=%ld check=%s placement=%s layout=%s p50_us=%.2f "
               "p99_us=%.2f size=64 inflight=%u rounds=%u",
               s == LIBUV ? "libuv_" : "", s == HANDOVER ? "_handover" : "", impl_name[s],
               s == LIBUV ? 1 : threads, (unsigned long long)accepts,
               median_d(asecs[s], rounds), arate[s], hwm[s], good ? "ok" : "FAIL",
               placement[s], layout[s], median_d(ap50[s], rounds), median_d(ap99[s], rounds),
               ACCEPT_INFLIGHT, rounds);
        if (s != LIBUV)
            printf(" ratio_libuv=%.3f", arate[LIBUV] > 0 ? arate[s] / arate[LIBUV] : 0);
        if (s == HANDOVER)
            printf(" ratio_reuseport=%.3f", arate[TROUPE] > 0 ? arate[s] / arate[TROUPE] : 0);
        printf("\n");
    }
    fflush(stdout);
    return failed;
}
