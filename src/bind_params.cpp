// Binding of the C params structs and enums as they are: each struct's Python class starts from
// its *_default_params() (the one place a default is written), each enum takes its value names
// from the C name tables, and status_exception shows the status -> exception table.
#include "binding.h"

namespace py = pybind11;

namespace {

// py::enum_ `name` whose members are the C names of the values 0, 1, ... (name_of).
template <typename E>
void bind_enum(py::module_ &m, const char *name, const char *(*name_of)(int)) {
    py::enum_<E> e(m, name, py::module_local());  // module_local: several variants load in one process
    for (int v = 0; const char *n = name_of(v); ++v) e.value(n, static_cast<E>(v));
}

}  // namespace

void bind_params(py::module_ &m) {
    bind_enum<da3_resize_method>(m, "ResizeMethod", da3_resize_method_name);
    bind_enum<da3_ref_view_strategy>(m, "RefViewStrategy", da3_ref_view_strategy_name);
    bind_enum<da3_backend_kind>(m, "BackendKind", da3_backend_kind_name);
    bind_enum<da3_precision>(m, "Precision", da3_precision_name);
    m.attr("process_res_range") = py::make_tuple(DA3_MIN_PROCESS_RES, DA3_MAX_PROCESS_RES);

    py::class_<da3_context_params>(m, "ContextParams", "da3_context_params, from da3_context_default_params()", py::module_local())
        .def(py::init(&da3_context_default_params))
        .def_readwrite("n_threads", &da3_context_params::n_threads)
        .def_readwrite("backend", &da3_context_params::backend)
        .def_readwrite("device", &da3_context_params::device)
        .def_readwrite("use_mmap", &da3_context_params::use_mmap)
        .def_readwrite("precision", &da3_context_params::precision);
    py::class_<da3_infer_params>(m, "InferParams", "da3_infer_params (without taps), from da3_infer_default_params()", py::module_local())
        .def(py::init(&da3_infer_default_params))
        .def_readwrite("process_res", &da3_infer_params::process_res)
        .def_readwrite("resize_method", &da3_infer_params::resize_method)
        .def_readwrite("ref_view", &da3_infer_params::ref_view)
        .def_readwrite("use_ray_pose", &da3_infer_params::use_ray_pose)
        .def_readwrite("compute_aux", &da3_infer_params::compute_aux)
        .def_readwrite("align_to_input_ext_scale", &da3_infer_params::align_to_input_ext_scale)
        .def_readwrite("max_image_pixels", &da3_infer_params::max_image_pixels)
        .def_readwrite("profile", &da3_infer_params::profile);
    py::class_<da3_points_params>(m, "PointsParams", "da3_points_params, from da3_points_default_params()", py::module_local())
        .def(py::init(&da3_points_default_params))
        .def_readwrite("conf_thresh", &da3_points_params::conf_thresh)
        .def_readwrite("conf_thresh_percentile", &da3_points_params::conf_thresh_percentile)
        .def_readwrite("ensure_thresh_percentile", &da3_points_params::ensure_thresh_percentile)
        .def_readwrite("remove_sky", &da3_points_params::remove_sky)
        .def_readwrite("sky_thresh", &da3_points_params::sky_thresh)
        .def_readwrite("num_max_points", &da3_points_params::num_max_points)
        .def_readwrite("seed", &da3_points_params::seed);
    py::class_<da3_glb_params>(m, "GlbParams", "da3_glb_params, from da3_glb_default_params()", py::module_local())
        .def(py::init(&da3_glb_default_params))
        .def_readwrite("show_cameras", &da3_glb_params::show_cameras)
        .def_readwrite("camera_size", &da3_glb_params::camera_size);
    py::class_<da3_colmap_params>(m, "ColmapParams", "da3_colmap_params, from da3_colmap_default_params()", py::module_local())
        .def(py::init(&da3_colmap_default_params))
        .def_readwrite("binary", &da3_colmap_params::binary);

    m.def("status_exception", [](int status, int os_errno, bool file_output) {
        return da3py::exception_class(static_cast<da3_status>(status), os_errno,
                                      file_output ? da3py::call_kind::file_output : da3py::call_kind::model);
    }, "The exception class a failure with C status `status` raises (os_errno: da3_last_errno() of an I/O\n"
       "failure; file_output: GLB/COLMAP writers, whose I/O failures are OSError subclasses).",
       py::arg("status"), py::arg("os_errno") = 0, py::arg("file_output") = false);
}
