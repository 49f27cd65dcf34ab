// Our CPU GEMM and attention ops (cpu_gemm.h) against plain double-precision loops, on shapes
// that hit every edge: row counts that are not a multiple of the micro-tile, K split into
// several K-blocks, packed and unpacked f32/f16 weights, q8_0 and q4_K weights, fused bias /
// GELU / residual, attention over strided views of a fused qkv with qk-norm and RoPE; the int8
// (VNNI) q8_0 and q4_K GEMMs against the same loops on activations quantized as ggml quantizes
// them to q8_0; convolution kernels packed as their im2col GEMM's matrix. The work counter our
// ops share their chunks through (cpu_work.h): every chunk taken exactly once per run, over
// repeated runs of one graph and several thread counts.
// Exit code 0 on success; prints the failures otherwise.
#include "kernels/cpu_attention.h"
#include "kernels/cpu_gemm.h"
#include "kernels/cpu_gemm_q4k.h"
#include "kernels/cpu_gemm_q8.h"
#include "kernels/cpu_work.h"

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"
#include "test_util.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

using namespace da3;

struct graph {
    ggml_backend_t be = ggml_backend_cpu_init();
    ggml_context *ctx;
    ggml_backend_buffer_t buf = nullptr;
    graph() {
        ggml_init_params ip = {ggml_tensor_overhead() * 64 + 2 * ggml_graph_overhead(), nullptr, true};  // run() twice
        ctx = ggml_init(ip);
        ggml_backend_cpu_set_n_threads(be, 3);  // an odd split across threads
    }
    ~graph() {
        if (buf) ggml_backend_buffer_free(buf);
        ggml_free(ctx);
        ggml_backend_free(be);
    }
    void alloc() { buf = ggml_backend_alloc_ctx_tensors(ctx, be); }
    // builds the graph of out (already allocated with the context's tensors) and computes it
    std::vector<float> run(ggml_tensor *out) {
        ggml_cgraph *gf = ggml_new_graph(ctx);
        ggml_build_forward_expand(gf, out);
        ggml_backend_graph_compute(be, gf);
        std::vector<float> v(ggml_nelements(out));
        ggml_backend_tensor_get(out, v.data(), 0, v.size() * sizeof(float));
        return v;
    }
};

static void test_linear(ggml_type type, bool packed, int M, int K, int N, bool gelu, bool with_res,
                        bool with_scale = false) {
    graph g;
    ggml_tensor *x = ggml_new_tensor_2d(g.ctx, GGML_TYPE_F32, K, M);
    ggml_tensor *w = ggml_new_tensor_2d(g.ctx, type, K, N);
    ggml_tensor *b = ggml_new_tensor_1d(g.ctx, GGML_TYPE_F32, N);
    ggml_tensor *r = ggml_new_tensor_2d(g.ctx, GGML_TYPE_F32, N, M);
    ggml_tensor *sc = ggml_new_tensor_1d(g.ctx, GGML_TYPE_F32, N);
    ggml_tensor *out = linear_cpu(g.ctx, x, w, b, with_res ? r : nullptr, gelu ? LINEAR_GELU : 0u, packed,
                                  with_scale ? sc : nullptr);
    g.alloc();
    const std::vector<float> xv = randn((size_t)K * M, 1), wv = randn((size_t)K * N, 2, 0.05f), bv = randn(N, 3),
                             rv = randn((size_t)N * M, 4), sv = randn(N, 6);
    // the reference uses the weights as stored (after quantization)
    std::vector<char> q(ggml_nbytes(w));
    if (type == GGML_TYPE_F32) {
        std::memcpy(q.data(), wv.data(), q.size());
    } else {
        ggml_quantize_chunk(type, wv.data(), q.data(), 0, N, K, nullptr);
    }
    std::vector<float> wd((size_t)K * N);
    if (type == GGML_TYPE_F32) {
        wd = wv;
    } else {
        ggml_get_type_traits(type)->to_float(q.data(), wd.data(), (int64_t)K * N);
    }
    ggml_backend_tensor_set(x, xv.data(), 0, ggml_nbytes(x));
    ggml_backend_tensor_set(w, q.data(), 0, q.size());
    ggml_backend_tensor_set(b, bv.data(), 0, ggml_nbytes(b));
    ggml_backend_tensor_set(r, rv.data(), 0, ggml_nbytes(r));
    ggml_backend_tensor_set(sc, sv.data(), 0, ggml_nbytes(sc));
    const bool int8 = packed && (type == GGML_TYPE_Q8_0 || type == GGML_TYPE_Q4_K);
    if (int8 && !(type == GGML_TYPE_Q8_0 ? q8_gemm_available() : q4k_gemm_available())) {
        std::printf("linear %s packed M=%d K=%d N=%d: skipped (no int8 GEMM in this build)\n", ggml_type_name(type), M,
                    K, N);
        return;
    }
    if (packed && !pack_linear_weight(w)) {
        check(false, "pack_linear_weight refused a host weight it supports", 0.0);
        return;
    }
    const std::vector<float> y = g.run(out);
    // int8 path: the activations as the kernel quantizes them (q8_0: d = max|x| / 127 per block
    // of 32, q = x * (1 / d) rounded to nearest even)
    std::vector<double> xr(xv.begin(), xv.end());
    if (int8) {
        for (size_t b0 = 0; b0 < xv.size(); b0 += 32) {
            float amax = 0.0f;
            for (int k = 0; k < 32; ++k) amax = std::max(amax, std::fabs(xv[b0 + k]));
            const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
            for (int k = 0; k < 32; ++k) xr[b0 + k] = (double)std::nearbyint(xv[b0 + k] * id) * d;
        }
    }
    std::vector<double> ref((size_t)N * M);
    for (int m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n) {
            double s = bv[n];
            for (int k = 0; k < K; ++k) s += xr[(size_t)m * K + k] * wd[(size_t)n * K + k];
            if (gelu) s = 0.5 * s * std::erfc(-s / std::sqrt(2.0));
            if (with_scale) s *= sv[n];
            if (with_res) s += rv[(size_t)m * N + n];
            ref[(size_t)m * N + n] = s;
        }
    char what[160];
    std::snprintf(what, sizeof what, "linear %s%s M=%d K=%d N=%d%s%s%s", ggml_type_name(type), packed ? " packed" : "", M, K,
                  N, gelu ? " gelu" : "", with_scale ? " *scale" : "", with_res ? " +res" : "");
    check(rel_err(y, ref) < 2e-6, what, rel_err(y, ref));
}

// A convolution kernel [KW, KH, Cin, Cout] packed in place as the [KW*KH*Cin, Cout] matrix of its
// im2col GEMM (pack_linear_weight_rows), used through a 2-D reshape: the same result as the
// unpacked kernel, bit for bit, and as the double loop. Shapes and types it must refuse.
static void test_packed_rows(ggml_type type, int n_threads) {
    const int KW = 3, KH = 3, Cin = 64, Cout = 64, M = 29, K = KW * KH * Cin;  // K: two K-blocks
    graph g;
    ggml_tensor *x = ggml_new_tensor_2d(g.ctx, GGML_TYPE_F32, K, M);
    ggml_tensor *wp = ggml_new_tensor_4d(g.ctx, type, KW, KH, Cin, Cout);  // to be packed
    ggml_tensor *wu = ggml_new_tensor_4d(g.ctx, type, KW, KH, Cin, Cout);  // the same values, unpacked
    ggml_tensor *odd = ggml_new_tensor_4d(g.ctx, type, KW, KH, Cin, 48);   // Cout not a multiple of 32
    ggml_tensor *q8 = ggml_new_tensor_2d(g.ctx, GGML_TYPE_Q8_0, 64, 32);
    ggml_tensor *b = ggml_new_tensor_1d(g.ctx, GGML_TYPE_F32, Cout);
    ggml_tensor *yp = linear_cpu(g.ctx, x, ggml_reshape_2d(g.ctx, wp, K, Cout), b, nullptr, 0u, true);
    ggml_tensor *yu = linear_cpu(g.ctx, x, ggml_reshape_2d(g.ctx, wu, K, Cout), b, nullptr, 0u, false);
    g.alloc();
    const std::vector<float> xv = randn((size_t)K * M, 11), wv = randn((size_t)K * Cout, 12, 0.05f), bv = randn(Cout, 13);
    std::vector<char> wq(ggml_nbytes(wp));
    if (type == GGML_TYPE_F32) {
        std::memcpy(wq.data(), wv.data(), wq.size());
    } else {
        ggml_fp32_to_fp16_row(wv.data(), (ggml_fp16_t *)wq.data(), (int64_t)wv.size());
    }
    std::vector<float> wd(wv);  // the weights as stored
    if (type == GGML_TYPE_F16) ggml_fp16_to_fp32_row((const ggml_fp16_t *)wq.data(), wd.data(), (int64_t)wd.size());
    ggml_backend_tensor_set(x, xv.data(), 0, ggml_nbytes(x));
    ggml_backend_tensor_set(wp, wq.data(), 0, wq.size());
    ggml_backend_tensor_set(wu, wq.data(), 0, wq.size());
    ggml_backend_tensor_set(b, bv.data(), 0, ggml_nbytes(b));
    char what[160];
    std::snprintf(what, sizeof what, "pack_linear_weight_rows %s: refuses Cout 48, q8_0, a wrong K x N", ggml_type_name(type));
    check(!pack_linear_weight_rows(odd, K, 48) && !pack_linear_weight_rows(q8, 64, 32) &&
              !pack_linear_weight_rows(wp, K + 1, Cout) && !pack_linear_weight_rows(nullptr, K, Cout),
          what, 0.0);
    if (!pack_linear_weight_rows(wp, K, Cout, n_threads)) {
        check(false, "pack_linear_weight_rows refused a host conv kernel it supports", 0.0);
        return;
    }
    const std::vector<float> p = g.run(yp), u = g.run(yu);
    std::vector<double> ref((size_t)Cout * M);
    for (int m = 0; m < M; ++m)
        for (int n = 0; n < Cout; ++n) {
            double s = bv[n];
            for (int k = 0; k < K; ++k) s += (double)xv[(size_t)m * K + k] * wd[(size_t)n * K + k];
            ref[(size_t)m * Cout + n] = s;
        }
    std::snprintf(what, sizeof what, "linear, packed %s [3, 3, 64, 64] kernel (%d packing threads) = unpacked, bit for bit",
                  ggml_type_name(type), n_threads);
    check(p == u, what, 0.0);
    std::snprintf(what, sizeof what, "linear over a packed %s [3, 3, 64, 64] kernel: against the double loop",
                  ggml_type_name(type));
    check(rel_err(p, ref) < 2e-6, what, rel_err(p, ref));
}

// q, k, v as views of one [3C, T, B] tensor, as the ViT builds them.
static void test_attention(int T, int B, int NH, bool norm, bool rope) {
    const int D = 64, C = NH * D;
    graph g;
    ggml_tensor *qkv = ggml_new_tensor_3d(g.ctx, GGML_TYPE_F32, 3 * C, T, B);
    ggml_tensor *nw[4];
    for (ggml_tensor *&t : nw) t = ggml_new_tensor_1d(g.ctx, GGML_TYPE_F32, D);
    ggml_tensor *table = ggml_new_tensor_3d(g.ctx, GGML_TYPE_F32, D, 2, T);
    const size_t es = sizeof(float);
    auto view = [&](int part) {
        return ggml_view_4d(g.ctx, qkv, D, NH, T, B, D * es, qkv->nb[1], qkv->nb[2], part * C * es);
    };
    attn_prologue pro;
    if (norm) pro.q_norm_w = nw[0], pro.q_norm_b = nw[1], pro.k_norm_w = nw[2], pro.k_norm_b = nw[3], pro.eps = 1e-5f;
    if (rope) pro.rope = table;
    ggml_tensor *out = attention_cpu(g.ctx, view(0), view(1), view(2), &pro);
    g.alloc();
    const std::vector<float> qv = randn((size_t)3 * C * T * B, 5);
    ggml_backend_tensor_set(qkv, qv.data(), 0, ggml_nbytes(qkv));
    std::vector<std::vector<float>> nv;
    for (int i = 0; i < 4; ++i) {
        nv.push_back(randn(D, 10 + i, 0.5f));
        if (i % 2 == 0)
            for (float &x : nv.back()) x += 1.0f;
        ggml_backend_tensor_set(nw[i], nv.back().data(), 0, D * sizeof(float));
    }
    std::vector<float> tab((size_t)T * 2 * D);
    for (int t = 0; t < T; ++t)
        for (int d = 0; d < D; ++d) {
            const double a = (t % 7 + d / 32) * std::pow(100.0, -(double)(d % 16) / 16.0);
            tab[(size_t)t * 2 * D + d] = (float)std::cos(a);
            tab[(size_t)t * 2 * D + D + d] = (float)std::sin(a);
        }
    ggml_backend_tensor_set(table, tab.data(), 0, ggml_nbytes(table));
    const std::vector<float> y = g.run(out);

    auto prep = [&](const float *src, int t, const std::vector<float> *w, const std::vector<float> *b, double *out) {
        double y[64];
        for (int d = 0; d < D; ++d) y[d] = src[d];
        if (norm) {
            double mean = 0, var = 0;
            for (int d = 0; d < D; ++d) mean += y[d];
            mean /= D;
            for (int d = 0; d < D; ++d) var += (y[d] - mean) * (y[d] - mean);
            const double rstd = 1.0 / std::sqrt(var / D + 1e-5);
            for (int d = 0; d < D; ++d) y[d] = (y[d] - mean) * rstd * (*w)[d] + (*b)[d];
        }
        for (int d = 0; d < D; ++d) {
            if (!rope) {
                out[d] = y[d];
                continue;
            }
            const int h0 = d / 32 * 32, i = d % 32;
            const double rot = i < 16 ? -y[h0 + i + 16] : y[h0 + i - 16];
            out[d] = y[d] * tab[(size_t)t * 2 * D + d] + rot * tab[(size_t)t * 2 * D + D + d];
        }
    };
    std::vector<double> ref((size_t)D * NH * T * B);
    std::vector<double> K((size_t)T * D), s(T);
    for (int bb = 0; bb < B; ++bb)
        for (int h = 0; h < NH; ++h) {
            auto row = [&](int part, int t) { return qv.data() + ((size_t)bb * T + t) * 3 * C + part * C + h * D; };
            for (int t = 0; t < T; ++t) prep(row(1, t), t, &nv[2], &nv[3], &K[(size_t)t * D]);
            for (int tq = 0; tq < T; ++tq) {
                double q[64], mx = -1e300, sum = 0.0;
                prep(row(0, tq), tq, &nv[0], &nv[1], q);
                for (int t = 0; t < T; ++t) {
                    double dot = 0.0;
                    for (int d = 0; d < D; ++d) dot += q[d] * K[(size_t)t * D + d];
                    s[t] = dot / std::sqrt((double)D);
                    mx = std::max(mx, s[t]);
                }
                for (int t = 0; t < T; ++t) sum += (s[t] = std::exp(s[t] - mx));
                for (int d = 0; d < D; ++d) {
                    double o = 0.0;
                    for (int t = 0; t < T; ++t) o += s[t] / sum * row(2, t)[d];
                    ref[(((size_t)bb * T + tq) * NH + h) * D + d] = o;
                }
            }
        }
    char what[160];
    std::snprintf(what, sizeof what, "attention T=%d B=%d heads=%d%s%s", T, B, NH, norm ? " qk-norm" : "", rope ? " rope" : "");
    check(rel_err(y, ref) < 2e-6, what, rel_err(y, ref));
}

// A custom op whose chunk c adds 1 to y[c]: after R runs every y[c] is R exactly when each run
// hands out every chunk once (a counter left unreset by a run hands out nothing in the next).
static void count_chunks(ggml_tensor *dst, int, int nth, void *) {
    float *y = (float *)dst->data;
    for_each_chunk(dst, nth, ggml_nelements(dst), [&](int64_t c) { y[c] += 1.0f; });
}

static void test_work_chunks(int n_threads, int n) {
    ggml_backend_t be = ggml_backend_cpu_init();
    ggml_backend_cpu_set_n_threads(be, n_threads);
    ggml_init_params ip = {ggml_tensor_overhead() * 8 + ggml_graph_overhead(), nullptr, true};
    ggml_context *ctx = ggml_init(ip);
    ggml_tensor *x = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, n);
    ggml_tensor *y = with_work_counter(ggml_custom_4d(ctx, GGML_TYPE_F32, n, 1, 1, 1, &x, 1, count_chunks,
                                                      GGML_N_TASKS_MAX, nullptr));
    ggml_cgraph *gf = ggml_new_graph(ctx);
    ggml_build_forward_expand(gf, y);
    ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors(ctx, be);
    ggml_backend_buffer_clear(buf, 0);
    const int runs = 5;
    for (int r = 0; r < runs; ++r) ggml_backend_graph_compute(be, gf);
    std::vector<float> v(n);
    ggml_backend_tensor_get(y, v.data(), 0, n * sizeof(float));
    double worst = 0.0;
    for (float h : v) worst = std::max(worst, (double)std::fabs(h - (float)runs));
    char what[96];
    std::snprintf(what, sizeof what, "work chunks: %d chunks on %d threads, %d runs", n, n_threads, runs);
    check(worst == 0.0, what, worst);
    ggml_backend_buffer_free(buf);
    ggml_free(ctx);
    ggml_backend_free(be);
}

int main() {
    ggml_cpu_init();
    for (int nt : {1, 2, 3, 4})
        for (int n : {1, 5, 64}) test_work_chunks(nt, n);
    test_linear(GGML_TYPE_F32, false, 37, 96, 64, false, false);
    test_linear(GGML_TYPE_F32, true, 37, 600, 96, true, true, true);  // two K-blocks
    test_linear(GGML_TYPE_F32, true, 1, 64, 32, false, true);
    test_linear(GGML_TYPE_F16, true, 50, 128, 64, true, false);
    test_linear(GGML_TYPE_F16, false, 50, 128, 64, false, true, true);
    test_linear(GGML_TYPE_Q8_0, false, 29, 1088, 64, false, true);  // K-blocks of whole q8_0 blocks
    test_linear(GGML_TYPE_Q4_K, false, 29, 768, 32, true, false);   // K-blocks of whole q4_K super-blocks
    test_linear(GGML_TYPE_Q8_0, true, 29, 1088, 96, true, true, true);  // int8 GEMM: tiles of 6 rows, 3 panels
    test_linear(GGML_TYPE_Q8_0, true, 1, 32, 32, false, false);
    test_linear(GGML_TYPE_Q4_K, true, 1, 256, 32, false, false);  // int8 q4_K GEMM
    test_linear(GGML_TYPE_Q4_K, true, 13, 768, 96, true, true, true);
    test_linear(GGML_TYPE_Q4_K, true, 29, 3072, 32, false, true);
    test_linear(GGML_TYPE_Q4_K, true, 41, 256, 96, true, false, true);
    test_packed_rows(GGML_TYPE_F32, 1);
    test_packed_rows(GGML_TYPE_F32, 3);  // 2 panels: 2 threads
    test_packed_rows(GGML_TYPE_F16, 2);
    test_attention(45, 1, 2, false, false);
    test_attention(45, 2, 3, true, true);
    test_attention(70, 1, 1, true, false);
    if (g_failures) std::fprintf(stderr, "%d failure(s)\n", g_failures);
    return g_failures ? 1 : 0;
}
