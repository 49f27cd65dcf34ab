// The fused CPU convolution op (conv_cpu, cpu_kernels.h): direct register-blocked 3x3 and 1x1
// kernels, and Winograd F(4x4, 3x3) for the wide 3x3 layers of the DPT head.
#include "kernels/cpu_kernels.h"

#include "kernels/cpu_conv_impl.h"

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
using namespace conv;

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
        // chunks of whole GEMM panels of tiles: only the map's last panel is partly empty
        const int64_t tiles = (int64_t)a.N * ((a.H + 3) / 4) * ((a.W + 3) / 4), TC = gemm_tile_cols();
        chunks((tiles + TC - 1) / TC, [&](int64_t g0, int64_t g1) {
            conv3x3_winograd(a, g0 * TC, std::min(tiles, g1 * TC));
        });
    } else if (a.KS == 3) {
        const int nx = pick_nx(a.W);
        chunks(a.N * a.H, [&](int64_t r0, int64_t r1) { conv3x3_direct(a, s, nx, (int)r0, (int)r1); });
    } else {
        const int64_t P = (int64_t)a.W * a.H;
        const int nx = pick_nx((int)std::min<int64_t>(P, 1 << 30));
        const int64_t sw = (int64_t)nx * VW;
        chunks(a.N * ((P + sw - 1) / sw), [&](int64_t s0, int64_t s1) { conv1x1_direct(a, s, nx, s0, s1); });
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
