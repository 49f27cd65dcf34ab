// pybind11 binding of the C API: numpy <-> C buffers with dtype/shape checks, the GIL
// released around compute, C statuses turned into Python exceptions. No logic here.
#include "binding.h"

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

namespace py = pybind11;

#ifndef DA3_MODULE_NAME
#define DA3_MODULE_NAME _da3_native
#endif
#ifndef DA3_VARIANT_NAME
#define DA3_VARIANT_NAME "native"
#endif

namespace {

// Status (and errno of DA3_ERR_IO, -1: any) -> exception class: `module` "" = builtins, else a
// module of the package holding only exception classes (no import of the rest). First match wins.
struct status_class {
    da3_status status;
    int os_errno;
    const char *module;
    const char *name;
};

const status_class k_model_classes[] = {
    {DA3_ERR_INVALID_ARGUMENT, -1, "", "ValueError"},
    {DA3_ERR_IO, ENOENT, "depth_anything_cpp._errors", "ModelNotFoundError"},
    {DA3_ERR_IO, ENOTDIR, "depth_anything_cpp._errors", "ModelNotFoundError"},
    {DA3_ERR_IO, -1, "depth_anything_cpp._errors", "ModelLoadError"},
    {DA3_ERR_FORMAT, -1, "depth_anything_cpp._errors", "ModelFormatError"},
    {DA3_ERR_MISSING_TENSOR, -1, "depth_anything_cpp._errors", "ModelFormatError"},
    {DA3_ERR_UNSUPPORTED, -1, "depth_anything_cpp._errors", "UnsupportedError"},
    {DA3_ERR_OUT_OF_MEMORY, -1, "", "MemoryError"},
    {DA3_ERR_BACKEND, -1, "depth_anything_cpp._errors", "BackendError"},
    {DA3_ERR_INTERNAL, -1, "depth_anything_cpp._errors", "BackendError"},
    {DA3_ERR_NON_FINITE, -1, "depth_anything_cpp._errors", "NonFiniteOutputError"},
};

// File outputs: I/O failures as the OSError subclass Python gives the same errno.
const status_class k_file_output_io[] = {
    {DA3_ERR_IO, ENOENT, "", "FileNotFoundError"},
    {DA3_ERR_IO, EACCES, "", "PermissionError"},
    {DA3_ERR_IO, EPERM, "", "PermissionError"},
    {DA3_ERR_IO, EROFS, "", "PermissionError"},
    {DA3_ERR_IO, ENOTDIR, "", "NotADirectoryError"},
    {DA3_ERR_IO, EISDIR, "", "IsADirectoryError"},
    {DA3_ERR_IO, -1, "", "OSError"},
};

template <size_t N>
const status_class *find_class(const status_class (&table)[N], da3_status st, int os_errno) {
    for (const status_class &c : table)
        if (c.status == st && (c.os_errno < 0 || c.os_errno == os_errno)) return &c;
    return nullptr;
}

}  // namespace

py::object da3py::exception_class(da3_status st, int os_errno, call_kind kind) {
    const status_class *c = kind == call_kind::file_output ? find_class(k_file_output_io, st, os_errno) : nullptr;
    if (!c) c = find_class(k_model_classes, st, os_errno);
    if (!c) return py::reinterpret_borrow<py::object>(PyExc_RuntimeError);  // DA3_OK or a status newer than this table
    return py::module_::import(*c->module ? c->module : "builtins").attr(c->name);
}

[[noreturn]] void da3py::raise_status(da3_status st, call_kind kind) {
    const std::string msg = da3_last_error();
    // messages may quote bytes from a corrupt file: decode leniently
    py::object text = py::reinterpret_steal<py::object>(PyUnicode_DecodeUTF8(msg.data(), (Py_ssize_t)msg.size(), "replace"));
    py::object cls = exception_class(st, da3_last_errno(), kind);
    PyErr_SetObject(cls.ptr(), text.ptr());
    throw py::error_already_set();
}

namespace {

// da3_model_info -> dict, one line per field (depth_anything.h); flags become bool.
py::dict model_info_dict(const da3_model_info &mi) {
    const auto flag = [](int v) { return py::bool_(v != 0); };
    return py::dict(
        py::arg("preset") = std::string(mi.preset), py::arg("checkpoint") = std::string(mi.checkpoint), py::arg("embed_dim") = mi.embed_dim,
        py::arg("depth") = mi.depth, py::arg("num_heads") = mi.num_heads, py::arg("patch_size") = mi.patch_size,
        py::arg("out_layers") = std::vector<int>(std::begin(mi.out_layers), std::end(mi.out_layers)),
        py::arg("alt_start") = mi.alt_start, py::arg("rope_start") = mi.rope_start,
        py::arg("qknorm_start") = mi.qknorm_start, py::arg("head_features") = mi.head_features,
        py::arg("has_camera_decoder") = flag(mi.has_camera_decoder),
        py::arg("has_camera_encoder") = flag(mi.has_camera_encoder), py::arg("has_aux_head") = flag(mi.has_aux_head),
        py::arg("has_sky") = flag(mi.has_sky), py::arg("is_metric") = flag(mi.is_metric),
        py::arg("is_nested") = flag(mi.is_nested), py::arg("weight_type") = std::string(mi.weight_type),
        py::arg("image_mean") = std::vector<float>(std::begin(mi.image_mean), std::end(mi.image_mean)),
        py::arg("image_std") = std::vector<float>(std::begin(mi.image_std), std::end(mi.image_std)),
        py::arg("weights_bytes") = mi.weights_bytes, py::arg("weights_read_bytes") = mi.weights_read_bytes,
        py::arg("n_threads") = mi.n_threads, py::arg("backend") = std::string(mi.backend), py::arg("linear_engine") = std::string(mi.linear_engine));
}

struct Model {
    // Shared with the calls in flight: close() drops this reference, and the context is freed
    // when the last call that holds one returns.
    std::shared_ptr<da3_context> ctx;

    // metric_path: the metric file of a nested pair given as two files (path = the any-view file)
    Model(const std::string &path, int n_threads, const std::string &backend, int device, py::object metric_path,
          const std::string &precision) {
        da3_context_params p = da3_context_default_params();
        p.n_threads = n_threads;
        p.precision = da3py::enum_value<da3_precision>(da3_precision_name, precision, "precision");
        p.backend = da3py::enum_value<da3_backend_kind>(da3_backend_kind_name, backend, "backend");
        p.device = device;
        const bool pair = !metric_path.is_none();
        const std::string metric = pair ? py::str(metric_path).cast<std::string>() : std::string();
        da3_status st;
        da3_context *c = nullptr;
        {
            py::gil_scoped_release nogil;
            st = pair ? da3_load_pair(path.c_str(), metric.c_str(), &p, &c) : da3_load(path.c_str(), &p, &c);
        }
        if (st != DA3_OK) da3py::raise_status(st);
        ctx.reset(c, da3_free);
    }
    Model(const Model &) = delete;
    Model &operator=(const Model &) = delete;

    // The Model behind `self`, refusing one made without __init__ (Model.__new__(Model)), for
    // which pybind11 would hand out a pointer to memory never constructed.
    static Model &of(const py::handle &self) {
        if (!py::isinstance<Model>(self)) throw py::type_error("expected a Model");
        auto *inst = reinterpret_cast<py::detail::instance *>(self.ptr());
        py::detail::value_and_holder vh = inst->get_value_and_holder(py::detail::get_type_info(typeid(Model)));
        if (!vh || !vh.holder_constructed()) throw py::value_error("this Model was not initialized (made without __init__)");
        return *vh.value_ptr<Model>();
    }
    // The context of a model not closed, shared with the caller for the duration of a call.
    std::shared_ptr<da3_context> live() const {
        if (!ctx) throw py::value_error("this Model is closed");
        return ctx;
    }

    py::dict info() const {
        da3_model_info mi;
        da3_status st = da3_get_model_info(live().get(), &mi);
        if (st != DA3_OK) da3py::raise_status(st);
        return model_info_dict(mi);
    }

    // Runs `call` (a C inference) with the GIL released; status -> exception; result -> dict.
    template <typename F>
    static py::dict run(F &&call) {
        da3_result *res = nullptr;
        da3_status st;
        {
            py::gil_scoped_release nogil;
            st = call(&res);
        }
        if (st != DA3_OK) da3py::raise_status(st);
        return da3py::result_to_dict(res);
    }

    py::dict infer(py::list images, py::object extrinsics, py::object intrinsics, int process_res,
                   const std::string &method, const std::string &ref_view, bool use_ray_pose, bool compute_aux,
                   bool align, std::vector<std::string> taps, int max_image_pixels, bool profile) {
        std::vector<da3py::u8_image> keep;
        std::vector<da3_image> imgs = da3py::images_from_list(images, keep);
        const int n = (int)imgs.size();
        da3py::pose_args poses(extrinsics, intrinsics, n);
        std::vector<const char *> tap_ptrs;
        da3_infer_params p = da3_infer_default_params();
        p.process_res = process_res;
        p.resize_method = da3py::enum_value<da3_resize_method>(da3_resize_method_name, method, "process_res_method");
        p.max_image_pixels = max_image_pixels;
        p = da3py::make_params(p, ref_view, use_ray_pose, compute_aux, align, profile, taps, tap_ptrs);
        std::shared_ptr<da3_context> c = live();
        return run([&](da3_result **res) {
            return da3_infer(c.get(), imgs.data(), n, poses.ext(), poses.ext_rows, poses.intr(), &p, res);
        });
    }

    py::dict infer_tensor(py::array input, py::object extrinsics, py::object intrinsics, const std::string &ref_view,
                          bool use_ray_pose, bool compute_aux, bool align, std::vector<std::string> taps, bool profile) {
        auto arr = da3py::checked_f32(input, 4, "input");
        if (arr.shape(1) != 3) throw py::value_error("input must have shape (N, 3, H, W)");
        const int n = (int)arr.shape(0), h = (int)arr.shape(2), w = (int)arr.shape(3);
        da3py::pose_args poses(extrinsics, intrinsics, n);
        std::vector<const char *> tap_ptrs;
        da3_infer_params p = da3py::make_params(da3_infer_default_params(), ref_view, use_ray_pose, compute_aux, align,
                                                profile, taps, tap_ptrs);
        std::shared_ptr<da3_context> c = live();
        return run([&](da3_result **res) {
            return da3_infer_tensor(c.get(), arr.data(), n, h, w, poses.ext(), poses.ext_rows, poses.intr(), &p, res);
        });
    }
};

}  // namespace

PYBIND11_MODULE(DA3_MODULE_NAME, m) {
    m.doc() = "depth-anything.cpp compiled core (variant " DA3_VARIANT_NAME "); use depth_anything_cpp instead.";
    m.def("ggml_version", [] { return std::string(da3_ggml_version()); });
    const da3_context_params cd = da3_context_default_params();
    const da3_infer_params id = da3_infer_default_params();
    bind_params(m);
    m.attr("max_views") = DA3_MAX_VIEWS;
    m.def("variant", [] { return std::string(da3_build_variant()); });
    m.def("devices", [] {
        py::list out;
        const int n = da3_device_count();
        for (int i = 0; i < n; ++i) {
            da3_device_info di;
            if (da3_device_get(i, &di) != DA3_OK) continue;
            py::dict d;
            d["index"] = i;
            d["name"] = di.name;
            d["description"] = di.description;
            d["is_gpu"] = (bool)di.is_gpu;
            d["memory_total"] = di.memory_total;
            d["memory_free"] = di.memory_free;
            out.append(d);
        }
        return out;
    });
    static const char *infer_doc =
        "Dense depth for N uint8 HxWx3 images as one scene -> dict of float32 arrays: depth (N,H,W), conf,\n"
        "extrinsics (N,3,4) world-to-camera, intrinsics (N,3,3) px, sky (mono/metric), processed_images uint8.\n"
        "Raises ValueError on bad input, UnsupportedError when the model lacks a requested part.";
    // module-local: every variant module defines its own Model, and one process may load several
    // (the GPU probe, then a CPU level); libc++ (the zig-built wheels) matches type_info by name
    py::class_<Model>(m, "Model", py::module_local())
        .def(py::init<const std::string &, int, const std::string &, int, py::object, const std::string &>(),
             "Loads a GGUF model; with metric_path, `path` is the any-view file and metric_path the metric file\n"
             "of a nested pair given as two files; precision 'auto', 'f32' or 'bf16' (da3_precision). Raises\n"
             "ModelNotFoundError, ModelLoadError, ModelFormatError (also for a pair in the wrong order),\n"
             "UnsupportedError, ValueError.",
             py::arg("path"), py::arg("n_threads") = cd.n_threads, py::arg("backend") = da3_backend_kind_name(cd.backend),
             py::arg("device") = cd.device, py::arg("metric_path") = py::none(),
             py::arg("precision") = da3_precision_name(cd.precision))
        .def("info", [](py::handle self) { return Model::of(self).info(); })
        .def("close", [](py::handle self) { Model::of(self).ctx.reset(); },
             "Frees the model's memory now (after the calls in flight return); later calls raise ValueError.")
        .def("__enter__", [](py::handle self) {
            Model::of(self).live();
            return py::reinterpret_borrow<py::object>(self);
        })
        .def("__exit__", [](py::handle self, py::args) { Model::of(self).ctx.reset(); })
        .def("infer",
             [](py::handle self, py::list images, py::object extrinsics, py::object intrinsics, int process_res,
                const std::string &method, const std::string &ref_view, bool use_ray_pose, bool compute_aux, bool align,
                std::vector<std::string> taps, int max_image_pixels, bool profile) {
                 return Model::of(self).infer(images, extrinsics, intrinsics, process_res, method, ref_view, use_ray_pose,
                                              compute_aux, align, std::move(taps), max_image_pixels, profile);
             },
             infer_doc, py::arg("images"), py::arg("extrinsics") = py::none(),
             py::arg("intrinsics") = py::none(), py::arg("process_res") = id.process_res,
             py::arg("process_res_method") = da3_resize_method_name(id.resize_method),
             py::arg("ref_view_strategy") = da3_ref_view_strategy_name(id.ref_view),
             py::arg("use_ray_pose") = (bool)id.use_ray_pose, py::arg("compute_aux") = (bool)id.compute_aux,
             py::arg("align_to_input_ext_scale") = (bool)id.align_to_input_ext_scale,
             py::arg("taps") = std::vector<std::string>(), py::arg("max_image_pixels") = id.max_image_pixels,
             py::arg("profile") = (bool)id.profile)
        .def("infer_tensor",
             [](py::handle self, py::array input, py::object extrinsics, py::object intrinsics, const std::string &ref_view,
                bool use_ray_pose, bool compute_aux, bool align, std::vector<std::string> taps, bool profile) {
                 return Model::of(self).infer_tensor(input, extrinsics, intrinsics, ref_view, use_ray_pose, compute_aux,
                                                     align, std::move(taps), profile);
             },
             py::arg("input"), py::arg("extrinsics") = py::none(),
             py::arg("intrinsics") = py::none(), py::arg("ref_view_strategy") = da3_ref_view_strategy_name(id.ref_view),
             py::arg("use_ray_pose") = (bool)id.use_ray_pose, py::arg("compute_aux") = (bool)id.compute_aux,
             py::arg("align_to_input_ext_scale") = (bool)id.align_to_input_ext_scale,
             py::arg("taps") = std::vector<std::string>(), py::arg("profile") = (bool)id.profile);
    // the design's name for the dense-depth entry point (points/exports come next to it)
    m.attr("Model").attr("depth_dense") = m.attr("Model").attr("infer");
    bind_preprocess(m);
    bind_points(m);
    bind_diag(m);
    bind_schema(m);
}
