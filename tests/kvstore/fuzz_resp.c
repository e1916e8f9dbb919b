/*
 * fuzz_resp.c — a libFuzzer target for the kvstore example's RESP2 request
 * parser (examples/kvstore/resp.c). Build and run: tests/kvstore/CMakeLists.txt.
 *
 * An input is three bytes of settings, then the stream: byte 0 picks the
 * limits (the defaults, or small ones that the fuzzer can cross), bytes 1-2
 * a split point. The stream is fed whole, split at that point and (when
 * short) a byte at a time, each from buffers that move between calls
 * (resp_feed.h); every result must hold the parser's invariants and the
 * three feeds must give the same commands and the same ending. Any breach
 * aborts, which libFuzzer reports with the input.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"
#include "resp_feed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *bad, const char *what)
{
    if (bad) {
        fprintf(stderr, "fuzz_resp: %s: %s\n", what, bad);
        abort();
    }
}

static void same(const feed_log *a, const feed_log *b, const char *what)
{
    if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0) {
        fprintf(stderr, "fuzz_resp: fed whole and %s, different results\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const resp_limits limits[] = {
        {0, 0, 0}, {8, 16, 3},  {4, 8, 2}, {64, 32, 8},
        {1, 4, 1}, {16, 64, 4}, {0, 0, 0}, {0, 0, 0},
    };
    if (size < 3)
        return 0;
    const resp_limits *lim = &limits[data[0] % (sizeof limits / sizeof limits[0])];
    const char *in = (const char *)data + 3;
    size_t len = size - 3;
    size_t split = ((size_t)data[1] | (size_t)data[2] << 8) % (len + 1);

    feed_log whole = {0}, cut = {0};
    check(feed(lim, in, len, NULL, 0, &whole), "whole");
    check(feed(lim, in, len, &split, 1, &cut), "split");
    same(&whole, &cut, "split");
    if (len <= 256) {
        size_t cuts[256];
        for (size_t i = 0; i < len; i++)
            cuts[i] = i + 1;
        cut.len = 0;
        check(feed(lim, in, len, cuts, len, &cut), "a byte at a time");
        same(&whole, &cut, "a byte at a time");
    }
    free(whole.data);
    free(cut.data);
    return 0;
}
