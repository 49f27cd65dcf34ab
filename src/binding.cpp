// pybind11 binding of the C API: numpy <-> C buffers with dtype/shape checks, the GIL
// released around compute, C statuses turned into Python exceptions. No logic here.
#include "binding.h"

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

[[noreturn]] void da3py::raise_status(da3_status st) {
    const std::string msg = da3_last_error();
    // messages may quote bytes from a corrupt file: decode leniently
    py::object text = py::reinterpret_steal<py::object>(PyUnicode_DecodeUTF8(msg.data(), (Py_ssize_t)msg.size(), "replace"));
    py::module_ errors = py::module_::import("depth_anything_cpp.errors");
    const char *cls = "BackendError";
    switch (st) {
        case DA3_ERR_INVALID_ARGUMENT: PyErr_SetObject(PyExc_ValueError, text.ptr()); throw py::error_already_set();
        case DA3_ERR_OUT_OF_MEMORY: PyErr_SetObject(PyExc_MemoryError, text.ptr()); throw py::error_already_set();
        case DA3_ERR_IO: cls = msg.find("no such file") != std::string::npos ? "ModelNotFoundError" : "ModelLoadError"; break;
        case DA3_ERR_FORMAT: case DA3_ERR_MISSING_TENSOR: cls = "ModelFormatError"; break;
        case DA3_ERR_UNSUPPORTED: cls = "UnsupportedError"; break;
        case DA3_ERR_NON_FINITE: cls = "NonFiniteOutputError"; break;
        default: break;
    }
    py::object exc = errors.attr(cls);
    PyErr_SetObject(exc.ptr(), text.ptr());
    throw py::error_already_set();
}

namespace {

struct Model {
    // Shared with the calls in flight: close() drops this reference, and the context is freed
    // when the last call that holds one returns.
    std::shared_ptr<da3_context> ctx;

    // metric_path: the metric file of a nested pair given as two files (path = the any-view file)
    Model(const std::string &path, int n_threads, const std::string &backend, int device, py::object metric_path,
          const std::string &precision) {
        da3_context_params p = da3_context_default_params();
        p.n_threads = n_threads;
        p.precision = da3py::precision_from_string(precision);
        if (backend == "cpu") p.backend = DA3_BACKEND_CPU;
        else if (backend == "gpu") p.backend = DA3_BACKEND_GPU;
        else if (backend == "auto") p.backend = DA3_BACKEND_AUTO;
        else throw py::value_error("backend must be 'cpu', 'gpu' or 'auto', got '" + backend + "'");
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
        py::dict d;
        d["preset"] = mi.preset;
        d["checkpoint"] = mi.checkpoint;
        d["embed_dim"] = mi.embed_dim;
        d["depth"] = mi.depth;
        d["num_heads"] = mi.num_heads;
        d["patch_size"] = mi.patch_size;
        d["out_layers"] = std::vector<int>(mi.out_layers, mi.out_layers + 4);
        d["alt_start"] = mi.alt_start;
        d["rope_start"] = mi.rope_start;
        d["qknorm_start"] = mi.qknorm_start;
        d["head_features"] = mi.head_features;
        d["has_camera_decoder"] = (bool)mi.has_camera_decoder;
        d["has_camera_encoder"] = (bool)mi.has_camera_encoder;
        d["has_aux_head"] = (bool)mi.has_aux_head;
        d["has_sky"] = (bool)mi.has_sky;
        d["is_metric"] = (bool)mi.is_metric;
        d["is_nested"] = (bool)mi.is_nested;
        d["weight_type"] = mi.weight_type;
        d["image_mean"] = std::vector<float>(mi.image_mean, mi.image_mean + 3);
        d["image_std"] = std::vector<float>(mi.image_std, mi.image_std + 3);
        d["weights_bytes"] = mi.weights_bytes;
        d["weights_read_bytes"] = mi.weights_read_bytes;
        d["n_threads"] = mi.n_threads;
        d["backend"] = mi.backend;
        d["linear_engine"] = mi.linear_engine;
        return d;
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
        da3_infer_params p = da3py::make_params(process_res, method, ref_view, use_ray_pose, compute_aux, align, profile,
                                                taps, tap_ptrs);
        p.max_image_pixels = max_image_pixels;
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
        da3_infer_params p = da3py::make_params(504, "upper_bound_resize", ref_view, use_ray_pose, compute_aux, align,
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
             py::arg("path"), py::arg("n_threads") = 0, py::arg("backend") = "cpu", py::arg("device") = -1,
             py::arg("metric_path") = py::none(), py::arg("precision") = "auto")
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
             py::arg("intrinsics") = py::none(), py::arg("process_res") = 504,
             py::arg("process_res_method") = "upper_bound_resize", py::arg("ref_view_strategy") = "saddle_balanced",
             py::arg("use_ray_pose") = false, py::arg("compute_aux") = false, py::arg("align_to_input_ext_scale") = true,
             py::arg("taps") = std::vector<std::string>(), py::arg("max_image_pixels") = 100000000,
             py::arg("profile") = false)
        .def("infer_tensor",
             [](py::handle self, py::array input, py::object extrinsics, py::object intrinsics, const std::string &ref_view,
                bool use_ray_pose, bool compute_aux, bool align, std::vector<std::string> taps, bool profile) {
                 return Model::of(self).infer_tensor(input, extrinsics, intrinsics, ref_view, use_ray_pose, compute_aux,
                                                     align, std::move(taps), profile);
             },
             py::arg("input"), py::arg("extrinsics") = py::none(),
             py::arg("intrinsics") = py::none(), py::arg("ref_view_strategy") = "saddle_balanced",
             py::arg("use_ray_pose") = false, py::arg("compute_aux") = false, py::arg("align_to_input_ext_scale") = true,
             py::arg("taps") = std::vector<std::string>(), py::arg("profile") = false);
    // the design's name for the dense-depth entry point (points/exports come next to it)
    m.attr("Model").attr("depth_dense") = m.attr("Model").attr("infer");
    bind_preprocess(m);
    bind_points(m);
    bind_diag(m);
}
