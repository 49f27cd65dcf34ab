// 3x3 matrix helpers of the host pose maths (camera poses, ray pose, points), double precision,
// row-major. Header-only: the expressions are written once so every caller rounds the same way.
#pragma once

#include <array>
#include <cmath>

namespace da3 {
namespace geom {

using mat3 = std::array<double, 9>;
using vec3 = std::array<double, 3>;

inline mat3 transpose(const mat3 &a) { return {a[0], a[3], a[6], a[1], a[4], a[7], a[2], a[5], a[8]}; }

inline mat3 matmul(const mat3 &a, const mat3 &b) {
    mat3 c{};
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) {
            double s = 0;
            for (int k = 0; k < 3; ++k) s += a[i * 3 + k] * b[k * 3 + j];
            c[i * 3 + j] = s;
        }
    return c;
}

inline vec3 matvec(const mat3 &a, const vec3 &v) {
    return {a[0] * v[0] + a[1] * v[1] + a[2] * v[2], a[3] * v[0] + a[4] * v[1] + a[5] * v[2],
            a[6] * v[0] + a[7] * v[1] + a[8] * v[2]};
}

inline double det3(const mat3 &a) {
    return a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6]) + a[2] * (a[3] * a[7] - a[4] * a[6]);
}

inline double norm3(const vec3 &v) { return std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]); }


// Inverse of a row-major 3x3 through the adjugate; false when singular (relative to its size).
inline bool invert3(const double m[9], double out[9]) {
    const double c00 = m[4] * m[8] - m[5] * m[7], c01 = m[5] * m[6] - m[3] * m[8], c02 = m[3] * m[7] - m[4] * m[6];
    const double det = m[0] * c00 + m[1] * c01 + m[2] * c02;
    double norm2 = 0;
    for (int i = 0; i < 9; ++i) norm2 += m[i] * m[i];
    const double norm = std::sqrt(norm2);
    if (!std::isfinite(det) || !(std::fabs(det) > 1e-12 * norm * norm * norm)) return false;
    const double id = 1.0 / det;
    out[0] = c00 * id;
    out[1] = (m[2] * m[7] - m[1] * m[8]) * id;
    out[2] = (m[1] * m[5] - m[2] * m[4]) * id;
    out[3] = c01 * id;
    out[4] = (m[0] * m[8] - m[2] * m[6]) * id;
    out[5] = (m[2] * m[3] - m[0] * m[5]) * id;
    out[6] = c02 * id;
    out[7] = (m[1] * m[6] - m[0] * m[7]) * id;
    out[8] = (m[0] * m[4] - m[1] * m[3]) * id;
    return true;
}

}  // namespace geom
}  // namespace da3
