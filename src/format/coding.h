// Little-endian fixed-width integers and LevelDB/protobuf-style varints.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace hubimg::format {

inline constexpr size_t kMaxVarint32Bytes = 5;
inline constexpr size_t kMaxVarint64Bytes = 10;

// Decode a varint from the front of `input` and advance `input` past it. Return false, leaving
// `input` and `value` unchanged, when the input ends inside the varint, when it is longer than
// 5 (varint32) or 10 (varint64) bytes, or when its value does not fit the type. Redundant
// zero groups within that length (0x80 0x00) are accepted, as LevelDB and protobuf do.
bool get_varint32(std::string_view& input, uint32_t& value);
bool get_varint64(std::string_view& input, uint64_t& value);

void put_varint32(std::string& out, uint32_t value);
void put_varint64(std::string& out, uint64_t value);
size_t varint_length(uint64_t value);

inline uint32_t decode_fixed32(const char* p) {
  const auto* b = reinterpret_cast<const uint8_t*>(p);
  return uint32_t{b[0]} | (uint32_t{b[1]} << 8) | (uint32_t{b[2]} << 16) | (uint32_t{b[3]} << 24);
}
inline uint64_t decode_fixed64(const char* p) {
  return uint64_t{decode_fixed32(p)} | (uint64_t{decode_fixed32(p + 4)} << 32);
}
void put_fixed32(std::string& out, uint32_t value);
void put_fixed64(std::string& out, uint64_t value);

// Reads a fixed32 from the front of `input` and advances it; false if fewer than 4 bytes.
bool get_fixed32(std::string_view& input, uint32_t& value);

}  // namespace hubimg::format
