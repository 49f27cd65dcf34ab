// Camera decoder / encoder graphs and host pose math.
// ref: depth_anything_3/model/cam_dec.py, cam_enc.py, utils/{attention,block}.py,
//      utils/transform.py, utils/geometry.py, utils/pose_align.py, api.py
#include "graph/camera.h"

#include "gguf/schema.h"
#include "gguf/weights.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>

namespace da3 {

namespace {

const float kCamEncLnEps = 1e-5f;  // nn.LayerNorm default in CameraEnc and its Blocks

linear get_linear(const weight_map &wm, const std::string &name, int64_t in, int64_t out) {
    linear l;
    l.w = wm.get(name + ".weight", {in, out});
    l.b = wm.get(name + ".bias", {out});
    return l;
}

layer_norm get_norm(const weight_map &wm, const std::string &name, int64_t c) {
    return {wm.get(name + ".weight", {c}), wm.get(name + ".bias", {c})};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// decoder

bool has_camera_decoder(const weight_map &wm, const std::string &prefix) {
    return wm.has(prefix + schema::tn::kCamBb0 + ".weight");
}

void load_camera_decoder(const weight_map &wm, const std::string &prefix, camera_decoder &out) {
    namespace tn = schema::tn;
    camera_decoder d;
    ggml_tensor *w0 = wm.get(prefix + tn::kCamBb0 + ".weight");
    const int64_t C = w0->ne[0];
    d.dim_in = (int)C;
    d.bb0 = get_linear(wm, prefix + tn::kCamBb0, C, C);
    d.bb2 = get_linear(wm, prefix + tn::kCamBb2, C, C);
    d.fc_t = get_linear(wm, prefix + tn::kCamFcT, C, 3);
    d.fc_q = get_linear(wm, prefix + tn::kCamFcQ, C, 4);
    d.fc_fov = get_linear(wm, prefix + tn::kCamFcFov, C, 2);
    out = d;
}

ggml_tensor *build_camera_decoder(graph_ctx &g, const camera_decoder &d, ggml_tensor *cam_token) {
    if (cam_token->ne[0] != d.dim_in) {
        fail(DA3_ERR_INTERNAL, "camera decoder: token width " + std::to_string(cam_token->ne[0]) +
                                   " != " + std::to_string(d.dim_in));
    }
    ggml_context *ctx = g.ctx;
    ggml_tensor *x = g.name(build_linear(g, cam_token, d.bb0), "cam.bb0");  // named: profiling stage
    x = ggml_relu(ctx, x);
    x = ggml_relu(ctx, build_linear(g, x, d.bb2));
    ggml_tensor *t = build_linear(g, x, d.fc_t);
    ggml_tensor *q = build_linear(g, x, d.fc_q);
    ggml_tensor *fov = ggml_relu(ctx, build_linear(g, x, d.fc_fov));
    ggml_tensor *pe = ggml_concat(ctx, ggml_concat(ctx, t, q, 0), fov, 0);
    return g.name(pe, "cam.pose_enc");
}

// ---------------------------------------------------------------------------------------------
// encoder

bool has_camera_encoder(const weight_map &wm, const std::string &prefix) {
    return wm.has(prefix + schema::tn::kEncPoseFc1 + ".weight");
}

void load_camera_encoder(const weight_map &wm, const std::string &prefix, camera_encoder &out) {
    namespace tn = schema::tn;
    camera_encoder e;
    ggml_tensor *f1 = wm.get(prefix + tn::kEncPoseFc1 + ".weight");
    const int64_t in = f1->ne[0], hid = f1->ne[1];
    if (in != 9) {
        wm.format_error(prefix + tn::kEncPoseFc1 + " takes " + std::to_string(in) + " inputs, expected 9");
    }
    ggml_tensor *f2 = wm.get(prefix + tn::kEncPoseFc2 + ".weight");
    const int64_t C = f2->ne[1];
    e.dim = (int)C;
    e.fc1 = get_linear(wm, prefix + tn::kEncPoseFc1, 9, hid);
    e.fc2 = get_linear(wm, prefix + tn::kEncPoseFc2, hid, C);
    e.token_norm = get_norm(wm, prefix + tn::kEncTokenNorm, C);
    e.trunk_norm = get_norm(wm, prefix + tn::kEncTrunkNorm, C);
    e.num_heads = (int)wm.get_int_or(prefix + "num_heads", 16, 1, C);
    if (e.num_heads <= 0 || C % e.num_heads != 0) {
        wm.format_error(prefix + "num_heads " + std::to_string(e.num_heads) + " does not divide width " +
                        std::to_string(C));
    }
    for (int i = 0;; ++i) {
        const std::string p = prefix + tn::kEncTrunk + "." + std::to_string(i) + ".";
        if (!wm.has(p + tn::kEncNorm1 + ".weight")) break;
        camera_encoder_block b;
        b.norm1 = get_norm(wm, p + tn::kEncNorm1, C);
        b.norm2 = get_norm(wm, p + tn::kEncNorm2, C);
        b.qkv = get_linear(wm, p + tn::kEncQkv, C, 3 * C);
        b.proj = get_linear(wm, p + tn::kEncProj, C, C);
        ggml_tensor *m1 = wm.get(p + tn::kEncFc1 + ".weight");
        b.fc1 = get_linear(wm, p + tn::kEncFc1, C, m1->ne[1]);
        b.fc2 = get_linear(wm, p + tn::kEncFc2, m1->ne[1], C);
        b.ls1 = wm.find(p + tn::kEncLs1);
        b.ls2 = wm.find(p + tn::kEncLs2);
        if (b.ls1) b.ls1 = wm.get(p + tn::kEncLs1, {C});
        if (b.ls2) b.ls2 = wm.get(p + tn::kEncLs2, {C});
        e.trunk.push_back(b);
    }
    if (e.trunk.empty()) {
        wm.format_error(prefix + tn::kEncTrunk + ".0.* tensors are missing");
    }
    out = e;
}

ggml_tensor *build_camera_encoder(graph_ctx &g, const camera_encoder &e, ggml_tensor *pose_enc) {
    ggml_context *ctx = g.ctx;
    const int64_t C = e.dim, N = pose_enc->ne[1];
    const int64_t nh = e.num_heads, hd = C / nh;
    ggml_tensor *x = build_linear(g, pose_enc, e.fc1);
    x = ggml_gelu_erf(ctx, x);
    x = build_linear(g, x, e.fc2);
    x = build_norm(g, x, e.token_norm, kCamEncLnEps);  // [C, N]
    for (size_t i = 0; i < e.trunk.size(); ++i) {
        const camera_encoder_block &b = e.trunk[i];
        // attention over the N views as one sequence (ref: utils/attention.py Attention)
        ggml_tensor *h = build_norm(g, x, b.norm1, kCamEncLnEps);
        ggml_tensor *qkv = build_linear(g, h, b.qkv);  // [3C, N]: per token [3][heads][hd]
        const size_t es = ggml_element_size(qkv);
        auto part = [&](int j) {
            ggml_tensor *v = ggml_view_3d(ctx, qkv, hd, nh, N, hd * es, qkv->nb[1], (size_t)j * C * es);
            return ggml_permute(ctx, v, 0, 2, 1, 3);  // [hd, N, nh]
        };
        ggml_tensor *q = part(0), *k = part(1);
        ggml_tensor *v = ggml_cont(ctx, ggml_permute(ctx, part(2), 1, 0, 2, 3));  // [N, hd, nh]
        ggml_tensor *kq = mul_mat_f32acc(ctx, k, q);                             // [N_k, N_q, nh]
        kq = ggml_soft_max_ext(ctx, kq, nullptr, 1.0f / std::sqrt((float)hd), 0.0f);
        ggml_tensor *a = mul_mat_f32acc(ctx, v, kq);  // [hd, N_q, nh]
        a = ggml_cont(ctx, ggml_permute(ctx, a, 0, 2, 1, 3));  // [hd, nh, N]
        a = ggml_reshape_2d(ctx, a, C, N);
        a = build_linear(g, a, b.proj);
        if (b.ls1) a = ggml_mul(ctx, a, b.ls1);
        x = ggml_add(ctx, x, a);
        // MLP (exact GELU)
        h = build_norm(g, x, b.norm2, kCamEncLnEps);
        h = ggml_gelu_erf(ctx, build_linear(g, h, b.fc1));
        h = build_linear(g, h, b.fc2);
        if (b.ls2) h = ggml_mul(ctx, h, b.ls2);
        x = ggml_add(ctx, x, h);
        g.name(x, "cam_enc.blk." + std::to_string(i));
    }
    x = build_norm(g, x, e.trunk_norm, kCamEncLnEps);
    return g.name(x, "cam_enc.tokens");
}

// ---------------------------------------------------------------------------------------------
// host pose math (double precision internally)

namespace {

using mat3 = std::array<double, 9>;
using vec3 = std::array<double, 3>;

mat3 transpose(const mat3 &a) { return {a[0], a[3], a[6], a[1], a[4], a[7], a[2], a[5], a[8]}; }

mat3 matmul(const mat3 &a, const mat3 &b) {
    mat3 c{};
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
            double s = 0;
            for (int k = 0; k < 3; ++k) s += a[i * 3 + k] * b[k * 3 + j];
            c[i * 3 + j] = s;
        }
    return c;
}

vec3 matvec(const mat3 &a, const vec3 &v) {
    return {a[0] * v[0] + a[1] * v[1] + a[2] * v[2], a[3] * v[0] + a[4] * v[1] + a[5] * v[2],
            a[6] * v[0] + a[7] * v[1] + a[8] * v[2]};
}

double det3(const mat3 &a) {
    return a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6]) + a[2] * (a[3] * a[7] - a[4] * a[6]);
}

double norm3(const vec3 &v) { return std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]); }

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

// ---- numpy-compatible random numbers ----

struct u128 { uint64_t hi, lo; };
inline u128 mul64(uint64_t a, uint64_t b) {
    const uint64_t a0 = a & 0xFFFFFFFFu, a1 = a >> 32, b0 = b & 0xFFFFFFFFu, b1 = b >> 32;
    const uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    const uint64_t mid = (p00 >> 32) + (p01 & 0xFFFFFFFFu) + (p10 & 0xFFFFFFFFu);
    return {p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32), (mid << 32) | (p00 & 0xFFFFFFFFu)};
}
inline u128 mul(u128 a, u128 b) { u128 r = mul64(a.lo, b.lo); r.hi += a.hi * b.lo + a.lo * b.hi; return r; }
inline u128 add(u128 a, u128 b) { u128 r{a.hi + b.hi, a.lo + b.lo}; if (r.lo < a.lo) ++r.hi; return r; }
// numpy.random.default_rng(seed): SeedSequence + PCG64, and Generator.choice(pop, size,
// replace=False) for pop <= 10000 (Floyd's algorithm + shuffle), bit-exact, so RANSAC picks the
// same subsets as PyTorch's path. ref: numpy/random/bit_generator.pyx (SeedSequence),
// numpy/random/src/pcg64, numpy/random/_generator.pyx (choice), distributions.c (bounded ints).
struct numpy_pcg64 {
    u128 state{0, 0}, inc{0, 0};
    bool has32 = false; uint32_t u32 = 0;
    static constexpr u128 kMult{2549297995355413924ULL, 4865540595714422341ULL};
    void step() { state = add(mul(state, kMult), inc); }
    explicit numpy_pcg64(uint64_t seed) {
        // SeedSequence(seed).generate_state(4, uint64)  (ref: numpy/random/bit_generator.pyx)
        const uint32_t INIT_A = 0x43b0d7e5, MULT_A = 0x931e8875, INIT_B = 0x8b51f9dd, MULT_B = 0x58f38ded,
                       MIX_L = 0xca01f9dd, MIX_R = 0x4973f715;
        std::vector<uint32_t> entropy;
        uint64_t s = seed;
        do { entropy.push_back((uint32_t)s); s >>= 32; } while (s);
        uint32_t hc = INIT_A;
        auto hashmix = [&](uint32_t v) { v ^= hc; hc *= MULT_A; v *= hc; v ^= v >> 16; return v; };
        auto mix = [&](uint32_t x, uint32_t y) { uint32_t r = MIX_L * x - MIX_R * y; r ^= r >> 16; return r; };
        std::array<uint32_t, 4> pool{};
        for (size_t i = 0; i < 4; ++i) pool[i] = hashmix(i < entropy.size() ? entropy[i] : 0);
        for (size_t a = 0; a < 4; ++a)
            for (size_t b = 0; b < 4; ++b)
                if (a != b) pool[b] = mix(pool[b], hashmix(pool[a]));
        for (size_t a = 4; a < entropy.size(); ++a)
            for (size_t b = 0; b < 4; ++b) pool[b] = mix(pool[b], hashmix(entropy[a]));
        uint32_t w[8];
        uint32_t hb = INIT_B;
        for (int i = 0; i < 8; ++i) { uint32_t v = pool[i % 4]; v ^= hb; hb *= MULT_B; v *= hb; v ^= v >> 16; w[i] = v; }
        uint64_t val[4];
        for (int i = 0; i < 4; ++i) val[i] = (uint64_t)w[2 * i] | ((uint64_t)w[2 * i + 1] << 32);
        // pcg64_set_seed -> pcg_setseq_128_srandom_r
        const u128 initstate{val[0], val[1]}, initseq{val[2], val[3]};
        inc = {(initseq.hi << 1) | (initseq.lo >> 63), (initseq.lo << 1) | 1u};
        state = {0, 0};
        step();
        state = add(state, initstate);
        step();
    }
    uint64_t next64() {
        step();
        const uint64_t x = state.hi ^ state.lo;
        const unsigned rot = (unsigned)(state.hi >> 58);
        return (x >> rot) | (x << ((64 - rot) & 63));
    }
    uint32_t next32() {
        if (has32) { has32 = false; return u32; }
        const uint64_t n = next64();
        has32 = true; u32 = (uint32_t)(n >> 32);
        return (uint32_t)n;
    }
    // random_bounded_uint64(0, rng) for rng < 2^32 (Lemire, unbuffered)
    uint64_t bounded(uint64_t rng) {
        if (rng == 0) return 0;
        if (rng == 0xFFFFFFFFu) return next32();
        const uint32_t excl = (uint32_t)rng + 1;
        uint64_t m = (uint64_t)next32() * excl;
        uint32_t left = (uint32_t)m;
        if (left < excl) {
            const uint32_t thr = (uint32_t)(UINT32_MAX - (uint32_t)rng) % excl;
            while (left < thr) { m = (uint64_t)next32() * excl; left = (uint32_t)m; }
        }
        return m >> 32;
    }
    // Generator.choice(pop, size, replace=False, shuffle=True) for pop <= 10000 (Floyd + shuffle)
    std::vector<int64_t> choice(int64_t pop, int64_t size) {
        std::vector<int64_t> idx(size);
        std::vector<char> in(pop, 0);
        for (int64_t j = pop - size; j < pop; ++j) {
            const int64_t v = (int64_t)bounded((uint64_t)j);
            const int64_t pick = in[v] ? j : v;
            in[pick] = 1;
            idx[j - pop + size] = pick;
        }
        for (int64_t i = size - 1; i >= 1; --i) {
            const int64_t j = (int64_t)bounded((uint64_t)i);
            std::swap(idx[i], idx[j]);
        }
        return idx;
    }
};

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
