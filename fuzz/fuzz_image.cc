// libFuzzer target: decode_image must return a value or an error for any input, never crash.
#include <cstddef>
#include <cstdint>
#include <span>

#include "hubimg/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto result = hubimg::decode_image(std::span<const uint8_t>(data, size), "fuzz");
  if (result.ok() && (result->rank() != 3 || result->dim(2) != 3)) __builtin_trap();
  return 0;
}
