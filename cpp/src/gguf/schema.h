// The GGUF schema of depth-anything-cpp files, defined once: architecture, the metadata keys
// and tensor groups that decide a file's kind, and the presets with their model kind. The
// converter (python/depth_anything_cpp/gguf_schema.py) takes the presets, groups, metadata keys and
// tensor-name parts from da3_gguf_schema_json() and is checked against the rest (tests/test_schema.py). The shapes
// are checked by the part loaders (graph/vit.cpp, head.cpp, camera.cpp), which build each tensor
// name from the parts below (the published layout: /work/shared/docs/gguf-layout.md).
#pragma once

#include <string>

namespace da3 {

class weight_map;

// What network a file holds: chosen once at load, picks the graph builder (models/builder.h).
enum class model_kind {
    anyview,  // ViT with camera token, DualDPT head, camera decoder (+ encoder)
    dpt_sky,  // mono / metric: ViT, DPT head with sky
    nested,   // any-view model + metric branch (m_vit.*, m_head.*)
};

namespace schema {

constexpr const char *kArch = "depthanything3";  // general.architecture; metadata key prefix + "."
// metadata keys (after "depthanything3.")
constexpr const char *kKeyPreset = "preset";  // written by convert.py; absent in published files
constexpr const char *kKeyCheckpoint = "checkpoint_name";
constexpr const char *kKeyArch = "arch", *kKeyPatchSize = "patch_size", *kKeyHasCamEnc = "has_cam_enc",
                     *kKeyQuantRule = "quant_rule", *kKeyQuantFallback = "quant_fallback";
// tensor groups (name prefixes); the tensors whose presence marks a part are below (after tn)
constexpr const char *kVit = "vit.", *kHead = "head.", *kCamDec = "cam.", *kCamEnc = "cam_enc.", *kGs = "gs.";
constexpr const char *kMetricVit = "m_vit.", *kMetricHead = "m_head.";
constexpr const char *kImg = "img.";  // metadata only: preprocessing

// Metadata keys of a part, after "depthanything3." and its group (e.g. "vit.depth",
// "m_head.features"), spelled only here; schema_json() gives them to the converter by role (the
// same word, grouped by the part whose keys they are). Some are informational: written, not read.
namespace mk {
// ViT ({m_,}vit.; the camera encoder cam_enc. uses the first ones + kInDim)
constexpr const char *kEmbedDim = "embed_dim", *kDepth = "depth", *kNumHeads = "num_heads", *kMlpHidden = "mlp_hidden",
                     *kLnEps = "ln_eps", *kHeadDim = "head_dim", *kNumRegisterTokens = "num_register_tokens",
                     *kInitValues = "init_values", *kAltStart = "alt_start", *kRopeStart = "rope_start",
                     *kQkNormStart = "qknorm_start", *kRopeFreq = "rope_freq", *kCatToken = "cat_token",
                     *kQkvBias = "qkv_bias", *kInterpolateOffset = "interpolate_offset",
                     *kInterpolateAntialias = "interpolate_antialias", *kPosEmbedGrid = "pos_embed_grid",
                     *kFfnType = "ffn_type", *kOutLayers = "out_layers", *kInDim = "in_dim";
// image preprocessing (img.)
constexpr const char *kMean = "mean", *kStd = "std", *kResizeMode = "resize_mode", *kResizeTarget = "resize_target";
// heads ({m_,}head., gs.) and the camera decoder (cam.: kDimIn)
constexpr const char *kFeatures = "features", *kOutChannels = "out_channels", *kOutputDim = "output_dim",
                     *kPosEmbed = "pos_embed", *kDownRatio = "down_ratio", *kActivation = "activation",
                     *kConfActivation = "conf_activation", *kSkyActivation = "sky_activation",
                     *kNormType = "norm_type", *kHasAux = "has_aux", *kAuxRayDim = "aux_ray_dim",
                     *kAuxLevels = "aux_levels", *kDimIn = "dim_in";
// gaussian head (gs.), besides the head keys
constexpr const char *kShDegree = "sh_degree", *kScaleMin = "scale_min", *kScaleMax = "scale_max",
                     *kPredOffsetDepth = "pred_offset_depth", *kPredOffsetXy = "pred_offset_xy",
                     *kPredColor = "pred_color";
}  // namespace mk

// GGUF tensor-name parts, spelled only here. schema_json() gives them to the converter keyed by
// the upstream (PyTorch) module names they are converted from.
namespace tn {
// ViT ({m_,}vit.): embeddings, final norm (kNorm), blocks "blk.<i>." and their parts
constexpr const char *kPatchEmbed = "patch_embed", *kClsToken = "cls_token", *kCameraToken = "camera_token",
                     *kPosEmbed = "pos_embed", *kNorm = "norm", *kBlock = "blk";
constexpr const char *kNorm1 = "norm1", *kAttnQkv = "attn_qkv", *kAttnQNorm = "attn_qnorm", *kAttnKNorm = "attn_knorm",
                     *kAttnProj = "attn_proj", *kNorm2 = "norm2", *kMlpFc1 = "mlp_fc1", *kMlpFc2 = "mlp_fc2",
                     *kMlpW12 = "mlp_w12", *kMlpW3 = "mlp_w3", *kLs1 = "ls1", *kLs2 = "ls2";
// DPT / DualDPT head ({m_,}head., gs.): kNorm, "proj.<k>", "resize.<k>", then under "scratch.":
// "layer<k>_rn", fusion blocks "rn<k>" (aux: "rn<k>_aux") of "rc<u>.c<v>" and "out", the outputs
constexpr const char *kProj = "proj", *kResize = "resize", *kScratch = "scratch", *kLayerRn = "layer",
                     *kLayerRnEnd = "_rn", *kFusion = "rn", *kResConf = "rc", *kResConfConv = "c", *kFusionOut = "out",
                     *kAux = "_aux", *kOut1 = "out1", *kOut2a = "out2a", *kOut2b = "out2b", *kSkyOut2a = "sky_out2a",
                     *kSkyOut2b = "sky_out2b", *kOut1Aux = "out1_aux", *kOut2aAux = "out2a_aux",
                     *kOut2AuxLn = "out2_aux_ln", *kOut2bAux = "out2b_aux";
// camera decoder (cam.)
constexpr const char *kCamBb0 = "bb0", *kCamBb2 = "bb2", *kCamFcT = "fc_t", *kCamFcQ = "fc_q", *kCamFcFov = "fc_fov";
// camera encoder (cam_enc.): the upstream names, blocks "trunk.<i>." of their own parts
constexpr const char *kEncPoseFc1 = "pose_branch.fc1", *kEncPoseFc2 = "pose_branch.fc2", *kEncTokenNorm = "token_norm",
                     *kEncTrunkNorm = "trunk_norm", *kEncTrunk = "trunk";
constexpr const char *kEncNorm1 = "norm1", *kEncNorm2 = "norm2", *kEncQkv = "attn.qkv", *kEncProj = "attn.proj",
                     *kEncFc1 = "mlp.fc1", *kEncFc2 = "mlp.fc2", *kEncLs1 = "ls1.gamma", *kEncLs2 = "ls2.gamma";
}  // namespace tn

extern const std::string kCamDecMarker;  // cam.bb0.weight
extern const std::string kSkyMarker;     // head.scratch.sky_out2a.weight

struct preset {
    const char *name;
    model_kind kind;
    bool metric_scaling;  // depth * focal / 300 (metric-large)
    int embed_dim;        // backbone width of the official preset
};
// Every preset the converter writes and the core runs (configs/*.yaml of depth_anything_3).
extern const preset kPresets[];
extern const int kNumPresets;
// Name of a file whose any-view backbone width matches no preset (published-layout fallback).
constexpr const char *kCustomPreset = "da3-custom";

const preset *find_preset(const std::string &name);
const char *kind_name(model_kind k);

// The kind a file's tensors show (gguf-layout.md: m_vit.* nested, the sky head mono/metric,
// else any-view).
model_kind kind_of_tensors(const weight_map &wm);

// The preset of a file: its "preset" metadata when present (it must be known and agree with the
// tensors, else DA3_ERR_FORMAT). Published-layout files lack the key; then, explicitly:
// nested tensors -> da3nested-giant-large; a sky head -> da3mono-large when checkpoint_name
// contains "mono", da3metric-large when it contains "metric" (either case), else
// DA3_ERR_FORMAT asking for the key; any-view -> the preset of the backbone width, else
// da3-custom (any-view, no metric scaling).
// embed_dim: the loaded backbone's width.
std::string resolve_preset(const weight_map &wm, int embed_dim, model_kind &kind, bool &metric_scaling);

// The schema as JSON (presets with kind and embed_dim, file keys, groups and their roles, markers,
// metadata keys and tensor-name parts by part) for the converter.
const std::string &schema_json();

}  // namespace schema
}  // namespace da3
