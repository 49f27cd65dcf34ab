// Vector helpers shared by our CPU kernels (cpu_kernels.cpp, cpu_gemm.cpp). GCC/Clang vector
// extensions sized to the widest registers the variant's ISA flags allow: AVX-512 (16 floats),
// AVX (8), SSE/NEON (4). Each variant compiles these files with its own flags, so no code here
// runs on a processor the variant does not target. Internal header: not part of the C API.
#pragma once

#include <cstdint>
#include <cstring>
#if defined(__AVX__)
#include <immintrin.h>
#endif

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
// [a b][m[l]] per lane l (indices 0..2*VW-1): GCC's two-vector shuffle by a run-time mask.
// Clang has no __builtin_shuffle (only constant-index __builtin_shufflevector): lane by lane
// there (zig builds: the manylinux wheels), which it lowers to table lookups where it can.
inline vf shuffle2(vf a, vf b, vi m) {
#if defined(__clang__)
    vf r;
    for (int l = 0; l < VW; ++l) {
        const int i = m[l] & (2 * VW - 1);
        r[l] = i < VW ? a[i] : b[i - VW];
    }
    return r;
#else
    return __builtin_shuffle(a, b, m);
#endif
}
// x in every lane (one broadcast; "vf{} + x" would add 0 first, to keep -0 exact)
inline vf splat(float x) {
#if defined(__clang__)
    vf v;
    for (int l = 0; l < VW; ++l) v[l] = x;
    return v;
#else
    const vf v = {x};
    return __builtin_shuffle(v, vi{});
#endif
}
inline vf select(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }
// ReLU as PyTorch: v > 0 ? v : +0, and NaN stays NaN (a "v > 0" select would make it 0).
inline vf vrelu(vf v) { return select(v <= 0.0f, vf{}, v); }
// a > b ? a : b per lane (b when either is NaN), as vmaxps computes it.
inline vf vmax(vf a, vf b) {
#if defined(__AVX512F__)
    return (vf)_mm512_max_ps((__m512)a, (__m512)b);
#elif defined(__AVX__)
    return (vf)_mm256_max_ps((__m256)a, (__m256)b);
#else
    return select(a > b, a, b);
#endif
}

// e^x, Cephes expf: x = n ln2 + r, |r| <= ln2/2, e^r by a degree-6 polynomial, 2^n from the
// exponent bits; relative error ~1e-7 on [-87, 88] (clamped outside). AVX-512: n by vrndscaleps
// (nearest) and 2^n by vscalefps, the same polynomial.
inline vf vexp(vf x) {
#if defined(__AVX512F__)
    // maskz forms with a full mask: the plain ones pass GCC 12 an "uninitialized" source; x as
    // the second operand of min/max, which is what they return for a NaN, so NaN propagates
    __m512 v = _mm512_maskz_max_ps(0xffff, _mm512_set1_ps(-87.0f),
                                   _mm512_maskz_min_ps(0xffff, _mm512_set1_ps(88.0f), (__m512)x));
    const __m512 n = _mm512_maskz_roundscale_ps(0xffff, _mm512_mul_ps(v, _mm512_set1_ps(1.44269504088896341f)),
                                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), v);
    v = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), v);
    __m512 y = _mm512_fmadd_ps(_mm512_set1_ps(1.9875691500e-4f), v, _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_fmadd_ps(y, v, _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_fmadd_ps(y, v, _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_fmadd_ps(y, v, _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_fmadd_ps(y, v, _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(v, v), _mm512_add_ps(v, _mm512_set1_ps(1.0f)));
    return (vf)_mm512_maskz_scalef_ps(0xffff, y, n);
#else
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
#endif
}

// 1 / a: AVX-512 rcp14 and one Newton step (relative error ~1e-8 for normal a), else a divide.
inline vf vrcp(vf a) {
#if defined(__AVX512F__)
    const __m512 r = _mm512_maskz_rcp14_ps(0xffff, (__m512)a);
    return (vf)_mm512_fmadd_ps(r, _mm512_fnmadd_ps((__m512)a, r, _mm512_set1_ps(1.0f)), r);
#else
    return 1.0f / a;
#endif
}

// erfc(x), Numerical Recipes erfcc (fractional error < 1.2e-7 for every x).
inline vf verfc(vf x) {
    const vf z = (vf)((vi)x & 0x7fffffff);
    const vf zc = select(z < 1e4f, z, splat(1e4f));  // finite for vrcp; erfc(1e4) is 0 anyway
    const vf t = vrcp(1.0f + 0.5f * zc);
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
