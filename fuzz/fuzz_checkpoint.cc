// libFuzzer target: read_checkpoint (retrain's --resume) must return tensors or an error for any
// file, never crash or reserve more memory than the file holds. The harness appends the body's
// checksum, so the parser behind the CRC check is what gets fuzzed (a random CRC almost never
// matches); what it accepts must survive write_checkpoint and a second read unchanged.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "format/crc32c.h"
#include "train/checkpoint.h"

namespace {

std::filesystem::path scratch(const char* name) {
  return std::filesystem::temp_directory_path() /
         ("hubimg_fuzz_checkpoint_" + std::to_string(::getpid()) + name);
}

bool same(const hubimg::Tensor& a, const hubimg::Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.byte_size()) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = scratch(".bin");
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    const uint32_t crc = hubimg::format::crc32c_mask(hubimg::format::crc32c(data, size));
    out.write(reinterpret_cast<const char*>(&crc), sizeof(crc));
  }
  auto tensors = hubimg::train::read_checkpoint(path);
  if (tensors.ok()) {
    const auto again = scratch(".again");
    if (!hubimg::train::write_checkpoint(again, *tensors).ok()) __builtin_trap();
    auto back = hubimg::train::read_checkpoint(again);
    if (!back.ok() || back->size() != tensors->size()) __builtin_trap();
    for (const auto& [name, t] : *tensors) {
      auto it = back->find(name);
      if (it == back->end() || !same(t, it->second)) __builtin_trap();
    }
    std::filesystem::remove(again);
  }
  std::filesystem::remove(path);
  return 0;
}
