// Element-wise and data-movement CPU ops (cpu_kernels.h): GELU, LayerNorm, bilinear resize,
// row concatenation, the head's UV embedding. The convolution op is in cpu_conv.cpp.
#include "cpu_kernels.h"

#include "common.h"
#include "cpu_simd.h"

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

// Per output column j < wo, the left source column x0[j] and its weight wx[j].
void resize_columns_ac(int wi, int wo, int *x0, float *wx) {
    // ref: PyTorch UpSample.h area_pixel_compute_scale / compute_source_index (align_corners)
    const float sx = wo > 1 ? (float)(wi - 1) / (float)(wo - 1) : 0.0f;
    for (int j = 0; j < wo; ++j) {
        const float src = sx * (float)j;
        x0[j] = std::min((int)src, wi - 1);
        wx[j] = src - (float)x0[j];
    }
}

// Scratch for one source row of wi columns and the vector pass's read-ahead (16: the widest VW).
inline size_t resize_row_tmp_size(int wi) { return (size_t)wi + 2 * 16 + 1; }

// Output columns [j0, j1) of one row from the source columns r[0..] = column s0 on, into
// out[0, j1 - j0): (1 - wx[j]) * column x0[j] + wx[j] * column x0[j] + 1, plus ex[j] (ex not
// null) or ey. The vector pass reads up to 2 VW + 1 floats past the last source column used.
void interp_columns(const float *r, int s0, const int *x0, const float *wx, int j0, int j1, const float *ex, float ey,
                    float *out) {
    int j = j0;
#if defined(__GNUC__)
    // VW output columns read at most 2 VW source columns from x0[j]: one two-vector shuffle
    for (; j + VW <= j1 && x0[j + VW - 1] + 1 - x0[j] < 2 * VW; j += VW) {
        vi idx;
        std::memcpy(&idx, x0 + j, sizeof idx);
        idx -= x0[j];
        const float *base = r + (x0[j] - s0);
        const vf lo = loadu(base), hi_ = loadu(base + VW);
        const vf v0 = __builtin_shuffle(lo, hi_, idx), v1 = __builtin_shuffle(lo, hi_, idx + 1);
        const vf w = loadu(wx + j);
        vf v = (1.0f - w) * v0 + w * v1;  // as the scalar loop below
        v += ex ? loadu(ex + j) : splat(ey);
        storeu(out + (j - j0), v);
    }
#endif
    for (; j < j1; ++j) {
        const float *c = r + (x0[j] - s0);
        out[j - j0] = (1.0f - wx[j]) * c[0] + wx[j] * c[1] + (ex ? ex[j] : ey);
    }
}

// One source row of wi columns resized to wo (x0, wx: resize_columns_ac); tmp:
// resize_row_tmp_size(wi) floats of scratch.
void resize_source_row(const float *row, int wi, const int *x0, const float *wx, int wo, float *tmp, float *out) {
    std::memcpy(tmp, row, (size_t)wi * sizeof(float));
    std::fill(tmp + wi, tmp + resize_row_tmp_size(wi), tmp[wi - 1]);  // read-ahead of the vector pass
    interp_columns(tmp, 0, x0, wx, 0, wo, nullptr, 0.0f, out);
}

// The source rows blended into output row i of ho (align corners): y0, y1 and their weights.
struct row_weights {
    int y0, y1;
    float w0, w1;
    row_weights(int hi, int ho, int i) {
        const float sy = ho > 1 ? (float)(hi - 1) / (float)(ho - 1) : 0.0f;
        const float src = sy * (float)i;
        y0 = std::min((int)src, hi - 1), y1 = std::min(y0 + 1, hi - 1);
        w1 = src - (float)y0, w0 = 1.0f - w1;
    }
};

// out[j - j0] = w0 * a[j] + w1 * b[j] + (ex ? ex[j] : ey) for j in [j0, j1).
void blend_two_rows(const float *a, const float *b, float w0, float w1, int j0, int j1, const float *ex, float ey,
                    float *out) {
    int j = j0;
#if defined(__GNUC__)
    for (; j + VW <= j1; j += VW) {
        vf v = w0 * loadu(a + j) + w1 * loadu(b + j);  // as the scalar loop below
        v += ex ? loadu(ex + j) : splat(ey);
        storeu(out + (j - j0), v);
    }
#endif
    for (; j < j1; ++j) out[j - j0] = w0 * a[j] + w1 * b[j] + (ex ? ex[j] : ey);
}

// Resize of x [wi, hi, C, N] to dst [wo, ho, C, N] (+ UV): per output row, the two source rows
// resized along x (kept for the next output rows that use them), then blended.
void resize_bilinear_ac_compute(ggml_tensor *dst, int ith, int nth, void *) {
    const ggml_tensor *x = dst->src[0];
    const float *uvx = dst->src[1] ? (const float *)dst->src[1]->data : nullptr;  // see resize_bilinear_ac_cpu
    const float *uvy = dst->src[2] ? (const float *)dst->src[2]->data : nullptr;
    const int wi = (int)x->ne[0], hi = (int)x->ne[1];
    const int wo = (int)dst->ne[0], ho = (int)dst->ne[1];
    const int64_t C = dst->ne[2], planes = C * dst->ne[3];
    thread_local std::vector<int> x0;
    thread_local std::vector<float> wx, tmp, hrows;
    x0.resize(wo);
    wx.resize(wo);
    tmp.resize(resize_row_tmp_size(wi));
    hrows.resize((size_t)2 * wo);
    resize_columns_ac(wi, wo, x0.data(), wx.data());
    int64_t key[2] = {-1, -1};  // the source rows (plane * hi + y) held in hrows' two slots
    auto slot_of = [&](int64_t k) { return key[0] == k ? 0 : key[1] == k ? 1 : -1; };
    auto fill = [&](int slot, int64_t k) {
        resize_source_row((const float *)x->data + (size_t)k * wi, wi, x0.data(), wx.data(), wo, tmp.data(),
                          hrows.data() + (size_t)slot * wo);
        key[slot] = k;
    };
    const int64_t rows = planes * ho;
    const int64_t per = (rows + nth - 1) / nth;
    const int64_t r0 = std::min(rows, ith * per), r1 = std::min(rows, r0 + per);
    for (int64_t r = r0; r < r1; ++r) {
        const int64_t p = r / ho, c = p % C;
        const int i = (int)(r % ho);
        const row_weights rw(hi, ho, i);
        const int64_t ka = p * hi + rw.y0, kb = p * hi + rw.y1;
        int sa = slot_of(ka), sb = slot_of(kb);
        if (sa < 0) fill(sa = sb == 0 ? 1 : 0, ka);  // never over the other row's slot
        if (sb < 0) fill(sb = 1 - sa, kb);
        const float *a = hrows.data() + (size_t)sa * wo, *b = hrows.data() + (size_t)sb * wo;
        // UV embedding: channels [0, C/2) add uvx[c][j], the others uvy[c - C/2][i]
        const float *ex = uvx && c < C / 2 ? uvx + c * wo : nullptr;
        const float ey = uvy && c >= C / 2 ? uvy[(c - C / 2) * ho + i] : 0.0f;
        blend_two_rows(a, b, rw.w0, rw.w1, 0, wo, ex, ey, (float *)dst->data + ((size_t)p * ho + i) * wo);
    }
}

// Each row of x [wi, H, C, N] resized along x to w columns (align corners).
void resize_cols_ac_compute(ggml_tensor *dst, int ith, int nth, void *) {
    const ggml_tensor *x = dst->src[0];
    const int wi = (int)x->ne[0], wo = (int)dst->ne[0];
    const int64_t rows = ggml_nrows(dst);
    thread_local std::vector<int> x0;
    thread_local std::vector<float> wx, tmp;
    x0.resize(wo), wx.resize(wo), tmp.resize(resize_row_tmp_size(wi));
    resize_columns_ac(wi, wo, x0.data(), wx.data());
    for (int64_t r = rows * ith / nth; r < rows * (ith + 1) / nth; ++r) {
        resize_source_row((const float *)x->data + (size_t)r * wi, wi, x0.data(), wx.data(), wo, tmp.data(),
                          (float *)dst->data + (size_t)r * wo);
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

void blend_rows_ac(const float *plane, int w, int hi, int ho, int i, int j0, int j1, const float *ex, float ey,
                   float *out) {
    const row_weights rw(hi, ho, i);
    blend_two_rows(plane + (size_t)rw.y0 * w, plane + (size_t)rw.y1 * w, rw.w0, rw.w1, j0, j1, ex, ey, out);
}

ggml_tensor *resize_cols_ac_cpu(ggml_context *ctx, ggml_tensor *x, int w) {
    if (x->type != GGML_TYPE_F32 || !ggml_is_contiguous(x) || w <= 0) {
        fail(DA3_ERR_INTERNAL, "resize_cols_ac_cpu: needs contiguous f32 and a positive width");
    }
    return ggml_custom_4d(ctx, GGML_TYPE_F32, w, x->ne[1], x->ne[2], x->ne[3], &x, 1, resize_cols_ac_compute,
                          GGML_N_TASKS_MAX, nullptr);
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
