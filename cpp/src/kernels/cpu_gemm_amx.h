// bf16 GEMM for the linear layers on the CPU's matrix engines (the opt-in "bf16" precision).
//
// Weights are repacked once, at load, in place, into bf16 VNNI pairs: panels of 32 output
// columns, each K-block of 32 as two 16 x 16 tiles of pairs ([k/2][16 columns][2]), the layout of
// an AMX B tile and of a vdpbf16ps operand row. The activations are rounded to bf16 (nearest
// even) by a packing node of their own ([K_pad, M_pad] bf16, zero padded), then one GEMM node
// accumulates in f32 (AMX tiles, or vdpbf16ps registers) over the whole K and applies the same f32
// epilogue as linear_cpu (bias, exact GELU, per-column scale, residual), chunked as linear_cpu
// (cpu_work.h). Numerics: products of bf16-rounded operands summed in f32; not bit-comparable
// with the f32 path (relative error about 2^-9 per operand).
//
// Only the avx512 variant (and native builds of x86-64 with AVX-512) has these engines; elsewhere
// bf16_engine_available() (cpu_engine.h) is none and nothing here packs. AMX and AVX512-BF16 instructions are
// compiled with function-level target attributes and run only after the runtime check.
#pragma once

#include "kernels/cpu_engine.h"

#include "ggml.h"

#include <cstddef>
#include <cstdint>

namespace da3 {

// Repacks an f32 or f16 weight [K, N] in place into the bf16 panel layout (the tensor keeps its
// type and shape; its bytes are then only valid as linear_bf16's weight). Needs N % 32 == 0 and
// the packed size (K rounded up to 32) to fit: f16 weights need K % 32 == 0. Returns whether it
// packed; false when no engine is available.
bool pack_linear_weight_bf16(ggml_tensor *w);

// y = act(x W^T + b) * scale + res as linear_cpu, with w packed by pack_linear_weight_bf16, on
// `engine` (not none). Two nodes: x rounded to bf16, then the GEMM.
ggml_tensor *linear_bf16(ggml_context *ctx, ggml_tensor *x, ggml_tensor *w, ggml_tensor *b, ggml_tensor *res,
                         ggml_tensor *scale, bool gelu, bf16_engine engine);

// For tests, on host arrays: W f32 [N][K] row-major packed into Wp (bf16_packed_size(K, N)
// uint16 values), X [M][K] f32 -> Y [M][N] f32 = X W^T + bias (bias may be null) on `engine`.
size_t bf16_packed_size(int64_t K, int64_t N);
void bf16_pack_host(const float *W, int64_t K, int64_t N, uint16_t *Wp);
void bf16_gemm_host(bf16_engine engine, const float *X, int64_t M, int64_t K, const uint16_t *Wp, int64_t N,
                    const float *bias, float *Y);
// f32 -> bf16 bits, round to nearest even (NaN stays NaN)
uint16_t f32_to_bf16(float f);

}  // namespace da3
