#include "graph/graph.h"

#include "kernels/cpu_attention.h"
#include "kernels/cpu_gemm.h"
#include "kernels/cpu_gemm_amx.h"
#include "kernels/cpu_kernels.h"

namespace da3 {

ggml_tensor *graph_ctx::name(ggml_tensor *t, const std::string &base) {
    const std::string n = prefix + base;
    ggml_set_name(t, n.c_str());
    if (!requested_taps.empty() && requested_taps.count(n)) {
        // a view's memory belongs to its source, which the allocator may reuse: copy it
        ggml_tensor *keep = t->view_src ? ggml_cont(ctx, t) : t;
        ggml_set_output(keep);
        taps.emplace_back(n, keep);
    }
    return t;
}

bool graph_ctx::wants_any(const std::string &p) const {
    const std::string full = prefix + p;
    for (const std::string &n : requested_taps) {
        if (n.compare(0, full.size(), full) == 0) return true;
    }
    return false;
}

ggml_tensor *graph_ctx::input_f32(const std::string &base, std::vector<float> data, int64_t ne0, int64_t ne1,
                                  int64_t ne2, int64_t ne3) {
    const std::string n = prefix + base;
    if ((int64_t)data.size() != ne0 * ne1 * ne2 * ne3) {
        fail(DA3_ERR_INTERNAL, "input '" + n + "': host data size does not match its shape");
    }
    ggml_tensor *t = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, ne0, ne1, ne2, ne3);
    ggml_set_name(t, n.c_str());
    ggml_set_input(t);
    inputs.push_back({t, std::move(data), {}});
    return t;
}

ggml_tensor *graph_ctx::input_i32(const std::string &base, std::vector<int32_t> data, int64_t ne0) {
    const std::string n = prefix + base;
    if ((int64_t)data.size() != ne0) {
        fail(DA3_ERR_INTERNAL, "input '" + n + "': host data size does not match its shape");
    }
    ggml_tensor *t = ggml_new_tensor_1d(ctx, GGML_TYPE_I32, ne0);
    ggml_set_name(t, n.c_str());
    ggml_set_input(t);
    inputs.push_back({t, {}, std::move(data)});
    return t;
}

ggml_tensor *mul_mat_f32acc(ggml_context *ctx, ggml_tensor *a, ggml_tensor *b) {
    ggml_tensor *y = ggml_mul_mat(ctx, a, b);
    ggml_mul_mat_set_prec(y, GGML_PREC_F32);
    return y;
}

ggml_tensor *conv2d_f32acc(ggml_context *ctx, ggml_tensor *kernel, ggml_tensor *x, int stride, int pad) {
    // as ggml_conv_2d (ggml.c), the matmul's precision set
    ggml_tensor *cols = ggml_im2col(ctx, kernel, x, stride, stride, pad, pad, 1, 1, true, kernel->type);  // [Cin*KH*KW, OW, OH, N]
    ggml_tensor *y = mul_mat_f32acc(ctx, ggml_reshape_2d(ctx, cols, cols->ne[0], cols->ne[3] * cols->ne[2] * cols->ne[1]),
                                    ggml_reshape_2d(ctx, kernel, kernel->ne[0] * kernel->ne[1] * kernel->ne[2], kernel->ne[3]));
    y = ggml_reshape_4d(ctx, y, cols->ne[1], cols->ne[2], cols->ne[3], kernel->ne[3]);  // [OW, OH, N, Cout]
    return ggml_cont(ctx, ggml_permute(ctx, y, 0, 1, 3, 2));                           // [OW, OH, Cout, N]
}

ggml_tensor *build_linear(graph_ctx &g, ggml_tensor *x, const linear &l, ggml_tensor *res, bool gelu, ggml_tensor *scale) {
    // the packed GEMM pays off from a few dozen rows (tokens); below, ggml's matmul is as good
    constexpr int64_t kMinRows = 32;
    if (l.packed || (g.cpu_kernels && linear_cpu_supported(l.w) && ggml_nrows(x) >= kMinRows)) {
        if (!g.cpu_kernels) fail(DA3_ERR_INTERNAL, "build_linear: packed weights outside a CPU graph");
        if (!ggml_is_contiguous(x)) x = ggml_cont(g.ctx, x);
        if (res && !ggml_is_contiguous(res)) res = ggml_cont(g.ctx, res);
        if (scale && scale->type != GGML_TYPE_F32) scale = ggml_cast(g.ctx, scale, GGML_TYPE_F32);
        return linear_cpu(g.ctx, x, l.w, l.b, res, (gelu ? LINEAR_GELU : 0u) | (l.bf16 ? LINEAR_BF16 : 0u), l.packed, scale);
    }
    ggml_tensor *y = mul_mat_f32acc(g.ctx, l.w, x);
    if (l.b) {
        y = ggml_add(g.ctx, y, l.b);
    }
    if (gelu) {
        y = g.cpu_kernels ? gelu_erf_cpu(g.ctx, y) : ggml_gelu_erf(g.ctx, y);
    }
    if (scale) {
        y = ggml_mul(g.ctx, y, scale);
    }
    if (res) {
        y = ggml_add(g.ctx, y, res);
    }
    return y;
}

ggml_tensor *build_norm(graph_ctx &g, ggml_tensor *x, const layer_norm &n, float eps) {
    auto f32_or_null = [](const ggml_tensor *t) { return !t || t->type == GGML_TYPE_F32; };
    if (g.cpu_kernels && x->type == GGML_TYPE_F32 && ggml_is_contiguous(x) && f32_or_null(n.w) && f32_or_null(n.b)) {
        return layer_norm_cpu(g.ctx, x, n.w, n.b, eps);  // one pass instead of norm, mul, add
    }
    ggml_tensor *y = ggml_norm(g.ctx, x, eps);
    if (n.w) {
        y = ggml_mul(g.ctx, y, n.w);
    }
    if (n.b) {
        y = ggml_add(g.ctx, y, n.b);
    }
    return y;
}

ggml_tensor *add_channel_bias(graph_ctx &g, ggml_tensor *x, ggml_tensor *b) {
    if (!b) {
        return x;
    }
    return ggml_add(g.ctx, x, ggml_reshape_4d(g.ctx, b, 1, 1, b->ne[0], 1));
}

ggml_tensor *build_conv2d(graph_ctx &g, ggml_tensor *x, const conv2d &c, int stride, int pad) {
    ggml_tensor *y;
    const bool k1 = c.w->ne[0] == 1 && c.w->ne[1] == 1 && stride == 1 && pad == 0;
    if (k1 && g.cpu_kernels && !c.packed) {
        return conv_cpu(g.ctx, ggml_is_contiguous(x) ? x : ggml_cont(g.ctx, x), c.w, c.b, nullptr, 0);
    }
    if (k1) {
        // 1x1 convolution = matmul over channels: [W*H, Cin, N] x [Cin, Cout]
        const int64_t W = x->ne[0], H = x->ne[1], C = x->ne[2], N = x->ne[3];
        ggml_tensor *xt = ggml_cont(g.ctx, ggml_permute(g.ctx, ggml_reshape_3d(g.ctx, x, W * H, C, N), 1, 0, 2, 3));
        ggml_tensor *w = ggml_reshape_2d(g.ctx, c.w, c.w->ne[2], c.w->ne[3]);
        y = mul_mat_f32acc(g.ctx, w, xt);  // [Cout, W*H, N]
        y = ggml_cont(g.ctx, ggml_permute(g.ctx, y, 1, 0, 2, 3));
        y = ggml_reshape_4d(g.ctx, y, W, H, c.w->ne[3], N);
    } else if (g.cpu_kernels && (!c.b || c.b->type == GGML_TYPE_F32)) {
        // as ggml_conv_2d (im2col, then a matmul with the kernel as [KW*KH*Cin, Cout]) with our
        // GEMM, bias fused
        const int64_t N = x->ne[3], Cin = c.w->ne[2], Cout = c.w->ne[3];
        ggml_tensor *cols = ggml_im2col(g.ctx, c.w, x, stride, stride, pad, pad, 1, 1, true, GGML_TYPE_F32);
        const int64_t OW = cols->ne[1], OH = cols->ne[2], K = c.w->ne[0] * c.w->ne[1] * Cin;
        const linear l{ggml_reshape_2d(g.ctx, c.w, K, Cout), c.b, c.packed};
        y = build_linear(g, ggml_reshape_2d(g.ctx, cols, K, OW * OH * N), l);  // [Cout, OW*OH*N]
        return ggml_cont_4d(g.ctx, ggml_permute(g.ctx, ggml_reshape_4d(g.ctx, y, Cout, OW, OH, N), 2, 0, 1, 3), OW, OH,
                            Cout, N);
    } else {
        if (c.packed) fail(DA3_ERR_INTERNAL, "build_conv2d: packed weights outside a CPU graph");
        y = conv2d_f32acc(g.ctx, c.w, x, stride, pad);
    }
    return add_channel_bias(g, y, c.b);
}

void pack_conv_for_cpu(conv2d &c, int n_threads) {
    if (!c.w || (c.b && c.b->type != GGML_TYPE_F32)) return;  // the GEMM fuses an f32 bias only
    c.packed = pack_linear_weight_rows(c.w, c.w->ne[0] * c.w->ne[1] * c.w->ne[2], c.w->ne[3], n_threads);
}

ggml_tensor *build_conv3x3(graph_ctx &g, ggml_tensor *x, const conv2d &c, unsigned flags, ggml_tensor *res,
                           ggml_tensor *res2) {
    if (g.cpu_kernels) {
        return conv_cpu(g.ctx, ggml_is_contiguous(x) ? x : ggml_cont(g.ctx, x), c.w, c.b, res, flags, res2);
    }
    if (flags & CONV_RELU_IN) x = ggml_relu(g.ctx, x);
    ggml_tensor *y = build_conv2d(g, x, c, 1, 1);
    if (flags & CONV_RELU_OUT) y = ggml_relu(g.ctx, y);
    if (res) y = ggml_add(g.ctx, y, res);
    return res2 ? ggml_add(g.ctx, y, res2) : y;
}

ggml_tensor *build_resize_bilinear(graph_ctx &g, ggml_tensor *x, int w, int h, bool align_corners) {
    if (x->ne[0] == w && x->ne[1] == h) {
        return x;
    }
    if (g.cpu_kernels && align_corners) {
        return resize_bilinear_ac_cpu(g.ctx, ggml_is_contiguous(x) ? x : ggml_cont(g.ctx, x), w, h);
    }
    uint32_t mode = GGML_SCALE_MODE_BILINEAR;
    if (align_corners) {
        mode |= GGML_SCALE_FLAG_ALIGN_CORNERS;
    }
    return ggml_interpolate(g.ctx, x, w, h, x->ne[2], x->ne[3], mode);
}

void pack_linear_for_cpu(linear &l, bool bf16) {
    l.bf16 = bf16 && pack_linear_weight_bf16(l.w);
    l.packed = l.bf16 || pack_linear_weight(l.w);
}

const char *linear_engine_name(const linear &l) {
    if (l.bf16) return bf16_engine_name(bf16_engine_available());
    if (l.packed && (l.w->type == GGML_TYPE_Q8_0 || l.w->type == GGML_TYPE_Q4_K)) return "int8";
    return "f32";
}

bool attention_fused_available(const graph_ctx &g, int64_t head_dim) {
    return g.cpu_kernels && attention_cpu_supported(head_dim);
}

ggml_tensor *build_attention_fused(graph_ctx &g, ggml_tensor *q, ggml_tensor *k, ggml_tensor *v,
                                   const layer_norm *q_norm, const layer_norm *k_norm, float eps, ggml_tensor *rope) {
    if (!attention_fused_available(g, q->ne[0])) fail(DA3_ERR_INTERNAL, "build_attention_fused: not available here");
    attn_prologue pro;
    if (q_norm && k_norm) {
        pro.q_norm_w = q_norm->w, pro.q_norm_b = q_norm->b, pro.k_norm_w = k_norm->w, pro.k_norm_b = k_norm->b;
        pro.eps = eps;
    }
    pro.rope = rope;
    return attention_cpu(g.ctx, q, k, v, &pro);
}

ggml_tensor *build_add_uv(graph_ctx &g, ggml_tensor *x, ggml_tensor *tx, ggml_tensor *ty) {
    if (g.cpu_kernels && ggml_is_contiguous(x)) return add_uv_cpu(g.ctx, x, tx, ty);
    const int64_t w = x->ne[0], h = x->ne[1], D = x->ne[2] / 2;
    ggml_tensor *pe = ggml_concat(g.ctx, ggml_repeat_4d(g.ctx, tx, w, h, D, 1), ggml_repeat_4d(g.ctx, ty, w, h, D, 1), 2);
    return ggml_add(g.ctx, x, pe);
}

bool resize_uv_fused_available(const graph_ctx &g) { return g.cpu_kernels; }

ggml_tensor *build_resize_uv_fused(graph_ctx &g, ggml_tensor *x, int w, int h, ggml_tensor *tx, ggml_tensor *ty) {
    if (!resize_uv_fused_available(g)) fail(DA3_ERR_INTERNAL, "build_resize_uv_fused: not a CPU graph");
    return resize_bilinear_ac_cpu(g.ctx, x, w, h, tx, ty);
}

bool conv3x3_resize_fusable(const graph_ctx &g, int64_t w, int64_t h, const ggml_tensor *x, const conv2d &c) {
    return g.cpu_kernels && conv3x3_fuses_resize(w, h, x, c.w);
}

ggml_tensor *build_conv3x3_resized(graph_ctx &g, ggml_tensor *x, int w, int h, ggml_tensor *tx, ggml_tensor *ty,
                                   const conv2d &c, unsigned flags, const conv2d *c1) {
    if (!conv3x3_resize_fusable(g, w, h, x, c)) fail(DA3_ERR_INTERNAL, "build_conv3x3_resized: not fusable here");
    return conv3x3_resized_cpu(g.ctx, x, w, h, tx, ty, c.w, c.b, flags, c1 ? c1->w : nullptr, c1 ? c1->b : nullptr);
}

ggml_tensor *build_concat_skip_token0(graph_ctx &g, ggml_tensor *a, ggml_tensor *b) {
    auto skip_tok0 = [&](ggml_tensor *t) {
        return ggml_view_3d(g.ctx, t, t->ne[0], t->ne[1] - 1, t->ne[2], t->nb[1], t->nb[2], t->nb[1]);
    };
    if (g.cpu_kernels) return concat_rows_cpu(g.ctx, skip_tok0(a), skip_tok0(b));  // one copy instead of concat + cont
    return ggml_cont(g.ctx, skip_tok0(ggml_concat(g.ctx, a, b, 0)));
}

}  // namespace da3
