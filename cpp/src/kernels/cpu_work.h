// Dynamic work sharing inside our custom CPU ops (cpu_gemm.cpp, cpu_conv.cpp).
//
// ggml calls a custom op on each of its nth threads, then waits at a barrier. With a static
// split (thread ith takes the ith share) the node lasts as long as its slowest thread, and on a
// shared machine one core is often slower for a while (another tenant, an interrupt, a frequency
// step). Instead the threads take the node's work in chunks from a counter, in order, so a thread
// that runs faster takes more chunks (as ggml's own matmul does). Which thread computes a chunk
// never changes the arithmetic: each chunk writes its own outputs with the same instructions.
//
// The counter lives in the node's spare op_params bytes: ggml_custom_op_params takes the first
// 24 of GGML_MAX_OP_PARAMS (64), ggml zeroes the rest at creation and never reads them. So it
// needs no allocation and lives as long as the graph. The last thread to finish a run resets it
// to zero for the graph's next run (the barrier after the node orders that reset before any
// later use).
#pragma once

#include "common.h"

#include "ggml.h"

#include <algorithm>
#include <cstdint>
#if defined(_MSC_VER) && !defined(__clang__)
#include <intrin.h>
#endif

namespace da3 {

// Chunks per thread and node: enough for a thread slowed for a while to hand most of its share
// to the others, few enough that each chunk still amortizes its setup (a weight block, a head's
// K and V).
constexpr int kChunksPerThread = 8;

namespace detail {
constexpr int kCounterSlot = GGML_MAX_OP_PARAMS / (int)sizeof(int32_t) - 2;  // [taken, finished]
static_assert(GGML_MAX_OP_PARAMS >= 48, "op_params has no room for the work counter");

inline int32_t *work_counter(ggml_tensor *node) { return node->op_params + kCounterSlot; }

inline int32_t fetch_add(int32_t *p, int32_t v) {
#if defined(_MSC_VER) && !defined(__clang__)
    return _InterlockedExchangeAdd(reinterpret_cast<volatile long *>(p), v);
#else
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
#endif
}

inline void store_zero(int32_t *p) {
#if defined(_MSC_VER) && !defined(__clang__)
    _InterlockedExchange(reinterpret_cast<volatile long *>(p), 0);
#else
    __atomic_store_n(p, 0, __ATOMIC_RELAXED);
#endif
}
}  // namespace detail

// Ranges to cut each of `units` units of `items` items into, so that the node has about
// kChunksPerThread chunks per thread (at least one range per unit, at most one item per range).
inline int64_t chunk_ranges(int nth, int64_t units, int64_t items) {
    const int64_t want = ((int64_t)nth * kChunksPerThread + units - 1) / units;
    return std::max<int64_t>(1, std::min(items, want));
}

// Checks, on a custom node just made, that the counter's bytes are free (zero); call it where
// the node is built.
inline ggml_tensor *with_work_counter(ggml_tensor *node) {
    const int32_t *c = detail::work_counter(node);
    if (c[0] != 0 || c[1] != 0) fail(DA3_ERR_INTERNAL, "custom op: op_params has no free bytes for the work counter");
    return node;
}

// Runs fn(c) for the chunks c of [0, n) that this thread takes from dst's counter, in increasing
// order. Each of the op's nth threads must call it exactly once per run of the node, with the
// same n.
template <typename F>
void for_each_chunk(ggml_tensor *dst, int nth, int64_t n, F &&fn) {
    if (nth <= 1) {
        for (int64_t c = 0; c < n; ++c) fn(c);
        return;
    }
    int32_t *ctr = detail::work_counter(dst);
    for (int64_t c; (c = detail::fetch_add(&ctr[0], 1)) < n;) fn(c);
    if (detail::fetch_add(&ctr[1], 1) == nth - 1) {  // the last thread out: every claim is made
        detail::store_zero(&ctr[0]);
        detail::store_zero(&ctr[1]);
    }
}

}  // namespace da3
