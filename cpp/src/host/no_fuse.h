// No fused multiply-add where a reference rounds every product (OpenCV's resize, compiled for the
// SSE3 baseline): DA3_NO_FUSE(v) hides v from the compiler's contraction, mul_f / mul_d round
// a product on its own (preprocess.cpp, resize_u8.cpp).
#pragma once

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define DA3_NO_FUSE(v) __asm__("" : "+x"(v))
#elif defined(__GNUC__) && (defined(__aarch64__) || defined(__arm__))
#define DA3_NO_FUSE(v) __asm__("" : "+w"(v))
#elif defined(__GNUC__)
#define DA3_NO_FUSE(v) __asm__("" : "+m"(v))
#else  // MSVC does not contract unless /fp:contract is given
#define DA3_NO_FUSE(v) ((void)0)
#endif

namespace da3 {

// Float products/sums of small tables: forced through memory so nothing is fused.
inline float mul_f(float a, float b) {
    volatile float r = a * b;
    return r;
}
inline double mul_d(double a, double b) {
    volatile double r = a * b;
    return r;
}

}  // namespace da3
