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
#include <vector>

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define DA3_INT8_GEMM 1  // the int8 GEMMs (this file, cpu_gemm_q4k.h) are compiled in
#endif

namespace da3 {

// True when this build has the int8 kernel (compiled with AVX-512 VNNI).
bool q8_gemm_available();

// Repacks a q8_0 weight [K, N] in place (same size) into 32-column panels, per block of 32 k:
// 32 f16 scales, then the quants as [k/4][32 columns][4] bytes, each q + 128. N % 32 == 0.
// Returns false (nothing changed) when the kernel is not compiled in or the shape does not fit.
bool pack_q8_0_weight(ggml_tensor *w);

// Activation rows quantized to q8_0 (shared by the int8 GEMMs).
struct q8_act {
    std::vector<int8_t> q;     // [rows][K]
    std::vector<float> d;      // [rows][K/32] block scales
    std::vector<int32_t> sum;  // [rows][K/32] sum of the block's q
};

#if defined(DA3_INT8_GEMM)
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
