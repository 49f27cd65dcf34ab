// glTF 2.0 binary writer for a point cloud and camera frustums, aligned to the first camera.
// ref: official utils/export/glb.py (_compute_alignment_transform_first_cam_glTF_center_by_points,
// _estimate_scene_scale, _camera_frustum_lines, _index_color_rgb). Format: Khronos glTF 2.0
// specification, "GLB File Format Specification".
#include "host/exports.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstring>

#include <fcntl.h>
#include <random>
#ifdef _WIN32
#include <io.h>
#include <process.h>
#define da3_getpid _getpid
#else
#include <unistd.h>
#define da3_getpid getpid
#endif

namespace da3 {

// ---- atomic_file (shared with the COLMAP writer) ---------------------------------------

atomic_file::atomic_file(const std::string &path) : path_(path) {
    // A new file under a random name (O_CREAT | O_EXCL, as mkstemp, but with the umask's
    // mode): a file or symlink planted at the temp name is never opened or followed.
    std::random_device rd;
    for (int attempt = 0;; ++attempt) {
        char suffix[32];
        std::snprintf(suffix, sizeof suffix, ".tmp.%lld.%08x", (long long)da3_getpid(), (unsigned)rd());
        tmp_ = path + suffix;
#ifdef _WIN32
        const int fd = _open(tmp_.c_str(), _O_WRONLY | _O_CREAT | _O_EXCL | _O_BINARY, 0666);
#else
        const int fd = open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
#endif
        if (fd >= 0) {
            f_ = fdopen(fd, "wb");
            if (f_) break;
            close(fd);
            std::remove(tmp_.c_str());
        } else if (errno == EEXIST && attempt < 100) {
            continue;
        }
        done_ = true;  // nothing of ours to remove
        const int e = errno;
        fail_io("cannot write '" + path + "': " + std::strerror(e), e);
    }
}

atomic_file::~atomic_file() {
    if (f_) std::fclose(f_);
    if (!done_) std::remove(tmp_.c_str());
}

void atomic_file::write(const void *data, size_t n) {
    if (n && std::fwrite(data, 1, n, f_) != n) {
        const int e = errno;
        fail_io("cannot write '" + path_ + "': " + std::strerror(e), e);
    }
}

void atomic_file::commit() {
    const int rc = std::fclose(f_);
    f_ = nullptr;
    const int close_errno = errno;
    if (rc != 0) fail_io("cannot write '" + path_ + "': " + std::strerror(close_errno), close_errno);
#ifdef _WIN32
    std::remove(path_.c_str());  // rename does not replace on Windows
#endif
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
        const int e = errno;
        fail_io("cannot replace '" + path_ + "': " + std::strerror(e), e);
    }
    done_ = true;
}

// ---- GLB ----------------------------------------------------------------------------

namespace {

constexpr int GL_POINTS = 0, GL_LINES = 1;
constexpr int GL_UNSIGNED_BYTE = 5121, GL_FLOAT = 5126, GL_ARRAY_BUFFER = 34962;

double median_f64(std::vector<double> &v) {
    const size_t n = v.size(), mid = n / 2;
    std::nth_element(v.begin(), v.begin() + mid, v.end());
    if (n % 2) return v[mid];
    const double lo = *std::max_element(v.begin(), v.begin() + mid);
    return (lo + v[mid]) / 2;  // numpy.median: mean of the two middle values
}

// ref: glb.py _index_color_rgb / _hsv_to_rgb (float -> uint8 truncation as numpy astype)
void index_color(int i, int n, uint8_t rgb[3]) {
    const double h = (i + 0.5) / std::max(n, 1), s = 0.85, v = 0.95;
    const int k = (int)(h * 6.0);
    const double f = h * 6.0 - k, p = v * (1 - s), q = v * (1 - f * s), t = v * (1 - (1 - f) * s);
    double r, g, b;
    switch (k % 6) {
        case 0: r = v, g = t, b = p; break;
        case 1: r = q, g = v, b = p; break;
        case 2: r = p, g = v, b = t; break;
        case 3: r = p, g = q, b = v; break;
        case 4: r = t, g = p, b = v; break;
        default: r = v, g = p, b = q; break;
    }
    rgb[0] = (uint8_t)(r * 255), rgb[1] = (uint8_t)(g * 255), rgb[2] = (uint8_t)(b * 255);
}

// Buffer, views and accessors of the BIN chunk, and the JSON that describes them.
struct glb_builder {
    std::vector<uint8_t> bin;
    std::string views, accessors;
    int n_views = 0, n_accessors = 0;

    static std::string num(double x, int digits) {
        char buf[40];
        std::snprintf(buf, sizeof buf, "%.*g", digits, x);
        return buf;
    }

    int add_view(const void *data, size_t n) {
        while (bin.size() % 4) bin.push_back(0);  // every view starts on a 4-byte boundary
        const size_t off = bin.size();
        bin.resize(off + n);
        std::memcpy(bin.data() + off, data, n);
        views += std::string(n_views ? "," : "") + "{\"buffer\":0,\"byteOffset\":" + std::to_string(off) +
                 ",\"byteLength\":" + std::to_string(n) + ",\"target\":" + std::to_string(GL_ARRAY_BUFFER) + "}";
        return n_views++;
    }

    // POSITION: float32 VEC3 with min/max (required by the spec).
    int add_positions(const std::vector<float> &p) {
        const size_t count = p.size() / 3;
        float lo[3], hi[3];
        for (int c = 0; c < 3; ++c) lo[c] = hi[c] = p[c];
        for (size_t k = 0; k < count; ++k) {
            for (int c = 0; c < 3; ++c) {
                lo[c] = std::min(lo[c], p[3 * k + c]);
                hi[c] = std::max(hi[c], p[3 * k + c]);
            }
        }
        const int view = add_view(p.data(), p.size() * sizeof(float));
        accessors += std::string(n_accessors ? "," : "") + "{\"bufferView\":" + std::to_string(view) +
                     ",\"componentType\":" + std::to_string(GL_FLOAT) + ",\"count\":" + std::to_string(count) +
                     ",\"type\":\"VEC3\",\"min\":[" + num(lo[0], 9) + "," + num(lo[1], 9) + "," + num(lo[2], 9) +
                     "],\"max\":[" + num(hi[0], 9) + "," + num(hi[1], 9) + "," + num(hi[2], 9) + "]}";
        return n_accessors++;
    }

    // COLOR_0: normalized uint8 VEC4 (RGBA; a VEC3 of bytes would break the 4-byte element
    // alignment vertex attributes need).
    int add_colors(const std::vector<uint8_t> &rgba) {
        const int view = add_view(rgba.data(), rgba.size());
        accessors += std::string(n_accessors ? "," : "") + "{\"bufferView\":" + std::to_string(view) +
                     ",\"componentType\":" + std::to_string(GL_UNSIGNED_BYTE) +
                     ",\"normalized\":true,\"count\":" + std::to_string(rgba.size() / 4) + ",\"type\":\"VEC4\"}";
        return n_accessors++;
    }
};

}  // namespace

void write_glb(const std::string &path, const float *xyz, const uint8_t *rgb, int64_t n_points,
               const std::vector<camera> &cams, int height, int width, bool show_cameras, double camera_size,
               double A_out[16]) {
    const size_t m = (size_t)n_points;
    // A = T(-median) * diag(1,-1,-1,1) * w2c[0]  (CV camera axes -> glTF: flip y and z)
    double A[16] = {0};
    const camera &c0 = cams[0];
    for (int r = 0; r < 3; ++r) {
        const double s = r == 0 ? 1.0 : -1.0;
        for (int q = 0; q < 4; ++q) A[4 * r + q] = s * c0.w2c[4 * r + q] + 0.0;  // + 0.0: no -0
    }
    A[15] = 1;
    auto aligned = [&](size_t k, int r) {
        const float *x = xyz + 3 * k;
        return A[4 * r] * x[0] + A[4 * r + 1] * x[1] + A[4 * r + 2] * x[2] + A[4 * r + 3];
    };
    std::vector<double> axis(m);
    if (m > 0) {
        double center[3];
        for (int r = 0; r < 3; ++r) {
            for (size_t k = 0; k < m; ++k) axis[k] = aligned(k, r);
            center[r] = median_f64(axis);
        }
        for (int r = 0; r < 3; ++r) A[4 * r + 3] -= center[r];
    }
    if (A_out) std::memcpy(A_out, A, sizeof A);

    // scene scale: diagonal of the 5..95 percentile box of the aligned points (ref: glb.py
    // _estimate_scene_scale), fallback 1
    std::vector<float> pos(m * 3);
    double scale = 1.0;
    {
        double d2 = 0;
        for (int r = 0; r < 3; ++r) {
            for (size_t k = 0; k < m; ++k) {
                axis[k] = aligned(k, r);
                pos[3 * k + r] = (float)axis[k];
            }
            if (m >= 2) {
                const double hi = percentile_f64(axis.data(), m, 95.0), lo = percentile_f64(axis.data(), m, 5.0);
                d2 += (hi - lo) * (hi - lo);
            }
        }
        const double diag = std::sqrt(d2);
        if (m >= 2 && std::isfinite(diag) && diag > 0) scale = diag;
    }
    std::vector<double>().swap(axis);
    for (float v : pos) {
        if (!std::isfinite(v)) fail(DA3_ERR_INVALID_ARGUMENT, "xyz gives a non-finite aligned coordinate");
    }

    glb_builder g;
    std::string prims;
    if (m > 0) {
        std::vector<uint8_t> rgba(m * 4);
        for (size_t k = 0; k < m; ++k) {
            for (int c = 0; c < 3; ++c) rgba[4 * k + c] = rgb ? rgb[3 * k + c] : 128;
            rgba[4 * k + 3] = 255;
        }
        const int ap = g.add_positions(pos);
        const int ac = g.add_colors(rgba);
        prims += "{\"attributes\":{\"POSITION\":" + std::to_string(ap) + ",\"COLOR_0\":" + std::to_string(ac) +
                 "},\"mode\":" + std::to_string(GL_POINTS) + "}";
    }
    std::vector<float>().swap(pos);

    if (show_cameras) {
        const double size = scale * camera_size;
        const int n = (int)cams.size();
        for (int i = 0; i < n; ++i) {
            const camera &c = cams[i];
            // ref: glb.py _camera_frustum_lines: centre -> 4 image corners on the z = 1 plane
            // (scaled), then the rectangle; 8 segments
            const double corners[4][2] = {{0, 0}, {width - 1.0, 0}, {width - 1.0, height - 1.0}, {0, height - 1.0}};
            double world[5][3];
            const double origin[3] = {0, 0, 0};
            apply_rt(c.c2w, origin, world[0]);
            for (int k = 0; k < 4; ++k) {
                double ray[3];
                for (int r = 0; r < 3; ++r) ray[r] = c.Kinv[3 * r] * corners[k][0] + c.Kinv[3 * r + 1] * corners[k][1] + c.Kinv[3 * r + 2];
                const double z = ray[2] == 0 ? 1.0 : ray[2];
                for (int r = 0; r < 3; ++r) ray[r] = ray[r] / z * size;
                apply_rt(c.c2w, ray, world[k + 1]);
            }
            static const int segs[8][2] = {{0, 1}, {0, 2}, {0, 3}, {0, 4}, {1, 2}, {2, 3}, {3, 4}, {4, 1}};
            std::vector<float> lp(16 * 3);
            for (int s = 0; s < 8; ++s) {
                for (int e = 0; e < 2; ++e) {
                    const double *wp = world[segs[s][e]];
                    for (int r = 0; r < 3; ++r) {
                        const double a = A[4 * r] * wp[0] + A[4 * r + 1] * wp[1] + A[4 * r + 2] * wp[2] + A[4 * r + 3];
                        lp[(2 * s + e) * 3 + r] = (float)a;
                    }
                }
            }
            for (float v : lp) {
                if (!std::isfinite(v)) fail(DA3_ERR_INVALID_ARGUMENT, "camera " + std::to_string(i) + " frustum is not finite");
            }
            uint8_t col[3];
            index_color(i, n, col);
            std::vector<uint8_t> rgba(16 * 4);
            for (int k = 0; k < 16; ++k) {
                for (int q = 0; q < 3; ++q) rgba[4 * k + q] = col[q];
                rgba[4 * k + 3] = 255;
            }
            const int ap = g.add_positions(lp);
            const int ac = g.add_colors(rgba);
            prims += std::string(prims.empty() ? "" : ",") + "{\"attributes\":{\"POSITION\":" + std::to_string(ap) +
                     ",\"COLOR_0\":" + std::to_string(ac) + "},\"mode\":" + std::to_string(GL_LINES) + "}";
        }
    }
    while (g.bin.size() % 4) g.bin.push_back(0);

    std::string A_json;
    for (int i = 0; i < 16; ++i) A_json += (i ? "," : "") + glb_builder::num(A[i], 17);
    std::string json = "{\"asset\":{\"version\":\"2.0\",\"generator\":\"depth-anything-cpp\"},\"scene\":0,\"scenes\":[{";
    json += "\"extras\":{\"da3_alignment_row_major\":[" + A_json + "]}";
    if (!prims.empty()) {
        json += ",\"nodes\":[0]}],\"nodes\":[{\"mesh\":0,\"name\":\"scene\"}],\"meshes\":[{\"name\":\"points\","
                "\"primitives\":[" + prims + "]}],\"accessors\":[" + g.accessors + "],\"bufferViews\":[" + g.views +
                "],\"buffers\":[{\"byteLength\":" + std::to_string(g.bin.size()) + "}]}";
    } else {
        json += "}]}";
    }
    while (json.size() % 4) json += ' ';

    const uint64_t total = 12 + 8 + json.size() + (g.bin.empty() ? 0 : 8 + g.bin.size());
    if (total > 0xffffffffull) fail(DA3_ERR_INVALID_ARGUMENT, "GLB would exceed 4 GiB: lower num_max_points");
    auto le32 = [](uint32_t v, uint8_t *o) {
        for (int i = 0; i < 4; ++i) o[i] = (uint8_t)(v >> (8 * i));
    };
    uint8_t hdr[20];
    le32(0x46546C67u, hdr);  // "glTF"
    le32(2, hdr + 4);
    le32((uint32_t)total, hdr + 8);
    le32((uint32_t)json.size(), hdr + 12);
    le32(0x4E4F534Au, hdr + 16);  // "JSON"
    atomic_file f(path);
    f.write(hdr, sizeof hdr);
    f.write(json);
    if (!g.bin.empty()) {
        uint8_t bh[8];
        le32((uint32_t)g.bin.size(), bh);
        le32(0x004E4942u, bh + 4);  // "BIN\0"
        f.write(bh, sizeof bh);
        f.write(g.bin.data(), g.bin.size());
    }
    f.commit();
}

}  // namespace da3
