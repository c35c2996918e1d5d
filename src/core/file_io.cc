#include "core/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <new>
#include <system_error>

namespace hubimg {
namespace {

std::string file_type_name(mode_t mode) {
  if (S_ISDIR(mode)) return "is a directory, not a regular file";
  if (S_ISFIFO(mode)) return "not a regular file (a FIFO)";
  if (S_ISCHR(mode)) return "not a regular file (a character device)";
  if (S_ISBLK(mode)) return "not a regular file (a block device)";
  if (S_ISSOCK(mode)) return "not a regular file (a socket)";
  return "not a regular file";
}

}  // namespace

FileDescriptor::~FileDescriptor() {
  if (fd_ >= 0) ::close(fd_);
}

FileDescriptor& FileDescriptor::operator=(FileDescriptor&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

Expected<RegularFile> open_regular_file(const std::filesystem::path& path) {
  const std::string name = path.string();
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    const int err = errno;
    std::string message = name + ": cannot open: " + std::strerror(err);
    if (err == ENOENT || err == ENOTDIR) return not_found(std::move(message));
    return failed_precondition(std::move(message));
  }
  RegularFile file{FileDescriptor(fd), 0};
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    return failed_precondition(name + ": cannot stat: " + std::strerror(errno));
  }
  if (!S_ISREG(info.st_mode)) {
    std::string what = file_type_name(info.st_mode);
    if (S_ISDIR(info.st_mode)) return invalid_argument(name + ": " + what);
    return failed_precondition(name + ": " + what);
  }
  // Regular files never block; reads behave as without O_NONBLOCK, but clear it anyway.
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  file.size = static_cast<uint64_t>(info.st_size);
  return file;
}

Status read_exactly(const RegularFile& file, uint64_t offset, void* out, size_t size,
                    const std::filesystem::path& path) {
  auto* dst = static_cast<char*>(out);
  while (size > 0) {
    const ssize_t n = ::pread(file.fd.get(), dst, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return data_loss(path.string() + ": read error: " + std::strerror(errno));
    if (n == 0) return data_loss(path.string() + ": file is shorter than expected (changed?)");
    dst += n;
    offset += static_cast<uint64_t>(n);
    size -= static_cast<size_t>(n);
  }
  return {};
}

Expected<std::string> read_regular_file(const std::filesystem::path& path, uint64_t max_bytes) {
  HUBIMG_ASSIGN_OR_RETURN(RegularFile file, open_regular_file(path));
  if (file.size > max_bytes) {
    return out_of_range(path.string() + ": file of " + std::to_string(file.size) +
                        " bytes is larger than the limit of " + std::to_string(max_bytes));
  }
  std::string bytes(file.size, '\0');
  HUBIMG_RETURN_IF_ERROR(read_exactly(file, 0, bytes.data(), bytes.size(), path));
  return bytes;
}

Status status_from_current_exception(std::string_view what) {
  const std::string where(what);
  try {
    throw;
  } catch (const std::bad_alloc&) {
    return out_of_range(where + ": out of memory (an allocation failed)");
  } catch (const std::filesystem::filesystem_error& e) {
    return failed_precondition(where + ": " + e.what());
  } catch (const std::system_error& e) {
    return internal_error(where + ": " + e.what());
  } catch (const std::exception& e) {
    return internal_error(where + ": unexpected error: " + e.what());
  } catch (...) {
    return internal_error(where + ": unexpected error (unknown exception)");
  }
}

}  // namespace hubimg
