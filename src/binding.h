// Shared helpers of the binding translation units: checked numpy conversion and results.
#pragma once

#include "depth_anything.h"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

void bind_params(pybind11::module_ &m);  // params structs, enums, status -> exception (bind_params.cpp)
void bind_preprocess(pybind11::module_ &m);
void bind_points(pybind11::module_ &m);  // points, export_glb, export_colmap (bind_points.cpp)
void bind_diag(pybind11::module_ &m);    // build_info, check_linear_f16, ray_pose (bind_diag.cpp)
void bind_schema(pybind11::module_ &m);  // gguf_schema_json (bind_schema.cpp)

namespace da3py {
namespace py = pybind11;

// Which Python exception a failed call raises: C status (and, for DA3_ERR_IO, the OS errno of
// da3_last_errno()) -> class, by table (binding.cpp). Model loading and inference: the package's
// classes (ModelNotFoundError, ...); file outputs (GLB, COLMAP): the OSError subclass of errno.
enum class call_kind { model, file_output };

// The exception class for `st` (os_errno: da3_last_errno() of DA3_ERR_IO).
py::object exception_class(da3_status st, int os_errno, call_kind kind);

// Raises the Python exception matching `st` with da3_last_error() as message.
[[noreturn]] void raise_status(da3_status st, call_kind kind = call_kind::model);

// Input arrays are read with the GIL released: ensure() gives a private copy (NumPy's
// NPY_ARRAY_ENSURECOPY flag), so another thread writing to the caller's array during the call
// cannot change the result (one copy, the conversion's when a dtype or layout changes).
constexpr int ensure_copy = 0x0020;
using f32_array = py::array_t<float, py::array::c_style | py::array::forcecast | ensure_copy>;
using u8_array = py::array_t<uint8_t, py::array::c_style | ensure_copy>;

// "(2, 3, 4)": the shape of `a` as numpy prints it.
inline std::string shape_str(const py::array &a) {
    std::string s = "(";
    for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
    return s + (a.ndim() == 1 ? ",)" : ")");
}

// float32 C-contiguous copy of `a` with `ndim` dims.
inline f32_array checked_f32(const py::array &a, int ndim, const char *what) {
    if (a.ndim() != ndim) {
        throw py::value_error(std::string(what) + " must have " + std::to_string(ndim) + " dimensions, got " +
                              std::to_string(a.ndim()));
    }
    if (a.dtype().kind() != 'f' && a.dtype().kind() != 'i' && a.dtype().kind() != 'u') {
        throw py::value_error(std::string(what) + " must be a real numeric array");
    }
    return f32_array::ensure(a);
}

// The C enum value whose name (the C table `name_of`, e.g. da3_resize_method_name) is `name`;
// ValueError naming the argument `what` and listing the names otherwise.
template <typename E>
E enum_value(const char *(*name_of)(int), const std::string &name, const char *what) {
    std::string names;
    for (int v = 0; const char *n = name_of(v); ++v) {
        if (name == n) return static_cast<E>(v);
        names += (v ? ", '" : "'") + std::string(n) + "'";
    }
    throw py::value_error(std::string(what) + ": expected one of " + names + ", got '" + name + "'");
}

struct u8_image {
    u8_array arr;
};

// list of HxWx3 uint8 arrays -> borrowed da3_image views (arrays kept alive in `keep`).
inline std::vector<da3_image> images_from_list(const py::list &images, std::vector<u8_image> &keep) {
    if (images.size() == 0) throw py::value_error("images must not be empty");
    std::vector<da3_image> out;
    for (size_t i = 0; i < images.size(); ++i) {
        py::array a = py::array::ensure(images[i]);
        if (!a) throw py::value_error("image " + std::to_string(i) + " is not an array");
        if (a.dtype().kind() != 'u' || a.itemsize() != 1) {
            throw py::value_error("image " + std::to_string(i) + " must be uint8, got " + std::string(py::str(a.dtype())));
        }
        if (a.ndim() != 3 || a.shape(2) != 3) {
            throw py::value_error("image " + std::to_string(i) + " must have shape (H, W, 3)");
        }
        if (a.shape(0) < 1 || a.shape(1) < 1) throw py::value_error("image " + std::to_string(i) + " is empty");
        keep.push_back({u8_array::ensure(a)});
        const u8_array &c = keep.back().arr;
        da3_image im;
        im.data = c.data();
        im.height = (int)c.shape(0);
        im.width = (int)c.shape(1);
        im.stride = (size_t)c.shape(1) * 3;
        out.push_back(im);
    }
    return out;
}

// Optional (extrinsics, intrinsics) arrays as C buffers of n views (shapes checked here, values
// and combinations by the C core).
struct pose_args {
    f32_array e, k;
    int ext_rows = 3;
    bool has_e = false, has_k = false;
    pose_args(const py::object &ext, const py::object &intr, int n) : has_e(!ext.is_none()), has_k(!intr.is_none()) {
        const std::string views = " with N = " + std::to_string(n) + " views, got ";
        if (has_e) {
            e = checked(ext, "extrinsics");
            if (e.ndim() != 3 || e.shape(0) != n || (e.shape(1) != 3 && e.shape(1) != 4) || e.shape(2) != 4)
                throw py::value_error("extrinsics: expected shape (N, 3, 4) or (N, 4, 4)" + views + shape_str(e));
            ext_rows = (int)e.shape(1);
        }
        if (has_k) {
            k = checked(intr, "intrinsics");
            if (k.ndim() != 3 || k.shape(0) != n || k.shape(1) != 3 || k.shape(2) != 3)
                throw py::value_error("intrinsics: expected shape (N, 3, 3)" + views + shape_str(k));
        }
    }
    // float32 copy of an array-like of real numbers (any shape)
    static f32_array checked(const py::object &obj, const char *what) {
        py::array a = py::array::ensure(obj);
        if (!a) throw py::value_error(std::string(what) + ": not convertible to an array");
        const char kind = a.dtype().kind();
        if (kind != 'f' && kind != 'i' && kind != 'u')
            throw py::value_error(std::string(what) + ": expected a numeric array, got dtype " + std::string(py::str(a.dtype())));
        return f32_array::ensure(a);
    }
    const float *ext() const { return has_e ? e.data() : nullptr; }
    const float *intr() const { return has_k ? k.data() : nullptr; }
};

// Inference params: `p` (from da3_infer_default_params) with the Python keywords; tap_ptrs
// receives the C strings of `taps` (it and `taps` must outlive the call).
inline da3_infer_params make_params(da3_infer_params p, const std::string &ref_view, bool use_ray_pose, bool compute_aux,
                                    bool align, bool profile, const std::vector<std::string> &taps,
                                    std::vector<const char *> &tap_ptrs) {
    p.ref_view = enum_value<da3_ref_view_strategy>(da3_ref_view_strategy_name, ref_view, "ref_view_strategy");
    p.use_ray_pose = use_ray_pose;
    p.compute_aux = compute_aux;
    p.align_to_input_ext_scale = align;
    p.profile = profile;
    tap_ptrs.clear();
    for (auto &t : taps) tap_ptrs.push_back(t.c_str());
    p.taps = tap_ptrs.data();
    p.n_taps = (int)tap_ptrs.size();
    return p;
}

// Moves every output of `res` into numpy arrays (one copy) and frees res.
inline py::dict result_to_dict(da3_result *raw) {
    std::unique_ptr<da3_result, void (*)(da3_result *)> holder(raw, da3_result_free);
    da3_result *res = holder.get();
    py::dict d;
    int n = 0, h = 0, w = 0;
    da3_result_shape(res, &n, &h, &w);
    const int count = da3_result_count(res);
    for (int i = 0; i < count; ++i) {
        const char *name = da3_result_name(res, i);
        int64_t shape[4];
        int nd = 0;
        const float *data = da3_result_get(res, name, shape, &nd);
        std::vector<py::ssize_t> sh(shape, shape + nd);
        py::array_t<float> a(sh);
        size_t total = 1;
        for (int k = 0; k < nd; ++k) total *= (size_t)shape[k];
        std::memcpy(a.mutable_data(), data, total * sizeof(float));
        d[name] = a;
    }
    const uint8_t *imgs = da3_result_images(res);
    if (imgs) {
        py::array_t<uint8_t> a({(py::ssize_t)n, (py::ssize_t)h, (py::ssize_t)w, (py::ssize_t)3});
        std::memcpy(a.mutable_data(), imgs, (size_t)n * h * w * 3);
        d["processed_images"] = a;
    }
    d["is_metric"] = (bool)da3_result_is_metric(res);
    return d;
}

}  // namespace da3py
