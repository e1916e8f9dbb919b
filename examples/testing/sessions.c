/*
 * sessions.c — the session store (sessions.h). Every sweep_ms it ends the
 * sessions idle for ttl_ms or more and sends their ids to the listener.
 * Time is the runtime clock (tr_now): under the test kit, virtual.
 */
#include <string.h>

#include "sessions.h"

typedef struct session {
    uint64_t id;
    uint64_t seen; /* runtime clock, ns */
} session;

typedef struct store {
    sessions_config cfg;
    session s[SESS_MAX];
    uint32_t n;
} store;

static int store_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    store *st = state;
    if (len != sizeof st->cfg)
        return TR_EINVAL;
    memcpy(&st->cfg, arg, sizeof st->cfg);
    if (st->cfg.ttl_ms == 0 || st->cfg.sweep_ms == 0)
        return TR_EINVAL;
    return tr_send_interval(self, tr_self(self), st->cfg.sweep_ms, SESS_EXPIRED, NULL, 0, NULL);
}

static session *find(store *st, uint64_t id)
{
    for (uint32_t i = 0; i < st->n; i++)
        if (st->s[i].id == id)
            return &st->s[i];
    return NULL;
}

static int answer(tr_actor *self, const tr_msg *msg, int32_t rc)
{
    return tr_reply(self, msg, msg->type, &rc, sizeof rc);
}

/* Ends the sessions idle for ttl_ms: the listener hears of each. */
static int sweep(tr_actor *self, store *st)
{
    uint64_t now = tr_now(tr_runtime_of(self)), ttl = (uint64_t)st->cfg.ttl_ms * 1000000u;
    for (uint32_t i = 0; i < st->n;) {
        if (now - st->s[i].seen < ttl) {
            i++;
            continue;
        }
        int rc = tr_send(self, st->cfg.listener, SESS_EXPIRED, &st->s[i].id, sizeof st->s[i].id);
        if (rc != 0 && rc != TR_ENOACTOR)
            return rc; /* an expiry nobody heard of: fail, and be restarted */
        st->s[i] = st->s[--st->n];
    }
    return 0;
}

static int store_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    store *st = state;
    uint64_t id;
    if (msg->type == SESS_EXPIRED && msg->from == tr_self(self))
        return sweep(self, st);
    if (!(msg->flags & TR_MSG_REQUEST))
        return 0;
    if (msg->type == SESS_COUNT)
        return tr_reply(self, msg, SESS_COUNT, &st->n, sizeof st->n);
    if ((msg->type != SESS_OPEN && msg->type != SESS_TOUCH) || msg->len != sizeof id)
        return answer(self, msg, TR_EINVAL);
    memcpy(&id, msg->data, sizeof id);
    session *s = find(st, id);
    uint64_t now = tr_now(tr_runtime_of(self));
    if (msg->type == SESS_TOUCH) {
        if (!s)
            return answer(self, msg, TR_ENOTFOUND);
        s->seen = now;
        return answer(self, msg, 0);
    }
    if (!s) {
        if (st->n == SESS_MAX)
            return answer(self, msg, SESS_EFULL);
        s = &st->s[st->n++];
        s->id = id;
    }
    s->seen = now;
    return answer(self, msg, 0);
}

const tr_behavior sessions_behavior = {
    .name = "sessions",
    .state_size = sizeof(store),
    .init = store_init,
    .receive = store_receive,
};
