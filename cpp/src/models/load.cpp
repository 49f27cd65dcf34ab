// Model loading: the parts of one file (or of a nested pair) into `model`, its kind and preset
// from the schema (gguf/schema.h).
#include "models/model.h"

#include <cmath>
#include <cstdio>

namespace da3 {

// The metric branch of a nested model: backbone and DPT head under `vp` / `hp`
// ("m_vit." / "m_head." in one nested file, "vit." / "head." in the metric file of a pair).
static void load_metric_branch(const weight_map &wm, const std::string &vp, const std::string &hp, model &m) {
    load_vit(wm, vp, m.m_vit);
    load_head(wm, hp, hp, m.m_head);
    if (m.m_head.hp.dim_in != m.m_vit.hp.feat_dim()) wm.format_error(hp + " input width does not match " + vp);
}

// img.mean / img.std bounds: inputs are in [0, 1] before (x - mean) / std, so these are far
// outside any real normalization
static constexpr float kMaxImageMean = 1000.0f, kMinImageStd = 1e-3f, kMaxImageStd = 1000.0f;
static const std::vector<float> kImageMean = {0.485f, 0.456f, 0.406f}, kImageStd = {0.229f, 0.224f, 0.225f};
static const std::string kMeanKey = std::string(schema::kImg) + schema::mk::kMean,
                         kStdKey = std::string(schema::kImg) + schema::mk::kStd;

static void load_normalization(const weight_map &wm, model &m) {
    std::vector<float> mean = wm.get_float_array_or(kMeanKey, kImageMean);
    std::vector<float> stdv = wm.get_float_array_or(kStdKey, kImageStd);
    if (mean.size() != 3 || stdv.size() != 3) wm.format_error("img.mean and img.std must have 3 entries");
    for (int c = 0; c < 3; ++c) {
        if (!(std::fabs(mean[c]) <= kMaxImageMean) || !(stdv[c] >= kMinImageStd && stdv[c] <= kMaxImageStd)) {
            char v[192];
            std::snprintf(v, sizeof v, "[%d]: mean %.9g, std %.9g (|mean| <= %g, std in [%g, %g])", c, mean[c], stdv[c],
                          kMaxImageMean, kMinImageStd, kMaxImageStd);
            wm.format_error(std::string("metadata keys 'depthanything3.img.mean' / 'depthanything3.img.std' out of range ") + v);
        }
        m.mean[c] = mean[c];
        m.std[c] = stdv[c];
    }
}

void load_model(const weight_map &wm, model &m) {
    m.checkpoint = wm.get_str_or(schema::kKeyCheckpoint, "");
    load_vit(wm, schema::kVit, m.vit);
    load_head(wm, schema::kHead, schema::kHead, m.head);
    const int F = m.vit.hp.feat_dim();
    if (m.head.hp.dim_in != F) {
        wm.format_error("head input width " + std::to_string(m.head.hp.dim_in) + " does not match the backbone feature width " +
                        std::to_string(F));
    }
    m.has_cam_dec = !wm.names_with_prefix(schema::kCamDec).empty();  // then every cam.* tensor is required
    if (m.has_cam_dec) {
        if (m.vit.hp.alt_start == -1) wm.format_error("camera decoder present but the backbone has no camera token");
        load_camera_decoder(wm, schema::kCamDec, m.cam_dec);
    }
    m.has_cam_enc = !wm.names_with_prefix(schema::kCamEnc).empty();
    if (m.has_cam_enc) load_camera_encoder(wm, schema::kCamEnc, m.cam_enc);
    m.nested = schema::kind_of_tensors(wm) == model_kind::nested;
    if (m.nested) {
        load_metric_branch(wm, schema::kMetricVit, schema::kMetricHead, m);
        if (!m.has_cam_dec || !m.m_head.hp.has_sky || m.m_vit.hp.alt_start != -1) {
            wm.format_error("nested file: expected an any-view model with a camera decoder (vit.*, head.*, cam.*) "
                            "and a metric model with a sky head (m_vit.*, m_head.*)");
        }
    }
    load_normalization(wm, m);
    m.preset = schema::resolve_preset(wm, m.vit.hp.embed_dim, m.kind, m.metric_scaling);
}

// What a file of a nested pair holds, for the order/kind checks of load_model_pair.
enum class pair_kind { anyview, metric, mono, nested, no_camera };

static pair_kind classify(const weight_map &wm) {
    switch (schema::kind_of_tensors(wm)) {
        case model_kind::nested: return pair_kind::nested;
        case model_kind::dpt_sky: {
            const bool mono = wm.get_str_or(schema::kKeyPreset, "") == "da3mono-large" ||
                              wm.get_str_or(schema::kKeyCheckpoint, "").find("mono") != std::string::npos;
            return mono ? pair_kind::mono : pair_kind::metric;
        }
        case model_kind::anyview: break;
    }
    return wm.has(schema::kCamDecMarker) ? pair_kind::anyview : pair_kind::no_camera;
}

static std::string pair_kind_text(pair_kind k) {
    switch (k) {
        case pair_kind::anyview: return "an any-view model";
        case pair_kind::metric: return "a metric model";
        case pair_kind::mono: return "a mono model (da3mono-large)";
        case pair_kind::nested: return "a one-file nested model (m_vit.*: load it alone)";
        default: return "a model without a camera decoder (cam.*)";
    }
}

void check_model_pair(const weight_map &any, const weight_map &met) {
    const pair_kind ka = classify(any), km = classify(met);
    if (ka == pair_kind::anyview && km == pair_kind::metric) return;
    std::string problem;
    if (ka == pair_kind::metric && km == pair_kind::anyview) {
        problem = "the two files are in the wrong order";
    } else {
        if (ka != pair_kind::anyview) problem = "'" + any.path() + "' is " + pair_kind_text(ka) + ", not an any-view model";
        if (km != pair_kind::metric) {
            problem += (problem.empty() ? "'" : "; '") + met.path() + "' is " + pair_kind_text(km) + ", not a metric model";
        }
    }
    fail(DA3_ERR_FORMAT, "nested pair '" + any.path() + "' + '" + met.path() + "': " + problem +
                             "; expected the any-view model (e.g. da3-giant: camera decoder, no sky head) first "
                             "and the metric model (da3metric-large: DPT head with sky) second");
}

void prepare_model_for_cpu(model &m, int n_threads, bool bf16) {
    pack_vit_for_cpu(m.vit, n_threads, bf16);
    pack_vit_for_cpu(m.m_vit, n_threads, bf16);  // no blocks unless nested
    pack_head_for_cpu(m.head, n_threads);
    pack_head_for_cpu(m.m_head, n_threads);
    m.linear_engine = vit_linear_engine(m.vit);
}

void load_model_pair(const weight_map &any, const weight_map &met, model &m) {
    check_model_pair(any, met);
    load_model(any, m);
    load_metric_branch(met, schema::kVit, schema::kHead, m);
    if (m.m_vit.hp.alt_start != -1) met.format_error("the metric model of a nested pair must not have a camera token (vit.alt_start)");
    std::vector<float> mean = met.get_float_array_or(kMeanKey, kImageMean);
    std::vector<float> stdv = met.get_float_array_or(kStdKey, kImageStd);
    for (int c = 0; c < 3; ++c) {
        if (mean.size() != 3 || stdv.size() != 3 || mean[c] != m.mean[c] || stdv[c] != m.std[c]) {
            met.format_error("img.mean/img.std differ from those of '" + any.path() + "' (one input feeds both models)");
        }
    }
    m.nested = true;
    m.kind = model_kind::nested;
    m.preset = "da3nested-giant-large";
    m.metric_scaling = false;
}

}  // namespace da3
