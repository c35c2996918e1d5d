// Bytes -> a file -> extract_saved_model_archive (tar, gzip'd tar, zip) with small budgets, then
// the extraction is removed. With no saved_model.pb inside, the extracted tree is also described
// (format/model_files.h). Seeds: small fixtures as .tar.gz and .zip (make_seed_corpus.sh).
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "format/archive.h"
#include "format/model_files.h"

namespace {

std::string& input_path() {
  static std::string path;
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/hubimg_fuzz_archive_XXXXXX";
  const int fd = ::mkstemp(pattern.data());
  if (fd < 0) std::abort();
  ::close(fd);
  input_path() = pattern;
  std::atexit([] { std::filesystem::remove(input_path()); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = ::open(input_path().c_str(), O_WRONLY | O_TRUNC);
  if (fd < 0) std::abort();
  for (size_t written = 0; written < size;) {
    const ssize_t n = ::write(fd, data + written, size - written);
    if (n <= 0) std::abort();
    written += static_cast<size_t>(n);
  }
  ::close(fd);
  hubimg::format::ArchiveLimits limits;
  limits.max_bytes = uint64_t{16} << 20;
  limits.max_entries = 256;
  limits.max_depth = 16;
  auto extracted = hubimg::format::extract_saved_model_archive(input_path(), limits);
  if (extracted.ok()) {
    (void)hubimg::format::describe_folder_without_saved_model(extracted->saved_model_dir, 3, 256);
  }
  return 0;
}
