// Internal to the convolution files (cpu_conv.cpp: the op and its dispatch; cpu_conv_direct.cpp:
// the register-blocked 3x3 and 1x1 kernels; cpu_conv_winograd.cpp: Winograd F(4x4, 3x3)): the
// register blocking, the node's flags, its decoded arguments and the kernels' entry points.
#pragma once

#include "kernels/cpu_simd.h"

#include "ggml.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace da3 {
namespace conv {
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
#endif

// The direct kernels' packed weights (out[blk][ci][ky][kx][OCB], zero past Cout) as their own node,
// split across threads (cpu_conv_direct.cpp).
ggml_tensor *pack_weights_node(ggml_context *ctx, ggml_tensor *w);
// Output columns per strip (NX vectors of VW) of the direct kernels for a row of `width`.
int pick_nx(int width);
// Direct 3x3 over output rows [r0, r1) (of N*H) and 1x1 over pixel strips [s0, s1), NX = nx.
void conv3x3_direct(const conv_args &a, conv_scratch &s, int nx, int r0, int r1);
void conv1x1_direct(const conv_args &a, conv_scratch &s, int nx, int64_t s0, int64_t s1);

// Winograd weights U = G g G^T of w [3, 3, Cin, Cout] packed for the GEMM tiles, as a node
// (cpu_conv_winograd.cpp).
ggml_tensor *wino_weights_node(ggml_context *ctx, ggml_tensor *w);
// Winograd 3x3 over tiles [t0, t1) of the N x (H/4) x (W/4) tiles (a.u set).
void conv3x3_winograd(const conv_args &a, int64_t t0, int64_t t1);

}  // namespace conv
}  // namespace da3
