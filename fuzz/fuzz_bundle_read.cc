// Bytes -> in-memory TensorBundleReader, then read every entry.
// Input layout (see make_seed_corpus.sh):
//   byte 0: bits 0-1 = number of shards - 1, bit 7 = verify checksums
//   u32 little-endian index length, index bytes,
//   then for every shard but the last a u32 length and its bytes; the last shard is the rest.
#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "format/coding.h"
#include "format/tensor_bundle.h"

namespace {

bool take_sized(std::string_view& input, std::string_view& piece) {
  uint32_t length = 0;
  if (!hubimg::format::get_fixed32(input, length) || length > input.size()) return false;
  piece = input.substr(0, length);
  input.remove_prefix(length);
  return true;
}

}  // namespace

// Mutated entries often carry invalid UTF-8 in proto3 string fields; protobuf rejects them
// (the reader reports data loss) and would also log each one.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(
      [](google::protobuf::LogLevel, const char*, int, const std::string&) {});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  if (input.empty()) return 0;
  const auto flags = static_cast<uint8_t>(input[0]);
  input.remove_prefix(1);
  const size_t num_shards = (flags & 0x3u) + 1;
  hubimg::format::TensorBundleReadOptions options;
  options.verify_checksums = (flags & 0x80u) != 0;

  std::string_view index;
  if (!take_sized(input, index)) return 0;
  std::vector<std::string_view> shards;
  for (size_t i = 0; i + 1 < num_shards; ++i) {
    std::string_view shard;
    if (!take_sized(input, shard)) return 0;
    shards.push_back(shard);
  }
  shards.push_back(input);

  auto reader = hubimg::format::TensorBundleReader::open_from_memory(index, shards,
                                                                     "fuzz/variables", options);
  if (!reader.ok()) return 0;
  for (const auto& entry : (*reader)->entries()) {
    auto tensor = (*reader)->read(entry.key);
    if (tensor.ok() && tensor->dtype() != hubimg::DType::kString && tensor->num_elements() > 0) {
      // Touch the first and last element so a bad view would be caught by ASan.
      (void)hubimg::element_as_double(*tensor, 0);
      (void)hubimg::element_as_double(*tensor, tensor->num_elements() - 1);
    }
  }
  return 0;
}
