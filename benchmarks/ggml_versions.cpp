// ggml_versions.cpp - time the two op shapes that dominate DA3-small on the ggml CPU backend,
// to compare ggml releases (0.15.3 from ggml-python vs 0.25.3 from llama-cpp-python):
//   * ViT-sized f32 matmul: [1440 x 384] x [384 x 1536] (tokens x dim  ->  MLP fc1)
//   * 3x3 conv, 64 -> 64 channels, 144 x 252 (DPT head refinement), f32 via im2col (ggml_conv_2d)
//
// Build against a static ggml build (no CMake needed), e.g.:
//   g++ -O2 -std=c++17 benchmarks/ggml_versions.cpp -I<ggml>/include \
//       <build>/src/libggml.a <build>/src/libggml-cpu.a <build>/src/libggml-base.a -fopenmp -lpthread \
//       -o /tmp/ggml_bench
//   /tmp/ggml_bench [n_threads=2] [repeats=10]
#include "ggml.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <vector>

namespace {

struct Bench {
    ggml_context *ctx = nullptr;
    ggml_cgraph *graph = nullptr;
    ggml_backend_buffer_t buf = nullptr;
    ~Bench() {
        if (buf) ggml_backend_buffer_free(buf);
        if (ctx) ggml_free(ctx);
    }
};

void fill_random(ggml_tensor *t, std::mt19937 &rng) {
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    std::vector<float> v(ggml_nelements(t));
    for (auto &x : v) x = u(rng);
    if (t->type == GGML_TYPE_F16) {
        std::vector<ggml_fp16_t> h(v.size());
        ggml_fp32_to_fp16_row(v.data(), h.data(), (int64_t)v.size());
        ggml_backend_tensor_set(t, h.data(), 0, ggml_nbytes(t));
    } else {
        ggml_backend_tensor_set(t, v.data(), 0, ggml_nbytes(t));
    }
}

// Builds out = f(inputs) in a no_alloc context, allocates everything on `backend`,
// fills inputs with random numbers, then returns the median time of `repeats` computes (ms).
double time_graph(ggml_backend_t backend, int repeats,
                  const std::function<ggml_tensor *(ggml_context *, std::vector<ggml_tensor *> &)> &build) {
    Bench b;
    ggml_init_params ip = {ggml_tensor_overhead() * 64 + ggml_graph_overhead(), nullptr, true};
    b.ctx = ggml_init(ip);
    std::vector<ggml_tensor *> inputs;
    ggml_tensor *out = build(b.ctx, inputs);
    b.graph = ggml_new_graph(b.ctx);
    ggml_build_forward_expand(b.graph, out);
    b.buf = ggml_backend_alloc_ctx_tensors(b.ctx, backend);
    std::mt19937 rng(0);
    for (auto *t : inputs) fill_random(t, rng);
    ggml_backend_graph_compute(backend, b.graph);  // warm-up
    std::vector<double> ms;
    for (int i = 0; i < repeats; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        ggml_backend_graph_compute(backend, b.graph);
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char **argv) {
    const int n_threads = argc > 1 ? std::atoi(argv[1]) : 2;
    const int repeats = argc > 2 ? std::atoi(argv[2]) : 10;
    ggml_backend_t cpu = ggml_backend_cpu_init();
    ggml_backend_cpu_set_n_threads(cpu, n_threads);
    std::printf("ggml %s, %d threads, median of %d\n", ggml_version(), n_threads, repeats);

    // y[1536, 1440] = W[384 -> 1536] x[384, 1440]   (ggml_mul_mat(a, b): a [K, M], b [K, N])
    const double flop_mm = 2.0 * 1440 * 384 * 1536;
    for (ggml_type wt : {GGML_TYPE_F32, GGML_TYPE_F16}) {
        double ms = time_graph(cpu, repeats, [&](ggml_context *ctx, std::vector<ggml_tensor *> &in) {
            ggml_tensor *w = ggml_new_tensor_2d(ctx, wt, 384, 1536);
            ggml_tensor *x = ggml_new_tensor_2d(ctx, GGML_TYPE_F32, 384, 1440);
            in = {w, x};
            return ggml_mul_mat(ctx, w, x);
        });
        std::printf("matmul 1440x384 x 384x1536 (weights %s): %8.2f ms  %6.1f GFLOP/s\n", ggml_type_name(wt), ms,
                    flop_mm / ms * 1e-6);
    }

    // conv 3x3, 64 -> 64 channels, 144 x 252, pad 1 (ggml_conv_2d = im2col + matmul; kernel f16 as in the GGUF)
    const double flop_conv = 2.0 * 64 * 64 * 9 * 144 * 252;
    for (ggml_type kt : {GGML_TYPE_F32, GGML_TYPE_F16}) {
        double ms = time_graph(cpu, repeats, [&](ggml_context *ctx, std::vector<ggml_tensor *> &in) {
            ggml_tensor *k = ggml_new_tensor_4d(ctx, kt, 3, 3, 64, 64);
            ggml_tensor *x = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, 252, 144, 64, 1);
            in = {k, x};
            return ggml_conv_2d(ctx, k, x, 1, 1, 1, 1, 1, 1);
        });
        std::printf("conv3x3 64ch 144x252 (kernel %s):            %8.2f ms  %6.1f GFLOP/s\n", ggml_type_name(kt), ms,
                    flop_conv / ms * 1e-6);
    }
    ggml_backend_free(cpu);
    return 0;
}
