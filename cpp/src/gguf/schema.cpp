// The GGUF schema (schema.h): presets and the rules that give a file its kind and preset.
#include "gguf/schema.h"
#include "gguf/weights.h"

#include <algorithm>
#include <cctype>

namespace da3 {
namespace schema {

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

const std::string &schema_json() {
    static const std::string json = [] {
        std::string s = std::string("{\"arch\": \"") + kArch + "\", \"keys\": {\"preset\": \"" + kKeyPreset +
                        "\", \"checkpoint\": \"" + kKeyCheckpoint + "\"}, \"groups\": [";
        const char *groups[] = {kVit, kHead, kCamDec, kCamEnc, kGs, kMetricVit, kMetricHead};
        for (size_t i = 0; i < sizeof groups / sizeof groups[0]; ++i) s += std::string(i ? ", " : "") + "\"" + groups[i] + "\"";
        s += std::string("], \"markers\": {\"camera_decoder\": \"") + kCamDecMarker + "\", \"sky\": \"" + kSkyMarker +
             "\", \"nested\": \"" + kMetricVit + "\"}, \"custom_preset\": \"" + kCustomPreset + "\", \"presets\": {";
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
