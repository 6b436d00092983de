// Random RGB frames for the kernel tests: a clip of t frames, optionally strided (extra bytes per row).
#pragma once
#include <cstdint>
#include <random>
#include <vector>

#include "colour.h"

namespace bftest {

struct Frames {
  int64_t t, h, w, pad;  // pad: extra bytes at the end of every row (a strided source)
  std::vector<uint8_t> bytes;
  int64_t row() const { return 3 * w + pad; }
  babyfast::RgbFrames view() const { return {bytes.data(), t, h, w, h * row(), row()}; }
  int at(int64_t f, int64_t y, int64_t x, int c) const {
    return bytes[static_cast<size_t>(f * h * row() + y * row() + 3 * x + c)];
  }
};

inline Frames random_frames(int64_t t, int64_t h, int64_t w, int64_t pad, uint32_t seed) {
  Frames f{t, h, w, pad, std::vector<uint8_t>(static_cast<size_t>(t * h * (3 * w + pad)))};
  std::mt19937 rng(seed);
  for (auto& b : f.bytes) b = static_cast<uint8_t>(rng() & 0xFF);
  return f;
}

}  // namespace bftest
