// Which x86 vector instructions this CPU has, asked once per process: each kernel picks its SIMD path by
// these and keeps a portable one for everything else (and for its tests).
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#define BABYFAST_X86 1
#endif

namespace babyfast {

inline bool cpu_has_avx2() {
#ifdef BABYFAST_X86
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
#else
  return false;
#endif
}

inline bool cpu_has_sse42() {
#ifdef BABYFAST_X86
  static const bool has = __builtin_cpu_supports("sse4.2");
  return has;
#else
  return false;
#endif
}

}  // namespace babyfast
