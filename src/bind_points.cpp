// Binding of the points and export functions (da3_points_compute, da3_export_glb,
// da3_export_colmap): numpy checks, GIL released around the C calls, results returned as
// numpy arrays that own the C buffers (no copies).
#include "binding.h"

#include <string>
#include <vector>

namespace py = pybind11;

namespace {

using da3py::shape_str;
using i32_array = py::array_t<int32_t, py::array::c_style | py::array::forcecast | da3py::ensure_copy>;

py::array as_array(const py::object &obj, const char *what) {
    py::array a = py::array::ensure(obj);
    if (!a) throw py::value_error(std::string(what) + " must be a numpy array");
    return a;
}

// float32 C-contiguous copy of the given shape (-1: any).
da3py::f32_array f32(const py::object &obj, std::vector<py::ssize_t> shape, const char *what, const char *expect) {
    py::array a = as_array(obj, what);
    bool ok = a.ndim() == (py::ssize_t)shape.size();
    for (size_t i = 0; ok && i < shape.size(); ++i) ok = shape[i] < 0 || a.shape(i) == shape[i];
    if (!ok) throw py::value_error(std::string(what) + " must have shape " + expect + ", got " + shape_str(a));
    if (a.dtype().kind() == 'b') return da3py::f32_array::ensure(a);  // bool mask -> 0/1
    return da3py::checked_f32(a, (int)shape.size(), what);
}

// uint8 C-contiguous array of the given shape; other dtypes are refused (no silent rescaling).
da3py::u8_array u8(const py::object &obj, std::vector<py::ssize_t> shape, const char *what, const char *expect) {
    py::array a = as_array(obj, what);
    if (a.dtype().kind() != 'u' || a.itemsize() != 1)
        throw py::value_error(std::string(what) + " must be uint8, got " + std::string(py::str(a.dtype())));
    bool ok = a.ndim() == (py::ssize_t)shape.size();
    for (size_t i = 0; ok && i < shape.size(); ++i) ok = shape[i] < 0 || a.shape(i) == shape[i];
    if (!ok) throw py::value_error(std::string(what) + " must have shape " + expect + ", got " + shape_str(a));
    return da3py::u8_array::ensure(a);
}

// int32 C-contiguous array from any integer dtype whose values fit.
i32_array i32(const py::object &obj, std::vector<py::ssize_t> shape, const char *what, const char *expect) {
    py::array a = as_array(obj, what);
    const char k = a.dtype().kind();
    if (k != 'i' && k != 'u') throw py::value_error(std::string(what) + " must be an integer array, got " + std::string(py::str(a.dtype())));
    bool ok = a.ndim() == (py::ssize_t)shape.size();
    for (size_t i = 0; ok && i < shape.size(); ++i) ok = shape[i] < 0 || a.shape(i) == shape[i];
    if (!ok) throw py::value_error(std::string(what) + " must have shape " + expect + ", got " + shape_str(a));
    if (a.size() > 0 && a.itemsize() >= 4 && !(k == 'i' && a.itemsize() == 4)) {
        const long long lo = a.attr("min")().cast<long long>();
        const double hi = a.attr("max")().cast<double>();
        if (lo < INT32_MIN || hi > INT32_MAX) throw py::value_error(std::string(what) + " has values outside the int32 range");
    }
    return i32_array::ensure(a);
}

struct cameras {
    da3py::f32_array ext, intr;
    int ext_rows = 3, n = 0;
    cameras(const py::object &extrinsics, const py::object &intrinsics, py::ssize_t n_expected) {
        const char *expect = n_expected < 0 ? "(N, 3, 4) or (N, 4, 4)" : "(N, 3, 4) or (N, 4, 4) with N = len(depth)";
        ext = f32(extrinsics, {n_expected, -1, 4}, "extrinsics", expect);
        if (ext.shape(1) != 3 && ext.shape(1) != 4)
            throw py::value_error(std::string("extrinsics must have shape ") + expect + ", got " + shape_str(ext));
        n = (int)ext.shape(0);
        if (n < 1) throw py::value_error("extrinsics must hold at least one view");
        intr = f32(intrinsics, {n, 3, 3}, "intrinsics", "(N, 3, 3) with N = len(extrinsics)");
        ext_rows = (int)ext.shape(1);
    }
};

std::pair<int, int> image_size_hw(const py::object &obj) {
    try {
        auto t = obj.cast<std::vector<long long>>();
        if (t.size() == 2 && t[0] > 0 && t[1] > 0 && t[0] < (1 << 30) && t[1] < (1 << 30)) return {(int)t[0], (int)t[1]};
    } catch (const py::cast_error &) {
    }
    throw py::value_error("image_size must be (height, width) with positive integers");
}

std::string fs_path(const py::object &obj, const char *what) {
    py::object b;
    try {
        b = py::module_::import("os").attr("fsencode")(obj);
    } catch (py::error_already_set &) {
        throw py::type_error(std::string(what) + " must be a str or os.PathLike");
    }
    std::string s = b.cast<std::string>();
    if (s.empty() || s.find('\0') != std::string::npos) throw py::value_error(std::string(what) + " must be a non-empty path without NUL");
    return s;
}

py::dict points(const py::object &depth_o, const py::object &intr_o, const py::object &ext_o, const py::object &images_o,
                const py::object &conf_o, const py::object &sky_o, double conf_thresh, double conf_thresh_percentile,
                double ensure_thresh_percentile, bool remove_sky, double sky_thresh, long long num_max_points,
                unsigned long long seed) {
    auto depth = f32(depth_o, {-1, -1, -1}, "depth", "(N, H, W)");
    const py::ssize_t n = depth.shape(0), h = depth.shape(1), w = depth.shape(2);
    if (n < 1 || h < 1 || w < 1) throw py::value_error("depth must not be empty, got " + shape_str(depth));
    cameras cams(ext_o, intr_o, n);
    da3py::f32_array conf, sky;
    da3py::u8_array images;
    if (!conf_o.is_none()) conf = f32(conf_o, {n, h, w}, "conf", "(N, H, W) like depth");
    if (!sky_o.is_none()) sky = f32(sky_o, {n, h, w}, "sky", "(N, H, W) like depth");
    if (!images_o.is_none()) images = u8(images_o, {n, h, w, 3}, "images", "(N, H, W, 3) like depth");
    da3_points_params p = da3_points_default_params();
    p.conf_thresh = conf_thresh;
    p.conf_thresh_percentile = conf_thresh_percentile;
    p.ensure_thresh_percentile = ensure_thresh_percentile;
    p.remove_sky = remove_sky;
    p.sky_thresh = sky_thresh;
    p.num_max_points = num_max_points;
    p.seed = seed;
    const float *conf_p = conf_o.is_none() ? nullptr : conf.data();
    const float *sky_p = sky_o.is_none() ? nullptr : sky.data();
    const uint8_t *img_p = images_o.is_none() ? nullptr : images.data();
    da3_points *res = nullptr;
    da3_status st;
    {
        py::gil_scoped_release nogil;
        st = da3_points_compute(depth.data(), conf_p, sky_p, img_p, (int)n, (int)h, (int)w, cams.ext.data(), cams.ext_rows,
                                cams.intr.data(), &p, &res);
    }
    if (st != DA3_OK) da3py::raise_status(st);
    // one capsule owns the handle; every array keeps it alive as its base
    py::capsule owner(res, [](void *ptr) { da3_points_free(static_cast<da3_points *>(ptr)); });
    const py::ssize_t m = (py::ssize_t)da3_points_count(res);
    py::dict d;
    d["xyz"] = py::array_t<float>({m, (py::ssize_t)3}, da3_points_xyz(res), owner);
    d["rgb"] = py::array_t<uint8_t>({m, (py::ssize_t)3}, da3_points_rgb(res), owner);
    d["view"] = py::array_t<int32_t>({m}, da3_points_view(res), owner);
    d["pixel"] = py::array_t<int32_t>({m, (py::ssize_t)2}, da3_points_pixel(res), owner);
    d["conf_thresh"] = da3_points_conf_thresh(res);
    return d;
}

py::array_t<double> export_glb(const py::object &path_o, const py::object &xyz_o, const py::object &rgb_o,
                               const py::object &ext_o, const py::object &intr_o, const py::object &size_o,
                               bool show_cameras, double camera_size) {
    const std::string path = fs_path(path_o, "path");
    auto xyz = f32(xyz_o, {-1, 3}, "xyz", "(M, 3)");
    const py::ssize_t m = xyz.shape(0);
    da3py::u8_array rgb;
    if (!rgb_o.is_none()) rgb = u8(rgb_o, {m, 3}, "rgb", "(M, 3) like xyz");
    cameras cams(ext_o, intr_o, -1);
    const auto hw = image_size_hw(size_o);
    da3_glb_params p = da3_glb_default_params();
    p.show_cameras = show_cameras;
    p.camera_size = camera_size;
    py::array_t<double> A({(py::ssize_t)4, (py::ssize_t)4});
    double *A_p = A.mutable_data();
    const float *xyz_p = m ? xyz.data() : nullptr;
    const uint8_t *rgb_p = rgb_o.is_none() || !m ? nullptr : rgb.data();
    da3_status st;
    {
        py::gil_scoped_release nogil;
        st = da3_export_glb(path.c_str(), xyz_p, rgb_p, (int64_t)m, cams.ext.data(), cams.ext_rows, cams.intr.data(), cams.n,
                            hw.first, hw.second, &p, A_p);
    }
    if (st != DA3_OK) da3py::raise_status(st, da3py::call_kind::file_output);
    return A;
}

void export_colmap(const py::object &dir_o, const py::object &xyz_o, const py::object &rgb_o, const py::object &view_o,
                   const py::object &pixel_o, const py::object &ext_o, const py::object &intr_o, const py::object &size_o,
                   const py::object &orig_o, const py::object &names_o, bool binary) {
    const std::string dir = fs_path(dir_o, "directory");
    auto xyz = f32(xyz_o, {-1, 3}, "xyz", "(M, 3)");
    const py::ssize_t m = xyz.shape(0);
    da3py::u8_array rgb;
    if (!rgb_o.is_none()) rgb = u8(rgb_o, {m, 3}, "rgb", "(M, 3) like xyz");
    auto view = i32(view_o, {m}, "view", "(M,) like xyz");
    auto pixel = i32(pixel_o, {m, 2}, "pixel", "(M, 2) like xyz");
    cameras cams(ext_o, intr_o, -1);
    const auto hw = image_size_hw(size_o);
    std::vector<int32_t> orig;
    try {
        for (auto item : orig_o.cast<py::sequence>()) {
            auto wh = item.cast<std::vector<long long>>();
            if (wh.size() != 2 || wh[0] < 1 || wh[1] < 1 || wh[0] > INT32_MAX || wh[1] > INT32_MAX) throw py::cast_error();
            orig.push_back((int32_t)wh[0]);
            orig.push_back((int32_t)wh[1]);
        }
    } catch (const py::cast_error &) {
        throw py::value_error("original_sizes must be a sequence of (width, height) pairs of positive integers");
    }
    if ((int)orig.size() != 2 * cams.n)
        throw py::value_error("original_sizes must have one (width, height) per view (" + std::to_string(cams.n) + "), got " +
                              std::to_string(orig.size() / 2));
    std::vector<std::string> names;
    try {
        if (py::isinstance<py::str>(names_o)) throw py::cast_error();
        names = names_o.cast<std::vector<std::string>>();
    } catch (const py::cast_error &) {
        throw py::value_error("image_names must be a sequence of str");
    }
    if ((int)names.size() != cams.n)
        throw py::value_error("image_names must have one name per view (" + std::to_string(cams.n) + "), got " +
                              std::to_string(names.size()));
    std::vector<const char *> name_p;
    for (size_t i = 0; i < names.size(); ++i) {
        if (names[i].find('\0') != std::string::npos) throw py::value_error("image_names[" + std::to_string(i) + "] contains NUL");
        name_p.push_back(names[i].c_str());
    }
    da3_colmap_params p = da3_colmap_default_params();
    p.binary = binary;
    const float *xyz_p = m ? xyz.data() : nullptr;
    const uint8_t *rgb_p = rgb_o.is_none() || !m ? nullptr : rgb.data();
    const int32_t *view_p = m ? view.data() : nullptr, *pixel_p = m ? pixel.data() : nullptr;
    da3_status st;
    {
        py::gil_scoped_release nogil;
        st = da3_export_colmap(dir.c_str(), xyz_p, rgb_p, view_p, pixel_p, (int64_t)m, cams.ext.data(), cams.ext_rows,
                               cams.intr.data(), cams.n, hw.first, hw.second, orig.data(), name_p.data(), &p);
    }
    if (st != DA3_OK) da3py::raise_status(st, da3py::call_kind::file_output);
}

}  // namespace

void bind_points(py::module_ &m) {
    const da3_points_params pd = da3_points_default_params();
    const da3_glb_params gd = da3_glb_default_params();
    m.def("points", &points, py::arg("depth"), py::arg("intrinsics"), py::arg("extrinsics"), py::arg("images") = py::none(),
          py::arg("conf") = py::none(), py::arg("sky") = py::none(), py::kw_only(), py::arg("conf_thresh") = pd.conf_thresh,
          py::arg("conf_thresh_percentile") = pd.conf_thresh_percentile,
          py::arg("ensure_thresh_percentile") = pd.ensure_thresh_percentile, py::arg("remove_sky") = (bool)pd.remove_sky,
          py::arg("sky_thresh") = pd.sky_thresh, py::arg("num_max_points") = (long long)pd.num_max_points,
          py::arg("seed") = (unsigned long long)pd.seed,
          R"doc(Back-project depth maps of N views into one world-frame point cloud.

depth (N, H, W) float32; intrinsics (N, 3, 3) px at H x W; extrinsics (N, 3, 4) or (N, 4, 4)
world-to-camera (OpenCV); images (N, H, W, 3) uint8 or None (grey 128); conf (N, H, W) or None
(no confidence filtering); sky (N, H, W) probability or bool mask, or None.
Threshold (ref: official utils/export/glb.py get_conf_thresh): pool = conf of valid non-sky
pixels (all valid pixels if sky is None or at most 10 are non-sky); thr = min(max(conf_thresh,
percentile(pool, conf_thresh_percentile)), percentile(pool, ensure_thresh_percentile)) with
numpy's linear percentile; conf_thresh_percentile <= 0 / ensure_thresh_percentile >= 100
disable the clamps. Kept: finite depth > 0, conf >= thr, not sky (sky >= sky_thresh) when
remove_sky. World point = c2w (depth K^-1 [u, v, 1]), (u, v) = (column, row).
More than num_max_points (> 0) survivors: exactly num_max_points chosen by a generator seeded
with `seed` (deterministic), kept in (view, row, column) order.
Returns dict: xyz (M, 3) float32 world (metres for metric models), rgb (M, 3) uint8, view (M,)
int32, pixel (M, 2) int32 (x = column, y = row), conf_thresh float (nan without conf).
The arrays own the C buffers (no copy). Raises ValueError on bad shapes/dtypes, NaN/inf or
non-invertible intrinsics/extrinsics, bad parameters.)doc");
    m.def("export_glb", &export_glb, py::arg("path"), py::arg("xyz"), py::arg("rgb"), py::arg("extrinsics"),
          py::arg("intrinsics"), py::arg("image_size"), py::kw_only(), py::arg("show_cameras") = (bool)gd.show_cameras,
          py::arg("camera_size") = gd.camera_size,
          R"doc(Write a glTF 2.0 binary (GLB) point cloud with camera frustums, atomically.

xyz (M, 3) float32 world points (M may be 0); rgb (M, 3) uint8 or None (grey); extrinsics
(N, 3, 4) / (N, 4, 4) world-to-camera; intrinsics (N, 3, 3) px at image_size = (H, W), the
processed size. One mesh: a POINTS primitive (POSITION float32, COLOR_0 normalized uint8 RGBA)
and, with show_cameras, one LINES frustum (8 segments, a colour per view) per camera of depth
camera_size x the 5-95 percentile diagonal of the points. Scene aligned like the official
exporter: A = T(-median) diag(1, -1, -1, 1) w2c[0]; returns A (4, 4) float64 (GLB coords =
A [xyz; 1]). ref: official utils/export/glb.py. Raises ValueError on bad input, OSError
(FileNotFoundError, PermissionError, ...) when the file cannot be written.)doc");
    m.def("export_colmap", &export_colmap, py::arg("directory"), py::arg("xyz"), py::arg("rgb"), py::arg("view"),
          py::arg("pixel"), py::arg("extrinsics"), py::arg("intrinsics"), py::arg("image_size"), py::arg("original_sizes"),
          py::arg("image_names"), py::kw_only(), py::arg("binary") = (bool)da3_colmap_default_params().binary,
          R"doc(Write a COLMAP sparse model (cameras, images, points3D; .bin or .txt) into `directory`.

The directory is created if missing (its parent must exist); each file is written atomically.
xyz (M, 3) float32, rgb (M, 3) uint8 or None, view (M,) and pixel (M, 2) integer (column, row at
image_size = (H, W)) as returned by points(); extrinsics/intrinsics as for points();
original_sizes: one (width, height) per view; image_names: one unique name per view (no
whitespace in text mode). One PINHOLE camera per view with fx, cx scaled by W0/W and fy, cy by
H0/H; image i+1 posed by extrinsics[i]; point k+1 observed once at pixel * (W0/W, H0/H).
ref: official utils/export/colmap.py. Raises ValueError on bad input (also a rotation that is
not orthonormal, a non-pinhole K), OSError when the directory cannot be created or written.)doc");
}
