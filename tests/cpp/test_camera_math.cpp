// Host-side camera / postprocessing math of the DA3 port, checked without model weights.
// Expected numbers come from numpy 2.x / the official depth_anything_3 code (see comments).
// Exit code 0 on success; prints the first failures otherwise.
#include "graph/camera.h"
#include "graph/head.h"

#include <cmath>
#include <cstdio>
#include <vector>

using namespace da3;

static int g_failures = 0;

static void check(bool ok, const char *what) {
    if (!ok) {
        std::fprintf(stderr, "FAIL: %s\n", what);
        ++g_failures;
    }
}

static bool close(double a, double b, double tol) { return std::fabs(a - b) <= tol * (1.0 + std::fabs(b)); }

// c2w from a unit quaternion (xyzw) and a translation, as extrinsics (w2c 3x4) via the pose encoding.
static void make_w2c(const float q[4], const float t[3], float *ext) {
    const float pe[9] = {t[0], t[1], t[2], q[0], q[1], q[2], q[3], 1.0f, 1.2f};
    float K[9];
    pose_enc_to_extri_intri(pe, 1, 10, 10, ext, K);
}

int main() {
    // 1) pose encoding -> extrinsics/intrinsics -> pose encoding round trip
    {
        const float pe[2][9] = {{0.3f, -1.2f, 2.0f, 0.1f, -0.2f, 0.3f, 0.927362f, 1.1f, 1.4f},
                                {-2.0f, 0.5f, 0.25f, -0.5f, 0.5f, 0.5f, 0.5f, 0.8f, 0.9f}};
        float ext[2 * 12], K[2 * 9], back[2 * 9];
        pose_enc_to_extri_intri(&pe[0][0], 2, 280, 504, ext, K);
        check(close(K[0], 252.0 / std::tan(0.7), 1e-6) && close(K[4], 140.0 / std::tan(0.55), 1e-6), "fx/fy from fov");
        check(K[2] == 252.0f && K[5] == 140.0f && K[8] == 1.0f, "principal point / K[2][2]");
        extri_intri_to_pose_enc(ext, K, 2, 280, 504, back);
        double err = 0;
        for (int i = 0; i < 18; ++i) err = std::fmax(err, std::fabs(back[i] - (&pe[0][0])[i]));
        check(err < 1e-5, "pose encoding round trip");
    }
    // 2) normalization: view 0 becomes identity, median camera distance (lower middle) becomes 1
    {
        const float q[3][4] = {{0, 0, 0, 1}, {0.2f, 0.1f, 0.0f, 0.974679f}, {0, 0.6f, 0, 0.8f}};
        const float t[3][3] = {{1, 2, 3}, {0, -1, 4}, {5, 0, 0}};
        float ext[36], norm[36];
        for (int v = 0; v < 3; ++v) make_w2c(q[v], t[v], ext + v * 12);
        normalize_extrinsics(ext, 3, norm);
        const float I[12] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0};
        double e0 = 0;
        for (int i = 0; i < 12; ++i) e0 = std::fmax(e0, std::fabs(norm[i] - I[i]));
        check(e0 < 1e-6, "view 0 normalized to identity");
        std::vector<double> d;
        for (int v = 1; v < 3; ++v) {
            const float *e = norm + v * 12;  // camera centre = -R^T t
            double c[3];
            for (int k = 0; k < 3; ++k) c[k] = -(e[0 * 4 + k] * e[3] + e[1 * 4 + k] * e[7] + e[2 * 4 + k] * e[11]);
            d.push_back(std::sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2]));
        }
        // distances {0, d1, d2}: torch.median of 3 values is the middle one -> min(d1, d2) == 1
        check(close(std::fmin(d[0], d[1]), 1.0, 1e-5), "median distance scaled to 1");
    }
    // 3) Umeyama recovers a known Sim(3); RANSAC path (n >= 10) agrees on exact data
    for (int n : {4, 12}) {
        std::vector<float> ref((size_t)n * 12), est((size_t)n * 12), aligned((size_t)n * 12);
        for (int v = 0; v < n; ++v) {
            const float a = 0.3f * v;
            const float q[4] = {std::sin(a) * 0.6f, std::cos(a) * 0.3f, 0.2f, 0.9f};
            const float nq = std::sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
            const float qn[4] = {q[0] / nq, q[1] / nq, q[2] / nq, q[3] / nq};
            const float t[3] = {std::cos(1.7f * v), std::sin(0.9f * v) * 2, 0.5f * v};
            make_w2c(qn, t, est.data() + v * 12);
            // ref = Sim(3)(est) with s = 2.5, R = rotation about z by 90 deg, t = (1, 2, 3):
            // w2c' = [R_w2c R^T | s t_w2c - R_w2c R^T t]  (world points map x -> s R x + t)
            const float *e = est.data() + v * 12;
            float *r = ref.data() + v * 12;
            const double Rz[9] = {0, -1, 0, 1, 0, 0, 0, 0, 1}, tz[3] = {1, 2, 3}, s = 2.5;
            for (int i = 0; i < 3; ++i) {
                double acc = 0;
                for (int j = 0; j < 3; ++j) {
                    double rij = 0;
                    for (int k = 0; k < 3; ++k) rij += e[i * 4 + k] * Rz[j * 3 + k];
                    r[i * 4 + j] = (float)rij;
                    acc += rij * tz[j];
                }
                r[i * 4 + 3] = (float)(s * e[i * 4 + 3] - acc);
            }
        }
        const sim3 sm = align_poses_umeyama(ref.data(), est.data(), n, n >= 10, 42, aligned.data());
        check(close(sm.s, 2.5, 1e-5), "umeyama scale");
        check(close(sm.R[1], -1.0, 1e-5) && close(sm.R[3], 1.0, 1e-5) && close(sm.t[2], 3.0, 1e-4), "umeyama R, t");
        double e = 0;
        for (int i = 0; i < n * 12; ++i) e = std::fmax(e, std::fabs(aligned[i] - ref[i]));
        check(e < 1e-4, "aligned extrinsics equal the reference");
        // API semantics: ref = prediction, est = input; depth is divided by s, extrinsics := input
        std::vector<float> pred = ref, depth = {5.0f, 10.0f};
        align_to_input_extrinsics(pred.data(), est.data(), n, depth.data(), 2, true);
        check(close(depth[0], 2.0, 1e-5) && close(depth[1], 4.0, 1e-5), "depth /= scale");
        check(pred == est, "extrinsics replaced by the input");
    }
    // 4) single view: evo raises; the port maps the view onto the prediction with scale 1
    {
        const float q[4] = {0, 0, 0, 1}, t[3] = {1, 2, 3}, q2[4] = {0, 0.6f, 0, 0.8f}, t2[3] = {0, 0, 1};
        float a[12], b[12], al[12];
        make_w2c(q, t, a);
        make_w2c(q2, t2, b);
        const sim3 sm = align_poses_umeyama(a, b, 1, false, 42, al);
        double e = 0;
        for (int i = 0; i < 12; ++i) e = std::fmax(e, std::fabs(al[i] - a[i]));
        check(sm.s == 1.0 && e < 1e-6, "single-view alignment");
    }
    // 5) sky fill: 0.99 quantile (torch.quantile linear) of non-sky depth; threshold 0.3
    {
        std::vector<float> depth(100), sky(100, 0.0f);
        for (int i = 0; i < 100; ++i) depth[i] = (float)i;
        for (int i = 80; i < 100; ++i) sky[i] = 0.5f;  // 20 sky pixels
        sky[79] = 0.29f;                                // still non-sky
        check(fill_sky_depth(depth.data(), sky.data(), 100), "sky fill applied");
        // non-sky = 0..79, quantile 0.99 -> pos 78.21 -> 78.21
        check(close(depth[90], 78.21, 1e-6) && depth[79] == 79.0f, "sky fill value");
        std::vector<float> d2(100, 1.0f), s2(100, 0.0f);
        for (int i = 0; i < 10; ++i) s2[i] = 1.0f;  // only 10 sky pixels -> unchanged
        check(!fill_sky_depth(d2.data(), s2.data(), 100), "sky fill needs > 10 sky pixels");
        const float K[9] = {600, 0, 0, 0, 300, 0, 0, 0, 1};
        float d3[2] = {1.0f, 2.0f};
        apply_metric_scaling(d3, 1, 2, K);
        check(close(d3[0], 1.5, 1e-7) && close(d3[1], 3.0, 1e-7), "metric scaling focal/300");
    }
    // 6) UV embedding spot values (head_utils.py, w=3, h=2, C=8, aspect 1.5)
    {
        const std::vector<float> pe = uv_pos_embed(3, 2, 8, 1.5, 1.0f);
        // x coords: +-(1.5/sqrt(3.25))*(2/3) -> x0 = -0.5547002; channel 0 = sin(x0 * 1)
        check(close(pe[0], std::sin(-0.5547002), 1e-6), "uv embedding sin(x)");
        // channel 4 (first y channel) at row 1: y1 = (1/sqrt(3.25))*(1/2) = 0.2773501
        check(close(pe[(4 * 2 + 1) * 3 + 0], std::sin(0.2773501), 1e-6), "uv embedding sin(y)");
    }
    if (g_failures == 0) std::printf("test_camera_math: all checks passed\n");
    return g_failures == 0 ? 0 : 1;
}
