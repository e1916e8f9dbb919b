/*
 * test_pool.c — the per-loop block pools (actors/pool.h) on their own.
 *
 * Small classes come from slabs: every block must start a cache line and
 * no two blocks may share one (the false sharing that made cross-loop
 * latency depend on the heap's layout). Blocks freed by another pool, or by
 * a plain thread, must find their way home; and destroying pools in any
 * order must free everything without touching another pool's slabs (ASan
 * and valgrind check that part).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pool.h"

enum { LINE = 64 };

static size_t block_bytes(int cls)
{
    return (size_t)1 << (cls + TR__POOL_MIN_SHIFT);
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* Payload sizes map to the class whose block (header included) holds them;
 * past the slab classes, malloc's own word counts too. */
static void test_class_of(void **state)
{
    (void)state;
    assert_int_equal(tr__pool_class_of(0), 0);
    assert_int_equal(tr__pool_class_of(56), 0);  /* a call: 32 + 16 + 8 */
    assert_int_equal(tr__pool_class_of(57), 1);
    assert_int_equal(tr__pool_class_of(120), 1);
    assert_int_equal(tr__pool_class_of(TR__POOL_SLAB_MAX - 8), TR__POOL_SLAB_CLASSES - 1);
    assert_int_equal(tr__pool_class_of(TR__POOL_SLAB_MAX - 7), TR__POOL_SLAB_CLASSES);
    assert_int_equal(tr__pool_class_of(2 * TR__POOL_SLAB_MAX - 16), TR__POOL_SLAB_CLASSES);
    assert_int_equal(tr__pool_class_of(2 * TR__POOL_SLAB_MAX - 15), TR__POOL_SLAB_CLASSES + 1);
}

/* Every slab block, across several slabs, owns whole lines. */
static void test_slab_blocks_own_lines(void **state)
{
    (void)state;
    tr__pool p, *peers[1] = {&p};
    assert_int_equal(tr__pool_init(&p, 0, peers, 1), 0);
    for (int cls = 0; cls < TR__POOL_SLAB_CLASSES; cls++) {
        size_t size = block_bytes(cls) - 8;
        size_t n = 3 * (TR__POOL_SLAB_BYTES / block_bytes(cls)); /* three slabs or more */
        uintptr_t *b = calloc(n, sizeof *b);
        assert_non_null(b);
        for (size_t i = 0; i < n; i++) {
            void *u = tr__pool_alloc(&p, size);
            assert_non_null(u);
            memset(u, 0xab, size); /* all of it is ours */
            b[i] = (uintptr_t)u - 8;  /* the block, header included */
            assert_int_equal(b[i] % LINE, 0);
        }
        qsort(b, n, sizeof *b, cmp_ptr);
        for (size_t i = 1; i < n; i++)
            assert_true(b[i] - b[i - 1] >= block_bytes(cls));
        for (size_t i = 0; i < n; i++)
            tr__pool_free(&p, (void *)(b[i] + 8));
        /* Freed blocks are reused, not carved again. */
        void *u = tr__pool_alloc(&p, size);
        assert_non_null(bsearch(&(uintptr_t){(uintptr_t)u - 8}, b, n, sizeof *b, cmp_ptr));
        tr__pool_free(&p, u);
        free(b);
    }
    tr__pool_destroy(&p);
}

/* A block freed on another pool's loop goes home in a chain; one freed on
 * a plain thread goes home at once, found through its slab. */
static void test_blocks_go_home(void **state)
{
    (void)state;
    tr__pool p0, p1, *peers[2] = {&p0, &p1};
    assert_int_equal(tr__pool_init(&p0, 0, peers, 2), 0);
    assert_int_equal(tr__pool_init(&p1, 1, peers, 2), 0);
    void *a = tr__pool_alloc(&p0, 40);
    void *b = tr__pool_alloc(&p0, 40);
    assert_non_null(a);
    assert_non_null(b);
    tr__pool_free(&p1, a); /* held in p1's chain for p0 */
    assert_null(p0.remote[0]);
    tr__pool_flush(&p1);
    assert_ptr_equal(p0.remote[0], a);
    tr__pool_free(NULL, b); /* a plain thread */
    assert_ptr_equal(p0.remote[0], b);
    /* Once p0's free list runs dry, it takes both back before carving. */
    uint32_t left = p0.nfree[0];
    for (uint32_t i = 0; i < left; i++)
        assert_non_null(tr__pool_alloc(&p0, 40));
    void *x = tr__pool_alloc(&p0, 40), *y = tr__pool_alloc(&p0, 40);
    assert_true((x == a && y == b) || (x == b && y == a));
    assert_null(p0.remote[0]);
    tr__pool_destroy(&p0);
    tr__pool_destroy(&p1);
}

/* Large classes are single mallocs: from a plain thread they go to free. */
static void test_large_blocks(void **state)
{
    (void)state;
    tr__pool p, *peers[1] = {&p};
    assert_int_equal(tr__pool_init(&p, 0, peers, 1), 0);
    void *big = tr__pool_alloc(&p, 3000);
    assert_non_null(big);
    memset(big, 1, 3000);
    tr__pool_free(&p, big); /* onto its free list */
    assert_ptr_equal(tr__pool_alloc(&p, 3000), big);
    tr__pool_free(NULL, big); /* back to malloc (valgrind: no leak) */
    void *heap = tr__pool_alloc(NULL, 40); /* a plain thread's block */
    assert_non_null(heap);
    tr__pool_free(&p, heap);
    tr__pool_destroy(&p);
}

/* Destroying a pool while another still holds its blocks in a chain (or
 * the other way round) touches neither's freed memory. */
static void test_destroy_any_order(void **state)
{
    (void)state;
    tr__pool p0, p1, *peers[2] = {&p0, &p1};
    assert_int_equal(tr__pool_init(&p0, 0, peers, 2), 0);
    assert_int_equal(tr__pool_init(&p1, 1, peers, 2), 0);
    tr__pool_free(&p1, tr__pool_alloc(&p0, 40));   /* p0's slab block, in p1's chain */
    tr__pool_free(&p1, tr__pool_alloc(&p0, 3000)); /* p0's malloc'd block, too */
    tr__pool_free(&p0, tr__pool_alloc(&p1, 40));
    tr__pool_destroy(&p0);
    tr__pool_destroy(&p1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_class_of),
        cmocka_unit_test(test_slab_blocks_own_lines),
        cmocka_unit_test(test_blocks_go_home),
        cmocka_unit_test(test_large_blocks),
        cmocka_unit_test(test_destroy_any_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
