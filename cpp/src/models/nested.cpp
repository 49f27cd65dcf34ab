// Nested DepthAnything3Net: the any-view model's prediction scaled to metres by a metric
// branch (metric-large: m_vit, m_head) on the same input. ref: da3.py NestedDepthAnything3Net
#include "models/builder.h"

#include <algorithm>

namespace da3 {

void nested_builder::build(graph_run &r, ggml_tensor *img, const call_inputs &in) {
    build_anyview(r, img, in);
    const int P = m_.vit.hp.patch_size;
    r.g.prefix = "m.";
    vit_outputs mvo = build_vit(r.g, m_.m_vit, img, nullptr);
    metric_ = build_head(r.g, m_.m_head, mvo.feats, in.h / P, in.w / P, in.h, in.w, false);
    r.g.prefix.clear();
    r.output(metric_.logits);
    r.output(metric_.sky_logits);
    build_camera_decoder(r, in);
}

// Scales the any-view depth to the metric branch and fills the sky; returns the scale.
// ref: da3.py NestedDepthAnything3Net._apply_depth_alignment / _handle_sky_regions. PyTorch
// subsamples 100000 pixels for its quantiles when there are more; this uses all of them.
static float nested_align(float *depth, float *conf, const float *mdepth, const float *sky, size_t count) {
    std::vector<float> c;
    for (size_t i = 0; i < count; ++i)
        if (sky[i] < 0.3f) c.push_back(conf[i]);
    if (c.size() <= 10) fail(DA3_ERR_INVALID_ARGUMENT, "nested alignment: too few non-sky pixels");
    const float median_conf = quantile_linear(c, 0.5);
    double num = 0, den = 0;
    for (size_t i = 0; i < count; ++i) {
        if (conf[i] >= median_conf && sky[i] < 0.3f && mdepth[i] > 1e-2f && depth[i] > 1e-3f) {
            num += (double)mdepth[i] * depth[i];
            den += (double)depth[i] * depth[i];
        }
    }
    const float s = (float)(num / std::max(den, 1e-12));
    std::vector<float> ns;
    for (size_t i = 0; i < count; ++i) {
        depth[i] *= s;
        if (sky[i] < 0.3f) ns.push_back(depth[i]);
    }
    const float max_depth = std::min(quantile_linear(ns, 0.99), 200.0f);
    for (size_t i = 0; i < count; ++i) {
        if (!(sky[i] < 0.3f)) {
            depth[i] = max_depth;
            conf[i] = 1.0f;
        }
    }
    return s;
}

void nested_builder::postprocess(const call_inputs &in, call_outputs &out) {
    activate_depth(in, out);
    decode_cameras(in, out);
    if (!out.intr33.empty()) {  // metric depth from the branch, scaled by the predicted focal lengths
        const size_t hw = (size_t)in.h * in.w;
        std::vector<float> mlog = graph_run::read(metric_.logits), msky = graph_run::read(metric_.sky_logits);
        std::vector<float> mdepth((size_t)in.n * hw);
        head_activate(m_.m_head.hp, mlog.data(), in.n, in.h, in.w, mdepth.data(), nullptr);
        sky_activate(m_.m_head.hp, msky.data(), msky.size());
        fill_sky_depth(mdepth.data(), msky.data(), mdepth.size());
        apply_metric_scaling(mdepth.data(), in.n, hw, out.intr33.data());
        const float s = nested_align(out.depth.data(), out.conf.data(), mdepth.data(), msky.data(), out.depth.size());
        for (int i = 0; i < in.n; ++i)
            for (int r3 = 0; r3 < 3; ++r3) out.ext34[(size_t)i * 12 + r3 * 4 + 3] *= s;
        out.sky = std::move(msky);
        out.is_metric = 1;
    }
    align_to_input(in, out);
}

}  // namespace da3
