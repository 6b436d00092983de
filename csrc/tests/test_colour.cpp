// colour_crop against a double-precision reference: every width class of the vectorized loop (edges only,
// a short interior, long rows), mirrored and not, a strided source, both the AVX2 and the portable build.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "colour.h"
#include "frames.h"
#include "harness.h"

using babyfast::ColourAffine;
using bftest::Frames;
using bftest::random_frames;

namespace {

// A strong jitter: gain above 1, saturation past 1 (negative weights), a hue rotation, an offset; enough
// that many pixels clamp at 0 or 255.
const double kMatrix[9] = {1.31, -0.22, 0.07, 0.05, 1.18, -0.41, -0.3, 0.12, 1.52};
const double kOffset[3] = {-21.5, 9.25, 3.0};
// Weights near the largest Augment can make (|M| < 14): the fixed point then keeps 11 fractional bits.
const double kLarge[9] = {13.2, -6.1, -5.0, -4.4, 12.9, -6.3, -5.7, -6.6, 13.1};
const double kLargeOffset[3] = {-250.0, -240.5, -260.0};

// Largest |kernel - round(exact)| over the box; exact rounding differs only within 0.03 of a half.
int max_error(const Frames& f, int64_t y0, int64_t x0, int64_t h, int64_t w, bool flip, bool simd,
              const double* matrix = kMatrix, const double* offset = kOffset) {
  const ColourAffine a = babyfast::colour_affine_fixed(matrix, offset);
  std::vector<uint8_t> out(static_cast<size_t>(f.t * h * w * 3), 0);
  babyfast::colour_crop(f.view(), y0, x0, h, w, flip, a, out.data(), simd);
  int worst = 0;
  for (int64_t t = 0; t < f.t; ++t) {
    for (int64_t y = 0; y < h; ++y) {
      for (int64_t x = 0; x < w; ++x) {
        const int64_t sx = x0 + (flip ? w - 1 - x : x);
        for (int d = 0; d < 3; ++d) {
          double v = offset[d];
          for (int c = 0; c < 3; ++c) v += matrix[3 * d + c] * f.at(t, y0 + y, sx, c);
          const double ref = std::fmin(255.0, std::fmax(0.0, std::floor(v + 0.5)));
          const int got = out[static_cast<size_t>(((t * h + y) * w + x) * 3 + d)];
          worst = std::max(worst, static_cast<int>(std::fabs(got - ref)));
        }
      }
    }
  }
  return worst;
}

}  // namespace

TEST(colour_crop_matches_double_reference_for_every_width) {
  const Frames f = random_frames(3, 20, 41, 5, 7);
  for (bool simd : {true, false}) {
    for (bool flip : {false, true}) {
      for (int64_t w : {1, 2, 3, 4, 7, 8, 9, 17, 33, 41}) {
        CHECK(max_error(f, 2, 41 - w, 11, w, flip, simd) <= 1);
        CHECK(max_error(f, 0, 0, 20, w, flip, simd) <= 1);
        CHECK(max_error(f, 1, 0, 19, w, flip, simd, kLarge, kLargeOffset) <= 1);
      }
    }
  }
}

TEST(colour_crop_is_exact_for_copies_and_integer_maps) {
  // The identity map (a flip without colour: the copy path) moves every byte unchanged, and an integer
  // gain and offset (the arithmetic path) are exact in fixed point.
  const double eye[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  const double zero[3] = {0, 0, 0};
  const double twice[9] = {2, 0, 0, 0, 2, 0, 0, 0, 2};
  const double minus[3] = {-100, -100, -100};
  const Frames f = random_frames(2, 6, 30, 1, 3);
  for (int64_t w : {1, 2, 3, 30}) {
    std::vector<uint8_t> copy(static_cast<size_t>(2 * 6 * w * 3)), scaled(copy.size());
    for (bool flip : {false, true}) {
      babyfast::colour_crop(f.view(), 0, 30 - w, 6, w, flip, babyfast::colour_affine_fixed(eye, zero), copy.data());
      babyfast::colour_crop(f.view(), 0, 30 - w, 6, w, flip, babyfast::colour_affine_fixed(twice, minus),
                            scaled.data());
      for (int64_t t = 0; t < 2; ++t)
        for (int64_t y = 0; y < 6; ++y)
          for (int64_t x = 0; x < w; ++x)
            for (int c = 0; c < 3; ++c) {
              const int v = f.at(t, y, 30 - w + (flip ? w - 1 - x : x), c);
              const size_t k = static_cast<size_t>(((t * 6 + y) * w + x) * 3 + c);
              CHECK(copy[k] == v);
              CHECK(scaled[k] == std::min(255, std::max(0, 2 * v - 100)));
            }
    }
  }
}

TEST(colour_crop_simd_equals_portable) {
  const Frames f = random_frames(4, 32, 64, 3, 11);
  for (bool flip : {false, true}) {
    for (bool large : {false, true}) {
      const ColourAffine a = large ? babyfast::colour_affine_fixed(kLarge, kLargeOffset)
                                   : babyfast::colour_affine_fixed(kMatrix, kOffset);
      std::vector<uint8_t> x(static_cast<size_t>(4 * 25 * 50 * 3)), y(x.size());
      babyfast::colour_crop(f.view(), 3, 9, 25, 50, flip, a, x.data(), true);
      babyfast::colour_crop(f.view(), 3, 9, 25, 50, flip, a, y.data(), false);
      CHECK(x == y);
    }
  }
}

TEST(colour_crop_refuses_bad_boxes_and_weights) {
  const Frames f = random_frames(1, 8, 8, 0, 1);
  const ColourAffine a = babyfast::colour_affine_fixed(kMatrix, kOffset);
  std::vector<uint8_t> out(8 * 8 * 3);
  CHECK_THROWS(babyfast::colour_crop(f.view(), 1, 0, 8, 8, false, a, out.data()));
  CHECK_THROWS(babyfast::colour_crop(f.view(), 0, -1, 4, 4, false, a, out.data()));
  CHECK_THROWS(babyfast::colour_crop(f.view(), 0, 0, 0, 4, false, a, out.data()));
  const double big[9] = {16.5, 0, 0, 0, 1, 0, 0, 0, 1};
  const double nan[3] = {0, std::nan(""), 0};
  const double eye[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
  CHECK_THROWS(babyfast::colour_affine_fixed(big, kOffset));
  CHECK_THROWS(babyfast::colour_affine_fixed(eye, nan));
}
