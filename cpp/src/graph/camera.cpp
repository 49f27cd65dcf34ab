// Camera decoder / encoder graphs (the host pose maths around them: host/pose.cpp).
// ref: depth_anything_3/model/cam_dec.py, cam_enc.py, utils/{attention,block}.py
#include "graph/camera.h"

#include "gguf/schema.h"
#include "gguf/weights.h"

#include <algorithm>
#include <cmath>

namespace da3 {

namespace mk = schema::mk;  // metadata keys

namespace {

const float kCamEncLnEps = 1e-5f;  // nn.LayerNorm default in CameraEnc and its Blocks

linear get_linear(const weight_map &wm, const std::string &name, int64_t in, int64_t out) {
    linear l;
    l.w = wm.get(name + ".weight", {in, out});
    l.b = wm.get(name + ".bias", {out});
    return l;
}

layer_norm get_norm(const weight_map &wm, const std::string &name, int64_t c) {
    return {wm.get(name + ".weight", {c}), wm.get(name + ".bias", {c})};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// decoder

bool has_camera_decoder(const weight_map &wm, const std::string &prefix) {
    return wm.has(prefix + schema::tn::kCamBb0 + ".weight");
}

void load_camera_decoder(const weight_map &wm, const std::string &prefix, camera_decoder &out) {
    namespace tn = schema::tn;
    camera_decoder d;
    ggml_tensor *w0 = wm.get(prefix + tn::kCamBb0 + ".weight");
    const int64_t C = w0->ne[0];
    d.dim_in = (int)C;
    d.bb0 = get_linear(wm, prefix + tn::kCamBb0, C, C);
    d.bb2 = get_linear(wm, prefix + tn::kCamBb2, C, C);
    d.fc_t = get_linear(wm, prefix + tn::kCamFcT, C, 3);
    d.fc_q = get_linear(wm, prefix + tn::kCamFcQ, C, 4);
    d.fc_fov = get_linear(wm, prefix + tn::kCamFcFov, C, 2);
    out = d;
}

ggml_tensor *build_camera_decoder(graph_ctx &g, const camera_decoder &d, ggml_tensor *cam_token) {
    if (cam_token->ne[0] != d.dim_in) {
        fail(DA3_ERR_INTERNAL, "camera decoder: token width " + std::to_string(cam_token->ne[0]) +
                                   " != " + std::to_string(d.dim_in));
    }
    ggml_context *ctx = g.ctx;
    ggml_tensor *x = g.name(build_linear(g, cam_token, d.bb0), "cam.bb0");  // named: profiling stage
    x = ggml_relu(ctx, x);
    x = ggml_relu(ctx, build_linear(g, x, d.bb2));
    ggml_tensor *t = build_linear(g, x, d.fc_t);
    ggml_tensor *q = build_linear(g, x, d.fc_q);
    ggml_tensor *fov = ggml_relu(ctx, build_linear(g, x, d.fc_fov));
    ggml_tensor *pe = ggml_concat(ctx, ggml_concat(ctx, t, q, 0), fov, 0);
    return g.name(pe, "cam.pose_enc");
}

// ---------------------------------------------------------------------------------------------
// encoder

bool has_camera_encoder(const weight_map &wm, const std::string &prefix) {
    return wm.has(prefix + schema::tn::kEncPoseFc1 + ".weight");
}

void load_camera_encoder(const weight_map &wm, const std::string &prefix, camera_encoder &out) {
    namespace tn = schema::tn;
    camera_encoder e;
    ggml_tensor *f1 = wm.get(prefix + tn::kEncPoseFc1 + ".weight");
    const int64_t in = f1->ne[0], hid = f1->ne[1];
    if (in != 9) {
        wm.format_error(prefix + tn::kEncPoseFc1 + " takes " + std::to_string(in) + " inputs, expected 9");
    }
    ggml_tensor *f2 = wm.get(prefix + tn::kEncPoseFc2 + ".weight");
    const int64_t C = f2->ne[1];
    e.dim = (int)C;
    e.fc1 = get_linear(wm, prefix + tn::kEncPoseFc1, 9, hid);
    e.fc2 = get_linear(wm, prefix + tn::kEncPoseFc2, hid, C);
    e.token_norm = get_norm(wm, prefix + tn::kEncTokenNorm, C);
    e.trunk_norm = get_norm(wm, prefix + tn::kEncTrunkNorm, C);
    e.num_heads = (int)wm.get_int_or(prefix + mk::kNumHeads, 16, 1, C);
    if (e.num_heads <= 0 || C % e.num_heads != 0) {
        wm.format_error(prefix + mk::kNumHeads + " " + std::to_string(e.num_heads) + " does not divide width " +
                        std::to_string(C));
    }
    for (int i = 0;; ++i) {
        const std::string p = prefix + tn::kEncTrunk + "." + std::to_string(i) + ".";
        if (!wm.has(p + tn::kEncNorm1 + ".weight")) break;
        camera_encoder_block b;
        b.norm1 = get_norm(wm, p + tn::kEncNorm1, C);
        b.norm2 = get_norm(wm, p + tn::kEncNorm2, C);
        b.qkv = get_linear(wm, p + tn::kEncQkv, C, 3 * C);
        b.proj = get_linear(wm, p + tn::kEncProj, C, C);
        ggml_tensor *m1 = wm.get(p + tn::kEncFc1 + ".weight");
        b.fc1 = get_linear(wm, p + tn::kEncFc1, C, m1->ne[1]);
        b.fc2 = get_linear(wm, p + tn::kEncFc2, m1->ne[1], C);
        b.ls1 = wm.find(p + tn::kEncLs1);
        b.ls2 = wm.find(p + tn::kEncLs2);
        if (b.ls1) b.ls1 = wm.get(p + tn::kEncLs1, {C});
        if (b.ls2) b.ls2 = wm.get(p + tn::kEncLs2, {C});
        e.trunk.push_back(b);
    }
    if (e.trunk.empty()) {
        wm.format_error(prefix + tn::kEncTrunk + ".0.* tensors are missing");
    }
    out = e;
}

ggml_tensor *build_camera_encoder(graph_ctx &g, const camera_encoder &e, ggml_tensor *pose_enc) {
    ggml_context *ctx = g.ctx;
    const int64_t C = e.dim, N = pose_enc->ne[1];
    const int64_t nh = e.num_heads, hd = C / nh;
    ggml_tensor *x = build_linear(g, pose_enc, e.fc1);
    x = ggml_gelu_erf(ctx, x);
    x = build_linear(g, x, e.fc2);
    x = build_norm(g, x, e.token_norm, kCamEncLnEps);  // [C, N]
    for (size_t i = 0; i < e.trunk.size(); ++i) {
        const camera_encoder_block &b = e.trunk[i];
        // attention over the N views as one sequence (ref: utils/attention.py Attention)
        ggml_tensor *h = build_norm(g, x, b.norm1, kCamEncLnEps);
        ggml_tensor *qkv = build_linear(g, h, b.qkv);  // [3C, N]: per token [3][heads][hd]
        const size_t es = ggml_element_size(qkv);
        auto part = [&](int j) {
            ggml_tensor *v = ggml_view_3d(ctx, qkv, hd, nh, N, hd * es, qkv->nb[1], (size_t)j * C * es);
            return ggml_permute(ctx, v, 0, 2, 1, 3);  // [hd, N, nh]
        };
        ggml_tensor *q = part(0), *k = part(1);
        ggml_tensor *v = ggml_cont(ctx, ggml_permute(ctx, part(2), 1, 0, 2, 3));  // [N, hd, nh]
        ggml_tensor *kq = mul_mat_f32acc(ctx, k, q);                             // [N_k, N_q, nh]
        kq = ggml_soft_max_ext(ctx, kq, nullptr, 1.0f / std::sqrt((float)hd), 0.0f);
        ggml_tensor *a = mul_mat_f32acc(ctx, v, kq);  // [hd, N_q, nh]
        a = ggml_cont(ctx, ggml_permute(ctx, a, 0, 2, 1, 3));  // [hd, nh, N]
        a = ggml_reshape_2d(ctx, a, C, N);
        a = build_linear(g, a, b.proj);
        if (b.ls1) a = ggml_mul(ctx, a, b.ls1);
        x = ggml_add(ctx, x, a);
        // MLP (exact GELU)
        h = build_norm(g, x, b.norm2, kCamEncLnEps);
        h = ggml_gelu_erf(ctx, build_linear(g, h, b.fc1));
        h = build_linear(g, h, b.fc2);
        if (b.ls2) h = ggml_mul(ctx, h, b.ls2);
        x = ggml_add(ctx, x, h);
        g.name(x, "cam_enc.blk." + std::to_string(i));
    }
    x = build_norm(g, x, e.trunk_norm, kCamEncLnEps);
    return g.name(x, "cam_enc.tokens");
}

}  // namespace da3
