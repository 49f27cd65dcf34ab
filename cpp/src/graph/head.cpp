// DualDPT / DPT head graphs. ref: depth_anything_3/model/dualdpt.py, dpt.py, utils/head_utils.py
#include "graph/head.h"

#include "gguf/schema.h"
#include "gguf/weights.h"

#include <algorithm>
#include <cmath>

namespace da3 {

namespace mk = schema::mk;  // metadata keys

namespace {

const float kHeadLnEps = 1e-5f;  // nn.LayerNorm default (head.norm, output_conv2_aux LN)

// ---- loading ----

conv2d get_conv(const weight_map &wm, const std::string &name, int64_t kw, int64_t kh, int64_t cin, int64_t cout,
                bool bias) {
    conv2d c;
    c.w = wm.get(name + ".weight", {kw, kh, cin, cout});
    c.b = bias ? wm.get(name + ".bias", {cout}) : nullptr;
    return c;
}

fusion_block load_fusion(const weight_map &wm, const std::string &p, int F, bool has_rc1) {
    namespace tn = schema::tn;
    const auto rc = [&](int u, int v) {
        return p + "." + tn::kResConf + std::to_string(u) + "." + tn::kResConfConv + std::to_string(v);
    };
    fusion_block fb;
    fb.has_rc1 = has_rc1;
    if (has_rc1) {
        fb.rc1_c1 = get_conv(wm, rc(1, 1), 3, 3, F, F, true);
        fb.rc1_c2 = get_conv(wm, rc(1, 2), 3, 3, F, F, true);
    }
    fb.rc2_c1 = get_conv(wm, rc(2, 1), 3, 3, F, F, true);
    fb.rc2_c2 = get_conv(wm, rc(2, 2), 3, 3, F, F, true);
    fb.out = get_conv(wm, p + "." + tn::kFusionOut, 1, 1, F, F, true);
    return fb;
}

// ---- graph pieces ----

ggml_tensor *conv3x3(graph_ctx &g, ggml_tensor *x, const conv2d &c) { return build_conv3x3(g, x, c); }
ggml_tensor *conv1x1(graph_ctx &g, ggml_tensor *x, const conv2d &c) { return build_conv2d(g, x, c, 1, 0); }

// ConvTranspose2d with kernel == stride, no padding, as one matmul plus two permutes
// (ggml's CPU conv_transpose_2d ignores the batch dimension, and this runs on every backend).
// out[co, y*s+ky, x*s+kx] = b[co] + sum_ci W[ci, co, ky, kx] in[ci, y, x].
ggml_tensor *conv_transpose_ks(graph_ctx &g, ggml_tensor *x, const conv2d &c) {
    ggml_context *ctx = g.ctx;
    const int64_t KW = c.w->ne[0], KH = c.w->ne[1], Cout = c.w->ne[2], Cin = c.w->ne[3];
    const int64_t W = x->ne[0], H = x->ne[1], N = x->ne[3];
    // kernel [KW, KH, Cout, Cin] -> [Cin, KW*KH*Cout]
    ggml_tensor *wm = ggml_cont(ctx, ggml_permute(ctx, c.w, 1, 2, 3, 0));
    wm = ggml_reshape_2d(ctx, wm, Cin, KW * KH * Cout);
    // input [W, H, Cin, N] -> [Cin, W*H*N]
    ggml_tensor *xm = ggml_cont(ctx, ggml_permute(ctx, x, 1, 2, 0, 3));
    xm = ggml_reshape_2d(ctx, xm, Cin, W * H * N);
    // the bias per GEMM column (kx, ky, co), b[co] repeated KW*KH times, is added in the GEMM
    ggml_tensor *bias = nullptr;
    if (c.b) {
        bias = ggml_repeat_4d(ctx, ggml_reshape_2d(ctx, c.b, 1, Cout), KW * KH, Cout, 1, 1);
        bias = ggml_reshape_1d(ctx, bias, KW * KH * Cout);
    }
    ggml_tensor *r = build_linear(g, xm, linear{wm, bias});  // (kx, ky, co, x, y, n)
    r = ggml_reshape_4d(ctx, r, KW, KH * Cout, W, H * N);
    r = ggml_cont(ctx, ggml_permute(ctx, r, 0, 2, 1, 3));  // (kx, x, ky, co, y, n)
    r = ggml_reshape_4d(ctx, r, KW * W * KH, Cout, H, N);
    return ggml_cont_4d(ctx, ggml_permute(ctx, r, 0, 2, 1, 3), W * KW, H * KH, Cout, N);  // (kx, x, ky, y, co, n)
}

// RCU: x + conv2(relu(conv1(relu(x)))), then + `after` if given (in that order, in the conv's pass)
ggml_tensor *residual_conv_unit(graph_ctx &g, ggml_tensor *x, const conv2d &c1, const conv2d &c2,
                                ggml_tensor *after = nullptr) {
    ggml_tensor *y = build_conv3x3(g, x, c1, CONV_RELU_IN);
    return build_conv3x3(g, y, c2, CONV_RELU_IN, x, after);
}

// FeatureFusionBlock without its final align_corners bilinear resize. The 1x1 out_conv is
// applied before that resize: both are linear and the bilinear weights sum to 1, so this equals
// PyTorch's resize-then-conv at a quarter of the cost for the x2 upsample.
ggml_tensor *fusion_unresized(graph_ctx &g, const fusion_block &fb, ggml_tensor *x0, ggml_tensor *x1) {
    ggml_tensor *y = x0;
    if (x1 && fb.has_rc1) {
        y = residual_conv_unit(g, x1, fb.rc1_c1, fb.rc1_c2, x0);  // x0 + RCU(x1), the same sum
    }
    y = residual_conv_unit(g, y, fb.rc2_c1, fb.rc2_c2);
    return conv1x1(g, y, fb.out);
}

ggml_tensor *fusion(graph_ctx &g, const fusion_block &fb, ggml_tensor *x0, ggml_tensor *x1, int out_w, int out_h) {
    return build_resize_bilinear(g, fusion_unresized(g, fb, x0, x1), out_w, out_h, true);
}

// Separable UV sin/cos tables: the first C/2 channels of the embedding depend only on the
// column (ex [C/2, w]), the others only on the row (ey [C/2, h]); values already * ratio.
// ref: head_utils.py create_uv_grid, position_grid_to_embed, make_sincos_pos_embed (float32).
void uv_axis_tables(int w, int h, int C, double aspect, float ratio, std::vector<float> &ex, std::vector<float> &ey) {
    const double diag = std::sqrt(aspect * aspect + 1.0);
    const double span_x = aspect / diag, span_y = 1.0 / diag;
    // torch.linspace in float32: start + step*i for the first half, end - step*(steps-1-i) after.
    auto linspace = [](double lo, double hi, int steps) {
        std::vector<float> v(steps);
        const float start = (float)lo, end = (float)hi;
        const float step = steps > 1 ? (end - start) / (float)(steps - 1) : 0.0f;
        const int halfway = steps / 2;
        for (int i = 0; i < steps; ++i) {
            v[i] = i < halfway ? start + step * (float)i : end - step * (float)(steps - i - 1);
        }
        return v;
    };
    const std::vector<float> xs = linspace(-span_x * (w - 1) / w, span_x * (w - 1) / w, w);
    const std::vector<float> ys = linspace(-span_y * (h - 1) / h, span_y * (h - 1) / h, h);
    const int D = C / 2, Q = C / 4;  // per-axis width, number of frequencies
    std::vector<float> omega(Q);
    for (int i = 0; i < Q; ++i) {
        omega[i] = 1.0f / std::pow(100.0f, (float)i / ((float)D / 2.0f));
    }
    ex.assign((size_t)D * w, 0.0f);
    ey.assign((size_t)D * h, 0.0f);
    for (int c = 0; c < D; ++c) {
        const int fi = c % Q;
        const bool is_cos = c >= Q;
        for (int i = 0; i < w; ++i) {
            const float p = xs[i] * omega[fi];
            ex[(size_t)c * w + i] = (is_cos ? std::cos(p) : std::sin(p)) * ratio;
        }
        for (int j = 0; j < h; ++j) {
            const float p = ys[j] * omega[fi];
            ey[(size_t)c * h + j] = (is_cos ? std::cos(p) : std::sin(p)) * ratio;
        }
    }
}

// The UV embedding's two axis tables for a (w, h) grid of C channels (0.1 x, aspect W/H of the
// processed image) as graph inputs: tx [w, 1, C/2] (channels [0, C/2)), ty [1, h, C/2].
void pos_embed_inputs(graph_ctx &g, int w, int h, int C, int W, int H, const std::string &tag, ggml_tensor *&tx,
                      ggml_tensor *&ty) {
    if (C % 4 != 0) {
        fail(DA3_ERR_UNSUPPORTED,
             "head: UV position embedding needs a channel count divisible by 4, got " + std::to_string(C));
    }
    std::vector<float> ex, ey;
    uv_axis_tables(w, h, C, (double)W / (double)H, 0.1f, ex, ey);
    tx = g.input_f32(tag + ".uvx", std::move(ex), w, 1, C / 2, 1);
    ty = g.input_f32(tag + ".uvy", std::move(ey), 1, h, C / 2, 1);
}

// x [w, h, C, N] + 0.1 * UV embedding of the (w, h) grid, aspect W/H of the processed image.
ggml_tensor *add_pos_embed(graph_ctx &g, ggml_tensor *x, int W, int H, const std::string &tag) {
    ggml_tensor *tx, *ty;
    pos_embed_inputs(g, (int)x->ne[0], (int)x->ne[1], (int)x->ne[2], W, H, tag, tx, ty);
    return build_add_uv(g, x, tx, ty);
}

// A map to be resized to (w, h) (align corners) before 3x3 convolutions, plus the UV embedding
// (inputs named uv_tag) when `uv`. conv3x3_on() fuses the resize into each convolution where the
// CPU kernels can (conv3x3_resized_cpu: the resized map is never stored) unless the tap `tap` is
// asked for; otherwise the resized map is built once, named `tap`, and shared.
struct resized_map {
    ggml_tensor *x;
    int w, h;
    std::string tap, uv_tag;
    bool uv;
    int W, H;                 // processed image size (UV aspect)
    bool cpu_resize = false;  // resized by our CPU ops (fused, or resize_bilinear_ac_cpu)
    ggml_tensor *tx = nullptr, *ty = nullptr, *built = nullptr;

    resized_map(graph_ctx &g, ggml_tensor *x_, int w_, int h_, std::string tap_, bool uv_, std::string uv_tag_, int W_,
                int H_)
        : x(x_), w(w_), h(h_), tap(std::move(tap_)), uv_tag(std::move(uv_tag_)), uv(uv_), W(W_), H(H_) {
        cpu_resize = resize_uv_fused_available(g) && (x->ne[0] != w || x->ne[1] != h);
        if (cpu_resize) {
            if (!ggml_is_contiguous(x)) x = ggml_cont(g.ctx, x);
            if (uv) pos_embed_inputs(g, w, h, (int)x->ne[2], W, H, uv_tag, tx, ty);
        }
    }

    bool fuses(const graph_ctx &g, const conv2d &c) const {
        return cpu_resize && !g.wants(tap) && conv3x3_resize_fusable(g, w, h, x, c);
    }

    ggml_tensor *conv3x3_on(graph_ctx &g, const conv2d &c, unsigned flags) {
        if (fuses(g, c)) return build_conv3x3_resized(g, x, w, h, tx, ty, c, flags);
        if (!built) {
            if (cpu_resize) {
                built = build_resize_uv_fused(g, x, w, h, tx, ty);  // resize and UV in one pass
            } else {
                built = build_resize_bilinear(g, x, w, h, true);
                if (uv) built = add_pos_embed(g, built, W, H, uv_tag);
            }
            if (built != x) g.name(built, tap);  // no resize and no UV: x keeps its own name
        }
        return build_conv3x3(g, built, c, flags);
    }

    // conv1x1(conv3x3_on(c, flags), c1), in one pass where the resize is fused (the 3x3 output
    // is then never stored either).
    ggml_tensor *conv3x3_1x1_on(graph_ctx &g, const conv2d &c, unsigned flags, const conv2d &c1) {
        if (fuses(g, c)) return build_conv3x3_resized(g, x, w, h, tx, ty, c, flags, &c1);
        return conv1x1(g, conv3x3_on(g, c, flags), c1);
    }
};

// LayerNorm over the channel dim of [W, H, C, N].
ggml_tensor *channel_norm(graph_ctx &g, ggml_tensor *x, const layer_norm &n) {
    ggml_tensor *y = ggml_cont(g.ctx, ggml_permute(g.ctx, x, 1, 2, 0, 3));  // [C, W, H, N]
    y = build_norm(g, y, n, kHeadLnEps);
    return ggml_cont(g.ctx, ggml_permute(g.ctx, y, 2, 0, 1, 3));
}

}  // namespace

// ---------------------------------------------------------------------------------------------

void load_head(const weight_map &wm, const std::string &prefix, const std::string &meta_prefix, dpt_head &out) {
    dpt_head h;
    namespace tn = schema::tn;
    head_hparams &hp = h.hp;
    const std::string s = prefix + tn::kScratch + ".", proj = prefix + tn::kProj + ".";
    const std::string resize = prefix + tn::kResize + ".";
    const auto layer_rn = [&](int k) { return s + tn::kLayerRn + std::to_string(k) + tn::kLayerRnEnd; };
    const auto fusion = [&](int k) { return s + tn::kFusion + std::to_string(k); };

    ggml_tensor *p0 = wm.get(proj + "0.weight");
    hp.dim_in = (int)p0->ne[2];
    for (int k = 0; k < 4; ++k) {
        ggml_tensor *pw = wm.get(proj + std::to_string(k) + ".weight");
        hp.out_channels[k] = (int)pw->ne[3];
    }
    hp.features = (int)wm.get(layer_rn(1) + ".weight")->ne[3];
    hp.has_sky = wm.has(s + tn::kSkyOut2a + ".weight");
    hp.dual = !hp.has_sky;
    hp.has_norm = wm.has(prefix + tn::kNorm + ".weight");
    hp.pos_embed = wm.get_bool_or(meta_prefix + mk::kPosEmbed, hp.dual);
    hp.patch_size = (int)wm.get_int_or(schema::kKeyPatchSize, 14, 14, 14);
    // the head's output is (patches * patch_size / down_ratio) pixels per side, and the engine's
    // outputs are at the input size: 1 only, as in every DA3 model (the official code has no
    // down_ratio; a fuzzed 3 overflowed the output copy)
    hp.down_ratio = (int)wm.get_int_or(meta_prefix + mk::kDownRatio, 1, 1, 1);
    hp.activation = wm.get_str_or(meta_prefix + mk::kActivation, "exp");
    hp.conf_activation = wm.get_str_or(meta_prefix + mk::kConfActivation, "expp1");
    hp.sky_activation = wm.get_str_or(meta_prefix + mk::kSkyActivation, "relu");
    for (const auto &kv : {std::make_pair(mk::kActivation, &hp.activation), std::make_pair(mk::kConfActivation, &hp.conf_activation)}) {
        float probe = 0.0f;  // rejected here, not at the first inference
        try {
            apply_activation(&probe, 1, *kv.second);
        } catch (const error &) {
            fail(DA3_ERR_UNSUPPORTED, wm.path() + ": " + meta_prefix + kv.first + " '" + printable(*kv.second) +
                                          "' is not a known activation");
        }
    }
    // DualDPT normalizes the tokens (published files have no norm_type key): a missing norm is an error
    const std::string norm_type = wm.get_str_or(meta_prefix + mk::kNormType, hp.dual || hp.has_norm ? "layer" : "idt");
    if (norm_type == "layer" && !hp.has_norm) {
        wm.format_error(meta_prefix + mk::kNormType + " is 'layer' (DualDPT default) but " + prefix + "norm.weight is missing");
    }
    const int F = hp.features, Din = hp.dim_in;
    if (F % 8 != 0) {
        wm.format_error("head features must be a multiple of 8, got " + std::to_string(F));
    }

    if (hp.has_norm) {
        h.norm.w = wm.get(prefix + tn::kNorm + ".weight", {Din});
        h.norm.b = wm.get(prefix + tn::kNorm + ".bias", {Din});
    }
    for (int k = 0; k < 4; ++k) {
        const std::string ks = std::to_string(k);
        const int oc = hp.out_channels[k];
        h.proj[k] = get_conv(wm, proj + ks, 1, 1, Din, oc, true);
        if (k == 0) h.resize[k] = get_conv(wm, resize + "0", 4, 4, oc, oc, true);
        if (k == 1) h.resize[k] = get_conv(wm, resize + "1", 2, 2, oc, oc, true);
        if (k == 3) h.resize[k] = get_conv(wm, resize + "3", 3, 3, oc, oc, true);
        h.layer_rn[k] = get_conv(wm, layer_rn(k + 1), 3, 3, oc, F, false);
        h.rn[k] = load_fusion(wm, fusion(k + 1), F, k != 3);
    }
    h.out1 = get_conv(wm, s + tn::kOut1, 3, 3, F, F / 2, true);
    h.out2a = get_conv(wm, s + tn::kOut2a, 3, 3, F / 2, 32, true);
    ggml_tensor *o2b = wm.get(s + tn::kOut2b + ".weight");
    hp.output_dim = (int)o2b->ne[3];
    h.out2b = get_conv(wm, s + tn::kOut2b, 1, 1, 32, hp.output_dim, true);
    if (hp.output_dim < 1 || (hp.dual && hp.output_dim < 2)) {
        wm.format_error(s + "out2b has " + std::to_string(hp.output_dim) + " output channels");
    }
    if (hp.has_sky) {
        h.sky_out2a = get_conv(wm, s + tn::kSkyOut2a, 3, 3, F / 2, 32, true);
        h.sky_out2b = get_conv(wm, s + tn::kSkyOut2b, 1, 1, 32, 1, true);
    }

    // Aux ray branch: optional (the published files lack it); all or nothing.
    hp.has_aux = hp.dual && (wm.has(fusion(1) + tn::kAux + "." + tn::kFusionOut + ".weight") ||
                             wm.has(s + tn::kOut2bAux + ".weight"));
    if (hp.has_aux) {
        for (int k = 0; k < 4; ++k) {
            h.rn_aux[k] = load_fusion(wm, fusion(k + 1) + tn::kAux, F, k != 3);
        }
        int n = 0;
        while (n < 5 && wm.has(s + tn::kOut1Aux + "." + std::to_string(n) + ".weight")) ++n;
        if (n != 1 && n != 3 && n != 5) {
            wm.format_error(s + tn::kOut1Aux + " has " + std::to_string(n) + " convolutions (expected 1, 3 or 5)");
        }
        hp.aux_out1_convs = n;
        for (int j = 0; j < n; ++j) {
            // F -> F/2 -> F -> F/2 ... (ref: dualdpt.py _make_aux_out1_block)
            const int cin = (j % 2 == 0) ? F : F / 2, cout = (j % 2 == 0) ? F / 2 : F;
            h.out1_aux[j] = get_conv(wm, s + tn::kOut1Aux + "." + std::to_string(j), 3, 3, cin, cout, true);
        }
        h.out2a_aux = get_conv(wm, s + tn::kOut2aAux, 3, 3, F / 2, 32, true);
        h.out2_aux_ln.w = wm.get(s + tn::kOut2AuxLn + ".weight", {32});
        h.out2_aux_ln.b = wm.get(s + tn::kOut2AuxLn + ".bias", {32});
        h.out2b_aux = get_conv(wm, s + tn::kOut2bAux, 1, 1, 32, 7, true);
    }
    out = h;
}

void pack_head_for_cpu(dpt_head &h, int n_threads) {
    for (int k = 0; k < 4; ++k) pack_conv_for_cpu(h.proj[k], n_threads);
    pack_conv_for_cpu(h.resize[3], n_threads);  // 3x3 stride 2: im2col, then one GEMM (build_conv2d)
}

namespace {

// The head on all N views of feats at once (maps [w, h, C, N]).
head_out build_head_batched(graph_ctx &g, const dpt_head &w, ggml_tensor *const feats[4], int ph, int pw, int H, int W,
                            bool compute_aux) {
    const head_hparams &hp = w.hp;
    ggml_context *ctx = g.ctx;
    if (compute_aux && !hp.has_aux) {
        fail(DA3_ERR_UNSUPPORTED, "this model file has no aux ray head (compute_aux / use_ray_pose unavailable)");
    }
    if (ph <= 0 || pw <= 0 || H <= 0 || W <= 0) {
        fail(DA3_ERR_INVALID_ARGUMENT, "head: bad sizes");
    }
    const int64_t N = feats[0]->ne[2];

    // 1) per level: norm -> tokens to map -> 1x1 project (+ UV) -> resize
    ggml_tensor *resized[4];
    for (int k = 0; k < 4; ++k) {
        const std::string ks = std::to_string(k);
        ggml_tensor *x = feats[k];
        if (x->ne[0] != hp.dim_in || x->ne[1] != (int64_t)ph * pw || x->ne[2] != N) {
            fail(DA3_ERR_INTERNAL, "head: feature " + ks + " has an unexpected shape");
        }
        if (hp.has_norm) {
            x = build_norm(g, x, w.norm, kHeadLnEps);
        }
        // 1x1 conv on tokens: [Cin, T, N] -> [Cout, T, N] -> map [pw, ph, Cout, N]
        const int oc = hp.out_channels[k];
        x = build_linear(g, x, linear{ggml_reshape_2d(ctx, w.proj[k].w, hp.dim_in, oc), w.proj[k].b, w.proj[k].packed});
        // (a real tensor, not a reshape view: a tap on a view is not kept by the allocator)
        x = ggml_cont_4d(ctx, ggml_permute(ctx, x, 1, 0, 2, 3), pw, ph, oc, N);
        if (hp.pos_embed) {
            x = add_pos_embed(g, x, W, H, "head.proj." + ks);
        }
        g.name(x, "head.proj." + ks);
        if (k == 0 || k == 1) {
            x = conv_transpose_ks(g, x, w.resize[k]);
        } else if (k == 3) {
            x = build_conv2d(g, x, w.resize[k], 2, 1);
        }
        resized[k] = g.name(x, "head.resize." + ks);
    }

    // 2) fusion pyramid
    ggml_tensor *rn[4];
    for (int k = 0; k < 4; ++k) {
        rn[k] = g.name(conv3x3(g, resized[k], w.layer_rn[k]), "head.layer_rn." + std::to_string(k));
    }
    auto W_ = [](ggml_tensor *t) { return (int)t->ne[0]; };
    auto H_ = [](ggml_tensor *t) { return (int)t->ne[1]; };
    ggml_tensor *out = fusion(g, w.rn[3], rn[3], nullptr, W_(rn[2]), H_(rn[2]));
    g.name(out, "head.fuse.3");
    out = g.name(fusion(g, w.rn[2], out, rn[2], W_(rn[1]), H_(rn[1])), "head.fuse.2");
    out = g.name(fusion(g, w.rn[1], out, rn[1], W_(rn[0]), H_(rn[0])), "head.fuse.1");
    // the finest fusion's 2x resize feeds output_conv1 directly (fused where possible)
    resized_map fused0(g, fusion_unresized(g, w.rn[0], out, rn[0]), 2 * W_(rn[0]), 2 * H_(rn[0]), "head.fuse.0", false,
                       "", W, H);

    // 3) neck: output_conv1 at the fused resolution, then up to the output size (+ UV)
    out = g.name(fused0.conv3x3_on(g, w.out1, 0), "head.out1");
    const int h_out = (int)((double)(ph * hp.patch_size) / hp.down_ratio);
    const int w_out = (int)((double)(pw * hp.patch_size) / hp.down_ratio);
    resized_map up(g, out, w_out, h_out, "head.out2_in", hp.pos_embed, "head.main", W, H);

    head_out r;
    r.logits = g.name(up.conv3x3_1x1_on(g, w.out2a, CONV_RELU_OUT, w.out2b), "head.logits");
    if (hp.has_sky) {
        r.sky_logits = g.name(up.conv3x3_1x1_on(g, w.sky_out2a, CONV_RELU_OUT, w.sky_out2b), "head.sky_logits");
    }

    // 4) aux ray branch: its own fusion chain; only the finest level is used.
    if (compute_aux) {
        ggml_tensor *a = fusion(g, w.rn_aux[3], rn[3], nullptr, W_(rn[2]), H_(rn[2]));
        a = fusion(g, w.rn_aux[2], a, rn[2], W_(rn[1]), H_(rn[1]));
        a = fusion(g, w.rn_aux[1], a, rn[1], W_(rn[0]), H_(rn[0]));
        resized_map fa(g, fusion_unresized(g, w.rn_aux[0], a, rn[0]), 2 * W_(rn[0]), 2 * H_(rn[0]), "head.fuse_aux.0",
                       false, "", W, H);
        for (int j = 0; j < hp.aux_out1_convs; ++j) {
            a = j == 0 ? fa.conv3x3_on(g, w.out1_aux[j], 0) : conv3x3(g, a, w.out1_aux[j]);
        }
        if (hp.pos_embed) {
            a = add_pos_embed(g, a, W, H, "head.aux");
        }
        a = conv3x3(g, a, w.out2a_aux);
        a = channel_norm(g, a, w.out2_aux_ln);
        // ggml's ReLU turns NaN into 0; + (a - a) (0 for finite a) keeps it NaN as PyTorch does
        a = ggml_add(ctx, ggml_relu(ctx, a), ggml_sub(ctx, a, a));
        r.aux_logits = g.name(conv1x1(g, a, w.out2b_aux), "head.aux_logits");
    }
    return r;
}

// ts[0..n) [W, H, C, 1] -> [W, H, C, n], concatenated pairwise (each element copied log2 n times).
ggml_tensor *concat_views(ggml_context *ctx, std::vector<ggml_tensor *> ts) {
    while (ts.size() > 1) {
        std::vector<ggml_tensor *> next;
        for (size_t i = 0; i + 1 < ts.size(); i += 2) next.push_back(ggml_concat(ctx, ts[i], ts[i + 1], 3));
        if (ts.size() % 2) next.push_back(ts.back());
        ts = std::move(next);
    }
    return ts[0];
}

}  // namespace

head_out build_head(graph_ctx &g, const dpt_head &w, ggml_tensor *const feats[4], int ph, int pw, int H, int W,
                    bool compute_aux) {
    const int64_t N = feats[0]->ne[2];
    // The head works per view. With several views on the CPU it is built one view after the
    // other, each view's outputs appended to the graph before the next view starts, so the
    // allocator reuses one view's maps for the next: the compute buffer holds the maps of one
    // view instead of N, and they stay closer to the caches. Same arithmetic per view (our CPU
    // ops compute each image independently), so the results are identical. Head taps are [.., N]
    // tensors: asking for one builds all views together.
    if (N == 1 || !g.cpu_kernels || g.wants_any("head.")) return build_head_batched(g, w, feats, ph, pw, H, W, compute_aux);
    std::vector<ggml_tensor *> logits, sky, aux;
    const size_t objs0 = ggml_used_mem(g.ctx) / ggml_tensor_overhead();
    for (int64_t v = 0; v < N; ++v) {
        if (v == 1 && g.capacity) {  // the graph and its context must hold N such views (plus the concats)
            const size_t per_view = ggml_used_mem(g.ctx) / ggml_tensor_overhead() - objs0;
            if (objs0 + (size_t)N * (per_view + 4) > g.capacity) {
                fail(DA3_ERR_INVALID_ARGUMENT, std::to_string(N) + " views need a larger graph than this build reserves (" +
                                                   std::to_string(g.capacity) + " nodes); use fewer views per call");
            }
        }
        ggml_tensor *fv[4];
        for (int k = 0; k < 4; ++k) {
            const ggml_tensor *f = feats[k];
            fv[k] = ggml_view_3d(g.ctx, feats[k], f->ne[0], f->ne[1], 1, f->nb[1], f->nb[2], (size_t)v * f->nb[2]);
        }
        const head_out o = build_head_batched(g, w, fv, ph, pw, H, W, compute_aux);
        for (ggml_tensor *t : {o.logits, o.sky_logits, o.aux_logits}) {
            if (t) ggml_build_forward_expand(g.gf, t);
        }
        logits.push_back(o.logits);
        if (o.sky_logits) sky.push_back(o.sky_logits);
        if (o.aux_logits) aux.push_back(o.aux_logits);
    }
    head_out r;
    r.logits = concat_views(g.ctx, logits);
    if (!sky.empty()) r.sky_logits = concat_views(g.ctx, sky);
    if (!aux.empty()) r.aux_logits = concat_views(g.ctx, aux);
    return r;
}

std::vector<float> uv_pos_embed(int w, int h, int channels, double aspect, float ratio) {
    if (w <= 0 || h <= 0 || channels <= 0 || channels % 4 != 0) {
        fail(DA3_ERR_INVALID_ARGUMENT, "uv_pos_embed: bad size or channel count");
    }
    std::vector<float> ex, ey;
    uv_axis_tables(w, h, channels, aspect, ratio, ex, ey);
    const int D = channels / 2;
    std::vector<float> out((size_t)w * h * channels);
    for (int c = 0; c < channels; ++c) {
        for (int j = 0; j < h; ++j) {
            for (int i = 0; i < w; ++i) {
                out[((size_t)c * h + j) * w + i] = c < D ? ex[(size_t)c * w + i] : ey[(size_t)(c - D) * h + j];
            }
        }
    }
    return out;
}

}  // namespace da3
