// Argument checks shared by the bindings that read and write numpy arrays in place.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <array>
#include <cstdint>
#include <string>

namespace babyfast_py {

inline std::string shape_of(const pybind11::array& a) {
  std::string s = "(";
  for (pybind11::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

inline pybind11::array as_array(const pybind11::object& obj, const char* name) {
  // Only numpy arrays: anything else would be converted to a temporary copy, and `out` written there lost.
  if (!pybind11::isinstance<pybind11::array>(obj)) {
    throw pybind11::type_error(std::string(name) + " must be a numpy array, got " +
                               pybind11::str(pybind11::type::of(obj)).cast<std::string>());
  }
  return obj.cast<pybind11::array>();
}

// uint8 (frames, height, width, 3) with packed RGB pixels (the layout the colour and resize kernels read).
inline void require_rgb_u8(const pybind11::array& a, const char* name) {
  if (!a.dtype().is(pybind11::dtype::of<uint8_t>()) || a.ndim() != 4 || a.shape(3) != 3) {
    throw pybind11::value_error(std::string(name) + " must be uint8 (frames, height, width, 3), got " +
                                pybind11::str(a.dtype()).cast<std::string>() + " " + shape_of(a));
  }
  if (a.strides(3) != 1 || a.strides(2) != 3) {
    throw pybind11::value_error(std::string(name) + " must have packed RGB pixels (strides (..., 3, 1)), got strides (" +
                                std::to_string(a.strides(0)) + ", " + std::to_string(a.strides(1)) + ", " +
                                std::to_string(a.strides(2)) + ", " + std::to_string(a.strides(3)) + ")");
  }
  if (a.strides(0) < 0 || a.strides(1) < 0) {
    throw pybind11::value_error(std::string(name) + " must not have negative strides");
  }
}

// The bytes `src` spans (first to last pixel) must not meet the bytes of the contiguous `out`.
inline void require_apart(const pybind11::array& src, const pybind11::array& out) {
  if (src.size() == 0 || out.size() == 0) return;
  const auto* s_lo = static_cast<const uint8_t*>(src.data());
  const auto* s_hi = s_lo + (src.shape(0) - 1) * src.strides(0) + (src.shape(1) - 1) * src.strides(1) + src.shape(2) * 3;
  const auto* o_lo = static_cast<const uint8_t*>(out.data());
  if (s_lo < o_lo + out.nbytes() && o_lo < s_hi) throw pybind11::value_error("out must not overlap src");
}

// A colour map's 3x3 matrix and 3-vector offset, from anything numpy converts to float64.
inline std::array<double, 9> matrix3x3(const pybind11::object& obj) {
  auto m = pybind11::array_t<double, pybind11::array::c_style | pybind11::array::forcecast>::ensure(obj);
  if (!m || m.ndim() != 2 || m.shape(0) != 3 || m.shape(1) != 3) throw pybind11::value_error("matrix must be 3x3");
  std::array<double, 9> out{};
  for (int i = 0; i < 9; ++i) out[static_cast<size_t>(i)] = m.data()[i];
  return out;
}

inline std::array<double, 3> vector3(const pybind11::object& obj) {
  auto o = pybind11::array_t<double, pybind11::array::c_style | pybind11::array::forcecast>::ensure(obj);
  if (!o || o.ndim() != 1 || o.shape(0) != 3) throw pybind11::value_error("offset must have 3 entries");
  return {o.data()[0], o.data()[1], o.data()[2]};
}

}  // namespace babyfast_py
