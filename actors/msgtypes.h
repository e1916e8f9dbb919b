/*
 * msgtypes.h — the one table of the message types the runtime reserves.
 *
 * User message types are 0 .. TR_MSG_USER_MAX; every type above it belongs
 * to the runtime and is listed here, once: the public notices (whose
 * values troupe.h #defines, checked against this table below), the
 * supervisor requests users may call, and the types the runtime uses
 * privately (describe, the group deadline, the supervisor's own timers and
 * start wait). A type that is not in the table is never sent by anyone.
 *
 * The rule, enforced on every public send path (tr_send, tr_rt_send, the
 * _owned forms, tr_send_after, tr_send_interval, tr_call, tr_rt_call,
 * tr_reply, channel subscription and room types): a type above
 * TR_MSG_USER_MAX is TR_EINVAL, except that tr_call / tr_rt_call may use a
 * type whose `users` column is CALL, and tr_reply may answer a request of
 * such a type with the same type. Everything else reaches actors only
 * through the runtime's internal paths (tr__send, tr__call_raw, tr__rt_call_raw,
 * tr__reply_raw, tr__send_after_self), so an actor that receives a reserved
 * type knows the runtime made it — or, for CALL types, that its payload
 * is a user's and must be checked (tr__msgtype_len_ok) before it is read.
 *
 * X(name, value, vis, users, min_len, max_len, what)
 *  - vis: PUBLIC — troupe.h defines TR_MSG_<name> with this value;
 *         PRIVATE — this header defines TR__MSG_<name>.
 *  - users: CALL — users may call it (and answer it) through the public
 *           API; NONE — only the runtime sends it.
 *  - min_len, max_len: the payload's length rule, in bytes, checked by
 *    whoever reads the payload (TR__LEN_ANY: no upper bound but the
 *    runtime's max_payload).
 */
#ifndef TR_MSGTYPES_H
#define TR_MSGTYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "troupe.h"

#define TR__LEN_ANY UINT32_MAX

#define TR__MSGTYPE_MAP(X)                                                                  \
    /* Notices the runtime delivers to actors (troupe.h documents each). */                 \
    X(CALL_TIMEOUT, 0xffff0001u, PUBLIC, NONE, 0, 0, "a call's timeout")                    \
    X(JOB_DONE, 0xffff0002u, PUBLIC, NONE, 0, TR__LEN_ANY, "a job's result")                \
    X(JOB_FAILED, 0xffff0003u, PUBLIC, NONE, sizeof(int32_t), sizeof(int32_t),              \
      "a job's error code")                                                                 \
    X(DOWN, 0xffff0004u, PUBLIC, NONE, sizeof(tr_down), TR__LEN_ANY,                        \
      "a monitored actor ended: tr_down + result")                                          \
    X(EXIT, 0xffff0005u, PUBLIC, NONE, sizeof(tr_down), sizeof(tr_down),                    \
      "a trapped exit signal: tr_down")                                                     \
    X(STARTED, 0xffff0006u, PUBLIC, NONE, 0, 0, "a child's init succeeded")                \
    X(GROUP_DONE, 0xffff0007u, PUBLIC, NONE, sizeof(tr_group_done), TR__LEN_ANY,            \
      "a task group's completion")                                                          \
    X(CHAN_END, 0xffff0008u, PUBLIC, NONE, 0, 0, "a channel subscription's end")           \
    X(CALL_FAILED, 0xffff0009u, PUBLIC, NONE, sizeof(tr_call_failed),                      \
      sizeof(tr_call_failed), "a call whose callee ended without answering")               \
    /* Supervisor requests users call (tr_call, tr_rt_call, the tr_rt_sup_* helpers). */   \
    X(SUP_WHICH, 0xffff0010u, PUBLIC, CALL, 0, 0, "list the children")                      \
    X(SUP_START, 0xffff0011u, PUBLIC, CALL, 0, TR__LEN_ANY,                                 \
      "start a dynamic child with this argument")                                           \
    X(SUP_STOP, 0xffff0012u, PUBLIC, CALL, sizeof(tr_pid), sizeof(tr_pid),                  \
      "stop the child with this pid")                                                       \
    /* ADD carries a behaviour pointer: only tr_sup_add_child and                           \
     * tr_rt_sup_add_child make it. Its payload (a flattened child spec) is                 \
     * checked against its own lengths by the supervisor. */                                \
    X(SUP_ADD, 0xffff0013u, PUBLIC, NONE, 0, TR__LEN_ANY, "add a child spec")               \
    X(SUP_RESTART, 0xffff0014u, PUBLIC, CALL, 1, TR_CHILD_ID_MAX,                           \
      "restart the stopped child with this id")                                             \
    X(SUP_DELETE, 0xffff0015u, PUBLIC, CALL, 1, TR_CHILD_ID_MAX,                            \
      "forget the stopped child with this id")                                              \
    /* The runtime's private types. */                                                      \
    X(SUP_WAIT, 0xffff0016u, PRIVATE, NONE, 0, 0,                                           \
      "tr_rt_sup_spawn waits for the first start")                                          \
    X(SUP_KILL, 0xffff0017u, PRIVATE, NONE, sizeof(tr_pid), sizeof(tr_pid),                 \
      "supervisor timer: kill the child still stopping")                                    \
    X(SUP_RESTART_DUE, 0xffff0018u, PRIVATE, NONE, sizeof(uint32_t), sizeof(uint32_t),      \
      "supervisor timer: a child's restart backoff is over (its serial)")                   \
    X(DESCRIBE, 0xffff001fu, PRIVATE, NONE, 0, 0, "tr_runtime_tree asks an actor")          \
    X(GROUP_DEADLINE, 0xffff0021u, PRIVATE, NONE, sizeof(tr_group_id), sizeof(tr_group_id), \
      "a task group's deadline passed (its id)")

/* The private types' values (checked against the table below). */
#define TR__MSG_SUP_WAIT 0xffff0016u
#define TR__MSG_SUP_KILL 0xffff0017u
#define TR__MSG_SUP_RESTART_DUE 0xffff0018u
#define TR__MSG_DESCRIBE 0xffff001fu
#define TR__MSG_GROUP_DEADLINE 0xffff0021u

/* Every row's value matches its #define and lies above the user range. */
#define TR__MT_NAME_PUBLIC(name) TR_MSG_##name
#define TR__MT_NAME_PRIVATE(name) TR__MSG_##name
#define TR__MT_ASSERT(name, value, vis, users, lo, hi, what)                               \
    _Static_assert(TR__MT_NAME_##vis(name) == (value), "msgtypes.h: " #name " differs");  \
    _Static_assert((value) > TR_MSG_USER_MAX, "msgtypes.h: " #name " is a user type");    \
    _Static_assert((hi) + 1ull > (lo), "msgtypes.h: " #name "'s length rule");
TR__MSGTYPE_MAP(TR__MT_ASSERT)
#undef TR__MT_ASSERT

/* Whether users may call `type` (and answer a call of it with it): a user
 * type, or a CALL row. The switch also makes a duplicate value in the
 * table a compile error. Any thread. */
#define TR__MT_USERS_CALL true
#define TR__MT_USERS_NONE false
static inline bool tr__msgtype_user_call(uint32_t type)
{
    if (type <= TR_MSG_USER_MAX)
        return true;
    switch (type) {
#define TR__MT_CASE(name, value, vis, users, lo, hi, what)                                 \
    case value:                                                                             \
        return TR__MT_USERS_##users;
        TR__MSGTYPE_MAP(TR__MT_CASE)
#undef TR__MT_CASE
    default:
        return false;
    }
}

/* Whether users may send `type` one way (tr_send and every other send
 * that is not a call or a reply): user types only. Any thread. */
static inline bool tr__msgtype_user_send(uint32_t type)
{
    return type <= TR_MSG_USER_MAX;
}

/* Whether a payload of `len` bytes fits the table's rule for `type`. User
 * types have no rule here (their protocol is the application's). Check
 * this before reading the payload of a reserved type. Any thread. */
static inline bool tr__msgtype_len_ok(uint32_t type, size_t len)
{
    switch (type) {
#define TR__MT_LEN(name, value, vis, users, lo, hi, what)                                  \
    case value:                                                                             \
        return len - (size_t)(lo) <= (size_t)(hi) - (size_t)(lo); /* lo <= len <= hi */
        TR__MSGTYPE_MAP(TR__MT_LEN)
#undef TR__MT_LEN
    default:
        return true;
    }
}

/*
 * The refusal of a reserved request, in its reply's form: for the
 * supervisor requests that start a child (START, ADD, RESTART) a
 * tr_sup_started {rc, TR_PID_NONE}, for every other an int32_t rc. Made in
 * *out; returns its length. The supervisor refuses with it, and so does
 * the runtime for an actor that does not serve reserved requests
 * (dispatch.c). Any thread.
 */
typedef union tr__refusal {
    tr_sup_started started;
    int32_t rc;
} tr__refusal;

static inline size_t tr__msgtype_refusal(uint32_t type, int32_t rc, tr__refusal *out)
{
    if (type == TR_MSG_SUP_START || type == TR_MSG_SUP_ADD || type == TR_MSG_SUP_RESTART) {
        out->started = (tr_sup_started){rc, TR_PID_NONE};
        return sizeof out->started;
    }
    out->rc = rc;
    return sizeof out->rc;
}

#endif /* TR_MSGTYPES_H */
