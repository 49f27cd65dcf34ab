// Dense prediction heads of DA3: DualDPT (any-view models: depth + conf, optional aux ray
// branch) and DPT (mono/metric models: depth + sky), plus their host-side activations and the
// mono/metric postprocessing (sky fill, metric scaling).
//
// ref: depth_anything_3/model/dualdpt.py, dpt.py, utils/head_utils.py, model/da3.py,
//      utils/alignment.py
//
// Graph layouts (ggml order, see graph.h): tokens [C, T, N], feature maps [W, H, C, N].
#pragma once

#include "graph/graph.h"

#include <string>
#include <vector>

namespace da3 {

class weight_map;

struct head_hparams {
    int dim_in = 0;                  // token width fed to the head (2C any-view, C mono)
    int features = 0;                // fusion width F
    int out_channels[4] = {0, 0, 0, 0};
    int output_dim = 0;              // 2 for DualDPT (depth, conf), 1 for DPT (depth)
    int patch_size = 14;
    int down_ratio = 1;
    bool has_norm = false;           // LayerNorm(dim_in) on the tokens (DualDPT; DPT norm_type "layer")
    bool pos_embed = false;          // UV sin/cos embedding (DualDPT: true; DPT: false)
    bool dual = false;               // DualDPT (true) or DPT (false)
    bool has_sky = false;            // DPT sky head
    bool has_aux = false;            // DualDPT aux ray branch tensors present
    int aux_out1_convs = 0;          // 5 (official), 3 or 1
    std::string activation = "exp";
    std::string conf_activation = "expp1";
    std::string sky_activation = "relu";
};

// FeatureFusionBlock: y = x0 (+ RCU1(x1)) -> RCU2 -> bilinear(align_corners) -> 1x1 out.
struct fusion_block {
    bool has_rc1 = true;
    conv2d rc1_c1, rc1_c2;  // resConfUnit1 (absent in refinenet4)
    conv2d rc2_c1, rc2_c2;  // resConfUnit2
    conv2d out;             // out_conv 1x1
};

struct dpt_head {
    head_hparams hp;
    layer_norm norm;             // only when hp.has_norm
    conv2d proj[4];              // 1x1 dim_in -> out_channels[k]
    conv2d resize[4];            // ConvT k4s4, ConvT k2s2, identity (empty), conv3x3 s2 p1
    conv2d layer_rn[4];          // 3x3, no bias
    fusion_block rn[4];          // refinenet1..4 (rn[3] has no rc1)
    conv2d out1;                 // output_conv1 3x3 F -> F/2
    conv2d out2a, out2b;         // output_conv2: 3x3 F/2 -> 32, ReLU, 1x1 32 -> output_dim
    conv2d sky_out2a, sky_out2b; // DPT sky head: 3x3 F/2 -> 32, ReLU, 1x1 32 -> 1
    // aux ray branch (DualDPT, optional in files)
    fusion_block rn_aux[4];
    conv2d out1_aux[5];          // output_conv1_aux[last] (no activations between)
    conv2d out2a_aux, out2b_aux; // 3x3 F/2 -> 32, LayerNorm(32) over channels, ReLU, 1x1 32 -> 7
    layer_norm out2_aux_ln;
};

// Loads a head from `wm`. `prefix` is the tensor prefix ("head." or "m_head."), `meta_prefix`
// the metadata prefix under "depthanything3." ("head." or "m_head."). The head kind follows
// from the tensors (a scratch.sky_out2a tensor means DPT + sky); widths come from tensor
// shapes. Throws da3::error (DA3_ERR_MISSING_TENSOR when a tensor is absent or misshaped,
// DA3_ERR_FORMAT / DA3_ERR_UNSUPPORTED for bad metadata).
void load_head(const weight_map &wm, const std::string &prefix, const std::string &meta_prefix, dpt_head &out);

// CPU backend only, after load: repacks, in place, the kernels that run as one GEMM each (the
// token projections and the stride-2 resize.3 convolution) for linear_cpu, so no call transposes
// them again (pack_conv_for_cpu), on n_threads threads. Same values, same sums: outputs
// are unchanged.
void pack_head_for_cpu(dpt_head &h, int n_threads = 1);

struct head_out {
    ggml_tensor *logits = nullptr;      // [W, H, output_dim, N] pre-activation (tap "head.logits")
    ggml_tensor *sky_logits = nullptr;  // [W, H, 1, N] pre-activation, DPT only ("head.sky_logits")
    ggml_tensor *aux_logits = nullptr;  // [8*pw, 8*ph, 7, N] pre-activation ("head.aux_logits"), or null
};

// Builds the head graph. feats[k]: tokens [dim_in, ph*pw, N] of out_layer k (patch tokens
// only, as the backbone returns them: cat + backbone norm). H, W: processed image size
// (used for the output size H/down_ratio x W/down_ratio and the UV aspect ratio).
// compute_aux: also build the aux ray branch (requires hp.has_aux). Activations are applied on
// the host (head_activate / sky_activate / aux_activate). Taps: head.proj.{k}, head.resize.{k},
// head.layer_rn.{k}, head.fuse.{k}, head.out1, head.logits, head.sky_logits, head.aux_logits.
head_out build_head(graph_ctx &g, const dpt_head &w, ggml_tensor *const feats[4], int ph, int pw, int H, int W,
                    bool compute_aux);

// UV sin/cos embedding of a w x h grid with `channels` channels, times `ratio`, laid out
// [w, h, channels] (ggml order), float32 as PyTorch computes it. ref: head_utils.py
// create_uv_grid + position_grid_to_embed; aspect = W/H of the processed image.
std::vector<float> uv_pos_embed(int w, int h, int channels, double aspect, float ratio = 0.1f);

// ---- host-side activations (ref: dualdpt.py/dpt.py _apply_activation_single) ----

// Applies one named activation ("exp", "expp1", "expm1", "relu", "sigmoid", "softplus", "tanh",
// "linear") in place. Throws DA3_ERR_UNSUPPORTED for an unknown name.
void apply_activation(float *x, size_t count, const std::string &activation);

// logits: [N, output_dim, H, W] (PyTorch order). depth: [N, H, W] = activation(ch 0);
// conf: [N, H, W] = conf_activation(last ch) when output_dim > 1 (may be null otherwise).
void head_activate(const head_hparams &hp, const float *logits, int n, int h, int w, float *depth, float *conf);

// aux logits [N, 7, h, w] -> ray [N, h, w, 6] (linear) and ray_conf [N, h, w] (conf_activation).
void aux_activate(const head_hparams &hp, const float *aux_logits, int n, int h, int w, float *ray,
                  float *ray_conf);

// ---- mono/metric postprocessing (implemented in sky.cpp) ----

// Sky logits -> sky probability in place (sky_activation, "relu" for the published models).
void sky_activate(const head_hparams &hp, float *sky, size_t count);

// ref: da3.py _process_mono_sky_estimation. Pixels with sky >= 0.3 are sky; when both sky and
// non-sky pixels number more than 10, sky pixels get the 0.99 quantile (linear interpolation,
// torch.quantile) of the non-sky depth over all views. PyTorch subsamples 100000 random pixels
// when there are more; this port uses them all (deterministic). depth, sky: `count` floats.
// Returns true when depth was changed.
bool fill_sky_depth(float *depth, const float *sky, size_t count);

// Boolean sky mask returned to users: sky >= 0.5 (ref: utils/io/output_processor.py _extract_sky).
void sky_mask(const float *sky, size_t count, uint8_t *mask);

// Metric depth in metres: depth * ((fx + fy) / 2) / 300 per view (ref: utils/alignment.py
// apply_metric_scaling). depth [n, h*w], intrinsics [n, 3, 3] at the processed resolution.
void apply_metric_scaling(float *depth, int n, size_t pixels_per_view, const float *intrinsics,
                          float scale_factor = 300.0f);

// torch.quantile(x, q) with linear interpolation; `values` is sorted in place. Empty -> NaN.
float quantile_linear(std::vector<float> &values, double q);

}  // namespace da3
