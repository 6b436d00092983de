// Bindings of the clip planner (csrc/plan.h). Arrays are allocated here and filled by C++ with the GIL
// released; argument errors surface as ValueError (std::invalid_argument) or IndexError (std::out_of_range).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>

#include "plan.h"

namespace py = pybind11;
using babyfast::ClipPlanner;

namespace {

// No forcecast for frames: a float array of frame counts is a caller bug, not something to truncate.
using FramesArray = py::array_t<int64_t, py::array::c_style>;
using AgesArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

ClipPlanner make_planner(const FramesArray& frames, const std::optional<AgesArray>& ages, int64_t clip_len,
                         std::optional<int64_t> stride, const std::string& order, uint64_t seed, int64_t window) {
  if (frames.ndim() != 1) {
    throw std::invalid_argument("frames must be 1-D (one frame count per video), got " +
                                std::to_string(frames.ndim()) + " dimensions");
  }
  const double* ages_ptr = nullptr;
  if (ages) {
    if (ages->ndim() != 1 || ages->shape(0) != frames.shape(0)) {
      throw std::invalid_argument("ages must be 1-D with one entry per video (" + std::to_string(frames.shape(0)) +
                                  "), got " + std::to_string(ages->size()) + " entries in " +
                                  std::to_string(ages->ndim()) + " dimension(s)");
    }
    ages_ptr = ages->data();
  }
  const auto parsed = babyfast::parse_clip_order(order);
  py::gil_scoped_release nogil;  // the age sort is O(V log V) and needs no Python
  return ClipPlanner(frames.data(), ages_ptr, static_cast<size_t>(frames.shape(0)), clip_len,
                     stride.value_or(clip_len), parsed, seed, window);
}

}  // namespace

void register_plan(py::module_& m) {
  py::class_<ClipPlanner>(m, "ClipPlanner", R"doc(
Keyed, never-materialized clip order over all (video, start frame) candidates.

Candidates of video v start at k*stride for k = 0 .. (frames[v] - clip_len) // stride. The order of an
epoch is a pure function of (seed, epoch, position); consumer r of `world` takes positions r, r+world, ...
Orders: 'shuffle' (a keyed permutation of everything), 'age' (youngest first, shuffled inside consecutive
windows of `window` positions), 'age_mix' (age order with windows W, 2W, 4W, ... and a last window that
holds the whole remainder). See babyfast.loader.plan.ClipPlan for the checked Python API.
)doc")
      .def(py::init(&make_planner), py::arg("frames"), py::arg("ages"), py::arg("clip_len"),
           py::arg("stride") = py::none(), py::arg("order") = "shuffle", py::arg("seed") = 0,
           py::arg("window") = 8192)
      .def_property_readonly("num_candidates", &ClipPlanner::num_candidates)
      .def_property_readonly("num_videos", &ClipPlanner::num_videos)
      .def_property_readonly("clip_len", &ClipPlanner::clip_len)
      .def_property_readonly("stride", &ClipPlanner::stride)
      .def_property_readonly("window", &ClipPlanner::window)
      .def_property_readonly("seed", &ClipPlanner::seed)
      .def_property_readonly("order", [](const ClipPlanner& p) { return babyfast::clip_order_name(p.order()); })
      .def("per_consumer", &ClipPlanner::per_consumer, py::arg("world"), py::arg("drop_last") = true,
           py::arg("offset") = 0,
           "Clips per consumer in one epoch, of the positions from `offset` on: (N - offset) // world with "
           "drop_last, rounded up with pad.")
      .def(
          "plan",
          [](const ClipPlanner& p, int64_t epoch, int64_t consumer, int64_t world, int64_t start,
             std::optional<int64_t> count, bool drop_last, int64_t offset) {
            const int64_t n = count ? *count : p.per_consumer(world, drop_last, offset) - start;
            p.check_plan_args(epoch, consumer, world, start, n, drop_last, offset);  // before allocating
            py::array_t<int64_t> videos(n), starts(n);
            int64_t* v = videos.mutable_data();
            int64_t* s = starts.mutable_data();
            {
              py::gil_scoped_release nogil;
              p.plan(epoch, consumer, world, start, n, drop_last, v, s, offset);
            }
            return py::make_tuple(videos, starts);
          },
          py::arg("epoch"), py::arg("consumer") = 0, py::arg("world") = 1, py::arg("start") = 0,
          py::arg("count") = py::none(), py::arg("drop_last") = true, py::arg("offset") = 0,
          "Clips start .. start+count-1 of `consumer`'s share of `epoch` as (video_index, start_frame) int64 "
          "arrays; count defaults to the rest of the share; shares begin at epoch position `offset`.")
      .def(
          "at",
          [](const ClipPlanner& p, int64_t epoch, const py::array_t<int64_t, py::array::c_style | py::array::forcecast>& positions) {
            if (positions.ndim() != 1) throw std::invalid_argument("positions must be 1-D");
            const int64_t n = positions.shape(0);
            py::array_t<int64_t> videos(n), starts(n);
            const int64_t* pos = positions.data();
            int64_t* v = videos.mutable_data();
            int64_t* s = starts.mutable_data();
            {
              py::gil_scoped_release nogil;
              p.at(epoch, pos, n, v, s);
            }
            return py::make_tuple(videos, starts);
          },
          py::arg("epoch"), py::arg("positions"),
          "(video_index, start_frame) int64 arrays of the candidates at these epoch positions.")
      .def(
          "candidate",
          [](const ClipPlanner& p, int64_t epoch, int64_t position) {
            const auto c = p.candidate(epoch, position);
            return py::make_tuple(c.video, c.start);
          },
          py::arg("epoch"), py::arg("position"), "(video_index, start_frame) at global epoch position.")
      .def("window_bounds", &ClipPlanner::window_bounds, py::arg("position"),
           "[begin, end) of the shuffle window holding epoch position `position`.");
}
