// The convolution's direct kernels: register-blocked 3x3 and 1x1 (OCB output channels x NX
// vectors of columns per inner loop), see cpu_conv_impl.h.
#include "kernels/cpu_conv_impl.h"

#include "common.h"
#include "kernels/cpu_kernels.h"
#include "kernels/cpu_gemm.h"
#include "kernels/cpu_simd.h"
#include "kernels/cpu_work.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

namespace da3 {
namespace conv {
namespace {

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
#if defined(__GNUC__)
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

#endif
}  // namespace

// The direct kernels' packed weights as their own node, split across threads (per call; the
// allocator reuses the memory once the convolution is done).
ggml_tensor *pack_weights_node(ggml_context *ctx, ggml_tensor *w) {
    const int64_t nblk = (w->ne[3] + OCB - 1) / OCB;
    return ggml_custom_4d(ctx, GGML_TYPE_F32, nblk * w->ne[2] * w->ne[1] * w->ne[0] * OCB, 1, 1, 1, &w, 1,
                          pack_weights_compute, GGML_N_TASKS_MAX, nullptr);
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

#if defined(__GNUC__)  // called only where the vector kernels exist (conv_compute)
namespace {
// f(std::integral_constant<int, NX>{}) for the strip width nx (pick_nx), NX <= NX_MAX
template <class F>
void with_nx(int nx, F &&f) {
    switch (nx) {
        case 3: f(std::integral_constant<int, NX_MAX == 3 ? 3 : 2>{}); break;
        case 2: f(std::integral_constant<int, 2>{}); break;
        default: f(std::integral_constant<int, 1>{}); break;
    }
}
}  // namespace

void conv3x3_direct(const conv_args &a, conv_scratch &s, int nx, int r0, int r1) {
    with_nx(nx, [&](auto NX) { conv3x3_rows<decltype(NX)::value>(a, s, r0, r1); });
}

void conv1x1_direct(const conv_args &a, conv_scratch &s, int nx, int64_t s0, int64_t s1) {
    with_nx(nx, [&](auto NX) { conv1x1_strips<decltype(NX)::value>(a, s, s0, s1); });
}
#endif

}  // namespace conv
}  // namespace da3
