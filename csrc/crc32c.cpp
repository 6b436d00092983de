#include "crc32c.h"

#include <array>
#include <cstring>

#include "cpu_features.h"

#ifdef BABYFAST_X86
#include <nmmintrin.h>
#endif

namespace babyfast {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial

// Eight tables for slicing-by-8: table[k][b] is the crc of byte b followed by k zero bytes.
struct Tables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  Tables() {
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t c = b;
      for (int i = 0; i < 8; ++i) c = (c >> 1) ^ ((c & 1u) ? kPoly : 0u);
      t[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; ++b)
      for (int k = 1; k < 8; ++k) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFFu];
  }
};

const Tables& tables() {
  static const Tables tabs;
  return tabs;
}

inline uint64_t load_le64(const unsigned char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

#ifdef BABYFAST_X86
// Multiplies two polynomials modulo the Castagnoli polynomial, in the reflected bit order the crc
// register uses (bit 31 is the coefficient of x^0).
uint32_t gf_mulmod(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (uint32_t bit = 1u << 31; bit != 0; bit >>= 1) {
    if (a & bit) product ^= b;
    b = (b & 1u) ? (b >> 1) ^ kPoly : b >> 1;  // b *= x (mod P)
  }
  return product;
}

// x^(8 * nbytes) mod P: multiplying a crc register by it appends nbytes zero bytes.
uint32_t zeros_operator(size_t nbytes) {
  uint32_t op = 1u << 31;  // x^0
  for (size_t i = 0; i < 8 * nbytes; ++i) op = (op & 1u) ? (op >> 1) ^ kPoly : op >> 1;
  return op;
}

// Three streams over consecutive blocks hide the 3-cycle latency of the crc32 instruction; the
// stream registers are then joined by appending zeros (a multiplication), since the crc register is
// linear: crc(r, A|B) = crc(r, A) * x^(8|B|) ^ crc(0, B).
template <size_t kBlock>
__attribute__((target("sse4.2"))) inline uint64_t crc_three_streams(const unsigned char*& p, size_t& n,
                                                                    uint64_t c) {
  static const uint32_t shift_one = zeros_operator(kBlock);
  static const uint32_t shift_two = zeros_operator(2 * kBlock);
  while (n >= 3 * kBlock) {
    uint64_t c1 = 0, c2 = 0;
    for (size_t i = 0; i < kBlock; i += 8) {
      uint64_t v0, v1, v2;
      std::memcpy(&v0, p + i, 8);
      std::memcpy(&v1, p + kBlock + i, 8);
      std::memcpy(&v2, p + 2 * kBlock + i, 8);
      c = _mm_crc32_u64(c, v0);
      c1 = _mm_crc32_u64(c1, v1);
      c2 = _mm_crc32_u64(c2, v2);
    }
    c = gf_mulmod(static_cast<uint32_t>(c), shift_two) ^ gf_mulmod(static_cast<uint32_t>(c1), shift_one) ^
        static_cast<uint32_t>(c2);
    p += 3 * kBlock;
    n -= 3 * kBlock;
  }
  return c;
}

__attribute__((target("sse4.2"))) uint32_t crc_sse42(const unsigned char* p, size_t n, uint32_t crc) {
  uint64_t c = ~crc;
  while (n && (reinterpret_cast<uintptr_t>(p) & 7u)) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
    --n;
  }
  c = crc_three_streams<8192>(p, n, c);
  c = crc_three_streams<1024>(p, n, c);
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    n -= 8;
  }
  while (n--) c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
  return ~static_cast<uint32_t>(c);
}
#endif

}  // namespace

uint32_t crc32c_table(const void* data, size_t size, uint32_t crc) {
  const auto& t = tables().t;
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = ~crc;
  while (size >= 8) {
    const uint64_t v = load_le64(p) ^ c;
    c = t[7][v & 0xFF] ^ t[6][(v >> 8) & 0xFF] ^ t[5][(v >> 16) & 0xFF] ^ t[4][(v >> 24) & 0xFF] ^
        t[3][(v >> 32) & 0xFF] ^ t[2][(v >> 40) & 0xFF] ^ t[1][(v >> 48) & 0xFF] ^ t[0][v >> 56];
    p += 8;
    size -= 8;
  }
  while (size--) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xFFu];
  return ~c;
}

bool crc32c_has_hardware() { return cpu_has_sse42(); }

uint32_t crc32c_hardware(const void* data, size_t size, uint32_t crc) {
#ifdef BABYFAST_X86
  return crc_sse42(static_cast<const unsigned char*>(data), size, crc);
#else
  return crc32c_table(data, size, crc);
#endif
}

uint32_t crc32c(const void* data, size_t size, uint32_t crc) {
  return crc32c_has_hardware() ? crc32c_hardware(data, size, crc) : crc32c_table(data, size, crc);
}

}  // namespace babyfast
