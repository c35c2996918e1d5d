// Reading files named by untrusted input without blocking on FIFOs or devices, and turning
// exceptions into Status at the library's public boundary.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "hubimg/status.h"

namespace hubimg {

// An open file descriptor, closed when it goes away.
class FileDescriptor {
 public:
  FileDescriptor() = default;
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor();
  FileDescriptor(FileDescriptor&& other) noexcept : fd_(other.release()) {}
  FileDescriptor& operator=(FileDescriptor&& other) noexcept;
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

struct RegularFile {
  FileDescriptor fd;
  uint64_t size = 0;
};

// Opens `path` read-only, refusing anything but a regular file ("is a directory", "not a
// regular file (a FIFO)"). The open uses O_NONBLOCK, so a FIFO without a writer or a device
// cannot block it, and the type is checked on the opened descriptor, so nothing can be swapped
// in between a check and the open. Errors name the path.
Expected<RegularFile> open_regular_file(const std::filesystem::path& path);

// Reads exactly `size` bytes at `offset` (a short read is a data_loss error naming the path).
Status read_exactly(const RegularFile& file, uint64_t offset, void* out, size_t size,
                    const std::filesystem::path& path);

// The whole file; refused (out_of_range) when it is larger than `max_bytes`.
Expected<std::string> read_regular_file(const std::filesystem::path& path, uint64_t max_bytes);

// Inside a catch block: the exception being handled as a Status ("<what>: out of memory ...").
Status status_from_current_exception(std::string_view what);

// Runs `body` (returning Status or Expected<T>) and returns any exception it throws as a Status,
// so that no exception leaves a public call.
template <typename Body>
auto catch_exceptions(std::string_view what, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (...) {
    return status_from_current_exception(what);
  }
}

}  // namespace hubimg
