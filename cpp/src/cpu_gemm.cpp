#include "cpu_gemm.h"

#include "common.h"
#include "cpu_gemm_q4k.h"
#include "cpu_gemm_q8.h"
#include "cpu_simd.h"
#include "cpu_work.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
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
void packed_a_kernel(int R, int kc, const float *ap, const float *bp, size_t ldb, float *c, size_t ldc) {
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

// In place: x[i] <- exp(scale * (x[i] - max)) over the n entries; returns 1 / their sum (the
// softmax of scale * x is x * that, as PyTorch's math path computes it in f32).
float softmax_row(float *x, int64_t n, float scale) {
    float mx = -INFINITY;
    int64_t i = 0;
#if defined(__GNUC__)
    vf vm = splat(-INFINITY);
    for (; i + VW <= n; i += VW) {
        const vf v = loadu(x + i);
        vm = select(v > vm, v, vm);
    }
    for (int l = 0; l < VW; ++l) mx = std::max(mx, vm[l]);
#endif
    for (; i < n; ++i) mx = std::max(mx, x[i]);
    i = 0;
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
void prep_row(const float *src, float *dst, int64_t D, const float *w, const float *b, float eps, const float *cs) {
#if defined(__GNUC__)
    if (D % (4 * VW) == 0) {  // whole vectors per quarter of D
        const int nv = (int)(D / VW), qv = nv / 4;
        vf y[256 / VW];
        for (int j = 0; j < nv; ++j) y[j] = loadu(src + j * VW);
        if (w) {
            vf sv = vf{};
            for (int j = 0; j < nv; ++j) sv += y[j];
            float mean = 0.0f;
            for (int l = 0; l < VW; ++l) mean += sv[l];
            mean /= (float)D;
            vf qs = vf{};
            for (int j = 0; j < nv; ++j) {
                y[j] -= mean;
                qs += y[j] * y[j];
            }
            float var = 0.0f;
            for (int l = 0; l < VW; ++l) var += qs[l];
            const float rstd = 1.0f / std::sqrt(var / (float)D + eps);
            for (int j = 0; j < nv; ++j) y[j] = y[j] * rstd * loadu(w + j * VW) + loadu(b + j * VW);
        }
        if (!cs) {
            for (int j = 0; j < nv; ++j) storeu(dst + j * VW, y[j]);
            return;
        }
        for (int h0 = 0; h0 < nv; h0 += 2 * qv) {
            for (int i = 0; i < qv; ++i) {
                const int a = h0 + i, c = a + qv;
                storeu(dst + a * VW, y[a] * loadu(cs + a * VW) - y[c] * loadu(cs + D + a * VW));
                storeu(dst + c * VW, y[c] * loadu(cs + c * VW) + y[a] * loadu(cs + D + c * VW));
            }
        }
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

struct attn_scratch {
    std::vector<float> kp;  // K^T as panels [Tk/NR][D][NR], zero-padded keys
    std::vector<float> vp;  // V as [Tk][D]
    std::vector<float> qt;  // one strip of queries, prepared, transposed [D][MR] (rows past Tq: 0)
    std::vector<float> s;   // scores / probabilities of one strip [MR][Tk_pad]
};

// Optional inputs after q, k, v: [rope], [q_norm w, b, k_norm w, b] (see attention_cpu).
struct attn_inputs {
    const float *rope = nullptr;
    int64_t rope_pos = 0;
    const float *qw = nullptr, *qb = nullptr, *kw = nullptr, *kb = nullptr;
};

// softmax(q k^T / sqrt(D)) v per (batch, head), one strip of MR queries at a time: scores by the
// GEMM micro-kernel into a [MR, Tk] buffer, an exact softmax over each row, then P V by the same
// kernel (1 / row sum applied in its epilogue). qk-norm and RoPE are applied while q and k are
// packed. Threads take chunks (b, h, range of strips) in turn (cpu_work.h); a thread packs K and
// V of a head when it starts on a chunk of that head.
void attention_compute(ggml_tensor *dst, int /*ith*/, int nth, void *userdata) {
    const ggml_tensor *q = dst->src[0], *k = dst->src[1], *v = dst->src[2];
    const uint32_t bits = (uint32_t)(uintptr_t)userdata;  // the norm eps's f32 bits (attention_cpu)
    float eps;
    std::memcpy(&eps, &bits, sizeof eps);
    int n_src = 3;
    while (n_src < GGML_MAX_SRC && dst->src[n_src]) ++n_src;
    attn_inputs in;
    int next = 3;
    if (n_src == 4 || n_src == 8) {
        in.rope = (const float *)dst->src[next]->data;
        in.rope_pos = dst->src[next++]->ne[2];
    }
    if (n_src >= 7) {
        in.qw = (const float *)dst->src[next++]->data, in.qb = (const float *)dst->src[next++]->data;
        in.kw = (const float *)dst->src[next++]->data, in.kb = (const float *)dst->src[next++]->data;
    }
    const int64_t D = q->ne[0], NH = q->ne[1], Tq = q->ne[2], B = q->ne[3], Tk = k->ne[2];
    const float scale = 1.0f / std::sqrt((float)D);
    const int64_t strips = (Tq + MR - 1) / MR;
    // chunks: (batch * head, range of strips), head-major; a thread packs a head's K and V when
    // it takes its first chunk of that head
    const int64_t nranges = chunk_ranges(nth, B * NH, strips);
    const int64_t kpanels = (Tk + NR - 1) / NR, ldS = kpanels * NR;
    thread_local attn_scratch s;
    s.s.resize((size_t)MR * ldS);
    s.qt.resize((size_t)MR * D);
    float *Y = (float *)dst->data;
    auto at = [](const ggml_tensor *t, int64_t i1, int64_t i2, int64_t i3) {
        return (const float *)((const char *)t->data + i1 * t->nb[1] + i2 * t->nb[2] + i3 * t->nb[3]);
    };
    auto rope_row = [&](int64_t t) { return in.rope ? in.rope + (size_t)(t % in.rope_pos) * 2 * D : nullptr; };
    float row[256];
    int64_t packed = -1;  // the (b, h) whose K and V are in s.kp / s.vp during this call
    for_each_chunk(dst, nth, B * NH * nranges, [&](int64_t c) {
        const int64_t bh = c / nranges, r = c % nranges, b = bh / NH, h = bh % NH;
        if (bh != packed) {  // pack this head's K and V
            s.kp.assign((size_t)kpanels * D * NR, 0.0f);
            s.vp.resize((size_t)Tk * D);
            for (int64_t t = 0; t < Tk; ++t) {
                if (t + ROW_PF < Tk) {  // rows are a qkv stride apart: too far for the hardware prefetcher
                    prefetch_row(at(k, h, t + ROW_PF, b), D);
                    prefetch_row(at(v, h, t + ROW_PF, b), D);
                }
                prep_row(at(k, h, t, b), row, D, in.kw, in.kb, eps, rope_row(t));
                float *kd = s.kp.data() + (size_t)(t / NR) * D * NR + t % NR;
                for (int64_t d = 0; d < D; ++d) kd[d * NR] = row[d];
                std::memcpy(s.vp.data() + (size_t)t * D, at(v, h, t, b), (size_t)D * sizeof(float));
            }
            packed = bh;
        }
        for (int64_t st = strips * r / nranges; st < strips * (r + 1) / nranges; ++st) {
            const int64_t t0 = st * MR;
            const int R = (int)std::min<int64_t>(MR, Tq - t0);
            for (int i = 0; i < MR; ++i) {
                if (i < R) prep_row(at(q, h, t0 + i, b), row, D, in.qw, in.qb, eps, rope_row(t0 + i));
                for (int64_t d = 0; d < D; ++d) s.qt[d * MR + i] = i < R ? row[d] : 0.0f;
            }
            for (int64_t t = t0 + MR; t < std::min(Tq, t0 + 2 * MR); ++t) prefetch_row(at(q, h, t, b), D);  // the next strip
            for (int64_t p = 0; p < kpanels; ++p) {
                packed_a_kernel(MR, (int)D, s.qt.data(), s.kp.data() + (size_t)p * D * NR, NR, s.s.data() + p * NR, (size_t)ldS);
            }
            float inv_sum[MR];
            for (int i = 0; i < R; ++i) inv_sum[i] = softmax_row(s.s.data() + (size_t)i * ldS, Tk, scale);
            const epilogue norm{true, true, false, nullptr, nullptr, inv_sum, nullptr};
            float *out = Y + ((size_t)(b * Tq + t0) * NH + h) * D;
            const size_t ldo = (size_t)(NH * D);
            int64_t j = 0;
            for (; j + 2 * NR <= D; j += 2 * NR) {
                run_tile_wide(R, (int)Tk, s.s.data(), (size_t)ldS, s.vp.data() + j, (size_t)D, out + j, ldo, norm);
            }
            for (; j < D; j += NR) {
                run_tile(R, (int)Tk, s.s.data(), (size_t)ldS, s.vp.data() + j, (size_t)D, out + j, ldo, norm);
            }
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
    ggml_tensor *args[8] = {q, k, v};
    int n = 3;
    float eps = 0.0f;
    if (pro && pro->rope) {
        if (pro->rope->type != GGML_TYPE_F32 || !ggml_is_contiguous(pro->rope) || pro->rope->ne[0] != D ||
            pro->rope->ne[1] != 2) {
            fail(DA3_ERR_INTERNAL, "attention_cpu: bad rope table");
        }
        args[n++] = pro->rope;
    }
    if (pro && pro->q_norm_w) {
        for (ggml_tensor *t : {pro->q_norm_w, pro->q_norm_b, pro->k_norm_w, pro->k_norm_b}) {
            if (!t || t->type != GGML_TYPE_F32 || ggml_nelements(t) != D) fail(DA3_ERR_INTERNAL, "attention_cpu: bad qk-norm");
            args[n++] = t;
        }
        eps = pro->eps;
    }
    uint32_t bits;
    std::memcpy(&bits, &eps, sizeof bits);
    return with_work_counter(ggml_custom_4d(ctx, GGML_TYPE_F32, D, q->ne[1], q->ne[2], q->ne[3], args, n,
                                            attention_compute, GGML_N_TASKS_MAX, (void *)(uintptr_t)bits));
}

}  // namespace da3
