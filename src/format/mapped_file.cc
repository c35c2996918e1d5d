#include "format/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace hubimg::format {
namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

// Closes a file descriptor when it goes out of scope.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

Expected<std::shared_ptr<MappedFile>> MappedFile::open(const std::filesystem::path& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    const int err = errno;
    std::string message = path.string() + ": cannot open: " + errno_text(err);
    if (err == ENOENT) return not_found(std::move(message));
    return failed_precondition(std::move(message));
  }
  FileDescriptor file(fd);
  struct stat info {};
  if (::fstat(file.get(), &info) != 0) {
    return failed_precondition(path.string() + ": cannot stat: " + errno_text(errno));
  }
  if (!S_ISREG(info.st_mode)) {
    return failed_precondition(path.string() + ": not a regular file");
  }
  const auto size = static_cast<size_t>(info.st_size);
  if (size == 0) return std::shared_ptr<MappedFile>(new MappedFile(path, nullptr, 0));
  void* mapping = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, file.get(), 0);
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
