// Camera modules of DA3 any-view models: the camera decoder (camera token -> pose encoding) and
// the camera encoder (pose encoding of input poses -> camera tokens). The host pose maths around
// them (pose encoding <-> extrinsics/intrinsics, normalization, Sim(3) alignment): host/pose.h.
//
// ref: depth_anything_3/model/cam_dec.py, cam_enc.py
#pragma once

#include "graph/graph.h"
#include "host/pose.h"

#include <cstdint>
#include <string>
#include <vector>

namespace da3 {

class weight_map;

// ---- decoder ----

struct camera_decoder {
    linear bb0, bb2;     // backbone: Linear, ReLU, Linear, ReLU (2C -> 2C)
    linear fc_t, fc_q;   // 2C -> 3, 2C -> 4
    linear fc_fov;       // 2C -> 2, then ReLU
    int dim_in = 0;
};

// Loads "<prefix>bb0", "bb2", "fc_t", "fc_q", "fc_fov" (weights may be quantized). Widths come
// from the tensor shapes (the file's cam.dim_in metadata is unreliable). Throws da3::error.
void load_camera_decoder(const weight_map &wm, const std::string &prefix, camera_decoder &out);
bool has_camera_decoder(const weight_map &wm, const std::string &prefix);

// cam_token [2C, N] (un-normalized token 0 of the last out_layer) -> pose encoding [9, N]
// (tap "cam.pose_enc").
ggml_tensor *build_camera_decoder(graph_ctx &g, const camera_decoder &d, ggml_tensor *cam_token);

// ---- encoder (pose-conditioned input) ----

struct camera_encoder_block {
    layer_norm norm1, norm2;
    linear qkv, proj, fc1, fc2;
    ggml_tensor *ls1 = nullptr, *ls2 = nullptr;  // LayerScale gamma [C] (null = identity)
};

struct camera_encoder {
    linear fc1, fc2;                 // pose_branch Mlp: 9 -> C/2, GELU(erf), C/2 -> C
    layer_norm token_norm, trunk_norm;
    std::vector<camera_encoder_block> trunk;  // 4 blocks in the official model
    int dim = 0;
    int num_heads = 16;
};

// Tensor names are the official module paths under `prefix` ("cam_enc."):
//   <prefix>pose_branch.fc1/fc2.{weight,bias}, token_norm, trunk_norm,
//   <prefix>trunk.{i}.norm1/norm2, attn.qkv, attn.proj, mlp.fc1, mlp.fc2 .{weight,bias},
//   <prefix>trunk.{i}.ls1.gamma / ls2.gamma.
// num_heads from metadata "cam_enc.num_heads" when present, else 16. Throws da3::error.
void load_camera_encoder(const weight_map &wm, const std::string &prefix, camera_encoder &out);
bool has_camera_encoder(const weight_map &wm, const std::string &prefix);

// pose_enc [9, N] (see prepare_encoder_pose_enc) -> camera tokens [C, N]: token i overwrites
// token 0 of view i at block alt_start. The trunk attends across the N views of one batch.
ggml_tensor *build_camera_encoder(graph_ctx &g, const camera_encoder &e, ggml_tensor *pose_enc);

}  // namespace da3
