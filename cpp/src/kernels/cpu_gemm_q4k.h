// q4_K linear layers as an int8 GEMM (AVX-512 VNNI), used by linear_cpu (cpu_gemm.cpp) for q4_K
// weights repacked at load; the q8_0 counterpart is cpu_gemm_q8.h. Internal header: not part of
// the C API.
//
// q4_K (ref: ggml/src/ggml-common.h block_q4_K; ggml/src/ggml-quants.c get_scale_min_k4,
// dequantize_row_q4_K): super-blocks of 256 k in 144 bytes: f16 d, f16 dmin, 12 bytes packing
// a 6-bit scale sc_j and a 6-bit min m_j for each of the 8 sub-blocks of 32 k, then 128 bytes of
// 4-bit quants q in 0..15; the weight is d * sc_j * q - dmin * m_j.
//
// The activations are quantized per row, per block of 32, as for q8_0 (quantize_act_q8, the
// blocks line up with the sub-blocks), so each sub-block adds
//   y += d_x * (d * sc_j * sum(q_x * q) - dmin * m_j * sum(q_x))
// with sum(q_x * q) an exact int32 sum by vpdpbusd (q unsigned, q_x signed: no offset needed)
// and the rest in f32. Numerics: as the q8_0 GEMM, the activation rounding (relative ~ 1/254 per
// element) is the only error beyond float rounding; it is small next to q4_K's own error.
//
// Packed layout (in place, the same size as the GGUF tensor): 32-column panels; each panel
// holds, per super-block, 4608 bytes (= 32 x 144), byte offsets:
//   [0, 64)       d of columns 0..31, f16
//   [64, 128)     dmin, f16
//   [128, 256)    [sub-block j][16]: byte i = low 4 bits of sc: column i | column 16+i << 4
//   [256, 384)    the same for m
//   [384, 512)    [j][16]: byte i = high 2 bits of sc(i) | sc(16+i) << 2 | m(i) << 4 | m(16+i) << 6
//   [512, 4608)   quants [k/4][16][4]: byte 4i+t = q(column i, k) | q(column 16+i, k) << 4, k = 4g+t
// so one 16-byte load widened to 16 int32 lanes gives a sub-block's scales for columns 0..15
// and 16..31, and one 64-byte load of quants gives, after & 0x0F and >> 4, the vpdpbusd
// operands of columns 0..15 and 16..31 for 4 consecutive k.
#pragma once

#include "ggml.h"

#include <cstdint>

namespace da3 {

// True when this build has the int8 kernel (compiled with AVX-512 VNNI).
bool q4k_gemm_available();

// Repacks a q4_K weight [K, N] in place into the layout above. N % 32 == 0 (K % 256 == 0 holds
// for any q4_K tensor). Returns false (nothing changed) when the kernel is not compiled in or
// the shape does not fit.
bool pack_q4_K_weight(ggml_tensor *w);

// As linear_q8_rows (cpu_gemm_q8.h), for a weight packed by pack_q4_K_weight.
void linear_q4k_rows(const float *X, int64_t K, const ggml_tensor *w, int64_t m0, int64_t m1, int64_t p0, int64_t p1,
                     const float *bias, const float *scale, const float *res, bool gelu, float *Y);

}  // namespace da3
