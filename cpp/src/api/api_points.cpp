// C API of the points and export functions: argument checks, exception -> status, ownership.
#include "depth_anything.h"
#include "host/exports.h"
#include "host/points.h"

#include <cmath>
#include <new>
#include <string>
#include <vector>

using da3::fail;

struct da3_points {
    da3::point_cloud cloud;
};

namespace {


std::vector<da3::camera> load_cameras(const float *extrinsics, int ext_rows, const float *intrinsics, int n_views,
                                      int height, int width) {
    if (!extrinsics || !intrinsics) fail(DA3_ERR_INVALID_ARGUMENT, "extrinsics and intrinsics must not be NULL");
    if (ext_rows != 3 && ext_rows != 4) fail(DA3_ERR_INVALID_ARGUMENT, "ext_rows must be 3 or 4");
    if (n_views < 1) fail(DA3_ERR_INVALID_ARGUMENT, "n_views must be at least 1");
    if (height < 1 || width < 1) fail(DA3_ERR_INVALID_ARGUMENT, "image size (height, width) must be positive");
    std::vector<da3::camera> cams;
    cams.reserve(n_views);
    for (int i = 0; i < n_views; ++i) cams.push_back(da3::load_camera(extrinsics, ext_rows, intrinsics, i));
    return cams;
}

}  // namespace

extern "C" {

da3_points_params da3_points_default_params(void) {
    da3_points_params p;
    p.conf_thresh = 1.05;
    p.conf_thresh_percentile = 40.0;
    p.ensure_thresh_percentile = 90.0;
    p.remove_sky = 1;
    p.sky_thresh = 0.5;
    p.num_max_points = 1000000;
    p.seed = 0;
    return p;
}

da3_status da3_points_compute(const float *depth, const float *conf, const float *sky, const uint8_t *images,
                              int n_views, int height, int width, const float *extrinsics, int ext_rows,
                              const float *intrinsics, const da3_points_params *params, da3_points **out) {
    if (out) *out = nullptr;
    return da3::guarded([&] {
        if (!out) fail(DA3_ERR_INVALID_ARGUMENT, "out must not be NULL");
        const da3_points_params p = params ? *params : da3_points_default_params();
        da3::points_input in;
        in.depth = depth, in.conf = conf, in.sky = sky, in.images = images;
        in.n_views = n_views, in.height = height, in.width = width;
        in.extrinsics = extrinsics, in.ext_rows = ext_rows, in.intrinsics = intrinsics;
        auto *res = new da3_points{da3::compute_points(in, p)};
        *out = res;
    });
}

void da3_points_free(da3_points *pts) { delete pts; }

int64_t da3_points_count(const da3_points *pts) { return pts ? pts->cloud.count() : 0; }

const float *da3_points_xyz(const da3_points *pts) {
    return pts && pts->cloud.count() ? pts->cloud.xyz.data() : nullptr;
}
const uint8_t *da3_points_rgb(const da3_points *pts) {
    return pts && pts->cloud.count() ? pts->cloud.rgb.data() : nullptr;
}
const int32_t *da3_points_view(const da3_points *pts) {
    return pts && pts->cloud.count() ? pts->cloud.view.data() : nullptr;
}
const int32_t *da3_points_pixel(const da3_points *pts) {
    return pts && pts->cloud.count() ? pts->cloud.pixel.data() : nullptr;
}
double da3_points_conf_thresh(const da3_points *pts) { return pts ? pts->cloud.conf_thresh : 0.0; }

da3_glb_params da3_glb_default_params(void) {
    da3_glb_params p;
    p.show_cameras = 1;
    p.camera_size = 0.03;
    return p;
}

da3_status da3_export_glb(const char *path, const float *xyz, const uint8_t *rgb, int64_t n_points,
                          const float *extrinsics, int ext_rows, const float *intrinsics, int n_views, int height,
                          int width, const da3_glb_params *params, double A_out[16]) {
    return da3::guarded([&] {
        if (!path || !*path) fail(DA3_ERR_INVALID_ARGUMENT, "path must not be empty");
        if (n_points < 0) fail(DA3_ERR_INVALID_ARGUMENT, "n_points must not be negative");
        if (n_points > 0 && !xyz) fail(DA3_ERR_INVALID_ARGUMENT, "xyz must not be NULL");
        const da3_glb_params p = params ? *params : da3_glb_default_params();
        if (!(p.camera_size >= 0) || !std::isfinite(p.camera_size))
            fail(DA3_ERR_INVALID_ARGUMENT, "camera_size must be a finite number >= 0");
        const auto cams = load_cameras(extrinsics, ext_rows, intrinsics, n_views, height, width);
        da3::write_glb(path, xyz, rgb, n_points, cams, height, width, p.show_cameras != 0, p.camera_size, A_out);
    });
}

da3_colmap_params da3_colmap_default_params(void) {
    da3_colmap_params p;
    p.binary = 1;
    return p;
}

da3_status da3_export_colmap(const char *directory, const float *xyz, const uint8_t *rgb, const int32_t *view,
                             const int32_t *pixel, int64_t n_points, const float *extrinsics, int ext_rows,
                             const float *intrinsics, int n_views, int height, int width,
                             const int32_t *original_sizes, const char *const *image_names,
                             const da3_colmap_params *params) {
    return da3::guarded([&] {
        if (!directory || !*directory) fail(DA3_ERR_INVALID_ARGUMENT, "directory must not be empty");
        if (n_points < 0) fail(DA3_ERR_INVALID_ARGUMENT, "n_points must not be negative");
        if (n_points > 0 && (!xyz || !view || !pixel))
            fail(DA3_ERR_INVALID_ARGUMENT, "xyz, view and pixel must not be NULL");
        if (!original_sizes || !image_names) fail(DA3_ERR_INVALID_ARGUMENT, "original_sizes and image_names must not be NULL");
        const da3_colmap_params p = params ? *params : da3_colmap_default_params();
        const auto cams = load_cameras(extrinsics, ext_rows, intrinsics, n_views, height, width);
        std::vector<std::string> names;
        for (int i = 0; i < n_views; ++i) {
            if (!image_names[i]) fail(DA3_ERR_INVALID_ARGUMENT, "image_names[" + std::to_string(i) + "] is NULL");
            names.emplace_back(image_names[i]);
        }
        da3::write_colmap(directory, xyz, rgb, view, pixel, n_points, cams, height, width, original_sizes, names,
                          p.binary != 0);
    });
}

}  // extern "C"
