// C API arguments: the names of enum values (one table per enum, the only place they are
// spelled) and the checks of da3_infer's arguments (the only layer that checks them).
#include "api/api_args.h"
#include "models/model.h"

#include <cmath>
#include <cstring>
#include <iterator>
#include <string>

using da3::fail;

namespace {

template <size_t N>
const char *name_at(const char *const (&names)[N], int value) {
    return value >= 0 && value < (int)N ? names[value] : nullptr;
}

// indexed by the enum value (depth_anything.h)
const char *const k_resize_methods[] = {"upper_bound_resize", "lower_bound_resize"};
const char *const k_ref_view_strategies[] = {"saddle_balanced", "first", "middle", "saddle_sim_range"};
const char *const k_backend_kinds[] = {"auto", "cpu", "gpu"};
const char *const k_precisions[] = {"auto", "f32", "bf16"};

static_assert(std::size(k_resize_methods) == DA3_RESIZE_LOWER_BOUND + 1, "one name per da3_resize_method");
static_assert(std::size(k_ref_view_strategies) == DA3_REF_SADDLE_SIM_RANGE + 1, "one name per da3_ref_view_strategy");
static_assert(std::size(k_backend_kinds) == DA3_BACKEND_GPU + 1, "one name per da3_backend_kind");
static_assert(std::size(k_precisions) == DA3_PRECISION_BF16 + 1, "one name per da3_precision");

}  // namespace

extern "C" {

const char *da3_resize_method_name(int value) { return name_at(k_resize_methods, value); }
const char *da3_ref_view_strategy_name(int value) { return name_at(k_ref_view_strategies, value); }
const char *da3_backend_kind_name(int value) { return name_at(k_backend_kinds, value); }
const char *da3_precision_name(int value) { return name_at(k_precisions, value); }

}  // extern "C"

namespace da3 {

void check_view_count(int n_views) {
    if (n_views <= 0 || n_views > DA3_MAX_VIEWS) {
        fail(DA3_ERR_INVALID_ARGUMENT, std::to_string(n_views) + " views: n_views must be in [1, " + std::to_string(DA3_MAX_VIEWS) + "]");
    }
}

// Enum fields of da3_infer_params (resize_method is checked by the preprocessing).
void check_infer_params(const da3_infer_params &p) {
    // read as int: a C caller can store any value in the enum field, and loading an
    // out-of-range enum value is undefined behaviour (UBSan -fsanitize=enum)
    static_assert(sizeof(p.ref_view) == sizeof(int), "da3_ref_view_strategy is int-sized");
    int ref_view = 0;
    std::memcpy(&ref_view, &p.ref_view, sizeof ref_view);
    if (!da3_ref_view_strategy_name(ref_view)) {
        std::string names;
        for (int v = 0; const char *name = da3_ref_view_strategy_name(v); ++v) names += (v ? ", '" : "'") + std::string(name) + "'";
        fail(DA3_ERR_INVALID_ARGUMENT, "ref_view_strategy must be one of " + names + ", got " + std::to_string(ref_view));
    }
}

// The input cameras (the only place they are checked; the binding checks buffer shapes only).
// Intrinsics alone serve models without a camera decoder (metric scaling, the cameras of point
// clouds); extrinsics need intrinsics (the camera encoder takes both).
void check_poses(const da3_context *ctx, const float *ext, int ext_rows, const float *intr, int n) {
    if (ext && !intr) fail(DA3_ERR_INVALID_ARGUMENT, "extrinsics need intrinsics (give both, or intrinsics alone)");
    if (!intr) return;
    if (!ext && ctx->model.has_cam_dec) {
        fail(DA3_ERR_INVALID_ARGUMENT, "intrinsics alone are for models without a camera decoder (mono/metric: metric "
                                       "scaling, point clouds); this model predicts its cameras: give extrinsics too "
                                       "to condition it on known poses, or neither");
    }
    if (ext && ext_rows != 3 && ext_rows != 4) fail(DA3_ERR_INVALID_ARGUMENT, "ext_rows must be 3 or 4");
    for (size_t i = 0; ext && i < (size_t)n * ext_rows * 4; ++i)
        if (!std::isfinite(ext[i])) fail(DA3_ERR_INVALID_ARGUMENT, "extrinsics: contains NaN or infinite values");
    for (size_t i = 0; i < (size_t)n * 9; ++i)
        if (!std::isfinite(intr[i])) fail(DA3_ERR_INVALID_ARGUMENT, "intrinsics: contains NaN or infinite values");
    for (int v = 0; v < n; ++v) {
        const float *k = intr + (size_t)v * 9;
        if (!(k[0] > 0) || !(k[4] > 0))
            fail(DA3_ERR_INVALID_ARGUMENT, "intrinsics: focal lengths fx = K[0, 0] and fy = K[1, 1] must be > 0");
    }
    for (int v = 0; ext && v < n; ++v) {
        const float *e = ext + (size_t)v * ext_rows * 4;
        static const double last_row[4] = {0.0, 0.0, 0.0, 1.0};
        for (int j = 0; ext_rows == 4 && j < 4; ++j) {
            if (std::fabs(e[12 + j] - last_row[j]) > 1e-6 + 1e-5 * last_row[j])  // as numpy.allclose(atol=1e-6)
                fail(DA3_ERR_INVALID_ARGUMENT, "extrinsics: the last row of each 4x4 matrix must be [0, 0, 0, 1]");
        }
        const double r[9] = {e[0], e[1], e[2], e[4], e[5], e[6], e[8], e[9], e[10]};
        const double det = r[0] * (r[4] * r[8] - r[5] * r[7]) - r[1] * (r[3] * r[8] - r[5] * r[6]) +
                           r[2] * (r[3] * r[7] - r[4] * r[6]);
        if (std::fabs(det) < 1e-9) {
            fail(DA3_ERR_INVALID_ARGUMENT, "extrinsics: the 3x3 rotation part of view " + std::to_string(v) +
                                               " is singular (not invertible), so it is not a world-to-camera transform");
        }
    }
}

}  // namespace da3
