// The bf16 GEMM (cpu_gemm_amx.h) against double-precision loops: each engine this CPU offers
// (AMX-BF16 tiles, AVX512-BF16 vdpbf16ps) on host arrays with M not a multiple of 16 or 32, K
// not a multiple of 32, N several panels; the graph op (linear_cpu with LINEAR_BF16) on f32 and
// f16 weights packed in place, with bias, GELU, layer scale and residual, on 3 threads; the
// packer's refusals; f32 -> bf16 rounding (nearest even, NaN, overflow).
// Two references per case: the same products of bf16-rounded operands in double (what the
// engines must compute up to f32 summation) and the f32 operands (what bf16 costs).
// Exit code 0 on success, 77 (skipped) when this CPU offers no bf16 engine, with a line
// starting "platform: " per engine it lacks.
#include "kernels/cpu_gemm.h"
#include "kernels/cpu_gemm_amx.h"

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"
#include "test_util.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace da3;

static double bf16_value(float f) {
    const uint32_t u = (uint32_t)f32_to_bf16(f) << 16;
    float r;
    std::memcpy(&r, &u, sizeof r);
    return r;
}

struct epi {
    const float *bias = nullptr, *scale = nullptr, *res = nullptr;
    bool gelu = false;
};

// y = act(x w^T + b) * scale + res in double, operands rounded to bf16 or not
static std::vector<double> reference(const std::vector<float> &x, const std::vector<float> &w, int M, int K, int N,
                                     bool round, const epi &e) {
    std::vector<double> xr(x.begin(), x.end()), wr(w.begin(), w.end()), y((size_t)M * N);
    if (round) {
        for (size_t i = 0; i < x.size(); ++i) xr[i] = bf16_value(x[i]);
        for (size_t i = 0; i < w.size(); ++i) wr[i] = bf16_value(w[i]);
    }
    for (int m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n) {
            double s = e.bias ? e.bias[n] : 0.0;
            for (int k = 0; k < K; ++k) s += xr[(size_t)m * K + k] * wr[(size_t)n * K + k];
            if (e.gelu) s = 0.5 * s * std::erfc(-s / std::sqrt(2.0));
            if (e.scale) s *= e.scale[n];
            if (e.res) s += e.res[(size_t)m * N + n];
            y[(size_t)m * N + n] = s;
        }
    return y;
}

static void test_host(bf16_engine e, int M, int K, int N) {
    const std::vector<float> x = randn((size_t)M * K, 1), w = randn((size_t)N * K, 2, 0.05f), b = randn(N, 3);
    std::vector<uint16_t> wp(bf16_packed_size(K, N));
    bf16_pack_host(w.data(), K, N, wp.data());
    std::vector<float> y((size_t)M * N);
    bf16_gemm_host(e, x.data(), M, K, wp.data(), N, b.data(), y.data());
    epi ep;
    ep.bias = b.data();
    const double exact = rel_err(y, reference(x, w, M, K, N, true, ep)), vs_f32 = rel_err(y, reference(x, w, M, K, N, false, ep));
    char what[160];
    std::snprintf(what, sizeof what, "%s M=%d K=%d N=%d: bf16 products, f32 sums", bf16_engine_name(e), M, K, N);
    check(exact < 1e-5, what, exact);
    std::snprintf(what, sizeof what, "%s M=%d K=%d N=%d: against f32 operands", bf16_engine_name(e), M, K, N);
    check(vs_f32 < 1e-2, what, vs_f32);
}

// The graph op on a weight of `type` packed in place, 3 threads, every epilogue part: through
// linear_cpu (the engine the dispatch picks) or, for another engine, linear_bf16 directly.
static void test_graph(ggml_type type, int M, int K, int N, bool gelu, bf16_engine e) {
    ggml_backend_t be = ggml_backend_cpu_init();
    ggml_backend_cpu_set_n_threads(be, 3);
    ggml_init_params ip = {ggml_tensor_overhead() * 16 + 2 * ggml_graph_overhead(), nullptr, true};
    ggml_context *ctx = ggml_init(ip);
    ggml_tensor *x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, K, M), *w = ggml_new_tensor_2d(ctx, type, K, N);
    ggml_tensor *b = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, N), *sc = ggml_new_tensor_1d(ctx, GGML_TYPE_F32, N);
    ggml_tensor *r = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, N, M);
    ggml_tensor *out = e == bf16_engine_available() ? linear_cpu(ctx, x, w, b, r, LINEAR_BF16 | (gelu ? LINEAR_GELU : 0u), true, sc)
                                                    : linear_bf16(ctx, x, w, b, r, sc, gelu, e);
    ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors(ctx, be);
    const std::vector<float> xv = randn((size_t)K * M, 4), bv = randn(N, 6), sv = randn(N, 7), rv = randn((size_t)N * M, 8);
    std::vector<float> wv = randn((size_t)K * N, 5, 0.05f);
    if (type == GGML_TYPE_F16) {  // the weights as stored
        std::vector<ggml_fp16_t> h(wv.size());
        ggml_fp32_to_fp16_row(wv.data(), h.data(), (int64_t)h.size());
        ggml_fp16_to_fp32_row(h.data(), wv.data(), (int64_t)h.size());
        ggml_backend_tensor_set(w, h.data(), 0, ggml_nbytes(w));
    } else {
        ggml_backend_tensor_set(w, wv.data(), 0, ggml_nbytes(w));
    }
    ggml_backend_tensor_set(x, xv.data(), 0, ggml_nbytes(x));
    ggml_backend_tensor_set(b, bv.data(), 0, ggml_nbytes(b));
    ggml_backend_tensor_set(sc, sv.data(), 0, ggml_nbytes(sc));
    ggml_backend_tensor_set(r, rv.data(), 0, ggml_nbytes(r));
    char what[160];
    std::snprintf(what, sizeof what, "graph %s M=%d K=%d N=%d%s +bias *scale +res (%s)", ggml_type_name(type), M, K, N,
                  gelu ? " gelu" : "", bf16_engine_name(e));
    if (!pack_linear_weight_bf16(w)) {
        check(false, "pack_linear_weight_bf16 refused a weight it supports", 0.0);
    } else {
        std::vector<float> y(ggml_nelements(out));
        for (int run = 0; run < 2; ++run) {  // the work counter resets for the graph's next run
            ggml_cgraph *gf = ggml_new_graph(ctx);
            ggml_build_forward_expand(gf, out);
            ggml_backend_graph_compute(be, gf);
            ggml_backend_tensor_get(out, y.data(), 0, y.size() * sizeof(float));
            const epi ep{bv.data(), sv.data(), rv.data(), gelu};
            const double err = rel_err(y, reference(xv, wv, M, K, N, true, ep));
            check(err < 1e-5, what, err);
        }
    }
    ggml_backend_buffer_free(buf);
    ggml_free(ctx);
    ggml_backend_free(be);
}

static void test_refusals() {
    ggml_init_params ip = {ggml_tensor_overhead() * 4, nullptr, true};
    ggml_context *ctx = ggml_init(ip);
    ggml_tensor *odd_n = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 64, 48);
    ggml_tensor *f16_odd_k = ggml_new_tensor_2d(ctx, GGML_TYPE_F16, 40, 32);  // packed K 64 > 40
    ggml_tensor *q8 = ggml_new_tensor_2d(ctx, GGML_TYPE_Q8_0, 64, 32);
    ggml_backend_t be = ggml_backend_cpu_init();
    ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors(ctx, be);  // host memory: refused for the shapes
    check(!pack_linear_weight_bf16(odd_n) && !pack_linear_weight_bf16(f16_odd_k) && !pack_linear_weight_bf16(q8) &&
              !pack_linear_weight_bf16(nullptr),
          "pack_linear_weight_bf16 refuses N 48, f16 with K 40, q8_0, null", 0.0);
    ggml_backend_buffer_free(buf);
    ggml_free(ctx);
    ggml_backend_free(be);
}

static void test_rounding() {
    const float inf = std::numeric_limits<float>::infinity();
    auto bits = [](uint32_t u) {
        float f;
        std::memcpy(&f, &u, sizeof f);
        return f;
    };
    const bool ok = f32_to_bf16(1.0f) == 0x3f80 && f32_to_bf16(bits(0x3f808000u)) == 0x3f80 &&  // tie: to even
                    f32_to_bf16(bits(0x3f818000u)) == 0x3f82 && f32_to_bf16(bits(0x3f808001u)) == 0x3f81 &&
                    f32_to_bf16(-2.0f) == 0xc000 && f32_to_bf16(inf) == 0x7f80 &&
                    f32_to_bf16(bits(0x7f7fffffu)) == 0x7f80 &&  // overflow to inf
                    (f32_to_bf16(std::nanf("")) & 0x7fff) > 0x7f80;
    check(ok, "f32_to_bf16: nearest even, overflow, inf, NaN", 0.0);
}

int main() {
    ggml_cpu_init();
    test_rounding();
    const bf16_engine best = bf16_engine_available();
    std::printf("bf16 engines offered here: \"%s\"\n", bf16_engines_offered());
    const std::string offered = bf16_engines_offered();
    int ran = 0;
    for (bf16_engine e : {bf16_engine::amx_bf16, bf16_engine::avx512_bf16}) {
        if (offered.find(bf16_engine_name(e)) == std::string::npos) {
            std::printf("platform: this CPU/OS/build offers no %s: its kernel is not tested here\n", bf16_engine_name(e));
            continue;
        }
        ++ran;
        test_host(e, 1, 32, 32);
        test_host(e, 17, 40, 64);    // K not a multiple of 32, M not of 16
        test_host(e, 45, 384, 96);   // 3 panels, 2 row tiles
        test_host(e, 100, 200, 32);
    }
    if (best != bf16_engine::none) test_refusals();
    for (bf16_engine e : {bf16_engine::amx_bf16, bf16_engine::avx512_bf16}) {
        if (offered.find(bf16_engine_name(e)) == std::string::npos) continue;
        test_graph(GGML_TYPE_F32, 37, 72, 96, true, e);  // K 72: packed with zero padding to 96
        test_graph(GGML_TYPE_F16, 70, 1536, 64, false, e);
        test_graph(GGML_TYPE_F32, 1, 64, 32, false, e);
    }
    if (g_failures) std::fprintf(stderr, "%d failure(s)\n", g_failures);
    if (g_failures) return 1;
    return ran ? 0 : 77;
}
