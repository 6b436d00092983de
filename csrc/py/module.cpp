// The one door between Python and the C++ core. Each part registers its own bindings.
#include <pybind11/pybind11.h>

namespace py = pybind11;

void register_reader(py::module_& m);  // csrc/py/reader_py.cpp
void register_plan(py::module_& m);    // csrc/py/plan_py.cpp
void register_colour(py::module_& m);  // csrc/py/colour_py.cpp
void register_yuv(py::module_& m);     // csrc/py/yuv_py.cpp
void register_resize(py::module_& m);  // csrc/py/resize_py.cpp

PYBIND11_MODULE(_core, m) {
  m.doc() = "babyfast C++ core: shard reader, clip planner, colour and resize kernels, YUV converter (no torch, no CUDA).";
  register_reader(m);
  register_plan(m);
  register_colour(m);
  register_yuv(m);
  register_resize(m);
}
