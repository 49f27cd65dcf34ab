// Element-wise and data-movement CPU ops (cpu_kernels.h): GELU, LayerNorm, bilinear resize,
// row concatenation, the head's UV embedding. The convolution op is in cpu_conv.cpp.
#include "kernels/cpu_kernels.h"

#include "common.h"
#include "kernels/cpu_simd.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace da3 {
namespace {
using namespace simd;
constexpr uint64_t HAS_W = 1, HAS_B = 2;  // layer_norm_cpu

void gelu_erf_compute(ggml_tensor *dst, int ith, int nth, void *) {
    const ggml_tensor *x = dst->src[0];
    const int64_t n = ggml_nelements(x);
    const int64_t chunk = ((n + nth - 1) / nth + 63) / 64 * 64;
    const int64_t i0 = std::min(n, ith * chunk), i1 = std::min(n, i0 + chunk);
    const float *xd = (const float *)x->data;
    float *yd = (float *)dst->data;
    int64_t i = i0;
    constexpr float kInvSqrt2 = 0.70710678118654752f;
#if defined(__GNUC__)
    for (; i + VW <= i1; i += VW) {
        const vf v = loadu(xd + i);
        storeu(yd + i, vgelu(v));
    }
#endif
    for (; i < i1; ++i) yd[i] = 0.5f * xd[i] * std::erfc(xd[i] * -kInvSqrt2);
}

void layer_norm_compute(ggml_tensor *dst, int ith, int nth, void *userdata) {
    // userdata: eps's f32 bits | HAS_W << 32 | HAS_B << 32 (layer_norm_cpu)
    const uint64_t ud = (uint64_t)(uintptr_t)userdata, fl = ud >> 32;
    const ggml_tensor *x = dst->src[0];
    int next = 1;
    const float *w = (fl & HAS_W) ? (const float *)dst->src[next++]->data : nullptr;
    const float *b = (fl & HAS_B) ? (const float *)dst->src[next++]->data : nullptr;
    float eps;
    const uint32_t bits = (uint32_t)ud;
    std::memcpy(&eps, &bits, sizeof eps);
    const int64_t n = x->ne[0], rows = ggml_nrows(x);
    const int64_t r0 = rows * ith / nth, r1 = rows * (ith + 1) / nth;
    for (int64_t r = r0; r < r1; ++r) {
        const float *src = (const float *)x->data + r * n;
        float *out = (float *)dst->data + r * n;
        float sum = 0.0f, sq = 0.0f;
        int64_t i = 0;
#if defined(__GNUC__)
        vf vs = vf{};
        for (; i + VW <= n; i += VW) vs += loadu(src + i);
        for (int l = 0; l < VW; ++l) sum += vs[l];
#endif
        for (; i < n; ++i) sum += src[i];
        const float mean = sum / (float)n;
        i = 0;
#if defined(__GNUC__)
        vf vq = vf{};
        for (; i + VW <= n; i += VW) {
            const vf d = loadu(src + i) - mean;
            vq += d * d;
        }
        for (int l = 0; l < VW; ++l) sq += vq[l];
#endif
        for (; i < n; ++i) sq += (src[i] - mean) * (src[i] - mean);
        const float rstd = 1.0f / std::sqrt(sq / (float)n + eps);
        i = 0;
#if defined(__GNUC__)
        for (; i + VW <= n; i += VW) {
            vf v = (loadu(src + i) - mean) * rstd;
            if (w) v *= loadu(w + i);
            if (b) v += loadu(b + i);
            storeu(out + i, v);
        }
#endif
        for (; i < n; ++i) {
            float v = (src[i] - mean) * rstd;
            if (w) v *= w[i];
            if (b) v += b[i];
            out[i] = v;
        }
    }
}

void resize_bilinear_ac_compute(ggml_tensor *dst, int ith, int nth, void *) {
    const ggml_tensor *x = dst->src[0];
    const float *uvx = dst->src[1] ? (const float *)dst->src[1]->data : nullptr;  // see resize_bilinear_ac_cpu
    const float *uvy = dst->src[2] ? (const float *)dst->src[2]->data : nullptr;
    const int wi = (int)x->ne[0], hi = (int)x->ne[1];
    const int wo = (int)dst->ne[0], ho = (int)dst->ne[1];
    const int64_t C = dst->ne[2], planes = C * dst->ne[3];
    thread_local std::vector<int> x0;
    thread_local std::vector<float> wx, tmp;
    x0.resize(wo);
    wx.resize(wo);
    tmp.resize(resize_row_tmp_size(wi));
    resize_columns_ac(wi, wo, x0.data(), wx.data());
    const int64_t rows = planes * ho;
    const int64_t per = (rows + nth - 1) / nth;
    const int64_t r0 = std::min(rows, ith * per), r1 = std::min(rows, r0 + per);
    for (int64_t r = r0; r < r1; ++r) {
        const int64_t p = r / ho, c = p % C;
        const int i = (int)(r % ho);
        // UV embedding: channels [0, C/2) add uvx[c][j], the others uvy[c - C/2][i]
        const float *ex = uvx && c < C / 2 ? uvx + c * wo : nullptr;
        const float ey = uvy && c >= C / 2 ? uvy[(c - C / 2) * ho + i] : 0.0f;
        resize_row_ac((const float *)x->data + (size_t)p * hi * wi, wi, hi, ho, i, x0.data(), wx.data(), 0, wo, ex, ey,
                      tmp.data(), (float *)dst->data + ((size_t)p * ho + i) * wo);
    }
}

// dst[n][c][y][x] = x + (c < D ? tx[c][x] : ty[c - D][y]), D = C / 2.
// Rows of dst <- row of a, then row of b (any row strides; elements contiguous within a row).
void concat_rows_compute(ggml_tensor *dst, int ith, int nth, void *) {
    const ggml_tensor *a = dst->src[0], *b = dst->src[1];
    const int64_t R1 = a->ne[1], R2 = a->ne[2], rows = R1 * R2 * a->ne[3];
    const size_t na = (size_t)a->ne[0] * sizeof(float), nb = (size_t)b->ne[0] * sizeof(float);
    for (int64_t r = rows * ith / nth; r < rows * (ith + 1) / nth; ++r) {
        const int64_t i1 = r % R1, i2 = r / R1 % R2, i3 = r / (R1 * R2);
        char *out = (char *)dst->data + r * dst->nb[1];
        std::memcpy(out, (const char *)a->data + i1 * a->nb[1] + i2 * a->nb[2] + i3 * a->nb[3], na);
        std::memcpy(out + na, (const char *)b->data + i1 * b->nb[1] + i2 * b->nb[2] + i3 * b->nb[3], nb);
    }
}

void add_uv_compute(ggml_tensor *dst, int ith, int nth, void *) {
    const ggml_tensor *x = dst->src[0], *tx = dst->src[1], *ty = dst->src[2];
    const int64_t W = x->ne[0], H = x->ne[1], C = x->ne[2], D = C / 2;
    const int64_t rows = H * C * x->ne[3];
    const int64_t r0 = rows * ith / nth, r1 = rows * (ith + 1) / nth;
    const float *xd = (const float *)x->data, *txd = (const float *)tx->data, *tyd = (const float *)ty->data;
    float *yd = (float *)dst->data;
    for (int64_t r = r0; r < r1; ++r) {
        const int64_t y = r % H, c = (r / H) % C;
        const float *src = xd + r * W;
        float *out = yd + r * W;
        if (c < D) {
            const float *e = txd + c * W;
            for (int64_t i = 0; i < W; ++i) out[i] = src[i] + e[i];
        } else {
            const float e = tyd[(c - D) * H + y];
            for (int64_t i = 0; i < W; ++i) out[i] = src[i] + e;
        }
    }
}

}  // namespace

void resize_columns_ac(int wi, int wo, int *x0, float *wx) {
    // ref: PyTorch UpSample.h area_pixel_compute_scale / compute_source_index (align_corners)
    const float sx = wo > 1 ? (float)(wi - 1) / (float)(wo - 1) : 0.0f;
    for (int j = 0; j < wo; ++j) {
        const float src = sx * (float)j;
        x0[j] = std::min((int)src, wi - 1);
        wx[j] = src - (float)x0[j];
    }
}

void resize_row_ac(const float *plane, int wi, int hi, int ho, int i, const int *x0, const float *wx, int j0, int j1,
                   const float *ex, float ey, float *tmp, float *out) {
    const float sy = ho > 1 ? (float)(hi - 1) / (float)(ho - 1) : 0.0f;
    const float src = sy * (float)i;
    const int y0 = std::min((int)src, hi - 1), y1 = std::min(y0 + 1, hi - 1);
    const float wy1 = src - (float)y0, wy0 = 1.0f - wy1;
    const float *a = plane + (size_t)y0 * wi, *b = plane + (size_t)y1 * wi;
    // rows blended over the source columns [s0, s1) that outputs [j0, j1) read, into tmp
    const int s0 = x0[j0], s1 = std::min(wi, x0[j1 - 1] + 2), ns = s1 - s0;
    int k = 0;
#if defined(__GNUC__)
    for (; k + VW <= ns; k += VW) storeu(tmp + k, wy0 * loadu(a + s0 + k) + wy1 * loadu(b + s0 + k));
#endif
    for (; k < ns; ++k) tmp[k] = wy0 * a[s0 + k] + wy1 * b[s0 + k];
    std::fill(tmp + ns, tmp + ns + 2 * VW + 1, tmp[ns - 1]);  // read-ahead of the vector pass
    int j = j0;
#if defined(__GNUC__)
    // VW output columns read at most 2 VW source columns from x0[j]: one two-vector shuffle
    for (; j + VW <= j1 && x0[j + VW - 1] + 1 - x0[j] < 2 * VW; j += VW) {
        vi idx;
        std::memcpy(&idx, x0 + j, sizeof idx);
        idx -= x0[j];
        const float *base = tmp + (x0[j] - s0);
        const vf lo = loadu(base), hi_ = loadu(base + VW);
        const vf v0 = shuffle2(lo, hi_, idx), v1 = shuffle2(lo, hi_, idx + 1);
        const vf w = loadu(wx + j);
        vf v = (1.0f - w) * v0 + w * v1;  // as the scalar loop below
        v += ex ? loadu(ex + j) : splat(ey);
        storeu(out + (j - j0), v);
    }
#endif
    for (; j < j1; ++j) {
        const float *r = tmp + (x0[j] - s0);
        out[j - j0] = (1.0f - wx[j]) * r[0] + wx[j] * r[1] + (ex ? ex[j] : ey);
    }
}

ggml_tensor *concat_rows_cpu(ggml_context *ctx, ggml_tensor *a, ggml_tensor *b) {
    if (a->type != GGML_TYPE_F32 || b->type != GGML_TYPE_F32 || a->nb[0] != sizeof(float) || b->nb[0] != sizeof(float) ||
        a->ne[1] != b->ne[1] || a->ne[2] != b->ne[2] || a->ne[3] != b->ne[3]) {
        fail(DA3_ERR_INTERNAL, "concat_rows_cpu: unsupported operand layout");
    }
    ggml_tensor *args[2] = {a, b};
    return ggml_custom_4d(ctx, GGML_TYPE_F32, a->ne[0] + b->ne[0], a->ne[1], a->ne[2], a->ne[3], args, 2,
                          concat_rows_compute, GGML_N_TASKS_MAX, nullptr);
}

ggml_tensor *add_uv_cpu(ggml_context *ctx, ggml_tensor *x, ggml_tensor *tx, ggml_tensor *ty) {
    const int64_t W = x->ne[0], H = x->ne[1], D = x->ne[2] / 2;
    if (x->type != GGML_TYPE_F32 || !ggml_is_contiguous(x) || x->ne[2] % 2 != 0 || tx->type != GGML_TYPE_F32 ||
        ty->type != GGML_TYPE_F32 || !ggml_is_contiguous(tx) || !ggml_is_contiguous(ty) || ggml_nelements(tx) != W * D ||
        ggml_nelements(ty) != H * D) {
        fail(DA3_ERR_INTERNAL, "add_uv_cpu: unsupported operand layout");
    }
    ggml_tensor *args[3] = {x, tx, ty};
    return ggml_custom_4d(ctx, GGML_TYPE_F32, x->ne[0], x->ne[1], x->ne[2], x->ne[3], args, 3, add_uv_compute,
                          GGML_N_TASKS_MAX, nullptr);
}

ggml_tensor *layer_norm_cpu(ggml_context *ctx, ggml_tensor *x, ggml_tensor *w, ggml_tensor *b, float eps) {
    auto vec_ok = [&](const ggml_tensor *t) {
        return !t || (t->type == GGML_TYPE_F32 && ggml_is_contiguous(t) && ggml_nelements(t) == x->ne[0]);
    };
    if (x->type != GGML_TYPE_F32 || !ggml_is_contiguous(x) || !vec_ok(w) || !vec_ok(b)) {
        fail(DA3_ERR_INTERNAL, "layer_norm_cpu: unsupported operand layout");
    }
    static_assert(sizeof(uintptr_t) >= 8, "layer_norm_cpu packs eps and flags into the userdata pointer");
    ggml_tensor *args[3] = {x, nullptr, nullptr};
    int n = 1;
    uint64_t fl = 0;
    if (w) args[n++] = w, fl |= HAS_W;
    if (b) args[n++] = b, fl |= HAS_B;
    uint32_t bits;
    std::memcpy(&bits, &eps, sizeof bits);
    return ggml_custom_4d(ctx, GGML_TYPE_F32, x->ne[0], x->ne[1], x->ne[2], x->ne[3], args, n, layer_norm_compute,
                          GGML_N_TASKS_MAX, (void *)(uintptr_t)(bits | fl << 32));
}

ggml_tensor *gelu_erf_cpu(ggml_context *ctx, ggml_tensor *x) {
    if (x->type != GGML_TYPE_F32 || !ggml_is_contiguous(x)) fail(DA3_ERR_INTERNAL, "gelu_erf_cpu: needs contiguous f32");
    ggml_tensor *args[1] = {x};
    return ggml_custom_4d(ctx, GGML_TYPE_F32, x->ne[0], x->ne[1], x->ne[2], x->ne[3], args, 1, gelu_erf_compute,
                          GGML_N_TASKS_MAX, nullptr);
}

ggml_tensor *resize_bilinear_ac_cpu(ggml_context *ctx, ggml_tensor *x, int w, int h, ggml_tensor *uvx,
                                    ggml_tensor *uvy) {
    if (x->type != GGML_TYPE_F32 || !ggml_is_contiguous(x) || w <= 0 || h <= 0) {
        fail(DA3_ERR_INTERNAL, "resize_bilinear_ac_cpu: needs contiguous f32 and a positive size");
    }
    const int64_t D = x->ne[2] / 2;
    if ((uvx == nullptr) != (uvy == nullptr) ||
        (uvx && (x->ne[2] % 2 != 0 || uvx->type != GGML_TYPE_F32 || uvy->type != GGML_TYPE_F32 ||
                 !ggml_is_contiguous(uvx) || !ggml_is_contiguous(uvy) || ggml_nelements(uvx) != w * D ||
                 ggml_nelements(uvy) != h * D))) {
        fail(DA3_ERR_INTERNAL, "resize_bilinear_ac_cpu: bad UV tables");
    }
    ggml_tensor *args[3] = {x, uvx, uvy};
    return ggml_custom_4d(ctx, GGML_TYPE_F32, w, h, x->ne[2], x->ne[3], args, uvx ? 3 : 1, resize_bilinear_ac_compute,
                          GGML_N_TASKS_MAX, nullptr);
}

}  // namespace da3
