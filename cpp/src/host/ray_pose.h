// Ray-based camera estimation (DA3 `use_ray_pose=True`): cameras from the aux head's per-pixel
// ray map instead of the camera decoder. Host-side, standard library only.
//
// ref: depth_anything_3/utils/ray_utils.py (get_extrinsic_from_camray, camray_to_caminfo,
//      compute_optimal_rotation_intrinsics_batch, ransac_find_homography_weighted_fast_batch,
//      find_homography_least_squares_weighted_torch, ql_decomposition),
//      depth_anything_3/model/da3.py (_process_ray_pose_estimation).
//
// Algorithm, per view (N = h*w pixels of the ray map):
//  1. src_p = pixel centre in NDC, (-1 + (2j+1)/w, -1 + (2i+1)/h); dst_p = (dx/dz, dy/dz) of
//     the ray direction d = ray[..., 0:3]. Weight w_p = ray_conf, set to 0 where |dz| <= 1e-4.
//  2. RANSAC homography src -> dst: candidates = the n_s = max(8, int(0.3 N)) highest weights;
//     100 hypotheses, each a weighted DLT (rows scaled by sqrt(w)) on 8 distinct candidates;
//     score = sum of w over points with reprojection error < 0.2 (NDC units); the first best
//     hypothesis wins. Refit with a weighted DLT on its inliers (if more than 8000: the top
//     max(int(0.95 k), 8000) by weight, then 8000 of them at random). H is scaled so
//     H[2][2] = 1, then negated if det(H) < 0.
//  3. H = R L (QL decomposition, positive diagonal; R is the camera-to-world rotation);
//     L /= L[2][2]; focal (NDC, image size 2) = 1 / diag(L)[0:2], principal point (NDC in
//     [0, 2]) = L[2][0:2] + 1. As upstream, this is exact only for a centred principal point.
//  4. Camera centre T = sum(w_p * ray[p, 3:6]) / sum(w_p). c2w = [R | T] -> extrinsics =
//     w2c = [R^T | -R^T T]. Intrinsics at H x W pixels: fx = f_x / 2 * W, fy = f_y / 2 * H,
//     cx = pp_x * W / 2, cy = pp_y * H / 2.
//
// Differences from upstream (all in degenerate corners or in the random stream):
//  - randomness: one std::mt19937_64(seed) stream per call gives, in order, the 100 sample
//    index sets (each: a partial Fisher-Yates of the first 8 entries of a persistent
//    permutation of [0, n_s), shared by all views as upstream), then per view the refit
//    subsample (partial Fisher-Yates of 8000 of the kept inliers); integers in [0, m) by
//    rejection (x >= 2^64 mod m, then x mod m). Deterministic and portable; upstream uses
//    unseeded torch.randperm. Ties in the weight ranking are broken by pixel index, as torch's
//    stable sort (its default argsort is unstable).
//  - arithmetic in float64 (upstream float32); the DLT null vector comes from a Householder QR
//    of the design matrix followed by a one-sided Jacobi SVD of R (upstream torch.linalg.svd).
//  - a pixel with a non-finite ray channel or a non-finite or negative confidence gets weight 0
//    (upstream would propagate NaN); a hypothesis whose DLT fails counts as score 0.
//  - degenerate input throws da3::error (DA3_ERR_INVALID_ARGUMENT) where upstream raises or
//    returns NaN: fewer than 8 pixels, no pixel with positive weight, fewer than 4 inliers for
//    the refit, or a singular homography.
#pragma once

#include <cstdint>

namespace da3 {

// Seed the engine passes (tests/test_ray_pose.py replays this stream to compare with upstream).
constexpr uint64_t ray_pose_default_seed = 0;

// ray: [n, h, w, 6] float32 (direction xyz, origin xyz; world frame), ray_conf: [n, h, w]
// (positive). H, W: processed image size in pixels (the intrinsics' frame).
// Writes extrinsics [n, 3, 4] (world-to-camera, OpenCV) and intrinsics [n, 3, 3] (pixels).
// Throws da3::error on bad sizes or degenerate input (see above). Deterministic for a seed.
void ray_pose(const float *ray, const float *ray_conf, int n, int h, int w, int H, int W,
              uint64_t seed, float *extrinsics, float *intrinsics);

}  // namespace da3
