// Exact multi-head attention as a ggml custom op (CPU backend only, like cpu_kernels.h), on the
// linears' f32 micro-kernel (cpu_gemm_tile.h): scores, an exact softmax, then P V.
#pragma once

#include "ggml.h"

#include <cstdint>

namespace da3 {

// Optional steps applied to q and k rows before the scores (as the ViT does them).
struct attn_prologue {
    // LayerNorm over D with affine weight/bias ([D] f32), all four or none (q_norm_w null)
    ggml_tensor *q_norm_w = nullptr, *q_norm_b = nullptr, *k_norm_w = nullptr, *k_norm_b = nullptr;
    float eps = 1e-6f;
    // 2D RoPE table [D, 2, P] f32: for the token at sequence index t, row t % P holds cos[D] then
    // sin[D] (each half of D is one axis, rotated NeoX-style); null: no RoPE
    ggml_tensor *rope = nullptr;
};

// Multi-head attention softmax(q k^T / sqrt(D)) v, exact f32 (no online-softmax rescaling: each
// strip of queries holds its full score rows). q [D, NH, Tq, B], k and v [D, NH, Tk, B] f32 with
// contiguous rows (nb[0] = 4; any other strides, e.g. views of a fused qkv), D a multiple of the
// panel width and at most 256 (attention_cpu_supported). Returns [D, NH, Tq, B] f32
// contiguous, as ggml_flash_attn_ext. Two nodes: k (k-norm, RoPE applied) and v packed once per
// head for the scores and P V GEMMs, then the attention.
bool attention_cpu_supported(int64_t head_dim);
ggml_tensor *attention_cpu(ggml_context *ctx, ggml_tensor *q, ggml_tensor *k, ggml_tensor *v,
                           const attn_prologue *pro = nullptr);

}  // namespace da3
