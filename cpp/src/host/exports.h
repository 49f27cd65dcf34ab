// Shared pieces of the points / GLB / COLMAP code: validated cameras, numpy-compatible
// percentiles, atomic file writing.
#pragma once

#include "common.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace da3 {

// One view's camera in double precision. Matrices row-major.
struct camera {
    double K[9];     // intrinsics, pixels
    double Kinv[9];
    double w2c[12];  // [R | t], world-to-camera (OpenCV axes)
    double c2w[12];  // [R^-1 | -R^-1 t]
};

// Reads and checks view i of extrinsics [n, ext_rows, 4] and intrinsics [n, 3, 3]: finite
// values, invertible K and R, last extrinsics row (0, 0, 0, 1) when ext_rows == 4.
// Throws DA3_ERR_INVALID_ARGUMENT naming the array and the view.
camera load_camera(const float *extrinsics, int ext_rows, const float *intrinsics, int i);

// p = M * x for a 3x4 [R | t] applied to a point.
inline void apply_rt(const double m[12], const double x[3], double out[3]) {
    for (int r = 0; r < 3; ++r) out[r] = m[4 * r] * x[0] + m[4 * r + 1] * x[1] + m[4 * r + 2] * x[2] + m[4 * r + 3];
}

// numpy.percentile(data, pct) with the default 'linear' method, for float32 data and a Python
// float pct: the interpolation runs in float32 like numpy's. Reorders `data` (nth_element).
float percentile_f32(float *data, size_t n, double pct);
// Same for float64 data.
double percentile_f64(double *data, size_t n, double pct);

// A file written under "<path>.tmp.<pid>.<random>" (created new, never an existing file or
// link) and renamed over `path` by commit(); the temp file is removed if commit() is never
// reached. Errors: DA3_ERR_IO naming `path`, with the OS reason.
class atomic_file {
public:
    explicit atomic_file(const std::string &path);
    ~atomic_file();
    atomic_file(const atomic_file &) = delete;
    atomic_file &operator=(const atomic_file &) = delete;
    void write(const void *data, size_t n);
    void write(const std::string &s) { write(s.data(), s.size()); }
    void commit();

private:
    std::string path_, tmp_;
    FILE *f_ = nullptr;
    bool done_ = false;
};

// GLB writer (export_glb.cpp). A_out: row-major 4x4 alignment, may be NULL.
void write_glb(const std::string &path, const float *xyz, const uint8_t *rgb, int64_t n_points,
               const std::vector<camera> &cams, int height, int width, bool show_cameras, double camera_size,
               double A_out[16]);

// COLMAP writer (export_colmap.cpp).
void write_colmap(const std::string &directory, const float *xyz, const uint8_t *rgb, const int32_t *view,
                  const int32_t *pixel, int64_t n_points, const std::vector<camera> &cams, int height, int width,
                  const int32_t *original_sizes, const std::vector<std::string> &names, bool binary);

}  // namespace da3
