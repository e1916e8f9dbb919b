/*
 * sessions.h — a small service to test: a session store that forgets a
 * session left idle for its time to live and tells a listener so.
 * test_sessions.c tests it with the test kit (docs/testing.md).
 */
#ifndef SESSIONS_H
#define SESSIONS_H

#include <stdint.h>

#include "troupe.h"

enum {
    SESS_OPEN = 100, /* call, a uint64_t id: int32_t 0, or SESS_EFULL / TR_EINVAL */
    SESS_TOUCH,      /* call, a uint64_t id: int32_t 0, or TR_ENOTFOUND / TR_EINVAL */
    SESS_COUNT,      /* call, no payload: uint32_t sessions open */
    SESS_EXPIRED,    /* to the listener, a uint64_t id: it was idle too long */
};

#define SESS_MAX 64
#define SESS_EFULL TR_EUSER(1) /* SESS_MAX sessions open */

typedef struct sessions_config {
    tr_pid listener;   /* who hears of expiries */
    uint32_t ttl_ms;   /* idle time after which a session expires */
    uint32_t sweep_ms; /* how often the store looks */
} sessions_config;

/* The store; its spawn argument is a sessions_config. */
extern const tr_behavior sessions_behavior;

#endif
