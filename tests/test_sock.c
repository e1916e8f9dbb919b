/*
 * test_sock.c — sockets owned by actors (troupe.h, "Sockets"), over loopback
 * only (127.0.0.1, ::1, Unix-domain sockets in a mkdtemp directory; port 0
 * and tr_sock_addr for the port):
 *
 *  echo (several sizes, > 1 MiB in all, POSIX clients and a tr_connect
 *  client), many connections over two loops with SO_REUSEPORT, read flow
 *  control (a paused reader pushes back on the peer; "the next N reads"),
 *  write water marks (THROTTLED, TR_EFULL within write_max, UNTHROTTLED),
 *  fairness between two connections of one loop (counted in bytes, not
 *  time), the owner's exit closing its sockets, max_conns, the idle
 *  timeout, Unix-domain sockets, IPv6, connect's failures (timeout,
 *  refused, no such host), draining on the runtime's stop, the runtime's
 *  other notices reaching a socket owner, half-closes, close and linger
 *  (with unread input too), hand-over to another loop (TR_EBUSY with
 *  writes pending or reads unhandled; framing and read mode kept), a give
 *  to an actor that dies first, framing (exact sizes, delimiters,
 *  TR_ELIMIT, the next N frames), bad input, and zero-copy reads and
 *  writes.
 *
 * How the tests talk to the actors: the actors report through a shared
 * `srv` (atomics the test thread waits on with TR_WAIT_UNTIL); the test
 * thread commands a connection's actor with tr_rt_call / tr_rt_send (CMD_*).
 * Checks an actor makes are noted in the srv (note_bad) and asserted by the
 * test thread, so that a failure names the check rather than aborting.
 * Clients are plain POSIX sockets on the test thread with 10 s timeouts on
 * every wait, or client actors that use tr_connect. Nothing sleeps and
 * hopes: every wait is for a condition, bounded; times are asserted as
 * lower bounds only. (Where a test checks that something does NOT happen
 * it watches for a fixed 300 ms, which can only let a bug pass, never
 * fail a correct runtime; clients pace their writes with short pauses
 * where the pacing is the point.)
 *
 * `test_sock NAME` runs only the tests whose name contains NAME.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "tr_test.h"

#define MS 1000000ull
#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)
/* The clients' patience: every poll, recv, send and connect of a client
 * gives up after this long. */
#define CL_TIMEOUT_MS 10000
/* The chunk the writing tests write. */
#define CHUNK (64 * KiB)
/* libuv's clock counts whole milliseconds (a timer may fire up to 1 ms
 * before its real-time due date): the slack of the lower bounds on time. */
#define CLOCK_SLACK_NS (2 * MS)

/* Commands from the test thread to connection actors. */
enum {
    CMD_INFO = 1,   /* call: answers a tr_sock_info (or an int error) */
    CMD_READ,       /* call, int n: tr_sock_read(n), answers the int rc */
    CMD_WRITE,      /* call, bytes: tr_sock_write, answers the int rc */
    CMD_SHUTDOWN,   /* call: tr_sock_shutdown, answers the int rc */
    CMD_EXIT,       /* send, int how: 0 tr_exit, 1 return an error, 2 tr_exit_error */
    CMD_OWNED,      /* call, size_t len: tr_sock_write_owned of a pattern, answers rc */
    CMD_FILL,       /* call, [size_t n]: writes until n bytes are queued: answers a fill_res */
    CMD_GIVE,       /* call, tr_pid: tr_sock_give, answers the int rc */
    CMD_FLOOD,      /* send: water_b writes chunk after chunk until TR_EFULL */
    CMD_PROBE,      /* call: probe_b runs the bad-input checks */
    CMD_CLOSE_BIG,  /* call: closer_b writes c->close_bytes and closes */
    CMD_CLOSE_LISTENER, /* call: the listener closes its listening socket */
    CMD_FRAME,      /* call, frame_req: tr_sock_frame, answers the int rc */
    TICK,           /* ticker_b's interval */
    SELF_MORE,      /* water_b to itself: the next chunk */
};

/* ---- the shared report ------------------------------------------------------------ */

#define MAXC 96

typedef struct fill_res {
    int rc;
    uint64_t written;
    size_t queued;
} fill_res;

typedef struct srv {
    /* the test's choices, before the listener is spawned */
    char listen_addr[256];
    tr_listen_opts lopts;
    const tr_behavior *conn_b; /* spawned for each connection (NULL: the listener keeps it) */
    int conn_loop;             /* where (TR_LOOP_DEFAULT: the listener's loop) */
    int start_read;            /* sink_b's read mode on GIVEN (0: does not start reading) */
    int child_may_die;         /* conn_b may end before tr_sock_give (TR_ENOACTOR is fine) */
    size_t frame_max;          /* frame_b's framing */
    char delim[8];
    size_t dlen;

    /* what the actors report */
    _Atomic int listen_rc; /* 0 until tr_listen ran; 1: listening; else its error */
    char addr[256];        /* the listener's tr_sock_addr, once listen_rc is 1 */
    char peer_addr[256];   /* the first given connection's peer address */
    _Atomic int accepted;  /* TR_MSG_SOCK_ACCEPTED seen by the listener */
    _Atomic int nslots;
    _Atomic int conns;     /* connection actors that got their socket */
    _Atomic tr_pid conn[MAXC];
    _Atomic int by_loop[4];
    _Atomic int eofs;
    _Atomic int closed;
    _Atomic int closed_reason;
    _Atomic uint64_t closed_ns;
    _Atomic uint64_t data_bytes;
    _Atomic int data_msgs;
    _Atomic int passive;
    char ev[64]; /* sink_b: 'D' per data message, 'P' per PASSIVE */
    _Atomic int nev;
    char rx[4096]; /* sink_b: the first bytes read */

    /* write water marks */
    _Atomic int throttled, unthrottled, efull;
    _Atomic uint64_t written;
    _Atomic size_t efull_queued, unth_queued;
    _Atomic int efull_throttled;

    /* fairness */
    _Atomic uint64_t a_bytes;
    _Atomic uint64_t a_at_req[32];
    _Atomic int nreq;

    /* framing */
    _Atomic int nframes;
    size_t flen[32];
    char fbuf[4096];
    size_t fused;

    /* zero-copy */
    _Atomic int big_msgs;

    /* trap_b */
    _Atomic int exits_seen;

    /* ticker_b */
    _Atomic uint64_t last_tick_ns;

    /* frame_b takes the socket as it is given (no frame, no read mode) */
    int keep_mode;
    /* give tests */
    _Atomic tr_pid target;     /* where heldgive_b / setter_b give */
    _Atomic tr_pid lst_target; /* set: the listener gives each connection there */
    _Atomic int give_busy_rc, give_ok_rc, held_first;

    /* closer_b */
    size_t close_bytes;
    _Atomic int closes, after_close;

    /* the client actor */
    _Atomic int cl_status; /* 1 until TR_MSG_SOCK_CONNECTED (or tr_connect's error) */
    _Atomic uint64_t cl_ns;
    _Atomic int cl_done;   /* 1: echo verified; -1: failed */
    _Atomic int cl_ok, cl_fail; /* the same, counted (several client actors) */

    /* actor-side checks that failed: the first one's text */
    _Atomic int bad_claim; /* the first claims bad_text */
    _Atomic int bad;
    char bad_text[256];
} srv;

static void note_bad(srv *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_bad(srv *c, const char *fmt, ...)
{
    if (atomic_fetch_add(&c->bad_claim, 1) != 0) {
        atomic_fetch_add(&c->bad, 1);
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->bad_text, sizeof c->bad_text, fmt, ap);
    va_end(ap);
    fprintf(stderr, "actor-side check failed: %s\n", c->bad_text);
    atomic_fetch_add(&c->bad, 1); /* after the text: the test thread reads it then */
}

#define ASSERT_NO_BAD(c)                                                       \
    do {                                                                       \
        if (atomic_load(&(c)->bad))                                            \
            fail_msg("%d actor-side check(s) failed, the first: %s",           \
                     atomic_load(&(c)->bad), (c)->bad_text);                   \
    } while (0)

static srv *srv_new(const char *listen_addr, const tr_behavior *conn_b)
{
    srv *c = calloc(1, sizeof *c);
    assert_non_null(c);
    snprintf(c->listen_addr, sizeof c->listen_addr, "%s", listen_addr);
    c->conn_b = conn_b;
    atomic_store(&c->cl_status, 1);
    return c;
}

/* ---- the byte pattern ------------------------------------------------------------- */

static uint8_t pat(uint64_t i)
{
    return (uint8_t)((i * 7u + (i >> 9)) % 251u);
}

static void fill_pat(uint8_t *b, size_t len, uint64_t off)
{
    for (size_t i = 0; i < len; i++)
        b[i] = pat(off + i);
}

/* The index of the first byte that breaks the pattern, or -1. */
static long check_pat(const uint8_t *b, size_t len, uint64_t off)
{
    for (size_t i = 0; i < len; i++)
        if (b[i] != pat(off + i))
            return (long)i;
    return -1;
}

static _Atomic int zc_frees;

/* A pause that paces a client (never a wait for a condition). */
static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000 * 1000};
    nanosleep(&ts, NULL);
}

static void counting_free(void *buf)
{
    atomic_fetch_add(&zc_frees, 1);
    free(buf);
}

/* ---- the listener ----------------------------------------------------------------- */

typedef struct lst {
    srv *c;
    tr_sock s;
} lst;

/* Listens on c->listen_addr with c->lopts and reports (listen_rc, addr). */
static int lst_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    lst *l = state;
    TR_CHECK_COPY(&l->c, arg, len);
    srv *c = l->c;
    int rc = tr_listen(self, c->listen_addr, &c->lopts, &l->s);
    if (rc == 0) {
        rc = tr_sock_addr(self, l->s, 0, c->addr, sizeof c->addr);
        if (rc != 0)
            note_bad(c, "tr_sock_addr of a listener: %s", tr_err_name(rc));
        else
            rc = 1;
    }
    atomic_store(&c->listen_rc, rc);
    return 0;
}

static int reply_rc(tr_actor *self, const tr_msg *msg, int rc)
{
    return tr_reply(self, msg, msg->type, &rc, sizeof rc);
}

/* Each accepted connection: spawned a c->conn_b and given to it, or kept
 * (conn_b NULL), read, and closed at its end of stream. */
static int lst_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    lst *l = state;
    srv *c = l->c;
    int rc;
    switch (msg->type) {
    case TR_MSG_SOCK_ACCEPTED: {
        tr_sock from = 0;
        if (msg->len != sizeof from)
            note_bad(c, "ACCEPTED carries %u bytes, not a tr_sock", (unsigned)msg->len);
        else if (memcpy(&from, msg->data, sizeof from), from != l->s)
            note_bad(c, "ACCEPTED's data is not the listener's handle");
        if (msg->ref == TR_SOCK_NONE || msg->ref == l->s)
            note_bad(c, "ACCEPTED's ref is not a new socket");
        tr_sock_info in;
        rc = tr_sock_info_get(self, msg->ref, &in);
        if (rc != 0)
            note_bad(c, "info of an accepted socket: %s", tr_err_name(rc));
        else if (in.reading || in.listener)
            note_bad(c, "an accepted socket reads already (or is a listener)");
        atomic_fetch_add(&c->accepted, 1);
        tr_pid target = atomic_load(&c->lst_target);
        if (target != TR_PID_NONE) { /* to an actor that is not our child */
            rc = tr_sock_give(self, msg->ref, target);
            if (rc != 0)
                note_bad(c, "tr_sock_give to the target: %s", tr_err_name(rc));
            return 0;
        }
        if (!c->conn_b)
            return tr_sock_read(self, msg->ref, TR_SOCK_CONTINUOUS);
        tr_spawn_opts o;
        tr_spawn_opts_init(&o);
        o.loop = c->conn_loop;
        o.arg = &c;
        o.arg_len = sizeof c;
        tr_pid child;
        rc = tr_spawn(self, c->conn_b, &o, &child);
        if (rc != 0) {
            note_bad(c, "spawn of a connection actor: %s", tr_err_name(rc));
            return 0;
        }
        rc = tr_sock_give(self, msg->ref, child);
        if (rc == TR_ENOACTOR && c->child_may_die) {
            /* the child (of another loop) ended first: the socket is still
             * ours, and ours to close */
            if ((rc = tr_sock_close(self, msg->ref)) != 0)
                note_bad(c, "close of a socket the child could not take: %s", tr_err_name(rc));
            return 0;
        }
        if (rc != 0)
            note_bad(c, "tr_sock_give to a new actor: %s", tr_err_name(rc));
        /* given: self no longer owns it */
        if (tr_sock_info_get(self, msg->ref, &in) != TR_ENOTSOCK)
            note_bad(c, "the giver still owns a given socket");
        return 0;
    }
    case TR_MSG_SOCK_DATA:
        atomic_fetch_add(&c->data_bytes, msg->len);
        return 0;
    case TR_MSG_SOCK_EOF:
        atomic_fetch_add(&c->eofs, 1);
        rc = tr_sock_close(self, msg->ref);
        if (rc != 0)
            note_bad(c, "close after EOF: %s", tr_err_name(rc));
        return 0;
    case TR_MSG_SOCK_CLOSED:
        atomic_fetch_add(&c->closed, 1);
        return 0;
    case CMD_CLOSE_LISTENER:
        return reply_rc(self, msg, tr_sock_close(self, l->s));
    case CMD_INFO: {
        tr_sock_info in;
        rc = tr_sock_info_get(self, l->s, &in);
        if (rc != 0)
            return tr_reply(self, msg, CMD_INFO, &rc, sizeof rc);
        return tr_reply(self, msg, CMD_INFO, &in, sizeof in);
    }
    }
    return 0;
}

static const tr_behavior listener_b = {.name = "listener", .state_size = sizeof(lst),
                                       .init = lst_init, .receive = lst_receive};

/* Spawns a listener for c on `loop` and waits until it listens. */
#define start_listener(rt, c, loop) start_listener_at(__FILE__, __LINE__, (rt), (c), (loop))

static tr_pid start_listener_at(const char *file, int line, tr_runtime *rt, srv *c, int loop)
{
    tr_pid p = tr_test_spawn_at(file, line, rt, &listener_b, loop, &c, sizeof c);
    TR_WAIT_UNTIL(atomic_load(&c->listen_rc) != 0);
    int rc = atomic_load(&c->listen_rc);
    if (rc != 1)
        tr_test_fail_at(file, line, "tr_listen(\"%s\"): %s (%s)", c->listen_addr,
                        tr_err_name(rc), tr_strerror(rc));
    return p;
}

/* ---- connection actors ------------------------------------------------------------ */

typedef struct conn {
    srv *c;
    tr_sock s;
    int slot;
    uint64_t off;  /* bytes read so far */
    uint64_t woff; /* bytes written (queued) so far */
    void *kept[64];
    int nkept;
    int nanswered;
    tr_timer_id tick;
} conn;

static int conn_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    conn *x = state;
    TR_CHECK_COPY(&x->c, arg, len);
    x->slot = -1;
    return 0;
}

static void conn_terminate(tr_actor *self, void *state, const tr_exit_reason *reason)
{
    (void)self;
    (void)reason;
    conn *x = state;
    for (int i = 0; i < x->nkept; i++)
        free(x->kept[i]);
    x->nkept = 0;
}

/* TR_MSG_SOCK_GIVEN: takes the socket and reports the actor. */
static void conn_given(tr_actor *self, conn *x, const tr_msg *msg)
{
    srv *c = x->c;
    if (msg->ref == TR_SOCK_NONE)
        note_bad(c, "GIVEN without a socket");
    x->s = msg->ref;
    int slot = atomic_fetch_add(&c->nslots, 1);
    x->slot = slot;
    if (slot < MAXC)
        atomic_store(&c->conn[slot], tr_self(self));
    char peer[sizeof c->peer_addr];
    int rc = tr_sock_addr(self, x->s, 1, peer, sizeof peer);
    if (rc != 0)
        note_bad(c, "tr_sock_addr(peer) of a given socket: %s", tr_err_name(rc));
    else if (slot == 0) /* one writer: connection actors of several loops share c */
        memcpy(c->peer_addr, peer, sizeof peer);
    int loop = tr_loop_index(self);
    if (loop >= 0 && loop < 4)
        atomic_fetch_add(&c->by_loop[loop], 1);
    atomic_fetch_add(&c->conns, 1);
}

static void conn_closed(conn *x, const tr_msg *msg)
{
    srv *c = x->c;
    int32_t why = 0;
    if (msg->len == sizeof why)
        memcpy(&why, msg->data, sizeof why);
    else
        note_bad(c, "CLOSED carries %u bytes, not an int32_t", (unsigned)msg->len);
    atomic_store(&c->closed_reason, why);
    atomic_store(&c->closed_ns, tr_test_wall_ns());
    atomic_fetch_add(&c->closed, 1);
}


typedef struct frame_req {
    size_t max;
    char delim[8];
    size_t dlen;
} frame_req;

/* The commands every connection actor takes; *rc is the handler's return
 * when it returns 1. */
static int conn_common(tr_actor *self, conn *x, const tr_msg *msg, int *rc)
{
    srv *c = x->c;
    *rc = 0;
    switch (msg->type) {
    case CMD_INFO: {
        tr_sock_info in;
        int r = tr_sock_info_get(self, x->s, &in);
        *rc = r ? reply_rc(self, msg, r) : tr_reply(self, msg, CMD_INFO, &in, sizeof in);
        return 1;
    }
    case CMD_READ: {
        int n;
        TR_CHECK_COPY(&n, msg->data, msg->len);
        *rc = reply_rc(self, msg, tr_sock_read(self, x->s, n));
        return 1;
    }
    case CMD_WRITE:
        *rc = reply_rc(self, msg, tr_sock_write(self, x->s, msg->data, msg->len));
        return 1;
    case CMD_SHUTDOWN:
        *rc = reply_rc(self, msg, tr_sock_shutdown(self, x->s));
        return 1;
    case CMD_EXIT: {
        int how;
        TR_CHECK_COPY(&how, msg->data, msg->len);
        if (how == 0)
            *rc = tr_exit(self, TR_EXIT_NORMAL);
        else if (how == 1)
            *rc = TR_EUSER(1); /* the handler fails */
        else
            *rc = tr_exit_error(self, TR_EUSER(2), "the test's tr_exit_error");
        return 1;
    }
    case CMD_OWNED: {
        size_t len;
        TR_CHECK_COPY(&len, msg->data, msg->len);
        uint8_t *b = malloc(len);
        TR_CHECK(b != NULL);
        fill_pat(b, len, x->woff);
        int r = tr_sock_write_owned(self, x->s, b, len, counting_free);
        if (r == 0)
            x->woff += len;
        else
            free(b); /* on failure the caller still owns it */
        *rc = reply_rc(self, msg, r);
        return 1;
    }
    case CMD_FILL: {
        /* Chunks until the kernel takes no more and at least the request's
         * size_t (or 1 byte) waits in the queue. */
        fill_res res = {0, 0, 0};
        size_t want = 1;
        if (msg->len == sizeof want)
            memcpy(&want, msg->data, sizeof want);
        uint8_t *b = malloc(CHUNK);
        TR_CHECK(b != NULL);
        for (int i = 0; i < 4096; i++) {
            tr_sock_info in;
            res.rc = tr_sock_info_get(self, x->s, &in);
            if (res.rc != 0)
                break;
            res.queued = in.write_queued;
            if (in.write_queued >= want)
                break;
            fill_pat(b, CHUNK, x->woff);
            res.rc = tr_sock_write(self, x->s, b, CHUNK);
            if (res.rc != 0)
                break;
            x->woff += CHUNK;
        }
        free(b);
        res.written = x->woff;
        *rc = tr_reply(self, msg, CMD_FILL, &res, sizeof res);
        return 1;
    }
    case CMD_FRAME: {
        frame_req f;
        TR_CHECK_COPY(&f, msg->data, msg->len);
        *rc = reply_rc(self, msg, tr_sock_frame(self, x->s, f.max, f.dlen ? f.delim : NULL,
                                                f.dlen));
        return 1;
    }
    case CMD_GIVE: {
        tr_pid to;
        TR_CHECK_COPY(&to, msg->data, msg->len);
        *rc = reply_rc(self, msg, tr_sock_give(self, x->s, to));
        return 1;
    }
    case TR_MSG_SOCK_CLOSED:
        conn_closed(x, msg);
        *rc = tr_exit(self, TR_EXIT_NORMAL);
        return 1;
    }
    (void)c;
    return 0;
}

/* echo_b: reads continuously and writes back what it reads; pauses its
 * reads while its writes are throttled; ends at the end of stream (its
 * queued writes still go out: the socket lingers). */
static int echo_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    conn *x = state;
    srv *c = x->c;
    int rc;
    switch (msg->type) {
    case TR_MSG_SOCK_GIVEN:
        conn_given(self, x, msg);
        return tr_sock_read(self, x->s, TR_SOCK_CONTINUOUS);
    case TR_MSG_SOCK_DATA:
        if (msg->ref != x->s)
            note_bad(c, "DATA's ref is not the socket");
        atomic_fetch_add(&c->data_bytes, msg->len);
        if (msg->len % 2) { /* odd sizes go back as a vectored write of 2 pieces */
            tr_iov iov[2] = {{msg->data, msg->len / 2},
                             {(const char *)msg->data + msg->len / 2,
                              msg->len - msg->len / 2}};
            rc = tr_sock_writev(self, x->s, iov, 2);
        } else {
            rc = tr_sock_write(self, x->s, msg->data, msg->len);
        }
        if (rc != 0)
            note_bad(c, "echo write of %u bytes: %s", (unsigned)msg->len, tr_err_name(rc));
        return 0;
    case TR_MSG_SOCK_THROTTLED:
        return tr_sock_read(self, x->s, TR_SOCK_PAUSE);
    case TR_MSG_SOCK_UNTHROTTLED:
        return tr_sock_read(self, x->s, TR_SOCK_CONTINUOUS);
    case TR_MSG_SOCK_EOF:
        atomic_fetch_add(&c->eofs, 1);
        return tr_exit(self, TR_EXIT_NORMAL);
    }
    if (conn_common(self, x, msg, &rc))
        return rc;
    return 0;
}

static const tr_behavior echo_b = {.name = "echo", .state_size = sizeof(conn),
                                   .init = conn_init, .receive = echo_receive,
                                   .terminate = conn_terminate};

/* sink_b: reads in c->start_read's mode (0: does not start), checks the
 * pattern, counts, records data messages and PASSIVE in c->ev. */
static int sink_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    conn *x = state;
    srv *c = x->c;
    int rc;
    switch (msg->type) {
    case TR_MSG_SOCK_GIVEN:
        conn_given(self, x, msg);
        if (c->start_read)
            return tr_sock_read(self, x->s, c->start_read);
        return 0;
    case TR_MSG_SOCK_DATA: {
        tr_sock_info in;
        size_t rmax = c->lopts.conn.read_max ? c->lopts.conn.read_max : 256 * KiB;
        if (tr_sock_info_get(self, x->s, &in) != 0 || in.read_held > rmax)
            note_bad(c, "sink: read_held %zu over read_max %zu", in.read_held, rmax);
        long bad = check_pat(msg->data, msg->len, x->off);
        if (bad >= 0)
            note_bad(c, "sink: byte %llu breaks the pattern",
                     (unsigned long long)(x->off + (uint64_t)bad));
        for (uint32_t i = 0; i < msg->len && x->off + i < sizeof c->rx; i++)
            c->rx[x->off + i] = ((const char *)msg->data)[i];
        x->off += msg->len;
        int n = atomic_load(&c->nev);
        if (n < (int)sizeof c->ev - 1) {
            c->ev[n] = 'D';
            atomic_store(&c->nev, n + 1);
        }
        atomic_fetch_add(&c->data_bytes, msg->len);
        atomic_fetch_add(&c->data_msgs, 1);
        return 0;
    }
    case TR_MSG_SOCK_PASSIVE: {
        int n = atomic_load(&c->nev);
        if (n < (int)sizeof c->ev - 1) {
            c->ev[n] = 'P';
            atomic_store(&c->nev, n + 1);
        }
        atomic_fetch_add(&c->passive, 1);
        return 0;
    }
    case TR_MSG_SOCK_EOF:
        atomic_fetch_add(&c->eofs, 1);
        return 0;
    }
    if (conn_common(self, x, msg, &rc))
        return rc;
    return 0;
}

static const tr_behavior sink_b = {.name = "sink", .state_size = sizeof(conn),
                                   .init = conn_init, .receive = sink_receive,
                                   .terminate = conn_terminate};

/* ---- POSIX clients (the test's thread) -------------------------------------------- */

typedef union any_addr {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
    struct sockaddr_un un;
} any_addr;

/* Parses what tr_sock_addr writes: "1.2.3.4:p", "[::1]:p", "unix:/path". */
static int parse_addr(const char *addr, any_addr *a, socklen_t *len)
{
    memset(a, 0, sizeof *a);
    if (strncmp(addr, "unix:", 5) == 0) {
        const char *p = addr + 5;
        if (strlen(p) >= sizeof a->un.sun_path)
            return -1;
        a->un.sun_family = AF_UNIX;
        memcpy(a->un.sun_path, p, strlen(p) + 1);
        *len = (socklen_t)sizeof a->un;
        return 0;
    }
    char host[128];
    const char *port;
    if (addr[0] == '[') {
        const char *e = strchr(addr, ']');
        if (!e || e[1] != ':')
            return -1;
        snprintf(host, sizeof host, "%.*s", (int)(e - addr - 1), addr + 1);
        port = e + 2;
    } else {
        const char *e = strrchr(addr, ':');
        if (!e)
            return -1;
        snprintf(host, sizeof host, "%.*s", (int)(e - addr), addr);
        port = e + 1;
    }
    int p = atoi(port);
    if (inet_pton(AF_INET, host, &a->in.sin_addr) == 1) {
        a->in.sin_family = AF_INET;
        a->in.sin_port = htons((uint16_t)p);
        *len = (socklen_t)sizeof a->in;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a->in6.sin6_addr) == 1) {
        a->in6.sin6_family = AF_INET6;
        a->in6.sin6_port = htons((uint16_t)p);
        *len = (socklen_t)sizeof a->in6;
        return 0;
    }
    return -1;
}

static void set_timeouts(int fd, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* A blocking client socket connected to `addr` (SO_RCVBUF `rcvbuf` if not
 * 0, set before the connect), or -errno. */
static int cl_try(const char *addr, int rcvbuf)
{
    any_addr a;
    socklen_t len;
    if (parse_addr(addr, &a, &len) != 0)
        return -EINVAL;
    int fd = socket(a.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    set_timeouts(fd, CL_TIMEOUT_MS);
    if (connect(fd, &a.sa, len) != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

#define cl_open(addr) cl_open_at(__FILE__, __LINE__, (addr), 0)
#define cl_open_rcvbuf(addr, rcvbuf) cl_open_at(__FILE__, __LINE__, (addr), (rcvbuf))

static int cl_open_at(const char *file, int line, const char *addr, int rcvbuf)
{
    int fd = cl_try(addr, rcvbuf);
    if (fd < 0)
        tr_test_fail_at(file, line, "connect to %s: %s", addr, strerror(-fd));
    return fd;
}

/* Sends `len` bytes and reads `len` back at the same time (an echo client
 * that wrote everything first would wait on a server that waits on it).
 * 0, or -1 after 10 s without progress, an error or an early end: then
 * `why` says which, with the counts. */
static int cl_exchange(int fd, const uint8_t *out, size_t len, uint8_t *in, char *why,
                       size_t why_len)
{
    size_t sent = 0, got = 0;
    while (got < len) {
        struct pollfd p = {fd, (short)(POLLIN | (sent < len ? POLLOUT : 0)), 0};
        int n = poll(&p, 1, CL_TIMEOUT_MS);
        if (n <= 0) {
            snprintf(why, why_len, "nothing for 10 s (sent %zu, got %zu)", sent, got);
            return -1;
        }
        if ((p.revents & POLLOUT) && sent < len) {
            ssize_t w = send(fd, out + sent, len - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                snprintf(why, why_len, "send: %s (sent %zu, got %zu)", strerror(errno), sent,
                         got);
                return -1;
            }
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(fd, in + got, len - got, MSG_DONTWAIT);
            if (r == 0) {
                snprintf(why, why_len, "EOF (sent %zu, got %zu)", sent, got);
                return -1;
            }
            if (r > 0)
                got += (size_t)r;
            else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                snprintf(why, why_len, "recv: %s (sent %zu, got %zu)", strerror(errno), sent,
                         got);
                return -1;
            }
        }
    }
    return 0;
}

static void cl_send_all(int fd, const void *buf, size_t len)
{
    size_t sent = 0;
    while (sent < len) {
        ssize_t w = send(fd, (const char *)buf + sent, len - sent, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            fail_msg("client send: %s", w < 0 ? strerror(errno) : "0");
        sent += (size_t)w;
    }
}

/* Reads exactly `len` bytes (10 s patience per read); the count read. */
static size_t cl_recv_all(int fd, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = recv(fd, (char *)buf + got, len - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

/* How the peer ended: 0 for an end of stream, -ECONNRESET for a reset,
 * -EAGAIN if nothing came within 10 s; data before it is counted in
 * *extra (NULL: none allowed, returns -EPROTO). */
static int cl_wait_end(int fd, size_t *extra)
{
    char b[4096];
    for (;;) {
        ssize_t r = recv(fd, b, sizeof b, 0);
        if (r == 0)
            return 0;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        }
        if (!extra)
            return -EPROTO;
        *extra += (size_t)r;
    }
}

/* Writes `out` and checks the echo, then ends the stream and waits for the
 * server's end. */
static void cl_echo_check(int fd, size_t len, uint64_t seed)
{
    uint8_t *out = malloc(len ? len : 1), *in = malloc(len ? len : 1);
    assert_non_null(out);
    assert_non_null(in);
    fill_pat(out, len, seed);
    memset(in, 0, len);
    char why[160];
    if (cl_exchange(fd, out, len, in, why, sizeof why) != 0)
        fail_msg("echo of %zu bytes: %s", len, why);
    assert_memory_equal(in, out, len);
    free(out);
    free(in);
}

/* ---- the client actor (tr_connect) ------------------------------------------------ */

typedef struct cl_arg {
    srv *c;
    char addr[256];
    tr_duration timeout_ms;
    size_t nbytes; /* written before CONNECTED, then read back (an echo) */
} cl_arg;

typedef struct client {
    cl_arg a;
    tr_sock s;
    uint64_t t0;
    uint64_t got;
    uint64_t woff;  /* bytes written so far */
    int throttled;  /* between THROTTLED and UNTHROTTLED, or after TR_EFULL */
    int tmsg;       /* between THROTTLED and UNTHROTTLED: they alternate */
} client;

/* Writes the rest of the pattern while the socket takes it: stops at
 * THROTTLED (or TR_EFULL) and goes on at UNTHROTTLED. */
static void client_pump(tr_actor *self, client *k)
{
    srv *c = k->a.c;
    uint8_t *b = malloc(CHUNK);
    TR_CHECK(b != NULL);
    while (k->woff < k->a.nbytes && !k->throttled) {
        size_t n = k->a.nbytes - k->woff < CHUNK ? (size_t)(k->a.nbytes - k->woff) : CHUNK;
        fill_pat(b, n, k->woff);
        int rc = tr_sock_write(self, k->s, b, n);
        if (rc == TR_EFULL) {
            k->throttled = 1; /* UNTHROTTLED will come: the queue is over write_high */
            break;
        }
        if (rc != 0) {
            note_bad(c, "client write at %llu: %s", (unsigned long long)k->woff,
                     tr_err_name(rc));
            break;
        }
        k->woff += n;
    }
    free(b);
}

static int client_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    client *k = state;
    TR_CHECK_COPY(&k->a, arg, len);
    srv *c = k->a.c;
    tr_connect_opts o;
    memset(&o, 0, sizeof o);
    o.timeout_ms = k->a.timeout_ms;
    k->t0 = tr_test_wall_ns();
    int rc = tr_connect(self, k->a.addr, &o, &k->s);
    if (rc != 0) {
        atomic_store(&c->cl_done, -1);
        atomic_store(&c->cl_status, rc);
        return 0;
    }
    /* Writes made before CONNECTED are queued and sent once connected. */
    client_pump(self, k);
    return 0;
}

static int client_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    client *k = state;
    srv *c = k->a.c;
    switch (msg->type) {
    case TR_MSG_SOCK_CONNECTED: {
        int32_t st = 0;
        if (msg->len != sizeof st || msg->ref != k->s)
            note_bad(c, "CONNECTED: %u bytes, ref %s", (unsigned)msg->len,
                     msg->ref == k->s ? "ok" : "not the socket");
        else
            memcpy(&st, msg->data, sizeof st);
        atomic_store(&c->cl_ns, tr_test_wall_ns() - k->t0);
        atomic_store(&c->cl_status, st);
        if (st != 0)
            atomic_fetch_add(&c->cl_fail, 1);
        if (st != 0) {
            /* the handle is dead */
            if (tr_sock_read(self, k->s, TR_SOCK_CONTINUOUS) != TR_ENOTSOCK)
                note_bad(c, "a failed connect's handle is still usable");
            return tr_exit(self, TR_EXIT_NORMAL);
        }
        if (k->a.nbytes == 0) {
            atomic_store(&c->cl_done, 1);
            tr_sock_close(self, k->s);
            return tr_exit(self, TR_EXIT_NORMAL);
        }
        return tr_sock_read(self, k->s, TR_SOCK_CONTINUOUS);
    }
    case TR_MSG_SOCK_DATA: {
        long bad = check_pat(msg->data, msg->len, k->got);
        if (bad >= 0 || k->got + msg->len > k->a.nbytes) {
            note_bad(c, "client actor: echo differs at %llu",
                     (unsigned long long)(k->got + (uint64_t)(bad < 0 ? 0 : bad)));
            atomic_store(&c->cl_done, -1);
            return tr_exit(self, TR_EXIT_NORMAL);
        }
        k->got += msg->len;
        if (k->got == k->a.nbytes) {
            atomic_fetch_add(&c->cl_ok, 1);
            atomic_store(&c->cl_done, 1);
            tr_sock_close(self, k->s);
            return tr_exit(self, TR_EXIT_NORMAL);
        }
        return 0;
    }
    case TR_MSG_SOCK_THROTTLED:
        if (k->tmsg)
            note_bad(c, "two THROTTLED without an UNTHROTTLED between");
        k->tmsg = 1;
        k->throttled = 1;
        return 0;
    case TR_MSG_SOCK_UNTHROTTLED:
        if (!k->tmsg)
            note_bad(c, "UNTHROTTLED without a THROTTLED before");
        k->tmsg = 0;
        k->throttled = 0;
        client_pump(self, k);
        return 0;
    case TR_MSG_SOCK_EOF:
    case TR_MSG_SOCK_CLOSED:
        note_bad(c, "client actor: the connection ended after %llu of %zu bytes",
                 (unsigned long long)k->got, k->a.nbytes);
        atomic_fetch_add(&c->cl_fail, 1);
        atomic_store(&c->cl_done, -1);
        return tr_exit(self, TR_EXIT_NORMAL);
    }
    return 0;
}

static const tr_behavior client_b = {.name = "client", .state_size = sizeof(client),
                                     .init = client_init, .receive = client_receive};

static void spawn_client_on(tr_runtime *rt, srv *c, const char *addr, tr_duration timeout_ms,
                            size_t nbytes, int loop)
{
    cl_arg a;
    memset(&a, 0, sizeof a);
    a.c = c;
    snprintf(a.addr, sizeof a.addr, "%s", addr);
    a.timeout_ms = timeout_ms;
    a.nbytes = nbytes;
    tr_test_spawn(rt, &client_b, loop, &a, sizeof a);
}

static void spawn_client(tr_runtime *rt, srv *c, const char *addr, tr_duration timeout_ms,
                         size_t nbytes)
{
    cl_arg a;
    memset(&a, 0, sizeof a);
    a.c = c;
    snprintf(a.addr, sizeof a.addr, "%s", addr);
    a.timeout_ms = timeout_ms;
    a.nbytes = nbytes;
    atomic_store(&c->cl_status, 1);
    atomic_store(&c->cl_done, 0);
    tr_test_spawn(rt, &client_b, TR_LOOP_DEFAULT, &a, sizeof a);
}

/* ---- calls to connection actors --------------------------------------------------- */

static tr_pid conn_pid(srv *c, int i)
{
    TR_WAIT_UNTIL(atomic_load(&c->conns) > i);
    return atomic_load(&c->conn[i]);
}

static int ask_rc(tr_runtime *rt, tr_pid p, uint32_t type, const void *req, size_t len)
{
    int rc = 0;
    tr_test_ask(rt, p, type, req, len, &rc, sizeof rc);
    return rc;
}

/* tr_sock_info of a connection actor's (or a listener's) socket; its rc. */
static int ask_info(tr_runtime *rt, tr_pid p, tr_sock_info *out)
{
    union {
        tr_sock_info in;
        int rc;
    } u;
    memset(&u, 0, sizeof u);
    size_t n = tr_test_ask_var(rt, p, CMD_INFO, NULL, 0, &u, sizeof u);
    if (n == sizeof(int))
        return u.rc;
    assert_int_equal(n, sizeof(tr_sock_info));
    *out = u.in;
    return 0;
}

static int ask_read(tr_runtime *rt, tr_pid p, int n)
{
    return ask_rc(rt, p, CMD_READ, &n, sizeof n);
}

static void free_rt(tr_runtime *rt)
{
    assert_int_equal(tr_runtime_free(rt), 0);
}

/* ===================================================================================== */
/* 1. echo                                                                               */
/* ===================================================================================== */

/*
 * Proves: a listener's owner accepts, hands each connection to a new actor
 * (tr_spawn + tr_sock_give), which starts reading on TR_MSG_SOCK_GIVEN and
 * echoes; every byte comes back exactly, for sizes around TR_SOCK_KEEP_MIN
 * and past 1 MiB (write throttling on the way); the end of stream reaches
 * the actor and the actor's end closes the connection after its writes.
 * A client actor (tr_connect, writes queued before CONNECTED) gets its
 * echo too, and one that writes 6 MiB with throttling on both sides.
 */
static void test_echo(void **state)
{
    (void)state;
    srv *c = srv_new("127.0.0.1:0", &echo_b);
    tr_runtime *rt = tr_test_runtime(1, 0);
    start_listener(rt, c, TR_LOOP(0));
    assert_true(strncmp(c->addr, "127.0.0.1:", 10) == 0);
    assert_true(atoi(c->addr + 10) > 0);

    const size_t sizes[] = {1, 100, TR_SOCK_KEEP_MIN - 1, TR_SOCK_KEEP_MIN, 5000,
                            64 * KiB + 7, 300000, 3 * MiB / 2};
    size_t total = 0;
    int n = (int)(sizeof sizes / sizeof sizes[0]);
    for (int i = 0; i < n; i++) {
        int fd = cl_open(c->addr);
        cl_echo_check(fd, sizes[i], (uint64_t)i * 1000);
        if (i == 0) { /* the server's peer address is the client's own */
            conn_pid(c, 0); /* (an atomic after the address was written) */
            struct sockaddr_in me;
            socklen_t ml = sizeof me;
            assert_int_equal(getsockname(fd, (struct sockaddr *)&me, &ml), 0);
            char want[64];
            snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)ntohs(me.sin_port));
            assert_string_equal(c->peer_addr, want);
        }
        total += sizes[i];
        assert_int_equal(shutdown(fd, SHUT_WR), 0);
        assert_int_equal(cl_wait_end(fd, NULL), 0); /* EOF, nothing more */
        close(fd);
    }
    assert_true(total > MiB);
    TR_WAIT_UNTIL(atomic_load(&c->eofs) == n);
    assert_int_equal(atomic_load(&c->data_bytes), total);
    assert_int_equal(atomic_load(&c->accepted), n);

    /* A client actor: tr_connect, 200000 bytes written before CONNECTED. */
    spawn_client(rt, c, c->addr, TR_DEFAULT, 200000);
    TR_WAIT_UNTIL(atomic_load(&c->cl_done) != 0);
    assert_int_equal(atomic_load(&c->cl_status), 0);
    assert_int_equal(atomic_load(&c->cl_done), 1);
    /* Actor to actor, both throttled on the way: 6 MiB (past write_max). */
    spawn_client(rt, c, c->addr, TR_DEFAULT, 6 * MiB);
    TR_WAIT_UNTIL(atomic_load(&c->cl_done) != 0);
    assert_int_equal(atomic_load(&c->cl_status), 0);
    assert_int_equal(atomic_load(&c->cl_done), 1);
    ASSERT_NO_BAD(c);
    free_rt(rt);
    free(c);
}

/* early_b: connects, writes "hello" and shuts its writing half down, all
 * before CONNECTED; reads what comes back until the end of stream. */
static int early_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    conn *x = state;
    cl_arg a;
    TR_CHECK_COPY(&a, arg, len);
    x->c = a.c;
    int rc = tr_connect(self, a.addr, NULL, &x->s);
    if (rc == 0)
        rc = tr_sock_write(self, x->s, "hello", 5);
    if (rc == 0)
        rc = tr_sock_shutdown(self, x->s);
    if (rc == 0 && tr_sock_write(self, x->s, "late", 4) != TR_ECLOSED)
        note_bad(x->c, "a write after an early shutdown was not TR_ECLOSED");
    if (rc != 0)
        note_bad(x->c, "early connect/write/shutdown: %s", tr_err_name(rc));
    return 0;
}

static int early_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    conn *x = state;
    srv *c = x->c;
    switch (msg->type) {
    case TR_MSG_SOCK_CONNECTED: {
        int32_t st = -1;
        if (msg->len == sizeof st)
            memcpy(&st, msg->data, sizeof st);
        atomic_store(&c->cl_status, st);
        return st == 0 ? tr_sock_read(self, x->s, TR_SOCK_CONTINUOUS) : 0;
    }
    case TR_MSG_SOCK_DATA:
        for (uint32_t i = 0; i < msg->len && x->off + i < sizeof c->rx; i++)
            c->rx[x->off + i] = ((const char *)msg->data)[i];
        x->off += msg->len;
        return 0;
    case TR_MSG_SOCK_EOF:
        atomic_store(&c->data_bytes, x->off);
        atomic_store(&c->cl_done, 1);
        return tr_exit(self, TR_EXIT_NORMAL);
    case TR_MSG_SOCK_CLOSED:
        atomic_store(&c->cl_done, -1);
        return tr_exit(self, TR_EXIT_NORMAL);
    }
    return 0;
}

static const tr_behavior early_b = {.name = "early", .state_size = sizeof(conn),
                                    .init = early_init, .receive = early_receive};

/*
 * Proves the client side: writes and a shutdown made before
 * TR_MSG_SOCK_CONNECTED take effect once connected (the echo server gets
 * "hello" then its end of stream, and the client gets "hello" back, then
 * the end), a write after that shutdown is TR_ECLOSED; a listener on
 * "localhost:0" is reached by name ("localhost:port", resolved off the
 * loop); and 40 client actors over two loops, each echoing 100000 bytes
 * through one acceptor, all get their bytes back.
 */
static void test_clients(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, 0);
    srv *c = srv_new("localhost:0", &echo_b);
    c->conn_loop = TR_LOOP_ROUND_ROBIN;
    start_listener(rt, c, TR_LOOP(0));
    const char *colon = strrchr(c->addr, ':');
    assert_non_null(colon);
    char byname[64];
    snprintf(byname, sizeof byname, "localhost%s", colon);

    srv *e = srv_new("", NULL); /* the early client's report */
    cl_arg a;
    memset(&a, 0, sizeof a);
    a.c = e;
    snprintf(a.addr, sizeof a.addr, "%s", byname);
    tr_test_spawn(rt, &early_b, TR_LOOP(1), &a, sizeof a);
    TR_WAIT_UNTIL(atomic_load(&e->cl_done) != 0);
    assert_int_equal(atomic_load(&e->cl_status), 0);
    assert_int_equal(atomic_load(&e->cl_done), 1);
    assert_int_equal(atomic_load(&e->data_bytes), 5);
    assert_memory_equal(e->rx, "hello", 5);
    ASSERT_NO_BAD(e);

    enum { NCL = 40 };
    for (int i = 0; i < NCL; i++)
        spawn_client_on(rt, c, i % 2 ? byname : c->addr, TR_DEFAULT, 100000, TR_LOOP(i % 2));
    TR_WAIT_UNTIL(atomic_load(&c->cl_ok) + atomic_load(&c->cl_fail) == NCL);
    assert_int_equal(atomic_load(&c->cl_ok), NCL);
    TR_WAIT_UNTIL(atomic_load(&c->eofs) == NCL + 1);
    ASSERT_NO_BAD(c);
    free_rt(rt);
    free(c);
    free(e);
}

/* ===================================================================================== */
/* 2. many connections over two loops                                                    */
/* ===================================================================================== */

/*
 * Proves: two listeners on one port with reuseport (one per loop, the
 * second binding the port the first learned) serve 64 concurrent client
 * connections, every one of them (echo verified), each connection served
 * on its listener's loop. How the kernel spread them is reported, not
 * asserted (SO_REUSEPORT hashes the 4-tuple). Then one acceptor on loop 0
 * spreads 64 more itself (round-robin spawns + tr_sock_give): both loops
 * serve about half.
 */
static void test_many_conns_two_loops(void **state)
{
    (void)state;
    enum { NCONN = 64 };
    srv *c0 = srv_new("127.0.0.1:0", &echo_b);
    c0->lopts.reuseport = 1;
    tr_runtime *rt = tr_test_runtime(2, 0);
    start_listener(rt, c0, TR_LOOP(0));
    srv *c1 = srv_new(c0->addr, &echo_b);
    c1->lopts.reuseport = 1;
    start_listener(rt, c1, TR_LOOP(1));
    assert_string_equal(c1->addr, c0->addr);

    int fds[NCONN];
    for (int i = 0; i < NCONN; i++)
        fds[i] = cl_open(c0->addr);
    for (int i = 0; i < NCONN; i++) {
        cl_echo_check(fds[i], 100 + (size_t)i, (uint64_t)i);
        assert_int_equal(shutdown(fds[i], SHUT_WR), 0);
    }
    for (int i = 0; i < NCONN; i++) {
        assert_int_equal(cl_wait_end(fds[i], NULL), 0);
        close(fds[i]);
    }
    TR_WAIT_UNTIL(atomic_load(&c0->eofs) + atomic_load(&c1->eofs) == NCONN);
    assert_int_equal(atomic_load(&c0->accepted) + atomic_load(&c1->accepted), NCONN);
    /* each listener's connections were served on its own loop */
    assert_int_equal(atomic_load(&c0->by_loop[1]), 0);
    assert_int_equal(atomic_load(&c1->by_loop[0]), 0);
    print_message("reuseport spread of %d connections: loop 0 served %d, loop 1 served %d\n",
                  NCONN, atomic_load(&c0->by_loop[0]), atomic_load(&c1->by_loop[1]));

    /* One acceptor that spreads its connections itself: round-robin spawns
     * and tr_sock_give across loops. */
    srv *c2 = srv_new("127.0.0.1:0", &echo_b);
    c2->conn_loop = TR_LOOP_ROUND_ROBIN;
    start_listener(rt, c2, TR_LOOP(0));
    for (int i = 0; i < NCONN; i++)
        fds[i] = cl_open(c2->addr);
    for (int i = 0; i < NCONN; i++) {
        cl_echo_check(fds[i], 3000 + (size_t)i, (uint64_t)i);
        assert_int_equal(shutdown(fds[i], SHUT_WR), 0);
    }
    for (int i = 0; i < NCONN; i++) {
        assert_int_equal(cl_wait_end(fds[i], NULL), 0);
        close(fds[i]);
    }
    TR_WAIT_UNTIL(atomic_load(&c2->eofs) == NCONN);
    print_message("given round-robin: loop 0 served %d, loop 1 served %d\n",
                  atomic_load(&c2->by_loop[0]), atomic_load(&c2->by_loop[1]));
    /* the round-robin counter is the runtime's: roughly half each */
    assert_true(atomic_load(&c2->by_loop[0]) >= NCONN / 4);
    assert_true(atomic_load(&c2->by_loop[1]) >= NCONN / 4);
    ASSERT_NO_BAD(c2);
    ASSERT_NO_BAD(c0);
    ASSERT_NO_BAD(c1);
    free_rt(rt);
    free(c0);
    free(c1);
    free(c2);
}

/* ===================================================================================== */
/* 3. read flow control                                                                  */
/* ===================================================================================== */

static size_t rmem_max(void)
{
    size_t a = 0, b = 0, m = 32 * MiB;
    FILE *f = fopen("/proc/sys/net/ipv4/tcp_rmem", "r");
    if (f) {
        if (fscanf(f, "%zu %zu %zu", &a, &b, &m) != 3)
            m = 32 * MiB;
        fclose(f);
    }
    return m;
}

/* Writes pattern bytes from *off on a client socket until the kernel takes
 * no more for 1 s or `limit` bytes were written; returns what it wrote. */
static size_t cl_write_until_blocked(int fd, uint64_t *off, size_t limit)
{
    uint8_t *b = malloc(CHUNK);
    assert_non_null(b);
    size_t total = 0;
    while (total < limit) {
        struct pollfd p = {fd, POLLOUT, 0};
        int n = poll(&p, 1, 1000);
        if (n == 0)
            break; /* the peer pushes back */
        assert_true(n == 1 && (p.revents & POLLOUT));
        fill_pat(b, CHUNK, *off);
        ssize_t w = send(fd, b, CHUNK, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            continue;
        if (w <= 0)
            fail_msg("client send: %s", strerror(errno));
        total += (size_t)w;
        *off += (uint64_t)w;
    }
    free(b);
    return total;
}

/*
 * Proves: a reader that never started (a new socket is paused) or that
 * paused (tr_sock_read 0) pushes back on its peer: the peer's writes stop
 * after a bounded amount — the kernel's buffers plus read_max, nothing
 * more is buffered — and nothing is delivered while never started; once
 * the reader continues, everything written arrives, in order, and the
 * peer's writes go on.
 */
static void test_read_pause_pushes_back(void **state)
{
    (void)state;
    srv *c = srv_new("127.0.0.1:0", &sink_b);
    c->start_read = 0; /* never starts by itself */
    tr_runtime *rt = tr_test_runtime(1, 0);
    start_listener(rt, c, TR_LOOP(0));
    int fd = cl_open(c->addr);
    tr_pid p = conn_pid(c, 0);

    int sndbuf = 0;
    socklen_t sl = sizeof sndbuf;
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl), 0);
    const size_t read_max = 256 * KiB; /* the default */
    /* Everything the kernels may hold between the two ends, and read_max:
     * a write beyond it would be buffered without bound. */
    size_t bound = (size_t)sndbuf + rmem_max() + read_max + CHUNK;
    uint64_t off = 0;

    /* What the kernels hold for a peer that never reads, measured on a
     * plain socket pair: a reader that never started must stop the writer
     * about there, not later (twice it, and read_max, is the bound). */
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 1), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
    char raddr[64];
    snprintf(raddr, sizeof raddr, "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    int rfd = cl_open(raddr);
    int afd = accept(lfd, NULL, NULL);
    assert_true(afd >= 0);
    uint64_t roff = 0;
    size_t kernel = cl_write_until_blocked(rfd, &roff, bound + 1);
    close(afd);
    close(rfd);
    close(lfd);
    size_t never_bound = 2 * kernel + read_max + CHUNK;

    /* never started */
    size_t t1 = cl_write_until_blocked(fd, &off, bound + 1);
    print_message("never-started reader: the client wrote %zu bytes before it blocked "
                  "(a plain socket that never reads: %zu)\n", t1, kernel);
    assert_true(t1 <= never_bound);
    assert_int_equal(atomic_load(&c->data_bytes), 0);
    tr_sock_info in;
    assert_int_equal(ask_info(rt, p, &in), 0);
    assert_int_equal(in.reading, 0);

    /* continues: everything arrives, and the writes go on */
    assert_int_equal(ask_read(rt, p, TR_SOCK_CONTINUOUS), 0);
    TR_WAIT_UNTIL(atomic_load(&c->data_bytes) == off);
    size_t t2 = cl_write_until_blocked(fd, &off, MiB);
    assert_true(t2 >= MiB); /* never blocked for a second */
    TR_WAIT_UNTIL(atomic_load(&c->data_bytes) == off);

    /* paused after reading */
    assert_int_equal(ask_read(rt, p, TR_SOCK_PAUSE), 0);
    assert_int_equal(ask_info(rt, p, &in), 0);
    assert_int_equal(in.reading, 0);
    uint64_t before = off;
    size_t t3 = cl_write_until_blocked(fd, &off, bound + 1);
    print_message("paused reader: the client wrote %zu bytes before it blocked\n", t3);
    assert_true(t3 <= bound);
    assert_true(atomic_load(&c->data_bytes) <= before + read_max);
    assert_int_equal(ask_read(rt, p, TR_SOCK_CONTINUOUS), 0);
    TR_WAIT_UNTIL(atomic_load(&c->data_bytes) == off);
    assert_int_equal(ask_info(rt, p, &in), 0);
    assert_int_equal(in.bytes_in, off);
    assert_int_equal(in.read_held, 0);
    assert_int_equal(in.reading, 1);
    ASSERT_NO_BAD(c);
    close(fd);
    free_rt(rt);
    free(c);
}

/*
 * Proves "the next N reads": tr_sock_read(self, s, 2) delivers exactly two
 * data messages, then TR_MSG_SOCK_PASSIVE, and reading stays paused (a
 * third chunk waits) until tr_sock_read(self, s, 1) delivers it and
 * another PASSIVE.
 */
static void test_read_next_n(void **state)
{
    (void)state;
    srv *c = srv_new("127.0.0.1:0", &sink_b);
    c->start_read = 2;
    tr_runtime *rt = tr_test_runtime(1, 0);
    start_listener(rt, c, TR_LOOP(0));
    int fd = cl_open(c->addr);
    tr_pid p = conn_pid(c, 0);
    uint8_t b[3];
    fill_pat(b, 3, 0);

    cl_send_all(fd, b, 1);
    TR_WAIT_UNTIL(atomic_load(&c->data_msgs) == 1);
    cl_send_all(fd, b + 1, 1);
    TR_WAIT_UNTIL(atomic_load(&c->passive) == 1);
    assert_int_equal(atomic_load(&c->nev), 3);
    assert_memory_equal(c->ev, "DDP", 3);
    assert_int_equal(atomic_load(&c->data_bytes), 2);
    tr_sock_info in;
    assert_int_equal(ask_info(rt, p, &in), 0);
    assert_int_equal(in.reading, 0);

    /* paused: a third byte waits (observed for 300 ms: it could only pass) */
    cl_send_all(fd, b + 2, 1);
    uint64_t end = tr_test_wall_ns() + 300 * MS;
    while (tr_test_wall_ns() < end && atomic_load(&c->data_msgs) == 2)
        sched_yield();
    assert_int_equal(atomic_load(&c->data_msgs), 2);

    assert_int_equal(ask_read(rt, p, 1), 0);
    TR_WAIT_UNTIL(atomic_load(&c->passive) == 2);
    assert_int_equal(atomic_load(&c->nev), 5);
    assert_memory_equal(c->ev, "DDPDP", 5);
    assert_int_equal(atomic_load(&c->data_bytes), 3);
    assert_memory_equal(c->rx, b, 3);
    ASSERT_NO_BAD(c);
    close(fd);
    free_rt(rt);
    free(c);
}

/* ===================================================================================== */
/* 4. write water marks                                                                  */
/* ===================================================================================== */

/* water_b: on CMD_FLOOD writes CHUNK after CHUNK (one per message) until
 * TR_EFULL; records THROTTLED / UNTHROTTLED and the queue at each. */
static int water_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    conn *x = state;
    srv *c = x->c;
    int rc;
    switch (msg->type) {
    case TR_MSG_SOCK_GIVEN:
        conn_given(self, x, msg);
        return 0;
    case CMD_FLOOD:
    case SELF_MORE: {
        uint8_t *b = malloc(CHUNK);
        TR_CHECK(b != NULL);
        fill_pat(b, CHUNK, x->woff);
        rc = tr_sock_write(self, x->s, b, CHUNK);
        free(b);
        if (rc == 0) {
            x->woff += CHUNK;
            atomic_store(&c->written, x->woff);
            if (x->woff > (uint64_t)1 << 30) {
                note_bad(c, "1 GiB written and no TR_EFULL");
                return 0;
            }
            return tr_send(self, tr_self(self), SELF_MORE, NULL, 0);
        }
        if (rc == TR_EFULL) {
            tr_sock_info in;
            rc = tr_sock_info_get(self, x->s, &in);
            if (rc != 0)
                note_bad(c, "info: %s", tr_err_name(rc));
            atomic_store(&c->efull_queued, in.write_queued);
            atomic_store(&c->efull_throttled, in.throttled);
            atomic_store(&c->efull, 1);
            return 0;
        }
        note_bad(c, "flood write: %s", tr_err_name(rc));
        return 0;
    }
    case TR_MSG_SOCK_THROTTLED:
        atomic_fetch_add(&c->throttled, 1);
        return 0;
    case TR_MSG_SOCK_UNTHROTTLED: {
        tr_sock_info in;
        rc = tr_sock_info_get(self, x->s, &in);
        if (rc != 0)
            note_bad(c, "info: %s", tr_err_name(rc));
        atomic_store(&c->unth_queued, in.write_queued);
        if (in.throttled)
            note_bad(c, "info.throttled is 1 at UNTHROTTLED");
        atomic_fetch_add(&c->unthrottled, 1);
        return 0;
    }
    }
    if (conn_common(self, x, msg, &rc))
        return rc;
    return 0;
}

static const tr_behavior water_b = {.name = "water", .state_size = sizeof(conn),
                                    .init = conn_init, .receive = water_receive,
                                    .terminate = conn_terminate};

/*
 * Proves the write water marks: to a peer that does not read, writes of
 * 64 KiB queue up; the owner gets TR_MSG_SOCK_THROTTLED once (crossing
 * write_high), then a write fails with TR_EFULL with write_queued <=
 * write_max (and nothing of that write queued: the peer gets exactly what
 * succeeded); when the peer drains, TR_MSG_SOCK_UNTHROTTLED arrives with
 * the queue at or below write_low.
 */
static void test_write_water_marks(void **state)
{
    (void)state;
    srv *c = srv_new("127.0.0.1:0", &water_b);
    c->lopts.conn.write_high = 128 * KiB;
    c->lopts.conn.write_low = 32 * KiB;
    c->lopts.conn.write_max = 256 * KiB;
    /* a fixed kernel send buffer: one that grows by itself (up to 4 MiB)
     * could take the queue below write_low while the test looks */
    c->lopts.conn.sndbuf = 32 * KiB;
    tr_runtime *rt = tr_test_runtime(1, 0);
    start_listener(rt, c, TR_LOOP(0));
    int fd = cl_open_rcvbuf(c->addr, 16 * 1024);
    tr_pid p = conn_pid(c, 0);

    assert_int_equal(tr_rt_send(rt, p, CMD_FLOOD, NULL, 0), 0);
    TR_WAIT_UNTIL(atomic_load(&c->efull) == 1);
    size_t q = atomic_load(&c->efull_queued);
    print_message("TR_EFULL after %llu bytes written, %zu queued\n",
                  (unsigned long long)atomic_load(&c->written), q);
    assert_true(q <= 256 * KiB);
    assert_true(q + CHUNK > 256 * KiB); /* it was full indeed */
    /* the kernel took no more than its fixed buffers (64 KiB sent, 32 KiB
     * at the peer, doubled): unset, the send buffer grows to 4 MiB */
    assert_true(atomic_load(&c->written) <= q + 512 * KiB);
    assert_int_equal(atomic_load(&c->efull_throttled), 1);
    TR_WAIT_UNTIL(atomic_load(&c->throttled) == 1);
    assert_int_equal(atomic_load(&c->unthrottled), 0);
    tr_sock_info in;
    assert_int_equal(ask_info(rt, p, &in), 0);
    assert_int_equal(in.throttled, 1);

    /* the peer drains: exactly what succeeded, in order */
    uint64_t total = atomic_load(&c->written);
    uint8_t *b = malloc(total);
    assert_non_null(b);
    assert_int_equal(cl_recv_all(fd, b, total), total);
    assert_true(check_pat(b, total, 0) < 0);
    free(b);
    TR_WAIT_UNTIL(atomic_load(&c->unthrottled) == 1);
    assert_true(atomic_load(&c->unth_queued) <= 32 * KiB);
    assert_int_equal(atomic_load(&c->throttled), 1);
    assert_int_equal(ask_info(rt, p, &in), 0);
    assert_int_equal(in.throttled, 0);
    assert_int_equal(in.write_queued, 0);
    assert_int_equal(in.bytes_out, total);
    /* nothing more than what succeeded comes */
    struct pollfd pf = {fd, POLLIN, 0};
    assert_int_equal(poll(&pf, 1, 200), 0);
    ASSERT_NO_BAD(c);
    close(fd);
    free_rt(rt);
    free(c);
}

/* ===================================================================================== */
/* 5. fairness                                                                           */
/* ===================================================================================== */

/* fair_b: the first connection (A) counts what it reads; the others (B)
 * answer each 4-byte request with "pong", noting A's count then. */
static int fair_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    conn *x = state;
    srv *c = x->c;
    int rc;
    switch (msg->type) {
    case TR_MSG_SOCK_GIVEN:
        conn_given(self, x, msg);
        return tr_sock_read(self, x->s, TR_SOCK_CONTINUOUS);
    case TR_MSG_SOCK_DATA:
        if (x->slot == 0) {
            atomic_fetch_add(&c->a_bytes, msg->len);
            return 0;
        }
        x->off += msg->len;
        while (x->off >= (uint64_t)(x->nanswered + 1) * 4) {
            int k = atomic_load(&c->nreq);
            if (k < 32)
                atomic_store(&c->a_at_req[k], atomic_load(&c->a_bytes));
            atomic_store(&c->nreq, k + 1); /* before the answer can reach the client */
            x->nanswered++;
            rc = tr_sock_write(self, x->s, "pong", 4);
            if (rc != 0)
                note_bad(c, "pong: %s", tr_err_name(rc));
        }
        return 0;
    case TR_MSG_SOCK_EOF:
        atomic_fetch_add(&c->eofs, 1);
        return tr_exit(self, TR_EXIT_NORMAL);
    }
    if (conn_common(self, x, msg, &rc))
        return rc;
    return 0;
}

static const tr_behavior fair_b = {.name = "fair", .state_size = sizeof(conn),
                                   .init = conn_init, .receive = fair_receive,
                                   .terminate = conn_terminate};

typedef struct firehose {
    int fd;
    _Atomic int stop;
    _Atomic uint64_t sent;
} firehose;

static void *firehose_main(void *arg)
{
    firehose *h = arg;
    uint8_t *b = calloc(1, CHUNK);
    if (!b)
        return NULL;
    while (!atomic_load(&h->stop)) {
        ssize_t w = send(h->fd, b, CHUNK, MSG_NOSIGNAL); /* SO_SNDTIMEO: 1 s at most */
        if (w > 0)
            atomic_fetch_add(&h->sent, (uint64_t)w);
        else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            break;
    }
    free(b);
    return NULL;
}

/*
 * Proves fairness within one loop: while a client floods connection A
 * without pause, a request on connection B is answered before A's server
 * side has handled more than read_max + 2 * read_budget bytes after the
 * request was in the kernel (read_max: bytes A may have read already but
 * not handled when the request was sent; 2 * read_budget: a loop turn
 * reads at most read_budget of A). Counted in bytes, not time.
 */
static void test_fairness(void **state)
{
    (void)state;
    const size_t budget = 16 * KiB, rmax = 32 * KiB;
    srv *c = srv_new("127.0.0.1:0", &fair_b);
    c->lopts.conn.read_budget = budget;
    c->lopts.conn.read_max = rmax;
    tr_runtime *rt = tr_test_runtime(1, 0);
    start_listener(rt, c, TR_LOOP(0));

    firehose h;
    memset(&h, 0, sizeof h);
    h.fd = cl_open(c->addr);
    set_timeouts(h.fd, 1000);
    conn_pid(c, 0);
    int fb = cl_open(c->addr);
    conn_pid(c, 1);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, firehose_main, &h), 0);
    TR_WAIT_UNTIL(atomic_load(&c->a_bytes) > 4 * MiB);

    enum { ROUNDS = 10 };
    long long worst = LLONG_MIN;
    for (int k = 0; k < ROUNDS; k++) {
        cl_send_all(fb, "ping", 4);
        uint64_t x0 = atomic_load(&c->a_bytes); /* after the request is in the kernel */
        char pong[4];
        assert_int_equal(cl_recv_all(fb, pong, 4), 4);
        assert_memory_equal(pong, "pong", 4);
        assert_int_equal(atomic_load(&c->nreq), k + 1);
        long long d = (long long)atomic_load(&c->a_at_req[k]) - (long long)x0;
        if (d > worst)
            worst = d;
        if (d > (long long)(rmax + 2 * budget))
            fail_msg("round %d: A's server handled %lld bytes between B's request "
                     "and its handling (at most %zu)", k, d, rmax + 2 * budget);
    }
    print_message("fairness: A handled at most %lld bytes while B's request waited "
                  "(bound %zu); the firehose sent %llu bytes\n", worst, rmax + 2 * budget,
                  (unsigned long long)atomic_load(&h.sent));
    atomic_store(&h.stop, 1);
    pthread_join(t, NULL);
    close(h.fd);
    close(fb);
    ASSERT_NO_BAD(c);
    free_rt(rt);
    free(c);
}

/* ===================================================================================== */
/* 6. the owner's exit closes its sockets                                                */
/* ===================================================================================== */

/*
 * Proves: however a connection's owner ends — tr_exit, a handler returning
 * an error, tr_exit_error, a kill from outside, its parent (the listener's
 * owner) ending — the peer sees the connection end (EOF or reset) within
 * the clients' patience.
 */
static void test_owner_exit_closes(void **state)
{
    (void)state;
    srv *c = srv_new("127.0.0.1:0", &echo_b);
    tr_runtime *rt = tr_test_runtime(1, TR_TEST_QUIET);
    tr_pid lp = start_listener(rt, c, TR_LOOP(0));
    const char *how_name[] = {"tr_exit", "handler error", "tr_exit_error", "killed",
                              "parent's end"};
    for (int how = 0; how < 5; how++) {
        int fd = cl_open(c->addr);
        tr_pid p = conn_pid(c, how);
        cl_echo_check(fd, 10, 0); /* it is set up and reading */
        if (how < 3)
            assert_int_equal(tr_rt_send(rt, p, CMD_EXIT, &how, sizeof how), 0);
        else if (how == 3)
            assert_int_equal(tr_signal_exit(rt, p, TR_EXIT_KILLED), 0);
        else
            assert_int_equal(tr_signal_exit(rt, lp, TR_EXIT_KILLED), 0);
        int end = cl_wait_end(fd, NULL);
        if (end != 0 && end != -ECONNRESET)
            fail_msg("after the owner's %s the peer saw: %s", how_name[how],
                     end == -EAGAIN ? "nothing for 10 s" : strerror(-end));
        close(fd);
    }
    ASSERT_NO_BAD(c);
    free_rt(rt);
    free(c);
}

/* failinit_b: a connection actor whose init fails. */
static int failinit_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)self;
    (void)state;
    (void)arg;
    (void)len;
    return TR_EUSER(3);
}

static const tr_behavior failinit_b = {.name = "failinit", .init = failinit_init,
                                       .receive = tr_test_ignore};

/*
 * Proves: a socket given to an actor that ends before it receives it (its
 * init fails) is closed — on the same loop and across loops (where it
 * travels as a descriptor) — so the peer sees its end, nothing leaks.
 */
static void test_give_to_dying_actor(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, TR_TEST_QUIET);
    srv *cs[2];
    for (int other = 0; other < 2; other++) {
        srv *c = cs[other] = srv_new("127.0.0.1:0", &failinit_b);
        c->child_may_die = 1;
        c->conn_loop = other ? TR_LOOP(0) : TR_LOOP(1);
        start_listener(rt, c, TR_LOOP(0));
        int fd = cl_open(c->addr);
        TR_WAIT_UNTIL(atomic_load(&c->accepted) == 1);
        int end = cl_wait_end(fd, NULL);
        if (end != 0 && end != -ECONNRESET)
            fail_msg("a socket given to a dying actor%s: the peer saw %s",
                     other ? "" : " of another loop",
                     end == -EAGAIN ? "nothing for 10 s" : strerror(-end));
        close(fd);
        ASSERT_NO_BAD(c);
    }
    free_rt(rt);
    free(cs[0]);
    free(cs[1]);
}

/*
 * Proves: closing a listener — tr_sock_close, or its owner's end — leaves
 * the connections it accepted open (here given to an actor that is not
 * the listener's child): the echo goes on, while the port refuses new
 * connections.
 */
static void test_listener_close_keeps_conns(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(1, TR_TEST_QUIET);
    for (int how = 0; how < 2; how++) {
        srv *c = srv_new("127.0.0.1:0", NULL);
        atomic_store(&c->lst_target, tr_test_spawn(rt, &echo_b, TR_LOOP(0), &c, sizeof c));
        tr_pid lp = start_listener(rt, c, TR_LOOP(0));
        int fd = cl_open(c->addr);
        cl_echo_check(fd, 1000, 1);
        if (how == 0)
            assert_int_equal(ask_rc(rt, lp, CMD_CLOSE_LISTENER, NULL, 0), 0);
        else {
            /* the kill acts soon: until the listener has gone, a connect
             * would still be accepted (and handed to the echo) */
            assert_int_equal(tr_signal_exit(rt, lp, TR_EXIT_KILLED), 0);
            TR_WAIT_GONE(rt, lp, 999);
        }
        /* the port refuses. A connect racing the close may be reset
         * instead: its SYN was in the listener's queue when it closed. */
        int f2;
        uint64_t end = tr_test_wall_ns() + (uint64_t)CL_TIMEOUT_MS * MS;
        while (((f2 = cl_try(c->addr, 0)) >= 0 || f2 == -ECONNRESET) &&
               tr_test_wall_ns() < end)
            if (f2 >= 0)
                close(f2);
        assert_int_equal(f2, -ECONNREFUSED);
        cl_echo_check(fd, 100000, 2); /* the connection lives on */
        assert_int_equal(shutdown(fd, SHUT_WR), 0);
        assert_int_equal(cl_wait_end(fd, NULL), 0);
        close(fd);
        TR_WAIT_UNTIL(atomic_load(&c->eofs) == 1);
        ASSERT_NO_BAD(c);
        /* c is the report of actors that have ended (the echo at EOF, the
         * listener killed or idle): it stays until the runtime is freed */
        if (how == 0) {
            assert_int_equal(tr_signal_exit(rt, lp, TR_EXIT_KILLED), 0);
            TR_WAIT_GONE(rt, lp, 999);
        }
        free(c);
    }
    free_rt(rt);
}

/* ===================================================================================== */
/* 7. max_conns                                                                          */
/* ===================================================================================== */

/*
 * Proves max_conns: with 2 allowed, a third client's handshake completes
 * (the kernel's backlog) but no third TR_MSG_SOCK_ACCEPTED comes while two
 * connections are open (observed for 300 ms: a wrong accept could only
 * show); when one closes (the owner closes it at its EOF), the third is
 * accepted.
 */
static void test_max_conns(void **state)
{
    (void)state;
    srv *c = srv_new("127.0.0.1:0", NULL); /* the listener keeps its connections */
    c->lopts.max_conns = 2;
    tr_runtime *rt = tr_test_runtime(1, 0);
    tr_pid lp = start_listener(rt, c, TR_LOOP(0));
    int f1 = cl_open(c->addr), f2 = cl_open(c->addr);
    TR_WAIT_UNTIL(atomic_load(&c->accepted) == 2);
    int f3 = cl_open(c->addr);
    cl_send_all(f3, "x", 1);
    uint64_t end = tr_test_wall_ns() + 300 * MS;
    while (tr_test_wall_ns() < end && atomic_load(&c->accepted) == 2)
        sched_yield();
    assert_int_equal(atomic_load(&c->accepted), 2);
    tr_sock_info in;
    assert_int_equal(ask_info(rt, lp, &in), 0);
    assert_int_equal(in.listener, 1);
    assert_int_equal(in.conns, 2);

    close(f1);
    TR_WAIT_UNTIL(atomic_load(&c->accepted) == 3);
    TR_WAIT_UNTIL(atomic_load(&c->data_bytes) == 1); /* the third's byte */
    assert_int_equal(ask_info(rt, lp, &in), 0);
    assert_int_equal(in.conns, 2);
    close(f2);
    close(f3);
    TR_WAIT_UNTIL(atomic_load(&c->eofs) == 3);
    assert_int_equal(ask_info(rt, lp, &in), 0);
    assert_int_equal(in.conns, 0);
    ASSERT_NO_BAD(c);
    free_rt(rt);
    free(c);
}

/* ===================================================================================== */
/* 8. idle timeout                                                                       */
/* ===================================================================================== */

/*
 * Proves idle_ms: a connection with no byte either way for 200 ms is
 * closed with TR_MSG_SOCK_CLOSED (TR_ETIMEDOUT), not before 200 ms of real
 * time, and the peer sees its end; activity resets the timer: a client
 * writing every 100 ms keeps an idle_ms = 1000 connection open for 2.5 s,
 * and it closes (not sooner than 1000 ms) once the client stops.
 */
static void test_idle_timeout(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(1, 0);
    srv *c = srv_new("127.0.0.1:0", &echo_b);
    c->lopts.conn.idle_ms = 200;
    start_listener(rt, c, TR_LOOP(0));
    uint64_t t0 = tr_test_wall_ns();
    int fd = cl_open(c->addr);
    TR_WAIT_UNTIL(atomic_load(&c->closed) == 1);
    assert_int_equal(atomic_load(&c->closed_reason), TR_ETIMEDOUT);
    uint64_t took = atomic_load(&c->closed_ns) - t0;
    print_message("idle 200 ms: closed %llu us after the client's connect began\n",
                  (unsigned long long)(took / 1000));
    assert_true(took + CLOCK_SLACK_NS >= 200 * MS);
    int e = cl_wait_end(fd, NULL);
    assert_true(e == 0 || e == -ECONNRESET);
    close(fd);

    srv *c2 = srv_new("127.0.0.1:0", &echo_b);
    c2->lopts.conn.idle_ms = 1000;
    start_listener(rt, c2, TR_LOOP(0));
    fd = cl_open(c2->addr);
    uint64_t last = 0;
    for (int i = 0; i < 25; i++) {
        char ch = 'a', back = 0;
        cl_send_all(fd, &ch, 1);
        last = tr_test_wall_ns();
        assert_int_equal(cl_recv_all(fd, &back, 1), 1);
        assert_int_equal(back, 'a');
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL); /* pacing the activity, not waiting for anything */
    }
    assert_int_equal(atomic_load(&c2->closed), 0);
    TR_WAIT_UNTIL(atomic_load(&c2->closed) == 1);
    assert_int_equal(atomic_load(&c2->closed_reason), TR_ETIMEDOUT);
    took = atomic_load(&c2->closed_ns) - last;
    print_message("idle 1000 ms: closed %llu us after the last write\n",
                  (unsigned long long)(took / 1000));
    assert_true(took + CLOCK_SLACK_NS >= 1000 * MS);
    e = cl_wait_end(fd, NULL);
    assert_true(e == 0 || e == -ECONNRESET);
    close(fd);
    ASSERT_NO_BAD(c);
    ASSERT_NO_BAD(c2);
    free_rt(rt);
    free(c);
    free(c2);
}

/* ticker_b: writes a byte every 100 ms, 25 times (then stops): its
 * writes alone keep the connection active. */
static int ticker_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    conn *x = state;
    srv *c = x->c;
    int rc;
    switch (msg->type) {
    case TR_MSG_SOCK_GIVEN:
        conn_given(self, x, msg);
        return tr_send_interval(self, tr_self(self), 100, TICK, NULL, 0, &x->tick);
    case TICK:
        if (x->nanswered++ == 25)
            return tr_timer_cancel(self, x->tick); /* no byte: the last went before */
        rc = tr_sock_write(self, x->s, "t", 1);
        if (rc != 0)
            note_bad(c, "tick write: %s", tr_err_name(rc));
        atomic_store(&c->last_tick_ns, tr_test_wall_ns());
        return 0;
    }
    if (conn_common(self, x, msg, &rc))
        return rc;
    return 0;
}

static const tr_behavior ticker_b = {.name = "ticker", .state_size = sizeof(conn),
                                     .init = conn_init, .receive = ticker_receive,
                                     .terminate = conn_terminate};

/*
 * Proves that idle_ms counts bytes either way: an owner that writes a
 * byte every 100 ms to a peer that never writes keeps an idle_ms = 1000
 * connection open for 2.5 s; it closes (TR_ETIMEDOUT, not sooner than
 * 1000 ms after the last byte) once the writes stop.
 */
static void test_idle_counts_writes(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(1, 0);
    srv *c = srv_new("127.0.0.1:0", &ticker_b);
    c->lopts.conn.idle_ms = 1000;
    start_listener(rt, c, TR_LOOP(0));
    int fd = cl_open(c->addr);
    char b[64];
    size_t got = 0;
    while (got < 25) { /* the client only reads */
        ssize_t r = recv(fd, b, sizeof b, 0);
        if (r <= 0)
            fail_msg("after %zu ticks the client read: %s", got,
                     r == 0 ? "EOF" : strerror(errno));
        got += (size_t)r;
    }
    assert_int_equal(atomic_load(&c->closed), 0);
    TR_WAIT_UNTIL(atomic_load(&c->closed) == 1);
    assert_int_equal(atomic_load(&c->closed_reason), TR_ETIMEDOUT);
    uint64_t took = atomic_load(&c->closed_ns) - atomic_load(&c->last_tick_ns);
    print_message("idle 1000 ms after the owner's last write: closed %llu us after it\n",
                  (unsigned long long)(took / 1000));
    assert_true(took + CLOCK_SLACK_NS >= 1000 * MS);
    close(fd);
    ASSERT_NO_BAD(c);
    free_rt(rt);
    free(c);
}

/* ===================================================================================== */
/* 9. Unix-domain sockets, 10. IPv6                                                      */
/* ===================================================================================== */

/*
 * Proves: "unix:/path" listens on a Unix-domain socket, tr_sock_addr gives
 * "unix:/path" back (and "unix:..." for an accepted connection's unnamed
 * peer), and echo works (POSIX client and tr_connect client).
 */
static void test_unix(void **state)
{
    (void)state;
    char dir[] = "/tmp/troupe-sock-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char addr[256], path[200];
    snprintf(path, sizeof path, "%s/s.sock", dir);
    snprintf(addr, sizeof addr, "unix:%s", path);
    srv *c = srv_new(addr, &echo_b);
    tr_runtime *rt = tr_test_runtime(1, 0);
    start_listener(rt, c, TR_LOOP(0));
    assert_string_equal(c->addr, addr);
    const size_t sizes[] = {1, 5000, 700000};
    for (int i = 0; i < 3; i++) {
        int fd = cl_open(c->addr);
        cl_echo_check(fd, sizes[i], (uint64_t)i);
        if (i == 0) { /* the client is unnamed: its address is "unix:" and no path */
            conn_pid(c, 0); /* (an atomic after the address was written) */
            print_message("the peer of an accepted Unix connection: \"%s\"\n", c->peer_addr);
            assert_true(strncmp(c->peer_addr, "unix:", 5) == 0);
        }
        assert_int_equal(shutdown(fd, SHUT_WR), 0);
        assert_int_equal(cl_wait_end(fd, NULL), 0);
        close(fd);
    }
    spawn_client(rt, c, addr, TR_DEFAULT, 100000);
    TR_WAIT_UNTIL(atomic_load(&c->cl_done) != 0);
    assert_int_equal(atomic_load(&c->cl_status), 0);
    assert_int_equal(atomic_load(&c->cl_done), 1);
    ASSERT_NO_BAD(c);
    free_rt(rt);
    free(c);
    unlink(path); /* whether the runtime unlinks it is not specified */
    assert_int_equal(rmdir(dir), 0);
}

/*
 * Proves: "[::1]:0" listens on IPv6 loopback (skipped if the host has no
 * IPv6), tr_sock_addr says "[::1]:port", and echo works both ways.
 */
static void test_ipv6(void **state)
{
    (void)state;
    /* Has the host IPv6 loopback? Asked of the kernel, not of troupe. */
    int probe = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 a6;
    memset(&a6, 0, sizeof a6);
    a6.sin6_family = AF_INET6;
    a6.sin6_addr = in6addr_loopback;
    int have6 = probe >= 0 && bind(probe, (struct sockaddr *)&a6, sizeof a6) == 0;
    if (probe >= 0)
        close(probe);
    srv *c = srv_new("[::1]:0", &echo_b);
    tr_runtime *rt = tr_test_runtime(1, 0);
    tr_test_spawn(rt, &listener_b, TR_LOOP(0), &c, sizeof c);
    TR_WAIT_UNTIL(atomic_load(&c->listen_rc) != 0);
    int rc = atomic_load(&c->listen_rc);
    if (rc != 1) {
        if (have6)
            fail_msg("the host binds [::1], but tr_listen(\"[::1]:0\"): %s", tr_err_name(rc));
        print_message("no IPv6 loopback here (tr_listen: %s): skipped\n", tr_err_name(rc));
        free_rt(rt);
        free(c);
        skip();
        return;
    }
    assert_true(strncmp(c->addr, "[::1]:", 6) == 0);
    int fd = cl_open(c->addr);
    cl_echo_check(fd, 100000, 3);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    assert_int_equal(cl_wait_end(fd, NULL), 0);
    close(fd);
    spawn_client(rt, c, c->addr, TR_DEFAULT, 50000);
    TR_WAIT_UNTIL(atomic_load(&c->cl_done) != 0);
    assert_int_equal(atomic_load(&c->cl_done), 1);
    ASSERT_NO_BAD(c);
    free_rt(rt);
    free(c);
}

/* ===================================================================================== */
/* 11. connect's failures                                                                */
/* ===================================================================================== */

/* A listener that never accepts, its backlog filled: a connect to it
 * waits for a handshake that does not come (the last filler's SYN goes
 * unanswered). `addr` is its "127.0.0.1:port". */
typedef struct full_backlog {
    int lfd;
    int fill[16];
    int nfill;
    char addr[64];
} full_backlog;

static void full_backlog_open(full_backlog *b)
{
    b->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(b->lfd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(b->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(b->lfd, 0), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(b->lfd, (struct sockaddr *)&a, &al), 0);
    snprintf(b->addr, sizeof b->addr, "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    int pending = 0;
    b->nfill = 0;
    while (b->nfill < 16 && !pending) {
        int f = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        assert_true(f >= 0);
        b->fill[b->nfill++] = f;
        if (connect(f, (struct sockaddr *)&a, sizeof a) == 0)
            continue;
        assert_int_equal(errno, EINPROGRESS);
        struct pollfd pf = {f, POLLOUT, 0};
        if (poll(&pf, 1, 300) == 0)
            pending = 1; /* the backlog is full: this one's SYN goes unanswered */
    }
    assert_true(pending);
}

static void full_backlog_close(full_backlog *b)
{
    for (int i = 0; i < b->nfill; i++)
        close(b->fill[i]);
    close(b->lfd);
}

/*
 * Proves tr_connect's outcomes: to a listener whose backlog is full (a raw
 * socket that never accepts), TR_MSG_SOCK_CONNECTED says TR_ETIMEDOUT
 * after timeout_ms (300; not sooner); to a closed port, TR_ECONNREFUSED;
 * to "no-such-host.invalid:80", TR_ENOHOST. Each failed handle is dead.
 */
static void test_connect_failures(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(1, 0);
    srv *c = srv_new("", NULL);

    /* a listener that never accepts, its backlog filled */
    full_backlog fb;
    full_backlog_open(&fb);
    spawn_client(rt, c, fb.addr, 300, 0);
    TR_WAIT_UNTIL(atomic_load(&c->cl_status) != 1);
    assert_int_equal(atomic_load(&c->cl_status), TR_ETIMEDOUT);
    assert_true(atomic_load(&c->cl_ns) + CLOCK_SLACK_NS >= 300 * MS);
    full_backlog_close(&fb);

    /* a closed port */
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int pfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(pfd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(pfd, (struct sockaddr *)&a, &al), 0);
    close(pfd); /* bound, never listened: nothing listens there */
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    spawn_client(rt, c, addr, 10000, 0);
    TR_WAIT_UNTIL(atomic_load(&c->cl_status) != 1);
    assert_int_equal(atomic_load(&c->cl_status), TR_ECONNREFUSED);

    /* no such host (".invalid" never resolves) */
    spawn_client(rt, c, "no-such-host.invalid:80", 20000, 0);
    TR_WAIT_UNTIL(atomic_load(&c->cl_status) != 1);
    assert_int_equal(atomic_load(&c->cl_status), TR_ENOHOST);
    ASSERT_NO_BAD(c);
    free_rt(rt);
    free(c);
}

/* cancel_b: connects to each address of its argument (NUL-separated)
 * and closes each socket at once, before CONNECTED; any socket message
 * that still arrives is a failure. */
static _Atomic int cancel_msgs, cancel_done;

static int cancel_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    const char *p = arg, *end = (const char *)arg + len;
    int bad = 0;
    while (p < end && *p) {
        tr_sock s = 0;
        if (tr_connect(self, p, NULL, &s) != 0 || tr_sock_close(self, s) != 0)
            bad++;
        p += strlen(p) + 1;
    }
    atomic_store(&cancel_done, bad ? -1 : 1);
    return 0;
}

static int cancel_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    if (msg->type >= TR_MSG_SOCK_DATA && msg->type <= TR_MSG_SOCK_PASSIVE)
        atomic_fetch_add(&cancel_msgs, 1);
    return 0;
}

static const tr_behavior cancel_b = {.name = "cancel", .init = cancel_init,
                                     .receive = cancel_receive};

/*
 * Proves that closing a socket whose connect has not finished — still
 * resolving a name, still waiting for a handshake that will not come,
 * about to be refused, about to connect — ends it quietly: no message
 * about it arrives (watched for 300 ms), and the runtime frees cleanly
 * (ASan / valgrind check the cancelled requests' memory).
 */
static void test_close_while_connecting(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(1, 0);
    srv *c = srv_new("127.0.0.1:0", &echo_b);
    start_listener(rt, c, TR_LOOP(0));
    full_backlog fb; /* a handshake that will not come */
    full_backlog_open(&fb);
    char args[512];
    int n = snprintf(args, sizeof args, "%s%c%s%c%s%c127.0.0.1:1%c%s%c", fb.addr, 0,
                     "no-such-host.invalid:80", 0, "localhost:1", 0, 0, c->addr, 0);
    atomic_store(&cancel_msgs, 0);
    atomic_store(&cancel_done, 0);
    tr_test_spawn(rt, &cancel_b, TR_LOOP(0), args, (size_t)n + 1);
    TR_WAIT_UNTIL(atomic_load(&cancel_done) != 0);
    assert_int_equal(atomic_load(&cancel_done), 1);
    uint64_t end = tr_test_wall_ns() + 300 * MS;
    while (tr_test_wall_ns() < end && atomic_load(&cancel_msgs) == 0)
        sched_yield();
    assert_int_equal(atomic_load(&cancel_msgs), 0);
    free_rt(rt);
    full_backlog_close(&fb);
    ASSERT_NO_BAD(c);
    free(c);
}

/* rst_b: reads; records how the connection ended and whether the handle
 * is dead after TR_MSG_SOCK_CLOSED. */
static int rst_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    conn *x = state;
    srv *c = x->c;
    int rc;
    switch (msg->type) {
    case TR_MSG_SOCK_GIVEN:
        conn_given(self, x, msg);
        return tr_sock_read(self, x->s, TR_SOCK_CONTINUOUS);
    case TR_MSG_SOCK_DATA:
        atomic_fetch_add(&c->data_bytes, msg->len);
        return 0;
    case TR_MSG_SOCK_EOF:
        atomic_fetch_add(&c->eofs, 1);
        return 0;
    case TR_MSG_SOCK_CLOSED:
        if (tr_sock_write(self, x->s, "x", 1) != TR_ENOTSOCK)
            note_bad(c, "a write after CLOSED was not TR_ENOTSOCK");
        conn_closed(x, msg);
        return 0;
    }
    if (conn_common(self, x, msg, &rc))
        return rc;
    return 0;
}

static const tr_behavior rst_b = {.name = "rst", .state_size = sizeof(conn),
                                  .init = conn_init, .receive = rst_receive,
                                  .terminate = conn_terminate};

/*
 * Proves: a peer that resets the connection (SO_LINGER 0, then close)
 * ends it for the owner with TR_MSG_SOCK_CLOSED, TR_ECONNRESET, and the
 * handle is dead then (a write is TR_ENOTSOCK).
 */
static void test_peer_reset(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(1, 0);
    srv *c = srv_new("127.0.0.1:0", &rst_b);
    start_listener(rt, c, TR_LOOP(0));
    int fd = cl_open(c->addr);
    conn_pid(c, 0);
    cl_send_all(fd, "abc", 3);
    TR_WAIT_UNTIL(atomic_load(&c->data_bytes) == 3);
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l), 0);
    close(fd);
    TR_WAIT_UNTIL(atomic_load(&c->closed) + atomic_load(&c->eofs) > 0);
    assert_int_equal(atomic_load(&c->eofs), 0);
    assert_int_equal(atomic_load(&c->closed), 1);
    assert_int_equal(atomic_load(&c->closed_reason), TR_ECONNRESET);
    ASSERT_NO_BAD(c);
    free_rt(rt);
    free(c);
}

/* ===================================================================================== */
/* 12. draining on the runtime's stop                                                    */
/* ===================================================================================== */

/* trap_b: an echo that traps exits and, on TR_MSG_EXIT, writes "bye\n" and ends. */
static int trap_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    conn_init(self, state, arg, len);
    return tr_trap_exits(self, 1);
}

static int trap_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    conn *x = state;
    srv *c = x->c;
    if (msg->type == TR_MSG_EXIT) {
        atomic_fetch_add(&c->exits_seen, 1);
        int rc = tr_sock_write(self, x->s, "bye\n", 4);
        if (rc != 0)
            note_bad(c, "the final write: %s", tr_err_name(rc));
        return tr_exit(self, TR_EXIT_NORMAL);
    }
    return echo_receive(self, state, msg);
}

static const tr_behavior trap_b = {.name = "trap", .state_size = sizeof(conn),
                                   .init = trap_init, .receive = trap_receive,
                                   .terminate = conn_terminate};

/*
 * Proves graceful draining: on tr_runtime_stop a connection actor that
 * traps exits writes a final message and ends; the client receives it,
 * then the end of stream; the listener's port refuses connections from
 * then on (its owner stops accepting when its exit begins, before its
 * children are stopped), and after the stop too.
 */
static void test_drain_on_stop(void **state)
{
    (void)state;
    srv *c = srv_new("127.0.0.1:0", &trap_b);
    tr_runtime *rt = tr_test_runtime(1, 0);
    start_listener(rt, c, TR_LOOP(0));
    int fd = cl_open(c->addr);
    conn_pid(c, 0);
    cl_echo_check(fd, 10, 0);
    assert_int_equal(tr_runtime_stop(rt), 0);
    char b[8] = {0};
    assert_int_equal(cl_recv_all(fd, b, 4), 4);
    assert_memory_equal(b, "bye\n", 4);
    /* The listener's owner stopped accepting when its exit began, before
     * its children were stopped: its port refuses now. */
    int f1 = cl_try(c->addr, 0);
    if (f1 >= 0)
        close(f1);
    assert_int_equal(f1, -ECONNREFUSED);
    assert_int_equal(cl_wait_end(fd, NULL), 0);
    close(fd);
    assert_int_equal(atomic_load(&c->exits_seen), 1);
    assert_int_equal(tr_runtime_wait(rt), 0);
    int f2 = cl_try(c->addr, 0);
    if (f2 >= 0)
        close(f2);
    assert_int_equal(f2, -ECONNREFUSED);
    ASSERT_NO_BAD(c);
    free_rt(rt);
    free(c);
}

/* noticer_b: owns a listener, monitors a child that ends, and calls an
 * actor that never answers: its DOWN and its TR_MSG_CALL_TIMEOUT are
 * runtime notices (reserved types) that must reach the handler. */
static _Atomic int notice_down, notice_timeout, notice_listen;

static int quitter_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    (void)msg;
    return tr_exit(self, TR_EXIT_NORMAL);
}

static const tr_behavior quitter_b = {.name = "quitter", .receive = quitter_receive};
static const tr_behavior mute_b = {.name = "mute", .receive = tr_test_ignore};

static int noticer_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    tr_sock *l = state;
    atomic_store(&notice_listen, tr_listen(self, "127.0.0.1:0", NULL, l) == 0 ? 1 : -1);
    tr_pid child, mute;
    tr_ref ref, call;
    TR_CHECK_EQ(tr_spawn_monitor(self, &quitter_b, NULL, &child, &ref), 0);
    TR_CHECK_EQ(tr_send(self, child, 1, NULL, 0), 0);
    TR_CHECK_EQ(tr_spawn(self, &mute_b, NULL, &mute), 0);
    TR_CHECK_EQ(tr_call(self, mute, 1, NULL, 0, 50, &call), 0);
    return 0;
}

static int noticer_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)self;
    (void)state;
    if (msg->type == TR_MSG_DOWN)
        atomic_fetch_add(&notice_down, 1);
    if (msg->type == TR_MSG_CALL_TIMEOUT)
        atomic_fetch_add(&notice_timeout, 1);
    return 0;
}

static const tr_behavior noticer_b = {.name = "noticer", .state_size = sizeof(tr_sock),
                                      .init = noticer_init, .receive = noticer_receive};

/*
 * Proves: an actor that owns a socket still receives the runtime's other
 * notices (reserved message types): a monitor's TR_MSG_DOWN and a call's
 * TR_MSG_CALL_TIMEOUT. (The sockets' hook into dispatch must pass on
 * what is not a socket's.)
 */
static void test_owner_gets_other_notices(void **state)
{
    (void)state;
    atomic_store(&notice_down, 0);
    atomic_store(&notice_timeout, 0);
    atomic_store(&notice_listen, 0);
    tr_runtime *rt = tr_test_runtime(1, 0);
    tr_test_spawn(rt, &noticer_b, TR_LOOP(0), NULL, 0);
    TR_WAIT_UNTIL(atomic_load(&notice_listen) != 0);
    assert_int_equal(atomic_load(&notice_listen), 1);
    /* both come within milliseconds; 10 s of patience */
    uint64_t end = tr_test_wall_ns() + 10000 * MS;
    while (tr_test_wall_ns() < end &&
           (atomic_load(&notice_down) == 0 || atomic_load(&notice_timeout) == 0))
        sched_yield();
    int down = atomic_load(&notice_down), timeout = atomic_load(&notice_timeout);
    free_rt(rt);
    if (down != 1 || timeout != 1)
        fail_msg("a socket owner received %d TR_MSG_DOWN (want 1) and %d "
                 "TR_MSG_CALL_TIMEOUT (want 1)", down, timeout);
}

/* ===================================================================================== */
/* shutdown, close and linger                                                            */
/* ===================================================================================== */

/*
 * Proves half-closes both ways: tr_sock_shutdown sends what was queued,
 * then the peer reads its end of stream while reading goes on (the peer's
 * later bytes arrive), and a write after it is TR_ECLOSED; a peer's end of
 * stream (TR_MSG_SOCK_EOF) leaves the socket open for the owner's writes.
 */
static void test_half_close(void **state)
{
    (void)state;
    srv *c = srv_new("127.0.0.1:0", &sink_b);
    c->start_read = TR_SOCK_CONTINUOUS;
    tr_runtime *rt = tr_test_runtime(1, 0);
    start_listener(rt, c, TR_LOOP(0));

    int fd = cl_open(c->addr);
    tr_pid p = conn_pid(c, 0);
    assert_int_equal(ask_rc(rt, p, CMD_WRITE, "hello", 5), 0);
    assert_int_equal(ask_rc(rt, p, CMD_SHUTDOWN, NULL, 0), 0);
    char b[8] = {0};
    assert_int_equal(cl_recv_all(fd, b, 5), 5);
    assert_memory_equal(b, "hello", 5);
    assert_int_equal(cl_wait_end(fd, NULL), 0);
    uint8_t d[1000];
    fill_pat(d, sizeof d, 0);
    cl_send_all(fd, d, sizeof d);
    TR_WAIT_UNTIL(atomic_load(&c->data_bytes) == sizeof d);
    assert_int_equal(ask_rc(rt, p, CMD_WRITE, "more", 4), TR_ECLOSED);
    close(fd);

    fd = cl_open(c->addr);
    p = conn_pid(c, 1);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    TR_WAIT_UNTIL(atomic_load(&c->eofs) == 2); /* the first's, and this one's */
    assert_int_equal(ask_rc(rt, p, CMD_WRITE, "late", 4), 0);
    assert_int_equal(cl_recv_all(fd, b, 4), 4);
    assert_memory_equal(b, "late", 4);
    close(fd);
    ASSERT_NO_BAD(c);
    free_rt(rt);
    free(c);
}

/* closer_b: at its first data (or on CMD_CLOSE_BIG), writes
 * c->close_bytes and closes at once; counts every socket message that
 * still reaches it. Reads from GIVEN on, except with c->start_read set
 * (to anything): then it never reads. */
static void closer_close(tr_actor *self, conn *x)
{
    srv *c = x->c;
    uint8_t *b = malloc(CHUNK);
    TR_CHECK(b != NULL);
    for (size_t off = 0; off < c->close_bytes; off += CHUNK) {
        fill_pat(b, CHUNK, off);
        int rc = tr_sock_write(self, x->s, b, CHUNK);
        if (rc != 0) {
            note_bad(c, "closer's write at %zu: %s", off, tr_err_name(rc));
            break;
        }
    }
    free(b);
    int rc = tr_sock_close(self, x->s);
    if (rc != 0)
        note_bad(c, "close: %s", tr_err_name(rc));
    x->nanswered = 1;
    atomic_fetch_add(&c->closes, 1);
}

static int closer_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    conn *x = state;
    srv *c = x->c;
    int rc;
    if (msg->type == TR_MSG_SOCK_GIVEN) {
        conn_given(self, x, msg);
        return c->start_read ? 0 : tr_sock_read(self, x->s, TR_SOCK_CONTINUOUS);
    }
    if (msg->type == CMD_CLOSE_BIG) {
        closer_close(self, x);
        return reply_rc(self, msg, 0);
    }
    if (msg->type >= TR_MSG_SOCK_DATA && msg->type <= TR_MSG_SOCK_PASSIVE) {
        if (x->nanswered) {
            atomic_fetch_add(&c->after_close, 1);
            return 0;
        }
        if (msg->type == TR_MSG_SOCK_DATA)
            closer_close(self, x);
        return 0;
    }
    if (conn_common(self, x, msg, &rc))
        return rc;
    return 0;
}

static const tr_behavior closer_b = {.name = "closer", .state_size = sizeof(conn),
                                     .init = conn_init, .receive = closer_receive,
                                     .terminate = conn_terminate};

/*
 * Proves tr_sock_close's linger: 8 MiB written to a slow reader (small
 * receive buffer) and the socket closed at once — most of it still in
 * troupe's queue — all go out, then the connection ends (EOF), while the
 * owner lives on and sees nothing more of the socket; and with a peer that
 * does not read, after linger_ms (200) the connection is reset
 * (ECONNRESET before all the bytes came).
 */
static void test_close_lingers(void **state)
{
    (void)state;
    const size_t total = 8 * MiB;
    tr_runtime *rt = tr_test_runtime(1, 0);
    srv *c = srv_new("127.0.0.1:0", &closer_b);
    c->close_bytes = total;
    c->lopts.conn.write_max = 16 * MiB;
    start_listener(rt, c, TR_LOOP(0));
    int fd = cl_open_rcvbuf(c->addr, 16 * 1024);
    tr_pid p = conn_pid(c, 0);
    cl_send_all(fd, "x", 1); /* read by the closer: nothing unread at its close */
    uint8_t *b = malloc(total);
    assert_non_null(b);
    TR_WAIT_UNTIL(atomic_load(&c->closes) == 1);
    errno = 0;
    size_t got = cl_recv_all(fd, b, total);
    if (got != total)
        fail_msg("after tr_sock_close the peer got %zu of %zu bytes, then %s", got, total,
                 errno ? strerror(errno) : "EOF");
    assert_true(check_pat(b, total, 0) < 0);
    assert_int_equal(cl_wait_end(fd, NULL), 0);
    close(fd);
    tr_sock_info in;
    assert_int_equal(ask_info(rt, p, &in), TR_ENOTSOCK); /* the owner lives, the socket not */
    assert_int_equal(atomic_load(&c->after_close), 0);

    srv *c2 = srv_new("127.0.0.1:0", &closer_b);
    c2->close_bytes = total;
    c2->lopts.conn.write_max = 16 * MiB;
    c2->lopts.conn.linger_ms = 200;
    start_listener(rt, c2, TR_LOOP(0));
    fd = cl_open_rcvbuf(c2->addr, 16 * 1024);
    cl_send_all(fd, "x", 1);
    TR_WAIT_UNTIL(atomic_load(&c2->closes) == 1);
    pause_ms(700); /* linger_ms passes while the client does not read */
    errno = 0;
    got = cl_recv_all(fd, b, total);
    int end = errno == ECONNRESET ? -ECONNRESET : cl_wait_end(fd, NULL);
    print_message("linger 200 ms: the peer got %zu of %zu bytes, then %s\n", got, total,
                  end == 0 ? "EOF" : strerror(-end));
    assert_true(got < total);
    assert_true(check_pat(b, got, 0) < 0);
    assert_int_equal(end, -ECONNRESET);
    close(fd);
    free(b);
    ASSERT_NO_BAD(c);
    ASSERT_NO_BAD(c2);
    free_rt(rt);
    free(c);
    free(c2);
}

/*
 * Proves tr_sock_close with input the owner never read: data the peer
 * sent waits unread in the kernel (the owner never started reading) when
 * the owner writes 8 MiB and closes; the 8 MiB still all reach the peer,
 * then its end. (A close(2) with unread input sends a reset, which drops
 * what the kernel had not sent yet: queued writes must not be lost that
 * way.) A first part reads the first piece and closes with the rest
 * unread or queued for the owner: no message of the socket reaches the
 * owner after its close, not even one already queued.
 */
static void test_close_with_unread_input(void **state)
{
    (void)state;
    const size_t total = 8 * MiB;
    tr_runtime *rt = tr_test_runtime(1, 0);
    uint8_t piece[4096];
    memset(piece, 'q', sizeof piece);
    int one = 1;

    srv *c0 = srv_new("127.0.0.1:0", &closer_b);
    c0->close_bytes = 64 * KiB;
    start_listener(rt, c0, TR_LOOP(0));
    int f0 = cl_open(c0->addr);
    setsockopt(f0, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    tr_pid p0 = conn_pid(c0, 0);
    for (int i = 0; i < 16; i++) /* the close may reset the connection midway */
        if (send(f0, piece, sizeof piece, MSG_NOSIGNAL) < 0)
            break;
    TR_WAIT_UNTIL(atomic_load(&c0->closes) == 1);
    tr_sock_info in;
    assert_int_equal(ask_info(rt, p0, &in), TR_ENOTSOCK); /* its mailbox is handled */
    assert_int_equal(atomic_load(&c0->after_close), 0);
    close(f0);
    ASSERT_NO_BAD(c0);

    srv *c = srv_new("127.0.0.1:0", &closer_b);
    c->close_bytes = total;
    c->start_read = 1; /* never reads */
    c->lopts.conn.write_max = 16 * MiB;
    start_listener(rt, c, TR_LOOP(0));
    int fd = cl_open_rcvbuf(c->addr, 16 * 1024);
    tr_pid p = conn_pid(c, 0);
    for (int i = 0; i < 16; i++) /* on loopback, in the server's kernel once sent */
        cl_send_all(fd, piece, sizeof piece);
    assert_int_equal(ask_rc(rt, p, CMD_CLOSE_BIG, NULL, 0), 0);
    TR_WAIT_UNTIL(atomic_load(&c->closes) == 1);
    uint8_t *b = malloc(total);
    assert_non_null(b);
    errno = 0;
    size_t got = cl_recv_all(fd, b, total);
    int err = errno;
    assert_true(check_pat(b, got, 0) < 0);
    free(b);
    assert_int_equal(ask_info(rt, p, &in), TR_ENOTSOCK);
    assert_int_equal(atomic_load(&c->after_close), 0);
    if (got != total)
        fail_msg("after tr_sock_close with unread input the peer got %zu of %zu bytes, "
                 "then %s", got, total, err ? strerror(err) : "EOF");
    assert_int_equal(cl_wait_end(fd, NULL), 0);
    close(fd);
    ASSERT_NO_BAD(c0);
    ASSERT_NO_BAD(c);
    free_rt(rt);
    free(c);
    free(c0);
}

typedef struct slow_reader {
    int fd;
    _Atomic int go;
    size_t got;
    int end;    /* 0: EOF, else -errno */
    int broken; /* a byte off the pattern */
} slow_reader;

static void *slow_reader_main(void *arg)
{
    slow_reader *r = arg;
    while (!atomic_load(&r->go))
        sched_yield();
    uint8_t b[16384];
    for (;;) {
        ssize_t n = recv(r->fd, b, sizeof b, 0);
        if (n == 0) {
            r->end = 0;
            break;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r->end = errno == EWOULDBLOCK ? -EAGAIN : -errno;
            break;
        }
        if (check_pat(b, (size_t)n, r->got) >= 0)
            r->broken = 1;
        r->got += (size_t)n;
    }
    return NULL;
}

/*
 * Proves that a finished runtime waits for its lingering sockets: 4 MiB
 * queued for a peer that starts reading only once the stop has begun
 * still all arrive, then the end of stream (not a reset), and
 * tr_runtime_free returns only after they went to the kernel.
 */
static void test_stop_waits_for_queued_writes(void **state)
{
    (void)state;
    srv *c = srv_new("127.0.0.1:0", &sink_b); /* never reads */
    c->lopts.conn.write_max = 16 * MiB;
    c->lopts.conn.linger_ms = 60000; /* a loaded machine's reader is slow */
    tr_runtime *rt = tr_test_runtime(1, 0);
    start_listener(rt, c, TR_LOOP(0));
    slow_reader r;
    memset(&r, 0, sizeof r);
    r.fd = cl_open_rcvbuf(c->addr, 16 * 1024);
    tr_pid p = conn_pid(c, 0);
    fill_res fr;
    size_t want = 4 * MiB;
    tr_test_ask(rt, p, CMD_FILL, &want, sizeof want, &fr, sizeof fr);
    assert_int_equal(fr.rc, 0);
    assert_true(fr.queued >= want);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, slow_reader_main, &r), 0);
    assert_int_equal(tr_runtime_stop(rt), 0);
    atomic_store(&r.go, 1);
    free_rt(rt); /* returns once the queue went out (or linger_ms passed) */
    pthread_join(t, NULL);
    close(r.fd);
    print_message("after the stop the peer got %zu of %llu bytes, then %s\n", r.got,
                  (unsigned long long)fr.written, r.end == 0 ? "EOF" : strerror(-r.end));
    assert_int_equal(r.got, fr.written);
    assert_int_equal(r.broken, 0);
    assert_int_equal(r.end, 0);
    ASSERT_NO_BAD(c);
    free(c);
}

/*
 * Proves a clean teardown with sockets in every state: echo connections on
 * two loops whose clients send and never read (half of them with 200 KiB
 * queued past the kernel's buffers, throttled, reads paused), connects
 * waiting on a full backlog with writes queued, and the runtime freed
 * in the middle of it: tr_runtime_free waits linger_ms (200) for the
 * queues that cannot drain, then returns (well within 10 s), and ASan /
 * valgrind find nothing left or touched after free.
 */
static void test_teardown_busy(void **state)
{
    (void)state;
    enum { NFD = 16 };
    tr_runtime *rt = tr_test_runtime(2, TR_TEST_QUIET);
    srv *c = srv_new("127.0.0.1:0", &echo_b);
    c->conn_loop = TR_LOOP_ROUND_ROBIN;
    c->lopts.conn.linger_ms = 200;
    start_listener(rt, c, TR_LOOP(0));
    int fds[NFD];
    uint8_t *b = calloc(1, 256 * KiB);
    assert_non_null(b);
    for (int i = 0; i < NFD; i++) {
        fds[i] = cl_open_rcvbuf(c->addr, 16 * 1024);
        size_t sent = 0;
        while (sent < 256 * KiB) {
            ssize_t w = send(fds[i], b + sent, 256 * KiB - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w <= 0)
                break; /* the server pushes back already */
            sent += (size_t)w;
        }
    }
    free(b);
    TR_WAIT_UNTIL(atomic_load(&c->conns) == NFD);
    TR_WAIT_UNTIL(atomic_load(&c->data_bytes) >= NFD * 64 * KiB);
    /* every other connection with 200 KiB queued past what the kernel took */
    for (int i = 0; i < NFD; i += 2) {
        fill_res fr;
        size_t want = 200 * KiB;
        tr_test_ask(rt, conn_pid(c, i), CMD_FILL, &want, sizeof want, &fr, sizeof fr);
        assert_int_equal(fr.rc, 0);
        assert_true(fr.queued >= want);
    }

    full_backlog fb;
    full_backlog_open(&fb);
    const char *addr = fb.addr;
    srv *k = srv_new("", NULL); /* the connecting clients' report */
    for (int i = 0; i < 4; i++)
        spawn_client_on(rt, k, addr, 30000, 100000, TR_LOOP(i % 2));

    uint64_t t0 = tr_test_wall_ns();
    free_rt(rt);
    uint64_t took = tr_test_wall_ns() - t0;
    print_message("tr_runtime_free with busy sockets took %llu ms\n",
                  (unsigned long long)(took / MS));
    /* the queued writes could not go out: the loops waited linger_ms for them */
    assert_true(took + CLOCK_SLACK_NS >= 200 * MS);
    assert_true(took < 10000 * MS);
    for (int i = 0; i < NFD; i++)
        close(fds[i]);
    full_backlog_close(&fb);
    ASSERT_NO_BAD(c);
    free(c);
    free(k);
}

/* ===================================================================================== */
/* 13. hand-over to another loop                                                         */
/* ===================================================================================== */

/*
 * Proves: a connection accepted on loop 0 and given to an actor on loop 1
 * works there (echo, the actor on loop 1), and after it is given on to
 * loop 0 and back to loop 1; a give to another loop while
 * writes are pending is TR_EBUSY and leaves the socket with its owner; to
 * an actor of the same loop it is allowed, and the pending bytes still
 * reach the peer, in order.
 */
static void test_handover_other_loop(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, 0);
    srv *c = srv_new("127.0.0.1:0", &echo_b);
    c->conn_loop = TR_LOOP(1);
    start_listener(rt, c, TR_LOOP(0));
    int fd = cl_open(c->addr);
    cl_echo_check(fd, 200000, 5);
    assert_int_equal(atomic_load(&c->by_loop[1]), 1);
    assert_int_equal(atomic_load(&c->by_loop[0]), 0);
    /* and on, between exchanges: loop 1 -> loop 0 -> loop 1 */
    tr_pid holder = conn_pid(c, 0);
    for (int hop = 0; hop < 2; hop++) {
        int to_loop = hop == 0 ? 0 : 1;
        tr_pid next = tr_test_spawn(rt, &echo_b, TR_LOOP(to_loop), &c, sizeof c);
        assert_int_equal(ask_rc(rt, holder, CMD_GIVE, &next, sizeof next), 0);
        assert_int_equal(conn_pid(c, hop + 1), next);
        assert_int_equal(atomic_load(&c->by_loop[to_loop]), to_loop == 0 ? 1 : 2);
        cl_echo_check(fd, 70001, (uint64_t)hop);
        holder = next;
    }
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    assert_int_equal(cl_wait_end(fd, NULL), 0);
    close(fd);

    /* writes pending: TR_EBUSY to another loop */
    srv *c2 = srv_new("127.0.0.1:0", &sink_b);
    c2->conn_loop = TR_LOOP(0);
    start_listener(rt, c2, TR_LOOP(0));
    fd = cl_open_rcvbuf(c2->addr, 16 * 1024);
    tr_pid g = conn_pid(c2, 0);
    fill_res fr;
    size_t want = 200 * KiB; /* more than the kernel could take meanwhile */
    tr_test_ask(rt, g, CMD_FILL, &want, sizeof want, &fr, sizeof fr);
    assert_int_equal(fr.rc, 0);
    assert_true(fr.queued >= want);
    tr_pid t1 = tr_test_spawn(rt, &echo_b, TR_LOOP(1), &c2, sizeof c2);
    assert_int_equal(ask_rc(rt, g, CMD_GIVE, &t1, sizeof t1), TR_EBUSY);
    tr_sock_info in;
    assert_int_equal(ask_info(rt, g, &in), 0); /* still g's */
    assert_true(in.write_queued > 0);
    /* the same loop: allowed with writes pending */
    tr_pid t0 = tr_test_spawn(rt, &echo_b, TR_LOOP(0), &c2, sizeof c2);
    assert_int_equal(ask_rc(rt, g, CMD_GIVE, &t0, sizeof t0), 0);
    TR_WAIT_UNTIL(atomic_load(&c2->conns) == 2);
    assert_int_equal(atomic_load(&c2->conn[1]), t0);
    int rc = 0;
    size_t n = tr_test_ask_var(rt, g, CMD_INFO, NULL, 0, &rc, sizeof rc);
    assert_int_equal(n, sizeof rc);
    assert_int_equal(rc, TR_ENOTSOCK); /* g no longer owns it */
    uint8_t *b = malloc(fr.written);
    assert_non_null(b);
    assert_int_equal(cl_recv_all(fd, b, fr.written), fr.written);
    assert_true(check_pat(b, fr.written, 0) < 0);
    free(b);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    assert_int_equal(cl_wait_end(fd, NULL), 0); /* t0 (echo) ends at EOF */
    close(fd);
    ASSERT_NO_BAD(c);
    ASSERT_NO_BAD(c2);
    free_rt(rt);
    free(c);
    free(c2);
}

/* ===================================================================================== */
/* 14. framing                                                                           */
/* ===================================================================================== */

/* frame_b: sets c's framing on GIVEN, reads, records every frame. */
static int frame_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    conn *x = state;
    srv *c = x->c;
    int rc;
    switch (msg->type) {
    case TR_MSG_SOCK_GIVEN:
        conn_given(self, x, msg);
        if (c->keep_mode)
            return 0; /* reads as the giver set it */
        rc = tr_sock_frame(self, x->s, c->frame_max, c->dlen ? c->delim : NULL, c->dlen);
        if (rc != 0)
            note_bad(c, "tr_sock_frame: %s", tr_err_name(rc));
        return tr_sock_read(self, x->s, c->start_read ? c->start_read : TR_SOCK_CONTINUOUS);
    case TR_MSG_SOCK_PASSIVE:
        atomic_fetch_add(&c->passive, 1);
        return 0;
    case TR_MSG_SOCK_DATA: {
        int k = atomic_load(&c->nframes);
        if (k < 32)
            c->flen[k] = msg->len;
        if (c->fused + msg->len <= sizeof c->fbuf) {
            memcpy(c->fbuf + c->fused, msg->data, msg->len);
            c->fused += msg->len;
        }
        atomic_store(&c->nframes, k + 1);
        return 0;
    }
    case TR_MSG_SOCK_EOF:
        atomic_fetch_add(&c->eofs, 1);
        return 0;
    }
    if (conn_common(self, x, msg, &rc))
        return rc;
    return 0;
}

static const tr_behavior frame_b = {.name = "frame", .state_size = sizeof(conn),
                                    .init = conn_init, .receive = frame_receive,
                                    .terminate = conn_terminate};


/* Sends `s` in pieces of the given sizes, a little apart (so that they are
 * likely separate reads; the checks do not depend on it). */
static void send_pieces(int fd, const char *s, const size_t *pieces, int n)
{
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        cl_send_all(fd, s + off, pieces[i]);
        off += pieces[i];
        pause_ms(10);
    }
}

/*
 * Proves framing: exactly-N frames cut from bytes sent in odd pieces (and
 * the incomplete rest delivered at the end of stream, before EOF); "\r\n"
 * lines of at most 64 bytes cut across packet boundaries (a delimiter
 * split between packets too, a line of exactly 64 bytes accepted), and 64
 * bytes without a delimiter close the socket with TR_ELIMIT; a new setting
 * cuts the bytes already gathered; "the next 3 reads" with frames set
 * delivers 3 frames, then PASSIVE, the rest after.
 */
static void test_framing(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(1, 0);
    int one = 1;

    /* exactly 100 bytes */
    srv *c = srv_new("127.0.0.1:0", &frame_b);
    c->frame_max = 100;
    start_listener(rt, c, TR_LOOP(0));
    int fd = cl_open(c->addr);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    uint8_t data[350];
    fill_pat(data, sizeof data, 0);
    const size_t pieces[] = {7, 150, 43, 1, 99, 50};
    send_pieces(fd, (const char *)data, pieces, 6);
    TR_WAIT_UNTIL(atomic_load(&c->nframes) == 3);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    TR_WAIT_UNTIL(atomic_load(&c->eofs) == 1);
    assert_int_equal(atomic_load(&c->nframes), 4);
    assert_int_equal(c->flen[0], 100);
    assert_int_equal(c->flen[1], 100);
    assert_int_equal(c->flen[2], 100);
    assert_int_equal(c->flen[3], 50);
    assert_int_equal(c->fused, 350);
    assert_memory_equal(c->fbuf, data, 350);
    close(fd);

    /* "\r\n", at most 64 */
    srv *d = srv_new("127.0.0.1:0", &frame_b);
    d->frame_max = 64;
    memcpy(d->delim, "\r\n", 2);
    d->dlen = 2;
    start_listener(rt, d, TR_LOOP(0));
    fd = cl_open(d->addr);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char line62[63];
    memset(line62, 'L', 62);
    line62[62] = '\0';
    char text[256];
    snprintf(text, sizeof text, "hello\r\nworld\r\n%s\r\nx\r\n", line62);
    const size_t lp[] = {3, 4, 4, 3, 30, 30, 4, 3}; /* "hel|lo\r|\nwor|ld\r|\n..." */
    size_t sum = 0;
    for (int i = 0; i < 8; i++)
        sum += lp[i];
    assert_int_equal(sum, strlen(text));
    send_pieces(fd, text, lp, 8);
    TR_WAIT_UNTIL(atomic_load(&d->nframes) == 4);
    assert_int_equal(d->flen[0], 7);
    assert_int_equal(d->flen[1], 7);
    assert_int_equal(d->flen[2], 64);
    assert_int_equal(d->flen[3], 3);
    assert_memory_equal(d->fbuf, text, strlen(text));
    char over[64];
    memset(over, 'y', sizeof over);
    cl_send_all(fd, over, sizeof over);
    TR_WAIT_UNTIL(atomic_load(&d->closed) == 1);
    assert_int_equal(atomic_load(&d->closed_reason), TR_ELIMIT);
    print_message("frames delivered before TR_ELIMIT: %d (4 lines)\n",
                  atomic_load(&d->nframes));
    int e = cl_wait_end(fd, NULL);
    assert_true(e == 0 || e == -ECONNRESET);
    close(fd);
    /* A new setting cuts the bytes already gathered: 150 bytes under
     * "exactly 100" leave 50 gathered, with a '\n' at their 20th byte;
     * "\n" lines then give those 20 bytes, and the other 30 wait for
     * their line's end. */
    srv *g = srv_new("127.0.0.1:0", &frame_b);
    g->frame_max = 100;
    start_listener(rt, g, TR_LOOP(0));
    fd = cl_open(g->addr);
    tr_pid gp = conn_pid(g, 0);
    char hb[160];
    memset(hb, 'h', sizeof hb);
    hb[119] = '\n';
    cl_send_all(fd, hb, 150);
    TR_WAIT_UNTIL(atomic_load(&g->nframes) == 1);
    frame_req fr = {.max = 64, .delim = "\n", .dlen = 1};
    assert_int_equal(ask_rc(rt, gp, CMD_FRAME, &fr, sizeof fr), 0);
    TR_WAIT_UNTIL(atomic_load(&g->nframes) == 2);
    assert_int_equal(g->flen[0], 100);
    assert_int_equal(g->flen[1], 20);
    cl_send_all(fd, "tail\n", 5);
    TR_WAIT_UNTIL(atomic_load(&g->nframes) == 3);
    assert_int_equal(g->flen[2], 35);
    assert_memory_equal(g->fbuf, hb, 150);
    assert_memory_equal(g->fbuf + 150, "tail\n", 5);
    close(fd);
    ASSERT_NO_BAD(g);

    /* "the next 3" counts frames: 5 frames of 10 sent at once */
    srv *e3 = srv_new("127.0.0.1:0", &frame_b);
    e3->frame_max = 10;
    e3->start_read = 3;
    start_listener(rt, e3, TR_LOOP(0));
    fd = cl_open(e3->addr);
    tr_pid ep = conn_pid(e3, 0);
    fill_pat(data, 50, 0);
    cl_send_all(fd, data, 50);
    TR_WAIT_UNTIL(atomic_load(&e3->passive) == 1);
    assert_int_equal(atomic_load(&e3->nframes), 3);
    assert_int_equal(ask_read(rt, ep, TR_SOCK_CONTINUOUS), 0);
    TR_WAIT_UNTIL(atomic_load(&e3->nframes) == 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(e3->flen[i], 10);
    assert_memory_equal(e3->fbuf, data, 50);
    assert_int_equal(atomic_load(&e3->passive), 1);
    close(fd);

    ASSERT_NO_BAD(c);
    ASSERT_NO_BAD(d);
    ASSERT_NO_BAD(e3);
    free_rt(rt);
    free(c);
    free(d);
    free(e3);
    free(g);
}

/* heldgive_b: 1000-byte frames; at the first frame (others read and not
 * handled yet) a give is TR_EBUSY; at the tenth (all handled) it pauses
 * and gives to c->target, which works. */
static int heldgive_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    conn *x = state;
    srv *c = x->c;
    int rc;
    switch (msg->type) {
    case TR_MSG_SOCK_GIVEN:
        conn_given(self, x, msg);
        rc = tr_sock_frame(self, x->s, 1000, NULL, 0);
        if (rc != 0)
            note_bad(c, "frame: %s", tr_err_name(rc));
        return tr_sock_read(self, x->s, TR_SOCK_CONTINUOUS);
    case TR_MSG_SOCK_DATA: {
        tr_sock_info in;
        rc = tr_sock_info_get(self, x->s, &in);
        if (rc != 0)
            note_bad(c, "info: %s", tr_err_name(rc));
        x->nanswered++;
        if (x->nanswered == 1) {
            atomic_store(&c->held_first, (int)in.read_held);
            atomic_store(&c->give_busy_rc, tr_sock_give(self, x->s, atomic_load(&c->target)));
        } else if (x->nanswered == 10) {
            if (in.read_held != 0)
                note_bad(c, "read_held %zu at the last frame", in.read_held);
            rc = tr_sock_read(self, x->s, TR_SOCK_PAUSE);
            if (rc != 0)
                note_bad(c, "pause: %s", tr_err_name(rc));
            atomic_store(&c->give_ok_rc, tr_sock_give(self, x->s, atomic_load(&c->target)));
        }
        return 0;
    }
    }
    if (conn_common(self, x, msg, &rc))
        return rc;
    return 0;
}

static const tr_behavior heldgive_b = {.name = "heldgive", .state_size = sizeof(conn),
                                       .init = conn_init, .receive = heldgive_receive,
                                       .terminate = conn_terminate};

/*
 * Proves give's read rule: while read data waits for the owner (ten
 * 1000-byte frames from one read; at the first, nine wait) tr_sock_give
 * is TR_EBUSY; once they are handled and reading paused, it works.
 */
static void test_give_busy_with_unhandled_reads(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(1, 0);
    srv *c = srv_new("127.0.0.1:0", &heldgive_b);
    atomic_store(&c->give_busy_rc, 1);
    atomic_store(&c->give_ok_rc, 1);
    start_listener(rt, c, TR_LOOP(0));
    srv *t = srv_new("", &sink_b); /* the target reports here */
    atomic_store(&c->target, tr_test_spawn(rt, &sink_b, TR_LOOP(0), &t, sizeof t));
    int fd = cl_open(c->addr);
    conn_pid(c, 0);
    uint8_t data[10000];
    fill_pat(data, sizeof data, 0);
    cl_send_all(fd, data, sizeof data); /* one send: most likely one read */
    TR_WAIT_UNTIL(atomic_load(&c->give_ok_rc) != 1);
    int held = atomic_load(&c->held_first);
    print_message("at the first frame %d bytes waited for the owner\n", held);
    if (held > 0)
        assert_int_equal(atomic_load(&c->give_busy_rc), TR_EBUSY);
    else /* the kernel split the send: nothing waited, the rule was not tried */
        print_message("(the give at the first frame was not tested: %s)\n",
                      tr_err_name(atomic_load(&c->give_busy_rc)));
    assert_int_equal(atomic_load(&c->give_ok_rc), 0);
    TR_WAIT_UNTIL(atomic_load(&t->conns) == 1);
    close(fd);
    ASSERT_NO_BAD(c);
    ASSERT_NO_BAD(t);
    free_rt(rt);
    free(c);
    free(t);
}

/* setter_b: on GIVEN sets "\n" lines of at most c->frame_max and
 * continuous reads, then gives the socket at once to c->target. */
static int setter_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    conn *x = state;
    srv *c = x->c;
    int rc;
    if (msg->type == TR_MSG_SOCK_GIVEN) {
        conn_given(self, x, msg);
        rc = tr_sock_frame(self, x->s, c->frame_max, "\n", 1);
        if (rc == 0)
            rc = tr_sock_read(self, x->s, TR_SOCK_CONTINUOUS);
        if (rc == 0)
            rc = tr_sock_give(self, x->s, atomic_load(&c->target));
        atomic_store(&c->give_ok_rc, rc);
        return 0;
    }
    if (conn_common(self, x, msg, &rc))
        return rc;
    return 0;
}

static const tr_behavior setter_b = {.name = "setter", .state_size = sizeof(conn),
                                     .init = conn_init, .receive = setter_receive,
                                     .terminate = conn_terminate};

/*
 * Proves that a socket given to another loop keeps its read mode and its
 * framing ("Its read mode is as it was"): the receiver, which sets
 * nothing, gets "\n" lines as they come.
 */
static void test_give_keeps_read_mode(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(2, 0);
    srv *c = srv_new("127.0.0.1:0", &setter_b);
    c->frame_max = 64;
    atomic_store(&c->give_ok_rc, 1);
    start_listener(rt, c, TR_LOOP(0));
    srv *t = srv_new("", &frame_b);
    t->keep_mode = 1;
    atomic_store(&c->target, tr_test_spawn(rt, &frame_b, TR_LOOP(1), &t, sizeof t));
    int fd = cl_open(c->addr);
    TR_WAIT_UNTIL(atomic_load(&c->give_ok_rc) != 1);
    assert_int_equal(atomic_load(&c->give_ok_rc), 0);
    TR_WAIT_UNTIL(atomic_load(&t->conns) == 1);
    assert_int_equal(atomic_load(&t->by_loop[1]), 1);
    const char *text = "one\ntwo\nthree\n";
    cl_send_all(fd, text, strlen(text));
    TR_WAIT_UNTIL(atomic_load(&t->nframes) == 3);
    assert_int_equal(t->flen[0], 4);
    assert_int_equal(t->flen[1], 4);
    assert_int_equal(t->flen[2], 6);
    assert_memory_equal(t->fbuf, text, strlen(text));
    close(fd);
    ASSERT_NO_BAD(c);
    ASSERT_NO_BAD(t);
    free_rt(rt);
    free(c);
    free(t);
}

/* bigframe_b: exact frames of c->frame_max; checks each one's size,
 * pattern and (from TR_SOCK_KEEP_MIN on) that it is an owned buffer it
 * may keep. */
static int bigframe_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    conn *x = state;
    srv *c = x->c;
    int rc;
    switch (msg->type) {
    case TR_MSG_SOCK_GIVEN:
        conn_given(self, x, msg);
        rc = tr_sock_frame(self, x->s, c->frame_max, NULL, 0);
        if (rc != 0)
            note_bad(c, "frame: %s", tr_err_name(rc));
        return tr_sock_read(self, x->s, TR_SOCK_CONTINUOUS);
    case TR_MSG_SOCK_DATA: {
        if (msg->len != c->frame_max && !x->nanswered) {
            x->nanswered = 1; /* the last, short one: no more may come */
        } else if (msg->len != c->frame_max) {
            note_bad(c, "a second short frame (%u bytes)", (unsigned)msg->len);
        }
        void *k = NULL;
        if (msg->len >= TR_SOCK_KEEP_MIN) {
            if (!(msg->flags & TR_MSG_OWNED))
                note_bad(c, "a frame of %u bytes without TR_MSG_OWNED", (unsigned)msg->len);
            k = tr_msg_keep(self, msg);
        }
        const void *d = k ? k : msg->data;
        if (check_pat(d, msg->len, x->off) >= 0)
            note_bad(c, "frame at %llu breaks the pattern", (unsigned long long)x->off);
        free(k);
        x->off += msg->len;
        atomic_fetch_add(&c->data_bytes, msg->len);
        atomic_fetch_add(&c->data_msgs, 1);
        return 0;
    }
    case TR_MSG_SOCK_EOF:
        atomic_fetch_add(&c->eofs, 1);
        return 0;
    }
    if (conn_common(self, x, msg, &rc))
        return rc;
    return 0;
}

static const tr_behavior bigframe_b = {.name = "bigframe", .state_size = sizeof(conn),
                                       .init = conn_init, .receive = bigframe_receive,
                                       .terminate = conn_terminate};

/*
 * Proves framing at size and at the delimiter's edges: 1 MiB sent in odd
 * pieces under "exactly 100000 bytes" arrives as 10 whole frames, each an
 * owned buffer the handler may keep, and the 48576-byte rest at the end of
 * stream; frames as large as read_max (64 KiB) complete; an 8-byte delimiter ("--END--\n", the most allowed) sent one
 * byte at a time, so that every split of it between reads happens, cuts
 * exactly its lines.
 */
static void test_framing_large_and_split_delims(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(1, 0);
    srv *c = srv_new("127.0.0.1:0", &bigframe_b);
    c->frame_max = 100000;
    start_listener(rt, c, TR_LOOP(0));
    int fd = cl_open(c->addr);
    uint8_t *b = malloc(MiB);
    assert_non_null(b);
    fill_pat(b, MiB, 0);
    size_t off = 0, piece = 777;
    while (off < MiB) {
        size_t n = MiB - off < piece ? MiB - off : piece;
        cl_send_all(fd, b + off, n);
        off += n;
        piece = piece * 3 % 65521 + 1; /* odd sizes, 1 .. 64 KiB */
    }
    free(b);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    TR_WAIT_UNTIL(atomic_load(&c->eofs) == 1);
    assert_int_equal(atomic_load(&c->data_bytes), MiB);
    assert_int_equal(atomic_load(&c->data_msgs), 11);
    close(fd);
    ASSERT_NO_BAD(c);

    /* a frame as large as read_max (what is gathered counts against it) */
    srv *m = srv_new("127.0.0.1:0", &bigframe_b);
    m->frame_max = 64 * KiB;
    m->lopts.conn.read_max = 64 * KiB;
    start_listener(rt, m, TR_LOOP(0));
    fd = cl_open(m->addr);
    size_t mlen = 4 * 64 * KiB + 100;
    b = malloc(mlen);
    assert_non_null(b);
    fill_pat(b, mlen, 0);
    cl_send_all(fd, b, mlen);
    free(b);
    assert_int_equal(shutdown(fd, SHUT_WR), 0);
    TR_WAIT_UNTIL(atomic_load(&m->eofs) == 1);
    assert_int_equal(atomic_load(&m->data_bytes), mlen);
    assert_int_equal(atomic_load(&m->data_msgs), 5);
    close(fd);
    ASSERT_NO_BAD(m);

    srv *d = srv_new("127.0.0.1:0", &frame_b);
    d->frame_max = 64;
    memcpy(d->delim, "--END--\n", 8);
    d->dlen = 8;
    start_listener(rt, d, TR_LOOP(0));
    fd = cl_open(d->addr);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const char *text = "aaa--END--\n-b--END-\n--END--\n--END--\n";
    /* lines: "aaa--END--\n", "-b--END-\n--END--\n", "--END--\n" */
    for (size_t i = 0; i < strlen(text); i++) {
        cl_send_all(fd, text + i, 1);
        pause_ms(2);
    }
    TR_WAIT_UNTIL(atomic_load(&d->nframes) == 3);
    assert_int_equal(d->flen[0], 11);
    assert_int_equal(d->flen[1], 17);
    assert_int_equal(d->flen[2], 8);
    assert_memory_equal(d->fbuf, text, strlen(text));
    close(fd);
    ASSERT_NO_BAD(d);
    free_rt(rt);
    free(c);
    free(d);
    free(m);
}

/* ===================================================================================== */
/* 15. bad input                                                                         */
/* ===================================================================================== */

typedef struct probe_res {
    char what[160];
    int got, want, want2;
} probe_res;

static probe_res pres[256];
static int npres;
static tr_actor *probe_self; /* for the calls from the test's thread */
static _Atomic tr_sock probe_listener;
static _Atomic tr_sock other_sock; /* another actor's listener */
static tr_pid other_pid;          /* that actor */

static void probe_note(const char *what, int got, int want, int want2)
{
    if (npres >= (int)(sizeof pres / sizeof pres[0]))
        return;
    probe_res *r = &pres[npres++];
    snprintf(r->what, sizeof r->what, "%s", what);
    r->got = got;
    r->want = want;
    r->want2 = want2;
}

#define PROBE(what, expr, want) probe_note((what), (expr), (want), (want))
#define PROBE2(what, expr, want, want2) probe_note((what), (expr), (want), (want2))

static int other_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    tr_sock s = 0;
    int rc = tr_listen(self, "127.0.0.1:0", NULL, &s);
    atomic_store(&other_sock, rc == 0 ? s : (tr_sock)1);
    return 0;
}

static const tr_behavior other_b = {.name = "other", .init = other_init,
                                    .receive = tr_test_ignore};

static int probe_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)arg;
    (void)len;
    probe_self = self;
    tr_sock s = 0;
    int rc = tr_listen(self, "127.0.0.1:0", NULL, &s);
    atomic_store(&probe_listener, rc == 0 ? s : (tr_sock)1);
    return 0;
}

static void probe_all(tr_actor *self)
{
    tr_sock l = atomic_load(&probe_listener), s = 0, cs = 0;
    tr_sock other = atomic_load(&other_sock);
    char laddr[128] = "";
    char buf[128];
    char longpath[210];
    memcpy(longpath, "unix:/tmp/", 10);
    memset(longpath + 10, 'p', sizeof longpath - 11);
    longpath[sizeof longpath - 1] = '\0';

    PROBE("addr of the probe's listener", tr_sock_addr(self, l, 0, laddr, sizeof laddr), 0);

    /* tr_listen */
    PROBE("listen NULL addr", tr_listen(self, NULL, NULL, &s), TR_EINVAL);
    PROBE("listen NULL out", tr_listen(self, "127.0.0.1:0", NULL, NULL), TR_EINVAL);
    const char *bad[] = {"", "1.2.3.4", "300.1.1.1:80", "[::1", "[::1]", "unix:",
                         "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:x", ":",
                         "example.org:80", longpath};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, "listen \"%.60s\"", bad[i]);
        PROBE(buf, tr_listen(self, bad[i], NULL, &s), TR_EINVAL);
    }
    PROBE("listen twice on a used port", tr_listen(self, laddr, NULL, &s), TR_EADDRINUSE);
    tr_listen_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.reuseport = 1;
    PROBE("listen with reuseport on a port used without",
          tr_listen(self, laddr, &lo, &s), TR_EADDRINUSE);
    memset(&lo, 0, sizeof lo);
    lo.conn.write_high = 1000;
    lo.conn.write_low = 1000;
    PROBE("listen write_low == write_high", tr_listen(self, "127.0.0.1:0", &lo, &s), TR_EINVAL);
    memset(&lo, 0, sizeof lo);
    lo.conn.write_high = 100000;
    lo.conn.write_low = 1000;
    lo.conn.write_max = 5000;
    PROBE("listen write_max < write_high", tr_listen(self, "127.0.0.1:0", &lo, &s), TR_EINVAL);
    memset(&lo, 0, sizeof lo);
    lo.conn.idle_ms = -5;
    PROBE("listen idle_ms -5", tr_listen(self, "127.0.0.1:0", &lo, &s), TR_EINVAL);
    memset(&lo, 0, sizeof lo);
    lo.conn.linger_ms = -5;
    PROBE("listen linger_ms -5", tr_listen(self, "127.0.0.1:0", &lo, &s), TR_EINVAL);
    memset(&lo, 0, sizeof lo);
    lo.conn.sndbuf = UINT32_MAX;
    PROBE("listen sndbuf 4 GiB", tr_listen(self, "127.0.0.1:0", &lo, &s), TR_EINVAL);
    memset(&lo, 0, sizeof lo);
    lo.conn.rcvbuf = (uint32_t)INT32_MAX / 2 + 1;
    PROBE("listen rcvbuf 1 GiB", tr_listen(self, "127.0.0.1:0", &lo, &s), TR_EINVAL);

    /* tr_connect */
    PROBE("connect NULL addr", tr_connect(self, NULL, NULL, &s), TR_EINVAL);
    PROBE("connect NULL out", tr_connect(self, laddr, NULL, NULL), TR_EINVAL);
    const char *cbad[] = {"", "1.2.3.4", "[::1", "unix:", "127.0.0.1:65536", "127.0.0.1:x",
                          longpath};
    for (size_t i = 0; i < sizeof cbad / sizeof cbad[0]; i++) {
        snprintf(buf, sizeof buf, "connect \"%.60s\"", cbad[i]);
        PROBE(buf, tr_connect(self, cbad[i], NULL, &s), TR_EINVAL);
    }
    tr_connect_opts co;
    memset(&co, 0, sizeof co);
    co.timeout_ms = -5;
    PROBE("connect timeout_ms -5", tr_connect(self, laddr, &co, &s), TR_EINVAL);

    /* unknown handles */
    const tr_sock handles[] = {TR_SOCK_NONE, (tr_sock)0xdeadbeefcafeull, other};
    const char *hname[] = {"TR_SOCK_NONE", "garbage", "another actor's"};
    uint8_t x = 0;
    tr_iov iov = {&x, 1};
    tr_sock_info in;
    for (int i = 0; i < 3; i++) {
        tr_sock h = handles[i];
#define PH(call, expr)                                                         \
    do {                                                                       \
        snprintf(buf, sizeof buf, "%s on a %s socket", (call), hname[i]);      \
        PROBE(buf, (expr), TR_ENOTSOCK);                                       \
    } while (0)
        PH("read", tr_sock_read(self, h, TR_SOCK_CONTINUOUS));
        PH("frame", tr_sock_frame(self, h, 10, NULL, 0));
        PH("write", tr_sock_write(self, h, &x, 1));
        PH("writev", tr_sock_writev(self, h, &iov, 1));
        void *ob = malloc(8);
        int orc = tr_sock_write_owned(self, h, ob, 8, free);
        if (orc != 0)
            free(ob);
        PH("write_owned", orc);
        PH("shutdown", tr_sock_shutdown(self, h));
        PH("give", tr_sock_give(self, h, other_pid));
        PH("addr", tr_sock_addr(self, h, 0, buf + 64, 64));
        PH("info", tr_sock_info_get(self, h, &in));
        PH("close", tr_sock_close(self, h));
#undef PH
    }

    /* the addresses a listener takes besides numeric ones */
    const char *good[] = {"localhost:0", ":0", "*:0"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        tr_sock g = 0;
        snprintf(buf, sizeof buf, "listen \"%s\"", good[i]);
        int grc = tr_listen(self, good[i], NULL, &g);
        PROBE(buf, grc, 0);
        if (grc == 0)
            PROBE("close it", tr_sock_close(self, g), 0);
    }

    /* a closed handle is stale */
    tr_sock tmp = 0;
    PROBE("listen 127.0.0.1:0", tr_listen(self, "127.0.0.1:0", NULL, &tmp), 0);
    PROBE("close a listener", tr_sock_close(self, tmp), 0);
    PROBE("info of a closed socket", tr_sock_info_get(self, tmp, &in), TR_ENOTSOCK);
    PROBE("close twice", tr_sock_close(self, tmp), TR_ENOTSOCK);

    /* listeners take no reads and writes */
    PROBE("read on a listener", tr_sock_read(self, l, TR_SOCK_CONTINUOUS), TR_EINVAL);
    PROBE("write to a listener", tr_sock_write(self, l, &x, 1), TR_EINVAL);
    PROBE("writev to a listener", tr_sock_writev(self, l, &iov, 1), TR_EINVAL);
    void *ob = malloc(8);
    int orc = tr_sock_write_owned(self, l, ob, 8, free);
    if (orc != 0)
        free(ob);
    PROBE("write_owned to a listener", orc, TR_EINVAL);
    PROBE("shutdown a listener", tr_sock_shutdown(self, l), TR_EINVAL);
    PROBE("give a listener", tr_sock_give(self, l, other_pid), TR_EINVAL);
    PROBE("info of a listener", tr_sock_info_get(self, l, &in), 0);
    PROBE("info says listener", in.listener, 1);

    /* a connection (to the probe's own listener) */
    PROBE("connect to the probe's listener", tr_connect(self, laddr, NULL, &cs), 0);
    PROBE("read -2", tr_sock_read(self, cs, -2), TR_EINVAL);
    PROBE("read -100", tr_sock_read(self, cs, -100), TR_EINVAL);
    PROBE("write NULL data", tr_sock_write(self, cs, NULL, 5), TR_EINVAL);
    PROBE("zero-length write", tr_sock_write(self, cs, &x, 0), 0);
    PROBE("writev NULL iov", tr_sock_writev(self, cs, NULL, 1), TR_EINVAL);
    PROBE("write_owned NULL buf", tr_sock_write_owned(self, cs, NULL, 8, free), TR_EINVAL);
    PROBE("frame delimiter of 9 bytes", tr_sock_frame(self, cs, 64, "123456789", 9), TR_EINVAL);
    PROBE("frame NULL delimiter of 2", tr_sock_frame(self, cs, 64, NULL, 2), TR_EINVAL);
    PROBE("frame over read_max", tr_sock_frame(self, cs, 300 * KiB, NULL, 0), TR_EINVAL);
    PROBE("addr NULL buf", tr_sock_addr(self, l, 0, NULL, 64), TR_EINVAL);
    PROBE("addr buf too small", tr_sock_addr(self, l, 0, buf, 3), TR_EINVAL);
    PROBE("info NULL out", tr_sock_info_get(self, cs, NULL), TR_EINVAL);
    PROBE("give to self", tr_sock_give(self, cs, tr_self(self)), TR_EINVAL);
    PROBE2("give to TR_PID_NONE", tr_sock_give(self, cs, TR_PID_NONE), TR_ENOACTOR, TR_EINVAL);
    PROBE("shutdown", tr_sock_shutdown(self, cs), 0);
    PROBE("write after shutdown", tr_sock_write(self, cs, &x, 1), TR_ECLOSED);
    PROBE("writev after shutdown", tr_sock_writev(self, cs, &iov, 1), TR_ECLOSED);
    ob = malloc(8);
    orc = tr_sock_write_owned(self, cs, ob, 8, free);
    if (orc != 0)
        free(ob);
    PROBE("write_owned after shutdown", orc, TR_ECLOSED);
    PROBE("close the connection", tr_sock_close(self, cs), 0);
}

static _Atomic int probe_term_listen, probe_term_connect;

/* Its end: tr_listen and tr_connect are TR_ESTOPPED for an exiting actor. */
static void probe_terminate(tr_actor *self, void *state, const tr_exit_reason *reason)
{
    (void)state;
    (void)reason;
    tr_sock s = 0;
    atomic_store(&probe_term_listen, tr_listen(self, "127.0.0.1:0", NULL, &s));
    atomic_store(&probe_term_connect, tr_connect(self, "127.0.0.1:1", NULL, &s));
}

static int probe_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == CMD_PROBE) {
        probe_all(self);
        return tr_reply(self, msg, CMD_PROBE, NULL, 0);
    }
    return 0;
}

static const tr_behavior probe_b = {.name = "probe", .init = probe_init,
                                    .receive = probe_receive, .terminate = probe_terminate};

/*
 * Proves the contract on bad input: NULL arguments, malformed addresses
 * and options are TR_EINVAL; unknown, garbage, closed and other actors'
 * handles TR_ENOTSOCK; reads, writes, shutdown and give of a listener
 * TR_EINVAL; tr_sock_read(-2) TR_EINVAL; writes after shutdown TR_ECLOSED;
 * a used port TR_EADDRINUSE; calls from the test's thread TR_EWRONGTHREAD;
 * tr_listen and tr_connect of an exiting actor (its terminate)
 * TR_ESTOPPED; and every error code has a tr_strerror text.
 */
static void test_bad_input(void **state)
{
    (void)state;
    tr_runtime *rt = tr_test_runtime(1, 0);
    npres = 0;
    atomic_store(&other_sock, 0);
    atomic_store(&probe_listener, 0);
    other_pid = tr_test_spawn(rt, &other_b, TR_LOOP(0), NULL, 0);
    tr_pid p = tr_test_spawn(rt, &probe_b, TR_LOOP(0), NULL, 0);
    TR_WAIT_UNTIL(atomic_load(&other_sock) != 0 && atomic_load(&probe_listener) != 0);
    if (atomic_load(&other_sock) == 1 || atomic_load(&probe_listener) == 1)
        fail_msg("the probes could not listen on 127.0.0.1:0");
    tr_test_ask(rt, p, CMD_PROBE, NULL, 0, NULL, 0);
    int failed = 0;
    for (int i = 0; i < npres; i++) {
        probe_res *r = &pres[i];
        if (r->got != r->want && r->got != r->want2) {
            print_error("%s: %s (%d), want %s\n", r->what, tr_err_name(r->got), r->got,
                        tr_err_name(r->want));
            failed++;
        }
    }
    print_message("%d bad-input checks in the actor\n", npres);

    /* the test's thread is no actor's */
    tr_actor *me = probe_self;
    tr_sock l = atomic_load(&probe_listener), s = 0;
    char buf[64];
    tr_sock_info in;
    uint8_t x = 0;
    tr_iov iov = {&x, 1};
    struct {
        const char *what;
        int got;
    } wt[] = {
        {"listen", tr_listen(me, "127.0.0.1:0", NULL, &s)},
        {"connect", tr_connect(me, "127.0.0.1:1", NULL, &s)},
        {"read", tr_sock_read(me, l, TR_SOCK_PAUSE)},
        {"frame", tr_sock_frame(me, l, 10, NULL, 0)},
        {"write", tr_sock_write(me, l, &x, 1)},
        {"writev", tr_sock_writev(me, l, &iov, 1)},
        {"shutdown", tr_sock_shutdown(me, l)},
        {"give", tr_sock_give(me, l, p)},
        {"addr", tr_sock_addr(me, l, 0, buf, sizeof buf)},
        {"info", tr_sock_info_get(me, l, &in)},
        {"close", tr_sock_close(me, l)},
    };
    for (size_t i = 0; i < sizeof wt / sizeof wt[0]; i++)
        if (wt[i].got != TR_EWRONGTHREAD) {
            print_error("%s from the test's thread: %s, want TR_EWRONGTHREAD\n", wt[i].what,
                        tr_err_name(wt[i].got));
            failed++;
        }
    void *ob = malloc(8);
    int orc = tr_sock_write_owned(me, l, ob, 8, free);
    if (orc != 0)
        free(ob);
    if (orc != TR_EWRONGTHREAD) {
        print_error("write_owned from the test's thread: %s\n", tr_err_name(orc));
        failed++;
    }
    /* NULL self */
    if (tr_listen(NULL, "127.0.0.1:0", NULL, &s) != TR_EINVAL) {
        print_error("listen with NULL self: not TR_EINVAL\n");
        failed++;
    }
    if (tr_sock_write(NULL, l, &x, 1) != TR_EINVAL) {
        print_error("write with NULL self: not TR_EINVAL\n");
        failed++;
    }

    /* every code has a text and a name */
    for (int code = -1; code >= TR_ENOTSOCK; code--) {
        if (strcmp(tr_strerror(code), "unknown troupe error") == 0 ||
            strcmp(tr_err_name(code), "TR_E?") == 0) {
            print_error("error %d has no text or name\n", code);
            failed++;
        }
    }
    assert_string_equal(tr_err_name(TR_ENOTSOCK), "TR_ENOTSOCK");
    assert_string_equal(tr_err_name(TR_EADDRINUSE), "TR_EADDRINUSE");
    atomic_store(&probe_term_listen, 1);
    atomic_store(&probe_term_connect, 1);
    free_rt(rt);
    if (atomic_load(&probe_term_listen) != TR_ESTOPPED ||
        atomic_load(&probe_term_connect) != TR_ESTOPPED) {
        print_error("listen / connect in terminate: %s / %s, want TR_ESTOPPED\n",
                    tr_err_name(atomic_load(&probe_term_listen)),
                    tr_err_name(atomic_load(&probe_term_connect)));
        failed++;
    }
    if (failed)
        fail_msg("%d bad-input check(s) failed (listed above)", failed);
}

/* ===================================================================================== */
/* 16. zero-copy                                                                         */
/* ===================================================================================== */

/* zc_b: reads; keeps every buffer of at least TR_SOCK_KEEP_MIN bytes
 * (tr_msg_keep; freed with free() at its end), checks the pattern. */
static int zc_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    conn *x = state;
    srv *c = x->c;
    int rc;
    switch (msg->type) {
    case TR_MSG_SOCK_GIVEN:
        conn_given(self, x, msg);
        return tr_sock_read(self, x->s, TR_SOCK_CONTINUOUS);
    case TR_MSG_SOCK_DATA: {
        const void *d = msg->data;
        if (msg->len >= TR_SOCK_KEEP_MIN) {
            if (!(msg->flags & TR_MSG_OWNED))
                note_bad(c, "a read of %u bytes without TR_MSG_OWNED", (unsigned)msg->len);
            void *k = tr_msg_keep(self, msg);
            if (!k || k != msg->data)
                note_bad(c, "tr_msg_keep of a read of %u bytes: %p", (unsigned)msg->len, k);
            if (k) {
                if (tr_msg_keep(self, msg) != NULL)
                    note_bad(c, "tr_msg_keep twice");
                if (x->nkept < 64)
                    x->kept[x->nkept++] = k;
                else
                    free(k);
            }
            atomic_fetch_add(&c->big_msgs, 1);
        }
        if (check_pat(d, msg->len, x->off) >= 0)
            note_bad(c, "zero-copy read breaks the pattern at %llu",
                     (unsigned long long)x->off);
        x->off += msg->len;
        atomic_fetch_add(&c->data_bytes, msg->len);
        return 0;
    }
    case TR_MSG_SOCK_EOF:
        atomic_fetch_add(&c->eofs, 1);
        return 0;
    }
    if (conn_common(self, x, msg, &rc))
        return rc;
    return 0;
}

static const tr_behavior zc_b = {.name = "zc", .state_size = sizeof(conn),
                                 .init = conn_init, .receive = zc_receive,
                                 .terminate = conn_terminate};

/* ownconn_b: tr_connect to the address in its argument, an owned write
 * queued before CONNECTED; reports the status. */
static _Atomic int ownconn_status;

static int ownconn_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)state;
    (void)len;
    tr_sock s = 0;
    int rc = tr_connect(self, arg, NULL, &s);
    if (rc == 0) {
        void *b = malloc(50000);
        TR_CHECK(b != NULL);
        rc = tr_sock_write_owned(self, s, b, 50000, counting_free);
        if (rc != 0)
            free(b);
    }
    if (rc != 0)
        atomic_store(&ownconn_status, rc);
    return 0;
}

static int ownconn_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    (void)state;
    if (msg->type == TR_MSG_SOCK_CONNECTED) {
        int32_t st = 0;
        if (msg->len == sizeof st)
            memcpy(&st, msg->data, sizeof st);
        atomic_store(&ownconn_status, st);
        return tr_exit(self, TR_EXIT_NORMAL);
    }
    return 0;
}

static const tr_behavior ownconn_b = {.name = "ownconn", .init = ownconn_init,
                                      .receive = ownconn_receive};

/*
 * Proves zero-copy: reads of at least TR_SOCK_KEEP_MIN bytes arrive with
 * TR_MSG_OWNED and tr_msg_keep hands their buffer over (freed with free();
 * ASan checks it); tr_sock_write_owned's free_fn runs exactly once — after
 * the bytes are written, when a connect with it queued is refused, and,
 * for a buffer still queued (a peer that does not read), when the runtime
 * stops.
 */
static void test_zero_copy(void **state)
{
    (void)state;
    atomic_store(&zc_frees, 0);
    srv *c = srv_new("127.0.0.1:0", &zc_b);
    c->lopts.conn.linger_ms = 100;
    tr_runtime *rt = tr_test_runtime(1, 0);
    start_listener(rt, c, TR_LOOP(0));

    int fd = cl_open(c->addr);
    tr_pid p = conn_pid(c, 0);
    size_t len = 256 * KiB;
    uint8_t *b = malloc(len);
    assert_non_null(b);
    fill_pat(b, len, 0);
    cl_send_all(fd, b, len);
    TR_WAIT_UNTIL(atomic_load(&c->data_bytes) == len);
    print_message("zero-copy: %d of the reads were kept\n", atomic_load(&c->big_msgs));
    assert_true(atomic_load(&c->big_msgs) >= 1);
    ASSERT_NO_BAD(c);

    /* an owned write, freed once written */
    size_t olen = 100000;
    assert_int_equal(ask_rc(rt, p, CMD_OWNED, &olen, sizeof olen), 0);
    assert_int_equal(cl_recv_all(fd, b, olen), olen);
    assert_true(check_pat(b, olen, 0) < 0);
    TR_WAIT_UNTIL(atomic_load(&zc_frees) == 1);
    free(b);
    /* a zero-length owned write does nothing, but the buffer is the
     * runtime's then: freed once */
    olen = 0;
    int zrc = ask_rc(rt, p, CMD_OWNED, &olen, sizeof olen);
    int zfreed = 0;
    if (zrc == 0) {
        TR_WAIT_UNTIL(atomic_load(&zc_frees) == 2);
        zfreed = 1;
    } else {
        print_message("a zero-length owned write: %s\n", tr_err_name(zrc));
    }

    /* an owned write still queued when the runtime stops */
    int fd2 = cl_open_rcvbuf(c->addr, 16 * 1024);
    tr_pid p2 = conn_pid(c, 1);
    fill_res fr;
    size_t want = 200 * KiB; /* more than the kernel could take meanwhile */
    tr_test_ask(rt, p2, CMD_FILL, &want, sizeof want, &fr, sizeof fr);
    assert_int_equal(fr.rc, 0);
    assert_true(fr.queued >= want);
    olen = 64 * KiB;
    assert_int_equal(ask_rc(rt, p2, CMD_OWNED, &olen, sizeof olen), 0);
    tr_sock_info in;
    assert_int_equal(ask_info(rt, p2, &in), 0);
    assert_true(in.write_queued >= olen); /* it waits in the queue */
    assert_int_equal(atomic_load(&zc_frees), 1 + zfreed);

    /* an owned write queued before a connect that is refused: dropped, freed */
    int pfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    assert_int_equal(bind(pfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(pfd, (struct sockaddr *)&a, &al), 0);
    close(pfd); /* nothing listens there */
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)ntohs(a.sin_port));
    atomic_store(&ownconn_status, 1);
    tr_test_spawn(rt, &ownconn_b, TR_LOOP(0), addr, strlen(addr) + 1);
    TR_WAIT_UNTIL(atomic_load(&ownconn_status) != 1);
    assert_int_equal(atomic_load(&ownconn_status), TR_ECONNREFUSED);
    TR_WAIT_UNTIL(atomic_load(&zc_frees) == 2 + zfreed);

    free_rt(rt);
    assert_int_equal(atomic_load(&zc_frees), 3 + zfreed);
    close(fd2);
    close(fd);
    ASSERT_NO_BAD(c);
    free(c);
}

/* ===================================================================================== */

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    /* Two programs from this file: test_sock, the tests CI repeats under
     * the sanitizers, and test_sock_timed (TEST_SOCK_TIMED), the ones that
     * wait out real time with wide margins (an idle timeout, a linger, a
     * peer that must stay blocked), run once per build. */
#ifndef TEST_SOCK_TIMED
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo),
        cmocka_unit_test(test_many_conns_two_loops),
        cmocka_unit_test(test_clients),
        cmocka_unit_test(test_read_next_n),
        cmocka_unit_test(test_write_water_marks),
        cmocka_unit_test(test_fairness),
        cmocka_unit_test(test_owner_exit_closes),
        cmocka_unit_test(test_give_to_dying_actor),
        cmocka_unit_test(test_listener_close_keeps_conns),
        cmocka_unit_test(test_max_conns),
        cmocka_unit_test(test_unix),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_connect_failures),
        cmocka_unit_test(test_close_while_connecting),
        cmocka_unit_test(test_peer_reset),
        cmocka_unit_test(test_drain_on_stop),
        cmocka_unit_test(test_stop_waits_for_queued_writes),
        cmocka_unit_test(test_teardown_busy),
        cmocka_unit_test(test_owner_gets_other_notices),
        cmocka_unit_test(test_half_close),
        cmocka_unit_test(test_handover_other_loop),
        cmocka_unit_test(test_give_busy_with_unhandled_reads),
        cmocka_unit_test(test_give_keeps_read_mode),
        cmocka_unit_test(test_framing),
        cmocka_unit_test(test_framing_large_and_split_delims),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_zero_copy),
    };
#else
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_pause_pushes_back),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_idle_counts_writes),
        cmocka_unit_test(test_close_lingers),
        cmocka_unit_test(test_close_with_unread_input),
    };
#endif
    /* `test_sock NAME`: the tests whose name contains NAME (cmocka's
     * filter is a glob) */
    static char filter[256];
    if (argc > 1) {
        if (strchr(argv[1], '*') || strchr(argv[1], '?'))
            snprintf(filter, sizeof filter, "%s", argv[1]);
        else
            snprintf(filter, sizeof filter, "*%s*", argv[1]);
        cmocka_set_test_filter(filter);
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
