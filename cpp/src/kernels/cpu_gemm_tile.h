// The f32 micro-kernel shared by the linears' GEMM (cpu_gemm.cpp) and the attention
// (cpu_attention.cpp): tile sizes, the fused epilogue, the register-blocked MR x NR kernels.
// Internal to kernels/; inline, so each kernel file compiles the same loops with its flags.
#pragma once

#include "kernels/cpu_simd.h"

#include <array>
#include <cmath>
#include <cstddef>
#include <utility>

namespace da3 {
namespace tile {
using namespace simd;

// Micro-kernel tile: MR rows x NR = NV*VW columns, MR*NV accumulators (24 of 32 AVX-512
// registers; 12 of 16 for AVX/SSE).
constexpr int NV = 2, NR = NV * VW;
#if defined(__AVX512F__)
constexpr int MR = 12;
#else
constexpr int MR = 6;
#endif
constexpr int PF_DIST = 8;                   // software prefetch distance in k steps

struct epilogue {
    bool first, last, gelu;
    const float *bias;       // at the tile's first column, or null
    const float *res;        // at the tile's first element, or null
    const float *row_scale;  // one factor per tile row, applied first, or null
    const float *col_scale;  // at the tile's first column (after the activation), or null
};

#if defined(__GNUC__)
// c[i][j] (+)= sum_k xp[i*ldx + k] * wp[k*ldw + j] for R rows and W*VW columns; ldc: row stride
// of c and res.
template <int R, int W>
void micro_kernel(int kc, const float *xp, size_t ldx, const float *wp, size_t ldw, float *c, size_t ldc,
                  const epilogue &e) {
    vf acc[R][W];
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < W; ++j) acc[i][j] = vf{};
    for (int k = 0; k < kc; ++k) {
        // the weight panel streams from L2: fetch PF_DIST rows ahead (prefetches never fault)
        for (int l = 0; l < W * VW; l += 64 / (int)sizeof(float)) __builtin_prefetch(wp + (size_t)(k + PF_DIST) * ldw + l);
        vf b[W];
#pragma GCC unroll 4
        for (int j = 0; j < W; ++j) b[j] = loadu(wp + (size_t)k * ldw + j * VW);
#pragma GCC unroll 16
        for (int i = 0; i < R; ++i) {
            const vf a = splat(xp[i * ldx + k]);
#pragma GCC unroll 4
            for (int j = 0; j < W; ++j) acc[i][j] += a * b[j];
        }
    }
    for (int i = 0; i < R; ++i) {
        for (int j = 0; j < W; ++j) {
            float *cp = c + i * ldc + j * VW;
            vf v = acc[i][j];
            if (e.row_scale) v *= e.row_scale[i];
            if (!e.first) v += loadu(cp);
            if (e.last) {
                if (e.bias) v += loadu(e.bias + j * VW);
                if (e.gelu) v = vgelu(v);
                if (e.col_scale) v *= loadu(e.col_scale + j * VW);
                if (e.res) v += loadu(e.res + i * ldc + j * VW);
            }
            storeu(cp, v);
        }
    }
}

// c[i][j] = sum_k ap[k*MR + i] * bp[k*ldb + j] for j < NR, all MR rows computed, rows i < R stored.
// A is packed ([kc][MR]: the attention's query strip, the Winograd weights), so the MR broadcasts
// of a k step are at fixed offsets from one pointer (micro_kernel's rows ldx apart need a register
// each). A kernel of its own, called directly, without micro_kernel's epilogue: for these short
// tiles (k = 64 in attention) a packed-A micro_kernel through the kernel table measured 5 % slower.
// With rmax (the attention's scores): rmax[i] = vmax(rmax[i], the row's NR values), for i < MR.
template <bool ROW_MAX>
inline void packed_a_tile(int R, int kc, const float *ap, const float *bp, size_t ldb, float *c, size_t ldc, vf *rmax) {
    vf acc[MR][NV];
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NV; ++j) acc[i][j] = vf{};
    for (int k = 0; k < kc; ++k) {
        for (int l = 0; l < NR; l += 64 / (int)sizeof(float)) __builtin_prefetch(bp + (size_t)(k + PF_DIST) * ldb + l);
        vf b[NV];
        for (int j = 0; j < NV; ++j) b[j] = loadu(bp + (size_t)k * ldb + j * VW);
#pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) {
            const vf a = splat(ap[k * MR + i]);
            for (int j = 0; j < NV; ++j) acc[i][j] += a * b[j];
        }
    }
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < NV; ++j) storeu(c + i * ldc + j * VW, acc[i][j]);
    if (ROW_MAX) {
        for (int i = 0; i < MR; ++i)
            for (int j = 0; j < NV; ++j) rmax[i] = vmax(acc[i][j], rmax[i]);
    }
}
inline void packed_a_kernel(int R, int kc, const float *ap, const float *bp, size_t ldb, float *c, size_t ldc) {
    packed_a_tile<false>(R, kc, ap, bp, ldb, c, ldc, nullptr);
}
inline void scores_kernel(int R, int kc, const float *ap, const float *bp, size_t ldb, float *c, size_t ldc, vf *rmax) {
    packed_a_tile<true>(R, kc, ap, bp, ldb, c, ldc, rmax);
}

using kernel_fn = void (*)(int, const float *, size_t, const float *, size_t, float *, size_t, const epilogue &);
template <int W, size_t... I>
constexpr std::array<kernel_fn, sizeof...(I)> make_kernels(std::index_sequence<I...>) {
    return {&micro_kernel<(int)I + 1, W>...};
}
// NR-wide tiles of up to MR rows; 2*NR-wide tiles of up to MR/2 rows (the same register count)
inline constexpr std::array<kernel_fn, MR> kKernels = make_kernels<NV>(std::make_index_sequence<MR>{});
inline constexpr std::array<kernel_fn, MR / 2> kKernelsWide = make_kernels<2 * NV>(std::make_index_sequence<MR / 2>{});
#else
// Portable fallback (no vector extensions): the same tile, scalar.
inline void scalar_kernel(int R, int ncol, int kc, const float *xp, size_t ldx, const float *wp, size_t ldw, float *c,
                   size_t ldc, const epilogue &e) {
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < ncol; ++j) {
            float s = 0.0f;
            for (int k = 0; k < kc; ++k) s += xp[i * ldx + k] * wp[(size_t)k * ldw + j];
            if (e.row_scale) s *= e.row_scale[i];
            float &cv = c[i * ldc + j];
            float v = e.first ? s : cv + s;
            if (e.last) {
                if (e.bias) v += e.bias[j];
                if (e.gelu) v = 0.5f * v * std::erfc(v * -0.70710678118654752f);
                if (e.col_scale) v *= e.col_scale[j];
                if (e.res) v += e.res[i * ldc + j];
            }
            cv = v;
        }
}
inline void packed_a_kernel(int R, int kc, const float *ap, const float *bp, size_t ldb, float *c, size_t ldc) {
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < NR; ++j) {
            float s = 0.0f;
            for (int k = 0; k < kc; ++k) s += ap[k * MR + i] * bp[(size_t)k * ldb + j];
            c[i * ldc + j] = s;
        }
}
#endif

// One R x NR tile (1 <= R <= MR), see micro_kernel.
inline void run_tile(int R, int kc, const float *xp, size_t ldx, const float *wp, size_t ldw, float *c, size_t ldc,
                     const epilogue &e) {
#if defined(__GNUC__)
    kKernels[R - 1](kc, xp, ldx, wp, ldw, c, ldc, e);
#else
    scalar_kernel(R, NR, kc, xp, ldx, wp, ldw, c, ldc, e);
#endif
}

// R x 2NR in tiles of at most MR/2 rows.
inline void run_tile_wide(int R, int kc, const float *xp, size_t ldx, const float *wp, size_t ldw, float *c,
                          size_t ldc, const epilogue &e) {
    constexpr int H = MR / 2;
    for (int i0 = 0; i0 < R; i0 += H) {
        epilogue ei = e;
        if (ei.res) ei.res += i0 * ldc;
        if (ei.row_scale) ei.row_scale += i0;
#if defined(__GNUC__)
        kKernelsWide[std::min(H, R - i0) - 1](kc, xp + i0 * ldx, ldx, wp, ldw, c + i0 * ldc, ldc, ei);
#else
        scalar_kernel(std::min(H, R - i0), 2 * NR, kc, xp + i0 * ldx, ldx, wp, ldw, c + i0 * ldc, ldc, ei);
#endif
    }
}

}  // namespace tile
}  // namespace da3
