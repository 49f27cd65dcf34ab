// Host-side postprocessing of the mono/metric (DPT + sky) head.
// ref: depth_anything_3/model/da3.py _process_mono_sky_estimation, utils/alignment.py,
//      utils/io/output_processor.py
#include "graph/head.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace da3 {

namespace {
const float kNonSkyThreshold = 0.3f;  // compute_sky_mask: non-sky = sky < 0.3
const float kSkyMaskThreshold = 0.5f; // returned mask: sky >= 0.5
const size_t kMinPixels = 10;
}  // namespace

void sky_activate(const head_hparams &hp, float *sky, size_t count) {
    // ref: dpt.py _apply_sky_activation: sigmoid / relu / anything else = linear
    if (hp.sky_activation == "sigmoid" || hp.sky_activation == "relu") {
        apply_activation(sky, count, hp.sky_activation);
    }
}

float quantile_linear(std::vector<float> &values, double q) {
    if (values.empty()) return std::numeric_limits<float>::quiet_NaN();
    std::sort(values.begin(), values.end());
    // torch.quantile 'linear': pos = q * (n - 1), lerp between floor and ceil (computed in the
    // input dtype there; double here, then rounded).
    const double pos = q * (double)(values.size() - 1);
    const size_t lo = (size_t)std::floor(pos);
    const size_t hi = std::min(lo + 1, values.size() - 1);
    const double frac = pos - (double)lo;
    return (float)((double)values[lo] + frac * ((double)values[hi] - (double)values[lo]));
}

bool fill_sky_depth(float *depth, const float *sky, size_t count) {
    std::vector<float> non_sky;
    non_sky.reserve(count);
    for (size_t i = 0; i < count; ++i) {
        if (sky[i] < kNonSkyThreshold) non_sky.push_back(depth[i]);
    }
    const size_t n_non_sky = non_sky.size(), n_sky = count - n_non_sky;
    if (n_non_sky <= kMinPixels || n_sky <= kMinPixels) {
        return false;
    }
    const float fill = quantile_linear(non_sky, 0.99);
    for (size_t i = 0; i < count; ++i) {
        if (!(sky[i] < kNonSkyThreshold)) depth[i] = fill;
    }
    return true;
}

void sky_mask(const float *sky, size_t count, uint8_t *mask) {
    for (size_t i = 0; i < count; ++i) mask[i] = sky[i] >= kSkyMaskThreshold ? 1 : 0;
}

void apply_metric_scaling(float *depth, int n, size_t pixels_per_view, const float *intrinsics, float scale_factor) {
    for (int v = 0; v < n; ++v) {
        const float *K = intrinsics + (size_t)v * 9;
        const float focal = (K[0] + K[4]) / 2.0f;
        const float s = focal / scale_factor;
        float *d = depth + (size_t)v * pixels_per_view;
        for (size_t i = 0; i < pixels_per_view; ++i) d[i] *= s;
    }
}

}  // namespace da3
