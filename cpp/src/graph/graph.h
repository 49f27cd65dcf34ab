// Small reusable ggml graph builders (after llama.cpp clip-graph.h) and the per-call graph
// context that names every intermediate so it can be returned as a "tap" and compared with
// PyTorch layer by layer.
//
// Layout conventions inside graphs (ggml order, ne0 fastest):
//   tokens:       [C, T, N]     == PyTorch [N, T, C]
//   feature maps: [W, H, C, N]  == PyTorch [N, C, H, W]
#pragma once

#include "common.h"
#include "kernels/cpu_kernels.h"  // conv_flag (build_conv3x3's flags); the kernels are called from graph.cpp only

#include "ggml.h"

#include <functional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace da3 {

struct linear {
    ggml_tensor *w = nullptr;  // [in, out] (ggml order), any type
    ggml_tensor *b = nullptr;  // [out] or null
    bool packed = false;       // w repacked for linear_cpu (pack_linear_weight): CPU graphs only
    bool bf16 = false;         // packed by pack_linear_weight_bf16 instead (packed is then set too)
};

struct layer_norm {
    ggml_tensor *w = nullptr;  // [C]
    ggml_tensor *b = nullptr;  // [C]
};

struct conv2d {
    ggml_tensor *w = nullptr;  // [KW, KH, Cin, Cout] (PyTorch memory layout)
    ggml_tensor *b = nullptr;  // [Cout] or null
    bool packed = false;       // w repacked as [KW*KH*Cin, Cout] (pack_linear_weight_rows): CPU graphs only
};

// Per-call graph context.
struct graph_ctx {
    ggml_context *ctx = nullptr;
    ggml_cgraph *gf = nullptr;
    size_t capacity = 0;  // tensors ctx holds = nodes + leafs gf holds (engine.cpp graph_capacity)

    // Names requested by the caller: tensors named so are marked as outputs and kept.
    std::unordered_set<std::string> requested_taps;
    bool cpu_kernels = false;  // the graph runs on the CPU backend: our fused CPU ops may be used
    std::string prefix;  // prepended to every name (e.g. "m." for the nested metric branch)
    std::vector<std::pair<std::string, ggml_tensor *>> taps;

    // Host data to upload into graph inputs after allocation.
    struct host_input {
        ggml_tensor *t;
        std::vector<float> f32;
        std::vector<int32_t> i32;
    };
    std::vector<host_input> inputs;

    // Names `t` and records it as a tap when requested. Returns t.
    ggml_tensor *name(ggml_tensor *t, const std::string &n);
    // Whether the caller asked for the tap `n` (before the prefix): an op that would fuse that
    // tensor away must then build it.
    bool wants(const std::string &n) const { return requested_taps.count(prefix + n) > 0; }
    // Whether the caller asked for any tap whose name starts with `p` (before the prefix).
    bool wants_any(const std::string &p) const;

    // New graph inputs whose contents come from the host (uploaded after allocation).
    ggml_tensor *input_f32(const std::string &n, std::vector<float> data, int64_t ne0, int64_t ne1 = 1,
                           int64_t ne2 = 1, int64_t ne3 = 1);
    ggml_tensor *input_i32(const std::string &n, std::vector<int32_t> data, int64_t ne0);
};

// ggml_mul_mat(a, b) that accumulates in f32 on every backend (GGML_PREC_F32: GPU backends
// otherwise may sum f16 products in f16). Every matrix product of our graphs goes through it.
ggml_tensor *mul_mat_f32acc(ggml_context *ctx, ggml_tensor *a, ggml_tensor *b);

// ggml_conv_2d (im2col, then the kernel's matmul) with mul_mat_f32acc: kernel [KW, KH, Cin, Cout],
// x [W, H, Cin, N] -> [W', H', Cout, N], no bias.
ggml_tensor *conv2d_f32acc(ggml_context *ctx, ggml_tensor *kernel, ggml_tensor *x, int stride, int pad);

// y = act(x W^T + b) * scale + res over ne0; act = exact-erf GELU when gelu, else identity;
// scale null or [N] (a layer scale); res null or the shape of the result. Our packed GEMM
// (cpu_gemm.h) when g.cpu_kernels and the weight suits it, ggml ops otherwise.
ggml_tensor *build_linear(graph_ctx &g, ggml_tensor *x, const linear &l, ggml_tensor *res = nullptr, bool gelu = false,
                          ggml_tensor *scale = nullptr);

// LayerNorm over ne0 (PyTorch nn.LayerNorm over the last dim).
ggml_tensor *build_norm(graph_ctx &g, ggml_tensor *x, const layer_norm &n, float eps);

// 2D convolution on [W, H, Cin, N] -> [W', H', Cout, N] (PyTorch nn.Conv2d semantics).
ggml_tensor *build_conv2d(graph_ctx &g, ggml_tensor *x, const conv2d &c, int stride, int pad);

// CPU backend only, at load: repacks c's kernel in place as the [KW*KH*Cin, Cout] matrix of its
// im2col GEMM (pack_linear_weight_rows, on n_threads threads) and sets c.packed, when it can
// (f32/f16 kernel, f32 bias or none). A packed conv then runs only through that GEMM
// (build_conv2d, or build_linear on the kernel's 2-D reshape).
void pack_conv_for_cpu(conv2d &c, int n_threads);

// 3x3 convolution, stride 1, padding 1, with fused extras (cpu_kernels.h flags):
// act_out(conv(act_in(x)) + b) + res + res2. The fused CPU kernel when g.cpu_kernels, ggml ops
// otherwise.
ggml_tensor *build_conv3x3(graph_ctx &g, ggml_tensor *x, const conv2d &c, unsigned flags = 0, ggml_tensor *res = nullptr,
                           ggml_tensor *res2 = nullptr);

// Bilinear resize of [W, H, C, N] to (w, h); align_corners as in F.interpolate.
ggml_tensor *build_resize_bilinear(graph_ctx &g, ggml_tensor *x, int w, int h, bool align_corners);

// Adds a per-channel bias [C] to a feature map [W, H, C, N].
ggml_tensor *add_channel_bias(graph_ctx &g, ggml_tensor *x, ggml_tensor *b);

// ---- the choice of our CPU kernels (kernels/) over ggml ops: made here, and only here ----

// CPU backend only, at load: repacks l's weight in place for our GEMM (bf16: for the bf16 engine
// when one is available, else f32/int8 panels) and sets l.packed / l.bf16 accordingly.
void pack_linear_for_cpu(linear &l, bool bf16);
// What runs a linear packed by pack_linear_for_cpu: "amx_bf16", "avx512_bf16", "int8" or "f32".
const char *linear_engine_name(const linear &l);

// Whether build_attention_fused can run attention with heads of head_dim in this graph (our
// exact CPU op: g.cpu_kernels and a supported head width). Ask before building its operands.
bool attention_fused_available(const graph_ctx &g, int64_t head_dim);
// softmax(q' k'^T / sqrt(D)) v as one op, q' and k' being q and k after an optional LayerNorm
// (q_norm/k_norm, both or neither, eps) and an optional 2D RoPE (rope: the [D, 2, T] cos/sin
// table, or null). q [D, NH, Tq, B], k and v [D, NH, Tk, B] f32 with contiguous rows (views of
// a fused qkv are fine). Returns [D, NH, Tq, B] f32. Only where attention_fused_available.
ggml_tensor *build_attention_fused(graph_ctx &g, ggml_tensor *q, ggml_tensor *k, ggml_tensor *v,
                                   const layer_norm *q_norm, const layer_norm *k_norm, float eps, ggml_tensor *rope);

// x [W, H, C, N] plus the DPT head's UV embedding given as its two axis tables: tx [W, 1, C/2, 1]
// on channels [0, C/2), ty [1, H, C/2, 1] on [C/2, C). One pass on the CPU.
ggml_tensor *build_add_uv(graph_ctx &g, ggml_tensor *x, ggml_tensor *tx, ggml_tensor *ty);

// The align-corners bilinear resize of x [w0, h0, C, N] to (w, h) plus, when tx/ty are given,
// the UV embedding (as build_add_uv) as our CPU op in one pass. CPU graphs only
// (resize_uv_fused_available).
bool resize_uv_fused_available(const graph_ctx &g);
ggml_tensor *build_resize_uv_fused(graph_ctx &g, ggml_tensor *x, int w, int h, ggml_tensor *tx, ggml_tensor *ty);

// build_conv3x3(resize_uv(x, w, h, tx, ty), c, flags) without storing the resized map (CPU
// graphs, Winograd-sized layers: conv3x3_resize_fusable); with c1, the 1x1 convolution of that
// result follows in the same pass. x contiguous.
bool conv3x3_resize_fusable(const graph_ctx &g, int64_t w, int64_t h, const ggml_tensor *x, const conv2d &c);
ggml_tensor *build_conv3x3_resized(graph_ctx &g, ggml_tensor *x, int w, int h, ggml_tensor *tx, ggml_tensor *ty,
                                   const conv2d &c, unsigned flags, const conv2d *c1 = nullptr);

// The tokens 1.. of cat(a, b) along ne0: a [Ca, T, N] and b [Cb, T, N] -> [Ca + Cb, T - 1, N]
// contiguous (one row copy on the CPU).
ggml_tensor *build_concat_skip_token0(graph_ctx &g, ggml_tensor *a, ggml_tensor *b);

}  // namespace da3
