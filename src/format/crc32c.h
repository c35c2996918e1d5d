// CRC32C (Castagnoli), as LevelDB and TensorFlow use it for block trailers and tensor checksums.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace hubimg::format {

// Returns the CRC32C of the concatenation of the bytes that gave `crc` and data[0, n).
// crc32c_extend(0, ...) starts a new checksum.
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n);
inline uint32_t crc32c(const void* data, size_t n) {
  return crc32c_extend(0, data, n);
}

// LevelDB/TensorFlow store CRCs "masked", so that a CRC of data that itself contains CRCs
// does not degenerate.
inline constexpr uint32_t kCrc32cMaskDelta = 0xa282ead8u;
inline constexpr uint32_t crc32c_mask(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + kCrc32cMaskDelta;
}
inline constexpr uint32_t crc32c_unmask(uint32_t masked) {
  uint32_t rotated = masked - kCrc32cMaskDelta;
  return (rotated >> 17) | (rotated << 15);
}

// "0x1a2b3c4d": how error messages show a stored or computed checksum.
std::string crc32c_hex(uint32_t crc);

namespace detail {
// The two implementations behind crc32c_extend, exposed so tests can check both.
uint32_t crc32c_extend_portable(uint32_t crc, const void* data, size_t n);
// Only callable when crc32c_cpu_has_sse42() is true.
uint32_t crc32c_extend_sse42(uint32_t crc, const void* data, size_t n);
bool crc32c_cpu_has_sse42();
}  // namespace detail

}  // namespace hubimg::format
