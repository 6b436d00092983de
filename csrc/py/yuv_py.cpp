// Python binding of the YUV 4:2:0 converter: babyfast._core.yuv420_to_rgb (numpy planes in, a numpy frame
// written in place, GIL released).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "numpy_args.h"
#include "yuv.h"

namespace py = pybind11;

namespace {

using babyfast_py::as_array;
using babyfast_py::shape_of;

// A (rows, bytes) uint8 plane whose rows are contiguous, holding at least rows x cols bytes.
const uint8_t* plane(const py::object& obj, const char* name, int64_t rows, int64_t cols, int64_t& stride) {
  const py::array a = as_array(obj, name);
  if (!a.dtype().is(py::dtype::of<uint8_t>()) || a.ndim() != 2 || a.strides(1) != 1 || a.strides(0) < 0) {
    throw py::value_error(std::string(name) + " must be a 2-d uint8 plane with contiguous rows, got " +
                          py::str(a.dtype()).cast<std::string>() + " " + shape_of(a));
  }
  if (a.shape(0) < rows || a.shape(1) < cols) {
    throw py::value_error(std::string(name) + " plane " + shape_of(a) + " is smaller than the " +
                          std::to_string(rows) + "x" + std::to_string(cols) + " the frame needs");
  }
  stride = a.strides(0);
  return static_cast<const uint8_t*>(a.data());
}

}  // namespace

void register_yuv(py::module_& m) {
  m.def(
      "yuv420_to_rgb",
      [](const py::object& y, const py::object& u, const py::object& v, const py::object& out_obj, bool simd) {
        py::array out = as_array(out_obj, "out");
        if (!out.dtype().is(py::dtype::of<uint8_t>()) || out.ndim() != 3 || out.shape(2) != 3 ||
            out.strides(2) != 1 || out.strides(1) != 3 || out.strides(0) < 0) {
          throw py::value_error("out must be uint8 (height, width, 3) with packed pixels, got " +
                                py::str(out.dtype()).cast<std::string>() + " " + shape_of(out));
        }
        if (!out.writeable()) throw py::value_error("out is read-only");
        const int64_t h = out.shape(0), w = out.shape(1);
        babyfast::Yuv420Frame f{};
        int64_t u_stride = 0, v_stride = 0;
        f.y = plane(y, "y", h, w, f.y_stride);
        f.u = plane(u, "u", (h + 1) / 2, (w + 1) / 2, u_stride);
        f.v = plane(v, "v", (h + 1) / 2, (w + 1) / 2, v_stride);
        if (u_stride != v_stride) throw py::value_error("u and v planes must have the same row stride");
        f.height = h;
        f.width = w;
        f.uv_stride = u_stride;
        auto* dst = static_cast<uint8_t*>(out.mutable_data());
        try {
          py::gil_scoped_release release;
          babyfast::yuv420_to_rgb(f, dst, out.strides(0), simd);
        } catch (const std::invalid_argument& e) {
          throw py::value_error(e.what());
        }
      },
      py::arg("y"), py::arg("u"), py::arg("v"), py::arg("out"), py::arg("simd") = true, R"doc(
out[:] = the BT.601 limited-range RGB of 8-bit YUV 4:2:0 planes, rounded (within one grey level of the
float64 value; swscale's unscaled path is 0.7-1.6 levels dark on average).

y: uint8 (>= H, >= W) plane; u, v: uint8 (>= (H+1)//2, >= (W+1)//2) planes with the same row stride
(a decoder's planes, line padding included); out: uint8 (H, W, 3) with packed pixels, whose shape
gives the frame's size. AVX2 when the CPU has it (`simd=False` forces the portable path, same bytes).
)doc");
}
