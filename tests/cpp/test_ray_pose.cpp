// Ray-based camera estimation (cpp/src/host/ray_pose.cpp, `use_ray_pose=True`) on synthetic ray
// maps of known cameras: exact recovery (centred principal point), pixels without usable rays
// ignored, robustness to noise and outliers, determinism for a seed, errors on degenerate input.
// The comparisons with the official get_extrinsic_from_camray stay in tests/test_ray_pose.py.
// Exit code 0 on success; one line per check.
#include "common.h"
#include "host/ray_pose.h"
#include "test_util.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace {

using Mat3 = std::array<double, 9>;

Mat3 mul(const Mat3 &a, const Mat3 &b) {
    Mat3 c{};
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
            for (int k = 0; k < 3; ++k) c[i * 3 + j] += a[i * 3 + k] * b[k * 3 + j];
    return c;
}

Mat3 rot(char axis, double deg) {
    const double a = deg * M_PI / 180.0, c = std::cos(a), s = std::sin(a);
    if (axis == 'x') return {1, 0, 0, 0, c, -s, 0, s, c};
    if (axis == 'y') return {c, 0, s, 0, 1, 0, -s, 0, c};
    return {c, -s, 0, s, c, 0, 0, 0, 1};
}

// Exact ray maps of n random cameras: ray [n,h,w,6] (direction R K^-1 p, origin = camera
// centre) for the image point p = ((j + .5) W / w, (i + .5) H / h); ext [n,3,4] world-to-camera,
// K [n,3,3] pixels at H x W (centred principal point).
struct Scene {
    int n, h, w, H, W;
    std::vector<float> ray;
    std::vector<double> ext, K;
};

Scene synthetic_rays(int n, int h, int w, int H, int W, std::mt19937_64 &rng) {
    auto U = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
    Scene s{n, h, w, H, W, std::vector<float>((size_t)n * h * w * 6), std::vector<double>(n * 12),
            std::vector<double>(n * 9)};
    for (int v = 0; v < n; ++v) {
        const Mat3 r = mul(mul(rot('x', U(-30, 30)), rot('y', U(-40, 40))), rot('z', U(-20, 20)));
        const double c[3] = {U(-2, 2), U(-2, 2), U(-2, 2)};
        const double fx = U(0.6, 1.5) * W, fy = fx * U(0.9, 1.1), cx = W / 2.0, cy = H / 2.0;
        for (int i = 0; i < h; ++i)
            for (int j = 0; j < w; ++j) {
                const double k[3] = {((j + 0.5) * W / w - cx) / fx, ((i + 0.5) * H / h - cy) / fy, 1.0};
                float *p = &s.ray[(((size_t)v * h + i) * w + j) * 6];
                for (int a = 0; a < 3; ++a) {
                    p[a] = (float)(r[a * 3] * k[0] + r[a * 3 + 1] * k[1] + r[a * 3 + 2] * k[2]);
                    p[3 + a] = (float)c[a];
                }
            }
        double *e = &s.ext[v * 12];
        for (int a = 0; a < 3; ++a) {  // [R^T | -R^T c]
            for (int b = 0; b < 3; ++b) e[a * 4 + b] = r[b * 3 + a];
            e[a * 4 + 3] = -(r[0 * 3 + a] * c[0] + r[1 * 3 + a] * c[1] + r[2 * 3 + a] * c[2]);
        }
        const double K[9] = {fx, 0, cx, 0, fy, cy, 0, 0, 1};
        std::copy(K, K + 9, &s.K[v * 9]);
    }
    return s;
}

// Rays with relative Gaussian noise sigma on the directions, absolute on the origins, and a
// fraction `outliers` of pixels whose direction is replaced by a random one.
void add_noise(Scene &s, std::mt19937_64 &rng, double sigma, double outliers) {
    std::normal_distribution<double> N(0.0, 1.0);
    std::uniform_real_distribution<double> U(0.0, 1.0);
    for (size_t p = 0; p < s.ray.size() / 6; ++p) {
        float *r = &s.ray[p * 6];
        const double scale = std::sqrt((double)r[0] * r[0] + (double)r[1] * r[1] + (double)r[2] * r[2]);
        for (int a = 0; a < 3; ++a) r[a] = (float)(r[a] + N(rng) * sigma * scale);
        for (int a = 3; a < 6; ++a) r[a] = (float)(r[a] + N(rng) * sigma);
        if (U(rng) < outliers)
            for (int a = 0; a < 3; ++a) r[a] = (float)N(rng);
    }
}

std::vector<float> confidences(const Scene &s, std::mt19937_64 &rng, bool lognormal) {
    std::vector<float> conf((size_t)s.n * s.h * s.w);
    std::normal_distribution<double> N(0.0, 1.0);
    std::uniform_real_distribution<double> U(0.0, 1.0);
    for (float &c : conf) c = (float)(1.0 + (lognormal ? std::exp(N(rng)) : U(rng)));
    return conf;
}

struct Pose {
    std::vector<float> ext, K;
};

Pose run(const Scene &s, const std::vector<float> &conf, uint64_t seed = da3::ray_pose_default_seed) {
    Pose p{std::vector<float>(s.n * 12), std::vector<float>(s.n * 9)};
    da3::ray_pose(s.ray.data(), conf.data(), s.n, s.h, s.w, s.H, s.W, seed, p.ext.data(), p.K.data());
    return p;
}

// Largest rotation angle (degrees) between estimated and true extrinsics, from the Frobenius
// distance (2 sqrt(2) sin(angle / 2)): accurate for small angles, unlike arccos.
double max_rotation_deg(const Pose &p, const Scene &s) {
    double worst = 0;
    for (int v = 0; v < s.n; ++v) {
        double d2 = 0;
        for (int a = 0; a < 3; ++a)
            for (int b = 0; b < 3; ++b) d2 += std::pow(p.ext[v * 12 + a * 4 + b] - s.ext[v * 12 + a * 4 + b], 2);
        worst = std::max(worst, 2 * std::asin(std::min(1.0, std::sqrt(d2) / (2 * std::sqrt(2.0)))) * 180 / M_PI);
    }
    return worst;
}

// Largest |camera centre - true centre|, the centre being -R^T t.
double max_centre_err(const Pose &p, const Scene &s) {
    double worst = 0;
    for (int v = 0; v < s.n; ++v)
        for (int a = 0; a < 3; ++a) {
            double c = 0;
            for (int b = 0; b < 3; ++b) c -= (double)p.ext[v * 12 + b * 4 + a] * p.ext[v * 12 + b * 4 + 3];
            worst = std::max(worst, std::fabs(c - s.ray[(size_t)v * s.h * s.w * 6 + 3 + a]));
        }
    return worst;
}

double max_abs_err(const std::vector<float> &a, const std::vector<double> &b) {
    double e = 0;
    for (size_t i = 0; i < a.size(); ++i) e = std::max(e, std::fabs(a[i] - b[i]));
    return e;
}

// Largest |a - b| - rtol |b| (<= atol passes), as numpy's assert_allclose.
double allclose_excess(const std::vector<float> &a, const std::vector<double> &b, double rtol) {
    double e = -std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < a.size(); ++i) e = std::max(e, std::fabs(a[i] - b[i]) - rtol * std::fabs(b[i]));
    return e;
}

void test_exact_recovery(int h, int w, int H, int W) {
    std::mt19937_64 rng(h);
    const Scene s = synthetic_rays(3, h, w, H, W, rng);
    const Pose p = run(s, confidences(s, rng, false));
    const std::string at = " (" + std::to_string(h) + "x" + std::to_string(w) + " rays, " + std::to_string(H) +
                           "x" + std::to_string(W) + ")";
    const double rot_err = max_rotation_deg(p, s), ext_err = max_abs_err(p.ext, s.ext);
    const double k_err = allclose_excess(p.K, s.K, 1e-5), c_err = max_centre_err(p, s);
    check(rot_err < 1e-4, ("exact rays: rotation (deg)" + at).c_str(), rot_err);
    check(ext_err <= 2e-5, ("exact rays: extrinsics" + at).c_str(), ext_err);
    check(k_err <= 1e-3, ("exact rays: intrinsics (px over rtol 1e-5)" + at).c_str(), k_err);
    check(c_err <= 2e-5, ("exact rays: camera centres" + at).c_str(), c_err);
    double det_err = 0;
    for (int v = 0; v < s.n; ++v) {
        const float *e = &p.ext[v * 12];
        const double det = e[0] * (e[5] * e[10] - e[6] * e[9]) - e[1] * (e[4] * e[10] - e[6] * e[8]) +
                           e[2] * (e[4] * e[9] - e[5] * e[8]);
        det_err = std::max(det_err, std::fabs(det - 1));
    }
    check(det_err <= 1e-5, ("exact rays: proper rotations, |det - 1|" + at).c_str(), det_err);
}

void test_unusable_pixels_ignored() {
    std::mt19937_64 rng(5);
    Scene s = synthetic_rays(2, 40, 72, 280, 504, rng);
    std::vector<float> conf(s.n * s.h * s.w, 2.0f);
    auto at = [&](int v, int i, int j) { return ((size_t)v * s.h + i) * s.w + j; };
    for (int i = 0; i < 5; ++i)
        for (int j = 0; j < s.w; ++j)
            for (int a = 0; a < 6; ++a) s.ray[at(0, i, j) * 6 + a] = NAN;  // non-finite rays
    for (int i = 0; i < s.h; ++i)
        for (int j = 0; j < 4; ++j) conf[at(1, i, j)] = INFINITY;  // non-finite confidences
    for (int i = 10; i < 12; ++i)
        for (int j = 10; j < 12; ++j) {
            s.ray[at(1, i, j) * 6 + 2] = 0;  // |dz| <= 1e-4: upstream's z mask ...
            for (int a = 3; a < 6; ++a) s.ray[at(1, i, j) * 6 + a] = 1e6f;  // ... whose origins must not count
        }
    const Pose p = run(s, conf);
    const double ext_err = max_abs_err(p.ext, s.ext), k_err = allclose_excess(p.K, s.K, 1e-4);
    check(ext_err <= 1e-4, "unusable pixels ignored: extrinsics", ext_err);
    check(k_err <= 0, "unusable pixels ignored: intrinsics (rtol 1e-4)", k_err);
}

void test_noise_and_outliers() {
    std::mt19937_64 rng(7);
    const Scene truth = synthetic_rays(3, 70, 126, 280, 504, rng);
    const std::vector<float> conf = confidences(truth, rng, true);
    Scene s = truth;
    add_noise(s, rng, 0.01, 0.1);
    const Pose p = run(s, conf);
    const double rot_err = max_rotation_deg(p, s), c_err = max_centre_err(p, truth);
    const double k_err = allclose_excess(p.K, s.K, 0.02);
    check(rot_err < 0.5, "1% noise, 10% outliers: rotation (deg)", rot_err);
    check(c_err < 0.02, "1% noise, 10% outliers: camera centres", c_err);
    check(k_err <= 2.0, "1% noise, 10% outliers: intrinsics (px over rtol 2%)", k_err);
}

void test_deterministic_for_a_seed() {
    std::mt19937_64 rng(3);
    Scene s = synthetic_rays(2, 60, 100, 280, 504, rng);
    add_noise(s, rng, 0.05, 0.3);
    const std::vector<float> conf = confidences(s, rng, true);
    const Pose a = run(s, conf, 11), b = run(s, conf, 11), c = run(s, conf, 12);
    check(a.ext == b.ext && a.K == b.K, "same seed, same cameras", 0);
    check(a.K != c.K, "another seed, another sample (intrinsics differ)", 0);
    bool finite = true;
    for (float x : c.ext) finite = finite && std::isfinite(x);
    for (float x : c.K) finite = finite && std::isfinite(x);
    check(finite, "another seed: finite cameras", 0);
}

// da3::error with DA3_ERR_INVALID_ARGUMENT from ray_pose on (ray, conf) with the sizes given.
bool rejects(const std::vector<float> &ray, const std::vector<float> &conf, int n, int h, int w, int H, int W) {
    std::vector<float> ext(std::max(n, 1) * 12), K(std::max(n, 1) * 9);
    try {
        da3::ray_pose(ray.data(), conf.data(), n, h, w, H, W, 0, ext.data(), K.data());
    } catch (const da3::error &e) {
        return e.status() == DA3_ERR_INVALID_ARGUMENT;
    }
    return false;
}

void test_degenerate_input_raises() {
    std::mt19937_64 rng(0);
    const Scene s = synthetic_rays(2, 10, 12, 280, 504, rng);
    const int n = s.n, h = s.h, w = s.w, px = n * h * w;
    const std::vector<float> ones(px, 1.0f);
    check(rejects(s.ray, std::vector<float>(px, NAN), n, h, w, 280, 504), "rejects: all confidences NaN", 0);
    check(rejects(s.ray, std::vector<float>(px, 0.0f), n, h, w, 280, 504), "rejects: all confidences zero", 0);
    std::vector<float> one_bad = s.ray;
    std::fill(one_bad.begin() + (size_t)h * w * 6, one_bad.end(), NAN);
    check(rejects(one_bad, ones, n, h, w, 280, 504), "rejects: one view without usable rays", 0);
    std::vector<float> flat = s.ray;
    for (int p = 0; p < px; ++p) flat[(size_t)p * 6 + 2] = 0;
    check(rejects(flat, ones, n, h, w, 280, 504), "rejects: all directions parallel to the image plane", 0);
    check(rejects(s.ray, ones, n, 2, 3, 280, 504), "rejects: fewer than 8 pixels", 0);
    check(rejects(s.ray, ones, 0, h, w, 280, 504), "rejects: zero views", 0);
    check(rejects(s.ray, ones, n, h, -1, 280, 504), "rejects: negative size", 0);
    check(rejects(s.ray, ones, n, h, w, 0, 504), "rejects: zero image height", 0);
}

}  // namespace

int main() {
    test_exact_recovery(20, 36, 280, 504);
    test_exact_recovery(160, 288, 280, 504);
    test_exact_recovery(36, 20, 504, 280);
    test_unusable_pixels_ignored();
    test_noise_and_outliers();
    test_deterministic_for_a_seed();
    test_degenerate_input_raises();
    if (g_failures) std::fprintf(stderr, "%d check(s) failed\n", g_failures);
    return g_failures ? 1 : 0;
}
