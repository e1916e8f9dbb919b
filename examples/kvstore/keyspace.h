/*
 * keyspace — one shard's keys: a hash table of string keys and values
 * with expiry times. Plain C, single-threaded: the shard actor that owns
 * it (and actors on the shard's loop, which run on the same thread) are
 * its only users. Times are milliseconds on the caller's clock (the
 * runtime clock: a test clock moves expiry too).
 */
#ifndef KV_KEYSPACE_H
#define KV_KEYSPACE_H

#include <stddef.h>
#include <stdint.h>

typedef struct kv_entry {
    struct kv_entry *next; /* the bucket's chain */
    uint64_t hash;
    int64_t expire_ms;     /* absolute; KV_NO_EXPIRY: none */
    uint32_t klen, vlen, vcap;
    uint32_t eidx;         /* 1 + its index in the expiring keys; 0: none */
    char data[];           /* the key, then the value (vcap bytes) */
} kv_entry;

#define KV_NO_EXPIRY INT64_MAX

static inline const char *kv_key(const kv_entry *e) { return e->data; }
static inline char *kv_val(kv_entry *e) { return e->data + e->klen; }

typedef struct kv_space {
    kv_entry **tab;
    size_t mask;          /* buckets - 1 */
    size_t count;
    kv_entry **exp;       /* the keys with an expiry, in no order (sampling) */
    size_t nexp, capexp;
    uint64_t seed;
    uint64_t expired;     /* keys removed because they expired */
    uint64_t rng;
} kv_space;

/* 0, or -1 (out of memory). */
int kv_init(kv_space *ks, uint64_t seed);
void kv_free(kv_space *ks);

uint64_t kv_hash(uint64_t seed, const void *key, size_t len);

/* The live entry of `key` (an expired one is deleted on the way), or NULL.
 * `now_ms` decides what has expired. */
kv_entry *kv_get(kv_space *ks, const void *key, size_t klen, int64_t now_ms);

/* Sets key to value (a new entry or the old one, resized as needed).
 * keep_ttl: the old entry's expiry stays; else it is cleared. Returns the
 * entry, or NULL (out of memory: nothing changed). */
kv_entry *kv_set(kv_space *ks, const void *key, size_t klen, const void *val, size_t vlen,
                 int keep_ttl, int64_t now_ms);

/* Grows e's value room to at least `cap` bytes (e may move: use the
 * result). NULL: out of memory, e unchanged. */
kv_entry *kv_reserve(kv_space *ks, kv_entry *e, size_t cap);

/* 1 if key was there (and live) and is now gone, else 0. */
int kv_del(kv_space *ks, const void *key, size_t klen, int64_t now_ms);

/* Sets or clears (KV_NO_EXPIRY) e's expiry. 0, or -1 (out of memory). */
int kv_expire(kv_space *ks, kv_entry *e, int64_t at_ms);

void kv_flush(kv_space *ks);

/* Redis's active expiry: samples up to 20 keys with an expiry at a time,
 * removes those past due, and goes on while more than a quarter of a
 * sample had expired, for at most `budget` samples. Returns how many keys
 * it removed. */
size_t kv_expire_cycle(kv_space *ks, int64_t now_ms, unsigned budget);

/* Calls fn for each live key; stops when fn returns nonzero. */
void kv_each(kv_space *ks, int64_t now_ms, int (*fn)(void *arg, kv_entry *e), void *arg);

/* Redis's glob (stringmatchlen): * ? [abc] [^a] [a-z] and \x. 1: matches. */
int kv_glob(const char *pat, size_t plen, const char *s, size_t slen, int nocase);

#endif
