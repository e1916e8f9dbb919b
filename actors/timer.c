/*
 * timer.c — the per-loop timer heap and id table (see timer.h).
 */
#include "timer.h"

#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX

void tr__timers_init(tr__timers *ts)
{
    memset(ts, 0, sizeof *ts);
    tr__idtab_init(&ts->ids);
}

static void free_timer(void *t, void *pool)
{
    tr__pool_free(pool, t);
}

void tr__timers_destroy(tr__timers *ts, tr__pool *pool)
{
    tr__idtab_each(&ts->ids, free_timer, pool);
    free(ts->heap);
    tr__idtab_destroy(&ts->ids);
    tr__timers_init(ts);
}

static inline bool earlier(const tr__timer *a, const tr__timer *b)
{
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static inline void place(tr__timers *ts, uint32_t pos, tr__timer *t)
{
    ts->heap[pos] = t;
    t->heap_pos = pos;
}

static void sift_up(tr__timers *ts, uint32_t pos)
{
    tr__timer *t = ts->heap[pos];
    while (pos > 0) {
        uint32_t parent = (pos - 1) / 2;
        if (!earlier(t, ts->heap[parent]))
            break;
        place(ts, pos, ts->heap[parent]);
        pos = parent;
    }
    place(ts, pos, t);
}

static void sift_down(tr__timers *ts, uint32_t pos)
{
    tr__timer *t = ts->heap[pos];
    for (;;) {
        uint32_t child = 2 * pos + 1;
        if (child >= ts->n)
            break;
        if (child + 1 < ts->n && earlier(ts->heap[child + 1], ts->heap[child]))
            child++;
        if (!earlier(ts->heap[child], t))
            break;
        place(ts, pos, ts->heap[child]);
        pos = child;
    }
    place(ts, pos, t);
}

tr__timer *tr__timer_new(tr__timers *ts, tr__pool *pool, size_t len, uint64_t *id)
{
    /* Reserve room in the heap now, so arming can never fail. */
    if (ts->n + 1 > ts->cap && !tr__grow(&ts->heap, &ts->cap, sizeof *ts->heap, 64))
        return NULL;
    if (!tr__idtab_reserve(&ts->ids))
        return NULL;
    tr__timer *t = tr__pool_alloc(pool, sizeof *t + len);
    if (!t)
        return NULL;
    *id = tr__idtab_add(&ts->ids, t);
    *t = (tr__timer){.heap_pos = NONE, .id_index = (uint32_t)*id, .len = (uint32_t)len};
    return t;
}

void tr__timer_arm(tr__timers *ts, tr__timer *t, uint64_t deadline)
{
    tr__timer_disarm(ts, t);
    t->deadline = deadline;
    t->seq = ts->seq++;
    if (ts->n == ts->cap && !tr__grow(&ts->heap, &ts->cap, sizeof *ts->heap, 64))
        return; /* cannot happen: tr__timer_new reserved a place */
    place(ts, ts->n++, t);
    sift_up(ts, t->heap_pos);
}

void tr__timer_disarm(tr__timers *ts, tr__timer *t)
{
    uint32_t pos = t->heap_pos;
    if (pos == NONE)
        return;
    t->heap_pos = NONE;
    tr__timer *last = ts->heap[--ts->n];
    if (pos == ts->n)
        return;
    place(ts, pos, last);
    if (pos > 0 && earlier(last, ts->heap[(pos - 1) / 2]))
        sift_up(ts, pos);
    else
        sift_down(ts, pos);
}

void tr__timer_free(tr__timers *ts, tr__pool *pool, tr__timer *t)
{
    tr__timer_disarm(ts, t);
    tr__idtab_remove(&ts->ids, t->id_index);
    tr__pool_free(pool, t);
}

tr__timer *tr__timer_find(tr__timers *ts, uint64_t id)
{
    return tr__idtab_find(&ts->ids, id);
}
