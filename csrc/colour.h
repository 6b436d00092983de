// Colour jitter on uint8 RGB video: one pass that crops a box, optionally mirrors it and applies a 3x3
// affine map to every pixel, in fixed point. The loader runs it on the crop box before the resize, so
// the crop copy, the flip and the colour cost one read and one write of the box.
#pragma once
#include <cstdint>

namespace babyfast {

// y = M x + o in 0..255 units, in fixed point: weights that fit int16 (so that the AVX2 path multiplies
// pairs of them in one instruction) with `frac_bits` fractional bits, the most that fit, at most 14; the
// offset (int32) holds the rounding half too. Quantizing costs at most 3 * 255 * 2^-(frac_bits + 1) grey
// levels before rounding: 0.023 for |M| < 2, 0.19 at the largest weight accepted.
struct ColourAffine {
  int32_t m[3][3];
  int32_t o[3];
  int frac_bits;
};

// Largest |entry| of M and |offset| accepted. Augment's jitter ranges (each factor below 2, any hue) keep
// |M| below 14.
constexpr double kColourMaxWeight = 16.0;
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
// when `flip`. dst must not overlap src. `simd` false forces the portable path (tests compare the two:
// they give the same bytes). Throws std::invalid_argument when the box does not fit in src.
void colour_crop(const RgbFrames& src, int64_t y0, int64_t x0, int64_t h, int64_t w, bool flip,
                 const ColourAffine& affine, uint8_t* dst, bool simd = true);

// True when colour_crop uses its AVX2 kernel on this machine.
bool colour_has_avx2();

}  // namespace babyfast
