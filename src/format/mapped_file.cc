#include "format/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/file_io.h"

namespace hubimg::format {
namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

}  // namespace

Expected<std::shared_ptr<MappedFile>> MappedFile::open(const std::filesystem::path& path) {
  // Never blocks on a FIFO or device: open_regular_file opens with O_NONBLOCK and refuses
  // anything but a regular file.
  HUBIMG_ASSIGN_OR_RETURN(RegularFile file, open_regular_file(path));
  const auto size = static_cast<size_t>(file.size);
  if (size == 0) return std::shared_ptr<MappedFile>(new MappedFile(path, nullptr, 0));
  void* mapping = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, file.fd.get(), 0);
  if (mapping == MAP_FAILED) {
    return failed_precondition(path.string() + ": cannot map " + std::to_string(size) +
                               " bytes: " + errno_text(errno));
  }
  return std::shared_ptr<MappedFile>(new MappedFile(path, static_cast<uint8_t*>(mapping), size));
}

Expected<std::shared_ptr<MappedFile>> MappedFile::from_bytes(std::string_view bytes,
                                                             std::filesystem::path name) {
  if (bytes.empty())
    return std::shared_ptr<MappedFile>(new MappedFile(std::move(name), nullptr, 0));
  void* mapping =
      ::mmap(nullptr, bytes.size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) {
    return failed_precondition(name.string() + ": cannot allocate " + std::to_string(bytes.size()) +
                               " bytes: " + errno_text(errno));
  }
  std::memcpy(mapping, bytes.data(), bytes.size());
  return std::shared_ptr<MappedFile>(
      new MappedFile(std::move(name), static_cast<uint8_t*>(mapping), bytes.size()));
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) ::munmap(data_, size_);
}

}  // namespace hubimg::format
