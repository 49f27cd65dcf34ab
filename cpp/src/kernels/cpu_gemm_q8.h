// q8_0 linear layers as an int8 GEMM (AVX-512 VNNI), used by linear_cpu (cpu_gemm.cpp) for
// q8_0 weights repacked at load. Internal header: not part of the C API.
//
// As ggml's own q8_0 matmul does, the activations are quantized to q8_0 on the fly (per row,
// per block of 32: d = max|x| / 127, q = round(x / d)) and each block's dot product is an exact
// int32 sum: y = sum over blocks of d_x * d_w * sum(q_x * q_w). vpdpbusd multiplies unsigned by
// signed bytes, so the weights are stored as q_w + 128 and the excess 128 * sum(q_x) is taken
// off by starting each block's int32 sum at -128 * sum(q_x).
// Numerics: the activation rounding adds an error of the order of the weights' own q8_0 error
// (relative ~ 1/254 per element before averaging over K); see the README's parity table.
#pragma once

#include "ggml.h"

#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define DA3_INT8_GEMM 1  // the int8 GEMMs (this file, cpu_gemm_q4k.h) are compiled in
#include "kernels/cpu_simd.h"
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 flags the intrinsics' own _mm512_undefined_* pass-through operands (in the files that
// implement the int8 GEMMs and include this header)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#endif

namespace da3 {

// True when this build has the int8 kernel (compiled with AVX-512 VNNI).
bool q8_gemm_available();

// Repacks a q8_0 weight [K, N] in place (same size) into 32-column panels, per block of 32 k:
// 32 f16 scales, then the quants as [k/4][32 columns][4] bytes, each q + 128. N % 32 == 0.
// Returns false (nothing changed) when the kernel is not compiled in or the shape does not fit.
bool pack_q8_0_weight(ggml_tensor *w);

// Shared by the int8 GEMMs' packers: whether w can be repacked in place (this build has the
// kernels; w of `type`, 2-D, contiguous, in host memory, K a multiple of k_block, N of 32).
bool int8_packable(const ggml_tensor *w, ggml_type type, int64_t k_block);

// In-place repack of a quantized weight [K, N] (rows of row_bytes): for every 32-row panel,
// its rows are copied aside and fill(panel, rows) rewrites the panel's bytes from them.
template <class Fill>
inline void repack_panels(ggml_tensor *w, size_t row_bytes, Fill &&fill) {
    std::vector<uint8_t> rows(32 * row_bytes);
    for (int64_t p = 0; p < w->ne[1] / 32; ++p) {
        uint8_t *panel = (uint8_t *)w->data + (size_t)p * 32 * row_bytes;
        std::memcpy(rows.data(), panel, rows.size());
        fill(panel, (const uint8_t *)rows.data());
    }
}

// Activation rows quantized to q8_0 (shared by the int8 GEMMs).
struct q8_act {
    std::vector<int8_t> q;     // [rows][K]
    std::vector<float> d;      // [rows][K/32] block scales
    std::vector<int32_t> sum;  // [rows][K/32] sum of the block's q
};

#if defined(DA3_INT8_GEMM)
// The int8 GEMMs' tile store, linear_cpu's epilogue: y = act(f + b) * s + res for R rows of 32
// f32 accumulators (two vectors per row); bias, scale, res optional.
template <int R>
inline void store_tile32(const __m512 (&f)[R][2], float *y, int64_t ldy, const float *bias, const float *scale,
                         const float *res, bool gelu) {
    for (int i = 0; i < R; ++i) {
        for (int j = 0; j < 2; ++j) {
            simd::vf v = (simd::vf)f[i][j];
            if (bias) v += simd::loadu(bias + j * 16);
            if (gelu) v = simd::vgelu(v);
            if (scale) v *= simd::loadu(scale + j * 16);
            if (res) v += simd::loadu(res + i * ldy + j * 16);
            simd::storeu(y + i * ldy + j * 16, v);
        }
    }
}

// The int8 GEMMs' loop nest over one thread's rows [m0, m1) and 32-column panels [p0, p1) of
// panel_bytes each: panels in chunks of about 512 KB (kept in L2 while every MR-row strip of
// activations passes over them), tile(R, m, p) computing rows [m, m + R) of panel p.
template <int MR, class Tile>
inline void int8_gemm_loop(int64_t m0, int64_t m1, int64_t p0, int64_t p1, size_t panel_bytes, Tile &&tile) {
    const int64_t ncp = panel_bytes < (512u << 10) ? (int64_t)((512u << 10) / panel_bytes) : 1;
    for (int64_t pc = p0; pc < p1; pc += ncp) {
        const int64_t pe = pc + ncp < p1 ? pc + ncp : p1;
        for (int64_t m = m0; m < m1; m += MR) {
            const int R = (int)(m1 - m < MR ? m1 - m : MR);
            for (int64_t p = pc; p < pe; ++p) tile(R, m, p);
        }
    }
}

// As ggml's quantize_row_q8_0, per row and block of 32: d = max|x| / 127, q = round(x * (1 / d))
// (nearest, ties to even). K % 32 == 0.
void quantize_act_q8(const float *x, int64_t rows, int64_t K, q8_act &s);
#endif

// Y[m, n] = act(X[m, :] . W[n, :] + b[n]) * s[n] + res[m, n] for rows [m0, m1) and 32-column
// panels [p0, p1) of a weight packed by pack_q8_0_weight. X [M, K] f32 rows, Y and res [M, N]
// f32, b and s [N] or null, gelu: exact-erf GELU (linear_cpu's epilogue).
void linear_q8_rows(const float *X, int64_t K, const ggml_tensor *w, int64_t m0, int64_t m1, int64_t p0, int64_t p1,
                    const float *bias, const float *scale, const float *res, bool gelu, float *Y);

}  // namespace da3
