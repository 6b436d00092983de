// yuv420_to_rgb against a double-precision reference: every width class of the vectorized loop (shorter
// than one step, one step, steps plus a tail, odd sizes), padded planes, both the AVX2 and the portable build.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

#include "harness.h"
#include "yuv.h"

namespace {

struct Planes {
  int64_t h, w, ys, cs;
  std::vector<uint8_t> y, u, v;
  Planes(int64_t h_, int64_t w_, int64_t pad, uint32_t seed) : h(h_), w(w_), ys(w_ + pad), cs((w_ + 1) / 2 + pad) {
    std::mt19937 rng(seed);
    y.resize(static_cast<size_t>(h * ys));
    u.resize(static_cast<size_t>((h + 1) / 2 * cs));
    v.resize(u.size());
    for (auto& b : y) b = static_cast<uint8_t>(rng());
    for (auto& b : u) b = static_cast<uint8_t>(rng());
    for (auto& b : v) b = static_cast<uint8_t>(rng());
  }
  babyfast::Yuv420Frame frame() const { return {y.data(), u.data(), v.data(), h, w, ys, cs}; }
  int reference(int64_t r, int64_t x, int c) const {
    const double yy = (y[static_cast<size_t>(r * ys + x)] - 16.0) * 255.0 / 219.0;
    const double uu = (u[static_cast<size_t>(r / 2 * cs + x / 2)] - 128.0) * 255.0 / 224.0;
    const double vv = (v[static_cast<size_t>(r / 2 * cs + x / 2)] - 128.0) * 255.0 / 224.0;
    const double val = c == 0 ? yy + 1.402 * vv : c == 1 ? yy - 0.344136 * uu - 0.714136 * vv : yy + 1.772 * uu;
    return static_cast<int>(std::clamp(std::nearbyint(val), 0.0, 255.0));
  }
};

std::vector<uint8_t> convert(const Planes& p, bool simd) {
  std::vector<uint8_t> out(static_cast<size_t>(p.h * p.w * 3) + 7, 0xAB);  // 7 guard bytes past the frame
  babyfast::yuv420_to_rgb(p.frame(), out.data(), 3 * p.w, simd);
  return out;
}

}  // namespace

TEST(yuv420_to_rgb_is_within_one_level_of_double_reference_for_every_width) {
  int64_t exact = 0, values = 0;
  for (int64_t w : {1, 2, 7, 15, 16, 17, 31, 32, 33, 47, 64, 255, 256}) {
    for (int64_t h : {1, 2, 3, 8}) {
      const Planes p(h, w, w % 3, static_cast<uint32_t>(w * 31 + h));
      for (bool simd : {true, false}) {
        const auto out = convert(p, simd);
        for (int64_t r = 0; r < h; ++r) {
          for (int64_t x = 0; x < w; ++x) {
            for (int c = 0; c < 3; ++c) {
              const int got = out[static_cast<size_t>((r * w + x) * 3 + c)];
              CHECK(std::abs(got - p.reference(r, x, c)) <= 1);
              exact += got == p.reference(r, x, c);
            }
          }
        }
        values += h * w * 3;
        for (size_t k = static_cast<size_t>(h * w * 3); k < out.size(); ++k) CHECK(out[k] == 0xAB);
      }
    }
  }
  CHECK(exact * 100 >= 99 * values);  // 2^-13 fixed point: off by one only next to a half (0.4% of values)
}

TEST(yuv420_to_rgb_simd_equals_portable) {
  const Planes p(10, 250, 5, 7);
  CHECK(convert(p, true) == convert(p, false));
}

TEST(yuv420_to_rgb_maps_limited_range_extremes) {
  Planes p(2, 16, 0, 1);
  std::fill(p.u.begin(), p.u.end(), uint8_t{128});
  std::fill(p.v.begin(), p.v.end(), uint8_t{128});
  std::fill(p.y.begin(), p.y.begin() + 16, uint8_t{16});   // black
  std::fill(p.y.begin() + 16, p.y.end(), uint8_t{235});    // white
  const auto out = convert(p, true);
  for (int k = 0; k < 48; ++k) CHECK(out[static_cast<size_t>(k)] == 0);
  for (int k = 48; k < 96; ++k) CHECK(out[static_cast<size_t>(k)] == 255);
}

TEST(yuv420_to_rgb_refuses_short_strides) {
  const Planes p(4, 20, 0, 3);
  std::vector<uint8_t> out(4 * 20 * 3);
  auto f = p.frame();
  f.y_stride = 19;
  CHECK_THROWS(babyfast::yuv420_to_rgb(f, out.data(), 60));
  f = p.frame();
  CHECK_THROWS(babyfast::yuv420_to_rgb(f, out.data(), 59));
  f.height = 0;
  CHECK_THROWS(babyfast::yuv420_to_rgb(f, out.data(), 60));
}
