#include "kernels/cpu_gemm_q8.h"

#include "common.h"
#include "kernels/cpu_simd.h"
#include "ggml-backend.h"

#include <cstring>
#include <vector>

namespace da3 {
namespace {

constexpr int QK = 32;                                         // q8_0 block: f16 scale + 32 int8
constexpr size_t Q8_BLOCK = 2 + QK;                             // its bytes in a GGUF row
constexpr int PW = 32;                                          // panel width (output columns)
constexpr size_t PANEL_BLOCK = 2 * PW + (size_t)PW * QK;        // one panel's block: 32 * Q8_BLOCK
static_assert(PANEL_BLOCK == PW * Q8_BLOCK, "the repack must keep the tensor's size");

#if defined(DA3_INT8_GEMM)
constexpr int MRQ = 6;  // rows per tile: 6 x 2 int32 + 6 x 2 f32 accumulators

// One R x 32 tile over all of K: per block, int32 sums by vpdpbusd (4 k per lane and step),
// then y += d_x * d_w * sum in f32; the epilogue adds bias, GELU, residual.
template <int R>
void q8_tile(int64_t nb, const int8_t *qx, int64_t K, const float *dx, const int32_t *sx, const uint8_t *wp,
             float *y, int64_t ldy, const float *bias, const float *scale, const float *res, bool gelu) {
    __m512 f[R][2];
    for (int i = 0; i < R; ++i) f[i][0] = f[i][1] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
        const uint8_t *blk = wp + b * PANEL_BLOCK;
        const uint8_t *q = blk + 2 * PW;
        __m512i a[R][2];
#pragma GCC unroll 6
        for (int i = 0; i < R; ++i) a[i][0] = a[i][1] = _mm512_set1_epi32(-128 * sx[i * nb + b]);  // see the header
#pragma GCC unroll 8
        for (int g = 0; g < QK / 4; ++g) {
            const __m512i w0 = _mm512_loadu_si512(q + g * 4 * PW), w1 = _mm512_loadu_si512(q + g * 4 * PW + 64);
#pragma GCC unroll 6
            for (int i = 0; i < R; ++i) {
                int32_t x4;
                std::memcpy(&x4, qx + i * K + b * QK + g * 4, 4);
                const __m512i xv = _mm512_set1_epi32(x4);
                a[i][0] = _mm512_dpbusd_epi32(a[i][0], w0, xv);
                a[i][1] = _mm512_dpbusd_epi32(a[i][1], w1, xv);
            }
        }
        const __m512 s0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
        const __m512 s1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(blk + 32)));
#pragma GCC unroll 6  // keeps the f32 accumulators in registers
        for (int i = 0; i < R; ++i) {
            const __m512 d = _mm512_set1_ps(dx[i * nb + b]);
            f[i][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[i][0]), _mm512_mul_ps(s0, d), f[i][0]);
            f[i][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[i][1]), _mm512_mul_ps(s1, d), f[i][1]);
        }
    }
    store_tile32<R>(f, y, ldy, bias, scale, res, gelu);
}

using q8_tile_fn = void (*)(int64_t, const int8_t *, int64_t, const float *, const int32_t *, const uint8_t *, float *,
                            int64_t, const float *, const float *, const float *, bool);
constexpr q8_tile_fn kTiles[MRQ] = {&q8_tile<1>, &q8_tile<2>, &q8_tile<3>, &q8_tile<4>, &q8_tile<5>, &q8_tile<6>};
#endif

}  // namespace

#if defined(DA3_INT8_GEMM)
void quantize_act_q8(const float *x, int64_t rows, int64_t K, q8_act &s) {
    const int64_t nb = K / QK;
    s.q.resize((size_t)rows * K);
    s.d.resize((size_t)rows * nb);
    s.sum.resize((size_t)rows * nb);
    const __m512 sign = _mm512_set1_ps(-0.0f);
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t b = 0; b < nb; ++b) {
            const float *src = x + r * K + b * QK;
            const __m512 v0 = _mm512_loadu_ps(src), v1 = _mm512_loadu_ps(src + 16);
            const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1)));
            const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
            const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, _mm512_set1_ps(id)));  // nearest, ties to even
            const __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, _mm512_set1_ps(id)));
            int8_t *q = s.q.data() + r * K + b * QK;
            _mm_storeu_si128((__m128i *)q, _mm512_cvtsepi32_epi8(i0));
            _mm_storeu_si128((__m128i *)(q + 16), _mm512_cvtsepi32_epi8(i1));
            s.d[(size_t)r * nb + b] = d;
            s.sum[(size_t)r * nb + b] = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
        }
    }
}
#endif

bool q8_gemm_available() {
#if defined(DA3_INT8_GEMM)
    return true;
#else
    return false;
#endif
}

bool int8_packable(const ggml_tensor *w, ggml_type type, int64_t k_block) {
    return q8_gemm_available() && w->type == type && ggml_blck_size(type) <= k_block && ggml_is_contiguous(w) &&
           w->ne[0] % k_block == 0 && w->ne[2] == 1 && w->ne[3] == 1 && w->ne[1] % PW == 0 && w->buffer &&
           ggml_backend_buffer_is_host(w->buffer);
}

bool pack_q8_0_weight(ggml_tensor *w) {
    if (!int8_packable(w, GGML_TYPE_Q8_0, QK) || ggml_blck_size(w->type) != QK || ggml_type_size(w->type) != Q8_BLOCK) {
        return false;
    }
    const int64_t nb = w->ne[0] / QK;
    const size_t row_bytes = (size_t)nb * Q8_BLOCK;
    repack_panels(w, row_bytes, [&](uint8_t *panel, const uint8_t *rows) {
        for (int64_t b = 0; b < nb; ++b) {
            uint8_t *blk = panel + (size_t)b * PANEL_BLOCK;
            for (int c = 0; c < PW; ++c) {
                const uint8_t *src = rows + (size_t)c * row_bytes + (size_t)b * Q8_BLOCK;
                std::memcpy(blk + 2 * c, src, 2);  // f16 scale
                for (int k = 0; k < QK; ++k) blk[2 * PW + (k / 4) * 4 * PW + c * 4 + k % 4] = src[2 + k] ^ 0x80;  // q + 128
            }
        }
    });
    return true;
}

void linear_q8_rows(const float *X, int64_t K, const ggml_tensor *w, int64_t m0, int64_t m1, int64_t p0, int64_t p1,
                    const float *bias, const float *scale, const float *res, bool gelu, float *Y) {
#if defined(DA3_INT8_GEMM)
    const int64_t N = w->ne[1], nb = K / QK;
    // each thread quantizes the rows it takes (threads on other panels of the same rows repeat
    // it: about 1/N of this GEMM's work)
    thread_local q8_act s;
    quantize_act_q8(X + m0 * K, m1 - m0, K, s);
    const size_t panel_bytes = (size_t)nb * PANEL_BLOCK;
    const uint8_t *W = (const uint8_t *)w->data;
    int8_gemm_loop<MRQ>(m0, m1, p0, p1, panel_bytes, [&](int R, int64_t m, int64_t p) {
        const int64_t n = p * PW, r = m - m0;
        kTiles[R - 1](nb, s.q.data() + r * K, K, s.d.data() + r * nb, s.sum.data() + r * nb, W + p * panel_bytes,
                      Y + m * N + n, N, bias ? bias + n : nullptr, scale ? scale + n : nullptr,
                      res ? res + m * N + n : nullptr, gelu);
    });
#else
    (void)X, (void)K, (void)w, (void)m0, (void)m1, (void)p0, (void)p1, (void)bias, (void)scale, (void)res, (void)gelu,
        (void)Y;
    fail(DA3_ERR_INTERNAL, "linear_q8_rows: this build has no int8 GEMM");
#endif
}

}  // namespace da3
