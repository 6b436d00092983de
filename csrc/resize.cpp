#include "resize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "cpu_features.h"

#ifdef BABYFAST_X86
#include <immintrin.h>
#endif

namespace babyfast {

namespace {

constexpr int64_t kMaxSide = int64_t{1} << 20;
constexpr int kLanes = 16;  // frames per AVX2 step: one per 16-bit lane

// Values between the passes are grey levels times 2^8 (at most 65280), so each pass is one unsigned 16-bit
// multiply keeping the high half: (v * w) >> 16 with w the weight times 2^16. Truncation loses less than
// one unit (2^-8 level) per tap, always downwards; the final rounding adds back half a unit per tap.
inline uint32_t tap(uint32_t v, uint16_t w) { return (v * w) >> 16; }

struct Plan {
  ResizeAxis ver, hor;
  uint32_t round;  // added before the final >> 8
};

Plan make_plan(int64_t h, int64_t w, int64_t out_h, int64_t out_w) {
  Plan p{resize_axis(h, out_h), resize_axis(w, out_w), 0};
  p.round = static_cast<uint32_t>(128 + (p.ver.taps + p.hor.taps) / 2);
  return p;
}

inline uint8_t finish(uint32_t v, uint32_t round) { return static_cast<uint8_t>(std::min<uint32_t>(v + round, 65535) >> 8); }

const uint8_t* row_of(const RgbFrames& src, int64_t t, int64_t y, int64_t x0) {
  return src.data + t * src.frame_stride + y * src.row_stride + 3 * x0;
}

// Vertical pass of output row j over the n bytes of one frame's box rows.
void vertical_bytes(const RgbFrames& src, int64_t t, int64_t y0, int64_t x0, const ResizeAxis& ver, int64_t j,
                    int64_t n, uint16_t* out) {
  const uint16_t* w = ver.weight.data() + j * ver.taps;
  for (int64_t b = 0; b < n; ++b) {
    uint32_t acc = 0;
    for (int64_t k = 0; k < ver.taps; ++k) acc += tap(uint32_t{row_of(src, t, y0 + ver.start[j] + k, x0)[b]} << 8, w[k]);
    out[b] = static_cast<uint16_t>(acc);
  }
}

void resize_portable(const RgbFrames& src, int64_t y0, int64_t x0, int64_t w, const Plan& p, bool flip,
                     uint8_t* dst) {
  const int64_t n = 3 * w, m = 3 * p.hor.out;
  std::vector<uint16_t> v(static_cast<size_t>(n));
  for (int64_t t = 0; t < src.frames; ++t) {
    for (int64_t j = 0; j < p.ver.out; ++j) {
      vertical_bytes(src, t, y0, x0, p.ver, j, n, v.data());
      uint8_t* out = dst + (t * p.ver.out + j) * m;
      for (int64_t x = 0; x < p.hor.out; ++x) {
        const uint16_t* wx = p.hor.weight.data() + x * p.hor.taps;
        const uint16_t* in = v.data() + 3 * p.hor.start[x];
        uint8_t* px = out + 3 * (flip ? p.hor.out - 1 - x : x);
        for (int c = 0; c < 3; ++c) {
          uint32_t acc = 0;
          for (int64_t k = 0; k < p.hor.taps; ++k) acc += tap(in[3 * k + c], wx[k]);
          px[c] = finish(acc, p.round);
        }
      }
    }
  }
}

#ifdef BABYFAST_X86
// Two 16x16 byte transposes side by side, one per 128-bit half: in row r holds bytes [r][0..31] (block 0
// is columns 0-15, block 1 columns 16-31); out[c] = column c of block 0 in its low half and of block 1 in
// its high half. Unpacks interleave 8-, 16-, 32- then 64-bit pieces.
__attribute__((target("avx2"), always_inline)) inline void transpose_bytes(const __m256i (&r)[16], __m256i (&out)[16]) {
  __m256i a[16], b[16];
  for (int i = 0; i < 8; ++i) {  // a[2i]: columns 0-7 of rows 2i, 2i+1; a[2i+1]: columns 8-15
    a[2 * i] = _mm256_unpacklo_epi8(r[2 * i], r[2 * i + 1]);
    a[2 * i + 1] = _mm256_unpackhi_epi8(r[2 * i], r[2 * i + 1]);
  }
  for (int q = 0; q < 4; ++q) {
    for (int h = 0; h < 2; ++h) {  // b[4q + p]: columns 4p..4p+3 of rows 4q..4q+3
      b[4 * q + 2 * h] = _mm256_unpacklo_epi16(a[4 * q + h], a[4 * q + 2 + h]);
      b[4 * q + 2 * h + 1] = _mm256_unpackhi_epi16(a[4 * q + h], a[4 * q + 2 + h]);
    }
  }
  for (int o = 0; o < 2; ++o) {
    for (int p = 0; p < 4; ++p) {  // a[8o + e]: columns 2e, 2e+1 of rows 8o..8o+7
      a[8 * o + 2 * p] = _mm256_unpacklo_epi32(b[8 * o + p], b[8 * o + 4 + p]);
      a[8 * o + 2 * p + 1] = _mm256_unpackhi_epi32(b[8 * o + p], b[8 * o + 4 + p]);
    }
  }
  for (int e = 0; e < 8; ++e) {
    out[2 * e] = _mm256_unpacklo_epi64(a[e], a[8 + e]);
    out[2 * e + 1] = _mm256_unpackhi_epi64(a[e], a[8 + e]);
  }
}

// Input row y of 16 frames, [byte][frame]: out[16 b + f] = frame f's byte b of the box row, b < n. Absent
// frames (f >= frames) repeat the last one, so that every lane holds a real pixel.
__attribute__((target("avx2"), noinline)) void gather_row(const uint8_t* const* rows, int64_t frames, int64_t n,
                                                          uint8_t* out) {
  int64_t b = 0;
  __m256i r[16], t[16];
  for (; b + 2 * kLanes <= n; b += 2 * kLanes) {
    for (int f = 0; f < kLanes; ++f) {
      r[f] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[std::min<int64_t>(f, frames - 1)] + b));
    }
    transpose_bytes(r, t);
    for (int c = 0; c < kLanes; ++c) {
      _mm256_storeu2_m128i(reinterpret_cast<__m128i*>(out + (b + kLanes + c) * kLanes),
                           reinterpret_cast<__m128i*>(out + (b + c) * kLanes), t[c]);
    }
  }
  for (; b < n; ++b) {
    for (int64_t f = 0; f < kLanes; ++f) out[b * kLanes + f] = rows[std::min<int64_t>(f, frames - 1)][b];
  }
}

// Colour jitter on a gathered row in place: pixel x is bytes 48x .. 48x + 47 (R, G, B of 16 frames), so
// the 3x3 map is plain lane-wise arithmetic. madd multiplies (R, G) pairs and (B, 0) pairs by int16
// weights into int32 sums, as colour_crop's fixed point does: the same bytes.
__attribute__((target("avx2"), noinline)) void colour_row(const ColourAffine& a, int64_t w, uint8_t* row) {
  __m256i rg_w[3], b_w[3], off[3];
  for (int c = 0; c < 3; ++c) {
    rg_w[c] = _mm256_set1_epi32(static_cast<int32_t>((static_cast<uint32_t>(a.m[c][1]) << 16) |
                                                     (static_cast<uint32_t>(a.m[c][0]) & 0xFFFF)));
    b_w[c] = _mm256_set1_epi32(a.m[c][2] & 0xFFFF);
    off[c] = _mm256_set1_epi32(a.o[c]);
  }
  const __m128i shift = _mm_cvtsi32_si128(a.frac_bits);
  const __m256i zero = _mm256_setzero_si256();
  for (int64_t x = 0; x < w; ++x) {
    uint8_t* px = row + 3 * x * kLanes;
    const __m256i r = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(px)));
    const __m256i g = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(px + kLanes)));
    const __m256i b = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(px + 2 * kLanes)));
    const __m256i rg[2] = {_mm256_unpacklo_epi16(r, g), _mm256_unpackhi_epi16(r, g)};
    const __m256i b0[2] = {_mm256_unpacklo_epi16(b, zero), _mm256_unpackhi_epi16(b, zero)};
    __m256i v[3];
    for (int c = 0; c < 3; ++c) {
      __m256i half[2];
      for (int h = 0; h < 2; ++h) {
        const __m256i sum = _mm256_add_epi32(_mm256_madd_epi16(rg[h], rg_w[c]), _mm256_madd_epi16(b0[h], b_w[c]));
        half[h] = _mm256_sra_epi32(_mm256_add_epi32(sum, off[c]), shift);
      }
      v[c] = _mm256_packs_epi32(half[0], half[1]);  // int16, frames in order again
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(px), _mm256_permute4x64_epi64(_mm256_packus_epi16(v[0], v[1]), 0xD8));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(px + 2 * kLanes),
                     _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi16(v[2], v[2]), 0xD8)));
  }
}

// Vertical pass of one output row for 16 frames: cols[b] = sum_k tap(in[k][b] << 8, w[k]), lanes = frames.
__attribute__((target("avx2"), noinline)) void vertical_row(const uint8_t* const* in, const uint16_t* w,
                                                            int64_t taps, int64_t n, uint16_t* cols) {
  int64_t b = 0;
  for (; b + 4 <= n; b += 4) {  // four bytes at a time: independent sums keep the multiplier busy
    __m256i acc[4] = {};
    for (int64_t k = 0; k < taps; ++k) {
      const __m256i wk = _mm256_set1_epi16(static_cast<int16_t>(w[k]));
      for (int q = 0; q < 4; ++q) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in[k] + (b + q) * kLanes));
        acc[q] = _mm256_add_epi16(acc[q], _mm256_mulhi_epu16(_mm256_slli_epi16(_mm256_cvtepu8_epi16(v), 8), wk));
      }
    }
    for (int q = 0; q < 4; ++q) _mm256_storeu_si256(reinterpret_cast<__m256i*>(cols + (b + q) * kLanes), acc[q]);
  }
  for (; b < n; ++b) {
    __m256i acc = _mm256_setzero_si256();
    for (int64_t k = 0; k < taps; ++k) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in[k] + b * kLanes));
      acc = _mm256_add_epi16(acc, _mm256_mulhi_epu16(_mm256_slli_epi16(_mm256_cvtepu8_epi16(v), 8),
                                                     _mm256_set1_epi16(static_cast<int16_t>(w[k]))));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(cols + b * kLanes), acc);
  }
}

// The horizontal pass of one output row for 16 frames: cols is [input byte][frame] (16-bit), res [output
// byte][frame] (bytes), the outputs in mirrored order when `flip`.
__attribute__((target("avx2"), noinline)) void horizontal_row(const uint16_t* cols, const ResizeAxis& hor,
                                                              uint32_t round_to, bool flip, uint8_t* res) {
  const __m256i round = _mm256_set1_epi16(static_cast<int16_t>(round_to));
  const int64_t taps = hor.taps;
  for (int64_t x = 0; x < hor.out; ++x) {
    const uint16_t* wx = hor.weight.data() + x * taps;
    const uint16_t* in = cols + 3 * hor.start[x] * kLanes;
    __m256i acc[3] = {round, round, round};
    for (int64_t k = 0; k < taps; ++k) {
      const __m256i wk = _mm256_set1_epi16(static_cast<int16_t>(wx[k]));
      for (int c = 0; c < 3; ++c) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + (3 * k + c) * kLanes));
        acc[c] = _mm256_adds_epu16(acc[c], _mm256_mulhi_epu16(v, wk));
      }
    }
    uint8_t* out = res + 3 * (flip ? hor.out - 1 - x : x) * kLanes;
    // R and G packed together (packus interleaves 64-bit pieces of the two; the permute restores them)
    const __m256i rg = _mm256_permute4x64_epi64(
        _mm256_packus_epi16(_mm256_srli_epi16(acc[0], 8), _mm256_srli_epi16(acc[1], 8)), 0xD8);
    const __m256i bb = _mm256_permute4x64_epi64(
        _mm256_packus_epi16(_mm256_srli_epi16(acc[2], 8), _mm256_srli_epi16(acc[2], 8)), 0xD8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), rg);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * kLanes), _mm256_castsi256_si128(bb));
  }
}

// res ([output byte][frame], m bytes) to the rows of the first `frames` frames.
__attribute__((target("avx2"), noinline)) void scatter_row(const uint8_t* res, int64_t m, int64_t frames,
                                                           uint8_t* dst, int64_t frame_stride) {
  __m256i r[16], t[16];
  int64_t b = 0;
  for (; b + kLanes <= m; b += kLanes) {  // two 16-frame rows of 16 bytes per register: bytes b..b+15, b+16..
    for (int c = 0; c < kLanes; ++c) {
      const int64_t c2 = std::min<int64_t>(b + kLanes + c, m - 1);  // past the row: any byte, not stored
      r[c] = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(res + c2 * kLanes),
                                 reinterpret_cast<const __m128i*>(res + (b + c) * kLanes));
    }
    transpose_bytes(r, t);
    const bool both = b + 2 * kLanes <= m;
    for (int64_t f = 0; f < frames; ++f) {
      uint8_t* out = dst + f * frame_stride + b;
      if (both) {
        _mm256_storeu2_m128i(reinterpret_cast<__m128i*>(out + kLanes), reinterpret_cast<__m128i*>(out), t[f]);
      } else {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm256_castsi256_si128(t[f]));
      }
    }
    if (both) b += kLanes;
  }
  for (; b < m; ++b) {
    for (int64_t f = 0; f < frames; ++f) dst[f * frame_stride + b] = res[b * kLanes + f];
  }
}

__attribute__((target("avx2"))) void resize_avx2(const RgbFrames& src, int64_t y0, int64_t x0, int64_t w,
                                                 const Plan& p, bool flip, const ColourAffine* colour, uint8_t* dst) {
  const int64_t n = 3 * w, m = 3 * p.hor.out;
  const int64_t nv = p.ver.taps;
  // The box rows the vertical pass needs, [byte][frame], in a ring indexed by row: the rows of output
  // row j are start[j] .. start[j] + taps - 1 and start never decreases, so `taps` slots hold them all.
  std::vector<uint8_t> ring(static_cast<size_t>(nv * n * kLanes));
  std::vector<int64_t> slot_row(static_cast<size_t>(nv), -1);
  std::vector<uint16_t> cols(static_cast<size_t>(n * kLanes));  // [byte][frame]: the vertical pass
  std::vector<uint8_t> res(static_cast<size_t>(m * kLanes));    // [output byte][frame]
  std::vector<const uint8_t*> in(static_cast<size_t>(nv));
  const int64_t frame_out = p.ver.out * m;
  for (int64_t t0 = 0; t0 < src.frames; t0 += kLanes) {
    const int64_t g = std::min<int64_t>(kLanes, src.frames - t0);
    std::fill(slot_row.begin(), slot_row.end(), -1);
    for (int64_t j = 0; j < p.ver.out; ++j) {
      for (int64_t k = 0; k < nv; ++k) {
        const int64_t y = p.ver.start[j] + k;
        const auto slot = static_cast<size_t>(y % nv);
        uint8_t* row = ring.data() + static_cast<int64_t>(slot) * n * kLanes;
        if (slot_row[slot] != y) {
          const uint8_t* frame_rows[kLanes];
          for (int64_t f = 0; f < g; ++f) frame_rows[f] = row_of(src, t0 + f, y0 + y, x0);
          gather_row(frame_rows, g, n, row);
          if (colour != nullptr) colour_row(*colour, w, row);
          slot_row[slot] = y;
        }
        in[static_cast<size_t>(k)] = row;
      }
      vertical_row(in.data(), p.ver.weight.data() + j * nv, nv, n, cols.data());
      horizontal_row(cols.data(), p.hor, p.round, flip, res.data());
      scatter_row(res.data(), m, g, dst + t0 * frame_out + j * m, frame_out);
    }
  }
}
#endif

}  // namespace

ResizeAxis resize_axis(int64_t in, int64_t out) {
  if (in < 1 || out < 1 || in > kMaxSide || out > kMaxSide) {
    throw std::invalid_argument("resize: sizes must be in [1, " + std::to_string(kMaxSide) + "], got " +
                                std::to_string(in) + " -> " + std::to_string(out));
  }
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double support = std::max(scale, 1.0);
  // the taps of each output: the input pixels whose centre lies within `support` of the output's centre
  std::vector<int64_t> first(static_cast<size_t>(out));
  std::vector<std::vector<double>> weights(static_cast<size_t>(out));
  int64_t taps = 1;
  for (int64_t i = 0; i < out; ++i) {
    const double centre = (static_cast<double>(i) + 0.5) * scale;
    const int64_t lo = std::max<int64_t>(0, static_cast<int64_t>(std::floor(centre - support)));
    const int64_t hi = std::min<int64_t>(in, static_cast<int64_t>(std::ceil(centre + support)) + 1);
    auto& wi = weights[static_cast<size_t>(i)];
    int64_t a = -1, b = -1;
    double total = 0;
    for (int64_t x = lo; x < hi; ++x) {
      const double v = 1.0 - std::fabs(static_cast<double>(x) + 0.5 - centre) / support;
      if (v <= 0) continue;
      if (a < 0) a = x;
      b = x;
      total += v;
    }
    for (int64_t x = a; x <= b; ++x) {
      wi.push_back(std::max(0.0, 1.0 - std::fabs(static_cast<double>(x) + 0.5 - centre) / support) / total);
    }
    first[static_cast<size_t>(i)] = a;
    taps = std::max(taps, b - a + 1);
  }
  ResizeAxis axis;
  axis.in = in;
  axis.out = out;
  axis.taps = taps;
  axis.start.resize(static_cast<size_t>(out));
  axis.weight.assign(static_cast<size_t>(out * taps), 0);
  for (int64_t i = 0; i < out; ++i) {
    const int64_t s = std::min(first[static_cast<size_t>(i)], in - taps);
    axis.start[static_cast<size_t>(i)] = s;
    const auto& wi = weights[static_cast<size_t>(i)];
    uint16_t* q = axis.weight.data() + i * taps + (first[static_cast<size_t>(i)] - s);
    int64_t sum = 0;
    size_t largest = 0;
    for (size_t k = 0; k < wi.size(); ++k) {
      const int64_t v = std::min<int64_t>(65535, std::llround(std::ldexp(wi[k], 16)));
      q[k] = static_cast<uint16_t>(v);
      sum += v;
      if (wi[k] > wi[largest]) largest = k;
    }
    // rounding may carry the sum past 2^16, which would let a 16-bit sum of full-white pixels wrap
    if (sum > 65536) q[largest] = static_cast<uint16_t>(q[largest] - (sum - 65536));
  }
  return axis;
}

bool resize_has_avx2() { return cpu_has_avx2(); }

void resize_crop(const RgbFrames& src, int64_t y0, int64_t x0, int64_t h, int64_t w, int64_t out_h, int64_t out_w,
                 bool flip, uint8_t* dst, const ColourAffine* colour, bool simd) {
  if (y0 < 0 || x0 < 0 || h < 1 || w < 1 || y0 + h > src.height || x0 + w > src.width || src.frames < 0) {
    throw std::invalid_argument("resize_crop: box (y0=" + std::to_string(y0) + ", x0=" + std::to_string(x0) +
                                ", h=" + std::to_string(h) + ", w=" + std::to_string(w) + ") does not fit frames of " +
                                std::to_string(src.height) + "x" + std::to_string(src.width));
  }
  const Plan p = make_plan(h, w, out_h, out_w);
#ifdef BABYFAST_X86
  if (simd && resize_has_avx2()) {
    resize_avx2(src, y0, x0, w, p, flip, colour, dst);
    return;
  }
#endif
  if (colour == nullptr) {
    resize_portable(src, y0, x0, w, p, flip, dst);
    return;
  }
  std::vector<uint8_t> box(static_cast<size_t>(src.frames * h * w * 3));
  colour_crop(src, y0, x0, h, w, false, *colour, box.data(), simd);
  resize_portable({box.data(), src.frames, h, w, h * w * 3, w * 3}, 0, 0, w, p, flip, dst);
}

}  // namespace babyfast
