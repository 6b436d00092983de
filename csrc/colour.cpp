#include "colour.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu_features.h"

#ifdef BABYFAST_X86
#include <immintrin.h>
#endif

namespace babyfast {

namespace {

inline uint8_t clamp_u8(int32_t v) { return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v)); }

// Pixels are interleaved (RGB RGB ...), which defeats vectorizing a per-pixel 3x3 product. Written per
// byte instead, output byte k is a sum over the five input bytes k-2 .. k+2 with weights that repeat every
// three bytes (most are zero): plain contiguous loads, whatever the vector width.
// Mirroring a row reverses pixels but not the channels inside a pixel; reading input byte k and writing
// output byte n-1-k reverses both, so the weights of a mirrored row also reverse the channel order.
int tap_weight(const ColourAffine& a, int64_t k, int d, bool flip) {
  const int e = static_cast<int>(k % 3);  // channel of input byte k
  const int c = e + d;                    // channel of input byte k + d
  return (c < 0 || c > 2) ? 0 : a.m[flip ? 2 - e : e][c];
}

int32_t tap_offset(const ColourAffine& a, int64_t k, bool flip) {
  const int e = static_cast<int>(k % 3);
  return a.o[flip ? 2 - e : e];
}

// The weights of every byte of a row, for the portable loop and the tails of the AVX2 one.
struct RowWeights {
  std::vector<int32_t> w[5];  // w[2 + d][k]: weight of input byte k + d
  std::vector<int32_t> off;
};

RowWeights row_weights(const ColourAffine& a, int64_t width, bool flip) {
  const int64_t n = 3 * width;
  RowWeights r;
  for (int d = -2; d <= 2; ++d) {
    auto& v = r.w[2 + d];
    v.resize(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k) v[static_cast<size_t>(k)] = tap_weight(a, k, d, flip);
  }
  r.off.resize(static_cast<size_t>(n));
  for (int64_t k = 0; k < n; ++k) r.off[static_cast<size_t>(k)] = tap_offset(a, k, flip);
  return r;
}

inline void pixel(const uint8_t* in, uint8_t* out, const ColourAffine& a) {
  for (int d = 0; d < 3; ++d) {
    out[d] = clamp_u8((a.m[d][0] * in[0] + a.m[d][1] * in[1] + a.m[d][2] * in[2] + a.o[d]) >> a.frac_bits);
  }
}

// Output bytes [from, n - 3) of a row by the byte formula: every read k - 2 .. k + 2 stays inside the
// row. The first and last pixel go through `pixel`.
void row_bytes(const uint8_t* __restrict in, uint8_t* __restrict out, const RowWeights& r, int64_t from, int64_t n,
               bool flip, int frac_bits) {
  const int32_t* __restrict w0 = r.w[0].data();
  const int32_t* __restrict w1 = r.w[1].data();
  const int32_t* __restrict w2 = r.w[2].data();
  const int32_t* __restrict w3 = r.w[3].data();
  const int32_t* __restrict w4 = r.w[4].data();
  const int32_t* __restrict off = r.off.data();
  for (int64_t k = from; k < n - 3; ++k) {
    const int32_t v = w0[k] * in[k - 2] + w1[k] * in[k - 1] + w2[k] * in[k] + w3[k] * in[k + 1] +
                      w4[k] * in[k + 2] + off[k];
    out[flip ? n - 1 - k : k] = clamp_u8(v >> frac_bits);
  }
}

inline void row_edges(const uint8_t* in, uint8_t* out, int64_t w, bool flip, const ColourAffine& a) {
  const int64_t n = 3 * w;
  pixel(in, out + (flip ? n - 3 : 0), a);
  if (w > 1) pixel(in + n - 3, out + (flip ? 0 : n - 3), a);
}

#ifdef BABYFAST_X86
// 16 output bytes per step: the five shifted 16-byte loads widened to int16, paired as (k-2, k-1),
// (k, k+1), (k+2, 0) and multiplied by int16 weight pairs with vpmaddwd (two products and their sum per
// int32 lane). unpacklo/hi interleave within 128-bit halves, so the int32 lanes of the low product hold
// bytes 0-3 and 8-11, the high one 4-7 and 12-15; packs_epi32 restores the order. A step starts 16 bytes
// after the last, one channel further on (16 = 1 mod 3): three phases of weights, precomputed.
struct SimdWeights {
  alignas(32) int16_t pair[3][2][3][16];  // [phase][low/high lanes][pair][16 int16]
  alignas(32) int32_t off[3][2][8];       // [phase][low/high lanes][8 int32]
};

SimdWeights simd_weights(const ColourAffine& a, bool flip) {
  static const int kLaneByte[2][8] = {{0, 1, 2, 3, 8, 9, 10, 11}, {4, 5, 6, 7, 12, 13, 14, 15}};
  SimdWeights s{};
  for (int phase = 0; phase < 3; ++phase) {
    for (int half = 0; half < 2; ++half) {
      for (int lane = 0; lane < 8; ++lane) {
        const int64_t k = phase + kLaneByte[half][lane];  // output byte position mod 3 is what matters
        for (int pair = 0; pair < 3; ++pair) {
          const int d0 = 2 * pair - 2;
          s.pair[phase][half][pair][2 * lane] = static_cast<int16_t>(tap_weight(a, k, d0, flip));
          s.pair[phase][half][pair][2 * lane + 1] = pair == 2 ? 0 : static_cast<int16_t>(tap_weight(a, k, d0 + 1, flip));
        }
        s.off[phase][half][lane] = tap_offset(a, k, flip);
      }
    }
  }
  return s;
}

__attribute__((target("avx2"), always_inline)) inline __m256i load32(const void* p) {
  return _mm256_load_si256(static_cast<const __m256i*>(p));
}

__attribute__((target("avx2"))) void crop_avx2(const RgbFrames& src, int64_t y0, int64_t x0, int64_t h, int64_t w,
                                               bool flip, const ColourAffine& a, const RowWeights& r, uint8_t* dst) {
  const SimdWeights s = simd_weights(a, flip);
  const int64_t n = 3 * w;
  const __m128i shift = _mm_cvtsi32_si128(a.frac_bits);
  const __m128i reverse = _mm_setr_epi8(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const __m256i zero = _mm256_setzero_si256();
  for (int64_t t = 0; t < src.frames; ++t) {
    for (int64_t y = 0; y < h; ++y) {
      const uint8_t* in = src.data + t * src.frame_stride + (y0 + y) * src.row_stride + 3 * x0;
      uint8_t* out = dst + (t * h + y) * n;
      int64_t k = 3;
      int phase = 0;
      for (; k + 16 <= n - 3; k += 16, phase = phase == 2 ? 0 : phase + 1) {
        __m256i z[5];
        for (int d = 0; d < 5; ++d) {
          z[d] = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + k + d - 2)));
        }
        __m256i acc[2];
        for (int half = 0; half < 2; ++half) {
          const auto& pw = s.pair[phase][half];
          const __m256i p0 = half ? _mm256_unpackhi_epi16(z[0], z[1]) : _mm256_unpacklo_epi16(z[0], z[1]);
          const __m256i p1 = half ? _mm256_unpackhi_epi16(z[2], z[3]) : _mm256_unpacklo_epi16(z[2], z[3]);
          const __m256i p2 = half ? _mm256_unpackhi_epi16(z[4], zero) : _mm256_unpacklo_epi16(z[4], zero);
          __m256i v = _mm256_add_epi32(_mm256_madd_epi16(p0, load32(pw[0])), _mm256_madd_epi16(p1, load32(pw[1])));
          v = _mm256_add_epi32(v, _mm256_add_epi32(_mm256_madd_epi16(p2, load32(pw[2])), load32(s.off[phase][half])));
          acc[half] = _mm256_sra_epi32(v, shift);
        }
        const __m256i words = _mm256_packs_epi32(acc[0], acc[1]);  // int16, bytes 0..15 in order
        __m128i bytes = _mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
        if (flip) {
          bytes = _mm_shuffle_epi8(bytes, reverse);
          _mm_storeu_si128(reinterpret_cast<__m128i*>(out + n - 16 - k), bytes);
        } else {
          _mm_storeu_si128(reinterpret_cast<__m128i*>(out + k), bytes);
        }
      }
      row_bytes(in, out, r, k, n, flip, a.frac_bits);
      row_edges(in, out, w, flip, a);
    }
  }
}
#endif

void crop_portable(const RgbFrames& src, int64_t y0, int64_t x0, int64_t h, int64_t w, bool flip,
                   const ColourAffine& a, const RowWeights& r, uint8_t* dst) {
  const int64_t n = 3 * w;
  for (int64_t t = 0; t < src.frames; ++t) {
    for (int64_t y = 0; y < h; ++y) {
      const uint8_t* in = src.data + t * src.frame_stride + (y0 + y) * src.row_stride + 3 * x0;
      uint8_t* out = dst + (t * h + y) * n;
      row_bytes(in, out, r, 3, n, flip, a.frac_bits);
      row_edges(in, out, w, flip, a);
    }
  }
}

bool is_identity(const ColourAffine& a) {
  for (int d = 0; d < 3; ++d) {
    for (int c = 0; c < 3; ++c) {
      if (a.m[d][c] != (d == c ? (1 << a.frac_bits) : 0)) return false;
    }
    if (a.o[d] != (1 << (a.frac_bits - 1))) return false;
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

void check_finite_within(double v, double limit, const std::string& what) {
  if (!std::isfinite(v) || std::fabs(v) > limit) {
    throw std::invalid_argument("colour affine " + what + " = " + std::to_string(v) + " is not finite or exceeds " +
                                std::to_string(limit));
  }
}

}  // namespace

ColourAffine colour_affine_fixed(const double matrix[9], const double offset[3]) {
  double largest = 0;
  for (int i = 0; i < 9; ++i) {
    check_finite_within(matrix[i], kColourMaxWeight,
                        "matrix[" + std::to_string(i / 3) + "][" + std::to_string(i % 3) + "]");
    largest = std::max(largest, std::fabs(matrix[i]));
  }
  for (int d = 0; d < 3; ++d) check_finite_within(offset[d], kColourMaxOffset, "offset[" + std::to_string(d) + "]");
  ColourAffine a{};
  a.frac_bits = 14;  // |M| <= 16 leaves at least 11
  while (std::lrint(std::ldexp(largest, a.frac_bits)) > 32767) --a.frac_bits;
  for (int d = 0; d < 3; ++d) {
    for (int c = 0; c < 3; ++c) a.m[d][c] = static_cast<int32_t>(std::lrint(std::ldexp(matrix[3 * d + c], a.frac_bits)));
    a.o[d] = static_cast<int32_t>(std::lrint(std::ldexp(offset[d], a.frac_bits))) + (1 << (a.frac_bits - 1));
  }
  return a;
}

bool colour_has_avx2() { return cpu_has_avx2(); }

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
