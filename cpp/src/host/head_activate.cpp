// Host-side activations of the DPT / DualDPT head outputs (declared in graph/head.h).
// ref: depth_anything_3/model/dualdpt.py, dpt.py (_apply_activation_single)
#include "graph/head.h"

#include "common.h"

#include <cmath>
#include <string>

namespace da3 {

void apply_activation(float *x, size_t count, const std::string &activation) {
    // ref: dualdpt.py / dpt.py _apply_activation_single (unknown names fall back to linear there;
    // here they are rejected so a bad file cannot silently change the outputs).
    if (activation == "linear") return;
    if (activation == "exp") {
        for (size_t i = 0; i < count; ++i) x[i] = std::exp(x[i]);
    } else if (activation == "expp1") {
        for (size_t i = 0; i < count; ++i) x[i] = std::exp(x[i]) + 1.0f;
    } else if (activation == "expm1") {
        for (size_t i = 0; i < count; ++i) x[i] = std::expm1(x[i]);
    } else if (activation == "relu") {
        for (size_t i = 0; i < count; ++i) x[i] = x[i] <= 0.0f ? 0.0f : x[i];  // NaN kept (torch.relu)
    } else if (activation == "sigmoid") {
        for (size_t i = 0; i < count; ++i) x[i] = 1.0f / (1.0f + std::exp(-x[i]));
    } else if (activation == "softplus") {
        // torch softplus (beta 1, threshold 20)
        for (size_t i = 0; i < count; ++i) x[i] = x[i] > 20.0f ? x[i] : std::log1p(std::exp(x[i]));
    } else if (activation == "tanh") {
        for (size_t i = 0; i < count; ++i) x[i] = std::tanh(x[i]);
    } else {
        fail(DA3_ERR_UNSUPPORTED, "unknown head activation '" + activation + "'");
    }
}

void head_activate(const head_hparams &hp, const float *logits, int n, int h, int w, float *depth, float *conf) {
    const size_t hw = (size_t)h * w;
    const int C = hp.output_dim;
    for (int v = 0; v < n; ++v) {
        const float *lv = logits + (size_t)v * C * hw;
        std::copy(lv, lv + hw, depth + (size_t)v * hw);
        if (C > 1 && conf) {
            std::copy(lv + (size_t)(C - 1) * hw, lv + (size_t)C * hw, conf + (size_t)v * hw);
        }
    }
    apply_activation(depth, (size_t)n * hw, hp.activation);
    if (C > 1 && conf) {
        apply_activation(conf, (size_t)n * hw, hp.conf_activation);
    }
}

void aux_activate(const head_hparams &hp, const float *aux_logits, int n, int h, int w, float *ray, float *ray_conf) {
    const size_t hw = (size_t)h * w;
    for (int v = 0; v < n; ++v) {
        const float *lv = aux_logits + (size_t)v * 7 * hw;
        for (size_t p = 0; p < hw; ++p) {
            for (int c = 0; c < 6; ++c) {
                ray[((size_t)v * hw + p) * 6 + c] = lv[(size_t)c * hw + p];
            }
            ray_conf[(size_t)v * hw + p] = lv[6 * hw + p];
        }
    }
    apply_activation(ray_conf, (size_t)n * hw, hp.conf_activation);
}

}  // namespace da3
