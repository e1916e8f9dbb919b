/*
 * pingpong — the first troupe program to read.
 *
 * main() starts a runtime and spawns a "table" actor. The table spawns two
 * players as its children: "ping" on its own loop and "pong" on the next
 * loop, so their messages cross threads. They hit a ball back and forth,
 * printing the first few rallies; then the table times a million quick
 * round trips between two players on one loop, calls a player to ask for
 * its score (request/reply), and stops the runtime. Stopping shuts the tree
 * down in order: children first, each running its terminate callback.
 *
 *   ./build/examples/pingpong
 */
#include <stdio.h>
#include <string.h>
#include <troupe.h>

enum { BALL = 1, SERVE = 2, SCORE = 3 };

/* ---- a player: returns every ball it gets -------------------------------- */

typedef struct ball {
    uint32_t hits;  /* how many times the ball has been hit */
    uint32_t limit; /* the rally ends at this many */
    int verbose;
} ball;

typedef struct serve_order {
    tr_pid to;
    ball ball;
} serve_order;

typedef struct player {
    uint32_t returned;
} player;

static int player_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    player *p = state;
    if (msg->type == SCORE) /* a call: answer it */
        return tr_reply(self, msg, SCORE, &p->returned, sizeof p->returned);
    if (msg->type == SERVE) { /* start a rally with another player */
        serve_order o;
        memcpy(&o, msg->data, sizeof o);
        return tr_send(self, o.to, BALL, &o.ball, sizeof o.ball);
    }
    if (msg->type != BALL)
        return 0;
    ball b;
    memcpy(&b, msg->data, sizeof b); /* the payload is only valid in here */
    if (b.verbose)
        printf("  " TR_PID_FMT " on loop %d <- hit %u from " TR_PID_FMT "\n",
               TR_PID_ARGS(tr_self(self)), tr_loop_index(self), b.hits,
               TR_PID_ARGS(msg->from));
    p->returned++;
    b.hits++;
    /* The rally is over: tell the table (our parent). */
    if (b.hits >= b.limit)
        return tr_send(self, tr_parent(self), BALL, &b, sizeof b);
    return tr_send(self, msg->from, BALL, &b, sizeof b);
}

static void player_terminate(tr_actor *self, void *state, const tr_exit_reason *why)
{
    player *p = state;
    printf("  player " TR_PID_FMT " stops (%s) after returning %u balls\n",
           TR_PID_ARGS(tr_self(self)), why->text, p->returned);
}

static const tr_behavior player_behavior = {
    .name = "player",
    .state_size = sizeof(player),
    .receive = player_receive,
    .terminate = player_terminate,
};

/* ---- the table: sets up matches and referees them ------------------------ */

typedef struct table {
    tr_pid ping, pong;  /* the cross-loop pair */
    tr_pid fast1, fast2; /* the same-loop pair */
    uint64_t t0;
    tr_ref score_call;
    int stage;
} table;

static int table_init(tr_actor *self, void *state, const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    table *t = state;
    tr_runtime *rt = tr_runtime_of(self);
    unsigned loops = tr_runtime_loops(rt);
    tr_spawn_opts opts;
    tr_spawn_opts_init(&opts); /* default: a child lives on its parent's loop */
    int rc = tr_spawn(self, &player_behavior, &opts, &t->ping);
    if (rc != 0)
        return rc;
    int next = (int)((unsigned)(tr_loop_index(self) + 1) % loops);
    opts.loop = TR_LOOP(next); /* the next loop, named explicitly */
    if ((rc = tr_spawn(self, &player_behavior, &opts, &t->pong)) != 0)
        return rc;
    printf("table " TR_PID_FMT " on loop %d: ping " TR_PID_FMT ", pong " TR_PID_FMT
           " (on loop %d of %u)\n",
           TR_PID_ARGS(tr_self(self)), tr_loop_index(self), TR_PID_ARGS(t->ping),
           TR_PID_ARGS(t->pong), next, loops);
    /* Ping serves to pong: a rally of 6 hits, printed. */
    serve_order o = {.to = t->pong, .ball = {.hits = 0, .limit = 6, .verbose = 1}};
    return tr_send(self, t->ping, SERVE, &o, sizeof o);
}

static int table_receive(tr_actor *self, void *state, const tr_msg *msg)
{
    table *t = state;
    tr_runtime *rt = tr_runtime_of(self);
    switch (t->stage) {
    case 0: { /* the printed rally is over: now a fast one on one loop */
        ball b;
        memcpy(&b, msg->data, sizeof b);
        printf("rally over after %u hits\n", b.hits);
        int rc = tr_spawn(self, &player_behavior, NULL, &t->fast1);
        if (rc == 0)
            rc = tr_spawn(self, &player_behavior, NULL, &t->fast2);
        if (rc != 0)
            return rc;
        t->stage = 1;
        t->t0 = tr_now(rt);
        /* fast2 serves to fast1: two million hits between two actors on one
         * loop, then the last hitter tells us. */
        serve_order o = {.to = t->fast1, .ball = {.hits = 0, .limit = 2000000}};
        return tr_send(self, t->fast2, SERVE, &o, sizeof o);
    }
    case 1: { /* the fast rally is over */
        ball b;
        memcpy(&b, msg->data, sizeof b);
        double s = (double)(tr_now(rt) - t->t0) / 1e9;
        printf("%u hits on one loop in %.3f s: %.1f million messages/s\n", b.hits, s,
               b.hits / s / 1e6);
        t->stage = 2;
        /* Ask pong for its score: the answer (or a timeout) is a message. */
        return tr_call(self, t->pong, SCORE, NULL, 0, 1000, &t->score_call);
    }
    case 2:
        if (msg->type == TR_MSG_CALL_TIMEOUT) {
            printf("pong did not answer in time\n");
        } else if (msg->ref == t->score_call) {
            uint32_t score;
            memcpy(&score, msg->data, sizeof score);
            printf("pong says it returned %u balls\n", score);
        }
        t->stage = 3;
        printf("stopping: children stop first, newest first\n");
        return tr_runtime_stop(rt);
    }
    return 0;
}

static const tr_behavior table_behavior = {
    .name = "table",
    .state_size = sizeof(table),
    .init = table_init,
    .receive = table_receive,
};

int main(void)
{
    tr_runtime_options opts;
    tr_runtime_options_init(&opts);
    opts.loops = 2; /* two event loops, two threads */
    tr_runtime *rt;
    int rc = tr_runtime_create(&rt, &opts);
    if (rc != 0) {
        fprintf(stderr, "tr_runtime_create: %s\n", tr_strerror(rc));
        return 1;
    }
    tr_runtime_start(rt);
    tr_pid table_pid;
    rc = tr_rt_spawn(rt, &table_behavior, NULL, &table_pid);
    if (rc != 0) {
        fprintf(stderr, "tr_rt_spawn: %s\n", tr_strerror(rc));
        tr_runtime_free(rt);
        return 1;
    }
    tr_runtime_wait(rt); /* until the table stops the runtime */
    tr_runtime_free(rt); /* joins the loops, frees every byte */
    printf("done\n");
    return 0;
}
