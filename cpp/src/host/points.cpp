// Depth -> world-frame points with colours, confidence / sky filtering and deterministic
// subsampling. ref: official utils/export/glb.py (get_conf_thresh,
// _depths_to_world_points_with_colors, _filter_and_downsample).
#include "host/points.h"

#include "host/exports.h"
#include "host/geometry.h"
#include "host/random.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace da3 {

namespace {
using geom::invert3;

// numpy _get_indexes + gamma for method 'linear': virtual index (n - 1) * q.
void linear_index(size_t n, double pct, size_t &lo, size_t &hi, double &gamma) {
    const double vi = (double)(n - 1) * (pct / 100.0);
    if (vi >= (double)(n - 1)) {
        lo = hi = n - 1;
        gamma = 0;
    } else if (vi < 0) {
        lo = hi = 0;
        gamma = 0;
    } else {
        lo = (size_t)std::floor(vi);
        hi = lo + 1;
        gamma = vi - (double)lo;
    }
}

template <typename T>
void two_order_stats(T *d, size_t n, size_t lo, size_t hi, T &a, T &b) {
    std::nth_element(d, d + lo, d + n);
    a = d[lo];
    b = hi == lo ? a : *std::min_element(d + lo + 1, d + n);
}

}  // namespace

// numpy's linear-interpolation percentile in T arithmetic: _lerp(a, b, t) = a + (b-a)*t, or
// b - (b-a)*(1-t) when t >= 0.5, with the weight rounded to T first (NEP 50 for float32).
// volatile keeps the compiler from fusing the product and sum into an FMA.
template <typename T>
static T percentile_linear(T *d, size_t n, double pct) {
    size_t lo, hi;
    double gamma;
    linear_index(n, pct, lo, hi, gamma);
    T a, b;
    two_order_stats(d, n, lo, hi, a, b);
    const T diff = b - a;
    if (gamma >= 0.5) {
        volatile T prod = diff * (T)(1.0 - gamma);
        return b - prod;
    }
    volatile T prod = diff * (T)gamma;
    return a + prod;
}

float percentile_f32(float *d, size_t n, double pct) { return percentile_linear(d, n, pct); }
double percentile_f64(double *d, size_t n, double pct) { return percentile_linear(d, n, pct); }

camera load_camera(const float *extrinsics, int ext_rows, const float *intrinsics, int i) {
    camera c;
    const std::string vi = "[" + std::to_string(i) + "]";
    const float *k = intrinsics + (size_t)i * 9;
    for (int j = 0; j < 9; ++j) {
        if (!std::isfinite(k[j])) fail(DA3_ERR_INVALID_ARGUMENT, "intrinsics" + vi + " contains NaN or inf");
        c.K[j] = k[j];
    }
    if (!invert3(c.K, c.Kinv)) fail(DA3_ERR_INVALID_ARGUMENT, "intrinsics" + vi + " is not invertible");
    const float *e = extrinsics + (size_t)i * ext_rows * 4;
    for (int j = 0; j < ext_rows * 4; ++j) {
        if (!std::isfinite(e[j])) fail(DA3_ERR_INVALID_ARGUMENT, "extrinsics" + vi + " contains NaN or inf");
    }
    if (ext_rows == 4 && !(e[12] == 0 && e[13] == 0 && e[14] == 0 && e[15] == 1)) {
        fail(DA3_ERR_INVALID_ARGUMENT, "extrinsics" + vi + " is 4x4 but its last row is not (0, 0, 0, 1)");
    }
    for (int j = 0; j < 12; ++j) c.w2c[j] = e[j];
    const double R[9] = {c.w2c[0], c.w2c[1], c.w2c[2], c.w2c[4], c.w2c[5], c.w2c[6], c.w2c[8], c.w2c[9], c.w2c[10]};
    double Ri[9];
    if (!invert3(R, Ri)) fail(DA3_ERR_INVALID_ARGUMENT, "extrinsics" + vi + " is not invertible (singular rotation)");
    for (int r = 0; r < 3; ++r) {
        for (int q = 0; q < 3; ++q) c.c2w[4 * r + q] = Ri[3 * r + q];
        c.c2w[4 * r + 3] = -(Ri[3 * r] * c.w2c[3] + Ri[3 * r + 1] * c.w2c[7] + Ri[3 * r + 2] * c.w2c[11]);
    }
    return c;
}

// The inputs' pointers, sizes and the parameters' values checked (DA3_ERR_INVALID_ARGUMENT).
static void check_points_input(const points_input &in, const da3_points_params &p) {
    if (!in.depth) fail(DA3_ERR_INVALID_ARGUMENT, "depth must not be NULL");
    if (!in.extrinsics || !in.intrinsics) fail(DA3_ERR_INVALID_ARGUMENT, "extrinsics and intrinsics must not be NULL");
    if (in.n_views < 1 || in.height < 1 || in.width < 1)
        fail(DA3_ERR_INVALID_ARGUMENT, "n_views, height and width must be positive");
    if (in.ext_rows != 3 && in.ext_rows != 4) fail(DA3_ERR_INVALID_ARGUMENT, "ext_rows must be 3 or 4");
    if (std::isnan(p.conf_thresh)) fail(DA3_ERR_INVALID_ARGUMENT, "conf_thresh is NaN");
    if (std::isnan(p.conf_thresh_percentile) || p.conf_thresh_percentile > 100)
        fail(DA3_ERR_INVALID_ARGUMENT, "conf_thresh_percentile must be <= 100 (<= 0 disables it)");
    if (std::isnan(p.ensure_thresh_percentile) || p.ensure_thresh_percentile < 0)
        fail(DA3_ERR_INVALID_ARGUMENT, "ensure_thresh_percentile must be >= 0 (>= 100 disables it)");
    if (std::isnan(p.sky_thresh)) fail(DA3_ERR_INVALID_ARGUMENT, "sky_thresh is NaN");
}

point_cloud compute_points(const points_input &in, const da3_points_params &p) {
    check_points_input(in, p);
    const int n = in.n_views, h = in.height, w = in.width;
    const size_t hw = (size_t)h * w, total = hw * n;
    std::vector<camera> cams;
    cams.reserve(n);
    for (int v = 0; v < n; ++v) cams.push_back(load_camera(in.extrinsics, in.ext_rows, in.intrinsics, v));

    const float *depth = in.depth, *conf = in.conf, *sky = in.sky;
    const float sky_thr = (float)p.sky_thresh;
    auto valid = [&](size_t i) {
        const float d = depth[i];
        return std::isfinite(d) && d > 0 && (!conf || std::isfinite(conf[i]));
    };
    auto is_sky = [&](size_t i) { return sky && sky[i] >= sky_thr; };

    point_cloud out;
    // threshold, compared in float32 like numpy's `conf >= thr` (ref: glb.py get_conf_thresh)
    float thr = 0;
    if (conf) {
        size_t n_valid = 0, n_ground = 0;
        for (size_t i = 0; i < total; ++i) {
            if (!valid(i)) continue;
            ++n_valid;
            if (!is_sky(i)) ++n_ground;
        }
        const bool ground_only = sky && n_ground > 10;
        std::vector<float> pool;
        pool.reserve(ground_only ? n_ground : n_valid);
        for (size_t i = 0; i < total; ++i) {
            if (valid(i) && (!ground_only || !is_sky(i))) pool.push_back(conf[i]);
        }
        thr = (float)p.conf_thresh;
        if (!pool.empty()) {
            if (p.conf_thresh_percentile > 0)
                thr = std::max(thr, percentile_f32(pool.data(), pool.size(), p.conf_thresh_percentile));
            if (p.ensure_thresh_percentile < 100)
                thr = std::min(thr, percentile_f32(pool.data(), pool.size(), p.ensure_thresh_percentile));
        }
        out.conf_thresh = thr;
    } else {
        out.conf_thresh = std::numeric_limits<double>::quiet_NaN();
    }

    // c2w * (d * K^-1 [u v 1]) = d * (Rinv Kinv) [u v 1] + c
    struct view_map {
        double m[9], c[3];
    };
    std::vector<view_map> maps(n);
    for (int v = 0; v < n; ++v) {
        const camera &c = cams[v];
        for (int r = 0; r < 3; ++r) {
            for (int q = 0; q < 3; ++q) {
                maps[v].m[3 * r + q] = c.c2w[4 * r] * c.Kinv[q] + c.c2w[4 * r + 1] * c.Kinv[3 + q] +
                                       c.c2w[4 * r + 2] * c.Kinv[6 + q];
            }
            maps[v].c[r] = c.c2w[4 * r + 3];
        }
    }
    auto world = [&](int v, int x, int y, size_t i, float out3[3]) {
        const view_map &mp = maps[v];
        const double d = depth[i];
        for (int r = 0; r < 3; ++r) {
            out3[r] = (float)(d * (mp.m[3 * r] * x + mp.m[3 * r + 1] * y + mp.m[3 * r + 2]) + mp.c[r]);
        }
        return std::isfinite(out3[0]) && std::isfinite(out3[1]) && std::isfinite(out3[2]);
    };

    // pass 1: which pixels survive (a point that overflows float32 is dropped, like upstream's
    // finite filter)
    std::vector<uint8_t> keep(total, 0);
    int64_t n_keep = 0;
    for (int v = 0; v < n; ++v) {
        for (int y = 0; y < h; ++y) {
            for (int x = 0; x < w; ++x) {
                const size_t i = (size_t)v * hw + (size_t)y * w + x;
                if (!valid(i) || (conf && !(conf[i] >= thr)) || (p.remove_sky && is_sky(i))) continue;
                float pt[3];
                if (!world(v, x, y, i, pt)) continue;
                keep[i] = 1;
                ++n_keep;
            }
        }
    }

    // pass 2: selection sampling (Knuth's algorithm S) keeps exactly m of n_keep, in order
    const int64_t m = (p.num_max_points > 0 && n_keep > p.num_max_points) ? p.num_max_points : n_keep;
    out.xyz.resize((size_t)m * 3);
    out.rgb.resize((size_t)m * 3);
    out.view.resize((size_t)m);
    out.pixel.resize((size_t)m * 2);
    rng::splitmix64 rng{p.seed};
    int64_t seen = 0, k = 0;
    for (int v = 0; v < n && k < m; ++v) {
        for (int y = 0; y < h && k < m; ++y) {
            for (int x = 0; x < w; ++x) {
                const size_t i = (size_t)v * hw + (size_t)y * w + x;
                if (!keep[i]) continue;
                const int64_t left = n_keep - seen++;
                if (m < n_keep && (double)left * rng.uniform() >= (double)(m - k)) continue;
                world(v, x, y, i, &out.xyz[(size_t)k * 3]);
                for (int c = 0; c < 3; ++c) out.rgb[(size_t)k * 3 + c] = in.images ? in.images[i * 3 + c] : 128;
                out.view[k] = v;
                out.pixel[(size_t)k * 2] = x;
                out.pixel[(size_t)k * 2 + 1] = y;
                if (++k == m) break;
            }
        }
    }
    if (k != m) fail(DA3_ERR_INTERNAL, "points: sampled " + std::to_string(k) + " of " + std::to_string(m));
    return out;
}

}  // namespace da3
