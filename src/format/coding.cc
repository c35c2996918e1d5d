#include "format/coding.h"

namespace hubimg::format {
namespace {

template <typename UInt>
bool get_varint(std::string_view& input, UInt& value, size_t max_bytes) {
  constexpr int kBits = sizeof(UInt) * 8;
  UInt result = 0;
  for (size_t i = 0; i < max_bytes && i < input.size(); ++i) {
    const auto byte = static_cast<uint8_t>(input[i]);
    const int shift = static_cast<int>(7 * i);
    const UInt payload = byte & 0x7fu;
    // The last group may only carry the bits that are left in the type.
    if (shift + 7 > kBits && (payload >> (kBits - shift)) != 0) return false;
    result |= payload << shift;
    if ((byte & 0x80u) == 0) {
      value = result;
      input.remove_prefix(i + 1);
      return true;
    }
  }
  return false;
}

template <typename UInt>
void put_varint(std::string& out, UInt value) {
  while (value >= 0x80u) {
    out.push_back(static_cast<char>((value & 0x7fu) | 0x80u));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

}  // namespace

bool get_varint32(std::string_view& input, uint32_t& value) {
  return get_varint<uint32_t>(input, value, kMaxVarint32Bytes);
}

bool get_varint64(std::string_view& input, uint64_t& value) {
  return get_varint<uint64_t>(input, value, kMaxVarint64Bytes);
}

void put_varint32(std::string& out, uint32_t value) {
  put_varint(out, value);
}

void put_varint64(std::string& out, uint64_t value) {
  put_varint(out, value);
}

size_t varint_length(uint64_t value) {
  size_t length = 1;
  while (value >= 0x80u) {
    value >>= 7;
    ++length;
  }
  return length;
}

void put_fixed32(std::string& out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xffu));
}

void put_fixed64(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xffu));
}

bool get_fixed32(std::string_view& input, uint32_t& value) {
  if (input.size() < 4) return false;
  value = decode_fixed32(input.data());
  input.remove_prefix(4);
  return true;
}

}  // namespace hubimg::format
