// resize_crop against a double-precision reference of torch's antialiased bilinear: up and down, square and
// not, every tail of the 16-frame and 32-byte steps, mirrored, a strided source, AVX2 and portable alike.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "colour.h"
#include "frames.h"
#include "harness.h"
#include "resize.h"

using babyfast::RgbFrames;
using bftest::Frames;
using bftest::random_frames;

namespace {

// (out, in) weights written from the definition: a triangle of half-width max(in/out, 1) at half-pixel
// centres, normalized over the pixels of the image.
std::vector<double> weights(int64_t in, int64_t out) {
  const double scale = static_cast<double>(in) / static_cast<double>(out), support = std::max(scale, 1.0);
  std::vector<double> w(static_cast<size_t>(in * out));
  for (int64_t i = 0; i < out; ++i) {
    double total = 0;
    for (int64_t x = 0; x < in; ++x) {
      const double v = std::max(0.0, 1 - std::fabs(static_cast<double>(x) + 0.5 - (static_cast<double>(i) + 0.5) * scale) / support);
      w[static_cast<size_t>(i * in + x)] = v;
      total += v;
    }
    for (int64_t x = 0; x < in; ++x) w[static_cast<size_t>(i * in + x)] /= total;
  }
  return w;
}

// Largest |kernel - exact| over the output, and whether the SIMD and portable paths gave the same bytes.
double max_error(const Frames& f, int64_t y0, int64_t x0, int64_t h, int64_t w, int64_t oh, int64_t ow, bool flip,
                 bool* same) {
  std::vector<uint8_t> got(static_cast<size_t>(f.t * oh * ow * 3)), portable(got.size());
  babyfast::resize_crop(f.view(), y0, x0, h, w, oh, ow, flip, got.data(), nullptr, true);
  babyfast::resize_crop(f.view(), y0, x0, h, w, oh, ow, flip, portable.data(), nullptr, false);
  *same = got == portable;
  const auto wy = weights(h, oh), wx = weights(w, ow);
  double worst = 0;
  std::vector<double> col(static_cast<size_t>(w * 3));
  for (int64_t t = 0; t < f.t; ++t) {
    for (int64_t y = 0; y < oh; ++y) {
      std::fill(col.begin(), col.end(), 0.0);
      for (int64_t k = 0; k < h; ++k) {
        const double a = wy[static_cast<size_t>(y * h + k)];
        if (a == 0) continue;
        for (int64_t x = 0; x < w; ++x)
          for (int c = 0; c < 3; ++c) col[static_cast<size_t>(3 * x + c)] += a * f.at(t, y0 + k, x0 + x, c);
      }
      for (int64_t x = 0; x < ow; ++x) {
        for (int c = 0; c < 3; ++c) {
          double exact = 0;
          for (int64_t k = 0; k < w; ++k) exact += wx[static_cast<size_t>(x * w + k)] * col[static_cast<size_t>(3 * k + c)];
          const int64_t ox = flip ? ow - 1 - x : x;
          const double v = got[static_cast<size_t>(((t * oh + y) * ow + ox) * 3 + c)];
          worst = std::max(worst, std::fabs(v - exact));
        }
      }
    }
  }
  return worst;
}

}  // namespace

TEST(resize_crop_is_within_rounding_of_the_exact_resize) {
  // frames: one, fewer than 16, exactly 16, a second group of 16 with one frame; sizes that leave every
  // tail of the 32-byte input and 16-byte output steps, upscaling, downscaling by up to 7x, one pixel
  const Frames f = random_frames(17, 40, 47, 5, 3);
  struct Case { int64_t t, y0, x0, h, w, oh, ow; };
  const Case cases[] = {{1, 0, 0, 40, 47, 40, 47}, {5, 3, 2, 30, 41, 17, 23}, {16, 1, 4, 21, 11, 32, 45},
                        {17, 0, 0, 40, 47, 224, 6}, {3, 5, 7, 35, 40, 5, 7}, {2, 9, 1, 1, 1, 3, 4},
                        {4, 0, 0, 40, 47, 1, 1}, {16, 2, 3, 33, 37, 33, 19}};
  for (const Case& c : cases) {
    Frames g = f;
    g.t = c.t;
    for (bool flip : {false, true}) {
      bool same = false;
      const double err = max_error(g, c.y0, c.x0, c.h, c.w, c.oh, c.ow, flip, &same);
      CHECK(same);
      CHECK(err <= 0.56);  // the final rounding, plus the fixed point's 16-bit weights and truncation
    }
  }
}

TEST(resize_crop_keeps_flat_frames_flat) {
  // every weight row sums to one within the fixed point: a constant frame stays exactly constant, white
  // included (a sum of 16-bit terms of full-white pixels must not wrap)
  for (uint8_t v : {uint8_t{0}, uint8_t{1}, uint8_t{128}, uint8_t{254}, uint8_t{255}}) {
    Frames f{3, 9, 50, 0, std::vector<uint8_t>(3 * 9 * 50 * 3, v)};
    for (int64_t ow : {1, 7, 50, 130}) {
      std::vector<uint8_t> out(static_cast<size_t>(3 * 20 * ow * 3));
      babyfast::resize_crop(f.view(), 0, 0, 9, 50, 20, ow, true, out.data());
      CHECK(std::all_of(out.begin(), out.end(), [v](uint8_t b) { return b == v; }));
    }
  }
}

TEST(resize_crop_refuses_bad_boxes_and_sizes) {
  const Frames f = random_frames(1, 8, 8, 0, 1);
  std::vector<uint8_t> out(8 * 8 * 3);
  CHECK_THROWS(babyfast::resize_crop(f.view(), 1, 0, 8, 8, 4, 4, false, out.data()));
  CHECK_THROWS(babyfast::resize_crop(f.view(), 0, -1, 4, 4, 4, 4, false, out.data()));
  CHECK_THROWS(babyfast::resize_crop(f.view(), 0, 0, 0, 4, 4, 4, false, out.data()));
  CHECK_THROWS(babyfast::resize_crop(f.view(), 0, 0, 4, 4, 0, 4, false, out.data()));
  CHECK_THROWS(babyfast::resize_axis(4, int64_t{1} << 21));
}

TEST(resize_crop_with_colour_equals_colour_crop_then_resize) {
  // the colour fused into the resize's row gather gives the bytes of the two separate passes, mirrored or
  // not, for a mild and a strong map (many pixels clamp), on every frame-group tail
  const double mild[9] = {1.1, 0.05, -0.02, 0.0, 0.9, 0.1, -0.05, 0.02, 1.05};
  const double mild_off[3] = {3.5, -2.0, 10.0};
  const double strong[9] = {1.31, -0.22, 0.07, 0.05, 1.18, -0.41, -0.3, 0.12, 1.52};
  const double strong_off[3] = {-21.5, 9.25, 3.0};
  const Frames f = random_frames(17, 30, 37, 3, 5);
  for (int64_t t : {3, 16, 17}) {
    Frames g = f;
    g.t = t;
    for (int strength = 0; strength < 2; ++strength) {
      const babyfast::ColourAffine a = strength ? babyfast::colour_affine_fixed(strong, strong_off)
                                                : babyfast::colour_affine_fixed(mild, mild_off);
      std::vector<uint8_t> box(static_cast<size_t>(t * 25 * 33 * 3));
      babyfast::colour_crop(g.view(), 2, 3, 25, 33, false, a, box.data());
      const RgbFrames coloured{box.data(), t, 25, 33, 25 * 33 * 3, 33 * 3};
      for (bool flip : {false, true}) {
        std::vector<uint8_t> two(static_cast<size_t>(t * 19 * 41 * 3)), fused(two.size()), portable(two.size());
        babyfast::resize_crop(coloured, 0, 0, 25, 33, 19, 41, flip, two.data());
        babyfast::resize_crop(g.view(), 2, 3, 25, 33, 19, 41, flip, fused.data(), &a, true);
        babyfast::resize_crop(g.view(), 2, 3, 25, 33, 19, 41, flip, portable.data(), &a, false);
        CHECK(fused == two);
        CHECK(portable == two);
      }
    }
  }
}
