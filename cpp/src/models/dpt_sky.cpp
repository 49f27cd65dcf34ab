// Mono / metric DepthAnything3Net: ViT without camera token, DPT head with sky head.
// ref: depth_anything_3/model/da3.py, utils/alignment.py (apply_metric_scaling)
#include "models/builder.h"

namespace da3 {

void dpt_sky_builder::build(graph_run &r, ggml_tensor *img, const call_inputs &in) {
    build_main(r, img, nullptr, nullptr, in);
}

void dpt_sky_builder::postprocess(const call_inputs &in, call_outputs &out) {
    activate_depth(in, out);
    if (head_.sky_logits) {
        out.sky = graph_run::read(head_.sky_logits);
        sky_activate(m_.head.hp, out.sky.data(), out.sky.size());
        fill_sky_depth(out.depth.data(), out.sky.data(), out.depth.size());
    }
    if (m_.metric_scaling && in.intrinsics) {
        // metric-large: metres = depth * focal / 300 (views keep the input order: no camera
        // token, so no reference view)
        apply_metric_scaling(out.depth.data(), in.n, (size_t)in.h * in.w, in.with_pose() ? in.in_intr.data() : in.intrinsics);
        out.is_metric = 1;
    }
}

}  // namespace da3
