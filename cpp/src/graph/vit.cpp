#include "graph/vit.h"

#include "graph/graph.h"
#include "gguf/schema.h"

#include "ggml-backend.h"

#include <cmath>
#include <cstdlib>
#include <initializer_list>

namespace da3 {

namespace mk = schema::mk;  // metadata keys

// Metadata bounds, far above the DA3 presets (giant: embed_dim 1536, depth 40, 37 x 37 grid).
static constexpr int64_t kMaxEmbedDim = 8192, kMaxDepth = 256, kMaxPosEmbedGrid = 1024;

static bool all_f32(std::initializer_list<const ggml_tensor *> ts) {
    for (const ggml_tensor *t : ts)
        if (!t || t->type != GGML_TYPE_F32) return false;
    return true;
}

static std::vector<float> host_copy(const ggml_tensor *t) {
    std::vector<float> v(ggml_nelements(t));
    ggml_backend_tensor_get(t, v.data(), 0, ggml_nbytes(t));
    return v;
}

// An f32 weight's values for editing at load: in place when its buffer is host memory (the CPU
// backend), else a copy that commit() writes back.
struct f32_edit {
    ggml_tensor *t;
    std::vector<float> copy;
    float *data;
    explicit f32_edit(ggml_tensor *t_) : t(t_) {
        if (t->buffer && ggml_backend_buffer_is_host(t->buffer)) {
            data = (float *)t->data;
        } else {
            copy = host_copy(t);
            data = copy.data();
        }
    }
    void commit() {
        if (!copy.empty()) ggml_backend_tensor_set(t, copy.data(), 0, ggml_nbytes(t));
    }
};

// Folds a LayerNorm's affine into the linear layer after it (f32 weights with a bias):
// W (g * xn + b) + c = (W diag g) xn + (W b + c). The norm then has no affine.
static void fold_norm_into_linear(layer_norm &n, linear &l) {
    if (!all_f32({n.w, n.b, l.w, l.b})) return;
    const int64_t K = l.w->ne[0], N = l.w->ne[1];
    const std::vector<float> g = host_copy(n.w), b = host_copy(n.b);
    f32_edit W(l.w), c(l.b);
    for (int64_t o = 0; o < N; ++o) {
        double acc[4] = {c.data[o], 0.0, 0.0, 0.0};  // independent partial sums (K % 4 == 0 here)
        float *row = W.data + o * K;
        int64_t k = 0;
        for (; k + 4 <= K; k += 4)
            for (int j = 0; j < 4; ++j) acc[j] += (double)row[k + j] * b[k + j];
        for (; k < K; ++k) acc[0] += (double)row[k] * b[k];
        for (k = 0; k < K; ++k) row[k] *= g[k];
        c.data[o] = (float)((acc[0] + acc[1]) + (acc[2] + acc[3]));
    }
    W.commit();
    c.commit();
    n.w = n.b = nullptr;
}

// Folds a layer scale into the linear layer before it: s * (W x + c) = (diag s W) x + s * c.
static void fold_scale_into_linear(ggml_tensor *&scale, linear &l) {
    if (!all_f32({scale, l.w, l.b})) return;
    const int64_t K = l.w->ne[0], N = l.w->ne[1];
    const std::vector<float> s = host_copy(scale);
    f32_edit W(l.w), c(l.b);
    for (int64_t o = 0; o < N; ++o) {
        float *row = W.data + o * K;
        for (int64_t k = 0; k < K; ++k) row[k] *= s[o];
        c.data[o] *= s[o];
    }
    W.commit();
    c.commit();
    scale = nullptr;
}

void load_vit(const weight_map &wm, const std::string &prefix, vit_model &m) {
    vit_hparams &hp = m.hp;
    // every integer range-checked as int64 before narrowing; shapes then check the rest
    hp.embed_dim = (int)wm.get_int(prefix + mk::kEmbedDim, 1, kMaxEmbedDim);
    hp.depth = (int)wm.get_int(prefix + mk::kDepth, 1, kMaxDepth);
    hp.num_heads = (int)wm.get_int(prefix + mk::kNumHeads, 1, kMaxEmbedDim);
    hp.head_dim = (int)wm.get_int_or(prefix + mk::kHeadDim, 64, 64, 64);
    hp.mlp_hidden = (int)wm.get_int_or(prefix + mk::kMlpHidden, 4 * (int64_t)hp.embed_dim, 1, 8 * kMaxEmbedDim);
    hp.patch_size = (int)wm.get_int_or(schema::kKeyPatchSize, 14, 14, 14);
    hp.alt_start = (int)wm.get_int_or(prefix + mk::kAltStart, -1, -1, hp.depth - 1);
    hp.rope_start = (int)wm.get_int_or(prefix + mk::kRopeStart, -1, -1, hp.depth - 1);
    hp.qknorm_start = (int)wm.get_int_or(prefix + mk::kQkNormStart, -1, -1, hp.depth - 1);
    hp.rope_freq = wm.get_float_or(prefix + mk::kRopeFreq, 100.0f, 1.0f, 1e9f);
    hp.ln_eps = wm.get_float_or(prefix + mk::kLnEps, 1e-6f, 1e-12f, 1.0f);
    hp.interpolate_offset = wm.get_float_or(prefix + mk::kInterpolateOffset, 0.1f, 0.0f, 1.0f);
    hp.pos_embed_grid = (int)wm.get_int_or(prefix + mk::kPosEmbedGrid, 37, 1, kMaxPosEmbedGrid);
    hp.cat_token = wm.get_bool_or(prefix + mk::kCatToken, hp.alt_start != -1);
    const std::string ffn = wm.get_str_or(prefix + mk::kFfnType, "mlp");
    if (ffn != "mlp" && ffn != "swiglu") wm.format_error(prefix + mk::kFfnType + " '" + printable(ffn) + "' is unknown (mlp or swiglu)");
    hp.swiglu = ffn == "swiglu";
    if (wm.get_int_or(prefix + mk::kNumRegisterTokens, 0, 0, INT32_MAX) != 0) {
        fail(DA3_ERR_UNSUPPORTED, wm.path() + ": register tokens are not supported");
    }
    // blocks past the depth would be silently ignored
    for (const std::string &name : wm.names_with_prefix(prefix + schema::tn::kBlock + ".")) {
        const long long i = std::atoll(name.c_str() + prefix.size() + 4);
        if (i >= hp.depth) {
            wm.format_error("tensor '" + printable(name) + "' is past " + prefix + "depth = " + std::to_string(hp.depth) +
                            " (the metadata does not match the blocks in the file)");
        }
    }

    const int C = hp.embed_dim;
    if (C <= 0 || hp.depth <= 0 || hp.num_heads <= 0 || hp.head_dim != 64 || hp.num_heads * hp.head_dim != C ||
        hp.patch_size != 14 || hp.pos_embed_grid <= 0) {
        wm.format_error("inconsistent backbone metadata (" + prefix + "embed_dim/depth/num_heads/head_dim)");
    }
    auto check_start = [&](int v, const char *name) {
        if (v < -1 || v >= hp.depth) wm.format_error(prefix + name + " = " + std::to_string(v) + " is outside the backbone depth");
    };
    check_start(hp.alt_start, mk::kAltStart);
    check_start(hp.rope_start, mk::kRopeStart);
    check_start(hp.qknorm_start, mk::kQkNormStart);
    std::vector<int64_t> ol = wm.get_int_array(prefix + mk::kOutLayers);
    if (ol.size() != 4) wm.format_error(prefix + mk::kOutLayers + " must have 4 entries");
    for (int k = 0; k < 4; ++k) {
        if (ol[k] < 0 || ol[k] >= hp.depth || (k > 0 && ol[k] <= ol[k - 1])) {
            wm.format_error(prefix + mk::kOutLayers + "[" + std::to_string(k) + "] = " + std::to_string(ol[k]) +
                            " is out of range for depth " + std::to_string(hp.depth));
        }
        hp.out_layers[k] = (int)ol[k];
    }

    const int P = hp.patch_size, G = hp.pos_embed_grid;
    const std::string p = prefix;
    namespace tn = schema::tn;
    m.patch_embed.w = wm.get(p + tn::kPatchEmbed + ".weight", {P, P, 3, C});
    m.patch_embed.b = wm.get(p + tn::kPatchEmbed + ".bias", {C});
    m.cls_token = wm.get(p + tn::kClsToken);
    if (ggml_nelements(m.cls_token) != C) wm.format_error("tensor '" + p + tn::kClsToken + "' must have " + std::to_string(C) + " elements");
    m.cls_token = m.cls_token;
    if (hp.alt_start != -1) {
        m.camera_token = wm.get(p + tn::kCameraToken, {C, 2});
    }
    m.pos_embed = wm.get(p + tn::kPosEmbed, {C, 1 + (int64_t)G * G});
    if (m.pos_embed->type != GGML_TYPE_F32) fail(DA3_ERR_UNSUPPORTED, wm.path() + ": pos_embed must be f32");
    if (wm.has_data()) {  // not in the shape pass
        m.pos_embed_host.resize((size_t)C * (1 + (size_t)G * G));
        ggml_backend_tensor_get(m.pos_embed, m.pos_embed_host.data(), 0, ggml_nbytes(m.pos_embed));
    }
    m.norm = {wm.get(p + tn::kNorm + ".weight", {C}), wm.get(p + tn::kNorm + ".bias", {C})};

    const int F = hp.mlp_hidden;
    // the DINOv2 blocks' linears all have biases (proj_bias, ffn_bias); qkv's per the metadata
    const bool qkv_bias = wm.get_bool_or(prefix + mk::kQkvBias, true);
    m.blocks.resize(hp.depth);
    for (int i = 0; i < hp.depth; ++i) {
        vit_block &b = m.blocks[i];
        const std::string bp = p + tn::kBlock + "." + std::to_string(i) + ".";
        b.norm1 = {wm.get(bp + tn::kNorm1 + ".weight", {C}), wm.get(bp + tn::kNorm1 + ".bias", {C})};
        b.norm2 = {wm.get(bp + tn::kNorm2 + ".weight", {C}), wm.get(bp + tn::kNorm2 + ".bias", {C})};
        b.qkv = {wm.get(bp + tn::kAttnQkv + ".weight", {C, 3 * C}), qkv_bias ? wm.get(bp + tn::kAttnQkv + ".bias", {3 * C}) : nullptr};
        b.proj = {wm.get(bp + tn::kAttnProj + ".weight", {C, C}), wm.get(bp + tn::kAttnProj + ".bias", {C})};
        if (hp.has_qknorm(i)) {
            b.q_norm = {wm.get(bp + tn::kAttnQNorm + ".weight", {64}), wm.get(bp + tn::kAttnQNorm + ".bias", {64})};
            b.k_norm = {wm.get(bp + tn::kAttnKNorm + ".weight", {64}), wm.get(bp + tn::kAttnKNorm + ".bias", {64})};
        }
        b.ls1 = wm.get(bp + tn::kLs1, {C});
        b.ls2 = wm.get(bp + tn::kLs2, {C});
        if (hp.swiglu) {
            ggml_tensor *w12 = wm.get(bp + tn::kMlpW12 + ".weight", {C, -1});
            b.fc1 = {w12, wm.get(bp + tn::kMlpW12 + ".bias", {w12->ne[1]})};
            b.fc2 = {wm.get(bp + tn::kMlpW3 + ".weight", {w12->ne[1] / 2, C}), wm.get(bp + tn::kMlpW3 + ".bias", {C})};
        } else {
            b.fc1 = {wm.get(bp + tn::kMlpFc1 + ".weight", {C, F}), wm.get(bp + tn::kMlpFc1 + ".bias", {F})};
            b.fc2 = {wm.get(bp + tn::kMlpFc2 + ".weight", {F, C}), wm.get(bp + tn::kMlpFc2 + ".bias", {C})};
        }
    }
    // f32 files: norm affines and layer scales folded into the adjacent linear layers (float
    // rounding only); other files apply them in the LayerNorm op and the GEMM epilogue. The
    // per-block "attn_res" tap holds x + ls1 * attn. Blocks are independent: one per thread.
    if (!wm.has_data()) return;  // shape pass
    parallel_for(hp.depth, wm.load_threads(), [&](int i) {
        vit_block &b = m.blocks[i];
        fold_norm_into_linear(b.norm1, b.qkv);
        fold_norm_into_linear(b.norm2, b.fc1);
        fold_scale_into_linear(b.ls1, b.proj);
        fold_scale_into_linear(b.ls2, b.fc2);
    });
}

void pack_vit_for_cpu(vit_model &m, int n_threads, bool bf16) {
    pack_conv_for_cpu(m.patch_embed, n_threads);  // [P, P, 3, C]: im2col, then one GEMM
    parallel_for((int)m.blocks.size(), n_threads, [&](int i) {
        vit_block &b = m.blocks[i];
        for (linear *l : {&b.qkv, &b.proj, &b.fc1, &b.fc2}) pack_linear_for_cpu(*l, bf16);
    });
}

const char *vit_linear_engine(const vit_model &m) {
    if (m.blocks.empty()) return "f32";
    return linear_engine_name(m.blocks[0].fc1);
}

// 2D RoPE on [64, heads, T, B]: dims 0..31 rotated by y, 32..63 by x, NeoX within each half.
// ref: depth_anything_3/model/dinov2/layers/rope.py
static ggml_tensor *build_rope_2d(graph_ctx &g, ggml_tensor *t, ggml_tensor *pos_y, ggml_tensor *pos_x, float freq) {
    const int64_t half = t->ne[0] / 2;
    const size_t es = ggml_element_size(t);
    ggml_tensor *a = ggml_view_4d(g.ctx, t, half, t->ne[1], t->ne[2], t->ne[3], t->nb[1], t->nb[2], t->nb[3], 0);
    ggml_tensor *b = ggml_view_4d(g.ctx, t, half, t->ne[1], t->ne[2], t->ne[3], t->nb[1], t->nb[2], t->nb[3], half * es);
    a = ggml_rope_ext(g.ctx, a, pos_y, nullptr, (int)half, GGML_ROPE_TYPE_NEOX, 0, freq, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f);
    b = ggml_rope_ext(g.ctx, b, pos_x, nullptr, (int)half, GGML_ROPE_TYPE_NEOX, 0, freq, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f);
    return ggml_concat(g.ctx, a, b, 0);
}

struct rope_pos {
    ggml_tensor *y = nullptr, *x = nullptr;  // i32 [T] positions (ggml_rope_ext)
    ggml_tensor *table = nullptr;           // f32 [D, 2, T] cos/sin (attention_cpu), CPU graphs only
};

// cos/sin per token and dim for attention_cpu's RoPE, in PyTorch's f32 arithmetic:
// inv_freq = 1 / freq^(2i / (D/2)), angle = pos * inv_freq, dims [0, D/2) use y, the rest x.
// ref: depth_anything_3/model/dinov2/layers/rope.py (_compute_frequency_components)
static std::vector<float> rope_table(int D, float freq, const std::vector<int32_t> &py, const std::vector<int32_t> &px) {
    const int half = D / 2, quarter = D / 4;
    std::vector<float> inv(quarter);
    for (int i = 0; i < quarter; ++i) inv[i] = 1.0f / std::pow(freq, (float)(2 * i) / (float)half);
    std::vector<float> out((size_t)py.size() * 2 * D);
    for (size_t t = 0; t < py.size(); ++t) {
        float *c = out.data() + t * 2 * D;
        for (int d = 0; d < D; ++d) {
            const float angle = (float)(d < half ? py[t] : px[t]) * inv[d % half % quarter];
            c[d] = std::cos(angle);
            c[D + d] = std::sin(angle);
        }
    }
    return out;
}

// RoPE positions per token: local blocks (row+1, col+1), global blocks (1, 1); token 0 (cls) at (0, 0).
static void rope_positions(int ph, int pw, std::vector<int32_t> &py, std::vector<int32_t> &px, std::vector<int32_t> &pg) {
    const size_t T = 1 + (size_t)ph * pw;
    py.assign(T, 0), px.assign(T, 0), pg.assign(T, 1);
    pg[0] = 0;
    for (int p = 0; p < ph * pw; ++p) {
        py[1 + p] = p / pw + 1;
        px[1 + p] = p % pw + 1;
    }
}

const vit_model::grid_inputs &vit_model::grid(int ph, int pw) const {
    const auto key = std::make_pair(ph, pw);
    auto it = grid_cache.find(key);
    if (it != grid_cache.end()) return it->second;
    if (grid_cache.size() >= 8) grid_cache.clear();  // a handful of input sizes is the usual case
    grid_inputs gi;
    gi.pos_embed = interpolate_pos_embed(*this, ph, pw);
    if (hp.rope_start != -1) {
        std::vector<int32_t> py, px, pg;
        rope_positions(ph, pw, py, px, pg);
        gi.rope_local = rope_table(hp.head_dim, hp.rope_freq, py, px);
        gi.rope_global = rope_table(hp.head_dim, hp.rope_freq, pg, pg);
    }
    return grid_cache.emplace(key, std::move(gi)).first->second;
}

// Attention sub-block with its residual: res + ls * proj(attn(h)) (ls null: folded or absent),
// the layer scale and the add fused into proj.
static ggml_tensor *build_attn(graph_ctx &g, const vit_model &m, const vit_block &b, ggml_tensor *h, bool global,
                               const rope_pos *rp, bool qknorm, const std::string &pfx, ggml_tensor *res,
                               ggml_tensor *ls) {
    const vit_hparams &hp = m.hp;
    const int64_t C = h->ne[0], T = h->ne[1], N = h->ne[2], D = hp.head_dim, NH = hp.num_heads;
    ggml_context *ctx = g.ctx;

    ggml_tensor *qkv = build_linear(g, h, b.qkv);  // [3C, T, N]
    const size_t es = ggml_element_size(qkv);
    auto head_view = [&](int part, int64_t t, int64_t n) {
        return ggml_view_4d(ctx, qkv, D, NH, t, n, D * es, qkv->nb[1], qkv->nb[1] * t, part * C * es);
    };
    const bool norms = qknorm && b.q_norm.w && b.q_norm.b && b.k_norm.w && b.k_norm.b;
    if (attention_fused_available(g, D) && (!qknorm || norms) && (!rp || rp->table)) {
        // one op: qk-norm and RoPE applied as q and k are packed, then exact attention
        const int64_t Tq = global ? T * N : T, B = global ? 1 : N;
        ggml_tensor *o = build_attention_fused(g, head_view(0, Tq, B), head_view(1, Tq, B), head_view(2, Tq, B),
                                               qknorm ? &b.q_norm : nullptr, qknorm ? &b.k_norm : nullptr, hp.norm_eps,
                                               rp ? rp->table : nullptr);
        o = build_linear(g, ggml_reshape_3d(ctx, o, C, T, N), b.proj, res, false, ls);
        return g.name(o, pfx + "attn_res");
    }
    ggml_tensor *q = head_view(0, T, N);
    ggml_tensor *k = head_view(1, T, N);
    if (qknorm) {
        q = build_norm(g, q, b.q_norm, hp.norm_eps);
        k = build_norm(g, k, b.k_norm, hp.norm_eps);
    }
    if (rp) {
        q = build_rope_2d(g, q, rp->y, rp->x, hp.rope_freq);
        k = build_rope_2d(g, k, rp->y, rp->x, hp.rope_freq);
    }
    int64_t Tq = T, B = N;
    if (global) {
        Tq = T * N;
        B = 1;
    }
    auto as_tokens = [&](ggml_tensor *t) {  // -> [D, NH, Tq, B]
        if (ggml_is_contiguous(t)) return ggml_reshape_4d(ctx, t, D, NH, Tq, B);
        if (!global) return t;
        return ggml_reshape_4d(ctx, ggml_cont(ctx, t), D, NH, Tq, B);
    };
    q = as_tokens(q);
    k = as_tokens(k);
    ggml_tensor *v = head_view(2, Tq, B);

    ggml_tensor *Q = ggml_permute(ctx, q, 0, 2, 1, 3);  // [D, Tq, NH, B]
    ggml_tensor *K = ggml_permute(ctx, k, 0, 2, 1, 3);
    ggml_tensor *V = ggml_permute(ctx, v, 0, 2, 1, 3);
    // f32 K/V: exact f32 dot products with an online softmax, no [Tk, Tq] matrix
    ggml_tensor *o = ggml_flash_attn_ext(ctx, Q, K, V, nullptr, 1.0f / std::sqrt((float)D), 0.0f, 0.0f);  // [D, NH, Tq, B]
    ggml_flash_attn_ext_set_prec(o, GGML_PREC_F32);
    o = ggml_reshape_3d(ctx, o, C, T, N);
    o = build_linear(g, o, b.proj, res, false, ls);
    return g.name(o, pfx + "attn_res");
}

// MLP sub-block with its residual: res + ls * fc2(act(fc1(h))), fused into fc2 likewise.
static ggml_tensor *build_ffn(graph_ctx &g, const vit_model &m, const vit_block &b, ggml_tensor *h, ggml_tensor *res,
                              ggml_tensor *ls) {
    if (!m.hp.swiglu) {
        return build_linear(g, build_linear(g, h, b.fc1, nullptr, /*gelu=*/true), b.fc2, res, false, ls);
    }
    // ref: dinov2/layers/swiglu_ffn.py: x1, x2 = w12(x).chunk(2); w3(silu(x1) * x2)
    ggml_tensor *y = build_linear(g, h, b.fc1);
    const int64_t hid = y->ne[0] / 2;
    ggml_tensor *x1 = ggml_view_3d(g.ctx, y, hid, y->ne[1], y->ne[2], y->nb[1], y->nb[2], 0);
    ggml_tensor *x2 = ggml_view_3d(g.ctx, y, hid, y->ne[1], y->ne[2], y->nb[1], y->nb[2], hid * ggml_element_size(y));
    y = ggml_mul(g.ctx, ggml_silu(g.ctx, ggml_cont(g.ctx, x1)), x2);
    return build_linear(g, y, b.fc2, res, false, ls);
}

vit_outputs build_vit(graph_ctx &g, const vit_model &m, ggml_tensor *images, ggml_tensor *cam_tokens, int stop_block,
                      ggml_tensor *resume_x, int resume_block) {
    const vit_hparams &hp = m.hp;
    ggml_context *ctx = g.ctx;
    const int W = (int)images->ne[0], H = (int)images->ne[1], N = (int)images->ne[3];
    const int P = hp.patch_size, ph = H / P, pw = W / P, C = hp.embed_dim, T = 1 + ph * pw;

    ggml_tensor *x;
    if (resume_x) {
        if (resume_x->ne[0] != C || resume_x->ne[1] != T || resume_x->ne[2] != N || resume_block < 0 ||
            resume_block > hp.depth || (hp.alt_start != -1 && resume_block > hp.alt_start) ||
            hp.out_layers[0] < resume_block) {
            fail(DA3_ERR_INTERNAL, "build_vit: cannot resume at this block");
        }
        x = resume_x;
    } else {
        // patch embedding + cls token + interpolated position embedding
        if (g.cpu_kernels) {
            // patches as rows [3*P*P, hw, N] times the kernel: tokens come out in [C, hw, N] order
            ggml_tensor *cols = ggml_im2col(ctx, m.patch_embed.w, images, P, P, 0, 0, 1, 1, true, GGML_TYPE_F32);
            const linear pe{ggml_reshape_2d(ctx, m.patch_embed.w, 3 * P * P, C), m.patch_embed.b, m.patch_embed.packed};
            x = build_linear(g, ggml_reshape_3d(ctx, cols, 3 * P * P, pw * ph, N), pe);
        } else {
            if (m.patch_embed.packed) fail(DA3_ERR_INTERNAL, "patch embedding: packed weights outside a CPU graph");
            x = conv2d_f32acc(ctx, m.patch_embed.w, images, P, 0);  // [pw, ph, C, N]
            x = add_channel_bias(g, x, m.patch_embed.b);
            x = ggml_cont(ctx, ggml_permute(ctx, ggml_reshape_3d(ctx, x, pw * ph, C, N), 1, 0, 2, 3));  // [C, hw, N]
        }
        ggml_tensor *cls = ggml_repeat_4d(ctx, ggml_reshape_3d(ctx, m.cls_token, C, 1, 1), C, 1, N, 1);
        x = ggml_concat(ctx, cls, x, 1);  // [C, T, N]
        ggml_tensor *pos = g.input_f32("vit.pos_embed_interp", m.grid(ph, pw).pos_embed, C, T);
        x = g.name(ggml_add(ctx, x, pos), "vit.embed");
    }

    rope_pos local_pos, global_pos;
    if (hp.rope_start != -1) {
        std::vector<int32_t> py, px, pg;
        rope_positions(ph, pw, py, px, pg);
        local_pos.y = g.input_i32("vit.rope_pos_y", py, T);
        local_pos.x = g.input_i32("vit.rope_pos_x", px, T);
        global_pos.y = global_pos.x = g.input_i32("vit.rope_pos_global", pg, T);
        if (g.cpu_kernels) {
            const vit_model::grid_inputs &gi = m.grid(ph, pw);
            local_pos.table = g.input_f32("vit.rope_table", gi.rope_local, hp.head_dim, 2, T);
            global_pos.table = g.input_f32("vit.rope_table_global", gi.rope_global, hp.head_dim, 2, T);
        }
    }

    vit_outputs out;
    ggml_tensor *local_x = x;
    int k_out = 0;
    for (int i = resume_x ? resume_block : 0; i < hp.depth; ++i) {
        if (i == stop_block) {
            out.ref_feat = x;
            return out;
        }
        const vit_block &b = m.blocks[i];
        const std::string pfx = "vit.blk." + std::to_string(i) + ".";
        if (hp.alt_start != -1 && i == hp.alt_start) {
            // token 0 of each view <- camera token (learned: ref view gets [:,0], others [:,1])
            ggml_tensor *tok;
            if (cam_tokens) {
                tok = ggml_reshape_3d(ctx, cam_tokens, C, 1, N);
            } else {
                ggml_tensor *ref = ggml_view_3d(ctx, m.camera_token, C, 1, 1, m.camera_token->nb[1], m.camera_token->nb[1], 0);
                tok = ref;
                if (N > 1) {
                    ggml_tensor *src = ggml_view_3d(ctx, m.camera_token, C, 1, 1, m.camera_token->nb[1], m.camera_token->nb[1],
                                                    m.camera_token->nb[1]);
                    src = ggml_repeat_4d(ctx, src, C, 1, N - 1, 1);
                    tok = ggml_concat(ctx, ggml_cont(ctx, ref), src, 2);
                }
            }
            ggml_tensor *rest = ggml_view_3d(ctx, x, C, T - 1, N, x->nb[1], x->nb[2], x->nb[1]);
            x = ggml_concat(ctx, tok, rest, 1);
        }
        const bool global = hp.is_global(i);
        const rope_pos *rp = hp.has_rope(i) ? (global ? &global_pos : &local_pos) : nullptr;

        ggml_tensor *h = build_norm(g, x, b.norm1, hp.ln_eps);
        // x + ls * f(norm(x)): layer scales (unless folded into the weights) and residual adds
        // fused into proj / fc2
        x = build_attn(g, m, b, h, global, rp, hp.has_qknorm(i), pfx, x, b.ls1);
        h = build_norm(g, x, b.norm2, hp.ln_eps);
        x = build_ffn(g, m, b, h, x, b.ls2);
        x = g.name(x, "vit.blk." + std::to_string(i));
        if (!global) local_x = x;
        // export_feat_layers (only when requested): norm(x) without token 0, [C, T - 1, N]
        // ref: dinov2/vision_transformer.py get_intermediate_layers (aux_outputs)
        const std::string feat_name = "vit.feat_layer." + std::to_string(i);
        if (g.wants(feat_name)) {
            ggml_tensor *fn = build_norm(g, x, m.norm, hp.norm_eps);
            fn = ggml_view_3d(ctx, fn, fn->ne[0], T - 1, N, fn->nb[1], fn->nb[2], fn->nb[1]);
            g.name(ggml_cont(ctx, fn), feat_name);
        }

        if (k_out < 4 && i == hp.out_layers[k_out]) {
            const int k = k_out++;
            ggml_tensor *normed = build_norm(g, x, m.norm, hp.norm_eps);
            // token 0 of cat(local_x, x) (or x), un-normalized: the camera token [F, N]
            ggml_tensor *tok0 = ggml_view_2d(ctx, x, C, N, x->nb[2], 0);
            if (hp.cat_token) tok0 = ggml_concat(ctx, ggml_view_2d(ctx, local_x, C, N, local_x->nb[2], 0), tok0, 0);
            out.cam_tok[k] = g.name(tok0, "vit.cam_tok." + std::to_string(k));
            // patch tokens of cat(local_x, normed) (or normed) [F, T - 1, N]
            ggml_tensor *patches;
            if (hp.cat_token) {
                patches = build_concat_skip_token0(g, local_x, normed);
            } else {
                patches = ggml_cont(ctx, ggml_view_3d(ctx, normed, normed->ne[0], T - 1, N, normed->nb[1], normed->nb[2],
                                                     normed->nb[1]));
            }
            out.feats[k] = g.name(patches, "vit.feat." + std::to_string(k));
        }
    }
    return out;
}

}  // namespace da3
