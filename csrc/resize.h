// Antialiased bilinear resize of a crop box of uint8 RGB video (the loader's random resized crop), with
// the optional mirror, in one call that reads the box where it lies and writes the resized clip.
//
// Every frame of a clip shares the box and so the weights. The AVX2 kernel therefore computes 16 frames at
// once, one frame per 16-bit lane: the vertical pass runs along each frame's rows, its rows are transposed
// so that the horizontal pass, whose taps start at irregular offsets, becomes plain loads, multiplies and
// adds with the same weight for every lane, with no gather and no per-pixel shuffle. The result is
// transposed back. Clips of fewer than 16 frames leave lanes idle.
#pragma once
#include <cstdint>
#include <vector>

#include "colour.h"  // RgbFrames

namespace babyfast {

// One axis of the resize, in fixed point: output i = sum over k < taps of weight[i * taps + k] *
// input[start[i] + k] / 2^16. The weights are the triangle filter at half-pixel centres, widened by the
// downscale factor when shrinking, normalized over the taps inside the image (torch's antialiased
// bilinear); rounded to 16 bits so that they sum to at most 2^16, each at most 2^16 - 1. Outputs with
// fewer taps than the widest pad with zero weights (start is moved left where the image ends).
struct ResizeAxis {
  int64_t in = 0, out = 0, taps = 0;
  std::vector<int64_t> start;
  std::vector<uint16_t> weight;
};

// Throws std::invalid_argument unless 1 <= in, out <= 2^20.
ResizeAxis resize_axis(int64_t in, int64_t out);

// dst (frames, out_h, out_w, 3), contiguous, = the antialiased bilinear resize of src[:, y0:y0+h,
// x0:x0+w] to out_h x out_w, each row mirrored when `flip`. With `colour`, the box is first mapped by it
// exactly as colour_crop maps it (the same bytes) and the resize reads those. Fixed point: each pass
// multiplies 16-bit values by 16-bit weights and keeps the high half, so the result is within
// (vertical + horizontal taps) / 512 grey levels of the exact resize before its one rounding (0.02 for
// the loader's boxes). dst must not overlap src. `simd` false forces the portable path (the same bytes).
// Throws std::invalid_argument when the box does not fit in src or a size is out of range.
void resize_crop(const RgbFrames& src, int64_t y0, int64_t x0, int64_t h, int64_t w, int64_t out_h, int64_t out_w,
                 bool flip, uint8_t* dst, const ColourAffine* colour = nullptr, bool simd = true);

// True when resize_crop uses its AVX2 kernel on this machine.
bool resize_has_avx2();

}  // namespace babyfast
