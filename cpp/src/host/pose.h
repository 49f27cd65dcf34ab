// Host-side pose maths around the camera modules (graph/camera.h): pose encoding <->
// extrinsics/intrinsics, input-pose normalization, Umeyama Sim(3) alignment of the prediction
// back to the input poses. Double precision internally.
//
// ref: depth_anything_3/utils/transform.py, utils/geometry.py, utils/pose_align.py, api.py
//      (_normalize_extrinsics, _align_to_input_extrinsics_intrinsics)
//
// Conventions: extrinsics are world-to-camera [R | t] 3x4 row-major (OpenCV axes); c2w is the
// inverse. Pose encoding (9 floats) = [t of c2w (3), quaternion of c2w rotation xyzw (4),
// fov_h, fov_w (radians)]. Intrinsics 3x3 row-major in pixels at the processed resolution H x W.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace da3 {

// ref: transform.py pose_encoding_to_extri_intri + geometry.affine_inverse.
// pose_enc [n, 9] -> extrinsics [n, 3, 4] (world-to-camera) and intrinsics [n, 3, 3]
// (fx = (W/2)/max(tan(fov_w/2), 1e-6), fy likewise with H, cx = W/2, cy = H/2).
void pose_enc_to_extri_intri(const float *pose_enc, int n, int H, int W, float *extrinsics, float *intrinsics);

// ref: transform.py extri_intri_to_pose_encoding applied to c2w = inverse(extrinsics).
// extrinsics [n, 3, 4] world-to-camera, intrinsics [n, 3, 3] -> pose_enc [n, 9].
void extri_intri_to_pose_enc(const float *extrinsics, const float *intrinsics, int n, int H, int W, float *pose_enc);

// ref: api.py _normalize_extrinsics. extrinsics [n, 3, 4] -> normalized [n, 3, 4]: expressed
// relative to view 0 (view 0 becomes identity), translations divided by the median camera
// distance (torch.median: lower middle value), clamped to >= 0.1.
void normalize_extrinsics(const float *extrinsics, int n, float *normalized);

// normalize_extrinsics + extri_intri_to_pose_enc: the camera encoder input [n, 9].
// Throws DA3_ERR_INVALID_ARGUMENT for non-finite values or a non-positive focal length.
std::vector<float> prepare_encoder_pose_enc(const float *extrinsics, const float *intrinsics, int n, int H, int W);

// Sim(3): maps a point p of the "est" frame to s * R p + t in the "ref" frame.
struct sim3 {
    double R[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    double t[3] = {0, 0, 0};
    double s = 1.0;
};

// ref: pose_align.py align_poses_umeyama (evo PosePath3D.align, correct_scale=True):
// Umeyama on the camera centres of est -> ref. With ransac (the API uses it from 10 views on,
// random_state 42): RANSAC over subsets of max(3, (n+1)/2) views, 10 iterations, inlier
// threshold = median nearest-reference distance after a first full alignment, refit on the best
// inliers; subsets are drawn with a bit-exact copy of numpy's default_rng(seed).choice, so the
// result matches PyTorch's path. Where evo raises (fewer than 3 views or collinear centres) this
// does not: n == 1 -> s = 1 and the rotation/translation that map the est camera onto the ref
// camera; otherwise the Umeyama solution (its scale is well defined, the rotation about the
// line of centres is not).
// ext_ref, ext_est: [n, 3, 4] world-to-camera. ext_est_aligned (optional, [n, 3, 4]): ext_est
// after the Sim(3), as world-to-camera.
sim3 align_poses_umeyama(const float *ext_ref, const float *ext_est, int n, bool ransac, uint64_t seed,
                         float *ext_est_aligned);

// ref: api.py _align_to_input_extrinsics_intrinsics (called with the model's raw outputs when
// input poses were given). Aligns the input poses (est) to the predicted ones (ref); then
//   align_to_input_ext_scale: extrinsics = input extrinsics, depth /= s;
//   otherwise:                extrinsics = input extrinsics mapped into the prediction frame.
// extrinsics: [n, 3, 4] predicted, replaced in place; depth: depth_count floats, scaled in place.
// Returns the Sim(3). ransac when n >= 10 (seed 42).
sim3 align_to_input_extrinsics(float *extrinsics, const float *input_extrinsics, int n, float *depth,
                               size_t depth_count, bool align_to_input_ext_scale);

}  // namespace da3
