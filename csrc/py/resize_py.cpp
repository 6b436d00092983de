// Python binding of the resize kernel: babyfast._core.resize_crop (numpy arrays in and out, GIL released).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "numpy_args.h"
#include "resize.h"

namespace py = pybind11;

void register_resize(py::module_& m) {
  m.def(
      "resize_crop",
      [](const py::object& src_obj, std::array<int64_t, 4> box, bool flip, const py::object& out_obj,
         const py::object& matrix, const py::object& offset, bool simd) {
        const py::array src = babyfast_py::as_array(src_obj, "src");
        py::array out = babyfast_py::as_array(out_obj, "out");
        babyfast_py::require_rgb_u8(src, "src");
        babyfast_py::require_rgb_u8(out, "out");
        if (out.shape(0) != src.shape(0) || !(out.flags() & py::array::c_style)) {
          throw py::value_error("out must be a C-contiguous uint8 array of " + std::to_string(src.shape(0)) +
                                " frames (frames, height, width, 3), got " + babyfast_py::shape_of(out));
        }
        if (!out.writeable()) throw py::value_error("out is read-only");
        babyfast_py::require_apart(src, out);
        const auto [y0, x0, h, w] = box;
        babyfast::RgbFrames frames{static_cast<const uint8_t*>(src.data()), src.shape(0), src.shape(1), src.shape(2),
                                   src.strides(0), src.strides(1)};
        if (matrix.is_none() != offset.is_none()) throw py::value_error("give matrix and offset together, or neither");
        babyfast::ColourAffine affine{};
        if (!matrix.is_none()) {
          const auto m9 = babyfast_py::matrix3x3(matrix);
          const auto o3 = babyfast_py::vector3(offset);
          try {
            affine = babyfast::colour_affine_fixed(m9.data(), o3.data());
          } catch (const std::invalid_argument& e) {
            throw py::value_error(e.what());
          }
        }
        auto* dst = static_cast<uint8_t*>(out.mutable_data());
        const int64_t out_h = out.shape(1), out_w = out.shape(2);
        try {
          py::gil_scoped_release release;
          babyfast::resize_crop(frames, y0, x0, h, w, out_h, out_w, flip, dst, matrix.is_none() ? nullptr : &affine,
                                simd);
        } catch (const std::invalid_argument& e) {
          throw py::value_error(e.what());
        }
      },
      py::arg("src"), py::arg("box"), py::arg("flip"), py::arg("out"), py::arg("matrix") = py::none(), py::arg("offset") = py::none(),
      py::arg("simd") = true, R"doc(
out[:] = the antialiased bilinear resize of src[:, y0:y0+h, x0:x0+w] to out's height and width (torch's
antialias=True, align_corners=False), each row mirrored when `flip`, rounded once. With `matrix` and
`offset`, the box is first mapped as colour_crop maps it (the same bytes), in the same pass.

src: uint8 (frames, H, W, 3) numpy array with packed pixels, any row and frame strides; box: (y0, x0, h,
w); out: C-contiguous uint8 (frames, out_h, out_w, 3), not overlapping src; matrix 3x3 and offset 3
entries, as colour_crop takes them. Fixed point (16-bit weights,
values kept at 1/256 of a grey level between the passes): within 0.02 grey levels of the exact resize
before the rounding for the loader's boxes. AVX2 when the CPU has it, 16 frames at a time (`simd=False` forces the
portable path, same bytes).
)doc");
  m.def("resize_has_avx2", &babyfast::resize_has_avx2, "True when resize_crop uses its AVX2 kernel on this machine.");
}
