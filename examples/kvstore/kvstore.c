/*
 * kvstore — a Redis-protocol (RESP2) key-value server built the actor way:
 * unmodified redis-cli and redis-benchmark talk to it.
 *
 *   kvstore (supervisor, rest_for_one)
 *   |-- shard-0      loop 0: the keys that hash to shard 0
 *   |-- shard-1      loop 1: ...
 *   |-- acceptor-0   loop 0: a listener (SO_REUSEPORT), a child per connection
 *   |   |-- conn
 *   |   `-- conn
 *   `-- acceptor-1   loop 1
 *       `-- conn
 *
 * Shared nothing: the keyspace is split over one shard actor per loop
 * (a key's shard is its hash modulo the loops). A connection actor lives
 * on the loop that accepted it and parses its client's commands; a
 * command whose keys are all in the shard of its own loop runs at once,
 * in the connection's handler: the shard's table is loop-local state,
 * and every actor of a loop runs on that loop's thread, so this is a
 * function call, not a message (Dragonfly's and Seastar's shard-per-core
 * design). A command with keys elsewhere goes to those shards as a
 * message — all the commands of one read for one shard in one batch —
 * and their answers come back as a message; the connection writes every
 * reply in the order of the commands (pipelining), gathering the parts of
 * a command that spans shards (MGET, MSET, DEL, EXISTS, KEYS, DBSIZE, ...)
 * in argument order. Multi-key commands are not atomic across shards.
 *
 * Supervision: rest_for_one — a shard that fails restarts with an empty
 * table, and so do the shards after it and every acceptor, whose
 * connections end: no client waits for an answer that was lost.
 *
 * Backpressure: a connection pauses its reads while its writes are
 * throttled (the client reads slower than it asks) or while too many of
 * its commands wait for other shards; the kernel's window holds the
 * client back. Expiry: lazily on access, and each shard samples its keys
 * with a time to live every 100 ms (Redis's active expiry).
 *
 *   ./build/examples/kvstore/kvstore [--port 6379] [--threads N] ...
 *   redis-cli -p 6379 set hello world
 *
 * --observe 127.0.0.1:9464 also serves the runtime's metrics, its tree
 * (a conn per client) and a live page over HTTP (tr_rt_observe).
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <troupe.h>

#include "commands.h"
#include "keyspace.h"
#include "resp.h"

#define MAX_LOOPS 64          /* a wait mask per command is a uint64_t */
#define MAX_PENDING 1024      /* commands waiting for shards: reads pause above */
#define RESUME_PENDING 256    /* ... and resume at or below */
#define WRITE_MAX (256u << 20) /* a client's unread replies (Redis's output
                                * buffer limit): past it, it is dropped */
#define IN_KEEP 4096          /* an input buffer this small is kept when empty */
#define BIG_REPLY (64u << 10) /* a merged reply this large is written as it is */

enum { MSG_BATCH = 1, MSG_ANSWERS, MSG_EXPIRE_TICK };

/* ---- configuration and shared state ---------------------------------------------- */

typedef struct config {
    char host[64];
    char unix_path[108];
    int port;
    unsigned loops;
    uint32_t maxclients;
    uint32_t timeout_s; /* idle clients closed after this; 0: never */
    int spread;         /* one listener (--unix): connections round-robin */
    char observe[160];  /* --observe: the observability endpoint's address */
} config;

static config cfg = {.host = "127.0.0.1", .port = 6379, .maxclients = 10000};
static unsigned nshards;
static uint64_t shard_seed;
static _Atomic int bound_port;
static time_t started;

/* Loop i's shard: set and read on loop i's thread only. */
static kv_shard *local_shard[MAX_LOOPS];
static _Atomic tr_pid shard_pid[MAX_LOOPS];

/* Counters for INFO: each written by its own loop, read by anyone. */
static _Atomic uint64_t commands_done[MAX_LOOPS];
static _Atomic int64_t clients_now;
static _Atomic uint64_t clients_total, clients_rejected;
static tr_runtime *the_rt;

static inline unsigned shard_of(const char *key, size_t len)
{
    return nshards == 1 ? 0 : (unsigned)(kv_hash(shard_seed, key, len) % nshards);
}

static inline int64_t now_ms(tr_actor *self)
{
    return (int64_t)(tr_now(tr_runtime_of(self)) / 1000000u);
}

/* A command's arguments, rebuilt: a part for one shard, a request read
 * from a batch. */
typedef struct argv_buf {
    const char **argv;
    size_t *argl;
    size_t cap;
} argv_buf;

/* Room for n arguments. 1, or 0 (out of memory). */
static int argv_reserve(argv_buf *a, size_t n)
{
    if (n <= a->cap)
        return 1;
    size_t cap = a->cap ? a->cap : 16;
    while (cap < n)
        cap *= 2;
    const char **v = realloc(a->argv, cap * sizeof *v);
    if (v)
        a->argv = v;
    size_t *l = v ? realloc(a->argl, cap * sizeof *l) : NULL;
    if (l)
        a->argl = l;
    if (!v || !l)
        return 0;
    a->cap = cap;
    return 1;
}

static void argv_free(argv_buf *a)
{
    free(a->argv);
    free(a->argl);
    memset(a, 0, sizeof *a);
}

/* What one loop uses while it handles one message (its thread only). */
typedef struct scratch {
    kv_out out;                 /* replies ready to write, in order */
    kv_out batch[MAX_LOOPS];    /* requests for each shard of another loop */
    uint64_t batched;           /* which batches hold something */
    resp_parser rp;             /* the parser of connections between commands */
    argv_buf args;              /* a command's part for one shard */
} scratch;

static scratch scratches[MAX_LOOPS];

/* ---- wire format between connections and shards ------------------------------------ */

/*
 * A batch (MSG_BATCH, connection -> shard), records one after another:
 *   u32 seq, u32 command, u32 part, u32 argc, then argc x (u32 len, bytes)
 * Answers (MSG_ANSWERS, shard -> connection): u32 shard, then records
 *   u32 seq, u32 len, bytes
 * Both travel as owned buffers (tr_send_owned): no size limit, no copy.
 */
static void put32(kv_out *o, uint32_t v)
{
    out_raw(o, &v, 4);
}

static int get32(const char **p, const char *end, uint32_t *v)
{
    if (end - *p < 4)
        return 0;
    memcpy(v, *p, 4);
    *p += 4;
    return 1;
}

/* ---- a shard ------------------------------------------------------------------------ */

typedef struct shard {
    kv_shard sh;
    int loop;
    argv_buf args; /* a request's, from a batch */
} shard;

static int shard_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    shard *s = state;
    s->loop = tr_loop_index(self);
    if (s->loop < 0 || s->loop >= MAX_LOOPS)
        return TR_EINVAL;
    if (kv_init(&s->sh.ks, shard_seed ^ ((uint64_t)s->loop * 0x9e3779b97f4a7c15ull)) != 0)
        return TR_ENOMEM;
    int rc = tr_send_interval(self, tr_self(self), 100, MSG_EXPIRE_TICK, NULL, 0, NULL);
    if (rc != 0) {
        kv_free(&s->sh.ks);
        return rc;
    }
    local_shard[s->loop] = &s->sh;
    atomic_store(&shard_pid[s->loop], tr_self(self));
    return 0;
}

/* Runs a batch of requests from a connection on another loop; answers in one message. */
static int shard_batch(tr_actor *self, shard *s, const tr_msg *msg)
{
    const char *p = msg->data, *end = p + msg->len;
    kv_out ans = {0};
    put32(&ans, (uint32_t)s->loop);
    kv_ctx x = {.sh = &s->sh, .now_ms = now_ms(self)};
    uint32_t seq, ci, part, argc;
    while (get32(&p, end, &seq) && get32(&p, end, &ci) && get32(&p, end, &part) &&
           get32(&p, end, &argc)) {
        if (!argv_reserve(&s->args, argc)) {
            out_free(&ans);
            return TR_ENOMEM;
        }
        for (uint32_t i = 0; i < argc; i++) {
            uint32_t l;
            if (!get32(&p, end, &l) || (size_t)(end - p) < l) {
                out_free(&ans);
                return TR_EINVAL; /* we wrote it: a bug */
            }
            s->args.argv[i] = p;
            s->args.argl[i] = l;
            p += l;
        }
        const kv_cmd *cd = kv_cmd_at(ci);
        put32(&ans, seq);
        size_t at = ans.len;
        put32(&ans, 0);
        x.part = (int)part;
        if (cd)
            cd->exec(&x, (int)argc, s->args.argv, s->args.argl, &ans);
        s->sh.commands++;
        if (ans.oom)
            break;
        uint32_t n = (uint32_t)(ans.len - at - 4);
        memcpy(ans.b + at, &n, 4);
    }
    if (ans.oom) {
        out_free(&ans);
        return TR_ENOMEM; /* the shard fails; rest_for_one ends the waiting connections */
    }
    int rc = tr_send_owned(self, msg->from, MSG_ANSWERS, ans.b, ans.len, free);
    if (rc != 0)
        out_free(&ans); /* the connection has gone */
    return 0;
}

static int shard_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    shard *s = state;
    switch (msg->type) {
    case MSG_BATCH:
        return shard_batch(self, s, msg);
    case MSG_EXPIRE_TICK:
        kv_expire_cycle(&s->sh.ks, now_ms(self), 16);
        return 0;
    }
    return 0;
}

static void shard_terminate(tr_actor *self, void *state, const tr_exit_reason *reason)
{
    (void)reason;
    shard *s = state;
    if (s->loop >= 0 && s->loop < MAX_LOOPS && local_shard[s->loop] == &s->sh) {
        local_shard[s->loop] = NULL;
        tr_pid me = tr_self(self);
        atomic_compare_exchange_strong(&shard_pid[s->loop], &me, TR_PID_NONE);
    }
    kv_free(&s->sh.ks);
    argv_free(&s->args);
}

static void shard_describe(tr_actor *self, void *state, char *buf, size_t len)
{
    (void)self;
    shard *s = state;
    snprintf(buf, len, "%zu keys, %zu with a ttl, %llu commands", s->sh.ks.count,
             s->sh.ks.nexp, (unsigned long long)s->sh.commands);
}

static const tr_behavior shard_b = {.name = "shard", .state_size = sizeof(shard),
                                    .init = shard_init, .receive = shard_receive,
                                    .terminate = shard_terminate, .describe = shard_describe};

/* ---- a connection -------------------------------------------------------------------- */

/* A reply in the making: a command whose parts other shards still run. */
typedef struct slot {
    uint64_t wait;    /* shards whose part is still to come */
    uint8_t merge;    /* enum kv_merge */
    kv_out reply;     /* the reply (MERGE_NONE: the one part) */
    kv_out *parts;    /* merges: a part per shard */
    uint8_t *map;     /* MERGE_MGET: each key's shard */
    uint32_t nkeys;
    char *section;    /* MERGE_INFO: INFO's argument */
    size_t slen;
} slot;

typedef struct conn {
    tr_sock s;
    int loop;
    uint8_t closing;   /* QUIT, a protocol error: close once the replies are out */
    uint8_t throttled; /* the socket's writes are throttled */
    uint8_t paused;    /* reads are paused */
    resp_parser *rp;   /* the parser, while a command is partly read; else
                        * the loop's (an idle client costs no parser) */
    kv_out in;         /* a command's bytes that arrived so far */
    slot *slots;       /* a ring, oldest first */
    uint32_t head, nslots, capslots;
    uint32_t seq;      /* the sequence number of slots[head] */
    uint64_t commands;
} conn;

static slot *slot_at(conn *c, uint32_t i)
{
    return &c->slots[(c->head + i) % c->capslots];
}

static void slot_clear(slot *s)
{
    out_free(&s->reply);
    if (s->parts)
        for (unsigned i = 0; i < nshards; i++)
            out_free(&s->parts[i]);
    free(s->parts);
    free(s->map);
    free(s->section);
    memset(s, 0, sizeof *s);
}

/* A new slot at the end of the ring, or NULL (out of memory). */
static slot *slot_push(conn *c)
{
    if (c->nslots == c->capslots) {
        uint32_t cap = c->capslots ? c->capslots * 2 : 8;
        slot *n = calloc(cap, sizeof *n);
        if (!n)
            return NULL;
        for (uint32_t i = 0; i < c->nslots; i++)
            n[i] = *slot_at(c, i);
        free(c->slots);
        c->slots = n;
        c->capslots = cap;
        c->head = 0;
    }
    slot *s = slot_at(c, c->nslots++);
    memset(s, 0, sizeof *s);
    return s;
}

/* Where a reply made now goes: straight out, unless earlier ones wait. */
static kv_out *reply_to(conn *c, scratch *sc)
{
    if (c->nslots == 0)
        return &sc->out;
    slot *s = slot_push(c);
    return s ? &s->reply : NULL;
}

static void reply_error(conn *c, scratch *sc, const char *text)
{
    kv_out *o = reply_to(c, sc);
    if (o)
        out_err(o, "%s", text);
}

/* Skips one RESP value of ours (a bulk, a null, an integer) at *p. */
static const char *skip_value(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl)
        return end;
    if (*p == '$') {
        long long n = atoll(p + 1);
        if (n >= 0)
            nl += (size_t)n + 2;
    }
    return nl + 1 <= end ? nl + 1 : end;
}

static long long read_int(const kv_out *o, const char **p)
{
    const char *end = o->b + o->len;
    long long v = (*p < end && **p == ':') ? atoll(*p + 1) : 0;
    *p = skip_value(*p, end);
    return v;
}

/* All parts are in: makes the reply. */
static void slot_merge(slot *s)
{
    kv_out *o = &s->reply;
    size_t total = 32;
    for (unsigned i = 0; i < nshards; i++)
        total += s->parts[i].len;
    out_reserve(o, total); /* one allocation, not a doubling per part */
    for (unsigned i = 0; i < nshards; i++) /* a failed part is the answer */
        if (s->parts[i].len && s->parts[i].b[0] == '-') {
            out_raw(o, s->parts[i].b, s->parts[i].len);
            return;
        }
    switch (s->merge) {
    case MERGE_SUM: {
        long long sum = 0;
        for (unsigned i = 0; i < nshards; i++)
            if (s->parts[i].len) {
                const char *p = s->parts[i].b;
                sum += read_int(&s->parts[i], &p);
            }
        out_int(o, sum);
        break;
    }
    case MERGE_OK:
        out_ok(o);
        break;
    case MERGE_MGET: {
        const char *cur[MAX_LOOPS];
        for (unsigned i = 0; i < nshards; i++) /* past each part's "*n\r\n" */
            cur[i] = s->parts[i].len ? skip_value(s->parts[i].b, s->parts[i].b + s->parts[i].len)
                                     : NULL;
        out_array(o, s->nkeys);
        for (uint32_t k = 0; k < s->nkeys; k++) {
            unsigned sh = s->map[k];
            const char *end = s->parts[sh].b + s->parts[sh].len, *next;
            next = skip_value(cur[sh], end);
            out_raw(o, cur[sh], (size_t)(next - cur[sh]));
            cur[sh] = next;
        }
        break;
    }
    case MERGE_CONCAT: {
        long long n = 0;
        for (unsigned i = 0; i < nshards; i++)
            if (s->parts[i].len)
                n += atoll(s->parts[i].b + 1);
        out_array(o, n);
        for (unsigned i = 0; i < nshards; i++)
            if (s->parts[i].len) {
                const char *nl = memchr(s->parts[i].b, '\n', s->parts[i].len);
                if (nl)
                    out_raw(o, nl + 1, s->parts[i].len - (size_t)(nl + 1 - s->parts[i].b));
            }
        break;
    }
    case MERGE_INFO: {
        uint64_t keys = 0, expires = 0;
        for (unsigned i = 0; i < nshards; i++)
            if (s->parts[i].len) {
                const char *p = s->parts[i].b;
                keys += (uint64_t)read_int(&s->parts[i], &p);
                expires += (uint64_t)read_int(&s->parts[i], &p);
            }
        kv_info_text(o, s->section, s->slen, keys, expires);
        break;
    }
    }
}

/* A part of a slot's command has its answer (or failed: an error reply). */
static void slot_part(slot *s, unsigned sh, const char *p, size_t n)
{
    if (!(s->wait & ((uint64_t)1 << sh)))
        return;
    s->wait &= ~((uint64_t)1 << sh);
    out_raw(s->merge == MERGE_NONE ? &s->reply : &s->parts[sh], p, n);
    if (!s->wait && s->merge != MERGE_NONE)
        slot_merge(s);
}

/* Appends a request for shard `sh` to this loop's batch for it. */
static void batch_add(scratch *sc, unsigned sh, uint32_t seq, const kv_cmd *cd, int part,
                      int argc, const char *const *argv, const size_t *argl)
{
    kv_out *b = &sc->batch[sh];
    put32(b, seq);
    put32(b, kv_cmd_index(cd));
    put32(b, (uint32_t)part);
    put32(b, (uint32_t)argc);
    for (int i = 0; i < argc; i++) {
        put32(b, (uint32_t)argl[i]);
        out_raw(b, argv[i], argl[i]);
    }
    sc->batched |= (uint64_t)1 << sh;
}

/* Runs a command (or its part) here, now, on this loop's shard. */
static void run_local(conn *c, const kv_cmd *cd, int part, int argc, const char *const *argv,
                      const size_t *argl, int64_t now, kv_out *o)
{
    kv_shard *sh = local_shard[c->loop];
    if (!sh && cd->keys != KEYS_NONE) {
        out_err(o, "shard unavailable");
        return;
    }
    kv_ctx x = {.sh = sh, .now_ms = now, .part = part};
    cd->exec(&x, argc, argv, argl, o);
    if (sh)
        sh->commands++;
    if (x.quit)
        c->closing = 1;
}

/* A command whose keys live on more than one shard, or on another loop's. */
static void run_spread(conn *c, scratch *sc, const kv_cmd *cd, int argc, const char **argv,
                       const size_t *argl, int64_t now, unsigned only)
{
    slot *s = slot_push(c);
    if (!s) {
        c->closing = 1; /* out of memory: this client is dropped */
        return;
    }
    uint32_t seq = c->seq + c->nslots - 1;
    s->merge = (uint8_t)cd->merge;
    if (only != UINT32_MAX) { /* one shard, of another loop: the whole command */
        s->merge = MERGE_NONE;
        s->wait = (uint64_t)1 << only;
        batch_add(sc, only, seq, cd, 0, argc, argv, argl);
        return;
    }
    s->parts = calloc(nshards, sizeof *s->parts);
    if (!s->parts)
        goto oom;
    if (cd->keys == KEYS_ALL) {
        if (cd->merge == MERGE_INFO && argc > 1) {
            s->section = malloc(argl[1] ? argl[1] : 1);
            if (!s->section)
                goto oom;
            memcpy(s->section, argv[1], argl[1]);
            s->slen = argl[1];
        }
        s->wait = nshards == 64 ? ~0ull : (((uint64_t)1 << nshards) - 1);
        for (unsigned sh = 0; sh < nshards; sh++)
            if (sh != (unsigned)c->loop)
                batch_add(sc, sh, seq, cd, 1, argc, argv, argl);
        kv_out part = {0};
        run_local(c, cd, 1, argc, argv, argl, now, &part);
        slot_part(s, (unsigned)c->loop, part.b, part.len);
        out_free(&part);
        return;
    }
    /* keys (or key-value pairs) split by shard: a sub-command per shard */
    int step = cd->keys == KEYS_PAIRS ? 2 : 1;
    uint32_t nkeys = (uint32_t)(argc - 1) / (uint32_t)step;
    s->nkeys = nkeys;
    s->map = malloc(nkeys ? nkeys : 1);
    argv_buf *a = &sc->args;
    if (!s->map || !argv_reserve(a, (size_t)argc))
        goto oom;
    for (uint32_t k = 0; k < nkeys; k++) {
        s->map[k] = (uint8_t)shard_of(argv[1 + k * step], argl[1 + k * step]);
        s->wait |= (uint64_t)1 << s->map[k];
    }
    uint64_t todo = s->wait;
    for (unsigned sh = 0; sh < nshards; sh++) {
        if (!(todo & ((uint64_t)1 << sh)))
            continue;
        int n = 0;
        a->argv[n] = argv[0];
        a->argl[n++] = argl[0];
        for (uint32_t k = 0; k < nkeys; k++)
            if (s->map[k] == sh)
                for (int j = 0; j < step; j++) {
                    a->argv[n] = argv[1 + k * step + j];
                    a->argl[n++] = argl[1 + k * step + j];
                }
        if (sh == (unsigned)c->loop) {
            kv_out part = {0};
            run_local(c, cd, 1, n, a->argv, a->argl, now, &part);
            slot_part(s, sh, part.b, part.len);
            out_free(&part);
        } else {
            batch_add(sc, sh, seq, cd, 1, n, a->argv, a->argl);
        }
    }
    return;
oom:
    c->closing = 1;
}

/* One parsed command: here or where its keys are. */
static void run_command(conn *c, scratch *sc, int argc, const char **argv, const size_t *argl,
                        int64_t now)
{
    const kv_cmd *cd = kv_lookup(argv[0], argl[0]);
    kv_out *o;
    c->commands++;
    if (!cd) {
        if ((o = reply_to(c, sc)))
            kv_err_unknown(o, argc, argv, argl);
        return;
    }
    if ((cd->arity > 0 && cd->arity != argc) || argc < -cd->arity) {
        if ((o = reply_to(c, sc)))
            kv_err_arity(o, cd);
        return;
    }
    unsigned here = (unsigned)c->loop, only = here;
    switch (cd->keys) {
    case KEYS_NONE:
        break;
    case KEYS_ONE:
        only = shard_of(argv[1], argl[1]);
        break;
    case KEYS_EACH:
    case KEYS_PAIRS: {
        int step = cd->keys == KEYS_PAIRS ? 2 : 1;
        only = shard_of(argv[1], argl[1]);
        for (int i = 1 + step; i < argc && only != UINT32_MAX; i += step)
            if (shard_of(argv[i], argl[i]) != only)
                only = UINT32_MAX;
        if (cd->keys == KEYS_PAIRS && argc % 2 == 0)
            only = here; /* MSET's arity error, from here */
        break;
    }
    case KEYS_ALL:
        only = nshards == 1 ? here : UINT32_MAX;
        break;
    }
    if (only == here) {
        if ((o = reply_to(c, sc)))
            run_local(c, cd, 0, argc, argv, argl, now, o);
        else
            c->closing = 1;
        return;
    }
    run_spread(c, sc, cd, argc, argv, argl, now, only);
}

/* Writes the loop's output to the socket (copied: whatever the kernel
 * does not take at once is queued). 0, or the write's error. */
static int out_write(tr_actor *self, conn *c, scratch *sc)
{
    if (!sc->out.len)
        return 0;
    int rc = sc->out.oom ? TR_ENOMEM : tr_sock_write(self, c->s, sc->out.b, sc->out.len);
    sc->out.len = 0;
    sc->out.oom = 0;
    if (sc->out.cap > (1u << 20))
        out_free(&sc->out);
    return rc;
}

/* Moves the replies that are complete, in order, to the loop's output; a
 * large one goes to the socket as it is (tr_sock_write_owned: no copy).
 * 0, or a write's error. */
static int slots_flush(tr_actor *self, conn *c, scratch *sc)
{
    int rc = 0;
    while (c->nslots) {
        slot *s = slot_at(c, 0);
        if (s->wait)
            break;
        if (rc == 0 && s->reply.len >= BIG_REPLY && !s->reply.oom &&
            (rc = out_write(self, c, sc)) == 0) {
            rc = tr_sock_write_owned(self, c->s, s->reply.b, s->reply.len, free);
            if (rc == 0)
                memset(&s->reply, 0, sizeof s->reply); /* the socket owns it */
        } else if (rc == 0) {
            out_raw(&sc->out, s->reply.b, s->reply.len);
            if (s->reply.oom)
                sc->out.oom = 1;
        }
        slot_clear(s);
        c->head = (c->head + 1) % c->capslots;
        c->nslots--;
        c->seq++;
    }
    if (c->nslots == 0 && c->capslots > 64) { /* a burst made it big */
        free(c->slots);
        c->slots = NULL;
        c->capslots = 0;
        c->head = 0;
    }
    return rc;
}

/* Sends this loop's batches to their shards. A shard that is not there
 * (between its failure and its restart) answers with an error at once. */
static void batches_send(tr_actor *self, conn *c, scratch *sc)
{
    while (sc->batched) {
        unsigned sh = (unsigned)__builtin_ctzll(sc->batched);
        sc->batched &= sc->batched - 1;
        kv_out *b = &sc->batch[sh];
        tr_pid to = atomic_load(&shard_pid[sh]);
        int rc = b->oom ? TR_ENOMEM : to == TR_PID_NONE ? TR_ENOACTOR
                 : tr_send_owned(self, to, MSG_BATCH, b->b, b->len, free);
        if (rc == 0) {
            memset(b, 0, sizeof *b); /* the shard owns it now */
            continue;
        }
        /* fail every part this batch carried */
        const char *p = b->b, *end = b->b + b->len;
        uint32_t seq, ci, part, argc, l;
        while (!b->oom && get32(&p, end, &seq) && get32(&p, end, &ci) &&
               get32(&p, end, &part) && get32(&p, end, &argc)) {
            for (uint32_t i = 0; i < argc && get32(&p, end, &l); i++)
                p += l;
            uint32_t i = seq - c->seq;
            if (i < c->nslots) {
                static const char err[] = "-ERR shard unavailable\r\n";
                slot_part(slot_at(c, i), sh, err, sizeof err - 1);
            }
        }
        out_free(b);
        if (b->oom || rc == TR_ENOMEM)
            c->closing = 1;
    }
}

/* Writes what is ready; pauses or resumes reading; closes when it should.
 * Returns the handler's result. */
static int conn_settle(tr_actor *self, conn *c, scratch *sc)
{
    batches_send(self, c, sc);
    int rc = slots_flush(self, c, sc);
    if (rc == 0)
        rc = out_write(self, c, sc);
    sc->out.len = 0;
    if (rc != 0) /* TR_EFULL: a client that does not read its replies */
        return tr_exit(self, TR_EXIT_NORMAL);
    if (c->closing && c->nslots == 0) {
        tr_sock_close(self, c->s); /* the replies still go out (linger) */
        return tr_exit(self, TR_EXIT_NORMAL);
    }
    int pause = c->throttled || c->nslots > MAX_PENDING || c->closing;
    if (pause && !c->paused) {
        c->paused = 1;
        return tr_sock_read(self, c->s, TR_SOCK_PAUSE);
    }
    if (!pause && c->paused && c->nslots <= RESUME_PENDING) {
        c->paused = 0;
        return tr_sock_read(self, c->s, TR_SOCK_CONTINUOUS);
    }
    return 0;
}

static int conn_data(tr_actor *self, conn *c, const char *data, size_t len)
{
    scratch *sc = &scratches[c->loop];
    const char *buf = data;
    size_t blen = len, off = 0;
    if (c->in.len) { /* the rest of a command that began in an earlier read */
        if (!out_reserve(&c->in, len)) {
            c->closing = 1; /* out of memory: this client is dropped */
            return conn_settle(self, c, sc);
        }
        out_raw(&c->in, data, len);
        buf = c->in.b;
        blen = c->in.len;
    }
    int64_t now = now_ms(self);
    uint64_t before = c->commands;
    resp_parser *rp = c->rp ? c->rp : &sc->rp;
    int r = RESP_CMD;
    while (!c->closing && off < blen) {
        size_t used = 0;
        r = resp_parse(rp, buf + off, blen - off, &used);
        if (r == RESP_MORE)
            break;
        if (r == RESP_ERR) {
            reply_error(c, sc, rp->error);
            resp_reset(rp);
            c->closing = 1;
            off = blen;
            break;
        }
        off += used;
        if (rp->argc > 0)
            run_command(c, sc, rp->argc, rp->argv, rp->argl, now);
    }
    if (r == RESP_MORE && rp == &sc->rp) {
        /* a command is partly here: the parser's state stays with this
         * connection (moved, storage and all) until it is complete */
        c->rp = malloc(sizeof *c->rp);
        if (c->rp) {
            *c->rp = sc->rp;
            resp_init(&sc->rp, NULL);
        } else {
            resp_reset(&sc->rp);
            c->closing = 1;
        }
    } else if (r != RESP_MORE && c->rp) {
        resp_free(c->rp);
        free(c->rp);
        c->rp = NULL;
    }
    atomic_fetch_add_explicit(&commands_done[c->loop], c->commands - before,
                              memory_order_relaxed);
    size_t rest = blen - off;
    if (buf == c->in.b) {
        memmove(c->in.b, c->in.b + off, rest);
        c->in.len = rest;
    } else if (rest) {
        if (out_reserve(&c->in, rest + (c->rp ? resp_need(c->rp) : 0)) ||
            out_reserve(&c->in, rest)) {
            c->in.oom = 0;
            out_raw(&c->in, buf + off, rest);
        } else {
            c->closing = 1;
        }
    }
    if (c->in.len == 0 && c->in.cap > IN_KEEP)
        out_free(&c->in);
    return conn_settle(self, c, sc);
}

/* Answers from a shard of another loop. */
static int conn_answers(tr_actor *self, conn *c, const tr_msg *msg)
{
    const char *p = msg->data, *end = p + msg->len;
    uint32_t sh, seq, n;
    if (!get32(&p, end, &sh) || sh >= nshards)
        return 0;
    while (get32(&p, end, &seq) && get32(&p, end, &n) && (size_t)(end - p) >= n) {
        uint32_t i = seq - c->seq;
        if (i < c->nslots)
            slot_part(slot_at(c, i), sh, p, n);
        p += n;
    }
    return conn_settle(self, c, &scratches[c->loop]);
}

static int conn_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    conn *c = state;
    c->loop = tr_loop_index(self);
    atomic_fetch_add(&clients_now, 1);
    atomic_fetch_add(&clients_total, 1);
    return 0;
}

static int conn_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    conn *c = state;
    switch (msg->type) {
    case TR_MSG_SOCK_DATA:
        return conn_data(self, c, msg->data, msg->len);
    case MSG_ANSWERS:
        return conn_answers(self, c, msg);
    case TR_MSG_SOCK_GIVEN:
        c->s = msg->ref;
        return tr_sock_read(self, c->s, TR_SOCK_CONTINUOUS);
    case TR_MSG_SOCK_THROTTLED:
        c->throttled = 1;
        return conn_settle(self, c, &scratches[c->loop]);
    case TR_MSG_SOCK_UNTHROTTLED:
        c->throttled = 0;
        return conn_settle(self, c, &scratches[c->loop]);
    case TR_MSG_SOCK_EOF:    /* the client is gone: so is this actor (Redis */
    case TR_MSG_SOCK_CLOSED: /* drops a client at its EOF, replies or not) */
        return tr_exit(self, TR_EXIT_NORMAL);
    }
    return 0;
}

static void conn_terminate(tr_actor *self, void *state, const tr_exit_reason *reason)
{
    (void)self;
    (void)reason;
    conn *c = state;
    for (uint32_t i = 0; i < c->nslots; i++)
        slot_clear(slot_at(c, i));
    free(c->slots);
    out_free(&c->in);
    if (c->rp) {
        resp_free(c->rp);
        free(c->rp);
    }
    atomic_fetch_sub(&clients_now, 1);
}

static void conn_describe(tr_actor *self, void *state, char *buf, size_t len)
{
    conn *c = state;
    char peer[128] = "?";
    tr_sock_addr(self, c->s, 1, peer, sizeof peer);
    snprintf(buf, len, "%s, %llu commands, %u waiting", peer,
             (unsigned long long)c->commands, c->nslots);
}

static const tr_behavior conn_b = {.name = "conn", .state_size = sizeof(conn),
                                   .init = conn_init, .receive = conn_receive,
                                   .terminate = conn_terminate, .describe = conn_describe};

/* ---- an acceptor ----------------------------------------------------------------------- */

typedef struct acceptor {
    tr_sock listener;
    char addr[160];
} acceptor;

static int acceptor_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    acceptor *ac = state;
    tr_listen_opts lo = {0};
    /* a safety net past maxclients, which is checked (with an error reply) below */
    lo.max_conns = cfg.maxclients + 64;
    lo.conn.write_max = WRITE_MAX;
    lo.conn.idle_ms = cfg.timeout_s ? (tr_duration)cfg.timeout_s * 1000 : 0;
    if (cfg.unix_path[0]) {
        snprintf(ac->addr, sizeof ac->addr, "unix:%s", cfg.unix_path);
    } else {
        int port = cfg.port ? cfg.port : atomic_load(&bound_port);
        snprintf(ac->addr, sizeof ac->addr, strchr(cfg.host, ':') ? "[%s]:%d" : "%s:%d",
                 cfg.host, port);
        lo.reuseport = !cfg.spread;
    }
    int rc = tr_listen(self, ac->addr, &lo, &ac->listener);
    if (rc != 0) {
        fprintf(stderr, "kvstore: listen on %s: %s\n", ac->addr, tr_strerror(rc));
        return rc;
    }
    tr_sock_addr(self, ac->listener, 0, ac->addr, sizeof ac->addr);
    const char *colon = strrchr(ac->addr, ':');
    int zero = 0;
    if (!cfg.unix_path[0] && colon)
        atomic_compare_exchange_strong(&bound_port, &zero, atoi(colon + 1));
    return 0;
}

static int acceptor_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    acceptor *ac = state;
    if (msg->type == TR_MSG_SOCK_ACCEPTED) {
        tr_sock s = msg->ref;
        if (atomic_load(&clients_now) >= (int64_t)cfg.maxclients) {
            static const char full[] = "-ERR max number of clients reached\r\n";
            atomic_fetch_add(&clients_rejected, 1);
            tr_sock_write(self, s, full, sizeof full - 1);
            tr_sock_close(self, s);
            return 0;
        }
        tr_spawn_opts o;
        tr_spawn_opts_init(&o);
        o.loop = cfg.spread ? TR_LOOP_ROUND_ROBIN : TR_LOOP_DEFAULT;
        tr_pid c;
        if (tr_spawn(self, &conn_b, &o, &c) != 0) {
            tr_sock_close(self, s);
            return 0;
        }
        if (tr_sock_give(self, s, c) != 0) {
            tr_sock_close(self, s);
            tr_signal_exit(tr_runtime_of(self), c, TR_EXIT_SHUTDOWN);
        }
        return 0;
    }
    if (msg->type == TR_MSG_SOCK_CLOSED && msg->ref == ac->listener) {
        int32_t why = TR_ESYSTEM;
        if (msg->len >= sizeof why)
            memcpy(&why, msg->data, sizeof why);
        return why; /* the listener failed: the supervisor restarts us */
    }
    return 0;
}

static void acceptor_describe(tr_actor *self, void *state, char *buf, size_t len)
{
    acceptor *ac = state;
    tr_sock_info info;
    if (tr_sock_info_get(self, ac->listener, &info) == 0)
        snprintf(buf, len, "listening on %s, %u clients", ac->addr, info.conns);
    else
        snprintf(buf, len, "%s", ac->addr);
}

static const tr_behavior acceptor_b = {.name = "acceptor", .state_size = sizeof(acceptor),
                                       .init = acceptor_init, .receive = acceptor_receive,
                                       .describe = acceptor_describe};

/* ---- INFO's runtime part ------------------------------------------------------------------ */

static void info_runtime(kv_out *o)
{
    char t[512];
    uint64_t cmds = 0;
    for (unsigned i = 0; i < nshards; i++)
        cmds += atomic_load_explicit(&commands_done[i], memory_order_relaxed);
    int n = snprintf(t, sizeof t,
                     "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n"
                     "server_name:kvstore (troupe)\r\nprocess_id:%ld\r\ntcp_port:%d\r\n"
                     "uptime_in_seconds:%lld\r\nio_threads_active:%u\r\n\r\n"
                     "# Clients\r\nconnected_clients:%lld\r\nmaxclients:%u\r\n\r\n"
                     "# Stats\r\ntotal_connections_received:%llu\r\n"
                     "total_commands_processed:%llu\r\nrejected_connections:%llu\r\n\r\n",
                     (long)getpid(), atomic_load(&bound_port),
                     (long long)(time(NULL) - started), nshards,
                     (long long)atomic_load(&clients_now), cfg.maxclients,
                     (unsigned long long)atomic_load(&clients_total),
                     (unsigned long long)cmds,
                     (unsigned long long)atomic_load(&clients_rejected));
    out_raw(o, t, (size_t)n);
    tr_loop_stats st[MAX_LOOPS];
    int loops = tr_runtime_stats(the_rt, st, MAX_LOOPS);
    n = snprintf(t, sizeof t, "# Troupe\r\nloops:%d\r\n", loops);
    out_raw(o, t, (size_t)n);
    for (int i = 0; i < loops && i < MAX_LOOPS; i++) {
        n = snprintf(t, sizeof t,
                     "loop%d:handled=%llu,actors=%llu,timers=%llu,wakeups=%llu,spins=%llu,"
                     "blocked=%llu,lag_max_us=%llu\r\n",
                     i, (unsigned long long)st[i].handled, (unsigned long long)st[i].actors,
                     (unsigned long long)st[i].timers, (unsigned long long)st[i].wakeups,
                     (unsigned long long)st[i].spins, (unsigned long long)st[i].blocked,
                     (unsigned long long)st[i].lag_max_us);
        out_raw(o, t, (size_t)n);
    }
    out_raw(o, "\r\n", 2);
}

/* ---- main --------------------------------------------------------------------------------- */

static void usage(FILE *f, const char *argv0)
{
    size_t n;
    const kv_cmd *t = kv_commands(&n);
    fprintf(f,
            "usage: %s [--port N] [--host ADDR] [--unix PATH] [--threads N]\n"
            "       %*s [--maxclients N] [--timeout SECS] [--observe ADDR] [--help]\n"
            "A Redis-protocol (RESP2) key-value server on troupe.\n"
            "  --port N         TCP port (default 6379; 0: an ephemeral one)\n"
            "  --host ADDR      numeric address to listen on (default 127.0.0.1)\n"
            "  --unix PATH      listen on a Unix-domain socket instead\n"
            "  --threads N      event loops: a shard of the keys and a listener each\n"
            "                   (default: the CPUs; at most %d)\n"
            "  --maxclients N   clients at once (default 10000); one more gets\n"
            "                   \"-ERR max number of clients reached\"\n"
            "  --timeout SECS   close a client idle this long (default 0: never)\n"
            "  --observe ADDR   serve the runtime's metrics, tree and live page over HTTP\n"
            "                   on ADDR (e.g. 127.0.0.1:9464; port 0: an ephemeral one);\n"
            "                   prints \"observe: http://ADDR/\" on stderr\n"
            "Commands:",
            argv0, (int)strlen(argv0), "", MAX_LOOPS);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%s", i % 10 ? " " : "\n  ", t[i].name);
    fprintf(f,
            "\nLimits: a bulk string of at most 512 MiB, at most 1048576 arguments, an\n"
            "inline command of at most 64 KiB (as Redis); a client's unread replies at\n"
            "most 256 MiB (then it is disconnected). One database (SELECT 0). Keys are\n"
            "in memory only: nothing is saved. Multi-key commands are not atomic when\n"
            "their keys are on different shards.\n"
            "Runs until SIGINT or SIGTERM, then closes its listeners, lets the\n"
            "connections' replies go out, and exits.\n");
}

static long number(const char *s, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return (errno || end == s || *end || v < 0 || v > max) ? -1 : v;
}

static uint64_t random_seed(void)
{
    uint64_t s = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        if (fread(&s, sizeof s, 1, f) != 1)
            s = 0;
        fclose(f);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return s ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
}

int main(int argc, char **argv)
{
    kv_commands_init();
    long threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n = 0;
        if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
            usage(stdout, argv[0]);
            return 0;
        } else if (!v) {
            goto bad;
        } else if (strcmp(f, "--port") == 0 && (n = number(v, 65535)) >= 0) {
            cfg.port = (int)n;
        } else if (strcmp(f, "--host") == 0 && *v && strlen(v) < sizeof cfg.host) {
            snprintf(cfg.host, sizeof cfg.host, "%s", v);
        } else if (strcmp(f, "--unix") == 0 && *v && strlen(v) < sizeof cfg.unix_path - 1) {
            snprintf(cfg.unix_path, sizeof cfg.unix_path, "%s", v);
        } else if (strcmp(f, "--threads") == 0 && (n = number(v, MAX_LOOPS)) > 0) {
            threads = n;
        } else if (strcmp(f, "--maxclients") == 0 && (n = number(v, 1 << 24)) > 0) {
            cfg.maxclients = (uint32_t)n;
        } else if (strcmp(f, "--timeout") == 0 && (n = number(v, 1 << 30)) >= 0) {
            cfg.timeout_s = (uint32_t)n;
        } else if (strcmp(f, "--observe") == 0 && *v && strlen(v) < sizeof cfg.observe) {
            snprintf(cfg.observe, sizeof cfg.observe, "%s", v);
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
    if (!threads) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cpus < 1 ? 1 : cpus > MAX_LOOPS ? MAX_LOOPS : cpus;
    }
    if (cfg.unix_path[0]) {
        struct stat st; /* a stale socket file of an earlier run */
        if (stat(cfg.unix_path, &st) == 0 && S_ISSOCK(st.st_mode))
            unlink(cfg.unix_path);
        cfg.spread = 1;
    }
    shard_seed = random_seed();
    started = time(NULL);
    for (unsigned i = 0; i < MAX_LOOPS; i++)
        resp_init(&scratches[i].rp, NULL);

    tr_runtime_options o;
    tr_runtime_options_init(&o);
    o.loops = (unsigned)threads;
    o.stop_on_signals = 1;
    int rc = tr_runtime_create(&the_rt, &o);
    if (rc == 0)
        rc = tr_runtime_start(the_rt);
    if (rc != 0) {
        fprintf(stderr, "kvstore: runtime: %s\n", tr_strerror(rc));
        return 1;
    }
    if (cfg.observe[0]) {
        tr_observe_options oo = {.addr = cfg.observe};
        char bound[160];
        rc = tr_rt_observe(the_rt, &oo, bound, sizeof bound);
        if (rc != 0) {
            fprintf(stderr, "kvstore: observe on %s: %s\n", cfg.observe, tr_strerror(rc));
            tr_runtime_stop(the_rt);
            tr_runtime_wait(the_rt);
            tr_runtime_free(the_rt);
            return 1;
        }
        fprintf(stderr, "observe: http://%s/\n", bound);
    }
    nshards = tr_runtime_loops(the_rt);
    kv_set_info_hook(info_runtime);
    unsigned nacc = cfg.spread ? 1 : nshards;

    /* The tree: the shards first (rest_for_one: what comes after depends
     * on them), then the acceptors, started in order. */
    tr_child_spec kids[2 * MAX_LOOPS];
    char ids[2 * MAX_LOOPS][24];
    unsigned k = 0;
    for (unsigned i = 0; i < nshards; i++, k++) {
        snprintf(ids[k], sizeof ids[k], "shard-%u", i);
        kids[k] = (tr_child_spec){.id = ids[k], .behavior = &shard_b, .loop = TR_LOOP(i)};
    }
    for (unsigned i = 0; i < nacc; i++, k++) {
        snprintf(ids[k], sizeof ids[k], "acceptor-%u", i);
        kids[k] = (tr_child_spec){.id = ids[k], .behavior = &acceptor_b, .loop = TR_LOOP(i)};
    }
    tr_sup_spec spec = {.strategy = TR_REST_FOR_ONE, .max_restarts = 10, .period_ms = 10000,
                        .children = kids, .nchildren = k};
    tr_pid sup;
    rc = tr_rt_sup_spawn(the_rt, &spec, NULL, &sup);
    if (rc != 0) {
        fprintf(stderr, "kvstore: the server did not start: %s\n", tr_strerror(rc));
        tr_runtime_free(the_rt);
        return 1;
    }
    if (cfg.unix_path[0])
        printf("kvstore: listening on unix:%s with %u loops\n", cfg.unix_path, nshards);
    else
        printf("kvstore: listening on %s%s%s:%d with %u loops\n", strchr(cfg.host, ':') ? "[" : "",
               cfg.host, strchr(cfg.host, ':') ? "]" : "", atomic_load(&bound_port), nshards);
    fflush(stdout);

    tr_runtime_wait(the_rt);
    tr_runtime_free(the_rt);
    for (unsigned i = 0; i < MAX_LOOPS; i++) {
        out_free(&scratches[i].out);
        for (unsigned j = 0; j < MAX_LOOPS; j++)
            out_free(&scratches[i].batch[j]);
        resp_free(&scratches[i].rp);
        argv_free(&scratches[i].args);
    }
    if (cfg.unix_path[0])
        unlink(cfg.unix_path);
    printf("kvstore: stopped; %llu clients served\n",
           (unsigned long long)atomic_load(&clients_total));
    return 0;
}
