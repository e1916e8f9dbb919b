/*
 * keyspace — see keyspace.h. A chained hash table with a power-of-two
 * number of buckets, doubled when it holds as many keys as buckets (and
 * halved when a quarter full), keyed by a seeded 64-bit hash (a random
 * seed per run: a client cannot choose keys that collide). Each entry is
 * one allocation: header, key, value. Keys with an expiry are also in an
 * array, so the active expiry can sample them at random in O(1), as
 * Redis samples its `expires` dict.
 */
#include "keyspace.h"

#include <stdlib.h>
#include <string.h>

#define MIN_BUCKETS 16

/* ---- hashing ---------------------------------------------------------------------- */

static inline uint64_t mix(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t load64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* A multiply-fold hash (in the manner of wyhash): 8 bytes a step, the
 * seed in every step. */
uint64_t kv_hash(uint64_t seed, const void *key, size_t len)
{
    const uint64_t k1 = 0xa0761d6478bd642full, k2 = 0xe7037ed1a0b428dbull;
    const unsigned char *p = key;
    uint64_t h = seed ^ (len * k1);
    size_t n = len;
    while (n >= 8) {
        h = mix(h ^ load64(p) ^ k2, k1);
        p += 8;
        n -= 8;
    }
    uint64_t tail = 0;
    for (size_t i = 0; i < n; i++)
        tail |= (uint64_t)p[i] << (8 * i);
    return mix(h ^ tail ^ k1, k2 ^ len);
}

/* ---- the table -------------------------------------------------------------------- */

int kv_init(kv_space *ks, uint64_t seed)
{
    memset(ks, 0, sizeof *ks);
    ks->tab = calloc(MIN_BUCKETS, sizeof *ks->tab);
    if (!ks->tab)
        return -1;
    ks->mask = MIN_BUCKETS - 1;
    ks->seed = seed;
    ks->rng = seed ^ 0x9e3779b97f4a7c15ull;
    return 0;
}

static void free_chains(kv_space *ks)
{
    for (size_t i = 0; i <= ks->mask; i++) {
        kv_entry *e = ks->tab[i];
        while (e) {
            kv_entry *next = e->next;
            free(e);
            e = next;
        }
        ks->tab[i] = NULL;
    }
}

void kv_free(kv_space *ks)
{
    if (!ks->tab)
        return;
    free_chains(ks);
    free(ks->tab);
    free(ks->exp);
    memset(ks, 0, sizeof *ks);
}

/* Rehashes into `n` buckets (a power of two); on failure keeps the old. */
static void resize(kv_space *ks, size_t n)
{
    kv_entry **t = calloc(n, sizeof *t);
    if (!t)
        return;
    for (size_t i = 0; i <= ks->mask; i++) {
        kv_entry *e = ks->tab[i];
        while (e) {
            kv_entry *next = e->next;
            size_t b = e->hash & (n - 1);
            e->next = t[b];
            t[b] = e;
            e = next;
        }
    }
    free(ks->tab);
    ks->tab = t;
    ks->mask = n - 1;
}

/* The link that points at key's entry (or at NULL where it would go). */
static kv_entry **find_link(kv_space *ks, uint64_t h, const void *key, size_t klen)
{
    kv_entry **link = &ks->tab[h & ks->mask];
    for (kv_entry *e = *link; e; link = &e->next, e = e->next)
        if (e->hash == h && e->klen == klen && memcmp(e->data, key, klen) == 0)
            return link;
    return link;
}

static void exp_remove(kv_space *ks, kv_entry *e)
{
    if (!e->eidx)
        return;
    size_t i = e->eidx - 1;
    kv_entry *last = ks->exp[--ks->nexp];
    ks->exp[i] = last;
    last->eidx = (uint32_t)(i + 1);
    e->eidx = 0;
}

/* Unlinks and frees the entry *link points at. */
static void remove_at(kv_space *ks, kv_entry **link)
{
    kv_entry *e = *link;
    *link = e->next;
    exp_remove(ks, e);
    free(e);
    ks->count--;
    if (ks->mask + 1 > MIN_BUCKETS && ks->count < (ks->mask + 1) / 4)
        resize(ks, (ks->mask + 1) / 2);
}

static inline int expired(const kv_entry *e, int64_t now_ms)
{
    return e->expire_ms != KV_NO_EXPIRY && e->expire_ms <= now_ms;
}

kv_entry *kv_get(kv_space *ks, const void *key, size_t klen, int64_t now_ms)
{
    uint64_t h = kv_hash(ks->seed, key, klen);
    kv_entry **link = find_link(ks, h, key, klen);
    kv_entry *e = *link;
    if (e && expired(e, now_ms)) {
        remove_at(ks, link);
        ks->expired++;
        return NULL;
    }
    return e;
}

/* Replaces the entry at *link by a copy with `cap` bytes of value room. */
static kv_entry *regrow(kv_space *ks, kv_entry **link, size_t cap)
{
    kv_entry *e = *link;
    if (cap > UINT32_MAX)
        return NULL;
    kv_entry *n = realloc(e, sizeof *e + e->klen + cap);
    if (!n)
        return NULL;
    n->vcap = (uint32_t)cap;
    *link = n;
    if (n->eidx)
        ks->exp[n->eidx - 1] = n;
    return n;
}

/* Value room for a value of `len`: a little slack past a few bytes, so
 * that an APPEND loop grows it geometrically. */
static size_t room_for(size_t len, size_t old)
{
    if (len <= old)
        return old;
    size_t want = old * 2;
    return want > len ? want : len;
}

kv_entry *kv_reserve(kv_space *ks, kv_entry *e, size_t cap)
{
    if (cap <= e->vcap)
        return e;
    kv_entry **link = find_link(ks, e->hash, e->data, e->klen);
    return regrow(ks, link, room_for(cap, e->vcap));
}

kv_entry *kv_set(kv_space *ks, const void *key, size_t klen, const void *val, size_t vlen,
                 int keep_ttl, int64_t now_ms)
{
    (void)now_ms;
    if (klen > UINT32_MAX || vlen > UINT32_MAX)
        return NULL;
    uint64_t h = kv_hash(ks->seed, key, klen);
    kv_entry **link = find_link(ks, h, key, klen);
    kv_entry *e = *link;
    if (e) {
        if (vlen > e->vcap) {
            /* exactly the size: a SET is not an APPEND */
            kv_entry *n = regrow(ks, link, vlen);
            if (!n)
                return NULL;
            e = n;
        }
        if (!keep_ttl) {
            exp_remove(ks, e);
            e->expire_ms = KV_NO_EXPIRY;
        }
    } else {
        e = malloc(sizeof *e + klen + vlen);
        if (!e)
            return NULL;
        e->next = NULL;
        e->hash = h;
        e->expire_ms = KV_NO_EXPIRY;
        e->klen = (uint32_t)klen;
        e->vcap = (uint32_t)vlen;
        e->eidx = 0;
        memcpy(e->data, key, klen);
        *link = e;
        if (++ks->count > ks->mask + 1)
            resize(ks, (ks->mask + 1) * 2);
    }
    e->vlen = (uint32_t)vlen;
    if (vlen)
        memcpy(e->data + e->klen, val, vlen);
    return e;
}

int kv_del(kv_space *ks, const void *key, size_t klen, int64_t now_ms)
{
    uint64_t h = kv_hash(ks->seed, key, klen);
    kv_entry **link = find_link(ks, h, key, klen);
    kv_entry *e = *link;
    if (!e)
        return 0;
    int live = !expired(e, now_ms);
    if (!live)
        ks->expired++;
    remove_at(ks, link);
    return live;
}

int kv_expire(kv_space *ks, kv_entry *e, int64_t at_ms)
{
    if (at_ms == KV_NO_EXPIRY) {
        exp_remove(ks, e);
        e->expire_ms = KV_NO_EXPIRY;
        return 0;
    }
    if (!e->eidx) {
        if (ks->nexp == ks->capexp) {
            size_t cap = ks->capexp ? ks->capexp * 2 : 64;
            kv_entry **x = realloc(ks->exp, cap * sizeof *x);
            if (!x)
                return -1;
            ks->exp = x;
            ks->capexp = cap;
        }
        ks->exp[ks->nexp++] = e;
        e->eidx = (uint32_t)ks->nexp;
    }
    e->expire_ms = at_ms;
    return 0;
}

void kv_flush(kv_space *ks)
{
    free_chains(ks);
    ks->count = 0;
    ks->nexp = 0;
    if (ks->mask + 1 > MIN_BUCKETS) {
        kv_entry **t = calloc(MIN_BUCKETS, sizeof *t);
        if (t) {
            free(ks->tab);
            ks->tab = t;
            ks->mask = MIN_BUCKETS - 1;
        }
    }
    if (ks->capexp > 64) {
        free(ks->exp);
        ks->exp = NULL;
        ks->capexp = 0;
    }
}

static uint64_t next_rand(kv_space *ks)
{
    /* splitmix64 */
    uint64_t z = (ks->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

size_t kv_expire_cycle(kv_space *ks, int64_t now_ms, unsigned budget)
{
    size_t removed = 0;
    for (unsigned round = 0; round < budget && ks->nexp > 0; round++) {
        unsigned sample = ks->nexp < 20 ? (unsigned)ks->nexp : 20, gone = 0;
        for (unsigned i = 0; i < sample && ks->nexp > 0; i++) {
            kv_entry *e = ks->exp[next_rand(ks) % ks->nexp];
            if (expired(e, now_ms)) {
                kv_entry **link = find_link(ks, e->hash, e->data, e->klen);
                remove_at(ks, link);
                ks->expired++;
                gone++;
            }
        }
        removed += gone;
        if (gone * 4 <= sample) /* a quarter or less had expired: enough */
            break;
    }
    return removed;
}

void kv_each(kv_space *ks, int64_t now_ms, int (*fn)(void *arg, kv_entry *e), void *arg)
{
    for (size_t i = 0; i <= ks->mask; i++)
        for (kv_entry *e = ks->tab[i]; e; e = e->next)
            if (!expired(e, now_ms) && fn(arg, e))
                return;
}

/* ---- glob ------------------------------------------------------------------------- */

static inline int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* Redis's stringmatchlen: the same patterns, the same answers (bytes
 * compared as signed chars, as Redis does); *skip prunes a '*' that has
 * already failed against a longer tail. */
static int glob(const char *p, size_t pl, const char *s, size_t sl, int nocase, int *skip)
{
    while (pl && sl) {
        switch (p[0]) {
        case '*':
            while (pl > 1 && p[1] == '*') {
                p++;
                pl--;
            }
            if (pl == 1)
                return 1;
            while (sl) {
                if (glob(p + 1, pl - 1, s, sl, nocase, skip))
                    return 1;
                if (*skip)
                    return 0;
                s++;
                sl--;
            }
            *skip = 1;
            return 0;
        case '?':
            s++;
            sl--;
            break;
        case '[': {
            p++;
            pl--;
            int not = pl > 0 && p[0] == '^', match = 0;
            if (not) {
                p++;
                pl--;
            }
            for (;;) {
                if (pl >= 2 && p[0] == '\\') {
                    p++;
                    pl--;
                    if (p[0] == s[0])
                        match = 1;
                } else if (pl == 0) {
                    /* no closing bracket: the pattern ends here */
                    p--;
                    pl++;
                    break;
                } else if (p[0] == ']') {
                    break;
                } else if (pl >= 3 && p[1] == '-') {
                    int a = (signed char)p[0], b = (signed char)p[2], c = (signed char)s[0];
                    if (a > b) {
                        int t = a;
                        a = b;
                        b = t;
                    }
                    if (nocase) {
                        a = lower(a);
                        b = lower(b);
                        c = lower(c);
                    }
                    p += 2;
                    pl -= 2;
                    if (c >= a && c <= b)
                        match = 1;
                } else if (nocase ? lower(p[0]) == lower(s[0]) : p[0] == s[0]) {
                    match = 1;
                }
                p++;
                pl--;
            }
            if (not)
                match = !match;
            if (!match)
                return 0;
            s++;
            sl--;
            break;
        }
        case '\\':
            if (pl >= 2) {
                p++;
                pl--;
            }
            /* fall through */
        default:
            if (nocase ? lower(p[0]) != lower(s[0]) : p[0] != s[0])
                return 0;
            s++;
            sl--;
            break;
        }
        p++;
        pl--;
        if (sl == 0) {
            while (pl && p[0] == '*') {
                p++;
                pl--;
            }
            break;
        }
    }
    return pl == 0 && sl == 0;
}

int kv_glob(const char *pat, size_t plen, const char *s, size_t slen, int nocase)
{
    int skip = 0;
    return glob(pat, plen, s, slen, nocase, &skip);
}
