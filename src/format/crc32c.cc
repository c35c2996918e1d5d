#include "format/crc32c.h"

#include <array>
#include <cstdio>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define HUBIMG_CRC32C_X86 1
#endif

namespace hubimg::format {
namespace detail {
namespace {

constexpr uint32_t kReflectedPolynomial = 0x82f63b78u;

// Slicing-by-8 tables: kTables[k][b] is the CRC of byte b followed by k zero bytes.
constexpr std::array<std::array<uint32_t, 256>, 8> make_tables() {
  std::array<std::array<uint32_t, 256>, 8> tables{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t crc = b;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? kReflectedPolynomial : 0u);
    tables[0][b] = crc;
  }
  for (uint32_t b = 0; b < 256; ++b) {
    for (size_t k = 1; k < 8; ++k) {
      uint32_t prev = tables[k - 1][b];
      tables[k][b] = (prev >> 8) ^ tables[0][prev & 0xffu];
    }
  }
  return tables;
}

constexpr auto kTables = make_tables();

uint32_t load_le32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

}  // namespace

uint32_t crc32c_extend_portable(uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t l = crc ^ 0xffffffffu;
  while (n >= 8) {
    uint32_t lo = load_le32(p) ^ l;
    uint32_t hi = load_le32(p + 4);
    l = kTables[7][lo & 0xffu] ^ kTables[6][(lo >> 8) & 0xffu] ^ kTables[5][(lo >> 16) & 0xffu] ^
        kTables[4][lo >> 24] ^ kTables[3][hi & 0xffu] ^ kTables[2][(hi >> 8) & 0xffu] ^
        kTables[1][(hi >> 16) & 0xffu] ^ kTables[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    l = (l >> 8) ^ kTables[0][(l ^ *p) & 0xffu];
    ++p;
    --n;
  }
  return l ^ 0xffffffffu;
}

#if defined(HUBIMG_CRC32C_X86)

__attribute__((target("sse4.2"))) uint32_t crc32c_extend_sse42(uint32_t crc, const void* data,
                                                               size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
#if defined(__x86_64__)
  uint64_t l = crc ^ 0xffffffffu;
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, sizeof(word));
    l = _mm_crc32_u64(l, word);
    p += 8;
    n -= 8;
  }
  auto l32 = static_cast<uint32_t>(l);
#else
  uint32_t l32 = crc ^ 0xffffffffu;
#endif
  while (n >= 4) {
    uint32_t word;
    std::memcpy(&word, p, sizeof(word));
    l32 = _mm_crc32_u32(l32, word);
    p += 4;
    n -= 4;
  }
  while (n > 0) {
    l32 = _mm_crc32_u8(l32, *p);
    ++p;
    --n;
  }
  return l32 ^ 0xffffffffu;
}

bool crc32c_cpu_has_sse42() {
  static const bool has = __builtin_cpu_supports("sse4.2");
  return has;
}

#else

uint32_t crc32c_extend_sse42(uint32_t crc, const void* data, size_t n) {
  return crc32c_extend_portable(crc, data, n);
}
bool crc32c_cpu_has_sse42() {
  return false;
}

#endif

}  // namespace detail

uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n) {
  if (detail::crc32c_cpu_has_sse42()) return detail::crc32c_extend_sse42(crc, data, n);
  return detail::crc32c_extend_portable(crc, data, n);
}

std::string crc32c_hex(uint32_t crc) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", crc);
  return buf;
}

}  // namespace hubimg::format
