// Ray-based camera estimation; the algorithm and its differences from upstream are described in
// ray_pose.h. ref: depth_anything_3/utils/ray_utils.py, depth_anything_3/model/da3.py
#include "host/ray_pose.h"

#include "common.h"
#include "host/geometry.h"
#include "host/random.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace da3 {
namespace {

// ref: ray_utils.py get_params_for_ransac, camray_to_caminfo, compute_optimal_rotation_...
constexpr int kIters = 100;             // RANSAC hypotheses
constexpr int kSampleSize = 8;          // points per hypothesis
constexpr double kSampleRatio = 0.3;    // candidates: this fraction of the highest weights
constexpr double kReprojThreshold = 0.2;
constexpr double kZThreshold = 1e-4;
constexpr size_t kMaxInliers = 8000;    // refit subsample (max_inlier_num)

using geom::mat3;
using geom::det3;
using rng::mt19937_sampler;

// Right singular vector of the smallest singular value of A (m x 9, row-major, m >= 1):
// Householder QR to a 9x9 R (same right singular vectors), then one-sided Jacobi (Hestenes)
// on R. Returns false if A is zero or not finite.
bool null_vector9(std::vector<double> &a, size_t m, double out[9]) {
    constexpr size_t n = 9;
    double r[n * n] = {};
    const size_t steps = std::min<size_t>(m, n);
    for (size_t k = 0; k < steps; ++k) {
        double norm = 0;
        for (size_t i = k; i < m; ++i) norm += a[i * n + k] * a[i * n + k];
        norm = std::sqrt(norm);
        if (!std::isfinite(norm)) return false;
        if (norm == 0) continue;
        const double alpha = a[k * n + k] > 0 ? -norm : norm;
        a[k * n + k] -= alpha;  // v = x - alpha e1, stored in column k
        double vnorm2 = 0;
        for (size_t i = k; i < m; ++i) vnorm2 += a[i * n + k] * a[i * n + k];
        for (size_t j = k + 1; j < n; ++j) {
            double dot = 0;
            for (size_t i = k; i < m; ++i) dot += a[i * n + k] * a[i * n + j];
            const double f = 2 * dot / vnorm2;
            for (size_t i = k; i < m; ++i) a[i * n + j] -= f * a[i * n + k];
        }
        a[k * n + k] = alpha;
    }
    for (size_t i = 0; i < steps; ++i)
        for (size_t j = i; j < n; ++j) r[i * n + j] = a[i * n + j];

    double v[n * n] = {};
    for (size_t i = 0; i < n; ++i) v[i * n + i] = 1;
    for (int sweep = 0; sweep < 60; ++sweep) {
        bool rotated = false;
        for (size_t p = 0; p + 1 < n; ++p) {
            for (size_t q = p + 1; q < n; ++q) {
                double al = 0, be = 0, ga = 0;
                for (size_t i = 0; i < n; ++i) {
                    al += r[i * n + p] * r[i * n + p];
                    be += r[i * n + q] * r[i * n + q];
                    ga += r[i * n + p] * r[i * n + q];
                }
                if (al == 0 || be == 0 || std::fabs(ga) <= 1e-15 * std::sqrt(al * be)) continue;
                rotated = true;
                const double zeta = (be - al) / (2 * ga);
                const double t = (zeta >= 0 ? 1.0 : -1.0) / (std::fabs(zeta) + std::sqrt(1 + zeta * zeta));
                const double c = 1 / std::sqrt(1 + t * t), s = c * t;
                for (size_t i = 0; i < n; ++i) {
                    const double rp = r[i * n + p], rq = r[i * n + q];
                    r[i * n + p] = c * rp - s * rq;
                    r[i * n + q] = s * rp + c * rq;
                    const double vp = v[i * n + p], vq = v[i * n + q];
                    v[i * n + p] = c * vp - s * vq;
                    v[i * n + q] = s * vp + c * vq;
                }
            }
        }
        if (!rotated) break;
    }
    size_t best = n;
    double best_norm = std::numeric_limits<double>::infinity(), max_norm = 0;
    for (size_t j = 0; j < n; ++j) {
        double s = 0;
        for (size_t i = 0; i < n; ++i) s += r[i * n + j] * r[i * n + j];
        if (!std::isfinite(s)) return false;
        max_norm = std::max(max_norm, s);
        if (s < best_norm) best_norm = s, best = j;
    }
    if (best == n || max_norm == 0) return false;
    for (size_t i = 0; i < n; ++i) out[i] = v[i * n + best];
    return true;
}

// Weighted DLT homography src -> dst over the listed points, scaled to H[2][2] = 1.
// ref: ray_utils.py find_homography_least_squares_weighted_torch
bool fit_homography(const std::vector<double> &src, const std::vector<double> &dst,
                    const std::vector<double> &weight, const size_t *idx, size_t count,
                    std::vector<double> &scratch, mat3 &h) {
    scratch.assign(2 * count * 9, 0.0);
    for (size_t k = 0; k < count; ++k) {
        const size_t p = idx[k];
        const double x = src[2 * p], y = src[2 * p + 1], u = dst[2 * p], v = dst[2 * p + 1];
        const double w = std::sqrt(weight[p]);
        double *r1 = &scratch[(2 * k) * 9], *r2 = r1 + 9;
        r1[0] = -x * w; r1[1] = -y * w; r1[2] = -w;
        r1[6] = x * u * w; r1[7] = y * u * w; r1[8] = u * w;
        r2[3] = -x * w; r2[4] = -y * w; r2[5] = -w;
        r2[6] = x * v * w; r2[7] = y * v * w; r2[8] = v * w;
    }
    double nv[9];
    if (!null_vector9(scratch, 2 * count, nv) || nv[8] == 0) return false;
    for (size_t i = 0; i < 9; ++i) h[i] = nv[i] / nv[8];
    for (double e : h)
        if (!std::isfinite(e)) return false;
    return true;
}

bool is_inlier(const mat3 &h, double x, double y, double u, double v) {
    const double pz = h[6] * x + h[7] * y + h[8];
    const double px = (h[0] * x + h[1] * y + h[2]) / pz - u;
    const double py = (h[3] * x + h[4] * y + h[5]) / pz - v;
    return std::sqrt(px * px + py * py) < kReprojThreshold;  // false for NaN
}

// A = Q L with Q orthogonal and L lower triangular with a positive diagonal (unique for a
// nonsingular A, so equal to upstream's sign-fixed QR of A P). Returns false if A is singular.
// ref: ray_utils.py ql_decomposition
bool ql_decompose(const mat3 &a, mat3 &q, mat3 &l) {
    // QR of M = A P (columns of A reversed) by Gram-Schmidt with one re-orthogonalization.
    double m[3][3], qt[3][3], rt[3][3] = {};  // m[j], qt[j]: column j
    for (size_t j = 0; j < 3; ++j)
        for (size_t i = 0; i < 3; ++i) m[j][i] = a[i * 3 + (2 - j)];
    double scale = 0;
    for (double e : a) scale = std::max(scale, std::fabs(e));
    for (int j = 0; j < 3; ++j) {
        double col[3] = {m[j][0], m[j][1], m[j][2]};
        for (int pass = 0; pass < 2; ++pass) {
            for (int k = 0; k < j; ++k) {
                const double d = qt[k][0] * col[0] + qt[k][1] * col[1] + qt[k][2] * col[2];
                rt[k][j] += d;
                for (int i = 0; i < 3; ++i) col[i] -= d * qt[k][i];
            }
        }
        const double norm = std::sqrt(col[0] * col[0] + col[1] * col[1] + col[2] * col[2]);
        if (!(norm > 1e-12 * scale)) return false;
        rt[j][j] = norm;
        for (int i = 0; i < 3; ++i) qt[j][i] = col[i] / norm;
    }
    for (size_t i = 0; i < 3; ++i)
        for (size_t j = 0; j < 3; ++j) {
            q[i * 3 + j] = qt[2 - j][i];           // Q = Qt P
            l[i * 3 + j] = rt[2 - i][2 - j];       // L = P Rt P
        }
    return true;
}

[[noreturn]] void degenerate(int view, const std::string &why) {
    fail(DA3_ERR_INVALID_ARGUMENT, "ray_pose: view " + std::to_string(view) + ": " + why);
}

}  // namespace

void ray_pose(const float *ray, const float *ray_conf, int n, int h, int w, int H, int W,
              uint64_t seed, float *extrinsics, float *intrinsics) {
    if (!ray || !ray_conf || !extrinsics || !intrinsics)
        fail(DA3_ERR_INVALID_ARGUMENT, "ray_pose: null pointer");
    if (n < 1 || h < 1 || w < 1 || H < 1 || W < 1)
        fail(DA3_ERR_INVALID_ARGUMENT, "ray_pose: sizes must be positive (n=" + std::to_string(n) +
                                           ", h=" + std::to_string(h) + ", w=" + std::to_string(w) +
                                           ", H=" + std::to_string(H) + ", W=" + std::to_string(W) + ")");
    const size_t np = static_cast<size_t>(h) * static_cast<size_t>(w);
    if (np < static_cast<size_t>(kSampleSize))
        fail(DA3_ERR_INVALID_ARGUMENT, "ray_pose: the ray map needs at least 8 pixels");

    // Candidates per view and the shared sample index sets. ref: get_params_for_ransac
    const size_t n_cand = std::max<size_t>(kSampleSize, static_cast<size_t>(static_cast<double>(np) * kSampleRatio));
    mt19937_sampler rng(seed);
    std::vector<size_t> perm(n_cand);
    std::iota(perm.begin(), perm.end(), size_t{0});
    std::vector<std::array<size_t, kSampleSize>> samples(kIters);
    for (auto &s : samples) {
        rng.choose(perm, kSampleSize);
        std::copy(perm.begin(), perm.begin() + kSampleSize, s.begin());
    }

    // Source points: pixel centres in NDC (unproject_depth with identity K at image size 2).
    std::vector<double> src(2 * np), dst(2 * np), weight(np);
    for (int i = 0; i < h; ++i)
        for (int j = 0; j < w; ++j) {
            const size_t p = static_cast<size_t>(i) * static_cast<size_t>(w) + static_cast<size_t>(j);
            src[2 * p] = -1.0 + (2.0 * j + 1.0) / w;
            src[2 * p + 1] = -1.0 + (2.0 * i + 1.0) / h;
        }

    std::vector<size_t> order(np), cand(kSampleSize), inliers;
    std::vector<double> scratch;
    std::vector<char> best_mask(np), mask(np);
    for (int view = 0; view < n; ++view) {
        const float *r = ray + static_cast<size_t>(view) * np * 6;
        const float *c = ray_conf + static_cast<size_t>(view) * np;
        double wsum = 0, t[3] = {0, 0, 0};
        for (size_t p = 0; p < np; ++p) {
            const float *rp = r + 6 * p;
            bool finite = std::isfinite(c[p]) && c[p] >= 0;
            for (int k = 0; k < 6; ++k) finite = finite && std::isfinite(rp[k]);
            const bool z_ok = std::fabs(rp[2]) > kZThreshold;
            dst[2 * p] = z_ok ? double(rp[0]) / rp[2] : rp[0];
            dst[2 * p + 1] = z_ok ? double(rp[1]) / rp[2] : rp[1];
            weight[p] = (finite && z_ok) ? double(c[p]) : 0.0;
            if (weight[p] > 0) {
                wsum += weight[p];
                for (int k = 0; k < 3; ++k) t[k] += weight[p] * rp[3 + k];
            }
        }
        if (!(wsum > 0) || !std::isfinite(wsum))
            degenerate(view, "no pixel with a finite positive confidence and a usable ray");

        // ref: ransac_find_homography_weighted_fast_batch
        std::iota(order.begin(), order.end(), size_t{0});
        std::stable_sort(order.begin(), order.end(),
                         [&](size_t a, size_t b) { return weight[a] > weight[b]; });
        double best_score = -1;
        mat3 hyp;
        for (const auto &s : samples) {
            for (size_t k = 0; k < s.size(); ++k) cand[k] = order[s[k]];
            double score = 0;
            if (fit_homography(src, dst, weight, cand.data(), kSampleSize, scratch, hyp)) {
                for (size_t p = 0; p < np; ++p) {
                    mask[p] = is_inlier(hyp, src[2 * p], src[2 * p + 1], dst[2 * p], dst[2 * p + 1]);
                    if (mask[p]) score += weight[p];
                }
            } else {
                std::fill(mask.begin(), mask.end(), 0);
            }
            if (score > best_score) best_score = score, best_mask.swap(mask);
        }
        inliers.clear();
        for (size_t p = 0; p < np; ++p)
            if (best_mask[p]) inliers.push_back(p);
        if (inliers.size() < 4) degenerate(view, "fewer than 4 RANSAC inliers");
        std::stable_sort(inliers.begin(), inliers.end(),
                         [&](size_t a, size_t b) { return weight[a] > weight[b]; });
        if (inliers.size() > kMaxInliers) {  // top 95% by weight, then kMaxInliers at random
            inliers.resize(std::max(static_cast<size_t>(static_cast<double>(inliers.size()) * 0.95), kMaxInliers));
            rng.choose(inliers, kMaxInliers);
            inliers.resize(kMaxInliers);
        }
        mat3 hom;
        if (!fit_homography(src, dst, weight, inliers.data(), inliers.size(), scratch, hom))
            degenerate(view, "homography refit failed");
        if (det3(hom) < 0)
            for (double &e : hom) e = -e;

        // ref: compute_optimal_rotation_intrinsics_batch, camray_to_caminfo
        mat3 rot, low;
        if (!ql_decompose(hom, rot, low)) degenerate(view, "singular homography");
        const double fx = low[8] / low[0], fy = low[8] / low[4];  // 1 / (L / L22)[i][i]
        const double px = low[6] / low[8] + 1.0, py = low[7] / low[8] + 1.0;
        for (double &e : t) e /= wsum;

        // c2w = [rot | t] -> w2c = [rot^T | -rot^T t]. ref: da3.py _process_ray_pose_estimation
        float *e = extrinsics + static_cast<size_t>(view) * 12;
        for (size_t i = 0; i < 3; ++i) {
            double ti = 0;
            for (size_t j = 0; j < 3; ++j) {
                e[i * 4 + j] = static_cast<float>(rot[j * 3 + i]);
                ti -= rot[j * 3 + i] * t[j];
            }
            e[i * 4 + 3] = static_cast<float>(ti);
        }
        float *k = intrinsics + static_cast<size_t>(view) * 9;
        const double kv[9] = {fx / 2 * W, 0, px * W * 0.5, 0, fy / 2 * H, py * H * 0.5, 0, 0, 1};
        for (int i = 0; i < 9; ++i) k[i] = static_cast<float>(kv[i]);
        for (int i = 0; i < 12; ++i)
            if (!std::isfinite(e[i])) degenerate(view, "non-finite camera");
        for (int i = 0; i < 9; ++i)
            if (!std::isfinite(k[i])) degenerate(view, "non-finite camera");
    }
}

}  // namespace da3
