// Any-view DepthAnything3Net: ViT with camera token, DualDPT head, camera decoder; with input
// poses, the camera encoder's tokens condition the backbone. ref: depth_anything_3/model/da3.py
#include "models/builder.h"

#include <cstring>

namespace da3 {

void anyview_builder::build_anyview(graph_run &r, ggml_tensor *img, const call_inputs &in) {
    ggml_tensor *cam_tokens = nullptr;
    if (in.with_pose()) {
        ggml_tensor *enc_in = r.g.input_f32("cam_enc.input", prepare_encoder_pose_enc(in.in_ext.data(), in.in_intr.data(), in.n, in.h, in.w), 9, in.n);
        cam_tokens = build_camera_encoder(r.g, m_.cam_enc, enc_in);
    }
    // resume from the reference stage (the same blocks on the same tokens) unless the caller
    // asked for intermediates of the skipped blocks
    ggml_tensor *resume = nullptr;
    const int C = m_.vit.hp.embed_dim;
    if (!in.ref_tokens.empty() && in.p.n_taps == 0 && m_.vit.hp.out_layers[0] >= m_.vit.hp.alt_start - 1) {
        const int64_t tokens = (int64_t)(in.ref_tokens.size() / in.n / C);
        resume = r.g.input_f32("vit.resume", in.ref_tokens, C, tokens, in.n);
    }
    build_main(r, img, cam_tokens, resume, in);
}

void anyview_builder::build_camera_decoder(graph_run &r, const call_inputs &in) {
    if (!m_.has_cam_dec || in.p.use_ray_pose) return;
    pose_enc_ = da3::build_camera_decoder(r.g, m_.cam_dec, vit_.cam_tok[3]);
    r.output(pose_enc_);
}

void anyview_builder::build(graph_run &r, ggml_tensor *img, const call_inputs &in) {
    build_anyview(r, img, in);
    build_camera_decoder(r, in);
}

void anyview_builder::decode_cameras(const call_inputs &in, call_outputs &out) const {
    if (!pose_enc_) return;
    std::vector<float> pe = graph_run::read(pose_enc_);  // [n, 9]
    out.ext34.resize((size_t)in.n * 12);
    out.intr33.resize((size_t)in.n * 9);
    pose_enc_to_extri_intri(pe.data(), in.n, in.h, in.w, out.ext34.data(), out.intr33.data());
}

// ref: api.py _align_to_input_extrinsics_intrinsics (after the network): the input poses are
// aligned to the prediction; the input intrinsics are returned.
void anyview_builder::align_to_input(const call_inputs &in, call_outputs &out) const {
    if (!in.with_pose() || out.ext34.empty()) return;
    align_to_input_extrinsics(out.ext34.data(), in.in_ext.data(), in.n, out.depth.data(), out.depth.size(),
                              in.p.align_to_input_ext_scale != 0);
    out.intr33 = in.in_intr;
}

void anyview_builder::postprocess(const call_inputs &in, call_outputs &out) {
    activate_depth(in, out);
    decode_cameras(in, out);
    align_to_input(in, out);
}

}  // namespace da3
