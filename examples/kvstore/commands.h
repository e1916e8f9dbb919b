/*
 * commands — the Redis commands kvstore answers, run against one shard's
 * keyspace, replies in RESP2 exactly as Redis 7.0 writes them. No actor
 * here: kvstore.c decides which shard runs what, and merges the parts of
 * a command that spans shards.
 */
#ifndef KV_COMMANDS_H
#define KV_COMMANDS_H

#include <stddef.h>
#include <stdint.h>

#include "keyspace.h"

/* ---- an output buffer --------------------------------------------------------------- */

typedef struct kv_out {
    char *b;
    size_t len, cap;
    int oom; /* an append failed: the buffer holds less than was written */
} kv_out;

void out_free(kv_out *o);
/* Room for n more bytes. 1, or 0 (out of memory: o->oom set). */
int out_reserve(kv_out *o, size_t n);
void out_raw(kv_out *o, const void *p, size_t n);
void out_str(kv_out *o, const char *s); /* raw, NUL-terminated */
void out_int(kv_out *o, long long v);   /* :v */
void out_bulk(kv_out *o, const void *p, size_t n);
void out_null(kv_out *o);               /* $-1 */
void out_array(kv_out *o, long long n); /* *n */
void out_ok(kv_out *o);
/* An error reply: "-ERR " and the text, unless the text brings its own
 * "-CODE " (as Redis's addReplyError); \r and \n become spaces. */
void out_err(kv_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));


/* ---- commands ------------------------------------------------------------------------- */

enum kv_keys {
    KEYS_NONE, /* no key: runs where the connection is */
    KEYS_ONE,  /* argv[1] */
    KEYS_EACH, /* argv[1..]: each a key (DEL, EXISTS, MGET) */
    KEYS_PAIRS,/* argv[1], argv[3], ...: key value pairs (MSET) */
    KEYS_ALL   /* every shard (KEYS, DBSIZE, FLUSHDB, FLUSHALL, INFO) */
};

/* How the parts of a command run on several shards become its reply. */
enum kv_merge {
    MERGE_NONE,  /* one part */
    MERGE_SUM,   /* integers: their sum */
    MERGE_OK,    /* +OK */
    MERGE_MGET,  /* arrays in key order */
    MERGE_CONCAT,/* arrays, one after the other */
    MERGE_INFO   /* INFO's keyspace counts */
};

typedef struct kv_shard {
    kv_space ks;
    uint64_t commands; /* commands (or parts) run here */
} kv_shard;

typedef struct kv_cmd kv_cmd;

/* What a command needs beyond its arguments. */
typedef struct kv_ctx {
    kv_shard *sh;
    int64_t now_ms;
    int quit;          /* set by QUIT: close after the reply */
    int part;          /* this shard runs a part of a command that spans shards */
} kv_ctx;

typedef void (*kv_exec_fn)(kv_ctx *x, int argc, const char *const *argv, const size_t *argl,
                           kv_out *o);

struct kv_cmd {
    const char *name; /* lower case, as Redis names it in errors */
    int arity;        /* Redis's: n exactly, or -n at least n */
    uint8_t keys;     /* enum kv_keys */
    uint8_t merge;    /* enum kv_merge */
    kv_exec_fn exec;
    const char *flags;/* COMMAND's flags, space-separated */
};

/* Builds the lookup table: once, before any lookup (main). */
void kv_commands_init(void);
/* The command named argv[0] (any case), or NULL. */
const kv_cmd *kv_lookup(const char *name, size_t len);
/* The table (COMMAND lists it) and its size. */
const kv_cmd *kv_commands(size_t *n);
/* Its index in the table, and back (cross-shard requests carry it). */
uint32_t kv_cmd_index(const kv_cmd *c);
const kv_cmd *kv_cmd_at(uint32_t i);

/* The unknown-command and wrong-arity errors, as Redis words them. */
void kv_err_unknown(kv_out *o, int argc, const char *const *argv, const size_t *argl);
void kv_err_arity(kv_out *o, const kv_cmd *c);

/* INFO's text, given what the shards counted (merged by the caller). The
 * runtime's part comes from a hook kvstore.c installs. */
typedef void (*kv_info_fn)(kv_out *o);
void kv_set_info_hook(kv_info_fn fn);
void kv_info_text(kv_out *o, const char *section, size_t slen, uint64_t keys,
                  uint64_t expires);

#endif
