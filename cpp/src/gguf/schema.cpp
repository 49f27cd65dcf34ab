// The GGUF schema (schema.h): presets and the rules that give a file its kind and preset.
#include "gguf/schema.h"
#include "gguf/weights.h"

#include <algorithm>
#include <cctype>
#include <utility>

namespace da3 {
namespace schema {

const std::string kCamDecMarker = std::string(kCamDec) + tn::kCamBb0 + ".weight";
const std::string kSkyMarker = std::string(kHead) + tn::kScratch + "." + tn::kSkyOut2a + ".weight";

const preset kPresets[] = {
    {"da3-small", model_kind::anyview, false, 384},
    {"da3-base", model_kind::anyview, false, 768},
    {"da3-large", model_kind::anyview, false, 1024},
    {"da3-giant", model_kind::anyview, false, 1536},
    {"da3mono-large", model_kind::dpt_sky, false, 1024},
    {"da3metric-large", model_kind::dpt_sky, true, 1024},
    {"da3nested-giant-large", model_kind::nested, false, 1536},
};
const int kNumPresets = (int)(sizeof kPresets / sizeof kPresets[0]);

const preset *find_preset(const std::string &name) {
    for (const preset &p : kPresets)
        if (name == p.name) return &p;
    return nullptr;
}

const char *kind_name(model_kind k) {
    switch (k) {
        case model_kind::anyview: return "anyview";
        case model_kind::dpt_sky: return "dpt_sky";
        case model_kind::nested: return "nested";
    }
    return "?";
}

model_kind kind_of_tensors(const weight_map &wm) {
    if (!wm.names_with_prefix(kMetricVit).empty()) return model_kind::nested;
    if (wm.has(kSkyMarker)) return model_kind::dpt_sky;
    return model_kind::anyview;
}

static std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return (char)std::tolower(c); });
    return s;
}

// The documented fallback for published-layout files without the preset key (schema.h).
static std::string published_preset(const weight_map &wm, model_kind kind, int embed_dim) {
    if (kind == model_kind::nested) return "da3nested-giant-large";
    if (kind == model_kind::dpt_sky) {
        const std::string ck = lower(wm.get_str_or(kKeyCheckpoint, ""));
        const bool mono = ck.find("mono") != std::string::npos, metric = ck.find("metric") != std::string::npos;
        if (mono != metric) return mono ? "da3mono-large" : "da3metric-large";
        wm.format_error(std::string("a DPT model with a sky head but no metadata key '") + kArch + "." + kKeyPreset +
                        "', and its checkpoint_name '" + printable(wm.get_str_or(kKeyCheckpoint, "")) +
                        "' names neither mono nor metric: set the key to da3mono-large or da3metric-large");
    }
    for (const preset &p : kPresets)
        if (p.kind == model_kind::anyview && p.embed_dim == embed_dim) return p.name;
    return kCustomPreset;
}

std::string resolve_preset(const weight_map &wm, int embed_dim, model_kind &kind, bool &metric_scaling) {
    const model_kind tensors = kind_of_tensors(wm);
    const std::string name = wm.get_str_or(kKeyPreset, "");
    if (name.empty()) {
        const std::string p = published_preset(wm, tensors, embed_dim);
        const preset *known = find_preset(p);
        kind = tensors;
        metric_scaling = known && known->metric_scaling;
        return p;
    }
    const preset *known = find_preset(name);
    if (!known) {
        std::string list;
        for (const preset &p : kPresets) list += std::string(list.empty() ? "" : ", ") + p.name;
        wm.format_error("unknown preset '" + printable(name) + "' in metadata key '" + kArch + "." + kKeyPreset + "' (known: " + list + ")");
    }
    if (known->kind != tensors) {
        wm.format_error("preset '" + name + "' (model kind " + kind_name(known->kind) + ") does not match the tensors (kind " +
                        kind_name(tensors) + ")");
    }
    kind = known->kind;
    metric_scaling = known->metric_scaling;
    return name;
}

namespace {

using part = std::pair<const char *, const char *>;  // upstream module name, GGUF part

// The tensor-name parts by upstream module name (ref: depth_anything_3/model/{dinov2,dpt,dualdpt,cam_dec}.py).
const part kVitParts[] = {{"patch_embed.proj", tn::kPatchEmbed}, {"cls_token", tn::kClsToken},
                          {"camera_token", tn::kCameraToken},    {"pos_embed", tn::kPosEmbed},
                          {"norm", tn::kNorm},                   {"blocks", tn::kBlock}};
const part kBlockParts[] = {{"norm1", tn::kNorm1},         {"attn.qkv", tn::kAttnQkv}, {"attn.q_norm", tn::kAttnQNorm},
                            {"attn.k_norm", tn::kAttnKNorm}, {"attn.proj", tn::kAttnProj}, {"norm2", tn::kNorm2},
                            {"mlp.fc1", tn::kMlpFc1},       {"mlp.fc2", tn::kMlpFc2},   {"mlp.w12", tn::kMlpW12},
                            {"mlp.w3", tn::kMlpW3},         {"ls1.gamma", tn::kLs1},    {"ls2.gamma", tn::kLs2}};
const part kHeadParts[] = {
    {"norm", tn::kNorm},
    {"projects", tn::kProj},
    {"resize_layers", tn::kResize},
    {"scratch", tn::kScratch},
    {"layer_rn", tn::kLayerRn},  // scratch.layer<k>_rn
    {"layer_rn_end", tn::kLayerRnEnd},
    {"refinenet", tn::kFusion},
    {"resConfUnit", tn::kResConf},
    {"conv", tn::kResConfConv},
    {"out_conv", tn::kFusionOut},
    {"aux", tn::kAux},
    {"output_conv1", tn::kOut1},
    {"output_conv2.0", tn::kOut2a},
    {"output_conv2.2", tn::kOut2b},
    {"sky_output_conv2.0", tn::kSkyOut2a},
    {"sky_output_conv2.2", tn::kSkyOut2b},
    {"output_conv1_aux", tn::kOut1Aux},
    {"output_conv2_aux.0", tn::kOut2aAux},
    {"output_conv2_aux.2", tn::kOut2AuxLn},
    {"output_conv2_aux.5", tn::kOut2bAux},
};
const part kCamDecParts[] = {{"backbone.0", tn::kCamBb0}, {"backbone.2", tn::kCamBb2}, {"fc_t", tn::kCamFcT},
                             {"fc_qvec", tn::kCamFcQ},    {"fc_fov.0", tn::kCamFcFov}};

const part kCamEncParts[] = {{"pose_branch.fc1", tn::kEncPoseFc1}, {"pose_branch.fc2", tn::kEncPoseFc2},
                             {"token_norm", tn::kEncTokenNorm},      {"trunk_norm", tn::kEncTrunkNorm},
                             {"trunk", tn::kEncTrunk},               {"norm1", tn::kEncNorm1},
                             {"norm2", tn::kEncNorm2},               {"attn.qkv", tn::kEncQkv},
                             {"attn.proj", tn::kEncProj},            {"mlp.fc1", tn::kEncFc1},
                             {"mlp.fc2", tn::kEncFc2},               {"ls1.gamma", tn::kEncLs1},
                             {"ls2.gamma", tn::kEncLs2}};

// The metadata keys of each part (schema.h mk), by role: the role is the key itself.
const char *const kFileKeys[][2] = {{"arch", kKeyArch},           {"checkpoint", kKeyCheckpoint},
                                    {"patch_size", kKeyPatchSize}, {"preset", kKeyPreset},
                                    {"has_cam_enc", kKeyHasCamEnc}, {"quant_rule", kKeyQuantRule},
                                    {"quant_fallback", kKeyQuantFallback}};
const char *const kVitKeys[] = {mk::kEmbedDim,  mk::kDepth,      mk::kNumHeads,  mk::kHeadDim,
                                mk::kMlpHidden, mk::kNumRegisterTokens, mk::kInitValues, mk::kAltStart,
                                mk::kRopeStart, mk::kQkNormStart, mk::kRopeFreq, mk::kCatToken,
                                mk::kQkvBias,   mk::kLnEps,      mk::kInterpolateOffset, mk::kInterpolateAntialias,
                                mk::kPosEmbedGrid, mk::kFfnType, mk::kOutLayers};
const char *const kImgKeys[] = {mk::kMean, mk::kStd, mk::kResizeMode, mk::kResizeTarget};
const char *const kHeadKeys[] = {mk::kFeatures,   mk::kOutChannels,     mk::kOutputDim,     mk::kPosEmbed,
                                 mk::kDownRatio,  mk::kActivation,      mk::kConfActivation, mk::kSkyActivation,
                                 mk::kNormType,   mk::kHasAux,          mk::kAuxRayDim,     mk::kAuxLevels};
const char *const kCamDecKeys[] = {mk::kDimIn};
const char *const kCamEncKeys[] = {mk::kEmbedDim, mk::kDepth, mk::kNumHeads, mk::kMlpHidden, mk::kInDim, mk::kLnEps};
const char *const kGsKeys[] = {mk::kOutputDim,  mk::kFeatures,        mk::kOutChannels,    mk::kShDegree,
                               mk::kScaleMin,   mk::kScaleMax,        mk::kPredOffsetDepth, mk::kPredOffsetXy,
                               mk::kPredColor};
// the groups (schema.h) by role
const char *const kGroupRoles[][2] = {{"vit", kVit},        {"head", kHead},   {"cam", kCamDec},
                                      {"cam_enc", kCamEnc}, {"gs", kGs},       {"metric_vit", kMetricVit},
                                      {"metric_head", kMetricHead}, {"img", kImg}};

std::string quoted(const char *s) { return std::string("\"") + s + "\""; }

template <size_t N>
std::string pairs_json(const char *const (&pairs)[N][2]) {
    std::string s = "{";
    for (size_t i = 0; i < N; ++i) s += std::string(i ? ", " : "") + quoted(pairs[i][0]) + ": " + quoted(pairs[i][1]);
    return s + "}";
}

template <size_t N>
std::string keys_json(const char *group, const char *const (&keys)[N]) {
    std::string s = quoted(group) + ": {";
    for (size_t i = 0; i < N; ++i) s += std::string(i ? ", " : "") + quoted(keys[i]) + ": " + quoted(keys[i]);
    return s + "}";
}

template <size_t N>
std::string parts_json(const char *group, const part (&parts)[N]) {
    std::string s = std::string("\"") + group + "\": {";
    for (size_t i = 0; i < N; ++i)
        s += std::string(i ? ", " : "") + "\"" + parts[i].first + "\": \"" + parts[i].second + "\"";
    return s + "}";
}

}  // namespace

const std::string &schema_json() {
    static const std::string json = [] {
        std::string s = std::string("{\"arch\": \"") + kArch + "\", \"keys\": " + pairs_json(kFileKeys) +
                        ", \"group_roles\": " + pairs_json(kGroupRoles) + ", \"metadata_keys\": {" +
                        keys_json("vit", kVitKeys) + ", " + keys_json("img", kImgKeys) + ", " +
                        keys_json("head", kHeadKeys) + ", " + keys_json("cam", kCamDecKeys) + ", " +
                        keys_json("cam_enc", kCamEncKeys) + ", " + keys_json("gs", kGsKeys) + "}, \"groups\": [";
        const char *groups[] = {kVit, kHead, kCamDec, kCamEnc, kGs, kMetricVit, kMetricHead};
        for (size_t i = 0; i < sizeof groups / sizeof groups[0]; ++i) s += std::string(i ? ", " : "") + "\"" + groups[i] + "\"";
        s += "], \"markers\": {\"camera_decoder\": \"" + kCamDecMarker + "\", \"sky\": \"" + kSkyMarker +
             "\", \"nested\": \"" + kMetricVit + "\"}, \"custom_preset\": \"" + kCustomPreset + "\", ";
        s += "\"tensor_parts\": {" + parts_json("vit", kVitParts) + ", " + parts_json("block", kBlockParts) + ", " +
             parts_json("head", kHeadParts) + ", " + parts_json("cam", kCamDecParts) + ", " +
             parts_json("cam_enc", kCamEncParts) + "}, \"presets\": {";
        for (int i = 0; i < kNumPresets; ++i) {
            const preset &p = kPresets[i];
            s += std::string(i ? ", " : "") + "\"" + p.name + "\": {\"kind\": \"" + kind_name(p.kind) +
                 "\", \"metric_scaling\": " + (p.metric_scaling ? "true" : "false") + ", \"embed_dim\": " + std::to_string(p.embed_dim) + "}";
        }
        return s + "}}";
    }();
    return json;
}

}  // namespace schema
}  // namespace da3
