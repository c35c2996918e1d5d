// Bytes -> TableReader: open, then visit every entry, with and without checksum verification
// (without it, mutations get past the block CRCs into the block parser).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "format/table.h"

namespace {

void read_everything(std::string_view bytes, bool verify_checksums) {
  hubimg::format::TableReaderOptions options;
  options.verify_checksums = verify_checksums;
  auto reader = hubimg::format::TableReader::open(bytes, "fuzz.index", options);
  if (!reader.ok()) return;
  size_t total = 0;
  hubimg::Status status = reader->for_each([&](std::string_view key, std::string_view value) {
    total += key.size() + value.size();
    return hubimg::Status::ok_status();
  });
  (void)status;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  read_everything(bytes, /*verify_checksums=*/false);
  read_everything(bytes, /*verify_checksums=*/true);
  return 0;
}
