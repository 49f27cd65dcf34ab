// Back-projection of depth maps to a world-frame point cloud (the `points` entry point).
// ref: official utils/export/glb.py (_depths_to_world_points_with_colors, get_conf_thresh).
#pragma once

#include "depth_anything.h"

#include <cstdint>
#include <vector>

namespace da3 {

struct point_cloud {
    std::vector<float> xyz;      // [M, 3] world
    std::vector<uint8_t> rgb;    // [M, 3]
    std::vector<int32_t> view;   // [M]
    std::vector<int32_t> pixel;  // [M, 2] (column, row)
    double conf_thresh = 0.0;    // NaN when no conf was given
    int64_t count() const { return (int64_t)view.size(); }
};

// Arrays as documented for da3_points_compute (conf, sky, images may be NULL).
struct points_input {
    const float *depth = nullptr, *conf = nullptr, *sky = nullptr;
    const uint8_t *images = nullptr;
    int n_views = 0, height = 0, width = 0;
    const float *extrinsics = nullptr;
    int ext_rows = 3;
    const float *intrinsics = nullptr;
};

// Throws da3::error (DA3_ERR_INVALID_ARGUMENT) on bad input.
point_cloud compute_points(const points_input &in, const da3_points_params &p);

}  // namespace da3
