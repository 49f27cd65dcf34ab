// C API: how this library was compiled (da3_get_build_info) and a check of its f16 matrix
// products (da3_check_linear_f16), both for tests and bug reports (issue #18); the ray-map
// camera estimation alone (da3_ray_pose), for tests against the official code.
#include "depth_anything.h"
#include "kernels/cpu_gemm.h"
#include "kernels/cpu_gemm_amx.h"
#include "graph/graph.h"
#include "host/ray_pose.h"
#include "models/model.h"

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"

#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#ifndef DA3_VARIANT_NAME
#define DA3_VARIANT_NAME "unknown"
#endif
#ifndef DA3_ISA_LEVEL
#define DA3_ISA_LEVEL "unknown"
#endif
#ifndef DA3_ISA_FLAGS
#define DA3_ISA_FLAGS ""
#endif

using da3::fail;

namespace {

// ISA extensions our code was compiled with, from the compiler's predefined macros. ggml is
// compiled with the same level flags (cmake/Da3Variants.cmake), so this describes both.
const char *isa_features() {
    return ""
#if defined(__SSE4_2__)
           "sse4_2,"
#endif
#if defined(__AVX__)
           "avx,"
#endif
#if defined(__AVX2__)
           "avx2,"
#endif
#if defined(__FMA__)
           "fma,"
#endif
#if defined(__F16C__)
           "f16c,"
#endif
#if defined(__BMI2__)
           "bmi2,"
#endif
#if defined(__AVX512F__)
           "avx512f,"
#endif
#if defined(__AVX512BW__)
           "avx512bw,"
#endif
#if defined(__AVX512DQ__)
           "avx512dq,"
#endif
#if defined(__AVX512VL__)
           "avx512vl,"
#endif
#if defined(__AVX512VNNI__)
           "avx512vnni,"
#endif
#if defined(__AVX512BF16__)
           "avx512bf16,"
#endif
#if defined(__AVX512FP16__)
           "avx512fp16,"
#endif
#if defined(__AMX_TILE__)
           "amx_tile,"
#endif
#if defined(__AMX_BF16__)
           "amx_bf16,"
#endif
#if defined(__AMX_INT8__)
           "amx_int8,"
#endif
#if defined(__ARM_NEON)
           "neon,"
#endif
#if defined(__ARM_FEATURE_DOTPROD)
           "dotprod,"
#endif
#if defined(__ARM_FEATURE_MATMUL_INT8)
           "i8mm,"
#endif
#if defined(__ARM_FEATURE_BF16_VECTOR_ARITHMETIC)
           "bf16,"
#endif
#if defined(__ARM_FEATURE_FP16_VECTOR_ARITHMETIC)
           "fp16_vector,"
#endif
        ;
}

// Arithmetic in less than f32 that ggml would use for f16 products when compiled in: ggml maps
// its F16 vectors to half-precision FMAs under these macros (ggml-cpu/simd-mappings.h, llamafile).
const char *reduced_precision() {
    return ""
#if defined(__AVX512FP16__)
           "avx512fp16,"
#endif
#if defined(__ARM_FEATURE_FP16_VECTOR_ARITHMETIC)
           "arm_fp16_vector,"
#endif
        ;
}

std::string without_trailing_comma(const char *s) {
    std::string r = s;
    if (!r.empty() && r.back() == ',') r.pop_back();
    return r;
}

std::string ggml_cpu_features() {
    std::string r;
    ggml_backend_reg_t reg = ggml_backend_cpu_reg();
    auto get = reg ? (ggml_backend_get_features_t)ggml_backend_reg_get_proc_address(reg, "ggml_backend_get_features")
                   : nullptr;
    if (!get) return r;
    for (const ggml_backend_feature *f = get(reg); f && f->name; ++f) {
        if (!r.empty()) r += ',';
        r += std::string(f->name) + "=" + (f->value ? f->value : "");
    }
    return r;
}

// Backends and ggml contexts of one check, freed in any case.
struct check_state {
    ggml_backend_t cpu = nullptr, backend = nullptr;
    ggml_context *wctx = nullptr;
    ggml_backend_buffer_t wbuf = nullptr;
    ggml_backend_sched_t sched = nullptr;
    da3::graph_ctx g;
    ~check_state() {
        if (sched) ggml_backend_sched_free(sched);
        if (g.ctx) ggml_free(g.ctx);
        if (wbuf) ggml_backend_buffer_free(wbuf);
        if (wctx) ggml_free(wctx);
        if (backend && backend != cpu) ggml_backend_free(backend);
        if (cpu) ggml_backend_free(cpu);
    }
};

}  // namespace

extern "C" {

const da3_build_info *da3_get_build_info(void) {
    static da3_build_info info;
    static std::string features, reduced, ggml_features;
    static std::once_flag once;
    std::call_once(once, [] {
        features = without_trailing_comma(isa_features());
        reduced = without_trailing_comma(reduced_precision());
        ggml_features = ggml_cpu_features();
        info.variant = DA3_VARIANT_NAME;
        info.isa_level = DA3_ISA_LEVEL;
        info.isa_flags = DA3_ISA_FLAGS;
        info.isa_features = features.c_str();
        info.reduced_precision = reduced.c_str();
        info.ggml_features = ggml_features.c_str();
        info.bf16_engines = da3::bf16_engines_compiled();
    });
    return &info;
}

const char *da3_cpu_matrix_engines(void) { return da3::bf16_engines_offered(); }

da3_status da3_check_linear_f16(const uint16_t *w, const float *x, int m, int k, int n,
                                const da3_context_params *params, float *y) {
    return da3::guarded([&] {
        if (!w || !x || !y) fail(DA3_ERR_INVALID_ARGUMENT, "w, x and y must not be NULL");
        constexpr int64_t kMaxElems = int64_t(1) << 26;
        if (m <= 0 || k <= 0 || n <= 0 || int64_t(m) * k > kMaxElems || int64_t(n) * k > kMaxElems ||
            int64_t(m) * n > kMaxElems) {
            fail(DA3_ERR_INVALID_ARGUMENT, "m, k and n must be > 0 with at most 2^26 elements per matrix");
        }
        const da3_context_params p = da3::resolved_params(params);
        check_state s;
        da3::open_backends(p, s.cpu, s.backend);

        // the weight, in the backend's memory as a model's
        ggml_init_params wp{ggml_tensor_overhead() * 2, nullptr, true};
        s.wctx = ggml_init(wp);
        if (!s.wctx) fail(DA3_ERR_OUT_OF_MEMORY, "cannot allocate a ggml context");
        da3::linear l;
        l.w = ggml_new_tensor_2d(s.wctx, GGML_TYPE_F16, k, n);
        s.wbuf = ggml_backend_alloc_ctx_tensors(s.wctx, s.backend);
        if (!s.wbuf) fail(DA3_ERR_OUT_OF_MEMORY, "cannot allocate the weight");
        ggml_backend_tensor_set(l.w, w, 0, ggml_nbytes(l.w));
        constexpr int kPackedRows = 32;  // as build_linear: from here the network's linears are packed
        const bool cpu = s.backend == s.cpu;
        if (cpu && m >= kPackedRows) {
            l.bf16 = p.precision == DA3_PRECISION_BF16 && da3::pack_linear_weight_bf16(l.w);
            l.packed = l.bf16 || da3::pack_linear_weight(l.w);
        }

        ggml_init_params gp{ggml_tensor_overhead() * 64 + ggml_graph_overhead(), nullptr, true};
        s.g.ctx = ggml_init(gp);
        if (!s.g.ctx) fail(DA3_ERR_OUT_OF_MEMORY, "cannot allocate a ggml context");
        s.g.cpu_kernels = cpu;
        ggml_tensor *xt = s.g.input_f32("x", std::vector<float>(x, x + int64_t(m) * k), k, m);
        ggml_tensor *yt = da3::build_linear(s.g, xt, l);
        ggml_set_output(yt);
        s.g.gf = ggml_new_graph(s.g.ctx);
        ggml_build_forward_expand(s.g.gf, yt);

        ggml_backend_t backends[2] = {s.backend, s.cpu};
        s.sched = ggml_backend_sched_new(backends, nullptr, cpu ? 1 : 2, 256, false, true);
        if (!s.sched || !ggml_backend_sched_alloc_graph(s.sched, s.g.gf)) {
            fail(DA3_ERR_BACKEND, "cannot allocate the check's graph");
        }
        for (const auto &in : s.g.inputs) ggml_backend_tensor_set(in.t, in.f32.data(), 0, in.f32.size() * sizeof(float));
        if (ggml_backend_sched_graph_compute(s.sched, s.g.gf) != GGML_STATUS_SUCCESS) {
            fail(DA3_ERR_BACKEND, "the check's graph failed to compute");
        }
        ggml_backend_tensor_get(yt, y, 0, sizeof(float) * size_t(m) * size_t(n));
    });
}

da3_status da3_ray_pose(const float *ray, const float *ray_conf, int n, int h, int w, int height, int width,
                        uint64_t seed, float *extrinsics, float *intrinsics) {
    return da3::guarded([&] { da3::ray_pose(ray, ray_conf, n, h, w, height, width, seed, extrinsics, intrinsics); });
}

}  // extern "C"
