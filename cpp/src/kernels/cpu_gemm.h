// Our CPU GEMM for the linear layers, as a ggml custom op (CPU backend only, like cpu_kernels.h).
//
// ggml 0.15.3's CPU matmul reaches about half of this machine's f32 FMA peak on the ViT shapes,
// and its q8_0/q4_K paths are no faster than f32 on x86. This op is a packed, register-blocked
// GEMM (GotoBLAS-style loop nest): the weight rows of a K-block are converted to f32 once per
// thread and stored as NR-wide column panels [k][NR]; activations are packed MR rows at a time;
// an MR x NR micro-kernel keeps its tile in registers. Weights of any ggml type with a
// to_float (f32, f16, q8_0, q4_K, ...) can go through the same kernel (the dequantized block
// lives only in a per-thread scratch buffer); q8_0 and q4_K weights packed at load run as int8
// GEMMs instead (cpu_gemm_q8.h, cpu_gemm_q4k.h) in builds with AVX-512 VNNI.
// The same micro-kernel (cpu_gemm_tile.h) computes attention (cpu_attention.h) and the
// Winograd convolution's products (gemm_tile_f32_packed_a).
//
// Fused epilogue: y = act(x W^T + b) * scale + res, act = identity or exact-erf GELU, scale a
// per-column factor (the ViT's layer scale when it is not folded into the weights).
// Numerics: f32 products summed in k order within K-blocks of at most 512, block sums added in
// order; differs from ggml's matmul only by float rounding.
#pragma once

#include "ggml.h"

#include <cstddef>

namespace da3 {

enum linear_flag : unsigned {
    LINEAR_GELU = 1u,  // exact-erf GELU on x W^T + b (before the residual add)
    LINEAR_BF16 = 2u,  // w packed by pack_linear_weight_bf16: the bf16 GEMM (cpu_gemm_amx.h)
};

// True when linear_cpu can take this weight: 2-D, contiguous, a type ggml can convert to f32,
// and a row count (output features) that is a multiple of the micro-kernel's panel width.
bool linear_cpu_supported(const ggml_tensor *w);

// Repacks an f32 or f16 weight in place, at load, into the kernel's panel layout
// [N/NR][K][NR] (same type, same size): the per-call transposition is then skipped (f32) or
// becomes a contiguous conversion (f16). q8_0 and q4_K weights are repacked for the int8 GEMMs
// (cpu_gemm_q8.h, cpu_gemm_q4k.h) when the build has them: those layers then quantize their
// activations to q8_0 and multiply in int8, as ggml's quantized matmuls do. Only for weights in
// host memory that linear_cpu supports; returns whether it packed. A packed weight is only valid as
// linear_cpu(packed=true)'s operand: no other op may read it.
bool pack_linear_weight(ggml_tensor *w);

// pack_linear_weight for an f32 or f16 tensor of any shape holding N rows of K contiguous values:
// a convolution kernel [KW, KH, Cin, Cout] as the [KW*KH*Cin, Cout] matrix of its im2col GEMM, a
// 1x1 kernel [1, 1, Cin, Cout] as [Cin, Cout]. Its 2-D reshape [K, N] is then linear_cpu's
// packed operand, and nothing else may read it. Returns whether it packed (N a multiple of the
// panel width, host memory). The panels are split over n_threads threads.
bool pack_linear_weight_rows(ggml_tensor *w, int64_t K, int64_t N, int n_threads = 1);

// x [K, M, ...] f32 contiguous (the trailing dims are rows); w [K, N] (packed: as left by
// pack_linear_weight); b [N] f32 or null; res f32 contiguous with the shape of the result or
// null; scale [N] f32 or null: a per-column factor (layer scale) applied after the activation,
// before the residual add. Returns [N, M, ...] f32.
ggml_tensor *linear_cpu(ggml_context *ctx, ggml_tensor *x, ggml_tensor *w, ggml_tensor *b, ggml_tensor *res,
                        unsigned flags, bool packed = false, ggml_tensor *scale = nullptr);

// One tile of a plain f32 product by the linears' micro-kernel, for other ops' inner loops (the
// Winograd convolution, cpu_conv.cpp): C[i][j] = sum_k A[k*MR + i] * B[k*ldb + j] for
// i < R <= MR = gemm_tile_rows(), j < gemm_tile_cols(), with A packed [kc][MR] (rows past R are
// multiplied too, so they must be finite); C rows ldc apart, overwritten.
int gemm_tile_rows();
int gemm_tile_cols();
void gemm_tile_f32_packed_a(int R, int kc, const float *Ap, const float *B, size_t ldb, float *C, size_t ldc);

}  // namespace da3
