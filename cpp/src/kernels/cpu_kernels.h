// Our own CPU kernels, as ggml custom ops, for the ops where ggml's CPU code is slow on this
// network. Compiled with the variant's ISA flags (GCC/Clang vector extensions: AVX-512, AVX2,
// SSE or NEON registers as the target provides; scalar loops elsewhere). Only the CPU backend
// can run them: graphs for GPU backends keep the plain ggml ops (graph_ctx::cpu_kernels).
//
// conv_cpu: fused 3x3 and 1x1 convolutions (the DPT head's hot spot).
// ggml's conv_2d goes through im2col + GEMM: a [9*Cin, W*H] patch matrix is written and read
// back for every layer (160 MB for the 504x280 output conv), plus separate passes for bias,
// ReLU and the residual add. This op computes the convolution directly from the feature map,
// register-blocked over output channels and columns, with those element-wise steps fused:
//
//   y = act_out(conv(act_in(x), w) + b) + res + res2      (3x3: stride 1, padding 1; 1x1)
//
// A 1x1 convolution reads the [W, H, C] planes in place (no permutes around a matmul).
//
// The sum runs over (ci, ky, kx) in that order, so results differ from im2col + GEMM only by
// float rounding.
#pragma once

#include "ggml.h"

namespace da3 {

enum conv_flag : unsigned {
    CONV_RELU_IN = 1u,   // ReLU on the input (as read; x itself is unchanged); 3x3 only
    CONV_RELU_OUT = 2u,  // ReLU on conv + bias (before the residual add)
};

// x [W, H, Cin, N] f32 (contiguous); w [K, K, Cin, Cout] f32 or f16 (PyTorch layout), K = 1
// or 3; b [Cout] f32 or null; res, res2 [W, H, Cout, N] f32 or null (res2 is added after res: a
// sum that follows, as the DPT fusion's x0 + RCU(x1), without a pass of its own).
// Returns [W, H, Cout, N] f32.
ggml_tensor *conv_cpu(ggml_context *ctx, ggml_tensor *x, ggml_tensor *w, ggml_tensor *b, ggml_tensor *res,
                      unsigned flags, ggml_tensor *res2 = nullptr);

// conv_cpu (3x3, stride 1, padding 1, no residual) on the align-corners bilinear resize of x
// [w0, h0, Cin, N] to (w, h) plus the head's UV embedding (uvx [w, Cin/2], uvy [h, Cin/2], as
// resize_bilinear_ac_cpu; both or neither), without materializing the resized map: its rows are
// computed as the Winograd input transform reads them (each about 1.5 times). Same values as
// resize_bilinear_ac_cpu then conv_cpu. Returns [w, h, Cout, N]; only where
// conv3x3_fuses_resize(w, h, x, wt) holds.
// With w1x1 [1, 1, Cout, C2] (f32 or f16) and b1x1 [C2] f32 (or null), a 1x1 convolution of that
// result follows in the same pass (as the head's last 3x3 + ReLU + 1x1): returns [w, h, C2, N],
// the 3x3 output is never stored, and the values are those of conv_cpu's 1x1 on it.
bool conv3x3_fuses_resize(int64_t w, int64_t h, const ggml_tensor *x, const ggml_tensor *wt);
ggml_tensor *conv3x3_resized_cpu(ggml_context *ctx, ggml_tensor *x, int w, int h, ggml_tensor *uvx, ggml_tensor *uvy,
                                 ggml_tensor *wt, ggml_tensor *b, unsigned flags, ggml_tensor *w1x1 = nullptr,
                                 ggml_tensor *b1x1 = nullptr);

// GELU with the exact erf form, 0.5 x erfc(-x / sqrt 2), vectorized (ggml's CPU op calls
// erff per element). erfc: rational approximation with fractional error < 1.2e-7
// (Numerical Recipes, erfcc), exp: Cephes-style, so the result is within ~3e-7 relative of
// PyTorch's nn.GELU(). x f32 contiguous; returns a tensor of the same shape.
ggml_tensor *gelu_erf_cpu(ggml_context *ctx, ggml_tensor *x);

// LayerNorm over ne[0] of every row, y = (x - mean) / sqrt(var + eps) * w + b (w, b [ne[0]] f32
// or null), as one op (ggml: norm, then mul, then add, three passes). Mean, then variance of the
// centred values, summed in f32. x f32 contiguous; returns a tensor of the same shape.
ggml_tensor *layer_norm_cpu(ggml_context *ctx, ggml_tensor *x, ggml_tensor *w, ggml_tensor *b, float eps);

// Bilinear resize of [W, H, C, N] f32 to (w, h) with align_corners=True, as PyTorch's
// F.interpolate(mode="bilinear", align_corners=True): source coordinate = dst * (in - 1) /
// (out - 1), rows blended first, then columns. With uvx [w, C/2] and uvy [h, C/2] (both or
// neither), the head's UV embedding is added to the result as add_uv_cpu does, in the same pass.
ggml_tensor *resize_bilinear_ac_cpu(ggml_context *ctx, ggml_tensor *x, int w, int h, ggml_tensor *uvx = nullptr,
                                    ggml_tensor *uvy = nullptr);

// Row helpers of that resize, shared with conv3x3_resized_cpu. resize_columns_ac: per output
// column j < wo, the left source column x0[j] and its weight wx[j]. resize_row_ac: output row i
// (of ho) of one [wi, hi] plane, columns [j0, j1) into out[0, j1 - j0), plus ex[j] (ex not null)
// or ey; tmp: resize_row_tmp_size(wi) floats of scratch.
void resize_columns_ac(int wi, int wo, int *x0, float *wx);
void resize_row_ac(const float *plane, int wi, int hi, int ho, int i, const int *x0, const float *wx, int j0, int j1,
                   const float *ex, float ey, float *tmp, float *out);
inline size_t resize_row_tmp_size(int wi) { return (size_t)wi + 2 * 16 + 1; }  // 16: the widest VW

// x + the DPT head's UV position embedding, in one pass: x [W, H, C, N] f32 contiguous, C even;
// tx [W, C/2] added to channels [0, C/2) (varies along x), ty [H, C/2] to channels [C/2, C)
// (varies along y). Replaces repeat + repeat + concat + add.
ggml_tensor *add_uv_cpu(ggml_context *ctx, ggml_tensor *x, ggml_tensor *tx, ggml_tensor *ty);

// Concatenation along ne[0], row by row: [Ca, ...] and [Cb, ...] f32 with the same ne[1..3] and
// contiguous rows (any row strides, e.g. views that skip a token) -> [Ca + Cb, ...] contiguous.
// One memcpy per row half (ggml's concat computes every element's index).
ggml_tensor *concat_rows_cpu(ggml_context *ctx, ggml_tensor *a, ggml_tensor *b);

}  // namespace da3
