/*
 * chan.h — the channel transport's internal API, for the layer that feeds
 * channel items to actors (actors/chansub.c).
 *
 * channels/ knows no actor. The transport (chan.c) is the memory of a
 * channel, its two rings, the send and receive paths, close, the counters
 * and the blocking waits of plain threads. What waits without blocking a
 * thread — a consumer with nothing to take, a producer waiting for room —
 * is kept here as something opaque: a parked consumer is a node the layer
 * above embeds in its own record (tr__chan_consumer), a parked producer a
 * token (two words the layer above chooses) in arrival order. The
 * transport does the waiting's Dekker handshake; when a send, a receive or
 * a close must wake one of them it calls a hook the layer above gave at
 * creation (tr__chan_hooks) with that waiter's token. A hook runs only
 * when someone is parked (a counter read after the ring operation), so a
 * channel that nobody waits on never calls one, and no hook runs under a
 * lock.
 *
 * Thread rules: everything here may be called from any thread, but for
 * what the comments restrict; a consumer node is parked and detached by
 * one thread at a time (its owner's).
 */
#ifndef TR_CHAN_H
#define TR_CHAN_H

#include <stdbool.h>
#include <stdint.h>

#include "troupe.h"

/* What identifies a waiter to the layer above (e.g. who to wake and with
 * what). The transport only stores and copies it. */
typedef struct tr__chan_token {
    uint64_t id;
    uint64_t arg;
} tr__chan_token;

/* A consumer that parks when there is nothing to take: embedded in the
 * layer above's record, attached to one channel while it consumes. */
typedef struct tr__chan_consumer {
    struct tr__chan_consumer *next; /* in the channel's list (its spinlock) */
    tr__chan_token token;           /* set before tr__chan_attach, constant after */
    int parked;                     /* 1 while parked (atomic) */
} tr__chan_consumer;

/*
 * The layer above's side, given at creation; each hook may be NULL. They
 * run on the thread whose send, receive or close made the wake necessary
 * (any thread), with no lock held; keep them short and never block.
 */
typedef struct tr__chan_hooks {
    /* A parked consumer (its token) was unparked because an item came or
     * the channel closed: make it take again (tr__chan_take). */
    void (*consumer)(void *owner, const tr__chan_token *token);
    /* A parked producer (its token), the oldest, was unparked because a
     * slot came free or the channel closed: tell it. False if it could
     * not be told (it is gone): the next one is tried. */
    bool (*producer)(void *owner, const tr__chan_token *token);
    /* False if the calling thread must not block (tr_chan_send_wait and
     * tr_chan_recv_wait then fail with TR_EWRONGTHREAD). */
    bool (*may_block)(void *owner);
    /* A blocking wait that cannot go on yet, before it sleeps (`since`:
     * when it began, uv_hrtime): 1 if the layer above did work that may
     * have made room or an item (look again at once), -1 if nothing ever
     * can (give up: TR_ETIMEDOUT), 0 to sleep as usual. The test kit's
     * deterministic runtime, which has no thread of its own, runs its
     * steps here. */
    int (*drive)(void *owner, uint64_t since);
} tr__chan_hooks;

/* An item in its slot, as tr__chan_take hands it over. */
typedef struct tr__chan_item {
    uint32_t len;
    uint32_t pad;
    unsigned char data[];
} tr__chan_item;

/*
 * Creates a channel (opts as tr_chan_create's; NULL: the defaults) whose
 * items may be at most `item_limit` bytes; `hooks` (static, may be NULL)
 * and `owner` (passed to the hooks) are the layer above's. 0 with *out
 * set and one reference (the caller's); TR_EINVAL, TR_ENOMEM.
 */
int tr__chan_create(const tr_chan_opts *opts, uint32_t item_limit,
                    const tr__chan_hooks *hooks, void *owner, tr_chan **out);
/* The `owner` ch was created with. */
void *tr__chan_owner(const tr_chan *ch);

/* ---- consuming in place --------------------------------------------------------- */

/* Takes the oldest item, left in its slot, or NULL if there is none (the
 * channel may still be open, or drained). The caller owns the slot until
 * it gives it back. */
tr__chan_item *tr__chan_take(tr_chan *ch);
/* Gives a taken item's slot back (the item counts as received) and wakes
 * a parked producer or blocked sender if there is one. */
void tr__chan_give_back(tr_chan *ch, tr__chan_item *item);
/* True when no item can ever come: closed, no send in flight, empty. */
bool tr__chan_drained(tr_chan *ch);
/* Process-wide counts of sends refused full and receives that found the
 * channel empty (the runtime's metrics). Any thread. */
void tr__chan_events(uint64_t *full, uint64_t *empty);

/* ---- parked consumers ----------------------------------------------------------- */

/* Adds `c` (token set, not parked) to ch's consumers: it counts as a
 * subscriber in tr_chan_stats_get. The caller holds a reference to ch
 * until it detaches. */
void tr__chan_attach(tr_chan *ch, tr__chan_consumer *c);
/* Removes `c` (parked or not); no hook is called for it afterwards. */
void tr__chan_detach(tr_chan *ch, tr__chan_consumer *c);
/*
 * `c` found nothing to take: parks it — registered first, then a look
 * again, so a wake-up cannot be lost. True: parked, the consumer hook
 * will be called with c's token once an item comes or the channel closes
 * (it may be on its way already). False: an item came or the channel
 * closed meanwhile and `c` is not parked: take again.
 */
bool tr__chan_park(tr_chan *ch, tr__chan_consumer *c);

/* ---- parked producers ------------------------------------------------------------- */

/*
 * Parks a producer that found the channel full until a slot comes free or
 * the channel closes; the producer hook is then called once with `token`
 * (oldest first). If room came meanwhile, that happens at once. 0, or
 * TR_ENOMEM.
 */
int tr__chan_park_producer(tr_chan *ch, const tr__chan_token *token);

#endif /* TR_CHAN_H */
