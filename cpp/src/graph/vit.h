// DINOv2 backbone with the DA3 changes: qk-norm, 2D RoPE, alternating local/global
// attention, camera token, concatenated half-normed features.
// ref: depth_anything_3/model/dinov2/vision_transformer.py, layers/{block,attention,rope}.py
#pragma once

#include "graph/graph.h"
#include "gguf/weights.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace da3 {

struct vit_hparams {
    int embed_dim = 0, depth = 0, num_heads = 0, head_dim = 64, mlp_hidden = 0;
    int patch_size = 14;
    int alt_start = -1, rope_start = -1, qknorm_start = -1;
    float rope_freq = 100.0f;
    float ln_eps = 1e-6f;     // block norms
    float norm_eps = 1e-5f;   // final norm and q/k norms (PyTorch default)
    float interpolate_offset = 0.1f;
    int pos_embed_grid = 37;
    bool cat_token = true;
    bool swiglu = false;
    int out_layers[4] = {0, 0, 0, 0};

    bool is_global(int i) const { return alt_start != -1 && i >= alt_start && i % 2 == 1; }
    bool has_rope(int i) const { return rope_start != -1 && i >= rope_start; }
    bool has_qknorm(int i) const { return qknorm_start != -1 && i >= qknorm_start; }
    int feat_dim() const { return cat_token ? 2 * embed_dim : embed_dim; }
};

struct vit_block {
    layer_norm norm1, norm2, q_norm, k_norm;
    linear qkv, proj;
    ggml_tensor *ls1 = nullptr, *ls2 = nullptr;
    linear fc1, fc2;  // mlp: fc1/fc2; swiglu: w12/w3
};

struct vit_model {
    vit_hparams hp;
    conv2d patch_embed;
    ggml_tensor *cls_token = nullptr;     // [C]
    ggml_tensor *camera_token = nullptr;  // [C, 2] (any-view models)
    ggml_tensor *pos_embed = nullptr;     // [C, 1 + grid*grid]
    layer_norm norm;
    std::vector<vit_block> blocks;
    std::vector<float> pos_embed_host;    // copy of pos_embed for host-side interpolation

    // Graph inputs computed on the host that depend only on the patch grid (ph, pw): kept per
    // grid, so repeated calls at one size skip the bicubic interpolation and the sin/cos.
    // Guarded by the owning context's inference lock (da3_context serializes its calls).
    struct grid_inputs {
        std::vector<float> pos_embed;                 // [1 + ph*pw, C]
        std::vector<float> rope_local, rope_global;   // [T, 2, D] (CPU graphs)
    };
    mutable std::map<std::pair<int, int>, grid_inputs> grid_cache;
    const grid_inputs &grid(int ph, int pw) const;
};

// Reads hparams under meta prefix ("vit." or "m_vit.") and tensors under the same prefix.
void load_vit(const weight_map &wm, const std::string &prefix, vit_model &m);

// CPU backend only, after loading: repacks the block linears' f32/f16 (and, in VNNI builds,
// q8_0 / q4_K) weights in place for our GEMM (cpu_gemm.h pack_linear_weight) and marks them
// packed, blocks split over n_threads threads; an f32/f16 patch-embedding kernel too, as the
// matrix of its im2col GEMM (graph.h pack_conv_for_cpu). bf16: the block linears' f32/f16
// weights packed for the bf16 GEMM instead (cpu_gemm_amx.h), where this CPU has an engine.
void pack_vit_for_cpu(vit_model &m, int n_threads = 1, bool bf16 = false);
// What runs the block linears after pack_vit_for_cpu: "amx_bf16", "avx512_bf16", "int8", "f32".
const char *vit_linear_engine(const vit_model &m);

// Bicubic interpolation of the patch position embedding to a (ph, pw) grid exactly as
// DINOv2's interpolate_pos_encoding (scale_factor = (n + offset) / grid, align_corners=False,
// no antialias). Returns [1 + ph*pw, C] row-major (cls entry first, unchanged).
std::vector<float> interpolate_pos_embed(const vit_model &m, int ph, int pw);

struct vit_outputs {
    ggml_tensor *feats[4] = {nullptr, nullptr, nullptr, nullptr};   // [F, ph*pw, N] patch tokens
    ggml_tensor *cam_tok[4] = {nullptr, nullptr, nullptr, nullptr}; // [F, N] token 0, un-normed
    ggml_tensor *ref_feat = nullptr;  // with stop_block: x entering block stop_block, [C, T, N]
};

// Builds the backbone on images [W, H, 3, N]. `cam_tokens` ([C, N]) replaces the learned
// camera token at block alt_start when given (pose-conditioned input). With stop_block >= 0
// only blocks < stop_block are built and ref_feat holds their output (reference-view choice).
// With resume_x ([C, T, N], the tokens entering block resume_block, e.g. a reference stage's
// ref_feat) the embedding and the blocks before resume_block are skipped; no out_layer may lie
// before it.
vit_outputs build_vit(graph_ctx &g, const vit_model &m, ggml_tensor *images, ggml_tensor *cam_tokens,
                      int stop_block = -1, ggml_tensor *resume_x = nullptr, int resume_block = 0);

}  // namespace da3
