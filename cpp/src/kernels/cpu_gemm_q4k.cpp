#include "kernels/cpu_gemm_q4k.h"

#include "common.h"
#include "kernels/cpu_gemm_q8.h"
#include "kernels/cpu_simd.h"

#include <cstring>
#include <vector>

namespace da3 {
namespace {

constexpr int QKK = 256;                                  // q4_K super-block (k)
constexpr int NSUB = 8;                                   // sub-blocks of 32 k per super-block
constexpr size_t Q4K_BLOCK = 144;                         // a super-block's bytes in a GGUF row
constexpr int PW = 32;                                    // panel width (output columns)
constexpr size_t SB_BYTES = PW * Q4K_BLOCK;               // one panel's super-block (header layout)
constexpr size_t OFF_DMIN = 64, OFF_SC = 128, OFF_M = 256, OFF_HI = 384, OFF_Q = 512;
static_assert(OFF_Q + QKK * PW / 2 == SB_BYTES, "the repack must keep the tensor's size");

// Sub-block j's 6-bit scale and min of a GGUF super-block (6-bit fields of scales[12]: j < 4 in
// the low 6 bits of bytes j and j+4; j >= 4 split between byte j+4's nibbles and the top 2 bits
// of bytes j-4 and j).
void scale_min(const uint8_t *s, int j, int &sc, int &m) {
    if (j < 4) {
        sc = s[j] & 63;
        m = s[j + 4] & 63;
    } else {
        sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
        m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

#if defined(DA3_INT8_GEMM)
constexpr int MRQ = 6;  // rows per tile: 6 x 2 int32 + 6 x 2 f32 accumulators

// One R x 32 tile over all of K. Per super-block the panel's scales are decoded once to f32
// (ws = d * sc_j, wm = dmin * m_j); per sub-block, int32 sums by vpdpbusd (4 k per lane and
// step), then y += d_x * ws * sum - (d_x * sum(q_x)) * wm in f32; the epilogue adds bias, GELU,
// residual.
template <int R>
void q4k_tile(int64_t nsb, const int8_t *qx, int64_t K, const float *dx, const float *dsx, const uint8_t *wp,
              float *y, int64_t ldy, const float *bias, const float *scale, const float *res, bool gelu) {
    const int64_t nb = nsb * NSUB;  // blocks of 32 per activation row
    const __m512i lo4 = _mm512_set1_epi8(0x0F);
    const __m512i m15 = _mm512_set1_epi32(15), m48 = _mm512_set1_epi32(0x30);
    alignas(64) float ws[NSUB][PW], wm[NSUB][PW];
    __m512 f[R][2];
    for (int i = 0; i < R; ++i) f[i][0] = f[i][1] = _mm512_setzero_ps();
    for (int64_t sb = 0; sb < nsb; ++sb) {
        const uint8_t *blk = wp + sb * SB_BYTES;
        const __m512 d0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
        const __m512 d1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(blk + 32)));
        const __m512 n0 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(blk + OFF_DMIN)));
        const __m512 n1 = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(blk + OFF_DMIN + 32)));
        for (int j = 0; j < NSUB; ++j) {
            const __m512i sl = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + OFF_SC + j * 16)));
            const __m512i ml = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + OFF_M + j * 16)));
            const __m512i h = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(blk + OFF_HI + j * 16)));
            const __m512i s0 = _mm512_or_si512(_mm512_and_si512(sl, m15), _mm512_and_si512(_mm512_slli_epi32(h, 4), m48));
            const __m512i s1 = _mm512_or_si512(_mm512_srli_epi32(sl, 4), _mm512_and_si512(_mm512_slli_epi32(h, 2), m48));
            const __m512i t0 = _mm512_or_si512(_mm512_and_si512(ml, m15), _mm512_and_si512(h, m48));
            const __m512i t1 = _mm512_or_si512(_mm512_srli_epi32(ml, 4), _mm512_and_si512(_mm512_srli_epi32(h, 2), m48));
            _mm512_store_ps(ws[j], _mm512_mul_ps(d0, _mm512_cvtepi32_ps(s0)));
            _mm512_store_ps(ws[j] + 16, _mm512_mul_ps(d1, _mm512_cvtepi32_ps(s1)));
            _mm512_store_ps(wm[j], _mm512_mul_ps(n0, _mm512_cvtepi32_ps(t0)));
            _mm512_store_ps(wm[j] + 16, _mm512_mul_ps(n1, _mm512_cvtepi32_ps(t1)));
        }
        for (int j = 0; j < NSUB; ++j) {
            const uint8_t *q = blk + OFF_Q + j * (32 / 4) * 64;
            const int64_t b = sb * NSUB + j, k0 = b * 32;
            __m512i a[R][2];
#pragma GCC unroll 6
            for (int i = 0; i < R; ++i) a[i][0] = a[i][1] = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int g = 0; g < 8; ++g) {
                const __m512i raw = _mm512_loadu_si512(q + g * 64);
                const __m512i w0 = _mm512_and_si512(raw, lo4);
                const __m512i w1 = _mm512_and_si512(_mm512_srli_epi16(raw, 4), lo4);
#pragma GCC unroll 6
                for (int i = 0; i < R; ++i) {
                    int32_t x4;
                    std::memcpy(&x4, qx + i * K + k0 + g * 4, 4);
                    const __m512i xv = _mm512_set1_epi32(x4);
                    a[i][0] = _mm512_dpbusd_epi32(a[i][0], w0, xv);
                    a[i][1] = _mm512_dpbusd_epi32(a[i][1], w1, xv);
                }
            }
            const __m512 ws0 = _mm512_load_ps(ws[j]), ws1 = _mm512_load_ps(ws[j] + 16);
            const __m512 wm0 = _mm512_load_ps(wm[j]), wm1 = _mm512_load_ps(wm[j] + 16);
#pragma GCC unroll 6
            for (int i = 0; i < R; ++i) {
                const __m512 d = _mm512_set1_ps(dx[i * nb + b]), ds = _mm512_set1_ps(dsx[i * nb + b]);
                f[i][0] = _mm512_fnmadd_ps(wm0, ds, _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[i][0]), _mm512_mul_ps(ws0, d), f[i][0]));
                f[i][1] = _mm512_fnmadd_ps(wm1, ds, _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[i][1]), _mm512_mul_ps(ws1, d), f[i][1]));
            }
        }
    }
    store_tile32<R>(f, y, ldy, bias, scale, res, gelu);
}

using q4k_tile_fn = void (*)(int64_t, const int8_t *, int64_t, const float *, const float *, const uint8_t *, float *,
                             int64_t, const float *, const float *, const float *, bool);
constexpr q4k_tile_fn kTiles[MRQ] = {&q4k_tile<1>, &q4k_tile<2>, &q4k_tile<3>,
                                     &q4k_tile<4>, &q4k_tile<5>, &q4k_tile<6>};
#endif

}  // namespace

bool q4k_gemm_available() {
#if defined(DA3_INT8_GEMM)
    return true;
#else
    return false;
#endif
}

bool pack_q4_K_weight(ggml_tensor *w) {
    if (!int8_packable(w, GGML_TYPE_Q4_K, QKK) || ggml_blck_size(w->type) != QKK ||
        ggml_type_size(w->type) != Q4K_BLOCK) {
        return false;
    }
    const int64_t nsb = w->ne[0] / QKK;
    const size_t row_bytes = (size_t)nsb * Q4K_BLOCK;
    repack_panels(w, row_bytes, [&](uint8_t *panel, const uint8_t *rows) {
        for (int64_t sb = 0; sb < nsb; ++sb) {
            uint8_t *dst = panel + (size_t)sb * SB_BYTES;
            std::memset(dst + OFF_SC, 0, OFF_Q - OFF_SC);
            for (int c = 0; c < PW; ++c) {
                const uint8_t *src = rows + (size_t)c * row_bytes + (size_t)sb * Q4K_BLOCK;
                const int half = c / 16, ci = c % 16;
                std::memcpy(dst + 2 * c, src, 2);             // d
                std::memcpy(dst + OFF_DMIN + 2 * c, src + 2, 2);  // dmin
                for (int j = 0; j < NSUB; ++j) {
                    int sc, m;
                    scale_min(src + 4, j, sc, m);
                    dst[OFF_SC + j * 16 + ci] |= (uint8_t)((sc & 15) << 4 * half);
                    dst[OFF_M + j * 16 + ci] |= (uint8_t)((m & 15) << 4 * half);
                    dst[OFF_HI + j * 16 + ci] |= (uint8_t)((sc >> 4) << 2 * half | (m >> 4) << (4 + 2 * half));
                }
                // GGUF quants: byte 32c + l of the 128 holds k = 64c + l (low nibble) and 64c + 32 + l (high)
                const uint8_t *qs = src + 16;
                for (int k = 0; k < QKK; ++k) {
                    const int q = (qs[k / 64 * 32 + k % 32] >> (k % 64 >= 32 ? 4 : 0)) & 15;
                    uint8_t &o = dst[OFF_Q + (size_t)(k / 4) * 64 + ci * 4 + k % 4];
                    o = (uint8_t)(half ? (o & 0x0F) | q << 4 : (o & 0xF0) | q);
                }
            }
        }
    });
    return true;
}

void linear_q4k_rows(const float *X, int64_t K, const ggml_tensor *w, int64_t m0, int64_t m1, int64_t p0, int64_t p1,
                     const float *bias, const float *scale, const float *res, bool gelu, float *Y) {
#if defined(DA3_INT8_GEMM)
    const int64_t N = w->ne[1], nsb = K / QKK, nb = K / 32;
    // each thread quantizes the rows it takes (as linear_q8_rows)
    thread_local q8_act s;
    thread_local std::vector<float> dsx;  // d_x * sum(q_x) per block
    quantize_act_q8(X + m0 * K, m1 - m0, K, s);
    dsx.resize(s.d.size());
    for (size_t i = 0; i < dsx.size(); ++i) dsx[i] = s.d[i] * (float)s.sum[i];
    const size_t panel_bytes = (size_t)nsb * SB_BYTES;
    const uint8_t *W = (const uint8_t *)w->data;
    int8_gemm_loop<MRQ>(m0, m1, p0, p1, panel_bytes, [&](int R, int64_t m, int64_t p) {
        const int64_t n = p * PW, r = m - m0;
        kTiles[R - 1](nsb, s.q.data() + r * K, K, s.d.data() + r * nb, dsx.data() + r * nb, W + p * panel_bytes,
                      Y + m * N + n, N, bias ? bias + n : nullptr, scale ? scale + n : nullptr,
                      res ? res + m * N + n : nullptr, gelu);
    });
#else
    (void)X, (void)K, (void)w, (void)m0, (void)m1, (void)p0, (void)p1, (void)bias, (void)scale, (void)res, (void)gelu,
        (void)Y;
    fail(DA3_ERR_INTERNAL, "linear_q4k_rows: this build has no int8 GEMM");
#endif
}

}  // namespace da3
