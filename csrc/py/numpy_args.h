// Argument checks shared by the bindings that read and write numpy arrays in place.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

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

}  // namespace babyfast_py
