#include "kernels/cpu_gemm.h"

#include "common.h"
#include "kernels/cpu_gemm_amx.h"
#include "kernels/cpu_gemm_q4k.h"
#include "kernels/cpu_gemm_q8.h"
#include "kernels/cpu_simd.h"
#include "kernels/cpu_work.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <type_traits>
#include <utility>
#include <vector>

namespace da3 {
namespace {
using namespace simd;

// Micro-kernel tile: MR rows x NR = NV*VW columns, MR*NV accumulators (24 of 32 AVX-512
// registers; 12 of 16 for AVX/SSE).
constexpr int NV = 2, NR = NV * VW;
#if defined(__AVX512F__)
constexpr int MR = 12;
#else
constexpr int MR = 6;
#endif
constexpr int PF_DIST = 8;                   // software prefetch distance in k steps
constexpr int KC_MAX = 512;                  // K-block: an MR x KC activation strip stays in L1
constexpr size_t W_BLOCK_BYTES = 512 << 10;  // one thread's f32 weight block, kept in L2

constexpr unsigned HAS_BIAS = 1u << 8, HAS_RES = 1u << 9, PACKED = 1u << 10, HAS_SCALE = 1u << 11;

struct epilogue {
    bool first, last, gelu;
    const float *bias;       // at the tile's first column, or null
    const float *res;        // at the tile's first element, or null
    const float *row_scale;  // one factor per tile row, applied first, or null
    const float *col_scale;  // at the tile's first column (after the activation), or null
};

struct gemm_scratch {
    std::vector<float> w;    // [panel][k][NR], one W block
    std::vector<float> row;  // one weight row segment as f32
};

#if defined(__GNUC__)
// c[i][j] (+)= sum_k xp[i*ldx + k] * wp[k*ldw + j] for R rows and W*VW columns; ldc: row stride
// of c and res.
template <int R, int W>
void micro_kernel(int kc, const float *xp, size_t ldx, const float *wp, size_t ldw, float *c, size_t ldc,
                  const epilogue &e) {
    vf acc[R][W];
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < W; ++j) acc[i][j] = vf{};
    for (int k = 0; k < kc; ++k) {
        // the weight panel streams from L2: fetch PF_DIST rows ahead (prefetches never fault)
        for (int l = 0; l < W * VW; l += 64 / (int)sizeof(float)) __builtin_prefetch(wp + (size_t)(k + PF_DIST) * ldw + l);
        vf b[W];
#pragma GCC unroll 4
        for (int j = 0; j < W; ++j) b[j] = loadu(wp + (size_t)k * ldw + j * VW);
#pragma GCC unroll 16
        for (int i = 0; i < R; ++i) {
            const vf a = splat(xp[i * ldx + k]);
#pragma GCC unroll 4
            for (int j = 0; j < W; ++j) acc[i][j] += a * b[j];
        }
    }
    for (int i = 0; i < R; ++i) {
        for (int j = 0; j < W; ++j) {
            float *cp = c + i * ldc + j * VW;
            vf v = acc[i][j];
            if (e.row_scale) v *= e.row_scale[i];
            if (!e.first) v += loadu(cp);
            if (e.last) {
                if (e.bias) v += loadu(e.bias + j * VW);
                if (e.gelu) v = vgelu(v);
                if (e.col_scale) v *= loadu(e.col_scale + j * VW);
                if (e.res) v += loadu(e.res + i * ldc + j * VW);
            }
            storeu(cp, v);
        }
    }
}

// c[i][j] = sum_k ap[k*MR + i] * bp[k*ldb + j] for j < NR, all MR rows computed, rows i < R stored.
// A is packed ([kc][MR]: the attention's query strip, the Winograd weights), so the MR broadcasts
// of a k step are at fixed offsets from one pointer (micro_kernel's rows ldx apart need a register
// each). A kernel of its own, called directly, without micro_kernel's epilogue: for these short
// tiles (k = 64 in attention) a packed-A micro_kernel through the kernel table measured 5 % slower.
// With rmax (the attention's scores): rmax[i] = vmax(rmax[i], the row's NR values), for i < MR.
template <bool ROW_MAX>
inline void packed_a_tile(int R, int kc, const float *ap, const float *bp, size_t ldb, float *c, size_t ldc, vf *rmax) {
    vf acc[MR][NV];
    for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NV; ++j) acc[i][j] = vf{};
    for (int k = 0; k < kc; ++k) {
        for (int l = 0; l < NR; l += 64 / (int)sizeof(float)) __builtin_prefetch(bp + (size_t)(k + PF_DIST) * ldb + l);
        vf b[NV];
        for (int j = 0; j < NV; ++j) b[j] = loadu(bp + (size_t)k * ldb + j * VW);
#pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) {
            const vf a = splat(ap[k * MR + i]);
            for (int j = 0; j < NV; ++j) acc[i][j] += a * b[j];
        }
    }
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < NV; ++j) storeu(c + i * ldc + j * VW, acc[i][j]);
    if (ROW_MAX) {
        for (int i = 0; i < MR; ++i)
            for (int j = 0; j < NV; ++j) rmax[i] = vmax(acc[i][j], rmax[i]);
    }
}
void packed_a_kernel(int R, int kc, const float *ap, const float *bp, size_t ldb, float *c, size_t ldc) {
    packed_a_tile<false>(R, kc, ap, bp, ldb, c, ldc, nullptr);
}
void scores_kernel(int R, int kc, const float *ap, const float *bp, size_t ldb, float *c, size_t ldc, vf *rmax) {
    packed_a_tile<true>(R, kc, ap, bp, ldb, c, ldc, rmax);
}

using kernel_fn = void (*)(int, const float *, size_t, const float *, size_t, float *, size_t, const epilogue &);
template <int W, size_t... I>
constexpr std::array<kernel_fn, sizeof...(I)> make_kernels(std::index_sequence<I...>) {
    return {&micro_kernel<(int)I + 1, W>...};
}
// NR-wide tiles of up to MR rows; 2*NR-wide tiles of up to MR/2 rows (the same register count)
constexpr std::array<kernel_fn, MR> kKernels = make_kernels<NV>(std::make_index_sequence<MR>{});
constexpr std::array<kernel_fn, MR / 2> kKernelsWide = make_kernels<2 * NV>(std::make_index_sequence<MR / 2>{});
#else
// Portable fallback (no vector extensions): the same tile, scalar.
void scalar_kernel(int R, int ncol, int kc, const float *xp, size_t ldx, const float *wp, size_t ldw, float *c,
                   size_t ldc, const epilogue &e) {
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < ncol; ++j) {
            float s = 0.0f;
            for (int k = 0; k < kc; ++k) s += xp[i * ldx + k] * wp[(size_t)k * ldw + j];
            if (e.row_scale) s *= e.row_scale[i];
            float &cv = c[i * ldc + j];
            float v = e.first ? s : cv + s;
            if (e.last) {
                if (e.bias) v += e.bias[j];
                if (e.gelu) v = 0.5f * v * std::erfc(v * -0.70710678118654752f);
                if (e.col_scale) v *= e.col_scale[j];
                if (e.res) v += e.res[i * ldc + j];
            }
            cv = v;
        }
}
void packed_a_kernel(int R, int kc, const float *ap, const float *bp, size_t ldb, float *c, size_t ldc) {
    for (int i = 0; i < R; ++i)
        for (int j = 0; j < NR; ++j) {
            float s = 0.0f;
            for (int k = 0; k < kc; ++k) s += ap[k * MR + i] * bp[(size_t)k * ldb + j];
            c[i * ldc + j] = s;
        }
}
#endif

// One R x NR tile (1 <= R <= MR), see micro_kernel.
inline void run_tile(int R, int kc, const float *xp, size_t ldx, const float *wp, size_t ldw, float *c, size_t ldc,
                     const epilogue &e) {
#if defined(__GNUC__)
    kKernels[R - 1](kc, xp, ldx, wp, ldw, c, ldc, e);
#else
    scalar_kernel(R, NR, kc, xp, ldx, wp, ldw, c, ldc, e);
#endif
}

// R x 2NR in tiles of at most MR/2 rows.
inline void run_tile_wide(int R, int kc, const float *xp, size_t ldx, const float *wp, size_t ldw, float *c,
                          size_t ldc, const epilogue &e) {
    constexpr int H = MR / 2;
    for (int i0 = 0; i0 < R; i0 += H) {
        epilogue ei = e;
        if (ei.res) ei.res += i0 * ldc;
        if (ei.row_scale) ei.row_scale += i0;
#if defined(__GNUC__)
        kKernelsWide[std::min(H, R - i0) - 1](kc, xp + i0 * ldx, ldx, wp, ldw, c + i0 * ldc, ldc, ei);
#else
        scalar_kernel(std::min(H, R - i0), 2 * NR, kc, xp + i0 * ldx, ldx, wp, ldw, c + i0 * ldc, ldc, ei);
#endif
    }
}

// The f32 panels [p][k][NR] for rows [n0, n0 + NR*np) x columns [k0, k0 + kc) of w: panel p
// starts at the returned pointer + p * stride. Packed f32 weights (pack_linear_weight) are used
// in place; anything else is converted into s.w.
const float *load_w_block(const ggml_tensor *w, bool packed, int64_t n0, int np, int64_t k0, int kc, gemm_scratch &s,
                          size_t &stride) {
    const int64_t K = w->ne[0];
    if (packed) {
        const int64_t p0 = n0 / NR;
        if (w->type == GGML_TYPE_F32) {
            stride = (size_t)K * NR;
            return (const float *)w->data + ((size_t)p0 * K + k0) * NR;
        }
        // packed f16: each panel's block is contiguous
        s.w.resize((size_t)np * kc * NR);
        for (int p = 0; p < np; ++p) {
            ggml_cpu_fp16_to_fp32((const ggml_fp16_t *)w->data + ((size_t)(p0 + p) * K + k0) * NR,
                                  s.w.data() + (size_t)p * kc * NR, (int64_t)kc * NR);
        }
        stride = (size_t)kc * NR;
        return s.w.data();
    }
    s.w.resize((size_t)np * kc * NR);
    s.row.resize(kc);
    const ggml_type_traits *tt = ggml_get_type_traits(w->type);
    const size_t koff = (size_t)(k0 / tt->blck_size) * tt->type_size;
    for (int p = 0; p < np; ++p) {
        float *panel = s.w.data() + (size_t)p * kc * NR;
        for (int r = 0; r < NR; ++r) {
            const char *src = (const char *)w->data + (size_t)(n0 + (int64_t)p * NR + r) * w->nb[1] + koff;
            const float *rowf;
            if (w->type == GGML_TYPE_F32) {
                rowf = (const float *)src;
            } else if (w->type == GGML_TYPE_F16) {
                ggml_cpu_fp16_to_fp32((const ggml_fp16_t *)src, s.row.data(), kc);
                rowf = s.row.data();
            } else {
                tt->to_float(src, s.row.data(), kc);
                rowf = s.row.data();
            }
            for (int k = 0; k < kc; ++k) panel[(size_t)k * NR + r] = rowf[k];
        }
    }
    stride = (size_t)kc * NR;
    return s.w.data();
}

// In place: x[i] <- exp(scale * (x[i] - mx)) over the n entries, mx their max; returns 1 / their
// sum (the softmax of scale * x is x * that, as PyTorch's math path computes it in f32).
float softmax_exp(float *x, int64_t n, float scale, float mx) {
    int64_t i = 0;
    float sum = 0.0f;
#if defined(__GNUC__)
    vf vs = vf{};
    for (; i + VW <= n; i += VW) {
        const vf e = vexp((loadu(x + i) - mx) * scale);
        storeu(x + i, e);
        vs += e;
    }
    for (int l = 0; l < VW; ++l) sum += vs[l];
#endif
    for (; i < n; ++i) {
        x[i] = std::exp((x[i] - mx) * scale);
        sum += x[i];
    }
    return 1.0f / sum;
}

// One q or k row into dst: optional LayerNorm over D (weight w, bias b), then optional 2D RoPE
// from the row's cos/sin table cs = [cos[D], sin[D]].
// ref: dinov2/layers/attention.py (q_norm, k_norm, then rope), dinov2/layers/rope.py: each half
// of D (y, then x) is rotated NeoX-style: out = x * cos + cat(-x2, x1) * sin.
#if defined(__GNUC__)
// prep_row's vector path for NRW rows at once (D a multiple of 4 VW, at most 256): each row's
// arithmetic is the single row's, in the same order; the rows' reductions (sequential over the
// lanes) are interleaved, so their latency chains overlap.
template <int NRW>
void prep_rows_vec(const float *const *src, float *const *dst, int64_t D, const float *w, const float *b, float eps,
                   const float *const *cs) {
    const int nv = (int)(D / VW), qv = nv / 4;
    vf y[NRW][256 / VW];
    for (int r = 0; r < NRW; ++r)
        for (int j = 0; j < nv; ++j) y[r][j] = loadu(src[r] + j * VW);
    if (w) {
        vf sv[NRW], qs[NRW];
        float mean[NRW], var[NRW], rstd[NRW];
        for (int r = 0; r < NRW; ++r) sv[r] = vf{}, qs[r] = vf{}, mean[r] = 0.0f, var[r] = 0.0f;
        for (int j = 0; j < nv; ++j)
            for (int r = 0; r < NRW; ++r) sv[r] += y[r][j];
        for (int l = 0; l < VW; ++l)
            for (int r = 0; r < NRW; ++r) mean[r] += sv[r][l];
        for (int r = 0; r < NRW; ++r) mean[r] /= (float)D;
        for (int j = 0; j < nv; ++j) {
            for (int r = 0; r < NRW; ++r) {
                y[r][j] -= mean[r];
                qs[r] += y[r][j] * y[r][j];
            }
        }
        for (int l = 0; l < VW; ++l)
            for (int r = 0; r < NRW; ++r) var[r] += qs[r][l];
        for (int r = 0; r < NRW; ++r) rstd[r] = 1.0f / std::sqrt(var[r] / (float)D + eps);
        for (int r = 0; r < NRW; ++r)
            for (int j = 0; j < nv; ++j) y[r][j] = y[r][j] * rstd[r] * loadu(w + j * VW) + loadu(b + j * VW);
    }
    for (int r = 0; r < NRW; ++r) {
        if (!cs[r]) {
            for (int j = 0; j < nv; ++j) storeu(dst[r] + j * VW, y[r][j]);
            continue;
        }
        for (int h0 = 0; h0 < nv; h0 += 2 * qv) {
            for (int i = 0; i < qv; ++i) {
                const int a = h0 + i, c = a + qv;
                storeu(dst[r] + a * VW, y[r][a] * loadu(cs[r] + a * VW) - y[r][c] * loadu(cs[r] + D + a * VW));
                storeu(dst[r] + c * VW, y[r][c] * loadu(cs[r] + c * VW) + y[r][a] * loadu(cs[r] + D + c * VW));
            }
        }
    }
}
#endif

void prep_row(const float *src, float *dst, int64_t D, const float *w, const float *b, float eps, const float *cs) {
#if defined(__GNUC__)
    if (D % (4 * VW) == 0) {  // whole vectors per quarter of D
        prep_rows_vec<1>(&src, &dst, D, w, b, eps, &cs);
        return;
    }
#endif
    float tmp[256];
    const float *y = src;
    if (w) {
        float mean = 0.0f, var = 0.0f;
        for (int64_t d = 0; d < D; ++d) mean += src[d];
        mean /= (float)D;
        for (int64_t d = 0; d < D; ++d) var += (src[d] - mean) * (src[d] - mean);
        const float rstd = 1.0f / std::sqrt(var / (float)D + eps);
        for (int64_t d = 0; d < D; ++d) tmp[d] = (src[d] - mean) * rstd * w[d] + b[d];
        y = tmp;
    }
    if (!cs) {
        if (y != dst) std::memcpy(dst, y, (size_t)D * sizeof(float));
        return;
    }
    const int64_t half = D / 2, quarter = D / 4;
    for (int64_t h0 = 0; h0 < D; h0 += half) {
        for (int64_t i = 0; i < quarter; ++i) {
            const int64_t a = h0 + i, c = a + quarter;
            const float ya = y[a], yc = y[c];
            dst[a] = ya * cs[a] + -yc * cs[D + a];
            dst[c] = yc * cs[c] + ya * cs[D + c];
        }
    }
}

void linear_compute(ggml_tensor *dst, int ith, int nth, void *userdata) {
    const unsigned flags = (unsigned)(uintptr_t)userdata;
    const ggml_tensor *x = dst->src[0];
    const ggml_tensor *w = dst->src[1];
    int next = 2;
    const float *bias = (flags & HAS_BIAS) ? (const float *)dst->src[next++]->data : nullptr;
    const float *res = (flags & HAS_RES) ? (const float *)dst->src[next++]->data : nullptr;
    const float *scale = (flags & HAS_SCALE) ? (const float *)dst->src[next++]->data : nullptr;
    const int64_t K = w->ne[0], N = w->ne[1], M = ggml_nelements(x) / K;
    const float *X = (const float *)x->data;
    float *Y = (float *)dst->data;

    const int64_t panels = N / NR, strips = (M + MR - 1) / MR;
    const bool gelu = flags & LINEAR_GELU, packed = flags & PACKED;
    if (packed && (w->type == GGML_TYPE_Q8_0 || w->type == GGML_TYPE_Q4_K)) {
        // int8 GEMMs (pack_q8_0_weight, pack_q4_K_weight), split statically: tn groups along N
        // (panels) x tm along M. Each call quantizes the rows it takes, so these keep one share
        // per thread rather than taking chunks.
        const int tn = (int)std::min<int64_t>(nth, panels), tm = std::max(1, nth / tn);
        if (ith >= tn * tm) return;
        const int64_t pn = ith % tn, pm = ith / tn;
        const int64_t p0 = panels * pn / tn, p1 = panels * (pn + 1) / tn;
        const int64_t m0 = std::min(M, strips * pm / tm * MR), m1 = std::min(M, strips * (pm + 1) / tm * MR);
        if (p0 >= p1 || m0 >= m1) return;
        if (w->type == GGML_TYPE_Q8_0) {
            linear_q8_rows(X, K, w, m0, m1, p0, p1, bias, scale, res, gelu, Y);
        } else {
            linear_q4k_rows(X, K, w, m0, m1, p0, p1, bias, scale, res, gelu, Y);
        }
        return;
    }

    // K-blocks of equal size, a multiple of the weight type's block size
    const int64_t blck = ggml_blck_size(w->type);
    const int64_t nkb = (K + KC_MAX - 1) / KC_MAX;
    const int64_t KC = std::min(K, ((K + nkb - 1) / nkb + blck - 1) / blck * blck);
    const int ncp = (int)std::max<size_t>(1, W_BLOCK_BYTES / ((size_t)NR * KC * sizeof(float)));
    // chunks: (block of ncp panels, range of strips), block-major, so that the threads work on
    // the same weight block (read from memory once, into each core's L2) at a time
    const int64_t nblocks = (panels + ncp - 1) / ncp;
    const int64_t nranges = chunk_ranges(nth, nblocks, strips);

    thread_local gemm_scratch s;
    for_each_chunk(dst, nth, nblocks * nranges, [&](int64_t c) {
        const int64_t pc = c / nranges * ncp, r = c % nranges;
        const int np = (int)std::min<int64_t>(ncp, panels - pc);
        const int64_t m0 = std::min(M, strips * r / nranges * MR), m1 = std::min(M, strips * (r + 1) / nranges * MR);
        for (int64_t k0 = 0; k0 < K; k0 += KC) {
            const int kc = (int)std::min(KC, K - k0);
            size_t pstride;
            const float *wb = load_w_block(w, packed, pc * NR, np, k0, kc, s, pstride);
            for (int64_t m = m0; m < m1; m += MR) {
                const int R = (int)std::min<int64_t>(MR, m1 - m);
                const float *xs = X + (size_t)m * K + k0;  // R rows, read in place
                for (int p = 0; p < np; ++p) {
                    const int64_t n = (pc + p) * NR;
                    const size_t off = (size_t)m * N + n;
                    const epilogue e{k0 == 0, k0 + kc == K, gelu, bias ? bias + n : nullptr, res ? res + off : nullptr,
                                     nullptr, scale ? scale + n : nullptr};
                    run_tile(R, kc, xs, (size_t)K, wb + p * pstride, NR, Y + off, (size_t)N, e);
                }
            }
        }
    });
}

constexpr int ROW_PF = 8;  // attention: q/k/v rows fetched this many rows ahead
inline void prefetch_row(const float *p, int64_t n) {
    for (int64_t i = 0; i < n; i += 64 / (int64_t)sizeof(float)) __builtin_prefetch(p + i);
}

// Row (i1, i2, i3) of a 4-d f32 tensor whose rows are contiguous.
inline const float *row_at(const ggml_tensor *t, int64_t i1, int64_t i2, int64_t i3) {
    return (const float *)((const char *)t->data + i1 * t->nb[1] + i2 * t->nb[2] + i3 * t->nb[3]);
}

// The prologue of q or k rows (see attention_cpu): the sources after the first `base`, in the
// order [rope], [norm weight, norm bias]; eps is the norm's (the node's userdata, as f32 bits).
struct row_prologue {
    const float *rope = nullptr;
    int64_t rope_pos = 0;
    const float *w = nullptr, *b = nullptr;
    float eps = 0.0f;

    row_prologue(const ggml_tensor *dst, int base, const void *userdata) {
        const uint32_t bits = (uint32_t)(uintptr_t)userdata;
        std::memcpy(&eps, &bits, sizeof eps);
        int n = base;
        while (n < GGML_MAX_SRC && dst->src[n]) ++n;
        const int extra = n - base;  // 0, 1 (rope), 2 (norm), 3 (rope, norm)
        int next = base;
        if (extra == 1 || extra == 3) {
            rope = (const float *)dst->src[next]->data;
            rope_pos = dst->src[next++]->ne[2];
        }
        if (extra >= 2) w = (const float *)dst->src[next++]->data, b = (const float *)dst->src[next++]->data;
    }
    const float *rope_row(int64_t t, int64_t D) const { return rope ? rope + (size_t)(t % rope_pos) * 2 * D : nullptr; }
    void apply(const float *src, float *dst, int64_t D, int64_t t) const { prep_row(src, dst, D, w, b, eps, rope_row(t, D)); }
    // rows src[i] of tokens t0 + i, i < n, into dst[i]
    void apply_rows(int n, const float *const *src, float *const *dst, int64_t D, int64_t t0) const {
        int i = 0;
#if defined(__GNUC__)
        if (D % (4 * VW) == 0) {
            for (; i + 4 <= n; i += 4) {
                const float *cs[4] = {rope_row(t0 + i, D), rope_row(t0 + i + 1, D), rope_row(t0 + i + 2, D), rope_row(t0 + i + 3, D)};
                prep_rows_vec<4>(src + i, dst + i, D, w, b, eps, cs);
            }
        }
#endif
        for (; i < n; ++i) apply(src[i], dst[i], D, t0 + i);
    }
};

// K and V of every (batch, head), once, ahead of the attention node, whichever threads then use
// them: dst [NR, D, 2 * kpanels, B*NH] holds per (b, h) K prepared (k-norm, RoPE) and transposed
// into the scores GEMM's panels (key t at panel t / NR, column t % NR, zero past Tk), then V's
// rows, contiguous ([kpanels * NR][D], rows past Tk unused).
void kv_panels_compute(ggml_tensor *dst, int /*ith*/, int nth, void *userdata) {
    const ggml_tensor *k = dst->src[0], *v = dst->src[1];
    const row_prologue pro(dst, 2, userdata);
    const int64_t D = k->ne[0], NH = k->ne[1], Tk = k->ne[2], kpanels = dst->ne[2] / 2;
    const int64_t nranges = chunk_ranges(nth, dst->ne[3], kpanels);
    constexpr int G = 4;  // keys prepared together (row_prologue::apply_rows)
    static_assert(NR % G == 0, "a group of keys stays within one panel");
    float rows[G][256];
    for_each_chunk(dst, nth, dst->ne[3] * nranges, [&](int64_t c) {
        const int64_t bh = c / nranges, r = c % nranges, b = bh / NH, h = bh % NH;
        const int64_t p0 = kpanels * r / nranges, p1 = kpanels * (r + 1) / nranges;
        float *panels = (float *)dst->data + (size_t)bh * 2 * kpanels * D * NR, *vrows = panels + (size_t)kpanels * D * NR;
        for (int64_t t0 = p0 * NR; t0 < p1 * NR; t0 += G) {  // NR is a multiple of G
            const int n = (int)std::max<int64_t>(0, std::min<int64_t>(G, Tk - t0));
            const float *src[G];
            float *out[G];
            for (int i = 0; i < n; ++i) {
                const int64_t t = t0 + i;
                if (t + ROW_PF < Tk) {  // rows are a qkv stride apart: too far for the hardware prefetcher
                    prefetch_row(row_at(k, h, t + ROW_PF, b), D);
                    prefetch_row(row_at(v, h, t + ROW_PF, b), D);
                }
                src[i] = row_at(k, h, t, b), out[i] = rows[i];
                std::memcpy(vrows + (size_t)t * D, row_at(v, h, t, b), (size_t)D * sizeof(float));
            }
            pro.apply_rows(n, src, out, D, t0);
            for (int i = 0; i < G; ++i) {  // keys past Tk: zero columns
                float *kd = panels + (size_t)((t0 + i) / NR) * D * NR + (t0 + i) % NR;
                for (int64_t d = 0; d < D; ++d) kd[d * NR] = i < n ? rows[i][d] : 0.0f;
            }
        }
    });
}

struct attn_scratch {
    std::vector<float> qt;  // one strip of queries, prepared, transposed [D][MR] (rows past Tq: 0)
    std::vector<float> s;   // scores / probabilities of one strip [MR][Tk_pad]
};

// Scores of one strip of MR prepared queries (qt [D][MR]) against the Tk keys in panels kp:
// S[i][t] = q_i . k_t (t < kpanels * NR; 0 past Tk) and mx[i] = the max of S[i][0 .. Tk).
void strip_scores(const float *qt, const float *kp, int64_t D, int64_t Tk, float *S, int64_t ldS, float mx[MR]) {
    const int64_t full = Tk / NR, kpanels = (Tk + NR - 1) / NR;
#if defined(__GNUC__)
    vf rmax[MR];
    for (int i = 0; i < MR; ++i) rmax[i] = splat(-INFINITY);
    for (int64_t p = 0; p < full; ++p) scores_kernel(MR, (int)D, qt, kp + (size_t)p * D * NR, NR, S + p * NR, (size_t)ldS, rmax);
    for (int i = 0; i < MR; ++i) {
        mx[i] = -INFINITY;
        for (int l = 0; l < VW; ++l) mx[i] = std::max(mx[i], rmax[i][l]);
    }
#else
    for (int64_t p = 0; p < full; ++p) packed_a_kernel(MR, (int)D, qt, kp + (size_t)p * D * NR, NR, S + p * NR, (size_t)ldS);
    for (int i = 0; i < MR; ++i) {
        mx[i] = -INFINITY;
        for (int64_t t = 0; t < full * NR; ++t) mx[i] = std::max(mx[i], S[(size_t)i * ldS + t]);
    }
#endif
    if (kpanels > full) {  // the last, partial panel: its padding columns are not keys
        packed_a_kernel(MR, (int)D, qt, kp + (size_t)full * D * NR, NR, S + full * NR, (size_t)ldS);
        for (int i = 0; i < MR; ++i)
            for (int64_t t = full * NR; t < Tk; ++t) mx[i] = std::max(mx[i], S[(size_t)i * ldS + t]);
    }
}

// softmax(q k^T / sqrt(D)) v per (batch, head), one strip of MR queries at a time: scores by the
// GEMM micro-kernel into a [MR, Tk] buffer (each row's max kept on the way), an exact softmax
// over each row, then P V by the same kernel (1 / row sum applied in its epilogue). qk-norm and
// RoPE are applied while q is packed; K and V come packed per head (kv_panels_compute). Threads
// take chunks (b, h, range of strips) in turn (cpu_work.h).
void attention_compute(ggml_tensor *dst, int /*ith*/, int nth, void *userdata) {
    const ggml_tensor *q = dst->src[0], *kv = dst->src[1];  // src[2]: v, for its shape (Tk)
    const row_prologue pro(dst, 3, userdata);
    const int64_t D = q->ne[0], NH = q->ne[1], Tq = q->ne[2], B = q->ne[3], Tk = dst->src[2]->ne[2];
    const float scale = 1.0f / std::sqrt((float)D);
    const int64_t strips = (Tq + MR - 1) / MR;
    const int64_t nranges = chunk_ranges(nth, B * NH, strips);
    const int64_t kpanels = kv->ne[2] / 2, ldS = kpanels * NR;
    thread_local attn_scratch s;
    s.s.resize((size_t)MR * ldS);
    s.qt.resize((size_t)MR * D);
    float *Y = (float *)dst->data;
    float rows[MR][256];
    for_each_chunk(dst, nth, B * NH * nranges, [&](int64_t c) {
        const int64_t bh = c / nranges, r = c % nranges, b = bh / NH, h = bh % NH;
        const float *kpan = (const float *)kv->data + (size_t)bh * 2 * kpanels * D * NR, *vh = kpan + (size_t)kpanels * D * NR;
        for (int64_t st = strips * r / nranges; st < strips * (r + 1) / nranges; ++st) {
            const int64_t t0 = st * MR;
            const int R = (int)std::min<int64_t>(MR, Tq - t0);
            const float *src[MR];
            float *prepared[MR];
            for (int i = 0; i < R; ++i) src[i] = row_at(q, h, t0 + i, b), prepared[i] = rows[i];
            pro.apply_rows(R, src, prepared, D, t0);
            for (int i = 0; i < MR; ++i)
                for (int64_t d = 0; d < D; ++d) s.qt[d * MR + i] = i < R ? rows[i][d] : 0.0f;
            for (int64_t t = t0 + MR; t < std::min(Tq, t0 + 2 * MR); ++t) prefetch_row(row_at(q, h, t, b), D);  // the next strip
            float mx[MR], inv_sum[MR];
            strip_scores(s.qt.data(), kpan, D, Tk, s.s.data(), ldS, mx);
            for (int i = 0; i < R; ++i) inv_sum[i] = softmax_exp(s.s.data() + (size_t)i * ldS, Tk, scale, mx[i]);
            const epilogue norm{true, true, false, nullptr, nullptr, inv_sum, nullptr};
            float *out = Y + ((size_t)(b * Tq + t0) * NH + h) * D;
            const size_t ldo = (size_t)(NH * D);
            int64_t j = 0;
            for (; j + 2 * NR <= D; j += 2 * NR) {
                run_tile_wide(R, (int)Tk, s.s.data(), (size_t)ldS, vh + j, (size_t)D, out + j, ldo, norm);
            }
            for (; j < D; j += NR) run_tile(R, (int)Tk, s.s.data(), (size_t)ldS, vh + j, (size_t)D, out + j, ldo, norm);
        }
    });
}

}  // namespace

bool linear_cpu_supported(const ggml_tensor *w) {
    if (!w || !ggml_is_contiguous(w) || w->ne[2] != 1 || w->ne[3] != 1 || w->ne[1] % NR != 0) return false;
    return w->type == GGML_TYPE_F32 || ggml_get_type_traits(w->type)->to_float != nullptr;
}

namespace {
// f32 / f16 weight of N rows of K in place into the panel layout [N/NR][K][NR], panels [p0, p1)
template <typename T>  // element type by size: f32 as uint32_t, f16 as uint16_t
void repack_rows(T *data, int64_t K, int64_t p0, int64_t p1) {
    std::vector<T> rows((size_t)NR * K);  // one panel's rows: panel p occupies the same bytes
    for (int64_t p = p0; p < p1; ++p) {
        T *panel = data + (size_t)p * NR * K;
        std::copy(panel, panel + rows.size(), rows.begin());
        constexpr int64_t KB = 16;  // k-blocks: the destination rows being written stay in L1
        for (int64_t k0 = 0; k0 < K; k0 += KB) {
            const int64_t k1 = std::min(K, k0 + KB);
            for (int r = 0; r < NR; ++r) {
                const T *src = rows.data() + (size_t)r * K;
                for (int64_t k = k0; k < k1; ++k) panel[(size_t)k * NR + r] = src[k];
            }
        }
    }
}
}  // namespace

bool pack_linear_weight_rows(ggml_tensor *w, int64_t K, int64_t N, int n_threads) {
    if (!w || !ggml_is_contiguous(w) || (w->type != GGML_TYPE_F32 && w->type != GGML_TYPE_F16) || K <= 0 || N <= 0 ||
        N % NR != 0 || ggml_nelements(w) != K * N || !w->buffer || !ggml_backend_buffer_is_host(w->buffer)) {
        return false;
    }
    const int64_t panels = N / NR;
    const int nt = (int)std::max<int64_t>(1, std::min<int64_t>(n_threads, panels));
    parallel_for(nt, nt, [&](int t) {  // panels are disjoint bytes: one range per thread
        const int64_t p0 = panels * t / nt, p1 = panels * (t + 1) / nt;
        if (w->type == GGML_TYPE_F32) {
            repack_rows((uint32_t *)w->data, K, p0, p1);
        } else {
            repack_rows((uint16_t *)w->data, K, p0, p1);
        }
    });
    return true;
}

bool pack_linear_weight(ggml_tensor *w) {
    if (!linear_cpu_supported(w)) return false;
    if (w->type == GGML_TYPE_Q8_0) return NR == 32 && pack_q8_0_weight(w);
    if (w->type == GGML_TYPE_Q4_K) return NR == 32 && pack_q4_K_weight(w);
    return pack_linear_weight_rows(w, w->ne[0], w->ne[1], 1);
}

ggml_tensor *linear_cpu(ggml_context *ctx, ggml_tensor *x, ggml_tensor *w, ggml_tensor *b, ggml_tensor *res,
                        unsigned flags, bool packed, ggml_tensor *scale) {
    if (!linear_cpu_supported(w) || x->type != GGML_TYPE_F32 || !ggml_is_contiguous(x) || x->ne[0] != w->ne[0]) {
        fail(DA3_ERR_INTERNAL, "linear_cpu: unsupported operand layout");
    }
    const int64_t N = w->ne[1];
    if (packed) flags |= PACKED;
    ggml_tensor *args[5] = {x, w, nullptr, nullptr, nullptr};
    int n_args = 2;
    if (b) {
        if (b->type != GGML_TYPE_F32 || ggml_nelements(b) != N || !ggml_is_contiguous(b)) {
            fail(DA3_ERR_INTERNAL, "linear_cpu: bad bias");
        }
        args[n_args++] = b;
        flags |= HAS_BIAS;
    }
    if (res) {
        if (res->type != GGML_TYPE_F32 || !ggml_is_contiguous(res) || res->ne[0] != N || res->ne[1] != x->ne[1] ||
            res->ne[2] != x->ne[2] || res->ne[3] != x->ne[3]) {
            fail(DA3_ERR_INTERNAL, "linear_cpu: bad residual");
        }
        args[n_args++] = res;
        flags |= HAS_RES;
    }
    if (scale) {
        if (scale->type != GGML_TYPE_F32 || ggml_nelements(scale) != N || !ggml_is_contiguous(scale)) {
            fail(DA3_ERR_INTERNAL, "linear_cpu: bad scale");
        }
        args[n_args++] = scale;
        flags |= HAS_SCALE;
    }
    if (flags & LINEAR_BF16) return linear_bf16(ctx, x, w, b, res, scale, flags & LINEAR_GELU, bf16_engine_available());
    return with_work_counter(ggml_custom_4d(ctx, GGML_TYPE_F32, N, x->ne[1], x->ne[2], x->ne[3], args, n_args,
                                            linear_compute, GGML_N_TASKS_MAX, (void *)(uintptr_t)flags));
}

int gemm_tile_rows() { return MR; }
int gemm_tile_cols() { return NR; }
void gemm_tile_f32_packed_a(int R, int kc, const float *Ap, const float *B, size_t ldb, float *C, size_t ldc) {
    packed_a_kernel(R, kc, Ap, B, ldb, C, ldc);
}

bool attention_cpu_supported(int64_t head_dim) { return head_dim % NR == 0 && head_dim <= 256; }

ggml_tensor *attention_cpu(ggml_context *ctx, ggml_tensor *q, ggml_tensor *k, ggml_tensor *v,
                          const attn_prologue *pro) {
    auto ok = [&](const ggml_tensor *t) { return t->type == GGML_TYPE_F32 && t->nb[0] == sizeof(float); };
    const int64_t D = q->ne[0];
    if (!ok(q) || !ok(k) || !ok(v) || !attention_cpu_supported(D) || k->ne[0] != D || v->ne[0] != D ||
        k->ne[1] != q->ne[1] || v->ne[1] != q->ne[1] || v->ne[2] != k->ne[2] || k->ne[3] != q->ne[3] ||
        v->ne[3] != q->ne[3]) {
        fail(DA3_ERR_INTERNAL, "attention_cpu: unsupported operand layout");
    }
    ggml_tensor *rope = nullptr, *qn[2] = {nullptr, nullptr}, *kn[2] = {nullptr, nullptr};
    float eps = 0.0f;
    if (pro && pro->rope) {
        if (pro->rope->type != GGML_TYPE_F32 || !ggml_is_contiguous(pro->rope) || pro->rope->ne[0] != D ||
            pro->rope->ne[1] != 2) {
            fail(DA3_ERR_INTERNAL, "attention_cpu: bad rope table");
        }
        rope = pro->rope;
    }
    if (pro && pro->q_norm_w) {
        for (ggml_tensor *t : {pro->q_norm_w, pro->q_norm_b, pro->k_norm_w, pro->k_norm_b}) {
            if (!t || t->type != GGML_TYPE_F32 || ggml_nelements(t) != D) fail(DA3_ERR_INTERNAL, "attention_cpu: bad qk-norm");
        }
        qn[0] = pro->q_norm_w, qn[1] = pro->q_norm_b, kn[0] = pro->k_norm_w, kn[1] = pro->k_norm_b;
        eps = pro->eps;
    }
    uint32_t bits;
    std::memcpy(&bits, &eps, sizeof bits);
    // the sources of a q or k prologue (row_prologue): x, [rope], [norm weight, norm bias]
    auto with_prologue = [&](std::initializer_list<ggml_tensor *> first, ggml_tensor *const norm[2], ggml_tensor **args) {
        int n = 0;
        for (ggml_tensor *t : first) args[n++] = t;
        if (rope) args[n++] = rope;
        if (norm[0]) args[n++] = norm[0], args[n++] = norm[1];
        return n;
    };
    ggml_tensor *args[6];
    const int64_t kpanels = (k->ne[2] + NR - 1) / NR;
    int n = with_prologue({k, v}, kn, args);
    ggml_tensor *kv = with_work_counter(ggml_custom_4d(ctx, GGML_TYPE_F32, NR, D, 2 * kpanels, k->ne[1] * k->ne[3], args, n,
                                                       kv_panels_compute, GGML_N_TASKS_MAX, (void *)(uintptr_t)bits));
    n = with_prologue({q, kv, v}, qn, args);
    return with_work_counter(ggml_custom_4d(ctx, GGML_TYPE_F32, D, q->ne[1], q->ne[2], q->ne[3], args, n,
                                            attention_compute, GGML_N_TASKS_MAX, (void *)(uintptr_t)bits));
}

}  // namespace da3
