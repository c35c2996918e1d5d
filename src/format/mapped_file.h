// A whole file mapped into memory. The mapping is private and writable: tensors that view it
// may be modified in memory (fine-tuning writes into variables) without touching the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string_view>

#include "hubimg/status.h"

namespace hubimg::format {

class MappedFile {
 public:
  // Errors name the path and the system's reason. An empty file gives an empty mapping.
  static Expected<std::shared_ptr<MappedFile>> open(const std::filesystem::path& path);
  // Copies `bytes` into a fresh page-aligned private mapping; `name` stands in for the path in
  // messages. For in-memory bundles (tests, fuzzing) that must behave like mapped files.
  static Expected<std::shared_ptr<MappedFile>> from_bytes(std::string_view bytes,
                                                          std::filesystem::path name);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  size_t size() const { return size_; }
  const uint8_t* data() const { return data_; }
  uint8_t* mutable_data() { return data_; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }

 private:
  MappedFile(std::filesystem::path path, uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}

  std::filesystem::path path_;
  uint8_t* data_ = nullptr;  // nullptr for an empty file; otherwise mmap'ed, munmap'ed here
  size_t size_ = 0;
};

}  // namespace hubimg::format
