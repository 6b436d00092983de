#include "yuv.h"

#include <stdexcept>
#include <string>

#include "cpu_features.h"

#ifdef BABYFAST_X86
#include <immintrin.h>
#endif

namespace babyfast {
namespace {

// R = 255/219 (Y-16) + 1.402 * 255/224 (V-128), G and B likewise, in 2^-13 units: the largest weight,
// B's 2.017 for U, fits int16 (for vpmaddwd) with 13 fractional bits.
constexpr int kBits = 13;
constexpr int32_t kY = 9539;    // 255/219
constexpr int32_t kRV = 13075;  // 1.402 * 255/224
constexpr int32_t kGU = 3209;   // 0.344136 * 255/224
constexpr int32_t kGV = 6660;   // 0.714136 * 255/224
constexpr int32_t kBU = 16525;  // 1.772 * 255/224
constexpr int32_t kHalf = 1 << (kBits - 1);

inline uint8_t clamp_byte(int32_t v) {
  v >>= kBits;
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// Pixels [x0, width) of one row, one at a time: the tail of the AVX2 path and the whole portable path.
void row_scalar(const uint8_t* y, const uint8_t* u, const uint8_t* v, uint8_t* out, int64_t x0, int64_t width) {
  for (int64_t x = x0; x < width; ++x) {
    const int32_t yy = kY * (y[x] - 16) + kHalf;
    const int32_t uu = u[x >> 1] - 128;
    const int32_t vv = v[x >> 1] - 128;
    out[3 * x] = clamp_byte(yy + kRV * vv);
    out[3 * x + 1] = clamp_byte(yy - kGU * uu - kGV * vv);
    out[3 * x + 2] = clamp_byte(yy + kBU * uu);
  }
}

#ifdef BABYFAST_X86
// 16 pixels per step. Y - 16 is paired with a constant 1 and (U - 128, V - 128) with each other, so one
// vpmaddwd per pair gives the int32 sum of two products; unpacklo/hi work inside 128-bit halves, and
// packs_epi32 of the lo and hi results undoes that, leaving the 16 int16 values in pixel order. The
// three channels' bytes are then interleaved by byte shuffles into 48 output bytes.
__attribute__((target("avx2"))) int64_t row_avx2(const uint8_t* y, const uint8_t* u, const uint8_t* v,
                                                 uint8_t* out, int64_t width) {
  const __m256i c16 = _mm256_set1_epi16(16), c128 = _mm256_set1_epi16(128);
  const __m256i one = _mm256_set1_epi16(1);
  const __m256i wy = _mm256_set1_epi32((kHalf << 16) | kY);  // pairs (Y', 1) -> kY * Y' + half
  const __m256i wr = _mm256_set1_epi32((kRV << 16) | 0);  // pairs (U', V')
  const __m256i wg = _mm256_set1_epi32((static_cast<int32_t>(static_cast<uint16_t>(-kGV)) << 16) |
                                       static_cast<uint16_t>(-kGU));
  const __m256i wb = _mm256_set1_epi32(kBU);
  // byte k of 48 output bytes comes from channel k % 3, pixel k / 3; -1 (0x80) writes a zero
  alignas(16) static const int8_t kShuf[3][3][16] = {
      {{0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1, -1, 5},
       {-1, 0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1, -1},
       {-1, -1, 0, -1, -1, 1, -1, -1, 2, -1, -1, 3, -1, -1, 4, -1}},
      {{-1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1, 10, -1},
       {5, -1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1, 10},
       {-1, 5, -1, -1, 6, -1, -1, 7, -1, -1, 8, -1, -1, 9, -1, -1}},
      {{-1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15, -1, -1},
       {-1, -1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15, -1},
       {10, -1, -1, 11, -1, -1, 12, -1, -1, 13, -1, -1, 14, -1, -1, 15}}};
  int64_t x = 0;
  for (; x + 16 <= width; x += 16) {
    const __m128i y8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(y + x));
    const __m128i u8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(u + x / 2));
    const __m128i v8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(v + x / 2));
    const __m256i yw = _mm256_sub_epi16(_mm256_cvtepu8_epi16(y8), c16);
    const __m256i uw = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_unpacklo_epi8(u8, u8)), c128);
    const __m256i vw = _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_unpacklo_epi8(v8, v8)), c128);
    const __m256i y_lo = _mm256_madd_epi16(_mm256_unpacklo_epi16(yw, one), wy);
    const __m256i y_hi = _mm256_madd_epi16(_mm256_unpackhi_epi16(yw, one), wy);
    const __m256i uv_lo = _mm256_unpacklo_epi16(uw, vw), uv_hi = _mm256_unpackhi_epi16(uw, vw);
    __m128i ch[3];
    const __m256i weights[3] = {wr, wg, wb};
    for (int c = 0; c < 3; ++c) {
      const __m256i lo = _mm256_srai_epi32(_mm256_add_epi32(y_lo, _mm256_madd_epi16(uv_lo, weights[c])), kBits);
      const __m256i hi = _mm256_srai_epi32(_mm256_add_epi32(y_hi, _mm256_madd_epi16(uv_hi, weights[c])), kBits);
      const __m256i words = _mm256_packs_epi32(lo, hi);
      ch[c] = _mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
    }
    for (int part = 0; part < 3; ++part) {
      __m128i bytes = _mm_setzero_si128();
      for (int c = 0; c < 3; ++c) {
        bytes = _mm_or_si128(bytes, _mm_shuffle_epi8(ch[c], _mm_load_si128(reinterpret_cast<const __m128i*>(
                                                                 kShuf[part][c]))));
      }
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 3 * x + 16 * part), bytes);
    }
  }
  return x;
}
#endif

}  // namespace

void yuv420_to_rgb(const Yuv420Frame& src, uint8_t* dst, int64_t dst_stride, bool simd) {
  const int64_t cw = (src.width + 1) / 2;
  if (src.height < 1 || src.width < 1 || src.y_stride < src.width || src.uv_stride < cw ||
      dst_stride < 3 * src.width) {
    throw std::invalid_argument("yuv420_to_rgb: frame " + std::to_string(src.height) + "x" +
                                std::to_string(src.width) + " with strides y " + std::to_string(src.y_stride) +
                                ", uv " + std::to_string(src.uv_stride) + ", rgb " + std::to_string(dst_stride) +
                                " (a stride shorter than its row, or an empty frame)");
  }
#ifdef BABYFAST_X86
  const bool vector = simd && cpu_has_avx2();
#else
  const bool vector = false;
  (void)simd;
#endif
  for (int64_t r = 0; r < src.height; ++r) {
    const uint8_t* y = src.y + r * src.y_stride;
    const uint8_t* u = src.u + (r / 2) * src.uv_stride;
    const uint8_t* v = src.v + (r / 2) * src.uv_stride;
    uint8_t* out = dst + r * dst_stride;
    int64_t x = 0;
#ifdef BABYFAST_X86
    if (vector) x = row_avx2(y, u, v, out, src.width);
#endif
    row_scalar(y, u, v, out, x, src.width);
  }
}

}  // namespace babyfast
