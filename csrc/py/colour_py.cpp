// Python binding of the colour kernel: babyfast._core.colour_crop (numpy arrays in and out, GIL released).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "colour.h"
#include "numpy_args.h"

namespace py = pybind11;

namespace {

using babyfast_py::as_array;
using babyfast_py::require_apart;
using babyfast_py::require_rgb_u8;
using babyfast_py::shape_of;

}  // namespace

void register_colour(py::module_& m) {
  m.def(
      "colour_crop",
      [](const py::object& src_obj, std::array<int64_t, 4> box, bool flip, const py::object& matrix,
         const py::object& offset, const py::object& out_obj, bool simd) {
        const py::array src = as_array(src_obj, "src");
        py::array out = as_array(out_obj, "out");
        require_rgb_u8(src, "src");
        require_rgb_u8(out, "out");
        const auto [y0, x0, h, w] = box;
        if (out.shape(0) != src.shape(0) || out.shape(1) != h || out.shape(2) != w ||
            !(out.flags() & py::array::c_style)) {
          throw py::value_error("out must be a C-contiguous uint8 array of shape (" + std::to_string(src.shape(0)) +
                                ", " + std::to_string(h) + ", " + std::to_string(w) + ", 3) for box " +
                                std::to_string(h) + "x" + std::to_string(w) + ", got " + shape_of(out));
        }
        if (!out.writeable()) throw py::value_error("out is read-only");
        const auto m9 = babyfast_py::matrix3x3(matrix);
        const auto o3 = babyfast_py::vector3(offset);
        babyfast::ColourAffine affine;
        babyfast::RgbFrames frames{static_cast<const uint8_t*>(src.data()), src.shape(0), src.shape(1), src.shape(2),
                                   src.strides(0), src.strides(1)};
        try {
          affine = babyfast::colour_affine_fixed(m9.data(), o3.data());
        } catch (const std::invalid_argument& e) {
          throw py::value_error(e.what());
        }
        auto* dst = static_cast<uint8_t*>(out.mutable_data());
        require_apart(src, out);
        try {
          py::gil_scoped_release release;
          babyfast::colour_crop(frames, y0, x0, h, w, flip, affine, dst, simd);
        } catch (const std::invalid_argument& e) {
          throw py::value_error(e.what());
        }
      },
      py::arg("src"), py::arg("box"), py::arg("flip"), py::arg("matrix"), py::arg("offset"), py::arg("out"),
      py::arg("simd") = true, R"doc(
out[:] = clamp(round(src[:, y0:y0+h, x0:x0+w] @ matrix.T + offset)), each row mirrored when `flip`.

src: uint8 (frames, H, W, 3) numpy array with packed pixels; box: (y0, x0, h, w); matrix: 3x3 and
offset: 3 entries, in 0..255 units (|matrix| <= 16, |offset| <= 4096); out: C-contiguous uint8
(frames, h, w, 3), not overlapping src. Fixed point with 11-14 fractional bits, the most that fit the
largest weight (within 0.03 grey levels of the exact value before rounding for |matrix| < 2, 0.19 at
the limit); AVX2 when the CPU has it (`simd=False` forces the portable path, same bytes).
)doc");
  m.def("colour_has_avx2", &babyfast::colour_has_avx2, "True when colour_crop uses its AVX2 kernel on this machine.");
}
