// The convolution's Winograd F(4x4, 3x3) path for the wide 3x3 layers of the DPT head (see the
// comment below); the 36 products run on the linears' GEMM micro-kernel (gemm_tile_f32_packed_a).
#include "kernels/cpu_conv_impl.h"

#include "common.h"
#include "kernels/cpu_kernels.h"
#include "kernels/cpu_gemm.h"
#include "kernels/cpu_simd.h"
#include "kernels/cpu_work.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace da3 {
namespace conv {
namespace {

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

#if defined(__GNUC__)
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
// inverse. shuffle2 (cpu_simd.h) picks lanes from two vectors, so two levels of shuffles each.
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
}  // namespace

// The weight transform as its own node, split across threads (recomputed per call: about 1 % of
// the convolution's work).
ggml_tensor *wino_weights_node(ggml_context *ctx, ggml_tensor *w) {
    const int MR = gemm_tile_rows();
    return ggml_custom_4d(ctx, GGML_TYPE_F32, MR, w->ne[2], (w->ne[3] + MR - 1) / MR, 36, &w, 1, wino_weights_compute,
                          GGML_N_TASKS_MAX, nullptr);
}

void conv3x3_winograd(const conv_args &a, int64_t t0, int64_t t1) {
#if defined(__GNUC__)
    thread_local wino_scratch ws;
    conv3x3_wino(a, ws, t0, t1);
#else
    (void)a, (void)t0, (void)t1;
    fail(DA3_ERR_INTERNAL, "conv_cpu: Winograd needs vector extensions");
#endif
}

}  // namespace conv
}  // namespace da3
