// Colour jitter on uint8 RGB video: one pass that crops a box, optionally mirrors it and applies a 3x3
// affine map to every pixel, in fixed point. The loader runs it on the crop box before the resize, so
// the crop copy, the flip and the colour cost one read and one write of the box.
#pragma once
#include <cstdint>

namespace babyfast {

// Fractional bits of the fixed-point weights: quantizing an entry costs at most 2^-15, so a pixel's
// three products are off by at most 3 * 255 * 2^-15 < 0.024 grey levels before rounding.
constexpr int kColourFracBits = 14;

// y = M x + o in 0..255 units, as int32 weights with kColourFracBits fractional bits (the offset holds
// the rounding half too).
struct ColourAffine {
  int32_t m[3][3];
  int32_t o[3];
};

// Largest |entry| of M and |offset| accepted, so that 3 * 255 * |m| + |o| stays inside int32 after scaling.
constexpr double kColourMaxWeight = 64.0;
constexpr double kColourMaxOffset = 4096.0;

// The fixed-point form of (row-major 3x3 matrix, 3-vector offset). Throws std::invalid_argument naming
// the entry when one is not finite or exceeds the limits above.
ColourAffine colour_affine_fixed(const double matrix[9], const double offset[3]);

// Frames of uint8 RGB pixels: pixels packed (3 bytes, channels adjacent), frames and rows at any stride.
struct RgbFrames {
  const uint8_t* data;   // pixel (0, 0) of frame 0
  int64_t frames;
  int64_t height, width;
  int64_t frame_stride;  // bytes
  int64_t row_stride;    // bytes
};

// dst (frames, h, w, 3), contiguous, = clamp(round(M * src[:, y0:y0+h, x0:x0+w] + o)), each row mirrored
// when `flip`. dst must not overlap src. `simd` false forces the portable path (tests compare the two).
// Throws std::invalid_argument when the box does not fit in src.
void colour_crop(const RgbFrames& src, int64_t y0, int64_t x0, int64_t h, int64_t w, bool flip,
                 const ColourAffine& affine, uint8_t* dst, bool simd = true);

// True when colour_crop uses its AVX2 build on this machine.
bool colour_has_avx2();

}  // namespace babyfast
