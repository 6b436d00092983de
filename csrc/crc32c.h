// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by zarr's `crc32c` codec and the
// shard index. Hardware path (SSE4.2) when the CPU has it, checked once at run time; table otherwise.
#pragma once
#include <cstddef>
#include <cstdint>

namespace babyfast {

// crc32c of `size` bytes at `data`, continuing from `crc` (0 for a fresh checksum). Picks the fastest
// implementation this CPU supports.
uint32_t crc32c(const void* data, size_t size, uint32_t crc = 0);

// The portable table implementation (slicing-by-8). Exposed so tests can check both paths.
uint32_t crc32c_table(const void* data, size_t size, uint32_t crc = 0);

// True when crc32c() uses the SSE4.2 instruction on this machine.
bool crc32c_has_hardware();

// The hardware implementation; only call it when crc32c_has_hardware() is true.
uint32_t crc32c_hardware(const void* data, size_t size, uint32_t crc = 0);

}  // namespace babyfast
