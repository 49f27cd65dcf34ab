// Binding of da3_preprocess: list of HxWx3 uint8 arrays -> (processed rgb, network input).
#include "binding.h"

#include <string>
#include <vector>

namespace py = pybind11;

namespace {

void read_triplet(const py::object &obj, const char *what, float out[3]) {
    if (!py::isinstance<py::sequence>(obj) || py::isinstance<py::str>(obj))
        throw py::value_error(std::string(what) + " must be a sequence of 3 floats");
    py::sequence seq = obj.cast<py::sequence>();
    if (seq.size() != 3)
        throw py::value_error(std::string(what) + " must have 3 values, got " + std::to_string(seq.size()));
    for (size_t i = 0; i < 3; ++i) {
        try {
            out[i] = seq[i].cast<float>();
        } catch (const py::cast_error &) {
            throw py::value_error(std::string(what) + " must contain numbers");
        }
    }
}

}  // namespace

void bind_preprocess(py::module_ &m) {
    const da3_infer_params d = da3_infer_default_params();
    m.def(
        "preprocess",
        [](const py::list &images, int process_res, const std::string &method, const py::object &mean,
           const py::object &std) {
            const auto rm = da3py::enum_value<da3_resize_method>(da3_resize_method_name, method, "method");
            float mean_v[3], std_v[3];
            read_triplet(mean, "mean", mean_v);
            read_triplet(std, "std", std_v);
            std::vector<da3py::u8_image> keep;
            std::vector<da3_image> ims = da3py::images_from_list(images, keep);
            const int n = (int)ims.size();
            int w = 0, h = 0;
            da3_status st;
            {
                py::gil_scoped_release nogil;
                st = da3_preprocess(ims.data(), n, process_res, rm, mean_v, std_v, &w, &h, nullptr, nullptr);
            }
            if (st != DA3_OK) da3py::raise_status(st);
            py::array_t<uint8_t> rgb({(py::ssize_t)n, (py::ssize_t)h, (py::ssize_t)w, (py::ssize_t)3});
            py::array_t<float> input({(py::ssize_t)n, (py::ssize_t)3, (py::ssize_t)h, (py::ssize_t)w});
            uint8_t *rgb_p = rgb.mutable_data();
            float *in_p = input.mutable_data();
            {
                py::gil_scoped_release nogil;
                st = da3_preprocess(ims.data(), n, process_res, rm, mean_v, std_v, &w, &h, rgb_p, in_p);
            }
            if (st != DA3_OK) da3py::raise_status(st);
            return py::make_tuple(rgb, input);
        },
        py::arg("images"), py::arg("process_res") = d.process_res,
        py::arg("method") = da3_resize_method_name(d.resize_method),
        py::arg("mean") = py::make_tuple(0.485, 0.456, 0.406), py::arg("std") = py::make_tuple(0.229, 0.224, 0.225),
        R"doc(Official DA3 preprocessing (InputProcessor) of a batch of images.

images: list of (H, W, 3) uint8 RGB arrays (sizes may differ; mixed processed sizes are
center-cropped to the smallest, as upstream). process_res: in process_res_range. method:
"upper_bound_resize" (longest side -> process_res) or "lower_bound_resize" (shortest side).
Returns (rgb, input): rgb (N, h, w, 3) uint8 = upstream `processed_images` (the input
denormalized and truncated, so a pixel may be one below the resized value), input
(N, 3, h, w) float32 = (resized / 255 - mean) / std; h, w multiples of 14.
Raises ValueError for bad arguments (dtype, shape, empty list, size over 100e6 pixels).)doc");
}
