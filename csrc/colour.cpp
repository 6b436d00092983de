#include "colour.h"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#define BABYFAST_X86 1
#endif

namespace babyfast {

namespace {

inline uint8_t clamp_u8(int32_t v) { return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v)); }

// Pixels are interleaved (RGB RGB ...), which defeats vectorizing a per-pixel 3x3 product. Written per
// byte instead, output byte k is a sum over the five input bytes k-2 .. k+2 with weights that repeat every
// three bytes (most are zero): a loop of plain contiguous loads that the compiler vectorizes.
// Mirroring a row reverses pixels but not the channels inside a pixel; reading input byte k and writing
// output byte n-1-k reverses both, so the weights of a mirrored row also reverse the channel order.
struct RowWeights {
  std::vector<int32_t> w[5];  // w[2 + d][k]: weight of input byte k + d
  std::vector<int32_t> off;
};

RowWeights row_weights(const ColourAffine& a, int64_t width, bool flip) {
  const int64_t n = 3 * width;
  RowWeights r;
  for (auto& v : r.w) v.assign(static_cast<size_t>(n), 0);
  r.off.assign(static_cast<size_t>(n), 0);
  for (int64_t k = 0; k < n; ++k) {
    const int e = static_cast<int>(k % 3);  // channel of input byte k
    const int out_channel = flip ? 2 - e : e;
    for (int c = 0; c < 3; ++c) r.w[2 + c - e][static_cast<size_t>(k)] = a.m[out_channel][c];
    r.off[static_cast<size_t>(k)] = a.o[out_channel];
  }
  return r;
}

inline void pixel(const uint8_t* in, uint8_t* out, const ColourAffine& a) {
  for (int d = 0; d < 3; ++d) {
    out[d] = clamp_u8((a.m[d][0] * in[0] + a.m[d][1] * in[1] + a.m[d][2] * in[2] + a.o[d]) >> kColourFracBits);
  }
}

// Bytes [3, n - 3) of a row: every read k - 2 .. k + 2 stays inside the row; the first and last pixel
// go through `pixel`.
template <bool kFlip>
__attribute__((always_inline)) inline void row_interior(const uint8_t* __restrict in, uint8_t* __restrict out,
                                                        const int32_t* __restrict w0, const int32_t* __restrict w1,
                                                        const int32_t* __restrict w2, const int32_t* __restrict w3,
                                                        const int32_t* __restrict w4,
                                                        const int32_t* __restrict off, int64_t n) {
  for (int64_t k = 3; k < n - 3; ++k) {
    const int32_t v = w0[k] * in[k - 2] + w1[k] * in[k - 1] + w2[k] * in[k] + w3[k] * in[k + 1] +
                      w4[k] * in[k + 2] + off[k];
    out[kFlip ? n - 1 - k : k] = clamp_u8(v >> kColourFracBits);
  }
}

template <bool kFlip>
__attribute__((always_inline)) inline void crop_rows(const RgbFrames& src, int64_t y0, int64_t x0, int64_t h,
                                                     int64_t w, const ColourAffine& a, const RowWeights& r,
                                                     uint8_t* dst) {
  const int64_t n = 3 * w;
  for (int64_t t = 0; t < src.frames; ++t) {
    for (int64_t y = 0; y < h; ++y) {
      const uint8_t* in = src.data + t * src.frame_stride + (y0 + y) * src.row_stride + 3 * x0;
      uint8_t* out = dst + (t * h + y) * n;
      row_interior<kFlip>(in, out, r.w[0].data(), r.w[1].data(), r.w[2].data(), r.w[3].data(), r.w[4].data(),
                          r.off.data(), n);
      pixel(in, out + (kFlip ? n - 3 : 0), a);
      if (w > 1) pixel(in + n - 3, out + (kFlip ? 0 : n - 3), a);
    }
  }
}

bool is_identity(const ColourAffine& a) {
  for (int d = 0; d < 3; ++d) {
    for (int c = 0; c < 3; ++c) {
      if (a.m[d][c] != (d == c ? (1 << kColourFracBits) : 0)) return false;
    }
    if (a.o[d] != (1 << (kColourFracBits - 1))) return false;
  }
  return true;
}

// The identity map (a flip without colour jitter): rows copied, or their pixels reversed, with no arithmetic.
void crop_copy(const RgbFrames& src, int64_t y0, int64_t x0, int64_t h, int64_t w, bool flip, uint8_t* dst) {
  const int64_t n = 3 * w;
  for (int64_t t = 0; t < src.frames; ++t) {
    for (int64_t y = 0; y < h; ++y) {
      const uint8_t* in = src.data + t * src.frame_stride + (y0 + y) * src.row_stride + 3 * x0;
      uint8_t* out = dst + (t * h + y) * n;
      if (!flip) {
        std::memcpy(out, in, static_cast<size_t>(n));
        continue;
      }
      // pixels inside the row move as 4-byte words (the extra byte is the neighbour's, overwritten next);
      // the first and last pixel as 3 bytes, so that nothing outside the row is read or written
      std::memcpy(out, in + n - 3, 3);
      for (int64_t x = 1; x < w - 1; ++x) std::memcpy(out + 3 * x, in + n - 3 - 3 * x, 4);
      if (w > 1) std::memcpy(out + n - 3, in, 3);
    }
  }
}

void crop_portable(const RgbFrames& src, int64_t y0, int64_t x0, int64_t h, int64_t w, bool flip,
                   const ColourAffine& a, const RowWeights& r, uint8_t* dst) {
  if (flip) {
    crop_rows<true>(src, y0, x0, h, w, a, r, dst);
  } else {
    crop_rows<false>(src, y0, x0, h, w, a, r, dst);
  }
}

#ifdef BABYFAST_X86
// The same loops compiled for AVX2 (8 int32 lanes instead of SSE2's 4), chosen at run time.
__attribute__((target("avx2"))) void crop_avx2(const RgbFrames& src, int64_t y0, int64_t x0, int64_t h, int64_t w,
                                               bool flip, const ColourAffine& a, const RowWeights& r, uint8_t* dst) {
  if (flip) {
    crop_rows<true>(src, y0, x0, h, w, a, r, dst);
  } else {
    crop_rows<false>(src, y0, x0, h, w, a, r, dst);
  }
}

bool detect_avx2() { return __builtin_cpu_supports("avx2"); }
#else
bool detect_avx2() { return false; }
#endif

int32_t fixed(double v, double limit, const std::string& what) {
  if (!std::isfinite(v) || std::fabs(v) > limit) {
    throw std::invalid_argument("colour affine " + what + " = " + std::to_string(v) + " is not finite or exceeds " +
                                std::to_string(limit));
  }
  return static_cast<int32_t>(std::lrint(std::ldexp(v, kColourFracBits)));
}

}  // namespace

ColourAffine colour_affine_fixed(const double matrix[9], const double offset[3]) {
  ColourAffine a{};
  for (int d = 0; d < 3; ++d) {
    for (int c = 0; c < 3; ++c) {
      a.m[d][c] = fixed(matrix[3 * d + c], kColourMaxWeight,
                        "matrix[" + std::to_string(d) + "][" + std::to_string(c) + "]");
    }
    a.o[d] = fixed(offset[d], kColourMaxOffset, "offset[" + std::to_string(d) + "]") + (1 << (kColourFracBits - 1));
  }
  return a;
}

bool colour_has_avx2() {
  static const bool has = detect_avx2();
  return has;
}

void colour_crop(const RgbFrames& src, int64_t y0, int64_t x0, int64_t h, int64_t w, bool flip,
                 const ColourAffine& affine, uint8_t* dst, bool simd) {
  if (y0 < 0 || x0 < 0 || h < 1 || w < 1 || y0 + h > src.height || x0 + w > src.width || src.frames < 0) {
    throw std::invalid_argument("colour_crop: box (y0=" + std::to_string(y0) + ", x0=" + std::to_string(x0) +
                                ", h=" + std::to_string(h) + ", w=" + std::to_string(w) + ") does not fit frames of " +
                                std::to_string(src.height) + "x" + std::to_string(src.width));
  }
  if (is_identity(affine)) {
    crop_copy(src, y0, x0, h, w, flip, dst);
    return;
  }
  const RowWeights r = row_weights(affine, w, flip);
#ifdef BABYFAST_X86
  if (simd && colour_has_avx2()) {
    crop_avx2(src, y0, x0, h, w, flip, affine, r, dst);
    return;
  }
#else
  (void)simd;
#endif
  crop_portable(src, y0, x0, h, w, flip, affine, r, dst);
}

}  // namespace babyfast
