// Host pose maths (host/pose.h). ref: depth_anything_3/utils/transform.py, utils/geometry.py,
// utils/pose_align.py, api.py
#include "host/pose.h"

#include "common.h"
#include "host/geometry.h"
#include "host/random.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

namespace da3 {

namespace {

using namespace geom;
using rng::numpy_pcg64;

// A rigid transform [R | t] (w2c or c2w).
struct rigid {
    mat3 R;
    vec3 t;
};

rigid load_rigid(const float *p) {  // 3x4 row-major
    rigid r;
    for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) r.R[i * 3 + j] = p[i * 4 + j];
        r.t[i] = p[i * 4 + 3];
    }
    return r;
}

void store_rigid(const rigid &r, float *p) {
    for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 3; ++j) p[i * 4 + j] = (float)r.R[i * 3 + j];
        p[i * 4 + 3] = (float)r.t[i];
    }
}

// ref: geometry.py affine_inverse: [R^T | -R^T t]
rigid inverse(const rigid &a) {
    rigid r;
    r.R = transpose(a.R);
    vec3 t = matvec(r.R, a.t);
    r.t = {-t[0], -t[1], -t[2]};
    return r;
}

rigid compose(const rigid &a, const rigid &b) {  // a @ b
    rigid r;
    r.R = matmul(a.R, b.R);
    vec3 t = matvec(a.R, b.t);
    r.t = {t[0] + a.t[0], t[1] + a.t[1], t[2] + a.t[2]};
    return r;
}

// ref: transform.py quat_to_mat (xyzw, scalar last; normalizes through 2/|q|^2)
mat3 quat_to_mat(const double *q) {
    const double i = q[0], j = q[1], k = q[2], r = q[3];
    const double two_s = 2.0 / (i * i + j * j + k * k + r * r);
    return {1 - two_s * (j * j + k * k), two_s * (i * j - k * r),     two_s * (i * k + j * r),
            two_s * (i * j + k * r),     1 - two_s * (i * i + k * k), two_s * (j * k - i * r),
            two_s * (i * k - j * r),     two_s * (j * k + i * r),     1 - two_s * (i * i + j * j)};
}

// ref: transform.py mat_to_quat -> xyzw with w >= 0
std::array<double, 4> mat_to_quat(const mat3 &m) {
    const double m00 = m[0], m01 = m[1], m02 = m[2], m10 = m[3], m11 = m[4], m12 = m[5], m20 = m[6], m21 = m[7],
                 m22 = m[8];
    const double a[4] = {1.0 + m00 + m11 + m22, 1.0 + m00 - m11 - m22, 1.0 - m00 + m11 - m22, 1.0 - m00 - m11 + m22};
    double q_abs[4];
    for (int i = 0; i < 4; ++i) q_abs[i] = a[i] > 0 ? std::sqrt(a[i]) : 0.0;
    const double cand[4][4] = {
        {q_abs[0] * q_abs[0], m21 - m12, m02 - m20, m10 - m01},
        {m21 - m12, q_abs[1] * q_abs[1], m10 + m01, m02 + m20},
        {m02 - m20, m10 + m01, q_abs[2] * q_abs[2], m12 + m21},
        {m10 - m01, m20 + m02, m21 + m12, q_abs[3] * q_abs[3]},
    };
    int best = 0;
    for (int i = 1; i < 4; ++i)
        if (q_abs[i] > q_abs[best]) best = i;
    const double den = 2.0 * std::max(q_abs[best], 0.1);
    double rijk[4];
    for (int i = 0; i < 4; ++i) rijk[i] = cand[best][i] / den;
    std::array<double, 4> out = {rijk[1], rijk[2], rijk[3], rijk[0]};
    if (out[3] < 0) {
        for (double &v : out) v = -v;
    }
    return out;
}

// One-sided Jacobi SVD of a 3x3 matrix: A = U diag(d) V^T, d sorted descending, U and V
// orthogonal (columns completed for rank-deficient A).
void svd3(const mat3 &A, mat3 &U, vec3 &d, mat3 &V) {
    double u[3][3], v[3][3];  // column-major: u[col][row]
    for (int c = 0; c < 3; ++c)
        for (int r = 0; r < 3; ++r) {
            u[c][r] = A[r * 3 + c];
            v[c][r] = r == c ? 1.0 : 0.0;
        }
    for (int sweep = 0; sweep < 60; ++sweep) {
        double off = 0;
        for (int p = 0; p < 2; ++p)
            for (int q = p + 1; q < 3; ++q) {
                double alpha = 0, beta = 0, gamma = 0;
                for (int r = 0; r < 3; ++r) {
                    alpha += u[p][r] * u[p][r];
                    beta += u[q][r] * u[q][r];
                    gamma += u[p][r] * u[q][r];
                }
                if (std::fabs(gamma) <= 1e-300) continue;
                off = std::max(off, std::fabs(gamma) / std::sqrt(std::max(alpha * beta, 1e-300)));
                const double zeta = (beta - alpha) / (2 * gamma);
                const double t = (zeta >= 0 ? 1.0 : -1.0) / (std::fabs(zeta) + std::sqrt(1 + zeta * zeta));
                const double c = 1 / std::sqrt(1 + t * t), s = c * t;
                for (int r = 0; r < 3; ++r) {
                    const double up = u[p][r], uq = u[q][r];
                    u[p][r] = c * up - s * uq;
                    u[q][r] = s * up + c * uq;
                    const double vp = v[p][r], vq = v[q][r];
                    v[p][r] = c * vp - s * vq;
                    v[q][r] = s * vp + c * vq;
                }
            }
        if (off < 1e-15) break;
    }
    double sv[3];
    for (int c = 0; c < 3; ++c) sv[c] = std::sqrt(u[c][0] * u[c][0] + u[c][1] * u[c][1] + u[c][2] * u[c][2]);
    int order[3] = {0, 1, 2};
    std::sort(order, order + 3, [&](int a, int b) { return sv[a] > sv[b]; });
    double uc[3][3], vc[3][3];
    const double tol = std::max(sv[order[0]], 1e-300) * 1e-12;
    for (int i = 0; i < 3; ++i) {
        const int c = order[i];
        d[i] = sv[c];
        for (int r = 0; r < 3; ++r) {
            vc[i][r] = v[c][r];
            uc[i][r] = sv[c] > tol ? u[c][r] / sv[c] : 0.0;
        }
    }
    // complete U for (near) zero singular values
    auto cross = [](const double *a, const double *b, double *o) {
        o[0] = a[1] * b[2] - a[2] * b[1];
        o[1] = a[2] * b[0] - a[0] * b[2];
        o[2] = a[0] * b[1] - a[1] * b[0];
    };
    if (!(d[0] > tol)) {
        uc[0][0] = 1, uc[0][1] = 0, uc[0][2] = 0;
    }
    if (!(d[1] > tol)) {
        // any unit vector orthogonal to uc[0]
        const double *a = uc[0];
        double e[3] = {0, 0, 0};
        e[std::fabs(a[0]) < 0.9 ? 0 : 1] = 1;
        cross(a, e, uc[1]);
        const double n = std::sqrt(uc[1][0] * uc[1][0] + uc[1][1] * uc[1][1] + uc[1][2] * uc[1][2]);
        for (double &x : uc[1]) x /= n;
    }
    if (!(d[2] > tol)) {
        cross(uc[0], uc[1], uc[2]);
    }
    for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 3; ++c) {
            U[r * 3 + c] = uc[c][r];
            V[r * 3 + c] = vc[c][r];
        }
}

// ref: evo geometry.umeyama_alignment(x=est, y=ref, with_scale=True). Returns false where evo
// raises (covariance rank < 2); r/t/c are still filled (see align_poses_umeyama).
bool umeyama(const std::vector<vec3> &x, const std::vector<vec3> &y, sim3 &out) {
    const size_t n = x.size();
    vec3 mx{0, 0, 0}, my{0, 0, 0};
    for (size_t i = 0; i < n; ++i)
        for (int k = 0; k < 3; ++k) {
            mx[k] += x[i][k] / (double)n;
            my[k] += y[i][k] / (double)n;
        }
    double sigma_x = 0;
    mat3 cov{};
    for (size_t i = 0; i < n; ++i) {
        vec3 dx, dy;
        for (int k = 0; k < 3; ++k) {
            dx[k] = x[i][k] - mx[k];
            dy[k] = y[i][k] - my[k];
            sigma_x += dx[k] * dx[k];
        }
        for (int a = 0; a < 3; ++a)
            for (int b = 0; b < 3; ++b) cov[a * 3 + b] += dy[a] * dx[b];
    }
    sigma_x /= (double)n;
    for (double &c : cov) c /= (double)n;
    mat3 U, V;
    vec3 d;
    svd3(cov, U, d, V);
    int rank = 0;
    for (double v : d)
        if (v > 2.220446049250313e-16) ++rank;
    mat3 S = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    if (det3(U) * det3(V) < 0.0) S[8] = -1;
    const mat3 R = matmul(matmul(U, S), transpose(V));
    const double c = sigma_x > 0 ? (d[0] * S[0] + d[1] * S[4] + d[2] * S[8]) / sigma_x : 1.0;
    const vec3 rmx = matvec(R, mx);
    for (int k = 0; k < 9; ++k) out.R[k] = R[k];
    for (int k = 0; k < 3; ++k) out.t[k] = my[k] - c * rmx[k];
    out.s = c;
    return rank >= 2;
}

// pose (c2w) after the Sim(3): [r R_i | s r t_i + t] (ref: pose_align.py _apply_sim3_to_poses)
rigid apply_sim3(const sim3 &s, const rigid &pose) {
    mat3 r;
    std::copy(s.R, s.R + 9, r.begin());
    rigid o;
    o.R = matmul(r, pose.R);
    const vec3 rt = matvec(r, pose.t);
    for (int k = 0; k < 3; ++k) o.t[k] = s.s * rt[k] + s.t[k];
    return o;
}

// Returns false where evo raises (see umeyama); `s` is filled either way.
bool umeyama_poses(const std::vector<rigid> &ref, const std::vector<rigid> &est, sim3 &s) {
    std::vector<vec3> x, y;
    for (size_t i = 0; i < ref.size(); ++i) {
        x.push_back(est[i].t);
        y.push_back(ref[i].t);
    }
    s = sim3();
    if (ref.size() == 1) {
        // evo raises here; map the single est camera onto the ref camera, scale 1.
        mat3 r = matmul(ref[0].R, transpose(est[0].R));
        std::copy(r.begin(), r.end(), s.R);
        const vec3 rt = matvec(r, est[0].t);
        for (int k = 0; k < 3; ++k) s.t[k] = ref[0].t[k] - rt[k];
        s.s = 1.0;
        return false;
    }
    return umeyama(x, y, s);
}

}  // namespace

void pose_enc_to_extri_intri(const float *pose_enc, int n, int H, int W, float *extrinsics, float *intrinsics) {
    for (int v = 0; v < n; ++v) {
        const float *p = pose_enc + (size_t)v * 9;
        const double q[4] = {p[3], p[4], p[5], p[6]};
        rigid c2w;
        c2w.R = quat_to_mat(q);
        c2w.t = {p[0], p[1], p[2]};
        store_rigid(inverse(c2w), extrinsics + (size_t)v * 12);
        const double fov_h = p[7], fov_w = p[8];
        const double fy = (H / 2.0) / std::max(std::tan(fov_h / 2.0), 1e-6);
        const double fx = (W / 2.0) / std::max(std::tan(fov_w / 2.0), 1e-6);
        float *K = intrinsics + (size_t)v * 9;
        std::fill(K, K + 9, 0.0f);
        K[0] = (float)fx;
        K[4] = (float)fy;
        K[2] = (float)(W / 2.0);
        K[5] = (float)(H / 2.0);
        K[8] = 1.0f;
    }
}

void extri_intri_to_pose_enc(const float *extrinsics, const float *intrinsics, int n, int H, int W, float *pose_enc) {
    for (int v = 0; v < n; ++v) {
        const rigid c2w = inverse(load_rigid(extrinsics + (size_t)v * 12));
        const std::array<double, 4> q = mat_to_quat(c2w.R);
        const float *K = intrinsics + (size_t)v * 9;
        float *p = pose_enc + (size_t)v * 9;
        for (int k = 0; k < 3; ++k) p[k] = (float)c2w.t[k];
        for (int k = 0; k < 4; ++k) p[3 + k] = (float)q[k];
        p[7] = (float)(2.0 * std::atan((H / 2.0) / (double)K[4]));
        p[8] = (float)(2.0 * std::atan((W / 2.0) / (double)K[0]));
    }
}

void normalize_extrinsics(const float *extrinsics, int n, float *normalized) {
    if (n <= 0) return;
    const rigid t0 = inverse(load_rigid(extrinsics));  // affine_inverse(ex[:, :1])
    std::vector<rigid> norm(n);
    std::vector<double> dists(n);
    for (int v = 0; v < n; ++v) {
        norm[v] = compose(load_rigid(extrinsics + (size_t)v * 12), t0);
        dists[v] = norm3(inverse(norm[v]).t);
    }
    std::vector<double> sorted = dists;
    std::sort(sorted.begin(), sorted.end());
    double median = sorted[(sorted.size() - 1) / 2];  // torch.median: lower middle value
    median = std::max(median, 0.1);
    for (int v = 0; v < n; ++v) {
        for (double &t : norm[v].t) t /= median;
        store_rigid(norm[v], normalized + (size_t)v * 12);
    }
}

std::vector<float> prepare_encoder_pose_enc(const float *extrinsics, const float *intrinsics, int n, int H, int W) {
    if (n <= 0 || H <= 0 || W <= 0) {
        fail(DA3_ERR_INVALID_ARGUMENT, "camera encoder input: bad view count or image size");
    }
    for (size_t i = 0; i < (size_t)n * 12; ++i) {
        if (!std::isfinite(extrinsics[i])) fail(DA3_ERR_INVALID_ARGUMENT, "extrinsics contain non-finite values");
    }
    for (int v = 0; v < n; ++v) {
        const float *K = intrinsics + (size_t)v * 9;
        for (int k = 0; k < 9; ++k) {
            if (!std::isfinite(K[k])) fail(DA3_ERR_INVALID_ARGUMENT, "intrinsics contain non-finite values");
        }
        if (!(K[0] > 0) || !(K[4] > 0)) {
            fail(DA3_ERR_INVALID_ARGUMENT, "intrinsics: focal lengths fx, fy must be positive (view " +
                                               std::to_string(v) + ")");
        }
    }
    std::vector<float> norm((size_t)n * 12), pe((size_t)n * 9);
    normalize_extrinsics(extrinsics, n, norm.data());
    extri_intri_to_pose_enc(norm.data(), intrinsics, n, H, W, pe.data());
    return pe;
}

sim3 align_poses_umeyama(const float *ext_ref, const float *ext_est, int n, bool ransac, uint64_t seed,
                         float *ext_est_aligned) {
    if (n <= 0) {
        fail(DA3_ERR_INVALID_ARGUMENT, "align_poses_umeyama: no views");
    }
    std::vector<rigid> ref(n), est(n);
    for (int v = 0; v < n; ++v) {
        ref[v] = inverse(load_rigid(ext_ref + (size_t)v * 12));
        est[v] = inverse(load_rigid(ext_est + (size_t)v * 12));
    }
    sim3 best;
    umeyama_poses(ref, est, best);
    if (ransac && n >= 3) {
        // ref: pose_align.py _ransac_align_sim3
        const int sub_n = std::max(3, (n + 1) / 2);
        std::vector<double> nn(n);
        for (int i = 0; i < n; ++i) {
            const vec3 p = apply_sim3(best, est[i]).t;
            double m = INFINITY;
            for (int j = 0; j < n; ++j) {
                const vec3 d = {ref[j].t[0] - p[0], ref[j].t[1] - p[1], ref[j].t[2] - p[2]};
                m = std::min(m, norm3(d));
            }
            nn[i] = m;
        }
        std::sort(nn.begin(), nn.end());
        const double thresh = n % 2 ? nn[n / 2] : 0.5 * (nn[n / 2 - 1] + nn[n / 2]);  // np.median
        numpy_pcg64 rng(seed);
        int best_k = -1;
        double best_err = INFINITY;
        std::vector<char> best_inl;
        for (int it = 0; it < 10; ++it) {
            const std::vector<int64_t> idx = rng.choice(n, sub_n);
            std::vector<rigid> rs, es;
            for (int i = 0; i < sub_n; ++i) {
                rs.push_back(ref[idx[i]]);
                es.push_back(est[idx[i]]);
            }
            sim3 m;
            if (!umeyama_poses(rs, es, m)) continue;  // evo raises -> the reference skips the sample
            std::vector<char> inl(n);
            int k = 0;
            double err_sum = 0;
            for (int i = 0; i < n; ++i) {
                const vec3 p = apply_sim3(m, est[i]).t;
                const vec3 d = {p[0] - ref[i].t[0], p[1] - ref[i].t[1], p[2] - ref[i].t[2]};
                const double e = norm3(d);
                inl[i] = e <= thresh;
                if (inl[i]) {
                    ++k;
                    err_sum += e;
                }
            }
            const double mean_err = k > 0 ? err_sum / k : INFINITY;
            if (k > best_k || (k == best_k && mean_err < best_err)) {
                best_k = k;
                best_err = mean_err;
                best_inl = inl;
                best = m;
            }
        }
        if (best_k >= 3) {
            std::vector<rigid> rs, es;
            for (int i = 0; i < n; ++i)
                if (best_inl[i]) {
                    rs.push_back(ref[i]);
                    es.push_back(est[i]);
                }
            umeyama_poses(rs, es, best);
        }
    }
    if (ext_est_aligned) {
        for (int v = 0; v < n; ++v) {
            store_rigid(inverse(apply_sim3(best, est[v])), ext_est_aligned + (size_t)v * 12);
        }
    }
    return best;
}

sim3 align_to_input_extrinsics(float *extrinsics, const float *input_extrinsics, int n, float *depth,
                               size_t depth_count, bool align_to_input_ext_scale) {
    std::vector<float> aligned((size_t)n * 12);
    const sim3 s = align_poses_umeyama(extrinsics, input_extrinsics, n, n >= 10, 42, aligned.data());
    if (align_to_input_ext_scale) {
        std::copy(input_extrinsics, input_extrinsics + (size_t)n * 12, extrinsics);
        for (size_t i = 0; i < depth_count; ++i) depth[i] = (float)((double)depth[i] / s.s);
    } else {
        std::copy(aligned.begin(), aligned.end(), extrinsics);
    }
    return s;
}

}  // namespace da3
