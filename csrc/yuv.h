// 8-bit YUV 4:2:0 (a decoder's planes) to packed RGB, BT.601 limited range, chroma of each 2x2 block
// taken as is: what swscale's unscaled path computes for an untagged frame, but rounded from the exact
// value (swscale's fast path truncates, 0.7 to 1.6 grey levels dark on average). One pass that writes
// the loader's frame array directly, with no intermediate frame.
#pragma once
#include <cstdint>

namespace babyfast {

struct Yuv420Frame {
  const uint8_t* y;  // height rows of width bytes, y_stride apart
  const uint8_t* u;  // (height + 1) / 2 rows of (width + 1) / 2 bytes, uv_stride apart (v too)
  const uint8_t* v;
  int64_t height, width;
  int64_t y_stride, uv_stride;  // bytes
};

// dst (height, width, 3), rows dst_stride bytes apart, = clamp(round(BT.601 limited-range RGB)), within
// one grey level of the float64 value rounded once (2^-13 fixed point). `simd` false forces the portable
// path (same bytes). Throws std::invalid_argument for a non-positive size or a stride shorter than a row.
void yuv420_to_rgb(const Yuv420Frame& src, uint8_t* dst, int64_t dst_stride, bool simd = true);

}  // namespace babyfast
