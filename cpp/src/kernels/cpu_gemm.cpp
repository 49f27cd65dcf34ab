#include "kernels/cpu_gemm.h"

#include "common.h"
#include "kernels/cpu_gemm_amx.h"
#include "kernels/cpu_gemm_q4k.h"
#include "kernels/cpu_gemm_q8.h"
#include "kernels/cpu_gemm_tile.h"
#include "kernels/cpu_simd.h"
#include "kernels/cpu_work.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace da3 {
namespace {
using namespace simd;
using namespace tile;

constexpr int KC_MAX = 512;                  // K-block: an MR x KC activation strip stays in L1
constexpr size_t W_BLOCK_BYTES = 512 << 10;  // one thread's f32 weight block, kept in L2

constexpr unsigned HAS_BIAS = 1u << 8, HAS_RES = 1u << 9, PACKED = 1u << 10, HAS_SCALE = 1u << 11;

struct gemm_scratch {
    std::vector<float> w;    // [panel][k][NR], one W block
    std::vector<float> row;  // one weight row segment as f32
};

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

}  // namespace da3
