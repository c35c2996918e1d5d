// libFuzzer target: parse_npy must return a value or an error for any input, never crash.
#include <cstddef>
#include <cstdint>
#include <span>

#include "hubimg/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto result = hubimg::parse_npy(std::span<const uint8_t>(data, size), "fuzz");
  if (result.ok()) {
    // Round-trip what was accepted; the encoder must accept every tensor the parser makes.
    auto encoded = hubimg::encode_npy(*result);
    if (!encoded.ok()) __builtin_trap();
  }
  return 0;
}
