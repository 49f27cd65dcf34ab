#include "kernels/cpu_gemm_amx.h"

#include "kernels/cpu_engine.h"

#include "common.h"
#include "kernels/cpu_gemm.h"
#include "kernels/cpu_simd.h"
#include "kernels/cpu_work.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"

#include <algorithm>
#include <cstring>
#include <vector>

#if defined(DA3_BF16_ENGINES)
#include <immintrin.h>
#endif


namespace da3 {
namespace {

constexpr int PW = 32;  // panel width: output columns per panel, two 16-column tiles
constexpr int KB = 32;  // K-block: one tile's 16 pairs of k
constexpr int TM = 32;  // rows per GEMM tile: two 16-row A tiles
constexpr size_t TILE = 16 * KB;               // bf16 values of one 16 x 16-pair B tile
constexpr size_t B_BLOCK_BYTES = 256 << 10;    // weight panels per chunk, about half an L2
constexpr unsigned G_GELU = 1u, G_BIAS = 2u, G_RES = 4u, G_SCALE = 8u, G_ENGINE_SHIFT = 8;

inline int64_t kpad(int64_t K) { return (K + KB - 1) / KB * KB; }
// Row stride of the packed activations: one K-block more than Kp, so that when 2 Kp bytes are a
// multiple of 2 KB (K = 1536, 3072) a tile's 16 rows do not all map to two L1 sets.
inline int64_t a_stride(int64_t K) { return kpad(K) + KB; }

// One panel: rows[PW][K] f32 -> dst [Kp/KB][2][16 pairs][16 columns][2] bf16 (zero past K).
void pack_panel(const float *rows, int64_t K, uint16_t *dst) {
    const int64_t Kp = kpad(K);
    for (int64_t kb = 0; kb < Kp / KB; ++kb)
        for (int h = 0; h < 2; ++h)
            for (int kk = 0; kk < KB / 2; ++kk)
                for (int j = 0; j < 16; ++j)
                    for (int e = 0; e < 2; ++e) {
                        const int64_t k = kb * KB + kk * 2 + e;
                        *dst++ = k < K ? f32_to_bf16(rows[(size_t)(h * 16 + j) * K + k]) : 0;
                    }
}

// One activation row: K f32 -> n >= K bf16 (zero past K).
void cvt_row(const float *src, uint16_t *dst, int64_t K, int64_t n) {
    int64_t k = 0;
#if defined(__AVX512F__)
    const __m512i one = _mm512_set1_epi32(1), half = _mm512_set1_epi32(0x7fff), quiet = _mm512_set1_epi32(0x40);
    const __m512i abs_mask = _mm512_set1_epi32(0x7fffffff), inf = _mm512_set1_epi32(0x7f800000);
    // maskz forms with a full mask: the plain ones pass GCC 12 an "uninitialized" source
    for (; k + 16 <= K; k += 16) {
        const __m512i u = _mm512_loadu_si512(src + k), hi = _mm512_maskz_srli_epi32(0xffff, u, 16);
        const __m512i sum = _mm512_add_epi32(_mm512_add_epi32(u, half), _mm512_and_si512(hi, one));
        const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, abs_mask), inf);
        const __m512i r = _mm512_mask_mov_epi32(_mm512_maskz_srli_epi32(0xffff, sum, 16), nan, _mm512_or_si512(hi, quiet));
        _mm256_storeu_si256((__m256i *)(dst + k), _mm512_maskz_cvtepi32_epi16(0xffff, r));
    }
#endif
    for (; k < K; ++k) dst[k] = f32_to_bf16(src[k]);
    for (; k < n; ++k) dst[k] = 0;
}

#if defined(DA3_BF16_ENGINES)
// Tiles 0-3: C (2 x 2 of 16 x 16 f32); 4-5: A (16 rows x 32 bf16); 6-7: B (16 pairs x 16 columns).
DA3_TARGET_AMX void amx_begin() {
    struct alignas(64) tile_config {
        unsigned char palette, start_row, reserved[14];
        uint16_t colsb[16];
        unsigned char rows[16];
    } cfg = {};
    cfg.palette = 1;
    for (int t = 0; t < 8; ++t) cfg.colsb[t] = 64, cfg.rows[t] = 16;
    // not _tile_loadconfig: GCC 12's operand covers one pointer, so the stores above can be dropped
    __asm__ volatile("ldtilecfg %0" ::"m"(cfg));
}
DA3_TARGET_AMX void amx_end() { _tile_release(); }

// C[TM][PW] = A[TM rows, lda apart] . panel B, over the whole K (Kp).
DA3_TARGET_AMX void amx_tile(const uint16_t *A, int64_t lda, int64_t Kp, const uint16_t *B, float *C) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    const size_t sa = (size_t)lda * sizeof(uint16_t);
    const uint16_t *A1 = A + 16 * lda;
    for (int64_t kb = 0; kb < Kp / KB; ++kb) {
        _tile_loadd(4, A + kb * KB, sa);
        _tile_loadd(6, B + kb * 2 * TILE, 64);
        _tile_loadd(7, B + kb * 2 * TILE + TILE, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_loadd(5, A1 + kb * KB, sa);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, C, PW * sizeof(float));
    _tile_stored(1, C + 16, PW * sizeof(float));
    _tile_stored(2, C + 16 * PW, PW * sizeof(float));
    _tile_stored(3, C + 16 * PW + 16, PW * sizeof(float));
}

// R rows of C[.][PW] by vdpbf16ps: per k pair, each row's pair broadcast against the panel's row.
template <int R>
DA3_TARGET_BF16 void dp_rows(const uint16_t *A, int64_t lda, int64_t Kp, const uint16_t *B, float *C) {
    __m512 acc[R][2];
    for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int64_t kb = 0; kb < Kp / KB; ++kb) {
        const uint16_t *bk = B + kb * 2 * TILE, *ak = A + kb * KB;
        for (int kk = 0; kk < KB / 2; ++kk) {
            const __m512bh b0 = (__m512bh)_mm512_loadu_si512(bk + kk * KB);
            const __m512bh b1 = (__m512bh)_mm512_loadu_si512(bk + TILE + kk * KB);
#pragma GCC unroll 12
            for (int i = 0; i < R; ++i) {
                int32_t pair;
                std::memcpy(&pair, ak + i * lda + 2 * kk, sizeof pair);
                const __m512bh a = (__m512bh)_mm512_set1_epi32(pair);
                acc[i][0] = _mm512_dpbf16_ps(acc[i][0], a, b0);
                acc[i][1] = _mm512_dpbf16_ps(acc[i][1], a, b1);
            }
        }
    }
    for (int i = 0; i < R; ++i) {
        _mm512_storeu_ps(C + i * PW, acc[i][0]);
        _mm512_storeu_ps(C + i * PW + 16, acc[i][1]);
    }
}

void gemm_tile(bf16_engine e, const uint16_t *A, int64_t lda, int64_t Kp, const uint16_t *B, float *C) {
    if (e == bf16_engine::amx_bf16) {
        amx_tile(A, lda, Kp, B, C);
        return;
    }
    dp_rows<12>(A, lda, Kp, B, C);
    dp_rows<12>(A + 12 * lda, lda, Kp, B, C + 12 * PW);
    dp_rows<8>(A + 24 * lda, lda, Kp, B, C + 24 * PW);
}

// The f32 epilogue of linear_cpu, in its order: (C + bias), GELU, * scale, + res; R rows to Y.
void epilogue_tile(const float *C, int R, float *Y, int64_t ldy, const float *bias, const float *scale,
                   const float *res, bool gelu) {
    using namespace simd;
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < PW; j += VW) {
            vf v = loadu(C + i * PW + j);
            if (bias) v += loadu(bias + j);
            if (gelu) v = vgelu(v);
            if (scale) v *= loadu(scale + j);
            if (res) v += loadu(res + i * ldy + j);
            storeu(Y + i * ldy + j, v);
        }
}

struct gemm_operands {
    const uint16_t *A;  // [Mp][lda] bf16
    int64_t lda, Kp, M;
    const uint16_t *W;  // packed panels
    int64_t N;
    const float *bias, *scale, *res;
    bool gelu;
    float *Y;  // [M][N]
};

// Panels [p0, p1) x row tiles [t0, t1).
void gemm_range(bf16_engine e, const gemm_operands &g, int64_t p0, int64_t p1, int64_t t0, int64_t t1) {
    alignas(64) float C[TM * PW];
    for (int64_t p = p0; p < p1; ++p) {
        const uint16_t *B = g.W + (size_t)p * g.Kp * PW;
        const int64_t n = p * PW;
        for (int64_t t = t0; t < t1; ++t) {
            const int64_t m = t * TM;
            gemm_tile(e, g.A + (size_t)m * g.lda, g.lda, g.Kp, B, C);
            const size_t off = (size_t)m * g.N + n;
            epilogue_tile(C, (int)std::min<int64_t>(TM, g.M - m), g.Y + off, g.N, g.bias ? g.bias + n : nullptr,
                          g.scale ? g.scale + n : nullptr, g.res ? g.res + off : nullptr, g.gelu);
        }
    }
}
#endif  // DA3_BF16_ENGINES

// x [K, M, ...] f32 -> dst [a_stride(K), Mp] bf16, zero past K and M; rows in chunks (cpu_work.h).
void pack_x_compute(ggml_tensor *dst, int /*ith*/, int nth, void * /*userdata*/) {
    const ggml_tensor *x = dst->src[0];
    const int64_t K = x->ne[0], M = ggml_nrows(x), lda = dst->ne[0], Mp = dst->ne[1];
    const int64_t n = std::min<int64_t>(Mp, (int64_t)nth * kChunksPerThread);
    const float *X = (const float *)x->data;
    uint16_t *A = (uint16_t *)dst->data;
    for_each_chunk(dst, nth, n, [&](int64_t c) {
        for (int64_t r = Mp * c / n; r < Mp * (c + 1) / n; ++r) {
            if (r < M) {
                cvt_row(X + (size_t)r * K, A + (size_t)r * lda, K, lda);
            } else {
                std::fill(A + (size_t)r * lda, A + (size_t)(r + 1) * lda, (uint16_t)0);
            }
        }
    });
}

void gemm_compute(ggml_tensor *dst, int /*ith*/, int nth, void *userdata) {
#if defined(DA3_BF16_ENGINES)
    const unsigned flags = (unsigned)(uintptr_t)userdata;
    const bf16_engine e = (bf16_engine)(flags >> G_ENGINE_SHIFT);
    const ggml_tensor *a = dst->src[0], *w = dst->src[1];
    int next = 2;
    gemm_operands g{};
    g.A = (const uint16_t *)a->data, g.lda = a->ne[0], g.Kp = kpad(w->ne[0]);
    g.W = (const uint16_t *)w->data, g.N = w->ne[1];
    g.M = ggml_nelements(dst) / g.N;
    g.bias = (flags & G_BIAS) ? (const float *)dst->src[next++]->data : nullptr;
    g.res = (flags & G_RES) ? (const float *)dst->src[next++]->data : nullptr;
    g.scale = (flags & G_SCALE) ? (const float *)dst->src[next++]->data : nullptr;
    g.gelu = flags & G_GELU, g.Y = (float *)dst->data;
    const int64_t panels = g.N / PW, tiles = (g.M + TM - 1) / TM;
    const int64_t np = std::max<int64_t>(1, (int64_t)(B_BLOCK_BYTES / ((size_t)g.Kp * PW * sizeof(uint16_t))));
    const int64_t nblocks = (panels + np - 1) / np, nranges = chunk_ranges(nth, nblocks, tiles);
    if (e == bf16_engine::amx_bf16) amx_begin();
    for_each_chunk(dst, nth, nblocks * nranges, [&](int64_t c) {
        const int64_t p0 = c / nranges * np, r = c % nranges;
        gemm_range(e, g, p0, std::min(panels, p0 + np), tiles * r / nranges, tiles * (r + 1) / nranges);
    });
    if (e == bf16_engine::amx_bf16) amx_end();
#else
    (void)dst, (void)nth, (void)userdata;
    fail(DA3_ERR_INTERNAL, "bf16 GEMM: this build has no bf16 engine");
#endif
}

}  // namespace

uint16_t f32_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

size_t bf16_packed_size(int64_t K, int64_t N) { return (size_t)kpad(K) * (size_t)N; }

void bf16_pack_host(const float *W, int64_t K, int64_t N, uint16_t *Wp) {
    for (int64_t p = 0; p < N / PW; ++p) pack_panel(W + (size_t)p * PW * K, K, Wp + (size_t)p * kpad(K) * PW);
}

bool pack_linear_weight_bf16(ggml_tensor *w) {
    if (bf16_engine_available() == bf16_engine::none || !linear_cpu_supported(w) ||
        (w->type != GGML_TYPE_F32 && w->type != GGML_TYPE_F16 && w->type != GGML_TYPE_BF16) || !w->buffer ||
        !ggml_backend_buffer_is_host(w->buffer)) {
        return false;
    }
    const int64_t K = w->ne[0], N = w->ne[1], Kp = kpad(K);
    if (N % PW != 0 || bf16_packed_size(K, N) * sizeof(uint16_t) > ggml_nbytes(w)) return false;
    // in place, panel by panel in increasing order: panel p's packed bytes end at or before the
    // start of panel p + 1's source rows (Kp * 2 bytes per column <= K * its element size)
    std::vector<float> rows((size_t)PW * K);
    for (int64_t p = 0; p < N / PW; ++p) {
        const char *src = (const char *)w->data + (size_t)p * PW * w->nb[1];
        if (w->type == GGML_TYPE_F32) {
            std::memcpy(rows.data(), src, rows.size() * sizeof(float));
        } else if (w->type == GGML_TYPE_F16) {
            ggml_cpu_fp16_to_fp32((const ggml_fp16_t *)src, rows.data(), (int64_t)rows.size());
        } else {  // bf16 file: exact in f32, and pack_panel's rounding keeps it exact
            ggml_bf16_to_fp32_row((const ggml_bf16_t *)src, rows.data(), (int64_t)rows.size());
        }
        pack_panel(rows.data(), K, (uint16_t *)w->data + (size_t)p * Kp * PW);
    }
    return true;
}

void bf16_gemm_host(bf16_engine engine, const float *X, int64_t M, int64_t K, const uint16_t *Wp, int64_t N,
                    const float *bias, float *Y) {
#if defined(DA3_BF16_ENGINES)
    if (engine == bf16_engine::none || (engine == bf16_engine::amx_bf16 && !cpu_engines_here().amx_bf16) ||
        (engine == bf16_engine::avx512_bf16 && !cpu_engines_here().avx512_bf16)) {
        fail(DA3_ERR_INTERNAL, std::string("bf16_gemm_host: engine not available: ") + bf16_engine_name(engine));
    }
    const int64_t lda = a_stride(K), Mp = (M + TM - 1) / TM * TM;
    std::vector<uint16_t> A((size_t)Mp * lda, 0);
    for (int64_t r = 0; r < M; ++r) cvt_row(X + (size_t)r * K, A.data() + (size_t)r * lda, K, lda);
    const gemm_operands g{A.data(), lda, kpad(K), M, Wp, N, bias, nullptr, nullptr, false, Y};
    if (engine == bf16_engine::amx_bf16) amx_begin();
    gemm_range(engine, g, 0, N / PW, 0, Mp / TM);
    if (engine == bf16_engine::amx_bf16) amx_end();
#else
    (void)X, (void)M, (void)K, (void)Wp, (void)N, (void)bias, (void)Y;
    fail(DA3_ERR_INTERNAL, std::string("bf16_gemm_host: engine not available: ") + bf16_engine_name(engine));
#endif
}

ggml_tensor *linear_bf16(ggml_context *ctx, ggml_tensor *x, ggml_tensor *w, ggml_tensor *b, ggml_tensor *res,
                         ggml_tensor *scale, bool gelu, bf16_engine engine) {
    if (engine == bf16_engine::none) fail(DA3_ERR_INTERNAL, "linear_bf16: no bf16 engine");
    const int64_t K = x->ne[0], M = ggml_nrows(x), N = w->ne[1];
    ggml_tensor *xa = with_work_counter(ggml_custom_4d(ctx, GGML_TYPE_BF16, a_stride(K), (M + TM - 1) / TM * TM, 1, 1, &x, 1,
                                                       pack_x_compute, GGML_N_TASKS_MAX, nullptr));
    ggml_tensor *args[5] = {xa, w, nullptr, nullptr, nullptr};
    int n = 2;
    unsigned flags = (unsigned)engine << G_ENGINE_SHIFT | (gelu ? G_GELU : 0u);
    if (b) args[n++] = b, flags |= G_BIAS;
    if (res) args[n++] = res, flags |= G_RES;
    if (scale) args[n++] = scale, flags |= G_SCALE;
    return with_work_counter(ggml_custom_4d(ctx, GGML_TYPE_F32, N, x->ne[1], x->ne[2], x->ne[3], args, n, gemm_compute,
                                            GGML_N_TASKS_MAX, (void *)(uintptr_t)flags));
}

}  // namespace da3
