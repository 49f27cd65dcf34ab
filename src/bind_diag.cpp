// Binding of the build description, the f16 product check and the ray-map cameras
// (da3_get_build_info, da3_check_linear_f16, da3_ray_pose): numpy <-> C buffers only.
#include "binding.h"

#include <algorithm>
#include <climits>
#include <string>

namespace py = pybind11;

void bind_diag(py::module_ &m) {
    m.def("build_info", [] {
        const da3_build_info *b = da3_get_build_info();
        py::dict d;
        d["variant"] = b->variant;
        d["isa_level"] = b->isa_level;
        d["isa_flags"] = b->isa_flags;
        d["isa_features"] = b->isa_features;
        d["reduced_precision"] = b->reduced_precision;
        d["ggml_features"] = b->ggml_features;
        d["bf16_engines"] = b->bf16_engines;
        return d;
    }, "How this module was compiled: variant, isa_level, isa_flags, isa_features, reduced_precision\n"
       "(\"\" when every product accumulates in f32), ggml_features, bf16_engines (opt-in, precision='bf16')\n"
       "(comma-separated strings).");
    m.def("check_linear_f16", [](py::array_t<uint16_t, py::array::c_style> w, py::array x, const std::string &backend,
                                 int n_threads, const std::string &precision) {
        if (w.ndim() != 2) throw py::value_error("w must be a 2-D uint16 array (f16 bits) of shape (n, k)");
        da3py::f32_array xa = da3py::checked_f32(x, 2, "x");
        if (xa.shape(1) != w.shape(1)) throw py::value_error("x must have shape (m, k) with w's k");
        da3_context_params p = da3_context_default_params();
        p.n_threads = n_threads;
        p.precision = da3py::enum_value<da3_precision>(da3_precision_name, precision, "precision");
        p.backend = da3py::enum_value<da3_backend_kind>(da3_backend_kind_name, backend, "backend");
        const int mm = (int)xa.shape(0), k = (int)xa.shape(1), n = (int)w.shape(0);
        py::array_t<float> y({(py::ssize_t)mm, (py::ssize_t)n});
        da3_status st;
        {
            py::gil_scoped_release nogil;
            st = da3_check_linear_f16(w.data(), xa.data(), mm, k, n, &p, y.mutable_data());
        }
        if (st != DA3_OK) da3py::raise_status(st);
        return y;
    }, "y = x @ w.T through the network's linear-layer graph builder; w (n, k) uint16 f16 bits, x (m, k) float32\n"
       "-> (m, n) float32; precision as the model's ('bf16': the bf16 GEMM where this CPU has an engine).\n"
       "Raises ValueError, BackendError.",
       py::arg("w"), py::arg("x"), py::arg("backend") = da3_backend_kind_name(da3_context_default_params().backend),
       py::arg("n_threads") = da3_context_default_params().n_threads,
       py::arg("precision") = da3_precision_name(DA3_PRECISION_F32));
    m.def("ray_pose", [](py::array ray, py::array ray_conf, int height, int width, uint64_t seed) {
        da3py::f32_array r = da3py::checked_f32(ray, 4, "ray");
        da3py::f32_array c = da3py::checked_f32(ray_conf, 3, "ray_conf");
        if (r.shape(3) != 6) throw py::value_error("ray must have shape (n, h, w, 6), got " + da3py::shape_str(r));
        for (int d = 0; d < 3; ++d) {
            if (c.shape(d) != r.shape(d)) {
                throw py::value_error("ray_conf must have shape (n, h, w) of ray " + da3py::shape_str(r) + ", got " +
                                      da3py::shape_str(c));
            }
            if (r.shape(d) > INT_MAX) throw py::value_error("ray: dimension too large");
        }
        const int n = (int)r.shape(0), h = (int)r.shape(1), w = (int)r.shape(2);
        py::array_t<float> ext({(py::ssize_t)n, (py::ssize_t)3, (py::ssize_t)4});
        py::array_t<float> ixt({(py::ssize_t)n, (py::ssize_t)3, (py::ssize_t)3});
        da3_status st;
        {
            py::gil_scoped_release nogil;
            st = da3_ray_pose(r.data(), c.data(), n, h, w, height, width, seed, ext.mutable_data(), ixt.mutable_data());
        }
        if (st != DA3_OK) da3py::raise_status(st);
        return py::make_tuple(ext, ixt);
    }, "Cameras from a ray map as infer(use_ray_pose=True) computes them (seed 0 there): ray (n, h, w, 6)\n"
       "float32 (world direction xyz, origin xyz), ray_conf (n, h, w) weights, height x width the processed\n"
       "image size in pixels, seed the RANSAC stream -> (extrinsics (n, 3, 4) world-to-camera, intrinsics\n"
       "(n, 3, 3) pixels) float32. Raises ValueError (shapes, degenerate rays).",
       py::arg("ray"), py::arg("ray_conf"), py::arg("height"), py::arg("width"), py::arg("seed"));
    m.def("cpu_matrix_engines", [] {
        const std::string s = da3_cpu_matrix_engines();
        py::list out;
        for (size_t a = 0; a < s.size();) {
            const size_t b = std::min(s.find(',', a), s.size());
            out.append(s.substr(a, b - a));
            a = b + 1;
        }
        return out;
    }, "The reduced-precision matrix engines this module can use on this CPU and OS, best first\n"
       "(list of 'amx_bf16', 'avx512_bf16'; empty: precision='bf16' runs f32).");
}
