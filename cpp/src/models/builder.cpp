// The parts every model kind shares, and the choice of a builder by kind (builder.h).
#include "models/builder.h"

namespace da3 {

void model_builder::build_main(graph_run &r, ggml_tensor *img, ggml_tensor *cam_tokens, ggml_tensor *resume,
                               const call_inputs &in) {
    const int P = m_.vit.hp.patch_size;
    vit_ = build_vit(r.g, m_.vit, img, cam_tokens, -1, resume, m_.vit.hp.alt_start - 1);
    head_ = build_head(r.g, m_.head, vit_.feats, in.h / P, in.w / P, in.h, in.w, in.aux);
    r.output(head_.logits);
    if (head_.sky_logits) r.output(head_.sky_logits);
    if (in.aux && head_.aux_logits) r.output(head_.aux_logits);
}

void model_builder::activate_depth(const call_inputs &in, call_outputs &out) const {
    const size_t count = (size_t)in.n * in.h * in.w;
    std::vector<float> logits = graph_run::read(head_.logits);  // [n, out_dim, h, w]
    out.depth.resize(count);
    if (m_.head.hp.output_dim > 1) out.conf.resize(count);
    head_activate(m_.head.hp, logits.data(), in.n, in.h, in.w, out.depth.data(), out.conf.empty() ? nullptr : out.conf.data());
}

std::unique_ptr<model_builder> make_builder(const model &m) {
    switch (m.kind) {
        case model_kind::anyview: return std::make_unique<anyview_builder>(m);
        case model_kind::dpt_sky: return std::make_unique<dpt_sky_builder>(m);
        case model_kind::nested: return std::make_unique<nested_builder>(m);
    }
    fail(DA3_ERR_INTERNAL, "unknown model kind");
}

}  // namespace da3
