// Vector helpers shared by our CPU kernels (cpu_kernels.cpp, cpu_gemm.cpp). GCC/Clang vector
// extensions sized to the widest registers the variant's ISA flags allow: AVX-512 (16 floats),
// AVX (8), SSE/NEON (4). Each variant compiles these files with its own flags, so no code here
// runs on a processor the variant does not target. Internal header: not part of the C API.
#pragma once

#include <cstdint>
#include <cstring>

namespace da3 {
namespace simd {

#if defined(__AVX512F__)
constexpr int VW = 16;
#elif defined(__AVX__)
constexpr int VW = 8;
#else
constexpr int VW = 4;
#endif

#if defined(__GNUC__)
typedef float vf __attribute__((vector_size(VW * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(VW * sizeof(int32_t))));

inline vf loadu(const float *p) {
    vf v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
inline void storeu(float *p, vf v) { std::memcpy(p, &v, sizeof v); }
// x in every lane (one broadcast; "vf{} + x" would add 0 first, to keep -0 exact)
inline vf splat(float x) {
    const vf v = {x};
    return __builtin_shuffle(v, vi{});
}
inline vf select(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }

// e^x, Cephes expf: x = n ln2 + r, |r| <= ln2/2, e^r by a degree-6 polynomial, 2^n from the
// exponent bits; relative error ~1e-7 on [-87, 88] (clamped outside).
inline vf vexp(vf x) {
    x = select(x < -87.0f, splat(-87.0f), x);
    x = select(x > 88.0f, splat(88.0f), x);
    const vf fx = x * 1.44269504088896341f + 0.5f;
    vf fn = __builtin_convertvector(__builtin_convertvector(fx, vi), vf);
    fn = select(fn > fx, fn - 1.0f, fn);  // floor
    x = x - fn * 0.693359375f + fn * 2.12194440e-4f;
    const vf z = x * x;
    vf y = 1.9875691500e-4f * x + 1.3981999507e-3f;
    y = y * x + 8.3334519073e-3f;
    y = y * x + 4.1665795894e-2f;
    y = y * x + 1.6666665459e-1f;
    y = y * x + 5.0000001201e-1f;
    y = y * z + x + 1.0f;
    const vi e = (__builtin_convertvector(fn, vi) + 127) << 23;
    return y * (vf)e;
}

// erfc(x), Numerical Recipes erfcc (fractional error < 1.2e-7 for every x).
inline vf verfc(vf x) {
    const vf z = (vf)((vi)x & 0x7fffffff);
    const vf t = 1.0f / (1.0f + 0.5f * z);
    vf p = 0.17087277f * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    const vf r = t * vexp(p - z * z);
    return select(x >= 0.0f, r, 2.0f - r);
}

// GELU, exact erf form: 0.5 x erfc(-x / sqrt 2) (PyTorch nn.GELU()).
inline vf vgelu(vf x) { return 0.5f * x * verfc(x * -0.70710678118654752f); }
#endif

}  // namespace simd
}  // namespace da3
