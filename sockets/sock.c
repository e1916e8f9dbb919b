/*
 * sock.c — stream sockets owned by actors (include/troupe.h, "Sockets";
 * docs/networking.md).
 *
 * Design notes
 * ------------
 * A socket is a libuv stream (uv_tcp_t or uv_pipe_t) on its owner's loop,
 * and an entry in that loop's socket table (struct socktab, the loop
 * extension of this subsystem), which names it with a tr_sock: loop,
 * generation and index, so that a stale handle is TR_ENOTSOCK and never
 * another socket. Everything that happens to it is a message to the owner,
 * posted from the loop's own thread with the socket's id as msg->ref.
 *
 * What an actor owns is an owned-resource kind (subsys.h): its sockets in
 * a list, listeners closed and reads stopped when its exit begins (a
 * draining acceptor accepts nothing more while its connections finish),
 * connections closed when it has ended. The kind claims the socket
 * message types, so that it sees each of them before the handler, even
 * for an actor that has never used a socket (a socket handed to it from
 * another loop arrives that way): there a message of a socket the actor
 * closed (or gave away) is dropped, read bytes stop counting against
 * read_max once handled, and a hand-over becomes TR_MSG_SOCK_GIVEN.
 *
 * Reads. libuv reads into the loop's one scratch buffer (64 KiB). A read
 * smaller than TR_SOCK_KEEP_MIN (32 KiB) is copied into a pooled message:
 * no malloc, the pools cache blocks. A larger one gives the message the
 * scratch buffer itself, shrunk to size (zero-copy: the handler may keep
 * it), and the loop takes a new one at the next read: a 64 KiB
 * allocation is worth saving a copy only when the read fills much of it
 * (at 4 KiB, a malloc'd buffer per read made glibc give back and take
 * again the top of its heap on every read: bench/echo's 4 KiB echoes ran
 * at half the rate). A frame (tr_sock_frame) of TR_SOCK_KEEP_MIN or more
 * is a malloc'd copy the handler may keep. A read asks for at most what both limits leave: read_max
 * minus what the owner has not handled yet, and the turn's read_budget
 * minus what was read this turn. A socket at its budget stops reading
 * until the loop's check phase (after this turn's I/O), so every other
 * ready socket of the loop is read first; at read_max it stops until the
 * owner has handled enough. Reading never buffers without bound: what the
 * owner does not take stays in the kernel, whose window pushes back.
 *
 * Writes. What the kernel takes at once (uv_try_write) costs no
 * allocation; the rest is copied (or, for an owned buffer, referenced)
 * into a request queued in order. The queued bytes drive the water marks.
 *
 * Lifetime. A socket object lives while its libuv handle is open or its id
 * is: a connection that fails closes its handle at once but keeps its id
 * until the owner has seen TR_MSG_SOCK_CLOSED (or closed it, or ended).
 * A connection closed with writes still queued lingers, handle open and id
 * gone, until they are out or linger_ms has passed.
 *
 * Hand-over to another loop: the descriptor is duplicated, the handle
 * closed here, and the duplicate travels in an owned message whose free
 * function closes it if the receiver never takes it (the receiver ended):
 * nothing leaks, and no socket is left without an owner.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/un.h>
#include <unistd.h>

#include "subsys.h"

/* A socket travelling to an actor of another loop (owned message). */
#define SOCK_HANDOFF 0xffff002fu
#define SOCK_TYPE_LO TR_MSG_SOCK_DATA
#define SOCK_TYPE_HI SOCK_HANDOFF

#define READ_CHUNK ((size_t)64 << 10) /* the scratch buffer: the most one read asks */

enum { K_CONN = 1, K_LISTEN };
enum { F_TCP = 1, F_UNIX };
enum { TM_NONE = 0, TM_CONNECT, TM_IDLE, TM_LINGER, TM_ACCEPT };

/* A listener's count of open connections, shared with them (a connection
 * given to another loop still counts). Atomic counts: the compiler's
 * atomics, which ThreadSanitizer sees (ck's it does not: the last
 * reference frees this on whichever loop drops it). */
typedef struct lshare {
    uint32_t refs;
    uint32_t conns;
    struct sock *listener; /* NULL once closed; listener's loop only */
    tr__loop *L;
} lshare;

typedef struct socktab socktab;

/* A socket's place in one of the three lists it may be on (below). */
typedef struct slink {
    struct sock *next, *prev;
} slink;

typedef struct sock {
    union {
        uv_handle_t h;
        uv_stream_t st;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } u;
    socktab *tab;
    tr_sock id;            /* 0 once released */
    tr_pid owner;
    tr_actor *owner_a;     /* its slot (slots are never freed) */
    struct slink by_owner;  /* the owner's sockets */
    struct slink in_loop;   /* every socket of the loop */
    struct slink in_wait;   /* waiting for the next turn's budget (blocked) */
    uint8_t kind, fam;
    uint8_t refs;          /* handle open + id held */
    uint8_t timer_mode;
    bool handle_init, connected, connecting, reading, eof, eof_pending, wshut, closing;
    bool dead, throttled, blocked, stopped, accept_paused, shut_pending, handle_closed;
    bool lingering;        /* counted in the loop's lingering */
    int read_n;
    tr_sock_opts o;
    size_t held, wq;
    uint64_t turn_iter;
    size_t turn_bytes;
    size_t fmax, gscan;    /* frame: 0 raw; exact n; or at most fmax with a delimiter */
    uint8_t dlen;
    char delim[8];
    char *g;               /* gathered bytes of a frame */
    size_t goff, glen, gcap;
    uint64_t bin, bout, last;
    uv_timer_t *timer;
    lshare *ls;
    uint32_t max_conns;    /* a listener's */
    tr_sock_opts conn_o;   /* a listener's: its connections' options */
    char *upath;           /* a Unix listener's path, removed at close */
    struct conn_req *creq; /* a connect in progress */
    struct wreq *pend, *pend_tail; /* writes made before the handle exists */
} sock;

struct socktab {
    tr__loop *L;
    tr__idtab ids; /* tr_sock (less its loop bits) -> sock */
    sock *all;
    sock *blocked;
    uv_check_t check;
    uint64_t iter;
    char *scratch;
    uint32_t nsocks;       /* socket objects alive: the table outlives them */
    bool destroying, check_closed;
    /* The runtime's metrics (NULL if the registry was full): sockets open,
     * bytes in and out, throttled events. Updated on this loop: no atomic
     * instruction but the gauge's. */
    tr_metric *m_open, *m_in, *m_out, *m_throttled;
};

/* The lists a socket is on, doubly linked through one of its slinks, named
 * by its offset: pushed at the head, removed from anywhere. */
#define BY_OWNER offsetof(sock, by_owner)
#define IN_LOOP offsetof(sock, in_loop)
#define IN_WAIT offsetof(sock, in_wait)
#define SLINK(s, off) ((slink *)((char *)(s) + (off)))

static void slist_push(sock **head, sock *s, size_t off)
{
    slink *l = SLINK(s, off);
    l->prev = NULL;
    l->next = *head;
    if (*head)
        SLINK(*head, off)->prev = s;
    *head = s;
}

static void slist_remove(sock **head, sock *s, size_t off)
{
    slink *l = SLINK(s, off);
    if (l->prev)
        SLINK(l->prev, off)->next = l->next;
    else if (*head == s)
        *head = l->next;
    if (l->next)
        SLINK(l->next, off)->prev = l->prev;
    l->next = l->prev = NULL;
}

typedef struct conn_req {
    sock *s;               /* NULL: the socket went away first */
    uv_getaddrinfo_t gai;
    uv_connect_t conn;
    bool resolving;
} conn_req;

typedef struct wreq {
    uv_write_t req;
    struct wreq *next; /* the pending list, before the handle exists */
    sock *s;
    size_t len;
    void *owned;
    tr_free_fn free_fn;
    char data[];
} wreq;

typedef struct handoff {
    int fd;
    uint8_t fam;
    bool eof, wshut;
    int read_n;
    tr_sock_opts o;
    size_t fmax;
    uint8_t dlen;
    char delim[8];
    uint64_t bin, bout;
    lshare *ls;
} handoff;

static void on_closed(uv_handle_t *h);
static void tab_free(socktab *t);
static void update_reading(sock *s);
static void cut_frames(sock *s);
static void sock_fail(sock *s, int code);
static void resume_accept(sock *l);

/* ---- errors -------------------------------------------------------------------- */

static int map_uv(int e)
{
    switch (e) {
    case 0:
        return 0;
    case UV_ECONNREFUSED:
        return TR_ECONNREFUSED;
    case UV_ECONNRESET:
    case UV_EPIPE:
    case UV_ECONNABORTED:
        return TR_ECONNRESET;
    case UV_ETIMEDOUT:
        return TR_ETIMEDOUT;
    case UV_EADDRINUSE:
        return TR_EADDRINUSE;
    case UV_EAI_NONAME:
    case UV_EAI_NODATA:
    case UV_EAI_FAIL:
    case UV_EAI_AGAIN:
    case UV_EAI_ADDRFAMILY:
        return TR_ENOHOST;
    case UV_ENOMEM:
    case UV_ENOBUFS:
    case UV_EAI_MEMORY:
        return TR_ENOMEM;
    case UV_ECANCELED:
        return TR_ECANCELED;
    default:
        return TR_ESYSTEM;
    }
}

/* ---- the loop's table ------------------------------------------------------------ */

static void tab_destroy(tr__loop *L, void *data);
static tr__loop_ext_kind tab_kind = {.name = "sockets", .destroy = tab_destroy};

static void on_check(uv_check_t *h);

static socktab *tab_of(tr__loop *L)
{
    void **p = tr__loop_ext(L, &tab_kind);
    if (!p)
        return NULL;
    if (*p)
        return *p;
    socktab *t = tr__calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->L = L;
    tr__idtab_init(&t->ids);
    static const tr_metric_desc descs[4] = {
        {.name = "troupe_sockets_open", .help = "Sockets open (listening, connecting, connected)",
         .type = TR_METRIC_GAUGE},
        {.name = "troupe_socket_received_bytes_total", .help = "Bytes read from sockets",
         .type = TR_METRIC_COUNTER},
        {.name = "troupe_socket_sent_bytes_total", .help = "Bytes written to sockets",
         .type = TR_METRIC_COUNTER},
        {.name = "troupe_socket_throttled_total",
         .help = "Times a socket's write queue passed write_high (TR_MSG_SOCK_THROTTLED)",
         .type = TR_METRIC_COUNTER}};
    tr_metric **ms[4] = {&t->m_open, &t->m_in, &t->m_out, &t->m_throttled};
    for (unsigned i = 0; i < 4; i++)
        if (tr__metric_register(L->rt, &descs[i], ms[i], true) != 0)
            *ms[i] = NULL;
    uv_check_init(&L->uv, &t->check);
    t->check.data = t;
    uv_check_start(&t->check, on_check);
    uv_unref((uv_handle_t *)&t->check);
    *p = t;
    return t;
}

/*
 * A tr_sock is the loop's idtab id (generation << 32 | index) with the
 * loop's number + 1 in bits 24..31 of the index word: an id names its loop,
 * so a socket of another loop (or of another actor) is TR_ENOTSOCK, never
 * a socket of this one. At most 2^24 sockets per loop.
 */
#define ID_LOOP_SHIFT 24
#define ID_LOOP_MASK ((uint64_t)0xff << ID_LOOP_SHIFT)

static tr_sock id_alloc(socktab *t, sock *s)
{
    if (!tr__idtab_reserve(&t->ids) ||
        (t->ids.free_head == TR__IDTAB_NONE && t->ids.n >= (1u << ID_LOOP_SHIFT)))
        return 0;
    return tr__idtab_add(&t->ids, s) | ((uint64_t)(t->L->index + 1) << ID_LOOP_SHIFT);
}

static void id_free(socktab *t, tr_sock id)
{
    tr__idtab_remove(&t->ids, id & ~ID_LOOP_MASK);
}

/* The socket `id` names on L, or NULL. */
static sock *id_find(tr__loop *L, tr_sock id)
{
    if (((id & ID_LOOP_MASK) >> ID_LOOP_SHIFT) != L->index + 1u || !tab_kind.slot)
        return NULL;
    socktab *t = L->ext[tab_kind.slot - 1];
    return t ? tr__idtab_find(&t->ids, id & ~ID_LOOP_MASK) : NULL;
}

/* ---- objects ------------------------------------------------------------------- */

static sock *sock_new(socktab *t, uint8_t kind, uint8_t fam)
{
    sock *s = tr__calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->tab = t;
    s->kind = kind;
    s->fam = fam;
    slist_push(&t->all, s, IN_LOOP);
    t->nsocks++;
    if (t->m_open)
        tr_metric_add(t->m_open, 1);
    tr__loop_io_use(t->L, 1); /* the loop watches its sockets while it spins */
    return s;
}

static void ls_unref(lshare *ls)
{
    if (ls && __atomic_fetch_sub(&ls->refs, 1, __ATOMIC_ACQ_REL) == 1)
        free(ls);
}

/* A connection stops counting against its listener's limit. */
static void ls_leave(sock *s)
{
    lshare *ls = s->ls;
    if (!ls)
        return;
    s->ls = NULL;
    __atomic_fetch_sub(&ls->conns, 1, __ATOMIC_SEQ_CST);
    if (ls->L == s->tab->L && ls->listener && ls->listener->accept_paused)
        resume_accept(ls->listener);
    ls_unref(ls);
}

/* Reading waits for the loop's check phase (the turn's budget is spent, or
 * there was no read buffer): every other ready socket is read first. */
static void blocked_add(sock *s)
{
    if (s->blocked)
        return;
    s->blocked = true;
    slist_push(&s->tab->blocked, s, IN_WAIT);
}

static void blocked_remove(sock *s)
{
    if (!s->blocked)
        return;
    s->blocked = false;
    slist_remove(&s->tab->blocked, s, IN_WAIT);
}

/* One of the object's two holds is gone: frees it after the last. */
static void sock_unref(sock *s)
{
    if (--s->refs)
        return;
    socktab *t = s->tab;
    if (!t->destroying) {
        tr__loop_io_use(t->L, -1);
        blocked_remove(s);
        slist_remove(&t->all, s, IN_LOOP);
    }
    ls_unref(s->kind == K_LISTEN ? s->ls : NULL);
    free(s->g);
    free(s->upath);
    free(s);
    if (t->m_open)
        tr_metric_add(t->m_open, -1);
    if (--t->nsocks == 0 && t->check_closed)
        tab_free(t); /* the loop's end: the last socket's close came last */
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

static void timer_close(sock *s)
{
    if (s->timer) {
        uv_close((uv_handle_t *)s->timer, on_timer_closed);
        s->timer = NULL;
        s->timer_mode = TM_NONE;
    }
}

static void on_timer(uv_timer_t *h);

/* Starts the socket's one timer for `mode`. False without memory. */
static bool timer_start(sock *s, uint8_t mode, uint64_t ms)
{
    if (!s->timer) {
        s->timer = tr__malloc(sizeof *s->timer);
        if (!s->timer)
            return false;
        uv_timer_init(&s->tab->L->uv, s->timer);
        s->timer->data = s;
    }
    s->timer_mode = mode;
    /* libuv counts from the time it cached at the start of this loop
     * iteration, which a long turn leaves behind: a timeout would fire
     * early by that much. */
    uv_update_time(&s->tab->L->uv);
    uv_timer_start(s->timer, on_timer, ms, mode == TM_ACCEPT ? ms : 0);
    return true;
}

/* Closes the libuv handle (once). */
static void handle_close(sock *s)
{
    if (s->lingering) {
        s->lingering = false;
        if (!s->tab->destroying)
            tr__loop_linger(s->tab->L, -1);
    }
    timer_close(s);
    if (s->reading) {
        uv_read_stop(&s->u.st);
        s->reading = false;
    }
    blocked_remove(s);
    if (s->creq) { /* a connect in progress: its callback must not find us */
        s->creq->s = NULL;
        if (s->creq->resolving)
            uv_cancel((uv_req_t *)&s->creq->gai);
        s->creq = NULL;
    }
    if (s->kind == K_CONN)
        ls_leave(s);
    for (struct wreq *w = s->pend, *next; w; w = next) { /* never written */
        next = w->next;
        s->wq -= w->len;
        if (w->owned)
            w->free_fn(w->owned);
        free(w);
    }
    s->pend = s->pend_tail = NULL;
    if (s->handle_init && !uv_is_closing(&s->u.h)) {
        uv_close(&s->u.h, on_closed);
        return;
    }
    if (!s->handle_init) /* never opened: the hold goes now */
        sock_unref(s);
}

static void on_closed(uv_handle_t *h)
{
    sock *s = h->data;
    s->handle_closed = true;
    if (s->kind == K_LISTEN && s->upath)
        unlink(s->upath);
    sock_unref(s);
}

/* ---- owners ---------------------------------------------------------------------- */

static void owned_stop(tr__loop *L, tr_actor *a, void **data);
static void owned_release(tr__loop *L, tr_actor *a, void **data);
static bool sock_intercept(tr__loop *L, tr_actor *a, void **data, tr_msg *pub);
static tr__owned_kind sock_kind = {.name = "sockets",
                                   .stop = owned_stop,
                                   .release = owned_release,
                                   .intercept = sock_intercept,
                                   .claim_lo = SOCK_TYPE_LO,
                                   .claim_hi = SOCK_TYPE_HI};

/* Adds `s` to a's sockets (the kind's data: the list's head). 0, or
 * TR_ENOMEM. */
static int owner_add(tr__loop *L, tr_actor *a, sock *s)
{
    int err = 0;
    void **p = tr__own(L, a, &sock_kind, &err);
    if (!p)
        return err;
    sock *head = *p;
    slist_push(&head, s, BY_OWNER);
    *p = head;
    s->owner = tr__actor_pid(a);
    s->owner_a = a;
    return 0;
}

static void owner_remove(sock *s)
{
    if (s->owner == TR_PID_NONE)
        return;
    void **p = tr__owned(s->owner_a, &sock_kind);
    sock *head = p ? *p : NULL;
    slist_remove(&head, s, BY_OWNER);
    if (p)
        *p = head;
    s->owner = TR_PID_NONE;
    s->owner_a = NULL;
}

/* The id goes: no message of the socket reaches anyone any more. */
static void id_release(sock *s)
{
    if (!s->id)
        return;
    id_free(s->tab, s->id);
    s->id = 0;
    sock_unref(s);
}

/* ---- messages to the owner -------------------------------------------------------- */

static int notify(sock *s, tr_pid from, uint32_t type, const void *data, size_t len)
{
    tr__loop *L = s->tab->L;
    tr__callhdr h = {.ref = s->id, .deadline = 0};
    int rc = tr__send(L->rt, L, from, s->owner, type, TR__MF_REF, &h, data, len, NULL, NULL);
    tr__loop_poke(L);
    return rc;
}

static void notify_code(sock *s, uint32_t type, int32_t code)
{
    if (notify(s, TR_PID_NONE, type, &code, sizeof code) != 0)
        tr__log(s->tab->L->rt, TR_LOG_WARN,
                "socket of " TR_PID_FMT ": a notice (type 0x%x, %s) could not be sent",
                TR_PID_ARGS(s->owner), (unsigned)type, tr_strerror(code));
}

/* `len` read bytes for the owner: copied into a pooled message when small,
 * else in a buffer it owns — `scratch` (the loop's, taken) or a copy. */
static bool deliver(sock *s, const char *p, size_t len, bool scratch)
{
    tr__loop *L = s->tab->L;
    tr__callhdr h = {.ref = s->id, .deadline = 0};
    int rc;
    if (len < TR_SOCK_KEEP_MIN && len <= L->rt->opts.max_payload) {
        rc = tr__send(L->rt, L, TR_PID_NONE, s->owner, TR_MSG_SOCK_DATA, TR__MF_REF, &h, p,
                      len, NULL, NULL);
    } else {
        char *b;
        if (scratch) { /* the scratch buffer itself; a new one next read */
            b = tr__realloc(s->tab->scratch, len);
            if (!b)
                b = s->tab->scratch;
            s->tab->scratch = NULL;
        } else if ((b = tr__malloc(len)) != NULL) {
            memcpy(b, p, len);
        }
        if (!b) {
            rc = TR_ENOMEM;
        } else {
            rc = tr__send(L->rt, L, TR_PID_NONE, s->owner, TR_MSG_SOCK_DATA,
                          TR__MF_REF | TR__MF_OWNED, &h, b, len, b, free);
            if (rc != 0)
                free(b);
        }
    }
    tr__loop_poke(L);
    if (rc != 0) {
        /* The bytes cannot reach the owner: the stream is broken, so the
         * connection ends (and the owner hears of it if it can). */
        tr__log(L->rt, TR_LOG_WARN,
                "socket of " TR_PID_FMT ": read data could not be delivered (%s): closed",
                TR_PID_ARGS(s->owner), tr_strerror(rc));
        sock_fail(s, rc);
        return false;
    }
    s->held += len;
    if (s->read_n > 0 && --s->read_n == 0)
        notify_code(s, TR_MSG_SOCK_PASSIVE, 0);
    return true;
}

/* ---- failure and closing ----------------------------------------------------------- */

/* The connection ended without its owner's word: it hears why. */
static void sock_fail(sock *s, int code)
{
    if (s->dead || s->closing)
        return;
    s->dead = true;
    if (s->id)
        notify_code(s, s->connecting ? TR_MSG_SOCK_CONNECTED : TR_MSG_SOCK_CLOSED, code);
    s->connecting = false;
    handle_close(s);
}

/* Abortive close: RST instead of FIN (a linger that ran out). */
static void set_reset(sock *s)
{
    uv_os_fd_t fd;
    if (s->fam == F_TCP && s->handle_init && uv_fileno(&s->u.h, &fd) == 0) {
        struct linger l = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
}

static void on_shutdown(uv_shutdown_t *req, int status);

static void drain_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    sock *s = h->data;
    if (!s->tab->scratch)
        s->tab->scratch = tr__malloc(READ_CHUNK);
    buf->base = s->tab->scratch;
    buf->len = s->tab->scratch ? READ_CHUNK : 0;
}

static void drain_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    if (nread < 0) /* the peer's end (or an error): done */
        handle_close(st->data);
}

/*
 * A closed connection whose writes are out: FIN, then read and discard
 * until the peer's end of stream, within what is left of linger_ms. A
 * plain close(2) with unread input sends a reset, and a reset makes the
 * peer's kernel drop what it has received but its application not yet
 * read — the end of what we wrote. (Apache's "lingering close".) The
 * runtime's end does not wait for this part: only for queued writes.
 */
static void close_gracefully(sock *s)
{
    if (s->lingering) {
        s->lingering = false;
        tr__loop_linger(s->tab->L, -1);
    }
    if (s->eof || s->dead) {
        handle_close(s);
        return;
    }
    if (!s->wshut) {
        uv_shutdown_t *req = tr__malloc(sizeof *req);
        if (!req || uv_shutdown(req, &s->u.st, on_shutdown) != 0) {
            free(req);
            handle_close(s);
            return;
        }
        s->wshut = true;
    }
    if (uv_read_start(&s->u.st, drain_alloc, drain_read) != 0) {
        handle_close(s);
        return;
    }
    s->reading = true;
}

/* The owner closes `s` (or ends): no message of it arrives any more;
 * queued writes get linger_ms, and so does the peer's end of stream. */
static void sock_close(tr__loop *L, sock *s)
{
    owner_remove(s);
    id_release(s);
    if (s->closing || s->dead)
        return;
    s->closing = true;
    if (s->kind == K_LISTEN) {
        if (s->ls)
            s->ls->listener = NULL;
        handle_close(s);
        return;
    }
    if (s->reading) {
        uv_read_stop(&s->u.st);
        s->reading = false;
    }
    if (!s->connected || !timer_start(s, TM_LINGER, (uint64_t)s->o.linger_ms)) {
        if (s->wq > 0)
            set_reset(s);
        handle_close(s);
        return;
    }
    if (s->wq > 0) {
        /* the last write (or the timer) goes on; a runtime that has
         * finished waits for that before its loop ends */
        s->lingering = true;
        tr__loop_linger(L, 1);
        return;
    }
    close_gracefully(s);
}

static void owned_stop(tr__loop *L, tr_actor *a, void **data)
{
    (void)a;
    sock *s = *data;
    while (s) {
        sock *next = s->by_owner.next;
        if (s->kind == K_LISTEN) {
            sock_close(L, s); /* accepting ends when the exit begins */
        } else {
            s->stopped = true;
            update_reading(s);
        }
        s = next;
    }
}

static void owned_release(tr__loop *L, tr_actor *a, void **data)
{
    (void)a;
    while (*data) /* each close takes the socket off the list */
        sock_close(L, *data);
}

/* ---- timers ------------------------------------------------------------------------- */

static void on_timer(uv_timer_t *h)
{
    sock *s = h->data;
    switch (s->timer_mode) {
    case TM_CONNECT:
        sock_fail(s, TR_ETIMEDOUT);
        break;
    case TM_IDLE: {
        uv_update_time(&s->tab->L->uv);
        uint64_t now = uv_now(&s->tab->L->uv), idle = (uint64_t)s->o.idle_ms;
        if (now - s->last >= idle)
            sock_fail(s, TR_ETIMEDOUT);
        else
            uv_timer_start(h, on_timer, idle - (now - s->last), 0);
        break;
    }
    case TM_LINGER:
        if (s->wq > 0)
            set_reset(s); /* what is still queued will not go out */
        handle_close(s);
        break;
    case TM_ACCEPT:
        resume_accept(s);
        break;
    }
}

/* Activity, for the idle timeout: the time now, not libuv's cached time
 * (which a long turn leaves behind, and the socket would close early). */
static void touch(sock *s)
{
    if (s->o.idle_ms == TR_INFINITE)
        return;
    uv_update_time(&s->tab->L->uv);
    s->last = uv_now(&s->tab->L->uv);
}

static void idle_start(sock *s)
{
    touch(s);
    if (s->o.idle_ms > 0 && !timer_start(s, TM_IDLE, (uint64_t)s->o.idle_ms))
        tr__log(s->tab->L->rt, TR_LOG_WARN, "socket: no memory for its idle timer");
}

/* ---- reading ------------------------------------------------------------------------- */

/* The bytes read this turn start at 0 in each new turn. */
static void turn_sync(sock *s)
{
    if (s->turn_iter != s->tab->iter) {
        s->turn_iter = s->tab->iter;
        s->turn_bytes = 0;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    sock *s = h->data;
    socktab *t = s->tab;
    turn_sync(s);
    if (!t->scratch)
        t->scratch = tr__malloc(READ_CHUNK);
    size_t n = READ_CHUNK;
    size_t room = s->o.read_max > s->held ? s->o.read_max - s->held : 0;
    size_t left = s->o.read_budget > s->turn_bytes ? s->o.read_budget - s->turn_bytes : 0;
    if (room < n)
        n = room;
    if (left < n)
        n = left;
    if (n == 0)
        n = 1; /* libuv asked: read at least one byte rather than fail */
    buf->base = t->scratch;
    buf->len = t->scratch ? n : 0;
}

/* Appends to the frame being gathered. False without memory. */
static bool gather(sock *s, const char *p, size_t n)
{
    if (s->goff && s->goff + s->glen + n > s->gcap) { /* compact first */
        memmove(s->g, s->g + s->goff, s->glen);
        s->gscan -= s->gscan >= s->goff ? s->goff : s->gscan;
        s->goff = 0;
    }
    if (s->glen + n > s->gcap) {
        size_t cap = s->gcap ? s->gcap : 256;
        while (cap < s->glen + n)
            cap *= 2;
        char *g = tr__realloc(s->g, cap);
        if (!g)
            return false;
        s->g = g;
        s->gcap = cap;
    }
    memcpy(s->g + s->goff + s->glen, p, n);
    s->glen += n;
    s->held += n;
    return true;
}

/* Takes `n` bytes off the front of the gathered ones (delivered). */
static void gather_take(sock *s, size_t n)
{
    s->goff += n;
    s->glen -= n;
    s->held -= n;
    s->gscan = 0;
    if (s->glen == 0)
        s->goff = 0;
}

/* The length of the next complete frame in the gathered bytes, 0 if none
 * is complete yet, or (size_t)-1 when a delimited frame is too long. */
static size_t next_frame(sock *s)
{
    const char *g = s->g + s->goff;
    if (s->fmax == 0)
        return s->glen;
    if (s->dlen == 0)
        return s->glen >= s->fmax ? s->fmax : 0;
    size_t lim = s->glen < s->fmax ? s->glen : s->fmax;
    for (size_t i = s->gscan; i + s->dlen <= lim; i++)
        if (g[i] == s->delim[0] && memcmp(g + i, s->delim, s->dlen) == 0)
            return i + s->dlen;
    s->gscan = lim >= s->dlen ? lim - s->dlen + 1 : 0;
    return s->glen >= s->fmax ? (size_t)-1 : 0;
}

/* Delivers gathered frames while the read mode allows; at end of stream
 * the rest, then EOF. */
static void cut_frames(sock *s)
{
    while (s->read_n != 0 && s->glen > 0 && s->id && !s->dead) {
        size_t n = next_frame(s);
        if (n == (size_t)-1) {
            sock_fail(s, TR_ELIMIT);
            return;
        }
        if (n == 0 && s->eof)
            n = s->glen; /* the incomplete frame, before EOF */
        if (n == 0)
            break;
        if (!deliver(s, s->g + s->goff, n, false))
            return;
        gather_take(s, n);
    }
    if (s->eof_pending && s->glen == 0 && s->id && !s->dead) {
        s->eof_pending = false;
        notify_code(s, TR_MSG_SOCK_EOF, 0);
    }
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    sock *s = st->data;
    socktab *t = s->tab;
    if (nread == 0)
        return;
    if (nread > 0) {
        size_t n = (size_t)nread;
        s->bin += n;
        if (t->m_in)
            tr_metric_inc(t->m_in, n);
        touch(s);
        turn_sync(s);
        s->turn_bytes += n;
        if (s->fmax == 0 && s->glen == 0) {
            deliver(s, buf->base, n, buf->base == t->scratch);
        } else if (!gather(s, buf->base, n)) {
            sock_fail(s, TR_ENOMEM);
            return;
        } else {
            cut_frames(s);
        }
        if (s->dead)
            return;
        if (s->turn_bytes >= s->o.read_budget)
            blocked_add(s);
        update_reading(s);
        return;
    }
    if (nread == UV_EOF) {
        s->eof = true;
        s->eof_pending = true;
        s->reading = false; /* libuv stopped reading */
        uv_read_stop(st);
        cut_frames(s);
        return;
    }
    if (nread == UV_ENOBUFS) { /* no scratch buffer: try again next turn */
        blocked_add(s);
        update_reading(s);
        return;
    }
    sock_fail(s, map_uv((int)nread));
}

/* Reads or not, as the socket's state says. */
static void update_reading(sock *s)
{
    bool want = s->kind == K_CONN && s->connected && !s->eof && !s->closing && !s->dead &&
                !s->stopped && s->read_n != 0 && s->held < s->o.read_max && !s->blocked &&
                s->id;
    if (want && !s->reading) {
        if (uv_read_start(&s->u.st, on_alloc, on_read) == 0)
            s->reading = true;
    } else if (!want && s->reading) {
        uv_read_stop(&s->u.st);
        s->reading = false;
    }
}

static void on_check(uv_check_t *h)
{
    socktab *t = h->data;
    t->iter++;
    while (t->blocked) {
        sock *s = t->blocked;
        blocked_remove(s);
        s->turn_bytes = 0;
        update_reading(s);
    }
}

/* ---- writing --------------------------------------------------------------------------- */

static void after_write_queue(sock *s)
{
    if (s->throttled && s->wq <= s->o.write_low && s->id && !s->dead) {
        s->throttled = false;
        notify_code(s, TR_MSG_SOCK_UNTHROTTLED, 0);
    }
    if (s->closing && s->wq == 0 && s->lingering)
        close_gracefully(s); /* the lingering writes are out */
}

static void on_write(uv_write_t *req, int status)
{
    wreq *w = (wreq *)req;
    sock *s = w->s;
    s->wq -= w->len;
    if (status == 0) {
        s->bout += w->len;
        if (s->tab->m_out)
            tr_metric_inc(s->tab->m_out, w->len);
        touch(s);
    }
    if (w->owned)
        w->free_fn(w->owned);
    free(w);
    if (status < 0 && status != UV_ECANCELED) {
        sock_fail(s, map_uv(status));
        return;
    }
    after_write_queue(s);
}

/* A write of `n` pieces (total bytes `total`), or one owned buffer. */
static int sock_send(sock *s, const tr_iov *iov, unsigned n, size_t total, void *owned,
                     tr_free_fn free_fn)
{
    if (s->kind != K_CONN)
        return TR_EINVAL;
    if (s->wshut || s->dead || s->closing)
        return TR_ECLOSED;
    if (total > s->o.write_max || s->wq > s->o.write_max - total)
        return TR_EFULL;
    if (total == 0) {
        if (owned)
            free_fn(owned);
        return 0;
    }
    size_t done = 0;
    if (s->wq == 0 && s->connected) {
        uv_buf_t bufs[16];
        unsigned nb = n < 16 ? n : 16;
        for (unsigned i = 0; i < nb; i++)
            bufs[i] = uv_buf_init((char *)iov[i].base, (unsigned)iov[i].len);
        int r = uv_try_write(&s->u.st, bufs, nb);
        if (r > 0) {
            done = (size_t)r;
            s->bout += done;
            if (s->tab->m_out)
                tr_metric_inc(s->tab->m_out, done);
            touch(s);
        } else if (r < 0 && r != UV_EAGAIN && r != UV_ENOSYS) {
            int code = map_uv(r);
            sock_fail(s, code);
            return code;
        }
    }
    if (done == total) {
        if (owned)
            free_fn(owned);
        return 0;
    }
    size_t rest = total - done;
    struct wreq *w = tr__malloc(sizeof *w + (owned ? 0 : rest));
    if (!w)
        return TR_ENOMEM; /* what went out went out: the caller may not retry it */
    w->s = s;
    w->len = rest;
    w->owned = owned;
    w->free_fn = free_fn;
    char *base;
    if (owned) {
        base = (char *)owned + done;
    } else {
        base = w->data;
        size_t skip = done, at = 0;
        for (unsigned i = 0; i < n; i++) {
            size_t l = iov[i].len;
            if (skip >= l) {
                skip -= l;
                continue;
            }
            memcpy(base + at, (const char *)iov[i].base + skip, l - skip);
            at += l - skip;
            skip = 0;
        }
    }
    w->next = NULL;
    if (!s->handle_init) { /* still resolving: written once connecting */
        if (s->pend_tail)
            s->pend_tail->next = w;
        else
            s->pend = w;
        s->pend_tail = w;
    } else {
        uv_buf_t b = uv_buf_init(base, (unsigned)rest);
        int r = uv_write(&w->req, &s->u.st, &b, 1, on_write);
        if (r != 0) {
            free(w);
            return map_uv(r);
        }
    }
    s->wq += rest;
    if (!s->throttled && s->wq > s->o.write_high) {
        s->throttled = true;
        if (s->tab->m_throttled)
            tr_metric_inc(s->tab->m_throttled, 1);
        notify_code(s, TR_MSG_SOCK_THROTTLED, 0);
    }
    return 0;
}

/* ---- options ----------------------------------------------------------------------------- */

static int opts_resolve(const tr_sock_opts *in, tr_sock_opts *o)
{
    *o = in ? *in : (tr_sock_opts){0};
    if (!o->write_high)
        o->write_high = (size_t)64 << 10;
    if (!o->write_low)
        o->write_low = o->write_high < ((size_t)64 << 10) ? o->write_high / 4 : (size_t)16 << 10;
    if (!o->write_max)
        o->write_max = o->write_high > ((size_t)1 << 20) ? o->write_high : (size_t)1 << 20;
    if (!o->read_budget)
        o->read_budget = (size_t)64 << 10;
    if (!o->read_max)
        o->read_max = (size_t)256 << 10;
    if (o->idle_ms == 0 || o->idle_ms == TR_DEFAULT)
        o->idle_ms = TR_INFINITE;
    if (o->linger_ms == 0 || o->linger_ms == TR_DEFAULT)
        o->linger_ms = 5000;
    if (o->write_low >= o->write_high || o->write_max < o->write_high ||
        (o->idle_ms < 0 && o->idle_ms != TR_INFINITE) ||
        (o->linger_ms < 0 && o->linger_ms != TR_INFINITE) || (o->nagle != 0 && o->nagle != 1) ||
        o->write_max > UINT32_MAX || o->sndbuf > INT32_MAX / 2 || o->rcvbuf > INT32_MAX / 2)
        return TR_EINVAL;
    if (o->linger_ms == TR_INFINITE)
        o->linger_ms = INT32_MAX; /* a long time, for libuv's timer */
    if (o->idle_ms > INT32_MAX)
        o->idle_ms = INT32_MAX;
    if (o->linger_ms > INT32_MAX)
        o->linger_ms = INT32_MAX;
    return 0;
}

/* A connection's setup after it is open (accepted, connected, adopted). */
static void conn_ready(sock *s)
{
    s->connected = true;
    if (s->fam == F_TCP)
        uv_tcp_nodelay(&s->u.tcp, !s->o.nagle);
    int v;
    if ((v = (int)s->o.sndbuf) > 0)
        uv_send_buffer_size((uv_handle_t *)&s->u, &v);
    if ((v = (int)s->o.rcvbuf) > 0)
        uv_recv_buffer_size((uv_handle_t *)&s->u, &v);
    idle_start(s);
}

/* ---- addresses ----------------------------------------------------------------------------- */

typedef struct addr {
    uint8_t fam;
    bool numeric;
    struct sockaddr_storage ss;
    char host[256];
    char port[6];
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} addr;

static int addr_parse(const char *s, addr *a, bool listening)
{
    memset(a, 0, sizeof *a);
    if (!s)
        return TR_EINVAL;
    if (strncmp(s, "unix:", 5) == 0) {
        size_t n = strlen(s + 5);
        if (n == 0 || n >= sizeof a->path)
            return TR_EINVAL;
        memcpy(a->path, s + 5, n + 1);
        a->fam = F_UNIX;
        return 0;
    }
    a->fam = F_TCP;
    const char *colon;
    size_t hl;
    const char *h = s;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':')
            return TR_EINVAL;
        h = s + 1;
        hl = (size_t)(end - h);
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return TR_EINVAL;
        hl = (size_t)(colon - s);
        if (memchr(s, ':', hl))
            return TR_EINVAL; /* an IPv6 address needs its brackets */
    }
    if (hl >= sizeof a->host)
        return TR_EINVAL;
    memcpy(a->host, h, hl);
    a->host[hl] = 0;
    const char *p = colon + 1;
    size_t pl = strlen(p);
    if (pl == 0 || pl > 5 || strspn(p, "0123456789") != pl)
        return TR_EINVAL;
    unsigned long port = strtoul(p, NULL, 10);
    if (port > 65535)
        return TR_EINVAL;
    memcpy(a->port, p, pl + 1);
    const char *host = a->host;
    if (host[0] == 0 || strcmp(host, "*") == 0)
        host = "0.0.0.0";
    else if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    struct sockaddr_in *v4 = (struct sockaddr_in *)&a->ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a->ss;
    if (s[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        a->numeric = true;
    } else if (s[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        a->numeric = true;
    } else if (s[0] == '[' || listening) {
        return TR_EINVAL; /* a listener binds a numeric address */
    } else if (strspn(a->host, "0123456789.") == hl) {
        return TR_EINVAL; /* digits and dots that are no IPv4 address */
    }
    return 0;
}

static int addr_format(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    int n;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof ip);
        n = snprintf(buf, len, "%s:%u", ip, (unsigned)ntohs(v4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof ip);
        n = snprintf(buf, len, "[%s]:%u", ip, (unsigned)ntohs(v6->sin6_port));
    } else {
        return TR_ESYSTEM;
    }
    return n < 0 || (size_t)n >= len ? TR_EINVAL : 0;
}

/* ---- entry checks --------------------------------------------------------------------------- */

/* self's socket `id` on its loop, or an error. */
static int self_sock(tr_actor *self, tr_sock id, tr__loop **L, sock **out)
{
    int rc = tr__self_loop(self, L);
    if (rc != 0)
        return rc;
    sock *s = id_find(*L, id);
    if (!s || s->owner != tr__actor_pid(self))
        return TR_ENOTSOCK;
    *out = s;
    return 0;
}

/* A write to a connection the peer has reset raises SIGPIPE, whose default
 * ends the process: a service must get TR_ECONNRESET instead. The first
 * socket sets SIGPIPE to be ignored, unless the application has chosen a
 * disposition of its own (as Go's runtime does; docs/networking.md). */
static void ignore_sigpipe(void)
{
    static int done; /* atomic */
    if (__atomic_exchange_n(&done, 1, __ATOMIC_SEQ_CST))
        return;
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL &&
        !(sa.sa_flags & SA_SIGINFO)) {
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
    }
}

/* Common start of tr_listen and tr_connect: a table and a new object. */
static int sock_begin(tr_actor *self, uint8_t kind, uint8_t fam, tr__loop **L, sock **out)
{
    int rc = tr__self_loop(self, L);
    if (rc != 0)
        return rc;
    if (self->status != TR__RUNNING)
        return TR_ESTOPPED;
    if (tr__owned_claim(&sock_kind) != 0)
        return TR_ESYSTEM;
    ignore_sigpipe();
    socktab *t = tab_of(*L);
    sock *s = t ? sock_new(t, kind, fam) : NULL;
    if (!s)
        return TR_ENOMEM;
    s->refs = 1; /* the handle's hold (or, before it opens, the object's) */
    s->id = id_alloc(t, s);
    if (!s->id || owner_add(*L, self, s) != 0) {
        if (s->id)
            id_free(t, s->id);
        s->id = 0;
        sock_unref(s);
        return TR_ENOMEM;
    }
    s->refs++;
    *out = s;
    return 0;
}

/* Undoes sock_begin after a failure to open. */
static void sock_abort(sock *s)
{
    owner_remove(s);
    id_release(s);
    s->closing = true;
    handle_close(s);
}

/* ---- listening -------------------------------------------------------------------------------- */

static void accept_one(sock *l)
{
    socktab *t = l->tab;
    tr__loop *L = t->L;
    tr_actor *owner = tr__lookup(L->rt, l->owner);
    sock *c = owner ? sock_new(t, K_CONN, l->fam) : NULL;
    if (!c) { /* libuv holds the connection: try again shortly */
        tr__log(L->rt, TR_LOG_WARN, "listener: no memory for an accepted connection");
        l->accept_paused = true;
        timer_start(l, TM_ACCEPT, 10);
        return;
    }
    c->refs = 1;
    if (l->fam == F_TCP)
        uv_tcp_init(&L->uv, &c->u.tcp);
    else
        uv_pipe_init(&L->uv, &c->u.pipe, 0);
    c->handle_init = true;
    c->u.h.data = c;
    c->o = l->conn_o;
    if (uv_accept(&l->u.st, &c->u.st) != 0) {
        c->closing = true;
        handle_close(c);
        return;
    }
    c->ls = l->ls;
    __atomic_fetch_add(&c->ls->refs, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&c->ls->conns, 1, __ATOMIC_SEQ_CST);
    c->id = id_alloc(t, c);
    if (!c->id || owner_add(L, owner, c) != 0) {
        if (c->id)
            id_free(t, c->id);
        c->id = 0;
        c->closing = true;
        handle_close(c);
        tr__log(L->rt, TR_LOG_WARN, "listener: no memory for an accepted connection: closed");
        return;
    }
    c->refs++;
    conn_ready(c);
    if (notify(c, TR_PID_NONE, TR_MSG_SOCK_ACCEPTED, &l->id, sizeof l->id) != 0) {
        tr__log(L->rt, TR_LOG_WARN, "listener: an accepted connection could not be announced: closed");
        sock_close(L, c);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    sock *l = server->data;
    if (status < 0 || l->closing)
        return;
    if (__atomic_load_n(&l->ls->conns, __ATOMIC_SEQ_CST) >= l->max_conns) {
        /* libuv keeps the accepted descriptor and stops watching the
         * listener until uv_accept: accepting pauses here. */
        if (!l->accept_paused) {
            l->accept_paused = true;
            timer_start(l, TM_ACCEPT, 10); /* connections on other loops */
        }
        return;
    }
    accept_one(l);
}

static void resume_accept(sock *l)
{
    if (!l->accept_paused || l->closing || __atomic_load_n(&l->ls->conns, __ATOMIC_SEQ_CST) >= l->max_conns)
        return;
    l->accept_paused = false;
    if (l->timer)
        uv_timer_stop(l->timer);
    accept_one(l); /* the one libuv held; uv_accept watches the listener again */
}

static int listen_tcp(tr__loop *L, sock *s, const addr *a, const tr_listen_opts *o)
{
    int family = a->ss.ss_family;
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno == ENOMEM || errno == ENOBUFS ? TR_ENOMEM : TR_ESYSTEM;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (o->reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        close(fd);
        return TR_ESYSTEM;
    }
    socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    if (bind(fd, (const struct sockaddr *)&a->ss, len) != 0) {
        int e = errno;
        close(fd);
        return e == EADDRINUSE ? TR_EADDRINUSE : TR_ESYSTEM;
    }
    uv_tcp_init(&L->uv, &s->u.tcp);
    s->handle_init = true;
    s->u.h.data = s;
    if (uv_tcp_open(&s->u.tcp, fd) != 0) {
        close(fd);
        return TR_ESYSTEM;
    }
    return 0;
}

int tr_listen(tr_actor *self, const char *address, const tr_listen_opts *opts, tr_sock *out)
{
    addr a;
    tr_listen_opts o = opts ? *opts : (tr_listen_opts){0};
    tr_sock_opts co;
    if (!self)
        return TR_EINVAL;
    int rc = tr__running_loop(self) ? 0 : TR_EWRONGTHREAD;
    if (rc == 0 && (!out || addr_parse(address, &a, true) != 0 || o.backlog < 0 ||
                    (o.reuseport != 0 && o.reuseport != 1) || opts_resolve(&o.conn, &co) != 0))
        rc = TR_EINVAL;
    if (rc == 0 && o.reuseport && a.fam == F_UNIX)
        rc = TR_EINVAL;
    if (rc != 0)
        return rc;
    tr__loop *L;
    sock *s;
    if ((rc = sock_begin(self, K_LISTEN, a.fam, &L, &s)) != 0)
        return rc;
    s->conn_o = co;
    s->max_conns = o.max_conns ? o.max_conns : 10000;
    s->ls = tr__calloc(1, sizeof *s->ls);
    if (!s->ls) {
        sock_abort(s);
        return TR_ENOMEM;
    }
    s->ls->refs = 1;
    s->ls->listener = s;
    s->ls->L = L;
    if (a.fam == F_TCP) {
        rc = listen_tcp(L, s, &a, &o);
    } else {
        uv_pipe_init(&L->uv, &s->u.pipe, 0);
        s->handle_init = true;
        s->u.h.data = s;
        int r = uv_pipe_bind(&s->u.pipe, a.path);
        rc = map_uv(r);
        if (rc == 0 && !(s->upath = tr__strdup(a.path)))
            rc = TR_ENOMEM;
    }
    if (rc == 0)
        rc = map_uv(uv_listen(&s->u.st, o.backlog ? o.backlog : 511, on_connection));
    if (rc != 0) {
        if (rc == TR_ECANCELED || rc == TR_ENOHOST || rc == TR_ECONNREFUSED)
            rc = TR_ESYSTEM;
        sock_abort(s);
        return rc;
    }
    *out = s->id;
    return 0;
}

/* ---- connecting -------------------------------------------------------------------------------- */

static void on_shutdown(uv_shutdown_t *req, int status);

static void on_connect(uv_connect_t *req, int status)
{
    conn_req *cr = req->data;
    sock *s = cr->s;
    free(cr);
    if (!s)
        return; /* closed, failed or timed out meanwhile */
    s->creq = NULL;
    if (status != 0) { /* a Unix path where nobody listens: refused */
        sock_fail(s, status == UV_ENOENT ? TR_ECONNREFUSED : map_uv(status));
        return;
    }
    s->connecting = false;
    timer_close(s);
    conn_ready(s);
    notify_code(s, TR_MSG_SOCK_CONNECTED, 0);
    if (s->shut_pending) {
        s->shut_pending = false;
        uv_shutdown_t *sr = tr__malloc(sizeof *sr);
        if (sr && uv_shutdown(sr, &s->u.st, on_shutdown) != 0)
            free(sr);
    }
    update_reading(s);
}

static int start_connect(sock *s, conn_req *cr, const struct sockaddr *sa, const char *path)
{
    tr__loop *L = s->tab->L;
    cr->conn.data = cr;
    if (path) {
        uv_pipe_init(&L->uv, &s->u.pipe, 0);
        s->handle_init = true;
        s->u.h.data = s;
        uv_pipe_connect(&cr->conn, &s->u.pipe, path, on_connect);
        return 0;
    }
    uv_tcp_init(&L->uv, &s->u.tcp);
    s->handle_init = true;
    s->u.h.data = s;
    int rc = map_uv(uv_tcp_connect(&cr->conn, &s->u.tcp, sa, on_connect));
    if (rc != 0)
        return rc;
    while (s->pend) { /* writes made while resolving, in order */
        struct wreq *w = s->pend;
        s->pend = w->next;
        uv_buf_t b = uv_buf_init(w->owned ? (char *)w->owned + 0 : w->data, (unsigned)w->len);
        if (uv_write(&w->req, &s->u.st, &b, 1, on_write) != 0) {
            s->wq -= w->len;
            if (w->owned)
                w->free_fn(w->owned);
            free(w);
        }
    }
    s->pend_tail = NULL;
    return 0;
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    conn_req *cr = req->data;
    sock *s = cr->s;
    cr->resolving = false;
    if (!s) {
        uv_freeaddrinfo(res);
        free(cr);
        return;
    }
    int rc = status == 0 && res ? start_connect(s, cr, res->ai_addr, NULL) : map_uv(status);
    if (status == 0 && !res)
        rc = TR_ENOHOST;
    uv_freeaddrinfo(res);
    if (rc != 0) {
        s->creq = NULL;
        free(cr);
        sock_fail(s, rc);
    }
}

int tr_connect(tr_actor *self, const char *address, const tr_connect_opts *opts, tr_sock *out)
{
    addr a;
    tr_connect_opts o = opts ? *opts : (tr_connect_opts){0};
    tr_sock_opts co;
    if (!self)
        return TR_EINVAL;
    int rc = tr__running_loop(self) ? 0 : TR_EWRONGTHREAD;
    tr_duration to = o.timeout_ms;
    if (rc == 0 && (!out || addr_parse(address, &a, false) != 0 ||
                    opts_resolve(&o.conn, &co) != 0 || (to < 0 && to != TR_DEFAULT &&
                                                        to != TR_INFINITE)))
        rc = TR_EINVAL;
    if (rc != 0)
        return rc;
    if (to == 0 || to == TR_DEFAULT)
        to = 30000;
    tr__loop *L;
    sock *s;
    if ((rc = sock_begin(self, K_CONN, a.fam, &L, &s)) != 0)
        return rc;
    s->o = co;
    conn_req *cr = tr__calloc(1, sizeof *cr);
    if (!cr) {
        sock_abort(s);
        return TR_ENOMEM;
    }
    cr->s = s;
    s->creq = cr;
    s->connecting = true;
    if (a.fam == F_UNIX) {
        rc = start_connect(s, cr, NULL, a.path);
    } else if (a.numeric) {
        rc = start_connect(s, cr, (const struct sockaddr *)&a.ss, NULL);
    } else {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
        cr->gai.data = cr;
        cr->resolving = true;
        rc = map_uv(uv_getaddrinfo(&L->uv, &cr->gai, on_resolved, a.host, a.port, &hints));
        if (rc != 0)
            cr->resolving = false;
    }
    if (rc != 0) {
        if (!cr->conn.handle) { /* no callback will come: ours to free */
            s->creq = NULL;
            free(cr);
        }
        s->connecting = false;
        sock_abort(s);
        return rc == TR_ENOMEM ? rc : TR_ESYSTEM;
    }
    if (to != TR_INFINITE && !timer_start(s, TM_CONNECT, (uint64_t)(to > INT32_MAX ? INT32_MAX : to))) {
        s->connecting = false;
        sock_abort(s);
        return TR_ENOMEM;
    }
    *out = s->id;
    return 0;
}

/* ---- the interception point ------------------------------------------------------------------ */

static void handoff_free(void *p)
{
    handoff *h = p;
    if (h->fd >= 0) {
        close(h->fd);
        if (h->ls) {
            __atomic_fetch_sub(&h->ls->conns, 1, __ATOMIC_SEQ_CST);
            ls_unref(h->ls);
        }
    }
    free(h);
}

/* A socket from another loop arrives: open it here for `a`. */
static bool adopt(tr__loop *L, tr_actor *a, tr_msg *pub)
{
    handoff *h = (handoff *)pub->data;
    socktab *t = tab_of(L);
    sock *s = t ? sock_new(t, K_CONN, h->fam) : NULL;
    if (!s)
        goto fail;
    s->refs = 1;
    int r;
    if (h->fam == F_TCP) {
        uv_tcp_init(&L->uv, &s->u.tcp);
        s->handle_init = true;
        s->u.h.data = s;
        r = uv_tcp_open(&s->u.tcp, h->fd);
    } else {
        uv_pipe_init(&L->uv, &s->u.pipe, 0);
        s->handle_init = true;
        s->u.h.data = s;
        r = uv_pipe_open(&s->u.pipe, h->fd);
    }
    if (r != 0) {
        s->closing = true;
        handle_close(s); /* h->fd is still h's to close */
        goto fail;
    }
    h->fd = -1; /* the handle's now */
    s->ls = h->ls;
    h->ls = NULL;
    s->o = h->o;
    s->read_n = h->read_n;
    s->fmax = h->fmax;
    s->dlen = h->dlen;
    memcpy(s->delim, h->delim, sizeof s->delim);
    s->eof = h->eof;
    s->wshut = h->wshut;
    s->bin = h->bin;
    s->bout = h->bout;
    s->id = id_alloc(t, s);
    if (!s->id || owner_add(L, a, s) != 0) {
        if (s->id)
            id_free(t, s->id);
        s->id = 0;
        s->closing = true;
        handle_close(s);
        tr__log(L->rt, TR_LOG_WARN, "socket given to " TR_PID_FMT ": no memory: closed",
                TR_PID_ARGS(tr__actor_pid(a)));
        return true;
    }
    s->refs++;
    conn_ready(s);
    pub->type = TR_MSG_SOCK_GIVEN;
    pub->ref = s->id;
    pub->data = NULL;
    pub->len = 0;
    pub->flags &= ~TR_MSG_OWNED;
    update_reading(s);
    return false;
fail:
    tr__log(L->rt, TR_LOG_WARN, "socket given to " TR_PID_FMT ": could not be opened: closed",
            TR_PID_ARGS(tr__actor_pid(a)));
    return true;
}

static bool sock_intercept(tr__loop *L, tr_actor *a, void **data, tr_msg *pub)
{
    (void)data;
    if (pub->type < SOCK_TYPE_LO || pub->type > SOCK_TYPE_HI)
        return false; /* another kind's (a DOWN, a call's timeout) */
    if (pub->type == SOCK_HANDOFF)
        return adopt(L, a, pub);
    sock *s = id_find(L, pub->ref);
    if (!s || s->owner != tr__actor_pid(a))
        return true; /* closed or given away since: nothing more of it */
    switch (pub->type) {
    case TR_MSG_SOCK_DATA:
        s->held -= pub->len;
        update_reading(s);
        break;
    case TR_MSG_SOCK_CLOSED:
    case TR_MSG_SOCK_CONNECTED:
        if (s->dead) { /* its last word: the id goes once the handler has it */
            owner_remove(s);
            id_release(s);
        }
        break;
    default:
        break;
    }
    return false;
}

/* ---- the public calls ---------------------------------------------------------------------- */

int tr_sock_read(tr_actor *self, tr_sock id, int n)
{
    tr__loop *L;
    sock *s;
    int rc = self_sock(self, id, &L, &s);
    if (rc != 0)
        return rc;
    if (n < TR_SOCK_CONTINUOUS || s->kind != K_CONN)
        return TR_EINVAL;
    s->read_n = n;
    cut_frames(s);
    update_reading(s);
    return 0;
}

int tr_sock_frame(tr_actor *self, tr_sock id, size_t max, const void *delim, size_t dlen)
{
    tr__loop *L;
    sock *s;
    int rc = self_sock(self, id, &L, &s);
    if (rc != 0)
        return rc;
    if (s->kind != K_CONN || (dlen && (!delim || dlen > sizeof s->delim || max < dlen)) ||
        (!dlen && delim) || max > s->o.read_max)
        return TR_EINVAL;
    s->fmax = max;
    s->dlen = (uint8_t)dlen;
    if (dlen)
        memcpy(s->delim, delim, dlen);
    s->gscan = 0;
    cut_frames(s);
    update_reading(s);
    return 0;
}

int tr_sock_writev(tr_actor *self, tr_sock id, const tr_iov *iov, unsigned n)
{
    tr__loop *L;
    sock *s;
    int rc = self_sock(self, id, &L, &s);
    if (rc != 0)
        return rc;
    if (!iov && n)
        return TR_EINVAL;
    size_t total = 0;
    for (unsigned i = 0; i < n; i++) {
        if ((!iov[i].base && iov[i].len) || iov[i].len > SIZE_MAX - total)
            return TR_EINVAL;
        total += iov[i].len;
    }
    return sock_send(s, iov, n, total, NULL, NULL);
}

int tr_sock_write(tr_actor *self, tr_sock id, const void *data, size_t len)
{
    tr_iov v = {.base = data, .len = len};
    return tr_sock_writev(self, id, &v, 1);
}

int tr_sock_write_owned(tr_actor *self, tr_sock id, void *buf, size_t len, tr_free_fn free_fn)
{
    tr__loop *L;
    sock *s;
    int rc = self_sock(self, id, &L, &s);
    if (rc != 0)
        return rc;
    if (!buf || !free_fn || len > UINT32_MAX)
        return TR_EINVAL;
    tr_iov v = {.base = buf, .len = len};
    return sock_send(s, &v, 1, len, buf, free_fn);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status; /* a failure shows as an error on the stream */
    free(req);
}

int tr_sock_shutdown(tr_actor *self, tr_sock id)
{
    tr__loop *L;
    sock *s;
    int rc = self_sock(self, id, &L, &s);
    if (rc != 0)
        return rc;
    if (s->kind != K_CONN)
        return TR_EINVAL;
    if (s->wshut || s->dead)
        return 0;
    if (!s->connected) { /* once connected */
        s->wshut = s->shut_pending = true;
        return 0;
    }
    uv_shutdown_t *req = tr__malloc(sizeof *req);
    if (!req)
        return TR_ENOMEM;
    int r = uv_shutdown(req, &s->u.st, on_shutdown);
    if (r != 0) {
        free(req);
        return r == UV_ENOTCONN ? TR_ECLOSED : map_uv(r);
    }
    s->wshut = true;
    return 0;
}

int tr_sock_close(tr_actor *self, tr_sock id)
{
    tr__loop *L;
    sock *s;
    int rc = self_sock(self, id, &L, &s);
    if (rc != 0)
        return rc;
    sock_close(L, s);
    return 0;
}

int tr_sock_give(tr_actor *self, tr_sock id, tr_pid to)
{
    tr__loop *L;
    sock *s;
    int rc = self_sock(self, id, &L, &s);
    if (rc != 0)
        return rc;
    if (s->kind != K_CONN || to == tr__actor_pid(self))
        return TR_EINVAL;
    tr_actor *b = tr__lookup(L->rt, to);
    if (!b)
        return TR_ENOACTOR;
    if (s->held > 0 || s->connecting || s->dead)
        return TR_EBUSY;
    if (ck_pr_load_ptr(&b->loop) == L) { /* same loop: the owner changes */
        if (b->status == TR__EXITING) /* (or not yet started: that is fine) */
            return TR_ENOACTOR;
        tr_pid from = s->owner;
        owner_remove(s);
        if ((rc = owner_add(L, b, s)) != 0) {
            owner_add(L, self, s); /* cannot fail: self has the kind already */
            return rc;
        }
        s->stopped = false;
        if (notify(s, from, TR_MSG_SOCK_GIVEN, NULL, 0) != 0) {
            owner_remove(s);
            owner_add(L, self, s);
            return TR_ENOMEM;
        }
        update_reading(s);
        return 0;
    }
    if (s->wq > 0)
        return TR_EBUSY;
    uv_os_fd_t fd;
    if (uv_fileno(&s->u.h, &fd) != 0)
        return TR_ESYSTEM;
    handoff *h = tr__calloc(1, sizeof *h);
    if (!h)
        return TR_ENOMEM;
    h->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (h->fd < 0) {
        free(h);
        return TR_ESYSTEM;
    }
    h->fam = s->fam;
    h->eof = s->eof;
    h->wshut = s->wshut;
    h->read_n = s->read_n;
    h->o = s->o;
    h->fmax = s->fmax;
    h->dlen = s->dlen;
    memcpy(h->delim, s->delim, sizeof h->delim);
    h->bin = s->bin;
    h->bout = s->bout;
    h->ls = s->ls;
    tr__callhdr ch = {.ref = 0, .deadline = 0}; /* a notice: no mailbox bound */
    rc = tr__send(L->rt, L, tr__actor_pid(self), to, SOCK_HANDOFF, TR__MF_REF | TR__MF_OWNED,
                  &ch, h, sizeof *h, h, handoff_free);
    if (rc != 0) {
        close(h->fd);
        free(h);
        return rc;
    }
    s->ls = NULL; /* it travels with the descriptor */
    /* Only this handle closes — no FIN, no drain: the duplicate keeps the
     * connection for its new owner. */
    owner_remove(s);
    id_release(s);
    s->closing = true;
    handle_close(s);
    return 0;
}

int tr_sock_addr(tr_actor *self, tr_sock id, int peer, char *buf, size_t len)
{
    tr__loop *L;
    sock *s;
    int rc = self_sock(self, id, &L, &s);
    if (rc != 0)
        return rc;
    if (!buf || len == 0)
        return TR_EINVAL;
    if (!s->handle_init || s->dead)
        return TR_ESYSTEM;
    if (s->fam == F_UNIX) {
        /* Asked of the kernel here, with the address zeroed: libuv reads
         * the path of an unnamed peer (an accepted connection's client)
         * past what the kernel wrote. */
        uv_os_fd_t fd;
        struct sockaddr_un un;
        memset(&un, 0, sizeof un);
        socklen_t ul = sizeof un;
        if (uv_fileno(&s->u.h, &fd) != 0 ||
            (peer ? getpeername(fd, (struct sockaddr *)&un, &ul)
                  : getsockname(fd, (struct sockaddr *)&un, &ul)) != 0)
            return TR_ESYSTEM;
        size_t n = ul > offsetof(struct sockaddr_un, sun_path)
                       ? strnlen(un.sun_path, ul - offsetof(struct sockaddr_un, sun_path))
                       : 0;
        int w = snprintf(buf, len, "unix:%.*s", (int)n, un.sun_path);
        return w < 0 || (size_t)w >= len ? TR_EINVAL : 0;
    }
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    int r = peer ? uv_tcp_getpeername(&s->u.tcp, (struct sockaddr *)&ss, &sl)
                 : uv_tcp_getsockname(&s->u.tcp, (struct sockaddr *)&ss, &sl);
    if (r != 0)
        return TR_ESYSTEM;
    return addr_format((struct sockaddr *)&ss, buf, len);
}

int tr_sock_info_get(tr_actor *self, tr_sock id, tr_sock_info *out)
{
    tr__loop *L;
    sock *s;
    int rc = self_sock(self, id, &L, &s);
    if (rc != 0)
        return rc;
    if (!out)
        return TR_EINVAL;
    *out = (tr_sock_info){.bytes_in = s->bin,
                          .bytes_out = s->bout,
                          .write_queued = s->wq,
                          .read_held = s->held,
                          .conns = s->kind == K_LISTEN ? __atomic_load_n(&s->ls->conns, __ATOMIC_SEQ_CST) : 0,
                          .listener = s->kind == K_LISTEN,
                          .throttled = s->throttled,
                          .reading = s->reading};
    return 0;
}

/* ---- the loop's end ---------------------------------------------------------------------------- */

static void tab_free(socktab *t)
{
    tr__idtab_destroy(&t->ids);
    free(t->scratch);
    free(t);
}

/* The loop's end: libuv runs close callbacks newest first, so the sockets'
 * may come after this one; the last of all frees the table. */
static void on_check_closed(uv_handle_t *h)
{
    socktab *t = h->data;
    t->check_closed = true;
    if (t->nsocks == 0)
        tab_free(t);
}

/* The loop is destroyed (runtime freed): every socket closes, lingering
 * or not; the close callbacks run in the loop's last uv_run. */
static void tab_destroy(tr__loop *L, void *data)
{
    (void)L;
    socktab *t = data;
    t->destroying = true;
    for (sock *s = t->all, *next; s; s = next) {
        next = s->in_loop.next;
        s->id = 0; /* the table goes: the id's hold with it */
        s->refs = 1;
        s->dead = s->closing = true;
        if (s->ls && s->kind == K_LISTEN)
            s->ls->listener = NULL;
        if (s->handle_closed) {
            sock_unref(s);
        } else if (s->handle_init && uv_is_closing(&s->u.h)) {
            timer_close(s); /* its close callback frees it */
        } else {
            handle_close(s);
        }
    }
    uv_close((uv_handle_t *)&t->check, on_check_closed);
}
