// COLMAP sparse model writer (cameras, images, points3D; binary or text) for a point cloud
// whose points each come from one pixel of one view. ref: official utils/export/colmap.py;
// file formats: COLMAP documentation "Output Format" (and scripts/python/read_write_model.py).
#include "host/exports.h"
#include "host/geometry.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>

namespace da3 {

namespace {

namespace fs = std::filesystem;

// Buffered little-endian writer over an atomic_file.
class le_writer {
public:
    explicit le_writer(atomic_file &f) : f_(f) { buf_.reserve(1 << 20); }
    ~le_writer() = default;
    void u8(uint8_t v) { buf_.push_back((char)v), maybe_flush(); }
    void u32(uint32_t v) { bytes(v, 4); }
    void i32(int32_t v) { bytes((uint32_t)v, 4); }
    void u64(uint64_t v) { bytes(v, 8); }
    void i64(int64_t v) { bytes((uint64_t)v, 8); }
    void f64(double v) {
        uint64_t u;
        std::memcpy(&u, &v, 8);
        bytes(u, 8);
    }
    void str0(const std::string &s) {
        buf_.append(s.c_str(), s.size() + 1);
        maybe_flush();
    }
    void text(const char *s, size_t n) {
        buf_.append(s, n);
        maybe_flush();
    }
    void flush() {
        f_.write(buf_);
        buf_.clear();
    }

private:
    void bytes(uint64_t v, int n) {
        for (int i = 0; i < n; ++i) buf_.push_back((char)(uint8_t)(v >> (8 * i)));
        maybe_flush();
    }
    void maybe_flush() {
        if (buf_.size() >= (1u << 20)) flush();
    }
    atomic_file &f_;
    std::string buf_;
};

// Writes `path` atomically (temp name, then rename) through a little-endian / text writer.
template <typename F>
void write_file(const std::string &path, F &&body) {
    atomic_file f(path);
    le_writer w(f);
    body(w);
    w.flush();
    f.commit();
}

// Unit quaternion (w, x, y, z) of a rotation matrix (Shepperd's method), w >= 0.
void rotation_to_quat(const double R[9], double q[4]) {
    const double tr = R[0] + R[4] + R[8];
    double w, x, y, z;
    if (tr > 0) {
        const double s = 2 * std::sqrt(tr + 1);
        w = s / 4, x = (R[7] - R[5]) / s, y = (R[2] - R[6]) / s, z = (R[3] - R[1]) / s;
    } else if (R[0] > R[4] && R[0] > R[8]) {
        const double s = 2 * std::sqrt(1 + R[0] - R[4] - R[8]);
        w = (R[7] - R[5]) / s, x = s / 4, y = (R[1] + R[3]) / s, z = (R[2] + R[6]) / s;
    } else if (R[4] > R[8]) {
        const double s = 2 * std::sqrt(1 + R[4] - R[0] - R[8]);
        w = (R[2] - R[6]) / s, x = (R[1] + R[3]) / s, y = s / 4, z = (R[5] + R[7]) / s;
    } else {
        const double s = 2 * std::sqrt(1 + R[8] - R[0] - R[4]);
        w = (R[3] - R[1]) / s, x = (R[2] + R[6]) / s, y = (R[5] + R[7]) / s, z = s / 4;
    }
    const double nrm = std::sqrt(w * w + x * x + y * y + z * z), sg = w < 0 ? -1.0 : 1.0;
    q[0] = sg * w / nrm, q[1] = sg * x / nrm, q[2] = sg * y / nrm, q[3] = sg * z / nrm;
}

struct colmap_image {
    double params[4];  // fx, fy, cx, cy at the original size
    int w0, h0;
    double sx, sy;     // processed -> original pixel scale
    double q[4], t[3];
};

std::string fmt(const char *f, double a) {
    char b[64];
    std::snprintf(b, sizeof b, f, a);
    return b;
}

// One view's COLMAP image (camera parameters at the original size, w2c as quaternion + t), the
// name (not in `seen`, then added), intrinsics and rotation checked. vi: "[i]" for the messages.
colmap_image check_view(const camera &cam, const std::string &nm, const int32_t *orig_size, int height, int width,
                        bool binary, const std::string &vi, std::set<std::string> &seen) {
    colmap_image im;
    if (nm.empty()) fail(DA3_ERR_INVALID_ARGUMENT, "image_names" + vi + " is empty");
    for (char ch : nm) {
        if (ch == '\n' || ch == '\r' || (!binary && (ch == ' ' || ch == '\t')))
            fail(DA3_ERR_INVALID_ARGUMENT, "image_names" + vi + " '" + nm + "' contains " +
                                               (binary ? "a line break" : "whitespace (not allowed in COLMAP text files)"));
    }
    if (!seen.insert(nm).second) fail(DA3_ERR_INVALID_ARGUMENT, "image_names" + vi + " '" + nm + "' is not unique");
    im.w0 = orig_size[0];
    im.h0 = orig_size[1];
    if (im.w0 < 1 || im.h0 < 1) fail(DA3_ERR_INVALID_ARGUMENT, "original_sizes" + vi + " must be positive (width, height)");
    const double *K = cam.K;
    const double f = std::max(std::fabs(K[0]), std::fabs(K[4]));
    if (!(K[0] > 0) || !(K[4] > 0) || std::fabs(K[1]) > 1e-6 * f || std::fabs(K[3]) > 1e-6 * f ||
        std::fabs(K[6]) > 1e-6 || std::fabs(K[7]) > 1e-6 || std::fabs(K[8] - 1) > 1e-6) {
        fail(DA3_ERR_INVALID_ARGUMENT, "intrinsics" + vi + " is not a pinhole matrix [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] "
                                                           "with positive focal lengths");
    }
    im.sx = (double)im.w0 / width;
    im.sy = (double)im.h0 / height;
    im.params[0] = K[0] * im.sx, im.params[1] = K[4] * im.sy, im.params[2] = K[2] * im.sx, im.params[3] = K[5] * im.sy;
    const double *E = cam.w2c;
    const geom::mat3 R = {E[0], E[1], E[2], E[4], E[5], E[6], E[8], E[9], E[10]};
    double dev = 0;
    for (int r = 0; r < 3; ++r) {
        for (int c = 0; c < 3; ++c) {
            const double dot = R[r] * R[c] + R[3 + r] * R[3 + c] + R[6 + r] * R[6 + c];
            dev = std::max(dev, std::fabs(dot - (r == c ? 1.0 : 0.0)));
        }
    }
    if (dev > 1e-3 || geom::det3(R) <= 0)
        fail(DA3_ERR_INVALID_ARGUMENT, "extrinsics" + vi + " rotation is not a proper rotation (COLMAP needs a rigid pose)");
    rotation_to_quat(R.data(), im.q);
    im.t[0] = E[3], im.t[1] = E[7], im.t[2] = E[11];
    return im;
}

// The points of a COLMAP model: the observations grouped by view, in point order.
struct colmap_points {
    const float *xyz;
    const uint8_t *rgb;  // or null (grey)
    const int32_t *view, *pixel;
    size_t m;
    std::vector<size_t> start, order, slot;  // order: points of view i at start[i]..; slot: index in its image
    uint8_t color(size_t k, int c) const { return rgb ? rgb[3 * k + c] : 128; }
};

// Checks the points (view index, pixel, finite xyz) and groups them by view (counting sort).
void group_by_view(colmap_points &p, int n, int height, int width) {
    const size_t m = p.m;
    const int32_t *view = p.view, *pixel = p.pixel;
    const float *xyz = p.xyz;
    std::vector<size_t> &start = p.start, &order = p.order, &slot = p.slot;
    start.assign(n + 1, 0);
    for (size_t k = 0; k < m; ++k) {
        const int v = view[k];
        if (v < 0 || v >= n) fail(DA3_ERR_INVALID_ARGUMENT, "view[" + std::to_string(k) + "] = " + std::to_string(v) + " is out of range");
        const int px = pixel[2 * k], py = pixel[2 * k + 1];
        if (px < 0 || px >= width || py < 0 || py >= height)
            fail(DA3_ERR_INVALID_ARGUMENT, "pixel[" + std::to_string(k) + "] is outside the " + std::to_string(width) + "x" +
                                               std::to_string(height) + " image");
        if (!std::isfinite(xyz[3 * k]) || !std::isfinite(xyz[3 * k + 1]) || !std::isfinite(xyz[3 * k + 2]))
            fail(DA3_ERR_INVALID_ARGUMENT, "xyz[" + std::to_string(k) + "] is not finite");
        ++start[v + 1];
    }
    for (int i = 0; i < n; ++i) start[i + 1] += start[i];
    order.resize(m), slot.resize(m);
    {
        std::vector<size_t> fill(start.begin(), start.end() - 1);
        for (size_t k = 0; k < m; ++k) {
            const int v = view[k];
            slot[k] = fill[v] - start[v];
            order[fill[v]++] = k;
        }
    }
}

// The output directory, created if missing (not its parents).
void make_directory(const std::string &directory) {
    std::error_code ec;
    const fs::path dir(directory);
    if (!fs::is_directory(dir, ec)) {
        if (fs::exists(dir, ec)) fail_io("cannot write COLMAP model: '" + directory + "' exists and is not a directory", ENOTDIR);
        if (!fs::create_directory(dir, ec) && !fs::is_directory(dir))
            fail_io("cannot create directory '" + directory + "': " + ec.message(), ec.value());
    }
}

// cameras.bin, images.bin, points3D.bin (COLMAP's binary model; file(stem) names each)
void write_binary(const std::function<std::string(const char *)> &file, const std::vector<colmap_image> &ims,
                  const colmap_points &p, const std::vector<std::string> &names) {
    const int n = (int)ims.size();
    write_file(file("cameras"), [&](le_writer &w) {
        w.u64((uint64_t)n);
        for (int i = 0; i < n; ++i) {
            w.i32(i + 1);
            w.i32(1);  // PINHOLE
            w.u64((uint64_t)ims[i].w0);
            w.u64((uint64_t)ims[i].h0);
            for (double v : ims[i].params) w.f64(v);
        }
    });
    write_file(file("images"), [&](le_writer &w) {
        w.u64((uint64_t)n);
        for (int i = 0; i < n; ++i) {
            const colmap_image &im = ims[i];
            w.u32((uint32_t)(i + 1));
            for (double q : im.q) w.f64(q);
            for (double t : im.t) w.f64(t);
            w.u32((uint32_t)(i + 1));
            w.str0(names[i]);
            w.u64((uint64_t)(p.start[i + 1] - p.start[i]));
            for (size_t j = p.start[i]; j < p.start[i + 1]; ++j) {
                const size_t k = p.order[j];
                w.f64(p.pixel[2 * k] * im.sx);
                w.f64(p.pixel[2 * k + 1] * im.sy);
                w.i64((int64_t)k + 1);
            }
        }
    });
    write_file(file("points3D"), [&](le_writer &w) {
        w.u64((uint64_t)p.m);
        for (size_t k = 0; k < p.m; ++k) {
            w.u64((uint64_t)k + 1);
            for (int c = 0; c < 3; ++c) w.f64(p.xyz[3 * k + c]);
            for (int c = 0; c < 3; ++c) w.u8(p.color(k, c));
            w.f64(0.0);  // reprojection error
            w.u64(1);    // track length
            w.i32(p.view[k] + 1);
            w.i32((int32_t)p.slot[k]);
        }
    });
}

// cameras.txt, images.txt, points3D.txt
void write_text(const std::function<std::string(const char *)> &file, const std::vector<colmap_image> &ims,
                const colmap_points &p, const std::vector<std::string> &names) {
    const int n = (int)ims.size();
    char line[512];
    write_file(file("cameras"), [&](le_writer &w) {
        const std::string hdr = "# Camera list with one line of data per camera:\n"
                                "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n"
                                "# Number of cameras: " + std::to_string(n) + "\n";
        w.text(hdr.data(), hdr.size());
        for (int i = 0; i < n; ++i) {
            const colmap_image &im = ims[i];
            const int len = std::snprintf(line, sizeof line, "%d PINHOLE %d %d %.17g %.17g %.17g %.17g\n", i + 1, im.w0, im.h0,
                                          im.params[0], im.params[1], im.params[2], im.params[3]);
            w.text(line, (size_t)len);
        }
    });
    write_file(file("images"), [&](le_writer &w) {
        const std::string hdr = "# Image list with two lines of data per image:\n"
                                "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n"
                                "#   POINTS2D[] as (X, Y, POINT3D_ID)\n"
                                "# Number of images: " + std::to_string(n) + ", mean observations per image: " +
                                fmt("%.17g", n ? (double)p.m / n : 0.0) + "\n";
        w.text(hdr.data(), hdr.size());
        for (int i = 0; i < n; ++i) {
            const colmap_image &im = ims[i];
            int len = std::snprintf(line, sizeof line, "%d %.17g %.17g %.17g %.17g %.17g %.17g %.17g %d ", i + 1, im.q[0], im.q[1],
                                    im.q[2], im.q[3], im.t[0], im.t[1], im.t[2], i + 1);
            w.text(line, (size_t)len);
            w.text(names[i].data(), names[i].size());
            w.text("\n", 1);
            for (size_t j = p.start[i]; j < p.start[i + 1]; ++j) {
                const size_t k = p.order[j];
                len = std::snprintf(line, sizeof line, "%s%.17g %.17g %lld", j == p.start[i] ? "" : " ", p.pixel[2 * k] * im.sx,
                                    p.pixel[2 * k + 1] * im.sy, (long long)k + 1);
                w.text(line, (size_t)len);
            }
            w.text("\n", 1);
        }
    });
    write_file(file("points3D"), [&](le_writer &w) {
        const std::string hdr = "# 3D point list with one line of data per point:\n"
                                "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)\n"
                                "# Number of points: " + std::to_string(p.m) + ", mean track length: " +
                                std::string(p.m ? "1" : "0") + "\n";
        w.text(hdr.data(), hdr.size());
        for (size_t k = 0; k < p.m; ++k) {
            const int len = std::snprintf(line, sizeof line, "%lld %.17g %.17g %.17g %d %d %d 0 %d %lld\n", (long long)k + 1,
                                          (double)p.xyz[3 * k], (double)p.xyz[3 * k + 1], (double)p.xyz[3 * k + 2], p.color(k, 0),
                                          p.color(k, 1), p.color(k, 2), p.view[k] + 1, (long long)p.slot[k]);
            w.text(line, (size_t)len);
        }
    });
}

}  // namespace

void write_colmap(const std::string &directory, const float *xyz, const uint8_t *rgb, const int32_t *view,
                  const int32_t *pixel, int64_t n_points, const std::vector<camera> &cams, int height, int width,
                  const int32_t *original_sizes, const std::vector<std::string> &names, bool binary) {
    const int n = (int)cams.size();
    // ---- checks (before anything is written)
    std::vector<colmap_image> ims(n);
    std::set<std::string> seen;
    for (int i = 0; i < n; ++i) {
        ims[i] = check_view(cams[i], names[i], original_sizes + 2 * i, height, width, binary, "[" + std::to_string(i) + "]", seen);
    }
    colmap_points p{xyz, rgb, view, pixel, (size_t)n_points, {}, {}, {}};
    group_by_view(p, n, height, width);

    make_directory(directory);
    const fs::path dir(directory);
    const std::string ext = binary ? ".bin" : ".txt";
    auto file = [&](const char *stem) { return (dir / (std::string(stem) + ext)).string(); };
    if (binary) {
        write_binary(file, ims, p, names);
    } else {
        write_text(file, ims, p, names);
    }
}

}  // namespace da3
