// resize_u8.cpp - bit-exact cv2.resize of uint8 RGB images (INTER_AREA, INTER_CUBIC), for the
// official DA3 preprocessing (preprocess.cpp).
// ref: OpenCV modules/imgproc/src/resize.cpp.
// Floating-point note: OpenCV's resize code is compiled for the SSE3 baseline, i.e. without
// FMA. Every float product that feeds an addition goes through DA3_NO_FUSE (hot loops) or
// a volatile (tables), so a build with -mfma / -ffp-contract=fast cannot fuse it and change
// the rounding (verified: without them ~15% of random cubic/area resizes differ).
#include "host/preprocess.h"
#include "host/no_fuse.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <vector>

#if (defined(__SSE2__) || defined(_M_X64)) && !defined(DA3_PREPROCESS_NO_SIMD)
#define DA3_PREPROCESS_SSE2 1
#include <emmintrin.h>
#endif

namespace da3 {
namespace {

constexpr int k_coef_bits = 11;  // INTER_RESIZE_COEF_BITS
constexpr int k_coef_scale = 1 << k_coef_bits;
// Elements (int32 lanes x 2) per iteration of OpenCV's 128-bit VResizeCubicVec_32s8u.
constexpr int k_cubic_vec_step = 8;

// cvRound(float): round half to even (cvtss2si under the default MXCSR).
inline int round_f32(float v) {
#if defined(DA3_PREPROCESS_SSE2)
    return _mm_cvtss_si32(_mm_set_ss(v));
#else
    return (int)std::lrintf(v);
#endif
}

inline uint8_t sat_u8(int v) { return (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v)); }

// saturate_cast<short>(float)
inline short sat_s16(float v) {
    int i = round_f32(v);
    return (short)(i < -32768 ? -32768 : (i > 32767 ? 32767 : i));
}


// ref: resize.cpp interpolateCubic (float, A = -0.75), evaluated without FMA.
void interpolate_cubic(float x, float coeffs[4]) {
    const float A = -0.75f;
    const float x1 = x + 1.f;
    // ((A*(x + 1) - 5*A)*(x + 1) + 8*A)*(x + 1) - 4*A
    float t = mul_f(A, x1) - mul_f(5.f, A);
    t = mul_f(t, x1) + mul_f(8.f, A);
    coeffs[0] = mul_f(t, x1) - mul_f(4.f, A);
    // ((A + 2)*x - (A + 3))*x*x + 1
    t = mul_f(A + 2.f, x) - (A + 3.f);
    coeffs[1] = mul_f(mul_f(t, x), x) + 1.f;
    // ((A + 2)*(1 - x) - (A + 3))*(1 - x)*(1 - x) + 1
    const float y = 1.f - x;
    t = mul_f(A + 2.f, y) - (A + 3.f);
    coeffs[2] = mul_f(mul_f(t, y), y) + 1.f;
    coeffs[3] = 1.f - coeffs[0] - coeffs[1] - coeffs[2];
}

// Cubic taps of one axis: source index of tap 0..3 (border replicate) and 11-bit weights.
struct cubic_axis {
    std::vector<int> idx;     // [dsize * 4]
    std::vector<short> coef;  // [dsize * 4]
};

void cubic_axis_table(int ssize, int dsize, cubic_axis &t) {
    const double inv_scale = (double)dsize / ssize;  // cv::resize
    const double scale = 1. / inv_scale;             // hal::resize
    t.idx.resize((size_t)dsize * 4);
    t.coef.resize((size_t)dsize * 4);
    for (int d = 0; d < dsize; d++) {
        float f = (float)(mul_d(d + 0.5, scale) - 0.5);
        int s = (int)std::floor(f);
        f -= (float)s;
        float c[4];
        interpolate_cubic(f, c);
        for (int k = 0; k < 4; k++) {
            int si = s - 1 + k;
            t.idx[(size_t)d * 4 + k] = si < 0 ? 0 : (si >= ssize ? ssize - 1 : si);
            t.coef[(size_t)d * 4 + k] = sat_s16(c[k] * (float)k_coef_scale);
        }
    }
}

struct area_tap {
    int si, di;
    float alpha;
};

// ref: resize.cpp computeResizeAreaTab
int area_tab(int ssize, int dsize, int cn, double scale, std::vector<area_tap> &tab) {
    tab.clear();
    for (int dx = 0; dx < dsize; dx++) {
        double fsx1 = mul_d(dx, scale);
        double fsx2 = fsx1 + scale;
        double cell = std::min(scale, ssize - fsx1);
        int sx1 = (int)std::ceil(fsx1), sx2 = (int)std::floor(fsx2);
        sx2 = std::min(sx2, ssize - 1);
        sx1 = std::min(sx1, sx2);
        if (sx1 - fsx1 > 1e-3)
            tab.push_back({(sx1 - 1) * cn, dx * cn, (float)((sx1 - fsx1) / cell)});
        for (int sx = sx1; sx < sx2; sx++) tab.push_back({sx * cn, dx * cn, (float)(1.0 / cell)});
        if (fsx2 - sx2 > 1e-3)
            tab.push_back(
                {sx2 * cn, dx * cn, (float)(std::min(std::min(fsx2 - sx2, 1.), cell) / cell)});
    }
    return (int)tab.size();
}

// ref: resize.cpp resizeAreaFast_Invoker (+ ResizeAreaFastVec 2x2 rounding), cn = 3.
void area_fast(const uint8_t *src, int sw, int sh, size_t sstride, int dw, int dh, int isx,
               int isy, uint8_t *dst) {
    const int cn = 3;
    const int area = isx * isy;
    const float scale = 1.f / (float)area;
    const int dwidth1 = (sw / isx) * cn;
    const int dwidth = dw * cn, swidth = sw * cn;
    const bool fast2x2 = isx == 2 && isy == 2;
    std::vector<int> ofs((size_t)area), xofs((size_t)dwidth);
    for (int sy = 0, k = 0; sy < isy; sy++)
        for (int sx = 0; sx < isx; sx++) ofs[(size_t)k++] = (int)(sy * sstride + sx * cn);
    for (int dx = 0; dx < dw; dx++)
        for (int k = 0; k < cn; k++) xofs[(size_t)dx * cn + k] = isx * dx * cn + k;

    for (int dy = 0; dy < dh; dy++) {
        uint8_t *D = dst + (size_t)dy * dwidth;
        const int sy0 = dy * isy;
        const int w = sy0 + isy <= sh ? dwidth1 : 0;
        if (sy0 >= sh) {
            std::memset(D, 0, (size_t)dwidth);
            continue;
        }
        const uint8_t *row = src + (size_t)sy0 * sstride;
        int dx = 0;
        if (fast2x2) {
            const uint8_t *next = row + sstride;
            for (; dx < w; dx++) {
                int i = (dx / cn) * 2 * cn + dx % cn;
                D[dx] = (uint8_t)((row[i] + row[i + cn] + next[i] + next[i + cn] + 2) >> 2);
            }
        }
        for (; dx < w; dx++) {
            const uint8_t *S = row + xofs[(size_t)dx];
            int sum = 0;
            for (int k = 0; k < area; k++) sum += S[ofs[(size_t)k]];
            D[dx] = sat_u8(round_f32((float)sum * scale));
        }
        for (; dx < dwidth; dx++) {  // partial cells at the bottom/right border
            int sum = 0, count = 0, sx0 = xofs[(size_t)dx];
            for (int sy = 0; sy < isy && sy0 + sy < sh; sy++) {
                const uint8_t *S = src + (size_t)(sy0 + sy) * sstride + sx0;
                for (int sx = 0; sx < isx * cn && sx0 + sx < swidth; sx += cn) {
                    sum += S[sx];
                    count++;
                }
            }
            D[dx] = count ? sat_u8(round_f32((float)sum / (float)count)) : 0;
        }
    }
}

// ref: resize.cpp ResizeArea_Invoker<uchar, float>, cn = 3.
void area_general(const uint8_t *src, int sw, int sh, size_t sstride, int dw, int dh,
                  double scale_x, double scale_y, uint8_t *dst) {
    const int cn = 3;
    std::vector<area_tap> xtab, ytab;
    const int xn = area_tab(sw, dw, cn, scale_x, xtab);
    const int yn = area_tab(sh, dh, 1, scale_y, ytab);
    const int width = dw * cn;
    // xtab is grouped by destination column: [xbeg[dx], xbeg[dx+1]) are the taps of dx, so
    // OpenCV's in-order `buf[dxn] += S*alpha` (buf zeroed per row) is a local running sum.
    std::vector<int> xbeg((size_t)dw + 1, xn);
    for (int k = xn - 1; k >= 0; k--) xbeg[(size_t)xtab[(size_t)k].di / cn] = k;
    for (int dx = dw - 1; dx >= 0; dx--) xbeg[(size_t)dx] = std::min(xbeg[(size_t)dx], xbeg[(size_t)dx + 1]);
    std::vector<float> buf((size_t)width), sum((size_t)width, 0.f);
    int prev_dy = yn ? ytab[0].di : 0;
    for (int j = 0; j < yn; j++) {
        const float beta = ytab[(size_t)j].alpha;
        const int dy = ytab[(size_t)j].di;
        const int sy = ytab[(size_t)j].si;
        const uint8_t *S = src + (size_t)sy * sstride;
        // a source row shared by two output rows gives the same buf: compute it once
        const bool same_row = j > 0 && ytab[(size_t)j - 1].si == sy;
        for (int dx = 0; dx < dw && !same_row; dx++) {
            float t0 = 0.f, t1 = 0.f, t2 = 0.f;
            for (int k = xbeg[(size_t)dx]; k < xbeg[(size_t)dx + 1]; k++) {
                const uint8_t *px = S + xtab[(size_t)k].si;
                const float alpha = xtab[(size_t)k].alpha;
                float p0 = (float)px[0] * alpha, p1 = (float)px[1] * alpha, p2 = (float)px[2] * alpha;
                DA3_NO_FUSE(p0);
                DA3_NO_FUSE(p1);
                DA3_NO_FUSE(p2);
                t0 = t0 + p0;
                t1 = t1 + p1;
                t2 = t2 + p2;
            }
            buf[(size_t)dx * 3] = t0;
            buf[(size_t)dx * 3 + 1] = t1;
            buf[(size_t)dx * 3 + 2] = t2;
        }
        if (dy != prev_dy) {
            uint8_t *D = dst + (size_t)prev_dy * width;
            for (int dx = 0; dx < width; dx++) {
                D[dx] = sat_u8(round_f32(sum[(size_t)dx]));
                sum[(size_t)dx] = beta * buf[(size_t)dx];
            }
            prev_dy = dy;
        } else {
            int dx = 0;
#if defined(DA3_PREPROCESS_SSE2)
            const __m128 bv = _mm_set1_ps(beta);
            for (; dx + 4 <= width; dx += 4) {
                __m128 p = _mm_mul_ps(bv, _mm_loadu_ps(&buf[(size_t)dx]));
                DA3_NO_FUSE(p);
                _mm_storeu_ps(&sum[(size_t)dx], _mm_add_ps(_mm_loadu_ps(&sum[(size_t)dx]), p));
            }
#endif
            for (; dx < width; dx++) {
                float p = beta * buf[(size_t)dx];
                DA3_NO_FUSE(p);
                sum[(size_t)dx] += p;
            }
        }
    }
    uint8_t *D = dst + (size_t)prev_dy * width;
    for (int dx = 0; dx < width; dx++) D[dx] = sat_u8(round_f32(sum[(size_t)dx]));
}

bool valid_sizes(const uint8_t *src, int sw, int sh, size_t sstride, int dw, int dh) {
    return src && sw > 0 && sh > 0 && dw > 0 && dh > 0 && sstride >= (size_t)sw * 3;
}

void copy_image(const uint8_t *src, int w, int h, size_t stride, image_u8 &dst) {
    dst.width = w;
    dst.height = h;
    dst.data.resize((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        std::memcpy(dst.data.data() + (size_t)y * w * 3, src + (size_t)y * stride, (size_t)w * 3);
}

}  // namespace

bool resize_area(const uint8_t *src, int src_w, int src_h, size_t src_stride, int dst_w,
                 int dst_h, image_u8 &dst) {
    if (!valid_sizes(src, src_w, src_h, src_stride, dst_w, dst_h) || dst_w > src_w ||
        dst_h > src_h)
        return false;
    if (dst_w == src_w && dst_h == src_h) {  // cv::resize copies
        copy_image(src, src_w, src_h, src_stride, dst);
        return true;
    }
    const double inv_x = (double)dst_w / src_w, inv_y = (double)dst_h / src_h;
    const double scale_x = 1. / inv_x, scale_y = 1. / inv_y;
    const int isx = (int)std::nearbyint(scale_x), isy = (int)std::nearbyint(scale_y);
    const bool is_fast = std::abs(scale_x - isx) < DBL_EPSILON && std::abs(scale_y - isy) < DBL_EPSILON;
    std::vector<uint8_t> out((size_t)dst_w * dst_h * 3);
    if (is_fast)
        area_fast(src, src_w, src_h, src_stride, dst_w, dst_h, isx, isy, out.data());
    else
        area_general(src, src_w, src_h, src_stride, dst_w, dst_h, scale_x, scale_y, out.data());
    dst.data.swap(out);
    dst.width = dst_w;
    dst.height = dst_h;
    return true;
}

// ref: resize.cpp resizeGeneric_Invoker with HResizeCubic<uchar,int,short> and
// VResizeCubic<uchar,int,short,FixedPtCast<int,uchar,22>,VResizeCubicVec_32s8u>.
bool resize_cubic(const uint8_t *src, int src_w, int src_h, size_t src_stride, int dst_w,
                  int dst_h, image_u8 &dst) {
    if (!valid_sizes(src, src_w, src_h, src_stride, dst_w, dst_h)) return false;
    if (dst_w == src_w && dst_h == src_h) {
        copy_image(src, src_w, src_h, src_stride, dst);
        return true;
    }
    const int cn = 3;
    cubic_axis xt, yt;
    cubic_axis_table(src_w, dst_w, xt);
    cubic_axis_table(src_h, dst_h, yt);
    const int width = dst_w * cn;
    // Horizontal pass of every source row that is needed, computed once (int sums are
    // exact, so caching rows gives the same values as OpenCV's ring buffer).
    std::vector<std::vector<int>> cache((size_t)src_h);
    auto hresize = [&](int sy) -> const int * {
        std::vector<int> &r = cache[(size_t)sy];
        if (!r.empty()) return r.data();
        r.resize((size_t)width);
        const uint8_t *S = src + (size_t)sy * src_stride;
        for (int dx = 0; dx < dst_w; dx++) {
            const int *ix = &xt.idx[(size_t)dx * 4];
            const short *a = &xt.coef[(size_t)dx * 4];
            for (int c = 0; c < cn; c++)
                r[(size_t)dx * cn + c] = S[ix[0] * cn + c] * a[0] + S[ix[1] * cn + c] * a[1] +
                                         S[ix[2] * cn + c] * a[2] + S[ix[3] * cn + c] * a[3];
        }
        return r.data();
    };
    std::vector<uint8_t> out((size_t)width * dst_h);
    const int vec_end = width - width % k_cubic_vec_step;
    const float inv22 = 1.f / (float)(k_coef_scale * k_coef_scale);  // 2^-22, exact
    int lowest_live = 0;
    for (int dy = 0; dy < dst_h; dy++) {
        const int *iy = &yt.idx[(size_t)dy * 4];
        const short *b = &yt.coef[(size_t)dy * 4];
        const int *S0 = hresize(iy[0]), *S1 = hresize(iy[1]), *S2 = hresize(iy[2]),
                  *S3 = hresize(iy[3]);
        uint8_t *D = out.data() + (size_t)dy * width;
        // SIMD part: float32, v_muladd(S0,b0, v_muladd(S1,b1, v_muladd(S2,b2, S3*b3))) without
        // FMA, then v_round (half even). S*b is computed as an exact int64 product rounded once
        // to float and scaled by 2^-22 (exact), which equals the float product S * (b*2^-22).
        int x = 0;
#if defined(DA3_PREPROCESS_SSE2)
        const __m128 b0v = _mm_set1_ps((float)b[0] * inv22), b1v = _mm_set1_ps((float)b[1] * inv22),
                     b2v = _mm_set1_ps((float)b[2] * inv22), b3v = _mm_set1_ps((float)b[3] * inv22);
        for (; x < vec_end; x += 4) {  // vec_end is a multiple of 8
            __m128 p3 = _mm_mul_ps(_mm_cvtepi32_ps(_mm_loadu_si128((const __m128i *)(S3 + x))), b3v);
            __m128 p2 = _mm_mul_ps(_mm_cvtepi32_ps(_mm_loadu_si128((const __m128i *)(S2 + x))), b2v);
            __m128 p1 = _mm_mul_ps(_mm_cvtepi32_ps(_mm_loadu_si128((const __m128i *)(S1 + x))), b1v);
            __m128 p0 = _mm_mul_ps(_mm_cvtepi32_ps(_mm_loadu_si128((const __m128i *)(S0 + x))), b0v);
            DA3_NO_FUSE(p0);
            DA3_NO_FUSE(p1);
            DA3_NO_FUSE(p2);
            DA3_NO_FUSE(p3);
            __m128i v = _mm_cvtps_epi32(_mm_add_ps(p0, _mm_add_ps(p1, _mm_add_ps(p2, p3))));
            v = _mm_packs_epi32(v, v);
            v = _mm_packus_epi16(v, v);
            const int packed = _mm_cvtsi128_si32(v);
            std::memcpy(D + x, &packed, 4);
        }
#endif
        for (; x < vec_end; x++) {
            float p3 = (float)((int64_t)S3[x] * b[3]) * inv22;
            float p2 = (float)((int64_t)S2[x] * b[2]) * inv22;
            float p1 = (float)((int64_t)S1[x] * b[1]) * inv22;
            float p0 = (float)((int64_t)S0[x] * b[0]) * inv22;
            float t = p2 + p3;
            t = p1 + t;
            t = p0 + t;
            D[x] = sat_u8(round_f32(t));
        }
        // scalar tail: FixedPtCast<int, uchar, 22>
        for (; x < width; x++) {
            int64_t v = (int64_t)S0[x] * b[0] + (int64_t)S1[x] * b[1] + (int64_t)S2[x] * b[2] +
                        (int64_t)S3[x] * b[3];
            D[x] = sat_u8((int)((v + (1 << 21)) >> 22));
        }
        // release cached rows no later output row can use (source rows are monotonic)
        const int next_low = dy + 1 < dst_h ? yt.idx[(size_t)(dy + 1) * 4] : src_h;
        for (; lowest_live < next_low; lowest_live++) {
            std::vector<int>().swap(cache[(size_t)lowest_live]);
        }
    }
    dst.data.swap(out);
    dst.width = dst_w;
    dst.height = dst_h;
    return true;
}
}  // namespace da3
