#include "train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

#include "core/file_io.h"
#include "format/crc32c.h"

namespace hubimg::train {
namespace {

constexpr char kMagic[] = "HUBIMG-CKPT-1\n";
constexpr size_t kMagicSize = sizeof(kMagic) - 1;
// Far above any model hubimg trains (ResNet-50 with Adam's two slots: ~300 MB).
constexpr uint64_t kMaxCheckpointBytes = uint64_t{64} << 30;

template <typename T>
void put(std::vector<uint8_t>& out, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  out.insert(out.end(), p, p + sizeof(T));
}

class Reader {
 public:
  Reader(std::string_view d, size_t end) : d_(d), end_(end) {}
  template <typename T>
  bool get(T& v) {
    if (end_ - pos_ < sizeof(T)) return false;
    std::memcpy(&v, d_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool bytes(void* dst, size_t n) {
    if (end_ - pos_ < n) return false;
    std::memcpy(dst, d_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  size_t remaining() const { return end_ - pos_; }
  bool done() const { return pos_ == end_; }

 private:
  std::string_view d_;
  size_t end_;
  size_t pos_ = 0;
};

Status errno_error(const std::string& what, const std::filesystem::path& path) {
  return data_loss(path.string() + ": " + what + ": " + std::strerror(errno));
}

}  // namespace

Status write_checkpoint(const std::filesystem::path& path,
                        const std::map<std::string, Tensor>& tensors) {
  std::vector<uint8_t> out(kMagic, kMagic + kMagicSize);
  put<uint64_t>(out, tensors.size());
  for (const auto& [name, t] : tensors) {
    if (!dtype_is_numeric(t.dtype())) {
      return invalid_argument("checkpoint: tensor '" + name + "' is " + t.description() +
                              ", not numeric");
    }
    put<uint32_t>(out, static_cast<uint32_t>(name.size()));
    out.insert(out.end(), name.begin(), name.end());
    put<int32_t>(out, static_cast<int32_t>(t.dtype()));
    put<uint32_t>(out, static_cast<uint32_t>(t.rank()));
    for (int64_t d : t.shape()) put<int64_t>(out, d);
    const auto* p = static_cast<const uint8_t*>(t.raw_data());
    out.insert(out.end(), p, p + t.byte_size());
  }
  put<uint32_t>(out, format::crc32c_mask(format::crc32c(out.data(), out.size())));

  const std::filesystem::path tmp = path.string() + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno_error("cannot create", tmp);
  size_t written = 0;
  while (written < out.size()) {
    const ssize_t n = ::write(fd, out.data() + written, out.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Status s = errno_error("write failed (the previous checkpoint is kept)", tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return s;
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    Status s = errno_error("fsync failed (the previous checkpoint is kept)", tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  }
  if (::close(fd) != 0) {
    Status s = errno_error("close failed (the previous checkpoint is kept)", tmp);
    ::unlink(tmp.c_str());
    return s;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status s = errno_error("rename failed", path);
    ::unlink(tmp.c_str());
    return s;
  }
  std::filesystem::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

Expected<std::map<std::string, Tensor>> read_checkpoint(const std::filesystem::path& path) {
  HUBIMG_ASSIGN_OR_RETURN(const std::string d, read_regular_file(path, kMaxCheckpointBytes));
  const std::string where = path.string() + ": ";
  if (d.size() < kMagicSize + 12 || std::memcmp(d.data(), kMagic, kMagicSize) != 0) {
    return data_loss(where + "not a hubimg training checkpoint");
  }
  uint32_t stored = 0;
  std::memcpy(&stored, d.data() + d.size() - 4, 4);
  if (format::crc32c_unmask(stored) !=
      format::crc32c(reinterpret_cast<const uint8_t*>(d.data()), d.size() - 4)) {
    return data_loss(where + "checkpoint checksum mismatch (truncated or corrupted)");
  }
  Reader r(d, d.size() - 4);
  std::vector<uint8_t> skip(kMagicSize);
  r.bytes(skip.data(), kMagicSize);
  uint64_t count = 0;
  if (!r.get(count)) return data_loss(where + "truncated");
  std::map<std::string, Tensor> out;
  for (uint64_t i = 0; i < count; ++i) {
    uint32_t len = 0, rank = 0;
    int32_t dtype = 0;
    if (!r.get(len) || len > 4096) return data_loss(where + "bad tensor name");
    std::string name(len, '\0');
    if (!r.bytes(name.data(), len) || !r.get(dtype) || !r.get(rank) || rank > 8) {
      return data_loss(where + "bad entry " + std::to_string(i));
    }
    Dims dims(rank);
    for (auto& dim : dims) {
      if (!r.get(dim)) return data_loss(where + "truncated dims of '" + name + "'");
    }
    HUBIMG_ASSIGN_OR_RETURN(DType dt, dtype_from_proto(dtype));
    if (!dtype_is_numeric(dt)) return data_loss(where + "'" + name + "' has a non-numeric dtype");
    auto elements = checked_num_elements(dims);
    if (!elements.ok()) return elements.status().with_context(where + name);
    // Compared before allocating: a few damaged bytes must not make us reserve gigabytes.
    if (static_cast<uint64_t>(*elements) > r.remaining() / std::max<size_t>(dtype_size(dt), 1)) {
      return data_loss(where + "truncated data of '" + name + "'");
    }
    auto t = Tensor::create(dt, dims);
    if (!t.ok()) return t.status().with_context(where + name);
    if (!r.bytes(t->raw_mutable_data(), t->byte_size())) {
      return data_loss(where + "truncated data of '" + name + "'");
    }
    out[name] = std::move(t).value();
  }
  if (!r.done()) return data_loss(where + "trailing bytes");
  return out;
}

}  // namespace hubimg::train
