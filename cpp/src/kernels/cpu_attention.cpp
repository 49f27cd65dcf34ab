// Exact multi-head attention on the CPU (attention_cpu, cpu_attention.h): K and V packed per
// head, then per strip of queries the scores, an exact softmax and P V by the GEMM micro-kernel
// (cpu_gemm_tile.h).
#include "kernels/cpu_attention.h"

#include "common.h"
#include "kernels/cpu_gemm_tile.h"
#include "kernels/cpu_simd.h"
#include "kernels/cpu_work.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <vector>

namespace da3 {
namespace {
using namespace simd;
using namespace tile;

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
