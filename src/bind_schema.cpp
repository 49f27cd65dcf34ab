// Binding of the core's GGUF schema (da3_gguf_schema_json): the JSON text as a str.
#include "binding.h"

namespace py = pybind11;

void bind_schema(py::module_ &m) {
    m.def("gguf_schema_json", [] { return std::string(da3_gguf_schema_json()); },
          "The GGUF schema the core reads, as JSON (see da3_gguf_schema_json in depth_anything.h).");
}
