// The fused CPU convolution op (conv_cpu, cpu_kernels.h): direct register-blocked 3x3 and 1x1
// kernels, and Winograd F(4x4, 3x3) for the wide 3x3 layers of the DPT head.
#include "kernels/cpu_kernels.h"

#include "common.h"
#include "kernels/cpu_gemm.h"
#include "kernels/cpu_simd.h"
#include "kernels/cpu_work.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace da3 {
namespace {
using namespace simd;
// Register blocking: OCB output channels x NX vectors of VW columns per inner loop.
#if defined(__AVX512F__)
constexpr int OCB = 8, NX_MAX = 3;
#elif defined(__AVX__)
constexpr int OCB = 4, NX_MAX = 2;
#else
constexpr int OCB = 4, NX_MAX = 2;
#endif

constexpr unsigned HAS_BIAS = 1u << 8, HAS_RES = 1u << 9, HAS_WINO = 1u << 10, HAS_RESIZE = 1u << 11, HAS_UV = 1u << 12,
                   HAS_PACKED = 1u << 13, HAS_1X1 = 1u << 14, HAS_1X1_BIAS = 1u << 15, HAS_RES2 = 1u << 16;

struct conv_scratch {
    std::vector<float> bias;  // [nblk * OCB]
    std::vector<float> rows;  // 3x3: zero-padded input rows [ci][ky][L]
    std::vector<float> tmp;   // one strip of one output channel
};

// Output blocks [b0, b1) of w [Cout, Cin, KS, KS] (f32 or f16) packed as f32 into
// out[blk][ci][ky][kx][OCB] (zero-filled past Cout).
void pack_weights(const ggml_tensor *w, int b0, int b1, float *out) {
    const int taps = (int)(w->ne[0] * w->ne[1]), cin = (int)w->ne[2], cout = (int)w->ne[3];
    const size_t per_blk = (size_t)cin * taps * OCB;
    std::fill(out + b0 * per_blk, out + b1 * per_blk, 0.0f);
    for (int co = b0 * OCB; co < std::min(cout, b1 * OCB); ++co) {
        float *blk = out + (size_t)(co / OCB) * per_blk;
        for (int ci = 0; ci < cin; ++ci) {
            const size_t i0 = ((size_t)co * cin + ci) * taps;
            for (int k = 0; k < taps; ++k) {
                blk[((size_t)ci * taps + k) * OCB + co % OCB] =
                    w->type == GGML_TYPE_F16 ? ggml_fp16_to_fp32(((const ggml_fp16_t *)w->data)[i0 + k])
                                             : ((const float *)w->data)[i0 + k];
            }
        }
    }
}

void pack_weights_compute(ggml_tensor *dst, int ith, int nth, void *) {
    const int nblk = (int)((dst->src[0]->ne[3] + OCB - 1) / OCB);
    pack_weights(dst->src[0], nblk * ith / nth, nblk * (ith + 1) / nth, (float *)dst->data);
}

// The direct kernels' packed weights as their own node, split across threads (per call; the
// allocator reuses the memory once the convolution is done).
ggml_tensor *pack_weights_node(ggml_context *ctx, ggml_tensor *w) {
    const int64_t nblk = (w->ne[3] + OCB - 1) / OCB;
    return ggml_custom_4d(ctx, GGML_TYPE_F32, nblk * w->ne[2] * w->ne[1] * w->ne[0] * OCB, 1, 1, 1, &w, 1,
                          pack_weights_compute, GGML_N_TASKS_MAX, nullptr);
}

struct conv_args {
    int KS, W, H, cin, cout, N;
    bool relu_in, relu_out;
    const float *x, *res, *res2;  // res2: a second residual, added after res
    const float *bias;  // [cout] (zeros when the conv has none)
    const float *u;     // Winograd: transformed weights, packed (wino_weights), else null
    const float *wpk;   // direct kernels: packed weights (pack_weights), else null
    float *y;
    // conv3x3_resized_cpu (x null): the input is the align-corners bilinear resize of rs
    // [rs_w, rs_h, cin, N] to (W, H) plus the UV embedding (uvx [W, cin/2], uvy [H, cin/2]; or
    // null), computed as the rows are read; rs_x0, rs_wx: resize_columns_ac for W.
    const float *rs = nullptr, *uvx = nullptr, *uvy = nullptr;
    int rs_w = 0, rs_h = 0;
    const int *rs_x0 = nullptr;
    const float *rs_wx = nullptr;
    // Winograd with a 1x1 convolution after it (w2 [c2][cout] f32, b2 [c2]): y is [W, H, c2, N]
    // and gets b2 + sum over co (ascending) of w2 * the 3x3 output, as conv1x1 sums
    const float *w2 = nullptr, *b2 = nullptr;
    int c2 = 0;
};

// v + res + res2 at element i (the residuals present, in that order).
inline float add_residuals(const conv_args &a, float v, size_t i) {
    if (a.res) v += a.res[i];
    if (a.res2) v += a.res2[i];
    return v;
}

// Output columns per strip (NX vectors): the widest that does not waste much on the padding
// of the last strip (a narrower strip costs more per column: more loads per FMA).
int pick_nx(int width) {
    static const float cost[4] = {0.0f, 1.35f, 1.1f, 1.0f};
    int best = 1;
    float best_cost = 1e30f;
    for (int nx = NX_MAX; nx >= 1; --nx) {
        const int sw = nx * VW;
        const float c = (float)((width + sw - 1) / sw * sw) * cost[nx];
        if (c < best_cost) best_cost = c, best = nx;
    }
    return best;
}

// G g for 3 values: 6 outputs.
inline void wino_filter3(const float g[3], float t[6]) {
    t[0] = 0.25f * g[0];
    t[1] = (g[0] + g[1] + g[2]) * (-1.0f / 6);
    t[2] = (g[0] - g[1] + g[2]) * (-1.0f / 6);
    t[3] = g[0] * (1.0f / 24) + g[1] * (1.0f / 12) + g[2] * (1.0f / 6);
    t[4] = g[0] * (1.0f / 24) - g[1] * (1.0f / 12) + g[2] * (1.0f / 6);
    t[5] = g[2];
}

// U = G g G^T for the blocks [b0, b1) of MR = gemm_tile_rows() output channels of w
// [3, 3, cin, cout] (f32 or f16), packed as the GEMM's A operand: u[xi][blk][ci][r] is output
// channel blk * MR + r (0 past cout), xi = 6 * row + col of the 6x6 transform.
void wino_weights(const ggml_tensor *w, int b0, int b1, float *u) {
    const int cin = (int)w->ne[2], cout = (int)w->ne[3], MR = gemm_tile_rows(), nblk = (cout + MR - 1) / MR;
    // one block at a time into tmp [36][cin][MR], then 36 contiguous copies
    thread_local std::vector<float> tmp;
    tmp.resize((size_t)36 * cin * MR);
    for (int blk = b0; blk < b1; ++blk) {
        std::fill(tmp.begin(), tmp.end(), 0.0f);
        for (int co = blk * MR; co < std::min(cout, (blk + 1) * MR); ++co) {
            for (int ci = 0; ci < cin; ++ci) {
                const size_t i0 = ((size_t)co * cin + ci) * 9;
                float g[9];  // [ky][kx]
                for (int k = 0; k < 9; ++k) {
                    g[k] = w->type == GGML_TYPE_F16 ? ggml_fp16_to_fp32(((const ggml_fp16_t *)w->data)[i0 + k])
                                                    : ((const float *)w->data)[i0 + k];
                }
                float cols[3][6];  // G g, per kx
                for (int kx = 0; kx < 3; ++kx) {
                    const float gk[3] = {g[kx], g[3 + kx], g[6 + kx]};
                    wino_filter3(gk, cols[kx]);
                }
                for (int i = 0; i < 6; ++i) {
                    const float r[3] = {cols[0][i], cols[1][i], cols[2][i]};
                    float t[6];
                    wino_filter3(r, t);
                    for (int j = 0; j < 6; ++j) tmp[((size_t)(i * 6 + j) * cin + ci) * MR + co - blk * MR] = t[j];
                }
            }
        }
        for (int xi = 0; xi < 36; ++xi) {
            std::memcpy(u + ((size_t)xi * nblk + blk) * cin * MR, tmp.data() + (size_t)xi * cin * MR,
                        (size_t)cin * MR * sizeof(float));
        }
    }
}

void wino_weights_compute(ggml_tensor *dst, int ith, int nth, void *) {
    const int nblk = (int)dst->ne[2];
    wino_weights(dst->src[0], nblk * ith / nth, nblk * (ith + 1) / nth, (float *)dst->data);
}

// The weight transform as its own node, split across threads (recomputed per call: about 1 % of
// the convolution's work).
ggml_tensor *wino_weights_node(ggml_context *ctx, ggml_tensor *w) {
    const int MR = gemm_tile_rows();
    return ggml_custom_4d(ctx, GGML_TYPE_F32, MR, w->ne[2], (w->ne[3] + MR - 1) / MR, 36, &w, 1, wino_weights_compute,
                          GGML_N_TASKS_MAX, nullptr);
}

#if defined(__GNUC__)
// dst[i] = relu ? max(src[i], 0) : src[i] for i < n (NaN kept, as PyTorch's ReLU)
inline void copy_row(float *dst, const float *src, int n, bool relu) {
    if (!relu) {
        std::memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    }
    int i = 0;
    for (; i + VW <= n; i += VW) {
        const vf v = loadu(src + i);
        storeu(dst + i, vrelu(v));
    }
    for (; i < n; ++i) dst[i] = src[i] <= 0.0f ? 0.0f : src[i];
}

// acc[o][j] = bias + sum over (ci, ky, kx) of w * input, for OCB outputs and NX*VW columns from
// x0. Input row (ci, ky) starts at rows + (ci*KS + ky)*L; tap kx reads column x0 + kx + j*VW.
template <int KS, int NX>
inline void strip_kernel(const float *rows, size_t L, const float *wblk, int cin, const float *bias, vf acc[OCB][NX],
                         size_t x0) {
    for (int o = 0; o < OCB; ++o)
        for (int j = 0; j < NX; ++j) acc[o][j] = splat(bias[o]);
    for (int ci = 0; ci < cin; ++ci) {
        for (int ky = 0; ky < KS; ++ky) {
            const float *r = rows + ((size_t)ci * KS + ky) * L + x0;
            const float *wk = wblk + ((size_t)ci * KS * KS + ky * KS) * OCB;
#pragma GCC unroll 3
            for (int kx = 0; kx < KS; ++kx) {
                vf v[NX];
#pragma GCC unroll 4
                for (int j = 0; j < NX; ++j) v[j] = loadu(r + kx + j * VW);
#pragma GCC unroll 16
                for (int o = 0; o < OCB; ++o) {
                    const vf wv = splat(wk[kx * OCB + o]);
#pragma GCC unroll 4
                    for (int j = 0; j < NX; ++j) acc[o][j] += wv * v[j];
                }
            }
        }
    }
}

// Writes one strip: ReLU, residual, partial last strip through tmp.
template <int NX>
inline void store_strip(const conv_args &a, const vf acc[OCB][NX], int noc, size_t out0, size_t ostride, int ncol,
                        float *tmp) {
    for (int o = 0; o < noc; ++o) {
        const size_t off = out0 + (size_t)o * ostride;
        float *out = ncol == NX * VW ? a.y + off : tmp;
        for (int j = 0; j < NX; ++j) {
            vf v = acc[o][j];
            if (a.relu_out) v = vrelu(v);
            if (a.res && ncol == NX * VW) v += loadu(a.res + off + j * VW);
            if (a.res2 && ncol == NX * VW) v += loadu(a.res2 + off + j * VW);
            storeu(out + j * VW, v);
        }
        if (ncol != NX * VW) {
            for (int i = 0; i < ncol; ++i) a.y[off + i] = add_residuals(a, tmp[i], off + i);
        }
    }
}

// 3x3: per output row, the 3 input rows of every channel are copied (ReLU applied) into a
// zero-padded buffer, then every output block runs over it in strips.
template <int NX>
void conv3x3_rows(const conv_args &a, conv_scratch &s, int r0, int r1) {
    constexpr int SW = NX * VW;
    const int W = a.W, H = a.H, cin = a.cin, cout = a.cout;
    const size_t L = (size_t)(W + SW - 1) / SW * SW + 2;  // index 0 = column -1
    s.rows.assign((size_t)cin * 3 * L, 0.0f);
    s.tmp.resize(SW);
    const int nblk = (cout + OCB - 1) / OCB;
    for (int r = r0; r < r1; ++r) {
        const int n = r / H, y = r % H;
        for (int ci = 0; ci < cin; ++ci) {
            for (int ky = 0; ky < 3; ++ky) {
                float *dst = s.rows.data() + ((size_t)ci * 3 + ky) * L + 1;
                const int yy = y + ky - 1;
                if (yy < 0 || yy >= H) {
                    std::fill(dst, dst + W, 0.0f);
                    continue;
                }
                const float *src = a.x + (((size_t)n * cin + ci) * H + yy) * W;
                copy_row(dst, src, W, a.relu_in);
            }
        }
        for (int bi = 0; bi < nblk; ++bi) {
            const float *wblk = a.wpk + (size_t)bi * cin * 9 * OCB;
            const int oc0 = bi * OCB, noc = std::min(OCB, cout - oc0);
            for (int x0 = 0; x0 < W; x0 += SW) {
                vf acc[OCB][NX];
                strip_kernel<3, NX>(s.rows.data(), L, wblk, cin, s.bias.data() + oc0, acc, (size_t)x0);
                store_strip<NX>(a, acc, noc, (((size_t)n * cout + oc0) * H + y) * W + x0, (size_t)H * W,
                                std::min(SW, W - x0), s.tmp.data());
            }
        }
    }
}

// 1x1: a matrix product over channels; each plane is one long row of H*W pixels, read in place.
template <int NX>
void conv1x1_strips(const conv_args &a, conv_scratch &s, int64_t s0, int64_t s1) {
    constexpr int SW = NX * VW;
    const size_t P = (size_t)a.W * a.H;
    const int64_t per_plane = (int64_t)((P + SW - 1) / SW);
    const int nblk = (a.cout + OCB - 1) / OCB;
    s.tmp.resize(SW);
    std::vector<float> &edge = s.rows;  // the last, partial strip of every channel, zero-padded
    for (int64_t st = s0; st < s1; ++st) {
        const int n = (int)(st / per_plane);
        const size_t x0 = (size_t)(st % per_plane) * SW;
        const int ncol = (int)std::min<size_t>(SW, P - x0);
        const float *plane = a.x + (size_t)n * a.cin * P;
        const float *rows = plane;
        size_t L = P, xs = x0;
        if (ncol != SW) {  // copy the tail so full vectors can be read
            edge.assign((size_t)a.cin * SW, 0.0f);
            for (int ci = 0; ci < a.cin; ++ci) std::memcpy(&edge[(size_t)ci * SW], plane + ci * P + x0, ncol * sizeof(float));
            rows = edge.data(), L = SW, xs = 0;
        }
        for (int bi = 0; bi < nblk; ++bi) {
            const int oc0 = bi * OCB, noc = std::min(OCB, a.cout - oc0);
            vf acc[OCB][NX];
            strip_kernel<1, NX>(rows, L, a.wpk + (size_t)bi * a.cin * OCB, a.cin, s.bias.data() + oc0, acc, xs);
            store_strip<NX>(a, acc, noc, ((size_t)n * a.cout + oc0) * P + x0, P, ncol, s.tmp.data());
        }
    }
}

// ---- 3x3 by Winograd F(4x4, 3x3) ----
// ref: Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016), F(4x4, 3x3)
// with points 0, +-1, +-2, inf: per 6x6 input tile d (stride 4) and filter g,
// Y = A^T [(G g G^T) . (B^T d B)] A gives a 4x4 output tile; the 36 products over channels are
// 36 GEMMs [Cout x Cin] x [Cin x tiles] (the linears' micro-kernel), 4x fewer multiplies than
// the direct sum. Transforms are vectorized over tiles: rows first (vectors along x), then the
// columns of every 4th x, gathered by shuffles.

// B^T d for 6 values (one column of a tile), in place of the matrix product.
template <class T>
inline void wino_in6(const T d[6], T t[6]) {
    const T a = d[4] - 4.0f * d[2], b = d[3] - 4.0f * d[1];
    const T c = d[4] - d[2], e = 2.0f * (d[3] - d[1]);
    t[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
    t[1] = a + b;
    t[2] = a - b;
    t[3] = c + e;
    t[4] = c - e;
    t[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
}

// A^T m for 6 values: 4 outputs.
template <class T>
inline void wino_out6(const T m[6], T y[4]) {
    const T s12 = m[1] + m[2], d12 = m[1] - m[2], s34 = m[3] + m[4], d34 = m[3] - m[4];
    y[0] = m[0] + s12 + s34;
    y[1] = d12 + 2.0f * d34;
    y[2] = s12 + 4.0f * s34;
    y[3] = d12 + 8.0f * d34 + m[5];
}

// Deinterleaving by 4: c[j][l] = element 4 l + j of the 4 VW floats in a[0..3]; interleave4 is the
// inverse. __builtin_shuffle picks lanes from two vectors, so two levels of shuffles each.
struct shuffle_masks {
    vi pick0, pick1;  // (x, y) -> [lanes 4l + k of x:y for l < VW/2 | the same for k + 2], k = 0, 1
    vi lo, hi;        // (p, q) -> [first halves of p, q] / [second halves of p, q]
    vi ilv;           // (p, r) -> lane l takes column l % 4 of tile l / 4 (p: columns 0, 2; r: 1, 3)
    shuffle_masks() {
        for (int l = 0; l < VW; ++l) {
            const bool first = l < VW / 2;
            pick0[l] = first ? 4 * l : 4 * (l - VW / 2) + 2;
            pick1[l] = pick0[l] + 1;
            lo[l] = first ? l : l + VW / 2;
            hi[l] = first ? l + VW / 2 : l + VW;
            ilv[l] = (l % 4 % 2 ? VW : 0) + (l % 4 / 2) * (VW / 2) + l / 4;
        }
    }
};
inline void deinterleave4(const shuffle_masks &k, const vf a[4], vf c[4]) {
    const vf p0 = shuffle2(a[0], a[1], k.pick0), q0 = shuffle2(a[2], a[3], k.pick0);  // c0 | c2
    const vf p1 = shuffle2(a[0], a[1], k.pick1), q1 = shuffle2(a[2], a[3], k.pick1);  // c1 | c3
    c[0] = shuffle2(p0, q0, k.lo), c[2] = shuffle2(p0, q0, k.hi);
    c[1] = shuffle2(p1, q1, k.lo), c[3] = shuffle2(p1, q1, k.hi);
}
inline void interleave4(const shuffle_masks &k, const vf c[4], vf a[4]) {
    // p = [c0 | c2] first halves, q = second halves; r, s the same for c1, c3
    const vf p = shuffle2(c[0], c[2], k.lo), q = shuffle2(c[0], c[2], k.hi);
    const vf r = shuffle2(c[1], c[3], k.lo), s = shuffle2(c[1], c[3], k.hi);
    const vi next = k.ilv + VW / 4;  // the next VW / 4 tiles
    a[0] = shuffle2(p, r, k.ilv), a[1] = shuffle2(p, r, next);
    a[2] = shuffle2(q, s, k.ilv), a[3] = shuffle2(q, s, next);
}

struct wino_scratch {
    std::vector<float> rows;  // 6 input rows of one segment (ReLU, zero padding) [6][4 * TV]
    std::vector<float> rtmp;  // resized input rows: resize_row_ac scratch
    std::vector<float> cols;  // B^T d rows split by column mod 4: [6][4][TV + 1]
    std::vector<float> v;     // [36][cin][NP] transformed input of one chunk of tiles
    std::vector<float> m;     // [36][MR][NP] products for MR output channels
};

// Input transform of tiles [tx0, tx1) of tile row ty of image n, every channel, into
// v[xi][ci][off + tx - tx0]; vector stores may write up to VW - 1 tiles past tx1.
void wino_input(const conv_args &args, wino_scratch &s, int n, int ty, int tx0, int tx1, size_t off, size_t NP) {
    const conv_args a = args;  // a local copy: the vector stores (memcpy) cannot change it, so no reloads
    const int W = a.W, H = a.H, cin = a.cin, nt = tx1 - tx0;
    const int TV = (nt + VW) / VW * VW;  // tiles + 1 (c[0] of tile nt), whole vectors
    static const shuffle_masks km;
    const size_t LR = (size_t)4 * TV, LC = (size_t)TV + 1;
    s.rows.resize(6 * LR);
    s.cols.assign(24 * LC, 0.0f);  // index TV stays 0
    // the buffers through locals, for the same reason
    float *const rows = s.rows.data(), *const cols = s.cols.data(), *const v = s.v.data(), *const rtmp = s.rtmp.data();
    // rows[i][k] = column 4 tx0 - 1 + k of input row 4 ty - 1 + i (0 outside the map)
    const int c0 = 4 * tx0 - 1, k0 = std::max(0, -c0), k1 = std::min<int>((int)LR, W - c0);
    for (int ci = 0; ci < cin; ++ci) {
        const float *plane = a.rs ? nullptr : a.x + ((size_t)n * cin + ci) * H * W;
        for (int i = 0; i < 6; ++i) {
            float *dst = rows + i * LR;
            const int y = 4 * ty - 1 + i;
            if (y < 0 || y >= H) {
                std::fill(dst, dst + LR, 0.0f);
                continue;
            }
            std::fill(dst, dst + k0, 0.0f);
            if (a.rs) {
                const int half = cin / 2;
                const float *ex = a.uvx && ci < half ? a.uvx + (size_t)ci * W : nullptr;
                const float ey = a.uvy && ci >= half ? a.uvy[(size_t)(ci - half) * H + y] : 0.0f;
                resize_row_ac(a.rs + ((size_t)n * cin + ci) * a.rs_h * a.rs_w, a.rs_w, a.rs_h, H, y, a.rs_x0, a.rs_wx,
                              c0 + k0, c0 + k1, ex, ey, rtmp, dst + k0);
                if (a.relu_in) copy_row(dst + k0, dst + k0, k1 - k0, true);
            } else {
                copy_row(dst + k0, plane + (size_t)y * W + c0 + k0, k1 - k0, a.relu_in);
            }
            std::fill(dst + k1, dst + LR, 0.0f);
        }
        // tile t reads rows[.][4t ... 4t + 5]: after B^T down the rows, c[j][t] = index 4t + j
        // (j < 4, by deinterleaving); indices 4t + 4, 4t + 5 are c[0][t + 1], c[1][t + 1]
        for (int t0 = 0; t0 < TV; t0 += VW) {
            vf d[6][4];
            for (int i = 0; i < 6; ++i)
                for (int q = 0; q < 4; ++q) d[i][q] = loadu(rows + i * LR + 4 * t0 + q * VW);
            for (int q = 0; q < 4; ++q) {
                vf col[6], t[6];
                for (int i = 0; i < 6; ++i) col[i] = d[i][q];
                wino_in6(col, t);
                for (int i = 0; i < 6; ++i) d[i][q] = t[i];
            }
            for (int i = 0; i < 6; ++i) {
                vf c[4];
                deinterleave4(km, d[i], c);
                for (int j = 0; j < 4; ++j) storeu(cols + (size_t)(i * 4 + j) * LC + t0, c[j]);
            }
        }
        // B along the columns, VW tiles at a time
        for (int t0 = 0; t0 < nt; t0 += VW) {
            for (int i = 0; i < 6; ++i) {
                const float *cp = cols + (size_t)i * 4 * LC + t0;
                vf e[6], t[6];
                for (int j = 0; j < 4; ++j) e[j] = loadu(cp + j * LC);
                e[4] = loadu(cp + 1), e[5] = loadu(cp + LC + 1);
                wino_in6(e, t);
                for (int j = 0; j < 6; ++j) storeu(v + ((size_t)(i * 6 + j) * cin + ci) * NP + off + t0, t[j]);
            }
        }
    }
}

// The fused 1x1 (conv_args::w2): 3x3 output channel co of row y, columns [x0, x0 + ncol), added
// into the c2 outputs (the first channel starts them at b2).
inline void accumulate_1x1(const conv_args &a, const vf row[4], int co, int n, int y, int x0, int ncol) {
    for (int o2 = 0; o2 < a.c2; ++o2) {
        float *out = a.y + (((size_t)n * a.c2 + o2) * a.H + y) * a.W + x0;
        const vf wv = splat(a.w2[(size_t)o2 * a.cout + co]), b = splat(a.b2[o2]);
        int q = 0;
        for (; (q + 1) * VW <= ncol; ++q) storeu(out + q * VW, (co == 0 ? b : loadu(out + q * VW)) + wv * row[q]);
        if (q * VW < ncol) {  // a partial vector through a copy: the same vector arithmetic
            float part[VW] = {};
            if (co != 0) std::memcpy(part, out + q * VW, (size_t)(ncol - q * VW) * sizeof(float));
            storeu(part, (co == 0 ? b : loadu(part)) + wv * row[q]);
            std::memcpy(out + q * VW, part, (size_t)(ncol - q * VW) * sizeof(float));
        }
    }
}

// Output transform of tiles [tx0, tx1) of tile row ty of image n, output channels [co0, co1),
// from m[xi][co - co0][off + tx - tx0] (rows NP apart), then bias, ReLU, residual; writes output
// columns [4 tx0, min(W, 4 tx1)) of rows 4 ty ... 4 ty + 3.
void wino_output(const conv_args &args, const float *mb, int co0, int co1, int n, int ty, int tx0, int tx1, size_t off,
                 size_t NP) {
    const conv_args a = args;  // a local copy: the vector stores (memcpy) cannot change it, so no reloads
    const int W = a.W, H = a.H, cout = a.cout, nt = tx1 - tx0, xend = std::min(W, 4 * tx1);
    const size_t xi_stride = (size_t)(co1 - co0) * NP;
    static const shuffle_masks km;
    for (int co = co0; co < co1; ++co) {
        const vf bias = splat(a.bias[co]);
        const float *m = mb + (size_t)(co - co0) * NP + off;
        for (int t0 = 0; t0 < nt; t0 += VW) {
            vf h[6][4];  // A^T along the columns
            for (int i = 0; i < 6; ++i) {
                vf e[6];
                for (int j = 0; j < 6; ++j) e[j] = loadu(m + (i * 6 + j) * xi_stride + t0);
                wino_out6(e, h[i]);
            }
            vf y[4][4];  // A^T down the rows: [row][column mod 4]
            for (int c = 0; c < 4; ++c) {
                vf e[6], o[4];
                for (int i = 0; i < 6; ++i) e[i] = h[i][c];
                wino_out6(e, o);
                for (int rr = 0; rr < 4; ++rr) y[rr][c] = o[rr];
            }
            const int x0 = 4 * (tx0 + t0), ncol = std::min(4 * VW, xend - x0);
            for (int rr = 0; rr < 4 && 4 * ty + rr < H; ++rr) {
                for (int c = 0; c < 4; ++c) {
                    y[rr][c] += bias;
                    if (a.relu_out) y[rr][c] = vrelu(y[rr][c]);
                }
                vf row[4];
                interleave4(km, y[rr], row);
                if (a.w2) {
                    accumulate_1x1(a, row, co, n, 4 * ty + rr, x0, ncol);
                    continue;
                }
                const size_t o = (((size_t)n * cout + co) * H + 4 * ty + rr) * W + x0;
                int q = 0;
                for (; (q + 1) * VW <= ncol; ++q) {
                    vf v = row[q];
                    if (a.res) v += loadu(a.res + o + q * VW);
                    if (a.res2) v += loadu(a.res2 + o + q * VW);
                    storeu(a.y + o + q * VW, v);
                }
                for (int i = q * VW; i < ncol; ++i) a.y[o + i] = add_residuals(a, row[q][i - q * VW], o + i);
            }
        }
    }
}

// Tiles [t0, t1) of the N * ceil(H/4) * ceil(W/4), flattened row after row, in chunks of one
// GEMM panel (NR tiles). Per chunk: the input transform (kept in L2), then per MR output
// channels the 36 GEMM tiles and at once their output transform (the products stay in L1/L2).
void conv3x3_wino(const conv_args &a, wino_scratch &s, int64_t t0, int64_t t1) {
    const int tw = (a.W + 3) / 4, th = (a.H + 3) / 4, cin = a.cin, cout = a.cout;
    const int MRg = gemm_tile_rows(), TC = gemm_tile_cols(), nblk = (cout + MRg - 1) / MRg;
    const int64_t total = t1 - t0;
    const size_t NP = (size_t)TC + VW;  // + VW: vector stores past a chunk's last tile
    s.v.resize((size_t)36 * cin * NP);
    s.m.resize((size_t)36 * MRg * NP);
    if (a.rs) s.rtmp.resize(resize_row_tmp_size(a.rs_w));
    // the tile-row segments of chunk [f0, f1), at their offsets within the chunk
    auto segments = [&](int64_t f0, int64_t f1, auto &&fn) {
        for (int64_t f = f0; f < f1;) {
            const int row = (int)((t0 + f) / tw), tx0 = (int)((t0 + f) % tw);
            const int tx1 = (int)std::min<int64_t>(tw, tx0 + (f1 - f));
            fn(row / th, row % th, tx0, tx1, (size_t)(f - f0));
            f += tx1 - tx0;
        }
    };
    for (int64_t f0 = 0; f0 < total; f0 += TC) {
        const int64_t f1 = std::min(total, f0 + TC);
        segments(f0, f1, [&](int n, int ty, int tx0, int tx1, size_t off) { wino_input(a, s, n, ty, tx0, tx1, off, NP); });
        for (int co0 = 0; co0 < cout; co0 += MRg) {
            const int R = std::min(MRg, cout - co0);
            for (int xi = 0; xi < 36; ++xi) {
                gemm_tile_f32_packed_a(R, cin, a.u + ((size_t)xi * nblk + co0 / MRg) * cin * MRg,
                                       s.v.data() + (size_t)xi * cin * NP, NP, s.m.data() + (size_t)xi * R * NP, NP);
            }
            segments(f0, f1, [&](int n, int ty, int tx0, int tx1, size_t off) {
                wino_output(a, s.m.data(), co0, co0 + R, n, ty, tx0, tx1, off, NP);
            });
        }
    }
}
#endif

// Winograd pays off when a GEMM panel of tiles is mostly real tiles (wide maps) and the channel
// counts amortize the transforms; the small maps of the head's coarse levels stay direct.
bool use_winograd(int64_t W, int64_t H, int64_t cin, int64_t cout) {
#if defined(__GNUC__)
    return W >= 64 && H >= 4 && cin >= 16 && cout >= 16;
#else
    (void)W, (void)H, (void)cin, (void)cout;
    return false;
#endif
}

void conv_compute(ggml_tensor *dst, int ith, int nth, void *userdata) {
    const unsigned flags = (unsigned)(uintptr_t)userdata;
    const ggml_tensor *x = dst->src[0];
    const ggml_tensor *w = dst->src[1];
    int next = 2;
    const ggml_tensor *b = (flags & HAS_BIAS) ? dst->src[next++] : nullptr;
    const ggml_tensor *res = (flags & HAS_RES) ? dst->src[next++] : nullptr;
    const ggml_tensor *res2 = (flags & HAS_RES2) ? dst->src[next++] : nullptr;
    const ggml_tensor *u = (flags & HAS_WINO) ? dst->src[next++] : nullptr;
    const ggml_tensor *pk = (flags & HAS_PACKED) ? dst->src[next++] : nullptr;
    const ggml_tensor *uvx = (flags & HAS_UV) ? dst->src[next++] : nullptr;
    const ggml_tensor *uvy = (flags & HAS_UV) ? dst->src[next++] : nullptr;
    const ggml_tensor *w2 = (flags & HAS_1X1) ? dst->src[next++] : nullptr;
    const ggml_tensor *b2 = (flags & HAS_1X1_BIAS) ? dst->src[next++] : nullptr;
    conv_args a;
    a.KS = (int)w->ne[0];
    a.W = (int)dst->ne[0], a.H = (int)dst->ne[1], a.cin = (int)x->ne[2], a.N = (int)x->ne[3];
    thread_local std::vector<float> w2f, b2f;
    if (w2) {  // [1, 1, cout, c2] f32 or f16 -> [c2][cout] f32, bias or zeros
        a.c2 = (int)w2->ne[3];
        w2f.resize(ggml_nelements(w2));
        if (w2->type == GGML_TYPE_F16) {
            ggml_fp16_to_fp32_row((const ggml_fp16_t *)w2->data, w2f.data(), ggml_nelements(w2));
        } else {
            std::memcpy(w2f.data(), w2->data, w2f.size() * sizeof(float));
        }
        b2f.assign(a.c2, 0.0f);
        if (b2) std::memcpy(b2f.data(), b2->data, (size_t)a.c2 * sizeof(float));
        a.w2 = w2f.data(), a.b2 = b2f.data();
    }
    a.cout = (int)w->ne[3];
    a.relu_in = flags & CONV_RELU_IN, a.relu_out = flags & CONV_RELU_OUT;
    a.x = (const float *)x->data, a.res = res ? (const float *)res->data : nullptr, a.y = (float *)dst->data;
    a.res2 = res2 ? (const float *)res2->data : nullptr;
    a.u = u ? (const float *)u->data : nullptr;
    a.wpk = pk ? (const float *)pk->data : nullptr;
    thread_local std::vector<int> rs_x0;
    thread_local std::vector<float> rs_wx;
    if (flags & HAS_RESIZE) {
        a.rs = a.x, a.x = nullptr;
        a.rs_w = (int)x->ne[0], a.rs_h = (int)x->ne[1];
        a.uvx = uvx ? (const float *)uvx->data : nullptr, a.uvy = uvy ? (const float *)uvy->data : nullptr;
        rs_x0.resize(a.W), rs_wx.resize(a.W);
        resize_columns_ac(a.rs_w, a.W, rs_x0.data(), rs_wx.data());
        a.rs_x0 = rs_x0.data(), a.rs_wx = rs_wx.data();
    }

    thread_local conv_scratch s;
    const int nblk = (a.cout + OCB - 1) / OCB;
    s.bias.assign((size_t)nblk * OCB, 0.0f);
    if (b) std::memcpy(s.bias.data(), b->data, (size_t)a.cout * sizeof(float));
    a.bias = s.bias.data();

#if defined(__GNUC__)
    (void)ith;
    // the work in chunks taken in turn (cpu_work.h): panels of Winograd tiles, output rows of the
    // direct 3x3, pixel strips of the 1x1
    auto chunks = [&](int64_t total, auto &&fn) {
        const int64_t n = chunk_ranges(nth, 1, total);
        for_each_chunk(dst, nth, n, [&](int64_t c) { fn(total * c / n, total * (c + 1) / n); });
    };
    if (u) {
        thread_local wino_scratch ws;
        // chunks of whole GEMM panels of tiles: only the map's last panel is partly empty
        const int64_t tiles = (int64_t)a.N * ((a.H + 3) / 4) * ((a.W + 3) / 4), TC = gemm_tile_cols();
        chunks((tiles + TC - 1) / TC, [&](int64_t g0, int64_t g1) {
            conv3x3_wino(a, ws, g0 * TC, std::min(tiles, g1 * TC));
        });
    } else if (a.KS == 3) {
        const int nx = pick_nx(a.W);
        chunks(a.N * a.H, [&](int64_t r0, int64_t r1) {
            switch (nx) {
                case 3: conv3x3_rows<NX_MAX == 3 ? 3 : 2>(a, s, (int)r0, (int)r1); break;
                case 2: conv3x3_rows<2>(a, s, (int)r0, (int)r1); break;
                default: conv3x3_rows<1>(a, s, (int)r0, (int)r1); break;
            }
        });
    } else {
        const int64_t P = (int64_t)a.W * a.H;
        const int nx = pick_nx((int)std::min<int64_t>(P, 1 << 30));
        const int64_t sw = (int64_t)nx * VW;
        chunks(a.N * ((P + sw - 1) / sw), [&](int64_t s0, int64_t s1) {
            switch (nx) {
                case 3: conv1x1_strips<NX_MAX == 3 ? 3 : 2>(a, s, s0, s1); break;
                case 2: conv1x1_strips<2>(a, s, s0, s1); break;
                default: conv1x1_strips<1>(a, s, s0, s1); break;
            }
        });
    }
#else
    // portable fallback: direct sums with bounds checks
    const int R = a.KS / 2;
    const int total = a.N * a.cout, per = (total + nth - 1) / nth;
    for (int t = std::min(total, ith * per); t < std::min(total, ith * per + per); ++t) {
        const int n = t / a.cout, co = t % a.cout;
        for (int y = 0; y < a.H; ++y)
            for (int xx = 0; xx < a.W; ++xx) {
                float acc = s.bias[co];
                for (int ci = 0; ci < a.cin; ++ci)
                    for (int ky = 0; ky < a.KS; ++ky)
                        for (int kx = 0; kx < a.KS; ++kx) {
                            const int yy = y + ky - R, xs = xx + kx - R;
                            if (yy < 0 || yy >= a.H || xs < 0 || xs >= a.W) continue;
                            float v = a.x[(((size_t)n * a.cin + ci) * a.H + yy) * a.W + xs];
                            if (a.relu_in && v < 0.0f) v = 0.0f;
                            acc += a.wpk[((size_t)(co / OCB) * a.cin * a.KS * a.KS + ((size_t)ci * a.KS + ky) * a.KS + kx) * OCB +
                                         co % OCB] * v;
                        }
                if (a.relu_out && acc < 0.0f) acc = 0.0f;
                const size_t off = (((size_t)n * a.cout + co) * a.H + y) * a.W + xx;
                a.y[off] = add_residuals(a, acc, off);
            }
    }
#endif
}

}  // namespace

// conv_cpu and conv3x3_resized_cpu: the output is [W, H, Cout, N]; x is resized to (W, H) inside
// the convolution when its size differs (Winograd only), with the UV embedding uvx/uvy if given.
static ggml_tensor *conv_node(ggml_context *ctx, ggml_tensor *x, ggml_tensor *w, ggml_tensor *b, ggml_tensor *res,
                              ggml_tensor *res2, unsigned flags, int64_t W, int64_t H, ggml_tensor *uvx,
                              ggml_tensor *uvy, ggml_tensor *w2 = nullptr, ggml_tensor *b2 = nullptr) {
    if (res2 && !res) res = res2, res2 = nullptr;
    const int64_t ks = w->ne[0], cin = x->ne[2], cout = w->ne[3];
    const bool resize = W != x->ne[0] || H != x->ne[1];
    const bool wino = ks == 3 && use_winograd(W, H, cin, cout);
    if (x->type != GGML_TYPE_F32 || !ggml_is_contiguous(x) || (ks != 1 && ks != 3) || w->ne[1] != ks ||
        w->ne[2] != cin || (w->type != GGML_TYPE_F32 && w->type != GGML_TYPE_F16) || !ggml_is_contiguous(w) ||
        (ks == 1 && (flags & CONV_RELU_IN)) || (resize && !wino) || (uvx == nullptr) != (uvy == nullptr) ||
        (uvx && (!resize || uvx->type != GGML_TYPE_F32 || uvy->type != GGML_TYPE_F32 || cin % 2 ||
                 ggml_nelements(uvx) != W * cin / 2 || ggml_nelements(uvy) != H * cin / 2)) ||
        (w2 && (!wino || res || w2->ne[0] != 1 || w2->ne[1] != 1 || w2->ne[2] != cout ||
                (w2->type != GGML_TYPE_F32 && w2->type != GGML_TYPE_F16) || !ggml_is_contiguous(w2) ||
                (b2 && (b2->type != GGML_TYPE_F32 || ggml_nelements(b2) != w2->ne[3]))))) {
        fail(DA3_ERR_INTERNAL, "conv_cpu: unsupported operand layout");
    }
    ggml_tensor *args[10] = {x, w};
    int n_args = 2;
    if (b) {
        if (b->type != GGML_TYPE_F32 || ggml_nelements(b) != cout) fail(DA3_ERR_INTERNAL, "conv_cpu: bad bias");
        args[n_args++] = b;
        flags |= HAS_BIAS;
    }
    for (ggml_tensor *r : {res, res2}) {
        if (!r) continue;
        if (r->type != GGML_TYPE_F32 || !ggml_is_contiguous(r) || r->ne[0] != W || r->ne[1] != H || r->ne[2] != cout ||
            r->ne[3] != x->ne[3]) {
            fail(DA3_ERR_INTERNAL, "conv_cpu: bad residual");
        }
        args[n_args++] = r;
        flags |= r == res ? HAS_RES : HAS_RES2;
    }
    if (wino) {
        args[n_args++] = wino_weights_node(ctx, w);
        flags |= HAS_WINO;
    } else {
        args[n_args++] = pack_weights_node(ctx, w);
        flags |= HAS_PACKED;
    }
    if (resize) flags |= HAS_RESIZE;
    if (uvx) args[n_args++] = uvx, args[n_args++] = uvy, flags |= HAS_UV;
    if (w2) args[n_args++] = w2, flags |= HAS_1X1;
    if (w2 && b2) args[n_args++] = b2, flags |= HAS_1X1_BIAS;
    return with_work_counter(ggml_custom_4d(ctx, GGML_TYPE_F32, W, H, w2 ? w2->ne[3] : cout, x->ne[3], args, n_args,
                                            conv_compute, GGML_N_TASKS_MAX, (void *)(uintptr_t)flags));
}

ggml_tensor *conv_cpu(ggml_context *ctx, ggml_tensor *x, ggml_tensor *w, ggml_tensor *b, ggml_tensor *res,
                     unsigned flags, ggml_tensor *res2) {
    return conv_node(ctx, x, w, b, res, res2, flags, x->ne[0], x->ne[1], nullptr, nullptr);
}

bool conv3x3_fuses_resize(int64_t w, int64_t h, const ggml_tensor *x, const ggml_tensor *wt) {
    return wt->ne[0] == 3 && use_winograd(w, h, x->ne[2], wt->ne[3]);
}

ggml_tensor *conv3x3_resized_cpu(ggml_context *ctx, ggml_tensor *x, int w, int h, ggml_tensor *uvx, ggml_tensor *uvy,
                                 ggml_tensor *wt, ggml_tensor *b, unsigned flags, ggml_tensor *w1x1, ggml_tensor *b1x1) {
    if (!conv3x3_fuses_resize(w, h, x, wt)) fail(DA3_ERR_INTERNAL, "conv3x3_resized_cpu: not a Winograd shape");
    return conv_node(ctx, x, wt, b, nullptr, nullptr, flags, w, h, uvx, uvy, w1x1, b1x1);
}

}  // namespace da3
