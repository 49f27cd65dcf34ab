// One graph builder per model kind (ref: the per-architecture graph builders of llama.cpp's
// tools/mtmd/models). run_network (engine.cpp) orchestrates a call: reference view, inputs,
// outputs; a builder adds its kind's network to the call's graph from the shared blocks of
// graph/ (ViT, DPT / DualDPT head, camera decoder / encoder) and turns the computed outputs into
// depth, confidence, sky and cameras. The kind is chosen once at load (model::kind, from the
// preset: gguf/schema.h). Adding a kind: a class here, its file in models/, a case in
// make_builder and its preset entry in gguf/schema.cpp.
#pragma once

#include "models/graph_run.h"

#include <memory>
#include <vector>

namespace da3 {

// One call's inputs, views in reference order (the reference view first; order[i] is the input
// index of view i).
struct call_inputs {
    const da3_infer_params &p;
    int n, h, w;
    bool aux;                        // aux ray head wanted (use_ray_pose or compute_aux)
    const float *intrinsics;         // the caller's [n, 3, 3] in input order, or null
    std::vector<int> order;
    std::vector<float> in_ext, in_intr;  // input poses [n, 3, 4], [n, 3, 3]; empty without poses
    std::vector<float> ref_tokens;   // tokens entering block alt_start-1 (reference order), or empty
    bool with_pose() const { return !in_ext.empty(); }
};

// One call's host results, views in reference order: [n, h, w] maps, [n, 3, 4] / [n, 3, 3] cameras.
struct call_outputs {
    std::vector<float> depth, conf, sky, ext34, intr33;
    int is_metric = 0;
};

class model_builder {
public:
    explicit model_builder(const model &m) : m_(m) {}
    virtual ~model_builder() = default;
    // Adds the network of one call on images `img` [w, h, 3, n] to r's graph and marks its outputs.
    virtual void build(graph_run &r, ggml_tensor *img, const call_inputs &in) = 0;
    // After r.compute(): depth, conf, sky, cameras and is_metric into `out`.
    virtual void postprocess(const call_inputs &in, call_outputs &out) = 0;
    // The aux ray head's logits when built (any-view heads), else null.
    ggml_tensor *aux_logits() const { return head_.aux_logits; }

protected:
    // The main backbone and head; outputs their logits (and sky / aux logits when present).
    void build_main(graph_run &r, ggml_tensor *img, ggml_tensor *cam_tokens, ggml_tensor *resume, const call_inputs &in);
    // depth (and conf) from the main head's logits, activated per the head config.
    void activate_depth(const call_inputs &in, call_outputs &out) const;

    const model &m_;
    vit_outputs vit_;
    head_out head_;
};

// Any-view DepthAnything3Net: DualDPT head, camera decoder, optional camera encoder.
class anyview_builder : public model_builder {
public:
    using model_builder::model_builder;
    void build(graph_run &r, ggml_tensor *img, const call_inputs &in) override;
    void postprocess(const call_inputs &in, call_outputs &out) override;

protected:
    void build_anyview(graph_run &r, ggml_tensor *img, const call_inputs &in);
    void build_camera_decoder(graph_run &r, const call_inputs &in);
    void decode_cameras(const call_inputs &in, call_outputs &out) const;
    void align_to_input(const call_inputs &in, call_outputs &out) const;

    ggml_tensor *pose_enc_ = nullptr;
};

// Mono / metric: DPT head with sky; metric-large scales depth by the focal length.
class dpt_sky_builder : public model_builder {
public:
    using model_builder::model_builder;
    void build(graph_run &r, ggml_tensor *img, const call_inputs &in) override;
    void postprocess(const call_inputs &in, call_outputs &out) override;
};

// Nested: an any-view model scaled to metres by a metric branch (m_vit, m_head).
class nested_builder : public anyview_builder {
public:
    using anyview_builder::anyview_builder;
    void build(graph_run &r, ggml_tensor *img, const call_inputs &in) override;
    void postprocess(const call_inputs &in, call_outputs &out) override;

private:
    head_out metric_;
};

// The builder of m.kind.
std::unique_ptr<model_builder> make_builder(const model &m);

}  // namespace da3
